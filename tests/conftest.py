"""Shared test settings: a deterministic hypothesis profile that writes nothing into the work tree.

The ``slow`` marker is registered in pyproject.toml ([tool.pytest.ini_options] markers).
"""

from __future__ import annotations

import os
import tempfile

from hypothesis import HealthCheck, settings

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
