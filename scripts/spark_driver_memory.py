"""One stage on Spark in this process, on a copy of a month already made: how much the driver holds.

    .venv/bin/python scripts/spark_driver_memory.py --stage 05 --month /tmp/sp1m/processed/bench/2026-06 --keep /tmp/m
    .venv/bin/python scripts/spark_driver_memory.py --stage 04 --month ... --keep ... --src /tmp/wt_before/src

The month folder (made by any engine: the artifacts are the same) is copied to ``--keep`` without the stage's own
outputs, and the stage runs there as its notebook runs it (04: ``clv.run`` then ``forecast.run``; 05:
``churn.run``; 06: ``winback.run``; 02, 03, 07: ``kpis.run``, ``segments.run``, ``summary.run``) on Spark with
``--config``'s engine settings (default: config/default.yml with ``local[2]``, a 2g driver heap, 4 shuffle
partitions, no UI). ``--src`` runs another checkout's helpers (a git
worktree of an earlier commit), for before and after on one machine.

Printed: the stage's seconds (``clv.run``'s own peak too, for 04), and the peaks, polled every 0.1 s, of the
driver's Python side (this process: the pandas frames the stage collects), its JVM, and the Python workers the JVM
starts (what scores on the executors: on a cluster they run on the executors' machines, not the driver's). The
runner's benchmark (scripts/benchmark.py) adds every process a notebook started, and so counts the workers, and
processes that ended while it ran, with the kernel: this script gives the driver's Python side apart.
Needs pyspark and Java 17 (``make spark-setup``). Not part of CI.
"""
from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import threading
import time
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
OWN_OUTPUTS = {"02": ("kpis*", "cohorts*"), "03": ("segments*",), "04": ("clv*", "forecast*"), "05": ("churn*",),
               "06": ("winback*", "campaign_plan*", "offers*"),
               "07": ("predictions*", "track_record*", "customers_scored*", "contact_lists*", "trend*")}
SPARK = {"backend": "spark", "spark_master": "local[2]",
         "spark_conf": {"spark.driver.memory": "2g", "spark.sql.shuffle.partitions": 4, "spark.ui.enabled": False}}


class Peaks:
    """The peaks of this process, its Java child and the other children (Spark's Python workers), in bytes."""

    def __init__(self) -> None:
        self.driver = self.jvm = self.workers = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            self.driver = max(self.driver, me.memory_info().rss)
            workers = 0
            for child in me.children(recursive=True):
                try:
                    if child.name() == "java":
                        self.jvm = max(self.jvm, child.memory_info().rss)
                    else:
                        workers += child.memory_info().rss
                except psutil.Error:  # ended in the meantime
                    continue
            self.workers = max(self.workers, workers)
            self._stop.wait(0.1)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _print_on_return(name: str, peaks: Peaks) -> None:
    """Wrap helpers' `module.function` (where the stage looks it up) to print the seconds and the driver's and the
    Python workers' peaks so far when it returns."""
    module_name, function = name.rsplit(".", 1)
    module = importlib.import_module(f"helpers.{module_name}")
    inner = getattr(module, function)

    def timed(*args, **kwargs):
        t = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            print(f"  {name}: {time.perf_counter() - t:.1f} s, driver's Python peak so far "
                  f"{peaks.driver / 2**20:,.0f} MB, Python workers' {peaks.workers / 2**20:,.0f} MB", flush=True)
    setattr(module, function, timed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stage", choices=sorted(OWN_OUTPUTS), required=True)
    ap.add_argument("--month", required=True, help="a month folder of data/processed/<shop>/ (only read)")
    ap.add_argument("--keep", required=True, help="where the copy is made and the stage writes: a month folder "
                    "(.../<shop>/2026-06), since 03 and 07 look for the month before it beside it")
    ap.add_argument("--as-of", default="2026-06-30")
    ap.add_argument("--config", default=None, help="a config file whose engine is Spark (default: see above)")
    ap.add_argument("--src", default=str(ROOT / "src"), help="the helpers to run (another checkout's src)")
    ap.add_argument("--phases", default="", help="module.function,... of the helpers: the driver's peak so far is "
                    "printed as each returns (e.g. offers.run,winback.plan_candidates)")
    args = ap.parse_args()
    sys.path.insert(0, args.src)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from helpers import churn, clv, engine, forecast, kpis, segments, summary, winback
    from helpers.config import config_from_dict

    if args.config:
        cfg = config_from_dict(yaml.safe_load(Path(args.config).read_text()))
    else:
        cfg = config_from_dict({**yaml.safe_load((ROOT / "config" / "default.yml").read_text()), "engine": SPARK})
    out = Path(args.keep)
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(args.month, out, ignore=shutil.ignore_patterns(*OWN_OUTPUTS[args.stage]))
    con = engine.connect(cfg.engine)
    start = psutil.Process().memory_info().rss
    with Peaks() as peaks:
        for name in filter(None, args.phases.split(",")):
            _print_on_return(name, peaks)
        t = time.perf_counter()
        if args.stage == "04":
            result = clv.run(out, args.as_of, cfg, con)
            print(f"clv.run: {time.perf_counter() - t:.1f} s, driver's Python peak {peaks.driver / 2**20:,.0f} MB",
                  flush=True)
            forecast.run(out, args.as_of, cfg, con, clv_result=result)
        elif args.stage == "05":
            churn.run(out, args.as_of, cfg, con)
        elif args.stage == "06":
            winback.run(out, args.as_of, cfg, con)
        else:
            {"02": kpis, "03": segments, "07": summary}[args.stage].run(out, args.as_of, cfg, con)
        wall = time.perf_counter() - t
    print(f"{args.stage} ({args.src}): {wall:.1f} s; driver's Python peak {peaks.driver / 2**20:,.0f} MB "
          f"({start / 2**20:,.0f} MB with the session started); JVM peak {peaks.jvm / 2**20:,.0f} MB; "
          f"Python workers' peak {peaks.workers / 2**20:,.0f} MB")


if __name__ == "__main__":
    main()
