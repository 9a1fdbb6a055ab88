"""The posterior explorer: its ELBO against the models' own quadrature KL, the ascent, the embedded grid and the live
widget. The quadrature itself (against closed forms and Monte Carlo): tests/test_quadrature.py. The explorer in the
page (Chromium) against Explorer.evaluate: tests/test_explorers_static.py."""

from __future__ import annotations

import base64
import math

import numpy as np
import pytest
import torch

import vae_lib
from vae_lib import quadrature
from vae_lib.explorer import Explorer
from vae_lib.posterior_explorer import EXPLORER_ASCENT, ascend_elbo, posterior_explorer
from vae_lib.quadrature import GaussianFitConfig, latent_grid, log_joint_on_grid

FOLDED_XS = [torch.tensor([1.0, 0.5]), torch.tensor([-0.5, -0.5])]


@pytest.fixture(scope="module")
def folded():
    return vae_lib.folded_model(sigma=0.3)


@pytest.fixture(scope="module")
def grid():
    return latent_grid(4.0, 121)  # the explorer's default grid


@pytest.fixture(scope="module")
def log_joint(folded, grid):
    return log_joint_on_grid(folded, torch.stack(FOLDED_XS), grid)  # (G, 2)


def ascent(steps: int) -> GaussianFitConfig:
    return GaussianFitConfig(steps=steps, learning_rate=EXPLORER_ASCENT.learning_rate, decay_to=1.0)


def diag_q(mean, log_sigma):
    mean = torch.as_tensor(mean, dtype=torch.float64)
    log_sigma = torch.as_tensor(log_sigma, dtype=torch.float64)
    return vae_lib.diag_gaussian(mean[None], 2 * log_sigma[None])  # batch (1,), log variance = 2 log σ


@pytest.mark.parametrize("index", [0, 1])
@pytest.mark.parametrize("mean, log_sigma", [((0.5, 0.0), (-1.0, -1.0)), ((1.0, 0.4), (-1.8, -1.2)),
                                             ((-0.2, -0.6), (-0.7, -1.5))])
def test_explorer_elbo_equals_log_px_minus_the_models_kl(folded, index, mean, log_sigma):
    """The readout's ELBO on the explorer's grid = log p(x) − KL(q || p(z|x)), the KL from the model's own (finer,
    wider) quadrature grid."""
    explorer = posterior_explorer(folded, FOLDED_XS, ["bimodal", "unimodal"])
    x = FOLDED_XS[index][None]
    values = explorer.evaluate({"x": index, "mu1": mean[0], "mu2": mean[1], "log_sigma1": log_sigma[0],
                                "log_sigma2": log_sigma[1]})
    elbo = values["elbo"]
    expected = (folded.log_marginal(x) - folded.kl_to_posterior(x, diag_q(mean, log_sigma))).item()
    assert elbo == pytest.approx(expected, abs=1e-5)


