"""The book's trained VAEs: one description of a model the book ships weights for, and how to build, train and load it.

Chapters 7 (the faces) and 8 (the digits trained with the ELBO and with L_K) load models that take minutes to train,
more than a reader's build should spend. Each such model is a :class:`TrainedVAESpec`: its name, its architecture
(:meth:`~TrainedVAESpec.vae_config`, :meth:`~TrainedVAESpec.build`), its training settings
(:meth:`~TrainedVAESpec.train_config`), the SHA-256 digest of the checkpoint a tool in ``tools/`` writes with fixed
seeds, fixed epochs and one thread, and a reference number the loaded model must reproduce
(:func:`reference_log_likelihood`). The chapters' modules subclass it (:class:`vae_lib.face_models.FaceModelSpec`,
:class:`vae_lib.iwae_models.DigitsModelSpec`) and list their models in a :class:`ModelRegistry`; building, training,
finding and loading are written once, here:

* :meth:`~TrainedVAESpec.build`: a freshly initialised VAE (weights from the spec's seed);
* :meth:`~TrainedVAESpec.train`: build and train it with :func:`vae_lib.train.fit` (deterministic: the same spec, data
  and number of threads give bit-identical weights);
* :meth:`~TrainedVAESpec.load`: the shipped weights, the file's digest verified before it is read
  (:func:`vae_lib.checkpoint.load_checkpoint`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import ClassVar, TypeVar

import torch
from torch import Tensor

from ._checks import check_count
from .checkpoint import checkpoint_file, load_checkpoint
from .models import VAE, VAEConfig
from .train import TrainConfig, TrainHistory, fit

__all__ = ["REFERENCE_ROWS", "ModelRegistry", "TrainedVAESpec", "reference_log_likelihood"]

REFERENCE_ROWS = 64  # a spec's reference number is computed on the first 64 test rows
S = TypeVar("S", bound="TrainedVAESpec")


@dataclass(frozen=True)
class TrainedVAESpec(ABC):
    """A VAE the book ships trained weights for: ``name`` (its checkpoint is ``<name>.pt`` in
    :data:`vae_lib.checkpoint.CHECKPOINT_DIR`), ``sha256`` the pinned digest of that file, and ``reference`` the
    loaded model's :func:`reference_log_likelihood` on the first 64 test rows, in nats. Subclasses add the
    architecture and training settings and say how to turn them into a :class:`~vae_lib.models.VAEConfig` and a
    :class:`~vae_lib.train.TrainConfig`."""

    #: How to regenerate the checkpoints (said by the error a missing file raises).
    regenerate_hint: ClassVar[str] = ""
    #: The dtype the checkpoint's weights are stored in (``None``: the model's own, float32); the model is float32
    #: once loaded either way.
    checkpoint_dtype: ClassVar[torch.dtype | None] = None

    name: str
    _: KW_ONLY
    sha256: str
    reference: float

    @property
    def file_name(self) -> str:
        """The checkpoint's file name in :data:`vae_lib.checkpoint.CHECKPOINT_DIR`."""
        return f"{self.name}.pt"

    @abstractmethod
    def vae_config(self) -> VAEConfig:
        """The VAE's configuration (data shape, L, likelihood, seed of the initial weights)."""

    @abstractmethod
    def train_config(self, *, progress: bool = False, epochs: int | None = None) -> TrainConfig:
        """The training settings (``epochs`` overrides the spec's, for quick runs and tests)."""

    def build(self) -> VAE:
        """A freshly initialised VAE with the spec's architecture (weights from its seed); by default the library's
        fully connected networks (:class:`vae_lib.models.VAE`)."""
        return VAE(self.vae_config())

    def train(self, x_train: Tensor, *, epochs: int | None = None, progress: bool = False) -> tuple[VAE, TrainHistory]:
        """Build the spec's VAE and train it on ``x_train`` with :func:`vae_lib.train.fit`; returned in eval mode.

        Deterministic: the same spec, data and number of threads give bit-identical weights (the tools that write
        the checkpoints run it with one thread). ``epochs`` overrides the spec's."""
        if epochs is not None:
            check_count("epochs", epochs)
        model = self.build()
        history = fit(model, x_train, self.train_config(progress=progress, epochs=epochs))
        return model, history

    def checkpoint_path(self, directory: str | Path | None = None) -> Path:
        """Where the checkpoint lives (``directory`` defaults to :data:`vae_lib.checkpoint.CHECKPOINT_DIR`)."""
        return checkpoint_file(self.file_name, directory)

    def load(self, directory: str | Path | None = None) -> VAE:
        """The trained VAE, float32, in eval mode: its checkpoint's SHA-256
        checked against the pinned one before the file is read.

        A missing file raises ``FileNotFoundError`` saying how to regenerate
        it; a file with another digest a ``ValueError``
        (:func:`vae_lib.checkpoint.load_checkpoint`)."""
        path = self.checkpoint_path(directory)
        return load_checkpoint(self.build(), path, self.sha256,
                               regenerate_hint=self.regenerate_hint)


class ModelRegistry(dict[str, S]):
    """The trained models of a chapter by name; an unknown name raises a ``KeyError`` that lists the known ones."""

    def __init__(self, specs: Iterable[S]) -> None:
        if isinstance(specs, (str, bytes, Mapping)) or not isinstance(specs, Iterable):
            raise TypeError(f"specs must be an iterable of TrainedVAESpec, got {type(specs).__name__}")
        specs = list(specs)
        for spec in specs:
            if not isinstance(spec, TrainedVAESpec):
                raise TypeError(f"specs must be TrainedVAESpec instances, got {type(spec).__name__}")
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"specs must have distinct names, got {names}")
        super().__init__((spec.name, spec) for spec in specs)

    def __missing__(self, name: object) -> S:
        raise KeyError(f"no trained model named {name!r}; the models are {sorted(self)}")


def reference_log_likelihood(model: VAE, x: Tensor) -> float:
    """Mean log p_θ(x | z = μ_φ(x)) in nats over the first 64 rows of x: deterministic in eval mode.

    The number each :class:`TrainedVAESpec` records as ``reference`` (on the test rows), so a loaded model can be
    checked against the one that was trained.
    """
    if not isinstance(model, VAE):
        raise TypeError(f"model must be a vae_lib.VAE, got {type(model).__name__}")
    model.eval()
    x = model.flatten_data(x)[:REFERENCE_ROWS]
    with torch.no_grad():
        mean, _ = model.encode(x)  # (B, L)
        return model.log_likelihood(x, mean[None]).mean().item()
