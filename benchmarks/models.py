"""Model benchmarks of the training chapter: held-out likelihood on the digits and on seed 000's mixture.

Usage: python benchmarks/models.py [--threads 1]      (prints a table, then JSON; not a timed test)

* digits: mean −log P_θ(x) of the 360 integer-valued test images (levels 0…16) of load_digits_split, in nats
  per image, importance-weighted with K = 1000; VAE with a 2-D latent and the categorical decoder over the 17
  levels (an exact distribution over integer images, so no dequantization is needed).
* mixture: mean over 10,000 fresh points of log p_true(x) − log p_θ(x), log p_θ from the importance-weighted
  bound with K = 1000: an estimate of KL(p_data || p_model) in nats; VAE with a 1-D latent, a learned two-component
  mixture prior p_ψ(z) (vae_lib.priors) and a Gaussian decoder with learned variance (its Jacobian for x_scale is
  included by vae_lib.evaluation.log_evidence), trained with a cosine learning-rate decay.

Seeds and epoch counts are fixed; train time is wall-clock and depends on the machine load (reported).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from vae_lib import VAE, VAEConfig, load_digits_split, mixture_log_density, sample_mixture
from vae_lib.evaluation import log_evidence, nll_nats_per_image
from vae_lib.priors import MixturePriorConfig, MixturePriorVAE
from vae_lib.train import TrainConfig, fit

K = 1000
MIXTURE_EPOCHS = 50
MIXTURE_LR_SCHEDULE = "cosine"


def digits() -> dict:
    split = load_digits_split()
    model = VAE(VAEConfig(latent_dim=2, likelihood="categorical", hidden=(256, 256)))
    start = time.perf_counter()
    fit(model, split.x_train, TrainConfig(epochs=60, progress=False))
    train_s = time.perf_counter() - start
    nll = nll_nats_per_image(model, split.x_test, K, generator=torch.Generator().manual_seed(0))
    return {"benchmark": "digits NLL (nats/image)", "value": round(nll, 2), "target": 100.0,
            "train_s": round(train_s, 1), "train_target_s": 30.0}


def mixture(seed: int = 0) -> dict:
    """The 1-D-latent VAE with a learned two-component mixture prior p_ψ(z) (vae_lib.priors), trained on the
    closed-form bound L̄ ≤ L; ``seed`` seeds the initial weights and the training generator (benchmark: 0)."""
    x_train = sample_mixture(10_000, generator=torch.Generator().manual_seed(0))
    x_test = sample_mixture(10_000, generator=torch.Generator().manual_seed(1))
    model = MixturePriorVAE(VAEConfig(data_dim=2, latent_dim=1, likelihood="gaussian", hidden=(64, 64), x_scale=5.0,
                                      seed=seed), MixturePriorConfig(n_components=2))
    start = time.perf_counter()
    fit(model, x_train, TrainConfig(epochs=MIXTURE_EPOCHS, batch_size=256, learning_rate=3e-3, seed=seed,
                                    lr_schedule=MIXTURE_LR_SCHEDULE, progress=False))
    train_s = time.perf_counter() - start
    log_p_model = log_evidence(model, x_test, K, generator=torch.Generator().manual_seed(0))  # (N,)
    kl = (mixture_log_density(x_test) - log_p_model).mean().item()
    return {"benchmark": "mixture KL(p_data||p_model) (nats)", "value": round(kl, 4), "target": 0.02,
            "train_s": round(train_s, 1), "train_target_s": 10.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    results = [digits(), mixture()]
    print(f"{'benchmark':<38} {'value':>8} {'target':>8} {'train s':>8} {'target s':>9}")
    for r in results:
        print(f"{r['benchmark']:<38} {r['value']:>8} {r['target']:>8} {r['train_s']:>8} {r['train_target_s']:>9}")
    print(json.dumps({"threads": args.threads, "cpus": os.cpu_count(), "loadavg_before": load_before,
                      "loadavg_after": os.getloadavg(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
