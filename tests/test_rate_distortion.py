"""Rate and distortion (the β-VAE reading of the ELBO): closed forms on a linear-Gaussian VAE, ELBO = −(D + R)."""

from __future__ import annotations

import math

import pytest
import torch

from vae_lib.data import load_digits_split
from vae_lib.models import VAE, VAEConfig
from vae_lib.rate_distortion import rate_distortion
from vae_lib.train import TrainConfig, fit


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def linear_vae() -> VAE:
    """Linear encoder and decoder, fixed σ = 0.5: E_q log p(x|z) has a closed form."""
    model = VAE(VAEConfig(data_dim=3, latent_dim=2, hidden=(), likelihood="gaussian_fixed", fixed_sigma=0.5,
                          x_scale=1.0, seed=3))
    model.eval()
    return model


def closed_form(model: VAE, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """R(x) = Σ_l ½(μ_l² + s_l² − 1 − log s_l²); D(x) = (D/2) log 2πσ² + (‖x − Wμ − b‖² + Σ_dl W_dl² s_l²) / 2σ²."""
    with torch.no_grad():
        mu, log_var = model.encode(x)  # (B, L)
        s2 = log_var.exp()
        rate = 0.5 * (mu**2 + s2 - 1 - log_var).sum(-1)
        w, b = model.decoder[0].weight, model.decoder[0].bias  # (D, L), (D,)
        sigma2 = model.config.fixed_sigma**2
        residual = ((x - mu @ w.T - b) ** 2).sum(-1)  # (B,)
        spread = (s2 @ (w**2).T).sum(-1)  # (B,): Σ_d Σ_l W_dl² s_l²
        dim = x.shape[-1]
        distortion = 0.5 * dim * math.log(2 * math.pi * sigma2) + (residual + spread) / (2 * sigma2)
    return rate, distortion


class TestRateDistortion:
    def test_rate_is_the_closed_form_kl(self, linear_vae):
        x = torch.randn(5, 3, generator=gen(0))
        rd = rate_distortion(linear_vae, x, 4, generator=gen(1))
        rate, _ = closed_form(linear_vae, x)
        torch.testing.assert_close(rd.rate, rate, rtol=1e-5, atol=1e-6)
        assert (rd.rate >= 0).all()

    def test_distortion_matches_the_closed_form_within_monte_carlo_error(self, linear_vae):
        x = torch.randn(4, 3, generator=gen(2))
        n = 20_000
        rd = rate_distortion(linear_vae, x, n, generator=gen(3))
        _, exact = closed_form(linear_vae, x)
        # standard error of the mean of −log p(x|z): estimate it from a second, independent run of the draws
        with torch.no_grad():
            q = linear_vae.posterior(x)
            z = q.rsample((2000,))
            se = linear_vae.log_likelihood(x, z).std(0) / math.sqrt(n)  # (B,)
        assert ((rd.distortion - exact).abs() < 4 * se).all(), (rd.distortion, exact, se)

    def test_elbo_is_minus_distortion_plus_rate_and_equals_the_model_elbo(self, linear_vae):
        x = torch.randn(6, 3, generator=gen(4))
        rd = rate_distortion(linear_vae, x, 8, generator=gen(5))
        with torch.no_grad():
            elbo = linear_vae.elbo(x, 8, generator=gen(5))
        torch.testing.assert_close(rd.elbo, elbo)
        torch.testing.assert_close(rd.objective(1.0), elbo)
        torch.testing.assert_close(rd.objective(4.0), elbo - 3.0 * rd.rate)

    def test_bad_input(self, linear_vae):
        x = torch.randn(2, 3)
        with pytest.raises(TypeError, match="model"):
            rate_distortion(object(), x, generator=gen(0))
        with pytest.raises(ValueError, match="n_samples"):
            rate_distortion(linear_vae, x, 0, generator=gen(0))
        with pytest.raises(ValueError, match="x"):
            rate_distortion(linear_vae, torch.randn(2, 4), generator=gen(0))
        with pytest.raises(ValueError, match="beta"):
            rate_distortion(linear_vae, x, generator=gen(0)).objective(-1.0)


def test_a_larger_beta_buys_a_lower_rate_with_a_higher_distortion():
    x = load_digits_split().x_train[:512]
    results = {}
    for beta in (1.0, 4.0):
        model = VAE(VAEConfig(latent_dim=2, hidden=(32,)))
        fit(model, x, TrainConfig(epochs=8, kl_weight=beta, progress=False))
        rd = rate_distortion(model, x, 4, generator=gen(0))
        results[beta] = (rd.rate.mean().item(), rd.distortion.mean().item())
    assert results[4.0][0] < results[1.0][0]
    assert results[4.0][1] > results[1.0][1]
