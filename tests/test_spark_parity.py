"""Spark gives the month DuckDB gives (issue 18): every stage on both engines, artifacts compared.

The stages run as a notebook runs them - ``<stage>.run(processed_dir, as_of, cfg)``, which opens the
engine named in ``cfg.engine`` and writes the stage's artifacts - in one process, so Spark starts once
(a JVM per notebook would be most of the time budget of ``make test-spark``). The comparison, sorted
by key with integer and timestamp widths normalised: counts, ids and text exactly, money (a column
that the DuckDB run stores rounded to the cent) to 0.01, every other number (model outputs) to 1e-4
relative. Then the same month runs again on Spark over its own Parquet folders.

The tests marked ``spark`` need pyspark and Java 17: ``make test-spark`` (the default ``pytest tests``
leaves them out). The test that the comparison catches an altered artifact needs neither, and runs on a
tiny month written by hand (no stage runs in the default suite).
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import artifacts, churn, clean, clv, demo, kpis, segments, summary, winback
from helpers.config import load_config
from helpers.paths import project_root

AS_OF = "2026-06-30"
CUSTOMERS = 300
STAGES = (("01_clean", lambda raw, pdir, cfg: clean.run(pdir, AS_OF, cfg, raw_dir=raw)),
          ("02_kpis", lambda raw, pdir, cfg: kpis.run(pdir, AS_OF, cfg)),
          ("03_segments", lambda raw, pdir, cfg: segments.run(pdir, AS_OF, cfg)),
          ("04_clv", lambda raw, pdir, cfg: clv.run(pdir, AS_OF, cfg)),
          ("05_churn", lambda raw, pdir, cfg: churn.run(pdir, AS_OF, cfg)),
          ("06_winback", lambda raw, pdir, cfg: winback.run(pdir, AS_OF, cfg)),
          ("07_summary", lambda raw, pdir, cfg: summary.run(pdir, AS_OF, cfg)))
# A small shop on 2 cores: Spark's time goes to starting the JVM and compiling many small queries, not to
# data. Two shuffle partitions (one per core), no whole-stage code generation and the JIT's quick tier
# halve it (measured here: the seven stages 463 s -> 282 s on a loaded machine).
SPARK_TEST_CONF = {"spark.sql.shuffle.partitions": 2, "spark.sql.codegen.wholeStage": False,
                   "spark.driver.memory": "1g", "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
                   "spark.ui.enabled": False, "spark.ui.showConsoleProgress": False}
# JSON keys that hold a measurement of the run, not a result (fit time in seconds)
VOLATILE_KEYS = ("seconds", "elapsed", "duration")


# --------------------------------------------------------------------------- the comparison

def _frame(processed_dir: Path, name: str) -> pd.DataFrame:
    df = artifacts.read(processed_dir, name)
    out = pd.DataFrame(index=range(len(df)))
    for c in df.columns:
        s = df[c].reset_index(drop=True)
        if pd.api.types.is_datetime64_any_dtype(s):
            s = s.dt.tz_localize(None) if s.dt.tz is not None else s
            s = s.astype("datetime64[us]")
        elif pd.api.types.is_bool_dtype(s):
            s = s.astype("boolean")
        elif pd.api.types.is_integer_dtype(s):
            s = s.astype("Int64")
        elif pd.api.types.is_float_dtype(s):
            s = s.astype("float64")
        else:
            s = s.astype("string")
        out[c] = s
    keys = [c for c in out.columns if not pd.api.types.is_float_dtype(out[c])]
    return out.sort_values(keys, kind="stable", na_position="last").reset_index(drop=True) if keys else out


def _is_money(s: pd.Series) -> bool:
    x = s.dropna().to_numpy()
    return len(x) > 0 and bool(np.all(np.abs(x - np.round(x, 2)) < 1e-9))


def table_differences(expected: pd.DataFrame, got: pd.DataFrame, name: str) -> list[str]:
    """What differs between two normalised artifact frames, one sentence each (empty: the same)."""
    if list(expected.columns) != list(got.columns):
        return [f"{name}: columns {list(got.columns)} instead of {list(expected.columns)}"]
    if len(expected) != len(got):
        return [f"{name}: {len(got)} rows instead of {len(expected)}"]
    out = []
    for c in expected.columns:
        e, g = expected[c], got[c]
        if pd.api.types.is_float_dtype(e):
            a, b = e.to_numpy(float), g.to_numpy(float)
            if not np.array_equal(np.isnan(a), np.isnan(b)):
                out.append(f"{name}.{c}: missing values differ")
                continue
            a, b = a[~np.isnan(a)], b[~np.isnan(b)]
            # money to the cent (a half-cent tie may round either way), model outputs to 1e-4 relative
            ok = np.abs(a - b) <= 0.01 + 1e-9 if _is_money(e) else np.isclose(b, a, rtol=1e-4, atol=1e-12)
            if not ok.all():
                i = int(np.argmin(ok))
                out.append(f"{name}.{c}: {int((~ok).sum())} values differ (e.g. {b[i]!r} instead of {a[i]!r})")
        else:
            same = (e.isna() & g.isna()) | (e == g).fillna(False)
            if not same.all():
                i = int(np.argmin(same.to_numpy()))
                out.append(f"{name}.{c}: {int((~same).sum())} values differ (e.g. {g.iloc[i]!r} instead of {e.iloc[i]!r})")
    return out


def json_differences(expected, got, where: str) -> list[str]:
    if isinstance(expected, dict) and isinstance(got, dict):
        if set(expected) != set(got):
            return [f"{where}: keys {sorted(set(got) ^ set(expected))} in one run only"]
        return [d for k in expected if not any(v in str(k) for v in VOLATILE_KEYS)
                for d in json_differences(expected[k], got[k], f"{where}.{k}")]
    if isinstance(expected, list) and isinstance(got, list):
        if len(expected) != len(got):
            return [f"{where}: {len(got)} items instead of {len(expected)}"]
        return [d for i, (e, g) in enumerate(zip(expected, got)) for d in json_differences(e, g, f"{where}[{i}]")]
    if isinstance(expected, float) and isinstance(got, (int, float)) and not isinstance(got, bool):
        if math.isnan(expected) and math.isnan(got):
            return []
        return [] if math.isclose(got, expected, rel_tol=1e-4, abs_tol=1e-9) else [f"{where}: {got!r} instead of {expected!r}"]
    return [] if expected == got else [f"{where}: {got!r} instead of {expected!r}"]


def month_differences(expected_dir: Path, got_dir: Path) -> list[str]:
    """Every difference between two runs of a month, artifact by artifact (absent in both: skipped)."""
    out = []
    for name, art in artifacts.ARTIFACTS.items():
        there = artifacts.exists(expected_dir, name), artifacts.exists(got_dir, name)
        if there != (True, True):
            if any(there):
                out.append(f"{art.file}: written by one run only")
            continue
        if art.kind == "json":
            out += json_differences(artifacts.read(expected_dir, name), artifacts.read(got_dir, name), art.file)
        else:
            out += table_differences(_frame(expected_dir, name), _frame(got_dir, name), art.file)
    return out


def run_stages(raw: Path, processed_dir: Path, cfg) -> dict[str, float]:
    times = {}
    for stage, run in STAGES:
        start = time.perf_counter()
        run(raw, processed_dir, cfg)
        times[stage] = round(time.perf_counter() - start, 1)
    return times


# --------------------------------------------------------------------------- the shop and its DuckDB month

@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    return make_shop(tmp_path_factory.mktemp("parity"))


def make_shop(tmp: Path):
    """A 300-customer demo shop, its text spiced with what the engines used to read differently, and its
    month on DuckDB."""
    raw = tmp / "raw" / "parity"
    demo.generate(raw, customers=CUSTOMERS, seed=3)
    orders = pd.read_csv(raw / "orders.csv", dtype=str, keep_default_na=False)
    # text ending in v or f (Ibis's strip() on Spark took those letters), a value with blanks and a doubled
    # quote and a line break inside its quotes
    orders.loc[orders.index[::7], "category"] = orders["category"].iloc[::7].map(lambda c: f" {c}f ")
    orders.loc[orders.index[3], "coupon_code"] = 'SAVE "10"\nNOW'
    orders.loc[orders.index[5], "coupon_code"] = "\tvip\x0b"
    orders.to_csv(raw / "orders.csv", index=False)
    # a row with one field too many and one with too few: quarantined on both engines, counted alike
    first = (raw / "orders.csv").read_text().splitlines()[1]
    with open(raw / "orders.csv", "a") as fh:
        fh.write(f"{first},extra\n{first.split(',')[0]},C_short\n")
    cfg = load_config(project_root() / "config" / "default.yml")
    duck = tmp / "duckdb" / "parity" / "2026-06"
    times = run_stages(raw, duck, cfg)
    return raw, duck, cfg, times


def tiny_month(folder: Path) -> Path:
    """Three artifacts of three customers, written as their declarations say: a table with text and model
    outputs (segments, churn) and one with money (kpis.csv)."""
    ids = ["C1", "C2", "C3"]
    artifacts.write(folder, "segments", pd.DataFrame({
        "customer_id": ids, "recency_days": [5, 40, 200], "frequency": [3, 1, 2], "monetary": [120.5, 30.0, 75.25],
        "avg_order_value": [40.1666667, 30.0, 37.625], "r_score": [5, 3, 1], "f_score": [5, 1, 3], "m_score": [5, 1, 3],
        "rfm_segment": ["Champions", "Hibernating", "At Risk"], "cluster": [0, 1, 0],
        "cluster_label": ["loyal", "new", "loyal"]}))
    artifacts.write(folder, "churn", pd.DataFrame({
        "customer_id": ids, "churn_probability": [0.1234567, 0.8765432, 0.5], "risk_tier": ["low", "high", "medium"],
        "p_alive_baseline": [0.9, 0.2, None], "p_no_purchase_bgnbd": [0.3, 0.95, 0.6]}))
    artifacts.write(folder, "kpis", pd.DataFrame({
        "month": ["2026-05", "2026-06"], "revenue": [1250.4, 980.1], "gross_sales": [1300.0, 1000.0],
        "returned_value": [49.6, 19.9], "returns_rate": [0.038, 0.0199], "orders": [31, 25], "active_customers": [20, 18],
        "new_customers": [5, 3], "returning_customers": [15, 15], "returning_revenue_share": [0.8, 0.85],
        "aov": [40.34, 39.2], "orders_per_customer": [1.55, 1.39], "repeat_rate": [0.41, 0.43],
        "sleeping_customers": [7, 9]}))
    return folder


def test_the_comparison_fails_on_an_altered_artifact(tmp_path):
    """A parity check that cannot fail proves nothing: alter one value of a copy and it must be named (a
    tiny month written here: the comparison, not the engines, is what this checks)."""
    month = tiny_month(tmp_path / "month")
    assert month_differences(month, month) == []
    for name, change in (("segments", lambda df: df.assign(rfm_segment=df["rfm_segment"].where(df.index != 0, "x"))),
                         ("churn", lambda df: df.assign(churn_probability=df["churn_probability"] * (1 - 1e-3))),
                         ("kpis", lambda df: df.assign(revenue=df["revenue"] + 0.02 * (df.index == 0)))):
        copy = tmp_path / name
        copy.mkdir()
        for p in month.iterdir():
            (copy / p.name).write_bytes(p.read_bytes())
        artifacts.write(copy, name, change(artifacts.read(copy, name)))
        found = month_differences(month, copy)
        assert len(found) == 1 and found[0].startswith(artifacts.spec(name).file), found


# --------------------------------------------------------------------------- Spark

@pytest.fixture(scope="module")
def spark_month(shop):
    pytest.importorskip("pyspark", reason="make test-spark installs pyspark (requirements-spark.lock)")
    raw, duck, cfg, duck_times = shop
    spark_cfg = cfg.replace(engine=cfg.engine.replace(
        backend="spark", spark_master="local[2]",
        spark_conf=SPARK_TEST_CONF))
    month = duck.parent.parent.parent / "spark" / "parity" / "2026-06"
    times = run_stages(raw, month, spark_cfg)
    print(f"\nDuckDB: {duck_times}\nSpark: {times}")
    return month, spark_cfg


@pytest.mark.spark
def test_every_stage_on_spark_writes_the_artifacts_duckdb_writes(shop, spark_month):
    duck = shop[1]
    month, _ = spark_month
    assert (month / "orders_clean.parquet").is_dir()  # Spark's own Parquet: a folder of parts
    assert month_differences(duck, month) == []


@pytest.mark.spark
def test_spark_keeps_text_as_written(spark_month):
    month, _ = spark_month
    orders = artifacts.read(month, "orders_clean")
    assert orders["category"].str.endswith("f").sum() > 0 and not orders["category"].str.startswith(" ").any()
    assert {'SAVE "10"\nNOW', "vip"} <= set(orders["coupon_code"].dropna())
    bad = artifacts.read(month, "quarantine").query("reason == 'wrong_field_count'")
    assert bad["detail"].tolist() == ["row has 14 fields, the header has 13", "row has 2 fields, the header has 13"]


@pytest.mark.spark
def test_rerunning_a_month_on_spark_replaces_its_parquet_folders(shop, spark_month):
    raw = shop[0]
    month, spark_cfg = spark_month
    before = artifacts.read(month, "orders_clean")
    clean.run(month, AS_OF, spark_cfg, raw_dir=raw)  # 01 is the stage whose Parquet Spark writes (as folders)
    pd.testing.assert_frame_equal(artifacts.read(month, "orders_clean"), before)
    assert not [p.name for p in month.iterdir() if p.name.startswith(".")]  # no temp folder left behind
    assert month_differences(shop[1], month) == []
