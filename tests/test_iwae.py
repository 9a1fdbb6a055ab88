"""vae_lib.iwae: L_K as a training objective, its gradient as self-normalised importance weights, DReG, and the
encoder gradient's signal-to-noise ratio against K; checked on a small VAE and on the linear-Gaussian model."""

from __future__ import annotations

import math

import pytest
import torch

from vae_lib.elbo import iwae_bound, log_importance_weights
from vae_lib.iwae import encoder_gradient_snr, iwae_loss, iwae_surrogate, normalised_weights
from vae_lib.models import VAE, VAEConfig
from vae_lib.toy import LinearGaussianModel

F64 = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def small_vae() -> VAE:
    torch.manual_seed(0)
    return VAE(VAEConfig(data_dim=5, latent_dim=2, hidden=(8,), likelihood="gaussian", x_scale=1.0, seed=3))


@pytest.fixture(scope="module")
def x_small() -> torch.Tensor:
    return torch.randn(4, 5, generator=gen(1))


@pytest.mark.parametrize("dreg", [False, True])
def test_iwae_loss_value_is_the_bound_of_vae_lib_elbo(small_vae, x_small, dreg):
    """−iwae_loss is log (1/K) Σ_k w_k with the same samples as vae_lib.elbo's log_importance_weights."""
    k = 7
    with torch.no_grad():
        expected = iwae_bound(log_importance_weights(x_small, small_vae, small_vae.posterior(x_small), k,
                                                     generator=gen(5)))
    got = -iwae_loss(small_vae, x_small, k, generator=gen(5), dreg=dreg)
    torch.testing.assert_close(got.detach(), expected, atol=1e-5, rtol=1e-5)


def per_sample_log_weights(vae: VAE, x: torch.Tensor, k: int, seed: int):
    """log w_k (K, B) recomputed by hand with the noise iwae_loss draws (ε ~ N(0, I) of shape (K, B, L))."""
    mean, log_var = vae.encode(x)
    eps = torch.randn((k, *mean.shape), generator=gen(seed), dtype=mean.dtype)
    z = mean + torch.exp(0.5 * log_var) * eps
    q = torch.distributions.Independent(torch.distributions.Normal(mean, torch.exp(0.5 * log_var)), 1)
    return vae.log_likelihood(x, z) + vae.prior.log_prob(z) - q.log_prob(z)


@pytest.mark.parametrize("dreg", [False, True])
def test_decoder_gradient_is_self_normalised_weighted_sum(small_vae, x_small, dreg):
    """∇_θ L_K = Σ_k w̃_k ∇_θ log w_k, w̃ = softmax(log w): autograd's gradient of the loss against the weighted sum
    of the per-sample gradients (each from its own backward pass)."""
    k = 6
    params = list(small_vae.decoder.parameters())
    loss = iwae_loss(small_vae, x_small, k, generator=gen(9), dreg=dreg).sum()
    got = torch.autograd.grad(loss, params)
    log_w = per_sample_log_weights(small_vae, x_small, k, seed=9)  # (K, B)
    w_tilde = normalised_weights(log_w.detach())
    assert torch.allclose(w_tilde.sum(0), torch.ones(x_small.shape[0]))
    expected = [torch.zeros_like(p) for p in params]
    for i in range(k):
        for b in range(x_small.shape[0]):
            grads = torch.autograd.grad(log_w[i, b], params, retain_graph=True)
            for e, g in zip(expected, grads, strict=True):
                e -= w_tilde[i, b] * g
    for e, g in zip(expected, got, strict=True):
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-4)
    # the weights matter: the plain average (1/K) Σ_k ∇ log w_k (the K-sample ELBO's gradient) is different
    plain = torch.autograd.grad(-log_w.mean(0).sum(), params)
    assert max((p - g).abs().max().item() for p, g in zip(plain, got, strict=True)) > 1e-3


def linear_model() -> LinearGaussianModel:
    """Orthogonal columns of W: the posterior covariance (I + WᵀW/σ²)⁻¹ is diagonal, so a diagonal q can equal it."""
    weight = torch.tensor([[1.0, 0.0], [0.0, 0.6], [1.0, 0.0], [0.0, -0.6]], dtype=F64)
    return LinearGaussianModel(weight, torch.tensor([0.1, -0.2, 0.3, 0.0], dtype=F64), sigma=0.8)


