"""vae_lib.disentanglement: correlations, plug-in mutual information, factor entropies and MIG (chapter 7).

Exact answers come from full-factorial designs, where every combination of factor values appears equally often:
with factors a, b taking 5 values each among N rows, every pair (a, b) appears n_ab = N/25 times and every value
n_a = n_b = N/5 times, so N n_ab / (n_a n_b) = 1 and every term of I(a; b) = Σ (n_ab/N) log(N n_ab/(n_a n_b)) is
exactly log 1 = 0: independent factors have exactly zero empirical mutual information. A column that is a one-to-one
function of a factor has n_ab = n_a = n_b on its pairs and I = Σ (n_a/N) log(N/n_a) = H(factor) = log 5.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import mutual_info_score

from vae_lib.disentanglement import (
    AxisLabel,
    MIGResult,
    axis_factor_table,
    correlation_matrix,
    discretise,
    factor_entropies,
    mutual_information_gap,
    mutual_information_matrix,
)

F64 = torch.float64
LOG5 = math.log(5)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def grid(n_factors: int, values: int = 5) -> torch.Tensor:
    """All values**n_factors combinations of factors taking the values 0 … values − 1, (values**n_factors, n)."""
    axis = torch.arange(values, dtype=F64)
    return torch.cartesian_prod(*[axis] * n_factors)


def triangle_entropy() -> float:
    """H(a + b) for independent a, b uniform on {0, …, 4}: the sum takes 0 … 8 with counts 1 2 3 4 5 4 3 2 1 of 25."""
    counts = [1, 2, 3, 4, 5, 4, 3, 2, 1]
    return sum(c / 25 * math.log(25 / c) for c in counts)


# ---------------------------------------------------------------------------------------------------------
# mutual information gap: exact answers
# ---------------------------------------------------------------------------------------------------------
class TestMIG:
    def test_perfect_code_scores_one(self):
        v = grid(3)  # (125, 3)
        # columns permuted (z_0 tracks v_2, z_1 tracks v_0, z_2 tracks v_1), each through a strictly monotone map
        z = torch.stack([torch.exp(v[:, 2]), -(v[:, 0] ** 3), 2 * v[:, 1] + 1], dim=1)  # (125, 3)
        result = mutual_information_gap(z, v)
        assert isinstance(result, MIGResult)
        assert result.score == pytest.approx(1.0, abs=1e-12)
        torch.testing.assert_close(result.per_factor, torch.ones(3, dtype=F64), rtol=0, atol=1e-12)
        torch.testing.assert_close(result.entropy, torch.full((3,), LOG5, dtype=F64), rtol=0, atol=1e-12)
        expected = torch.zeros(3, 3, dtype=F64)
        expected[1, 0] = expected[2, 1] = expected[0, 2] = LOG5
        torch.testing.assert_close(result.mi, expected, rtol=0, atol=1e-12)
        assert (result.mi[expected == 0] == 0).all()  # exactly zero, not merely small

    def test_code_rotated_by_45_degrees(self):
        v = grid(3)  # (125, 3)
        c = math.sqrt(0.5)
        z = torch.stack([c * (v[:, 0] + v[:, 1]), c * (v[:, 0] - v[:, 1]), v[:, 2]], dim=1)  # rotated in (v_0, v_1)
        result = mutual_information_gap(z, v)
        # I(a + b; a) = H(a + b) − H(a + b | a) = H(a + b) − H(b); a − b has the same triangular distribution
        shared = triangle_entropy() - LOG5
        expected = torch.tensor([[shared, shared, 0.0], [shared, shared, 0.0], [0.0, 0.0, LOG5]], dtype=F64)
        torch.testing.assert_close(result.mi, expected, rtol=0, atol=1e-12)
        # v_0 and v_1 are each shared equally by two dimensions: gap 0; v_2 is captured alone: gap 1
        torch.testing.assert_close(result.per_factor, torch.tensor([0.0, 0.0, 1.0], dtype=F64), rtol=0, atol=1e-12)
        assert result.score == pytest.approx(1 / 3, abs=1e-12)

    def test_rotation_lowers_the_score_on_continuous_factors(self):
        v = torch.rand(20_000, 2, generator=gen(0), dtype=F64)
        scores = []
        for degrees in (0.0, 15.0, 45.0):
            t = math.radians(degrees)
            rotation = torch.tensor([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]], dtype=F64)
            scores.append(mutual_information_gap(v @ rotation.T, v).score)
        assert scores[0] > 0.99  # only the small plug-in bias of I(z_1; v_0) between independent columns
        assert scores[0] > scores[1] > scores[2]

    def test_independent_code_scores_zero(self):
        full = grid(4)  # (625, 4)
        v, z = full[:, :2], full[:, 2:]  # the code varies along axes of the design that the factors do not
        result = mutual_information_gap(z, v)
        assert result.score == 0.0 and (result.mi == 0).all() and (result.per_factor == 0).all()
        constant = mutual_information_gap(torch.ones(625, 3), v)
        assert constant.score == 0.0 and (constant.mi == 0).all()

    def test_per_factor_formula(self):
        z = torch.randn(3000, 4, generator=gen(1), dtype=F64)
        v = z[:, :2] + 0.5 * torch.randn(3000, 2, generator=gen(2), dtype=F64)
        result = mutual_information_gap(z, v, bins=12)
        for k in range(2):
            top = sorted(result.mi[:, k].tolist(), reverse=True)
            assert result.per_factor[k].item() == pytest.approx((top[0] - top[1]) / result.entropy[k].item(), abs=1e-15)
        assert result.score == pytest.approx(result.per_factor.mean().item(), abs=1e-15)
        torch.testing.assert_close(result.entropy, factor_entropies(v, bins=12))
        torch.testing.assert_close(result.mi, mutual_information_matrix(z, v, bins=12))


# ---------------------------------------------------------------------------------------------------------
# mutual information and entropy
# ---------------------------------------------------------------------------------------------------------
class TestMutualInformation:
    def test_two_by_two_table_by_hand(self):
        # pairs (a, b): (0,0) (0,0) (0,1) (1,1) -> counts n_00 = 2, n_01 = 1, n_11 = 1; n_a = (3, 1), n_b = (2, 2)
        a = torch.tensor([[0.0], [0.0], [0.0], [1.0]])
        b = torch.tensor([[0.0], [0.0], [1.0], [1.0]])
        # Σ (n_ab/N) log(N n_ab / (n_a n_b)) over the three nonempty cells
        expected = 2 / 4 * math.log(4 * 2 / (3 * 2)) + 1 / 4 * math.log(4 * 1 / (3 * 2)) + 1 / 4 * math.log(4 / 2)
        assert mutual_information_matrix(a, b).item() == pytest.approx(expected, abs=1e-15)
        assert factor_entropies(a).item() == pytest.approx(3 / 4 * math.log(4 / 3) + 1 / 4 * math.log(4), abs=1e-15)
        assert factor_entropies(b).item() == pytest.approx(math.log(2), abs=1e-15)

    def test_equals_sklearn_on_integer_data(self):
        rng = np.random.default_rng(0)
        z = rng.integers(0, 6, size=(500, 3))
        v = np.stack([z[:, 0] + rng.integers(0, 3, 500), rng.integers(0, 11, 500)], axis=1)  # one dependent factor
        mi = mutual_information_matrix(torch.as_tensor(z), torch.as_tensor(v))
        expected = [[mutual_info_score(z[:, j], v[:, k]) for k in range(2)] for j in range(3)]
        np.testing.assert_allclose(mi.numpy(), expected, rtol=0, atol=1e-12)
        assert mi[0, 0] > 0.5  # the dependent pair

    def test_equals_sklearn_on_binned_continuous_data(self):
        z = torch.randn(2000, 2, generator=gen(3), dtype=F64)
        v = torch.stack([z[:, 0] ** 3, torch.rand(2000, generator=gen(4), dtype=F64)], dim=1)
        zb, vb = discretise(z, 15).numpy(), discretise(v, 15).numpy()
        expected = [[mutual_info_score(zb[:, j], vb[:, k]) for k in range(2)] for j in range(2)]
        np.testing.assert_allclose(mutual_information_matrix(z, v, bins=15).numpy(), expected, rtol=0, atol=1e-12)

    def test_entropy_of_uniform_and_binned_factors(self):
        v = grid(2, values=4)  # (16, 2): each factor uniform on 4 values
        torch.testing.assert_close(factor_entropies(v), torch.full((2,), math.log(4), dtype=F64), rtol=0, atol=1e-15)
        # 40 equally spaced values are cut into 20 bins of 2 values each: H = log 20
        many = torch.arange(40, dtype=F64)[:, None]
        assert factor_entropies(many).item() == pytest.approx(math.log(20), abs=1e-15)
        assert factor_entropies(many, bins=40).item() == pytest.approx(math.log(40), abs=1e-15)

    @given(
        st.lists(st.tuples(st.integers(0, 4), st.integers(-3, 3), st.integers(0, 30)), min_size=1, max_size=60),
        st.integers(2, 25),
    )
    def test_symmetric_nonnegative_and_bounded(self, rows, bins):
        data = torch.tensor(rows, dtype=F64)  # (N, 3)
        a, b = data[:, :2], data[:, 2:]
        mi = mutual_information_matrix(a, b, bins)  # (2, 1)
        assert (mi >= 0).all()
        torch.testing.assert_close(mutual_information_matrix(b, a, bins), mi.T, rtol=0, atol=1e-12)
        # I(a_j; b) ≤ min(H(a_j), H(b))
        h_a, h_b = factor_entropies(a, bins), factor_entropies(b, bins)
        assert (mi[:, 0] <= torch.minimum(h_a, h_b) + 1e-12).all()
        # a column with itself: I(a; a) = H(a)
        torch.testing.assert_close(mutual_information_matrix(a, a, bins).diagonal(), h_a, rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------------------------------------
# discretisation
# ---------------------------------------------------------------------------------------------------------
def reference_discretise(x: np.ndarray, bins: int) -> np.ndarray:
    """Locatello et al. (2019)'s disentanglement_lib: np.digitize(x, np.histogram(x, bins)[1][:-1]), from 1."""
    return np.stack([np.digitize(x[:, d], np.histogram(x[:, d], bins)[1][:-1]) for d in range(x.shape[1])], axis=1)


