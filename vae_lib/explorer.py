"""The one explorer design: an explorer is described once, and drawn live (kernel) or static (no kernel).

Every interactive figure of the book that the reader drives (the latent explorer of every chapter, the posterior
explorer of chapter 2, the KL-direction explorer of chapter 3, the estimator explorer of chapter 4, the drawing pad
of the digits chapters, the faces of chapter 7) is an :class:`Explorer`:

* its **controls** (:class:`Slider`, :class:`Choice`, :class:`Button`, :class:`Pad`): the state the reader sets;
* its **panels** (:class:`Plane` — a plot the reader can drag on, with a bitmap background and layers such as
  :class:`Scatter`, points coloured by a value; :class:`ImagePanel`): what is drawn, from named values;
* its **program**: the update, a list of small ops (:class:`Stack`, :class:`MLP`, :class:`Head`, :class:`NearestCode`,
  :class:`Bilinear`, :class:`Split`, :class:`Ellipse`, :class:`KLStdNormal`, :class:`Reparameterize`,
  :class:`CategoricalLogLikelihood`, :class:`Difference`, :class:`Lookup`, :class:`QuadratureELBO`,
  :class:`FlowSteps`) from the controls' values to the values the panels draw;
* a **readout** template, announced to screen readers.

From that one description come

* the **static** explorer (:meth:`Explorer.html`, also the notebook output): the description as JSON (networks'
  weights as int8 with one scale per row, base64) and ``explorer_runtime.js``, which runs the program in the page —
  the reader moves z anywhere and the page runs the decoder at that exact z;
* the **live** explorer (:meth:`Explorer.live`): an anywidget drawn by the same runtime, whose program runs in the
  kernel with torch (with the networks' full-precision weights) on every move.

:meth:`Explorer.evaluate` runs the program in Python with the page's own (int8) weights: the browser tests require
the page to agree with it, and :meth:`Explorer.quantisation_error` says how far the page's weights move the outputs.
"""

from __future__ import annotations

import base64
import html
import json
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ._checks import (
    as_tensor,
    check_bool,
    check_count,
    check_instance,
    check_real,
    check_sequence,
    check_text,
)
from .quadrature import LatentGrid

__all__ = [
    "Bilinear", "Button", "CategoricalLogLikelihood", "Choice", "ConvNet", "Curve", "Difference", "Ellipse", "Explorer",
    "Head", "ImagePanel", "KLStdNormal", "LatentGridImages", "Lookup", "MLP", "Marker", "NearestCode", "Pad", "Plane",
    "Points", "QuadratureELBO", "Reparameterize", "Slider", "Split", "Stack", "VLine", "Bars", "Background",
    "Affine", "FlowSteps", "Scatter", "decode_grid", "explorer_runtime", "mosaic", "quantise_rows",
]

OKABE_ITO_VERMILLION = "#D55E00"


# ------------------------------------------------------------------------------------------ controls
@dataclass(frozen=True)
class Slider:
    """A continuous control in [low, high]; ``snap`` restricts it to the steps (for precomputed lookups), and
    ``labels`` (one per step, snapped sliders only) are shown instead of the value (a slider over the index of
    unevenly spaced settings, e.g. σ ∈ {0.1, 0.25, 0.5, 1, 2})."""

    name: str
    label: str
    low: float
    high: float
    step: float
    value: float
    digits: int = 2
    snap: bool = False
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_text("name", self.name)
        check_text("label", self.label)
        for attribute in ("low", "high", "step", "value"):
            check_real(attribute, getattr(self, attribute))
        check_count("digits", self.digits, minimum=0, maximum=12)
        check_bool("snap", self.snap)
        for label in check_sequence("labels", self.labels, nonempty=False):
            check_text("labels", label)
        if not self.low < self.high:
            raise ValueError(f"slider {self.name!r}: low must be below high, got {self.low} and {self.high}")
        if not self.step > 0:
            raise ValueError(f"slider {self.name!r}: step must be positive, got {self.step}")
        check_count("the number of steps (high - low) / step", self.n_steps, maximum=100_000)
        if not self.low <= self.value <= self.high:
            raise ValueError(f"slider {self.name!r}: value must lie in [low, high], got {self.value}")
        if self.labels and (not self.snap or len(self.labels) != self.n_steps):
            raise ValueError(f"slider {self.name!r}: labels need snap=True and one label per step ({self.n_steps}), "
                             f"got {len(self.labels)}")

    @property
    def n_steps(self) -> int:
        return int(round((self.high - self.low) / self.step)) + 1

    def json(self) -> dict:
        return {"kind": "slider", **{k: getattr(self, k) for k in
                                     ("name", "label", "low", "high", "step", "value", "digits", "snap")},
                **({"labels": list(self.labels)} if self.labels else {})}


@dataclass(frozen=True)
class Choice:
    """One of several named options (its value is the option's index)."""

    name: str
    label: str
    options: tuple[str, ...]
    value: int = 0

    def json(self) -> dict:
        return {"kind": "choice", "name": self.name, "label": self.label, "options": list(self.options),
                "value": self.value}


@dataclass(frozen=True)
class Button:
    """A button that runs an action; ``"ascend"`` runs Adam on a :class:`QuadratureELBO` (chapter 2)."""

    name: str
    label: str
    action: str
    settings: Mapping[str, Any] = field(default_factory=dict)

    def json(self) -> dict:
        return {"kind": "button", "name": self.name, "label": self.label, "action": self.action, **self.settings}


@dataclass(frozen=True)
class Pad:
    """A drawing pad of rows × cols pixels with integer levels 0 … max (mouse, pen and touch), with buttons to
    clear it, load one of ``examples`` and add noise."""

    name: str
    label: str
    rows: int
    cols: int
    max: int
    value: tuple[float, ...]
    examples: tuple[tuple[float, ...], ...] = ()

    def json(self) -> dict:
        return {"kind": "pad", "name": self.name, "label": self.label, "rows": self.rows, "cols": self.cols,
                "max": self.max, "value": list(self.value), "examples": [list(e) for e in self.examples]}


Control = Slider | Choice | Button | Pad


# ------------------------------------------------------------------------------------------ panels
@dataclass(frozen=True)
class Background:
    """A bitmap behind a plane over ``extent`` = (x0, x1, y0, y1): fixed ``values`` (rows, cols; row 0 at the
    bottom, NaN drawn blank), or the program's value named ``output`` (a matrix of ``shape`` (rows, cols), row 0 at
    the bottom too, e.g. a :class:`Lookup`'s entry or :class:`QuadratureELBO`'s posterior)."""

    extent: tuple[float, float, float, float]
    value_range: tuple[float, float]
    values: Tensor | None = None
    output: str | None = None
    shape: tuple[int, int] | None = None
    colormap: str = "greys"


