"""vae_lib.train: the cosine learning-rate schedule of TrainConfig(lr_schedule="cosine"). Tiny models only."""

from __future__ import annotations

import math

import pytest
import torch

from vae_lib.data import sample_mixture
from vae_lib.models import VAE, VAEConfig
from vae_lib.train import TrainConfig, fit


def tiny() -> VAE:
    return VAE(VAEConfig(data_dim=2, latent_dim=1, hidden=(8,), likelihood="gaussian", x_scale=5.0))


def manual_fit(model: VAE, x: torch.Tensor, epochs: int, batch_size: int, lr: float, cosine: bool) -> None:
    """The plain −ELBO loop with Adam, the step size set before step s to η·½(1 + cos(π s / S)) when ``cosine``."""
    g = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = x.shape[0]
    total = epochs * math.ceil(n / batch_size)
    step = 0
    for _ in range(epochs):
        order = torch.randperm(n, generator=g)
        for s in range(0, n, batch_size):
            if cosine:
                for group in opt.param_groups:
                    group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / total))
            loss = model.loss(x[order[s:s + batch_size]], generator=g).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_fit_follows_the_schedule(schedule):
    x = sample_mixture(100, generator=torch.Generator().manual_seed(1))  # 100 / 32: a short last batch
    a, b = tiny(), tiny()
    fit(a, x, TrainConfig(epochs=3, batch_size=32, learning_rate=1e-2, lr_schedule=schedule, progress=False))
    manual_fit(b, x, 3, 32, 1e-2, cosine=schedule == "cosine")
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6)


def test_cosine_differs_from_constant():
    x = sample_mixture(64, generator=torch.Generator().manual_seed(2))
    a, b = tiny(), tiny()
    fit(a, x, TrainConfig(epochs=2, batch_size=16, learning_rate=1e-2, progress=False))
    fit(b, x, TrainConfig(epochs=2, batch_size=16, learning_rate=1e-2, lr_schedule="cosine", progress=False))
    assert any(not torch.allclose(pa, pb) for pa, pb in zip(a.parameters(), b.parameters(), strict=True))


def test_unknown_schedule_raises():
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="linear")
