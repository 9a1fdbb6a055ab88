"""The KL gap log p_θ(x) − L(θ, φ; x) = KL(q_φ(z|x) || p_θ(z|x)) and what it costs (chapter 3, "The KL gap").

Integrals over the 2-D (or 1-D) latent are sums on a grid, all done by :mod:`vae_lib.quadrature` (log p_θ(x), the exact
posterior, the quadrature ELBO, both KL directions, the Gaussian fits). This module puts them to work:

* :func:`gap_and_kl` — the gap log p_θ(x) − L(q) next to KL(q || p_θ(z|x)) for many (x, q) pairs;
* :func:`fit_kl_directions` — the best diagonal Gaussian by reverse KL (the ELBO's choice) and by forward KL;
* :func:`iwae_curve`, :func:`non_decreasing_within_error` — the importance-weighted bound L_K against K;
* :func:`gap_decomposition` — Cremer et al.'s (2018) split of the gap into approximation and amortization gaps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Distribution

from . import quadrature
from ._checks import as_tensor, check_count, check_instance, check_last_dim
from .elbo import LatentVariableModel, repeated_log_marginal_estimates
from .gaussian import diag_gaussian
from .models import VAE
from .quadrature import GaussianFitConfig, LatentGrid
from .toy import GridLatentModel

__all__ = [
    "GapDecomposition",
    "KLDirectionFit",
    "fit_kl_directions",
    "gap_decomposition",
    "gap_and_kl",
    "iwae_curve",
    "non_decreasing_within_error",
    "random_diag_gaussians",
]

_FIT = GaussianFitConfig()  # the default fit (400 Adam steps from 0.1 decaying to 0.01)


# ---------------------------------------------------------------------------------------------------------
# gap = KL on the toy model
# ---------------------------------------------------------------------------------------------------------
def random_diag_gaussians(n: int, latent_dim: int, *, mean_range: float, sigma_range: tuple[float, float],
                          generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """n random diagonal Gaussians: means uniform in [−mean_range, mean_range]^L, standard deviations
    log-uniform in ``sigma_range``. Returns (mean, log_var), each (n, L), float64."""
    n = check_count("n", n)
    latent_dim = check_count("latent_dim", latent_dim)
    lo, hi = sigma_range
    if not 0 < lo <= hi:
        raise ValueError(f"sigma_range must be (low, high) with 0 < low <= high, got {sigma_range}")
    if not mean_range >= 0:
        raise ValueError(f"mean_range must be >= 0, got {mean_range}")
    u = torch.rand(n, 2, latent_dim, generator=generator, dtype=torch.float64)  # (n, 2, L)
    mean = (2 * u[:, 0] - 1) * mean_range
    log_sigma = math.log(lo) + u[:, 1] * (math.log(hi) - math.log(lo))
    return mean, 2 * log_sigma


def gap_and_kl(model: GridLatentModel, x: Tensor, mean: Tensor, log_var: Tensor) -> tuple[Tensor, Tensor]:
    """For every row x_b and every q_k = N(mean_k, diag exp(log_var_k)): the gap log p_θ(x_b) − L(q_k; x_b)
    and KL(q_k || p_θ(z|x_b)), computed independently, each of shape (B, K).

    The gap uses log p_θ(x) and the ELBO (E_q[log p_θ(x, z)] by quadrature, q's entropy in closed form); the KL is
    summed on the grid from the normalised posterior density (:mod:`vae_lib.quadrature`).
    """
    if not isinstance(model, GridLatentModel):
        raise TypeError(f"model must be a GridLatentModel, got {type(model).__name__}")
    x = check_last_dim("x", as_tensor("x", x, ndim=2, dtype=torch.float64), model.data_dim, "the data size D")
    mean = check_last_dim("mean", as_tensor("mean", mean, ndim=2, dtype=torch.float64), model.latent_dim)
    log_var = as_tensor("log_var", log_var, ndim=2, dtype=torch.float64)
    if log_var.shape != mean.shape:
        raise ValueError(f"mean and log_var must have the same shape (K, L), got {tuple(mean.shape)} and "
                         f"{tuple(log_var.shape)}")
    k, grid = mean.shape[0], model.grid
    q = diag_gaussian(mean, log_var)  # batch (K,)
    log_joint = quadrature.log_joint_on_grid(model, x, grid)  # (G, B)
    log_px = quadrature.log_marginal(log_joint, grid)  # (B,)
    log_post = quadrature.log_posterior(log_joint, grid)  # (B, G)
    gaps = torch.stack([log_px[b] - quadrature.elbo(log_joint[:, b:b + 1].expand(-1, k), grid, q)
                        for b in range(x.shape[0])])  # (B, K)
    kls = torch.stack([quadrature.reverse_kl(log_post[b:b + 1].expand(k, -1), grid, q)
                       for b in range(x.shape[0])])  # (B, K)
    return gaps, kls


# ---------------------------------------------------------------------------------------------------------
# Fitting a Gaussian q in either direction of the KL
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KLDirectionFit:
    """Both fitted Gaussians for one observation x: q_rev = argmin KL(q || p_θ(z|x)) (the ELBO's choice) and
    q_fwd = argmin KL(p_θ(z|x) || q), with the KL each one minimises and the posterior density on the grid."""

    x: Tensor  # (D,)
    log_posterior: Tensor  # (G,)
    reverse_mean: Tensor  # (L,)
    reverse_log_var: Tensor  # (L,)
    forward_mean: Tensor  # (L,)
    forward_log_var: Tensor  # (L,)
    reverse_kl: float  # KL(q_rev || p)
    forward_kl: float  # KL(p || q_fwd)


def fit_kl_directions(model: GridLatentModel, x: Tensor, start_mean: Tensor, start_log_var: Tensor,
                      config: GaussianFitConfig = _FIT) -> list[KLDirectionFit]:
    """Fit q by reverse and by forward KL for every row of x (B, D).

    The reverse fit (gradient ascent on the ELBO) starts from N(start_mean, diag exp(start_log_var)) (L,) each:
    on a bimodal posterior it climbs into the mode nearest that start. The forward fit is convex in the mean
    and starts from the prior N(0, I).
    """
    if not isinstance(model, GridLatentModel):
        raise TypeError(f"model must be a GridLatentModel, got {type(model).__name__}")
    x = check_last_dim("x", as_tensor("x", x, ndim=2, dtype=torch.float64), model.data_dim, "the data size D")
    b, latent = x.shape[0], model.latent_dim
    mean0 = as_tensor("start_mean", start_mean, ndim=1, dtype=torch.float64).expand(b, latent)
    log_var0 = as_tensor("start_log_var", start_log_var, ndim=1, dtype=torch.float64).expand(b, latent)
    grid = model.grid
    log_joint = quadrature.log_joint_on_grid(model, x, grid)  # (G, B)
    log_post = quadrature.log_posterior(log_joint, grid)  # (B, G)
    rev_m, rev_v, _ = quadrature.fit_gaussian_elbo(log_joint, grid, mean0, log_var0, config)
    fwd_m, fwd_v = quadrature.fit_gaussian_forward_kl(log_post, grid, torch.zeros_like(mean0),
                                                      torch.zeros_like(mean0), config)
    rev_kl = quadrature.reverse_kl(log_post, grid, diag_gaussian(rev_m, rev_v))
    fwd_kl = quadrature.forward_kl(log_post, grid, diag_gaussian(fwd_m, fwd_v))
    return [KLDirectionFit(x[i], log_post[i], rev_m[i], rev_v[i], fwd_m[i], fwd_v[i], rev_kl[i].item(),
                           fwd_kl[i].item()) for i in range(b)]


# ---------------------------------------------------------------------------------------------------------
# The importance-weighted bound L_K
# ---------------------------------------------------------------------------------------------------------
def iwae_curve(x: Tensor, model: LatentVariableModel, q: Distribution, sample_sizes: list[int], repeats: int, *,
               generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Mean and standard error over ``repeats`` runs of log (1/K) Σ_k p_θ(x, z_k)/q(z_k|x), z_k ~ q, for each K.

    The mean estimates the bound L_K = E[log (1/K) Σ_k w_k] (L_1 is the ELBO). x is one observation (1, D).
    Returns (means, standard_errors), each of shape (len(sample_sizes),).
    """
    est = repeated_log_marginal_estimates(x, model, q, sample_sizes, repeats, generator=generator)  # (R, len(K))
    return est.mean(0), est.std(0) / math.sqrt(est.shape[0])


def non_decreasing_within_error(means: Tensor, standard_errors: Tensor, n_se: float = 3.0) -> bool:
    """True if every step means[i+1] − means[i] is >= −n_se times its standard error (independent runs)."""
    means = as_tensor("means", means, ndim=1)
    standard_errors = as_tensor("standard_errors", standard_errors, ndim=1)
    if means.shape != standard_errors.shape:
        raise ValueError(f"means and standard_errors must have the same shape, got {tuple(means.shape)} "
                         f"and {tuple(standard_errors.shape)}")
    step_se = (standard_errors[1:] ** 2 + standard_errors[:-1] ** 2).sqrt()
    return bool((means[1:] - means[:-1] >= -n_se * step_se).all())


# ---------------------------------------------------------------------------------------------------------
# Approximation and amortization gaps (Cremer, Li & Duvenaud 2018)
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GapDecomposition:
    """Per example (each (B,)): log p_θ(x), the encoder's ELBO L[q_φ], the fitted Gaussian's ELBO L[q*] (by quadrature
    from :func:`gap_decomposition`, chapter 3; by Monte Carlo from
    :func:`vae_lib.inference_gaps.monte_carlo_gap_decomposition`, chapter 8); the
    approximation gap log p_θ(x) − L[q*] and the amortization gap L[q*] − L[q_φ] add up to the whole gap by
    definition (so their sum checks nothing). q* is where Adam stops, a local optimum: L[q*] is a lower bound on the
    best diagonal Gaussian's ELBO, so the approximation gap is an estimate from above, the amortization gap one
    from below."""

    log_px: Tensor
    elbo_encoder: Tensor
    elbo_optimal: Tensor
    optimal_mean: Tensor  # (B, L)
    optimal_log_var: Tensor  # (B, L)

    @property
    def gap(self) -> Tensor:
        """log p_θ(x) − L[q_φ] = KL(q_φ(z|x) || p_θ(z|x))."""
        return self.log_px - self.elbo_encoder

    @property
    def approximation_gap(self) -> Tensor:
        """log p_θ(x) − L[q*]: what the Gaussian family cannot do."""
        return self.log_px - self.elbo_optimal

    @property
    def amortization_gap(self) -> Tensor:
        """L[q*] − L[q_φ]: what one shared encoder network loses against a q fitted to each x."""
        return self.elbo_optimal - self.elbo_encoder


def gap_decomposition(vae: VAE, x: Tensor, grid: LatentGrid,
                      config: GaussianFitConfig = _FIT) -> GapDecomposition:
    """Split each example's gap by quadrature on ``grid`` (2-D latent VAEs only): log p_θ(x), the ELBO of the
    encoder's q_φ(z|x), and of the best diagonal Gaussian q* (Adam on the quadrature ELBO from the encoder's q)."""
    if not isinstance(vae, VAE):
        raise TypeError(f"vae must be a VAE, got {type(vae).__name__}")
    check_instance("grid", grid, LatentGrid, "a vae_lib.quadrature.LatentGrid")
    if vae.config.latent_dim != grid.points.shape[1]:
        raise ValueError(f"grid must have the VAE's latent size {vae.config.latent_dim}, got {grid.points.shape[1]}")
    log_joint = quadrature.log_joint_on_grid(vae, x, grid)  # (G, B)
    with torch.no_grad():
        mean, log_var = (t.to(torch.float64) for t in vae.encode(x))  # (B, L) each
    elbo_encoder = quadrature.elbo(log_joint, grid, diag_gaussian(mean, log_var))
    opt_mean, opt_log_var, elbo_opt = quadrature.fit_gaussian_elbo(log_joint, grid, mean, log_var, config)
    return GapDecomposition(quadrature.log_marginal(log_joint, grid), elbo_encoder, elbo_opt, opt_mean, opt_log_var)
