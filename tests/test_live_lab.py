"""The live latent explorer in a running JupyterLab, moved by a reader in headless Chromium.

The live explorer (``vae_lib.latent_explorer(...).live()``, an anywidget drawn by the book's explorer runtime) runs the
decoder p_θ(x|z) in the kernel, with torch, on every move. This test starts JupyterLab on 127.0.0.1 (random token, free
port) serving a *copy* of a chapter in a temporary folder (autosave never touches ``book/``), opens it in headless
Chromium (the ``browser`` fixture of ``tests/conftest.py``) through Playwright with every request that leaves localhost
blocked, runs all cells through JupyterLab's command registry (``--LabApp.expose_app_in_browser``), then drags the live
explorer's marker across its phase diagram with the mouse, as a reader does. The decoded image and the readout must
change, and the image the browser draws must equal the decoder's mean at the z the kernel received. A control run then
detaches the widget's observer in the kernel: a keyboard move still reaches the kernel but must leave the image
unchanged, so the first change is the kernel's doing. Screenshots of the explorer before and after the move land in
``artifacts/screenshots/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
# Chapters 1 and 5 both show a live explorer; chapter 1 runs faster (about 25 s against 35 s).
CHAPTER = "01_latent_variable_models"
LIVE_CALL = re.compile(r"^(\w+)\s*=\s*vae_lib\.latent_explorer\(\s*([\w.]+)\s*,.*?\.live\(\)", re.MULTILINE | re.DOTALL)
SERVER_START_S = 120
RUN_ALL_S = 420  # all cells, on a 2-core machine shared with another pytest worker
KERNEL_ROUND_TRIP_MS = 60_000
# Plugins and server features that call the internet: the news feed, update checks, the PyPI extension manager.
PAGE_CONFIG = {"disabledExtensions": {"@jupyterlab/extensionmanager-extension": True,
                                      "@jupyterlab/apputils-extension:announcements": True}}
USER_SETTINGS = {"@jupyterlab/apputils-extension/notification.jupyterlab-settings":
                 {"fetchNews": "false", "checkForUpdates": False}}
LAB_CONFIG = {"LabApp": {"news_url": None, "extension_manager": "readonly",
                         "check_for_updates_class": "jupyterlab.handlers.announcements.NeverCheckForUpdate"}}


def live_cell(chapter: str) -> tuple[int, str, str]:
    """(cell index, explorer variable, model variable) of the chapter's live explorer cell."""
    import nbformat

    nb = nbformat.read(ROOT / "book" / f"{chapter}.ipynb", as_version=4)
    found = [(i, m) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
             for m in [LIVE_CALL.search(cell.source)] if m]
    assert len(found) == 1, f"{chapter} should build exactly one live explorer, found {len(found)}"
    index, match = found[0]
    return index, match.group(1), match.group(2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_json(path: Path, content: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content), encoding="utf-8")


