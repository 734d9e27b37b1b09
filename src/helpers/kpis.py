"""KPIs and cohort retention (notebook 02): how many buy, how often, how much, who comes back, who went quiet.

Everything over order lines is an Ibis expression on ``orders_clean`` (DESIGN.md, "Engine"); only the
monthly table, the cohort table and other per-month or per-group results become pandas frames.
`run` writes kpis.csv and cohorts.csv and returns a `KpiResult` holding every result the notebook shows;
its page (tables for readers, takeaways, figures) is :mod:`helpers.pages.kpis`.

Definitions used throughout (orders_clean: returns are negative lines with ``is_return`` True, booked
on the day of the return, under the original ``order_id``):

- **revenue**: net revenue, the sum of every line's ``amount`` in the month (returns subtract).
- **gross_sales**: the sum of purchase lines (``is_return`` False) in the month.
- **returned_value**: the value of return lines in the month, as a positive number.
- **returns_rate** = returned_value / gross_sales of the same month.
- **orders**: distinct ``order_id`` with at least one purchase line in the month; a return is not an order.
- **active_customers**: customers with at least one purchase line in the month.
- **new_customers**: active customers whose first purchase falls in the month; **returning_customers**
  = active_customers - new_customers.
- **returning_revenue_share**: net revenue from customers whose first purchase was in an earlier
  month, divided by revenue (their returns included).
- **aov** (average order value) = revenue / orders; **orders_per_customer** = orders / active_customers,
  so revenue = active_customers x orders_per_customer x aov exactly (the revenue bridge uses this).
- **repeat_rate**: of all customers who had bought by the month's end, the share with 2+ orders by then.
- **customers, repeat customers, leads** (`KpiResult.counts`, the leads table): `customer_facts`'
  definitions, the counts 01's data_quality.json shows too.
- **sleeping_customers**: customers who had bought before and whose last purchase was more than
  ``business.inactivity_days`` days before the month's last day (or before ``as_of`` in a partial month).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from helpers import artifacts, customer_facts
from helpers.config import Config, KpisConfig
from helpers.customer_facts import (
    customer_orders,
    month_index,
    orders_until,
    quantile_from_counts,
    suggested_inactivity_days,
)
from helpers.demographics import UNKNOWN, age_band_expr
from helpers.engine import cache, connect, cutoff_end

MONTHLY_COLUMNS = [
    "month", "revenue", "gross_sales", "returned_value", "returns_rate", "orders", "active_customers",
    "new_customers", "returning_customers", "returning_revenue_share", "aov", "orders_per_customer",
    "repeat_rate", "sleeping_customers",
]
COHORT_COLUMNS = ["cohort", "months_since_first", "cohort_size", "active_customers", "retention",
                  "revenue", "revenue_per_member"]
# KPIs shown in the deltas table, with whether a change is a share (shown in points) or a level (in %).
DELTA_KPIS = {
    "revenue": False, "orders": False, "active_customers": False, "new_customers": False,
    "returning_customers": False, "returning_revenue_share": True, "aov": False,
    "orders_per_customer": False, "repeat_rate": True, "returns_rate": True, "sleeping_customers": False,
}
BREAKDOWN_ORDER_COLUMNS = ("channel", "payment_method", "category")
BREAKDOWN_CUSTOMER_COLUMNS = ("region", "gender", "age_band")


class MissingColumn(KeyError):
    """An optional column a breakdown needs is absent from this shop's data (or, as CUSTOMERS_FILE,
    the whole optional customers file)."""


CUSTOMERS_FILE = "customers file"


# ---------------------------------------------------------------------------------------------
# Building blocks (Ibis)
# ---------------------------------------------------------------------------------------------


def month_label(index) -> pd.Series | str:
    """Month index (see month_index) -> 'YYYY-MM'."""
    if isinstance(index, (pd.Series, np.ndarray, list)):
        s = pd.Series(index).astype("int64")
        return (s // 12).astype(str) + "-" + (s % 12 + 1).astype(str).str.zfill(2)
    return f"{int(index) // 12}-{int(index) % 12 + 1:02d}"


def first_orders(corders: ir.Table) -> ir.Table:
    """Per customer: first_ts, second_ts (NULL without a second order), first_discounted, first_month."""
    c = corders
    g = c.group_by("customer_id").agg(
        first_ts=c.order_ts.min(),
        second_ts=c.order_ts.min(where=c.order_number == 2),
        first_discounted=c.discounted.any(where=c.order_number == 1),
    )
    return g.mutate(first_month=month_index(g.first_ts))


def customer_months(orders: ir.Table) -> ir.Table:
    """One row per customer and month with any line: revenue (net), gross_sales, returned_value,
    purchased (any purchase line), last_ts (last purchase time in the month, NULL if only returns)."""
    o = orders
    return o.group_by("customer_id", month_idx=month_index(o.order_date)).agg(
        revenue=o.amount.sum(), gross_sales=o.amount.sum(where=~o.is_return).fill_null(0),
        returned_value=(-o.amount.sum(where=o.is_return)).fill_null(0),
        purchased=(~o.is_return).any(), last_ts=o.order_date.max(where=~o.is_return))


@dataclass
class OrderFacts:
    """The per-order and per-customer tables every KPI is built from (Ibis expressions).

    Each is derived once from the order lines up to as_of; `order_facts(..., con=con)` has the
    engine keep them (:func:`helpers.engine.cache`) so the monthly table, cohorts and the other
    results do not rescan the order lines.
    """

    lines: ir.Table        # order lines up to as_of
    corders: ir.Table      # customer_orders(lines)
    firsts: ir.Table       # first_orders(corders)
    cm: ir.Table           # customer_months(lines)
    con: object | None = None  # the engine that keeps the tables (None: nothing is kept)
    _recent: dict = field(default_factory=dict, repr=False)  # breakdown window tables, kept when cached

    def recent_lines(self, as_of: str, months: int) -> ir.Table:
        """Order lines of the last `months` calendar months up to as_of (cached with the facts)."""
        key = ("lines", months)
        if key not in self._recent:
            t = self.lines.filter(self.lines.order_date >= _window_start(as_of, months))
            self._recent[key] = self.keep(t)
        return self._recent[key]

    def keep(self, t: ir.Table) -> ir.Table:
        return _kept(self.con, t)


def _kept(con, t: ir.Table) -> ir.Table:
    """`t` kept by the engine `con` (:func:`helpers.engine.cache`), or as it is when `con` is None."""
    return cache(con, t) if con is not None else t


def order_facts(orders: ir.Table | OrderFacts, as_of: str, con=None) -> OrderFacts:
    """OrderFacts for the order lines up to `as_of` (an OrderFacts passes through unchanged); with
    `con`, the engine keeps the per-order and per-customer tables."""
    if isinstance(orders, OrderFacts):
        return orders
    lines = orders_until(orders, as_of)
    corders, cm = _kept(con, customer_orders(lines)), _kept(con, customer_months(lines))
    return OrderFacts(lines, corders, _kept(con, first_orders(corders)), cm, con=con)


# ---------------------------------------------------------------------------------------------
# Monthly table and cohorts
# ---------------------------------------------------------------------------------------------

def _sleeping_events(cm: ir.Table, as_of: str, inactivity_days: int) -> ir.Table:
    """+1 in the month a customer falls asleep, -1 in the month they buy again (cumulated later).

    A customer whose purchases stop after month m (last purchase `last_ts`) is sleeping at the end
    of month E when last_day(E) - date(last_ts) > inactivity_days and no purchase happened in
    between, i.e. from the month holding date(last_ts) + inactivity_days + 1 until the next
    purchase month.
    """
    b = cm.filter(cm.purchased)
    b = b.mutate(next_idx=b.month_idx.lead().over(ibis.window(group_by="customer_id", order_by="month_idx")))
    start_date = b.last_ts.date() + ibis.interval(days=inactivity_days + 1)
    b = b.mutate(start_idx=month_index(start_date), start_date=start_date)
    asleep = b.filter((b.start_date <= ibis.date(pd.Timestamp(as_of).date()))
                      & (b.next_idx.isnull() | (b.start_idx < b.next_idx)))
    # month_idx cast on both sides: next_idx comes from the cached month table, whose type is the engine's
    plus = asleep.select(month_idx=asleep.start_idx.cast("int64"), sleep=ibis.literal(1, "int64"))
    minus = asleep.filter(asleep.next_idx.notnull()).select(
        month_idx=asleep.next_idx.cast("int64"), sleep=ibis.literal(-1, "int64"))
    return plus.union(minus, distinct=False)


def monthly_kpis(orders: ir.Table | OrderFacts, as_of: str, inactivity_days: int = 180) -> ir.Table:
    """The monthly KPI table up to `as_of` as one Ibis expression, before its running totals: one row per month
    with an event (month_idx; ``_active_month`` true for the months of kpis.csv), the columns of
    MONTHLY_COLUMNS but `month`, `repeat_rate` and `sleeping_customers`, and the month's ``seconds`` (second
    purchases) and ``sleep_delta`` that :func:`monthly` sums to date. See the module docstring for each
    definition; an order is counted in the month of its first purchase line."""
    f = order_facts(orders, as_of)
    cm = f.cm.left_join(f.firsts.select("customer_id", "first_month"), "customer_id")
    is_new = cm.first_month.notnull() & (cm.first_month == cm.month_idx)
    # Money sums to the cent before anything is divided by them: DuckDB adds floats in parallel in no
    # fixed order, so the last bits vary between runs and a ratio near a rounding tie (an AOV of 70.605)
    # would flip in the second decimal from one run of the same month to the next.
    base = cm.group_by("month_idx").agg(
        revenue=cm.revenue.sum().round(2), gross_sales=cm.gross_sales.sum().round(2),
        returned_value=cm.returned_value.sum().round(2), active_customers=cm.purchased.sum(),
        new_revenue=cm.revenue.sum(where=is_new).fill_null(0).round(2),
    )
    co = f.corders
    n_orders = co.group_by(month_idx=month_index(co.order_ts)).agg(orders=co.count())

    zero, one = ibis.literal(0, "int64"), ibis.literal(1, "int64")
    firsts = f.firsts
    sleeping = _sleeping_events(f.cm, as_of, inactivity_days)
    # union(distinct=False): every event row counts (UNION ALL). month_idx cast in every branch: a cached
    # table carries the engine's own type (Spark computes INT where Ibis expects int64) and the union
    # needs one type.
    events = (
        base.select(month_idx=base.month_idx.cast("int64"), new=zero, second=zero, sleep=zero)
        .union(firsts.select(month_idx=firsts.first_month.cast("int64"), new=one, second=zero, sleep=zero),
               distinct=False)
        .union(firsts.filter(firsts.second_ts.notnull())
               .select(month_idx=month_index(firsts.second_ts).cast("int64"), new=zero, second=one, sleep=zero),
               distinct=False)
        .union(sleeping.select(month_idx=sleeping.month_idx.cast("int64"), new=zero, second=zero, sleep="sleep"),
               distinct=False)
    )
    per_month = events.group_by("month_idx").agg(new_customers=events.new.sum(), seconds=events.second.sum(),
                                                 sleep_delta=events.sleep.sum())
    # Every month with an event (a superset of base's months) with its counts; the running totals (buyers,
    # repeaters, sleeping customers to date) are summed in pandas over these few rows (_finish_monthly): on
    # Spark a window without a key runs in one task (issue 29).
    t = per_month.left_join(base.mutate(_active_month=ibis.literal(True)), "month_idx").drop("month_idx_right")
    t = t.left_join(n_orders, "month_idx").drop("month_idx_right")
    t = t.mutate(orders=t.orders.fill_null(0), active_customers=t.active_customers.cast("int64"))
    t = t.mutate(
        returning_customers=t.active_customers - t.new_customers,
        returns_rate=ibis.ifelse(t.gross_sales > 0, t.returned_value / t.gross_sales, ibis.null("float64")),
        returning_revenue_share=ibis.ifelse(t.revenue != 0, (t.revenue - t.new_revenue) / t.revenue,
                                            ibis.null("float64")),
        aov=ibis.ifelse(t.orders > 0, t.revenue / t.orders, ibis.null("float64")),
        orders_per_customer=ibis.ifelse(t.active_customers > 0, t.orders / t.active_customers,
                                        ibis.null("float64")),
    )
    return t.select("month_idx", "_active_month", "seconds", "sleep_delta",
                    *[c for c in MONTHLY_COLUMNS if c not in ("month", "repeat_rate", "sleeping_customers")])


def _finish_monthly(df: pd.DataFrame) -> pd.DataFrame:
    df = df.sort_values("month_idx").reset_index(drop=True)
    buyers, repeaters = df["new_customers"].cumsum(), df["seconds"].cumsum()
    df["sleeping_customers"] = df["sleep_delta"].cumsum()
    df["repeat_rate"] = (repeaters / buyers).where(buyers > 0)
    df = df[df["_active_month"].fillna(False).astype(bool)].reset_index(drop=True)
    df.insert(0, "month", month_label(df["month_idx"]).to_numpy())
    for c in ("orders", "active_customers", "new_customers", "returning_customers", "sleeping_customers"):
        df[c] = df[c].astype("int64")
    for c in ("revenue", "gross_sales", "returned_value", "aov"):
        df[c] = df[c].astype(float).round(2)
    for c in ("returns_rate", "returning_revenue_share", "orders_per_customer", "repeat_rate"):
        df[c] = df[c].astype(float).round(4)
    return df[MONTHLY_COLUMNS]


def cohort_table(orders: ir.Table | OrderFacts, as_of: str) -> ir.Table:
    """Acquisition month x months since first purchase, as one Ibis expression.

    Columns: cohort_idx, months_since_first (0 = the acquisition month), cohort_size (customers whose
    first purchase was in the cohort month), active_customers (of them, buying in that month),
    revenue (their net revenue in that month). retention and revenue_per_member are added on the
    pandas side by `cohorts`.
    """
    f = order_facts(orders, as_of)
    firsts = f.firsts
    sizes = firsts.group_by(cohort_idx=firsts.first_month).agg(cohort_size=firsts.count())
    cm = f.cm.inner_join(firsts.select("customer_id", "first_month"), "customer_id")
    cm = cm.mutate(months_since_first=cm.month_idx - cm.first_month).filter(lambda t: t.months_since_first >= 0)
    g = cm.group_by(cohort_idx=cm.first_month, months_since_first=cm.months_since_first).agg(
        active_customers=cm.purchased.sum(), revenue=cm.revenue.sum())
    return g.inner_join(sizes, "cohort_idx")


def cohorts(orders: ir.Table | OrderFacts, as_of: str) -> pd.DataFrame:
    """The cohort table (cohorts.csv): COHORT_COLUMNS, one row per cohort and month since first order,
    every cell up to `as_of` present (0 where no one bought)."""
    df = cohort_table(orders, as_of).to_pandas()
    last = int(pd.Timestamp(as_of).year * 12 + pd.Timestamp(as_of).month - 1)
    sizes = df.groupby("cohort_idx")["cohort_size"].first()
    full = pd.DataFrame([(c, k) for c in sizes.index for k in range(0, last - int(c) + 1)],
                        columns=["cohort_idx", "months_since_first"])
    df = full.merge(df.drop(columns="cohort_size"), how="left", on=["cohort_idx", "months_since_first"])
    df["cohort_size"] = df["cohort_idx"].map(sizes).astype("int64")
    df["active_customers"] = df["active_customers"].fillna(0).astype("int64")
    df["revenue"] = df["revenue"].fillna(0.0).astype(float).round(2)
    df["retention"] = (df["active_customers"] / df["cohort_size"]).round(4)
    df["revenue_per_member"] = (df["revenue"] / df["cohort_size"]).round(2)
    df = df.sort_values(["cohort_idx", "months_since_first"]).reset_index(drop=True)
    df.insert(0, "cohort", month_label(df["cohort_idx"]).to_numpy())
    return df[COHORT_COLUMNS]


def monthly(orders: ir.Table | OrderFacts, as_of: str, inactivity_days: int = 180) -> pd.DataFrame:
    """The monthly KPI table (kpis.csv) as pandas, one row per month ('YYYY-MM'), oldest first."""
    return _finish_monthly(monthly_kpis(orders, as_of, inactivity_days).to_pandas())


def with_guest_revenue(m: pd.DataFrame, guests: pd.DataFrame | None) -> pd.DataFrame:
    """kpis.csv's ``guest_revenue``: per month, the net revenue of order lines without a customer id (01's
    guest_revenue.csv; 0 where there were none or the file is absent). Not in ``revenue``, which is what the
    customers bought: the shop's revenue is the sum of the two."""
    by_month = {} if guests is None else dict(zip(guests["month"].astype(str), guests["revenue"].astype(float)))
    return m.assign(guest_revenue=[round(by_month.get(str(month), 0.0), 2) for month in m["month"]])


