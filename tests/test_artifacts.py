"""Artifacts: declared once (with who reads them), checked on write, written atomically, read back as declared."""
import ast
import os
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import artifacts, summary
from helpers.paths import project_root, resolve

DEMO_MONTH = "data/processed/demo/2026-06"


def test_every_artifact_of_the_design_is_declared_with_the_notebook_that_makes_it():
    files = {a.file for a in artifacts.ARTIFACTS.values()}
    for f in ("orders_clean.parquet", "customers_clean.parquet", "quarantine.csv", "data_quality.json", "kpis.csv",
              "cohorts.csv", "segments.parquet", "clv.parquet", "clv_model.json", "churn.parquet",
              "churn_model.json", "winback_measured.csv", "winback_plan.csv", "winback_targets.csv",
              "offers.parquet", "customers_scored.parquet"):
        assert f in files
    assert all(a.made_by[:2].isdigit() for a in artifacts.ARTIFACTS.values())


def test_no_column_name_carries_a_config_value():
    """Horizons and top-n go into the model JSON: `clv_12m`, `p_purchase_90d`, `hit_rate_at_3` are not names."""
    spelled = re.compile(r"_\d+(d|m|w)$|_at_\d+$")
    # the prediction snapshot's 30- and 90-day figures are fixed horizons (issue 19), not config values
    fixed = {("predictions", c) for c in ("exp_purchases_30d", "exp_purchases_90d", "p_purchase_90d")}
    assert not [(a.file, c) for n, a in artifacts.ARTIFACTS.items() for c in a.columns
                if spelled.search(c) and (n, c) not in fixed]


def test_a_frame_that_breaks_its_declaration_is_refused_with_the_column_named(tmp_path):
    bad = pd.DataFrame({"customer_id": ["C1"], "churn_probability": [1.5], "risk_tier": ["high"],
                        "p_alive_baseline": [0.2], "p_no_purchase_bgnbd": [0.9]})
    with pytest.raises(artifacts.ArtifactSchemaError, match="churn_probability"):
        artifacts.write(tmp_path / "2026-06", "churn", bad)
    assert not (tmp_path / "2026-06" / "churn.parquet").exists()


def test_a_missing_column_is_refused(tmp_path):
    with pytest.raises(artifacts.ArtifactSchemaError, match="risk_tier"):
        artifacts.write(tmp_path, "churn", pd.DataFrame({"customer_id": ["C1"], "churn_probability": [0.5]}))


def test_a_written_artifact_reads_back_equal(tmp_path):
    df = pd.DataFrame({"customer_id": ["C1", "C2"], "churn_probability": [0.1, 0.9], "risk_tier": ["low", "high"],
                       "p_alive_baseline": [0.8, None], "p_no_purchase_bgnbd": [0.3, 0.7]})
    artifacts.write(tmp_path, "churn", df)
    back = artifacts.read(tmp_path, "churn")
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
    assert oct(os.stat(artifacts.path(tmp_path, "churn")).st_mode & 0o777) == "0o644"


def test_csv_artifacts_escape_spreadsheet_formulas(tmp_path):
    df = pd.DataFrame({"customer_id": ["=HYPERLINK(1)"], "email": ["a@b.c"], "segment": ["@x"], "discount": [0.1],
                       "expected_incremental_profit": [1.0], "suggested_categories": ["books"]})
    artifacts.write(tmp_path, "winback_targets", df)
    text = artifacts.path(tmp_path, "winback_targets").read_text()
    assert "'=HYPERLINK(1)" in text and "'@x" in text


# Text a CSV writer must get right: delimiters, quotes, line ends of every kind, formula starts, blanks, non-ASCII
_TEXT = st.one_of(st.none(), st.text(st.sampled_from(list(',"\n\r\t =+-@\'x;é€1.e')), max_size=6),
                  st.text(st.characters(exclude_categories=["Cs"]), max_size=8))
_FLOATS = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.floats(width=16),
                    st.sampled_from([0.0, -0.0, 1.0, 0.1, 1e16, 1e-5, 1e-4, 123456789.125, 5e-324]))


