"""The flow explorer (chapter 8): the FlowSteps op against the flows library and against autograd's Jacobian, the
ELBO readout against quadrature and an independent Monte Carlo run, the live widget, and (in Chromium) the page's
own flow against Python's, moved by the API and by the keyboard."""

from __future__ import annotations

import base64
import math

import pytest
import torch

import vae_lib
from vae_lib.explorer import FlowSteps, Scatter
from vae_lib.flow_explorer import flow_elbo_by_step, flow_explorer
from vae_lib.flows import AffineCoupling, FlowConfig, FlowFitConfig, FlowPosterior, fit_flow_posterior, flow_log_weights
from vae_lib.gaussian import diag_gaussian
from vae_lib.quadrature import elbo as quadrature_elbo
from vae_lib.quadrature import latent_grid, log_joint_on_grid

X = torch.tensor([[1.0, 0.5]], dtype=torch.float64)
N_POINTS = 300


def scrambled(kind: str, n_steps: int, dtype: torch.dtype, seed: int) -> FlowPosterior:
    """A flow with steps far from the identity (parameters ~ N(0, 1)) and a base q_0 off the origin."""
    flow = FlowPosterior(FlowConfig(kind=kind, n_steps=n_steps, dtype=dtype, seed=seed))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in flow.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
        flow.base_log_var.mul_(0.3)
    return flow


def explorer_model():
    return vae_lib.folded_model(sigma=0.3)


@pytest.fixture(scope="module")
def folded():
    return explorer_model()


@pytest.fixture(scope="module", params=["planar", "radial"])
def flow(request):
    return scrambled(request.param, 4, torch.float64, seed=7)


@pytest.fixture(scope="module")
def explorer(folded, flow):
    return flow_explorer(folded, X, flow, generator=torch.Generator().manual_seed(1), n_points=N_POINTS,
                         elbo_samples=4000, n_grid=51)


def base_points(explorer) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """z_0 = μ + σ ε for the page's ε (float32), and μ, log σ² of q_0."""
    op = next(o for o in explorer.program if isinstance(o, FlowSteps))
    eps = op.eps.to(torch.float32).to(torch.float64)
    return op.mean + torch.exp(0.5 * op.log_var) * eps, op.mean, op.log_var


def truncated(flow: FlowPosterior, depth: int) -> FlowPosterior:
    """A FlowPosterior holding only the first ``depth`` steps of ``flow`` (and its q_0)."""
    short = FlowPosterior(FlowConfig(kind=flow.config.kind, n_steps=depth, dtype=flow.config.dtype))
    short.load_state_dict({k: v for k, v in flow.state_dict().items()
                           if not k.startswith("steps.") or int(k.split(".")[1]) < depth})
    return short


# ---------------------------------------------------------------- the FlowSteps op against the flows library
@pytest.mark.parametrize("depth", [0, 1, 3, 4])
def test_points_and_densities_are_the_flows(explorer, flow, depth):
    v = explorer.evaluate({"T": depth})  # the page's numbers
    z0, mean, log_var = base_points(explorer)
    short = truncated(flow, depth)
    z, log_det = short.flow(z0)  # vae_lib.flows' own forward pass
    assert torch.allclose(v["z"], z, atol=1e-12, rtol=0)
    log_q = diag_gaussian(mean, log_var).log_prob(z0) - log_det
    assert torch.allclose(v["log_q"][0], log_q, atol=1e-10, rtol=0)
    if depth:  # and by inverting the steps: log q_T at the pushed points (bisection / closed-form inverse)
        back = short.log_prob(z.unsqueeze(1), mean=mean[None], log_var=log_var[None])[:, 0]
        assert torch.allclose(v["log_q"][0], back, atol=1e-8, rtol=0)
    # q_T on the density grid (51 × 51 over [−2.5, 2.5]², row 0 at the lowest z₂), on the posterior's scale:
    # q_T(z) / max p(z|x), with the peak of p(z|x) on the posterior's grid (log p(x, z) − log p(x), by quadrature)
    axis = torch.linspace(-2.5, 2.5, 51, dtype=torch.float64)
    z2, z1 = torch.meshgrid(axis, axis, indexing="ij")
    grid_points = torch.stack([z1.reshape(-1), z2.reshape(-1)], -1).unsqueeze(1)  # (G, 1, 2)
    log_q_grid = short.log_prob(grid_points, mean=mean[None], log_var=log_var[None])[:, 0].detach()
    assert v["density"].shape == (51, 51)
    grid = latent_grid(2.5, 51, 2)
    log_peak = log_joint_on_grid(explorer_model(), X, grid).max() - explorer_model().log_marginal(X)[0]
    assert torch.allclose(v["density"], (log_q_grid - log_peak).exp().reshape(51, 51), atol=1e-9, rtol=1e-9)


