"""The VAE and the plain autoencoder the book trains (chapter 1 first, the training chapter in depth).

* :class:`VAE` — encoder q_φ(z|x) = N(μ_φ(x), diag σ_φ²(x)), prior p(z) = N(0, I), and a decoder
  p_θ(x|z) of one of the likelihood families of :mod:`vae_lib.likelihoods`. It satisfies the
  :class:`vae_lib.elbo.LatentVariableModel` interface, so every bound of :mod:`vae_lib.elbo` applies.
* :class:`Autoencoder` — a deterministic encoder z = f_φ(x) and decoder x' = g_θ(z) trained on the
  squared error: the model whose latent space has holes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, Independent, kl_divergence

from ._checks import as_tensor, check_count, check_generator, check_last_dim
from .gaussian import diag_gaussian, sample, standard_normal_prior
from .likelihoods import bernoulli_log_likelihood, categorical_log_likelihood, gaussian_log_likelihood

__all__ = ["AEConfig", "Autoencoder", "Likelihood", "VAE", "VAEConfig", "mlp"]

Likelihood = Literal["categorical", "bernoulli", "gaussian", "gaussian_fixed"]
_LIKELIHOODS = ("categorical", "bernoulli", "gaussian", "gaussian_fixed")


@dataclass(frozen=True)
class VAEConfig:
    """Architecture of a fully connected VAE.

    ``likelihood`` picks p_θ(x|z): ``categorical`` over ``n_levels`` pixel levels (x holds integers),
    ``bernoulli`` or a ``gaussian`` with learned per-pixel variance or a fixed σ (``gaussian_fixed``) on
    x / x_scale. The encoder always sees x / x_scale.
    """

    data_dim: int = 64
    latent_dim: int = 2
    hidden: tuple[int, ...] = (256, 256)
    likelihood: Likelihood = "categorical"
    n_levels: int = 17
    x_scale: float = 16.0
    fixed_sigma: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        check_count("data_dim", self.data_dim)
        check_count("latent_dim", self.latent_dim)
        for h in self.hidden:
            check_count("hidden", h)
        if self.likelihood not in _LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {_LIKELIHOODS}, got {self.likelihood!r}")
        check_count("n_levels", self.n_levels, minimum=2)
        if not self.x_scale > 0:
            raise ValueError(f"x_scale must be positive, got {self.x_scale}")
        if not self.fixed_sigma > 0:
            raise ValueError(f"fixed_sigma must be positive, got {self.fixed_sigma}")


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
        if not self.x_scale > 0:
            raise ValueError(f"x_scale must be positive, got {self.x_scale}")


def mlp(sizes: tuple[int, ...]) -> nn.Sequential:
    """Linear layers of the given sizes with SiLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.SiLU())
    return nn.Sequential(*layers)


def _seeded(seed: int, build):
    """Build modules with their initial weights drawn from a private seed, leaving global RNG state alone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


class VAE(nn.Module):
    """q_φ(z|x) = N(μ_φ(x), diag σ_φ²(x)),  p(z) = N(0, I),  p_θ(x|z) per ``config.likelihood``."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        if not isinstance(config, VAEConfig):
            raise TypeError(f"config must be a VAEConfig, got {type(config).__name__}")
        self.config = c = config
        out = {"categorical": c.data_dim * c.n_levels, "bernoulli": c.data_dim,
               "gaussian": 2 * c.data_dim, "gaussian_fixed": c.data_dim}[c.likelihood]
        self.encoder = _seeded(c.seed, lambda: mlp((c.data_dim, *c.hidden, 2 * c.latent_dim)))
        self.decoder = _seeded(c.seed + 1, lambda: mlp((c.latent_dim, *c.hidden[::-1], out)))
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
        return torch.randn(n, self.config.latent_dim, generator=generator)  # (n, L)

    # -- encoder -------------------------------------------------------------------------------
    def _check_x(self, x: Tensor) -> Tensor:
        x = as_tensor("x", x, ndim=2)
        return check_last_dim("x", x, self.config.data_dim, "the data size D")

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """μ_φ(x) and log σ_φ²(x), each (B, L)."""
        h = self.encoder(self._check_x(x) / self.config.x_scale)  # (B, 2L)
        mean, log_var = h.chunk(2, dim=-1)
        return mean, log_var

    def posterior(self, x: Tensor) -> Independent:
        """q_φ(z|x) as a torch distribution, batch shape (B,), event shape (L,)."""
        return diag_gaussian(*self.encode(x))

    # -- decoder -------------------------------------------------------------------------------
    def _decoder_out(self, z: Tensor) -> Tensor:
        z = check_last_dim("z", as_tensor("z", z, min_ndim=1), self.config.latent_dim, "the latent size L")
        return self.decoder(z)

    def log_likelihood(self, x: Tensor, z: Tensor) -> Tensor:
        """log p_θ(x|z) with all constants: x (B, D), z (K, B, L) -> (K, B)."""
        c = self.config
        x = self._check_x(x)
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
        """E_{p_θ(x|z)}[x] in data units (pixel levels 0…16 for the digits), shape (..., D)."""
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

    def elbo_terms(self, x: Tensor, *, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """The two terms of L(θ, φ; x) with one reparameterized z ~ q_φ(z|x) (the training chapter).

        Returns log p_θ(x|z) (B,) and KL(q_φ(z_l|x) || p(z_l)) for each latent dimension l (B, L): their
        difference summed over l is the single-sample ELBO that :meth:`loss` negates.
        """
        check_generator(generator)
        q = self.posterior(x)
        z = sample(q, 1, generator=generator)  # (1, B, L)
        return self.log_likelihood(x, z).mean(0), kl_divergence(q.base_dist, self.prior.base_dist)  # (B,), (B, L)

    def kl_per_dimension(self, x: Tensor) -> Tensor:
        """KL(q_φ(z_l|x) || N(0, 1)) for each example and latent dimension l, shape (B, L)."""
        return kl_divergence(self.posterior(x).base_dist, self.prior.base_dist)


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
        x = check_last_dim("x", as_tensor("x", x, ndim=2), self.config.data_dim, "the data size D")
        return self.encoder(x / self.config.x_scale)

    def decode_mean(self, z: Tensor) -> Tensor:
        """The reconstruction g_θ(z) in data units, shape (..., D)."""
        z = check_last_dim("z", as_tensor("z", z, min_ndim=1), self.config.latent_dim, "the latent size L")
        return self.decoder(z) * self.config.x_scale

    def loss(self, x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Squared reconstruction error per example, shape (B,) (``generator`` unused: the AE is deterministic)."""
        x = check_last_dim("x", as_tensor("x", x, ndim=2), self.config.data_dim, "the data size D")
        recon = self.decoder(self.encoder(x / self.config.x_scale))
        return ((recon - x / self.config.x_scale) ** 2).sum(-1)
