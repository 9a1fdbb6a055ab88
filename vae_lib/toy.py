"""Toy latent-variable models whose evidence log p(x) and posterior p(z|x) we can compute exactly.

Chapter 1 introduces them; the ELBO and KL-gap chapters use them to put the true posterior next to q.

* :class:`LinearGaussianModel` — p(z) = N(0, I_L), p(x|z) = N(W z + b, σ² I_D). Everything is closed
  form: p(x) = N(b, W Wᵀ + σ² I), p(z|x) = N(S Wᵀ (x − b)/σ², S) with S = (I + WᵀW/σ²)⁻¹.
* :class:`GridLatentModel` — p(z) = N(0, I_L) with L ∈ {1, 2} and a *nonlinear* decoder mean f(z),
  p(x|z) = N(f(z), σ² I_D). Integrals over z are done by quadrature on a fine grid (:mod:`vae_lib.quadrature`),
  so log p(x) and the posterior density are exact up to the grid's (tested) error.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor
from torch.distributions import Distribution, MultivariateNormal

from . import quadrature
from ._checks import (
    as_tensor,
    check_broadcast,
    check_count,
    check_generator,
    check_last_dim,
)
from .gaussian import standard_normal_prior
from .likelihoods import gaussian_log_likelihood

__all__ = ["GridLatentModel", "LinearGaussianModel", "arc_model", "folded_model"]


def _check_z(z: Tensor, latent_dim: int) -> Tensor:
    z = as_tensor("z", z, min_ndim=1)
    return check_last_dim("z", z, latent_dim, "the latent size L")


class LinearGaussianModel:
    """p(z) = N(0, I_L), p_θ(x|z) = N(W z + b, σ² I_D): the linear-Gaussian (probabilistic PCA) model."""

    def __init__(self, weight: Tensor, bias: Tensor, sigma: float) -> None:
        self.weight = as_tensor("weight", weight, ndim=2, dtype=torch.float64)  # (D, L)
        self.bias = as_tensor("bias", bias, ndim=1, dtype=torch.float64)  # (D,)
        if self.bias.shape[0] != self.weight.shape[0]:
            raise ValueError(
                f"bias must have {self.weight.shape[0]} entries (rows of weight), got {self.bias.shape[0]}")
        if not isinstance(sigma, (int, float)) or isinstance(sigma, bool) or not sigma > 0 or not math.isfinite(sigma):
            raise ValueError(f"sigma must be a positive finite number, got {sigma!r}")
        self.sigma = float(sigma)
        self.data_dim, self.latent_dim = self.weight.shape
        self.prior = standard_normal_prior(self.latent_dim, dtype=torch.float64)

    def decoder_mean(self, z: Tensor) -> Tensor:
        """f(z) = W z + b, shape (..., D)."""
        z = _check_z(z, self.latent_dim).to(torch.float64)
        return z @ self.weight.T + self.bias

    def log_likelihood(self, x: Tensor, z: Tensor) -> Tensor:
        """log p_θ(x|z) = log N(x; W z + b, σ² I), x (B, D), z (K, B, L) -> (K, B)."""
        x = check_last_dim("x", as_tensor("x", x, min_ndim=1, dtype=torch.float64), self.data_dim, "the data size D")
        return gaussian_log_likelihood(x, self.decoder_mean(z), 2 * math.log(self.sigma))

    def marginal(self) -> MultivariateNormal:
        """p_θ(x) = N(b, W Wᵀ + σ² I)."""
        cov = self.weight @ self.weight.T + self.sigma**2 * torch.eye(self.data_dim, dtype=torch.float64)
        return MultivariateNormal(self.bias, covariance_matrix=cov)

    def log_marginal(self, x: Tensor) -> Tensor:
        """The exact evidence log p_θ(x), x (B, D) -> (B,)."""
        x = as_tensor("x", x, ndim=2, dtype=torch.float64, nonempty=True)
        check_last_dim("x", x, self.data_dim, "the data size D")
        return self.marginal().log_prob(x)

    def posterior(self, x: Tensor) -> MultivariateNormal:
        """The exact posterior p_θ(z|x) = N(S Wᵀ (x − b)/σ², S), S = (I + WᵀW/σ²)⁻¹, batch shape (B,)."""
        x = as_tensor("x", x, ndim=2, dtype=torch.float64, nonempty=True)
        check_last_dim("x", x, self.data_dim, "the data size D")
        precision = torch.eye(self.latent_dim, dtype=torch.float64) + self.weight.T @ self.weight / self.sigma**2
        cov = torch.linalg.inv(precision)  # (L, L)
        mean = (x - self.bias) @ self.weight @ cov / self.sigma**2  # (B, L); cov is symmetric
        return MultivariateNormal(mean, covariance_matrix=cov.expand(x.shape[0], -1, -1))

    def expected_log_likelihood(self, x: Tensor, q_mean: Tensor, q_cov: Tensor) -> Tensor:
        """E_{z~N(m, S)}[log p_θ(x|z)] in closed form, shape (B,):

        −(D/2) log 2πσ² − (‖x − W m − b‖² + tr(W S Wᵀ)) / (2σ²).
        """
        x = check_last_dim("x", as_tensor("x", x, ndim=2, dtype=torch.float64), self.data_dim, "the data size D")
        q_mean = check_last_dim("q_mean", as_tensor("q_mean", q_mean, ndim=2, dtype=torch.float64), self.latent_dim)
        q_cov = as_tensor("q_cov", q_cov, min_ndim=2, dtype=torch.float64)
        if q_cov.shape[-2:] != (self.latent_dim, self.latent_dim):
            raise ValueError(f"q_cov must have shape (..., {self.latent_dim}, {self.latent_dim}), got "
                             f"{tuple(q_cov.shape)}")
        check_broadcast(("x", "q_mean"), x[..., :1], q_mean[..., :1])
        check_broadcast(("q_mean", "q_cov"), q_mean[..., 0], q_cov[..., 0, 0])
        resid = x - q_mean @ self.weight.T - self.bias  # (B, D)
        trace = torch.einsum("dl,...lm,dm->...", self.weight, q_cov, self.weight)  # (B,) or ()
        return (-0.5 * self.data_dim * math.log(2 * math.pi * self.sigma**2)
                - ((resid**2).sum(-1) + trace) / (2 * self.sigma**2))

    def sample(self, n: int, *, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Draw (x, z) from the joint: z ~ p(z), x ~ p_θ(x|z); shapes (n, D), (n, L)."""
        n = check_count("n", n)
        check_generator(generator)
        z = torch.randn(n, self.latent_dim, generator=generator, dtype=torch.float64)
        noise = torch.randn(n, self.data_dim, generator=generator, dtype=torch.float64)
        return self.decoder_mean(z) + self.sigma * noise, z


