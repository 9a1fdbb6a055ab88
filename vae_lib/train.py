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

from ._checks import (
    NonFiniteError,
    _all_finite,
    as_model_input,
    as_tensor,
    check_bool,
    check_choice,
    check_count,
    check_instance,
    check_int,
    check_real,
)
from .iwae import iwae_loss
from .models import VAE

__all__ = ["TrainConfig", "TrainHistory", "TrainingDivergedError", "fit", "kl_weight_schedule", "weighted_objective"]

#: The most optimiser steps (epochs × mini-batches per epoch) one call of :func:`fit` takes; more would run for days
#: on a reader's CPU, so such a configuration is refused before the first step.
MAX_STEPS = 10**6


class TrainingDivergedError(ValueError):
    """Training diverged: the loss (or a weight) became NaN or infinite after an optimiser step.

    Raised by :func:`fit`, which first restores the model's parameters and buffers to their values before the
    update that broke them. A ValueError (the usual cause is a learning rate too large for the model): the message
    gives the epoch and step and what to try.
    """

_LR_SCHEDULES = ("constant", "cosine")
_OBJECTIVES = ("elbo", "iwae")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings: Adam with a fixed number of epochs and a seed for shuffling and sampling.

    ``kl_weight`` is β (1 gives the ELBO); ``kl_warmup_epochs`` > 0 anneals it linearly, β_t = β·t/T for
    epochs t = 0 … T−1 and β afterwards; ``free_bits`` is λ ≥ 0 nats per latent dimension; ``dequantize``
    adds u ~ U[0, 1)^D to each batch. ``lr_schedule`` ``"constant"`` keeps ``learning_rate``; ``"cosine"``
    decays it after every mini-batch step s = 0 … S−1 as η_s = η·½(1 + cos(π s / S)), S the total number of
    steps, so the last steps average out the gradient noise.

    ``objective`` ``"iwae"`` minimises −L_K, the importance-weighted bound with ``k`` samples of q_φ(z|x) (Burda et al.,
    2016; :func:`vae_lib.iwae.iwae_loss`), for a :class:`vae_lib.VAE` with β = 1 and no free bits; ``dreg`` gives the
    encoder DReG's gradient (Tucker et al., 2019) instead of IWAE's. ``"elbo"`` (the default) with ``k`` > 1 is the
    K-sample ELBO, E_batch[(1/K) Σ_k log p_θ(x|z_k)] − KL: the average of K single-sample ELBOs (Burda et al.'s "VAE"
    rows with k samples; a model with ``elbo_terms``); DReG needs ``"iwae"``.
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
    objective: Literal["elbo", "iwae"] = "elbo"
    k: int = 1
    dreg: bool = False

    def __post_init__(self) -> None:
        check_count("epochs", self.epochs, maximum=MAX_STEPS)
        check_count("batch_size", self.batch_size)
        check_real("learning_rate", self.learning_rate, above=0)
        check_int("seed", self.seed)
        check_bool("progress", self.progress)
        check_real("kl_weight", self.kl_weight, minimum=0)
        check_count("kl_warmup_epochs", self.kl_warmup_epochs, minimum=0, maximum=MAX_STEPS)
        check_real("free_bits", self.free_bits, minimum=0)
        check_bool("dequantize", self.dequantize)
        check_choice("lr_schedule", self.lr_schedule, _LR_SCHEDULES)
        check_choice("objective", self.objective, _OBJECTIVES)
        check_count("k", self.k, maximum=100_000)
        check_bool("dreg", self.dreg)
        if self.objective == "elbo" and self.dreg:
            raise ValueError("dreg = True needs objective='iwae' (DReG is a gradient estimator of L_K; the ELBO's "
                             "reparameterized gradient has no score-function term to remove)")
        if self.objective == "iwae" and not (self.kl_weight == 1.0 and self.kl_warmup_epochs == 0
                                             and self.free_bits == 0.0):
            raise ValueError("objective='iwae' is the bound L_K itself: it takes no kl_weight, kl_warmup_epochs or "
                             "free_bits (keep 1.0, 0, 0.0)")

    @property
    def is_plain_elbo(self) -> bool:
        """True when the objective is exactly the single-sample negative ELBO (β = 1, no annealing, no free bits,
        k = 1, not L_K): what ``model.loss`` computes."""
        return (self.objective == "elbo" and self.kl_weight == 1.0 and self.kl_warmup_epochs == 0
                and self.free_bits == 0.0 and self.k == 1)


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


