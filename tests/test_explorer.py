"""The one explorer design (vae_lib.explorer) and its latent-explorer and drawing-pad instances.

Python's run of each explorer's program is checked against the models it describes (exact answers: the VAE's own
decode_mean, the closed-form KL, the categorical log-likelihood); the page's run of the same program is checked against
Python's in Chromium (tests/test_explorer_browser.py and tests/test_browser.py).
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

import vae_lib
from vae_lib.explorer import Explorer, Plane, Slider, decode_grid, mosaic, quantise_rows
from vae_lib.latent_explorer import decoder_ops, drawing_pad_explorer, latent_explorer


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


def tiny_vae(likelihood: str = "categorical", seed: int = 0) -> vae_lib.VAE:
    return vae_lib.VAE(vae_lib.VAEConfig(latent_dim=2, hidden=(16, 16), likelihood=likelihood, seed=seed))


def grid_states(values=(-2.5, -0.3, 0.0, 1.7)) -> list[dict]:
    return [{"z1": a, "z2": b} for a in values for b in values]


def test_int8_rows_reconstruct_each_weight_within_half_a_step():
    w = torch.randn(7, 5, generator=torch.Generator().manual_seed(0)) * torch.tensor([[0.01], [1], [3], [0.2], [5],
                                                                                      [1e-3], [2]])
    q, scale = quantise_rows(w)
    back = torch.tensor(q, dtype=torch.float64) * torch.tensor(scale, dtype=torch.float64)[:, None]
    assert q.dtype.name == "int8" and abs(q).max() == 127  # each row uses the full range
    assert ((back - w.double()).abs() <= torch.tensor(scale, dtype=torch.float64)[:, None] / 2 + 1e-12).all()


@pytest.mark.parametrize("likelihood", ["categorical", "bernoulli", "gaussian", "gaussian_fixed"])
def test_latent_explorer_decodes_exactly_what_the_model_decodes(likelihood):
    vae = tiny_vae(likelihood)
    explorer = latent_explorer(vae, (8, 8))
    for state in grid_states():
        z = torch.tensor([[state["z1"], state["z2"]]])
        expected = vae.decode_mean(z).double()
        assert torch.allclose(explorer.evaluate(state, exact=True)["image"], expected, atol=1e-5)  # the kernel's run
        assert torch.allclose(explorer.evaluate(state)["image"], expected, atol=0.1)  # the page's 8-bit weights


def test_latent_explorer_of_an_autoencoder_and_of_a_vq_vae():
    ae = vae_lib.Autoencoder(vae_lib.AEConfig(latent_dim=2, hidden=(16,)))
    vq = vae_lib.VQVAE(vae_lib.VQVAEConfig(code_dim=2, n_codes=5, hidden=(16,)))
    for model, decode in ((ae, ae.decode_mean), (vq, vq.decode_quantised)):
        explorer = latent_explorer(model, (8, 8), codebook=getattr(model, "codebook", None))
        for state in grid_states():
            z = torch.tensor([[state["z1"], state["z2"]]])
            assert torch.allclose(explorer.evaluate(state, exact=True)["image"], decode(z).double(), atol=1e-5)
    # the VQ-VAE's page output is constant on each Voronoi cell: two points nearest the same code decode alike
    explorer = latent_explorer(vq, (8, 8))
    code = vq.codebook[0].detach()
    near = [{"z1": float(code[0]) + d, "z2": float(code[1])} for d in (0.0, 1e-3)]
    assert torch.equal(explorer.evaluate(near[0])["image"], explorer.evaluate(near[1])["image"])


def test_a_decoder_the_page_cannot_run_is_interpolated_on_a_grid():
    class ConvLike(nn.Module):  # not an MLP: the explorer falls back to a precomputed grid
        def __init__(self):
            super().__init__()
            self.decoder = nn.Identity()

        def decode_mean(self, z):
            return torch.stack([z[:, 0] * 2 + z[:, 1], z[:, 1] - z[:, 0]], -1).repeat(1, 2)  # linear: exact bilinear

    model = ConvLike()
    assert decoder_ops(model, "z", "image") is None
    explorer = latent_explorer(model, (2, 2), n_grid=5, value_range=(-10.0, 10.0))
    for state in grid_states((-2.2, 0.4, 3.0)):
        z = torch.tensor([[state["z1"], state["z2"]]])
        # bilinear interpolation of a linear map is exact; the page's 8-bit grid is within one level of (hi−lo)/255
        assert torch.allclose(explorer.evaluate(state, exact=True)["image"], model.decode_mean(z).double(), atol=1e-9)
        assert torch.allclose(explorer.evaluate(state)["image"], model.decode_mean(z).double(), atol=20 / 255)


def test_drawing_pad_reports_the_elbo_with_its_two_terms():
    vae = tiny_vae()
    x = torch.randint(0, 17, (3, 64)).float()
    pad = drawing_pad_explorer(vae, x, n_samples=8, seed=3)
    for k in range(3):
        values = pad.evaluate({"x": x[k:k + 1]}, exact=True)
        with torch.no_grad():
            mean, log_var = vae.encode(x[k:k + 1])
        kl = vae_lib.kl_diag_gaussian_std_normal(mean, log_var).item()
        eps = torch.randn(8, 2, generator=torch.Generator().manual_seed(3))
        z = mean + (0.5 * log_var).exp() * eps[:, None, :]  # (K, 1, 2)
        reconstruction = vae.log_likelihood(x[k:k + 1], z).mean().item()
        assert values["kl"] == pytest.approx(kl, abs=1e-5)
        assert values["reconstruction"] == pytest.approx(reconstruction, abs=1e-4)
        assert values["elbo"] == pytest.approx(reconstruction - kl, abs=1e-4)
        ellipse = values["ellipse1"]
        assert max(ellipse["x"]) == pytest.approx(float(mean[0, 0] + (0.5 * log_var[0, 0]).exp()), abs=1e-5)
        assert torch.allclose(values["recon"], vae.decode_mean(mean).double(), atol=1e-5)
        page = pad.evaluate({"x": x[k:k + 1]})
        assert page["elbo"] == pytest.approx(values["elbo"], abs=1.0)  # 8-bit weights, same draws


def test_the_description_is_json_and_carries_the_networks_compactly():
    vae = tiny_vae()
    spec = latent_explorer(vae, (8, 8), codes=torch.zeros(3, 2), labels=torch.tensor([0, 1, 1])).spec()
    text = json.dumps(spec)
    assert json.loads(text)["controls"][0]["name"] == "z1"
    weights = [e for name, e in spec["data"].items() if ".w" in name and not name.endswith(".scale")]
    assert all(e["dtype"] == "int8" and spec["data"][e["scale"]]["shape"] == e["shape"][:1] for e in weights)
    n_weights = sum(math.prod(e["shape"]) for e in weights)
    assert n_weights == sum(m.weight.numel() for m in vae.decoder if isinstance(m, nn.Linear))
    assert "encoder.w0" not in spec["data"]  # the latent explorer needs only the decoder


def test_live_widget_runs_the_full_precision_model_in_the_kernel():
    vae = tiny_vae()
    widget = latent_explorer(vae, (8, 8)).live()
    values = widget.set(z1=1.25, z2=-0.5)
    expected = vae.decode_mean(torch.tensor([[1.25, -0.5]])).double().flatten().tolist()
    assert values["image"]["d"] == pytest.approx(expected, abs=1e-5)  # float64 in the kernel, float32 in torch
    json.dumps(widget.values, allow_nan=False)  # the widget's state travels as strict JSON
    assert "out" not in widget.values  # the decoder's logits stay in the kernel
    with pytest.raises(ValueError, match="not a control"):
        widget.set(z3=0.0)


@pytest.mark.parametrize("kwargs, match", [
    ({"z_range": (1.0, -1.0)}, "z_range"), ({"n_mosaic": 1}, "n_mosaic"), ({"value_range": (3.0, 3.0)}, "value_range"),
    ({"codes": torch.zeros(3, 3)}, "codes"), ({"codes": torch.zeros(3, 2), "labels": torch.zeros(2)}, "labels"),
])
def test_latent_explorer_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        latent_explorer(tiny_vae(), (8, 8), **kwargs)


def test_explorer_rejects_bad_descriptions():
    with pytest.raises(TypeError, match="model"):
        latent_explorer(lambda z: z, (8, 8))
    with pytest.raises(ValueError, match="distinct"):
        Explorer("t", "c", (Slider("a", "a", 0, 1, 0.1, 0), Slider("a", "a", 0, 1, 0.1, 0)), (), (), "")
    with pytest.raises(ValueError, match="not controls"):
        Explorer("t", "c", (Slider("a", "a", 0, 1, 0.1, 0),), (Plane("p", "x", (0, 1), "y", (0, 1), drag=("a", "b")),),
                 (), "")
    with pytest.raises(ValueError, match="value"):
        Slider("a", "a", 0, 1, 0.1, 2.0)
    with pytest.raises(ValueError, match="categorical"):
        drawing_pad_explorer(tiny_vae("bernoulli"), torch.zeros(1, 64))
    with pytest.raises(ValueError, match="examples"):
        drawing_pad_explorer(tiny_vae(), torch.zeros(1, 63))
