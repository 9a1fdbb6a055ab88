"""vae_lib.gap (chapter 3, "The KL gap"): gap = KL, the two KL directions, L_K against K, the gap decomposition.

Every result is checked against an exact answer: the linear-Gaussian model's closed forms (its posterior is Gaussian,
so the best diagonal Gaussian in each KL direction is known exactly) and the models' own log-likelihoods. The
quadrature itself (log p(x), the posterior, the ELBO, both KL directions, the fits) is tested in test_quadrature.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vae_lib import figures_gap
from vae_lib.elbo import log_marginal_importance
from vae_lib.gap import (
    fit_kl_directions,
    gap_and_kl,
    gap_decomposition,
    iwae_curve,
    non_decreasing_within_error,
    random_diag_gaussians,
)
from vae_lib.gaussian import diag_gaussian, kl_diag_gaussian_std_normal, kl_full_gaussians
from vae_lib.models import VAE, VAEConfig
from vae_lib.quadrature import (
    GaussianFitConfig,
    forward_kl,
    latent_grid,
    log_joint_on_grid,
    log_posterior,
    posterior_moments,
    reverse_kl,
)
from vae_lib.toy import LinearGaussianModel

F64 = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------------------------
# gap = KL(q || p(z|x))
# ---------------------------------------------------------------------------------------------------------
class TestGapEqualsKL:
    def test_closed_form_identity(self, linear, xs):
        # log p(x) − [E_q log p(x|z) − KL(q || p(z))] = KL(q || p(z|x)), every term in closed form
        post = linear.posterior(xs)
        for seed in range(5):
            mean, log_var = random_diag_gaussians(3, 2, mean_range=1.0, sigma_range=(0.2, 1.0), generator=gen(seed))
            cov = torch.diag_embed(log_var.exp())
            elbo = linear.expected_log_likelihood(xs, mean, cov) - kl_diag_gaussian_std_normal(mean, log_var)
            gap = linear.log_marginal(xs) - elbo
            kl = kl_full_gaussians(mean, cov, post.loc, post.covariance_matrix)
            torch.testing.assert_close(gap, kl, rtol=0, atol=1e-10)

    @pytest.mark.slow
    def test_gap_and_kl_agree_on_the_folded_model(self, folded):
        x = torch.tensor([[1.5, 0.5], [-0.5, 0.0], [3.0, -1.0]], dtype=F64)
        mean, log_var = random_diag_gaussians(20, 2, mean_range=1.5, sigma_range=(0.15, 0.8), generator=gen(3))
        gap, kl = gap_and_kl(folded, x, mean, log_var)
        assert gap.shape == (3, 20)
        assert (gap - kl).abs().max() < 1e-4
        assert (kl > 0).all()  # no Gaussian equals this posterior

    @pytest.mark.slow
    def test_gap_and_kl_agree_with_closed_form_on_the_linear_model(self, linear, linear_on_grid, xs):
        mean, log_var = random_diag_gaussians(10, 2, mean_range=1.0, sigma_range=(0.2, 1.0), generator=gen(4))
        gap, kl = gap_and_kl(linear_on_grid, xs, mean, log_var)
        post = linear.posterior(xs)
        exact = kl_full_gaussians(mean.unsqueeze(0), torch.diag_embed(log_var.exp()).unsqueeze(0),
                                  post.loc.unsqueeze(1), post.covariance_matrix.unsqueeze(1))  # (B, K)
        torch.testing.assert_close(gap, exact, rtol=0, atol=1e-6)
        torch.testing.assert_close(kl, exact, rtol=0, atol=1e-6)

    def test_random_diag_gaussians_ranges(self):
        mean, log_var = random_diag_gaussians(500, 2, mean_range=1.5, sigma_range=(0.1, 0.4), generator=gen(5))
        sigma = (0.5 * log_var).exp()
        assert mean.abs().max() <= 1.5 and sigma.min() >= 0.1 and sigma.max() <= 0.4
        assert mean.abs().max() > 1.4 and sigma.min() < 0.11  # the ranges are actually filled


# ---------------------------------------------------------------------------------------------------------
# fitting q in either KL direction
# ---------------------------------------------------------------------------------------------------------
class TestKLDirections:
    @pytest.mark.slow
    def test_forward_kl_optimum_is_moment_matching_on_the_bimodal_posterior(self, folded):
        x = torch.tensor([[0.5, 0.5], [2.0, 0.5], [4.0, -1.0]], dtype=F64)
        fits = fit_kl_directions(folded, x, torch.tensor([0.3, 0.0]), torch.tensor([-2.4, -2.4]),
                                 GaussianFitConfig(steps=400, learning_rate=0.2))
        log_post = torch.stack([f.log_posterior for f in fits])
        mean, var = posterior_moments(log_post, folded.grid)
        for f, m, v in zip(fits, mean, var, strict=True):
            torch.testing.assert_close(f.forward_mean, m, rtol=0, atol=1e-5)
            torch.testing.assert_close(f.forward_log_var.exp(), v, rtol=0, atol=1e-5)
        # x₁ = 4: two well-separated modes at z₁ = ±2; the reverse fit takes one (KL → log 2), forward spans both
        far = fits[2]
        assert abs(far.reverse_kl - math.log(2)) < 0.01
        assert 1.8 < float(far.reverse_mean[0]) < 2.1 and float(far.reverse_log_var[0].exp().sqrt()) < 0.15
        assert abs(float(far.forward_mean[0])) < 1e-4 and float(far.forward_log_var[0].exp().sqrt()) > 1.8
        # each fit is best in its own direction
        for f in fits:
            q_rev = diag_gaussian(f.reverse_mean.unsqueeze(0), f.reverse_log_var.unsqueeze(0))
            q_fwd = diag_gaussian(f.forward_mean.unsqueeze(0), f.forward_log_var.unsqueeze(0))
            lp = f.log_posterior.unsqueeze(0)
            assert reverse_kl(lp, folded.grid, q_rev) <= reverse_kl(lp, folded.grid, q_fwd) + 1e-9
            assert forward_kl(lp, folded.grid, q_fwd) <= forward_kl(lp, folded.grid, q_rev) + 1e-9

# ---------------------------------------------------------------------------------------------------------
# the importance-weighted bound L_K
# ---------------------------------------------------------------------------------------------------------
class TestIWAE:
    def test_non_decreasing_within_error(self):
        se = torch.full((3,), 0.1)
        assert non_decreasing_within_error(torch.tensor([1.0, 1.2, 1.1]), se)
        assert not non_decreasing_within_error(torch.tensor([1.0, 2.0, 1.0]), se)
        with pytest.raises(ValueError, match="standard_errors"):
            non_decreasing_within_error(torch.zeros(3), torch.zeros(2))

    def test_bound_rises_towards_log_evidence(self, folded):
        x = torch.tensor([[1.5, 0.5]], dtype=F64)
        log_px = folded.log_marginal(x).item()
        q = diag_gaussian(torch.tensor([[0.0, 0.45]], dtype=F64), torch.tensor([[0.4, -2.4]], dtype=F64))
        ks = [1, 2, 10, 100, 1000]
        means, se = iwae_curve(x, folded, q, ks, 200, generator=gen(6))
        assert non_decreasing_within_error(means, se)
        assert bool((means - 3 * se <= log_px).all())
        assert means[-1] - means[0] > 1.0  # the rise is real, not noise
        assert abs(means[-1].item() - log_px) < 0.05

    def test_importance_sampling_agrees_with_quadrature(self, folded):
        x = torch.tensor([[1.5, 0.5], [3.0, -0.5]], dtype=F64)
        q = diag_gaussian(torch.tensor([[0.0, 0.45], [0.0, -0.4]], dtype=F64), torch.tensor([[0.4, -2.4], [1.1, -2.4]]))
        est = log_marginal_importance(x, folded, q, 20_000, generator=gen(7))
        torch.testing.assert_close(est, folded.log_marginal(x), rtol=0, atol=0.02)


# ---------------------------------------------------------------------------------------------------------
# approximation and amortization gaps
# ---------------------------------------------------------------------------------------------------------
def _linear_vae(weight: torch.Tensor, bias: torch.Tensor, sigma: float) -> VAE:
    """A VAE whose decoder is the linear-Gaussian model p(x|z) = N(Wz + b, σ²I) (its posterior is Gaussian, with
    precision I + WᵀW/σ²), and whose encoder is a random linear map: an encoder that is wrong, a family that is not."""
    data_dim, latent_dim = weight.shape
    vae = VAE(VAEConfig(data_dim=data_dim, latent_dim=latent_dim, hidden=(), likelihood="gaussian_fixed",
                        fixed_sigma=sigma, x_scale=1.0, seed=3))
    with torch.no_grad():
        vae.decoder[0].weight.copy_(weight)
        vae.decoder[0].bias.copy_(bias)
    return vae


class TestGapDecomposition:
    """Checks that can fail. (That the approximation and amortization gaps add up to the gap holds by definition,
    since both are differences of the same three numbers, so it is not tested.)"""

    @pytest.mark.slow
    def test_every_gap_is_non_negative_and_the_fitted_q_beats_the_encoders(self, small_vae, digits_x):
        grid = latent_grid(6.0, 121)
        dec = gap_decomposition(small_vae, digits_x, grid, GaussianFitConfig(steps=200))
        assert (dec.gap > 0).all()  # no Gaussian is this decoder's posterior
        assert (dec.approximation_gap > -1e-6).all()  # no q's ELBO exceeds log p(x) (quadrature: no noise)
        assert (dec.elbo_optimal >= dec.elbo_encoder).all()  # q* (Adam from q_φ) is at least as good on every x
        assert dec.amortization_gap.max() > 1e-2  # ... and the fit does move: an untrained encoder is improvable

    @pytest.mark.slow
    def test_gap_equals_the_kl_divergence_from_the_normalised_posterior(self, small_vae, digits_x):
        grid = latent_grid(6.0, 121)
        dec = gap_decomposition(small_vae, digits_x, grid, GaussianFitConfig(steps=20))
        log_post = log_posterior(log_joint_on_grid(small_vae, digits_x, grid), grid)
        with torch.no_grad():
            mean, log_var = (t.double() for t in small_vae.encode(digits_x))
        kl = reverse_kl(log_post, grid, diag_gaussian(mean, log_var))
        torch.testing.assert_close(dec.gap, kl, rtol=0, atol=1e-6)
        kl_opt = reverse_kl(log_post, grid, diag_gaussian(dec.optimal_mean, dec.optimal_log_var))
        torch.testing.assert_close(dec.approximation_gap, kl_opt, rtol=0, atol=1e-6)

    @pytest.mark.slow
    def test_approximation_gap_vanishes_when_the_posterior_is_a_diagonal_gaussian(self):
        # orthogonal columns: WᵀW = diag(4, 1), so the posterior N(m, (I + WᵀW/σ²)⁻¹) is a diagonal Gaussian
        weight = torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
        bias = torch.tensor([0.1, -0.2, 0.3])
        vae = _linear_vae(weight, bias, sigma=0.8)
        x = torch.tensor([[0.5, -0.3, 0.2], [-1.0, 0.8, 0.0], [2.0, 1.0, -0.5]])
        dec = gap_decomposition(vae, x, latent_grid(6.0, 121), GaussianFitConfig(steps=400))
        exact = LinearGaussianModel(weight.double(), bias.double(), 0.8)
        assert dec.approximation_gap.abs().max() < 1e-4
        torch.testing.assert_close(dec.log_px, exact.log_marginal(x.double()), rtol=0, atol=1e-4)
        torch.testing.assert_close(dec.optimal_mean, exact.posterior(x.double()).mean, rtol=0, atol=1e-3)
        assert (dec.amortization_gap > 0.1).all()  # the random linear encoder is far from it

    @pytest.mark.slow
    def test_approximation_gap_of_a_correlated_gaussian_posterior_is_its_closed_form(self):
        # best diagonal q under KL(q || N(m, Λ⁻¹)): variances 1/Λ_jj, and KL = ½ (Σ_j log Λ_jj − log det Λ)
        weight = torch.tensor([[1.0, 1.0], [0.5, -0.2], [0.0, 0.7]])
        sigma = 0.8
        vae = _linear_vae(weight, torch.zeros(3), sigma)
        x = torch.tensor([[0.5, -0.3, 0.2], [-1.0, 0.8, 0.0]])
        dec = gap_decomposition(vae, x, latent_grid(6.0, 121), GaussianFitConfig(steps=400))
        w = weight.double()
        precision = torch.eye(2, dtype=F64) + w.T @ w / sigma**2
        expected = 0.5 * (torch.log(torch.diagonal(precision)).sum() - torch.logdet(precision))
        assert expected > 0.05  # the correlation costs something
        torch.testing.assert_close(dec.approximation_gap, expected.expand(2), rtol=0, atol=1e-4)

    @pytest.mark.slow
    def test_importance_sampling_with_the_optimal_q_agrees_with_quadrature(self, small_vae, digits_x):
        grid = latent_grid(6.0, 121)
        dec = gap_decomposition(small_vae, digits_x, grid, GaussianFitConfig(steps=200))
        q = diag_gaussian(dec.optimal_mean.float(), dec.optimal_log_var.float())
        with torch.no_grad():
            est = log_marginal_importance(digits_x, small_vae, q, 4000, generator=gen(8), max_elements=2**13)
        torch.testing.assert_close(est.double(), dec.log_px, rtol=0, atol=0.02)

# ---------------------------------------------------------------------------------------------------------
# bad input and figures
# ---------------------------------------------------------------------------------------------------------
def test_bad_input(folded, small_vae, digits_x):
    grid = latent_grid(2.0, 5)
    with pytest.raises(TypeError, match="model"):
        gap_and_kl(small_vae, digits_x, torch.zeros(2, 2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="sigma_range"):
        random_diag_gaussians(3, 2, mean_range=1.0, sigma_range=(0.5, 0.1), generator=gen(0))
    with pytest.raises(ValueError, match="log_var"):
        gap_and_kl(folded, torch.zeros(1, 2), torch.zeros(2, 2), torch.zeros(3, 2))
    with pytest.raises(TypeError, match="vae"):
        gap_decomposition(folded, digits_x, grid)


def test_figures(folded):
    x = torch.tensor([[0.5, 0.5], [2.0, 0.5]], dtype=F64)
    fits = fit_kl_directions(folded, x, torch.tensor([0.3, 0.0]), torch.tensor([-2.4, -2.4]),
                             GaussianFitConfig(steps=50))
    explorer = figures_gap.kl_directions_explorer(folded.grid, fits, window=(-3, 3, -1.5, 2.5), title="t")
    assert [c.name for c in explorer.controls] == ["x1"] and len(explorer.panels) == 2
    values = explorer.evaluate({"x1": 1})  # fit 1: x = (2, 0.5)
    assert (values["x1_value"], values["x2_value"]) == (2.0, 0.5)
    # fit 1's reverse-KL ellipse is centred on the fit's mean z₁
    assert np.mean(values["rev_ellipse1"]["x"]) == pytest.approx(float(fits[1].reverse_mean[0]), abs=0.05)
    fig = figures_gap.gap_vs_kl_figure(torch.rand(2, 5) + 0.1, torch.rand(2, 5) + 0.1, ["a", "b"], title="t")
    assert len(fig.data) == 3
    fig = figures_gap.iwae_curve_figure([1, 10], {"q": (torch.tensor([-1.0, -0.5]), torch.tensor([0.1, 0.1]))},
                                        0.0, title="t")
    assert fig.data[0].error_y.array[0] == pytest.approx(0.2)
    fig = figures_gap.gap_histogram_figure({"gap": torch.rand(20)}, title="t")
    assert len(fig.data) == 1
