"""A month rendered in the test process: the seven notebooks' code cells run in order, each notebook in a
fresh namespace of one IPython shell, as a Jupyter kernel runs them under papermill - the `parameters`
cell, then the injected values, then every other cell - with what each cell shows captured as the kernel
would send it: takeaways as Markdown, tables as HTML, printed text and warnings as streams, and figures
as PNG (`render`; `execute` alone closes them unsaved unless asked). The executed notebooks are written
out and published with the runner's own HTML exporter, so a test reads the same page text a reader gets.

It costs no kernel start and no ZMQ round trips: a month takes about a sixth of the papermill run (a
3,000-customer shop: about 10 s against 65 s). What it does not exercise is the runner itself (kernels, signals, run records, the index):
tests/test_runner.py, tests/test_process.py and tests/test_cli.py do, on small shops and partial runs.

``tests/conftest.py`` holds the session's months (``rendered_month``): each shop and config rendered once
and shared by every test file that asks for it.
"""
from __future__ import annotations

import base64
import contextlib
import io
import pickle
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import nbformat
import pytest
import yaml
from IPython.core.displayhook import DisplayHook
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from traitlets import Type
from traitlets.config import Config

from helpers import artifacts
from helpers.plots import figure_alt
from helpers.paths import project_root

matplotlib.use("Agg")  # figures are drawn off-screen and, when a page is wanted, saved as the kernel does
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

ROOT = project_root()
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PAGES = [f"{nb.stem}.html" for nb in NOTEBOOKS]
# what a Jupyter kernel shows of a warning: everything but the warnings Python itself hides by default
# (Python's default filters: ResourceWarning too - an unclosed event loop of an earlier papermill run in this
# process, collected during a cell, is nothing a kernel would show)
HIDDEN_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


class CellFailed(Exception):
    """A code cell raised: the notebook, the cell (its index in the notebook file, all cells from 0) and the error."""

    def __init__(self, notebook: str, cell_index: int, ename: str, evalue: str, source: str):
        self.notebook, self.cell_index, self.ename, self.evalue, self.source = notebook, cell_index, ename, evalue, source
        super().__init__(f"{notebook} cell {cell_index} raised {ename}: {evalue}\n--- the cell ---\n{source}")

    def __reduce__(self):  # kept with a shared month (pickle)
        return CellFailed, (self.notebook, self.cell_index, self.ename, self.evalue, self.source)


class Stopped(Exception):
    """A notebook stopped at a failing cell: ``.failure`` (`CellFailed`), ``.nb`` (executed up to it)."""

    def __init__(self, failure: CellFailed, nb):
        super().__init__(str(failure))
        self.failure, self.nb = failure, nb


class _KernelLikeDisplayHook(DisplayHook):
    """A cell's last expression is kept as rich data (HTML table, Markdown) for the cell's
    ``execute_result``, as ipykernel's display hook sends it, instead of the terminal's printed repr."""

    def write_output_prompt(self):
        pass

    def write_format_data(self, format_dict, md_dict=None):
        self.shell.results.append((format_dict, md_dict or {}))

    def finish_displayhook(self):
        pass


class _InProcessShell(InteractiveShell):
    """IPython's shell standing in for the notebook kernel."""

    displayhook_class = Type(_KernelLikeDisplayHook)
    # helpers.plots.say shows a takeaway as Markdown when the shell has a kernel (a notebook), and prints
    # it in a terminal: this shell answers for the kernel.
    kernel = "in-process"
    results: list = []


@contextlib.contextmanager
def _shell():
    """The shell for one notebook, gone afterwards (sys.displayhook too): `get_ipython()` answers None
    again, so a test that calls `plots.say` later in this process sees plain printed text."""
    cfg = Config()
    cfg.HistoryManager.enabled = False  # no sqlite history under ~/.ipython
    hook = sys.displayhook
    InteractiveShell.clear_instance()
    shell = _InProcessShell.instance(config=cfg)
    try:
        yield shell
    finally:
        shell.reset(new_session=False)
        _InProcessShell.clear_instance()
        InteractiveShell.clear_instance()
        sys.displayhook = hook


