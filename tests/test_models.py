"""vae_lib.models and vae_lib.train: the VAE's likelihoods and bounds, seeding, and a tiny training run.

Tiny configurations only (one hidden layer of 16 units) so that the whole file runs in a few seconds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Categorical, Normal

from vae_lib.data import load_digits_split
from vae_lib.elbo import elbo_joint_plus_entropy, elbo_reconstruction_minus_kl, log_marginal_importance
from vae_lib.gaussian import sample
from vae_lib.likelihoods import bernoulli_log_likelihood, categorical_log_likelihood, gaussian_log_likelihood
from vae_lib.models import VAE, AEConfig, Autoencoder, VAEConfig, mlp
from vae_lib.networks import _seeded
from vae_lib.train import TrainConfig, fit

LIKELIHOODS = ["categorical", "bernoulli", "gaussian", "gaussian_fixed"]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def tiny(likelihood: str = "categorical", **kw) -> VAE:
    return VAE(VAEConfig(hidden=(16,), likelihood=likelihood, fixed_sigma=0.5, **kw))


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    return load_digits_split().x_train[:8]  # (8, 64) float levels 0..16


# ---------------------------------------------------------------------------------------------------------
# decoder likelihoods
# ---------------------------------------------------------------------------------------------------------
class TestLogLikelihood:
    @pytest.mark.parametrize("likelihood", LIKELIHOODS)
    def test_equals_the_likelihood_function_on_the_decoder_output(self, digits, likelihood):
        vae = tiny(likelihood)
        z = torch.randn(3, 8, 2, generator=gen(0))  # (K, B, L)
        with torch.no_grad():
            got = vae.log_likelihood(digits, z)
            out = vae.decoder(z)
        assert got.shape == (3, 8)
        x = digits / 16.0
        expected = {
            "categorical": lambda: categorical_log_likelihood(digits, out.unflatten(-1, (64, 17))),
            "bernoulli": lambda: bernoulli_log_likelihood(x, out),
            "gaussian": lambda: gaussian_log_likelihood(x, out[..., :64], out[..., 64:]),
            "gaussian_fixed": lambda: gaussian_log_likelihood(x, out, 2 * math.log(0.5)),
        }[likelihood]()
        torch.testing.assert_close(got, expected)

    @pytest.mark.parametrize("likelihood", LIKELIHOODS)
    def test_equals_torch_distributions(self, digits, likelihood):
        vae = tiny(likelihood)
        z = torch.randn(3, 8, 2, generator=gen(1))
        with torch.no_grad():
            got = vae.log_likelihood(digits, z)
            out = vae.decoder(z)
        x = digits / 16.0
        if likelihood == "categorical":
            expected = Categorical(logits=out.view(3, 8, 64, 17)).log_prob(digits.long()).sum(-1)
        elif likelihood == "bernoulli":  # grey levels: x log p + (1 − x) log(1 − p)
            expected = (x * F.logsigmoid(out) + (1 - x) * F.logsigmoid(-out)).sum(-1)
        elif likelihood == "gaussian":
            expected = Normal(out[..., :64], torch.exp(0.5 * out[..., 64:])).log_prob(x).sum(-1)
        else:
            expected = Normal(out, 0.5).log_prob(x).sum(-1)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-4)

    def test_categorical_is_normalised_over_levels(self):
        # one pixel: Σ over its 17 levels of p_θ(x|z) = 1
        vae = VAE(VAEConfig(data_dim=1, hidden=(8,), likelihood="categorical"))
        z = torch.randn(1, 1, 2, generator=gen(2)).expand(1, 17, 2)  # the same z for the 17 candidate images
        levels = torch.arange(17.0).unsqueeze(-1)  # (17, 1)
        with torch.no_grad():
            ll = vae.log_likelihood(levels, z)
        assert ll.exp().sum().item() == pytest.approx(1.0, abs=1e-5)

    def test_bad_input(self, digits):
        vae = tiny()
        with pytest.raises(ValueError, match="x"):
            vae.log_likelihood(digits[:, :10], torch.zeros(1, 8, 2))
        with pytest.raises(ValueError, match="z"):
            vae.log_likelihood(digits, torch.zeros(1, 8, 3))
        with pytest.raises(ValueError, match="x"):
            vae.encode(digits[0])


# ---------------------------------------------------------------------------------------------------------
# the bounds
# ---------------------------------------------------------------------------------------------------------
class TestBounds:
    def test_elbo_equals_the_generic_reconstruction_minus_kl(self, digits):
        vae = tiny()
        with torch.no_grad():
            a = vae.elbo(digits, 50, generator=gen(3))
            b = elbo_reconstruction_minus_kl(digits, vae, vae.posterior(digits), 50, generator=gen(3))
        assert a.shape == (8,)
        torch.testing.assert_close(a, b, rtol=0, atol=0)

    def test_loss_is_the_one_sample_negative_elbo(self, digits):
        vae = tiny("bernoulli")
        with torch.no_grad():
            torch.testing.assert_close(vae.loss(digits, generator=gen(4)), -vae.elbo(digits, 1, generator=gen(4)))

    def test_the_elbo_forms_agree_within_error_bars(self, digits):
        vae = tiny("gaussian")
        k = 2000
        with torch.no_grad():
            q = vae.posterior(digits)
            a = vae.elbo(digits, k, generator=gen(5))
            b = elbo_joint_plus_entropy(digits, vae, q, k, generator=gen(6))
            z = sample(q, k, generator=gen(5))
            se_a = vae.log_likelihood(digits, z).std(0) / math.sqrt(k)
            z = sample(q, k, generator=gen(6))
            se_b = (vae.log_likelihood(digits, z) + vae.prior.log_prob(z)).std(0) / math.sqrt(k)
        assert ((a - b).abs() < 4 * torch.sqrt(se_a**2 + se_b**2)).all()

    def test_elbo_below_iwae_on_average(self, digits):
        vae = tiny()
        reps = 20
        with torch.no_grad():
            q = vae.posterior(digits)
            elbo = vae.elbo(digits, 2000, generator=gen(7))
            x_rep = digits.repeat(reps, 1)
            q_rep = vae.posterior(x_rep)
            iwae = log_marginal_importance(x_rep, vae, q_rep, 50, generator=gen(8)).view(reps, 8)
            z = sample(q, 2000, generator=gen(7))
            se_elbo = vae.log_likelihood(digits, z).std(0) / math.sqrt(2000)
        se_iwae = iwae.std(0) / math.sqrt(reps)
        assert (iwae.mean(0) > elbo - 3 * torch.sqrt(se_elbo**2 + se_iwae**2)).all()
        assert iwae.mean() > elbo.mean()

    def test_gradient_reaches_encoder_and_decoder(self, digits):
        vae = tiny("gaussian")
        vae.loss(digits, generator=gen(9)).mean().backward()
        for p in vae.parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all()
        assert any(p.grad.abs().sum() > 0 for p in vae.encoder.parameters())


# ---------------------------------------------------------------------------------------------------------
# decoder means
# ---------------------------------------------------------------------------------------------------------
class TestDecodeMean:
    def test_categorical_mean_is_the_expected_level(self):
        vae = tiny()
        z = torch.randn(4, 5, 2, generator=gen(10))
        with torch.no_grad():
            mean = vae.decode_mean(z)
            probs = Categorical(logits=vae.decoder(z).unflatten(-1, (64, 17))).probs
        assert mean.shape == (4, 5, 64)
        torch.testing.assert_close(mean, (probs * torch.arange(17.0)).sum(-1))
        assert (mean >= 0).all() and (mean <= 16).all()

    @pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "gaussian_fixed"])
    def test_other_means_in_data_units(self, likelihood):
        vae = tiny(likelihood)
        z = torch.randn(5, 2, generator=gen(11))
        with torch.no_grad():
            mean, out = vae.decode_mean(z), vae.decoder(z)
        expected = {"bernoulli": torch.sigmoid(out), "gaussian": out[..., :64], "gaussian_fixed": out}[likelihood]
        torch.testing.assert_close(mean, 16.0 * expected)


# ---------------------------------------------------------------------------------------------------------
# construction, seeding and configuration checks
# ---------------------------------------------------------------------------------------------------------
class TestConstruction:
    def test_same_seed_same_weights(self):
        a, b, c = tiny(seed=3), tiny(seed=3), tiny(seed=4)
        for pa, pb in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
            assert torch.equal(pa, pb)
        assert any(not torch.equal(pa, pc) for pa, pc in zip(a.state_dict().values(), c.state_dict().values(),
                                                             strict=True))

    def test_construction_leaves_the_global_rng_alone(self):
        state = torch.get_rng_state()
        tiny(seed=5)
        Autoencoder(AEConfig(hidden=(16,), seed=5))
        assert torch.equal(torch.get_rng_state(), state)

    def test_output_sizes(self):
        sizes = {"categorical": 64 * 17, "bernoulli": 64, "gaussian": 128, "gaussian_fixed": 64}
        for likelihood, size in sizes.items():
            vae = tiny(likelihood)
            assert vae.decoder(torch.zeros(1, 2)).shape == (1, size)
            assert vae.encoder(torch.zeros(1, 64)).shape == (1, 4)

    def test_default_networks_have_the_weights_chapters_1_to_6_were_trained_from(self):
        # SHA-256 of the initial state_dict (names and float32 bytes) computed before the VAE took its networks as
        # arguments: the default MLPs must stay bit-identical, or every chapter's numbers would change
        pinned = {VAEConfig(): "58de9a06fb61bff695d8534f8d93e4cb6d78b983887d19837cabf2fe763d7a37",
                  VAEConfig(data_dim=2, latent_dim=1, likelihood="gaussian", hidden=(64, 64), seed=3):
                      "72161b7acc2b85feb464234167d3db69e8bfc802c0b1395796f61900e689738c"}
        for config, expected in pinned.items():
            digest = hashlib.sha256()
            for key, value in VAE(config).state_dict().items():
                digest.update(key.encode())
                digest.update(value.contiguous().numpy().tobytes())
            assert digest.hexdigest() == expected, config

    def test_default_networks_are_the_seeded_mlps(self):
        c = VAEConfig(hidden=(16, 8), likelihood="gaussian", seed=5)
        encoder = _seeded(5, lambda: mlp((64, 16, 8, 4)))
        decoder = _seeded(6, lambda: mlp((2, 8, 16, 128)))
        for built, given in ((VAE(c).encoder, encoder), (VAE(c).decoder, decoder)):
            for (ka, a), (kb, b) in zip(built.state_dict().items(), given.state_dict().items(), strict=True):
                assert ka == kb and torch.equal(a, b)
        # the same networks passed in give the same model
        vae, given = VAE(c), VAE(c, encoder=encoder, decoder=decoder)
        x = load_digits_split().x_train[:4]
        with torch.no_grad():
            torch.testing.assert_close(given.elbo(x, 3, generator=gen(0)), vae.elbo(x, 3, generator=gen(0)),
                                       rtol=0, atol=0)

    def test_decoder_width_of_the_mlp(self):
        # log_evidence's chunks depend on it: 2·Σ hidden + 2·out for the fully connected decoder
        for likelihood, out in [("categorical", 64 * 17), ("gaussian", 128), ("bernoulli", 64)]:
            assert tiny(likelihood).decoder_width == 2 * 16 + 2 * out
        assert VAE(VAEConfig(hidden=(32, 8))).decoder_width == 2 * 40 + 2 * 64 * 17

    def test_data_shape_and_data_dim(self):
        assert VAEConfig().data_shape == (64,) and VAEConfig().data_dim == 64
        assert VAEConfig(data_dim=2).data_shape == (2,)
        assert VAEConfig(data_shape=(1, 32, 32)).data_dim == 1024
        assert VAEConfig(data_shape=[3, 4, 4]).data_shape == (3, 4, 4)
        assert VAEConfig(data_dim=48, data_shape=(3, 4, 4)).data_dim == 48
        assert VAEConfig(data_dim=64) == VAEConfig(data_shape=(64,)) == VAEConfig()
        with pytest.raises(ValueError, match="data_dim"):
            VAEConfig(data_dim=64, data_shape=(1, 32, 32))
        with pytest.raises(TypeError, match="data_shape"):
            VAEConfig(data_shape=())
        with pytest.raises(TypeError, match="data_shape"):
            VAEConfig(data_shape=64)

    def test_decoder_output_sizes_per_likelihood(self):
        for likelihood, k, layout in [("categorical", 17, "pixel_major"), ("gaussian", 2, "parameter_major"),
                                      ("bernoulli", 1, "parameter_major"), ("gaussian_fixed", 1, "parameter_major")]:
            c = VAEConfig(data_shape=(2, 3, 5), likelihood=likelihood)
            assert (c.decoder_outputs_per_dim, c.decoder_layout, c.decoder_output_size) == (k, layout, 30 * k)

    def test_default_mlp_on_images_flattens_them(self):
        flat, image = VAE(VAEConfig(hidden=(16,))), VAE(VAEConfig(data_shape=(1, 8, 8), hidden=(16,)))
        for a, b in zip(flat.parameters(), image.parameters(), strict=True):
            assert torch.equal(a, b)  # the same seeded weights: nn.Flatten has none
        x = load_digits_split().x_train[:4]
        with torch.no_grad():
            expected = flat.elbo(x, 2, generator=gen(0))
            torch.testing.assert_close(image.elbo(x.view(4, 1, 8, 8), 2, generator=gen(0)), expected, rtol=0, atol=0)
            torch.testing.assert_close(image.elbo(x, 2, generator=gen(0)), expected, rtol=0, atol=0)
            assert image.decode_mean(torch.zeros(3, 2)).shape == (3, 64)  # flat (..., D)

    @pytest.mark.parametrize(
        ("field", "value", "error"),
        [("likelihood", "poisson", ValueError), ("latent_dim", 0, ValueError), ("data_dim", -1, ValueError),
         ("data_shape", (1, 0, 3), ValueError), ("data_shape", (1, 2.5), TypeError),
         ("n_levels", 1, ValueError), ("x_scale", 0.0, ValueError), ("fixed_sigma", -1.0, ValueError),
         ("hidden", (16, 0), ValueError), ("latent_dim", 2.5, TypeError)],
    )
    def test_invalid_config_names_the_field(self, field, value, error):
        with pytest.raises(error, match=field):
            VAEConfig(**{field: value})

    def test_invalid_ae_config_and_wrong_config_type(self):
        with pytest.raises(ValueError, match="latent_dim"):
            AEConfig(latent_dim=0)
        with pytest.raises(TypeError, match="config"):
            VAE(AEConfig())
        with pytest.raises(TypeError, match="config"):
            Autoencoder(VAEConfig())
        with pytest.raises(dataclasses.FrozenInstanceError):
            VAEConfig().latent_dim = 3


# ---------------------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def x_train() -> torch.Tensor:
    return load_digits_split().x_train[:128]


class TestFit:
    def test_loss_decreases_and_runs_are_reproducible(self, x_train):
        config = TrainConfig(epochs=3, batch_size=32, learning_rate=3e-3, progress=False)
        vae1, vae2 = tiny(), tiny()
        h1 = fit(vae1, x_train, config)
        h2 = fit(vae2, x_train, config)
        assert len(h1.loss) == 3
        assert h1.loss[-1] < h1.loss[0]
        assert h1.loss == h2.loss
        for p1, p2 in zip(vae1.parameters(), vae2.parameters(), strict=True):
            assert torch.equal(p1, p2)
        assert not vae1.training  # fit leaves the model in eval mode

    def test_different_seed_different_history(self, x_train):
        config = TrainConfig(epochs=1, batch_size=32, progress=False)
        h1 = fit(tiny(), x_train, config)
        h2 = fit(tiny(), x_train, dataclasses.replace(config, seed=1))
        assert h1.loss != h2.loss

    def test_autoencoder_loss_decreases(self, x_train):
        ae = Autoencoder(AEConfig(hidden=(16,)))
        history = fit(ae, x_train, TrainConfig(epochs=3, batch_size=32, learning_rate=3e-3, progress=False))
        assert history.loss[-1] < history.loss[0]
        x = x_train[:4]
        with torch.no_grad():
            expected = ((ae.decode_mean(ae.encode(x)) / 16 - x / 16) ** 2).sum(-1)
            torch.testing.assert_close(ae.loss(x), expected)

    def test_bad_arguments(self, x_train):
        with pytest.raises(ValueError, match="epochs"):
            TrainConfig(epochs=0)
        with pytest.raises(ValueError, match="learning_rate"):
            TrainConfig(learning_rate=0.0)
        with pytest.raises(TypeError, match="config"):
            fit(tiny(), x_train, {"epochs": 1})
        with pytest.raises(TypeError, match="model"):
            fit(object(), x_train, TrainConfig(epochs=1, progress=False))
        with pytest.raises(ValueError, match="x_train"):
            fit(tiny(), x_train[0], TrainConfig(epochs=1, progress=False))
