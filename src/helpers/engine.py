"""The Ibis connection: DuckDB in-process by default, Spark (or another Ibis backend) by config.

Everything over order lines is an Ibis expression built on the tables handed out here, so the same
code runs on DuckDB on a laptop and on a Spark cluster. Only small results (one row per customer
or less) leave the engine as pandas frames via ``.to_pandas()``.
"""
from __future__ import annotations

import os
from pathlib import Path

import ibis
import pandas as pd

from helpers.config import EngineConfig


def connect(engine: EngineConfig | None = None) -> ibis.BaseBackend:
    """Open the backend named in the config (DuckDB in memory unless told otherwise)."""
    engine = engine or EngineConfig()
    backend = engine.backend.lower()
    if backend == "duckdb":
        con = ibis.duckdb.connect()
        if engine.threads:
            con.raw_sql(f"SET threads = {int(engine.threads)}")
        if engine.memory_limit:
            con.raw_sql(f"SET memory_limit = '{engine.memory_limit}'")
        return con
    if backend in {"spark", "pyspark"}:  # pragma: no cover - needs pyspark, not in the default lock
        from pyspark.sql import SparkSession

        session = SparkSession.builder.master(engine.spark_master).appName("retention").getOrCreate()
        return ibis.pyspark.connect(session)
    return getattr(ibis, backend).connect()  # pragma: no cover - other backends are configured by the shop


def cutoff_end(as_of) -> pd.Timestamp:
    """The first instant after the cut-off day: ``order_date < cutoff_end(as_of)`` means "on or before as_of".

    Every stage cuts its data this way, so an order at 23:59 on the as_of day always counts.
    """
    return pd.Timestamp(str(as_of)[:10]) + pd.Timedelta(days=1)


def _is_duckdb(con) -> bool:
    return getattr(con, "name", "") == "duckdb"


def read_text_table(con, path: str | Path) -> ibis.Table:
    """A CSV or Parquet file as a table whose columns are all strings.

    Cleaning rules parse every value themselves, so a malformed date or amount becomes a tagged
    row instead of a reader error. The file must be UTF-8 (see ``clean.ensure_utf8``).
    """
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        t = con.read_parquet(str(path))
        return t.select(*[t[c].cast("string").name(c) for c in t.columns])
    if _is_duckdb(con):
        return con.read_csv(str(path), all_varchar=True, header=True, auto_detect=True, quote='"', escape='"')
    return con.read_csv(str(path), header=True, inferSchema=False)  # pragma: no cover - Spark


def read_table(con, path: str | Path) -> ibis.Table:
    """A Parquet artifact (e.g. orders_clean.parquet) as a typed table expression."""
    return con.read_parquet(str(path))


def artifact_table(con, processed_dir: str | Path, name: str, made_by: str = "01_clean") -> ibis.Table:
    """A month's Parquet artifact as a table expression, e.g. ``artifact_table(con, pdir, "orders_clean")``.

    Stage modules build their expressions on these; a missing artifact stops with one sentence
    naming the notebook that makes it.
    """
    from helpers import artifacts

    return read_table(con, artifacts.require(processed_dir, name, made_by))


def write_parquet(con, expr: ibis.Table, path: str | Path) -> Path:
    """Write an expression to Parquet atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    con.to_parquet(expr, str(tmp))
    os.replace(tmp, path)
    return path
