"""Generate the appendix page book/common_mistakes.md from the chapters' pitfall callouts.

Every pitfall the book flags is a MyST admonition with the class ``pitfall``, preceded by a label:

    (pitfall-s002-kl-with-commas)=
    :::{admonition} Pitfall: a KL divergence written with commas (Matteo Lugli, "Variational Autoencoders")
    :class: pitfall
    **Often written:** ... **Right:** ...
    :::

The label's middle part names the source write-up (``s000`` … ``s004``, the files of the seeds folder) or
``common`` for a bug of public VAE/VQ-VAE code. This tool reads every chapter notebook and markdown page in
``book/``, lists each source's pitfalls (a callout is listed under its label's source and under every other source
it cites, ``{cite:p}`seed00N```) with a link to the callout, and the common implementation bugs with their
symptoms and the chapter that shows each. ``tests/test_common_mistakes.py`` fails when the page is stale.

    python tools/common_mistakes.py          # write book/common_mistakes.md
    python tools/common_mistakes.py --check  # exit 1 if the page is not what the chapters say
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
PAGE = BOOK / "common_mistakes.md"

# the five source write-ups, as the reader-facing text names them (author and title; see book/references.bib)
SOURCES = {
    "s000": ("seed000", 'Tony Duan, "Variational Autoencoders" (README of a code repository)'),
    "s001": ("seed001", '"Variational Autoencoders" (unsigned lecture notes, a chapter of an online book)'),
    "s002": ("seed002", 'Matteo Lugli, "Variational Autoencoders" (study notes)'),
    "s003": ("seed003", 'Stephen Lu, "A Gentle Intro to Variational Autoencoders" (blog post)'),
    "s004": ("seed004", '"Decoding Variational Autoencoders: Exploring the Mathematical Foundations" '
                        "(unsigned study notes)"),
}

SHORT = {"s000": "Tony Duan's README", "s001": "the unsigned lecture notes", "s002": "Matteo Lugli's notes",
         "s003": "Stephen Lu's blog post", "s004": "the unsigned study notes"}

# the implementation bugs readers report most in public VAE and VQ-VAE code: slug -> (the bug, its symptom)
COMMON_BUGS = {
    "reduction-mismatch": (
        "Reduction mismatch: a reconstruction loss averaged over pixels (``F.mse_loss`` with its default "
        "``reduction='mean'``) added to a KL term summed over latent dimensions",
        "the KL's weight is silently multiplied by the number of pixels: posterior collapse (a KL term near 0 nats "
        "and one reconstruction for every input), or, with a tiny KL weight to compensate, codes that drift away "
        "from the prior",
    ),
    "tiny-kl-weight": (
        "A tiny KL weight (for example the batch size over the data set size as ``kld_weight``)",
        "good reconstructions and a high rate, but codes that spread beyond the prior, so samples from the prior "
        "cover only the centre of the code cloud; the ELBO and the held-out likelihood are worse although the "
        "training loss is lower",
    ),
    "commitment-after-straight-through": (
        "The VQ-VAE's codebook and commitment terms computed from the straight-through value "
        "z_e + sg(z_q − z_e) (which equals z_q) instead of from the encoder output z_e and the code z_q",
        "both terms are 0 and give no gradient: the encoder is never pulled towards its codes and z_e drifts "
        "away from the codebook",
    ),
    "codebook-collapse": (
        "Unnoticed codebook collapse",
        "a few codes take most inputs and the rest are never chosen: the perplexity of the code frequencies is far "
        "below the codebook size and the likelihood stalls, while the reconstruction loss alone shows nothing",
    ),
    "iwae-mean-of-logs": (
        "An importance-weighted (IWAE) loss that averages the K log-weights, −mean_k log w_k, instead of taking "
        "the log of the average weight, −(logsumexp_k log w_k − log K)",
        "the model trains exactly like a VAE with K samples (the K-sample ELBO, whose expectation is the ELBO for "
        "every K): the reported bound does not rise with K, and a held-out L_K of the model stays as loose as a "
        "VAE's",
    ),
    "training-loss-as-evaluation": (
        "Evaluating a VAE by its training loss",
        "the run with the lower training loss can be the worse model: a loss with a β, free bits, a mean over "
        "pixels or dropped constants is not the ELBO in nats; compare held-out ELBOs or importance-weighted "
        "estimates, in nats",
    ),
}

LABEL = re.compile(r"^\((pitfall-(s00[0-4]|common)-([a-z0-9]+(?:-[a-z0-9]+)*))\)=[ \t]*$", re.M)
OPENING = re.compile(r"^(?P<fence>:{3,}|`{3,})\{admonition\}[ \t]+Pitfall:[ \t]*(?P<title>.+?)[ \t]*$")
CITE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]*)`")
CLASS_PITFALL = re.compile(r"^:class:[ \t]+(?:.*\s)?pitfall(?:\s|$)", re.M)


@dataclass
class Callout:
    label: str
    source: str  # s000 ... s004 or "common"
    slug: str
    title: str  # the title without the trailing "(source)"
    page: str  # the file name in book/
    chapter: str  # how the appendix names the page: "chapter 3" or the page's title
    cited: list[str] = field(default_factory=list)  # bibliography keys its "Often written" part cites


def _pages() -> list[tuple[str, str]]:
    """(file name, markdown text) of every chapter notebook and markdown page in book/, but this page."""
    out = []
    for path in sorted(BOOK.glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        cells = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                 for c in nb["cells"] if c["cell_type"] == "markdown"]
        out.append((path.name, "\n\n".join(cells)))
    for path in sorted(BOOK.glob("*.md")):
        if path != PAGE:
            out.append((path.name, path.read_text(encoding="utf-8")))
    return out


def _page_name(name: str, text: str) -> str:
    match = re.match(r"(\d\d)_", name)
    if match:
        return f"chapter {int(match.group(1))}"
    heading = re.search(r"^# (.+)$", text, re.M)
    return heading.group(1).strip() if heading else name


def _short_title(title: str) -> str:
    """The callout's title without its trailing "(Author, "Title")" part naming the source."""
    match = re.match(r"^(.*\S)\s+\((?=[^()]*\")[^()]*(?:\([^()]*\)[^()]*)*\)$", title)
    return match.group(1) if match else title


