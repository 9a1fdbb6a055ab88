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
