"""vae_lib.pitfalls.rate_bound: the largest rate an optimum of mean-MSE + w·KL can carry (chapter 5)."""

from __future__ import annotations

import math

import pytest
import torch

from vae_lib.pitfalls import implied_sigma, rate_bound


def test_rate_bound_is_mean_pixel_variance_over_w() -> None:
    # pixel 1 takes 0 and 1 (variance 1/4), pixel 2 is constant (variance 0): V = 1/8
    x = torch.tensor([[0.0, 0.5], [1.0, 0.5]], dtype=torch.float64)
    assert rate_bound(x, 1.0) == pytest.approx(0.125, abs=1e-15)
    assert rate_bound(x, 0.01) == pytest.approx(12.5, abs=1e-12)


def test_rate_bound_does_not_depend_on_the_number_of_pixels() -> None:
    # repeating every pixel 100 times leaves the bound unchanged, while the implied sigma grows like sqrt(n)
    x = torch.rand(50, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    wide = x.repeat_interleave(100, dim=1)  # (50, 800)
    assert rate_bound(wide, 0.1) == pytest.approx(rate_bound(x, 0.1), rel=1e-12)
    assert implied_sigma(0.1, 800) == pytest.approx(math.sqrt(100) * implied_sigma(0.1, 8), rel=1e-12)


def test_rate_bound_refuses_bad_input() -> None:
    x = torch.zeros(3, 4)
    with pytest.raises(ValueError, match="kld_weight"):
        rate_bound(x, 0.0)
    with pytest.raises(ValueError, match="x"):
        rate_bound(torch.zeros(1, 4), 1.0)
