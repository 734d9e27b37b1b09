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
           "method_sentence", "SOURCE_NAMES"]

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
    return " ".join([text, *result.notes])


def plot_forecast(result: ForecastResult, ax=None):
    """Revenue per month: the past 24 months as bars, the forecast of the customers you have and of all
    customers (they plus those still to be won) as lines with their bands."""
    ax = plots.axes_or_new(ax)
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
        ax.plot(x, rows["revenue"].to_numpy(), color=color, marker="o", ms=3, label=f"forecast, {label}")
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
            f"{_band(result)} band in {int(cells.sum())} of {len(cells)} cases.")


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