def test_densities_are_the_change_of_variables(explorer, flow):
    """log q_T(z_T) = log q_0(z_0) − log|det J| with J autograd's Jacobian of the first T steps (an exact answer that
    does not use the steps' own log-determinants)."""
    z0, mean, log_var = base_points(explorer)
    depth = 3
    v = explorer.evaluate({"T": depth})

    def push(z: torch.Tensor) -> torch.Tensor:
        for step in flow.steps[:depth]:
            z = step(z)[0]
        return z

    for n in (0, 17, 123):
        jac = torch.autograd.functional.jacobian(push, z0[n])  # (2, 2)
        expected = diag_gaussian(mean, log_var).log_prob(z0[n]) - torch.linalg.det(jac).abs().log()
        assert v["log_q"][0, n].item() == pytest.approx(expected.item(), abs=1e-9)
        assert torch.allclose(v["z"][n], push(z0[n]), atol=1e-12)


def test_depth_is_clipped_and_the_live_run_is_the_flow_in_its_own_dtype(folded):
    flow32 = scrambled("planar", 3, torch.float32, seed=3)
    e = flow_explorer(folded, X, flow32, generator=torch.Generator().manual_seed(2), n_points=50, elbo_samples=100,
                      n_grid=11)
    page, live = e.evaluate({"T": 3}), e.evaluate({"T": 3}, exact=True)
    assert not torch.equal(page["z"], live["z"])  # float64 in the page, float32 live
    assert torch.allclose(page["z"], live["z"], atol=2e-5) and torch.allclose(page["log_q"], live["log_q"], atol=2e-4)
    op = next(o for o in e.program if isinstance(o, FlowSteps))  # T beyond 0 … T_max: the ends
    for t, same in ((9, 3), (-2, 0)):
        values, expected = {"T": t}, {"T": same}
        op.run(values, None)
        op.run(expected, None)
        assert torch.equal(values["z"], expected["z"])


# ---------------------------------------------------------------- the readout against exact answers
def test_elbo_of_the_base_is_the_quadrature_elbo_and_the_last_is_the_flows(folded, flow, explorer):
    rows = flow_elbo_by_step(folded, X, flow, 40_000, generator=torch.Generator().manual_seed(5))
    assert [r["depth"] for r in rows] == [0, 1, 2, 3, 4]
    mean, log_var = flow.base_mean.detach()[0], flow.base_log_var.detach()[0]
    grid = latent_grid(7.0, 561, 2)
    exact0 = quadrature_elbo(log_joint_on_grid(folded, X, grid), grid, diag_gaussian(mean, log_var)).item()
    assert rows[0]["elbo"] == pytest.approx(exact0, abs=4 * rows[0]["elbo_se"] + 1e-3)
    with torch.no_grad():  # the whole flow: its ELBO by quadrature, log q_T on the grid by inverting the steps
        exact = quadrature_elbo(log_joint_on_grid(folded, X, grid), grid, flow).item()
    assert rows[-1]["elbo"] == pytest.approx(exact, abs=4 * rows[-1]["elbo_se"])
    log_w = flow_log_weights(X, folded, flow, 40_000, generator=torch.Generator().manual_seed(6))[:, 0]
    se = math.hypot(rows[-1]["elbo_se"], (log_w.std() / math.sqrt(40_000)).item())
    assert rows[-1]["elbo"] == pytest.approx(log_w.mean().item(), abs=4 * se)
    log_px = folded.log_marginal(X)[0].item()
    for depth in (0, 4):
        v = explorer.evaluate({"T": depth})
        assert v["log_px"] == log_px and v["gap"] == pytest.approx(log_px - v["elbo"], abs=1e-12)
        assert v["gap_curve"]["y"][depth] == v["log10_gap"] == pytest.approx(math.log10(max(v["gap"], 1e-3)))
        assert v["gap_curve"]["x"] == [0, 1, 2, 3, 4]


