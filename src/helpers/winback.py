"""Win-back discounts (stage 06): measured uplift, simulated profit, the plan and the contact list.

Measured uplift (past campaigns, ``campaigns_clean``)
-----------------------------------------------------
A customer of a campaign *converted* if they placed a purchase (an order line that is not a return)
dated in ``[sent_date, sent_date + winback.window_days days)``. Per campaign, each arm other than
``control`` is compared with that campaign's control arm: conversion rates, their difference in
percentage points and a 95 % interval for the difference by **Newcombe's hybrid score method**
(Newcombe 1998, Statistics in Medicine 17, method 10: Wilson score intervals of each rate,
combined), which keeps its coverage at the low conversion rates of win-back campaigns where the
Wald interval is too narrow. A 0 % arm (a plain reminder e-mail) is measured like any other arm.
The same is done per RFM segment *at the day before sending* (RFM at that cut-off, the config's
segment grid), so no outcome leaks into the grouping.

Per-customer uplift: a two-model (T-learner) approach - one gradient-boosting classifier on the
treated arm, one on control, uplift = P(convert | treated, x) - P(convert | control, x) - on the
churn stage's features computed at the day before sending (`helpers.churn.feature_frame`), trained
on part of the customers and judged on the held-out rest by a Qini curve (`qini_curve`) and its
area against random targeting (`qini_auc`).

Simulation of the next campaign (candidates at ``as_of``)
--------------------------------------------------------
Candidates bought before and are in ``winback.candidate_segments`` (RFM at as_of) or in a
``winback.candidate_risk_tiers`` churn tier. Per candidate: baseline probability p0 of an order
within the window (the CLV stage's purchase model), expected order value v (CLV stage, Gamma-Gamma).
An option adds an uplift u to the probability, p1 = clip(p0 + u, 0, 1); u is the measured uplift
of the customer's segment at that discount (the arm's overall value when the segment has fewer
than ``min_group_customers`` per arm) or, where no campaign measured that discount, the configured
assumption ``assumed_uplift`` (sd = ``assumed_uplift_sd_share`` x value), said so in the plan's
``uplift_source``. Money per contacted customer, with m = ``clv.gross_margin``, d = discount,
c = ``contact_cost``::

    incremental revenue = (p1 - p0) v           (at full price)
    discount cost       = d v p1                (every redeemed order, including buyers who
                                                 would have bought anyway: cannibalisation)
    incremental profit  = m (p1 - p0) v - d v p1 - c

Monte Carlo (``draws``, ``seed``): per draw and (segment, option), u is drawn from its normal
distribution and the segment's sums over customers are exact given u (sorted cumulative sums);
which customers actually buy adds the normal approximation of a sum of Bernoulli outcomes. The
5-95 % band of incremental profit covers both.

Control group and campaign plan (closed loop)
---------------------------------------------
The contact list is split at random, within each segment, into the customers who get their offer and a
control group who get nothing, so the campaign can be measured the months after (this module's measured
uplift, and ``helpers.track``'s "did it work"). The control group's size comes from a power calculation
for the difference of two proportions (two-sided z test, unpooled variance under the alternative; Fleiss,
Levin & Paik 2003, *Statistical Methods for Rates and Proportions*, 3rd ed., section 4.4, unequal group
sizes)::

    p1 = p0 + delta,  pbar = (n_t p1 + n_c p0) / (n_t + n_c)
    power(n_t, n_c) = Phi( (delta - z_{1-alpha/2} sqrt(pbar (1 - pbar) (1/n_t + 1/n_c)))
                           / sqrt(p1 (1 - p1) / n_t + p0 (1 - p0) / n_c) )

with p0 the base conversion (share of uncontacted candidates buying within ``window_days``: measured in
past campaigns' control arms, else ``control_base_conversion``), delta = ``control_min_detectable_uplift``,
alpha = ``control_alpha``. The control group is the smallest n_c (n_t = list size - n_c) whose power
reaches ``control_power``, at most ``control_max_share`` of the list; the report says which uplift the
chosen split detects with that power. ``campaign_plan.csv`` holds both arms in the campaigns.csv layout.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.stats import norm
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder
from threadpoolctl import threadpool_limits

from helpers import artifacts, churn, customer_facts, engine, offers
from helpers.customer_facts import EFFECT_WORDS, effect_basis, measured_profit  # noqa: F401  (the page reads them here)
from helpers.config import Config
from helpers.engine import connect, cutoff_end

Z95 = 1.959963984540054
CONTROL = "control"
NO_CONTACT, REMINDER = "no contact", "contact, no discount"
MEASURED_COLUMNS = artifacts.ARTIFACTS["winback_measured"].columns
PLAN_COLUMNS = artifacts.ARTIFACTS["winback_plan"].columns
TARGET_COLUMNS = artifacts.ARTIFACTS["winback_targets"].columns
# what win-back reads of the CLV stage's clv.parquet (declared columns; horizons in clv_model.json)
CLV_COLUMNS = ["customer_id", "frequency", "T", "p_alive", "p_purchase", "exp_avg_value"]


def option_label(discount: float | None) -> str:
    """None -> 'no contact', 0 -> 'contact, no discount', 0.1 -> '10% off'."""
    if discount is None or (isinstance(discount, float) and math.isnan(discount)):
        return NO_CONTACT
    return REMINDER if discount == 0 else f"{discount:.0%} off"


# --------------------------------------------------------------------------- campaign outcomes (Ibis)

def campaign_outcomes(lines: ir.Table, campaigns: ir.Table, window_days: int) -> pd.DataFrame:
    """One row per campaign customer: campaign_id, customer_id, sent_date, arm, discount, converted, revenue.

    converted: a purchase line dated in [sent_date, sent_date + window_days days) (returns do not
    count); revenue: the sum of those purchase lines (0 without one). One Ibis expression (a range
    join on the engine); only campaign customers come back.
    """
    c = campaigns.select("campaign_id", "customer_id", "sent_date", "arm", "discount")
    p = lines.filter(~lines.is_return).select(buyer="customer_id", ts="order_date", line_amount="amount")
    j = c.left_join(p, [c.customer_id == p.buyer, p.ts >= c.sent_date,
                        p.ts < c.sent_date + ibis.interval(days=int(window_days))])
    g = j.group_by(["campaign_id", "customer_id", "sent_date", "arm", "discount"]).aggregate(
        converted=j.buyer.notnull().any(), revenue=j.line_amount.sum().fill_null(0))
    out = engine.to_pandas(g)
    out["revenue"] = out["revenue"].astype(float).round(2)
    out["customer_id"] = out["customer_id"].astype(str)
    out["arm"] = out["arm"].astype(str)
    out["discount"] = out["discount"].astype(float).round(6)
    out["converted"] = out["converted"].astype(bool)
    return out.sort_values(["campaign_id", "customer_id"], ignore_index=True)


@dataclass
class CampaignFrame:
    """One row per campaign customer (`frame`) and the names of its model feature columns (`features`)."""

    frame: pd.DataFrame
    features: list[str] = field(default_factory=list)


def campaign_frame(lines: ir.Table, campaigns: ir.Table, cfg: Config, customers: ir.Table | None = None,
                   bgnbd: bool = False) -> CampaignFrame:
    """`campaign_outcomes` plus, per customer, the churn stage's features and the RFM segment at the
    day before sending (only order lines dated before sent_date): the input of every measurement.

    Columns of ``frame``: the outcome columns, segment, then the feature columns (``features``).
    A campaign customer without any purchase before sending gets segment 'no purchase before'.
    """
    frame = campaign_segments(lines, campaigns, cfg)
    return add_campaign_features(frame, lines, cfg, customers, bgnbd)


def campaign_segments(lines: ir.Table, campaigns: ir.Table, cfg: Config) -> pd.DataFrame:
    """`campaign_outcomes` plus each customer's RFM segment at the day before sending: everything the
    measured uplift needs, and nothing a model could fail on. A campaign customer without any purchase
    before sending gets segment 'no purchase before'."""
    out = campaign_outcomes(lines, campaigns, cfg.winback.window_days)
    parts = []
    for sent, grp in out.groupby("sent_date", sort=True):
        rfm = customer_facts.rfm_scores(customer_facts.rfm_table(lines, _day_before(sent)))
        rfm["segment"] = customer_facts.assign_segments(rfm, cfg.segments).astype(str)
        rfm["customer_id"] = rfm["customer_id"].astype(str)
        g = grp.merge(rfm[["customer_id", "segment"]], on="customer_id", how="left")
        g["segment"] = g["segment"].fillna("no purchase before")
        parts.append(g)
    return pd.concat(parts, ignore_index=True) if parts else out.assign(segment=pd.Series(dtype=str))


def add_campaign_features(frame: pd.DataFrame, lines: ir.Table, cfg: Config, customers: ir.Table | None = None,
                          bgnbd: bool = False) -> CampaignFrame:
    """`campaign_segments`' rows plus the churn stage's features at the day before sending."""
    parts, feats = [], []
    for sent, grp in frame.groupby("sent_date", sort=True):
        cutoff = _day_before(sent)
        levels = customer_facts.mix_levels(lines, cutoff, cfg.churn.mix_levels)  # over every customer's orders
        # Without BG/NBD every feature is one customer's own (customer_facts.features_at): only the order
        # lines of this send's customers are read, not the whole shop's at every send date.
        mine = lines if bgnbd else _lines_of(lines, grp["customer_id"])
        f = churn.feature_frame(mine, cutoff, levels, cfg, customers, bgnbd=bgnbd)
        parts.append(grp.merge(f, on="customer_id", how="left"))
        feats = [c for c in f.columns if c != "customer_id"]
    return CampaignFrame(pd.concat(parts, ignore_index=True) if parts else frame, feats)


def _lines_of(lines: ir.Table, customer_ids: pd.Series) -> ir.Table:
    """The order lines of `customer_ids` only (a semi join with a small in-memory table of ids)."""
    ids = customer_facts.ids_table(customer_ids)
    return lines.semi_join(ids, lines.customer_id.cast("string") == ids._id)


def _day_before(sent) -> str:
    return (pd.Timestamp(sent).normalize() - timedelta(days=1)).strftime("%Y-%m-%d")


# --------------------------------------------------------------------------- intervals and measured uplift

def wilson_interval(x: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion x / n."""
    if n <= 0:
        return (0.0, 1.0)
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def uplift_interval(x1: float, n1: float, x0: float, n0: float, z: float = Z95) -> tuple[float, float, float]:
    """(p1 - p0, low, high): difference of two proportions with Newcombe's hybrid score interval
    (method 10): low = d - sqrt((p1 - l1)^2 + (u0 - p0)^2), high = d + sqrt((u1 - p1)^2 + (p0 - l0)^2),
    with (l, u) the Wilson intervals of each rate."""
    if n1 <= 0 or n0 <= 0:
        return (float("nan"),) * 3
    p1, p0 = x1 / n1, x0 / n0
    l1, u1 = wilson_interval(x1, n1, z)
    l0, u0 = wilson_interval(x0, n0, z)
    d = p1 - p0
    return (d, d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2))


