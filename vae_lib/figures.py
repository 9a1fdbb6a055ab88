"""Figure builders shared by the chapters. Each returns a plotly ``Figure`` and never shows it.

Colours follow the Okabe–Ito palette, which readers with the common colour-vision deficiencies can
tell apart; where more than eight classes appear (the ten digits) marker symbols differ too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots
from torch import Tensor

from ._checks import (
    as_tensor,
    check_count,
    check_numbers,
    check_range,
    check_real,
    check_sizes,
    check_tensor_mapping,
    check_text,
)
from .explorer import _bilinear_at

__all__ = [
    "DIGIT_COLOURS",
    "DIGIT_SYMBOLS",
    "OKABE_ITO",
    "estimator_spread_figure",
    "histogram_bars",
    "image_grid_figure",
    "latent_scatter_figure",
    "toy_density_figure",
]

OKABE_ITO = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000"]
DIGIT_COLOURS = OKABE_ITO + ["#999999", "#882255"]
DIGIT_SYMBOLS = ["circle", "square", "diamond", "cross", "x", "triangle-up", "triangle-down", "star", "hexagon",
                 "pentagon"]


def _np(t: Tensor | np.ndarray) -> np.ndarray:
    """As float32 numpy (plotly embeds arrays as binary: float32 halves the page weight of float64)."""
    a = t.detach().cpu().numpy() if isinstance(t, Tensor) else np.asarray(t)
    return a.astype(np.float32) if a.dtype == np.float64 else a


def histogram_bars(values: Tensor | np.ndarray, edges: Sequence[float] | np.ndarray, *, name: str, colour: str,
                   density: bool = False, opacity: float | None = None) -> go.Bar:
    """A histogram of ``values`` over the bins ``edges`` (increasing, len ≥ 2), binned here and drawn as touching
    bars: counts, or with ``density`` count / (n · bin width), n counting every value, also those outside the bins
    (then the bars are a density that integrates to the share of the values inside). The page then carries one
    number per bin, not every value, and the book's plotly.js needs no histogram trace type. Hovering a bar shows its
    bin's range."""
    check_text("name", name)
    check_text("colour", colour)
    v = as_tensor("values", values, nonempty=True).reshape(-1).double().detach().cpu().numpy()  # (n,)
    e = as_tensor("edges", edges, ndim=1).double().detach().cpu().numpy()  # (bins + 1,)
    if len(e) < 2 or not np.all(np.diff(e) > 0):
        raise ValueError(f"edges must be at least two increasing bin edges, got {e.tolist()}")
    counts = np.histogram(v, bins=e)[0].astype(np.float64)  # (bins,)
    width = np.diff(e)
    height = counts / (len(v) * width) if density else counts
    return go.Bar(x=_np(0.5 * (e[1:] + e[:-1])), y=_np(height), width=_np(width), name=name, opacity=opacity,
                  marker=dict(color=colour, line=dict(width=0)), customdata=_np(np.stack([e[:-1], e[1:]], axis=1)),
                  hovertemplate="%{customdata[0]:.4g} to %{customdata[1]:.4g}: %{y:.4g}<extra>%{fullData.name}</extra>")


def estimator_spread_figure(sample_sizes: Sequence[int], estimates: Mapping[str, Tensor], exact: float, *,
                            title: str, y_title: str = "estimate − exact log p(x)  [nats]") -> go.Figure:
    """Median and 10–90 % band of repeated estimates (R, len(sample_sizes)) against the sample size N."""
    check_numbers("sample_sizes", sample_sizes)
    check_tensor_mapping("estimates", estimates, ndim=2)
    check_real("exact", exact)
    check_text("title", title)
    check_text("y_title", y_title)
    fig = go.Figure()
    n = list(sample_sizes)
    for k, (name, est) in enumerate(estimates.items()):
        err = _np(est) - exact  # (R, len(N))
        lo, med, hi = np.percentile(err, [10, 50, 90], axis=0)
        colour = OKABE_ITO[[4, 5, 2, 0][k % 4]]
        fig.add_trace(go.Scatter(x=n + n[::-1], y=list(hi) + list(lo[::-1]), fill="toself", fillcolor=colour,
                                 opacity=0.25, line=dict(width=0), name=f"{name}: 10–90 % of runs", hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=n, y=med, mode="lines+markers", line=dict(color=colour, width=3),
                                 marker=dict(symbol=DIGIT_SYMBOLS[k]), name=f"{name}: median"))
    fig.add_hline(y=0.0, line=dict(color="black", dash="dash"), annotation_text="exact", annotation_position="top left")
    fig.update_xaxes(type="log", title_text="number of samples N")
    fig.update_yaxes(title_text=y_title)
    fig.update_layout(title=title, height=430, legend=dict(orientation="h", y=-0.25))
    return fig


