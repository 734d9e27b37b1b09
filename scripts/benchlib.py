"""What every benchmark script shares: the common options and the peak-memory reading."""
from __future__ import annotations

import argparse
import resource

DEFAULT_PROCESSED = "/tmp/bench/processed/bench/2026-06"  # made by: scripts/benchmark.py --customers 1350000 --keep /tmp/bench


def peak_mb() -> float:
    """Peak resident memory of this process in MB (DuckDB runs in-process, so it is included)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def parser(doc: str, threads: int | None = 2) -> argparse.ArgumentParser:
    """--processed, --as-of, --config and --threads, with the script's first docstring line as description."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--processed", default=DEFAULT_PROCESSED, help="month folder holding orders_clean.parquet")
    ap.add_argument("--as-of", default="2026-06-30")
    ap.add_argument("--config", default="config/default.yml")
    ap.add_argument("--threads", type=int, default=threads, help="DuckDB threads (targets are for 2 cores)")
    return ap
