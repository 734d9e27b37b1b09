"""Benchmark the CLV stage on a large cleaned shop: wall time per step and peak memory.

    .venv/bin/python scripts/bench_clv.py --processed /work/bench/processed/bench [--threads 2] [--holdout]

Times the per-customer summary (one Ibis expression on DuckDB, to pandas), the compression to
unique (frequency, recency, T) rows, the BG/NBD fit, the Gamma-Gamma fit and the vectorised
scoring of every customer (the issue's target: fit + scoring for 1M customers under 30 s on 2
cores). ``--holdout`` also times the three-model holdout comparison (sampled above
``clv.sample_customers``). Nothing is written. Speed targets are checked here, not in unit tests.
"""
from __future__ import annotations

import time

from benchlib import parser, peak_mb
from helpers import artifacts, clv, engine
from helpers.config import load_config


def main() -> None:
    ap = parser(__doc__, threads=2)
    ap.add_argument("--holdout", action="store_true", help="also time the three-model holdout comparison")
    args = ap.parse_args()
    cfg = load_config(args.config)
    c = cfg.clv
    con = engine.connect(engine.EngineConfig(threads=args.threads))
    orders = artifacts.table(con, args.processed, "orders_clean")

    start = t = time.perf_counter()

    def step(name: str, extra: str = "") -> None:
        nonlocal t
        now = time.perf_counter()
        print(f"{name:<28} {now - t:6.1f} s   {extra}")
        t = now

    summary = clv.rfm_summary(orders, args.as_of, c.time_unit)
    step("summary (Ibis -> pandas)", f"{len(summary):,} customers, {(summary['frequency'] > 0).sum():,} repeat")
    fit_start = t
    fit = clv.fit_final(summary, "bgnbd", c)
    step("BG/NBD fit", ", ".join(f"{k}={v:.4g}" for k, v in fit.params.items()))
    if fit.note:
        print(f"  note: {fit.note}")
    gg = clv.fit_gamma_gamma(summary, c.penalizer, c.retry_penalizer)
    step("Gamma-Gamma fit", ", ".join(f"{k}={v:.4g}" for k, v in gg.params.items()))
    scores = clv.score_customers(summary, fit, gg, c)
    step("scoring", f"{len(scores):,} rows, mean {c.clv_months}-month CLV {scores['clv'].mean():.2f}")
    print(f"{'fit + scoring (target < 30 s)':<28} {time.perf_counter() - fit_start:6.1f} s")
    print(f"{'TOTAL summary+fit+score':<28} {time.perf_counter() - start:6.1f} s   peak RSS {peak_mb():,.0f} MB")
    if args.holdout:
        t = time.perf_counter()
        calhold = clv.calibration_holdout(orders, args.as_of, c.holdout_days, c.time_unit)
        step("calibration/holdout summary", f"{len(calhold):,} customers")
        table, _, _ = clv.holdout_comparison(calhold, c)
        step("holdout comparison (3 models)", f"sample {min(len(calhold), c.sample_customers):,}")
        print(table[["mae", "rmse", "predicted_total", "actual_total"]].round(3).to_string())
        print(f"peak RSS {peak_mb():,.0f} MB")


if __name__ == "__main__":
    main()
