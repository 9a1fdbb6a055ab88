"""How readers meet the book: launch buttons, Binder, the Pages workflow and the references (no build needed).

Checks the invariants that keep these files consistent with each other: the Binder requirements are the
reader's requirements plus torch's CPU build; the top-level requirements install here (no index line); the
repository's address is written once, in _config.yml; the Pages workflow runs the README's build command; every
citation in the book has a bibliography entry with the right authors, year and venue.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from pybtex.database import parse_file

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
INDEX_OPTIONS = ("--index-url", "--extra-index-url", "-i ", "--find-links", "-f ", "--no-index")
CITE_ROLE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]*)`")


# ---------------------------------------------------------------- helpers


def _lines(path: Path) -> list[str]:
    """The non-empty, comment-free lines of a requirements file."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if line:
            out.append(line)
    return out


def _expand(path: Path) -> list[tuple[Path, str]]:
    """Every line of a requirements file with nested ``-r`` files expanded, as pip reads them.

    pip resolves a nested ``-r`` relative to the file that contains it. Returns (file, line) pairs.
    """
    out = []
    for line in _lines(path):
        if line.startswith(("-r ", "--requirement ")):
            nested = (path.parent / line.split(None, 1)[1]).resolve()
            assert nested.is_file(), f"{path.name}: {line!r} does not resolve (relative to {path.parent})"
            out.extend(_expand(nested))
        else:
            out.append((path, line))
    return out


def _requirements(pairs: list[tuple[Path, str]]) -> dict[str, Requirement]:
    """Name -> requirement for the package lines (options and editable installs left out)."""
    reqs: dict[str, list[Requirement]] = {}
    for _, line in pairs:
        if not line.startswith("-"):
            req = Requirement(line)
            reqs.setdefault(req.name.lower(), []).append(req)
    return {name: Requirement(f"{name}{SpecifierSet(','.join(str(r.specifier) for r in rs))}")
            for name, rs in reqs.items()}


def _config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))


def _workflow() -> dict:
    data = yaml.safe_load((ROOT / ".github" / "workflows" / "pages.yml").read_text(encoding="utf-8"))
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as the boolean True
    return data


def _steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def _book_markdown() -> dict[str, str]:
    """The markdown of every page in book/: .md files and the markdown cells of the notebooks."""
    texts = {p.name: p.read_text(encoding="utf-8") for p in BOOK.glob("*.md")}
    for nb_path in BOOK.glob("*.ipynb"):
        nb = nbformat.read(nb_path, as_version=4)
        texts[nb_path.name] = "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    return texts


def _cited_keys(text: str) -> list[str]:
    return [key.strip() for keys in CITE_ROLE.findall(text) for key in keys.split(",") if key.strip()]


@pytest.fixture(scope="module")
def bib():
    return parse_file(str(BOOK / "references.bib"), bib_format="bibtex")


# ---------------------------------------------------------------- requirements and Binder


def test_top_level_requirements_pin_torch_and_install_without_an_index():
    for name in ("requirements.txt", "requirements-book.txt", "requirements-dev.txt"):
        pairs = _expand(ROOT / name)
        options = [line for _, line in pairs if line.startswith(INDEX_OPTIONS)]
        assert options == [], f"{name} must install on machines without PyTorch's index: {options}"
        assert CPU_INDEX not in (ROOT / name).read_text(encoding="utf-8")
    reqs = _requirements(_expand(ROOT / "requirements.txt"))
    assert str(reqs["torch"].specifier) == "==2.13.0"
    assert "-e ." in _lines(ROOT / "requirements.txt"), "the reader's requirements install vae_lib itself"


def _package_requirements() -> dict[str, Requirement]:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    return {Requirement(d).name.lower(): Requirement(d) for d in deps}


def test_package_metadata_states_ranges_that_hold_the_books_pins():
    """pyproject.toml: a range for torch (any 2.x from 2.2, CPU or CUDA build, not 3), and every range holds the
    version requirements.txt pins; requirements.txt holds every package vae_lib depends on."""
    package = _package_requirements()
    torch = package["torch"].specifier
    for version in ("2.13.0", "2.13.0+cpu", "2.2.0", "2.5.1", "2.8.0+cu126", "2.99.0"):
        assert torch.contains(version), (str(torch), version)
    for version in ("2.1.2", "3.0.0", "1.13.1"):
        assert not torch.contains(version), (str(torch), version)
    top = _requirements(_expand(ROOT / "requirements.txt"))
    assert set(package) <= set(top), f"requirements.txt misses {set(package) - set(top)}"
    for name, req in top.items():
        pins = [s.version for s in req.specifier if s.operator == "=="]
        for pin in pins:
            if name in package:
                assert package[name].specifier.contains(pin), (name, str(package[name].specifier), pin)


