"""vae_lib.quadrature: every integral over a 1-D or 2-D latent, checked against exact answers.

The linear-Gaussian model p(z) = N(0, I), p(x|z) = N(Wz + b, σ²I) has everything in closed form (vae_lib.toy): log p(x),
the Gaussian posterior, the ELBO E_q[log p(x|z)] − KL(q || p(z)) of a Gaussian q, KL(q || p(z|x)) and the best
diagonal Gaussian in each KL direction. The same decoder written as a GridLatentModel (any f, quadrature) must
reproduce them. Also: the categorical VAE's matrix-product path against the model's own log-likelihood, Monte Carlo
against quadrature on the folded (two-mode) model, the one Adam loop, and bad input.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import MultivariateNormal

import vae_lib
from vae_lib.gaussian import diag_gaussian, kl_diag_gaussian_std_normal, kl_full_gaussians
from vae_lib.quadrature import (
    AdamSteps,
    GaussianFitConfig,
    adam,
    elbo,
    fit_gaussian_elbo,
    fit_gaussian_forward_kl,
    forward_kl,
    latent_grid,
    log_joint_on_grid,
    log_marginal,
    log_posterior,
    model_log_marginal,
    posterior_moments,
    reverse_kl,
)

F64 = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def log_joint(linear_on_grid, xs) -> torch.Tensor:
    return log_joint_on_grid(linear_on_grid, xs, linear_on_grid.grid)  # (G, 3)


Q_MEAN = torch.tensor([[0.3, -0.2], [0.0, 0.5], [-0.4, 0.1]], dtype=F64)
Q_LOG_VAR = torch.tensor([[-1.0, -2.0], [-0.5, -1.5], [-2.5, -0.3]], dtype=F64)


class OnlyLogProb:
    """A density known only through log_prob (no entropy, not a torch Distribution), as a flow is."""

    def __init__(self, q: torch.distributions.Distribution) -> None:
        self.q = q

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return self.q.log_prob(z)


def exact_elbo(linear, xs, mean, log_var):
    """E_q[log p(x|z)] − KL(q || p(z)), both in closed form for the linear-Gaussian model."""
    return (linear.expected_log_likelihood(xs, mean, torch.diag_embed(log_var.exp()))
            - kl_diag_gaussian_std_normal(mean, log_var))


# ---------------------------------------------------------------------------------------------------------------------
# the grid and the log joint
# ---------------------------------------------------------------------------------------------------------------------
def test_latent_grid():
    grid = latent_grid(2.0, 5)
    assert grid.points.shape == (25, 2) and grid.cell_volume == pytest.approx(1.0) and grid.step == pytest.approx(1.0)
    assert torch.equal(grid.points[1], torch.tensor([-1.0, -2.0], dtype=F64))  # z₁ varies fastest
    assert grid.shape == (5, 5) and len(grid.axes) == 2
    line = latent_grid(1.0, 3, latent_dim=1)
    assert line.points.shape == (3, 1) and line.cell_volume == pytest.approx(1.0)


def test_categorical_vae_matrix_product_equals_log_likelihood(small_vae, digits_x):
    grid = latent_grid(3.0, 9)
    fast = log_joint_on_grid(small_vae, digits_x, grid, max_elements=17 * 64 * 10)  # several chunks
    with torch.no_grad():
        z = grid.points.unsqueeze(1)
        slow = small_vae.log_likelihood(digits_x, z.float()).double() + small_vae.prior.log_prob(z).double()  # (G, B)
    torch.testing.assert_close(fast, slow, rtol=0, atol=1e-3)


def test_generic_path_equals_model_log_joint(folded):
    x = torch.tensor([[1.0, 0.2], [0.5, -1.0]], dtype=F64)
    grid = latent_grid(3.0, 7)
    got = log_joint_on_grid(folded, x, grid, max_elements=10)  # chunks of 5 grid points
    z = grid.points.unsqueeze(1)
    torch.testing.assert_close(got, folded.log_likelihood(x, z) + folded.prior.log_prob(z), rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------------------------------------------------
# log p(x), the posterior and its moments against closed forms
# ---------------------------------------------------------------------------------------------------------------------
def test_log_marginal_equals_closed_form(linear, linear_on_grid, xs, log_joint):
    torch.testing.assert_close(log_marginal(log_joint, linear_on_grid.grid), linear.log_marginal(xs), rtol=0,
                               atol=1e-8)


def test_model_log_marginal_in_row_chunks_equals_one_pass(linear, linear_on_grid, xs):
    grid = linear_on_grid.grid
    chunked = model_log_marginal(linear_on_grid, xs, grid, max_elements=grid.points.shape[0])  # one row per chunk
    torch.testing.assert_close(chunked, linear.log_marginal(xs), rtol=0, atol=1e-8)


def test_log_posterior_equals_closed_form(linear, linear_on_grid, xs, log_joint):
    got = log_posterior(log_joint, linear_on_grid.grid)  # (B, G)
    exact = linear.posterior(xs).log_prob(linear_on_grid.grid.points.unsqueeze(1)).T
    near = exact > -20
    torch.testing.assert_close(got[near], exact[near], rtol=0, atol=1e-8)


def test_posterior_moments_equal_closed_form(linear, linear_on_grid, xs, log_joint):
    mean, var = posterior_moments(log_posterior(log_joint, linear_on_grid.grid), linear_on_grid.grid)
    post = linear.posterior(xs)
    torch.testing.assert_close(mean, post.mean, rtol=0, atol=1e-8)
    torch.testing.assert_close(var, torch.diagonal(post.covariance_matrix, dim1=-2, dim2=-1), rtol=0, atol=1e-8)


# ---------------------------------------------------------------------------------------------------------------------
# the ELBO and the two KL directions against closed forms
# ---------------------------------------------------------------------------------------------------------------------
def test_elbo_equals_closed_form_for_every_kind_of_q(linear, linear_on_grid, xs, log_joint):
    grid = linear_on_grid.grid
    exact = exact_elbo(linear, xs, Q_MEAN, Q_LOG_VAR)
    q = diag_gaussian(Q_MEAN, Q_LOG_VAR)
    torch.testing.assert_close(elbo(log_joint, grid, q), exact, rtol=0, atol=1e-8)  # separable path
    full = MultivariateNormal(Q_MEAN, torch.diag_embed(Q_LOG_VAR.exp()))
    torch.testing.assert_close(elbo(log_joint, grid, full), exact, rtol=0, atol=1e-8)  # every grid point
    # a density without a closed-form entropy: E_q[log q] by quadrature as well
    torch.testing.assert_close(elbo(log_joint, grid, OnlyLogProb(q)), exact, rtol=0, atol=1e-8)


def test_gap_is_the_kl_to_the_posterior_in_closed_form(linear, linear_on_grid, xs, log_joint):
    """log p(x) − L(q) = KL(q || p(z|x)): both sides by quadrature against the Gaussian closed form (a correlated
    posterior, so no diagonal q closes the gap)."""
    grid = linear_on_grid.grid
    post = linear.posterior(xs)
    exact = kl_full_gaussians(Q_MEAN, torch.diag_embed(Q_LOG_VAR.exp()), post.loc, post.covariance_matrix)  # (B,)
    assert (exact > 0.05).all()
    q = diag_gaussian(Q_MEAN, Q_LOG_VAR)
    gap = log_marginal(log_joint, grid) - elbo(log_joint, grid, q)
    torch.testing.assert_close(gap, exact, rtol=0, atol=1e-8)
    log_post = log_posterior(log_joint, grid)
    torch.testing.assert_close(reverse_kl(log_post, grid, q), exact, rtol=0, atol=1e-8)
    torch.testing.assert_close(reverse_kl(log_post, grid, OnlyLogProb(q)), exact, rtol=0, atol=1e-8)


def test_forward_kl_equals_closed_form(linear, linear_on_grid, xs, log_joint):
    grid = linear_on_grid.grid
    post = linear.posterior(xs)
    cov = torch.diag_embed(Q_LOG_VAR.exp())
    exact = kl_full_gaussians(post.loc, post.covariance_matrix, Q_MEAN, cov)  # KL(p(z|x) || q)
    log_post = log_posterior(log_joint, grid)
    torch.testing.assert_close(forward_kl(log_post, grid, diag_gaussian(Q_MEAN, Q_LOG_VAR)), exact, rtol=0, atol=1e-8)
    torch.testing.assert_close(forward_kl(log_post, grid, MultivariateNormal(Q_MEAN, cov)), exact, rtol=0, atol=1e-8)


def test_forward_kl_separable_equals_brute_force(folded):
    x = torch.tensor([[1.0, 0.3], [2.5, -0.4]], dtype=F64)
    lp = log_posterior(log_joint_on_grid(folded, x, folded.grid), folded.grid)
    mean = torch.tensor([[0.2, 0.1], [-0.5, 0.0]], dtype=F64)
    log_var = torch.tensor([[0.1, -1.0], [-0.3, -1.2]], dtype=F64)
    full = MultivariateNormal(mean, torch.diag_embed(log_var.exp()))
    torch.testing.assert_close(forward_kl(lp, folded.grid, diag_gaussian(mean, log_var)),
                               forward_kl(lp, folded.grid, full), rtol=0, atol=1e-10)


@pytest.mark.parametrize("mean, log_sigma", [((0.8, 0.3), (-1.5, -1.0)), ((1.0, 0.4), (-1.8, -1.2))])
def test_elbo_on_the_folded_model_matches_monte_carlo(folded, mean, log_sigma):
    """Chapter 2's explorer grid (121², [−4, 4]²) against 200 000 samples of log p(x, z) − log q(z)."""
    x = torch.tensor([[1.0, 0.5]], dtype=F64)
    q = diag_gaussian(torch.tensor([mean], dtype=F64), 2 * torch.tensor([log_sigma], dtype=F64))
    grid = latent_grid(4.0, 121)
    got = elbo(log_joint_on_grid(folded, x, grid), grid, q).item()
    lw = vae_lib.log_importance_weights(x, folded, q, 200_000, generator=gen(1))  # (K, 1)
    se = lw.std().item() / math.sqrt(lw.shape[0])
    assert abs(got - lw.mean().item()) < 5 * se


