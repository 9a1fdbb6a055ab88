"""vae_lib.estimators: the score-function (REINFORCE) and reparameterization gradient estimators.

References: autograd of torch.distributions' log_prob for the score, and autograd of closed-form expectations
E[f(u)] for the exact gradient; every estimator's mean must lie within 4 standard errors of it.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import MultivariateNormal, Normal

from vae_lib import VAE, VAEConfig
from vae_lib.estimators import (
    TEST_FUNCTIONS,
    ScoreFunctionVAE,
    exact_gradient,
    gaussian_score,
    kl_gradient_exact,
    kl_gradient_monte_carlo,
    reparameterized_gradient,
    score_function_gradient,
    standard_error,
)

F64 = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def within(estimates: tuple[torch.Tensor, torch.Tensor], exact: tuple[torch.Tensor, torch.Tensor],
           n_se: float = 4.0) -> bool:
    """Each component's mean over repetitions lies within n_se standard errors of the exact gradient."""
    ok = True
    for est, ex in zip(estimates, exact, strict=True):
        se = standard_error(est)
        ok &= bool(((est.mean(0) - ex).abs() <= n_se * se + 1e-12).all())
    return ok


# ---------------------------------------------------------------------------------------------------------------
# the score by hand
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("parameterization", ["scale", "log_scale"])
def test_gaussian_score_matches_autograd_of_normal_log_prob(parameterization):
    g = gen(0)
    mean = torch.randn(5, generator=g, dtype=F64)
    scale = torch.rand(5, generator=g, dtype=F64) + 0.3
    if parameterization == "log_scale":
        scale = scale.log()
    u = 3 * torch.randn(7, 5, generator=g, dtype=F64)
    m, s = mean.clone().requires_grad_(True), scale.clone().requires_grad_(True)
    for k in range(u.shape[0]):
        sigma = s if parameterization == "scale" else s.exp()
        d_m, d_s = torch.autograd.grad(Normal(m, sigma).log_prob(u[k]).sum(), (m, s))
        h_m, h_s = gaussian_score(u[k], mean, scale, parameterization)
        torch.testing.assert_close(h_m, d_m, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(h_s, d_s, rtol=1e-12, atol=1e-12)


def test_score_has_mean_zero():
    """E[∇ log p_θ(u)] = 0, the reason any baseline keeps REINFORCE unbiased."""
    mean, scale = torch.tensor([0.7], dtype=F64), torch.tensor([1.3], dtype=F64)
    u = mean + scale * torch.randn(200_000, 1, generator=gen(1), dtype=F64)
    for d in gaussian_score(u, mean, scale):
        assert abs(d.mean().item()) < 4 * d.std().item() / math.sqrt(d.shape[0])


# ---------------------------------------------------------------------------------------------------------------
# exact gradients of the closed forms (checked by hand, so a wrong closed form cannot hide)
# ---------------------------------------------------------------------------------------------------------------
def test_exact_gradient_by_hand():
    m, s = torch.tensor([0.4, -1.1], dtype=F64), torch.tensor([0.6, 1.5], dtype=F64)
    d_m, d_s = exact_gradient(TEST_FUNCTIONS["u²"].expectation, m, s)  # E = μ² + σ²
    torch.testing.assert_close(d_m, 2 * m)
    torch.testing.assert_close(d_s, 2 * s)
    d_m, d_ls = exact_gradient(TEST_FUNCTIONS["u²"].expectation, m, s.log(), "log_scale")
    torch.testing.assert_close(d_ls, 2 * s**2)  # dσ²/dlog σ = 2σ²
    d_m, d_s = exact_gradient(TEST_FUNCTIONS["sin u"].expectation, m, s)  # sin μ e^{−σ²/2}
    torch.testing.assert_close(d_m, torch.cos(m) * torch.exp(-s**2 / 2))
    torch.testing.assert_close(d_s, -s * torch.sin(m) * torch.exp(-s**2 / 2))


@pytest.mark.parametrize("name", list(TEST_FUNCTIONS))
def test_closed_form_expectations_match_quadrature(name):
    mu, sigma = 0.3, 0.8
    u = torch.linspace(mu - 12 * sigma, mu + 12 * sigma, 20001, dtype=F64)
    density = Normal(torch.tensor(mu, dtype=F64), torch.tensor(sigma, dtype=F64)).log_prob(u).exp()
    tf = TEST_FUNCTIONS[name]
    quad = torch.trapezoid(tf.f(u.unsqueeze(-1)) * density, u)
    exact = tf.expectation(torch.tensor([mu], dtype=F64), torch.tensor([sigma], dtype=F64))
    torch.testing.assert_close(quad, exact, rtol=1e-8, atol=1e-10)


# ---------------------------------------------------------------------------------------------------------------
# unbiasedness of both estimators
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(TEST_FUNCTIONS))
@pytest.mark.parametrize("parameterization", ["scale", "log_scale"])
@pytest.mark.parametrize("estimator", [reparameterized_gradient, score_function_gradient])
@pytest.mark.parametrize("dim", [1, 3])
def test_estimators_are_unbiased(name, parameterization, estimator, dim):
    g = gen(10 + dim)
    mean = 0.8 * torch.randn(dim, generator=g, dtype=F64)
    sigma = 0.4 + 0.6 * torch.rand(dim, generator=g, dtype=F64)
    scale = sigma if parameterization == "scale" else sigma.log()
    tf = TEST_FUNCTIONS[name]
    exact = exact_gradient(tf.expectation, mean, scale, parameterization)
    est = estimator(tf.f, mean, scale, 5, repeats=4000, parameterization=parameterization, generator=g)
    assert est[0].shape == (4000, dim) and est[1].shape == (4000, dim)
    assert within(est, exact)