def weighted_objective(
    log_likelihood: Tensor, kl_per_dim: Tensor, kl_weight: float,
    free_bits: float = 0.0,
) -> Tensor:
    """E_batch[−log p_θ(x|z)] + β Σ_l max(λ, E_batch[KL_l]):
    log_likelihood (B,), kl_per_dim (B, L) -> scalar.

    With β = 1 and λ = 0 this is the batch mean of −L(θ, φ; x).
    """
    log_likelihood = as_tensor("log_likelihood", log_likelihood,
                               ndim=1, nonempty=True)
    kl_per_dim = as_tensor("kl_per_dim", kl_per_dim, ndim=2)
    if kl_per_dim.shape[0] != log_likelihood.shape[0]:
        raise ValueError(
            f"kl_per_dim (shape {tuple(kl_per_dim.shape)}) must have one "
            "row per entry of log_likelihood "
            f"(shape {tuple(log_likelihood.shape)})")
    kl_weight = check_real("kl_weight", kl_weight, minimum=0)
    free_bits = check_real("free_bits", free_bits, minimum=0)
    if free_bits == 0.0:
        return (-log_likelihood + kl_weight * kl_per_dim.sum(-1)).mean()
    # (L,): no gradient pushes KL_l below λ
    kl_dims = kl_per_dim.mean(0).clamp(min=free_bits)
    return -log_likelihood.mean() + kl_weight * kl_dims.sum()


