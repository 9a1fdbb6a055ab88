"""Monte Carlo gradient estimators of ∇_θ E_{u~p_θ(u)}[f(u)] for a Gaussian p_θ (chapter 4, "The gradient tricks").

Two ways to turn the gradient of an expectation into an expectation we can sample:

* the **score-function** (log-derivative, REINFORCE) estimator, from ∇_θ p_θ = p_θ ∇_θ log p_θ,

      ∇_θ E_{p_θ}[f(u)] = E_{p_θ}[(f(u) − b) ∇_θ log p_θ(u)]  ≈  (1/K) Σ_k (f(u_k) − b) ∇_θ log p_θ(u_k),

  valid for any baseline b that does not depend on u_k (E[∇_θ log p_θ(u)] = 0);
* the **reparameterization** estimator, from u = g_θ(ε) = μ + L ε with ε ~ N(0, I) and L Lᵀ = Σ,

      ∇_θ E_{p_θ}[f(u)] = E_ε[∇_θ f(g_θ(ε))]  ≈  (1/K) Σ_k ∇_θ f(μ + L ε_k).

p_θ = N(μ, σ²) elementwise (1-D or diagonal, θ = (μ, σ) or (μ, log σ)) or N(μ, L Lᵀ) with a full lower-triangular
Cholesky factor L (θ = (μ, L)). Every estimator returns ``repeats`` independent estimates at once, so their mean and
variance can be measured. :class:`ScoreFunctionVAE` trains a VAE whose encoder gets the score-function gradient.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, MultivariateNormal, kl_divergence

from ._checks import as_tensor, check_count, check_generator, check_numbers, check_positive, check_real, check_sequence
from .gaussian import diag_gaussian, kl_diag_gaussian_std_normal, sample, standard_normal_prior
from .models import VAE

__all__ = [
    "TEST_FUNCTIONS",
    "EstimatorComparison",
    "compare_estimators",
    "Baseline",
    "Parameterization",
    "ScoreFunctionVAE",
    "TestFunction",
    "exact_gradient",
    "gaussian_score",
    "kl_gradient_exact",
    "kl_gradient_monte_carlo",
    "reparameterized_gradient",
    "score_function_gradient",
    "standard_error",
]

Parameterization = Literal["scale", "log_scale"]
Baseline = Literal["none", "independent", "leave_one_out"]
_PARAMETERIZATIONS = ("scale", "log_scale")
_BASELINES = ("none", "independent", "leave_one_out")


# ---------------------------------------------------------------------------------------------------------------
# test functions with a closed-form expectation under N(μ, σ²)
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TestFunction:
    """f(u), applied elementwise and summed over the last axis, and E_{u~N(μ, diag σ²)}[f(u)] in closed form."""

    name: str
    f: Callable[[Tensor], Tensor]
    expectation: Callable[[Tensor, Tensor], Tensor]  # (μ, σ) -> E[f(u)]

    __test__ = False  # not a pytest test class


TEST_FUNCTIONS: dict[str, TestFunction] = {
    "u²": TestFunction("u²", lambda u: (u**2).sum(-1), lambda m, s: (m**2 + s**2).sum(-1)),
    "(u − 1)²": TestFunction("(u − 1)²", lambda u: ((u - 1.0) ** 2).sum(-1),
                             lambda m, s: ((m - 1.0) ** 2 + s**2).sum(-1)),
    "sin u": TestFunction("sin u", lambda u: torch.sin(u).sum(-1),
                          lambda m, s: (torch.sin(m) * torch.exp(-0.5 * s**2)).sum(-1)),  # E[sin u] = sin μ e^{−σ²/2}
    "exp u": TestFunction("exp u", lambda u: torch.exp(u).sum(-1),
                          lambda m, s: torch.exp(m + 0.5 * s**2).sum(-1)),  # log-normal mean
}


# ---------------------------------------------------------------------------------------------------------------
# the Gaussian family and its score
# ---------------------------------------------------------------------------------------------------------------
def _check_parameterization(parameterization: str) -> None:
    if not isinstance(parameterization, str) or parameterization not in _PARAMETERIZATIONS:
        raise ValueError(f"parameterization must be one of {_PARAMETERIZATIONS}, got {parameterization!r}")


def _sigma(scale: Tensor, parameterization: Parameterization) -> Tensor:
    """σ from the scale parameter: σ itself, or exp(log σ)."""
    return scale if parameterization == "scale" else torch.exp(scale)


def _check_params(mean: object, scale: object, parameterization: str) -> tuple[Tensor, Tensor, bool]:
    """Validate (μ, scale); returns them as float tensors and whether scale is a full Cholesky factor L."""
    _check_parameterization(parameterization)
    mean = as_tensor("mean", mean, min_ndim=1)
    scale = as_tensor("scale", scale, min_ndim=1, dtype=mean.dtype)
    if mean.dim() != 1:
        raise ValueError(f"mean must be a vector (L,), got shape {tuple(mean.shape)}")
    n = mean.shape[0]
    full = scale.dim() == 2
    if full:
        if scale.shape != (n, n):
            raise ValueError(f"scale as a Cholesky factor must have shape ({n}, {n}), got {tuple(scale.shape)}")
        if parameterization != "scale":
            raise ValueError("a full Cholesky factor scale needs parameterization='scale'")
        if not torch.equal(scale, torch.tril(scale)):
            raise ValueError("scale as a Cholesky factor must be lower triangular")
        check_positive("the diagonal of scale", torch.diagonal(scale))
    else:
        if scale.shape != mean.shape:
            raise ValueError(f"scale must have the shape of mean {tuple(mean.shape)}, got {tuple(scale.shape)}")
        if parameterization == "scale":
            check_positive("scale", scale)
    return mean, scale, full


def _distribution(mean: Tensor, scale: Tensor, parameterization: Parameterization, full: bool) -> Distribution:
    """p_θ = N(μ, L Lᵀ) or N(μ, diag σ²) with event shape (L,)."""
    if full:
        return MultivariateNormal(mean, scale_tril=scale)
    return diag_gaussian(mean, 2 * torch.log(_sigma(scale, parameterization)))


def gaussian_score(u: Tensor, mean: Tensor, scale: Tensor,
                   parameterization: Parameterization = "scale") -> tuple[Tensor, Tensor]:
    """The score ∇_θ log N(u; μ, σ²) elementwise, by hand (chapter 4):

        ∂/∂μ = (u − μ) / σ²,   ∂/∂σ = ((u − μ)² − σ²) / σ³,   ∂/∂log σ = (u − μ)² / σ² − 1.

    ``u`` (..., L) broadcasts against ``mean`` and ``scale``; returns (∂/∂μ, ∂/∂scale), each of u's shape.
    """
    _check_parameterization(parameterization)
    mean = as_tensor("mean", mean, min_ndim=1)
    scale = as_tensor("scale", scale, min_ndim=1, dtype=mean.dtype)
    u = as_tensor("u", u, min_ndim=1, dtype=mean.dtype)
    sigma = _sigma(scale, parameterization)
    check_positive("scale", sigma)
    z = (u - mean) / sigma  # (..., L) standardised
    d_mean = z / sigma
    d_scale = (z**2 - 1.0) / sigma if parameterization == "scale" else z**2 - 1.0
    return d_mean, d_scale


# ---------------------------------------------------------------------------------------------------------------
# the two estimators
# ---------------------------------------------------------------------------------------------------------------
def _leaves(mean: Tensor, scale: Tensor, repeats: int) -> tuple[Tensor, Tensor]:
    """One copy of (μ, scale) per repetition, as autograd leaves: the gradient of Σ_r estimate_r with respect
    to copy r is repetition r's estimate."""
    m = mean.detach().expand(repeats, *mean.shape).clone().requires_grad_(True)  # (R, L)
    s = scale.detach().expand(repeats, *scale.shape).clone().requires_grad_(True)  # (R, L) or (R, L, L)
    return m, s


