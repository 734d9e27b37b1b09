"""Run the numbered notebooks for one shop-month with papermill and publish HTML reports.

One call of :func:`run_month` executes ``notebooks/NN_*.ipynb`` with the same four parameters
(``as_of``, ``raw_dir``, ``processed_dir``, ``config_path``), saves each executed notebook to
``reports/<shop>/<YYYY-MM>/NN_name.ipynb``, exports it to ``NN_name.html`` for business readers (code
hidden, figures inlined; :mod:`helpers.publish`), records the run in ``run.json`` and rebuilds
``reports/index.html``. Notebooks run side by side where the declarations allow (a notebook starts beside the
makers of what it reads, :func:`helpers.artifacts.notebook_inputs`, and each read of their artifacts waits until
they have ended, :func:`helpers.artifacts.await_maker`): at most
``engine.parallel_notebooks`` at once, fewer when the month would not fit in memory (:func:`_at_once`), each
kernel's DuckDB given its share of threads and memory (:func:`helpers.engine.duckdb_share`). On Linux, when memory
allows, each kernel is forked from one process that has imported what the notebooks import (:func:`_warm_kernels`).
On a failing cell the partly executed notebook is still published with
the error visible, the later notebooks still run (each shows what it can without the missing artifacts),
and at the end :class:`RunFailed` says which notebooks broke and at which cell. A run stopped by SIGTERM
or Ctrl-C leaves no half-written file, and ``run.json`` and the index say it was interrupted.

Layout written (nothing outside the month's own folder and ``index.html`` is touched)::

    reports/index.html
    reports/<shop>/<YYYY-MM>/NN_name.ipynb
    reports/<shop>/<YYYY-MM>/NN_name.html
    reports/<shop>/<YYYY-MM>/run.json
"""

from __future__ import annotations

import calendar
import json
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import uuid
import weakref
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from pathlib import Path

# jsonschema (under nbformat, papermill and nbconvert) imports rfc3987_syntax when it is installed (JupyterLab's
# jupyter-events asks for it), and that builds a parser at import: 1.4 s at the start of every run, for the "iri"
# string formats, which no notebook schema uses. Marked absent before the first import, jsonschema leaves them out.
sys.modules.setdefault("rfc3987_syntax", None)

import nbformat
import papermill as pm
from jupyter_client import AsyncKernelManager
from jupyter_core.paths import jupyter_runtime_dir
from nbclient import NotebookClient
from papermill.engines import NBClientEngine, papermill_engines
from traitlets import Integer, Unicode
from traitlets.config import Config

from helpers import artifacts, engine, spark_server, warm_kernels
from helpers.config import EngineConfig, config_text_with, load_config
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
    later : list of RunFailed
        Notebooks after this one that failed too in the same run (the runner runs them all).
    """

    def __init__(self, notebook: str, cell_index: int | None, ename: str, evalue: str,
                 output_html: Path | None, output_ipynb: Path | None,
                 exec_count: int | None = None, shown_html: str | None = None):
        self.later: list[RunFailed] = []
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

    def with_later(self, later: list[RunFailed]) -> RunFailed:
        """This failure, its message followed by the later notebooks that failed in the same run."""
        self.later = list(later)
        if later:
            where = "; ".join(f"{e.notebook}" + (f" at cell {e.cell_index}" if e.cell_index is not None else "")
                              + f": {e.ename}" for e in later)
            self.args = (f"{self.args[0]}; later notebooks ran, and these failed too: {where}",)
        return self


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal (SIGTERM from a scheduler, ``timeout`` or ``kill``; SIGINT)."""

    def __init__(self, signal_name: str):
        self.signal_name = signal_name
        super().__init__(f"interrupted by {signal_name}")


class _SavedOnceEngine(NBClientEngine):
    """papermill's nbclient engine, but the executed notebook is written once, not at every cell's start and end:
    those writes (the whole notebook with its figures, validated each time) took 3.5 of the runner's 12 CPU
    seconds in a demo month, on the cores the kernels need. papermill itself writes the notebook when it ends, and
    when a cell fails or the kernel dies (the partial report); any other exception leaves the cells that ran
    written here."""

    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs):
        save, nb_man.save = nb_man.save, lambda **_: None
        try:
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)
        except BaseException:
            save()
            raise
        finally:
            nb_man.save = save


ENGINE_NAME = "retention-saved-once"
papermill_engines.register(ENGINE_NAME, _SavedOnceEngine)


# ---------------------------------------------------------------------------------------------
# Small pure helpers


def kernel_config(duckdb_share: int = 1, spark_log: Path | None = None, inputs: dict | None = None,
                  library_threads: int = 0, spark_remote: str = ""):
    """Kernel settings for every notebook run: local IPC sockets on Linux and macOS, and a kernel
    manager the runner can reach when a signal stops the run and that tells the kernel's DuckDB its
    share, where a Spark session logs (`spark_log`: the month's spark.log) or which Spark driver it works on
    (`spark_remote`: the month's shared driver, :mod:`helpers.spark_server`), which notebooks it waits for
    (`inputs`: :data:`helpers.artifacts.INPUTS_VARIABLE`'s content) and the threads of its numerical libraries
    (`library_threads`, 0: theirs; :class:`TrackedKernelManager`).

    With the default TCP transport the kernel listens on local ports that other users of the machine
    could reach, and ipykernel 7 prints a warning about unencrypted TCP for every notebook; IPC
    sockets are files in the user's Jupyter runtime folder. Windows has no IPC transport: TCP there.
    """
    tracked = {"NotebookClient": {"kernel_manager_class": TrackedKernelManager},
               "TrackedKernelManager": {"duckdb_share": duckdb_share, "spark_log": str(spark_log or ""),
                                        "spark_remote": spark_remote,
                                        "inputs": json.dumps(inputs) if inputs else "",
                                        "library_threads": library_threads}}
    if os.name != "posix":
        return Config(tracked)
    # An absolute socket path: jupyter_client's default ("kernel-ipc") is relative to each process's
    # working directory, and the kernel runs in another one than this process.
    runtime = Path(jupyter_runtime_dir())
    runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
    return Config({**tracked, "KernelManager": {
        "transport": "ipc", "ip": str(runtime / f"kernel-{uuid.uuid4().hex[:12]}-ipc")}})


