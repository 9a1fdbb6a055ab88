"""Train VAEs with the K-sample ELBO and with the importance-weighted bound L_K on the digits, print Burda et al.'s
table, and (with --save) write chapter 8's checkpoints.

Usage (from the repository root):

    python tools/train_iwae.py --save             # chapter 8's five models, into book/checkpoints/
    python tools/train_iwae.py --save --out /tmp/ck   # somewhere else (e.g. to check that a rerun is bit-identical)
    python tools/train_iwae.py --only digits-elbo-k1  # one row
    python tools/train_iwae.py --epochs 20 --eval-k 200 --dreg   # a quicker, rougher table, plus DReG rows

The rows are the specs of ``vae_lib.iwae_models.IWAE_MODELS``: the ELBO with K = 1, 5, 50 samples (the average of K
single-sample ELBOs, Burda et al.'s "VAE" rows) and L_K with K = 5 and 50 (IWAE gradients; with --dreg also DReG
encoder gradients, printed only). Each is the same VAE (sklearn's digits, categorical decoder over the 17 pixel
levels, L = 8 latent dimensions) trained from the same initial weights with fixed seeds and a fixed number of epochs,
on ONE thread (torch's results can depend on the number of threads), so a rerun on the same machine reproduces the
checkpoints bit for bit (another kind of CPU may round differently: PyTorch's kernels differ between instruction sets).
The table gives the held-out log-likelihood log p_θ(x) of the 360 test images estimated with K = 1000 importance
samples (``vae_lib.evaluation.log_evidence``; nats per image), the held-out ELBO, the number of active units
(A_j = Cov_x(E_q[z_j]) > 10⁻², ``vae_lib.iwae.active_units``) and the training time. With --save each model's
weights are written in float16 and the script prints the file's SHA-256 digest and the reference number a loaded
model must reproduce, and whether both match the values pinned in ``vae_lib/iwae_models.py`` (update them there if
you retrain on purpose). Settings other than the specs' (--epochs, --latent, ...) cannot be saved.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

os.environ["OMP_NUM_THREADS"] = "1"  # before torch is imported

import torch  # noqa: E402

from vae_lib.checkpoint import CHECKPOINT_DIR, save_checkpoint  # noqa: E402
from vae_lib.data import load_digits_split  # noqa: E402
from vae_lib.evaluation import log_evidence  # noqa: E402
from vae_lib.iwae import active_units  # noqa: E402
from vae_lib.iwae_models import IWAE_MODELS  # noqa: E402
from vae_lib.trained import reference_log_likelihood  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(IWAE_MODELS), action="append", help="train only this model")
    parser.add_argument("--save", action="store_true", help="write the checkpoints (float16) and check their digests")
    parser.add_argument("--out", type=Path, default=CHECKPOINT_DIR, help="directory for the checkpoints")
    parser.add_argument("--latent", type=int, help="latent dimensions L (default: the specs', 8)")
    parser.add_argument("--hidden", type=int, nargs="+", help="hidden layer sizes (default: the specs', 128)")
    parser.add_argument("--epochs", type=int, help="epochs (default: the specs', 60)")
    parser.add_argument("--dreg", action="store_true", help="also train each IWAE row with DReG encoder gradients")
    parser.add_argument("--eval-k", type=int, default=1000, help="importance samples for held-out log p(x)")
    parser.add_argument("--progress", action="store_true", help="show a progress bar per model")
    args = parser.parse_args(argv)
    overrides = {key: value for key, value in (("latent_dim", args.latent), ("epochs", args.epochs),
                                               ("hidden", tuple(args.hidden) if args.hidden else None))
                 if value is not None}
    if args.save and overrides:
        parser.error("--save writes the specs' models: drop --latent/--hidden/--epochs")
    torch.set_num_threads(1)
    if args.save:
        args.out.mkdir(parents=True, exist_ok=True)

    data = load_digits_split()
    specs = [dataclasses.replace(IWAE_MODELS[name], **overrides) for name in args.only or list(IWAE_MODELS)]
    rows = [(spec, False) for spec in specs]
    if args.dreg:
        rows += [(spec, True) for spec in specs if spec.objective == "iwae"]
    first = specs[0]
    print(f"digits: {data.x_train.shape[0]} training, {data.x_test.shape[0]} test images; L = {first.latent_dim}, "
          f"hidden {first.hidden}, {first.epochs} epochs, batch {first.batch_size}, lr {first.learning_rate:g}, "
          f"seed {first.seed}, log p(x) with K = {args.eval_k}, 1 thread")
    header = f"{'objective':<18} {'test log p(x)':>14} {'test ELBO':>10} {'active units':>13} {'train s':>8}"
    print(header)
    print("-" * len(header))
    start_all = time.perf_counter()
    all_match = True
    for spec, dreg in rows:
        t0 = time.perf_counter()
        if dreg:
            from vae_lib.train import fit

            model = spec.build()
            fit(model, data.x_train, dataclasses.replace(spec.train_config(progress=args.progress), dreg=True))
        else:
            model, _ = spec.train(data.x_train, progress=args.progress)
        seconds = time.perf_counter() - t0
        if args.save:
            path = args.out / spec.file_name
            digest = save_checkpoint(model, path, dtype=spec.checkpoint_dtype)
            model = dataclasses.replace(spec, sha256=digest).load(args.out)  # the float16 weights
        with torch.no_grad():
            log_px = log_evidence(model, data.x_test, args.eval_k,
                                  generator=torch.Generator().manual_seed(spec.seed + 1)).mean().item()
            elbo = model.elbo(data.x_test, 100,
                              generator=torch.Generator().manual_seed(spec.seed + 2)).mean().item()
            count, _ = active_units(model.encode(data.x_test)[0])
        name = spec.label + (" DReG" if dreg else "")
        print(f"{name:<18} {log_px:>14.2f} {elbo:>10.2f} {count:>8d} / {spec.latent_dim:<3d} {seconds:>8.1f}",
              flush=True)
        if args.save:
            reference = reference_log_likelihood(model, data.x_test)
            match = digest == spec.sha256 and round(reference, 3) == round(spec.reference, 3)
            all_match &= match
            print(f"  {path} ({path.stat().st_size / 1e6:.2f} MB), sha256 {digest}")
            print(f"  reference {reference:.4f} nats (mean log p(x | z = mu(x)), first 64 test digits); matches the "
                  f"pinned digest and reference in vae_lib/iwae_models.py: {match}", flush=True)
    print(f"total {time.perf_counter() - start_all:.0f} s")
    return 0 if all_match else 1


if __name__ == "__main__":
    sys.exit(main())
