"""Chapter 7's shipped face VAEs and what the chapter computes with them.

* every checkpoint in book/checkpoints/ loads through ``FaceModelSpec.load`` (its SHA-256 verified first) and the loaded
  model reproduces the reference number pinned next to its digest; the checkpoints stay small;
* a missing checkpoint names the script that regenerates it, a changed one is refused;
* the training pipeline of ``tools/train_faces.py`` is deterministic: the same tiny run twice gives identical weights
  (and identical checkpoint digests);
* ``vae_lib.face_analysis``: the factor sweep, the visual weights, a 2-D slice of a 6-D latent space, traversals,
  edits, the factor read back by rendering, the decoder's mean/mode/sample views and the posterior-weighted average.
"""

from __future__ import annotations

import shutil

import pytest
import torch

from vae_lib import face_analysis
from vae_lib.checkpoint import save_checkpoint, sha256_file
from vae_lib.face_models import CHECKPOINT_DIR, FACE_MODELS
from vae_lib.faces import FACTOR_NAMES, FACTOR_RANGES, load_faces_split, make_faces, render_faces
from vae_lib.trained import reference_log_likelihood


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def faces():
    return load_faces_split()


@pytest.fixture(scope="module")
def model_6d():
    return FACE_MODELS["faces-6d-beta4"].load()


# ------------------------------------------------------------------------------------------- the checkpoints
def test_the_specs_pin_a_digest_and_a_file_each():
    assert set(FACE_MODELS) == {"faces-2d", "faces-6d-beta1", "faces-6d-beta4"}
    files = [spec.file_name for spec in FACE_MODELS.values()]
    assert len(set(files)) == len(files)
    for spec in FACE_MODELS.values():
        assert len(spec.sha256) == 64 and set(spec.sha256) <= set("0123456789abcdef")
    assert {(s.latent_dim, s.beta) for s in FACE_MODELS.values()} == {(2, 1.0), (6, 1.0), (6, 4.0)}


def test_checkpoints_are_small():
    total = sum(spec.checkpoint_path().stat().st_size for spec in FACE_MODELS.values())
    assert total <= 2_000_000, f"book/checkpoints holds {total / 1e6:.2f} MB of face models (budget 2 MB)"


@pytest.mark.parametrize("name", sorted(FACE_MODELS))
def test_each_checkpoint_loads_verified_and_reproduces_its_reference(faces, name):
    spec = FACE_MODELS[name]
    assert sha256_file(spec.checkpoint_path()) == spec.sha256
    model = spec.load()
    assert not model.training and model.config.latent_dim == spec.latent_dim
    assert reference_log_likelihood(model, faces.test.images) == pytest.approx(spec.reference, abs=1e-3)


def test_a_missing_checkpoint_says_how_to_regenerate_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"tools/train_faces\.py"):
        FACE_MODELS["faces-2d"].load(directory=tmp_path)


def test_a_changed_checkpoint_is_refused(tmp_path):
    path = tmp_path / FACE_MODELS["faces-2d"].file_name
    shutil.copy(FACE_MODELS["faces-2d"].checkpoint_path(), path)
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="SHA-256"):
        FACE_MODELS["faces-2d"].load(directory=tmp_path)


def test_unknown_model_names_are_rejected_with_the_known_ones():
    with pytest.raises(KeyError, match=r"'faces-3d'; the models are \['faces-2d', 'faces-6d-beta1', 'faces-6d-beta4'"):
        FACE_MODELS["faces-3d"]


# ------------------------------------------------------------------------------------------- the training pipeline
def test_the_training_pipeline_is_deterministic(tmp_path):
    """tools/train_faces.py's training function, one epoch on 256 faces, twice: bit-identical weights and files."""
    x = make_faces(256, generator=gen(0)).images
    runs = [FACE_MODELS["faces-6d-beta4"].train(x, epochs=1) for _ in range(2)]
    (a, history_a), (b, history_b) = runs
    state_a, state_b = a.state_dict(), b.state_dict()
    assert state_a.keys() == state_b.keys()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert history_a.elbo == history_b.elbo
    fresh = FACE_MODELS["faces-6d-beta4"].build().state_dict()
    assert not torch.equal(fresh["decoder.head.weight"], state_a["decoder.head.weight"])  # it did train
    assert save_checkpoint(a, tmp_path / "a.pt") == save_checkpoint(b, tmp_path / "b.pt")


def test_the_checkpoint_directory_is_the_books():
    assert CHECKPOINT_DIR.name == "checkpoints" and CHECKPOINT_DIR.parent.name == "book"


# ------------------------------------------------------------------------------------------- face_analysis
def test_factor_sweep_varies_one_factor_per_block():
    v = face_analysis.factor_sweep(5)
    assert v.shape == (20, 4)
    for k, (lo, hi) in enumerate(FACTOR_RANGES):
        block = v[5 * k:5 * k + 5]
        assert block[0, k].item() == pytest.approx(lo) and block[-1, k].item() == pytest.approx(hi)
        others = [i for i in range(4) if i != k]
        assert torch.allclose(block[:, others], torch.tensor(face_analysis.MIDPOINTS)[others].expand(5, 3))


