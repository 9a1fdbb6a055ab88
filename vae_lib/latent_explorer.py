"""The latent explorer and the drawing pad: two instances of the one explorer design (:mod:`vae_lib.explorer`).

* :func:`latent_explorer` — seed 001's "phase diagram": the decoded outputs E[x|z] tiled over a grid of (z₁, z₂),
  a marker at the current z (drag it anywhere, or use the sliders or the arrow keys) and the decoded output at that
  exact z. The page runs the decoder itself (every chapter from 1 on); a decoder that is not a small MLP (chapter 7's
  convolutional one) is drawn from a fine precomputed grid, interpolated between its points.
* :func:`drawing_pad_explorer` — "encode your own drawing" (the digits chapters): as the reader draws, the encoder
  gives q_φ(z|x) (its 1σ and 2σ ellipses on the phase diagram), the decoder the reconstruction at μ, and the readout
  the ELBO L(θ, φ; x) = E_q[log p_θ(x|z)] − KL(q_φ(z|x) ‖ p(z)) in nats, its reconstruction term estimated with
  K fixed draws ε_k (the same in the page and in Python).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ._checks import as_tensor, check_count
from .explorer import (
    MLP,
    Background,
    Bilinear,
    CategoricalLogLikelihood,
    ConvNet,
    Curve,
    Difference,
    Ellipse,
    Explorer,
    Head,
    ImagePanel,
    KLStdNormal,
    Marker,
    NearestCode,
    Op,
    Pad,
    Plane,
    Points,
    Reparameterize,
    Slider,
    Split,
    Stack,
    as_points,
    decode_grid,
    mosaic,
)
from .figures import DIGIT_COLOURS, OKABE_ITO

__all__ = ["decoder_ops", "drawing_pad_explorer", "latent_explorer"]

READOUT = "z = ({z1:.2f}, {z2:.2f})"


def _is_mlp(network: object) -> bool:
    if not isinstance(network, nn.Sequential) or len(network) == 0:
        return False
    layers = list(network)
    return (all(isinstance(m, nn.Linear) for m in layers[::2]) and all(isinstance(m, nn.SiLU) for m in layers[1::2])
            and isinstance(layers[-1], nn.Linear))


def _decode_function(model: nn.Module) -> Callable[[Tensor], Tensor]:
    """E[x|z] as the chapters draw it: the VQ-VAE quantises z first (its map is constant on each Voronoi cell)."""
    if hasattr(model, "decode_quantised"):
        return model.decode_quantised
    if hasattr(model, "decode_mean"):
        return model.decode_mean
    raise TypeError(f"model must have decode_mean (a VAE or an autoencoder) or decode_quantised (a VQ-VAE), "
                    f"got {type(model).__name__}")


def decoder_ops(model: nn.Module, z: str, output: str) -> list[Op] | None:
    """The program that maps the value ``z`` (1, L) to E[x|z] (1, D) in the page: an MLP decoder (chapters 1–6), a
    VQ-VAE's quantiser and decoder (chapter 6) or a convolutional decoder (chapter 7); None for any other network
    (the explorer then interpolates a precomputed grid)."""
    from .networks import ConvDecoder

    decoder = getattr(model, "decoder", None)
    config = getattr(model, "config", None)
    if config is None or not (_is_mlp(decoder) or isinstance(decoder, ConvDecoder)):
        return None
    data_dim = int(getattr(config, "data_dim", 0))
    if hasattr(model, "codebook"):  # VQ-VAE: nearest code, then the categorical decoder
        if not _is_mlp(decoder):
            return None
        return [NearestCode(model.codebook.detach(), z, z + "_q"), MLP(decoder, z + "_q", "out", "decoder"),
                Head("categorical", "out", output, data_dim, levels=config.n_levels)]
    network: Op = MLP(decoder, z, "out", "decoder") if _is_mlp(decoder) else ConvNet(decoder, z, "out", "decoder")
    likelihood = getattr(config, "likelihood", None)
    if likelihood is None:  # the autoencoder: g_θ(z) · x_scale
        head = Head("linear", "out", output, data_dim, scale=config.x_scale)
    elif likelihood == "categorical":
        head = Head("categorical", "out", output, data_dim, levels=config.n_levels)
    elif likelihood == "bernoulli":
        head = Head("sigmoid", "out", output, data_dim, scale=config.x_scale)
    else:  # gaussian (the D means first) or gaussian_fixed
        head = Head("linear", "out", output, data_dim, scale=config.x_scale)
    return [network, head]


def _plane(grid_images, z_range: tuple[float, float], value_range: tuple[float, float], colormap: str,
           layers: tuple, drag: tuple[str, str] | None) -> Plane:
    _, _, h, w = grid_images.images.shape
    step = float(grid_images.z1[1] - grid_images.z1[0])
    tiles = mosaic(grid_images, gap=1)  # (rows, cols), row 0 at the bottom
    # one pixel gap per tile: the pixel pitch is step / (W + 1) and tile i's centre column sits at z1[i]
    x0 = float(grid_images.z1[0]) - (w / 2) * step / (w + 1)
    y0 = float(grid_images.z2[0]) - (h / 2) * step / (h + 1)
    extent = (x0, x0 + tiles.shape[1] * step / (w + 1), y0, y0 + tiles.shape[0] * step / (h + 1))
    lo, hi = z_range
    pad = 0.5 * step
    return Plane("phase diagram: E[x | z] over (z₁, z₂)", "z₁", (lo - pad, hi + pad), "z₂", (lo - pad, hi + pad),
                 background=Background(extent, value_range, values=tiles, colormap=colormap), layers=layers, drag=drag)


def _code_points(codes: Tensor | None, labels: Tensor | None, codebook: Tensor | None) -> tuple:
    layers = []
    if codes is not None:
        z = as_points("codes", codes)
        lab = torch.as_tensor(labels) if labels is not None else torch.zeros(len(z), dtype=torch.long)
        if lab.shape != (z.shape[0],):
            raise ValueError(f"labels must have one entry per row of codes ({z.shape[0]}), "
                             f"got shape {tuple(lab.shape)}")
        groups = tuple((f"{int(d)}", DIGIT_COLOURS[int(d) % 10], z[lab == d, 0], z[lab == d, 1])
                       for d in torch.unique(lab))
        layers.append(Points(groups))
    if codebook is not None:
        c = as_points("codebook", codebook.detach())
        layers.append(Points((("codes e_j", OKABE_ITO[4], c[:, 0], c[:, 1]),)))
    return tuple(layers)


def latent_explorer(model: nn.Module, image_shape: tuple[int, int], *, z_range: tuple[float, float] = (-3.0, 3.0),
                    n_mosaic: int = 11, n_grid: int = 41, value_range: tuple[float, float] = (0.0, 16.0),
                    start: tuple[float, float] = (0.0, 0.0), codes: Tensor | None = None,
                    labels: Tensor | None = None, codebook: Tensor | None = None, colormap: str = "greys",
                    axis_titles: tuple[str, str] = ("z₁", "z₂"),
                    title: str = "Latent explorer", caption: str = "") -> Explorer:
    """The latent explorer of a model with a 2-D latent (a VAE, an autoencoder or a VQ-VAE).

    The phase diagram tiles ``n_mosaic`` × ``n_mosaic`` decoded outputs over ``z_range``²; ``codes`` (N, 2) with
    their ``labels`` (e.g. the encoded test set) and a VQ-VAE's ``codebook`` are drawn over it. The decoded panel
    shows E[x|z] at the current z: run in the page for an MLP decoder, else interpolated on an ``n_grid`` × ``n_grid``
    grid. ``image_shape`` is (H, W) of one output.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch module (a VAE, an autoencoder or a VQ-VAE), got {type(model).__name__}")
    if len(image_shape) != 2:
        raise ValueError(f"image_shape must be (height, width), got {image_shape}")
    h, w = int(image_shape[0]), int(image_shape[1])
    check_count("n_mosaic", n_mosaic, minimum=2)
    check_count("n_grid", n_grid, minimum=2)
    lo, hi = float(z_range[0]), float(z_range[1])
    if not lo < hi:
        raise ValueError(f"z_range must be (low, high) with low < high, got {z_range}")
    if not float(value_range[0]) < float(value_range[1]):
        raise ValueError(f"value_range must be (low, high) with low < high, got {value_range}")
    decode = _decode_function(model)
    model.eval()
    tiles = decode_grid(decode, (h, w), (lo, hi), n_mosaic)
    program: list[Op] = [Stack(("z1", "z2"), "z")]
    network = decoder_ops(model, "z", "image")
    if network is None:
        fine = decode_grid(decode, (h, w), (lo, hi), n_grid)
        program = [Bilinear(fine.images.flatten(-2), (lo, hi), (lo, hi), ("z1", "z2"), "image", value_range)]
    else:
        program += network
    step = round((hi - lo) / 200, 4)
    sliders = (Slider("z1", axis_titles[0], lo, hi, step, float(start[0])),
               Slider("z2", axis_titles[1], lo, hi, step, float(start[1])))
    layers = (*_code_points(codes, labels, codebook), Marker("z1", "z2"))
    plane = _plane(tiles, (lo, hi), value_range, colormap, layers, ("z1", "z2"))
    plane = Plane(plane.title, axis_titles[0], plane.x_range, axis_titles[1], plane.y_range, plane.background,
                  plane.layers, plane.drag)
    decoded = ImagePanel("decoded output E[x | z] at the current z", "image", h, w, value_range, colormap)
    caption = caption or (f"{title}. Drag on the phase diagram, use the sliders, or focus the diagram and press the "
                          "arrow keys (Shift for larger steps): the right panel decodes that exact z.")
    return Explorer(title, caption, sliders, (plane, decoded), tuple(program), READOUT)