def open_tables(processed_dir: str | Path, as_of: str, con) -> tuple[ir.Table, ir.Table | None]:
    """orders_clean up to `as_of` and customers_clean (None when the shop has no customer file)."""
    orders = orders_until(artifacts.table(con, processed_dir, "orders_clean"), as_of)
    return orders, artifacts.table_if_exists(con, processed_dir, "customers_clean")


# ---------------------------------------------------------------------------------------------
# Deltas and the revenue bridge
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Deltas:
    """This month's KPIs against the previous month and the same month a year before.

    ``table``: index KPI; columns change_in ('relative' or 'points'), this_month, previous_month,
    vs_previous, same_month_last_year, vs_last_year. ``month``, ``previous`` and ``last_year`` are the
    three months compared ('YYYY-MM'), so a reader of the table cannot mislabel them.
    """

    table: pd.DataFrame
    month: str
    previous: str
    last_year: str



def _month_before(month: str, k: int) -> str:
    p = pd.Period(month, "M") - k
    return str(p)


def deltas(monthly_df: pd.DataFrame, month: str | None = None) -> Deltas:
    """This month's KPIs vs the previous month and the same month last year.

    The table (see `Deltas`) has index KPI and columns change_in, this_month, previous_month,
    vs_previous, same_month_last_year, vs_last_year. For levels (revenue, orders...) the change is
    relative (+0.05 = +5 %); for shares (rates) it is the difference in points (+0.01 = one
    percentage point). A missing comparison month gives NaN.
    """
    m = monthly_df.set_index("month")
    month = month or m.index[-1]
    rows = []
    for kpi, is_share in DELTA_KPIS.items():
        now = m[kpi].get(month, np.nan)
        prev = m[kpi].get(_month_before(month, 1), np.nan)
        ly = m[kpi].get(_month_before(month, 12), np.nan)

        def change(a, b):
            if pd.isna(a) or pd.isna(b):
                return np.nan
            if is_share:
                return round(float(a - b), 4)
            return round(float(a / b - 1), 4) if b else np.nan

        rows.append({"kpi": kpi, "change_in": "points" if is_share else "relative", "this_month": now,
                     "previous_month": prev, "vs_previous": change(now, prev),
                     "same_month_last_year": ly, "vs_last_year": change(now, ly)})
    return Deltas(pd.DataFrame(rows).set_index("kpi"), month, _month_before(month, 1), _month_before(month, 12))


