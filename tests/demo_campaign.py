"""The demo campaign measured the way notebook 06 does, per demo customer type (tests and
scripts/winback_coverage.py); helpers/demo_truth.py holds what it is compared with.

Only the cleaned order lines and campaigns.csv are read: the types are re-derived from the data on the
day before sending, with the generator's own rule (`helpers.demo.campaign_type`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from helpers import artifacts, customer_facts, demo, winback
from helpers.engine import connect


def measure_by_type(processed_dir: str | Path, campaign_truth: dict, level: float = 0.95) -> pd.DataFrame:
    """winback.measure_uplift per arm and per demo customer type (segment column = type or 'all')."""
    con = connect()
    lines = artifacts.table(con, processed_dir, "orders_clean")
    camp = artifacts.table(con, processed_dir, "campaigns_clean")
    out = winback.campaign_outcomes(lines, camp, campaign_truth["window_days"])
    cutoff = (pd.Timestamp(campaign_truth["sent_date"]) - pd.Timedelta(days=1)).strftime("%Y-%m-%d")
    feats = customer_facts.features_at(lines, cutoff, {}).select(
        "customer_id", "recency_days", "avg_order_value").to_pandas()
    out = out.merge(feats.astype({"customer_id": str}), on="customer_id", how="left")
    # recency_days counts from the end of the cut-off day: its ceiling is sent date - day of the last order
    out["type"] = demo.campaign_type(np.ceil(out["recency_days"] - 1e-9), out["avg_order_value"])
    return winback.measure_uplift(out, by="type", level=level)
