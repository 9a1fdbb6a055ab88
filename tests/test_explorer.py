"""The latent explorer: grid decoding, the phase-diagram mosaic, the embedded lookup, the live widget."""

from __future__ import annotations

import base64

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from vae_lib.explorer import decode_grid, live_explorer, mosaic, phase_diagram_figure


def coordinate_decoder(z: torch.Tensor) -> torch.Tensor:
    """A 2×3 'image' that spells out z: pixel (r, c) = 10 r + c + z1 (top row) / + z2 (bottom row)."""
    base = torch.tensor([[0.0, 1.0, 2.0], [10.0, 11.0, 12.0]])  # (2, 3)
    out = base.expand(z.shape[0], 2, 3).clone()
    out[:, 0] += z[:, :1]
    out[:, 1] += z[:, 1:]
    return out.reshape(z.shape[0], 6)


def test_decode_grid_places_z1_along_columns_and_z2_along_rows():
    grid = decode_grid(coordinate_decoder, (2, 3), z_range=(-1.0, 1.0), n=5)
    assert grid.images.shape == (5, 5, 2, 3)
    for j in range(5):
        for i in range(5):
            assert grid.images[j, i, 0, 0] == pytest.approx(float(grid.z1[i]))
            assert grid.images[j, i, 1, 0] == pytest.approx(10.0 + float(grid.z2[j]))


def test_mosaic_puts_low_z2_at_the_bottom_and_each_image_upright():
    grid = decode_grid(coordinate_decoder, (2, 3), z_range=(-1.0, 1.0), n=3)
    m = mosaic(grid, gap=0)  # (n·H, n·W), row 0 = bottom of the plot
    assert m.shape == (6, 9)
    # tile (j=0, i=0) occupies rows 0-1, cols 0-2; its image's top row must be the upper one (row 1)
    assert torch.equal(m[1, 0:3], grid.images[0, 0, 0])
    assert torch.equal(m[0, 0:3], grid.images[0, 0, 1])
    # tile (j=2, i=1): rows 4-5, cols 3-5
    assert torch.equal(m[5, 3:6], grid.images[2, 1, 0])


def test_mosaic_gap_separates_tiles_with_blank_pixels():
    grid = decode_grid(coordinate_decoder, (2, 3), z_range=(-1.0, 1.0), n=3)
    m = mosaic(grid, gap=1)  # tiles of 2×3 with one blank row/column between them
    assert m.shape == (3 * 3 - 1, 3 * 4 - 1)
    assert torch.isnan(m[2]).all() and torch.isnan(m[:, 3]).all()  # the gaps
    assert torch.equal(m[1, 0:3], grid.images[0, 0, 0])  # tile (0, 0), top image row uppermost
    assert torch.equal(m[7, 4:7], grid.images[2, 1, 0])  # tile (j=2, i=1): rows 6-7, cols 4-6
    assert not torch.isnan(m[[0, 1, 3, 4, 6, 7]][:, [0, 1, 2, 4, 5, 6, 8, 9, 10]]).any()


def test_phase_diagram_tiles_are_centred_on_their_latent_points():
    fig = phase_diagram_figure(coordinate_decoder, (2, 3), z_range=(-1.0, 1.0), n_mosaic=3, n_lookup=5)
    heat = fig.data[0]
    # tile i's columns are i·(W+1) … i·(W+1)+W−1; their mean x must be z1[i] (likewise rows and z2)
    for i, z in enumerate([-1.0, 0.0, 1.0]):
        cols = [heat.x0 + heat.dx * (i * 4 + c) for c in range(3)]
        rows = [heat.y0 + heat.dy * (i * 3 + r) for r in range(2)]
        assert sum(cols) / 3 == pytest.approx(z) and sum(rows) / 2 == pytest.approx(z)


def test_static_explorer_embeds_the_decoded_lookup_grid():
    fig = phase_diagram_figure(coordinate_decoder, (2, 3), z_range=(-1.0, 1.0), n_mosaic=3, n_lookup=5,
                               value_range=(-2.0, 14.0), start=(0.5, -0.5))
    assert isinstance(fig, go.Figure)
    meta = fig.layout.meta["latent_explorer"]
    raw = np.frombuffer(base64.b64decode(meta["images_b64"]), dtype=np.uint8).reshape(5, 5, 2, 3)
    decoded = meta["vmin"] + (meta["vmax"] - meta["vmin"]) * raw / 255.0
    expected = decode_grid(coordinate_decoder, (2, 3), (-1.0, 1.0), 5).images.numpy()
    assert np.abs(decoded - expected).max() <= (meta["vmax"] - meta["vmin"]) / 255 / 2 + 1e-6
    assert meta["start"] == [3, 1]  # z1 = 0.5 and z2 = −0.5 on the 5-point axis
    start_image = np.asarray(fig.data[meta["decoded_trace"]].z)
    assert np.allclose(start_image, expected[1, 3], atol=1e-6)
    assert [s.name for s in fig.layout.sliders] == ["z1", "z2"]
    assert fig.layout.sliders[0].active == 3 and fig.layout.sliders[1].active == 1
    assert fig.layout.xaxis.title.text == "z₁" and fig.layout.yaxis.title.text == "z₂"


def test_live_explorer_updates_the_decoded_panel_in_place():
    box = live_explorer(coordinate_decoder, (2, 3), z_range=(-1.0, 1.0), n_mosaic=3)
    box.sliders[0].value = 0.5
    box.sliders[1].value = -0.25
    image = np.asarray(box.figure.data[1].z)
    assert np.allclose(image, coordinate_decoder(torch.tensor([[0.5, -0.25]])).reshape(2, 3).numpy())
    assert box.figure.layout.annotations[1].text == "decoded output at z = (0.50, -0.25)"
    shape = box.figure.layout.shapes[0]
    assert (shape.x0 + shape.x1) / 2 == pytest.approx(0.5) and (shape.y0 + shape.y1) / 2 == pytest.approx(-0.25)


@pytest.mark.parametrize("kwargs, match", [
    (dict(image_shape=(2,)), "image_shape"),
    (dict(z_range=(1.0, -1.0)), "z_range"),
    (dict(n_mosaic=1), "n_mosaic"),
    (dict(value_range=(3.0, 3.0)), "value_range"),
])
def test_explorer_rejects_bad_arguments(kwargs, match):
    args = dict(image_shape=(2, 3))
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        phase_diagram_figure(coordinate_decoder, **args)


def test_decoder_with_wrong_output_size_is_named():
    with pytest.raises(ValueError, match="decode must return shape"):
        decode_grid(coordinate_decoder, (3, 3), n=3)


def test_live_explorer_state_is_strict_json():
    """The mosaic's NaN gaps must not reach the widget comm (jupyter_client warns on non-JSON floats)."""
    import json

    box = live_explorer(lambda z: torch.zeros(z.shape[0], 64), (8, 8), n_mosaic=4)
    json.dumps(box.figure.get_state()["_widget_data"], allow_nan=False)
    z = box.figure.data[0].z
    assert any(v is None for row in z for v in row) and all(v is None or v == v for row in z for v in row)