def measure_uplift(frame: pd.DataFrame, by: str = "segment", level: float = 0.95) -> pd.DataFrame:
    """Per campaign, treatment arm and group of `by` (plus ``all`` for the whole arm): sizes,
    conversion rates, uplift in percentage points and its 95 % Newcombe interval (MEASURED_COLUMNS).

    Input: one row per campaign customer with campaign_id, arm, discount, converted and `by`.
    The control arm is the arm named 'control' of the same campaign; a campaign without one is skipped.
    `level`: the intervals' coverage (0.95; a test of k groups at once may ask 1 - 0.05 / k).
    """
    z = float(norm.ppf(0.5 + level / 2))
    rows = []
    for cid, camp in frame.groupby("campaign_id", sort=True):
        ctrl = camp[camp["arm"].str.lower() == CONTROL]
        if ctrl.empty:
            continue
        for arm, grp in camp[camp["arm"].str.lower() != CONTROL].groupby("arm", sort=True):
            groups = [("all", grp, ctrl)]
            if by in frame.columns:
                groups += [(str(s), grp[grp[by] == s], ctrl[ctrl[by] == s]) for s in sorted(set(grp[by]) | set(ctrl[by]))]
            for seg, t, c in groups:
                if t.empty or c.empty:  # a segment found in one arm only: nothing to compare
                    continue
                x1, n1, x0, n0 = int(t["converted"].sum()), len(t), int(c["converted"].sum()), len(c)
                d, lo, hi = uplift_interval(x1, n1, x0, n0, z)
                rev = (mean_difference(t["revenue"], c["revenue"], z) if "revenue" in frame.columns
                       else (np.nan,) * 5)
                rows.append({"campaign_id": cid, "arm": arm, "discount": float(grp["discount"].iloc[0]), "segment": seg,
                             "n_treated": n1, "n_control": n0,
                             "conv_treated": round(x1 / n1, 6) if n1 else np.nan,
                             "conv_control": round(x0 / n0, 6) if n0 else np.nan,
                             "uplift_pp": round(100 * d, 4), "uplift_low": round(100 * lo, 4),
                             "uplift_high": round(100 * hi, 4),
                             **dict(zip(REVENUE_COLUMNS, np.round(rev, 4)))})
    return pd.DataFrame(rows, columns=MEASURED_COLUMNS)


REVENUE_COLUMNS = ["revenue_treated", "revenue_control", "revenue_uplift", "revenue_uplift_low", "revenue_uplift_high"]


def mean_difference(treated, control, z: float = Z95) -> tuple[float, float, float, float, float]:
    """(mean treated, mean control, difference, low, high): revenue per customer of two arms and the
    difference's normal-approximation (Welch) interval, se = sqrt(s1^2 / n1 + s0^2 / n0). Revenue per
    customer is mostly zeros and a few orders; with hundreds of customers per arm the mean is close to
    normal. NaN where an arm has fewer than two customers."""
    t, c = np.asarray(treated, dtype=float), np.asarray(control, dtype=float)
    if len(t) < 2 or len(c) < 2:
        return (float(t.mean()) if len(t) else np.nan, float(c.mean()) if len(c) else np.nan, np.nan, np.nan, np.nan)
    d = t.mean() - c.mean()
    se = math.sqrt(t.var(ddof=1) / len(t) + c.var(ddof=1) / len(c))
    return (float(t.mean()), float(c.mean()), float(d), float(d - z * se), float(d + z * se))


# --------------------------------------------------------------------------- Qini and T-learner

def qini_curve(y, treated, score) -> pd.DataFrame:
    """Qini curve of a ranking by `score` (highest first), with ties taken as one block.

    Row k: n (customers targeted), qini = Y_t(k) - Y_c(k) * N_t(k) / N_c(k) (treated conversions minus
    control conversions scaled to the treated count; 0 while no control customer is included) and
    random = the straight line from 0 to the final qini. Starts with a row n = 0.
    """
    y, t, s = (np.asarray(a, dtype=float) for a in (y, treated, score))
    order = np.argsort(-s, kind="stable")
    y, t, s = y[order], t[order], s[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1] if len(s) else np.array([], int)
    yt, yc = np.cumsum(y * t)[last], np.cumsum(y * (1 - t))[last]
    nt, nc = np.cumsum(t)[last], np.cumsum(1 - t)[last]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(nc > 0, yt - yc * nt / np.where(nc > 0, nc, 1), 0.0)
    n = np.r_[0, last + 1].astype(float)
    q = np.r_[0.0, q]
    rand = q[-1] * n / n[-1] if len(n) > 1 and n[-1] > 0 else np.zeros_like(n)
    return pd.DataFrame({"n": n, "qini": q, "random": rand})


