"""Execute every chapter notebook on one thread and report its wall time and the kernel's peak memory.

Usage: python benchmarks/notebooks.py [--threads 1] [book/*.ipynb ...]   (prints a table, then JSON)

Each notebook runs in a fresh kernel with OMP_NUM_THREADS/MKL_NUM_THREADS set (torch follows them), the
way a reader on a one-CPU Binder runs it. Peak memory is the largest resident set size of the kernel
process, sampled every 50 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def run(path: Path, threads: int) -> dict:
    nb = nbformat.read(path, as_version=4)
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    client = NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            km = client.km
            pid = getattr(getattr(km, "provisioner", None), "pid", None) if km is not None else None
            if pid:
                try:
                    peak = max(peak, psutil.Process(pid).memory_info().rss)
                except psutil.NoSuchProcess:
                    pass
            time.sleep(0.05)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    start = time.perf_counter()
    try:
        client.execute()
    finally:
        elapsed = time.perf_counter() - start
        done.set()
        watcher.join()
    return {"notebook": str(path.relative_to(ROOT)), "seconds": round(elapsed, 1), "peak_rss_mb": round(peak / 2**20)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    paths = [p.resolve() for p in args.notebooks] or sorted((ROOT / "book").glob("*.ipynb"))
    results = [run(p, args.threads) for p in paths]
    print(f"{'notebook':<45} {'seconds':>8} {'peak RSS (MB)':>14}")
    for r in results:
        print(f"{r['notebook']:<45} {r['seconds']:>8} {r['peak_rss_mb']:>14}")
    print(json.dumps({"threads": args.threads, "cpus": os.cpu_count(), "notebooks": results}, indent=2))


if __name__ == "__main__":
    main()