@dataclass(frozen=True)
class Points:
    """Fixed scatter points in groups: (name, colour, x, y)."""

    groups: tuple[tuple[str, str, Tensor, Tensor], ...]


@dataclass(frozen=True)
class Marker:
    """A circle at the values named x and y (the current z)."""

    x: str
    y: str
    colour: str = OKABE_ITO_VERMILLION


@dataclass(frozen=True)
class Curve:
    """A polyline from the value named ``output`` (a dict with x and y lists)."""

    output: str
    colour: str
    label: str = ""
    dash: str | None = None
    width: float = 2.5


@dataclass(frozen=True)
class Bars:
    """Bars from the value named ``output`` (a dict with x, y and width)."""

    output: str
    colour: str
    label: str = ""


@dataclass(frozen=True)
class VLine:
    """A vertical line at the value named ``output``."""

    output: str
    colour: str
    label: str = ""
    dash: str | None = "6 4"


@dataclass(frozen=True)
class Scatter:
    """Points from the value named ``output`` (an (N, 2) matrix: one point per row), each coloured by the matching
    entry of the value named ``colour_by`` (N values): the entries below ``edges[0]`` take ``colours[0]``, those in
    [edges[k − 1], edges[k]) take ``colours[k]``, those from ``edges[-1]`` up the last colour (so len(colours) =
    len(edges) + 1); ``labels`` name the colours in the legend (e.g. the flow's samples by log q_T, chapter 8)."""

    output: str
    colour_by: str
    edges: tuple[float, ...]
    colours: tuple[str, ...]
    labels: tuple[str, ...]
    radius: float = 2.2

    def __post_init__(self) -> None:
        check_text("output", self.output)
        check_text("colour_by", self.colour_by)
        edges = [check_real("edges", e) for e in check_sequence("edges", self.edges, nonempty=False)]
        if any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
            raise ValueError(f"edges must increase, got {list(self.edges)}")
        for name in ("colours", "labels"):
            items = check_sequence(name, getattr(self, name))
            for item in items:
                check_text(name, item)
            if len(items) != len(edges) + 1:
                raise ValueError(f"{name} must hold one entry per colour band, len(edges) + 1 = {len(edges) + 1}, "
                                 f"got {len(items)}")
        check_real("radius", self.radius, above=0)


Layer = Points | Marker | Curve | Bars | VLine | Scatter


@dataclass(frozen=True)
class Plane:
    """A 2-D plot; ``drag`` names the two sliders that pointer drags and the arrow keys move. ``ranges`` (optional)
    names a value {"x": [lo, hi], "y": [lo, hi]} that rescales the axes on every update (histograms whose spread
    changes by orders of magnitude between settings); ``x_range`` and ``y_range`` are then the first view."""

    title: str
    x_title: str
    x_range: tuple[float, float]
    y_title: str
    y_range: tuple[float, float]
    background: Background | None = None
    layers: tuple[Layer, ...] = ()
    drag: tuple[str, str] | None = None
    width: int = 380
    height: int = 380
    ranges: str | None = None


@dataclass(frozen=True)
class ImagePanel:
    """The value named ``output`` (rows · cols values) drawn as an image through a colour map."""

    title: str
    output: str
    rows: int
    cols: int
    value_range: tuple[float, float]
    colormap: str = "greys"


Panel = Plane | ImagePanel


# ------------------------------------------------------------------------------------------ the program's ops
class _Data:
    """The named arrays a description carries (base64, little-endian), and their values as the page decodes them."""

    def __init__(self) -> None:
        self.entries: dict[str, dict] = {}
        self.decoded: dict[str, Tensor] = {}

    def add(self, name: str, array: np.ndarray, dtype: str, scale: object = None, offset: float = 0.0) -> str:
        raw = np.ascontiguousarray(array.astype({"int8": "<i1", "uint8": "u1", "float32": "<f4"}[dtype]))
        entry = {"dtype": dtype, "shape": list(raw.shape), "b64": base64.b64encode(raw.tobytes()).decode("ascii")}
        values = torch.from_numpy(raw.astype(np.float64))
        if isinstance(scale, list):  # one scale per row: a float32 array of its own (kept beside the weights)
            entry["scale"] = self.add(name + ".scale", np.asarray(scale), "float32")
            s = self.decoded[entry["scale"]]
            values = values * s.reshape(-1, *[1] * (values.dim() - 1))
        elif scale is not None:
            entry["scale"] = scale
            values = values * float(scale)
        if offset:
            entry["offset"] = offset
            values = values + offset
        self.entries[name] = entry
        self.decoded[name] = values
        return name


def quantise_rows(weight: Tensor) -> tuple[np.ndarray, list[float]]:
    """int8 weights with one scale per row (output unit): w ≈ scale_r · q, q ∈ {−127 … 127}, scale_r = max|w_r| / 127.

    The scales are rounded to float32 so that the page and Python multiply by the same numbers.
    """
    w = as_tensor("weight", weight, ndim=2, nonempty=True).detach().to(torch.float64)
    scale = (w.abs().amax(1) / 127).clamp(min=1e-12).to(torch.float32).to(torch.float64)  # (out,)
    q = torch.round(w / scale[:, None]).clamp(-127, 127)  # (out, in)
    return q.to(torch.int8).numpy(), [float(s) for s in scale]


def _matrix(value: object) -> Tensor:
    t = torch.as_tensor(value, dtype=torch.float64)
    return t.reshape(1, -1) if t.dim() < 2 else t


class Op:
    """One step of an explorer's program: reads named values, writes named values (mirrored in the runtime)."""

    def json(self, data: _Data) -> dict:  # pragma: no cover - each op defines it
        raise NotImplementedError

    def run(self, values: dict, data: _Data | None) -> None:  # pragma: no cover - each op defines it
        """Python's run: with ``data`` the page's own arrays (int8 weights), with None the full-precision model."""
        raise NotImplementedError


@dataclass
class Stack(Op):
    """z = (v₁, …, v_n) from scalar values."""

    inputs: tuple[str, ...]
    output: str

    def json(self, data: _Data) -> dict:
        return {"op": "stack", "inputs": list(self.inputs), "output": self.output}

    def run(self, values: dict, data: _Data | None) -> None:
        values[self.output] = torch.tensor([[float(values[k]) for k in self.inputs]], dtype=torch.float64)