def test_elbo_touches_the_evidence_at_a_diagonal_posterior_with_zero_gradient():
    """Jensen: L(q) ≤ log p(x), with equality (and a stationary point) when q is the exact, here diagonal, posterior."""
    weight = torch.tensor([[2.0, 0.0], [0.0, 1.0]], dtype=F64)  # orthogonal columns: a diagonal posterior
    linear = vae_lib.LinearGaussianModel(weight, torch.zeros(2, dtype=F64), sigma=0.7)
    x = torch.tensor([[1.0, -0.5]], dtype=F64)
    grid = latent_grid(5.0, 161)
    lj = log_joint_on_grid(linear, x, grid)
    post = linear.posterior(x)
    mean = post.mean.clone().requires_grad_(True)
    log_var = torch.log(torch.diagonal(post.covariance_matrix, dim1=-2, dim2=-1)).requires_grad_(True)
    at_posterior = elbo(lj, grid, diag_gaussian(mean, log_var))
    at_posterior.sum().backward()
    assert at_posterior.item() == pytest.approx(linear.log_marginal(x).item(), abs=1e-8)
    assert max(mean.grad.abs().max().item(), log_var.grad.abs().max().item()) < 1e-6
    for shift in (0.1, 0.5):
        moved = elbo(lj, grid, diag_gaussian(mean.detach() + shift, log_var.detach() - shift)).item()
        assert moved < at_posterior.item() - 1e-4


