"""Run the numbered notebooks for one shop-month with papermill and publish HTML reports.

One call of :func:`run_month` executes ``notebooks/NN_*.ipynb`` in order with the same four
parameters (``as_of``, ``raw_dir``, ``processed_dir``, ``config_path``), saves each executed
notebook to ``reports/<shop>/<YYYY-MM>/NN_name.ipynb``, exports it to ``NN_name.html`` for business
readers (code hidden, figures inlined; :mod:`helpers.publish`), records the run in ``run.json`` and
rebuilds ``reports/index.html``. On a failing cell the run stops, the partly executed notebook is still
published with the error visible, and :class:`RunFailed` says where it broke.

Layout written (nothing outside the month's own folder and ``index.html`` is touched)::

    reports/index.html
    reports/<shop>/<YYYY-MM>/NN_name.ipynb
    reports/<shop>/<YYYY-MM>/NN_name.html
    reports/<shop>/<YYYY-MM>/run.json
"""

from __future__ import annotations

import calendar
import os
import re
import sys
import tempfile
import time
import uuid
from datetime import date, datetime, timezone
from pathlib import Path

import nbformat
import papermill as pm
from jupyter_core.paths import jupyter_runtime_dir
from nbclient import NotebookClient
from papermill.exceptions import PapermillExecutionError
from traitlets.config import Config

from helpers import artifacts
from helpers.paths import project_root as find_project_root
from helpers.paths import shop_name
from helpers.publish import MONTH_PATTERN, RUN_RECORD, build_index, notebook_to_html

NOTEBOOK_PATTERN = re.compile(r"^(\d{2})_.+\.ipynb$")


class RunFailed(Exception):
    """A notebook failed while running a shop-month.

    Attributes
    ----------
    notebook : str
        File name of the failing notebook, e.g. ``"03_segments.ipynb"``.
    cell_index : int or None
        0-based index of the failing cell in the executed notebook (papermill's ``cell_index``;
        it counts the injected-parameters cell). None if the kernel failed outside a cell.
    exec_count : int or None
        The cell's execution count, the ``In [n]`` shown in the saved notebook.
    ename, evalue : str
        Exception name and message raised in the notebook.
    output_html, output_ipynb : Path or None
        The partial report and the saved, partly executed notebook (None if nothing was saved).
    """

    def __init__(self, notebook: str, cell_index: int | None, ename: str, evalue: str,
                 output_html: Path | None, output_ipynb: Path | None,
                 exec_count: int | None = None, shown_html: str | None = None):
        self.notebook = notebook
        self.cell_index = cell_index
        self.exec_count = exec_count
        self.ename = ename
        self.evalue = evalue
        self.output_html = output_html
        self.output_ipynb = output_ipynb
        where = f" at cell {cell_index}" if cell_index is not None else ""
        error = f"{ename}: {evalue}" if evalue else ename
        report = shown_html or (str(output_html) if output_html else None)
        tail = f" (partial report: {report})" if report else ""
        super().__init__(f"{notebook} failed{where}: {error}{tail}")


# ---------------------------------------------------------------------------------------------
# Small pure helpers


def kernel_config():
    """Kernel settings for every notebook run: local IPC sockets on Linux and macOS.

    With the default TCP transport the kernel listens on local ports that other users of the machine
    could reach, and ipykernel 7 prints a warning about unencrypted TCP for every notebook; IPC
    sockets are files in the user's Jupyter runtime folder. Windows has no IPC transport: TCP there.
    """
    if os.name != "posix":
        return Config()
    # An absolute socket path: jupyter_client's default ("kernel-ipc") is relative to each process's
    # working directory, and the kernel runs in another one than this process.
    runtime = Path(jupyter_runtime_dir())
    runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
    return Config({"KernelManager": {"transport": "ipc", "ip": str(runtime / f"kernel-{uuid.uuid4().hex[:12]}-ipc")}})


