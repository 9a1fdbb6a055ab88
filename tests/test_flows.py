"""vae_lib.flows: each flow step's log-determinant against autograd's Jacobian, invertibility, the change of variables
(a flow of a Gaussian integrates to 1 on a quadrature grid; its samples and its density agree), and the gap
log p(x) − ELBO on chapter 2's two-mode posterior falling as the flow deepens, with log p(x) by quadrature.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.autograd.functional import jacobian

from vae_lib.flows import (
    AffineCoupling,
    FlowConfig,
    FlowFitConfig,
    FlowPosterior,
    PlanarStep,
    RadialStep,
    fit_flow_posterior,
    flow_log_weights,
)
from vae_lib.quadrature import latent_grid
from vae_lib.toy import folded_model

F64 = torch.float64
X_TWO_MODES = torch.tensor([[1.0, 0.5]], dtype=F64)  # chapter 2's first preset: two separated modes


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randomise(module: torch.nn.Module, seed: int, scale: float = 1.0) -> torch.nn.Module:
    """Overwrite every parameter with N(0, scale²) draws (a new coupling layer is the identity: make it not)."""
    g = gen(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


def make_step(kind: str, latent_dim: int, seed: int, parity: int = 0):
    if kind == "planar":
        step = PlanarStep(latent_dim, generator=gen(seed), dtype=F64)
    elif kind == "radial":
        step = RadialStep(latent_dim, generator=gen(seed), dtype=F64)
    else:
        step = AffineCoupling(latent_dim, parity, hidden=16, seed=seed, dtype=F64)
    return randomise(step, seed + 100)


def slogdet_by_autograd(step, z: torch.Tensor, params=None) -> torch.Tensor:
    """log|det ∂f(z)/∂z| from autograd's full Jacobian, one point z (L,) at a time."""
    out = []
    for i in range(z.shape[0]):
        p = None if params is None else params[i]
        jac = jacobian(lambda v: step(v, p)[0], z[i])  # (L, L)
        sign, logabs = torch.linalg.slogdet(jac)
        assert sign != 0
        out.append(logabs)
    return torch.stack(out)


@pytest.mark.parametrize("kind,latent_dim,parity", [("planar", 1, 0), ("planar", 3, 0), ("radial", 1, 0),
                                                    ("radial", 3, 0), ("coupling", 2, 0), ("coupling", 3, 1),
                                                    ("coupling", 4, 0)])
def test_log_det_matches_autograd_jacobian(kind, latent_dim, parity):
    step = make_step(kind, latent_dim, seed=latent_dim + parity, parity=parity)
    z = 1.5 * torch.randn(20, latent_dim, generator=gen(7), dtype=F64)
    _, log_det = step(z)
    torch.testing.assert_close(log_det, slogdet_by_autograd(step, z), atol=1e-10, rtol=1e-10)
    # far from 0 somewhere: the comparison cannot pass by both sides being ~0
    assert log_det.abs().max() > 0.05


@pytest.mark.parametrize("kind", ["planar", "radial"])
def test_amortised_parameters_log_det_matches_autograd(kind):
    latent_dim = 3
    step = make_step(kind, latent_dim, seed=3)
    params = torch.randn(10, step.param_size, generator=gen(4), dtype=F64)  # one set per example
    z = torch.randn(10, latent_dim, generator=gen(5), dtype=F64)
    z_next, log_det = step(z, params)
    torch.testing.assert_close(log_det, slogdet_by_autograd(step, z, params), atol=1e-10, rtol=1e-10)
    # row i with params[i] is the step whose free parameters are params[i]
    with torch.no_grad():
        step.params.copy_(params[2])
    z2, ld2 = step(z[2])
    torch.testing.assert_close(z2, z_next[2])
    torch.testing.assert_close(ld2, log_det[2])


