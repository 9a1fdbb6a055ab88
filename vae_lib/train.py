"""Training loop shared by every chapter: fixed epochs, a seed, a tqdm progress bar, no time budget.

Chapter 1 uses it plainly (minimise the per-example ``model.loss``). The training chapter adds, for models
with ``elbo_terms`` (the :class:`vae_lib.models.VAE`), the weighted objective

    loss = E_batch[−log p_θ(x|z)] + β_t Σ_l max(λ, E_batch[KL(q_φ(z_l|x) || p(z_l))]),

with a per-epoch KL weight β_t (``kl_weight``, linearly annealed from 0 over ``kl_warmup_epochs``) and
free bits λ (``free_bits``, nats per latent dimension; Kingma et al., 2016). With β = 1 and λ = 0 it is
exactly −L(θ, φ; x), the negative ELBO, averaged over the batch. ``dequantize`` adds uniform noise
u ~ U[0, 1)^D to every batch of integer pixel levels (the training chapter's continuous decoders).

The training data may be flat (N, D) or images (N, C, H, W) (chapter 7's convolutional VAE): any shape the model
takes. :func:`fit` puts the model in train mode while it trains (BatchNorm layers then use batch statistics) and
leaves it in eval mode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ._checks import as_tensor, check_count
from .models import VAE

__all__ = ["TrainConfig", "TrainHistory", "fit", "kl_weight_schedule", "weighted_objective"]

_LR_SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings: Adam with a fixed number of epochs and a seed for shuffling and sampling.

    ``kl_weight`` is β (1 gives the ELBO); ``kl_warmup_epochs`` > 0 anneals it linearly, β_t = β·t/T for
    epochs t = 0 … T−1 and β afterwards; ``free_bits`` is λ ≥ 0 nats per latent dimension; ``dequantize``
    adds u ~ U[0, 1)^D to each batch. ``lr_schedule`` ``"constant"`` keeps ``learning_rate``; ``"cosine"``
    decays it after every mini-batch step s = 0 … S−1 as η_s = η·½(1 + cos(π s / S)), S the total number of
    steps, so the last steps average out the gradient noise.
    """

    epochs: int = 100
    batch_size: int = 128
    learning_rate: float = 1e-3
    seed: int = 0
    progress: bool = True
    kl_weight: float = 1.0
    kl_warmup_epochs: int = 0
    free_bits: float = 0.0
    dequantize: bool = False
    lr_schedule: Literal["constant", "cosine"] = "constant"

    def __post_init__(self) -> None:
        check_count("epochs", self.epochs)
        check_count("batch_size", self.batch_size)
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if not self.kl_weight >= 0:
            raise ValueError(f"kl_weight must be >= 0, got {self.kl_weight}")
        check_count("kl_warmup_epochs", self.kl_warmup_epochs, minimum=0)
        if not self.free_bits >= 0:
            raise ValueError(f"free_bits must be >= 0 (nats per latent dimension), got {self.free_bits}")
        if self.lr_schedule not in _LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {_LR_SCHEDULES}, got {self.lr_schedule!r}")

    @property
    def is_plain_elbo(self) -> bool:
        """True when the objective is exactly the negative ELBO (β = 1, no annealing, no free bits)."""
        return self.kl_weight == 1.0 and self.kl_warmup_epochs == 0 and self.free_bits == 0.0


@dataclass
class TrainHistory:
    """Per-epoch means over the training examples.

    ``loss``: the objective minimised; for models with ``elbo_terms`` also ``reconstruction``
    (E_q[log p_θ(x|z)]), ``kl_per_dim`` (KL(q_φ(z_l|x) || p(z_l)) for each latent dimension l),
    ``elbo`` (reconstruction − Σ_l KL, single-sample) and the KL weight β_t used.
    """

    loss: list[float] = field(default_factory=list)
    reconstruction: list[float] = field(default_factory=list)
    kl_per_dim: list[list[float]] = field(default_factory=list)
    elbo: list[float] = field(default_factory=list)
    kl_weight: list[float] = field(default_factory=list)


def kl_weight_schedule(config: TrainConfig) -> list[float]:
    """β_t for every epoch t: β·min(1, t / T_warmup) (β throughout when there is no warm-up)."""
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    t_warm = config.kl_warmup_epochs
    return [config.kl_weight * (min(1.0, t / t_warm) if t_warm else 1.0) for t in range(config.epochs)]


