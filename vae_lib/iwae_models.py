"""Chapter 8's digits VAEs trained with the K-sample ELBO and with the importance-weighted bound L_K: their settings,
checkpoints and how to load them (Burda et al.'s table, "closing the gap").

Training the five models takes minutes on one CPU thread (the K = 50 rows draw 50 samples per image and step), more
than the chapter's budget, so ``tools/train_iwae.py --save`` trains them once with fixed seeds, fixed epochs and one
thread and writes their weights to ``book/checkpoints/`` in float16 (about 0.3 MB a model); the chapter loads them
with ``IWAE_MODELS[name].load()`` (:meth:`vae_lib.trained.TrainedVAESpec.load`), which checks each file's SHA-256
digest (pinned in :data:`IWAE_MODELS`) before reading it, and evaluates them itself.

Every model is the same ``VAE(VAEConfig(latent_dim=8, hidden=(128,), seed=0))`` (sklearn's digits, categorical
p_θ(x|z) over the 17 pixel levels), trained from the same initial weights on the 1,437 training digits of
:func:`vae_lib.data.load_digits_split` with Adam (60 epochs, batch 64, learning rate 2·10⁻³):

* ``digits-elbo-k1``, ``-k5``, ``-k50``: the ELBO with K samples, the average of K single-sample ELBOs
  (``TrainConfig(objective="elbo", k=K)``; Burda et al.'s "VAE" rows);
* ``digits-iwae-k5``, ``-k50``: the bound L_K (``TrainConfig(objective="iwae", k=K)``, IWAE gradients).

Each :class:`DigitsModelSpec` also pins a reference number (the mean log p_θ(x | z = μ_φ(x)) of the first 64 test
digits, :func:`vae_lib.trained.reference_log_likelihood`) that a loaded model must reproduce.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from .models import VAEConfig
from .train import TrainConfig
from .trained import ModelRegistry, TrainedVAESpec

__all__ = ["IWAE_MODELS", "DigitsModelSpec"]


@dataclass(frozen=True)
class DigitsModelSpec(TrainedVAESpec):
    """One row of chapter 8's table: the objective (``"elbo"`` or ``"iwae"``) and its K, the architecture, Adam's
    settings, the checkpoint's pinned SHA-256 digest and ``reference``, the loaded model's mean log p_θ(x | z = μ_φ(x))
    in nats on the first 64 test digits. Every row starts from the same initial weights (``seed``)."""

    regenerate_hint: ClassVar[str] = ("run `python tools/train_iwae.py --save` from the repository root (about 5 "
                                      "minutes on one CPU thread)")
    checkpoint_dtype: ClassVar[torch.dtype] = torch.float16  # stored rounded to float16: half the size of float32

    objective: str
    k: int
    latent_dim: int = 8
    hidden: tuple[int, ...] = (128,)
    epochs: int = 60
    batch_size: int = 64
    learning_rate: float = 2e-3
    seed: int = 0

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


IWAE_MODELS: ModelRegistry[DigitsModelSpec] = ModelRegistry([
    DigitsModelSpec("digits-elbo-k1", "elbo", 1,
                    sha256="f5a20e0337fa72ed1ead10dac49f71746aae387028eeac28e9a366e7d99ecd01", reference=-79.4861),
    DigitsModelSpec("digits-elbo-k5", "elbo", 5,
                    sha256="01ccd208c143fb62ec4a373acf374607f4f8b508755699cf6c9e665d052159d5", reference=-79.0793),
    DigitsModelSpec("digits-elbo-k50", "elbo", 50,
                    sha256="e77f87a92b95b2ce0663574f1515a53819073efb5e24ddcdd67c631329793cc6", reference=-78.6541),
    DigitsModelSpec("digits-iwae-k5", "iwae", 5,
                    sha256="afdb0e1d0962e55aeadbf7e82ebc1c87a2f76e764bd701ed13bb7d0c84e6b308", reference=-79.6633),
    DigitsModelSpec("digits-iwae-k50", "iwae", 50,
                    sha256="424f77efef1457a5714c7f6b0b11d7bd23688d71ab660e201940f40fd2f08193", reference=-81.7095),
])
