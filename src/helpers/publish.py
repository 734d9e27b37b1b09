"""Publish a shop-month's executed notebooks as HTML and keep ``reports/index.html`` up to date.

:func:`notebook_to_html` turns an executed notebook into a standalone page for business readers
(code, prompts and parameter cells hidden, figures inlined, errors kept visible). :func:`build_index`
rebuilds the index from the files alone: per shop, small trend charts read from every month's
artifacts (:func:`helpers.summary.trend_table`), then the months newest first, each linking its
reports with the status of its latest run from ``run.json`` (written by :mod:`helpers.runner`).

Layout read and written::

    reports/index.html                         (written)
    reports/<shop>/<YYYY-MM>/NN_name.html      (linked)
    reports/<shop>/<YYYY-MM>/NN_name.ipynb     (linked)
    reports/<shop>/<YYYY-MM>/run.json          (read)
    data/processed/<shop>/<YYYY-MM>/           (read, for the trends)
"""

from __future__ import annotations

import copy
import html
import os
import re
import socket
from pathlib import Path
from urllib.parse import quote

from nbconvert import HTMLExporter

from helpers import artifacts, plots
from helpers.summary import TREND_METRICS, trend_table

MONTH_PATTERN = re.compile(r"^\d{4}-\d{2}$")
RUN_RECORD = "run.json"
INDEX_NAME = "index.html"
# Cells papermill tags: the notebook's defaults and the values it injected below them.
PARAMETER_TAGS = {"parameters", "injected-parameters"}


# ---------------------------------------------------------------------------------------------
# HTML


def notebook_to_html(nb, title: str) -> str:
    """Standalone HTML for business readers: code and prompts hidden, parameter cells dropped,
    figures inlined as base64 PNG (nbconvert's default), error outputs kept visible.

    In a partly executed notebook the cells papermill never reached are dropped, so the report
    ends at the error.
    """
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

    Several runs may finish at once (two months in parallel): the page is replaced atomically, and
    if any month's reports or ``run.json`` changed while it was being built, it is built again, so
    the last page written reflects every run that had finished by then.
    """
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    processed_base = Path(processed_base) if processed_base is not None else reports_dir.parent / "data" / "processed"
    path = reports_dir / INDEX_NAME
    for _ in range(20):  # each round rebuilds after another run changed its files; a handful at most
        before = _reports_state(reports_dir)
        artifacts.write_file(path, _index_page(reports_dir, processed_base))
        if _reports_state(reports_dir) == before:
            break
    return path


def _reports_state(reports_dir: Path) -> list[tuple[str, int, int]]:
    """What the index is built from, as (file, size, modification time) of every month's reports and
    run record: a run that writes while the index is built changes it."""
    state = []
    for p in reports_dir.glob("*/*/*"):
        if p.name == RUN_RECORD or p.suffix == ".html":
            try:
                info = p.stat()
            except FileNotFoundError:  # replaced in the meantime
                continue
            state.append((p.relative_to(reports_dir).as_posix(), info.st_size, info.st_mtime_ns))
    return sorted(state)


def _index_page(reports_dir: Path, processed_base: Path) -> str:
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
    return _INDEX_TEMPLATE.replace("{body}", body)


def _trends_html(shop_processed: Path) -> str:
    """The shop's trend charts as inline SVG, or "" when no month has KPI, CLV or churn artifacts."""
    try:
        table = trend_table(shop_processed)
    except Exception as err:  # a broken artifact must not take the index down with it
        return f'<p class="error">Trends unavailable: {html.escape(type(err).__name__)}: {html.escape(str(err))}</p>\n'
    if table.empty:
        return ""
    charts = "".join(_sparkline_svg(key, title, kind, table[key]) for key, (title, kind) in TREND_METRICS.items())
    card = artifacts.read_if_exists(Path(shop_processed) / table.index[-1], "clv_model") or {}
    return (f'<div class="trends" aria-label="trends">{charts}</div>\n'
            f'<p class="meta" style="margin-left:0">Trends from each month\'s own artifacts '
            f'({html.escape(table.index[0])} to {html.escape(table.index[-1])}); CLV at risk = predicted '
            f'{int(card.get("clv_months", 12))}-month CLV of the customers at high churn risk.</p>\n')


def _format_value(value: float, kind: str) -> str:
    """A trend value as :func:`helpers.plots.format_value` shows it, but money from 10,000 on in
    thousands ('12k'), so a chart's caption stays short."""
    if kind == "money" and abs(value) >= 10_000:
        return f"{value / 1000:,.0f}k"
    return plots.format_value(value, kind)


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
    record = artifacts.read_json_file(month_dir / RUN_RECORD, default={})
    if not reports and record.get("status") in {None, "ok"}:
        return ""  # a month with no report is listed only to say that its run failed or stopped
    latest = {n["name"]: n for n in record.get("notebooks", [])}
    status = record.get("status")
    badges, notes = "", []
    if status == "failed":
        badges = '<span class="badge failed">latest run failed</span>'
        errors = record.get("errors") or ([record["error"]] if record.get("error") else [])
        for err in errors:
            cell = f" at cell {err['cell_index']}" if err.get("cell_index") is not None else ""
            notes.append(f"{err.get('notebook')} failed{cell}: {err.get('ename')}: "
                         f"{err.get('evalue')}")
    elif status == "running" and _process_gone(record):
        badges = '<span class="badge failed">latest run interrupted</span>'
        notes.append(f"The latest run (started {record.get('started')}) stopped without finishing: its process "
                     f"{record.get('pid')} is gone (killed outright, or the machine went down).")
    elif status in {"running", "interrupted"}:
        badges = f'<span class="badge failed">latest run {status}</span>'
        if status == "interrupted":
            stopped = [n["name"] for n in record.get("notebooks", []) if n.get("status") == "interrupted"]
            by = f" by {record['interrupted_by']}" if record.get("interrupted_by") else ""
            during = f" during {', '.join(stopped)}" if stopped else ""
            notes.append(f"The latest run was interrupted{by}{during}; reports without a badge are from "
                         f"that run, the others from an earlier run or missing.")
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
        elif entry and entry.get("status") in {"failed", "interrupted"}:
            extra = f' <span class="badge failed">{entry["status"]}</span>'
        ipynb = report.with_suffix(".ipynb")
        nb_link = (f' <a class="nb" href="{quote(f"{shop}/{month_dir.name}/{ipynb.name}")}">ipynb</a>'
                   if ipynb.exists() else "")
        href = quote(f"{shop}/{month_dir.name}/{report.name}")
        rows.append(f'<li><a href="{href}">{label}</a>{extra}{nb_link}</li>')
    note_html = "".join(f'<p class="error">{html.escape(n)}</p>' for n in notes)
    meta_html = f' <span class="meta">{html.escape(" · ".join(meta))}</span>' if meta else ""
    return (f'<div class="month">\n<h3>{html.escape(month_dir.name)} {badges}{meta_html}</h3>\n'
            f'{note_html}<ul>\n' + "\n".join(rows) + "\n</ul>\n</div>")


def _process_gone(record: dict) -> bool:
    """True when the run record names a process on this machine that no longer exists."""
    pid = record.get("pid")
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows
        return False
    if not isinstance(pid, int) or record.get("host") != socket.gethostname():
        return False  # another machine's run (or an old record): no way to tell
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return True
    except OSError:  # exists, but belongs to someone else
        return False
    return False


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
