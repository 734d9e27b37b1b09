"""Tests for helpers.publish: report pages from hand-built notebooks, the index from hand-built folders."""

import json
import os
import re
import socket
import subprocess
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from helpers.publish import build_index, notebook_to_html


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


def write_kpis(processed: Path, shop: str, month: str, revenue: float, repeat_rate: float = 0.4) -> None:
    """The KPI artifact the trends read, as notebook 02 writes it."""
    folder = processed / shop / month
    folder.mkdir(parents=True)
    pd.DataFrame({"month": [month], "revenue": [revenue], "active_customers": [10],
                  "returning_revenue_share": [0.5], "repeat_rate": [repeat_rate], "sleeping_customers": [3]}
                 ).to_csv(folder / "kpis.csv", index=False)


def trend_points(index_html: str, metric: str) -> dict:
    found = re.search(rf'data-metric="{metric}" data-points="([^"]*)"', index_html)
    assert found, f"no {metric} trend in the index"
    return {k: float(v) for k, v in (p.split("=") for p in found.group(1).split(";") if p)}


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


def test_index_without_processed_artifacts_has_no_trends(tmp_path):
    reports = tmp_path / "reports"
    make_month(reports, "demo", "2026-06", record=ok_record("2026-06", "01_hello", "02_params"))
    assert "data-metric" not in build_index(reports, tmp_path / "data" / "processed").read_text()


def test_index_trends_show_each_months_own_kpis_as_inline_svg(tmp_path):
    reports, processed = tmp_path / "reports", tmp_path / "data" / "processed"
    for month, revenue in (("2026-04", 100), ("2026-05", 250), ("2026-06", 12_345)):
        make_month(reports, "demo", month)
        write_kpis(processed, "demo", month, revenue)
    index = build_index(reports).read_text()  # processed_base defaults to reports/../data/processed
    assert trend_points(index, "revenue") == {"2026-04": 100.0, "2026-05": 250.0, "2026-06": 12345.0}
    assert trend_points(index, "repeat_rate") == {"2026-04": 0.4, "2026-05": 0.4, "2026-06": 0.4}
    assert trend_points(index, "clv_at_risk") == {}  # no CLV/churn artifacts: an empty chart, no error
    assert index.count('<figure class="trend"') == 4 and index.count("<svg") == 3
    assert 'src="http' not in index and "<link" not in index


def test_index_trend_captions_show_the_latest_value_and_the_range(tmp_path):
    reports, processed = tmp_path / "reports", tmp_path / "data" / "processed"
    for month, revenue, repeat_rate in (("2026-05", 9_999.4, 0.1234), ("2026-06", 12_345, 0.4)):
        make_month(reports, "demo", month)
        write_kpis(processed, "demo", month, revenue, repeat_rate)
    index = build_index(reports).read_text()
    # Money from 10,000 on in thousands, so a caption stays short; shares in %.
    assert 'Revenue <b>12k</b><br><span class="range">range 9,999 to 12k</span>' in index
    assert 'Repeat rate <b>40.0%</b><br><span class="range">range 12.3% to 40.0%</span>' in index
    assert 'Active customers <b>10</b>' in index


def test_index_says_when_a_shops_trends_cannot_be_read(tmp_path):
    reports, processed = tmp_path / "reports", tmp_path / "data" / "processed"
    make_month(reports, "demo", "2026-06")
    (processed / "demo" / "2026-06").mkdir(parents=True)
    (processed / "demo" / "2026-06" / "kpis.csv").write_text("not,the,kpis\n1,2,3\n")
    index = build_index(reports).read_text()
    assert '<p class="error">Trends unavailable: ' in index
    assert 'href="demo/2026-06/01_hello.html"' in index