def _fake_distribution(site_packages: Path, name: str, version: str) -> None:
    """An installed distribution as pip sees it (a .dist-info folder), without its files."""
    info = site_packages / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8")
    (info / "INSTALLER").write_text("pip\n", encoding="utf-8")
    (info / "RECORD").write_text("", encoding="utf-8")


# vae_lib's other dependencies at versions inside pyproject.toml's ranges, as an existing environment holds them
OTHERS = {"numpy": "1.26.4", "plotly": "6.0.0", "ipywidgets": "8.1.5", "anywidget": "0.9.13", "tqdm": "4.67.1",
          "scikit-learn": "1.6.1"}


@pytest.fixture(scope="module")
def vae_lib_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from this pyproject.toml (its metadata is what pip reads; the package is a stub)."""
    src = tmp_path_factory.mktemp("vae_lib_src")
    shutil.copy(ROOT / "pyproject.toml", src / "pyproject.toml")
    shutil.copy(ROOT / "README.md", src / "README.md")
    (src / "vae_lib").mkdir()
    (src / "vae_lib" / "__init__.py").write_text("", encoding="utf-8")
    out = tmp_path_factory.mktemp("wheel")
    # --no-build-isolation: this environment's setuptools (offline); --isolated: no pip configuration of the machine
    proc = subprocess.run([sys.executable, "-m", "pip", "--isolated", "wheel", "--no-deps", "--no-index",
                           "--no-build-isolation", "-q", "-w", str(out), str(src)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = out.glob("vae_lib-*.whl")
    return wheel


def _pip_plan(tmp_path: Path, wheel: Path, torch_version: str) -> tuple[subprocess.CompletedProcess, dict]:
    """What ``pip install <vae_lib>`` would do in a fresh venv that holds torch ``torch_version`` and vae_lib's other
    dependencies (offline: no index, no configuration; ``--dry-run --report``)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    for name, version in {"torch": torch_version, **OTHERS}.items():
        _fake_distribution(site, name, version)
    report = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-m", "pip", "--isolated", "--python", str(python), "install",
                           "--no-index", "--dry-run", "--report", str(report), str(wheel)],
                          capture_output=True, text=True)
    return proc, (json.loads(report.read_text(encoding="utf-8")) if proc.returncode == 0 else {})


@pytest.mark.slow  # a venv and pip's resolver: several seconds each
@pytest.mark.parametrize("torch_version", ["2.5.0", "2.8.0+cu126"])
def test_installing_vae_lib_keeps_the_torch_an_environment_already_has(tmp_path, vae_lib_wheel, torch_version):
    """Colab holds its own torch 2.x (a CUDA build): pip installing vae_lib there installs vae_lib only.

    With the exact pin pyproject.toml once had (torch==2.13.0) pip must replace torch: offline it finds no
    torch 2.13.0 and fails, and online it would download one."""
    proc, report = _pip_plan(tmp_path, vae_lib_wheel, torch_version)
    assert proc.returncode == 0, f"pip would not keep torch {torch_version}:\n{proc.stdout}{proc.stderr}"
    assert [item["metadata"]["name"] for item in report["install"]] == ["vae_lib"]


@pytest.mark.slow
def test_installing_vae_lib_next_to_a_torch_older_than_its_range_asks_for_another(tmp_path, vae_lib_wheel):
    proc, _ = _pip_plan(tmp_path, vae_lib_wheel, "1.13.1")
    assert proc.returncode != 0, proc.stdout
    assert "vae-lib 0.1.0 depends on torch" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_binder_installs_the_readers_requirements_plus_torchs_cpu_build():
    binder = ROOT / "binder" / "requirements.txt"
    own = _lines(binder)
    assert f"--extra-index-url {CPU_INDEX}" in own or f"--index-url {CPU_INDEX}" in own
    assert "-r ../requirements.txt" in own  # resolved relative to binder/: the top-level file
    pairs = _expand(binder)
    top = {line for _, line in _expand(ROOT / "requirements.txt")}
    assert top <= {line for _, line in pairs}, "Binder must install every line of the reader's requirements"
    torch = _requirements(pairs)["torch"]
    assert torch.specifier.contains("2.13.0+cpu") and not torch.specifier.contains("2.13.0+cu126"), torch
    assert not torch.specifier.contains("2.12.0+cpu")