def q_params(model: LinearGaussianModel, x: torch.Tensor, shift: float, widen: float):
    post = model.posterior(x)
    return post.mean + shift, torch.log(post.covariance_matrix[0].diagonal()).unsqueeze(0) + widen


@pytest.fixture(scope="module")
def lg():
    model = linear_model()
    x, _ = model.sample(1, generator=gen(2))
    return model, x


def test_dreg_encoder_gradient_is_zero_at_the_exact_posterior(lg):
    """q = p(z|x): log w_k = log p(x) for every z, so DReG's encoder gradient is 0 for every draw; IWAE's is not
    (its score-function term is noise with mean zero)."""
    model, x = lg
    mean, log_var = q_params(model, x, 0.0, 0.0)
    for dreg, nonzero in ((True, False), (False, True)):
        res = encoder_gradient_snr(model, x, mean, log_var, [1, 5], 50, generator=gen(3), dreg=dreg)
        assert (res.sd.max() > 1e-3) == nonzero
        if not nonzero:
            assert res.mean.abs().max() < 1e-10


@pytest.mark.parametrize("k", [1, 5])
def test_dreg_and_iwae_encoder_gradients_have_the_same_expectation(lg, k):
    """Both estimate ∇_φ L_K: their means over R independent draws agree within 4 standard errors (each from the
    draws), coordinate by coordinate, at a q away from the posterior."""
    model, x = lg
    mean, log_var = q_params(model, x, 0.4, 0.6)
    repeats = 4000
    iw = encoder_gradient_snr(model, x, mean, log_var, [k], repeats, generator=gen(10), dreg=False)
    dr = encoder_gradient_snr(model, x, mean, log_var, [k], repeats, generator=gen(11), dreg=True)
    se = torch.sqrt((iw.sd**2 + dr.sd**2) / repeats)
    assert ((iw.mean - dr.mean).abs() < 4 * se).all(), (iw.mean, dr.mean, se)
    assert (iw.mean.abs() > 4 * se).any()  # the gradient is not zero: the comparison has something to compare


def test_a_biased_encoder_gradient_is_caught(lg, monkeypatch):
    """The expectation test can fail: weighting ∂log w_k/∂z_k by w̃_k instead of w̃_k² (the 'sticking the landing'
    estimator applied to L_K, biased for K > 1) disagrees with IWAE's gradient."""
    model, x = lg
    mean, log_var = q_params(model, x, 0.4, 0.6)
    repeats, k = 4000, 5
    iw = encoder_gradient_snr(model, x, mean, log_var, [k], repeats, generator=gen(10), dreg=False)
    monkeypatch.setattr(torch.Tensor, "register_hook", lambda self, hook: None)  # drop DReG's second w̃
    stl = encoder_gradient_snr(model, x, mean, log_var, [k], repeats, generator=gen(11), dreg=True)
    se = torch.sqrt((iw.sd**2 + stl.sd**2) / repeats)
    assert ((iw.mean - stl.mean).abs() > 4 * se).any()


def test_encoder_snr_falls_like_one_over_root_k_for_iwae_but_not_for_dreg(lg):
    """Rainforth et al. (2018): SNR of the IWAE encoder gradient ∝ 1/√K; DReG's does not fall (Tucker et al.)."""
    model, x = lg
    mean, log_var = q_params(model, x, 0.4, 0.6)
    ks = [1, 10, 100]
    iw = encoder_gradient_snr(model, x, mean, log_var, ks, 2000, generator=gen(20), dreg=False)
    dr = encoder_gradient_snr(model, x, mean, log_var, ks, 2000, generator=gen(21), dreg=True)
    log_k = torch.log(torch.tensor(ks, dtype=F64))
    # slope of log SNR against log K for the two mean coordinates (the largest signals)
    for j in range(2):
        slope_iw = torch.linalg.lstsq(torch.stack([log_k, torch.ones(3, dtype=F64)], 1),
                                      torch.log(iw.snr[:, j]).unsqueeze(1)).solution[0].item()
        assert -0.8 < slope_iw < -0.3, slope_iw
        assert dr.snr[-1, j] > dr.snr[0, j] * 0.8  # does not fall
        assert dr.snr[-1, j] > 10 * iw.snr[-1, j]