def qini_auc(curve: pd.DataFrame) -> dict:
    """Areas under a `qini_curve` with x = share of customers targeted (0..1), trapezoid rule:
    auuc (the model's curve), random (the diagonal, = final qini / 2) and qini_coefficient = auuc - random."""
    if len(curve) < 2 or curve["n"].iloc[-1] <= 0:
        return {"auuc": 0.0, "random": 0.0, "qini_coefficient": 0.0}
    x = curve["n"].to_numpy() / curve["n"].iloc[-1]
    area = float(np.sum(np.diff(x) * (curve["qini"].to_numpy()[1:] + curve["qini"].to_numpy()[:-1]) / 2))
    rand = float(curve["qini"].iloc[-1] / 2)
    return {"auuc": area, "random": rand, "qini_coefficient": area - rand}


def _uplift_model(numeric: list[str], categorical: list[str], seed: int):
    """Small, strongly regularised gradient boosting (conversions are rare) behind churn's encoding."""
    enc = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan)
    prep = ColumnTransformer([("cat", enc, categorical), ("num", "passthrough", numeric)],
                             verbose_feature_names_out=False)
    hgb = HistGradientBoostingClassifier(max_iter=60, learning_rate=0.05, max_depth=3, min_samples_leaf=40,
                                         l2_regularization=1.0, categorical_features=list(range(len(categorical))) or None,
                                         early_stopping=False, random_state=seed)
    return Pipeline([("prepare", prep), ("boost", hgb)])


def holdout_split(frame: pd.DataFrame, share: float, seed: int) -> np.ndarray:
    """Boolean mask of held-out rows: a share of each (arm, converted) stratum, fixed by the seed."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(frame), dtype=bool)
    for _, idx in frame.groupby(["arm", "converted"], sort=True).indices.items():
        k = int(round(share * len(idx)))
        mask[rng.permutation(idx)[:k]] = True
    return mask


@dataclass
class UpliftModels:
    """T-learner result per treatment arm: held-out Qini curves, areas and per-customer scores."""

    curves: dict = field(default_factory=dict)  # arm -> qini_curve frame (held-out customers)
    areas: pd.DataFrame = field(default_factory=pd.DataFrame)  # index arm; auuc, random, qini_coefficient, n_holdout
    note: str = ""


def t_learner(frame: pd.DataFrame, features: list[str], cfg: Config) -> UpliftModels:
    """Per treatment arm of the latest campaign: fit P(convert | x) on its treated and on the control
    training customers, score held-out customers by the difference, and evaluate with the Qini curve.

    `frame`: `campaign_frame`'s rows; `features`: its feature columns (text columns are categorical)."""
    feats = list(features)
    if frame.empty or not feats:
        return UpliftModels(note="No campaign with features: no per-customer uplift model.")
    latest = frame.loc[frame["sent_date"] == frame["sent_date"].max(), "campaign_id"].max()
    camp = frame[frame["campaign_id"] == latest].reset_index(drop=True)
    hold = holdout_split(camp, cfg.winback.holdout_share, cfg.winback.seed)
    is_ctrl = camp["arm"].str.lower() == CONTROL
    curves, rows = {}, {}
    for arm in sorted(set(camp.loc[~is_ctrl, "arm"])):
        # A column empty in either training set is no feature: gradient boosting's binning fails on
        # it ("window shape cannot be larger than input array shape"); both models use the same columns.
        train_sets = (camp["arm"] == arm) & ~hold, is_ctrl & ~hold
        usable = [c for c in feats if all(camp.loc[sel, c].notna().any() for sel in train_sets)]
        cat = [c for c in usable if not pd.api.types.is_numeric_dtype(frame[c])]
        num = [c for c in usable if c not in cat]
        fits = {}
        for name, sel in (("t", camp["arm"] == arm), ("c", is_ctrl)):
            tr = camp[sel & ~hold]
            if tr["converted"].nunique() < 2:
                fits = None
                break
            fits[name] = _uplift_model(num, cat, cfg.winback.seed).fit(tr[cat + num], tr["converted"].astype(int))
        if fits is None:
            continue
        ho = camp[hold & ((camp["arm"] == arm) | is_ctrl)]
        if ho.empty:  # winback.holdout_share near 0 holds nobody out: nothing to judge the model on
            continue
        score = fits["t"].predict_proba(ho[cat + num])[:, 1] - fits["c"].predict_proba(ho[cat + num])[:, 1]
        curve = qini_curve(ho["converted"].astype(int), (ho["arm"] == arm).astype(int), np.round(score, 9))
        curves[arm] = curve
        rows[arm] = {**qini_auc(curve), "n_holdout": len(ho)}
    if not rows:
        return UpliftModels(note=(
            f"No per-customer uplift model on campaign {latest}: of its customers {int((~hold).sum()):,} are left to "
            f"train on and {int(hold.sum()):,} held out to judge it (winback.holdout_share "
            f"{cfg.winback.holdout_share:.0%}), and no offer arm had buyers and non-buyers to train on in both arms "
            f"and customers to judge it on."))
    areas = pd.DataFrame.from_dict(rows, orient="index")
    areas.index.name = "arm"
    note = (f"T-learner on campaign {latest}: trained on {int((~hold).sum()):,} customers, judged on "
            f"{int(hold.sum()):,} held out.")
    return UpliftModels(curves=curves, areas=areas.round(3), note=note)


# --------------------------------------------------------------------------- candidates at as_of

def baseline_probability(clv_scores: pd.DataFrame, clv_card: dict, window_days: int,
                         purchase_window_days: int = 90) -> pd.Series:
    """P(at least one order in the next `window_days` days) per customer, from the CLV stage.

    BG/NBD and MBG/NBD (clv_model.json params, clv.parquet frequency and T in clv.time_unit):
    p_alive x (1 - ((alpha + T) / (alpha + T + t))^(r + x)), the closed form of
    `customer_facts.probability_of_purchase`. Pareto/NBD: clv.parquet's p_purchase (over
    clv_model.json's ``purchase_window_days``; `purchase_window_days`, the clv config's value, when
    an older model card lacks it) rescaled as 1 - (1 - p)^(window / purchase window) (an
    approximation, constant hazard).
    """
    unit = 7 if clv_card.get("time_unit") == "week" else 1
    t = window_days / unit
    model, params = clv_card.get("model"), clv_card.get("params", {})
    if model in ("bgnbd", "mbgnbd") and {"r", "alpha"} <= set(params):
        buy = customer_facts.buy_if_alive(params, t, clv_scores["frequency"], clv_scores["T"])
        p = clv_scores["p_alive"].astype(float) * buy
    else:
        w = float(clv_card.get("purchase_window_days", purchase_window_days))
        p = 1 - (1 - clv_scores["p_purchase"].astype(float)) ** (window_days / w)
    return p.fillna(0.0).clip(0, 1).rename("p_baseline")


def candidates(seg: pd.DataFrame, scores: pd.DataFrame, clv_scores: pd.DataFrame, clv_card: dict,
               cfg: Config) -> pd.DataFrame:
    """Win-back candidates at as_of: customer_id, segment (RFM at as_of), risk_tier, p_baseline
    (order within the window without contact), order_value (expected average order value), reason.

    A candidate bought before (is in segments.parquet) and is in a candidate segment or risk tier."""
    wb = cfg.winback
    s = seg[["customer_id", "rfm_segment"]].rename(columns={"rfm_segment": "segment"}).astype({"customer_id": str})
    s["segment"] = s["segment"].astype(str)
    r = scores[["customer_id", "risk_tier"]].astype({"customer_id": str, "risk_tier": str})
    c = clv_scores.assign(customer_id=clv_scores["customer_id"].astype(str))
    c = c.assign(p_baseline=baseline_probability(c, clv_card, wb.window_days, cfg.clv.purchase_window_days).to_numpy())
    d = s.merge(r, on="customer_id", how="left")
    in_seg, in_tier = d["segment"].isin(wb.candidate_segments), d["risk_tier"].isin(wb.candidate_risk_tiers)
    d = d[in_seg | in_tier].copy()
    d["reason"] = np.where(in_seg[d.index], "segment", "risk tier")
    d = d.merge(c[["customer_id", "p_baseline", "exp_avg_value"]], on="customer_id", how="inner")
    d = d.rename(columns={"exp_avg_value": "order_value"})
    d["order_value"] = d["order_value"].fillna(d["order_value"].median()).astype(float)
    return d.sort_values("customer_id", ignore_index=True)


