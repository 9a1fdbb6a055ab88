"""Diagnostics of a latent space (chapter 1: the holes in an autoencoder's latent space)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._checks import as_tensor

__all__ = ["hole_fraction"]


def hole_fraction(codes: Tensor, z: Tensor, factor: float = 3.0) -> float:
    """Fraction of the points z that fall in a *hole* of the code cloud.

    A point is in a hole when its distance to the nearest code is more than ``factor`` times the median
    nearest-neighbour distance between the codes themselves (the typical spacing of the cloud), so the
    measure does not depend on the scale of the latent space. codes (N, L), z (M, L).
    """
    codes = as_tensor("codes", codes, ndim=2)
    z = as_tensor("z", z, ndim=2)
    if codes.shape[0] < 2:
        raise ValueError(f"codes must hold at least 2 points, got {codes.shape[0]}")
    if z.shape[1] != codes.shape[1]:
        raise ValueError(f"z must have latent size {codes.shape[1]} like codes, got {z.shape[1]}")
    if not factor > 0:
        raise ValueError(f"factor must be positive, got {factor}")
    spacing = torch.cdist(codes, codes).fill_diagonal_(float("inf")).min(1).values.median()  # typical gap
    nearest = torch.cdist(z, codes).min(1).values  # (M,)
    return (nearest > factor * spacing).float().mean().item()
