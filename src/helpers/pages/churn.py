"""The page of notebook 05 (churn risk), drawn from `helpers.churn.ChurnResult`: the churn definition,
the backtest metrics of the three models and the chosen one, calibration, what the model relies on
(permutation importance), customers per risk tier with the reasons that set each tier apart and the
CLV they carry, tiers within each RFM segment, and what was written for the later stages. Each
``*_numbers`` function keeps a table's numbers (for figures, sentences and tests); the function of
the notebook's name shows that table for reading.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from helpers import pages, plots
from helpers.churn import TIERS, ChurnResult, reason_features, tier_shares
from helpers.pages.clv import no_positive_purchase_phrase

MODEL_NAMES = {"bgnbd": "purchase-model P(no purchase)", "recency": "days since last order only",
               "model": "gradient boosting (calibrated)"}

# Readable names for the features (tables and figures), from the reports' one vocabulary
# (plots.DISPLAY_NAMES); mix shares are named when built. The two purchase-model columns say where
# they come from.
FEATURE_LABELS = {
    **{f: plots.display_name(f) for f in (
        "recency_days", "tenure_days", "orders", "revenue_gross", "avg_order_value", "gap_mean_days", "gap_last_days",
        "gap_trend", "overdue_ratio", "return_share", "category_breadth", "discount_share", "age_years",
        "marketing_opt_in", "gender", "region")},
    "p_alive": "purchase-model P(alive)",
    "p_no_purchase": "purchase-model P(no order in the horizon)",
}


def feature_label(name: str) -> str:
    """Readable name of a feature column (tables and figures)."""
    if name in FEATURE_LABELS:
        return FEATURE_LABELS[name]
    m = re.match(r"(channel|payment_method)_share_(.+)", name)
    if m:
        return f"share of orders via {m.group(2)}" if m.group(1) == "channel" else f"share of orders paid by {m.group(2)}"
    return name


def definition_text(result: ChurnResult) -> str:
    """The churn definition in one sentence, as churn_model.json records it (`churn.definition_text`)."""
    return result.card["definition"]


# --------------------------------------------------------------------------- backtest

def metrics_numbers(result: ChurnResult) -> pd.DataFrame:
    """The backtest metrics side by side, one row per model (readable names)."""
    m = result.metrics.copy()
    m.index = [MODEL_NAMES.get(i, i) for i in m.index]
    m.index.name = "model"
    return m.rename(columns={"roc_auc": "ROC-AUC", "pr_auc": "PR-AUC", "brier": "Brier score",
                             "top_decile_lift": "top-10% lift", "top_decile_captured": "churners in top 10%"})


def metrics_table(result: ChurnResult) -> pd.DataFrame:
    """`metrics_numbers` for reading: scores with 3 decimals, lift with 2, the churners' share in %."""
    return plots.table_for_readers(metrics_numbers(result), {"ROC-AUC": "number3", "PR-AUC": "number3",
                                                             "Brier score": "number3", "top-10% lift": "ratio",
                                                             "churners in top 10%": "share"})


def metrics_takeaway(result: ChurnResult) -> str:
    if not result.backtest_ok:
        return " ".join([result.backtest_note, *result.failures])
    m = result.metrics
    rate = result.test_predictions["churned"].mean()
    parts = [result.backtest_note,
             f"{rate:.0%} of the test customers churned in the {result.horizon_days} days after the cut-off."]
    rec = m.loc["recency", "roc_auc"]
    bg = f" and {m.loc['bgnbd', 'roc_auc']:.3f} for the purchase-model baseline" if "bgnbd" in m.index else ""
    if "model" in m.index:
        parts.append(f"The calibrated model ranks churners with ROC-AUC {m.loc['model', 'roc_auc']:.3f} against "
                     f"{rec:.3f} for recency alone{bg}; its top 10% holds "
                     f"{m.loc['model', 'top_decile_captured']:.0%} of all churners.")
    else:
        parts.append(f"Recency alone ranks churners with ROC-AUC {rec:.3f}{bg}.")
    parts += result.failures
    parts.append(f"Chosen for scoring: {MODEL_NAMES[result.chosen_model]}.")
    return " ".join(parts)