# --------------------------------------------------------------------------- uplift per segment and option

def options(cfg: Config) -> list[float | None]:
    """The simulated options: None (no contact), 0.0 (contact without discount, if enabled), each level."""
    wb = cfg.winback
    return [None] + ([0.0] if wb.contact_without_discount else []) + [float(x) for x in wb.discount_levels]


def uplift_assumptions(measured: pd.DataFrame, segs: list[str], cfg: Config) -> pd.DataFrame:
    """Uplift (probability: mean, sd, 95 % low/high) per segment and contact option, and its source.

    Measured discounts come from the latest campaign that ran them: the segment's own row if both
    sides have at least ``min_group_customers``, else the arm's ``all`` row; sd from the 95 %
    interval's width. A discount no campaign ran is interpolated linearly (mean and sd) between the
    neighbouring measured discounts, with "contact, no discount" (measured, else assumed) as the
    point at 0 and no extrapolation above the largest measured discount. When only an e-mail without
    discount was measured, a discount's uplift is the measured e-mail uplift plus its assumed effect
    beyond the e-mail's (``assumed_uplift[d] - assumed_uplift[0]``; sds added in quadrature). Without
    any measured campaign, every option uses ``assumed_uplift``. Columns: segment, discount, mean, sd, low, high, source.
    """
    wb = cfg.winback
    assumed = {float(k): float(v) for k, v in wb.assumed_uplift.items()}
    rows = []
    for seg in segs:
        points = _measured_points(measured, seg, wb.min_group_customers)
        for d in options(cfg)[1:]:
            mean, sd, source = _option_uplift(d, points, assumed, wb.assumed_uplift_sd_share)
            rows.append({"segment": seg, "discount": d, "mean": mean, "sd": sd, "low": mean - Z95 * sd,
                         "high": mean + Z95 * sd, "source": source})
    out = pd.DataFrame(rows, columns=["segment", "discount", "mean", "sd", "low", "high", "source"]).astype(
        {"segment": str, "discount": float, "source": str})  # typed also when there is no option or segment
    return _measured_intervals(out, measured)


def _measured_points(measured: pd.DataFrame, seg: str, min_group: int) -> dict:
    """{discount: (mean, sd, source)} of every discount a campaign measured, for segment `seg`: the latest
    campaign's row of the segment when both sides have `min_group` customers, else its row of the whole arm."""
    points = {}
    if measured.empty:
        return points
    for d in sorted(set(measured["discount"].astype(float))):
        m = measured[np.isclose(measured["discount"].astype(float), d)]
        latest = sorted(set(m["campaign_id"]))[-1]
        m = m[m["campaign_id"] == latest]
        own = m[(m["segment"] == seg) & (m["n_treated"] >= min_group) & (m["n_control"] >= min_group)]
        row, where = (own.iloc[0], "this segment") if not own.empty else (m[m["segment"] == "all"].iloc[0], "whole arm")
        points[d] = (row["uplift_pp"] / 100, (row["uplift_high"] - row["uplift_low"]) / 100 / (2 * Z95),
                     f"measured, {where}")
    return points


def _option_uplift(d: float, points: dict, assumed: dict, sd_share: float) -> tuple[float, float, str]:
    """(mean, sd, source) of discount `d`'s uplift: measured (`points`), assumed, the assumed discount
    effect on a measured e-mail, or interpolated between measured discounts (see `uplift_assumptions`)."""
    def assumed_point(d):
        return assumed[d], abs(assumed[d]) * sd_share, "assumed"

    hit = next((k for k in points if np.isclose(k, d)), None)
    if hit is not None:
        return points[hit]
    if not points or d == 0.0:
        return assumed_point(d)
    if max(points) == 0.0 and d in assumed and 0.0 in assumed:
        # Only the message was measured (an e-mail-only campaign): a discount adds its assumed
        # effect beyond the message's, on top of the measured e-mail uplift.
        m0, sd0, _ = points[max(points)]
        extra = assumed[d] - assumed[0.0]
        return m0 + extra, math.hypot(sd0, abs(extra) * sd_share), "assumed discount effect on the measured e-mail"
    anchors = dict(points)
    if not any(np.isclose(k, 0.0) for k in anchors):
        anchors[0.0] = assumed_point(0.0) if 0.0 in assumed else (0.0, 0.0, "zero")
    xs = np.array(sorted(anchors))
    mean = float(np.interp(d, xs, [anchors[x][0] for x in xs]))
    sd = float(np.interp(d, xs, [anchors[x][1] for x in xs]))
    return mean, sd, "interpolated" if d < xs.max() else f"as measured {xs.max():.0%}"


def _measured_intervals(out: pd.DataFrame, measured: pd.DataFrame) -> pd.DataFrame:
    """`out` (uplift_assumptions' rows) with each measured row's low and high from its own (Newcombe) interval."""
    if not measured.empty:
        for i, r in out[out["source"].str.startswith("measured")].iterrows():
            m = measured[np.isclose(measured["discount"].astype(float), r["discount"])]
            m = m[m["campaign_id"] == sorted(set(m["campaign_id"]))[-1]]
            seg_row = m[m["segment"] == (r["segment"] if r["source"].endswith("this segment") else "all")].iloc[0]
            out.loc[i, ["low", "high"]] = [seg_row["uplift_low"] / 100, seg_row["uplift_high"] / 100]
    return out


# --------------------------------------------------------------------------- simulation

