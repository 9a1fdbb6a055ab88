"""The built book in headless Chromium: page weight and load time, and the static explorers' update time.

The HTML folder is served on 127.0.0.1 (plain HTTP, no compression, no cache headers) and opened with the Chromium
the browser tests use (tests/browsers.py), through Playwright, as tests/test_browser.py does; requests that leave
localhost are blocked and counted (tests/browsers.py's keep_local).
Each page load uses a fresh browser context (empty cache), so the shared static files are transferred every time.

* Page load (:func:`page_loads`), each of ``loads`` runs in fresh contexts (empty cache):

  - the page opened at its top: the page's own HTML bytes; the bytes of every response the page fetched until the
    network was idle (HTML + CSS + JS + fonts + ..., from the Resource Timing API); the time from navigation start
    to the first contentful paint and to the load event; and to the moment the figures in the first viewport are
    drawn (none on most chapters: they open with text);
  - then every plotly figure scrolled to in page order (``scrollIntoView``, instant, figure centred), as a reader
    jumping through the page: for each, the time from the scroll to the moment it is drawn (0 if it was drawn
    before: the book draws figures when they come within 1.5 viewport heights); after the last, every explorer
    scrolled to and the network idle again: the bytes the whole page needs (the *page weight*);
  - the page opened again at its first figure (``page.html#<the figure's id>``, the page scrolls there as it
    loads): the time from navigation start to the first animation frame in which that figure is drawn and in the
    viewport, the *first figure in the viewport*; and, on a page with explorers, opened at its first explorer: the
    time to the first frame in which that explorer is drawn (mounted: its panels drawn from its first values) and
    in the viewport, the *first explorer in the viewport* (an explorer is a figure too; chapter 2 has no other).

  A figure counts as drawn once it has its full layout and a drawn trace (polled every 10 ms, and checked in every
  animation frame, from a script injected before the page's own).
* Static explorers (:func:`static_explorers`): for every explorer (``.vae-explorer-host``, vae_lib.explorer),
  ``moves`` real input events, as a reader makes them: on an explorer with a draggable plane (the latent explorers),
  one mouse drag across the plane through ``moves`` points in van der Corput order (each a ``pointermove`` that
  makes the page run the decoder at that z); on a drawing pad, one stroke through ``moves`` points (each inks the
  pad and makes the page run the encoder, 16 decoder passes and the ELBO); on any other explorer, arrow-key presses
  on its first slider or choice, alternating direction. Chromium dispatches pointer moves just before a frame and
  key presses at once, so a key press also waits for the next frame (up to 16.7 ms at 60 Hz). Per move, timed from
  the page's first listener of the input event (capture phase on window): *update* = until the explorer's last
  change to its DOM (a MutationObserver on the explorer); *painted* = until the first task after the next animation
  frame that follows that change, i.e. the browser has drawn the new frame; *main-thread CPU* = the page main
  thread's CPU time over the move (Chrome's ThreadTime metric), which other processes on the machine inflate far
  less than the wall time.

Usage: python benchmarks/browser.py --html DIR [--moves 50] [--loads 3] [--only pages|static] [--page book/x.html ...]
       [--json PATH]      (run.py calls these functions)
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import json
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import browsers  # noqa: E402  (tests/browsers.py: which Chromium, its flags, requests kept on this machine)

VIEWPORT = {"width": 1280, "height": 900}
SETTLE_S = 1.0  # pause between closing a page and a timed cold load

# b.drawn[i]: when figure i was first seen drawn (ms since navigation start); b.seen[i]: when the first animation
# frame in which figure i was drawn and in the viewport ran (the frame that shows it to the reader); b.explorers[i]:
# the same for explorer i (mounted: vae_lib/explorer_runtime.js sets host.explorer and draws its first values in one
# task);
# b.viewport: the figures that were in the viewport when the document was parsed; b.stopped ends the polling (the
# explorer benchmark sets it before it times)
INIT_SCRIPT = """(() => {
  const b = window.__bench = {moves: [], drawn: [], seen: [], explorers: [], figures: null, viewport: null,
                              move: null, stopped: false};
  const DRAWN = ['.heatmaplayer image', '.imagelayer image', '.contourlayer path', '.scatterlayer path',
                 '.barlayer path', '.boxlayer path', 'canvas'].join(', ');
  const drawn = gd => gd._fullLayout && (gd._fullData || []).length > 0 && gd.querySelector(DRAWN) !== null;
  const inView = gd => { const r = gd.getBoundingClientRect(); return r.bottom > 0 && r.top < innerHeight; };
  // (performance.now(), not the callback's argument: that is when the frame was scheduled, which can be long before
  // a busy main thread runs it)
  (function frame() {
    if (b.stopped) { return; }
    document.querySelectorAll('.plotly-graph-div').forEach((gd, i) => {
      if (b.seen[i] == null && drawn(gd) && inView(gd)) { b.seen[i] = performance.now(); }
    });
    document.querySelectorAll('.vae-explorer-host').forEach((host, i) => {
      if (b.explorers[i] == null && host.explorer && inView(host)) { b.explorers[i] = performance.now(); }
    });
    requestAnimationFrame(frame);
  })();
  (function poll() {
    if (b.stopped) { return; }
    if (document.readyState !== 'loading') {
      const gds = Array.from(document.querySelectorAll('.plotly-graph-div'));
      b.figures = gds.length;
      if (b.viewport === null) { b.viewport = gds.map((gd, i) => inView(gd) ? i : -1).filter(i => i >= 0); }
      let all = true;
      gds.forEach((gd, i) => {
        if (b.drawn[i] == null) { if (drawn(gd)) { b.drawn[i] = performance.now(); } else { all = false; } }
      });
      if (all) { return; }
    }
    setTimeout(poll, 10);
  })();
})();"""

HOSTS_JS = "Array.from(document.querySelectorAll('.vae-explorer-host'))"

# Instruments the page once and the explorer each time: an input event opens a move (capture phase on window, before
# the explorer's own listeners); a MutationObserver on the explorer records its last DOM change and the first frame
# drawn after it; the move closes when that frame has been drawn.
HOOK_JS = f"""index => {{
  const host = {HOSTS_JS}[index], b = window.__bench;
  host.scrollIntoView({{block: 'center'}});
  if (!b.instrumented) {{
    b.instrumented = true;
    const finish = move => {{
      if (move.paintedSeq === move.seq && move.last !== null) {{
        move.done = true;
        b.moves.push({{update: move.last - move.t0, painted: move.painted - move.t0}});
        if (b.notify) {{ const notify = b.notify; b.notify = null; notify(true); }}
      }} else {{ requestAnimationFrame(() => finish(move)); }}
    }};
    const open = e => {{
      if (e.type === 'pointermove' && !e.buttons) {{ return; }}
      const move = b.move = {{t0: performance.now(), last: null, seq: 0, painted: null, paintedSeq: -1, done: false}};
      setTimeout(() => finish(move), 0);  // after the event's handlers
    }};
    for (const type of ['pointerdown', 'pointermove', 'keydown']) {{ window.addEventListener(type, open, true); }}
  }}
  if (!host.__benchObserved) {{
    host.__benchObserved = true;
    new MutationObserver(() => {{
      const move = b.move;
      if (!move || move.done) {{ return; }}
      move.last = performance.now();
      const seq = ++move.seq;
      requestAnimationFrame(() => setTimeout(() => {{
        if (move.seq === seq) {{ move.painted = performance.now(); move.paintedSeq = seq; }}
      }}));
    }}).observe(host, {{subtree: true, childList: true, attributes: true, characterData: true}});
  }}
  const plane = host.querySelector('svg[role=application]'), pad = host.querySelector('.vae-explorer-pad-canvas');
  const box = (plane || pad || document.body).getBoundingClientRect();
  const where = {{x: box.left, y: box.top, w: box.width, h: box.height}};
  return {{kind: plane ? 'plane' : pad ? 'pad' : 'keys', box: where}};
}}"""

WAIT_JS = """n => window.__bench.moves.length > n || new Promise((resolve, reject) => {
  window.__bench.notify = resolve;
  setTimeout(() => reject(new Error('no redraw within 30 s of the input')), 30000);
})"""

LOAD_JS = """() => {
  const nav = performance.getEntriesByType('navigation')[0], res = performance.getEntriesByType('resource');
  const sum = key => res.reduce((a, r) => a + (r[key] || 0), 0);
  const fcp = performance.getEntriesByName('first-contentful-paint')[0];
  const b = window.__bench, first = b.viewport || [];
  return {html_bytes: nav.encodedBodySize, dom_content_loaded_ms: nav.domContentLoadedEventEnd,
          first_paint_ms: fcp ? fcp.startTime : null, load_ms: nav.loadEventEnd, figures: b.figures,
          viewport_figures: first.length,
          viewport_figures_drawn_ms: first.length && first.every(i => b.drawn[i] != null)
            ? Math.max(...first.map(i => b.drawn[i])) : null,
          requests: res.length + 1, body_bytes: nav.encodedBodySize + sum('encodedBodySize'),
          transfer_bytes: nav.transferSize + sum('transferSize'),
          resources: res.map(r => [r.name.replace(location.origin, ''), r.encodedBodySize])};
}"""

# Scrolls figure i to the middle of the viewport and resolves with the time from that scroll to its being drawn
# (0 when it was drawn before the scroll)
SCROLL_TO_FIGURE_JS = """i => new Promise((resolve, reject) => {
  const b = window.__bench, gd = document.querySelectorAll('.plotly-graph-div')[i];
  if (b.drawn[i] != null) { gd.scrollIntoView({block: 'center'}); resolve(0); return; }
  const t0 = performance.now();
  gd.scrollIntoView({block: 'center'});
  (function wait() {
    if (b.drawn[i] != null) { resolve(Math.max(0, b.drawn[i] - t0)); return; }
    if (performance.now() - t0 > 60000) { reject(new Error('figure ' + i + ' not drawn within 60 s')); return; }
    setTimeout(wait, 5);
  })();
})"""


def van_der_corput(k: int, base: int) -> float:
    """The k-th point (k ≥ 1) of the van der Corput sequence in [0, 1)."""
    value, denominator = 0.0, 1.0
    while k:
        k, digit = divmod(k, base)
        denominator *= base
        value += digit / denominator
    return value


class _QuietServer(http.server.ThreadingHTTPServer):
    """Closing a page while a file is still being sent breaks the pipe: expected here, not worth a traceback."""

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


@contextlib.contextmanager
def serve(html: Path) -> Iterator[str]:
    """Serve ``html`` on 127.0.0.1 (a free port) in a thread; yields the base URL."""
    handler = type("QuietHandler", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *a: None})
    httpd = _QuietServer(("127.0.0.1", 0), functools.partial(handler, directory=str(html)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    """Headless Chromium driven by Playwright: the one the browser tests use (``tests/browsers.py``: ``CHROMIUM``,
    Playwright's own if installed, one on PATH, Debian's)."""
    from playwright.sync_api import sync_playwright

    found = browsers.find_chromium()
    if not isinstance(found, browsers.Found):
        raise FileNotFoundError(found)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=found.executable, headless=True, args=browsers.ARGS)
        try:
            yield browser
        finally:
            browser.close()


def chromium_version() -> str:
    with chromium() as browser:
        return browser.version


class Visit:
    """A page opened in a fresh context (empty cache), outside requests blocked, errors recorded."""

    def __init__(self, browser, url: str) -> None:
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.context = browser.new_context(viewport=VIEWPORT)
        self.context.add_init_script(INIT_SCRIPT)
        browsers.keep_local(self.context, self.outside)
        self.page = self.context.new_page()
        self.cdp = self.context.new_cdp_session(self.page)
        self.cdp.send("Performance.enable", {"timeDomain": "threadTicks"})  # durations in CPU time
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.goto(url, wait_until="load")

    def main_thread_cpu_ms(self) -> float:
        """CPU time used so far by the page's main thread (Chrome's ThreadTime metric), in ms."""
        metrics = self.cdp.send("Performance.getMetrics")["metrics"]
        return 1e3 * next(m["value"] for m in metrics if m["name"] == "ThreadTime")

    def close(self) -> None:
        self.context.close()


def pages_of(html: Path) -> list[str]:
    """The book's pages, relative to the HTML root: the landing page and every chapter."""
    return ["book/intro.html"] + sorted(str(p.relative_to(html)) for p in (html / "book").glob("*.html")
                                        if p.name != "intro.html")


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 1) if values else None


