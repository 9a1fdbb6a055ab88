"""Figure builders of chapter 7 (faces whose factors we know). Each returns a plotly ``Figure`` and never shows it.

Colours: the Okabe–Ito palette of :mod:`vae_lib.figures` for lines (with different dash patterns too); tables are
heatmaps with a diverging blue–orange scale for signed numbers and a sequential one for non-negative ones, both
readable with the common colour-vision deficiencies, and every cell prints its value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from torch import Tensor

from ._checks import (
    check_bool,
    check_count,
    check_numbers,
    check_range,
    check_real,
    check_sequence,
    check_tensor_mapping,
    check_text,
)
from .faces import FACE_LEVELS, FACE_SIZE
from .figures import OKABE_ITO, _np, image_grid_figure

__all__ = ["face_grid_figure", "factor_readout_figure", "rotation_cost_figure", "table_heatmaps_figure"]

_LINE_COLOURS = [OKABE_ITO[i] for i in (4, 5, 2, 0, 6, 1, 7)]
_DASHES = ("solid", "dash", "dot", "dashdot", "longdash")
# blue (negative) – white – orange (positive): the Okabe–Ito blue and orange, distinguishable in every common CVD
_DIVERGING = [[0.0, "#0072B2"], [0.5, "#FFFFFF"], [1.0, "#E69F00"]]
_SEQUENTIAL = [[0.0, "#FFFFFF"], [1.0, "#0072B2"]]
_GRAY = [[0.0, "#000000"], [1.0, "#FFFFFF"]]  # pixel level 0 black, 15 white


def face_grid_figure(panels: Mapping[str, Tensor], *, title: str, per_row: int = 7,
                     value_range: tuple[float, float] = (0.0, FACE_LEVELS - 1)) -> go.Figure:
    """Panels of 32×32 faces (one panel per entry, each (N, 1024) or (N, 1, 32, 32)), in pixel levels 0 … 15, drawn
    as stored: 0 black (the background), 15 white (the head), as the latent explorers' ``gray`` colormap."""
    check_tensor_mapping("panels", panels, min_ndim=1, nonempty=True)
    check_text("title", title)
    check_count("per_row", per_row, maximum=10_000)
    check_range("value_range", value_range)
    flat = {name: _np(images).reshape(-1, FACE_SIZE * FACE_SIZE) for name, images in panels.items()}
    fig = image_grid_figure(flat, shape=(FACE_SIZE, FACE_SIZE), per_row=per_row, value_range=value_range,
                            title=title, colorscale=_GRAY)
    fig.update_layout(height=150 * len(flat) + 90)
    return fig


def table_heatmaps_figure(tables: Mapping[str, Tensor], *, row_labels: Sequence[str], column_labels: Sequence[str],
                          title: str, signed: bool = True, colorbar_title: str = "", decimals: int = 2,
                          zmax: float | None = None) -> go.Figure:
    """Tables (rows × columns) side by side as heatmaps that print their values (e.g. ρ(z_j, v_k) for two models).

    ``signed`` uses the diverging scale centred on 0 over [−zmax, zmax], else the sequential one over [0, zmax];
    ``zmax`` defaults to the largest |value|.
    """
    check_tensor_mapping("tables", tables, ndim=2)
    check_sequence("row_labels", row_labels)
    check_sequence("column_labels", column_labels)
    check_text("title", title)
    check_bool("signed", signed)
    check_text("colorbar_title", colorbar_title)
    check_count("decimals", decimals, minimum=0, maximum=12)
    if zmax is not None:
        check_real("zmax", zmax, above=0)
    names = list(tables)
    arrays = [_np(tables[n]).astype(float) for n in names]
    for name, a in zip(names, arrays, strict=True):
        if a.shape != (len(row_labels), len(column_labels)):
            raise ValueError(f"tables[{name!r}] must have shape ({len(row_labels)}, {len(column_labels)}) "
                             f"(row_labels × column_labels), got {a.shape}")
    top = zmax if zmax is not None else max(float(np.abs(a).max()) for a in arrays) or 1.0
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.08)
    for col, a in enumerate(arrays, start=1):
        text = [[f"{v:.{decimals}f}" for v in row] for row in a]
        fig.add_trace(go.Heatmap(z=a, x=list(column_labels), y=list(row_labels), text=text, texttemplate="%{text}",
                                 colorscale=_DIVERGING if signed else _SEQUENTIAL, zmin=-top if signed else 0.0,
                                 zmax=top, showscale=col == len(names), colorbar=dict(title=colorbar_title),
                                 hovertemplate="%{y}, %{x}: %{text}<extra></extra>"),
                      row=1, col=col)
        fig.update_yaxes(autorange="reversed", row=1, col=col)
        fig.update_xaxes(title_text="true factor", row=1, col=col)
    fig.update_yaxes(title_text="latent dimension", row=1, col=1)
    fig.update_layout(title=title, height=120 + 38 * len(row_labels), plot_bgcolor="white")
    return fig


def _line_figure(x: list[float], curves: Mapping[str, Tensor], argument: str, per: str) -> go.Figure:
    """One line with markers per entry over x, in the chapter's colour-blind-safe colours and dashes; each entry must
    have one value per x (``argument`` and ``per`` name them in the error)."""
    fig = go.Figure()
    for k, (name, values) in enumerate(curves.items()):
        y = _np(values).reshape(-1)
        if y.shape != (len(x),):
            raise ValueError(f"{argument}[{name!r}] must have one value per {per} ({len(x)}), got shape {y.shape}")
        fig.add_trace(go.Scatter(x=x, y=y, name=name, mode="lines+markers",
                                 line=dict(color=_LINE_COLOURS[k % len(_LINE_COLOURS)], width=2.5,
                                           dash=_DASHES[k % len(_DASHES)])))
    return fig


def rotation_cost_figure(angles_deg: Sequence[float], curves: Mapping[str, Tensor], *, title: str,
                         y_title: str = "nats per image") -> go.Figure:
    """Curves over the rotation angle θ in degrees, one per entry (costs or ELBO changes, nats per image)."""
    check_numbers("angles_deg", angles_deg)
    check_tensor_mapping("curves", curves, nonempty=True)
    check_text("title", title)
    check_text("y_title", y_title)
    x = [float(a) for a in angles_deg]
    fig = _line_figure(x, curves, "curves", "angle")
    fig.add_hline(y=0.0, line=dict(color="#999999", width=1))
    fig.update_xaxes(title_text="rotation angle θ  [degrees]", tickvals=x)
    fig.update_yaxes(title_text=y_title)
    fig.update_layout(title=title, height=420, legend=dict(orientation="h", y=-0.25), plot_bgcolor="white")
    return fig


def factor_readout_figure(shifts: Sequence[float], readouts: Mapping[str, Tensor], *, title: str,
                          x_title: str, y_title: str = "factor read back from the image") -> go.Figure:
    """Lines of a quantity read back from edited images against the edit's size, one per entry (e.g. per factor,
    each on a common scale)."""
    check_numbers("shifts", shifts)
    check_tensor_mapping("readouts", readouts, nonempty=True)
    check_text("title", title)
    check_text("x_title", x_title)
    check_text("y_title", y_title)
    x = [float(s) for s in shifts]
    fig = _line_figure(x, readouts, "readouts", "shift")
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title)
    fig.update_layout(title=title, height=400, legend=dict(orientation="h", y=-0.25), plot_bgcolor="white")
    return fig
