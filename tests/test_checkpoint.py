"""vae_lib.checkpoint: verified weights on disk. Round trip, the digest, and one test per failure path,
including a file whose pickle would run code (it must be refused, never executed)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from vae_lib.checkpoint import load_checkpoint, save_checkpoint, sha256_file
from vae_lib.models import VAE, VAEConfig
from vae_lib.networks import conv_networks


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def conv_vae(latent_dim: int = 2, seed: int = 0) -> VAE:
    config = VAEConfig(data_shape=(1, 8, 8), latent_dim=latent_dim, n_levels=16, x_scale=15.0, seed=seed)
    return VAE(config, *conv_networks(config, channels=(4, 8)))


def trained(seed: int = 0) -> VAE:
    """A conv VAE whose weights and BatchNorm statistics differ from a fresh one's (one training step)."""
    vae = conv_vae(seed=seed)
    vae.train()
    x = torch.randint(0, 16, (8, 1, 8, 8), generator=gen(seed)).float()
    torch.optim.SGD(vae.parameters(), lr=0.1).zero_grad()
    vae.loss(x, generator=gen(1)).mean().backward()
    with torch.no_grad():
        for p in vae.parameters():
            p -= 0.1 * p.grad
    return vae.eval()


def _mark(path: str) -> None:
    Path(path).write_text("the checkpoint ran code")


