"""How figures reach the reader: one plotly renderer for the notebook *and* the built book.

Inside a kernel plotly 6+ emits only ``application/vnd.plotly.v1+json``; the book's notebook reader
(myst-nb) drops that mime type, so figures would silently vanish from the HTML. And plotly's
``notebook`` renderer embeds 4.6 MB of plotly.js in every output, while ``notebook_connected`` points
at a CDN (blank offline). :func:`setup_notebook` registers a renderer that emits *both* the plotly mime
type (JupyterLab draws it natively) and a small HTML snippet that calls the ``Plotly`` global; the
book loads plotly.js once, from its own ``_static`` folder (see ``_ext/static_page.py``).

Each HTML figure is wrapped in an element with ``role="img"`` and an ``aria-label`` built from the
figure's title and axis titles (:func:`figure_label`), so a screen reader announces what the figure shows.

Google Colab (the book's "Colab" launch button) is the one place where the page has no plotly.js of its
own and ignores plotly's mime type: every output there is a separate sandboxed frame. There, and only
there, the HTML loads plotly.js from plotly's CDN (Colab is online by definition), as plotly's own
``colab`` renderer does, and Colab's widget manager for third-party widgets is switched on.
"""

from __future__ import annotations

import base64
import html
import importlib
import re

import numpy as np
import plotly.io as pio
from plotly.io._base_renderers import MimetypeRenderer

__all__ = ["BOOK_NEW_PLOT", "BOOK_RENDERER", "BookHtmlRenderer", "compact_arrays", "draw_when_plotly_is_ready",
           "figure_label", "prune_template", "setup_notebook"]

BOOK_RENDERER = "book_html"

_AXIS_KEY = re.compile(r"^(x|y)axis(\d*)$")


def _title_text(title: object) -> str:
    """The plain text of a plotly title (a string or ``{"text": ...}``), without its HTML tags."""
    text = title.get("text", "") if isinstance(title, dict) else title
    if not isinstance(text, str):
        return ""
    text = re.sub(r"\s*<br\s*/?>\s*", "; ", text, flags=re.IGNORECASE)  # a line break separates a subtitle
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    return " ".join(text.split())


def figure_label(fig_dict: dict) -> str:
    """Alt text for a figure: its title, then its axis titles (x before y, subplot by subplot).

    Used as the ``aria-label`` of the element that wraps each figure in the book's HTML (every chapter).
    """
    if not isinstance(fig_dict, dict):
        raise TypeError(f"fig_dict must be a plotly figure dict, got {type(fig_dict).__name__}")
    layout = fig_dict.get("layout") or {}
    title = _title_text(layout.get("title"))
    axes = sorted((int(m[2] or 1), m[1], key) for key in layout if (m := _AXIS_KEY.match(key)))
    axis_titles: list[str] = []
    for _, _, key in axes:
        text = _title_text((layout[key] or {}).get("title"))
        if text and text not in axis_titles:
            axis_titles.append(text)
    label = f"Figure: {title}" if title else "Figure"
    if axis_titles:
        label += ". Axes: " + "; ".join(axis_titles)
    return label


def _in_colab() -> bool:
    """True inside a Google Colab kernel (the same test plotly uses to pick its ``colab`` renderer)."""
    try:
        importlib.import_module("google.colab")
    except ImportError:
        return False
    return True


# plotly's drawing script: <script> window.PLOTLYENV = ...; if (document.getElementById(id)) { Plotly.newPlot(...) }
_DRAW_SCRIPT = re.compile(r"<script>(\s*window\.PLOTLYENV\b.*?)</script>", re.S)
_WAIT = ("(window.vaeBookWaiting = window.vaeBookWaiting || []).push(vaeBookDraw);\n"
         "    document.addEventListener('DOMContentLoaded', vaeBookDraw, {{once: true}}); return;")
_DRAW_WHEN_READY = ("<script>(function vaeBookDraw() {{\n  if (!window.Plotly) {{\n    " + _WAIT + "\n  }}\n"
                    "  if (vaeBookDraw.done) {{ return; }}\n  vaeBookDraw.done = true;\n{body}\n}})();</script>")


_NEW_PLOT = "Plotly.newPlot("
BOOK_NEW_PLOT = "(window.vaeBook || Plotly).newPlot("


