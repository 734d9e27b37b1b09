"""The page of notebook 07 (the one-page monthly summary), drawn from a `helpers.summary.SummaryResult`:
which artifacts this month and last month have, the headline numbers with their changes, what to do now,
the CLV at risk by segment, the win-back plan and its control group, the revenue of the last 13 months,
and the columns of the CRM file (customers_scored) that was written, each as a reader table, a takeaway
sentence or a figure (``plot_*``, returning the axes).
"""
from __future__ import annotations

import math

import pandas as pd

from helpers import pages, plots
from helpers.summary import (
    DEFAULT_CLV_MONTHS,
    DEFAULT_PURCHASE_WINDOW_DAYS,
    HEADLINE,
    ID_SOURCES,
    SCORED_COLUMNS,
    SCORED_FROM,
    SCORED_MEANINGS,
    SummaryResult,
    effect_basis,
    forecast_totals,
    measured_profit,
)

CLV_AT_RISK_NOTES = ("segments, CLV or churn missing", "no customer is at high churn risk")
WINBACK_NOTES = ("missing: run 06_winback", "no offer recommended")


# ---------------------------------------------------------------------------------------------
# What this month has


def availability_table(res: SummaryResult) -> pd.DataFrame:
    """Per artifact: present or missing this month and last month, and the notebook that makes it."""
    return res.availability


def notes_text(res: SummaryResult) -> str:
    return "\n".join(res.notes) if res.notes else "Every stage's artifacts are present for this month and last month."


# ---------------------------------------------------------------------------------------------
# Headline numbers


def _fmt_change(change: float, pct: float, kind: str, currency: str) -> str:
    if math.isnan(change):
        return plots.MISSING
    if kind == "share":
        return f"{change * 100:+.1f} pp"
    sign = "+" if change >= 0 else "-"
    level = f"{sign}{currency} {abs(change):,.0f}" if kind == "money" else f"{change:+,.0f}"
    return f"{level} ({pct:+.1%})" if not math.isnan(pct) else level


def _band(metrics: dict[str, float] | None, currency: str) -> str | None:
    """The win-back plan's 5-95 % profit band as text, or None without one."""
    if metrics is None or math.isnan(metrics["winback_profit_p05"]):
        return None
    return f"{plots.money(metrics['winback_profit_p05'], currency)} to {plots.money(metrics['winback_profit_p95'], currency)}"


def headline_table(res: SummaryResult) -> pd.DataFrame:
    """The headline numbers for reading: this month, last month and the change, as text.
    A number whose artifact is missing reads "missing (run NN_x)"."""
    month, currency = res.month, res.currency
    cur_label, prev_label = month.month, res.last_month
    rows = []
    for key, (label, kind, need) in HEADLINE.items():
        r = res.numbers.loc[key]
        this = plots.format_value(r.this_month, kind, currency)
        if this == plots.MISSING and not month.has(need):
            this = f"missing (run {res.made_by[need]})"
        rows.append({"": label.format(clv_months=month.clv_months), cur_label: this, prev_label: plots.format_value(r.last_month, kind, currency),
                     "change": _fmt_change(r.change, r.change_pct, kind, currency)})
    clv_band = (month.get("clv_model") or {}).get("clv_total_band")
    if clv_band:
        rows.insert(next(i for i, r in enumerate(rows) if r[""].startswith("Predicted")) + 1,
                    {"": "Predicted CLV: band (5-95 %)", cur_label: f"{plots.money(clv_band[0], currency)} to "
                     f"{plots.money(clv_band[1], currency)}", prev_label: plots.MISSING, "change": plots.MISSING})
    band = _band(res.metrics, currency)
    if band is not None:
        rows.append({"": "Win-back plan: profit band (5-95 %)", cur_label: band,
                     prev_label: _band(res.previous_run_metrics, currency) or plots.MISSING, "change": plots.MISSING})
    return pd.DataFrame(rows).set_index("")


