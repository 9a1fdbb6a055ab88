"""The built book in headless Chromium: page weight and load time, and the static explorers' update time.

The HTML folder is served on 127.0.0.1 (plain HTTP, no compression, no cache headers) and opened with Debian's
Chromium through Playwright, as tests/test_browser.py does; requests that leave localhost are blocked and counted.
Each page load uses a fresh browser context (empty cache), so the shared static files are transferred every time.

* Page load (:func:`page_loads`): the page's own HTML bytes; the bytes of every response the page fetched until the
  network was idle (HTML + CSS + JS + fonts + ..., from the Resource Timing API); the time from navigation start
  to the load event; and to the moment every plotly figure on the page is drawn (has its full layout and a drawn
  trace: polled every 10 ms from a script injected before the page's own).
* Static explorers (:func:`static_explorers`): for every plotly figure whose ``layout.meta`` holds a
  ``latent_explorer`` or a ``posterior_explorer``, ``moves`` real mouse presses on its first two sliders (z₁/z₂, or
  μ₁/μ₂), alternating, each on a new step (van der Corput order over the rail). A press goes through plotly's own
  slider code (mousedown → ``plotly_sliderchange`` → the explorer script's Plotly calls), as a reader's does. Per
  move, timed from the page's first ``mousedown`` listener: *update* = until the explorer's last change to the
  figure's DOM (a MutationObserver on the figure, once every Plotly call the move made has settled; the slider
  grip's own 150 ms glide is not counted); *painted* = until the first task after the next animation frame that
  follows that change, i.e. the browser has drawn the new figure; *main-thread CPU* = the page main thread's CPU
  time over the move (Chrome's ThreadTime metric), which other processes on the machine inflate far less than
  the wall time.

Usage: python benchmarks/browser.py --html DIR [--moves 50] [--loads 3]      (run.py calls these functions)
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
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 900}
EXPLORER_KEYS = {"latent": "latent_explorer", "posterior": "posterior_explorer"}
SLIDER_STEP_INSET = 10  # plotly.js 4 sliders: constants.stepInset, the rail's margin before the first step

INIT_SCRIPT = """(() => {
  const b = window.__bench = {moves: [], drawnAt: null, figures: null, move: null};
  const DRAWN = '.heatmaplayer image, .contourlayer path, .scatterlayer path, .barlayer path, .boxlayer path, canvas';
  const drawn = gd => gd._fullLayout && (gd._fullData || []).length > 0 && gd.querySelector(DRAWN) !== null;
  (function poll() {
    if (document.readyState !== 'loading') {
      const gds = Array.from(document.querySelectorAll('.plotly-graph-div'));
      if (gds.every(drawn)) { b.drawnAt = performance.now(); b.figures = gds.length; return; }
    }
    setTimeout(poll, 10);
  })();
})();"""

EXPLORERS_JS = """kind => Array.from(document.querySelectorAll('.plotly-graph-div'))
    .filter(g => g.layout && g.layout.meta && g.layout.meta[kind])"""

# Instruments the page once: every Plotly API call made while a move is open is recorded, and a MutationObserver on
# each hooked explorer records its last DOM change and the first frame drawn after it. A move opens on mousedown;
# it closes when all its Plotly calls have settled and the frame after its last DOM change has been drawn.
HOOK_JS = f"""([kind, index]) => {{
  const gd = ({EXPLORERS_JS})(kind)[index], b = window.__bench;
  gd.scrollIntoView({{block: 'center'}});
  if (!b.instrumented) {{
    b.instrumented = true;
    for (const name of ['update', 'restyle', 'relayout', 'animate', 'react']) {{
      const original = Plotly[name];
      Plotly[name] = function () {{
        const promise = original.apply(this, arguments);
        if (b.move && !b.move.done) {{ b.move.pending.push(promise); }}
        return promise;
      }};
    }}
    const finish = move => {{
      if (move.paintedSeq === move.seq && move.last !== null) {{
        move.done = true;
        b.moves.push({{update: move.last - move.t0, painted: move.painted - move.t0, calls: move.pending.length}});
        if (b.notify) {{ const notify = b.notify; b.notify = null; notify(true); }}
      }} else {{ requestAnimationFrame(() => finish(move)); }}
    }};
    window.addEventListener('mousedown', () => {{
      const move = b.move = {{t0: performance.now(), pending: [], last: null, seq: 0, painted: null, paintedSeq: -1,
                              done: false}};
      setTimeout(() => Promise.allSettled(move.pending).then(() => finish(move)), 0);  // after the event's handlers
    }}, true);
  }}
  if (!gd.__benchObserved) {{
    gd.__benchObserved = true;
    // plotly slides a slider's grip to its new step over 150 ms (its own transition, not the explorer's redraw)
    const outsideSliders = r => !(r.target.closest && r.target.closest('.slider-container'));
    new MutationObserver(records => {{
      const move = b.move;
      if (!move || move.done || !records.some(outsideSliders)) {{ return; }}
      move.last = performance.now();
      const seq = ++move.seq;
      requestAnimationFrame(() => setTimeout(() => {{
        if (move.seq === seq) {{ move.painted = performance.now(); move.paintedSeq = seq; }}
      }}));
    }}).observe(gd, {{subtree: true, childList: true, attributes: true, characterData: true}});
  }}
  return gd.layout.sliders.length;
}}"""

# Where to click on slider s so that plotly's slider code picks step k: the inverse of its positionToNormalized
# mapping, in the slider group's coordinates, turned into viewport coordinates.
TARGET_JS = f"""([kind, index, s, u]) => {{
  const gd = ({EXPLORERS_JS})(kind)[index];
  const opts = gd._fullLayout.sliders[s], d = opts._dims, n = opts._stepCount;
  let k = Math.round(u * (n - 1));
  if (k === opts.active) {{ k = k + 1 < n ? k + 1 : k - 1; }}
  const groups = Array.from(gd.querySelectorAll('.slider-group'));
  const group = groups.find(g => g.__data__ && g.__data__._index === s) || groups[s];
  const inset = {SLIDER_STEP_INSET};
  const x = inset + d.inputAreaStart + (k / (n - 1)) * (d.inputAreaLength - 2 * inset - 2 * d.inputAreaStart);
  const rail = group.querySelector('.slider-rail-rect').getBoundingClientRect();
  const p = new DOMPoint(x, 0).matrixTransform(group.getScreenCTM());
  return {{x: p.x, y: rail.top + rail.height / 2, k: k, n: n}};
}}"""

WAIT_JS = """n => window.__bench.moves.length > n || new Promise((resolve, reject) => {
  window.__bench.notify = resolve;
  setTimeout(() => reject(new Error('no redraw within 30 s of the click')), 30000);
})"""

ACTIVE_JS = f"""([kind, index]) => ({EXPLORERS_JS})(kind)[index]._fullLayout.sliders.slice(0, 2).map(s => s.active)"""

LOAD_JS = """() => {
  const nav = performance.getEntriesByType('navigation')[0], res = performance.getEntriesByType('resource');
  const sum = key => res.reduce((a, r) => a + (r[key] || 0), 0);
  const fcp = performance.getEntriesByName('first-contentful-paint')[0];
  return {html_bytes: nav.encodedBodySize, dom_content_loaded_ms: nav.domContentLoadedEventEnd,
          first_paint_ms: fcp ? fcp.startTime : null,
          load_ms: nav.loadEventEnd, figures_drawn_ms: window.__bench.drawnAt, figures: window.__bench.figures,
          requests: res.length + 1, body_bytes: nav.encodedBodySize + sum('encodedBodySize'),
          transfer_bytes: nav.transferSize + sum('transferSize')};
}"""


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
    """Debian's headless Chromium driven by Playwright (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise FileNotFoundError(f"{CHROMIUM} is missing: apt-get install chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
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
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.cdp = self.context.new_cdp_session(self.page)
        self.cdp.send("Performance.enable", {"timeDomain": "threadTicks"})  # durations in CPU time
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.goto(url, wait_until="load")
        self.page.wait_for_function("() => window.__bench.drawnAt !== null", timeout=120_000)

    def _route(self, route) -> None:
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlparse(url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

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


def page_loads(browser, base: str, html: Path, pages: list[str], loads: int = 3) -> list[dict]:
    """Size and load time of every page: medians over ``loads`` cold loads (sizes from the first load)."""
    results = []
    for path in pages:
        runs = []
        for _ in range(loads):
            visit = Visit(browser, f"{base}/{path}")
            visit.page.wait_for_load_state("networkidle")
            runs.append({**visit.page.evaluate(LOAD_JS), "outside": len(visit.outside), "errors": len(visit.errors)})
            visit.close()
        first = runs[0]
        results.append({
            "page": path, "html_file_bytes": (html / path).stat().st_size, "html_bytes": first["html_bytes"],
            "body_bytes": first["body_bytes"], "transfer_bytes": first["transfer_bytes"], "requests": first["requests"],
            "figures": first["figures"], "loads": loads,
            **{key: round(statistics.median(r[key] for r in runs), 1)
               for key in ("first_paint_ms", "dom_content_loaded_ms", "load_ms", "figures_drawn_ms")},
            "outside_requests": max(r["outside"] for r in runs), "console_errors": max(r["errors"] for r in runs)})
    return results


def _explorer_moves(visit: Visit, kind: str, index: int, moves: int) -> list[dict]:
    page = visit.page
    sliders = page.evaluate(HOOK_JS, [EXPLORER_KEYS[kind], index])
    if sliders < 2:
        raise RuntimeError(f"{kind} explorer {index} has {sliders} sliders, expected at least 2")
    page.wait_for_timeout(300)  # scrolled into view and settled
    samples = []
    for m in range(moves):
        s = m % 2
        target = page.evaluate(TARGET_JS, [EXPLORER_KEYS[kind], index, s, van_der_corput(m // 2 + 1, 2 + s)])
        before = page.evaluate("() => window.__bench.moves.length")
        cpu = visit.main_thread_cpu_ms()
        page.mouse.move(target["x"], target["y"])
        page.mouse.down()  # the button stays down until the move is measured: mouseup restyles the grip
        page.evaluate(WAIT_JS, before)
        cpu = visit.main_thread_cpu_ms() - cpu
        page.mouse.up()
        active = page.evaluate(ACTIVE_JS, [EXPLORER_KEYS[kind], index])
        if active[s] != target["k"]:
            raise RuntimeError(f"{kind} explorer {index}, move {m}: slider {s} is at step {active[s]}, "
                               f"the click aimed at step {target['k']}")
        samples.append({"slider": s, "step": target["k"], "cpu": cpu,
                        **page.evaluate("() => window.__bench.moves.at(-1)")})
    return samples


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
        for kind, key in EXPLORER_KEYS.items():
            count = page.evaluate(f"() => ({EXPLORERS_JS})({json.dumps(key)}).length")
            for index in range(count):
                samples = _explorer_moves(visit, kind, index, moves)
                results.append({"page": path, "kind": kind, "index": index, "moves": moves,
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
    args = parser.parse_args()
    html = args.html.resolve()
    with serve(html) as base, chromium() as browser:
        pages = pages_of(html)
        loads = page_loads(browser, base, html, pages, args.loads)
        explorers = static_explorers(browser, base, pages, args.moves)
    for r in loads:
        print(f"{r['page']:<42} html {r['html_bytes']:>9} B  total {r['body_bytes']:>9} B  "
              f"load {r['load_ms']:>7.1f} ms  figures {r['figures_drawn_ms']:>7.1f} ms")
    for r in explorers:
        print(f"{r['page']:<42} {r['kind']:<10} #{r['index']}  update median {r['update']['median_ms']:6.2f} "
              f"p95 {r['update']['p95_ms']:6.2f}  painted median {r['painted']['median_ms']:6.2f} "
              f"p95 {r['painted']['p95_ms']:6.2f}  CPU median {r['main_thread_cpu']['median_ms']:6.2f} ms")
    print(json.dumps({"pages": loads, "static_explorers": [{k: v for k, v in r.items() if k != "samples"}
                                                           for r in explorers]}, indent=2))


if __name__ == "__main__":
    main()
