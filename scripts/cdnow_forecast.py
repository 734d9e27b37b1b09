"""The forecast of existing customers (helpers.forecast) on lifetimes' CDNOW log, against what the log shows.

    .venv/bin/python scripts/cdnow_forecast.py [--customers N]

Fader & Hardie's CDNOW master log (23,570 customers whose first purchase fell in Q1 1997, followed to
1998-06-30; ``--customers`` keeps the first N in file order) is converted as scripts/cdnow_to_raw.py does,
cleaned to 1998-06-30 with config/cdnow.yml, modelled by helpers.clv at 1997-09-30 (its holdout comparison
and final fit on the history up to then) and forecast for the 9 calendar months after it: 1997-10-01 to
1998-06-30, the classic 39-week holdout. Printed: the forecast with its band, the model it used and the
purchases (days with a purchase) the same customers made in those 39 weeks, per month and in total.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

import cdnow_to_raw  # noqa: E402
from helpers import artifacts, clean, clv, engine, forecast  # noqa: E402
from helpers.config import load_config  # noqa: E402

AS_OF, END, MONTHS = "1997-09-30", "1998-06-30", 9


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=None, help="keep the first N customers of the log")
    args = ap.parse_args(argv)
    cfg = load_config(ROOT / "config" / "cdnow.yml")
    with tempfile.TemporaryDirectory() as tmp:
        raw, processed = Path(tmp) / "raw" / "cdnow", Path(tmp) / "processed" / "cdnow" / "1997-09"
        cdnow_to_raw.main(["--out", str(raw)] + (["--customers", str(args.customers)] if args.customers else []))
        clean.run(processed, END, cfg, raw_dir=raw)
        res = clv.run(processed, AS_OF, cfg)
        fit, why = forecast.forecast_fit(res, cfg.clv)
        ends = forecast.month_ends(AS_OF, MONTHS)
        ex = forecast.existing_forecast(res.scores, fit, res.gamma_gamma, AS_OF, ends, cfg.clv.time_unit,
                                        cfg.forecast.draws, cfg.forecast.seed,
                                        model_error=forecast.holdout_error(res.comparison, fit.name))
        activity = forecast.monthly_activity(artifacts.table(engine.connect(cfg.engine), processed, "orders_clean"),
                                             END, cfg.clv.time_unit)
    cut = pd.Period(AS_OF, "M")
    after = activity[(activity["month"] > cut) & (activity["first_month"] <= cut)]
    actual = after.groupby("month")["purchases"].sum().reindex(pd.period_range(cut + 1, cut + MONTHS, freq="M"),
                                                                fill_value=0)
    band = cfg.forecast.band
    lo, hi = forecast.band_of(ex.draws["purchases"].sum(axis=1), band)
    print(f"CDNOW, {len(res.scores):,} customers, models fitted on the log up to {AS_OF}; forecast model "
          f"{clv.MODEL_NAMES[fit.name]} (CLV's: {clv.MODEL_NAMES[res.final.name]}). {why}")
    print(pd.DataFrame({"forecast": ex.centre["purchases"].round(0), "actual": actual.to_numpy()},
                       index=[str(p) for p in actual.index]).to_string())
    total, real = float(ex.centre["purchases"].sum()), float(actual.sum())
    print(f"39 weeks ({ends[0].replace(day=1)} to {ends[-1]}): forecast {total:,.0f} purchases "
          f"({band:.0%} band {lo:,.0f} to {hi:,.0f}), the log shows {real:,.0f}: error {100 * (total / real - 1):+.1f} %, "
          f"{'inside' if lo <= real <= hi else 'outside'} the band.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