def last_complete_month_end(max_order_date: date | datetime | str) -> str:
    """Last day of the last complete month, as ``'YYYY-MM-DD'``.

    If ``max_order_date`` is the last day of its month, that month counts as complete and that
    day is returned; otherwise the last day of the previous month.
    ``'2026-06-30' -> '2026-06-30'``, ``'2026-07-15' -> '2026-06-30'``,
    ``'2024-03-01' -> '2024-02-29'``.
    """
    day = _to_date(max_order_date)
    month_end = date(day.year, day.month, calendar.monthrange(day.year, day.month)[1])
    if day == month_end:
        return day.isoformat()
    year, month = (day.year, day.month - 1) if day.month > 1 else (day.year - 1, 12)
    return date(year, month, calendar.monthrange(year, month)[1]).isoformat()


def _to_date(value: date | datetime | str) -> date:
    if isinstance(value, datetime):  # also pandas.Timestamp
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        return datetime.fromisoformat(text).date()
    except ValueError:
        raise ValueError(f"expected a date like '2026-06-30', got {value!r}") from None


def _month_ends(month_from: str, month_to: str) -> list[str]:
    """Last day of every month from ``'YYYY-MM'`` to ``'YYYY-MM'`` inclusive."""
    start, end = _parse_month(month_from), _parse_month(month_to)
    if start > end:
        raise ValueError(f"month_from {month_from} is after month_to {month_to}")
    year, month = start
    out = []
    while (year, month) <= end:
        out.append(date(year, month, calendar.monthrange(year, month)[1]).isoformat())
        year, month = (year, month + 1) if month < 12 else (year + 1, 1)
    return out


def _parse_month(text: str) -> tuple[int, int]:
    if not MONTH_PATTERN.match(str(text)) or not 1 <= int(str(text)[5:]) <= 12:
        raise ValueError(f"expected a month like '2026-06', got {text!r}")
    return int(text[:4]), int(text[5:])


def _in_root(path: Path, root: Path) -> Path:
    return path if path.is_absolute() else root / path


def _shown(path: Path, root: Path, trailing_slash: bool = False) -> str:
    """``path`` relative to root (POSIX style) when inside it, so no machine paths reach outputs."""
    try:
        text = path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        text = str(path)
    if trailing_slash and not text.endswith("/"):
        text += "/"
    return text


def _notebook_text(nb) -> str:
    """The notebook's file content, as ``nbformat.write`` would save it (with a final newline)."""
    return nbformat.writes(nb) + "\n"


def _now() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


# ---------------------------------------------------------------------------------------------
# Running


