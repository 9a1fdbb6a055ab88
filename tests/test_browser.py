"""The built book in headless Chromium, as a reader on an offline machine sees it.

Builds the whole book once (``jupyter-book build -W -n --keep-going``: every notebook executed, warnings
are errors), serves it on 127.0.0.1 and drives headless Chromium with Playwright (the ``browser`` fixture of
``tests/conftest.py``; ``tests/browsers.py`` finds the binary). Every request that
leaves localhost is blocked and counted, so a CDN dependency fails the test. Set ``VAE_BOOK_HTML`` to an
existing ``_build/html`` folder to skip the build.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import browsers  # tests/browsers.py (this folder is on sys.path under pytest)
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]


def _toc_files() -> list[str]:
    sys.path.insert(0, str(ROOT / "tools"))
    import book_toc

    return [book_toc.landing_page()] + book_toc.files()


# the chapters the book builds: notebooks listed in _toc.yml (a notebook outside the table of contents is not built)
CHAPTERS = [Path(f).name for f in _toc_files() if (ROOT / f"{f}.ipynb").is_file()]
PAGES = [f"{f}.html" for f in _toc_files()]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
HOSTS = "Array.from(document.querySelectorAll('.vae-explorer-host'))"


def explorer_outputs(notebook: Path) -> int:
    """Static explorers a notebook displays in cells whose output the page keeps (its stored or executed outputs)."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    return sum("vae-explorer-host" in "".join(out.get("data", {}).get("text/html", ""))
               for cell in nb.cells if cell.cell_type == "code" and "remove-output" not in cell.metadata.get("tags", [])
               for out in cell.get("outputs", []))


def expected_figures(book_html: Path, chapter: str) -> int:
    """Plotly figures the executed notebook displays in cells whose output the page keeps."""
    import nbformat

    nb = nbformat.read(book_html.parent / "jupyter_execute" / "book" / f"{chapter}.ipynb", as_version=4)
    return sum("application/vnd.plotly.v1+json" in out.get("data", {})
               for cell in nb.cells if cell.cell_type == "code" and "remove-output" not in cell.metadata.get("tags", [])
               for out in cell.get("outputs", []))