def calibration_table(result: ChurnResult, bins: int = 10) -> pd.DataFrame:
    """Mean predicted vs observed churn rate per probability decile bin, per model (test window)."""
    pred = result.test_predictions
    rows = []
    for key, col in (("bgnbd", "p_bgnbd"), ("recency", "p_recency"), ("model", "p_model")):
        if col not in pred or pred[col].isna().all():
            continue
        b = np.clip((pred[col].to_numpy(dtype=float) * bins).astype(int), 0, bins - 1)
        g = pd.DataFrame({"bin": b, "p": pred[col].astype(float), "y": pred["churned"].astype(float)}).groupby("bin")
        for k, grp in g:
            rows.append({"model": MODEL_NAMES[key], "predicted": f"{k / bins:.1f}-{(k + 1) / bins:.1f}",
                         "customers": len(grp), "mean_predicted": round(grp["p"].mean(), 3),
                         "observed_churn": round(grp["y"].mean(), 3)})
    cols = ["model", "predicted", "customers", "mean_predicted", "observed_churn"]
    return pd.DataFrame(rows, columns=cols).set_index(["model", "predicted"])


def plot_calibration(result: ChurnResult, ax=None):
    """Reliability curves on the test window: observed churn rate vs predicted probability, per model."""
    ax = plots.axes_or_new(ax)
    cal = calibration_table(result).reset_index()
    for name, grp in cal.groupby("model", sort=False):
        ax.plot(grp["mean_predicted"], grp["observed_churn"], marker="o", label=name)
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(f"Calibration on the test window (cut-off {result.cutoffs['test_cutoff']})")
    ax.set_xlabel(f"predicted probability of no order in {result.horizon_days} days")
    ax.set_ylabel("observed share churned")
    ax.xaxis.set_major_formatter(plots.percent_axis)
    ax.yaxis.set_major_formatter(plots.percent_axis)
    ax.legend(loc="upper left", frameon=False)
    return ax


def calibration_takeaway(result: ChurnResult) -> str:
    if not result.backtest_ok:
        return "No calibration check: the backtest did not run."
    cal = calibration_table(result).reset_index()
    gaps = {}
    for name, grp in cal.groupby("model", sort=False):
        w = grp["customers"] / grp["customers"].sum()
        gaps[name] = float((w * (grp["mean_predicted"] - grp["observed_churn"]).abs()).sum())
    best = min(gaps, key=gaps.get)
    return ("Average gap between predicted and observed churn (customer-weighted): "
            + ", ".join(f"{k} {v:.1%}" for k, v in gaps.items()) + f"; best calibrated: {best}.")


# --------------------------------------------------------------------------- what the model relies on

def importance_numbers(result: ChurnResult, top: int = 12) -> pd.DataFrame:
    """The `top` features by permutation importance (drop in test ROC-AUC when shuffled)."""
    imp = result.importance.head(top).copy()
    imp.index = [feature_label(i) for i in imp.index]
    imp.index.name = "feature"
    return imp.rename(columns={"importance_mean": "ROC-AUC drop (mean)", "importance_std": "ROC-AUC drop (sd)"})


def importance_table(result: ChurnResult, top: int = 12) -> pd.DataFrame:
    """`importance_numbers` for reading (drops in ROC-AUC with 4 decimals)."""
    t = importance_numbers(result, top)
    return plots.table_for_readers(t, {c: "number4" for c in t.columns})


def importance_note(result: ChurnResult) -> str:
    """Which model the importances describe, and whether it is the one that scores the customers."""
    if result.chosen_model == "model":
        return "These are the features of the model that scores the customers this month."
    return (f"These importances describe the gradient-boosting model, which is not the one scoring the customers this "
            f"month ({MODEL_NAMES[result.chosen_model]} is): they show what separates churners in the data, not how "
            "the scores above were made.")