def _one_load(browser, base: str, path: str) -> dict:
    """One cold load at the top of the page, then every figure and explorer scrolled to (see the module docstring),
    then one cold load at the first figure's anchor."""
    visit = Visit(browser, f"{base}/{path}")
    page = visit.page
    page.wait_for_load_state("networkidle")
    run = page.evaluate(LOAD_JS)
    ids = page.evaluate("() => Array.from(document.querySelectorAll('.plotly-graph-div')).map(gd => gd.id)")
    hosts = page.evaluate(f"() => {HOSTS_JS}.map(host => host.id)")
    run["explorers"] = len(hosts)
    run["scroll_to_figure_ms"] = [page.evaluate(SCROLL_TO_FIGURE_JS, i) for i in range(len(ids))]
    page.evaluate(f"() => {HOSTS_JS}.forEach(h => h.scrollIntoView({{block: 'center'}}))")
    page.wait_for_timeout(200)
    page.wait_for_load_state("networkidle")
    full = page.evaluate(LOAD_JS)
    run["page_weight_bytes"] = full["body_bytes"]
    run["page_weight_requests"] = full["requests"]
    run["resources"] = full["resources"]
    run["outside"], run["errors"] = len(visit.outside), len(visit.errors)
    visit.close()
    run["first_figure_ms"] = _first_in_view(browser, base, path, ids, run, "seen")
    run["first_explorer_ms"] = _first_in_view(browser, base, path, hosts, run, "explorers")
    return run