@dataclass
class MLP(Op):
    """A network of Linear layers with SiLU between them (``vae_lib.models.mlp``), applied to each row.

    ``scale`` divides the input first (the encoder sees x / x_scale). In the page the weights are int8 with a scale
    per row (:func:`quantise_rows`), the biases float32.
    """

    network: nn.Sequential
    input: str
    output: str
    name: str
    scale: float = 1.0

    def __post_init__(self) -> None:
        check_instance("network", self.network, nn.Sequential,
                       "an nn.Sequential of Linear layers with SiLU between them (vae_lib.models.mlp)")
        for attribute in ("input", "output", "name"):
            check_text(attribute, getattr(self, attribute))
        check_real("scale", self.scale, above=0)
        layers = list(self.network)
        ok = all(isinstance(m, nn.Linear) for m in layers[::2]) and all(isinstance(m, nn.SiLU) for m in layers[1::2])
        if not isinstance(self.network, nn.Sequential) or not ok or not isinstance(layers[-1], nn.Linear):
            raise TypeError("network must be an nn.Sequential of Linear layers with SiLU between them "
                            "(vae_lib.models.mlp); other networks are drawn from a precomputed grid (Bilinear)")

    def _linears(self) -> list[nn.Linear]:
        return [m for m in self.network if isinstance(m, nn.Linear)]

    def json(self, data: _Data) -> dict:
        layers = []
        for i, lin in enumerate(self._linears()):
            q, scale = quantise_rows(lin.weight)
            w = data.add(f"{self.name}.w{i}", q, "int8", scale)
            b = data.add(f"{self.name}.b{i}", lin.bias.detach().numpy(), "float32")
            act = "silu" if i < len(self._linears()) - 1 else "none"
            layers.append({"w": w, "b": b, "shape": list(lin.weight.shape), "act": act})
        ops = [{"op": "mlp", "input": self.input, "output": self.output, "layers": layers}]
        if self.scale != 1.0:
            ops.insert(0, {"op": "affine", "input": self.input, "output": self.input + "/s", "a": 1 / self.scale})
            ops[1]["input"] = self.input + "/s"
        return ops  # type: ignore[return-value]

    def run(self, values: dict, data: _Data | None) -> None:
        h = _matrix(values[self.input]) / self.scale  # (rows, in)
        linears = self._linears()
        for i, lin in enumerate(linears):
            if data is None:
                w, b = lin.weight.detach().double(), lin.bias.detach().double()
            else:
                w, b = data.decoded[f"{self.name}.w{i}"], data.decoded[f"{self.name}.b{i}"]
            h = h @ w.T + b  # (rows, out)
            if i < len(linears) - 1:
                h = torch.nn.functional.silu(h)
        values[self.output] = h


def _conv_layers(network: nn.Module) -> list[dict]:
    """A :class:`vae_lib.networks.ConvDecoder` as the page runs it: its Linear head, then each transposed 3×3
    convolution with its BatchNorm folded in (eval mode: y = γ (conv(x) − mean) / √(var + ε) + β is a convolution
    with weights scaled by g = γ / √(var + ε) per output channel and bias (b − mean) g + β) and its LeakyReLU, then the
    last 3×3 convolution. Weights in (out, in, 3, 3) layout, float64."""
    c = network.config
    layers: list[dict] = [{"kind": "linear", "w": network.head.weight.detach().double(),
                           "b": network.head.bias.detach().double(), "out_shape": list(c.smallest_map)}]
    shape = list(c.smallest_map)
    for block in network.blocks:
        conv, bn, act = block
        g = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().double()  # (Cout,)
        w = conv.weight.detach().double().permute(1, 0, 2, 3) * g[:, None, None, None]  # (Cout, Cin, 3, 3)
        b = (conv.bias.detach().double() - bn.running_mean.double()) * g + bn.bias.detach().double()
        shape = [w.shape[0], 2 * shape[1], 2 * shape[2]]
        layers.append({"kind": "conv_transpose", "w": w, "b": b, "slope": float(act.negative_slope),
                       "out_shape": shape})
    w, b = network.out.weight.detach().double(), network.out.bias.detach().double()
    layers.append({"kind": "conv", "w": w, "b": b, "slope": None, "out_shape": [w.shape[0], shape[1], shape[2]]})
    return layers


@dataclass
class ConvNet(Op):
    """A convolutional decoder (:class:`vae_lib.networks.ConvDecoder`, chapter 7) run in the page: z (1, L) → its
    outputs (1, D·k) in the decoder's own layout. BatchNorm is folded into the convolutions (eval mode, see
    :func:`_conv_layers`); the page holds int8 weights with one scale per output channel."""

    network: nn.Module
    input: str
    output: str
    name: str

    def json(self, data: _Data) -> dict:
        layers = []
        for i, layer in enumerate(_conv_layers(self.network)):
            w = layer["w"]
            q, scale = quantise_rows(w.reshape(w.shape[0], -1))
            entry = {"kind": layer["kind"], "shape": list(w.shape), "out_shape": layer["out_shape"],
                     "slope": layer.get("slope"),
                     "w": data.add(f"{self.name}.w{i}", q.reshape(tuple(w.shape)), "int8", scale),
                     "b": data.add(f"{self.name}.b{i}", layer["b"].numpy(), "float32")}
            layers.append(entry)
        c = self.network.config
        return {"op": "convnet", "input": self.input, "output": self.output, "layers": layers,
                "layout": c.output_layout, "per_pixel": c.out_channels_per_pixel}

    def run(self, values: dict, data: _Data | None) -> None:
        z = _matrix(values[self.input])  # (1, L)
        if data is None:
            values[self.output] = self.network(z.float()).double()
            return
        import torch.nn.functional as F

        h = z
        for i, layer in enumerate(_conv_layers(self.network)):
            w = data.decoded[f"{self.name}.w{i}"].reshape(layer["w"].shape)
            b = data.decoded[f"{self.name}.b{i}"].reshape(-1)
            if layer["kind"] == "linear":
                h = (h @ w.T + b).reshape(1, *layer["out_shape"])  # (1, C, h, w)
            elif layer["kind"] == "conv_transpose":
                h = F.conv_transpose2d(h, w.permute(1, 0, 2, 3), b, stride=2, padding=1, output_padding=1)
                h = F.leaky_relu(h, layer["slope"])
            else:
                h = F.conv2d(h, w, b, padding=1)  # (1, C·k, H, W)
        c = self.network.config
        if c.output_layout == "pixel_major":
            h = h.unflatten(1, (c.image_shape[0], c.out_channels_per_pixel)).permute(0, 1, 3, 4, 2)
        values[self.output] = h.reshape(1, -1)