def _log_mean(a: float, b: float) -> float:
    return a if a == b else (b - a) / (math.log(b) - math.log(a))


def revenue_bridge(monthly_df: pd.DataFrame, month: str | None = None, base: str = "previous") -> pd.DataFrame:
    """Revenue change from a base month to `month`, split into three levers (log / LMDI decomposition).

    revenue = active_customers x orders_per_customer x aov, so with L = (R1 - R0) / (ln R1 - ln R0)
    (the logarithmic mean) each lever's part is L x ln(x1 / x0) and the three parts add up to
    R1 - R0 exactly (Ang 2004, "Decomposition analysis for policymaking in energy"). `base` is
    "previous" (last month) or "last_year" (same month a year before). Needs positive revenue in
    both months.

    Returns a frame indexed by step: base revenue, the three lever parts, this month's revenue
    (column `value`; `kind` is total or part). Without a base month (a short history) or without
    positive revenue, one row whose step is the sentence saying why (`kind` "gap", no value).
    """
    m = monthly_df.set_index("month")
    month = month or m.index[-1]
    base_month = _month_before(month, 1 if base == "previous" else 12)
    if base_month not in m.index or month not in m.index:
        return _no_bridge(f"No revenue bridge from {base_month}: the order history runs from {m.index[0]} to "
                          f"{m.index[-1]}, so there is no {base_month if base_month not in m.index else month} "
                          "to compare with.")
    r0, r1 = m.loc[base_month], m.loc[month]
    if r0.revenue <= 0 or r1.revenue <= 0 or r0.orders == 0 or r1.orders == 0:
        return _no_bridge(f"No revenue bridge from {base_month} to {month}: it splits a change in positive net "
                          "revenue, and one of the two months has none.")
    # Recompute the levers from counts so the identity holds without rounding of the stored ratios.
    x0 = {"active_customers": r0.active_customers, "orders_per_customer": r0.orders / r0.active_customers,
          "aov": r0.revenue / r0.orders}
    x1 = {"active_customers": r1.active_customers, "orders_per_customer": r1.orders / r1.active_customers,
          "aov": r1.revenue / r1.orders}
    L = _log_mean(float(r0.revenue), float(r1.revenue))
    parts = {k: L * math.log(x1[k] / x0[k]) for k in x0}
    rows = [(f"revenue {base_month}", float(r0.revenue), "total")]
    rows += [(f"{k.replace('_', ' ')} effect", v, "part") for k, v in parts.items()]
    rows.append((f"revenue {month}", float(r1.revenue), "total"))
    return pd.DataFrame(rows, columns=["step", "value", "kind"]).set_index("step")


