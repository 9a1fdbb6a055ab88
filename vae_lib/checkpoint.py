"""Trained weights on disk, verified before use (chapter 7 ships a trained convolutional VAE).

A chapter that loads weights instead of training them must be sure they are the ones the text describes, and
loading must never run code from the file:

* :func:`save_checkpoint` writes ``model.state_dict()`` with ``torch.save`` and returns the file's SHA-256 digest,
  to be pinned next to the code that loads it. The archive is built in memory with torch's fixed inner name, so
  the digest depends on the weights only, not on the file's name (the same weights give the same digest).
* :func:`load_checkpoint` checks the digest *before* reading the file as a checkpoint, then loads it with
  ``torch.load(..., weights_only=True)``, which unpickles tensors and plain containers only (a file holding any
  other pickled object is refused, never executed), and checks that the tensors fit the model's architecture.
  Each failure says what went wrong and what to do: a missing file (how to regenerate it), a wrong digest
  (expected against actual), a file that is not a plain state dict, an architecture mismatch (missing and
  unexpected names, shapes that differ).
* :func:`sha256_file` is the streamed digest both use.
* :func:`checkpoint_file` says where a trained model's checkpoint lives, by default in :data:`CHECKPOINT_DIR`
  (:class:`vae_lib.trained.TrainedVAESpec`, the models chapters 7 and 8 load).
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

import torch
from torch import Tensor, nn

from ._checks import MissingFileError

__all__ = ["CHECKPOINT_DIR", "checkpoint_file", "load_checkpoint", "save_checkpoint", "sha256_file"]

#: Where the book's trained models live: book/checkpoints/ (chapters 7 and 8).
CHECKPOINT_DIR = Path(__file__).resolve().parents[1] / "book" / "checkpoints"

_CHUNK = 1 << 20  # bytes read at a time while hashing
M = TypeVar("M", bound=nn.Module)


def checkpoint_file(file_name: str, directory: str | os.PathLike[str] | None = None) -> Path:
    """Where the checkpoint ``file_name`` lives: in ``directory``, by default :data:`CHECKPOINT_DIR`."""
    if not isinstance(file_name, str) or not file_name:
        raise TypeError(f"file_name must be a non-empty str, got {file_name!r}")
    if directory is not None and not isinstance(directory, (str, os.PathLike)):
        raise TypeError(f"directory must be None, a str or a path, got {type(directory).__name__}")
    return Path(CHECKPOINT_DIR if directory is None else directory) / file_name


def _check_path(path: object) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    return Path(path)


def _check_model(model: object) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return model


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The SHA-256 hex digest (64 lowercase hex digits) of the file at ``path``, read in 1 MiB chunks."""
    path = _check_path(path)
    if not path.is_file():
        raise MissingFileError(f"path: no file at {path}")
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def save_checkpoint(model: nn.Module, path: str | os.PathLike[str], *, dtype: torch.dtype | None = None) -> str:
    """Write ``model.state_dict()`` to ``path`` with ``torch.save``; returns the file's SHA-256 hex digest.

    The file is written whole or not at all (a temporary file in the same directory, then renamed over ``path``);
    the parent directory must exist. The digest depends on the weights only (not on the file's name). ``dtype``
    (a floating dtype, e.g. ``torch.float16``, which halves a float32 file) stores every floating tensor rounded to
    it; :func:`load_checkpoint` casts them back to the model's dtype (chapter 8's digits models).
    """
    model = _check_model(model)
    path = _check_path(path)
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be None or a floating torch.dtype (e.g. torch.float16), got {dtype!r}")
    if not path.parent.is_dir():
        raise MissingFileError(f"the directory of path does not exist: {path.parent}")
    state = model.state_dict()
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)  # in memory: the archive's inner name is torch's fixed "archive"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buffer.getbuffer())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return sha256_file(path)


def _check_digest(sha256: object) -> str:
    if not isinstance(sha256, str):
        raise TypeError(f"sha256 must be a hex digest string, got {type(sha256).__name__}")
    digest = sha256.strip().lower()
    if len(digest) != 64 or any(ch not in "0123456789abcdef" for ch in digest):
        raise ValueError(f"sha256 must be 64 hexadecimal digits (a SHA-256 hex digest), got {sha256!r}")
    return digest


def _listed(items: list[str], limit: int = 12) -> str:
    """The first ``limit`` items, comma-separated, and how many more there are."""
    more = f", … ({len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _architecture_mismatch(model: nn.Module, state: Mapping[str, Tensor]) -> list[str]:
    """What keeps ``state`` from loading into ``model``: missing and unexpected names, shapes that differ."""
    expected = model.state_dict()
    problems = []
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing:
        problems.append(f"missing from the file: {_listed(missing)}")
    if unexpected:
        problems.append(f"in the file but not in the model: {_listed(unexpected)}")
    shapes = [f"{k}: file {tuple(state[k].shape)}, model {tuple(v.shape)}" for k, v in expected.items()
              if k in state and state[k].shape != v.shape]
    if shapes:
        problems.append(f"shapes differ: {_listed(shapes)}")
    return problems


def load_checkpoint(model: M, path: str | os.PathLike[str], sha256: str, *, regenerate_hint: str = "") -> M:
    """Load the weights at ``path`` into ``model`` once the file's SHA-256 equals ``sha256``; returns the model,
    in eval mode.

    Raises ``FileNotFoundError`` if the file is missing (with ``regenerate_hint``, e.g. "run python
    tools/train_faces.py", in the message); ``ValueError`` if its digest differs (the file is corrupted or not
    the expected one), if it is not a plain state dict of tensors (``torch.load(..., weights_only=True)`` refuses
    any other pickled object without running it), or if its tensors do not fit the model's architecture (missing
    or unexpected names, different shapes). The model is left untouched on every failure.
    """
    model = _check_model(model)
    path = _check_path(path)
    expected = _check_digest(sha256)
    if not isinstance(regenerate_hint, str):
        raise TypeError(f"regenerate_hint must be a str, got {type(regenerate_hint).__name__}")
    if not path.is_file():
        hint = f" To regenerate it: {regenerate_hint}." if regenerate_hint else ""
        raise MissingFileError(f"checkpoint not found: path {path}.{hint}")
    actual = sha256_file(path)
    if actual != expected:
        raise ValueError(f"checkpoint {path} has SHA-256 {actual}, expected {expected}: the file is corrupted or "
                         f"not the checkpoint this code expects (regenerate it, or update the pinned digest if "
                         f"the weights were retrained on purpose)")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"checkpoint {path} is not a file written by torch.save (not a zip archive)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(f"checkpoint {path} holds more than tensors and plain containers; refused to unpickle it "
                         f"(weights_only=True): {err}") from err
    except (RuntimeError, EOFError, ValueError) as err:
        raise ValueError(f"checkpoint {path} is not a file written by torch.save: {err}") from err
    if not isinstance(state, Mapping) or not all(isinstance(k, str) and isinstance(v, Tensor)
                                                 for k, v in state.items()):
        raise ValueError(f"checkpoint {path} must hold a state dict (parameter names -> tensors), "
                         f"got {type(state).__name__}")
    problems = _architecture_mismatch(model, state)
    if problems:
        raise ValueError(f"checkpoint {path} does not fit the architecture of {type(model).__name__}: "
                         + "; ".join(problems))
    model.load_state_dict(state, strict=True)
    return model.eval()
