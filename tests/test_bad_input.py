"""Bad input gets a clear error and never corrupts a model (issue 16): property tests over every public callable.

* Every public callable of vae_lib (``vae_lib.__all__`` and the ``__all__`` of every submodule, found by walking them,
  so a new function is covered without touching this file) is called with bad values drawn by hypothesis (None,
  strings, objects, NaN/inf, empty and complex tensors, numpy arrays of strings, absurd counts...): it must raise a
  ValueError or TypeError whose message names one of its parameters, or return finite values, within seconds.
* Every public method of the models (VAE, the mixture-prior VAE, the VQ-VAE and its code priors, the autoencoder)
  is called with valid inputs, then with each tensor argument as a float64 numpy array (same result as float32), as
  a float64 tensor, empty, wrongly shaped, holding a NaN, or None, and each count absurd.
* A refused update (``VQVAE.update_codebook``, :func:`vae_lib.fit`) leaves the model's state bit for bit unchanged;
  a training run that diverges ends with :class:`vae_lib.TrainingDivergedError` and the weights of the last good
  step (checked against a run stopped there).
* Legal but extreme inputs give the exact answer: the KL of narrow Gaussians against float64 closed forms.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import math
import pkgutil
import re
import signal
import typing
from collections.abc import Callable, Mapping

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import vae_lib
from vae_lib import (
    VAE,
    VQVAE,
    AEConfig,
    Autoencoder,
    AutoregressiveCodePrior,
    AutoregressivePriorConfig,
    EmpiricalCodePrior,
    MixturePriorConfig,
    MixturePriorVAE,
    TrainConfig,
    TrainingDivergedError,
    VAEConfig,
    VQVAEConfig,
    fit,
    kl_diag_gaussians,
)
from vae_lib._checks import MAX_COUNT
from vae_lib.estimators import ScoreFunctionVAE
from vae_lib.pitfalls import MeanSquaredErrorPlusKL

SECONDS = 5  # a call on bad input must answer within this (a hang or a 10**9-sample loop fails the test)


# ---------------------------------------------------------------------------------------------------------------
# discovery: every public callable
# ---------------------------------------------------------------------------------------------------------------
def _public_callables() -> dict[str, Callable]:
    """name -> callable for every callable in ``vae_lib.__all__`` or a submodule's ``__all__`` that vae_lib defines.

    Left out: protocols (interfaces, not callable), abstract base classes (subclassed, never called) and exception
    classes (raised, never called with user input).
    """
    found: dict[int, tuple[str, Callable]] = {}
    modules = [vae_lib] + [importlib.import_module(f"vae_lib.{m.name}") for m in pkgutil.iter_modules(vae_lib.__path__)
                           if not m.name.startswith("_")]
    for module in modules:
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if not callable(obj) or not getattr(obj, "__module__", "").startswith("vae_lib"):
                continue
            if inspect.isclass(obj) and (getattr(obj, "_is_protocol", False) or inspect.isabstract(obj)
                                         or issubclass(obj, BaseException)):
                continue
            found.setdefault(id(obj), (f"{obj.__module__}.{obj.__qualname__}", obj))
    return dict(sorted(found.values(), key=lambda item: item[0]))


PUBLIC = _public_callables()


def _parameters(fn: Callable) -> list[inspect.Parameter]:
    return [p for p in inspect.signature(fn).parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


WITH_PARAMETERS = {name: fn for name, fn in PUBLIC.items() if _parameters(fn)}


def test_the_walk_finds_every_public_callable():
    """The walk is what makes coverage automatic: it must see the package's whole public surface."""
    assert len(PUBLIC) >= 200
    for name in vae_lib.__all__:
        obj = getattr(vae_lib, name)
        if callable(obj) and not (inspect.isclass(obj) and issubclass(obj, BaseException)):
            assert f"{obj.__module__}.{obj.__qualname__}" in PUBLIC, name
    # the callables without parameters cannot be given bad input; they are few and known
    assert set(PUBLIC) - set(WITH_PARAMETERS) == {
        "vae_lib.data.load_digits_split", "vae_lib.display.setup_notebook", "vae_lib.explorer.explorer_runtime",
        "vae_lib.faces.load_faces_split"}


# ---------------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------------
class _Hang(Exception):
    pass


def _call_with_deadline(fn: Callable, *args, **kwargs):
    """fn(*args, **kwargs), failing the test if it runs for more than SECONDS."""
    def alarm(_signum, _frame):
        raise _Hang(f"{getattr(fn, '__qualname__', fn)} ran for more than {SECONDS} s on bad input")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(SECONDS)
    try:
        return fn(*args, **kwargs)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _all_finite(value: object, depth: int = 0) -> bool:
    """True unless ``value`` (a number, tensor, array, or a tuple/list/dict/dataclass of them) holds NaN or ±inf."""
    if depth > 4:
        return True
    if isinstance(value, torch.Tensor):
        return not (value.is_floating_point() or value.is_complex()) or bool(torch.isfinite(value).all())
    if isinstance(value, np.ndarray):
        return value.dtype.kind not in "fc" or bool(np.isfinite(value).all())
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (tuple, list)):
        return all(_all_finite(v, depth + 1) for v in value)
    if isinstance(value, Mapping):
        return all(_all_finite(v, depth + 1) for v in value.values())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return all(_all_finite(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value))
    return True