# what only building the book or running the tests needs: a reader's notebook (and Binder) never imports these
BUILD_AND_TEST_ONLY = {"jupyter-book", "django-static-mathjax", "sphinx", "myst-nb", "pytest", "pytest-xdist", "nbval",
                       "hypothesis", "playwright", "ruff", "scipy"}


def test_requirements_are_layered_reader_then_book_then_tests():
    """requirements.txt (the reader and Binder) < requirements-book.txt (the build) < requirements-dev.txt (tests)."""
    reader = _requirements(_expand(ROOT / "requirements.txt"))
    book = _requirements(_expand(ROOT / "requirements-book.txt"))
    dev = _requirements(_expand(ROOT / "requirements-dev.txt"))
    assert "-r requirements.txt" in _lines(ROOT / "requirements-book.txt")
    assert "-r requirements-book.txt" in _lines(ROOT / "requirements-dev.txt")
    assert set(reader) < set(book) < set(dev)
    assert {"jupyter-book", "django-static-mathjax"} <= set(book) - set(reader)
    assert {"pytest", "nbval", "playwright"} <= set(dev) - set(book)
    # JupyterLab and the extension that renders the chapters' MyST (admonitions, maths, cross-references) in it
    assert {"jupyterlab", "jupyterlab-myst", "ipykernel"} <= set(reader)


def test_binder_installs_only_what_a_readers_notebook_needs():
    binder = _requirements(_expand(ROOT / "binder" / "requirements.txt"))
    assert set(binder) & BUILD_AND_TEST_ONLY == set(), sorted(set(binder) & BUILD_AND_TEST_ONLY)
    assert {"torch", "jupyterlab", "jupyterlab-myst", "anywidget", "plotly"} <= set(binder)