def _clipped_sums(p0: np.ndarray, v: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each u: (sum_i clip(p0_i + u, 0, 1), sum_i v_i clip(p0_i + u, 0, 1)), exact, in O(len(u) log n)."""
    order = np.argsort(p0, kind="stable")
    p, w = p0[order], v[order]
    cp, cv, cvp = (np.r_[0.0, np.cumsum(a)] for a in (p, w, w * p))
    n = len(p)
    lo = np.searchsorted(p, -u, side="right")      # p0 + u <= 0: probability 0
    hi = np.searchsorted(p, 1 - u, side="left")    # p0 + u >= 1: probability 1
    hi = np.maximum(hi, lo)
    s1 = (cp[hi] - cp[lo]) + u * (hi - lo) + (n - hi)
    sv = (cvp[hi] - cvp[lo]) + u * (cv[hi] - cv[lo]) + (cv[n] - cv[hi])
    return s1, sv


@dataclass
class Simulation:
    """`simulate`'s result: one row per (segment, option) in `table` (PLAN_COLUMNS except
    recommended) and the Monte Carlo profit draws per (segment, discount) in `draws`."""

    table: pd.DataFrame
    draws: dict = field(default_factory=dict)


def simulate(cands: pd.DataFrame, uplift: pd.DataFrame, cfg: Config) -> Simulation:
    """Monte Carlo of the next campaign per segment and option (see the module docstring).

    ``table``: one row per (segment, option); ``draws``: the profit draws {(segment, discount):
    array}. No contact is all zeros by definition.
    """
    wb, m = cfg.winback, cfg.clv.gross_margin
    rng = np.random.default_rng(wb.seed)
    rows, draws = [], {}
    for seg, grp in cands.groupby("segment", sort=True):
        p0, v = grp["p_baseline"].to_numpy(float), grp["order_value"].to_numpy(float)
        n = len(grp)
        base_b, base_v = p0.sum(), (v * p0).sum()
        sd_anyway = math.sqrt(float((v * v * p0 * (1 - p0)).sum()))
        rms_v = math.sqrt(float((v * v).mean())) if n else 0.0
        rows.append({"segment": seg, "discount": np.nan, "n_customers": n, "uplift_pp": 0.0, "uplift_low": 0.0,
                     "uplift_high": 0.0, "incremental_buyers": 0.0, "incremental_revenue": 0.0, "discount_cost": 0.0,
                     "incremental_profit": 0.0, "profit_p05": 0.0, "profit_p95": 0.0, "roi": np.nan,
                     "option": NO_CONTACT, "uplift_source": "-"})
        draws[(seg, None)] = np.zeros(wb.draws)
        for d in options(cfg)[1:]:
            a = uplift[(uplift["segment"] == seg) & np.isclose(uplift["discount"], d)].iloc[0]
            u = a["mean"] + a["sd"] * rng.standard_normal(wb.draws)
            z1, z2 = rng.standard_normal(wb.draws), rng.standard_normal(wb.draws)
            s1, sv = _clipped_sums(p0, v, u)
            inc_b, inc_rev = s1 - base_b, sv - base_v
            q = np.abs(inc_b) / max(n, 1)
            sd_b = np.sqrt(n * q * (1 - q))        # which customers respond: a sum of Bernoulli outcomes
            inc_b_k = inc_b + z1 * sd_b
            inc_rev_k = inc_rev + z1 * sd_b * rms_v
            disc_k = d * (sv + z1 * sd_b * rms_v + z2 * sd_anyway)
            profit_k = m * inc_rev_k - disc_k - wb.contact_cost * n
            draws[(seg, d)] = profit_k
            # expected values use the mean uplift (exact sums); bands come from the draws
            e1, ev = _clipped_sums(p0, v, np.array([a["mean"]]))
            e_b, e_rev, e_disc = float(e1[0] - base_b), float(ev[0] - base_v), float(d * ev[0])
            e_profit = m * e_rev - e_disc - wb.contact_cost * n
            spend = e_disc + wb.contact_cost * n
            rows.append({"segment": seg, "discount": d, "n_customers": n, "uplift_pp": 100 * a["mean"],
                         "uplift_low": 100 * a["low"], "uplift_high": 100 * a["high"], "incremental_buyers": e_b,
                         "incremental_revenue": e_rev, "discount_cost": e_disc, "incremental_profit": e_profit,
                         "profit_p05": float(np.quantile(profit_k, 0.05)), "profit_p95": float(np.quantile(profit_k, 0.95)),
                         "roi": e_profit / spend if spend > 0 else np.nan, "option": option_label(d),
                         "uplift_source": a["source"]})
            _ = inc_b_k
    if not rows:  # no candidate: the declared columns and types, no rows
        return Simulation(artifacts.empty("winback_plan").drop(columns="recommended"), draws)
    return Simulation(pd.DataFrame(rows), draws)


def customer_profit(cands: pd.DataFrame, uplift: pd.DataFrame, cfg: Config, discount: pd.Series) -> pd.DataFrame:
    """Expected incremental profit and spend of contacting each candidate with `discount` (per
    candidate, aligned to `cands`; NaN = no contact): m v (p1 - p0) - d v p1 - c, mean uplift."""
    wb, m = cfg.winback, cfg.clv.gross_margin
    u = cands[["segment"]].assign(discount=discount.to_numpy()).merge(
        uplift[["segment", "discount", "mean"]], on=["segment", "discount"], how="left")["mean"].to_numpy(float)
    p0, v = cands["p_baseline"].to_numpy(float), cands["order_value"].to_numpy(float)
    d = discount.to_numpy(float)
    contact = ~np.isnan(d)
    p1 = np.clip(p0 + np.nan_to_num(u), 0, 1)
    dd = np.nan_to_num(d)
    profit = np.where(contact, m * v * (p1 - p0) - dd * v * p1 - wb.contact_cost, 0.0)
    spend = np.where(contact, dd * v * p1 + wb.contact_cost, 0.0)
    return pd.DataFrame({"expected_incremental_profit": profit, "expected_spend": spend}, index=cands.index)


# --------------------------------------------------------------------------- plan, profit curve, targets

def plan(sim: Simulation | pd.DataFrame) -> pd.DataFrame:
    """Mark per segment the option with the highest expected incremental profit (no contact when no
    contact option is positive): PLAN_COLUMNS. `sim`: `simulate`'s result or its table."""
    out = (sim.table if isinstance(sim, Simulation) else sim).copy()
    if out.empty:
        return artifacts.empty("winback_plan")
    out["recommended"] = False
    for seg, grp in out.groupby("segment", sort=True):
        contact = grp[grp["option"] != NO_CONTACT]
        best = contact["incremental_profit"].idxmax() if not contact.empty else None
        if best is None or contact.loc[best, "incremental_profit"] <= 0:
            best = grp[grp["option"] == NO_CONTACT].index[0]
        out.loc[best, "recommended"] = True
    num = ["uplift_pp", "uplift_low", "uplift_high", "incremental_buyers", "incremental_revenue", "discount_cost",
           "incremental_profit", "profit_p05", "profit_p95"]
    out[num] = out[num].astype(float).round(2)
    out["roi"] = out["roi"].astype(float).round(3)
    return out[PLAN_COLUMNS].reset_index(drop=True)


def plan_for_list(options_table: pd.DataFrame, cands: pd.DataFrame, targets: pd.DataFrame, uplift: pd.DataFrame,
                  cfg: Config) -> pd.DataFrame:
    """winback_plan.csv: `options_table` (every segment and option, simulated over the customers who can
    be contacted) with each segment's recommended row replaced by the simulation of the customers on the
    contact list (winback_targets.csv) with that offer: the plan's customers, extra buyers, expected profit
    (the sum of the list's expected_incremental_profit) and 5-95 % band, so notebooks 06 and 07 count the
    same customers and the same profit. A recommended segment with nobody on the list keeps no customers."""
    out = options_table.copy()
    listed = cands[customer_facts.is_in(cands["customer_id"].astype(str), targets["customer_id"].astype(str))]
    sim = simulate(listed, uplift, cfg).table
    num = ["n_customers", "incremental_buyers", "incremental_revenue", "discount_cost", "incremental_profit",
           "profit_p05", "profit_p95", "roi"]
    for i in out.index[out["recommended"] & (out["option"] != NO_CONTACT)]:
        seg, option = out.at[i, "segment"], out.at[i, "option"]
        hit = sim[(sim["segment"] == seg) & (sim["option"] == option)] if len(sim) else sim
        for col in num:
            out.at[i, col] = hit[col].iloc[0] if len(hit) else (np.nan if col == "roi" else 0)
    money = ["incremental_buyers", "incremental_revenue", "discount_cost", "incremental_profit", "profit_p05", "profit_p95"]
    out[money] = out[money].astype(float).round(2)
    out["roi"] = out["roi"].astype(float).round(3)
    out["n_customers"] = out["n_customers"].astype("int64")
    return out[PLAN_COLUMNS].reset_index(drop=True)


def customer_rows(cands: pd.DataFrame, uplift: pd.DataFrame, the_plan: pd.DataFrame, cfg: Config) -> pd.DataFrame:
    """Per candidate: customer_id, segment, discount (the segment's recommended option; for segments
    without an offer, its best contact option), recommended (segment gets an offer),
    expected_incremental_profit, expected_spend; sorted by expected profit, highest first."""
    contact = the_plan[the_plan["option"] != NO_CONTACT]
    best = contact.loc[contact.groupby("segment")["incremental_profit"].idxmax(), ["segment", "discount"]]
    rec = the_plan.loc[the_plan["recommended"] & (the_plan["option"] != NO_CONTACT), "segment"]
    d = cands[["customer_id", "segment"]].merge(best, on="segment", how="left")
    d.index = cands.index
    d["discount"] = d["discount"].astype(float)  # no contact option at all: every discount NaN
    prof = customer_profit(cands, uplift, cfg, d["discount"])
    d = pd.concat([d, prof], axis=1)
    d["recommended"] = d["segment"].isin(set(rec))
    return d.sort_values(["expected_incremental_profit", "customer_id"], ascending=[False, True], ignore_index=True)