def _no_bridge(reason: str) -> pd.DataFrame:
    return pd.DataFrame({"value": [np.nan], "kind": ["gap"]}, index=pd.Index([reason], name="step"))


def cohort_matrix(cohorts_df: pd.DataFrame, value: str = "retention", last_cohorts: int = 24,
                  max_months: int = 24) -> pd.DataFrame:
    """Cohorts (rows, newest last) x months since first order (columns) of `value`, for the heatmap."""
    mat = cohorts_df.pivot(index="cohort", columns="months_since_first", values=value).sort_index()
    return mat.tail(last_cohorts).loc[:, [c for c in mat.columns if c <= max_months]]


def retention_curve(cohorts_df: pd.DataFrame, months=(1, 3, 6, 12)) -> pd.DataFrame:
    """Member-weighted share of a cohort buying k months after its first order (cohorts old enough only)."""
    rows = []
    for k in months:
        d = cohorts_df[cohorts_df.months_since_first == k]
        if len(d):
            rows.append({"months_since_first": k, "cohorts": len(d), "customers": int(d.cohort_size.sum()),
                         "retention": customer_facts.cohort_retention(cohorts_df, k),
                         "cumulative_revenue_per_member": round(
                             cohorts_df[(cohorts_df.months_since_first <= k)
                                        & cohorts_df.cohort.isin(d.cohort)].revenue.sum() / d.cohort_size.sum(), 2)})
    columns = ["months_since_first", "cohorts", "customers", "retention", "cumulative_revenue_per_member"]
    return pd.DataFrame(rows, columns=columns).set_index("months_since_first")


