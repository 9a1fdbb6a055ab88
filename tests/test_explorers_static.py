"""The posterior (chapter 2), estimator (chapter 4) and KL-direction (chapter 3) explorers as instances of the one
explorer design: Explorer.evaluate against the maths, and (in Chromium) the page's own numbers against evaluate, with
the controls moved through the element's API and by real input."""

from __future__ import annotations

import functools
import http.server
import math
import threading

import pytest
import torch

import vae_lib
from vae_lib import figures_gap, gap, quadrature
from vae_lib.estimators import compare_estimators
from vae_lib.explorer import Affine, Explorer
from vae_lib.figures_estimators import REPARAM_COLOUR, SCORE_COLOUR, _histograms, estimator_explorer
from vae_lib.posterior_explorer import LOG_SIGMA_RANGE, MU_RANGE, ascend_elbo, posterior_explorer
from vae_lib.quadrature import GaussianFitConfig

FOLDED_XS = [torch.tensor([1.0, 0.5]), torch.tensor([-0.5, -0.5])]
LABELS = ["bimodal", "unimodal"]
STEPS = 60
ASCENT = GaussianFitConfig(steps=STEPS, learning_rate=0.05, decay_to=1.0)  # the explorer's button, 60 steps


@pytest.fixture(scope="module")
def folded():
    return vae_lib.folded_model(sigma=0.3)


@pytest.fixture(scope="module")
def grid():
    return quadrature.latent_grid(4.0, 121)  # the explorer's default grid


@pytest.fixture(scope="module")
def log_joint(folded, grid):
    return quadrature.log_joint_on_grid(folded, torch.stack(FOLDED_XS), grid)  # (G, 2 presets)


def quadrature_elbo(log_joint, grid, preset: int, q: list[float]) -> float:
    """L(q) of N((q₀, q₁), diag e^(2 q₂), e^(2 q₃)) for one preset, by vae_lib.quadrature."""
    t = torch.tensor(q, dtype=torch.float64)
    return quadrature.elbo(log_joint[:, preset:preset + 1], grid, vae_lib.diag_gaussian(t[None, :2], 2 * t[None, 2:]))


@pytest.fixture(scope="module")
def posterior(folded):
    return posterior_explorer(folded, FOLDED_XS, LABELS, ascent=ASCENT)


@pytest.fixture(scope="module")
def comparison():
    return compare_estimators(("u²", "sin u"), 0.5, (0.25, 0.5, 2.0), (1, 10), repeats=300,
                              generator=torch.Generator().manual_seed(3))


@pytest.fixture(scope="module")
def estimator(comparison):
    return estimator_explorer(comparison, start_sigma=0.5, live_repeats=200)


@pytest.fixture(scope="module")
def fits(folded):
    x = torch.tensor([[0.25, 0.5], [1.5, 0.5], [3.0, 0.5]], dtype=torch.float64)
    return gap.fit_kl_directions(folded, x, torch.tensor([0.3, 0.0]), torch.tensor([-2.4, -2.4]),
                                 GaussianFitConfig(steps=60, learning_rate=0.2))


@pytest.fixture(scope="module")
def kl(folded, fits):
    return figures_gap.kl_directions_explorer(folded.grid, fits, window=(-3.0, 3.0, -1.0, 2.0), active=1, title="t")


def q_state(preset: int, q: list[float]) -> dict:
    return {"x": preset, **dict(zip(("mu1", "mu2", "log_sigma1", "log_sigma2"), q, strict=True))}


# ---------------------------------------------------------------- the posterior explorer against the maths
@pytest.mark.parametrize("preset, q", [(0, [0.5, 0.0, -1.0, -1.0]), (1, [-0.3, -0.4, -1.4, -0.8]),
                                       (0, [1.0, 0.4, -1.8, -1.2])])
