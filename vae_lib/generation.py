"""Using a trained VAE (the training chapter): generate, reconstruct, interpolate, and score new inputs.

* generation: z ~ p(z), then the decoder's mean E_{p_θ(x|z)}[x];
* reconstruction: the decoder's mean at the encoder's mean μ_φ(x);
* interpolation: decode along the straight line between μ_φ(x_a) and μ_φ(x_b);
* scoring: the ELBO L(θ, φ; x) ≤ log p_θ(x) of a new input (low for inputs unlike the training data).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._checks import as_tensor, check_count, check_generator, check_same_shape
from .models import VAE

__all__ = ["elbo_score", "interpolate", "odd_digit_inputs", "reconstruct", "sample_images", "sample_observations"]


def _vae(model: object) -> VAE:
    if not isinstance(model, VAE):
        raise TypeError(f"model must be a vae_lib.VAE, got {type(model).__name__}")
    return model


def sample_images(model: VAE, n: int, *, generator: torch.Generator) -> Tensor:
    """E[x|z] for n draws z ~ p(z) (the model's prior: N(0, I) or a learned one), shape (n, D)."""
    model = _vae(model)
    z = model.sample_prior(n, generator=generator)  # (n, L)
    with torch.no_grad():
        return model.decode_mean(z)


def sample_observations(model: VAE, n: int, *, generator: torch.Generator) -> Tensor:
    """n draws x ~ p_θ(x) in data units: z ~ p(z), then x ~ p_θ(x|z) (Gaussian decoders), shape (n, D)."""
    model = _vae(model)
    c = model.config
    if c.likelihood not in ("gaussian", "gaussian_fixed"):
        raise ValueError(f"sample_observations supports the Gaussian decoders, got {c.likelihood!r}")
    z = model.sample_prior(n, generator=generator)  # (n, L), from the model's prior
    with torch.no_grad():
        out = model.decoder(z)
        if c.likelihood == "gaussian":
            mean, log_var = out.chunk(2, dim=-1)  # (n, D) each, on x / x_scale
            std = torch.exp(0.5 * log_var)
        else:
            mean, std = out, torch.full_like(out, c.fixed_sigma)
        return c.x_scale * (mean + std * torch.randn(mean.shape, generator=generator))


def reconstruct(model: VAE, x: Tensor) -> Tensor:
    """E[x|z = μ_φ(x)]: the decoded posterior mean, shape (B, D)."""
    model = _vae(model)
    with torch.no_grad():
        return model.decode_mean(model.encode(x)[0])


def interpolate(model: VAE, x_a: Tensor, x_b: Tensor, n_steps: int = 10) -> Tensor:
    """Decode z_t = (1 − t) μ_φ(x_a) + t μ_φ(x_b) for n_steps values of t from 0 to 1, shape (n_steps, D)."""
    model = _vae(model)
    n_steps = check_count("n_steps", n_steps, minimum=2)
    x_a = as_tensor("x_a", x_a, ndim=1)
    x_b = check_same_shape(("x_a", "x_b"), x_a, as_tensor("x_b", x_b, ndim=1, dtype=x_a.dtype))
    x = torch.stack([x_a, x_b])  # (2, D)
    with torch.no_grad():
        mu = model.encode(x)[0]  # (2, L)
        t = torch.linspace(0.0, 1.0, n_steps).unsqueeze(-1)  # (T, 1)
        return model.decode_mean((1 - t) * mu[0] + t * mu[1])  # (T, D)


def elbo_score(model: VAE, x: Tensor, n_samples: int = 16, *, generator: torch.Generator) -> Tensor:
    """L(θ, φ; x) per input with ``n_samples`` reparameterized samples (a lower bound on log p_θ(x)), (B,)."""
    model = _vae(model)
    with torch.no_grad():
        return model.elbo(x, check_count("n_samples", n_samples), generator=generator)


def odd_digit_inputs(x: Tensor, *, generator: torch.Generator, levels: int = 17) -> dict[str, Tensor]:
    """Inputs unlike the training digits, built from 8×8 digits x (B, 64) with integer levels 0…levels−1.

    ``inverted``: levels−1 − x; ``shifted``: each image moved 3 pixels right (zeros enter from the left);
    ``noise``: independent uniform levels. All stay integer images on the same levels.
    """
    x = as_tensor("x", x, ndim=2)
    check_generator(generator)
    if x.shape[1] != 64:
        raise ValueError(f"x must hold 8×8 images flattened to 64 pixels, got shape {tuple(x.shape)}")
    img = x.reshape(-1, 8, 8)
    shifted = torch.zeros_like(img)
    shifted[:, :, 3:] = img[:, :, :-3]
    noise = torch.randint(0, levels, x.shape, generator=generator).to(x.dtype)
    return {"inverted": (levels - 1) - x, "shifted": shifted.reshape(x.shape), "noise": noise}