class Lab:
    """A JupyterLab server on 127.0.0.1 serving a temporary folder; nothing it writes lands in the repository."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.root = home / "notebooks"
        self.root.mkdir()
        self.token = secrets.token_hex(24)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config, settings = home / "config", home / "settings"
        _write_json(config / "labconfig" / "page_config.json", PAGE_CONFIG)
        _write_json(config / "jupyter_server_config.json", LAB_CONFIG)
        for name, content in USER_SETTINGS.items():
            _write_json(settings / name, content)
        # config, data (notebook signatures), runtime and IPython folders in the temporary home: nothing from
        # or into the user's ~/.jupyter, ~/.local/share/jupyter or ~/.ipython; kernels and lab extensions come
        # from this environment (sys.prefix)
        env = dict(os.environ, JUPYTER_CONFIG_DIR=str(config), JUPYTER_DATA_DIR=str(home / "data"),
                   JUPYTER_RUNTIME_DIR=str(home / "runtime"), IPYTHONDIR=str(home / "ipython"),
                   JUPYTER_PREFER_ENV_PATH="1",
                   # one thread per kernel: the machine has 2 cores and another pytest worker runs beside us
                   OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        self.log = (home / "lab.log").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
             f"--ServerApp.root_dir={self.root}", "--ServerApp.terminals_enabled=False",
             "--ServerApp.allow_root=True",  # CI containers run as root
             "--LabApp.expose_app_in_browser=True", f"--LabApp.user_settings_dir={settings}",
             f"--LabApp.workspaces_dir={home / 'workspaces'}"],
            cwd=self.root, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def api(self, path: str, method: str = "GET") -> dict:
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else {}

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"JupyterLab exited with {self.proc.returncode}:\n{self.log_tail()}"
            try:
                self.api("/api/status")
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        raise AssertionError(f"JupyterLab did not answer /api/status within {SERVER_START_S} s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        self.log.flush()
        return (self.home / "lab.log").read_text(encoding="utf-8", errors="replace")[-chars:]

    def shutdown(self) -> None:
        """Stop the kernels and the server (``/api/shutdown``); terminate, then kill, if it does not exit."""
        if self.proc.poll() is None:
            try:
                self.api("/api/shutdown", method="POST")
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    started = time.monotonic()
    server = Lab(tmp_path_factory.mktemp("live_lab"))
    try:
        for notebook in sorted((ROOT / "book").glob("*.ipynb")):  # every chapter (the MyST test reads them all)
            shutil.copy(notebook, server.root / notebook.name)
        server.wait_until_up()
        print(f"\nJupyterLab up in {time.monotonic() - started:.1f} s")
        yield server
    finally:
        stopping = time.monotonic()
        server.shutdown()
        print(f"\nJupyterLab and its kernel stopped in {time.monotonic() - stopping:.1f} s")


class LabPage:
    """The chapter open in JupyterLab, with page errors, console errors and outside requests recorded."""

    def __init__(self, browser) -> None:
        self.errors: list[str] = []
        self.console_errors: list[str] = []
        self.outside: list[str] = []
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e) + " @ " + str(e.stack)[:1500]))

        def route(r):
            host = urlparse(r.request.url).hostname
            if r.request.url.startswith(("data:", "blob:")) or host in ("127.0.0.1", "localhost"):
                r.continue_()
            else:
                self.outside.append(r.request.url)
                r.abort()

        self.page.route("**/*", route)

    def open(self, lab: Lab, notebook: str) -> None:
        """Load JupyterLab on the notebook; wait until its kernel is idle; record the kernel's troubles from then."""
        self.page.goto(f"{lab.url}/lab/tree/{notebook}?token={lab.token}", wait_until="load")
        self.page.wait_for_function("() => window.jupyterapp !== undefined", timeout=SERVER_START_S * 1000)
        self.page.evaluate("() => { window.jupyterapp.restored.then(() => { window.__restored = true; }); }")
        # the notebook panel is open and its kernel has started and gone idle (the predicate must not be async:
        # Playwright takes a returned promise for a truthy value)
        self.page.wait_for_function("""(name) => {
            if (!window.__restored) return false;
            const panel = Array.from(window.jupyterapp.shell.widgets('main'))
                .find(w => w.context && w.context.path === name);
            if (!panel || !panel.context.isReady || !panel.sessionContext.isReady) return false;
            window.__panel = panel;
            const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
            return !!kernel && kernel.status === 'idle'; }""", arg=notebook, timeout=SERVER_START_S * 1000,
            polling=500)
        self.page.evaluate("""() => { window.__kernelTrouble = [];
            window.__panel.sessionContext.statusChanged.connect((_, status) => {
                if (['dead', 'restarting', 'autorestarting', 'terminating'].includes(status))
                    window.__kernelTrouble.push(status); }); }""")

    def kernel_troubles(self) -> list[str]:
        return self.page.evaluate("() => window.__kernelTrouble")

    def run_all(self) -> dict[int, str]:
        """Run every cell (JupyterLab's "Run All Cells"), wait until done, and fail on any error output.

        Returns the text the cells wrote to stderr (warnings), by cell index.
        """
        self.page.evaluate("""() => { window.__runAll = null;
            window.jupyterapp.commands.execute('notebook:run-all-cells').then(
                ok => { window.__runAll = {ok: ok}; }, e => { window.__runAll = {error: String(e)}; }); }""")
        self.page.wait_for_function("() => window.__runAll !== null", timeout=RUN_ALL_S * 1000, polling=1000)
        self.page.wait_for_function("() => window.__panel.sessionContext.session.kernel.status === 'idle'",
                                    timeout=KERNEL_ROUND_TRIP_MS, polling=200)
        result = self.page.evaluate("() => window.__runAll")
        cells = self.page.evaluate("""() => {
            const cells = window.__panel.content.model.cells;
            const out = [];
            for (let i = 0; i < cells.length; i++) {
                const c = cells.get(i).toJSON();
                if (c.cell_type !== 'code') continue;
                const outputs = c.outputs || [];
                out.push({index: i, count: c.execution_count,
                          errors: outputs.filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue),
                          stderr: outputs.filter(o => o.output_type === 'stream' && o.name === 'stderr')
                                         .map(o => [].concat(o.text).join('')).join('')});
            }
            return out; }""")
        errors = [(c["index"], c["errors"]) for c in cells if c["errors"]]
        assert errors == [], f"error outputs in the notebook: {errors}"
        assert result == {"ok": True}, f"Run All did not succeed: {result}"
        assert all(c["count"] is not None for c in cells), [c["index"] for c in cells if c["count"] is None]
        return {c["index"]: c["stderr"] for c in cells if c["stderr"]}

    def kernel_json(self, code: str):
        """Run ``code`` in the notebook's kernel (not as a cell) and parse the JSON it prints."""
        reply = self.page.evaluate("""async (code) => {
            const kernel = window.__panel.sessionContext.session.kernel;
            const future = kernel.requestExecute({code: code, silent: false, store_history: false});
            let text = ''; const errors = [];
            future.onIOPub = (msg) => {
                if (msg.header.msg_type === 'stream' && msg.content.name === 'stdout') text += msg.content.text;
                if (msg.header.msg_type === 'error') errors.push(msg.content.ename + ': ' + msg.content.evalue);
            };
            const done = await future.done;
            return {status: done.content.status, text: text, errors: errors}; }""", code)
        assert reply["status"] == "ok" and reply["errors"] == [], reply
        return json.loads(reply["text"])