def _names_a_parameter(message: str, names: list[str]) -> bool:
    return any(re.search(rf"(?<![A-Za-z0-9_]){re.escape(n)}(?![A-Za-z0-9_])", message) for n in names)


def _assert_clear_error_or_finite(fn: Callable, args: list, kwargs: dict, names: list[str],
                                  check_result: bool = True) -> None:
    try:
        result = _call_with_deadline(fn, *args, **kwargs)
    except (ValueError, TypeError) as err:
        assert _names_a_parameter(str(err), names), (
            f"{fn.__qualname__} raised {type(err).__name__} without naming any of its parameters {names}: {err}")
    else:
        assert not check_result or _all_finite(result), (
            f"{fn.__qualname__} returned non-finite values for {args!r}, {kwargs!r}")


# ---------------------------------------------------------------------------------------------------------------
# 1. every public callable, bad values in every parameter
# ---------------------------------------------------------------------------------------------------------------
def _bad_values() -> st.SearchStrategy:
    tensors = st.sampled_from([
        torch.tensor([[math.nan, 1.0], [0.0, 1.0]]),  # NaN
        torch.tensor([math.inf, 0.0]),  # inf
        torch.zeros(0, 2),  # an empty batch
        torch.zeros(0),
        torch.zeros(()),  # a scalar where a batch is expected
        torch.ones(3, 5, 7, 2) * 1e30,  # wrong rank, huge values
        torch.zeros(2, dtype=torch.complex64),  # not real
        torch.ones(2, 2, dtype=torch.bool),  # not numbers
        torch.randn(4, 3, generator=torch.Generator().manual_seed(0)),  # plausible numbers, most likely wrong shape
    ])
    arrays = st.sampled_from([np.array(["a", "b"]), np.full((2, 3), np.nan), np.zeros((0, 64)),
                              np.arange(6.0).reshape(2, 3)])
    scalars = st.sampled_from([None, "text", "", object(), True, math.nan, math.inf, -math.inf, -1, 0, 2.5,
                               10**9, -(10**9), 1e300, [], {}, {"a": None}, (), (None, None), [1, "x"]])
    return st.one_of(scalars, tensors, arrays)


BAD = _bad_values()


@pytest.mark.parametrize("name", list(WITH_PARAMETERS))
@settings(max_examples=int(__import__("os").environ.get("BAD_EXAMPLES", 10)))
@given(data=st.data())
def test_bad_values_give_a_clear_error_or_finite_values(name, data):
    fn = WITH_PARAMETERS[name]
    params = _parameters(fn)
    names = [p.name for p in params]
    args, kwargs = [], {}
    for p in params:
        if p.default is not p.empty and not data.draw(st.booleans(), label=f"replace {p.name}"):
            continue  # keep the default
        value = data.draw(BAD, label=p.name)
        if p.kind == p.KEYWORD_ONLY or (p.default is not p.empty):
            kwargs[p.name] = value
        else:
            args.append(value)
    # a record (a dataclass without checks, e.g. a result holding tensors) keeps what it is given; a mosaic's NaN
    # rows are its blank gaps by design (drawn empty), not a failed computation
    record = inspect.isclass(fn) and dataclasses.is_dataclass(fn) and not hasattr(fn, "__post_init__")
    record = record or (inspect.isclass(fn) and issubclass(fn, tuple))  # a NamedTuple record
    # pass-through by design: a mosaic's NaN rows are its blank gaps (drawn empty), compact_arrays only re-encodes
    record = record or name in ("vae_lib.explorer.mosaic", "vae_lib.display.compact_arrays")
    _assert_clear_error_or_finite(fn, args, kwargs, names, check_result=not record)


# ---------------------------------------------------------------------------------------------------------------
# 2. the models' public methods: valid calls, then one argument at a time made bad
# ---------------------------------------------------------------------------------------------------------------
def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def _digits(n: int = 4) -> torch.Tensor:
    return torch.randint(0, 17, (n, 64), generator=torch.Generator().manual_seed(1)).float()  # (n, 64) levels


_CONV = vae_lib.ConvConfig(image_shape=(1, 8, 8), channels=(4,), latent_dim=2, out_channels_per_pixel=3)


