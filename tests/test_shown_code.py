"""The code the book shows: every ``literalinclude`` in a chapter or page points at a file and object that exist.

Where a chapter teaches a computation it shows vae_lib's own source next to the maths with a MyST directive

    ```{literalinclude} ../vae_lib/elbo.py
    :pyobject: elbo_reconstruction_minus_kl
    ```

so the page cannot drift from the code. These tests fail when a shown file or object is renamed or removed (the
book build would only warn), when a chapter shows no vae_lib source at all, and when a shown line is longer than
the page's code box (about 80 characters) so the reader would have to scroll sideways.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
DIRECTIVE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{literalinclude\}[ \t]+(?P<path>\S+)[ \t]*\n"
                       r"(?P<options>(?:[ \t]*:[\w-]+:.*\n)*)", re.M)
OPTION = re.compile(r"^[ \t]*:(?P<name>[\w-]+):[ \t]*(?P<value>.*?)[ \t]*$", re.M)


def _pages() -> dict[str, str]:
    """The markdown of every page in book/: .md files and the markdown cells of the notebooks."""
    texts = {p.name: p.read_text(encoding="utf-8") for p in sorted(BOOK.glob("*.md"))}
    for path in sorted(BOOK.glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        texts[path.name] = "\n\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    return texts


def _includes() -> list[tuple[str, str, dict[str, str]]]:
    """(page, path as written, options) for every literalinclude directive in the book."""
    out = []
    for page, text in _pages().items():
        for match in DIRECTIVE.finditer(text + "\n"):
            options = {m["name"]: m["value"] for m in OPTION.finditer(match["options"])}
            out.append((page, match["path"], options))
    return out


def _find(source: str, dotted: str) -> ast.AST | None:
    """The function or class node ``dotted`` (``name`` or ``Class.method``) in the module source, looked up as
    Sphinx's :pyobject: does, or None."""
    node: ast.AST | None = None
    body = ast.parse(source).body
    for part in dotted.split("."):
        found = [n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                 and n.name == part]
        if not found:
            return None
        node = found[0]
        body = node.body
    return node


def _defines(source: str, dotted: str) -> bool:
    """Whether the module source defines the function or class ``dotted`` (``name`` or ``Class.method``), as
    Sphinx's :pyobject: looks it up."""
    return _find(source, dotted) is not None


INCLUDES = _includes()


def test_the_book_shows_code():
    assert len(INCLUDES) >= 7


@pytest.mark.parametrize(("page", "path", "options"), INCLUDES,
                         ids=[f"{p}:{o.get('pyobject', path)}" for p, path, o in INCLUDES])
def test_every_shown_file_and_object_exists(page, path, options):
    target = (BOOK / path).resolve()
    assert target.is_file(), f"{page}: literalinclude {path} does not exist (paths are relative to book/)"
    assert ROOT in target.parents, f"{page}: {path} is outside the repository"
    if "pyobject" in options:
        assert _defines(target.read_text(encoding="utf-8"), options["pyobject"]), (
            f"{page}: {path} defines no {options['pyobject']}")


def test_no_literalinclude_hides_in_a_code_cell():
    for path in sorted(BOOK.glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
        assert "{literalinclude}" not in code, path.name


@pytest.mark.parametrize("chapter", sorted(p.name for p in BOOK.glob("0[1-7]_*.ipynb")))
def test_every_chapter_shows_vae_lib_source(chapter):
    shown = [(path, o) for page, path, o in INCLUDES if page == chapter]
    vae_lib = [o["pyobject"] for path, o in shown if "vae_lib/" in path and "pyobject" in o]
    assert vae_lib, f"{chapter} shows no vae_lib function next to its maths (literalinclude with :pyobject:)"


def test_a_missing_object_is_caught():
    source = "def f():\n    pass\n\nclass C:\n    def m(self):\n        pass\n"
    assert _defines(source, "f") and _defines(source, "C") and _defines(source, "C.m")
    assert not _defines(source, "g") and not _defines(source, "C.n") and not _defines(source, "f.m")


SHOWN_WIDTH = 79  # the page's code box shows about 80 characters; longer lines scroll sideways


def _shown_lines(source: str, options: dict[str, str]) -> list[tuple[int, str]]:
    """(line number in the file, text) of the lines a literalinclude shows: the :pyobject: from its first
    decorator to its last line, then cut by :start-at: / :start-after: / :end-at: / :end-before: as Sphinx's
    LiteralIncludeReader does (the first line containing the text)."""
    lines = source.splitlines()
    numbered = list(enumerate(lines, start=1))
    if "pyobject" in options:
        node = _find(source, options["pyobject"])
        assert node is not None, options["pyobject"]
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        numbered = numbered[first - 1:node.end_lineno]
    for name, keep_match, from_start in (("start-at", True, True), ("start-after", False, True),
                                         ("end-at", True, False), ("end-before", False, False)):
        if name not in options:
            continue
        hits = [i for i, (_, text) in enumerate(numbered) if options[name] in text]
        assert hits, f":{name}: {options[name]!r} matches no shown line"
        i = hits[0]
        if from_start:
            numbered = numbered[i if keep_match else i + 1:]
        else:
            numbered = numbered[:i + 1 if keep_match else i]
    return numbered


@pytest.mark.parametrize(("page", "path", "options"), INCLUDES,
                         ids=[f"{p}:{o.get('pyobject', path)}" for p, path, o in INCLUDES])
def test_every_shown_line_fits_the_code_box(page, path, options):
    target = (BOOK / path).resolve()
    shown = _shown_lines(target.read_text(encoding="utf-8"), options)
    assert shown, f"{page}: {path} {options} shows no lines"
    where = f"{path.removeprefix('../')} {options.get('pyobject', '')}".strip()
    long = [f"{where} line {n} ({len(text)} chars): {text.strip()[:60]}" for n, text in shown
            if len(text) > SHOWN_WIDTH]
    assert not long, (f"{page} shows {len(long)} line(s) longer than {SHOWN_WIDTH} characters (the code box "
                      "scrolls sideways):\n" + "\n".join(long))


def test_shown_lines_follow_pyobject_and_start_at():
    source = ("import x\n\n\n@decorate\ndef f(a):\n    b = a\n    c = b\n    return c\n\n\n"
              "class C:\n    def m(self):\n        return 1\n")
    assert [n for n, _ in _shown_lines(source, {"pyobject": "f"})] == [4, 5, 6, 7, 8]
    assert [n for n, _ in _shown_lines(source, {"pyobject": "f", "start-at": "c = b"})] == [7, 8]
    assert [n for n, _ in _shown_lines(source, {"pyobject": "f", "start-after": "b = a"})] == [7, 8]
    assert [n for n, _ in _shown_lines(source, {"pyobject": "f", "end-before": "return"})] == [4, 5, 6, 7]
    assert [n for n, _ in _shown_lines(source, {"pyobject": "C.m"})] == [12, 13]
