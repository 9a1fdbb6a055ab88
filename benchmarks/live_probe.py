"""Timing code that runs *inside* a chapter's kernel, next to the chapter's own live explorer (see live.py).

live.py executes a chapter's cells up to its ``live = ...`` cell, then sends this file's source followed by
``print(json.dumps(probe(live, "<kind>", n_moves)))``. ``live`` is an explorer's live widget
(vae_lib.explorer_live.ExplorerWidget). Each move sets the widget's ``state`` as the front end does when a reader
moves a control (``ExplorerWidget.set``): the ``observe`` callback runs the explorer's program with torch and sets
the ``values`` trait, whose comm message is serialised and sent before the assignment returns, so
``time.perf_counter()`` around it is the update latency in the kernel, and ``time.process_time()`` around it the CPU
time the kernel process spent on it (all its threads; less sensitive to other processes on the machine).

The moves alternate between the explorer's first two controls (sliders, or a choice); slider values follow van der
Corput sequences (base 2 for the first, base 3 for the second) on the slider's step grid, so the visited positions
spread over the whole range in a fixed order; a choice cycles through its options. After every move (outside the
timed region) the widget's values are checked to answer that move.
"""

from __future__ import annotations

import json  # noqa: F401  (used by the line live.py appends)
import time

import numpy as np
import torch


def van_der_corput(k: int, base: int) -> float:
    """The k-th point (k ≥ 1) of the van der Corput sequence in [0, 1): k's digits in ``base`` mirrored."""
    value, denominator = 0.0, 1.0
    while k:
        k, digit = divmod(k, base)
        denominator *= base
        value += digit / denominator
    return value


def control_values(control, n: int, base: int) -> list:
    """n values of a control: a slider's spread over its range on its step grid; a choice's options in turn."""
    from vae_lib.explorer import Choice

    if isinstance(control, Choice):
        return [k % len(control.options) for k in range(1, n + 1)]
    steps = int(round((control.high - control.low) / control.step))
    return [round(control.low + round(van_der_corput(k + 1, base) * steps) * control.step, 10) for k in range(n)]


def probe(widget, kind: str, n_moves: int = 200, profile: bool = False) -> dict:
    """Time ``n_moves`` control moves of a live explorer; return the latencies (ms) and the kernel's setup.

    With ``profile``, the moves also run under cProfile and the result holds its top entries (cumulative time);
    the profiler's overhead inflates the latencies of that run.
    """
    import cProfile
    import io
    import pstats

    from vae_lib.explorer import Choice, Slider

    profiler = cProfile.Profile() if profile else None
    controls = [c for c in widget.explorer.controls if isinstance(c, (Slider, Choice))][:2]
    if not controls:
        raise ValueError(f"{kind}: the live explorer has no slider or choice to move")
    half = (n_moves + 1) // 2
    values = [control_values(c, half, 2 + k) for k, c in enumerate(controls)]
    times_ms, cpu_ms = [], []
    for k in range(n_moves):
        control = controls[k % len(controls)]
        value = values[k % len(controls)][k // len(controls)]
        if profiler:
            profiler.enable()
        start, cpu = time.perf_counter(), time.process_time()
        widget.set(**{control.name: value})  # a new state, as from the front end: the whole update runs
        times_ms.append((time.perf_counter() - start) * 1e3)
        cpu_ms.append((time.process_time() - cpu) * 1e3)
        if profiler:
            profiler.disable()
        if widget.values.get("#seq") != widget.state.get("#seq"):
            raise RuntimeError(f"move {k}: the widget's values do not answer its state")
    t = np.array(times_ms)
    report = {}
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(35)
        report["profile"] = out.getvalue()
    return {**report, "moves": n_moves, "median_ms": float(np.median(t)), "p95_ms": float(np.percentile(t, 95)),
            "max_ms": float(t.max()), "mean_ms": float(t.mean()), "cpu_median_ms": float(np.median(cpu_ms)),
            "torch_threads": torch.get_num_threads(), "times_ms": [round(v, 3) for v in times_ms],
            "cpu_ms": [round(v, 3) for v in cpu_ms]}