# Kernels started by this process and not yet shut down. jupyter_client starts each kernel in its own
# session, so a SIGTERM sent to the runner (or to its process group by `timeout`) never reaches them.
_LIVE_KERNELS: weakref.WeakSet = weakref.WeakSet()
_LIVE_KERNELS_LOCK = threading.RLock()  # notebooks' threads add to it while the signal handler reads it


# The numerical libraries' thread counts (OpenMP: scikit-learn; OpenBLAS, MKL, Accelerate: numpy and scipy), set
# for kernels that run side by side (:func:`_library_threads`). Each library otherwise starts a thread per core in
# every kernel, and on shared cores OpenBLAS's and OpenMP's waiting threads spin: the demo month side by side took
# 50.5 CPU s with one thread each against 67.2 with the libraries' default (2 CPUs; benchmarks/RESULTS.md).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


def _with_library_threads(env: dict, threads: int) -> dict:
    """`env` with :data:`THREAD_VARIABLES` set to `threads` (0: left as they are); a thread count set for the run
    wins."""
    return {**{name: str(threads) for name in THREAD_VARIABLES if threads}, **env}


def _library_threads(at_once: int) -> int:
    """The numerical libraries' threads in each kernel of a run with `at_once` notebooks side by side: the cores
    shared evenly, the same for every notebook of the run whenever it starts (so results never depend on which
    notebooks happened to overlap); 0 (the libraries' default) one at a time."""
    return max(1, (os.cpu_count() or 1) // at_once) if at_once > 1 else 0


class TrackedKernelManager(AsyncKernelManager):
    """nbclient's default kernel manager, registered while its kernel runs so that a signal handler
    can interrupt it (:func:`_signal_kernels`). The kernel starts with :data:`helpers.engine.SHARE_VARIABLE`
    set to ``duckdb_share``: the number of DuckDBs working at once while it runs (:func:`helpers.engine.connect`)."""

    duckdb_share = Integer(1, config=True, help="DuckDBs working at once: each gets 1/N of threads and memory_limit")
    spark_log = Unicode("", config=True, help="the file a Spark session started in the kernel logs to (empty: Spark's default)")
    spark_remote = Unicode("", config=True, help="the Spark Connect server the kernel's Spark sessions run on")
    inputs = Unicode("", config=True, help="JSON: the notebooks still running whose artifacts the kernel waits for")
    library_threads = Integer(0, config=True, help="threads of OpenMP and the BLAS libraries (0: their default)")

    async def _async_pre_start_kernel(self, **kw):  # the kernel's environment: this process's, plus its share
        kw["env"] = {**kw.get("env", os.environ), engine.SHARE_VARIABLE: str(self.duckdb_share)}
        if self.spark_log:
            kw["env"][engine.SPARK_LOG_VARIABLE] = self.spark_log
        if self.spark_remote:
            kw["env"][engine.REMOTE_VARIABLE] = self.spark_remote
        if self.inputs:
            kw["env"][artifacts.INPUTS_VARIABLE] = self.inputs
        kw["env"] = _with_library_threads(kw["env"], self.library_threads)
        return await super()._async_pre_start_kernel(**kw)

    zygote: warm_kernels.Zygote | None = None  # the run's, while it runs (:func:`_warm_kernels`)

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw) -> None:
        """The kernel forked from the run's zygote, already holding the notebooks' libraries (2.5-3.4 s less per
        notebook: :mod:`helpers.warm_kernels`); without one, or for a kernel of another Python, as Jupyter starts it."""
        zygote, p = TrackedKernelManager.zygote, self.provisioner
        try:
            p.process = zygote.start_kernel(kernel_cmd, kw.get("env") or os.environ, kw.get("cwd")) if (
                zygote is not None and zygote.can_start(kernel_cmd)) else None
        except (OSError, RuntimeError):  # the zygote has ended (killed, out of memory): this kernel starts afresh
            p.process = None
        if p.process is None:
            return await super()._async_launch_kernel(kernel_cmd, **kw)
        p.pid = p.pgid = p.process.pid  # it leads its own process group, as Jupyter starts a kernel
        p.cwd = kw.get("cwd", Path.cwd())
        self._reconcile_connection_info(p.connection_info)

    async def _async_post_start_kernel(self, **kwargs) -> None:  # start_kernel's last step
        await super()._async_post_start_kernel(**kwargs)
        with _LIVE_KERNELS_LOCK:
            _LIVE_KERNELS.add(self)

    async def _async_interrupt_kernel(self) -> None:
        """Interrupt the kernel, but not on the way to its shutdown: jupyter_client interrupts every kernel before
        asking it to shut down, and a kernel still finishing its last message (a notebook's figures) then prints
        "ERROR | KeyboardInterrupt caught in kernel." among the run's progress lines. The shutdown request stops it
        on its own; the runner's stop signals the kernels itself (:func:`_signal_kernels`)."""
        if not self.shutting_down:
            await super()._async_interrupt_kernel()