def _draw(mean_r: Tensor, scale_r: Tensor, parameterization: Parameterization, full: bool, n_samples: int,
          generator: torch.Generator) -> Tensor:
    """u = μ + σ ε (or μ + L ε), K draws per repetition, keeping the gradient path: shape (K, R, L)."""
    dist = _distribution(mean_r, scale_r, parameterization, full)
    return sample(dist, n_samples, generator=generator)  # (K, R, L)


def _grad(surrogate: Tensor, mean_r: Tensor, scale_r: Tensor) -> tuple[Tensor, Tensor]:
    g_mean, g_scale = torch.autograd.grad(surrogate, (mean_r, scale_r))
    if g_scale.dim() == 3:
        g_scale = torch.tril(g_scale)  # only the lower triangle of L is a parameter
    return g_mean, g_scale


def reparameterized_gradient(
    f: Callable[[Tensor], Tensor], mean: Tensor, scale: Tensor,
    n_samples: int, *, repeats: int = 1,
    parameterization: Parameterization = "scale",
    generator: torch.Generator,
) -> tuple[Tensor, Tensor]:
    """``repeats`` independent reparameterization estimates
    (1/K) Σ_k ∇_θ f(g_θ(ε_k)) of ∇_θ E_{p_θ}[f(u)].

    ``f`` maps u (..., L) to (...,); ``mean`` is μ (L,); ``scale`` is σ or
    log σ (L,) (diagonal p_θ) or a lower-triangular Cholesky factor L
    (L, L) (full covariance). Returns (∂/∂μ (R, L),
    ∂/∂scale (R, *scale.shape)).
    """
    mean, scale, full = _check_params(mean, scale, parameterization)
    n_samples = check_count("n_samples", n_samples)
    repeats = check_count("repeats", repeats)
    check_generator(generator)
    mean_r, scale_r = _leaves(mean, scale, repeats)
    u = _draw(mean_r, scale_r, parameterization, full,
              n_samples, generator)  # (K, R, L)
    surrogate = f(u).mean(0).sum()  # Σ_r (1/K) Σ_k f(g_θ(ε_k))
    return _grad(surrogate, mean_r, scale_r)


