"""The "Track record" section of notebook 07's page, drawn from a `helpers.track.TrackResult`: last
months' predictions held against what happened - per earlier month and model the aggregate error (or why
it is not scored yet), its trend against the alarm band, a verdict per model in words, the calibration of
the latest scored month, and each planned win-back campaign beside its measurement - each as a reader
table, a sentence or a figure (``plot_trend``, returning the axes). On a first run (nothing to score yet)
the section is the takeaway alone: the table, chart and calibration functions return None, which a
notebook cell shows as nothing.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from helpers import plots
from helpers.config import TrackConfig
from helpers.track import (
    FORECASTS,
    MODEL_NAMES,
    MODELS,
    NO_SNAPSHOT,
    NOT_YET,
    SCORED,
    WINBACK,
    CampaignCheck,
    TrackResult,
)

JUDGED = (*MODELS, *FORECASTS)  # the predictions with a verdict and an alarm (a campaign has its own table)


# --------------------------------------------------------------------------- verdicts and alarm

_COUNT_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}


def verdict(rows: pd.DataFrame, model: str, cfg: TrackConfig) -> str:
    """A plain sentence on the latest `cfg.verdict_months` scored months of `model` (track_record rows)."""
    s = rows[(rows["model"] == model) & (rows["status"] == SCORED) & rows["error_pct"].notna()].sort_values("month")
    name = MODEL_NAMES[model]
    if s.empty:
        return f"{name[0].upper() + name[1:]}: not scored yet (no earlier month's horizon has passed)."
    recent = s.tail(cfg.verdict_months)
    errs = recent["error_pct"].to_numpy(float) / 100
    tol = cfg.verdict_tolerance
    sign = np.sign(errs[-1]) if abs(errs[-1]) > tol else 0
    run = 0
    for e in errs[::-1]:
        if (sign == 0 and abs(e) <= tol) or (sign != 0 and np.sign(e) == sign and abs(e) > tol):
            run += 1
        else:
            break
    months = f"for {_COUNT_WORDS.get(run, str(run))} months running" if run > 1 else f"in {recent['month'].iloc[-1]}"
    mean = float(np.mean(errs[-run:]))
    if sign == 0:
        text = f"on target (within {tol:.0%}) {months}"
    else:
        text = f"{'over' if sign > 0 else 'under'}-forecasts by {abs(mean):.0%} {months}"
    last = s.iloc[-1]
    if model == "churn" and np.isfinite(last["auc"]):
        text += f"; ranks churners with an AUC of {last['auc']:.2f} (0.5 = chance) in {last['month']}"
    elif model.startswith("purchases") and np.isfinite(last["mae"]):
        text += f"; off by {last['mae']:.2f} purchases per customer on average in {last['month']}"
    return f"{name[0].upper() + name[1:]}: {text}."


def alarms(rows: pd.DataFrame, band: float) -> list[str]:
    """One sentence per model whose latest scored aggregate error lies beyond +/- `band`."""
    out = []
    for model in JUDGED:  # a campaign's plan vs measurement has its own table and sentence
        s = rows[(rows["model"] == model) & (rows["status"] == SCORED) & rows["error_pct"].notna()]
        if s.empty:
            continue
        last = s.sort_values("month").iloc[-1]
        if abs(last["error_pct"]) > 100 * band:
            out.append(f"ALARM: {MODEL_NAMES[model]} missed by {last['error_pct']:+.0f}% for {last['month']}, beyond the "
                       f"+/-{band:.0%} band (track.error_band): check before acting on this month's figures.")
    return out


# --------------------------------------------------------------------------- tables and figures

def _band_words(x: pd.Series) -> str:
    """', inside its band' / ', outside its band' for a prediction that came with one (04's forecast)."""
    if "band_low" not in x or not np.isfinite(x["band_low"]):
        return ""
    return ", inside its band" if x["band_low"] <= x["actual"] <= x["band_high"] else ", outside its band"


def band_coverage(rows: pd.DataFrame) -> str:
    """How often the forecasts' bands held what came ('' before any forecast was scored)."""
    s = rows[rows["model"].isin(list(FORECASTS)) & (rows["status"] == SCORED)]
    if "band_low" not in s or s.empty:
        return ""
    inside = int(((s["band_low"] <= s["actual"]) & (s["actual"] <= s["band_high"])).sum())
    return (f"The revenue forecasts' bands held the actual revenue in {inside} of {len(s)} scored forecast"
            f"{'s' if len(s) != 1 else ''}.")


def record_table_from_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """track_record for readers: one row per earlier month (newest first), per model its aggregate error
    (or why it is not scored), MAE of purchases, Brier and AUC of churn."""
    if rows.empty:
        return plots.note_table("no earlier month in this shop's processed folder", "track record")
    out = {}
    for month, grp in rows.groupby("month", sort=False):
        r = {}
        by = grp.set_index("model")
        if (grp["status"] == NO_SNAPSHOT).any():  # its campaign may still be measured
            r["status"] = NO_SNAPSHOT
        forecasts = [(k, f"revenue {h} m") for k, (_, h) in FORECASTS.items() if k in set(rows["model"])]
        for model, label in (("purchases_30d", "purchases 30 d"), ("purchases_90d", "purchases 90 d"),
                             ("p_purchase_90d", "buyers 90 d"), ("churn", "churners"), (WINBACK, "win-back buyers"),
                             *forecasts):
            if model not in by.index:
                r[f"{label}: error"] = plots.MISSING
                continue
            x = by.loc[model]
            if x["status"] == SCORED and np.isfinite(x["error_pct"]):
                r[f"{label}: error"] = f"{x['error_pct']:+.0f}%" + _band_words(x)
            elif x["status"] == NOT_YET:
                r[f"{label}: error"] = f"after {x['horizon_end']}"
            else:
                r[f"{label}: error"] = x["status"] if x["status"] != SCORED else plots.MISSING
        if "purchases_90d" in by.index and by.loc["purchases_90d", "status"] == SCORED:
            r["MAE 90 d"] = f"{by.loc['purchases_90d', 'mae']:.2f}"
        if "churn" in by.index and by.loc["churn", "status"] == SCORED:
            auc = by.loc["churn", "auc"]
            r["churn AUC"] = plots.MISSING if not np.isfinite(auc) else f"{auc:.2f}"
            r["churn Brier"] = f"{by.loc['churn', 'brier']:.3f}"
        out[month] = r
    table = pd.DataFrame.from_dict(out, orient="index").sort_index(ascending=False).fillna(plots.MISSING)
    table.index.name = "predicted in"
    return plots.table_for_readers(table, rest="track_record.csv", sortable="track-record")


def plot_error_trend(rows: pd.DataFrame, band: float, ax=None):
    """Aggregate error (%) per predicted month and model, with the +/- `band` alarm band shaded."""
    ax = plots.axes_or_new(ax)
    s = rows[(rows["status"] == SCORED) & rows["error_pct"].notna()]
    months = sorted(set(rows["month"]))
    pos = {m: i for i, m in enumerate(months)}
    ax.axhspan(-100 * band, 100 * band, color="0.9", zorder=0, label=f"+/-{band:.0%} band")
    ax.axhline(0, color="0.5", lw=0.8)
    for model in JUDGED:
        m = s[s["model"] == model].sort_values("month")
        if m.empty:
            continue
        x = [pos[v] for v in m["month"]]
        ax.plot(x, m["error_pct"].to_numpy(float), marker="o", ms=4, label=MODEL_NAMES[model])
        out = m["error_pct"].abs() > 100 * band
        if out.any():
            ax.scatter(np.array(x)[out.to_numpy()], m.loc[out, "error_pct"], s=60, facecolors="none",
                       edgecolors="red", zorder=5)
    ax.set_xticks(range(len(months)), months, rotation=45, ha="right")
    ax.set_title("Track record: predicted vs actual, per month the prediction was made")
    ax.set_xlabel("month of the prediction")
    ax.set_ylabel("aggregate error (%, + = over-forecast)")
    ax.legend(loc="best", frameon=False, fontsize=8)
    return ax


def calibration_groups_table(cal: pd.DataFrame, what: str) -> pd.DataFrame:
    if cal.empty:
        return plots.note_table(f"no scored month for {what} yet", "calibration")
    out = cal.set_index("group")
    out.index.name = f"{what}: group (1 = lowest prediction)"
    out = out.rename(columns={"mean_predicted": "predicted per customer", "mean_actual": "actual per customer"})
    return plots.table_for_readers(out, kinds={c: "number2" for c in out.columns if c != "customers"} |
                                   {"customers": "count"}, max_rows=None)


def campaign_checks_table(checks: list[CampaignCheck], currency: str = "EUR") -> pd.DataFrame:
    """Per month with a campaign plan: the plan's extra buyers and profit beside the measured ones."""
    if not checks:
        return plots.note_table("no earlier month planned a campaign (campaign_plan.csv)", "campaigns")
    rows = []
    for c in checks:
        measured = c.status == SCORED
        rows.append({"planned in": c.month, "status": "measured" if measured else c.status,
                     "contacted": c.n_treated, "control group": c.n_control,
                     "uplift planned (pp)": c.planned_uplift_pp,
                     "uplift measured (pp)": c.measured_uplift_pp if measured else np.nan,
                     "extra buyers planned": c.planned_buyers,
                     "extra buyers measured": c.measured_buyers if measured else np.nan,
                     "measured, 95 % interval": (f"{c.measured_low:,.1f} to {c.measured_high:,.1f}" if measured
                                                 else plots.MISSING),
                     f"extra profit planned ({currency})": c.planned_profit,
                     f"extra profit measured ({currency})": c.measured_profit if measured else np.nan})
    out = pd.DataFrame(rows).set_index("planned in").sort_index(ascending=False)
    kinds = {"contacted": "count", "control group": "count", "uplift planned (pp)": "number1",
             "uplift measured (pp)": "number1", "extra buyers planned": "number1", "extra buyers measured": "number1",
             f"extra profit planned ({currency})": "number0", f"extra profit measured ({currency})": "number0"}
    return plots.table_for_readers(out, kinds=kinds, currency=None, max_rows=None)


def campaign_checks_takeaway(checks: list[CampaignCheck], currency: str = "EUR") -> str:
    if not checks:
        return ("No earlier month planned a win-back campaign with a control group yet; 06_winback writes "
                "campaign_plan.csv, and once the shop sends it and appends it to campaigns.csv it is measured here.")
    parts = []
    for c in sorted(checks, key=lambda c: c.month, reverse=True):
        if c.status != SCORED:
            parts.append(f"{c.month}'s plan: {c.status}.")
            continue
        if c.measured_low > 0:
            worked = "it worked: more buyers than in the control group"
        elif c.measured_high < 0:
            worked = "it did harm: fewer buyers than in the control group"
        else:
            worked = "its effect is not distinguishable from zero"
        profit = ("" if not np.isfinite(c.measured_profit) else
                  f"; extra profit planned {plots.money(c.planned_profit, currency)}, measured about "
                  f"{plots.money(c.measured_profit, currency)}")
        parts.append(f"{c.month}'s campaign ({c.n_treated:,} contacted, {c.n_control:,} held back): {worked} - "
                     f"planned {c.planned_buyers:,.1f} extra buyers ({c.planned_uplift_pp:.1f} pp), measured "
                     f"{c.measured_buyers:,.1f} (95 %: {c.measured_low:,.1f} to {c.measured_high:,.1f}; "
                     f"{c.measured_uplift_pp:.1f} pp){profit}. The next plan uses this measured uplift.")
    return " ".join(parts)


# --------------------------------------------------------------------------- the section, from the result

def takeaway(res: TrackResult) -> str:
    """The section's first sentences: alarms, how many months were scored, a verdict per model (or why
    nothing could be scored)."""
    if res.note:
        return res.note
    scored = sorted(set(res.rows.loc[res.rows["status"] == SCORED, "month"]))
    found = alarms(res.rows, res.settings.error_band)
    if not scored:
        lead = ("No earlier month's prediction can be scored yet: a snapshot is kept from this month on "
                "(predictions.parquet), and scored once its horizon has passed.")
        return " ".join([lead, *found])
    lead = f"Predictions of {len(scored)} earlier month(s) ({scored[0]} to {scored[-1]}) scored against what happened."
    judged = [verdict(res.rows, m, res.settings) for m in JUDGED if m in MODELS or m in set(res.rows["model"])]
    return " ".join(x for x in [*found, lead, *judged, band_coverage(res.rows)] if x)


def record_table(res: TrackResult) -> pd.DataFrame | None:
    """The track record for readers (:func:`record_table_from_rows`), or None while no earlier month exists."""
    return None if res.rows.empty else record_table_from_rows(res.rows)


def plot_trend(res: TrackResult, ax=None):
    """The error trend (:func:`plot_error_trend`), or None (no figure drawn) while no month has been scored."""
    if res.rows.empty or not (res.rows["status"] == SCORED).any():
        return None
    return plot_error_trend(res.rows, res.settings.error_band, ax=ax)


def calibration_table(res: TrackResult, model: str = "purchases_90d") -> pd.DataFrame | None:
    """Calibration groups of `model` in the latest month where it was scored, or None if it never was."""
    if model not in res.calibrations:
        return None
    month, cal = res.calibrations[model]
    return calibration_groups_table(cal, f"{MODEL_NAMES[model]} ({month})")


def campaign_table(res: TrackResult) -> pd.DataFrame | None:
    """Each planned campaign beside its measurement (:func:`campaign_checks_table`), or None without one."""
    return campaign_checks_table(res.checks, res.currency) if res.checks else None


def campaign_takeaway(res: TrackResult) -> str:
    return campaign_checks_takeaway(res.checks, res.currency)
