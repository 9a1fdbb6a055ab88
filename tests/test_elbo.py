"""vae_lib.elbo: the three forms of the ELBO, Jensen's gap and the importance-weighted bound.

Everything is checked on the linear-Gaussian model of vae_lib.toy, where log p(x), the posterior p(z|x)
and the ELBO of any Gaussian q are known in closed form (float64 throughout).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.distributions import Independent, MultivariateNormal, Normal

from vae_lib.elbo import (
    elbo_evidence_minus_gap,
    elbo_joint_plus_entropy,
    elbo_reconstruction_minus_kl,
    iwae_bound,
    log_importance_weights,
    log_marginal_importance,
    repeated_log_marginal_estimates,
)
from vae_lib.gaussian import diag_gaussian, kl_full_gaussians, sample
from vae_lib.toy import LinearGaussianModel

F64 = torch.float64
D, L, B = 3, 2, 4


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def make_model(seed: int = 0, sigma: float = 0.5) -> LinearGaussianModel:
    g = gen(seed)
    return LinearGaussianModel(torch.randn(D, L, generator=g, dtype=F64), torch.randn(D, generator=g, dtype=F64), sigma)


@pytest.fixture(scope="module")
def model() -> LinearGaussianModel:
    return make_model()


@pytest.fixture(scope="module")
def x(model) -> torch.Tensor:
    return model.sample(B, generator=gen(1))[0]  # (B, D)


def random_q(kind: str, seed: int, batch: int = B):
    """A random Gaussian q(z|x) per row: diagonal (Independent(Normal)) or full (MultivariateNormal)."""
    g = gen(seed)
    mean = torch.randn(batch, L, generator=g, dtype=F64)
    if kind == "diag":
        return diag_gaussian(mean, torch.randn(batch, L, generator=g, dtype=F64) - 1.0)
    a = torch.randn(batch, L, L, generator=g, dtype=F64)
    cov = a @ a.transpose(-1, -2) / L + 0.05 * torch.eye(L, dtype=F64)
    return MultivariateNormal(mean, 0.5 * (cov + cov.transpose(-1, -2)))


def mean_cov(q):
    if isinstance(q, MultivariateNormal):
        return q.loc, q.covariance_matrix
    return q.mean, torch.diag_embed(q.variance)


def exact_elbo(model, x, q):
    """E_q[log p(x|z)] − KL(q || N(0, I)), both in closed form."""
    m, s = mean_cov(q)
    return model.expected_log_likelihood(x, m, s) - kl_full_gaussians(m, s, torch.zeros(L, dtype=F64),
                                                                     torch.eye(L, dtype=F64))


KINDS = ["diag", "full"]


# ---------------------------------------------------------------------------------------------------------
# the three forms, with exact numbers
# ---------------------------------------------------------------------------------------------------------
class TestThreeFormsExact:
    @pytest.mark.parametrize("kind", KINDS)
    @pytest.mark.parametrize("seed", [10, 11, 12])
    def test_reconstruction_minus_kl_equals_evidence_minus_gap(self, model, x, kind, seed):
        q = random_q(kind, seed)
        elbo = exact_elbo(model, x, q)
        assert elbo.shape == (B,)
        got = elbo_evidence_minus_gap(model.log_marginal(x), model.posterior(x), q)
        torch.testing.assert_close(got, elbo, rtol=0, atol=1e-9)
        # the same gap computed by our own closed form instead of torch's kl_divergence
        m, s = mean_cov(q)
        post = model.posterior(x)
        gap = kl_full_gaussians(m, s, post.loc, post.covariance_matrix)
        torch.testing.assert_close(model.log_marginal(x) - gap, elbo, rtol=0, atol=1e-9)

    @pytest.mark.parametrize("kind", KINDS)
    def test_joint_plus_entropy_in_closed_form(self, model, x, kind):
        q = random_q(kind, 13)
        m, s = mean_cov(q)
        # E_q[log N(z; 0, I)] = −(L/2) log 2π − ½ (‖m‖² + tr S)
        trace = torch.diagonal(s, 0, -2, -1).sum(-1)
        expected_log_prior = -0.5 * L * math.log(2 * math.pi) - 0.5 * ((m**2).sum(-1) + trace)
        joint_plus_entropy = model.expected_log_likelihood(x, m, s) + expected_log_prior + q.entropy()
        torch.testing.assert_close(joint_plus_entropy, exact_elbo(model, x, q), rtol=0, atol=1e-9)

    def test_expected_log_likelihood_of_a_point_mass_is_the_log_likelihood(self, model, x):
        # S = 0: E_q[log p(x|z)] = log p(x|m)
        m = torch.randn(B, L, generator=gen(14), dtype=F64)
        got = model.expected_log_likelihood(x, m, torch.zeros(L, L, dtype=F64))
        torch.testing.assert_close(got, model.log_likelihood(x, m.unsqueeze(0))[0], rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------------------------------------
# the Monte Carlo forms against the exact ELBO
# ---------------------------------------------------------------------------------------------------------
K_MC = 4000


class TestMonteCarloForms:
    @pytest.mark.parametrize("kind", KINDS)
    @pytest.mark.parametrize("seed", [20, 21])
    def test_joint_plus_entropy_within_4_standard_errors(self, model, x, kind, seed):
        q = random_q(kind, seed)
        est = elbo_joint_plus_entropy(x, model, q, K_MC, generator=gen(seed))
        # the same generator seed reproduces the samples, so we can recompute the per-sample terms
        z = sample(q, K_MC, generator=gen(seed))  # (K, B, L)
        terms = model.log_likelihood(x, z) + model.prior.log_prob(z)  # (K, B)
        torch.testing.assert_close(est, terms.mean(0) + q.entropy(), rtol=0, atol=1e-10)
        se = terms.std(0) / math.sqrt(K_MC)
        assert ((est - exact_elbo(model, x, q)).abs() < 4 * se).all()

    @pytest.mark.parametrize("kind", KINDS)
    @pytest.mark.parametrize("seed", [20, 21])
    def test_reconstruction_minus_kl_within_4_standard_errors(self, model, x, kind, seed):
        q = random_q(kind, seed)
        est = elbo_reconstruction_minus_kl(x, model, q, K_MC, generator=gen(seed))
        z = sample(q, K_MC, generator=gen(seed))
        terms = model.log_likelihood(x, z)  # (K, B)
        m, s = mean_cov(q)
        kl = kl_full_gaussians(m, s, torch.zeros(L, dtype=F64), torch.eye(L, dtype=F64))
        torch.testing.assert_close(est, terms.mean(0) - kl, rtol=0, atol=1e-10)
        se = terms.std(0) / math.sqrt(K_MC)
        assert ((est - exact_elbo(model, x, q)).abs() < 4 * se).all()

    @pytest.mark.parametrize("kind", KINDS)
    def test_the_two_monte_carlo_forms_agree(self, model, x, kind):
        q = random_q(kind, 22)
        a = elbo_joint_plus_entropy(x, model, q, K_MC, generator=gen(23))
        b = elbo_reconstruction_minus_kl(x, model, q, K_MC, generator=gen(23))
        # with the same z's the difference is mean_k[log p(z_k)] + H[q] + KL(q || p), whose expectation is 0
        z = sample(q, K_MC, generator=gen(23))
        d = model.prior.log_prob(z)  # (K, B)
        se = d.std(0) / math.sqrt(K_MC)
        assert ((a - b).abs() < 4 * se).all()

    def test_repeated_seeds_scatter_like_the_standard_error(self, model, x):
        q = random_q("diag", 24)
        ests = torch.stack([elbo_reconstruction_minus_kl(x, model, q, 200, generator=gen(s)) for s in range(40)])
        mean, se = ests.mean(0), ests.std(0) / math.sqrt(40)
        assert ((mean - exact_elbo(model, x, q)).abs() < 4 * se).all()

    def test_gradient_of_the_elbo_reaches_q(self, model, x):
        mean = torch.zeros(B, L, dtype=F64, requires_grad=True)
        log_var = torch.zeros(B, L, dtype=F64, requires_grad=True)
        elbo_reconstruction_minus_kl(x, model, diag_gaussian(mean, log_var), 10, generator=gen(25)).sum().backward()
        assert mean.grad is not None and log_var.grad is not None
        assert mean.grad.abs().sum() > 0 and log_var.grad.abs().sum() > 0


# ---------------------------------------------------------------------------------------------------------
# Jensen: ELBO <= log p(x), with equality at the exact posterior
# ---------------------------------------------------------------------------------------------------------
class TestJensen:
    @given(seed=st.integers(0, 2**31 - 1), kind=st.sampled_from(KINDS))
    def test_elbo_below_log_evidence_for_any_q(self, model, x, seed, kind):
        q = random_q(kind, seed)
        gap = model.log_marginal(x) - exact_elbo(model, x, q)
        assert (gap >= 0).all()
        assert (gap > 1e-6).all()  # a random q is not the posterior

    def test_equality_at_the_exact_posterior(self, model, x):
        post = model.posterior(x)
        log_px = model.log_marginal(x)
        torch.testing.assert_close(exact_elbo(model, x, post), log_px, rtol=0, atol=1e-9)
        torch.testing.assert_close(elbo_evidence_minus_gap(log_px, post, post), log_px, rtol=0, atol=1e-12)

    def test_importance_weights_are_constant_at_the_exact_posterior(self, model, x):
        post = model.posterior(x)
        log_px = model.log_marginal(x)
        w = log_importance_weights(x, model, post, 50, generator=gen(30))
        assert w.shape == (50, B)
        # log p(x, z) − log p(z|x) = log p(x) for every z: zero variance
        torch.testing.assert_close(w, log_px.expand(50, B), rtol=0, atol=1e-9)
        for k in (1, 7, 100):
            est = log_marginal_importance(x, model, post, k, generator=gen(31 + k))
            torch.testing.assert_close(est, log_px, rtol=0, atol=1e-9)


# ---------------------------------------------------------------------------------------------------------
# the importance-weighted bound
# ---------------------------------------------------------------------------------------------------------
class TestIWAE:
    @given(seed=st.integers(0, 2**31 - 1), k=st.integers(1, 30), batch=st.integers(1, 4))
    def test_equals_log_mean_exp_in_float64(self, seed, k, batch):
        w = np.random.default_rng(seed).uniform(-20, 20, size=(k, batch))
        expected = np.log(np.mean(np.exp(w), axis=0))
        got = iwae_bound(torch.as_tensor(w))
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-12)
        # log-mean-exp lies between the mean and the maximum of the log-weights (Jensen, per draw)
        assert (got.numpy() >= w.mean(0) - 1e-12).all() and (got.numpy() <= w.max(0) + 1e-12).all()

    @pytest.mark.parametrize("offset", [-1000.0, 1000.0])
    def test_stable_for_huge_log_weights(self, offset):
        w = torch.randn(50, 3, generator=gen(40), dtype=F64)
        got = iwae_bound(w + offset)
        assert torch.isfinite(got).all()
        torch.testing.assert_close(got, iwae_bound(w) + offset, rtol=0, atol=1e-10)
        # float32 too (exp(−1000) underflows to 0 in either precision)
        got32 = iwae_bound((w + offset).float())
        assert torch.isfinite(got32).all()
        torch.testing.assert_close(got32.double(), iwae_bound(w) + offset, rtol=0, atol=1e-3)

    def test_one_sample_is_the_weight_itself(self):
        w = torch.tensor([[-3.2, 0.7, -1000.0]], dtype=F64)
        torch.testing.assert_close(iwae_bound(w), w[0], rtol=0, atol=1e-14)

    def test_equal_weights_give_the_weight(self):
        torch.testing.assert_close(iwae_bound(torch.full((17, 2), -4.5, dtype=F64)),
                                   torch.full((2,), -4.5, dtype=F64), rtol=0, atol=1e-13)

    def test_expected_bound_increases_with_k_and_stays_below_log_evidence(self, model, x):
        # a deliberately poor q (shifted mean, wrong width) so that L_1 < L_5 < L_50 < log p(x) is visible
        post = model.posterior(x)
        q_mean, q_log_var = post.loc + 0.5, torch.full((B, L), math.log(0.3), dtype=F64)
        reps = 2000
        x_rep = x.repeat(reps, 1)  # (reps·B, D): each row an independent repetition
        q_rep = diag_gaussian(q_mean.repeat(reps, 1), q_log_var.repeat(reps, 1))
        log_px = model.log_marginal(x)
        bounds, ses = {}, {}
        for k in (1, 5, 50):
            est = log_marginal_importance(x_rep, model, q_rep, k, generator=gen(50 + k)).view(reps, B)
            bounds[k], ses[k] = est.mean(0), est.std(0) / math.sqrt(reps)
        # L_1 is the ELBO
        elbo = exact_elbo(model, x, diag_gaussian(q_mean, q_log_var))
        assert ((bounds[1] - elbo).abs() < 4 * ses[1]).all()
        # non-decreasing in K, beyond the error bars here since the gap is large
        for k_small, k_big in ((1, 5), (5, 50)):
            se_diff = torch.sqrt(ses[k_small] ** 2 + ses[k_big] ** 2)
            assert (bounds[k_big] > bounds[k_small] + 3 * se_diff).all()
        assert (bounds[50] < log_px + 3 * ses[50]).all()
        assert (elbo < log_px).all()

    def test_naive_monte_carlo_with_the_prior(self, model, x):
        """q = p(z) (no batch shape, shared by all rows): log (1/K) Σ p(x|z_k) approaches log p(x)."""
        log_px = model.log_marginal(x)
        est = log_marginal_importance(x, model, model.prior, 1000, generator=gen(60))
        w = log_importance_weights(x, model, model.prior, 1000, generator=gen(60))
        torch.testing.assert_close(est, iwae_bound(w), rtol=0, atol=1e-12)
        errors = {}
        for k in (1000, 100_000):
            w = log_importance_weights(x, model, model.prior, k, generator=gen(61))
            est = iwae_bound(w)
            # the delta-method standard error of log(mean w): std(w) / (mean(w) √K)
            ratio = torch.exp(w - w.max(0).values)
            se = ratio.std(0) / ratio.mean(0) / math.sqrt(k)
            assert ((est - log_px).abs() < 4 * se).all()
            errors[k] = se
        assert (errors[100_000] < 0.05).all()
        assert (errors[100_000] < errors[1000] / 6).all()  # 100x the samples, ~10x smaller

    def test_the_prior_is_accepted_as_q_by_every_estimator(self, model, x):
        for fn in (elbo_joint_plus_entropy, elbo_reconstruction_minus_kl, log_marginal_importance):
            out = fn(x, model, model.prior, 5, generator=gen(61))
            assert out.shape == (B,) and torch.isfinite(out).all()
        # with q = p(z) the KL term vanishes: reconstruction − KL = the mean log-likelihood
        z = sample(model.prior.expand(torch.Size([B])), 5, generator=gen(62))  # (K, B, L): the prior, once per row
        expected = model.log_likelihood(x, z).mean(0)
        got = elbo_reconstruction_minus_kl(x, model, model.prior, 5, generator=gen(62))
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)

    def test_k_below_one(self, model, x):
        with pytest.raises(ValueError, match="n_samples"):
            log_marginal_importance(x, model, model.posterior(x), 0, generator=gen(0))
        with pytest.raises(ValueError, match="log_weights"):
            iwae_bound(torch.zeros(0, 3))
        with pytest.raises(ValueError, match="log_weights"):
            iwae_bound(torch.zeros(5))


class TestRepeatedEstimates:
    def test_exact_posterior_gives_log_evidence_in_every_repetition(self, model, x):
        x1 = x[:1]
        got = repeated_log_marginal_estimates(x1, model, model.posterior(x1), [1, 10, 100], 5, generator=gen(70))
        assert got.shape == (5, 3)
        torch.testing.assert_close(got, model.log_marginal(x1).expand(5, 3), rtol=0, atol=1e-9)

    def test_naive_estimates_concentrate_on_log_evidence(self, model, x):
        x1 = x[:1]
        log_px = model.log_marginal(x1)[0]
        sizes = [10, 10_000]
        got = repeated_log_marginal_estimates(x1, model, model.prior, sizes, 50, generator=gen(71))
        assert got.shape == (50, 2)
        spread = got.std(0)
        assert spread[1] < spread[0] / 5  # 1000x the samples: a much smaller spread
        # every estimate has expectation L_N <= log p(x); at N = 10 000 they sit close to it
        assert got[:, 1].mean() < log_px + 3 * spread[1] / math.sqrt(50)
        assert (got[:, 1] - log_px).abs().max() < 0.5

    def test_bad_input(self, model, x):
        with pytest.raises(ValueError, match="x"):
            repeated_log_marginal_estimates(x, model, model.prior, [10], 3, generator=gen(0))
        with pytest.raises(ValueError, match="q"):
            repeated_log_marginal_estimates(x[:1], model, model.posterior(x), [10], 3, generator=gen(0))
        with pytest.raises(ValueError, match="repeats"):
            repeated_log_marginal_estimates(x[:1], model, model.prior, [10], 0, generator=gen(0))
        with pytest.raises(ValueError, match="sample_sizes"):
            repeated_log_marginal_estimates(x[:1], model, model.prior, [0], 3, generator=gen(0))


# ---------------------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------------------
ESTIMATORS = [elbo_joint_plus_entropy, elbo_reconstruction_minus_kl, log_importance_weights, log_marginal_importance]


@pytest.mark.parametrize("fn", ESTIMATORS, ids=lambda f: f.__name__)
class TestBadInput:
    def test_q_with_wrong_latent_size(self, model, x, fn):
        q = diag_gaussian(torch.zeros(B, L + 1, dtype=F64), torch.zeros(B, L + 1, dtype=F64))
        with pytest.raises(ValueError, match="latent size"):
            fn(x, model, q, 3, generator=gen(0))

    def test_q_batch_not_matching_rows_of_x(self, model, x, fn):
        q = diag_gaussian(torch.zeros(B - 1, L, dtype=F64), torch.zeros(B - 1, L, dtype=F64))
        with pytest.raises(ValueError, match="batch shape"):
            fn(x, model, q, 3, generator=gen(0))
        q = Independent(Normal(torch.zeros(2, B, L, dtype=F64), 1.0), 1)  # batch (2, B): one q per row only
        with pytest.raises(ValueError, match="batch shape"):
            fn(x, model, q, 3, generator=gen(0))

    def test_x_with_nan(self, model, x, fn):
        bad = x.clone()
        bad[1, 2] = float("nan")
        with pytest.raises(ValueError, match="x contains NaN"):
            fn(bad, model, model.posterior(x), 3, generator=gen(0))

    def test_x_not_2d(self, model, x, fn):
        with pytest.raises(ValueError, match="x must have 2 dimension"):
            fn(x[0], model, model.prior, 3, generator=gen(0))

    def test_x_with_wrong_data_size(self, model, x, fn):
        with pytest.raises(ValueError, match="x"):
            fn(torch.zeros(B, D + 1, dtype=F64), model, model.prior, 3, generator=gen(0))

    def test_q_not_a_distribution(self, model, x, fn):
        with pytest.raises(TypeError, match="q"):
            fn(x, model, (torch.zeros(B, L), torch.ones(B, L)), 3, generator=gen(0))

    def test_bad_sample_count_and_generator(self, model, x, fn):
        with pytest.raises(ValueError, match="n_samples"):
            fn(x, model, model.prior, 0, generator=gen(0))
        with pytest.raises(TypeError, match="generator"):
            fn(x, model, model.prior, 3, generator=0)


def test_evidence_minus_gap_bad_input(model, x):
    q = diag_gaussian(torch.zeros(B, L + 1, dtype=F64), torch.zeros(B, L + 1, dtype=F64))
    with pytest.raises(ValueError, match="latent size"):
        elbo_evidence_minus_gap(model.log_marginal(x), model.posterior(x), q)
    with pytest.raises(ValueError, match="log_evidence"):
        elbo_evidence_minus_gap(model.log_marginal(x)[None], model.posterior(x), model.posterior(x))
