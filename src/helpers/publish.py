"""Publish a shop-month's executed notebooks as HTML and keep ``reports/index.html`` up to date.

:func:`notebook_to_html` turns an executed notebook into a standalone page for business readers
(code, prompts and parameter cells hidden, figures inlined, errors kept visible). :func:`build_index`
rebuilds the index from the files alone: per shop, KPI tiles for the latest month (value, a sparkline
of up to 24 months and the changes vs last month and a year ago, from the history in that month's
kpis.csv, so they are complete from the first run), then the months newest first, each linking its
reports with the status of its latest run from ``run.json`` (written by :mod:`helpers.runner`).
Both pages load nothing from the internet: inline CSS and SVG, no CDN scripts.

Layout read and written::

    reports/index.html                         (written)
    reports/<shop>/<YYYY-MM>/NN_name.html      (linked)
    reports/<shop>/<YYYY-MM>/NN_name.ipynb     (linked)
    reports/<shop>/<YYYY-MM>/run.json          (read)
    data/processed/<shop>/<YYYY-MM>/           (read: kpis.csv, data_quality.json; trend.csv, clv_model.json
                                                for CLV at risk)

The index reads declared artifacts only (through :mod:`helpers.artifacts`) and imports no stage: the
figures come as the stages wrote them, the names from :data:`helpers.words.METRIC_NAMES`.
"""

from __future__ import annotations

import base64
import calendar
import copy
import html
import io
import math
import os
import re
import socket
from pathlib import Path
from urllib.parse import quote

import pandas as pd
from itables import javascript, options
from jinja2 import DictLoader
from nbconvert import HTMLExporter
from PIL import Image

from helpers import artifacts, words

MONTH_PATTERN = re.compile(r"^\d{4}-\d{2}$")
RUN_RECORD = "run.json"
INDEX_NAME = "index.html"
# Cells papermill tags: the notebook's defaults and the values it injected below them.
PARAMETER_TAGS = {"parameters", "injected-parameters"}


# ---------------------------------------------------------------------------------------------
# HTML


# The lab template, minus what it loads from a CDN: require.js (only widget and some JavaScript outputs
# need it), MathJax (the reports show no math), mermaid.js (no diagrams) and the widget manager (no widgets).
# Reports are e-mailed and opened offline; a page must show everything without the internet.
_OFFLINE_TEMPLATE = """{%- extends "index.html.j2" -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block data_png scoped -%}
<div class="jp-RenderedImage jp-OutputArea-output {{ extra_class }}">
<img src="data:image/png;base64,{{ output.data['image/png'] | escape_html }}"
alt="{{ ((output | get_metadata('alt', 'image/png')) or 'Chart') | escape_html }}"
{%- set width=output | get_metadata('width', 'image/png') -%}
{%- if width is not none %} width={{ width | escape_html }}{%- endif %}
{%- set height=output | get_metadata('height', 'image/png') -%}
{%- if height is not none %} height={{ height | escape_html }}{%- endif %}
>
</div>
{%- endblock data_png -%}
"""

# What a browser fetches from another host when it opens a page: an element's src (script, img, iframe,
# ...), a <link>'s href (stylesheet, font, icon), a CSS @import or url() (fonts, backgrounds) and a
# module's import("..."). Plain links (<a href>) and XML namespaces load nothing.
_EXTERNAL_RESOURCE = re.compile(
    r"""<[a-z]+\b[^>]*?\bsrc\s*=\s*["']?(?:https?:)?//[^"'\s>]+"""
    r"""|<link\b[^>]*?\bhref\s*=\s*["']?(?:https?:)?//[^"'\s>]+"""
    r"""|@import\s+(?:url\(\s*)?["']?(?:https?:)?//[^"'\s);]+"""
    r"""|\burl\(\s*["']?(?:https?:)?//[^"'\s)]+"""
    r"""|\bimport\(\s*["'](?:https?:)?//[^"']+""",
    re.IGNORECASE)