def test_planar_constraint_keeps_it_invertible():
    """û = u + (m(wᵀu) − wᵀu) w/‖w‖², m(a) = −1 + log(1 + eᵃ): wᵀû = m(wᵀu) > −1 even when wᵀu ≪ −1."""
    step = PlanarStep(2, dtype=F64)
    w = torch.tensor([1.0, 2.0], dtype=F64)
    u = -3.0 * w  # wᵀu = −15: the raw map z + u tanh(wᵀz) folds the plane over itself
    with torch.no_grad():
        step.params.copy_(torch.cat([u, w, torch.tensor([0.3], dtype=F64)]))
    u_hat, w_out, _ = step._split(None)
    assert torch.allclose((w_out * u_hat).sum(), torch.tensor(-1.0 + math.log1p(math.exp(-15.0)), dtype=F64))
    z = 3 * torch.randn(1000, 2, generator=gen(0), dtype=F64)
    _, log_det = step(z)
    assert torch.isfinite(log_det).all()
    jac_dets = torch.stack([torch.linalg.det(jacobian(lambda v: step(v)[0], zi)) for zi in z[:50]])
    assert (jac_dets > 0).all()  # orientation kept everywhere: no fold
    # with the raw u (no constraint) the Jacobian determinant 1 + tanh'(a) wᵀu changes sign near a = 0
    assert 1 + 1.0 * (w @ u) < 0


@pytest.mark.parametrize("kind", ["planar", "radial", "coupling"])
def test_inverse_undoes_the_step(kind):
    step = make_step(kind, 3, seed=11)
    z = 2 * torch.randn(200, 3, generator=gen(12), dtype=F64)
    z_next, _ = step(z)
    torch.testing.assert_close(step.inverse(z_next), z, atol=1e-9, rtol=0)
    assert (z_next - z).abs().max() > 0.1  # the step is not the identity


def random_flow(kind: str, n_steps: int, seed: int) -> FlowPosterior:
    flow = FlowPosterior(FlowConfig(latent_dim=2, kind=kind, n_steps=n_steps, seed=seed, dtype=F64, hidden=16))
    for t, step in enumerate(flow.steps):  # coupling networks: smaller weights keep the mass inside the grid
        randomise(step, seed + t, scale=0.3 if kind == "coupling" else 0.7)
    with torch.no_grad():
        flow.base_mean.copy_(torch.tensor([[0.3, -0.2]], dtype=F64))
        flow.base_log_var.copy_(torch.tensor([[-0.5, 0.2]], dtype=F64))
    return flow


@pytest.mark.parametrize("kind", ["planar", "radial", "coupling"])
def test_flow_density_integrates_to_one_and_matches_its_samples(kind):
    flow = random_flow(kind, 4, seed=21)
    grid = latent_grid(9.0, 361)
    with torch.no_grad():
        log_q = flow.log_prob(grid.points.unsqueeze(1))[:, 0]  # (G,)
        mass = log_q.exp().sum() * grid.cell_volume
        assert abs(mass.item() - 1.0) < 2e-3
        # the density's mean by quadrature against the mean of K samples (the forward path), within 4 SE
        quad_mean = (log_q.exp().unsqueeze(-1) * grid.points).sum(0) * grid.cell_volume / mass
        z, log_q_samples = flow.rsample(40_000, generator=gen(22))
        z = z[:, 0]
        se = z.std(0) / math.sqrt(z.shape[0])
        assert ((z.mean(0) - quad_mean).abs() < 4 * se + 1e-3).all()
        # rsample's log q (forward change of variables) equals log_prob at its samples (inverse)
        torch.testing.assert_close(log_q_samples[:200], flow.log_prob(z[:200].unsqueeze(1)), atol=1e-8, rtol=0)
        assert (z.std(0) > 0.2).all()


def test_a_wrong_log_det_breaks_the_normalisation(monkeypatch):
    """The normalisation test can fail: a log-determinant with the wrong sign gives a density that is not one."""
    flow = random_flow("planar", 4, seed=21)
    grid = latent_grid(9.0, 361)
    original = PlanarStep._apply  # what both a step's forward and the flow's vectorised path call

    def wrong_sign(z, *split):
        z_next, log_det = original(z, *split)
        return z_next, -log_det

    monkeypatch.setattr(PlanarStep, "_apply", staticmethod(wrong_sign))
    with torch.no_grad():
        mass = flow.log_prob(grid.points.unsqueeze(1))[:, 0].exp().sum() * grid.cell_volume
    assert abs(mass.item() - 1.0) > 0.05


