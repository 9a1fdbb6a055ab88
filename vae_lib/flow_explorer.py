"""The flow explorer: a normalizing-flow posterior q_T(z|x) pushed step by step onto the true posterior (chapter 8).

Chapter 2's folded model has, for x = (1, 0.5), a posterior p_θ(z|x) with two modes (z₁ ≈ ±1) that no Gaussian
matches. A flow (:class:`vae_lib.flows.FlowPosterior`, planar or radial steps) starts from a Gaussian q_0 and moves
its samples with T invertible steps; by the change of variables each sample carries its density,

    log q_T(z_T|x) = log q_0(z_0|x) − Σ_{t ≤ T} log |det ∂f_t(z_{t−1})/∂z_{t−1}|.

:func:`flow_explorer` shows a fitted flow's first T steps for T = 0 … T_max (a slider): N fixed base draws z_0
pushed through the steps and coloured by log q_T, over p_θ(z|x) on a grid; the page runs the flow itself
(:class:`vae_lib.explorer.FlowSteps`). The readout gives the ELBO of q_T (Monte Carlo, :func:`flow_elbo_by_step`),
log p_θ(x) by quadrature and their gap, KL(q_T ‖ p_θ(z|x)); a second plot shades q_T itself on a grid (the page
takes each grid point back through the steps), a third draws the gap against T.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._checks import as_tensor, check_count, check_generator, check_instance, check_last_dim, check_text
from .elbo import LatentVariableModel
from .explorer import Background, Curve, Explorer, FlowSteps, Lookup, Marker, Plane, Scatter, Slider
from .flows import FlowPosterior
from .gaussian import diag_gaussian
from .quadrature import latent_grid, log_joint_on_grid

__all__ = ["flow_elbo_by_step", "flow_explorer"]

POSTERIOR_BOUND = 2.5  # the plane and its posterior grid cover [−2.5, 2.5]²
BAND_COLOURS = ("#FDBE85", "#FD8D3C", "#D94701", "#8C2D04")  # ColorBrewer Oranges: sequential, colour-blind safe
GAP_COLOUR = "#000000"
GAP_FLOOR = 1e-3  # nats: the gap plot's lowest value (a log scale)
MARKER_COLOUR = "#D55E00"  # Okabe-Ito vermillion


def _check_flow(flow: FlowPosterior, model: LatentVariableModel, x: Tensor) -> Tensor:
    check_instance("flow", flow, FlowPosterior, "a FlowPosterior (vae_lib.flows) with planar or radial steps")
    if flow.config.amortised or not flow.config.free_base:
        raise ValueError("flow must be a free flow for one x (FlowConfig(amortised=False, free_base=True)), "
                         "as fit_flow_posterior returns it")
    x = as_tensor("x", x, min_ndim=1, dtype=torch.float64)
    x = x.reshape(1, -1) if x.dim() == 1 else x
    if x.dim() != 2 or x.shape[0] != 1:
        raise ValueError(f"x must be one observation, shape (D,) or (1, D), got {tuple(x.shape)}")
    if not callable(getattr(model, "log_likelihood", None)) or not hasattr(model, "prior"):
        raise TypeError(f"model must have log_likelihood(x, z) and a prior (e.g. vae_lib.folded_model()), "
                        f"got {type(model).__name__}")
    if tuple(model.prior.event_shape) != (flow.config.latent_dim,):
        raise ValueError(f"the flow's latent size {flow.config.latent_dim} must be the model's "
                         f"{tuple(model.prior.event_shape)}")
    return x


def flow_elbo_by_step(model: LatentVariableModel, x: Tensor, flow: FlowPosterior, n_samples: int, *,
                      generator: torch.Generator) -> list[dict[str, float]]:
    """The ELBO of q_t, the flow's base q_0 followed by its first t steps, for t = 0 … T (Monte Carlo).

    The same n_samples draws z_0 ~ q_0 (noise from ``generator``) are pushed through the steps one at a time; after
    step t, log w = log p_θ(x|z_t) + log p(z_t) − log q_t(z_t|x) and the ELBO of q_t is their mean. Each row:
    ``{"depth": t, "elbo", "elbo_se"}`` in nats, with the standard error of the mean.
    """
    x = _check_flow(flow, model, x)
    n_samples = check_count("n_samples", n_samples, minimum=2, maximum=10**7)
    check_generator(generator)
    mean, log_var = flow.base_mean.detach(), flow.base_log_var.detach()  # (1, L)
    rows = []
    with torch.no_grad():
        eps = torch.randn((n_samples, *mean.shape), generator=generator, dtype=mean.dtype)  # (K, 1, L)
        z = mean + torch.exp(0.5 * log_var) * eps
        log_q = diag_gaussian(mean, log_var).log_prob(z)  # (K, 1) log q_0(z_0)
        for t in range(len(flow.steps) + 1):
            if t > 0:
                z, log_det = flow.steps[t - 1](z)
                log_q = log_q - log_det
            log_w = (model.log_likelihood(x, z).double() + model.prior.log_prob(z.double()) - log_q.double())[:, 0]
            rows.append({"depth": t, "elbo": log_w.mean().item(),
                         "elbo_se": (log_w.std() / math.sqrt(n_samples)).item()})
    return rows


def flow_explorer(model: LatentVariableModel, x: Tensor, flow: FlowPosterior, *, generator: torch.Generator,
                  n_points: int = 600, elbo_samples: int = 20_000, n_grid: int = 101, density_grid: int = 51,
                  start_depth: int = 0,
                  title: str = "Flow explorer: q_T(z|x) pushed onto the true posterior") -> Explorer:
    """The flow explorer (chapter 8) as an :class:`vae_lib.explorer.Explorer`: static in the page (the explorer as
    a cell's value, or ``.html()``), live in a kernel (``.live()``).

    ``flow`` is a free :class:`vae_lib.flows.FlowPosterior` with planar or radial steps fitted to one x of ``model``
    (a 2-D latent model with an exact ``log_marginal``, e.g. ``vae_lib.folded_model()``). A slider sets T = 0 …
    T_max (the flow's number of steps; it starts at ``start_depth``, by default at q_0 itself); the plane shows
    p_θ(z|x) on an ``n_grid`` × ``n_grid`` grid over [−2.5, 2.5]² (relative to its peak) and ``n_points`` base draws
    z_0 ~ q_0 (from ``generator``) pushed through the first T steps, coloured by log q_T(z_T|x) in four bands
    (edges: the quartiles of log q_T over every T); the page computes the points and their densities, and q_T on a
    ``density_grid`` × ``density_grid`` grid on the posterior's scale, q_T(z) / max p(z|x) (second plot; each grid
    point taken back through the steps). The readout: the ELBO of q_T by Monte Carlo (``elbo_samples`` draws,
    :func:`flow_elbo_by_step`, ± its standard error), log p_θ(x) by the model's quadrature, and the gap log p_θ(x) −
    ELBO = KL(q_T ‖ p_θ(z|x)); the third plot, the gap against T.

    Example (chapter 8)::

        model, x = vae_lib.folded_model(), torch.tensor([[1.0, 0.5]], dtype=torch.float64)
        fit = vae_lib.fit_flow_posterior(model, x, vae_lib.FlowConfig(n_steps=8, dtype=torch.float64),
                                         vae_lib.FlowFitConfig(steps=2000, anneal_steps=1500))  # gap ≈ 0.06
        explorer = vae_lib.flow_explorer(model, x, fit.flow, generator=torch.Generator().manual_seed(0))
        explorer          # static in the page; explorer.live() in a kernel
    """
    x = _check_flow(flow, model, x)
    if flow.config.latent_dim != 2:
        raise ValueError(f"flow must have a 2-D latent (the explorer draws the z-plane), got {flow.config.latent_dim}")
    if not callable(getattr(model, "log_marginal", None)):
        raise TypeError(f"model must have an exact log_marginal(x) (e.g. vae_lib.folded_model()), "
                        f"got {type(model).__name__}")
    check_generator(generator)
    n_points = check_count("n_points", n_points, maximum=20_000)
    elbo_samples = check_count("elbo_samples", elbo_samples, minimum=2, maximum=10**7)
    n_grid = check_count("n_grid", n_grid, minimum=3, maximum=401)
    density_grid = check_count("density_grid", density_grid, minimum=3, maximum=201)
    check_text("title", title)
    if isinstance(getattr(model, "data_dim", None), int):
        check_last_dim("x", x, model.data_dim, "the model's data size D")
    depth_max = len(flow.steps)
    if depth_max == 0:
        raise ValueError("flow must have at least one step (FlowConfig(n_steps >= 1)): the slider moves through them")
    start_depth = check_count("start_depth", start_depth, minimum=0, maximum=depth_max)

    eps = torch.randn((n_points, 2), generator=generator, dtype=torch.float64)  # (N, 2): the base draws' noise
    log_px = model.log_marginal(x)[0].item()
    grid = latent_grid(POSTERIOR_BOUND, n_grid, 2)
    log_joint = log_joint_on_grid(model, x, grid)[:, 0].reshape(grid.shape)  # (n, n), row 0 at the lowest z₂
    posterior = (log_joint - log_joint.max()).exp()  # p(z|x) relative to its peak
    # q_T is shaded on the posterior's scale: q_T(z) / max_g p(z_g|x), so that where the two agree they look alike
    push = FlowSteps(tuple(flow.steps), flow.base_mean.detach()[0], flow.base_log_var.detach()[0], eps, "T", "z",
                     "log_q", grid=(-POSTERIOR_BOUND, POSTERIOR_BOUND, density_grid), density="density",
                     log_peak=log_joint.max().item() - log_px)
    rows = flow_elbo_by_step(model, x, flow, elbo_samples, generator=generator)
    gaps = [log_px - r["elbo"] for r in rows]
    # drawn on a log scale: the first T steps of a flow fitted as a whole can be far from p(z|x) (hundreds of nats)
    # while the whole flow is within a tenth of a nat; a Monte Carlo gap below GAP_FLOOR is drawn at the floor
    log_gaps = [math.log10(max(g, GAP_FLOOR)) for g in gaps]
    curve = {"x": list(range(depth_max + 1)), "y": log_gaps}
    table = {str(t): {"elbo": r["elbo"], "elbo_se": r["elbo_se"], "log_px": log_px, "gap": gaps[t],
                      "log10_gap": log_gaps[t], "gap_curve": curve} for t, r in enumerate(rows)}

    pooled = []  # log q_T of the drawn points at every T: the colour bands' edges are its quartiles
    with torch.no_grad():
        for t in range(depth_max + 1):
            values = {"T": t}
            push.run(values, None)
            pooled.append(values["log_q"][0])
    edges = tuple(round(float(e), 1) for e in torch.quantile(torch.cat(pooled), torch.tensor([0.25, 0.5, 0.75],
                                                                                              dtype=torch.float64)))
    edges = tuple(sorted(set(edges)))
    colours = BAND_COLOURS[len(BAND_COLOURS) - len(edges) - 1:]
    bounds = ["", *(f"{e:g}".replace("-", "−") for e in edges), ""]
    labels = tuple(f"log q_T < {bounds[1]}" if k == 0 else f"log q_T ≥ {bounds[k]}" if k == len(edges)
                   else f"{bounds[k]} ≤ log q_T < {bounds[k + 1]}" for k in range(len(edges) + 1))

    axis, half = grid.axes[0], 0.5 * grid.step  # each grid value fills its cell
    extent = (float(axis[0]) - half, float(axis[-1]) + half, float(axis[0]) - half, float(axis[-1]) + half)
    view = (-POSTERIOR_BOUND, POSTERIOR_BOUND)
    plane = Plane("true posterior p(z|x) (shaded) and samples of q_T(z|x)", "z₁", view, "z₂", view,
                  background=Background(extent, (0.0, 1.0), values=posterior, colormap="blues"),
                  layers=(Scatter("z", "log_q", edges, colours, labels),), width=420, height=420)
    cell = POSTERIOR_BOUND / (density_grid - 1)  # half a cell of the density's grid
    density_plane = Plane("the flow's density q_T(z|x) (shaded on the same scale)", "z₁", view, "z₂", view,
                          background=Background((-POSTERIOR_BOUND - cell, POSTERIOR_BOUND + cell,
                                                 -POSTERIOR_BOUND - cell, POSTERIOR_BOUND + cell), (0.0, 1.0),
                                                output="density", shape=(density_grid, density_grid),
                                                colormap="blues"), width=420, height=420)
    gap_plane = Plane("gap KL(q_T ‖ p(z|x)) against T, log scale", "flow steps T", (-0.3, depth_max + 0.3),
                      "log₁₀ gap [nats]", (math.floor(min(log_gaps)) - 0.1, math.ceil(max(log_gaps)) + 0.1),
                      layers=(Curve("gap_curve", GAP_COLOUR, "gap after the first T steps"),
                              Marker("T", "log10_gap", MARKER_COLOUR)), width=320, height=320)
    controls = (Slider("T", "flow steps T", 0, depth_max, 1, start_depth, digits=0, snap=True),)
    readout = ("T = {T:.0f}   ELBO L(q_T) = {elbo:.3f} ± {elbo_se:.3f}   log p(x) = {log_px:.3f}   "
               "gap = KL(q_T ‖ p(z|x)) = {gap:.3f}  [nats]")
    caption = (f"{title}. Move the slider (or focus it and press the arrow keys) to push {n_points} draws of the "
               f"Gaussian q_0 through the first T of the flow's {depth_max} steps; the page computes each point and "
               "its density log q_T(z|x) = log q_0(z_0|x) − Σ_t log|det ∂f_t/∂z_{t−1}|, shown by its colour, over "
               "the true posterior p(z|x) (blue, relative to its peak). The second plot shades q_T(z|x) itself on "
               "the same scale (each grid point taken back through the steps), for comparison with p(z|x). The "
               f"readout gives the ELBO of q_T by Monte Carlo ({elbo_samples:,} draws, ± one standard error), log "
               "p(x) by quadrature, and their gap, the KL divergence from q_T to the true posterior, drawn against T "
               f"(log scale) in the third plot. Only the whole flow (T = {depth_max}) was fitted to the posterior: "
               "the first T steps alone may be far from it.")
    return Explorer(title, caption, controls, (plane, density_plane, gap_plane), (push, Lookup(("T",), table)),
                    readout)
