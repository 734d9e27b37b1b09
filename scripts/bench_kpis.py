"""Benchmark the KPI stage (notebook 02) on a cleaned shop: wall time per step and peak memory.

    .venv/bin/python scripts/bench_kpis.py --processed /work/bench/processed/bench [--as-of 2026-06-30] [--threads 2]

Times the two saved tables (monthly KPIs -> kpis.csv, cohorts -> cohorts.csv), then the notebook's
other order-line results (second orders, discount comparison, gaps between orders, breakdowns), each
step as `kpis.run` computes it. Artifacts are not written unless --save is given. Prints one line per step,
the total and the peak resident memory of this process.
"""
from __future__ import annotations

import os
import resource
import time

from benchlib import parser, peak_mb
from helpers import artifacts, kpis
from helpers.config import load_config
from helpers.engine import connect


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = parser(__doc__, threads=2)
    ap.add_argument("--save", action="store_true", help="write kpis.csv and cohorts.csv into --processed")
    args = ap.parse_args()
    cfg = load_config(args.config)
    cfg = cfg.replace(engine=cfg.engine.replace(threads=args.threads))
    con = connect(cfg.engine)
    orders, customers = kpis.open_tables(args.processed, args.as_of, con)
    lines = orders.count().to_pandas()
    print(f"orders_clean: {lines:,} order lines up to {args.as_of}, DuckDB threads {args.threads}")
    k = cfg.kpis
    t0, c0 = time.perf_counter(), _cpu()
    facts = kpis.order_facts(orders, args.as_of, con=con)  # as kpis.run does: one pass, kept in the engine
    print(f"{'order facts (cached)':32s} {time.perf_counter() - t0:6.1f} s  cpu {_cpu() - c0:6.1f} s")
    orders = facts
    steps = [
        ("monthly KPIs (kpis.csv)", lambda: kpis.monthly(orders, args.as_of, cfg.business.inactivity_days)),
        ("cohorts (cohorts.csv)", lambda: kpis.cohorts(orders, args.as_of)),
        ("leads and signups", lambda: kpis.leads_and_signups(orders, customers, args.as_of, k.signup_order_days)
         if customers is not None else None),
        ("second orders by cohort", lambda: kpis.second_order_rates(orders, args.as_of, k.second_order_windows)),
        ("discount-won vs full price", lambda: kpis.discount_first_order(orders, args.as_of, k.discount_followup_days)),
        ("gaps between orders", lambda: kpis.gap_histogram(orders)),
    ] + [(f"breakdown by {d}", lambda d=d: kpis.breakdown_or_missing(orders, d, args.as_of, customers,
                                                                       k.breakdown_months, k.age_bands))
         for d in (*kpis.BREAKDOWN_ORDER_COLUMNS, *kpis.BREAKDOWN_CUSTOMER_COLUMNS)]
    total = time.perf_counter() - t0
    saved = {}
    for name, fn in steps:
        t, c = time.perf_counter(), _cpu()
        saved[name] = fn()
        secs = time.perf_counter() - t
        total += secs
        print(f"{name:32s} {secs:6.1f} s  cpu {_cpu() - c:6.1f} s")
        if name.startswith("cohorts"):
            print(f"{'  = saved tables':32s} {total:6.1f} s")
    print(f"{'whole KPI step':32s} {total:6.1f} s  cpu {_cpu() - c0:6.1f} s ({lines / total:,.0f} lines/s)")
    print(f"machine load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"peak memory (this process): {peak_mb():,.0f} MB")
    if args.save:
        artifacts.write(args.processed, "kpis", saved["monthly KPIs (kpis.csv)"])
        artifacts.write(args.processed, "cohorts", saved["cohorts (cohorts.csv)"])


if __name__ == "__main__":
    main()
