"""Normalizing-flow posteriors q_T(z|x): a diagonal Gaussian pushed through T invertible steps ("closing the gap").

A flow starts from the encoder's diagonal Gaussian z_0 ~ q_0(z|x) = N(μ_φ(x), diag σ_φ²(x)) and applies T invertible
maps z_t = f_t(z_{t−1}). By the change of variables (chapter "Closing the gap"),

    log q_T(z_T|x) = log q_0(z_0|x) − Σ_t log |det ∂f_t(z_{t−1})/∂z_{t−1}|,

so each step returns its output and its log-determinant. The steps:

* :class:`PlanarStep` (Rezende & Mohamed, 2015): f(z) = z + û tanh(wᵀz + b), log|det| = log|1 + ûᵀψ(z)| with
  ψ(z) = tanh'(wᵀz + b) w. The free vector u is replaced by û = u + (m(wᵀu) − wᵀu) w/‖w‖², m(a) = −1 + log(1 + eᵃ),
  so that wᵀû > −1 and f is invertible (the paper's appendix A.1). The inverse solves one scalar monotone equation
  for a = wᵀz + b (bisection, then Newton's method).
* :class:`RadialStep` (Rezende & Mohamed, 2015): f(z) = z + β h(r)(z − z₀), h(r) = 1/(α + r), r = ‖z − z₀‖,
  log|det| = (L − 1) log(1 + βh) + log(1 + βh + βh'(r) r), with α = softplus(α̃) > 0 and β = −α + softplus(β̃) > −α
  (invertible; appendix A.2). The inverse is a quadratic in r.
* :class:`AffineCoupling` (Dinh et al., 2017, RealNVP): with a binary mask m, z' = m⊙z + (1−m)⊙(z⊙exp(s) + t),
  (s, t) = NN(m⊙z); log|det| = Σ_j (1 − m_j) s_j. Successive layers alternate the mask. Exactly invertible.

Planar and radial steps can be *amortised*: their parameters are a vector per example (an encoder's output), of
size :attr:`FlowStep.param_size`; otherwise they are free parameters, one set for the single x being fitted.
Coupling layers are networks shared by every x (the posterior depends on x through q_0).

:class:`FlowPosterior` chains the steps after q_0; :func:`flow_log_weights` gives log w = log p_θ(x, z_T) − log
q_T(z_T|x) for the ELBO and the importance-weighted bound of :mod:`vae_lib.elbo`; :func:`fit_flow_posterior` maximises
the ELBO of a free flow for one x (chapter 2's two-mode posterior), and :func:`flow_gap_by_depth` measures
log p_θ(x) − ELBO against the number of steps T with log p_θ(x) by the toy model's quadrature (each depth
warm-started from the previous one). :func:`flow_approximation_gaps` does chapter 3's approximation gap on a digits
VAE with a per-image flow against the per-image diagonal Gaussian (:class:`FlowGapSplit`).

Speed: at these sizes a gradient step costs the number of tiny tensor operations, not arithmetic. Planar and radial
flows are therefore fitted as one flat parameter vector per row through the amortised path, with every step's
constrained parameters computed in one vectorised call; independent problems (restarts, warm starts, images) are
rows of one fit, at about the cost of one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn.functional import softplus

from ._checks import (
    as_tensor,
    check_bool,
    check_choice,
    check_count,
    check_generator,
    check_instance,
    check_int,
    check_last_dim,
    check_latent_model,
    check_real,
)
from .elbo import LatentVariableModel
from .gap import GapDecomposition
from .inference_gaps import monte_carlo_gap_decomposition
from .networks import _seeded, mlp
from .quadrature import AdamSteps, LatentGrid, log_joint_on_grid, log_posterior, model_log_marginal, reverse_kl

__all__ = [
    "AffineCoupling",
    "FlowConfig",
    "FlowFit",
    "FlowFitConfig",
    "FlowGapSplit",
    "FlowPosterior",
    "FlowStep",
    "PlanarStep",
    "RadialStep",
    "depth_fit_configs",
    "fit_flow_posterior",
    "flow_approximation_gaps",
    "flow_gap_by_depth",
    "flow_log_weights",
]

FlowKind = Literal["planar", "radial", "coupling"]
_KINDS = ("planar", "radial", "coupling")


class FlowStep(nn.Module):
    """One invertible map z' = f(z) of a flow; ``forward(z, params)`` returns (z', log|det ∂z'/∂z|).

    z has shape (..., L); the log-determinant has shape (...). ``params`` (..., :attr:`param_size`) are per-example
    parameters broadcast against z's leading dimensions (an amortised step); None uses the step's own free
    parameters.
    """

    param_size: int = 0

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.latent_dim = check_count("latent_dim", latent_dim)

    def _check(self, z: Tensor, params: Tensor | None) -> tuple[Tensor, Tensor | None]:
        z = check_last_dim("z", as_tensor("z", z, min_ndim=1), self.latent_dim, "the latent size L")
        if params is not None:
            if self.param_size == 0:
                raise ValueError(f"{type(self).__name__} has no per-example parameters; pass params=None")
            params = check_last_dim("params", as_tensor("params", params, min_ndim=1), self.param_size,
                                    f"the {type(self).__name__}'s parameters per example")
        return z, params

    def inverse(self, z_next: Tensor, params: Tensor | None = None) -> Tensor:
        """z = f⁻¹(z'), shape (..., L)."""
        raise NotImplementedError


class PlanarStep(FlowStep):
    """f(z) = z + û tanh(wᵀz + b) with wᵀû > −1 (invertible); amortised parameters are (u, w, b), size 2L + 1."""

    def __init__(self, latent_dim: int, *, generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__(latent_dim)
        self.param_size = 2 * self.latent_dim + 1
        g = check_generator(generator) if generator is not None else torch.Generator().manual_seed(0)
        init = 0.1 * torch.randn(self.param_size, generator=g, dtype=torch.float64)
        self.params = nn.Parameter(init.to(dtype))  # (2L + 1,): u, w, b

    def _split(self, params: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """û (..., L), w (..., L), b (...,) with û constrained so that wᵀû > −1."""
        p = self.params if params is None else params
        lat = self.latent_dim
        u, w, b = p[..., :lat], p[..., lat:2 * lat], p[..., 2 * lat]
        wu = (w * u).sum(-1, keepdim=True)  # (..., 1)
        w_sq = (w * w).sum(-1, keepdim=True).clamp_min(1e-12)
        u_hat = u + (-1.0 + softplus(wu) - wu) * w / w_sq  # wᵀû = m(wᵀu) = −1 + log(1 + e^{wᵀu}) > −1
        return u_hat, w, b

    def forward(self, z: Tensor, params: Tensor | None = None) -> tuple[Tensor, Tensor]:
        z, params = self._check(z, params)
        return self._apply(z, *self._split(params))

    @staticmethod
    def _apply(z: Tensor, u_hat: Tensor, w: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        """f(z) and log|det| from :meth:`_split`'s (û, w, b), unchecked (the flow's fast path uses it too)."""
        h = torch.tanh((w * z).sum(-1) + b)  # tanh(wᵀz + b), (...)
        z_next = z + u_hat * h.unsqueeze(-1)  # (..., L)
        # 1 + ûᵀψ(z) = 1 + tanh'(a) wᵀû ≥ min(1, 1 + wᵀû) > 0: no absolute value needed
        return z_next, torch.log1p((1 - h * h) * (w * u_hat).sum(-1))

    def inverse(self, z_next: Tensor, params: Tensor | None = None) -> Tensor:
        """Solve g(a) = a + c tanh(a) − (wᵀz' + b) = 0 for a = wᵀz + b (c = wᵀû > −1: g is strictly increasing):
        25 bisection steps shrink the bracket [s − |c| − 1, s + |c| + 1] by 2²⁵, then 6 Newton steps (kept inside the
        bracket) converge quadratically to machine precision, where bisection alone would need about 100 steps."""
        z_next, params = self._check(z_next, params)
        u_hat, w, b = self._split(params)
        c = (w * u_hat).sum(-1)  # (...)
        s = (w * z_next).sum(-1) + b  # (...)
        lo, hi = s - c.abs() - 1.0, s + c.abs() + 1.0  # |c tanh a| ≤ |c| brackets the root
        for _ in range(25):
            mid = 0.5 * (lo + hi)
            above = mid + c * torch.tanh(mid) > s
            hi, lo = torch.where(above, mid, hi), torch.where(above, lo, mid)
        a = 0.5 * (lo + hi)
        for _ in range(6):
            t = torch.tanh(a)
            newton = a - (a + c * t - s) / (1 + c * (1 - t * t))  # g'(a) = 1 + c tanh'(a) ≥ min(1, 1 + c) > 0
            a = newton.clamp(lo, hi)
        return z_next - u_hat * torch.tanh(a).unsqueeze(-1)


class RadialStep(FlowStep):
    """f(z) = z + β (z − z₀)/(α + ‖z − z₀‖) with α > 0, β > −α; amortised parameters (z₀, α̃, β̃), size L + 2."""

    def __init__(self, latent_dim: int, *, generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__(latent_dim)
        self.param_size = self.latent_dim + 2
        g = check_generator(generator) if generator is not None else torch.Generator().manual_seed(0)
        init = 0.1 * torch.randn(self.param_size, generator=g, dtype=torch.float64)
        self.params = nn.Parameter(init.to(dtype))  # (L + 2,): z₀, α̃, β̃

    def _split(self, params: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        p = self.params if params is None else params
        lat = self.latent_dim
        alpha = softplus(p[..., lat])  # (...) > 0
        beta = -alpha + softplus(p[..., lat + 1])  # (...) > −α
        return p[..., :lat], alpha, beta

    def forward(self, z: Tensor, params: Tensor | None = None) -> tuple[Tensor, Tensor]:
        z, params = self._check(z, params)
        return self._apply(z, *self._split(params))

    @staticmethod
    def _apply(z: Tensor, z0: Tensor, alpha: Tensor, beta: Tensor) -> tuple[Tensor, Tensor]:
        """f(z) and log|det| from :meth:`_split`'s (z₀, α, β), unchecked (the flow's fast path uses it too)."""
        diff = z - z0  # (..., L)
        r = torch.linalg.vector_norm(diff, dim=-1)  # (...)
        bh = beta / (alpha + r)  # β h(r)
        z_next = z + bh.unsqueeze(-1) * diff
        # 1 + βh + βh'(r) r = 1 + βα/(α + r)²
        log_det = (z.shape[-1] - 1) * torch.log1p(bh) + torch.log1p(beta * alpha / (alpha + r) ** 2)
        return z_next, log_det

    def inverse(self, z_next: Tensor, params: Tensor | None = None) -> Tensor:
        """r' = r (1 + β/(α + r)) gives r² + (α + β − r') r − α r' = 0; take the root r ≥ 0."""
        z_next, params = self._check(z_next, params)
        z0, alpha, beta = self._split(params)
        diff = z_next - z0
        r_next = torch.linalg.vector_norm(diff, dim=-1)
        p = alpha + beta - r_next
        r = 0.5 * (-p + torch.sqrt(p**2 + 4 * alpha * r_next))
        return z0 + diff / (1 + beta / (alpha + r)).unsqueeze(-1)


class AffineCoupling(FlowStep):
    """RealNVP: z' = m⊙z + (1−m)⊙(z⊙exp(s) + t), (s, t) = NN(m⊙z), s = scale·tanh(·) bounded; shared by all x.

    ``parity`` 0 keeps the even coordinates (z₁, z₃, … counted from 1) and transforms the others; 1 the reverse.
    The network's last layer starts at zero, so a new coupling layer is the identity.
    """

    def __init__(self, latent_dim: int, parity: int, *, hidden: int = 32, seed: int = 0,
                 dtype: torch.dtype = torch.float32, max_log_scale: float = 3.0) -> None:
        super().__init__(latent_dim)
        if self.latent_dim < 2:
            raise ValueError(f"latent_dim must be at least 2 for a coupling layer, got {latent_dim}")
        if parity not in (0, 1) or isinstance(parity, bool):
            raise ValueError(f"parity must be 0 or 1, got {parity!r}")
        hidden = check_count("hidden", hidden, maximum=100_000)
        self.max_log_scale = check_real("max_log_scale", max_log_scale, above=0)
        mask = (torch.arange(self.latent_dim) % 2 == parity).to(dtype)  # 1 where z passes unchanged
        self.register_buffer("mask", mask)
        net = _seeded(check_int("seed", seed), lambda: mlp((self.latent_dim, hidden, hidden, 2 * self.latent_dim)))
        with torch.no_grad():
            net[-1].weight.zero_()
            net[-1].bias.zero_()
        self.net = net.to(dtype)

    def _scale_shift(self, z_kept: Tensor) -> tuple[Tensor, Tensor]:
        raw_s, t = self.net(z_kept).chunk(2, dim=-1)
        free = 1 - self.mask
        return self.max_log_scale * torch.tanh(raw_s / self.max_log_scale) * free, t * free

    def forward(self, z: Tensor, params: Tensor | None = None) -> tuple[Tensor, Tensor]:
        z, params = self._check(z, params)
        s, t = self._scale_shift(z * self.mask)  # (..., L), zero on the kept coordinates
        return z * torch.exp(s) + t, s.sum(-1)

    def inverse(self, z_next: Tensor, params: Tensor | None = None) -> Tensor:
        z_next, params = self._check(z_next, params)
        s, t = self._scale_shift(z_next * self.mask)  # m⊙z' = m⊙z
        return (z_next - t) * torch.exp(-s)


@dataclass(frozen=True)
class FlowConfig:
    """A flow posterior: ``kind`` of step, ``n_steps`` T (0: the diagonal Gaussian q_0 alone), the latent size.

    ``amortised`` planar/radial steps take their parameters per example from an encoder (``params`` of size
    :attr:`FlowPosterior.param_size`); otherwise the flow (and, with ``free_base``, q_0's mean and log-variance)
    are free parameters for a single x. ``hidden`` sizes the coupling networks; ``seed`` draws initial values.
    """

    latent_dim: int = 2
    kind: FlowKind = "planar"
    n_steps: int = 8
    amortised: bool = False
    free_base: bool = True
    hidden: int = 32
    seed: int = 0
    dtype: torch.dtype = torch.float32

    def __post_init__(self) -> None:
        check_count("latent_dim", self.latent_dim)
        check_choice("kind", self.kind, _KINDS)
        check_count("n_steps", self.n_steps, minimum=0, maximum=10_000)
        check_bool("amortised", self.amortised)
        check_bool("free_base", self.free_base)
        check_count("hidden", self.hidden, maximum=100_000)
        check_int("seed", self.seed)
        check_instance("dtype", self.dtype, torch.dtype, "a torch.dtype (torch.float32 or torch.float64)")
        if self.dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {self.dtype}")
        if self.amortised and self.kind == "coupling":
            raise ValueError("kind='coupling' is not amortised (its networks are shared by every x); "
                             "use amortised=False, or kind='planar'/'radial'")
        if self.amortised and self.free_base:
            raise ValueError("an amortised flow takes q_0 from the encoder: set free_base=False")
        if self.kind == "coupling" and self.latent_dim < 2:
            raise ValueError(f"kind='coupling' needs latent_dim >= 2, got {self.latent_dim}")


class FlowPosterior(nn.Module):
    """q_T(z_T|x): z_0 ~ q_0(z|x) = N(μ, diag σ²), then z_t = f_t(z_{t−1}) for t = 1 … T.

    q_0's (μ, log σ²) come from an encoder (``mean``, ``log_var`` of shape (B, L)) or, with ``config.free_base``,
    from the flow's own parameters (one x, B = 1). Amortised steps take ``params`` (B, :attr:`param_size`), split
    in order among the steps.
    """

    def __init__(self, config: FlowConfig) -> None:
        super().__init__()
        self.config = c = check_instance("config", config, FlowConfig, "a FlowConfig")
        g = torch.Generator().manual_seed(c.seed)
        steps: list[FlowStep] = []
        for t in range(c.n_steps):
            if c.kind == "planar":
                steps.append(PlanarStep(c.latent_dim, generator=g, dtype=c.dtype))
            elif c.kind == "radial":
                steps.append(RadialStep(c.latent_dim, generator=g, dtype=c.dtype))
            else:
                steps.append(AffineCoupling(c.latent_dim, t % 2, hidden=c.hidden, seed=c.seed + t, dtype=c.dtype))
        self.steps = nn.ModuleList(steps)
        self.param_size = sum(s.param_size for s in steps) if c.amortised else 0
        if c.free_base:
            self.base_mean = nn.Parameter(torch.zeros(1, c.latent_dim, dtype=c.dtype))  # (1, L)
            self.base_log_var = nn.Parameter(torch.zeros(1, c.latent_dim, dtype=c.dtype))  # (1, L)

    def _base(self, mean: Tensor | None, log_var: Tensor | None) -> tuple[Tensor, Tensor]:
        if mean is None and log_var is None:
            if not self.config.free_base:
                raise ValueError("this flow has no free q_0: pass the encoder's mean and log_var, each (B, L)")
            return self.base_mean, self.base_log_var
        if mean is None or log_var is None:
            raise ValueError("give both mean and log_var of q_0 (each (B, L)), or neither")
        lat = self.config.latent_dim
        mean = check_last_dim("mean", as_tensor("mean", mean, ndim=2), lat, "the latent size L")
        log_var = check_last_dim("log_var", as_tensor("log_var", log_var, ndim=2), lat, "the latent size L")
        if mean.shape != log_var.shape:
            raise ValueError(f"mean {tuple(mean.shape)} and log_var {tuple(log_var.shape)} must have the same shape")
        return mean, log_var

    def _step_params(self, params: Tensor | None, batch: int) -> list[Tensor | None]:
        if not self.config.amortised:
            if params is not None:
                raise ValueError("this flow has free step parameters (config.amortised=False); pass params=None")
            return [None] * len(self.steps)
        if params is None:
            raise ValueError(f"an amortised flow needs params of shape (B, {self.param_size}) from the encoder")
        params = as_tensor("params", params, ndim=2)
        if params.shape != (batch, self.param_size):
            raise ValueError(f"params must have shape ({batch}, {self.param_size}), got {tuple(params.shape)}")
        return list(params.split([s.param_size for s in self.steps], dim=-1))

    def flow(self, z0: Tensor, params: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """z_T = f_T ∘ … ∘ f_1(z_0) and Σ_t log|det ∂f_t/∂z_{t−1}|: z0 (..., B, L) -> (..., B, L), (..., B)."""
        z = check_last_dim("z0", as_tensor("z0", z0, min_ndim=2), self.config.latent_dim, "the latent size L")
        self._step_params(params, z.shape[-2])  # checks params
        return self._flow(z, params)

    def _flow(self, z: Tensor, params: Tensor | None) -> tuple[Tensor, Tensor]:
        """:meth:`flow` without the checks (fits call it thousands of times on tiny tensors)."""
        total = torch.zeros(z.shape[:-1], dtype=z.dtype)
        if self.config.kind == "coupling" or not self.steps:
            for step in self.steps:
                z, log_det = step(z)
                total = total + log_det
            return z, total
        # planar/radial: every step's constrained parameters in one vectorised call, then only the z-dependent part
        # per step (the same _apply as the step's forward): far fewer tiny tensor operations per gradient step
        first = self.steps[0]
        stacked = (torch.stack([s.params for s in self.steps]) if params is None  # (T, P)
                   else params.unflatten(-1, (len(self.steps), first.param_size)).movedim(-2, 0))  # (T, B, P)
        split = first._split(stacked)  # e.g. planar: û (T, [B,] L), w (T, [B,] L), b (T, [B])
        for t in range(len(self.steps)):
            z, log_det = first._apply(z, *(part[t] for part in split))
            total = total + log_det
        return z, total

    def rsample(self, n_samples: int, *, generator: torch.Generator, mean: Tensor | None = None,
                log_var: Tensor | None = None, params: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """K reparameterized draws z_T and their log q_T(z_T|x): shapes (K, B, L) and (K, B).

        z_0 = μ + σ ε with ε ~ N(0, I) from ``generator``; log q_T(z_T|x) = log q_0(z_0|x) − Σ_t log|det|.
        """
        n_samples = check_count("n_samples", n_samples)
        check_generator(generator)
        mean, log_var = self._base(mean, log_var)
        self._step_params(params, mean.shape[0])  # checks params
        return self._rsample(n_samples, generator, mean, log_var, params)

    def _rsample(self, n_samples: int, generator: torch.Generator, mean: Tensor, log_var: Tensor,
                 params: Tensor | None) -> tuple[Tensor, Tensor]:
        """:meth:`rsample` without the checks."""
        eps = torch.randn((n_samples, *mean.shape), generator=generator, dtype=mean.dtype)  # (K, B, L)
        z0 = mean + torch.exp(0.5 * log_var) * eps
        log_q0 = (-0.5 * eps**2 - 0.5 * log_var - 0.5 * math.log(2 * math.pi)).sum(-1)  # (K, B)
        z, log_det = self._flow(z0, params)
        return z, log_q0 - log_det

    def log_prob(self, z: Tensor, *, mean: Tensor | None = None, log_var: Tensor | None = None,
                 params: Tensor | None = None) -> Tensor:
        """log q_T(z|x) at given points z (..., B, L) by inverting the steps, shape (..., B).

        log q_T(z_T) = log q_0(z_0) − Σ_t log|det ∂f_t/∂z_{t−1}| with z_0 = f_1⁻¹ ∘ … ∘ f_T⁻¹(z_T) (planar steps are
        inverted by bisection then Newton's method, to about 1e-12 in float64).
        """
        mean, log_var = self._base(mean, log_var)
        z = check_last_dim("z", as_tensor("z", z, min_ndim=2), self.config.latent_dim, "the latent size L")
        step_params = self._step_params(params, mean.shape[0])
        path = [z]
        for step, p in zip(reversed(self.steps), reversed(step_params), strict=True):
            path.append(step.inverse(path[-1], p))
        z0 = path[-1]
        _, log_det = self.flow(z0, params)
        var = torch.exp(log_var)
        log_q0 = (-0.5 * (z0 - mean) ** 2 / var - 0.5 * log_var - 0.5 * math.log(2 * math.pi)).sum(-1)
        return log_q0 - log_det


def flow_log_weights(x: Tensor, model: LatentVariableModel, flow: FlowPosterior, n_samples: int, *,
                     generator: torch.Generator, mean: Tensor | None = None, log_var: Tensor | None = None,
                     params: Tensor | None = None) -> Tensor:
    """log w_k = log p_θ(x|z_k) + log p(z_k) − log q_T(z_k|x) for K flow samples z_k, shape (K, B).

    Their mean over k is a Monte Carlo ELBO, ``vae_lib.elbo.iwae_bound`` of them the bound L_K.
    """
    check_instance("flow", flow, FlowPosterior, "a FlowPosterior")
    x = as_tensor("x", x, ndim=2)
    z, log_q = flow.rsample(n_samples, generator=generator, mean=mean, log_var=log_var, params=params)
    if z.shape[1] != x.shape[0]:
        raise ValueError(f"the flow's q_0 has batch size {z.shape[1]} but x has {x.shape[0]} rows")
    return model.log_likelihood(x, z) + model.prior.log_prob(z) - log_q


@dataclass(frozen=True)
class FlowFitConfig:
    """Adam on the Monte Carlo ELBO of a free flow for one x: ``steps`` updates of ``n_samples`` reparameterized
    samples each (noise from ``seed``), learning rate ``learning_rate``; the final ELBO from ``eval_samples``.
    q_0 starts at N(``init_mean``, diag exp(``init_log_var``)); by default at N(m, I) with m a small offset drawn
    from the flow's seed (chapter 2's folded posterior is symmetric, and a q_0 centred on its axis of symmetry
    would stay there).

    ``anneal_steps`` > 0 maximises E_q[β_s log p_θ(x, z) − log q_T(z|x)] with β_s = min(1, 0.01 + s/anneal_steps)
    at step s (Rezende & Mohamed, 2015, section 6.1): a broad target first, so that q spreads over every mode
    before the two modes separate; the last steps (β = 1) maximise the ELBO itself. The learning rate decays
    geometrically from ``learning_rate`` to ``lr_decay`` times it at the last step (1: constant).
    """

    steps: int = 2000
    n_samples: int = 64
    learning_rate: float = 1e-2
    eval_samples: int = 100_000
    anneal_steps: int = 0
    seed: int = 0
    init_mean: tuple[float, ...] | None = None
    init_log_var: tuple[float, ...] | None = None
    lr_decay: float = 1.0

    def __post_init__(self) -> None:
        check_count("steps", self.steps, maximum=10**6)
        check_real("lr_decay", self.lr_decay, above=0)
        if self.lr_decay > 1:
            raise ValueError(f"lr_decay must be in (0, 1] (the last step's learning rate over the first's), "
                             f"got {self.lr_decay}")
        check_count("n_samples", self.n_samples)
        check_real("learning_rate", self.learning_rate, above=0)
        check_count("eval_samples", self.eval_samples)
        check_count("anneal_steps", self.anneal_steps, minimum=0, maximum=10**6)
        if self.anneal_steps >= self.steps:
            raise ValueError(f"anneal_steps ({self.anneal_steps}) must be below steps ({self.steps}): the last steps "
                             f"must maximise the ELBO itself (β = 1)")
        check_int("seed", self.seed)
        for name in ("init_mean", "init_log_var"):
            value = getattr(self, name)
            if value is not None:
                check_instance(name, value, tuple, "a tuple of L numbers (q_0's starting value) or None")
                object.__setattr__(self, name, tuple(check_real(name, v) for v in value))


@dataclass
class FlowFit:
    """A fitted flow, its final ELBO (Monte Carlo, ``eval_samples`` draws) with the estimate's standard error,
    and the training ELBO per step."""

    flow: FlowPosterior
    elbo: float
    elbo_standard_error: float
    trace: list[float] = field(default_factory=list)


def _check_start(name: str, value: tuple[float, ...], latent_dim: int) -> tuple[float, ...]:
    if len(value) != latent_dim:
        raise ValueError(f"{name} must hold L = {latent_dim} numbers, got {len(value)}")
    return value


def _identity_params(step: FlowStep) -> Tensor:
    """Parameters that make a planar or radial step the identity map, keeping its seeded direction/centre.

    Planar: ‖w‖ = 1, u = log(e − 1) w and b = 0 give wᵀu = log(e − 1), so m(wᵀu) = 0 and û = u − wᵀu w = 0.
    Radial: β = −α + softplus(β̃) = 0 with β̃ = log(e^α − 1).
    """
    p = step.params.detach().clone()
    lat = step.latent_dim
    if isinstance(step, PlanarStep):
        w = p[lat:2 * lat] / torch.linalg.vector_norm(p[lat:2 * lat]).clamp_min(1e-12)
        p[:lat], p[lat:2 * lat], p[2 * lat] = math.log(math.e - 1) * w, w, 0.0
    else:
        p[lat + 1] = torch.log(torch.expm1(softplus(p[lat])))
    return p


def _warm_start(flow: FlowPosterior, init: FlowPosterior | FlowFit) -> None:
    """Copy a shallower fitted flow ``init`` (q_0 and its T' steps) into the first T' steps of ``flow`` and make the
    remaining steps the identity (coupling layers start as the identity): the deeper flow starts as the same q."""
    init = init.flow if isinstance(init, FlowFit) else init
    check_instance("init", init, FlowPosterior, "a fitted FlowPosterior or FlowFit, or None")
    c, ci = flow.config, init.config
    if (ci.kind, ci.latent_dim, ci.amortised, ci.free_base) != (c.kind, c.latent_dim, c.amortised, c.free_base):
        raise ValueError(f"init must be a free {c.kind!r} flow with latent_dim {c.latent_dim} to warm-start from, got "
                         f"kind={ci.kind!r}, latent_dim={ci.latent_dim}, amortised={ci.amortised}")
    if ci.n_steps > c.n_steps:
        raise ValueError(f"init has {ci.n_steps} steps, more than the {c.n_steps} of the flow it should start")
    with torch.no_grad():
        flow.base_mean.copy_(init.base_mean)
        flow.base_log_var.copy_(init.base_log_var)
        for t, step in enumerate(flow.steps):
            if t < ci.n_steps:
                step.load_state_dict(init.steps[t].state_dict())
            elif c.kind != "coupling":
                step.params.copy_(_identity_params(step))


def _maximise_elbo(model: LatentVariableModel, parameters: list[Tensor], log_joint_and_q,
                   fit_config: FlowFitConfig, annealed: Tensor | None = None) -> list[float]:
    """Adam on the (annealed) reparameterized Monte Carlo ELBO, summed over independent rows.

    ``log_joint_and_q(generator)`` draws ``fit_config.n_samples`` samples per row and returns log p_θ(x, z) and
    log q(z|x), each (K, B). ``annealed`` (B,) bool says which rows follow the annealing schedule (default: all);
    the others maximise the ELBO from the first step. Returns the ELBO per step (mean over rows).
    """
    frozen = [p for p in model.parameters() if p.requires_grad] if isinstance(model, nn.Module) else []
    try:  # the model's own parameters get no gradient (and no .grad left behind)
        for p in frozen:
            p.requires_grad_(False)
        return _adam_on_elbo(parameters, log_joint_and_q, fit_config, annealed)
    finally:
        for p in frozen:
            p.requires_grad_(True)


def _adam_on_elbo(parameters: list[Tensor], log_joint_and_q, fit_config: FlowFitConfig,
                  annealed: Tensor | None) -> list[float]:
    optimiser = AdamSteps(parameters, lr=fit_config.learning_rate)
    decay = fit_config.lr_decay ** (1.0 / fit_config.steps)
    g = torch.Generator().manual_seed(fit_config.seed)
    trace = []
    for s in range(fit_config.steps):
        beta = min(1.0, 0.01 + s / fit_config.anneal_steps) if fit_config.anneal_steps else 1.0
        log_joint, log_q = log_joint_and_q(g)  # (K, B) each
        if annealed is not None and beta < 1.0:
            beta = torch.where(annealed, beta, 1.0).to(log_joint.dtype)  # (B,)
        objective = (beta * log_joint - log_q).mean(0).sum()  # rows are independent problems: the sum separates
        optimiser.zero_grad()
        (-objective).backward()
        optimiser.step()
        optimiser.lr *= decay
        trace.append((log_joint - log_q).detach().mean().item())
    return trace


def _as_vector(flow: FlowPosterior) -> Tensor:
    """A free planar/radial flow as one row: q_0's mean, log-variance, then every step's parameters, (1, 2L + T·P)."""
    return torch.cat([flow.base_mean, flow.base_log_var] + [s.params.unsqueeze(0) for s in flow.steps],
                     dim=-1).detach()


def _load_vector(flow: FlowPosterior, vector: Tensor) -> FlowPosterior:
    """The inverse of :func:`_as_vector`: write one row (2L + T·P,) into a free flow's parameters."""
    lat = flow.config.latent_dim
    with torch.no_grad():
        flow.base_mean.copy_(vector[:lat].unsqueeze(0))
        flow.base_log_var.copy_(vector[lat:2 * lat].unsqueeze(0))
        for step, p in zip(flow.steps, vector[2 * lat:].split([s.param_size for s in flow.steps]), strict=True):
            step.params.copy_(p)
    return flow


def _fit_rows(model: LatentVariableModel, x: Tensor, flow_config: FlowConfig, vector: Tensor,
              fit_config: FlowFitConfig, annealed: Tensor | None = None) -> tuple[Tensor, list[float]]:
    """Fit B independent free planar/radial flows at once, row b for x_b: ``vector`` (B, 2L + T·P) holds each row's
    q_0 (mean, log-variance) and step parameters and goes through the amortised path as one leaf tensor, so a
    gradient step costs about as much for B rows as for one. Returns the fitted vector and the ELBO trace."""
    lat = flow_config.latent_dim
    rows = FlowPosterior(replace(flow_config, amortised=True, free_base=False))
    vector = vector.detach().clone().requires_grad_(True)
    rows.rsample(1, generator=torch.Generator(), mean=vector[:, :lat], log_var=vector[:, lat:2 * lat],
                 params=vector[:, 2 * lat:])  # every check once

    def log_joint_and_q(g: torch.Generator) -> tuple[Tensor, Tensor]:
        z, log_q = rows._rsample(fit_config.n_samples, g, vector[:, :lat], vector[:, lat:2 * lat],
                                 vector[:, 2 * lat:])  # (K, B, L), (K, B); unchecked: checked once above
        return model.log_likelihood(x, z) + model.prior.log_prob(z), log_q

    trace = _maximise_elbo(model, [vector], log_joint_and_q, fit_config, annealed)
    return vector.detach(), trace


def _monte_carlo_elbo(x: Tensor, model: LatentVariableModel, flow: FlowPosterior, n_samples: int, *,
                      generator: torch.Generator, mean: Tensor | None = None, log_var: Tensor | None = None,
                      params: Tensor | None = None, max_elements: int = 2**16) -> tuple[Tensor, Tensor]:
    """The ELBO's Monte Carlo estimate (mean of n log-weights) and its standard error sd/√n, each (B,).

    Samples are drawn in chunks of at most ``max_elements`` (samples × rows; the decoder of a digits VAE holds about
    a thousand floats per sample), so memory stays bounded."""
    chunk = max(1, max_elements // x.shape[0])
    total = torch.zeros(x.shape[0], dtype=torch.float64)
    total_sq = torch.zeros(x.shape[0], dtype=torch.float64)
    with torch.no_grad():
        for s in range(0, n_samples, chunk):
            log_w = flow_log_weights(x, model, flow, min(chunk, n_samples - s), generator=generator, mean=mean,
                                     log_var=log_var, params=params).to(torch.float64)  # (k, B)
            total += log_w.sum(0)
            total_sq += (log_w**2).sum(0)
    mean_w = total / n_samples
    var = (total_sq / n_samples - mean_w**2).clamp_min(0) * n_samples / max(n_samples - 1, 1)
    return mean_w, (var / n_samples).sqrt()


def _start_flow(flow_config: FlowConfig, fit_config: FlowFitConfig) -> FlowPosterior:
    """A new free flow (steps from the config's seed) with q_0 where ``fit_config`` puts it: given, or N(m, I) with m
    a small offset drawn from the flow's seed (a start on an axis of symmetry is a saddle of the ELBO)."""
    flow = FlowPosterior(flow_config)
    lat, dtype = flow_config.latent_dim, flow_config.dtype
    with torch.no_grad():
        if fit_config.init_mean is not None:
            flow.base_mean.copy_(torch.tensor(_check_start("init_mean", fit_config.init_mean, lat),
                                              dtype=dtype).unsqueeze(0))
        else:
            flow.base_mean.copy_(0.1 * torch.randn(flow.base_mean.shape, dtype=torch.float64,
                                                   generator=torch.Generator().manual_seed(flow_config.seed)))
        if fit_config.init_log_var is not None:
            flow.base_log_var.copy_(torch.tensor(_check_start("init_log_var", fit_config.init_log_var, lat),
                                                 dtype=dtype).unsqueeze(0))
    return flow


def fit_flow_posterior(model: LatentVariableModel, x: Tensor, flow_config: FlowConfig,
                       fit_config: FlowFitConfig | None = None, *,
                       init: FlowPosterior | FlowFit | None = None) -> FlowFit:
    """Maximise the ELBO E_{q_T}[log p_θ(x, z) − log q_T(z|x)] over a free flow (q_0 and the steps) for one x (1, D).

    q_0 starts where ``fit_config`` says (:class:`FlowFitConfig`), or, given ``init`` (a fitted flow of the same
    kind with T' ≤ T steps, e.g. the previous depth's ``FlowFit.flow``), the flow starts as that q: its steps
    first, the other T − T' steps the identity (a warm start). Reparameterized gradients; the model's parameters
    are not updated. Planar and radial flows are optimised as one flat parameter vector (fast at this size).

    Example (chapter 2's two-mode posterior, 8 planar steps)::

        model, x = vae_lib.folded_model(), torch.tensor([[1.0, 0.5]], dtype=torch.float64)
        fit = fit_flow_posterior(model, x, FlowConfig(kind="planar", n_steps=8, dtype=torch.float64),
                                 FlowFitConfig(steps=500, n_samples=256, learning_rate=0.03, anneal_steps=250))
        fit.elbo, fit.elbo_standard_error  # ELBO in nats (Monte Carlo) and its standard error
    """
    check_instance("flow_config", flow_config, FlowConfig, "a FlowConfig")
    fit_config = FlowFitConfig() if fit_config is None else check_instance("fit_config", fit_config, FlowFitConfig,
                                                                          "a FlowFitConfig")
    if flow_config.amortised or not flow_config.free_base:
        raise ValueError("fit_flow_posterior fits a free flow for one x: FlowConfig(amortised=False, free_base=True)")
    check_latent_model("model", model)
    x = as_tensor("x", x, ndim=2, dtype=flow_config.dtype)
    if x.shape[0] != 1:
        raise ValueError(f"x must hold one observation, shape (1, D), got {tuple(x.shape)}")
    flow = _start_flow(flow_config, fit_config)
    if init is not None:
        _warm_start(flow, init)
    if flow_config.kind == "coupling":
        def log_joint_and_q(g: torch.Generator) -> tuple[Tensor, Tensor]:
            z, log_q = flow.rsample(fit_config.n_samples, generator=g)  # (K, 1, L), (K, 1)
            return model.log_likelihood(x, z) + model.prior.log_prob(z), log_q

        trace = _maximise_elbo(model, list(flow.parameters()), log_joint_and_q, fit_config)
    else:  # one flat vector (q_0's mean, log-variance, every step's parameters) through the amortised path
        vector, trace = _fit_rows(model, x, flow_config, _as_vector(flow), fit_config)
        _load_vector(flow, vector[0])
    g = torch.Generator().manual_seed(fit_config.seed + 1)  # fresh noise: the ELBO is not scored on training draws
    elbo, se = _monte_carlo_elbo(x, model, flow, fit_config.eval_samples, generator=g)
    return FlowFit(flow, elbo.item(), se.item(), trace)


def depth_fit_configs(latent_dim: int = 2) -> tuple[FlowFitConfig, FlowFitConfig]:
    """The settings :func:`flow_gap_by_depth` uses by default: (flows, Gaussian).

    Flows: 300 Adam steps of 256 samples, learning rate 0.05 decaying to 0.005, annealed over the first 150 steps
    from a broad N(m, I) start. The Gaussian (T = 0): 300 steps from a narrow start on one side (q_0 = N((0.5, 0, …),
    e⁻² I)), chapter 2's start, which climbs into one mode. Both score the ELBO with 100,000 fresh draws.
    """
    lat = check_count("latent_dim", latent_dim)
    flows = FlowFitConfig(steps=300, n_samples=256, learning_rate=0.05, anneal_steps=150, eval_samples=100_000,
                          lr_decay=0.1)
    gaussian = FlowFitConfig(steps=300, n_samples=256, learning_rate=0.03, eval_samples=100_000, lr_decay=0.1,
                             init_mean=(0.5,) + (0.0,) * (lat - 1), init_log_var=(-2.0,) * lat)
    return flows, gaussian


def flow_gap_by_depth(model: LatentVariableModel, x: Tensor, depths: Sequence[int], kind: FlowKind = "planar",
                      fit_config: FlowFitConfig | None = None, gaussian_fit_config: FlowFitConfig | None = None, *,
                      seed: int = 0, warm_start: bool = True, restarts: int = 4,
                      quadrature: bool = False) -> list[dict[str, float | FlowPosterior]]:
    """log p_θ(x) − ELBO of the best flow found with T steps, for each T in ``depths`` (T = 0: a diagonal Gaussian).

    Flows (T ≥ 1) are fitted with ``fit_config``, the Gaussian (T = 0) with ``gaussian_fit_config`` (defaults:
    :func:`depth_fit_configs`). They differ on chapter 2's two-mode posterior: annealed from a broad start, a single
    Gaussian settles between the modes (the ELBO's saddle, gap ≈ 2.3 nats) instead of on one of them (≈ log 2), while
    a flow needs the broad start to cover both modes. Each depth T ≥ 1 is fitted from ``restarts`` annealed broad
    starts (seeds ``seed``, ``seed + 1``, …) and, with ``warm_start`` (``depths`` increasing), from the previous
    depth's flow followed by identity steps (it starts at the previous gap and Adam can only lower it, up to noise);
    for planar/radial flows all of them are rows of one vectorised fit (about the cost of one); coupling flows get one
    annealed fit and the warm start, one after the other (``restarts`` is not used). The best ELBO on 10 %
    of ``eval_samples`` selection draws is kept and then scored on fresh draws: any q gives a lower bound, so keeping
    the best is honest, and the reported gap is that of the best flow *found* (an upper bound on the family's best).

    ``model`` must carry its quadrature grid ``model.grid`` (a :class:`vae_lib.toy.GridLatentModel`): log p_θ(x) is
    :func:`vae_lib.quadrature.model_log_marginal`. Each row, in nats: ``{"depth", "elbo", "elbo_se", "log_px",
    "gap", "start", "warm"}`` with the ELBO by Monte Carlo and its standard error, ``start`` the index of the kept
    candidate and ``warm`` 1 if it was the warm start; with ``quadrature`` also ``"gap_quadrature"`` = KL(q_T ‖
    p_θ(z|x)) on the model's grid (q_T's density by inverting the flow: about a second per depth), an independent
    check of the Monte Carlo gap; and ``"flow"``, the fitted :class:`FlowPosterior` (e.g. for
    :func:`vae_lib.flow_explorer`).

    Example (the chapter's sweep, a few seconds on one thread)::

        model, x = vae_lib.folded_model(), torch.tensor([[1.0, 0.5]], dtype=torch.float64)
        for row in flow_gap_by_depth(model, x, [0, 2, 4, 8, 16], "planar"):
            print(row["depth"], f"{row['gap']:.3f} ± {row['elbo_se']:.3f}")
    """
    if not isinstance(getattr(model, "grid", None), LatentGrid):
        raise TypeError(f"model must carry a quadrature grid model.grid (a vae_lib.quadrature.LatentGrid) for its "
                        f"exact log_marginal, e.g. vae_lib.folded_model(); got {type(model).__name__}")
    check_choice("kind", kind, _KINDS)
    check_bool("warm_start", warm_start)
    restarts = check_count("restarts", restarts, maximum=1000)
    check_bool("quadrature", quadrature)
    x = as_tensor("x", x, ndim=2, dtype=torch.float64)
    if x.shape[0] != 1:
        raise ValueError(f"x must hold one observation, shape (1, D), got {tuple(x.shape)}")
    if isinstance(depths, (str, bytes)) or not isinstance(depths, Sequence) or len(depths) == 0:
        raise TypeError(f"depths must be a non-empty sequence of step counts T >= 0, got {depths!r}")
    depths = [check_count("depths", d, minimum=0, maximum=10_000) for d in depths]
    if warm_start and any(b <= a for a, b in zip(depths[:-1], depths[1:], strict=True)):
        raise ValueError(f"depths must increase for a warm start (each depth starts from the previous), got {depths}")
    lat = model.prior.event_shape[0]
    default_flows, default_gaussian = depth_fit_configs(lat)
    fit_config = default_flows if fit_config is None else check_instance("fit_config", fit_config, FlowFitConfig,
                                                                         "a FlowFitConfig or None")
    if gaussian_fit_config is None:
        gaussian_fit_config = default_gaussian if fit_config is default_flows else fit_config
    check_instance("gaussian_fit_config", gaussian_fit_config, FlowFitConfig, "a FlowFitConfig or None")
    log_px = model_log_marginal(model, x, model.grid)[0].item()
    log_post = log_posterior(log_joint_on_grid(model, x, model.grid), model.grid) if quadrature else None
    rows: list[dict[str, float | FlowPosterior]] = []
    previous: FlowPosterior | None = None
    for depth in depths:
        config = FlowConfig(latent_dim=lat, kind=kind, n_steps=depth, seed=seed, dtype=torch.float64)
        settings = gaussian_fit_config if depth == 0 else fit_config
        warm = previous is not None and warm_start
        if kind == "coupling":  # shared networks: one fit per candidate (the warm one not annealed)
            candidates = [fit_flow_posterior(model, x, config, settings).flow]
            if warm:
                candidates.append(fit_flow_posterior(model, x, config, replace(settings, anneal_steps=0),
                                                     init=previous).flow)
        else:
            n_fresh = restarts if depth > 0 else 1
            candidates = [_start_flow(replace(config, seed=seed + r), settings) for r in range(n_fresh)]
            if warm:
                candidates.append(FlowPosterior(config))
                _warm_start(candidates[-1], previous)
            annealed = torch.arange(len(candidates)) < n_fresh
            vector, _ = _fit_rows(model, x.expand(len(candidates), -1), config,
                                  torch.cat([_as_vector(f) for f in candidates]), settings, annealed)
            for flow, row in zip(candidates, vector, strict=True):
                _load_vector(flow, row)
        if len(candidates) > 1:
            g = torch.Generator().manual_seed(settings.seed + 2)
            scores = [_monte_carlo_elbo(x, model, f, max(1, settings.eval_samples // 10), generator=g)[0].item()
                      for f in candidates]
            best = max(range(len(candidates)), key=lambda i: scores[i])
        else:
            best = 0
        flow = previous = candidates[best]
        elbo, se = _monte_carlo_elbo(x, model, flow, settings.eval_samples,
                                     generator=torch.Generator().manual_seed(settings.seed + 1))
        row = {"depth": depth, "elbo": elbo.item(), "elbo_se": se.item(), "log_px": log_px,
               "gap": log_px - elbo.item(), "start": best, "warm": int(warm and best == len(candidates) - 1),
               "flow": flow}
        if log_post is not None:
            with torch.no_grad():
                row["gap_quadrature"] = reverse_kl(log_post, model.grid, flow)[0].item()
        rows.append(row)
    return rows


# --- the digits: the approximation gap with a flow against the diagonal Gaussian -------------------------------------


@dataclass(frozen=True)
class FlowGapSplit:
    """Per image (each (B,), nats): log p_θ(x) and the ELBOs (Monte Carlo, with standard errors) of the encoder's
    q_φ(z|x), of the best diagonal Gaussian q* found for each image
    (:func:`vae_lib.inference_gaps.monte_carlo_gap_decomposition`) and of the best flow q_T* found for each image (T
    steps on top of that Gaussian). Chapter 3's split (Cremer et al., 2018): approximation gap log p_θ(x) − L[q*]
    (what the family cannot do), amortization gap L[q*] − L[q_φ] (what one shared encoder loses). A richer family
    lowers the first: :attr:`approximation_gap_flow` against :attr:`approximation_gap`; their difference
    :attr:`flow_gain` = L[q_T*] − L[q*] does not depend on the log p_θ(x) estimate.

    ``log_px`` is importance sampling with the fitted flow as proposal (with its delta-method standard error
    ``log_px_se``); ``log_px_gaussian`` the split's estimate with q* as proposal and ``log_px_encoder``
    :func:`vae_lib.evaluation.log_evidence` (proposal q_φ, when asked for): on a 2-D digits VAE, against quadrature,
    the flow's estimate was within 0.02 nats and the Gaussian proposals' (heavy-tailed weights) up to 0.15 off."""

    log_px: Tensor
    log_px_se: Tensor
    log_px_gaussian: Tensor
    elbo_encoder: Tensor
    elbo_encoder_se: Tensor
    elbo_gaussian: Tensor
    elbo_gaussian_se: Tensor
    elbo_flow: Tensor
    elbo_flow_se: Tensor
    gaussian: Tensor  # (B, 2L): q*'s mean and log-variance per image
    flow: FlowPosterior  # the amortised flow whose per-image parameters are flow_vector
    flow_vector: Tensor  # (B, 2L + T·P): q_T*'s q_0 mean, log-variance and step parameters per image
    log_px_encoder: Tensor | None = None

    def flow_arguments(self) -> dict[str, Tensor]:
        """``mean``, ``log_var`` and ``params`` of q_T* for :meth:`FlowPosterior.rsample`/``log_prob`` and
        :func:`flow_log_weights`, e.g. ``split.flow.log_prob(z, **split.flow_arguments())``."""
        lat = self.gaussian.shape[1] // 2
        v = self.flow_vector
        return {"mean": v[:, :lat], "log_var": v[:, lat:2 * lat], "params": v[:, 2 * lat:]}

    @property
    def flow_gain(self) -> Tensor:
        """L[q_T*] − L[q*]: how much of the approximation gap the flow closes (its standard error:
        :attr:`flow_gain_se`)."""
        return self.elbo_flow - self.elbo_gaussian

    @property
    def flow_gain_se(self) -> Tensor:
        """The standard error of :attr:`flow_gain` (independent draws for the two ELBOs)."""
        return torch.hypot(self.elbo_flow_se, self.elbo_gaussian_se)

    @property
    def approximation_gap(self) -> Tensor:
        """log p_θ(x) − L[q*] with q* the best diagonal Gaussian found for each image."""
        return self.log_px - self.elbo_gaussian

    @property
    def approximation_gap_flow(self) -> Tensor:
        """log p_θ(x) − L[q_T*] with q_T* the best flow found for each image."""
        return self.log_px - self.elbo_flow

    @property
    def amortization_gap(self) -> Tensor:
        """L[q*] − L[q_φ]: what the shared encoder loses against a diagonal Gaussian fitted to each image."""
        return self.elbo_gaussian - self.elbo_encoder


def flow_approximation_gaps(vae: nn.Module, x: Tensor, flow_config: FlowConfig, fit_config: FlowFitConfig, *,
                            generator: torch.Generator, gaussian_gaps: GapDecomposition | None = None,
                            n_evidence: int = 1000, encoder_evidence: bool = False) -> FlowGapSplit:
    """Chapter 3's approximation gap on a digits VAE (any latent size), with a flow posterior against the diagonal one.

    q* is the best diagonal Gaussian found for each image, ``gaussian_gaps`` from
    :func:`vae_lib.inference_gaps.monte_carlo_gap_decomposition` for the same x (computed with its defaults and
    ``generator`` if not given). For each image x_b, q_T* = ``flow_config.n_steps`` planar or radial steps on top of
    q*, started as q* itself (identity steps) and fitted jointly with its q_0 (``fit_config``, Adam on the Monte Carlo
    ELBO), so its ELBO starts at L[q*] and can only rise, up to noise. All images are rows of one vectorised fit
    (per-image flows, not a flow encoder); the VAE is not changed. The ELBOs of q_φ, q* and q_T* by Monte Carlo with
    ``fit_config.eval_samples`` fresh draws each and their standard errors sd/√n.

    log p_θ(x): with L ≥ 3 there is no quadrature, so it is estimated by importance sampling, log (1/K) Σ_k
    p_θ(x, z_k)/q(z_k|x) with K = ``n_evidence`` draws of the fitted flow q (the proposal closest to the posterior;
    standard error by the delta method, sd(w)/(√K mean w)); the split's estimate with q = q* is kept alongside
    (``log_px_gaussian``). Their expectations are bounds L_K ≤ log p_θ(x), so the gaps are slightly underestimated;
    :attr:`FlowGapSplit.flow_gain` needs no log p_θ(x). ``encoder_evidence`` also computes
    :func:`vae_lib.evaluation.log_evidence` (K draws of q_φ).

    Example (chapter 8's ELBO-trained digits VAE, eight test images, a few seconds on one thread)::

        vae = vae_lib.iwae_models.IWAE_MODELS["digits-elbo-k1"].load()
        x = vae_lib.load_digits_split().x_test[:8]
        gaps = monte_carlo_gap_decomposition(vae, x, generator=torch.Generator().manual_seed(5))
        split = flow_approximation_gaps(
            vae, x, FlowConfig(latent_dim=8, kind="planar", n_steps=8),
            FlowFitConfig(steps=150, n_samples=16, learning_rate=0.02, eval_samples=1000, lr_decay=0.1),
            generator=torch.Generator().manual_seed(0), gaussian_gaps=gaps)
        split.approximation_gap.mean(), split.approximation_gap_flow.mean()  # nats per image
    """
    from .evaluation import log_evidence
    from .models import VAE

    check_instance("vae", vae, VAE, "a vae_lib.VAE")
    check_instance("flow_config", flow_config, FlowConfig, "a FlowConfig")
    check_instance("fit_config", fit_config, FlowFitConfig, "a FlowFitConfig")
    check_generator(generator)
    n_evidence = check_count("n_evidence", n_evidence, maximum=10**6)
    check_bool("encoder_evidence", encoder_evidence)
    lat = vae.config.latent_dim
    if flow_config.latent_dim != lat:
        raise ValueError(f"flow_config.latent_dim must be the VAE's latent size {lat}, got {flow_config.latent_dim}")
    if flow_config.kind == "coupling":
        raise ValueError("flow_config.kind must be 'planar' or 'radial' (per-image parameters), got 'coupling'")
    dtype = next(vae.parameters()).dtype
    x = vae.flatten_data(x)  # (B, D), checked by the model
    if gaussian_gaps is None:
        gaussian_gaps = monte_carlo_gap_decomposition(vae, x, generator=generator)
    check_instance("gaussian_gaps", gaussian_gaps, GapDecomposition,
                   "a GapDecomposition from vae_lib.inference_gaps.monte_carlo_gap_decomposition, or None")
    if gaussian_gaps.optimal_mean.shape != (x.shape[0], lat):
        raise ValueError(f"gaussian_gaps must hold q* for the {x.shape[0]} rows of x (optimal_mean ({x.shape[0]}, "
                         f"{lat})), got {tuple(gaussian_gaps.optimal_mean.shape)}")
    config = replace(flow_config, amortised=False, free_base=True, dtype=dtype)
    with torch.no_grad():
        enc_mean, enc_log_var = vae.encode(x)  # (B, L) each
    q_star = torch.cat([gaussian_gaps.optimal_mean, gaussian_gaps.optimal_log_var], dim=-1).to(dtype)  # (B, 2L)
    identity = FlowPosterior(config)
    for step in identity.steps:
        with torch.no_grad():
            step.params.copy_(_identity_params(step))
    steps = _as_vector(identity)[:, 2 * lat:].expand(x.shape[0], -1)  # (B, T·P), the identity for every image
    fitted_flow, _ = _fit_rows(vae, x, config, torch.cat([q_star, steps], dim=-1), fit_config)

    rows0 = FlowPosterior(replace(config, n_steps=0, amortised=True, free_base=False))  # T = 0: the Gaussians
    rows = FlowPosterior(replace(config, amortised=True, free_base=False))
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    gens = [torch.Generator().manual_seed(seed + i) for i in range(5)]
    n_eval = fit_config.eval_samples
    no_steps = torch.zeros(x.shape[0], 0, dtype=dtype)
    elbo_enc, se_enc = _monte_carlo_elbo(x, vae, rows0, n_eval, generator=gens[0], mean=enc_mean,
                                         log_var=enc_log_var, params=no_steps)
    elbo_gauss, se_gauss = _monte_carlo_elbo(x, vae, rows0, n_eval, generator=gens[1], mean=q_star[:, :lat],
                                             log_var=q_star[:, lat:], params=no_steps)
    flow_args = {"mean": fitted_flow[:, :lat], "log_var": fitted_flow[:, lat:2 * lat],
                 "params": fitted_flow[:, 2 * lat:]}
    elbo_flow, se_flow = _monte_carlo_elbo(x, vae, rows, n_eval, generator=gens[2], **flow_args)
    chunk = max(1, 2**16 // x.shape[0])
    with torch.no_grad():
        log_w = torch.cat([flow_log_weights(x, vae, rows, min(chunk, n_evidence - s), generator=gens[3], **flow_args)
                           for s in range(0, n_evidence, chunk)]).to(torch.float64)  # (K, B)
    log_px_flow = torch.logsumexp(log_w, 0) - math.log(n_evidence)  # (B,)
    w = torch.exp(log_w - log_w.max(0).values)  # (K, B), scaled weights
    log_px_flow_se = w.std(0) / (w.mean(0) * math.sqrt(n_evidence))  # sd(ŵ)/(√K mean ŵ), the delta method
    log_px_encoder = log_evidence(vae, x, n_evidence, generator=gens[4]).to(torch.float64) if encoder_evidence else None
    return FlowGapSplit(log_px_flow, log_px_flow_se, gaussian_gaps.log_px.to(torch.float64), elbo_enc, se_enc,
                        elbo_gauss, se_gauss, elbo_flow, se_flow, q_star, rows, fitted_flow, log_px_encoder)
