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
* :func:`posterior_explorer_figure` is the *static* explorer (works in the built page with no kernel: the
  grids are embedded in ``layout.meta.posterior_explorer`` and ``posterior_explorer.js`` recomputes the same
  quadrature ELBO and the same Adam steps in the browser);
* :func:`live_posterior_explorer` is the *live* explorer for a running kernel (ipywidgets + FigureWidget).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import torch
from torch import Tensor

from ._checks import as_tensor, check_count
from .elbo import LatentVariableModel

__all__ = [
    "AscentConfig",
    "AscentResult",
    "PosteriorGrid",
    "ascend_elbo",
    "live_posterior_explorer",
    "log_q_on_grid",
    "posterior_explorer_figure",
    "posterior_grid",
    "quadrature_elbo",
]

MU_RANGE = (-2.0, 2.0)  # slider range of μ₁, μ₂
LOG_SIGMA_RANGE = (-2.5, -0.5)  # slider range of log σ₁, log σ₂ (σ from 0.08 to 0.61)
SLIDER_STEP = 0.1
ELLIPSE_POINTS = 73
VIEW_HALF_WIDTH = 2.5  # the plot shows [−2.5, 2.5]²
READOUT_FORMAT = "log p(x) = {log_px}   ELBO L(q) = {elbo}   gap = KL(q ‖ p(z|x)) = {gap}  [nats]"


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


@dataclass(frozen=True)
class AscentResult:
    """Where gradient ascent ended, and the ELBO L(q) before each step and after the last (steps + 1 values)."""

    mean: Tensor  # (2,)
    log_sigma: Tensor  # (2,)
    elbo: Tensor  # (steps + 1,)


def posterior_grid(model: LatentVariableModel, xs: Tensor, *, bound: float = 4.0, n_grid: int = 121) -> PosteriorGrid:
    """Tabulate log p_θ(x, z) = log p_θ(x|z) + log p(z) for each row x of ``xs`` (P, D) on [−bound, bound]²."""
    xs = as_tensor("xs", xs, ndim=2, dtype=torch.float64)
    n_grid = check_count("n_grid", n_grid, minimum=3)
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
    mean, log_sigma = _check_q(mean, log_sigma)
    u1 = (grid.z1 - mean[0]) / log_sigma[0].exp()  # (n,) standardised z₁
    u2 = (grid.z2 - mean[1]) / log_sigma[1].exp()  # (n,)
    return (-math.log(2 * math.pi) - log_sigma.sum() - 0.5 * (u2[:, None] ** 2 + u1[None, :] ** 2))  # (n, n)


def _check_index(grid: PosteriorGrid, index: int) -> int:
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


def _ellipse(mean: Sequence[float], sigma: Sequence[float], k: float) -> tuple[list[float], list[float]]:
    """The k-σ ellipse of N(μ, diag σ²): points μ + k σ ⊙ (cos t, sin t)."""
    t = np.linspace(0.0, 2 * np.pi, ELLIPSE_POINTS)
    return (list(mean[0] + k * sigma[0] * np.cos(t)), list(mean[1] + k * sigma[1] * np.sin(t)))


def _readout(log_px: float, elbo: float, gap: float) -> str:
    return READOUT_FORMAT.format(log_px=f"{log_px:.3f}", elbo=f"{elbo:.3f}", gap=f"{gap:.3f}")


def _base_figure(grid: PosteriorGrid, labels: Sequence[str], index: int, mean: Tensor, log_sigma: Tensor,
                 title: str) -> go.Figure:
    """Heatmap of p_θ(z|x), q's 1σ and 2σ ellipses and mean, the readout; no controls."""
    post = grid.log_posterior()[index].exp().float().numpy()  # (n, n)
    m, s = mean.tolist(), log_sigma.exp().tolist()
    log_px = float(grid.log_evidence[index])
    elbo = float(quadrature_elbo(grid, index, mean, log_sigma))
    fig = go.Figure()
    fig.add_trace(go.Heatmap(z=post, x=grid.z1.float().numpy(), y=grid.z2.float().numpy(), colorscale="Blues",
                             colorbar=dict(title="p(z|x)", len=0.75), name="true posterior p(z|x)",
                             hovertemplate="z₁=%{x:.2f}, z₂=%{y:.2f}<br>p(z|x)=%{z:.3f}<extra></extra>"))
    for k, dash in ((1.0, "solid"), (2.0, "dash")):
        ex, ey = _ellipse(m, s, k)
        fig.add_trace(go.Scatter(x=ex, y=ey, mode="lines", line=dict(color="#D55E00", width=3 if k == 1 else 2,
                                 dash=dash), name=f"q(z|x): {k:.0f}σ ellipse", hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=[m[0]], y=[m[1]], mode="markers", name="mean μ of q",
                             marker=dict(color="#D55E00", symbol="x", size=11, line=dict(width=1, color="black"))))
    fig.add_annotation(text=_readout(log_px, elbo, log_px - elbo), xref="paper", yref="paper", x=0.0, y=1.0,
                       xanchor="left", yanchor="bottom", yshift=8, showarrow=False,
                       font=dict(size=13, family="monospace"))
    view = [-VIEW_HALF_WIDTH, VIEW_HALF_WIDTH]  # the grid may extend further (quadrature), the view is zoomed in
    fig.update_xaxes(title_text="z₁", range=view, constrain="domain")
    fig.update_yaxes(title_text="z₂", range=view, scaleanchor="x", constrain="domain")
    fig.update_layout(title=dict(text=f"{title}<br><sup>{labels[index]}</sup>", y=0.97), height=560,
                      margin=dict(t=110, b=50, l=60, r=20), plot_bgcolor="white",
                      legend=dict(orientation="h", yanchor="top", y=-0.12, x=0.0))
    return fig