def test_amortised_flow_posterior_matches_its_free_counterpart():
    latent_dim, batch = 2, 3
    amortised = FlowPosterior(FlowConfig(latent_dim, "planar", 3, amortised=True, free_base=False, dtype=F64))
    assert amortised.param_size == 3 * (2 * latent_dim + 1)
    params = 0.8 * torch.randn(batch, amortised.param_size, generator=gen(1), dtype=F64)
    mean = torch.randn(batch, latent_dim, generator=gen(2), dtype=F64)
    log_var = torch.randn(batch, latent_dim, generator=gen(3), dtype=F64) - 1
    z, log_q = amortised.rsample(5, generator=gen(4), mean=mean, log_var=log_var, params=params)  # (5, B, L), (5, B)
    assert z.shape == (5, batch, latent_dim) and log_q.shape == (5, batch)
    torch.testing.assert_close(amortised.log_prob(z, mean=mean, log_var=log_var, params=params), log_q)
    free = FlowPosterior(FlowConfig(latent_dim, "planar", 3, dtype=F64))
    with torch.no_grad():
        for t, step in enumerate(free.steps):
            step.params.copy_(params[1, t * 5:(t + 1) * 5])
        free.base_mean.copy_(mean[1:2])
        free.base_log_var.copy_(log_var[1:2])
    torch.testing.assert_close(free.log_prob(z[:, 1:2]), log_q[:, 1:2])


def test_a_flow_without_steps_gives_vae_lib_elbo_importance_weights():
    """T = 0: flow_log_weights are log p(x, z) − log q_0(z|x) with q_0 the diagonal Gaussian, the same numbers as
    vae_lib.elbo.log_importance_weights draws with the same generator."""
    from vae_lib.elbo import log_importance_weights
    from vae_lib.gaussian import diag_gaussian

    model = folded_model()
    flow = FlowPosterior(FlowConfig(latent_dim=2, n_steps=0, dtype=F64))
    mean, log_var = torch.tensor([[0.4, -0.3]], dtype=F64), torch.tensor([[-1.0, 0.5]], dtype=F64)
    with torch.no_grad():
        flow.base_mean.copy_(mean)
        flow.base_log_var.copy_(log_var)
        got = flow_log_weights(X_TWO_MODES, model, flow, 50, generator=gen(3))
    expected = log_importance_weights(X_TWO_MODES, model, diag_gaussian(mean, log_var), 50, generator=gen(3))
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=0)


def test_flow_gap_by_depth_rows_use_the_models_quadrature_evidence():
    """Each row's log p(x) is the folded model's quadrature value and gap = log p(x) − ELBO; T = 0 uses the Gaussian's
    own fit settings when given; without a warm start the depths are independent fits."""
    from vae_lib.flows import flow_gap_by_depth

    model = folded_model()
    quick = FlowFitConfig(steps=20, n_samples=8, eval_samples=2000)
    gaussian = FlowFitConfig(steps=5, n_samples=8, eval_samples=2000, init_mean=(0.9, 0.5), init_log_var=(-3.0, -3.0))
    rows = flow_gap_by_depth(model, X_TWO_MODES, [0, 1], "radial", quick, gaussian, warm_start=False, restarts=1)
    log_px = model.log_marginal(X_TWO_MODES)[0].item()
    assert [r["depth"] for r in rows] == [0, 1]
    for r in rows:
        assert r["log_px"] == log_px
        assert r["gap"] == pytest.approx(log_px - r["elbo"])
        assert r["gap"] > -3 * r["elbo_se"]
        assert r["warm"] == 0
    # the Gaussian row started on a mode (near (1, 0.5), narrow) and is already far better than the radial row's
    # broad start after 20 steps
    assert rows[0]["gap"] < rows[1]["gap"]
    with pytest.raises(TypeError, match="log_marginal"):
        flow_gap_by_depth(object(), X_TWO_MODES, [0])


