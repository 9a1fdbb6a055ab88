"""Update latency of every chapter's live explorer, measured in a real Jupyter kernel on one thread.

For each chapter cell tagged ``remove-output`` that builds a live explorer (``live = <explorer builder>(...).live()``),
the chapter's cells are executed with nbclient up to and including that cell, so the explorer is the chapter's own
(over its trained model) and its widget comms are open; then live_probe.py runs in the same kernel and times
``n_moves`` control moves (see its docstring).

Usage: python benchmarks/live.py [--moves 200] [book/*.ipynb ...]     (run.py calls :func:`measure`)
"""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
PROBE = Path(__file__).with_name("live_probe.py")
LIVE_CELL = re.compile(r"^(\w+)\s*=\s*(?:[\w.]*?(\w*explorer)\()?.*?\.live\(\)", re.MULTILINE | re.DOTALL)


def live_cells(nb: nbformat.NotebookNode) -> list[tuple[int, str, str]]:
    """(cell index, kind, variable) of each cell that builds a live explorer as ``name = ....live()``."""
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or "remove-output" not in cell.metadata.get("tags", []):
            continue
        match = LIVE_CELL.search(cell.source)
        if match:
            kind = match.group(2).removesuffix("_explorer") if match.group(2) else f"cell {index}"
            found.append((index, kind, match.group(1)))
    return found


def _stdout(cell: nbformat.NotebookNode) -> str:
    errors = [o for o in cell.outputs if o.output_type == "error"]
    if errors:
        raise RuntimeError(f"probe failed: {errors[0].ename}: {errors[0].evalue}")
    return "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")


def measure_chapter(path: Path, n_moves: int, threads: int = 1, profile: bool = False) -> list[dict]:
    """Run the chapter up to each live-explorer cell in one kernel and time that explorer's updates."""
    nb = nbformat.read(path, as_version=4)
    targets = live_cells(nb)
    if not targets:
        return []
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    client = NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    results, done = [], 0
    with client.setup_kernel():
        for index, kind, variable in targets:
            for k in range(done, index + 1):
                client.execute_cell(nb.cells[k], k)
            done = index + 1
            source = (PROBE.read_text(encoding="utf-8") + f"\ntorch.set_num_threads({threads})\n"
                      f"print(json.dumps(probe({variable}, {kind!r}, {n_moves}, profile={profile})))\n")
            probe_cell = nbformat.v4.new_code_cell(source)
            nb.cells.append(probe_cell)  # after every chapter cell, so the chapter's own indices stay put
            client.execute_cell(probe_cell, len(nb.cells) - 1)
            result = json.loads(_stdout(probe_cell).strip().splitlines()[-1])
            results.append({"notebook": str(path.relative_to(ROOT)), "cell": index, "kind": kind, **result})
    return results


def measure(paths: list[Path], n_moves: int = 200, threads: int = 1, profile: bool = False) -> list[dict]:
    return [r for p in paths for r in measure_chapter(p, n_moves, threads, profile)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--moves", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of the moves (slows them)")
    args = parser.parse_args()
    paths = [p.resolve() for p in args.notebooks] or sorted((ROOT / "book").glob("*.ipynb"))
    results = measure(paths, args.moves, args.threads, args.profile)
    for r in results:
        if "profile" in r:
            print(f"--- cProfile of {r['notebook']} ({r['kind']}) ---\n{r.pop('profile')}")
        print(f"{r['notebook']:<40} {r['kind']:<10} median {r['median_ms']:7.2f} ms  p95 {r['p95_ms']:7.2f} ms")
    print(json.dumps([{k: v for k, v in r.items() if k != "times_ms"} for r in results], indent=2))


if __name__ == "__main__":
    main()