# ---------------------------------------------------------------------------------------------
# First and second orders, time between orders
# ---------------------------------------------------------------------------------------------

def leads_and_signups(orders: ir.Table | OrderFacts, customers: ir.Table | None, as_of: str, days: int = 30) -> pd.DataFrame:
    """Leads (`customer_facts.leads_expr`: listed customers with no purchase up to as_of, the count 01
    shows too) and the share of signups who ordered within `days` days of signing up (signups at
    least `days` days before as_of, so the window is complete; a first order before the signup date
    counts as within). One row, index 'customers file'."""
    if customers is None:
        raise MissingColumn(CUSTOMERS_FILE)
    f = order_facts(orders, as_of)
    firsts = f.firsts.select("customer_id", "first_ts")
    c = customers.left_join(firsts, "customer_id")
    cutoff = ibis.timestamp(pd.Timestamp(as_of).normalize() - pd.Timedelta(days=days))
    eligible = c.signup_date.notnull() & (c.signup_date < cutoff)
    ordered = c.first_ts.notnull() & (c.first_ts.date().delta(c.signup_date.date(), unit="day") <= days)
    row = c.aggregate(
        listed_customers=c.count(), signups_observable=eligible.sum(), ordered_within=(eligible & ordered).sum(),
    ).to_pandas().iloc[0]
    leads = customer_facts.customer_counts(f.lines, as_of, customers).leads
    out = pd.DataFrame([{
        "listed_customers": int(row.listed_customers), "leads": leads,
        "lead_share": round(leads / row.listed_customers, 4) if row.listed_customers else np.nan,
        f"signups_{days}d_old": int(row.signups_observable),
        f"ordered_within_{days}d": round(row.ordered_within / row.signups_observable, 4)
        if row.signups_observable else np.nan,
    }], index=pd.Index(["customers file"]))
    return out