def _kernel_processes() -> list:
    found = []
    with _LIVE_KERNELS_LOCK:
        managers = list(_LIVE_KERNELS)
    for km in managers:
        process = getattr(getattr(km, "provisioner", None), "process", None)
        if process is not None and process.poll() is None:
            found.append(process)
    return found


def _signal_kernels(signum: int) -> None:
    for process in _kernel_processes():
        try:
            os.kill(process.pid, signum)
        except OSError:  # exited in the meantime
            pass


def _stop_kernels(grace_seconds: float = 10.0) -> None:
    """After an interrupt: wait for the kernels (interrupted, then shut down by nbclient) to exit;
    kill any still running, so no kernel writes into the month's folders after the run has ended."""
    deadline = time.monotonic() + grace_seconds
    while _kernel_processes() and time.monotonic() < deadline:
        time.sleep(0.1)
    for process in _kernel_processes():
        process.kill()
        process.wait(timeout=5)


class _StopRequest:
    """The signal that asked the run to stop, shared by the signal handler and the notebook loop."""

    def __init__(self):
        self.signal_name: str | None = None

    def check(self, **_hook_kwargs) -> None:
        """Raise :class:`Interrupted` once a stop was asked for (also nbclient's ``on_cell_execute``
        hook, so no further cell starts)."""
        if self.signal_name is not None:
            raise Interrupted(self.signal_name)


class _Inputs:
    """Whether a notebook may go on. A notebook the declarations name is never held here (ready from the start):
    its kernel waits in each read of an artifact whose maker still runs (:func:`helpers.artifacts.await_maker`,
    told by :func:`_inputs_for`). One they do not name (``hold_all``) may start before (a free place beside the
    notebooks it waits for) and run its parameters cell; :meth:`before_cell`, nbclient's ``on_cell_execute``
    hook, holds its first cell after the parameters until the run loop sets ``ready``, once every notebook it
    waits for has finished."""

    def __init__(self, stop_request: _StopRequest, hold_all: bool = False):
        self.ready = threading.Event()
        if not hold_all:
            self.ready.set()
        self.waited = 0.0  # seconds held, left out of the notebook's time
        self._stop, self.hold_all = stop_request, hold_all

    def before_cell(self, cell=None, **_hook_kwargs) -> None:
        self._stop.check()
        if self.ready.is_set() or cell is None or {"parameters", "injected-parameters"} & set(
                cell.get("metadata", {}).get("tags", [])):
            return
        started = time.perf_counter()
        while not self.ready.wait(0.1):
            self._stop.check()
        self.waited += time.perf_counter() - started


@contextmanager
def _signals_interrupt(kill_after_seconds: float = 15.0):
    """SIGTERM (a scheduler's stop, ``timeout``, ``kill``) and SIGINT (Ctrl-C) stop the run as
    :class:`Interrupted`.

    While a kernel runs a cell, the signal is passed on to it as SIGINT: the cell stops with
    KeyboardInterrupt, so the artifact it was writing is never renamed into place (each write goes to a
    temp file first, :func:`helpers.artifacts.atomic`, which removes it), papermill shuts the idle
    kernel down, and the notebook loop raises :class:`Interrupted` (:meth:`_StopRequest.check`). A
    kernel still busy ``kill_after_seconds`` later (stuck in C code) is killed; the run's cleanup then
    removes its temp files. Between notebooks the signal raises at once. A second signal is ignored.
    Outside the main thread (where Python does not deliver signals) nothing changes.
    """
    request = _StopRequest()
    timers: list[threading.Timer] = []
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def stop(signum, frame):
        if request.signal_name is not None:
            return
        request.signal_name = signal.Signals(signum).name
        if _kernel_processes():
            _signal_kernels(signal.SIGINT)
            kill = getattr(signal, "SIGKILL", signal.SIGTERM)  # Windows has no SIGKILL
            timer = threading.Timer(kill_after_seconds, _signal_kernels, args=(kill,))
            timer.daemon = True
            timer.start()
            timers.append(timer)
        else:
            raise Interrupted(request.signal_name)

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield request
    finally:
        for timer in timers:
            timer.cancel()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _remove_partial_files(*folders: Path) -> list[str]:
    """Temp files a stopped run may leave: artifact writes in progress (``.<file>.<random>.tmp``,
    :func:`helpers.artifacts.atomic`) and papermill's output notebook (``.<NN_name>.<random>.ipynb``)."""
    removed = []
    for folder in folders:
        for pattern in (".*.tmp", ".[0-9][0-9]_*.ipynb"):
            for p in folder.glob(pattern):
                artifacts.remove(p)  # a Spark write in progress is a folder
                removed.append(p.name)
    return removed