def test_posterior_explorer_evaluates_the_quadrature_elbo(posterior, grid, log_joint, preset, q):
    v = posterior.evaluate(q_state(preset, q))  # the page's data: the log joint as float32
    elbo = quadrature_elbo(log_joint, grid, preset, q).item()
    log_px = quadrature.log_marginal(log_joint, grid)
    assert v["elbo"] == pytest.approx(elbo, abs=1e-4)
    assert v["log_px"] == pytest.approx(log_px[preset].item(), abs=1e-4)
    assert v["gap"] == pytest.approx(v["log_px"] - v["elbo"], abs=1e-12) and v["gap"] > 0
    exact = posterior.evaluate(q_state(preset, q), exact=True)  # the live widget's: full precision
    assert exact["elbo"] == pytest.approx(elbo, abs=1e-10)
    # the background: the chosen preset's posterior relative to its peak
    post = quadrature.log_posterior(log_joint, grid)[preset].exp().reshape(grid.shape)  # (n2, n1)
    assert torch.allclose(v["posterior"], post / post.max(), atol=1e-5)
    # q's ellipses: the sliders give log σ, the Ellipse op takes log σ² (an Affine step between them)
    for k in (1, 2):
        e = v[f"ellipse{k}"]
        assert max(e["x"]) - q[0] == pytest.approx(k * math.exp(q[2]), abs=1e-9)
        assert max(e["y"]) - q[1] == pytest.approx(k * math.exp(q[3]), abs=1e-3)  # 73 points: near the top


def test_posterior_explorer_description(posterior):
    spec = posterior.spec()
    kinds = [c["kind"] for c in spec["controls"]]
    assert kinds == ["choice", "slider", "slider", "slider", "slider", "button"]
    assert not any(c.get("snap") for c in spec["controls"] if c["kind"] == "slider")  # continuous
    button = spec["controls"][-1]
    assert button["action"] == "ascend" and button["steps"] == STEPS and button["q"] == ["mu1", "mu2", "log_sigma1",
                                                                                         "log_sigma2"]
    assert button["op"]["op"] == "quadrature_elbo" and "posterior" not in button["op"]
    plane = spec["panels"][0]
    assert plane["background"]["output"] == "posterior" and list(plane["drag"]) == ["mu1", "mu2"]
    assert [op["op"] for op in spec["program"]][:4] == ["quadrature_elbo", "stack", "stack", "affine"]
    assert "posterior_explorer.js" not in posterior.html() and "plotly" not in posterior.html(runtime=False)


def test_affine_op():
    values = {"a": torch.tensor([[1.0, -2.0]])}
    Affine("a", "b", 2.0, 0.5).run(values, None)
    assert values["b"].tolist() == [[2.5, -3.5]]


def test_live_posterior_explorer_updates_and_runs_the_ascent(posterior, grid, log_joint):
    widget = posterior.live()
    values = widget.set(mu1=1.0)
    assert values["elbo"] == pytest.approx(quadrature_elbo(log_joint, grid, 0, [1.0, 0.0, -1.0, -1.0]).item(),
                                           abs=1e-10)
    values = widget.set(x=1)
    assert values["log_px"] == pytest.approx(quadrature.log_marginal(log_joint, grid)[1].item(), abs=1e-10)
    q = widget.ascend({"x": 1, "mu1": 1.0})  # the front end sends the choice's value (its index)
    result = ascend_elbo(log_joint[:, 1], grid, torch.tensor([1.0, 0.0]), torch.tensor([-1.0, -1.0]), ASCENT)
    assert list(q.values()) == pytest.approx([*result.mean.tolist(), *result.log_sigma.tolist()], abs=1e-12)


