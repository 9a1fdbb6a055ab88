"""vae_lib.inference_gaps (chapter 8): the Monte Carlo split of a VAE's gap into approximation and amortization gaps,
checked on a VAE with a linear encoder and a linear-Gaussian decoder, whose posterior, evidence and best diagonal
Gaussian are known in closed form."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import MultivariateNormal, kl_divergence

from vae_lib.inference_gaps import gaussian_elbo, monte_carlo_gap_decomposition
from vae_lib.models import VAE, VAEConfig
from vae_lib.quadrature import GaussianFitConfig

SIGMA = 0.5


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def linear_vae() -> VAE:
    """p(z) = N(0, I_2), p(x|z) = N(W z + b, σ² I_4) (hidden=(): one linear layer each way); the decoder's columns are
    not orthogonal, so the posterior is correlated and the best diagonal Gaussian has a positive gap."""
    vae = VAE(VAEConfig(data_dim=4, latent_dim=2, hidden=(), likelihood="gaussian_fixed", x_scale=1.0,
                        fixed_sigma=SIGMA, seed=3))
    with torch.no_grad():
        vae.decoder[0].weight.copy_(torch.tensor([[1.0, 0.8], [0.5, 1.0], [-0.3, 0.6], [0.9, 0.2]]))
        vae.decoder[0].bias.copy_(torch.tensor([0.1, -0.2, 0.0, 0.3]))
    return vae.eval()


def exact(vae: VAE, x: torch.Tensor):
    """log p(x), the posterior N(m, Λ⁻¹) and the best diagonal Gaussian's gap ½(Σ_i log Λ_ii − log det Λ)."""
    w = vae.decoder[0].weight.detach().double()  # (D, L)
    b = vae.decoder[0].bias.detach().double()
    x = x.double()
    marginal = MultivariateNormal(b, w @ w.T + SIGMA**2 * torch.eye(4, dtype=torch.float64))
    precision = torch.eye(2, dtype=torch.float64) + w.T @ w / SIGMA**2  # (L, L)
    post_mean = torch.linalg.solve(precision, (w.T @ (x - b).T) / SIGMA**2).T  # (B, L)
    approx = 0.5 * (precision.diagonal().log().sum() - torch.logdet(precision))
    return marginal.log_prob(x), post_mean, precision, approx


def test_the_split_matches_the_closed_forms(linear_vae):
    x = torch.randn(6, 4, generator=gen(0)) + 0.2
    log_px, post_mean, precision, approx = exact(linear_vae, x)
    res = monte_carlo_gap_decomposition(linear_vae, x, generator=gen(1),
                                        fit_config=GaussianFitConfig(steps=1000, learning_rate=0.05),
                                        fit_samples=32, elbo_samples=20_000, evidence_samples=20_000)
    torch.testing.assert_close(res.log_px.double(), log_px, atol=0.02, rtol=0)
    # q*: the posterior mean and the diagonal of the precision's inverse-diagonal 1 / Λ_ii
    torch.testing.assert_close(res.optimal_mean.double(), post_mean, atol=0.03, rtol=0)
    torch.testing.assert_close(res.optimal_log_var.double(),
                               (-precision.diagonal().log()).expand(6, 2), atol=0.05, rtol=0)
    assert approx > 0.1  # a correlated posterior: the diagonal family has a real gap to find
    torch.testing.assert_close(res.approximation_gap.double(), approx.expand(6), atol=0.03, rtol=0)
    # the whole gap is KL(q_φ || p(z|x)) for the (untrained) linear encoder
    with torch.no_grad():
        mean, log_var = linear_vae.encode(x)
    q_phi = MultivariateNormal(mean.double(), torch.diag_embed(log_var.double().exp()))
    post = MultivariateNormal(post_mean, precision_matrix=precision.expand(6, 2, 2))
    kl = kl_divergence(q_phi, post)
    # the untrained encoder is far off (KL about 20 nats), so log p(x|z) under q_φ spreads over tens of nats per
    # sample and the 20,000-sample ELBO has a standard error of a few tenths of a nat
    torch.testing.assert_close(res.gap.double(), kl, atol=0.05, rtol=0.05)
    assert kl.min() > 5
    assert (res.amortization_gap > 0).all()


def test_gaussian_elbo_is_reconstruction_minus_kl(linear_vae):
    """With the model's own sampler and noise order, gaussian_elbo equals VAE.elbo for q = q_φ(z|x)."""
    x = torch.randn(3, 4, generator=gen(2))
    with torch.no_grad():
        mean, log_var = linear_vae.encode(x)
        eps = torch.randn((5, 3, 2), generator=gen(3))
        ours = gaussian_elbo(linear_vae, x, mean, log_var, eps)
        theirs = linear_vae.elbo(x, 5, generator=gen(3))
    torch.testing.assert_close(ours, theirs)


def test_the_model_is_left_as_it_was(linear_vae):
    linear_vae.train()
    flags = [p.requires_grad for p in linear_vae.parameters()]
    before = [p.detach().clone() for p in linear_vae.parameters()]
    monte_carlo_gap_decomposition(linear_vae, torch.zeros(2, 4), generator=gen(4),
                                  fit_config=GaussianFitConfig(steps=3), elbo_samples=2, evidence_samples=2)
    assert linear_vae.training and [p.requires_grad for p in linear_vae.parameters()] == flags
    assert all(torch.equal(a, b) for a, b in zip(before, linear_vae.parameters(), strict=True))
    linear_vae.eval()


def test_bad_arguments(linear_vae):
    with pytest.raises(TypeError, match="model"):
        monte_carlo_gap_decomposition(object(), torch.zeros(2, 4), generator=gen(0))
    with pytest.raises(TypeError, match="fit_config"):
        monte_carlo_gap_decomposition(linear_vae, torch.zeros(2, 4), generator=gen(0), fit_config=3)
    with pytest.raises(ValueError, match="elbo_samples"):
        monte_carlo_gap_decomposition(linear_vae, torch.zeros(2, 4), generator=gen(0), elbo_samples=0)
