"""The engine's one definitions (trim, cache), its settings, and Parquet artifacts written as folders.

What Spark itself does with them is checked by tests/test_spark_parity.py (``make test-spark``)."""
from pathlib import Path

import ibis
import pandas as pd
import pyarrow as pa
import pytest

from helpers import artifacts, engine
from helpers.config import ConfigError, load_config


def test_trim_removes_surrounding_blanks_and_keeps_every_letter():
    con = engine.connect()
    t = ibis.memtable({"s": [" fashion ", "\tv\x0b", "\x0cf\r\n", "of", "", None]})
    got = con.to_pandas(engine.trim(t.s)).tolist()
    assert got[:5] == ["fashion", "v", "f", "of", ""] and pd.isna(got[5])


def test_trim_is_written_as_a_regex_spark_reads_as_blanks():
    """Ibis writes strip() for Spark with \\v and \\f in a string literal, which Spark reads as letters."""
    t = ibis.table({"s": "string"}, name="t")
    sql = ibis.to_sql(engine.trim(t.s).name("x").as_table(), dialect="pyspark")
    assert "TRIM(" not in sql and "\\\\x0B\\\\x0C" in sql


def test_a_frame_through_arrow_is_the_frame_ibis_gives():
    """engine.to_pandas takes the per-customer frames out of DuckDB through Arrow: every kind of column the stages
    read comes out as Ibis's own to_pandas makes it (dates as datetime64, missing values as Ibis writes them)."""
    con = engine.connect()
    t = con.sql("SELECT 1::BIGINT a, NULL::BIGINT b, 1.5 c, true d, NULL::BOOLEAN e, 'x' f, DATE '2024-01-02' g, "
                "TIMESTAMP '2024-01-02 03:04:05' h, 2::INTEGER i UNION ALL "
                "SELECT 2, 3, NULL, false, true, NULL, NULL, NULL, NULL")
    for expr in (t, t.filter(t.a > 5)):  # and with no rows
        pd.testing.assert_frame_equal(engine.to_pandas(expr), expr.to_pandas(), check_exact=True)
    assert str(engine.to_pandas(t)["g"].dtype).startswith("datetime64")


def test_a_cached_table_is_computed_once(tmp_path):
    con = engine.connect()
    t = ibis.memtable({"a": [3, 1, 2]})
    kept = engine.cache(con, t.mutate(b=t.a * 2))
    assert sorted(con.to_pandas(kept.b).tolist()) == [2, 4, 6]
    assert kept.op().__class__.__name__ == "DatabaseTable"  # a table in the engine, not the expression again


def test_caching_again_under_a_name_replaces_the_rows():
    """clean.run caches tagged_orders by name: a second month in the same kernel replaces the first's."""
    con = engine.connect()
    engine.cache(con, ibis.memtable({"a": [1, 2, 3]}), "tagged_test")
    again = engine.cache(con, ibis.memtable({"a": [7]}), "tagged_test")
    assert con.to_pandas(again)["a"].tolist() == [7]
    assert con.to_pandas(con.table("tagged_test", database="temp"))["a"].tolist() == [7]


def test_released_tables_no_longer_hold_memory_in_the_engine():
    con = engine.connect()
    t = ibis.memtable({"a": [3, 1, 2]})
    kept = engine.cache(con, t.mutate(b=t.a * 2), "kept_rows")
    assert "kept_rows" in con.list_tables()
    engine.release(con, [kept])
    assert "kept_rows" not in con.list_tables()