def profit_curve(rows: pd.DataFrame, budget: float | None = None) -> pd.DataFrame:
    """Cumulative expected incremental profit by targeting depth (customers ordered by expected
    profit): columns customers, profit, spend, within_budget."""
    r = rows.sort_values(["expected_incremental_profit", "customer_id"], ascending=[False, True])
    out = pd.DataFrame({"customers": np.arange(1, len(r) + 1),
                        "profit": r["expected_incremental_profit"].cumsum().to_numpy(),
                        "spend": r["expected_spend"].cumsum().to_numpy()})
    out["within_budget"] = True if budget is None else out["spend"] <= budget
    return out


def may_be_listed(plan_rows: pd.DataFrame) -> pd.Series:
    """Which `customer_rows` the contact list may hold: a segment with an offer and a positive expected
    incremental profit (consent, the contact cap and the budget then narrow it down in `build_targets`)."""
    return plan_rows["recommended"] & (plan_rows["expected_incremental_profit"] > 0)


def build_targets(plan_rows: pd.DataFrame, customers: pd.DataFrame, budget: float | None = None,
                  exclude_ids=None, suggestions: pd.DataFrame | None = None) -> pd.DataFrame:
    """The contact list, TARGET_COLUMNS (winback_targets.csv's declared columns), highest profit first.

    plan_rows: `customer_rows` output. Kept: segments with an offer, positive expected incremental
    profit, marketing consent (customers.marketing_opt_in is true; unknown = no consent), not in
    `exclude_ids` (e.g. contacted too recently), and within `budget` (cumulative expected spend,
    in the order of expected profit). `suggestions`: customer_id, suggested_categories
    (`offers.suggested_categories`); without it the column is empty. Formula escaping happens on
    write (artifacts.write).
    """
    r = plan_rows[may_be_listed(plan_rows)]
    consent = customers[["customer_id", "email", "marketing_opt_in"]].astype({"customer_id": str})
    r = r.merge(consent.loc[customer_facts.consented(consent), ["customer_id", "email"]], on="customer_id", how="inner")
    if exclude_ids is not None:
        r = r[~r["customer_id"].isin(set(map(str, exclude_ids)))]
    r = r.sort_values(["expected_incremental_profit", "customer_id"], ascending=[False, True], ignore_index=True)
    if budget is not None:
        r = r[r["expected_spend"].cumsum() <= budget]
    out = r[["customer_id", "email", "segment", "discount", "expected_incremental_profit"]].copy()
    out["expected_incremental_profit"] = out["expected_incremental_profit"].round(4)
    if suggestions is not None:
        out = out.merge(suggestions[["customer_id", "suggested_categories"]].astype({"customer_id": str}),
                        on="customer_id", how="left")
    else:
        out["suggested_categories"] = None
    out = out.astype({"customer_id": "str", "email": "str", "segment": "str", "discount": "float64",
                      "expected_incremental_profit": "float64", "suggested_categories": "str"})
    return out[TARGET_COLUMNS].reset_index(drop=True)


def load_targets(processed_dir: str | Path) -> pd.DataFrame:
    """winback_targets.csv as written by notebook 06 (customer_id as text)."""
    return artifacts.read(processed_dir, "winback_targets")


# --------------------------------------------------------------------------- control group and campaign plan

@dataclass
class ControlGroup:
    """The next campaign's split: who gets the offer, who is held back, and what the split can detect.

    ``detectable_uplift``: the uplift (share of buyers, 0.02 = 2 pp) found with probability ``power``
    at ``alpha`` with this split; NaN when there is no control group or not even the largest uplift is."""

    campaign_id: str
    sent_date: str
    n_treated: int
    n_control: int
    base_conversion: float
    base_source: str
    min_detectable_uplift: float
    detectable_uplift: float
    alpha: float
    power: float
    achieved_power: float
    window_days: int = 30


def power_two_proportions(p0: float, uplift: float, n_treated, n_control, alpha: float = 0.05):
    """Power of the two-sided z test of two proportions to find `uplift` (p1 = p0 + uplift) with
    `n_treated` and `n_control` customers (numbers or arrays); the formula is in the module docstring."""
    n_t, n_c = np.asarray(n_treated, float), np.asarray(n_control, float)
    p1 = min(max(p0 + uplift, 1e-9), 1 - 1e-9)
    with np.errstate(divide="ignore", invalid="ignore"):
        pbar = (n_t * p1 + n_c * p0) / (n_t + n_c)
        se0 = np.sqrt(pbar * (1 - pbar) * (1 / n_t + 1 / n_c))
        se1 = np.sqrt(p1 * (1 - p1) / n_t + p0 * (1 - p0) / n_c)
        out = norm.cdf((abs(uplift) - norm.ppf(1 - alpha / 2) * se0) / se1)
    return np.where((n_t > 0) & (n_c > 0), out, 0.0)