def plan_sentence(res: SummaryResult) -> str:
    """What the whole win-back plan is worth next to the month's revenue, and how likely it loses money."""
    m, currency = res.metrics, res.currency
    n, profit = m.get("winback_customers", math.nan), m["winback_profit"]
    text = (f"The win-back plan contacts {n:,.0f} customers (the list: winback_targets.csv) and is expected to add "
            f"{plots.money(profit, currency)} of profit")
    if not math.isnan(m["revenue"]) and m["revenue"] > 0:
        text += f", {profit / m['revenue']:.1%} of the month's revenue"
    if res.plan_loss is not None:
        text += f"; it loses money with a chance of about {res.plan_loss:.0%}"
    return text + "."


def forecast_sentence(res: SummaryResult) -> str:
    """What 04 forecasts for the longest horizon: the customers you have (revenue with its band) and those
    still to be won; '' without a forecast."""
    t = forecast_totals(res.month)
    if t is None:
        return ""
    h = int(t["months"].max())
    card, cur = res.month.get("forecast_model"), res.currency
    ex, new = (t[(t["months"] == h) & (t["source"] == s)] for s in ("existing", "new"))
    parts = []
    if len(ex):
        e = ex.iloc[0]
        parts.append(f"Over the next {h} months the customers you have are expected to bring "
                     f"{plots.money(e['revenue'], cur)} of revenue ({card['band']:.0%} band: "
                     f"{plots.money(e['revenue_low'], cur)} to {plots.money(e['revenue_high'], cur)})")
    if len(new):
        n = new.iloc[0]
        parts.append(("and" if parts else f"Over the next {h} months") +
                     f" customers still to be won {plots.money(n['revenue'], cur)} more")
    text = (", ".join(parts) + " (forecast on page 04).") if parts else ""
    return " ".join(x for x in (text, channel_sentence(res)) if x)


def channel_sentence(res: SummaryResult) -> str:
    """The channel that wins customers best and the one that wins them worst (04's acquisition section): by
    LTV:CAC where the shop gave its marketing spend, else by what a customer won there is worth in 12 months."""
    card, cur = res.month.get("forecast_model") or {}, res.currency
    paid = [r for r in card.get("spend_by_channel") or [] if r.get("ltv_cac") is not None]
    if len(paid) >= 2:
        best, worst = max(paid, key=lambda r: r["ltv_cac"]), min(paid, key=lambda r: r["ltv_cac"])
        return (f"Of the paid channels, {best['channel']} wins customers best ({plots.money(best['cost_per_customer'], cur)} "
                f"each, {best['ltv_cac']:.1f} times that back in 12 months) and {worst['channel']} worst "
                f"({plots.money(worst['cost_per_customer'], cur)}, {worst['ltv_cac']:.1f} times).")
    channels = [r for r in card.get("channels") or [] if r.get("value_12m") is not None]
    if len(channels) >= 2:
        best, worst = max(channels, key=lambda r: r["value_12m"]), min(channels, key=lambda r: r["value_12m"])
        return (f"A customer won through {best['channel']} is worth the most ({plots.money(best['value_12m'], cur)} of "
                f"margin in 12 months), through {worst['channel']} the least ({plots.money(worst['value_12m'], cur)}).")
    return ""


def headline_takeaway(res: SummaryResult) -> str:
    """Two or three sentences on the month's headline numbers and what changed."""
    nums, month, currency, prev_label = res.numbers, res.month, res.currency, res.last_month
    parts = []
    rev = nums.loc["revenue"]
    if not math.isnan(rev.this_month):
        s = f"In {month.month} revenue was {plots.money(rev.this_month, currency)}"
        if not math.isnan(rev.change_pct):
            s += f" ({rev.change_pct:+.1%} vs {prev_label})"
        act = nums.loc["active_customers"]
        s += f" from {act.this_month:,.0f} active customers"
        if not math.isnan(act.change):
            s += f" ({act.change:+,.0f})"
        guests = res.metrics.get("guest_revenue", math.nan)
        if not math.isnan(guests) and guests != 0:
            s += (f", and {plots.money(guests, currency)} more from guest orders without a customer id "
                  f"({guests / (rev.this_month + guests):.1%} of the shop's {plots.money(rev.this_month + guests, currency)}; "
                  "no customer figure counts them)")
        parts.append(s + ".")
    hr, car, tot = nums.loc["high_risk_customers"], nums.loc["clv_at_risk"], nums.loc["clv_total"]
    if not math.isnan(hr.this_month):
        s = f"{hr.this_month:,.0f} customers are at high churn risk"
        if not math.isnan(car.this_month) and not math.isnan(tot.this_month) and tot.this_month > 0:
            s += (f", carrying {plots.money(car.this_month, currency)} of predicted {month.clv_months}-month CLV "
                  f"({car.this_month / tot.this_month:.0%} of the total)")
        parts.append(s + ".")
    parts.append(forecast_sentence(res))
    if not math.isnan(nums.loc["winback_profit"].this_month):
        parts.append(plan_sentence(res))
    return " ".join(p for p in parts if p) or "No headline numbers: run notebooks 02-05 for this month first."


