"""The book's plotly renderer: HTML that the book keeps, with no library, no CDN, the explorer script, and alt text."""

from __future__ import annotations

import re
import sys
import types
from html.parser import HTMLParser

import plotly.graph_objects as go
import plotly.io as pio
import pytest
from plotly.subplots import make_subplots

from vae_lib.display import (
    BOOK_NEW_PLOT,
    BOOK_RENDERER,
    BookHtmlRenderer,
    draw_when_plotly_is_ready,
    figure_label,
    setup_notebook,
)


@pytest.fixture
def restore_renderers():
    """setup_notebook changes plotly's global renderers: put them back for the other tests of this worker."""
    default, book = pio.renderers.default, pio.renderers[BOOK_RENDERER] if BOOK_RENDERER in pio.renderers else None
    yield
    if book is not None:
        pio.renderers[BOOK_RENDERER] = book
    pio.renderers.default = default


class _Elements(HTMLParser):
    """Every start tag with its attributes, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Elements()
    parser.feed(html)
    return parser.tags


def _two_panel_figure() -> go.Figure:
    fig = make_subplots(rows=1, cols=2)
    fig.add_scatter(x=[0, 1], y=[1, 0], row=1, col=1)
    fig.add_histogram(x=[0.1, 0.2, 0.2], row=1, col=2)
    fig.update_layout(title='Gap <b>against</b> K<br>for x = "(1.5, 0.5)" & q')
    fig.update_xaxes(title_text="z₁", row=1, col=1)
    fig.update_yaxes(title_text="z₂", row=1, col=1)
    fig.update_xaxes(title_text="gap [nats]", row=1, col=2)
    fig.update_yaxes(title_text="count", row=1, col=2)
    return fig


# ---------------------------------------------------------------- the renderer in JupyterLab and the book


def test_setup_emits_plotly_json_for_jupyterlab_and_html_for_the_book(restore_renderers):
    setup_notebook()
    assert pio.renderers.default == f"plotly_mimetype+{BOOK_RENDERER}"
    bundle = go.Figure(go.Scatter(x=[0, 1], y=[1, 0]))._repr_mimebundle_()
    assert "application/vnd.plotly.v1+json" in bundle
    html = bundle["text/html"]
    assert BOOK_NEW_PLOT in html
    assert len(html) < 50_000, "plotly.js must not be embedded in every figure"
    assert "cdn" not in html.lower() and "https://" not in html
    assert "vaeExplorer" not in html  # explorers draw themselves (vae_lib.explorer): no script rides on each figure


# ---------------------------------------------------------------- alt text


def test_label_is_the_title_then_every_axis_title_as_plain_text():
    label = figure_label(_two_panel_figure().to_dict())
    assert label == 'Figure: Gap against K; for x = "(1.5, 0.5)" & q. Axes: z₁; z₂; gap [nats]; count'


def test_label_without_a_title_names_the_axes_and_repeats_none():
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True)
    fig.add_scatter(x=[0, 1], y=[1, 0], row=1, col=1)
    fig.add_scatter(x=[0, 1], y=[0, 1], row=1, col=2)
    fig.update_xaxes(title_text="epoch")  # both panels: the same title once
    assert figure_label(fig.to_dict()) == "Figure. Axes: epoch"
    assert figure_label({"layout": {"title": "plain <i>string</i> title"}}) == "Figure: plain string title"
    assert figure_label({}) == "Figure"


def test_label_orders_subplot_axes_by_number_not_by_name():
    layout = {f"{a}axis{n if n > 1 else ''}": {"title": {"text": f"{a}{n}"}} for n in (1, 2, 10) for a in "yx"}
    assert figure_label({"layout": layout}) == "Figure. Axes: x1; y1; x2; y2; x10; y10"


def test_label_rejects_a_figure_object_with_a_clear_error():
    with pytest.raises(TypeError, match="fig_dict"):
        figure_label(go.Figure())


def test_every_figure_is_wrapped_in_an_img_role_carrying_its_label():
    fig = _two_panel_figure()
    html = BookHtmlRenderer().to_mimebundle(fig.to_dict())["text/html"]
    tags = _elements(html)
    tag, attrs = tags[0]
    assert tag == "div" and attrs["role"] == "img"
    assert attrs["aria-label"] == figure_label(fig.to_dict())  # quotes and & survive the attribute escaping
    assert sum(a.get("role") == "img" for _, a in tags) == 1
    assert any("plotly-graph-div" in (a.get("class") or "") for _, a in tags[1:]), "the plot sits inside the wrapper"
    assert html.endswith("</div>")


# ---------------------------------------------------------------- Google Colab (the "Colab" launch button)


@pytest.fixture
def fake_colab(monkeypatch):
    """A stand-in for the google.colab package: records calls to enable_custom_widget_manager."""
    calls: list[str] = []
    google, colab, output = (types.ModuleType(n) for n in ("google", "google.colab", "google.colab.output"))
    output.enable_custom_widget_manager = lambda: calls.append("enable_custom_widget_manager")
    google.colab, colab.output = colab, output
    for module in (google, colab, output):
        monkeypatch.setitem(sys.modules, module.__name__, module)
    return calls


def test_in_colab_figures_load_plotly_js_themselves_and_widgets_get_colabs_manager(fake_colab, restore_renderers):
    setup_notebook()
    assert pio.renderers.default == BOOK_RENDERER  # Colab ignores plotly's mime type: HTML only
    assert fake_colab == ["enable_custom_widget_manager"]
    html = go.Figure(go.Scatter(x=[0, 1], y=[1, 0]))._repr_mimebundle_()["text/html"]
    assert 'src="https://cdn.plot.ly/' in html  # each Colab output is its own frame, with no plotly.js of its own
    assert 'role="img"' in html


def test_outside_colab_nothing_is_fetched(restore_renderers):
    assert "google.colab" not in sys.modules
    setup_notebook()
    html = BookHtmlRenderer().to_mimebundle(go.Figure().to_dict())["text/html"]
    assert "<script" in html and " src=" not in html


def test_renderer_rejects_a_non_bool_cdn_flag():
    with pytest.raises(TypeError, match="plotlyjs_from_cdn"):
        BookHtmlRenderer(plotlyjs_from_cdn="cdn")


# ---------------------------------------------------------------- deferred plotly.js


def test_the_drawing_script_waits_for_a_deferred_plotly_js():
    html = BookHtmlRenderer().to_mimebundle(_two_panel_figure().to_dict())["text/html"]
    scripts = re.findall(r"<script>(.*?)</script>", html, flags=re.S)
    drawing = [s for s in scripts if ".newPlot(" in s]
    assert len(drawing) == 1
    body = drawing[0]
    # without Plotly it queues itself for the book's page script (vae-book.js drains the queue as soon as it runs)
    # and waits for DOMContentLoaded (deferred scripts run before it, outside the book too); it draws once
    assert body.lstrip().startswith("(function vaeBookDraw() {")
    wait = ("if (!window.Plotly) {\n    (window.vaeBookWaiting = window.vaeBookWaiting || []).push(vaeBookDraw);\n"
            "    document.addEventListener('DOMContentLoaded', vaeBookDraw, {once: true}); return;\n  }\n"
            "  if (vaeBookDraw.done) { return; }\n  vaeBookDraw.done = true;\n")
    assert wait in body
    assert body.index(wait) < body.index(BOOK_NEW_PLOT) and body.rstrip().endswith("})();")
    # the book's page script (vaeBook) draws it near the viewport; without it, plotly draws it at once
    assert body.count(BOOK_NEW_PLOT) == 1 and "Plotly.newPlot(" not in body


def test_draw_when_plotly_is_ready_wraps_exactly_one_script_and_leaves_other_html_alone():
    assert draw_when_plotly_is_ready("<div>no script</div>") == "<div>no script</div>"
    two = "<script> window.PLOTLYENV={}; Plotly.newPlot('a') </script><script> window.PLOTLYENV={}; </script>"
    out = draw_when_plotly_is_ready(two)
    assert out.count("vaeBookDraw() {") == 1 and out.endswith("<script> window.PLOTLYENV={}; </script>")
    with pytest.raises(TypeError, match="figure_html"):
        draw_when_plotly_is_ready(None)


def test_float64_arrays_reach_the_page_as_float32():
    import numpy as np

    from vae_lib.display import compact_arrays

    x = np.linspace(0.0, 1.0, 1001)  # float64
    fig = go.Figure(go.Scatter(x=x, y=x**2))
    html = BookHtmlRenderer().to_mimebundle(fig.to_dict())["text/html"]
    assert '"dtype":"f4"' in html and '"dtype":"f8"' not in html
    assert fig.to_dict()["data"][0]["x"]["dtype"] == "f8"  # plotly's own encoding, which the renderer halves
    small = compact_arrays({"data": [{"x": x, "n": np.arange(3), "s": "text"}]})
    assert small["data"][0]["x"].dtype == np.float32 and small["data"][0]["n"].dtype == np.arange(3).dtype
    assert np.abs(small["data"][0]["x"] - x).max() < 1e-7 and small["data"][0]["s"] == "text"


def test_image_grids_are_png_pictures_with_white_gaps_between_tiles():
    import base64

    import numpy as np
    import torch
    from _plotly_utils import png  # plotly's PNG codec (pypng), the writer the figure uses

    from vae_lib.figures import GAP, image_grid_figure

    images = torch.linspace(0.0, 16.0, 3 * 4).reshape(3, 4)  # three 2×2 images
    fig = image_grid_figure({"a": images}, shape=(2, 2), per_row=2, value_range=(0.0, 16.0), title="t",
                            colorscale=[[0.0, "#000000"], [1.0, "#FFFFFF"]])
    picture, bar = fig.data
    assert picture.type == "image" and picture.source.startswith("data:image/png;base64,")
    width, height, rows, _ = png.Reader(bytes=base64.b64decode(picture.source.split(",", 1)[1])).asRGB8()
    rgb = np.array([list(r) for r in rows], dtype=np.uint8).reshape(height, width, 3)
    assert (width, height) == (2 * 3 - 1, 2 * 3 - 1)
    assert (rgb[2] == 255).all() and (rgb[:, 2] == 255).all() and (rgb[3:, 3:] == 255).all()  # gaps, empty slot
    grey = rgb[..., 0].astype(float)
    assert (rgb[..., 1] == rgb[..., 0]).all() and (rgb[..., 2] == rgb[..., 0]).all()
    back = grey[:2, :2] / 255 * 16.0  # the first image, row-major, through the black-to-white scale
    assert np.abs(back.reshape(-1) - images[0].numpy()).max() <= 16.0 / (GAP - 1) + 16.0 / 255
    assert np.abs(grey[:2, 3:].reshape(-1) / 255 * 16.0 - images[1].numpy()).max() <= 16.0 / (GAP - 1) + 16.0 / 255
    assert bar.type == "heatmap" and bar.opacity == 0 and (bar.zmin, bar.zmax) == (0.0, 16.0)


def test_the_page_keeps_template_defaults_only_for_the_trace_types_a_figure_draws():
    from vae_lib.display import prune_template

    fig = _two_panel_figure().to_dict()
    assert len(fig["layout"]["template"]["data"]) > 10  # plotly's default template: defaults for every trace type
    pruned = prune_template(fig)
    assert set(pruned["layout"]["template"]["data"]) == {"scatter", "histogram"}
    assert pruned["layout"]["template"]["layout"] == fig["layout"]["template"]["layout"]
    assert len(fig["layout"]["template"]["data"]) > 10, "the caller's figure must not change"
    html = BookHtmlRenderer().to_mimebundle(fig)["text/html"]
    assert '"scatterpolargl"' not in html and '"histogram"' in html
    untemplated = {"data": [{"type": "bar", "y": [1]}], "layout": {}}
    assert prune_template(untemplated) is untemplated
    with pytest.raises(TypeError, match="fig_dict"):
        prune_template([])
