"""Posterior collapse diagnostics (the training chapter): KL per latent dimension and active units.

A latent dimension l is *collapsed* when q_φ(z_l|x) ≈ p(z_l) = N(0, 1) for every x: its KL term is ≈ 0
and the decoder ignores it. The number of *active* dimensions counts those whose mean KL over the data
exceeds a threshold (0.01 nats by default).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._checks import as_tensor, check_real
from .models import VAE

__all__ = ["active_dimensions", "mean_kl_per_dimension"]


def mean_kl_per_dimension(model: VAE, x: Tensor) -> Tensor:
    """E_x[KL(q_φ(z_l|x) || N(0, 1))] over the rows of x, for each latent dimension l, shape (L,)."""
    if not isinstance(model, VAE):
        raise TypeError(f"model must be a vae_lib.VAE, got {type(model).__name__}")
    with torch.no_grad():
        return model.kl_per_dimension(x).mean(0)  # (L,)


def active_dimensions(kl_per_dim: Tensor, threshold: float = 0.01) -> int:
    """How many latent dimensions carry more than ``threshold`` nats of mean KL."""
    kl_per_dim = as_tensor("kl_per_dim", kl_per_dim, ndim=1)
    check_real("threshold", threshold, above=0)
    return int((kl_per_dim > threshold).sum())