def callouts() -> list[Callout]:
    """Every labelled pitfall callout in the book, in page order. Raises ValueError on a malformed one."""
    found = []
    for name, text in _pages():
        lines = text.splitlines()
        for match in LABEL.finditer(text):
            line_no = text.count("\n", 0, match.start())
            following = [ln for ln in lines[line_no + 1:line_no + 3]]
            opening = OPENING.match(following[0]) if following else None
            if opening is None:
                raise ValueError(f"{name}: label {match.group(1)} is not followed by a "
                                 ":::{admonition} Pitfall: ... callout")
            if len(following) < 2 or not CLASS_PITFALL.match(following[1]):
                raise ValueError(f"{name}: callout {match.group(1)} lacks ':class: pitfall' on its second line")
            fence = opening.group("fence")
            body = []
            for ln in lines[line_no + 3:]:
                if ln.strip() == fence:
                    break
                body.append(ln)
            else:
                raise ValueError(f"{name}: callout {match.group(1)} is never closed with {fence}")
            # the sources a callout is listed under: those its "Often written" part cites (the "Right" part
            # may cite papers, or other sources only to point elsewhere)
            written = "\n".join(body).split("**Right:**")[0]
            keys = [k.strip() for group in CITE.findall(written) for k in group.split(",")]
            found.append(Callout(match.group(1), match.group(2), match.group(3),
                                 _short_title(opening.group("title")), name, _page_name(name, text), keys))
    labels = [c.label for c in found]
    duplicates = sorted({x for x in labels if labels.count(x) > 1})
    if duplicates:
        raise ValueError(f"pitfall labels used twice: {duplicates}")
    return found


def unlabelled_pitfalls() -> list[str]:
    """Pages holding a ``:class: pitfall`` admonition that has no pitfall label (the appendix would miss it)."""
    out = []
    for name, text in _pages():
        n_class = len(CLASS_PITFALL.findall(text))
        n_label = len(LABEL.findall(text))
        if n_class != n_label:
            out.append(f"{name}: {n_class} pitfall callouts, {n_label} pitfall labels")
    return out


def _chapter_order(c: Callout) -> tuple[int, str]:
    match = re.match(r"(\d\d)_", c.page)
    return (int(match.group(1)) if match else 99, c.page)


def render(items: list[Callout]) -> str:
    """The markdown of book/common_mistakes.md."""
    order = {c.label: i for i, c in enumerate(items)}
    items = sorted(items, key=lambda c: (_chapter_order(c), order[c.label]))
    out = [
        "# Common mistakes",
        "",
        "<!-- Generated by tools/common_mistakes.py from the chapters' pitfall callouts: do not edit by hand. -->",
        "",
        "Every mistake this book flags, gathered in one place. The first part lists, for each of the five",
        "write-ups the book started from, every mathematical or conceptual mistake found in it, each linked to the",
        "*pitfall* box where the book teaches the point (what is often written, what is right, and wherever a",
        "number can show the difference, a computation). The second part lists the implementation bugs readers",
        "report most often in public VAE and VQ-VAE code, with the symptom each produces and the chapter that",
        "shows it. The [references](references.md) describe the write-ups.",
        "",
        "## Mistakes in the source write-ups",
        "",
    ]
    for source, (key, name) in SOURCES.items():
        mine = [c for c in items if c.source == source or (c.source != "common" and key in c.cited)
                or (c.source == "common" and key in c.cited)]
        out += [f"### {name}", "", f"Cited as {{cite:p}}`{key}`.", ""]
        if not mine:
            out += ["No mistake flagged yet.", ""]
            continue
        for c in mine:
            if c.source == source:
                also = ""
            elif c.source == "common":
                also = " (a common implementation bug)"
            else:
                also = f" (in the box on {SHORT[c.source]})"
            out.append(f"- {c.title}{also}: {{ref}}`{c.chapter} <{c.label}>`.")
        out.append("")
    out += ["## Bugs in public VAE and VQ-VAE code", ""]
    common = {c.slug: c for c in items if c.source == "common"}
    for slug, (bug, symptom) in COMMON_BUGS.items():
        c = common.get(slug)
        where = f"Shown in {{ref}}`{c.chapter} <{c.label}>`." if c else "No chapter shows it yet."
        out.append(f"- **{bug}.** *Symptom:* {symptom}. {where}")
    extra = [c for s, c in common.items() if s not in COMMON_BUGS]
    for c in extra:
        out.append(f"- **{c.title}.** Shown in {{ref}}`{c.chapter} <{c.label}>`.")
    out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if book/common_mistakes.md is stale")
    args = parser.parse_args(argv)
    text = render(callouts())
    if args.check:
        current = PAGE.read_text(encoding="utf-8") if PAGE.exists() else ""
        if current != text:
            print(f"{PAGE.relative_to(ROOT)} is stale: run python tools/common_mistakes.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text, encoding="utf-8")
    print(f"wrote {PAGE.relative_to(ROOT)}: {text.count('{ref}')} links")
    return 0


if __name__ == "__main__":
    sys.exit(main())
