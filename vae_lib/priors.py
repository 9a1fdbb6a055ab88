"""A learned mixture-of-Gaussians prior p_ψ(z) and the VAE that uses it (the training chapter's mixture benchmark).

With p(z) = N(0, I), a 1-D latent and two separated clusters of data, the decoder mean μ_θ(z) must jump from one
cluster to the other as z crosses 0; wherever the step is not sharp, prior mass decodes into the empty gap. A learned
prior moves the gap into z instead: each latent dimension gets a mixture of C Gaussians,

    p_ψ(z) = Π_l Σ_c π_lc N(z_l; m_lc, s_lc²),

trained with the rest of the model. For a fixed encoder the ELBO's best prior is the aggregate posterior
(1/N) Σ_n q_φ(z|x_n); where that has a hole, so does p_ψ(z), and a smooth decoder then puts little mass in the gap.

KL(q_φ(z_l|x) || p_ψ(z_l)) has no closed form. Jensen's inequality over the component c gives the closed-form bound

    E_q[log p_ψ(z_l)] ≥ log Σ_c π_lc exp(E_q[log N(z_l; m_lc, s_lc²)]),  i.e.
    KL(q_l || p_ψ,l) ≤ −log Σ_c π_lc exp(−KL(q_l || N(m_lc, s_lc²)))          (Hershey & Olsen, 2007),

exact for C = 1 and when q_l sits inside one component. It is the KL term of the ELBO of the same model with the
component c as a second latent variable and its posterior q(c|x) chosen optimally, so the training objective

    L̄(θ, φ, ψ; x) = E_q[log p_θ(x|z)] − Σ_l KL̄_l  ≤  L(θ, φ, ψ; x)  ≤  log p_θ(x)

is still a lower bound on the evidence. Evaluation (:func:`vae_lib.evaluation.log_evidence`) uses the exact
log p_ψ(z) of :meth:`MixturePrior.distribution`, so scores are comparable with the standard-normal VAE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from ._checks import as_model_input, as_tensor, check_broadcast, check_count, check_generator, check_real
from .gaussian import diag_gaussian, sample
from .models import VAE, VAEConfig

__all__ = ["MixturePrior", "MixturePriorConfig", "MixturePriorVAE", "mixture_kl_upper_bound"]


@dataclass(frozen=True)
class MixturePriorConfig:
    """C Gaussians per latent dimension, initialised with equal weights, means evenly spaced on
    [−``init_spread``, ``init_spread``] and standard deviation ``init_scale`` (C = 1: exactly N(0, 1))."""

    n_components: int = 2
    init_spread: float = 1.0
    init_scale: float = 1.0

    def __post_init__(self) -> None:
        check_count("n_components", self.n_components, maximum=10_000)
        check_real("init_spread", self.init_spread, minimum=0)
        check_real("init_scale", self.init_scale, above=0)


def mixture_kl_upper_bound(mean: Tensor, log_var: Tensor, logits: Tensor, loc: Tensor, log_scale: Tensor) -> Tensor:
    """−log Σ_c π_c exp(−KL(N(μ, σ²) || N(m_c, s_c²))) ≥ KL(N(μ, σ²) || Σ_c π_c N(m_c, s_c²)), per dimension.

    mean, log_var (..., L): the Gaussian q; logits, loc, log_scale (L, C): log π (unnormalised), m and log s of the
    mixture of each dimension. Returns (..., L).
    """
    mean = as_tensor("mean", mean, min_ndim=1)
    log_var = as_tensor("log_var", log_var, min_ndim=1)
    check_broadcast(("mean", "log_var"), mean, log_var)
    logits, loc, log_scale = (as_tensor(n, t, dtype=mean.dtype)
                              for n, t in (("logits", logits), ("loc", loc), ("log_scale", log_scale)))
    log_var = log_var.to(mean.dtype)
    for name, t in (("logits", logits), ("loc", loc), ("log_scale", log_scale)):
        if t.dim() != 2 or t.shape[0] != mean.shape[-1]:
            raise ValueError(f"{name} must have shape (L, C) with L = {mean.shape[-1]} (the last dimension of mean), "
                             f"got {tuple(t.shape)}")
    if not loc.shape == logits.shape == log_scale.shape:
        raise ValueError(f"logits, loc and log_scale must have the same shape (L, C), got {tuple(logits.shape)}, "
                         f"{tuple(loc.shape)} and {tuple(log_scale.shape)}")
    return _kl_upper_bound(mean, log_var, logits, loc, log_scale)


def _kl_upper_bound(mean: Tensor, log_var: Tensor, logits: Tensor, loc: Tensor, log_scale: Tensor) -> Tensor:
    """:func:`mixture_kl_upper_bound` without the argument checks (the training loop's hot path)."""
    mean, log_var = mean.unsqueeze(-1), log_var.unsqueeze(-1)  # (..., L, 1): against every component
    # KL(N(μ, σ²) || N(m_c, s_c²)) = log s_c − ½ log σ² + (σ² + (μ − m_c)²) / (2 s_c²) − ½
    kl_c = log_scale - 0.5 * log_var + 0.5 * (log_var.exp() + (mean - loc) ** 2) * torch.exp(-2 * log_scale) - 0.5
    return -torch.logsumexp(torch.log_softmax(logits, dim=-1) - kl_c, dim=-1)  # (..., L, C) -> (..., L)


class MixturePrior(nn.Module):
    """p_ψ(z) = Π_l Σ_c π_lc N(z_l; m_lc, s_lc²) with parameters ψ = (logits, loc, log_scale), each (L, C)."""

    def __init__(self, latent_dim: int, config: MixturePriorConfig | None = None) -> None:
        super().__init__()
        latent_dim = check_count("latent_dim", latent_dim, maximum=100_000)
        config = MixturePriorConfig() if config is None else config
        if not isinstance(config, MixturePriorConfig):
            raise TypeError(f"config must be a MixturePriorConfig, got {type(config).__name__}")
        c = config.n_components
        spread = torch.linspace(-config.init_spread, config.init_spread, c) if c > 1 else torch.zeros(1)  # (C,)
        self.logits = nn.Parameter(torch.zeros(latent_dim, c))
        self.loc = nn.Parameter(spread.repeat(latent_dim, 1))
        self.log_scale = nn.Parameter(torch.full((latent_dim, c), math.log(config.init_scale)))

    @property
    def weights(self) -> Tensor:
        """The mixture weights π (L, C), summing to 1 over the components."""
        return torch.softmax(self.logits, dim=-1)

    def distribution(self) -> Independent:
        """p_ψ(z) as a torch distribution: batch shape (), event shape (L,) (log_prob of (..., L) gives (...))."""
        components = Normal(self.loc, self.log_scale.exp())  # batch (L, C)
        return Independent(MixtureSameFamily(Categorical(logits=self.logits), components), 1)

    def sample(self, n: int, *, generator: torch.Generator) -> Tensor:
        """n draws z ~ p_ψ(z) (no gradient): a component c ~ π_l, then z_l ~ N(m_lc, s_lc²) per dimension, (n, L)."""
        n = check_count("n", n)
        check_generator(generator)
        with torch.no_grad():
            c = torch.multinomial(self.weights, n, replacement=True, generator=generator)  # (L, n) components
            loc = self.loc.gather(-1, c).T  # (n, L)
            scale = self.log_scale.exp().gather(-1, c).T  # (n, L)
            return loc + scale * torch.randn(loc.shape, generator=generator)

    def kl_upper_bound(self, mean: Tensor, log_var: Tensor) -> Tensor:
        """The closed-form bound KL̄_l ≥ KL(N(μ_l, σ_l²) || p_ψ(z_l)) for each dimension: (B, L) -> (B, L).

        mean and log_var (tensors or numpy arrays of any real dtype) arrive in the prior's dtype."""
        mean, log_var = as_model_input("mean", mean, self, min_ndim=1), as_model_input("log_var", log_var, self)
        return mixture_kl_upper_bound(mean, log_var, self.logits, self.loc, self.log_scale)

    def _kl_upper_bound(self, mean: Tensor, log_var: Tensor) -> Tensor:
        """:meth:`kl_upper_bound` without the argument checks, for the encoder's own outputs (B, L) in training."""
        return _kl_upper_bound(mean, log_var, self.logits, self.loc, self.log_scale)  # (B, L)


class MixturePriorVAE(VAE):
    """The :class:`vae_lib.models.VAE` with the learned prior p_ψ(z) of :class:`MixturePrior` in place of N(0, I).

    Encoder and decoder are the VAE's; :attr:`prior` is p_ψ(z) (rebuilt from ψ at each access, so it follows
    training), and :meth:`elbo`, :meth:`elbo_terms`, :meth:`kl_per_dimension` use the closed-form KL bound, so
    :func:`vae_lib.train.fit` trains θ, φ and ψ together on L̄ ≤ L. Draw z ~ p_ψ(z) with
    ``model.sample_prior(n, generator=...)``.
    """

    def __init__(self, config: VAEConfig, prior_config: MixturePriorConfig | None = None) -> None:
        super().__init__(config)
        self.prior_config = MixturePriorConfig() if prior_config is None else prior_config
        self.mixture_prior = MixturePrior(config.latent_dim, self.prior_config)

    @property
    def prior(self) -> Independent:
        """p_ψ(z), event shape (L,)."""
        return self.mixture_prior.distribution()

    def sample_prior(self, n: int, *, generator: torch.Generator) -> Tensor:
        """n draws z ~ p_ψ(z), shape (n, L)."""
        return self.mixture_prior.sample(n, generator=generator)

    def kl_per_dimension(self, x: Tensor) -> Tensor:
        """The bound KL̄_l ≥ KL(q_φ(z_l|x) || p_ψ(z_l)) for each example and latent dimension, shape (B, L)."""
        return self.mixture_prior.kl_upper_bound(*self.encode(x))

    def elbo(self, x: Tensor, n_samples: int = 1, *, generator: torch.Generator) -> Tensor:
        """L̄ = E_q[log p_θ(x|z)] − Σ_l KL̄_l ≤ L(θ, φ, ψ; x), K reparameterized samples, shape (B,)."""
        check_generator(generator)
        mean, log_var = self.encode(x)  # (B, L) each
        z = sample(diag_gaussian(mean, log_var), n_samples, generator=generator)  # (K, B, L)
        return self.log_likelihood(x, z).mean(0) - self.mixture_prior._kl_upper_bound(mean, log_var).sum(-1)

    def elbo_terms(self, x: Tensor, *, generator: torch.Generator,
                   n_samples: int = 1) -> tuple[Tensor, Tensor]:
        """log p_θ(x|z) averaged over ``n_samples`` draws z ~ q_φ(z|x) (B,) and the KL bound per dimension KL̄_l
        (B, L); L̄ is their difference summed over l (what :func:`vae_lib.train.fit` maximises)."""
        check_generator(generator)
        n_samples = check_count("n_samples", n_samples)
        mean, log_var = self.encode(x)  # (B, L) each
        z = sample(diag_gaussian(mean, log_var), n_samples, generator=generator)  # (K, B, L)
        return self.log_likelihood(x, z).mean(0), self.mixture_prior._kl_upper_bound(mean, log_var)