# --- warm starts and row-batched fits ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["planar", "radial"])
def test_identity_parameters_make_a_step_the_identity(kind):
    from vae_lib.flows import _identity_params

    step = make_step(kind, 3, seed=5)
    z = 2 * torch.randn(100, 3, generator=gen(6), dtype=F64)
    assert (step(z)[0] - z).abs().max() > 0.05  # a random step moves z
    with torch.no_grad():
        step.params.copy_(_identity_params(step))
    z_next, log_det = step(z)
    torch.testing.assert_close(z_next, z, atol=1e-14, rtol=0)
    torch.testing.assert_close(log_det, torch.zeros(100, dtype=F64), atol=1e-14, rtol=0)


@pytest.mark.parametrize("kind", ["planar", "radial", "coupling"])
def test_a_warm_started_flow_starts_as_the_shallower_flow(kind):
    """init=: the deeper flow's first steps are the fitted flow's, the rest the identity, so it draws the same z_T
    with the same log q_T (same generator), and the fit's first training ELBO is the shallower flow's on those draws."""
    from vae_lib.flows import _warm_start

    model = folded_model()
    shallow = random_flow(kind, 2, seed=31)
    deep = FlowPosterior(FlowConfig(latent_dim=2, kind=kind, n_steps=5, seed=32, dtype=F64, hidden=16))
    _warm_start(deep, shallow)
    with torch.no_grad():
        z_s, lq_s = shallow.rsample(500, generator=gen(8))
        z_d, lq_d = deep.rsample(500, generator=gen(8))
    torch.testing.assert_close(z_d, z_s, atol=1e-12, rtol=0)
    torch.testing.assert_close(lq_d, lq_s, atol=1e-12, rtol=0)
    if kind == "coupling":
        return  # fit_flow_posterior(init=...) for coupling flows builds its layers with hidden=32: checked above only
    config = FlowFitConfig(steps=3, n_samples=64, eval_samples=1000, seed=4)
    fit = fit_flow_posterior(model, X_TWO_MODES, FlowConfig(2, kind, 5, dtype=F64), config, init=shallow)
    with torch.no_grad():
        first = flow_log_weights(X_TWO_MODES, model, shallow, 64, generator=gen(4)).mean().item()
    assert fit.trace[0] == pytest.approx(first, abs=1e-10)
    with pytest.raises(ValueError, match="init"):
        fit_flow_posterior(model, X_TWO_MODES, FlowConfig(2, kind, 1, dtype=F64), config, init=shallow)  # 2 > 1 steps
    other = "radial" if kind == "planar" else "planar"
    with pytest.raises(ValueError, match="init"):
        fit_flow_posterior(model, X_TWO_MODES, FlowConfig(2, other, 5, dtype=F64), config, init=shallow)


def test_rows_of_one_vectorised_fit_are_independent_problems():
    """_fit_rows fits B flows in one Adam loop: row 0's result does not depend on what the other row holds (the
    summed objective separates and Adam is elementwise), and it equals fit_flow_posterior's single-row fit only in
    distribution (its draws differ), so the check is between two batched runs with the same generator."""
    from vae_lib.flows import _as_vector, _fit_rows, _start_flow

    model = folded_model()
    config = FlowConfig(2, "planar", 3, dtype=F64)
    fit_config = FlowFitConfig(steps=30, n_samples=32, learning_rate=0.05, anneal_steps=10, seed=2)
    a = _as_vector(_start_flow(config, fit_config))
    b = _as_vector(random_flow("planar", 3, seed=40))
    c = _as_vector(random_flow("planar", 3, seed=41))
    x2 = X_TWO_MODES.expand(2, -1)
    annealed = torch.tensor([True, False])
    first, _ = _fit_rows(model, x2, config, torch.cat([a, b]), fit_config, annealed)
    second, _ = _fit_rows(model, x2, config, torch.cat([a, c]), fit_config, annealed)
    torch.testing.assert_close(first[0], second[0], atol=1e-12, rtol=0)
    assert (first[0] - a[0]).abs().max() > 1e-3  # row 0 did move
    assert (first[1] - second[1]).abs().max() > 1e-3  # and row 1 is a different problem


