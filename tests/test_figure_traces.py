"""What the browser would otherwise compute, done in Python once: histograms and box plots drawn with bar and scatter
traces (the book's plotly.js bundle has no histogram or box trace type): vae_lib.figures.histogram_bars bins in
Python; vae_lib.figures_training.score_figure draws Tukey's boxes; contour labels placed by
vae_lib.figures.toy_density_figure (plotly's own ``showlabels`` measures candidate places in the page)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import vae_lib
from vae_lib.figures import _contour_label_positions, histogram_bars, toy_density_figure
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


# ---------------------------------------------------------------- contour labels


def test_contour_labels_lie_on_their_level_one_per_line_and_apart():
    arc = vae_lib.arc_model(sigma=0.25)  # log p(x) is a ring of radius 2.5: each level is two circles
    x, z = arc.sample(400, generator=torch.Generator().manual_seed(0))
    g1, g2 = torch.linspace(-4.0, 4.0, 121), torch.linspace(-3.5, 3.5, 106)
    x1, x2 = torch.meshgrid(g1, g2, indexing="xy")
    log_px = arc.log_marginal(torch.stack([x1.reshape(-1), x2.reshape(-1)], -1)).reshape(x1.shape)
    labels = toy_density_figure(x, z, g1, g2, log_px, title="t").data[1]
    assert labels.mode == "text"
    at = torch.tensor(np.stack([labels.x, labels.y], -1), dtype=torch.float64)  # (n, 2)
    level = torch.tensor([float(t) for t in labels.text], dtype=torch.float64)
    # on the level: the exact log p(x) at each label, up to the grid's interpolation error
    assert torch.allclose(arc.log_marginal(at), level, atol=0.02)
    # every level from -12 to -2 that the grid holds, once inside the ring and once outside
    assert sorted(level.tolist()) == sorted(2 * [-12.0, -10.0, -8.0, -6.0, -4.0, -2.0])
    radius = at.norm(dim=1)
    for value in level.unique():
        r = radius[level == value]
        assert (r < 2.5).sum() == 1 and (r > 2.5).sum() == 1
    # spread out: no two labels within 0.3 (a label is about 0.25 wide), none on a sample
    gaps = torch.cdist(at, at) + 10 * torch.eye(len(at), dtype=torch.float64)
    assert gaps.min() > 0.3
    assert torch.cdist(at, x.double()).min() > 0.1


def test_contour_labels_are_exact_where_bilinear_interpolation_is():
    a1, a2 = np.linspace(-2.0, 2.0, 21), np.linspace(-1.0, 3.0, 17)
    f = 2 * a1[None, :] - 3 * a2[:, None] + 1  # (17, 21), linear: bilinear interpolation is exact
    labels = _contour_label_positions((-2.0, 2.0), (-1.0, 3.0), f, [-4.0, 0.0, 2.5], np.zeros((0, 2)))
    assert [lvl for _, _, lvl in labels] == [-4.0, 0.0, 2.5]  # a line crosses each ray once: one label per level
    for x1, x2, lvl in labels:
        assert 2 * x1 - 3 * x2 + 1 == pytest.approx(lvl, abs=1e-9)
        assert -2.0 <= x1 <= 2.0 and -1.0 <= x2 <= 3.0


def test_contour_labels_need_an_evenly_spaced_grid():
    g = torch.linspace(-1.0, 1.0, 5)
    uneven = torch.tensor([-1.0, -0.9, 0.0, 0.5, 1.0])
    with pytest.raises(ValueError, match="grid_x2 must be evenly spaced"):
        toy_density_figure(torch.zeros(3, 2), torch.zeros(3, 1), g, uneven, torch.zeros(5, 5), title="t")
    with pytest.raises(ValueError, match="log_px must have shape"):
        toy_density_figure(torch.zeros(3, 2), torch.zeros(3, 1), g, g, torch.zeros(4, 5), title="t")