@dataclass
class Head(Op):
    """Decoder outputs → E_{p_θ(x|z)}[x] in data units: ``categorical`` (Σ_l l·softmax over ``levels``),
    ``sigmoid`` (scale·σ(out)) or ``linear`` (scale·out), for the first ``dims`` outputs of each row."""

    kind: str
    input: str
    output: str
    dims: int
    levels: int = 0
    scale: float = 1.0

    def json(self, data: _Data) -> dict:
        return {"op": "head", "kind": self.kind, "input": self.input, "output": self.output, "dims": self.dims,
                "levels": self.levels, "scale": self.scale}

    def run(self, values: dict, data: _Data | None) -> None:
        out = _matrix(values[self.input])  # (rows, outputs)
        if self.kind == "categorical":
            probs = torch.softmax(out.unflatten(-1, (self.dims, self.levels)), -1)  # (rows, D, levels)
            values[self.output] = probs @ torch.arange(self.levels, dtype=probs.dtype)
        elif self.kind == "sigmoid":
            values[self.output] = self.scale * torch.sigmoid(out[:, : self.dims])
        else:
            values[self.output] = self.scale * out[:, : self.dims]


@dataclass
class NearestCode(Op):
    """Each ``code_dim`` block of z replaced by its nearest codebook row (the VQ-VAE's quantiser, chapter 6)."""

    codebook: Tensor
    input: str
    output: str

    def json(self, data: _Data) -> dict:
        name = data.add(f"codebook.{self.output}", self.codebook.detach().numpy(), "float32")
        return {"op": "nearest_code", "input": self.input, "output": self.output, "codebook": name,
                "code_dim": int(self.codebook.shape[1])}

    def run(self, values: dict, data: _Data | None) -> None:
        z = _matrix(values[self.input])  # (rows, M·D)
        book = self.codebook.detach().to(torch.float32).to(torch.float64)  # (K, D), as the page holds it
        blocks = z.unflatten(-1, (-1, book.shape[1]))  # (rows, M, D)
        k = ((blocks.unsqueeze(-2) - book) ** 2).sum(-1).argmin(-1)  # (rows, M)
        values[self.output] = book[k].flatten(-2)


def _bilinear_at(grid: Tensor, x: tuple[float, float], y: tuple[float, float], points: Tensor) -> Tensor:
    """grid (n2, n1, ...) on an evenly spaced n₂ × n₁ grid over [x₀, x₁] × [y₀, y₁] (grid[j, i] at (x[i], y[j])),
    interpolated bilinearly at points (n, 2), each clamped to the grid: (n, ...). What the page's ``bilinear`` op
    computes (:class:`Bilinear`); chapter 1's contour labels use it too."""
    n2, n1 = grid.shape[:2]

    def pos(v: Tensor, lo: float, hi: float, n: int) -> tuple[Tensor, Tensor]:
        t = (v.clamp(lo, hi) - lo) / (hi - lo) * (n - 1)  # (n,) fractional index
        i = t.floor().long().clamp(max=n - 2)
        return i, (t - i).reshape(-1, *[1] * (grid.dim() - 2))  # weight broadcast over the trailing dims

    i, a = pos(points[:, 0], *x, n1)
    j, b = pos(points[:, 1], *y, n2)
    return ((1 - b) * ((1 - a) * grid[j, i] + a * grid[j, i + 1])
            + b * ((1 - a) * grid[j + 1, i] + a * grid[j + 1, i + 1]))


@dataclass
class Bilinear(Op):
    """Outputs precomputed on an n₂ × n₁ grid over (z₁, z₂) and interpolated bilinearly at any z (for decoders
    too slow for the page, such as chapter 7's convolutional one). Stored as uint8 over ``value_range``."""

    grid: Tensor  # (n2, n1, P): grid[j, i] at (x[i], y[j])
    x: tuple[float, float]
    y: tuple[float, float]
    inputs: tuple[str, str]
    output: str
    value_range: tuple[float, float]

    def json(self, data: _Data) -> dict:
        lo, hi = self.value_range
        q = ((self.grid.detach().double() - lo) / (hi - lo) * 255).round().clamp(0, 255).to(torch.uint8)
        name = data.add(f"grid.{self.output}", q.numpy(), "uint8", scale=float(np.float32((hi - lo) / 255)),
                        offset=float(lo))
        n2, n1, p = self.grid.shape
        return {"op": "bilinear", "grid": name, "inputs": list(self.inputs), "output": self.output, "n1": n1,
                "n2": n2, "size": p, "x": list(self.x), "y": list(self.y)}

    def run(self, values: dict, data: _Data | None) -> None:
        g = data.decoded[f"grid.{self.output}"] if data is not None else self.grid.detach().double()
        z = torch.tensor([[float(values[self.inputs[0]]), float(values[self.inputs[1]])]], dtype=torch.float64)
        values[self.output] = _bilinear_at(g.reshape(self.grid.shape), self.x, self.y, z).reshape(1, -1)


@dataclass
class Affine(Op):
    """y = a·x + b elementwise (e.g. log σ² = 2 log σ)."""

    input: str
    output: str
    a: float
    b: float = 0.0

    def json(self, data: _Data) -> dict:
        return {"op": "affine", "input": self.input, "output": self.output, "a": self.a, "b": self.b}

    def run(self, values: dict, data: _Data | None) -> None:
        values[self.output] = self.a * _matrix(values[self.input]) + self.b


@dataclass
class Split(Op):
    """Split each row into equal parts (the encoder's output → μ, log σ²)."""

    input: str
    outputs: tuple[str, ...]

    def json(self, data: _Data) -> dict:
        return {"op": "split", "input": self.input, "outputs": list(self.outputs)}

    def run(self, values: dict, data: _Data | None) -> None:
        for name, part in zip(self.outputs, _matrix(values[self.input]).chunk(len(self.outputs), -1), strict=True):
            values[name] = part


@dataclass
class Ellipse(Op):
    """The k-σ ellipse of N(μ, diag exp(log σ²)) in its first two dimensions: μ + k σ ⊙ (cos t, sin t)."""

    mean: str
    log_var: str
    k: float
    output: str
    points: int = 61

    def json(self, data: _Data) -> dict:
        return {"op": "ellipse", "mean": self.mean, "log_var": self.log_var, "k": self.k, "output": self.output,
                "points": self.points}

    def run(self, values: dict, data: _Data | None) -> None:
        m, lv = _matrix(values[self.mean])[0], _matrix(values[self.log_var])[0]
        t = torch.linspace(0, 2 * math.pi, self.points, dtype=torch.float64)
        s = (0.5 * lv).exp()
        values[self.output] = {"x": (m[0] + self.k * s[0] * t.cos()).tolist(),
                               "y": (m[1] + self.k * s[1] * t.sin()).tolist()}


