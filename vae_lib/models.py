"""The VAE and the plain autoencoder the book trains (chapter 1 first, the training chapter in depth).

* :class:`VAE` — encoder q_φ(z|x) = N(μ_φ(x), diag σ_φ²(x)), prior p(z) = N(0, I), and a decoder
  p_θ(x|z) of one of the likelihood families of :mod:`vae_lib.likelihoods`. It satisfies the
  :class:`vae_lib.elbo.LatentVariableModel` interface, so every bound of :mod:`vae_lib.elbo` applies. Its networks
  are fully connected (:func:`mlp`, chapters 1–6) unless given: chapter 7 passes convolutional ones
  (:func:`vae_lib.networks.conv_networks`) for images x of shape (B, C, H, W).
* :class:`Autoencoder` — a deterministic encoder z = f_φ(x) and decoder x' = g_θ(z) trained on the
  squared error: the model whose latent space has holes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, Independent, kl_divergence

from ._checks import (
    as_model_input,
    check_choice,
    check_count,
    check_generator,
    check_instance,
    check_int,
    check_last_dim,
    check_real,
)
from .gaussian import diag_gaussian, sample, standard_normal_prior
from .likelihoods import bernoulli_log_likelihood, categorical_log_likelihood, gaussian_log_likelihood
from .networks import OutputLayout, _seeded, mlp

__all__ = ["AEConfig", "Autoencoder", "Likelihood", "VAE", "VAEConfig", "mlp"]

Likelihood = Literal["categorical", "bernoulli", "gaussian", "gaussian_fixed"]
_LIKELIHOODS = ("categorical", "bernoulli", "gaussian", "gaussian_fixed")


@dataclass(frozen=True)
class VAEConfig:
    """Architecture of a VAE: the data's shape, the latent size, the MLP sizes and the decoder p_θ(x|z).

    ``data_shape`` is the shape of one example: (D,) for flat data (the 8×8 digits are (64,)), (C, H, W) for
    images (chapter 7); ``data_dim`` D is the number of values in it. Give either (or both, consistent): the
    missing one is filled in, so after construction both are set; with neither, the data are (64,).
    ``likelihood`` picks p_θ(x|z): ``categorical`` over ``n_levels`` pixel levels (x holds integers),
    ``bernoulli`` or a ``gaussian`` with learned per-pixel variance or a fixed σ (``gaussian_fixed``) on
    x / x_scale. The encoder always sees x / x_scale. ``hidden`` sizes the default fully connected networks
    (ignored when the VAE is given its own), which draw their initial weights from ``seed`` (encoder) and
    ``seed + 1`` (decoder).
    """

    data_dim: int | None = None
    latent_dim: int = 2
    hidden: tuple[int, ...] = (256, 256)
    likelihood: Likelihood = "categorical"
    n_levels: int = 17
    x_scale: float = 16.0
    fixed_sigma: float = 1.0
    seed: int = 0
    data_shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.data_shape is None:
            dim = 64 if self.data_dim is None else check_count("data_dim", self.data_dim)
            shape: tuple[int, ...] = (dim,)
        else:
            if not isinstance(self.data_shape, (tuple, list)) or len(self.data_shape) == 0:
                raise TypeError(f"data_shape must be a non-empty tuple of sizes, e.g. (64,) or (1, 32, 32), "
                                f"got {self.data_shape!r}")
            shape = tuple(check_count("data_shape", s) for s in self.data_shape)
            dim = math.prod(shape)
            if self.data_dim is not None and check_count("data_dim", self.data_dim) != dim:
                raise ValueError(f"data_dim ({self.data_dim}) must equal the number of values in data_shape "
                                 f"{shape} ({dim}); give only one of them")
        object.__setattr__(self, "data_shape", shape)
        object.__setattr__(self, "data_dim", dim)
        check_count("latent_dim", self.latent_dim)
        _check_hidden(self.hidden)
        check_choice("likelihood", self.likelihood, _LIKELIHOODS)
        check_count("n_levels", self.n_levels, minimum=2)
        check_real("x_scale", self.x_scale, above=0)
        check_real("fixed_sigma", self.fixed_sigma, above=0)
        check_int("seed", self.seed)

    @property
    def decoder_outputs_per_dim(self) -> int:
        """k, the decoder's outputs per data value: n_levels logits (categorical), 2 (gaussian: mean and
        log-variance) or 1 (bernoulli logit, gaussian_fixed mean)."""
        return {"categorical": self.n_levels, "gaussian": 2}.get(self.likelihood, 1)

    @property
    def decoder_layout(self) -> OutputLayout:
        """How the decoder's D·k outputs are laid out: ``"pixel_major"`` (D, k) for the categorical logits,
        ``"parameter_major"`` (k, D) otherwise (the Gaussian's D means, then its D log-variances)."""
        return "pixel_major" if self.likelihood == "categorical" else "parameter_major"

    @property
    def decoder_output_size(self) -> int:
        """D·k, the size of the decoder's output for one z."""
        return self.data_dim * self.decoder_outputs_per_dim


@dataclass(frozen=True)
class AEConfig:
    """Architecture of the fully connected autoencoder (same sizes as :class:`VAEConfig`)."""

    data_dim: int = 64
    latent_dim: int = 2
    hidden: tuple[int, ...] = (256, 256)
    x_scale: float = 16.0
    seed: int = 0

    def __post_init__(self) -> None:
        check_count("data_dim", self.data_dim)
        check_count("latent_dim", self.latent_dim)
        _check_hidden(self.hidden)
        check_real("x_scale", self.x_scale, above=0)
        check_int("seed", self.seed)


def _check_hidden(hidden: object) -> tuple[int, ...]:
    """The hidden layer sizes of a config: a tuple (or list) of positive integers."""
    check_instance("hidden", hidden, (tuple, list), "a tuple of layer sizes, e.g. (256, 256)")
    return tuple(check_count("hidden", h, maximum=100_000) for h in hidden)


class VAE(nn.Module):
    """q_φ(z|x) = N(μ_φ(x), diag σ_φ²(x)),  p(z) = N(0, I),  p_θ(x|z) per ``config.likelihood``.

    ``encoder`` and ``decoder`` are the two networks (the interface is in :mod:`vae_lib.networks`): the encoder maps
    x / x_scale in its own shape (B, *data_shape) to (B, 2L) (μ_φ(x) and log σ_φ²(x)), the decoder maps z (N, L) to
    the (N, ``config.decoder_output_size``) parameters of p_θ(x|z) for the flattened x. Omitted, they are the fully
    connected :func:`mlp` networks of ``config.hidden`` with initial weights from ``config.seed`` and
    ``config.seed + 1`` (chapters 1–6); chapter 7 passes :func:`vae_lib.networks.conv_networks`. Both are checked
    on a batch of zeros (in eval mode, so no BatchNorm statistics move): a wrong output size is a ValueError.

    x may be given in its own shape (B, *data_shape), e.g. (B, C, H, W), or flattened to (B, D); the
    likelihoods, :meth:`log_likelihood`'s x and :meth:`decode_mean`'s output use the flattened (B, D), with D in
    C, H, W order. Leading sample dimensions of z are flattened into one batch for the decoder, so z of shape
    (K, B, L) reaches it as (K·B, L).

    ``decoder_width`` counts the floats the decoder holds per latent sample (every layer's output, measured on the
    check's batch, plus the likelihood's copy of the output): :func:`vae_lib.evaluation.log_evidence` sizes its
    chunks of samples with it.
    """

    def __init__(self, config: VAEConfig, encoder: nn.Module | None = None, decoder: nn.Module | None = None) -> None:
        super().__init__()
        if not isinstance(config, VAEConfig):
            raise TypeError(f"config must be a VAEConfig, got {type(config).__name__}")
        self.config = c = config
        out = c.decoder_output_size
        if encoder is None:
            flatten = [nn.Flatten()] if len(c.data_shape) > 1 else []  # images: the MLP sees the flattened pixels
            encoder = _seeded(c.seed, lambda: nn.Sequential(*flatten, *mlp((c.data_dim, *c.hidden,
                                                                             2 * c.latent_dim))))
        if decoder is None:
            decoder = _seeded(c.seed + 1, lambda: mlp((c.latent_dim, *c.hidden[::-1], out)))
        for name, net in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(net, nn.Module):
                raise TypeError(f"{name} must be a torch.nn.Module, got {type(net).__name__}")
        self.encoder = encoder
        self.decoder = decoder
        shape = ", ".join(map(str, c.data_shape))
        _probe("encoder", encoder, torch.zeros(2, *c.data_shape), f"x / x_scale of shape (B, {shape})",
               2 * c.latent_dim, f"2L = {2 * c.latent_dim}: μ_φ(x) and log σ_φ²(x) of the L = {c.latent_dim} latents")
        width = _probe("decoder", decoder, torch.zeros(2, c.latent_dim), f"z of shape (N, {c.latent_dim})", out,
                       f"{out} = D·k for D = {c.data_dim} values and k = {c.decoder_outputs_per_dim} outputs each "
                       f"({c.likelihood} likelihood)")
        self.decoder_width = width + out
        self._prior = standard_normal_prior(c.latent_dim)

    # -- prior ---------------------------------------------------------------------------------
    @property
    def prior(self) -> Distribution:
        """p(z) = N(0, I_L), event shape (L,) (a subclass with a learned prior, :mod:`vae_lib.priors`, overrides it)."""
        return self._prior

    @prior.setter
    def prior(self, value: Distribution) -> None:
        self._prior = value

    def sample_prior(self, n: int, *, generator: torch.Generator) -> Tensor:
        """n draws z ~ p(z) = N(0, I_L), shape (n, L) (vae_lib.priors overrides it with the learned prior)."""
        n = check_count("n", n)
        check_generator(generator)
        return torch.randn(n, self.config.latent_dim, generator=generator, dtype=self._prior.mean.dtype)  # (n, L)

    # -- encoder -------------------------------------------------------------------------------
    def flatten_data(self, x: Tensor, name: str = "x") -> Tensor:
        """x of shape (B, *data_shape) (e.g. images (B, C, H, W)) or already flat (B, D), as (B, D).

        x may be a tensor, a numpy array or a list, of any real dtype: it arrives in the dtype of the networks'
        parameters (float32), converted like scikit-learn's ``check_array`` does (``vae_lib._checks.as_model_input``).
        An empty batch (B = 0) is refused.
        """
        if not isinstance(name, str):
            raise TypeError(f"name must be a str (the argument's name in error messages), got {type(name).__name__}")
        x = as_model_input(name, x, self, min_ndim=2)
        c = self.config
        if x.dim() == 2 and x.shape[1] == c.data_dim:
            return x
        if tuple(x.shape[1:]) == c.data_shape:
            return x.flatten(1)  # (B, D), C, H, W order
        shape = ", ".join(map(str, c.data_shape))
        flat = f" or flattened (B, {c.data_dim})" if len(c.data_shape) > 1 else ""
        raise ValueError(f"{name} must have shape (B, {shape}){flat} (config.data_shape), got {tuple(x.shape)}")

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """μ_φ(x) and log σ_φ²(x), each (B, L), for x of shape (B, *data_shape) or (B, D)."""
        c = self.config
        x = self.flatten_data(x) / c.x_scale  # (B, D)
        h = self.encoder(x.unflatten(1, c.data_shape))  # (B, *data_shape) -> (B, 2L)
        mean, log_var = h.chunk(2, dim=-1)
        return mean, log_var

    def posterior(self, x: Tensor) -> Independent:
        """q_φ(z|x) as a torch distribution, batch shape (B,), event shape (L,)."""
        return diag_gaussian(*self.encode(x))

    # -- decoder -------------------------------------------------------------------------------
    def _decoder_out(self, z: Tensor) -> Tensor:
        """The decoder's output for z of shape (..., L): the leading dimensions pass as one batch, (..., out)."""
        latent = self.config.latent_dim
        z = check_last_dim("z", as_model_input("z", z, self, min_ndim=1), latent, "the latent size L")
        out = self.decoder(z.reshape(-1, latent))  # (N, out), N the product of the leading dimensions
        return out.reshape(*z.shape[:-1], out.shape[-1])  # (..., out)

    def log_likelihood(self, x: Tensor, z: Tensor) -> Tensor:
        """log p_θ(x|z) with all constants: x (B, D) or (B, *data_shape), z (K, B, L) -> (K, B)."""
        c = self.config
        x = self.flatten_data(x)  # (B, D)
        out = self._decoder_out(z)  # (K, B, out)
        if c.likelihood == "categorical":
            return categorical_log_likelihood(x, out.unflatten(-1, (c.data_dim, c.n_levels)))
        if c.likelihood == "bernoulli":
            return bernoulli_log_likelihood(x / c.x_scale, out)
        if c.likelihood == "gaussian":
            mean, log_var = out.chunk(2, dim=-1)
            return gaussian_log_likelihood(x / c.x_scale, mean, log_var)
        return gaussian_log_likelihood(x / c.x_scale, out, 2 * torch.log(torch.tensor(c.fixed_sigma)))

    def decode_mean(self, z: Tensor) -> Tensor:
        """E_{p_θ(x|z)}[x] in data units (pixel levels 0…16 for the digits), shape (..., D).

        The output is flat even for images: ``decode_mean(z).unflatten(-1, config.data_shape)`` gives
        (..., C, H, W).
        """
        c = self.config
        out = self._decoder_out(z)
        if c.likelihood == "categorical":
            probs = torch.softmax(out.unflatten(-1, (c.data_dim, c.n_levels)), -1)  # (..., D, levels)
            return probs @ torch.arange(c.n_levels, dtype=probs.dtype)
        if c.likelihood == "bernoulli":
            return torch.sigmoid(out) * c.x_scale
        mean = out.chunk(2, dim=-1)[0] if c.likelihood == "gaussian" else out
        return mean * c.x_scale

    # -- objective -----------------------------------------------------------------------------
    def elbo(self, x: Tensor, n_samples: int = 1, *, generator: torch.Generator) -> Tensor:
        """L(θ, φ; x) = E_q[log p_θ(x|z)] − KL(q_φ(z|x) || p(z)) with K reparameterized samples, shape (B,)."""
        check_generator(generator)
        q = self.posterior(x)
        z = sample(q, n_samples, generator=generator)  # (K, B, L)
        return self.log_likelihood(x, z).mean(0) - kl_divergence(q, self.prior)

    def loss(self, x: Tensor, *, generator: torch.Generator) -> Tensor:
        """The training loss −L(θ, φ; x) per example (nats), shape (B,)."""
        return -self.elbo(x, 1, generator=generator)

    def elbo_terms(self, x: Tensor, *, generator: torch.Generator,
                   n_samples: int = 1) -> tuple[Tensor, Tensor]:
        """The two terms of L(θ, φ; x) with reparameterized z_k ~ q_φ(z|x) (the training chapter).

        Returns log p_θ(x|z) (B,), averaged over ``n_samples`` = K draws z_1 … z_K, and KL(q_φ(z_l|x) || p(z_l))
        for each latent dimension l (B, L): their difference summed over l is the K-sample ELBO, the average of K
        single-sample ELBOs (K = 1: what :meth:`loss` negates; chapter 8's "VAE with K samples").
        """
        check_generator(generator)
        n_samples = check_count("n_samples", n_samples)
        q = self.posterior(x)
        z = sample(q, n_samples, generator=generator)  # (K, B, L)
        return self.log_likelihood(x, z).mean(0), kl_divergence(q.base_dist, self.prior.base_dist)  # (B,), (B, L)

    def kl_per_dimension(self, x: Tensor) -> Tensor:
        """KL(q_φ(z_l|x) || N(0, 1)) for each example and latent dimension l, shape (B, L)."""
        return kl_divergence(self.posterior(x).base_dist, self.prior.base_dist)


def _probe(name: str, net: nn.Module, dummy: Tensor, takes: str, size: int, meaning: str) -> int:
    """Run ``net`` on the batch of zeros ``dummy`` (2 rows) and check that it returns (2, ``size``).

    The network runs in eval mode without gradients (BatchNorm statistics stay put; the modes are restored after).
    Returns the floats per row that all its leaf modules output, a measure of the memory one row needs.
    """
    params = next(net.parameters(), None)
    if params is not None and params.is_floating_point():
        dummy = dummy.to(params.dtype)
    floats = []

    def count(_module: nn.Module, _inputs: object, output: object) -> None:
        if isinstance(output, Tensor):
            floats.append(output.numel())

    modes = [(m, m.training) for m in net.modules()]
    hooks = [m.register_forward_hook(count) for m in net.modules() if next(m.children(), None) is None]
    net.eval()
    try:
        with torch.no_grad():
            result = net(dummy)
    except (RuntimeError, ValueError, TypeError, IndexError) as err:
        raise ValueError(f"{name} must take {takes}; on a batch of zeros of shape {tuple(dummy.shape)} it failed: "
                         f"{err}") from err
    finally:
        for hook in hooks:
            hook.remove()
        for module, mode in modes:
            module.training = mode
    if not isinstance(result, Tensor) or tuple(result.shape) != (dummy.shape[0], size):
        got = tuple(result.shape) if isinstance(result, Tensor) else type(result).__name__
        raise ValueError(f"{name} must map {takes} to (B, {size}) ({meaning}); on a batch of "
                         f"{dummy.shape[0]} it returned {got}")
    return sum(floats) // dummy.shape[0]


class Autoencoder(nn.Module):
    """z = f_φ(x), x' = g_θ(z); loss ‖x/s − g_θ(f_φ(x))‖² summed over pixels (s = ``x_scale``)."""

    def __init__(self, config: AEConfig) -> None:
        super().__init__()
        if not isinstance(config, AEConfig):
            raise TypeError(f"config must be an AEConfig, got {type(config).__name__}")
        self.config = c = config
        self.encoder = _seeded(c.seed, lambda: mlp((c.data_dim, *c.hidden, c.latent_dim)))
        self.decoder = _seeded(c.seed + 1, lambda: mlp((c.latent_dim, *c.hidden[::-1], c.data_dim)))

    def encode(self, x: Tensor) -> Tensor:
        """The code z = f_φ(x), shape (B, L)."""
        x = check_last_dim("x", as_model_input("x", x, self, ndim=2), self.config.data_dim, "the data size D")
        return self.encoder(x / self.config.x_scale)

    def decode_mean(self, z: Tensor) -> Tensor:
        """The reconstruction g_θ(z) in data units, shape (..., D)."""
        z = check_last_dim("z", as_model_input("z", z, self, min_ndim=1), self.config.latent_dim, "the latent size L")
        return self.decoder(z) * self.config.x_scale

    def loss(self, x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Squared reconstruction error per example, shape (B,) (``generator`` unused: the AE is deterministic)."""
        if generator is not None:
            check_generator(generator)
        x = check_last_dim("x", as_model_input("x", x, self, ndim=2), self.config.data_dim, "the data size D")
        recon = self.decoder(self.encoder(x / self.config.x_scale))
        return ((recon - x / self.config.x_scale) ** 2).sum(-1)