def test_closest_face_measures_each_factor_in_units_of_its_range():
    factors = torch.tensor([[30.0, 0.0, 0.5, 0.75], [0.0, 0.9, 0.5, 0.75]])
    # 10 degrees of tilt is 1/7 of its range, 0.5 of smile 1/4 of its: the first row is closer
    assert face_analysis.closest_face(factors, [20.0, 0.4, 0.5, 0.75]) == 0
    assert face_analysis.closest_face(factors, [10.0, 0.8, 0.5, 0.75]) == 1


def test_pixels_changed_is_reproducible_and_ranks_tilt_first():
    count, square = face_analysis.pixels_changed(200, generator=gen(1))
    again, _ = face_analysis.pixels_changed(200, generator=gen(1))
    assert torch.equal(count, again)
    assert (count > 0).all() and (square > 0).all()
    assert FACTOR_NAMES[int(count.argmax())] == "tilt"


def test_fit_factor_reads_rendered_factors_back():
    v = face_analysis.factor_sweep(3)  # every value is on the fitting grid (the ends and the midpoint)
    images = render_faces(v)
    for k, name in enumerate(FACTOR_NAMES):
        block = slice(3 * k, 3 * k + 3)
        assert torch.allclose(face_analysis.fit_factor(images[block], v[block], name), v[block, k], atol=1e-6)
    with pytest.raises(ValueError, match="factor"):
        face_analysis.fit_factor(images, v, "nose")
    start = v.clone()
    start[:, 1] = 0.0  # a wrong smile to start from: the sweep reads every factor back
    assert torch.allclose(face_analysis.read_factors(images, start), v, atol=1e-6)


def test_latent_slice_decodes_the_plane_of_the_full_model(model_6d, faces):
    rest = torch.tensor([0.3, -0.2, 0.0, 0.5, 0.1, -0.4])
    sliced = face_analysis.latent_slice(model_6d, (4, 1), signs=(-1, 1), rest=rest)
    assert sliced.config.latent_dim == 2
    u = torch.tensor([[0.5, -1.0], [2.0, 0.25]])
    z = rest.repeat(2, 1)
    z[:, 4], z[:, 1] = -u[:, 0], u[:, 1]
    with torch.no_grad():
        assert torch.allclose(sliced.decode_mean(u), model_6d.decode_mean(z), atol=1e-4)
        mean, log_var = sliced.encode(faces.test.images[:5])
        full_mean, full_log_var = model_6d.encode(faces.test.images[:5])
    assert torch.allclose(mean, torch.stack([-full_mean[:, 4], full_mean[:, 1]], 1))
    assert torch.allclose(log_var, full_log_var[:, [4, 1]])
    with pytest.raises(ValueError, match="dims"):
        face_analysis.latent_slice(model_6d, (1, 1))


def test_traversals_and_shifts_pass_through_the_posterior_mean(model_6d, faces):
    x = faces.test.images[:1]
    mean = face_analysis.posterior_means(model_6d, x)[0]
    rows = face_analysis.traversals(model_6d, x, [float(mean[2]), 1.0])
    assert rows.shape == (6, 2, 1024)
    with torch.no_grad():
        at_mean = model_6d.decode_mean(mean[None])[0]
    assert torch.allclose(rows[2, 0], at_mean, atol=1e-5)
    shifted = face_analysis.shift_dimension(model_6d, x, 3, [0.0, 1.0])
    assert torch.allclose(shifted[0, 0], at_mean, atol=1e-5)
    z = mean.clone()
    z[3] += 1.0
    with torch.no_grad():
        assert torch.allclose(shifted[0, 1], model_6d.decode_mean(z[None])[0], atol=1e-5)


def test_decoder_views_and_posterior_variants(model_6d, faces):
    z = torch.randn(3, 6, generator=gen(2))
    views = face_analysis.decoder_views(model_6d, z, generator=gen(3))
    with torch.no_grad():
        assert torch.allclose(views.mean, model_6d.decode_mean(z), atol=1e-5)
    for t in (views.mode, views.sample):
        assert torch.equal(t, t.round()) and t.min() >= 0 and t.max() <= 15
    assert (views.std >= 0).all()
    variants = face_analysis.posterior_variants(model_6d, faces.test.images[:1], 4, generator=gen(4))
    assert variants.shape == (4, 1024)


def test_binned_means_average_the_codes_in_each_bin():
    codes = torch.tensor([[1.0, 0.0], [3.0, 2.0], [5.0, 4.0], [7.0, 6.0]])
    factor = torch.tensor([-10.0, -5.0, 5.0, 40.0])
    means = face_analysis.binned_means(codes, factor, [-20.0, 0.0, 20.0, 30.0])
    assert torch.equal(means[:2], torch.tensor([[2.0, 1.0], [5.0, 4.0]]))
    assert means[2].isnan().all()  # no face in [20, 30); the face at 40 is outside every bin
    with pytest.raises(ValueError, match="edges"):
        face_analysis.binned_means(codes, factor, [1.0, 0.0])


def test_neighbour_average_averages_the_nearest_faces():
    codes = torch.tensor([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0], [0.1, 0.1]])
    images = torch.tensor([1.0, 10.0, 100.0, 1000.0])[:, None].repeat(1, 3)  # face n is all 10^n
    average = face_analysis.neighbour_average(codes, images, torch.tensor([[0.0, 0.05], [5.0, 4.0]]), k=2)
    assert torch.equal(average, torch.tensor([[500.5] * 3, [55.0] * 3]))  # faces {0, 3} and {2, 1}
    with pytest.raises(ValueError, match="k"):
        face_analysis.neighbour_average(codes, images, codes, k=5)
