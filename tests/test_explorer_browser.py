"""The explorer runtime in Chromium against Python, explorer by explorer (no book build needed).

Each explorer's static HTML (``Explorer.html()``, the runtime inline, as a notebook output carries it) is opened in
headless Chromium (``tests/browsers.py`` finds it); the page runs the explorer's program itself (its networks in
float32). Its values must equal Python's run of the same program on the same (int8) weights (:meth:`Explorer.evaluate`)
for the latent explorers of an MLP VAE, an autoencoder, a VQ-VAE and a convolutional VAE, and for the drawing pad; the
full-precision model is within the quantisation error of both.
"""

from __future__ import annotations

import json

import pytest
import torch

import vae_lib
from vae_lib.latent_explorer import drawing_pad_explorer, latent_explorer
from vae_lib.networks import conv_networks

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def page(browser):
    pg = browser.new_page(viewport={"width": 1000, "height": 900})
    pg.errors = []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" else None)
    yield pg
    pg.close()


def show(page, explorer, tmp_path) -> None:
    path = tmp_path / "index.html"
    path.write_text(f'<html><head><meta charset="utf-8"></head><body>{explorer.html()}</body></html>', "utf-8")
    page.goto(path.as_uri())
    page.wait_for_function("() => document.querySelector('.vae-explorer-host').explorer")


def page_values(page, state: dict, names: list[str]) -> dict:
    return page.evaluate("""([state, names]) => {
        const e = document.querySelector('.vae-explorer-host').explorer;
        e.setMany(Object.entries(state).map(([k, v]) => [k, Array.isArray(v) ? {rows: 1, cols: v.length,
                                                                         d: Float64Array.from(v)} : v]));
        const v = e.values(), out = {};
        for (const k of names) { const x = v[k]; out[k] = x && x.d ? Array.from(x.d) : x; }
        return out; }""", [state, names])


def flat(value) -> list[float]:
    return torch.as_tensor(value, dtype=torch.float64).flatten().tolist()


def models() -> dict:
    vae = vae_lib.VAE(vae_lib.VAEConfig(latent_dim=2, hidden=(32, 32)))
    ae = vae_lib.Autoencoder(vae_lib.AEConfig(latent_dim=2, hidden=(32,)))
    vq = vae_lib.VQVAE(vae_lib.VQVAEConfig(code_dim=2, n_codes=6, hidden=(32,)))
    # 5, 6 and 7 feature maps: the runtime's convolutions sum four output maps at a time, so these sizes exercise
    # both the blocks and the remainders
    cfg = vae_lib.VAEConfig(data_shape=(1, 16, 16), latent_dim=2, n_levels=7, x_scale=6.0)
    conv = vae_lib.VAE(cfg, *conv_networks(cfg, channels=(5, 6)))
    for m in conv.decoder.modules():  # BatchNorm statistics away from (0, 1), so that folding them is exercised
        if isinstance(m, torch.nn.BatchNorm2d):
            g = torch.Generator().manual_seed(m.num_features)
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
    conv.eval()
    return {"mlp": (vae, (8, 8)), "autoencoder": (ae, (8, 8)), "vq": (vq, (8, 8)), "conv": (conv, (16, 16))}


@pytest.mark.parametrize("kind", ["mlp", "autoencoder", "vq", "conv"])
def test_the_page_decodes_what_python_decodes(page, tmp_path, kind):
    model, shape = models()[kind]
    explorer = latent_explorer(model, shape, value_range=(0.0, 16.0 if kind != "conv" else 6.0),
                               codebook=getattr(model, "codebook", None))
    show(page, explorer, tmp_path)
    for z1, z2 in ((0.0, 0.0), (1.37, -2.11), (-2.9, 0.44)):
        got = page_values(page, {"z1": z1, "z2": z2}, ["image"])["image"]
        python = flat(explorer.evaluate({"z1": z1, "z2": z2})["image"])
        exact = flat(explorer.evaluate({"z1": z1, "z2": z2}, exact=True)["image"])
        assert got == pytest.approx(python, abs=1e-4), "the page and Python run the same weights differently"
        assert got == pytest.approx(exact, abs=0.1), "the page's int8 weights are too far from the model"
    assert page.errors == []