class TestDiscretise:
    @pytest.mark.parametrize("bins", [2, 7, 20])
    def test_equals_reference_implementation(self, bins):
        x = torch.randn(1000, 3, generator=gen(5), dtype=F64) * torch.tensor([1.0, 10.0, 0.01], dtype=F64)
        got = discretise(x, bins)
        assert got.dtype == torch.int64 and got.shape == (1000, 3)
        np.testing.assert_array_equal(got.numpy(), reference_discretise(x.numpy(), bins) - 1)
        assert got.min().item() == 0 and got.max().item() == bins - 1

    def test_edges(self):
        x = torch.tensor([[0.0], [0.49], [0.5], [0.99], [1.0], [2.0]])  # range [0, 2], 4 bins of width 0.5
        assert discretise(x, 4)[:, 0].tolist() == [0, 0, 1, 1, 2, 3]
        assert discretise(torch.full((5, 2), 3.0), 4).eq(0).all()  # constant columns: bin 0


# ---------------------------------------------------------------------------------------------------------
# correlation and axis labels
# ---------------------------------------------------------------------------------------------------------
class TestCorrelation:
    def test_linear_functions_correlate_plus_or_minus_one(self):
        v = torch.randn(300, 2, generator=gen(6), dtype=F64)
        z = torch.stack([2 * v[:, 0] + 3, -0.5 * v[:, 1] + 1], dim=1)
        rho = correlation_matrix(z, v)
        assert rho[0, 0].item() == pytest.approx(1.0, abs=1e-12) and rho[1, 1].item() == pytest.approx(-1.0, abs=1e-12)

    def test_equals_numpy(self):
        z = torch.randn(200, 3, generator=gen(7), dtype=F64)
        v = z[:, :2] @ torch.randn(2, 2, generator=gen(8), dtype=F64) + torch.randn(200, 2, generator=gen(9), dtype=F64)
        full = np.corrcoef(np.concatenate([z.numpy(), v.numpy()], axis=1).T)
        np.testing.assert_allclose(correlation_matrix(z, v).numpy(), full[:3, 3:], rtol=0, atol=1e-12)

    def test_constant_column_has_zero_correlation(self):
        v = torch.randn(50, 2, generator=gen(10), dtype=F64)
        z = torch.cat([torch.full((50, 1), 4.0, dtype=F64), v[:, :1]], dim=1)
        rho = correlation_matrix(z, v)
        assert (rho[0] == 0).all() and rho[1, 0].item() == pytest.approx(1.0, abs=1e-12)

    def test_axis_factor_table(self):
        v = torch.randn(400, 3, generator=gen(11), dtype=F64)
        noise = torch.randn(400, generator=gen(12), dtype=F64)
        z = torch.stack([v[:, 1] * 2, -v[:, 0], v[:, 2] + 0.1 * noise], dim=1)
        table = axis_factor_table(z, v, ("tilt", "smile", "eyes"))
        assert [(row.dimension, row.factor) for row in table] == [(0, "smile"), (1, "tilt"), (2, "eyes")]
        assert isinstance(table[0], AxisLabel)
        assert table[0].correlation == pytest.approx(1.0, abs=1e-12)
        assert table[1].correlation == pytest.approx(-1.0, abs=1e-12)
        assert table[2].correlation == pytest.approx(correlation_matrix(z, v)[2, 2].item(), abs=0)
        assert 0.9 < table[2].correlation < 1.0


