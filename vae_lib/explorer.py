"""The latent explorer: a phase diagram of the decoder over (z₁, z₂) with a movable z.

Every chapter reuses it. Following seed 001's "interpretation by phase diagrams", the left panel
decodes a regular grid of latent points z = (z₁, z₂) and tiles the decoded outputs E[x|z] into one
image; a marker shows the current z, and the right panel shows the decoded output at that z.

* :func:`phase_diagram_figure` — the *static* explorer, a plotly ``Figure`` that works in the built
  HTML page with no kernel: the decoded outputs on a fine lookup grid are embedded (as bytes) in the
  figure, and a small script (``latent_explorer.js``, attached by :func:`vae_lib.display.setup_notebook`)
  redraws the right panel when the reader moves a slider or clicks the phase diagram.
* :func:`live_explorer` — the *live* explorer for a running kernel: a ``FigureWidget`` whose decoded
  panel and marker are updated in place by two sliders; the decoder runs on every move.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots
from torch import Tensor

from ._checks import check_count

__all__ = ["LatentGridImages", "decode_grid", "live_explorer", "mosaic", "phase_diagram_figure"]

Decoder = Callable[[Tensor], Tensor]
LABEL_FORMAT = "decoded output at z = ({z1}, {z2})"


@dataclass(frozen=True)
class LatentGridImages:
    """Decoded outputs on a regular latent grid: images[j, i] = E[x | z = (z1[i], z2[j])]."""

    z1: Tensor  # (n1,)
    z2: Tensor  # (n2,)
    images: Tensor  # (n2, n1, H, W)


def _check_decoder(decode: Decoder, image_shape: tuple[int, int]) -> tuple[int, int]:
    if not callable(decode):
        raise TypeError(f"decode must be callable (z of shape (N, 2) -> outputs (N, H*W)), got {type(decode).__name__}")
    if len(image_shape) != 2 or any(int(s) < 1 for s in image_shape):
        raise ValueError(f"image_shape must be (height, width) with positive sizes, got {image_shape}")
    return int(image_shape[0]), int(image_shape[1])


def _check_range(z_range: tuple[float, float]) -> tuple[float, float]:
    if len(z_range) != 2 or not z_range[0] < z_range[1]:
        raise ValueError(f"z_range must be (low, high) with low < high, got {z_range}")
    return float(z_range[0]), float(z_range[1])


def decode_grid(decode: Decoder, image_shape: tuple[int, int], z_range: tuple[float, float] = (-3.0, 3.0),
                n: int = 15) -> LatentGridImages:
    """Decode the n × n grid over z_range² in one batch; ``decode`` maps z (N, 2) to outputs (N, H·W)."""
    h, w = _check_decoder(decode, image_shape)
    lo, hi = _check_range(z_range)
    n = check_count("n", n, minimum=2)
    axis = torch.linspace(lo, hi, n)
    z2, z1 = torch.meshgrid(axis, axis, indexing="ij")
    z = torch.stack([z1.reshape(-1), z2.reshape(-1)], -1)  # (n·n, 2), z1 varies fastest
    with torch.no_grad():
        out = decode(z)
    if out.shape != (n * n, h * w):
        raise ValueError(f"decode must return shape (N, {h * w}) for image_shape {image_shape}, got {tuple(out.shape)}")
    return LatentGridImages(axis, axis, out.reshape(n, n, h, w).float())


def mosaic(grid: LatentGridImages, gap: int = 1) -> Tensor:
    """Tile the decoded images into one array whose row 0 is the *bottom* (lowest z₂), with each image's own
    top row uppermost, as a heatmap with y pointing up displays it. ``gap`` rows/columns of NaN (drawn blank)
    separate neighbouring tiles, so that adjacent digits do not merge; shape (n2·(H+gap) − gap, n1·(W+gap) − gap).
    """
    n2, n1, h, w = grid.images.shape
    if gap < 0:
        raise ValueError(f"gap must be >= 0, got {gap}")
    flipped = grid.images.flip(-2)  # (n2, n1, H, W): image row 0 now at the bottom of its tile
    padded = torch.full((n2, n1, h + gap, w + gap), float("nan"), dtype=flipped.dtype)
    padded[:, :, :h, :w] = flipped  # gap after each tile (above it and to its right)
    tiled = padded.permute(0, 2, 1, 3).reshape(n2 * (h + gap), n1 * (w + gap))
    return tiled[: n2 * (h + gap) - gap, : n1 * (w + gap) - gap]


def _base_figure(grid: LatentGridImages, current: Tensor, value_range: tuple[float, float], title: str,
                 marker_radius: float) -> go.Figure:
    n2, n1, h, w = grid.images.shape
    step = float(grid.z1[1] - grid.z1[0])
    fig = make_subplots(rows=1, cols=2, column_widths=[0.62, 0.38], horizontal_spacing=0.1,
                        subplot_titles=("phase diagram: E[x | z] over (z₁, z₂)",
                                        LABEL_FORMAT.format(z1="0.00", z2="0.00")))
    fig.add_trace(go.Heatmap(
        # one pixel gap per tile: pixel pitch step/(W+1); tile i's centre column sits at z1[i]
        z=mosaic(grid, gap=1).numpy(), x0=float(grid.z1[0]) - (w - 1) / 2 * step / (w + 1), dx=step / (w + 1),
        y0=float(grid.z2[0]) - (h - 1) / 2 * step / (h + 1), dy=step / (h + 1),
        colorscale="Greys", zmin=value_range[0], zmax=value_range[1], showscale=False,
        hovertemplate="z₁ ≈ %{x:.2f}<br>z₂ ≈ %{y:.2f}<extra>click to move z here</extra>"), row=1, col=1)
    fig.add_trace(go.Heatmap(
        z=current.numpy(), colorscale="Greys", zmin=value_range[0], zmax=value_range[1],
        colorbar=dict(title="E[x|z]", len=0.8), hovertemplate="row %{y}, col %{x}: %{z:.1f}<extra></extra>"),
        row=1, col=2)
    fig.update_xaxes(title_text="z₁", row=1, col=1)
    fig.update_yaxes(title_text="z₂", scaleanchor="x", row=1, col=1)
    fig.update_xaxes(showticklabels=False, title_text="pixel column", row=1, col=2)
    fig.update_yaxes(showticklabels=False, autorange="reversed", scaleanchor="x2", title_text="pixel row", row=1, col=2)
    fig.add_shape(type="circle", xref="x", yref="y", x0=-marker_radius, x1=marker_radius, y0=-marker_radius,
                  y1=marker_radius, line=dict(color="#D55E00", width=3))
    fig.update_xaxes(constrain="domain", showline=True, linecolor="#888888", mirror=True, row=1, col=2)
    fig.update_yaxes(constrain="domain", showline=True, linecolor="#888888", mirror=True, row=1, col=2)
    fig.update_layout(title=title, height=460, margin=dict(t=80, b=40, l=60, r=20), plot_bgcolor="white")
    return fig


def _nearest_index(axis: Tensor, value: float) -> int:
    return int(torch.argmin((axis - value).abs()))


def phase_diagram_figure(decode: Decoder, image_shape: tuple[int, int], *,
                         z_range: tuple[float, float] = (-3.0, 3.0), n_mosaic: int = 11, n_lookup: int = 31,
                         value_range: tuple[float, float] = (0.0, 16.0), start: tuple[float, float] = (0.0, 0.0),
                         title: str = "Latent explorer") -> go.Figure:
    """The static latent explorer as a plotly Figure (works in the built HTML without a kernel).

    The phase diagram tiles ``n_mosaic`` × ``n_mosaic`` decoded outputs; the decoded panel shows the
    output at the current z, which snaps to an ``n_lookup`` × ``n_lookup`` grid (the decoded outputs
    there are embedded, quantised to 8 bits over ``value_range``). Sliders move z₁ and z₂; clicking the
    phase diagram moves z to the clicked point.
    """
    h, w = _check_decoder(decode, image_shape)
    check_count("n_mosaic", n_mosaic, minimum=2)
    check_count("n_lookup", n_lookup, minimum=2)
    lo, hi = float(value_range[0]), float(value_range[1])
    if not lo < hi:
        raise ValueError(f"value_range must be (low, high) with low < high, got {value_range}")
    coarse = decode_grid(decode, image_shape, z_range, n_mosaic)
    fine = decode_grid(decode, image_shape, z_range, n_lookup)
    i0, j0 = _nearest_index(fine.z1, start[0]), _nearest_index(fine.z2, start[1])
    radius = 0.35 * float(coarse.z1[1] - coarse.z1[0])
    fig = _base_figure(coarse, fine.images[j0, i0], (lo, hi), title, radius)
    quantised = ((fine.images - lo) / (hi - lo) * 255).round().clamp(0, 255).to(torch.uint8)  # (n2, n1, H, W)
    z1 = [round(float(v), 4) + 0.0 for v in fine.z1]  # + 0.0 turns −0.0 into 0.0 for the labels
    z2 = [round(float(v), 4) + 0.0 for v in fine.z2]

    def slider(name: str, values: list[float], active: int, y: float) -> dict:
        steps = [dict(method="skip", label=f"{v:.1f}", value=str(k), args=[]) for k, v in enumerate(values)]
        # transition 0: the grip jumps to the new step with the decoded panel; plotly's default 150 ms glide
        # redraws the page on every frame of it, which doubles a move's main-thread time on a long chapter page
        return dict(name=name, active=active, steps=steps, transition=dict(duration=0),
                    x=0.0, len=0.62, y=y, yanchor="top", pad=dict(t=0, b=0),
                    currentvalue=dict(prefix=f"{name.replace('z1', 'z₁').replace('z2', 'z₂')} = ",
                                      font=dict(size=13, color="#222222")),
                    tickcolor="rgba(0,0,0,0)", font=dict(size=1, color="rgba(0,0,0,0)"))

    fig.update_layout(
        sliders=[slider("z1", z1, i0, -0.14), slider("z2", z2, j0, -0.34)],
        height=600, margin=dict(t=80, b=190, l=60, r=20),
        meta=dict(latent_explorer=dict(
            z1=z1, z2=z2, height=h, width=w, vmin=lo, vmax=hi, start=[i0, j0],
            images_b64=base64.b64encode(quantised.numpy().tobytes()).decode("ascii"),
            decoded_trace=1, mosaic_trace=0, marker_radius=radius,
            label_annotation=1, label_format=LABEL_FORMAT)))
    fig.layout.annotations[1].text = LABEL_FORMAT.format(z1=f"{z1[i0]:.2f}", z2=f"{z2[j0]:.2f}")
    fig.layout.shapes[0].update(x0=z1[i0] - radius, x1=z1[i0] + radius, y0=z2[j0] - radius, y1=z2[j0] + radius)
    return fig


def live_explorer(decode: Decoder, image_shape: tuple[int, int], *, z_range: tuple[float, float] = (-3.0, 3.0),
                  n_mosaic: int = 11, value_range: tuple[float, float] = (0.0, 16.0),
                  title: str = "Latent explorer (live)"):
    """The live latent explorer for a running kernel: sliders for z₁, z₂ decode z on every move.

    Returns an ``ipywidgets.VBox`` holding the sliders and a ``plotly.graph_objects.FigureWidget``;
    each move updates the decoded panel, the marker and the label in place (no redraw of the figure).
    """
    import ipywidgets as widgets

    h, w = _check_decoder(decode, image_shape)
    lo, hi = _check_range(z_range)
    coarse = decode_grid(decode, image_shape, z_range, n_mosaic)
    radius = 0.35 * float(coarse.z1[1] - coarse.z1[0])

    def decode_one(z1: float, z2: float) -> np.ndarray:
        with torch.no_grad():
            return decode(torch.tensor([[z1, z2]], dtype=torch.float32)).reshape(h, w).numpy()

    base = _base_figure(coarse, torch.as_tensor(decode_one(0.0, 0.0)),
                        (float(value_range[0]), float(value_range[1])), title, radius)
    # the widget's state travels as strict JSON: the mosaic's blank NaN gaps become null (drawn blank all the same)
    base.data[0].z = [[None if v != v else v for v in row] for row in np.asarray(base.data[0].z).tolist()]
    fig = go.FigureWidget(base)
    step = (hi - lo) / 100
    sliders = [widgets.FloatSlider(value=0.0, min=lo, max=hi, step=step, description=name, continuous_update=True,
                                   readout_format=".2f") for name in ("z₁", "z₂")]

    marker = fig.layout.shapes[0].to_plotly_json()  # only its position changes
    titles = [a.to_plotly_json() for a in fig.layout.annotations]  # the subplot titles; [1] is the label

    def update(_change: object = None) -> None:
        z1, z2 = sliders[0].value, sliders[1].value
        image = decode_one(z1, z2)  # (H, W)
        # One plotly_update that replaces the (one-element) shapes list and the two titles whole: plotly.py
        # validates a dotted path such as "shapes[0].x0" at about 1 ms per key, a whole list in about 0.1 ms.
        fig.plotly_update(
            restyle_data={"z": [image]}, trace_indexes=[1],
            relayout_data={"shapes": [dict(marker, x0=z1 - radius, x1=z1 + radius, y0=z2 - radius, y1=z2 + radius)],
                           "annotations": [titles[0], dict(titles[1], text=LABEL_FORMAT.format(z1=f"{z1:.2f}",
                                                                                               z2=f"{z2:.2f}"))]})

    for s in sliders:
        s.observe(update, names="value")
    box = widgets.VBox([widgets.HBox(sliders), fig])
    box.update = update  # exposed for tests and benchmarks: set the sliders, then call update()
    box.sliders = sliders
    box.figure = fig
    return box