def plot_importance(result: ChurnResult, top: int = 12, ax=None):
    """Horizontal bars: drop in test ROC-AUC when each feature is shuffled (mean +/- sd)."""
    ax = plots.axes_or_new(ax)
    imp = importance_numbers(result, top).iloc[::-1]
    ax.barh(imp.index, imp.iloc[:, 0], xerr=imp.iloc[:, 1], color=plots.sns.color_palette()[0])
    ax.set_title("What the gradient-boosting model relies on (permutation importance, test window)")
    ax.set_xlabel("drop in ROC-AUC when the feature is shuffled")
    ax.set_ylabel("")
    return ax


# --------------------------------------------------------------------------- risk tiers

def tier_numbers(result: ChurnResult) -> pd.DataFrame:
    """Customers, share and mean churn probability per risk tier at as_of."""
    s = result.scored
    g = s.groupby("risk_tier", observed=False)
    out = pd.DataFrame({"customers": g.size(), "share": (g.size() / len(s)).round(3),
                        "mean_churn_probability": g["churn_probability"].mean().round(3)})
    lo, hi = result.card["tier_thresholds"]["medium_from"], result.card["tier_thresholds"]["high_from"]
    out.insert(0, "churn probability", [f"below {lo:.0%}", f"{lo:.0%} to {hi:.0%}", f"{hi:.0%} and above"])
    out.index.name = "risk tier"
    return out


def tier_table(result: ChurnResult) -> pd.DataFrame:
    """`tier_numbers` for reading: customers with separators, shares and probabilities in %."""
    # 05 scores every customer who had bought by as_of, not only those active (buying) in the month
    return plots.table_for_readers(tier_numbers(result), {"customers": "count", "share": "share",
                                                          "mean_churn_probability": "share"},
                                   names={"customers": f"customers who had bought by {result.as_of}",
                                          "share": "share of customers"})


def tier_reasons(result: ChurnResult, top_features: int = 8, reasons: int = 3) -> pd.DataFrame:
    """Per risk tier, the features (among the most important) where the tier differs most from all
    customers: median in the tier vs median overall, distance measured in overall interquartile ranges."""
    s = result.scored
    candidates = reason_features(result.importance, s.columns, top_features)
    values = s[candidates]  # the candidates' columns only: each tier's rows are taken of these, not of every column
    overall = values.median()
    iqr = (values.quantile(0.75) - values.quantile(0.25)).replace(0, np.nan)
    iqr = iqr.fillna(values.std()).replace(0, 1.0)
    rows = {}
    for tier in TIERS:
        grp = values[(s["risk_tier"] == tier).to_numpy()]
        if grp.empty:
            rows[tier] = ["no customers"]
            continue
        med = grp.median()
        z = ((med - overall) / iqr).abs().fillna(0).sort_values(ascending=False, kind="stable")
        rows[tier] = [f"{feature_label(f)}: {_fmt(med[f], f)} (all {_fmt(overall[f], f)})" for f in z.index[:reasons]]
    out = pd.DataFrame.from_dict({t: (r if isinstance(r, list) else [r]) for t, r in rows.items()}, orient="index")
    out.columns = [f"reason {i + 1} (tier median vs all)" for i in range(out.shape[1])]
    out = out.fillna("")
    out.index.name = "risk tier"
    return out


def _fmt(v: float, feature: str = "") -> str:
    """A tier median as a reader reads it: probabilities and shares in % ('38%'), other figures by size."""
    if pd.isna(v):
        return "n/a"
    if feature.startswith("p_") or feature.endswith("_share"):
        return f"{v:.0%}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.0f}"
    if abs(v) >= 1:
        return f"{v:.1f}"
    return f"{v:.2f}"


def left_out_sentence(result: ChurnResult) -> str:
    """How many customers this page does not score and why (no positive purchase); '' for none."""
    phrase = no_positive_purchase_phrase(result.left_out, result.time_unit)
    if not phrase:
        return ""
    return (f"{phrase[0].upper()}{phrase[1:]} are not scored: no model has a purchase of theirs to judge, so "
            "their churn risk is left empty rather than set to 100 %.")


