"""vae_lib.vq: the quantiser, the straight-through estimator, the three loss terms, the ELBO view of VQ-VAE,
codebook usage, the EMA codebook update, the priors over codes, and a small training run (the VQ-VAE chapter).

Every expected value is computed independently: brute-force distances (torch.cdist), autograd on the plain
decoder input, torch.distributions (Categorical KL, MixtureSameFamily), hand-computed frequencies.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, kl_divergence

from vae_lib.data import load_digits_split
from vae_lib.figures_vq import bound_figure, code_usage_figure, voronoi_edges, voronoi_figure
from vae_lib.train import TrainConfig, fit
from vae_lib.vq import (
    VQVAE,
    AutoregressiveCodePrior,
    AutoregressivePriorConfig,
    EmpiricalCodePrior,
    VQVAEConfig,
    code_frequencies,
    codebook_loss,
    codebook_usage,
    commitment_loss,
    nearest_code,
    perplexity,
    quantise,
    squared_distances,
    straight_through,
    uniform_prior_kl,
    vq_elbo,
)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def tiny(**kw) -> VQVAE:
    return VQVAE(VQVAEConfig(hidden=(16,), **kw))


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    return load_digits_split().x_train[:12]  # (12, 64) float levels 0..16


# ---------------------------------------------------------------------------------------------------------
# the quantiser
# ---------------------------------------------------------------------------------------------------------
class TestQuantiser:
    @pytest.mark.parametrize("shape,n_codes,code_dim", [((50,), 7, 2), ((4, 9), 16, 3), ((3, 2, 5), 2, 1)])
    def test_nearest_code_equals_brute_force(self, shape, n_codes, code_dim):
        z_e = torch.randn(*shape, code_dim, generator=gen(0), dtype=torch.float64)
        codebook = torch.randn(n_codes, code_dim, generator=gen(1), dtype=torch.float64)
        expected = torch.cdist(z_e.reshape(-1, code_dim), codebook).argmin(-1).reshape(shape)
        assert torch.equal(nearest_code(z_e, codebook), expected)
        torch.testing.assert_close(squared_distances(z_e, codebook),
                                   torch.cdist(z_e.reshape(-1, code_dim), codebook).reshape(*shape, n_codes) ** 2)

    def test_quantise_returns_the_nearest_code_vector(self):
        codebook = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
        z_e = torch.tensor([[0.9, 0.1], [1.1, 0.0], [0.1, 1.6], [5.0, 5.0]])
        z_q, k = quantise(z_e, codebook)
        assert k.tolist() == [0, 1, 2, 2]  # the last: distances² 50, 34, 29
        torch.testing.assert_close(z_q, codebook[k])

    def test_quantised_point_is_never_farther_than_any_code(self):
        z_e = torch.randn(200, 2, generator=gen(2))
        codebook = torch.randn(11, 2, generator=gen(3))
        z_q, _ = quantise(z_e, codebook)
        d_chosen = ((z_e - z_q) ** 2).sum(-1, keepdim=True)  # (200, 1)
        assert (d_chosen <= torch.cdist(z_e, codebook) ** 2 + 1e-6).all()

    def test_quantise_has_no_gradient_to_z_e(self):
        z_e = torch.randn(6, 2, generator=gen(4), requires_grad=True)
        codebook = torch.randn(5, 2, generator=gen(5), requires_grad=True)
        z_q, _ = quantise(z_e, codebook)
        assert z_q.requires_grad  # through the codebook lookup only
        z_q.sum().backward()
        assert z_e.grad is None
        assert codebook.grad is not None


class TestStraightThrough:
    def test_forward_value_is_z_q(self):
        z_e = torch.randn(8, 3, generator=gen(6))
        codebook = torch.randn(4, 3, generator=gen(7))
        z_q, _ = quantise(z_e, codebook)
        assert torch.equal(straight_through(z_e, z_q), z_e + (z_q - z_e))
        torch.testing.assert_close(straight_through(z_e, z_q), z_q)

    def test_gradient_wrt_z_e_equals_gradient_wrt_z_q(self):
        # a downstream loss f(z) = Σ sin(W z) ⊙ c: the gradient autograd gives z_e through the straight-through
        # estimator must be exactly ∂f/∂z evaluated at z_q
        w = torch.randn(5, 3, generator=gen(8), dtype=torch.float64)
        c = torch.randn(5, generator=gen(9), dtype=torch.float64)
        f = lambda z: (torch.sin(z @ w.T) * c).sum()  # noqa: E731
        z_e = torch.randn(10, 3, generator=gen(10), dtype=torch.float64, requires_grad=True)
        codebook = torch.randn(6, 3, generator=gen(11), dtype=torch.float64)
        z_q, _ = quantise(z_e.detach(), codebook)
        z_st = straight_through(z_e, z_q)
        z_st.retain_grad()
        f(z_st).backward()
        assert torch.equal(z_e.grad, z_st.grad)  # the backward pass is exactly the identity
        z_plain = z_q.clone().requires_grad_(True)  # z_st equals z_q up to rounding (z_e + (z_q − z_e))
        f(z_plain).backward()
        torch.testing.assert_close(z_e.grad, z_plain.grad, rtol=1e-12, atol=1e-12)
        # and it is not the gradient at z_e (which would be a different, wrong estimator)
        z_at_e = z_e.detach().clone().requires_grad_(True)
        f(z_at_e).backward()
        assert not torch.allclose(z_e.grad, z_at_e.grad)

    def test_no_gradient_reaches_the_codebook(self):
        z_e = torch.randn(4, 2, generator=gen(12), requires_grad=True)
        codebook = torch.randn(3, 2, generator=gen(13), requires_grad=True)
        z_q, _ = quantise(z_e, codebook)
        straight_through(z_e, z_q).pow(2).sum().backward()
        assert codebook.grad is None
        assert z_e.grad is not None


# ---------------------------------------------------------------------------------------------------------
# the three loss terms: what each one moves
# ---------------------------------------------------------------------------------------------------------
class TestLossTerms:
    def test_codebook_and_commitment_values(self):
        z_e = torch.tensor([[1.0, 2.0], [0.0, -1.0]])
        z_q = torch.tensor([[0.5, 2.0], [1.0, 1.0]])
        torch.testing.assert_close(codebook_loss(z_e, z_q), torch.tensor([0.25, 5.0]))
        torch.testing.assert_close(commitment_loss(z_e, z_q), torch.tensor([0.25, 5.0]))

    def test_codebook_term_moves_only_the_codes(self, digits):
        vq = tiny(codebook_update="gradient")
        t = vq.terms(digits)
        t.codebook.sum().backward()
        assert all(p.grad is None for p in vq.encoder.parameters())
        assert all(p.grad is None for p in vq.decoder.parameters())
        # ∂/∂e_j Σ_i ‖z_e,i − e_j‖² [k_i = j] = Σ_{i: k_i = j} 2 (e_j − z_e,i)
        with torch.no_grad():
            z_e = vq.encode(digits).reshape(-1, 2)
            k = t.codes.reshape(-1)
        expected = torch.zeros_like(vq.codebook)
        expected.index_add_(0, k, 2 * (vq.codebook.detach()[k] - z_e))
        torch.testing.assert_close(vq.codebook.grad, expected)

    def test_commitment_term_moves_only_the_encoder(self, digits):
        vq = tiny(codebook_update="gradient")
        z_e = vq.encode(digits)
        z_e.retain_grad()
        z_q, _ = quantise(z_e, vq.codebook)
        commitment_loss(z_e, z_q).sum().backward()
        assert vq.codebook.grad is None
        assert all(p.grad is None for p in vq.decoder.parameters())
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in vq.encoder.parameters())
        torch.testing.assert_close(z_e.grad, 2 * (z_e - z_q).detach())

    def test_reconstruction_term_reaches_encoder_and_decoder_not_codes(self, digits):
        vq = tiny(codebook_update="gradient")
        (-vq.terms(digits).log_likelihood.sum()).backward()
        assert vq.codebook.grad is None
        assert all(p.grad is not None for p in vq.encoder.parameters())
        assert all(p.grad is not None for p in vq.decoder.parameters())

    def test_loss_is_the_sum_of_the_terms(self, digits):
        vq = tiny(beta=0.7)
        t = vq.terms(digits)
        loss = vq.loss(digits)
        assert loss.shape == (12,)
        torch.testing.assert_close(loss, -t.log_likelihood + t.codebook + 0.7 * t.commitment)

    def test_log_likelihood_is_the_categorical_of_the_decoder_at_the_code(self, digits):
        vq = tiny()
        with torch.no_grad():
            z_q = vq.quantise(vq.encode(digits))  # (B, 1, 2)
            logits = vq.decoder(z_q.flatten(-2)).view(12, 64, 17)
            expected = Categorical(logits=logits).log_prob(digits.long()).sum(-1)
            torch.testing.assert_close(vq.terms(digits).log_likelihood, expected)

    def test_ema_mode_gives_the_codebook_no_gradient(self, digits):
        vq = tiny(codebook_update="ema")
        assert not vq.codebook.requires_grad
        vq.loss(digits).sum().backward()
        assert vq.codebook.grad is None


class TestEMA:
    def test_one_step_matches_the_formula(self):
        vq = tiny(n_codes=3, ema_decay=0.8)
        e0 = vq.codebook.detach().clone()
        z_e = torch.tensor([[[1.0, 0.0]], [[3.0, 0.0]], [[0.0, 2.0]]])  # (B=3, M=1, D=2)
        k = torch.tensor([[0], [0], [2]])
        vq.update_codebook(z_e, k)
        n = torch.tensor([2.0, 0.0, 1.0])
        s = torch.stack([torch.tensor([4.0, 0.0]), torch.zeros(2), torch.tensor([0.0, 2.0])])
        count = 0.8 * 1.0 + 0.2 * n  # N_j starts at 1, m_j at e_j
        expected = (0.8 * e0 + 0.2 * s) / count.unsqueeze(-1)
        torch.testing.assert_close(vq.codebook.detach(), expected)
        torch.testing.assert_close(vq.codebook[1].detach(), e0[1])  # an unused code keeps its place

    def test_repeated_steps_converge_to_the_cluster_mean(self):
        vq = tiny(n_codes=2, ema_decay=0.5)
        z_e = torch.tensor([[[1.0, 1.0]], [[3.0, -1.0]], [[-4.0, 0.0]]])
        k = torch.tensor([[0], [0], [1]])
        for _ in range(60):
            vq.update_codebook(z_e, k)
        torch.testing.assert_close(vq.codebook.detach(), torch.tensor([[2.0, 0.0], [-4.0, 0.0]]))

    def test_a_dead_code_restarts_at_the_worst_quantised_z_e(self):
        vq = tiny(n_codes=3, ema_decay=0.5, dead_code_threshold=0.3)
        with torch.no_grad():
            vq.codebook.copy_(torch.tensor([[0.0, 0.0], [4.0, 0.0], [50.0, 50.0]]))
            vq.ema_sum.copy_(vq.codebook)
        z_e = torch.tensor([[[0.5, 0.0]], [[4.0, 1.0]], [[-3.0, 0.0]], [[4.0, -0.5]]])  # errors 0.25, 1, 9, 0.25
        k = nearest_code(z_e, vq.codebook)
        assert k.reshape(-1).tolist() == [0, 1, 0, 1]
        assert vq.update_codebook(z_e, k) == 0  # N_3 = 0.5: not dead yet
        assert vq.update_codebook(z_e, nearest_code(z_e, vq.codebook)) == 1  # N_3 = 0.25 < 0.3
        torch.testing.assert_close(vq.codebook[2].detach(), torch.tensor([-3.0, 0.0]))
        assert vq.ema_count[2].item() == 1.0 and vq.n_restarts == 1

    def test_gradient_mode_keeps_the_codes_of_a_live_codebook(self):
        vq = tiny(n_codes=2, codebook_update="gradient")
        before = vq.codebook.detach().clone()
        z_e = torch.randn(6, 1, 2, generator=gen(20))
        assert vq.update_codebook(z_e, torch.tensor([[0], [1], [0], [1], [0], [1]])) == 0
        assert torch.equal(vq.codebook.detach(), before)

    def test_training_mode_updates_and_eval_mode_does_not(self, digits):
        vq = tiny()
        before = vq.codebook.detach().clone()
        vq.eval()
        vq.loss(digits)
        assert torch.equal(vq.codebook.detach(), before)
        vq.train()
        vq.loss(digits)
        assert not torch.equal(vq.codebook.detach(), before)


# ---------------------------------------------------------------------------------------------------------
# the ELBO view: one-hot q(k|x), uniform p(k)
# ---------------------------------------------------------------------------------------------------------
class TestELBO:
    @pytest.mark.parametrize("n_codes", [2, 5, 16, 512])
    def test_kl_of_one_hot_from_uniform_is_log_k(self, n_codes):
        for k in (0, n_codes - 1):
            q = Categorical(probs=torch.nn.functional.one_hot(torch.tensor(k), n_codes).double())
            p = Categorical(probs=torch.full((n_codes,), 1.0 / n_codes, dtype=torch.float64))
            assert uniform_prior_kl(n_codes) == pytest.approx(kl_divergence(q, p).item(), abs=1e-12)
        assert uniform_prior_kl(n_codes) == pytest.approx(math.log(n_codes))

    def test_kl_over_positions_adds_up(self):
        k = torch.tensor([3, 0, 7, 7])
        q = Independent(Categorical(probs=torch.nn.functional.one_hot(k, 8).double()), 1)
        p = Independent(Categorical(probs=torch.full((4, 8), 1 / 8, dtype=torch.float64)), 1)
        assert uniform_prior_kl(8, 4) == pytest.approx(kl_divergence(q, p).item(), abs=1e-12)

    def test_vq_elbo_subtracts_m_log_k(self):
        log_lik = torch.tensor([-100.0, -50.5])
        torch.testing.assert_close(vq_elbo(log_lik, 16), log_lik - math.log(16))
        torch.testing.assert_close(vq_elbo(log_lik, 8, 4), log_lik - 4 * math.log(8))

    @pytest.mark.parametrize("n_positions", [1, 2])
    def test_evidence_is_the_mixture_of_the_decoders_at_every_code_tuple(self, digits, n_positions):
        vq = tiny(n_codes=4, n_positions=n_positions)
        with torch.no_grad():
            tuples = vq.code_tuples()  # (T, M)
            logits = vq.decoder(vq.codebook[tuples].flatten(-2)).view(-1, 64, 17)  # (T, 64, 17)
        assert tuples.shape == (4 ** n_positions, n_positions)
        assert len({tuple(t) for t in tuples.tolist()}) == 4 ** n_positions
        mixture = MixtureSameFamily(Categorical(logits=torch.zeros(len(tuples))),
                                    Independent(Categorical(logits=logits), 1))
        torch.testing.assert_close(vq.log_evidence(digits, chunk=3), mixture.log_prob(digits.long()))

    def test_evidence_with_a_prior_weights_the_mixture(self, digits):
        vq = tiny(n_codes=5)
        prior = EmpiricalCodePrior(torch.tensor([[0], [0], [0], [3], [1]]), 5, alpha=0.5)
        with torch.no_grad():
            logits = vq.decoder(vq.codebook).view(5, 64, 17)
        mixture = MixtureSameFamily(Categorical(logits=prior.log_prob(torch.arange(5).unsqueeze(1))),
                                    Independent(Categorical(logits=logits), 1))
        torch.testing.assert_close(vq.log_evidence(digits, prior), mixture.log_prob(digits.long()))

    def test_gap_is_minus_log_posterior_of_the_chosen_code(self, digits):
        # log p(x) − L = KL(δ_k(x) ‖ p(k | x)) = −log p(k(x) | x), with p(k | x) ∝ p(k) p_θ(x | e_k)
        vq = tiny(n_codes=6)
        with torch.no_grad():
            log_lik = vq.log_likelihood(digits, vq.codebook.view(6, 1, 1, 2).expand(6, 12, 1, 2))  # (K, B)
            log_post = torch.log_softmax(log_lik, 0)  # uniform prior cancels
            k = vq.codes(digits)[:, 0]
        gap = vq.log_evidence(digits) - vq.elbo(digits)
        torch.testing.assert_close(gap, -log_post[k, torch.arange(12)])
        assert (gap >= 0).all()

    def test_evidence_refuses_too_many_tuples(self, digits):
        with pytest.raises(ValueError, match="max_tuples"):
            tiny(n_codes=8, n_positions=5).log_evidence(digits)


# ---------------------------------------------------------------------------------------------------------
# codebook usage
# ---------------------------------------------------------------------------------------------------------
class TestUsage:
    def test_frequencies_usage_and_perplexity_by_hand(self):
        k = torch.tensor([0, 0, 1, 2])  # frequencies 1/2, 1/4, 1/4, 0
        torch.testing.assert_close(code_frequencies(k, 4), torch.tensor([0.5, 0.25, 0.25, 0.0]))
        assert codebook_usage(k, 4) == 3
        # H = ½ log 2 + ¼ log 4 + ¼ log 4 = 1.5 log 2
        assert perplexity(k, 4) == pytest.approx(2 ** 1.5)

    def test_perplexity_extremes(self):
        assert perplexity(torch.arange(8).repeat(3), 8) == pytest.approx(8.0)
        assert perplexity(torch.full((10,), 5), 8) == pytest.approx(1.0)

    def test_perplexity_equals_exp_entropy_of_torch_categorical(self):
        k = torch.randint(0, 6, (500,), generator=gen(14))
        f = code_frequencies(k, 6)
        assert perplexity(k, 6) == pytest.approx(math.exp(Categorical(probs=f).entropy().item()), rel=1e-6)


# ---------------------------------------------------------------------------------------------------------
# priors over codes
# ---------------------------------------------------------------------------------------------------------
class TestPriors:
    def test_empirical_prior_by_hand(self):
        codes = torch.tensor([[0, 1], [0, 2], [1, 2]])
        prior = EmpiricalCodePrior(codes, 3, alpha=1.0)
        # position 1: counts (2, 1, 0) + 1 -> (3, 2, 1)/6; position 2: (0, 1, 2) + 1 -> (1, 2, 3)/6
        expected = math.log(3 / 6) + math.log(3 / 6)
        assert prior.log_prob(torch.tensor([[0, 2]])).item() == pytest.approx(expected, rel=1e-6)

    @pytest.mark.parametrize("make", ["empirical", "autoregressive"])
    def test_priors_are_normalised_over_all_tuples(self, make):
        vq = tiny(n_codes=4, n_positions=3)
        codes = torch.randint(0, 4, (30, 3), generator=gen(15))
        prior = (EmpiricalCodePrior(codes, 4) if make == "empirical"
                 else AutoregressiveCodePrior(AutoregressivePriorConfig(n_codes=4, n_positions=3, hidden=8)))
        with torch.no_grad():
            total = torch.logsumexp(prior.log_prob(vq.code_tuples()), 0)
        assert total.item() == pytest.approx(0.0, abs=1e-5)

    def test_autoregressive_prior_is_the_chain_rule(self):
        prior = AutoregressiveCodePrior(AutoregressivePriorConfig(n_codes=3, n_positions=2, hidden=8, seed=1))
        k = torch.tensor([[2, 1]])
        with torch.no_grad():
            p1 = torch.softmax(prior.first_logits, -1)[2]
            p2 = torch.softmax(prior.conditionals[0](torch.tensor([[0.0, 0.0, 1.0]])), -1)[0, 1]
            assert prior.log_prob(k).item() == pytest.approx(math.log(p1 * p2), rel=1e-5)

    def test_autoregressive_samples_follow_its_probabilities(self):
        prior = AutoregressiveCodePrior(AutoregressivePriorConfig(n_codes=3, n_positions=2, hidden=8, seed=2))
        with torch.no_grad():
            prior.first_logits.copy_(torch.tensor([0.0, 1.0, -1.0]))
        samples = prior.sample(20000, generator=gen(16))
        tuples = torch.tensor([[a, b] for a in range(3) for b in range(3)])
        with torch.no_grad():
            probs = prior.log_prob(tuples).exp()
        freq = torch.stack([((samples == t).all(-1)).float().mean() for t in tuples])
        torch.testing.assert_close(freq, probs.float(), atol=0.012, rtol=0)

    def test_empirical_samples_follow_the_frequencies(self):
        prior = EmpiricalCodePrior(torch.tensor([[0], [0], [0], [2]]), 3, alpha=0.0)
        samples = prior.sample(10000, generator=gen(17))
        assert samples.shape == (10000, 1)
        torch.testing.assert_close(code_frequencies(samples, 3), torch.tensor([0.75, 0.0, 0.25]), atol=0.015, rtol=0)

    def test_training_the_prior_with_fit_lowers_its_nll(self):
        codes = torch.tensor([[0, 0], [1, 1], [2, 2]]).repeat(20, 1)  # k_2 = k_1: a strong dependency
        prior = AutoregressiveCodePrior(AutoregressivePriorConfig(n_codes=3, n_positions=2, hidden=16))
        fit(prior, codes.float(), TrainConfig(epochs=60, batch_size=30, learning_rate=1e-2, progress=False))
        with torch.no_grad():
            nll = -prior.log_prob(codes[:3]).mean().item()
        assert nll < math.log(3) + 0.1  # the independent optimum is 2 log 3; the chain rule reaches log 3
        assert nll > math.log(3) - 1e-3  # and never below the entropy of the data


# ---------------------------------------------------------------------------------------------------------
# the model's maps
# ---------------------------------------------------------------------------------------------------------
class TestModel:
    def test_decode_quantised_is_constant_on_each_cell(self):
        vq = tiny(n_codes=5)
        z = torch.randn(300, 2, generator=gen(18)) * 2
        with torch.no_grad():
            out = vq.decode_quantised(z)
            k = nearest_code(z, vq.codebook)
            torch.testing.assert_close(out, vq.decode_codes(k.unsqueeze(-1)))
            for j in k.unique():
                cell = out[k == j]
                assert torch.equal(cell, cell[:1].expand_as(cell))

    def test_decode_mean_is_the_categorical_mean(self):
        vq = tiny()
        with torch.no_grad():
            z_q = vq.codebook[:3].unsqueeze(1)  # (3, 1, 2)
            probs = torch.softmax(vq.decoder(z_q.flatten(-2)).view(3, 64, 17), -1)
            torch.testing.assert_close(vq.decode_mean(z_q), (probs * torch.arange(17.0)).sum(-1))

    def test_shapes(self, digits):
        vq = tiny(n_codes=8, n_positions=4, code_dim=3)
        assert vq.encode(digits).shape == (12, 4, 3)
        assert vq.codes(digits).shape == (12, 4)
        assert vq.elbo(digits).shape == (12,)
        assert vq.decode_quantised(torch.zeros(5, 12)).shape == (5, 64)

    def test_seed_fixes_the_initial_weights(self, digits):
        a, b, c = tiny(seed=3), tiny(seed=3), tiny(seed=4)
        assert torch.equal(a.loss(digits), b.loss(digits))
        assert not torch.equal(a.codebook, c.codebook)


# ---------------------------------------------------------------------------------------------------------
# argument checks
# ---------------------------------------------------------------------------------------------------------
class TestValidation:
    def test_quantiser_arguments(self):
        with pytest.raises(ValueError, match="codebook"):
            nearest_code(torch.zeros(3, 2), torch.zeros(4))
        with pytest.raises(ValueError, match="z_e must have last dimension 2"):
            nearest_code(torch.zeros(3, 3), torch.zeros(4, 2))
        with pytest.raises(ValueError, match="z_e"):
            nearest_code(torch.tensor([[float("nan"), 0.0]]), torch.zeros(4, 2))
        with pytest.raises(ValueError, match="same shape"):
            straight_through(torch.zeros(3, 2), torch.zeros(2, 2))
        with pytest.raises(ValueError, match="same shape"):
            commitment_loss(torch.zeros(3, 2), torch.zeros(3, 1))
        with pytest.raises(TypeError, match="codebook"):
            quantise(torch.zeros(3, 2), "codes")

    def test_config_arguments(self):
        with pytest.raises(ValueError, match="n_codes"):
            VQVAEConfig(n_codes=1)
        with pytest.raises(ValueError, match="beta"):
            VQVAEConfig(beta=-0.1)
        with pytest.raises(ValueError, match="codebook_update"):
            VQVAEConfig(codebook_update="kmeans")
        with pytest.raises(ValueError, match="ema_decay"):
            VQVAEConfig(ema_decay=1.0)
        with pytest.raises(TypeError, match="code_dim"):
            VQVAEConfig(code_dim=2.5)
        with pytest.raises(TypeError, match="VQVAEConfig"):
            VQVAE({"n_codes": 4})

    def test_code_arguments(self):
        with pytest.raises(ValueError, match="0..3"):
            code_frequencies(torch.tensor([0, 4]), 4)
        with pytest.raises(TypeError, match="integer code indices"):
            perplexity(torch.tensor([0.0, 1.0]), 4)
        with pytest.raises(ValueError, match="n_codes"):
            uniform_prior_kl(0)
        with pytest.raises(ValueError, match="shape"):
            EmpiricalCodePrior(torch.tensor([0, 1]), 2)
        with pytest.raises(ValueError, match="integer code indices"):
            AutoregressiveCodePrior(AutoregressivePriorConfig(n_codes=3, n_positions=2)).log_prob(
                torch.tensor([[0.5, 1.0]]))
        with pytest.raises(TypeError, match="generator"):
            EmpiricalCodePrior(torch.tensor([[0]]), 2).sample(3, generator=0)

    def test_model_arguments(self, digits):
        vq = tiny()
        with pytest.raises(ValueError, match="x must have last dimension 64"):
            vq.loss(digits[:, :10])
        with pytest.raises(ValueError, match="z_q must have shape"):
            vq.decode_mean(torch.zeros(3, 2))
        with pytest.raises(ValueError, match="one .* entry per row of x"):
            vq.log_likelihood(digits, torch.zeros(5, 1, 2))
        with pytest.raises(ValueError, match="n_positions"):
            vq.decode_codes(torch.zeros(3, 2, dtype=torch.long))


# ---------------------------------------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------------------------------------
class TestFigures:
    @pytest.mark.parametrize("k", [3, 16])
    def test_voronoi_edges_are_exactly_where_the_nearest_code_changes(self, k):
        three = torch.tensor([[-1.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
        codebook = three if k == 3 else torch.randn(16, 2, generator=gen(21))
        xs, ys = voronoi_edges(codebook, -3.0, 3.0)
        assert len(xs) == len(ys) and len(xs) % 3 == 0 and xs[2::3] == [None] * (len(xs) // 3)
        p = torch.tensor([xs[0::3], ys[0::3]], dtype=torch.float64).T  # (S, 2) segment starts
        q = torch.tensor([xs[1::3], ys[1::3]], dtype=torch.float64).T  # (S, 2) segment ends
        assert ((p >= -3.0 - 1e-12) & (p <= 3.0 + 1e-12)).all() and ((q >= -3.0 - 1e-12) & (q <= 3.0 + 1e-12)).all()
        e = codebook.double()
        # every point of every segment is equidistant from its two nearest codes: on a cell boundary
        t = torch.linspace(0, 1, 11, dtype=torch.float64)[:, None, None]  # (11, 1, 1)
        on = (p + t * (q - p)).reshape(-1, 2)  # (11 S, 2)
        d = torch.cdist(on, e).sort(dim=1).values  # (11 S, K)
        assert torch.allclose(d[:, 0], d[:, 1], atol=1e-9)
        # and every boundary is drawn: a step between neighbouring grid points whose nearest codes differ crosses a
        # segment, and a step that crosses exactly one segment goes from one cell to another
        axis = torch.linspace(-2.9, 2.9, 117, dtype=torch.float64) + 0.0123  # no grid point on a boundary
        gy, gx = torch.meshgrid(axis, axis, indexing="ij")
        grid = torch.stack([gx, gy], -1)  # (117, 117, 2)
        cell = nearest_code(grid.float(), codebook)  # (117, 117)
        a, b = grid[:, :-1].reshape(-1, 2), grid[:, 1:].reshape(-1, 2)  # (n, 2) horizontal neighbours
        changes = (cell[:, :-1] != cell[:, 1:]).reshape(-1)  # (n,)

        def cross(u, v, w):  # (n, S): which side of the line u -> v each w lies on
            return ((v[..., 0] - u[..., 0]) * (w[..., 1] - u[..., 1])
                    - (v[..., 1] - u[..., 1]) * (w[..., 0] - u[..., 0]))

        a_, b_, p_, q_ = a[:, None], b[:, None], p[None], q[None]
        n = ((cross(p_, q_, a_) * cross(p_, q_, b_) < 0) & (cross(a_, b_, p_) * cross(a_, b_, q_) < 0)).sum(1)
        assert changes.sum() > 50 and (n[changes] >= 1).all() and (n[~changes] != 1).all()
        # once: no segment twice
        ends = {tuple(sorted([tuple(u.round(decimals=9).tolist()), tuple(v.round(decimals=9).tolist())]))
                for u, v in zip(p, q, strict=True)}
        assert len(ends) == len(p)

    def test_voronoi_figure_draws_the_edges_and_the_codes(self):
        codebook = torch.tensor([[-1.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
        z_e = torch.randn(30, 2, generator=gen(19))
        fig = voronoi_figure({"panel": (z_e, codebook)}, torch.arange(30) % 10, title="t", z_range=(-3.0, 3.0))
        cells = next(t for t in fig.data if t.name == "Voronoi cell boundaries")
        assert list(cells.x) == voronoi_edges(codebook, -3.0, 3.0)[0]
        codes = next(t for t in fig.data if t.name == "codebook e_j")
        assert list(codes.x) == [-1.0, 1.0, 0.0]

    def test_a_repeated_code_has_no_cell(self):
        once = voronoi_edges(torch.tensor([[-1.0, 0.0], [1.0, 0.0]]), -2.0, 2.0)
        assert once == ([0.0, 0.0, None], [-2.0, 2.0, None]) or once == ([0.0, 0.0, None], [2.0, -2.0, None])
        assert voronoi_edges(torch.tensor([[-1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]), -2.0, 2.0) == once

    def test_a_trained_codebook_and_encoder_outputs_with_gradients_draw_without_warnings(self):
        codebook = torch.nn.Parameter(torch.tensor([[-1.0, 0.0], [1.0, 0.0], [0.0, 2.0]]))  # as a model holds it
        z_e = torch.randn(30, 2, generator=gen(20)).requires_grad_()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the chapter page shows every warning the figure raises
            fig = voronoi_figure({"panel": (z_e * 1.0, codebook)}, torch.arange(30) % 10, title="t")
        codes = next(t for t in fig.data if t.name == "codebook e_j")
        assert list(codes.x) == [-1.0, 1.0, 0.0] and fig.layout.xaxis.range[1] > 2.0

    def test_other_builders_return_figures(self):
        assert len(code_usage_figure({"a": torch.tensor([0.5, 0.5])}, title="t").data) == 1
        assert len(bound_figure(100.0, {"uniform": 2.0}, {"uniform": 99.0}, title="t").data) == 3
        with pytest.raises(ValueError, match="codebook"):
            voronoi_figure({"p": (torch.zeros(3, 2), torch.zeros(3, 3))}, torch.zeros(3), title="t")


# ---------------------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_training_lowers_the_loss_and_uses_the_codebook():
    x = load_digits_split().x_train[:400]
    vq = VQVAE(VQVAEConfig(n_codes=8, hidden=(64, 64)))
    before = vq.eval().loss(x).mean().item()
    history = fit(vq, x, TrainConfig(epochs=25, batch_size=64, progress=False))
    after = vq.loss(x).mean().item()
    assert len(history.loss) == 25 and after < before - 20  # the untrained loss is about 180 nats
    k = vq.codes(x)
    assert codebook_usage(k, 8) >= 6
    assert perplexity(k, 8) > 4.0
    assert (vq.log_evidence(x) >= vq.elbo(x) - 1e-4).all()
