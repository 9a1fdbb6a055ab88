"""Figure builders of chapter 8 ("Closing the gap"), IWAE half. Each returns a plotly ``Figure`` and never shows it.

* :func:`gradient_snr_figure` — the signal-to-noise ratio of the encoder's gradient of L_K w.r.t. q's mean against
  K, one curve per estimator (IWAE, DReG), with the slopes K^(−1/2) and K^(+1/2) for reference (Rainforth et al.,
  2018).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go

from ._checks import check_instance, check_mapping, check_text
from .figures import DIGIT_SYMBOLS, OKABE_ITO
from .iwae import GradientSNR

__all__ = ["gradient_snr_figure"]


def gradient_snr_figure(results: Mapping[str, GradientSNR], *, title: str) -> go.Figure:
    """The median over q's mean coordinates μ_1 … μ_L of |E g| / sd(g) against K, log-log, one curve per estimator.

    Dotted reference lines through each curve's first point have slopes −½ (SNR ∝ 1/√K, IWAE's encoder gradient
    in Rainforth et al.'s analysis) and +½ (∝ √K). (The log σ² coordinates carry smaller signals, which fall below
    what a few thousand repeats resolve at moderate K.)
    """
    check_mapping("results", results)
    if not results:
        raise ValueError("results must hold at least one estimator's GradientSNR")
    check_text("title", title)
    fig = go.Figure()
    colours = [OKABE_ITO[5], OKABE_ITO[4], OKABE_ITO[2], OKABE_ITO[0]]
    for k, (name, result) in enumerate(results.items()):
        check_instance(f"results[{name!r}]", result, GradientSNR, "a vae_lib.iwae.GradientSNR")
        ks = np.asarray(result.ks, dtype=float)
        latent = result.snr.shape[1] // 2
        snr = result.snr[:, :latent].double().quantile(0.5, dim=1).numpy()  # (len(ks),): the μ coordinates' median
        colour = colours[k % len(colours)]
        fig.add_trace(go.Scatter(x=ks, y=snr, mode="lines+markers", name=name, line=dict(color=colour, width=3),
                                 marker=dict(symbol=DIGIT_SYMBOLS[k], size=9),
                                 hovertemplate="K = %{x}<br>median SNR = %{y:.3g}<extra></extra>"))
        for slope, label in ((-0.5, "∝ 1/√K"), (0.5, "∝ √K")):
            fig.add_trace(go.Scatter(x=ks, y=snr[0] * (ks / ks[0]) ** slope, mode="lines", name=f"{label}",
                                     line=dict(color=colour, dash="dot", width=1.5), showlegend=k == 0,
                                     legendgroup=label, hoverinfo="skip"))
    fig.update_xaxes(type="log", title_text="number of importance samples K")
    fig.update_yaxes(type="log", title_text="signal-to-noise ratio |E g| / sd(g)  (median over μ)")
    fig.update_layout(title=title, height=450, legend=dict(orientation="h", y=-0.25))
    return fig