def run_month(as_of: str, raw_dir: str | Path, config_path: str | Path = "config/default.yml",
              only: list[str] | None = None, root: str | Path | None = None,
              notebooks_dir: str | Path | None = None, reports_dir: str | Path | None = None,
              processed_base: str | Path | None = None, kernel_name: str = "python3",
              log=print, cell_progress: bool | None = None) -> list[Path]:
    """Run the numbered notebooks (``notebooks/NN_*.ipynb``, sorted) for one shop-month.

    Parameters
    ----------
    as_of : str
        Analysis cut-off ``'YYYY-MM-DD'``; its month names the report folder.
    raw_dir : str or Path
        The shop's raw folder (``data/raw/<shop>``); its name is the shop's name.
    config_path : str or Path
        Config file passed to every notebook. Relative paths are relative to ``root``.
    only : list of str, optional
        NN prefixes to run (``['01', '04']``); default all notebooks.
    root : str or Path, optional
        Project root; default the folder with ``pyproject.toml`` above the current directory.
        The kernel runs with this as its working directory.
    notebooks_dir, reports_dir, processed_base : str or Path, optional
        Default ``root/notebooks``, ``root/reports``, ``root/data/processed``.
    kernel_name : str
        Jupyter kernel to execute with.
    log : callable
        Receives one progress line per notebook and a total.
    cell_progress : bool, optional
        Show a progress bar of the cells on stderr while a notebook runs; default: when stderr is a
        terminal (an interactive run), not in scheduled runs whose output goes to a log file.

    Returns
    -------
    list of Path
        The HTML reports written, in run order.

    Raises
    ------
    RunFailed
        A cell raised; the partial report is written, later notebooks are not run and
        ``index.html`` is rebuilt first.
    """
    as_of = _to_date(as_of).isoformat()
    month = as_of[:7]
    root = Path(root).resolve() if root is not None else find_project_root()
    notebooks_dir = _in_root(Path(notebooks_dir or "notebooks"), root)
    reports_dir = _in_root(Path(reports_dir or "reports"), root)
    processed_base = _in_root(Path(processed_base or "data/processed"), root)
    raw_path = _in_root(Path(raw_dir), root)
    config_file = _in_root(Path(config_path), root)
    if not raw_path.is_dir():
        raise FileNotFoundError(f"raw folder not found: {raw_path}")
    if not config_file.is_file():
        raise FileNotFoundError(f"config file not found: {config_file}")

    shop = shop_name(raw_path)
    notebooks = _select_notebooks(notebooks_dir, only)
    out_dir = reports_dir / shop / month
    processed_dir = processed_base / shop / month
    out_dir.mkdir(parents=True, exist_ok=True)
    processed_dir.mkdir(parents=True, exist_ok=True)
    parameters = {
        "as_of": as_of,
        "raw_dir": _shown(raw_path, root, trailing_slash=True),
        "processed_dir": _shown(processed_dir, root, trailing_slash=True),
        "config_path": _shown(config_file, root),
    }

    record = {"shop": shop, "month": month, "as_of": as_of, "status": "running",
              "started": _now(), "finished": None, "parameters": parameters, "notebooks": []}
    _write_record(out_dir, record)
    log(f"{shop} {month}: running {len(notebooks)} notebook(s) with as_of={as_of}")
    run_start = time.perf_counter()
    show_cells = sys.stderr.isatty() if cell_progress is None else cell_progress
    written: list[Path] = []
    total = len(notebooks)
    try:
        for number, source in enumerate(notebooks, start=1):
            stem = source.stem
            ipynb_path, html_path = out_dir / f"{stem}.ipynb", out_dir / f"{stem}.html"
            entry = {"name": stem, "status": "running", "seconds": None, "title": None}
            record["notebooks"].append(entry)
            fd, tmp_name = tempfile.mkstemp(dir=out_dir, prefix=f".{stem}.", suffix=".ipynb")
            os.close(fd)
            tmp = Path(tmp_name)
            started = time.perf_counter()
            try:
                failure = None
                try:
                    pm.execute_notebook(
                        str(source), str(tmp), parameters=parameters, kernel_name=kernel_name,
                        cwd=str(root), progress_bar=show_cells, log_output=False, config=kernel_config(),
                    )
                except PapermillExecutionError as err:
                    failure = err
                except Exception as err:  # kernel died, did not start, ...: still a failed run
                    failure = err
                seconds = time.perf_counter() - started
                entry["seconds"] = round(seconds, 1)

                nb = _read_if_saved(tmp)
                if nb is not None:
                    _tidy_saved_notebook(nb, source, ipynb_path, root)
                    entry["title"] = _notebook_title(nb)
                    artifacts.write_file(ipynb_path, _notebook_text(nb))
                    artifacts.write_file(html_path, notebook_to_html(nb, f"{shop} · {month} · {stem}"))

                if failure is None:
                    entry["status"] = "ok"
                    written.append(html_path)
                    log(f"[{number}/{total}] {stem} ... done in {seconds:.1f} s")
                    continue

                entry["status"] = "failed"
                error = _run_failed(failure, source.name, ipynb_path if nb else None,
                                    html_path if nb else None, root)
                record["error"] = {"notebook": error.notebook, "cell_index": error.cell_index,
                                   "exec_count": error.exec_count, "ename": error.ename,
                                   "evalue": error.evalue}
                log(f"[{number}/{total}] {stem} ... FAILED after {seconds:.1f} s")
                raise error from failure
            finally:
                tmp.unlink(missing_ok=True)
    except BaseException as err:
        record["status"] = "failed" if isinstance(err, Exception) else "interrupted"
        for entry in record["notebooks"]:
            if entry["status"] == "running":
                entry["status"] = record["status"]
        record["finished"] = _now()
        _write_record(out_dir, record)
        build_index(reports_dir, processed_base)
        raise

    record["status"] = "ok"
    record["finished"] = _now()
    _write_record(out_dir, record)
    index = build_index(reports_dir, processed_base)
    log(f"{shop} {month}: {total} notebook(s) done in {time.perf_counter() - run_start:.1f} s; "
        f"reports in {_shown(out_dir, root)}/, index {_shown(index, root)}")
    return written


