"""Held-out log-likelihoods on one scale: nats per integer-valued image (the training chapter).

* Discrete decoders (the categorical over the 17 pixel levels) give a probability P_θ(x) of the integer
  image; :func:`log_evidence` estimates log P_θ(x) by importance weighting with K samples of q_φ(z|x).
* Continuous decoders (the Gaussian) give a density. For a VAE whose likelihood is on y = v / s (s =
  ``x_scale``), the density of v itself is p(v) = p_y(v / s) / s^D, so ``log_evidence`` subtracts D log s.
  Uniform dequantization turns it into a bound on the probability of the integer image x:

      P(x) = ∫_{[0,1)^D} p(x + u) du  ≥  exp E_u[log p(x + u)],     u ~ U[0, 1)^D   (Jensen),

  so :func:`dequantized_log_prob` = log p(x + u) for one u per image is an unbiased estimate of a lower bound
  on log P_θ(x), in nats of the integer image (Theis et al., 2016).

:func:`bits_per_dim` converts nats per image to bits per dimension, the unit of image-model papers (chapter 7).
Images x may be given as (B, C, H, W) or flattened (B, D), for a VAE whose ``config.data_shape`` is (C, H, W).
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor

from ._checks import as_tensor, check_count, check_generator
from .elbo import log_marginal_importance
from .models import VAE

__all__ = ["bernoulli_level_log_mass", "bits_per_dim", "dequantized_log_prob", "log_evidence", "nll_nats_per_image"]

_CONTINUOUS = ("gaussian", "gaussian_fixed")
_ELEMENT_BUDGET = 2**24  # floats held at once by the decoder over a chunk of samples (64 MB)


def _check_vae(model: object) -> VAE:
    if not isinstance(model, VAE):
        raise TypeError(f"model must be a vae_lib.VAE, got {type(model).__name__}")
    return model


def _decoder_width(model: VAE) -> int:
    """Floats the decoder holds per latent sample: every layer's output plus the likelihood's copy of the output.

    For the fully connected decoder this is 2·Σ hidden + 2·out (pre- and post-activation of each hidden layer).
    """
    return model.decoder_width


def log_evidence(model: VAE, x: Tensor, n_samples: int, *, generator: torch.Generator) -> Tensor:
    """Importance-weighted estimate of log p_θ(x) in the units of x (K = ``n_samples`` draws of q_φ(z|x)), (B,).

    For a continuous likelihood on x / s the Jacobian term −D log s is included, so the result is the density
    of x itself. Memory stays bounded: the samples are processed in chunks. x is (B, D) or (B, *data_shape).
    """
    model = _check_vae(model)
    x = model.flatten_data(x)  # (B, D)
    n_samples = check_count("n_samples", n_samples)
    check_generator(generator)
    c = model.config
    max_elements = max(1, _ELEMENT_BUDGET // _decoder_width(model))
    with torch.no_grad():
        log_p = log_marginal_importance(x, model, model.posterior(x), n_samples, generator=generator,
                                        max_elements=max_elements)  # (B,)
    if c.likelihood in _CONTINUOUS:
        log_p = log_p - c.data_dim * math.log(c.x_scale)
    return log_p


def dequantized_log_prob(model: VAE, x_int: Tensor, n_samples: int, *, generator: torch.Generator) -> Tensor:
    """log p_θ(x + u) for one u ~ U[0, 1)^D per image: an estimate of a lower bound on log P_θ(x), shape (B,).

    x_int holds integer levels; ``model`` must have a continuous likelihood, trained on x + u
    (``TrainConfig(dequantize=True)``).
    """
    model = _check_vae(model)
    if model.config.likelihood not in _CONTINUOUS:
        raise ValueError(f"model must have a continuous likelihood {_CONTINUOUS} for dequantization, "
                         f"got {model.config.likelihood!r}")
    x_int = model.flatten_data(x_int, "x_int")  # (B, D)
    if not torch.equal(x_int, x_int.round()):
        raise ValueError("x_int must hold integer pixel levels")
    check_generator(generator)
    u = torch.rand(x_int.shape, generator=generator, dtype=x_int.dtype)  # (B, D)
    return log_evidence(model, x_int + u, n_samples, generator=generator)


def nll_nats_per_image(model: VAE, x_int: Tensor, n_samples: int, *, generator: torch.Generator) -> float:
    """Mean −log P_θ(x) over the integer images x_int, in nats per image.

    Categorical decoder: the importance-weighted estimate of −log P_θ(x). Continuous decoders: the
    dequantized bound (an upper bound on the NLL, in expectation). A Bernoulli decoder on grey levels is not
    a distribution over the pixel levels, so it is refused.
    """
    model = _check_vae(model)
    x_int = model.flatten_data(x_int, "x_int")  # (B, D): errors name x_int
    kind = model.config.likelihood
    if kind == "categorical":
        return -log_evidence(model, x_int, n_samples, generator=generator).mean().item()
    if kind in _CONTINUOUS:
        return -dequantized_log_prob(model, x_int, n_samples, generator=generator).mean().item()
    raise ValueError("a Bernoulli decoder on grey levels is not a distribution over integer images: "
                     "its numbers are not comparable (see bernoulli_level_mass)")


def bits_per_dim(nats_per_image: float | Tensor, n_dims: int) -> float | Tensor:
    """Bits per dimension: −log P(x) in nats per image divided by D·ln 2, for D = ``n_dims`` values per image.

    The unit of the PixelCNN and VQ-VAE papers: it makes images of different sizes comparable (−log₂ P(x) / D is
    the average code length per pixel of an entropy coder driven by the model), and gives an easy reference: the
    uniform distribution over n levels scores log₂ n, e.g. 8 bits/dim for 256 levels, 4 for 16. Lower is better.
    Only meaningful for a probability of the integer image: a categorical decoder, or a dequantized continuous
    one (a bound, :func:`dequantized_log_prob`). Chapter 7 reports its convolutional VAE in these units.
    ``nats_per_image`` may be a float (returns a float) or a tensor of per-image values (returns a tensor).
    """
    n_dims = check_count("n_dims", n_dims)
    if isinstance(nats_per_image, Tensor):
        return as_tensor("nats_per_image", nats_per_image) / (n_dims * math.log(2))
    if hasattr(nats_per_image, "__array__") and not isinstance(nats_per_image, numbers.Real):  # a numpy array
        return as_tensor("nats_per_image", nats_per_image) / (n_dims * math.log(2))
    if isinstance(nats_per_image, bool) or not isinstance(nats_per_image, numbers.Real):
        raise TypeError(f"nats_per_image must be a number or a tensor, got {type(nats_per_image).__name__}")
    if not math.isfinite(nats_per_image):
        raise ValueError(f"nats_per_image must be finite, got {nats_per_image}")
    return float(nats_per_image) / (n_dims * math.log(2))


def bernoulli_level_log_mass(logits: Tensor, n_levels: int = 17) -> Tensor:
    """log Σ_k exp(ℓ(k/(n−1))) over the levels k = 0 … n−1, with ℓ the Bernoulli log-likelihood on grey level
    x = k/(n−1): the log of the total "probability" a Bernoulli pixel gives the n levels, shape of ``logits``.

    A normalised distribution over the levels would give 0; the Bernoulli on grey levels does not (at p = ½
    every level gets ½, a total of n/2), which is why its numbers are not log-probabilities of images.
    """
    logits = as_tensor("logits", logits)
    n_levels = check_count("n_levels", n_levels, minimum=2, maximum=2**16)
    x = torch.linspace(0.0, 1.0, n_levels, dtype=logits.dtype)  # (n,)
    lp = torch.nn.functional.logsigmoid(logits).unsqueeze(-1)  # (..., 1)
    lq = torch.nn.functional.logsigmoid(-logits).unsqueeze(-1)
    return torch.logsumexp(x * lp + (1 - x) * lq, dim=-1)