@pytest.mark.slow
def test_ascent_raises_the_elbo_and_reaches_the_exact_posterior_on_the_linear_model():
    weight = torch.tensor([[2.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    linear = vae_lib.LinearGaussianModel(weight, torch.zeros(2, dtype=torch.float64), sigma=0.7)
    x = torch.tensor([[1.0, -0.5]], dtype=torch.float64)
    g = latent_grid(5.0, 161)
    lj = log_joint_on_grid(linear, x, g)
    result = ascend_elbo(lj, g, torch.tensor([0.5, 0.0]), torch.tensor([-1.0, -1.0]), ascent(200))
    post = linear.posterior(x)
    assert result.elbo.shape == (201,) and result.elbo[-1] > result.elbo[0]
    assert torch.allclose(result.mean, post.mean[0], atol=1e-3)
    assert (quadrature.log_marginal(lj, g)[0] - result.elbo[-1]).item() < 1e-5
    # the recorded ELBO is the quadrature ELBO of the q it ends on
    end = quadrature.elbo(lj, g, vae_lib.diag_gaussian(result.mean[None], 2 * result.log_sigma[None]))
    assert result.elbo[-1].item() == end.item()


def test_ascent_on_the_bimodal_posterior_stops_near_log_2(grid, log_joint):
    """Two well separated mirror-image modes: the best single Gaussian covers one, KL ≈ log 2."""
    result = ascend_elbo(log_joint[:, 0], grid, torch.tensor([0.5, 0.0]), torch.tensor([-1.0, -1.0]), ascent(200))
    gap = (quadrature.log_marginal(log_joint, grid)[0] - result.elbo[-1]).item()
    assert math.log(2) - 0.01 < gap < math.log(2) + 0.1
    assert result.mean[0].item() == pytest.approx(1.0, abs=0.1)


def test_explorer_embeds_the_log_joint_as_float32(folded, grid, log_joint):
    explorer = posterior_explorer(folded, FOLDED_XS, ["bimodal", "unimodal"])
    assert isinstance(explorer, Explorer)
    entry = explorer.spec()["data"]["log_joint"]
    assert entry["dtype"] == "float32" and entry["shape"] == [2, 121, 121]
    data = np.frombuffer(base64.b64decode(entry["b64"]), dtype="<f4").reshape(2, 121, 121)
    assert np.allclose(data, log_joint.T.reshape(2, 121, 121).numpy(), rtol=1e-6, atol=1e-4)  # rows z₂, columns z₁
    assert [c.name for c in explorer.controls] == ["x", "mu1", "mu2", "log_sigma1", "log_sigma2", "ascend"]
    values = explorer.evaluate()  # the start: preset 0, q = N((0.5, 0), diag e^(−2))
    elbo = quadrature.elbo(log_joint[:, :1], grid, diag_q((0.5, 0.0), (-1.0, -1.0))).item()
    assert values["elbo"] == pytest.approx(elbo, abs=1e-4)
    ex = np.asarray(values["ellipse1"]["x"])
    assert ex.max() == pytest.approx(0.5 + math.exp(-1.0)) and ex.min() == pytest.approx(0.5 - math.exp(-1.0))


def test_live_explorer_updates_the_readout_and_runs_the_ascent(folded, grid, log_joint):
    widget = posterior_explorer(folded, FOLDED_XS, ["bimodal", "unimodal"], ascent=ascent(20)).live()
    values = widget.set(mu1=1.0)
    elbo = quadrature.elbo(log_joint[:, :1], grid, diag_q((1.0, 0.0), (-1.0, -1.0))).item()
    assert values["elbo"] == pytest.approx(elbo, abs=1e-10)
    values = widget.set(x=1)
    post = quadrature.log_posterior(log_joint, grid)[1].exp().reshape(121, 121)
    assert np.allclose(np.asarray(values["posterior"]["d"]).reshape(121, 121), (post / post.max()).numpy())
    before = values["elbo"]
    q = widget.ascend(dict(widget.state))
    after = widget.set(**q)["elbo"]
    assert after > before


@pytest.mark.parametrize("call, match", [
    (lambda g: ascend_elbo(torch.zeros(g.points.shape[0], 2), g, torch.zeros(2), torch.zeros(2)), "log_joint"),
    (lambda g: ascend_elbo(torch.zeros(g.points.shape[0]), g, torch.zeros(3), torch.zeros(2)), "mean"),
    (lambda g: ascend_elbo(torch.zeros(g.points.shape[0]), g, torch.zeros(2), torch.zeros(2, 2)), "log_sigma"),
    (lambda g: ascend_elbo(torch.zeros(g.points.shape[0]), "grid", torch.zeros(2), torch.zeros(2)), "grid"),
    (lambda g: posterior_explorer(vae_lib.arc_model(), [torch.zeros(2)], ["arc"]), "latent size"),
    (lambda g: posterior_explorer(vae_lib.folded_model(), FOLDED_XS, ["a", "b"], n_grid=2), "n_grid"),
    (lambda g: posterior_explorer(vae_lib.folded_model(), FOLDED_XS, ["a", "b"], ascent=GaussianFitConfig()),
     "decay_to"),
    (lambda g: posterior_explorer(vae_lib.folded_model(), FOLDED_XS, ["one"]), "labels"),
])
def test_bad_arguments_are_named(grid, call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call(grid)
