"""Run the numbered notebooks for one shop-month with papermill and publish HTML reports.

One call of :func:`run_month` executes ``notebooks/NN_*.ipynb`` in order with the same four
parameters (``as_of``, ``raw_dir``, ``processed_dir``, ``config_path``), saves each executed
notebook to ``reports/<shop>/<YYYY-MM>/NN_name.ipynb``, exports it to ``NN_name.html`` for business
readers (code hidden, figures inlined), records the run in ``run.json`` and rebuilds
``reports/index.html``. On a failing cell the run stops, the partly executed notebook is still
published with the error visible, and :class:`RunFailed` says where it broke.

Layout written (nothing outside the month's own folder and ``index.html`` is touched)::

    reports/index.html
    reports/<shop>/<YYYY-MM>/NN_name.ipynb
    reports/<shop>/<YYYY-MM>/NN_name.html
    reports/<shop>/<YYYY-MM>/run.json
"""

from __future__ import annotations

import calendar
import copy
import html
import json
import os
import re
import sys
import tempfile
import time
from datetime import date, datetime, timezone
from pathlib import Path
from urllib.parse import quote

import nbformat

from helpers.paths import project_root as find_project_root
from helpers.paths import shop_name

NOTEBOOK_PATTERN = re.compile(r"^(\d{2})_.+\.ipynb$")
MONTH_PATTERN = re.compile(r"^\d{4}-\d{2}$")
RUN_RECORD = "run.json"
INDEX_NAME = "index.html"
# Cells papermill tags: the notebook's defaults and the values it injected below them.
PARAMETER_TAGS = {"parameters", "injected-parameters"}


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
    import uuid

    from jupyter_core.paths import jupyter_runtime_dir
    from traitlets.config import Config

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


