"""vae_lib.faces: the rendered cartoon faces of chapter 7, whose generating factors are known.

Each factor must change the pixels of its own part of the face and no others. The regions are boxes derived here
from the geometry constants, in face units (x right, y up, the image spans [−1, 1]², pixel width w = 2/size), with
tilt 0 so that the face frame is the image frame:

* an ellipse's coverage clamp(½ − d/w, 0, 1) is 0 beyond w/2 outside its outline (the distance is exact on the axes,
  first-order elsewhere), so its box is its bounding box grown by one pixel w;
* the mouth's approximate distance |y − g(x)|/√(1 + g′(x)²) ≥ r with r = half-thickness + w/2 outside the drawn
  band, so the band lies within |y − g(x)| < r √(1 + (2 c x)²) ≤ r √(1 + (2 C h)²) and |x| < h + r, where
  g ranges over MOUTH_Y ± C h²/2 for |c| ≤ C.
"""

from __future__ import annotations

import math

import pytest
import torch

from vae_lib.faces import (
    EYE_HALF_HEIGHT_OPEN,
    EYE_HALF_WIDTH,
    EYE_X,
    EYE_Y,
    FACE_LEVELS,
    FACE_SIZE,
    FACTOR_NAMES,
    FACTOR_RANGES,
    FEATURE_LEVEL,
    HEAD_HALF_HEIGHT,
    HEAD_LEVEL,
    MOUTH_CURVATURE,
    MOUTH_HALF_THICKNESS,
    MOUTH_HALF_WIDTH,
    MOUTH_Y,
    Faces,
    load_faces_split,
    make_faces,
    render_faces,
    sample_face_factors,
)

S = FACE_SIZE
W = 2.0 / S  # pixel width in face units
WIDTH_LOW, WIDTH_HIGH = FACTOR_RANGES[3]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def face(tilt: float = 0.0, smile: float = 0.0, eyes: float = 0.5, width: float = 0.75) -> torch.Tensor:
    """One rendered face (S, S)."""
    return render_faces(torch.tensor([[tilt, smile, eyes, width]]))[0, 0]


def pixel_centres() -> tuple[torch.Tensor, torch.Tensor]:
    """x (columns, left to right) and y (rows, top to bottom: y decreases), each (S, S)."""
    i = torch.arange(S, dtype=torch.float64)
    y = (1 - (i + 0.5) * W)[:, None].expand(S, S)
    x = (-1 + (i + 0.5) * W)[None, :].expand(S, S)
    return x, y


def mouth_box() -> torch.Tensor:
    x, y = pixel_centres()
    r = MOUTH_HALF_THICKNESS + W / 2
    slope = 2 * MOUTH_CURVATURE * MOUTH_HALF_WIDTH  # the largest |g′(x)|, at the corners
    half_height = MOUTH_CURVATURE * MOUTH_HALF_WIDTH**2 / 2 + r * math.sqrt(1 + slope**2)
    return (x.abs() <= MOUTH_HALF_WIDTH + r) & ((y - MOUTH_Y).abs() <= half_height)


def eye_box(side: int) -> torch.Tensor:
    x, y = pixel_centres()
    return ((x - side * EYE_X).abs() <= EYE_HALF_WIDTH + W) & ((y - EYE_Y).abs() <= EYE_HALF_HEIGHT_OPEN + W)


def outline_band() -> torch.Tensor:
    """Between the narrowest head shrunk by one pixel and the widest grown by one pixel."""
    x, y = pixel_centres()
    inner = (x / (WIDTH_LOW - W)) ** 2 + (y / (HEAD_HALF_HEIGHT - W)) ** 2 >= 1
    outer = (x / (WIDTH_HIGH + W)) ** 2 + (y / (HEAD_HALF_HEIGHT + W)) ** 2 <= 1
    return inner & outer


