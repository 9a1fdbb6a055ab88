"""vae_lib.priors: the learned mixture-of-Gaussians prior p_ψ(z), its closed-form KL bound, and the VAE that uses it.

Exact answers: torch.distributions (densities, Gaussian KL), float64 quadrature over z for the exact KL to a
mixture and for log p_θ(x) of a 1-D-latent model.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from vae_lib.data import mixture_log_density, sample_mixture
from vae_lib.evaluation import log_evidence
from vae_lib.gaussian import standard_normal_prior
from vae_lib.models import VAE, VAEConfig
from vae_lib.priors import MixturePrior, MixturePriorConfig, MixturePriorVAE, mixture_kl_upper_bound
from vae_lib.train import TrainConfig, fit


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def mixture_params(weights, locs, scales):
    """logits, loc, log_scale of shape (1, C) in float64."""
    t = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
    return t(weights).log(), t(locs), t(scales).log()


def exact_kl_to_mixture(mean: float, std: float, weights, locs, scales) -> float:
    """KL(N(mean, std²) || Σ_c π_c N(m_c, s_c²)) by the trapezoid rule on a fine float64 grid."""
    z = torch.linspace(mean - 12 * std, mean + 12 * std, 200_001, dtype=torch.float64)
    log_q = Normal(torch.tensor(mean, dtype=torch.float64), std).log_prob(z)
    comps = Normal(torch.tensor(locs, dtype=torch.float64), torch.tensor(scales, dtype=torch.float64))
    log_p = torch.logsumexp(torch.tensor(weights, dtype=torch.float64).log() + comps.log_prob(z[:, None]), -1)
    return torch.trapezoid(log_q.exp() * (log_q - log_p), z).item()


def gaussian_vae_1d(prior_config: MixturePriorConfig | None = None, seed: int = 0) -> MixturePriorVAE:
    return MixturePriorVAE(VAEConfig(data_dim=2, latent_dim=1, hidden=(16,), likelihood="gaussian", x_scale=5.0,
                                     seed=seed), prior_config)


class TestMixturePrior:
    def test_log_prob_is_the_weighted_sum_of_component_densities(self):
        prior = MixturePrior(2, MixturePriorConfig(n_components=3))
        with torch.no_grad():
            prior.logits.copy_(torch.tensor([[0.0, 1.0, -1.0], [2.0, 0.0, 0.5]]))
            prior.loc.copy_(torch.tensor([[-2.0, 0.0, 3.0], [1.0, -1.0, 0.0]]))
            prior.log_scale.copy_(torch.tensor([[0.0, -1.0, 0.5], [-0.5, 0.2, 0.0]]))
        z = torch.randn(7, 2, generator=gen(0)) * 2  # (n, L)
        w = torch.softmax(prior.logits, -1)  # (L, C)
        dens = (w * Normal(prior.loc, prior.log_scale.exp()).log_prob(z[..., None]).exp()).sum(-1)  # (n, L)
        with torch.no_grad():
            torch.testing.assert_close(prior.distribution().log_prob(z), dens.log().sum(-1))
        assert prior.distribution().event_shape == (2,)

    def test_one_component_at_initialisation_is_the_standard_normal(self):
        prior = MixturePrior(3, MixturePriorConfig(n_components=1))
        z = torch.randn(5, 3, generator=gen(1))
        with torch.no_grad():
            torch.testing.assert_close(prior.distribution().log_prob(z), standard_normal_prior(3).log_prob(z))

    def test_initial_components_are_evenly_spread(self):
        prior = MixturePrior(1, MixturePriorConfig(n_components=3, init_spread=2.0, init_scale=0.5))
        torch.testing.assert_close(prior.loc.detach(), torch.tensor([[-2.0, 0.0, 2.0]]))
        torch.testing.assert_close(prior.log_scale.exp().detach(), torch.full((1, 3), 0.5))
        torch.testing.assert_close(prior.weights.detach(), torch.full((1, 3), 1 / 3))

    def test_samples_have_the_mixture_moments(self):
        prior = MixturePrior(2, MixturePriorConfig(n_components=2, init_spread=3.0, init_scale=0.5))
        with torch.no_grad():
            prior.logits.copy_(torch.tensor([[0.0, math.log(3.0)], [0.0, 0.0]]))  # π = (¼, ¾) in dimension 0
        z = prior.sample(200_000, generator=gen(2))
        w, m, s = prior.weights.detach(), prior.loc.detach(), prior.log_scale.exp().detach()
        mean = (w * m).sum(-1)  # (L,)
        var = (w * (s**2 + m**2)).sum(-1) - mean**2
        torch.testing.assert_close(z.mean(0), mean, atol=0.02, rtol=0)
        torch.testing.assert_close(z.var(0), var, atol=0.04, rtol=0)
        assert (z[:, 0] > 0).float().mean().item() == pytest.approx(0.75, abs=0.005)
        torch.testing.assert_close(prior.sample(3, generator=gen(9)), prior.sample(3, generator=gen(9)))

    def test_bad_arguments_raise(self):
        with pytest.raises(ValueError, match="n_components"):
            MixturePriorConfig(n_components=0)
        with pytest.raises(ValueError, match="init_scale"):
            MixturePriorConfig(init_scale=0.0)
        with pytest.raises(ValueError, match="init_spread"):
            MixturePriorConfig(init_spread=-1.0)
        with pytest.raises(TypeError, match="MixturePriorConfig"):
            MixturePrior(1, {"n_components": 2})
        with pytest.raises(ValueError, match="latent_dim"):
            MixturePrior(0)
        with pytest.raises(TypeError, match="generator"):
            MixturePrior(1).sample(3, generator=None)
        with pytest.raises(ValueError, match="loc"):
            mixture_kl_upper_bound(torch.zeros(4, 2), torch.zeros(4, 2), torch.zeros(2, 3), torch.zeros(1, 3),
                                   torch.zeros(2, 3))
        with pytest.raises(ValueError, match="same shape"):
            mixture_kl_upper_bound(torch.zeros(4, 2), torch.zeros(4, 2), torch.zeros(2, 3), torch.zeros(2, 2),
                                   torch.zeros(2, 3))
        with pytest.raises(ValueError, match="log_var"):
            mixture_kl_upper_bound(torch.zeros(4, 2), torch.zeros(3, 2), torch.zeros(2, 3), torch.zeros(2, 3),
                                   torch.zeros(2, 3))


class TestKLBound:
    def test_bound_is_minus_log_sum_of_weighted_exp_minus_component_kls(self):
        # the formula, with every component KL from torch.distributions
        mean, log_var = torch.tensor([[0.3], [-1.2]]), torch.tensor([[-1.0], [0.4]])  # (B, L = 1)
        logits, loc, log_scale = torch.tensor([[0.2, -0.3, 1.0]]), torch.tensor([[-1.0, 0.5, 2.0]]), \
            torch.tensor([[0.1, -0.7, 0.3]])
        kl_c = kl_divergence(Normal(mean, torch.exp(0.5 * log_var)), Normal(loc, log_scale.exp()))  # (B, C)
        expected = -torch.logsumexp(torch.log_softmax(logits, -1) - kl_c, -1, keepdim=True)  # (B, 1)
        torch.testing.assert_close(mixture_kl_upper_bound(mean, log_var, logits, loc, log_scale), expected)

    def test_one_component_gives_the_exact_gaussian_kl(self):
        mean, log_var = torch.randn(6, 3, generator=gen(3)), torch.randn(6, 3, generator=gen(4))
        loc, log_scale = torch.randn(3, 1, generator=gen(5)), 0.3 * torch.randn(3, 1, generator=gen(6))
        exact = kl_divergence(Normal(mean, torch.exp(0.5 * log_var)), Normal(loc.T, log_scale.T.exp()))  # (6, 3)
        torch.testing.assert_close(mixture_kl_upper_bound(mean, log_var, torch.zeros(3, 1), loc, log_scale), exact)

    @pytest.mark.parametrize(("mean", "std", "weights", "locs", "scales"), [
        (0.0, 1.0, [0.5, 0.5], [-1.0, 1.0], [1.0, 1.0]),  # q straddles both components: the bound is loose
        (0.1, 0.4, [0.3, 0.7], [-2.0, 1.5], [0.5, 0.8]),
        (-0.5, 2.0, [0.2, 0.5, 0.3], [-3.0, 0.0, 2.0], [0.3, 1.0, 0.6]),
    ])
    def test_bound_is_above_the_exact_kl(self, mean, std, weights, locs, scales):
        exact = exact_kl_to_mixture(mean, std, weights, locs, scales)
        bound = mixture_kl_upper_bound(torch.tensor([[mean]], dtype=torch.float64),
                                       torch.tensor([[2 * math.log(std)]], dtype=torch.float64),
                                       *mixture_params(weights, locs, scales)).item()
        assert bound >= exact - 1e-9
        assert bound - exact < math.log(len(weights))  # at most the entropy of the component choice

    def test_bound_is_loose_when_q_straddles_two_components(self):
        exact = exact_kl_to_mixture(0.0, 1.0, [0.5, 0.5], [-1.0, 1.0], [1.0, 1.0])
        bound = mixture_kl_upper_bound(torch.zeros(1, 1, dtype=torch.float64), torch.zeros(1, 1, dtype=torch.float64),
                                       *mixture_params([0.5, 0.5], [-1.0, 1.0], [1.0, 1.0])).item()
        assert bound > exact + 0.05

    def test_bound_is_tight_inside_one_separated_component(self):
        # q inside the right component of two far-apart ones: KL ≈ −log π_2 + KL(q || N(m_2, s_2²))
        weights, locs, scales = [0.5, 0.5], [-3.0, 3.0], [0.4, 0.4]
        exact = exact_kl_to_mixture(2.9, 0.05, weights, locs, scales)
        bound = mixture_kl_upper_bound(torch.tensor([[2.9]], dtype=torch.float64),
                                       torch.tensor([[2 * math.log(0.05)]], dtype=torch.float64),
                                       *mixture_params(weights, locs, scales)).item()
        assert bound == pytest.approx(exact, abs=1e-6)


class TestMixturePriorVAE:
    def test_prior_follows_the_learned_parameters(self):
        vae = gaussian_vae_1d()
        z = torch.tensor([[0.3]])
        before = vae.prior.log_prob(z).item()
        with torch.no_grad():
            vae.mixture_prior.loc.add_(1.0)
        after = vae.prior.log_prob(z).item()
        expected = torch.logsumexp(Normal(torch.tensor([0.0, 2.0]), 1.0).log_prob(z[0]) + math.log(0.5), -1).item()
        assert after == pytest.approx(expected, rel=1e-6) and after != pytest.approx(before)
        assert {n for n, _ in vae.named_parameters()} >= {"mixture_prior.logits", "mixture_prior.loc",
                                                          "mixture_prior.log_scale"}

    def test_one_component_at_initialisation_trains_like_the_standard_vae(self):
        cfg = VAEConfig(data_dim=2, latent_dim=1, hidden=(16,), likelihood="gaussian", x_scale=5.0)
        a, b = VAE(cfg), MixturePriorVAE(cfg, MixturePriorConfig(n_components=1))
        x = sample_mixture(32, generator=gen(7))
        torch.testing.assert_close(a.elbo(x, 3, generator=gen(8)), b.elbo(x, 3, generator=gen(8)))
        for (la, ka), (lb, kb) in zip([a.elbo_terms(x, generator=gen(9))], [b.elbo_terms(x, generator=gen(9))],
                                      strict=True):
            torch.testing.assert_close(la, lb)
            torch.testing.assert_close(ka, kb)
        torch.testing.assert_close(a.kl_per_dimension(x), b.kl_per_dimension(x))

    def test_elbo_terms_add_up_to_the_elbo_and_bound_the_exact_kl(self):
        vae = gaussian_vae_1d(MixturePriorConfig(n_components=2, init_spread=1.5, init_scale=0.6))
        x = sample_mixture(4, generator=gen(10))
        log_lik, kl = vae.elbo_terms(x, generator=gen(11))
        torch.testing.assert_close(log_lik - kl.sum(-1), vae.elbo(x, 1, generator=gen(11)))
        with torch.no_grad():
            mean, log_var = vae.encode(x)
        for i in range(4):
            exact = exact_kl_to_mixture(mean[i, 0].item(), math.exp(0.5 * log_var[i, 0].item()), [0.5, 0.5],
                                        [-1.5, 1.5], [0.6, 0.6])
            assert kl[i, 0].item() >= exact - 1e-5

    def test_log_evidence_matches_quadrature_over_z(self):
        # a 1-D latent: log p_θ(x) = log ∫ p_ψ(z) p_θ(x|z) dz by quadrature, against the IW estimate with the prior
        vae = gaussian_vae_1d(MixturePriorConfig(n_components=2, init_spread=1.0, init_scale=0.5), seed=4)
        x = sample_mixture(5, generator=gen(12))
        z = torch.linspace(-8.0, 8.0, 8001).view(-1, 1, 1)  # (G, 1, L)
        with torch.no_grad():
            log_joint = vae.log_likelihood(x, z.expand(-1, 5, -1)) + vae.prior.log_prob(z)  # (G, B)
        exact = torch.logsumexp(log_joint, 0) + math.log(16.0 / 8000) - 2 * math.log(5.0)  # Jacobian of x_scale
        est = log_evidence(vae, x, 20_000, generator=gen(13))
        torch.testing.assert_close(est, exact, atol=0.02, rtol=0)

    def test_fit_learns_the_prior_parameters_and_records_the_bound(self):
        vae = gaussian_vae_1d()
        loc0 = vae.mixture_prior.loc.detach().clone()
        x = sample_mixture(512, generator=gen(14))
        h = fit(vae, x, TrainConfig(epochs=3, batch_size=64, learning_rate=1e-2, progress=False))
        assert not torch.equal(vae.mixture_prior.loc.detach(), loc0)
        for rec, kl, elbo, loss in zip(h.reconstruction, h.kl_per_dim, h.elbo, h.loss, strict=True):
            assert elbo == pytest.approx(rec - sum(kl), rel=1e-5)
            assert loss == pytest.approx(-elbo, rel=1e-5)

    def test_bad_prior_config_raises(self):
        with pytest.raises(TypeError, match="MixturePriorConfig"):
            MixturePriorVAE(VAEConfig(data_dim=2, latent_dim=1), prior_config=2)

    def test_standard_vae_prior_is_still_the_standard_normal_and_assignable(self):
        vae = VAE(VAEConfig(data_dim=2, latent_dim=3, hidden=(8,)))
        z = torch.randn(4, 3, generator=gen(15))
        torch.testing.assert_close(vae.prior.log_prob(z), standard_normal_prior(3).log_prob(z))
        other = standard_normal_prior(3, dtype=torch.float64)
        vae.prior = other
        assert vae.prior is other


@pytest.mark.slow
def test_mixture_prior_closes_the_gap_between_the_blobs():
    # the benchmark's data, fewer points and epochs: the learned prior keeps the model's mass out of the gap between
    # the blobs (KL ≈ 0.02 nats here; the same VAE with p(z) = N(0, I) and the same training scores ≈ 0.2)
    x = sample_mixture(4000, generator=gen(0))
    vae = MixturePriorVAE(VAEConfig(data_dim=2, latent_dim=1, likelihood="gaussian", hidden=(64, 64), x_scale=5.0))
    fit(vae, x, TrainConfig(epochs=40, batch_size=256, learning_rate=3e-3, progress=False))
    x_test = sample_mixture(2000, generator=gen(1))
    kl = (mixture_log_density(x_test) - log_evidence(vae, x_test, 200, generator=gen(2))).mean().item()
    assert kl < 0.05


class TestSamplingFromTheModelsPrior:
    """vae_lib.generation draws z from the model's own prior: N(0, I) for the VAE, p_ψ(z) for the mixture-prior VAE."""

    def test_standard_vae_draws_standard_normal_z(self):
        model = VAE(VAEConfig(data_dim=2, latent_dim=3, hidden=(8,), likelihood="gaussian"))
        torch.testing.assert_close(model.sample_prior(5, generator=gen(0)), torch.randn(5, 3, generator=gen(0)))

    def test_mixture_prior_vae_draws_from_its_learned_prior(self):
        model = MixturePriorVAE(VAEConfig(data_dim=2, latent_dim=1, hidden=(8,), likelihood="gaussian"))
        with torch.no_grad():  # two far-apart components with unequal weights: moments differ from N(0, 1)
            model.mixture_prior.logits.copy_(torch.tensor([[math.log(0.8), math.log(0.2)]]))
            model.mixture_prior.loc.copy_(torch.tensor([[-4.0, 6.0]]))
            model.mixture_prior.log_scale.copy_(torch.tensor([[math.log(0.5), math.log(0.5)]]))
        z = model.sample_prior(200_000, generator=gen(1))  # (n, 1)
        mean = 0.8 * -4.0 + 0.2 * 6.0
        var = 0.25 + 0.8 * 16.0 + 0.2 * 36.0 - mean**2
        assert abs(z.mean().item() - mean) < 4 * math.sqrt(var / 200_000)
        assert abs(z.var().item() / var - 1) < 0.02
        from vae_lib.generation import sample_observations

        x = sample_observations(model, 4, generator=gen(2))
        with torch.no_grad():
            z2 = model.sample_prior(4, generator=gen(2))
            mean_x = model.decoder(z2).chunk(2, dim=-1)[0] * model.config.x_scale
        assert x.shape == (4, 2) and torch.isfinite(x).all()
        # same generator, same first draws: the observation noise is added around the decoded prior draws
        assert not torch.allclose(x, mean_x) and (x - mean_x).abs().max() < 10 * model.config.x_scale