@dataclass
class KLStdNormal(Op):
    """KL(N(μ, diag σ²) ‖ N(0, I)) = ½ Σ_l (μ_l² + σ_l² − 1 − log σ_l²) (a number, nats)."""

    mean: str
    log_var: str
    output: str

    def json(self, data: _Data) -> dict:
        return {"op": "kl_std_normal", "mean": self.mean, "log_var": self.log_var, "output": self.output}

    def run(self, values: dict, data: _Data | None) -> None:
        m, lv = _matrix(values[self.mean]), _matrix(values[self.log_var])
        values[self.output] = float(0.5 * (m**2 + lv.exp() - 1 - lv).sum())


@dataclass
class Reparameterize(Op):
    """z_k = μ + σ ⊙ ε_k for K fixed draws ε_k ~ N(0, I) that travel with the description (the same in the page
    and in Python, so both estimate E_q[log p_θ(x|z)] with the same K points)."""

    eps: Tensor  # (K, L)
    mean: str
    log_var: str
    output: str

    def json(self, data: _Data) -> dict:
        name = data.add(f"eps.{self.output}", self.eps.numpy(), "float32")
        return {"op": "reparameterize", "eps": name, "mean": self.mean, "log_var": self.log_var,
                "output": self.output}

    def run(self, values: dict, data: _Data | None) -> None:
        m, lv = _matrix(values[self.mean]), _matrix(values[self.log_var])
        eps = self.eps.to(torch.float32).to(torch.float64)
        values[self.output] = m + (0.5 * lv).exp() * eps  # (K, L)


@dataclass
class CategoricalLogLikelihood(Op):
    """(1/K) Σ_k log p_θ(x|z_k) for the categorical decoder's logits (K, D·levels) and integer levels x (nats)."""

    x: str
    logits: str
    levels: int
    output: str

    def json(self, data: _Data) -> dict:
        return {"op": "categorical_log_likelihood", "x": self.x, "logits": self.logits, "levels": self.levels,
                "output": self.output}

    def run(self, values: dict, data: _Data | None) -> None:
        from .likelihoods import categorical_log_likelihood

        x = _matrix(values[self.x])[0].round()  # (D,)
        logits = _matrix(values[self.logits])  # (K, D·levels)
        values[self.output] = float(categorical_log_likelihood(x, logits.unflatten(-1, (-1, self.levels))).mean())


@dataclass
class Difference(Op):
    """a − b of two numbers (the ELBO from its two terms)."""

    inputs: tuple[str, str]
    output: str

    def json(self, data: _Data) -> dict:
        return {"op": "difference", "inputs": list(self.inputs), "output": self.output}

    def run(self, values: dict, data: _Data | None) -> None:
        values[self.output] = float(values[self.inputs[0]]) - float(values[self.inputs[1]])


@dataclass
class Lookup(Op):
    """Values precomputed for each combination of the ``keys``' indices (choices, or sliders with ``snap``).

    ``table`` maps "i,j" to a dict of values; ``live`` (optional) computes the same values for any state in a
    kernel, e.g. fresh Monte Carlo estimates for any μ, σ, K.
    """

    keys: tuple[str, ...]
    table: Mapping[str, Mapping[str, Any]]
    live: Callable[[dict], Mapping[str, Any]] | None = None

    def json(self, data: _Data) -> dict:
        return {"op": "lookup", "keys": list(self.keys), "table": dict(self.table)}

    def run(self, values: dict, data: _Data | None) -> None:
        if data is None and self.live is not None:
            values.update(self.live(values))
            return
        values.update(self.table[",".join(str(int(values[k + "#index"])) for k in self.keys)])


@dataclass
class QuadratureELBO(Op):
    """Chapter 2's L(q) = Σ_g q(z_g)[log p_θ(x, z_g) − log q(z_g)] dA on a grid, log p_θ(x) and the gap, for the
    preset picked by the choice ``preset`` and q = N((μ₁, μ₂), diag(σ₁², σ₂²)) from the sliders ``q``
    (μ₁, μ₂, log σ₁, log σ₂). ``posterior`` (optional) names a further output: p(z|x) on the grid relative to its
    largest value, exp(log p(x, z_g) − max_g log p(x, z_g)), an (n2, n1) matrix (row 0 at the lowest z₂) to draw as a
    plane's background."""

    log_joint: Tensor  # (P, G): log p_θ(x_p, z_g) on ``grid``
    grid: LatentGrid  # a 2-D vae_lib.quadrature grid, G = n2 · n1 points with z₁ varying fastest
    preset: str
    q: tuple[str, str, str, str]
    output: str = "elbo"
    evidence: str = "log_px"
    gap: str = "gap"
    posterior: str | None = None

    def json(self, data: _Data) -> dict:
        n2, n1 = self.grid.shape
        name = data.add("log_joint", self.log_joint.reshape(-1, n2, n1).to(torch.float32).numpy(), "float32")
        return {"op": "quadrature_elbo", "log_joint": name, "z1": self.grid.axes[0].tolist(),
                "z2": self.grid.axes[1].tolist(), "cell_area": self.grid.cell_volume, "preset": self.preset,
                "q": list(self.q), "output": self.output,
                "evidence": self.evidence, "gap": self.gap, **({"posterior": self.posterior} if self.posterior else {})}

    def run(self, values: dict, data: _Data | None) -> None:
        from . import quadrature
        from .gaussian import diag_gaussian

        log_joint = data.decoded["log_joint"] if data is not None else self.log_joint
        p = int(values[self.preset + "#index"])
        column = log_joint[p].reshape(-1, 1).to(torch.float64)  # (G, 1)
        q = torch.tensor([float(values[k]) for k in self.q], dtype=torch.float64)  # μ₁, μ₂, log σ₁, log σ₂
        elbo = float(quadrature.elbo(column, self.grid, diag_gaussian(q[None, :2], 2 * q[None, 2:])))
        log_px = float(quadrature.log_marginal(column, self.grid))
        values.update({self.output: elbo, self.evidence: log_px, self.gap: log_px - elbo})
        if self.posterior:
            values[self.posterior] = (column - column.max()).exp().reshape(self.grid.shape)  # (n2, n1)