def latent_scatter_figure(codes: Mapping[str, Tensor], labels: Tensor, *, title: str) -> go.Figure:
    """Side-by-side scatter plots of 2-D latent codes coloured (and shaped) by digit label."""
    check_tensor_mapping("codes", codes, ndim=2)
    as_tensor("labels", labels, ndim=1)
    check_text("title", title)
    names = list(codes)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.08)
    lab = _np(labels)
    for col, name in enumerate(names, start=1):
        z = _np(codes[name])
        for digit in range(10):
            sel = lab == digit
            fig.add_trace(go.Scatter(
                x=z[sel, 0], y=z[sel, 1], mode="markers", name=str(digit), legendgroup=str(digit),
                showlegend=col == 1, marker=dict(color=DIGIT_COLOURS[digit], symbol=DIGIT_SYMBOLS[digit], size=6,
                                                 line=dict(width=0.5, color="white"))), row=1, col=col)
        fig.update_xaxes(title_text="z₁", row=1, col=col)
        fig.update_yaxes(title_text="z₂", row=1, col=col)
    fig.update_layout(title=title, height=450, legend=dict(title="digit"))
    return fig


GAP = 255  # the blank pixels between tiles of an image grid (levels 0 … 254 carry the image)


def _level_colours(colorscale: str | list) -> np.ndarray:
    """(GAP + 1, 3) uint8: the colour of each level 0 … 254 on ``colorscale``, and white for ``GAP``."""
    from plotly.colors import get_colorscale, sample_colorscale

    stops = get_colorscale(colorscale) if isinstance(colorscale, str) else colorscale
    rgb = sample_colorscale(stops, list(np.arange(GAP) / (GAP - 1)), colortype="tuple")  # floats in [0, 1]
    table = np.full((GAP + 1, 3), 255, dtype=np.uint8)
    table[:GAP] = np.round(np.asarray(rgb) * 255)
    return table


def _png_image(rgb: np.ndarray) -> go.Image:
    """An (H, W, 3) uint8 picture as a plotly ``Image`` trace whose source is a PNG (plotly's own writer)."""
    import plotly.express as px

    source = px.imshow(rgb, binary_string=True, binary_backend="pypng", binary_compression_level=9).data[0].source
    return go.Image(source=source, hoverinfo="skip")