@pytest.mark.parametrize("call, match", [
    (lambda: posterior_explorer(vae_lib.folded_model(), FOLDED_XS, ["one"]), "labels"),
    (lambda: posterior_explorer(vae_lib.folded_model(), [], []), "xs"),
    (lambda: posterior_explorer([vae_lib.folded_model()] * 3, FOLDED_XS, LABELS), "models"),
    (lambda: estimator_explorer("not a comparison"), "comparison"),
])
def test_bad_arguments_are_named(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


# ---------------------------------------------------------------- the estimator explorer against the maths
def test_estimator_explorer_bars_are_the_comparisons_histograms(estimator, comparison):
    for f, name in enumerate(comparison.functions):
        for s, sigma in enumerate(comparison.sigmas):
            v = estimator.evaluate({"f": f, "sigma": s})
            assert v["f_name"] == name and v["sigma_value"] == sigma
            assert v["exact"] == pytest.approx(comparison.exact[(name, sigma)], rel=1e-6)
            for k in comparison.sample_counts:
                score, reparam = comparison.score[(name, sigma, k)], comparison.reparam[(name, sigma, k)]
                x, y_s, y_r, w = _histograms(score, reparam, 40)
                assert v[f"score_K{k}"] == {"x": x, "y": y_s, "width": w}
                assert v[f"reparam_K{k}"] == {"x": x, "y": y_r, "width": w}
                assert v[f"ratio_K{k}"] == pytest.approx(comparison.variance_ratio(name, sigma, k), rel=1e-3)
                r = v[f"ranges_K{k}"]  # the panel's axes hold every bar and the exact value
                assert r["x"][0] <= min(x[0] - w / 2, v["exact"]) and r["x"][1] >= max(x[-1] + w / 2, v["exact"])
                assert r["y"][0] == 0 and r["y"][1] >= max(y_s + y_r)


def test_estimator_explorer_description(estimator, comparison):
    spec = estimator.spec()
    f, sigma = spec["controls"]
    assert f["kind"] == "choice" and f["options"] == list(comparison.functions)
    assert sigma["snap"] and sigma["labels"] == ["0.25", "0.5", "2"] and sigma["value"] == 1  # σ = 0.5
    assert len(spec["panels"]) == len(comparison.sample_counts)
    colours = [layer["colour"] for layer in spec["panels"][0]["layers"]]
    assert colours[:2] == [SCORE_COLOUR, REPARAM_COLOUR] == ["#E69F00", "#0072B2"]
    assert [p["ranges"] for p in spec["panels"]] == ["ranges_K1", "ranges_K10"]
    assert [op["op"] for op in spec["program"]] == ["lookup"]


def test_live_estimator_explorer_draws_fresh_estimates(estimator, comparison):
    v = estimator.evaluate({"f": 1, "sigma": 2}, exact=True)
    assert v["f_name"] == "sin u" and v["exact"] == pytest.approx(comparison.exact[("sin u", 2.0)], rel=1e-6)
    static = estimator.evaluate({"f": 1, "sigma": 2})
    assert v["score_K1"] != static["score_K1"]  # new Monte Carlo draws, not the table
    assert len(v["score_K1"]["y"]) == 40 and v["ratio_K10"] > 0
    widget = estimator.live()
    assert widget.set(f=0)["f_name"] == "u²" and "ranges_K1" in widget.values


# ---------------------------------------------------------------- the KL-direction explorer against the maths
def test_kl_explorer_ellipses_and_marginals_are_the_fits(kl, fits):
    for i, fit in enumerate(fits):
        v = kl.evaluate({"x1": i})
        assert v["x1_value"] == pytest.approx(float(fit.x[0])) and v["reverse_kl"] == pytest.approx(fit.reverse_kl)
        assert v["forward_kl"] == pytest.approx(fit.forward_kl)
        for key, mean, log_var in (("rev", fit.reverse_mean, fit.reverse_log_var),
                                   ("fwd", fit.forward_mean, fit.forward_log_var)):
            for k in (1, 2):
                e = v[f"{key}_ellipse{k}"]
                assert max(e["x"]) - float(mean[0]) == pytest.approx(k * math.exp(0.5 * float(log_var[0])), abs=1e-9)
                assert max(e["y"]) - float(mean[1]) == pytest.approx(k * math.exp(0.5 * float(log_var[1])), rel=2e-3)
        post = v["posterior"]
        assert (post["rows"], post["cols"]) == (31, 61) and max(post["d"]) == 1
        m = v["marginal"]  # p(z₁|x) integrates to about one over the window
        step = m["x"][1] - m["x"][0]
        assert 0.95 < sum(m["y"]) * step <= 1.0 + 1e-3


def test_kl_explorer_description(kl, fits):
    spec = kl.spec()
    (slider,) = spec["controls"]
    assert slider["snap"] and slider["labels"] == ["0.25", "1.5", "3"] and slider["value"] == 1
    assert spec["panels"][0]["background"]["output"] == "posterior"
    assert [p["kind"] for p in spec["panels"]] == ["plane", "plane"]


# ---------------------------------------------------------------- the page, in Chromium
@pytest.fixture()
def open_page(browser, tmp_path):
    servers, pages = [], []

    def open_(explorer: Explorer):
        head = '<meta charset="utf-8"><link rel="icon" href="data:,">'  # no favicon request (a 404)
        (tmp_path / "index.html").write_text(f"<!doctype html><html><head>{head}</head><body>{explorer.html()}"
                                             "</body></html>", encoding="utf-8")
        handler = type("Quiet", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *a: None})
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(tmp_path)))
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        pages.append(page)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"http://127.0.0.1:{httpd.server_address[1]}/index.html")
        page.wait_for_function("() => document.querySelector('.vae-explorer-host').explorer")
        return page, errors

    yield open_
    for page in pages:
        page.close()
    for httpd in servers:
        httpd.shutdown()