@st.composite
def _frames(draw):
    rows = draw(st.integers(0, 6))
    columns = {}
    for i, kind in enumerate(draw(st.lists(st.sampled_from(["str", "object", "float", "Int64", "int", "bool"]),
                                           min_size=2, max_size=5))):
        if kind in ("str", "object"):
            values = draw(st.lists(_TEXT, min_size=rows, max_size=rows))
            col = pd.Series(values, dtype="string" if kind == "str" else object)
        elif kind == "float":
            col = pd.Series(draw(st.lists(_FLOATS, min_size=rows, max_size=rows)), dtype="float64")
        elif kind == "Int64":
            col = pd.Series(draw(st.lists(st.one_of(st.none(), st.integers(-2**63, 2**63 - 1)), min_size=rows,
                                          max_size=rows)), dtype="Int64")
        else:
            col = pd.Series(draw(st.lists(st.integers(-2**63, 2**63 - 1) if kind == "int" else st.booleans(),
                                          min_size=rows, max_size=rows)), dtype="int64" if kind == "int" else bool)
        columns[draw(st.sampled_from(["id", "a,b", 'say "hi"', "n", "=x", "é"])) + str(i)] = col
    return pd.DataFrame(columns)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(df=_frames())
def test_a_csv_artifact_holds_what_pandas_writes_byte_for_byte(tmp_path_factory, df):
    """write_csv formats lines in DuckDB for speed; what lands in the file is exactly pandas' text (quotes, line
    ends, floats' digits, missing values, booleans, escaped formulas)."""
    target = tmp_path_factory.mktemp("csv") / "frame.csv"
    artifacts.write_csv(target, df)
    assert target.read_bytes() == artifacts.csv_text(df).encode("utf-8")


def test_a_csv_with_dates_one_column_or_mixed_objects_holds_pandas_bytes(tmp_path):
    for df in (pd.DataFrame({"day": pd.to_datetime(["2026-06-30", None]), "n": [1, 2]}),
               pd.DataFrame({"only": ["", "a"]}),
               pd.DataFrame({"mixed": ["a", 1], "n": [1.5, np.nan]})):
        artifacts.write_csv(tmp_path / "f.csv", df)
        assert (tmp_path / "f.csv").read_bytes() == artifacts.csv_text(df).encode("utf-8")


def test_a_missing_artifact_names_the_notebook_that_makes_it(tmp_path):
    with pytest.raises(artifacts.MissingArtifact, match="run 04_clv"):
        artifacts.read(tmp_path, "clv")


def test_a_failed_write_leaves_no_half_file_and_keeps_the_old_one(tmp_path):
    target = tmp_path / "report.html"
    artifacts.write_file(target, "old")

    with pytest.raises(TypeError):
        artifacts.write_file(target, 42)  # not text or bytes
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_previous_month_folder_crosses_the_year():
    assert artifacts.previous_dir("data/processed/shop/2026-01").name == "2025-12"
    with pytest.raises(ValueError, match="month folder"):
        artifacts.month_of("data/processed/shop/latest")


@pytest.mark.demo_month
@pytest.mark.parametrize("name", [n for n, a in artifacts.ARTIFACTS.items() if a.schema is not None])
def test_every_table_of_the_demo_month_passes_its_declaration(name):
    """Run after the notebooks (make test runs nbval first, which writes the demo month)."""
    month = resolve(DEMO_MONTH)
    assert artifacts.exists(month, name), f"{artifacts.ARTIFACTS[name].file} missing in {DEMO_MONTH}: run nbval first"
    df = artifacts.read(month, name)
    artifacts.check(name, df)  # strict: exactly the declared columns (quarantine: the raw row's may follow)
    # the demo month is a shop's first run: no earlier month's predictions to score yet (test_track covers rows)
    assert len(df) > 0 or name == "track_record"


@pytest.mark.demo_month
def test_the_demo_month_model_cards_record_their_horizons():
    card = artifacts.read(resolve(DEMO_MONTH), "clv_model")
    assert card["clv_months"] == 12 and card["purchase_window_days"] == 90


def test_an_empty_csv_artifact_reads_back_with_its_declared_types(tmp_path):
    artifacts.write(tmp_path, "winback_measured", artifacts.empty("winback_measured"))
    back = artifacts.read(tmp_path, "winback_measured")
    assert back.empty and back["discount"].dtype == "float64"
    artifacts.check("winback_measured", back)


def test_the_processed_folder_readme_names_every_declared_artifact():
    """data/processed/README.md tells a new user what each file is: a new artifact must be listed there."""
    readme = (project_root() / "data" / "processed" / "README.md").read_text(encoding="utf-8")
    missing = [a.file for a in artifacts.ARTIFACTS.values() if a.file not in readme]
    assert not missing, f"data/processed/README.md does not list {missing}"


@pytest.mark.parametrize("folder", ["data/raw", "data/processed", "reports"])
def test_each_top_level_data_folder_is_in_the_repository_with_its_readme(folder):
    """The card's top level exists on a fresh clone; only the README is tracked (the rest is git-ignored)."""
    assert (project_root() / folder / "README.md").is_file()