def _slider_values(lo: float, hi: float) -> list[float]:
    n = int(round((hi - lo) / SLIDER_STEP)) + 1
    return [round(lo + k * SLIDER_STEP, 4) + 0.0 for k in range(n)]


def posterior_explorer_figure(model: LatentVariableModel | Sequence[LatentVariableModel], xs: Sequence[Tensor],
                              labels: Sequence[str], *, bound: float = 4.0, n_grid: int = 121,
                              start_mean: tuple[float, float] = (0.5, 0.0),
                              start_log_sigma: tuple[float, float] = (-1.0, -1.0),
                              ascent: AscentConfig = AscentConfig(),
                              title: str = "Posterior explorer: q(z|x) against the true p(z|x)") -> go.Figure:
    """The static posterior explorer (works in the built page with no kernel).

    ``model`` is one 2-D-latent model or one per preset; ``xs`` holds the preset observations (one per row,
    each with the data size of its model) and ``labels`` their names. Per preset the log joint on the
    ``n_grid`` × ``n_grid`` grid over [−bound, bound]² is embedded as float32 bytes (base64); the sliders set
    μ₁, μ₂, log σ₁, log σ₂, a drop-down menu picks x and a button runs ``ascent.steps`` Adam steps on the
    quadrature ELBO.
    """
    xs_list = [as_tensor("xs", x, ndim=1, dtype=torch.float64) for x in xs]
    if not xs_list:
        raise ValueError("xs must hold at least one preset observation")
    grid = _prepare_list(model, xs_list, labels, bound, n_grid)
    mean, log_sigma = _check_q(torch.tensor(start_mean), torch.tensor(start_log_sigma))
    fig = _base_figure(grid, labels, 0, mean, log_sigma, title)
    mu_values, ls_values = _slider_values(*MU_RANGE), _slider_values(*LOG_SIGMA_RANGE)

    def slider(name: str, label: str, values: list[float], value: float, x: float, y: float) -> dict:
        active = int(np.argmin([abs(v - value) for v in values]))
        steps = [dict(method="skip", label=f"{v:.1f}", value=f"{v:.1f}", args=[]) for v in values]
        return dict(name=name, active=active, steps=steps, x=x, len=0.46, y=y, yanchor="top", pad=dict(t=0, b=0),
                    currentvalue=dict(prefix=f"{label} = ", font=dict(size=13, color="#222222")),
                    tickcolor="rgba(0,0,0,0)", font=dict(size=1, color="rgba(0,0,0,0)"))

    sliders = [slider("mu1", "μ₁", mu_values, float(mean[0]), 0.0, -0.24),
               slider("mu2", "μ₂", mu_values, float(mean[1]), 0.54, -0.24),
               slider("log_sigma1", "log σ₁", ls_values, float(log_sigma[0]), 0.0, -0.40),
               slider("log_sigma2", "log σ₂", ls_values, float(log_sigma[1]), 0.54, -0.40)]
    presets = dict(type="dropdown", direction="down", x=0.0, y=1.13, xanchor="left", yanchor="bottom", active=0,
                   showactive=True, pad=dict(r=4, t=0), font=dict(size=12),
                   buttons=[dict(label=lab, method="skip", args=[], name=f"preset{k}")
                            for k, lab in enumerate(labels)])
    run = dict(type="buttons", direction="right", x=1.0, y=-0.56, xanchor="right", yanchor="top", showactive=False,
               font=dict(size=13), bgcolor="#E69F00",
               buttons=[dict(label=f"▶ {ascent.steps} gradient-ascent steps on the ELBO", method="skip", args=[],
                             name="ascend")])
    data = grid.log_joint.to(torch.float32).numpy()  # (P, n, n)
    fig.update_layout(
        sliders=sliders, updatemenus=[presets, run], height=880, margin=dict(t=150, b=300, l=60, r=20),
        legend=dict(y=-0.64),
        meta=dict(posterior_explorer=dict(
            z1=[float(v) for v in grid.z1], z2=[float(v) for v in grid.z2], cell_area=grid.cell_area,
            n_presets=len(xs_list), labels=list(labels), log_joint_b64=base64.b64encode(data.tobytes()).decode(),
            start=dict(preset=0, mean=mean.tolist(), log_sigma=log_sigma.tolist()),
            steps=ascent.steps, learning_rate=ascent.learning_rate, readout_format=READOUT_FORMAT,
            title=title, ellipse_points=ELLIPSE_POINTS, heatmap_trace=0, ellipse_traces=[1, 2], mean_trace=3,
            readout_annotation=0)))
    return fig


