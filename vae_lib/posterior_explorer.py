"""The posterior explorer: the true posterior p_θ(z|x) on the z-plane next to a diagonal Gaussian q(z|x).

Chapter 2 ("The evidence lower bound") uses it to show the identity log p_θ(x) = L(q) + KL(q || p_θ(z|x))
at work. For a model with a 2-D latent z, the log joint log p_θ(x, z) = log p_θ(x|z) + log p(z) is tabulated
on a regular grid z_g with cell area dA; then, by quadrature,

    log p_θ(x) ≈ log Σ_g exp(log p_θ(x, z_g)) dA,
    L(q)      ≈ Σ_g q(z_g) [log p_θ(x, z_g) − log q(z_g)] dA,          q = N(μ, diag σ²),
    gap       = log p_θ(x) − L(q) = KL(q || p_θ(z|x)),

all computed by :mod:`vae_lib.quadrature` (the log joint by :func:`vae_lib.quadrature.log_joint_on_grid`).

* :func:`ascend_elbo` runs gradient ascent on L(q) over (μ, log σ) (:func:`vae_lib.quadrature.adam` with a constant
  step size, as the page's button does);
* :func:`posterior_explorer` is the explorer, one :class:`vae_lib.explorer.Explorer`: static in the built page
  (the grids travel with it and the book's explorer runtime computes the same quadrature ELBO, and the same Adam
  steps, in the browser) and live in a kernel (``.live()``: the same program run with torch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from . import quadrature
from ._checks import as_tensor, check_instance, check_latent_model, check_sequence, check_text
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
from .gaussian import diag_gaussian
from .quadrature import GaussianFitConfig, LatentGrid

__all__ = [
    "EXPLORER_ASCENT",
    "AscentResult",
    "ascend_elbo",
    "posterior_explorer",
]

MU_RANGE = (-2.0, 2.0)  # slider range of μ₁, μ₂
LOG_SIGMA_RANGE = (-2.5, -0.5)  # slider range of log σ₁, log σ₂ (σ from 0.08 to 0.61)
SLIDER_STEP = 0.01  # the sliders are continuous (the page computes every q)
ELLIPSE_POINTS = 73
VIEW_HALF_WIDTH = 2.5  # the plot shows [−2.5, 2.5]²
Q_COLOUR = "#D55E00"  # Okabe-Ito vermillion
EXPLORER_ASCENT = GaussianFitConfig(steps=150, learning_rate=0.05, decay_to=1.0)  # the button: Adam at a constant rate
READOUT = "log p(x) = {log_px:.3f}   ELBO L(q) = {elbo:.3f}   gap = KL(q ‖ p(z|x)) = {gap:.3f}  [nats]"


@dataclass(frozen=True)
class AscentResult:
    """Where gradient ascent ended, and the ELBO L(q) before each step and after the last (steps + 1 values)."""

    mean: Tensor  # (2,)
    log_sigma: Tensor  # (2,)
    elbo: Tensor  # (steps + 1,)


def _check_q(mean: Tensor, log_sigma: Tensor, latent_dim: int) -> tuple[Tensor, Tensor]:
    mean = as_tensor("mean", mean, ndim=1, dtype=torch.float64)
    log_sigma = as_tensor("log_sigma", log_sigma, ndim=1, dtype=torch.float64)
    for name, t in (("mean", mean), ("log_sigma", log_sigma)):
        if t.shape != (latent_dim,):
            raise ValueError(f"{name} must have shape ({latent_dim},), got {tuple(t.shape)}")
    return mean, log_sigma


def ascend_elbo(log_joint: Tensor, grid: LatentGrid, mean: Tensor, log_sigma: Tensor,
                config: GaussianFitConfig = EXPLORER_ASCENT) -> AscentResult:
    """Maximise the quadrature ELBO (:func:`vae_lib.quadrature.elbo`) of q = N(μ, diag σ²) over (μ, log σ) for one x
    (chapter 2) with :func:`vae_lib.quadrature.adam`, from the given q: the Python twin of the explorer's button.

    ``log_joint`` is log p_θ(x, z_g) of one x on ``grid``, shape (G,) or (G, 1); mean and log_sigma are (L,).
    """
    grid = check_instance("grid", grid, LatentGrid, "a vae_lib.quadrature.LatentGrid")
    log_joint = as_tensor("log_joint", log_joint, min_ndim=1, dtype=torch.float64)
    log_joint = log_joint.unsqueeze(1) if log_joint.dim() == 1 else log_joint  # (G, 1)
    if log_joint.dim() != 2 or log_joint.shape[1] != 1:
        raise ValueError(f"log_joint must be one x's log joint on the grid, shape (G,) or (G, 1), "
                         f"got {tuple(log_joint.shape)}")
    mean, log_sigma = _check_q(mean, log_sigma, grid.points.shape[1])

    def elbo(m: Tensor, s: Tensor) -> Tensor:  # (1,)
        return quadrature.elbo(log_joint, grid, diag_gaussian(m[None], 2 * s[None]))  # log σ² = 2 log σ

    (m, s), trace = quadrature.adam(lambda m, s: -elbo(m, s), (mean, log_sigma), config)
    history = [-value for value in trace] + [elbo(m, s).item()]
    return AscentResult(m.clone(), s.clone(), torch.tensor(history, dtype=torch.float64))


def posterior_explorer(models: LatentVariableModel | Sequence[LatentVariableModel], xs: Sequence[Tensor],
                       labels: Sequence[str], *, bound: float = 4.0, n_grid: int = 121,
                       start_mean: tuple[float, float] = (0.5, 0.0),
                       start_log_sigma: tuple[float, float] = (-1.0, -1.0),
                       ascent: GaussianFitConfig = EXPLORER_ASCENT,
                       title: str = "Posterior explorer: q(z|x) against the true p(z|x)") -> Explorer:
    """The posterior explorer (chapter 2) as an :class:`vae_lib.explorer.Explorer`: static in the page
    (``explorer`` in a notebook cell, or ``explorer.html()``), live in a kernel (``explorer.live()``).

    ``models`` is one 2-D-latent model or one per preset; ``xs`` holds the preset observations (one per entry, each
    with the data size of its model) and ``labels`` their names. Per preset the log joint on the ``n_grid`` ×
    ``n_grid`` grid over [−bound, bound]² travels with the explorer (float32); a menu picks x, the sliders (or a drag
    on the plane, or the arrow keys) set μ₁, μ₂, log σ₁, log σ₂, and a button runs ``ascent.steps`` Adam steps on
    the quadrature ELBO (:func:`ascend_elbo`; in the page the runtime's own Adam on the same sum; ``ascent`` must
    keep its step size constant, ``decay_to=1.0``, as the runtime does). The plane shows
    p_θ(z|x) (relative to its peak), q's 1σ and 2σ ellipses and its mean; the readout log p_θ(x), L(q) and the gap.
    """
    if not isinstance(models, (list, tuple)):
        check_latent_model("models", models)
    xs_list = [as_tensor("xs", x, ndim=1, dtype=torch.float64) for x in check_sequence("xs", xs, nonempty=False)]
    if not xs_list:
        raise ValueError("xs must hold at least one preset observation")
    check_sequence("labels", labels)
    check_instance("ascent", ascent, GaussianFitConfig, "a vae_lib.quadrature.GaussianFitConfig")
    if ascent.decay_to != 1.0:
        raise ValueError(f"ascent must keep a constant step size (decay_to=1.0, as the page's Adam), "
                         f"got decay_to={ascent.decay_to}")
    check_text("title", title)
    grid = quadrature.latent_grid(bound, n_grid, 2)
    log_joint = _prepare_list(models, xs_list, labels, grid)  # (P, G)
    mean, log_sigma = _check_q(torch.tensor(start_mean), torch.tensor(start_log_sigma), 2)
    q_names = ("mu1", "mu2", "log_sigma1", "log_sigma2")
    elbo_op = QuadratureELBO(log_joint, grid, "x", q_names, posterior="posterior")
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
    z1, z2 = grid.axes
    half = 0.5 * grid.step  # each grid value fills its cell
    extent = (float(z1[0]) - half, float(z1[-1]) + half, float(z2[0]) - half, float(z2[-1]) + half)
    view = (-VIEW_HALF_WIDTH, VIEW_HALF_WIDTH)  # the grid extends further (quadrature); the view is zoomed in
    plane = Plane("true posterior p(z|x) (shaded, relative to its peak) and q(z|x)", "z₁", view, "z₂", view,
                  background=Background(extent, (0.0, 1.0), output="posterior", shape=grid.shape,
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


def _prepare_list(model, xs_list: list[Tensor], labels: Sequence[str], grid: LatentGrid) -> Tensor:
    """log p_θ(x_p, z_g) for every preset p on the grid, (P, G)."""
    if isinstance(labels, str) or len(labels) != len(xs_list):
        raise ValueError(f"labels must give one name per preset in xs ({len(xs_list)}), got {labels!r}")
    models = list(model) if isinstance(model, (list, tuple)) else [model] * len(xs_list)
    if len(models) != len(xs_list):
        raise ValueError(f"models must be one model or one per preset in xs ({len(xs_list)}), got {len(models)}")
    for m in models:
        check_latent_model("models", m)
    return torch.cat([quadrature.log_joint_on_grid(m, x[None], grid) for m, x in zip(models, xs_list, strict=True)],
                     1).T