# The live explorer as the browser draws it: the values its runtime holds (sent by the kernel) and the readout.
FIGURE_STATE = """(cell) => {
    const host = cell.querySelector('.vae-explorer').parentNode, v = host.explorer.values();
    const canvas = cell.querySelector('.vae-explorer-image canvas');
    return {z: [v.z1, v.z2], image: v.image && v.image.d ? Array.from(v.image.d) : null, seq: v['#seq'],
            readout: cell.querySelector('.vae-explorer-readout').textContent.replace(/\u2212/g, '-'),
            drawn: !!canvas && canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data
                                     .some((c, k) => k % 4 !== 3 && c < 250)};
}"""


def _kernel_state(page: LabPage, live: str, model: str) -> dict:
    """The z the kernel last received and the model's decoder mean E[x|z] there (flattened)."""
    return page.kernel_json(
        "import json as _j, torch as _t\n"
        f"_z = [float({live}.state.get('z1', 0.0)), float({live}.state.get('z2', 0.0))]\n"
        "with _t.no_grad():\n"
        f"    _x = {model}.decode_mean(_t.tensor([_z], dtype=_t.float32)).reshape(-1)\n"
        "print(_j.dumps({'z': _z, 'decoded': _x.tolist()}))\n"
        "del _j, _t, _z, _x")