def drawing_pad_explorer(vae: nn.Module, examples: Tensor, *, z_range: tuple[float, float] = (-3.0, 3.0),
                         n_mosaic: int = 11, n_samples: int = 16, codes: Tensor | None = None,
                         labels: Tensor | None = None, seed: int = 0,
                         title: str = "Encode your own drawing") -> Explorer:
    """Draw a digit; see q_φ(z|x), the reconstruction and the ELBO with its two terms, live (digits chapters).

    ``vae`` is a 2-D-latent VAE with MLP networks and a categorical decoder over integer levels; ``examples`` (E, D)
    are digits the "load a test digit" button cycles through. E_q[log p_θ(x|z)] is estimated with ``n_samples``
    fixed draws ε_k ~ N(0, I) (drawn once from ``seed``); the KL is exact.
    """
    c = getattr(vae, "config", None)
    if c is None or getattr(c, "likelihood", None) != "categorical" or c.latent_dim != 2:
        raise ValueError("vae must be a VAE with a 2-D latent and a categorical decoder (likelihood='categorical')")
    if not (_is_mlp(vae.encoder) and _is_mlp(vae.decoder)):
        raise ValueError("vae must have MLP encoder and decoder networks (the page runs them)")
    examples = as_tensor("examples", examples, ndim=2)
    if examples.shape[1] != c.data_dim or examples.shape[0] < 1:
        raise ValueError(f"examples must have shape (E, {c.data_dim}) with E >= 1, got {tuple(examples.shape)}")
    n_samples = check_count("n_samples", n_samples)
    side = int(round(c.data_dim**0.5))
    if side * side != c.data_dim:
        raise ValueError(f"the VAE's data must be square images, got data_dim {c.data_dim}")
    vae.eval()
    lo, hi = float(z_range[0]), float(z_range[1])
    levels = c.n_levels - 1
    eps = torch.randn(n_samples, 2, generator=torch.Generator().manual_seed(seed))  # (K, L)
    program: list[Op] = [
        MLP(vae.encoder, "x", "enc", "encoder", scale=c.x_scale), Split("enc", ("mu", "log_var")),
        Split("mu", ("mu1", "mu2")),
        Ellipse("mu", "log_var", 1.0, "ellipse1"), Ellipse("mu", "log_var", 2.0, "ellipse2"),
        KLStdNormal("mu", "log_var", "kl"), Reparameterize(eps, "mu", "log_var", "zs"),
        MLP(vae.decoder, "zs", "logits", "decoder"),
        CategoricalLogLikelihood("x", "logits", c.n_levels, "reconstruction"),
        Difference(("reconstruction", "kl"), "elbo"),
        MLP(vae.decoder, "mu", "out_mu", "decoder"), Head("categorical", "out_mu", "recon", c.data_dim, c.n_levels)]
    tiles = decode_grid(vae.decode_mean, (side, side), (lo, hi), n_mosaic)
    layers = (*_code_points(codes, labels, None),
              Curve("ellipse1", OKABE_ITO[5], "q(z|x): 1σ ellipse", width=3),
              Curve("ellipse2", OKABE_ITO[5], "2σ ellipse", dash="6 4"),
              Marker("mu1", "mu2"))
    plane = _plane(tiles, (lo, hi), (0.0, float(levels)), "greys", layers, None)
    start = tuple(float(v) for v in examples[0])
    pad = Pad("x", f"your drawing x ({side}×{side} pixels, levels 0–{levels})", side, side, levels, start,
              tuple(tuple(float(v) for v in e) for e in examples))
    recon = ImagePanel("reconstruction E[x | z = μ]", "recon", side, side, (0.0, float(levels)))
    readout = ("E_q[log p(x|z)] = {reconstruction:.2f}   KL(q ‖ p(z)) = {kl:.2f}   ELBO = {elbo:.2f} nats"
               f"   (K = {n_samples} fixed draws)\n" "q(z|x): μ = ({mu1:.2f}, {mu2:.2f})")
    caption = (f"{title}: draw on the pad with a mouse, pen or finger (or load a test digit, add noise, clear). The "
               "encoder's q(z|x) appears as an ellipse on the phase diagram; the readout gives the ELBO's two terms.")
    return Explorer(title, caption, (pad,), (plane, recon), tuple(program), readout)