HOST = "document.querySelector('.vae-explorer-host').explorer"
PAGE_VALUES = f"""() => {{
    const out = {{}};
    for (const [k, v] of Object.entries({HOST}.values())) {{
        out[k] = v && v.d ? {{rows: v.rows, cols: v.cols, d: Array.from(v.d)}} : v;
    }}
    return out;
}}"""


def plain(value):
    """A value as the page holds it: a matrix as {rows, cols, d}, numbers, lists and dicts."""
    if isinstance(value, torch.Tensor):
        m = value.reshape(1, -1) if value.dim() < 2 else value
        return {"rows": m.shape[0], "cols": m.shape[1], "d": m.flatten().tolist()}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def assert_close(page_value, value, path: str, tol: float) -> None:
    if isinstance(value, dict):
        assert isinstance(page_value, dict) and set(page_value) >= set(value), path
        for k in value:
            assert_close(page_value[k], value[k], f"{path}.{k}", tol)
    elif isinstance(value, list):
        assert isinstance(page_value, list) and len(page_value) == len(value), path
        for i, (a, b) in enumerate(zip(page_value, value, strict=True)):
            assert_close(a, b, f"{path}[{i}]", tol)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        assert page_value == pytest.approx(value, abs=tol), path
    else:
        assert page_value == value, path


def assert_page_matches(page, explorer: Explorer, state: dict, tol: float = 1e-6) -> dict:
    """The page's values equal Explorer.evaluate for the same state (every value evaluate computes)."""
    page_values = page.evaluate(PAGE_VALUES)
    expected = explorer.evaluate(state)
    for name, value in expected.items():
        assert name in page_values, name
        assert_close(page_values[name], plain(value), name, tol)
    return page_values


def js_minus(text: str) -> str:
    return text.replace("-", "\u2212")  # the readout writes minus signs as U+2212