def image_grid_figure(images: Mapping[str, Tensor], *, shape: tuple[int, int] = (8, 8), per_row: int = 10,
                      value_range: tuple[float, float] = (0.0, 16.0), title: str,
                      colorscale: str | list = "Greys") -> go.Figure:
    """Panels of small images (one panel per entry, each (N, H·W)) tiled with a one-pixel gap.

    The page gets each panel as one PNG picture: pixel values become levels 0 … 254 over ``value_range`` (1/254 of
    the range, far below what a grey level shows), coloured by ``colorscale``, with white gaps; PNG compresses the
    flat backgrounds (chapter 7's face grids: a sixth of the bytes of the raw levels). A colour bar on the first
    panel gives the scale in pixel values.
    """
    check_tensor_mapping("images", images, min_ndim=1)
    check_sizes("shape", shape, 2)
    check_count("per_row", per_row, maximum=10_000)
    check_range("value_range", value_range)
    check_text("title", title)
    names = list(images)
    h, w = shape
    lo, hi = float(value_range[0]), float(value_range[1])
    if not lo < hi:
        raise ValueError(f"value_range must be (low, high) with low < high, got {value_range}")
    fig = make_subplots(rows=len(names), cols=1, subplot_titles=names, vertical_spacing=0.12)
    colours = _level_colours(colorscale)  # (256, 3)
    for row, name in enumerate(names, start=1):
        imgs = _np(images[name]).reshape(-1, h, w)  # (N, H, W)
        levels = np.clip(np.round((imgs - lo) / (hi - lo) * (GAP - 1)), 0, GAP - 1).astype(np.uint8)
        n_rows = int(np.ceil(len(imgs) / per_row))
        canvas = np.full((n_rows * (h + 1) - 1, per_row * (w + 1) - 1), GAP, dtype=np.uint8)
        for k, img in enumerate(levels):
            r, c = divmod(k, per_row)
            canvas[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = img
        fig.add_trace(_png_image(colours[canvas]), row=row, col=1)  # (rows, cols, 3)
        fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, autorange="reversed",
                         scaleanchor=f"x{row if row > 1 else ''}", row=row, col=1)
        fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, row=row, col=1)
    # the colour bar: a heatmap over the first panel's top-left pixel, fully transparent (an Image has no colour bar)
    fig.add_trace(go.Heatmap(z=[[lo]], zmin=lo, zmax=hi, colorscale=colorscale, opacity=0.0, hoverinfo="skip",
                             colorbar=dict(title="pixel value", len=min(1.0, 1.2 / len(names)), y=1.0,
                                           yanchor="top")), row=1, col=1)
    fig.update_layout(title=title, height=170 * len(names) + 80, plot_bgcolor="white")
    return fig


def _contour_label_positions(x1: tuple[float, float], x2: tuple[float, float], values: np.ndarray,
                             levels: Sequence[float], avoid: np.ndarray, *, rays: int = 72,
                             samples: int = 400) -> list[tuple]:
    """Where to write the value of each contour level of ``values`` (n₂, n₁), on an evenly spaced grid over the
    ranges x1 × x2: points (x₁, x₂, level) on the level (values interpolated bilinearly, as the page's explorers do:
    :func:`vae_lib.explorer._bilinear_at`), one on each of its lines, as far as can be from the points ``avoid``
    (n, 2) and from the labels placed before.

    The candidates are where ``rays`` rays from the grid's centre cross each level; a level's k-th crossing along a
    ray stands for one of its lines (the k-th ring around the centre). Per (level, k), greedily, the candidate with
    the largest distance to the nearest point to avoid or label already placed wins.
    plotly can place contour labels itself (``showlabels``), but it measures candidate places in the browser: on
    chapter 1's first figure that took longer than drawing the rest of the figure."""
    v = torch.as_tensor(np.asarray(values, dtype=float))  # (n2, n1)
    avoid = np.asarray(avoid, dtype=float).reshape(-1, 2)  # (n, 2)
    centre = np.array([(x1[0] + x1[1]) / 2, (x2[0] + x2[1]) / 2])
    reach = min(x1[1] - x1[0], x2[1] - x2[0]) / 2
    angles = np.arange(rays) * 2 * np.pi / rays
    units = np.stack([np.cos(angles), np.sin(angles)], -1)  # (R, 2)
    ray = centre + np.linspace(0.0, reach, samples)[None, :, None] * units[:, None, :]  # (R, S, 2)
    on_ray = _bilinear_at(v, x1, x2, torch.as_tensor(ray.reshape(-1, 2))).numpy().reshape(rays, samples)  # (R, S)
    placed: list[np.ndarray] = []
    labels = []
    for level in levels:
        groups: dict[int, list[np.ndarray]] = {}
        for r in range(rays):
            d = on_ray[r] - level  # (S,)
            for k, i in enumerate(np.flatnonzero(np.sign(d[:-1]) * np.sign(d[1:]) < 0)):
                w = d[i] / (d[i] - d[i + 1])  # linear interpolation between the two samples
                groups.setdefault(k, []).append((1 - w) * ray[r, i] + w * ray[r, i + 1])
        for k in sorted(groups):
            cand = np.stack(groups[k])  # (C, 2)
            others = np.concatenate([avoid] + [p[None] for p in placed])  # (n + placed, 2)
            dist = np.sqrt(((cand[:, None, :] - others[None, :, :]) ** 2).sum(-1)).min(1) if len(others) else \
                np.zeros(len(cand))
            best = cand[int(np.argmax(dist))]
            placed.append(best)
            labels.append((float(best[0]), float(best[1]), float(level)))
    return labels