# ---------------------------------------------------------------------------------------------------------
# argument errors
# ---------------------------------------------------------------------------------------------------------
def test_bad_input():
    z, v = torch.randn(10, 3, generator=gen(13)), torch.randn(10, 2, generator=gen(14))
    with pytest.raises(ValueError, match="codes"):
        mutual_information_gap(torch.randn(10), v)
    with pytest.raises(ValueError, match="codes.*factors"):
        mutual_information_matrix(torch.randn(9, 3), v)
    with pytest.raises(ValueError, match="factors"):
        correlation_matrix(z, torch.randn(10, 0))
    with pytest.raises(TypeError, match="codes"):
        correlation_matrix("codes", v)
    with pytest.raises(ValueError, match="codes"):
        correlation_matrix(z[:1], v[:1])  # one row has no variance to correlate
    with pytest.raises(ValueError, match="codes"):
        mutual_information_gap(z[:, :1], v)  # a gap needs two latent dimensions
    with pytest.raises(ValueError, match="factors column 1"):
        mutual_information_gap(z, torch.stack([v[:, 0], torch.ones(10)], dim=1))
    with pytest.raises(ValueError, match="bins"):
        discretise(z, bins=1)
    with pytest.raises(TypeError, match="bins"):
        mutual_information_matrix(z, v, bins=2.5)
    with pytest.raises(ValueError, match="values"):
        discretise(torch.tensor([[float("nan")], [0.0]]))
    with pytest.raises(ValueError, match="names"):
        axis_factor_table(z, v, ("a",))
    with pytest.raises(TypeError, match="names"):
        axis_factor_table(z, v, "ab")