def score_function_gradient(
    f: Callable[[Tensor], Tensor], mean: Tensor, scale: Tensor,
    n_samples: int, *, repeats: int = 1,
    parameterization: Parameterization = "scale",
    baseline: Baseline | float = "none",
    generator: torch.Generator,
) -> tuple[Tensor, Tensor]:
    """``repeats`` independent score-function (REINFORCE) estimates
    (1/K) Σ_k (f(u_k) − b) ∇_θ log p_θ(u_k).

    The baseline b: ``"none"`` (b = 0), a number, ``"independent"`` (the
    mean of f over K further independent draws) or ``"leave_one_out"``
    (b_k = the mean of f over the other K − 1 draws; needs K ≥ 2). Each
    keeps the estimator unbiased because b is independent of u_k. The
    gradient of ``log_prob`` comes from autograd through
    torch.distributions. Arguments and return as
    :func:`reparameterized_gradient`.
    """
    mean, scale, full = _check_params(mean, scale, parameterization)
    n_samples = check_count("n_samples", n_samples)
    repeats = check_count("repeats", repeats)
    check_generator(generator)
    if isinstance(baseline, str):
        if baseline not in _BASELINES:
            raise ValueError("baseline must be a number or one of "
                             f"{_BASELINES}, got {baseline!r}")
        if baseline == "leave_one_out" and n_samples < 2:
            raise ValueError("baseline='leave_one_out' needs n_samples >= 2")
    elif (isinstance(baseline, bool)
          or not isinstance(baseline, (int, float))):
        raise TypeError("baseline must be a number or a string, got "
                        f"{type(baseline).__name__}")
    mean_r, scale_r = _leaves(mean, scale, repeats)
    dist = _distribution(mean_r, scale_r, parameterization, full)
    with torch.no_grad():
        # no gradient path through u: only log p_θ is differentiated
        u = sample(dist, n_samples, generator=generator)  # (K, R, L)
        f_u = f(u)  # (K, R)
        if baseline == "independent":
            b = f(sample(dist, n_samples, generator=generator)).mean(0)  # (R,)
        elif baseline == "leave_one_out":
            b = (f_u.sum(0) - f_u) / (n_samples - 1)  # (K, R)
        elif baseline == "none":
            b = 0.0
        else:
            b = float(baseline)
    # the surrogate's gradient is Σ_r of the R estimates
    surrogate = ((f_u - b) * dist.log_prob(u)).mean(0).sum()
    return _grad(surrogate, mean_r, scale_r)