def _remove_stale_artifacts(processed_dir: Path, stem: str, since_ns: int) -> list[str]:
    """Remove the artifacts notebook ``stem`` declares that it did not write in this run (older than
    ``since_ns``): after it failed, later notebooks must not read an earlier run's files as this run's.
    A file's CSV copy (customers_scored.csv) goes with it. Returns the file names removed."""
    removed = []
    for name, spec in artifacts.ARTIFACTS.items():
        if spec.made_by != stem:
            continue
        declared = artifacts.path(processed_dir, name)
        for p in sorted({declared, declared.with_suffix(".csv")}):
            if p.is_file() and p.stat().st_mtime_ns < since_ns:
                p.unlink()
                removed.append(p.name)
    return removed


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
              log=print, cell_progress: bool | None = None, preset: str | None = None) -> list[Path]:
    """Run the numbered notebooks (``notebooks/NN_*.ipynb``, sorted) for one shop-month.

    Parameters
    ----------
    as_of : str
        Analysis cut-off ``'YYYY-MM-DD'``; its month names the report folder.
    raw_dir : str or Path
        The shop's raw folder (``data/raw/<shop>``); its name is the shop's name.
    config_path : str or Path; only : list of str, optional
        Config file passed to every notebook (relative to ``root``); NN prefixes to run (``['01', '04']``, default all).
    root, notebooks_dir, reports_dir, processed_base : str or Path, optional
        The project root (default: the folder with ``pyproject.toml`` above the current directory; the
        kernel's working directory), ``root/notebooks``, ``root/reports``, ``root/data/processed``.
    kernel_name : str
        Jupyter kernel to execute with; ``log`` (callable) receives one line per notebook and a total.
    cell_progress : bool, optional
        A progress bar of the cells on stderr; default: when stderr is a terminal, not in scheduled runs.
    preset : str, optional
        A platform export preset (``shopify``, ``woocommerce``) overriding ``columns.preset``: the
        notebooks then read the changed config kept as ``reports/<shop>/<YYYY-MM>/config.yml``.

    Returns
    -------
    list of Path
        The HTML reports written, in the order of the notebooks (their numbers).

    Raises
    ------
    RunFailed
        A cell raised: its partial report is written, the notebook's earlier artifacts are removed, the
        later notebooks still run, the index is rebuilt; it names the first failure (``.later``: the rest).
    Interrupted
        SIGTERM or SIGINT arrived: the kernel is stopped, no temp file is left, run.json and the index say so.
    """
    plan = _plan_month(as_of, raw_dir, config_path, only, root, notebooks_dir, reports_dir, processed_base, preset)
    record = _new_record(plan)
    _write_record(plan.out_dir, record)
    log(f"{plan.shop} {plan.month}: running {len(plan.notebooks)} notebook(s), {plan.at_once_said}, "
        f"with as_of={plan.as_of}")
    run_start, show_cells = time.perf_counter(), sys.stderr.isatty() if cell_progress is None else cell_progress
    with _signals_interrupt() as stop_request:  # SIGTERM, Ctrl-C: stop cleanly, say so in run.json and the index
        try:
            written, failures = _run_notebooks(plan, record, stop_request, kernel_name, show_cells, log)
            record["status"] = "failed" if failures else "ok"
            record["finished"] = _now()
            _write_record(plan.out_dir, record)
            index = build_index(plan.reports_dir, plan.processed_base)
        except BaseException as err:
            _record_stop(plan, record, err)
            raise
    _log_outcome(plan, index, len(written) + len(failures), failures, time.perf_counter() - run_start, log)
    if failures:
        raise failures[0].with_later(failures[1:])
    return written


def _run_notebooks(plan: _MonthPlan, record: dict, stop_request, kernel_name: str, show_cells: bool,
                   log) -> tuple[list[Path], list[RunFailed]]:
    """Run the plan's notebooks, at most ``plan.at_once`` at a time; each reads the artifacts of a notebook it waits
    for once that one has ended (ok or failed: :func:`helpers.artifacts.await_maker`, or :class:`_Inputs` for a
    notebook the declarations do not name); one progress line each as it ends. Side by side, the notebook most
    others wait for starts first (03 before 02: the longest chain), always after those it waits for, so the
    notebooks a running one waits for are running or ended; of two that as many wait for, the one that waits for
    more (06, the end of the longest chain, before 02). Returns the reports written and the failures, in the
    plan's order."""
    declared = artifacts.notebook_inputs()
    ended_dir = Path(tempfile.mkdtemp(prefix="retention-ended-"))  # a file per notebook that ended: _mark_ended
    runs = [_Run(number, source, _Inputs(stop_request, hold_all=source.stem not in declared), ended_dir)
            for number, source in enumerate(plan.notebooks, start=1)]
    waited_for = {stem: sum(stem in waits for waits in plan.waits_for.values()) for stem in plan.waits_for}
    side_by_side = plan.at_once > 1  # then: most waited for first, then the one waiting for most (06 before 02)
    queue = sorted(runs, key=lambda r: (-waited_for[r.source.stem] * side_by_side,
                                        -len(plan.waits_for[r.source.stem]) * side_by_side, r.number))
    running, ended = {}, {}
    with _shared_spark_driver(plan) as plan, _warm_kernels(plan, kernel_name), \
            ThreadPoolExecutor(max_workers=plan.at_once, thread_name_prefix="notebook") as pool:
        try:
            while queue or running:
                while queue and len(running) < plan.at_once:
                    run = queue.pop(0)
                    share = _duckdb_share(plan, run.source.stem, ended)
                    inputs = _inputs_for(plan, run, ended)
                    running[pool.submit(_run_notebook, plan, run, stop_request, share, kernel_name, show_cells,
                                        inputs)] = run
                    _open_inputs(plan, record, running.values(), ended)
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: running[f].number):
                    run = running.pop(future)
                    ended[run.source.stem] = _note_end(plan, record, run, future.result(), log)
                _open_inputs(plan, record, running.values(), ended)
        except BaseException:
            _stop_running(stop_request)
            raise
        finally:
            shutil.rmtree(ended_dir, ignore_errors=True)
    outcomes = [ended[run.source.stem] for run in runs]
    return [o for o in outcomes if isinstance(o, Path)], [o for o in outcomes if isinstance(o, RunFailed)]


