"""vae_lib: the models, bounds, estimators, data and figures of the interactive VAE book.

Chapters import from here; each submodule holds one concept:

* :mod:`vae_lib.gaussian` — Gaussians: closed-form KL, reparameterized sampling;
* :mod:`vae_lib.likelihoods` — decoder log-likelihoods log p_θ(x|z) with all constants;
* :mod:`vae_lib.elbo` — the ELBO in three forms, importance weighting (IWAE), Monte Carlo evidence;
* :mod:`vae_lib.toy` — toy models with exact log p(x) and exact posterior p(z|x);
* :mod:`vae_lib.quadrature` — every integral over a 1-D or 2-D latent as a sum on a grid: log p(x), the exact
  posterior, the quadrature ELBO, both KL directions, posterior moments and the Gaussian fits (chapters 1-3);
* :mod:`vae_lib.data` — the two-Gaussian mixture and sklearn's digits with the book's fixed split;
* :mod:`vae_lib.models`, :mod:`vae_lib.train` — the VAE, the autoencoder and the training loop;
* :mod:`vae_lib.explorer` — the one explorer design (controls, panels, a program; drawn live in a kernel by
  :mod:`vae_lib.explorer_live` and static in the page by ``explorer_runtime.js``); :mod:`vae_lib.latent_explorer` —
  the latent explorer and the drawing pad; :mod:`vae_lib.posterior_explorer` — q(z|x) against the true posterior,
  with the ELBO and the gap read live (chapter 2);
* :mod:`vae_lib.latent` — latent-space diagnostics;
* :mod:`vae_lib.gap` — the KL gap: gap against KL, forward vs reverse KL fits, L_K against K, the
  approximation/amortization split (chapter 3);
* :mod:`vae_lib.estimators` — score-function vs reparameterization gradients, baselines (chapter 4);
* :mod:`vae_lib.evaluation`, :mod:`vae_lib.pitfalls`, :mod:`vae_lib.collapse`, :mod:`vae_lib.generation` — scoring
  in nats, the loss-scale pitfall, posterior collapse, generation and scoring (chapter 5);
* :mod:`vae_lib.priors` — the learned mixture prior p_ψ(z) and the VAE that uses it (chapter 5);
* :mod:`vae_lib.rate_distortion` — the ELBO as −(distortion + rate), the β-objective (chapter 5);
* :mod:`vae_lib.networks` — the fully connected and convolutional networks a VAE wraps; :mod:`vae_lib.checkpoint` —
  checkpoints verified by SHA-256; :mod:`vae_lib.trained` — the models the book ships weights for, built, trained
  and loaded one way (chapters 7 and 8: :mod:`vae_lib.face_models`, :mod:`vae_lib.iwae_models`);
* :mod:`vae_lib.faces`, :mod:`vae_lib.disentanglement`, :mod:`vae_lib.face_models`, :mod:`vae_lib.face_analysis`,
  :mod:`vae_lib.axes` — faces rendered with known factors, how much each latent dimension tells about each factor,
  the chapter's checkpointed models, traversals and edits, and what rotating the latent space costs (chapter 7);
* :mod:`vae_lib.flows`, :mod:`vae_lib.iwae` — closing the gap: normalizing-flow posteriors (planar, radial,
  affine coupling) and training with the importance-weighted bound L_K (IWAE and DReG gradients, their SNR);
  :mod:`vae_lib.flow_explorer` — a flow's samples pushed step by step onto the true posterior (chapter 8);
* :mod:`vae_lib.vq` — the vector quantiser, straight-through gradients, the VQ-VAE and its code priors (chapter 6);
* :mod:`vae_lib.figures` (+ ``figures_gap``, ``figures_estimators``, ``figures_training``, ``figures_vq``),
  :mod:`vae_lib.display` —
  figure builders and the plotly renderer setup.
"""

