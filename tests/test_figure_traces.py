"""Histograms and box plots drawn with bar and scatter traces (the book's plotly.js bundle has no histogram or box
trace type): vae_lib.figures.histogram_bars bins in Python; vae_lib.figures_training.score_figure draws Tukey's
boxes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vae_lib.figures import histogram_bars
from vae_lib.figures_training import score_figure


def test_counts_are_the_values_in_each_bin_and_the_last_bin_holds_its_right_edge():
    values = [0.0, 0.1, 0.49, 0.5, 0.5, 0.99, 1.0, 1.5, -0.2]  # 1.5 and -0.2 lie outside the bins
    bars = histogram_bars(values, [0.0, 0.5, 1.0], name="v", colour="#0072B2")
    assert bars.type == "bar"
    assert list(bars.y) == [3, 4]  # [0, 0.5): 0, 0.1, 0.49; [0.5, 1]: 0.5, 0.5, 0.99, 1.0
    assert list(bars.x) == [0.25, 0.75] and list(bars.width) == [0.5, 0.5]
    assert np.asarray(bars.customdata).tolist() == [[0.0, 0.5], [0.5, 1.0]]


def test_density_is_count_over_n_times_width_and_integrates_to_the_share_inside():
    gen = torch.Generator().manual_seed(0)
    values = torch.randn(100_000, generator=gen, dtype=torch.float64)
    edges = np.linspace(-2.0, 2.0, 41)
    bars = histogram_bars(values, edges, name="v", colour="#0072B2", density=True)
    inside = float(((values >= -2) & (values <= 2)).double().mean())
    assert float(np.sum(np.asarray(bars.y, dtype=np.float64) * np.asarray(bars.width))) == pytest.approx(inside,
                                                                                                      rel=1e-6)
    # each bar against N(0, 1)'s mean density over its bin, (Φ(b) − Φ(a)) / (b − a), up to sampling noise (standard
    # deviation at most 0.0063 here: 4,000 draws in the bin at 0)
    cdf = np.array([0.5 * (1 + math.erf(e / math.sqrt(2))) for e in edges])
    assert np.max(np.abs(np.asarray(bars.y) - np.diff(cdf) / np.diff(edges))) < 0.025


@pytest.mark.parametrize(("values", "edges", "match"), [
    ([], [0.0, 1.0], "values"),
    ([0.5], [1.0], "edges"),
    ([0.5], [0.0, 1.0, 1.0], "edges"),
    ([float("nan")], [0.0, 1.0], "values"),
])
def test_bad_input_is_named(values, edges, match):
    with pytest.raises(ValueError, match=match):
        histogram_bars(values, edges, name="v", colour="#000000")


def test_score_figure_draws_quartiles_median_tukey_whiskers_and_outliers():
    scores = {"real": torch.tensor([1.0, 2, 3, 4, 5, 6, 7, 8, 9, 100, -40]), "odd": torch.tensor([0.0, 4.0])}
    fig = score_figure(scores, title="t")
    assert {t.type for t in fig.data} == {"bar", "scatter"}
    box, lines, points = fig.data[:3]
    # sorted: -40, 1 ... 9, 100 (11 values): quartiles at positions 2.5 and 7.5 (linear), median at 5
    assert (box.base[0], box.base[0] + box.x[0]) == (2.5, 7.5)
    assert list(lines.x) == [1.0, 2.5, None, 7.5, 9.0, None, 5.0, 5.0]  # whiskers: within 1.5 IQR = 7.5 of the box
    assert sorted(points.x) == [-40.0, 100.0]
    assert box.y[0] == lines.y[0] == 1 and fig.data[3].y[0] == 0  # the first group at the top
    assert list(fig.layout.yaxis.ticktext) == ["odd", "real"] and len(fig.data[5].x) == 0