def _atomic_write(path: Path, data: str | bytes) -> None:
    """Write via a temp file in the same folder and ``os.replace``, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; reports are published to other readers
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

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
                    nbformat.write(nb, str(tmp))
                    os.chmod(tmp, 0o644)
                    os.replace(tmp, ipynb_path)  # papermill wrote the temp file; move into place
                    _atomic_write(html_path, notebook_to_html(nb, f"{shop} · {month} · {stem}"))

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
    _atomic_write(out_dir / RUN_RECORD, json.dumps(record, indent=2, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------------------------------------
# HTML


def notebook_to_html(nb, title: str) -> str:
    """Standalone HTML for business readers: code and prompts hidden, parameter cells dropped,
    figures inlined as base64 PNG (nbconvert's default), error outputs kept visible.

    In a partly executed notebook the cells papermill never reached are dropped, so the report
    ends at the error.
    """
    from nbconvert import HTMLExporter

    nb = copy.deepcopy(nb)
    nb.cells = [cell for cell in nb.cells if _shown_in_report(cell)]
    nb.metadata["title"] = title  # the lab template's <title>
    exporter = HTMLExporter(template_name="lab", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True, embed_images=True)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    return body


def _shown_in_report(cell) -> bool:
    if PARAMETER_TAGS & set(cell.metadata.get("tags", [])):
        return False
    if cell.metadata.get("papermill", {}).get("status") == "pending":
        return False
    # With inputs hidden, a code cell without output is an empty box.
    return not (cell.cell_type == "code" and not cell.get("outputs"))


# ---------------------------------------------------------------------------------------------
# Index


def build_index(reports_dir: str | Path, processed_base: str | Path | None = None) -> Path:
    """(Re)write ``reports_dir/index.html``: one section per shop with small trend charts (revenue,
    active customers, repeat rate, CLV at risk) read from every month's artifacts in
    ``processed_base/<shop>/`` (default ``<reports_dir>/../data/processed``), then the months newest
    first, each linking its reports (relative links) with the latest run's status from ``run.json``.

    Everything is rebuilt from the files on each call, so rerunning an old month updates exactly
    that month's points and links. Charts are inline SVG: the page needs no other file.
    """
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    processed_base = Path(processed_base) if processed_base is not None else reports_dir.parent / "data" / "processed"
    sections = []
    for shop_dir in sorted(p for p in reports_dir.iterdir() if p.is_dir()):
        months = sorted((p for p in shop_dir.iterdir() if p.is_dir() and MONTH_PATTERN.match(p.name)),
                        key=lambda p: p.name, reverse=True)
        items = [_month_html(shop_dir.name, m) for m in months]
        items = [item for item in items if item]
        if items:
            trends = _trends_html(processed_base / shop_dir.name)
            sections.append(f'<section>\n<h2>{html.escape(shop_dir.name)}</h2>\n{trends}'
                            + "\n".join(items) + "\n</section>")
    body = "\n".join(sections) or "<p class=\"empty\">No reports yet.</p>"
    page = _INDEX_TEMPLATE.replace("{body}", body)
    path = reports_dir / INDEX_NAME
    _atomic_write(path, page)
    return path


def _trends_html(shop_processed: Path) -> str:
    """The shop's trend charts as inline SVG, or "" when no month has KPI, CLV or churn artifacts."""
    from helpers.summary import TREND_METRICS, trend_table

    try:
        table = trend_table(shop_processed)
    except Exception as err:  # a broken artifact must not take the index down with it
        return f'<p class="error">Trends unavailable: {html.escape(type(err).__name__)}: {html.escape(str(err))}</p>\n'
    if table.empty:
        return ""
    charts = "".join(_sparkline_svg(key, title, kind, table[key]) for key, (title, kind) in TREND_METRICS.items())
    return (f'<div class="trends" aria-label="trends">{charts}</div>\n'
            f'<p class="meta" style="margin-left:0">Trends from each month\'s own artifacts '
            f'({html.escape(table.index[0])} to {html.escape(table.index[-1])}); CLV at risk = predicted '
            f'12-month CLV of the customers at high churn risk.</p>\n')


def _format_value(value: float, kind: str) -> str:
    if kind == "share":
        return f"{value:.1%}"
    if kind == "money" and abs(value) >= 10_000:
        return f"{value / 1000:,.0f}k"
    return f"{value:,.0f}"


def _month_number(month: str) -> int:
    return int(month[:4]) * 12 + int(month[5:7])


def _sparkline_svg(key: str, title: str, kind: str, series, width: int = 172, height: int = 80) -> str:
    """A small line chart of ``series`` (index 'YYYY-MM', NaN = no data) as inline SVG. Each point
    carries a <title> tooltip; ``data-points`` lists month=value for tests and scripts."""
    points = [(str(m), float(v)) for m, v in series.items() if v == v]  # v == v drops NaN
    data = ";".join(f"{m}={v:.6g}" for m, v in points)
    head = (f'<figure class="trend" data-metric="{key}" data-points="{html.escape(data)}">'
            f'<figcaption>{html.escape(title)}')
    if not points:
        return head + '</figcaption><p class="meta">no data</p></figure>'
    latest = points[-1][1]
    values = [v for _, v in points]
    span = f"{_format_value(min(values), kind)} to {_format_value(max(values), kind)}"
    head += (f' <b>{html.escape(_format_value(latest, kind))}</b>'
             f'<br><span class="range">range {html.escape(span)}</span></figcaption>')
    left, right, top, bottom = 4, 4, 8, 18
    lo, hi = min(v for _, v in points), max(v for _, v in points)
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    months = [str(m) for m in series.index]
    # x is calendar time, so a month that was never run leaves a visible gap rather than a squeeze.
    first, last = _month_number(months[0]), _month_number(months[-1])

    def xy(month: str, value: float) -> tuple[float, float]:
        pos = (_month_number(month) - first) / (last - first) if last > first else 0.5
        x = left + (width - left - right) * pos
        y = top + (height - top - bottom) * (1 - (value - lo) / (hi - lo))
        return round(x, 1), round(y, 1)

    coords = [xy(m, v) for m, v in points]
    line = " ".join(f"{x},{y}" for x, y in coords)
    dots = "".join(f'<circle cx="{x}" cy="{y}" r="2.2"><title>{html.escape(m)}: '
                   f'{html.escape(_format_value(v, kind))}</title></circle>'
                   for (m, v), (x, y) in zip(points, coords))
    axis = (f'<text x="{left}" y="{height - 4}" class="tick">{html.escape(months[0])}</text>'
            f'<text x="{width - right}" y="{height - 4}" class="tick" text-anchor="end">{html.escape(months[-1])}</text>')
    svg = (f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
           f'aria-label="{html.escape(title)} by month">'
           f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" class="base"/>'
           f'<polyline points="{line}" class="line"/>{dots}{axis}</svg>')
    return head + svg + "</figure>"


def _month_html(shop: str, month_dir: Path) -> str:
    reports = sorted(month_dir.glob("[0-9][0-9]_*.html"))
    if not reports:
        return ""
    record = _read_record(month_dir)
    latest = {n["name"]: n for n in record.get("notebooks", [])}
    status = record.get("status")
    badges, notes = "", []
    if status == "failed":
        badges = '<span class="badge failed">latest run failed</span>'
        err = record.get("error") or {}
        if err:
            cell = f" at cell {err['cell_index']}" if err.get("cell_index") is not None else ""
            notes.append(f"{err.get('notebook')} failed{cell}: {err.get('ename')}: "
                         f"{err.get('evalue')}")
    elif status in {"running", "interrupted"}:
        badges = f'<span class="badge failed">latest run {status}</span>'
    meta = []
    if record.get("as_of"):
        meta.append(f"as of {record['as_of']}")
    if record.get("finished"):
        meta.append(f"run finished {record['finished']}")
    rows = []
    for report in reports:
        stem = report.stem
        entry = latest.get(stem)
        label = html.escape(stem)
        if entry and entry.get("title"):
            label += f' <span class="title">{html.escape(entry["title"])}</span>'
        extra = ""
        if entry is None and record:
            extra = ' <span class="badge old">earlier run</span>'
        elif entry and entry.get("status") == "failed":
            extra = ' <span class="badge failed">failed</span>'
        ipynb = report.with_suffix(".ipynb")
        nb_link = (f' <a class="nb" href="{quote(f"{shop}/{month_dir.name}/{ipynb.name}")}">ipynb</a>'
                   if ipynb.exists() else "")
        href = quote(f"{shop}/{month_dir.name}/{report.name}")
        rows.append(f'<li><a href="{href}">{label}</a>{extra}{nb_link}</li>')
    note_html = "".join(f'<p class="error">{html.escape(n)}</p>' for n in notes)
    meta_html = f' <span class="meta">{html.escape(" · ".join(meta))}</span>' if meta else ""
    return (f'<div class="month">\n<h3>{html.escape(month_dir.name)} {badges}{meta_html}</h3>\n'
            f'{note_html}<ul>\n' + "\n".join(rows) + "\n</ul>\n</div>")


def _read_record(month_dir: Path) -> dict:
    try:
        return json.loads((month_dir / RUN_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


_INDEX_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Retention reports</title>
<style>
  body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222;
         max-width: 52rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; }
  h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
  h2 { font-size: 1.3rem; border-bottom: 2px solid #ddd; padding-bottom: 0.2rem; margin-top: 2rem; }
  h3 { font-size: 1.05rem; margin: 1.2rem 0 0.3rem; }
  ul { margin: 0; padding-left: 1.2rem; }
  li { margin: 0.15rem 0; }
  a { color: #1f5fa8; text-decoration: none; }
  a:hover { text-decoration: underline; }
  .title { color: #555; margin-left: 0.4rem; }
  .meta { color: #777; font-weight: normal; font-size: 0.85rem; margin-left: 0.5rem; }
  .nb { color: #999; font-size: 0.8rem; margin-left: 0.5rem; }
  .badge { font-size: 0.75rem; font-weight: 600; padding: 0.05rem 0.4rem; border-radius: 0.6rem;
           margin-left: 0.4rem; vertical-align: middle; }
  .failed { background: #fde2e1; color: #a61b1b; }
  .old { background: #eee; color: #666; font-weight: normal; }
  .error { color: #a61b1b; font-size: 0.9rem; margin: 0.2rem 0; }
  .empty { color: #777; }
  .trends { display: flex; flex-wrap: wrap; gap: 0.6rem; margin: 0.6rem 0 0.2rem; }
  .trend { margin: 0; padding: 0.3rem 0.5rem; border: 1px solid #e3e3e3; border-radius: 0.4rem; }
  .trend figcaption { font-size: 0.8rem; color: #555; }
  .trend figcaption b { color: #222; margin-left: 0.3rem; }
  .trend .range { color: #888; font-size: 0.72rem; }
  .trend svg { display: block; overflow: visible; }
  .trend .line { fill: none; stroke: #1f5fa8; stroke-width: 1.8; }
  .trend circle { fill: #1f5fa8; }
  .trend .base { stroke: #ccc; stroke-width: 1; }
  .trend .tick { font-size: 9px; fill: #777; }
</style>
</head>
<body>
<h1>Retention reports</h1>
<p class="meta" style="margin-left:0">Every shop and month, newest month first, with each shop's trends.</p>
{body}
</body>
</html>
"""


# ---------------------------------------------------------------------------------------------
# Refreshing the committed notebooks (make notebooks)


def refresh_notebooks(root: str | Path | None = None, kernel_name: str = "python3", log=print,
                      only: list[str] | None = None) -> list[Path]:
    """Re-execute ``notebooks/NN_*.ipynb`` in place with their default parameters.

    Their stored outputs are nbval's reference, so they are produced exactly as nbval runs them:
    the defaults in the ``parameters`` cell (demo shop, fixed ``as_of``), no injected cell, and
    no papermill timing metadata that would churn in version control.
    """
    from nbclient import NotebookClient

    root = Path(root) if root else find_project_root()
    done = []
    for path in _select_notebooks(root / "notebooks", only):
        started = time.perf_counter()
        nb = nbformat.read(path, as_version=4)
        NotebookClient(nb, kernel_name=kernel_name, timeout=1800, config=kernel_config(),
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        for cell in nb.cells:
            cell.metadata.pop("execution", None)
        _atomic_write(path, nbformat.writes(nb) + "\n")
        log(f"refreshed {path.name} in {time.perf_counter() - started:.1f} s")
        done.append(path)
    return done
