"""The posterior explorer: quadrature ELBO against Monte Carlo and the exact KL, the ascent, the embedded grid and
the live widget. The explorer in the page (Chromium) against Explorer.evaluate: tests/test_explorers_static.py."""

from __future__ import annotations

import base64
import math

import numpy as np
import pytest
import torch

import vae_lib
from vae_lib.explorer import Explorer
from vae_lib.posterior_explorer import (
    AscentConfig,
    ascend_elbo,
    log_q_on_grid,
    posterior_explorer,
    posterior_grid,
    quadrature_elbo,
)

FOLDED_XS = [torch.tensor([1.0, 0.5]), torch.tensor([-0.5, -0.5])]


@pytest.fixture(scope="module")
def folded():
    return vae_lib.folded_model(sigma=0.3)


@pytest.fixture(scope="module")
def grid(folded):
    return posterior_grid(folded, torch.stack(FOLDED_XS))


def diag_q(mean, log_sigma):
    mean = torch.as_tensor(mean, dtype=torch.float64)
    log_sigma = torch.as_tensor(log_sigma, dtype=torch.float64)
    return vae_lib.diag_gaussian(mean[None], 2 * log_sigma[None])  # batch (1,), log variance = 2 log σ


def test_log_q_on_grid_matches_torch_distributions(grid):
    mean, log_sigma = torch.tensor([0.3, -0.7]), torch.tensor([-1.2, -0.4])
    log_q = log_q_on_grid(grid, mean, log_sigma)  # (n, n): rows z2
    z1, z2 = torch.meshgrid(grid.z1, grid.z2, indexing="xy")
    expected = diag_q(mean, log_sigma).log_prob(torch.stack([z1, z2], -1).unsqueeze(-2)).squeeze(-1)
    assert torch.allclose(log_q, expected, atol=1e-12)


def test_grid_evidence_matches_the_models_fine_quadrature(folded, grid):
    assert torch.allclose(grid.log_evidence, folded.log_marginal(torch.stack(FOLDED_XS)), atol=1e-6)
    post = grid.log_posterior().exp().sum((1, 2)) * grid.cell_area
    assert torch.allclose(post, torch.ones(2, dtype=torch.float64), atol=1e-9)


def test_grid_evidence_is_exact_on_the_linear_gaussian_model():
    weight = torch.tensor([[1.5, 0.0], [0.0, 0.8], [0.5, -0.3]], dtype=torch.float64)
    linear = vae_lib.LinearGaussianModel(weight, torch.zeros(3, dtype=torch.float64), sigma=0.6)
    x = torch.tensor([[0.7, -0.4, 0.2]], dtype=torch.float64)
    g = posterior_grid(linear, x, bound=6.0, n_grid=161)
    assert g.log_evidence.item() == pytest.approx(linear.log_marginal(x).item(), abs=1e-8)


@pytest.mark.parametrize("index", [0, 1])
@pytest.mark.parametrize("mean, log_sigma", [((0.5, 0.0), (-1.0, -1.0)), ((1.0, 0.4), (-1.8, -1.2)),
                                             ((-0.2, -0.6), (-0.7, -1.5))])
def test_quadrature_elbo_equals_log_px_minus_the_models_kl(folded, grid, index, mean, log_sigma):
    """ELBO = log p(x) − KL(q || p(z|x)), the KL from the model's own (finer, wider) quadrature."""
    x = FOLDED_XS[index][None]
    elbo = quadrature_elbo(grid, index, torch.tensor(mean), torch.tensor(log_sigma)).item()
    expected = (folded.log_marginal(x) - folded.kl_to_posterior(x, diag_q(mean, log_sigma))).item()
    assert elbo == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("index", [0, 1])
def test_quadrature_elbo_matches_monte_carlo_elbo(folded, grid, index):
    mean, log_sigma = (0.8, 0.3), (-1.5, -1.0)
    x = FOLDED_XS[index][None]
    q = diag_q(mean, log_sigma)
    gen = torch.Generator().manual_seed(0)
    mc = vae_lib.elbo_joint_plus_entropy(x, folded, q, 200_000, generator=gen).item()
    lw = vae_lib.log_importance_weights(x, folded, q, 200_000, generator=torch.Generator().manual_seed(1))
    se = lw.std().item() / math.sqrt(200_000)
    elbo = quadrature_elbo(grid, index, torch.tensor(mean), torch.tensor(log_sigma)).item()
    assert abs(elbo - mc) < 5 * se + 1e-6


def test_elbo_is_below_the_evidence_and_touches_it_at_a_gaussian_posterior():
    """Jensen: L(q) ≤ log p(x), with equality when q is the exact (here diagonal) posterior."""
    weight = torch.tensor([[2.0, 0.0], [0.0, 1.0]], dtype=torch.float64)  # orthogonal columns: diagonal posterior
    linear = vae_lib.LinearGaussianModel(weight, torch.zeros(2, dtype=torch.float64), sigma=0.7)
    x = torch.tensor([[1.0, -0.5]], dtype=torch.float64)
    g = posterior_grid(linear, x, bound=5.0, n_grid=161)
    post = linear.posterior(x)
    mean, log_sigma = post.mean[0], 0.5 * torch.log(torch.diagonal(post.covariance_matrix[0]))
    at_posterior = quadrature_elbo(g, 0, mean, log_sigma).item()
    assert at_posterior == pytest.approx(linear.log_marginal(x).item(), abs=1e-8)
    for shift in (0.1, 0.5):
        assert quadrature_elbo(g, 0, mean + shift, log_sigma - shift).item() < at_posterior - 1e-4