def _models() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {
        "VAE": VAE(VAEConfig(hidden=(8,))),
        "VAE-gaussian": VAE(VAEConfig(hidden=(8,), likelihood="gaussian")),
        "MixturePriorVAE": MixturePriorVAE(VAEConfig(hidden=(8,)), MixturePriorConfig(n_components=2)),
        "VQVAE": VQVAE(VQVAEConfig(hidden=(8,), n_codes=4, n_positions=2)),
        "Autoencoder": Autoencoder(AEConfig(hidden=(8,))),
        "AutoregressiveCodePrior": AutoregressiveCodePrior(
            AutoregressivePriorConfig(n_codes=4, n_positions=2, hidden=8)),
        "EmpiricalCodePrior": EmpiricalCodePrior(torch.tensor([[0, 1], [2, 3], [1, 1]]), 4),
        "GridLatentModel": vae_lib.folded_model(),  # exact toy models (float64), chapters 1-3
        "LinearGaussianModel": vae_lib.LinearGaussianModel(torch.tensor([[1.0, 0.5], [0.0, 2.0]]),
                                                           torch.tensor([0.5, -1.0]), 0.7),
        "MixturePrior": vae_lib.MixturePrior(2),
        "ScoreFunctionVAE": ScoreFunctionVAE(VAE(VAEConfig(hidden=(8,)))),
        "MeanSquaredErrorPlusKL": MeanSquaredErrorPlusKL(VAE(VAEConfig(hidden=(8,), likelihood="gaussian_fixed"))),
        "ConvEncoder": vae_lib.ConvEncoder(_CONV),
        "ConvDecoder": vae_lib.ConvDecoder(_CONV),
    }


MODELS = _models()
X, Z, Z_KBL = _digits(), torch.randn(4, 2, generator=_gen()), torch.randn(3, 4, 2, generator=_gen())
Z_E = torch.randn(4, 2, 2, generator=_gen())  # VQ-VAE encoder outputs (B, M, D)
K = torch.tensor([[0, 1], [2, 3], [1, 1], [3, 0]])  # code tuples (B, M)

# (model, method) -> positional arguments and keyword arguments of a valid call; "gen" stands for a fresh generator.
# Every public method of every model class above must appear (test_every_public_model_method_is_exercised).
VALID: dict[tuple[str, str], tuple[tuple, dict]] = {}
for _m in ("VAE", "VAE-gaussian", "MixturePriorVAE"):
    VALID.update({
        (_m, "sample_prior"): ((5,), {"generator": "gen"}),
        (_m, "flatten_data"): ((X,), {}),
        (_m, "encode"): ((X,), {}),
        (_m, "posterior"): ((X,), {}),
        (_m, "log_likelihood"): ((X, Z_KBL), {}),
        (_m, "decode_mean"): ((Z,), {}),
        (_m, "elbo"): ((X, 3), {"generator": "gen"}),
        (_m, "loss"): ((X,), {"generator": "gen"}),
        (_m, "elbo_terms"): ((X,), {"generator": "gen"}),
        (_m, "kl_per_dimension"): ((X,), {}),
    })
VALID.update({
    ("VQVAE", "encode"): ((X,), {}),
    ("VQVAE", "quantise"): ((Z_E,), {}),
    ("VQVAE", "codes"): ((X,), {}),
    ("VQVAE", "log_likelihood"): ((X, Z_E), {}),
    ("VQVAE", "decode_mean"): ((Z_E,), {}),
    ("VQVAE", "decode_quantised"): ((Z_E.flatten(1),), {}),
    ("VQVAE", "decode_codes"): ((K,), {}),
    ("VQVAE", "terms"): ((X,), {}),
    ("VQVAE", "loss"): ((X,), {}),
    ("VQVAE", "elbo"): ((X,), {}),
    ("VQVAE", "code_tuples"): ((), {}),
    ("VQVAE", "tuple_log_likelihoods"): ((X,), {}),
    ("VQVAE", "log_evidence"): ((X,), {}),
    ("VQVAE", "log_prior"): ((K,), {}),
    ("Autoencoder", "encode"): ((X,), {}),
    ("Autoencoder", "decode_mean"): ((Z,), {}),
    ("Autoencoder", "loss"): ((X,), {}),
    ("AutoregressiveCodePrior", "log_prob"): ((K,), {}),
    ("AutoregressiveCodePrior", "loss"): ((K,), {}),
    ("AutoregressiveCodePrior", "sample"): ((5,), {"generator": "gen"}),
    ("EmpiricalCodePrior", "log_prob"): ((K,), {}),
    ("EmpiricalCodePrior", "sample"): ((5,), {"generator": "gen"}),
})
X2 = torch.tensor([[0.3, -1.2], [1.5, 0.4], [-0.7, 2.0], [0.0, 0.1]])  # toy observations (B, 2)
Z1_KBL = torch.randn(3, 4, 2, generator=_gen())
for _m in ("GridLatentModel", "LinearGaussianModel"):
    VALID.update({
        (_m, "decoder_mean"): ((Z,), {}),
        (_m, "log_likelihood"): ((X2, Z1_KBL), {}),
        (_m, "log_marginal"): ((X2,), {}),
        (_m, "sample"): ((5,), {"generator": "gen"}),
    })