@pytest.mark.parametrize("estimator", [reparameterized_gradient, score_function_gradient])
def test_wrong_sign_is_detected(estimator):
    """The test above has power: the exact gradient with a flipped σ-component is rejected."""
    tf = TEST_FUNCTIONS["u²"]
    mean, sigma = torch.tensor([0.5], dtype=F64), torch.tensor([0.9], dtype=F64)
    d_m, d_s = exact_gradient(tf.expectation, mean, sigma)
    est = estimator(tf.f, mean, sigma, 5, repeats=4000, generator=gen(3))
    assert within(est, (d_m, d_s))
    assert not within(est, (d_m, -d_s))
    assert not within(est, (d_m, 2 * d_s))


def quadratic(a: torch.Tensor):
    f = lambda u: ((u @ a) * u).sum(-1)  # noqa: E731  zᵀ A z
    expectation = lambda m, chol: m @ a @ m + torch.trace(a @ chol @ chol.T)  # noqa: E731  μᵀAμ + tr(AΣ)
    return f, expectation


@pytest.mark.parametrize("estimator", [reparameterized_gradient, score_function_gradient])
def test_full_covariance_gradient_in_mean_and_cholesky_factor(estimator):
    a = torch.tensor([[2.0, 0.5, 0.0], [0.1, 1.0, -0.3], [0.0, 0.4, 1.5]], dtype=F64)
    chol = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.7, 0.0], [-0.3, 0.2, 0.6]], dtype=F64)
    mean = torch.tensor([0.3, -0.2, 0.5], dtype=F64)
    f, expectation = quadratic(a)
    d_m, d_l = exact_gradient(expectation, mean, chol)
    sym = a + a.T
    torch.testing.assert_close(d_m, sym @ mean)  # ∇_μ = (A + Aᵀ) μ
    torch.testing.assert_close(d_l, torch.tril(sym @ chol))  # ∇_L tr(A L Lᵀ) = (A + Aᵀ) L, lower triangle
    est = estimator(f, mean, chol, 5, repeats=4000, generator=gen(4))
    assert est[1].shape == (4000, 3, 3)
    assert (est[1].triu(1) == 0).all()
    assert within(est, (d_m, d_l))
    assert not within(est, (d_m, d_l.T))  # a transposed factor would be caught


def test_full_covariance_reparameterization_reuses_gaussian_sample():
    """With the same generator, the draws are vae_lib.gaussian.sample's z = μ + L ε (f(u) = u₁ exposes them)."""
    chol = torch.tensor([[1.0, 0.0], [0.5, 0.7]], dtype=F64)
    mean = torch.tensor([0.3, -0.2], dtype=F64)
    d_m, d_l = reparameterized_gradient(lambda u: u[..., 1] ** 2 / 2, mean, chol, 1, repeats=3, generator=gen(5))
    eps = torch.randn(1, 3, 2, generator=gen(5), dtype=F64)
    z = mean + (chol @ eps.unsqueeze(-1)).squeeze(-1)  # (1, 3, 2)
    torch.testing.assert_close(d_m[:, 1], z[0, :, 1])  # ∂/∂μ₂ of z₂²/2 = z₂
    torch.testing.assert_close(d_l[:, 1, 0], z[0, :, 1] * eps[0, :, 0])  # ∂/∂L₂₁ = z₂ ε₁
    assert torch.allclose(MultivariateNormal(mean, scale_tril=chol).covariance_matrix, chol @ chol.T)