def exact_gradient(expectation: Callable[..., Tensor], mean: Tensor, scale: Tensor,
                   parameterization: Parameterization = "scale") -> tuple[Tensor, Tensor]:
    """∇_θ E_{p_θ}[f(u)] by autograd through a closed form ``expectation(μ, σ)`` (diagonal) or
    ``expectation(μ, L)`` (full Cholesky factor). Returns (∂/∂μ (L,), ∂/∂scale (scale's shape))."""
    mean, scale, full = _check_params(mean, scale, parameterization)
    m = mean.detach().clone().requires_grad_(True)
    s = scale.detach().clone().requires_grad_(True)
    value = expectation(m, s) if full else expectation(m, _sigma(s, parameterization))
    g_mean, g_scale = torch.autograd.grad(value.sum(), (m, s))
    return g_mean, torch.tril(g_scale) if full else g_scale


# ---------------------------------------------------------------------------------------------------------------
# the KL term: exact gradient against its Monte Carlo estimate
# ---------------------------------------------------------------------------------------------------------------
def kl_gradient_exact(mean: Tensor, log_var: Tensor) -> tuple[Tensor, Tensor]:
    """∇ KL(N(μ, diag σ²) || N(0, I)) with respect to (μ, log σ²) through the closed form (= (μ, (σ² − 1)/2))."""
    m = as_tensor("mean", mean, ndim=1).detach().clone().requires_grad_(True)
    lv = as_tensor("log_var", log_var, ndim=1, dtype=m.dtype).detach().clone().requires_grad_(True)
    return torch.autograd.grad(kl_diag_gaussian_std_normal(m, lv), (m, lv))