# ---------------------------------------------------------------------------------------------
# What to do now


def actions_text(res: SummaryResult) -> str:
    """The actions as a numbered list (full sentences, for the report)."""
    if not res.actions:
        return "No actions: the artifacts the rules need are missing for this month."
    lines = [f"{i}. {a.text}" for i, a in enumerate(res.actions, start=1)]
    if len(res.actions) < 3:
        lines.append("(Fewer than three actions: some stages' artifacts are missing this month.)")
    return "\n".join(lines)


def actions_table(res: SummaryResult) -> pd.DataFrame:
    """What each action looked at (index: the action's number), for the method section."""
    df = pd.DataFrame([{"based on": a.evidence} for a in res.actions], columns=["based on"])
    df.index = pd.RangeIndex(1, len(df) + 1, name="action")
    return df


RULE_WORDS = [  # the rules in priority order: (what it looks at, the setting that tunes it)
    ("The recommended win-back plan (notebook 06): who can be contacted, with which offer, and its profit", None),
    ("The segment whose customers at high churn risk carry the most predicted CLV", None),
    ("A measure that moved the wrong way since last month or a year ago by at least the alarm threshold: revenue, "
     "active customers, the repeat rate, the share of past buyers who are sleeping", "summary.kpi_change"),
    ("A recent acquisition month whose second-month retention fell below the typical one by at least the threshold",
     "summary.retention_drop_pp"),
    ("The best customers by predicted CLV (the top share) and how many of them are at risk", "summary.top_clv_share"),
    ("This month's new customers and the typical second-month retention", None),
]


def rules_table(res: SummaryResult) -> pd.DataFrame:
    """How "What to do now" is chosen: the rules in priority order, each with its setting and value (the
    page's method section; at most ``summary.max_actions`` actions are listed)."""
    t = res.thresholds
    values = {"summary.kpi_change": f"{t.kpi_change:.0%}", "summary.retention_drop_pp": f"{t.retention_drop_pp * 100:.0f} pp",
              "summary.top_clv_share": f"{t.top_clv_share:.0%}"}
    rows = [{"looks at": words, "setting": f"{key} = {values[key]}" if key else plots.MISSING}
            for words, key in RULE_WORDS]
    return pd.DataFrame(rows, index=pd.RangeIndex(1, len(rows) + 1, name="priority"))


def glossary_table(res: SummaryResult) -> pd.DataFrame:
    """The page's terms and the settings its text speaks of in words."""
    return pages.glossary({
        "CLV": f"customer lifetime value: the margin a customer is expected to bring over the next "
               f"{res.month.clv_months} months, discounted (notebook 04)",
        "high churn risk": "the top tier of notebook 05's churn probability (churn.tier_thresholds)",
        "sleeping customer": "bought before, but not within the inactivity window (kpis.inactivity_days)",
        "repeat rate": "of everyone who has bought, the share with two or more orders",
        "measured / interpolated / assumed": "where a win-back effect comes from: a past campaign with a control "
                                             "group; between two measured offers; the configured assumption "
                                             "(winback.assumed_uplift), which carries no interval of its own",
        "5-95 % band": "the range the profit falls in 90 times out of 100 in the simulation (notebook 06)",
        "alarm threshold": f"a measure is named under 'What to do now' when it moved the wrong way by "
                           f"{res.thresholds.kpi_change:.0%} or more (summary.kpi_change); the track record's "
                           "alarm band is track.error_band",
        "contact_lists.csv": "the consented customers the best-customers and new-customers actions are about, "
                             "with e-mails (in the month's processed folder, never in a report)",
        "winback_targets.csv": "the win-back plan's consented contact list with e-mail, offer and suggested categories",
    })