def _on_spark_server(engine_cfg: EngineConfig) -> bool:
    """Whether the month's kernels work on a Spark Connect server (the runner's shared driver, or
    ``engine.spark_remote``) rather than each on a Spark driver of its own: then they may run side by side, and
    start warm, as on DuckDB."""
    return (engine_cfg.backend.lower() in engine.SPARK
            and (engine_cfg.spark_shared_driver or bool(engine_cfg.spark_remote)))


def _shares_spark_driver(engine_cfg: EngineConfig) -> bool:
    """Whether the runner starts one Spark driver for the month's notebooks (:mod:`helpers.spark_server`): on Spark
    with ``engine.spark_shared_driver`` on and no ``engine.spark_remote`` of the config's own."""
    return _on_spark_server(engine_cfg) and not engine_cfg.spark_remote


@contextmanager
def _shared_spark_driver(plan: _MonthPlan):
    """The plan, with the URL of the Spark driver its notebooks share while the block runs (``plan.spark``), or as
    it is."""
    if plan.spark is None:
        yield plan
        return
    with spark_server.shared_driver(plan.spark, plan.out_dir / "spark.log") as remote:
        yield replace(plan, spark_remote=remote)


@contextmanager
def _warm_kernels(plan: _MonthPlan, kernel_name: str):
    """The run's kernels forked warm (:func:`warm_kernels_for`) when the memory target holds the process they are
    forked from too (``plan.warm``)."""
    if not plan.warm:
        yield False
        return
    with warm_kernels_for(plan.notebooks, kernel_name, _library_threads(plan.at_once), plan.root) as warm:
        yield warm


@contextmanager
def warm_kernels_for(notebooks: list[Path], kernel_name: str, library_threads: int = 0, cwd: Path | None = None):
    """While the block runs, :class:`TrackedKernelManager` forks its kernels from one process that has imported what
    `notebooks` import (:mod:`helpers.warm_kernels`), where the system can fork them; yields whether it does. That
    process starts in `cwd` (the kernels' folder) with the environment every kernel of the run shares (its
    numerical libraries' `library_threads`)."""
    python = warm_kernels.interpreter(kernel_name)
    if python is None:
        yield False
        return
    env = _with_library_threads(dict(os.environ), library_threads)
    sources = [cell.source for p in notebooks for cell in nbformat.read(str(p), as_version=4).cells
               if cell.cell_type == "code"]
    with warm_kernels.Zygote(python, env, warm_kernels.imports_of(sources), cwd) as zygote:
        TrackedKernelManager.zygote = zygote
        try:
            yield True
        finally:
            TrackedKernelManager.zygote = None


@dataclass
class _Run:
    """One notebook of the run: its place in the plan (1-based), its file, when its inputs are ready, and its
    run.json entry (from then on)."""
    number: int
    source: Path
    inputs: _Inputs
    ended_dir: Path  # where the run marks the notebooks that ended (_mark_ended)
    entry: dict | None = None


def _inputs_for(plan: _MonthPlan, run: _Run, ended: dict) -> dict | None:
    """What a notebook's kernel is told of the notebooks it waits for that still run (None: none, or a notebook
    the declarations do not name, held by :class:`_Inputs`): see :data:`helpers.artifacts.INPUTS_VARIABLE`."""
    waits = sorted(plan.waits_for[run.source.stem] - ended.keys())
    if not waits or run.inputs.hold_all:
        return None
    return {"month": str(plan.processed_dir.resolve()), "ended": str(run.ended_dir), "notebook": run.source.stem,
            "waits_for": waits, "runner_pid": os.getpid()}


def _mark_ended(run: _Run) -> None:
    """Tell the kernels waiting for this notebook's artifacts that they are final (written, or removed as stale)."""
    artifacts.mark_ended(run.ended_dir, run.source.stem)


def _kernel_waited(run: _Run) -> float:
    """Seconds the notebook's kernel waited in reads for the notebooks it waits for (helpers.artifacts.await_maker)."""
    return artifacts.waited_seconds(run.ended_dir, run.source.stem)


def _duckdb_share(plan: _MonthPlan, stem: str, ended: dict) -> int:
    """How many DuckDBs may work at once while notebook `stem` does: 1 when every notebook still to finish is
    ordered with it (it waits for them, or they for it), else ``plan.at_once``."""
    waits = plan.waits_for
    alone = all(other in waits[stem] or stem in waits[other]
                for other in waits if other != stem and other not in ended)
    return 1 if alone else plan.at_once


def _open_inputs(plan: _MonthPlan, record: dict, running, ended: dict) -> None:
    """Let each running notebook past its imports once every notebook it waits for has ended; from then on
    run.json lists it (a kernel stopped while it waited had done nothing to the month)."""
    for run in running:
        if run.entry is None and (not run.inputs.hold_all or plan.waits_for[run.source.stem] <= ended.keys()):
            run.entry = _note_start(plan, record, run.source.stem)
            run.inputs.ready.set()


def _stop_running(stop_request: _StopRequest) -> None:
    """The run stops (a signal, or an error in this process): no notebook starts another cell, the kernels are
    interrupted and, if still running after a grace period, killed, so the notebooks' threads end."""
    if stop_request.signal_name is None:  # an error here, not a signal: the kernels were not told yet
        stop_request.signal_name = "the runner's error"
        _signal_kernels(signal.SIGINT)
    _stop_kernels()