class GridLatentModel:
    """p(z) = N(0, I_L), p_θ(x|z) = N(f(z), σ² I_D) with any f; exact by quadrature over a latent grid.

    ``bound`` and ``n_grid`` set the grid [−bound, bound]^L with n_grid points per axis; the prior mass
    outside a bound of 7 is below 1e−11, so truncation is negligible next to the grid error.
    """

    def __init__(self, mean_fn: Callable[[Tensor], Tensor], sigma: float, latent_dim: int, data_dim: int,
                 bound: float = 7.0, n_grid: int | None = None) -> None:
        if not callable(mean_fn):
            raise TypeError(f"mean_fn must be callable, got {type(mean_fn).__name__}")
        if latent_dim not in (1, 2):
            raise ValueError(f"latent_dim must be 1 or 2 for grid quadrature, got {latent_dim}")
        if not isinstance(sigma, (int, float)) or isinstance(sigma, bool) or not sigma > 0 or not math.isfinite(sigma):
            raise ValueError(f"sigma must be a positive finite number, got {sigma!r}")
        if not bound > 0:
            raise ValueError(f"bound must be positive, got {bound}")
        self.mean_fn = mean_fn
        self.sigma = float(sigma)
        self.latent_dim = latent_dim
        self.data_dim = check_count("data_dim", data_dim)
        n_grid = n_grid if n_grid is not None else (2001 if latent_dim == 1 else 281)
        self.grid = quadrature.latent_grid(bound, n_grid, latent_dim)
        self.prior = standard_normal_prior(latent_dim, dtype=torch.float64)

    def decoder_mean(self, z: Tensor) -> Tensor:
        """f(z), shape (..., D)."""
        z = _check_z(z, self.latent_dim).to(torch.float64)
        out = self.mean_fn(z)
        if out.shape != (*z.shape[:-1], self.data_dim):
            raise ValueError(f"mean_fn must map (..., {self.latent_dim}) to (..., {self.data_dim}), "
                             f"got {tuple(out.shape)}")
        return out

    def log_likelihood(self, x: Tensor, z: Tensor) -> Tensor:
        """log p_θ(x|z) = log N(x; f(z), σ² I), x (B, D), z (K, B, L) -> (K, B)."""
        x = check_last_dim("x", as_tensor("x", x, min_ndim=1, dtype=torch.float64), self.data_dim, "the data size D")
        return gaussian_log_likelihood(x, self.decoder_mean(z), 2 * math.log(self.sigma))

    def log_marginal(self, x: Tensor, max_elements: int = 2**21) -> Tensor:
        """log p_θ(x) = log ∫ p_θ(x|z) p(z) dz by quadrature on the model's grid, x (B, D) -> (B,)
        (:func:`vae_lib.quadrature.model_log_marginal`; rows of x in chunks of at most ``max_elements``)."""
        return quadrature.model_log_marginal(self, x, self.grid, max_elements=max_elements)

    def log_posterior_on_grid(self, x: Tensor) -> Tensor:
        """log p_θ(z_g|x) at every grid point z_g, shape (B, G) (:func:`vae_lib.quadrature.log_posterior`)."""
        return quadrature.log_posterior(quadrature.log_joint_on_grid(self, x, self.grid), self.grid)

    def kl_to_posterior(self, x: Tensor, q: Distribution) -> Tensor:
        """KL(q(z|x) || p_θ(z|x)) by quadrature on the model's grid, shape (B,) (:func:`vae_lib.quadrature.reverse_kl`);
        exact up to the grid error as long as q's mass lies inside the grid and is resolved by it."""
        return quadrature.reverse_kl(self.log_posterior_on_grid(x), self.grid, q)

    def sample(self, n: int, *, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Draw (x, z) from the joint; shapes (n, D), (n, L)."""
        n = check_count("n", n)
        check_generator(generator)
        z = torch.randn(n, self.latent_dim, generator=generator, dtype=torch.float64)
        noise = torch.randn(n, self.data_dim, generator=generator, dtype=torch.float64)
        return self.decoder_mean(z) + self.sigma * noise, z


def folded_model(sigma: float = 0.3) -> GridLatentModel:
    """A 2-D latent model with f(z) = (z₁², z₂): the decoder cannot tell z₁ from −z₁.

    For an x with x₁ > 0 the posterior p_θ(z|x) has two modes near z₁ = ±√x₁: the standard example of a
    posterior that no single Gaussian q can match (used by the KL-gap chapter).
    """
    return GridLatentModel(lambda z: torch.stack([z[..., 0] ** 2, z[..., 1]], -1), sigma, latent_dim=2, data_dim=2)


def arc_model(sigma: float = 0.25) -> GridLatentModel:
    """A 1-D latent bent into 2-D: f(z) = 2.5 (sin 1.2z, cos 1.2z), p_θ(x|z) = N(f(z), σ² I).

    Chapter 1's picture of a latent-variable model: one hidden number z places x along an arc, and
    noise spreads it off the arc; p_θ(x) is computed by quadrature over z.
    """
    return GridLatentModel(lambda z: 2.5 * torch.cat([torch.sin(1.2 * z), torch.cos(1.2 * z)], -1), sigma,
                           latent_dim=1, data_dim=2)
