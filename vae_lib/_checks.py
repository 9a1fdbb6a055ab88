"""Argument checks shared by the public functions of vae_lib.

Every public function validates its inputs with these helpers so that a reader who passes the
wrong thing gets a ``ValueError``/``TypeError`` that names the argument and says what was
expected, instead of a shape error from deep inside torch.

The layer has four kinds of check: tensors (:func:`as_tensor`: finite, number of dimensions, non-empty where an
average is taken; :func:`as_model_input` also converts numpy arrays, lists and float64/integer tensors to the dtype
of a model's parameters; :func:`check_same_shape`, :func:`check_broadcast` for shapes that must agree across
arguments), counts (:func:`check_count`: real integers with an upper bound, so an absurd count is refused up front
instead of hanging), plain numbers and flags of configs (:func:`check_real`, :func:`check_int`, :func:`check_bool`,
:func:`check_choice`), and objects (:func:`check_instance`, :func:`check_generator`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

import torch
from torch import Tensor, nn

#: The largest count (samples, steps, rows, grid points per axis...) any function accepts unless it states a smaller
#: bound: 10**9 samples would run for hours or exhaust memory, so such a count is refused before any work starts.
MAX_COUNT = 10**7

#: The dtypes a tensor argument may have: real floating or integer (converted), never bool or complex.
_DTYPES_THAT_WORK = "a real floating dtype (float16, bfloat16, float32, float64) or an integer dtype"


def as_tensor(name: str, value: object, *, ndim: int | None = None, min_ndim: int | None = None,
              dtype: torch.dtype | None = None, nonempty: bool = False) -> Tensor:
    """Return ``value`` as a floating tensor, checking its number of dimensions and finiteness.

    Tensors, numpy arrays, lists and numbers are accepted; ``dtype`` converts to that dtype (otherwise a floating
    tensor keeps its dtype and an integer one becomes the default dtype). ``nonempty`` refuses a tensor with no
    entries (a mean over it would be NaN, a sum over it a meaningless 0).
    """
    if isinstance(value, Tensor):
        t = value
    elif isinstance(value, numbers.Number) or hasattr(value, "__array__") or isinstance(value, (list, tuple)):
        try:
            t = torch.as_tensor(value)
            if dtype is not None and t.is_floating_point():
                # Python floats become float32 by default: convert them once, directly at the requested precision
                t = torch.as_tensor(value, dtype=dtype)
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(f"{name} must be a tensor or array of numbers, got {type(value).__name__}") from err
    else:
        raise TypeError(f"{name} must be a tensor or array of numbers, got {type(value).__name__}")
    if t.dtype == torch.bool or t.is_complex():
        raise TypeError(f"{name} must hold real numbers ({_DTYPES_THAT_WORK}), got dtype {t.dtype}")
    if dtype is not None:
        t = t.to(dtype)
    elif not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    if ndim is not None and t.dim() != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {tuple(t.shape)}")
    if min_ndim is not None and t.dim() < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s), got shape {tuple(t.shape)}")
    if nonempty and t.numel() == 0:
        raise ValueError(f"{name} must not be empty (an average over it is undefined), got shape {tuple(t.shape)}")
    if not _all_finite(t):
        raise NonFiniteError(f"{name} contains NaN or infinite values")
    return t


class MissingFileError(FileNotFoundError, ValueError):
    """A path argument names no file: a FileNotFoundError (what file code expects) that is also a ValueError (what
    vae_lib promises for bad input)."""


class NonFiniteError(ValueError):
    """A tensor holds NaN or ±inf: what :func:`as_tensor` raises (a ValueError, so callers need not know it).

    :func:`vae_lib.train.fit` tells it apart: raised by the model's own outputs after an optimiser step, it means the
    training diverged, not that the input was bad.
    """


def as_index_tensor(name: str, value: object, upper: int, *, floats_ok: bool = False, what: str = "indices") -> Tensor:
    """``value`` as an int64 tensor of integers in 0..``upper``−1 (pixel levels, code indices).

    An integer tensor, array or list is accepted; with ``floats_ok`` also floats that hold integers exactly (never
    truncated: 2.5 is refused, not read as 2). bool, complex, NaN and out-of-range values are refused.
    """
    if isinstance(value, Tensor):
        t = value
    else:
        try:
            t = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(f"{name} must be a tensor or array of integer {what}, got {type(value).__name__}") from err
    if t.dtype == torch.bool or t.is_complex() or (t.is_floating_point() and not floats_ok):
        kinds = "an integer dtype" + (" (or floats holding integers)" if floats_ok else "")
        raise TypeError(f"{name} must hold integer {what} ({kinds}), got dtype {t.dtype}")
    if t.is_floating_point():
        if not _all_finite(t):
            raise NonFiniteError(f"{name} contains NaN or infinite values")
        if not torch.equal(t, t.round()):
            raise ValueError(f"{name} must hold integer {what}, got non-integer values (they are never truncated)")
    if t.numel() and (bool((t < 0).any()) or bool((t >= upper).any())):
        raise ValueError(f"{name} must hold {what} in 0..{upper - 1}, got values from {t.min().item():g} "
                         f"to {t.max().item():g}")
    return t.long()


def model_dtype(module: nn.Module) -> torch.dtype:
    """The floating dtype of ``module``'s parameters (the default dtype when it has none)."""
    for p in module.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.get_default_dtype()


