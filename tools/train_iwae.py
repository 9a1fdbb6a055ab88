"""Train VAEs with the ELBO and with the importance-weighted bound L_K on the digits, and print Burda et al.'s table.

Usage (from the repository root):

    python tools/train_iwae.py                       # the default settings (see --help)
    python tools/train_iwae.py --epochs 20 --eval-k 200   # a quicker, rougher table

For each row (the ELBO with one sample, then L_K with K = 5 and 50 samples, IWAE gradients, and with --dreg also DReG
encoder gradients) the same VAE (sklearn's digits, categorical decoder over the 17 pixel levels, L latent
dimensions) is trained from the same initial weights with fixed seeds and a fixed number of epochs, on ONE thread.
The table gives the held-out log-likelihood log p_θ(x) of the 360 test images estimated with K = 1000 importance
samples (``vae_lib.evaluation.log_evidence``; nats per image), the held-out ELBO, the number of active units
(A_j = Cov_x(E_q[z_j]) > 10⁻², ``vae_lib.iwae.active_units``) and the training time. Nothing is written to disk.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ["OMP_NUM_THREADS"] = "1"  # before torch is imported

import torch  # noqa: E402

from vae_lib.data import load_digits_split  # noqa: E402
from vae_lib.evaluation import log_evidence  # noqa: E402
from vae_lib.iwae import active_units  # noqa: E402
from vae_lib.models import VAE, VAEConfig  # noqa: E402
from vae_lib.train import TrainConfig, fit  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latent", type=int, default=8, help="latent dimensions L")
    parser.add_argument("--hidden", type=int, nargs="+", default=[128], help="hidden layer sizes")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--ks", type=int, nargs="+", default=[5, 50], help="K of the IWAE rows")
    parser.add_argument("--dreg", action="store_true", help="also train each IWAE row with DReG encoder gradients")
    parser.add_argument("--eval-k", type=int, default=1000, help="importance samples for held-out log p(x)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    data = load_digits_split()
    rows = [("VAE (ELBO)", dict(objective="elbo"))]
    for k in args.ks:
        rows.append((f"IWAE K={k}", dict(objective="iwae", k=k)))
        if args.dreg:
            rows.append((f"IWAE K={k} DReG", dict(objective="iwae", k=k, dreg=True)))
    print(f"digits: {data.x_train.shape[0]} training, {data.x_test.shape[0]} test images; L = {args.latent}, "
          f"hidden {tuple(args.hidden)}, {args.epochs} epochs, batch {args.batch_size}, lr {args.lr:g}, "
          f"seed {args.seed}, log p(x) with K = {args.eval_k}, 1 thread")
    header = f"{'objective':<18} {'test log p(x)':>14} {'test ELBO':>10} {'active units':>13} {'train s':>8}"
    print(header)
    print("-" * len(header))
    start_all = time.perf_counter()
    for name, objective in rows:
        model = VAE(VAEConfig(latent_dim=args.latent, hidden=tuple(args.hidden), seed=args.seed))
        config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr, seed=args.seed,
                             progress=False, **objective)
        t0 = time.perf_counter()
        fit(model, data.x_train, config)
        seconds = time.perf_counter() - t0
        with torch.no_grad():
            log_px = log_evidence(model, data.x_test, args.eval_k,
                                  generator=torch.Generator().manual_seed(args.seed + 1)).mean().item()
            elbo = model.elbo(data.x_test, 100, generator=torch.Generator().manual_seed(args.seed + 2)).mean().item()
            count, _ = active_units(model.encode(data.x_test)[0])
        print(f"{name:<18} {log_px:>14.2f} {elbo:>10.2f} {count:>8d} / {args.latent:<3d} {seconds:>8.1f}", flush=True)
    print(f"total {time.perf_counter() - start_all:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
