"""The KL gap log p_θ(x) − L(θ, φ; x) = KL(q_φ(z|x) || p_θ(z|x)) and what it costs (chapter 3, "The KL gap").

Everything here works on a *grid* over a 2-D (or 1-D) latent space, where integrals over z are sums:

* :func:`latent_grid`, :func:`log_likelihood_on_grid` — log p_θ(x|z_g) at every grid point z_g for a batch of
  x; for the categorical VAE one matrix product does it for all images at once;
* :func:`log_marginal_quadrature`, :func:`elbo_quadrature` — log p_θ(x) and the ELBO
  L = E_q[log p_θ(x|z)] − KL(q || p(z)) by quadrature (exact up to the grid error);
* :func:`fit_gaussian_elbo` — the best diagonal Gaussian q per x (maximum ELBO = minimum *reverse*
  KL(q || p_θ(z|x))), by Adam on the quadrature ELBO; :func:`fit_gaussian_forward_kl` — the minimum
  *forward* KL(p_θ(z|x) || q), whose optimum is moment matching (:func:`posterior_moments`);
* :func:`iwae_curve`, :func:`non_decreasing_within_error` — the importance-weighted bound L_K against K;
* :func:`gap_decomposition` — Cremer et al.'s (2018) split of the gap into approximation and amortization gaps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Distribution, Independent, Normal

from ._checks import as_index_tensor, as_tensor, check_count, check_last_dim, check_latent_model, check_real
from .elbo import LatentVariableModel, _kl, repeated_log_marginal_estimates
from .gaussian import diag_gaussian
from .models import VAE
from .toy import GridLatentModel, LatentGrid, latent_grid  # noqa: F401  (gap.latent_grid is used by chapter 3)

__all__ = [
    "GapDecomposition",
    "GaussianFitConfig",
    "KLDirectionFit",
    "elbo_quadrature",
    "fit_gaussian_elbo",
    "fit_gaussian_forward_kl",
    "fit_kl_directions",
    "forward_kl_quadrature",
    "gap_decomposition",
    "gap_and_kl",
    "iwae_curve",
    "latent_grid",
    "log_likelihood_on_grid",
    "log_marginal_quadrature",
    "log_posterior_quadrature",
    "non_decreasing_within_error",
    "posterior_moments",
    "random_diag_gaussians",
    "reverse_kl_quadrature",
]


# ---------------------------------------------------------------------------------------------------------
# Quadrature on a latent grid
# ---------------------------------------------------------------------------------------------------------
def _check_grid(grid: object) -> LatentGrid:
    if not isinstance(grid, LatentGrid):
        raise TypeError(f"grid must be a LatentGrid (see latent_grid), got {type(grid).__name__}")
    return grid


def log_likelihood_on_grid(model: LatentVariableModel, x: Tensor, grid: LatentGrid, *,
                           max_elements: int = 2**16) -> Tensor:
    """log p_θ(x_b | z_g) for every grid point z_g and row x_b, shape (G, B), float64.

    For a :class:`~vae_lib.models.VAE` with a categorical decoder, log p_θ(x|z) = Σ_d log softmax(logits_d)[x_d]
    is a dot product of the flattened log-probabilities with the one-hot code of x, so all images are scored
    with one matrix product per chunk of grid points; any other model goes through ``model.log_likelihood``.
    Grid points are processed in chunks of at most ``max_elements`` (grid points × rows of x, or grid points
    × logits for the VAE) to bound memory.
    """
    grid = _check_grid(grid)
    check_latent_model("model", model)
    max_elements = check_count("max_elements", max_elements)
    points = grid.points  # (G, L)
    if isinstance(model, VAE) and model.config.likelihood == "categorical":
        c = model.config
        # integer pixel levels in 0..n_levels−1 (floats holding integers accepted, never truncated)
        x = as_index_tensor("x", x, c.n_levels, floats_ok=True, what="pixel levels")
        if x.dim() != 2 or x.shape[0] == 0:
            raise ValueError(f"x must have shape (B, D) with B >= 1, got {tuple(x.shape)}")
        x = check_last_dim("x", x, c.data_dim, "the data size D")
        one_hot = torch.nn.functional.one_hot(x, c.n_levels).flatten(1).T.to(torch.float32)  # (D·levels, B)
        rows = max(1, max_elements // (c.data_dim * c.n_levels))
        parts = []
        with torch.no_grad():
            for start in range(0, points.shape[0], rows):
                z = points[start:start + rows].to(torch.float32)  # (g, L)
                logits = model.decoder(z).unflatten(-1, (c.data_dim, c.n_levels))  # (g, D, levels)
                log_probs = torch.log_softmax(logits, -1).flatten(1)  # (g, D·levels)
                parts.append((log_probs @ one_hot).to(torch.float64))  # (g, B)
        return torch.cat(parts)
    x = as_tensor("x", x, ndim=2, nonempty=True)
    rows = max(1, max_elements // x.shape[0])
    with torch.no_grad():
        parts = [model.log_likelihood(x, points[s:s + rows].unsqueeze(1).to(x.dtype)).to(torch.float64)
                 for s in range(0, points.shape[0], rows)]  # each (g, B)
    return torch.cat(parts)


def _check_loglik(log_lik: Tensor, grid: LatentGrid) -> Tensor:
    log_lik = as_tensor("log_lik", log_lik, ndim=2, dtype=torch.float64)
    if log_lik.shape[0] != grid.points.shape[0]:
        raise ValueError(f"log_lik must have one row per grid point ({grid.points.shape[0]}), "
                         f"got shape {tuple(log_lik.shape)}")
    return log_lik


def _check_log_posterior(log_posterior: Tensor, grid: LatentGrid) -> Tensor:
    """log p(z|x) on the grid, (B, G) with one column per grid point, float64."""
    log_posterior = as_tensor("log_posterior", log_posterior, ndim=2, dtype=torch.float64, nonempty=True)
    if log_posterior.shape[1] != grid.points.shape[0]:
        raise ValueError(f"log_posterior must have one column per grid point ({grid.points.shape[0]}), "
                         f"got shape {tuple(log_posterior.shape)}")
    return log_posterior


def _log_prior(grid: LatentGrid) -> Tensor:
    return -0.5 * (grid.points**2).sum(-1) - 0.5 * grid.points.shape[-1] * math.log(2 * math.pi)  # (G,)


def log_marginal_quadrature(log_lik: Tensor, grid: LatentGrid) -> Tensor:
    """log p_θ(x) = log Σ_g p_θ(x|z_g) p(z_g) ΔA from log p_θ(x|z_g) on the grid (G, B), shape (B,)."""
    grid = _check_grid(grid)
    log_lik = _check_loglik(log_lik, grid)
    return torch.logsumexp(log_lik + _log_prior(grid).unsqueeze(1), 0) + math.log(grid.cell_volume)


def log_posterior_quadrature(log_lik: Tensor, grid: LatentGrid) -> Tensor:
    """log p_θ(z_g|x) = log p_θ(x|z_g) + log p(z_g) − log p_θ(x) at every grid point, shape (B, G)."""
    grid = _check_grid(grid)
    log_joint = _check_loglik(log_lik, grid) + _log_prior(grid).unsqueeze(1)  # (G, B)
    return (log_joint - torch.logsumexp(log_joint, 0) - math.log(grid.cell_volume)).T


def _diag_params(name: str, mean: Tensor, log_var: Tensor, batch: int, latent_dim: int) -> tuple[Tensor, Tensor]:
    mean = check_last_dim(f"{name} mean", as_tensor(f"{name} mean", mean, ndim=2, dtype=torch.float64), latent_dim)
    log_var = as_tensor(f"{name} log_var", log_var, ndim=2, dtype=torch.float64)
    if mean.shape != (batch, latent_dim) or log_var.shape != (batch, latent_dim):
        raise ValueError(f"{name} mean and log_var must have shape ({batch}, {latent_dim}), "
                         f"got {tuple(mean.shape)} and {tuple(log_var.shape)}")
    return mean, log_var


def elbo_quadrature(log_lik: Tensor, grid: LatentGrid, q: Distribution) -> Tensor:
    """L(q; x) = Σ_g q(z_g) log p_θ(x|z_g) ΔA − KL(q || p(z)), shape (B,).

    The reconstruction term by quadrature on the grid, the KL to the prior p(z) = N(0, I) in closed form
    (torch.distributions). ``q`` is a Gaussian with batch shape (B,); its mass must lie inside the grid
    and be resolved by it (standard deviations of at least one grid step).
    """
    grid = _check_grid(grid)
    log_lik = _check_loglik(log_lik, grid)
    if not isinstance(q, Distribution):
        raise TypeError(f"q must be a torch.distributions.Distribution, got {type(q).__name__}")
    if q.batch_shape != (log_lik.shape[1],) or q.event_shape != (grid.points.shape[1],):
        raise ValueError(f"q must have batch shape ({log_lik.shape[1]},) and event shape ({grid.points.shape[1]},), "
                         f"got {tuple(q.batch_shape)} and {tuple(q.event_shape)}")
    prior = diag_gaussian(torch.zeros_like(q.mean), torch.zeros_like(q.mean))
    kl_prior = _kl(q, prior).to(torch.float64)  # (B,), closed form (also for a full-covariance q)
    if isinstance(q, Independent) and isinstance(q.base_dist, Normal):
        return _expected_log_lik_diag(log_lik, grid, q.base_dist.loc, q.base_dist.scale) - kl_prior
    weights = q.log_prob(grid.points.unsqueeze(1).to(q.mean.dtype)).exp().to(torch.float64)  # (G, B)
    return (weights * log_lik).sum(0) * grid.cell_volume - kl_prior


def _per_axis(log_lik: Tensor, grid: LatentGrid) -> Tensor:
    """log p_θ(x|z) on a product grid as (B, n) for L = 1 or (B, n, n) [b, row (z₂), column (z₁)] for L = 2."""
    n = grid.shape[0]
    return log_lik.T.contiguous() if grid.points.shape[1] == 1 else log_lik.T.reshape(-1, n, n).contiguous()


def _axis_weights(grid: LatentGrid, mean: Tensor, std: Tensor) -> Tensor:
    """w_l(a_i) = q_l(a_i) Δz on the grid axis for each latent coordinate of a diagonal Gaussian, (B, L, n)."""
    step = (grid.axes[0][1] - grid.axes[0][0]).item()
    return Normal(mean.unsqueeze(-1), std.unsqueeze(-1)).log_prob(grid.axes[0]).exp() * step


def _expected_log_lik_axes(ll: Tensor, w: Tensor) -> Tensor:
    """Σ_g q(z_g) log p_θ(x|z_g) ΔA from :func:`_per_axis` values and :func:`_axis_weights`, shape (B,).

    q(z) = q₁(z₁) q₂(z₂) and the grid is axis × axis, so the double sum is the bilinear form w₂ᵀ · ll · w₁:
    O(B n²) work in one pass.
    """
    if ll.dim() == 2:
        return (w[:, 0] * ll).sum(-1)
    return (torch.bmm(ll, w[:, 0].unsqueeze(-1)).squeeze(-1) * w[:, 1]).sum(-1)  # (B, n) · (B, n) -> (B,)


def _expected_log_lik_diag(log_lik: Tensor, grid: LatentGrid, mean: Tensor, std: Tensor) -> Tensor:
    """Σ_g q(z_g) log p_θ(x|z_g) ΔA for a diagonal Gaussian q on the product grid, shape (B,)."""
    w = _axis_weights(grid, mean.to(torch.float64), std.to(torch.float64))  # (B, L, n)
    return _expected_log_lik_axes(_per_axis(log_lik, grid), w)


def _kl_diag_std_normal(mean: Tensor, log_var: Tensor) -> Tensor:
    return 0.5 * (mean**2 + log_var.exp() - 1.0 - log_var).sum(-1)  # KL(N(μ, diag σ²) || N(0, I)), (B,)


# ---------------------------------------------------------------------------------------------------------
# gap = KL on the toy model
# ---------------------------------------------------------------------------------------------------------
def random_diag_gaussians(n: int, latent_dim: int, *, mean_range: float, sigma_range: tuple[float, float],
                          generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """n random diagonal Gaussians: means uniform in [−mean_range, mean_range]^L, standard deviations
    log-uniform in ``sigma_range``. Returns (mean, log_var), each (n, L), float64."""
    n = check_count("n", n)
    latent_dim = check_count("latent_dim", latent_dim)
    lo, hi = sigma_range
    if not 0 < lo <= hi:
        raise ValueError(f"sigma_range must be (low, high) with 0 < low <= high, got {sigma_range}")
    if not mean_range >= 0:
        raise ValueError(f"mean_range must be >= 0, got {mean_range}")
    u = torch.rand(n, 2, latent_dim, generator=generator, dtype=torch.float64)  # (n, 2, L)
    mean = (2 * u[:, 0] - 1) * mean_range
    log_sigma = math.log(lo) + u[:, 1] * (math.log(hi) - math.log(lo))
    return mean, 2 * log_sigma


def gap_and_kl(model: GridLatentModel, x: Tensor, mean: Tensor, log_var: Tensor) -> tuple[Tensor, Tensor]:
    """For every row x_b and every q_k = N(mean_k, diag exp(log_var_k)): the gap log p_θ(x_b) − L(q_k; x_b)
    and KL(q_k || p_θ(z|x_b)), computed independently, each of shape (B, K).

    The gap uses log p_θ(x) and the ELBO (reconstruction by quadrature, KL to the prior in closed form);
    the KL uses the normalised posterior density (``model.kl_to_posterior``).
    """
    if not isinstance(model, GridLatentModel):
        raise TypeError(f"model must be a GridLatentModel, got {type(model).__name__}")
    x = check_last_dim("x", as_tensor("x", x, ndim=2, dtype=torch.float64), model.data_dim, "the data size D")
    mean = as_tensor("mean", mean, ndim=2, dtype=torch.float64)
    mean, log_var = _diag_params("q", mean, log_var, mean.shape[0], model.latent_dim)
    k = mean.shape[0]
    log_lik = log_likelihood_on_grid(model, x, model.grid)  # (G, B)
    log_px = log_marginal_quadrature(log_lik, model.grid)  # (B,)
    gaps, kls = [], []
    for b in range(x.shape[0]):
        q = diag_gaussian(mean, log_var)  # batch (K,)
        elbo = elbo_quadrature(log_lik[:, b:b + 1].expand(-1, k), model.grid, q)  # (K,)
        gaps.append(log_px[b] - elbo)
        kls.append(model.kl_to_posterior(x[b:b + 1].expand(k, -1), q))  # (K,)
    return torch.stack(gaps), torch.stack(kls)


# ---------------------------------------------------------------------------------------------------------
# Fitting a Gaussian q in either direction of the KL
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GaussianFitConfig:
    """Adam on (mean, log σ²) of a diagonal Gaussian q: a fixed number of steps on a deterministic (quadrature)
    objective, the step size decaying geometrically from ``learning_rate`` to 10 % of it."""

    steps: int = 400
    learning_rate: float = 0.1

    def __post_init__(self) -> None:
        check_count("steps", self.steps, maximum=1_000_000)
        check_real("learning_rate", self.learning_rate, above=0)


def _adam(objective, mean: Tensor, log_var: Tensor, config: GaussianFitConfig) -> tuple[Tensor, Tensor]:
    """Minimise objective(mean, log_var) (a per-row loss of shape (B,), summed) with Adam; returns detached params."""
    if not isinstance(config, GaussianFitConfig):
        raise TypeError(f"config must be a GaussianFitConfig, got {type(config).__name__}")
    mean = mean.detach().clone().requires_grad_(True)
    log_var = log_var.detach().clone().requires_grad_(True)
    optimiser = torch.optim.Adam([mean, log_var], lr=config.learning_rate)
    # the step size decays geometrically to 10 % of its start, so the last steps settle on the optimum
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda t: 0.1 ** (t / config.steps))
    for _ in range(config.steps):
        optimiser.zero_grad()
        objective(mean, log_var).sum().backward()  # rows are independent problems: the sum separates
        optimiser.step()
        schedule.step()
    return mean.detach(), log_var.detach()


def fit_gaussian_elbo(log_lik: Tensor, grid: LatentGrid, mean0: Tensor, log_var0: Tensor,
                      config: GaussianFitConfig = GaussianFitConfig()) -> tuple[Tensor, Tensor, Tensor]:
    """The best diagonal Gaussian q per row: maximise the quadrature ELBO L(q; x_b) (equivalently minimise the
    reverse KL(q || p_θ(z|x_b)), since the two add up to the fixed log p_θ(x_b)), starting from (mean0, log_var0).

    log_lik is log p_θ(x|z_g) on the grid (G, B). Returns (mean, log_var, elbo), shapes (B, L), (B, L), (B,).
    Gradient ascent finds a *local* optimum: on a bimodal posterior the start decides which mode q takes.
    """
    grid = _check_grid(grid)
    log_lik = _check_loglik(log_lik, grid)
    mean0, log_var0 = _diag_params("start", mean0, log_var0, log_lik.shape[1], grid.points.shape[1])
    ll = _per_axis(log_lik, grid)  # computed once; each step then costs one pass over the grid

    def negative_elbo(m: Tensor, v: Tensor) -> Tensor:
        return _kl_diag_std_normal(m, v) - _expected_log_lik_axes(ll, _axis_weights(grid, m, (0.5 * v).exp()))

    mean, log_var = _adam(negative_elbo, mean0, log_var0, config)
    return mean, log_var, elbo_quadrature(log_lik, grid, diag_gaussian(mean, log_var))


def posterior_moments(log_posterior: Tensor, grid: LatentGrid) -> tuple[Tensor, Tensor]:
    """Mean and per-coordinate variance of p_θ(z|x) from its log-density on the grid (B, G); each (B, L)."""
    grid = _check_grid(grid)
    log_posterior = _check_log_posterior(log_posterior, grid)
    weights = log_posterior.exp() * grid.cell_volume  # (B, G)
    mean = weights @ grid.points  # (B, L)
    var = weights @ grid.points**2 - mean**2
    return mean, var


def _posterior_marginals(log_posterior: Tensor, grid: LatentGrid) -> Tensor:
    """Posterior mass per grid line: (B, L, n), entry [b, l, i] = mass of {z : z_l = a_i} (sums to 1 over i)."""
    post = log_posterior.exp()  # (B, G)
    if grid.points.shape[1] == 1:
        return post.unsqueeze(1) * grid.cell_volume
    n = grid.shape[0]
    p3 = post.reshape(-1, n, n) * grid.cell_volume  # (B, row z₂, column z₁)
    return torch.stack([p3.sum(1), p3.sum(2)], 1)


def forward_kl_quadrature(log_posterior: Tensor, grid: LatentGrid, q: Distribution) -> Tensor:
    """The forward KL(p_θ(z|x) || q) = Σ_g p(z_g|x) [log p(z_g|x) − log q(z_g)] ΔA, shape (B,)."""
    grid = _check_grid(grid)
    log_posterior = _check_log_posterior(log_posterior, grid)
    post = log_posterior.exp()  # (B, G)
    neg_entropy = (post * log_posterior).sum(-1) * grid.cell_volume  # Σ p log p ΔA, (B,)
    if isinstance(q, Independent) and isinstance(q.base_dist, Normal):
        # log q(z) = Σ_l log q_l(z_l): the cross term needs only the posterior's marginals on each axis
        marginals = _posterior_marginals(log_posterior, grid)  # (B, L, n)
        log_q_axis = q.base_dist.log_prob(grid.axes[0].view(-1, 1, 1)).permute(1, 2, 0)  # (B, L, n)
        return neg_entropy - (marginals * log_q_axis).sum((-2, -1))
    log_q = q.log_prob(grid.points.unsqueeze(1)).T  # (B, G)
    return neg_entropy - (post * log_q).sum(-1) * grid.cell_volume


def reverse_kl_quadrature(log_posterior: Tensor, grid: LatentGrid, q: Distribution) -> Tensor:
    """The reverse KL(q || p_θ(z|x)) = Σ_g q(z_g) [log q(z_g) − log p(z_g|x)] ΔA, shape (B,)."""
    grid = _check_grid(grid)
    log_posterior = _check_log_posterior(log_posterior, grid)
    log_q = q.log_prob(grid.points.unsqueeze(1)).T  # (B, G)
    return (log_q.exp() * (log_q - log_posterior)).sum(-1) * grid.cell_volume


def fit_gaussian_forward_kl(log_posterior: Tensor, grid: LatentGrid, mean0: Tensor, log_var0: Tensor,
                            config: GaussianFitConfig = GaussianFitConfig()) -> tuple[Tensor, Tensor]:
    """The diagonal Gaussian q minimising the forward KL(p_θ(z|x) || q) by Adam on its quadrature value.

    The forward KL needs expectations under the posterior itself, available here only because the grid gives
    p_θ(z|x) exactly. Its optimum is moment matching (:func:`posterior_moments`); the tests check that.
    Returns (mean, log_var), each (B, L).
    """
    grid = _check_grid(grid)
    log_posterior = _check_log_posterior(log_posterior, grid)
    mean0, log_var0 = _diag_params("start", mean0, log_var0, log_posterior.shape[0], grid.points.shape[1])
    marginals = _posterior_marginals(log_posterior, grid)  # (B, L, n), computed once

    def cross_entropy(m: Tensor, v: Tensor) -> Tensor:  # −E_p[log q]: the forward KL up to its constant −H[p]
        log_q_axis = Normal(m.unsqueeze(-1), (0.5 * v).exp().unsqueeze(-1)).log_prob(grid.axes[0])  # (B, L, n)
        return -(marginals * log_q_axis).sum((-2, -1))

    return _adam(cross_entropy, mean0, log_var0, config)


@dataclass(frozen=True)
class KLDirectionFit:
    """Both fitted Gaussians for one observation x: q_rev = argmin KL(q || p_θ(z|x)) (the ELBO's choice) and
    q_fwd = argmin KL(p_θ(z|x) || q), with the KL each one minimises and the posterior density on the grid."""

    x: Tensor  # (D,)
    log_posterior: Tensor  # (G,)
    reverse_mean: Tensor  # (L,)
    reverse_log_var: Tensor  # (L,)
    forward_mean: Tensor  # (L,)
    forward_log_var: Tensor  # (L,)
    reverse_kl: float  # KL(q_rev || p)
    forward_kl: float  # KL(p || q_fwd)


def fit_kl_directions(model: GridLatentModel, x: Tensor, start_mean: Tensor, start_log_var: Tensor,
                      config: GaussianFitConfig = GaussianFitConfig()) -> list[KLDirectionFit]:
    """Fit q by reverse and by forward KL for every row of x (B, D).

    The reverse fit (gradient ascent on the ELBO) starts from N(start_mean, diag exp(start_log_var)) (L,) each:
    on a bimodal posterior it climbs into the mode nearest that start. The forward fit is convex in the mean
    and starts from the prior N(0, I).
    """
    if not isinstance(model, GridLatentModel):
        raise TypeError(f"model must be a GridLatentModel, got {type(model).__name__}")
    x = check_last_dim("x", as_tensor("x", x, ndim=2, dtype=torch.float64), model.data_dim, "the data size D")
    b, latent = x.shape[0], model.latent_dim
    mean0 = as_tensor("start_mean", start_mean, ndim=1, dtype=torch.float64).expand(b, latent)
    log_var0 = as_tensor("start_log_var", start_log_var, ndim=1, dtype=torch.float64).expand(b, latent)
    log_lik = log_likelihood_on_grid(model, x, model.grid)  # (G, B)
    log_post = log_posterior_quadrature(log_lik, model.grid)  # (B, G)
    rev_m, rev_v, _ = fit_gaussian_elbo(log_lik, model.grid, mean0, log_var0, config)
    fwd_m, fwd_v = fit_gaussian_forward_kl(log_post, model.grid, torch.zeros_like(mean0), torch.zeros_like(mean0),
                                           config)
    rev_kl = reverse_kl_quadrature(log_post, model.grid, diag_gaussian(rev_m, rev_v))
    fwd_kl = forward_kl_quadrature(log_post, model.grid, diag_gaussian(fwd_m, fwd_v))
    return [KLDirectionFit(x[i], log_post[i], rev_m[i], rev_v[i], fwd_m[i], fwd_v[i], rev_kl[i].item(),
                           fwd_kl[i].item()) for i in range(b)]


# ---------------------------------------------------------------------------------------------------------
# The importance-weighted bound L_K
# ---------------------------------------------------------------------------------------------------------
def iwae_curve(x: Tensor, model: LatentVariableModel, q: Distribution, sample_sizes: list[int], repeats: int, *,
               generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Mean and standard error over ``repeats`` runs of log (1/K) Σ_k p_θ(x, z_k)/q(z_k|x), z_k ~ q, for each K.

    The mean estimates the bound L_K = E[log (1/K) Σ_k w_k] (L_1 is the ELBO). x is one observation (1, D).
    Returns (means, standard_errors), each of shape (len(sample_sizes),).
    """
    est = repeated_log_marginal_estimates(x, model, q, sample_sizes, repeats, generator=generator)  # (R, len(K))
    return est.mean(0), est.std(0) / math.sqrt(est.shape[0])


def non_decreasing_within_error(means: Tensor, standard_errors: Tensor, n_se: float = 3.0) -> bool:
    """True if every step means[i+1] − means[i] is >= −n_se times its standard error (independent runs)."""
    means = as_tensor("means", means, ndim=1)
    standard_errors = as_tensor("standard_errors", standard_errors, ndim=1)
    if means.shape != standard_errors.shape:
        raise ValueError(f"means and standard_errors must have the same shape, got {tuple(means.shape)} "
                         f"and {tuple(standard_errors.shape)}")
    step_se = (standard_errors[1:] ** 2 + standard_errors[:-1] ** 2).sqrt()
    return bool((means[1:] - means[:-1] >= -n_se * step_se).all())


# ---------------------------------------------------------------------------------------------------------
# Approximation and amortization gaps (Cremer, Li & Duvenaud 2018)
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GapDecomposition:
    """Per example (each (B,)): log p_θ(x), the encoder's ELBO L[q_φ], the fitted Gaussian's ELBO L[q*]; the
    approximation gap log p_θ(x) − L[q*] and the amortization gap L[q*] − L[q_φ] add up to the whole gap by
    definition (so their sum checks nothing). q* is where Adam stops, a local optimum: L[q*] is a lower bound on the
    best diagonal Gaussian's ELBO, so the approximation gap is an estimate from above, the amortization gap one
    from below."""

    log_px: Tensor
    elbo_encoder: Tensor
    elbo_optimal: Tensor
    optimal_mean: Tensor  # (B, L)
    optimal_log_var: Tensor  # (B, L)

    @property
    def gap(self) -> Tensor:
        """log p_θ(x) − L[q_φ] = KL(q_φ(z|x) || p_θ(z|x))."""
        return self.log_px - self.elbo_encoder

    @property
    def approximation_gap(self) -> Tensor:
        """log p_θ(x) − L[q*]: what the Gaussian family cannot do."""
        return self.log_px - self.elbo_optimal

    @property
    def amortization_gap(self) -> Tensor:
        """L[q*] − L[q_φ]: what one shared encoder network loses against a q fitted to each x."""
        return self.elbo_optimal - self.elbo_encoder


def gap_decomposition(vae: VAE, x: Tensor, grid: LatentGrid,
                      config: GaussianFitConfig = GaussianFitConfig()) -> GapDecomposition:
    """Split each example's gap by quadrature on ``grid`` (2-D latent VAEs only): log p_θ(x), the ELBO of the
    encoder's q_φ(z|x), and of the best diagonal Gaussian q* (Adam on the quadrature ELBO from the encoder's q)."""
    if not isinstance(vae, VAE):
        raise TypeError(f"vae must be a VAE, got {type(vae).__name__}")
    if vae.config.latent_dim != grid.points.shape[1]:
        raise ValueError(f"grid must have the VAE's latent size {vae.config.latent_dim}, got {grid.points.shape[1]}")
    log_lik = log_likelihood_on_grid(vae, x, grid)  # (G, B)
    with torch.no_grad():
        mean, log_var = (t.to(torch.float64) for t in vae.encode(x))  # (B, L) each
    elbo_encoder = elbo_quadrature(log_lik, grid, diag_gaussian(mean, log_var))
    opt_mean, opt_log_var, elbo_opt = fit_gaussian_elbo(log_lik, grid, mean, log_var, config)
    return GapDecomposition(log_marginal_quadrature(log_lik, grid), elbo_encoder, elbo_opt, opt_mean, opt_log_var)