def test_a_fitted_flow_closes_most_of_the_gap(folded):
    fit = fit_flow_posterior(folded, X, FlowConfig(n_steps=4, dtype=torch.float64),
                             FlowFitConfig(steps=300, anneal_steps=150, eval_samples=2000))
    e = flow_explorer(folded, X, fit.flow, generator=torch.Generator().manual_seed(0), n_points=100,
                      elbo_samples=20_000, n_grid=21)
    base, last = e.evaluate({"T": 0}), e.evaluate({"T": 4})
    assert 0 < last["gap"] < base["gap"]  # the full flow is better than its own base q_0
    assert last["elbo"] == pytest.approx(fit.elbo, abs=4 * (last["elbo_se"] + fit.elbo_standard_error))


# ---------------------------------------------------------------- the description, the live widget, bad input
def test_description(explorer, folded):
    spec = explorer.spec()
    (slider,) = spec["controls"]
    assert slider["snap"] and (slider["low"], slider["high"], slider["step"], slider["value"]) == (0, 4, 1, 0)
    assert [op["op"] for op in spec["program"]] == ["flow_steps", "lookup"]
    op = spec["program"][0]
    assert op["depth"] == "T" and len(op["steps"]) == 4 and spec["data"][op["eps"]]["shape"] == [N_POINTS, 2]
    plane = spec["panels"][0]
    (layer,) = plane["layers"]
    assert layer["kind"] == "scatter" and layer["output"] == "z" and layer["colour_by"] == "log_q"
    assert layer["edges"] == sorted(layer["edges"]) and len(layer["colours"]) == len(layer["edges"]) + 1
    assert len(plane["legend"]) == len(layer["colours"])
    assert plane["background"]["colormap"] == "blues" and plane["background"]["rows"] == 51
    # the background is p(z|x) on the grid relative to its peak, top row first, as uint8 levels 0 … 254 of [0, 1]
    post = folded.log_posterior_on_grid(X)[0].exp()  # the model's own quadrature grid over [−7, 7]², step 0.05
    axis = folded.grid.axes[0]
    keep = (axis.abs() <= 2.5 + 1e-9).nonzero()[:, 0][::2]  # every other point: [−2.5, 2.5] in steps of 0.1
    n = axis.shape[0]
    post = post.reshape(n, n)[keep][:, keep]
    levels = torch.tensor(list(base64.b64decode(spec["data"][plane["background"]["data"]]["b64"])),
                          dtype=torch.float64).reshape(51, 51).flip(0)
    assert torch.allclose(levels, (post / post.max() * 254).round(), atol=1)


def test_live_widget_sends_the_points_and_their_densities(explorer):
    widget = explorer.live()
    values = widget.set(T=2)
    expected = explorer.evaluate({"T": 2}, exact=True)
    assert values["z"]["d"] == expected["z"].flatten().tolist()
    assert values["log_q"]["d"] == expected["log_q"].flatten().tolist()
    assert values["elbo"] == expected["elbo"]


