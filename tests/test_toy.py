"""vae_lib.toy: the exactly solvable toy models, against Bayes' rule done independently.

The linear-Gaussian model is checked against scipy and against grid quadrature (GridLatentModel with the
same linear decoder); the folded model against 1-D scipy quadrature.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from vae_lib.elbo import elbo_joint_plus_entropy
from vae_lib.gaussian import diag_gaussian, kl_full_gaussians, sample
from vae_lib.toy import GridLatentModel, LinearGaussianModel, arc_model, folded_model

F64 = torch.float64
D, L, SIGMA = 3, 2, 0.5


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def linear() -> LinearGaussianModel:
    g = gen(0)
    return LinearGaussianModel(torch.randn(D, L, generator=g, dtype=F64), torch.randn(D, generator=g, dtype=F64), SIGMA)


@pytest.fixture(scope="module")
def linear_on_grid(linear) -> GridLatentModel:
    w, b = linear.weight, linear.bias
    return GridLatentModel(lambda z: z @ w.T + b, SIGMA, latent_dim=L, data_dim=D)


@pytest.fixture(scope="module")
def xs(linear) -> torch.Tensor:
    return linear.sample(3, generator=gen(1))[0]  # (3, D)


@pytest.fixture(scope="module")
def folded() -> GridLatentModel:
    return folded_model()


def grid_moments(model: GridLatentModel, x: torch.Tensor):
    """Posterior mean (B, L) and covariance (B, L, L) by quadrature on the model's grid."""
    w = model.log_posterior_on_grid(x).exp() * model.grid.cell_volume  # (B, G)
    z = model.grid.points  # (G, L)
    mean = w @ z
    centred = z.unsqueeze(0) - mean.unsqueeze(1)  # (B, G, L)
    cov = torch.einsum("bg,bgi,bgj->bij", w, centred, centred)
    return mean, cov


