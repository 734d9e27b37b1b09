"""Track record (notebook 07, "Track record"): last months' predictions held against what happened.

A forecast nobody checks is a guess. Every run keeps a compact prediction snapshot per customer
(``predictions.parquet`` in the month's folder, :func:`snapshot`): expected purchases over 30 and 90
days and P(at least one purchase in 90 days) from the CLV stage's purchase model, the churn
probability over the churn stage's horizon H, and CLV. At each later run, every earlier month whose
horizon has passed by this month's ``as_of`` is scored on this month's cleaned order lines
(:func:`score_months`); a horizon that has not passed yet, or a month without a snapshot, is listed
with that status instead.

Definitions (a snapshot made at cut-off ``c``, scored over ``h`` days, the window ``(c, c + h]`` in
whole days):

- actual purchases: purchase periods (days, or weeks if the purchase model counted weeks) with a
  positive net amount in the window, as the purchase model counts them
  (``customer_facts.purchase_periods``);
- purchases: MAE = mean over customers of |predicted - actual|; aggregate error % =
  100 (sum predicted - sum actual) / sum actual (positive = over-forecast);
- P(purchase in 90 days): Brier score = mean (p - bought)^2; error % of the expected number of
  buyers (sum of p) against the buyers;
- churn: churned = no purchase line (returns excluded) in ``(c, c + H]`` (helpers.churn's
  definition); ROC AUC (the chance that a churned customer was scored riskier than a retained one;
  NaN when everybody or nobody churned) and Brier score; error % of the expected churners;
- calibration: customers cut into ``track.calibration_bins`` equal groups by prediction, mean
  predicted vs mean actual per group.

On the page (:mod:`helpers.pages.track`), a verdict per model reads the latest ``track.verdict_months``
scored months ("over-forecasts by 12 % for three months running"); an alarm is raised when the latest
scored month's aggregate error lies beyond +/- ``track.error_band``.

Closed loop for campaigns: 06 writes ``campaign_plan.csv`` (helpers.winback: the contact list and a
randomized control group). Once the shop has sent it and appended it to its campaigns.csv, 06
measures each of its campaigns (one per offer) against its control group when the window has
ended; here the plan's predicted extra buyers and profit are set beside the measured ones::

    measured extra buyers  = sum over the plan's campaigns of uplift x treated customers
    measured extra profit  = sum of treated x ((m - d) / (1 - d) r_t - m r_c - c)

with r_t, r_c the revenue per customer in the window (after discounts) of the treated arm and the
control group, d the discount, m ``clv.gross_margin``, c ``winback.contact_cost``: a treated order
of full price v earns m v - d v = (m - d) / (1 - d) x its revenue. The interval of the extra buyers
combines the campaigns' 95 % intervals as independent normals.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.metrics import roc_auc_score

from helpers import artifacts, clv, customer_facts, engine, forecast
from helpers.config import Config, TrackConfig
from helpers.engine import connect, cutoff_end
from helpers.paths import resolve

PREDICTION_COLUMNS = artifacts.ARTIFACTS["predictions"].columns
RECORD_COLUMNS = artifacts.ARTIFACTS["track_record"].columns
Z95 = 1.959963984540054

# model -> (name for readers, prediction column, kind, horizon in days; None = the snapshot's churn horizon)
MODELS = {
    "purchases_30d": ("expected purchases, next 30 days", "exp_purchases_30d", "count", 30),
    "purchases_90d": ("expected purchases, next 90 days", "exp_purchases_90d", "count", 90),
    "p_purchase_90d": ("P(purchase in the next 90 days)", "p_purchase_90d", "probability", 90),
    "churn": ("churn probability", "churn_probability", "probability", None),
}
WINBACK = "winback"
# 04's forecast (forecast_model.json's totals over all customers), scored on revenue once its months have passed
FORECAST_HORIZONS = (3, 6, 12)
FORECASTS = {f"forecast_{h}m": (f"revenue forecast, next {h} months", h) for h in FORECAST_HORIZONS}
MODEL_NAMES = {**{k: v[0] for k, v in MODELS.items()}, WINBACK: "win-back plan: extra buyers",
               **{k: v[0] for k, v in FORECASTS.items()}}
SCORED, NOT_YET, NO_SNAPSHOT = "scored", "horizon not complete", "no prediction kept"
NOT_LOGGED, NOT_ENDED, NOT_MEASURED = "not logged in campaigns.csv", "window not ended", "not measured this month"


# --------------------------------------------------------------------------- the snapshot

def snapshot(as_of: str, clv_scores: pd.DataFrame | None, clv_card: dict | None, churn_scores: pd.DataFrame | None,
             churn_horizon_days: int) -> pd.DataFrame:
    """predictions.parquet's rows: one per customer scored by the CLV stage (or, without it, the churn
    stage), PREDICTION_COLUMNS. Purchase figures are NaN without a purchase model, churn without churn
    scores. Input: clv.parquet (frequency, recency, T, clv), clv_model.json, churn.parquet."""
    unit = 7 if (clv_card or {}).get("time_unit") in (7, "week") else 1
    if clv_scores is None and churn_scores is None:
        return artifacts.empty("predictions")
    base = clv_scores if clv_scores is not None else churn_scores[["customer_id"]]
    out = pd.DataFrame({"customer_id": base["customer_id"].astype(str).to_numpy(), "as_of": str(as_of)[:10]})
    fit = clv.fit_from_card(clv_card) if clv_scores is not None else None
    if fit is not None:
        f, r, T = (clv_scores[c].to_numpy(float) for c in ("frequency", "recency", "T"))
        groups = customer_facts.unique_x_T(f, T)
        for h in (30, 90):
            out[f"exp_purchases_{h}d"] = customer_facts.expected_purchases(fit, h / unit, f, r, T, groups)
        out["p_purchase_90d"] = customer_facts.probability_of_purchase(fit, 90 / unit, f, r, T)
    else:
        out[["exp_purchases_30d", "exp_purchases_90d", "p_purchase_90d"]] = np.nan
    if churn_scores is not None:
        ch = churn_scores[["customer_id", "churn_probability"]].astype({"customer_id": str})
        out = out.merge(ch.drop_duplicates("customer_id"), on="customer_id", how="left")
    else:
        out["churn_probability"] = np.nan
    out["churn_horizon_days"] = int(churn_horizon_days)
    out["clv"] = (clv_scores["clv"].to_numpy(float) if clv_scores is not None and "clv" in clv_scores
                  else np.nan)
    out["period_days"] = unit
    out = out.astype({c: "float64" for c in ("exp_purchases_30d", "exp_purchases_90d", "p_purchase_90d",
                                             "churn_probability", "clv")})
    out["p_purchase_90d"] = out["p_purchase_90d"].clip(0, 1)
    return out[PREDICTION_COLUMNS].sort_values("customer_id", ignore_index=True)


def save_snapshot(processed_dir: str | Path, as_of: str, cfg: Config) -> pd.DataFrame:
    """This month's snapshot from its clv and churn artifacts, written as predictions.parquet."""
    clv_scores = artifacts.read_if_exists(processed_dir, "clv", ["customer_id", "frequency", "recency", "T", "clv"])
    card = artifacts.read_if_exists(processed_dir, "clv_model")
    churn_scores = artifacts.read_if_exists(processed_dir, "churn", ["customer_id", "churn_probability"])
    churn_card = artifacts.read_if_exists(processed_dir, "churn_model") or {}
    horizon = int(churn_card.get("horizon_days") or cfg.churn.horizon_days)
    snap = snapshot(as_of, clv_scores, card, churn_scores, horizon)
    if not snap.empty:
        artifacts.write(processed_dir, "predictions", snap)
    return snap