@pytest.mark.browser
@pytest.mark.slow
def test_posterior_explorer_in_the_page(open_page, posterior, grid, log_joint):
    page, errors = open_page(posterior)
    assert_page_matches(page, posterior, {})
    for preset, q in [(1, [-0.3, -0.4, -1.4, -0.8]), (0, [1.0, 0.4, -1.8, -1.2])]:
        state = q_state(preset, q)
        page.evaluate(f"pairs => {HOST}.setMany(pairs)", [[k, v] for k, v in state.items()])
        values = assert_page_matches(page, posterior, state)
        readout = page.inner_text(".vae-explorer-readout")
        assert js_minus(f"ELBO L(q) = {values['elbo']:.3f}") in readout
        assert js_minus(f"gap = KL(q ‖ p(z|x)) = {values['gap']:.3f}") in readout
    # real input: the preset menu, then the μ₁ slider by keyboard (one step of 0.01 up)
    href = page.get_attribute(".vae-explorer-pixels", "href")
    page.select_option("select", "1")
    assert page.get_attribute(".vae-explorer-pixels", "href") != href  # the background follows the preset
    page.focus("input[type=range]")
    page.keyboard.press("ArrowRight")
    state = q_state(1, [1.01, 0.4, -1.8, -1.2])
    assert_page_matches(page, posterior, state)
    # the button: the page's Adam steps against torch.optim.Adam on the same quadrature ELBO
    before = page.evaluate(f"() => {HOST}.values().elbo")
    page.click("button.vae-explorer-button")
    page_values = page.evaluate(PAGE_VALUES)
    result = ascend_elbo(log_joint[:, 1], grid, torch.tensor([1.01, 0.4], dtype=torch.float64),
                         torch.tensor([-1.8, -1.2], dtype=torch.float64), ASCENT)
    bounds = [MU_RANGE, MU_RANGE, LOG_SIGMA_RANGE, LOG_SIGMA_RANGE]
    expected_q = [min(max(v, lo), hi) for v, (lo, hi) in zip([*result.mean.tolist(), *result.log_sigma.tolist()],
                                                             bounds, strict=True)]
    names = ["mu1", "mu2", "log_sigma1", "log_sigma2"]
    assert [page_values[n] for n in names] == pytest.approx(expected_q, abs=1e-3)
    assert page_values["elbo"] > before
    assert_page_matches(page, posterior, q_state(1, [page_values[n] for n in names]))
    assert not errors


@pytest.mark.browser
@pytest.mark.slow
def test_estimator_explorer_in_the_page(open_page, estimator):
    page, errors = open_page(estimator)
    assert_page_matches(page, estimator, {})
    page.evaluate(f"() => {HOST}.setMany([['f', 1], ['sigma', 2]])")
    values = assert_page_matches(page, estimator, {"f": 1, "sigma": 2})
    assert page.evaluate(f"() => {HOST}.spec.panels[0].x.range") == values["ranges_K1"]["x"]  # axes follow
    assert "K = 10: " + values["ratio_text_K10"] in page.inner_text(".vae-explorer-readout")
    # real input: the f menu, then σ one step down by keyboard
    page.select_option("select", "0")
    page.focus("input[type=range]")
    page.keyboard.press("ArrowLeft")
    assert_page_matches(page, estimator, {"f": 0, "sigma": 1})
    assert page.inner_text(".vae-explorer-control output") == "0.5"  # the slider shows σ, not its index
    bars = page.locator(".vae-explorer-plot").nth(1).locator("path[fill-opacity]")  # one path per histogram
    assert bars.count() == 2 and all(bars.nth(k).get_attribute("d").count("Z") == 40 for k in range(2))
    assert not errors


@pytest.mark.browser
@pytest.mark.slow
def test_kl_explorer_in_the_page(open_page, kl, fits):
    page, errors = open_page(kl)
    assert_page_matches(page, kl, {})
    page.evaluate(f"() => {HOST}.setMany([['x1', 0]])")
    assert_page_matches(page, kl, {"x1": 0})
    page.focus("input[type=range]")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    values = assert_page_matches(page, kl, {"x1": 2})
    assert page.inner_text(".vae-explorer-control output") == "3"
    assert f"KL(q_rev ‖ p) = {values['reverse_kl']:.3f}" in page.inner_text(".vae-explorer-readout")
    assert not errors