def second_order_rates(orders: ir.Table | OrderFacts, as_of: str, windows=(30, 60, 90)) -> pd.DataFrame:
    """By acquisition cohort: first-time buyers and the share placing a second order within each window.

    A cohort's rate for window w is over all its first-time buyers, and only once every one of them has been
    watched for w days (the last first order at least w days before as_of); before that it is NaN. One base
    per cohort keeps the windows cumulative (within 60 days never below within 30): a rate over the few
    buyers of the cohort's first days, beside one over all of them, read 47 % within 60 days and 33 % within
    90 on a real shop. Index: cohort 'YYYY-MM'; columns first_buyers, second_within_<w>d.
    """
    f = order_facts(orders, as_of).firsts
    end = cutoff_end(as_of)
    gap = f.second_ts.date().delta(f.first_ts.date(), unit="day")
    aggs = {"first_buyers": f.count()}
    for w in windows:
        seen = f.first_ts < ibis.timestamp(end - pd.Timedelta(days=w))
        aggs[f"seen_{w}"] = seen.sum()
        aggs[f"hit_{w}"] = (seen & f.second_ts.notnull() & (gap <= w)).sum()
    df = f.group_by(cohort_idx=f.first_month).agg(**aggs).to_pandas().sort_values("cohort_idx")
    out = pd.DataFrame({"first_buyers": df["first_buyers"].astype("int64").to_numpy()},
                       index=pd.Index(month_label(df["cohort_idx"]).to_numpy(), name="cohort"))
    buyers = df["first_buyers"].to_numpy(dtype=float)
    for w in windows:
        whole = (df[f"seen_{w}"].to_numpy(dtype=float) == buyers) & (buyers > 0)  # every buyer watched w days
        out[f"second_within_{w}d"] = np.round(np.where(whole, df[f"hit_{w}"].to_numpy() / np.where(whole, buyers, 1),
                                                       np.nan), 4)
    return out


def discount_first_order(orders: ir.Table | OrderFacts, as_of: str, followup_days: int = 365) -> pd.DataFrame:
    """Customers whose first order carried a discount (discount_amount > 0 or a coupon) vs full price.

    Only customers whose first order is at least `followup_days` before as_of. Columns: customers,
    repeat_rate (share with a second order within followup_days), revenue_per_customer (net revenue
    of all their lines within followup_days of the first order, first order included).
    Index: 'discounted first order' / 'full-price first order'.
    """
    facts = order_facts(orders, as_of)
    orders = facts.lines
    if "discount_amount" not in orders.columns and "coupon_code" not in orders.columns:
        raise MissingColumn("discount_amount or coupon_code")
    f = facts.firsts
    end = ibis.timestamp(cutoff_end(as_of) - pd.Timedelta(days=followup_days))
    f = f.filter(f.first_ts < end)
    lines = orders.inner_join(f.select("customer_id", "first_ts"), "customer_id")
    within = lines.order_date.date().delta(lines.first_ts.date(), unit="day") <= followup_days
    rev = lines.filter(within).group_by("customer_id").agg(revenue=lines.amount.sum())
    per = f.left_join(rev, "customer_id")
    repeat = per.second_ts.notnull() & (per.second_ts.date().delta(per.first_ts.date(), unit="day") <= followup_days)
    g = per.group_by(discounted=per.first_discounted).agg(
        customers=per.count(), repeaters=repeat.sum(), revenue=per.revenue.fill_null(0).sum()).to_pandas()
    g["discounted"] = g["discounted"].astype(bool)
    g = g.set_index("discounted").reindex([True, False])
    out = pd.DataFrame({
        "customers": g["customers"].fillna(0).astype("int64").to_numpy(),
        f"repeat_rate_{followup_days}d": np.round(g["repeaters"] / g["customers"], 4).to_numpy(),
        f"revenue_per_customer_{followup_days}d": np.round(g["revenue"] / g["customers"], 2).to_numpy(),
    }, index=pd.Index(["discounted first order", "full-price first order"], name="first order"))
    return out


def gap_histogram(orders: ir.Table | OrderFacts, max_days: int = 730) -> pd.DataFrame:
    """`customer_facts.gap_histogram` of the order lines (or of OrderFacts' purchase orders)."""
    c = orders.corders if isinstance(orders, OrderFacts) else customer_orders(orders)
    return customer_facts.gap_histogram(c, max_days)


