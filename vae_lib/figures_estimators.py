"""Figures of chapter 4 ("The gradient tricks"). Each builder returns a plotly Figure (or a widget), never shows it.

* :func:`estimator_explorer_figure` — the *static* estimator explorer: histograms of both estimators of
  ∂/∂μ E[f(u)] for K = 1, 10, 100 side by side; buttons pick f, a slider picks σ. Plain plotly controls
  (method ``"update"``), so it works on the static page with no kernel and no custom script.
* :func:`live_estimator_explorer` — the same with a running kernel, for any μ, σ and K.
* :func:`gradient_histogram_figure` — histograms of a few sets of gradient estimates against the exact value.
* :func:`training_curves_figure` — training loss per epoch of several runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots
from torch import Tensor

from ._checks import check_count
from .estimators import TEST_FUNCTIONS, EstimatorComparison, exact_gradient, reparameterized_gradient
from .estimators import score_function_gradient as _score_function_gradient
from .figures import OKABE_ITO

__all__ = ["estimator_explorer_figure", "gradient_histogram_figure", "live_estimator_explorer",
           "training_curves_figure"]

SCORE_COLOUR = OKABE_ITO[0]  # orange
REPARAM_COLOUR = OKABE_ITO[4]  # blue
EXACT_COLOUR = OKABE_ITO[7]  # black


def _sig(values: np.ndarray, digits: int = 4) -> list[float]:
    """Round to a few significant digits (the page embeds these numbers as text)."""
    return [float(f"{v:.{digits}g}") for v in np.asarray(values, dtype=np.float64)]


def _histograms(a: Tensor, b: Tensor, bins: int) -> tuple[list[float], list[float], list[float], float]:
    """Common bins over the central 99 % of both sets; densities of a and b; the bin width."""
    both = torch.cat([a, b]).double()
    lo, hi = (float(torch.quantile(both, q)) for q in (0.005, 0.995))
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    width = edges[1] - edges[0]
    dens = [np.histogram(t.double().numpy(), bins=edges)[0] / (len(t) * width) for t in (a, b)]
    return _sig(0.5 * (edges[1:] + edges[:-1])), _sig(dens[0]), _sig(dens[1]), float(f"{width:.4g}")


def _ratio_text(k: int, ratio: float) -> str:
    return f"K = {k}: Var(REINFORCE) / Var(reparam.) = {ratio:.2g}"


def _setting_update(cmp: EstimatorComparison, name: str, sigma: float, bins: int) -> tuple[dict, dict]:
    """The data and layout changes that show setting (f, σ) in all K panels."""
    xs, ys, widths, layout = [], [], [], {}
    exact = cmp.exact[(name, sigma)]
    for i, k in enumerate(cmp.sample_counts):
        score, reparam = cmp.score[(name, sigma, k)], cmp.reparam[(name, sigma, k)]
        x, y_s, y_r, w = _histograms(score, reparam, bins)
        xs += [x, x]
        ys += [y_s, y_r]
        widths += [w, w]
        layout[f"annotations[{i}].text"] = _ratio_text(k, cmp.variance_ratio(name, sigma, k))
        layout[f"shapes[{i}].x0"] = layout[f"shapes[{i}].x1"] = exact
    layout["title.text"] = (f"f(u) = {name}, u ~ N(μ, σ²) with μ = {cmp.mean:g}, σ = {sigma:g}: "
                            f"exact ∂/∂μ E[f(u)] = {exact:.3f}")
    return {"x": xs, "y": ys, "width": widths}, layout


def estimator_explorer_figure(cmp: EstimatorComparison, *, bins: int = 40, start_sigma: float | None = None,
                              height: int = 560) -> go.Figure:
    """The static estimator explorer over a precomputed :class:`vae_lib.estimators.EstimatorComparison`.

    One panel per sample count K: histograms (probability density over the repetitions) of the score-function
    (REINFORCE) and reparameterization estimates of ∂/∂μ E[f(u)], a black line at the exact value, and the
    variance ratio in the panel title. Buttons choose f, a slider chooses σ.
    """
    if not isinstance(cmp, EstimatorComparison):
        raise TypeError(f"cmp must be an EstimatorComparison, got {type(cmp).__name__}")
    bins = check_count("bins", bins, minimum=2)
    sigmas = list(cmp.sigmas)
    s0 = sigmas.index(start_sigma) if start_sigma in sigmas else len(sigmas) // 2
    f0 = cmp.functions[0]
    n_panels = len(cmp.sample_counts)
    fig = make_subplots(rows=1, cols=n_panels, horizontal_spacing=0.06,
                        subplot_titles=[f"K = {k}" for k in cmp.sample_counts])
    data0, layout0 = _setting_update(cmp, f0, sigmas[s0], bins)
    for i in range(n_panels):
        for j, (label, colour) in enumerate((("score function (REINFORCE)", SCORE_COLOUR),
                                             ("reparameterization", REPARAM_COLOUR))):
            fig.add_trace(go.Bar(x=data0["x"][2 * i + j], y=data0["y"][2 * i + j], width=data0["width"][2 * i + j],
                                 name=label, legendgroup=label, showlegend=i == 0, opacity=0.6,
                                 marker=dict(color=colour, line=dict(width=0)),
                                 hovertemplate="estimate ≈ %{x:.3g}<br>density %{y:.3g}<extra>" + label + "</extra>"),
                          row=1, col=i + 1)
        axis = "x" if i == 0 else f"x{i + 1}"
        fig.add_shape(type="line", xref=axis, yref=f"{'y' if i == 0 else f'y{i + 1}'} domain", y0=0, y1=1,
                      x0=cmp.exact[(f0, sigmas[s0])], x1=cmp.exact[(f0, sigmas[s0])],
                      line=dict(color=EXACT_COLOUR, width=2, dash="dash"))
        fig.update_xaxes(title_text="estimate of ∂/∂μ E[f(u)]", row=1, col=i + 1)
    fig.update_yaxes(title_text="density over repetitions", row=1, col=1)
    fig.update_layout(barmode="overlay", bargap=0, height=height, plot_bgcolor="white",
                      margin=dict(t=150, b=110, l=60, r=20),
                      legend=dict(orientation="h", x=0.0, y=1.1, yanchor="bottom"))
    fig.update_xaxes(showline=True, linecolor="#888888", gridcolor="#eeeeee")
    fig.update_yaxes(showline=True, linecolor="#888888", gridcolor="#eeeeee")
    fig.update_layout({k.replace("[", ".").replace("]", ""): v for k, v in layout0.items() if k == "title.text"})
    fig.layout.title.update(font=dict(size=15), y=0.84, yanchor="bottom", x=0.0, xanchor="left", xref="paper")
    for i, k in enumerate(cmp.sample_counts):
        fig.layout.annotations[i].text = _ratio_text(k, cmp.variance_ratio(f0, sigmas[s0], k))
        fig.layout.annotations[i].font = dict(size=12)

    traces = list(range(2 * n_panels))
    sliders, buttons = [], []
    for fi, name in enumerate(cmp.functions):
        steps = []
        for s in sigmas:
            data, layout = _setting_update(cmp, name, s, bins)
            steps.append(dict(method="update", label=f"{s:g}", args=[data, layout, traces]))
        sliders.append(dict(active=s0, steps=steps, visible=fi == 0, x=0.0, len=1.0, y=-0.2, yanchor="top",
                            currentvalue=dict(prefix="σ = ", font=dict(size=13)), pad=dict(t=30)))
        data, layout = _setting_update(cmp, name, sigmas[s0], bins)
        for fj in range(len(cmp.functions)):
            layout[f"sliders[{fj}].visible"] = fj == fi
            layout[f"sliders[{fj}].active"] = s0
        buttons.append(dict(method="update", label=f"f(u) = {name}", args=[data, layout, traces]))
    fig.update_layout(sliders=sliders, updatemenus=[dict(type="buttons", direction="right", buttons=buttons,
                                                         active=0, x=0.0, xanchor="left", y=1.38, yanchor="bottom",
                                                         showactive=True, pad=dict(r=4, t=0))])
    return fig


def gradient_histogram_figure(estimates: Mapping[str, Tensor], exact: float, *, title: str,
                              x_title: str, bins: int = 50) -> go.Figure:
    """Histograms (density over repetitions) of several sets of gradient estimates, with the exact value."""
    fig = go.Figure()
    values = torch.cat([torch.as_tensor(v).double().reshape(-1) for v in estimates.values()])
    lo, hi = (float(torch.quantile(values, q)) for q in (0.005, 0.995))
    lo, hi = min(lo, exact) - 1e-3, max(hi, exact) + 1e-3
    colours = [SCORE_COLOUR, REPARAM_COLOUR, OKABE_ITO[2], OKABE_ITO[5]]
    for k, (name, est) in enumerate(estimates.items()):
        v = torch.as_tensor(est).double().reshape(-1)
        if float(v.max() - v.min()) < 1e-9 * max(1.0, abs(float(v.mean()))):  # zero variance: a single spike
            fig.add_vline(x=float(v.mean()), line=dict(color=colours[k % 4], width=5), opacity=0.7)
            fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", line=dict(color=colours[k % 4], width=5),
                                     name=f"{name} (every repetition identical)"))
            continue
        fig.add_trace(go.Histogram(x=_np32(v), xbins=dict(start=lo, end=hi, size=(hi - lo) / bins),
                                   histnorm="probability density", name=name, opacity=0.6,
                                   marker=dict(color=colours[k % 4])))
    fig.add_vline(x=exact, line=dict(color=EXACT_COLOUR, dash="dash", width=2), annotation_text="exact",
                  annotation_position="top right")
    fig.update_layout(barmode="overlay", title=title, height=420, plot_bgcolor="white",
                      legend=dict(orientation="h", y=-0.25))
    fig.update_xaxes(title_text=x_title, showline=True, linecolor="#888888", gridcolor="#eeeeee")
    fig.update_yaxes(title_text="density over repetitions", showline=True, linecolor="#888888", gridcolor="#eeeeee")
    return fig


def _np32(t: Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def training_curves_figure(losses: Mapping[str, Sequence[float]], *, title: str,
                           y_title: str = "training loss −ELBO per image  [nats]") -> go.Figure:
    """One line per run: the mean training loss after each epoch."""
    fig = go.Figure()
    colours = [REPARAM_COLOUR, SCORE_COLOUR, OKABE_ITO[2], OKABE_ITO[5]]
    symbols = ["circle", "square", "diamond", "x"]
    for k, (name, loss) in enumerate(losses.items()):
        fig.add_trace(go.Scatter(x=list(range(1, len(loss) + 1)), y=list(loss), mode="lines+markers", name=name,
                                 line=dict(color=colours[k % 4], width=2), marker=dict(symbol=symbols[k % 4], size=5)))
    fig.update_xaxes(title_text="epoch", showline=True, linecolor="#888888", gridcolor="#eeeeee")
    fig.update_yaxes(title_text=y_title, showline=True, linecolor="#888888", gridcolor="#eeeeee")
    fig.update_layout(title=title, height=420, plot_bgcolor="white", legend=dict(orientation="h", y=-0.25))
    return fig


def live_estimator_explorer(*, repeats: int = 2000, bins: int = 40, seed: int = 0):
    """The live estimator explorer for a running kernel: f, μ, σ and K chosen with widgets.

    Returns an ``ipywidgets.VBox`` of the controls and a ``FigureWidget`` whose two histograms, exact-value line
    and title (with the variance ratio) are updated in place on every change. ``box.update()`` recomputes.
    """
    import ipywidgets as widgets

    repeats = check_count("repeats", repeats, minimum=2)
    f_menu = widgets.Dropdown(options=list(TEST_FUNCTIONS), value="u²", description="f(u)")
    mu = widgets.FloatSlider(value=0.5, min=-2.0, max=2.0, step=0.1, description="μ", continuous_update=False)
    sigma = widgets.FloatSlider(value=1.0, min=0.1, max=2.0, step=0.05, description="σ", continuous_update=False)
    k_menu = widgets.Dropdown(options=[1, 3, 10, 30, 100], value=10, description="K")
    fig = go.FigureWidget()
    for label, colour in (("score function (REINFORCE)", SCORE_COLOUR), ("reparameterization", REPARAM_COLOUR)):
        fig.add_trace(go.Bar(x=[], y=[], name=label, opacity=0.6, marker=dict(color=colour, line=dict(width=0))))
    fig.add_shape(type="line", xref="x", yref="y domain", x0=0, x1=0, y0=0, y1=1,
                  line=dict(color=EXACT_COLOUR, width=2, dash="dash"))
    fig.update_layout(barmode="overlay", bargap=0, height=450, plot_bgcolor="white",
                      legend=dict(orientation="h", y=-0.25))
    fig.update_xaxes(title_text="estimate of ∂/∂μ E[f(u)]")
    fig.update_yaxes(title_text="density over repetitions")
    exact_line = fig.layout.shapes[0].to_plotly_json()  # only its position changes

    def update(_change: object = None) -> None:
        tf = TEST_FUNCTIONS[f_menu.value]
        m = torch.tensor([mu.value], dtype=torch.float64)
        s = torch.tensor([sigma.value], dtype=torch.float64)
        gen = torch.Generator().manual_seed(seed)
        score = _score_function_gradient(tf.f, m, s, k_menu.value, repeats=repeats, generator=gen)[0][:, 0]
        reparam = reparameterized_gradient(tf.f, m, s, k_menu.value, repeats=repeats, generator=gen)[0][:, 0]
        exact = float(exact_gradient(tf.expectation, m, s)[0][0])
        x, y_s, y_r, w = (np.asarray(v) for v in _histograms(score, reparam, bins))
        ratio = float(score.var() / reparam.var())
        # One plotly_update with numpy arrays and the whole shapes list: plotly.py validates a list element by
        # element and a dotted path such as "shapes[0].x0" at about 1 ms per key; arrays and lists are cheap.
        fig.plotly_update(
            restyle_data={"x": [x, x], "y": [y_s, y_r], "width": [w, w]}, trace_indexes=[0, 1],
            relayout_data={"shapes": [dict(exact_line, x0=exact, x1=exact)],
                           "title.text": f"f(u) = {f_menu.value}, μ = {mu.value:.2f}, σ = {sigma.value:.2f}, "
                                         f"K = {k_menu.value}: exact {exact:.3f}, variance ratio {ratio:.2g}"})

    for w in (f_menu, mu, sigma, k_menu):
        w.observe(update, names="value")
    update()
    box = widgets.VBox([widgets.HBox([f_menu, k_menu]), widgets.HBox([mu, sigma]), fig])
    box.update = update
    box.figure = fig
    return box