VALID.update({
    ("GridLatentModel", "log_posterior_on_grid"): ((X2,), {}),
    ("GridLatentModel", "kl_to_posterior"): ((X2, vae_lib.diag_gaussian(torch.zeros(4, 2), torch.zeros(4, 2))), {}),
    ("LinearGaussianModel", "marginal"): ((), {}),
    ("LinearGaussianModel", "posterior"): ((X2,), {}),
    ("LinearGaussianModel", "expected_log_likelihood"): ((X2, torch.zeros(4, 2), torch.eye(2).expand(4, 2, 2)), {}),
    ("MixturePrior", "distribution"): ((), {}),
    ("MixturePrior", "sample"): ((5,), {"generator": "gen"}),
    ("MixturePrior", "kl_upper_bound"): ((Z, torch.zeros(4, 2)), {}),
})
VALID.update({
    ("ScoreFunctionVAE", "loss"): ((X,), {"generator": "gen"}),
    ("ScoreFunctionVAE", "elbo"): ((X, 3), {"generator": "gen"}),
    ("MeanSquaredErrorPlusKL", "loss"): ((X,), {"generator": "gen"}),
    ("ConvEncoder", "forward"): ((torch.rand(4, 1, 8, 8, generator=_gen()),), {}),
    ("ConvDecoder", "forward"): ((Z,), {}),
})
STATEFUL = {("VQVAE", "update_codebook")}  # exercised by the state tests below


def _public_methods(cls: type) -> set[str]:
    """Methods defined by vae_lib classes in cls's MRO (not nn.Module's own), public by name."""
    names = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith("vae_lib"):
            continue
        for name, attr in vars(klass).items():
            if not name.startswith("_") and inspect.isfunction(attr):
                names.add(name)
    return names


def test_every_public_model_method_is_exercised():
    for model_name, model in MODELS.items():
        missing = {m for m in _public_methods(type(model))
                   if (model_name, m) not in VALID and (model_name, m) not in STATEFUL}
        assert not missing, f"{model_name}: add valid calls for {sorted(missing)} to VALID"


def _fresh(model_name: str) -> torch.nn.Module:
    """The model in eval mode (the VQ-VAE's loss would update its codebook in training mode)."""
    model = MODELS[model_name]
    return model.eval() if isinstance(model, torch.nn.Module) else model


def _call(model_name: str, method: str, args: tuple, kwargs: dict):
    kwargs = {k: _gen() if v == "gen" else v for k, v in kwargs.items()}
    return getattr(_fresh(model_name), method)(*args, **kwargs)


def _flatten_result(result) -> list[torch.Tensor]:
    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, torch.distributions.Distribution):
        return [result.mean, result.variance]
    if dataclasses.is_dataclass(result):
        return [getattr(result, f.name) for f in dataclasses.fields(result)]
    return [t for t in result]


CALLS = sorted(VALID)


@pytest.mark.parametrize("model_name,method", CALLS)
def test_valid_calls_return_finite_values(model_name, method):
    args, kwargs = VALID[(model_name, method)]
    for t in _flatten_result(_call(model_name, method, args, kwargs)):
        assert _all_finite(t)


def _tensor_arguments(model_name: str, method: str) -> list[tuple[int, str]]:
    args, _ = VALID[(model_name, method)]
    names = [p.name for p in _parameters(getattr(MODELS[model_name], method))]
    return [(i, names[i]) for i, a in enumerate(args) if isinstance(a, torch.Tensor)]


TENSOR_CASES = [(m, f, i, n) for (m, f) in CALLS for i, n in _tensor_arguments(m, f)]


@pytest.mark.parametrize("model_name,method,index,arg", TENSOR_CASES)
def test_numpy_and_float64_give_the_float32_result(model_name, method, index, arg):
    """scikit-learn's data are float64 numpy arrays: every model method takes them, with the float32 answer."""
    args, kwargs = VALID[(model_name, method)]
    expected = _flatten_result(_call(model_name, method, args, kwargs))
    value = args[index]
    if value.is_floating_point():
        versions = (value.double(), value.numpy().astype(np.float64))
    else:  # integer levels or code indices: other integer dtypes, and floats holding the integers where accepted
        versions = (value.int(), value.numpy().astype(np.int32))
    for converted in versions:
        new_args = list(args)
        new_args[index] = converted
        got = _flatten_result(_call(model_name, method, tuple(new_args), kwargs))
        assert len(got) == len(expected)
        for g, e in zip(got, expected, strict=True):
            assert g.dtype == e.dtype, f"{arg} as {type(converted).__name__} changed the result's dtype"
            torch.testing.assert_close(g, e, rtol=0, atol=0)


def _bad_versions(value: torch.Tensor) -> dict[str, tuple[object, type]]:
    """Bad replacements of a valid tensor argument, each with the exception it must raise."""
    bad: dict[str, tuple[object, type]] = {"None": (None, TypeError), "a string": ("x", TypeError),
                                            "complex": (value.to(torch.complex64), TypeError),
                                            "empty batch": (value[:0], ValueError)}
    if value.is_floating_point():
        nan = value.clone()
        nan.view(-1)[-1] = math.nan
        bad["NaN"] = (nan, ValueError)
        inf = value.clone()
        inf.view(-1)[0] = math.inf
        bad["inf"] = (inf, ValueError)
    else:
        bad["out of range"] = (value + 100, ValueError)
        bad["non-integer floats"] = (value.float() + 0.5, (ValueError, TypeError))
    bad["last dimension too long"] = (torch.cat([value, value[..., :1]], -1), ValueError)
    bad["a dimension missing"] = (value.reshape(-1), ValueError)
    return bad


