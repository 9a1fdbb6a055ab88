"""vae_lib.gaussian: closed-form KL divergences, their Monte Carlo estimate, and reparameterized sampling.

References are torch.distributions (kl_divergence, log_prob) and hand-computed closed forms.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.distributions import Independent, Laplace, MultivariateNormal, Normal, kl_divergence

from vae_lib.gaussian import (
    diag_gaussian,
    kl_diag_gaussian_std_normal,
    kl_diag_gaussians,
    kl_full_gaussians,
    kl_monte_carlo,
    sample,
    standard_normal_prior,
)

F64 = torch.float64
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-10, atol=1e-10)}


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_spd(g: torch.Generator, *shape: int, dtype=F64) -> torch.Tensor:
    """A random symmetric positive-definite matrix (or batch of them): A Aᵀ + 0.1 I, made exactly symmetric."""
    n = shape[-1]
    a = torch.randn(*shape, n, generator=g, dtype=dtype)
    cov = a @ a.transpose(-1, -2) / n + 0.1 * torch.eye(n, dtype=dtype)
    return 0.5 * (cov + cov.transpose(-1, -2))


# strategies: a seed for torch, a batch shape, a latent size and a dtype
seeds = st.integers(0, 2**31 - 1)
batch_shapes = st.lists(st.integers(1, 4), max_size=2).map(tuple)
latent_sizes = st.integers(1, 5)
dtypes = st.sampled_from([torch.float32, torch.float64])


# ---------------------------------------------------------------------------------------------------------
# diagonal KL
# ---------------------------------------------------------------------------------------------------------
class TestDiagonalKL:
    @given(seed=seeds, batch=batch_shapes, latent=latent_sizes, dtype=dtypes)
    def test_kl_diag_gaussians_equals_torch(self, seed, batch, latent, dtype):
        g = gen(seed)
        shape = (*batch, latent)
        mq, mp = 2 * torch.randn(shape, generator=g, dtype=dtype), 2 * torch.randn(shape, generator=g, dtype=dtype)
        lq = 4 * torch.rand(shape, generator=g, dtype=dtype) - 2
        lp = 4 * torch.rand(shape, generator=g, dtype=dtype) - 2
        expected = kl_divergence(Independent(Normal(mq, torch.exp(0.5 * lq)), 1),
                                 Independent(Normal(mp, torch.exp(0.5 * lp)), 1))
        got = kl_diag_gaussians(mq, lq, mp, lp)
        assert got.shape == batch
        assert got.dtype == dtype
        torch.testing.assert_close(got, expected, **TOL[dtype])

    @given(seed=seeds, batch=batch_shapes, latent=latent_sizes, dtype=dtypes)
    def test_kl_diag_gaussian_std_normal_equals_torch(self, seed, batch, latent, dtype):
        g = gen(seed)
        shape = (*batch, latent)
        m = 2 * torch.randn(shape, generator=g, dtype=dtype)
        lv = 4 * torch.rand(shape, generator=g, dtype=dtype) - 2
        prior = Independent(Normal(torch.zeros(latent, dtype=dtype), torch.ones(latent, dtype=dtype)), 1)
        expected = kl_divergence(Independent(Normal(m, torch.exp(0.5 * lv)), 1), prior)
        got = kl_diag_gaussian_std_normal(m, lv)
        assert got.shape == batch
        torch.testing.assert_close(got, expected, **TOL[dtype])
        # ... and is the special case p = N(0, I) of the general formula
        zeros = torch.zeros_like(m)
        torch.testing.assert_close(got, kl_diag_gaussians(m, lv, zeros, zeros), **TOL[dtype])

    def test_hand_computed_values(self):
        # KL(N(1, e) || N(0, 1)) = ½ (1 + e − 1 − 1) = (e − 1)/2
        got = kl_diag_gaussian_std_normal(torch.tensor([1.0], dtype=F64), torch.tensor([1.0], dtype=F64))
        assert got.item() == pytest.approx((math.e - 1) / 2, abs=1e-15)
        # KL(N(0, 1) || N(2, 4)) = ½ (log 4 + (1 + 4)/4 − 1)
        got = kl_diag_gaussians(torch.tensor([0.0], dtype=F64), torch.tensor([0.0], dtype=F64),
                                torch.tensor([2.0], dtype=F64), torch.tensor([math.log(4.0)], dtype=F64))
        assert got.item() == pytest.approx(0.5 * (math.log(4) + 5 / 4 - 1), abs=1e-15)
        # the KL of independent coordinates is the sum over coordinates
        m, lv = torch.tensor([[0.3, -1.2]], dtype=F64), torch.tensor([[0.5, -0.7]], dtype=F64)
        per_coord = [kl_diag_gaussian_std_normal(m[:, j:j + 1], lv[:, j:j + 1]) for j in range(2)]
        torch.testing.assert_close(kl_diag_gaussian_std_normal(m, lv), per_coord[0] + per_coord[1])

    def test_broadcasting_against_an_unbatched_prior(self):
        g = gen(1)
        mq, lq = torch.randn(5, 3, generator=g, dtype=F64), torch.randn(5, 3, generator=g, dtype=F64)
        mp, lp = torch.randn(3, generator=g, dtype=F64), torch.randn(3, generator=g, dtype=F64)
        got = kl_diag_gaussians(mq, lq, mp, lp)
        assert got.shape == (5,)
        for i in range(5):
            torch.testing.assert_close(got[i], kl_diag_gaussians(mq[i], lq[i], mp, lp))

    @given(seed=seeds, batch=batch_shapes, latent=latent_sizes)
    def test_self_kl_is_zero_and_kl_is_nonnegative(self, seed, batch, latent):
        g = gen(seed)
        shape = (*batch, latent)
        mq, mp = torch.randn(shape, generator=g, dtype=F64), torch.randn(shape, generator=g, dtype=F64)
        lq, lp = torch.randn(shape, generator=g, dtype=F64), torch.randn(shape, generator=g, dtype=F64)
        torch.testing.assert_close(kl_diag_gaussians(mq, lq, mq, lq), torch.zeros(batch, dtype=F64),
                                   atol=1e-14, rtol=0)
        assert (kl_diag_gaussians(mq, lq, mp, lp) >= 0).all()
        assert (kl_diag_gaussian_std_normal(mq, lq) >= 0).all()

    def test_gradient_matches_closed_form(self):
        # d/dμ KL(q || N(0, I)) = μ and d/d log σ² = ½ (σ² − 1)
        m = torch.tensor([0.4, -1.5], dtype=F64, requires_grad=True)
        lv = torch.tensor([0.3, -0.8], dtype=F64, requires_grad=True)
        kl_diag_gaussian_std_normal(m, lv).backward()
        torch.testing.assert_close(m.grad, m.detach())
        torch.testing.assert_close(lv.grad, 0.5 * (torch.exp(lv.detach()) - 1))


# ---------------------------------------------------------------------------------------------------------
# full-covariance KL
# ---------------------------------------------------------------------------------------------------------
class TestFullKL:
    @given(seed=seeds, batch=batch_shapes, latent=latent_sizes)
    def test_equals_torch_multivariate_normal(self, seed, batch, latent):
        g = gen(seed)
        mq = torch.randn(*batch, latent, generator=g, dtype=F64)
        mp = torch.randn(*batch, latent, generator=g, dtype=F64)
        sq, sp = random_spd(g, *batch, latent), random_spd(g, *batch, latent)
        expected = kl_divergence(MultivariateNormal(mq, sq), MultivariateNormal(mp, sp))
        got = kl_full_gaussians(mq, sq, mp, sp)
        assert got.shape == batch
        torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9)

    def test_float32_equals_torch(self):
        g = gen(3)
        mq, mp = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
        sq, sp = random_spd(g, 6, 4, dtype=torch.float32), random_spd(g, 6, 4, dtype=torch.float32)
        expected = kl_divergence(MultivariateNormal(mq.double(), sq.double()),
                                 MultivariateNormal(mp.double(), sp.double()))
        got = kl_full_gaussians(mq, sq, mp, sp)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got.double(), expected, rtol=1e-4, atol=1e-4)

    def test_batched_q_against_one_p(self):
        g = gen(4)
        mq, sq = torch.randn(7, 3, generator=g, dtype=F64), random_spd(g, 7, 3)
        mp, sp = torch.randn(3, generator=g, dtype=F64), random_spd(g, 3)
        got = kl_full_gaussians(mq, sq, mp, sp)
        assert got.shape == (7,)
        expected = kl_divergence(MultivariateNormal(mq, sq), MultivariateNormal(mp, sp))
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
        # one covariance shared by a batch of means
        got = kl_full_gaussians(mq, sq[0], mp, sp)
        expected = kl_divergence(MultivariateNormal(mq, sq[0]), MultivariateNormal(mp, sp))
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)

    @given(seed=seeds, batch=batch_shapes, latent=latent_sizes)
    def test_diagonal_covariances_reduce_to_kl_diag(self, seed, batch, latent):
        g = gen(seed)
        shape = (*batch, latent)
        mq, mp = torch.randn(shape, generator=g, dtype=F64), torch.randn(shape, generator=g, dtype=F64)
        lq, lp = torch.randn(shape, generator=g, dtype=F64), torch.randn(shape, generator=g, dtype=F64)
        got = kl_full_gaussians(mq, torch.diag_embed(lq.exp()), mp, torch.diag_embed(lp.exp()))
        torch.testing.assert_close(got, kl_diag_gaussians(mq, lq, mp, lp), rtol=1e-10, atol=1e-10)

    @given(seed=seeds, batch=batch_shapes, latent=latent_sizes)
    def test_self_kl_is_zero_and_kl_is_nonnegative(self, seed, batch, latent):
        g = gen(seed)
        mq = torch.randn(*batch, latent, generator=g, dtype=F64)
        mp = torch.randn(*batch, latent, generator=g, dtype=F64)
        sq, sp = random_spd(g, *batch, latent), random_spd(g, *batch, latent)
        torch.testing.assert_close(kl_full_gaussians(mq, sq, mq, sq), torch.zeros(batch, dtype=F64), atol=1e-12, rtol=0)
        assert (kl_full_gaussians(mq, sq, mp, sp) >= 0).all()

    def test_hand_computed_value(self):
        # KL(N(0, Σ) || N(0, I)) with Σ = [[2, 1], [1, 2]]: ½ (tr Σ − 2 − log det Σ) = ½ (4 − 2 − log 3)
        cov = torch.tensor([[2.0, 1.0], [1.0, 2.0]], dtype=F64)
        zero = torch.zeros(2, dtype=F64)
        got = kl_full_gaussians(zero, cov, zero, torch.eye(2, dtype=F64))
        assert got.item() == pytest.approx(0.5 * (2 - math.log(3)), abs=1e-14)


# ---------------------------------------------------------------------------------------------------------
# Monte Carlo KL
# ---------------------------------------------------------------------------------------------------------
def _diag_pair(g, batch=4, latent=3):
    mq = torch.randn(batch, latent, generator=g, dtype=F64)
    lq = 0.5 * torch.randn(batch, latent, generator=g, dtype=F64)
    mp, lp = torch.randn(latent, generator=g, dtype=F64), 0.5 * torch.randn(latent, generator=g, dtype=F64)
    return (diag_gaussian(mq, lq), diag_gaussian(mp, lp)), kl_diag_gaussians(mq, lq, mp, lp)


def _full_pair(g, batch=4, latent=3):
    mq, sq = torch.randn(batch, latent, generator=g, dtype=F64), random_spd(g, batch, latent)
    mp, sp = torch.randn(latent, generator=g, dtype=F64), random_spd(g, latent) + torch.eye(latent, dtype=F64)
    return (MultivariateNormal(mq, sq), MultivariateNormal(mp, sp)), kl_full_gaussians(mq, sq, mp, sp)


class TestMonteCarloKL:
    @pytest.mark.parametrize("make", [_diag_pair, _full_pair], ids=["diag", "full"])
    @pytest.mark.parametrize("seed", [0, 1, 2])
    def test_agrees_with_closed_form_within_4_standard_errors(self, make, seed):
        (q, p), exact = make(gen(100 + seed))
        est, se = kl_monte_carlo(q, p, 20_000, generator=gen(seed))
        assert est.shape == se.shape == exact.shape == (4,)
        assert (se > 0).all()
        assert ((est - exact).abs() < 4 * se).all(), (est, exact, se)

    def test_standard_error_is_std_over_sqrt_n(self):
        (q, p), _ = _diag_pair(gen(5))
        z = sample(q, 500, generator=gen(6))
        log_ratio = q.log_prob(z) - p.log_prob(z)
        est, se = kl_monte_carlo(q, p, 500, generator=gen(6))  # same generator seed -> the same z
        torch.testing.assert_close(est, log_ratio.mean(0), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(se, log_ratio.std(0) / math.sqrt(500), rtol=1e-12, atol=1e-12)

    def test_standard_error_shrinks_like_one_over_sqrt_n(self):
        (q, p), _ = _full_pair(gen(7))
        _, se_small = kl_monte_carlo(q, p, 400, generator=gen(8))
        _, se_large = kl_monte_carlo(q, p, 40_000, generator=gen(9))
        ratio = se_small / se_large  # 100x the samples -> 10x smaller
        assert ((ratio > 7.5) & (ratio < 13.0)).all(), ratio

    def test_standard_error_is_honest(self):
        # 400 independent estimates (a batch of identical q's): their spread matches the reported standard error
        (q1, p), _ = _diag_pair(gen(10), batch=1)
        q = q1.expand(torch.Size([400]))
        est, se = kl_monte_carlo(q, p, 50, generator=gen(11))
        ratio = est.std() / se.mean()
        assert 0.85 < ratio < 1.15, ratio

    def test_same_seed_same_estimate(self):
        (q, p), _ = _diag_pair(gen(12))
        a = kl_monte_carlo(q, p, 100, generator=gen(13))
        b = kl_monte_carlo(q, p, 100, generator=gen(13))
        c = kl_monte_carlo(q, p, 100, generator=gen(14))
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        assert not torch.equal(a[0], c[0])


# ---------------------------------------------------------------------------------------------------------
# sampling (the reparameterization trick)
# ---------------------------------------------------------------------------------------------------------
class TestSample:
    def test_multivariate_normal_moments(self):
        g = gen(20)
        mu = torch.tensor([1.0, -2.0, 0.5], dtype=F64)
        cov = random_spd(g, 3)
        n = 200_000
        z = sample(MultivariateNormal(mu, cov), n, generator=gen(21))
        assert z.shape == (n, 3)
        assert z.dtype == F64
        # the sample mean has standard deviation sqrt(Σ_ii / n); allow 5 of them
        assert ((z.mean(0) - mu).abs() < 5 * torch.sqrt(torch.diagonal(cov) / n)).all()
        # the sample covariance entry (i, j) has variance (Σ_ii Σ_jj + Σ_ij²) / n for Gaussian data
        emp = torch.cov(z.T)
        sd = torch.sqrt((torch.outer(torch.diagonal(cov), torch.diagonal(cov)) + cov**2) / n)
        assert ((emp - cov).abs() < 5 * sd).all(), (emp, cov)

    def test_is_mu_plus_cholesky_times_standard_noise(self):
        mu = torch.tensor([0.5, -1.0], dtype=F64)
        cov = torch.tensor([[2.0, 0.6], [0.6, 1.0]], dtype=F64)
        z = sample(MultivariateNormal(mu, cov), 10, generator=gen(22))
        eps = torch.randn(10, 2, generator=gen(22), dtype=F64)
        chol = torch.linalg.cholesky(cov)
        torch.testing.assert_close(z, mu + eps @ chol.T, rtol=1e-12, atol=1e-12)

    @pytest.mark.parametrize("kind", ["normal", "independent", "mvn"])
    def test_shapes_for_batched_distributions(self, kind):
        g = gen(23)
        loc = torch.randn(4, 3, generator=g)
        dist = {"normal": Normal(loc, 1.0), "independent": diag_gaussian(loc, torch.zeros(4, 3)),
                "mvn": MultivariateNormal(loc, torch.eye(3))}[kind]
        z = sample(dist, 5, generator=g)
        assert z.shape == (5, 4, 3)
        assert z.dtype == torch.float32
        assert torch.isfinite(dist.log_prob(z)).all()

    def test_diag_gaussian_moments(self):
        mean = torch.tensor([[3.0, -1.0]], dtype=F64)
        log_var = torch.tensor([[math.log(4.0), math.log(0.25)]], dtype=F64)
        z = sample(diag_gaussian(mean, log_var), 100_000, generator=gen(24))
        std = torch.tensor([2.0, 0.5], dtype=F64)
        assert ((z.mean(0)[0] - mean[0]).abs() < 5 * std / math.sqrt(100_000)).all()
        # the sample variance of N(0, s²) data has standard deviation s² sqrt(2 / (n − 1))
        assert ((z.var(0)[0] - std**2).abs() < 5 * std**2 * math.sqrt(2 / 99_999)).all()

    def test_same_seed_same_samples(self):
        q = MultivariateNormal(torch.zeros(3), torch.eye(3) * 2)
        a, b = sample(q, 50, generator=gen(25)), sample(q, 50, generator=gen(25))
        c = sample(q, 50, generator=gen(26))
        assert torch.equal(a, b)
        assert not torch.equal(a, c)

    def test_does_not_touch_the_global_rng(self):
        state = torch.get_rng_state()
        sample(diag_gaussian(torch.zeros(3), torch.zeros(3)), 10, generator=gen(27))
        assert torch.equal(torch.get_rng_state(), state)

    def test_gradients_flow_to_loc_and_scale_tril(self):
        loc = torch.tensor([0.3, -0.2, 1.0], dtype=F64, requires_grad=True)
        scale_tril = torch.tensor([[1.0, 0.0, 0.0], [0.5, 2.0, 0.0], [-0.3, 0.1, 0.7]], dtype=F64, requires_grad=True)
        n = 1000
        z = sample(MultivariateNormal(loc, scale_tril=scale_tril), n, generator=gen(28))  # (n, 3)
        z.mean(0).sum().backward()
        # d/dμ_j of the sample mean of z_j is 1 (and of z_i, i ≠ j, is 0): summing over i gives 1 for every μ_j
        torch.testing.assert_close(loc.grad, torch.ones(3, dtype=F64))
        # z_i = μ_i + Σ_j L_ij ε_j, so d/dL_ij Σ_i mean(z_i) = mean(ε_j)
        eps = torch.randn(n, 3, generator=gen(28), dtype=F64)
        expected = torch.tril(torch.ones(3, 1, dtype=F64) * eps.mean(0))
        torch.testing.assert_close(torch.tril(scale_tril.grad), expected, rtol=1e-12, atol=1e-12)

    def test_per_coordinate_gradient_of_the_mean_is_the_identity(self):
        loc = torch.tensor([0.3, -0.2], dtype=F64, requires_grad=True)
        z = sample(MultivariateNormal(loc, torch.eye(2, dtype=F64) * 0.5), 100, generator=gen(29))
        jac = torch.stack([torch.autograd.grad(z.mean(0)[i], loc, retain_graph=True)[0] for i in range(2)])
        torch.testing.assert_close(jac, torch.eye(2, dtype=F64))

    def test_gradients_flow_to_diag_gaussian_parameters(self):
        mean = torch.tensor([0.3, -0.2], dtype=F64, requires_grad=True)
        log_var = torch.tensor([0.1, -0.5], dtype=F64, requires_grad=True)
        n = 500
        z = sample(diag_gaussian(mean, log_var), n, generator=gen(30))
        z.mean(0).sum().backward()
        torch.testing.assert_close(mean.grad, torch.ones(2, dtype=F64))
        # z = μ + exp(½ log σ²) ε  ->  d/d log σ² mean(z) = ½ σ mean(ε)
        eps = torch.randn(n, 2, generator=gen(30), dtype=F64)
        torch.testing.assert_close(log_var.grad, 0.5 * torch.exp(0.5 * log_var.detach()) * eps.mean(0))


# ---------------------------------------------------------------------------------------------------------
# helpers and bad input
# ---------------------------------------------------------------------------------------------------------
class TestConstructors:
    def test_diag_gaussian_is_independent_normal(self):
        m, lv = torch.tensor([[0.5, -1.0]]), torch.tensor([[0.2, -0.4]])
        q = diag_gaussian(m, lv)
        assert q.batch_shape == (1,) and q.event_shape == (2,)
        torch.testing.assert_close(q.variance, lv.exp())
        x = torch.tensor([[0.1, 0.2]])
        torch.testing.assert_close(q.log_prob(x), Normal(m, torch.exp(0.5 * lv)).log_prob(x).sum(-1))

    def test_standard_normal_prior(self):
        p = standard_normal_prior(3, dtype=F64)
        assert p.event_shape == (3,) and p.batch_shape == ()
        z = torch.tensor([0.5, -1.0, 2.0], dtype=F64)
        expected = -1.5 * math.log(2 * math.pi) - 0.5 * (z**2).sum().item()
        assert p.log_prob(z).item() == pytest.approx(expected, abs=1e-14)


class TestBadInput:
    def test_nan_in_a_mean(self):
        bad = torch.tensor([0.0, float("nan")])
        ok = torch.zeros(2)
        with pytest.raises(ValueError, match="mean_q"):
            kl_diag_gaussians(bad, ok, ok, ok)
        with pytest.raises(ValueError, match="mean_p"):
            kl_full_gaussians(ok, torch.eye(2), bad, torch.eye(2))
        with pytest.raises(ValueError, match="mean"):
            diag_gaussian(bad, ok)
        with pytest.raises(ValueError, match="log_var"):
            kl_diag_gaussian_std_normal(ok, torch.tensor([float("inf"), 0.0]))

    def test_non_spd_covariance(self):
        zero = torch.zeros(2, dtype=F64)
        indefinite = torch.tensor([[1.0, 2.0], [2.0, 1.0]], dtype=F64)  # eigenvalues 3 and −1
        with pytest.raises(ValueError, match="cov_q must be positive definite"):
            kl_full_gaussians(zero, indefinite, zero, torch.eye(2, dtype=F64))
        with pytest.raises(ValueError, match="cov_p must be positive definite"):
            kl_full_gaussians(zero, torch.eye(2, dtype=F64), zero, torch.zeros(2, 2, dtype=F64))

    def test_non_symmetric_covariance(self):
        zero = torch.zeros(2, dtype=F64)
        nonsym = torch.tensor([[2.0, 0.5], [0.0, 2.0]], dtype=F64)
        with pytest.raises(ValueError, match="cov_p must be symmetric"):
            kl_full_gaussians(zero, torch.eye(2, dtype=F64), zero, nonsym)

    def test_covariance_of_wrong_shape(self):
        with pytest.raises(ValueError, match="cov_q"):
            kl_full_gaussians(torch.zeros(3), torch.eye(2), torch.zeros(3), torch.eye(3))

    def test_mismatched_latent_sizes(self):
        with pytest.raises(ValueError, match="mean_q and mean_p"):
            kl_full_gaussians(torch.zeros(3), torch.eye(3), torch.zeros(2), torch.eye(2))
        with pytest.raises(ValueError, match="mean_q and mean_p"):  # (3,) and (1,) broadcast, but are different sizes
            kl_diag_gaussians(torch.zeros(3), torch.zeros(3), torch.zeros(1), torch.zeros(1))
        with pytest.raises(ValueError, match="mean_q"):
            kl_diag_gaussians(torch.zeros(3), torch.zeros(3), torch.zeros(2), torch.zeros(2))
        with pytest.raises(ValueError, match="q and p"):
            kl_monte_carlo(standard_normal_prior(2), standard_normal_prior(3), 10, generator=gen(0))

    def test_zero_dimensional_mean(self):
        with pytest.raises(ValueError, match="mean"):
            kl_diag_gaussian_std_normal(torch.tensor(0.0), torch.tensor(0.0))

    def test_bad_sample_counts(self):
        q = standard_normal_prior(2)
        with pytest.raises(ValueError, match="n_samples"):
            sample(q, 0, generator=gen(0))
        with pytest.raises(TypeError, match="n_samples"):
            sample(q, 2.5, generator=gen(0))
        with pytest.raises(ValueError, match="n_samples"):  # a standard error needs two samples
            kl_monte_carlo(q, q, 1, generator=gen(0))

    @pytest.mark.parametrize("generator", [None, 0, np.random.default_rng(0)], ids=["None", "int", "numpy"])
    def test_generator_must_be_a_torch_generator(self, generator):
        q = standard_normal_prior(2)
        with pytest.raises(TypeError, match="generator"):
            sample(q, 3, generator=generator)
        with pytest.raises(TypeError, match="generator"):
            kl_monte_carlo(q, q, 3, generator=generator)

    def test_non_gaussian_distribution(self):
        with pytest.raises(TypeError, match="dist"):
            sample(Laplace(torch.zeros(2), torch.ones(2)), 3, generator=gen(0))

    def test_bad_latent_dim(self):
        with pytest.raises(ValueError, match="latent_dim"):
            standard_normal_prior(0)

    def test_non_tensor_argument(self):
        with pytest.raises(TypeError, match="mean"):
            diag_gaussian("abc", torch.zeros(2))
