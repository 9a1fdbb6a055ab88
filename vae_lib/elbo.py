"""The evidence lower bound L(θ, φ; x) in its three equivalent forms, and the importance-weighted bound.

Chapter "The evidence lower bound" derives, for any q_φ(z|x),

    L(θ, φ; x) = E_q[log p_θ(x, z)] + H[q_φ(z|x)]                 (joint + entropy)
               = E_q[log p_θ(x|z)] − KL(q_φ(z|x) || p(z))          (reconstruction − KL)
               = log p_θ(x) − KL(q_φ(z|x) || p_θ(z|x))             (evidence − gap)

and the importance-weighted bound (Burda et al., 2016) with K samples z_k ~ q_φ(z|x),

    L_K(x) = E[ log (1/K) Σ_k p_θ(x, z_k) / q_φ(z_k|x) ],   L_1 = L ≤ L_K ≤ L_{K+1} ≤ log p_θ(x).

A *model* here is anything with ``prior`` (a torch distribution p(z)) and
``log_likelihood(x, z)`` returning log p_θ(x|z) for x of shape (B, D) and z of shape (K, B, L),
giving (K, B). The toy models of :mod:`vae_lib.toy` and the VAE of :mod:`vae_lib.models` both are.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
from torch import Tensor
from torch.distributions import Distribution, Independent, MultivariateNormal, Normal, kl_divergence

from ._checks import as_tensor, check_count, check_instance, check_latent_model
from .gaussian import sample

__all__ = [
    "LatentVariableModel",
    "elbo_evidence_minus_gap",
    "elbo_joint_plus_entropy",
    "elbo_reconstruction_minus_kl",
    "iwae_bound",
    "log_importance_weights",
    "log_marginal_importance",
    "repeated_log_marginal_estimates",
]


class LatentVariableModel(Protocol):
    """p_θ(x, z) = p(z) p_θ(x|z): the interface the ELBO and IWAE functions need."""

    prior: Distribution

    def log_likelihood(self, x: Tensor, z: Tensor) -> Tensor:
        """log p_θ(x|z): x (B, D), z (K, B, L) -> (K, B)."""
        ...


def _check_q(x: Tensor, model: LatentVariableModel, q: Distribution) -> Distribution:
    """Validate q against x and the model; a q without batch shape (e.g. the prior) is shared by all rows."""
    check_latent_model("model", model)
    if not isinstance(q, Distribution):
        raise TypeError(f"q must be a torch.distributions.Distribution, got {type(q).__name__}")
    if q.event_shape != model.prior.event_shape:
        raise ValueError(
            f"q's latent size {tuple(q.event_shape)} does not match the prior's {tuple(model.prior.event_shape)}"
        )
    if q.batch_shape == torch.Size([]):
        q = q.expand(torch.Size([x.shape[0]]))
    if len(q.batch_shape) != 1 or q.batch_shape[0] != x.shape[0]:
        raise ValueError(f"q must have batch shape ({x.shape[0]},), one posterior per row of x, "
                         f"got {tuple(q.batch_shape)}")
    return q


def _as_full_gaussian(dist: Distribution) -> Distribution:
    """A diagonal Gaussian Independent(Normal, 1) as the equivalent MultivariateNormal; anything else unchanged."""
    if isinstance(dist, Independent) and isinstance(dist.base_dist, Normal) and dist.reinterpreted_batch_ndims == 1:
        return MultivariateNormal(dist.base_dist.loc, scale_tril=torch.diag_embed(dist.base_dist.scale))
    return dist


def _kl(q: Distribution, p: Distribution) -> Tensor:
    """kl_divergence(q, p), also between a diagonal and a full-covariance Gaussian (a pair torch does not register)."""
    try:
        return kl_divergence(q, p)
    except NotImplementedError:
        return kl_divergence(_as_full_gaussian(q), _as_full_gaussian(p))


def _samples(x: Tensor, model: LatentVariableModel, q: Distribution, n_samples: int,
             generator: torch.Generator) -> tuple[Tensor, Tensor, Distribution]:
    x = as_tensor("x", x, ndim=2, nonempty=True)
    n_samples = check_count("n_samples", n_samples)
    q = _check_q(x, model, q)
    return x, sample(q, n_samples, generator=generator), q  # z: (K, B, L)


def elbo_joint_plus_entropy(
    x: Tensor, model: LatentVariableModel, q: Distribution, n_samples: int,
    *, generator: torch.Generator,
) -> Tensor:
    """Monte Carlo E_q[log p_θ(x|z) + log p(z)] plus the exact entropy
    H[q], shape (B,)."""
    x, z, q = _samples(x, model, q, n_samples, generator)  # z: (K, B, L)
    log_joint = model.log_likelihood(x, z) + model.prior.log_prob(z)  # (K, B)
    return log_joint.mean(0) + q.entropy()


def elbo_reconstruction_minus_kl(
    x: Tensor, model: LatentVariableModel, q: Distribution, n_samples: int,
    *, generator: torch.Generator,
) -> Tensor:
    """Monte Carlo E_q[log p_θ(x|z)] minus the closed-form KL(q || p(z)),
    shape (B,)."""
    x, z, q = _samples(x, model, q, n_samples, generator)  # z: (K, B, L)
    return model.log_likelihood(x, z).mean(0) - _kl(q, model.prior)


def elbo_evidence_minus_gap(log_evidence: Tensor, posterior: Distribution, q: Distribution) -> Tensor:
    """log p_θ(x) − KL(q_φ(z|x) || p_θ(z|x)), for a model whose posterior is known exactly, shape (B,)."""
    log_evidence = as_tensor("log_evidence", log_evidence, ndim=1)
    check_instance("posterior", posterior, Distribution, "a torch.distributions.Distribution")
    check_instance("q", q, Distribution, "a torch.distributions.Distribution")
    if q.event_shape != posterior.event_shape:
        raise ValueError(f"q and posterior must share the latent size, got {tuple(q.event_shape)} "
                         f"and {tuple(posterior.event_shape)}")
    return log_evidence - _kl(q, posterior)


def log_importance_weights(
    x: Tensor, model: LatentVariableModel, q: Distribution, n_samples: int,
    *, generator: torch.Generator,
) -> Tensor:
    """log w_k = log p_θ(x|z_k) + log p(z_k) − log q(z_k|x) for z_k ~ q,
    shape (K, B)."""
    x, z, q = _samples(x, model, q, n_samples, generator)  # z: (K, B, L)
    return (model.log_likelihood(x, z)  # (K, B)
            + model.prior.log_prob(z)
            - q.log_prob(z))


def iwae_bound(log_weights: Tensor) -> Tensor:
    """log (1/K) Σ_k w_k from log-weights of shape (K, B), computed stably
    with logsumexp, shape (B,)."""
    log_weights = as_tensor("log_weights", log_weights, ndim=2)
    k = log_weights.shape[0]
    if k < 1:
        raise ValueError(
            "log_weights must hold at least one sample (K >= 1) along "
            f"dimension 0, got shape {tuple(log_weights.shape)}")
    return torch.logsumexp(log_weights, dim=0) - math.log(k)


def log_marginal_importance(x: Tensor, model: LatentVariableModel, q: Distribution, n_samples: int, *,
                            generator: torch.Generator, max_elements: int = 2**18) -> Tensor:
    """The importance-sampling estimate log (1/K) Σ_k p_θ(x, z_k)/q(z_k|x) of log p_θ(x), shape (B,).

    Its expectation is the bound L_K; with q = p(z) it is the *naive* Monte Carlo estimate
    log (1/K) Σ_k p_θ(x|z_k), z_k ~ p(z), of chapter 1. The K samples are drawn in chunks of at most
    ``max_elements`` (samples × rows of x) so that memory stays bounded for any K and batch size
    (a reader on Binder has about 2 GB).
    """
    x = as_tensor("x", x, ndim=2, nonempty=True)
    n_samples = check_count("n_samples", n_samples)
    chunk_size = max(1, check_count("max_elements", max_elements) // x.shape[0])
    parts = []
    for start in range(0, n_samples, chunk_size):
        k = min(chunk_size, n_samples - start)
        parts.append(torch.logsumexp(log_importance_weights(x, model, q, k, generator=generator), dim=0))  # (B,)
    return torch.logsumexp(torch.stack(parts), dim=0) - math.log(n_samples)


def repeated_log_marginal_estimates(x: Tensor, model: LatentVariableModel, q: Distribution,
                                    sample_sizes: list[int], repeats: int, *,
                                    generator: torch.Generator) -> Tensor:
    """``repeats`` independent estimates log (1/N) Σ_n p_θ(x, z_n)/q(z_n|x) for each N in ``sample_sizes``.

    x is one observation (1, D) and q a distribution over z for it (or the prior: the naive estimator).
    Returns shape (repeats, len(sample_sizes)): the spread across rows is the estimator's spread.
    Chapter 1 uses it to compare sampling the prior with sampling a posterior-like q.
    """
    x = as_tensor("x", x, ndim=2)
    if x.shape[0] != 1:
        raise ValueError(f"x must hold a single observation, shape (1, D), got {tuple(x.shape)}")
    repeats = check_count("repeats", repeats)
    if q.batch_shape not in (torch.Size([]), torch.Size([1])):
        raise ValueError(
            f"q must be a distribution for the single x (batch shape () or (1,)), got {tuple(q.batch_shape)}")
    q_rep = q.expand(torch.Size([repeats]))
    x_rep = x.expand(repeats, -1)  # (R, D)
    cols = [log_marginal_importance(x_rep, model, q_rep, check_count("sample_sizes", n), generator=generator)
            for n in sample_sizes]
    return torch.stack(cols, -1)  # (R, len(N))
