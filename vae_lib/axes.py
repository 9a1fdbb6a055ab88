"""What a diagonal-Gaussian posterior does and does not promise about a VAE's latent axes (chapter 7).

Rotate a VAE's latent space by an orthogonal R: the decoder reads Rᵀz and the encoder's posterior becomes
N(Rμ, R S Rᵀ) (S = diag σ² the encoder's covariance). The prior N(0, I) is invariant (Rz ~ N(0, I)), and so is the
KL term, because

    KL(N(Rμ, RSRᵀ) ‖ N(0, I)) = ½ (tr RSRᵀ + ‖Rμ‖² − L − log det RSRᵀ) = ½ (tr S + ‖μ‖² − L − log det S),

and the reconstruction term is the same expectation after the change of variables z̃ = Rᵀz. With a
full-covariance posterior the ELBO is therefore the same for every rotation: nothing in the objective prefers any
axes. A *diagonal* posterior cannot represent RSRᵀ, and the best diagonal Gaussian for N(m, C) under the reverse KL
(the direction the ELBO uses) keeps the mean and has variances 1 / (C⁻¹)_ii,

    min over diagonal D of KL(N(m, D) ‖ N(m, C)) = ½ (Σ_i log (C⁻¹)_ii − log det C⁻¹)  ≥ 0      (Hadamard),

zero exactly when C⁻¹ is diagonal. For C = R diag(s₁, s₂) Rᵀ with R a rotation by θ this is
½ log(1 + (s₁ − s₂)² sin²(2θ) / (4 s₁ s₂)): zero for every θ when s₁ = s₂, and largest at 45°.

* :func:`rotation_matrix` — the Givens rotation by an angle in one coordinate plane;
* :func:`kl_gaussian_std_normal`, :func:`rotate_gaussian` — the invariant KL term and the rotated posterior;
* :func:`best_diagonal_variances`, :func:`diagonal_approximation_kl`, :func:`rotation_cost` — the optimum above;
* :func:`rotated_elbo` — the ELBO of the rotated model with the rotated full-covariance posterior or its best
  diagonal approximation, by Monte Carlo;
* :func:`posterior_precision` — the precision I + Jᵀ F J of the Laplace (Gauss–Newton) approximation of the
  posterior p_θ(z|x) at z = μ_φ(x), for a categorical decoder: the covariance a diagonal q should match;
* :func:`rotation_scan` — all of these per angle, averaged over a set of images;
* :func:`rotated_correlations` — how well a rotated code axis tracks a factor (Pearson ρ per angle).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from ._checks import as_tensor, check_count, check_generator
from .gaussian import kl_full_gaussians
from .models import VAE

__all__ = [
    "best_diagonal_variances",
    "diagonal_approximation_kl",
    "kl_gaussian_std_normal",
    "posterior_precision",
    "rotate_gaussian",
    "rotated_correlations",
    "RotationScan",
    "rotated_elbo",
    "rotation_cost",
    "rotation_scan",
    "rotation_matrix",
]

F64 = torch.float64
Posterior = Literal["full", "diagonal"]


def rotation_matrix(dim: int, angle: float, plane: tuple[int, int] = (0, 1)) -> Tensor:
    """The (dim, dim) float64 rotation by ``angle`` (radians) in the coordinate plane (i, j) = ``plane``.

    R e_i = cos θ e_i + sin θ e_j and R e_j = −sin θ e_i + cos θ e_j (counter-clockwise from axis i towards axis j);
    every other axis is left alone. Orthogonal with determinant 1.
    """
    dim = check_count("dim", dim, minimum=2)
    if not isinstance(angle, (int, float)) or isinstance(angle, bool) or not math.isfinite(angle):
        raise TypeError(f"angle must be a finite number (radians), got {angle!r}")
    i, j = _check_plane(plane, dim)
    r = torch.eye(dim, dtype=F64)
    c, s = math.cos(angle), math.sin(angle)
    r[i, i], r[j, i], r[i, j], r[j, j] = c, s, -s, c
    return r


def _check_plane(plane: object, dim: int) -> tuple[int, int]:
    if (not isinstance(plane, (tuple, list)) or len(plane) != 2
            or not all(isinstance(p, int) and not isinstance(p, bool) for p in plane)):
        raise TypeError(f"plane must be a pair of axis indices (i, j), got {plane!r}")
    i, j = plane
    if not (0 <= i < dim and 0 <= j < dim and i != j):
        raise ValueError(f"plane must be two different axes in 0 … {dim - 1}, got {plane!r}")
    return i, j


def _check_cov(name: str, cov: object) -> Tensor:
    c = as_tensor(name, cov, min_ndim=2, dtype=F64)
    if c.shape[-1] != c.shape[-2]:
        raise ValueError(f"{name} must have shape (..., L, L), got {tuple(c.shape)}")
    return c


def _check_rotation(rotation: object, dim: int) -> Tensor:
    r = as_tensor("rotation", rotation, ndim=2, dtype=F64)
    if r.shape != (dim, dim):
        raise ValueError(f"rotation must have shape ({dim}, {dim}) (the latent size), got {tuple(r.shape)}")
    if not torch.allclose(r @ r.T, torch.eye(dim, dtype=F64), atol=1e-9):
        raise ValueError("rotation must be orthogonal (R Rᵀ = I)")
    return r


def kl_gaussian_std_normal(mean: Tensor, cov: Tensor) -> Tensor:
    """KL(N(m, C) ‖ N(0, I)) = ½ (tr C + ‖m‖² − L − log det C) for mean (..., L), cov (..., L, L): (...,) float64."""
    m = as_tensor("mean", mean, min_ndim=1, dtype=F64)
    c = _check_cov("cov", cov)
    latent = m.shape[-1]
    if c.shape[-1] != latent:
        raise ValueError(f"cov must have shape (..., {latent}, {latent}) to match mean, got {tuple(c.shape)}")
    return kl_full_gaussians(m, c, torch.zeros(latent, dtype=F64), torch.eye(latent, dtype=F64))


def rotate_gaussian(mean: Tensor, cov: Tensor, rotation: Tensor) -> tuple[Tensor, Tensor]:
    """The law of Rz for z ~ N(m, C): (R m, R C Rᵀ), for mean (..., L), cov (..., L, L), rotation R (L, L)."""
    m = as_tensor("mean", mean, min_ndim=1, dtype=F64)
    c = _check_cov("cov", cov)
    r = _check_rotation(rotation, m.shape[-1])
    return m @ r.T, r @ c @ r.T


def best_diagonal_variances(cov: Tensor) -> Tensor:
    """Variances 1 / (C⁻¹)_ii of the diagonal Gaussian closest to N(m, C) in KL(N(m, D) ‖ N(m, C)): (..., L).

    Setting the derivative of KL = ½ (tr C⁻¹D − L + log det C − log det D) in D_ii to zero gives
    (C⁻¹)_ii = 1 / D_ii; the best mean is m (the mean term (m − m')ᵀ C⁻¹ (m − m') vanishes only there). Always at
    most C_ii: a diagonal posterior fitted in reverse KL under-covers a correlated one.
    """
    c = _check_cov("cov", cov)
    precision = torch.cholesky_inverse(torch.linalg.cholesky(c))  # (..., L, L)
    return 1.0 / torch.diagonal(precision, dim1=-2, dim2=-1)


def diagonal_approximation_kl(cov: Tensor) -> Tensor:
    """min over diagonal D of KL(N(m, D) ‖ N(m, C)) = ½ (Σ_i log (C⁻¹)_ii − log det C⁻¹), (...,) float64, ≥ 0.

    The nats a diagonal Gaussian loses against a full-covariance one with covariance C (Hadamard's inequality:
    det Λ ≤ Π Λ_ii for a positive-definite Λ = C⁻¹, with equality only for a diagonal Λ).
    """
    c = _check_cov("cov", cov)
    chol = torch.linalg.cholesky(c)
    precision = torch.cholesky_inverse(chol)
    log_det_cov = 2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
    kl = 0.5 * (torch.log(torch.diagonal(precision, dim1=-2, dim2=-1)).sum(-1) + log_det_cov)
    return kl.clamp_min(0.0)  # exact value ≥ 0; rounding can give −1e-16


def rotation_cost(variances: Tensor, rotation: Tensor) -> Tensor:
    """diagonal_approximation_kl(R diag(v) Rᵀ) for variances v (..., L): the nats a diagonal posterior loses, in
    a Gaussian model of the posterior, when the latent space is rotated by R. (...,) float64.

    In 2-D, with R a rotation by θ: ½ log(1 + (v₁ − v₂)² sin²(2θ) / (4 v₁ v₂)).
    """
    v = as_tensor("variances", variances, min_ndim=1, dtype=F64)
    if not (v > 0).all():
        raise ValueError("variances must be strictly positive")
    r = _check_rotation(rotation, v.shape[-1])
    return diagonal_approximation_kl(r @ torch.diag_embed(v) @ r.T)


def rotated_elbo(model: VAE, x: Tensor, rotation: Tensor, *, posterior: Posterior = "full", n_samples: int = 8,
                 generator: torch.Generator) -> Tensor:
    """The ELBO of ``model`` with its latent space rotated by R, per image (B,) float64, by Monte Carlo.

    The rotated model decodes z through p_θ(x | Rᵀz) and its posterior has mean Rμ_φ(x); its covariance is
    ``posterior="full"``: R S Rᵀ, the rotated encoder's own (S = diag σ_φ²(x)), or ``"diagonal"``: the best
    diagonal approximation of it (:func:`best_diagonal_variances`), what a diagonal encoder can at best output.
    The reconstruction term uses K = ``n_samples`` draws z = Rμ + A ε, ε ~ N(0, I) from ``generator``, with the
    square root A = R (Rᵀ C R)^½ of the covariance C (A Aᵀ = C; the power ½ the symmetric one), so the decoder reads
    Rᵀz = μ + (Rᵀ C R)^½ ε. For ``"full"`` that is μ + S^½ ε, exactly the unrotated model's draw with the same ε (the
    change of variables behind the invariance); for ``"diagonal"`` it stays as close to it as the covariance allows,
    which keeps the Monte Carlo noise of ELBO differences small (common random numbers). The KL term is exact.
    """
    if not isinstance(model, VAE):
        raise TypeError(f"model must be a vae_lib.VAE, got {type(model).__name__}")
    if posterior not in ("full", "diagonal"):
        raise ValueError(f"posterior must be 'full' or 'diagonal', got {posterior!r}")
    n_samples = check_count("n_samples", n_samples)
    check_generator(generator)
    latent = model.config.latent_dim
    r = _check_rotation(rotation, latent)
    x = model.flatten_data(x)
    with torch.no_grad():
        mean, log_var = (t.double() for t in model.encode(x))  # (B, L) each
        eps = torch.randn(n_samples, *mean.shape, generator=generator, dtype=F64)  # (K, B, L)
        std = torch.exp(0.5 * log_var)  # (B, L)
        mean_r, cov_r = rotate_gaussian(mean, torch.diag_embed(std**2), r)  # (B, L), (B, L, L)
        cov = cov_r if posterior == "full" else torch.diag_embed(best_diagonal_variances(cov_r))
        root = r @ _symmetric_sqrt(r.T @ cov @ r)  # (B, L, L): A Aᵀ = cov
        z = mean_r + (root @ eps.unsqueeze(-1)).squeeze(-1)  # (K, B, L) in the rotated space
        z_decoder = z @ r  # rows of Rᵀ z: what the decoder reads
        reconstruction = model.log_likelihood(x, z_decoder.float()).double().mean(0)  # (B,)
        return reconstruction - kl_gaussian_std_normal(mean_r, cov)


def _symmetric_sqrt(cov: Tensor) -> Tensor:
    """The symmetric positive square root of positive-definite matrices (..., L, L), by eigendecomposition."""
    values, vectors = torch.linalg.eigh(cov)
    return (vectors * values.clamp_min(0).sqrt().unsqueeze(-2)) @ vectors.transpose(-1, -2)


def posterior_precision(model: VAE, x: Tensor) -> Tensor:
    """Λ(x) = I + Jᵀ F J at z = μ_φ(x): the precision of the Laplace approximation of p_θ(z | x), (B, L, L) float64.

    For a categorical decoder with logits ℓ(z) (D pixels × n levels), −∇²_z log p_θ(x | z) = Jᵀ F J − Σ_d (onehot(x_d)
    − p_d)ᵀ ∇²ℓ_d, with J = ∂ℓ/∂z and F the block-diagonal softmax covariance diag(p_d) − p_d p_dᵀ. The Gauss–Newton
    approximation keeps Jᵀ F J (positive semi-definite, the decoder's Fisher information about z) and drops the
    residual term; the prior adds I. J is computed column by column with forward-mode differentiation (L passes).
    """
    if not isinstance(model, VAE):
        raise TypeError(f"model must be a vae_lib.VAE, got {type(model).__name__}")
    c = model.config
    if c.likelihood != "categorical":
        raise ValueError(f"posterior_precision needs a categorical decoder, got {c.likelihood!r}")
    x = model.flatten_data(x)
    return torch.cat([_precision_chunk(model, part) for part in x.split(_PRECISION_CHUNK)])


_PRECISION_CHUNK = 32  # images at a time: the Jacobian of a chunk is 32 × D × n × L floats (25 MB per L at 32×32)


def _precision_chunk(model: VAE, x: Tensor) -> Tensor:
    c = model.config
    latent = c.latent_dim
    with torch.no_grad():
        mean, _ = model.encode(x)  # (B, L)

    def logits(z: Tensor) -> Tensor:
        return model._decoder_out(z).unflatten(-1, (c.data_dim, c.n_levels))  # (B, D, n)

    columns = []
    with torch.no_grad():
        for j in range(latent):
            direction = torch.zeros_like(mean)
            direction[:, j] = 1.0
            out, tangent = torch.func.jvp(logits, (mean,), (direction,))  # (B, D, n) each
            columns.append(tangent.double())
        p = torch.softmax(out.double(), dim=-1)  # (B, D, n)
    jac = torch.stack(columns, dim=-1)  # (B, D, n, L)
    pj = p.unsqueeze(-1) * jac  # (B, D, n, L): diag(p) J
    mean_j = pj.sum(2)  # (B, D, L): pᵀ J
    fisher = torch.einsum("bdnk,bdnl->bkl", jac, pj) - torch.einsum("bdk,bdl->bkl", mean_j, mean_j)  # Jᵀ F J
    return torch.eye(latent, dtype=F64) + 0.5 * (fisher + fisher.transpose(-1, -2))


def rotated_correlations(codes: Tensor, factor: Tensor, plane: tuple[int, int], angles: Sequence[float]) -> Tensor:
    """Pearson ρ between ``factor`` and the projection of the codes on u(θ) = cos θ e_i + sin θ e_j, per angle θ.

    codes (N, L) (e.g. posterior means), factor (N,), plane (i, j), angles in radians: returns (len(angles),)
    float64. Rotating the latent space by −θ in that plane (:func:`rotation_matrix`) makes u(θ) the new axis i.
    """
    z = as_tensor("codes", codes, ndim=2, dtype=F64)
    v = as_tensor("factor", factor, ndim=1, dtype=F64)
    if z.shape[0] != v.shape[0] or z.shape[0] < 2:
        raise ValueError(f"codes and factor must have the same number (>= 2) of rows, got {z.shape[0]} and "
                         f"{v.shape[0]}")
    i, j = _check_plane(plane, z.shape[1])
    theta = torch.as_tensor([float(a) for a in angles], dtype=F64)  # (A,)
    axis = torch.cos(theta)[None, :] * z[:, i, None] + torch.sin(theta)[None, :] * z[:, j, None]  # (N, A)
    axis = axis - axis.mean(0)
    vc = v - v.mean()
    return (axis * vc[:, None]).sum(0) / (axis.norm(dim=0) * vc.norm()).clamp_min(torch.finfo(F64).tiny)


@dataclass(frozen=True)
class RotationScan:
    """What rotating a VAE's latent space by θ (in one plane) costs, mean nats per image, one entry per angle."""

    angles: Tensor  # (A,) radians
    gaussian_cost: Tensor  # (A,) rotation_cost(σ_φ²(x), R): the best diagonal q against the rotated encoder's q
    laplace_cost: Tensor  # (A,) the best diagonal q against the rotated Laplace posterior N(Rμ, R Λ⁻¹ Rᵀ)
    laplace_cost_unrotated: float  # the same at θ = 0: how far the model's own axes are from the Laplace axes
    elbo_change_diagonal: Tensor  # (A,) ELBO of the rotated model with the best diagonal q, minus the unrotated ELBO
    elbo_change_diagonal_se: Tensor  # (A,) its standard error over the images
    elbo_change_full: Tensor  # (A,) the same with the rotated full-covariance q (0 up to rounding: invariance)


def rotation_scan(model: VAE, x: Tensor, angles: Sequence[float], plane: tuple[int, int] = (0, 1), *,
                  n_samples: int = 4, generator: torch.Generator) -> RotationScan:
    """Rotate ``model``'s latent space by each angle (radians) in ``plane`` and measure the cost, on images x.

    The Monte Carlo ELBOs (:func:`rotated_elbo`) use the same ε for every angle (common random numbers, drawn from a
    seed taken from ``generator``), so at θ = 0 the change is exactly 0 and the curves are smooth in θ.
    """
    model = _check_model_eval(model)
    check_generator(generator)
    latent = model.config.latent_dim
    _check_plane(plane, latent)
    seed = int(torch.randint(2**62, (1,), generator=generator))
    x = model.flatten_data(x)
    with torch.no_grad():
        _, log_var = model.encode(x)
    variances = log_var.double().exp()  # (B, L)
    laplace_cov = torch.linalg.inv(posterior_precision(model, x))  # (B, L, L)
    base = rotated_elbo(model, x, torch.eye(latent), n_samples=n_samples, generator=torch.Generator().manual_seed(seed))
    rows: dict[str, list[float]] = {"gauss": [], "laplace": [], "diag": [], "diag_se": [], "full": []}
    for angle in angles:
        r = rotation_matrix(latent, float(angle), plane)
        rows["gauss"].append(rotation_cost(variances, r).mean().item())
        rows["laplace"].append(diagonal_approximation_kl(r @ laplace_cov @ r.T).mean().item())
        for kind, key in (("diagonal", "diag"), ("full", "full")):
            elbo = rotated_elbo(model, x, r, posterior=kind, n_samples=n_samples,
                                generator=torch.Generator().manual_seed(seed))
            change = elbo - base  # (B,)
            rows[key].append(change.mean().item())
            if key == "diag":
                rows["diag_se"].append(change.std().item() / math.sqrt(len(change)) if len(change) > 1 else 0.0)
    as_t = lambda values: torch.tensor(values, dtype=F64)  # noqa: E731
    return RotationScan(angles=as_t([float(a) for a in angles]), gaussian_cost=as_t(rows["gauss"]),
                        laplace_cost=as_t(rows["laplace"]),
                        laplace_cost_unrotated=diagonal_approximation_kl(laplace_cov).mean().item(),
                        elbo_change_diagonal=as_t(rows["diag"]), elbo_change_diagonal_se=as_t(rows["diag_se"]),
                        elbo_change_full=as_t(rows["full"]))


def _check_model_eval(model: object) -> VAE:
    if not isinstance(model, VAE):
        raise TypeError(f"model must be a vae_lib.VAE, got {type(model).__name__}")
    return model.eval()
