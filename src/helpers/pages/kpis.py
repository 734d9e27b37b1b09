"""The page of notebook 02 (How is the business doing?): from a `KpiResult`, the monthly KPI table and
trend, this month against last month and last year, the revenue bridges, cohort retention and revenue,
first and second orders (leads, second-order rates, discount-won customers, days between orders) and
the breakdowns by channel, payment method, category, region, gender and age band - each as a table
for readers, a takeaway sentence computed from the numbers, or a figure. A section whose data the
shop does not have says so in one sentence instead.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from helpers import pages, plots
from helpers.demographics import UNKNOWN
from helpers.kpis import CUSTOMERS_FILE, KpiResult

# How the report shows each KPI: its label and kind (money, share, count or ratio).
KPI_DISPLAY = {
    "revenue": ("Net revenue", "money"), "guest_revenue": ("Net revenue of guest orders (no customer id)", "money"),
    "gross_sales": ("Gross sales", "money"),
    "returned_value": ("Returned value", "money"), "returns_rate": ("Returns rate", "share"),
    "orders": ("Orders", "count"), "active_customers": ("Active customers", "count"),
    "new_customers": ("New customers", "count"), "returning_customers": ("Returning customers", "count"),
    "returning_revenue_share": ("Revenue from returning customers", "share"),
    "aov": ("Average order value", "money2"), "orders_per_customer": ("Orders per customer", "ratio"),
    "repeat_rate": ("Repeat rate (2+ orders so far)", "share"), "sleeping_customers": ("Sleeping customers", "count"),
}
LEADS_NOTE = ("Skipped: leads and signups need customers.csv (the optional customers file, with signup dates), "
              "which this shop does not have.")


def format_kpi(kpi: str, value) -> str:
    """One KPI value as the report shows it: 325482.3 -> '325,482', 0.0407 -> '4.1%', 1.2556 -> '1.26'
    (the currency is in the row label, see `monthly_table`)."""
    return plots.format_value(value, KPI_DISPLAY.get(kpi, (kpi, "ratio"))[1])


def _kpi_label(kpi: str, currency: str) -> str:
    label, kind = KPI_DISPLAY.get(kpi, (kpi, "ratio"))
    return f"{label} ({currency})" if kind.startswith("money") else label


def _format_change(change, is_share: bool) -> str:
    if change is None or pd.isna(change):
        return plots.MISSING
    return f"{100 * change:+.1f} pp" if is_share else f"{100 * change:+.1f}%"


# ---------------------------------------------------------------------------------------------
# Monthly KPIs, deltas and the revenue bridge
# ---------------------------------------------------------------------------------------------

def monthly_table(res: KpiResult, months: int = 13) -> pd.DataFrame:
    """The last `months` months for reading: one row per KPI (labelled), one column per month, values
    formatted (money in whole units, shares in %). The numbers themselves are in kpis.csv."""
    m = res.monthly.set_index("month").tail(months)
    guests = "guest_revenue" in m and bool((m["guest_revenue"] != 0).any())  # a row only where guests bought
    keys = [k for k in KPI_DISPLAY if k != "guest_revenue" or guests]
    out = pd.DataFrame({month: [format_kpi(k, row[k]) for k in keys] for month, row in m.iterrows()},
                       index=pd.Index([_kpi_label(k, res.currency) for k in keys], name="KPI"))
    out.columns.name = "month"
    return out


def answer(res: KpiResult) -> str:
    """The page's answer, in the month's numbers: revenue and its change vs last month and a year ago, the
    returning customers' share, the repeat rate and the sleeping share of everyone who has bought (a rate: the
    count grows with the customer base), and how many of a typical cohort buy again in their second month."""
    r, d = res.monthly.iloc[-1], res.deltas
    rev = d.table.loc["revenue"] if "revenue" in d.table.index else None
    changes = [] if rev is None else [f"{rev[col]:+.1%} vs {label}" for col, label in
                                      (("vs_previous", d.previous), ("vs_last_year", d.last_year)) if pd.notna(rev[col])]
    text = (f"In {r.month} {r.active_customers:,} customers placed {r.orders:,} orders worth "
            f"{plots.money(r.revenue, res.currency)} net" + (f" ({', '.join(changes)})" if changes else "") + "; ")
    text += (f"returning customers brought {r.returning_revenue_share:.0%} of it." if pd.notna(r.returning_revenue_share)
             else "no revenue to split.")
    guests = float(r.get("guest_revenue", 0.0))
    if guests:
        text += (f" Guest orders without a customer id brought {plots.money(guests, res.currency)} more "
                 f"({guests / (r.revenue + guests):.1%} of the shop's {plots.money(r.revenue + guests, res.currency)}); "
                 "no customer figure on this page counts them.")
    bought = int(res.monthly["new_customers"].sum())
    if bought:
        text += (f" Of the {bought:,} customers who have bought so far, {r.repeat_rate:.0%} have ordered twice or more "
                 f"and {r.sleeping_customers / bought:.0%} ({r.sleeping_customers:,}) are sleeping.")
    curve = res.retention_curve
    if 1 in curve.index:
        text += f" A typical cohort: {curve.loc[1, 'retention']:.0%} buy again in the month after their first order."
    return text


def glossary_table(res: KpiResult) -> pd.DataFrame:
    """The page's terms, with the settings behind them."""
    s = res.settings
    return pages.glossary({
        "net revenue": "the sum of every line's amount in the month; returns subtract in the month they happen",
        "returning customer": "bought in an earlier month too",
        "repeat rate": "of everyone who had bought by the month's end, the share with two or more orders",
        "sleeping customer": f"bought before, but not within the inactivity window of {res.inactivity_days} days "
                             "(business.inactivity_days)",
        "revenue bridge": "revenue = customers x orders per customer x average order value; the change is split by "
                          "a logarithmic mean (LMDI) decomposition, so the three parts add up exactly",
        "cohort": "the customers whose first order fell in one month",
        "breakdowns": f"over the last {s.breakdown_months} months (kpis.breakdown_months); age bands from the birth "
                      "year in the cut-off's year",
        "second-order windows": f"{', '.join(str(w) for w in s.second_order_windows)} days "
                                "(kpis.second_order_windows)",
    })


