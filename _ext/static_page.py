"""Sphinx extension: what the static page loads, all of it from the book's own ``_static`` folder.

The built book must work offline, and it must not embed 4.6 MB of plotly.js in every page. At build
time this extension copies

* plotly.js: the book's partial bundle ``book/_static/vendor/plotly-book.min.js`` (committed; plotly.js's core
  without the layout components no figure uses (sliders, menus, range sliders) and only the trace types the book's
  figures use, 1.2 MB instead of the full 4.8 MB; built by ``tools/plotly_bundle/build.js``). The build fails if its
  plotly.js version is not the one the installed plotly package writes figures for;
* the book's page script and style sheet, ``book/_static/vae-book.js`` (figures drawn when they approach the
  viewport, in the page's light or dark theme) and ``book/_static/vae-book.css`` (code cells at least 80
  characters wide on a desktop, no sideways overflow on a phone, dark-mode details);
* MathJax 3 from the ``django-static-mathjax`` package on PyPI, as separate components: the loader, the TeX input,
  the CommonHTML output with its fonts and lazily loaded TeX extensions, and the assistive MathML for screen readers,
  but not the contextual menu (426 KB of the 1.1 MB ``tex-chtml.js``)

into ``_build/vendor_static/vendor/``, adds that folder to ``html_static_path``, loads plotly.js once on each page that
has a plotly figure and the page script on every page, both deferred (a large script that blocks the head delays the
first paint), and points ``mathjax_path`` at the local copy. Nothing is fetched from a CDN. The theme's
``fontawesome.js`` (1.45 MB: Font Awesome's SVG-from-JavaScript icons) is not loaded: the theme's style sheet already
draws the same icons from Font Awesome's web fonts.

Of Font Awesome the pages get only what they show (:func:`_only_the_icons_in_use`): the theme's style sheet carries a
rule for each of Font Awesome's 1,900 icons (86 KB) and its three web fonts every glyph (268 KiB); after the build the
style sheet keeps the rules of the icons that a page or one of the theme's scripts names (``fa-github``, ``fa-bars``,
...), and each font the glyphs of those icons and of the icons the style sheets draw themselves (admonitions,
external links): a few KB in all. The pages do not load Sphinx's search index either (``searchindex.js``, with
``searchtools.js`` and ``language_data.js``): the theme loads them on every page for its search-as-you-type, which is
off (``search_as_you_type``), so only the search page, which loads its own, uses them.

It also drops the ipywidgets state that the notebook executor stores: a live widget needs a kernel
(its Python callbacks never run in a static page), so the book hides live widgets' outputs
(``remove-output``) and does not ship their state either; for a plotly ``FigureWidget`` that state
holds a second copy of plotly.js (5 MB per page). For the same reason it removes every widget *view* from the
page (the progress bars that ``tqdm.auto`` shows during training are widgets): without its state a view is an
empty box, and its text fallback is the bar's first frame ("0%"), so neither would tell the reader anything true.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import zlib
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.transforms.post_transforms import SphinxPostTransform

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
PLOTLY_JS = "vendor/plotly.min.js"  # the served name of the book's partial bundle
PLOTLY_FIGURE = 'class="plotly-graph-div"'
BOOK_STATIC = Path(__file__).resolve().parents[1] / "book" / "_static"
PLOTLY_BUNDLE = BOOK_STATIC / "vendor" / "plotly-book.min.js"
PAGE_JS = "vendor/vae-book.js"
PAGE_CSS = "vendor/vae-book.css"
_BUNDLE_HEADER = re.compile(r"plotly\.js v(\S+), partial bundle for the VAE book.*?\n\* traces: ([^\n(]+)", re.S)
FONTAWESOME_JS = re.compile(r'\s*<(?:script|link)\b[^>]*_static/scripts/fontawesome\.js[^>]*>(?:</script>)?')
SEARCH_JS = re.compile(r'\s*<script src="[^"]*(?:_static/searchtools|_static/language_data|searchindex)\.js"></script>')
FA_ICON_RULE = re.compile(r'((?:\.fa-[a-z0-9-]+::?(?:before|after),?)+)\{content:"[^"]*"\}')  # one icon's glyph
FA_NAME = re.compile(r'\bfa-[a-z0-9]+(?:-[a-z0-9]+)*')
CSS_CODE_POINT = re.compile(r'\\([0-9a-fA-F]{4,6})|([\ue000-\uf8ff])')  # an escape or a private-use character
THEME_CSS = "styles/pydata-sphinx-theme.css"
FA_FONTS = "vendor/fontawesome/webfonts"
SPHINX_DESIGN_CLASS = re.compile(r'class="(?:[^"]* )?sd-')

EXPLORER_JS = "vendor/explorer_runtime.js"
EXPLORER_HOST = 'class="vae-explorer-host"'
EXPLORER_DATA = "explorer-data"  # under vendor/: one small script per large array, shared by the pages that use it
EXTERNAL_MIN_CHARS = 2048  # arrays whose base64 is shorter stay in the page
PACKED_AT_MOST = 0.8  # an external array is stored deflated when that makes it at most this share of its size
_INLINE_RUNTIME = re.compile(r'<script data-vae-explorer-runtime="1">.*?</script>', re.S)
_SPEC = re.compile(r'(<div class="vae-explorer-host"[^>]*><script type="application/json">)(.*?)(</script>)', re.S)

# MathJax components the pages load (MATHJAX_LOAD, after startup.js) and the files they fetch later (TeX extensions
# that \require or autoload asks for, the CommonHTML fonts)
MATHJAX_LOAD = ("input/tex", "output/chtml", "a11y/assistive-mml")
MATHJAX_PARTS = ("startup.js", "core.js", "input/tex.js", "output/chtml.js", "output/chtml/fonts/tex.js",
                 "a11y/assistive-mml.js", "input/tex/extensions", "output/chtml/fonts/woff-v2")


def plotly_bundle() -> tuple[Path, str, list[str]]:
    """The book's partial plotly.js bundle: its path, its plotly.js version and its trace types (from its header)."""
    head = PLOTLY_BUNDLE.read_text(encoding="utf-8")[:600]
    match = _BUNDLE_HEADER.search(head)
    if match is None:
        raise ValueError(f"{PLOTLY_BUNDLE} has no 'partial bundle for the VAE book' header: rebuild it with "
                         "tools/plotly_bundle/build.js")
    return PLOTLY_BUNDLE, match[1], [t.strip() for t in match[2].split(",")]