def _check_train_data(model: nn.Module, x_train: Tensor) -> Tensor:
    """x_train as a tensor of N examples: (N, D), or (N, *data_shape) when the model's config has a data_shape."""
    data_shape = getattr(getattr(model, "config", None), "data_shape", None)
    if data_shape is None:
        return as_model_input("x_train", x_train, model, ndim=2)
    x_train = as_model_input("x_train", x_train, model, min_ndim=2)
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
    terms are recorded; with the default β = 1, λ = 0 this is the same computation as ``model.loss``. With
    ``config.objective == "iwae"`` a VAE is trained on −L_K (:func:`vae_lib.iwae.iwae_loss`, ``config.k`` samples,
    DReG encoder gradients with ``config.dreg``), recorded as ``history.loss``.
    Shuffling, dequantization noise and the model's sampling noise all come from one generator seeded with
    ``config.seed``, so a run is reproducible. ``x_train`` is (N, D), or (N, *data_shape) for a model whose
    ``config`` has a ``data_shape`` (images (N, C, H, W) for chapter 7's convolutional VAE); numpy arrays and float64
    or integer data arrive in the model's dtype. The model is in train mode during the epochs and left in eval mode.

    Everything is validated before the first step. If the loss (or a weight) becomes NaN or infinite, the model's
    parameters and buffers are restored to their values before the update that broke them and
    :class:`TrainingDivergedError` (a ValueError) says at which epoch and step, and to try a smaller learning rate.
    """
    check_instance("model", model, nn.Module, "a torch.nn.Module with a loss(x, generator=...) method (a VAE)")
    if not callable(getattr(model, "loss", None)):
        raise TypeError(f"model must have a loss(x, generator=...) method, got {type(model).__name__}")
    check_instance("config", config, TrainConfig, "a TrainConfig")
    # the ELBO's terms are used only when ``loss`` is the plain −ELBO they add up to (a subclass with its own
    # ``loss`` is trained on that loss)
    has_terms = hasattr(model, "elbo_terms") and getattr(type(model), "loss", None) is VAE.loss
    use_iwae = config.objective == "iwae"
    if use_iwae:
        check_instance("model", model, VAE, "a vae_lib.VAE (objective='iwae' needs its encoder q_φ(z|x))")
        has_terms = False  # the history records −L_K as the loss
    elif not has_terms and not config.is_plain_elbo:
        raise TypeError(f"kl_weight, kl_warmup_epochs, free_bits and k > 1 need a model with elbo_terms (a VAE), "
                        f"got {type(model).__name__}")
    x_train = _check_train_data(model, x_train)
    n = x_train.shape[0]
    steps_per_epoch = -(-n // config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    if total_steps > MAX_STEPS:
        raise ValueError(f"epochs × mini-batches per epoch = {config.epochs} × {steps_per_epoch} = {total_steps} "
                         f"optimiser steps, more than {MAX_STEPS}: lower config.epochs or raise config.batch_size")
    last_good = _LastGood(model)
    if not last_good.finite():
        raise ValueError("model has NaN or infinite parameters or buffers before training: nothing to train from "
                         "(reload it, e.g. from a checkpoint)")
    generator = torch.Generator().manual_seed(config.seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    history = TrainHistory()
    scheduler = None
    if config.lr_schedule == "cosine":  # one step per mini-batch, ceil(n / batch_size) of them per epoch
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=total_steps)
    step = 0  # optimiser steps taken so far

    def diverged(epoch: int, what: str) -> TrainingDivergedError:
        """Restore the weights from before the last update and describe where training broke."""
        last_good.restore()
        lr = config.learning_rate
        return TrainingDivergedError(
            f"training diverged at epoch {epoch + 1} of {config.epochs}, step {step + 1} of {total_steps}: {what}. "
            f"The model's parameters and buffers are restored to their values before step {step} (the update that "
            f"broke them). Try a smaller learning rate: TrainConfig(learning_rate=...) below {lr:g}, "
            f"e.g. ten times smaller ({lr / 10:g}); the book's chapters use 1e-3 to 3e-3.")

    model.train()
    try:
        for epoch, beta in enumerate(tqdm(kl_weight_schedule(config), desc=type(model).__name__,
                                          disable=not config.progress, mininterval=1.0)):
            order = torch.randperm(n, generator=generator)
            total, recon, kl_dims = 0.0, 0.0, 0.0
            for start in range(0, n, config.batch_size):
                batch = x_train[order[start:start + config.batch_size]]  # (b, D) or (b, C, H, W)
                if config.dequantize:
                    batch = batch + torch.rand(batch.shape, generator=generator, dtype=batch.dtype)  # U[0, 1)
                if step:
                    last_good.save_pending()
                try:
                    if has_terms:
                        if config.k == 1:
                            log_lik, kl = model.elbo_terms(batch, generator=generator)  # (b,), (b, L)
                        else:  # the K-sample ELBO: log p_θ(x|z) averaged over K draws
                            log_lik, kl = model.elbo_terms(batch, generator=generator, n_samples=config.k)
                        loss = weighted_objective(log_lik, kl, beta, config.free_bits)
                    elif use_iwae:
                        loss = iwae_loss(model, batch, config.k, generator=generator, dreg=config.dreg).mean()
                    else:
                        loss = model.loss(batch, generator=generator).mean()
                except NonFiniteError as err:
                    if not step:
                        raise
                    raise diverged(epoch, f"the model's outputs are NaN or infinite ({err})") from err
                loss_value = loss.item()
                if not math.isfinite(loss_value):
                    if not step:
                        raise ValueError(f"the loss of the untrained model on the first mini-batch is {loss_value}: "
                                         f"check x_train and the model")
                    raise diverged(epoch, f"the loss is {loss_value}")
                last_good.commit()  # the weights that gave this finite loss are the last good ones
                if has_terms:
                    recon += log_lik.detach().sum().item()
                    kl_dims = kl_dims + kl.detach().sum(0)  # (L,)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                if scheduler is not None:
                    scheduler.step()
                step += 1
                total += loss_value * batch.shape[0]
            history.loss.append(total / n)
            history.kl_weight.append(beta)
            if has_terms:
                kl_mean = (kl_dims / n).tolist()
                history.reconstruction.append(recon / n)
                history.kl_per_dim.append(kl_mean)
                history.elbo.append(recon / n - sum(kl_mean))
        if not last_good.finite():
            step -= 1
            raise diverged(config.epochs - 1, "a weight is NaN or infinite after the last step")
    finally:
        model.eval()
    return history


class _LastGood:
    """The model's parameters and buffers as they were before the latest optimiser step, to restore on divergence.

    Before each step the live values are copied into ``pending``; once that step's loss is found finite they become
    ``good`` (two preallocated copies swapped, so a step costs one copy of the weights and no allocation).
    """

    def __init__(self, model: nn.Module) -> None:
        self.live = [t for t in model.state_dict(keep_vars=True).values() if isinstance(t, Tensor)]
        self.good = [t.detach().clone() for t in self.live]
        self.pending = [t.detach().clone() for t in self.live]

    def save_pending(self) -> None:
        with torch.no_grad():
            for live, copy in zip(self.live, self.pending, strict=True):
                copy.copy_(live)

    def commit(self) -> None:
        self.good, self.pending = self.pending, self.good

    def restore(self) -> None:
        with torch.no_grad():
            for live, copy in zip(self.live, self.good, strict=True):
                live.copy_(copy)

    def finite(self) -> bool:
        return all(_all_finite(t.detach()) for t in self.live if t.is_floating_point())
