"""Benchmark the month on Spark beside DuckDB: each stage's seconds on both engines in the same run, the plans.

    .venv/bin/python scripts/spark_benchmark.py                                    # the demo shop, local[2]
    .venv/bin/python scripts/spark_benchmark.py --customers 200000 --keep /tmp/spark200k
    .venv/bin/python scripts/spark_benchmark.py --raw /tmp/spark200k/raw/bench --keep /tmp/s --skip-duckdb

Needs pyspark and Java 17 (``make spark-setup``). The shop is ``--raw`` (default: the demo shop, data/raw/demo)
or a demo shop of ``--customers`` generated with seed 42 into ``KEEP/raw/bench`` (reused when there). Every stage
runs in this process as its notebook runs it (``<stage>.run``, tests/parity.py): on Spark (``--master``, default
local[2], with the ``--conf`` settings), then on DuckDB with the config's engine settings, each writing its own
month under ``KEEP/processed`` (Spark first, so that the driver's peak memory is its own).

Printed: per stage the seconds on each engine and their ratio; the Spark session's start (not in the stages'
sum); the queries whose physical plan cannot spread over a cluster (``engine.watching_spark_plans``: nested-loop
joins, Cartesian products, windows without PARTITION BY); the artifacts that differ between the engines under
the parity rules; the peak resident memory of the Spark driver, its Python side (the pandas frames collected
from Spark) and its JVM, polled every 0.1 s while Spark runs; the load average. ``--runner`` then runs the month
as ``retention run`` does on each engine (a kernel per notebook, on Spark each a session of the one driver the
runner starts; the HTML pages) and prints both walls, their ratio and the artifacts of the two months that differ;
``--runner-only`` does only that. The same figures go to ``KEEP/spark_benchmark.json``.

Targets (issue 29, 2 cores, local[2]): the demo month on Spark at most 6 times the DuckDB month, every artifact
equal; a 200,000-customer shop: each Spark stage at most 12 times its demo-month time. Not part of CI.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]  # tests/parity.py: the stages and the parity rules

from helpers import demo, engine, runner  # noqa: E402
from helpers.config import load_config  # noqa: E402
from parity import month_differences, run_stages  # noqa: E402

# local[2] on a 2-core machine: a partition per core and then some, the UI off (nobody looks at it here)
DEFAULT_CONF = {"spark.driver.memory": "4g", "spark.sql.shuffle.partitions": "4", "spark.ui.enabled": "false"}


class Peaks:
    """The largest resident memory of this process and of its JVM (Spark's driver), polled every 0.1 s."""

    def __init__(self) -> None:
        self.python = self.jvm = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(0.1):
            try:
                self.python = max(self.python, me.memory_info().rss)
                jvm = sum(c.memory_info().rss for c in me.children(recursive=True) if "java" in c.name())
                self.jvm = max(self.jvm, jvm)
            except psutil.Error:
                pass

    def __enter__(self) -> "Peaks":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def shop_folder(args) -> Path:
    if args.customers is None:
        return Path(args.raw)
    raw = Path(args.keep) / "raw" / "bench"
    if not (raw / "orders.csv").exists():
        started = time.perf_counter()
        demo.generate(raw, customers=args.customers, seed=42)
        print(f"generated {args.customers:,} customers in {time.perf_counter() - started:.0f} s: {raw}", flush=True)
    return raw


def run_spark(raw: Path, month: Path, cfg, as_of: str) -> dict:
    """The month on Spark: the session's start, each stage's seconds, the plans' problems and the peaks."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault(engine.SPARK_LOG_VARIABLE, str(month.parent / "spark.log"))
    with Peaks() as peaks:
        started = time.perf_counter()
        session = engine.connect(cfg.engine)._session
        start_s = round(time.perf_counter() - started, 1)
        plans: list[tuple[str, str]] = []
        with engine.watching_spark_plans(session, plans):
            times = run_stages(raw, month, cfg, as_of)
    return {"session_start_s": start_s, "stages_s": times, "plan_problems": [p for p, _ in plans],
            "peak_rss_mb": {"driver_python": round(peaks.python / 2**20), "driver_jvm": round(peaks.jvm / 2**20)}}


def run_months(raw: Path, keep: Path, as_of: str, config: str, spark_engine: dict) -> dict:
    """The month through the runner as ``retention run`` runs it (a kernel per notebook, each a session of the
    runner's Spark driver unless the config says otherwise; HTML pages), on DuckDB and then on Spark: wall seconds,
    each notebook's, and the artifacts that differ between the two months under the parity rules."""
    out = {}
    for name, overrides in (("duckdb", {}), ("spark", spark_engine)):
        settings = yaml.safe_load(Path(config).read_text())
        settings["engine"] = {**settings.get("engine", {}), **overrides}
        path = keep / f"config-{name}.yml"
        path.write_text(yaml.safe_dump(settings))
        lines: list[str] = []
        started = time.perf_counter()
        runner.run_month(as_of, raw, path, root=ROOT, reports_dir=keep / "runner" / name / "reports",
                         processed_base=keep / "runner" / name / "processed", log=lines.append)
        out[name] = {"wall_s": round(time.perf_counter() - started, 1), "log": lines}
        print(f"{name} through the runner: {out[name]['wall_s']} s\n  " + "\n  ".join(lines), flush=True)
    out["ratio"] = round(out["spark"]["wall_s"] / out["duckdb"]["wall_s"], 2)
    out["differences"] = month_differences(*(keep / "runner" / e / "processed" / raw.name / as_of[:7]
                                             for e in ("duckdb", "spark")))
    print(f"artifacts of the runner's months that differ: {len(out['differences'])}"
          + "".join(f"\n  {d}" for d in out["differences"]), flush=True)
    return out


def table(duck: dict[str, float] | None, spark: dict[str, float]) -> list[str]:
    rows = ["| stage | DuckDB s | Spark s | Spark / DuckDB |", "|---|---:|---:|---:|"]
    for stage, s in spark.items():
        d = duck.get(stage) if duck else None
        rows.append(f"| {stage} | {d if d is not None else ''} | {s} | {f'{s / d:.1f}x' if d else ''} |")
    d_total, s_total = (round(sum(duck.values()), 1) if duck else None), round(sum(spark.values()), 1)
    rows.append(f"| **month** | {d_total or ''} | {s_total} | {f'{s_total / d_total:.1f}x' if d_total else ''} |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--raw", default=str(ROOT / "data" / "raw" / "demo"), help="the shop's raw folder (only read)")
    ap.add_argument("--customers", type=int, help="generate a demo shop of this many customers instead (seed 42)")
    ap.add_argument("--keep", default=None, help="folder for the months, the generated shop and the JSON")
    ap.add_argument("--as-of", default="2026-06-30")
    ap.add_argument("--config", default=str(ROOT / "config" / "default.yml"))
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="a Spark setting (repeatable)")
    ap.add_argument("--skip-duckdb", action="store_true", help="Spark only (no ratio, no comparison)")
    ap.add_argument("--runner", action="store_true",
                    help="then the month through the runner on both engines (retention run: kernels, pages)")
    ap.add_argument("--runner-only", action="store_true", help="only the month through the runner on both engines")
    args = ap.parse_args()
    args.keep = args.keep or tempfile.mkdtemp(prefix="spark-bench-")
    Path(args.keep).mkdir(parents=True, exist_ok=True)
    raw, month = shop_folder(args), args.as_of[:7]
    cfg = load_config(args.config)
    conf = {**DEFAULT_CONF, **dict(c.split("=", 1) for c in args.conf)}
    spark_cfg = cfg.replace(engine=cfg.engine.replace(backend="spark", spark_master=args.master, spark_conf=conf))
    print(f"shop {raw}, month {month}, Spark {args.master} {conf}; load average {os.getloadavg()}", flush=True)

    result = {"shop": str(raw), "master": args.master, "conf": conf}
    if not args.runner_only:
        result.update(in_process(raw, Path(args.keep), cfg, spark_cfg, args))
    if args.runner or args.runner_only:
        result["runner"] = run_months(raw, Path(args.keep), args.as_of, args.config,
                                      {"backend": "spark", "spark_master": args.master, "spark_conf": conf})
        print(f"the month through the runner: Spark / DuckDB {result['runner']['ratio']}x")
    out = Path(args.keep) / "spark_benchmark.json"
    out.write_text(json.dumps(result, indent=1))
    print(f"written: {out}")


def in_process(raw: Path, keep: Path, cfg, spark_cfg, args) -> dict:
    """Every stage in this process on Spark, then on DuckDB: the figures the module's docstring lists, printed."""
    duck_dir, spark_dir = (keep / "processed" / e / raw.name / args.as_of[:7] for e in ("duckdb", "spark"))
    # Spark first, so that the driver's Python peak is Spark's own (this process keeps what DuckDB's run held)
    spark = run_spark(raw, spark_dir, spark_cfg, args.as_of)
    print(f"Spark: {spark['stages_s']}", flush=True)
    duck = None if args.skip_duckdb else run_stages(raw, duck_dir, cfg, args.as_of)
    differences = month_differences(duck_dir, spark_dir) if duck else None
    result = {"duckdb_s": duck, **spark, "differences": differences, "load_average_after": os.getloadavg()}
    print("\n".join(table(duck, spark["stages_s"])))
    print(f"Spark session start {spark['session_start_s']} s (not in the month's sum); peak RSS "
          f"driver Python {spark['peak_rss_mb']['driver_python']:,} MB, JVM {spark['peak_rss_mb']['driver_jvm']:,} MB")
    print(f"plan problems: {len(spark['plan_problems'])}" + "".join(f"\n  {p}" for p in spark["plan_problems"]))
    if differences is not None:
        print(f"artifacts that differ from DuckDB's: {len(differences)}" + "".join(f"\n  {d}" for d in differences))
    print(f"load average after: {result['load_average_after']}")
    return result

if __name__ == "__main__":
    main()