def _label(z1: float, z2: float) -> str:
    return f"z = ({z1:.2f}, {z2:.2f})".replace("-0.00", "0.00")


def _max_abs_diff(a: list[float], b: list[float]) -> float:
    """Largest pixel difference between two flattened images."""
    assert len(a) == len(b), f"images of {len(a)} and {len(b)} pixels"
    return max(abs(u - v) for u, v in zip(a, b, strict=True))


def test_live_explorer_slider_runs_the_decoder_in_the_kernel(browser, lab):
    """Drag z in the browser: the kernel decodes the new z and the explorer shows it; no observer, no change."""
    index, live, decoder = live_cell(CHAPTER)
    page = LabPage(browser)
    try:
        _drive_live_explorer(page, lab, index, live, decoder)
    except BaseException:
        print(f"page errors: {page.errors}\nconsole errors: {page.console_errors}\nblocked: {page.outside}\n"
              f"JupyterLab log:\n{lab.log_tail()}")
        raise
    finally:
        page.page.close()


def _drive_live_explorer(page: LabPage, lab: Lab, index: int, live: str, model: str) -> None:
    started = time.monotonic()
    page.open(lab, f"{CHAPTER}.ipynb")
    opened = time.monotonic()
    stderr = page.run_all()
    ran = time.monotonic()
    # the chapter's static explorers (text/html outputs with the runtime inline) run in JupyterLab too, no kernel
    # needed; one out of view is mounted when the main thread is idle (explorer_runtime.js: at most 2 s later)
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    hosts = "Array.from(document.querySelectorAll('.vae-explorer-host'))"
    with contextlib.suppress(PlaywrightTimeout):  # the assertion below says what is missing
        page.page.wait_for_function(f"() => {hosts}.length >= 2 && {hosts}.every(h => h.explorer)", timeout=10_000)
    static = page.page.evaluate(f"() => {hosts}.map(h => !!h.explorer && h.querySelectorAll('svg, canvas').length)")
    assert len(static) >= 2 and all(static), f"static explorers in JupyterLab: {static}"
    cell = page.page.evaluate_handle("(i) => window.__panel.content.widgets[i].node", index).as_element()
    cell.scroll_into_view_if_needed()
    cell.wait_for_selector(".vae-explorer svg[role=application]", timeout=KERNEL_ROUND_TRIP_MS)
    page.page.wait_for_function(f"(cell) => ({FIGURE_STATE})(cell).image !== null", arg=cell,
                                timeout=KERNEL_ROUND_TRIP_MS)
    before = page.page.evaluate(FIGURE_STATE, cell)
    kernel_before = _kernel_state(page, live, model)
    assert kernel_before["z"] == [0.0, 0.0] and before["z"] == [0.0, 0.0] and before["drawn"], before
    assert _label(0.0, 0.0) in before["readout"], before["readout"]
    assert _max_abs_diff(before["image"], kernel_before["decoded"]) < 1e-4
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    cell.screenshot(path=str(SCREENSHOTS / f"live_lab_{CHAPTER}_before.png"))

    # drag the marker from the centre of the phase diagram towards its upper right, as a reader does
    plane = cell.query_selector(".vae-explorer svg[role=application]").bounding_box()
    x0, y0 = plane["x"] + 0.55 * plane["width"], plane["y"] + 0.47 * plane["height"]
    page.page.mouse.move(x0, y0)
    page.page.mouse.down()
    page.page.mouse.move(x0 + 0.25 * plane["width"], y0 - 0.2 * plane["height"], steps=8)
    page.page.mouse.up()
    # the image follows once the kernel's values for the last z have arrived (the seq the front end sent last)
    try:
        page.page.wait_for_function(f"""(cell) => {{ const s = ({FIGURE_STATE})(cell);
            const host = cell.querySelector('.vae-explorer').parentNode;
            return s.z[0] > 0.5 && s.seq === host.explorer.values()['#sent']; }}""", arg=cell,
                                    timeout=KERNEL_ROUND_TRIP_MS, polling=100)
    except Exception:
        state = page.page.evaluate(FIGURE_STATE, cell)
        sent = page.page.evaluate("(cell) => cell.querySelector('.vae-explorer').parentNode.explorer.values()['#sent']",
                                  cell)
        raise AssertionError(f"after the drag: z {state['z']}, seq {state['seq']}, sent {sent}, "
                             f"kernel {_kernel_state(page, live, model)['z']}") from None
    after = page.page.evaluate(FIGURE_STATE, cell)
    cell.screenshot(path=str(SCREENSHOTS / f"live_lab_{CHAPTER}_after.png"))
    kernel_after = _kernel_state(page, live, model)
    z1, z2 = kernel_after["z"]
    assert 0.5 < z1 < 3.0 and 0.3 < z2 < 3.0, kernel_after["z"]
    assert after["z"] == pytest.approx([z1, z2], abs=1e-9) and _label(z1, z2) in after["readout"], after
    assert _max_abs_diff(after["image"], kernel_after["decoded"]) < 1e-4, "the browser does not show E[x|z] at z"
    assert _max_abs_diff(after["image"], before["image"]) > 0.5, "the decoded output barely changed"
    moved = time.monotonic()

    # control: without the observer, a move still reaches the kernel but the image must stay as it is
    page.kernel_json(f"{live}.unobserve({live}._on_state, names='state'); print('null')")
    slider = cell.query_selector(".vae-explorer input[type=range]")
    slider.focus()
    page.page.keyboard.press("Home")  # z₁ to the low end of its range
    deadline = time.monotonic() + KERNEL_ROUND_TRIP_MS / 1000
    while _kernel_state(page, live, model)["z"][0] != -3.0:
        assert time.monotonic() < deadline, "the keyboard move did not reach the kernel"
        page.page.wait_for_timeout(200)
    page.page.wait_for_timeout(2000)  # an observer would have answered by now
    detached = page.page.evaluate(FIGURE_STATE, cell)
    assert detached["z"][0] == -3.0 and detached["image"] == after["image"], "the image moved without its observer"

    # with the observer back, the same keyboard path updates the image again
    page.kernel_json(f"{live}.observe({live}._on_state, names='state'); print('null')")
    # an arrow key is the explorer's, not JupyterLab's: z₁ moves one step and the notebook's active cell stays
    active_cell = "() => window.__panel.content.activeCellIndex"
    active_before = page.page.evaluate(active_cell)
    target = -3.0 + float(slider.get_attribute("step"))
    slider.press("ArrowRight")
    try:
        page.page.wait_for_function(f"""(cell) => {{ const s = ({FIGURE_STATE})(cell);
            const host = cell.querySelector('.vae-explorer').parentNode;
            return Math.abs(s.z[0] - {target!r}) < 1e-9 && s.seq === host.explorer.values()['#sent']; }}""",
                                    arg=cell, timeout=KERNEL_ROUND_TRIP_MS, polling=100)
    except Exception:
        state = page.page.evaluate(FIGURE_STATE, cell)
        sent = page.page.evaluate("(cell) => cell.querySelector('.vae-explorer').parentNode.explorer.values()['#sent']",
                                  cell)
        focus = page.page.evaluate("() => document.activeElement.outerHTML.slice(0, 200)")
        kstate = page.kernel_json(f"import json as _j; print(_j.dumps({{k: v for k, v in {live}.state.items() "
                                  f"if k != 'x'}})); del _j")
        raise AssertionError(f"after the key press: z {state['z']}, seq {state['seq']}, sent {sent}, "
                             f"kernel {kstate}, slider {slider.evaluate('e => e.value')}, focus {focus}") from None
    kernel_end = _kernel_state(page, live, model)
    assert _max_abs_diff(page.page.evaluate(FIGURE_STATE, cell)["image"], kernel_end["decoded"]) < 1e-4
    assert page.page.evaluate(active_cell) == active_before, "the arrow key moved the notebook's active cell"
    # the same on the phase diagram: ArrowUp moves z₂, not the cell selection
    z2_before = kernel_end["z"][1]
    cell.query_selector(".vae-explorer svg[role=application]").press("ArrowUp")
    deadline = time.monotonic() + KERNEL_ROUND_TRIP_MS / 1000
    while _kernel_state(page, live, model)["z"][1] <= z2_before:
        assert time.monotonic() < deadline, "ArrowUp on the phase diagram did not reach the kernel"
        page.page.wait_for_timeout(200)
    assert page.page.evaluate(active_cell) == active_before, "ArrowUp moved the notebook's active cell"

    status = page.page.evaluate("() => window.__panel.sessionContext.session.kernel.status")
    assert status == "idle" and page.kernel_troubles() == [], (status, page.kernel_troubles())
    # JupyterLab 4.6's cell toolbar measures a rendered markdown cell through `inputArea.renderedInput`, which
    # jupyterlab-myst's markdown cells do not have: when the active cell passes a markdown cell during Run All, its
    # overlap check throws from `_markdownOverlapsToolbar` (JupyterLab's code, with no effect on the page). Only that
    # error is let through; any other uncaught error fails.
    ours = [e for e in page.errors if "_markdownOverlapsToolbar" not in e]
    assert ours == [], f"uncaught errors in the page: {ours}"
    # requests we blocked log "net::ERR_FAILED"; any other console error (a widget that failed to load) fails
    # jupyterlab-myst logs "Cross reference target was not found" for each {term}/{ref} to another page (the glossary,
    # another chapter): in JupyterLab a notebook is read alone; those links show as plain text
    unexpected = [e for e in page.console_errors if "net::ERR_FAILED" not in e
                  and not all(line.startswith("Cross reference target was not found: ") for line in e.splitlines())]
    assert unexpected == [], f"console errors: {unexpected}"
    print(f"\nopen {opened - started:.1f} s, Run All {ran - opened:.1f} s, drag {moved - ran:.1f} s, "
          f"control {time.monotonic() - moved:.1f} s\nblocked requests: {page.outside}\n"
          f"console errors: {page.console_errors}\nstderr of the cells: {stderr}")