# --- who reads what: the declarations against the code -------------------------------------------------------

STAGE_NOTEBOOKS = {"clean": "01_clean", "kpis": "02_kpis", "segments": "03_segments", "clv": "04_clv", "forecast": "04_clv",
                   "churn": "05_churn", "winback": "06_winback", "offers": "06_winback", "summary": "07_summary",
                   "track": "07_summary"}
READ_CALLS = {"read", "read_if_exists", "table", "table_if_exists", "require", "exists"}


def month_reads(module: str) -> set[str]:
    """The artifacts src/helpers/<module>.py reads from this month's folder: ``artifacts.<read>(processed_dir,
    "name")`` (``table(con, processed_dir, "name")``) calls. A read of another month's folder (last month's
    segments in 03, earlier months in 07) is no dependency inside the month and is left out."""
    tree = ast.parse((project_root() / "src" / "helpers" / f"{module}.py").read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in READ_CALLS
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "artifacts"):
            continue
        folder, name = node.args[1:3] if node.func.attr.startswith("table") else node.args[:2]
        if isinstance(folder, ast.Name) and folder.id == "processed_dir" and isinstance(name, ast.Constant):
            found.add(name.value)
    return found


def notebook_reads() -> dict[str, set[str]]:
    """Notebook -> the artifacts of this month its stage modules read (07 also reads summary.INPUTS in a loop)."""
    out: dict[str, set[str]] = {}
    for module, notebook in STAGE_NOTEBOOKS.items():
        out.setdefault(notebook, set()).update(month_reads(module))
    out["07_summary"] |= set(summary.INPUTS) | set(summary.OPTIONAL_INPUTS)
    return out


def test_every_artifact_a_stage_reads_this_month_lists_that_stages_notebook_as_a_reader():
    missing = {(notebook, name) for notebook, names in notebook_reads().items() for name in names
               if notebook not in artifacts.spec(name).read_by and notebook != artifacts.spec(name).made_by}
    assert missing == set()


def test_every_declared_reader_reads_the_artifact():
    reads = notebook_reads()
    stale = {(name, reader) for name, art in artifacts.ARTIFACTS.items() for reader in art.read_by
             if name not in reads.get(reader, set())}
    assert stale == set()


def test_each_notebook_waits_for_the_makers_of_what_it_reads():
    inputs = artifacts.notebook_inputs()
    assert inputs["01_clean"] == set() and inputs["02_kpis"] == inputs["03_segments"] == {"01_clean"}
    assert inputs["04_clv"] == {"01_clean", "03_segments"}
    assert inputs["07_summary"] == {"01_clean", "02_kpis", "03_segments", "04_clv", "05_churn", "06_winback"}


# --- a notebook started beside the makers of its inputs (helpers.runner) -----------------------------------------

def inputs_env(monkeypatch, month, ended, runner_pid=None):
    said = {"month": str(month.resolve()), "ended": str(ended), "notebook": "04_clv", "waits_for": ["03_segments"],
            "runner_pid": runner_pid or os.getpid()}
    monkeypatch.setenv(artifacts.INPUTS_VARIABLE, __import__("json").dumps(said))


def test_a_read_of_a_running_makers_artifact_waits_until_it_ended_and_counts_the_wait(tmp_path, monkeypatch):
    import threading
    import time

    month, ended = tmp_path / "2026-06", tmp_path / "ended"
    month.mkdir()
    ended.mkdir()
    inputs_env(monkeypatch, month, ended)
    threading.Timer(0.3, lambda: (ended / "03_segments").touch()).start()
    started = time.perf_counter()
    assert not artifacts.exists(month, "segments")  # 03 ended without writing it: the reader says so
    assert time.perf_counter() - started >= 0.3
    assert 0.3 <= float((ended / "04_clv.waited").read_text()) < 5
    started = time.perf_counter()
    artifacts.exists(month, "orders_clean")  # 01 is not one it waits for (ended before it started)
    artifacts.exists(tmp_path / "2026-05", "segments")  # another month's
    assert time.perf_counter() - started < 0.2


def test_a_reader_whose_runner_died_stops_with_a_sentence(tmp_path, monkeypatch):
    import subprocess

    gone = subprocess.Popen(["true"])
    gone.wait()
    month, ended = tmp_path / "2026-06", tmp_path / "ended"
    month.mkdir()
    ended.mkdir()
    inputs_env(monkeypatch, month, ended, runner_pid=gone.pid)
    with pytest.raises(RuntimeError, match="stopped before 03_segments ended; run the month again"):
        artifacts.read_if_exists(month, "segments")
