"""How much each latent dimension z_j tells about each true factor v_k (chapter 7, "Faces whose factors we know").

Codes are an (N, L) tensor, one row per image (typically the encoder means), and factors an (N, F) tensor of the
factors v that generated the images (:mod:`vae_lib.faces`).

* :func:`correlation_matrix` — Pearson ρ(z_j, v_k), (L, F);
* :func:`discretise` — equal-width histogram bins per column, as in the reference implementation of
  Locatello et al. (2019), which bins codes into 20 bins;
* :func:`mutual_information_matrix` — the plug-in mutual information I(z_j; v_k) in nats between the discretised
  columns, :func:`factor_entropies` — H(v_k) in nats;
* :func:`mutual_information_gap` — MIG (Chen et al., 2018, "Isolating Sources of Disentanglement in VAEs"):

      MIG = (1/F) Σ_k [I(z_{j(1)}; v_k) − I(z_{j(2)}; v_k)] / H(v_k),

  j(1), j(2) the dimensions with the largest and second-largest mutual information with v_k: 1 when each factor is
  captured by exactly one dimension, 0 when none is or when two dimensions share it equally;
* :func:`axis_factor_table` — the factor each dimension tracks most (largest |ρ|), to label phase-diagram axes.

Discretisation: a column with at most ``bins`` distinct values is already discrete and keeps its values (one level
per distinct value); any other column is cut into ``bins`` equal-width bins between its minimum and maximum. The
plug-in estimates are then exact for the empirical distribution of the levels: with counts n_ab of the pair (a, b),
n_a and n_b of each level alone, and N rows,

    I = Σ_ab (n_ab/N) log(N n_ab / (n_a n_b)),    H = Σ_a (n_a/N) log(N / n_a).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from ._checks import as_tensor, check_count

__all__ = [
    "AxisLabel",
    "MIGResult",
    "axis_factor_table",
    "correlation_matrix",
    "discretise",
    "factor_entropies",
    "mutual_information_gap",
    "mutual_information_matrix",
]

F64 = torch.float64


@dataclass(frozen=True)
class MIGResult:
    """The mutual information gap and the quantities it is made of (chapter 7)."""

    score: float  # MIG, the mean of per_factor
    per_factor: Tensor  # (F,) [I(z_{j(1)}; v_k) − I(z_{j(2)}; v_k)] / H(v_k)
    mi: Tensor  # (L, F) I(z_j; v_k) in nats
    entropy: Tensor  # (F,) H(v_k) in nats


class AxisLabel(NamedTuple):
    """Latent dimension j, the factor it tracks most, and their correlation ρ(z_j, v_k)."""

    dimension: int
    factor: str
    correlation: float


# ---------------------------------------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------------------------------------
def _check_table(name: str, value: object, min_rows: int = 1) -> Tensor:
    """value as an (N, D) float64 tensor with N >= min_rows and D >= 1."""
    t = as_tensor(name, value, ndim=2, dtype=F64)
    if t.shape[0] < min_rows or t.shape[1] == 0:
        raise ValueError(f"{name} must have shape (N, D) with N >= {min_rows} and D >= 1, got {tuple(t.shape)}")
    return t


def _check_pair(codes: object, factors: object, min_rows: int = 1) -> tuple[Tensor, Tensor]:
    """codes (N, L) and factors (N, F) with the same number of rows N."""
    z, v = _check_table("codes", codes, min_rows), _check_table("factors", factors, min_rows)
    if z.shape[0] != v.shape[0]:
        raise ValueError(
            f"codes and factors must have one row per image each, got {z.shape[0]} and {v.shape[0]} rows"
        )
    return z, v


# ---------------------------------------------------------------------------------------------------------
# correlation
# ---------------------------------------------------------------------------------------------------------
def correlation_matrix(codes: Tensor, factors: Tensor) -> Tensor:
    """Pearson ρ(z_j, v_k) = cov(z_j, v_k) / (sd(z_j) sd(v_k)) for codes (N, L), factors (N, F): (L, F) float64.

    A constant column has no linear association with anything: its correlations are reported as 0 (not NaN).
    """
    z, v = _check_pair(codes, factors, min_rows=2)
    zc, vc = z - z.mean(0), v - v.mean(0)  # (N, L), (N, F)
    z_norm, v_norm = zc.norm(dim=0), vc.norm(dim=0)  # (L,), (F,)
    denominator = z_norm[:, None] * v_norm[None, :]  # (L, F)
    rho = (zc.T @ vc) / denominator.clamp_min(torch.finfo(F64).tiny)  # (L, F)
    return torch.where(denominator > 0, rho.clamp(-1.0, 1.0), torch.zeros_like(rho))


def axis_factor_table(codes: Tensor, factors: Tensor, names: Sequence[str]) -> list[AxisLabel]:
    """For each latent dimension j: (j, name of the factor k maximising |ρ(z_j, v_k)|, that ρ), in order of j.

    Chapter 7 labels the axes of its phase diagrams with these names.
    """
    rho = correlation_matrix(codes, factors)  # (L, F)
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise TypeError("names must be a sequence of strings, one per factor column")
    if len(names) != rho.shape[1]:
        raise ValueError(f"names must hold one name per factor column ({rho.shape[1]}), got {len(names)}")
    best = rho.abs().argmax(dim=1)  # (L,)
    return [AxisLabel(j, names[int(k)], rho[j, k].item()) for j, k in enumerate(best)]


# ---------------------------------------------------------------------------------------------------------
# discretisation, entropy, mutual information
# ---------------------------------------------------------------------------------------------------------
def discretise(values: Tensor, bins: int = 20) -> Tensor:
    """Equal-width bin index 0 … bins − 1 of every entry of values (N, D), per column: (N, D) int64.

    Column d is cut at the edges e_i = min_d + i (max_d − min_d)/bins, i = 0 … bins; an entry in [e_i, e_{i+1}) gets
    bin i and the maximum gets bin − 1 — the bins of ``np.digitize(x, np.histogram(x, bins)[1][:-1]) − 1`` used by
    Locatello et al. (2019). A constant column is all in bin 0.
    """
    x = _check_table("values", values)
    bins = check_count("bins", bins, minimum=2)
    low, high = x.min(0).values, x.max(0).values  # (D,)
    step = (high - low) / bins  # (D,)
    inner_edges = torch.arange(1, bins, dtype=F64)[:, None] * step + low  # (bins − 1, D): e_1 … e_{bins−1}
    # the number of inner edges e_i <= x is the bin index; a constant column (all edges equal) stays in bin 0
    index = (x[None, :, :] >= inner_edges[:, None, :]).sum(0)  # (N, D)
    return torch.where(step > 0, index, torch.zeros_like(index))


def _levels(x: Tensor, bins: int) -> Tensor:
    """Integer levels 0 … bins − 1 of each column of x (N, D): the rank of its value among the column's distinct
    values if it has at most ``bins`` of them, else its equal-width bin. Returns (N, D) int64."""
    binned = discretise(x, bins)  # (N, D)
    columns = []
    for d in range(x.shape[1]):
        distinct, inverse = torch.unique(x[:, d], return_inverse=True)
        columns.append(inverse if len(distinct) <= bins else binned[:, d])
    return torch.stack(columns, dim=1)  # (N, D)


def _plug_in_entropy(levels: Tensor, n_levels: int) -> Tensor:
    """H = Σ_a (n_a/N) log(N/n_a) of each column of levels (N, D): (D,)."""
    n, d = levels.shape
    index = levels + n_levels * torch.arange(d)  # (N, D): column d's levels offset by d·n_levels
    counts = torch.bincount(index.reshape(-1), minlength=d * n_levels).reshape(d, n_levels).to(F64)  # (D, n_levels)
    terms = torch.where(counts > 0, counts / n * torch.log(n / counts.clamp_min(1)), torch.zeros_like(counts))
    return terms.sum(1)  # (D,)


def _plug_in_mutual_information(a: Tensor, b: Tensor, n_levels: int) -> Tensor:
    """I(a_j; b_k) = Σ (n_ab/N) log(N n_ab/(n_a n_b)) for levels a (N, L), b (N, F): (L, F), clamped at 0."""
    n, n_a_cols = a.shape
    n_b_cols = b.shape[1]
    pair = torch.arange(n_a_cols * n_b_cols).reshape(n_a_cols, n_b_cols)  # (L, F) index of each column pair
    index = (pair * n_levels + a[:, :, None]) * n_levels + b[:, None, :]  # (N, L, F)
    size = n_a_cols * n_b_cols * n_levels * n_levels
    joint = torch.bincount(index.reshape(-1), minlength=size).reshape(n_a_cols, n_b_cols, n_levels, n_levels)
    joint = joint.to(F64)  # (L, F, n_levels, n_levels) counts n_ab
    n_a, n_b = joint.sum(3, keepdim=True), joint.sum(2, keepdim=True)  # (L, F, n_levels, 1), (L, F, 1, n_levels)
    # integer counts below 2^53 are exact in float64: the ratio is exactly 1 where n_ab = n_a n_b / N
    ratio = n * joint / (n_a * n_b).clamp_min(1)  # (L, F, n_levels, n_levels)
    terms = torch.where(joint > 0, joint / n * torch.log(ratio.clamp_min(1e-300)), torch.zeros_like(joint))
    return terms.sum((2, 3)).clamp_min(0.0)  # (L, F): the exact value is a KL divergence, ≥ 0


def factor_entropies(factors: Tensor, bins: int = 20) -> Tensor:
    """Plug-in entropy H(v_k) in nats of each discretised factor column of factors (N, F): (F,) float64."""
    v = _check_table("factors", factors)
    bins = check_count("bins", bins, minimum=2)
    return _plug_in_entropy(_levels(v, bins), bins)


def mutual_information_matrix(codes: Tensor, factors: Tensor, bins: int = 20) -> Tensor:
    """Plug-in mutual information I(z_j; v_k) in nats between discretised columns, codes (N, L), factors (N, F).

    Returns (L, F) float64. Symmetric: swapping codes and factors transposes the result.
    """
    z, v = _check_pair(codes, factors)
    bins = check_count("bins", bins, minimum=2)
    return _plug_in_mutual_information(_levels(z, bins), _levels(v, bins), bins)  # levels (N, L) and (N, F)


def mutual_information_gap(codes: Tensor, factors: Tensor, bins: int = 20) -> MIGResult:
    """MIG = (1/F) Σ_k [I(z_{j(1)}; v_k) − I(z_{j(2)}; v_k)] / H(v_k) of codes (N, L ≥ 2) and factors (N, F).

    Every factor must vary (H(v_k) > 0), or its normalised gap is undefined.
    """
    z, v = _check_pair(codes, factors)
    if z.shape[1] < 2:
        raise ValueError(f"codes must have at least 2 columns (latent dimensions), got shape {tuple(z.shape)}")
    mi = mutual_information_matrix(z, v, bins)  # (L, F)
    entropy = factor_entropies(v, bins)  # (F,)
    if (entropy <= 0).any():
        k = int((entropy <= 0).nonzero()[0, 0])
        raise ValueError(f"factors column {k} is constant: its entropy is 0 and its normalised gap undefined")
    top2 = mi.topk(2, dim=0).values  # (2, F): largest and second-largest over the latent dimensions
    per_factor = (top2[0] - top2[1]) / entropy  # (F,)
    return MIGResult(score=per_factor.mean().item(), per_factor=per_factor, mi=mi, entropy=entropy)