def test_surrogate_checks_its_arguments():
    with pytest.raises(ValueError, match="mean"):
        iwae_surrogate(lambda z: z.sum(-1), torch.zeros(2, 3), torch.zeros(2, 2), 3, generator=gen(0))
    with pytest.raises(ValueError, match="log_joint"):
        iwae_surrogate(lambda z: z.sum(), torch.zeros(2, 3), torch.zeros(2, 3), 3, generator=gen(0))
    with pytest.raises(TypeError, match="k must be an integer"):
        iwae_surrogate(lambda z: z.sum(-1), torch.zeros(2, 3), torch.zeros(2, 3), 2.0, generator=gen(0))
    with pytest.raises(TypeError, match="model"):
        iwae_loss(object(), torch.zeros(2, 3), 3, generator=gen(0))
    assert math.isclose(normalised_weights(torch.tensor([[0.0], [math.log(3.0)]], dtype=F64)).squeeze()[1].item(), 0.75)


# --- training through vae_lib.train.fit -----------------------------------------------------------------------------
def tiny_vae() -> VAE:
    return VAE(VAEConfig(data_dim=64, latent_dim=3, hidden=(16,), seed=4))


@pytest.fixture(scope="module")
def digits_64():
    from vae_lib.data import load_digits_split

    return load_digits_split().x_train[:64]


@pytest.mark.parametrize("dreg", [False, True])
def test_fit_with_the_iwae_objective_takes_the_steps_of_iwae_loss(digits_64, dreg):
    """One epoch, one mini-batch: fit's Adam step equals a step on iwae_loss with fit's generator (seeded
    config.seed: the shuffle first, then the K samples)."""
    from vae_lib.train import TrainConfig, fit

    config = TrainConfig(epochs=1, batch_size=64, learning_rate=1e-2, seed=3, progress=False, objective="iwae", k=5,
                         dreg=dreg)
    trained = tiny_vae()
    history = fit(trained, digits_64, config)
    manual = tiny_vae()
    g = gen(3)
    batch = digits_64[torch.randperm(64, generator=g)]
    optimiser = torch.optim.Adam(manual.parameters(), lr=1e-2)
    loss = iwae_loss(manual, batch, 5, generator=g, dreg=dreg).mean()
    loss.backward()
    optimiser.step()
    assert history.loss == pytest.approx([loss.item()], rel=1e-6)
    for (name, a), b in zip(trained.named_parameters(), manual.parameters(), strict=True):
        torch.testing.assert_close(a, b, msg=name)


def test_fit_with_the_k_sample_elbo_takes_the_steps_of_the_k_sample_elbo(digits_64):
    """objective='elbo' with k = 5: fit's Adam step is a step on −(1/K) Σ_k [log p_θ(x|z_k)] + KL, computed here
    by the model's ``elbo(x, K)`` (the mean over K draws of the single-sample ELBO) with fit's generator."""
    from vae_lib.train import TrainConfig, fit

    config = TrainConfig(epochs=1, batch_size=64, learning_rate=1e-2, seed=3, progress=False, k=5)
    trained = tiny_vae()
    history = fit(trained, digits_64, config)
    manual = tiny_vae()
    g = gen(3)
    batch = digits_64[torch.randperm(64, generator=g)]
    optimiser = torch.optim.Adam(manual.parameters(), lr=1e-2)
    loss = -manual.elbo(batch, 5, generator=g).mean()
    loss.backward()
    optimiser.step()
    assert history.loss == pytest.approx([loss.item()], rel=1e-6)
    for (name, a), b in zip(trained.named_parameters(), manual.parameters(), strict=True):
        torch.testing.assert_close(a, b, msg=name)
    single = fit(tiny_vae(), digits_64, TrainConfig(epochs=1, batch_size=64, learning_rate=1e-2, seed=3,
                                                   progress=False))
    assert single.loss[0] != pytest.approx(history.loss[0], rel=1e-4)  # K = 5 averages other draws than K = 1


