"""The built book's pages as readers on different screens get them: weight, desktop code width, phones, dark mode.

* plotly.js is the book's partial bundle (``book/_static/vendor/plotly-book.min.js``, built by
  ``tools/plotly_bundle/build.js``): its plotly.js version is the one the installed plotly package writes figures for,
  and it registers every trace type that any figure in the built pages uses;
* figures are drawn when they come near the viewport (``book/_static/vae-book.js``), all of them before printing;
* at desktop width (1280×800, 1440×900) no code cell or printed output scrolls sideways (``book/_static/vae-book.css``
  gives the page column at least 80 characters of code; the chapters keep their lines to 79);
* at a phone's width (375 px, touch) no page scrolls sideways, and every explorer answers a finger;
* in dark mode figures have a dark paper with light text, and so do the explorers.

The page-weight and time-to-figure budgets are measured by ``benchmarks/browser.py`` (see benchmarks/README.md), not
asserted here: timings on a shared machine are not a test.

Uses the book built by tests/test_browser.py's fixture (``VAE_BOOK_HTML=<_build/html>`` reuses a built book).
Screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import browsers  # noqa: E402
import test_browser  # noqa: E402

CHAPTERS, HOSTS = test_browser.CHAPTERS, test_browser.HOSTS
ROOT, SCREENSHOTS = test_browser.ROOT, test_browser.SCREENSHOTS
book_html = test_browser.book_html  # fixtures: the built book (VAE_BOOK_HTML reuses one) and its server on 127.0.0.1
server = test_browser.server

sys.path.insert(0, str(ROOT / "_ext"))
import static_page  # noqa: E402

FIGURES = "Array.from(document.querySelectorAll('.plotly-graph-div'))"
DESKTOPS = [(1280, 800), (1440, 900)]
PHONE = {"viewport": {"width": 375, "height": 740}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}


def in_browser(test):
    """Marks a test that drives Chromium against the built book (skipped without a Chromium: tests/browsers.py)."""
    return pytest.mark.slow(pytest.mark.browser(test))


# ---------------------------------------------------------------- the partial plotly.js bundle (no browser)


def test_the_bundle_is_the_plotly_js_version_plotly_py_writes_figures_for():
    from plotly.offline import get_plotlyjs_version

    path, version, traces = static_page.plotly_bundle()
    assert version == get_plotlyjs_version(), f"{path} is plotly.js {version}: rebuild it (tools/plotly_bundle)"
    listed = json.loads((ROOT / "tools" / "plotly_bundle" / "traces.json").read_text())
    assert traces == listed["traces"], "the bundle was not built from tools/plotly_bundle/traces.json"
    assert static_page.plotly_bundle_components_left_out() == listed.get("components_left_out", []), \
        "the bundle was not built from tools/plotly_bundle/traces.json"
    full = Path(__import__("plotly").__file__).parent / "package_data" / "plotly.min.js"
    assert path.stat().st_size < 0.4 * full.stat().st_size, "the partial bundle is not much smaller than the full one"


# ---------------------------------------------------------------- what every page loads: icons, search index


def _icons_in_pages(book_html: Path) -> dict[tuple[str, str], set[str]]:
    """Every Font Awesome icon an element of a built page shows: (style, name) -> the pages; style is the web font
    it is drawn from (brands, regular, solid: Font Awesome's rule for ``fa-brands``/``fab``, ``fa-regular``/``far``,
    else solid)."""
    import re

    icons: dict[tuple[str, str], set[str]] = {}
    for page in book_html.rglob("*.html"):
        for classes in re.findall(r'class="([^"]*\bfa-[^"]*)"', page.read_text(encoding="utf-8")):
            names = classes.split()
            style = ("brands" if {"fa-brands", "fab"} & set(names) else
                     "regular" if {"fa-regular", "far"} & set(names) else "solid")
            for name in names:
                if name.startswith("fa-") and name not in ("fa-brands", "fa-regular", "fa-solid", "fa-fw", "fa-lg"):
                    icons.setdefault((style, name), set()).add(page.name)
    return icons


@pytest.mark.slow
def test_every_icon_a_page_shows_keeps_its_rule_and_its_glyph(book_html):
    """The built theme style sheet keeps only the used icons' rules and the web fonts only their glyphs
    (_ext/static_page.py): every icon named by a page still has its rule, and its font has the glyph."""
    import re

    from fontTools.ttLib import TTFont

    css = (book_html / "_static" / static_page.THEME_CSS).read_text(encoding="utf-8")
    fonts = {style: TTFont(book_html / "_static" / static_page.FA_FONTS / f"fa-{style}-{weight}.woff2")
             for style, weight in (("brands", 400), ("regular", 400), ("solid", 900))}
    icons = _icons_in_pages(book_html)
    assert ("brands", "fa-github") in icons  # the repository button
    missing = []
    for (style, name), pages in sorted(icons.items()):
        rule = re.search(r"\." + re.escape(name) + r':before[^{]*\{content:"\\([0-9a-f]+)"\}', css)
        if rule is None:
            if re.search(r"\." + re.escape(name) + r"[:,{ ]", css) is None:  # a modifier (fa-2x ...) has no glyph
                missing.append(f"{name}: no rule ({sorted(pages)[:2]})")
            continue
        if int(rule[1], 16) not in fonts[style].getBestCmap():
            missing.append(f"{name}: U+{rule[1]} not in fa-{style} ({sorted(pages)[:2]})")
    assert not missing, missing
    sizes = {p.name: p.stat().st_size for p in (book_html / "_static" / static_page.FA_FONTS).glob("*.woff2")}
    assert max(sizes.values()) < 20_000, f"the web fonts were not cut to the icons in use: {sizes}"
    assert len(css) < 330_000, "the theme style sheet still holds every icon's rule"


@pytest.mark.slow
def test_only_the_search_page_loads_the_search_index(book_html):
    """The theme's search-as-you-type is off, so a chapter does not load searchindex.js and Sphinx's search scripts;
    the search page does, and finds the chapters' words."""
    search = (book_html / "search.html").read_text(encoding="utf-8")
    assert "searchindex.js" in search and "searchtools.js" in search
    for page in [book_html / "book" / f"{c}.html" for c in CHAPTERS] + [book_html / "book" / "intro.html"]:
        text = page.read_text(encoding="utf-8")
        assert "searchindex.js" not in text and "searchtools.js" not in text, page.name
        assert 'action="../search.html"' in text or 'action="search.html"' in text, f"{page.name}: no search box"


