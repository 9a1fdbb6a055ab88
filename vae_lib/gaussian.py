"""Gaussian building blocks: the KL divergence in closed form and sampling with a generator.

Chapter 1 ("Latent-variable models") introduces the prior p(z) = N(0, I) and Gaussian approximate
posteriors q_φ(z|x) = N(μ, Σ). The ELBO's regulariser KL(q_φ(z|x) || p(z)) has the closed form

    KL(N(μ_q, Σ_q) || N(μ_p, Σ_p)) = ½ [ tr(Σ_p⁻¹ Σ_q) + (μ_p − μ_q)ᵀ Σ_p⁻¹ (μ_p − μ_q) − L
                                         + log det Σ_p − log det Σ_q ],

which for diagonal covariances and p = N(0, I) becomes  ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²):
chapter 2 ("The evidence lower bound", section "The KL term in closed form", label
``kl-gaussian-closed-form``) derives it where the ELBO's KL term first appears and shows
:func:`kl_diag_gaussian_std_normal`. Both are checked in the tests against
``torch.distributions.kl_divergence`` and against a Monte Carlo estimate.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.distributions import Distribution, Independent, MultivariateNormal, Normal

from ._checks import as_tensor, check_broadcast, check_count, check_generator

__all__ = [
    "diag_gaussian",
    "kl_diag_gaussians",
    "kl_diag_gaussian_std_normal",
    "kl_full_gaussians",
    "kl_monte_carlo",
    "sample",
    "standard_normal_prior",
]


def diag_gaussian(mean: Tensor, log_var: Tensor) -> Independent:
    """q = N(mean, diag(exp(log_var))) as a torch distribution with event shape (L,)."""
    mean = as_tensor("mean", mean, min_ndim=1)
    log_var = as_tensor("log_var", log_var, min_ndim=1)
    check_broadcast(("mean", "log_var"), mean, log_var)
    return Independent(Normal(mean, torch.exp(0.5 * log_var)), 1)


def standard_normal_prior(latent_dim: int, dtype: torch.dtype = torch.float32) -> Independent:
    """The prior p(z) = N(0, I_L) used throughout the book."""
    latent_dim = check_count("latent_dim", latent_dim)
    return Independent(Normal(torch.zeros(latent_dim, dtype=dtype), torch.ones(latent_dim, dtype=dtype)), 1)


def kl_diag_gaussians(mean_q: Tensor, log_var_q: Tensor, mean_p: Tensor, log_var_p: Tensor) -> Tensor:
    """KL(N(μ_q, diag σ_q²) || N(μ_p, diag σ_p²)), summed over the last (latent) dimension.

    ½ Σ_j [ log σ_p,j² − log σ_q,j² + (σ_q,j² + (μ_q,j − μ_p,j)²) / σ_p,j² − 1 ]
    """
    mean_q = as_tensor("mean_q", mean_q, min_ndim=1)
    log_var_q = as_tensor("log_var_q", log_var_q, min_ndim=1)
    mean_p = as_tensor("mean_p", mean_p, min_ndim=1)
    log_var_p = as_tensor("log_var_p", log_var_p, min_ndim=1)
    check_broadcast(("mean_q", "log_var_q"), mean_q, log_var_q)
    check_broadcast(("mean_q", "mean_p"), mean_q, mean_p)
    check_broadcast(("mean_p", "log_var_p"), mean_p, log_var_p)
    if mean_q.shape[-1] != mean_p.shape[-1]:
        raise ValueError(
            f"mean_q and mean_p must have the same latent size, got {mean_q.shape[-1]} and {mean_p.shape[-1]}"
        )
    # Everything from log-variances, so that legal but extreme inputs stay finite: σ_q²/σ_p² − 1 − log(σ_q²/σ_p²)
    # as expm1(δ) − δ with δ = log σ_q² − log σ_p² (no cancellation when δ is small, no inf/inf for narrow
    # Gaussians), and (μ_q − μ_p)²/σ_p² as exp(2 log|μ_q − μ_p| − log σ_p²) (a narrow p with μ_q = μ_p gives 0, not
    # 0·inf = NaN; a tiny difference does not underflow to 0 before it is divided by a tiny variance). Where the
    # means agree, both the value and its gradient are exactly 0 (the masked entries never reach log or exp).
    delta = log_var_q - log_var_p  # (..., L)
    diff = mean_q - mean_p  # (..., L)
    same = diff == 0
    safe_abs = torch.where(same, torch.ones_like(diff), diff.abs())
    log_maha = torch.where(same, torch.zeros_like(diff), 2 * torch.log(safe_abs) - log_var_p)
    mahalanobis = torch.where(same, torch.zeros_like(diff), torch.exp(log_maha))
    return 0.5 * (torch.expm1(delta) - delta + mahalanobis).sum(-1)


def kl_diag_gaussian_std_normal(mean: Tensor, log_var: Tensor) -> Tensor:
    """KL(N(μ, diag σ²) || N(0, I)) = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²),
    shape (...,)."""
    mean = as_tensor("mean", mean, min_ndim=1)
    log_var = as_tensor("log_var", log_var, min_ndim=1)
    check_broadcast(("mean", "log_var"), mean, log_var)
    return 0.5 * (mean**2 + torch.exp(log_var) - 1.0 - log_var).sum(-1)


def _cholesky(name: str, cov: Tensor) -> Tensor:
    if cov.dim() < 2 or cov.shape[-1] != cov.shape[-2]:
        raise ValueError(f"{name} must be a (..., L, L) covariance matrix, got shape {tuple(cov.shape)}")
    if not torch.allclose(cov, cov.transpose(-1, -2), atol=1e-8, rtol=1e-6):
        raise ValueError(f"{name} must be symmetric")
    chol, info = torch.linalg.cholesky_ex(cov)
    if (info != 0).any():
        raise ValueError(f"{name} must be positive definite")
    return chol


def kl_full_gaussians(mean_q: Tensor, cov_q: Tensor, mean_p: Tensor, cov_p: Tensor) -> Tensor:
    """KL(N(μ_q, Σ_q) || N(μ_p, Σ_p)) for full covariance matrices, shape (...,).

    ½ [ tr(Σ_p⁻¹ Σ_q) + (μ_p − μ_q)ᵀ Σ_p⁻¹ (μ_p − μ_q) − L + log det Σ_p − log det Σ_q ],
    computed through Cholesky factors Σ = L Lᵀ (log det Σ = 2 Σ_i log L_ii).
    """
    mean_q = as_tensor("mean_q", mean_q, min_ndim=1)
    mean_p = as_tensor("mean_p", mean_p, min_ndim=1)
    cov_q = as_tensor("cov_q", cov_q, min_ndim=2)
    cov_p = as_tensor("cov_p", cov_p, min_ndim=2)
    latent = mean_q.shape[-1]
    if mean_p.shape[-1] != latent:
        raise ValueError(f"mean_q and mean_p must have the same latent size, got {latent} and {mean_p.shape[-1]}")
    for name, cov in (("cov_q", cov_q), ("cov_p", cov_p)):
        if cov.shape[-2:] != (latent, latent):
            raise ValueError(f"{name} must have shape (..., {latent}, {latent}), got {tuple(cov.shape)}")
    chol_q = _cholesky("cov_q", cov_q)  # (..., L, L)
    chol_p = _cholesky("cov_p", cov_p)  # (..., L, L)
    batch = torch.broadcast_shapes(chol_q.shape[:-2], chol_p.shape[:-2], mean_q.shape[:-1], mean_p.shape[:-1])
    chol_p = chol_p.expand(*batch, latent, latent)
    chol_q = chol_q.expand(*batch, latent, latent)
    # tr(Σ_p⁻¹ Σ_q) = ||L_p⁻¹ L_q||_F²
    m = torch.linalg.solve_triangular(chol_p, chol_q, upper=False)  # (..., L, L)
    trace = (m**2).sum((-2, -1))
    diff = (mean_p - mean_q).expand(*batch, latent).unsqueeze(-1)  # (..., L, 1)
    maha = (torch.linalg.solve_triangular(chol_p, diff, upper=False) ** 2).sum((-2, -1))
    logdet_p = 2 * torch.log(torch.diagonal(chol_p, dim1=-2, dim2=-1)).sum(-1)
    logdet_q = 2 * torch.log(torch.diagonal(chol_q, dim1=-2, dim2=-1)).sum(-1)
    return 0.5 * (trace + maha - latent + logdet_p - logdet_q)


def sample(
    dist: Distribution, n_samples: int, *, generator: torch.Generator
) -> Tensor:
    """Draw n reparameterized samples z = μ + L ε, ε ~ N(0, I), from a
    Gaussian ``dist``.

    Works for ``Normal``, ``Independent(Normal)`` and
    ``MultivariateNormal``; the noise comes from ``generator`` so results
    are reproducible. Returns shape (n, *batch_shape, *event_shape) and
    keeps the gradient path to the distribution's parameters (the
    reparameterization trick).
    """
    n_samples = check_count("n_samples", n_samples)
    check_generator(generator)
    base = dist.base_dist if isinstance(dist, Independent) else dist
    shape = (n_samples, *dist.batch_shape, *dist.event_shape)
    if isinstance(base, Normal):
        mean, std = base.loc, base.scale
        eps = torch.randn(shape, generator=generator, dtype=mean.dtype)
        return mean + std * eps
    if isinstance(base, MultivariateNormal):
        eps = torch.randn(shape, generator=generator,
                          dtype=base.loc.dtype)  # (n, ..., L)
        return base.loc + (base.scale_tril @ eps.unsqueeze(-1)).squeeze(-1)
    raise TypeError("dist must be a Normal, Independent(Normal) or "
                    f"MultivariateNormal, got {type(dist).__name__}")


def kl_monte_carlo(q: Distribution, p: Distribution, n_samples: int, *,
                   generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Monte Carlo estimate of KL(q || p) = E_q[log q(z) − log p(z)] and its standard error.

    Returns (estimate, standard_error), each of q's batch shape.
    """
    n_samples = check_count("n_samples", n_samples, minimum=2)
    if q.event_shape != p.event_shape:
        raise ValueError(f"q and p must share the event shape, got {tuple(q.event_shape)} and {tuple(p.event_shape)}")
    z = sample(q, n_samples, generator=generator)  # (n, ..., L)
    log_ratio = q.log_prob(z) - p.log_prob(z)  # (n, ...)
    return log_ratio.mean(0), log_ratio.std(0) / math.sqrt(n_samples)