BAD_CASES = [(m, f, i, n, b) for (m, f, i, n) in TENSOR_CASES for b in _bad_versions(VALID[(m, f)][0][i])]


@pytest.mark.parametrize("model_name,method,index,arg,kind", BAD_CASES)
def test_a_bad_tensor_argument_is_named(model_name, method, index, arg, kind):
    args, kwargs = VALID[(model_name, method)]
    value, expected = _bad_versions(args[index])[kind]
    new_args = list(args)
    new_args[index] = value
    if kind == "a dimension missing" and args[index].dim() == 1:
        pytest.skip("a 1-D argument has no dimension to lose")
    if kind == "empty batch" and not isinstance(MODELS[model_name], (VAE, VQVAE, Autoencoder, ScoreFunctionVAE,
                                                                      MeanSquaredErrorPlusKL)):
        # exact models and priors need no average over rows: an empty batch may give an empty (finite) answer
        try:
            result = _call_with_deadline(_call, model_name, method, tuple(new_args), kwargs)
        except ValueError as err:
            assert _names_a_parameter(str(err), [arg]), str(err)
        else:
            assert all(_all_finite(t) for t in _flatten_result(result))
        return
    with pytest.raises(expected) as info:
        _call_with_deadline(_call, model_name, method, tuple(new_args), kwargs)
    assert _names_a_parameter(str(info.value), [arg]), f"{kind} {arg}: {info.value}"


COUNT_CASES = [(m, f, i) for (m, f) in CALLS for i, a in enumerate(VALID[(m, f)][0])
               if isinstance(a, int) and not isinstance(a, bool)]


@pytest.mark.parametrize("model_name,method,index", COUNT_CASES)
@pytest.mark.parametrize("bad,expected", [(10**9, ValueError), (0, ValueError), (-3, ValueError), (2.0, TypeError),
                                          (True, TypeError), (None, TypeError)])
def test_a_bad_count_is_refused_up_front(model_name, method, index, bad, expected):
    args, kwargs = VALID[(model_name, method)]
    name = [p.name for p in _parameters(getattr(MODELS[model_name], method))][index]
    new_args = list(args)
    new_args[index] = bad
    with pytest.raises(expected, match=rf"\b{name}\b"):
        _call_with_deadline(_call, model_name, method, tuple(new_args), kwargs)
    if bad == 10**9:
        with pytest.raises(ValueError, match=str(MAX_COUNT)):  # the bound is stated
            _call(model_name, method, tuple(new_args), kwargs)


GENERATOR_CASES = [c for c in CALLS if VALID[c][1].get("generator") == "gen"]


@pytest.mark.parametrize("model_name,method", GENERATOR_CASES)
@pytest.mark.parametrize("bad", [None, 0, "seed", np.random.default_rng(0)])
def test_randomness_must_come_from_a_torch_generator(model_name, method, bad):
    args, kwargs = VALID[(model_name, method)]
    with pytest.raises(TypeError, match="generator"):
        getattr(_fresh(model_name), method)(*args, **{**kwargs, "generator": bad})


# ---------------------------------------------------------------------------------------------------------------
# 3. a refused update changes nothing
# ---------------------------------------------------------------------------------------------------------------
def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    state["n_restarts"] = torch.tensor(getattr(model, "n_restarts", 0))
    return state


def _assert_same_state(model: torch.nn.Module, before: dict[str, torch.Tensor]) -> None:
    after = _state(model)
    assert after.keys() == before.keys()
    for key in before:
        # bit for bit, NaN included: equal_nan would hide a NaN written into a NaN-free codebook only if both had one
        assert torch.equal(after[key], before[key]), f"{key} changed"


def _vq(update: str = "ema", threshold: float = 0.05) -> VQVAE:
    return VQVAE(VQVAEConfig(hidden=(8,), n_codes=4, n_positions=2, codebook_update=update,
                             dead_code_threshold=threshold))


@pytest.mark.parametrize("update", ["ema", "gradient"])
@settings(max_examples=25)
@given(data=st.data())
def test_a_refused_codebook_update_leaves_the_model_bit_for_bit_unchanged(update, data):
    model = _vq(update)
    z_e = torch.randn(5, 2, 2, generator=torch.Generator().manual_seed(data.draw(st.integers(0, 99), label="seed")))
    k = torch.tensor([[0, 1], [2, 3], [1, 1], [3, 0], [0, 0]])
    kind = data.draw(st.sampled_from(["nan", "inf", "k shape", "k range", "k float", "k None", "z_e shape",
                                      "z_e None", "k rows"]), label="kind")
    if kind in ("nan", "inf"):
        where = data.draw(st.integers(0, z_e.numel() - 1), label="where")
        z_e.view(-1)[where] = math.nan if kind == "nan" else math.inf
    elif kind == "k shape":
        k = k[:, :1]
    elif kind == "k range":
        k = k.clone()
        k[data.draw(st.integers(0, 4), label="row"), 1] = data.draw(st.sampled_from([-1, 4, 10**6]), label="code")
    elif kind == "k float":
        k = k.float() + 0.5
    elif kind == "k None":
        k = None
    elif kind == "z_e shape":
        z_e = z_e[..., :1]
    elif kind == "z_e None":
        z_e = None
    else:
        k = k[:3]
    model.update_codebook(torch.randn(5, 2, 2, generator=_gen()), k if kind != "k rows" and k is not None
                          and kind not in ("k shape", "k range", "k float") else K[:1].expand(5, 2).contiguous())
    before = _state(model)
    with pytest.raises((ValueError, TypeError)) as info:
        model.update_codebook(z_e, k)
    assert _names_a_parameter(str(info.value), ["z_e", "k"])
    _assert_same_state(model, before)