# ---------------------------------------------------------------------------------------------------------
# factors, determinism, levels
# ---------------------------------------------------------------------------------------------------------
class TestFactorsAndImages:
    def test_constants(self):
        assert FACTOR_NAMES == ("tilt", "smile", "eyes", "width") and len(FACTOR_RANGES) == 4
        assert FACE_LEVELS == 16 and FACE_SIZE == 32
        assert FACTOR_RANGES[0] == (-35.0, 35.0) and FACTOR_RANGES[1] == (-1.0, 1.0) and FACTOR_RANGES[2] == (0.0, 1.0)

    def test_factors_uniform_and_independent(self):
        n = 20_000
        v = sample_face_factors(n, generator=gen(0)).double()
        assert v.shape == (n, 4)
        for k, (low, high) in enumerate(FACTOR_RANGES):
            col = v[:, k]
            assert low <= col.min().item() and col.max().item() <= high
            # Uniform(low, high): mean (low + high)/2, sd (high − low)/√12; the sample mean has sd (high − low)/√(12 n)
            assert abs(col.mean().item() - (low + high) / 2) < 5 * (high - low) / math.sqrt(12 * n)
            assert col.var().item() == pytest.approx((high - low) ** 2 / 12, rel=0.05)
        corr = torch.corrcoef(v.T) - torch.eye(4, dtype=torch.float64)
        assert corr.abs().max().item() < 5 / math.sqrt(n)

    def test_determinism(self):
        a, b = make_faces(64, generator=gen(1)), make_faces(64, generator=gen(1))
        assert isinstance(a, Faces)
        assert torch.equal(a.images, b.images) and torch.equal(a.factors, b.factors)
        c = make_faces(64, generator=gen(2))
        assert not torch.equal(a.images, c.images) and not torch.equal(a.factors, c.factors)

    def test_does_not_touch_the_global_rng(self):
        state = torch.get_rng_state()
        make_faces(5, generator=gen(3))
        assert torch.equal(torch.get_rng_state(), state)

    def test_render_reproduces_images_in_any_batch(self):
        faces = make_faces(1100, generator=gen(4))  # more than two internal chunks of 512
        assert torch.equal(render_faces(faces.factors), faces.images)
        for i in (0, 511, 512, 1099):
            assert torch.equal(render_faces(faces.factors[i : i + 1]), faces.images[i : i + 1])

    def test_integer_levels(self):
        faces = make_faces(200, generator=gen(5))
        x = faces.images
        assert x.shape == (200, 1, S, S) and x.dtype == torch.float32 and faces.factors.dtype == torch.float32
        assert torch.equal(x, x.round())
        assert x.min().item() == 0 and x.max().item() == FACE_LEVELS - 1
        # the corners are background, the centre of the head is head
        assert (x[:, 0, 0, 0] == 0).all() and (x[:, 0, S // 2, S // 2] == HEAD_LEVEL).all()
        assert (x == FEATURE_LEVEL).any()

    def test_other_sizes(self):
        f = torch.tensor([[10.0, 0.5, 0.5, 0.7]])
        assert render_faces(f, size=64).shape == (1, 1, 64, 64)
        assert render_faces(f, size=17).shape == (1, 1, 17, 17)


# ---------------------------------------------------------------------------------------------------------
# each factor changes its own region and no other pixel
# ---------------------------------------------------------------------------------------------------------
class TestFactorRegions:
    def test_region_boxes_are_disjoint(self):
        # a premise of the tests below, which would otherwise be vacuous
        parts = [mouth_box(), eye_box(-1), eye_box(1), outline_band()]
        for i in range(4):
            for j in range(i + 1, 4):
                assert not (parts[i] & parts[j]).any()

    @pytest.mark.parametrize("eyes,width", [(0.0, WIDTH_LOW), (1.0, WIDTH_HIGH), (0.3, 0.7)])
    def test_smile_changes_only_the_mouth(self, eyes, width):
        base = face(smile=0.0, eyes=eyes, width=width)
        for smile in (-1.0, -0.4, 0.5, 1.0):
            changed = face(smile=smile, eyes=eyes, width=width) != base
            assert changed.any()
            assert not (changed & ~mouth_box()).any()

    @pytest.mark.parametrize("smile,width", [(-1.0, WIDTH_LOW), (1.0, WIDTH_HIGH), (0.2, 0.8)])
    def test_eyes_change_only_the_eyes(self, smile, width):
        closed = face(eyes=0.0, smile=smile, width=width)
        for eyes in (0.4, 1.0):
            changed = face(eyes=eyes, smile=smile, width=width) != closed
            assert (changed & eye_box(-1)).any() and (changed & eye_box(1)).any()
            assert not (changed & ~(eye_box(-1) | eye_box(1))).any()

    @pytest.mark.parametrize("smile,eyes", [(-1.0, 1.0), (1.0, 0.0), (0.0, 0.5)])
    def test_width_changes_only_the_outline(self, smile, eyes):
        narrow = face(width=WIDTH_LOW, smile=smile, eyes=eyes)
        for width in (0.7, WIDTH_HIGH):
            changed = face(width=width, smile=smile, eyes=eyes) != narrow
            assert changed.any()
            assert not (changed & ~outline_band()).any()

    def test_tilt_moves_every_part(self):
        upright = face(tilt=0.0)
        for tilt in (-35.0, 20.0, 35.0):
            changed = face(tilt=tilt) != upright
            for part in (mouth_box(), eye_box(-1), eye_box(1), outline_band()):
                assert (changed & part).any()


# ---------------------------------------------------------------------------------------------------------
# orientation: what a person sees
# ---------------------------------------------------------------------------------------------------------
def dark_row_centre(img: torch.Tensor, column: int, rows: slice) -> float:
    """Darkness-weighted mean row of the dark feature in one column, over a band of rows."""
    darkness = (HEAD_LEVEL - img[rows, column]).clamp_min(0)  # (rows,)
    r = torch.arange(S)[rows].to(darkness.dtype)
    return (darkness * r).sum().item() / darkness.sum().item()


class TestOrientation:
    def test_tilt_mirror_symmetry(self):
        # the face is left-right symmetric, so tilting by −t is the mirror image of tilting by +t, pixel for pixel
        for tilt, smile, eyes, width in [(35.0, 1.0, 0.2, 0.7), (12.5, -0.3, 1.0, 0.625), (0.0, 0.6, 0.5, 0.875)]:
            a, b = face(tilt, smile, eyes, width), face(-tilt, smile, eyes, width)
            assert torch.equal(a.flip(-1), b)

    @pytest.mark.parametrize("smile,corners_higher", [(1.0, True), (-1.0, False)])
    def test_smile_lifts_the_corners(self, smile, corners_higher):
        img = face(smile=smile)
        rows_in_box = mouth_box().any(1).nonzero()[:, 0]
        mouth_rows = slice(int(rows_in_box[0]), int(rows_in_box[-1]) + 1)  # the mouth box's rows: no background
        x, _ = pixel_centres()
        corner = int((x[0] - MOUTH_HALF_WIDTH).abs().argmin())  # the column nearest the right corner
        middle_row = dark_row_centre(img, S // 2, mouth_rows)
        corner_row = dark_row_centre(img, corner, mouth_rows)
        # row 0 is the top: a higher corner has a smaller row index
        # the corners sit MOUTH_CURVATURE · MOUTH_HALF_WIDTH² = 3.5 pixels above (below) the middle; ask for 1.5
        assert (corner_row < middle_row - 1.5) if corners_higher else (corner_row > middle_row + 1.5)

    def test_positive_tilt_turns_counter_clockwise(self):
        # counter-clockwise as seen: the eye on the viewer's right rises, the one on the left sinks
        img = face(tilt=30.0, eyes=1.0)
        eye_rows = slice(0, S // 2)
        left, right = int(S / 2 - EYE_X / W), int(S / 2 + EYE_X / W)
        assert dark_row_centre(img, right, eye_rows) < dark_row_centre(img, left, eye_rows) - 2

    def test_eyes_darken_monotonically(self):
        boxes = eye_box(-1) | eye_box(1)
        darkness = [(HEAD_LEVEL - face(eyes=e))[boxes].sum().item() for e in (0.0, 0.25, 0.5, 0.75, 1.0)]
        assert all(a < b for a, b in zip(darkness[:-1], darkness[1:], strict=True))


# ---------------------------------------------------------------------------------------------------------
# the fixed split and argument errors
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_split():
    split = load_faces_split()
    assert split.train.images.shape == (10_000, 1, S, S) and split.test.images.shape == (2_000, 1, S, S)
    assert split.train.factors.shape == (10_000, 4) and split.test.factors.shape == (2_000, 4)
    assert torch.equal(split.test.images, make_faces(2_000, generator=gen(8)).images)
    assert not torch.equal(split.train.factors[:2_000], split.test.factors)
    assert load_faces_split() is split


def test_bad_input():
    good = torch.tensor([[0.0, 0.0, 0.5, 0.7]])
    with pytest.raises(ValueError, match="factors"):
        render_faces(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="factors"):
        render_faces(torch.zeros(4))
    with pytest.raises(ValueError, match="factors"):
        render_faces(torch.zeros(0, 4))
    with pytest.raises(TypeError, match="factors"):
        render_faces("faces")
    for k, name in enumerate(FACTOR_NAMES):
        bad = good.clone()
        bad[0, k] = FACTOR_RANGES[k][1] + 0.01
        with pytest.raises(ValueError, match=f"factors.*{name}"):
            render_faces(bad)
        bad[0, k] = FACTOR_RANGES[k][0] - 0.01
        with pytest.raises(ValueError, match=f"factors.*{name}"):
            render_faces(bad)
    with pytest.raises(ValueError, match="factors"):
        render_faces(torch.tensor([[float("nan"), 0.0, 0.5, 0.7]]))
    with pytest.raises(ValueError, match="size"):
        render_faces(good, size=4)
    with pytest.raises(TypeError, match="size"):
        render_faces(good, size=32.0)
    with pytest.raises(TypeError, match="n"):
        make_faces(2.5, generator=gen(0))
    with pytest.raises(ValueError, match="n"):
        sample_face_factors(0, generator=gen(0))
    with pytest.raises(TypeError, match="generator"):
        make_faces(3, generator=None)
    with pytest.raises(TypeError, match="generator"):
        sample_face_factors(3)  # type: ignore[call-arg]
