"""The win-back measurement checked against the demo shop's truth (tests and scripts/winback_coverage.py).

The demo campaign (helpers/demo.py) gives each customer type its own true uplift, among them a type
where the discount does nothing. Here the pipeline measures it the way notebook 06 does - from the
cleaned order lines and campaigns.csv only - with the types re-derived from the data on the day before
sending, and each interval is compared with the truth stored in truth.json.
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


def true_uplift_pp(campaign_truth: dict, arm: str, group: str) -> float:
    """Expected uplift in P(order in window), in pp: per type from truth.json; for 'all' the mean
    over types weighted by the arm's customers of each type."""
    true, n = campaign_truth["true_uplift_purchase_prob"], campaign_truth["n_per_type_arm"]
    if group != "all":
        return 100 * true[group][arm]
    return 100 * sum(true[t][arm] * n[t][arm] for t in true) / sum(n[t][arm] for t in true)


def coverage(measured: pd.DataFrame, campaign_truth: dict) -> pd.DataFrame:
    """The measured rows with the truth beside them and whether the interval holds it (`covered`)."""
    out = measured[["arm", "segment", "n_treated", "n_control", "uplift_pp", "uplift_low", "uplift_high"]].copy()
    out["truth_pp"] = [round(true_uplift_pp(campaign_truth, a, g), 4) for a, g in zip(out["arm"], out["segment"])]
    out["covered"] = (out["uplift_low"] <= out["truth_pp"]) & (out["truth_pp"] <= out["uplift_high"])
    return out.reset_index(drop=True)