@in_browser
def test_deflated_explorer_data_gives_the_explorers_the_same_values(browser, server, book_html):
    """The book stores an explorer's compressible arrays (chapter 7's image grids) also deflated (``<digest>.z.js``,
    _ext/static_page.py), which the runtime inflates with the browser's DecompressionStream: the page loads those and
    its explorers hold exactly the values they hold from the plain files, which a browser without DecompressionStream
    loads."""
    assert list((book_html / "_static" / "vendor" / "explorer-data").glob("*.z.js")), "no deflated explorer data"
    values = f"() => JSON.stringify({HOSTS}.map(h => h.explorer.values()), (k, v) => v && v.d ? Array.from(v.d) : v)"
    found = {}
    for hidden in (False, True):
        visit = Visit(browser, f"{server}/book/07_faces.html",
                      init_script="delete window.DecompressionStream;" if hidden else None)
        visit.page.wait_for_function(f"() => {HOSTS}.length > 0 && {HOSTS}.every(h => h.explorer)", timeout=60_000)
        deflated = visit.page.evaluate("() => performance.getEntriesByType('resource').filter(r => "
                                       "r.name.endsWith('.z.js')).length")
        found[hidden] = (visit.page.evaluate(values), deflated)
        visit.close()
    assert found[False][1] > 0 and found[True][1] == 0, "the deflated files were not (or always) the ones loaded"
    assert found[False][0] == found[True][0], "the inflated arrays differ from the plain ones"


