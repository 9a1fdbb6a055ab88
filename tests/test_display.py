"""The book's plotly renderer: HTML that the book keeps, with no library, no CDN, and the explorer script."""

from __future__ import annotations

import plotly.graph_objects as go
import plotly.io as pio

from vae_lib.display import BOOK_RENDERER, setup_notebook


def test_setup_emits_plotly_json_for_jupyterlab_and_html_for_the_book():
    setup_notebook()
    assert pio.renderers.default == f"plotly_mimetype+{BOOK_RENDERER}"
    bundle = go.Figure(go.Scatter(x=[0, 1], y=[1, 0]))._repr_mimebundle_()
    assert "application/vnd.plotly.v1+json" in bundle
    html = bundle["text/html"]
    assert "Plotly.newPlot" in html
    assert len(html) < 50_000, "plotly.js must not be embedded in every figure"
    assert "cdn" not in html.lower() and "https://" not in html
    assert "latent_explorer" in html  # the static explorer's script rides along as a post-script