def _first_in_view(browser, base: str, path: str, ids: list[str], run: dict, which: str) -> float | None:
    """The page opened cold at ``ids[0]`` (a figure's or an explorer's id): ms from navigation start to the first
    animation frame that shows it drawn (``window.__bench[which][0]``); None without ids. Adds the visit's outside
    requests and console errors to ``run``."""
    if not ids:
        return None
    time.sleep(SETTLE_S)  # the closed page's renderer is torn down on the same 2 cores: not part of a cold load
    visit = Visit(browser, f"{base}/{path}#{ids[0]}")
    visit.page.wait_for_function(f"() => window.__bench.{which}[0] != null", timeout=60_000)
    ms = visit.page.evaluate(f"() => window.__bench.{which}[0]")
    run["outside"] += len(visit.outside)
    run["errors"] += len(visit.errors)
    visit.close()
    return ms


def page_loads(browser, base: str, html: Path, pages: list[str], loads: int = 3) -> list[dict]:
    """Weight and load times of every page: medians over ``loads`` runs of :func:`_one_load` (sizes from the first
    run); the scroll-to-figure delays of all runs pooled (median and maximum)."""
    results = []
    for path in pages:
        runs = [_one_load(browser, base, path) for _ in range(loads)]
        first = runs[0]
        delays = [d for r in runs for d in r["scroll_to_figure_ms"]]
        results.append({
            "page": path, "html_file_bytes": (html / path).stat().st_size, "html_bytes": first["html_bytes"],
            "body_bytes": first["body_bytes"], "transfer_bytes": first["transfer_bytes"], "requests": first["requests"],
            "page_weight_bytes": first["page_weight_bytes"], "page_weight_requests": first["page_weight_requests"],
            "figures": first["figures"], "viewport_figures": first["viewport_figures"], "loads": loads,
            "explorers": first["explorers"],
            **{key: _median([r[key] for r in runs])
               for key in ("first_paint_ms", "dom_content_loaded_ms", "load_ms", "viewport_figures_drawn_ms",
                           "first_figure_ms", "first_explorer_ms")},
            "first_figure_ms_runs": [r["first_figure_ms"] for r in runs],
            "first_explorer_ms_runs": [r["first_explorer_ms"] for r in runs],
            "scroll_to_figure_median_ms": _median(delays), "scroll_to_figure_max_ms": max(delays) if delays else None,
            "scroll_to_figure_ms_runs": [[round(d, 1) for d in r["scroll_to_figure_ms"]] for r in runs],
            "resources": sorted(first["resources"], key=lambda r: -r[1]),
            "outside_requests": max(r["outside"] for r in runs), "console_errors": max(r["errors"] for r in runs)})
    return results