def gap_summary(hist: pd.DataFrame, quantile: float = 0.8) -> pd.DataFrame:
    """Orders, median gap and the `quantile` gap in days, for second orders and later orders."""
    rows = {}
    for col in ("second_orders", "later_orders"):
        counts = hist[col].to_numpy()
        rows[col.replace("_", " ")] = {
            "orders": int(counts.sum()),
            "median_days": quantile_from_counts(hist.gap_days.to_numpy(), counts, 0.5),
            f"p{int(quantile * 100)}_days": quantile_from_counts(hist.gap_days.to_numpy(), counts, quantile),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


# ---------------------------------------------------------------------------------------------
# Breakdowns
# ---------------------------------------------------------------------------------------------

def _window_start(as_of: str, months: int) -> ibis.Value:
    start = (pd.Timestamp(as_of).to_period("M") - (months - 1)).start_time
    return ibis.timestamp(start)


def _per_group(lines: ir.Table, keys: list[str]) -> ir.Table:
    """Per key(s) and customer: n (distinct purchase orders), revenue (net), gross, returned."""
    o = lines
    return o.group_by(*keys, "customer_id").agg(
        n=o.order_id.nunique(where=~o.is_return), revenue=o.amount.sum(),
        gross=o.amount.sum(where=~o.is_return).fill_null(0), returned=(-o.amount.sum(where=o.is_return)).fill_null(0))


def breakdown(orders: ir.Table | OrderFacts, dimension: str, as_of: str, customers: ir.Table | None = None,
              months: int = 12, age_bands=(25, 35, 45, 55, 65)) -> pd.DataFrame:
    """KPIs by an order column (channel, payment_method, category) or a customer column (region,
    gender, age_band from birth_year) over the last `months` calendar months up to as_of.

    Columns: customers (buying), orders, revenue (net), revenue_share, aov (revenue / orders),
    returns_rate (returned value / gross sales), repeat_rate (share of these customers with 2+
    orders in the window). An order column is read per line (an order spanning two categories
    counts in both); a customer column per customer. Missing values show as '(unknown)'.
    Raises MissingColumn when the column (or the customer file) is absent.
    """
    facts = order_facts(orders, as_of)
    if dimension in BREAKDOWN_CUSTOMER_COLUMNS:
        source = "birth_year" if dimension == "age_band" else dimension
        if customers is None:
            raise MissingColumn(CUSTOMERS_FILE)
        if source not in customers.columns:
            raise MissingColumn(source)
        c = customers
        if dimension == "age_band":
            c = c.select("customer_id", value=age_band_expr(c.birth_year, as_of, age_bands))
        else:
            c = c.select("customer_id", value=c[source].cast("string"))
        key = ("per_customer", months)
        if key not in facts._recent:  # one pass over the window's lines serves every customer column
            per = _per_group(facts.recent_lines(as_of, months), [])
            facts._recent[key] = facts.keep(per)
        per = facts._recent[key].left_join(c, "customer_id")
        per = per.mutate(value=per.value.fill_null(UNKNOWN))
    else:
        # the clean layout keeps every optional column; one without a single value was not in the export
        if dimension not in facts.lines.columns or not facts.lines[dimension].notnull().any().execute():
            raise MissingColumn(dimension)
        o = facts.recent_lines(as_of, months)
        per = _per_group(o.mutate(value=o[dimension].cast("string").fill_null(UNKNOWN)), ["value"])
    g = per.group_by("value").agg(
        customers=(per.n >= 1).sum(), orders=per.n.sum(), revenue=per.revenue.sum(), gross=per.gross.sum(),
        returned=per.returned.sum(), buyers=(per.n >= 1).sum(), repeaters=(per.n >= 2).sum())
    df = g.to_pandas()
    total = df.revenue.sum()
    out = pd.DataFrame({
        "customers": df.customers.astype("int64").to_numpy(), "orders": df.orders.astype("int64").to_numpy(),
        "revenue": df.revenue.round(2).to_numpy(),
        "revenue_share": np.round(df.revenue / total, 4).to_numpy() if total else np.nan,
        "aov": np.round(df.revenue / df.orders.where(df.orders > 0), 2).to_numpy(),
        "returns_rate": np.round(df.returned / df.gross.where(df.gross > 0), 4).to_numpy(),
        "repeat_rate": np.round(df.repeaters / df.buyers.where(df.buyers > 0), 4).to_numpy(),
    }, index=pd.Index(df["value"].to_numpy(), name=dimension))
    if set(out.index) <= {UNKNOWN}:  # a column without one value (an empty export column): absent, not a group
        raise MissingColumn("birth_year" if dimension == "age_band" else dimension)
    return out.sort_values(["revenue", "customers"], ascending=False)


def breakdown_or_missing(orders: ir.Table | OrderFacts, dimension: str, as_of: str,
                         customers: ir.Table | None = None, months: int = 12,
                         age_bands=(25, 35, 45, 55, 65)) -> tuple[pd.DataFrame | None, str | None]:
    """(the breakdown table, None), or (None, what is missing: the column, or CUSTOMERS_FILE) when this
    shop's data lacks what the breakdown needs, so its section is skipped in the report."""
    try:
        return breakdown(orders, dimension, as_of, customers, months, age_bands), None
    except MissingColumn as exc:
        return None, exc.args[0]


# ---------------------------------------------------------------------------------------------
# The stage's result
# ---------------------------------------------------------------------------------------------

@dataclass
class KpiResult:
    """What notebook 02 shows, computed: the two saved tables and every result its page draws.

    ``monthly`` and ``cohorts`` are kpis.csv and cohorts.csv; ``deltas`` compares the last month with
    the one before and the same month a year earlier; ``bridges`` holds the revenue bridge from each
    base ("previous", "last_year"; see `revenue_bridge`). ``cohort_matrix`` is the retention heatmap's
    table (the last ``settings.heatmap_cohorts`` cohorts) and ``retention_curve`` its summary.
    ``leads`` is None when the shop has no customers file. ``gaps`` is the histogram of days between
    orders, ``gap_summary`` and ``suggested_inactivity_days`` read at ``settings.inactivity_quantile``.
    ``breakdowns`` maps each dimension (BREAKDOWN_ORDER_COLUMNS, BREAKDOWN_CUSTOMER_COLUMNS) with data
    to its table; ``skipped`` maps each other one to what it lacks (a column, or CUSTOMERS_FILE).
    """

    monthly: pd.DataFrame
    cohorts: pd.DataFrame
    as_of: str
    currency: str
    inactivity_days: int
    settings: KpisConfig
    deltas: Deltas
    bridges: dict[str, pd.DataFrame]
    cohort_matrix: pd.DataFrame
    retention_curve: pd.DataFrame
    leads: pd.DataFrame | None
    second_orders: pd.DataFrame
    discount: pd.DataFrame
    gaps: pd.DataFrame
    gap_summary: pd.DataFrame
    suggested_inactivity_days: float
    min_rate_base: int = 100  # reports.min_rate_base: a rate over fewer customers is shown as its counts
    breakdowns: dict[str, pd.DataFrame] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    # customers, repeat customers and leads at as_of (customer_facts' definitions, as in data_quality.json)
    counts: customer_facts.CustomerCounts | None = None


def run(processed_dir: str | Path, as_of: str, cfg: Config, con=None) -> KpiResult:
    """Compute the monthly and cohort tables, write kpis.csv and cohorts.csv to `processed_dir`, and
    return them with every other result notebook 02 shows.

    The order facts are cached in the engine, so the later results reuse them.
    """
    con = con or connect(cfg.engine)
    orders, customers = open_tables(processed_dir, as_of, con)
    facts = order_facts(orders, as_of, con=con)
    m = with_guest_revenue(monthly(facts, as_of, cfg.business.inactivity_days),
                           artifacts.read_if_exists(processed_dir, "guest_revenue"))
    c = cohorts(facts, as_of)
    artifacts.write(processed_dir, "kpis", m)
    artifacts.write(processed_dir, "cohorts", c)
    res = _result(facts, customers, m, c, str(as_of), cfg, artifacts.read_if_exists(processed_dir, "data_quality"))
    artifacts.write(processed_dir, "second_orders", second_orders_card(res))
    return res


def second_orders_card(res: KpiResult) -> dict:
    """second_orders.json: the day by which ``kpis.inactivity_quantile`` of second orders happened (None when no
    customer ordered twice), with the as_of and quantile it was read at (06 uses it only when both match)."""
    day = res.suggested_inactivity_days
    return {"as_of": str(res.as_of), "inactivity_quantile": res.settings.inactivity_quantile,
            "second_order_day": None if math.isnan(day) else day}


def _result(facts: OrderFacts, customers: ir.Table | None, m: pd.DataFrame, c: pd.DataFrame, as_of: str,
            cfg: Config, quality: dict | None = None) -> KpiResult:
    """The KpiResult of the month's order facts and saved tables (see `run`); `quality`: the month's
    data_quality.json, whose customer counts are this month's when 01 cleaned it at `as_of`."""
    k = cfg.kpis
    gaps = gap_histogram(facts)
    res = KpiResult(
        m, c, as_of, cfg.shop.currency, cfg.business.inactivity_days, k,
        deltas=deltas(m), bridges={base: revenue_bridge(m, base=base) for base in ("previous", "last_year")},
        cohort_matrix=cohort_matrix(c, "retention", last_cohorts=k.heatmap_cohorts),
        retention_curve=retention_curve(c),
        leads=None if customers is None else leads_and_signups(facts, customers, as_of, k.signup_order_days),
        second_orders=second_order_rates(facts, as_of, k.second_order_windows),
        discount=discount_first_order(facts, as_of, k.discount_followup_days),
        gaps=gaps, gap_summary=gap_summary(gaps, k.inactivity_quantile),
        suggested_inactivity_days=suggested_inactivity_days(gaps, k.inactivity_quantile),
        counts=(customer_facts.counts_from_01(quality, as_of, customers is not None)
                or customer_facts.customer_counts(facts.lines, as_of, customers)),
        min_rate_base=cfg.reports.min_rate_base,
    )
    for dimension in (*BREAKDOWN_ORDER_COLUMNS, *BREAKDOWN_CUSTOMER_COLUMNS):
        table, missing = breakdown_or_missing(facts, dimension, as_of, customers, k.breakdown_months, k.age_bands)
        if missing is None:
            res.breakdowns[dimension] = table
        else:
            res.skipped[dimension] = missing
    return res
