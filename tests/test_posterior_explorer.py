"""The posterior explorer: quadrature ELBO against Monte Carlo and the exact KL, the ascent, the embedded
grid, the live widget, and (in Chromium) the static page's JavaScript against the Python numbers."""

from __future__ import annotations

import base64
import functools
import http.server
import math
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

import vae_lib
from vae_lib.display import BookHtmlRenderer
from vae_lib.posterior_explorer import (
    AscentConfig,
    ascend_elbo,
    live_posterior_explorer,
    log_q_on_grid,
    posterior_explorer_figure,
    posterior_grid,
    quadrature_elbo,
)

ROOT = Path(__file__).resolve().parents[1]
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


def test_static_figure_embeds_the_log_joint_as_float32(folded, grid):
    fig = posterior_explorer_figure(folded, FOLDED_XS, ["bimodal", "unimodal"])
    meta = fig.layout.meta["posterior_explorer"]
    data = np.frombuffer(base64.b64decode(meta["log_joint_b64"]), dtype=np.float32).reshape(2, 121, 121)
    assert np.allclose(data, grid.log_joint.numpy(), rtol=1e-6, atol=1e-4)
    assert [s.name for s in fig.layout.sliders] == ["mu1", "mu2", "log_sigma1", "log_sigma2"]
    assert fig.layout.sliders[0].steps[fig.layout.sliders[0].active].value == "0.5"
    readout = fig.layout.annotations[0].text
    elbo = quadrature_elbo(grid, 0, torch.tensor([0.5, 0.0]), torch.tensor([-1.0, -1.0])).item()
    assert f"ELBO L(q) = {elbo:.3f}" in readout
    ex = np.asarray(fig.data[1].x)
    assert ex.max() == pytest.approx(0.5 + math.exp(-1.0)) and ex.min() == pytest.approx(0.5 - math.exp(-1.0))


def test_live_explorer_updates_readout_and_runs_the_ascent(folded, grid):
    box = live_posterior_explorer(folded, FOLDED_XS, ["bimodal", "unimodal"], ascent=AscentConfig(steps=20))
    box.sliders[0].value = 1.0
    elbo = quadrature_elbo(grid, 0, torch.tensor([1.0, 0.0]), torch.tensor([-1.0, -1.0])).item()
    assert f"ELBO L(q) = {elbo:.3f}" in box.figure.layout.annotations[0].text
    box.preset.value = 1
    assert np.allclose(np.asarray(box.figure.data[0].z), grid.log_posterior()[1].exp().float().numpy())
    before = quadrature_elbo(grid, 1, *(torch.tensor([s.value for s in box.sliders]).split(2))).item()
    box.run()
    after = quadrature_elbo(grid, 1, *(torch.tensor([s.value for s in box.sliders]).split(2))).item()
    assert after > before


@pytest.mark.parametrize("call, match", [
    (lambda g: quadrature_elbo(g, 5, torch.zeros(2), torch.zeros(2)), "index"),
    (lambda g: quadrature_elbo(g, 0, torch.zeros(3), torch.zeros(2)), "mean"),
    (lambda g: log_q_on_grid(g, torch.zeros(2), torch.zeros(2, 2)), "log_sigma"),
    (lambda g: posterior_grid(vae_lib.arc_model(), torch.zeros(1, 2)), "2-D latent"),
    (lambda g: posterior_grid(vae_lib.folded_model(), torch.zeros(1, 2), n_grid=2), "n_grid"),
    (lambda g: posterior_explorer_figure(vae_lib.folded_model(), FOLDED_XS, ["one"]), "labels"),
])
def test_bad_arguments_are_named(grid, call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call(grid)


# ---------------------------------------------------------------- the static page's JavaScript, in Chromium

@pytest.fixture(scope="module")
def explorer_page(tmp_path_factory, folded):
    from playwright.sync_api import sync_playwright

    fig = posterior_explorer_figure(folded, FOLDED_XS, ["bimodal", "unimodal"], ascent=AscentConfig(steps=60))
    plotly_js = Path(__import__("plotly").__file__).parent / "package_data" / "plotly.min.js"
    folder = tmp_path_factory.mktemp("explorer")
    (folder / "plotly.min.js").write_bytes(plotly_js.read_bytes())
    body = BookHtmlRenderer().to_mimebundle(fig.to_dict())["text/html"]
    (folder / "index.html").write_text(f'<html><head><meta charset="utf-8"><script src="plotly.min.js"></script>'
                                       f"</head><body>{body}</body></html>", encoding="utf-8")
    handler = type("Quiet", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *a: None})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(folder)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"http://127.0.0.1:{httpd.server_address[1]}/index.html")
        page.wait_for_function("() => document.querySelector('.plotly-graph-div')?.dataset.explorerElbo")
        yield page, errors
        browser.close()
    httpd.shutdown()