def test_duckdb_spills_to_the_configured_folder_and_a_query_larger_than_the_cap_still_runs(tmp_path):
    from helpers.config import EngineConfig

    spill = tmp_path / "it's here"  # a quote in the path is pasted safely
    cfg = EngineConfig(memory_limit="40MB", threads=1, temp_directory=str(spill))
    con, other = engine.connect(cfg), engine.connect(cfg)
    mine = Path(con.raw_sql("SELECT current_setting('temp_directory')").fetchone()[0])
    theirs = Path(other.raw_sql("SELECT current_setting('temp_directory')").fetchone()[0])
    assert mine.parent == spill == theirs.parent and mine != theirs  # spill files are never shared
    # about 10x the cap: sorted with spilling instead of failing with an out-of-memory error
    rows = con.raw_sql("SELECT count(*), min(k) FROM (SELECT hash(i) AS k, i::VARCHAR || 'x' AS v "
                       "FROM range(3000000) t(i) ORDER BY k)").fetchone()
    assert rows[0] == 3_000_000


def test_by_default_duckdb_is_capped_and_spills_outside_the_working_directory():
    con = engine.connect()
    folder = con.raw_sql("SELECT current_setting('temp_directory')").fetchone()[0]
    limit = con.raw_sql("SELECT current_setting('memory_limit')").fetchone()[0]
    assert Path(folder).parent.name == "retention-duckdb" and not Path(folder).is_relative_to(Path.cwd())
    assert limit.endswith("GiB") and 2.5 < float(limit.split()[0]) < 3.0  # 3GB = 2.7 GiB


def test_spark_settings_come_from_the_config(tmp_path):
    p = tmp_path / "c.yml"
    p.write_text("engine: {backend: spark, spark_conf: {spark.sql.shuffle.partitions: 8, spark.driver.memory: 4g}}\n")
    assert load_config(p).engine.spark_conf == {"spark.sql.shuffle.partitions": 8, "spark.driver.memory": "4g"}
    p.write_text("engine: {spark_conf: {shuffle.partitions: 8}}\n")
    with pytest.raises(ConfigError, match="engine.spark_conf must be a map of Spark settings"):
        load_config(p)


def test_a_spark_session_logs_to_the_month_at_the_configured_level_with_no_progress_bars(tmp_path, monkeypatch):
    """What the builder gets (no Spark needed): the month's spark.log at engine.spark_log_level, only errors on the
    console, no progress bars unless spark_conf asks for them, and the shop's own driver options kept."""
    log = tmp_path / "reports" / "spark.log"
    monkeypatch.setenv(engine.SPARK_LOG_VARIABLE, str(log))
    p = tmp_path / "c.yml"
    p.write_text("engine: {backend: spark, spark_log_level: INFO, "
                 "spark_conf: {spark.driver.extraJavaOptions: -XX:+UseG1GC}}\n")
    settings = engine.spark_settings(load_config(p).engine)
    assert settings["spark.ui.showConsoleProgress"] == "false"
    options = settings["spark.driver.extraJavaOptions"]
    assert options.startswith("-XX:+UseG1GC -Dlog4j2.configurationFile=file:")
    log4j = Path(options.split("configurationFile=file:")[1]).read_text()
    assert "rootLogger.level = info" in log4j and f"fileName = {log.resolve()}" in log4j
    assert "appender.console.filter.threshold.level = error" in log4j
    p.write_text("engine: {spark_conf: {spark.ui.showConsoleProgress: true}}\n")
    assert engine.spark_settings(load_config(p).engine)["spark.ui.showConsoleProgress"] == "true"
    p.write_text("engine: {spark_log_level: LOUD}\n")
    with pytest.raises(ConfigError, match="spark_log_level"):
        load_config(p)