# ---------------------------------------------------------------------------------------------------------------
# variances and baselines
# ---------------------------------------------------------------------------------------------------------------
def test_reparameterization_variance_matches_closed_form():
    """For f = u², ∂f(μ + σε)/∂μ = 2u, so Var = 4σ²/K; ∂/∂σ = 2uε, Var = 4(μ² + 2σ²)/K."""
    mu, sigma, k = 0.7, 0.5, 4
    d_m, d_s = reparameterized_gradient(TEST_FUNCTIONS["u²"].f, torch.tensor([mu], dtype=F64),
                                        torch.tensor([sigma], dtype=F64), k, repeats=40_000, generator=gen(6))
    assert d_m.var().item() == pytest.approx(4 * sigma**2 / k, rel=0.03)
    assert d_s.var().item() == pytest.approx(4 * (mu**2 + 2 * sigma**2) / k, rel=0.03)


def test_score_function_variance_matches_closed_form():
    """For f = u, K = 1: the μ-estimate is u (u − μ)/σ² = (μ + σε) ε / σ, Var = (μ² + 2σ²)/σ²."""
    mu, sigma = 0.7, 0.5
    d_m, _ = score_function_gradient(lambda u: u.sum(-1), torch.tensor([mu], dtype=F64),
                                     torch.tensor([sigma], dtype=F64), 1, repeats=40_000, generator=gen(7))
    assert d_m.mean().item() == pytest.approx(1.0, abs=4 * d_m.std().item() / 200)
    assert d_m.var().item() == pytest.approx((mu**2 + 2 * sigma**2) / sigma**2, rel=0.04)


@pytest.mark.parametrize("baseline", ["independent", "leave_one_out", 10.0])
def test_baselines_keep_reinforce_unbiased_and_reduce_variance(baseline):
    tf = TEST_FUNCTIONS["u²"]
    mean, sigma = torch.tensor([3.0], dtype=F64), torch.tensor([0.5], dtype=F64)  # E f ≈ 9.25: far from 0
    exact = exact_gradient(tf.expectation, mean, sigma)
    plain = score_function_gradient(tf.f, mean, sigma, 10, repeats=4000, generator=gen(8))
    based = score_function_gradient(tf.f, mean, sigma, 10, repeats=4000, baseline=baseline, generator=gen(9))
    assert within(based, exact)
    for p, b in zip(plain, based, strict=True):
        assert b.var().item() < 0.5 * p.var().item()


def test_leave_one_out_baseline_needs_two_samples():
    tf = TEST_FUNCTIONS["u²"]
    mean, sigma = torch.tensor([1.0], dtype=F64), torch.tensor([0.5], dtype=F64)
    # with K = 1 a leave-one-out baseline has no other draw to use (using u_k itself would bias the estimate)
    with pytest.raises(ValueError, match="n_samples"):
        score_function_gradient(tf.f, mean, sigma, 1, baseline="leave_one_out", generator=gen(0))


# ---------------------------------------------------------------------------------------------------------------
# the KL term
# ---------------------------------------------------------------------------------------------------------------
def test_kl_gradient_exact_closed_form():
    mean, log_var = torch.tensor([0.5, -1.0], dtype=F64), torch.tensor([0.3, -0.8], dtype=F64)
    d_m, d_lv = kl_gradient_exact(mean, log_var)
    torch.testing.assert_close(d_m, mean)
    torch.testing.assert_close(d_lv, 0.5 * (log_var.exp() - 1))


def test_kl_gradient_monte_carlo_unbiased_but_noisy():
    mean, log_var = torch.tensor([0.5, -1.0], dtype=F64), torch.tensor([0.3, -0.8], dtype=F64)
    est = kl_gradient_monte_carlo(mean, log_var, 1, repeats=4000, generator=gen(11))
    assert within(est, kl_gradient_exact(mean, log_var))
    assert all((e.var(0) > 1e-3).all() for e in est)


# ---------------------------------------------------------------------------------------------------------------
# the REINFORCE-trained VAE
# ---------------------------------------------------------------------------------------------------------------
def tiny_vae() -> VAE:
    return VAE(VAEConfig(data_dim=4, latent_dim=1, hidden=(8,), likelihood="gaussian_fixed", x_scale=1.0, seed=3))