def draw_when_plotly_is_ready(figure_html: str) -> str:
    """Make plotly's drawing script wait for plotly.js if the page has not run it yet, and let the book's page script
    draw the figure when it approaches the viewport.

    The book loads plotly.js with ``defer`` (``_ext/static_page.py``), so the text of a chapter is painted before the
    library is parsed. A figure whose script finds no ``Plotly`` queues itself (``window.vaeBookWaiting``) and
    waits for ``DOMContentLoaded``, which comes after every deferred script; in the book, ``vaeBook``
    (``book/_static/vae-book.js``, deferred right after plotly.js) runs the queue as soon as it runs itself, and the
    figure draws once, whichever comes first. Where plotly.js is already there (a page that loads it first, Colab),
    it draws at once. The call ``Plotly.newPlot(...)`` becomes ``(window.vaeBook || Plotly).newPlot(...)``: in the
    book, ``vaeBook`` draws the figure when it comes near the viewport (the one the reader will see first at once),
    in the page's light or dark theme; anywhere else plotly draws it at once.
    """
    if not isinstance(figure_html, str):
        raise TypeError(f"figure_html must be a str, got {type(figure_html).__name__}")

    def wrap(match: re.Match) -> str:
        return _DRAW_WHEN_READY.format(body=match.group(1).replace(_NEW_PLOT, BOOK_NEW_PLOT, 1))

    # count=1: a figure has one drawing script. Without one (another plotly version's HTML) the snippet is returned
    # as it is: it still draws where plotly.js is loaded first, and the book's browser tests fail on the page.
    return _DRAW_SCRIPT.sub(wrap, figure_html, count=1)


def compact_arrays(value: object) -> object:
    """The figure with every float64 numpy array as float32 (plotly sends arrays as base64 of their bytes: half the
    page weight; 7 significant digits are far below a pixel). Other values are returned as they are."""
    if isinstance(value, np.ndarray) and value.dtype == np.float64:
        return value.astype(np.float32)
    if isinstance(value, dict) and value.get("dtype") == "f8" and isinstance(value.get("bdata"), str):
        # plotly's own encoding of a numpy array in a figure dict: {"dtype", "bdata" (base64), "shape"}
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype="<f8").astype("<f4")
        return {**value, "dtype": "f4", "bdata": base64.b64encode(array.tobytes()).decode("ascii")}
    if isinstance(value, dict):
        return {k: compact_arrays(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and any(isinstance(v, (dict, np.ndarray)) for v in value):
        return type(value)(compact_arrays(v) for v in value)
    return value


def prune_template(fig_dict: dict) -> dict:
    """The figure with its template's per-trace-type defaults kept only for the trace types it draws.

    plotly.py writes its whole default template into every figure: defaults for 24 trace types, about 4 KB a figure,
    of which a figure uses one to three. The template's layout part (colours, axes, fonts) is kept as it is.
    """
    if not isinstance(fig_dict, dict):
        raise TypeError(f"fig_dict must be a plotly figure dict, got {type(fig_dict).__name__}")
    layout = fig_dict.get("layout") or {}
    template = layout.get("template")
    if not isinstance(template, dict) or not isinstance(template.get("data"), dict):
        return fig_dict
    used = {trace.get("type", "scatter") for trace in fig_dict.get("data") or []}
    data = {kind: value for kind, value in template["data"].items() if kind in used}
    return {**fig_dict, "layout": {**layout, "template": {**template, "data": data}}}


class BookHtmlRenderer(MimetypeRenderer):
    """A ``text/html`` snippet that draws the figure with the page's ``Plotly`` global.

    No plotly.js (the book loads it once per page, deferred: :func:`draw_when_plotly_is_ready`), no MathJax from a
    CDN (plotly's own HTML renderers add one). The figure sits in an element with ``role="img"`` and an ``aria-label``
    from :func:`figure_label`. (The book's explorers are not plotly figures: :mod:`vae_lib.explorer`.)
    ``plotlyjs_from_cdn=True`` (Colab only, see :func:`setup_notebook`) loads plotly.js from plotly's CDN.
    """

    def __init__(self, plotlyjs_from_cdn: bool = False) -> None:
        if not isinstance(plotlyjs_from_cdn, bool):
            raise TypeError(f"plotlyjs_from_cdn must be a bool, got {type(plotlyjs_from_cdn).__name__}")
        self.config = {"displaylogo": False, "responsive": True}
        self.include_plotlyjs: bool | str = "cdn" if plotlyjs_from_cdn else False

    def to_mimebundle(self, fig_dict: dict) -> dict:
        figure = pio.to_html(compact_arrays(prune_template(fig_dict)), config=self.config,
                             include_plotlyjs=self.include_plotlyjs,
                             include_mathjax=False, full_html=False,
                             default_width="100%", auto_play=False, default_height=525, validate=False)
        figure = draw_when_plotly_is_ready(figure)
        label = html.escape(figure_label(fig_dict), quote=True)
        return {"text/html": f'<div class="vae-book-figure" role="img" aria-label="{label}">{figure}</div>'}


def setup_notebook() -> None:
    """Make every plotly figure render in JupyterLab and in the built book (call once per chapter).

    In Google Colab the figures load plotly.js from plotly's CDN instead (see the module docstring).
    """
    if _in_colab():
        pio.renderers[BOOK_RENDERER] = BookHtmlRenderer(plotlyjs_from_cdn=True)
        pio.renderers.default = BOOK_RENDERER
        # Colab draws third-party ipywidgets (anywidget, plotly's FigureWidget) only with its custom manager
        importlib.import_module("google.colab.output").enable_custom_widget_manager()
        return
    pio.renderers[BOOK_RENDERER] = BookHtmlRenderer()
    pio.renderers.default = f"plotly_mimetype+{BOOK_RENDERER}"
