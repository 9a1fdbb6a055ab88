"""Training loop shared by every chapter: fixed epochs, a seed, a tqdm progress bar, no time budget."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ._checks import as_tensor, check_count

__all__ = ["TrainConfig", "TrainHistory", "fit"]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings: Adam with a fixed number of epochs and a seed for shuffling and sampling."""

    epochs: int = 100
    batch_size: int = 128
    learning_rate: float = 1e-3
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        check_count("epochs", self.epochs)
        check_count("batch_size", self.batch_size)
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")


@dataclass
class TrainHistory:
    """Mean training loss per example, one entry per epoch."""

    loss: list[float] = field(default_factory=list)


def fit(model: nn.Module, x_train: Tensor, config: TrainConfig) -> TrainHistory:
    """Minimise ``model.loss(x, generator=...)`` (per-example loss, shape (B,)) averaged over mini-batches.

    Shuffling and the model's sampling noise both come from one generator seeded with ``config.seed``,
    so a run is reproducible.
    """
    if not hasattr(model, "loss"):
        raise TypeError(f"model must have a loss(x, generator=...) method, got {type(model).__name__}")
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    x_train = as_tensor("x_train", x_train, ndim=2)
    generator = torch.Generator().manual_seed(config.seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    history = TrainHistory()
    n = x_train.shape[0]
    model.train()
    for _ in tqdm(range(config.epochs), desc=type(model).__name__, disable=not config.progress, mininterval=1.0):
        order = torch.randperm(n, generator=generator)
        total = 0.0
        for start in range(0, n, config.batch_size):
            batch = x_train[order[start:start + config.batch_size]]  # (b, D)
            loss = model.loss(batch, generator=generator).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * batch.shape[0]
        history.loss.append(total / n)
    model.eval()
    return history
