"""Exact integrals over a low-dimensional latent z by quadrature on a regular grid: the one place the book does them.

Chapter 1 introduces the idea (log p_θ(x) of a toy model as a sum over z), chapter 2 reads the ELBO and the gap off a
grid, chapter 3 measures the KL gap and fits Gaussians in both directions of the KL, and the flows of "closing the gap"
are scored against the exact posterior. With grid points z_g (L ∈ {1, 2}) and cell volume ΔA, and the log joint
J_g = log p_θ(x, z_g) = log p_θ(x|z_g) + log p(z_g) tabulated once (:func:`log_joint_on_grid`):

    log p_θ(x)   ≈ log Σ_g exp(J_g) ΔA                                   (:func:`log_marginal`)
    log p_θ(z_g|x) = J_g − log p_θ(x)                                     (:func:`log_posterior`)
    L(q; x)      ≈ Σ_g q(z_g) J_g ΔA + H[q]                               (:func:`elbo`)
    KL(q || p_θ(z|x)) ≈ Σ_g q(z_g) [log q(z_g) − log p_θ(z_g|x)] ΔA       (:func:`reverse_kl`)
    KL(p_θ(z|x) || q) ≈ Σ_g p_θ(z_g|x) [log p_θ(z_g|x) − log q(z_g)] ΔA   (:func:`forward_kl`)

The ELBO is chapter 2's "joint + entropy" form, with q's entropy H[q] = −E_q[log q] in closed form where q has one
(Gaussians) and by quadrature otherwise; the KL is its definition summed on the grid. So the identity
log p_θ(x) − L(q; x) = KL(q || p_θ(z|x)) is not built in: on one grid it checks q's entropy and mass. Every sum is
exact up to the grid's error as long as the densities' mass lies inside the grid and is resolved by it (for a
Gaussian q: standard deviations of at least one grid step). A diagonal Gaussian q factorises over the axes of the
product grid, so its sums cost one pass over the grid without ever forming q on it (:func:`elbo` is differentiable in
q's parameters, which is how :func:`fit_gaussian_elbo` fits one). Every Gaussian fit in the book runs the same Adam
loop, :func:`adam`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Distribution, Independent, Normal

from ._checks import (
    as_index_tensor,
    as_tensor,
    check_count,
    check_instance,
    check_int,
    check_last_dim,
    check_latent_model,
    check_real,
    model_dtype,
)

__all__ = [
    "AdamSteps",
    "GaussianFitConfig",
    "LatentGrid",
    "adam",
    "elbo",
    "fit_gaussian_elbo",
    "fit_gaussian_forward_kl",
    "forward_kl",
    "latent_grid",
    "log_joint_on_grid",
    "log_marginal",
    "log_posterior",
    "model_log_marginal",
    "posterior_moments",
    "reverse_kl",
]


# ---------------------------------------------------------------------------------------------------------------------
# The grid
# ---------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LatentGrid:
    """A regular grid over the latent box [−bound, bound]^L (chapter 1): ``points`` ordered with z₁ varying fastest,
    so that values on the grid reshape to (n,) for L = 1 or (n, n) [row z₂, column z₁] for L = 2."""

    points: Tensor  # (G, L), G = n^L, float64
    axes: tuple[Tensor, ...]  # L tensors of shape (n,), the same axis for every coordinate
    cell_volume: float  # ΔA = step^L
    shape: tuple[int, ...]  # (n,) * L

    @property
    def step(self) -> float:
        """The spacing of the axis."""
        return float(self.axes[0][1] - self.axes[0][0])


def latent_grid(bound: float, n_grid: int, latent_dim: int = 2) -> LatentGrid:
    """The regular grid [−bound, bound]^L with n_grid points per axis (float64), L ∈ {1, 2} (chapter 1)."""
    if check_int("latent_dim", latent_dim) not in (1, 2):
        raise ValueError(f"latent_dim must be 1 or 2 for grid quadrature, got {latent_dim}")
    check_real("bound", bound, above=0)
    n_grid = check_count("n_grid", n_grid, minimum=3, maximum=100_000 if latent_dim == 1 else 3_001)
    axis = torch.linspace(-bound, bound, n_grid, dtype=torch.float64)  # (n,)
    step = (axis[1] - axis[0]).item()
    if latent_dim == 1:
        points = axis.unsqueeze(-1)  # (n, 1)
    else:
        z1, z2 = torch.meshgrid(axis, axis, indexing="xy")  # (n, n): rows follow z₂, columns z₁
        points = torch.stack([z1.reshape(-1), z2.reshape(-1)], -1)  # (n², 2)
    return LatentGrid(points, (axis,) * latent_dim, step**latent_dim, (n_grid,) * latent_dim)


def _check_grid(grid: object) -> LatentGrid:
    return check_instance("grid", grid, LatentGrid, "a vae_lib.quadrature.LatentGrid (see latent_grid)")


def _check_on_grid(name: str, values: Tensor, grid: LatentGrid, axis: int) -> Tensor:
    """A float64 (G, B) (axis 0) or (B, G) (axis 1) table with one entry per grid point along ``axis``."""
    values = as_tensor(name, values, ndim=2, dtype=torch.float64, nonempty=True)
    if values.shape[axis] != grid.points.shape[0]:
        where = "row" if axis == 0 else "column"
        raise ValueError(f"{name} must have one {where} per grid point ({grid.points.shape[0]}), "
                         f"got shape {tuple(values.shape)}")
    return values


# ---------------------------------------------------------------------------------------------------------------------
# The log joint, the evidence and the exact posterior
# ---------------------------------------------------------------------------------------------------------------------
def log_joint_on_grid(model: object, x: Tensor, grid: LatentGrid, *, max_elements: int = 2**16) -> Tensor:
    """J[g, b] = log p_θ(x_b, z_g) = log p_θ(x_b|z_g) + log p(z_g) for every grid point and row of x, (G, B) float64.

    ``model`` is any latent-variable model (``log_likelihood(x, z)`` and ``prior``, chapter 1), evaluated in float64
    (a torch network in its parameters' dtype). For a
    :class:`~vae_lib.models.VAE` with a categorical decoder, log p_θ(x|z) = Σ_d log softmax(logits_d)[x_d] is a dot
    product of the flattened log-probabilities with the one-hot code of x, so all images are scored with one matrix
    product per chunk of grid points. Grid points go in chunks of at most ``max_elements`` (grid points × rows of x,
    or grid points × logits for the VAE) to bound memory.
    """
    from .models import VAE  # models imports the gap machinery's users; imported here to keep this module a leaf

    grid = _check_grid(grid)
    check_latent_model("model", model)
    max_elements = check_count("max_elements", max_elements)
    points = grid.points  # (G, L)
    if tuple(model.prior.event_shape) != (points.shape[1],):
        raise ValueError(f"grid must have the model's latent size {tuple(model.prior.event_shape)}, "
                         f"got a grid over {points.shape[1]} dimension(s)")
    with torch.no_grad():
        log_prior = model.prior.log_prob(points).to(torch.float64)  # (G,)
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
            for start in range(0, points.shape[0], rows):
                z = points[start:start + rows].to(torch.float32)  # (g, L)
                logits = model.decoder(z).unflatten(-1, (c.data_dim, c.n_levels))  # (g, D, levels)
                log_probs = torch.log_softmax(logits, -1).flatten(1)  # (g, D·levels)
                parts.append((log_probs @ one_hot).to(torch.float64))  # (g, B)
        else:  # a network in its own dtype, anything else (the toy models) in float64
            dtype = model_dtype(model) if isinstance(model, torch.nn.Module) else torch.float64
            x = as_tensor("x", x, ndim=2, nonempty=True, dtype=dtype)
            rows = max(1, max_elements // x.shape[0])
            parts = [model.log_likelihood(x, points[s:s + rows].unsqueeze(1).to(dtype)).to(torch.float64)
                     for s in range(0, points.shape[0], rows)]  # each (g, B)
    return torch.cat(parts) + log_prior.unsqueeze(1)  # (G, B)


def log_marginal(log_joint: Tensor, grid: LatentGrid) -> Tensor:
    """The evidence log p_θ(x) = log Σ_g exp(log p_θ(x, z_g)) ΔA from the log joint on the grid (G, B), shape (B,)."""
    grid = _check_grid(grid)
    log_joint = _check_on_grid("log_joint", log_joint, grid, 0)
    return torch.logsumexp(log_joint, 0) + math.log(grid.cell_volume)


def model_log_marginal(model: object, x: Tensor, grid: LatentGrid, *, max_elements: int = 2**21) -> Tensor:
    """log p_θ(x) of a model by quadrature, x (B, D) -> (B,), rows of x in chunks of at most ``max_elements`` (grid
    points × rows), so that a whole image of x values (chapter 1: 10⁴ points × 2001 grid points) fits in memory."""
    grid = _check_grid(grid)
    x = as_tensor("x", x, ndim=2, nonempty=True)
    rows = max(1, check_count("max_elements", max_elements) // grid.points.shape[0])
    return torch.cat([log_marginal(log_joint_on_grid(model, x[i:i + rows], grid, max_elements=max_elements), grid)
                      for i in range(0, x.shape[0], rows)])


def log_posterior(log_joint: Tensor, grid: LatentGrid) -> Tensor:
    """The exact posterior log p_θ(z_g|x) = log p_θ(x, z_g) − log p_θ(x) at every grid point, (G, B) -> (B, G);
    Σ_g exp(·) ΔA = 1 for every row."""
    return (log_joint - log_marginal(log_joint, grid)).T


def posterior_moments(log_posterior: Tensor, grid: LatentGrid) -> tuple[Tensor, Tensor]:
    """Mean and per-coordinate variance of p_θ(z|x) (chapter 3) from its log-density on the grid (B, G); each (B, L)."""
    grid = _check_grid(grid)
    log_posterior = _check_on_grid("log_posterior", log_posterior, grid, 1)
    weights = log_posterior.exp() * grid.cell_volume  # (B, G)
    mean = weights @ grid.points  # (B, L)
    return mean, weights @ grid.points**2 - mean**2


def _posterior_marginals(log_posterior: Tensor, grid: LatentGrid) -> Tensor:
    """Posterior mass per grid line: (B, L, n), entry [b, l, i] = mass of {z : z_l = a_i} (sums to 1 over i)."""
    mass = log_posterior.exp() * grid.cell_volume  # (B, G)
    if len(grid.shape) == 1:
        return mass.unsqueeze(1)
    n = grid.shape[0]
    per_cell = mass.reshape(-1, n, n)  # (B, row z₂, column z₁)
    return torch.stack([per_cell.sum(1), per_cell.sum(2)], 1)


# ---------------------------------------------------------------------------------------------------------------------
# Expectations under q: the ELBO and the two KL directions
# ---------------------------------------------------------------------------------------------------------------------
def _is_diag_gaussian(q: object) -> bool:
    return isinstance(q, Independent) and isinstance(q.base_dist, Normal) and q.reinterpreted_batch_ndims == 1


def _check_q(q: object, grid: LatentGrid, batch: int) -> object:
    """q(z|x): a torch Distribution with event shape (L,) and batch shape (B,) (or () for one x), or any density with
    ``log_prob(z)`` mapping points (G, 1, L) to (G, B) (e.g. a :class:`vae_lib.flows.FlowPosterior`)."""
    latent = grid.points.shape[1]
    if isinstance(q, Distribution):
        if q.event_shape != (latent,):
            raise ValueError(f"q must have event shape ({latent},) (the grid's latent size), "
                             f"got {tuple(q.event_shape)}")
        if q.batch_shape not in (torch.Size([]), torch.Size([batch])):
            raise ValueError(f"q must have batch shape ({batch},), one q per row, or (), got {tuple(q.batch_shape)}")
        return q
    if not callable(getattr(q, "log_prob", None)):
        raise TypeError(f"q must be a torch.distributions.Distribution or a density with log_prob(z), "
                        f"got {type(q).__name__}")
    return q


class _QOnGrid:
    """q's weights w_g = q(z_g) ΔA and its log-density on the grid, and sums Σ_g w_g f_g for a table f (B, G).

    A diagonal Gaussian is kept per axis, w_l(a_i) = q_l(a_i) Δz (B, L, n), so that Σ_g w_g f_g is the bilinear form
    w₂ᵀ f w₁ (O(B n²) in one pass, differentiable in q's parameters) and Σ_g w_g log q(z_g) = Σ_l Σ_i w_l(a_i)
    log q_l(a_i) Π_{m≠l} Σ_j w_m(a_j). Any other q is evaluated at every grid point.
    """

    def __init__(self, q: object, grid: LatentGrid, batch: int) -> None:
        self.q = q = _check_q(q, grid, batch)
        self.grid = grid
        self.batch = batch
        if _is_diag_gaussian(q):
            mean = q.base_dist.loc.to(torch.float64).expand(batch, grid.points.shape[1])  # (B, L)
            self.std = std = q.base_dist.scale.to(torch.float64).expand(batch, grid.points.shape[1])  # (B, L)
            self.log_q_axes = Normal(mean.unsqueeze(-1), std.unsqueeze(-1)).log_prob(grid.axes[0])  # (B, L, n)
            self.w_axes = self.log_q_axes.exp() * grid.step  # (B, L, n)
            self.log_q = None
        else:
            dtype = q.mean.dtype if isinstance(q, Distribution) else torch.float64
            log_q = q.log_prob(grid.points.unsqueeze(1).to(dtype)).to(torch.float64)  # (G, B) or (G, 1)
            self.log_q = log_q.expand(grid.points.shape[0], batch).T  # (B, G)
            self.w = self.log_q.exp() * grid.cell_volume  # (B, G)

    def expect(self, values: Tensor) -> Tensor:
        """Σ_g q(z_g) f(z_g) ΔA for f on the grid (B, G), shape (B,)."""
        if self.log_q is not None:
            return (self.w * values).sum(-1)
        w = self.w_axes
        if len(self.grid.shape) == 1:
            return (w[:, 0] * values).sum(-1)
        n = self.grid.shape[0]
        rows = torch.bmm(values.reshape(-1, n, n), w[:, 0].unsqueeze(-1)).squeeze(-1)  # Σ_i f[j, i] w₁(a_i), (B, n)
        return (rows * w[:, 1]).sum(-1)

    def entropy(self) -> Tensor:
        """H[q] = −E_q[log q], shape (B,): in closed form for a Gaussian (float64, differentiable), else on the grid."""
        if self.log_q is None:
            std = self.std  # (B, L)
            return (0.5 * math.log(2 * math.pi * math.e) + std.log()).sum(-1)
        if isinstance(self.q, Distribution):
            try:
                return self.q.entropy().to(torch.float64).expand(self.batch)
            except NotImplementedError:
                pass
        return -self.expect_log_q()

    def expect_log_q(self) -> Tensor:
        """Σ_g q(z_g) log q(z_g) ΔA = −H[q] by quadrature, shape (B,)."""
        if self.log_q is not None:
            return (self.w * self.log_q).sum(-1)
        per_axis = (self.w_axes * self.log_q_axes).sum(-1)  # (B, L)
        mass = self.w_axes.sum(-1)  # (B, L), 1 up to the grid error
        if len(self.grid.shape) == 1:
            return per_axis[:, 0]
        return per_axis[:, 0] * mass[:, 1] + per_axis[:, 1] * mass[:, 0]


def elbo(log_joint: Tensor, grid: LatentGrid, q: object) -> Tensor:
    """The ELBO L(q; x) = E_q[log p_θ(x, z)] + H[q] (chapter 2), the expectation by quadrature, q's entropy in closed
    form where q has one (else by quadrature too), shape (B,).

    ``log_joint`` is log p_θ(x, z_g) on the grid (G, B) (:func:`log_joint_on_grid`); ``q`` a Distribution with batch
    shape (B,) (or ()) or any density with ``log_prob`` (a flow). Differentiable in a diagonal Gaussian's parameters.
    log p_θ(x) − L(q; x) = :func:`reverse_kl` of the same q, up to the grid error.
    """
    grid = _check_grid(grid)
    log_joint = _check_on_grid("log_joint", log_joint, grid, 0)
    q_grid = _QOnGrid(q, grid, log_joint.shape[1])
    return q_grid.expect(log_joint.T) + q_grid.entropy()


def reverse_kl(log_posterior: Tensor, grid: LatentGrid, q: object) -> Tensor:
    """The reverse KL(q || p_θ(z|x)) = Σ_g q(z_g) [log q(z_g) − log p_θ(z_g|x)] ΔA (chapters 2-3), shape (B,): the gap
    log p_θ(x) − L(q; x), the divergence the ELBO minimises. ``log_posterior`` is (B, G) (:func:`log_posterior`)."""
    grid = _check_grid(grid)
    log_posterior = _check_on_grid("log_posterior", log_posterior, grid, 1)
    q_grid = _QOnGrid(q, grid, log_posterior.shape[0])
    return q_grid.expect_log_q() - q_grid.expect(log_posterior)


def forward_kl(log_posterior: Tensor, grid: LatentGrid, q: object) -> Tensor:
    """The forward KL(p_θ(z|x) || q) = Σ_g p_θ(z_g|x) [log p_θ(z_g|x) − log q(z_g)] ΔA (chapter 3), shape (B,)."""
    grid = _check_grid(grid)
    log_posterior = _check_on_grid("log_posterior", log_posterior, grid, 1)
    q_grid = _QOnGrid(q, grid, log_posterior.shape[0])
    neg_entropy = (log_posterior.exp() * log_posterior).sum(-1) * grid.cell_volume  # Σ p log p ΔA, (B,)
    if q_grid.log_q is not None:
        return neg_entropy - (log_posterior.exp() * q_grid.log_q).sum(-1) * grid.cell_volume
    # log q(z) = Σ_l log q_l(z_l): the cross term needs only the posterior's marginals on each axis
    return neg_entropy - (_posterior_marginals(log_posterior, grid) * q_grid.log_q_axes).sum((-2, -1))


# ---------------------------------------------------------------------------------------------------------------------
# Fitting a diagonal Gaussian: one Adam loop
# ---------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GaussianFitConfig:
    """Adam on a Gaussian's parameters for a deterministic (quadrature) objective (chapters 2-3): ``steps`` updates,
    the step size decaying geometrically from ``learning_rate`` to ``decay_to`` × ``learning_rate`` (1.0: constant,
    as in chapter 2's explorer)."""

    steps: int = 400
    learning_rate: float = 0.1
    decay_to: float = 0.1

    def __post_init__(self) -> None:
        check_count("steps", self.steps, maximum=1_000_000)
        check_real("learning_rate", self.learning_rate, above=0)
        check_real("decay_to", self.decay_to, above=0, maximum=1)


class AdamSteps:
    """Adam (Kingma & Ba, 2015) with torch.optim.Adam's defaults (β = (0.9, 0.999), ε = 10⁻⁸) and the same update,
    the one optimiser of the book's per-example fits (Gaussian fits and ascents, chapters 2-3; flow fits, chapter 8).
    Written out because these problems are tiny: constructing torch.optim.Adam imports torch._dynamo (about 1.5 s
    once per process) and its per-step bookkeeping costs about 280 µs against 45 µs here (one thread, a (5, 100)
    tensor). The tests check it step for step against torch.optim.Adam."""

    def __init__(self, parameters: list[Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        parameters = list(check_instance("parameters", parameters, (list, tuple), "a list of tensors"))
        if not parameters or not all(isinstance(p, Tensor) and p.requires_grad for p in parameters):
            raise ValueError("parameters must be a non-empty list of tensors that require grad")
        lr = check_real("lr", lr, above=0)
        betas = check_instance("betas", betas, tuple, "a tuple (beta1, beta2)")
        if len(betas) != 2:
            raise ValueError(f"betas must hold two numbers, got {len(betas)}")
        betas = (check_real("betas[0]", betas[0], minimum=0, below=1),
                 check_real("betas[1]", betas[1], minimum=0, below=1))
        eps = check_real("eps", eps, above=0)
        self.parameters, self.lr, self.betas, self.eps = parameters, lr, betas, eps
        self.m = [torch.zeros_like(p) for p in parameters]
        self.v = [torch.zeros_like(p) for p in parameters]
        self.t = 0

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        b1, b2 = self.betas
        step_size = self.lr / (1 - b1**self.t)
        root_correction = math.sqrt(1 - b2**self.t)
        for p, m, v in zip(self.parameters, self.m, self.v, strict=True):
            if p.grad is None:
                continue
            m.lerp_(p.grad, 1 - b1)  # m ← β₁ m + (1 − β₁) g
            v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)  # v ← β₂ v + (1 − β₂) g²
            p.addcdiv_(m, (v.sqrt() / root_correction).add_(self.eps), value=-step_size)

    def zero_grad(self) -> None:
        for p in self.parameters:
            p.grad = None


def adam(objective: Callable[..., Tensor], params: Sequence[Tensor],
         config: GaussianFitConfig = GaussianFitConfig()) -> tuple[list[Tensor], list[float]]:
    """Minimise Σ objective(*params) with Adam (betas 0.9, 0.999, eps 1e−8): the one optimiser loop of every Gaussian
    fit and ascent in the book (chapters 2-3).

    ``objective`` returns a loss per row (B,) or a scalar; rows are independent problems, so minimising the sum
    minimises each. Returns the detached parameters and the summed objective before each step (``config.steps``
    values).
    """
    check_instance("config", config, GaussianFitConfig, "a GaussianFitConfig")
    if not callable(objective):
        raise TypeError(f"objective must be callable, got {type(objective).__name__}")
    params = [as_tensor("params", p, min_ndim=1).detach().clone().requires_grad_(True) for p in params]
    if not params:
        raise ValueError("params must hold at least one tensor")
    optimiser = AdamSteps(params, lr=config.learning_rate)
    trace = []
    for t in range(config.steps):
        optimiser.lr = config.learning_rate * config.decay_to ** (t / config.steps)  # geometric decay
        optimiser.zero_grad()
        loss = objective(*params).sum()
        trace.append(loss.item())
        loss.backward()
        optimiser.step()
    return [p.detach() for p in params], trace


def _start(mean0: Tensor, log_var0: Tensor, batch: int, latent_dim: int) -> tuple[Tensor, Tensor]:
    mean0 = as_tensor("mean0", mean0, ndim=2, dtype=torch.float64)
    log_var0 = as_tensor("log_var0", log_var0, ndim=2, dtype=torch.float64)
    if mean0.shape != (batch, latent_dim) or log_var0.shape != (batch, latent_dim):
        raise ValueError(f"mean0 and log_var0 must have shape ({batch}, {latent_dim}), "
                         f"got {tuple(mean0.shape)} and {tuple(log_var0.shape)}")
    return mean0, log_var0


def _diag(mean: Tensor, log_var: Tensor) -> Independent:
    return Independent(Normal(mean, (0.5 * log_var).exp()), 1)


def fit_gaussian_elbo(log_joint: Tensor, grid: LatentGrid, mean0: Tensor, log_var0: Tensor,
                      config: GaussianFitConfig = GaussianFitConfig()) -> tuple[Tensor, Tensor, Tensor]:
    """The best diagonal Gaussian q = N(mean, diag exp(log_var)) per row (chapter 3): maximise the quadrature ELBO
    L(q; x_b) (equivalently minimise the reverse KL(q || p_θ(z|x_b)), the two adding up to the fixed log p_θ(x_b)) by
    :func:`adam` on (mean, log σ²), starting from (mean0, log_var0), each (B, L).

    Returns (mean, log_var, elbo), shapes (B, L), (B, L), (B,). Gradient ascent finds a *local* optimum: on a bimodal
    posterior the start decides which mode q takes.
    """
    grid = _check_grid(grid)
    log_joint = _check_on_grid("log_joint", log_joint, grid, 0)
    mean0, log_var0 = _start(mean0, log_var0, log_joint.shape[1], grid.points.shape[1])
    by_row = log_joint.T.contiguous()  # (B, G), checked and laid out once: the loop only moves q
    batch = by_row.shape[0]

    def negative_elbo(m: Tensor, v: Tensor) -> Tensor:  # −(E_q[log p_θ(x, z)] + H[q]), as in :func:`elbo`
        q_grid = _QOnGrid(_diag(m, v), grid, batch)
        return -(q_grid.expect(by_row) + q_grid.entropy())  # (B,)

    (mean, log_var), _ = adam(negative_elbo, (mean0, log_var0), config)
    return mean, log_var, elbo(log_joint, grid, _diag(mean, log_var))


def fit_gaussian_forward_kl(log_posterior: Tensor, grid: LatentGrid, mean0: Tensor, log_var0: Tensor,
                            config: GaussianFitConfig = GaussianFitConfig()) -> tuple[Tensor, Tensor]:
    """The diagonal Gaussian q minimising the forward KL(p_θ(z|x) || q) (chapter 3) by :func:`adam` on its quadrature
    value, from (mean0, log_var0), each (B, L); returns (mean, log_var), each (B, L).

    The forward KL needs expectations under the posterior itself, available here only because the grid gives
    p_θ(z|x) exactly. Its optimum is moment matching (:func:`posterior_moments`); the tests check that.
    """
    grid = _check_grid(grid)
    log_posterior = _check_on_grid("log_posterior", log_posterior, grid, 1)
    mean0, log_var0 = _start(mean0, log_var0, log_posterior.shape[0], grid.points.shape[1])
    marginals = _posterior_marginals(log_posterior, grid)  # (B, L, n), once: the loop only moves q

    def cross_entropy(m: Tensor, v: Tensor) -> Tensor:  # −E_p[log q], the forward KL up to its constant −H[p]
        log_q_axes = Normal(m.unsqueeze(-1), (0.5 * v).exp().unsqueeze(-1)).log_prob(grid.axes[0])  # (B, L, n)
        return -(marginals * log_q_axes).sum((-2, -1))  # (B,)

    (mean, log_var), _ = adam(cross_entropy, (mean0, log_var0), config)
    return mean, log_var
