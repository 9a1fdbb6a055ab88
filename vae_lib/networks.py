"""The networks a :class:`vae_lib.models.VAE` wraps: fully connected (chapters 1–6) and convolutional (chapter 7).

The VAE only fixes the interface of its two networks:

* the encoder maps x / x_scale in the data's own shape, (B, D) or (B, C, H, W), to (B, 2L): the mean μ_φ(x) and the
  log-variance log σ_φ²(x) of q_φ(z|x), concatenated;
* the decoder maps z of shape (N, L) to (N, out), the parameters of p_θ(x|z) for the flattened x (D = C·H·W pixels,
  in C, H, W order): D·n_levels logits laid out as (D, n_levels) for the categorical decoder, D values for the
  Bernoulli and fixed-σ Gaussian, 2D (all D means, then all D log-variances) for the Gaussian.

:func:`mlp` builds the fully connected networks of the earlier chapters. :class:`ConvEncoder` and
:class:`ConvDecoder` are chapter 7's convolutional pair, in the shape of the PyTorch-VAE model of seed 003 (strided
3×3 convolutions + BatchNorm + LeakyReLU down to a small feature map and a Linear layer to 2L; a Linear layer back
to that feature map, transposed 3×3 convolutions + BatchNorm + LeakyReLU up, and a last 3×3 convolution to the
per-pixel outputs), scaled down for a CPU. :func:`conv_networks` builds the pair a given
:class:`~vae_lib.models.VAEConfig` needs.

BatchNorm makes train and eval modes differ: in ``model.train()`` each BatchNorm normalises with the statistics of
the current batch (and updates its running averages; a batch of one image is refused by torch), in ``model.eval()``
with the running averages, so the networks are deterministic functions of their input. The convolutions keep
their weights and feature maps channels-last (``torch.channels_last``), about 1.5 times faster on a CPU than the
default layout; values and the flattened output layout are the same.
:func:`vae_lib.train.fit` switches the model to train mode and back to eval mode when it is done; every evaluation
(ELBO, log-evidence, decoding) should run in eval mode.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeVar

import torch
from torch import Tensor, nn

from ._checks import as_model_input, check_count, check_instance

if TYPE_CHECKING:
    from .models import VAEConfig

__all__ = ["ConvConfig", "ConvDecoder", "ConvEncoder", "OutputLayout", "conv_networks", "mlp"]

OutputLayout = Literal["pixel_major", "parameter_major"]
_LAYOUTS = ("pixel_major", "parameter_major")

M = TypeVar("M", bound=nn.Module)


def mlp(sizes: tuple[int, ...]) -> nn.Sequential:
    """Linear layers of the given sizes with SiLU between them (none after the last)."""
    check_instance("sizes", sizes, (tuple, list), "a tuple of at least two layer sizes, e.g. (64, 256, 4)")
    if len(sizes) < 2:
        raise ValueError(f"sizes must hold at least two layer sizes (input and output), got {sizes!r}")
    sizes = tuple(check_count("sizes", s, maximum=1_000_000) for s in sizes)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.SiLU())
    return nn.Sequential(*layers)


def _seeded(seed: int, build: Callable[[], M]) -> M:
    """Build modules with their initial weights drawn from a private seed, leaving global RNG state alone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


