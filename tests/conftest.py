"""Shared test settings: a deterministic hypothesis profile that writes nothing into the work tree.

The ``slow`` marker is registered in pyproject.toml ([tool.pytest.ini_options] markers).
"""

from __future__ import annotations

import os
import tempfile

# One thread per process: pytest runs two xdist workers on two cores, and the notebook kernels and the book build
# they start inherit this. Oversubscribed torch threads slowed small trainings by an order of magnitude under load.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

torch.set_num_threads(1)

# hypothesis caches the constants it finds in source files under .hypothesis/ in the working directory;
# keep that cache in the temp directory instead (a run must leave the repository clean)
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(tempfile.gettempdir(), "vae_lib-hypothesis"))

# No example database, no per-example deadline (torch's first call is slow), and derandomised so that a run
# is reproducible like every other test here.
settings.register_profile(
    "vae_lib",
    database=None,
    deadline=None,
    derandomize=True,
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("vae_lib")