# ---------------------------------------------------------------------------------------------------------
# LinearGaussianModel: closed forms against scipy and the grid
# ---------------------------------------------------------------------------------------------------------
class TestLinearGaussian:
    def test_log_marginal_equals_scipy(self, linear, xs):
        w, b = linear.weight.numpy(), linear.bias.numpy()
        cov = w @ w.T + SIGMA**2 * np.eye(D)
        expected = stats.multivariate_normal(mean=b, cov=cov).logpdf(xs.numpy())
        np.testing.assert_allclose(linear.log_marginal(xs).numpy(), expected, rtol=0, atol=1e-12)

    def test_log_marginal_equals_grid_quadrature(self, linear, linear_on_grid, xs):
        torch.testing.assert_close(linear_on_grid.log_marginal(xs), linear.log_marginal(xs), rtol=0, atol=1e-6)

    def test_posterior_equals_grid_quadrature(self, linear, linear_on_grid, xs):
        post = linear.posterior(xs)
        mean, cov = grid_moments(linear_on_grid, xs)
        torch.testing.assert_close(mean, post.loc, rtol=0, atol=1e-6)
        torch.testing.assert_close(cov, post.covariance_matrix, rtol=0, atol=1e-6)
        # the posterior density itself, at every grid point
        log_post = post.log_prob(linear_on_grid.grid.points.unsqueeze(1)).T  # (B, G)
        grid_log_post = linear_on_grid.log_posterior_on_grid(xs)
        near = log_post > -20  # where the density is not negligible
        torch.testing.assert_close(grid_log_post[near], log_post[near], rtol=0, atol=1e-6)

    def test_posterior_equals_gaussian_conditioning(self, linear, xs):
        # the joint (z, x) is Gaussian with Cov(z, x) = Wᵀ and Cov(x) = W Wᵀ + σ² I, so
        # z | x ~ N(Wᵀ Σ_x⁻¹ (x − b), I − Wᵀ Σ_x⁻¹ W)  (the "other side" of the Woodbury identity)
        w, b = linear.weight.numpy(), linear.bias.numpy()
        sigma_x = w @ w.T + SIGMA**2 * np.eye(D)
        gain = np.linalg.solve(sigma_x, w).T  # Wᵀ Σ_x⁻¹, (L, D)
        post = linear.posterior(xs)
        np.testing.assert_allclose(post.loc.numpy(), (xs.numpy() - b) @ gain.T, rtol=0, atol=1e-12)
        np.testing.assert_allclose(post.covariance_matrix[0].numpy(), np.eye(L) - gain @ w, rtol=0, atol=1e-12)
        assert post.batch_shape == (3,) and post.event_shape == (L,)

    def test_bayes_rule_pointwise(self, linear, xs):
        # log p(z|x) = log p(x|z) + log p(z) − log p(x) at arbitrary z
        z = torch.randn(5, 3, L, generator=gen(2), dtype=F64)  # (K, B, L)
        lhs = linear.posterior(xs).log_prob(z)
        rhs = linear.log_likelihood(xs, z) + linear.prior.log_prob(z) - linear.log_marginal(xs)
        torch.testing.assert_close(lhs, rhs, rtol=0, atol=1e-10)

    def test_log_likelihood_equals_scipy(self, linear, xs):
        z = torch.randn(3, L, generator=gen(3), dtype=F64)
        got = linear.log_likelihood(xs, z.unsqueeze(0))[0]
        mean = linear.decoder_mean(z).numpy()
        expected = [stats.multivariate_normal(mean[i], SIGMA**2 * np.eye(D)).logpdf(xs[i].numpy()) for i in range(3)]
        np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-12)

    def test_expected_log_likelihood_equals_grid_quadrature(self, linear, linear_on_grid, xs):
        g = gen(4)
        m = torch.randn(3, L, generator=g, dtype=F64) * 0.5
        a = torch.randn(3, L, L, generator=g, dtype=F64) * 0.4
        s = a @ a.transpose(-1, -2) + 0.05 * torch.eye(L, dtype=F64)
        q = torch.distributions.MultivariateNormal(m, s)
        z = linear_on_grid.grid.points.unsqueeze(1)  # (G, 1, L)
        weights = q.log_prob(z).exp() * linear_on_grid.grid.cell_volume  # (G, B)
        expected = (weights * linear.log_likelihood(xs, z)).sum(0)
        torch.testing.assert_close(linear.expected_log_likelihood(xs, m, s), expected, rtol=0, atol=1e-6)

    def test_kl_to_posterior_on_the_grid_equals_closed_form(self, linear, linear_on_grid, xs):
        post = linear.posterior(xs)
        q = diag_gaussian(post.loc + 0.3, torch.full((3, L), math.log(0.2**2), dtype=F64))
        expected = kl_full_gaussians(q.mean, torch.diag_embed(q.variance), post.loc, post.covariance_matrix)
        torch.testing.assert_close(linear_on_grid.kl_to_posterior(xs, q), expected, rtol=0, atol=1e-6)

    def test_one_dimensional_latent_grid(self):
        # L = 1: the grid model with a linear decoder equals the closed form as well
        w, b = torch.tensor([[1.5], [-0.7]], dtype=F64), torch.tensor([0.2, 0.1], dtype=F64)
        lin = LinearGaussianModel(w, b, 0.4)
        grid = GridLatentModel(lambda z: z @ w.T + b, 0.4, latent_dim=1, data_dim=2)
        x = lin.sample(4, generator=gen(5))[0]
        torch.testing.assert_close(grid.log_marginal(x), lin.log_marginal(x), rtol=0, atol=1e-8)
        mean, cov = grid_moments(grid, x)
        post = lin.posterior(x)
        torch.testing.assert_close(mean, post.loc, rtol=0, atol=1e-8)
        torch.testing.assert_close(cov, post.covariance_matrix, rtol=0, atol=1e-8)

    def test_sample_moments(self, linear):
        # x ~ N(b, W Wᵀ + σ² I) and z ~ N(0, I)
        n = 40_000
        x, z = linear.sample(n, generator=gen(6))
        cov = linear.marginal().covariance_matrix
        assert ((x.mean(0) - linear.bias).abs() < 5 * torch.sqrt(torch.diagonal(cov) / n)).all()
        assert (z.mean(0).abs() < 5 / math.sqrt(n)).all()
        noise = (x - linear.decoder_mean(z)) / SIGMA
        assert abs(noise.std().item() - 1.0) < 5 * math.sqrt(1 / (2 * n * D))


