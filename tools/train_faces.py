"""Train chapter 7's face VAEs and write their checkpoints (book/checkpoints/*.pt).

Usage (from the repository root):

    python tools/train_faces.py                 # all models, into book/checkpoints/
    python tools/train_faces.py --out /tmp/ck   # somewhere else (e.g. to check that a rerun is bit-identical)
    python tools/train_faces.py --only faces-2d

Every model is trained with fixed seeds, a fixed number of epochs and ONE thread (torch's results can depend on the
number of threads), so a rerun on the same machine reproduces the files bit for bit (another kind of CPU may round
differently: PyTorch's kernels differ between instruction sets). For each model the script prints the checkpoint's
SHA-256 digest, the reference number a loaded model must reproduce, and whether both match the values pinned in
``vae_lib/face_models.py`` (update them there if you retrain on purpose).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ["OMP_NUM_THREADS"] = "1"  # before torch is imported

import torch  # noqa: E402

from vae_lib.checkpoint import save_checkpoint  # noqa: E402
from vae_lib.face_models import CHECKPOINT_DIR, FACE_MODELS  # noqa: E402
from vae_lib.faces import load_faces_split  # noqa: E402
from vae_lib.trained import reference_log_likelihood  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=CHECKPOINT_DIR, help="directory for the checkpoints")
    parser.add_argument("--only", choices=sorted(FACE_MODELS), action="append", help="train only this model")
    parser.add_argument("--progress", action="store_true", help="show a progress bar per model")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    faces = load_faces_split()
    all_match = True
    for name in args.only or list(FACE_MODELS):
        spec = FACE_MODELS[name]
        start = time.perf_counter()
        model, history = spec.train(faces.train.images, progress=args.progress)
        path = args.out / spec.file_name
        digest = save_checkpoint(model, path, dtype=spec.checkpoint_dtype)
        reference = reference_log_likelihood(model, faces.test.images)
        match = digest == spec.sha256 and round(reference, 3) == round(spec.reference, 3)
        all_match &= match
        print(f"{name}: {path} ({path.stat().st_size / 1e6:.2f} MB), {time.perf_counter() - start:.0f} s, "
              f"last-epoch ELBO {history.elbo[-1]:.2f} nats")
        print(f"  sha256    {digest}")
        print(f"  reference {reference:.4f} nats (mean log p(x | z = mu(x)), first 64 test faces)")
        print(f"  matches the pinned digest and reference in vae_lib/face_models.py: {match}", flush=True)
    return 0 if all_match else 1


if __name__ == "__main__":
    sys.exit(main())