def test_the_drawing_pad_computes_pythons_elbo(page, tmp_path):
    vae = vae_lib.VAE(vae_lib.VAEConfig(latent_dim=2, hidden=(32, 32)))
    x = torch.randint(0, 17, (2, 64)).float()
    pad = drawing_pad_explorer(vae, x, n_samples=8)
    show(page, pad, tmp_path)
    for row in x:
        names = ["kl", "reconstruction", "elbo", "mu", "log_var", "recon"]
        got = page_values(page, {"x": row.tolist()}, names)
        python = pad.evaluate({"x": row[None]})
        for name in ("kl", "reconstruction", "elbo"):
            assert got[name] == pytest.approx(python[name], abs=1e-4), name
        for name in ("mu", "log_var", "recon"):
            assert got[name] == pytest.approx(flat(python[name]), abs=1e-4), name
    readout = page.evaluate("() => document.querySelector('[aria-live]').textContent")
    assert f"ELBO = {got['elbo']:.2f}".replace("-", "\u2212") in readout
    assert json.loads(page.evaluate("() => document.querySelector('.vae-explorer').dataset.values"))["kl"] == \
        pytest.approx(got["kl"])
    assert page.errors == []


def test_a_move_lays_out_only_the_explorer(page, tmp_path):
    """Moving z must not lay out the page around the explorer (on chapter 7's page, 26,000 layout objects).

    Chrome's trace names the root of every layout pass: the explorer's sliders, their values, its plot and its
    readout are size-contained, so a move's layouts start there. A slider or value that changes size, or one that
    is a flex item (which Chrome never takes as a layout root), makes the root the document again.
    """
    model, shape = models()["mlp"]
    explorer = latent_explorer(model, shape, value_range=(0.0, 16.0))
    filler = "".join(f"<p>paragraph {i} of the page around the explorer</p>" for i in range(2000))
    path = tmp_path / "long.html"
    path.write_text(f'<html><head><meta charset="utf-8"></head><body>{filler[:len(filler) // 2]}{explorer.html()}'
                    f'{filler[len(filler) // 2:]}</body></html>', "utf-8")
    page.goto(path.as_uri())
    page.wait_for_function("() => document.querySelector('.vae-explorer-host').explorer")
    page.evaluate("() => document.querySelector('.vae-explorer-host').scrollIntoView({block: 'center'})")
    browser = page.context.browser
    browser.start_tracing(page=page, categories=["devtools.timeline", "disabled-by-default-devtools.timeline"])
    for z1, z2 in ((0.3, -0.2), (-1.7, 2.25), (2.9, 0.05)):  # values of different widths: "-1.70", "0.30"
        page.evaluate("""([z1, z2]) => new Promise(done => requestAnimationFrame(() => {
            document.querySelector('.vae-explorer-host').explorer.setMany([['z1', z1], ['z2', z2]]);
            requestAnimationFrame(() => setTimeout(done));
        }))""", [z1, z2])
    trace = json.loads(browser.stop_tracing())
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    layouts = [e["args"] for e in events if e.get("name") == "Layout" and e.get("ph") == "X"]
    assert len(layouts) >= 3, "each move should lay out the explorer's changed parts"
    roots = {r["nodeName"].split(" ")[0] for a in layouts for r in a["endData"]["layoutRoots"]}
    assert roots.isdisjoint({"#document", "HTML", "BODY", "FIGURE", "DIV", "LABEL"}), roots
    assert max(a["beginData"]["totalObjects"] for a in layouts) < 200, layouts
    assert page.errors == []