def test_warm_started_depths_never_lose_the_previous_gap():
    """With warm starts each depth begins at the previous depth's q, so its gap is not larger (up to Monte Carlo
    noise); every row's Monte Carlo gap equals KL(q_T || p(z|x)) by quadrature (the flow's density by inversion)."""
    from vae_lib.flows import flow_gap_by_depth

    model = folded_model()
    quick = FlowFitConfig(steps=60, n_samples=64, learning_rate=0.05, anneal_steps=30, eval_samples=20_000,
                          lr_decay=0.1)
    gaussian = FlowFitConfig(steps=100, n_samples=64, learning_rate=0.05, eval_samples=20_000, lr_decay=0.1,
                             init_mean=(0.5, 0.0), init_log_var=(-2.0, -2.0))
    rows = flow_gap_by_depth(model, X_TWO_MODES, [0, 1, 2], "planar", quick, gaussian, restarts=2, quadrature=True)
    for before, after in zip(rows[:-1], rows[1:], strict=True):
        assert after["gap"] < before["gap"] + 3 * math.hypot(before["elbo_se"], after["elbo_se"]) + 0.01
    for r in rows:
        assert r["gap"] > -3 * r["elbo_se"]
        assert abs(r["gap"] - r["gap_quadrature"]) < 3 * r["elbo_se"] + 0.01
        flow = r["flow"]  # the fitted flow itself: its own ELBO on other draws is the row's
        assert isinstance(flow, FlowPosterior) and flow.config.n_steps == r["depth"]
        with torch.no_grad():
            log_w = flow_log_weights(X_TWO_MODES, model, flow, 20_000, generator=gen(77))[:, 0]
        se = math.hypot(r["elbo_se"], log_w.std().item() / math.sqrt(20_000))
        assert abs(log_w.mean().item() - r["elbo"]) < 4 * se
    with pytest.raises(ValueError, match="depths"):
        flow_gap_by_depth(model, X_TWO_MODES, [0, 2, 2], "planar", quick, gaussian)
    with pytest.raises(ValueError, match="restarts"):
        flow_gap_by_depth(model, X_TWO_MODES, [0], "planar", restarts=0)
    with pytest.raises(ValueError, match="lr_decay"):
        FlowFitConfig(lr_decay=1.5)


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="kind"):
        FlowConfig(kind="maf")
    with pytest.raises(ValueError, match="coupling"):
        FlowConfig(kind="coupling", amortised=True, free_base=False)
    with pytest.raises(ValueError, match="free_base"):
        FlowConfig(kind="planar", amortised=True)
    with pytest.raises(ValueError, match="anneal_steps"):
        FlowFitConfig(steps=10, anneal_steps=10)
    flow = FlowPosterior(FlowConfig(n_steps=2))
    with pytest.raises(ValueError, match="params"):
        flow.rsample(3, generator=gen(0), params=torch.zeros(1, 10))
    with pytest.raises(TypeError, match="generator"):
        flow.rsample(3, generator=None)


# --- the gap on chapter 2's folded model ---------------------------------------------------------------------------


def quadrature_kl(flow: FlowPosterior, model, x) -> float:
    """KL(q_T || p(z|x)) = Σ_g q_T(z_g) (log q_T(z_g) − log p(z_g|x)) ΔA on the model's own grid."""
    grid = model.grid
    with torch.no_grad():
        log_q = flow.log_prob(grid.points.unsqueeze(1))[:, 0]  # (G,)
        log_post = model.log_posterior_on_grid(x)[0]  # (G,)
    q = log_q.exp()
    return ((q * (log_q - log_post)).sum() * grid.cell_volume).item()


FLOW_FIT = FlowFitConfig(steps=1500, n_samples=16, learning_rate=1e-2, anneal_steps=750, eval_samples=20_000, seed=0)
GAUSSIAN_FIT = FlowFitConfig(steps=600, n_samples=16, learning_rate=1e-2, eval_samples=20_000, seed=0,
                             init_mean=(0.5, 0.0), init_log_var=(-2.0, -2.0))  # chapter 2's start: one mode


