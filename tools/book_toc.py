"""The book's table of contents, ``_toc.yml``, as the tests and tools read it: its pages in reading order.

``_toc.yml`` holds parts (Jupyter Book's ``parts:``): the chapters, numbered 1, 2, ..., and the appendix pages, not
numbered (Sphinx numbers the entries of a toctree, and each part is one). Every reader of the file goes through
these functions, so a change of its layout is made here once.
"""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _toc(root: Path = ROOT) -> dict:
    return yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))


def _files(part: dict) -> list[str]:
    return [entry["file"] for entry in part["chapters"]]


def landing_page(root: Path = ROOT) -> str:
    """The landing page (``root:``), e.g. ``book/intro``."""
    return _toc(root)["root"]


def files(root: Path = ROOT) -> list[str]:
    """Every page after the landing page, in reading order (paths without suffix, e.g. ``book/03_kl_gap``)."""
    return [f for part in _toc(root)["parts"] for f in _files(part)]


def chapters(root: Path = ROOT) -> list[str]:
    """The numbered pages (the parts with ``numbered: true``), in order: the chapters."""
    return [f for part in _toc(root)["parts"] if part.get("numbered") for f in _files(part)]


def appendix(root: Path = ROOT) -> list[str]:
    """The pages of the parts that are not numbered, in order."""
    return [f for part in _toc(root)["parts"] if not part.get("numbered") for f in _files(part)]