def _log_outcome(plan: _MonthPlan, index: Path, total: int, failures: list, seconds: float, log) -> None:
    """The run's last line: how many notebooks ran, how long it took, and where the reports are."""
    where = f"reports in {_shown(plan.out_dir, plan.root)}/, index {_shown(index, plan.root)}"
    if failures:
        log(f"{plan.shop} {plan.month}: {total - len(failures)} of {total} notebook(s) done in {seconds:.1f} s, "
            f"{len(failures)} failed; {where}")
    else:
        log(f"{plan.shop} {plan.month}: {total} notebook(s) done in {seconds:.1f} s; {where}")


@dataclass(frozen=True)
class _MonthPlan:
    """One shop-month's run, worked out before anything runs: folders, notebooks and parameters."""
    as_of: str
    shop: str
    root: Path
    notebooks: list[Path]
    out_dir: Path           # reports/<shop>/<YYYY-MM>
    processed_dir: Path     # data/processed/<shop>/<YYYY-MM>
    reports_dir: Path
    processed_base: Path
    parameters: dict
    waits_for: dict[str, set[str]]  # notebook -> the notebooks of this run it waits for (_waits_for)
    at_once: int                    # notebooks run side by side at most (_at_once)
    at_once_said: str               # ... and why, for the run's first line
    warm: bool = False              # kernels forked warm (_warm_kernels): the memory target holds one more kernel
    spark: EngineConfig | None = None  # on Spark with engine.spark_shared_driver: the driver the runner starts
    spark_remote: str = ""          # ... its URL while the notebooks run (_shared_spark_driver)

    @property
    def month(self) -> str:  # 'YYYY-MM', the report folder's name
        return self.as_of[:7]


def _plan_month(as_of, raw_dir, config_path, only, root, notebooks_dir, reports_dir, processed_base,
                preset) -> _MonthPlan:
    """Check the inputs, make the month's folders and work out the four notebook parameters."""
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
    engine_cfg = load_config(config_file).engine
    at_once, at_once_said = _at_once(engine_cfg, raw_path)
    out_dir = reports_dir / shop / month
    processed_dir = processed_base / shop / month
    out_dir.mkdir(parents=True, exist_ok=True)
    processed_dir.mkdir(parents=True, exist_ok=True)
    if preset is not None:
        config_file = with_preset(config_file, preset, out_dir / "config.yml")
    parameters = {
        "as_of": as_of,
        "raw_dir": _shown(raw_path, root, trailing_slash=True),
        "processed_dir": _shown(processed_dir, root, trailing_slash=True),
        "config_path": _shown(config_file, root),
    }
    return _MonthPlan(as_of, shop, root, notebooks, out_dir, processed_dir, reports_dir, processed_base,
                      parameters, _waits_for(notebooks), at_once, at_once_said, _warm(engine_cfg, raw_path, at_once),
                      engine_cfg if _shares_spark_driver(engine_cfg) else None)


def _waits_for(notebooks: list[Path]) -> dict[str, set[str]]:
    """Each notebook of the run -> the notebooks of the run it waits for, directly or through another: the
    makers of what it reads (:func:`helpers.artifacts.notebook_inputs`), which come before it. One left out of
    the run (``only``) is taken as done, its files present. A notebook the declarations do not name waits for
    every notebook before it."""
    declared = artifacts.notebook_inputs()
    stems = [p.stem for p in notebooks]
    out: dict[str, set[str]] = {}
    for i, stem in enumerate(stems):
        direct = declared.get(stem, set(stems[:i]))
        out[stem] = set().union(*({before} | out[before] for before in stems[:i] if before in direct))
    return out


# A notebook's peak memory, estimated from the month's order lines (DESIGN: memory grows with the lines, not
# the notebook count). Measured on the 10.1M-line benchmark shop (issue 28, quiet machine): the largest notebook
# (06) peaked at 5.5 GB, 01 at 3.6, 05 at 3.1, 02 at 2.8; a notebook of the 150k-line demo month at 0.3-0.4 GB.
KERNEL_BYTES = 400 * 10**6  # a kernel with its imports
BYTES_PER_LINE = 500        # (5.5 GB - 0.4 GB) / 10.1M lines, the largest notebook's
CSV_LINE_BYTES = 90         # a line of the contract's orders.csv (the benchmark's 10.1M lines: 930 MB)


