"""Figures of chapter 4 ("The gradient tricks"). Each builder returns a figure or an explorer, never shows it.

* :func:`estimator_explorer` — the estimator explorer, one :class:`vae_lib.explorer.Explorer`: histograms of both
  estimators of ∂/∂μ E[f(u)] for each K side by side, a menu picks f and a slider σ. In the page every setting is
  precomputed (a :class:`vae_lib.explorer.Lookup`); live in a kernel (``.live()``) each move draws fresh Monte Carlo
  estimates.
* :func:`gradient_histogram_figure` — histograms of a few sets of gradient estimates against the exact value.
* :func:`training_curves_figure` — training loss per epoch of several runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from torch import Tensor

from ._checks import check_count, check_mapping, check_numbers, check_real, check_tensor_mapping, check_text
from .estimators import TEST_FUNCTIONS, EstimatorComparison, exact_gradient, reparameterized_gradient
from .estimators import score_function_gradient as _score_function_gradient
from .explorer import Bars, Choice, Explorer, Lookup, Plane, Slider, VLine
from .figures import OKABE_ITO, histogram_bars

__all__ = ["estimator_explorer", "gradient_histogram_figure", "training_curves_figure"]

SCORE_COLOUR = OKABE_ITO[0]  # orange #E69F00
REPARAM_COLOUR = OKABE_ITO[4]  # blue #0072B2
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


def _ratio_text(ratio: float) -> str:
    """Var(score) / Var(reparam.) as the readout shows it: two significant digits, no exponent."""
    return f"{ratio:,.0f}" if ratio >= 100 else f"{ratio:.2g}"


def _setting(name: str, sigma: float, exact: float, estimates: Mapping[int, tuple[Tensor, Tensor]],
             bins: int) -> dict:
    """The values the explorer draws for one (f, σ): per K the two histograms (bars), the variance ratio and the
    panel's axis ranges; the exact gradient."""
    out: dict = {"f_name": name, "sigma_value": float(sigma), "exact": float(f"{exact:.6g}")}
    for k, (score, reparam) in estimates.items():
        x, y_s, y_r, w = _histograms(score, reparam, bins)
        ratio = float(score.var() / reparam.var())
        lo, hi = min(x[0] - w / 2, exact), max(x[-1] + w / 2, exact)
        pad = 0.04 * (hi - lo)
        out.update({f"score_K{k}": {"x": x, "y": y_s, "width": w}, f"reparam_K{k}": {"x": x, "y": y_r, "width": w},
                    f"ratio_K{k}": float(f"{ratio:.4g}"), f"ratio_text_K{k}": _ratio_text(ratio),
                    f"ranges_K{k}": {"x": _sig([lo - pad, hi + pad]), "y": [0.0, _sig([1.08 * max(y_s + y_r)])[0]]}})
    return out


