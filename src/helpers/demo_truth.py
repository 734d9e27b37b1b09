"""The demo campaign's truth, counted from the generator's own records (tests and scripts/winback_coverage.py).

The demo campaign (helpers/demo.py) gives each customer type its own true uplift, among them a type
where the discount does nothing, and records per type and arm how many customers it mailed and how many
of them bought in the window (``truth.json``, key ``campaign``). This module reads those records only:
it counts, it does not measure, so it shares no code with the win-back stage it is used to check
(tests/demo_campaign.py measures the campaign the way notebook 06 does, and the tests compare the two).
"""
from __future__ import annotations

import pandas as pd

CONTROL = "control"
COUNT_COLUMNS = ["arm", "segment", "customers", "buyers", "rate", "realised_uplift_pp", "truth_pp"]


def true_uplift_pp(campaign_truth: dict, arm: str, group: str) -> float:
    """Expected uplift in P(order in window), in pp: per type from truth.json; for 'all' the mean
    over types weighted by the arm's customers of each type."""
    true, n = campaign_truth["true_uplift_purchase_prob"], campaign_truth["n_per_type_arm"]
    if group != "all":
        return 100 * true[group][arm]
    return 100 * sum(true[t][arm] * n[t][arm] for t in true) / sum(n[t][arm] for t in true)


def campaign_counts(campaign_truth: dict) -> pd.DataFrame:
    """Per arm (control included) and group (each customer type, and 'all'): the customers mailed, the
    buyers in the window and their rate, as the generator recorded them; for a treatment arm also the
    realised uplift over control in pp (the difference of the two rates) and the expected one (truth_pp)."""
    n, buyers = campaign_truth["n_per_type_arm"], campaign_truth["buyers_per_type_arm"]
    arms = sorted({a for per_type in n.values() for a in per_type})
    rows = []
    for group in [*sorted(n), "all"]:
        types = list(n) if group == "all" else [group]
        sizes = {a: sum(n[t][a] for t in types) for a in arms}
        bought = {a: sum(buyers[t][a] for t in types) for a in arms}
        for arm in arms:
            rate = bought[arm] / sizes[arm] if sizes[arm] else float("nan")
            treated = arm != CONTROL and sizes[CONTROL] > 0
            rows.append({
                "arm": arm, "segment": group, "customers": sizes[arm], "buyers": bought[arm], "rate": rate,
                "realised_uplift_pp": 100 * (rate - bought[CONTROL] / sizes[CONTROL]) if treated else float("nan"),
                "truth_pp": true_uplift_pp(campaign_truth, arm, group) if arm != CONTROL else float("nan"),
            })
    return pd.DataFrame(rows, columns=COUNT_COLUMNS)


def coverage(measured: pd.DataFrame, campaign_truth: dict) -> pd.DataFrame:
    """The measured rows with the truth beside them and whether the interval holds it (`covered`)."""
    out = measured[["arm", "segment", "n_treated", "n_control", "uplift_pp", "uplift_low", "uplift_high"]].copy()
    out["truth_pp"] = [round(true_uplift_pp(campaign_truth, a, g), 4) for a, g in zip(out["arm"], out["segment"])]
    out["covered"] = (out["uplift_low"] <= out["truth_pp"]) & (out["truth_pp"] <= out["uplift_high"])
    return out.reset_index(drop=True)