def _at_once(engine_cfg: EngineConfig, raw_dir: Path) -> tuple[int, str]:
    """How many notebooks may run at once, and a clause saying so for the run's first line.

    ``engine.parallel_notebooks`` at most, no more than the machine's cores, and only as many as fit in the
    memory target: ``engine.memory_limit`` (null: 80 % of the machine's memory, DuckDB's default) must hold
    that many notebooks' estimated peaks (:data:`KERNEL_BYTES` + :data:`BYTES_PER_LINE` per order line,
    :func:`_order_lines`): the memory target wins over parallelism. DuckDB is the only engine given a share. Spark
    runs notebooks side by side only as sessions of one Spark Connect server (:func:`_on_spark_server`): a driver of
    their own each would be a JVM each.
    """
    wanted = min(engine_cfg.parallel_notebooks, os.cpu_count() or 1)
    if wanted == 1:
        why = "engine.parallel_notebooks: 1" if engine_cfg.parallel_notebooks == 1 else "one core"
        return 1, f"one at a time ({why})"
    if engine_cfg.backend.lower() != "duckdb" and not _on_spark_server(engine_cfg):
        return 1, f"one at a time (engine.backend {engine_cfg.backend})"
    target, (lines, need) = engine.memory_bytes(engine_cfg), _notebook_bytes(raw_dir)
    fits = max(1, min(wanted, target // need)) if target else 1
    if fits == 1:
        return 1, (f"one at a time (about {lines:,} order lines: two notebooks would need about {2 * need / 1e9:.1f} "
                   f"GB, over the memory target {engine_cfg.memory_limit or f'{(target or 0) / 1e9:.1f} GB'})")
    if engine_cfg.backend.lower() != "duckdb":
        return fits, f"up to {fits} side by side (each a session of one Spark driver)"
    threads, memory_limit = engine.duckdb_share(engine_cfg, fits)
    return fits, f"up to {fits} side by side (each DuckDB then {threads} thread{'s' * (threads > 1)}, {memory_limit})"


def _warm(engine_cfg: EngineConfig, raw_dir: Path, at_once: int) -> bool:
    """Whether the run's kernels may start warm (:func:`_warm_kernels`): on DuckDB or a Spark Connect server
    (:func:`_on_spark_server`: no kernel starts a JVM), when the memory target holds the
    process they are forked from (:data:`KERNEL_BYTES`, a kernel's imports) beside `at_once` notebooks' estimated
    peaks (:func:`_at_once`), and ``engine.warm_kernels`` is on. The 10.1M-line benchmark month does not fit: the
    memory target wins over the 2.5-3 s each kernel would save."""
    target, (_, need) = engine.memory_bytes(engine_cfg), _notebook_bytes(raw_dir)
    return (engine_cfg.warm_kernels and (engine_cfg.backend.lower() == "duckdb" or _on_spark_server(engine_cfg))
            and target is not None
            and target >= at_once * need + KERNEL_BYTES)


def _notebook_bytes(raw_dir: Path) -> tuple[int, int]:
    """(the month's order lines, :func:`_order_lines`; a notebook's estimated peak: :data:`KERNEL_BYTES` +
    :data:`BYTES_PER_LINE` per line)."""
    lines = _order_lines(raw_dir)
    return lines, KERNEL_BYTES + BYTES_PER_LINE * lines


def _order_lines(raw_dir: Path) -> int:
    """The order lines a month may hold, estimated before anything runs from the shop's raw folder: the rows of
    every Parquet file (its metadata) plus every other file's size / :data:`CSV_LINE_BYTES`. Customers and
    campaigns files count too, and earlier months hold fewer lines: an estimate on the safe side."""
    lines = 0
    for p in raw_dir.rglob("*"):
        if p.is_file():
            lines += artifacts.parquet_rows(p) if p.suffix.lower() == ".parquet" else (
                p.stat().st_size // CSV_LINE_BYTES)
    return lines


def _new_record(plan: _MonthPlan) -> dict:
    """run.json at the start. pid and host let the index tell a run still going from one killed outright
    (SIGKILL, power loss)."""
    return {"shop": plan.shop, "month": plan.month, "as_of": plan.as_of, "status": "running",
            "started": _now(), "finished": None, "pid": os.getpid(), "host": socket.gethostname(),
            "parameters": plan.parameters, "notebooks": []}


def _note_start(plan: _MonthPlan, record: dict, stem: str) -> dict:
    """A notebook starts on the month: its entry in run.json (the index shows which notebooks a stopped run
    was in), the entries in the plan's order."""
    entry = {"name": stem, "status": "running", "seconds": None, "title": None}
    record["notebooks"] = sorted([*record["notebooks"], entry], key=lambda e: e["name"])
    _write_record(plan.out_dir, record)
    return entry


def _note_end(plan: _MonthPlan, record: dict, run: _Run, outcome: tuple, log) -> Path | RunFailed:
    """A notebook ended: its entry in run.json and its progress line. Returns its page, or its failure."""
    failure, seconds, started_ns, title, saved = outcome
    number, stem, total = run.number, run.source.stem, len(plan.notebooks)
    run.entry = run.entry or _note_start(plan, record, stem)  # it ended before its inputs were ready
    run.entry.update(seconds=round(seconds, 1), title=title)
    if failure is None:
        run.entry["status"] = "ok"
        log(f"[{number}/{total}] {stem} ... done in {seconds:.1f} s")
        return plan.out_dir / f"{stem}.html"
    error = _record_failure(plan, run.source, record, run.entry, failure, started_ns, saved)
    _mark_ended(run)  # its earlier run's artifacts are gone now
    cell = f" at cell {error.cell_index}" if error.cell_index is not None else ""
    log(f"[{number}/{total}] {stem} ... FAILED{cell} after {seconds:.1f} s: {error.ename}")
    return error


def _run_notebook(plan: _MonthPlan, run: _Run, stop_request, duckdb_share: int, kernel_name: str,
                  show_cells: bool, inputs: dict | None = None) -> tuple[Exception | None, float, int, str | None, bool]:
    """Execute one notebook with papermill (in a thread of its own: nbclient runs its own event loop there) and
    publish its executed copy and page; the notebooks waiting for its artifacts go on as soon as it ran. Returns
    (the failure or None, seconds without the wait for its inputs, the start in ns, the title, whether the executed
    notebook was saved)."""
    stem = run.source.stem
    ipynb_path, html_path = plan.out_dir / f"{stem}.ipynb", plan.out_dir / f"{stem}.html"
    fd, tmp_name = tempfile.mkstemp(dir=plan.out_dir, prefix=f".{stem}.", suffix=".ipynb")
    os.close(fd)
    tmp, title = Path(tmp_name), None
    started, started_ns = time.perf_counter(), time.time_ns()
    try:
        failure = None
        try:  # the kernel's folder as nbclient's resource path: papermill's cwd= would chdir this whole process
            executed = pm.execute_notebook(
                str(run.source), str(tmp), parameters=plan.parameters, kernel_name=kernel_name, engine_name=ENGINE_NAME,
                resources={"metadata": {"path": str(plan.root)}}, progress_bar=show_cells, log_output=False,
                config=kernel_config(duckdb_share, plan.out_dir / "spark.log", inputs, _library_threads(plan.at_once),
                                     plan.spark_remote),
                on_cell_execute=run.inputs.before_cell,
            )
        except Exception as err:  # a failing cell (PapermillExecutionError), a kernel that died or never started
            failure, executed = err, None
        if failure is None:
            _mark_ended(run)  # a failure's stale artifacts go first (_note_end)
        seconds = time.perf_counter() - started - run.inputs.waited - _kernel_waited(run)
        stop_request.check()  # a stopped notebook's page would only show the interruption
        nb = executed if executed is not None else _read_if_saved(tmp)  # what papermill wrote, without reading it
        if nb is not None:
            _tidy_saved_notebook(nb, run.source, ipynb_path, plan.root)
            title = _notebook_title(nb)
            artifacts.write_file(ipynb_path, _notebook_text(nb))
            artifacts.write_file(html_path, notebook_to_html(nb, f"{plan.shop} · {plan.month} · {stem}"))
    finally:
        tmp.unlink(missing_ok=True)
    return failure, seconds, started_ns, title, nb is not None


def _record_failure(plan: _MonthPlan, source: Path, record: dict, entry: dict, failure: Exception,
                    started_ns: int, saved: bool) -> RunFailed:
    """A failed notebook in run.json. Later notebooks still run: each reads the artifacts that exist and
    says what is missing, so the files this notebook left from an earlier run (they would pass for this
    run's) are removed."""
    entry["status"] = "failed"
    entry["stale_removed"] = _remove_stale_artifacts(plan.processed_dir, source.stem, started_ns)
    error = _run_failed(failure, source.name, plan.out_dir / f"{source.stem}.ipynb" if saved else None,
                        plan.out_dir / f"{source.stem}.html" if saved else None, plan.root)
    record.setdefault("errors", []).append(
        {"notebook": error.notebook, "cell_index": error.cell_index, "exec_count": error.exec_count,
         "ename": error.ename, "evalue": error.evalue})
    record["errors"].sort(key=lambda e: e["notebook"])  # notebooks side by side may fail out of order
    record["error"] = record["errors"][0]
    return error


def _record_stop(plan: _MonthPlan, record: dict, err: BaseException) -> None:
    """An exception or a signal stopped the run: stop the kernel, remove partial files, and say so in
    run.json and the index."""
    record["status"] = "failed" if isinstance(err, Exception) else "interrupted"
    if isinstance(err, Interrupted):
        record["interrupted_by"] = err.signal_name
    for entry in record["notebooks"]:
        if entry["status"] == "running":
            entry["status"] = record["status"]
    _stop_kernels()
    _remove_partial_files(plan.processed_dir, plan.out_dir)
    record["finished"] = _now()
    _write_record(plan.out_dir, record)
    build_index(plan.reports_dir, plan.processed_base)


def with_preset(config_file: Path, preset: str, target: Path) -> Path:
    """`config_file` with ``columns.preset`` set, written to `target` (checked first: a wrong name stops here)."""
    return artifacts.write_file(target, config_text_with(config_file, {"columns": {"preset": preset}},
                                                         f"retention run --preset {preset}"))


def backfill(month_from: str, month_to: str, raw_dir: str | Path,
             config_path: str | Path = "config/default.yml", **kwargs) -> list[Path]:
    """Run :func:`run_month` for the last day of every month from ``month_from`` to ``month_to``
    (``'YYYY-MM'``, inclusive), oldest first. Stops after the first month that fails
    (:class:`RunFailed`, raised once that month has run all its notebooks).
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


# What Java prints on its own when Spark 4 starts a driver (its launcher always adds this module; not Spark's
# log, which goes to spark.log): the kernel captures it into the first cell that starts Spark
JVM_NOTICE = "WARNING: Using incubator modules: jdk.incubator.vector"


def _tidy_saved_notebook(nb, source: Path, ipynb_path: Path, root: Path) -> None:
    """Replace the machine paths papermill records (its temp output, the absolute input) and
    strip the root prefix from tracebacks, so saved notebooks and reports carry none; drop the notice Java
    prints when a Spark driver starts (:data:`JVM_NOTICE`)."""
    meta = nb.metadata.get("papermill")
    if meta is not None:
        meta["input_path"] = _shown(source, root)
        meta["output_path"] = _shown(ipynb_path, root)
    prefix = str(root) + os.sep
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                output["traceback"] = [line.replace(prefix, "") for line in output["traceback"]]
            elif output.get("output_type") == "stream" and JVM_NOTICE in output.get("text", ""):
                output["text"] = "".join(line for line in output["text"].splitlines(keepends=True)
                                         if not line.startswith(JVM_NOTICE))
        if "outputs" in cell:
            cell["outputs"] = [o for o in cell["outputs"] if o.get("output_type") != "stream" or o.get("text")]


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
