"""The training chapter's library: the weighted objective (β, annealing, free bits), the trainer's history,
likelihoods on one scale (Jacobian, dequantization), the loss-scale pitfall. Tiny models only."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch.distributions import Normal

from vae_lib.data import load_digits_split
from vae_lib.elbo import log_marginal_importance
from vae_lib.evaluation import (
    bernoulli_level_log_mass,
    bits_per_dim,
    dequantized_log_prob,
    log_evidence,
    nll_nats_per_image,
)
from vae_lib.gaussian import kl_diag_gaussian_std_normal
from vae_lib.likelihoods import LOG_2PI
from vae_lib.models import VAE, AEConfig, Autoencoder, VAEConfig
from vae_lib.networks import conv_networks
from vae_lib.pitfalls import MeanSquaredErrorPlusKL, implied_beta, implied_sigma
from vae_lib.train import TrainConfig, fit, kl_weight_schedule, weighted_objective


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    return load_digits_split().x_train[:64]


def tiny(likelihood: str = "categorical", **kw) -> VAE:
    return VAE(VAEConfig(hidden=(16,), likelihood=likelihood, **kw))


class TestObjective:
    def test_default_fit_is_the_plain_negative_elbo_loop(self, digits):
        # the trainer with β = 1, λ = 0 must train exactly like minimising model.loss (chapter 1's numbers)
        a, b = tiny(latent_dim=3), tiny(latent_dim=3)
        fit(a, digits, TrainConfig(epochs=3, batch_size=16, progress=False))
        g = gen(0)
        opt = torch.optim.Adam(b.parameters(), lr=1e-3)
        for _ in range(3):
            order = torch.randperm(64, generator=g)
            for s in range(0, 64, 16):
                loss = b.loss(digits[order[s:s + 16]], generator=g).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
        for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
            assert torch.equal(pa, pb)

    def test_elbo_terms_are_the_elbo_and_closed_form_kl_per_dimension(self, digits):
        vae = tiny(latent_dim=3)
        log_lik, kl = vae.elbo_terms(digits, generator=gen(1))
        elbo = vae.elbo(digits, 1, generator=gen(1))
        torch.testing.assert_close(log_lik - kl.sum(-1), elbo)
        mean, log_var = vae.encode(digits)
        per_dim = torch.stack([kl_diag_gaussian_std_normal(mean[:, i:i + 1], log_var[:, i:i + 1])
                               for i in range(3)], -1)
        torch.testing.assert_close(kl, per_dim)

    def test_free_bits_clamp_the_batch_mean_kl_per_dimension(self):
        log_lik = torch.tensor([-10.0, -12.0])
        kl = torch.tensor([[0.1, 2.0], [0.3, 4.0]], requires_grad=True)  # batch means 0.2 and 3.0
        loss = weighted_objective(log_lik, kl, kl_weight=0.5, free_bits=1.0)
        assert loss.item() == pytest.approx(11.0 + 0.5 * (1.0 + 3.0))
        loss.backward()
        assert torch.equal(kl.grad[:, 0], torch.zeros(2))  # dimension under λ: no gradient pushes it down
        torch.testing.assert_close(kl.grad[:, 1], torch.full((2,), 0.25))

    def test_beta_one_no_free_bits_is_mean_negative_elbo(self):
        log_lik, kl = torch.tensor([-3.0, -5.0]), torch.tensor([[1.0, 0.5], [0.25, 0.0]])
        assert weighted_objective(log_lik, kl, 1.0).item() == pytest.approx((3 + 1.5 + 5 + 0.25) / 2)

    def test_linear_warmup_schedule(self):
        assert kl_weight_schedule(TrainConfig(epochs=6, kl_weight=2.0, kl_warmup_epochs=4)) == [0.0, 0.5, 1.0, 1.5,
                                                                                                2.0, 2.0]
        assert kl_weight_schedule(TrainConfig(epochs=2)) == [1.0, 1.0]

    def test_history_records_terms_that_add_up(self, digits):
        h = fit(tiny(latent_dim=3), digits, TrainConfig(epochs=2, batch_size=16, progress=False))
        assert len(h.kl_per_dim) == 2 and len(h.kl_per_dim[0]) == 3
        for rec, kl, elbo, loss in zip(h.reconstruction, h.kl_per_dim, h.elbo, h.loss, strict=True):
            assert elbo == pytest.approx(rec - sum(kl), rel=1e-5)
            assert loss == pytest.approx(-elbo, rel=1e-5)  # β = 1, λ = 0: the loss is −ELBO

    def test_bad_settings_raise(self, digits):
        with pytest.raises(ValueError, match="free_bits"):
            TrainConfig(free_bits=-1.0)
        with pytest.raises(ValueError, match="kl_weight"):
            TrainConfig(kl_weight=-0.5)
        with pytest.raises(TypeError, match="elbo_terms"):
            fit(Autoencoder(AEConfig(hidden=(8,))), digits, TrainConfig(epochs=1, kl_weight=2.0, progress=False))


def conv_vae(likelihood: str = "categorical") -> VAE:
    config = VAEConfig(data_shape=(1, 8, 8), latent_dim=2, likelihood=likelihood, n_levels=16, x_scale=15.0)
    return VAE(config, *conv_networks(config, channels=(4, 8)))


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randint(0, 16, (64, 1, 8, 8), generator=gen(0)).float()  # (N, C, H, W) levels 0..15


class TestImages:
    @pytest.mark.parametrize(("likelihood", "dequantize"), [("categorical", False), ("gaussian", True)])
    def test_fit_on_images_is_fit_on_the_flattened_images(self, images, likelihood, dequantize):
        # the same shuffles, noise u ~ U[0, 1) (drawn in C, H, W order either way) and samples: identical runs
        config = TrainConfig(epochs=2, batch_size=16, progress=False, dequantize=dequantize)
        a, b = conv_vae(likelihood), conv_vae(likelihood)
        h_image = fit(a, images, config)
        h_flat = fit(b, images.flatten(1), config)
        assert h_image.loss == h_flat.loss and h_image.elbo == h_flat.elbo
        for pa, pb in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
            assert torch.equal(pa, pb)

    def test_dequantization_noise_has_the_batch_shape_and_lies_in_the_unit_cube(self, images, monkeypatch):
        seen = []
        vae = conv_vae("gaussian")
        elbo_terms = vae.elbo_terms

        def spy(batch, *, generator):
            seen.append(batch.detach().clone())
            return elbo_terms(batch, generator=generator)

        monkeypatch.setattr(vae, "elbo_terms", spy)
        fit(vae, images[:16], TrainConfig(epochs=1, batch_size=16, progress=False, dequantize=True, seed=3))
        (batch,) = seen
        order = torch.randperm(16, generator=gen(3))
        noise = batch - images[:16][order]
        assert batch.shape == (16, 1, 8, 8)
        assert (noise >= 0).all() and (noise < 1).all() and noise.std() > 0.2  # U[0, 1): std 0.289

    def test_x_train_of_the_wrong_shape_names_it(self, images):
        with pytest.raises(ValueError, match=r"x_train must have shape \(N, 1, 8, 8\) or flattened \(N, 64\)"):
            fit(conv_vae(), images[:, :, :4], TrainConfig(epochs=1, progress=False))
        with pytest.raises(ValueError, match="x_train"):
            fit(conv_vae(), images[0, 0], TrainConfig(epochs=1, progress=False))
        with pytest.raises(ValueError, match="x_train"):  # models without a data_shape still take (N, D) only
            fit(Autoencoder(AEConfig(hidden=(8,))), images, TrainConfig(epochs=1, progress=False))

    def test_log_evidence_on_images_is_log_evidence_on_flat_images(self, images):
        vae = conv_vae().eval()
        got = log_evidence(vae, images[:4], 20, generator=gen(1))
        torch.testing.assert_close(got, log_evidence(vae, images[:4].flatten(1), 20, generator=gen(1)), rtol=0,
                                   atol=0)
        with torch.no_grad():
            ref = log_marginal_importance(images[:4].flatten(1), vae, vae.posterior(images[:4]), 20,
                                          generator=gen(1))
        torch.testing.assert_close(got, ref)

    def test_dequantized_images_and_bits_per_dim(self, images):
        vae = conv_vae("gaussian").eval()
        a = dequantized_log_prob(vae, images[:4], 10, generator=gen(2))
        b = dequantized_log_prob(vae, images[:4].flatten(1), 10, generator=gen(2))
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        nats = -a.mean().item()
        assert bits_per_dim(nats, 64) == pytest.approx(nats / (64 * math.log(2)))
        with pytest.raises(ValueError, match="x_int"):
            dequantized_log_prob(vae, images[:4, :, :3], 10, generator=gen(2))


class TestOneScale:
    def test_continuous_density_with_jacobian_integrates_to_one(self):
        # a 1-D Gaussian-decoder VAE on x / 4: exp(log_evidence) must integrate to 1 over x (not to 4)
        vae = VAE(VAEConfig(data_dim=1, latent_dim=1, hidden=(8,), likelihood="gaussian", x_scale=4.0, seed=3))
        x = torch.linspace(-40.0, 40.0, 801).unsqueeze(-1)  # (N, 1)
        p = log_evidence(vae, x, 4000, generator=gen(0)).exp()
        assert (p.sum() * 0.1).item() == pytest.approx(1.0, abs=0.03)

    def test_categorical_score_is_the_importance_weighted_evidence(self, digits):
        vae = tiny()
        got = nll_nats_per_image(vae, digits[:8], 50, generator=gen(2))
        with torch.no_grad():
            ref = -log_marginal_importance(digits[:8], vae, vae.posterior(digits[:8]), 50, generator=gen(2)).mean()
        assert got == pytest.approx(ref.item(), rel=1e-6)

    def test_dequantized_bound_is_below_the_exact_level_probability(self):
        # one pixel, a decoder that ignores z: p(v) is a fixed Gaussian; P(x) = ∫_0^1 p(x + u) du by quadrature
        vae = VAE(VAEConfig(data_dim=1, latent_dim=1, hidden=(4,), likelihood="gaussian", x_scale=17.0))
        with torch.no_grad():
            for p in vae.parameters():  # q_φ(z|x) = p(z) = N(0, 1), and the decoder ignores z: w = p(x) exactly
                p.zero_()
            vae.decoder[-1].bias.copy_(torch.tensor([0.4, 2 * math.log(0.1)]))  # mean 0.4·17 = 6.8, σ = 1.7 levels
        levels = torch.arange(17.0).unsqueeze(-1)
        est = torch.stack([dequantized_log_prob(vae, levels, 1, generator=gen(s)) for s in range(1600)]).mean(0)
        u = (torch.arange(2000) + 0.5) / 2000
        exact = Normal(6.8, 1.7).log_prob(levels + u).exp().mean(-1).log()  # (17,)
        bound = Normal(6.8, 1.7).log_prob(levels + u).mean(-1)  # E_u[log p(x + u)] by quadrature
        torch.testing.assert_close(est, bound, atol=0.05, rtol=0.0)  # the estimator targets the bound ...
        assert (bound <= exact).all()  # ... which is below log P(x) (Jensen)

    def test_bernoulli_on_grey_levels_is_not_normalised(self):
        mass = bernoulli_level_log_mass(torch.tensor([0.0]))
        torch.testing.assert_close(mass[0], torch.tensor(math.log(17 / 2)))  # every level gets ½
        for logit in (1.5, 30.0):  # closed form: (1 − p) Σ_k r^{k/16}, a geometric series in r^{1/16}, r = p/(1 − p)
            r = math.exp(logit / 16)
            exact = math.log(torch.sigmoid(torch.tensor(-logit, dtype=torch.float64)).item() * (r**17 - 1) / (r - 1))
            assert bernoulli_level_log_mass(torch.tensor(logit, dtype=torch.float64)).item() == pytest.approx(exact)

    def test_bernoulli_score_is_refused(self, digits):
        with pytest.raises(ValueError, match="Bernoulli"):
            nll_nats_per_image(tiny("bernoulli"), digits[:4], 5, generator=gen(0))


class TestPitfall:
    def test_mean_mse_plus_kl_is_a_scaled_beta_elbo(self, digits):
        sigma, w = 0.2, 0.5
        vae = tiny("gaussian_fixed", fixed_sigma=sigma, latent_dim=3)
        pitfall = MeanSquaredErrorPlusKL(copy.deepcopy(vae), kld_weight=w)
        beta = implied_beta(w, 64, sigma)
        log_lik, kl = vae.elbo_terms(digits, generator=gen(5))
        neg_elbo_beta = -log_lik + beta * kl.sum(-1)  # (B,)
        scaled = pitfall.loss(digits, generator=gen(5)) * 64 / (2 * sigma**2)  # (B,)
        const = 32 * (LOG_2PI + 2 * math.log(sigma))  # (D/2) log 2πσ²
        torch.testing.assert_close(scaled + const, neg_elbo_beta, rtol=1e-5, atol=1e-3)

    def test_implied_sigma_makes_beta_one(self):
        assert implied_sigma(1.0, 64) == pytest.approx(math.sqrt(32))
        assert implied_beta(1.0, 64, implied_sigma(1.0, 64)) == pytest.approx(1.0)
        assert implied_sigma(1.0, 1) == pytest.approx(1 / math.sqrt(2))  # seed 004: ‖x − x̂‖² + KL

    def test_pitfall_needs_fixed_gaussian(self):
        with pytest.raises(TypeError, match="gaussian_fixed"):
            MeanSquaredErrorPlusKL(tiny("bernoulli"))


class TestUse:
    def test_interpolation_ends_decode_the_posterior_means(self, digits):
        from vae_lib.generation import interpolate
        vae = tiny()
        path = interpolate(vae, digits[0], digits[1], 5)
        with torch.no_grad():
            ends = vae.decode_mean(vae.encode(digits[:2])[0])
        torch.testing.assert_close(path[[0, -1]], ends)

    def test_odd_inputs_stay_on_the_levels(self, digits):
        from vae_lib.generation import odd_digit_inputs
        odd = odd_digit_inputs(digits, generator=gen(0))
        for x in odd.values():
            assert x.shape == digits.shape and x.min() >= 0 and x.max() <= 16 and torch.equal(x, x.round())
        torch.testing.assert_close(odd["inverted"] + digits, torch.full_like(digits, 16.0))
        torch.testing.assert_close(odd["shifted"].view(-1, 8, 8)[:, :, 3:], digits.view(-1, 8, 8)[:, :, :-3])

    def test_active_dimensions_counts_above_threshold(self):
        from vae_lib.collapse import active_dimensions
        assert active_dimensions(torch.tensor([0.0, 0.02, 1.0, 0.5]), 0.05) == 2
        with pytest.raises(ValueError, match="threshold"):
            active_dimensions(torch.tensor([1.0]), 0.0)

    def test_mixture_figure_caps_the_scatter_but_histograms_every_code(self):
        from vae_lib.figures_training import mixture_figure
        x = torch.randn(50, 2)
        fig = mixture_figure(x, x + 1, torch.randn(50, 1), (x[:, 0] > 0).long(), title="t", max_points=20)
        assert len(fig.data[0].x) == len(fig.data[1].x) == 20
        assert sum(fig.data[2].y) + sum(fig.data[3].y) == 50  # the histograms' counts: every code
        with pytest.raises(ValueError, match="max_points"):
            mixture_figure(x, x, torch.randn(50, 1), (x[:, 0] > 0).long(), title="t", max_points=0)

    def test_latent_density_figure_draws_each_density_and_checks_lengths(self):
        from vae_lib.figures_training import latent_density_figure
        z = torch.linspace(-3, 3, 7)
        fig = latent_density_figure(z, {"p(z)": torch.exp(-z**2 / 2), "q(z)": torch.ones(7)}, title="t")
        assert [t.name for t in fig.data] == ["p(z)", "q(z)"] and list(fig.data[1].y) == [1.0] * 7
        assert fig.data[0].line.color != fig.data[1].line.color and fig.layout.xaxis.title.text == "z"
        with pytest.raises(ValueError, match="one value per z"):
            latent_density_figure(z, {"bad": torch.ones(6)}, title="t")

    def test_sampled_observations_have_the_decoder_moments(self):
        from vae_lib.generation import sample_observations
        vae = VAE(VAEConfig(data_dim=2, latent_dim=1, hidden=(4,), likelihood="gaussian", x_scale=5.0))
        with torch.no_grad():
            for p in vae.decoder.parameters():
                p.zero_()
            vae.decoder[-1].bias.copy_(torch.tensor([0.6, -0.2, 2 * math.log(0.2), 2 * math.log(0.1)]))
        x = sample_observations(vae, 20000, generator=gen(0))
        torch.testing.assert_close(x.mean(0), torch.tensor([3.0, -1.0]), atol=0.03, rtol=0)
        torch.testing.assert_close(x.std(0), torch.tensor([1.0, 0.5]), atol=0.02, rtol=0)