@pytest.mark.slow
def test_a_deep_planar_flow_closes_most_of_the_two_mode_gap():
    """Chapter 2's folded model at x = (1.0, 0.5): the best diagonal Gaussian covers one of the two modes (gap near
    log 2, its optimum found independently by chapter 2's quadrature ascent); 16 planar steps cover both. log p(x) by
    the model's quadrature; each fitted flow's gap checked against KL(q_T || p(z|x)) by quadrature with its density
    from the inverse (the identity gap = KL, so log q_T, rsample's path and the log-determinants agree)."""
    from vae_lib import quadrature
    from vae_lib.posterior_explorer import ascend_elbo

    model = folded_model(sigma=0.3)
    x = X_TWO_MODES
    log_px = model.log_marginal(x)[0].item()
    grid = latent_grid(4.0, 121)  # chapter 2's explorer grid
    log_joint = quadrature.log_joint_on_grid(model, x, grid)  # (G, 1)
    best = ascend_elbo(log_joint, grid, torch.tensor([0.5, 0.0]), torch.tensor([-1.0, -1.0]))
    best_gaussian_gap = (quadrature.log_marginal(log_joint, grid)[0] - best.elbo[-1]).item()
    assert abs(best_gaussian_gap - math.log(2)) < 0.05

    gaps = {}
    for depth, fit_config in ((0, GAUSSIAN_FIT), (16, FLOW_FIT)):
        fit = fit_flow_posterior(model, x, FlowConfig(latent_dim=2, kind="planar", n_steps=depth, dtype=F64),
                                 fit_config)
        gap, se = log_px - fit.elbo, fit.elbo_standard_error
        assert gap > -3 * se  # an ELBO never exceeds log p(x)
        assert abs(gap - quadrature_kl(fit.flow, model, x)) < 3 * se + 0.01
        gaps[depth] = gap
    assert best_gaussian_gap - 0.01 < gaps[0] < best_gaussian_gap + 0.1  # the Gaussian fit reached its optimum
    assert gaps[16] < 0.25
    assert gaps[16] < gaps[0] - 0.4


@pytest.mark.slow
def test_the_chapters_depth_sweep_closes_the_two_mode_gap():
    """flow_gap_by_depth with its default settings (what the chapter runs): T = 0 is the best diagonal Gaussian (its
    gap near log 2, one of the two modes), the gap never grows with depth (warm starts), and 16 planar steps close
    most of it; each row's Monte Carlo gap agrees with KL(q_T || p(z|x)) by quadrature."""
    from vae_lib.flows import flow_gap_by_depth

    model = folded_model()
    rows = flow_gap_by_depth(model, X_TWO_MODES, [0, 2, 4, 8, 16], "planar", quadrature=True)
    gaps = [r["gap"] for r in rows]
    assert abs(gaps[0] - math.log(2)) < 0.06
    for before, after in zip(rows[:-1], rows[1:], strict=True):
        assert after["gap"] < before["gap"] + 3 * math.hypot(before["elbo_se"], after["elbo_se"]) + 0.01
    assert gaps[-1] < 0.15 and gaps[-1] < gaps[0] - 0.5
    for r in rows:
        assert r["gap"] > -3 * r["elbo_se"]
        assert abs(r["gap"] - r["gap_quadrature"]) < 3 * r["elbo_se"] + 0.01


# --- the digits: approximation gap with a flow against the diagonal Gaussian ---------------------------------------


@pytest.fixture(scope="module")
def digits_vae_2d():
    """A small categorical VAE with a 2-D latent on the digits (a few epochs): every number has a quadrature value."""
    from vae_lib import VAE, TrainConfig, VAEConfig, fit, load_digits_split

    digits = load_digits_split()
    vae = VAE(VAEConfig(latent_dim=2, hidden=(64,), likelihood="categorical", seed=0))
    fit(vae, digits.x_train, TrainConfig(epochs=8, batch_size=128, learning_rate=3e-3, seed=0))
    vae.zero_grad(set_to_none=True)  # training leaves gradients behind; the gap functions must not add any
    return vae, digits.x_test[:4]