# ---------------------------------------------------------------- MyST in JupyterLab (jupyterlab-myst)
# Text that only MyST markup leaves behind when nothing renders it: directive fences, roles, directive options,
# substitutions, and display maths that was not typeset (``$$``). Read from the rendered cells' text without KaTeX's
# TeX annotations (TeX has its own braces) and without code (which may quote markup on purpose).
RAW_MYST = re.compile(r":::|```|\{[a-z]+(?::[a-z]+)?\}`|\{(?:admonition|note|tip|warning|dropdown|glossary|figure|"
                      r"math)\}|^\s*:(?:class|label|name|alt|open):|\{\{|\$\$", re.MULTILINE)
ADMONITION = re.compile(r"^(?::{3,}|`{3,})\{(admonition|note|tip|warning|important|caution|seealso|attention|danger|"
                        r"error|hint)\}", re.MULTILINE)
DROPDOWN = re.compile(r"^(?::{3,}|`{3,})\{(?:admonition|note|tip|warning)\}[^\n]*\n(?::\w+:[^\n]*\n)*?:class:[^\n]*"
                      r"\bdropdown\b", re.MULTILINE)
DISPLAY_MATH = re.compile(r"\$\$.+?\$\$|^(?::{3,}|`{3,})\{math\}", re.MULTILINE | re.DOTALL)
RENDER_S = 120

