"""The β-VAE read as a rate–distortion trade-off (the training chapter).

The ELBO splits into two numbers per example (Alemi et al., 2018):

* the **rate** R(x) = KL(q_φ(z|x) || p(z)), in nats: how much the code z says about x beyond the prior;
* the **distortion** D(x) = −E_{q_φ(z|x)}[log p_θ(x|z)], in nats: how badly z reconstructs x.

Then L(θ, φ; x) = −(D(x) + R(x)), and the β-weighted objective of ``vae_lib.train`` minimises D + β R:
β > 1 buys a lower rate with a higher distortion (Higgins et al., 2017), and because R ≥ 0 the β-objective
−(D + β R) is then an even looser lower bound on log p_θ(x) than the ELBO.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ._checks import check_count, check_generator
from .gaussian import sample
from .models import VAE

__all__ = ["RateDistortion", "rate_distortion"]


@dataclass(frozen=True)
class RateDistortion:
    """Per-example rate R(x) and distortion D(x) in nats, each (B,); ``elbo`` = −(D + R)."""

    rate: Tensor  # (B,)
    distortion: Tensor  # (B,)

    @property
    def elbo(self) -> Tensor:
        """L(θ, φ; x) = −(D(x) + R(x)), (B,)."""
        return -(self.distortion + self.rate)

    def objective(self, beta: float) -> Tensor:
        """The β-objective −(D(x) + β R(x)) that β-weighted training maximises, (B,)."""
        if not beta >= 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        return -(self.distortion + beta * self.rate)


def rate_distortion(model: VAE, x: Tensor, n_samples: int = 16, *, generator: torch.Generator) -> RateDistortion:
    """R(x) in closed form and D(x) by Monte Carlo with ``n_samples`` draws z ~ q_φ(z|x), for each row of x (B, D).

    The draws are the same as :meth:`vae_lib.VAE.elbo` makes with the same generator, so
    ``rate_distortion(...).elbo`` equals ``model.elbo(x, n_samples, generator=...)``.
    """
    if not isinstance(model, VAE):
        raise TypeError(f"model must be a vae_lib.VAE, got {type(model).__name__}")
    n_samples = check_count("n_samples", n_samples)
    check_generator(generator)
    with torch.no_grad():
        q = model.posterior(x)
        z = sample(q, n_samples, generator=generator)  # (K, B, L)
        distortion = -model.log_likelihood(x, z).mean(0)  # (B,)
        rate = model.kl_per_dimension(x).sum(-1)  # (B,)
    return RateDistortion(rate=rate, distortion=distortion)
