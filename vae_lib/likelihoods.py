"""Decoder log-likelihoods log p_θ(x|z), with every constant kept.

The book uses three decoders (chapter 1 introduces the Gaussian one and the categorical one of the digits, the
training chapter, 5, compares all three):

* Gaussian:     log N(x; μ, σ²I) = −½ Σ_d [ log 2π + log σ_d² + (x_d − μ_d)² / σ_d² ]
* Bernoulli:    Σ_d [ x_d log p_d + (1 − x_d) log(1 − p_d) ],  p = sigmoid(logits)
* Categorical:  Σ_d log softmax(logits_d)[x_d]  over the pixel levels 0 … L−1.

With σ = 1 the Gaussian gives −½ ‖x − μ‖² − (D/2) log 2π: "MSE" is the Gaussian log-likelihood
only up to the factor −½, the constant, and the *sum* (not mean) over the D pixels. Chapter 1 derives this
relation, log N(x; μ, σ²I) = −‖x − μ‖²/(2σ²) − (D/2) log(2πσ²), in its section "The Gaussian decoder and the
squared error" (label ``gaussian-decoder-squared-error``), checked there against ``torch.distributions``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ._checks import as_index_tensor, as_tensor, check_broadcast

__all__ = [
    "LOG_2PI",
    "bernoulli_log_likelihood",
    "categorical_log_likelihood",
    "gaussian_log_likelihood",
]

LOG_2PI = math.log(2 * math.pi)


def gaussian_log_likelihood(
    x: Tensor, mean: Tensor, log_var: Tensor | float = 0.0
) -> Tensor:
    """log N(x; mean, diag(exp(log_var))) summed over the last (data)
    dimension, shape (...,).

    ``log_var`` may be a tensor (a learned variance, per pixel or per
    example) or a float (a fixed variance; 0.0 means σ = 1).
    """
    x = as_tensor("x", x, min_ndim=1)
    mean = as_tensor("mean", mean, min_ndim=1)
    # a float log_var takes the data's precision (not float32, which
    # would round log σ² for float64 data)
    if isinstance(log_var, Tensor):
        dtype = None
    else:
        dtype = torch.promote_types(x.dtype, mean.dtype)
    log_var = as_tensor("log_var", log_var, dtype=dtype)
    shape = check_broadcast(("x", "mean"), x, mean)
    check_broadcast(("x", "log_var"), torch.empty(shape), log_var)
    sq = (x - mean) ** 2  # (..., D)
    return -0.5 * (LOG_2PI + log_var + sq * torch.exp(-log_var)).sum(-1)


def bernoulli_log_likelihood(x: Tensor, logits: Tensor) -> Tensor:
    """Σ_d [x_d log p_d + (1 − x_d) log(1 − p_d)] with p = sigmoid(logits), shape (...,).

    x must lie in [0, 1]. It is a normalised likelihood only for binary x; for grey levels in between
    (as many tutorials use) it is the "continuous Bernoulli" without its normaliser.
    """
    x = as_tensor("x", x, min_ndim=1)
    logits = as_tensor("logits", logits, min_ndim=1)
    shape = check_broadcast(("x", "logits"), x, logits)
    if (x < 0).any() or (x > 1).any():
        raise ValueError("x must lie in [0, 1] for a Bernoulli likelihood")
    return -F.binary_cross_entropy_with_logits(logits.expand(shape), x.expand(shape), reduction="none").sum(-1)


def categorical_log_likelihood(x: Tensor, logits: Tensor) -> Tensor:
    """Σ_d log softmax(logits_d)[x_d] for integer levels x_d ∈ {0, …, L−1}, shape (...,).

    ``logits`` has shape (..., D, L): one distribution over the L levels per pixel.
    """
    logits = as_tensor("logits", logits, min_ndim=2)
    n_levels = logits.shape[-1]
    # integer levels, or floats holding them exactly (never truncated), in 0..L−1 (the last dimension of logits)
    x = as_index_tensor("x", x, n_levels, floats_ok=True, what="pixel levels (the last dimension of logits)")
    if x.dim() < 1 or x.shape[-1] != logits.shape[-2]:
        raise ValueError(f"x (shape {tuple(x.shape)}) and logits (shape {tuple(logits.shape)}) must agree on D")
    batch = check_broadcast(("x", "logits[..., 0]"), x, logits[..., 0])[:-1]
    log_probs = torch.log_softmax(logits, dim=-1).expand(*batch, *logits.shape[-2:])  # (..., D, L)
    idx = x.expand(*batch, x.shape[-1]).unsqueeze(-1)  # (..., D, 1)
    return log_probs.gather(-1, idx).squeeze(-1).sum(-1)

