"""The chapters' first cell installs vae_lib where it is missing (Colab) and does nothing where it is installed."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import install_cell  # noqa: E402

# Runs the cell with subprocess.run recorded instead of called, and prints the recorded commands as JSON.
RECORDER = """
import json, subprocess, sys
calls = []
subprocess.run = lambda cmd, **kwargs: calls.append({"cmd": cmd, "check": kwargs.get("check")})
exec(compile(open(sys.argv[1]).read(), "install-cell", "exec"), {"__name__": "__main__"})
print(json.dumps(calls))
"""


def _run_cell(python: str, tmp_path: Path) -> list[dict]:
    cell = tmp_path / "cell.py"
    cell.write_text(install_cell.cell_source(), encoding="utf-8")
    recorder = tmp_path / "recorder.py"
    recorder.write_text(RECORDER, encoding="utf-8")
    out = subprocess.run([python, str(recorder), str(cell)], cwd=tmp_path, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("path", install_cell.chapters(), ids=lambda p: p.name)
def test_every_chapter_starts_with_the_hidden_install_cell(path: Path) -> None:
    first = nbformat.read(path, as_version=4).cells[0]
    assert first.cell_type == "code"
    assert first.source == install_cell.cell_source(), "run: python tools/install_cell.py"
    assert "remove-cell" in first.metadata.get("tags", []), "the install cell must be hidden in the book"


def test_chapters_are_the_toc_notebooks() -> None:
    assert [p.name for p in install_cell.chapters()] == sorted(p.name for p in (ROOT / "book").glob("0*.ipynb"))


def test_cell_installs_from_the_configured_repository_where_vae_lib_is_missing(tmp_path: Path) -> None:
    env_dir = tmp_path / "bare"
    venv.EnvBuilder(with_pip=False, system_site_packages=False).create(env_dir)
    python = env_dir / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    probe = subprocess.run([str(python), "-c", "import vae_lib"], cwd=tmp_path, capture_output=True)
    assert probe.returncode != 0, "the bare environment must not see vae_lib"

    calls = _run_cell(str(python), tmp_path)

    url = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["repository"]["url"].rstrip("/")
    assert url.startswith("https://github.com/")
    assert calls == [{"cmd": [str(python), "-m", "pip", "install", "-q", f"git+{url}"], "check": True}]


def test_cell_does_nothing_where_vae_lib_is_installed(tmp_path: Path) -> None:
    assert _run_cell(sys.executable, tmp_path) == []