class _RowsDensity:
    """q_T*(z|x_b) for every image b as a density with log_prob(z (G, 1, L)) -> (G, B), for quadrature.elbo."""

    def __init__(self, flow, arguments, batch):
        self.flow, self.arguments, self.batch = flow, arguments, batch

    def log_prob(self, z):
        with torch.no_grad():
            return self.flow.log_prob(z.expand(-1, self.batch, -1).to(torch.float32), **self.arguments).double()


def test_flow_approximation_gaps_agree_with_quadrature_on_a_2d_digits_vae(digits_vae_2d):
    """flow_approximation_gaps on a 2-D latent VAE, where everything has an exact value: log p(x) by importance
    sampling with the fitted flow agrees with quadrature within its standard error (q*'s estimate within 0.25); the
    encoder's, q*'s and q_T*'s Monte Carlo ELBOs agree with their quadrature ELBOs (the flow's density by inversion);
    q* reaches the quadrature-fitted best Gaussian (vae_lib.gap.gap_decomposition); the flow never loses against q*;
    the VAE is left untouched."""
    from vae_lib import quadrature as quad
    from vae_lib.flows import FlowGapSplit, flow_approximation_gaps
    from vae_lib.gap import gap_decomposition
    from vae_lib.gaussian import diag_gaussian

    vae, x = digits_vae_2d
    before = {k: v.clone() for k, v in vae.state_dict().items()}
    split = flow_approximation_gaps(
        vae, x, FlowConfig(latent_dim=2, kind="planar", n_steps=4),
        FlowFitConfig(steps=150, n_samples=32, learning_rate=0.02, eval_samples=4000, lr_decay=0.1),
        n_evidence=4000, encoder_evidence=True, generator=gen(0))  # q* from monte_carlo_gap_decomposition
    assert isinstance(split, FlowGapSplit)
    for k, v in vae.state_dict().items():
        assert torch.equal(v, before[k])
    assert all(p.grad is None for p in vae.parameters())

    grid = quad.latent_grid(6.0, 161)
    log_joint = quad.log_joint_on_grid(vae, x, grid)  # (G, B)
    exact_log_px = quad.log_marginal(log_joint, grid)  # (B,)
    assert ((split.log_px - exact_log_px).abs() < 4 * split.log_px_se + 0.02).all()
    # the split's estimate with K = 1000 draws of q*: heavy-tailed weights, one image 0.15 nats off (checked: the
    # quadrature value is the same on grids of bound 6 to 20)
    assert ((split.log_px_gaussian - exact_log_px).abs() < 0.25).all()
    torch.testing.assert_close(split.flow_gain, split.approximation_gap - split.approximation_gap_flow)
    # log_evidence with q_φ as proposal (K = 4000): the same quantity, noisier (one image's estimate is 0.1 nats off)
    assert split.log_px_encoder.shape == (4,) and ((split.log_px_encoder - exact_log_px).abs() < 0.25).all()
    lat = 2
    with torch.no_grad():
        enc_mean, enc_log_var = vae.encode(x)
    q_encoder = diag_gaussian(enc_mean.double(), enc_log_var.double())
    q_star = diag_gaussian(split.gaussian[:, :lat].double(), split.gaussian[:, lat:].double())
    q_flow = _RowsDensity(split.flow, split.flow_arguments(), x.shape[0])
    for mc, se, q in ((split.elbo_encoder, split.elbo_encoder_se, q_encoder),
                      (split.elbo_gaussian, split.elbo_gaussian_se, q_star),
                      (split.elbo_flow, split.elbo_flow_se, q_flow)):
        exact = quad.elbo(log_joint, grid, q)
        assert ((mc - exact).abs() < 4 * se + 0.02).all(), (mc, exact, se)
    best = gap_decomposition(vae, x, grid)  # Adam on the quadrature ELBO from the encoder's q
    assert ((split.elbo_gaussian - best.elbo_optimal).abs() < 4 * split.elbo_gaussian_se + 0.05).all()
    both = 3 * torch.hypot(split.elbo_gaussian_se, split.elbo_flow_se) + 0.01
    assert (split.approximation_gap_flow < split.approximation_gap + both).all()
    assert (split.amortization_gap > -3 * torch.hypot(split.elbo_gaussian_se, split.elbo_encoder_se)).all()


