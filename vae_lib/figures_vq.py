"""Figure builders of the VQ-VAE chapter. Each returns a plotly ``Figure`` and never shows it.

* :func:`voronoi_figure` — encoder outputs z_e(x) over the codebook's Voronoi cells (one panel per model);
* :func:`code_usage_figure` — how often each code is chosen;
* :func:`bound_figure` — −log p_θ(x|z_q) + (−log p(k)) stacked per prior, with the exact −log p_θ(x).

Colours: the Okabe–Ito palette of :mod:`vae_lib.figures` (digits also differ by marker symbol).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots
from torch import Tensor

from ._checks import (
    as_tensor,
    check_mapping,
    check_range,
    check_real,
    check_tensor_mapping,
    check_text,
)
from .figures import DIGIT_COLOURS, DIGIT_SYMBOLS, OKABE_ITO, _np

__all__ = ["bound_figure", "code_usage_figure", "voronoi_edges", "voronoi_figure"]

CODE_COLOUR = "#000000"
CELL_LINE = "#777777"
_BAR_COLOURS = [OKABE_ITO[i] for i in (4, 5, 2, 0)]


def _square_range(points: list[Tensor], margin: float = 0.1) -> tuple[float, float]:
    """A symmetric window [−r, r] that holds every point, with a relative margin."""
    r = max(float(p.abs().max()) for p in points)
    return -r * (1 + margin), r * (1 + margin)


def _codebook_trace(codebook: Tensor, showlegend: bool = True) -> go.Scatter:
    e = _np(codebook)
    return go.Scatter(x=e[:, 0], y=e[:, 1], mode="markers+text", name="codebook e_j", showlegend=showlegend,
                      legendgroup="codebook", text=[str(j + 1) for j in range(len(e))], textposition="top right",
                      textfont=dict(size=11, color=CODE_COLOUR),
                      marker=dict(symbol="star", size=13, color=OKABE_ITO[3], line=dict(width=1.2, color=CODE_COLOUR)),
                      hovertemplate="code e_%{text} = (%{x:.2f}, %{y:.2f})<extra></extra>")


def _clip(polygon: list[tuple[np.ndarray, int]], normal: np.ndarray, offset: float, tag: int) -> list:
    """A convex polygon, as (vertex, tag of the edge that starts there), cut to the half-plane {z : z·normal ≤ offset}
    (Sutherland–Hodgman); the new edge along the cut gets ``tag``."""
    out = []
    for (p, t), (q, _) in zip(polygon, polygon[1:] + polygon[:1], strict=True):
        sp, sq = p @ normal - offset, q @ normal - offset  # ≤ 0 inside
        if sp <= 0:
            out.append((p, t))
        if (sp <= 0) != (sq <= 0):
            crossing = p + sp / (sp - sq) * (q - p)
            out.append((crossing, tag if sp <= 0 else t))
    return out


def voronoi_edges(codebook: Tensor, lo: float, hi: float) -> tuple[list, list]:
    """The boundaries between the Voronoi cells of a codebook (K, 2) inside the square [lo, hi]², exact: the cell of
    e_k, {z : ‖z − e_k‖ ≤ ‖z − e_j‖ for every j}, is the square cut by the half-planes
    2 z·(e_j − e_k) ≤ ‖e_j‖² − ‖e_k‖² (chapter 6). Each boundary is drawn once, from the cell of the lower index;
    where two codes coincide the higher index has no cell (as :func:`vae_lib.vq.nearest_code` breaks ties).
    Returns the x and y coordinates of the segments, None between them (one line trace)."""
    e = as_tensor("codebook", codebook, ndim=2).detach().double().cpu().numpy()  # (K, 2)
    if e.shape[1] != 2:
        raise ValueError(f"codebook must have shape (K, 2), got {tuple(e.shape)}")
    lo, hi = check_real("lo", lo), check_real("hi", hi)
    if not lo < hi:
        raise ValueError(f"lo must be less than hi, got lo={lo}, hi={hi}")
    xs: list = []
    ys: list = []
    square = [np.array(v, dtype=float) for v in ((lo, lo), (hi, lo), (hi, hi), (lo, hi))]
    for k in range(len(e)):
        cell = [(v, -1) for v in square]  # tag -1: the square's own sides
        for j in range(len(e)):
            normal = e[j] - e[k]
            if j == k or not cell:
                continue
            if not normal.any():  # the same point: the lower index keeps the cell
                cell = cell if k < j else []
                continue
            cell = _clip(cell, 2 * normal, float(e[j] @ e[j] - e[k] @ e[k]), j)
        for (p, t), (q, _) in zip(cell, cell[1:] + cell[:1], strict=True):
            if t > k:  # a boundary with a higher-index cell
                xs += [float(p[0]), float(q[0]), None]
                ys += [float(p[1]), float(q[1]), None]
    return xs, ys


def voronoi_figure(panels: Mapping[str, tuple[Tensor, Tensor]], labels: Tensor, *, title: str,
                   z_range: tuple[float, float] | None = None) -> go.Figure:
    """Each panel: points z_e (N, 2) coloured by digit label (N,), the codebook (K, 2) as stars, and the boundaries
    of its Voronoi cells {z : argmin_j ‖z − e_j‖² = k} (:func:`voronoi_edges`, exact line segments)."""
    check_mapping("panels", panels)
    as_tensor("labels", labels, ndim=1)
    check_text("title", title)
    if z_range is not None:
        check_range("z_range", z_range)
    names = list(panels)
    lab = _np(labels).reshape(-1)
    checked = {}
    for name in names:
        z_e, codebook = (torch.as_tensor(t, dtype=torch.float32).detach() for t in panels[name])  # e.g. a Parameter
        if codebook.dim() != 2 or codebook.shape[1] != 2 or z_e.dim() != 2 or z_e.shape[1] != 2:
            raise ValueError(f"panels[{name!r}] must hold z_e (N, 2) and a codebook (K, 2), "
                             f"got {tuple(z_e.shape)} and {tuple(codebook.shape)}")
        if z_e.shape[0] != lab.shape[0]:
            raise ValueError(f"labels must have one entry per row of z_e, got {lab.shape[0]} and {z_e.shape[0]}")
        checked[name] = (z_e, codebook)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.08)
    for col, name in enumerate(names, start=1):
        z_e, codebook = checked[name]
        lo, hi = z_range or _square_range([z_e, codebook])
        cx, cy = voronoi_edges(codebook, lo, hi)
        fig.add_trace(go.Scatter(x=cx, y=cy, mode="lines", line=dict(color=CELL_LINE, width=1.3), hoverinfo="skip",
                                 name="Voronoi cell boundaries", showlegend=False), row=1, col=col)
        z = _np(z_e)
        for digit in range(10):
            sel = lab == digit
            fig.add_trace(go.Scatter(
                x=z[sel, 0], y=z[sel, 1], mode="markers", name=str(digit), legendgroup=str(digit), showlegend=col == 1,
                marker=dict(color=DIGIT_COLOURS[digit], symbol=DIGIT_SYMBOLS[digit], size=5, opacity=0.75,
                            line=dict(width=0.4, color="white")),
                hovertemplate=f"digit {digit}<br>z_e = (%{{x:.2f}}, %{{y:.2f}})<extra></extra>"), row=1, col=col)
        fig.add_trace(_codebook_trace(codebook, showlegend=col == 1), row=1, col=col)
        fig.update_xaxes(title_text="z_e,1 (and e_j,1)", range=[lo, hi], constrain="domain", row=1, col=col)
        fig.update_yaxes(title_text="z_e,2 (and e_j,2)", range=[lo, hi], scaleanchor=f"x{col if col > 1 else ''}",
                         constrain="domain", row=1, col=col)
    fig.update_layout(title=title, height=520, legend=dict(title="test digit"), plot_bgcolor="white")
    return fig


def code_usage_figure(frequencies: Mapping[str, Tensor], *, title: str) -> go.Figure:
    """Grouped bars of the fraction of inputs assigned to each code j (one group of bars per entry, each (K,))."""
    check_tensor_mapping("frequencies", frequencies, nonempty=True)
    check_text("title", title)
    fig = go.Figure()
    for i, (name, f) in enumerate(frequencies.items()):
        v = _np(f).reshape(-1)
        fig.add_trace(go.Bar(x=[str(j + 1) for j in range(len(v))], y=v, name=name,
                             marker=dict(color=_BAR_COLOURS[i % len(_BAR_COLOURS)])))
    fig.update_xaxes(title_text="code j", type="category")
    fig.update_yaxes(title_text="fraction of images with k(x) = j")
    fig.update_layout(title=title, height=380, barmode="group", legend=dict(orientation="h", y=-0.25))
    return fig


def bound_figure(reconstruction_nll: float, prior_nll: Mapping[str, float], exact_nll: Mapping[str, float], *,
                 title: str) -> go.Figure:
    """Per prior p(k): the bound −L = −log p_θ(x|z_q) + (−log p(k(x))) as stacked bars, and the exact −log p_θ(x)
    as a marker (all means over the test set, nats per image)."""
    check_real("reconstruction_nll", reconstruction_nll)
    for k, v in check_mapping("prior_nll", prior_nll).items():
        check_real(f"prior_nll[{k!r}]", v)
    for k, v in check_mapping("exact_nll", exact_nll).items():
        check_real(f"exact_nll[{k!r}]", v)
    check_text("title", title)
    names = list(prior_nll)
    if set(exact_nll) != set(names):
        raise ValueError(f"exact_nll must have the same priors as prior_nll, got {sorted(exact_nll)} and {names}")
    fig = go.Figure()
    fig.add_trace(go.Bar(x=names, y=[reconstruction_nll] * len(names), name="−log p_θ(x | z_q(x))",
                         marker=dict(color=OKABE_ITO[4])))
    fig.add_trace(go.Bar(x=names, y=[prior_nll[n] for n in names], name="−log p(k(x)): the KL term",
                         marker=dict(color=OKABE_ITO[0])))
    fig.add_trace(go.Scatter(x=names, y=[exact_nll[n] for n in names], mode="markers", name="exact −log p_θ(x)",
                             marker=dict(symbol="line-ew", size=40, line=dict(width=4, color=OKABE_ITO[5]))))
    top = max(reconstruction_nll + max(prior_nll.values()), max(exact_nll.values()))
    fig.update_yaxes(title_text="nats per test image", range=[0.8 * reconstruction_nll, 1.02 * top])
    fig.update_xaxes(title_text="prior p(k) over the code tuples")
    fig.update_layout(title=title, height=420, barmode="stack", legend=dict(orientation="h", y=-0.25))
    return fig