def plotly_bundle_components_left_out() -> list[str]:
    """The layout components of plotly.js's core that the bundle leaves out (from its header)."""
    match = re.search(r"\n\* components left out: ([^\n]+)", PLOTLY_BUNDLE.read_text(encoding="utf-8")[:600])
    return [] if match is None or match[1].strip() == "none" else [c.strip() for c in match[1].split(",")]


def _plotly_js() -> Path:
    """The partial bundle, checked against the plotly.js version the installed plotly package writes figures for."""
    from plotly.offline import get_plotlyjs_version

    path, version, _ = plotly_bundle()
    if version != get_plotlyjs_version():
        raise RuntimeError(f"{path} is plotly.js {version}, but the installed plotly package writes figures for "
                           f"plotly.js {get_plotlyjs_version()}: rebuild the bundle (tools/plotly_bundle/build.js)")
    return path


def _explorer_js() -> Path:
    import vae_lib

    return Path(vae_lib.__file__).parent / "explorer_runtime.js"


def _mathjax_root() -> Path:
    import mathjax  # the django-static-mathjax package

    root = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (root / "tex-chtml.js").is_file():
        raise FileNotFoundError(f"MathJax's tex-chtml.js not found under {root}")
    return root


def _vendor(app: Sphinx) -> None:
    static_root = Path(app.outdir).parent / "vendor_static"
    target = static_root / "vendor"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(_plotly_js(), target / "plotly.min.js")
    _minified(BOOK_STATIC / "vae-book.js", target / "vae-book.js")
    shutil.copy2(BOOK_STATIC / "vae-book.css", target / "vae-book.css")
    _minified(_explorer_js(), target / "explorer_runtime.js")
    (target / EXPLORER_DATA).mkdir(exist_ok=True)
    root = _mathjax_root()
    for part in MATHJAX_PARTS:
        src, dst = root / part, target / "mathjax" / part
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    app.config.html_static_path.append(str(static_root))


def _minified(source: Path, target: Path) -> None:
    """The book's own scripts are served without their comments and indentation (rjsmin, which keeps every token:
    the explorer runtime 54 -> 34 KB); the source files stay as they are, and so does the copy a notebook inlines."""
    import rjsmin

    target.write_text(f"/* {source.name}, minified (_ext/static_page.py) */\n" + rjsmin.jsmin(
        source.read_text(encoding="utf-8")) + "\n", encoding="utf-8")


def _mathjax_components(app: Sphinx, config: object) -> None:
    """startup.js loads the components named here (and core.js, which they need), not the whole tex-chtml.js."""
    mj = dict(getattr(config, "mathjax3_config", None) or {})
    loader = dict(mj.get("loader", {}))
    loader["load"] = list(MATHJAX_LOAD)
    mj["loader"] = loader
    config.mathjax3_config = mj