# ---------------------------------------------------------------- numbering


@pytest.mark.slow
def test_chapters_are_numbered_1_to_n_and_the_appendix_pages_are_not(book_html):
    """The chapters' titles, and their entries in the sidebar, carry 1., 2., ... in the order of _toc.yml; the appendix
    pages (common mistakes, glossary, references) carry no number (they were numbered on after the chapters)."""
    import re

    sys.path.insert(0, str(ROOT / "tools"))
    import book_toc

    number = re.compile(r'<h1>\s*<span class="section-number">([^<]*)</span>')
    chapters, appendix = book_toc.chapters(), book_toc.appendix()
    for i, page in enumerate(chapters, start=1):
        found = number.search((book_html / f"{page}.html").read_text(encoding="utf-8"))
        assert found is not None and found[1].strip() == f"{i}.", (page, found and found[1])
    for page in appendix:
        assert number.search((book_html / f"{page}.html").read_text(encoding="utf-8")) is None, page
    nav = (book_html / "book" / "intro.html").read_text(encoding="utf-8").split('bd-docs-nav', 1)[1]
    entries = re.findall(r'<a class="reference internal" href="([^"#]+)\.html">\s*([^<]*)<', nav)
    shown = {href.rsplit("/", 1)[-1]: text.strip() for href, text in entries}
    for i, page in enumerate(chapters, start=1):
        assert shown[Path(page).name].startswith(f"{i}. "), (page, shown.get(Path(page).name))
    for page in appendix:
        assert not re.match(r"\d", shown[Path(page).name]), (page, shown[Path(page).name])


@pytest.mark.slow
def test_a_page_without_sphinx_design_elements_does_not_load_its_files(book_html):
    """sphinx-design's style sheet and tabs script load only on a page that has one of its elements (class sd-...)."""
    import re

    pages = list(book_html.rglob("*.html"))
    for page in pages:
        text = page.read_text(encoding="utf-8")
        uses = re.search(r'class="(?:[^"]* )?sd-', text) is not None
        assert uses == ("sphinx-design.min.css" in text) == ("design-tabs.js" in text), page.name
    assert any("sphinx-design.min.css" not in p.read_text(encoding="utf-8") for p in pages)


# ---------------------------------------------------------------- pages in the browser


class Visit:
    """A page in a fresh context (options: viewport, touch, colour scheme); requests outside localhost are blocked
    and recorded, and so are console errors."""

    def __init__(self, browser, url: str, init_script: str | None = None, **context) -> None:
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.context = browser.new_context(**({"viewport": {"width": 1280, "height": 800}} | context))
        if init_script:  # runs before the page's own scripts
            self.context.add_init_script(init_script)
        browsers.keep_local(self.context, self.outside)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url, wait_until="load")
        # explorers out of view are mounted when the main thread is idle (explorer_runtime.js: at most 2 s later)
        self.page.wait_for_function(f"() => {HOSTS}.every(h => h.explorer)", timeout=30_000)

    def draw_all(self) -> int:
        """Draw every figure (as before printing) and wait for them; the number of figures."""
        self.page.wait_for_function("() => document.readyState === 'complete' && window.vaeBook !== undefined "
                                    f"|| {FIGURES}.length === 0", timeout=30_000)
        return self.page.evaluate(f"() => window.vaeBook ? vaeBook.drawAll().then(f => f.length) : {FIGURES}.length")

    def close(self) -> None:
        assert self.errors == [] and self.outside == [], (self.errors, self.outside)
        self.context.close()