@pytest.mark.slow  # imports torch in a new process
def test_binder_start_caps_torchs_threads_and_starts_the_server(tmp_path):
    """repo2docker runs binder/start before the server: one OpenMP/MKL thread, then the server's own command."""
    start = ROOT / "binder" / "start"
    assert start.read_text(encoding="utf-8").startswith("#!/bin/bash\n")
    assert os.access(start, os.X_OK), "binder/start must be executable (git: mode 100755)"
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash to run binder/start")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    probe = ("import os, torch; print(os.environ['OMP_NUM_THREADS'], os.environ['MKL_NUM_THREADS'], "
             "torch.get_num_threads())")
    proc = subprocess.run([bash, str(start), sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1", "1", "1"]


def test_binder_editable_install_resolves_from_the_repository_root():
    """repo2docker runs ``pip install -r binder/requirements.txt`` in the repository root, and pip reads ``-e .``
    relative to that working directory (not to the requirements file): the root must be the package."""
    editable = [(path, line) for path, line in _expand(ROOT / "binder" / "requirements.txt") if line.startswith("-e ")]
    assert [line for _, line in editable] == ["-e ."]
    assert (ROOT / "pyproject.toml").is_file() and (ROOT / "vae_lib" / "__init__.py").is_file()


def test_binder_pins_python_311():
    assert (ROOT / "binder" / "runtime.txt").read_text(encoding="utf-8").strip() == "python-3.11"


def test_cpu_index_appears_only_in_binder_and_the_pages_workflow():
    allowed = {ROOT / "binder" / "requirements.txt", ROOT / ".github" / "workflows" / "pages.yml"}
    candidates = [*ROOT.glob("*.txt"), *ROOT.glob("*.toml"), *ROOT.glob("*.cfg"), *(ROOT / "binder").iterdir(),
                  *(ROOT / ".github" / "workflows").iterdir(), *(ROOT / ".ci").iterdir()]
    holders = {p for p in candidates if p.is_file() and CPU_INDEX in p.read_text(encoding="utf-8")}
    assert holders == allowed


# ---------------------------------------------------------------- _config.yml: repository and launch buttons


def test_repository_is_one_github_url_on_main_without_path_to_book():
    repo = _config()["repository"]
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", repo["url"]), repo["url"]
    assert repo["branch"] == "main"
    assert "path_to_book" not in repo  # with it, Binder links pointed at ./book/...


def test_repository_url_is_written_once_in_the_files_the_build_and_binder_read():
    url = _config()["repository"]["url"]
    files = [ROOT / "_config.yml", ROOT / "_toc.yml", *BOOK.glob("*.md"), *BOOK.glob("*.ipynb"),
             *(ROOT / "binder").iterdir(), *(ROOT / ".github" / "workflows").iterdir()]
    # a chapter's first cell installs vae_lib from it: that cell is generated from _config.yml by tools/install_cell.py
    # (tests/test_install_cell.py checks it is the generated one), so it is not a second place the address is written
    def generated(path: Path) -> int:
        if path.suffix != ".ipynb":
            return 0
        cells = nbformat.read(path, as_version=4).cells
        return sum(c.source.count(url) for c in cells if "install-vae-lib" in c.metadata.get("tags", []))

    counts = {p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8").count(url) - generated(p) for p in files}
    assert {k: v for k, v in counts.items() if v} == {"_config.yml": 1}
    # book/intro.md reaches it through the YAML anchor, as a MyST substitution
    assert _config()["parse"]["myst_substitutions"]["repository_url"] == url
    assert "substitution" in _config()["parse"]["myst_enable_extensions"]
    intro = (BOOK / "intro.md").read_text(encoding="utf-8")
    assert re.search(r"\{\{[^}]*\brepository_url\b[^}]*\}\}", intro), "intro.md's Colab line"


def test_launch_buttons_binder_and_colab_without_thebe():
    config = _config()
    launch = config["launch_buttons"]
    assert launch["binderhub_url"] == "https://mybinder.org"
    assert launch["colab_url"] == "https://colab.research.google.com"
    assert launch["notebook_interface"] == "jupyterlab"
    # sphinx-thebe loads thebe from a CDN and its scripts are dropped from the page (_ext/static_page.py)
    assert launch.get("thebe") is False
    assert config["html"]["use_repository_button"] is True and config["html"]["use_issues_button"] is True


def test_every_chapter_is_a_notebook_so_it_gets_launch_buttons():
    sys.path.insert(0, str(ROOT / "tools"))
    import book_toc

    chapters, appendices = book_toc.chapters(), book_toc.appendix()
    for name in chapters:
        assert (ROOT / f"{name}.ipynb").is_file(), f"{name} is not a notebook: no Binder/Colab button"
    assert appendices == ["book/common_mistakes", "book/glossary", "book/references"]  # pages, not notebooks
    assert all((ROOT / f"{name}.md").is_file() for name in appendices)
    assert book_toc.files() == chapters + appendices  # the chapters first, numbered; then the appendix


def test_the_chapters_are_numbered_and_the_appendix_is_not():
    """Sphinx numbers the entries of a numbered toctree: the chapters are one part, numbered; the appendix pages
    another, not numbered (with one numbered list they were chapters 8-10). The built pages' numbers are checked in
    tests/test_browser.py."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    assert "options" not in toc and "chapters" not in toc, "one list for all pages would number the appendix too"
    numbered = [part for part in toc["parts"] if part.get("numbered")]
    assert len(numbered) == 1 and numbered[0] is toc["parts"][0] and numbered[0]["numbered"] is True


# ---------------------------------------------------------------- the GitHub Pages workflow


def test_pages_workflow_builds_on_push_to_main_with_python_311():
    workflow = _workflow()
    assert workflow["on"]["push"]["branches"] == ["main"]
    python = [s["with"]["python-version"] for s in _steps(workflow)
              if s.get("uses", "").startswith("actions/setup-python")]
    assert python == ["3.11"]  # a string: an unquoted 3.11 is read as 3.11 the float, and 3.10 as 3.1


def test_pages_workflow_installs_with_the_cpu_index_and_builds_with_the_readme_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    readme_build = re.search(r"jupyter-book build [^\n&`]*", readme)
    assert readme_build, "README.md has no jupyter-book build command"
    runs = [shlex.split(s["run"]) for s in _steps(_workflow()) if "run" in s]
    assert shlex.split(readme_build.group(0).strip()) in runs
    installs = [r for r in runs if "install" in r and "pip" in r]
    assert len(installs) == 1
    install = installs[0]
    assert install[install.index("--extra-index-url") + 1] == CPU_INDEX
    assert install[install.index("-r") + 1] == "requirements-book.txt"
    # the README's Linux install line for the build is the same command
    assert f"pip install --extra-index-url {CPU_INDEX} -r requirements-book.txt" in readme


def test_pages_workflow_publishes_the_built_html_with_the_pages_actions():
    workflow = _workflow()
    assert workflow["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
    assert workflow["concurrency"]["group"] and workflow["concurrency"]["cancel-in-progress"] is False
    build_steps = workflow["jobs"]["build"]["steps"]
    uses = [s.get("uses", "").split("@")[0] for s in build_steps]
    build_index = next(i for i, s in enumerate(build_steps) if "jupyter-book build" in s.get("run", ""))
    upload_index = uses.index("actions/upload-pages-artifact")
    assert "actions/configure-pages" in uses and build_index < upload_index
    assert build_steps[upload_index]["with"]["path"] == "_build/html"
    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == "build" and deploy["environment"]["name"] == "github-pages"
    assert [s["uses"].split("@")[0] for s in deploy["steps"]] == ["actions/deploy-pages"]


# ---------------------------------------------------------------- references


# key: (authors' surnames, year, a word of the venue)
REQUIRED = {
    "kingma2014": (["Kingma", "Welling"], "2014", "ICLR"),
    "rezende2014": (["Rezende", "Mohamed", "Wierstra"], "2014", "ICML"),
    "burda2016": (["Burda", "Grosse", "Salakhutdinov"], "2016", "ICLR"),
    "vandenoord2017": (["van den Oord", "Vinyals", "Kavukcuoglu"], "2017", "NeurIPS"),
    "razavi2019": (["Razavi", "van den Oord", "Vinyals"], "2019", "NeurIPS"),
    "higgins2017": (["Higgins", "Matthey", "Pal", "Burgess", "Glorot", "Botvinick", "Mohamed", "Lerchner"],
                        "2017", "ICLR"),
    "doersch2016": (["Doersch"], "2016", "1606.05908"),
    "kingma2016": (["Kingma", "Salimans", "Jozefowicz", "Chen", "Sutskever", "Welling"], "2016", "NeurIPS"),
    "cremer2018": (["Cremer", "Li", "Duvenaud"], "2018", "ICML"),
    "williams1992": (["Williams"], "1992", "Machine Learning"),
    "bowman2016": (["Bowman", "Vilnis", "Vinyals", "Dai", "Jozefowicz", "Bengio"], "2016", "CoNLL"),
    "rainforth2018": (["Rainforth", "Kosiorek", "Le", "Maddison", "Igl", "Wood", "Teh"], "2018", "ICML"),
    "tucker2019": (["Tucker", "Lawson", "Gu", "Maddison"], "2019", "ICLR"),
    "rezende2015": (["Rezende", "Mohamed"], "2015", "ICML"),
    "dinh2017": (["Dinh", "Sohl-Dickstein", "Bengio"], "2017", "ICLR"),
}


@pytest.mark.parametrize("key", sorted(REQUIRED))
def test_bibliography_has_the_papers_with_authors_year_and_venue(bib, key):
    authors, year, venue = REQUIRED[key]
    entry = bib.entries[key]
    surnames = [" ".join(p.prelast_names + p.last_names) for p in entry.persons["author"]]
    assert surnames == authors
    assert entry.fields["year"] == year
    where = " ".join(entry.fields.get(f, "") for f in ("booktitle", "journal", "eprint"))
    assert venue in where, (key, where)


def test_the_five_sources_are_misc_entries_numbered_like_the_chapters_call_them(bib):
    seeds = sorted(k for k in bib.entries if k.startswith("seed"))
    assert seeds == [f"seed00{i}" for i in range(5)]
    for key in seeds:
        entry = bib.entries[key]
        assert entry.type == "misc" and entry.fields["title"]
        assert f"Source write-up {key[4:]}" in entry.fields["note"]


def test_every_citation_in_the_book_has_an_entry(bib):
    cited = {name: _cited_keys(text) for name, text in _book_markdown().items()}
    missing = {name: sorted(set(keys) - set(bib.entries)) for name, keys in cited.items()}
    assert {name: keys for name, keys in missing.items() if keys} == {}
    assert sum(map(len, cited.values())) >= 20  # the chapters do cite


def test_no_citation_hides_in_a_code_cell():
    for nb_path in BOOK.glob("*.ipynb"):
        nb = nbformat.read(nb_path, as_version=4)
        assert not any(CITE_ROLE.search(c.source) for c in nb.cells if c.cell_type == "code"), nb_path.name


def test_references_page_lists_papers_and_sources_from_the_configured_bib_file():
    config = _config()
    assert config["bibtex_bibfiles"] == ["book/references.bib"]
    page = (BOOK / "references.md").read_text(encoding="utf-8")
    assert page.count("```{bibliography}") == 2
    assert ':filter: not key % "^seed"' in page and ':filter: key % "^seed"' in page


def test_sources_are_first_cited_in_order_so_their_labels_s1_to_s5_follow_seeds_000_to_004():
    """The sources list is in citation order (unsrt); intro.md, the first page, cites them first, in order."""
    order = [k for k in _cited_keys((BOOK / "intro.md").read_text(encoding="utf-8")) if k.startswith("seed")]
    assert order[:5] == [f"seed00{i}" for i in range(5)]