def rests_on(res: SummaryResult, cfg) -> pages.RestsOn:
    """The page's box: the settings the money on it is computed with."""
    plan = res.plan
    note = "" if plan is None else pages.effects_note(
        [effect_basis(x) for x in plan.loc[plan["discount"].notna(), "uplift_source"]])
    return pages.rests_on(cfg, ["clv.gross_margin", "winback.contact_cost", "clv.monthly_discount_rate",
                                      "clv.clv_months", "churn.horizon_days", "winback.window_days",
                                      "winback.assumed_uplift", "offers.min_days_between_contacts"], note)


# ---------------------------------------------------------------------------------------------
# CLV at risk, the win-back plan, the trend


def _nothing_to_show(table: pd.DataFrame | None, notes: tuple[str, str], label: str) -> pd.DataFrame | None:
    """A note table when `table` is None (notes[0]: its artifacts are missing) or empty (notes[1])."""
    if table is None:
        return plots.note_table(notes[0], label)
    return plots.note_table(notes[1], label) if table.empty else None


def clv_at_risk_table(res: SummaryResult) -> pd.DataFrame:
    table = res.clv_at_risk
    nothing = _nothing_to_show(table, CLV_AT_RISK_NOTES, "status")
    if nothing is not None:
        return nothing
    out = table.copy()
    out["CLV at risk"] = out.pop("clv_at_risk")
    return plots.table_for_readers(out, {"customers": "count", "high_risk_customers": "count",
                                         "share_of_clv_at_risk": "share", "CLV at risk": "money"}, res.currency,
                                   names={"share_of_clv_at_risk": "share of CLV at risk",
                                          "high_risk_customers": "high-risk customers"})