def _tiers_sentence(result: ChurnResult, definition: str, sep: str) -> str:
    """'At <as_of>, N of the M customers who had bought by then (S) are at high churn risk<definition><sep>carrying
    EUR X of predicted 12-month CLV (10% of the total); K are at medium risk.'"""
    t = tier_numbers(result)
    high = t.loc["high"]
    text = (f"At {result.as_of}, {int(high['customers']):,} of the {int(t['customers'].sum()):,} customers who had "
            f"bought by then ({high['share']:.0%}) are at high churn risk{definition}")
    if result.clv_at_risk is not None and int(high["customers"]) > 0:
        at_risk, total = result.clv_at_risk
        share = f" ({at_risk / total:.0%} of the total)" if total > 0 else ""
        text += f"{sep}carrying {plots.money(at_risk, result.currency)} of predicted {result.clv_months}-month CLV{share}"
    return text + f"; {int(t.loc['medium', 'customers']):,} are at medium risk."


def tier_takeaway(result: ChurnResult) -> str:
    """How many customers are at high and medium churn risk, the predicted CLV the high-risk ones carry
    (04's clv.parquet), how many of them the purchase model still finds likely active (04's P(alive),
    the same fit as this page's baseline), and the customers left unscored (`left_out_sentence`)."""
    high, horizon = tier_numbers(result).loc["high"], result.card["horizon_days"]
    definition = plots.high_churn_risk_definition(result.card["tier_thresholds"]["high_from"], horizon)
    text = _tiers_sentence(result, f" ({definition})", ", ")
    s = result.scored
    if s["p_alive_baseline"].notna().any() and int(high["customers"]) > 0:
        both = int((plots.likely_active(s["p_alive_baseline"].to_numpy()).to_numpy() & (s["risk_tier"] == "high").to_numpy()).sum())
        text += (f" {both:,} of the high-risk customers are still likely active in notebook 04 "
                 f"({plots.likely_active_definition()}). {plots.alive_vs_churn(horizon)}")
    left_out = left_out_sentence(result)
    return text + (" " + left_out if left_out else "")


# --------------------------------------------------------------------------- tiers by RFM segment

def tiers_by_segment_numbers(result: ChurnResult) -> pd.DataFrame:
    """`helpers.churn.tiers_by_segment_table` of this month's scores and segments, as the stage computed it once
    for the table, the figure and the sentence (the engine joins them: the page holds no customer's id)."""
    return result.tiers_by_segment if result.tiers_by_segment is not None else tier_shares(None)


def tiers_by_segment_for_readers(table: pd.DataFrame) -> pd.DataFrame:
    """`helpers.churn.tier_shares` for reading (the one-row note without segments stays as it is)."""
    if "note" in table.columns:
        return table
    shares = {f"share {t}": "share" for t in TIERS}
    return plots.table_for_readers(table, {"customers": "count", **shares, "mean_churn_probability": "share"},
                                   names={f"share {t}": f"share at {t} risk" for t in TIERS})


def tiers_by_segment(result: ChurnResult) -> pd.DataFrame:
    """Each RFM segment's customers per risk tier, for reading (`tiers_by_segment_for_readers`)."""
    return tiers_by_segment_for_readers(tiers_by_segment_numbers(result))


