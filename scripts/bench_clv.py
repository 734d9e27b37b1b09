"""Benchmark the CLV stage on a large cleaned shop: wall time per step and peak memory.

    .venv/bin/python scripts/bench_clv.py --processed /tmp/bench/processed/bench [--threads 2] [--model pareto_nbd]

Times the steps of `clv.run` in order: the per-customer summary (one Ibis expression on DuckDB, to
pandas), the calibration/holdout summary and the three-model holdout comparison (sampled above
``clv.sample_customers``), the final fit of the model the rule chooses (or ``--model``, as
``clv.model`` pinned; falling back along `clv.model_ranking` as the stage does), the Gamma-Gamma fit
and the vectorised scoring of every customer. Every fit is bounded by ``clv.max_evaluations`` and
``clv.fit_seconds``. The issue's target: the CLV stage for 1M customers within 30 s on 2 cores,
whichever model wins and with Pareto/NBD pinned. Nothing is written. Speed targets are checked
here, not in unit tests.
"""
from __future__ import annotations

import time

from benchlib import parser, peak_mb

from helpers import artifacts, clv, engine
from helpers.config import load_config


def main() -> None:
    ap = parser(__doc__, threads=2)
    ap.add_argument("--model", default=None, choices=["auto", *clv.MODEL_NAMES],
                    help="pin clv.model (default: the config's)")
    args = ap.parse_args()
    cfg = load_config(args.config)
    c = cfg.clv.model_copy(update={"model": args.model}) if args.model else cfg.clv
    con = engine.connect(engine.EngineConfig(threads=args.threads))
    orders = artifacts.table(con, args.processed, "orders_clean")

    start = t = time.perf_counter()

    def step(name: str, extra: str = "") -> None:
        nonlocal t
        now = time.perf_counter()
        print(f"{name:<30} {now - t:6.1f} s   {extra}")
        t = now

    summary = clv.rfm_summary(orders, args.as_of, c.time_unit)
    step("summary (Ibis -> pandas)", f"{len(summary):,} customers, {(summary['frequency'] > 0).sum():,} repeat")
    calhold = clv.calibration_holdout(orders, args.as_of, c.holdout_days, c.time_unit)
    step("calibration/holdout summary", f"{len(calhold):,} customers")
    table, _, _ = clv.holdout_comparison(calhold, c)
    step("holdout comparison (3 models)", f"sample {min(len(calhold), c.sample_customers):,}")
    print(table[["mae", "predicted_total", "actual_total"]].round(3).to_string())
    for note in table["note"].dropna():
        print(f"  note: {note}")
    fit = None
    for name in clv.model_ranking(table, c.model, c.model_tolerance):
        try:
            fit = clv.fit_final(summary, name, c)
            break
        except clv.FitFailed as exc:
            print(f"  final fit failed: {exc}")
    step(f"final fit ({clv.MODEL_NAMES[fit.name] if fit else 'none'})",
         ", ".join(f"{k}={v:.4g}" for k, v in fit.params.items()) if fit else "")
    for note in (fit.note, fit.boundary) if fit else ():
        if note:
            print(f"  note: {note}")
    try:
        gg = clv.fit_gamma_gamma(summary, c.penalizer, c.max_evaluations, c.fit_seconds)
        step("Gamma-Gamma fit", ", ".join(f"{k}={v:.4g}" for k, v in gg.params.items()))
    except clv.FitFailed as exc:
        gg = None
        step("Gamma-Gamma fit", f"failed: {exc}")
    scores = clv.score_customers(summary, fit, gg, c, 0.0)
    step("scoring", f"{len(scores):,} rows, mean {c.clv_months}-month CLV {scores['clv'].mean():.2f}")
    print(f"{'CLV stage (target < 30 s)':<30} {time.perf_counter() - start:6.1f} s   peak RSS {peak_mb():,.0f} MB")


if __name__ == "__main__":
    main()