def _outputs(captured, results: list, caught: list, figures: list, count: int) -> list:
    """A cell's outputs in the order a kernel sends them: printed text, displays, the last expression's
    value (``execute_result``), then the figures (the inline backend shows them after the cell)."""
    out = []
    if captured.stdout:
        out.append(nbformat.v4.new_output("stream", name="stdout", text=captured.stdout))
    shown_warnings = "".join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno)
                             for w in caught if not issubclass(w.category, HIDDEN_WARNINGS))
    if captured.stderr or shown_warnings:
        out.append(nbformat.v4.new_output("stream", name="stderr", text=captured.stderr + shown_warnings))
    for rich in captured.outputs:
        out.append(nbformat.v4.new_output("display_data", data=dict(rich.data), metadata=dict(rich.metadata or {})))
    for data, metadata in results:
        out.append(nbformat.v4.new_output("execute_result", data=dict(data), metadata=dict(metadata),
                                          execution_count=count))
    out += figures
    return out


def _figures(save: bool) -> list:
    """Open figures as the inline backend would show them (PNG, tight box), then closed."""
    shown = []
    for num in plt.get_fignums():
        fig = plt.figure(num)
        if save:
            buf = io.BytesIO()
            fig.savefig(buf, format="png", bbox_inches="tight")
            shown.append(nbformat.v4.new_output(
                "display_data", data={"image/png": base64.b64encode(buf.getvalue()).decode("ascii"),
                                      "text/plain": repr(fig)}, metadata={"image/png": {"alt": figure_alt(fig)}}))
    plt.close("all")
    return shown


def execute(notebook: Path, parameters: dict, figures: bool = False):
    """Run one notebook's code cells in-process; return the executed notebook (nbformat node) and the
    warnings its cells raised that a kernel shows (`warnings.WarningMessage`, each once per cell). Raises
    `Stopped` at the first failing cell (its `CellFailed` and the executed notebook so far)."""
    nb = nbformat.read(str(notebook), as_version=4)
    # a kernel starts without figures: one a test left open in this process would show in the first cell's outputs
    plt.close("all")
    with _shell() as shell, matplotlib.rc_context():  # the notebook's plots.use_style() stays in the notebook
        return _execute_cells(nb, notebook.name, shell, parameters, figures)


def _execute_cells(nb, name: str, shell: InteractiveShell, parameters: dict, save_figures: bool):
    params_done = False
    raised: list = []
    count = 0
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        cell.outputs = []
        source = cell.source
        if not params_done and "parameters" in cell.metadata.get("tags", []):
            exec(compile(source, f"{name} parameters", "exec"), shell.user_ns)
            shell.user_ns.update(parameters)  # papermill's injected cell
            params_done = True
            continue
        count += 1
        shell.results = []
        with warnings.catch_warnings(record=True) as caught, capture_output() as captured:
            warnings.simplefilter("always")
            result = shell.run_cell(source, store_history=False, silent=False)
        figures = _figures(save_figures)
        cell.execution_count = count
        cell.outputs = _outputs(captured, shell.results, caught, figures, count)
        raised += [w for w in caught if not issubclass(w.category, HIDDEN_WARNINGS)]
        err = result.error_before_exec or result.error_in_exec
        if err is not None:
            tb = "".join(traceback.format_exception(type(err), err, err.__traceback__))
            cell.outputs.append(nbformat.v4.new_output("error", ename=type(err).__name__, evalue=str(err),
                                                       traceback=tb.splitlines()))
            raise Stopped(CellFailed(name, index, type(err).__name__, str(err), source), nb) from err
    return nb, raised


