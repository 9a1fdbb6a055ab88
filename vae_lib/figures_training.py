"""Figure builders of the training chapter. Each returns a plotly ``Figure`` and never shows it.

Colours: the Okabe–Ito palette of :mod:`vae_lib.figures` (digits also differ by marker symbol).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from torch import Tensor

from ._checks import (
    as_tensor,
    check_count,
    check_mapping,
    check_real,
    check_sequence,
    check_tensor_mapping,
    check_text,
)
from .figures import OKABE_ITO, _np, histogram_bars
from .train import TrainHistory

__all__ = ["history_figure", "kl_per_dimension_figure", "latent_density_figure", "mixture_figure",
           "score_figure"]

_LINE_COLOURS = [OKABE_ITO[i] for i in (4, 5, 2, 0, 6, 1, 7)]


def history_figure(histories: Mapping[str, TrainHistory], *, title: str) -> go.Figure:
    """Per-epoch curves of several runs: the single-sample ELBO L (left) and the total KL Σ_l KL_l (right)."""
    check_mapping("histories", histories)
    check_text("title", title)
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12,
                        subplot_titles=("ELBO L(θ, φ; x) per training image", "KL(q_φ(z|x) || p(z)) per image"))
    for k, (name, h) in enumerate(histories.items()):
        if not isinstance(h, TrainHistory) or not h.elbo:
            raise ValueError(f"histories[{name!r}] must be a TrainHistory of a VAE run (with recorded terms)")
        colour = _LINE_COLOURS[k % len(_LINE_COLOURS)]
        epochs = list(range(1, len(h.elbo) + 1))
        fig.add_trace(go.Scatter(x=epochs, y=h.elbo, name=name, legendgroup=name, line=dict(color=colour, width=2.5)),
                      row=1, col=1)
        fig.add_trace(go.Scatter(x=epochs, y=[sum(v) for v in h.kl_per_dim], name=name, legendgroup=name,
                                 showlegend=False, line=dict(color=colour, width=2.5)), row=1, col=2)
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="nats", row=1, col=1)
    fig.update_yaxes(title_text="nats", row=1, col=2)
    fig.update_layout(title=title, height=420, legend=dict(orientation="h", y=-0.25))
    return fig


def latent_density_figure(z: Tensor, densities: Mapping[str, Tensor], *, title: str) -> go.Figure:
    """Densities over a 1-D latent z (the priors and the aggregate posterior of the training chapter), one line each."""
    as_tensor("z", z, nonempty=True)
    check_tensor_mapping("densities", densities)
    check_text("title", title)
    zz = _np(z).reshape(-1)
    fig = go.Figure()
    dashes = ("solid", "dash", "dot", "dashdot")
    for k, (name, density) in enumerate(densities.items()):
        d = _np(density).reshape(-1)
        if d.shape != zz.shape:
            raise ValueError(f"densities[{name!r}] must have one value per z ({zz.size}), got shape {d.shape}")
        fig.add_trace(go.Scatter(x=zz, y=d, name=name, mode="lines",
                                 line=dict(color=_LINE_COLOURS[k % len(_LINE_COLOURS)], width=2.5,
                                           dash=dashes[k % len(dashes)])))
    fig.update_xaxes(title_text="z")
    fig.update_yaxes(title_text="density", rangemode="tozero")
    fig.update_layout(title=title, height=380, legend=dict(orientation="h", y=-0.25))
    return fig


def mixture_figure(x_data: Tensor, x_model: Tensor, codes: Tensor, component: Tensor, *, title: str,
                   max_points: int = 1000) -> go.Figure:
    """Seed 000's mixture: data and model samples in x (left); encoded means μ_φ(x) by mixture component (right).

    The scatter shows the first ``max_points`` rows of x_data and of x_model (i.i.d. draws, so a random subset):
    each point is an SVG element, and thousands of them slow down the whole page. The histogram uses every code.
    """
    as_tensor("x_data", x_data, ndim=2, nonempty=True)
    as_tensor("x_model", x_model, ndim=2, nonempty=True)
    as_tensor("codes", codes, nonempty=True)
    as_tensor("component", component, nonempty=True)
    check_text("title", title)
    check_count("max_points", max_points)
    if max_points < 1:
        raise ValueError(f"max_points must be >= 1, got {max_points}")
    fig = make_subplots(rows=1, cols=2, column_widths=[0.58, 0.42], horizontal_spacing=0.1,
                        subplot_titles=("data x ~ p_data and samples x ~ p_θ(x)", "encoded latent μ_φ(x)"))
    xd, xm = _np(x_data)[:max_points], _np(x_model)[:max_points]
    fig.add_trace(go.Scatter(x=xd[:, 0], y=xd[:, 1], mode="markers", name="data",
                             marker=dict(color="#999999", size=4, opacity=0.6)), row=1, col=1)
    fig.add_trace(go.Scatter(x=xm[:, 0], y=xm[:, 1], mode="markers", name="model samples",
                             marker=dict(color=OKABE_ITO[5], size=4, opacity=0.6, symbol="diamond")), row=1, col=1)
    z, comp = _np(codes).reshape(-1), _np(component).reshape(-1)
    edges = np.histogram_bin_edges(z.astype(np.float64), bins=60)  # shared by both components
    for c, (name, colour) in enumerate((("data from the left component", OKABE_ITO[4]),
                                        ("data from the right component", OKABE_ITO[0]))):
        if (comp == c).any():
            fig.add_trace(histogram_bars(z[comp == c], edges, name=name, colour=colour, opacity=0.75), row=1, col=2)
    fig.update_xaxes(title_text="x₁", row=1, col=1)
    fig.update_yaxes(title_text="x₂", scaleanchor="x", row=1, col=1)
    fig.update_xaxes(title_text="z (posterior mean)", row=1, col=2)
    fig.update_yaxes(title_text="count", row=1, col=2)
    fig.update_layout(title=title, height=460, barmode="overlay", legend=dict(orientation="h", y=-0.2))
    return fig


def kl_per_dimension_figure(kl: Mapping[str, Tensor], *, threshold: float, title: str) -> go.Figure:
    """Grouped bars of the mean KL(q_φ(z_l|x) || N(0, 1)) per latent dimension l for several runs."""
    check_tensor_mapping("kl", kl, nonempty=True)
    check_real("threshold", threshold, above=0)
    check_text("title", title)
    fig = go.Figure()
    for k, (name, values) in enumerate(kl.items()):
        v = _np(values).reshape(-1)
        fig.add_trace(go.Bar(x=[f"z{i + 1}" for i in range(len(v))], y=v, name=name,
                             marker=dict(color=_LINE_COLOURS[k % len(_LINE_COLOURS)])))
    fig.add_hline(y=threshold, line=dict(color="black", dash="dash"),
                  annotation_text=f"active if above {threshold:g} nats", annotation_position="top right")
    fig.update_xaxes(title_text="latent dimension l")
    fig.update_yaxes(title_text="mean KL per dimension [nats]")
    fig.update_layout(title=title, height=430, barmode="group", legend=dict(orientation="h", y=-0.2))
    return fig


def score_figure(scores: Mapping[str, Tensor], *, title: str, x_title: str = "ELBO L(θ, φ; x)  [nats]",
                 order: Sequence[str] | None = None) -> go.Figure:
    """Box plots of a per-input score (one box per group of inputs, the first at the top), e.g. the ELBO of odd
    inputs: the box spans the quartiles with a line at the median, the whiskers reach the furthest scores within
    1.5 interquartile ranges of the box (Tukey's), and the scores beyond are drawn one by one. Drawn with bar and
    scatter traces (the book's plotly.js bundle has no box trace type)."""
    check_tensor_mapping("scores", scores, nonempty=True)
    check_text("title", title)
    check_text("x_title", x_title)
    if order is not None:
        check_sequence("order", order)
    names = list(order or scores)
    fig = go.Figure()
    for k, name in enumerate(names):
        v = np.sort(_np(scores[name]).reshape(-1).astype(np.float64))  # (n,)
        q1, median, q3 = np.percentile(v, [25, 50, 75])  # linear interpolation, as plotly's boxes
        inside = v[(v >= q1 - 1.5 * (q3 - q1)) & (v <= q3 + 1.5 * (q3 - q1))]
        outliers = v[(v < inside[0]) | (v > inside[-1])]
        colour, y = _LINE_COLOURS[k % len(_LINE_COLOURS)], len(names) - 1 - k
        fig.add_trace(go.Bar(x=[q3 - q1], base=[q1], y=[y], orientation="h", width=0.5, name=name,
                             marker=dict(color=colour, opacity=0.35, line=dict(color=colour, width=2)),
                             hovertemplate=f"{name}<br>quartiles {q1:.4g} to {q3:.4g}, median {median:.4g}"
                                           "<extra></extra>"))
        fig.add_trace(go.Scatter(x=[inside[0], q1, None, q3, inside[-1], None, median, median],
                                 y=[y, y, None, y, y, None, y - 0.25, y + 0.25], mode="lines", name=name,
                                 line=dict(color=colour, width=2), hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=outliers, y=np.full(len(outliers), float(y)), mode="markers", name=name,
                                 marker=dict(color=colour, size=5), hovertemplate="%{x:.4g}<extra></extra>"))
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(tickvals=list(range(len(names))), ticktext=names[::-1], range=[-0.6, len(names) - 0.4],
                     showgrid=False)
    fig.update_layout(title=title, height=120 + 70 * len(scores), showlegend=False, margin=dict(l=160))
    return fig