@dataclass(frozen=True)
class ConvConfig:
    """Architecture of chapter 7's convolutional encoder and decoder (:class:`ConvEncoder`, :class:`ConvDecoder`).

    ``image_shape`` (C, H, W): H and W must be divisible by 2^len(``channels``), the number of stride-2 blocks.
    ``channels``: the feature maps of the encoder's blocks, from the image down (the decoder mirrors them).
    ``out_channels_per_pixel`` k: how many decoder outputs each of the D = C·H·W pixels gets (n_levels logits for
    a categorical p_θ(x|z), 2 for a Gaussian with learned variance, 1 for Bernoulli or fixed-σ Gaussian), and
    ``output_layout`` how the decoder lays out its D·k outputs when flattened: ``"pixel_major"`` (D, k), each
    pixel's k values together (the categorical logits), or ``"parameter_major"`` (k, D), e.g. all D means then all D
    log-variances (the Gaussian). ``negative_slope`` is the LeakyReLU's. The encoder draws its initial weights from
    ``seed``, the decoder from ``seed + 1`` (the fully connected VAE's convention).
    """

    image_shape: tuple[int, int, int] = (1, 32, 32)
    channels: tuple[int, ...] = (16, 32, 64)
    latent_dim: int = 2
    out_channels_per_pixel: int = 16
    output_layout: OutputLayout = "pixel_major"
    negative_slope: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.image_shape, tuple) or len(self.image_shape) != 3:
            raise ValueError(f"image_shape must be a tuple (C, H, W), got {self.image_shape!r}")
        for s in self.image_shape:
            check_count("image_shape", s)
        if not isinstance(self.channels, tuple) or not self.channels:
            raise ValueError(f"channels must be a non-empty tuple of feature-map counts, got {self.channels!r}")
        for ch in self.channels:
            check_count("channels", ch)
        factor = 2 ** len(self.channels)
        _, h, w = self.image_shape
        if h % factor or w % factor:
            raise ValueError(f"image_shape {self.image_shape}: height and width must be divisible by "
                             f"2^len(channels) = {factor} (one stride-2 block per entry of channels)")
        check_count("latent_dim", self.latent_dim)
        check_count("out_channels_per_pixel", self.out_channels_per_pixel)
        if self.output_layout not in _LAYOUTS:
            raise ValueError(f"output_layout must be one of {_LAYOUTS}, got {self.output_layout!r}")
        if not (isinstance(self.negative_slope, (int, float)) and math.isfinite(self.negative_slope)
                and self.negative_slope >= 0):
            raise ValueError(f"negative_slope must be a finite number >= 0, got {self.negative_slope!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise TypeError(f"seed must be an integer, got {type(self.seed).__name__}")

    @property
    def smallest_map(self) -> tuple[int, int, int]:
        """(channels[-1], H / 2^n, W / 2^n): the feature map between the convolutions and the Linear layer."""
        factor = 2 ** len(self.channels)
        return self.channels[-1], self.image_shape[1] // factor, self.image_shape[2] // factor

    @property
    def data_dim(self) -> int:
        """D = C·H·W, the number of pixels of the flattened image."""
        return math.prod(self.image_shape)


def _down_block(c_in: int, c_out: int, slope: float) -> nn.Sequential:
    """Conv2d(3×3, stride 2, padding 1) + BatchNorm2d + LeakyReLU: halves height and width."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel_size=3, stride=2, padding=1), nn.BatchNorm2d(c_out),
                         nn.LeakyReLU(slope))


def _up_block(c_in: int, c_out: int, slope: float) -> nn.Sequential:
    """ConvTranspose2d(3×3, stride 2, padding 1, output_padding 1) + BatchNorm2d + LeakyReLU: doubles them."""
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, kernel_size=3, stride=2, padding=1, output_padding=1),
                         nn.BatchNorm2d(c_out), nn.LeakyReLU(slope))


class ConvEncoder(nn.Module):
    """The network of q_φ(z|x) = N(μ_φ(x), diag σ_φ²(x)) for images
    (chapter 7): (B, C, H, W) -> (B, 2L).

    One stride-2 block (3×3 convolution, BatchNorm2d, LeakyReLU) per entry
    of ``config.channels`` takes the image (x / x_scale) down to the
    feature map ``config.smallest_map``; a Linear layer maps it, flattened,
    to μ and log σ², concatenated. Initial weights come from
    ``config.seed``. BatchNorm: train mode normalises with batch
    statistics, eval mode with running averages (see the module
    docstring).
    """

    def __init__(self, config: ConvConfig) -> None:
        super().__init__()
        if not isinstance(config, ConvConfig):
            raise TypeError("config must be a ConvConfig, got "
                            f"{type(config).__name__}")
        self.config = c = config

        def build() -> tuple[nn.Sequential, nn.Linear]:
            ins = (c.image_shape[0], *c.channels[:-1])
            blocks = nn.Sequential(*(
                _down_block(a, b, c.negative_slope)
                for a, b in zip(ins, c.channels, strict=True)))
            head = nn.Linear(math.prod(c.smallest_map), 2 * c.latent_dim)
            return blocks, head

        self.blocks, self.head = _seeded(c.seed, build)
        # same weights; convolutions run faster on a CPU
        self.blocks.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> Tensor:
        """x / x_scale (B, C, H, W) -> μ_φ(x) and log σ_φ²(x)
        concatenated, (B, 2L)."""
        # numpy / float64 / integer images in the network's dtype
        x = as_model_input("x", x, self, ndim=4)
        if x.dim() != 4 or tuple(x.shape[1:]) != self.config.image_shape:
            shape = ", ".join(map(str, self.config.image_shape))
            raise ValueError(f"x must have shape (B, {shape}) "
                             f"(config.image_shape), got {tuple(x.shape)}")
        x = x.contiguous(memory_format=torch.channels_last)
        h = self.blocks(x)  # (B, c, h, w)
        # (B, c·h·w) in c, h, w order -> (B, 2L)
        return self.head(h.flatten(1))


class ConvDecoder(nn.Module):
    """The network of p_θ(x|z) for images (chapter 7): z (N, L)
    -> (N, D·k), the parameters of each pixel.

    A Linear layer maps z to the feature map ``config.smallest_map``; one
    stride-2 transposed block (3×3 ConvTranspose2d, BatchNorm2d,
    LeakyReLU) per entry of ``config.channels`` takes it back up to H × W,
    mirroring :class:`ConvEncoder` (the last block keeps ``channels[0]``
    feature maps, as in seed 003's ``final_layer``), and a 3×3
    convolution gives C·k values per position: k =
    ``out_channels_per_pixel`` for each of the C channels. They are
    flattened to D·k in ``config.output_layout``: (D, k) for
    ``"pixel_major"`` (categorical logits), (k, D) for
    ``"parameter_major"`` (Gaussian means, then log-variances), with D in
    C, H, W order. Initial weights come from ``config.seed + 1``.
    BatchNorm: train and eval modes differ (see the module docstring).
    """

    def __init__(self, config: ConvConfig) -> None:
        super().__init__()
        if not isinstance(config, ConvConfig):
            raise TypeError("config must be a ConvConfig, got "
                            f"{type(config).__name__}")
        self.config = c = config

        def build() -> tuple[nn.Linear, nn.Sequential, nn.Conv2d]:
            head = nn.Linear(c.latent_dim, math.prod(c.smallest_map))
            ch = c.channels[::-1]  # e.g. (64, 32, 16): smallest map first
            outs = (*ch[1:], ch[-1])
            blocks = nn.Sequential(*(
                _up_block(a, b, c.negative_slope)
                for a, b in zip(ch, outs, strict=True)))
            c_out = c.image_shape[0] * c.out_channels_per_pixel  # C·k
            out = nn.Conv2d(ch[-1], c_out, kernel_size=3, padding=1)
            return head, blocks, out

        self.head, self.blocks, self.out = _seeded(c.seed + 1, build)
        # same weights; convolutions run faster on a CPU
        self.blocks.to(memory_format=torch.channels_last)
        self.out.to(memory_format=torch.channels_last)

    def forward(self, z: Tensor) -> Tensor:
        """z (N, L) -> (N, D·k), laid out as ``config.output_layout``."""
        c = self.config
        z = as_model_input("z", z, self, ndim=2)
        if z.dim() != 2 or z.shape[1] != c.latent_dim:
            raise ValueError(f"z must have shape (N, {c.latent_dim}) "
                             f"(N latent vectors), got {tuple(z.shape)}")
        h = self.head(z).unflatten(1, c.smallest_map)  # (N, c, h, w)
        h = h.contiguous(memory_format=torch.channels_last)
        y = self.out(self.blocks(h))  # (N, C·k, H, W)
        n, k = z.shape[0], c.out_channels_per_pixel
        if c.output_layout == "pixel_major":
            y = y.unflatten(1, (c.image_shape[0], k))  # (N, C, k, H, W)
            y = y.permute(0, 1, 3, 4, 2)  # (N, C, H, W, k)
            # (with C = 1 the channels-last output already is (N, H, W, k)
            # in memory, so the reshape below makes no copy)
        # (N, D·k); parameter_major: (N, k·C·H·W) as (k, D)
        return y.reshape(n, c.data_dim * k)


def conv_networks(config: VAEConfig, channels: tuple[int, ...] = (16, 32, 64),
                  negative_slope: float = 0.2) -> tuple[ConvEncoder, ConvDecoder]:
    """The :class:`ConvEncoder` and :class:`ConvDecoder` a VAE with this config needs (chapter 7).

    ``config.data_shape`` must be (C, H, W); the decoder's outputs per pixel and their layout follow
    ``config.likelihood``, the seeds ``config.seed`` (encoder) and ``config.seed + 1`` (decoder). Use as
    ``VAE(config, *conv_networks(config))``; ``config.hidden`` (the MLP sizes) is not used.
    """
    from .models import VAEConfig  # models imports this module

    if not isinstance(config, VAEConfig):
        raise TypeError(f"config must be a VAEConfig, got {type(config).__name__}")
    if len(config.data_shape) != 3:
        raise ValueError(f"config.data_shape must be an image shape (C, H, W) for convolutional networks, "
                         f"got {config.data_shape}")
    conv = ConvConfig(image_shape=config.data_shape, channels=tuple(channels), latent_dim=config.latent_dim,
                      out_channels_per_pixel=config.decoder_outputs_per_dim, output_layout=config.decoder_layout,
                      negative_slope=negative_slope, seed=config.seed)
    return ConvEncoder(conv), ConvDecoder(conv)