def _trace_types_in_notebooks(book_html: Path) -> dict[str, set[str]]:
    """Trace types of every figure the executed chapters display (plotly's JSON; a trace without a type is a
    scatter)."""
    import nbformat

    types: dict[str, set[str]] = {}
    for chapter in CHAPTERS:
        nb = nbformat.read(book_html.parent / "jupyter_execute" / "book" / f"{chapter}.ipynb", as_version=4)
        for cell in nb.cells:
            for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
                fig = out.get("data", {}).get("application/vnd.plotly.v1+json")
                if fig:
                    for trace in fig["data"]:
                        types.setdefault(trace.get("type", "scatter"), set()).add(chapter)
    return types


@in_browser
def test_the_bundle_registers_every_trace_type_the_pages_use(browser, server, book_html):
    """The trace types of every figure in the built pages (from the pages' figures, drawn, and from the executed
    notebooks) are all registered by the bundle the pages load."""
    used = _trace_types_in_notebooks(book_html)
    registered: set[str] = set()
    for chapter in CHAPTERS:
        visit = Visit(browser, f"{server}/book/{chapter}.html")
        if visit.draw_all():
            found = visit.page.evaluate(f"""() => ({{
                registered: Object.keys(Plotly.PlotSchema.get().traces),
                used: {FIGURES}.flatMap(gd => gd.data.map(t => t.type || 'scatter')),
                drawn: {FIGURES}.flatMap(gd => gd._fullData.map(t => t.type))}})""")
            registered = set(found["registered"])
            for kind in found["used"]:
                used.setdefault(kind, set()).add(chapter)
            # a type the bundle lacks is drawn as nothing (plotly skips it): _fullData would not have it
            assert sorted(found["drawn"]) == sorted(found["used"]), (chapter, found["used"], found["drawn"])
        visit.close()
    assert used, "no figure found in the built pages"
    missing = {kind: sorted(chapters) for kind, chapters in used.items() if kind not in registered}
    assert not missing, f"trace types used by the pages but not in the bundle: {missing}"
    print("trace types used:", {k: sorted(v) for k, v in sorted(used.items())}, "registered:", sorted(registered))


@in_browser
def test_figures_are_drawn_when_they_come_near_the_viewport_and_all_before_printing(browser, server):
    chapter = max(CHAPTERS, key=lambda c: (ROOT / "book" / f"{c}.ipynb").read_text().count("plotly"))
    visit = Visit(browser, f"{server}/book/{chapter}.html")
    page = visit.page
    page.wait_for_function("() => window.vaeBook !== undefined")
    page.wait_for_timeout(500)
    state = page.evaluate(f"""() => {FIGURES}.map(gd => ({{drawn: gd.hasAttribute('data-vae-drawn') || !!gd._fullLayout,
        top: gd.getBoundingClientRect().top, height: gd.getBoundingClientRect().height}}))""")
    far = [s for s in state if s["top"] > 3 * 800]
    assert far and not any(s["drawn"] for s in far), "figures far below the viewport were drawn at load"
    assert all(s["height"] > 200 for s in state), "a figure not drawn yet must keep its height (anchors)"
    last = len(state) - 1
    page.evaluate(f"() => {FIGURES}[{last}].scrollIntoView({{block: 'center'}})")
    page.wait_for_function(f"() => {FIGURES}[{last}].getAttribute('data-vae-drawn') !== null", timeout=10_000)
    page.pdf()  # printing (Chromium fires beforeprint): every figure is drawn for the printout
    page.wait_for_function(f"() => {FIGURES}.every(gd => gd.getAttribute('data-vae-drawn') !== null)", timeout=30_000)
    visit.close()


# when DOMContentLoaded fires: which figures have a plot (plotly's newPlot has begun), where each figure is
AT_DCL = f"""document.addEventListener('DOMContentLoaded', () => {{
  window.__atDcl = {FIGURES}.map(gd => ({{drawn: !!gd._fullLayout, top: gd.getBoundingClientRect().top}}));
}});"""