def _drop_widget_state(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: object) -> None:
    page = getattr(app.env, "nb_metadata", {}).get(pagename, {})
    page.get("js_files", {}).pop("ipywidgets_state", None)


def _plotly_where_needed(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: object) -> None:
    """Load plotly.js in the head of the pages that draw plotly figures (the figures' scripts call it inline)."""
    if PLOTLY_FIGURE in context.get("body", ""):
        # called here, it is added to this page only; deferred, so the text is painted first (each figure's script
        # waits for it: vae_lib.display.draw_when_plotly_is_ready)
        app.add_js_file(PLOTLY_JS, priority=100, defer="defer")


def _without_fontawesome_js(app: Sphinx) -> None:
    """Render pages without the theme's fontawesome.js, and every page but the search page without the search
    index and its scripts (see the module docstring): the theme writes these script tags straight into its template,
    so they are taken out of each rendered page."""
    templates = app.builder.templates
    render = templates.render
    as_you_type = str(app.builder.theme_options.get("search_as_you_type", False)).lower() == "true"

    def rendered(template: str, context: dict) -> str:
        html = FONTAWESOME_JS.sub("", render(template, context))
        return html if as_you_type or context.get("pagename") == "search" else SEARCH_JS.sub("", html)

    templates.render = rendered


def _theme_static() -> Path:
    import pydata_sphinx_theme

    return Path(pydata_sphinx_theme.__file__).parent / "theme" / "pydata_sphinx_theme" / "static"


def _only_the_icons_in_use(app: Sphinx, exception: Exception | None) -> None:
    """The theme's style sheet with the rules of the Font Awesome icons in use only, and its web fonts with only
    their glyphs (see the module docstring); written over the copies in the built ``_static``, from the theme's own
    files, so a later build that shows another icon gets it."""
    if exception is not None or app.builder.format != "html":
        return
    from fontTools import subset

    outdir, source = Path(app.outdir), _theme_static()
    named = set()
    for path in [*outdir.rglob("*.html"), *(outdir / "_static").glob("*.js"),
                 *(outdir / "_static" / "scripts").glob("*.js")]:
        named.update(FA_NAME.findall(path.read_text(encoding="utf-8", errors="replace")))

    def kept(rule: re.Match) -> str:
        return rule[0] if named & set(re.findall(r"\.(fa-[a-z0-9-]+)::?(?:before|after)", rule[1])) else ""

    css = FA_ICON_RULE.sub(kept, (source / THEME_CSS).read_text(encoding="utf-8"))
    (outdir / "_static" / THEME_CSS).write_text(css, encoding="utf-8")
    code_points = {int(escape, 16) if escape else ord(char) for path in (outdir / "_static").rglob("*.css")
                   for escape, char in CSS_CODE_POINT.findall(path.read_text(encoding="utf-8", errors="replace"))}
    options = subset.Options(flavor="woff2", layout_features=["*"], notdef_outline=True)
    for font_path in sorted((source / FA_FONTS).glob("*.woff2")):
        font = subset.load_font(str(font_path), options)
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes=code_points)
        subsetter.subset(font)
        subset.save_font(font, str(outdir / "_static" / FA_FONTS / font_path.name), options)


def _explorers_where_needed(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: object) -> None:
    """Load the explorer runtime once on each page that has an explorer (each explorer's own inline copy is dropped
    by :class:`ExplorerPages`); deferred after the page script, which draws the first figure as soon as it runs
    (the explorers are mounted at DOMContentLoaded, after every deferred script)."""
    if EXPLORER_HOST in context.get("body", ""):
        app.add_js_file(EXPLORER_JS, priority=102, defer="defer")


def _drop_thebe(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: object) -> None:
    """Jupyter Book always adds sphinx-thebe, whose scripts point at a CDN and declare THEBE_JS_URL twice
    (a console error). The book has no live-code button yet, so the page does not load them."""
    def is_thebe(js: object) -> bool:
        body = getattr(js, "attributes", {}).get("body", "")
        return "thebe" in str(getattr(js, "filename", js) or "") or "THEBE" in body

    context["script_files"] = [js for js in context.get("script_files", []) if not is_thebe(js)]


def _design_where_needed(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: object) -> None:
    """sphinx-design (which Jupyter Book always adds) puts its style sheet (53 KB) and its tabs script on every page;
    only a page with a sphinx-design element (a class ``sd-...``: cards, grids, tabs) loads them. The book's dropdowns
    are sphinx-togglebutton's, which keeps its own files."""
    if SPHINX_DESIGN_CLASS.search(context.get("body", "")):
        return
    context["css_files"] = [css for css in context.get("css_files", [])
                            if "sphinx-design" not in str(getattr(css, "filename", css))]
    context["script_files"] = [js for js in context.get("script_files", [])
                               if "design-tabs.js" not in str(getattr(js, "filename", js) or "")]