def detectable_uplift(p0: float, n_treated: int, n_control: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest uplift (share of buyers) the split finds with probability `power`; NaN if none below 1 - p0."""
    if n_treated < 1 or n_control < 1:
        return float("nan")
    top = 1 - p0 - 1e-9
    f = lambda d: float(power_two_proportions(p0, d, n_treated, n_control, alpha)) - power  # noqa: E731
    if top <= 0 or f(top) < 0:
        return float("nan")
    return float(brentq(f, 1e-9, top, xtol=1e-7))


def control_size(n: int, p0: float, min_uplift: float, alpha: float, power: float, max_share: float) -> int:
    """Customers of an `n`-customer list to hold back: the smallest control group whose power to find
    `min_uplift` reaches `power`, at most ``floor(max_share n)`` (that cap when none reaches it)."""
    cap = int(math.floor(max_share * n + 1e-9))
    if cap < 1 or n < 2:
        return 0
    n_c = np.arange(1, cap + 1)
    reached = power_two_proportions(p0, min_uplift, n - n_c, n_c, alpha) >= power
    return int(n_c[reached.argmax()]) if reached.any() else cap


def base_conversion(measured: pd.DataFrame, default: float) -> tuple[float, str]:
    """The share of uncontacted candidates who buy within the window: pooled over past campaigns'
    control arms (winback_measured's rows for the whole arm), else the configured `default`."""
    m = measured[measured["segment"] == "all"].drop_duplicates("campaign_id") if len(measured) else measured
    n = float(m["n_control"].sum()) if len(m) else 0.0
    if n <= 0:
        return float(default), "the configured default (no past campaign measured it)"
    p = float((m["conv_control"] * m["n_control"]).sum() / n)
    if not 0 < p < 1:
        return float(default), "the configured default (past control groups bought all or nothing)"
    return p, f"measured in the control groups of {len(m)} past campaign(s), {int(n):,} customers"


def assign_control(targets: pd.DataFrame, n_control: int, seed: int) -> pd.Series:
    """True for the customers held back: `n_control` drawn at random within segments, in proportion to
    each segment's size (largest remainders), so every segment's offer is measured. Same seed and list,
    same draw."""
    mask = pd.Series(False, index=targets.index)
    if n_control <= 0 or targets.empty:
        return mask
    sizes = targets.groupby("segment", sort=True).size()
    exact = sizes * n_control / len(targets)
    k = np.floor(exact).astype(int)
    rest = n_control - int(k.sum())
    if rest > 0:
        order = (exact - k).sort_values(ascending=False, kind="stable").index[:rest]
        k[order] += 1
    rng = np.random.default_rng(seed)
    for seg, grp in targets.sort_values("customer_id").groupby("segment", sort=True):
        if k[seg] > 0:
            mask[rng.choice(grp.index.to_numpy(), size=int(k[seg]), replace=False)] = True
    return mask


def campaign_id_for(as_of: str) -> str:
    """'2026-06-30' -> 'winback-2026-06': the prefix of the campaigns planned in that month."""
    return f"winback-{str(as_of)[:7]}"


def control_group(targets: pd.DataFrame, measured: pd.DataFrame, as_of: str, cfg: Config
                  ) -> tuple[ControlGroup, pd.Series]:
    """The power calculation and the random split of `targets` (winback_targets' rows): the group and the
    mask of held-back customers. Planned send date: the day after as_of (the shop logs the real one)."""
    wb = cfg.winback
    p0, source = base_conversion(measured, wb.control_base_conversion)
    n = len(targets)
    n_c = control_size(n, p0, wb.control_min_detectable_uplift, wb.control_alpha, wb.control_power,
                       wb.control_max_share)
    mask = assign_control(targets, n_c, wb.seed)
    n_c = int(mask.sum())
    group = ControlGroup(
        campaign_id=campaign_id_for(as_of), sent_date=str((pd.Timestamp(str(as_of)[:10]) + pd.Timedelta(days=1)).date()),
        n_treated=n - n_c, n_control=n_c, base_conversion=round(p0, 6), base_source=source,
        min_detectable_uplift=wb.control_min_detectable_uplift,
        detectable_uplift=detectable_uplift(p0, n - n_c, n_c, wb.control_alpha, wb.control_power),
        alpha=wb.control_alpha, power=wb.control_power,
        achieved_power=float(power_two_proportions(p0, wb.control_min_detectable_uplift, n - n_c, n_c, wb.control_alpha)),
        window_days=wb.window_days)
    return group, mask


CAMPAIGN_PLAN_COLUMNS = artifacts.ARTIFACTS["campaign_plan"].columns


def campaign_plan(targets: pd.DataFrame, is_control: pd.Series, group: ControlGroup) -> pd.DataFrame:
    """campaign_plan.csv: every customer of the list in the campaigns.csv layout; arm = the offer's name
    ('10% off', 'contact, no discount') or 'control' (discount 0); one campaign_id per offer
    ('winback-2026-06-10_off'), its control group the held-back customers of the segments given that offer;
    sorted by campaign, arm and customer."""
    offer = targets["discount"].map(option_label).astype(str)  # astype: an empty list maps to float64
    arm = offer.where(~is_control, CONTROL)
    # one campaign per offer, each with the control customers of its own segments, so a measured
    # campaign compares like with like (winback_measured compares an arm with its campaign's control)
    cid = group.campaign_id + "-" + offer.map(customer_facts.slug).astype(str)
    out = pd.DataFrame({"campaign_id": cid, "customer_id": targets["customer_id"].astype(str),
                        "sent_date": group.sent_date, "arm": arm.astype(str),
                        "discount": targets["discount"].astype(float).where(~is_control, 0.0)})
    return out.sort_values(["campaign_id", "arm", "customer_id"], ignore_index=True)[CAMPAIGN_PLAN_COLUMNS]


# --------------------------------------------------------------------------- run

@dataclass
class WinbackResult:
    """Everything notebook 06 shows (pandas and small objects), computed by `run`; `helpers.pages.winback`
    turns it into tables, figures and takeaways. The defaults are a month without campaigns or candidates
    (what a test builds one section's result from)."""

    as_of: str = ""
    measured: pd.DataFrame = field(default_factory=lambda: artifacts.empty("winback_measured"))
    models: UpliftModels = field(default_factory=UpliftModels)
    candidates: pd.DataFrame = field(default_factory=lambda: EMPTY_CANDIDATES.copy())  # with column contactable
    uplift: pd.DataFrame = field(default_factory=pd.DataFrame)  # uplift_assumptions
    plan: pd.DataFrame = field(default_factory=lambda: artifacts.empty("winback_plan"))  # winback_plan.csv
    rows: pd.DataFrame = field(default_factory=pd.DataFrame)  # customer_rows
    curve: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["customers", "profit", "spend",
                                                                           "within_budget"]))  # profit_curve
    targets: pd.DataFrame = field(default_factory=lambda: artifacts.empty("winback_targets"))  # the contact list
    currency: str = "EUR"
    window_days: int = 30
    n_without_consent: int = 0
    offers: offers.OffersResult | None = None  # what to show each customer, the contact cap (issue 9)
    n_capped: int = 0  # customers worth an offer left out: contacted within offers.min_days_between_contacts
    notes: list = field(default_factory=list)  # why the plan is left out or narrowed (a missing artifact)
    options: pd.DataFrame | None = None  # every segment and option over the contactable customers (the simulation)
    control: ControlGroup | None = None  # the randomized control group held back from the contact list
    campaign: pd.DataFrame | None = None  # campaign_plan.csv: both arms in the campaigns.csv layout
    plan_loss: float | None = None  # the chance that the whole plan loses money (customer_facts.plan_loss_probability)
    plan_band: tuple[float, float] | None = None  # the whole plan's 5-95 % profit band (customer_facts.plan_band)
    pending: pd.DataFrame | None = None  # past campaigns still inside their response window (pending_campaigns)


def pending_campaigns(con, processed_dir: str | Path, as_of: str, cfg: Config) -> pd.DataFrame:
    """The past campaigns still inside their response window at `as_of` (not measured yet): campaign_id,
    sent_date and measured_from, the first cut-off whose run measures them (sent_date + window_days)."""
    camp_t = artifacts.table_if_exists(con, processed_dir, "campaigns_clean")
    empty = pd.DataFrame({"campaign_id": pd.Series(dtype=str), "sent_date": pd.Series(dtype=str),
                          "measured_from": pd.Series(dtype=str)})
    if camp_t is None:
        return empty
    end = ibis.literal(cutoff_end(as_of))
    open_t = camp_t.filter((camp_t.sent_date <= end) & (camp_t.sent_date + ibis.interval(days=cfg.winback.window_days) > end))
    found = open_t.group_by("campaign_id").agg(sent=open_t.sent_date.min()).to_pandas()
    if found.empty:
        return empty
    sent = pd.to_datetime(found["sent"])
    return pd.DataFrame({"campaign_id": found["campaign_id"].astype(str), "sent_date": sent.dt.strftime("%Y-%m-%d"),
                         "measured_from": (sent + pd.Timedelta(days=cfg.winback.window_days)).dt.strftime("%Y-%m-%d")}
                        ).sort_values("campaign_id").reset_index(drop=True)


def measure_campaigns(con, processed_dir: str | Path, as_of: str, cfg: Config, lines: ir.Table,
                      customers: ir.Table | None) -> tuple[pd.DataFrame, UpliftModels]:
    """Measured uplift (MEASURED_COLUMNS) and the T-learner of the past campaigns whose window has
    ended by `as_of`; an empty measurement and a note without campaigns_clean."""
    measured = artifacts.empty("winback_measured")
    models = UpliftModels(note="No past campaigns (campaigns.csv): no per-customer uplift model.")
    camp_t = artifacts.table_if_exists(con, processed_dir, "campaigns_clean")
    if camp_t is None:
        return measured, models
    camp_t = camp_t.filter(camp_t.sent_date + ibis.interval(days=cfg.winback.window_days)
                           <= ibis.literal(cutoff_end(as_of)))  # only campaigns whose window has ended
    # The measurement needs outcomes and segments only: it comes first and no model can stop it.
    frame = campaign_segments(lines, camp_t, cfg)
    if frame.empty:
        return measured, models
    measured = measure_uplift(frame, "segment")
    return measured, fit_uplift_models(frame, lines, cfg, customers)


def fit_uplift_models(frame: pd.DataFrame, lines: ir.Table, cfg: Config,
                      customers: ir.Table | None = None) -> UpliftModels:
    """The T-learner on `campaign_segments`' rows, or, when its features or fits fail on this shop's
    data, an empty result whose note says why and that the page shows the measured uplift instead."""
    try:
        with threadpool_limits(limits=cfg.churn.model_threads, user_api="openmp"), churn.quiet():
            camp = add_campaign_features(frame, lines, cfg, customers)
            return t_learner(camp.frame, camp.features, cfg)
    except Exception as exc:  # noqa: BLE001 - any failure of the model stays in its own section
        return UpliftModels(note=MODEL_FAILED.format(reason=churn.one_line(exc)))