@pytest.fixture(scope="module")
def book_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("VAE_BOOK_HTML")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("book")
    jb = shutil.which("jupyter-book") or str(Path(sys.executable).parent / "jupyter-book")
    proc = subprocess.run([jb, "build", str(ROOT), "--path-output", str(out), "-W", "-n", "--keep-going"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"book build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return out / "_build" / "html"


@pytest.fixture(scope="module")
def server(book_html: Path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(book_html))
    handler = type("QuietHandler", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *a: None})
    handler = functools.partial(handler, directory=str(book_html))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


class PageVisit:
    """A page opened with console errors and outside requests recorded."""

    def __init__(self, browser, url: str) -> None:
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        browsers.keep_local(self.page, self.outside)
        self.page.goto(url, wait_until="load")
        self.page.wait_for_timeout(1500)  # MathJax and plotly finish drawing
        # explorers out of view are mounted when the main thread is idle (explorer_runtime.js: at most 2 s later)
        self.page.wait_for_function(f"() => {HOSTS}.every(h => h.explorer)", timeout=30_000)


@pytest.mark.parametrize("path", PAGES)
def test_page_loads_offline_without_errors(browser, server, path):
    visit = PageVisit(browser, f"{server}/{path}")
    assert visit.outside == [], f"requests outside localhost: {visit.outside}"
    assert visit.errors == [], f"console errors: {visit.errors}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    visit.page.screenshot(path=str(SCREENSHOTS / (Path(path).stem + ".png")), full_page=True)
    visit.page.close()


@pytest.mark.parametrize("path", PAGES)
def test_plotly_js_is_loaded_once_and_only_where_a_figure_needs_it(browser, server, path):
    """plotly.js (4.6 MB) comes from the book's _static folder, once per page with figures, and never with a page
    that has none (in the head it delays the first paint of a text page by seconds)."""
    visit = PageVisit(browser, f"{server}/{path}")
    found = visit.page.evaluate("""() => ({
        figures: document.querySelectorAll('.plotly-graph-div').length,
        scripts: Array.from(document.scripts).map(s => s.src).filter(s => /plotly[^/]*\\.js/.test(s)),
        loaded: performance.getEntriesByType('resource').map(r => r.name).filter(n => /plotly[^/]*\\.js/.test(n))})""")
    visit.page.close()
    if found["figures"]:
        assert len(found["scripts"]) == len(found["loaded"]) == 1, found
        assert "/_static/vendor/plotly.min.js" in found["scripts"][0], found
    else:
        assert found["scripts"] == found["loaded"] == [], found


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_no_warning_or_error_text_reaches_the_page(browser, server, chapter):
    """A warning a cell prints to stderr (a library's UserWarning, say) would sit in the chapter as a red box."""
    visit = PageVisit(browser, f"{server}/book/{chapter}.html")
    stderr = visit.page.evaluate("""() => Array.from(document.querySelectorAll('.output.stderr, .output.traceback'))
        .map(e => e.innerText.slice(0, 200))""")
    visit.page.close()
    assert stderr == [], stderr


def test_math_is_rendered_by_local_mathjax(browser, server):
    visit = PageVisit(browser, f"{server}/book/01_latent_variable_models.html")
    rendered = visit.page.locator("mjx-container").count()
    raw = visit.page.evaluate("() => document.body.innerText.includes('\\\\int p_\\\\theta')")
    assert rendered > 20 and not raw
    visit.page.close()


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_plotly_figure_is_drawn(browser, server, book_html, chapter):
    visit = PageVisit(browser, f"{server}/book/{chapter}.html")
    # the book draws each figure when it nears the viewport (book/_static/vae-book.js): draw them all, as for printing
    visit.page.evaluate("() => window.vaeBook && vaeBook.drawAll()")
    figures = visit.page.evaluate("""() => Array.from(document.querySelectorAll('.plotly-graph-div')).map(gd => ({
        traces: (gd._fullData || []).length,
        drawn: gd.querySelectorAll(['.heatmaplayer image', '.imagelayer image', '.contourlayer path',
                                    '.scatterlayer path', '.barlayer path', 'canvas'].join(', ')).length,
        height: gd.getBoundingClientRect().height}))""")
    assert len(figures) == expected_figures(book_html, chapter), figures  # chapter 2 has only its explorer
    for fig in figures:
        assert fig["traces"] > 0 and fig["drawn"] > 0 and fig["height"] > 200, fig
    visit.page.close()


def live_widget_cells(chapter: str) -> int:
    """Code cells that show a kernel-only widget (an explorer's ``.live()``); their output must not reach the page."""
    import nbformat

    nb = nbformat.read(ROOT / "book" / f"{chapter}.ipynb", as_version=4)
    return sum(1 for cell in nb.cells if cell.cell_type == "code" and ".live()" in cell.source)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_no_widget_pretends_to_work_in_the_static_page(browser, server, chapter):
    """A widget needs a kernel: the page shows neither the widget nor its text repr, but says where it runs live."""
    visit = PageVisit(browser, f"{server}/book/{chapter}.html")
    found = visit.page.evaluate("""() => ({
        views: document.querySelectorAll('.jupyter-widgets, .widget-slider, script[type*="jupyter.widget"]').length,
        reprs: (document.body.innerText.match(/(VBox|HBox|FloatSlider|FigureWidget|ExplorerWidget)\\(/g) || []).length,
        notes: Array.from(document.querySelectorAll('.admonition')).filter(
            a => a.innerText.includes('Live explorer (needs a running kernel)')).length})""")
    visit.page.close()
    assert found["views"] == 0 and found["reprs"] == 0, found
    assert found["notes"] == live_widget_cells(chapter), found


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_figures_have_alt_text_and_chapters_have_launch_links(browser, server, chapter):
    """Every figure is announced by an aria-label; each chapter links to itself on Binder and Colab; no Thebe."""
    visit = PageVisit(browser, f"{server}/book/{chapter}.html")
    found = visit.page.evaluate("""() => ({
        unlabelled: Array.from(document.querySelectorAll('.plotly-graph-div')).filter(g => {
            const box = g.closest('[role=img]');
            return !box || !(box.getAttribute('aria-label') || '').trim(); }).length,
        uncaptioned: Array.from(document.querySelectorAll('.vae-explorer')).filter(f => {
            const cap = document.getElementById(f.getAttribute('aria-labelledby') || '-');
            return f.getAttribute('role') !== 'figure' || !cap || !cap.textContent.trim(); }).length,
        launch: Array.from(document.querySelectorAll('a[href]')).map(a => a.href)
            .filter(h => h.includes('mybinder.org') || h.includes('colab.research.google.com')),
        thebe: Array.from(document.scripts).filter(s => /thebe/i.test(s.src || s.textContent)).length})""")
    visit.page.close()
    assert found["unlabelled"] == 0 and found["uncaptioned"] == 0, found
    assert found["thebe"] == 0, found
    binder = [h for h in found["launch"] if "mybinder.org" in h]
    colab = [h for h in found["launch"] if "colab.research.google.com" in h]
    assert binder and all(f"book/{chapter}.ipynb" in h for h in binder), binder
    assert colab and all(h.endswith(f"book/{chapter}.ipynb") for h in colab), colab


def test_citations_resolve_on_the_references_page(browser, server):
    visit = PageVisit(browser, f"{server}/book/references.html")
    ids = set(visit.page.evaluate("() => Array.from(document.querySelectorAll('[id]')).map(e => e.id)"))
    visit.page.close()
    missing, cited = [], 0
    for chapter in CHAPTERS:
        visit = PageVisit(browser, f"{server}/book/{chapter}.html")
        hrefs = visit.page.evaluate(
            "() => Array.from(document.querySelectorAll('a[href*=\"references.html#\"]')).map(a => a.href)")
        visit.page.close()
        cited += len(hrefs)
        missing += [h for h in hrefs if h.split("#", 1)[1] not in ids]
    assert cited > 10 and missing == [], (cited, missing)


# ---------------------------------------------------------------- the explorers (vae_lib.explorer) in the page


def _hosts(page) -> int:
    page.wait_for_function(f"() => {HOSTS}.every(h => h.explorer)", timeout=20_000)  # data scripts loaded, drawn
    return page.evaluate(f"() => {HOSTS}.length")


def _values(page, index: int, names: list[str]) -> dict:
    """The explorer's current values as plain JSON (matrices as lists)."""
    return page.evaluate(f"""() => {{ const v = {HOSTS}[{index}].explorer.values(), out = {{}};
        for (const k of {json.dumps(names)}) {{ const x = v[k]; out[k] = x && x.d ? Array.from(x.d) : x; }}
        return out; }}""")


def _spec(page, index: int) -> dict:
    """The explorer's description with its arrays as the page decoded them (lists of float64)."""
    return page.evaluate(f"""() => {{ const e = {HOSTS}[{index}].explorer, data = {{}};
        for (const k of Object.keys(e.data)) data[k] = Array.from(e.data[k]);
        return {{spec: e.spec, data: data}}; }}""")


def torch_program(spec: dict, data: dict, state: dict) -> dict:
    """The explorer's program run with torch on the page's own arrays: an implementation independent of the page's
    (and of vae_lib.explorer's), built from the JSON description with torch.nn and torch.distributions."""
    import torch
    from torch.distributions import Categorical, Independent, Normal, kl_divergence

    arr = {k: torch.tensor(v, dtype=torch.float64) for k, v in data.items()}
    v: dict = dict(state)

    def mat(x):
        t = torch.as_tensor(x, dtype=torch.float64)
        return t.reshape(1, -1) if t.dim() < 2 else t

    for op in spec["program"]:
        kind = op["op"]
        if kind == "stack":
            v[op["output"]] = torch.tensor([[float(v[k]) for k in op["inputs"]]], dtype=torch.float64)
        elif kind == "affine":
            v[op["output"]] = op["a"] * mat(v[op["input"]]) + op.get("b", 0)
        elif kind == "mlp":
            h = mat(v[op["input"]])
            for layer in op["layers"]:
                lin = torch.nn.Linear(*layer["shape"][::-1]).double()
                with torch.no_grad():
                    lin.weight.copy_(arr[layer["w"]].reshape(layer["shape"]))
                    lin.bias.copy_(arr[layer["b"]])
                    h = lin(h)
                    h = torch.nn.functional.silu(h) if layer["act"] == "silu" else h
            v[op["output"]] = h
        elif kind == "convnet":  # chapter 7's decoder, BatchNorm folded into the convolutions by the page's builder
            h = mat(v[op["input"]])
            for layer in op["layers"]:
                w, b = arr[layer["w"]].reshape(layer["shape"]), arr[layer["b"]]
                if layer["kind"] == "linear":
                    h = (h @ w.T + b).reshape(1, *layer["out_shape"])
                elif layer["kind"] == "conv_transpose":
                    h = torch.nn.functional.conv_transpose2d(h, w.permute(1, 0, 2, 3), b, stride=2, padding=1,
                                                             output_padding=1)
                else:
                    h = torch.nn.functional.conv2d(h, w, b, padding=1)
                if layer.get("slope") is not None:
                    h = torch.nn.functional.leaky_relu(h, layer["slope"])
            if op["layout"] == "pixel_major":  # (1, C·k, H, W) -> (1, C, H, W, k)
                h = h.unflatten(1, (-1, op["per_pixel"])).permute(0, 1, 3, 4, 2)
            v[op["output"]] = h.reshape(1, -1)
        elif kind == "head":
            out = mat(v[op["input"]])
            if op["kind"] == "categorical":
                v[op["output"]] = Categorical(logits=out.unflatten(-1, (op["dims"], op["levels"]))).probs @ \
                    torch.arange(op["levels"], dtype=torch.float64)
            elif op["kind"] == "sigmoid":
                v[op["output"]] = op["scale"] * torch.sigmoid(out[:, :op["dims"]])
            else:
                v[op["output"]] = op["scale"] * out[:, :op["dims"]]
        elif kind == "nearest_code":
            book = arr[op["codebook"]].reshape(-1, op["code_dim"])
            z = mat(v[op["input"]])
            v[op["output"]] = book[torch.cdist(z, book).argmin(-1)]
        elif kind == "split":
            for name, part in zip(op["outputs"], mat(v[op["input"]]).chunk(len(op["outputs"]), -1), strict=True):
                v[name] = part
        elif kind == "ellipse":
            m, lv = mat(v[op["mean"]])[0], mat(v[op["log_var"]])[0]
            v[op["output"]] = {"x_max": float(m[0] + op["k"] * (0.5 * lv[0]).exp())}
        elif kind == "kl_std_normal":
            m, lv = mat(v[op["mean"]]), mat(v[op["log_var"]])
            q = Independent(Normal(m, (0.5 * lv).exp()), 1)
            p = Independent(Normal(torch.zeros_like(m), torch.ones_like(m)), 1)
            v[op["output"]] = float(kl_divergence(q, p).sum())
        elif kind == "reparameterize":
            m, lv = mat(v[op["mean"]]), mat(v[op["log_var"]])
            v[op["output"]] = m + (0.5 * lv).exp() * arr[op["eps"]].reshape(-1, m.shape[1])
        elif kind == "categorical_log_likelihood":
            x = mat(v[op["x"]])[0].round().long()
            logits = mat(v[op["logits"]]).unflatten(-1, (-1, op["levels"]))  # (K, D, levels)
            v[op["output"]] = float(Categorical(logits=logits).log_prob(x).sum(-1).mean())
        elif kind == "difference":
            v[op["output"]] = v[op["inputs"][0]] - v[op["inputs"][1]]
        else:
            raise AssertionError(f"no torch reference for op {kind}")
    return v


def _plane_point(page, index: int, z1: float, z2: float) -> tuple[float, float]:
    """Client pixel coordinates of (z1, z2) on the explorer's draggable plane."""
    return tuple(page.evaluate(f"""() => {{
        const h = {HOSTS}[{index}], svg = h.querySelector('svg[role=application]');
        svg.scrollIntoView({{block: 'center'}});
        const spec = h.explorer.spec.panels.find(p => p.drag), vb = svg.viewBox.baseVal;
        const box = svg.getBoundingClientRect();
        const m = {{l: 52, r: 12, t: 28, b: 46}}, W = vb.width, H = vb.height;
        const u = m.l + ({z1} - spec.x.range[0]) / (spec.x.range[1] - spec.x.range[0]) * (W - m.l - m.r);
        const w = H - m.b - ({z2} - spec.y.range[0]) / (spec.y.range[1] - spec.y.range[0]) * (H - m.t - m.b);
        return [box.left + u * box.width / W, box.top + w * box.height / H]; }}"""))


def _latent_indices(page) -> list[int]:
    """The latent explorers: a draggable plane and a decoded image (vae_lib.latent_explorer)."""
    return page.evaluate(f"() => {HOSTS}.map((h, i) => [h, i]).filter(([h]) => h.explorer.spec.panels.some(p => p.drag)"
                         " && h.explorer.spec.panels.some(p => p.output === 'image')).map(([h, i]) => i)")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_chapter_draws_its_static_explorers(browser, server, book_html, chapter):
    """Each explorer the executed notebook displays is drawn in the page: a figure with panels, controls and a
    readout; the runtime is loaded once, from the book's own _static folder."""
    visit = PageVisit(browser, f"{server}/book/{chapter}.html")
    page = visit.page
    n = _hosts(page)
    assert n == explorer_outputs(book_html.parent / "jupyter_execute" / "book" / f"{chapter}.ipynb") >= 1
    found = page.evaluate(f"""() => ({{
        drawn: {HOSTS}.map(h => h.querySelectorAll('svg, canvas').length),
        readouts: {HOSTS}.map(h => h.querySelector('[aria-live]').textContent.length),
        runtimes: Array.from(document.scripts).filter(s => /explorer_runtime/.test(s.src)).map(s => s.src),
        inline: Array.from(document.scripts).filter(s => s.dataset.vaeExplorerRuntime).length}})""")
    assert all(k >= 1 for k in found["drawn"]) and all(k > 0 for k in found["readouts"]), found
    assert len(found["runtimes"]) == 1 and "/_static/vendor/explorer_runtime.js" in found["runtimes"][0], found
    assert found["inline"] == 0, found
    assert visit.errors == [] and visit.outside == []
    visit.page.close()


def _builds(chapter: str, call: str) -> bool:
    """Whether the chapter shows the output of a cell that calls ``call`` (a static explorer builder)."""
    import nbformat

    nb = nbformat.read(ROOT / "book" / f"{chapter}.ipynb", as_version=4)
    return any(call in cell.source for cell in nb.cells
               if cell.cell_type == "code" and "remove-output" not in cell.metadata.get("tags", []))


LATENT_CHAPTERS = [c for c in CHAPTERS if _builds(c, "latent_explorer(")]


@pytest.mark.parametrize("chapter", LATENT_CHAPTERS)
def test_latent_explorers_move_continuously_and_agree_with_torch(browser, server, chapter):
    """Dragging the marker to two nearby points decodes two different outputs (z is continuous, not snapped to a
    grid), and the page's decoded output equals torch's run of the page's own weights at the same z."""
    visit = PageVisit(browser, f"{server}/book/{chapter}.html")
    page = visit.page
    _hosts(page)
    latent = _latent_indices(page)
    assert latent, "no latent explorer on the page"
    for index in latent:
        spec = _spec(page, index)
        plane = next(p for p in spec["spec"]["panels"] if p.get("drag"))
        a, b = plane["drag"]
        lo, hi = plane["x"]["range"]
        images = []
        # nearby points; a VQ-VAE's decoder is constant on each Voronoi cell (by design), so there the second point
        # lies across the plane, in another cell
        quantised = any(op["op"] == "nearest_code" for op in spec["spec"]["program"])
        second = (0.8 * lo + 0.2 * hi, -1.5) if quantised else (0.31 * lo + 0.69 * hi + 0.05, 0.53)
        for z in ((0.31 * lo + 0.69 * hi, 0.5), second):
            x, y = _plane_point(page, index, *z)
            page.mouse.move(x - 20, y)
            page.mouse.down()
            page.mouse.move(x, y, steps=4)  # a drag, not a click
            page.mouse.up()
            got = _values(page, index, [a, b, "image"])
            assert got[a] == pytest.approx(z[0], abs=0.05) and got[b] == pytest.approx(z[1], abs=0.05), (z, got)
            images.append(got["image"])
            expected = torch_program(spec["spec"], spec["data"], {a: got[a], b: got[b]})["image"]
            assert max(abs(p - q) for p, q in zip(got["image"], expected.flatten().tolist(), strict=True)) < 1e-3
        assert images[0] != images[1], "two nearby points decoded to the same output: z is not continuous"
    assert visit.errors == [] and visit.outside == []
    visit.page.close()


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_explorer_works_with_the_keyboard_alone(browser, server, chapter):
    """Tab reaches each explorer's controls; arrow keys move a focused plane (Shift: ten steps) and sliders; the
    readout (an aria-live region) follows."""
    visit = PageVisit(browser, f"{server}/book/{chapter}.html")
    page = visit.page
    n = _hosts(page)
    for index in range(n):
        host = page.evaluate_handle(f"() => {HOSTS}[{index}]").as_element()
        readout = host.query_selector("[aria-live]")
        plane = host.query_selector("svg[role=application]")
        if plane is not None:
            names = page.evaluate(f"() => {HOSTS}[{index}].explorer.spec.panels.find(p => p.drag).drag")
            step = page.evaluate(f"() => {HOSTS}[{index}].explorer.spec.controls"
                                 f".find(c => c.name === '{names[0]}').step")
            before = _values(page, index, names)
            plane.focus()
            page.keyboard.press("ArrowRight")
            page.keyboard.press("Shift+ArrowUp")
            after = _values(page, index, names)
            assert after[names[0]] == pytest.approx(before[names[0]] + step, abs=1e-9)
            assert after[names[1]] == pytest.approx(before[names[1]] + 10 * step, abs=1e-9)
        controls = host.query_selector_all("input[type=range], select")
        assert controls or plane is not None or host.query_selector("canvas[tabindex]"), "nothing to operate"
        for control in controls[:2]:
            text = readout.text_content()
            values = page.evaluate(f"() => JSON.stringify({HOSTS}[{index}].explorer.values(), (k, v) => "
                                   "v && v.d ? Array.from(v.d).slice(0, 4) : v)")
            control.focus()
            page.keyboard.press("ArrowRight" if control.evaluate("e => e.tagName") == "INPUT" else "ArrowDown")
            moved = page.evaluate(f"() => JSON.stringify({HOSTS}[{index}].explorer.values(), (k, v) => "
                                  "v && v.d ? Array.from(v.d).slice(0, 4) : v)")
            assert moved != values, f"explorer {index}: a key on a control changed nothing"
            assert readout.text_content() != text or "z =" not in text
    assert visit.errors == [] and visit.outside == []
    visit.page.close()


PAD_CHAPTERS = [c for c in CHAPTERS if _builds(c, "drawing_pad_explorer(")]


@pytest.mark.parametrize("chapter", PAD_CHAPTERS)
def test_drawing_pad_encodes_what_the_mouse_draws(browser, server, chapter):
    """Clear the pad, draw two strokes with the mouse: the page's q(z|x) ellipse, reconstruction, KL, reconstruction
    term and ELBO equal torch's for the same pixels (the page's own weights)."""
    visit = PageVisit(browser, f"{server}/book/{chapter}.html")
    page = visit.page
    _hosts(page)
    index = page.evaluate(f"() => {HOSTS}.findIndex(h => h.querySelector('.vae-explorer-pad-canvas'))")
    assert index >= 0
    host = page.evaluate_handle(f"() => {HOSTS}[{index}]").as_element()
    host.scroll_into_view_if_needed()
    host.query_selector("button:has-text('clear')").click()
    cleared = _values(page, index, ["x", "elbo"])
    assert set(cleared["x"]) == {0}
    box = host.query_selector(".vae-explorer-pad-canvas").bounding_box()
    for (u0, v0), (u1, v1) in (((0.3, 0.15), (0.7, 0.15)), ((0.65, 0.2), (0.35, 0.85))):  # a 7: bar, then stem
        page.mouse.move(box["x"] + u0 * box["width"], box["y"] + v0 * box["height"])
        page.mouse.down()
        page.mouse.move(box["x"] + u1 * box["width"], box["y"] + v1 * box["height"], steps=12)
        page.mouse.up()
    got = _values(page, index, ["x", "mu", "log_var", "kl", "reconstruction", "elbo", "recon", "ellipse1"])
    assert sum(got["x"]) > 50 and all(float(p).is_integer() and 0 <= p <= 16 for p in got["x"])
    spec = _spec(page, index)
    ref = torch_program(spec["spec"], spec["data"], {"x": [got["x"]]})
    assert got["mu"] == pytest.approx(ref["mu"].flatten().tolist(), abs=1e-4)  # the page runs networks in float32
    assert max(got["ellipse1"]["x"]) == pytest.approx(ref["ellipse1"]["x_max"], abs=1e-3)
    for key in ("kl", "reconstruction", "elbo"):
        assert got[key] == pytest.approx(ref[key], abs=1e-3), key
    assert got["recon"] == pytest.approx(ref["recon"].flatten().tolist(), abs=1e-4)
    assert got["elbo"] != cleared["elbo"]
    readout = host.query_selector("[aria-live]").text_content()
    assert f"ELBO = {got['elbo']:.2f}".replace("-", "\u2212") in readout, readout
    host.query_selector("button:has-text('load a test digit')").click()
    host.query_selector("button:has-text('add noise')").click()
    assert _values(page, index, ["elbo"])["elbo"] != got["elbo"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    host.screenshot(path=str(SCREENSHOTS / f"{chapter}-drawing-pad.png"))
    assert visit.errors == [] and visit.outside == []
    visit.page.close()