@dataclass
class FlowSteps(Op):
    """A normalizing flow (chapter 8, :mod:`vae_lib.flows`) run on fixed base draws: z_0 = μ + σ ⊙ ε_n for the N
    rows ε_n of ``eps`` (they travel with the description, float32), then the first T of the flow's planar or radial
    ``steps`` (T = the value named ``depth``, clipped to 0 … len(steps)). Outputs ``output``, the points z_T (N, L),
    and ``log_q``, log q_T(z_T) = log q_0(z_0) − Σ_{t ≤ T} log|det ∂f_t/∂z_{t−1}| (1, N). With ``grid`` = (low, high,
    n) and ``density`` it also outputs q_T on the n × n grid over [low, high]² relative to ``peak``, exp(log q_T(z_g) −
    log_peak) (by default to its own largest value on the grid; e.g. the true posterior's peak, so that both are drawn
    on one scale), an (n, n) matrix with row 0 at the lowest z₂ (a plane's background): each grid point is
    taken back through the steps (planar: the scalar equation a + wᵀû tanh a = wᵀz' + b, solved by Newton's method
    within a bracket in the page and by the steps' own ``inverse`` in Python; radial: in closed form).

    The page holds each step's constrained parameters in float64 (planar û, w, b with wᵀû > −1; radial z₀, α, β) and
    computes in float64; Python's run of the page's numbers calls the steps' own ``forward`` with those parameters
    in float64, and the live run (``exact``) calls them as they are, in the flow's dtype.
    """

    steps: tuple[nn.Module, ...]
    mean: Tensor  # (L,)
    log_var: Tensor  # (L,)
    eps: Tensor  # (N, L)
    depth: str
    output: str
    log_q: str
    grid: tuple[float, float, int] | None = None
    density: str | None = None
    log_peak: float | None = None

    def __post_init__(self) -> None:
        from .flows import PlanarStep, RadialStep

        for step in check_sequence("steps", self.steps, nonempty=False):
            check_instance("steps", step, (PlanarStep, RadialStep),
                           "a tuple of vae_lib.flows.PlanarStep or RadialStep (the page runs these two kinds)")
        self.eps = as_tensor("eps", self.eps, ndim=2, nonempty=True).detach()
        lat = self.eps.shape[1]
        self.mean = as_tensor("mean", self.mean, ndim=1).detach()
        self.log_var = as_tensor("log_var", self.log_var, ndim=1).detach()
        for name in ("mean", "log_var"):
            if getattr(self, name).shape != (lat,):
                raise ValueError(f"{name} must have shape ({lat},) (eps has L = {lat} columns), "
                                 f"got {tuple(getattr(self, name).shape)}")
        for step in self.steps:
            if step.latent_dim != lat:
                raise ValueError(f"every step must have latent size L = {lat} (eps's columns), got {step.latent_dim}")
        for name in ("depth", "output", "log_q"):
            check_text(name, getattr(self, name))
        if (self.grid is None) != (self.density is None):
            raise ValueError("grid and density go together: give both (the density's grid and its name) or neither")
        if self.grid is not None:
            check_text("density", self.density)
            if lat != 2:
                raise ValueError(f"a density on a grid needs a 2-D latent, got L = {lat}")
            check_sequence("grid", self.grid)
            if len(self.grid) != 3:
                raise ValueError(f"grid must be (low, high, n), got {self.grid!r}")
            low, high = check_real("grid", self.grid[0]), check_real("grid", self.grid[1])
            n = check_count("grid", self.grid[2], minimum=2, maximum=1001)
            if not low < high:
                raise ValueError(f"grid must have low < high, got {self.grid!r}")
            self.grid = (low, high, n)
        if self.log_peak is not None:
            self.log_peak = check_real("log_peak", self.log_peak)

    @staticmethod
    def _parameters(step: nn.Module) -> dict:
        """A step's constrained parameters in float64, as the page holds them."""
        from .flows import PlanarStep

        p = step.params.detach().to(torch.float64)
        if isinstance(step, PlanarStep):
            u_hat, w, b = step._split(p)
            return {"kind": "planar", "u": u_hat.tolist(), "w": w.tolist(), "b": float(b)}
        z0, alpha, beta = step._split(p)
        return {"kind": "radial", "z0": z0.tolist(), "alpha": float(alpha), "beta": float(beta)}

    def json(self, data: _Data) -> dict:
        name = data.add(f"eps.{self.output}", self.eps.to(torch.float32).numpy(), "float32")
        return {"op": "flow_steps", "eps": name, "mean": self.mean.double().tolist(),
                "log_var": self.log_var.double().tolist(), "steps": [self._parameters(s) for s in self.steps],
                "depth": self.depth, "output": self.output, "log_q": self.log_q,
                **({"grid": list(self.grid), "density": self.density, "log_peak": self.log_peak} if self.grid
                   else {})}

    def run(self, values: dict, data: _Data | None) -> None:
        from .gaussian import diag_gaussian

        depth = min(max(int(round(float(values[self.depth]))), 0), len(self.steps))
        if data is None:  # the live explorer: the steps as they are, in the flow's own dtype
            dtype = self.steps[0].params.dtype if self.steps else self.eps.dtype
            eps = self.eps.to(dtype)
            params = [None] * depth
        else:  # the page's numbers: ε as float32, every step in float64
            dtype = torch.float64
            eps = data.decoded[f"eps.{self.output}"]
            params = [s.params.detach().to(torch.float64) for s in self.steps[:depth]]
        mean, log_var = self.mean.to(dtype), self.log_var.to(dtype)
        z = mean + torch.exp(0.5 * log_var) * eps  # (N, L)
        log_q = diag_gaussian(mean, log_var).log_prob(z)  # (N,) log q_0(z_0)
        for step, p in zip(self.steps[:depth], params, strict=True):
            z, log_det = step(z, p)
            log_q = log_q - log_det
        values[self.output] = z.double()
        values[self.log_q] = log_q.double().reshape(1, -1)
        if self.grid is not None:  # back through the steps from each grid point, then q_0 there
            low, high, n = self.grid
            axis = torch.linspace(low, high, n, dtype=torch.float64)
            z2, z1 = torch.meshgrid(axis, axis, indexing="ij")
            z = torch.stack([z1.reshape(-1), z2.reshape(-1)], -1).to(dtype)  # (n², 2), z₁ fastest
            log_det = torch.zeros(z.shape[0], dtype=dtype)
            for step, p in zip(reversed(self.steps[:depth]), reversed(params), strict=True):
                z = step.inverse(z, p)
                log_det = log_det + step(z, p)[1]
            log_q = (diag_gaussian(mean, log_var).log_prob(z) - log_det).double()  # (n²,)
            peak = log_q.max() if self.log_peak is None else self.log_peak
            values[self.density] = (log_q - peak).exp().reshape(n, n)


