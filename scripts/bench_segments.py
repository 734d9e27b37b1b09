"""Benchmark the segments stage (notebook 03) on a large cleaned shop: wall time per step and peak memory.

    .venv/bin/python scripts/bench_segments.py --processed /work/bench/processed/bench [--as-of 2026-06-30]

Reads orders_clean.parquet (and customers_clean.parquet) from the given month folder, then times
each step of ``segments.build`` and the write of segments.parquet (into a temporary folder, so
the benchmark shop's own month is left untouched). Prints one line per step, the total and the
peak resident memory of this process. Speed targets are checked here, not in unit tests.
"""
from __future__ import annotations

import shutil
import tempfile
import time

from benchlib import parser, peak_mb
from helpers import artifacts, segments
from helpers.config import load_config
from helpers.engine import connect


class Clock:
    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()

    def lap(self, what: str) -> None:
        now = time.perf_counter()
        print(f"{what}: {now - self.last:.1f} s", flush=True)
        self.last = now


def main() -> None:
    ap = parser(__doc__, threads=2)
    args = ap.parse_args()
    cfg = load_config(args.config)
    sc = cfg.segments
    clock = Clock()
    con = connect(cfg.engine.replace(threads=args.threads))
    orders = artifacts.table(con, args.processed, "orders_clean")
    customers = artifacts.table_if_exists(con, args.processed, "customers_clean")
    lines = orders.count().to_pandas()
    clock.lap(f"open ({lines:,} order lines)")

    rfm = segments.rfm_table(orders, args.as_of)
    clock.lap(f"RFM per customer, Ibis on {con.name} ({len(rfm):,} customers)")
    rfm = segments.rfm_scores(rfm)
    rfm["rfm_segment"] = segments.assign_segments(rfm, sc)
    clock.lap("scores and named segments (pandas)")
    X = segments.cluster_features(rfm)
    k_scores = segments.choose_k(X, sc.k_min, sc.k_max, sc.silhouette_sample, sc.random_state)
    k = segments.best_k(k_scores)
    sample = min(len(X), sc.silhouette_sample)
    clock.lap(f"choose k in {sc.k_min}..{sc.k_max} on {sample:,} sampled customers (k = {k})")
    labels, _ = segments.fit_clusters(X, k, sc.random_state)
    clock.lap(f"k-means fit on all {len(X):,} customers (k = {k})")
    total_build = time.perf_counter()
    seg = segments.build(orders, args.as_of, cfg, customers)
    build_secs = time.perf_counter() - total_build
    differ = int((seg.customers["cluster"].to_numpy() != labels).sum())
    print(f"  (customers in a different cluster on the second run: {differ:,})")
    clock.lap("segments.build end to end (RFM, scores, k choice, k-means, PCA, profile mixes)")
    with tempfile.TemporaryDirectory(prefix="bench-seg-") as tmp:
        t = time.perf_counter()
        artifacts.write(tmp, "segments", segments.segments_frame(seg.customers))
        write_secs = time.perf_counter() - t
        size = artifacts.path(tmp, "segments").stat().st_size / 1e6
        clock.lap(f"write segments.parquet ({size:,.1f} MB)")
        previous = artifacts.read(tmp, "segments", columns=["customer_id", "rfm_segment"])
        mig = segments.migration_matrix(previous, seg.customers, list(sc.grid))
        clock.lap(f"migration matrix against a same-size previous month ({int(mig.to_numpy().sum()):,} customers)")
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"stage total (segments.build + write segments.parquet): {build_secs + write_secs:.1f} s; "
          f"whole script: {time.perf_counter() - clock.start:.1f} s")
    print(f"peak memory (this process): {peak_mb():,.0f} MB")


if __name__ == "__main__":
    main()