@in_browser
def test_a_page_opened_at_a_figure_shows_that_figure_before_domcontentloaded_and_draws_each_once(browser, server):
    """The browser scrolls a page to its URL's fragment only after DOMContentLoaded, whose handlers (the theme's) take
    50-150 ms; vae-book.js scrolls there as soon as it runs, and draws the figure then in view at once (the deferred
    scripts after it and DOMContentLoaded come after); the others when they come near the viewport. The browser's own
    scroll then leaves the page where it is, and the queued drawing scripts draw nothing twice."""
    chapter = max(CHAPTERS, key=lambda c: (ROOT / "book" / f"{c}.ipynb").read_text().count("plotly"))
    visit = Visit(browser, f"{server}/book/{chapter}.html")
    ids = visit.page.evaluate(f"() => {FIGURES}.map(gd => gd.id)")
    visit.close()
    target = len(ids) // 2
    visit = Visit(browser, f"{server}/book/{chapter}.html#{ids[target]}", init_script=AT_DCL)
    page = visit.page
    at_dcl = page.evaluate("() => window.__atDcl")
    assert at_dcl[target]["drawn"], f"figure {target}, the one the page opens at, was not drawn before DOMContentLoaded"
    assert [f["drawn"] for f in at_dcl].count(True) == 1, at_dcl
    assert 0 <= at_dcl[target]["top"] < 200, f"the page was not at figure {target} at DOMContentLoaded: {at_dcl}"
    page.wait_for_timeout(300)
    top = page.evaluate(f"() => {FIGURES}[{target}].getBoundingClientRect().top")
    assert abs(top - at_dcl[target]["top"]) < 2, f"the browser's own scroll moved figure {target}: {top} px"
    visit.draw_all()
    # drawn once: one plot per figure
    assert page.evaluate(f"() => {FIGURES}.every(gd => gd.querySelectorAll('.plot-container').length === 1)")
    visit.close()


# Wraps requestIdleCallback: the figures each idle callback began to draw (plotly's newPlot sets _fullLayout at once)
# and the explorers it began to mount (mounted, or waiting for their data), each as [index, in the viewport then]
IDLE_LOG = f"""(() => {{
  if (!window.requestIdleCallback) {{ return; }}
  const idle = window.requestIdleCallback.bind(window), log = window.__idle = {{figures: [], explorers: []}};
  const inView = node => {{ const r = node.getBoundingClientRect(); return r.bottom > 0 && r.top < innerHeight; }};
  const nodes = {{figures: () => {FIGURES}, explorers: () => {HOSTS}}};
  const started = {{figures: gd => !!gd._fullLayout, explorers: h => !!h.explorer || 'explorerLoading' in h.dataset}};
  const state = () => Object.fromEntries(['figures', 'explorers'].map(k => [k, nodes[k]().map(started[k])]));
  window.requestIdleCallback = (callback, options) => idle(deadline => {{
    const before = state();
    callback(deadline);
    const after = state();
    for (const kind of ['figures', 'explorers']) {{
      after[kind].forEach((now, i) => {{
        if (now && !before[kind][i]) {{ log[kind].push([i, inView(nodes[kind]()[i])]); }}
      }});
    }}
  }}, options);
}})();"""


@in_browser
@pytest.mark.parametrize("chapter, at_explorer", [("01_latent_variable_models", True),
                                                  ("02_evidence_lower_bound", True), ("05_training", False)])