MODEL_FAILED = ("The per-customer uplift model (T-learner) could not be fitted on this shop's campaign data "
                "({reason}); this section shows no Qini curve, and the page uses the measured uplift per arm and "
                "segment above.")


EMPTY_CANDIDATES = pd.DataFrame({"customer_id": pd.Series(dtype=object), "segment": pd.Series(dtype=object),
                                 "risk_tier": pd.Series(dtype=object), "reason": pd.Series(dtype=object),
                                 "p_baseline": pd.Series(dtype=float), "order_value": pd.Series(dtype=float)})


def _made_by(names: list[str]) -> str:
    """"clv.parquet and clv_model.json (04_clv)": files grouped by the notebook that makes them."""
    return ", ".join(f"{' and '.join(files)} ({nb})" for nb, files in artifacts.files_by_notebook(names).items())


def missing_plan_sentence(missing: list[str]) -> str:
    return (f"The win-back plan needs {_made_by(missing)} for this month, which "
            f"{'is' if len(missing) == 1 else 'are'} missing (the notebook failed or was not run): this page "
            "shows the measured uplift of past campaigns only, and the contact list stays empty.")


def plan_candidates(processed_dir: str | Path, cfg: Config) -> tuple[pd.DataFrame, list[str]]:
    """The win-back candidates (`candidates`) from this month's segments, churn and CLV artifacts, and the
    notes on what is missing: without segments or CLV no candidate (the plan is left out with one sentence,
    never the page), without churn scores candidates from the RFM segments only."""
    seg = artifacts.read_if_exists(processed_dir, "segments", columns=["customer_id", "rfm_segment"])
    scores = artifacts.read_if_exists(processed_dir, "churn", columns=["customer_id", "risk_tier"])
    clv_scores = artifacts.read_if_exists(processed_dir, "clv", columns=CLV_COLUMNS)
    clv_card = artifacts.read_if_exists(processed_dir, "clv_model")
    missing = [n for n, x in (("segments", seg), ("clv", clv_scores), ("clv_model", clv_card)) if x is None]
    notes = [missing_plan_sentence(missing)] if missing else []
    if scores is None:
        if not missing:
            notes.append(f"{_made_by(['churn'])} is missing this month, so candidates come from the RFM segments "
                         "only, not from churn risk tiers.")
        scores = pd.DataFrame({"customer_id": pd.Series(dtype=str), "risk_tier": pd.Series(dtype=str)})
    return (EMPTY_CANDIDATES.copy() if missing else candidates(seg, scores, clv_scores, clv_card, cfg)), notes


def contact_details(processed_dir: str | Path) -> pd.DataFrame:
    """customer_id, email, marketing_opt_in of customers_clean (no rows without a customers file)."""
    customers = artifacts.read_if_exists(processed_dir, "customers_clean",
                                         columns=["customer_id", "email", "marketing_opt_in"])
    return pd.DataFrame(columns=["customer_id", "email", "marketing_opt_in"]) if customers is None else customers


def split_contactable(all_cands: pd.DataFrame, consented, capped: set[str], notes: list[str]
                      ) -> tuple[pd.DataFrame, pd.DataFrame, int, int]:
    """The plan is made for the candidates who can be contacted (in `consented`, not in `capped`), so every
    page counts the same customers and the same profit. Returns `all_cands` with column contactable, the
    candidates to plan for (every candidate, with a note appended to `notes`, when none can be contacted),
    and the numbers left out for lack of consent and for a recent contact."""
    ids = all_cands["customer_id"].astype(str).to_numpy(dtype=object)
    has_consent, was_capped = customer_facts.is_in(ids, consented), customer_facts.is_in(ids, capped)
    contactable = pd.Series(has_consent & ~was_capped, index=all_cands.index)
    cands = all_cands[contactable].reset_index(drop=True)
    if cands.empty and not all_cands.empty:  # e.g. no customers file: still show which offer would pay
        notes.append("No candidate can be contacted (no marketing consent on record, or all contacted lately): the "
                     "simulation shows every candidate so the offers can be compared, and the contact list is empty.")
        cands = all_cands.reset_index(drop=True)
        contactable = pd.Series(False, index=all_cands.index)
    return (all_cands.assign(contactable=contactable.to_numpy()), cands, int((~has_consent).sum()),
            int((has_consent & was_capped).sum()))


def contact_curve(rows: pd.DataFrame, consented, capped: set[str], budget: float | None) -> pd.DataFrame:
    """`profit_curve` of the recommended `customer_rows` of customers who can be contacted."""
    row_ids = rows["customer_id"].astype(str).to_numpy(dtype=object)
    reachable = customer_facts.is_in(row_ids, consented) & ~customer_facts.is_in(row_ids, capped)
    return profit_curve(rows[rows["recommended"] & reachable], budget)


def run(processed_dir: str | Path, as_of: str, cfg: Config, con=None) -> WinbackResult:
    """Measure past campaigns, fit the T-learner, simulate, plan and list targets; write
    winback_measured.csv, winback_plan.csv, winback_targets.csv and campaign_plan.csv (and, through
    `offers.run`, offers.parquet)."""
    con = con or connect(cfg.engine)
    lines = artifacts.table(con, processed_dir, "orders_clean")
    cust_t = artifacts.table_if_exists(con, processed_dir, "customers_clean")
    measured, models = measure_campaigns(con, processed_dir, as_of, cfg, lines, cust_t)
    # What to show each customer, and who was contacted too recently to be contacted again (before the plan's
    # inputs: in a run side by side this overlaps notebook 05, whose churn scores the plan reads).
    offer_run = offers.run(processed_dir, as_of, cfg, con=con)
    # The measured uplift above needs none of the plan's inputs. A missing one (its notebook failed
    # or was not run this month) leaves the plan out with one sentence, never the page.
    all_cands, notes = plan_candidates(processed_dir, cfg)
    customers = contact_details(processed_dir)
    consented, capped = customer_facts.consented_ids(customers), set(map(str, offer_run.capped))
    all_cands, cands, n_without_consent, n_capped = split_contactable(all_cands, consented, capped, notes)
    uplift = uplift_assumptions(measured, sorted(set(all_cands["segment"])), cfg)
    options_table = plan(simulate(cands, uplift, cfg))
    rows = customer_rows(cands, uplift, options_table, cfg)
    curve = contact_curve(rows, consented, capped, cfg.winback.budget)
    # the suggestions joined for the customers the list may hold only (a third of the shop at 1.35M customers)
    listable = rows.loc[may_be_listed(rows), "customer_id"].astype(str)
    offered = offers.listed_offers(con, processed_dir, listable)
    listed = build_targets(rows, customers, cfg.winback.budget, exclude_ids=capped,
                           suggestions=offers.suggested_categories(offered, offer_run.cfg.top_n))
    # The control group is held back from the list: the contact list, the plan and every count are the treated.
    control, held_back = control_group(listed, measured, as_of, cfg)
    campaign = campaign_plan(listed, held_back, control)
    targets = listed[~held_back].reset_index(drop=True)
    the_plan = plan_for_list(options_table, cands, targets, uplift, cfg)
    res = WinbackResult(
        as_of=str(as_of)[:10], measured=measured, models=models, candidates=all_cands, uplift=uplift, plan=the_plan,
        rows=rows, curve=curve, targets=targets, currency=cfg.shop.currency, window_days=cfg.winback.window_days,
        n_without_consent=n_without_consent, offers=offer_run, n_capped=n_capped, notes=notes,
        options=options_table, control=control, campaign=campaign,
        plan_loss=customer_facts.plan_loss_probability(the_plan), plan_band=customer_facts.plan_band(the_plan),
        pending=pending_campaigns(con, processed_dir, as_of, cfg))
    artifacts.write(processed_dir, "winback_measured", measured)
    artifacts.write(processed_dir, "winback_plan", the_plan)
    artifacts.write(processed_dir, "winback_targets", targets)
    artifacts.write(processed_dir, "campaign_plan", campaign)
    return res