def toy_density_figure(x: Tensor, z: Tensor, grid_x1: Tensor, grid_x2: Tensor, log_px: Tensor, *,
                       title: str) -> go.Figure:
    """Samples x ~ p_θ(x) coloured by their latent z, over contours of the exact log p_θ(x) every 2 nats, labelled
    away from the samples (:func:`_contour_label_positions`)."""
    as_tensor("x", x, ndim=2, nonempty=True)
    as_tensor("z", z, min_ndim=1, nonempty=True)
    as_tensor("grid_x1", grid_x1, ndim=1, nonempty=True)
    as_tensor("grid_x2", grid_x2, ndim=1, nonempty=True)
    as_tensor("log_px", log_px, ndim=2, nonempty=True)
    check_text("title", title)
    if tuple(log_px.shape) != (len(grid_x2), len(grid_x1)):
        raise ValueError(f"log_px must have shape (len(grid_x2), len(grid_x1)) = ({len(grid_x2)}, {len(grid_x1)}), "
                         f"got {tuple(log_px.shape)}")
    ranges = []
    for name, axis in (("grid_x1", grid_x1), ("grid_x2", grid_x2)):
        a = torch.as_tensor(axis, dtype=torch.float64)
        step = torch.diff(a)
        if len(a) < 2 or not (step > 0).all() or not torch.allclose(step, step.mean(), rtol=1e-4, atol=0):
            raise ValueError(f"{name} must be evenly spaced and increasing (a torch.linspace), with at least 2 points")
        ranges.append((float(a[0]), float(a[-1])))
    levels = list(range(-12, 1, 2))
    fig = go.Figure()
    fig.add_trace(go.Contour(x=_np(grid_x1), y=_np(grid_x2), z=_np(log_px), showscale=False,
                             colorscale=[[0, "#BBBBBB"], [1, "#333333"]], line=dict(width=1.2),
                             contours=dict(start=levels[0], end=levels[-1], size=2, coloring="lines"),
                             name="log p(x) contours",
                             hovertemplate="x₁=%{x:.2f}, x₂=%{y:.2f}<br>log p(x)=%{z:.2f}<extra></extra>"))
    labels = _contour_label_positions(ranges[0], ranges[1], _np(log_px), levels, _np(x))
    fig.add_trace(go.Scatter(x=[p[0] for p in labels], y=[p[1] for p in labels], mode="text",
                             text=[f"{p[2]:g}" for p in labels], textfont=dict(size=10, color="#555555"),
                             hoverinfo="skip", showlegend=False, name="contour labels"))
    fig.add_trace(go.Scatter(x=_np(x[:, 0]), y=_np(x[:, 1]), mode="markers", name="x ~ p(x)",
                             marker=dict(color=_np(z[:, 0]), colorscale="Cividis", size=6, showscale=True,
                                         colorbar=dict(title="z"), line=dict(width=0.3, color="white")),
                             hovertemplate="z=%{marker.color:.2f}<extra></extra>"))
    fig.update_xaxes(title_text="x₁", scaleanchor="y", constrain="domain")
    fig.update_yaxes(title_text="x₂")
    fig.update_layout(title=title, height=480, showlegend=False)
    return fig
