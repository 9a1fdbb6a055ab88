"""Cartoon faces rendered from four known generating factors (chapter 7, "Faces whose factors we know").

Nothing is downloaded: :func:`render_faces` draws every image from its factor vector v = (tilt, smile, eyes, width),
so chapter 7 can ask how much each latent dimension of a trained VAE tells about each true factor v_k
(:mod:`vae_lib.disentanglement`).

The factors, in :data:`FACTOR_NAMES` order, each uniform over its closed range in :data:`FACTOR_RANGES`:

* ``tilt`` ∈ [−35, 35] DEGREES — in-plane rotation of the whole face about the image centre; positive tilt turns the
  face counter-clockwise as a person sees the image (the top of the head leans to the viewer's left);
* ``smile`` ∈ [−1, 1] — mouth curvature: −1 a frown (corners down), 0 a straight mouth, +1 a smile (corners up);
* ``eyes`` ∈ [0, 1] — eye openness: 0 closed (a thin line), 1 wide open;
* ``width`` ∈ [0.625, 0.875] — the head ellipse's horizontal half-axis in face units (a nuisance factor).

Geometry, in face units: the image spans [−1, 1]² with x to the right and y UP (row 0 of the image is the top,
y = +1), so a pixel is w = 2/size wide. Each pixel centre (x, y) is first mapped into the face's own frame
(x', y') = R(−tilt)(x, y), which tilts everything drawn there by +tilt. In that frame:

* head: the ellipse (x'/width)² + (y'/HEAD_HALF_HEIGHT)² ≤ 1, light (HEAD_LEVEL) on a dark background;
* eyes: two ellipses centred at (±EYE_X, EYE_Y), half-width EYE_HALF_WIDTH and half-height
  h(eyes) = EYE_HALF_HEIGHT_CLOSED + eyes · (EYE_HALF_HEIGHT_OPEN − EYE_HALF_HEIGHT_CLOSED), dark (FEATURE_LEVEL);
* mouth: a thick parabolic arc y' = g(x') = MOUTH_Y + c (x'² − MOUTH_HALF_WIDTH²/2), |x'| ≤ MOUTH_HALF_WIDTH, with
  c = MOUTH_CURVATURE · smile and half-thickness MOUTH_HALF_THICKNESS: the corners sit c·MOUTH_HALF_WIDTH²/2 above
  MOUTH_Y and the middle as far below it, so smile > 0 lifts the corners (y points up);

Edges are anti-aliased: a shape covers a pixel by clamp(½ − d/w, 0, 1), d the signed distance from the pixel centre
to the shape's outline (negative inside), so coverage is exactly 0 beyond w/2 outside and exactly 1 beyond w/2
inside. Intensities are painted in layers (background, head, then eyes and mouth) and rounded to the integer levels
0 … FACE_LEVELS − 1, so a categorical decoder over FACE_LEVELS levels gives probabilities of the stored image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import Tensor

from ._checks import as_tensor, check_count, check_generator, check_last_dim

__all__ = [
    "FACE_LEVELS",
    "FACE_SIZE",
    "FACTOR_NAMES",
    "FACTOR_RANGES",
    "Faces",
    "FacesSplit",
    "load_faces_split",
    "make_faces",
    "render_faces",
    "sample_face_factors",
]

FACTOR_NAMES = ("tilt", "smile", "eyes", "width")
# closed ranges (low, high) in FACTOR_NAMES order: degrees, curvature, openness, face units (float32-exact bounds)
FACTOR_RANGES = ((-35.0, 35.0), (-1.0, 1.0), (0.0, 1.0), (0.625, 0.875))
FACE_LEVELS = 16  # pixel values 0, 1, …, 15
FACE_SIZE = 32  # default image side in pixels

BACKGROUND_LEVEL = 0.0
HEAD_LEVEL = 15.0
FEATURE_LEVEL = 2.0  # eyes and mouth

HEAD_HALF_HEIGHT = 0.875
EYE_X = 0.28
EYE_Y = 0.22
EYE_HALF_WIDTH = 0.13
EYE_HALF_HEIGHT_CLOSED = 0.045
EYE_HALF_HEIGHT_OPEN = 0.16
MOUTH_Y = -0.36
MOUTH_HALF_WIDTH = 0.3
MOUTH_HALF_THICKNESS = 0.055
MOUTH_CURVATURE = 2.4

_CHUNK = 512  # faces rendered at once: about 20 float64 temporaries of (512, 32, 32), ~85 MB at size 32


@dataclass(frozen=True)
class Faces:
    """Rendered faces and the factors that generated them (chapter 7)."""

    images: Tensor  # (N, 1, H, W) float32 integer levels 0 … FACE_LEVELS − 1
    factors: Tensor  # (N, 4) float32, columns in FACTOR_NAMES order


@dataclass(frozen=True)
class FacesSplit:
    """The book's fixed train/test faces (:func:`load_faces_split`)."""

    train: Faces  # 10,000 faces
    test: Faces  # 2,000 faces


