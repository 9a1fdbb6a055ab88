"""Training with the importance-weighted bound L_K, its gradients, and their signal-to-noise ratio ("closing the gap").

With K reparameterized samples z_k = μ_φ(x) + σ_φ(x) ⊙ ε_k and log-weights log w_k = log p_θ(x, z_k) − log q_φ(z_k|x),
the bound of Burda et al. (2016), :func:`vae_lib.elbo.iwae_bound`, is L_K = log (1/K) Σ_k w_k. Its gradient is a
*self-normalised* importance-weighted average,

    ∇ L_K = Σ_k w̃_k ∇ log w_k,      w̃_k = w_k / Σ_j w_j = softmax(log w)_k,

so every sample contributes in proportion to its weight (K = 1: the ELBO's gradient). For the encoder, the total
derivative ∇_φ log w_k = (∂ log w_k/∂z_k)(∂z_k/∂φ) − ∂ log q_φ(z_k|x)/∂φ has a score-function part whose noise does
not shrink as K grows, while the signal does: the signal-to-noise ratio of the encoder's gradient falls like 1/√K
(Rainforth et al., 2018). The doubly-reparameterized gradient (DReG; Tucker et al., 2019) removes that part with a
second reparameterization, an estimator with the same expectation:

    ∇_φ L_K  (DReG) = Σ_k w̃_k² (∂ log w_k/∂z_k)(∂z_k/∂φ),     log q evaluated with φ held fixed.

* :func:`iwae_surrogate` — a per-example scalar whose value is L_K and whose gradient is the IWAE or the DReG
  estimator (decoder: Σ_k w̃_k ∇_θ log w_k in both);
* :func:`iwae_loss` — −L_K for the book's :class:`vae_lib.VAE`, what ``vae_lib.train.fit`` minimises with
  ``TrainConfig(objective="iwae", k=K)``;
* :func:`normalised_weights` — w̃ = softmax(log w) over the K samples;
* :func:`encoder_gradient_snr` — |E g| / sd(g) of the encoder's gradient estimate against K, per estimator;
* :func:`active_units` — Burda et al.'s count of the latent dimensions the model uses: A_j = Cov_x(E_q[z_j]) > 10⁻².
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ._checks import (
    as_tensor,
    check_bool,
    check_count,
    check_generator,
    check_instance,
    check_last_dim,
    check_real,
)
from .elbo import LatentVariableModel, iwae_bound
from .models import VAE

__all__ = ["GradientSNR", "active_units", "encoder_gradient_snr", "iwae_loss", "iwae_surrogate", "normalised_weights"]


def normalised_weights(log_weights: Tensor) -> Tensor:
    """The self-normalised importance weights w̃_k = w_k / Σ_j w_j = softmax(log w)_k over dimension 0, (K, B)."""
    log_weights = as_tensor("log_weights", log_weights, ndim=2, nonempty=True)
    return torch.softmax(log_weights, dim=0)


def active_units(posterior_means: Tensor, threshold: float = 1e-2) -> tuple[int, Tensor]:
    """Burda et al.'s (2016) active units: the activity A_j = Cov_x(E_{q_φ(z|x)}[z_j]) of each latent dimension j,
    the variance over the data of the posterior mean μ_φ(x)_j, and how many exceed ``threshold``.

    ``posterior_means`` (N, L) holds μ_φ(x) for N examples (e.g. ``model.encode(x)[0]``). Returns (count, A (L,)).
    """
    means = as_tensor("posterior_means", posterior_means, ndim=2)
    if means.shape[0] < 2:
        raise ValueError(f"posterior_means must hold at least 2 examples (a variance over x), got {means.shape[0]}")
    threshold = check_real("threshold", threshold, above=0)
    activity = means.var(0, unbiased=False)  # (L,)
    return int((activity > threshold).sum()), activity


def iwae_surrogate(log_joint: Callable[[Tensor], Tensor], mean: Tensor,
                   log_var: Tensor, k: int, *, generator: torch.Generator,
                   dreg: bool = False) -> Tensor:
    """A surrogate per example, (B,): its value is the K-sample estimate of
    L_K, its gradient IWAE's Σ_k w̃_k ∇ log w_k or, with ``dreg``, DReG's.

    ``log_joint(z)`` returns log p_θ(x, z) for z of shape (K, B, L) as
    (K, B); ``mean`` and ``log_var`` (B, L) parameterise
    q_φ(z|x) = N(μ, diag σ²). With ``dreg`` the log-weights use log q with
    (μ, log σ²) held fixed, so φ reaches them only through z_k, and a hook
    scales the gradient arriving at z_k by w̃_k: the encoder receives
    Σ_k w̃_k² ∂log w_k/∂z_k ∂z_k/∂φ, the decoder Σ_k w̃_k ∇_θ log w_k
    (the same as IWAE's).
    """
    if not callable(log_joint):
        raise TypeError("log_joint must be callable (z (K, B, L) -> "
                        f"log p(x, z) (K, B)), got {type(log_joint).__name__}")
    mean = as_tensor("mean", mean, ndim=2, nonempty=True)
    log_var = as_tensor("log_var", log_var, ndim=2, nonempty=True)
    if mean.shape != log_var.shape:
        raise ValueError(f"mean {tuple(mean.shape)} and log_var "
                         f"{tuple(log_var.shape)} must have the same shape")
    k = check_count("k", k)
    check_generator(generator)
    check_bool("dreg", dreg)
    eps = torch.randn((k, *mean.shape), generator=generator,
                      dtype=mean.dtype)  # (K, B, L)
    std = torch.exp(0.5 * log_var)
    z = mean + std * eps  # (K, B, L), reparameterized
    if dreg:  # φ reaches log q only through z
        q_mean, q_log_var = mean.detach(), log_var.detach()
    else:
        q_mean, q_log_var = mean, log_var
    log_q = (-0.5 * (z - q_mean) ** 2 * torch.exp(-q_log_var)
             - 0.5 * q_log_var - 0.5 * math.log(2 * math.pi)).sum(-1)  # (K, B)
    log_p = log_joint(z)
    if not isinstance(log_p, Tensor) or log_p.shape != log_q.shape:
        got = (tuple(log_p.shape) if isinstance(log_p, Tensor)
               else type(log_p).__name__)
        raise ValueError("log_joint must return log p(x, z) of shape "
                         f"{tuple(log_q.shape)} (K, B), got {got}")
    log_w = log_p - log_q  # (K, B)
    bound = iwae_bound(log_w)  # (B,): log (1/K) Σ_k w_k
    if not dreg:
        return bound  # autograd: Σ_k w̃_k ∇ log w_k
    w_tilde = torch.softmax(log_w.detach(), dim=0)  # (K, B)
    if z.requires_grad:  # w̃_k (w̃_k ∂log w_k/∂z_k) reaches φ
        z.register_hook(lambda grad: grad * w_tilde.unsqueeze(-1))
    # gradient Σ_k w̃_k ∇ log w_k before the hook
    surrogate = (w_tilde * log_w).sum(0)  # (B,)
    return bound.detach() + surrogate - surrogate.detach()


def iwae_loss(model: VAE, x: Tensor, k: int, *, generator: torch.Generator,
              dreg: bool = False) -> Tensor:
    """−L_K(x) for the book's VAE with K samples of its q_φ(z|x), shape (B,);
    IWAE or (``dreg``) DReG gradients.

    K = 1 is the single-sample ELBO with log q evaluated at the sample (its
    expectation equals ``model.loss``'s).
    """
    check_instance("model", model, VAE,
                   "a vae_lib.VAE (the IWAE loss needs its encoder q_φ(z|x))")
    x = model.flatten_data(x)  # (B, D)
    mean, log_var = model.encode(x)  # (B, L) each

    def log_joint(z: Tensor) -> Tensor:  # (K, B, L) -> (K, B)
        return model.log_likelihood(x, z) + model.prior.log_prob(z)

    return -iwae_surrogate(log_joint, mean, log_var, k, generator=generator,
                           dreg=dreg)


@dataclass
class GradientSNR:
    """The encoder's gradient estimates at one q, for each K: ``snr`` (len(ks), 2L) = |mean| / sd over repeats
    for each of (μ, log σ²)'s coordinates, with the ``mean`` and ``sd`` themselves (same shape)."""

    ks: list[int]
    snr: Tensor
    mean: Tensor
    sd: Tensor


def encoder_gradient_snr(model: LatentVariableModel, x: Tensor, mean: Tensor, log_var: Tensor, ks: Sequence[int],
                         repeats: int, *, generator: torch.Generator, dreg: bool = False) -> GradientSNR:
    """The signal-to-noise ratio |E g| / sd(g) of the gradient g of L_K w.r.t. q's (μ, log σ²), for each K.

    x is one observation (1, D) and q = N(mean, diag exp(log_var)) with mean, log_var of shape (1, L). Each K draws
    ``repeats`` independent K-sample estimates at once (one copy of q's parameters per repeat, one backward pass).
    Rainforth et al. (2018): the IWAE estimator's SNR falls like 1/√K; DReG's does not fall.
    """
    x = as_tensor("x", x, ndim=2)
    if x.shape[0] != 1:
        raise ValueError(f"x must hold one observation, shape (1, D), got {tuple(x.shape)}")
    latent = model.prior.event_shape[0]
    mean = check_last_dim("mean", as_tensor("mean", mean, ndim=2), latent, "the latent size L")
    log_var = check_last_dim("log_var", as_tensor("log_var", log_var, ndim=2), latent, "the latent size L")
    if mean.shape[0] != 1 or log_var.shape[0] != 1:
        raise ValueError(f"mean and log_var must have shape (1, {latent}), got {tuple(mean.shape)} and "
                         f"{tuple(log_var.shape)}")
    repeats = check_count("repeats", repeats, minimum=2)
    check_generator(generator)
    x_rep = x.expand(repeats, -1)  # (R, D)
    means, sds = [], []
    for k in ks:
        k = check_count("ks", k)
        m = mean.detach().expand(repeats, -1).clone().requires_grad_(True)  # (R, L): one leaf per repeat
        v = log_var.detach().expand(repeats, -1).clone().requires_grad_(True)
        bound = iwae_surrogate(lambda z: model.log_likelihood(x_rep, z) + model.prior.log_prob(z), m, v, k,
                               generator=generator, dreg=dreg)  # (R,)
        grad_m, grad_v = torch.autograd.grad(bound.sum(), (m, v))
        g = torch.cat([grad_m, grad_v], -1)  # (R, 2L): one gradient estimate per repeat
        means.append(g.mean(0))
        sds.append(g.std(0))
    mean_t, sd_t = torch.stack(means), torch.stack(sds)  # (len(ks), 2L)
    return GradientSNR([int(k) for k in ks], mean_t.abs() / sd_t, mean_t, sd_t)
