"""Benchmark the churn stage (notebook 05) on a large cleaned shop: wall time per step and peak memory.

    .venv/bin/python scripts/bench_churn.py --processed /work/bench/processed/bench [--as-of 2026-06-30] [--threads 2]

Runs `helpers.churn.run` end to end on the cleaned artifacts of `--processed` (orders_clean, and
customers_clean if present): labels and features at the three cut-offs (Ibis on DuckDB), the BG/NBD
baseline (clv.py), the backtest of the three models, permutation importance, retraining and
scoring at as_of. Artifacts are written to a temporary folder (never into `--processed`). Prints
one line per step (wall), the total (wall and CPU) and the peak resident memory of this process.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchlib import parser, peak_mb
from helpers import churn
from helpers.config import load_config


def main() -> None:
    ap = parser(__doc__, threads=None)
    args = ap.parse_args()
    cfg = load_config(args.config)
    if args.threads:
        cfg = cfg.replace(engine=cfg.engine.replace(threads=args.threads))
    src = Path(args.processed)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in ("orders_clean.parquet", "customers_clean.parquet"):
            if (src / name).exists():
                (work / name).symlink_to((src / name).resolve())
        t, cpu = time.perf_counter(), time.process_time()
        res = churn.run(work, args.as_of, cfg)
        total, cpu = time.perf_counter() - t, time.process_time() - cpu
        size = (work / "churn.parquet").stat().st_size / 1e6
    for step, secs in res.timings.items():
        print(f"{step}: {secs:.1f} s")
    print(f"customers scored: {len(res.scored):,}; backtest train {res.card['train']['customers']:,}, "
          f"test {res.card['test']['customers']:,}; chosen model: {res.chosen_model}; churn.parquet {size:.0f} MB")
    print("ROC-AUC on the backtest: " + ", ".join(f"{m} {v:.3f}" for m, v in res.metrics["roc_auc"].items()))
    print(f"total (features, backtest, scoring, artifacts): {total:.1f} s wall, {cpu:.1f} s CPU (every thread)")
    print(f"peak memory (this process): {peak_mb():,.0f} MB")


if __name__ == "__main__":
    main()