def test_an_accepted_codebook_update_does_change_the_model():
    """The other side of the test above: a valid update moves the EMA counts, so a comparison would see a write."""
    model = _vq()
    before = _state(model)
    model.update_codebook(torch.randn(5, 2, 2, generator=_gen()), K[:1].expand(5, 2))
    with pytest.raises(AssertionError, match="changed"):
        _assert_same_state(model, before)


def test_a_codebook_update_of_an_unused_code_never_divides_zero_by_zero():
    model = _vq(threshold=0.0)  # no restarts
    with torch.no_grad():  # codes 1..3 unused for so long that their running counts and sums underflowed to 0
        model.ema_count[1:] = 0.0
        model.ema_sum[1:] = 0.0
    old = model.codebook.detach().clone()
    model.update_codebook(torch.randn(8, 2, 2, generator=_gen()), torch.zeros(8, 2, dtype=torch.long))
    assert torch.isfinite(model.codebook).all()
    assert torch.equal(model.codebook[1:], old[1:])  # an unused code stays where it was


@pytest.mark.parametrize("bad", ["nan", "empty", "float64-nan", "wrong shape", "None"])
def test_fit_refuses_bad_data_before_touching_the_model(bad):
    model = VAE(VAEConfig(hidden=(8,)))
    x = {"nan": torch.full((8, 64), math.nan), "empty": torch.zeros(0, 64),
         "float64-nan": np.full((8, 64), np.nan), "wrong shape": torch.zeros(8, 63), "None": None}[bad]
    before = _state(model)
    with pytest.raises((ValueError, TypeError), match="x_train"):
        fit(model, x, TrainConfig(epochs=1, progress=False))
    _assert_same_state(model, before)


def test_fit_takes_numpy_float64_data_with_the_float32_result():
    x = _digits(32)
    runs = []
    for data in (x, x.numpy().astype(np.float64)):
        model = VAE(VAEConfig(hidden=(8,)))
        history = fit(model, data, TrainConfig(epochs=2, batch_size=16, progress=False))
        runs.append((history.loss, _state(model)))
    assert runs[0][0] == runs[1][0]
    for key in runs[0][1]:
        assert torch.equal(runs[0][1][key], runs[1][1][key])


# ---------------------------------------------------------------------------------------------------------------
# 4. a diverging run ends with a clear error and the last good weights
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model_name", ["VAE", "VQVAE", "MixturePriorVAE"])
def test_an_absurd_learning_rate_ends_with_a_clear_error_and_the_weights_before_the_failing_step(model_name):
    model = {"VAE": lambda: VAE(VAEConfig(hidden=(16,))), "VQVAE": lambda: _vq(),
             "MixturePriorVAE": lambda: MixturePriorVAE(VAEConfig(hidden=(16,)))}[model_name]()
    before = _state(model)
    with pytest.raises(TrainingDivergedError) as info:
        fit(model, _digits(64), TrainConfig(epochs=5, batch_size=16, learning_rate=1e30, progress=False))
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert re.search(r"epoch \d+ of 5, step \d+ of 20", message), message
    assert "smaller learning rate" in message and "1e+30" in message
    # the first update already breaks every model here: the last good weights are the initial ones
    assert "step 2 of 20" in message, message
    _assert_same_state(model, before)
    assert not model.training  # left in eval mode like a finished run


class _BreaksAtCall(VAE):
    """A VAE whose ELBO terms turn NaN at one call: what a diverged update looks like from inside fit."""

    def __init__(self, config: VAEConfig, bad_call: int) -> None:
        super().__init__(config)
        self.calls, self.bad_call = 0, bad_call

    def elbo_terms(self, x, *, generator):
        log_lik, kl = super().elbo_terms(x, generator=generator)
        self.calls += 1
        return (log_lik * math.nan, kl) if self.calls == self.bad_call + 1 else (log_lik, kl)


def test_a_divergence_later_in_training_restores_the_weights_of_the_last_good_step():
    """Steps 0..8 run; the loss of step 9 is NaN, so update 8 broke the model: the weights after 8 updates are the
    last good ones, exactly those of a run of 2 epochs × 4 steps (same seed, same batches)."""
    x, config = _digits(64), VAEConfig(hidden=(16,))
    reference = VAE(config)
    fit(reference, x, TrainConfig(epochs=2, batch_size=16, progress=False))
    broken = _BreaksAtCall(config, bad_call=9)
    with pytest.raises(TrainingDivergedError, match=r"epoch 3 of 3, step 10 of 12"):
        fit(broken, x, TrainConfig(epochs=3, batch_size=16, progress=False))
    after_nine = VAE(config)  # what the weights would be without the restore: one update more
    fit(after_nine, x, TrainConfig(epochs=3, batch_size=16, progress=False))
    ref_state, got = reference.state_dict(), broken.state_dict()
    for key in ref_state:
        assert torch.equal(got[key], ref_state[key]), key
    assert any(not torch.equal(got[k], v) for k, v in after_nine.state_dict().items())


