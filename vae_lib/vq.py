"""Vector quantisation and the VQ-VAE (van den Oord et al., 2017), the book's VQ-VAE chapter.

Notation (the chapter's): the encoder outputs z_e(x) ∈ R^D (or M such vectors, one per latent position);
the codebook holds K codes e_1 … e_K ∈ R^D; the quantiser picks

    k(x) = argmin_j ‖z_e(x) − e_j‖²,    z_q(x) = e_{k(x)},

and the decoder p_θ(x | z_q) is the categorical over the 17 pixel levels of :mod:`vae_lib.likelihoods`.

* :func:`nearest_code`, :func:`quantise` — the quantiser (nearest-neighbour search in the codebook);
* :func:`straight_through` — z_e + sg[z_q − z_e]: forward value z_q, gradient copied unchanged to z_e;
* :func:`codebook_loss` ‖sg[z_e] − e‖² (moves only the codes), :func:`commitment_loss` ‖z_e − sg[e]‖² (moves only
  the encoder); :meth:`VQVAE.loss` = −log p_θ(x|z_q) + codebook + β·commitment;
* :func:`uniform_prior_kl`, :func:`vq_elbo` — the ELBO view: q(k|x) is one-hot and p(k) uniform over K codes, so
  KL(q ‖ p) = log K per position and L = log p_θ(x|z_q) − M log K;
* :func:`code_frequencies`, :func:`codebook_usage`, :func:`perplexity` — how many codes the model really uses;
* :class:`EmpiricalCodePrior`, :class:`AutoregressiveCodePrior` — priors over the code indices fitted after
  training (the two-stage recipe of VQ-VAE, whose second stage is a PixelCNN over the grid of codes).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Literal, Protocol

import torch
from torch import Tensor, nn

from ._checks import (
    as_index_tensor,
    as_model_input,
    as_tensor,
    check_choice,
    check_count,
    check_generator,
    check_instance,
    check_int,
    check_last_dim,
    check_real,
)
from .likelihoods import categorical_log_likelihood
from .models import _seeded, mlp

__all__ = [
    "AutoregressiveCodePrior",
    "AutoregressivePriorConfig",
    "CodePrior",
    "EmpiricalCodePrior",
    "VQTerms",
    "VQVAE",
    "VQVAEConfig",
    "code_frequencies",
    "codebook_loss",
    "codebook_usage",
    "commitment_loss",
    "nearest_code",
    "perplexity",
    "quantise",
    "squared_distances",
    "straight_through",
    "uniform_prior_kl",
    "vq_elbo",
]


# ---------------------------------------------------------------------------------------------------------
# the quantiser
# ---------------------------------------------------------------------------------------------------------
def _check_codebook(codebook: Tensor) -> Tensor:
    codebook = as_tensor("codebook", codebook, ndim=2)
    if codebook.shape[0] < 1 or codebook.shape[1] < 1:
        raise ValueError(f"codebook must have shape (K, D) with K, D >= 1, got {tuple(codebook.shape)}")
    return codebook


def _check_z_e(z_e: Tensor, codebook: Tensor) -> Tensor:
    z_e = as_tensor("z_e", z_e, min_ndim=1)
    return check_last_dim("z_e", z_e, codebook.shape[1], "the code size D of the codebook")


def squared_distances(z_e: Tensor, codebook: Tensor) -> Tensor:
    """‖z_e − e_j‖² for every code j: z_e (..., D), codebook (K, D)
    -> (..., K)."""
    codebook = _check_codebook(codebook)
    z_e = _check_z_e(z_e, codebook)
    # (..., K, D): exact differences, no cancellation
    diff = z_e.unsqueeze(-2) - codebook
    return (diff ** 2).sum(-1)


def nearest_code(z_e: Tensor, codebook: Tensor) -> Tensor:
    """k = argmin_j ‖z_e − e_j‖² (the lowest index on ties): z_e (..., D), codebook (K, D) -> (...,) int64."""
    return squared_distances(z_e, codebook).argmin(-1)


def quantise(z_e: Tensor, codebook: Tensor) -> tuple[Tensor, Tensor]:
    """z_q = e_{k} with k = :func:`nearest_code`: returns z_q (..., D) and
    k (...,).

    The lookup e_k is differentiable with respect to the codebook (the
    gradient reaches row k) but not with respect to z_e: argmin is
    piecewise constant, so z_q does not depend on z_e almost everywhere.
    """
    k = nearest_code(z_e, codebook)  # (...,)
    return codebook[k], k


def straight_through(z_e: Tensor, z_q: Tensor) -> Tensor:
    """z_e + sg[z_q − z_e]: equals z_q in the forward pass; its gradient
    flows to z_e unchanged (identity).

    This is the straight-through estimator of VQ-VAE: the decoder's
    gradient with respect to z_q is used as the gradient with respect to
    z_e. No gradient reaches the codebook through it.
    """
    z_e, z_q = _check_pair(z_e, z_q)
    return z_e + (z_q - z_e).detach()


def _check_pair(z_e: Tensor, z_q: Tensor) -> tuple[Tensor, Tensor]:
    z_e = as_tensor("z_e", z_e, min_ndim=1)
    z_q = as_tensor("z_q", z_q, min_ndim=1)
    if z_e.shape != z_q.shape:
        raise ValueError(f"z_e (shape {tuple(z_e.shape)}) and z_q (shape {tuple(z_q.shape)}) must have the same shape")
    return z_e, z_q


def codebook_loss(z_e: Tensor, z_q: Tensor) -> Tensor:
    """‖sg[z_e] − e_k‖² summed over the last (code) dimension, shape
    (...,): its gradient moves only the codes."""
    z_e, z_q = _check_pair(z_e, z_q)
    return ((z_e.detach() - z_q) ** 2).sum(-1)


def commitment_loss(z_e: Tensor, z_q: Tensor) -> Tensor:
    """‖z_e − sg[e_k]‖² summed over the last (code) dimension, shape
    (...,): its gradient moves only the encoder."""
    z_e, z_q = _check_pair(z_e, z_q)
    return ((z_e - z_q.detach()) ** 2).sum(-1)


# ---------------------------------------------------------------------------------------------------------
# the ELBO view and codebook usage
# ---------------------------------------------------------------------------------------------------------
def uniform_prior_kl(n_codes: int, n_positions: int = 1) -> float:
    """KL(q(k|x) ‖ p(k)) for a one-hot q and the uniform prior p(k) = 1/K at each of M positions: M·log K nats.

    With q = δ_{k(x)}: KL = Σ_k q(k) log(q(k)/p(k)) = log(1 / (1/K)) = log K per position, whatever x is.
    """
    n_codes = check_count("n_codes", n_codes)
    n_positions = check_count("n_positions", n_positions)
    return n_positions * math.log(n_codes)


def vq_elbo(log_likelihood: Tensor, n_codes: int, n_positions: int = 1) -> Tensor:
    """L = log p_θ(x | z_q(x)) − M·log K: the ELBO of a VQ-VAE with a uniform prior over the codes, shape of input.

    ``log_likelihood`` holds log p_θ(x | z_q(x)) per example; the result is a lower bound on log p_θ(x) of the
    model p(k) = uniform, x ~ p_θ(x | e_k).
    """
    log_likelihood = as_tensor("log_likelihood", log_likelihood)
    return log_likelihood - uniform_prior_kl(n_codes, n_positions)


def _check_codes(k: Tensor, n_codes: int, name: str = "k", floats_ok: bool = False) -> Tensor:
    k = as_index_tensor(name, k, n_codes, floats_ok=floats_ok, what=f"code indices (n_codes = {n_codes})")
    if k.numel() == 0:
        raise ValueError(f"{name} must hold at least one code index")
    return k


def code_frequencies(k: Tensor, n_codes: int) -> Tensor:
    """The fraction of the indices in ``k`` (any shape) that equal each code j, shape (K,), summing to 1."""
    n_codes = check_count("n_codes", n_codes)
    k = _check_codes(k, n_codes)
    counts = torch.bincount(k.reshape(-1), minlength=n_codes).to(torch.get_default_dtype())  # (K,)
    return counts / counts.sum()


def codebook_usage(k: Tensor, n_codes: int) -> int:
    """How many of the K codes occur at least once in ``k``."""
    return int((code_frequencies(k, n_codes) > 0).sum())


def perplexity(k: Tensor, n_codes: int) -> float:
    """exp(H(f)) of the code frequencies f (0·log 0 = 0): K if every code is used equally, 1 if only one is."""
    f = code_frequencies(k, n_codes)
    f = f[f > 0]
    return math.exp(-(f * f.log()).sum().item())


# ---------------------------------------------------------------------------------------------------------
# the VQ-VAE
# ---------------------------------------------------------------------------------------------------------
class CodePrior(Protocol):
    """A prior p(k) over code tuples: ``log_prob(k)`` for k (T, M) int64 returns log p(k), shape (T,)."""

    def log_prob(self, k: Tensor) -> Tensor: ...


@dataclass(frozen=True)
class VQVAEConfig:
    """Architecture of a fully connected VQ-VAE on integer images.

    The encoder maps x / x_scale to M = ``n_positions`` vectors z_e ∈ R^D (D = ``code_dim``); each is replaced by
    its nearest of the K = ``n_codes`` codes; the decoder maps the M·D numbers of z_q to a categorical over
    ``n_levels`` levels per pixel. ``beta`` weighs the commitment term. The codebook starts at N(0, ``init_scale``²)
    draws and is trained by the gradient of the codebook term (``codebook_update="gradient"``) or by exponential
    moving averages with decay ``ema_decay`` (``"ema"``). In training, a code whose running count of assigned
    z_e falls below ``dead_code_threshold`` is restarted at a poorly quantised z_e of the batch (0 disables this).
    """

    data_dim: int = 64
    code_dim: int = 2
    n_codes: int = 16
    n_positions: int = 1
    hidden: tuple[int, ...] = (128, 128)
    n_levels: int = 17
    x_scale: float = 16.0
    beta: float = 0.25
    codebook_update: Literal["gradient", "ema"] = "ema"
    ema_decay: float = 0.95
    dead_code_threshold: float = 0.05
    init_scale: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        check_count("data_dim", self.data_dim)
        check_count("code_dim", self.code_dim)
        check_count("n_codes", self.n_codes, minimum=2)
        check_count("n_positions", self.n_positions)
        check_instance("hidden", self.hidden, (tuple, list), "a tuple of layer sizes, e.g. (128, 128)")
        for h in self.hidden:
            check_count("hidden", h, maximum=100_000)
        check_count("n_levels", self.n_levels, minimum=2)
        check_real("x_scale", self.x_scale, above=0)
        check_real("beta", self.beta, minimum=0)
        check_choice("codebook_update", self.codebook_update, ("gradient", "ema"))
        check_real("ema_decay", self.ema_decay, above=0, below=1)
        check_real("dead_code_threshold", self.dead_code_threshold, minimum=0)
        check_real("init_scale", self.init_scale, above=0)
        check_int("seed", self.seed)


@dataclass(frozen=True)
class VQTerms:
    """The pieces of the VQ-VAE objective per example (each (B,)) and the chosen codes k (B, M)."""

    log_likelihood: Tensor  # log p_θ(x | z_q(x))
    codebook: Tensor  # ‖sg[z_e] − e‖², summed over positions
    commitment: Tensor  # ‖z_e − sg[e]‖², summed over positions
    codes: Tensor  # (B, M) int64


class VQVAE(nn.Module):
    """Deterministic encoder z_e(x), codebook e_1…e_K, z_q = nearest code, categorical decoder p_θ(x | z_q).

    ``loss`` is the per-example VQ-VAE objective −log p_θ(x|z_q) + ‖sg[z_e] − e‖² + β‖z_e − sg[e]‖² (B,), so the
    model trains with :func:`vae_lib.train.fit`; in training mode (a new module's default, and inside ``fit``) each
    ``loss`` call also updates the codebook (:meth:`update_codebook`). Its generative model is p(k) uniform over the
    K^M code tuples and x ~ p_θ(x | e_k); :meth:`elbo` bounds and :meth:`log_evidence` computes exactly its log p(x).
    """

    def __init__(self, config: VQVAEConfig) -> None:
        super().__init__()
        if not isinstance(config, VQVAEConfig):
            raise TypeError(f"config must be a VQVAEConfig, got {type(config).__name__}")
        self.config = c = config
        m_d = c.n_positions * c.code_dim
        self.encoder = _seeded(c.seed, lambda: mlp((c.data_dim, *c.hidden, m_d)))
        self.decoder = _seeded(c.seed + 1, lambda: mlp((m_d, *c.hidden[::-1], c.data_dim * c.n_levels)))
        init = torch.randn(c.n_codes, c.code_dim, generator=torch.Generator().manual_seed(c.seed + 2))
        # the codes are trained by gradient on the codebook term, or (ema) set to running means of their z_e
        self.codebook = nn.Parameter(c.init_scale * init, requires_grad=c.codebook_update == "gradient")  # (K, D)
        self.register_buffer("ema_count", torch.ones(c.n_codes))  # N_j: running count of z_e assigned to e_j
        self.register_buffer("ema_sum", self.codebook.detach().clone())  # m_j: running sum of those z_e
        self.n_restarts = 0  # dead codes restarted so far (see update_codebook)

    # -- encoder and quantiser -----------------------------------------------------------------
    def _check_x(self, x: Tensor) -> Tensor:
        x = as_model_input("x", x, self, ndim=2)  # numpy, float64 or integer x arrive in the model's dtype
        return check_last_dim("x", x, self.config.data_dim, "the data size")

    def encode(self, x: Tensor) -> Tensor:
        """z_e(x), shape (B, M, D)."""
        c = self.config
        h = self.encoder(self._check_x(x) / c.x_scale)  # (B, M·D)
        return h.unflatten(-1, (c.n_positions, c.code_dim))

    def quantise(self, z_e: Tensor) -> Tensor:
        """z_q: each D-vector of z_e (..., D) replaced by its nearest code, same shape (the phase diagram's map)."""
        return quantise(as_model_input("z_e", z_e, self, min_ndim=1), self.codebook)[0]

    def codes(self, x: Tensor) -> Tensor:
        """k(x): the index of the nearest code at each position, shape (B, M) int64."""
        with torch.no_grad():
            return nearest_code(self.encode(x), self.codebook)

    # -- decoder -------------------------------------------------------------------------------
    def _logits(self, z_q: Tensor) -> Tensor:
        """Decoder logits for z_q (..., M, D), shape (..., data, levels)."""
        c = self.config
        z_q = as_model_input("z_q", z_q, self, min_ndim=2)
        if z_q.shape[-2:] != (c.n_positions, c.code_dim):
            raise ValueError(f"z_q must have shape (..., M, D) = (..., {c.n_positions}, {c.code_dim}), "
                             f"got {tuple(z_q.shape)}")
        return self.decoder(z_q.flatten(-2)).unflatten(-1, (c.data_dim, c.n_levels))  # (..., data, levels)

    def log_likelihood(self, x: Tensor, z_q: Tensor) -> Tensor:
        """log p_θ(x | z_q) with the categorical decoder: x (B, data), z_q (..., B, M, D) -> (..., B)."""
        x = self._check_x(x)
        logits = self._logits(z_q)  # (..., B, data, levels)
        if logits.dim() < 3 or logits.shape[-3] != x.shape[0]:
            raise ValueError(f"z_q (shape {tuple(z_q.shape)}) must have one (M, D) entry per row of x "
                             f"(shape {tuple(x.shape)}) in its dimension -3")
        return categorical_log_likelihood(x, logits)

    def decode_mean(self, z_q: Tensor) -> Tensor:
        """E_{p_θ(x|z_q)}[x] in pixel levels, z_q (..., M, D) -> (..., data)."""
        probs = torch.softmax(self._logits(z_q), -1)  # (..., data, levels)
        return probs @ torch.arange(self.config.n_levels, dtype=probs.dtype)

    def decode_quantised(self, z: Tensor) -> Tensor:
        """E[x | z_q(z)] at any point z (..., M·D) of the encoder's output space: quantise, then decode.

        The map the chapter's phase diagram draws over (z₁, z₂): constant on each Voronoi cell of the codebook.
        """
        c = self.config
        z = check_last_dim("z", as_model_input("z", z, self, min_ndim=1), c.n_positions * c.code_dim, "M·D")
        return self.decode_mean(self.quantise(z.unflatten(-1, (c.n_positions, c.code_dim))))

    def decode_codes(self, k: Tensor) -> Tensor:
        """E[x | z_q = (e_{k_1}, …, e_{k_M})] for code tuples k (..., M) -> (..., data)."""
        c = self.config
        k = _check_codes(k, c.n_codes)
        if k.dim() < 1 or k.shape[-1] != c.n_positions:
            raise ValueError(f"k must have last dimension n_positions = {c.n_positions}, got shape {tuple(k.shape)}")
        with torch.no_grad():
            return self.decode_mean(self.codebook[k])

    # -- objective -----------------------------------------------------------------------------
    def terms(self, x: Tensor) -> VQTerms:
        """log p_θ(x|z_q) through the straight-through z_q, the codebook and commitment terms, and the codes."""
        z_e = self.encode(x)  # (B, M, D)
        z_q, k = quantise(z_e, self.codebook)  # (B, M, D), (B, M)
        log_lik = self.log_likelihood(x, straight_through(z_e, z_q))  # (B,)
        return VQTerms(log_lik, codebook_loss(z_e, z_q).sum(-1), commitment_loss(z_e, z_q).sum(-1), k)

    @torch.no_grad()
    def update_codebook(self, z_e: Tensor, k: Tensor) -> int:
        """The codebook's training step after a batch z_e (B, M, D) with codes k (B, M); returns how many codes were
        restarted. Running counts (and, for ``ema``, sums) of the z_e assigned to each code j:

            N_j ← γ N_j + (1 − γ) n_j,   m_j ← γ m_j + (1 − γ) Σ_{i: k_i = j} z_e,i,   e_j = m_j / N_j  (ema only),

        with n_j the batch's count (van den Oord et al., 2017, appendix A.1): each code moves towards the mean of its
        z_e, an online k-means step on the codebook term Σ ‖sg[z_e] − e_k‖². Then every *dead* code (N_j below
        ``dead_code_threshold``: it has not been chosen for many batches and, far from every z_e, never will be) is
        moved onto one of the batch's z_e with the largest quantisation error ‖z_e − e_k‖².

        Every argument is checked, and the new counts, sums and codes are computed and checked finite, before any of
        them is written: a refused update (a ValueError/TypeError) leaves the model exactly as it was.
        """
        c = self.config
        z_e = as_model_input("z_e", z_e, self, ndim=3)
        if z_e.shape[1:] != (c.n_positions, c.code_dim):
            raise ValueError(f"z_e must have shape (B, M, D) = (B, {c.n_positions}, {c.code_dim}), "
                             f"got {tuple(z_e.shape)}")
        k = _check_codes(k, c.n_codes)
        if k.shape != z_e.shape[:2]:
            raise ValueError(f"k (shape {tuple(k.shape)}) must have shape (B, M) = {tuple(z_e.shape[:2])}, one code "
                             f"index per vector of z_e")
        z_flat = z_e.detach().reshape(-1, c.code_dim)  # (B·M, D)
        k_flat = k.reshape(-1)  # (B·M,)
        error = ((z_flat - self.codebook[k_flat]) ** 2).sum(-1)  # (B·M,) before this step moves the codes
        one_hot = nn.functional.one_hot(k_flat, c.n_codes).to(z_flat.dtype)  # (B·M, K)
        count = self.ema_count * c.ema_decay + (1 - c.ema_decay) * one_hot.sum(0)  # (K,)
        ema_sum, codebook = self.ema_sum, self.codebook.detach()
        if c.codebook_update == "ema":
            ema_sum = self.ema_sum * c.ema_decay + (1 - c.ema_decay) * one_hot.T @ z_flat  # (K, D)
            # a code unused for thousands of steps (count underflowed to 0) keeps its place instead of 0/0
            codebook = torch.where(count.unsqueeze(-1) > 0, ema_sum / count.unsqueeze(-1), self.codebook.detach())
        codebook, ema_sum = codebook.clone(), ema_sum.clone()
        dead = (count < c.dead_code_threshold).nonzero().squeeze(1)  # (n_dead,)
        n = min(len(dead), len(z_flat))
        if n:
            worst = error.topk(n).indices  # the n worst-quantised z_e of the batch
            codebook[dead[:n]] = z_flat[worst]
            ema_sum[dead[:n]] = z_flat[worst]
            count[dead[:n]] = 1.0
        for name, new in (("ema_count", count), ("ema_sum", ema_sum), ("codebook", codebook)):
            as_tensor(f"the updated {name}", new)  # NaN/inf (overflow) refused before anything is written
        self.ema_count.copy_(count)
        self.ema_sum.copy_(ema_sum)
        self.codebook.copy_(codebook)
        self.n_restarts += n
        return n

    def loss(
        self, x: Tensor, *, generator: torch.Generator | None = None
    ) -> Tensor:
        """−log p_θ(x|z_q) + ‖sg[z_e] − e‖² + β‖z_e − sg[e]‖² per example
        (B,); ``generator`` unused (deterministic).

        With ``codebook_update="ema"`` the codebook has no gradient (the
        second term is then a constant). In training mode each call ends
        with :meth:`update_codebook` (the EMA step and dead-code restarts)
        for this batch.
        """
        z_e = self.encode(x)  # (B, M, D)
        z_q, k = quantise(z_e, self.codebook)  # (B, M, D), (B, M)
        log_lik = self.log_likelihood(x, straight_through(z_e, z_q))  # (B,)
        loss = (-log_lik
                + codebook_loss(z_e, z_q).sum(-1)
                + self.config.beta * commitment_loss(z_e, z_q).sum(-1))  # (B,)
        if self.training:
            self.update_codebook(z_e, k)
        return loss

    def elbo(self, x: Tensor) -> Tensor:
        """L = log p_θ(x | z_q(x)) − M log K ≤ log p_θ(x) under the uniform prior over codes, shape (B,)."""
        with torch.no_grad():
            z_q = self.quantise(self.encode(x))
            return vq_elbo(self.log_likelihood(x, z_q), self.config.n_codes, self.config.n_positions)

    def code_tuples(self) -> Tensor:
        """Every tuple k ∈ {0, …, K−1}^M in lexicographic order, shape (K^M, M)."""
        c = self.config
        return torch.tensor(list(itertools.product(range(c.n_codes), repeat=c.n_positions)), dtype=torch.long)

    def tuple_log_likelihoods(self, x: Tensor, *, max_tuples: int = 4096, chunk: int = 256) -> Tensor:
        """log p_θ(x | e_k) for every code tuple k of :meth:`code_tuples` and every row of x, shape (K^M, B).

        One decoder pass per tuple; refuses codebooks with more than ``max_tuples`` tuples, and processes the tuples
        ``chunk`` at a time to bound memory.
        """
        c = self.config
        n_tuples = c.n_codes ** c.n_positions
        if n_tuples > check_count("max_tuples", max_tuples):
            raise ValueError(f"the evidence sums over K^M = {n_tuples} code tuples, "
                             f"more than max_tuples = {max_tuples}")
        chunk = check_count("chunk", chunk)
        x = self._check_x(x)
        k = self.code_tuples()  # (T, M)
        with torch.no_grad():
            parts = []
            for start in range(0, n_tuples, chunk):
                logits = self._logits(self.codebook[k[start:start + chunk]])  # (t, data, levels)
                parts.append(categorical_log_likelihood(x, logits.unsqueeze(1)))  # (t, B)
        return torch.cat(parts, 0)

    def log_evidence(self, x: Tensor, prior: CodePrior | None = None, *, max_tuples: int = 4096,
                     chunk: int = 256) -> Tensor:
        """The exact log p_θ(x) = log Σ_k p(k) p_θ(x | e_k) over all K^M code tuples k (a finite mixture), (B,).

        ``prior`` is any object with ``log_prob(k)`` for k (T, M) (an :class:`EmpiricalCodePrior`, an
        :class:`AutoregressiveCodePrior`); None means the uniform p(k) = K^{−M}. See :meth:`tuple_log_likelihoods`
        for ``max_tuples`` and ``chunk``.
        """
        table = self.tuple_log_likelihoods(x, max_tuples=max_tuples, chunk=chunk)  # (T, B)
        with torch.no_grad():
            log_prior = self.log_prior(self.code_tuples(), prior)  # (T,)
        return torch.logsumexp(table + log_prior.unsqueeze(1), 0)

    def log_prior(self, k: Tensor, prior: CodePrior | None = None) -> Tensor:
        """log p(k) of code tuples k (T, M) under ``prior`` (None: the uniform −M log K), shape (T,).

        With the one-hot q(k|x), KL(q ‖ p) = −log p(k(x)), so the ELBO is log p_θ(x|z_q(x)) + log p(k(x)).
        """
        c = self.config
        k = _check_codes(k, c.n_codes)
        if k.dim() != 2 or k.shape[1] != c.n_positions:
            raise ValueError(f"k must have shape (T, {c.n_positions}), got {tuple(k.shape)}")
        if prior is None:
            return torch.full((k.shape[0],), -uniform_prior_kl(c.n_codes, c.n_positions))
        if not callable(getattr(prior, "log_prob", None)):
            raise TypeError(f"prior must be None or a code prior with log_prob(k) (an EmpiricalCodePrior, an "
                            f"AutoregressiveCodePrior), got {type(prior).__name__}")
        log_p = as_tensor("prior.log_prob(k)", prior.log_prob(k), ndim=1)
        if log_p.shape[0] != k.shape[0]:
            raise ValueError(f"prior.log_prob(k) must return one value per row of k ({k.shape[0]}), "
                             f"got shape {tuple(log_p.shape)}")
        return log_p


# ---------------------------------------------------------------------------------------------------------
# priors over the codes (the second stage)
# ---------------------------------------------------------------------------------------------------------
class EmpiricalCodePrior:
    """p(k) = Π_m f_m(k_m): each position's code frequencies in the training codes, add-``alpha`` smoothed.

    Independent across positions (with M = 1 it is simply the training frequencies).
    """

    def __init__(self, codes: Tensor, n_codes: int, alpha: float = 1.0) -> None:
        n_codes = check_count("n_codes", n_codes)
        codes = _check_codes(codes, n_codes)
        if codes.dim() != 2:
            raise ValueError(f"codes must have shape (N, M), got {tuple(codes.shape)}")
        alpha = check_real("alpha", alpha, minimum=0)
        counts = torch.stack([torch.bincount(codes[:, m], minlength=n_codes) for m in range(codes.shape[1])])  # (M, K)
        probs = (counts + alpha) / (counts + alpha).sum(-1, keepdim=True)
        self.n_codes, self.n_positions = n_codes, codes.shape[1]
        self.log_probs = probs.log().to(torch.get_default_dtype())  # (M, K)

    def log_prob(self, k: Tensor) -> Tensor:
        """log p(k) = Σ_m log f_m(k_m): k (B, M) -> (B,)."""
        k = _check_codes(k, self.n_codes)
        if k.dim() != 2 or k.shape[1] != self.n_positions:
            raise ValueError(f"k must have shape (B, {self.n_positions}), got {tuple(k.shape)}")
        return self.log_probs.gather(1, k.T).sum(0)  # (B,)

    def sample(self, n: int, *, generator: torch.Generator) -> Tensor:
        """n code tuples k ~ p(k), shape (n, M)."""
        n = check_count("n", n)
        check_generator(generator)
        return torch.multinomial(self.log_probs.exp(), n, replacement=True, generator=generator).T  # (n, M)


@dataclass(frozen=True)
class AutoregressivePriorConfig:
    """p_ψ(k) = Π_m p_ψ(k_m | k_<m): a free distribution for k_1, an MLP of the one-hot k_<m for each later m."""

    n_codes: int = 16
    n_positions: int = 4
    hidden: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        check_count("n_codes", self.n_codes, minimum=2)
        check_count("n_positions", self.n_positions)
        check_count("hidden", self.hidden, maximum=100_000)
        check_int("seed", self.seed)


class AutoregressiveCodePrior(nn.Module):
    """An autoregressive prior over the M code indices in a fixed order, the small cousin of VQ-VAE's PixelCNN.

    Trained by maximum likelihood on the training codes with :func:`vae_lib.train.fit`: ``loss(k)`` is
    −log p_ψ(k) per code tuple (k may arrive as floats holding integers, as ``fit`` passes them).
    """

    def __init__(self, config: AutoregressivePriorConfig) -> None:
        super().__init__()
        if not isinstance(config, AutoregressivePriorConfig):
            raise TypeError(f"config must be an AutoregressivePriorConfig, got {type(config).__name__}")
        self.config = c = config
        self.first_logits = nn.Parameter(torch.zeros(c.n_codes))  # p_ψ(k_1)
        self.conditionals = _seeded(c.seed, lambda: nn.ModuleList(
            [mlp((m * c.n_codes, c.hidden, c.n_codes)) for m in range(1, c.n_positions)]))  # p_ψ(k_m | k_<m)

    def _check(self, k: Tensor) -> Tensor:
        c = self.config
        k = _check_codes(k, c.n_codes, floats_ok=True)  # fit passes the codes as floats holding integers
        if k.dim() != 2 or k.shape[1] != c.n_positions:
            raise ValueError(f"k must have shape (B, {c.n_positions}), got {tuple(k.shape)}")
        return k

    def _logits(self, k: Tensor, m: int) -> Tensor:
        """Logits of p_ψ(k_m | k_<m), shape (B, K)."""
        if m == 0:
            return self.first_logits.expand(k.shape[0], -1)
        one_hot = nn.functional.one_hot(k[:, :m], self.config.n_codes).flatten(1).to(self.first_logits.dtype)
        return self.conditionals[m - 1](one_hot)  # (B, K)

    def log_prob(self, k: Tensor) -> Tensor:
        """log p_ψ(k) = Σ_m log p_ψ(k_m | k_<m): k (B, M) -> (B,)."""
        k = self._check(k)
        terms = [torch.log_softmax(self._logits(k, m), -1).gather(1, k[:, m:m + 1]).squeeze(1)
                 for m in range(self.config.n_positions)]
        return torch.stack(terms, 0).sum(0)

    def loss(self, k: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """−log p_ψ(k) per code tuple (B,); ``generator`` unused."""
        return -self.log_prob(k)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator) -> Tensor:
        """n code tuples drawn position by position, k_m ~ p_ψ(k_m | k_<m), shape (n, M)."""
        n = check_count("n", n)
        check_generator(generator)
        k = torch.zeros(n, self.config.n_positions, dtype=torch.long)
        for m in range(self.config.n_positions):
            probs = torch.softmax(self._logits(k, m), -1)  # (n, K)
            k[:, m] = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        return k
