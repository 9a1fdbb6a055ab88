"""The loss-scale pitfall of the training chapter: a mean-reduced reconstruction plus a summed KL.

Seed 003's loss is ``F.mse_loss(x̂, x) + kld_weight · KL``: the squared error *averaged* over the n
pixels, plus the KL *summed* over the latent dimensions. With the Gaussian decoder of fixed σ,

    −L_β(θ, φ; x) = Σ_d (x_d − μ_d)² / (2σ²) + (D/2) log 2πσ² + β KL(q_φ(z|x) || p(z)),

and multiplying seed 003's loss by n/(2σ²) gives exactly this (up to the constant) with

    β = kld_weight · n / (2σ²),     or, reading it as a true ELBO (β = 1),  σ = √(kld_weight · n / 2).

With n = 64 pixels in [0, 1] and kld_weight = 1 the implied σ is √32 ≈ 5.7. Whether the posterior collapses is
decided by w alone (n cancels in the trade-off): a nat of KL pays only if it lowers the per-pixel mean squared error
by at least w, so the rate at the optimum is at most V / w (:func:`rate_bound`, V the data's mean per-pixel
variance). For the digits V ≈ 0.1 < 1: collapse. Seed 003's own setting (n = 12288, w ≈ 64/15000) implies σ ≈ 5.1,
and its tiny w is what lets it encode anything. Seed 004's ‖x − x̂‖² + KL (a sum, n = 1) implies σ = 1/√2 ≈ 0.71.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import kl_divergence

from ._checks import as_tensor, check_count, check_generator, check_real
from .gaussian import sample
from .models import VAE

__all__ = ["MeanSquaredErrorPlusKL", "implied_beta", "implied_sigma", "rate_bound"]


def implied_sigma(kld_weight: float, n_averaged: int) -> float:
    """The σ of the Gaussian decoder for which (mean of n squared errors) + w·KL is a multiple of −L (β = 1)."""
    n_averaged = check_count("n_averaged", n_averaged)
    if not kld_weight > 0:
        raise ValueError(f"kld_weight must be positive, got {kld_weight}")
    return math.sqrt(kld_weight * n_averaged / 2)


def implied_beta(kld_weight: float, n_averaged: int, sigma: float) -> float:
    """β = w·n/(2σ²): the KL weight that (mean of n squared errors) + w·KL carries for a decoder of noise σ."""
    n_averaged = check_count("n_averaged", n_averaged)
    if not kld_weight > 0:
        raise ValueError(f"kld_weight must be positive, got {kld_weight}")
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    return kld_weight * n_averaged / (2 * sigma**2)


def rate_bound(x: Tensor, kld_weight: float) -> float:
    """V / w: the largest mean KL (nats per example) an optimum of (mean of n squared errors) + w·KL can carry.

    ``x`` (N, n) holds the data in the units the loss sees (e.g. pixels on [0, 1]); V is the mean over the n pixels
    of each pixel's variance over the N examples. The collapsed model (q_φ(z|x) = p(z), decoder output = the mean
    image) has KL = 0 and expected loss V; an optimum does no worse, MSE + w·KL ≤ V, and MSE ≥ 0, so its mean KL is
    at most V / w. The number of pixels n cancels: a nat of KL pays only if it lowers the per-pixel MSE by w.
    """
    x = as_tensor("x", x, ndim=2)
    if x.shape[0] < 2:
        raise ValueError(f"x must hold at least 2 examples (rows), got {x.shape[0]}")
    kld_weight = check_real("kld_weight", kld_weight, above=0)
    per_pixel_variance = x.var(0, unbiased=False)  # (n,)
    return per_pixel_variance.mean().item() / kld_weight


class MeanSquaredErrorPlusKL(nn.Module):
    """Seed 003's objective on a :class:`VAE`: mean over pixels of (μ_θ(z) − x/s)² + w · KL(q_φ(z|x) || p(z)).

    ``vae`` must use the ``gaussian_fixed`` likelihood (its decoder output is the mean μ_θ(z) on x/s).
    """

    def __init__(self, vae: VAE, kld_weight: float = 1.0) -> None:
        super().__init__()
        if not isinstance(vae, VAE) or vae.config.likelihood != "gaussian_fixed":
            raise TypeError("vae must be a VAE with likelihood='gaussian_fixed'")
        check_real("kld_weight", kld_weight, above=0)
        self.vae = vae
        self.kld_weight = float(kld_weight)

    def loss(self, x: Tensor, *, generator: torch.Generator) -> Tensor:
        """F.mse_loss(x̂, x/s) per example (mean over the D pixels)
        + w · KL summed over latents, shape (B,)."""
        check_generator(generator)
        # (B, D) in the network's dtype (numpy and float64 converted)
        x = self.vae.flatten_data(x)
        q = self.vae.posterior(x)
        z = sample(q, 1, generator=generator)[0]  # (B, L)
        x_hat = self.vae.decoder(z)  # (B, D) mean on x/s
        x_scaled = x / self.vae.config.x_scale  # (B, D)
        mse = F.mse_loss(x_hat, x_scaled, reduction="none").mean(-1)  # (B,)
        return mse + self.kld_weight * kl_divergence(q, self.vae.prior)