def weighted_objective(log_likelihood: Tensor, kl_per_dim: Tensor, kl_weight: float, free_bits: float = 0.0) -> Tensor:
    """E_batch[−log p_θ(x|z)] + β Σ_l max(λ, E_batch[KL_l]): log_likelihood (B,), kl_per_dim (B, L) -> scalar.

    With β = 1 and λ = 0 this is the batch mean of −L(θ, φ; x).
    """
    log_likelihood = as_tensor("log_likelihood", log_likelihood, ndim=1)
    kl_per_dim = as_tensor("kl_per_dim", kl_per_dim, ndim=2)
    if kl_per_dim.shape[0] != log_likelihood.shape[0]:
        raise ValueError(f"kl_per_dim (shape {tuple(kl_per_dim.shape)}) must have one row per entry of "
                         f"log_likelihood (shape {tuple(log_likelihood.shape)})")
    if free_bits == 0.0:
        return (-log_likelihood + kl_weight * kl_per_dim.sum(-1)).mean()
    kl_dims = kl_per_dim.mean(0).clamp(min=free_bits)  # (L,): no gradient pushes KL_l below λ
    return -log_likelihood.mean() + kl_weight * kl_dims.sum()


def _check_train_data(model: nn.Module, x_train: Tensor) -> Tensor:
    """x_train as a tensor of N examples: (N, D), or (N, *data_shape) when the model's config has a data_shape."""
    data_shape = getattr(getattr(model, "config", None), "data_shape", None)
    if data_shape is None:
        return as_tensor("x_train", x_train, ndim=2)
    x_train = as_tensor("x_train", x_train, min_ndim=2)
    dim = math.prod(data_shape)
    if tuple(x_train.shape[1:]) != tuple(data_shape) and not (x_train.dim() == 2 and x_train.shape[1] == dim):
        shape = ", ".join(map(str, data_shape))
        flat = f" or flattened (N, {dim})" if len(data_shape) > 1 else ""
        raise ValueError(f"x_train must have shape (N, {shape}){flat} (the model's config.data_shape), "
                         f"got {tuple(x_train.shape)}")
    return x_train


def fit(model: nn.Module, x_train: Tensor, config: TrainConfig) -> TrainHistory:
    """Minimise ``model.loss(x, generator=...)`` (per-example loss, shape (B,)) averaged over mini-batches.

    A :class:`vae_lib.VAE` (or a subclass that keeps its ``loss``, −L) is trained on :func:`weighted_objective`
    of its ``elbo_terms`` (log p_θ(x|z) (B,), KL per dimension (B, L)) with β_t and λ from ``config``, and the
    terms are recorded; with the default β = 1, λ = 0 this is the same computation as ``model.loss``.
    Shuffling, dequantization noise and the model's sampling noise all come from one generator seeded with
    ``config.seed``, so a run is reproducible. ``x_train`` is (N, D), or (N, *data_shape) for a model whose
    ``config`` has a ``data_shape`` (images (N, C, H, W) for chapter 7's convolutional VAE). The model is in train
    mode during the epochs and left in eval mode.
    """
    if not hasattr(model, "loss"):
        raise TypeError(f"model must have a loss(x, generator=...) method, got {type(model).__name__}")
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    # the ELBO's terms are used only when ``loss`` is the plain −ELBO they add up to (a subclass with its own
    # ``loss`` is trained on that loss)
    has_terms = hasattr(model, "elbo_terms") and getattr(type(model), "loss", None) is VAE.loss
    if not has_terms and not config.is_plain_elbo:
        raise TypeError(f"kl_weight, kl_warmup_epochs and free_bits need a model with elbo_terms (a VAE), "
                        f"got {type(model).__name__}")
    x_train = _check_train_data(model, x_train)
    generator = torch.Generator().manual_seed(config.seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    history = TrainHistory()
    n = x_train.shape[0]
    scheduler = None
    if config.lr_schedule == "cosine":  # one step per mini-batch, ceil(n / batch_size) of them per epoch
        total_steps = config.epochs * -(-n // config.batch_size)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=total_steps)
    model.train()
    for beta in tqdm(kl_weight_schedule(config), desc=type(model).__name__, disable=not config.progress,
                     mininterval=1.0):
        order = torch.randperm(n, generator=generator)
        total, recon, kl_dims = 0.0, 0.0, 0.0
        for start in range(0, n, config.batch_size):
            batch = x_train[order[start:start + config.batch_size]]  # (b, D) or (b, C, H, W)
            if config.dequantize:
                batch = batch + torch.rand(batch.shape, generator=generator)  # uniform dequantization, batch's shape
            if has_terms:
                log_lik, kl = model.elbo_terms(batch, generator=generator)  # (b,), (b, L)
                loss = weighted_objective(log_lik, kl, beta, config.free_bits)
                recon += log_lik.detach().sum().item()
                kl_dims = kl_dims + kl.detach().sum(0)  # (L,)
            else:
                loss = model.loss(batch, generator=generator).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            if scheduler is not None:
                scheduler.step()
            total += loss.item() * batch.shape[0]
        history.loss.append(total / n)
        history.kl_weight.append(beta)
        if has_terms:
            kl_mean = (kl_dims / n).tolist()
            history.reconstruction.append(recon / n)
            history.kl_per_dim.append(kl_mean)
            history.elbo.append(recon / n - sum(kl_mean))
    model.eval()
    return history
