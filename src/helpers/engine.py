"""The Ibis connection: DuckDB in-process by default, Spark (or another Ibis backend) by config.

Everything over order lines is an Ibis expression built on the tables handed out here, so the same
code runs on DuckDB on a laptop and on a Spark cluster. Only small results (one row per customer
or less) leave the engine as pandas frames: ``.to_pandas()``, or :func:`to_pandas` (through Arrow) for a row per
customer.

Where the engines read the same expression differently, the one definition lives here: :func:`trim`
(text without surrounding blanks), :func:`cache` (keep an intermediate table instead of recomputing
it). ``tests/test_spark_parity.py`` runs every stage on both and compares the artifacts.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sys
import tempfile
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa

from helpers.config import EngineConfig

SPARK = ("spark", "pyspark")


def connect(engine: EngineConfig | None = None) -> ibis.BaseBackend:
    """Open the backend named in the config (DuckDB in memory unless told otherwise).

    DuckDB takes ``engine.threads`` and ``engine.memory_limit``, or its share of them when the runner
    runs notebooks side by side: the runner then sets :data:`SHARE_VARIABLE` in each kernel's
    environment to the number of DuckDBs that may work at once (:func:`duckdb_share`).
    Spark: a session on ``engine.spark_master`` with every ``engine.spark_conf`` setting passed to the
    session builder (the first call in a process starts the session; later calls reuse it), or a session on the
    Spark Connect server named by :data:`REMOTE_VARIABLE` (the runner's shared driver: :mod:`helpers.spark_server`)
    or ``engine.spark_remote``, which has the settings it was started with. On a ``local``
    master the Python that scores on the executors (:func:`map_batches`) is this one, which has the project
    installed, unless ``PYSPARK_PYTHON`` names another; a cluster's executors need their own (README).
    """
    engine = engine or EngineConfig()
    backend = engine.backend.lower()
    if backend == "duckdb":
        con = ibis.duckdb.connect()
        threads, memory_limit = duckdb_share(engine, share())
        if threads:
            con.raw_sql(f"SET threads = {int(threads)}")
        if memory_limit:
            con.raw_sql(f"SET memory_limit = '{memory_limit}'")
        con.raw_sql(f"SET temp_directory = '{_sql_text(str(spill_folder(engine)))}'")
        return con
    if backend in SPARK:
        from pyspark.sql import SparkSession

        remote = os.environ.get(REMOTE_VARIABLE) or engine.spark_remote
        if remote:  # a Spark Connect server: the runner's shared driver (helpers.spark_server), or the config's
            # Ibis sends in-memory tables with verifySchema=False, which a Connect session ignores, warning on the page
            warnings.filterwarnings("ignore", message="'verifySchema' is ignored", category=UserWarning)
            session = SparkSession.builder.remote(remote).getOrCreate()
            if os.environ.get(REMOTE_VARIABLE):  # on this machine: no network to reattach a long query over, and
                session.client.disable_reattachable_execute()  # the server logs an ERROR for each early release
            return _caching_by_view(ibis.pyspark.connect(session))
        if engine.spark_master.startswith("local"):
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = SparkSession.builder.master(engine.spark_master).appName("retention")
        for key, value in spark_settings(engine).items():
            builder = builder.config(key, value)
        session = builder.getOrCreate()
        session.sparkContext.setLogLevel(engine.spark_log_level)  # a session started earlier takes it too
        return _caching_by_view(ibis.pyspark.connect(session))
    return getattr(ibis, backend).connect()


def _caching_by_view(con):
    """`con` (Ibis' PySpark backend), caching a table (:func:`cache`, ``Table.cache``) as a temporary view that Spark
    caches by its name, and releasing it (``CachedTable.release``, or when Ibis lets go of it) the same way.

    Ibis caches the DataFrame of the query, then names it as a view. A Spark Connect session analyses the query
    anew for every request: a query with a common table expression read twice gets new ids each time, so Spark
    never finds the cached rows under the view (Ibis then fails its own check that the rows are cached, and the
    rows would be computed again on every use), and Ibis' release analyses the query once more, which fails when a
    view it reads was released before it ("TABLE_OR_VIEW_NOT_FOUND"). A view's plan is analysed once, when it is
    made: cached, looked up and released through it, the rows are found in any session and released in any order
    (only that table: not those that read it)."""
    catalog = con._session.catalog

    def create(name: str, expr: ir.Table) -> ir.Table:
        con._session.sql(con.compile(expr)).createTempView(name)
        catalog.cacheTable(name)
        return con.table(name)

    def drop(name: str) -> None:
        catalog.uncacheTable(name)
        catalog.dropTempView(name)

    con._create_cached_table, con._drop_cached_table = create, drop
    return con


# The Spark Connect server the runner started for the month (helpers.spark_server), set in each kernel's environment
REMOTE_VARIABLE = "RETENTION_SPARK_REMOTE"
# Where Spark's log goes: set by the runner in each kernel's environment to spark.log beside the month's reports
SPARK_LOG_VARIABLE = "RETENTION_SPARK_LOG"
_JAVA_OPTIONS = "spark.driver.extraJavaOptions"


def spark_log_file() -> Path:
    """The file Spark's driver logs to: :data:`SPARK_LOG_VARIABLE` (the runner's month), else ``retention-spark.log``
    in the system's temp folder (a notebook run from JupyterLab)."""
    return Path(os.environ.get(SPARK_LOG_VARIABLE) or Path(tempfile.gettempdir()) / "retention-spark.log")


# Unless spark_conf says otherwise: no progress bars on the console, and results reach pandas as Arrow batches
# (without Arrow, toPandas gathers every row as a Java object on the driver first, then pickles it row by row)
SPARK_DEFAULTS = {"spark.ui.showConsoleProgress": "false", "spark.sql.execution.arrow.pyspark.enabled": "true"}


def spark_settings(engine: EngineConfig) -> dict[str, str]:
    """The session builder's settings: ``engine.spark_conf`` over :data:`SPARK_DEFAULTS`, and the driver's log4j
    configured by :func:`spark_log_config` (added to any extraJavaOptions given)."""
    settings = {**SPARK_DEFAULTS,
                **{k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in engine.spark_conf.items()}}
    config = spark_log_config(spark_log_file(), engine.spark_log_level)
    settings[_JAVA_OPTIONS] = f"{settings.get(_JAVA_OPTIONS, '')} -Dlog4j2.configurationFile={config.as_uri()}".strip()
    return settings


def spark_log_config(log_file: Path, level: str) -> Path:
    """A log4j2 configuration (a file in the system's temp folder) that writes Spark's lines at `level` and worse to
    `log_file` (made on the first line) and only ERROR and worse to the console."""
    text = "\n".join([
        f"rootLogger.level = {level.lower()}",
        "rootLogger.appenderRef.file.ref = file",
        "rootLogger.appenderRef.console.ref = console",
        "appender.file.type = File",
        "appender.file.name = file",
        f"appender.file.fileName = {log_file.resolve()}",
        "appender.file.createOnDemand = true",
        "appender.file.layout.type = PatternLayout",
        "appender.file.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex",
        "appender.console.type = Console",
        "appender.console.name = console",
        "appender.console.target = SYSTEM_ERR",
        "appender.console.layout.type = PatternLayout",
        "appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex",
        "appender.console.filter.threshold.type = ThresholdFilter",
        "appender.console.filter.threshold.level = error",
        "",
    ])
    folder = Path(tempfile.gettempdir()) / "retention-spark"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"log4j2-{hashlib.sha256(text.encode()).hexdigest()[:16]}.properties"
    if not path.exists():  # kernels started at once write the same text: each its own file, then renamed
        tmp = path.with_suffix(f".{uuid.uuid4().hex[:8]}")
        tmp.write_text(text)
        os.replace(tmp, path)
    return path


# How many DuckDBs work at once (the runner's notebooks side by side), read by connect in each kernel.
SHARE_VARIABLE = "RETENTION_DUCKDB_SHARE"
_SIZE_UNITS = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
               "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}


def share() -> int:
    """How many DuckDBs work at once beside this one (:data:`SHARE_VARIABLE`; 1 outside the runner)."""
    return int(os.environ.get(SHARE_VARIABLE) or 1)


def duckdb_share(engine: EngineConfig, share: int = 1) -> tuple[int | None, str | None]:
    """DuckDB's ``threads`` and ``memory_limit`` for one of `share` DuckDBs working at once: 1/share of
    ``engine.threads`` (null: the machine's cores; at least one thread) and of :func:`memory_bytes`.
    ``share`` 1 (one notebook at a time): the settings as configured (None: DuckDB's own default)."""
    if share <= 1:
        return engine.threads, engine.memory_limit
    threads = max(1, (engine.threads or os.cpu_count() or 1) // share)
    total = memory_bytes(engine)
    return threads, (f"{total // share // 10**6}MB" if total else None)


def memory_bytes(engine: EngineConfig) -> int | None:
    """``engine.memory_limit`` in bytes; null: DuckDB's default, 80 % of the machine's memory (None where
    the system does not say how much that is)."""
    if engine.memory_limit:
        number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]i?B)", engine.memory_limit.strip()).groups()
        return int(float(number) * _SIZE_UNITS[unit])
    try:
        return int(0.8 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # Windows has no sysconf
        return None


def spill_folder(engine: EngineConfig) -> Path:
    """Where this connection's DuckDB writes what does not fit in ``engine.memory_limit``: a folder of
    its own inside ``engine.temp_directory`` (default ``retention-duckdb`` in the system's temp folder).

    Its own, because DuckDB numbers its spill files from 0 in every process: two months run at once
    must not share them. DuckDB makes the folder when it first spills and removes it when it closes.
    (DuckDB's own default is ``.tmp`` in the working directory, which for a notebook is notebooks/.)"""
    base = Path(engine.temp_directory).expanduser() if engine.temp_directory else (
        Path(tempfile.gettempdir()) / "retention-duckdb")
    base.mkdir(parents=True, exist_ok=True)
    return base / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _sql_text(text: str) -> str:
    return text.replace("'", "''")


def is_spark(con) -> bool:
    return getattr(con, "name", "") in SPARK


def memtable(data: pd.DataFrame | pa.Table) -> ir.Table:
    """A table the driver sends to the engine (a small pandas frame, or Arrow ids), sent as Arrow: Spark's Arrow
    conversion refuses pandas' Arrow-backed text ("Cannot convert ChunkedArray to Array") and falls back to sending
    the rows one by one through Python workers, a job of its own for every such table. Text columns (categories
    too) become plain Arrow strings in one chunk; DuckDB reads the same values either way."""
    table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
    for i, f in enumerate(table.schema):
        kind = f.type.value_type if pa.types.is_dictionary(f.type) else f.type
        if pa.types.is_large_string(kind) or pa.types.is_string(kind):
            table = table.set_column(i, f.name, table.column(i).cast(pa.string()))
    return ibis.memtable(table.combine_chunks())


def cache(con, expr: ir.Table, name: str | None = None) -> ir.Table:
    """`expr` computed once and kept by the engine, so later uses read it instead of recomputing it.

    DuckDB: a temporary table. Spark: a temporary view cached in memory (``Table.cache``, through
    :func:`_caching_by_view`), so a window without a full order, or a row number, is not recomputed - and perhaps
    different - per use.
    The cached table has the types the engine actually computed; cast where they must agree.
    """
    if getattr(con, "name", "") == "duckdb":
        name = name or f"cached_{uuid.uuid4().hex[:12]}"
        # dropped first, not create_table(overwrite=True): for a temporary table Ibis then writes the
        # rows twice (into a scratch table, then a copy), which for 10M order lines doubled the time and memory
        con.drop_table(name, database="temp", force=True)
        return con.create_table(name, expr, temp=True)
    # Ibis' PySpark backend caches an expression without registering the in-memory tables it reads (a sample of
    # ids as a memtable): registered here first, as running the expression would
    con._register_in_memory_tables(expr)
    return expr.cache()


def to_pandas(expr: ir.Table) -> pd.DataFrame:
    """``expr.to_pandas()``, the same frame, through Arrow on DuckDB: Ibis converts the result column by column
    and then copies the columns into pandas' blocks, where Arrow builds the blocks at once (1.4-2 of the 6-7 s
    a 28-column frame of 1.35M customers took). Dates become datetime64[s], as Ibis makes them; other engines
    keep Ibis's own conversion."""
    if getattr(expr.get_backend(), "name", "") != "duckdb":
        return expr.to_pandas()
    table = expr.to_pyarrow()
    for i, f in enumerate(table.schema):
        if pa.types.is_date(f.type):
            table = table.set_column(i, f.name, table.column(i).cast(pa.timestamp("s")))
    return table.to_pandas()


MAP_BATCH_ROWS = 100_000  # DuckDB's batches for `map_batches`: a batch's pandas frames stay small beside the output
MAPPED_PREFIX = "mapped_"  # the names of `map_batches`' tables


def map_batches(con, expr: ir.Table, fn: Callable[[pd.DataFrame], pd.DataFrame], schema: pa.Schema) -> ir.Table:
    """`fn` applied to `expr`'s rows a batch at a time, where the rows are, kept like :func:`cache`
    (:func:`release` it): per-customer scoring with a model fitted on the driver, without every customer's row
    passing through the driver on Spark.

    `fn` takes a pandas frame of `expr`'s columns and returns one row per row with `schema`'s columns; it must
    not depend on how the rows are cut into batches (each row scored on its own). Spark: ``mapInPandas`` on the
    executors (`fn` is pickled and sent to them, so it may hold a fitted model, not a connection), the output
    cached. DuckDB: the result's Arrow batches of :data:`MAP_BATCH_ROWS` rows in turn, the output a table in memory.
    """
    if is_spark(con):
        from pyspark.sql.pandas.types import from_arrow_schema

        con._run_pre_execute_hooks(expr)  # in-memory tables the expression joins
        rows = con._session.sql(con.compile(expr))
        mapped = rows.mapInPandas(lambda frames: (fn(f) for f in frames), schema=from_arrow_schema(schema))
        name = f"{MAPPED_PREFIX}{uuid.uuid4().hex[:12]}"
        mapped.createOrReplaceTempView(name)
        return cache(con, con.table(name))
    # Each batch's output goes into a table as it comes, so only one batch is ever held in pandas. It is written
    # through a second connection to the same database: a query on the connection that streams the batches would
    # end that stream after its first batch, silently. (A table of the database, not a temporary one: those are
    # the connection's own.)
    name = f"{MAPPED_PREFIX}{uuid.uuid4().hex[:12]}"
    out = con.create_table(name, schema=ibis.schema(schema))
    writer = con.con.cursor()
    try:
        for batch in expr.to_pyarrow_batches(chunk_size=MAP_BATCH_ROWS):
            writer.register("mapped_batch", pa.Table.from_pandas(fn(batch.to_pandas()), schema=schema,
                                                                 preserve_index=False))
            writer.execute(f'INSERT INTO "{name}" SELECT * FROM mapped_batch')
            writer.unregister("mapped_batch")
    except BaseException:
        con.drop_table(name, force=True)  # no half-filled table is left behind
        raise
    finally:
        writer.close()
    return out


def release(con, tables: list[ir.Table]) -> None:
    """Free tables made by :func:`cache` or :func:`map_batches` that nothing reads any more: DuckDB drops its
    temporary tables, Spark unpersists the cached DataFrames."""
    for t in tables:
        if getattr(con, "name", "") == "duckdb":
            name = t.op().name  # cache makes temporary tables, map_batches tables of the in-memory database
            con.drop_table(name, database=None if name.startswith(MAPPED_PREFIX) else "temp", force=True)
        else:
            t.release()


# The characters Ibis's strip() removes on DuckDB. Spoken as a regular expression, because Ibis
# writes strip() as TRIM(' \t\n\r\v\f' FROM s), which Spark reads as the letters v and f
# ("fashion" -> "ashion"). RE2 (DuckDB) and Java (Spark) read this class the same way.
# The escapes are the regex's own (a raw string): Spark's SQL parser would read a literal vertical tab
# or form feed character, which sqlglot writes as \v or \f, as the letter v or f.
_BLANKS = r"[ \t\n\r\x0B\x0C]"
_OUTER_BLANKS = f"^{_BLANKS}+|{_BLANKS}+$"


def trim(s: ir.StringValue) -> ir.StringValue:
    """`s` without leading and trailing blanks (space, tab, line breaks, vertical tab, form feed),
    the same on every engine."""
    return s.re_replace(_OUTER_BLANKS, "")


def cutoff_end(as_of) -> pd.Timestamp:
    """The first instant after the cut-off day: ``order_date < cutoff_end(as_of)`` means "on or before as_of".

    Every stage cuts its data this way, so an order at 23:59 on the as_of day always counts.
    """
    return pd.Timestamp(str(as_of)[:10]) + pd.Timedelta(days=1)


# --------------------------------------------------------------------------- Spark's physical plans

# Plans that do not grow with a cluster: every row compared with every row, or a window whose rows all
# go to one task. (Issue 29: a NOT IN inside a CASE became a BroadcastNestedLoopJoin, quadratic in the shop.)
_QUADRATIC_JOINS = ("BroadcastNestedLoopJoinExec", "CartesianProductExec")
_WINDOWS = ("WindowExec", "WindowGroupLimitExec")


def spark_plan_problems(df) -> list[str]:
    """What in a Spark DataFrame's physical plan cannot spread over a cluster, one line each: a nested-loop
    join or Cartesian product, or a window without PARTITION BY. Reads the plan, runs nothing."""
    out: list[str] = []
    seen: set[int] = set()

    def walk(node) -> None:
        if node is None or node.hashCode() in seen:
            return
        seen.add(node.hashCode())
        kind = node.getClass().getSimpleName()
        if kind in _QUADRATIC_JOINS:
            out.append(f"{kind.removesuffix('Exec')}: {node.simpleString(200)}")
        elif kind in _WINDOWS and node.partitionSpec().isEmpty():
            out.append(f"{kind.removesuffix('Exec')} without partitioning: {node.simpleString(200)}")
        if kind == "AdaptiveSparkPlanExec":
            walk(node.initialPlan())
        for seq in (node.children(), node.subqueries()):
            for i in range(seq.size()):
                walk(seq.apply(i))

    walk(df._jdf.queryExecution().executedPlan())
    return out


@contextlib.contextmanager
def watching_spark_plans(session, found: list[tuple[str, str]]):
    """Within the block, every query sent to the SparkSession `session` (by any Ibis connection on it) has its
    physical plan read by :func:`spark_plan_problems`; each problem is appended to `found` as (problem, SQL)."""
    send = session.sql

    def sql(query, *args, **kwargs):
        df = send(query, *args, **kwargs)
        found.extend((problem, str(query)) for problem in spark_plan_problems(df))
        return df

    session.sql = sql
    try:
        yield found
    finally:
        del session.sql