from .checkpoint import load_checkpoint, save_checkpoint, sha256_file
from .data import DIGIT_LEVELS, DIGIT_SHAPE, DigitsSplit, load_digits_split, mixture_log_density, sample_mixture
from .disentanglement import (
    axis_factor_table,
    correlation_matrix,
    factor_entropies,
    mutual_information_gap,
    mutual_information_matrix,
)
from .display import setup_notebook
from .elbo import (
    elbo_evidence_minus_gap,
    elbo_joint_plus_entropy,
    elbo_reconstruction_minus_kl,
    iwae_bound,
    log_importance_weights,
    log_marginal_importance,
    repeated_log_marginal_estimates,
)
from .evaluation import bits_per_dim
from .explorer import Explorer, decode_grid
from .faces import FACE_LEVELS, FACE_SIZE, FACTOR_NAMES, FACTOR_RANGES, load_faces_split, make_faces, render_faces
from .flow_explorer import flow_elbo_by_step, flow_explorer
from .flows import (
    AffineCoupling,
    FlowConfig,
    FlowFitConfig,
    FlowPosterior,
    PlanarStep,
    RadialStep,
    fit_flow_posterior,
    flow_gap_by_depth,
    flow_log_weights,
)
from .gaussian import (
    diag_gaussian,
    kl_diag_gaussian_std_normal,
    kl_diag_gaussians,
    kl_full_gaussians,
    kl_monte_carlo,
    sample,
    standard_normal_prior,
)
from .iwae import GradientSNR, active_units, encoder_gradient_snr, iwae_loss, iwae_surrogate, normalised_weights
from .latent import hole_fraction
from .latent_explorer import drawing_pad_explorer, latent_explorer
from .likelihoods import bernoulli_log_likelihood, categorical_log_likelihood, gaussian_log_likelihood
from .models import VAE, AEConfig, Autoencoder, VAEConfig
from .networks import ConvConfig, ConvDecoder, ConvEncoder, conv_networks
from .posterior_explorer import AscentResult, ascend_elbo
from .priors import MixturePrior, MixturePriorConfig, MixturePriorVAE, mixture_kl_upper_bound
from .toy import GridLatentModel, LinearGaussianModel, arc_model, folded_model
from .train import TrainConfig, TrainHistory, TrainingDivergedError, fit
from .vq import (
    VQVAE,
    AutoregressiveCodePrior,
    AutoregressivePriorConfig,
    EmpiricalCodePrior,
    VQVAEConfig,
    nearest_code,
    quantise,
    straight_through,
    uniform_prior_kl,
    vq_elbo,
)

__all__ = [
    "AscentResult", "ascend_elbo",
    "AEConfig", "Autoencoder", "DIGIT_LEVELS", "DIGIT_SHAPE", "DigitsSplit", "GridLatentModel",
    "LinearGaussianModel", "TrainConfig", "TrainHistory", "TrainingDivergedError", "VAE", "VAEConfig", "arc_model",
    "bernoulli_log_likelihood", "categorical_log_likelihood", "decode_grid", "diag_gaussian",
    "elbo_evidence_minus_gap", "elbo_joint_plus_entropy", "elbo_reconstruction_minus_kl", "fit", "folded_model",
    "gaussian_log_likelihood", "hole_fraction", "iwae_bound", "kl_diag_gaussian_std_normal", "kl_diag_gaussians",
    "kl_full_gaussians",
    "kl_monte_carlo", "Explorer", "drawing_pad_explorer", "latent_explorer", "load_digits_split",
    "log_importance_weights", "log_marginal_importance",
    "mixture_log_density", "repeated_log_marginal_estimates", "sample", "sample_mixture",
    "setup_notebook", "standard_normal_prior",
    "AutoregressiveCodePrior", "AutoregressivePriorConfig", "EmpiricalCodePrior", "VQVAE", "VQVAEConfig",
    "nearest_code", "quantise", "straight_through", "uniform_prior_kl", "vq_elbo",
    "MixturePrior", "MixturePriorConfig", "MixturePriorVAE", "mixture_kl_upper_bound",
    "load_checkpoint", "save_checkpoint", "sha256_file", "bits_per_dim", "ConvConfig", "ConvDecoder", "ConvEncoder",
    "conv_networks", "FACE_LEVELS", "FACE_SIZE", "FACTOR_NAMES", "FACTOR_RANGES", "load_faces_split", "make_faces",
    "render_faces", "axis_factor_table", "correlation_matrix", "factor_entropies", "mutual_information_gap",
    "mutual_information_matrix",
    "AffineCoupling", "FlowConfig", "FlowFitConfig", "FlowPosterior", "PlanarStep", "RadialStep", "fit_flow_posterior",
    "flow_gap_by_depth", "flow_log_weights", "flow_elbo_by_step", "flow_explorer",
    "GradientSNR", "active_units", "encoder_gradient_snr", "iwae_loss", "iwae_surrogate", "normalised_weights",
]