def notebook_to_html(nb, title: str) -> str:
    """Standalone HTML for business readers: code and prompts hidden, parameter cells dropped,
    figures inlined as base64 PNG (nbconvert's default), error outputs kept visible.

    The page loads nothing from the internet (no require.js, MathJax or mermaid.js from a CDN; see
    :func:`external_resources`), so it reads the same offline or as an e-mail attachment.
    In a partly executed notebook the cells papermill never reached are dropped, so the report
    ends at the error.
    """
    nb = copy.deepcopy(nb)
    nb.cells = [cell for cell in nb.cells if _shown_in_report(cell)]
    _sortable_tables(nb)
    _compressed_figures(nb)
    nb.metadata["title"] = title  # the lab template's <title>
    exporter = HTMLExporter(template_name="lab", template_file="offline.html.j2",
                            extra_loaders=[DictLoader({"offline.html.j2": _OFFLINE_TEMPLATE})],
                            exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True,
                            embed_images=True)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    return _STYLE_BLOCK.sub(lambda m: m.group(1) + _minified_css(m.group(2)) + m.group(3), body)


_STYLE_BLOCK = re.compile(r"(<style[^>]*>)(.*?)(</style>)", re.S)


def _minified_css(css: str) -> str:
    """The template's style sheets without comments and layout whitespace (the lab theme is 240 KB as shipped,
    190 KB so): every page is mailed. Only whitespace next to braces and semicolons goes, never between a
    selector's parts ("a :hover" and "a:hover" differ)."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    return re.sub(r"\s*([{};])\s*", r"\1", re.sub(r"\s+", " ", css)).strip()


def _sortable_tables(nb) -> None:
    """Long tables (`plots.SortableTable`) become whole, sortable and searchable in the report: each output's
    interactive HTML replaces its short table, and DataTables' JavaScript and CSS (itables' offline bundle,
    base64 in the page) go in once, before the first such table."""
    first = True
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            html = out.get("data", {}).pop(words.SORTABLE_MIME, None)
            if html is None:
                continue
            if first:
                html = _itables_init() + html
                first = False
            out["data"]["text/html"] = html


def _compressed_figures(nb) -> None:
    """Each figure's PNG in 128 colours (charts have few; text stays sharp), where that is smaller: a page of
    eight charts drops from about 600 KB of images to about 160 KB, so it can be mailed. The notebook keeps
    the original."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "image/png" in data:
                data["image/png"] = _compressed_png(data["image/png"])


def _compressed_png(b64: str) -> str:
    raw = base64.b64decode(b64)
    with Image.open(io.BytesIO(raw)) as img:
        small = img.convert("RGB").quantize(128, method=Image.Quantize.FASTOCTREE)
    buf = io.BytesIO()
    small.save(buf, "PNG", optimize=True)  # twice the time of zlib's default level for 10 % less: pages stay light
    return base64.b64encode(buf.getvalue()).decode("ascii") if buf.tell() < len(raw) else b64


def _itables_init() -> str:
    return javascript.generate_init_offline_itables_html(options.dt_bundle)


