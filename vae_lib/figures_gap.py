"""Figure builders of chapter 3 ("The KL gap"). Each returns a plotly ``Figure`` and never shows it.

* :func:`gap_vs_kl_figure` — log p_θ(x) − L(q) against KL(q || p_θ(z|x)) for many q: the diagonal;
* :func:`kl_directions_figure` — the posterior with the reverse-KL and forward-KL Gaussian fits, a slider over x₁
  (precomputed slider steps: works on the static page without a kernel);
* :func:`iwae_curve_figure` — the importance-weighted bound L_K against K with error bars;
* :func:`gap_histogram_figure` — histograms of per-example gaps with their means.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots
from torch import Tensor

from .figures import DIGIT_SYMBOLS, OKABE_ITO, _np
from .gap import KLDirectionFit
from .toy import LatentGrid

__all__ = ["gap_histogram_figure", "gap_vs_kl_figure", "iwae_curve_figure", "kl_directions_figure"]

REVERSE_COLOUR, FORWARD_COLOUR = OKABE_ITO[5], OKABE_ITO[4]  # vermillion, blue


def gap_vs_kl_figure(kl: Tensor, gap: Tensor, labels: Sequence[str], *, title: str) -> go.Figure:
    """Scatter of gap = log p_θ(x) − L(q) (B, K) against KL(q || p_θ(z|x)) (B, K), one colour per x, with y = x."""
    kl_np, gap_np = _np(kl), _np(gap)
    fig = go.Figure()
    lo, hi = float(min(kl_np.min(), gap_np.min())), float(max(kl_np.max(), gap_np.max()))
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", line=dict(color="#999999", dash="dash"),
                             name="gap = KL", hoverinfo="skip"))
    for b, label in enumerate(labels):
        fig.add_trace(go.Scatter(
            x=kl_np[b], y=gap_np[b], mode="markers", name=label,
            marker=dict(color=OKABE_ITO[[0, 1, 2, 6, 4, 5][b % 6]], symbol=DIGIT_SYMBOLS[b % 10], size=8,
                        line=dict(width=0.5, color="white")),
            hovertemplate="KL = %{x:.5f}<br>gap = %{y:.5f}<extra>" + label + "</extra>"))
    fig.update_xaxes(type="log", title_text="KL(q ‖ p(z|x))  [nats], by quadrature of the posterior")
    fig.update_yaxes(type="log", title_text="log p(x) − ELBO(q)  [nats]")
    fig.update_layout(title=title, height=480, legend=dict(title="observation x"))
    return fig


def _ellipse(mean: Tensor, log_var: Tensor, radius: float, n: int = 60) -> tuple[list[float], list[float]]:
    t = np.linspace(0.0, 2 * math.pi, n)
    std = np.exp(0.5 * _np(log_var).astype(np.float64))
    m = _np(mean).astype(np.float64)
    return list(np.round(m[0] + radius * std[0] * np.cos(t), 4)), list(np.round(m[1] + radius * std[1] * np.sin(t), 4))


def _normal_pdf(axis: np.ndarray, mean: float, log_var: float) -> list[float]:
    var = math.exp(log_var)
    return list(np.round(np.exp(-0.5 * (axis - mean) ** 2 / var) / math.sqrt(2 * math.pi * var), 5))


def kl_directions_figure(grid: LatentGrid, fits: Sequence[KLDirectionFit], *, window: tuple[float, float, float, float],
                         stride: int = 2, active: int = 0, title: str) -> go.Figure:
    """The posterior p_θ(z|x) (heatmap, left) with the reverse-KL fit and the forward-KL fit (1σ and 2σ ellipses),
    and the z₁-marginals of all three (right); a slider steps through the fits (one per x) with precomputed
    plotly "update" steps, so it works without a kernel.

    ``window`` = (z₁ low, z₁ high, z₂ low, z₂ high) crops the grid, and ``stride`` thins the heatmap, for page weight.
    """
    if not fits:
        raise ValueError("fits must hold at least one KLDirectionFit")
    n = grid.shape[0]
    axis = _np(grid.axes[0]).astype(np.float64)
    step = axis[1] - axis[0]
    cols = np.where((axis >= window[0]) & (axis <= window[1]))[0][::stride]
    rows = np.where((axis >= window[2]) & (axis <= window[3]))[0][::stride]
    line = np.where((axis >= window[0]) & (axis <= window[1]))[0]  # the 1-D curves keep the full resolution

    def traces(fit: KLDirectionFit) -> list[go.BaseTraceType]:
        dens = np.exp(_np(fit.log_posterior).astype(np.float64)).reshape(n, n)  # [row z₂, column z₁]
        marginal = dens.sum(0) * step  # p(z₁|x) on the axis
        out: list[go.BaseTraceType] = [go.Heatmap(
            x=np.round(axis[cols], 4), y=np.round(axis[rows], 4), z=np.round(dens[np.ix_(rows, cols)], 4),
            colorscale="Greys", showscale=False, name="p(z|x)",
            hovertemplate="z₁=%{x:.2f}, z₂=%{y:.2f}<br>p(z|x)=%{z:.3f}<extra></extra>")]
        for name, colour, m, v in (("reverse KL(q‖p): q = argmax ELBO", REVERSE_COLOUR, fit.reverse_mean,
                                    fit.reverse_log_var),
                                   ("forward KL(p‖q): moment matching", FORWARD_COLOUR, fit.forward_mean,
                                    fit.forward_log_var)):
            for radius, dash in ((1.0, "solid"), (2.0, "dot")):
                ex, ey = _ellipse(m, v, radius)
                out.append(go.Scatter(x=ex, y=ey, mode="lines", line=dict(color=colour, width=3, dash=dash),
                                      name=name if radius == 1.0 else f"{radius:.0f}σ", legendgroup=name,
                                      showlegend=radius == 1.0, hoverinfo="skip", xaxis="x", yaxis="y"))
        out.append(go.Scatter(x=np.round(axis[line], 4), y=np.round(marginal[line], 5), mode="lines",
                              line=dict(color="black", width=3), name="posterior marginal p(z₁|x)",
                              xaxis="x2", yaxis="y2"))
        for colour, m, v, dash in ((REVERSE_COLOUR, fit.reverse_mean, fit.reverse_log_var, "solid"),
                                   (FORWARD_COLOUR, fit.forward_mean, fit.forward_log_var, "dash")):
            out.append(go.Scatter(x=np.round(axis[line], 4), y=_normal_pdf(axis[line], float(m[0]), float(v[0])),
                                  mode="lines", line=dict(color=colour, width=3, dash=dash), showlegend=False,
                                  hoverinfo="skip", xaxis="x2", yaxis="y2"))
        return out

    def label(fit: KLDirectionFit) -> str:
        return (f"x = ({float(fit.x[0]):.2f}, {float(fit.x[1]):.2f}):  KL(q_rev ‖ p) = {fit.reverse_kl:.3f},  "
                f"KL(p ‖ q_fwd) = {fit.forward_kl:.3f} nats")

    fig = make_subplots(rows=1, cols=2, column_widths=[0.55, 0.45], horizontal_spacing=0.1,
                        subplot_titles=("posterior p(z|x) and the two Gaussian fits", "marginal over z₁"))
    for k, tr in enumerate(traces(fits[active])):
        fig.add_trace(tr, row=1, col=1 if k < 5 else 2)
    ymax = max(float(np.exp(_np(f.log_posterior).astype(np.float64)).reshape(n, n).sum(0).max() * step) for f in fits)
    ymax = max(ymax, max(1 / math.sqrt(2 * math.pi * math.exp(float(f.reverse_log_var[0]))) for f in fits))
    fig.update_xaxes(title_text="z₁", range=[window[0], window[1]], row=1, col=1)
    fig.update_yaxes(title_text="z₂", range=[window[2], window[3]], scaleanchor="x", row=1, col=1)
    fig.update_xaxes(title_text="z₁", range=[window[0], window[1]], row=1, col=2)
    fig.update_yaxes(title_text="density", range=[0, 1.05 * ymax], row=1, col=2)
    fig.add_annotation(text=label(fits[active]), xref="paper", yref="paper", x=0.5, y=-0.2, showarrow=False,
                       font=dict(size=13))
    # one "update" per slider step: new x, y (and z for the heatmap) for every trace, and the new label.
    # (Plain plotly, no frames: works on the static page, and nothing auto-plays on load.)
    steps = []
    for f in fits:
        data = [tr.to_plotly_json() for tr in traces(f)]
        as_list = lambda v: None if v is None else np.asarray(v).tolist()  # noqa: E731 (plain JSON in the args)
        update = {key: [as_list(d.get(key)) for d in data] for key in ("x", "y", "z")}
        steps.append(dict(method="update", label=f"{float(f.x[0]):g}",
                          args=[update, {"annotations[2].text": label(f)}, list(range(len(data)))]))
    # the plot area stays 310 px high; below it, from the top: axis titles, the readout, the slider and its tick
    # labels (down to about 130 px), then the legend (170 px)
    fig.update_layout(title=title, height=620, margin=dict(t=80, b=230),
                      legend=dict(orientation="h", y=-0.55, x=0.0),
                      sliders=[dict(active=active, steps=steps, x=0.0, len=1.0, y=-0.1, yanchor="top",
                                    currentvalue=dict(prefix="x₁ = ", font=dict(size=13)), pad=dict(t=30))])
    return fig


def iwae_curve_figure(sample_sizes: Sequence[int], curves: Mapping[str, tuple[Tensor, Tensor]], log_px: float, *,
                      y_range: tuple[float, float] | None = None, title: str) -> go.Figure:
    """L_K − log p_θ(x) (mean ± 2 standard errors over repetitions) against K for each proposal q."""
    fig = go.Figure()
    for k, (name, (means, se)) in enumerate(curves.items()):
        colour = [REVERSE_COLOUR, FORWARD_COLOUR, OKABE_ITO[2], OKABE_ITO[0]][k % 4]
        fig.add_trace(go.Scatter(
            x=list(sample_sizes), y=_np(means) - log_px, mode="lines+markers", name=name,
            error_y=dict(type="data", array=2 * _np(se), visible=True, thickness=1.5),
            line=dict(color=colour, width=3), marker=dict(symbol=DIGIT_SYMBOLS[k], size=9),
            hovertemplate="K = %{x}<br>L_K − log p(x) = %{y:.4f}<extra></extra>"))
    fig.add_hline(y=0.0, line=dict(color="black", dash="dash"), annotation_text="log p(x) (exact)",
                  annotation_position="top left")
    fig.update_xaxes(type="log", title_text="number of importance samples K")
    fig.update_yaxes(title_text="L_K − log p(x)  [nats]", range=list(y_range) if y_range else None)
    fig.update_layout(title=title, height=450, legend=dict(orientation="h", y=-0.25))
    return fig


def gap_histogram_figure(values: Mapping[str, Tensor], *, title: str, x_title: str = "gap  [nats]",
                         nbins: int = 40) -> go.Figure:
    """Overlaid histograms of per-example values (one entry per series), each with its mean as a dashed line."""
    fig = go.Figure()
    arrays = [_np(torch.as_tensor(v)) for v in values.values()]
    lo, hi = min(float(a.min()) for a in arrays), max(float(a.max()) for a in arrays)
    bins = dict(start=lo, end=hi, size=(hi - lo) / nbins if hi > lo else 1.0)  # shared bins: comparable bar heights
    for k, (name, a) in enumerate(zip(values, arrays, strict=True)):
        colour = [OKABE_ITO[4], OKABE_ITO[5], OKABE_ITO[2], OKABE_ITO[0]][k % 4]
        fig.add_trace(go.Histogram(x=a, xbins=bins, name=f"{name} (mean {a.mean():.2f})", opacity=0.6,
                                   marker=dict(color=colour)))
        fig.add_vline(x=float(a.mean()), line=dict(color=colour, dash="dash", width=2))
    fig.update_layout(barmode="overlay", title=title, height=420, legend=dict(orientation="h", y=-0.25))
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text="number of test images")
    return fig
