"""vae_lib.data: the two-Gaussian mixture (samples and exact density) and the fixed digits split."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import special, stats
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from vae_lib.data import (
    DIGIT_LEVELS,
    DIGIT_SHAPE,
    MIXTURE_MEANS,
    load_digits_split,
    mixture_log_density,
    sample_mixture,
)

F64 = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------------------------
# the two-Gaussian mixture
# ---------------------------------------------------------------------------------------------------------
class TestMixture:
    def test_shape_and_reproducibility(self):
        x = sample_mixture(100, generator=gen(0))
        assert x.shape == (100, 2) and x.is_floating_point()
        assert torch.equal(x, sample_mixture(100, generator=gen(0)))
        assert not torch.equal(x, sample_mixture(100, generator=gen(1)))

    def test_does_not_touch_the_global_rng(self):
        state = torch.get_rng_state()
        sample_mixture(10, generator=gen(2))
        assert torch.equal(torch.get_rng_state(), state)

    def test_components_weights_and_moments(self):
        n = 40_000
        x = sample_mixture(n, generator=gen(3)).double()
        left, right = x[x[:, 0] < 0], x[x[:, 0] >= 0]  # the components are 10 standard deviations apart
        # equal weights: the count on each side is Binomial(n, ½)
        assert abs(len(left) / n - 0.5) < 4 * math.sqrt(0.25 / n)
        for part, centre in ((left, (-5.0, 3.0)), (right, (5.0, 3.0))):
            m = len(part)
            assert ((part.mean(0) - torch.tensor(centre, dtype=F64)).abs() < 5 / math.sqrt(m)).all()
            # unit covariance: variances 1 (sd of the sample variance ≈ √(2/m)), no correlation
            assert ((part.var(0) - 1).abs() < 5 * math.sqrt(2 / m)).all()
            assert abs(torch.corrcoef(part.T)[0, 1].item()) < 5 / math.sqrt(m)
        torch.testing.assert_close(MIXTURE_MEANS, torch.tensor([[-5.0, 3.0], [5.0, 3.0]]))

    def test_density_integrates_to_one(self):
        h = 0.05
        a1 = torch.arange(-13.0, 13.0 + h / 2, h, dtype=F64)
        a2 = torch.arange(-6.0, 12.0 + h / 2, h, dtype=F64)
        grid = torch.cartesian_prod(a1, a2)
        mass = mixture_log_density(grid).exp().sum() * h * h
        assert mass.item() == pytest.approx(1.0, abs=1e-9)

    def test_density_equals_scipy(self):
        x = torch.randn(50, 2, generator=gen(4), dtype=F64) * 4 + torch.tensor([0.0, 3.0], dtype=F64)
        comps = [stats.multivariate_normal(mean=m, cov=np.eye(2)).logpdf(x.numpy()) for m in ((-5, 3), (5, 3))]
        expected = special.logsumexp(np.stack(comps), axis=0, b=0.5)
        got = mixture_log_density(x)
        assert got.shape == (50,) and got.dtype == F64
        np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-12)
        # float32 input gives float32 output, to float32 precision
        np.testing.assert_allclose(mixture_log_density(x.float()).numpy(), expected, rtol=1e-5, atol=1e-5)

    def test_density_at_a_component_centre(self):
        # at (5, 3): ½ · 1/(2π) + ½ · exp(−50)/(2π)
        got = mixture_log_density(torch.tensor([[5.0, 3.0]], dtype=F64)).item()
        assert got == pytest.approx(math.log(0.5 / (2 * math.pi) * (1 + math.exp(-50))), abs=1e-14)

    def test_bad_input(self):
        with pytest.raises(ValueError, match="n"):
            sample_mixture(0, generator=gen(0))
        with pytest.raises(TypeError, match="n"):
            sample_mixture(2.5, generator=gen(0))
        with pytest.raises(TypeError, match="generator"):
            sample_mixture(5, generator=None)
        with pytest.raises(ValueError, match="x"):
            mixture_log_density(torch.zeros(4, 3))
        with pytest.raises(ValueError, match="x"):
            mixture_log_density(torch.tensor([[float("nan"), 0.0]]))


# ---------------------------------------------------------------------------------------------------------
# the digits split
# ---------------------------------------------------------------------------------------------------------
class TestDigits:
    def test_shapes_and_levels(self):
        split = load_digits_split()
        assert split.x_train.shape == (1437, 64) and split.x_test.shape == (360, 64)
        assert split.y_train.shape == (1437,) and split.y_test.shape == (360,)
        assert split.x_train.dtype == torch.float32 and split.y_train.dtype == torch.int64
        assert DIGIT_SHAPE == (8, 8) and DIGIT_LEVELS == 17
        for x in (split.x_train, split.x_test):
            assert torch.equal(x, x.round())
            assert x.min().item() == 0 and x.max().item() == DIGIT_LEVELS - 1
        assert set(split.y_train.tolist()) == set(range(10))

    def test_split_equals_sklearn(self):
        digits = load_digits()
        x_tr, x_te, y_tr, y_te = train_test_split(digits.data, digits.target, test_size=0.2, random_state=0)
        split = load_digits_split()
        np.testing.assert_array_equal(split.x_train.numpy(), x_tr)
        np.testing.assert_array_equal(split.x_test.numpy(), x_te)
        np.testing.assert_array_equal(split.y_train.numpy(), y_tr)
        np.testing.assert_array_equal(split.y_test.numpy(), y_te)

    def test_train_and_test_partition_the_data_set(self):
        digits = load_digits()
        split = load_digits_split()
        rows = np.concatenate([split.x_train.numpy(), split.x_test.numpy()])
        key = lambda a: sorted(map(bytes, a.astype(np.uint8)))  # noqa: E731
        assert key(rows) == key(digits.data)

    def test_cached(self):
        assert load_digits_split() is load_digits_split()