def test_grid_refinement_changes_nothing_for_a_vae(small_vae, digits_x):
    coarse, fine = latent_grid(6.0, 121), latent_grid(7.0, 281)
    torch.testing.assert_close(log_marginal(log_joint_on_grid(small_vae, digits_x, coarse), coarse),
                               log_marginal(log_joint_on_grid(small_vae, digits_x, fine), fine), rtol=0, atol=1e-5)


# ---------------------------------------------------------------------------------------------------------------------
# the one Adam loop and the Gaussian fits
# ---------------------------------------------------------------------------------------------------------------------
def test_adam_is_torch_adam_with_the_geometric_step_decay():
    """The loop against a hand-written torch.optim.Adam run, and the objective it records before every step."""
    target = torch.tensor([1.0, -2.0], dtype=F64)

    def objective(a):
        return ((a - target) ** 2).sum()

    config = GaussianFitConfig(steps=30, learning_rate=0.3, decay_to=0.2)
    (got,), trace = adam(objective, (torch.zeros(2, dtype=F64),), config)
    a = torch.zeros(2, dtype=F64, requires_grad=True)
    opt = torch.optim.Adam([a], lr=0.3)
    expected_trace = []
    for t in range(30):
        for group in opt.param_groups:
            group["lr"] = 0.3 * 0.2 ** (t / 30)
        opt.zero_grad()
        loss = objective(a)
        expected_trace.append(loss.item())
        loss.backward()
        opt.step()
    torch.testing.assert_close(got, a.detach(), rtol=0, atol=1e-14)
    assert trace == pytest.approx(expected_trace, abs=1e-14)
    assert len(trace) == 30 and trace[-1] < trace[0]


def test_adam_steps_are_torch_adams_step_for_step():
    """AdamSteps (written out to avoid torch.optim's import and bookkeeping) makes the same updates as
    torch.optim.Adam with the same learning rate, including a learning rate changed between steps."""

    ours = [torch.nn.Parameter(torch.randn(7, generator=gen(0), dtype=F64)),
            torch.nn.Parameter(torch.randn(2, 3, generator=gen(1), dtype=F64))]
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    initial = [p.detach().clone() for p in ours]
    mine, reference = AdamSteps(ours, lr=0.05), torch.optim.Adam(theirs, lr=0.05)
    g = gen(2)
    for step in range(25):
        grads = [torch.randn(p.shape, generator=g, dtype=F64) * (1 + step) for p in ours]
        for p, q, grad in zip(ours, theirs, grads, strict=True):
            p.grad, q.grad = grad.clone(), grad.clone()
        mine.step()
        reference.step()
        mine.lr *= 0.9
        for group in reference.param_groups:
            group["lr"] *= 0.9
    for p, q, p0 in zip(ours, theirs, initial, strict=True):
        torch.testing.assert_close(p, q, atol=1e-13, rtol=0)
        assert (p - p0).abs().min() > 0.01  # every entry moved: the comparison is not between two unmoved tensors