def _prepare_list(model, xs_list: list[Tensor], labels: Sequence[str], bound: float, n_grid: int) -> PosteriorGrid:
    if isinstance(labels, str) or len(labels) != len(xs_list):
        raise ValueError(f"labels must give one name per preset in xs ({len(xs_list)}), got {labels!r}")
    models = list(model) if isinstance(model, (list, tuple)) else [model] * len(xs_list)
    if len(models) != len(xs_list):
        raise ValueError(f"model must be one model or one per preset in xs ({len(xs_list)}), got {len(models)}")
    grids = [posterior_grid(mod, x[None], bound=bound, n_grid=n_grid) for mod, x in zip(models, xs_list, strict=True)]
    return PosteriorGrid(grids[0].z1, grids[0].z2, torch.cat([g.log_joint for g in grids]), grids[0].cell_area)


def live_posterior_explorer(model: LatentVariableModel | Sequence[LatentVariableModel], xs: Sequence[Tensor],
                            labels: Sequence[str], *, bound: float = 4.0, n_grid: int = 121,
                            start_mean: tuple[float, float] = (0.5, 0.0),
                            start_log_sigma: tuple[float, float] = (-1.0, -1.0),
                            ascent: AscentConfig = AscentConfig(),
                            title: str = "Posterior explorer (live)"):
    """The live posterior explorer for a running kernel.

    Returns an ``ipywidgets.VBox``: a preset dropdown, sliders for μ₁, μ₂, log σ₁, log σ₂, a button that runs
    ``ascent.steps`` Adam steps (:func:`ascend_elbo`) and a ``FigureWidget`` updated in place; the readout is
    the same quadrature ELBO as the static explorer's, computed with torch.
    """
    import ipywidgets as widgets

    xs_list = [as_tensor("xs", x, ndim=1, dtype=torch.float64) for x in xs]
    grid = _prepare_list(model, xs_list, labels, bound, n_grid)
    mean, log_sigma = _check_q(torch.tensor(start_mean), torch.tensor(start_log_sigma))
    fig = go.FigureWidget(_base_figure(grid, labels, 0, mean, log_sigma, title))
    preset = widgets.Dropdown(options=[(lab, k) for k, lab in enumerate(labels)], value=0, description="x")
    sliders = [widgets.FloatSlider(value=float(v), min=lo, max=hi, step=0.01, description=name, readout_format=".2f")
               for v, (lo, hi), name in zip([*mean.tolist(), *log_sigma.tolist()],
                                            [MU_RANGE, MU_RANGE, LOG_SIGMA_RANGE, LOG_SIGMA_RANGE],
                                            ["μ₁", "μ₂", "log σ₁", "log σ₂"], strict=True)]
    button = widgets.Button(description=f"{ascent.steps} ascent steps", button_style="warning")
    state = {"busy": False}

    def q_now() -> tuple[Tensor, Tensor]:
        v = torch.tensor([s.value for s in sliders], dtype=torch.float64)
        return v[:2], v[2:]

    readout = fig.layout.annotations[0].to_plotly_json()

    def update(_change: object = None) -> None:
        if state["busy"]:
            return
        k = preset.value
        m, ls = q_now()
        log_px = float(grid.log_evidence[k])
        elbo = float(quadrature_elbo(grid, k, m, ls))
        s = ls.exp().tolist()
        (x1, y1), (x2, y2) = (_ellipse(m.tolist(), s, kk) for kk in (1.0, 2.0))
        # One plotly_update with numpy arrays and the whole annotations list: plotly.py validates a list element
        # by element and a dotted path such as "annotations[0].text" at about 1 ms; arrays and lists are cheap.
        fig.plotly_update(
            restyle_data={"x": [np.asarray(x1), np.asarray(x2), np.array([float(m[0])])],
                          "y": [np.asarray(y1), np.asarray(y2), np.array([float(m[1])])]}, trace_indexes=[1, 2, 3],
            relayout_data={"annotations": [dict(readout, text=_readout(log_px, elbo, log_px - elbo))]})

    def change_preset(_change: object = None) -> None:
        fig.data[0].z = grid.log_posterior()[preset.value].exp().float().numpy()
        fig.layout.title.text = f"{title}<br><sup>{labels[preset.value]}</sup>"
        update()

    def run(_button: object = None) -> None:
        m, ls = q_now()
        result = ascend_elbo(grid, preset.value, m, ls, ascent)
        state["busy"] = True
        for s, v in zip(sliders, [*result.mean.tolist(), *result.log_sigma.tolist()], strict=True):
            s.value = min(max(v, s.min), s.max)
        state["busy"] = False
        update()

    for s in sliders:
        s.observe(update, names="value")
    preset.observe(change_preset, names="value")
    button.on_click(run)
    box = widgets.VBox([widgets.HBox([preset, button]), widgets.HBox(sliders[:2]), widgets.HBox(sliders[2:]), fig])
    box.sliders, box.preset, box.button, box.figure, box.grid = sliders, preset, button, fig, grid
    box.update, box.run = update, run
    return box