def test_what_is_in_view_is_drawn_first_and_what_is_only_near_it_when_the_main_thread_is_idle(
        browser, server, chapter, at_explorer):
    """A page opened at its first explorer scrolls there and mounts that explorer at once (chapter 2 has no plotly
    figure: this must not depend on one). What is not in view waits for idle callbacks (vae-book.js,
    explorer_runtime.js), so it does not hold up the frame that shows the reader what they opened: chapter 1's figure
    about a viewport height above its first explorer, chapter 5's three explorers below its opening text."""
    visit = Visit(browser, f"{server}/book/{chapter}.html")
    hosts = visit.page.evaluate(f"() => {HOSTS}.map(h => h.id)")
    visit.close()
    visit = Visit(browser, f"{server}/book/{chapter}.html" + (f"#{hosts[0]}" if at_explorer else ""),
                  init_script=IDLE_LOG)
    page = visit.page
    page.wait_for_function(f"() => {HOSTS}.every(h => h.explorer)", timeout=30_000)
    page.wait_for_timeout(500)
    log = page.evaluate("() => window.__idle")
    assert not any(in_view for kind in log.values() for _, in_view in kind), f"drawn in an idle callback in view: {log}"
    first_in_view = page.evaluate(f"() => {{ const r = {HOSTS}[0].getBoundingClientRect(); "
                                  "return r.bottom > 0 && r.top < innerHeight; }")
    mounted_when_idle = [i for i, _ in log["explorers"]]
    if at_explorer:
        assert first_in_view, "the page did not open at its first explorer"
        assert 0 not in mounted_when_idle, f"the explorer in view waited for an idle callback: {log}"
    else:
        assert mounted_when_idle == list(range(len(hosts))), f"explorers out of view mounted at once: {log}"
    if chapter == "01_latent_variable_models":
        assert [i for i, _ in log["figures"]] == [3], f"figure 3, above the explorer, not drawn when idle: {log}"
    visit.close()


# ---------------------------------------------------------------- desktop: code without sideways scrolling


CODE_BLOCKS = "Array.from(document.querySelectorAll('div.cell_input pre, div.cell_output pre'))"


@in_browser
@pytest.mark.parametrize("size", DESKTOPS, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_no_code_cell_or_output_scrolls_sideways_at_desktop_width(browser, server, chapter, size):
    """Every ``pre`` of a code cell or its output fits its box (scrollWidth ≤ clientWidth); the failure lists each
    line that does not fit, with its length."""
    visit = Visit(browser, f"{server}/book/{chapter}.html", viewport={"width": size[0], "height": size[1]})
    found = visit.page.evaluate(f"""() => {{
        const blocks = {CODE_BLOCKS};
        const wide = blocks.filter(p => p.scrollWidth > p.clientWidth);
        const columns = p => {{  // characters that fit in the box
            const s = document.createElement('span'); s.textContent = 'x'.repeat(100); p.appendChild(s);
            const w = s.getBoundingClientRect().width / 100; s.remove(); const cs = getComputedStyle(p);
            return Math.floor((p.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight)) / w); }};
        return {{blocks: blocks.length, columns: blocks.length ? columns(blocks[0]) : null,
                 wide: wide.map(p => ({{kind: p.closest('.cell_output') ? 'output' : 'code', columns: columns(p),
                                       lines: p.textContent.split('\\n').filter(l => l.length > columns(p))}}))}};
    }}""")
    visit.close()
    assert found["blocks"] > 0
    assert found["columns"] >= 80, f"the page column shows {found['columns']} characters of code, not 80"
    lines = [f"{chapter}.html [{w['kind']}, {len(line)} chars > {w['columns']}]: {line}"
             for w in found["wide"] for line in (w["lines"] or ["(a box wider than its column)"])]
    if lines:  # pytest.fail: the whole list, not assert's shortened repr
        pytest.fail(f"{len(lines)} line(s) scroll sideways at {size[0]}x{size[1]}:\n" + "\n".join(lines), pytrace=False)


# ---------------------------------------------------------------- phones: 375 px, touch


@in_browser
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_no_page_overflows_sideways_on_a_phone(browser, server, chapter):
    visit = Visit(browser, f"{server}/book/{chapter}.html", **PHONE)
    page = visit.page
    visit.draw_all()
    page.wait_for_timeout(300)
    found = page.evaluate("""() => {
        const vw = document.documentElement.clientWidth;
        const wide = Array.from(document.querySelectorAll('.bd-article *')).filter(e => {
            const r = e.getBoundingClientRect();
            if (r.right <= vw + 1 || r.width === 0) return false;
            for (let p = e.parentElement; p; p = p.parentElement) {  // inside a box that scrolls or clips: fine
                const o = getComputedStyle(p).overflowX;
                if (o === 'auto' || o === 'scroll' || o === 'hidden') return false;
            }
            return true; });
        const outer = wide.filter(e => !wide.includes(e.parentElement));
        return {scrollWidth: document.documentElement.scrollWidth, viewport: vw, innerWidth: innerWidth,
                wide: outer.slice(0, 8).map(e => e.tagName.toLowerCase() + '.' + (e.className.baseVal ?? e.className)
                    + ' right=' + Math.round(e.getBoundingClientRect().right))};
    }""")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"phone-{chapter}.png"))
    visit.close()
    assert found["scrollWidth"] <= found["viewport"], f"{chapter}: the page is wider than the phone: {found}"