def test_dreg_changes_the_encoder_gradient_but_not_the_decoder_gradient(digits_64):
    """Both estimators give the decoder Σ_k w̃_k ∇_θ log w_k; only the encoder's gradient differs (same samples)."""
    grads = {}
    for dreg in (False, True):
        model = tiny_vae()
        iwae_loss(model, digits_64, 5, generator=gen(8), dreg=dreg).mean().backward()
        grads[dreg] = {name: p.grad for name, p in model.named_parameters()}
    for name, g in grads[False].items():
        if name.startswith("decoder"):
            torch.testing.assert_close(grads[True][name], g, atol=1e-6, rtol=1e-4, msg=name)
    diff = max((grads[True][n] - g).abs().max().item() for n, g in grads[False].items() if n.startswith("encoder"))
    assert diff > 1e-3


def test_iwae_training_settings_are_validated():
    from vae_lib.train import TrainConfig

    with pytest.raises(ValueError, match="objective"):
        TrainConfig(objective="vimco")
    assert TrainConfig(k=5).k == 5 and not TrainConfig(k=5).is_plain_elbo  # the K-sample ELBO
    with pytest.raises(ValueError, match="objective='iwae'"):
        TrainConfig(dreg=True)
    with pytest.raises(ValueError, match="objective='iwae'"):
        TrainConfig(k=5, dreg=True)
    with pytest.raises(ValueError, match="kl_weight"):
        TrainConfig(objective="iwae", k=5, kl_weight=0.5)
    with pytest.raises(ValueError, match="k must be >= 1"):
        TrainConfig(objective="iwae", k=0)
    with pytest.raises(TypeError, match="dreg"):
        TrainConfig(objective="iwae", k=5, dreg="yes")
    assert not TrainConfig(objective="iwae", k=5).is_plain_elbo


def test_active_units_is_the_variance_of_the_posterior_means_over_x():
    """A_j = Cov_x(E_q[z_j]): a dimension whose mean never moves (or moves by 0.05, variance 0.0025) is inactive."""
    from vae_lib.iwae import active_units

    x_index = torch.arange(100, dtype=F64)
    means = torch.stack([torch.sin(x_index), torch.full((100,), 3.0, dtype=F64),
                         0.05 * torch.cos(x_index), 0.5 * (x_index % 2)], -1)  # (N, L)
    count, activity = active_units(means)
    expected = torch.tensor([torch.sin(x_index).var(unbiased=False), 0.0,
                             (0.05 * torch.cos(x_index)).var(unbiased=False), 0.0625], dtype=F64)
    torch.testing.assert_close(activity, expected)
    assert count == 2
    with pytest.raises(ValueError, match="posterior_means"):
        active_units(means[:1])


def test_gradient_snr_figure_plots_the_median_snr_of_the_mean_coordinates():
    from vae_lib.figures_iwae import gradient_snr_figure
    from vae_lib.iwae import GradientSNR

    snr = torch.tensor([[1.0, 3.0, 100.0, 100.0], [0.5, 0.7, 100.0, 100.0]], dtype=F64)  # (2 Ks, 2L), L = 2
    res = GradientSNR([1, 4], snr, snr, torch.ones_like(snr))
    fig = gradient_snr_figure({"IWAE": res, "DReG": res}, title="t")
    curves = [t for t in fig.data if t.mode == "lines+markers"]
    assert [t.name for t in curves] == ["IWAE", "DReG"]
    assert list(curves[0].y) == pytest.approx([2.0, 0.6])  # medians of μ's coordinates; log σ²'s (100) left out
    refs = [t for t in fig.data if t.mode == "lines"]
    assert len(refs) == 4 and list(refs[0].y) == pytest.approx([2.0, 1.0])  # slope −½ through the first point
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    with pytest.raises(ValueError, match="results"):
        gradient_snr_figure({}, title="t")
    with pytest.raises(TypeError, match="GradientSNR"):
        gradient_snr_figure({"IWAE": snr}, title="t")
