"""How often the measured win-back uplift intervals hold the demo truth, over many demo shops.

One demo shop is one draw: its 95 % intervals each miss the truth with 5 % probability, so a shop with
8 intervals has one miss now and then. This script generates the demo shop with many seeds, cleans
each and measures the campaign as notebook 06 does (tests/demo_campaign.py) against the generator's
records (helpers/demo_truth.py), and reports per arm and
customer type how often the interval held the truth, the mean error and the spread of the errors in
units of the interval's standard error (1.0 when the intervals are as wide as they should be).

    .venv/bin/python scripts/winback_coverage.py --seeds 0:100 --jobs 2
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from demo_campaign import measure_by_type  # noqa: E402
from helpers import clean, demo, demo_truth  # noqa: E402
from helpers.config import load_config  # noqa: E402

AS_OF = "2026-06-30"


def one_seed(seed: int, customers: int, config: str) -> pd.DataFrame:
    """Coverage rows of one demo shop, at the plain 95 % level and at the simultaneous level."""
    with tempfile.TemporaryDirectory(prefix=f"wbcov{seed}_") as tmp:
        truth = demo.generate(Path(tmp) / "raw", customers=customers, seed=seed)["campaign"]
        clean.run(Path(tmp) / "p", AS_OF, load_config(config), raw_dir=Path(tmp) / "raw")
        plain = demo_truth.coverage(measure_by_type(Path(tmp) / "p", truth), truth)
        k = len(plain)
        joint = demo_truth.coverage(measure_by_type(Path(tmp) / "p", truth, level=1 - 0.05 / k), truth)
    plain["covered_simultaneous"] = joint["covered"].to_numpy()
    plain.insert(0, "seed", seed)
    return plain


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """Per arm and type: shops, coverage of the 95 % interval, mean error, spread of error / SE."""
    d = rows.assign(error=rows["uplift_pp"] - rows["truth_pp"],
                    se=(rows["uplift_high"] - rows["uplift_low"]) / (2 * 1.959964))
    d["z"] = d["error"] / d["se"]
    return d.groupby(["arm", "segment"]).agg(
        shops=("seed", "size"), coverage_95=("covered", "mean"), mean_truth_pp=("truth_pp", "mean"),
        mean_error_pp=("error", "mean"), mean_halfwidth_pp=("se", lambda s: 1.959964 * s.mean()),
        error_sd_in_se=("z", "std")).round(3)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0:100", help="first:last (last excluded)")
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--config", default=str(ROOT / "config/default.yml"))
    ap.add_argument("--out", help="CSV of every interval (one row per seed, arm and type)")
    args = ap.parse_args(argv)
    first, last = (int(x) for x in args.seeds.split(":"))
    t0, parts = time.time(), []
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(one_seed, s, args.customers, args.config) for s in range(first, last)]
        for i, f in enumerate(futures, 1):
            parts.append(f.result())
            print(f"\r{i}/{len(futures)} shops measured ({time.time() - t0:.0f} s)", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    rows = pd.concat(parts, ignore_index=True)
    if args.out:
        rows.to_csv(args.out, index=False)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(summarise(rows).to_string())
    per_shop = rows.groupby("seed")
    print(json.dumps({
        "shops": int(rows["seed"].nunique()), "customers": args.customers, "intervals_per_shop": int(per_shop.size().iloc[0]),
        "coverage_95_overall": round(float(rows["covered"].mean()), 4),
        "shops_with_every_95_interval_covering": round(float(per_shop["covered"].all().mean()), 4),
        "shops_with_every_simultaneous_interval_covering": round(float(per_shop["covered_simultaneous"].all().mean()), 4),
        "seconds": round(time.time() - t0, 1)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