def sample_face_factors(n: int, *, generator: torch.Generator) -> Tensor:
    """n factor vectors v with independent components v_k ~ Uniform(FACTOR_RANGES[k]), shape (n, 4) float32."""
    n = check_count("n", n)
    check_generator(generator)
    low, high = torch.tensor(FACTOR_RANGES, dtype=torch.float32).T  # (4,), (4,)
    u = torch.rand(n, len(FACTOR_NAMES), generator=generator)  # (n, 4) in [0, 1)
    return low + (high - low) * u  # (n, 4)


def render_faces(factors: Tensor, *, size: int = FACE_SIZE) -> Tensor:
    """The face of each factor row v = (tilt°, smile, eyes, width), shape (N, 1, size, size), float32 levels 0…15.

    Vectorised over faces and pixels (in chunks of 512 faces to bound memory), computed in float64 and rounded to
    integers; every pixel depends only on its own face's factors, so a face renders the same in any batch.
    """
    v = _check_factors(factors).to(torch.float64)  # (N, 4)
    size = check_count("size", size, minimum=8)
    x, y = _pixel_centres(size)  # (size, size) each
    chunks = [_render_chunk(part, x, y, 2.0 / size).to(torch.float32) for part in v.split(_CHUNK)]  # (n_i, S, S)
    return torch.cat(chunks).unsqueeze(1)  # (N, 1, size, size)


def make_faces(n: int, *, generator: torch.Generator, size: int = FACE_SIZE) -> Faces:
    """n faces with random factors: :func:`sample_face_factors`, then :func:`render_faces`."""
    factors = sample_face_factors(n, generator=generator)  # (n, 4)
    return Faces(images=render_faces(factors, size=size), factors=factors)


@lru_cache(maxsize=1)
def load_faces_split() -> FacesSplit:
    """Chapter 7's fixed data set: 10,000 training faces (seed 7) and 2,000 test faces (seed 8), 32×32 pixels."""
    train = make_faces(10_000, generator=torch.Generator().manual_seed(7))
    test = make_faces(2_000, generator=torch.Generator().manual_seed(8))
    return FacesSplit(train=train, test=test)


# ---------------------------------------------------------------------------------------------------------
# checks and drawing
# ---------------------------------------------------------------------------------------------------------
def _check_factors(factors: object, name: str = "factors") -> Tensor:
    """factors as an (N, 4) tensor whose every column lies in its FACTOR_RANGES interval, else a ValueError naming
    the caller's argument ``name``."""
    t = as_tensor(name, factors, ndim=2)
    check_last_dim(name, t, len(FACTOR_NAMES), "one column per factor: " + ", ".join(FACTOR_NAMES))
    if t.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one row, got shape (0, 4)")
    for k, (factor, (low, high)) in enumerate(zip(FACTOR_NAMES, FACTOR_RANGES, strict=True)):
        column = t[:, k].double()  # (N,)
        if column.min() < low or column.max() > high:
            raise ValueError(
                f"{name} column {k} ({factor}) must lie in [{low}, {high}], "
                f"got values from {column.min().item():.4g} to {column.max().item():.4g}"
            )
    return t