def external_resources(page: str) -> list[str]:
    """What an HTML page would fetch from another host (script, stylesheet, font, image, CSS import,
    module import), as found in its text: ``[]`` for a page that works offline."""
    return [m.group(0) for m in _EXTERNAL_RESOURCE.finditer(page)]


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
    """(Re)write ``reports_dir/index.html``: one section per shop with KPI tiles (:data:`KPI_TILES`)
    for the newest month folder in ``processed_base/<shop>/`` (default ``<reports_dir>/../data/processed``)
    that has a kpis.csv - its history gives the sparklines and the changes vs last month and a year ago,
    money in the currency from data_quality.json - plus CLV at risk where notebook 07 recorded it (trend.csv);
    then the months newest first, each linking its reports (relative links) with the latest run's
    status from ``run.json``.

    Everything is rebuilt from the files on each call; the same files give the same bytes. Charts are
    inline SVG and the styles inline CSS: the page needs no other file and no network.

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
        items = [_month_html(shop_dir.name, m, processed_base / shop_dir.name / m.name) for m in months]
        items = [item for item in items if item]
        if items:
            tiles = _tiles_html(processed_base / shop_dir.name)
            sections.append(f'<section>\n<h2>{html.escape(shop_dir.name)}</h2>\n{tiles}'
                            + "\n".join(items) + "\n</section>")
    body = "\n".join(sections) or "<p class=\"empty\">No reports yet.</p>"
    return _INDEX_TEMPLATE.replace("{body}", body)


# ---------------------------------------------------------------------------------------------
# KPI tiles: the latest month at a glance, from the history in its kpis.csv


# kpis.csv column -> (label, kind, what a rise means: +1 good news, -1 bad news). The labels are the
# reports' names of these figures (words.METRIC_NAMES), which 07's headline shows too.
KPI_TILES = {key: (words.METRIC_NAMES[key], kind, good) for key, kind, good in (
    ("revenue", "money", +1),
    ("orders", "count", +1),
    ("active_customers", "count", +1),
    ("new_customers", "count", +1),
    ("returning_revenue_share", "share", +1),
    ("repeat_rate", "share", +1),
    ("sleeping_customers", "count", -1),
)}
# A model total, from each month's own run as 07 recorded it in trend.csv (no history before the first
# run): a rise is bad news.
CLV_AT_RISK_TILE = ("clv_at_risk", words.METRIC_NAMES["clv_at_risk"], "money", -1)
SPARKLINE_MONTHS = 24  # the sparkline's window, ending with the tile's month


def month_shift(month: str, months: int) -> str:
    """'YYYY-MM' moved by ``months`` calendar months: ('2026-01', -1) -> '2025-12'."""
    n = int(month[:4]) * 12 + int(month[5:7]) - 1 + months
    return f"{n // 12:04d}-{n % 12 + 1:02d}"


def change_text(value: float, before: float, kind: str) -> tuple[str, int]:
    """The change from ``before`` to ``value`` as the tiles show it, and its sign as shown (-1, 0, +1).

    Shares change in percentage points ('+1.5 pp'), money and counts in per cent of ``before``
    ('+3.2%'; from 0, the difference itself). A change that rounds to zero shows as zero, sign 0;
    a missing ``before`` (no such month) is :data:`helpers.words.MISSING`, sign 0.
    """
    if before is None or math.isnan(value) or math.isnan(before):
        return words.MISSING, 0
    if kind == "share":
        shown, unit = round((value - before) * 100, 1), " pp"
    elif before != 0:
        shown, unit = round((value / before - 1) * 100, 1), "%"
    else:
        shown, unit = round(value - before), ""
    shown = shown if shown != 0 else 0.0  # no "-0.0"
    number = f"{shown:+,.1f}" if unit else f"{shown:+,.0f}"
    return number + unit, (shown > 0) - (shown < 0)


def tile_tone(sign: int, good: int) -> str:
    """'good' (green), 'bad' (red) or 'flat': the meaning of a change of ``sign`` for a metric whose
    rise means ``good`` (+1) or bad news (-1)."""
    return {1: "good", -1: "bad"}.get(sign * good, "flat")


def _tiles_html(shop_processed: Path) -> str:
    """The shop's KPI tiles for its latest month with kpis.csv (and CLV at risk where runs recorded
    it), or "" when no month has kpis.csv."""
    try:
        latest = _latest_kpis(shop_processed)
        if latest is None:
            return ""
        folder, kpis = latest
        month = folder.name
        history = kpis.assign(month=kpis["month"].astype(str)).drop_duplicates("month", keep="last")
        history = history[history["month"] <= month].set_index("month").sort_index()
        if month not in history.index:
            return f'<p class="error">Key figures unavailable: {html.escape(month)}\'s kpis.csv has no row for {html.escape(month)}.</p>\n'
        currency = _currency(folder)
        tiles = [_tile_html(key, label, kind, good, history[key], month, currency)
                 for key, (label, kind, good) in KPI_TILES.items() if key in history]
        clv_tile, clv_note = _clv_at_risk_tile(shop_processed, folder, currency)
        tiles += [clv_tile] if clv_tile else []
    except Exception as err:  # a broken artifact must not take the index down with it
        return f'<p class="error">Key figures unavailable: {html.escape(type(err).__name__)}: {html.escape(str(err))}</p>\n'
    first = month_shift(month, 1 - SPARKLINE_MONTHS)
    return (f'<p class="asof">{html.escape(_month_name(month))} <span class="meta">from {html.escape(month)}\'s '
            f'kpis.csv, which holds the shop\'s whole history</span></p>\n'
            f'<div class="tiles" aria-label="key figures">\n' + "\n".join(tiles) + "\n</div>\n"
            f'<p class="meta legend">Lines: {html.escape(first)} to {html.escape(month)} (up to {SPARKLINE_MONTHS} '
            f'months). Changes vs last month and vs the same month a year ago, in % (shares in percentage points, '
            f'pp); <span class="good">green</span> is good news and <span class="bad">red</span> bad news for '
            f'that figure (more sleeping customers is bad news); {words.MISSING} where the history has no such '
            f'month.{clv_note}</p>\n')


def _clv_at_risk_tile(shop_processed: Path, folder: Path, currency: str | None) -> tuple[str, str]:
    """(tile, legend sentence) for CLV at risk in ``folder``'s month, from each month's own run as notebook
    07 recorded it in trend.csv (:func:`_trend_series`); ("", "") when this month's run has no CLV and churn
    scores. A broken trend.csv leaves this tile out with a sentence, not the whole page; so does a month
    whose 07 ran before it wrote trend.csv (rerunning 07 adds the tile)."""
    key, label, kind, good = CLV_AT_RISK_TILE
    month = folder.name
    try:
        runs = _trend_series(shop_processed, folder, key)
    except Exception as err:  # the KPI tiles still show
        return "", f" {html.escape(label)} unavailable: {html.escape(type(err).__name__)}: {html.escape(str(err))}."
    if runs is None:
        if not (artifacts.exists(folder, "clv") and artifacts.exists(folder, "churn")):
            return "", ""  # no CLV or churn run this month: nothing to show, as without trend.csv
        trend = artifacts.spec("trend")
        return "", (f" {html.escape(label)} not shown: {html.escape(month)} has no {trend.file} yet (written by "
                    f"{trend.made_by}); rerun {trend.made_by} for {html.escape(month)} to show it.")
    if month not in runs.index or math.isnan(runs[month]):
        return "", ""
    card = artifacts.read_if_exists(folder, "clv_model") or {}
    note = (f' {html.escape(label)}: the predicted {int(card.get("clv_months", 12))}-month CLV of the customers at '
            f'high churn risk, from each month\'s own run (no history before the first).')
    return _tile_html(key, label, kind, good, runs, month, currency), note


def _trend_series(shop_processed: Path, folder: Path, key: str) -> pd.Series | None:
    """Column ``key`` of trend.csv by month, up to ``folder``'s month: the rows its trend.csv holds (every
    month up to it), each earlier month's own row taken from that month's trend.csv where it has one (a
    month rerun later replaces exactly its row). None when ``folder`` has no trend.csv."""
    latest = artifacts.read_if_exists(folder, "trend")
    if latest is None:
        return None
    values = dict(zip(artifacts.check("trend", latest)["month"], latest[key].astype(float)))
    for earlier in artifacts.month_dirs(shop_processed):
        own = artifacts.read_if_exists(earlier, "trend") if earlier.name < folder.name else None
        if own is not None:
            mine = artifacts.check("trend", own)
            mine = mine[mine["month"] == earlier.name]
            if len(mine):
                values[earlier.name] = float(mine[key].iloc[-1])
    return pd.Series(values, dtype=float).sort_index()


def _latest_kpis(shop_processed: Path):
    """(folder, kpis) of the newest month folder with a kpis.csv, or None."""
    for folder in reversed(artifacts.month_dirs(shop_processed)):
        kpis = artifacts.read_if_exists(folder, "kpis")
        if kpis is not None:
            return folder, kpis
    return None


def _currency(folder: Path) -> str | None:
    """The shop's currency as 01 recorded it in data_quality.json, or None (amounts shown bare)."""
    quality = artifacts.read_if_exists(folder, "data_quality") or {}
    return (quality.get("orders") or {}).get("currency")