# Every markdown cell of the open notebook, as jupyterlab-myst rendered it (null while a cell is not rendered yet).
MARKDOWN_CELLS = """(panel) => panel.content.widgets.filter(w => w.model.type === 'markdown').map(w => {
    const myst = w.node.querySelector('.myst');
    if (!myst) return null;
    const copy = myst.cloneNode(true);
    copy.querySelectorAll('annotation, .katex-mathml, code, pre').forEach(e => e.remove());
    return {text: copy.textContent, admonitions: myst.querySelectorAll('.myst-admonition').length,
            dropdowns: myst.querySelectorAll('details.myst-admonition.dropdown').length,
            display_math: myst.querySelectorAll('.katex-display').length,
            unresolved_citations: myst.querySelectorAll('[title="Citation Not Found"]').length};
})"""


def _myst_source_counts(notebook: Path) -> dict[str, int]:
    import nbformat

    cells = [c.source for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "markdown"]
    return {"cells": len(cells), "admonitions": sum(len(ADMONITION.findall(c)) for c in cells),
            "dropdowns": sum(len(DROPDOWN.findall(c)) for c in cells),
            "display_math": sum(len(DISPLAY_MATH.findall(c)) for c in cells)}


def test_chapters_markdown_renders_as_myst_in_jupyterlab(browser, lab):
    """Every chapter opened in JupyterLab: each markdown cell rendered by jupyterlab-myst, its admonitions boxes (the
    dropdowns collapsible), its display maths typeset, and no raw MyST markup (``:::``, ``{cite:p}`...```,
    ``{admonition}``, ``{eq}``, ``{term}``, ``{ref}``, ``:class:``) left in the text a reader sees."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    outside: list[str] = []
    page.route("**/*", lambda r: r.continue_() if urlparse(r.request.url).hostname in ("127.0.0.1", "localhost")
               or r.request.url.startswith(("data:", "blob:")) else (outside.append(r.request.url), r.abort()))
    try:
        # ?reset: an empty workspace (no tabs restored from the live test)
        page.goto(f"{lab.url}/lab?reset&token={lab.token}", wait_until="load")
        page.wait_for_function("() => window.jupyterapp !== undefined", timeout=SERVER_START_S * 1000)
        page.evaluate("() => window.jupyterapp.restored")
        found, unresolved, problems = {}, {}, {}
        for notebook in sorted(lab.root.glob("*.ipynb")):  # the copies the server serves
            started = time.monotonic()
            page.evaluate("""async (path) => {
                window.__myst = await window.jupyterapp.commands.execute('docmanager:open', {path: path});
                await window.__myst.context.ready; }""", notebook.name)
            page.wait_for_function(f"() => ({MARKDOWN_CELLS})(window.__myst).every(c => c !== null)",
                                   timeout=RENDER_S * 1000, polling=500)
            cells = page.evaluate(f"() => ({MARKDOWN_CELLS})(window.__myst)")
            raw = [(i, m.group(0), c["text"][max(0, m.start() - 40):m.end() + 40]) for i, c in enumerate(cells)
                   for m in [RAW_MYST.search(c["text"])] if m]
            expected = _myst_source_counts(notebook)
            found[notebook.name] = {"cells": len(cells), **{k: sum(c[k] for c in cells)
                                                            for k in ("admonitions", "dropdowns", "display_math")}}
            if raw or found[notebook.name] != expected:
                problems[notebook.name] = {"raw markup (markdown cell, match, context)": raw,
                                           "rendered": found[notebook.name], "in the source": expected}
            unresolved[notebook.name] = sum(c["unresolved_citations"] for c in cells)
            page.evaluate("""async () => { const w = window.__myst;
                if (w.sessionContext.session) await w.sessionContext.shutdown(); w.dispose(); }""")
            print(f"{notebook.name}: {found[notebook.name]} rendered in {time.monotonic() - started:.1f} s")
        assert problems == {}, f"MyST that JupyterLab does not render as the book does: {problems}"
        assert outside == [], f"requests that left localhost: {outside}"
        # jupyterlab-myst has no bibliography: a citation shows its key (e.g. kingma2014) with a warning sign
        print(f"citations shown as keys (no bibliography in JupyterLab): {unresolved}")
    finally:
        page.close()
