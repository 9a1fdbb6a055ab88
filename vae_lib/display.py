"""How figures reach the reader: one plotly renderer for the notebook *and* the built book.

Inside a kernel plotly 6+ emits only ``application/vnd.plotly.v1+json``; the book's notebook reader
(myst-nb) drops that mime type, so figures would silently vanish from the HTML. And plotly's
``notebook`` renderer embeds 4.6 MB of plotly.js in every output, while ``notebook_connected`` points
at a CDN (blank offline). :func:`setup_notebook` registers a renderer that emits *both* the plotly mime
type (JupyterLab draws it natively) and a small HTML snippet that calls the ``Plotly`` global; the
book loads plotly.js once, from its own ``_static`` folder (see ``_ext/vendor_assets.py``).
"""

from __future__ import annotations

from importlib.resources import files

import plotly.io as pio
from plotly.io._base_renderers import MimetypeRenderer

__all__ = ["BOOK_RENDERER", "BookHtmlRenderer", "page_scripts", "setup_notebook"]

BOOK_RENDERER = "book_html"


def page_scripts() -> list[str]:
    """The static explorers' scripts (``vae_lib/*.js``), run by plotly after drawing each figure.

    Each script receives the figure's div id as ``{plot_id}`` and acts only on figures whose
    ``layout.meta`` carries its own key (e.g. ``latent_explorer``), so every figure can carry all of them.
    """
    scripts = sorted((f for f in files("vae_lib").iterdir() if f.name.endswith(".js")), key=lambda f: f.name)
    return [f.read_text(encoding="utf-8") for f in scripts]


class BookHtmlRenderer(MimetypeRenderer):
    """A ``text/html`` snippet that draws the figure with the page's ``Plotly`` global.

    No plotly.js (the book loads it once per page), no MathJax from a CDN (plotly's own HTML renderers
    add one), and the static latent explorer's script (:mod:`vae_lib.explorer`) as a post-script.
    """

    def __init__(self) -> None:
        self.post_scripts = page_scripts()
        self.config = {"displaylogo": False, "responsive": True}

    def to_mimebundle(self, fig_dict: dict) -> dict:
        html = pio.to_html(fig_dict, config=self.config, include_plotlyjs=False, include_mathjax=False,
                           post_script=self.post_scripts, full_html=False, default_width="100%", auto_play=False,
                           default_height=525, validate=False)
        return {"text/html": html}


def setup_notebook() -> None:
    """Make every plotly figure render in JupyterLab and in the built book (call once per chapter)."""
    pio.renderers[BOOK_RENDERER] = BookHtmlRenderer()
    pio.renderers.default = f"plotly_mimetype+{BOOK_RENDERER}"
