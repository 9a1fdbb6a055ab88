"""Figure builders of chapter 3 ("The KL gap"). Each returns a plotly ``Figure`` and never shows it.

* :func:`gap_vs_kl_figure` — log p_θ(x) − L(q) against KL(q || p_θ(z|x)) for many q: the diagonal;
* :func:`kl_directions_explorer` — the posterior with the reverse-KL and forward-KL Gaussian fits, a slider over x₁:
  an :class:`vae_lib.explorer.Explorer` holding every fit (works on the static page without a kernel);
* :func:`iwae_curve_figure` — the importance-weighted bound L_K against K with error bars;
* :func:`gap_histogram_figure` — histograms of per-example gaps with their means.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from torch import Tensor

from ._checks import (
    as_tensor,
    check_count,
    check_instance,
    check_int,
    check_mapping,
    check_numbers,
    check_range,
    check_real,
    check_same_shape,
    check_sequence,
    check_tensor_mapping,
    check_text,
)
from .explorer import Background, Choice, Curve, Ellipse, Explorer, Lookup, Plane, Slider
from .figures import DIGIT_SYMBOLS, OKABE_ITO, _np, histogram_bars
from .gap import KLDirectionFit
from .quadrature import LatentGrid

__all__ = ["gap_histogram_figure", "gap_vs_kl_figure", "iwae_curve_figure", "kl_directions_explorer"]

REVERSE_COLOUR, FORWARD_COLOUR, EXACT_COLOUR = OKABE_ITO[5], OKABE_ITO[4], OKABE_ITO[7]  # vermillion, blue, black


def gap_vs_kl_figure(kl: Tensor, gap: Tensor, labels: Sequence[str], *, title: str) -> go.Figure:
    """Scatter of gap = log p_θ(x) − L(q) (B, K) against KL(q || p_θ(z|x)) (B, K), one colour per x, with y = x."""
    check_same_shape(("kl", "gap"), as_tensor("kl", kl, ndim=2), as_tensor("gap", gap, ndim=2))
    check_sequence("labels", labels)
    check_text("title", title)
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


def _normal_pdf(axis: np.ndarray, mean: float, log_var: float) -> list[float]:
    var = math.exp(log_var)
    return list(np.round(np.exp(-0.5 * (axis - mean) ** 2 / var) / math.sqrt(2 * math.pi * var), 5))


def _rounded(values: np.ndarray, decimals: int) -> list[float]:
    """Plain JSON numbers for a page: rounded, and whole numbers (mostly 0) written without a decimal point."""
    out = np.round(np.asarray(values, dtype=np.float64).reshape(-1), decimals)
    return [int(v) if v == int(v) else float(v) for v in out]


def kl_directions_explorer(grid: LatentGrid, fits: Sequence[KLDirectionFit], *,
                           window: tuple[float, float, float, float], stride: int = 2, active: int = 0,
                           title: str) -> Explorer:
    """The posterior p_θ(z|x) (shaded, left) with the reverse-KL fit and the forward-KL fit (1σ and 2σ ellipses),
    and the z₁-marginals of all three (right); a slider steps through the fits (one per x, over x₁), as an
    :class:`vae_lib.explorer.Explorer` whose program looks the fit up (every fit travels with the page).

    ``window`` = (z₁ low, z₁ high, z₂ low, z₂ high) crops the grid, and ``stride`` thins the posterior's bitmap (its
    values relative to the peak, 3 decimals), for page weight; the ellipses are computed from each fit's mean and
    log variance by the explorer's program.
    """
    check_instance("grid", grid, LatentGrid, "a vae_lib.quadrature.LatentGrid")
    check_sequence("fits", fits)
    check_numbers("window", window)
    check_count("stride", stride)
    check_int("active", active)
    check_text("title", title)
    if not fits:
        raise ValueError("fits must hold at least one KLDirectionFit")
    stride = check_count("stride", stride)
    if not 0 <= active < len(fits):
        raise ValueError(f"active must index one of the {len(fits)} fits, got {active}")
    n = grid.shape[0]
    axis = _np(grid.axes[0]).astype(np.float64)
    step = axis[1] - axis[0]
    cols = np.where((axis >= window[0]) & (axis <= window[1]))[0][::stride]
    rows = np.where((axis >= window[2]) & (axis <= window[3]))[0][::stride]
    line = np.where((axis >= window[0]) & (axis <= window[1]))[0]  # the 1-D curves keep the full resolution
    z1 = _rounded(axis[line], 4)

    def entry(fit: KLDirectionFit) -> dict:
        dens = np.exp(_np(fit.log_posterior).astype(np.float64)).reshape(n, n)  # [row z₂, column z₁]
        crop = dens[np.ix_(rows, cols)]  # row 0 at the lowest z₂
        marginal = dens.sum(0) * step  # p(z₁|x) on the axis
        out = {"posterior": {"rows": len(rows), "cols": len(cols), "d": _rounded(crop / crop.max(), 3)},  # row-major,
               "marginal": {"x": z1, "y": _rounded(marginal[line], 5)},
               "x1_value": float(fit.x[0]), "x2_value": float(fit.x[1]),
               "reverse_kl": float(fit.reverse_kl), "forward_kl": float(fit.forward_kl)}
        for key, m, v in (("rev", fit.reverse_mean, fit.reverse_log_var),
                          ("fwd", fit.forward_mean, fit.forward_log_var)):
            out[f"{key}_mean"] = [float(t) for t in m]
            out[f"{key}_log_var"] = [float(t) for t in v]
            out[f"{key}_marginal"] = {"x": z1, "y": _normal_pdf(axis[line], float(m[0]), float(v[0]))}
        return out

    table = {str(k): entry(f) for k, f in enumerate(fits)}
    if len(fits) > 1:
        control = Slider("x1", "x₁", 0, len(fits) - 1, 1, active, digits=0, snap=True,
                         labels=tuple(f"{float(f.x[0]):g}" for f in fits))
    else:
        control = Choice("x1", "x₁", (f"{float(fits[0].x[0]):g}",))
    program = [Lookup(("x1",), table)]
    for key in ("rev", "fwd"):
        program += [Ellipse(f"{key}_mean", f"{key}_log_var", 1.0, f"{key}_ellipse1"),
                    Ellipse(f"{key}_mean", f"{key}_log_var", 2.0, f"{key}_ellipse2")]
    half_x, half_y = stride * step / 2, stride * step / 2
    extent = (float(axis[cols[0]] - half_x), float(axis[cols[-1]] + half_x),
              float(axis[rows[0]] - half_y), float(axis[rows[-1]] + half_y))
    width = 460  # the plot area keeps z₁ and z₂ to one scale (margins: 64 px across, 74 px down)
    height = int(round((width - 64) * (window[3] - window[2]) / (window[1] - window[0]))) + 74
    posterior = Plane("posterior p(z|x) (shaded) and the two Gaussian fits", "z₁", (window[0], window[1]), "z₂",
                      (window[2], window[3]),
                      background=Background(extent, (0.0, 1.0), output="posterior", shape=(len(rows), len(cols))),
                      layers=(Curve("rev_ellipse1", REVERSE_COLOUR, "reverse KL(q‖p): q = argmax ELBO", width=3),
                              Curve("rev_ellipse2", REVERSE_COLOUR, dash="2 4", width=3),
                              Curve("fwd_ellipse1", FORWARD_COLOUR, "forward KL(p‖q): moment matching", width=3),
                              Curve("fwd_ellipse2", FORWARD_COLOUR, dash="2 4", width=3)),
                      width=width, height=max(height, 200))
    ymax = max(max(entry_["marginal"]["y"] + entry_["rev_marginal"]["y"] + entry_["fwd_marginal"]["y"])
               for entry_ in table.values())
    marginals = Plane("marginal over z₁", "z₁", (window[0], window[1]), "density", (0.0, float(f"{1.05 * ymax:.3g}")),
                      layers=(Curve("marginal", EXACT_COLOUR, "posterior marginal p(z₁|x)", width=3),
                              Curve("rev_marginal", REVERSE_COLOUR, "reverse-KL fit", width=3),
                              Curve("fwd_marginal", FORWARD_COLOUR, "forward-KL fit", dash="6 4", width=3)),
                      width=width, height=max(height, 200))
    readout = ("x = ({x1_value:.2f}, {x2_value:.2f}):  KL(q_rev ‖ p) = {reverse_kl:.3f},  "
               "KL(p ‖ q_fwd) = {forward_kl:.3f} nats")
    caption = (f"{title}. Move the slider to change x₁: left, the posterior (shaded) with the reverse-KL fit "
               "(vermillion) and the forward-KL fit (blue), 1σ solid and 2σ dotted; right, their marginals over z₁. "
               "The readout gives the KL each fit minimises.")
    return Explorer(title, caption, (control,), (posterior, marginals), tuple(program), readout)


def iwae_curve_figure(sample_sizes: Sequence[int], curves: Mapping[str, tuple[Tensor, Tensor]], log_px: float, *,
                      y_range: tuple[float, float] | None = None, title: str) -> go.Figure:
    """L_K − log p_θ(x) (mean ± 2 standard errors over repetitions) against K for each proposal q."""
    check_numbers("sample_sizes", sample_sizes)
    check_mapping("curves", curves)
    check_real("log_px", log_px)
    if y_range is not None:
        check_range("y_range", y_range)
    check_text("title", title)
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
    check_tensor_mapping("values", values, nonempty=True)
    check_text("title", title)
    check_text("x_title", x_title)
    check_count("nbins", nbins, maximum=10_000)
    fig = go.Figure()
    arrays = [_np(torch.as_tensor(v)) for v in values.values()]
    lo, hi = min(float(a.min()) for a in arrays), max(float(a.max()) for a in arrays)
    edges = np.linspace(lo, hi, nbins + 1) if hi > lo else np.array([lo, lo + 1.0])  # shared: comparable heights
    for k, (name, a) in enumerate(zip(values, arrays, strict=True)):
        colour = [OKABE_ITO[4], OKABE_ITO[5], OKABE_ITO[2], OKABE_ITO[0]][k % 4]
        fig.add_trace(histogram_bars(a, edges, name=f"{name} (mean {a.mean():.2f})", colour=colour, opacity=0.6))
        fig.add_vline(x=float(a.mean()), line=dict(color=colour, dash="dash", width=2))
    fig.update_layout(barmode="overlay", title=title, height=420, legend=dict(orientation="h", y=-0.25))
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text="number of test images")
    return fig