def _write_folder(df: pd.DataFrame):
    """A writer as Spark's: the temp name becomes a folder of Parquet parts."""
    def write(tmp):
        Path(tmp).unlink()
        Path(tmp).mkdir()
        df.iloc[: len(df) // 2].to_parquet(Path(tmp) / "part-00000.parquet", index=False)
        df.iloc[len(df) // 2:].to_parquet(Path(tmp) / "part-00001.parquet", index=False)
        (Path(tmp) / "_SUCCESS").write_text("")
    return write


@pytest.mark.parametrize("before", ["none", "file", "folder"])
def test_a_parquet_folder_replaces_what_was_there_and_reads_as_one_table(tmp_path, before):
    p = tmp_path / "orders_clean.parquet"
    old = pd.DataFrame({"x": [9]})
    if before == "file":
        old.to_parquet(p)
    elif before == "folder":
        artifacts.atomic(p, _write_folder(pd.concat([old, old])))
    new = pd.DataFrame({"x": [1, 2, 3, 4]})
    artifacts.atomic(p, _write_folder(new))
    assert p.is_dir() and [q.name for q in tmp_path.iterdir()] == ["orders_clean.parquet"]  # nothing left aside
    pd.testing.assert_frame_equal(pd.read_parquet(p), new)
    con = engine.connect()
    assert sorted(con.to_pandas(artifacts.table(con, tmp_path, "orders_clean").x)) == [1, 2, 3, 4]
    artifacts.atomic(p, lambda tmp: old.to_parquet(tmp))  # and a file (DuckDB) replaces the folder
    pd.testing.assert_frame_equal(pd.read_parquet(p), old)


def test_a_failed_folder_write_leaves_the_old_artifact(tmp_path):
    p = tmp_path / "orders_clean.parquet"
    pd.DataFrame({"x": [9]}).to_parquet(p)

    def broken(tmp):
        _write_folder(pd.DataFrame({"x": [1, 2]}))(tmp)
        raise RuntimeError("executor lost")

    with pytest.raises(RuntimeError):
        artifacts.atomic(p, broken)
    assert pd.read_parquet(p)["x"].tolist() == [9] and len(list(tmp_path.iterdir())) == 1


def test_map_batches_gives_the_function_of_the_whole_table_however_the_rows_are_cut(monkeypatch):
    """05 scores its customers a batch at a time (on Spark, on the executors): the result is fn of every row,
    the same whether the rows come in one batch or in many, and it is kept until released."""
    con = engine.connect()
    # a table the engine holds, as the stages' are: a second query on the connection streaming it would end the
    # stream after its first batch (250 rows scored as 7 before the writes went through their own connection)
    t = engine.cache(con, ibis.memtable({"id": [f"c{i:03d}" for i in range(250)], "x": [float(i % 7) for i in range(250)]}))
    schema = pa.schema([("id", pa.string()), ("y", pa.float64())])

    def fn(rows: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"id": rows["id"], "y": rows["x"] ** 2 + 1})

    whole = fn(t.to_pandas()).sort_values("id", ignore_index=True)
    for rows in (10_000, 7):
        monkeypatch.setattr(engine, "MAP_BATCH_ROWS", rows)
        mapped = engine.map_batches(con, t, fn, schema)
        got = engine.to_pandas(mapped.order_by("id"))
        pd.testing.assert_frame_equal(got, whole, check_dtype=False)
        assert con.to_pandas(mapped.count()) == 250
        engine.release(con, [mapped])
    empty = engine.map_batches(con, t.filter(t.x > 100), fn, schema)
    assert list(engine.to_pandas(empty).columns) == ["id", "y"] and engine.to_pandas(empty).empty


def test_map_batches_raises_the_functions_own_error_and_leaves_no_table(monkeypatch):
    """A model that fails on a batch (a contract check of its scores) stops the stage with its own message, not
    an Arrow stream error, and no half-filled table is left in the engine."""
    con = engine.connect()
    t = engine.cache(con, ibis.memtable({"id": [f"c{i:03d}" for i in range(50)], "x": [float(i) for i in range(50)]}))
    schema = pa.schema([("id", pa.string()), ("y", pa.float64())])
    monkeypatch.setattr(engine, "MAP_BATCH_ROWS", 10)

    def fn(rows: pd.DataFrame) -> pd.DataFrame:
        if rows["x"].max() >= 30:
            raise ValueError("churn.parquet: risk_tier 'severe' is not one of low, medium, high")
        return pd.DataFrame({"id": rows["id"], "y": rows["x"]})

    with pytest.raises(ValueError, match="risk_tier 'severe'"):
        engine.map_batches(con, t, fn, schema)
    assert not [n for n in con.list_tables() if n.startswith(engine.MAPPED_PREFIX)]