def as_model_input(name: str, value: object, module: nn.Module, *, ndim: int | None = None,
                   min_ndim: int | None = None, nonempty: bool = True) -> Tensor:
    """``value`` (a tensor, numpy array or list) as a tensor in the dtype of ``module``'s parameters.

    Like scikit-learn's ``check_array``, numbers arrive converted: a float64 array (what numpy and scikit-learn
    produce) or an integer one becomes the network's dtype (float32 for every model of the book), so
    ``model.encode(load_digits().data)`` works; bool and complex inputs are refused with a TypeError naming
    ``name`` and the dtypes that work. A tensor already in the right dtype is returned as it is (no copy).
    """
    return as_tensor(name, value, ndim=ndim, min_ndim=min_ndim, dtype=model_dtype(module), nonempty=nonempty)


def check_same_shape(names: tuple[str, str], a: Tensor, b: Tensor) -> Tensor:
    """Raise unless ``a`` and ``b`` have exactly the same shape (no broadcasting), naming both arguments."""
    if a.shape != b.shape:
        raise ValueError(f"{names[0]} (shape {tuple(a.shape)}) and {names[1]} (shape {tuple(b.shape)}) must have "
                         f"the same shape")
    return b


def _all_finite(t: Tensor) -> bool:
    """True when no entry of the floating tensor ``t`` is NaN or ±inf.

    The minimum and maximum carry a NaN (both propagate it) or an infinity if any entry has one; one fused reduction
    is about 8 times faster than ``torch.isfinite(t).all()`` (no boolean copy of ``t``), which matters in training
    loops, where every batch's network outputs pass through these checks.
    """
    if t.numel() == 0:
        return True
    with torch.no_grad():
        low, high = torch.aminmax(t.detach())
    return math.isfinite(low.item()) and math.isfinite(high.item())


def check_positive(name: str, t: Tensor) -> Tensor:
    """Raise unless every entry of ``t`` is strictly positive."""
    if not (t > 0).all():
        raise ValueError(f"{name} must be strictly positive, got minimum {t.min().item():.4g}")
    return t


def check_count(name: str, value: object, minimum: int = 1, maximum: int = MAX_COUNT) -> int:
    """Raise unless ``value`` is an integer in [``minimum``, ``maximum``] (a sample count, a number of epochs...).

    The upper bound (:data:`MAX_COUNT` unless the caller states a smaller one) refuses an absurd count up front,
    with the bound in the message, instead of running for hours or exhausting memory.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if value > maximum:
        raise ValueError(f"{name} must be <= {maximum} (a larger count would run for too long or exhaust memory), "
                         f"got {value}")
    return int(value)


def check_int(name: str, value: object) -> int:
    """Raise unless ``value`` is a real integer (not a bool, not a float holding an integer): a seed, an index."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    return int(value)


def check_real(name: str, value: object, *, minimum: float | None = None, maximum: float | None = None,
               above: float | None = None, below: float | None = None) -> float:
    """Raise unless ``value`` is a finite real number (not a bool) within the given bounds; return it as a float.

    ``minimum``/``maximum`` are inclusive bounds, ``above``/``below`` strict ones. Comparisons are written so that
    NaN and ±inf never pass (``not x > 0`` alone lets +inf through).
    """
    if isinstance(value, Tensor) and value.numel() == 1 and not (value.dtype == torch.bool or value.is_complex()):
        value = value.item()  # a one-element tensor (e.g. a mean computed in torch) is a number
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None and not value >= minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and not value <= maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    if above is not None and not value > above:
        raise ValueError(f"{name} must be > {above}, got {value}")
    if below is not None and not value < below:
        raise ValueError(f"{name} must be < {below}, got {value}")
    return value


def check_bool(name: str, value: object) -> bool:
    """Raise unless ``value`` is True or False (a string such as ``'no'`` is truthy and would mean True)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def check_choice(name: str, value: object, choices: tuple) -> object:
    """Raise unless ``value`` is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_instance(name: str, value: object, types: type | tuple[type, ...], what: str = "") -> object:
    """Raise a TypeError naming ``name`` unless ``value`` is an instance of ``types`` (``what`` describes them)."""
    if not isinstance(value, types):
        if not what:
            kinds = types if isinstance(types, tuple) else (types,)
            what = " or ".join(f"{t.__module__}.{t.__qualname__}".replace("builtins.", "") for t in kinds)
        raise TypeError(f"{name} must be {what}, got {type(value).__name__}")
    return value