@pytest.mark.parametrize("field,value,error", [
    ("learning_rate", math.inf, ValueError), ("learning_rate", math.nan, ValueError),
    ("learning_rate", 0.0, ValueError),
    ("epochs", 10**9, ValueError), ("epochs", 2.0, TypeError), ("batch_size", True, TypeError),
    ("seed", 1.5, TypeError), ("seed", "0", TypeError), ("dequantize", "no", TypeError), ("progress", 0, TypeError),
    ("kl_weight", math.inf, ValueError), ("free_bits", -1.0, ValueError), ("lr_schedule", "linear", ValueError),
    ("kl_warmup_epochs", -1, ValueError),
])
def test_train_config_refuses_bad_settings_by_name(field, value, error):
    with pytest.raises(error, match=field):
        TrainConfig(**{field: value})


CONFIGS = [c for c in PUBLIC.values()
           if inspect.isclass(c) and dataclasses.is_dataclass(c) and c.__name__.endswith("Config")]


@pytest.mark.parametrize("config_class", CONFIGS, ids=lambda c: c.__name__)
def test_every_config_refuses_non_finite_numbers_and_fake_integers(config_class):
    """Every typed config dataclass: +inf and NaN in a float field, a float or a bool in an int field, are refused."""
    hints = typing.get_type_hints(config_class)
    checked = 0
    for f in dataclasses.fields(config_class):
        hint = hints[f.name]
        if hint is float:
            for bad in (math.inf, -math.inf, math.nan):
                with pytest.raises((ValueError, TypeError), match=f.name):
                    config_class(**{f.name: bad})
            checked += 1
        elif hint is int:
            for bad in (1.0, True, "1"):
                with pytest.raises(TypeError, match=f.name):
                    config_class(**{f.name: bad})
            checked += 1
        elif hint is bool:
            with pytest.raises(TypeError, match=f.name):
                config_class(**{f.name: "no"})
            checked += 1
    assert checked


def test_a_large_training_run_is_refused_before_the_first_step():
    model = VAE(VAEConfig(hidden=(8,)))
    before = _state(model)
    with pytest.raises(ValueError, match="optimiser steps"):
        fit(model, _digits(64), TrainConfig(epochs=10**6, batch_size=1, progress=False))
    _assert_same_state(model, before)


# ---------------------------------------------------------------------------------------------------------------
# 5. legal but extreme inputs: exact answers
# ---------------------------------------------------------------------------------------------------------------
def _kl_float64(mq, lq, mp, lp) -> torch.Tensor:
    """The closed form in float64 with the exact expm1 form, as the reference for float32 inputs."""
    mq, lq, mp, lp = (t.double() for t in (mq, lq, mp, lp))
    d = lq - lp
    return 0.5 * (torch.expm1(d) - d + (mq - mp) ** 2 * torch.exp(-lp)).sum(-1)


def test_the_kl_of_two_equal_narrow_gaussians_is_zero():
    for log_var in (-50.0, -100.0, -200.0, -1000.0):
        m, lv = torch.zeros(3), torch.full((3,), log_var)
        assert kl_diag_gaussians(m, lv, m, lv).item() == 0.0
        m1 = torch.full((3,), 0.3, requires_grad=True)
        lv1 = torch.full((3,), log_var, requires_grad=True)
        kl_diag_gaussians(m1, lv1, m1.detach(), lv1.detach()).backward()
        assert torch.equal(m1.grad, torch.zeros(3)) and torch.equal(lv1.grad, torch.zeros(3))


@settings(max_examples=200)
@given(mean_q=st.floats(-5, 5), mean_p=st.floats(-5, 5), log_var_q=st.floats(-150, 60), log_var_p=st.floats(-150, 60))
def test_kl_diag_gaussians_is_exact_for_extreme_log_variances(mean_q, mean_p, log_var_q, log_var_p):
    args = [torch.tensor([v], dtype=torch.float32) for v in (mean_q, log_var_q, mean_p, log_var_p)]
    got = kl_diag_gaussians(*args)
    want = _kl_float64(*args)
    assert not torch.isnan(got).any()
    if want.item() < 1e37:  # representable in float32: the answer to float32 precision
        torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-6)  # exp of a float32 exponent ~100
    else:
        assert got.item() == math.inf or got.item() > 1e37