def backfill(month_from: str, month_to: str, raw_dir: str | Path,
             config_path: str | Path = "config/default.yml", **kwargs) -> list[Path]:
    """Run :func:`run_month` for the last day of every month from ``month_from`` to ``month_to``
    (``'YYYY-MM'``, inclusive), oldest first. Stops at the first :class:`RunFailed`.
    Keyword arguments go to :func:`run_month`. Returns every HTML report written."""
    written: list[Path] = []
    for as_of in _month_ends(month_from, month_to):
        written += run_month(as_of, raw_dir, config_path, **kwargs)
    return written


def _select_notebooks(notebooks_dir: Path, only: list[str] | None) -> list[Path]:
    found = sorted(p for p in notebooks_dir.glob("*.ipynb") if NOTEBOOK_PATTERN.match(p.name))
    if not found:
        raise FileNotFoundError(f"no numbered notebooks (NN_name.ipynb) in {notebooks_dir}")
    if only is None:
        return found
    wanted = {str(n).zfill(2) for n in only}
    available = {p.name[:2] for p in found}
    unknown = sorted(wanted - available)
    if unknown:
        raise ValueError(f"no notebook numbered {', '.join(unknown)}; "
                         f"available: {', '.join(sorted(available))}")
    return [p for p in found if p.name[:2] in wanted]


def _read_if_saved(path: Path):
    """The notebook papermill saved, or None if it never got that far (e.g. no such kernel)."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    return nbformat.read(str(path), as_version=4)


def _tidy_saved_notebook(nb, source: Path, ipynb_path: Path, root: Path) -> None:
    """Replace the machine paths papermill records (its temp output, the absolute input) and
    strip the root prefix from tracebacks, so saved notebooks and reports carry none."""
    meta = nb.metadata.get("papermill")
    if meta is not None:
        meta["input_path"] = _shown(source, root)
        meta["output_path"] = _shown(ipynb_path, root)
    prefix = str(root) + os.sep
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                output["traceback"] = [line.replace(prefix, "") for line in output["traceback"]]


def _notebook_title(nb) -> str | None:
    """First Markdown heading of the notebook, used as the report's label in the index."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                match = re.match(r"^#{1,6}\s+(.+?)\s*#*\s*$", line)
                if match:
                    return match.group(1)
    return None


def _run_failed(err: Exception, notebook: str, ipynb_path: Path | None,
                html_path: Path | None, root: Path) -> RunFailed:
    shown_html = _shown(html_path, root) if html_path else None
    if hasattr(err, "cell_index") and hasattr(err, "ename"):
        return RunFailed(notebook, err.cell_index, err.ename, err.evalue, html_path, ipynb_path,
                         exec_count=err.exec_count, shown_html=shown_html)
    return RunFailed(notebook, None, type(err).__name__, str(err), html_path, ipynb_path,
                     shown_html=shown_html)


def _write_record(out_dir: Path, record: dict) -> None:
    artifacts.write_json_file(out_dir / RUN_RECORD, record, sort_keys=False)


# ---------------------------------------------------------------------------------------------
# Refreshing the committed notebooks (make notebooks)


def refresh_notebooks(root: str | Path | None = None, kernel_name: str = "python3", log=print,
                      only: list[str] | None = None) -> list[Path]:
    """Re-execute ``notebooks/NN_*.ipynb`` in place with their default parameters.

    Their stored outputs are nbval's reference, so they are produced exactly as nbval runs them:
    the defaults in the ``parameters`` cell (demo shop, fixed ``as_of``), no injected cell, and
    no papermill timing metadata that would churn in version control.
    """
    root = Path(root) if root else find_project_root()
    done = []
    for path in _select_notebooks(root / "notebooks", only):
        started = time.perf_counter()
        nb = nbformat.read(path, as_version=4)
        NotebookClient(nb, kernel_name=kernel_name, timeout=1800, config=kernel_config(),
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        for cell in nb.cells:
            cell.metadata.pop("execution", None)
        artifacts.write_file(path, _notebook_text(nb))
        log(f"refreshed {path.name} in {time.perf_counter() - started:.1f} s")
        done.append(path)
    return done