def _touch_drag(page, points: list[tuple[float, float]]) -> None:
    """One finger put down at the first point, moved through the others, lifted (Chrome DevTools Protocol)."""
    cdp = page.context.new_cdp_session(page)
    kinds = ["touchStart"] + ["touchMove"] * (len(points) - 2) + ["touchEnd"]
    for kind, (x, y) in zip(kinds, points, strict=True):
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [] if kind == "touchEnd" else
                                              [{"x": x, "y": y, "id": 1, "radiusX": 4, "radiusY": 4, "force": 1}]})
    cdp.detach()


def _values(page, index: int) -> str:
    return page.evaluate(f"() => JSON.stringify({HOSTS}[{index}].explorer.values(), (k, v) => v && v.d ? "
                         "Array.from(v.d) : v)")


@in_browser
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_explorer_answers_a_finger_on_a_phone(browser, server, chapter):
    """At 375 px with touch: a tap on an explorer's plane moves z there and a drag moves it on (the page does not
    scroll meanwhile); a drag on a drawing pad inks it; a tap on a slider or menu of any other explorer changes it."""
    visit = Visit(browser, f"{server}/book/{chapter}.html", **PHONE)
    page = visit.page
    page.wait_for_function(f"() => {HOSTS}.length > 0 && {HOSTS}.every(h => h.explorer)", timeout=30_000)
    n = page.evaluate(f"() => {HOSTS}.length")
    for index in range(n):
        host = page.evaluate_handle(f"() => {HOSTS}[{index}]").as_element()
        host.scroll_into_view_if_needed()
        target = host.query_selector("svg[role=application]") or host.query_selector(".vae-explorer-pad-canvas")
        before = _values(page, index)
        if target is not None:
            target.scroll_into_view_if_needed()
            box = target.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 375 + 1, f"explorer {index} is wider than the phone"
            x0, y0 = box["x"] + 0.62 * box["width"], box["y"] + 0.41 * box["height"]
            page.touchscreen.tap(x0, y0)
            tapped = _values(page, index)
            assert tapped != before, f"{chapter}: a tap on explorer {index} changed nothing"
            scroll = page.evaluate("() => scrollY")
            _touch_drag(page, [(x0, y0)] + [(x0 - 6 * k, y0 + 5 * k) for k in range(1, 9)])
            assert _values(page, index) != tapped, f"{chapter}: a drag on explorer {index} changed nothing"
            assert page.evaluate("() => scrollY") == scroll, "the drag scrolled the page instead of moving z"
        else:
            control = host.query_selector("input[type=range]") or host.query_selector("select")
            assert control is not None, f"{chapter}: explorer {index} has nothing to touch"
            control.scroll_into_view_if_needed()
            if control.evaluate("e => e.tagName") == "SELECT":
                control.tap()
                options = control.evaluate("e => Array.from(e.options).map(o => o.value)")
                control.select_option(options[-1] if control.input_value() != options[-1] else options[0])
            else:
                box = control.bounding_box()
                page.touchscreen.tap(box["x"] + 0.9 * box["width"], box["y"] + box["height"] / 2)
            assert _values(page, index) != before, f"{chapter}: a tap on explorer {index}'s control changed nothing"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate(f"() => {HOSTS}[0].scrollIntoView({{block: 'start'}})")
    page.screenshot(path=str(SCREENSHOTS / f"phone-explorer-{chapter}.png"))
    visit.close()


