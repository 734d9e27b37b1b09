"""How well the 12-month forecast of existing customers' purchases (helpers.forecast) comes true, over seeds.

    .venv/bin/python scripts/forecast_study.py [--seeds 40] [--customers 20000] [--shops demo,pareto_nbd]

For each shop and seed a shop with known parameters is generated with one year more history than the
forecast sees, cleaned (helpers.clean), modelled at the cut-off (helpers.clv: holdout comparison, final fit)
and forecast for the 12 months after it (`forecast.existing_forecast`, the band as notebook 04 draws it).
Three numbers per seed: the forecast, the truth's expectation (the generating model's own conditional
expectation for the same customers given their histories, with the true parameters) and what the customers
then bought (purchase days in the 12 months after the cut-off). Printed: per shop the median over seeds of
the error against the truth's expectation and against the realised value, and in how many seeds the band
covered the realised value.

Shops: ``demo`` (helpers.demo: BG/NBD purchases, 2023-07-01 to 2027-06-30, cut-off 2026-06-30) and
``pareto_nbd`` (tests/shops.py's Pareto/NBD shop, its history stretched one year, cut-off 2025-12-31).
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from helpers import artifacts, clean, clv, demo, engine, forecast  # noqa: E402
from helpers.config import load_config  # noqa: E402
from helpers.customer_facts import Fit, expected_purchases, purchase_periods  # noqa: E402


def _shop(kind: str, raw: Path, customers: int, seed: int) -> tuple[str, str, str, dict]:
    """Write the shop; (as_of, end of the realised year, model name, true parameters)."""
    if kind == "demo":
        demo.generate(raw, customers=customers, seed=seed, start="2023-07-01", end="2027-06-30")
        return "2026-06-30", "2027-06-30", "bgnbd", dict(demo.BGNBD_TRUTH)
    import shops
    shops.HISTORY_DAYS = int((np.datetime64("2026-12-31") - shops.START).astype(int)) + 1
    shops.ACQUISITION_SHARE = 0.75 * 1095 / shops.HISTORY_DAYS  # first orders up to 2025-09 as in the tests' shop
    shops.pareto_nbd_shop(raw, customers=customers, seed=seed, campaign=False)
    return "2025-12-31", "2026-12-31", "pareto_nbd", dict(shops.PARETO_NBD_TRUTH)


def one(kind: str, seed: int, customers: int, cfg, band: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        raw, processed = Path(tmp) / "raw" / kind, Path(tmp) / "processed"
        as_of, end, truth_model, truth = _shop(kind, raw, customers, seed)
        clean.run(processed, end, cfg, raw_dir=raw)
        res = clv.run(processed, as_of, cfg)
        ends = forecast.month_ends(as_of, 12)
        fit, _ = forecast.forecast_fit(res, cfg.clv)
        ex = forecast.existing_forecast(res.scores, fit, res.gamma_gamma, as_of, ends, cfg.clv.time_unit,
                                        cfg.forecast.draws, cfg.forecast.seed,
                                        model_error=forecast.holdout_error(res.comparison, fit.name))
        draws = ex.draws["purchases"].sum(axis=1)
        low, high = forecast.band_of(draws, band)
        pred = float(ex.centre["purchases"].sum())
        s = res.scores
        true_fit = Fit(truth_model, clv._lifetimes_object(truth_model, truth, 0.0, pd.DataFrame()), truth, 0.0)
        t12 = (ends[-1] - dt.date.fromisoformat(as_of)).days
        expect = float(expected_purchases(true_fit, t12, s["frequency"], s["recency"], s["T"]).sum())
        con = engine.connect(cfg.engine)
        periods = purchase_periods(artifacts.table(con, processed, "orders_clean"), end).to_pandas()
        cut = (dt.date.fromisoformat(as_of) - dt.date(1970, 1, 5)).days
        actual = float(periods[(periods["period"] > cut) & periods["customer_id"].isin(s["customer_id"])].shape[0])
        return {"shop": kind, "seed": seed, "model": fit.name, "forecast": pred, "low": float(low),
                "high": float(high), "truth_expectation": expect, "actual": actual}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=40)
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--shops", default="demo,pareto_nbd")
    ap.add_argument("--out", default=None, help="write the per-seed rows to this CSV")
    args = ap.parse_args(argv)
    cfg = load_config(ROOT / "config" / "default.yml")
    band = cfg.forecast.band
    rows = []
    for kind in args.shops.split(","):
        for seed in range(1, args.seeds + 1):
            t0 = time.perf_counter()
            r = one(kind, seed, args.customers, cfg, band)
            rows.append(r)
            print(f"{kind} seed {seed:2d} ({r['model']}): forecast {r['forecast']:,.0f} "
                  f"[{r['low']:,.0f}, {r['high']:,.0f}], truth's expectation {r['truth_expectation']:,.0f}, "
                  f"realised {r['actual']:,.0f}  ({time.perf_counter() - t0:.0f} s)", flush=True)
    df = pd.DataFrame(rows)
    if args.out:
        df.to_csv(args.out, index=False)
    print()
    for kind, g in df.groupby("shop", sort=False):
        vs_truth = (g["forecast"] / g["truth_expectation"] - 1) * 100
        vs_real = (g["forecast"] / g["actual"] - 1) * 100
        covered = int(((g["low"] <= g["actual"]) & (g["actual"] <= g["high"])).sum())
        width = ((g["high"] - g["low"]) / g["forecast"] * 100).median()
        print(f"{kind}: {len(g)} seeds, {args.customers:,} customers; 12-month purchases of existing customers: "
              f"median error vs the truth's expectation {vs_truth.median():+.2f} % (median |error| "
              f"{vs_truth.abs().median():.2f} %), vs realised {vs_real.median():+.2f} %; the {band:.0%} band "
              f"(median width {width:.1f} % of the forecast) covered the realised value in {covered} of {len(g)}; "
              f"the truth's expectation vs realised {((g['truth_expectation'] / g['actual'] - 1) * 100).median():+.2f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
