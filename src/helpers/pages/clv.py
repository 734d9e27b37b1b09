"""The page of notebook 04 (CLV), drawn from `helpers.clv.ClvResult`: the holdout comparison of the
purchase models (table, by-frequency view, tracking plot), the final parameters and the simulated
repeat purchases, the P(alive) and expected-purchase maps, the Gamma-Gamma independence check, the
distribution of CLV and its deciles, and CLV per RFM segment, each with its takeaway sentence.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from helpers import pages, plots
from helpers.clv import FREQUENCY_CAP, MODEL_NAMES, ClvResult

__all__ = [
    "comparison_table", "comparison_takeaway", "holdout_by_frequency_table", "plot_holdout_by_frequency",
    "plot_tracking", "tracking_takeaway", "params_table", "plot_period_transactions", "period_tx_takeaway",
    "plot_alive_matrices", "matrix_takeaway", "plot_monetary_correlation", "correlation_takeaway",
    "clv_summary_table", "plot_clv_distribution", "clv_takeaway", "decile_table", "plot_deciles",
    "segments_table", "plot_segments", "segment_takeaway", "segment_sentence", "alive_and_order_sentence",
    "summary_for_readers", "plot_matrix", "no_positive_purchase_phrase", "left_out_sentence", "answer",
    "rests_on", "glossary_table",
]

BGNBD_ONE_TIME = (" BG/NBD lets a customer drop out only right after a repeat purchase, so it cannot tell whether a "
                  "one-time buyer is still active: their P(alive) row is left blank; their chance of buying in the "
                  "purchase window (P(purchase)) is the figure to read for them.")


# --- holdout comparison ----------------------------------------------------------------------------

def comparison_table(result: ClvResult) -> pd.DataFrame:
    """Holdout metrics per model, the chosen one marked."""
    if result.comparison is None:
        return pd.DataFrame({"message": ["no holdout comparison (see notes)"]})
    t = result.comparison.drop(columns=["note"]).rename(index=MODEL_NAMES)
    used = MODEL_NAMES.get(result.model_json["model"])
    t["chosen"] = ["yes" if used == i else "" for i in t.index]
    t.index.name = "model"
    days = result.model_json["holdout_days"]
    return plots.table_for_readers(
        t, {"mae": "ratio", "rmse": "ratio", "predicted_total": "count", "actual_total": "count",
            "total_error_pct": "pct", "penalizer": "ratio"},
        names={"predicted_total": f"predicted repeat purchases, {days}-day holdout",
               "actual_total": f"actual repeat purchases, {days}-day holdout"})


def comparison_takeaway(result: ClvResult) -> str:
    """The choice rule, the chosen model's holdout error, then every note of the stage (failed or
    boundary fits, samples, fallbacks)."""
    lines = []
    card, comparison = result.model_json, result.comparison
    model = card["model"]
    if comparison is not None and not card["model_pinned"]:
        lines.append(f"Rule: among the models whose holdout MAE is within {result.settings.model_tolerance:.0%} of the "
                     "best, MBG/NBD is preferred, then Pareto/NBD, then BG/NBD (BG/NBD cannot let a one-time "
                     "buyer drop out).")
    if comparison is not None and model in comparison.index and np.isfinite(comparison.loc[model, "mae"]):
        c = comparison.loc[model]
        how = "pinned in the config" if card["model_pinned"] else "by that rule"
        lines.append(
            f"{MODEL_NAMES[card['model']]} is used ({how}): over the "
            f"{card['holdout_days']}-day holdout it predicted {c['predicted_total']:,.0f} repeat "
            f"purchases against {c['actual_total']:,.0f} actual ({c['total_error_pct']:+.1f} %), off by "
            f"{c['mae']:.2f} purchases per customer on average.")
    lines += result.notes
    return "\n".join(lines) if lines else "All fits converged within their budget."


def holdout_by_frequency_table(result: ClvResult) -> pd.DataFrame | None:
    """Mean actual and predicted holdout purchases per calibration repeat-purchase count."""
    if result.by_frequency is None:
        return None
    t = result.by_frequency
    return plots.table_for_readers(t, {**{c: "ratio" for c in t.columns if c != "customers"}, "customers": "count"},
                                   names={"actual": "actual (mean holdout purchases)"})


def plot_holdout_by_frequency(result: ClvResult, ax=None):
    """Mean actual vs predicted holdout purchases per calibration repeat-purchase count (None without
    a holdout comparison)."""
    if result.by_frequency is None:
        return None
    ax = plots.axes_or_new(ax)
    d = result.by_frequency.drop(columns=["customers"]).reset_index().melt(
        id_vars="calibration_repeat_purchases", var_name="series", value_name="purchases")
    sns.lineplot(data=d, x="calibration_repeat_purchases", y="purchases", hue="series", style="series",
                 markers=True, dashes=False, ax=ax, sort=False)
    ax.set_title(f"Holdout purchases by calibration frequency ({result.model_json['holdout_days']} days)")
    ax.set_xlabel("repeat purchases in the calibration period")
    ax.set_ylabel("mean purchases per customer in the holdout")
    ax.legend(title="", frameon=False)
    return ax


def plot_tracking(result: ClvResult, ax=None):
    """Cumulative repeat purchases, actual and expected, with the calibration end marked (None without
    a holdout comparison)."""
    if result.tracking is None:
        return None
    ax = plots.axes_or_new(ax)
    t = result.tracking
    ax.plot(t["date"], t["actual"], color="black", lw=2, label="actual")
    for m in [c for c in t.columns if c in MODEL_NAMES.values()]:
        ax.plot(t["date"], t[m], lw=1.3, ls="--", label=m)
    cal_end = pd.Timestamp(result.model_json["calibration_end"])
    ax.axvline(cal_end, color="grey", ls=":")
    ax.text(cal_end, ax.get_ylim()[1] * 0.95, " holdout →", va="top", color="grey")
    ax.set_title("Cumulative repeat purchases: actual vs model")
    ax.set_xlabel("date")
    ax.set_ylabel("cumulative repeat purchases")
    ax.yaxis.set_major_formatter(plots.thousands)
    ax.legend(frameon=False)
    return ax


def tracking_takeaway(result: ClvResult) -> str:
    """Holdout repeat purchases, actual vs expected by the chosen model: the holdout table's customers,
    then everyone the tracking plot counts."""
    if result.tracking is None:
        return "No tracking plot (no holdout comparison)."
    m = MODEL_NAMES.get(result.model_json["model"])
    if m not in result.tracking.columns:
        return ("The model used for the scores could not be fitted on the calibration period, so the plot shows "
                "the actual repeat purchases and the models that could.")
    last = result.tracking.iloc[-1]
    cal = result.tracking[~result.tracking["holdout"]].iloc[-1]
    act, exp = last["actual"] - cal["actual"], last[m] - cal[m]
    text = ""
    key = result.model_json["model"]
    if result.comparison is not None and key in result.comparison.index:
        c = result.comparison.loc[key]
        text = (f"The customers who had bought before the holdout made {c['actual_total']:,.0f} repeat purchases "
                f"in it; {m} expected {c['predicted_total']:,.0f} (the holdout table above). ")
    return text + (f"The plot also counts the customers who first bought during the holdout: {act:,.0f} repeat "
                   f"purchases in all, against {exp:,.0f} expected by {m} fitted on the calibration period "
                   f"({100 * (exp - act) / max(act, 1):+.1f} %).")


# --- final model -----------------------------------------------------------------------------------

def params_table(result: ClvResult) -> pd.DataFrame:
    """Final parameters of the purchase model and Gamma-Gamma."""
    card = result.model_json
    rows = [{"model": MODEL_NAMES.get(card["model"] or "", "-"), "parameter": k, "value": round(v, 4)}
            for k, v in card["params"].items()]
    rows += [{"model": "Gamma-Gamma", "parameter": k, "value": round(v, 4)} for k, v in card["gamma_gamma"].items()]
    if not rows:
        return pd.DataFrame({"message": ["no model could be fitted (see the notes above)"]})
    return pd.DataFrame(rows).set_index(["model", "parameter"])


def plot_period_transactions(result: ClvResult, ax=None):
    """Customers per number of repeat purchases: actual vs simulated by the fitted model (None without
    a purchase model)."""
    if result.period_tx is None:
        return None
    ax = plots.axes_or_new(ax)
    d = result.period_tx.reset_index().melt(id_vars="repeat_purchases", var_name="series", value_name="customers")
    sns.barplot(data=d, x="repeat_purchases", y="customers", hue="series", ax=ax)
    ax.set_title("Customers by number of repeat purchases: actual vs model")
    ax.set_xlabel("repeat purchases")
    ax.set_ylabel("customers")
    ax.yaxis.set_major_formatter(plots.thousands)
    ax.legend(title="", frameon=False)
    return ax


def period_tx_takeaway(result: ClvResult) -> str:
    """One-time buyers, actual vs simulated, and the largest gap across the repeat-purchase counts."""
    if result.period_tx is None:
        return "No purchase model could be fitted (see the notes above), so there is nothing to simulate."
    t = result.period_tx
    m = t.columns[1]
    return (f"{t['actual'].iloc[0]:,} customers never bought again; the fitted {m} simulates "
            f"{t[m].iloc[0]:,}. The largest gap across the counts is "
            f"{(t[m] - t['actual']).abs().max():,} customers.")


def plot_alive_matrices(result: ClvResult, ax=None):
    """P(alive) and expected purchases in the purchase window over frequency x recency, side by side
    on `ax` (a pair of axes; a new 16 x 6.5 in figure without) (None without a purchase model). Under
    BG/NBD the P(alive) row of one-time buyers is left blank: the model lets customers drop out only
    after a repeat purchase, so its 1.00 there means "not judged", not "certainly active"."""
    maps = result.alive
    if maps is None:
        return None
    clv = result.settings
    p = maps.p_alive.copy()
    if result.final.name == "bgnbd":
        p.iloc[0] = np.nan
    fig, axes = plt.subplots(1, 2, figsize=(16, 6.5)) if ax is None else (None, ax)
    first_seen = f"customers first seen {maps.age:,.0f} {clv.time_unit}s ago"
    plot_matrix(p, f"P(alive), {first_seen}", fmt=".0%", ax=axes[0])
    plot_matrix(maps.expected_purchases, f"Expected purchases, next {clv.purchase_window_days} days ({first_seen})",
                fmt=".2f", ax=axes[1])
    if fig is not None:
        fig.tight_layout()
    return axes


def matrix_takeaway(result: ClvResult) -> str:
    """P(alive) of a customer with 5 repeat purchases, the last at the cut-off or halfway through."""
    maps = result.alive
    if maps is None:
        return "No purchase model could be fitted (see the notes above), so there is no P(alive) map."
    return (f"For a customer first seen {maps.age:.0f} {result.settings.time_unit}s ago with 5 repeat purchases, "
            f"P(alive) is {maps.p_alive_last_at_cutoff:.0%} if the last one was at the cut-off and "
            f"{maps.p_alive_last_halfway:.0%} if it was halfway through."
            + (BGNBD_ONE_TIME if result.final.name == "bgnbd" else ""))


def plot_matrix(matrix: pd.DataFrame, title: str, fmt: str = ".2f", ax=None):
    """Heatmap of a frequency x recency matrix (see `helpers.clv.alive_matrix`); `fmt` formats the cell
    labels ('.0%' for probabilities, '.2f' for expected purchases), in a size legible at page width."""
    ax = plots.axes_or_new(ax)
    values = matrix.to_numpy(dtype=float)
    finite = values[np.isfinite(values)]  # a grid without any value (a tiny shop) still draws, silently
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    cells = max(matrix.shape[0] * matrix.shape[1], 1)
    sns.heatmap(matrix, cmap=plots.PALETTE, annot=True, fmt=fmt, annot_kws={"size": 8 if cells > 120 else 10},
                cbar=False, ax=ax, vmin=low, vmax=high)
    ax.invert_yaxis()
    ax.set_title(title)
    ax.set_xlabel(matrix.columns.name)
    ax.set_ylabel(matrix.index.name)
    return ax


# --- order values ----------------------------------------------------------------------------------

def plot_monetary_correlation(result: ClvResult, ax=None):
    """Repeat purchases vs mean repeat order value (repeat customers), the Gamma-Gamma assumption."""
    ax = plots.axes_or_new(ax)
    rep = result.scores[result.scores["frequency"] > 0]
    f = rep["frequency"].clip(upper=FREQUENCY_CAP)
    d = pd.DataFrame({"repeat purchases": f.astype(int).astype(str).where(f < FREQUENCY_CAP, f"{FREQUENCY_CAP}+"),
                      "order": f, "value": rep["monetary_value"]}).sort_values("order")
    sns.boxplot(data=d, x="repeat purchases", y="value", color=sns.color_palette()[0], showfliers=False, ax=ax)
    ax.set_title("Mean repeat order value by number of repeat purchases")
    ax.set_xlabel("repeat purchases")
    ax.set_ylabel(f"mean repeat order value ({result.currency})")
    ax.yaxis.set_major_formatter(plots.thousands)
    return ax


def correlation_takeaway(result: ClvResult) -> str:
    """The frequency / order value correlation against its warning level."""
    c = result.correlation
    if not np.isfinite(c):
        return "Too few repeat customers to check the Gamma-Gamma independence assumption."
    lim = result.settings.correlation_warning
    verdict = ("within" if abs(c) <= lim else "ABOVE") + f" the |{lim}| warning level"
    return (f"Correlation between repeat purchases and mean order value: {c:+.3f}, {verdict}; Gamma-Gamma "
            "assumes they are independent.")


# --- CLV -------------------------------------------------------------------------------------------

def summary_for_readers(dist: pd.DataFrame, currency: str = "EUR", time_unit: str = "day") -> pd.DataFrame:
    """`score_distribution` of `scores_for_report` (helpers.clv) for reading: each row (a score) under its
    reader name (``T`` -> 'days since first purchase', ``recency`` -> 'days from first to last purchase', ...)
    and formatted in its unit: days, money with the currency, probabilities in %, purchases with 2 decimals."""
    unit = "days" if time_unit == "day" else "weeks"
    rows, labels = [], []
    for name, row in dist.iterrows():
        kind = ("days" if name in ("recency", "T") else "money2" if name in ("monetary_value", "exp_avg_value")
                or name.startswith("clv") else "share" if name.startswith("p_") else "ratio")
        label = plots.display_name(name)
        if unit != "days" and name in ("recency", "T"):  # lifetimes' times are in the model's unit
            label = label.replace("days", unit)
        if kind == "money2":
            label = f"{label[:-1]}, {currency})" if label.endswith(")") else f"{label} ({currency})"
        rows.append([plots.format_cell(v, kind) for v in row])
        labels.append(label)
    out = pd.DataFrame(rows, index=pd.Index(labels, name="score"), columns=dist.columns)
    return out.rename(columns={"50%": "median"})


def clv_summary_table(result: ClvResult) -> pd.DataFrame:
    """Distribution of the per-customer scores (mean and quantiles), one row per score and horizon,
    each in its unit and under its reader name (the numbers: the result's `score_summary`)."""
    return summary_for_readers(result.score_summary, result.currency, result.settings.time_unit)


def plot_clv_distribution(result: ClvResult, ax=None):
    """Histogram of CLV over the configured months (log scale on x), median marked."""
    ax = plots.axes_or_new(ax)
    v = result.scores["clv"]
    v = v[v >= 0.01]  # below a cent a log axis would stretch over tiny, meaningless values
    sns.histplot(v, bins=50, log_scale=True, ax=ax, color=sns.color_palette()[0])
    ax.axvline(v.median(), color="black", ls="--", label=f"median {v.median():,.0f}")
    ax.set_title(f"{result.settings.clv_months}-month CLV per customer")
    ax.set_xlabel(f"CLV, margin ({result.currency}, log scale)")
    ax.set_ylabel("customers")
    ax.xaxis.set_major_formatter(plots.plain_number)  # '1,000', not '10^3'
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.yaxis.set_major_formatter(plots.thousands)
    ax.legend(frameon=False)
    return ax


def no_positive_purchase_phrase(left_out: dict, time_unit: str = "day") -> str:
    """'N customers have no positive purchase (how many for each reason)', the subject of 04's and 05's
    sentence on the customers they leave out (`customer_facts.no_positive_counts`); '' for none."""
    total = sum((left_out or {}).values())
    if not total:
        return ""
    why = [f"{left_out[r]:,} {text}" for r, text in (
        ("zero_price", "bought only zero-price lines"),
        ("returned", f"had every purchase cancelled by returns or credit notes within the {time_unit}"))
        if left_out.get(r, 0)]
    return f"{total:,} customer{'s' if total != 1 else ''} whose purchases net to zero or less ({' and '.join(why)})"


def left_out_sentence(result: ClvResult) -> str:
    """How many customers 04 leaves out and why (no positive purchase); '' when it leaves out nobody."""
    phrase = no_positive_purchase_phrase(result.left_out, result.settings.time_unit)
    if not phrase:
        return ""
    return (f"{phrase[0].upper()}{phrase[1:]} are not valued: the purchase model has no purchase of theirs to "
            "learn from, so their CLV is left empty (they are counted as customers on the other pages).")


def clv_takeaway(result: ClvResult) -> str:
    """Total and median CLV, the top decile's share, the share of customers likely active, and the
    customers left out (`left_out_sentence`)."""
    s, cur = result.scores, result.currency
    total = s["clv"].sum()
    top = s["clv"].nlargest(max(1, len(s) // 10)).sum()
    text = (f"The {len(s):,} customers are expected to bring {plots.money(total, cur)} of margin over the next "
            f"{result.settings.clv_months} months (median {plots.money(s['clv'].median(), cur)} per customer); "
            f"the top 10 % hold {100 * top / total:.0f} % of it." if total > 0 else "No positive CLV.")
    if s["p_alive"].notna().any():
        bgnbd = result.model_json["model"] == "bgnbd"
        judged = s[s["frequency"] > 0] if bgnbd else s
        text += (f" {plots.likely_active(judged['p_alive']).mean():.0%} of "
                 f"{'repeat customers' if bgnbd else 'customers'} are likely active ({plots.likely_active_definition()})"
                 f"{'; BG/NBD does not judge one-time buyers' if bgnbd else ''}. "
                 + plots.alive_vs_churn(result.churn_horizon_days))
    left_out = left_out_sentence(result)
    return text + (" " + left_out if left_out else "")


def decile_table(result: ClvResult) -> pd.DataFrame:
    """Customers ranked by CLV in ten equal groups: CLV share and cumulative share per decile, for
    reading (the numbers: the result's `deciles`)."""
    return plots.table_for_readers(result.deciles,
                                   {"customers": "count", "clv_share_pct": "pct", "cumulative_pct": "pct"},
                                   names={"clv decile": "CLV decile"})


def plot_deciles(result: ClvResult, ax=None):
    """Share of total CLV per customer decile."""
    ax = plots.axes_or_new(ax)
    d = result.deciles.reset_index()
    sns.barplot(data=d, x="clv decile", y="clv_share_pct", color=sns.color_palette()[0], ax=ax)
    ax.set_title("Share of total CLV per customer decile")
    ax.set_xlabel("customers ranked by CLV")
    ax.set_ylabel("share of total CLV")
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0f}%"))
    ax.tick_params(axis="x", rotation=30)
    return ax


# --- CLV by RFM segment ----------------------------------------------------------------------------

def segments_table(result: ClvResult) -> pd.DataFrame | None:
    """CLV per RFM segment (see `helpers.clv.clv_by_segment_table`) for reading, or None when segments.parquet
    is absent."""
    if result.segments is None:
        return None
    months, window, currency = result.settings.clv_months, result.settings.purchase_window_days, result.currency
    return plots.table_for_readers(
        result.segments, {"customers": "count", "mean_clv": "money2", "total_clv": "money", "mean_p_alive": "share0",
                          "mean_p_purchase": "share0", "mean_repeat_purchases": "number1", "clv_share_pct": "pct"},
        currency, names={"mean_clv": f"mean CLV, next {months} months (margin, {currency})",
                         "total_clv": f"total CLV, next {months} months (margin, {currency})",
                         "mean_p_purchase": f"mean P(order in the next {window} days)"})


def plot_segments(result: ClvResult, ax=None):
    """Mean CLV per RFM segment (horizontal bars), or nothing (None) without segments."""
    if result.segments is None:
        return None
    return plots.plot_share_bars(result.segments.reset_index(), "segment", "mean_clv",
                                 title=f"Mean {result.settings.clv_months}-month CLV per segment",
                                 xlabel=f"mean CLV, margin ({result.currency})", ax=ax)


def segment_takeaway(result: ClvResult) -> str:
    """`segment_sentence` of the result's CLV per segment."""
    return segment_sentence(result.segments, result.currency, result.settings.purchase_window_days)


def segment_sentence(table: pd.DataFrame | None, currency: str = "EUR", window_days: int = 90) -> str:
    """The segment worth the most, the one holding the largest share of CLV, and the one least likely
    to order soon, from a `clv_by_segment_table` table (None: segments.parquet absent)."""
    if table is None:
        return ("segments.parquet is not there yet (run notebook 03 for this month), so CLV by segment is "
                "left out.")
    if not (table["total_clv"] > 0).any():
        return ("No segment holds a positive CLV this month (see the CLV section above), so there is no share of "
                "CLV to split between them." + alive_and_order_sentence(table, window_days))
    best = table.index[0]
    text = (f"'{best}' customers are worth the most ({plots.money(table['mean_clv'].iloc[0], currency)} each on "
            f"average); the largest share of total CLV sits in '{table['clv_share_pct'].idxmax()}' "
            f"({table['clv_share_pct'].max():.0f} %).")
    return text + alive_and_order_sentence(table, window_days)


def alive_and_order_sentence(table: pd.DataFrame, window_days: int) -> str:
    """The segment least likely to order soon, and why segments with fewer orders can show a higher
    P(alive) than segments that bought often and went quiet ("" without a purchase model)."""
    t = table.dropna(subset=["mean_p_alive", "mean_p_purchase"])
    if t.empty:
        return ""
    least = t["mean_p_purchase"].idxmin()
    row = t.loc[least]
    text = (f" '{least}' is the least likely to order in the next {window_days} days "
            f"({row['mean_p_purchase']:.0%} on average)")
    lower = t[(t["mean_p_alive"] < row["mean_p_alive"]) & (t["mean_repeat_purchases"] > row["mean_repeat_purchases"])]
    if lower.empty:
        return text + "."
    names = " and ".join(f"'{n}' ({lower.loc[n, 'mean_p_alive']:.0%})"
                         for n in lower.sort_values("mean_p_alive").index[:2])
    return (text + f", although its mean P(alive) ({row['mean_p_alive']:.0%}) is above that of {names}: "
            "a long silence after several orders is stronger evidence of having left than the same silence "
            "after one order, but a customer who bought once is unlikely to order soon either way.")


# --- the answer, what it rests on, the glossary ------------------------------------------------------

def answer(result: ClvResult) -> str:
    """The page's answer: what the customers are expected to bring (margin, not revenue) over the horizon, how
    concentrated it is, and which segment is worth the most per customer and holds the most in total."""
    s, cur, months = result.scores, result.currency, result.settings.clv_months
    total = s["clv"].sum()
    if total <= 0:
        return ("No customer has a positive predicted CLV this month. " + left_out_sentence(result)).strip()
    top = s["clv"].nlargest(max(1, len(s) // 10)).sum()
    band = result.model_json.get("clv_total_band")
    sure = (f" (5-95 % from the models' parameter uncertainty: {plots.money(band[0], cur)} to "
            f"{plots.money(band[1], cur)})" if band else "")
    text = (f"The {len(s):,} customers are expected to bring {plots.money(total, cur)} of margin (not revenue) over "
            f"the next {months} months{sure}; the top 10 % of them hold {100 * top / total:.0f} % of it.")
    t = result.segments
    if t is not None and (t["total_clv"] > 0).any():
        text += (f" '{t.index[0]}' customers are worth the most, {plots.money(t['mean_clv'].iloc[0], cur)} of margin "
                 f"each on average; '{t['clv_share_pct'].idxmax()}' holds the largest share of the total "
                 f"({t['clv_share_pct'].max():.0f} %).")
    return text


def rests_on(result: ClvResult, cfg) -> pages.RestsOn:
    """The settings this page's money is computed with."""
    return pages.rests_on(cfg, ["clv.gross_margin", "clv.monthly_discount_rate", "clv.clv_months",
                                "clv.purchase_window_days", "forecast.band"],
                          "Every amount on this page is predicted by the purchase and order-value models fitted on "
                          "this shop's history (checked on a holdout and a backtest below): CLV as margin, the "
                          "forecast as revenue and margin; only the chart's past months and the backtest's actual "
                          "figures are measured.")


def glossary_table(result: ClvResult, forecast=None) -> pd.DataFrame:
    """The page's terms, models and settings (with the forecast section's when `forecast`, a
    `helpers.forecast.ForecastResult`, is given)."""
    extra = {} if forecast is None else {
        "purchases (forecast)": "the days on which a customer bought (weeks with clv.time_unit: week), as the purchase "
                                "models count them; revenue is their net value (a return on a later day not deducted)",
        "forecast band": f"{forecast.settings.band:.0%} of {forecast.settings.draws} draws (forecast.band, "
                         "forecast.draws): the models' parameters, the chance in who buys and the purchase model's miss "
                         "on its holdout total; for customers still to be won, the new-customer model's paths and the "
                         "miss of the same forecast made max(forecast.backtest_months) months ago",
        "customers still to be won": "customers whose first purchase falls after this month; forecast from the "
                                     "monthly count of first purchases (statsmodels' exponential smoothing) and what "
                                     f"the newest {forecast.settings.curve_cohorts} monthly cohorts bought in their "
                                     "first months (forecast.curve_cohorts)",
        "backtest": "the same forecast made at an earlier month-end (forecast.backtest_months ago), the models "
                    "refitted on the history up to then, against what happened",
    }
    return pages.glossary({
        "CLV": f"customer lifetime value: the expected margin of a customer over the next {result.settings.clv_months} "
               "months (clv.clv_months), discounted monthly (clv.monthly_discount_rate)",
        "P(alive)": "the chance that a customer has not left for good (50 % or more: likely active)",
        "BG/NBD, Pareto/NBD, MBG/NBD": "purchase models (Fader, Hardie et al.; the lifetimes library): each customer "
                                       "buys at their own rate while active and may leave for good",
        "Gamma-Gamma": "the order-value model: a customer's average order value, shrunk toward the shop's",
        "holdout": f"the last {result.model_json.get('holdout_days', result.settings.holdout_days)} days "
                   "(clv.holdout_days): models fitted before it are judged on the purchases in it",
        "MAE, RMSE": "per-customer errors in purchases (mean absolute, root mean squared)",
        "CLV band": "5-95 % of 2,000 draws of both models' parameters from their estimated covariance (the inverse "
                    "Hessian of the likelihood; no refits): how sure the models are of the expected total, without "
                    "the chance in who actually buys",
        "total_error_pct": "predicted against actual total purchases in the holdout, in %",
        "horizons": f"{', '.join(str(h) for h in result.settings.horizons_days)} days (clv.horizons_days) for the "
                    "expected purchases; the purchase window is clv.purchase_window_days",
        **extra,
    })