def test_bad_input_is_named(folded, flow):
    coupling = FlowPosterior(FlowConfig(kind="coupling", n_steps=2))
    with pytest.raises(TypeError, match="steps"):
        flow_explorer(folded, X, coupling, generator=torch.Generator())
    with pytest.raises(TypeError, match="steps"):
        FlowSteps((AffineCoupling(2, 0),), torch.zeros(2), torch.zeros(2), torch.zeros(3, 2), "T", "z", "q")
    with pytest.raises(ValueError, match="mean"):
        FlowSteps(tuple(flow.steps), torch.zeros(3), torch.zeros(2), torch.zeros(3, 2), "T", "z", "q")
    with pytest.raises(ValueError, match="x"):
        flow_explorer(folded, torch.zeros(2, 2), flow, generator=torch.Generator())
    with pytest.raises(ValueError, match="x"):
        flow_explorer(folded, torch.zeros(1, 3), flow, generator=torch.Generator())
    with pytest.raises(TypeError, match="generator"):
        flow_explorer(folded, X, flow, generator=0)
    with pytest.raises(TypeError, match="flow"):
        flow_explorer(folded, X, "a flow", generator=torch.Generator())
    with pytest.raises(TypeError, match="log_marginal"):
        flow_explorer(vae_lib.VAE(vae_lib.VAEConfig(latent_dim=2, hidden=(8,))), X, flow, generator=torch.Generator())
    with pytest.raises(ValueError, match="at least one step"):
        flow_explorer(folded, X, FlowPosterior(FlowConfig(n_steps=0)), generator=torch.Generator())
    with pytest.raises(ValueError, match="start_depth"):
        flow_explorer(folded, X, flow, generator=torch.Generator(), start_depth=5)
    amortised = FlowPosterior(FlowConfig(n_steps=2, amortised=True, free_base=False))
    with pytest.raises(ValueError, match="free flow"):
        flow_explorer(folded, X, amortised, generator=torch.Generator())
    with pytest.raises(ValueError, match="colours"):
        Scatter("z", "q", (0.0, 1.0), ("#000",), ("a", "b", "c"))
    with pytest.raises(ValueError, match="edges"):
        Scatter("z", "q", (1.0, 0.0), ("#000",) * 3, ("a", "b", "c"))


# ---------------------------------------------------------------- the page, in Chromium
HOST = "document.querySelector('.vae-explorer-host').explorer"
READ = f"""names => {{
    const v = {HOST}.values(), out = {{}};
    for (const k of names) {{
        const x = v[k];
        out[k] = x && x.d ? {{rows: x.rows, cols: x.cols, d: Array.from(x.d)}} : x;
    }}
    return out; }}"""


@pytest.fixture()
def open_page(browser, tmp_path):
    pages = []

    def open_(explorer):
        path = tmp_path / "index.html"
        path.write_text(f'<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"></head>'
                        f"<body>{explorer.html()}</body></html>", encoding="utf-8")
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        pages.append(page)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(path.as_uri())
        page.wait_for_function(f"() => {HOST}")
        return page, errors

    yield open_
    for page in pages:
        page.close()


def page_matrix(value: dict) -> torch.Tensor:
    return torch.tensor(value["d"], dtype=torch.float64).reshape(value["rows"], value["cols"])


def band_counts(log_q: torch.Tensor, edges: list[float]) -> list[int]:
    bands = torch.bucketize(log_q, torch.tensor(edges, dtype=torch.float64), right=True)  # below edges[0]: band 0
    return [int((bands == k).sum()) for k in range(len(edges) + 1)]


@pytest.mark.browser
@pytest.mark.slow
def test_the_page_runs_the_flow(open_page, explorer, flow):
    page, errors = open_page(explorer)
    z0, mean, log_var = base_points(explorer)
    edges = explorer.spec()["panels"][0]["layers"][0]["edges"]
    for depth in (0, 4, 2):
        if depth:
            page.evaluate(f"t => {HOST}.set('T', t)", depth)
        got = page.evaluate(READ, ["z", "log_q", "elbo", "gap", "density"])
        z, log_det = truncated(flow, depth).flow(z0)  # the Python flow
        assert torch.allclose(page_matrix(got["z"]), z.detach(), atol=1e-9, rtol=0)
        log_q = diag_gaussian(mean, log_var).log_prob(z0) - log_det.detach()
        assert torch.allclose(page_matrix(got["log_q"])[0], log_q, atol=1e-9, rtol=0)
        v = explorer.evaluate({"T": depth})
        assert got["elbo"] == v["elbo"] and got["gap"] == v["gap"]
        # q_T on the grid: the page's Newton inverse against the steps' own inverse (bisection / closed form)
        assert torch.allclose(page_matrix(got["density"]), v["density"], atol=1e-9, rtol=0)
        readout = page.inner_text(".vae-explorer-readout")
        assert f"T = {depth}" in readout and f"{v['gap']:.3f}".replace("-", "\u2212") in readout
        # the drawing: every point once, in the colour band of its log q_T
        paths = page.eval_on_selector_all(".vae-explorer-points path", "ps => ps.map(p => p.getAttribute('d'))")
        assert [d.count("M") for d in paths] == band_counts(log_q, edges)
    # real input: the slider by keyboard, one step down
    slider = page.locator("input[type=range]")
    assert slider.get_attribute("data-lm-suppress-shortcuts") == "true"
    slider.focus()
    page.keyboard.press("ArrowLeft")
    got = page.evaluate(READ, ["T", "z", "log_q"])
    assert got["T"] == 1
    assert torch.allclose(page_matrix(got["z"]), explorer.evaluate({"T": 1})["z"], atol=1e-9, rtol=0)
    assert not errors