def test_gradient_of_quadrature_elbo_is_zero_at_the_exact_posterior():
    weight = torch.tensor([[2.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    linear = vae_lib.LinearGaussianModel(weight, torch.zeros(2, dtype=torch.float64), sigma=0.7)
    x = torch.tensor([[1.0, -0.5]], dtype=torch.float64)
    g = posterior_grid(linear, x, bound=5.0, n_grid=161)
    post = linear.posterior(x)
    params = torch.stack([post.mean[0], 0.5 * torch.log(torch.diagonal(post.covariance_matrix[0]))])
    params.requires_grad_(True)
    quadrature_elbo(g, 0, params[0], params[1]).backward()
    assert params.grad.abs().max().item() < 1e-6


@pytest.mark.slow
def test_ascent_raises_the_elbo_and_reaches_the_exact_posterior_on_the_linear_model():
    weight = torch.tensor([[2.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    linear = vae_lib.LinearGaussianModel(weight, torch.zeros(2, dtype=torch.float64), sigma=0.7)
    x = torch.tensor([[1.0, -0.5]], dtype=torch.float64)
    g = posterior_grid(linear, x, bound=5.0, n_grid=161)
    result = ascend_elbo(g, 0, torch.tensor([0.5, 0.0]), torch.tensor([-1.0, -1.0]), AscentConfig(steps=200))
    post = linear.posterior(x)
    assert result.elbo[-1] > result.elbo[0]
    assert torch.allclose(result.mean, post.mean[0], atol=1e-3)
    assert (g.log_evidence[0] - result.elbo[-1]).item() < 1e-5


def test_ascent_on_the_bimodal_posterior_stops_near_log_2(grid):
    """Two well separated mirror-image modes: the best single Gaussian covers one, KL ≈ log 2."""
    result = ascend_elbo(grid, 0, torch.tensor([0.5, 0.0]), torch.tensor([-1.0, -1.0]), AscentConfig(steps=200))
    gap = (grid.log_evidence[0] - result.elbo[-1]).item()
    assert math.log(2) - 0.01 < gap < math.log(2) + 0.1
    assert result.mean[0].item() == pytest.approx(1.0, abs=0.1)


def test_explorer_embeds_the_log_joint_as_float32(folded, grid):
    explorer = posterior_explorer(folded, FOLDED_XS, ["bimodal", "unimodal"])
    assert isinstance(explorer, Explorer)
    entry = explorer.spec()["data"]["log_joint"]
    assert entry["dtype"] == "float32" and entry["shape"] == [2, 121, 121]
    data = np.frombuffer(base64.b64decode(entry["b64"]), dtype="<f4").reshape(2, 121, 121)
    assert np.allclose(data, grid.log_joint.numpy(), rtol=1e-6, atol=1e-4)
    assert [c.name for c in explorer.controls] == ["x", "mu1", "mu2", "log_sigma1", "log_sigma2", "ascend"]
    values = explorer.evaluate()  # the start: preset 0, q = N((0.5, 0), diag e^(−2))
    elbo = quadrature_elbo(grid, 0, torch.tensor([0.5, 0.0]), torch.tensor([-1.0, -1.0])).item()
    assert values["elbo"] == pytest.approx(elbo, abs=1e-4)
    ex = np.asarray(values["ellipse1"]["x"])
    assert ex.max() == pytest.approx(0.5 + math.exp(-1.0)) and ex.min() == pytest.approx(0.5 - math.exp(-1.0))


def test_live_explorer_updates_the_readout_and_runs_the_ascent(folded, grid):
    widget = posterior_explorer(folded, FOLDED_XS, ["bimodal", "unimodal"], ascent=AscentConfig(steps=20)).live()
    values = widget.set(mu1=1.0)
    elbo = quadrature_elbo(grid, 0, torch.tensor([1.0, 0.0], dtype=torch.float64),
                           torch.tensor([-1.0, -1.0], dtype=torch.float64)).item()
    assert values["elbo"] == pytest.approx(elbo, abs=1e-10)
    values = widget.set(x=1)
    post = grid.log_posterior()[1].exp()
    assert np.allclose(np.asarray(values["posterior"]["d"]).reshape(121, 121), (post / post.max()).numpy())
    before = values["elbo"]
    q = widget.ascend(dict(widget.state))
    after = widget.set(**q)["elbo"]
    assert after > before


@pytest.mark.parametrize("call, match", [
    (lambda g: quadrature_elbo(g, 5, torch.zeros(2), torch.zeros(2)), "index"),
    (lambda g: quadrature_elbo(g, 0, torch.zeros(3), torch.zeros(2)), "mean"),
    (lambda g: log_q_on_grid(g, torch.zeros(2), torch.zeros(2, 2)), "log_sigma"),
    (lambda g: posterior_grid(vae_lib.arc_model(), torch.zeros(1, 2)), "2-D latent"),
    (lambda g: posterior_grid(vae_lib.folded_model(), torch.zeros(1, 2), n_grid=2), "n_grid"),
    (lambda g: posterior_explorer(vae_lib.folded_model(), FOLDED_XS, ["one"]), "labels"),
])
def test_bad_arguments_are_named(grid, call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call(grid)
