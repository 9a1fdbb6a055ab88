"""The approximation and amortization gaps of a VAE with any latent size, by Monte Carlo ("closing the gap").

Chapter 3 split a 2-D VAE's gap by quadrature (:func:`vae_lib.gap.gap_decomposition`). With L = 8 latent dimensions
there is no grid, so chapter 8 follows Cremer et al. (2018) with Monte Carlo estimates:

* q*(z|x) = N(μ*, diag σ*²), the best diagonal Gaussian for each x separately: Adam on the reparameterized ELBO
  E_q[log p_θ(x|z)] − KL(q || p(z)) (closed-form KL), started at the encoder's q_φ(z|x) and run for every x of a batch
  at once (rows are independent problems; :func:`vae_lib.quadrature.adam`);
* log p_θ(x) ≈ log (1/K) Σ_k p_θ(x, z_k)/q*(z_k|x), z_k ~ q*, the importance-sampling estimate with the fitted
  q* as proposal (its expectation is L_K[q*] ≤ log p_θ(x));
* ELBO[q_φ] and ELBO[q*] with the same standard-normal draws ε (common random numbers: their difference, the
  amortization gap, has a smaller standard error than either).

Then gap = log p_θ(x) − ELBO[q_φ] = approximation gap (log p_θ(x) − ELBO[q*]) + amortization gap
(ELBO[q*] − ELBO[q_φ]), each estimated: q* is where the optimiser ends (a local optimum), so the approximation gap is
an estimate from above and the amortization gap one from below, as in chapter 3.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import kl_divergence

from ._checks import check_count, check_generator, check_instance
from .elbo import log_marginal_importance
from .gap import GapDecomposition
from .gaussian import diag_gaussian
from .models import VAE
from .quadrature import GaussianFitConfig, adam

__all__ = ["gaussian_elbo", "monte_carlo_gap_decomposition"]


def gaussian_elbo(model: VAE, x: Tensor, mean: Tensor, log_var: Tensor, eps: Tensor) -> Tensor:
    """The ELBO of q = N(mean, diag exp(log_var)) for each row of x, with the given noise: (B,).

    ``eps`` (K, B, L) are standard-normal draws, z_k = mean + σ ⊙ ε_k; the result is
    (1/K) Σ_k log p_θ(x|z_k) − KL(q || p(z)), differentiable in mean and log_var.
    """
    check_instance("model", model, VAE, "a vae_lib.VAE")
    z = mean + torch.exp(0.5 * log_var) * eps  # (K, B, L)
    q = diag_gaussian(mean, log_var)
    return model.log_likelihood(x, z).mean(0) - kl_divergence(q, model.prior)


#: The default settings of q*'s fit: 200 Adam steps from learning rate 0.05 (decaying to a tenth of it).
DEFAULT_FIT = GaussianFitConfig(steps=200, learning_rate=0.05)


def monte_carlo_gap_decomposition(model: VAE, x: Tensor, *, generator: torch.Generator,
                                  fit_config: GaussianFitConfig = DEFAULT_FIT,
                                  fit_samples: int = 16, elbo_samples: int = 500,
                                  evidence_samples: int = 1000) -> GapDecomposition:
    """Split the gap of ``model``'s encoder on x (B, D) into approximation and amortization gaps, by Monte Carlo.

    q* is fitted for every row at once: ``fit_config.steps`` Adam steps on the ELBO with ``fit_samples`` fresh draws
    per step, from q_φ(z|x). Both ELBOs use the same ``elbo_samples`` draws ε; log p_θ(x) is the importance-sampling
    estimate with ``evidence_samples`` draws of q*. All noise comes from ``generator``.
    """
    check_instance("model", model, VAE, "a vae_lib.VAE")
    check_generator(generator)
    check_instance("fit_config", fit_config, GaussianFitConfig, "a vae_lib.quadrature.GaussianFitConfig")
    fit_samples = check_count("fit_samples", fit_samples)
    elbo_samples = check_count("elbo_samples", elbo_samples)
    evidence_samples = check_count("evidence_samples", evidence_samples)
    x = model.flatten_data(x)  # (B, D)
    was_training = model.training
    model.eval()
    requires_grad = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)  # only q*'s parameters are optimised
    try:
        with torch.no_grad():
            mean0, log_var0 = model.encode(x)  # (B, L) each

        def negative_elbo(mean: Tensor, log_var: Tensor) -> Tensor:
            eps = torch.randn((fit_samples, *mean.shape), generator=generator, dtype=mean.dtype)  # (K, B, L)
            return -gaussian_elbo(model, x, mean, log_var, eps)  # (B,)

        (mean_opt, log_var_opt), _ = adam(negative_elbo, [mean0, log_var0], fit_config)
        with torch.no_grad():
            eps = torch.randn((elbo_samples, *mean0.shape), generator=generator, dtype=mean0.dtype)  # (K, B, L)
            elbo_encoder = gaussian_elbo(model, x, mean0, log_var0, eps)
            elbo_optimal = gaussian_elbo(model, x, mean_opt, log_var_opt, eps)
            log_px = log_marginal_importance(x, model, diag_gaussian(mean_opt, log_var_opt), evidence_samples,
                                             generator=generator, max_elements=2**14)
    finally:
        for p, flag in zip(model.parameters(), requires_grad, strict=True):
            p.requires_grad_(flag)
        model.train(was_training)
    return GapDecomposition(log_px, elbo_encoder, elbo_optimal, mean_opt, log_var_opt)