def _month_name(month: str) -> str:
    return f"{calendar.month_name[int(month[5:7])]} {month[:4]}"


def _tile_html(key: str, label: str, kind: str, good: int, series, month: str, currency: str | None) -> str:
    """One tile: the month's value, a sparkline of up to SPARKLINE_MONTHS months, and the changes vs
    last month and a year ago, coloured by what the change means for this figure."""
    first = month_shift(month, 1 - SPARKLINE_MONTHS)
    points = [(str(m), float(v)) for m, v in series.items() if first <= str(m) <= month and not math.isnan(v)]
    value = float(series.get(month, float("nan")))
    changes = []
    for vs, compared in (("vs last month", month_shift(month, -1)), ("vs a year ago", month_shift(month, -12))):
        before = float(series[compared]) if compared in series.index else None
        text, sign = change_text(value, before, kind)
        arrow = {1: "\u25b2 ", -1: "\u25bc ", 0: ""}[sign]
        tone = tile_tone(sign, good) if text != words.MISSING else "none"
        was = words.format_value(before, kind, currency) if before is not None else "no data"
        changes.append(f'<div class="change"><span class="vs">{vs}</span> '
                       f'<b class="{tone}" data-vs="{compared}" title="{compared}: {html.escape(was)}">'
                       f'{arrow}{html.escape(text)}</b></div>')
    data = ";".join(f"{m}={v:.6g}" for m, v in points)
    return (f'<div class="tile" data-metric="{key}" data-points="{html.escape(data)}">'
            f'<div class="label">{html.escape(label)}</div>'
            f'<div class="value">{html.escape(words.format_value(value, kind, currency))}</div>'
            f'{_sparkline_svg(label, kind, points, currency)}{"".join(changes)}</div>')


