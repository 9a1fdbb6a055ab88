"""Timing code that runs *inside* a chapter's kernel, next to the chapter's own live explorer (see live.py).

live.py executes a chapter's cells up to its ``live = ...`` cell, then sends this file's source followed by
``print(json.dumps(probe(live, "<kind>", n_moves)))``. Each move sets one slider of the explorer's plane to a new
value, exactly as a reader's slider move does: the ``observe`` callback runs the full update synchronously (the
model evaluation plus the in-place FigureWidget update, whose comm messages are serialised and sent before the
assignment returns), so ``time.perf_counter()`` around the assignment is the update latency in the kernel, and
``time.process_time()`` around it the CPU time the kernel process spent on it (all its threads; less sensitive to
other processes on the machine than the wall time).

The moves alternate between the plane's two sliders; the values follow van der Corput sequences (base 2 for the
first slider, base 3 for the second) snapped to the slider step, so the visited positions spread over the whole
plane in a fixed order. After every move (outside the timed region) the figure is checked to show the new state.
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


def plane_values(slider, n: int, base: int) -> list[float]:
    """n values of a FloatSlider spread over its range, on its step grid."""
    steps = int(round((slider.max - slider.min) / slider.step))
    return [round(slider.min + round(van_der_corput(k + 1, base) * steps) * slider.step, 10) for k in range(n)]


def _plane(box, kind: str) -> tuple[list, object]:
    """The two sliders that move the explorer over its plane, and a check that the figure shows (a, b)."""
    fig = box.figure
    if kind == "latent":
        from vae_lib.explorer import LABEL_FORMAT

        def shows(a: float, b: float) -> bool:
            return fig.layout.annotations[1].text == LABEL_FORMAT.format(z1=f"{a:.2f}", z2=f"{b:.2f}")

        return list(box.sliders), shows
    if kind == "posterior":
        def shows(a: float, b: float) -> bool:  # the mean marker of q sits at (μ₁, μ₂)
            return abs(fig.data[3].x[0] - a) < 1e-9 and abs(fig.data[3].y[0] - b) < 1e-9

        return list(box.sliders[:2]), shows
    if kind == "estimator":
        mu, sigma = box.children[1].children  # the (μ, σ) sliders

        def shows(a: float, b: float) -> bool:
            return f"μ = {a:.2f}, σ = {b:.2f}" in fig.layout.title.text

        return [mu, sigma], shows
    raise ValueError(f"kind must be 'latent', 'posterior' or 'estimator', got {kind!r}")


def probe(box, kind: str, n_moves: int = 200, profile: bool = False) -> dict:
    """Time ``n_moves`` slider moves of a live explorer; return the latencies (ms) and the kernel's setup.

    With ``profile``, the moves also run under cProfile and the result holds its top entries (cumulative time);
    the profiler's overhead inflates the latencies of that run.
    """
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile() if profile else None
    sliders, shows = _plane(box, kind)
    half = (n_moves + 1) // 2
    values = [plane_values(sliders[0], half, 2), plane_values(sliders[1], half, 3)]  # each slider's own sequence
    times_ms, cpu_ms = [], []
    for k in range(n_moves):
        slider = sliders[k % 2]
        value = values[k % 2][k // 2]
        if abs(value - slider.value) < 1e-12:  # traitlets ignore a non-change: step to a neighbour instead
            value = round(value + slider.step if value + slider.step <= slider.max else value - slider.step, 10)
        if profiler:
            profiler.enable()
        start, cpu = time.perf_counter(), time.process_time()
        slider.value = value  # runs the explorer's observer: the whole update
        times_ms.append((time.perf_counter() - start) * 1e3)
        cpu_ms.append((time.process_time() - cpu) * 1e3)
        if profiler:
            profiler.disable()
        if not shows(sliders[0].value, sliders[1].value):
            raise RuntimeError(f"move {k}: the figure does not show {sliders[0].value}, {sliders[1].value}")
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
