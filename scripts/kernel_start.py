"""Time each notebook's kernel start and import cell, as the runner starts them (issue 28: under 3 s).

    .venv/bin/python scripts/kernel_start.py [--runs 3] [--warm]

With --warm the kernels are forked from a process that has imported what the notebooks import, as `retention run`
starts them on Linux (helpers.warm_kernels): the first run of the first notebook also waits for those imports.

Each numbered notebook is cut to its first two code cells (the parameters and the imports, which also load
the config), executed with papermill on the runner's kernel settings (`helpers.runner.kernel_config`) in the
project folder, and timed from outside; prints the seconds of every run per notebook. Reads nothing of a
month and writes only into a temporary folder.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import papermill as pm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from helpers.runner import kernel_config, warm_kernels_for  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warm", action="store_true", help="fork the kernels warm, as retention run does on Linux")
    args = ap.parse_args()
    sources = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    with warm_kernels_for(sources, "python3", cwd=ROOT) if args.warm else contextlib.nullcontext(False) as warm:
        if args.warm and not warm:
            raise SystemExit("kernels cannot be forked warm here (Linux and an IPython kernel of this Python only)")
        with tempfile.TemporaryDirectory() as tmp:
            for source in sources:
                time_notebook(source, Path(tmp), args.runs)


def time_notebook(source: Path, tmp: Path, runs: int) -> None:
    nb = nbformat.read(source, as_version=4)
    cut = copy.deepcopy(nb)
    cut.cells = [c for c in nb.cells if c.cell_type == "code"][:2]
    path = tmp / source.name
    nbformat.write(cut, path)
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        pm.execute_notebook(str(path), str(path.with_suffix(".out.ipynb")), kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT)}}, progress_bar=False,
                            log_output=False, config=kernel_config())
        seconds.append(time.perf_counter() - start)
    print(f"{source.stem:<14} " + " ".join(f"{s:.2f}" for s in seconds) + " s", flush=True)


if __name__ == "__main__":
    main()