def check_last_dim(name: str, t: Tensor, size: int, what: str = "") -> Tensor:
    """Raise unless the last dimension of ``t`` has ``size`` entries."""
    if t.dim() == 0 or t.shape[-1] != size:
        extra = f" ({what})" if what else ""
        raise ValueError(f"{name} must have last dimension {size}{extra}, got shape {tuple(t.shape)}")
    return t


def check_broadcast(names: tuple[str, str], a: Tensor, b: Tensor) -> torch.Size:
    """Return the broadcast shape of ``a`` and ``b``, or raise naming both arguments."""
    try:
        return torch.broadcast_shapes(a.shape, b.shape)
    except RuntimeError as err:
        raise ValueError(
            f"{names[0]} (shape {tuple(a.shape)}) and {names[1]} (shape {tuple(b.shape)}) do not broadcast"
        ) from err


def check_mapping(name: str, value: object, *, nonempty: bool = True) -> Mapping:
    """Raise unless ``value`` is a mapping (a dict of named panels, curves, histories) with string keys."""
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict from names (str) to values, got {type(value).__name__}")
    if nonempty and not value:
        raise ValueError(f"{name} must hold at least one entry, got an empty {type(value).__name__}")
    for key in value:
        if not isinstance(key, str):
            raise TypeError(f"{name} must have string keys (the names shown in the figure), got {key!r}")
    return value


def check_tensor_mapping(name: str, value: object, *, ndim: int | None = None, min_ndim: int | None = None,
                         nonempty: bool = True) -> dict[str, Tensor]:
    """A mapping name -> tensor (or array) with each value checked by :func:`as_tensor` as ``name[key]``."""
    check_mapping(name, value)
    return {key: as_tensor(f"{name}[{key!r}]", v, ndim=ndim, min_ndim=min_ndim, nonempty=nonempty)
            for key, v in value.items()}


def check_sequence(name: str, value: object, *, nonempty: bool = True) -> list:
    """Raise unless ``value`` is a list, tuple or 1-D tensor/array (not a string); return it as a list."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, range, Tensor)) and not (
            hasattr(value, "__array__") and hasattr(value, "__len__")):
        raise TypeError(f"{name} must be a list or tuple, got {type(value).__name__}")
    if getattr(value, "ndim", 1) != 1:
        raise TypeError(f"{name} must be a list, tuple or 1-D array, got {value.ndim} dimensions")
    items = list(value.tolist() if isinstance(value, Tensor) or hasattr(value, "tolist") else value)
    if nonempty and not items:
        raise ValueError(f"{name} must hold at least one entry, got an empty {type(value).__name__}")
    return items


def check_numbers(name: str, value: object, *, nonempty: bool = True) -> list[float]:
    """A list or tuple of finite real numbers (sample sizes, angles, shifts), as a list of floats."""
    items = check_sequence(name, value, nonempty=nonempty)
    for i, v in enumerate(items):
        check_real(f"{name}[{i}]", v)
    return [float(v) for v in items]


def check_text(name: str, value: object) -> str:
    """Raise unless ``value`` is a str (a title, a label)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    return value


def check_sizes(name: str, value: object, length: int) -> tuple[int, ...]:
    """A tuple of ``length`` positive integers (an image's (H, W), a window's shape)."""
    if not isinstance(value, (tuple, list)) or len(value) != length:
        raise TypeError(f"{name} must be a tuple of {length} positive integers, got {value!r}")
    return tuple(check_count(f"{name}[{i}]", v) for i, v in enumerate(value))


def check_range(name: str, value: object) -> tuple[float, float]:
    """A pair (low, high) of finite numbers with low < high (an axis range, a z range)."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name} must be a pair (low, high) of numbers, got {value!r}")
    low, high = check_real(f"{name}[0]", value[0]), check_real(f"{name}[1]", value[1])
    if not low < high:
        raise ValueError(f"{name} must have low < high, got {value!r}")
    return low, high


def check_latent_model(name: str, model: object) -> object:
    """Raise unless ``model`` is a latent-variable model: a ``prior`` (a torch distribution p(z)) and a callable
    ``log_likelihood(x, z)`` (the interface of :class:`vae_lib.elbo.LatentVariableModel`)."""
    prior = getattr(model, "prior", None)
    if not isinstance(prior, torch.distributions.Distribution) or not callable(getattr(model, "log_likelihood", None)):
        raise TypeError(f"{name} must be a latent-variable model with a prior (a torch distribution) and "
                        f"log_likelihood(x, z) (a vae_lib.VAE, a toy model), got {type(model).__name__}")
    return model


def check_generator(generator: object) -> torch.Generator:
    """Raise unless ``generator`` is a ``torch.Generator`` (randomness always enters as an argument)."""
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    return generator