# --------------------------------------------------------------------------- what happened

def window_activity(lines: ir.Table, windows: dict[str, tuple[str, list[int]]], period_days: int = 1) -> pa.Table:
    """What each customer did after each earlier month's cut-off, in one pass over the order lines.

    `windows`: month -> (its cut-off day ``start``, the horizons h to score). One row per month (``window``:
    its position in `windows`) and customer who bought in its longest window (day ``start``, day ``start`` +
    h]: ``purchases_<h>`` (purchase periods with a positive net amount, as ``customer_facts.purchase_periods``
    counts them up to the month's longest window end) and ``bought_<h>`` (any purchase line; returns do not
    count); customers without either are absent (0 / False). One engine query, whatever the number of
    months and horizons: every line is joined to the windows that hold it (a small table)."""
    unit = "week" if period_days == 7 else "day"
    every = sorted({h for _, horizons in windows.values() for h in horizons})
    rows = []
    for i, (start, horizons) in enumerate(windows.values()):
        first = customer_facts.period_number(start, unit) + 1  # the first whole period after the cut-off
        ends = {h: str((pd.Timestamp(start) + pd.Timedelta(days=int(h))).date()) for h in horizons}
        row = {"window": i, "first_period": first, "from_ts": cutoff_end(start),
               "last_ts": cutoff_end(ends[max(horizons)])}
        for h in every:  # a horizon this month does not score counts nothing
            row[f"end_period_{h}"] = customer_facts.period_number(ends[h], unit) if h in ends else first - 1
            row[f"end_ts_{h}"] = cutoff_end(ends[h]) if h in ends else cutoff_end(start)
        rows.append(row)
    w = engine.memtable(pd.DataFrame(rows))
    t = lines.join(w, [lines.order_date >= w.from_ts, lines.order_date < w.last_ts])
    days = t.order_date.date().delta(ibis.date(customer_facts.EPOCH), unit="day")
    keys = ["window", "customer_id", "first_period", *[f"end_period_{h}" for h in every]]
    per = t.group_by([*keys, (days // customer_facts.UNIT_DAYS[unit]).name("period")]).aggregate(
        cents=customer_facts.cents(t.amount).sum(),
        **{f"line_{h}": (~t.is_return & (t.order_date < t[f"end_ts_{h}"])).any() for h in every})
    purchase = (per.cents > 0) & (per.period >= per.first_period)  # a purchase period after the cut-off
    out = per.group_by(["window", "customer_id"]).aggregate(
        **{f"purchases_{h}": (purchase & (per.period <= per[f"end_period_{h}"])).cast("int64").sum() for h in every},
        **{f"bought_{h}": per[f"line_{h}"].any() for h in every})
    return out.to_pyarrow()


def align(snap: pd.DataFrame, activity: pa.Table, window: int) -> pd.DataFrame:
    """The snapshot's customers (in its order) with ``purchases_<h>`` and ``bought_<h>`` of `window` (its
    position in :func:`window_activity`'s windows; 0 / False if none)."""
    part = activity.filter(pc.equal(activity["window"], window))
    at = pc.index_in(customer_facts.strings(snap["customer_id"].astype(str)),
                     value_set=customer_facts.strings(part["customer_id"]).combine_chunks())
    return pd.DataFrame({c: pc.fill_null(part[c].take(at), 0 if c.startswith("purchases_") else False).to_numpy(
        zero_copy_only=False) for c in part.column_names if c.startswith(("purchases_", "bought_"))})


def actuals_for(actuals: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """``purchases`` and ``bought`` in the `horizon`-day window, from a month's :func:`align`."""
    return pd.DataFrame({"purchases": actuals[f"purchases_{horizon}"].astype("int64"),
                         "bought": actuals[f"bought_{horizon}"].astype(bool)})


# --------------------------------------------------------------------------- metrics

def error_pct(predicted_total: float, actual_total: float) -> float:
    """100 (predicted - actual) / actual: positive = over-forecast; NaN when nothing actually happened."""
    return float(100 * (predicted_total - actual_total) / actual_total) if actual_total else float("nan")


def score_counts(predicted, actual) -> dict:
    """Expected vs actual purchases: customers, predicted and actual totals, error %, MAE."""
    p, a = np.asarray(predicted, float), np.asarray(actual, float)
    keep = np.isfinite(p)
    p, a = p[keep], a[keep]
    if not len(p):
        return {"customers": 0}
    return {"customers": len(p), "predicted": float(p.sum()), "actual": float(a.sum()),
            "error_pct": error_pct(p.sum(), a.sum()), "mae": float(np.abs(p - a).mean())}


def score_probability(probability, outcome) -> dict:
    """A probability against a yes/no outcome: expected vs actual count, error %, Brier score, ROC AUC
    (NaN when the outcome is all yes or all no)."""
    p, y = np.asarray(probability, float), np.asarray(outcome, float)
    keep = np.isfinite(p)
    p, y = p[keep], y[keep]
    if not len(p):
        return {"customers": 0}
    auc = float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")
    return {"customers": len(p), "predicted": float(p.sum()), "actual": float(y.sum()),
            "error_pct": error_pct(p.sum(), y.sum()), "brier": float(np.mean((p - y) ** 2)), "auc": auc}


def calibration(predicted, actual, bins: int = 10) -> pd.DataFrame:
    """Customers cut into `bins` equal groups by prediction (1 = lowest): customers, mean predicted,
    mean actual per group."""
    p, a = pd.Series(np.asarray(predicted, float)), pd.Series(np.asarray(actual, float))
    keep = p.notna()
    p, a = p[keep], a[keep]
    if p.empty:
        return pd.DataFrame(columns=["group", "customers", "mean_predicted", "mean_actual"])
    k = min(bins, len(p))
    group = pd.qcut(p.rank(method="first"), k, labels=range(1, k + 1)).astype(int)
    g = pd.DataFrame({"group": group, "p": p, "a": a}).groupby("group")
    return pd.DataFrame({"customers": g.size(), "mean_predicted": g["p"].mean(),
                         "mean_actual": g["a"].mean()}).reset_index()


def _row(month: str, model: str, status: str, horizon: int, end: str | None, metrics: dict | None = None) -> dict:
    row = {"month": month, "model": model, "status": status, "horizon_days": int(horizon), "horizon_end": end,
           "customers": 0, "predicted": np.nan, "actual": np.nan, "error_pct": np.nan, "mae": np.nan,
           "auc": np.nan, "brier": np.nan, "band_low": np.nan, "band_high": np.nan}
    row.update(metrics or {})
    return row


def horizon_of(snap: pd.DataFrame, model: str) -> int:
    horizon = MODELS[model][3]
    return int(snap["churn_horizon_days"].iloc[0]) if horizon is None else int(horizon)


def due(snap: pd.DataFrame, as_of: str) -> tuple[str, dict[str, str], list[str]]:
    """A snapshot's cut-off day, the models it predicted with the day each one's horizon ends, and the
    models whose horizon ended on or before `as_of` (to be scored)."""
    start = str(snap["as_of"].iloc[0])[:10]
    models = [m for m in MODELS if not snap[MODELS[m][1]].isna().all()]  # a stage that did not run: no row
    ends = {m: str((pd.Timestamp(start) + pd.Timedelta(days=horizon_of(snap, m))).date()) for m in models}
    return start, ends, [m for m in models if pd.Timestamp(ends[m]) <= pd.Timestamp(str(as_of)[:10])]


def score_snapshot(month: str, snap: pd.DataFrame, as_of: str, actuals: pd.DataFrame | None) -> list[dict]:
    """The track_record rows of one month's snapshot: one per model, scored when its horizon ended on or
    before `as_of` (on `actuals`, the month's :func:`align`), else with status 'horizon not complete' and
    the day it ends."""
    _, ends, done = due(snap, as_of)
    rows = []
    for model in ends:
        _, col, kind, _ = MODELS[model]
        h = horizon_of(snap, model)
        if model not in done:
            rows.append(_row(month, model, NOT_YET, h, ends[model]))
            continue
        a = actuals_for(actuals, h)
        if kind == "count":
            m = score_counts(snap[col], a["purchases"])
        elif model == "churn":
            m = score_probability(snap[col], ~a["bought"])
        else:
            m = score_probability(snap[col], a["bought"])
        rows.append(_row(month, model, SCORED, h, ends[model], m))
    return rows


def activities(lines: ir.Table, snaps: dict[str, pd.DataFrame], as_of: str) -> dict[str, pd.DataFrame]:
    """month -> its snapshot's :func:`align`, for every snapshot with a horizon to score: one pass over the
    order lines per purchase-period length (days or weeks) among them."""
    windows: dict[int, dict[str, tuple[str, list[int]]]] = {}
    for month, snap in snaps.items():
        start, _, done = due(snap, as_of)
        if done:
            windows.setdefault(int(snap["period_days"].iloc[0]), {})[month] = (
                start, sorted({horizon_of(snap, m) for m in done}))
    out = {}
    for period_days, months in windows.items():
        activity = window_activity(lines, months, period_days)
        out.update({month: align(snaps[month], activity, i) for i, month in enumerate(months)})
    return out


# --------------------------------------------------------------------------- 04's forecast: predicted vs what came

def score_forecast(month: str, card: dict, as_of: str, activity: pd.DataFrame | None) -> list[dict]:
    """The track_record rows of one month's forecast (forecast_model.json): per horizon of :data:`FORECASTS`
    in its totals, the revenue it expected from all customers (existing and new) against the revenue of the
    months since (`activity`: `forecast.monthly_activity` of this month's orders), with its band; status
    'horizon not complete' until the horizon's last month has ended by `as_of`."""
    cut = str(card.get("as_of", ""))[:10]
    totals = {int(r["months"]): r for r in card.get("totals") or [] if r.get("source") == "all"}
    rows = []
    for key, (_, h) in FORECASTS.items():
        if h not in totals or not cut:
            continue
        end = forecast.month_ends(cut, h)[-1]
        days = (end - pd.Timestamp(cut).date()).days
        if pd.Timestamp(end) > pd.Timestamp(str(as_of)[:10]) or activity is None:
            rows.append(_row(month, key, NOT_YET, days, str(end)))
            continue
        got = forecast._actual(activity, forecast.last_full_month(cut), h)
        actual = got["existing"]["revenue"] + got["new"]["revenue"]
        r = totals[h]
        rows.append(_row(month, key, SCORED, days, str(end), {
            "predicted": float(r["revenue"]), "actual": actual, "error_pct": error_pct(float(r["revenue"]), actual),
            "band_low": float(r["revenue_low"]), "band_high": float(r["revenue_high"])}))
    return rows


# --------------------------------------------------------------------------- campaigns: planned vs measured

@dataclass
class CampaignCheck:
    """One month's win-back plan against its campaigns' measurement (helpers.winback's campaign_plan.csv)."""

    month: str
    campaign_ids: list[str]
    status: str
    n_treated: int = 0
    n_control: int = 0
    planned_buyers: float = float("nan")
    planned_profit: float = float("nan")
    measured_buyers: float = float("nan")
    measured_low: float = float("nan")
    measured_high: float = float("nan")
    measured_profit: float = float("nan")

    @property
    def planned_uplift_pp(self) -> float:
        return 100 * self.planned_buyers / self.n_treated if self.n_treated else float("nan")

    @property
    def measured_uplift_pp(self) -> float:
        return 100 * self.measured_buyers / self.n_treated if self.n_treated else float("nan")


def check_campaign(month: str, plan_rows: pd.DataFrame, the_plan: pd.DataFrame | None, logged: set[str],
                   measured: pd.DataFrame | None, margin: float, contact_cost: float) -> CampaignCheck:
    """Planned (month `month`'s winback_plan.csv, its recommended offers) vs measured (this month's
    winback_measured rows of the plan's campaigns, whole arms) extra buyers and profit.

    `plan_rows`: that month's campaign_plan.csv; `logged`: the campaign ids in this month's campaigns
    log; `measured`: this month's winback_measured.csv (None when 06 did not run)."""
    ids = sorted(set(plan_rows["campaign_id"]))
    treated = plan_rows[plan_rows["arm"].str.lower() != "control"]
    chk = CampaignCheck(month, ids, SCORED, n_treated=len(treated), n_control=len(plan_rows) - len(treated))
    if the_plan is not None and len(the_plan):
        rec = the_plan[the_plan["recommended"] & the_plan["discount"].notna()]
        chk.planned_buyers = float(rec["incremental_buyers"].sum())
        chk.planned_profit = float(rec["incremental_profit"].sum())
    if not set(ids) & logged:
        chk.status = NOT_LOGGED
        return chk
    if measured is None:
        chk.status = NOT_MEASURED
        return chk
    m = measured[measured["campaign_id"].isin(ids) & (measured["segment"] == "all")]
    if m.empty:
        chk.status = NOT_ENDED
        return chk
    n_t = m["n_treated"].astype(float)
    buyers = n_t * m["uplift_pp"] / 100
    se = n_t * (m["uplift_high"] - m["uplift_low"]) / 100 / (2 * Z95)
    chk.n_treated, chk.n_control = int(n_t.sum()), int(m.drop_duplicates("campaign_id")["n_control"].sum())
    chk.measured_buyers = float(buyers.sum())
    half = Z95 * math.sqrt(float((se ** 2).sum()))
    chk.measured_low, chk.measured_high = chk.measured_buyers - half, chk.measured_buyers + half
    d = m["discount"].astype(float).clip(upper=0.999)
    profit = n_t * ((margin - d) / (1 - d) * m["revenue_treated"] - margin * m["revenue_control"] - contact_cost)
    chk.measured_profit = float(profit.sum()) if profit.notna().all() else float("nan")
    return chk


def campaign_row(chk: CampaignCheck) -> dict:
    """The track_record row of a campaign check (model 'winback': predicted vs measured extra buyers)."""
    metrics = {"customers": chk.n_treated, "predicted": chk.planned_buyers}
    if chk.status == SCORED:
        metrics |= {"actual": chk.measured_buyers, "error_pct": error_pct(chk.planned_buyers, chk.measured_buyers)}
    return _row(chk.month, WINBACK, chk.status, 0, None, metrics)


# --------------------------------------------------------------------------- the stage

def earlier_months(processed_dir: str | Path) -> list[Path]:
    """The shop's month folders before this one, oldest first."""
    here = resolve(str(processed_dir).rstrip("/\\"))
    month = artifacts.month_of(here)
    return [p for p in artifacts.month_dirs(here.parent) if p.name < month]


def score_months(processed_dir: str | Path, as_of: str, cfg: Config, con) -> tuple[pd.DataFrame, dict, list]:
    """track_record rows for every earlier month, the snapshots scored (month -> (snapshot, actuals)) for
    the calibration table, and the campaign checks. Reads each earlier month's small artifacts
    (predictions.parquet, campaign_plan.csv, winback_plan.csv) and this month's orders_clean once."""
    rows, snaps, checks, cards = [], {}, [], {}
    camp = artifacts.read_if_exists(processed_dir, "campaigns_clean", ["campaign_id"])
    logged = set(camp["campaign_id"].astype(str)) if camp is not None else set()
    measured = artifacts.read_if_exists(processed_dir, "winback_measured")
    for folder in earlier_months(processed_dir):
        month = folder.name
        snap = artifacts.read_if_exists(folder, "predictions")
        if snap is None or snap.empty:
            rows.append(_row(month, "all", NO_SNAPSHOT, 0, None))
        else:
            snaps[month] = snap
        card = artifacts.read_if_exists(folder, "forecast_model")
        if card and card.get("totals"):
            cards[month] = card
        plan_rows = artifacts.read_if_exists(folder, "campaign_plan")
        if plan_rows is not None and len(plan_rows):
            chk = check_campaign(month, plan_rows, artifacts.read_if_exists(folder, "winback_plan"), logged, measured,
                                 cfg.clv.gross_margin, cfg.winback.contact_cost)
            checks.append(chk)
            rows.append(campaign_row(chk))
    lines = artifacts.table(con, processed_dir, "orders_clean")
    acts = activities(lines, snaps, as_of)
    for month, snap in snaps.items():
        rows += score_snapshot(month, snap, as_of, acts.get(month))
    for unit in sorted({c.get("time_unit", "day") for c in cards.values()}):  # one pass over the lines per unit
        activity = forecast.monthly_activity(lines, as_of, unit)
        for month, card in cards.items():
            if card.get("time_unit", "day") == unit:
                rows += score_forecast(month, card, as_of, activity)
    scored = {month: (snap, acts.get(month)) for month, snap in snaps.items()}
    table = pd.DataFrame(rows, columns=RECORD_COLUMNS) if rows else artifacts.empty("track_record")
    table = table.astype({"customers": "int64", "horizon_days": "int64"})
    return table.sort_values(["month", "model"], ignore_index=True), scored, checks


def latest_scored(rows: pd.DataFrame, model: str = "purchases_90d") -> str | None:
    """The latest month (track_record rows) in which `model` was scored, or None."""
    s = rows[(rows["model"] == model) & (rows["status"] == SCORED)]
    return None if s.empty else str(s["month"].max())


def calibrations(rows: pd.DataFrame, scored: dict, bins: int) -> dict[str, tuple[str, pd.DataFrame]]:
    """Per model scored in some month: (the latest such month, its :func:`calibration` groups).
    `scored`: month -> (snapshot, actuals), as :func:`score_months` returns it."""
    out = {}
    for model, (_, col, kind, _) in MODELS.items():
        month = latest_scored(rows, model)
        if month is None:
            continue
        snap, actuals = scored[month]
        act = actuals_for(actuals, horizon_of(snap, model))
        actual = act["purchases"] if kind == "count" else (~act["bought"] if model == "churn" else act["bought"])
        out[model] = (month, calibration(snap[col], actual.astype(float), bins))
    return out


@dataclass
class TrackResult:
    """Notebook 07's "Track record" (its page: helpers.pages.track): the track_record rows, the campaigns'
    checks, the calibration of each scored model, this month's snapshot and the settings that judge them."""

    as_of: str
    rows: pd.DataFrame  # track_record.csv
    checks: list[CampaignCheck]
    calibrations: dict[str, tuple[str, pd.DataFrame]] = field(default_factory=dict)  # model -> (month, groups)
    snapshot: pd.DataFrame | None = None
    settings: TrackConfig = field(default_factory=TrackConfig)
    currency: str = "EUR"
    note: str | None = None  # why nothing could be scored this month (a missing artifact)


def run(processed_dir: str | Path, as_of: str, cfg: Config, con=None) -> TrackResult:
    """Keep this month's prediction snapshot (predictions.parquet), score every earlier month of the shop
    whose horizon has passed by `as_of` on this month's orders_clean, and write track_record.csv."""
    con = con or connect(cfg.engine)
    snap = save_snapshot(processed_dir, as_of, cfg)
    if not artifacts.exists(processed_dir, "orders_clean"):  # 01 failed or was not run: nothing to score against
        note = (f"{artifacts.spec('orders_clean').file} (01_clean) is missing this month, so no earlier prediction "
                "can be scored; this month's predictions are kept all the same.")
        return TrackResult(str(as_of)[:10], artifacts.empty("track_record"), [], {}, snap, cfg.track,
                           cfg.shop.currency, note)
    rows, scored, checks = score_months(processed_dir, as_of, cfg, con)
    artifacts.write(processed_dir, "track_record", rows)
    return TrackResult(str(as_of)[:10], rows, checks, calibrations(rows, scored, cfg.track.calibration_bins), snap,
                       cfg.track, cfg.shop.currency)
