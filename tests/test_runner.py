"""Tests for helpers.runner: tiny notebooks built with nbformat in a temporary project.

What a report page and the index show is tested on hand-built inputs in test_publish.py; here, that a run
publishes them."""

import asyncio
import contextlib
import importlib.util
import json
import os
import re
import signal
import sys
from datetime import date, datetime
from pathlib import Path

import duckdb
import nbformat
import psutil
import pytest

from helpers import artifacts, demo, engine, runner, spark_server, warm_kernels
from helpers.config import load_config
from helpers.paths import project_root
from helpers.publish import external_resources
from helpers.runner import (RunFailed, backfill, last_complete_month_end, refresh_notebooks,
                            run_month, shop_name)

PARAMETERS = "as_of = '2020-01-31'\nraw_dir = ''\nprocessed_dir = ''\nconfig_path = ''"


def make_project(root: Path) -> Path:
    """A project skeleton: pyproject.toml and src/helpers (what marks a project's root, so that the kernels take the
    notebooks' relative paths from it, helpers.paths), a demo raw folder, a config file, no notebooks yet."""
    (root / "pyproject.toml").write_text("[project]\nname = 'fixture'\n")
    (root / "src" / "helpers").mkdir(parents=True)
    (root / "data" / "raw" / "demo").mkdir(parents=True)
    (root / "config").mkdir()
    (root / "config" / "default.yml").write_text("shop: {currency: EUR}\n")
    (root / "notebooks").mkdir()
    return root


def make_notebook(root: Path, name: str, *code: str, title: str = "A tiny report") -> Path:
    """notebooks/<name> with a title, a `parameters` cell and one code cell per `code`."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    parameters = nbformat.v4.new_code_cell(PARAMETERS)
    parameters.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {title}"), parameters]
    nb.cells += [nbformat.v4.new_code_cell(source) for source in code]
    path = root / "notebooks" / name
    nbformat.write(nb, str(path))
    return path


def stream_text(ipynb: Path) -> str:
    nb = nbformat.read(str(ipynb), as_version=4)
    return "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                   for out in cell.outputs if out.output_type == "stream")


def folder_bytes(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def june_run(tmp_path_factory):
    """One successful two-notebook run for June 2026, shared by the tests that only read it."""
    root = make_project(tmp_path_factory.mktemp("project"))
    make_notebook(root, "01_hello.ipynb",
                  "secret_variable_name = 'hello from ' + 'the first notebook'\n"
                  "print(secret_variable_name)",
                  title="Hello")
    make_notebook(root, "02_params.ipynb",
                  "from pathlib import Path\n"
                  "print('as_of', as_of)\n"
                  "print('raw_dir', raw_dir)\n"
                  "print('processed_dir', processed_dir)\n"
                  "print('config_path', config_path)\n"
                  "print('config readable from kernel cwd', Path(config_path).is_file())")
    lines = []
    html_paths = run_month("2026-06-30", "data/raw/demo", root=root, log=lines.append)
    return root, html_paths, lines


def test_successful_run_writes_ipynb_and_html_per_notebook_under_shop_and_month(june_run):
    root, html_paths, _ = june_run
    month_dir = root / "reports" / "demo" / "2026-06"
    assert html_paths == [month_dir / "01_hello.html", month_dir / "02_params.html"]
    for stem in ("01_hello", "02_params"):
        assert (month_dir / f"{stem}.ipynb").is_file()
        assert (month_dir / f"{stem}.html").is_file()
    assert not list(month_dir.glob(".*")), "no temp files left behind"


def test_each_report_is_titled_shop_month_notebook_and_shows_output_but_no_parameters(june_run):
    root, _, _ = june_run
    page = (root / "reports" / "demo" / "2026-06" / "01_hello.html").read_text()
    assert "<title>demo · 2026-06 · 01_hello</title>" in page
    assert "hello from the first notebook" in page
    assert "secret_variable_name" not in page
    assert "data/processed/demo/2026-06" not in page


def test_the_run_rebuilds_the_index_with_its_reports(june_run):
    root, _, _ = june_run
    index = (root / "reports" / "index.html").read_text()
    assert 'href="demo/2026-06/01_hello.html"' in index
    assert 'href="demo/2026-06/02_params.html"' in index
    assert "failed" not in index.replace(".failed", "")
    assert "data-metric" not in index  # the notebooks wrote no KPI artifacts: no trends


def test_injected_parameters_reach_the_notebook_as_paths_relative_to_root(june_run):
    root, _, _ = june_run
    out = stream_text(root / "reports" / "demo" / "2026-06" / "02_params.ipynb")
    assert "as_of 2026-06-30\n" in out
    assert "raw_dir data/raw/demo/\n" in out
    assert "processed_dir data/processed/demo/2026-06/\n" in out
    assert "config_path config/default.yml\n" in out
    assert "config readable from kernel cwd True\n" in out
    assert (root / "data" / "processed" / "demo" / "2026-06").is_dir()


def test_no_machine_paths_end_up_in_saved_notebooks_or_reports(june_run):
    root, _, _ = june_run
    for path in (root / "reports").rglob("*"):
        if path.is_file():
            assert str(root) not in path.read_text(), path.name


def test_the_notice_java_prints_when_spark_starts_is_not_in_the_saved_notebook(tmp_path):
    """Spark's log goes to spark.log; the one line Java prints on its own at a driver's start (a kernel captures it
    into the cell) is dropped from the saved notebook and its page, and other stderr text stays."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("con = connect()"),
                                         nbformat.v4.new_code_cell("x = 1")])
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stderr", text=f"{runner.JVM_NOTICE}\n")]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stderr", text=f"{runner.JVM_NOTICE}\nreal warning\n")]
    runner._tidy_saved_notebook(nb, tmp_path / "n.ipynb", tmp_path / "out.ipynb", tmp_path)
    assert nb.cells[0].outputs == []
    assert [o["text"] for o in nb.cells[1].outputs] == ["real warning\n"]