@pytest.mark.browser
@pytest.mark.slow
def test_the_page_agrees_with_a_float32_flow(open_page, folded):
    flow32 = scrambled("planar", 3, torch.float32, seed=11)
    e = flow_explorer(folded, X, flow32, generator=torch.Generator().manual_seed(4), n_points=200, elbo_samples=200,
                      n_grid=21)
    page, errors = open_page(e)
    z0, mean, log_var = base_points(e)
    page.evaluate(f"() => {HOST}.set('T', 3)")
    got = page.evaluate(READ, ["z", "log_q"])
    with torch.no_grad():
        z, log_det = flow32.flow(z0.to(torch.float32))  # the flow as it was fitted, in float32
        log_q = diag_gaussian(mean.float(), log_var.float()).log_prob(z0.float()) - log_det
    assert torch.allclose(page_matrix(got["z"]), z.double(), atol=1e-5, rtol=0)
    assert torch.allclose(page_matrix(got["log_q"])[0], log_q.double(), atol=1e-4, rtol=0)
    assert not errors


# ---------------------------------------------------------------- live, in a running JupyterLab
LIVE_CELLS = [
    "import torch\nimport vae_lib",
    # the flow of the tests above (scrambled: steps far from the identity), built in the kernel
    "flow = vae_lib.FlowPosterior(vae_lib.FlowConfig(kind='planar', n_steps=4, dtype=torch.float64, seed=7))\n"
    "g = torch.Generator().manual_seed(7)\n"
    "with torch.no_grad():\n"
    "    for p in flow.parameters():\n"
    "        p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))\n"
    "    flow.base_log_var.mul_(0.3)\n"
    "x = torch.tensor([[1.0, 0.5]], dtype=torch.float64)\n"
    "explorer = vae_lib.flow_explorer(vae_lib.folded_model(sigma=0.3), x, flow,\n"
    "                                 generator=torch.Generator().manual_seed(1), n_points=300,\n"
    "                                 elbo_samples=4000, n_grid=51)",
    "live = explorer.live()\nlive",
]
# what the kernel holds: the widget's T and the first T steps of the flow applied to the explorer's own base points
KERNEL_FLOW = """import json as _j
from vae_lib.explorer import FlowSteps as _F
_op = next(o for o in explorer.program if isinstance(o, _F))
_t = int(live.state.get('T', 0))
_z = _op.mean + torch.exp(0.5 * _op.log_var) * _op.eps
_ld = torch.zeros(_z.shape[0], dtype=torch.float64)
with torch.no_grad():
    for _s in flow.steps[:_t]:
        _z, _d = _s(_z)
        _ld = _ld + _d
print(_j.dumps({'T': _t, 'z': _z.flatten().tolist(), 'log_det': _ld.tolist()}))
"""
LIVE_STATE = """(cell) => {
    const host = cell.querySelector('.vae-explorer').parentNode, v = host.explorer.values();
    const paths = Array.from(cell.querySelectorAll('.vae-explorer-points path'));
    return {T: v.T, seq: v['#seq'], sent: v['#sent'], z: v.z && v.z.d ? Array.from(v.z.d) : null,
            drawn: paths.map(p => (p.getAttribute('d') || '').split('M').length - 1)
                        .reduce((a, b) => a + b, 0),
            readout: cell.querySelector('.vae-explorer-readout').textContent};
}"""