def plot_tiers_by_segment(result: ChurnResult, ax=None):
    """Stacked horizontal bars: share of each segment's customers in each risk tier."""
    ax = plots.axes_or_new(ax)
    table = tiers_by_segment_numbers(result)
    if "note" in table.columns:
        ax.text(0.5, 0.5, table["note"].iloc[0], ha="center", va="center", wrap=True)
        ax.set_axis_off()
        return ax
    shares = table[[f"share {t}" for t in TIERS]].iloc[::-1]
    left = np.zeros(len(shares))
    colors = {"low": "#7fbf7b", "medium": "#fdb863", "high": "#d6604d"}
    for t in TIERS:
        vals = shares[f"share {t}"].to_numpy()
        ax.barh(shares.index, vals, left=left, color=colors[t], label=t)
        left += vals
    ax.set_xlim(0, 1)
    ax.set_title("Churn risk tiers within each RFM segment")
    ax.set_xlabel("share of the segment's customers")
    ax.xaxis.set_major_formatter(plots.percent_axis)
    ax.set_ylabel("")
    ax.legend(title="risk tier", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return ax


def segment_takeaway(result: ChurnResult) -> str:
    table = tiers_by_segment_numbers(result)
    if "note" in table.columns:
        return str(table["note"].iloc[0])
    worst = table.index[0]
    big = table.sort_values("customers", ascending=False).index[0]
    return (f"Highest mean churn probability: {worst} ({table.loc[worst, 'mean_churn_probability']:.0%}, "
            f"{table.loc[worst, 'share high']:.0%} high risk). The largest segment, {big}, has "
            f"{table.loc[big, 'share high']:.0%} of its customers at high risk.")


# --------------------------------------------------------------------------- outputs

def outputs_text(result: ChurnResult) -> str:
    """What was written for the later stages (no paths, no customer ids)."""
    c = result.card
    return (f"churn.parquet: the {len(result.scored):,} customers who had bought by {result.as_of}, with churn_probability "
            f"({MODEL_NAMES[result.chosen_model]}), risk_tier and the purchase-model p_alive baseline. churn_model.json: "
            f"definition, {c['horizon_days']}-day horizon, backtest metrics of all three models, chosen model, "
            f"thresholds, training ({c['train']['customers']:,} customers) and test ({c['test']['customers']:,}) "
            f"sizes and dates.")


# --------------------------------------------------------------------------- the answer, box, glossary

SCORED_BY = {"bgnbd": "purchase model of notebook 04", "recency": "days since the last order",
             "model": "gradient-boosting model"}


def answer(result: ChurnResult) -> str:
    """The page's answer: how many customers are at high and medium risk and the CLV they carry, which model
    scores them and how it did against sorting by the days since the last order, on a period it had not seen."""
    text = _tiers_sentence(result, f" - a chance of {result.card['tier_thresholds']['high_from']:.0%} or more of no "
                                   f"order in the next {result.card['horizon_days']} days", " - ")
    m, chosen = result.metrics if result.backtest_ok else None, result.chosen_model
    if m is not None and chosen in m.index and "recency" in m.index and chosen != "recency":
        text += (f" The scores come from the {SCORED_BY[chosen]}: in a backtest on a period it had not seen, its "
                 f"riskiest tenth held {m.loc[chosen, 'top_decile_captured']:.0%} of the customers who then stopped "
                 f"buying, against {m.loc['recency', 'top_decile_captured']:.0%} when sorting by days since the last "
                 "order.")
    else:
        text += f" The scores come from the {SCORED_BY[chosen]}."
    return text


def rests_on(result: ChurnResult, cfg) -> pages.RestsOn:
    """The settings this page's risk and money are computed with."""
    return pages.rests_on(cfg, ["churn.horizon_days", "clv.gross_margin", "clv.clv_months"],
                          "The CLV at risk is notebook 04's predicted margin of the high-risk customers: a model's "
                          "estimate, not measured revenue.")


def glossary_table(result: ChurnResult) -> pd.DataFrame:
    """The page's terms and settings."""
    lo, hi = result.card["tier_thresholds"]["medium_from"], result.card["tier_thresholds"]["high_from"]
    return pages.glossary({
        "churn": f"no order in the {result.horizon_days} days after a cut-off (churn.horizon_days); returns are not "
                 "orders",
        "risk tiers": f"high from a churn probability of {hi:.0%}, medium from {lo:.0%} (churn.tier_thresholds)",
        "purchase-model P(no purchase)": "the chance of no order in the horizon from notebook 04's purchase model",
        "gradient boosting": "a model over every customer feature (scikit-learn), its probabilities calibrated",
        "ROC-AUC, PR-AUC": "how well a model ranks churners above the others (1 = perfect)",
        "Brier score": "the mean squared error of the probabilities (lower is better)",
        "top-10% lift": "the churn rate in the riskiest tenth against the churn rate overall",
        "permutation importance": "how much a model's ROC-AUC drops when one feature's values are shuffled",
        "as_of": f"the cut-off, {result.as_of}; the backtest learns at as_of - 2H and is judged at as_of - H",
    })