# ---------------------------------------------------------------------------------------------------------
# the folded model: a bimodal posterior
# ---------------------------------------------------------------------------------------------------------
FOLDED_X = [(1.0, 0.5), (0.2, -1.0), (2.5, 0.0), (-0.3, 0.7)]


def folded_log_marginal_by_quad(x1: float, x2: float, sigma: float) -> float:
    """log p(x) = log N(x₂; 0, 1 + σ²) + log ∫ N(x₁; z², σ²) N(z; 0, 1) dz, the integral by scipy.quad."""
    def integrand(z):
        return stats.norm.pdf(x1, loc=z * z, scale=sigma) * stats.norm.pdf(z)

    modes = [-math.sqrt(x1), math.sqrt(x1)] if x1 > 0 else [0.0]
    value, err = integrate.quad(integrand, -9.0, 9.0, points=modes, epsabs=1e-15, epsrel=1e-12, limit=200)
    assert err < 1e-10 * value
    return stats.norm.logpdf(x2, scale=math.sqrt(1 + sigma**2)) + math.log(value)


class TestFoldedModel:
    def test_log_marginal_equals_scipy_quadrature(self, folded):
        x = torch.tensor(FOLDED_X, dtype=F64)
        expected = [folded_log_marginal_by_quad(x1, x2, folded.sigma) for x1, x2 in FOLDED_X]
        np.testing.assert_allclose(folded.log_marginal(x).numpy(), expected, rtol=0, atol=1e-6)

    def test_posterior_integrates_to_one(self, folded):
        x = torch.tensor(FOLDED_X, dtype=F64)
        log_post = folded.log_posterior_on_grid(x)
        assert log_post.shape == (4, folded.grid.points.shape[0])
        mass = log_post.exp().sum(-1) * folded.grid.cell_volume
        torch.testing.assert_close(mass, torch.ones(4, dtype=F64), rtol=0, atol=1e-10)

    def test_posterior_is_bimodal_and_symmetric(self, folded):
        x1, x2 = 1.0, 0.3
        log_post = folded.log_posterior_on_grid(torch.tensor([[x1, x2]], dtype=F64))[0]
        n = folded.grid.shape[0]
        axis = folded.grid.axes[0]
        grid2d = log_post.view(n, n)  # rows follow z₂, columns z₁
        torch.testing.assert_close(grid2d, grid2d.flip(1), rtol=0, atol=1e-9)  # p(z₁, z₂|x) = p(−z₁, z₂|x)
        # the marginal over z₂ has exactly two local maxima, at z₁ = ±√(x₁ − σ²/2) (≈ ±√x₁)
        marginal = torch.logsumexp(grid2d, dim=0)  # (n,) over z₁
        inner = marginal[1:-1]
        peaks = torch.nonzero((inner > marginal[:-2]) & (inner > marginal[2:])).flatten() + 1
        assert len(peaks) == 2
        step = (axis[1] - axis[0]).item()
        expected = math.sqrt(x1 - folded.sigma**2 / 2)
        np.testing.assert_allclose(sorted(axis[peaks].tolist()), [-expected, expected], atol=step)
        assert abs(abs(axis[peaks[0]].item()) - math.sqrt(x1)) < 0.05
        # the joint maximum sits at z₂ = x₂ / (1 + σ²)
        row = grid2d.max(dim=1).values.argmax()
        assert abs(axis[row].item() - x2 / (1 + folded.sigma**2)) <= step

    def test_kl_to_posterior_is_the_elbo_gap(self, folded):
        """log p(x) − ELBO(q) = KL(q || p(z|x)) for a posterior no Gaussian can match."""
        x = torch.tensor([[1.0, 0.5], [2.0, -0.4]], dtype=F64)
        s2 = folded.sigma**2
        mean = torch.stack([x[:, 0].sqrt(), x[:, 1] / (1 + s2)], -1)  # q on the right-hand mode
        q = diag_gaussian(mean, torch.log(torch.tensor([[0.2**2, 0.3**2]], dtype=F64)).expand(2, 2))
        kl = folded.kl_to_posterior(x, q)
        assert (kl >= 0).all()
        k = 20_000
        elbo = elbo_joint_plus_entropy(x, folded, q, k, generator=gen(7))
        z = sample(q, k, generator=gen(7))
        se = (folded.log_likelihood(x, z) + folded.prior.log_prob(z)).std(0) / math.sqrt(k)
        gap = folded.log_marginal(x) - elbo
        assert ((gap - kl).abs() < 4 * se).all(), (gap, kl, se)

    def test_a_gaussian_on_one_mode_pays_about_log_2(self, folded):
        # modes at z₁ ≈ ±2 barely overlap: KL(q || ½ p₁ + ½ p₂) ≈ log 2 + KL(q || p₁) ≥ log 2
        x = torch.tensor([[4.0, 0.0]], dtype=F64)
        q = diag_gaussian(torch.tensor([[2.0, 0.0]], dtype=F64),
                          torch.log(torch.tensor([[0.08**2, 0.29**2]], dtype=F64)))
        kl = folded.kl_to_posterior(x, q)
        assert kl.item() > math.log(2) - 1e-3
        assert kl.item() < math.log(2) + 0.1  # q is close to one mode
        # a q straddling both modes with a wide z₁ pays more than log 2
        wide = diag_gaussian(torch.tensor([[0.0, 0.0]], dtype=F64),
                             torch.log(torch.tensor([[4.0, 0.29**2]], dtype=F64)))
        assert folded.kl_to_posterior(x, wide).item() > kl.item()

    def test_kl_to_posterior_is_nonnegative_for_many_q(self, folded):
        g = gen(8)
        x = torch.tensor(FOLDED_X, dtype=F64).repeat(2, 1)  # two random q's per x, in one batch
        q = diag_gaussian(torch.randn(8, 2, generator=g, dtype=F64),
                          torch.log(0.1 + torch.rand(8, 2, generator=g, dtype=F64)))
        assert (folded.kl_to_posterior(x, q) >= 0).all()

    def test_decoder_mean(self, folded):
        z = torch.tensor([[-1.5, 0.3], [2.0, -0.7]], dtype=F64)
        torch.testing.assert_close(folded.decoder_mean(z), torch.tensor([[2.25, 0.3], [4.0, -0.7]], dtype=F64))


