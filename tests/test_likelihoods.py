"""vae_lib.likelihoods: the decoder log-likelihoods against torch.distributions and torch's loss functions."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch.distributions import Bernoulli, Categorical, Normal

from vae_lib.likelihoods import (
    LOG_2PI,
    bernoulli_log_likelihood,
    categorical_log_likelihood,
    gaussian_log_likelihood,
)

F64 = torch.float64
seeds = st.integers(0, 2**31 - 1)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------------------------
# Gaussian
# ---------------------------------------------------------------------------------------------------------
class TestGaussian:
    @given(seed=seeds, batch=st.integers(1, 5), dim=st.integers(1, 8))
    def test_learned_per_pixel_variance_equals_torch_normal(self, seed, batch, dim):
        g = gen(seed)
        x, mean = torch.randn(batch, dim, generator=g, dtype=F64), torch.randn(batch, dim, generator=g, dtype=F64)
        log_var = 3 * torch.rand(batch, dim, generator=g, dtype=F64) - 2
        expected = Normal(mean, torch.exp(0.5 * log_var)).log_prob(x).sum(-1)
        got = gaussian_log_likelihood(x, mean, log_var)
        assert got.shape == (batch,)
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)

    @pytest.mark.parametrize("sigma", [1.0, 0.3, 2.5])
    def test_fixed_float_log_var_equals_torch_normal_in_float64(self, sigma):
        g = gen(1)
        x, mean = torch.randn(4, 6, generator=g, dtype=F64), torch.randn(4, 6, generator=g, dtype=F64)
        got = gaussian_log_likelihood(x, mean, 2 * math.log(sigma))
        assert got.dtype == F64
        # float64 data keep float64 precision even though log_var was given as a Python float
        torch.testing.assert_close(got, Normal(mean, sigma).log_prob(x).sum(-1), rtol=1e-13, atol=1e-13)

    def test_fixed_float_log_var_in_float32(self):
        g = gen(2)
        x, mean = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g)
        got = gaussian_log_likelihood(x, mean, 2 * math.log(0.7))
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, Normal(mean, 0.7).log_prob(x).sum(-1), rtol=1e-5, atol=1e-5)

    def test_per_example_log_var_and_broadcasting_over_samples(self):
        g = gen(3)
        x = torch.randn(3, 5, generator=g, dtype=F64)  # (B, D)
        mean = torch.randn(7, 3, 5, generator=g, dtype=F64)  # (K, B, D)
        log_var = torch.randn(3, 1, generator=g, dtype=F64)  # one variance per example
        got = gaussian_log_likelihood(x, mean, log_var)
        assert got.shape == (7, 3)
        expected = Normal(mean, torch.exp(0.5 * log_var)).log_prob(x).sum(-1)
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)

    def test_sigma_one_is_sum_squared_error(self):
        """log N(x; m, I) = −½ Σ_d (x_d − m_d)² − (D/2) log 2π, with F.mse_loss(reduction='sum') per example."""
        g = gen(4)
        b, d = 5, 64
        x, m = torch.randn(b, d, generator=g, dtype=F64), torch.randn(b, d, generator=g, dtype=F64)
        got = gaussian_log_likelihood(x, m, 0.0)
        for i in range(b):
            sse = F.mse_loss(m[i], x[i], reduction="sum")
            assert got[i].item() == pytest.approx((-0.5 * sse - d / 2 * LOG_2PI).item(), abs=1e-10)
        assert LOG_2PI == pytest.approx(math.log(2 * math.pi), abs=1e-15)

    def test_mean_reduced_mse_is_not_the_log_likelihood(self):
        """The default mse_loss averages over the D pixels: it is off by the factor D and the constant."""
        g = gen(5)
        b, d = 5, 64
        x, m = torch.randn(b, d, generator=g, dtype=F64), torch.randn(b, d, generator=g, dtype=F64)
        got = gaussian_log_likelihood(x, m, 0.0)
        for i in range(b):
            mse_mean = F.mse_loss(m[i], x[i])  # reduction='mean'
            # the exact relation
            assert got[i].item() == pytest.approx((-0.5 * d * mse_mean - d / 2 * LOG_2PI).item(), abs=1e-10)
            # and "−½ MSE" is not the log-likelihood, not even up to the constant
            assert abs(got[i].item() - (-0.5 * mse_mean.item() - d / 2 * LOG_2PI)) > 1.0
        # over a batch, the mean-reduced loss averages over B·D entries
        total = gaussian_log_likelihood(x, m, 0.0).sum()
        assert total.item() == pytest.approx((-0.5 * b * d * F.mse_loss(m, x) - b * d / 2 * LOG_2PI).item(), abs=1e-9)

    def test_maximised_at_the_mean_and_normalised(self):
        # in 1-D: ∫ N(x; m, σ²) dx = 1 on a fine grid, and the log-density peaks at x = m
        xs = torch.linspace(-12, 12, 24_001, dtype=F64).unsqueeze(-1)  # (N, 1)
        mean, log_var = torch.tensor([0.7], dtype=F64), torch.tensor([math.log(1.5**2)], dtype=F64)
        ll = gaussian_log_likelihood(xs, mean, log_var)
        assert (ll.exp().sum() * (xs[1, 0] - xs[0, 0])).item() == pytest.approx(1.0, abs=1e-10)
        assert xs[ll.argmax(), 0].item() == pytest.approx(0.7, abs=1e-3)

    def test_bad_input(self):
        with pytest.raises(ValueError, match="x"):
            gaussian_log_likelihood(torch.tensor([float("nan")]), torch.zeros(1))
        with pytest.raises(ValueError, match="x .* mean"):
            gaussian_log_likelihood(torch.zeros(2, 3), torch.zeros(2, 4))
        with pytest.raises(ValueError, match="log_var"):
            gaussian_log_likelihood(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 2))
        with pytest.raises(ValueError, match="log_var"):
            gaussian_log_likelihood(torch.zeros(2, 3), torch.zeros(2, 3), float("inf"))


# ---------------------------------------------------------------------------------------------------------
# Bernoulli
# ---------------------------------------------------------------------------------------------------------
class TestBernoulli:
    @given(seed=seeds, batch=st.integers(1, 5), dim=st.integers(1, 10))
    def test_equals_torch_bernoulli_for_binary_x(self, seed, batch, dim):
        g = gen(seed)
        x = torch.randint(0, 2, (batch, dim), generator=g).to(F64)
        logits = 4 * torch.randn(batch, dim, generator=g, dtype=F64)
        got = bernoulli_log_likelihood(x, logits)
        assert got.shape == (batch,)
        torch.testing.assert_close(got, Bernoulli(logits=logits).log_prob(x).sum(-1), rtol=1e-12, atol=1e-12)
        bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
        torch.testing.assert_close(got, -bce, rtol=1e-12, atol=1e-12)

    def test_grey_levels_are_the_unnormalised_continuous_bernoulli(self):
        g = gen(1)
        x = torch.rand(4, 6, generator=g, dtype=F64)
        logits = torch.randn(4, 6, generator=g, dtype=F64)
        expected = (x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)).sum(-1)
        torch.testing.assert_close(bernoulli_log_likelihood(x, logits), expected, rtol=1e-12, atol=1e-12)

    def test_broadcasting_x_against_samples_of_logits(self):
        g = gen(2)
        x = torch.randint(0, 2, (3, 5), generator=g).float()  # (B, D)
        logits = torch.randn(4, 3, 5, generator=g)  # (K, B, D)
        got = bernoulli_log_likelihood(x, logits)
        assert got.shape == (4, 3)
        for k in range(4):
            torch.testing.assert_close(got[k], bernoulli_log_likelihood(x, logits[k]))

    def test_normalised_over_all_binary_images(self):
        logits = torch.tensor([0.3, -1.7, 2.2], dtype=F64)
        images = torch.tensor(list(itertools.product([0.0, 1.0], repeat=3)), dtype=F64)  # all 8 images
        assert bernoulli_log_likelihood(images, logits).exp().sum().item() == pytest.approx(1.0, abs=1e-14)

    def test_stable_for_extreme_logits(self):
        logits = torch.tensor([[100.0, -100.0]])
        x = torch.tensor([[1.0, 0.0]])
        got = bernoulli_log_likelihood(x, logits)
        assert torch.isfinite(got).all() and got.item() == pytest.approx(0.0, abs=1e-30)
        got = bernoulli_log_likelihood(1 - x, logits)  # the wrong pixels: log sigmoid(−100) ≈ −100 each
        assert got.item() == pytest.approx(-200.0, rel=1e-6)

    @pytest.mark.parametrize("value", [-0.1, 1.5, 16.0])
    def test_x_outside_unit_interval(self, value):
        with pytest.raises(ValueError, match="x"):
            bernoulli_log_likelihood(torch.tensor([[0.0, value]]), torch.zeros(1, 2))

    def test_shapes_that_do_not_broadcast(self):
        with pytest.raises(ValueError, match="x .* logits"):
            bernoulli_log_likelihood(torch.zeros(2, 3), torch.zeros(2, 4))


# ---------------------------------------------------------------------------------------------------------
# Categorical over pixel levels
# ---------------------------------------------------------------------------------------------------------
class TestCategorical:
    @given(seed=seeds, batch=st.integers(1, 5), dim=st.integers(1, 10), as_float=st.booleans())
    def test_equals_torch_categorical(self, seed, batch, dim, as_float):
        g = gen(seed)
        x = torch.randint(0, 17, (batch, dim), generator=g)
        logits = 3 * torch.randn(batch, dim, 17, generator=g, dtype=F64)
        got = categorical_log_likelihood(x.to(F64) if as_float else x, logits)
        assert got.shape == (batch,)
        torch.testing.assert_close(got, Categorical(logits=logits).log_prob(x).sum(-1), rtol=1e-12, atol=1e-12)

    def test_levels_include_both_ends(self):
        logits = torch.randn(1, 2, 17, generator=gen(1), dtype=F64)
        x = torch.tensor([[0, 16]])
        expected = torch.log_softmax(logits, -1)[0, 0, 0] + torch.log_softmax(logits, -1)[0, 1, 16]
        assert categorical_log_likelihood(x, logits).item() == pytest.approx(expected.item(), abs=1e-14)

    def test_normalised_over_levels(self):
        # D = 1: Σ over the 17 levels of p(x) = 1
        logits = 2 * torch.randn(1, 17, generator=gen(2), dtype=F64)  # (D=1, L)
        levels = torch.arange(17).unsqueeze(-1)  # (17, 1): 17 one-pixel images
        ll = categorical_log_likelihood(levels, logits)
        assert ll.shape == (17,)
        assert ll.exp().sum().item() == pytest.approx(1.0, abs=1e-13)
        # D = 2: Σ over all 17² images = 1
        logits = 2 * torch.randn(2, 17, generator=gen(3), dtype=F64)
        images = torch.cartesian_prod(torch.arange(17), torch.arange(17))  # (289, 2)
        assert categorical_log_likelihood(images, logits).exp().sum().item() == pytest.approx(1.0, abs=1e-13)

    def test_broadcasting_x_against_samples_of_logits(self):
        g = gen(4)
        x = torch.randint(0, 17, (3, 5), generator=g).float()  # (B, D)
        logits = torch.randn(4, 3, 5, 17, generator=g)  # (K, B, D, L)
        got = categorical_log_likelihood(x, logits)
        assert got.shape == (4, 3)
        for k in range(4):
            torch.testing.assert_close(got[k], Categorical(logits=logits[k]).log_prob(x.long()).sum(-1))

    def test_uniform_logits_give_minus_d_log_levels(self):
        x = torch.randint(0, 17, (3, 64), generator=gen(5))
        got = categorical_log_likelihood(x, torch.zeros(3, 64, 17, dtype=F64))
        torch.testing.assert_close(got, torch.full((3,), -64 * math.log(17), dtype=F64))

    @pytest.mark.parametrize("x", [[[0.5, 1.0]], [[17.0, 1.0]], [[-1.0, 1.0]], [[float("nan"), 1.0]]],
                             ids=["non-integer", "too-large", "negative", "nan"])
    def test_bad_levels(self, x):
        with pytest.raises(ValueError, match="x"):
            categorical_log_likelihood(torch.tensor(x), torch.zeros(1, 2, 17))

    def test_mismatched_number_of_pixels(self):
        with pytest.raises(ValueError, match="x .* logits .* D"):
            categorical_log_likelihood(torch.zeros(2, 5), torch.zeros(2, 4, 17))

    def test_mismatched_batch(self):
        with pytest.raises(ValueError, match="x .* logits"):
            categorical_log_likelihood(torch.zeros(3, 4), torch.zeros(2, 4, 17))

    def test_logits_need_a_level_axis(self):
        with pytest.raises(ValueError, match="logits"):
            categorical_log_likelihood(torch.zeros(4), torch.zeros(17))


# ---------------------------------------------------------------------------------------------------------
# a probability of the integer image, in nats per image and bits per dimension (chapter 7)
# ---------------------------------------------------------------------------------------------------------
class TestImageProbability:
    def test_categorical_sums_to_one_over_all_images(self):
        # D = 3 pixels, 4 levels: the 4³ = 64 possible images share the total probability 1
        logits = 2 * torch.randn(3, 4, generator=gen(10), dtype=F64)  # (D, levels)
        images = torch.tensor(list(itertools.product(range(4), repeat=3)))  # (64, 3)
        assert images.shape == (64, 3) and len({tuple(r) for r in images.tolist()}) == 64
        total = categorical_log_likelihood(images, logits).exp().sum().item()
        assert total == pytest.approx(1.0, abs=1e-6)
        # the most probable image (every pixel at its largest logit) holds a visible share of that mass
        mode = logits.argmax(-1).unsqueeze(0)  # (1, 3)
        assert categorical_log_likelihood(mode, logits).exp().item() == pytest.approx(
            torch.softmax(logits, -1).max(-1).values.prod().item(), rel=1e-12)

    def test_uniform_categorical_over_16_levels_is_4_bits_per_dim(self):
        from vae_lib.evaluation import bits_per_dim
        d = 1024
        x = torch.randint(0, 16, (2, d), generator=gen(11))
        nats = -categorical_log_likelihood(x, torch.zeros(d, 16, dtype=F64))  # (2,) = D ln 16 each
        torch.testing.assert_close(nats, torch.full((2,), d * math.log(16), dtype=F64))
        assert bits_per_dim(nats[0].item(), d) == pytest.approx(4.0, abs=1e-12)
        torch.testing.assert_close(bits_per_dim(nats, d), torch.full((2,), 4.0, dtype=F64))
        assert bits_per_dim(d * math.log(256), d) == pytest.approx(8.0, abs=1e-12)  # 8-bit images: 8 bits/dim

    def test_bits_per_dim_is_nats_over_d_ln_2(self):
        from vae_lib.evaluation import bits_per_dim
        assert bits_per_dim(100.0, 64) == pytest.approx(100.0 / (64 * math.log(2)), rel=1e-15)
        assert isinstance(bits_per_dim(1, 1), float)

    def test_bits_per_dim_bad_arguments(self):
        from vae_lib.evaluation import bits_per_dim
        with pytest.raises(ValueError, match="n_dims"):
            bits_per_dim(10.0, 0)
        with pytest.raises(TypeError, match="n_dims"):
            bits_per_dim(10.0, 2.5)
        with pytest.raises(TypeError, match="nats_per_image"):
            bits_per_dim("10", 4)
        with pytest.raises(ValueError, match="nats_per_image"):
            bits_per_dim(float("inf"), 4)