@settings(max_examples=100)
@given(mean_q=st.floats(-3, 3), mean_p=st.floats(-3, 3), log_var_q=st.floats(-20, 20), log_var_p=st.floats(-20, 20))
def test_kl_diag_gaussians_agrees_with_torch_distributions(mean_q, mean_p, log_var_q, log_var_p):
    mq, lq, mp, lp = (torch.tensor([v], dtype=torch.float64) for v in (mean_q, log_var_q, mean_p, log_var_p))
    q = torch.distributions.Normal(mq, torch.exp(0.5 * lq))
    p = torch.distributions.Normal(mp, torch.exp(0.5 * lp))
    torch.testing.assert_close(kl_diag_gaussians(mq, lq, mp, lp), torch.distributions.kl_divergence(q, p).sum(-1),
                               rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------------------------------------------------------
# 6. the issue's examples, one bad argument among valid ones
# ---------------------------------------------------------------------------------------------------------------
def _issue_cases() -> dict[str, tuple[Callable[[], object], type, str]]:
    from vae_lib.collapse import mean_kl_per_dimension
    from vae_lib.estimators import standard_error
    from vae_lib.evaluation import log_evidence, nll_nats_per_image
    from vae_lib.generation import elbo_score, interpolate
    from vae_lib.quadrature import latent_grid, log_joint_on_grid, posterior_moments

    vae = VAE(VAEConfig(hidden=(8,)))
    grid = latent_grid(3.0, 5)
    empty = torch.zeros(0, 64)
    return {
        "levels 2.5 are not truncated": (lambda: log_joint_on_grid(vae, X + 0.5, grid), ValueError, "x"),
        "levels above n_levels": (lambda: log_joint_on_grid(vae, X + 17, grid), ValueError, "x"),
        "importance sampling of no rows": (
            lambda: vae_lib.log_marginal_importance(empty, vae, vae.prior, 4, generator=_gen()), ValueError, "x"),
        "log_evidence of no rows": (lambda: log_evidence(vae, empty, 4, generator=_gen()), ValueError, "x"),
        "nll of no rows": (lambda: nll_nats_per_image(vae, empty, 4, generator=_gen()), ValueError, "x_int"),
        "mean KL of no rows": (lambda: mean_kl_per_dimension(vae, empty), ValueError, "x"),
        "hole fraction of no points": (lambda: vae_lib.hole_fraction(torch.randn(5, 2), torch.zeros(0, 2)),
                                       ValueError, "z"),
        "standard error of one value": (lambda: standard_error(torch.ones(1, 3)), ValueError, "values"),
        "a log-density of another grid": (lambda: posterior_moments(torch.zeros(2, 24), grid), ValueError,
                                          "log_posterior"),
        "interpolation partners of two sizes": (lambda: interpolate(vae, X[0], X[1, :63]), ValueError, "x_b"),
        "Gaussians of two latent sizes": (
            lambda: kl_diag_gaussians(torch.zeros(3), torch.zeros(3), torch.zeros(2), torch.zeros(2)),
            ValueError, "mean_q"),
        "a tensor where a distribution goes": (
            lambda: vae_lib.elbo_evidence_minus_gap(torch.zeros(2), torch.zeros(2), vae.prior), TypeError,
            "posterior"),
        "a tensor where a model goes": (
            lambda: vae_lib.log_importance_weights(X, torch.zeros(2), vae.prior, 2, generator=_gen()), TypeError,
            "model"),
        "None where a config goes": (lambda: fit(vae, X, None), TypeError, "config"),
        "10**9 samples": (lambda: elbo_score(vae, X, 10**9, generator=_gen()), ValueError, "n_samples"),
        "a typo in a likelihood": (lambda: VAEConfig(likelihood="gausian"), ValueError, "likelihood"),
    }


ISSUE_CASES = _issue_cases()


@pytest.mark.parametrize("case", list(ISSUE_CASES))
def test_the_issue_examples_give_a_clear_error(case):
    call, error, name = ISSUE_CASES[case]
    with pytest.raises(error) as info:
        _call_with_deadline(call)
    assert _names_a_parameter(str(info.value), [name]), str(info.value)


def test_the_issue_examples_work_with_numpy_float64_on_every_model():
    """scikit-learn's digits as they come (float64 numpy) through fit, log_evidence and elbo_score."""
    from sklearn.datasets import load_digits

    from vae_lib.evaluation import log_evidence
    from vae_lib.generation import elbo_score

    data = load_digits().data[:32]  # float64 numpy, levels 0..16
    assert data.dtype == np.float64
    for model in (VAE(VAEConfig(hidden=(8,))), MixturePriorVAE(VAEConfig(hidden=(8,))), _vq()):
        fit(model, data, TrainConfig(epochs=1, batch_size=16, progress=False))
        if isinstance(model, VQVAE):
            got, want = model.log_evidence(data), model.log_evidence(torch.as_tensor(data, dtype=torch.float32))
        else:
            got = elbo_score(model, data, 2, generator=_gen())
            want = elbo_score(model, torch.as_tensor(data, dtype=torch.float32), 2, generator=_gen())
            if type(model) is VAE:
                assert torch.equal(log_evidence(model, data, 4, generator=_gen()),
                                   log_evidence(model, torch.as_tensor(data, dtype=torch.float32), 4,
                                                generator=_gen()))
        assert got.dtype == torch.float32 and torch.equal(got, want)