def _explorer_moves(visit: Visit, index: int, moves: int) -> tuple[str, list[dict]]:
    page = visit.page
    hook = page.evaluate(HOOK_JS, index)
    page.wait_for_timeout(300)  # scrolled into view and settled
    box, kind = hook["box"], hook["kind"]
    if kind == "keys":
        control = page.evaluate_handle(f"() => {HOSTS_JS}[{index}].querySelector('input[type=range], select')")
        control.as_element().focus()
    else:  # one drag across the plot area (inside its axes: 15 % to 85 % of the box), or one stroke on the pad
        page.mouse.move(box["x"] + 0.5 * box["w"], box["y"] + 0.5 * box["h"])
        page.mouse.down()
    samples = []
    for m in range(moves):
        u, v = van_der_corput(m + 1, 2), van_der_corput(m + 1, 3)
        before = page.evaluate("() => window.__bench.moves.length")
        cpu = visit.main_thread_cpu_ms()
        if kind == "plane":
            page.mouse.move(box["x"] + (0.15 + 0.7 * u) * box["w"], box["y"] + (0.15 + 0.7 * v) * box["h"])
        elif kind == "pad":
            page.mouse.move(box["x"] + u * box["w"], box["y"] + v * box["h"])
            if m % 10 == 9:  # a fresh pad now and then, so the drawing does not saturate
                page.evaluate(f"() => {HOSTS_JS}[{index}].explorer.values().x.d.fill(0)")
        else:
            page.keyboard.press("ArrowRight" if (m // 3) % 2 == 0 else "ArrowLeft")
        page.evaluate(WAIT_JS, before)
        cpu = visit.main_thread_cpu_ms() - cpu
        samples.append({"cpu": cpu, **page.evaluate("() => window.__bench.moves.at(-1)")})
    if kind != "keys":
        page.mouse.up()
    return kind, samples


def _summary(values: list[float]) -> dict:
    v = np.asarray(values)
    return {"median_ms": round(float(np.median(v)), 2), "p95_ms": round(float(np.percentile(v, 95)), 2),
            "max_ms": round(float(v.max()), 2)}


def static_explorers(browser, base: str, pages: list[str], moves: int = 50) -> list[dict]:
    """Update time of every static explorer of the book (see the module docstring for the definition)."""
    results = []
    for path in pages:
        visit = Visit(browser, f"{base}/{path}")
        page = visit.page
        page.wait_for_function(f"() => {HOSTS_JS}.every(h => h.explorer)", timeout=60_000)
        page.evaluate("() => { window.__bench.stopped = true; }")  # no figure polling while the moves are timed
        for index in range(page.evaluate(f"() => {HOSTS_JS}.length")):
            title = page.evaluate(f"() => {HOSTS_JS}[{index}].explorer.spec.title")
            kind, samples = _explorer_moves(visit, index, moves)
            results.append({"page": path, "kind": kind, "index": index, "title": title, "moves": moves,
                            "update": _summary([s["update"] for s in samples]),
                            "painted": _summary([s["painted"] for s in samples]),
                            "main_thread_cpu": _summary([s["cpu"] for s in samples]),
                            "samples": [{k: round(v, 2) if isinstance(v, float) else v for k, v in s.items()}
                                        for s in samples]})
        if visit.errors or visit.outside:
            raise RuntimeError(f"{path}: console errors {visit.errors}, outside requests {visit.outside}")
        visit.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, required=True, help="a built book's _build/html folder")
    parser.add_argument("--moves", type=int, default=50)
    parser.add_argument("--loads", type=int, default=3)
    parser.add_argument("--only", nargs="+", choices=["pages", "static"], default=["pages", "static"])
    parser.add_argument("--page", nargs="+", help="only these pages (e.g. book/05_training.html)")
    parser.add_argument("--json", type=Path, help="also write the full results (with raw samples) here")
    args = parser.parse_args()
    html = args.html.resolve()
    with serve(html) as base, chromium() as browser:
        pages = args.page or pages_of(html)
        loads = page_loads(browser, base, html, pages, args.loads) if "pages" in args.only else []
        explorers = static_explorers(browser, base, pages, args.moves) if "static" in args.only else []
    if args.json:
        args.json.write_text(json.dumps({"pages": loads, "static_explorers": explorers}, indent=1) + "\n")
    for r in loads:
        print(f"{r['page']:<34} html {r['html_bytes'] / 2**10:>6.0f} KiB  at load {r['body_bytes'] / 2**20:5.2f} MiB  "
              f"whole page {r['page_weight_bytes'] / 2**20:5.2f} MiB  load {r['load_ms']:>7.1f} ms  "
              f"first figure {r['first_figure_ms'] or 0:>7.1f} ms  "
              f"first explorer {r['first_explorer_ms'] or 0:>7.1f} ms  scroll-to-figure median "
              f"{r['scroll_to_figure_median_ms'] or 0:6.1f} max {r['scroll_to_figure_max_ms'] or 0:6.1f} ms")
    for r in explorers:
        print(f"{r['page']:<42} {r['kind']:<6} #{r['index']}  update median {r['update']['median_ms']:6.2f} "
              f"p95 {r['update']['p95_ms']:6.2f}  painted median {r['painted']['median_ms']:6.2f} "
              f"p95 {r['painted']['p95_ms']:6.2f}  CPU median {r['main_thread_cpu']['median_ms']:6.2f} ms")
    print(json.dumps({"pages": [{k: v for k, v in r.items() if k != "resources"} for r in loads],
                      "static_explorers": [{k: v for k, v in r.items() if k != "samples"} for r in explorers]},
                     indent=2))


if __name__ == "__main__":
    main()
