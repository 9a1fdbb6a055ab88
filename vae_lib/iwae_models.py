"""Chapter 8's digits VAEs trained with the K-sample ELBO and with the importance-weighted bound L_K: their settings,
checkpoints and how to load them (Burda et al.'s table, "closing the gap").

Training the five models takes minutes on one CPU thread (the K = 50 rows draw 50 samples per image and step), more
than the chapter's budget, so ``tools/train_iwae.py --save`` trains them once with fixed seeds, fixed epochs and one
thread and writes their weights to ``book/checkpoints/`` in float16 (about 0.3 MB a model); the chapter loads them
with :func:`load_iwae_model`, which checks each file's SHA-256 digest (pinned in :data:`IWAE_MODELS`) before
reading it (:func:`vae_lib.checkpoint.load_checkpoint`), and evaluates them itself.

Every model is the same ``VAE(VAEConfig(latent_dim=8, hidden=(128,), seed=0))`` (sklearn's digits, categorical
p_θ(x|z) over the 17 pixel levels), trained from the same initial weights on the 1,437 training digits of
:func:`vae_lib.data.load_digits_split` with Adam (60 epochs, batch 64, learning rate 2·10⁻³):

* ``digits-elbo-k1``, ``-k5``, ``-k50``: the ELBO with K samples, the average of K single-sample ELBOs
  (``TrainConfig(objective="elbo", k=K)``; Burda et al.'s "VAE" rows);
* ``digits-iwae-k5``, ``-k50``: the bound L_K (``TrainConfig(objective="iwae", k=K)``, IWAE gradients).

Each :class:`DigitsModelSpec` also pins a reference number (the mean log p_θ(x | z = μ_φ(x)) of the first 64 test
digits, :func:`vae_lib.face_models.reference_log_likelihood`) that a loaded model must reproduce.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ._checks import check_count
from .checkpoint import checkpoint_file, load_checkpoint, registered_spec
from .models import VAE, VAEConfig
from .train import TrainConfig, TrainHistory, fit

__all__ = [
    "IWAE_MODELS",
    "IWAE_REGENERATE_HINT",
    "DigitsModelSpec",
    "build_digits_vae",
    "iwae_checkpoint_path",
    "load_iwae_model",
    "train_digits_model",
]

IWAE_REGENERATE_HINT = ("run `python tools/train_iwae.py --save` from the repository root (about 5 minutes on one "
                        "CPU thread)")
CHECKPOINT_DTYPE = torch.float16  # the weights are stored rounded to float16: half the size of float32


@dataclass(frozen=True)
class DigitsModelSpec:
    """One row of chapter 8's table: the objective (``"elbo"`` or ``"iwae"``) and its K, the architecture, Adam's
    settings, the checkpoint's pinned SHA-256 digest and ``reference``, the loaded model's mean log p_θ(x | z = μ_φ(x))
    in nats on the first 64 test digits."""

    name: str
    objective: str
    k: int
    sha256: str
    reference: float
    latent_dim: int = 8
    hidden: tuple[int, ...] = (128,)
    epochs: int = 60
    batch_size: int = 64
    learning_rate: float = 2e-3
    seed: int = 0

    @property
    def file_name(self) -> str:
        """The checkpoint's file name in :data:`vae_lib.checkpoint.CHECKPOINT_DIR` (book/checkpoints/)."""
        return f"{self.name}.pt"

    @property
    def label(self) -> str:
        """The row's name in the table: "VAE, K = 5" or "IWAE, K = 5"."""
        return f"{'VAE' if self.objective == 'elbo' else 'IWAE'}, K = {self.k}"

    def vae_config(self) -> VAEConfig:
        """The VAE's configuration (categorical decoder over the digits' 17 levels, the library's default)."""
        return VAEConfig(latent_dim=self.latent_dim, hidden=self.hidden, seed=self.seed)

    def train_config(self, *, progress: bool = False, epochs: int | None = None) -> TrainConfig:
        """The training settings (``epochs`` overrides the spec's, for quick runs and tests)."""
        return TrainConfig(epochs=self.epochs if epochs is None else epochs, batch_size=self.batch_size,
                           learning_rate=self.learning_rate, seed=self.seed, progress=progress,
                           objective=self.objective, k=self.k)


IWAE_MODELS: dict[str, DigitsModelSpec] = {
    spec.name: spec
    for spec in (
        DigitsModelSpec("digits-elbo-k1", "elbo", 1,
                        sha256="f5a20e0337fa72ed1ead10dac49f71746aae387028eeac28e9a366e7d99ecd01",
                        reference=-79.4861),
        DigitsModelSpec("digits-elbo-k5", "elbo", 5,
                        sha256="01ccd208c143fb62ec4a373acf374607f4f8b508755699cf6c9e665d052159d5",
                        reference=-79.0793),
        DigitsModelSpec("digits-elbo-k50", "elbo", 50,
                        sha256="e77f87a92b95b2ce0663574f1515a53819073efb5e24ddcdd67c631329793cc6",
                        reference=-78.6541),
        DigitsModelSpec("digits-iwae-k5", "iwae", 5,
                        sha256="afdb0e1d0962e55aeadbf7e82ebc1c87a2f76e764bd701ed13bb7d0c84e6b308",
                        reference=-79.6633),
        DigitsModelSpec("digits-iwae-k50", "iwae", 50,
                        sha256="424f77efef1457a5714c7f6b0b11d7bd23688d71ab660e201940f40fd2f08193",
                        reference=-81.7095),
    )
}


def _spec(name: object, param: str = "name") -> DigitsModelSpec:
    """The spec of a model given by its name or itself; errors name the caller's parameter ``param``."""
    return registered_spec(IWAE_MODELS, name, DigitsModelSpec, param)


def build_digits_vae(spec: DigitsModelSpec | str) -> VAE:
    """A freshly initialised VAE with the spec's architecture (weights from ``spec.seed``: every row starts from the
    same weights)."""
    return VAE(_spec(spec, "spec").vae_config())


def train_digits_model(spec: DigitsModelSpec | str, x_train: torch.Tensor, *, epochs: int | None = None,
                       progress: bool = False) -> tuple[VAE, TrainHistory]:
    """Build and train the spec's VAE on ``x_train`` (N, 64) with :func:`vae_lib.train.fit`, in eval mode.

    Deterministic: the same spec, data and number of threads give bit-identical weights (``tools/train_iwae.py`` runs
    it with one thread). ``epochs`` overrides the spec's.
    """
    spec = _spec(spec, "spec")
    if epochs is not None:
        check_count("epochs", epochs)
    model = build_digits_vae(spec)
    history = fit(model, x_train, spec.train_config(progress=progress, epochs=epochs))
    return model, history


def iwae_checkpoint_path(name: DigitsModelSpec | str, directory: str | Path | None = None) -> Path:
    """Where the checkpoint of model ``name`` lives (``directory`` defaults to book/checkpoints/)."""
    return checkpoint_file(_spec(name).file_name, directory)


def load_iwae_model(name: DigitsModelSpec | str, directory: str | Path | None = None) -> VAE:
    """The trained VAE ``name`` (a key of :data:`IWAE_MODELS`), its checkpoint's digest verified, float32, eval mode.

    A missing file raises ``FileNotFoundError`` saying how to regenerate it; a file with another digest a
    ``ValueError`` (:func:`vae_lib.checkpoint.load_checkpoint`).
    """
    spec = _spec(name)
    return load_checkpoint(build_digits_vae(spec), iwae_checkpoint_path(spec, directory), spec.sha256,
                           regenerate_hint=IWAE_REGENERATE_HINT)
