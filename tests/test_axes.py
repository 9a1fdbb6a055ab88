"""vae_lib.axes: rotations of the latent space against closed forms and brute force.

The KL to the prior is rotation invariant; the best diagonal Gaussian under the reverse KL has variances 1/(C⁻¹)_ii
(checked against a direct minimisation with torch); its cost is ½(Σ log Λ_ii − log det Λ), in 2-D
½ log(1 + (v₁ − v₂)² sin²2θ / (4 v₁ v₂)); the rotated model's ELBO with the rotated full-covariance posterior is the
unrotated one's; the Laplace precision is I minus the exact Hessian for a decoder whose logits are linear in z.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from vae_lib.axes import (
    best_diagonal_variances,
    diagonal_approximation_kl,
    kl_gaussian_std_normal,
    posterior_precision,
    rotate_gaussian,
    rotated_correlations,
    rotated_elbo,
    rotation_cost,
    rotation_matrix,
)
from vae_lib.disentanglement import correlation_matrix
from vae_lib.models import VAE, VAEConfig

F64 = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_spd(dim: int, seed: int, batch: tuple[int, ...] = ()) -> torch.Tensor:
    a = torch.randn(*batch, dim, dim, generator=gen(seed), dtype=F64)
    return a @ a.transpose(-1, -2) + 0.3 * torch.eye(dim, dtype=F64)


def random_rotation(dim: int, seed: int) -> torch.Tensor:
    """A random orthogonal matrix with determinant 1 (QR of a Gaussian matrix, signs fixed)."""
    q, r = torch.linalg.qr(torch.randn(dim, dim, generator=gen(seed), dtype=F64))
    q = q * torch.sign(torch.diagonal(r))
    if torch.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


# ------------------------------------------------------------------------------------------- rotations
def test_rotation_matrix_is_a_givens_rotation():
    r = rotation_matrix(4, 0.3, plane=(1, 3))
    assert torch.allclose(r @ r.T, torch.eye(4, dtype=F64), atol=1e-15)
    assert torch.linalg.det(r).item() == pytest.approx(1.0, abs=1e-15)
    e1 = torch.zeros(4, dtype=F64)
    e1[1] = 1.0
    expected = torch.zeros(4, dtype=F64)
    expected[1], expected[3] = math.cos(0.3), math.sin(0.3)
    assert torch.allclose(r @ e1, expected, atol=1e-15)  # e_i turns towards e_j
    assert torch.equal(r[[0, 2]][:, [0, 2]], torch.eye(2, dtype=F64))  # the other axes stay put
    assert torch.allclose(rotation_matrix(2, math.pi / 2), torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=F64),
                          atol=1e-15)


@pytest.mark.parametrize("bad", [(0, 0), (0, 5), (1,), "ab"])
def test_rotation_matrix_rejects_bad_planes(bad):
    with pytest.raises((TypeError, ValueError), match="plane"):
        rotation_matrix(3, 0.1, plane=bad)


def test_non_orthogonal_rotation_is_refused():
    with pytest.raises(ValueError, match="orthogonal"):
        rotate_gaussian(torch.zeros(2), torch.eye(2), torch.tensor([[1.0, 0.1], [0.0, 1.0]]))


# ------------------------------------------------------------------------------------------- KL
def test_kl_to_std_normal_matches_torch_distributions():
    mean = torch.randn(5, 3, generator=gen(0), dtype=F64)
    cov = random_spd(3, 1, (5,))
    q = torch.distributions.MultivariateNormal(mean, cov)
    p = torch.distributions.MultivariateNormal(torch.zeros(3, dtype=F64), torch.eye(3, dtype=F64))
    assert torch.allclose(kl_gaussian_std_normal(mean, cov), torch.distributions.kl_divergence(q, p), atol=1e-12)


@given(st.integers(2, 6), st.integers(0, 10_000))
def test_kl_to_the_prior_is_rotation_invariant(dim, seed):
    """KL(N(Rμ, RSRᵀ) ‖ N(0, I)) = KL(N(μ, S) ‖ N(0, I)) for every rotation R."""
    mean = torch.randn(4, dim, generator=gen(seed), dtype=F64)
    cov = random_spd(dim, seed + 1, (4,))
    r = random_rotation(dim, seed + 2)
    mean_r, cov_r = rotate_gaussian(mean, cov, r)
    assert torch.allclose(kl_gaussian_std_normal(mean_r, cov_r), kl_gaussian_std_normal(mean, cov), atol=1e-10)


# ------------------------------------------------------------------------------------------- the best diagonal q
def _brute_force_diagonal(mean: torch.Tensor, cov: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Minimise KL(N(m', diag e^s) ‖ N(m, C)) over m' and s with L-BFGS: (m', e^s, the minimum)."""
    target = torch.distributions.MultivariateNormal(mean, cov)
    m = torch.zeros_like(mean, requires_grad=True)
    s = torch.zeros_like(mean, requires_grad=True)
    opt = torch.optim.LBFGS([m, s], lr=1.0, max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-15,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        q = torch.distributions.MultivariateNormal(m, torch.diag_embed(s.exp()))
        kl = torch.distributions.kl_divergence(q, target)
        kl.backward()
        return kl

    for _ in range(5):
        opt.step(closure)
    with torch.no_grad():
        q = torch.distributions.MultivariateNormal(m, torch.diag_embed(s.exp()))
        return m.detach(), s.exp().detach(), torch.distributions.kl_divergence(q, target).item()


@pytest.mark.parametrize("dim, seed", [(2, 0), (3, 1), (5, 2)])
def test_best_diagonal_gaussian_matches_brute_force_minimisation(dim, seed):
    mean = torch.randn(dim, generator=gen(seed), dtype=F64)
    cov = random_spd(dim, seed + 10)
    m, var, kl_min = _brute_force_diagonal(mean, cov)
    assert torch.allclose(m, mean, atol=1e-6)
    assert torch.allclose(var, best_diagonal_variances(cov), rtol=1e-6)
    assert kl_min == pytest.approx(diagonal_approximation_kl(cov).item(), abs=1e-9)
    assert (best_diagonal_variances(cov) <= torch.diagonal(cov) + 1e-12).all()  # under-covers


def test_diagonal_approximation_costs_nothing_exactly_for_a_diagonal_covariance():
    assert diagonal_approximation_kl(torch.diag(torch.tensor([0.1, 2.0, 5.0], dtype=F64))).item() == 0.0
    assert diagonal_approximation_kl(random_spd(3, 4)).item() > 0  # Hadamard: strict for a non-diagonal one


@given(st.floats(0.05, 5.0), st.floats(0.05, 5.0), st.floats(-3.2, 3.2))
def test_rotation_cost_in_2d_has_its_closed_form(v1, v2, theta):
    """½ log(1 + (v₁ − v₂)² sin²(2θ) / (4 v₁ v₂)): zero for isotropic variances and for θ a multiple of 90°."""
    cost = rotation_cost(torch.tensor([v1, v2], dtype=F64), rotation_matrix(2, theta)).item()
    expected = 0.5 * math.log1p((v1 - v2) ** 2 * math.sin(2 * theta) ** 2 / (4 * v1 * v2))
    assert cost == pytest.approx(expected, abs=1e-10)


def test_rotation_cost_is_zero_for_isotropic_posteriors_and_permutations():
    v = torch.tensor([0.2, 0.2, 0.2], dtype=F64)
    assert rotation_cost(v, random_rotation(3, 0)).item() == pytest.approx(0.0, abs=1e-12)
    w = torch.tensor([0.1, 0.4, 0.9], dtype=F64)
    assert rotation_cost(w, rotation_matrix(3, math.pi / 2, plane=(0, 2))).item() == pytest.approx(0.0, abs=1e-12)
    assert rotation_cost(w, rotation_matrix(3, 0.4, plane=(0, 2))).item() > 0.01


# ------------------------------------------------------------------------------------------- on a model
def small_vae(seed: int = 0, decoder: nn.Module | None = None) -> VAE:
    config = VAEConfig(data_dim=5, latent_dim=2, hidden=(8,), n_levels=3, x_scale=2.0, seed=seed)
    return VAE(config, decoder=decoder).eval()


def test_rotated_elbo_with_the_full_rotated_posterior_is_the_unrotated_elbo():
    vae = small_vae()
    x = torch.randint(0, 3, (6, 5), generator=gen(1)).float()
    plain = rotated_elbo(vae, x, torch.eye(2), n_samples=16, generator=gen(2))
    for theta in (0.3, 1.0, 2.5):
        rotated = rotated_elbo(vae, x, rotation_matrix(2, theta), n_samples=16, generator=gen(2))
        assert torch.allclose(rotated, plain, atol=1e-5)
    # unrotated, the diagonal posterior is the encoder's own: both options agree exactly
    diagonal = rotated_elbo(vae, x, torch.eye(2), posterior="diagonal", n_samples=16, generator=gen(2))
    assert torch.allclose(diagonal, plain, atol=1e-12)


def test_rotated_elbo_agrees_with_the_models_elbo_in_expectation():
    vae = small_vae(seed=3)
    x = torch.randint(0, 3, (4, 5), generator=gen(4)).float()
    ours = rotated_elbo(vae, x, rotation_matrix(2, 0.7), n_samples=20_000, generator=gen(5))
    with torch.no_grad():
        theirs = vae.elbo(x, 20_000, generator=gen(6)).double()
    assert torch.allclose(ours, theirs, atol=0.03)


def test_posterior_precision_is_one_minus_the_exact_hessian_for_linear_logits():
    """Logits linear in z: −∇²_z log p(x|z) = Jᵀ F J exactly, so Λ = I − ∇²_z log p(x|z) at z = μ."""
    decoder = nn.Linear(2, 15)
    with torch.no_grad():
        decoder.weight.copy_(torch.randn(15, 2, generator=gen(7)))
    vae = small_vae(decoder=decoder)
    x = torch.randint(0, 3, (3, 5), generator=gen(8)).float()
    precision = posterior_precision(vae, x)
    with torch.no_grad():
        mean, _ = vae.encode(x)
    for b in range(3):
        hessian = torch.autograd.functional.hessian(lambda z: vae.log_likelihood(x[b:b + 1], z[None, None])[0, 0],
                                                    mean[b])
        assert torch.allclose(precision[b], torch.eye(2, dtype=F64) - hessian.double(), atol=1e-5)
    assert (torch.linalg.eigvalsh(precision) >= 1 - 1e-9).all()


def test_rotated_correlations_read_the_projected_axis():
    z = torch.randn(300, 3, generator=gen(9), dtype=F64)
    v = z[:, 0] + 0.5 * z[:, 2] + 0.1 * torch.randn(300, generator=gen(10), dtype=F64)
    angles = [0.0, math.pi / 2, 0.4]
    rho = rotated_correlations(z, v, (0, 2), angles)
    assert rho[0].item() == pytest.approx(correlation_matrix(z[:, :1], v[:, None]).item(), abs=1e-12)
    assert rho[1].item() == pytest.approx(correlation_matrix(z[:, 2:], v[:, None]).item(), abs=1e-12)
    projected = math.cos(0.4) * z[:, 0] + math.sin(0.4) * z[:, 2]
    assert rho[2].item() == pytest.approx(correlation_matrix(projected[:, None], v[:, None]).item(), abs=1e-12)
