"""Benchmark the offers step (notebook 06, "What to offer") on a large cleaned shop: wall time and peak memory.

    .venv/bin/python scripts/bench_offers.py --processed /work/bench/processed/bench [--as-of 2026-06-30] [--threads 2] [--full]

Times the category affinity table (one Ibis expression over every order line on DuckDB, then the
small pandas finish) on `--processed`/orders_clean.parquet; `--product` adds the product-level
affinity, `--full` also the holdout evaluation (on a sample of offers.evaluation_customers when the shop
is larger), the per-customer history and the suggestions for every customer (ranked and counted by the engine),
from the purchase days the engine keeps once (as `offers.run` does). Nothing is written.
Prints one line per step, and the peak resident memory of this process.
"""
from __future__ import annotations

import time

from benchlib import parser, peak_mb
from helpers import artifacts, engine, offers
from helpers.config import load_config


def main() -> None:
    ap = parser(__doc__, threads=None)
    ap.add_argument("--product", action="store_true", help="also time the product-level affinity")
    ap.add_argument("--full", action="store_true", help="also time the per-customer suggestions")
    args = ap.parse_args()
    cfg = load_config(args.config)
    if args.threads:
        cfg = cfg.replace(engine=cfg.engine.replace(threads=args.threads))
    con = engine.connect(cfg.engine)
    orders = artifacts.table(con, args.processed, "orders_clean")
    t0 = time.perf_counter()
    lines = orders.count().to_pyarrow().as_py()
    print(f"order lines: {lines:,} ({time.perf_counter() - t0:.1f} s to count)")

    t = time.perf_counter()
    aff = offers.affinity_table(orders, args.as_of, cfg)
    print(f"category affinity table: {time.perf_counter() - t:.1f} s, {len(aff)} pairs with enough support")
    print(aff.head(5).to_string())
    if args.product:
        t = time.perf_counter()
        paff = offers.affinity_table(orders, args.as_of, cfg, item="product_id")
        print(f"product affinity table: {time.perf_counter() - t:.1f} s, {len(paff):,} pairs with enough support")
    if args.full:
        customers = artifacts.table(con, args.processed, "customers_clean")
        t = time.perf_counter()
        days = engine.cache(con, offers.purchase_days(orders, args.as_of))
        print(f"purchase days kept by the engine: {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        sample, base = offers.holdout_sample(orders, args.as_of, cfg, days)
        ev = offers.evaluate_holdout(orders, customers, args.as_of, cfg, days=days, sample=sample)
        print(f"holdout evaluation: {time.perf_counter() - t:.1f} s, hit rate {ev.hit_rate.iloc[0]:.4f} "
              f"on {int(ev.customers.iloc[0]):,} of {base:,} customers")
        t = time.perf_counter()
        inp = offers.offer_inputs(orders, customers, args.as_of, cfg, days=days)
        print(f"offer inputs (history, cycles, affinities, profiles): {time.perf_counter() - t:.1f} s, "
              f"{inp.profiles.count().execute():,} customers")
        t = time.perf_counter()
        n = offers.suggest_table(inp, cfg).count().execute()  # ranked by the engine, counted there
        print(f"suggestions: {time.perf_counter() - t:.1f} s, {n:,} rows")
    print(f"peak memory (this process): {peak_mb():,.0f} MB")


if __name__ == "__main__":
    main()