@pytest.mark.slow
def test_reverse_kl_fit_on_a_gaussian_posterior_matches_the_precision_diagonal(linear, linear_on_grid, xs, log_joint):
    # best factorised q under KL(q || N(μ, Σ)): mean μ, variances 1 / (Σ⁻¹)_ll  (Bishop, PRML §10.1.2)
    zeros = torch.zeros(3, 2, dtype=F64)
    mean, log_var, fitted = fit_gaussian_elbo(log_joint, linear_on_grid.grid, zeros, zeros,
                                              GaussianFitConfig(steps=1000))
    post = linear.posterior(xs)
    precision = torch.linalg.inv(post.covariance_matrix)
    torch.testing.assert_close(mean, post.loc, rtol=0, atol=1e-5)
    torch.testing.assert_close(log_var.exp(), 1 / torch.diagonal(precision, dim1=-2, dim2=-1), rtol=0, atol=1e-5)
    kl = kl_full_gaussians(mean, torch.diag_embed(log_var.exp()), post.loc, post.covariance_matrix)
    torch.testing.assert_close(fitted, linear.log_marginal(xs) - kl, rtol=0, atol=1e-6)


def test_forward_kl_fit_on_a_gaussian_posterior_matches_the_moments(linear, linear_on_grid, xs, log_joint):
    log_post = log_posterior(log_joint, linear_on_grid.grid)
    zeros = torch.zeros(3, 2, dtype=F64)
    mean, log_var = fit_gaussian_forward_kl(log_post, linear_on_grid.grid, zeros, zeros)
    post = linear.posterior(xs)
    torch.testing.assert_close(mean, post.loc, rtol=0, atol=1e-5)
    torch.testing.assert_close(log_var.exp(), torch.diagonal(post.covariance_matrix, dim1=-2, dim2=-1),
                               rtol=0, atol=1e-5)


# ---------------------------------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------------------------------
def test_bad_input(small_vae, digits_x):
    grid = latent_grid(2.0, 5)
    q3 = diag_gaussian(torch.zeros(3, 2), torch.zeros(3, 2))
    cases = [
        (lambda: latent_grid(-1.0, 5), ValueError, "bound"),
        (lambda: latent_grid(1.0, 5, latent_dim=3), ValueError, "latent_dim"),
        (lambda: latent_grid(1.0, 2), ValueError, "n_grid"),
        (lambda: log_marginal(torch.zeros(25, 2), "grid"), TypeError, "grid"),
        (lambda: log_marginal(torch.zeros(24, 2), grid), ValueError, "log_joint"),
        (lambda: posterior_moments(torch.zeros(2, 24), grid), ValueError, "log_posterior"),
        (lambda: elbo(torch.zeros(25, 2), grid, q3), ValueError, "q must have batch shape"),
        (lambda: elbo(torch.zeros(25, 2), grid, "q"), TypeError, "q must be"),
        (lambda: reverse_kl(torch.zeros(2, 25), grid, diag_gaussian(torch.zeros(2, 3), torch.zeros(2, 3))),
         ValueError, "event shape"),
        (lambda: log_joint_on_grid(small_vae, digits_x + 0.5, grid), ValueError, "x"),  # levels 2.5: not truncated
        (lambda: log_joint_on_grid(small_vae, digits_x + 17, grid), ValueError, "x"),
        (lambda: log_joint_on_grid(vae_lib.arc_model(), torch.zeros(1, 2), grid), ValueError, "latent size"),
        (lambda: log_joint_on_grid(object(), torch.zeros(1, 2), grid), TypeError, "model"),
        (lambda: fit_gaussian_elbo(torch.zeros(25, 2), grid, torch.zeros(2, 2), torch.zeros(3, 2)), ValueError,
         "log_var0"),
        (lambda: GaussianFitConfig(steps=0), ValueError, "steps"),
        (lambda: GaussianFitConfig(decay_to=1.5), ValueError, "decay_to"),
        (lambda: adam(lambda a: a, (torch.zeros(2),), "config"), TypeError, "config"),
        (lambda: adam("f", (torch.zeros(2),)), TypeError, "objective"),
    ]
    for call, error, match in cases:
        with pytest.raises(error, match=match):
            call()