class TestArcModel:
    def test_log_marginal_equals_scipy_quadrature(self):
        """A 1-D latent grid: p(x) = ∫ N(x; 2.5 (sin 1.2z, cos 1.2z), σ² I) N(z; 0, 1) dz."""
        model = arc_model()
        xs = [(0.0, 2.5), (1.8, 1.2), (-2.0, -1.0), (0.3, 0.1)]

        def integrand(z, x1, x2):
            f1, f2 = 2.5 * math.sin(1.2 * z), 2.5 * math.cos(1.2 * z)
            return stats.norm.pdf(x1, f1, model.sigma) * stats.norm.pdf(x2, f2, model.sigma) * stats.norm.pdf(z)

        expected = []
        for x1, x2 in xs:
            value, err = integrate.quad(integrand, -9.0, 9.0, args=(x1, x2), points=np.linspace(-8, 8, 41),
                                        epsabs=1e-15, epsrel=1e-12, limit=500)
            assert err < 1e-9 * value
            expected.append(math.log(value))
        got = model.log_marginal(torch.tensor(xs, dtype=F64))
        np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-6)

    def test_posterior_integrates_to_one_on_a_one_dimensional_grid(self):
        model = arc_model()
        log_post = model.log_posterior_on_grid(torch.tensor([[1.0, 1.0], [0.0, -2.5]], dtype=F64))
        assert log_post.shape == (2, model.grid.points.shape[0])
        torch.testing.assert_close(log_post.exp().sum(-1) * model.grid.cell_volume, torch.ones(2, dtype=F64),
                                   rtol=0, atol=1e-10)