class DropWidgetViews(SphinxPostTransform):
    """Remove widget views (and outputs left empty by that) before myst-nb wraps hidden outputs (priority 199)."""

    default_priority = 150
    formats = ("html",)

    def run(self, **kwargs: object) -> None:
        for raw in list(self.document.findall(nodes.raw)):
            if WIDGET_VIEW not in raw.astext():
                continue
            node = raw
            while node.parent is not None and node.parent.get("nb_element") != "cell_code":
                parent = node.parent
                parent.remove(node)
                if parent.children:
                    break
                node = parent
            else:
                if node.parent is not None:
                    node.parent.remove(node)  # the cell's whole output block held nothing else


class ExplorerPages(SphinxPostTransform):
    """Each static explorer (vae_lib.explorer.Explorer.html) carries the runtime inline and its arrays (network weights,
    bitmaps) as base64 in its description, so that it works as a notebook output on its own. In the book the runtime
    is loaded once per page instead (:func:`_explorers_where_needed`), and every array longer than
    ``EXTERNAL_MIN_CHARS`` moves to a script of its own under ``_static/vendor/explorer-data/``, named by its SHA-256
    (two explorers of the same model share the file): the page's HTML stays small and its text is painted first, the
    runtime loads those scripts (``<script src>`` works from ``file://`` too) and then draws the explorer."""

    default_priority = 160
    formats = ("html",)

    def run(self, **kwargs: object) -> None:
        # written straight into the output's _static folder: Sphinx copies html_static_path before it writes pages
        folder = Path(self.app.outdir) / "_static" / "vendor" / EXPLORER_DATA
        for raw in list(self.document.findall(nodes.raw)):
            text = raw.astext()
            if EXPLORER_HOST not in text:
                continue
            text = _INLINE_RUNTIME.sub("", text)
            text = _SPEC.sub(lambda m: m.group(1) + _externalise(m.group(2), folder) + m.group(3), text)
            raw.children = [nodes.Text(text)]
            raw.rawsource = text


def _externalise(spec_json: str, folder: Path) -> str:
    """The spec with each large array moved to ``<digest>.js``. An array that deflate shrinks by a fifth or more (the
    image grids of chapter 7's explorers, to about a third; int8 network weights hardly shrink) is also written
    deflated, ``<digest>.z.js`` (the spec's ``packed``), which the runtime loads instead and inflates with the
    browser's DecompressionStream; a browser without one loads ``<digest>.js``. The explorer gets the same bytes."""
    spec = json.loads(spec_json.replace("<\\/", "</"))
    for entry in spec.get("data", {}).values():
        b64 = entry.get("b64", "")
        if len(b64) < EXTERNAL_MIN_CHARS:
            continue
        digest = hashlib.sha256(b64.encode("ascii")).hexdigest()[:20]
        folder.mkdir(parents=True, exist_ok=True)
        packed = base64.b64encode(zlib.compress(base64.b64decode(b64), 9)).decode("ascii")
        _write_once(folder / f"{digest}.js", f'vaeExplorer.data("{digest}","{b64}");\n')
        if len(packed) <= PACKED_AT_MOST * len(b64):
            _write_once(folder / f"{digest}.z.js", f'vaeExplorer.data("{digest}","{packed}","deflate");\n')
            entry["packed"] = "deflate"
        entry["external"] = digest
        del entry["b64"]
    return json.dumps(spec, separators=(",", ":")).replace("</", "<\\/")


def _write_once(path: Path, text: str) -> None:
    if not path.exists():
        path.write_text(text, encoding="ascii")


def setup(app: Sphinx) -> dict:
    app.connect("builder-inited", _vendor)
    app.connect("builder-inited", _without_fontawesome_js)
    app.connect("build-finished", _only_the_icons_in_use)
    app.add_css_file(PAGE_CSS, priority=900)  # after the theme's style sheets
    app.add_js_file(PAGE_JS, priority=101, defer="defer")  # every page; after plotly.js, before DOMContentLoaded
    app.add_post_transform(DropWidgetViews)
    app.add_post_transform(ExplorerPages)
    app.connect("html-page-context", _drop_widget_state, priority=400)  # before myst-nb adds page scripts
    app.connect("html-page-context", _drop_thebe, priority=900)  # after every extension added its scripts
    app.connect("html-page-context", _design_where_needed, priority=900)
    app.connect("html-page-context", _plotly_where_needed, priority=500)  # before _drop_thebe copies the list
    app.connect("html-page-context", _explorers_where_needed, priority=500)
    app.config.mathjax_path = "vendor/mathjax/startup.js"
    app.connect("config-inited", _mathjax_components)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