def monthly_takeaway(res: KpiResult) -> str:
    """One sentence on the latest month: revenue, customers, the returning share and sleepers."""
    r = res.monthly.iloc[-1]
    return (f"In {r.month} {r.active_customers:,} customers placed {r.orders:,} orders worth "
            f"{plots.money(r.revenue, res.currency)} net; returning customers brought "
            f"{r.returning_revenue_share:.0%} of it, {r.repeat_rate:.0%} of all buyers so far have ordered twice or more, "
            f"and {r.sleeping_customers:,} earlier buyers are sleeping.")


def plot_trend(res: KpiResult, ax=None):
    """Net revenue per month split into new and returning customers (stacked bars)."""
    ax = plots.axes_or_new(ax)
    d = res.monthly
    ret = d.revenue * d.returning_revenue_share.fillna(0)
    x = np.arange(len(d))
    ax.bar(x, ret, color=sns.color_palette()[0], label="returning customers")
    ax.bar(x, d.revenue - ret, bottom=ret, color=sns.color_palette()[1], label="new customers")
    step = max(1, len(d) // 12)
    ax.set_xticks(x[::step], d.month.to_numpy()[::step], rotation=45, ha="right")
    ax.set_title("Net revenue per month: returning vs new customers")
    ax.set_xlabel("month")
    ax.set_ylabel(f"net revenue ({res.currency})")
    ax.yaxis.set_major_formatter(plots.thousands)
    ax.legend(frameon=False, loc="upper left")
    return ax


def deltas_table(res: KpiResult) -> pd.DataFrame:
    """`KpiResult.deltas` for reading: labelled KPIs, formatted values, changes as '+1.2%' (levels) or
    '+0.2 pp' (shares, percentage points); a month without data shows a dash."""
    d = res.deltas
    month, prev, ly = d.month, d.previous, d.last_year
    rows = {}
    for kpi, r in d.table.iterrows():
        share = r["change_in"] == "points"
        rows[_kpi_label(kpi, res.currency)] = {
            month: format_kpi(kpi, r["this_month"]), prev: format_kpi(kpi, r["previous_month"]),
            "vs last month": _format_change(r["vs_previous"], share),
            f"{ly} (a year ago)": format_kpi(kpi, r["same_month_last_year"]),
            "vs a year ago": _format_change(r["vs_last_year"], share)}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "KPI"
    return out


def deltas_takeaway(res: KpiResult) -> str:
    """The KPI with the largest relative rise and fall vs last year (or last month when no year back)."""
    d = res.deltas
    col = "vs_last_year" if d.table["vs_last_year"].notna().any() else "vs_previous"
    # sleeping customers are a running count that grows with the customer base: never "rose the most"
    levels = d.table.loc[d.table.change_in == "relative", col].dropna().drop("sleeping_customers", errors="ignore")
    if levels.empty:
        return "There is no earlier month to compare with yet."
    up, down = levels.idxmax(), levels.idxmin()
    when = "the same month last year" if col == "vs_last_year" else "the previous month"
    low = "fell the most" if levels[down] < 0 else "grew the least"
    return (f"Against {when}, {up.replace('_', ' ')} rose the most ({levels[up]:+.1%}) and "
            f"{down.replace('_', ' ')} {low} ({levels[down]:+.1%}).")


def bridge_takeaway(res: KpiResult, base: str = "previous") -> str:
    """One sentence on the bridge from `base` ("previous" or "last_year"): the total change and the lever
    that moved it most (or why there is no bridge)."""
    bridge = res.bridges[base]
    if (bridge.kind == "gap").any():
        return str(bridge.index[0])
    total = bridge[bridge.kind == "total"]["value"]
    parts = bridge[bridge.kind == "part"]["value"]
    change = total.iloc[-1] - total.iloc[0]
    big = parts.abs().idxmax()
    currency = res.currency
    return (f"From {total.index[0].split()[-1]} to {total.index[-1].split()[-1]} net revenue "
            f"{'rose' if change >= 0 else 'fell'} by {plots.money(abs(change), currency)}; the largest lever was the "
            f"{big.replace(' effect', '')} ({'+' if parts[big] >= 0 else '-'}{plots.money(abs(parts[big]), currency)}).")


def bridge_table(res: KpiResult, base: str = "previous") -> pd.DataFrame:
    """The revenue bridge from `base` for reading: each step's amount in whole units of the currency."""
    out = plots.table_for_readers(res.bridges[base], {"value": "money"}, res.currency)
    out.index = [str(step).replace("aov effect", "average order value effect") for step in out.index]
    out.index.name = "step"
    return out


def plot_bridge(res: KpiResult, base: str = "previous", ax=None):
    """What moved revenue from `base`: one bar per lever (its part of the change, from zero) and the total
    change; the two months' revenue in the title (None: no bridge, no figure). Bars of the change, not a
    waterfall on the revenue's scale: there a 1 % month made every step a line one pixel high."""
    bridge = res.bridges[base]
    if (bridge.kind == "gap").any():
        return None
    ax = plots.axes_or_new(ax)
    pal = sns.color_palette()
    parts, totals = bridge[bridge.kind == "part"], bridge[bridge.kind == "total"]["value"]
    change = float(totals.iloc[-1] - totals.iloc[0])
    labels = [step.replace(" effect", "").replace("aov", "average order value") for step in parts.index] + ["total change"]
    values = [*parts["value"].astype(float), change]
    colors = [pal[2] if v >= 0 else pal[3] for v in values[:-1]] + [pal[7]]
    x = np.arange(len(values))
    ax.bar(x, values, color=colors)
    ax.axhline(0, color="grey", lw=1)
    for i, v in enumerate(values):
        ax.text(i, v, f"{v:+,.0f}", ha="center", va="bottom" if v >= 0 else "top", fontsize=10)
    ax.set_xticks(x, labels, rotation=15)
    first, last = totals.index[0].split()[-1], totals.index[-1].split()[-1]
    ax.set_title(f"What moved revenue from {first} ({plots.money(totals.iloc[0], res.currency)}) to {last} "
                 f"({plots.money(totals.iloc[-1], res.currency)})")
    ax.set_ylabel(f"change in net revenue ({res.currency})")
    ax.yaxis.set_major_formatter(plots.thousands)
    lo, hi = min(0.0, *values), max(0.0, *values)
    ax.set_ylim(lo - 0.12 * (hi - lo or 1), hi + 0.12 * (hi - lo or 1))  # room for the labels
    return ax


# ---------------------------------------------------------------------------------------------
# Cohorts
# ---------------------------------------------------------------------------------------------

def plot_cohort_heatmap(res: KpiResult, ax=None):
    """Retention heatmap: acquisition month (rows) x months since first order (columns), each cell
    labelled with its share in % (whole percent, small type so 24 x 24 cells stay legible)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(13, 8))
    later = res.cohort_matrix.drop(columns=0, errors="ignore")
    if later.isna().all().all():  # e.g. kpis.heatmap_cohorts: 1 shows only this month's cohort
        ax.text(0.5, 0.5, "no cohort shown has a month after its first order yet", ha="center", va="center",
                transform=ax.transAxes)
    else:
        cells = later.shape[0] * later.shape[1]
        sns.heatmap(later, cmap=plots.PALETTE, ax=ax, vmin=0, annot=True, fmt=".0%",
                    annot_kws={"fontsize": 7 if cells > 200 else 9},
                    cbar_kws={"label": "share of cohort buying", "format": plots.percent_axis})
    ax.set_title("Cohort retention: share of each cohort buying k months after its first order")
    ax.set_xlabel("months since first order")
    ax.set_ylabel("acquisition month (cohort)")
    return ax


def cohort_takeaway(res: KpiResult) -> str:
    curve = res.retention_curve
    if curve.empty:
        return "No cohort is old enough to show retention yet."
    parts = [f"{r.retention:.0%} after {k} month{'s' if k > 1 else ''}" for k, r in curve.iterrows()]
    k_last = curve.index[-1]
    return (f"Of a typical cohort, {', '.join(parts)} buy again in that month; a member brings "
            f"{plots.money(curve.loc[k_last, 'cumulative_revenue_per_member'], res.currency)} net in the first "
            f"{k_last + 1} months.")


def retention_table(res: KpiResult) -> pd.DataFrame:
    """Retention 1, 3, 6 and 12 months after the first order (`KpiResult.retention_curve`) for reading."""
    return plots.table_for_readers(res.retention_curve, {"cohorts": "count", "customers": "count",
                                                         "retention": "share",
                                                         "cumulative_revenue_per_member": "money2"}, res.currency)


def plot_cohort_revenue(res: KpiResult, ax=None):
    """Cumulative net revenue per cohort member over the months since first order, one line per cohort
    (the last ``settings.heatmap_cohorts`` cohorts)."""
    ax = plots.axes_or_new(ax)
    d = res.cohorts.sort_values(["cohort", "months_since_first"]).copy()
    d["cumulative"] = d.groupby("cohort").revenue.cumsum() / d.cohort_size
    keep = sorted(d.cohort.unique())[-res.settings.heatmap_cohorts:]
    d = d[d.cohort.isin(keep)]
    sns.lineplot(data=d, x="months_since_first", y="cumulative", hue="cohort", palette=plots.PALETTE,
                 legend=False, ax=ax, linewidth=1)
    ax.set_title(f"Cumulative net revenue per cohort member (last {len(keep)} cohorts; darker = newer)")
    ax.set_xlabel("months since first order")
    ax.set_ylabel(f"net revenue per member ({res.currency})")
    ax.yaxis.set_major_formatter(plots.thousands)
    return ax


# ---------------------------------------------------------------------------------------------
# First and second orders, time between orders
# ---------------------------------------------------------------------------------------------

def leads_table(res: KpiResult) -> pd.DataFrame | None:
    """Leads and signups for reading, or (without a customers file) the note saying so and None."""
    if res.leads is None:
        plots.say(LEADS_NOTE)
        return None
    kinds = {c: ("share" if c == "lead_share" or c.startswith("ordered_within_") else "count") for c in res.leads.columns}
    return plots.table_for_readers(res.leads, kinds)


def second_order_table(res: KpiResult, months: int = 13) -> pd.DataFrame:
    """Second-order rates of the last `months` cohorts for reading (a window not yet over shows as a
    dash); the older cohorts are counted in the last row."""
    rates = res.second_orders
    kinds = {c: "share" for c in rates.columns if c.startswith("second_within_")}
    recent_rates = rates.tail(months).astype({c: object for c in kinds})
    for col in kinds:  # a share of a few buyers reads as its counts
        recent_rates[col] = [plots.rate_or_counts(r, n, res.min_rate_base)
                             for r, n in zip(recent_rates[col], recent_rates["first_buyers"])]
    out = plots.table_for_readers(recent_rates, {"first_buyers": "count", **kinds}, max_rows=None)
    if len(rates) > months:
        out.loc[f"... {len(rates) - months:,} earlier cohorts not shown", :] = ""
    return out


def second_order_takeaway(res: KpiResult) -> str:
    rates = res.second_orders
    cols = [c for c in rates.columns if c.startswith("second_within_")]
    d = rates[rates[cols[-1]].notna()] if cols else rates.iloc[:0]  # the cohorts every window is over for: one base
    if d.empty or d.first_buyers.sum() == 0:
        return "No cohort has been watched long enough to measure second orders in every window yet."
    parts = [f"{(d[c] * d.first_buyers).sum() / d.first_buyers.sum():.0%} within {c.split('_')[-1][:-1]} days"
             for c in cols]
    text = (f"Of the {int(d.first_buyers.sum()):,} first-time buyers of the {len(d):,} cohorts watched long enough, "
            f"{', '.join(parts)} placed a second order.")
    few = rates["first_buyers"] < res.min_rate_base
    if few.any():
        text += (f" A cohort of fewer than {res.min_rate_base:,} first-time buyers shows its counts (\"21 of 34\") "
                 "rather than a share; an empty cell is a window not over for the whole cohort yet.")
    return text


def discount_table(res: KpiResult) -> pd.DataFrame:
    """Discount-won vs full-price customers for reading."""
    table = res.discount.astype(object)
    for c in [c for c in table.columns if c.startswith("repeat_rate")]:  # a handful of customers: their counts
        table[c] = [plots.rate_or_counts(r, n, res.min_rate_base) for r, n in zip(res.discount[c], res.discount["customers"])]
    kinds = {c: ("share" if c.startswith("repeat_rate") else "money2" if c.startswith("revenue_per") else "count")
             for c in table.columns}
    return plots.table_for_readers(table, kinds, res.currency)


def discount_takeaway(res: KpiResult) -> str:
    table, currency = res.discount, res.currency
    rr = [c for c in table.columns if c.startswith("repeat_rate")][0]
    rv = [c for c in table.columns if c.startswith("revenue_per_customer")][0]
    d, f = table.iloc[0], table.iloc[1]
    if not (d.customers and f.customers):
        return "One of the two groups is empty, so discount-won and full-price customers cannot be compared yet."
    verdict = "stay about as well as" if abs(d[rr] - f[rr]) < 0.02 else ("stay better than" if d[rr] > f[rr] else "stay less than")
    return (f"Discount-won customers {verdict} full-price ones: {d[rr]:.0%} vs {f[rr]:.0%} order again within a year, "
            f"worth {plots.money(d[rv], currency)} vs {plots.money(f[rv], currency)} net per customer in that year.")


def gap_table(res: KpiResult) -> pd.DataFrame:
    """Orders, median and quantile days between orders (`KpiResult.gap_summary`), for reading."""
    summary = res.gap_summary
    return plots.table_for_readers(summary, {c: ("count" if c == "orders" else "days") for c in summary.columns})


def plot_gap_histogram(res: KpiResult, bin_days: int = 14, ax=None):
    """Distribution of days between orders (first -> second, and later), in `bin_days`-day bins, with
    the day by which ``settings.inactivity_quantile`` of second orders happened and the configured window."""
    ax = plots.axes_or_new(ax)
    suggested_days, configured_days = res.suggested_inactivity_days, res.inactivity_days
    quantile = res.settings.inactivity_quantile
    h = res.gaps.copy()
    h["bin"] = (h.gap_days // bin_days) * bin_days
    b = h.groupby("bin")[["second_orders", "later_orders"]].sum()
    pal = sns.color_palette()
    ax.bar(b.index, b.second_orders, width=bin_days, align="edge", color=pal[0], alpha=0.8, label="1st -> 2nd order")
    ax.bar(b.index, b.later_orders, width=bin_days, align="edge", color=pal[1], alpha=0.5, label="later orders")
    if suggested_days is not None and not np.isnan(suggested_days):
        ax.axvline(suggested_days, color=pal[3], ls="--", label=f"{quantile:.0%} of 2nd orders ({suggested_days:.0f} d)")
    if configured_days:
        ax.axvline(configured_days, color=pal[7], ls=":", label=f"configured window ({configured_days} d)")
    ax.set_title("Days between a customer's orders")
    ax.set_xlabel(f"days since previous order ({bin_days}-day bins; last bin = {int(h.gap_days.max())}+)")
    ax.set_ylabel("orders")
    ax.yaxis.set_major_formatter(plots.thousands)
    ax.legend(frameon=False)
    return ax


def inactivity_takeaway(res: KpiResult) -> str:
    s, sugg, configured_days = res.gap_summary, res.suggested_inactivity_days, res.inactivity_days
    quantile = res.settings.inactivity_quantile
    if np.isnan(sugg):
        return "No customer has placed a second order yet, so the inactivity window cannot be checked."
    if abs(sugg - configured_days) <= 0.15 * configured_days:
        verdict = "close to"
    else:
        verdict = "shorter than" if sugg < configured_days else "longer than"
    return (f"The median second order comes {s.loc['second orders', 'median_days']:.0f} days after the first "
            f"(later orders: {s.loc['later orders', 'median_days']:.0f} days); {quantile:.0%} of second orders happen "
            f"within {sugg:.0f} days, {verdict} the configured inactivity window of {configured_days} days.")


# ---------------------------------------------------------------------------------------------
# Breakdowns
# ---------------------------------------------------------------------------------------------

def breakdown_note(dimension: str, missing: str) -> str:
    """The sentence a skipped breakdown section shows instead of its table."""
    if missing == CUSTOMERS_FILE:
        return (f"Skipped: the breakdown by {dimension.replace('_', ' ')} needs customers.csv (the optional "
                "customers file), which this shop does not have.")
    return (f"Skipped: the breakdown by {dimension.replace('_', ' ')} needs the {missing.replace('_', ' ')} column, "
            "which this shop's export does not have or leaves empty.")


def breakdown_table(res: KpiResult, dimension: str):
    """The breakdown by `dimension` for reading, largest revenue first; a long one (many countries,
    categories) is sortable and searchable in the HTML report. When the shop lacks its column (or the
    customers file), the note saying so and None: the section is skipped."""
    if dimension in res.skipped:
        plots.say(breakdown_note(dimension, res.skipped[dimension]))
        return None
    table = res.breakdowns[dimension]
    kinds = {"customers": "count", "orders": "count", "revenue": "money", "revenue_share": "share", "aov": "money2",
             "returns_rate": "share", "repeat_rate": "share"}
    table_id = "breakdown-" + "".join(ch if ch.isalnum() else "-" for ch in str(table.index.name or "table"))
    shown = table.set_axis(table.index.map(_label), axis=0).rename_axis(str(table.index.name).replace("_", " "))
    shown = shown.assign(repeat_rate=[plots.rate_or_counts(r, n, res.min_rate_base)  # a small group: its counts
                                      for r, n in zip(table["repeat_rate"], table["customers"])])
    return plots.table_for_readers(shown, kinds, res.currency, sortable=table_id)


def _label(value) -> str:
    """A group's name as a reader sees it: the export's 'apple_pay' as 'apple pay'."""
    return str(value).replace("_", " ")


def breakdown_takeaway(res: KpiResult, dimension: str) -> str:
    table = res.breakdowns.get(dimension)
    if table is None or table.empty:
        return "No breakdown to summarise."
    known = table.drop(index=UNKNOWN, errors="ignore")  # the customers without a value are no group to name
    dim = (table.index.name or "group").replace("_", " ")
    if known.empty:
        return f"No customer has a known {dim}."
    top, best_rep = known.revenue_share.idxmax(), known.repeat_rate.idxmax()
    text = (f"By {dim}, {_label(top)} brings the most revenue ({known.loc[top, 'revenue_share']:.0%}, average order "
            f"{plots.money(known.loc[top, 'aov'], res.currency)}); {_label(best_rep)} has the highest repeat rate "
            f"({known.loc[best_rep, 'repeat_rate']:.0%}).")
    if UNKNOWN in table.index:
        text += f" {table.loc[UNKNOWN, 'revenue_share']:.0%} of revenue comes from customers whose {dim} is not known."
    return text


def plot_breakdown(res: KpiResult, dimension: str, ax=None):
    """Net revenue by group (bars) of the breakdown by `dimension` over the last ``settings.breakdown_months``
    months, or None when its section is skipped."""
    table = res.breakdowns.get(dimension)
    if table is None:
        return None
    months = res.settings.breakdown_months
    d = table.reset_index().rename(columns={table.index.name or "index": "group"})
    dim = (table.index.name or "group").replace("_", " ")
    return plots.plot_share_bars(d, "group", "revenue", title=f"Net revenue by {dim}, last {months} months",
                                 xlabel=f"net revenue ({res.currency})", ax=ax)
