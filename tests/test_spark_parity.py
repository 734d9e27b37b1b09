"""Spark gives the month DuckDB gives (issue 18), with plans that grow with the shop (issue 29): every stage on
both engines, artifacts compared, and every query Spark plans read.

The stages run as a notebook runs them - ``<stage>.run(processed_dir, as_of, cfg)``, which opens the
engine named in ``cfg.engine`` and writes the stage's artifacts - in one process, so Spark starts once
(a JVM per notebook would be most of the time budget of ``make test-spark``). The comparison is
tests/parity.py's (counts, ids and text exactly, money to the cent, model outputs to 1e-4 relative).
While Spark runs, every query's physical plan is read (``engine.watching_spark_plans``): a nested-loop
join, a Cartesian product or a window without PARTITION BY fails the test. Then the same month runs
again on Spark over its own Parquet folders.

The tests marked ``spark`` need pyspark and Java 17: ``make test-spark`` (the default ``pytest tests``
leaves them out). The test that the comparison catches an altered artifact needs neither, and runs on a
tiny month written by hand (no stage runs in the default suite).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import exports
import ibis
import nbformat
import pandas as pd
import pytest

from helpers import artifacts, clean, demo, engine, runner, spark_server
from helpers.config import EngineConfig, config_text_with, load_config
from helpers.paths import project_root
from parity import month_differences, run_stages

AS_OF = "2026-06-30"
CUSTOMERS = 300
# A small shop on 2 cores: Spark's time goes to starting the JVM and compiling many small queries, not to
# data. Two shuffle partitions (one per core), no whole-stage code generation and the JIT's quick tier
# halve it (measured here: the seven stages 463 s -> 282 s on a loaded machine).
SPARK_TEST_CONF = {"spark.sql.shuffle.partitions": 2, "spark.sql.codegen.wholeStage": False,
                   "spark.driver.memory": "1g", "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:ReservedCodeCacheSize=256m",
                   "spark.ui.enabled": False, "spark.ui.showConsoleProgress": False}

# --------------------------------------------------------------------------- the shop and its DuckDB month

# The churn classifier fits on a sample of its window (234 customers at the train cut-off), drawn as a large shop's
# is: the engine picks the drawn customers by id. And the offers' holdout check scores a sample of its customers,
# as a large shop's does: the engine keeps the sample's history (a table of ids sent from the driver).
SHOP_SETTINGS = {"churn": {"max_train_rows": 150}, "offers": {"evaluation_customers": 100}}

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
    cfg = cfg.replace(**{section: getattr(cfg, section).replace(**values) for section, values in SHOP_SETTINGS.items()})
    duck = tmp / "duckdb" / "parity" / "2026-06"
    times = run_stages(raw, duck, cfg, AS_OF)
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
    os.environ[engine.SPARK_LOG_VARIABLE] = str(month.parent / "spark.log")  # as the runner sets it per kernel
    session = engine.connect(spark_cfg.engine)._session
    plans: list[tuple[str, str]] = []
    with engine.watching_spark_plans(session, plans):
        times = run_stages(raw, month, spark_cfg, AS_OF)
    print(f"\nDuckDB: {duck_times}\nSpark: {times}")
    return month, spark_cfg, plans


@pytest.mark.spark
def test_no_stage_plans_a_query_that_cannot_spread_over_a_cluster(spark_month):
    """Every query of every stage, read in Spark's physical plan: no nested-loop join or Cartesian product (cost
    grows with the square of the shop), no window without PARTITION BY (all rows in one task)."""
    plans = spark_month[2]
    assert not plans, "\n".join(f"{problem}\n    in: {sql[:400]}" for problem, sql in plans)


@pytest.mark.spark
def test_the_plan_check_names_a_nested_loop_join_and_a_window_without_partitioning(spark_month):
    """The check above can fail: NOT IN inside a CASE (how campaign rows were once tagged) and a row number over
    the whole table are both named."""
    con = engine.connect(spark_month[1].engine)
    t = ibis.memtable({"id": ["a", "b", "c"], "pos": [3, 1, 2]})
    known = ibis.memtable({"id": ["a"]})
    tagged = t.mutate(unknown=ibis.cases((~t.id.isin(known.id), "unknown"), else_=None),
                      n=ibis.row_number().over(order_by=t.pos))
    found: list[tuple[str, str]] = []
    with engine.watching_spark_plans(con._session, found):
        con.to_pandas(tagged)
    assert sorted(p.split(":")[0] for p, _ in found) == ["BroadcastNestedLoopJoin", "Window without partitioning"], found


@pytest.mark.spark
def test_spark_writes_its_log_to_the_file_and_only_errors_to_the_console(tmp_path):
    """A Spark session started as a kernel starts it (the runner names the month's spark.log): Spark's warnings
    go to that file, none reach the console, and no progress bar does."""
    pytest.importorskip("pyspark", reason="make test-spark installs pyspark (requirements-spark.lock)")
    log = tmp_path / "reports" / "spark.log"
    log.parent.mkdir(parents=True)
    script = ("from helpers import engine; from helpers.config import EngineConfig\n"
              "con = engine.connect(EngineConfig(backend='spark', spark_conf={'spark.ui.enabled': False}))\n"
              "con.raw_sql('SELECT max(n) FROM (SELECT row_number() OVER (ORDER BY id) AS n FROM range(1000))').collect()\n")
    env = {**os.environ, engine.SPARK_LOG_VARIABLE: str(log), "PYSPARK_PYTHON": sys.executable}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "No Partition Defined for Window operation" in log.read_text()
    console = done.stdout + done.stderr
    assert " WARN " not in console and "log4j" not in console and "[Stage " not in console, console


@pytest.mark.spark
def test_a_month_run_on_spark_shares_one_driver_and_writes_what_duckdb_writes(shop, tmp_path, capfd):
    """`retention run` on Spark: one Spark driver for the month (a Spark Connect server, helpers.spark_server), the
    notebooks side by side, each kernel a session of it. The artifacts are DuckDB's under the parity rules (a
    Connect session analyses every request anew: what the stages cache is found and released all the same), no
    notebook leaves cached tables in the driver, and none of Spark's log lines or warnings reach the console or the
    pages."""
    pytest.importorskip("pyspark", reason="make test-spark installs pyspark (requirements-spark.lock)")
    raw, duck, cfg, _ = shop
    config = tmp_path / "spark.yml"
    config.write_text(config_text_with(project_root() / "config" / "default.yml", {
        **SHOP_SETTINGS, "engine": {"backend": "spark", "spark_conf": SPARK_TEST_CONF}}, "the parity shop on Spark"))
    lines: list[str] = []
    runner.run_month(AS_OF, raw, config, root=project_root(), reports_dir=tmp_path / "reports",
                     processed_base=tmp_path / "processed", log=lines.append)
    assert "each a session of one Spark driver" in lines[0], lines
    differences = month_differences(duck, tmp_path / "processed" / raw.name / "2026-06")
    assert not differences, "\n".join(differences)
    console = capfd.readouterr()
    assert " ERROR " not in console.err and " WARN " not in console.err, console.err
    pages = tmp_path / "reports" / raw.name / "2026-06"
    said = [o["text"] for p in sorted(pages.glob("*.ipynb")) for cell in nbformat.read(p, as_version=4).cells
            for o in cell.get("outputs", []) if o.get("output_type") == "stream" and o.get("name") == "stderr"]
    assert not said, said  # a warning of Spark's on a page
    log = pages / "spark.log"  # made on Spark's first line at WARN or worse
    assert "were left" not in (log.read_text() if log.exists() else "")


@pytest.mark.spark
def test_a_kernel_that_ends_leaves_nothing_cached_in_the_shared_driver(tmp_path):
    """The runner's Spark driver serves the whole month: what a notebook's kernel cached there is released when the
    kernel ends (Ibis lets go of its cached tables at exit), else the driver warns in spark.log. A process that
    ends without its exit handlers shows the warning is written."""
    pytest.importorskip("pyspark", reason="make test-spark installs pyspark (requirements-spark.lock)")
    script = ("import os, sys\nfrom helpers import engine\nfrom helpers.config import EngineConfig\n"
              "con = engine.connect(EngineConfig(backend='spark'))\n"
              "t = engine.cache(con, con.sql('SELECT id FROM range(1000)'))\nassert t.count().execute() == 1000\n"
              "os._exit(0) if sys.argv[1] == 'killed' else None\n")
    for ending in ("ended", "killed"):
        log = tmp_path / ending / "spark.log"
        with spark_server.shared_driver(EngineConfig(backend="spark", spark_conf=SPARK_TEST_CONF), log) as url:
            done = subprocess.run([sys.executable, "-c", script, ending], capture_output=True, text=True, timeout=300,
                                  env={**os.environ, engine.REMOTE_VARIABLE: url})
            assert done.returncode == 0, done.stderr
        left = "cached table(s) were left" in (log.read_text() if log.exists() else "")
        assert left == (ending == "killed"), ending


@pytest.mark.spark
def test_a_shared_driver_that_cannot_start_says_so_and_what_to_do():
    pytest.importorskip("pyspark", reason="make test-spark installs pyspark (requirements-spark.lock)")
    with pytest.raises(spark_server.SparkDriverFailed, match=r"did not start: it ended with code \d+; .* "
                                                               r"engine.spark_shared_driver: false"):
        with spark_server.shared_driver(EngineConfig(backend="spark", spark_master="nowhere://at-all")):
            pass


@pytest.mark.spark
def test_every_stage_on_spark_writes_the_artifacts_duckdb_writes(shop, spark_month):
    duck = shop[1]
    month = spark_month[0]
    assert (month / "orders_clean.parquet").is_dir()  # Spark's own Parquet: a folder of parts
    assert month_differences(duck, month) == []


@pytest.mark.spark
def test_spark_keeps_text_as_written(spark_month):
    month = spark_month[0]
    orders = artifacts.read(month, "orders_clean")
    assert orders["category"].str.endswith("f").sum() > 0 and not orders["category"].str.startswith(" ").any()
    assert {'SAVE "10"\nNOW', "vip"} <= set(orders["coupon_code"].dropna())
    bad = artifacts.read(month, "quarantine").query("reason == 'wrong_field_count'")
    assert bad["detail"].tolist() == ["row has 14 fields, the header has 13", "row has 2 fields, the header has 13"]


@pytest.mark.spark
def test_rerunning_a_month_on_spark_replaces_its_parquet_folders(shop, spark_month):
    raw = shop[0]
    month, spark_cfg, _ = spark_month
    before = artifacts.read(month, "orders_clean")
    clean.run(month, AS_OF, spark_cfg, raw_dir=raw)  # 01 is the stage whose Parquet Spark writes (as folders)
    pd.testing.assert_frame_equal(artifacts.read(month, "orders_clean"), before)
    assert not [p.name for p in month.iterdir() if p.name.startswith(".")]  # no temp folder left behind
    assert month_differences(shop[1], month) == []


@pytest.mark.spark
def test_a_raw_parquet_export_read_in_many_partitions_keeps_its_row_order(spark_month, tmp_path):
    """Row numbers (quarantine.csv's "row 12") follow the file: on Spark a Parquet export is read in several
    partitions, and the positions counted from their offsets are 0, 1, 2, ... in the file's order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 60_000
    pq.write_table(pa.table({"order_id": [f"O{i}" for i in range(n)]}), tmp_path / "orders.parquet",
                   row_group_size=5_000)
    con = engine.connect(spark_month[1].engine)
    con._session.conf.set("spark.sql.files.maxPartitionBytes", "20000")
    try:
        assert con._session.read.parquet(str(tmp_path / "orders.parquet")).rdd.getNumPartitions() > 3
        read = artifacts.raw_table(con, tmp_path / "orders.parquet").to_pandas().sort_values(artifacts.FILE_POS)
    finally:
        con._session.conf.unset("spark.sql.files.maxPartitionBytes")
    assert read[artifacts.FILE_POS].tolist() == list(range(n))
    assert read["order_id"].tolist() == [f"O{i}" for i in range(n)]


@pytest.mark.spark
@pytest.mark.parametrize("preset, write", [("shopify", exports.shopify_export),
                                           ("woocommerce", exports.woocommerce_orders_export),
                                           ("woocommerce", exports.woocommerce_items_export)],
                         ids=["shopify", "woocommerce_orders", "woocommerce_items"])
def test_a_platform_export_cleans_on_spark_as_on_duckdb_with_plans_that_grow(spark_month, tmp_path, preset, write):
    """A shop platform's export as it comes (tests/exports.py) takes paths the demo shop does not (an order's
    lines spread over rows, customers known by e-mail): notebook 01 on both engines, artifacts compared, and
    every query's plan read."""
    raw = tmp_path / "raw" / "shop"
    write(raw)
    cfg = spark_month[1].replace(columns=spark_month[1].columns.replace(preset=preset))
    duck_cfg = cfg.replace(engine=cfg.engine.replace(backend="duckdb"))
    clean.run(tmp_path / "duckdb" / "shop" / "2025-06", exports.AS_OF, duck_cfg, raw_dir=raw)
    (tmp_path / "spark" / "shop").mkdir(parents=True)  # one shop: the same key hashes its e-mails into ids
    shutil.copy(tmp_path / "duckdb" / "shop" / artifacts.IDENTITY_KEY, tmp_path / "spark" / "shop")
    plans: list[tuple[str, str]] = []
    with engine.watching_spark_plans(engine.connect(cfg.engine)._session, plans):
        clean.run(tmp_path / "spark" / "shop" / "2025-06", exports.AS_OF, cfg, raw_dir=raw)
    assert not plans, "\n".join(f"{problem}\n    in: {sql[:400]}" for problem, sql in plans)
    assert month_differences(tmp_path / "duckdb" / "shop" / "2025-06", tmp_path / "spark" / "shop" / "2025-06") == []