def test_flow_approximation_gaps_refuses_bad_input(digits_vae_2d):
    from vae_lib.flows import flow_approximation_gaps

    vae, x = digits_vae_2d
    from vae_lib.inference_gaps import monte_carlo_gap_decomposition

    quick = FlowFitConfig(steps=2, n_samples=2, eval_samples=10)
    with pytest.raises(ValueError, match="latent_dim"):
        flow_approximation_gaps(vae, x, FlowConfig(latent_dim=3), quick, generator=gen(0))
    with pytest.raises(ValueError, match="kind"):
        flow_approximation_gaps(vae, x, FlowConfig(latent_dim=2, kind="coupling"), quick, generator=gen(0))
    with pytest.raises(TypeError, match="vae"):
        flow_approximation_gaps(folded_model(), x, FlowConfig(latent_dim=2), quick, generator=gen(0))
    with pytest.raises(TypeError, match="generator"):
        flow_approximation_gaps(vae, x, FlowConfig(latent_dim=2), quick, generator=None)
    other = monte_carlo_gap_decomposition(vae, x[:3], generator=gen(1))  # q* for three images, x has four
    with pytest.raises(ValueError, match="gaussian_gaps"):
        flow_approximation_gaps(vae, x, FlowConfig(latent_dim=2), quick, generator=gen(0), gaussian_gaps=other)
    with pytest.raises(TypeError, match="gaussian_gaps"):
        flow_approximation_gaps(vae, x, FlowConfig(latent_dim=2), quick, generator=gen(0), gaussian_gaps="q*")


def test_the_monte_carlo_elbo_and_its_standard_error_are_those_of_the_log_weights():
    """_monte_carlo_elbo accumulates sums over chunks: its mean and standard error equal the mean and sd/√n of the
    same log-weights drawn in one piece with the same generator."""
    from vae_lib.flows import _monte_carlo_elbo

    model = folded_model()
    flow = random_flow("planar", 3, seed=50)
    with torch.no_grad():
        log_w = flow_log_weights(X_TWO_MODES, model, flow, 3000, generator=gen(9))[:, 0]
    mean, se = _monte_carlo_elbo(X_TWO_MODES, model, flow, 3000, generator=gen(9), max_elements=3000)
    torch.testing.assert_close(mean[0], log_w.mean(), atol=1e-10, rtol=0)
    torch.testing.assert_close(se[0], log_w.std() / math.sqrt(3000), atol=1e-10, rtol=0)
    chunked, _ = _monte_carlo_elbo(X_TWO_MODES, model, flow, 3000, generator=gen(9), max_elements=700)
    assert abs(chunked.item() - log_w.mean().item()) < 5 * se.item()  # other draws, the same estimate


@pytest.mark.parametrize("w_dot_u", [-3.0, 0.0, 50.0])
def test_the_planar_inverse_converges_for_flat_and_steep_steps(w_dot_u):
    """The safeguarded Newton inverse recovers z for w'û near −1 (g'(a) = 1 + c tanh'(a) small near a = 0; here
    c = m(−3) ≈ −0.95) and for a steep step (c ≈ 49), at points spread over a wide range of a = w'z + b."""
    step = PlanarStep(2, dtype=F64)
    w = torch.tensor([1.5, -0.5], dtype=F64)
    with torch.no_grad():
        step.params.copy_(torch.cat([w_dot_u * w / (w @ w), w, torch.tensor([0.2], dtype=F64)]))
    z = 4 * torch.randn(2000, 2, generator=gen(13), dtype=F64)
    z_next, _ = step(z)
    torch.testing.assert_close(step.inverse(z_next), z, atol=1e-9, rtol=0)
