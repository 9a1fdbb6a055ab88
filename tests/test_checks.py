"""The argument checks every public function of vae_lib runs (vae_lib._checks)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vae_lib._checks import as_tensor

DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
NON_FINITE = (math.nan, math.inf, -math.inf)


@st.composite
def tensors_with_planted_values(draw):
    """A random tensor (0 to 3 dimensions, possibly empty) with 0 to 3 entries set to NaN, +inf or -inf."""
    shape = tuple(draw(st.lists(st.integers(0, 6), min_size=0, max_size=3)))
    dtype = draw(st.sampled_from(DTYPES))
    seed = draw(st.integers(0, 2**31 - 1))
    t = (torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * 100).to(dtype)
    flat = t.reshape(-1)
    for _ in range(draw(st.integers(0, 3)) if flat.numel() else 0):
        flat[draw(st.integers(0, flat.numel() - 1))] = draw(st.sampled_from(NON_FINITE))
    return t


class TestFiniteness:
    @settings(max_examples=300, deadline=None)
    @given(tensors_with_planted_values())
    def test_as_tensor_rejects_exactly_the_tensors_with_a_non_finite_entry(self, t):
        if bool(torch.isfinite(t).all()):
            assert as_tensor("x", t) is t
        else:
            with pytest.raises(ValueError, match="x contains NaN or infinite values"):
                as_tensor("x", t)

    @pytest.mark.parametrize("bad", NON_FINITE)
    @pytest.mark.parametrize("where", [0, 57, -1])
    def test_a_single_bad_entry_anywhere_is_found(self, bad, where):
        t = torch.randn(8, 1088, requires_grad=True) * 1.0  # a network output inside a training step
        with torch.no_grad():
            t.view(-1)[where] = bad
        with pytest.raises(ValueError, match="logits contains NaN"):
            as_tensor("logits", t)

    def test_the_check_leaves_autograd_alone(self):
        w = torch.randn(3, requires_grad=True)
        out = as_tensor("out", w * 2)
        out.sum().backward()
        assert torch.equal(w.grad, torch.full((3,), 2.0))

    def test_lists_and_integers_are_converted_and_checked(self):
        assert as_tensor("x", [1, 2, 3]).dtype == torch.get_default_dtype()
        with pytest.raises(ValueError, match="x contains NaN"):
            as_tensor("x", [1.0, float("nan")])


class TestCountsNumbersFlags:
    def test_counts_have_a_stated_upper_bound(self):
        from vae_lib._checks import MAX_COUNT, check_count
        assert check_count("n", MAX_COUNT) == MAX_COUNT
        with pytest.raises(ValueError, match=rf"n must be <= {MAX_COUNT}"):
            check_count("n", MAX_COUNT + 1)
        with pytest.raises(ValueError, match="n must be <= 5"):
            check_count("n", 6, maximum=5)
        for fake in (2.0, True, "3", None):
            with pytest.raises(TypeError, match="n must be an integer"):
                check_count("n", fake)

    @pytest.mark.parametrize("bad,error", [(math.inf, ValueError), (-math.inf, ValueError), (math.nan, ValueError),
                                           (True, TypeError), ("1", TypeError), (None, TypeError)])
    def test_real_numbers_are_finite_and_not_bools(self, bad, error):
        from vae_lib._checks import check_real
        with pytest.raises(error, match="lr"):
            check_real("lr", bad, above=0)

    def test_real_number_bounds(self):
        from vae_lib._checks import check_real
        assert check_real("a", 0, minimum=0) == 0.0
        assert check_real("a", torch.tensor(2.5)) == 2.5  # a one-element tensor is a number
        with pytest.raises(ValueError, match="a must be > 0"):
            check_real("a", 0, above=0)
        with pytest.raises(ValueError, match="a must be < 1"):
            check_real("a", 1.0, below=1)

    def test_ints_and_bools_are_real_ones(self):
        from vae_lib._checks import check_bool, check_int
        assert check_int("seed", -3) == -3
        for fake in (1.0, True):
            with pytest.raises(TypeError, match="seed"):
                check_int("seed", fake)
        assert check_bool("flag", False) is False
        for fake in ("no", 0, None):
            with pytest.raises(TypeError, match="flag must be True or False"):
                check_bool("flag", fake)


class TestModelInputs:
    @settings(max_examples=50)
    @given(st.lists(st.floats(-1e6, 1e6, width=32), min_size=1, max_size=20))
    def test_float64_and_numpy_arrive_as_the_same_float32_values(self, values):
        import numpy as np

        from vae_lib._checks import as_model_input
        net = torch.nn.Linear(1, 1)
        want = torch.tensor([values], dtype=torch.float32)
        for given_value in (want.double(), np.array([values], dtype=np.float64), [values]):
            got = as_model_input("x", given_value, net)
            assert got.dtype == torch.float32 and torch.equal(got, want)
        assert as_model_input("x", want, net) is want  # no copy when nothing needs converting

    def test_a_double_model_gets_double_inputs_and_bad_dtypes_are_named(self):
        from vae_lib._checks import as_model_input
        net = torch.nn.Linear(1, 1).double()
        assert as_model_input("x", torch.ones(2, 1), net).dtype == torch.float64
        with pytest.raises(TypeError, match="x must hold real numbers .*float32"):
            as_model_input("x", torch.ones(2, 1, dtype=torch.bool), net)
        with pytest.raises(ValueError, match="x must not be empty"):
            as_model_input("x", torch.ones(0, 1), net)

    def test_indices_are_never_truncated(self):
        from vae_lib._checks import as_index_tensor
        assert torch.equal(as_index_tensor("k", [0.0, 3.0], 4, floats_ok=True), torch.tensor([0, 3]))
        with pytest.raises(ValueError, match="k must hold integer"):
            as_index_tensor("k", [2.5], 4, floats_ok=True)
        with pytest.raises(TypeError, match="k must hold integer"):
            as_index_tensor("k", [2.0], 4)
        with pytest.raises(ValueError, match=r"k must hold .* in 0\.\.3"):
            as_index_tensor("k", [4], 4)
        with pytest.raises(TypeError, match="k must be a tensor"):
            as_index_tensor("k", None, 4)

    def test_shapes_that_must_agree(self):
        from vae_lib._checks import check_same_shape
        with pytest.raises(ValueError, match=r"a \(shape \(2,\)\) and b \(shape \(3,\)\)"):
            check_same_shape(("a", "b"), torch.zeros(2), torch.zeros(3))
