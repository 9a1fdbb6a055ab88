"""The posterior explorer: the true posterior p_θ(z|x) on the z-plane next to a diagonal Gaussian q(z|x).

Chapter 2 ("The evidence lower bound") uses it to show the identity log p_θ(x) = L(q) + KL(q || p_θ(z|x))
at work. For a model with a 2-D latent z, the log joint log p_θ(x, z) = log p_θ(x|z) + log p(z) is tabulated
on a regular grid z_g with cell area dA; then, by quadrature,

    log p_θ(x) ≈ log Σ_g exp(log p_θ(x, z_g)) dA,
    L(q)      ≈ Σ_g q(z_g) [log p_θ(x, z_g) − log q(z_g)] dA,          q = N(μ, diag σ²),
    gap       = log p_θ(x) − L(q) = KL(q || p_θ(z|x)).

* :func:`posterior_grid` tabulates the log joint for a few preset observations;
* :func:`quadrature_elbo` evaluates L(q) on that grid (differentiable in μ and log σ);
* :func:`ascend_elbo` runs gradient ascent on L(q) over (μ, log σ) with ``torch.optim.Adam``;
* :func:`posterior_explorer` is the explorer, one :class:`vae_lib.explorer.Explorer`: static in the built page
  (the grids travel with it and the book's explorer runtime computes the same quadrature ELBO, and the same Adam
  steps, in the browser) and live in a kernel (``.live()``: the same program run with torch).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ._checks import (
    as_tensor,
    check_count,
    check_instance,
    check_latent_model,
    check_real,
    check_sequence,
    check_text,
)
from .elbo import LatentVariableModel
from .explorer import (
    Affine,
    Background,
    Button,
    Choice,
    Curve,
    Ellipse,
    Explorer,
    Marker,
    Plane,
    QuadratureELBO,
    Slider,
    Stack,
    _Data,
)

__all__ = [
    "AscentConfig",
    "AscentResult",
    "PosteriorGrid",
    "ascend_elbo",
    "log_q_on_grid",
    "posterior_explorer",
    "posterior_grid",
    "quadrature_elbo",
]

MU_RANGE = (-2.0, 2.0)  # slider range of μ₁, μ₂
LOG_SIGMA_RANGE = (-2.5, -0.5)  # slider range of log σ₁, log σ₂ (σ from 0.08 to 0.61)
SLIDER_STEP = 0.01  # the sliders are continuous (the page computes every q)
ELLIPSE_POINTS = 73
VIEW_HALF_WIDTH = 2.5  # the plot shows [−2.5, 2.5]²
Q_COLOUR = "#D55E00"  # Okabe-Ito vermillion
READOUT = "log p(x) = {log_px:.3f}   ELBO L(q) = {elbo:.3f}   gap = KL(q ‖ p(z|x)) = {gap:.3f}  [nats]"


@dataclass(frozen=True)
class PosteriorGrid:
    """log p_θ(x_p, z_g) on a regular grid of the z-plane, for P preset observations x_p.

    ``log_joint[p, j, i]`` is the log joint at z = (z1[i], z2[j]) (rows follow z₂, columns z₁).
    """

    z1: Tensor  # (n,)
    z2: Tensor  # (n,)
    log_joint: Tensor  # (P, n, n)
    cell_area: float

    @property
    def log_evidence(self) -> Tensor:
        """log p_θ(x_p) ≈ log Σ_g p_θ(x_p, z_g) dA by quadrature, shape (P,)."""
        return torch.logsumexp(self.log_joint.flatten(1), dim=1) + math.log(self.cell_area)

    def log_posterior(self) -> Tensor:
        """log p_θ(z_g|x_p) = log p_θ(x_p, z_g) − log p_θ(x_p), shape (P, n, n)."""
        return self.log_joint - self.log_evidence[:, None, None]


@dataclass(frozen=True)
class AscentConfig:
    """Gradient ascent on the quadrature ELBO over (μ, log σ) with Adam (betas 0.9, 0.999, eps 1e−8)."""

    steps: int = 150
    learning_rate: float = 0.05

    def __post_init__(self) -> None:
        check_count("steps", self.steps, minimum=0, maximum=1_000_000)
        check_real("learning_rate", self.learning_rate, above=0)


@dataclass(frozen=True)
class AscentResult:
    """Where gradient ascent ended, and the ELBO L(q) before each step and after the last (steps + 1 values)."""

    mean: Tensor  # (2,)
    log_sigma: Tensor  # (2,)
    elbo: Tensor  # (steps + 1,)


def posterior_grid(model: LatentVariableModel, xs: Tensor, *, bound: float = 4.0, n_grid: int = 121) -> PosteriorGrid:
    """Tabulate log p_θ(x, z) = log p_θ(x|z) + log p(z) for each row x of ``xs`` (P, D) on [−bound, bound]²."""
    check_latent_model("model", model)
    xs = as_tensor("xs", xs, ndim=2, dtype=torch.float64, nonempty=True)
    n_grid = check_count("n_grid", n_grid, minimum=3, maximum=2001)
    if not isinstance(bound, (int, float)) or not bound > 0:
        raise ValueError(f"bound must be a positive number, got {bound!r}")
    if tuple(model.prior.event_shape) != (2,):
        raise ValueError(f"model must have a 2-D latent z, got latent size {tuple(model.prior.event_shape)}")
    axis = torch.linspace(-bound, bound, n_grid, dtype=torch.float64)  # (n,)
    z1, z2 = torch.meshgrid(axis, axis, indexing="xy")  # (n, n): rows follow z2
    z = torch.stack([z1.reshape(-1), z2.reshape(-1)], -1).unsqueeze(1)  # (G, 1, 2)
    prior_log = model.prior.log_prob(z.to(model.prior.mean.dtype)).to(torch.float64)  # (G, 1)
    rows = [model.log_likelihood(x[None], z).to(torch.float64) + prior_log for x in xs]  # P × (G, 1)
    log_joint = torch.cat(rows, 1).T.reshape(xs.shape[0], n_grid, n_grid)  # (P, n, n)
    step = float(axis[1] - axis[0])
    return PosteriorGrid(axis, axis, log_joint, step * step)


def _check_q(mean: Tensor, log_sigma: Tensor) -> tuple[Tensor, Tensor]:
    mean = as_tensor("mean", mean, ndim=1, dtype=torch.float64)
    log_sigma = as_tensor("log_sigma", log_sigma, ndim=1, dtype=torch.float64)
    for name, t in (("mean", mean), ("log_sigma", log_sigma)):
        if t.shape != (2,):
            raise ValueError(f"{name} must have shape (2,), got {tuple(t.shape)}")
    return mean, log_sigma


def log_q_on_grid(grid: PosteriorGrid, mean: Tensor, log_sigma: Tensor) -> Tensor:
    """log q(z_g) for q = N(μ, diag σ²) at every grid point, shape (n, n)."""
    check_instance("grid", grid, PosteriorGrid, "a PosteriorGrid (from posterior_grid)")
    mean, log_sigma = _check_q(mean, log_sigma)
    u1 = (grid.z1 - mean[0]) / log_sigma[0].exp()  # (n,) standardised z₁
    u2 = (grid.z2 - mean[1]) / log_sigma[1].exp()  # (n,)
    return (-math.log(2 * math.pi) - log_sigma.sum() - 0.5 * (u2[:, None] ** 2 + u1[None, :] ** 2))  # (n, n)


def _check_index(grid: PosteriorGrid, index: int) -> int:
    check_instance("grid", grid, PosteriorGrid, "a PosteriorGrid (from posterior_grid)")
    index = check_count("index", index, minimum=0)
    if index >= grid.log_joint.shape[0]:
        raise ValueError(f"index must be below the number of presets {grid.log_joint.shape[0]}, got {index}")
    return index


def quadrature_elbo(grid: PosteriorGrid, index: int, mean: Tensor, log_sigma: Tensor) -> Tensor:
    """L(q) = Σ_g q(z_g) [log p_θ(x, z_g) − log q(z_g)] dA for preset ``index`` (a scalar, differentiable)."""
    index = _check_index(grid, index)
    log_q = log_q_on_grid(grid, mean, log_sigma)  # (n, n)
    return (log_q.exp() * (grid.log_joint[index] - log_q)).sum() * grid.cell_area


def ascend_elbo(grid: PosteriorGrid, index: int, mean: Tensor, log_sigma: Tensor,
                config: AscentConfig = AscentConfig()) -> AscentResult:
    """Maximise the quadrature ELBO over (μ, log σ) with ``config.steps`` Adam steps from the given q."""
    index = _check_index(grid, index)
    mean, log_sigma = _check_q(mean, log_sigma)
    steps = check_count("steps", config.steps, minimum=0)
    params = torch.stack([mean, log_sigma]).clone().requires_grad_(True)  # (2, 2): rows μ, log σ
    opt = torch.optim.Adam([params], lr=config.learning_rate, betas=(0.9, 0.999), eps=1e-8)
    history = []
    for _ in range(steps):
        opt.zero_grad()
        elbo = quadrature_elbo(grid, index, params[0], params[1])
        history.append(elbo.item())
        (-elbo).backward()
        opt.step()
    with torch.no_grad():
        history.append(quadrature_elbo(grid, index, params[0], params[1]).item())
    p = params.detach()
    return AscentResult(p[0].clone(), p[1].clone(), torch.tensor(history, dtype=torch.float64))


def posterior_explorer(models: LatentVariableModel | Sequence[LatentVariableModel], xs: Sequence[Tensor],
                       labels: Sequence[str], *, bound: float = 4.0, n_grid: int = 121,
                       start_mean: tuple[float, float] = (0.5, 0.0),
                       start_log_sigma: tuple[float, float] = (-1.0, -1.0),
                       ascent: AscentConfig = AscentConfig(),
                       title: str = "Posterior explorer: q(z|x) against the true p(z|x)") -> Explorer:
    """The posterior explorer (chapter 2) as an :class:`vae_lib.explorer.Explorer`: static in the page
    (``explorer`` in a notebook cell, or ``explorer.html()``), live in a kernel (``explorer.live()``).

    ``models`` is one 2-D-latent model or one per preset; ``xs`` holds the preset observations (one per entry, each
    with the data size of its model) and ``labels`` their names. Per preset the log joint on the ``n_grid`` ×
    ``n_grid`` grid over [−bound, bound]² travels with the explorer (float32); a menu picks x, the sliders (or a drag
    on the plane, or the arrow keys) set μ₁, μ₂, log σ₁, log σ₂, and a button runs ``ascent.steps`` Adam steps on
    the quadrature ELBO (:func:`ascend_elbo`; in the page the runtime's own Adam on the same sum). The plane shows
    p_θ(z|x) (relative to its peak), q's 1σ and 2σ ellipses and its mean; the readout log p_θ(x), L(q) and the gap.
    """
    if not isinstance(models, (list, tuple)):
        check_latent_model("models", models)
    xs_list = [as_tensor("xs", x, ndim=1, dtype=torch.float64) for x in check_sequence("xs", xs, nonempty=False)]
    if not xs_list:
        raise ValueError("xs must hold at least one preset observation")
    check_sequence("labels", labels)
    check_instance("ascent", ascent, AscentConfig, "an AscentConfig")
    check_text("title", title)
    grid = _prepare_list(models, xs_list, labels, bound, n_grid)
    mean, log_sigma = _check_q(torch.tensor(start_mean), torch.tensor(start_log_sigma))
    check_count("ascent.steps", ascent.steps, minimum=1)
    q_names = ("mu1", "mu2", "log_sigma1", "log_sigma2")
    elbo_op = QuadratureELBO(grid.log_joint, grid.z1, grid.z2, grid.cell_area, "x", q_names, posterior="posterior")
    button_op = {k: v for k, v in elbo_op.json(_Data()).items() if k != "posterior"}  # the ascent needs no picture
    controls = (
        Choice("x", "observation x", tuple(labels)),
        Slider("mu1", "μ₁", *MU_RANGE, SLIDER_STEP, _clip(float(mean[0]), MU_RANGE)),
        Slider("mu2", "μ₂", *MU_RANGE, SLIDER_STEP, _clip(float(mean[1]), MU_RANGE)),
        Slider("log_sigma1", "log σ₁", *LOG_SIGMA_RANGE, SLIDER_STEP, _clip(float(log_sigma[0]), LOG_SIGMA_RANGE)),
        Slider("log_sigma2", "log σ₂", *LOG_SIGMA_RANGE, SLIDER_STEP, _clip(float(log_sigma[1]), LOG_SIGMA_RANGE)),
        Button("ascend", f"▶ {ascent.steps} gradient-ascent steps on the ELBO", "ascend",
               {"steps": ascent.steps, "learning_rate": ascent.learning_rate, "q": list(q_names), "op": button_op}),
    )
    program = (
        elbo_op,
        Stack(("mu1", "mu2"), "mu"), Stack(("log_sigma1", "log_sigma2"), "log_sigma"),
        Affine("log_sigma", "log_var", 2.0),  # the Ellipse takes log σ² = 2 log σ
        Ellipse("mu", "log_var", 1.0, "ellipse1", ELLIPSE_POINTS),
        Ellipse("mu", "log_var", 2.0, "ellipse2", ELLIPSE_POINTS),
    )
    half = 0.5 * float(grid.z1[1] - grid.z1[0])  # each grid value fills its cell
    extent = (float(grid.z1[0]) - half, float(grid.z1[-1]) + half, float(grid.z2[0]) - half, float(grid.z2[-1]) + half)
    view = (-VIEW_HALF_WIDTH, VIEW_HALF_WIDTH)  # the grid extends further (quadrature); the view is zoomed in
    plane = Plane("true posterior p(z|x) (shaded, relative to its peak) and q(z|x)", "z₁", view, "z₂", view,
                  background=Background(extent, (0.0, 1.0), output="posterior", shape=tuple(grid.log_joint.shape[1:]),
                                        colormap="blues"),
                  layers=(Curve("ellipse1", Q_COLOUR, "q(z|x): 1σ ellipse", width=3),
                          Curve("ellipse2", Q_COLOUR, "2σ ellipse", dash="6 4", width=2),
                          Marker("mu1", "mu2", Q_COLOUR)),
                  drag=("mu1", "mu2"), width=460, height=460)
    caption = (f"{title}. Pick x from the menu; set q's mean μ and log σ with the sliders, or drag the mean on the "
               "plane (or focus it and press the arrow keys, Shift for larger steps); the orange button runs "
               f"{ascent.steps} steps of gradient ascent on the ELBO. The readout gives log p(x), the ELBO L(q) and "
               "their gap, the KL divergence from q to the true posterior, by quadrature on the grid.")
    return Explorer(title, caption, controls, (plane,), program, READOUT)


def _clip(value: float, bounds: tuple[float, float]) -> float:
    return min(max(value, bounds[0]), bounds[1])


def _prepare_list(model, xs_list: list[Tensor], labels: Sequence[str], bound: float, n_grid: int) -> PosteriorGrid:
    if isinstance(labels, str) or len(labels) != len(xs_list):
        raise ValueError(f"labels must give one name per preset in xs ({len(xs_list)}), got {labels!r}")
    models = list(model) if isinstance(model, (list, tuple)) else [model] * len(xs_list)
    if len(models) != len(xs_list):
        raise ValueError(f"models must be one model or one per preset in xs ({len(xs_list)}), got {len(models)}")
    grids = [posterior_grid(mod, x[None], bound=bound, n_grid=n_grid) for mod, x in zip(models, xs_list, strict=True)]
    return PosteriorGrid(grids[0].z1, grids[0].z2, torch.cat([g.log_joint for g in grids]), grids[0].cell_area)
