"""Latent-space diagnostics: the hole fraction of chapter 1."""

from __future__ import annotations

import pytest
import torch

from vae_lib.latent import hole_fraction


def test_hole_fraction_on_a_regular_grid_of_codes():
    axis = torch.arange(10.0)
    codes = torch.cartesian_prod(axis, axis)  # spacing 1
    inside = codes + 0.4  # within 0.4·√2 < 3 of a code
    far = torch.tensor([[30.0, 30.0], [-5.0, 4.0], [4.5, 4.5]])  # two far away, one inside
    assert hole_fraction(codes, inside) == 0.0
    assert hole_fraction(codes, far) == pytest.approx(2 / 3)
    assert hole_fraction(codes, far, factor=100.0) == 0.0


def test_hole_fraction_is_scale_free():
    gen = torch.Generator().manual_seed(0)
    codes, z = torch.randn(200, 2, generator=gen), 3 * torch.randn(300, 2, generator=gen)
    assert hole_fraction(codes, z) == pytest.approx(hole_fraction(7.5 * codes, 7.5 * z))


@pytest.mark.parametrize("codes, z, match", [
    (torch.zeros(1, 2), torch.zeros(3, 2), "codes"),
    (torch.zeros(5, 2), torch.zeros(3, 3), "latent size"),
    (torch.zeros(5, 2), torch.full((3, 2), float("nan")), "z"),
])
def test_hole_fraction_rejects_bad_input(codes, z, match):
    with pytest.raises(ValueError, match=match):
        hole_fraction(codes, z)