@dataclass
class Month:
    """One shop-month rendered in-process. ``processed`` holds the artifacts; ``notebooks`` the executed
    notebooks by stem; ``failed`` the first failing cell (then the notebooks after it did not run)."""
    shop: str
    as_of: str
    raw: Path
    config: Path
    processed: Path
    reports: Path
    notebooks: dict = field(default_factory=dict)
    warnings: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    failed: CellFailed | None = None
    truth: dict | None = None
    settings: str = ""  # what it was rendered from (conftest `rendered_month`: shop maker, as_of, config, preset)

    def save(self, path: Path) -> None:
        """Keep the month for other test processes (pytest-xdist workers): one pickle beside its folders."""
        artifacts.write_file(path, pickle.dumps(self))

    @staticmethod
    def load(path: Path) -> Month:
        return pickle.loads(Path(path).read_bytes())

    def check(self) -> Month:
        """The month itself, or the asking test fails with the notebook, cell and error that stopped it."""
        if self.failed is not None:
            pytest.fail(f"the month of shop {self.shop} stopped: {self.failed}", pytrace=False)
        return self

    @property
    def pages(self) -> list[str]:
        """The page names written (``01_clean.html`` ...), in run order."""
        return [f"{stem}.html" for stem in self.notebooks]

    def page_path(self, stem_or_number: str) -> Path:
        return next(self.reports.glob(f"{stem_or_number}*.html"))


def render(raw: Path, as_of: str, config: Path, base: Path, preset: str | None = None) -> Month:
    """Render the month of shop `raw` (its folder name is the shop's name) into `base`: artifacts in
    ``base/processed/<shop>/<YYYY-MM>``, executed notebooks and HTML pages in
    ``base/reports/<shop>/<YYYY-MM>``, as the runner lays them out. A failing cell stops the month and is
    kept on ``Month.failed``; the caller decides whether its test fails. `preset` is passed as
    ``retention run --preset`` passes it: the config with that one setting changed, kept beside the pages."""
    from helpers.publish import notebook_to_html  # the runner's page exporter (nbconvert)
    from helpers.runner import with_preset

    shop = Path(raw).name
    month = as_of[:7]
    m = Month(shop, as_of, Path(raw), Path(config), base / "processed" / shop / month, base / "reports" / shop / month)
    m.processed.mkdir(parents=True, exist_ok=True)
    m.reports.mkdir(parents=True, exist_ok=True)
    if preset is not None:
        config = m.config = with_preset(Path(config), preset, m.reports / "config.yml")
    params = {"as_of": as_of, "raw_dir": str(raw), "processed_dir": str(m.processed), "config_path": str(config)}
    for notebook in NOTEBOOKS:
        started = time.perf_counter()
        try:
            nb, raised = execute(notebook, params, figures=True)
        except Stopped as stopped:
            m.failed, nb, raised = stopped.failure, stopped.nb, []
        m.notebooks[notebook.stem] = nb
        m.warnings[notebook.stem] = [f"{w.category.__name__}: {w.message}" for w in raised]
        m.seconds[notebook.stem] = round(time.perf_counter() - started, 2)
        artifacts.write_file(m.reports / f"{notebook.stem}.ipynb", nbformat.writes(nb) + "\n")
        artifacts.write_file(m.reports / f"{notebook.stem}.html",
                             notebook_to_html(nb, f"{shop} · {month} · {notebook.stem}"))
        if m.failed is not None:
            break
    return m


def config_file(path: Path, changes: dict) -> Path:
    """config/default.yml with `changes` (``{"clv": {"clv_months": 6}}``) written to `path`."""
    config = _merged(yaml.safe_load((ROOT / "config" / "default.yml").read_text(encoding="utf-8")), changes)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _merged(base: dict, changes: dict) -> dict:
    out = dict(base)
    for key, value in changes.items():
        out[key] = _merged(base.get(key) or {}, value) if isinstance(value, dict) else value
    return out