GD = "document.querySelector('.plotly-graph-div')"


def _state(page) -> dict:
    return page.evaluate(f"() => Object.assign({{}}, {GD}.dataset)")


@pytest.mark.browser
@pytest.mark.slow
def test_js_quadrature_elbo_matches_python(explorer_page, grid):
    page, errors = explorer_page
    for preset, q in [(0, [0.5, 0.0, -1.0, -1.0]), (1, [-0.3, -0.4, -1.4, -0.8]), (0, [1.0, 0.4, -1.8, -1.2])]:
        page.evaluate(f"() => {GD}.posteriorExplorerSet({preset}, {q})")
        state = _state(page)
        elbo = quadrature_elbo(grid, preset, torch.tensor(q[:2]), torch.tensor(q[2:])).item()
        assert float(state["explorerElbo"]) == pytest.approx(elbo, abs=1e-3)
        assert float(state["explorerLogpx"]) == pytest.approx(grid.log_evidence[preset].item(), abs=1e-3)
        assert float(state["explorerGap"]) == pytest.approx(grid.log_evidence[preset].item() - elbo, abs=1e-3)
        readout = page.evaluate(f"() => {GD}.layout.annotations[0].text")
        assert f"ELBO L(q) = {float(state['explorerElbo']):.3f}" in readout
        ellipse_x = page.evaluate(f"() => {GD}.data[1].x")
        assert max(ellipse_x) == pytest.approx(q[0] + math.exp(q[2]), abs=1e-6)
    assert not errors


@pytest.mark.browser
@pytest.mark.slow
def test_js_slider_moves_q_and_button_runs_the_same_ascent_as_python(explorer_page, grid):
    page, errors = explorer_page
    page.evaluate(f"() => {GD}.posteriorExplorerSet(0, [0.5, 0.0, -1.0, -1.0])")
    # a slider move as plotly reports it: μ₁ to 0.8
    page.evaluate(f"""() => {{ const gd = {GD};
        gd.emit('plotly_sliderchange', {{slider: gd._fullLayout.sliders[0],
                                         step: gd._fullLayout.sliders[0].steps.find(s => s.value === '0.8')}}); }}""")
    assert _state(page)["explorerQ"].startswith("0.800000,0.000000")
    before = float(_state(page)["explorerElbo"])
    page.click("text=▶ 60 gradient-ascent steps on the ELBO")
    page.wait_for_function(f"() => {GD}.dataset.explorerRunning === '0' && "
                           f"{GD}.dataset.explorerQ.split(',')[0] !== '0.800000'", timeout=20_000)
    state = _state(page)
    result = ascend_elbo(grid, 0, torch.tensor([0.8, 0.0]), torch.tensor([-1.0, -1.0]), AscentConfig(steps=60))
    q_js = [float(v) for v in state["explorerQ"].split(",")]
    assert np.allclose(q_js, [*result.mean.tolist(), *result.log_sigma.tolist()], atol=1e-3)
    assert float(state["explorerElbo"]) == pytest.approx(result.elbo[-1].item(), abs=1e-3)
    assert float(state["explorerElbo"]) > before
    # the preset menu switches x and the heatmap
    page.click(".updatemenu-header-group")
    page.click("text=unimodal")
    page.wait_for_function(f"() => {GD}.dataset.explorerPreset === '1'")
    z = page.evaluate(f"() => {GD}.data[0].z[60][60]")
    assert z == pytest.approx(grid.log_posterior()[1, 60, 60].exp().item(), rel=1e-4)
    assert not errors