# ---------------------------------------------------------------- dark mode


# text that sits on the paper (titles, axes, ticks, legends, annotations, colour bars); labels on a heatmap's cells or
# a contour's bands sit on the data's colours, and plotly picks their colour for those
LAYOUT_TEXT = ("text.gtitle, text.xtitle, text.ytitle, .xtick text, .ytick text, text.legendtext, .annotation-text, "
               ".cbaxis text, .cbtitle text")


@in_browser
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_dark_mode_draws_figures_and_explorers_dark_with_light_text(browser, server, chapter):
    """With the reader's system in dark mode (the theme follows it), every figure's paper and plot area are dark
    and its text light, as drawn (the SVG's background and text fill); so is each explorer's card. Switching the
    page to light redraws the figures light."""
    visit = Visit(browser, f"{server}/book/{chapter}.html", color_scheme="dark")
    page = visit.page
    assert page.evaluate("() => document.documentElement.dataset.theme") == "dark"
    figures = visit.draw_all()
    found = page.evaluate(f"""() => {{
        const lum = c => vaeBook.luminance(c), LAYOUT_TEXT = {json.dumps(LAYOUT_TEXT)};
        return {{
          figures: {FIGURES}.map(gd => {{
            const svg = gd.querySelector('svg.main-svg'), bg = gd.querySelector('rect.bg');
            const texts = Array.from(gd.querySelectorAll(LAYOUT_TEXT)).filter(t => t.textContent.trim())
                .map(t => getComputedStyle(t).fill);
            return {{paper: lum(getComputedStyle(svg).backgroundColor), plot: bg ? lum(getComputedStyle(bg).fill) : 0,
                     text: Math.min(...texts.map(lum)), texts: texts.length}}; }}),
          explorers: {HOSTS}.map(h => {{ const card = h.querySelector('.vae-explorer'), cs = getComputedStyle(card);
            return {{background: lum(cs.backgroundColor), text: lum(cs.color)}}; }})}};
    }}""")
    assert len(found["figures"]) == figures
    for i, fig in enumerate(found["figures"]):
        assert fig["paper"] < 0.05 and fig["plot"] < 0.05, f"{chapter} figure {i}: light background {fig}"
        assert fig["texts"] > 0 and fig["text"] > 0.5, f"{chapter} figure {i}: dark text on the dark paper {fig}"
    for i, card in enumerate(found["explorers"]):
        assert card["background"] < 0.05 and card["text"] > 0.5, f"{chapter} explorer {i}: {card}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for selector, name in ((".plotly-graph-div", "figure"), (".vae-explorer", "explorer")):
        element = page.query_selector(selector)
        if element is not None:
            element.scroll_into_view_if_needed()
            element.screenshot(path=str(SCREENSHOTS / f"dark-{name}-{chapter}.png"))
    if figures:
        page.evaluate("() => document.documentElement.setAttribute('data-theme', 'light')")
        page.wait_for_function(f"() => {FIGURES}.every(gd => gd.getAttribute('data-vae-drawn') === 'light')",
                               timeout=30_000)
        light = page.evaluate(f"() => {FIGURES}.map(gd => vaeBook.luminance("
                              "getComputedStyle(gd.querySelector('svg.main-svg')).backgroundColor))")
        assert min(light) > 0.9, f"{chapter}: back in light mode, a figure stayed dark {light}"
    visit.close()
