"""Chapter 7's trained convolutional VAEs of the faces: their settings, checkpoints and how to load them.

Training the chapter's models takes minutes, more than a reader's build should spend, so ``tools/train_faces.py``
trains them once with fixed seeds, fixed epochs and one thread, and writes their weights to ``book/checkpoints/``;
the chapter loads them with ``FACE_MODELS[name].load()`` (:meth:`vae_lib.trained.TrainedVAESpec.load`), which checks
each file's SHA-256 digest (pinned here, in :data:`FACE_MODELS`) before reading it. Running the script again on
the same machine reproduces the files bit for bit.

The models, all ``VAE(config, *conv_networks(config))`` on the 10,000 training faces of
:func:`vae_lib.faces.load_faces_split` with a categorical p_θ(x|z) over the 16 pixel levels:

* ``faces-2d``: L = 2, β = 1 — the phase diagram;
* ``faces-6d-beta1``: L = 6, β = 1, and ``faces-6d-beta4``: L = 6, β = 4 — the disentanglement table.

Each :class:`FaceModelSpec` also records a reference number (the mean log p_θ(x | z = μ_φ(x)) of the first 64 test
faces, :func:`vae_lib.trained.reference_log_likelihood`) that a loaded model must reproduce
(tests/test_face_models.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .checkpoint import CHECKPOINT_DIR
from .faces import FACE_LEVELS, FACE_SIZE
from .models import VAE, VAEConfig
from .networks import conv_networks
from .train import TrainConfig
from .trained import ModelRegistry, TrainedVAESpec

__all__ = ["CHECKPOINT_DIR", "FACE_MODELS", "FaceModelSpec"]

CHANNELS = (16, 32, 64)  # the convolutional networks' feature maps (about 60,000 parameters, 0.24 MB a model)


@dataclass(frozen=True)
class FaceModelSpec(TrainedVAESpec):
    """One of chapter 7's models: architecture, training settings, checkpoint file and its pinned digest.

    ``latent_dim`` L and ``beta`` β (the KL weight of :func:`vae_lib.train.fit`); ``seed`` seeds both the initial
    weights (encoder ``seed``, decoder ``seed + 1``) and training (shuffling and the reparameterized samples);
    ``epochs``, ``batch_size``, ``learning_rate`` and ``lr_schedule`` are Adam's. ``sha256`` is the digest of the
    checkpoint ``tools/train_faces.py`` writes; ``reference`` the model's mean log p_θ(x | z = μ_φ(x)) in nats on the
    first 64 test faces.
    """

    regenerate_hint: ClassVar[str] = ("run `python tools/train_faces.py` from the repository root (10 to 25 minutes "
                                      "on one CPU thread)")

    latent_dim: int
    beta: float
    epochs: int = 40
    batch_size: int = 128
    learning_rate: float = 2e-3
    lr_schedule: str = "cosine"
    seed: int = 0

    def vae_config(self) -> VAEConfig:
        """The VAE's configuration: 1×32×32 images, categorical over 16 levels, the encoder sees x / 15."""
        return VAEConfig(data_shape=(1, FACE_SIZE, FACE_SIZE), latent_dim=self.latent_dim, likelihood="categorical",
                         n_levels=FACE_LEVELS, x_scale=float(FACE_LEVELS - 1), seed=self.seed)

    def train_config(self, *, progress: bool = False, epochs: int | None = None) -> TrainConfig:
        """The training settings (``epochs`` overrides the spec's, for quick runs and tests)."""
        return TrainConfig(epochs=self.epochs if epochs is None else epochs, batch_size=self.batch_size,
                           learning_rate=self.learning_rate, seed=self.seed, progress=progress,
                           kl_weight=self.beta, lr_schedule=self.lr_schedule)

    def build(self) -> VAE:
        """A freshly initialised convolutional VAE with the spec's architecture (weights from ``seed``)."""
        config = self.vae_config()
        return VAE(config, *conv_networks(config, channels=CHANNELS))


FACE_MODELS: ModelRegistry[FaceModelSpec] = ModelRegistry([
    FaceModelSpec("faces-2d", latent_dim=2, beta=1.0,
                  sha256="cd379560f62feb01c87103fcde887cbb5d6b07b99dcd029a9ec4db52f23f7021",
                  reference=-269.2239),
    FaceModelSpec("faces-6d-beta1", latent_dim=6, beta=1.0,
                  sha256="ed6e9eb293b9b8b443992d1050059e667bf1507169dc95d9ccc92112adacb6fb",
                  reference=-144.2716),
    FaceModelSpec("faces-6d-beta4", latent_dim=6, beta=4.0,
                  sha256="5acea21b8e2fafd1f4a848e8bd570ab8b32f4a7b95330a844785db3aea56263d",
                  reference=-156.2616),
])
