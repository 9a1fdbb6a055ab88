"""vae_lib.networks: chapter 7's convolutional encoder and decoder, inside the one VAE.

Shapes and output layouts against the layers' own outputs, the ELBO against torch.distributions by hand, the
categorical image likelihood summed over every image, training, gradients, seeding and the construction checks.
Small images (8×8, or 32×32 for the shapes) so the file runs in seconds.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn
from torch.distributions import Categorical, Independent, Normal, kl_divergence

from vae_lib.models import VAE, VAEConfig, mlp
from vae_lib.networks import ConvConfig, ConvDecoder, ConvEncoder, conv_networks
from vae_lib.train import TrainConfig, fit


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def levels(shape: tuple[int, ...], n_levels: int = 16, seed: int = 0) -> torch.Tensor:
    """Random integer pixel levels 0 … n_levels − 1 as floats."""
    return torch.randint(0, n_levels, shape, generator=gen(seed)).float()


def conv_vae(likelihood: str = "categorical", shape: tuple[int, int, int] = (1, 8, 8), latent_dim: int = 3,
             channels: tuple[int, ...] = (4, 8), n_levels: int = 16, seed: int = 0) -> VAE:
    config = VAEConfig(data_shape=shape, latent_dim=latent_dim, likelihood=likelihood, n_levels=n_levels,
                       x_scale=float(n_levels - 1), fixed_sigma=0.5, seed=seed)
    return VAE(config, *conv_networks(config, channels=channels))


def decoder_by_hand(dec: ConvDecoder, z: torch.Tensor) -> torch.Tensor:
    """The final convolution's output (N, C·k, H, W), through the decoder's layers one by one."""
    h = dec.head(z).view(z.shape[0], *dec.config.smallest_map)
    return dec.out(dec.blocks(h))


# ---------------------------------------------------------------------------------------------------------
# the networks on their own
# ---------------------------------------------------------------------------------------------------------
class TestShapes:
    def test_encoder_and_decoder_shapes_at_32_by_32(self):
        config = ConvConfig(image_shape=(1, 32, 32), channels=(16, 32, 64), latent_dim=5, out_channels_per_pixel=16)
        enc, dec = ConvEncoder(config).eval(), ConvDecoder(config).eval()
        assert config.smallest_map == (64, 4, 4)
        with torch.no_grad():
            assert enc(torch.zeros(7, 1, 32, 32)).shape == (7, 10)
            assert dec(torch.zeros(7, 5)).shape == (7, 32 * 32 * 16)

    def test_layer_sizes_follow_seed_003(self):
        config = ConvConfig(image_shape=(3, 16, 16), channels=(4, 8), latent_dim=2, out_channels_per_pixel=2)
        enc, dec = ConvEncoder(config), ConvDecoder(config)
        convs = [m for m in enc.modules() if isinstance(m, nn.Conv2d)]
        assert [(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding) for m in convs] == [
            (3, 4, (3, 3), (2, 2), (1, 1)), (4, 8, (3, 3), (2, 2), (1, 1))]
        assert enc.head.in_features == 8 * 4 * 4 and enc.head.out_features == 4
        ups = [m for m in dec.modules() if isinstance(m, nn.ConvTranspose2d)]
        assert [(m.in_channels, m.out_channels, m.stride, m.padding, m.output_padding) for m in ups] == [
            (8, 4, (2, 2), (1, 1), (1, 1)), (4, 4, (2, 2), (1, 1), (1, 1))]  # the last keeps channels[0]
        assert dec.head.out_features == 8 * 4 * 4
        assert (dec.out.in_channels, dec.out.out_channels, dec.out.stride) == (4, 3 * 2, (1, 1))
        slopes = {m.negative_slope for m in dec.modules() if isinstance(m, nn.LeakyReLU)}
        assert slopes == {0.2} and sum(isinstance(m, nn.BatchNorm2d) for m in enc.modules()) == 2

    @pytest.mark.parametrize("layout", ["pixel_major", "parameter_major"])
    def test_output_layout_puts_each_pixel_value_where_the_vae_reads_it(self, layout):
        # C = 2 channels, k = 3 outputs per pixel: flat index of (c, h, w, j) is ((c·H + h)·W + w)·k + j for
        # pixel_major and ((j·C + c)·H + h)·W + w for parameter_major
        config = ConvConfig(image_shape=(2, 4, 4), channels=(3,), latent_dim=2, out_channels_per_pixel=3,
                            output_layout=layout)
        dec = ConvDecoder(config).eval()
        z = torch.randn(5, 2, generator=gen(0))
        with torch.no_grad():
            got = dec(z)
            y = decoder_by_hand(dec, z)  # (5, C·k, H, W)
        for c, h, w, j in itertools.product(range(2), range(4), range(4), range(3)):
            if layout == "pixel_major":
                index, channel = ((c * 4 + h) * 4 + w) * 3 + j, c * 3 + j  # conv channels grouped (C, k)
            else:
                index, channel = ((j * 2 + c) * 4 + h) * 4 + w, j * 2 + c  # conv channels grouped (k, C)
            torch.testing.assert_close(got[:, index], y[:, channel, h, w], rtol=0, atol=0)

    def test_encoder_flattens_features_in_channel_height_width_order(self):
        config = ConvConfig(image_shape=(1, 8, 8), channels=(2, 3), latent_dim=2, out_channels_per_pixel=1)
        enc = ConvEncoder(config).eval()
        x = torch.rand(4, 1, 8, 8, generator=gen(1))
        with torch.no_grad():
            features = enc.blocks(x)  # (4, 3, 2, 2)
            expected = features.reshape(4, -1) @ enc.head.weight.T + enc.head.bias
            torch.testing.assert_close(enc(x), expected)

    def test_wrong_input_shapes_name_the_argument(self):
        config = ConvConfig(image_shape=(1, 8, 8), channels=(2,), latent_dim=2)
        with pytest.raises(ValueError, match=r"x must have shape \(B, 1, 8, 8\)"):
            ConvEncoder(config)(torch.zeros(2, 1, 4, 4))
        with pytest.raises(ValueError, match=r"z must have shape \(N, 2\)"):
            ConvDecoder(config)(torch.zeros(2, 3))

    @pytest.mark.parametrize(
        ("field", "value", "error"),
        [("image_shape", (1, 8), ValueError), ("image_shape", (1, 10, 12), ValueError),
         ("image_shape", (0, 8, 8), ValueError), ("channels", (), ValueError), ("channels", (4, 0), ValueError),
         ("latent_dim", 0, ValueError), ("out_channels_per_pixel", 0, ValueError),
         ("output_layout", "rows", ValueError), ("negative_slope", -0.1, ValueError),
         ("negative_slope", float("nan"), ValueError), ("seed", 1.5, TypeError)],
    )
    def test_invalid_config_names_the_field(self, field, value, error):
        kw = {"image_shape": (1, 8, 8), "channels": (2, 4)}
        kw[field] = value
        with pytest.raises(error, match=field):
            ConvConfig(**kw)

    def test_wrong_config_type(self):
        with pytest.raises(TypeError, match="ConvConfig"):
            ConvEncoder(VAEConfig())
        with pytest.raises(TypeError, match="VAEConfig"):
            conv_networks(ConvConfig())
        with pytest.raises(ValueError, match="data_shape"):
            conv_networks(VAEConfig(data_dim=64))


class TestSeeding:
    def test_same_seed_same_weights_and_global_rng_untouched(self):
        state = torch.get_rng_state()
        a, b, c = conv_vae(seed=3), conv_vae(seed=3), conv_vae(seed=4)
        assert torch.equal(torch.get_rng_state(), state)
        for (ka, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
            assert torch.equal(pa, pb), ka
        assert not torch.equal(a.encoder.head.weight, c.encoder.head.weight)

    def test_encoder_from_seed_decoder_from_seed_plus_one(self):
        config = ConvConfig(image_shape=(1, 8, 8), channels=(2, 4), latent_dim=2, seed=7)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(7)
            first_conv = nn.Conv2d(1, 2, 3, stride=2, padding=1)
            torch.manual_seed(8)
            head = nn.Linear(2, 4 * 2 * 2)
        torch.testing.assert_close(ConvEncoder(config).blocks[0][0].weight, first_conv.weight, rtol=0, atol=0)
        torch.testing.assert_close(ConvDecoder(config).head.weight, head.weight, rtol=0, atol=0)

    def test_conv_networks_follow_the_likelihood(self):
        for likelihood, k, layout in [("categorical", 16, "pixel_major"), ("gaussian", 2, "parameter_major"),
                                      ("bernoulli", 1, "parameter_major"), ("gaussian_fixed", 1, "parameter_major")]:
            config = VAEConfig(data_shape=(1, 8, 8), likelihood=likelihood, n_levels=16, seed=2)
            enc, dec = conv_networks(config, channels=(2,), negative_slope=0.1)
            assert dec.config.out_channels_per_pixel == k and dec.config.output_layout == layout
            assert enc.config.seed == 2 and enc.config.negative_slope == 0.1


# ---------------------------------------------------------------------------------------------------------
# the VAE with convolutional networks
# ---------------------------------------------------------------------------------------------------------
class TestConvVAE:
    def test_shapes_with_k_samples(self):
        vae = conv_vae().eval()
        x = levels((6, 1, 8, 8))
        with torch.no_grad():
            mean, log_var = vae.encode(x)
            z = torch.randn(4, 6, 3, generator=gen(1))  # (K, B, L)
            assert mean.shape == log_var.shape == (6, 3)
            assert vae.log_likelihood(x, z).shape == (4, 6)
            assert vae.decode_mean(z).shape == (4, 6, 64)
            assert vae.elbo(x, 5, generator=gen(2)).shape == (6,)
            assert vae.kl_per_dimension(x).shape == (6, 3)

    def test_k_samples_give_what_each_sample_gives_alone(self):
        vae = conv_vae().eval()  # eval: BatchNorm uses its running averages, each row independent of the others
        x = levels((3, 1, 8, 8), seed=1)
        z = torch.randn(4, 3, 3, generator=gen(3))
        with torch.no_grad():
            together = vae.log_likelihood(x, z)
            alone = torch.stack([vae.log_likelihood(x, z[k:k + 1])[0] for k in range(4)])
        torch.testing.assert_close(together, alone, rtol=1e-6, atol=1e-4)

    def test_flat_and_image_inputs_agree(self):
        vae = conv_vae().eval()
        x = levels((5, 1, 8, 8), seed=2)
        with torch.no_grad():
            torch.testing.assert_close(vae.elbo(x, 3, generator=gen(0)), vae.elbo(x.flatten(1), 3, generator=gen(0)),
                                       rtol=0, atol=0)

    @pytest.mark.parametrize("likelihood", ["categorical", "gaussian", "bernoulli"])
    def test_elbo_is_reconstruction_minus_kl_by_hand(self, likelihood):
        torch.manual_seed(0)  # not used by vae_lib: every draw below comes from a generator
        vae = conv_vae(likelihood, shape=(2, 8, 8)).eval()
        x = levels((4, 2, 8, 8), seed=3)
        if likelihood == "bernoulli":
            x = (x > 7).float() * 15.0  # binary images: 0 or the top level
        k = 3
        with torch.no_grad():
            got = vae.elbo(x, k, generator=gen(4))
            h = vae.encoder(x / 15.0)  # (B, 2L)
            mean, log_var = h[:, :3], h[:, 3:]
            q = Independent(Normal(mean, torch.exp(0.5 * log_var)), 1)
            z = mean + torch.exp(0.5 * log_var) * torch.randn(k, 4, 3, generator=gen(4))  # (K, B, L)
            y = vae.decoder(z.reshape(k * 4, 3))  # (K·B, out)
            if likelihood == "categorical":
                logits = y.view(k, 4, 2, 8, 8, 16)  # (K, B, C, H, W, levels)
                log_lik = Categorical(logits=logits).log_prob(x.long()).sum((-1, -2, -3))
            elif likelihood == "gaussian":
                mu, lv = y.view(k, 4, 2, 2, 8, 8).unbind(2)  # (K, B, C, H, W) each: all means, then log-variances
                log_lik = Normal(mu, torch.exp(0.5 * lv)).log_prob(x / 15.0).sum((-1, -2, -3))
            else:
                log_lik = torch.distributions.Bernoulli(logits=y.view(k, 4, 2, 8, 8)).log_prob(x / 15.0).sum((-1, -2,
                                                                                                              -3))
            prior = Independent(Normal(torch.zeros(3), torch.ones(3)), 1)
            expected = log_lik.view(k, 4).mean(0) - kl_divergence(q, prior)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-3)

    def test_categorical_image_likelihood_sums_to_one_over_all_images(self):
        # 2×2 images with 3 levels: Σ over the 3⁴ = 81 images of p_θ(x|z) = 1 for a fixed z
        vae = conv_vae(shape=(1, 2, 2), channels=(4,), n_levels=3).eval()
        images = torch.tensor(list(itertools.product(range(3), repeat=4)), dtype=torch.float32).view(81, 1, 2, 2)
        z = torch.randn(1, 1, 3, generator=gen(5)).expand(1, 81, 3)  # the same z for every image
        with torch.no_grad():
            total = torch.logsumexp(vae.log_likelihood(images, z).double(), dim=-1).exp()
        assert total.item() == pytest.approx(1.0, abs=1e-6)

    def test_gradient_reaches_every_parameter(self):
        vae = conv_vae("gaussian")
        vae.train()
        vae.loss(levels((8, 1, 8, 8), seed=4), generator=gen(6)).mean().backward()
        for name, p in vae.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, name

    def test_fit_lowers_the_loss_and_leaves_eval_mode(self):
        vae = conv_vae()
        before = vae.encoder.blocks[0][1].running_mean.clone()
        history = fit(vae, levels((256, 1, 8, 8), seed=5), TrainConfig(epochs=2, batch_size=32, learning_rate=3e-3,
                                                                         progress=False))
        assert history.loss[1] < history.loss[0]
        assert not vae.training and not any(m.training for m in vae.modules())
        assert not torch.equal(vae.encoder.blocks[0][1].running_mean, before)  # BatchNorm statistics were updated
        assert history.elbo[-1] == pytest.approx(history.reconstruction[-1] - sum(history.kl_per_dim[-1]), rel=1e-5)

    def test_bits_per_dim_of_a_uniform_decoder_is_four(self):
        # decoder logits all 0 and q_φ(z|x) = p(z): every weight is p_θ(x|z) = 16^−D, so −log P(x) = D ln 16
        from vae_lib.evaluation import bits_per_dim, nll_nats_per_image
        vae = conv_vae(shape=(1, 8, 8)).eval()
        with torch.no_grad():
            for layer in (vae.encoder.head, vae.decoder.out):
                layer.weight.zero_()
                layer.bias.zero_()
        nats = nll_nats_per_image(vae, levels((4, 1, 8, 8), seed=6), 8, generator=gen(7))
        assert nats == pytest.approx(64 * math.log(16), rel=1e-6)
        assert bits_per_dim(nats, 64) == pytest.approx(4.0, rel=1e-6)


# ---------------------------------------------------------------------------------------------------------
# the VAE's checks of the networks it is given
# ---------------------------------------------------------------------------------------------------------
class TestNetworkChecks:
    def test_wrong_encoder_output_size(self):
        config = VAEConfig(data_dim=64, latent_dim=2, hidden=(8,))
        with pytest.raises(ValueError, match=r"encoder must map .* to \(B, 4\)"):
            VAE(config, encoder=mlp((64, 8, 3)))

    def test_wrong_decoder_output_size(self):
        config = VAEConfig(data_dim=64, latent_dim=2, hidden=(8,), likelihood="gaussian")
        with pytest.raises(ValueError, match=r"decoder must map .* to \(B, 128\)"):
            VAE(config, decoder=mlp((2, 8, 64)))

    def test_encoder_that_cannot_take_the_data(self):
        config = VAEConfig(data_shape=(1, 8, 8), latent_dim=2)
        enc, dec = conv_networks(VAEConfig(data_shape=(1, 16, 16), latent_dim=2), channels=(2,))
        with pytest.raises(ValueError, match=r"encoder must take x / x_scale of shape \(B, 1, 8, 8\)"):
            VAE(config, encoder=enc)
        with pytest.raises(ValueError, match="decoder must map"):
            VAE(config, decoder=dec)  # 16×16 outputs for 8×8 images

    def test_networks_must_be_modules(self):
        with pytest.raises(TypeError, match="encoder must be a torch.nn.Module"):
            VAE(VAEConfig(), encoder=lambda x: x)

    def test_the_check_moves_no_batchnorm_statistics_and_keeps_modes(self):
        config = VAEConfig(data_shape=(1, 8, 8), latent_dim=2, n_levels=16)
        enc, dec = conv_networks(config, channels=(2, 4))
        dec.eval()
        states = [{k: v.clone() for k, v in net.state_dict().items()} for net in (enc, dec)]
        VAE(config, enc, dec)
        for net, state in zip((enc, dec), states, strict=True):
            for key, value in net.state_dict().items():
                assert torch.equal(value, state[key]), key
        assert enc.training and all(m.training for m in enc.modules())
        assert not any(m.training for m in dec.modules())

    def test_wrong_data_shape_names_x(self):
        vae = conv_vae().eval()
        with pytest.raises(ValueError, match=r"x must have shape \(B, 1, 8, 8\) or flattened \(B, 64\)"):
            vae.encode(torch.zeros(2, 1, 4, 4))
        with pytest.raises(ValueError, match="x must have shape"):
            vae.log_likelihood(torch.zeros(2, 63), torch.zeros(1, 2, 3))

    def test_decoder_width_counts_every_layer_output(self):
        vae = conv_vae(shape=(1, 8, 8), channels=(4,), latent_dim=2)
        # Linear 4·4·4, ConvT + BN + LeakyReLU 3 × 4·8·8, final conv 16·8·8, plus the likelihood's copy 64·16
        assert vae.decoder_width == 64 + 3 * 256 + 1024 + 1024
