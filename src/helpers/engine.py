"""The Ibis connection: DuckDB in-process by default, Spark (or another Ibis backend) by config.

Everything over order lines is an Ibis expression built on the tables handed out here, so the same
code runs on DuckDB on a laptop and on a Spark cluster. Only small results (one row per customer
or less) leave the engine as pandas frames via ``.to_pandas()``.
"""
from __future__ import annotations

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