def test_score_function_vae_loss_value_and_decoder_gradient_equal_reparameterized():
    vae = tiny_vae()
    wrapped = ScoreFunctionVAE(vae)
    x = torch.randn(6, 4, generator=gen(12))
    loss_r = vae.loss(x, generator=gen(13))
    loss_s = wrapped.loss(x, generator=gen(13))
    torch.testing.assert_close(loss_s, loss_r)  # same z, same value: −(log p(x|z) − KL)
    grads_r = torch.autograd.grad(loss_r.sum(), list(vae.decoder.parameters()))
    grads_s = torch.autograd.grad(loss_s.sum(), list(vae.decoder.parameters()))
    for a, b in zip(grads_r, grads_s, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("baseline", ["none", "batch_mean"])
def test_score_function_vae_encoder_gradient_is_unbiased(baseline):
    """Average the encoder gradient over many copies of one x: REINFORCE and reparameterization agree within
    error bars (20 chunks of 2000 copies give the standard error)."""
    vae = tiny_vae()
    x = torch.tensor([[0.5, -1.0, 0.3, 1.2]]).expand(2000, 4)
    params = list(vae.encoder.parameters())

    def chunk_grads(model, seed):
        out = []
        for c in range(20):
            loss = model.loss(x, generator=gen(seed + c)).mean()
            out.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)]))
        return torch.stack(out)  # (20, n_params)

    rep = chunk_grads(vae, 100)
    sf = chunk_grads(ScoreFunctionVAE(vae, baseline=baseline), 200)
    diff = rep.mean(0) - sf.mean(0)
    se = torch.sqrt(standard_error(rep) ** 2 + standard_error(sf) ** 2)
    assert (diff.abs() <= 4.5 * se + 1e-6).all()
    assert sf.var(0).sum() > rep.var(0).sum()  # and it is noisier


# ---------------------------------------------------------------------------------------------------------------
# argument checks
# ---------------------------------------------------------------------------------------------------------------
def test_bad_arguments_name_the_argument():
    f = TEST_FUNCTIONS["u²"].f
    m, s = torch.zeros(2), torch.ones(2)
    with pytest.raises(ValueError, match="scale"):
        reparameterized_gradient(f, m, -s, 3, generator=gen(0))
    with pytest.raises(ValueError, match="scale"):
        reparameterized_gradient(f, m, torch.ones(3), 3, generator=gen(0))
    with pytest.raises(ValueError, match="lower triangular"):
        reparameterized_gradient(f, m, torch.ones(2, 2), 3, generator=gen(0))
    with pytest.raises(ValueError, match="parameterization"):
        reparameterized_gradient(f, m, s, 3, parameterization="sigma", generator=gen(0))
    with pytest.raises(TypeError, match="generator"):
        score_function_gradient(f, m, s, 3, generator=0)
    with pytest.raises(ValueError, match="n_samples"):
        score_function_gradient(f, m, s, 0, generator=gen(0))
    with pytest.raises(ValueError, match="baseline"):
        score_function_gradient(f, m, s, 3, baseline="mean", generator=gen(0))
    with pytest.raises(TypeError, match="baseline"):
        score_function_gradient(f, m, s, 3, baseline=[1.0], generator=gen(0))
    with pytest.raises(ValueError, match="mean"):
        reparameterized_gradient(f, torch.zeros(2, 2), s, 3, generator=gen(0))
    with pytest.raises(TypeError, match="vae"):
        ScoreFunctionVAE("not a vae")
    with pytest.raises(ValueError, match="baseline"):
        ScoreFunctionVAE(tiny_vae(), baseline="running")


# ---------------------------------------------------------------------------------------------------------------
# the comparison grid and the static explorer built on it
# ---------------------------------------------------------------------------------------------------------------
def test_compare_estimators_and_static_explorer():
    from vae_lib.estimators import compare_estimators
    from vae_lib.figures_estimators import estimator_explorer

    cmp = compare_estimators(("u²", "sin u"), 0.5, (0.25, 1.0), (1, 10), repeats=500, generator=gen(20))
    assert cmp.exact[("u²", 1.0)] == pytest.approx(1.0)  # ∂/∂μ (μ² + σ²) = 2μ
    assert cmp.variance_ratio("u²", 0.25, 10) > 5  # narrow p_θ: REINFORCE much noisier
    explorer = estimator_explorer(cmp, start_sigma=1.0)  # one panel per K; f and σ pick a precomputed setting
    assert len(explorer.panels) == 2 and explorer.initial_state() == {"f": 0, "f#index": 0, "sigma": 1,
                                                                      "sigma#index": 1}
    values = explorer.evaluate({"f": 1, "sigma": 0})
    assert values["f_name"] == "sin u" and values["ratio_K10"] == pytest.approx(cmp.variance_ratio("sin u", 0.25, 10),
                                                                               rel=1e-3)
    with pytest.raises(ValueError, match="functions"):
        compare_estimators(("log u",), 0.5, (1.0,), (1,), repeats=10, generator=gen(0))