def _pixel_centres(size: int) -> tuple[Tensor, Tensor]:
    """Face-unit coordinates of the pixel centres, x to the right and y up: two (size, size) float64 tensors."""
    c = (2 * torch.arange(size, dtype=torch.float64) + 1) / size - 1  # (size,) from −1 + w/2 to 1 − w/2
    y, x = torch.meshgrid(-c, c, indexing="ij")  # row 0 is the top: y = 1 − w/2
    return x, y


def _coverage(distance: Tensor, pixel: float) -> Tensor:
    """Box-filter anti-aliasing: clamp(½ − d/w, 0, 1) for signed distance d and pixel width w."""
    return (0.5 - distance / pixel).clamp(0.0, 1.0)


def _ellipse_distance(x: Tensor, y: Tensor, a: Tensor | float, b: Tensor | float) -> Tensor:
    """Approximate signed distance to the ellipse (x/a)² + (y/b)² = 1 (negative inside).

    The implicit function k0 − 1 over its gradient norm, k0 (k0 − 1)/k1 with k0 = ‖(x/a, y/b)‖ and
    k1 = ‖(x/a², y/b²)‖: exact on both axes and first-order accurate near the outline; −min(a, b) at the centre.
    """
    k0 = torch.sqrt((x / a) ** 2 + (y / b) ** 2)
    k1 = torch.sqrt((x / (a * a)) ** 2 + (y / (b * b)) ** 2)
    centre = -torch.minimum(torch.as_tensor(a, dtype=x.dtype), torch.as_tensor(b, dtype=x.dtype))
    return torch.where(k1 > 0, k0 * (k0 - 1) / k1.clamp_min(1e-300), centre)


def _mouth_distance(x: Tensor, y: Tensor, curvature: Tensor) -> Tensor:
    """Approximate signed distance to the thick arc y = g(x) = MOUTH_Y + c (x² − h²/2), |x| ≤ h = MOUTH_HALF_WIDTH.

    Inside the arc's span, |y − g(x)| / √(1 + g′(x)²) (first order in the distance to the curve); beyond its ends the
    horizontal overshoot adds in quadrature (round caps). Minus the half-thickness makes the arc thick.
    """
    h = MOUTH_HALF_WIDTH
    xc = x.clamp(-h, h)  # (B, S, S)
    vertical = (y - MOUTH_Y - curvature * (xc * xc - h * h / 2)).abs() / torch.sqrt(1 + (2 * curvature * xc) ** 2)
    overshoot = (x.abs() - h).clamp_min(0.0)  # (B, S, S)
    return torch.sqrt(vertical**2 + overshoot**2) - MOUTH_HALF_THICKNESS


def _render_chunk(v: Tensor, x: Tensor, y: Tensor, pixel: float) -> Tensor:
    """Intensity levels of the faces with factors v (B, 4), float64 (B, S, S), painted in layers and rounded."""
    tilt, smile, eyes, width = (v[:, k, None, None] for k in range(4))  # (B, 1, 1) each
    angle = tilt * (math.pi / 180)
    cos, sin = torch.cos(angle), torch.sin(angle)  # (B, 1, 1)
    xf, yf = cos * x + sin * y, -sin * x + cos * y  # (B, S, S): R(−tilt) applied to the pixel centres
    head = _coverage(_ellipse_distance(xf, yf, width, HEAD_HALF_HEIGHT), pixel)  # (B, S, S)
    eye_h = EYE_HALF_HEIGHT_CLOSED + eyes * (EYE_HALF_HEIGHT_OPEN - EYE_HALF_HEIGHT_CLOSED)  # (B, 1, 1)
    eye = _ellipse_distance(xf.abs() - EYE_X, yf - EYE_Y, EYE_HALF_WIDTH, eye_h)  # both eyes, by symmetry
    mouth = _mouth_distance(xf, yf, MOUTH_CURVATURE * smile)  # (B, S, S)
    features = _coverage(torch.minimum(eye, mouth), pixel)  # (B, S, S)
    level = BACKGROUND_LEVEL + (HEAD_LEVEL - BACKGROUND_LEVEL) * head  # (B, S, S)
    level = level + (FEATURE_LEVEL - level) * features
    return level.round()