def plot_clv_at_risk(res: SummaryResult, ax=None):
    """Horizontal bars: predicted CLV (clv_model.json's horizon) of high-risk customers per RFM segment."""
    ax = plots.axes_or_new(ax)
    table = res.clv_at_risk
    if table is None or table.empty:
        said = CLV_AT_RISK_NOTES[0] if table is None else CLV_AT_RISK_NOTES[1]
        ax.text(0.5, 0.5, said, ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    df = table.reset_index()
    plots.plot_share_bars(df, "segment", "clv_at_risk",
                          f"Predicted {res.month.clv_months}-month CLV of high-risk customers, by segment",
                          f"CLV at risk ({res.currency})", ax=ax)
    ax.xaxis.set_major_formatter(plots.thousands)
    return ax


def winback_table(res: SummaryResult) -> pd.DataFrame:
    """The plan's recommended rows, one per segment: discount, customers, uplift, profit and band, ROI."""
    plan = res.plan
    nothing = _nothing_to_show(plan, WINBACK_NOTES, "win-back plan")
    if nothing is not None:
        return nothing
    basis = pd.Series([effect_basis(x) for x in plan["uplift_source"]], index=plan.index)
    assumed = basis == "assumed"  # an assumption has no interval of its own: its profit is shown without a band
    out = pd.DataFrame({
        "discount": plan["discount"],
        "customers": plan["n_customers"].astype(int),
        "extra buyers (pp)": plan["uplift_pp"],
        "effect": basis,
        "expected profit": plan["incremental_profit"],
        "profit 5 %": plan["profit_p05"].where(~assumed),
        "profit 95 %": plan["profit_p95"].where(~assumed),
        "ROI": plan["roi"],
    })
    out.index = pd.Index(plan["segment"], name="segment")
    out = out.sort_values("expected profit", ascending=False)
    return plots.table_for_readers(out, {"discount": "share0", "customers": "count", "extra buyers (pp)": "number1",
                                         "expected profit": "money", "profit 5 %": "money", "profit 95 %": "money",
                                         "ROI": "share0"}, res.currency)


def winback_takeaway(res: SummaryResult) -> str:
    plan, m, currency = res.plan, res.metrics, res.currency
    if plan is None:
        return "The win-back stage (06_winback) has not produced a plan for this month, so no offer is shown."
    if plan.empty:
        return "The win-back plan recommends no offer: no tested discount pays for itself."
    contact = plan["discount"].notna()
    measured = measured_profit(plan[contact])
    assumed = plan.loc[contact & (plan["uplift_source"].map(effect_basis) == "assumed"), "segment"].tolist()
    text = (f"Recommended offers reach {m['winback_customers']:,.0f} customers in {int(contact.sum())} segment(s) for an "
            f"expected extra profit of {plots.money(m['winback_profit'], currency)} "
            f"(5-95 %: {plots.money(m['winback_profit_p05'], currency)} to "
            f"{plots.money(m['winback_profit_p95'], currency)}); {plots.money(measured, currency)} of it rests on "
            f"effects measured in past campaigns.")
    if assumed:
        text += (f" In {', '.join(repr(s) for s in assumed)} no campaign measured the chosen offer: their profit rests "
                 "on the assumed effect (no band is shown for an assumption); test before trusting it.")
    return text + control_sentence(res)


def control_sentence(res: SummaryResult) -> str:
    """' A control group of N customers ...' from campaign_plan.csv, or '' without one."""
    n = res.control_group
    if not n:
        return ""
    return (f" Besides them, a randomized control group of {n:,} customers is held back and gets nothing "
            "(campaign_plan.csv), so next months can measure what the campaign really did (Track record below).")


def plot_revenue_trend(res: SummaryResult, ax=None):
    """Revenue bars for the last 13 months with active customers as a line (right axis)."""
    ax = plots.axes_or_new(ax)
    df = res.recent_kpis.reset_index()
    if df.empty:
        ax.text(0.5, 0.5, "kpis.csv missing", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    return plots.plot_monthly_bars(df, "month", "revenue", "Revenue and active customers, last 13 months",
                                   f"revenue ({res.currency})", ax=ax, line="active_customers",
                                   line_label="active customers")


def trend_takeaway(res: SummaryResult) -> str:
    df, currency = res.recent_kpis, res.currency
    if len(df) < 2:
        return "Not enough months in kpis.csv for a trend."
    first, last = df.iloc[0], df.iloc[-1]
    return (f"Over the last {len(df)} months revenue went from {plots.money(first['revenue'], currency)} "
            f"({df.index[0]}) to {plots.money(last['revenue'], currency)} ({df.index[-1]}), "
            f"{last['revenue'] / first['revenue'] - 1:+.0%}; the repeat rate from {first['repeat_rate']:.1%} "
            f"to {last['repeat_rate']:.1%}.")


# ---------------------------------------------------------------------------------------------
# customers_scored.parquet


def scored_columns(clv_months: int = DEFAULT_CLV_MONTHS,
                   purchase_window_days: int = DEFAULT_PURCHASE_WINDOW_DAYS) -> pd.DataFrame:
    """The documented column list of customers_scored.parquet / .csv, with the month's horizons."""
    source = {col: name for name, cols in SCORED_FROM.items() for col in cols} | {"customer_id": " / ".join(ID_SOURCES)}
    meaning = dict(SCORED_MEANINGS)
    return pd.DataFrame([{"column": c, "from": source[c],
                          "meaning": meaning[c].format(clv_months=clv_months, purchase_window_days=purchase_window_days)}
                         for c in SCORED_COLUMNS]).set_index("column")


def scored_columns_table(res: SummaryResult):
    """:func:`scored_columns` with this month's horizons: sortable in the HTML report, its first rows inline."""
    return plots.long_table(scored_columns(res.month.clv_months, res.month.purchase_window_days), "scored-columns")


def scored_takeaway(res: SummaryResult) -> str:
    """What was written; the win-back columns are filled only when 06_winback made this month's contact list."""
    scored = res.scored
    s = (f"customers_scored.parquet and customers_scored.csv: {len(scored):,} customers, one row each, "
         f"{scored.shape[1]} columns, no e-mail addresses.")
    if res.month.has("winback_targets"):
        s += f" {int(scored['winback_target'].sum()):,} are on this month's win-back contact list."
    else:
        s += " Win-back and offer columns are empty until notebook 06 has run for this month."
    if res.list_sizes:
        sizes = ", ".join(f"{n:,} {name}" for name, n in sorted(res.list_sizes.items()))
        s += f" contact_lists.csv (with e-mails, never in a report): {sizes}, all with marketing consent."
    return s