class Payload:
    """An object whose unpickling calls _mark: what a malicious checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return _mark, (self.marker,)


class TestRoundTrip:
    def test_loaded_model_gives_identical_outputs(self, tmp_path):
        source = trained()
        digest = save_checkpoint(source, tmp_path / "vae.pt")
        target = conv_vae(seed=5)
        target.train()
        assert load_checkpoint(target, tmp_path / "vae.pt", digest) is target
        assert not target.training and not any(m.training for m in target.modules())  # eval mode
        for (key, a), b in zip(source.state_dict().items(), target.state_dict().values(), strict=True):
            assert torch.equal(a, b), key
        x = torch.randint(0, 16, (4, 1, 8, 8), generator=gen(2)).float()
        with torch.no_grad():
            torch.testing.assert_close(target.elbo(x, 3, generator=gen(3)), source.elbo(x, 3, generator=gen(3)),
                                       rtol=0, atol=0)

    def test_digest_is_the_files_sha256_and_depends_on_the_weights_only(self, tmp_path):
        vae = trained()
        a = save_checkpoint(vae, tmp_path / "a.pt")
        b = save_checkpoint(vae, str(tmp_path / "other_name.pt"))
        assert a == b == hashlib.sha256((tmp_path / "a.pt").read_bytes()).hexdigest()
        assert len(a) == 64 and sha256_file(tmp_path / "a.pt") == a
        with torch.no_grad():
            vae.decoder.out.bias[0] += 1e-3
        assert save_checkpoint(vae, tmp_path / "a.pt") != a
        assert not list(tmp_path.glob("*.tmp"))  # no temporary file left behind

    def test_float16_storage_rounds_the_weights_and_halves_the_file(self, tmp_path):
        source = trained()
        full = save_checkpoint(source, tmp_path / "full.pt")
        half = save_checkpoint(source, tmp_path / "half.pt", dtype=torch.float16)
        assert half != full
        mlp_vae = VAE(VAEConfig(latent_dim=8, hidden=(128,)))  # 150,000 weights: the archive's overhead is small
        save_checkpoint(mlp_vae, tmp_path / "mlp_full.pt")
        save_checkpoint(mlp_vae, tmp_path / "mlp_half.pt", dtype=torch.float16)
        assert (tmp_path / "mlp_half.pt").stat().st_size < 0.55 * (tmp_path / "mlp_full.pt").stat().st_size
        target = load_checkpoint(conv_vae(seed=5), tmp_path / "half.pt", half)
        for (key, a), b in zip(source.state_dict().items(), target.state_dict().values(), strict=True):
            assert b.dtype == a.dtype, key  # cast back to the model's dtype
            expected = a.to(torch.float16).to(a.dtype) if a.is_floating_point() else a
            assert torch.equal(b, expected), key
        with pytest.raises(TypeError, match="dtype"):
            save_checkpoint(source, tmp_path / "x.pt", dtype=torch.int8)
        with pytest.raises(TypeError, match="dtype"):
            save_checkpoint(source, tmp_path / "x.pt", dtype="float16")

    def test_sha256_file_streams_large_files(self, tmp_path):
        data = bytes(range(256)) * 10_000  # 2.56 MB: more than one 1 MiB chunk
        (tmp_path / "blob").write_bytes(data)
        assert sha256_file(tmp_path / "blob") == hashlib.sha256(data).hexdigest()
        with pytest.raises(FileNotFoundError, match="no file"):
            sha256_file(tmp_path / "absent")


class TestFailures:
    def test_missing_file_says_how_to_regenerate_it(self, tmp_path):
        path = tmp_path / "faces.pt"
        with pytest.raises(FileNotFoundError, match=r"faces\.pt.*run python tools/train_faces\.py"):
            load_checkpoint(conv_vae(), path, "0" * 64, regenerate_hint="run python tools/train_faces.py")
        with pytest.raises(FileNotFoundError, match="checkpoint not found"):
            load_checkpoint(conv_vae(), path, "0" * 64)

    def test_corrupted_file_names_expected_and_actual_digest(self, tmp_path):
        path = tmp_path / "vae.pt"
        digest = save_checkpoint(trained(), path)
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF  # one flipped byte
        path.write_bytes(bytes(data))
        actual = hashlib.sha256(bytes(data)).hexdigest()
        target = conv_vae(seed=5)
        before = {k: v.clone() for k, v in target.state_dict().items()}
        with pytest.raises(ValueError, match=f"SHA-256 {actual}, expected {digest}"):
            load_checkpoint(target, path, digest)
        for key, value in target.state_dict().items():
            assert torch.equal(value, before[key])  # untouched

    def test_wrong_digest_for_an_intact_file(self, tmp_path):
        path = tmp_path / "vae.pt"
        digest = save_checkpoint(trained(), path)
        other = save_checkpoint(trained(seed=1), tmp_path / "other.pt")
        with pytest.raises(ValueError, match=f"SHA-256 {digest}, expected {other}"):
            load_checkpoint(conv_vae(), path, other)

    def test_mismatched_architecture_lists_keys_and_shapes(self, tmp_path):
        path = tmp_path / "vae.pt"
        digest = save_checkpoint(conv_vae(latent_dim=2), path)
        with pytest.raises(ValueError, match=r"shapes differ: encoder\.head\.weight: file \(4, 32\), model \(6, 32\)"):
            load_checkpoint(conv_vae(latent_dim=3), path, digest)
        mlp_vae = VAE(VAEConfig(data_shape=(1, 8, 8), latent_dim=2, n_levels=16, hidden=(8,)))
        with pytest.raises(ValueError, match=r"missing from the file: encoder\.1\.weight, .*; "
                                             r"in the file but not in the model: encoder\.blocks\.0\.0\.weight, "
                                             r".*\(22 more\)"):
            load_checkpoint(mlp_vae, path, digest)

    def test_pickled_code_is_refused_not_executed(self, tmp_path):
        marker = tmp_path / "marker.txt"
        path = tmp_path / "evil.pt"
        torch.save({"encoder.head.weight": Payload(marker)}, path)
        digest = sha256_file(path)  # the digest matches: only weights_only=True stands between the file and _mark
        with pytest.raises(ValueError, match="refused to unpickle"):
            load_checkpoint(conv_vae(), path, digest)
        assert not marker.exists()
        torch.load(path, weights_only=False)  # the payload is live: a plain unpickle runs it
        assert marker.read_text() == "the checkpoint ran code"

    def test_a_file_that_is_not_a_state_dict(self, tmp_path):
        path = tmp_path / "list.pt"
        torch.save([torch.zeros(2)], path)
        with pytest.raises(ValueError, match="must hold a state dict"):
            load_checkpoint(conv_vae(), path, sha256_file(path))
        (tmp_path / "text.pt").write_text("not a checkpoint")
        with pytest.raises(ValueError, match="not a file written by torch.save"):
            load_checkpoint(conv_vae(), tmp_path / "text.pt", sha256_file(tmp_path / "text.pt"))

    def test_bad_arguments(self, tmp_path):
        path = tmp_path / "vae.pt"
        digest = save_checkpoint(conv_vae(), path)
        with pytest.raises(ValueError, match="sha256 must be 64 hexadecimal digits"):
            load_checkpoint(conv_vae(), path, digest[:10])
        with pytest.raises(TypeError, match="sha256"):
            load_checkpoint(conv_vae(), path, None)
        with pytest.raises(TypeError, match="model"):
            save_checkpoint({"a": torch.zeros(1)}, path)
        with pytest.raises(TypeError, match="path"):
            save_checkpoint(conv_vae(), 3)
        with pytest.raises(FileNotFoundError, match="directory"):
            save_checkpoint(conv_vae(), tmp_path / "absent" / "vae.pt")
        assert load_checkpoint(conv_vae(), path, digest.upper()).training is False  # hex case does not matter


def test_model_registry_and_checkpoint_file():
    """The registries of trained models: a name gives its spec, an unknown name raises a KeyError listing the known
    ones, specs of another kind and repeated names are refused; a checkpoint lands in the directory asked for, else
    book/checkpoints."""
    from vae_lib.checkpoint import CHECKPOINT_DIR, checkpoint_file
    from vae_lib.face_models import FACE_MODELS
    from vae_lib.trained import ModelRegistry

    spec = FACE_MODELS["faces-2d"]
    assert spec.name == "faces-2d" and list(FACE_MODELS) == ["faces-2d", "faces-6d-beta1", "faces-6d-beta4"]
    with pytest.raises(KeyError, match=r"no trained model named 'faces-3d'; the models are \['faces-2d'"):
        FACE_MODELS["faces-3d"]
    assert FACE_MODELS.get("faces-3d") is None  # a plain lookup with a default still works
    with pytest.raises(TypeError, match="^specs must be TrainedVAESpec instances, got str"):
        ModelRegistry([spec, "faces-2d"])
    with pytest.raises(ValueError, match="^specs must have distinct names"):
        ModelRegistry([spec, spec])
    assert checkpoint_file("a.pt") == CHECKPOINT_DIR / "a.pt"
    assert checkpoint_file("a.pt", "/tmp/x") == Path("/tmp/x/a.pt")
    assert spec.checkpoint_path() == CHECKPOINT_DIR / "faces-2d.pt" and spec.checkpoint_path().is_file()
    assert spec.checkpoint_path("/tmp/x") == Path("/tmp/x/faces-2d.pt")
