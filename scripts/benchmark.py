"""Benchmark the order-line stages on a large demo shop: wall time and peak memory.

    .venv/bin/python scripts/benchmark.py --customers 200000 [--keep DIR]

Generates a demo shop of the given size (seed 42) in a temporary folder, then times the cleaning
stage (Ibis on DuckDB) end to end, artifacts written. Prints one line per step and the peak
resident memory of this process. Speed targets are checked here, not in unit tests.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchlib import peak_mb
from helpers import clean, demo
from helpers.config import load_config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=200_000)
    ap.add_argument("--keep", default=None, help="folder to keep the generated shop in (default: temp)")
    args = ap.parse_args()
    cfg = load_config("config/default.yml")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.keep) if args.keep else Path(tmp)
        raw, out = base / "raw" / "bench", base / "processed" / "bench"
        t = time.perf_counter()
        if not (raw / "orders.csv").exists():
            demo.generate(raw, customers=args.customers, seed=42)
        size = (raw / "orders.csv").stat().st_size / 1e6
        print(f"generate: {time.perf_counter() - t:.1f} s, orders.csv {size:,.0f} MB")
        t = time.perf_counter()
        report = clean.run(raw, "2026-06-30", cfg, processed_dir=out).report
        lines = report["files"]["orders"]["rows_raw"]
        secs = time.perf_counter() - t
        print(f"clean: {lines:,} order lines in {secs:.1f} s ({lines / secs:,.0f} lines/s)")
        print(f"peak memory (this process): {peak_mb():,.0f} MB")


if __name__ == "__main__":
    main()