def kl_gradient_monte_carlo(mean: Tensor, log_var: Tensor, n_samples: int, *, repeats: int = 1,
                            generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``repeats`` reparameterized estimates of ∇ KL(q || p(z)) with respect to (μ, log σ²), each from
    (1/K) Σ_k [log q(z_k) − log p(z_k)], z_k = μ + σ ε_k. Returns ((R, L), (R, L))."""
    mean = as_tensor("mean", mean, ndim=1)
    log_var = as_tensor("log_var", log_var, ndim=1, dtype=mean.dtype)
    if mean.shape != log_var.shape:
        raise ValueError(f"mean and log_var must have the same shape, got {tuple(mean.shape)}, {tuple(log_var.shape)}")
    n_samples, repeats = check_count("n_samples", n_samples), check_count("repeats", repeats)
    check_generator(generator)
    m, lv = _leaves(mean, log_var, repeats)  # (R, L) each
    q = diag_gaussian(m, lv)
    z = sample(q, n_samples, generator=generator)  # (K, R, L)
    prior = standard_normal_prior(mean.shape[0], dtype=mean.dtype)
    log_ratio = q.log_prob(z) - prior.log_prob(z)  # (K, R)
    return torch.autograd.grad(log_ratio.mean(0).sum(), (m, lv))


# ---------------------------------------------------------------------------------------------------------------
# a VAE whose encoder is trained with the score-function estimator
# ---------------------------------------------------------------------------------------------------------------
class ScoreFunctionVAE(nn.Module):
    """Wraps a :class:`vae_lib.VAE` so that ``fit`` trains its encoder with REINFORCE instead of the
    reparameterization trick (the decoder's gradient, which needs no trick, is unchanged).

    With z ~ q_φ(z|x) drawn *without* a gradient path and ℓ = log p_θ(x|z), the per-example surrogate

        s = ℓ + stop(ℓ − b) · (log q_φ(z|x) − stop(log q_φ(z|x))) − KL(q_φ(z|x) || p(z))

    has the value of the one-sample ELBO estimate (the middle term is zero) and the gradient
    ∇_θ ℓ + (ℓ − b) ∇_φ log q_φ(z|x) − ∇_φ KL: the score-function estimate of ∇ E_q[ℓ] plus the exact KL gradient.
    ``baseline="batch_mean"`` uses b = the mean of ℓ over the other examples of the batch (leave-one-out).
    """

    def __init__(self, vae: VAE, baseline: Literal["none", "batch_mean"] = "none") -> None:
        super().__init__()
        if not isinstance(vae, VAE):
            raise TypeError(f"vae must be a VAE, got {type(vae).__name__}")
        if baseline not in ("none", "batch_mean"):
            raise ValueError(f"baseline must be 'none' or 'batch_mean', got {baseline!r}")
        self.vae = vae
        self.baseline = baseline

    def loss(self, x: Tensor, *, generator: torch.Generator) -> Tensor:
        """The negative surrogate −s per example, shape (B,); its value is
        the one-sample −ELBO estimate."""
        check_generator(generator)
        q = self.vae.posterior(x)
        # (1, B, L), detached: no path from z back to φ
        z = sample(q, 1, generator=generator).detach()
        log_lik = self.vae.log_likelihood(x, z)[0]  # (B,)
        log_q = q.log_prob(z)[0]  # (B,)
        reward = log_lik.detach()
        if self.baseline == "batch_mean":
            n = reward.shape[0]
            reward = reward - (reward.sum() - reward) / max(n - 1, 1)
        surrogate = (log_lik
                     + reward * (log_q - log_q.detach())
                     - kl_divergence(q, self.vae.prior))  # (B,)
        return -surrogate

    def elbo(self, x: Tensor, n_samples: int = 1, *, generator: torch.Generator) -> Tensor:
        """The wrapped VAE's ELBO (the objective is the same; only its gradient estimator differs)."""
        return self.vae.elbo(x, n_samples, generator=generator)


@dataclass(frozen=True)
class EstimatorComparison:
    """Repeated estimates of ∂/∂μ E_{N(μ, σ²)}[f(u)] (1-D) by both estimators over a grid of (f, σ, K).

    ``score[(f, σ, K)]`` and ``reparam[(f, σ, K)]`` hold ``repeats`` estimates each; ``exact[(f, σ)]`` is the
    exact derivative from the closed form.
    """

    mean: float
    functions: tuple[str, ...]
    sigmas: tuple[float, ...]
    sample_counts: tuple[int, ...]
    score: dict[tuple[str, float, int], Tensor]
    reparam: dict[tuple[str, float, int], Tensor]
    exact: dict[tuple[str, float], float]

    def variance_ratio(self, function: str, sigma: float, n_samples: int) -> float:
        """Var[score-function estimate] / Var[reparameterization estimate] at one setting."""
        key = (function, sigma, n_samples)
        return float(self.score[key].var() / self.reparam[key].var())


def compare_estimators(functions: tuple[str, ...], mean: float, sigmas: tuple[float, ...],
                       sample_counts: tuple[int, ...], *, repeats: int,
                       generator: torch.Generator) -> EstimatorComparison:
    """Both estimators of ∂/∂μ E[f(u)], u ~ N(μ, σ²), ``repeats`` times at every (f, σ, K) (f from TEST_FUNCTIONS)."""
    for name in check_sequence("functions", functions):
        if not isinstance(name, str) or name not in TEST_FUNCTIONS:
            raise ValueError(f"functions must be names from TEST_FUNCTIONS {tuple(TEST_FUNCTIONS)}, got {name!r}")
    check_real("mean", mean)
    for sigma in check_numbers("sigmas", sigmas):
        check_real("sigmas", sigma, above=0)
    for k in check_sequence("sample_counts", sample_counts):
        check_count("sample_counts", k)
    repeats = check_count("repeats", repeats, minimum=2)
    check_generator(generator)
    m = torch.tensor([float(mean)], dtype=torch.float64)
    score, reparam, exact = {}, {}, {}
    for name in functions:
        tf = TEST_FUNCTIONS[name]
        for sigma in sigmas:
            s = torch.tensor([float(sigma)], dtype=torch.float64)
            exact[(name, sigma)] = float(exact_gradient(tf.expectation, m, s)[0][0])
            for k in sample_counts:
                score[(name, sigma, k)] = score_function_gradient(
                    tf.f, m, s, k, repeats=repeats, generator=generator)[0][:, 0]  # (R,)
                reparam[(name, sigma, k)] = reparameterized_gradient(
                    tf.f, m, s, k, repeats=repeats, generator=generator)[0][:, 0]  # (R,)
    return EstimatorComparison(float(mean), tuple(functions), tuple(sigmas), tuple(sample_counts), score, reparam,
                               exact)


def standard_error(values: Tensor) -> Tensor:
    """The standard error of the mean over the first axis, std / √R (R >= 2 rows: one row has no spread)."""
    values = as_tensor("values", values, min_ndim=1)
    if values.shape[0] < 2:
        raise ValueError(f"values must hold at least 2 rows along the first axis (R >= 2: the standard error of "
                         f"one value is undefined), got shape {tuple(values.shape)}")
    return values.std(0) / math.sqrt(values.shape[0])

