"""Latent-space diagnostics: the hole fraction of chapter 1, the aggregate posterior of chapter 5."""

from __future__ import annotations

import pytest
import torch

from vae_lib.latent import aggregate_posterior_log_density, hole_fraction


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


def test_aggregate_posterior_is_the_equal_mixture_of_the_posteriors():
    g = torch.Generator().manual_seed(0)
    mean, log_var = torch.randn(5, 2, generator=g), torch.randn(5, 2, generator=g) * 0.3
    z = torch.randn(7, 2, generator=g) * 2
    from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal
    exact = MixtureSameFamily(Categorical(probs=torch.full((5,), 0.2)),
                              Independent(Normal(mean, torch.exp(0.5 * log_var)), 1)).log_prob(z)
    torch.testing.assert_close(aggregate_posterior_log_density(mean, log_var, z), exact)
    # a 1-D density integrates to one
    grid = torch.linspace(-12, 12, 4001)[:, None]
    d = aggregate_posterior_log_density(mean[:, :1], log_var[:, :1], grid).exp()
    assert torch.trapezoid(d, grid[:, 0]).item() == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="log_var"):
        aggregate_posterior_log_density(mean, log_var[:, :1], z)
    with pytest.raises(ValueError, match="latent size"):
        aggregate_posterior_log_density(mean, log_var, z[:, :1])
