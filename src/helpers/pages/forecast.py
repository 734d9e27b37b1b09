"""The forecast section of notebook 04's page, drawn from `helpers.forecast.ForecastResult`: the answer (what
the customers we have and those still to come will bring), the monthly chart with its band beside the past
24 months, the sums over 3, 6 and 12 months, the backtest and what a new customer brings in their first months.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from helpers import plots
from helpers.forecast import ForecastResult

__all__ = ["answer", "plot_forecast", "totals_table", "backtest_table", "backtest_takeaway", "curve_table",
           "method_sentence", "SOURCE_NAMES", "acquisition_answer", "acquisition_table", "spend_table",
           "spend_month_table", "plot_ltv_curves"]

SMALL = (8, 3.6)  # the section's two charts, a little smaller than the reports' size (the page is mailed)
SOURCE_NAMES = {"existing": "customers you have", "new": "customers still to be won", "all": "all customers"}


def _band(result: ForecastResult) -> str:
    return f"{result.settings.band:.0%}"


def _range(low: float, high: float, currency: str | None = None) -> str:
    if currency:
        return f"{plots.money(low, currency)} to {plots.money(high, currency)}"
    return f"{low:,.0f} to {high:,.0f}"


def _row(result: ForecastResult, months: int, source: str) -> pd.Series | None:
    t = result.totals
    if t.empty:
        return None
    hit = t[(t["months"] == months) & (t["source"] == source)]
    return hit.iloc[0] if len(hit) else None


def answer(result: ForecastResult) -> str:
    """The section's answer: what the customers we have will bring over the longest horizon (revenue and margin,
    with the band), what new customers add, and how far the same forecast made a horizon ago was off."""
    cur, band = result.currency, _band(result)
    h = max(result.settings.horizons_months)
    ex, new = _row(result, h, "existing"), _row(result, h, "new")
    parts = []
    if ex is not None:
        parts.append(f"Over the next {h} months the customers you have are expected to bring "
                     f"{plots.money(ex['revenue'], cur)} of revenue ({band} band: {_range(ex['revenue_low'], ex['revenue_high'], cur)}), "
                     f"{plots.money(ex['margin'], cur)} of margin, in {ex['purchases']:,.0f} purchases.")
    if new is not None:
        parts.append(f"Customers still to be won would add {plots.money(new['revenue'], cur)} "
                     f"({_range(new['revenue_low'], new['revenue_high'], cur)}) if new customers keep coming as "
                     f"the shop's history says.")
    if not parts:
        return "Nothing can be forecast for this shop yet: " + " ".join(result.notes)
    bt = result.backtest
    if bt is not None and len(bt):
        row = bt[bt["source"] == "all"].sort_values("months").iloc[-1]
        parts.append(f"Made {row['months']} months ago, the same forecast of revenue was off by "
                     f"{row['revenue_error_pct']:+.1f} %.")
    return " ".join(parts)


def method_sentence(result: ForecastResult) -> str:
    """How new customers were forecast, and what else a reader must know (notes)."""
    s = result.new_series
    text = (f"New customers per month were forecast by {result.new_model}, from {len(s)} full months of first "
            "purchases" + (f" (last: {s.iloc[-1]:,.0f} in {s.index[-1]})" if len(s) else "") + ".")
    bands = []
    if result.model_error:
        bands.append(f"the customers you have also carries the purchase model's miss on its holdout total "
                     f"({100 * result.model_error:+.1f} %)")
    if result.new_error:
        bands.append(f"that of customers still to be won the miss of the same forecast made "
                     f"{max(result.settings.backtest_months)} months ago ({100 * result.new_error:+.1f} %)")
    if bands:
        text += " The band of " + "; ".join(bands) + ", as how far the models themselves may be off."
    return " ".join([text, *result.notes])


def plot_forecast(result: ForecastResult, ax=None):
    """Revenue per month: the past 24 months as bars, the forecast of the customers you have and of all
    customers (they plus those still to be won) as lines with their bands."""
    if ax is None:
        _, ax = plt.subplots(figsize=SMALL)
    hist = result.history
    cur = result.currency
    x_hist = [p.to_timestamp() for p in hist["month"]]
    ax.bar(x_hist, hist["revenue"], width=20, color="#c9d3e0", label="revenue, past months")
    t = result.table
    for source, color, label in (("existing", "#1f77b4", "customers you have"),
                                 ("all", "#2ca02c", "all customers (with those still to be won)")):
        if source == "all":
            parts = [t[t["source"] == s].set_index("month") for s in ("existing", "new")]
            if any(p.empty for p in parts):
                continue
            rows = parts[0][["revenue"]].add(parts[1][["revenue"]], fill_value=0)
            low, high = _summed_band(result)
        else:
            rows = t[t["source"] == source].set_index("month")
            if rows.empty:
                continue
            low, high = rows["revenue_low"].to_numpy(), rows["revenue_high"].to_numpy()
        x = [pd.Period(m, "M").to_timestamp() for m in rows.index]
        ax.plot(x, rows["revenue"].to_numpy(), color=color, label=f"forecast, {label}")
        ax.fill_between(x, low, high, color=color, alpha=0.2, label=f"{_band(result)} band")
    if len(x_hist):
        ax.axvline(pd.Timestamp(result.as_of) + pd.Timedelta(days=1), color="grey", ls=":", lw=1)
    ax.set_title(f"Revenue per month: the past {len(hist)} months and the next {result.settings.months}")
    ax.set_ylabel(f"revenue ({cur})")
    ax.yaxis.set_major_formatter(plots.thousands)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=9, loc="upper left")
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    return ax


def _summed_band(result: ForecastResult) -> tuple[np.ndarray, np.ndarray]:
    """Each month's band of existing + new revenue: the two are independent, so their half-widths add in
    quadrature (the draws themselves are not kept in forecast.csv)."""
    t = result.table
    e, n = (t[t["source"] == s].set_index("month") for s in ("existing", "new"))
    centre = e["revenue"] + n["revenue"]
    down = np.sqrt((e["revenue"] - e["revenue_low"]) ** 2 + (n["revenue"] - n["revenue_low"]) ** 2)
    up = np.sqrt((e["revenue_high"] - e["revenue"]) ** 2 + (n["revenue_high"] - n["revenue"]) ** 2)
    return (centre - down).clip(lower=0).to_numpy(), (centre + up).to_numpy()


def totals_table(result: ForecastResult) -> pd.DataFrame:
    """The forecast summed over the next 3, 6 and 12 months per source, each figure with its band."""
    t = result.totals
    if t.empty:
        return plots.note_table("nothing could be forecast", "forecast")
    cur, band = result.currency, _band(result)
    out = pd.DataFrame({
        "next": [f"{m} months" for m in t["months"]],
        "customers": [SOURCE_NAMES[s] for s in t["source"]],
        "purchases": [f"{v:,.0f}" for v in t["purchases"]],
        f"purchases, {band} band": [_range(a, b) for a, b in zip(t["purchases_low"], t["purchases_high"])],
        f"revenue ({cur})": [f"{v:,.0f}" for v in t["revenue"]],
        f"revenue, {band} band": [_range(a, b) for a, b in zip(t["revenue_low"], t["revenue_high"])],
        f"margin ({cur})": [f"{v:,.0f}" for v in t["margin"]],
    })
    return out.set_index(["next", "customers"])


def backtest_table(result: ForecastResult) -> pd.DataFrame:
    """The forecasts made 3, 6 and 12 months ago against what happened since, per source."""
    bt = result.backtest
    if bt is None or bt.empty:
        return plots.note_table("not enough history to forecast from an earlier month-end", "backtest")
    cur = result.currency
    out = pd.DataFrame({
        "made at": bt["cutoff"], "for the next": [f"{m} months" for m in bt["months"]],
        "customers": [SOURCE_NAMES[s] for s in bt["source"]],
        "purchases forecast": [f"{v:,.0f}" for v in bt["purchases"]],
        "purchases actual": [f"{v:,.0f}" for v in bt["purchases_actual"]],
        "purchases error": [f"{v:+.1f}%" for v in bt["purchases_error_pct"]],
        f"revenue forecast ({cur})": [f"{v:,.0f}" for v in bt["revenue"]],
        f"revenue actual ({cur})": [f"{v:,.0f}" for v in bt["revenue_actual"]],
        "revenue error": [f"{v:+.1f}%" for v in bt["revenue_error_pct"]],
        "actual inside the band": ["yes" if c else "no" for c in bt["revenue_covered"]],
    })
    return out.set_index(["made at", "for the next", "customers"])


def backtest_takeaway(result: ForecastResult) -> str:
    """How far the earlier forecasts were off, and how often the actual fell inside the band."""
    bt = result.backtest
    if bt is None or bt.empty:
        return ("No backtest: the shop's history is too short to make the same forecast at an earlier month-end "
                "and see what happened since.")
    cells = pd.concat([bt["purchases_covered"], bt["revenue_covered"]])
    worst = bt.loc[bt["revenue_error_pct"].abs().idxmax()]
    return (f"Over {len(bt)} backtested forecasts the error in revenue ranged from {bt['revenue_error_pct'].min():+.1f} % "
            f"to {bt['revenue_error_pct'].max():+.1f} % (the largest: the {SOURCE_NAMES[worst['source']]} over "
            f"{worst['months']} months from {worst['cutoff']}); the actual purchases and revenue fell inside the "
            f"{_band(result)} band in {int(cells.sum())} of {len(cells)} cases"
            + (f" (the bands carry this month's model-error terms; the one for customers still to be won is the "
               f"{max(result.settings.backtest_months)}-month backtest's own miss, so that row holds it by "
               "construction)." if result.new_error else "."))


def curve_table(result: ForecastResult) -> pd.DataFrame:
    """What one new customer brings in their first months: purchases and revenue per new customer by months
    since their first purchase, and cumulated, with the number of monthly cohorts behind each month."""
    c = result.curve
    cur = result.currency
    out = pd.DataFrame({
        "month since the first purchase": ["first month" if a == 0 else f"+{a}" for a in c["age"]],
        "purchases per new customer": [f"{v:.2f}" for v in c["purchases_per_customer"]],
        f"revenue per new customer ({cur})": [f"{v:,.2f}" for v in c["revenue_per_customer"]],
        f"cumulated revenue ({cur})": [f"{v:,.2f}" for v in c["revenue_per_customer"].cumsum()],
        f"cumulated margin ({cur})": [f"{v:,.2f}" for v in c["revenue_per_customer"].cumsum() * result.gross_margin],
        "cohorts behind it": [f"{n}" if n else "none yet (last month carried)" for n in c["cohorts"]],
    })
    return out.set_index("month since the first purchase")


# --- acquisition: what a new customer is worth, and may cost --------------------------------------

DIMENSION_LABELS = {"cohort": "first order month", "channel": "channel", "category": "first category",
                    "coupon": "coupon of the first order"}


def _best_channel(result: ForecastResult) -> pd.Series | None:
    t = result.acquisition.get("channel")
    if t is None or t.empty:
        return None
    return t.sort_values("customers", ascending=False).iloc[0]


def acquisition_answer(result: ForecastResult) -> str:
    """What a new customer is worth per channel (the largest first), the most to pay at the payback, and -
    with marketing_spend.csv - what each channel cost, its LTV:CAC and payback; without it, what the file adds."""
    cur, pb = result.currency, result.payback_months
    t = result.acquisition.get("channel")
    parts = []
    if t is not None and len(t):
        top = t.iloc[0]
        parts.append(f"A customer won through {top.name} is worth {plots.money(top['value_12m'], cur)} of margin in "
                     f"12 months ({plots.money(top['value_24m'], cur)} in 24): you can pay up to "
                     f"{plots.money(top['ceiling'], cur)} to win one and earn it back within {pb} months.")
        if len(t) > 1:
            hi, lo = t["ceiling"].idxmax(), t["ceiling"].idxmin()
            parts.append(f"Across the {len(t)} channels that ceiling runs from {plots.money(t.loc[lo, 'ceiling'], cur)} "
                         f"({lo}) to {plots.money(t.loc[hi, 'ceiling'], cur)} ({hi}).")
    else:
        c = result.acquisition.get("cohort")
        if c is not None and len(c):
            recent = c.head(12)
            value = (recent["value_12m"] * recent["customers"]).sum() / recent["customers"].sum()
            parts.append(f"A new customer of the last {len(recent)} months is worth {plots.money(value, cur)} of margin "
                         f"in 12 months: you can pay up to about that to win one and earn it back within {pb} months "
                         "(the orders carry no channel, so this is not split by how customers were won).")
    sp = result.spend_by_channel
    if sp is not None and len(sp):
        paid = sp.dropna(subset=["ltv_cac"])
        if len(paid):
            best, worst = paid.iloc[0], paid.iloc[-1]
            parts.append(f"From the marketing spend file, {best['channel']} pays best: a new customer cost "
                         f"{plots.money(best['cost_per_customer'], cur)} and brings {best['ltv_cac']:.1f} times that in "
                         f"12 months{_payback_words(best['payback_months'])}.")
            if len(paid) > 1:
                parts.append(f"The channel that pays least is {worst['channel']}: "
                             f"{plots.money(worst['cost_per_customer'], cur)} per new "
                             f"customer, {worst['ltv_cac']:.1f} times back in 12 months"
                             f"{_payback_words(worst['payback_months'])}.")
        unpaid = sp[sp["new_customers"] == 0]
        if len(unpaid):
            parts.append(f"Spend on {', '.join(unpaid['channel'])} won no customer whose first order names that "
                         "channel.")
    elif parts:
        parts.append("Add marketing_spend.csv (month, channel, spend) to the shop's raw folder to see what each "
                     "channel cost per new customer, how many times that it earns back, and how fast.")
    return " ".join(parts) or "No customer has bought yet, so nothing can be said about what a new one is worth."


def _payback_words(months: float) -> str:
    if pd.isna(months):
        return ", and has not paid back within 24 months"
    if months <= 1:
        return ", paid back within the first month (the first order's margin covers it)"
    return f", paid back in {months:.1f} months"


def acquisition_table(result: ForecastResult, dimension: str = "channel", rows: int | None = None) -> pd.DataFrame:
    """Value per new customer by `dimension`: customers, margin so far, value at 12 and 24 months, the most to
    pay at the payback, and how much of the 12-month value has already been bought."""
    t = result.acquisition.get(dimension)
    label = DIMENSION_LABELS[dimension]
    if t is None or t.empty:
        return plots.note_table(f"the orders carry no {label}", label)
    t = t.head(rows) if rows else t
    cur, pb = result.currency, result.payback_months
    out = pd.DataFrame({
        "customers": [f"{n:,}" for n in t["customers"]],
        f"margin so far per customer ({cur})": [f"{v:,.2f}" for v in t["margin_so_far"]],
        f"worth in 12 months ({cur})": [f"{v:,.2f}" for v in t["value_12m"]],
        f"worth in 24 months ({cur})": [f"{v:,.2f}" for v in t["value_24m"]],
        f"most to pay, {pb}-month payback ({cur})": [f"{v:,.2f}" for v in t["ceiling"]],
        "of the 12 months already bought": [plots.format_value(v, "share") for v in t["realised_share"]],
    }, index=pd.Index([str(i) for i in t.index], name=label))
    return out


def spend_table(result: ForecastResult) -> pd.DataFrame:
    """Per channel of the spend file: spend, new customers, cost per new customer, value in 12 months, LTV:CAC,
    payback months."""
    sp = result.spend_by_channel
    if sp is None:
        return plots.note_table("no marketing_spend.csv: add one (month, channel, spend) to see what a new customer "
                                "costs per channel", "spend")
    cur = result.currency
    return pd.DataFrame({
        "months with spend": sp["months"].astype(int).astype(str).to_numpy(),
        f"spend ({cur})": [f"{v:,.0f}" for v in sp["spend"]],
        "new customers": [f"{n:,}" for n in sp["new_customers"]],
        f"cost per new customer ({cur})": [plots.format_value(v, "money2") for v in sp["cost_per_customer"]],
        f"worth in 12 months ({cur})": [plots.format_value(v, "money2") for v in sp["value_12m"]],
        "LTV:CAC (12 months)": [plots.format_value(v, "ratio") for v in sp["ltv_cac"]],
        "payback (months)": [("no customers" if not n else "over 24" if pd.isna(p) else "first month" if p <= 1
                              else f"{p:.1f}") for p, n in zip(sp["payback_months"], sp["new_customers"])],
    }, index=pd.Index(sp["channel"], name="channel"))


def spend_month_table(result: ForecastResult, months: int = 12) -> pd.DataFrame:
    """Cost per new customer by channel and month, the newest `months` months of the spend file (the file holds
    the rest)."""
    m = result.spend_by_month
    if m is None:
        return plots.note_table("no marketing_spend.csv", "spend")
    m = m[m["month"].isin(sorted(set(m["month"]))[-months:])].sort_values(["month", "channel"], ascending=[False, True])
    cur = result.currency
    return pd.DataFrame({
        "channel": m["channel"].to_numpy(), f"spend ({cur})": [f"{v:,.0f}" for v in m["spend"]],
        "new customers": [f"{n:,}" for n in m["new_customers"]],
        f"cost per new customer ({cur})": [plots.format_value(v, "money2") for v in m["cost_per_customer"]],
    }, index=pd.Index(m["month"], name="month"))


def plot_ltv_curves(result: ForecastResult, ax=None):
    """Cumulative margin per customer by months since the first purchase, one line per acquisition quarter."""
    if ax is None:
        _, ax = plt.subplots(figsize=SMALL)
    c = result.curves
    colors = plt.cm.viridis(np.linspace(0.1, 0.9, max(len(c.columns), 1)))
    for color, q in zip(colors, c.columns):
        seen = c[q].notna().sum()
        ax.plot(c.index, c[q], color=color, label=q, marker="o" if seen < 3 else None, ms=3)
    ax.set_title("Margin per customer since the first purchase, by acquisition quarter")
    ax.set_xlabel("months since the first purchase (0 = its month)")
    ax.set_ylabel(f"cumulative margin per customer ({result.currency})")
    ax.set_ylim(bottom=0)
    if len(c.columns):
        ax.legend(fontsize=9, ncol=2, title="first purchase in")
    return ax
