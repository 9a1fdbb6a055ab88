"""What chapter 7 computes with its face VAEs: codes against factors, traversals, edits, variants and blur.

* :func:`factor_sweep` — factor vectors that vary one factor at a time (the chapter's first figure);
  :func:`closest_face` — the face whose factors are nearest to given ones;
* :func:`pixels_changed` — how many pixels each factor moves when it is redrawn: its visual weight;
* :func:`posterior_means`, :func:`latent_report`, :func:`binned_means` — μ_φ(x) of a set of faces and how each latent
  dimension relates to each true factor (correlations, mutual information, MIG, axis labels, KL per dimension; the
  mean code per bin of a factor);
* :func:`latent_slice` — a 2-D slice through a larger latent space, as a VAE with L = 2 (for the latent explorer);
* :func:`traversals`, :func:`shift_dimension`, :func:`posterior_variants` — decode one latent dimension at a time,
  move a face along one dimension, and decode draws z ~ q_φ(z|x) (seed 001's "option 2");
* :func:`fit_factor`, :func:`read_factors` — read factors back from an image by rendering candidates (the faces'
  ground truth);
* :func:`decoder_views`, :func:`neighbour_average`, :func:`gaussian_fixed_views` — why the decoder's mean is blurry:
  mean, mode and per-pixel samples of p_θ(x|z); the average of the faces encoded near z, which the mean estimates;
  the same with a fixed-σ Gaussian.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from ._checks import as_tensor, check_count, check_generator
from .disentanglement import AxisLabel, MIGResult, axis_factor_table, correlation_matrix, mutual_information_gap
from .faces import FACTOR_NAMES, FACTOR_RANGES, _check_factors, render_faces, sample_face_factors
from .models import VAE
from .networks import ConvDecoder

__all__ = [
    "DecoderViews",
    "LatentReport",
    "binned_means",
    "closest_face",
    "decoder_views",
    "factor_sweep",
    "fit_factor",
    "gaussian_fixed_views",
    "latent_report",
    "latent_slice",
    "pixels_changed",
    "neighbour_average",
    "posterior_means",
    "posterior_variants",
    "read_factors",
    "shift_dimension",
    "traversals",
]

MIDPOINTS = tuple(0.5 * (lo + hi) for lo, hi in FACTOR_RANGES)  # tilt 0°, smile 0, eyes 0.5, width 0.75


def _check_vae(model: object) -> VAE:
    if not isinstance(model, VAE):
        raise TypeError(f"model must be a vae_lib.VAE, got {type(model).__name__}")
    return model


def _factor_index(factor: object) -> int:
    if not isinstance(factor, str) or factor not in FACTOR_NAMES:
        raise ValueError(f"factor must be one of {FACTOR_NAMES}, got {factor!r}")
    return FACTOR_NAMES.index(factor)


# ---------------------------------------------------------------------------------------------------------
# the data
# ---------------------------------------------------------------------------------------------------------
def factor_sweep(n_steps: int = 7, base: Sequence[float] = MIDPOINTS) -> Tensor:
    """Factor vectors (4·n_steps, 4): block k varies factor k over its whole range, the others stay at ``base``.

    Row block k, step s: factor k = low_k + s (high_k − low_k) / (n_steps − 1). Render with
    :func:`vae_lib.faces.render_faces`.
    """
    n_steps = check_count("n_steps", n_steps, minimum=2)
    base_t = as_tensor("base", list(base), ndim=1)
    if base_t.shape != (len(FACTOR_NAMES),):
        raise ValueError(f"base must hold one value per factor {FACTOR_NAMES}, got shape {tuple(base_t.shape)}")
    blocks = []
    for k, (lo, hi) in enumerate(FACTOR_RANGES):
        block = base_t.repeat(n_steps, 1)
        block[:, k] = torch.linspace(lo, hi, n_steps)
        blocks.append(block)
    return torch.cat(blocks)


def closest_face(factors: Tensor, target: Sequence[float]) -> int:
    """The row of factors (N, 4) closest to ``target`` (4 values), each factor measured in units of its range."""
    v = as_tensor("factors", factors, ndim=2)
    t = as_tensor("target", target, ndim=1)
    if v.shape[1] != len(FACTOR_NAMES) or t.shape != (len(FACTOR_NAMES),):
        raise ValueError(f"factors (N, 4) and target (4,) must hold one value per factor {FACTOR_NAMES}")
    span = torch.tensor([hi - lo for lo, hi in FACTOR_RANGES])
    return int((((v - t) / span) ** 2).sum(1).argmin())


def pixels_changed(n: int, *, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """For each factor k: the mean number of pixels that change, and the mean squared change Σ_d (x_d − x'_d)², when
    v_k alone is redrawn from its distribution (x from v, x' from v with v_k replaced by an independent draw).

    Averaged over n random faces; returns two (4,) float64 tensors in FACTOR_NAMES order. A factor that moves many
    pixels is worth many nats to a decoder that can predict them.
    """
    n = check_count("n", n)
    check_generator(generator)
    v = sample_face_factors(n, generator=generator)  # (n, 4)
    w = sample_face_factors(n, generator=generator)  # (n, 4): independent redraws
    x = render_faces(v)  # (n, 1, 32, 32)
    counts, squares = [], []
    for k in range(len(FACTOR_NAMES)):
        u = v.clone()
        u[:, k] = w[:, k]
        diff = render_faces(u) - x
        counts.append((diff != 0).double().sum((1, 2, 3)).mean())
        squares.append(diff.double().pow(2).sum((1, 2, 3)).mean())
    return torch.stack(counts), torch.stack(squares)


# ---------------------------------------------------------------------------------------------------------
# codes against factors
# ---------------------------------------------------------------------------------------------------------
def posterior_means(model: VAE, x: Tensor) -> Tensor:
    """μ_φ(x) for every image of x (N, 1, H, W) or (N, D), in eval mode without gradients: (N, L)."""
    model = _check_vae(model).eval()
    with torch.no_grad():
        return torch.cat([model.encode(part)[0] for part in model.flatten_data(x).split(1000)])


@dataclass(frozen=True)
class LatentReport:
    """How each latent dimension z_j of a model relates to each true factor v_k, on one set of faces."""

    codes: Tensor  # (N, L) posterior means μ_φ(x)
    correlation: Tensor  # (L, F) Pearson ρ(z_j, v_k)
    mig: MIGResult  # MIG, its per-factor gaps, I(z_j; v_k) (L, F) in nats and H(v_k)
    axes: list[AxisLabel]  # the factor each dimension tracks most, with its ρ
    kl_per_dimension: Tensor  # (L,) mean KL(q_φ(z_j|x) ‖ N(0, 1)) in nats: the dimension's rate

    def dimension_for(self, factor: str) -> int:
        """The latent dimension with the largest |ρ| with ``factor``."""
        return int(self.correlation[:, _factor_index(factor)].abs().argmax())


def latent_report(model: VAE, images: Tensor, factors: Tensor, bins: int = 20) -> LatentReport:
    """Correlations, mutual information (``bins`` equal-width bins, as :mod:`vae_lib.disentanglement`), MIG, axis
    labels and the KL per dimension of ``model`` on images (N, 1, H, W) with their factors (N, 4)."""
    model = _check_vae(model).eval()
    codes = posterior_means(model, images)  # (N, L)
    with torch.no_grad():
        kl = torch.cat([model.kl_per_dimension(part) for part in model.flatten_data(images).split(1000)]).mean(0)
    return LatentReport(codes=codes, correlation=correlation_matrix(codes, factors),
                        mig=mutual_information_gap(codes, factors, bins), axes=axis_factor_table(codes, factors,
                                                                                                   FACTOR_NAMES),
                        kl_per_dimension=kl.double())


def binned_means(codes: Tensor, factor: Tensor, edges: Sequence[float]) -> Tensor:
    """The mean code of the faces whose factor value lies in each bin [edges[i], edges[i+1]): (len(edges) − 1, L).

    Shows how a code depends on a factor beyond a correlation (a non-monotone dependence, for instance). A bin
    without faces gives NaN.
    """
    z = as_tensor("codes", codes, ndim=2)
    v = as_tensor("factor", factor, ndim=1)
    if v.shape[0] != z.shape[0]:
        raise ValueError(f"codes and factor must have one row per face, got {z.shape[0]} and {v.shape[0]}")
    e = [float(x) for x in edges]
    if len(e) < 2 or any(b <= a for a, b in zip(e[:-1], e[1:], strict=True)):
        raise ValueError(f"edges must be at least two increasing values, got {edges!r}")
    rows = []
    for lo, hi in zip(e[:-1], e[1:], strict=True):
        inside = (v >= lo) & (v < hi)
        rows.append(z[inside].mean(0) if inside.any() else torch.full((z.shape[1],), float("nan")))
    return torch.stack(rows)


# ---------------------------------------------------------------------------------------------------------
# a 2-D slice of a larger latent space
# ---------------------------------------------------------------------------------------------------------
class _MarginalEncoder(nn.Module):
    """The encoder of a latent slice: q_φ(z_i, z_j | x), the two dimensions' marginal of a diagonal q (exact), with
    the means' signs flipped where asked."""

    def __init__(self, encoder: nn.Module, dims: tuple[int, int], signs: tuple[float, float], latent: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.latent = latent
        self.register_buffer("dims", torch.tensor(dims))
        self.register_buffer("signs", torch.tensor(signs, dtype=torch.float32))

    def forward(self, x: Tensor) -> Tensor:
        mean, log_var = self.encoder(x).chunk(2, dim=-1)  # (B, L) each
        return torch.cat([mean[:, self.dims] * self.signs, log_var[:, self.dims]], dim=-1)  # (B, 4)


def latent_slice(model: VAE, dims: tuple[int, int], signs: tuple[float, float] = (1.0, 1.0),
                 rest: Tensor | None = None) -> VAE:
    """The plane z = rest + s₁ u₁ e_i + s₂ u₂ e_j of a convolutional VAE's latent space, as a VAE with L = 2.

    The slice's decoder maps (u₁, u₂) to the model's decoder output at that z (its Linear head restricted to
    columns i and j, the other coordinates' contribution folded into the bias); its encoder gives the marginal of
    q_φ(z|x) on (s₁ z_i, s₂ z_j), exact for a diagonal Gaussian. ``signs`` ±1 flip an axis (neither the prior nor
    the ELBO notices), ``rest`` (L,) fixes the other coordinates (default 0, the prior's mean). Eval mode.
    """
    model = _check_vae(model)
    decoder = model.decoder
    if not isinstance(decoder, ConvDecoder):
        raise TypeError(f"model must have a ConvDecoder (chapter 7's networks), got {type(decoder).__name__}")
    latent = model.config.latent_dim
    if (not isinstance(dims, (tuple, list)) or len(dims) != 2 or len(set(dims)) != 2
            or not all(isinstance(d, int) and 0 <= d < latent for d in dims)):
        raise ValueError(f"dims must be two different latent dimensions in 0 … {latent - 1}, got {dims!r}")
    if not (isinstance(signs, (tuple, list)) and len(signs) == 2 and all(s in (1, -1) for s in signs)):
        raise ValueError(f"signs must be a pair of +1/−1, got {signs!r}")
    z_rest = torch.zeros(latent) if rest is None else as_tensor("rest", rest, ndim=1).clone()
    if z_rest.shape != (latent,):
        raise ValueError(f"rest must have shape ({latent},), got {tuple(z_rest.shape)}")
    z_rest[list(dims)] = 0.0
    sliced = ConvDecoder(replace(decoder.config, latent_dim=2))
    state = {k: v.clone() for k, v in decoder.state_dict().items()}
    weight = state["head.weight"]  # (M, L)
    state["head.bias"] = state["head.bias"] + weight @ z_rest
    state["head.weight"] = weight[:, list(dims)] * torch.tensor(signs, dtype=weight.dtype)
    sliced.load_state_dict(state)
    config = replace(model.config, latent_dim=2)
    encoder = _MarginalEncoder(model.encoder, tuple(dims), tuple(float(s) for s in signs), latent)
    return VAE(config, encoder, sliced).eval()


# ---------------------------------------------------------------------------------------------------------
# traversals, edits, variants
# ---------------------------------------------------------------------------------------------------------
def _decode(model: VAE, z: Tensor) -> Tensor:
    with torch.no_grad():
        return model.decode_mean(z)


def traversals(model: VAE, x: Tensor, values: Sequence[float]) -> Tensor:
    """E[x|z] along each latent dimension through μ_φ(x) of one image x: (L, len(values), D).

    Row j sets z_j to each of ``values`` and keeps every other coordinate at μ_φ(x).
    """
    model = _check_vae(model).eval()
    mean = posterior_means(model, model.flatten_data(x)[:1])[0]  # (L,)
    vals = torch.as_tensor([float(v) for v in values])  # (V,)
    latent = mean.shape[0]
    z = mean.repeat(latent, len(vals), 1)  # (L, V, L)
    for j in range(latent):
        z[j, :, j] = vals
    return _decode(model, z)


def shift_dimension(model: VAE, x: Tensor, dim: int, shifts: Sequence[float]) -> Tensor:
    """E[x | z = μ_φ(x) + δ e_dim] for each δ in ``shifts``, for each image of x (B, …): (B, len(shifts), D)."""
    model = _check_vae(model).eval()
    mean = posterior_means(model, x)  # (B, L)
    if not (isinstance(dim, int) and 0 <= dim < mean.shape[1]):
        raise ValueError(f"dim must be a latent dimension in 0 … {mean.shape[1] - 1}, got {dim!r}")
    deltas = torch.as_tensor([float(s) for s in shifts])  # (S,)
    z = mean[:, None, :].repeat(1, len(deltas), 1)  # (B, S, L)
    z[:, :, dim] += deltas
    return _decode(model, z)


def posterior_variants(model: VAE, x: Tensor, n: int, *, generator: torch.Generator) -> Tensor:
    """E[x|z] for n draws z ~ q_φ(z|x) of one image x (seed 001's generation "option 2"): (n, D)."""
    model = _check_vae(model).eval()
    n = check_count("n", n)
    check_generator(generator)
    with torch.no_grad():
        mean, log_var = model.encode(model.flatten_data(x)[:1])  # (1, L) each
        z = mean + torch.exp(0.5 * log_var) * torch.randn(n, mean.shape[1], generator=generator)  # (n, L)
    return _decode(model, z)


def fit_factor(images: Tensor, factors: Tensor, factor: str, n_grid: int = 141) -> Tensor:
    """Read factor ``factor`` back from each image: the grid value g that minimises ‖render(v with v_k = g) − x‖².

    images (B, 1, 32, 32) or (B, 1024) in pixel levels (e.g. decoded means), factors (B, 4) the other factors to
    render with (the original face's); the grid has ``n_grid`` equally spaced values over the factor's range.
    Returns (B,). The renderer is the ground truth here: no model is involved in the reading.
    """
    k = _factor_index(factor)
    v = _check_factors(factors)
    x = _rows("images", as_tensor("images", images, min_ndim=2), v.shape[0], "factors")  # (B, D)
    n_grid = check_count("n_grid", n_grid, minimum=2)
    grid = torch.linspace(*FACTOR_RANGES[k], n_grid)  # (G,)
    candidates = v[:, None, :].repeat(1, n_grid, 1)  # (B, G, 4)
    candidates[:, :, k] = grid
    rendered = render_faces(candidates.reshape(-1, 4)).reshape(v.shape[0], n_grid, -1)  # (B, G, D)
    error = (rendered - x[:, None, :]).pow(2).sum(-1)  # (B, G)
    return grid[error.argmin(1)]


def _rows(name: str, t: Tensor, n: int, other: str) -> Tensor:
    """``t`` (n, ...) flattened to (n, D), with one row per row of the argument ``other``."""
    if t.shape[0] != n or t[0].numel() == 0:
        raise ValueError(f"{name} (shape {tuple(t.shape)}) must hold one non-empty image per row of {other} ({n})")
    return t.reshape(n, -1)


def read_factors(images: Tensor, start: Tensor, n_grid: int = 71) -> Tensor:
    """All four factors read back from each image: one sweep of :func:`fit_factor` over smile, tilt, eyes and width
    (in that order), each fitted with the others at their latest estimates, starting from ``start`` (B, 4) (e.g.
    the original face's factors when the images are edits of it). Returns (B, 4) in FACTOR_NAMES order."""
    v = _check_factors(start, "start").clone()
    _rows("images", as_tensor("images", images, min_ndim=2), v.shape[0], "start")
    for name in ("smile", "tilt", "eyes", "width"):
        v[:, _factor_index(name)] = fit_factor(images, v, name, n_grid)
    return v


# ---------------------------------------------------------------------------------------------------------
# blur
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DecoderViews:
    """Four summaries of a categorical p_θ(x|z) = Π_d Cat(x_d; softmax ℓ_d(z)) at each z, each (B, D) in levels."""

    mean: Tensor  # E[x_d | z] = Σ_l l p_dl: what the phase diagrams show
    mode: Tensor  # argmax_l p_dl per pixel
    sample: Tensor  # one draw x_d ~ p_θ(x_d | z), independently per pixel
    std: Tensor  # the per-pixel standard deviation of p_θ(x_d | z)


def decoder_views(model: VAE, z: Tensor, *, generator: torch.Generator) -> DecoderViews:
    """Mean, per-pixel mode, one per-pixel sample and per-pixel standard deviation of a categorical p_θ(x|z) for
    z (B, L)."""
    model = _check_vae(model).eval()
    c = model.config
    if c.likelihood != "categorical":
        raise ValueError(f"decoder_views needs a categorical decoder, got {c.likelihood!r}")
    check_generator(generator)
    z = as_tensor("z", z, ndim=2)
    with torch.no_grad():
        probs = torch.softmax(model._decoder_out(z).unflatten(-1, (c.data_dim, c.n_levels)), -1)  # (B, D, n)
    levels = torch.arange(c.n_levels, dtype=probs.dtype)
    mean = probs @ levels
    std = (probs @ levels**2 - mean**2).clamp_min(0).sqrt()
    sample = torch.multinomial(probs.reshape(-1, c.n_levels), 1, generator=generator).reshape(mean.shape)
    return DecoderViews(mean=mean, mode=probs.argmax(-1).to(mean.dtype), sample=sample.to(mean.dtype), std=std)


def neighbour_average(codes: Tensor, images: Tensor, z: Tensor, k: int = 25) -> Tensor:
    """The average of the k faces whose codes (e.g. posterior means μ_φ(x_n)) are nearest to each z: (B, D).

    An estimate from the data of what a decoder's mean E[x | z] should draw. With the encoder fixed, the categorical
    decoder that maximises E_{p_data(x)} E_{q_φ(z|x)} log p_θ(x|z) gives each pixel the distribution of x_d among the
    faces whose posteriors cover z, so its mean is their average; the faces encoded near z stand in for them.
    codes (N, L), images (N, …) with N ≥ k, z (B, L).
    """
    c = as_tensor("codes", codes, ndim=2, nonempty=True)
    x = _rows("images", as_tensor("images", images, min_ndim=2), c.shape[0], "codes")  # (N, D)
    z = as_tensor("z", z, ndim=2)
    k = check_count("k", k)
    if k > c.shape[0]:
        raise ValueError(f"k must be at most the number of faces ({c.shape[0]}), got {k}")
    nearest = torch.cdist(z, c).topk(k, largest=False).indices  # (B, k)
    return x[nearest].mean(1)


def gaussian_fixed_views(mean: Tensor, sigma: float, *, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """A Gaussian p(x|z) = N(mean, σ² I) with fixed σ: its mean (the same as given: the blur does not change) and one
    sample mean + σ ε, ε ~ N(0, I), independent per pixel. Returns (mean, sample), each mean's shape."""
    mean = as_tensor("mean", mean)
    if not (isinstance(sigma, (int, float)) and sigma > 0):
        raise ValueError(f"sigma must be a positive number, got {sigma!r}")
    check_generator(generator)
    return mean, mean + sigma * torch.randn(mean.shape, generator=generator)
