"""How fast the book runs for a reader, and how fast its widgets answer: every benchmark in one table.

Usage:
    python benchmarks/run.py [--html DIR | --skip-build] [--only SECTION ...] [--threads 1]

Sections (all by default, in this order):
  build      the whole book built cold (every chapter executed): ``jupyter-book build`` into a fresh --build-dir
  notebooks  each chapter executed in a fresh kernel on one thread: wall time and the kernel's peak RSS
  live       each live explorer's update latency in the chapter's own kernel (live.py, live_probe.py)
  static     each static explorer's update time in headless Chromium (browser.py)
  pages      each built page's size and load time in headless Chromium (browser.py)
  models     the training chapter's digits and mixture benchmarks (models.py)

The static and pages sections need a built book: the one the build section makes, or ``--html DIR`` (which skips
the build), or with ``--skip-build`` the one left in --build-dir by an earlier run. Prints one table (measured
value, budget, pass/fail) and then JSON; the JSON, with every raw sample and the machine's description, is also
written to benchmarks/results/latest.json (or --json PATH). See benchmarks/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

SECTIONS = ["build", "notebooks", "live", "static", "pages", "models"]
BUDGETS = {
    "build_s": 240.0,  # whole book, cold
    "notebook_s": 45.0,  # per chapter, one thread
    "notebook_rss_mib": 1536.0,  # 1.5 GiB
    "live_median_ms": 15.0,
    "live_p95_ms": 40.0,
    "static_median_ms": 16.0,  # median time from the input event to the drawn frame
    "static_p95_ms": 33.0,
    "page_weight_kib": 3.5 * 1024,  # a chapter page, cold, uncompressed: everything it needs once scrolled through
    "first_figure_ms": 1000.0,  # navigation start to the first figure (or explorer) drawn, page opened at it
    "scroll_to_figure_ms": 500.0,  # every figure drawn within this of being scrolled to
}


# ----------------------------------------------------------------------------------------------- the machine

def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else "unknown"


def _plotly_js_version() -> str:
    import plotly

    head = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_text(encoding="utf-8")[:200]
    match = re.search(r"plotly\.js v([\d.]+)", head)
    return match.group(1) if match else "unknown"


def machine() -> dict:
    import psutil

    versions = {"python": platform.python_version()}
    for package in ("torch", "numpy", "plotly", "ipywidgets", "ipykernel", "nbclient", "jupyter-book", "playwright"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    versions["plotly.js"] = _plotly_js_version()
    ram_gib = round(psutil.virtual_memory().total / 2**30, 1)
    return {"cpus": os.cpu_count(), "cpu_model": _cpu_model(), "ram_gib": ram_gib, "platform": platform.platform(),
            "versions": versions}


# ----------------------------------------------------------------------------------------------- sections

def build_book(build_dir: Path, threads: int) -> dict:
    """A cold build of the whole book (every notebook executed): the wall time of ``jupyter-book build``."""
    shutil.rmtree(build_dir / "_build", ignore_errors=True)
    shutil.rmtree(build_dir / "jupyter_execute", ignore_errors=True)
    build_dir.mkdir(parents=True, exist_ok=True)
    jb = shutil.which("jupyter-book") or str(Path(sys.executable).parent / "jupyter-book")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    start = time.perf_counter()
    proc = subprocess.run([jb, "build", str(ROOT), "--path-output", str(build_dir), "-W", "-n", "--keep-going"],
                          capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    log = build_dir / "build.log"
    log.write_text(proc.stdout + "\n" + proc.stderr, encoding="utf-8")
    return {"seconds": round(seconds, 1), "returncode": proc.returncode, "threads": threads, "log": str(log),
            "html": str(build_dir / "_build" / "html")}


def _chapters() -> list[Path]:
    return sorted((ROOT / "book").glob("*.ipynb"))


def _failure(path: Path, error: Exception) -> dict:
    """A chapter that could not be measured (e.g. a cell raised): reported as a failed row, the run goes on."""
    return {"notebook": str(path.relative_to(ROOT)), "error": f"{type(error).__name__}: {str(error)[-500:]}"}


def notebooks(threads: int) -> list[dict]:
    from notebooks import run

    results = []
    for path in _chapters():
        try:
            results.append(run(path, threads))
        except Exception as error:  # recorded in the table as a failure
            results.append(_failure(path, error))
    return results


def live(threads: int, moves: int, profile: bool) -> list[dict]:
    from live import measure_chapter

    results = []
    for path in _chapters():
        try:
            results += measure_chapter(path, moves, threads, profile)
        except Exception as error:  # recorded in the table as a failure
            results.append({**_failure(path, error), "kind": "?"})
    return results


def browser_sections(html: Path, wanted: list[str], moves: int, loads: int) -> dict:
    import browser

    out = {}
    with browser.serve(html) as base, browser.chromium() as chromium:
        out["chromium"] = chromium.version
        pages = browser.pages_of(html)
        if "static" in wanted:
            out["static"] = browser.static_explorers(chromium, base, pages, moves)
        if "pages" in wanted:
            out["pages"] = browser.page_loads(chromium, base, html, pages, loads)
    return out


def models(threads: int) -> list[dict]:
    import models as model_benchmarks
    import torch

    torch.set_num_threads(threads)
    return [model_benchmarks.digits(), model_benchmarks.mixture()]


# ----------------------------------------------------------------------------------------------- the table

def _row(section: str, item: str, metric: str, value: float | int | None, budget: float | None = None,
         unit: str = "", at_most: bool = False) -> dict:
    """One table row; it passes when value < budget ("under"), or value ≤ budget with ``at_most`` (targets)."""
    if value is None:
        status = "FAIL"
    elif budget is None:
        status = "info"
    else:
        status = "pass" if (value <= budget if at_most else value < budget) else "FAIL"
    return {"section": section, "item": item, "metric": metric, "value": value, "unit": unit, "budget": budget,
            "status": status}


def _short(path: str) -> str:
    return Path(path).stem


def table_rows(results: dict) -> list[dict]:
    rows = []
    if "build" in results:
        b = results["build"]
        ok = b["returncode"] == 0
        rows.append(_row("build", "whole book, cold", "wall time" + ("" if ok else " (build FAILED)"),
                         b["seconds"] if ok else None, BUDGETS["build_s"], "s"))
    for r in results.get("notebooks", []):
        if "error" in r:
            rows.append(_row("notebooks", _short(r["notebook"]), "ERROR: " + r["error"], None))
            continue
        rows.append(_row("notebooks", _short(r["notebook"]), "wall time, 1 thread", r["seconds"],
                         BUDGETS["notebook_s"], "s"))
        rows.append(_row("notebooks", _short(r["notebook"]), "kernel peak RSS", r["peak_rss_mb"],
                         BUDGETS["notebook_rss_mib"], "MiB"))
    for r in results.get("live", []):
        if "error" in r:
            rows.append(_row("live", _short(r["notebook"]), "ERROR: " + r["error"], None))
            continue
        item = f"{_short(r['notebook'])} {r['kind']}"
        rows.append(_row("live", item, f"update median ({r['moves']} moves)", round(r["median_ms"], 2),
                         BUDGETS["live_median_ms"], "ms"))
        rows.append(_row("live", item, "update p95", round(r["p95_ms"], 2), BUDGETS["live_p95_ms"], "ms"))
        rows.append(_row("live", item, "kernel CPU per update, median", round(r["cpu_median_ms"], 2), None, "ms"))
    for r in results.get("static", []):
        item = f"{_short(r['page'])} {r['kind']} #{r['index']}"
        rows.append(_row("static", item, f"painted median ({r['moves']} moves)", r["painted"]["median_ms"],
                         BUDGETS["static_median_ms"], "ms"))
        rows.append(_row("static", item, "painted p95", r["painted"]["p95_ms"], BUDGETS["static_p95_ms"], "ms"))
        rows.append(_row("static", item, "DOM redrawn median", r["update"]["median_ms"], None, "ms"))
        rows.append(_row("static", item, "main-thread CPU per move, median", r["main_thread_cpu"]["median_ms"],
                         None, "ms"))
    for r in results.get("pages", []):
        item = _short(r["page"])
        rows.append(_row("pages", item, "HTML size", round(r["html_bytes"] / 1024, 1), None, "KiB"))
        chapter = "/book/0" in f"/{r['page']}"
        rows.append(_row("pages", item, f"transferred at load, cold ({r['requests']} requests)",
                         round(r["transfer_bytes"] / 1024, 1), None, "KiB"))
        rows.append(_row("pages", item, f"page weight, scrolled through ({r['page_weight_requests']} requests)",
                         round(r["page_weight_bytes"] / 1024, 1), BUDGETS["page_weight_kib"] if chapter else None,
                         "KiB", at_most=True))
        rows.append(_row("pages", item, f"first contentful paint, median of {r['loads']}", r["first_paint_ms"], None,
                         "ms"))
        rows.append(_row("pages", item, f"load event, median of {r['loads']}", r["load_ms"], None, "ms"))
        if r["figures"]:
            rows.append(_row("pages", item, f"first figure drawn (page opened at it), median of {r['loads']}",
                             r["first_figure_ms"], BUDGETS["first_figure_ms"], "ms", at_most=True))
            rows.append(_row("pages", item, f"scroll to each of {r['figures']} figures: slowest to draw",
                             r["scroll_to_figure_max_ms"], BUDGETS["scroll_to_figure_ms"], "ms", at_most=True))
        if r.get("explorers"):
            rows.append(_row("pages", item, f"first explorer drawn (page opened at it), median of {r['loads']}",
                             r["first_explorer_ms"], BUDGETS["first_figure_ms"], "ms", at_most=True))
    for r in results.get("models", []):
        name = r["benchmark"].split(" ")[0]
        rows.append(_row("models", name, r["benchmark"], r["value"], r["target"], at_most=True))
        rows.append(_row("models", name, "train time", r["train_s"], r["train_target_s"], "s", at_most=True))
    return rows


def format_table(rows: list[dict]) -> str:
    header = f"{'section':<10} {'item':<36} {'metric':<42} {'value':>10} {'budget':>9}  status"
    lines = [header, "-" * len(header)]
    for r in rows:
        value = "—" if r["value"] is None else f"{r['value']:g}"
        budget = "" if r["budget"] is None else f"{r['budget']:g}"
        unit = f" {r['unit']}" if r["unit"] else ""
        lines.append(f"{r['section']:<10} {r['item'][:36]:<36} {r['metric'][:42]:<42} {value + unit:>10} "
                     f"{budget:>9}  {r['status']}")
    return "\n".join(lines)


def _without_samples(obj):
    """The JSON printed to the terminal: everything but the raw per-move samples and profiles."""
    if isinstance(obj, dict):
        return {k: _without_samples(v) for k, v in obj.items() if k not in ("times_ms", "cpu_ms", "samples", "profile")}
    if isinstance(obj, list):
        return [_without_samples(v) for v in obj]
    return obj


# ----------------------------------------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--html", type=Path, help="an existing built book (its _build/html folder): no build")
    parser.add_argument("--skip-build", action="store_true", help="reuse the book left in --build-dir")
    parser.add_argument("--build-dir", type=Path, default=Path("/tmp/bench_build"),
                        help="where the build section builds (--path-output); default /tmp/bench_build")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, metavar="SECTION", help=f"any of {SECTIONS}")
    parser.add_argument("--threads", type=int, default=1, help="torch/OpenMP threads everywhere (default 1)")
    parser.add_argument("--live-moves", type=int, default=200)
    parser.add_argument("--static-moves", type=int, default=50)
    parser.add_argument("--page-loads", type=int, default=3)
    parser.add_argument("--profile-live", action="store_true", help="also cProfile the live updates (slows them)")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "latest.json")
    args = parser.parse_args()

    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)
    wanted = [s for s in SECTIONS if not args.only or s in args.only]
    if args.html or args.skip_build:
        wanted = [s for s in wanted if s != "build"]
    report = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "machine": machine(),
              "threads": args.threads, "budgets": BUDGETS, "loadavg_start": os.getloadavg(), "sections": {}}
    results: dict = {}

    def timed(name: str, fn, *fn_args):
        load_before, start = os.getloadavg(), time.perf_counter()
        print(f"[{name}] running (load average {load_before[0]:.2f})", file=sys.stderr, flush=True)
        out = fn(*fn_args)
        report["sections"][name] = {"loadavg_before": load_before, "loadavg_after": os.getloadavg(),
                                    "section_seconds": round(time.perf_counter() - start, 1)}
        return out

    html = args.html.resolve() if args.html else args.build_dir / "_build" / "html"
    if "build" in wanted:
        results["build"] = timed("build", build_book, args.build_dir, args.threads)
    if "notebooks" in wanted:
        results["notebooks"] = timed("notebooks", notebooks, args.threads)
    if "live" in wanted:
        results["live"] = timed("live", live, args.threads, args.live_moves, args.profile_live)
    browser_wanted = [s for s in ("static", "pages") if s in wanted]
    if browser_wanted:
        if not (html / "book").is_dir():
            raise SystemExit(f"no built book at {html}: build it (drop --skip-build) or pass --html DIR")
        report["html"] = str(html)
        out = timed("+".join(browser_wanted), browser_sections, html, browser_wanted, args.static_moves,
                    args.page_loads)
        report["machine"]["versions"]["chromium"] = out.pop("chromium")
        results.update(out)
    if "models" in wanted:
        results["models"] = timed("models", models, args.threads)

    report["loadavg_end"] = os.getloadavg()
    report["results"] = results
    report["table"] = rows = table_rows(results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    m = report["machine"]
    print(f"{report['date']}  {m['cpus']} CPUs ({m['cpu_model']}), {m['ram_gib']} GiB RAM, threads {args.threads}, "
          f"load average start {report['loadavg_start'][0]:.2f} end {report['loadavg_end'][0]:.2f}")
    print(format_table(rows))
    print(json.dumps(_without_samples(report), indent=2, ensure_ascii=False))
    print(f"full JSON with raw samples: {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
