"""Shared test settings: a deterministic hypothesis profile that writes nothing into the work tree, and the one
Chromium every ``browser``-marked test uses (found by ``tests/browsers.py``).

The ``slow`` and ``browser`` markers are registered in pyproject.toml ([tool.pytest.ini_options] markers).
"""

from __future__ import annotations

import os
import tempfile

# One thread per process: pytest runs two xdist workers on two cores, and the notebook kernels and the book build
# they start inherit this. Oversubscribed torch threads slowed small trainings by an order of magnitude under load.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import browsers  # noqa: E402  (tests/browsers.py: this folder is on sys.path while pytest loads its conftest)
import pytest  # noqa: E402
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


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A browser test without a Chromium skips (one line: how to get one), or fails under CI=true, before any of
    its fixtures (a book build, a JupyterLab server) starts."""
    if item.get_closest_marker("browser") is not None:
        browsers.require_chromium()


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium for one test module (tests/browsers.py says which binary, and how to get one)."""
    with browsers.launched() as b:
        yield b


# --- the models shared by test_quadrature.py and test_gap.py (a module may define its own under the same name) -----
@pytest.fixture(scope="module")
def linear():
    """The linear-Gaussian model p(x|z) = N(Wz + b, 0.7² I) with D = 3, L = 2: everything in closed form."""
    from vae_lib.toy import LinearGaussianModel

    g = torch.Generator().manual_seed(0)
    return LinearGaussianModel(torch.randn(3, 2, generator=g, dtype=torch.float64),
                               torch.randn(3, generator=g, dtype=torch.float64), 0.7)


@pytest.fixture(scope="module")
def linear_on_grid(linear):
    """The same decoder as a GridLatentModel (any f, quadrature on a 141² grid over [−7, 7]²)."""
    from vae_lib.toy import GridLatentModel

    w, b = linear.weight, linear.bias
    return GridLatentModel(lambda z: z @ w.T + b, linear.sigma, latent_dim=2, data_dim=3, n_grid=141)


@pytest.fixture(scope="module")
def xs(linear):
    """Three observations drawn from ``linear``, (3, D)."""
    return linear.sample(3, generator=torch.Generator().manual_seed(1))[0]


@pytest.fixture(scope="module")
def folded():
    """Chapter 2's folded model f(z) = (z₁², z₂), σ = 0.3: a two-mode posterior for x₁ > 0."""
    from vae_lib.toy import folded_model

    return folded_model(sigma=0.3)


@pytest.fixture(scope="module")
def small_vae():
    """An untrained categorical VAE with a 2-D latent (digits' shape)."""
    from vae_lib.models import VAE, VAEConfig

    return VAE(VAEConfig(latent_dim=2, hidden=(16,), likelihood="categorical", seed=0))


@pytest.fixture(scope="module")
def digits_x():
    """Four random 8 × 8 images of pixel levels 0..16, (4, 64)."""
    return torch.randint(0, 17, (4, 64), generator=torch.Generator().manual_seed(2)).float()