def _month_number(month: str) -> int:
    return int(month[:4]) * 12 + int(month[5:7])


def _sparkline_svg(label: str, kind: str, points: list[tuple[str, float]], currency: str | None,
                   width: int = 176, height: int = 46) -> str:
    """A small line chart of (month, value) points as inline SVG, x in calendar months (a month that
    is missing leaves a visible gap, not a squeeze); each point carries a <title> tooltip."""
    if not points:
        return '<p class="meta">no data</p>'
    left, right, top, bottom = 3, 3, 4, 13
    values = [v for _, v in points]
    lo, hi = min(values), max(values)
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    first, last = _month_number(points[0][0]), _month_number(points[-1][0])

    def xy(month: str, value: float) -> tuple[float, float]:
        pos = (_month_number(month) - first) / (last - first) if last > first else 1.0
        x = left + (width - left - right) * pos
        y = top + (height - top - bottom) * (1 - (value - lo) / (hi - lo))
        return round(x, 1), round(y, 1)

    coords = [xy(m, v) for m, v in points]
    line = " ".join(f"{x},{y}" for x, y in coords)
    dots = "".join(f'<circle cx="{x}" cy="{y}" r="{2.6 if i == len(points) - 1 else 1.4}">'
                   f'<title>{html.escape(m)}: {html.escape(words.format_value(v, kind, currency))}</title></circle>'
                   for i, ((m, v), (x, y)) in enumerate(zip(points, coords)))
    ticks = (f'<text x="{left}" y="{height - 2}" class="tick">{html.escape(points[0][0])}</text>'
             f'<text x="{width - right}" y="{height - 2}" class="tick" text-anchor="end">{html.escape(points[-1][0])}</text>')
    return (f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            f'aria-label="{html.escape(label)} by month">'
            f'<polyline points="{line}" class="line"/>{dots}{ticks}</svg>')


TRACK_ANCHOR = "Track-record"  # the id nbconvert gives 07_summary's heading "Track record"
TRACK_REPORT = "07_summary"


def _month_html(shop: str, month_dir: Path, processed_dir: Path | None = None) -> str:
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
        if stem == TRACK_REPORT and processed_dir is not None and artifacts.exists(processed_dir, "track_record"):
            # the month's run scored earlier predictions (helpers.track): link 07's section directly
            extra += f' <a class="nb" href="{href}#{TRACK_ANCHOR}">track record</a>'
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
         max-width: 64rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; }
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
  .asof { font-size: 1.05rem; font-weight: 600; margin: 0.8rem 0 0.4rem; }
  .tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(12rem, 1fr)); gap: 0.6rem; }
  .tile { padding: 0.5rem 0.6rem; border: 1px solid #e3e3e3; border-radius: 0.5rem; background: #fcfcfc; }
  .tile .label { font-size: 0.8rem; color: #555; line-height: 1.25; min-height: 2rem; }
  .tile .value { font-size: 1.35rem; font-weight: 700; color: #222; margin: 0.1rem 0 0.2rem; }
  .tile svg { display: block; overflow: visible; margin: 0.1rem 0 0.3rem; }
  .tile .line { fill: none; stroke: #1f5fa8; stroke-width: 1.6; }
  .tile circle { fill: #1f5fa8; }
  .tile .tick { font-size: 8.5px; fill: #888; }
  .change { font-size: 0.8rem; display: flex; justify-content: space-between; }
  .change .vs { color: #777; }
  .good { color: #1a7f37; }
  .bad { color: #c0392b; }
  .flat, .none { color: #777; }
  .legend { margin: 0.4rem 0 0; }
</style>
</head>
<body>
<h1>Retention reports</h1>
<p class="meta" style="margin-left:0">Every shop: its latest month's key figures, then every month's reports, newest first.</p>
{body}
</body>
</html>
"""
