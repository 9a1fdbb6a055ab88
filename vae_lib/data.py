"""Data sets the book uses; nothing is downloaded.

* :func:`sample_mixture` — seed 000's example: an equal mixture of two unit-variance Gaussians centred
  at (−5, 3) and (5, 3). Its exact density :func:`mixture_log_density` lets the training chapter
  measure KL(p_data || p_model).
* :func:`load_digits_split` — scikit-learn's 8×8 handwritten digits (shipped inside scikit-learn),
  integer pixel levels 0…16, split once with ``train_test_split(test_size=0.2, random_state=0)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import Tensor

from ._checks import as_tensor, check_count, check_generator, check_last_dim

__all__ = [
    "DIGIT_LEVELS",
    "DIGIT_SHAPE",
    "MIXTURE_MEANS",
    "DigitsSplit",
    "load_digits_split",
    "mixture_log_density",
    "sample_mixture",
]

MIXTURE_MEANS = torch.tensor([[-5.0, 3.0], [5.0, 3.0]])
DIGIT_SHAPE = (8, 8)
DIGIT_LEVELS = 17  # pixel values 0, 1, …, 16


def sample_mixture(n: int, *, generator: torch.Generator) -> Tensor:
    """n points from ½ N((−5, 3), I) + ½ N((5, 3), I), shape (n, 2)."""
    n = check_count("n", n)
    check_generator(generator)
    component = torch.randint(0, 2, (n,), generator=generator)
    return MIXTURE_MEANS[component] + torch.randn(n, 2, generator=generator)


def mixture_log_density(x: Tensor) -> Tensor:
    """The exact log p_data(x) of the two-Gaussian mixture, x (N, 2) -> (N,)."""
    x = check_last_dim("x", as_tensor("x", x, min_ndim=1), 2)
    sq = ((x.unsqueeze(-2) - MIXTURE_MEANS.to(x.dtype)) ** 2).sum(-1)  # (..., 2 components)
    return torch.logsumexp(-0.5 * sq, dim=-1) - math.log(2.0) - math.log(2 * math.pi)


@dataclass(frozen=True)
class DigitsSplit:
    """The fixed train/test split of sklearn's digits; images flattened to 64 integer levels 0…16."""

    x_train: Tensor  # (1437, 64) float32 levels
    y_train: Tensor  # (1437,) int64 labels 0–9
    x_test: Tensor  # (360, 64)
    y_test: Tensor  # (360,)


@lru_cache(maxsize=1)
def load_digits_split() -> DigitsSplit:
    """sklearn's digits split with ``train_test_split(test_size=0.2, random_state=0)``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(digits.data, digits.target, test_size=0.2, random_state=0)
    as_x = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    as_y = lambda a: torch.as_tensor(a, dtype=torch.int64)  # noqa: E731
    return DigitsSplit(as_x(x_tr), as_y(y_tr), as_x(x_te), as_y(y_te))