# ------------------------------------------------------------------------------------------ the explorer
def explorer_runtime() -> str:
    """The source of ``explorer_runtime.js``, the one script every explorer uses (the book includes it once per
    page, ``_ext/static_page.py``; a notebook output carries it inline)."""
    return files("vae_lib").joinpath("explorer_runtime.js").read_text(encoding="utf-8")


def _jsonable(value: object) -> object:
    if isinstance(value, Tensor):
        m = _matrix(value)
        return {"rows": m.shape[0], "cols": m.shape[1], "d": m.flatten().tolist()}  # tolist: one C call
    if isinstance(value, (np.floating, np.integer)):
        return float(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


@dataclass
class Explorer:
    """An explorer: controls, panels, a program and a readout (see the module docstring).

    ``title`` heads it; ``caption`` describes what to look at (it labels the figure for screen readers);
    ``readout`` is a template over the values, e.g. ``"z = ({z1:.2f}, {z2:.2f})"``.
    """

    title: str
    caption: str
    controls: tuple[Control, ...]
    panels: tuple[Panel, ...]
    program: tuple[Op, ...]
    readout: str

    def __post_init__(self) -> None:
        for attribute in ("title", "caption", "readout"):
            check_text(attribute, getattr(self, attribute))
        for c in check_sequence("controls", self.controls, nonempty=False):
            check_instance("controls", c, (Slider, Choice, Button, Pad), "a tuple of Slider, Choice, Button or Pad")
        for p in check_sequence("panels", self.panels, nonempty=False):
            check_instance("panels", p, (Plane, ImagePanel), "a tuple of Plane or ImagePanel")
        for op in check_sequence("program", self.program, nonempty=False):
            check_instance("program", op, Op, "a tuple of ops (vae_lib.explorer.Op)")
        names = [c.name for c in self.controls]
        if len(set(names)) != len(names):
            raise ValueError(f"controls must have distinct names, got {names}")
        for p in self.panels:
            if isinstance(p, Plane) and p.drag is not None:
                missing = [n for n in p.drag if n not in names]
                if missing:
                    raise ValueError(f"plane {p.title!r} drags {missing}, which are not controls")

    # -- state and values -------------------------------------------------------------------------------
    def initial_state(self) -> dict:
        """The controls' starting values (a choice's or snapped slider's index under ``name#index``)."""
        state: dict[str, Any] = {}
        for c in self.controls:
            if isinstance(c, Slider):
                state[c.name] = c.value
                if c.snap:
                    state[c.name + "#index"] = int(round((c.value - c.low) / c.step))
            elif isinstance(c, Choice):
                state[c.name] = state[c.name + "#index"] = c.value
            elif isinstance(c, Pad):
                state[c.name] = torch.tensor([c.value], dtype=torch.float64)
        return state

    def evaluate(self, state: Mapping[str, Any] | None = None, *, exact: bool = False) -> dict:
        """Run the program in Python: with the page's own arrays (int8 weights; what the page computes), or with
        ``exact=True`` the full-precision model (what the live explorer computes)."""
        values = self.initial_state()
        values.update(state or {})
        for c in self.controls:  # a choice's or snapped slider's index follows its value unless the state gives it
            if c.name in (state or {}) and c.name + "#index" not in (state or {}):
                if isinstance(c, Choice):
                    values[c.name + "#index"] = int(values[c.name])
                elif isinstance(c, Slider) and c.snap:
                    values[c.name + "#index"] = int(round((float(values[c.name]) - c.low) / c.step))
        data = None if exact else self._data()
        with torch.no_grad():
            for op in self.program:
                op.run(values, data)
        return values

    def quantisation_error(self, states: Sequence[Mapping[str, Any]], output: str) -> float:
        """max |page − full precision| of the value ``output`` over the given states."""
        errs = [float((_matrix(self.evaluate(s)[output]) - _matrix(self.evaluate(s, exact=True)[output])).abs().max())
                for s in states]
        return max(errs)

    # -- the description as JSON ------------------------------------------------------------------------
    def _data(self) -> _Data:
        data = _Data()
        self._program_json(data)
        self._panels_json(data)
        return data

    def _program_json(self, data: _Data) -> list[dict]:
        out: list[dict] = []
        for op in self.program:
            j = op.json(data)
            out.extend(j if isinstance(j, list) else [j])
        return out

    def _panels_json(self, data: _Data) -> list[dict]:
        panels = []
        for k, p in enumerate(self.panels):
            if isinstance(p, ImagePanel):
                panels.append({"kind": "image", "title": p.title, "output": p.output, "rows": p.rows, "cols": p.cols,
                               "range": list(p.value_range), "colormap": p.colormap})
                continue
            j: dict[str, Any] = {"kind": "plane", "title": p.title, "x": {"title": p.x_title, "range": list(p.x_range)},
                                 "y": {"title": p.y_title, "range": list(p.y_range)}, "drag": p.drag,
                                 "width": p.width, "height": p.height, "layers": [], "legend": []}
            if p.ranges:
                j["ranges"] = p.ranges
            b = p.background
            if b is not None:
                j["background"] = {"extent": list(b.extent), "range": list(b.value_range), "colormap": b.colormap}
                if b.values is not None:
                    # row 0 of the values is the bottom of the plane; the bitmap's row 0 is its top
                    v = b.values.detach().double().flip(0)
                    lo, hi = b.value_range
                    q = ((v - lo) / (hi - lo) * 254).round().clamp(0, 254)
                    q = torch.where(v.isnan(), torch.full_like(q, 255), q).to(torch.uint8)  # 255: blank
                    j["background"].update(data=data.add(f"background{k}", q.numpy(), "uint8"), rows=v.shape[0],
                                           cols=v.shape[1], range=[0, 254], blank=255)
                else:
                    j["background"].update(output=b.output, rows=b.shape[0], cols=b.shape[1])
            for layer in p.layers:
                if isinstance(layer, Points):
                    j["layers"].append({"kind": "points", "groups": [
                        {"name": name, "colour": colour, "x": [round(float(v), 3) for v in xs],
                         "y": [round(float(v), 3) for v in ys]} for name, colour, xs, ys in layer.groups]})
                    j["legend"] += [{"label": name, "colour": colour, "dot": True}
                                    for name, colour, _, _ in layer.groups]
                elif isinstance(layer, Marker):
                    j["layers"].append({"kind": "marker", "x": layer.x, "y": layer.y, "colour": layer.colour})
                elif isinstance(layer, Curve):
                    j["layers"].append({"kind": "curve", "output": layer.output, "colour": layer.colour,
                                        "dash": layer.dash, "width": layer.width})
                    if layer.label:
                        j["legend"].append({"label": layer.label, "colour": layer.colour, "dash": layer.dash})
                elif isinstance(layer, Bars):
                    j["layers"].append({"kind": "bars", "output": layer.output, "colour": layer.colour})
                    if layer.label:
                        j["legend"].append({"label": layer.label, "colour": layer.colour})
                elif isinstance(layer, Scatter):
                    j["layers"].append({"kind": "scatter", "output": layer.output, "colour_by": layer.colour_by,
                                        "edges": list(layer.edges), "colours": list(layer.colours),
                                        "radius": layer.radius})
                    j["legend"] += [{"label": label, "colour": colour, "dot": True}
                                    for label, colour in zip(layer.labels, layer.colours, strict=True)]
                elif isinstance(layer, VLine):
                    j["layers"].append({"kind": "vline", "output": layer.output, "colour": layer.colour,
                                        "dash": layer.dash, "width": 2})
                    if layer.label:
                        j["legend"].append({"label": layer.label, "colour": layer.colour, "dash": layer.dash})
            panels.append(j)
        return panels

    def spec(self, *, with_program_data: bool = True) -> dict:
        """The description as JSON-ready data: what the runtime draws and (static) runs."""
        data = _Data()
        program = self._program_json(data)
        if not with_program_data:
            data = _Data()
        panels = self._panels_json(data)
        return {"title": self.title, "caption": self.caption, "controls": [c.json() for c in self.controls],
                "panels": panels, "program": program, "readout": self.readout, "data": data.entries}

    # -- static and live ------------------------------------------------------------------------------
    def html(self, *, runtime: bool = True) -> str:
        """The static explorer: a host element with the description as JSON, and (``runtime``) the runtime inline,
        marked so that the book's Sphinx extension replaces it by one copy per page."""
        spec = json.dumps(self.spec(), separators=(",", ":")).replace("</", "<\\/")
        host = (f'<div class="vae-explorer-host" id="vx-{uuid.uuid4().hex[:12]}">'
                f'<script type="application/json">{spec}</script>'
                f'<noscript>{html.escape(self.title)}: this explorer needs JavaScript.</noscript></div>')
        if not runtime:
            return host
        return (f'<script data-vae-explorer-runtime="1">{explorer_runtime()}</script>{host}'
                "<script>window.vaeExplorer && window.vaeExplorer.mountAll(document);</script>")

    def _repr_mimebundle_(self, include: object = None, exclude: object = None) -> dict:
        return {"text/html": self.html(), "text/plain": f"<Explorer: {self.title}>"}

    def live(self):
        """The live explorer: an anywidget drawn by the same runtime; the kernel runs the program with torch."""
        from .explorer_live import ExplorerWidget

        return ExplorerWidget(self)


# ------------------------------------------------------------------------------------------ decoded grids
@dataclass(frozen=True)
class LatentGridImages:
    """Decoded outputs on a regular latent grid: images[j, i] = E[x | z = (z1[i], z2[j])]."""

    z1: Tensor  # (n1,)
    z2: Tensor  # (n2,)
    images: Tensor  # (n2, n1, H, W)


def _check_range(z_range: tuple[float, float]) -> tuple[float, float]:
    if len(z_range) != 2 or not z_range[0] < z_range[1]:
        raise ValueError(f"z_range must be (low, high) with low < high, got {z_range}")
    return float(z_range[0]), float(z_range[1])


def decode_grid(decode: Callable[[Tensor], Tensor], image_shape: tuple[int, int],
                z_range: tuple[float, float] = (-3.0, 3.0), n: int = 15) -> LatentGridImages:
    """Decode the n × n grid over z_range² in one batch; ``decode`` maps z (N, 2) to outputs (N, H·W)."""
    if not callable(decode):
        raise TypeError(f"decode must be callable (z of shape (N, 2) -> outputs (N, H*W)), got {type(decode).__name__}")
    if len(image_shape) != 2 or any(int(s) < 1 for s in image_shape):
        raise ValueError(f"image_shape must be (height, width) with positive sizes, got {image_shape}")
    h, w = int(image_shape[0]), int(image_shape[1])
    lo, hi = _check_range(z_range)
    n = check_count("n", n, minimum=2)
    axis = torch.linspace(lo, hi, n)
    z2, z1 = torch.meshgrid(axis, axis, indexing="ij")
    z = torch.stack([z1.reshape(-1), z2.reshape(-1)], -1)  # (n·n, 2), z1 varies fastest
    with torch.no_grad():
        out = decode(z)
    if out.shape[0] != n * n or out[0].numel() != h * w:
        raise ValueError(f"decode must return shape (N, {h * w}) for image_shape {image_shape}, got {tuple(out.shape)}")
    return LatentGridImages(axis, axis, out.reshape(n, n, h, w).float())


def mosaic(grid: LatentGridImages, gap: int = 1) -> Tensor:
    """Tile the decoded images into one array whose row 0 is the *bottom* (lowest z₂), with each image's own
    top row uppermost. ``gap`` rows/columns of NaN (drawn blank) separate neighbouring tiles, so that adjacent
    digits do not merge; shape (n2·(H+gap) − gap, n1·(W+gap) − gap).
    """
    check_instance("grid", grid, LatentGridImages, "a LatentGridImages (from decode_grid)")
    gap = check_count("gap", gap, minimum=0, maximum=1000)
    n2, n1, h, w = grid.images.shape
    flipped = grid.images.flip(-2)  # (n2, n1, H, W): image row 0 now at the bottom of its tile
    padded = torch.full((n2, n1, h + gap, w + gap), float("nan"), dtype=flipped.dtype)
    padded[:, :, :h, :w] = flipped  # gap after each tile (above it and to its right)
    tiled = padded.permute(0, 2, 1, 3).reshape(n2 * (h + gap), n1 * (w + gap))
    return tiled[: n2 * (h + gap) - gap, : n1 * (w + gap) - gap]


def as_points(name: str, value: object) -> Tensor:
    """A (N, 2) tensor of points, checked."""
    t = as_tensor(name, value, ndim=2, dtype=torch.float64)
    if t.shape[1] != 2:
        raise ValueError(f"{name} must have shape (N, 2), got {tuple(t.shape)}")
    return t
