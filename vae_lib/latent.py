"""Diagnostics of a latent space (chapter 1: the holes in an autoencoder's latent space; chapter 5: the aggregate
posterior that a learned prior should match)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._checks import as_tensor, check_real

__all__ = ["aggregate_posterior_log_density", "hole_fraction"]


def hole_fraction(codes: Tensor, z: Tensor, factor: float = 3.0) -> float:
    """Fraction of the points z that fall in a *hole* of the code cloud.

    A point is in a hole when its distance to the nearest code is more than ``factor`` times the median
    nearest-neighbour distance between the codes themselves (the typical spacing of the cloud), so the
    measure does not depend on the scale of the latent space. codes (N, L), z (M, L).
    """
    codes = as_tensor("codes", codes, ndim=2)
    z = as_tensor("z", z, ndim=2, nonempty=True)  # the fraction of no points is undefined
    if codes.shape[0] < 2:
        raise ValueError(f"codes must hold at least 2 points, got {codes.shape[0]}")
    if z.shape[1] != codes.shape[1]:
        raise ValueError(f"z must have latent size {codes.shape[1]} like codes, got {z.shape[1]}")
    check_real("factor", factor, above=0)
    z = z.to(codes.dtype)  # cdist needs one dtype (e.g. float32 codes against float64 numpy points)
    spacing = torch.cdist(codes, codes).fill_diagonal_(float("inf")).min(1).values.median()  # typical gap
    nearest = torch.cdist(z, codes).min(1).values  # (M,)
    return (nearest > factor * spacing).float().mean().item()


def aggregate_posterior_log_density(mean: Tensor, log_var: Tensor, z: Tensor) -> Tensor:
    """log q(z) of the aggregate posterior q(z) = (1/N) Σ_n N(z; μ_n, diag σ_n²) at each row of z.

    mean, log_var (N, L): the encoder's q_φ(z|x_n) for N inputs; z (M, L) -> (M,). For a fixed encoder this
    mixture is the prior that maximises the average ELBO (the training chapter's learned prior imitates it).
    """
    mean = as_tensor("mean", mean, ndim=2, nonempty=True)  # the mixture of no components is undefined
    log_var = as_tensor("log_var", log_var, ndim=2, dtype=mean.dtype)
    z = as_tensor("z", z, ndim=2, dtype=mean.dtype)
    if log_var.shape != mean.shape:
        raise ValueError(f"log_var must have the shape of mean {tuple(mean.shape)}, got {tuple(log_var.shape)}")
    if z.shape[1] != mean.shape[1]:
        raise ValueError(f"z must have latent size {mean.shape[1]} like mean, got {z.shape[1]}")
    per_input = torch.distributions.Normal(mean, torch.exp(0.5 * log_var)).log_prob(z[:, None, :]).sum(-1)  # (M, N)
    return torch.logsumexp(per_input, dim=1) - torch.log(torch.tensor(float(mean.shape[0]), dtype=per_input.dtype))