def estimator_explorer(comparison: EstimatorComparison, *, bins: int = 40, start_function: str | None = None,
                       start_sigma: float | None = None, live_repeats: int = 1000, seed: int = 0,
                       title: str = "Estimator explorer: score function against reparameterization") -> Explorer:
    """The estimator explorer over a precomputed :class:`vae_lib.estimators.EstimatorComparison`.

    One panel per sample count K: histograms (probability density over the repetitions) of the score-function
    (REINFORCE, orange) and reparameterization (blue) estimates of ∂/∂μ E[f(u)], the exact value as a dashed black
    line, and the variance ratios in the readout; a menu chooses f, a slider σ (over the comparison's σ values, which
    need not be evenly spaced). Each panel's axes follow the setting. In the page the histograms of every (f, σ) are
    precomputed (4 significant digits); ``.live()`` draws ``live_repeats`` fresh estimates per K on every move
    (generator seeded with ``seed``).
    """
    if not isinstance(comparison, EstimatorComparison):
        raise TypeError(f"comparison must be an EstimatorComparison, got {type(comparison).__name__}")
    bins = check_count("bins", bins, minimum=2)
    live_repeats = check_count("live_repeats", live_repeats, minimum=2)
    functions, sigmas, counts = list(comparison.functions), list(comparison.sigmas), list(comparison.sample_counts)
    f0 = functions.index(start_function) if start_function in functions else 0
    s0 = sigmas.index(start_sigma) if start_sigma in sigmas else len(sigmas) // 2
    table = {}
    for i, name in enumerate(functions):
        for j, sigma in enumerate(sigmas):
            estimates = {k: (comparison.score[(name, sigma, k)], comparison.reparam[(name, sigma, k)]) for k in counts}
            table[f"{i},{j}"] = _setting(name, sigma, comparison.exact[(name, sigma)], estimates, bins)
    generator = torch.Generator().manual_seed(seed)
    mean = torch.tensor([comparison.mean], dtype=torch.float64)

    def live(values: dict) -> dict:
        """Fresh estimates for the state (a kernel): ``live_repeats`` repetitions of both estimators per K."""
        name, sigma = functions[int(values["f#index"])], sigmas[int(values["sigma#index"])]
        tf, s = TEST_FUNCTIONS[name], torch.tensor([float(sigma)], dtype=torch.float64)
        with torch.enable_grad():  # the explorer runs its program under no_grad; the estimators differentiate
            exact = float(exact_gradient(tf.expectation, mean, s)[0][0])
            estimates = {k: (_score_function_gradient(tf.f, mean, s, k, repeats=live_repeats,
                                                      generator=generator)[0][:, 0],
                             reparameterized_gradient(tf.f, mean, s, k, repeats=live_repeats,
                                                      generator=generator)[0][:, 0])
                         for k in counts}
        return _setting(name, sigma, exact, estimates, bins)

    start = table[f"{f0},{s0}"]
    panels = []
    for n, k in enumerate(counts):
        first = n == 0
        ranges = start[f"ranges_K{k}"]
        panels.append(Plane(
            f"K = {k} sample{'s' if k > 1 else ''} per estimate", "estimate of ∂/∂μ E[f(u)]", tuple(ranges["x"]),
            "density over repetitions", tuple(ranges["y"]),
            layers=(Bars(f"score_K{k}", SCORE_COLOUR, "score function (REINFORCE)" if first else ""),
                    Bars(f"reparam_K{k}", REPARAM_COLOUR, "reparameterization" if first else ""),
                    VLine("exact", EXACT_COLOUR, "exact ∂/∂μ E[f(u)]" if first else "")),
            width=340, height=300, ranges=f"ranges_K{k}"))
    controls = (Choice("f", "f(u)", tuple(functions), f0),
                Slider("sigma", "σ", 0, len(sigmas) - 1, 1, s0, digits=0, snap=True,
                       labels=tuple(f"{s:g}" for s in sigmas)))
    readout = (f"f(u) = {{f_name}}, u ~ N(μ, σ²) with μ = {comparison.mean:g}, σ = {{sigma_value:.2f}}: "
               "exact ∂/∂μ E[f(u)] = {exact:.3f}\nVar(score function) / Var(reparameterization): "
               + ",  ".join(f"K = {k}: {{ratio_text_K{k}}}" for k in counts))
    repeats = next(iter(comparison.score.values())).numel()
    caption = (f"{title}. Pick f from the menu and σ with the slider: each panel shows, for K samples per estimate, "
               f"how {repeats} repeated estimates of the gradient spread around the exact value (dashed line). The "
               "score-function estimates (orange) spread much wider than the reparameterization ones (blue); the "
               "readout gives the ratio of their variances.")
    return Explorer(title, caption, controls, tuple(panels), (Lookup(("f", "sigma"), table, live),), readout)


def gradient_histogram_figure(estimates: Mapping[str, Tensor], exact: float, *, title: str,
                              x_title: str, bins: int = 50) -> go.Figure:
    """Histograms (density over repetitions) of several sets of gradient estimates, with the exact value."""
    check_tensor_mapping("estimates", estimates, nonempty=True)
    check_real("exact", exact)
    check_text("title", title)
    check_text("x_title", x_title)
    check_count("bins", bins, maximum=10_000)
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
        fig.add_trace(histogram_bars(v, np.linspace(lo, hi, bins + 1), name=name, colour=colours[k % 4],
                                     density=True, opacity=0.6))
    fig.add_vline(x=exact, line=dict(color=EXACT_COLOUR, dash="dash", width=2), annotation_text="exact",
                  annotation_position="top right")
    fig.update_layout(barmode="overlay", title=title, height=420, plot_bgcolor="white",
                      legend=dict(orientation="h", y=-0.25))
    fig.update_xaxes(title_text=x_title, showline=True, linecolor="#888888", gridcolor="#eeeeee")
    fig.update_yaxes(title_text="density over repetitions", showline=True, linecolor="#888888", gridcolor="#eeeeee")
    return fig


def training_curves_figure(losses: Mapping[str, Sequence[float]], *, title: str,
                           y_title: str = "training loss −ELBO per image  [nats]") -> go.Figure:
    """One line per run: the mean training loss after each epoch."""
    for k, v in check_mapping("losses", losses).items():
        check_numbers(f"losses[{k!r}]", v)
    check_text("title", title)
    check_text("y_title", y_title)
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