def test_progress_is_logged_per_notebook_with_a_total(june_run):
    _, _, lines = june_run
    assert lines[1].startswith("[1/2] 01_hello ... done in ") and lines[1].endswith(" s")
    assert lines[2].startswith("[2/2] 02_params ... done in ")
    assert lines[-1].startswith("demo 2026-06: 2 notebook(s) done in ")


def test_run_record_says_the_month_succeeded(june_run):
    root, _, _ = june_run
    record = json.loads((root / "reports" / "demo" / "2026-06" / "run.json").read_text())
    assert record["status"] == "ok"
    assert record["as_of"] == "2026-06-30"
    assert [n["name"] for n in record["notebooks"]] == ["01_hello", "02_params"]
    assert record["notebooks"][0]["title"] == "Hello"


def test_a_kernel_that_dies_leaves_the_cells_it_ran_in_a_partial_report(tmp_path):
    """The runner writes an executed notebook once, when it ends (not at every cell): a kernel killed mid-run (the
    machine out of memory) still leaves a page with what it printed up to there."""
    root = make_project(tmp_path)
    make_notebook(root, "01_dies.ipynb", "print('before the kernel died')",
                  "import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "print('never printed')")
    with pytest.raises(RunFailed) as caught:
        run_month("2026-06-30", "data/raw/demo", root=root, log=lambda _: None)
    assert caught.value.output_html == root / "reports" / "demo" / "2026-06" / "01_dies.html"
    page = caught.value.output_html.read_text()
    assert "before the kernel died" in page and "never printed" not in page


def test_failing_notebook_keeps_partial_report_later_notebooks_still_run_then_run_failed(tmp_path):
    root = make_project(tmp_path)
    make_notebook(root, "01_ok.ipynb", "print('first is fine')")
    make_notebook(root, "02_breaks.ipynb",
                  "print('before the error')",
                  "{}['recency_days']",
                  "print('never printed')")
    make_notebook(root, "03_later.ipynb", "print('the later notebook ran')")
    run_month("2026-05-31", "data/raw/demo", root=root, only=["01"], log=lambda _: None)
    may = root / "reports" / "demo" / "2026-05"
    may_before = folder_bytes(may)

    with pytest.raises(RunFailed) as caught:
        run_month("2026-06-30", "data/raw/demo", root=root, log=lambda _: None)

    error = caught.value
    june = root / "reports" / "demo" / "2026-06"
    # cells: 0 title, 1 parameters, 2 injected parameters, 3 print, 4 the KeyError
    assert (error.notebook, error.cell_index, error.ename) == ("02_breaks.ipynb", 4, "KeyError")
    assert str(error) == ("02_breaks.ipynb failed at cell 4: KeyError: 'recency_days' "
                          "(partial report: reports/demo/2026-06/02_breaks.html)")
    assert error.output_html == june / "02_breaks.html"
    assert error.output_ipynb == june / "02_breaks.ipynb"
    page = error.output_html.read_text()
    assert "KeyError" in page and "recency_days" in page
    assert "before the error" in page and "never printed" not in page
    assert "the later notebook ran" in (june / "03_later.html").read_text()
    assert folder_bytes(may) == may_before
    record = json.loads((june / "run.json").read_text())
    assert record["status"] == "failed"
    assert [(n["name"], n["status"]) for n in record["notebooks"]] == [
        ("01_ok", "ok"), ("02_breaks", "failed"), ("03_later", "ok")]
    assert "latest run failed" in (root / "reports" / "index.html").read_text()


def test_only_runs_just_the_listed_notebooks(tmp_path):
    root = make_project(tmp_path)
    for name in ("01_a.ipynb", "02_b.ipynb", "03_c.ipynb"):
        make_notebook(root, name, "print('ran')")
    lines = []
    written = run_month("2026-06-30", root / "data" / "raw" / "demo", root=root, only=["01", "03"],
                        log=lines.append)
    june = root / "reports" / "demo" / "2026-06"
    assert [p.name for p in written] == ["01_a.html", "03_c.html"]
    assert sorted(p.name for p in june.glob("*.ipynb")) == ["01_a.ipynb", "03_c.ipynb"]
    assert lines[1].startswith("[1/2] 01_a ... done in ")


def test_only_with_an_unknown_prefix_is_rejected_before_running(tmp_path):
    root = make_project(tmp_path)
    make_notebook(root, "01_a.ipynb", "print('ran')")
    with pytest.raises(ValueError, match="no notebook numbered 09"):
        run_month("2026-06-30", "data/raw/demo", root=root, only=["09"])
    assert not (root / "reports" / "demo").exists()


def test_backfill_runs_one_folder_per_month_and_index_lists_newest_first(tmp_path):
    root = make_project(tmp_path)
    make_notebook(root, "01_as_of.ipynb", "print(as_of)")
    written = backfill("2025-11", "2026-01", "data/raw/demo", root=root, log=lambda _: None)
    demo = root / "reports" / "demo"
    assert [p.parent.name for p in written] == ["2025-11", "2025-12", "2026-01"]
    assert stream_text(demo / "2025-12" / "01_as_of.ipynb") == "2025-12-31\n"
    index = (root / "reports" / "index.html").read_text()
    assert index.index("2026-01") < index.index("2025-12") < index.index("2025-11")


@pytest.mark.parametrize("max_order_date, expected", [
    ("2026-06-30", "2026-06-30"),
    ("2026-07-15", "2026-06-30"),
    ("2024-03-01", "2024-02-29"),
    ("2026-01-10", "2025-12-31"),
    (date(2025, 12, 31), "2025-12-31"),
    (datetime(2026, 6, 30, 23, 59), "2026-06-30"),
    ("2026-06-30 08:15:00", "2026-06-30"),
])
def test_last_complete_month_end(max_order_date, expected):
    assert last_complete_month_end(max_order_date) == expected


@pytest.mark.parametrize("raw_dir", ["data/raw/demo", "data/raw/demo/", Path("/srv/data/raw/demo")])
def test_shop_name_is_the_raw_folders_name(raw_dir):
    assert shop_name(raw_dir) == "demo"


# --- index trends --------------------------------------------------------------------------------

KPI_NOTEBOOK = (
    "import pandas as pd\n"
    "from pathlib import Path\n"
    "revenue = float(Path(raw_dir, 'revenue.txt').read_text())\n"
    "pd.DataFrame({'month': [as_of[:7]], 'revenue': [revenue], 'active_customers': [10],\n"
    "              'returning_revenue_share': [0.5], 'repeat_rate': [0.4], 'sleeping_customers': [3]}\n"
    "             ).to_csv(Path(processed_dir, 'kpis.csv'), index=False)\n"
    "print('revenue', revenue)"
)
FIGURE_NOTEBOOK = ("import matplotlib.pyplot as plt\n"
                   "fig, ax = plt.subplots(figsize=(2, 1))\nax.plot([1, 2, 3])\nplt.show()")


def trend_points(index_html: str, metric: str) -> dict:
    found = re.search(rf'data-metric="{metric}" data-points="([^"]*)"', index_html)
    assert found, f"no {metric} trend in the index"
    return {k: float(v) for k, v in (p.split("=") for p in found.group(1).split(";") if p)}


def img_sources(page: str) -> list[str]:
    return re.findall(r"<img\b[^>]*?\bsrc\s*=\s*[\"']([^\"']*)", page, flags=re.I)


def test_rerunning_an_older_month_changes_only_its_reports_and_the_index_tiles_stay_on_the_newest_month(tmp_path):
    """The index's KPI tiles read the newest month's kpis.csv (in a real shop it holds the whole history,
    helpers.publish); rerunning an older month changes that month's reports and leaves the tiles alone."""
    root = make_project(tmp_path)
    raw = root / "data" / "raw" / "demo"
    make_notebook(root, "01_kpis.ipynb", KPI_NOTEBOOK, FIGURE_NOTEBOOK)
    for month_end, revenue in (("2026-04-30", 100), ("2026-05-31", 200), ("2026-06-30", 300)):
        (raw / "revenue.txt").write_text(str(revenue))
        run_month(month_end, "data/raw/demo", root=root, log=lambda _: None)
    demo = root / "reports" / "demo"
    index = (root / "reports" / "index.html").read_text()
    assert trend_points(index, "revenue") == {"2026-06": 300.0}
    assert trend_points(index, "repeat_rate") == {"2026-06": 0.4}
    assert "clv_at_risk" not in index  # no CLV/churn artifacts: no tile, no error
    april, june = folder_bytes(demo / "2026-04"), folder_bytes(demo / "2026-06")

    (raw / "revenue.txt").write_text("250")
    run_month("2026-05-31", "data/raw/demo", root=root, log=lambda _: None)

    index = (root / "reports" / "index.html").read_text()
    assert trend_points(index, "revenue") == {"2026-06": 300.0}
    assert folder_bytes(demo / "2026-04") == april and folder_bytes(demo / "2026-06") == june
    assert "revenue 250.0" in (demo / "2026-05" / "01_kpis.html").read_text()
    assert index.index("demo/2026-06/") < index.index("demo/2026-05/") < index.index("demo/2026-04/")
    # Nothing outside the page is needed: the report's figure and the index's charts are inlined.
    report = (demo / "2026-05" / "01_kpis.html").read_text()
    assert img_sources(report), "the figure should be an <img>"
    for page in (report, index):
        assert all(src.startswith("data:image/") for src in img_sources(page))
        assert external_resources(page) == []
    assert index.count('<div class="tile"') == index.count("<svg") == 5  # the five KPI columns the notebook wrote


@pytest.mark.skipif(os.name != "posix", reason="Windows has no IPC transport")
def test_notebooks_run_on_a_local_ipc_kernel_without_the_unencrypted_tcp_warning(tmp_path, capfd):
    root = make_project(tmp_path)
    make_notebook(root, "01_kernel.ipynb",
                  "import json\nfrom ipykernel.connect import get_connection_info\n"
                  "print('transport', json.loads(get_connection_info())['transport'])")
    run_month("2026-06-30", root / "data" / "raw" / "demo", root=root, log=lambda line: None)
    assert "transport ipc" in stream_text(root / "reports" / "demo" / "2026-06" / "01_kernel.ipynb")
    assert "without encryption" not in capfd.readouterr().err


def test_a_kernel_on_its_way_to_shutdown_is_not_interrupted():
    """jupyter_client sends SIGINT before every shutdown request; a kernel still finishing its last message then
    printed "ERROR | KeyboardInterrupt caught in kernel." among a successful run's progress lines."""
    km, sent = runner.TrackedKernelManager(kernel_name="python3"), []

    async def start_and_shut_down():
        await km.start_kernel()
        send = km.provisioner.send_signal

        async def spy(signum):
            sent.append(signum)
            await send(signum)
        km.provisioner.send_signal = spy
        await km.shutdown_kernel()
    asyncio.run(start_and_shut_down())
    assert not km.has_kernel and signal.SIGINT not in sent


@pytest.mark.parametrize("cell_progress", [True, False])
def test_a_cell_progress_bar_shows_only_when_asked(tmp_path, capfd, cell_progress):
    root = make_project(tmp_path)
    make_notebook(root, "01_a.ipynb", "x = 1", "y = 2")
    run_month("2026-06-30", root / "data" / "raw" / "demo", root=root, log=lambda line: None,
              cell_progress=cell_progress)
    assert ("cell/s" in capfd.readouterr().err) is cell_progress


def test_refresh_notebooks_stores_fresh_outputs_in_the_committed_notebook(tmp_path):
    root = make_project(tmp_path)  # the kernel runs in root/notebooks, not in this process's folder
    path = make_notebook(root, "01_a.ipynb", "print('fresh', 6 * 7)")
    assert refresh_notebooks(root=root, log=lambda line: None) == [path]
    assert "fresh 42" in stream_text(path)


# --- notebooks side by side ------------------------------------------------------------------------
# The fake notebooks carry the real notebooks' names, so the declarations in helpers.artifacts say who waits
# for whom: 02_kpis and 03_segments wait for 01_clean only; 04_clv reads segments (03). Each writes when its
# first cell started and when it ended.

def timed(stem: str, *code: str, seconds: float = 0.0) -> tuple[str, ...]:
    """Cells of a fake notebook: note the start in processed_dir, run `code`, sleep, note the end."""
    start = ("import time\nfrom pathlib import Path\n"
             f"Path(processed_dir, '{stem}.start').write_text(repr(time.time()))")
    end = f"time.sleep({seconds})\nPath(processed_dir, '{stem}.end').write_text(repr(time.time()))"
    return (start, *code, end)


def times(june: Path, stem: str) -> tuple[float, float]:
    return float((june / f"{stem}.start").read_text()), float((june / f"{stem}.end").read_text())


DUCKDB_SETTINGS = ("from helpers import engine\nfrom helpers.config import load_config\n"
                   "con = engine.connect(load_config(config_path).engine)\n"
                   "print('duckdb', con.raw_sql(\"SELECT current_setting('threads'), "
                   "current_setting('memory_limit')\").fetchone())")


def duckdb_settings(threads: int | None, memory_limit: str) -> str:
    """What DuckDB itself reports for these settings, as the fake notebook prints it."""
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {threads}")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    return f"duckdb {con.execute(SETTINGS_QUERY).fetchone()}\n"


SETTINGS_QUERY = "SELECT current_setting('threads'), current_setting('memory_limit')"


def wait_for_start(stem: str) -> str:
    """A cell that goes on once notebook `stem` has started (or after a minute): run one after the other, the two
    would not overlap."""
    return ("deadline = time.time() + 60\n"
            f"while not Path(processed_dir, '{stem}.start').exists() and time.time() < deadline:\n"
            "    time.sleep(0.05)")


# 04 reads segments (03): the read returns once 03 has ended
READ_SEGMENTS = ("from helpers import artifacts\nartifacts.exists(processed_dir, 'segments')\n"
                 "Path(processed_dir, '04_clv.read').write_text(repr(time.time()))")


@pytest.fixture(scope="module")
def side_by_side(tmp_path_factory):
    """01_clean, then 03_segments (another notebook waits for it: it starts first) beside 04_clv (it waits for more
    notebooks than 02 does: the end of the longer chain), whose read of segments waits for 03; then 02_kpis beside
    04, two at a time. 03 ends only once 04 has started, 04 only once 02 has."""
    root = make_project(tmp_path_factory.mktemp("project"))
    make_notebook(root, "01_clean.ipynb", *timed("01_clean", DUCKDB_SETTINGS))
    make_notebook(root, "02_kpis.ipynb", *timed("02_kpis", DUCKDB_SETTINGS))
    make_notebook(root, "03_segments.ipynb", *timed("03_segments", wait_for_start("04_clv")))
    make_notebook(root, "04_clv.ipynb", *timed("04_clv", READ_SEGMENTS, wait_for_start("02_kpis")))
    lines = []
    run_month("2026-06-30", "data/raw/demo", root=root, log=lines.append)
    return root, lines


def test_notebooks_that_need_nothing_from_each_other_run_side_by_side_and_a_reader_waits(side_by_side):
    root, lines = side_by_side
    june = root / "data" / "processed" / "demo" / "2026-06"
    clean, kpis, segments, clv = (times(june, s) for s in ("01_clean", "02_kpis", "03_segments", "04_clv"))
    assert clean[1] <= kpis[0]
    assert segments[1] - segments[0] < 30 and clv[1] - clv[0] < 30, "03 saw 04 start, 04 saw 02 start"
    assert clv[0] < segments[1], "04 starts beside 03"
    assert float((june / "04_clv.read").read_text()) >= segments[1], "04's read of segments waits for 03 to end"
    assert kpis[0] < clv[1] and clv[0] < kpis[1], "02 and 04 overlap"
    assert lines[0] == ("demo 2026-06: running 4 notebook(s), up to 2 side by side (each DuckDB then "
                        f"{max(1, os.cpu_count() // 2)} thread{'s' * (os.cpu_count() > 3)}, 1500MB), "
                        "with as_of=2026-06-30")
    assert sorted(line.split(" ... ")[0] for line in lines[1:5]) == [
        "[1/4] 01_clean", "[2/4] 02_kpis", "[3/4] 03_segments", "[4/4] 04_clv"]
    record = json.loads((root / "reports" / "demo" / "2026-06" / "run.json").read_text())
    assert [(n["name"], n["status"]) for n in record["notebooks"]] == [
        ("01_clean", "ok"), ("02_kpis", "ok"), ("03_segments", "ok"), ("04_clv", "ok")]


def test_each_kernels_duckdb_gets_its_share_and_one_running_alone_gets_all(side_by_side):
    root, _ = side_by_side
    month = root / "reports" / "demo" / "2026-06"
    assert duckdb_settings(None, "3GB") in stream_text(month / "01_clean.ipynb")  # everything else waits for 01
    assert duckdb_settings(max(1, os.cpu_count() // 2), "1500MB") in stream_text(month / "02_kpis.ipynb")


@pytest.mark.parametrize("why", ["parallel_notebooks: 1", "a month too large for two"])
def test_notebooks_run_one_at_a_time_when_told_or_when_two_would_not_fit_in_memory(tmp_path, monkeypatch, why):
    root = make_project(tmp_path)
    if why == "parallel_notebooks: 1":
        (root / "config" / "default.yml").write_text("engine: {parallel_notebooks: 1}\n")
        said = "one at a time (engine.parallel_notebooks: 1)"
    else:  # 10M order lines: about 5.4 GB a notebook, over the default 3GB target
        monkeypatch.setattr(runner, "_order_lines", lambda raw_dir: 10_000_000)
        said = "one at a time (about 10,000,000 order lines: two notebooks would need about 10.8 GB, over the memory "
        said += "target 3GB)"
    make_notebook(root, "02_kpis.ipynb", *timed("02_kpis", seconds=1))
    make_notebook(root, "03_segments.ipynb", *timed("03_segments", seconds=1))
    lines = []
    run_month("2026-06-30", "data/raw/demo", root=root, log=lines.append)
    june = root / "data" / "processed" / "demo" / "2026-06"
    assert times(june, "02_kpis")[1] <= times(june, "03_segments")[0]
    assert lines[0] == f"demo 2026-06: running 2 notebook(s), {said}, with as_of=2026-06-30"
    assert [line.split(" ... ")[0] for line in lines[1:3]] == ["[1/2] 02_kpis", "[2/2] 03_segments"]


def test_a_failure_beside_another_notebook_follows_the_failure_rules(tmp_path):
    """03 fails beside 02: 02 is done; 03's segments from an earlier run are removed, so 04 (it reads them)
    still runs and fails by itself with its MissingArtifact sentence; RunFailed names 03, then 04."""
    root = make_project(tmp_path)
    june = root / "data" / "processed" / "demo" / "2026-06"
    june.mkdir(parents=True)
    (june / "segments.parquet").write_bytes(b"an earlier run's segments")
    make_notebook(root, "02_kpis.ipynb", *timed("02_kpis", seconds=1))
    make_notebook(root, "03_segments.ipynb", "print(processed_dir)\n{}['recency_days']")
    make_notebook(root, "04_clv.ipynb", "from pathlib import Path\nfrom helpers import artifacts\n"
                  "artifacts.require(Path(processed_dir).resolve(), 'segments')")  # the kernel runs in root
    with pytest.raises(RunFailed) as caught:
        run_month("2026-06-30", "data/raw/demo", root=root, log=lambda _: None)
    error = caught.value
    assert (error.notebook, error.ename) == ("03_segments.ipynb", "KeyError")
    assert [(e.notebook, e.ename) for e in error.later] == [("04_clv.ipynb", "MissingArtifact")]
    assert "segments.parquet is missing" in error.later[0].evalue and "run 03_segments" in error.later[0].evalue
    record = json.loads((root / "reports" / "demo" / "2026-06" / "run.json").read_text())
    assert [(n["name"], n["status"]) for n in record["notebooks"]] == [
        ("02_kpis", "ok"), ("03_segments", "failed"), ("04_clv", "failed")]
    assert record["notebooks"][1]["stale_removed"] == ["segments.parquet"]
    assert record["error"]["notebook"] == "03_segments.ipynb"


@pytest.mark.slow  # two whole months through papermill, fourteen kernels: make test-slow
def test_a_demo_month_run_twice_with_notebooks_side_by_side_gives_byte_identical_artifacts(tmp_path):
    raw = tmp_path / "raw" / "demo"
    demo.generate(raw, customers=2000, seed=7)
    processed = []
    for run in ("first", "second"):
        lines = []
        run_month("2026-06-30", raw, "config/default.yml", root=project_root(), reports_dir=tmp_path / run / "reports",
                  processed_base=tmp_path / run / "processed", log=lines.append)
        assert "up to 2 side by side" in lines[0]
        processed.append(folder_bytes(tmp_path / run / "processed" / "demo" / "2026-06"))
    assert len(processed[0]) == len(artifacts.ARTIFACTS) + 1  # every declared artifact, plus customers_scored.csv
    assert processed[0] == processed[1]


# --------------------------------------------------------------------------- warm kernels (helpers.warm_kernels)

WARM_CELLS = (
    "import sys\nprint('duckdb loaded before its import:', 'duckdb' in sys.modules)",
    "import os\nimport duckdb\nimport matplotlib.pyplot as plt\nimport pandas as pd\n"
    "print(pd.DataFrame({f'column_{i}': [i] for i in range(30)}))\n"
    "print(os.environ['RETENTION_DUCKDB_SHARE'], os.getcwd() == os.path.realpath(os.environ['PROJECT']))\n"
    "plt.plot([1, 2, 3]);",
)


def executed_outputs(ipynb: Path) -> list:
    nb = nbformat.read(str(ipynb), as_version=4)
    return [(cell.get("execution_count"), cell.get("outputs")) for cell in nb.cells if cell.cell_type == "code"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kernels are forked warm on Linux only")
def test_a_warm_kernel_holds_its_notebooks_imports_and_runs_it_as_a_fresh_kernel_would(tmp_path, monkeypatch):
    """The same notebook, run warm and with engine.warm_kernels: false: only whether duckdb was loaded before its
    import differs. Its figure is on the page (matplotlib's inline backend is not loaded outside a kernel), a wide
    frame prints as a kernel prints it (pandas' columns limit) and the kernel has its own environment and folder.
    No process is left behind."""
    outputs = {}
    for warm in (True, False):
        (tmp_path / str(warm)).mkdir()
        root = make_project(tmp_path / str(warm))
        monkeypatch.setenv("PROJECT", str(root))
        if not warm:
            (root / "config" / "default.yml").write_text("engine: {warm_kernels: false}\n")
        make_notebook(root, "01_a.ipynb", *WARM_CELLS)
        run_month("2026-06-30", "data/raw/demo", root=root, log=lambda line: None)
        outputs[warm] = executed_outputs(root / "reports" / "demo" / "2026-06" / "01_a.ipynb")
    first, rest = -len(WARM_CELLS), 1 - len(WARM_CELLS)  # the cells after the parameters papermill injects
    assert "duckdb loaded before its import: True" in str(outputs[True][first])
    assert "duckdb loaded before its import: False" in str(outputs[False][first])
    assert outputs[True][rest:] == outputs[False][rest:]
    shown = str(outputs[True][rest:])
    assert "image/png" in shown and "column_29" in shown and "1 True" in shown
    assert not warm_processes()


def warm_processes() -> list[int]:
    """This process's descendants that are the zygote or a kernel forked from it (they share its command line)."""
    found = []
    for p in psutil.Process().children(recursive=True):
        try:
            if "helpers.warm_kernels" in " ".join(p.cmdline()) and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p.pid)
        except psutil.Error:  # ended in the meantime
            pass
    return found


def test_a_notebooks_imports_are_its_top_level_import_lines():
    sources = ["from helpers import clean, plots\nfrom helpers.pages import clean as page\nimport a.b, c",
               "%matplotlib inline", "if x:\n    import inside\nfrom . import relative\nimport matplotlib_inline"]
    assert warm_kernels.imports_of(sources) == [
        "helpers", "helpers.clean", "helpers.plots", "helpers.pages", "helpers.pages.clean", "a.b", "c"]


def test_kernels_start_afresh_when_the_memory_target_cannot_hold_one_more(tmp_path, monkeypatch):
    """The process kernels are forked from counts as one kernel: a month that fits one notebook at a time in the
    default 3GB but not that process beside it starts its kernels afresh, as does warm_kernels: false."""
    cfg = load_config(make_project(tmp_path) / "config" / "default.yml").engine
    assert runner._warm(cfg, tmp_path, 2)
    assert not runner._warm(cfg.model_copy(update={"warm_kernels": False}), tmp_path, 2)
    monkeypatch.setattr(runner, "_order_lines", lambda raw_dir: 4_500_000)  # 2.65 GB a notebook
    assert runner._at_once(cfg, tmp_path)[0] == 1 and not runner._warm(cfg, tmp_path, 1)


def test_on_spark_the_notebooks_are_sessions_of_one_driver_side_by_side_unless_told_otherwise(tmp_path):
    """On Spark the runner starts one Spark driver for the month, whose sessions the kernels are: they run side by
    side and start warm, as on DuckDB. With engine.spark_shared_driver: false each kernel starts a driver of its
    own, one notebook at a time; with engine.spark_remote the kernels work on that server and none is started."""
    cfg = load_config(make_project(tmp_path) / "config" / "default.yml").engine.model_copy(update={"backend": "spark"})
    at_once, said = runner._at_once(cfg, tmp_path)
    assert runner._shares_spark_driver(cfg) and at_once == 2 and runner._warm(cfg, tmp_path, at_once)
    assert said == "up to 2 side by side (each a session of one Spark driver)"
    own = cfg.model_copy(update={"spark_shared_driver": False})
    assert not runner._shares_spark_driver(own) and not runner._warm(own, tmp_path, 1)
    assert runner._at_once(own, tmp_path) == (1, "one at a time (engine.backend spark)")
    remote = cfg.model_copy(update={"spark_remote": "sc://spark.example.com:15002"})
    assert not runner._shares_spark_driver(remote) and runner._at_once(remote, tmp_path)[0] == 2


def test_a_month_on_spark_without_pyspark_stops_before_any_notebook_with_what_to_install(tmp_path, monkeypatch):
    root = make_project(tmp_path)
    (root / "config" / "default.yml").write_text("shop: {currency: EUR}\nengine: {backend: spark}\n")
    make_notebook(root, "01_a.ipynb", "x = 1")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyspark" else real(name, *a))
    with pytest.raises(spark_server.SparkDriverFailed, match="pyspark is not installed .* `make spark-setup`"):
        run_month("2026-06-30", root / "data" / "raw" / "demo", root=root, log=lambda line: None)
    assert not (root / "reports" / "demo" / "2026-06" / "01_a.html").exists()


def test_a_month_on_spark_tells_every_kernel_the_driver_it_shares(tmp_path, monkeypatch):
    """The runner starts the month's Spark driver once, before the notebooks, and each kernel finds its address in
    its environment (helpers.engine.connect then opens a session on it); it is stopped when the month ends."""
    root = make_project(tmp_path)
    (root / "config" / "default.yml").write_text("shop: {currency: EUR}\nengine: {backend: spark}\n")
    started = []

    @contextlib.contextmanager
    def driver(engine_cfg, log_file):
        started.append((engine_cfg.backend, log_file.name))
        yield "sc://localhost:15099"
        started.append("stopped")
    monkeypatch.setattr(runner.spark_server, "shared_driver", driver)
    show = f"import os\nprint('driver', os.environ.get({engine.REMOTE_VARIABLE!r}))"
    make_notebook(root, "01_a.ipynb", show)
    make_notebook(root, "02_b.ipynb", show)
    run_month("2026-06-30", root / "data" / "raw" / "demo", root=root, log=lambda line: None)
    assert started == [("spark", "spark.log"), "stopped"]
    for name in ("01_a", "02_b"):
        assert "driver sc://localhost:15099" in stream_text(root / "reports" / "demo" / "2026-06" / f"{name}.ipynb")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kernels are forked warm on Linux only")
def test_a_kernel_starts_afresh_when_the_process_it_would_be_forked_from_has_ended(tmp_path):
    zygote = warm_kernels.Zygote(warm_kernels.interpreter("python3"), dict(os.environ), [], tmp_path)
    zygote.process.kill()
    zygote.process.wait()
    km = runner.TrackedKernelManager(kernel_name="python3")

    async def start_and_shut_down():
        await km.start_kernel(cwd=str(tmp_path))
        started = km.provisioner.process
        await km.shutdown_kernel()
        return started
    runner.TrackedKernelManager.zygote = zygote
    try:
        started = asyncio.run(start_and_shut_down())
    finally:
        runner.TrackedKernelManager.zygote = None
        zygote.close()
    assert not isinstance(started, warm_kernels.ForkedKernel) and started.pid != zygote.process.pid
