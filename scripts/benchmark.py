"""Benchmark the whole monthly run on a large demo shop: wall time and peak memory per notebook.

    .venv/bin/python scripts/benchmark.py --customers 1350000 --keep /tmp/bench     # ~10M order lines
    .venv/bin/python scripts/benchmark.py --customers 100000 --keep /tmp/bench100k  # ~0.75M order lines
    .venv/bin/python scripts/benchmark.py --raw /tmp/bench/raw/bench --keep /tmp/perf  # an existing shop

Generates a demo shop of the given size (seed 42) in ``DIR/raw/bench`` (or reuses the one there, or
the folder given with ``--raw``, which is only read), then runs every notebook through
`helpers.runner.run_month` exactly as ``retention run`` does, reports and artifacts under ``DIR``
(``DIR/reports``, ``DIR/processed``). Each notebook runs in its own kernel, a child process: its peak
resident memory is polled with psutil every 0.1 s (kernel and anything it starts); the runner's own
process (HTML rendering) is measured with getrusage. The table gives per notebook the kernel's wall
time, the time including the HTML page, the kernel's CPU seconds (user + system, every thread; the
figure to compare on a shared machine) and the peak RSS; the total line gives the whole run and its
largest process. The rows are also written to ``DIR/benchmark.json`` as each notebook ends.

Then, in the same run on the same cleaned orders, the CLV work done the naive way: lifetimes' own
``summary_data_from_transaction_data`` over the purchase lines, a ``BetaGeoFitter`` fitted on every
customer row (uncompressed) and scoring every customer (P(alive), expected purchases over the
configured window), and its ratio to notebook 04's wall time (our CLV stage: three-model holdout,
final fit, Gamma-Gamma, scoring, figures and artifacts), and to the same work done our way in this
process (the Ibis summary, BG/NBD on compressed rows, scoring). ``--skip-naive`` leaves both out.

After the month, in the same run, DuckDB's own read-parse-write of the orders file (to Parquet, with the
run's engine settings, in a child process): the floor notebook 01 is measured against; the table's "x
floor" column is each notebook's kernel seconds divided by it. The total line's peak RSS is the whole
run's: every process (runner and kernels) summed at one moment, polled every 0.1 s; getrusage's largest
single process is printed beside it.

Targets (issue 28, 2 cores, quiet machine): 1.35M customers whole run <= 300 s, peak RSS < 4 GB, no
notebook over 60 s, 01 at most 8x the floor; the demo month (20,000 customers) <= 30 s; CLV stage >= 5x
faster than the naive path and notebook 04 as a whole faster than it. Speed targets are checked here,
not in unit tests.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

from helpers import artifacts, demo, runner
from helpers.config import load_config

DONE = re.compile(r"^\[(\d+)/(\d+)\] (\S+) \.\.\. (done|FAILED).*?(?:in|after) ([\d.]+) s")


class KernelMemory:
    """Polls the resident memory and CPU time of this process and every descendant (the notebook kernels).

    Per process it keeps the latest CPU seconds and the peak RSS; :meth:`take` hands over the processes
    that have ended since the last call (a notebook's kernel, once the runner logs it done), so notebooks
    run side by side are not counted twice. ``run_peak`` is the largest sum of every process's RSS at one
    moment (the runner included): the whole run's memory. CPU seconds (user + system, the kernel's threads
    summed) hardly depend on what else the machine runs, unlike wall time: on a shared machine they are the
    figure to compare between two runs.
    """

    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self.run_peak = 0
        self.last_jvm = 0
        self.last_workers = 0
        self.seen: dict[int, tuple[float, int]] = {}  # pid -> (latest CPU seconds, peak RSS)
        self.notebook: dict[int, str | None] = {}  # pid -> the notebook a kernel says it runs (None: not said)
        self.jvm: set[int] = set()  # the pids of Java processes (Spark's driver, started by a kernel on Spark)
        # the pids of Spark's Python workers (`pyspark.daemon` and its forks: the executors' Python, which scores
        # with mapInPandas; on a local master they run on the driver's machine, on a cluster on the executors)
        self.workers: set[int] = set()
        self.alive: set[int] = set()
        self.taken: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        me = psutil.Process()
        mine, started = me.cmdline(), set()
        while not self._stop.is_set():
            now: dict[int, tuple[float, int]] = {}
            total = me.memory_info().rss
            for child in me.children(recursive=True):
                try:
                    with child.oneshot():
                        # a child forked but not yet started shows this process's pages as its own: not counted
                        if child.pid not in started and child.cmdline() == mine:
                            continue
                        started.add(child.pid)
                        rss = child.memory_info().rss
                        t = child.cpu_times()
                        if child.name() == "java":  # Spark's driver: a shell script that becomes Java (exec)
                            self.jvm.add(child.pid)
                        elif "pyspark.daemon" in child.cmdline():
                            self.workers.add(child.pid)
                except psutil.Error:  # exited in the meantime
                    continue
                now[child.pid] = (t.user + t.system, rss)
                total += rss
                if child.pid not in self.notebook:
                    self.notebook[child.pid] = _notebook_of(child)
            with self._lock:
                for pid, (cpu, rss) in now.items():
                    self.seen[pid] = (cpu, max(rss, self.seen.get(pid, (0.0, 0))[1]))
                self.alive = set(now)
                self.run_peak = max(self.run_peak, total)
            self._stop.wait(self.interval)

    def take(self, notebook: str | None = None) -> tuple[int, float]:
        """Peak RSS (bytes, the ended processes' peaks summed) and CPU seconds of the processes that ended
        since the last call. With `notebook`: the kernel that said it runs that notebook (and the Java driver it
        started on Spark, which inherits what the kernel was told), if one did, else those that said nothing (two
        kernels ending together were both counted for the first notebook logged done). :attr:`last_jvm`: the
        part of the peak that was Java's; :attr:`last_workers`: the part that was Spark's Python workers' (their
        peaks summed: forks of one daemon, so an upper bound)."""
        time.sleep(2 * self.interval)  # let the poll see the kernel gone
        with self._lock:
            ended = [pid for pid in self.seen if pid not in self.alive and pid not in self.taken]
            named = [pid for pid in ended if notebook is not None and self.notebook.get(pid) == notebook]
            ended = named or [pid for pid in ended if self.notebook.get(pid) is None]
            self.taken.update(ended)
            self.last_jvm = sum(self.seen[p][1] for p in ended if p in self.jvm)
            self.last_workers = sum(self.seen[p][1] for p in ended if p in self.workers)
            return sum(self.seen[p][1] for p in ended), sum(self.seen[p][0] for p in ended)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _notebook_of(proc: psutil.Process) -> str | None:
    """The notebook a kernel runs, when the runner told it (:data:`helpers.artifacts.INPUTS_VARIABLE`: only a kernel
    that waits for another notebook's artifacts is told), else None."""
    try:
        said = proc.environ().get(artifacts.INPUTS_VARIABLE)
    except psutil.Error:
        return None
    return json.loads(said).get("notebook") if said else None


def duckdb_floor(raw: Path, out: Path, config: str) -> dict:
    """DuckDB's own read-parse-write of the orders file (CSV or Parquet to Parquet) in a child process with
    the run's engine settings: the floor notebook 01 is measured against (01 does this and every check)."""
    import subprocess

    from helpers.config import load_config

    engine = load_config(config).engine
    source = next(iter(sorted(raw.glob("orders.csv")) + sorted(raw.glob("orders.parquet"))), None)
    if source is None:
        return {}
    reader = "read_parquet" if source.suffix == ".parquet" else "read_csv"
    sets = ["SET enable_progress_bar = false",
            f"SET threads = {int(engine.threads)}" if engine.threads else "",
            f"SET memory_limit = '{engine.memory_limit}'" if engine.memory_limit else ""]
    code = ("import duckdb; con = duckdb.connect(); "
            + "".join(f"con.execute({q!r}); " for q in sets if q)
            + f"con.execute(\"COPY (SELECT * FROM {reader}('{source}')) TO '{out}' (FORMAT parquet)\")")
    with KernelMemory() as memory:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        wall = time.perf_counter() - t
        rss, cpu = memory.take()
    out.unlink(missing_ok=True)
    return {"file": source.name, "wall_s": wall, "cpu_s": cpu, "rss": rss}


def run_month(raw: Path, base: Path, as_of: str, config: str) -> tuple[list[dict], int]:
    """All notebooks through the runner: one dict per notebook with seconds and peak RSS (bytes), and the
    whole run's peak RSS (every process at one moment, the runner included)."""
    rows: list[dict] = []
    mark = [time.perf_counter()]

    with KernelMemory() as memory:
        def log(line: str) -> None:
            print(line, flush=True)
            m = DONE.match(line)
            if m:
                now = time.perf_counter()
                rss, cpu = memory.take(m.group(3))
                rows.append({"notebook": m.group(3), "status": m.group(4), "kernel_s": float(m.group(5)),
                             "wall_s": now - mark[0], "rss": rss, "rss_jvm": memory.last_jvm,
                             "rss_workers": memory.last_workers, "cpu_s": cpu})
                (base / "benchmark.json").write_text(json.dumps(rows, indent=1))  # kept if the run stops later
                mark[0] = now
            elif line.endswith("with as_of=" + as_of):  # the run starts: notebook 01 from here
                mark[0] = time.perf_counter()
                memory.take()

        try:
            runner.run_month(as_of, raw, config, root=ROOT, reports_dir=base / "reports",
                             processed_base=base / "processed", log=log, cell_progress=False)
        except runner.RunFailed as err:
            print(f"run failed: {err}", flush=True)
    return rows, memory.run_peak


def naive_clv(processed: Path, as_of: str, window_days: int) -> dict:
    """lifetimes' own path on the cleaned purchase lines: summary helper, BG/NBD on every row, scoring."""
    import pandas as pd
    from lifetimes import BetaGeoFitter
    from lifetimes.utils import summary_data_from_transaction_data

    t0, c0 = time.perf_counter(), time.process_time()
    lines = pd.read_parquet(processed / "orders_clean.parquet",
                            columns=["customer_id", "order_date", "amount", "is_return"])
    end = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    lines = lines[~lines["is_return"] & (lines["order_date"] < end)]
    t1 = time.perf_counter()
    summary = summary_data_from_transaction_data(lines, "customer_id", "order_date", monetary_value_col="amount",
                                                 observation_period_end=as_of, freq="D")
    t2 = time.perf_counter()
    bgf = BetaGeoFitter(penalizer_coef=0.0)
    bgf.fit(summary["frequency"], summary["recency"], summary["T"])
    t3 = time.perf_counter()
    summary["p_alive"] = bgf.conditional_probability_alive(summary["frequency"], summary["recency"], summary["T"])
    summary["exp_purchases"] = bgf.conditional_expected_number_of_purchases_up_to_time(
        window_days, summary["frequency"], summary["recency"], summary["T"])
    t4 = time.perf_counter()
    return {"cpu": time.process_time() - c0, "read": t1 - t0, "summary": t2 - t1, "fit": t3 - t2, "score": t4 - t3, "total": t4 - t0,
            "customers": len(summary), "lines": len(lines),
            "params": {k: float(v) for k, v in bgf.params_.items()}}


def same_work_ours(processed: Path, as_of: str, cfg) -> dict:
    """The naive path's work done our way, in this process: the per-customer summary as one Ibis
    expression on DuckDB, BG/NBD fitted on compressed rows (`clv.fit_final`), every customer scored."""
    from helpers import artifacts, clv, engine

    c = cfg.clv
    t0, c0 = time.perf_counter(), time.process_time()
    con = engine.connect(cfg.engine)
    summary = clv.rfm_summary(artifacts.table(con, processed, "orders_clean"), as_of, c.time_unit)
    t1 = time.perf_counter()
    fit = clv.fit_final(summary, "bgnbd", c)
    t2 = time.perf_counter()
    scores = clv.score_customers(summary, fit, None, c)
    t3 = time.perf_counter()
    return {"cpu": time.process_time() - c0, "summary": t1 - t0, "fit": t2 - t1, "score": t3 - t2,
            "total": t3 - t0, "customers": len(scores)}


def machine() -> str:
    import duckdb
    import ibis

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{model}; {os.cpu_count()} logical CPUs (affinity {len(os.sched_getaffinity(0))}); "
            f"RAM {psutil.virtual_memory().total / 2**30:.1f} GiB; Python {platform.python_version()}, "
            f"DuckDB {duckdb.__version__}, Ibis {ibis.__version__}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=200_000, help="demo shop size when it must be generated")
    ap.add_argument("--keep", default=None, help="folder to keep the shop, artifacts and reports in (default: temp)")
    ap.add_argument("--raw", default=None, help="an existing raw shop folder to run instead (only read)")
    ap.add_argument("--as-of", default="2026-06-30")
    ap.add_argument("--config", default="config/default.yml")
    ap.add_argument("--skip-naive", action="store_true", help="leave out the naive lifetimes CLV path")
    args = ap.parse_args()
    keep = Path(args.keep).resolve() if args.keep else None  # relative to where the script was started
    given_raw = Path(args.raw).resolve() if args.raw else None
    os.chdir(ROOT)  # the config path and the notebooks are the project's
    print(machine(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        base = keep or Path(tmp)
        raw = given_raw or base / "raw" / "bench"
        t = time.perf_counter()
        if not (raw / "orders.csv").exists() and not (raw / "orders.parquet").exists():
            demo.generate(raw, customers=args.customers, seed=42)
            print(f"generated {raw} in {time.perf_counter() - t:.1f} s", flush=True)
        size = sum(f.stat().st_size for f in raw.glob("orders*")) / 1e6
        print(f"shop {raw} (orders {size:,.0f} MB)", flush=True)

        load = os.getloadavg()
        start = time.perf_counter()
        rows, run_peak = run_month(raw, base, args.as_of, args.config)
        total = time.perf_counter() - start
        processed = base / "processed" / raw.name / args.as_of[:7]
        parent = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # before the floor's child
        floor = duckdb_floor(raw, base / "floor.parquet", args.config)

        try:
            quality = json.loads((processed / "data_quality.json").read_text())
            lines = quality["files"]["orders"]["rows_raw"]
        except (OSError, KeyError, ValueError):
            lines = None
        naive = same = None
        if not args.skip_naive and (processed / "orders_clean.parquet").exists():
            cfg = load_config(args.config)
            print("naive lifetimes CLV path ...", flush=True)
            naive = naive_clv(processed, args.as_of, cfg.clv.purchase_window_days)
            same = same_work_ours(processed, args.as_of, cfg)

    print()
    print(f"load average (1 min) at start {load[0]:.1f}, at end {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    base_s = floor.get("wall_s")
    # on Spark: each kernel's Java driver and Spark's Python workers, apart. The rest of a peak is not the driver's
    # Python alone: it sums every process the kernel started that ended by then (scripts/spark_driver_memory.py
    # gives the driver's Python side of one stage)
    jvm = any(r["rss_jvm"] for r in rows)
    print(f"{'notebook':<14} {'kernel s':>9} {'with HTML s':>12} {'kernel CPU s':>13} {'peak RSS MB':>12} "
          + (f"{'of it JVM MB':>13} {'workers MB':>11} " if jvm else "")
          + f"{'x floor':>8}  status")
    for r in rows:
        flag = "  > 60 s" if r["kernel_s"] > 60 else ""
        ratio = f"{r['kernel_s'] / base_s:>8.1f}" if base_s else f"{'':>8}"
        print(f"{r['notebook']:<14} {r['kernel_s']:>9.1f} {r['wall_s']:>12.1f} {r['cpu_s']:>13.1f} "
              f"{r['rss'] / 2**20:>12,.0f} "
              + (f"{r['rss_jvm'] / 2**20:>13,.0f} {r.get('rss_workers', 0) / 2**20:>11,.0f} " if jvm else "")
              + f"{ratio}  {r['status']}{flag}")
    print(f"{'total':<14} {sum(r['kernel_s'] for r in rows):>9.1f} {total:>12.1f} "
          f"{sum(r['cpu_s'] for r in rows):>13.1f} {run_peak / 2**20:>12,.0f}  "
          f"(whole run, wall; peak RSS of every process at one moment. Largest single process by getrusage: "
          f"runner {parent / 2**20:,.0f} MB, children {children / 2**20:,.0f} MB)")
    if floor:
        print(f"floor: DuckDB's own read-parse-write of {floor['file']} to Parquet, same engine settings: "
              f"{floor['wall_s']:.1f} s, {floor['cpu_s']:.1f} CPU s, peak RSS {floor['rss'] / 2**20:,.0f} MB "
              f"(x floor = a notebook's kernel seconds / this)")
    if lines:
        print(f"order lines (raw): {lines:,}")
    if naive:
        ours = next((r for r in rows if r["notebook"].startswith("04") and r["cpu_s"]), None)
        print(f"naive CLV (lifetimes): {naive['total']:.1f} s for {naive['customers']:,} customers "
              f"({naive['lines']:,} purchase lines): read {naive['read']:.1f} s, summary helper "
              f"{naive['summary']:.1f} s, BG/NBD fit {naive['fit']:.1f} s, scoring {naive['score']:.1f} s; "
              f"{naive['cpu']:.1f} CPU s")
        if ours:
            print(f"notebook 04 (our CLV stage, whole notebook): {ours['wall_s']:.1f} s, {ours['cpu_s']:.1f} CPU s -> "
                  f"naive / ours = {naive['total'] / ours['wall_s']:.2f}x wall, {naive['cpu'] / ours['cpu_s']:.2f}x CPU")
        print(f"the same work our way (Ibis summary, BG/NBD on compressed rows, scoring; this process): "
              f"{same['total']:.1f} s (summary {same['summary']:.1f} s, fit {same['fit']:.1f} s, scoring "
              f"{same['score']:.1f} s), {same['cpu']:.1f} CPU s -> naive / ours = {naive['total'] / same['total']:.2f}x "
              f"wall, {naive['cpu'] / max(same['cpu'], 1e-9):.2f}x CPU")


if __name__ == "__main__":
    main()
