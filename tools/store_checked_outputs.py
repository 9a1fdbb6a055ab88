"""Execute chapter notebooks and store only the outputs that nbval checks.

Usage: python tools/store_checked_outputs.py book/01_latent_variable_models.ipynb [...]

Cells marked ``# NBVAL_CHECK_OUTPUT`` keep their (small, rounded) text output: that is what
``pytest --nbval-lax`` compares a fresh run against, so a wrong number fails CI. Every other output
(figures, widgets, progress bars) is dropped, and so are the cells' execution timestamps: the book build executes
the notebooks anyway, and stored figures would bloat the repository. Execution counts stay: nbval skips cells it
considers unrun.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

MARK = "# NBVAL_CHECK_OUTPUT"


def store(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}},
                   store_widget_state=False).execute()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)  # this run's timestamps: noise in every diff
        if MARK in cell.source:
            for o in cell.outputs:
                if o.output_type == "error":
                    raise RuntimeError(f"{path}: checked cell {cell.get('id')} raised {o.ename}")
            text = "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")
            # one stdout output per cell: how the kernel happened to split the stream is noise in the diff
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)] if text else []
        else:
            cell.outputs = []
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)
    print(f"{path}: stored {sum(MARK in c.source for c in nb.cells if c.cell_type == 'code')} checked outputs")


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        store(Path(arg))