@pytest.mark.browser
@pytest.mark.slow
def test_the_live_explorer_runs_the_flow_in_the_kernel(browser, tmp_path):
    """In JupyterLab, the live flow explorer draws the points the kernel computes; the arrow key on the slider is the
    explorer's (the kernel pushes the points one step further and the notebook's active cell stays)."""
    import sys
    import time
    from pathlib import Path

    import nbformat

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_live_lab import KERNEL_ROUND_TRIP_MS, Lab, LabPage

    lab = Lab(tmp_path)
    page = None
    try:
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in LIVE_CELLS])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, lab.root / "flow.ipynb")
        lab.wait_until_up()
        page = LabPage(browser)
        page.open(lab, "flow.ipynb")
        page.run_all()
        cell = page.page.evaluate_handle("() => window.__panel.content.widgets[2].node").as_element()
        cell.wait_for_selector(".vae-explorer input[type=range]", timeout=KERNEL_ROUND_TRIP_MS)
        page.page.wait_for_function(f"(cell) => ({LIVE_STATE})(cell).z !== null", arg=cell,
                                    timeout=KERNEL_ROUND_TRIP_MS)
        for step in (0, 1):
            state = page.page.evaluate(LIVE_STATE, cell)
            kernel = page.kernel_json(KERNEL_FLOW)
            assert state["T"] == kernel["T"] == step
            assert state["z"] == pytest.approx(kernel["z"], abs=1e-12)  # the kernel's own flow, as the page draws it
            assert state["drawn"] == N_POINTS and f"T = {step}" in state["readout"]
            if step == 0:
                assert max(abs(d) for d in kernel["log_det"]) == 0
                active = page.page.evaluate("() => window.__panel.content.activeCellIndex")
                cell.query_selector(".vae-explorer input[type=range]").press("ArrowRight")
                page.page.wait_for_function(f"""(cell) => {{ const s = ({LIVE_STATE})(cell);
                    return s.T === 1 && s.seq === s.sent; }}""", arg=cell, timeout=KERNEL_ROUND_TRIP_MS)
                deadline = time.monotonic() + KERNEL_ROUND_TRIP_MS / 1000
                while page.kernel_json(KERNEL_FLOW)["T"] != 1:
                    assert time.monotonic() < deadline, "the key press did not reach the kernel"
                    page.page.wait_for_timeout(200)
                assert page.page.evaluate("() => window.__panel.content.activeCellIndex") == active
        assert max(abs(d) for d in kernel["log_det"]) > 0.01  # one step moved the points
        assert page.errors == [] or all("_markdownOverlapsToolbar" in e for e in page.errors), page.errors
        assert page.kernel_troubles() == []
    except BaseException:
        print(f"page errors: {page and page.errors}\nconsole: {page and page.console_errors}\n{lab.log_tail()}")
        raise
    finally:
        if page is not None:
            page.page.close()
        lab.shutdown()


def test_a_density_without_a_given_peak_is_relative_to_its_own(flow):
    op = FlowSteps(tuple(flow.steps), flow.base_mean.detach()[0], flow.base_log_var.detach()[0],
                   torch.zeros(1, 2, dtype=torch.float64), "T", "z", "log_q", grid=(-1.0, 2.0, 7), density="q")
    values = {"T": 2}
    op.run(values, None)
    axis = torch.linspace(-1.0, 2.0, 7, dtype=torch.float64)
    z2, z1 = torch.meshgrid(axis, axis, indexing="ij")
    log_q = truncated(flow, 2).log_prob(torch.stack([z1.reshape(-1), z2.reshape(-1)], -1).unsqueeze(1),
                                        mean=flow.base_mean.detach(), log_var=flow.base_log_var.detach())[:, 0]
    assert torch.allclose(values["q"], (log_q - log_q.max()).exp().reshape(7, 7).detach(), atol=1e-10)
    with pytest.raises(ValueError, match="grid and density"):
        FlowSteps(tuple(flow.steps), torch.zeros(2), torch.zeros(2), torch.zeros(1, 2), "T", "z", "q", grid=(0, 1, 3))