# ---------------------------------------------------------------------------------------------------------
# sampling and bad input
# ---------------------------------------------------------------------------------------------------------
class TestSampleAndBadInput:
    @pytest.mark.parametrize("which", ["linear", "folded"])
    def test_sample_shapes_and_reproducibility(self, which, linear, folded):
        model = linear if which == "linear" else folded
        x, z = model.sample(7, generator=gen(9))
        assert x.shape == (7, model.data_dim) and z.shape == (7, model.latent_dim)
        assert x.dtype == z.dtype == F64
        x2, z2 = model.sample(7, generator=gen(9))
        assert torch.equal(x, x2) and torch.equal(z, z2)
        x3, _ = model.sample(7, generator=gen(10))
        assert not torch.equal(x, x3)

    def test_folded_sample_noise_is_sigma(self, folded):
        x, z = folded.sample(20_000, generator=gen(11))
        noise = (x - folded.decoder_mean(z)) / folded.sigma
        assert abs(noise.std().item() - 1.0) < 0.02
        assert (noise.mean(0).abs() < 5 / math.sqrt(20_000)).all()

    @pytest.mark.parametrize("sigma", [0.0, -1.0, float("nan"), float("inf"), True, "0.5"])
    def test_bad_sigma(self, sigma):
        with pytest.raises(ValueError, match="sigma"):
            LinearGaussianModel(torch.ones(3, 2), torch.zeros(3), sigma)
        with pytest.raises(ValueError, match="sigma"):
            GridLatentModel(lambda z: z, sigma, latent_dim=2, data_dim=2)

    @pytest.mark.parametrize("latent_dim", [0, 3])
    def test_grid_latent_dim(self, latent_dim):
        with pytest.raises(ValueError, match="latent_dim"):
            GridLatentModel(lambda z: z, 0.5, latent_dim=latent_dim, data_dim=2)

    def test_grid_constructor_arguments(self):
        with pytest.raises(TypeError, match="mean_fn"):
            GridLatentModel("not callable", 0.5, latent_dim=1, data_dim=1)
        with pytest.raises(ValueError, match="bound"):
            GridLatentModel(lambda z: z, 0.5, latent_dim=1, data_dim=1, bound=0.0)
        with pytest.raises(ValueError, match="data_dim"):
            GridLatentModel(lambda z: z, 0.5, latent_dim=1, data_dim=0)
        with pytest.raises(ValueError, match="n_grid"):
            GridLatentModel(lambda z: z, 0.5, latent_dim=1, data_dim=1, n_grid=2)

    def test_mean_fn_with_wrong_output_shape(self):
        model = GridLatentModel(lambda z: z, 0.5, latent_dim=1, data_dim=2, n_grid=11)
        with pytest.raises(ValueError, match="mean_fn"):
            model.log_marginal(torch.zeros(1, 2))

    def test_linear_constructor_arguments(self):
        with pytest.raises(ValueError, match="weight"):
            LinearGaussianModel(torch.ones(3), torch.zeros(3), 0.5)
        with pytest.raises(ValueError, match="bias"):
            LinearGaussianModel(torch.ones(3, 2), torch.zeros(2), 0.5)

    def test_x_with_wrong_data_size(self, linear, folded):
        bad = torch.zeros(2, 4, dtype=F64)
        for call in (linear.log_marginal, linear.posterior, folded.log_marginal, folded.log_posterior_on_grid,
                     lambda x: linear.log_likelihood(x, torch.zeros(1, 2, L)),
                     lambda x: folded.log_likelihood(x, torch.zeros(1, 2, 2))):
            with pytest.raises(ValueError, match="x"):
                call(bad)

    def test_x_not_2d(self, linear, folded):
        with pytest.raises(ValueError, match="x"):
            linear.log_marginal(torch.zeros(D, dtype=F64))
        with pytest.raises(ValueError, match="x"):
            folded.log_marginal(torch.zeros(2, dtype=F64))

    def test_z_with_wrong_latent_size(self, linear, folded):
        with pytest.raises(ValueError, match="z"):
            linear.decoder_mean(torch.zeros(4, L + 1))
        with pytest.raises(ValueError, match="z"):
            folded.log_likelihood(torch.zeros(1, 2), torch.zeros(1, 1, 3))

    def test_q_with_wrong_latent_size_for_kl(self, folded):
        q = diag_gaussian(torch.zeros(1, 3), torch.zeros(1, 3))
        with pytest.raises(ValueError, match="q"):
            folded.kl_to_posterior(torch.zeros(1, 2), q)

    @pytest.mark.parametrize("which", ["linear", "folded"])
    def test_sample_bad_arguments(self, which, linear, folded):
        model = linear if which == "linear" else folded
        with pytest.raises(ValueError, match="n"):
            model.sample(0, generator=gen(0))
        with pytest.raises(TypeError, match="generator"):
            model.sample(3, generator=None)
