"""Tests for helpers.publish: report pages from hand-built notebooks, the index from hand-built folders."""

import base64
import html
import io
import json
import math
import os
import re
import socket
import subprocess
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from helpers import artifacts, plots
from helpers.paths import project_root
from helpers.plots import MISSING
from helpers.publish import (KPI_TILES, build_index, change_text, external_resources, month_shift,
                             notebook_to_html, tile_tone)


def executed_notebook(*cells) -> nbformat.NotebookNode:
    """A notebook as papermill leaves it: a title, the `parameters` cell, the injected cell, then `cells`."""
    nb = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell("as_of = '2020-01-31'\nprocessed_dir = ''")
    parameters.metadata["tags"] = ["parameters"]
    injected = nbformat.v4.new_code_cell("as_of = '2026-06-30'\nprocessed_dir = 'data/processed/demo/2026-06/'")
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# Hello"), parameters, injected, *cells]
    return nb


def code_cell(source: str, *outputs, status: str = "completed") -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source, outputs=list(outputs))
    cell.metadata["papermill"] = {"status": status}
    return cell


def printed(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_output("stream", name="stdout", text=text)


def make_month(reports: Path, shop: str, month: str, stems=("01_hello", "02_params"), record=None) -> Path:
    """reports/<shop>/<month>/ with an HTML report and notebook per stem and, if given, its run.json."""
    folder = reports / shop / month
    folder.mkdir(parents=True)
    for stem in stems:
        (folder / f"{stem}.html").write_text("<html></html>")
        (folder / f"{stem}.ipynb").write_text("{}")
    if record is not None:
        (folder / "run.json").write_text(json.dumps(record))
    return folder


def ok_record(month: str, *stems: str) -> dict:
    return {"month": month, "as_of": f"{month}-28", "status": "ok", "finished": "2026-07-01T06:00:00+00:00",
            "notebooks": [{"name": s, "status": "ok", "title": None} for s in stems]}


KPI_COLUMNS = ["month", "revenue", "gross_sales", "returned_value", "returns_rate", "orders", "active_customers",
               "new_customers", "returning_customers", "returning_revenue_share", "aov", "orders_per_customer",
               "repeat_rate", "sleeping_customers"]


def write_kpis(processed: Path, shop: str, folder: str, months: dict, currency: str | None = "EUR") -> Path:
    """data/processed/<shop>/<folder>/kpis.csv as notebook 02 writes it, one row per month of `months`
    ({month: {column: value}}; unnamed columns get a plain default), and data_quality.json with the
    shop's currency as notebook 01 records it (none when `currency` is None)."""
    out = processed / shop / folder
    out.mkdir(parents=True, exist_ok=True)
    defaults = {"revenue": 1000.0, "gross_sales": 1100.0, "returned_value": 100.0, "returns_rate": 0.09,
                "orders": 50, "active_customers": 40, "new_customers": 10, "returning_customers": 30,
                "returning_revenue_share": 0.6, "aov": 20.0, "orders_per_customer": 1.25, "repeat_rate": 0.4,
                "sleeping_customers": 100}
    rows = [{"month": m, **defaults, **values} for m, values in months.items()]
    pd.DataFrame(rows, columns=KPI_COLUMNS).to_csv(out / "kpis.csv", index=False)
    if currency is not None:
        (out / "data_quality.json").write_text(json.dumps({"orders": {"currency": currency}}))
    return out


def write_trend(folder: Path, clv_at_risk: dict) -> Path:
    """trend.csv as notebook 07 writes it: one row per month up to the folder's ({month: CLV at risk}; the
    KPI columns, which the tiles take from kpis.csv, left empty)."""
    return artifacts.write(folder, "trend", pd.DataFrame({
        "month": list(clv_at_risk), **{c: math.nan for c in ("revenue", "active_customers", "repeat_rate")},
        "clv_at_risk": [float(v) for v in clv_at_risk.values()]}))


def months_back(last: str, n: int) -> list[str]:
    """The n months ending with `last`, oldest first: months_back('2026-02', 3) -> ['2025-12', '2026-01', '2026-02']."""
    year, month = int(last[:4]), int(last[5:])
    out = []
    for _ in range(n):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out[::-1]


def tile(index_html: str, metric: str) -> str:
    found = re.search(rf'<div class="tile" data-metric="{metric}"[^\n]*', index_html)  # one tile a line
    assert found, f"no {metric} tile in the index"
    return found.group(0)


def tile_points(index_html: str, metric: str) -> dict:
    found = re.search(rf'data-metric="{metric}" data-points="([^"]*)"', index_html)
    assert found, f"no {metric} tile in the index"
    return {k: float(v) for k, v in (p.split("=") for p in found.group(1).split(";") if p)}


def tile_value(index_html: str, metric: str) -> str:
    return re.search(r'<div class="value">([^<]*)</div>', tile(index_html, metric)).group(1)


def tile_changes(index_html: str, metric: str) -> dict:
    """{'vs last month': (text, tone), 'vs a year ago': (text, tone)} as the tile shows them."""
    found = re.findall(r'<span class="vs">([^<]*)</span> <b class="(\w+)"[^>]*>(?:[\u25b2\u25bc] )?([^<]*)</b>',
                       tile(index_html, metric))
    return {words: (html.unescape(text), tone) for words, tone, text in found}


# --- report pages ---------------------------------------------------------------------------------

def test_html_shows_cell_output_but_not_code_or_injected_parameters():
    nb = executed_notebook(
        code_cell("secret_variable_name = 'hello from ' + 'the first notebook'\nprint(secret_variable_name)",
                  printed("hello from the first notebook\n")),
        code_cell("x = 1"))
    page = notebook_to_html(nb, "demo · 2026-06 · 01_hello")
    assert "hello from the first notebook" in page
    assert "secret_variable_name" not in page
    assert "celltag_injected-parameters" not in page and "celltag_parameters" not in page
    assert "data/processed/demo/2026-06" not in page
    assert "<title>demo · 2026-06 · 01_hello</title>" in page


def test_html_of_a_partly_executed_notebook_ends_at_the_visible_error():
    error = nbformat.v4.new_output("error", ename="KeyError", evalue="'recency_days'",
                                   traceback=["KeyError: 'recency_days'"])
    nb = executed_notebook(code_cell("print('before the error')", printed("before the error\n")),
                           code_cell("{}['recency_days']", error, status="failed"),
                           code_cell("print('never printed')", printed("never printed\n"), status="pending"))
    page = notebook_to_html(nb, "demo · 2026-06 · 02_breaks")
    assert "before the error" in page and "KeyError" in page and "recency_days" in page
    assert "never printed" not in page


def test_html_does_not_change_the_notebook_it_is_given():
    nb = executed_notebook(code_cell("x = 1"))
    before = nbformat.writes(nb)
    notebook_to_html(nb, "demo · 2026-06 · 01_hello")
    assert nbformat.writes(nb) == before


def figure_output() -> nbformat.NotebookNode:
    """A matplotlib figure as the kernel shows it: a PNG display output."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(2, 1))
    ax.plot([1, 3, 2])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return nbformat.v4.new_output("display_data", data={"image/png": base64.b64encode(buffer.getvalue()).decode(),
                                                        "text/plain": "<Figure size 200x100 with 1 Axes>"})


def table_output() -> nbformat.NotebookNode:
    df = pd.DataFrame({"segment": ["Champions", "At risk"], "customers": [1200, 800]})
    return nbformat.v4.new_output("execute_result", data={"text/html": df.to_html(), "text/plain": df.to_string()},
                                  execution_count=1)


def test_a_report_page_loads_nothing_from_the_internet():
    """No require.js, MathJax or mermaid.js from a CDN: a report opened offline or as an attachment is whole."""
    nb = executed_notebook(nbformat.v4.new_markdown_cell("## Who are the customers?\nA *short* paragraph."),
                           code_cell("segments.table()", table_output()),
                           code_cell("segments.plot()", figure_output()))
    page = notebook_to_html(nb, "demo · 2026-06 · 03_segments")
    assert "Who are the customers?" in page and "Champions" in page and 'src="data:image/png;base64,' in page
    assert external_resources(page) == []
    assert "cdnjs" not in page and "mathjax" not in page.lower() and "require.min.js" not in page


def long_table_output(rows: int = 140) -> nbformat.NotebookNode:
    """What a notebook stores for a long table (plots.SortableTable): the short table and the sortable one."""
    df = pd.DataFrame({"customers": [f"{1000 + i:,}" for i in range(rows)]},
                      index=pd.Index([f"country {i:02d}" for i in range(rows)], name="country"))
    bundle = plots.long_table(df, "breakdown-country")._repr_mimebundle_()
    return nbformat.v4.new_output("execute_result", data=bundle, execution_count=1)


def test_a_long_table_is_whole_sortable_and_searchable_in_the_report_and_still_offline():
    nb = executed_notebook(code_cell("res.breakdown_table('country')", long_table_output(140)),
                           code_cell("res.breakdown_table('region')", table_output()))
    page = notebook_to_html(nb, "demo · 2026-06 · 02_kpis")
    assert all(f"country {i:02d}" in page for i in range(140))  # every row, not the notebook's first 15
    assert 'id="breakdown-country"' in page and "new ITable(" in page  # DataTables: sort, search, pages
    assert page.count("injectModule(") == 2  # DataTables' code embedded once (defined + called), not per table
    assert "Champions" in page  # a short table stays a plain table
    assert external_resources(page) == []


def test_a_long_table_in_the_notebook_shows_its_first_rows_and_says_where_the_rest_is():
    data = long_table_output(140)["data"]
    assert "country 14" in data["text/html"] and "country 15" not in data["text/html"]
    assert "125 more rows in the HTML report (sortable, searchable)" in data["text/html"]
    assert data["text/html"].count("<tr") == 1 + 1 + 16  # header, index name row, 15 rows + the "more" row


def test_a_table_of_up_to_100_rows_is_plain_html_whole_in_the_notebook_and_the_page():
    """A mail preview runs no JavaScript: a 22-row list must not stop at 15 rows behind a script."""
    df = pd.DataFrame({"customers": range(100)}, index=pd.Index([f"country {i:02d}" for i in range(100)]))
    assert plots.long_table(df, "breakdown-country") is df
    plots.use_style()
    nb = executed_notebook(code_cell("t", nbformat.v4.new_output("execute_result", data={"text/html": df._repr_html_()},
                                                                 execution_count=1)))
    page = notebook_to_html(nb, "x")
    assert all(f"country {i:02d}" in page for i in range(100)) and "ITable" not in page


def test_a_page_without_long_tables_carries_no_table_scripts():
    page = notebook_to_html(executed_notebook(code_cell("segments.table()", table_output())), "x")
    assert "ITable" not in page and len(page) < 400_000


@pytest.mark.parametrize("page, found", [
    ('<script src="https://cdn.example.org/require.min.js"></script>', '<script src="https://cdn.example.org/require.min.js'),
    ("<script type='text/javascript' src=//cdn.example.org/x.js></script>", "<script type='text/javascript' src=//cdn.example.org/x.js"),
    ('<link rel="stylesheet" href="https://fonts.example.org/css?family=Roboto">', '<link rel="stylesheet" href="https://fonts.example.org/css?family=Roboto'),
    ('<style>@import url("https://fonts.example.org/a.css");</style>', '@import url("https://fonts.example.org/a.css'),
    ("<style>@import 'http://fonts.example.org/b.css';</style>", "@import 'http://fonts.example.org/b.css"),
    ("<style>@font-face { src: url(https://fonts.example.org/f.woff2) }</style>", "url(https://fonts.example.org/f.woff2"),
    ('<img src="http://example.org/logo.png">', '<img src="http://example.org/logo.png'),
    ('<script type="module">await import("https://cdn.example.org/m.mjs")</script>', 'import("https://cdn.example.org/m.mjs'),
])
def test_external_resources_finds_what_a_browser_would_fetch(page, found):
    assert external_resources(page) == [found]


def test_links_namespaces_and_inline_data_are_not_external_resources():
    page = ('<a href="https://example.org/docs">docs</a><svg xmlns="http://www.w3.org/2000/svg"></svg>'
            '<img src="data:image/png;base64,iVBORw0KGgo="><link rel="icon" href="data:,">'
            '<style>/* see https://example.org/colors */ .x { background: url(data:image/gif;base64,R0lGOD) }</style>')
    assert external_resources(page) == []


@pytest.mark.demo_month
@pytest.mark.parametrize("notebook", sorted(p.name for p in (project_root() / "notebooks").glob("[0-9][0-9]_*.ipynb")))
def test_every_demo_month_report_loads_nothing_from_the_internet(notebook):
    """The committed notebooks hold the demo month's outputs (what nbval checks): their pages are offline."""
    nb = nbformat.read(str(project_root() / "notebooks" / notebook), as_version=4)
    assert external_resources(notebook_to_html(nb, f"demo · 2026-06 · {notebook[:-6]}")) == []


@pytest.mark.demo_month
def test_every_published_demo_page_loads_nothing_from_the_internet():
    """The pages `make report` published for the demo shop's latest month, and the index."""
    reports = project_root() / "reports"
    months = sorted(p for p in (reports / "demo").glob("[0-9][0-9][0-9][0-9]-[0-9][0-9]") if p.is_dir())
    if not months:
        pytest.skip("no published demo month in reports/demo/: run `make report`")
    pages = sorted(months[-1].glob("*.html")) + [reports / "index.html"]
    found = {p.relative_to(reports).as_posix(): external_resources(p.read_text(encoding="utf-8"))
             for p in pages if p.is_file()}
    assert found and all(not resources for resources in found.values()), found


# --- index ----------------------------------------------------------------------------------------

def test_index_of_an_empty_reports_folder_says_there_are_none(tmp_path):
    index = build_index(tmp_path / "reports")
    assert index == tmp_path / "reports" / "index.html"
    assert "No reports yet." in index.read_text()


def test_index_links_every_report_of_the_month(tmp_path):
    reports = tmp_path / "reports"
    make_month(reports, "demo", "2026-06", record=ok_record("2026-06", "01_hello", "02_params"))
    index = build_index(reports).read_text()
    assert 'href="demo/2026-06/01_hello.html"' in index
    assert 'href="demo/2026-06/02_params.html"' in index
    assert 'href="demo/2026-06/01_hello.ipynb"' in index
    assert "failed" not in index.replace(".failed", "")


def test_index_lists_shops_alphabetically_and_months_newest_first(tmp_path):
    reports = tmp_path / "reports"
    for shop, month in (("zshop", "2026-01"), ("demo", "2025-11"), ("demo", "2026-01"), ("demo", "2025-12")):
        make_month(reports, shop, month, stems=("01_a",))
    (reports / "demo" / "not-a-month").mkdir()
    index = build_index(reports).read_text()
    assert index.index("<h2>demo</h2>") < index.index("<h2>zshop</h2>")
    assert index.index("demo/2026-01/") < index.index("demo/2025-12/") < index.index("demo/2025-11/")
    assert "not-a-month" not in index


def test_index_says_where_the_latest_run_failed_and_which_reports_are_older(tmp_path):
    reports = tmp_path / "reports"
    record = {"month": "2026-06", "as_of": "2026-06-30", "status": "failed", "finished": "2026-07-01T06:00:00+00:00",
              "notebooks": [{"name": "01_hello", "status": "failed", "title": "Hello"}],
              "error": {"notebook": "01_hello.ipynb", "cell_index": 4, "ename": "KeyError", "evalue": "'recency_days'"}}
    make_month(reports, "demo", "2026-06", record=record)
    index = build_index(reports).read_text()
    assert "latest run failed" in index
    assert "01_hello.ipynb failed at cell 4: KeyError: &#x27;recency_days&#x27;" in index
    assert '01_hello <span class="title">Hello</span></a> <span class="badge failed">failed</span>' in index
    assert '02_params</a> <span class="badge old">earlier run</span>' in index


def test_index_names_every_notebook_that_failed_in_the_latest_run(tmp_path):
    reports = tmp_path / "reports"
    errors = [{"notebook": "04_clv.ipynb", "cell_index": 4, "ename": "RuntimeError", "evalue": "fit server down"},
              {"notebook": "06_winback.ipynb", "cell_index": 5, "ename": "MissingArtifact",
               "evalue": "clv.parquet is missing"}]
    record = {"month": "2026-06", "as_of": "2026-06-30", "status": "failed", "error": errors[0], "errors": errors,
              "notebooks": [{"name": "04_clv", "status": "failed"}, {"name": "06_winback", "status": "failed"},
                            {"name": "07_summary", "status": "ok"}]}
    make_month(reports, "demo", "2026-06", stems=("04_clv", "06_winback", "07_summary"), record=record)
    index = build_index(reports).read_text()
    assert "04_clv.ipynb failed at cell 4: RuntimeError: fit server down" in index
    assert "06_winback.ipynb failed at cell 5: MissingArtifact: clv.parquet is missing" in index
    badges = {stem: 'class="badge failed">failed<' in next(line for line in index.splitlines()
                                                           if f'href="demo/2026-06/{stem}.html"' in line)
              for stem in ("04_clv", "06_winback", "07_summary")}
    assert badges == {"04_clv": True, "06_winback": True, "07_summary": False}


def test_index_says_a_run_was_interrupted_even_before_its_first_report(tmp_path):
    reports = tmp_path / "reports"
    record = {"month": "2026-06", "as_of": "2026-06-30", "status": "interrupted", "interrupted_by": "SIGTERM",
              "notebooks": [{"name": "01_clean", "status": "interrupted"}]}
    make_month(reports, "demo", "2026-06", stems=(), record=record)
    make_month(reports, "demo", "2026-05", stems=(), record=ok_record("2026-05"))  # ok, no report: not listed
    index = build_index(reports).read_text()
    assert "<h3>2026-06 <span class=\"badge failed\">latest run interrupted</span>" in index
    assert "The latest run was interrupted by SIGTERM during 01_clean" in index
    assert "2026-05" not in index


@pytest.mark.skipif(os.name != "posix", reason="tells a live process from a gone one with signal 0")
def test_index_says_a_run_whose_process_is_gone_was_interrupted_not_running(tmp_path):
    """A run killed outright (SIGKILL, power loss) never updates run.json: the index sees that its process
    is gone. A run whose process is alive (this one) is still running."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    reports = tmp_path / "reports"
    for month, pid in (("2026-06", gone.pid), ("2026-05", os.getpid())):
        record = {"month": month, "as_of": f"{month}-28", "status": "running", "started": "2026-07-01T06:00:00+00:00",
                  "pid": pid, "host": socket.gethostname(), "notebooks": [{"name": "01_hello", "status": "running"}]}
        make_month(reports, "demo", month, record=record)
    index = build_index(reports).read_text()
    june, may = index.split("<h3>2026-05")
    assert "latest run interrupted" in june and f"its process {gone.pid} is gone" in june
    assert "latest run running" in may


def test_index_lists_a_month_whose_run_record_is_unreadable(tmp_path):
    reports = tmp_path / "reports"
    month = make_month(reports, "demo", "2026-06")
    (month / "run.json").write_text("{not json")
    index = build_index(reports).read_text()
    assert 'href="demo/2026-06/01_hello.html"' in index and "badge" not in index.replace(".badge", "")


def test_index_without_processed_artifacts_has_no_tiles(tmp_path):
    reports = tmp_path / "reports"
    make_month(reports, "demo", "2026-06", record=ok_record("2026-06", "01_hello", "02_params"))
    assert "data-metric" not in build_index(reports, tmp_path / "data" / "processed").read_text()


def test_index_tiles_show_the_latest_month_from_its_kpis_history_on_a_first_run(tmp_path):
    """One month run so far: its kpis.csv holds 18 months, so lines and changes are complete already."""
    reports, processed = tmp_path / "reports", tmp_path / "data" / "processed"
    make_month(reports, "demo", "2026-06")
    history = {m: {"revenue": 1000.0 + i} for i, m in enumerate(months_back("2026-06", 18))}
    history["2026-06"] = {"revenue": 12_345.6, "orders": 4269, "new_customers": 815, "repeat_rate": 0.70549,
                          "returning_revenue_share": 0.7724, "sleeping_customers": 9122, "active_customers": 3400}
    write_kpis(processed, "demo", "2026-06", history)
    index = build_index(reports).read_text()  # processed_base defaults to reports/../data/processed
    assert [tile_value(index, m) for m in ("revenue", "orders", "active_customers", "new_customers",
                                           "returning_revenue_share", "repeat_rate", "sleeping_customers")] == [
        "EUR 12,346", "4,269", "3,400", "815", "77.2%", "70.5%", "9,122"]
    assert len(tile_points(index, "revenue")) == 18 and tile(index, "revenue").count("<circle") == 18
    assert tile_points(index, "revenue")["2025-01"] == 1000.0
    assert "June 2026" in index and "clv_at_risk" not in index  # no CLV or churn run: no tile


def test_a_sparkline_shows_the_last_24_months(tmp_path):
    reports, processed = tmp_path / "reports", tmp_path / "data" / "processed"
    make_month(reports, "demo", "2026-06")
    write_kpis(processed, "demo", "2026-06", {m: {} for m in months_back("2026-06", 30)})
    points = tile_points(build_index(reports).read_text(), "orders")
    assert len(points) == 24 and min(points) == "2024-07" and max(points) == "2026-06"


def test_tile_changes_vs_last_month_and_a_year_ago_are_coloured_by_what_they_mean(tmp_path):
    reports, processed = tmp_path / "reports", tmp_path / "data" / "processed"
    make_month(reports, "demo", "2026-06")
    history = {m: {} for m in months_back("2026-06", 13)}
    history["2025-06"] = {"revenue": 1250.0, "repeat_rate": 0.40, "sleeping_customers": 120}
    history["2026-05"] = {"revenue": 1000.0, "repeat_rate": 0.40, "sleeping_customers": 100}
    history["2026-06"] = {"revenue": 1100.0, "repeat_rate": 0.415, "sleeping_customers": 120}
    write_kpis(processed, "demo", "2026-06", history)
    index = build_index(reports).read_text()
    # revenue: up on last month is good news, down on a year ago bad news
    assert tile_changes(index, "revenue") == {"vs last month": ("+10.0%", "good"), "vs a year ago": ("-12.0%", "bad")}
    # a share changes in percentage points
    assert tile_changes(index, "repeat_rate") == {"vs last month": ("+1.5 pp", "good"),
                                                  "vs a year ago": ("+1.5 pp", "good")}
    # more sleeping customers is bad news: red although the number went up
    assert tile_changes(index, "sleeping_customers") == {"vs last month": ("+20.0%", "bad"),
                                                         "vs a year ago": ("+0.0%", "flat")}
    assert '<b class="bad" data-vs="2026-05" title="2026-05: 100">\u25b2 +20.0%</b>' in tile(index, "sleeping_customers")


def test_a_tile_without_the_month_a_year_back_shows_a_dash(tmp_path):
    reports, processed = tmp_path / "reports", tmp_path / "data" / "processed"
    make_month(reports, "demo", "2026-06")
    write_kpis(processed, "demo", "2026-06", {"2026-04": {}, "2026-05": {"orders": 40}, "2026-06": {"orders": 50}})
    index = build_index(reports).read_text()
    assert tile_changes(index, "orders") == {"vs last month": ("+25.0%", "good"), "vs a year ago": (MISSING, "none")}
    assert '<b class="none" data-vs="2025-06" title="2025-06: no data">' in tile(index, "orders")


@pytest.mark.parametrize("value, before, kind, expected", [
    (1100.0, 1000.0, "money", ("+10.0%", 1)),
    (880.0, 1000.0, "count", ("-12.0%", -1)),
    (0.415, 0.40, "share", ("+1.5 pp", 1)),
    (0.38, 0.40, "share", ("-2.0 pp", -1)),
    (5.0, 0.0, "count", ("+5", 1)),            # from zero: the difference itself
    (1000.2, 1000.0, "money", ("+0.0%", 0)),   # rounds to zero: no colour, no "-0.0"
    (999.8, 1000.0, "money", ("+0.0%", 0)),
    (1000.0, None, "money", (MISSING, 0)),     # no such month
    (1000.0, math.nan, "money", (MISSING, 0)),
])
def test_change_text(value, before, kind, expected):
    assert change_text(value, before, kind) == expected


@pytest.mark.parametrize("sign, good, tone", [(1, 1, "good"), (-1, 1, "bad"), (1, -1, "bad"), (-1, -1, "good"),
                                              (0, 1, "flat"), (0, -1, "flat")])
def test_tile_tone_follows_what_a_rise_means(sign, good, tone):
    assert tile_tone(sign, good) == tone


def test_month_shift_crosses_years():
    assert (month_shift("2026-01", -1), month_shift("2026-06", -12), month_shift("2024-07", 23)) == (
        "2025-12", "2025-06", "2026-06")


def test_index_tiles_come_from_the_newest_month_with_kpis(tmp_path):
    """A rerun of an older month does not move the tiles: the newest kpis.csv holds the whole history."""
    reports, processed = tmp_path / "reports", tmp_path / "data" / "processed"
    for month in ("2026-05", "2026-06"):
        make_month(reports, "demo", month)
    write_kpis(processed, "demo", "2026-05", {"2026-05": {"revenue": 999.0}})
    write_kpis(processed, "demo", "2026-06", {"2026-05": {"revenue": 500.0}, "2026-06": {"revenue": 600.0}})
    (processed / "demo" / "2026-07").mkdir()  # a month whose 02 has not run yet
    index = build_index(reports).read_text()
    assert tile_points(index, "revenue") == {"2026-05": 500.0, "2026-06": 600.0}
    assert tile_value(index, "revenue") == "EUR 600" and "June 2026" in index


def test_money_without_a_recorded_currency_is_shown_bare(tmp_path):
    reports, processed = tmp_path / "reports", tmp_path / "data" / "processed"
    make_month(reports, "demo", "2026-06")
    write_kpis(processed, "demo", "2026-06", {"2026-06": {"revenue": 12_345.6}}, currency=None)
    assert tile_value(build_index(reports).read_text(), "revenue") == "12,346"


def test_clv_at_risk_tile_compares_with_last_months_run_where_there_was_one(tmp_path):
    reports, processed = tmp_path / "reports", tmp_path / "data" / "processed"
    runs = {"2026-05": 200.0, "2026-06": 250.0}  # each month's own run: the CLV of its high-risk customers
    for month in runs:
        make_month(reports, "demo", month)
        folder = write_kpis(processed, "demo", month, {month: {}}, currency="USD")
        write_trend(folder, {m: v for m, v in runs.items() if m <= month})
    index = build_index(reports).read_text()
    assert tile_value(index, "clv_at_risk") == "USD 250"
    assert tile_changes(index, "clv_at_risk") == {"vs last month": ("+25.0%", "bad"), "vs a year ago": (MISSING, "none")}


def test_an_older_month_rerun_later_gives_the_clv_at_risk_tile_its_new_figure(tmp_path):
    """June's trend.csv holds May as it was when June ran; May rerun since has its own, newer row: that one counts."""
    reports, processed = tmp_path / "reports", tmp_path / "data" / "processed"
    for month in ("2026-05", "2026-06"):
        make_month(reports, "demo", month)
    write_trend(write_kpis(processed, "demo", "2026-05", {"2026-05": {}}), {"2026-05": 300.0})
    write_trend(write_kpis(processed, "demo", "2026-06", {"2026-06": {}}), {"2026-05": 200.0, "2026-06": 250.0})
    index = build_index(reports).read_text()
    assert tile_points(index, "clv_at_risk") == {"2026-05": 300.0, "2026-06": 250.0}
    assert tile_changes(index, "clv_at_risk")["vs last month"] == ("-16.7%", "good")


def test_a_month_run_before_trend_csv_existed_still_builds_and_says_the_tile_is_missing(tmp_path):
    """A month folder rendered before 07 wrote trend.csv: KPI tiles as ever, CLV at risk named as missing."""
    reports, processed = tmp_path / "reports", tmp_path / "data" / "processed"
    make_month(reports, "demo", "2026-06")
    folder = write_kpis(processed, "demo", "2026-06", {"2026-05": {}, "2026-06": {}})
    pd.DataFrame({"customer_id": ["a", "b"], "clv": [250.0, 40.0]}).to_parquet(folder / "clv.parquet")
    pd.DataFrame({"customer_id": ["a", "b"], "risk_tier": ["high", "low"]}).to_parquet(folder / "churn.parquet")
    index = build_index(reports).read_text()
    assert tile_value(index, "orders") == "50" and 'data-metric="clv_at_risk"' not in index
    assert "CLV of high-risk customers not shown: 2026-06 has no trend.csv yet (written by 07_summary)" in index


def test_the_index_imports_no_stage():
    """The site is built from declared artifacts (helpers.artifacts) and the reports' names (helpers.words)."""
    import ast

    tree = ast.parse((project_root() / "src" / "helpers" / "publish.py").read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    imported |= {f"helpers.{a.name}" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                 and node.module == "helpers" for a in node.names}
    imported |= {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    helpers = {name for name in imported if name.startswith("helpers.")}
    assert helpers <= {"helpers.artifacts", "helpers.words"}, helpers


def test_a_broken_older_month_leaves_out_only_the_clv_at_risk_tile(tmp_path):
    reports, processed = tmp_path / "reports", tmp_path / "data" / "processed"
    make_month(reports, "demo", "2026-06")
    write_trend(write_kpis(processed, "demo", "2026-06", {"2026-05": {}, "2026-06": {}}), {"2026-05": 1.0, "2026-06": 2.0})
    (processed / "demo" / "2026-05").mkdir()
    (processed / "demo" / "2026-05" / "kpis.csv").write_text("not,the,kpis\n1,2,3\n")
    (processed / "demo" / "2026-05" / "trend.csv").write_text("not,the,trend\n1,2,3\n")
    index = build_index(reports).read_text()
    assert tile_value(index, "orders") == "50" and "CLV of high-risk customers unavailable: " in index


def test_index_is_the_same_bytes_for_the_same_files(tmp_path):
    reports, processed = tmp_path / "reports", tmp_path / "data" / "processed"
    make_month(reports, "demo", "2026-06", record=ok_record("2026-06", "01_hello", "02_params"))
    write_kpis(processed, "demo", "2026-06", {m: {"revenue": 1000.0 + 7 * i} for i, m in
                                             enumerate(months_back("2026-06", 20))})
    first = build_index(reports).read_bytes()
    assert build_index(reports).read_bytes() == first


def test_index_loads_nothing_from_the_internet(tmp_path):
    reports, processed = tmp_path / "reports", tmp_path / "data" / "processed"
    make_month(reports, "demo", "2026-06")
    write_kpis(processed, "demo", "2026-06", {m: {} for m in months_back("2026-06", 14)})
    index = build_index(reports).read_text()
    assert index.count("<svg") == len(KPI_TILES)
    assert external_resources(index) == [] and "<script" not in index and "<link" not in index


def test_index_says_when_a_shops_key_figures_cannot_be_read(tmp_path):
    reports, processed = tmp_path / "reports", tmp_path / "data" / "processed"
    make_month(reports, "demo", "2026-06")
    (processed / "demo" / "2026-06").mkdir(parents=True)
    (processed / "demo" / "2026-06" / "kpis.csv").write_text("not,the,kpis\n1,2,3\n")
    index = build_index(reports).read_text()
    assert '<p class="error">Key figures unavailable: ' in index
    assert 'href="demo/2026-06/01_hello.html"' in index
