"""Per-customer facts at any cut-off, and the purchase-model formulas: the ground floor of every stage.

Segments, CLV, churn, win-back and offers all describe a customer *as of a day*: how recently and
how often they bought, for how much, how long they have been a customer, the gaps between their
orders, which channels, payment methods and categories they use and how often with a discount.
Each fact is defined once here, as an Ibis expression over the order lines (DESIGN.md, "Engine"), so
that a backtest at an earlier cut-off computes exactly what the monthly report computes at as_of.

Cut-off convention: "on or before day `as_of`" is ``order_date < engine.cutoff_end(as_of)`` (an
order at 23:59 on the as_of day counts), everywhere.

Who is a customer (one definition for every page that counts them: 01's data_quality.json, 02, 04, 05):

- a **customer** has at least one purchase line (an order line that is not a return), whatever its
  amount, dated on or before the cut-off. A return or credit note alone makes no one a customer:
  what they bought is not in the data;
- a **repeat customer** is a customer with purchase lines in two or more distinct orders (a return
  is not an order, even when the shop books it as its own document, e.g. a credit note);
- a **lead** is a row of customers.csv with no purchase line up to the cut-off (someone with only
  returns is a lead too);
- a customer **with no positive purchase** has no purchase period (a day, or a week with
  ``clv.time_unit: week``) whose lines net to more than zero: only zero-price purchase lines, or every
  purchase cancelled by returns or credit notes booked in the same period. They are customers on every
  page, but the purchase models have no purchase of theirs to learn from: 04 gives them no CLV and 05
  no churn risk (left out of clv.parquet and churn.parquet, empty in customers_scored), and each page
  says how many and why (`no_positive_purchase`). A purchase returned in a later period stays a
  purchase: the models count it, and the return shows in the returns rate.

The **value of an order** (03's average order value) is the net of that order's own lines: a return
booked under the order's id reduces it; a credit note booked as its own document (no purchase line)
is no order and changes no order value.

Sections:

- who is a customer, a lead, a repeat customer; customers with no positive purchase;
- order lines up to a cut-off, purchase orders numbered per customer, gaps between orders;
- RFM: recency_days, frequency, monetary, avg_order_value, tenure_days; quintile scores and the
  named segment of the config's R x FM grid;
- purchase periods and the ``lifetimes`` summary (frequency, recency, T, monetary_value), with a
  calibration/holdout split: the input of BG/NBD, Pareto/NBD and MBG/NBD;
- behaviour at a cut-off (churn and win-back features): gaps, trend, return share, category breadth,
  discount share, channel and payment-method mixes, demographics;
- the purchase-model formulas (P(alive), expected purchases, P(at least one purchase)) shared by
  CLV, churn and win-back.
"""
from __future__ import annotations

import math

import datetime as dt
import functools
import operator
import re
import warnings
from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from helpers.config import SegmentsConfig
from helpers.engine import cache, cutoff_end, memtable, to_pandas, trim

UNIT_DAYS = {"day": 1, "week": 7}
# 1970-01-05 was a Monday: period numbers count days (or Monday-to-Sunday weeks) since then.
EPOCH = dt.date(1970, 1, 5)
# RFM score -> (measure, higher is better)
SCORED = {"r_score": ("recency_days", False), "f_score": ("frequency", True), "m_score": ("monetary", True)}


# --------------------------------------------------------------------------- order lines and orders

def end_exclusive(as_of: str) -> ibis.Value:
    return ibis.timestamp(cutoff_end(as_of))


def orders_until(orders: ir.Table, as_of: str) -> ir.Table:
    """Order lines dated on or before `as_of` (the whole day included)."""
    return orders.filter(orders.order_date < end_exclusive(as_of))


def month_index(ts: ir.Value) -> ir.IntegerValue:
    """A month as one integer (year * 12 + month - 1) so that month arithmetic is subtraction."""
    return (ts.year() * 12 + ts.month() - 1).cast("int64")


def customer_orders(orders: ir.Table) -> ir.Table:
    """One row per purchase order, numbered per customer.

    Columns: customer_id, order_id, order_ts (first purchase line's time), order_value (sum of its
    purchase lines), discounted (any line with discount_amount > 0 or a coupon_code; False when the
    shop exports neither), order_number (1 = the customer's first order), prev_ts (previous order's
    time, NULL for the first), gap_days (whole calendar days since the previous order).
    """
    p = orders.filter(~orders.is_return)
    flags = []
    if "discount_amount" in orders.columns:
        flags.append(p.discount_amount.fill_null(0) > 0)
    if "coupon_code" in orders.columns:
        flags.append(p.coupon_code.notnull() & (trim(p.coupon_code.cast("string")) != ""))
    disc = flags[0] if flags else p.amount.isnull() & False  # a column, so .any() works without flags
    for f in flags[1:]:
        disc = disc | f
    g = p.group_by("customer_id", "order_id").agg(
        order_ts=p.order_date.min(), order_value=p.amount.sum(), discounted=disc.any())
    w = ibis.window(group_by="customer_id", order_by=["order_ts", "order_id"])
    g = g.mutate(order_number=ibis.row_number().over(w) + 1, prev_ts=g.order_ts.lag().over(w))
    return g.mutate(gap_days=g.order_ts.date().delta(g.prev_ts.date(), unit="day"))


def gap_histogram(corders: ir.Table, max_days: int = 730) -> pd.DataFrame:
    """Days between consecutive orders of a customer, counted per whole day.

    Input: `customer_orders` (of the lines up to the cut-off). Columns: gap_days, second_orders
    (gap from 1st to 2nd order), later_orders (gaps from the 2nd order on). Gaps beyond `max_days`
    are counted in the row gap_days == max_days.
    """
    c = corders
    c = c.filter(c.order_number >= 2)
    days = ibis.least(c.gap_days, max_days)
    g = c.group_by(gap_days=days).agg(
        second_orders=(c.order_number == 2).sum(), later_orders=(c.order_number > 2).sum()).to_pandas()
    full = pd.DataFrame({"gap_days": np.arange(0, max_days + 1)})
    g = full.merge(g, how="left", on="gap_days").fillna(0)
    return g.astype("int64")


def quantile_from_counts(days: np.ndarray, counts: np.ndarray, q: float) -> float:
    total = counts.sum()
    if total == 0:
        return float("nan")
    return float(days[np.searchsorted(np.cumsum(counts), q * total, side="left")])


def suggested_inactivity_days(hist: pd.DataFrame, quantile: float = 0.8) -> float:
    """The day by which `quantile` (default 80 %) of observed second orders had happened.

    Only customers who did place a second order count, so recent buyers still inside their window
    pull the figure down a little; read it as a lower bound for ``business.inactivity_days``.
    """
    return quantile_from_counts(hist.gap_days.to_numpy(), hist.second_orders.to_numpy(), quantile)


# --------------------------------------------------------------------------- who is a customer, a lead, a repeat customer

def customers_expr(orders: ir.Table, as_of: str | None = None) -> ir.Table:
    """One row per customer (see the module docstring) on or before day `as_of` (all lines when None).

    Columns: customer_id, purchase_orders (distinct orders with a purchase line; 2+ is a repeat customer).
    """
    t = orders if as_of is None else orders_until(orders, as_of)
    p = t.filter(~t.is_return)
    return p.group_by("customer_id").agg(purchase_orders=p.order_id.nunique())


def buyers_expr(orders: ir.Table, as_of: str | None = None) -> ir.Table:
    """`customers_expr`'s customers with the sums `no_positive_purchase` takes, the lines grouped once (01 counts
    its facts from it): customer_id, purchase_orders, bought (cents of their purchase lines), net (cents of every
    line of theirs, returns included)."""
    t = orders if as_of is None else orders_until(orders, as_of)
    buy = ~t.is_return
    per = t.group_by("customer_id").agg(purchase_orders=t.order_id.nunique(where=buy),
                                        bought=cents(t.amount).sum(where=buy), net=cents(t.amount).sum())
    return per.filter(per.purchase_orders > 0)


def leads_expr(listed: ir.Table, orders: ir.Table, as_of: str | None = None,
               buyers: ir.Table | None = None) -> ir.Table:
    """The rows of customers.csv (`listed`: customer_id) with no purchase line on or before `as_of` (`buyers`:
    `customers_expr` or `buyers_expr` at `as_of`, when the caller has it)."""
    return listed.select("customer_id").anti_join(customers_expr(orders, as_of) if buyers is None else buyers,
                                                  "customer_id")


@dataclass(frozen=True)
class CustomerCounts:
    """How many customers, repeat customers and leads (None without customers.csv) a shop has at a cut-off."""

    customers: int
    repeat_customers: int
    leads: int | None = None


def customer_counts(orders: ir.Table, as_of: str | None = None, listed: ir.Table | None = None,
                    buyers: ir.Table | None = None) -> CustomerCounts:
    """The counts of the module docstring's definitions, the ones 01 (data_quality.json) and 02 show (`buyers`:
    see `leads_expr`)."""
    c = customers_expr(orders, as_of) if buyers is None else buyers
    row = c.aggregate(n=c.count(), repeat=(c.purchase_orders >= 2).sum()).to_pandas().iloc[0]
    leads = None if listed is None else int(leads_expr(listed, orders, as_of, buyers).count().to_pandas())
    return CustomerCounts(int(row["n"]), int(0 if pd.isna(row["repeat"]) else row["repeat"]), leads)


def counts_from_01(quality: dict | None, as_of: str, listed: bool) -> CustomerCounts | None:
    """`customer_counts` at `as_of` as 01 recorded them (`quality`: the month's data_quality.json; leads only when
    `listed`, i.e. with customers.csv), or None when 01 cleaned the month at another day or without the customer
    file's facts. 01's orders end at its as_of (later lines are excluded), so its counts over all of them are the
    counts at that day; at 10M order lines counting again costs 5 s."""
    q = quality or {}
    facts, listed_facts = q.get("orders") or {}, q.get("customers") or {}
    if (not q.get("as_of") or str(q["as_of"])[:10] != str(as_of)[:10] or "repeat_customers" not in facts
            or (listed and "leads_without_order" not in listed_facts)):
        return None
    return CustomerCounts(int(facts["customers"]), int(facts["repeat_customers"]),
                          int(listed_facts["leads_without_order"]) if listed else None)


# why a customer has no positive purchase: every purchase line at zero or less, or returns in the same period
NO_POSITIVE_REASONS = ("zero_price", "returned")


def no_positive_purchase(orders: ir.Table, as_of: str, time_unit: str = "day",
                         buyers: ir.Table | None = None) -> pd.DataFrame:
    """The customers with no positive purchase on or before `as_of` (see the module docstring).

    Their purchase periods all net to zero or less, so `purchase_periods` (and every purchase model
    after it) has no row of theirs. Columns: customer_id, reason: ``zero_price`` (no purchase line
    above zero) or ``returned`` (purchases cancelled by returns or credit notes in the same period).
    Sorted by customer_id. `buyers`: `buyers_expr` at `as_of`, when the caller has it.
    """
    t = orders_until(orders, as_of)
    b = buyers_expr(orders, as_of) if buyers is None else buyers
    # periods that each net to zero or less sum to zero or less: only the lines of customers whose lines net so
    # are grouped by period (at 10M lines, grouping every line by customer and day took 01 3-4 s)
    maybe = b.filter(b.net <= 0)
    valued = purchase_periods(t.semi_join(maybe, "customer_id"), as_of, time_unit).select("customer_id").distinct()
    left = maybe.anti_join(valued, "customer_id")
    out = left.select("customer_id", reason=(left.bought > 0).ifelse("returned", "zero_price")).to_pandas()
    out["customer_id"] = out["customer_id"].astype(str)
    return out.sort_values("customer_id", ignore_index=True)


def no_positive_counts(orders: ir.Table, as_of: str, time_unit: str = "day", quality: dict | None = None,
                       buyers: ir.Table | None = None) -> dict:
    """How many customers `no_positive_purchase` finds for each reason (the reasons found, in
    NO_POSITIVE_REASONS' order): 01's count (`quality`: the month's data_quality.json, its
    orders.no_positive_purchase) when 01 counted at the same as_of and time unit, else counted here. At 10M
    order lines counting again costs a stage 3-4 s."""
    checked = ((quality or {}).get("orders") or {}).get("no_positive_purchase")
    if checked and checked.get("as_of") == str(as_of)[:10] and checked.get("time_unit") == time_unit:
        return {r: int(checked["customers"][r]) for r in NO_POSITIVE_REASONS if checked["customers"].get(r)}
    found = no_positive_purchase(orders, as_of, time_unit, buyers)["reason"].value_counts()
    return {r: int(found[r]) for r in NO_POSITIVE_REASONS if found.get(r, 0)}


# --------------------------------------------------------------------------- RFM and named segments

def rfm_expr(orders: ir.Table, as_of: str) -> ir.Table:
    """One row per customer who bought on or before `as_of` (Ibis; runs on the configured engine).

    Input: order lines (customer_id, order_id, order_date, amount, is_return). Output columns:
    customer_id, recency_days, frequency, monetary (net: purchases minus every return),
    avg_order_value (mean value of the purchase orders, each net of its own returns; a credit note
    booked as its own document is no order, see the module docstring), tenure_days.
    """
    day = ibis.date(str(as_of)[:10])
    t = orders.filter(orders.order_date.date() <= day)
    buy = ~t.is_return
    # summed in whole cents: an integer sum does not depend on the engine's summation order, so
    # reruns give bit-identical features (and so identical clusters)
    o = t.group_by("customer_id", "order_id").agg(
        bought=buy.any(), cents=cents(t.amount).sum(),
        first_buy=t.order_date.min(where=buy), last_buy=t.order_date.max(where=buy))
    g = o.group_by("customer_id").agg(
        frequency=o.bought.sum(), cents=o.cents.sum(), order_cents=o.cents.sum(where=o.bought),
        first_buy=o.first_buy.min(), last_buy=o.last_buy.max(),
    )
    g = g.filter(g.frequency > 0)  # a customer with only returns in the window has no purchase to score
    g = g.mutate(monetary=g.cents.cast("float64") / 100)
    return g.select(
        "customer_id",
        recency_days=day.delta(g.last_buy.date(), unit="day"),
        frequency=g.frequency.cast("int64"),
        monetary=g.monetary.round(2),
        avg_order_value=(g.order_cents.cast("float64") / 100 / g.frequency).round(2),
        tenure_days=day.delta(g.first_buy.date(), unit="day"),
    )


def rfm_table(orders: ir.Table, as_of: str) -> pd.DataFrame:
    """``rfm_expr`` as a pandas frame, sorted by customer_id."""
    df = to_pandas(rfm_expr(orders, as_of))
    df = df.sort_values("customer_id", ignore_index=True)
    for col in ("recency_days", "frequency", "tenure_days"):
        df[col] = df[col].astype("int64")
    for col in ("monetary", "avg_order_value"):
        df[col] = df[col].astype("float64")
    return df


def quintile_scores(values: pd.Series, higher_is_better: bool = True) -> pd.Series:
    """Scores 1..5 from the mid-rank percentile: score = floor(5 * (rank - 1/2) / n) + 1.

    Tied values get their average rank, so they always share one score and bin edges never
    collide; a single customer or a column where everyone is tied scores 3 (the middle).
    Exact integer arithmetic, so the same data always gives the same scores.
    """
    n = len(values)
    if n == 0:
        return pd.Series([], index=values.index, dtype="int64")
    v = values if higher_is_better else -values
    twice_rank = np.rint(2 * v.rank(method="average").to_numpy()).astype("int64")  # 2 * average rank is whole
    scores = (twice_rank - 1) * 5 // (2 * n) + 1
    return pd.Series(np.clip(scores, 1, 5), index=values.index, dtype="int64")


def rfm_scores(rfm: pd.DataFrame) -> pd.DataFrame:
    """Add r_score (5 = most recent), f_score, m_score and fm_score = (F + M) / 2 rounded half up."""
    out = rfm.copy()
    for score, (col, higher) in SCORED.items():
        out[score] = quintile_scores(out[col], higher_is_better=higher)
    out["fm_score"] = (out["f_score"] + out["m_score"] + 1) // 2
    return out


def assign_segments(scored: pd.DataFrame, seg_cfg: SegmentsConfig) -> pd.Series:
    """The named segment of each customer: the grid cell (r_score, fm_score); categories in grid order."""
    cells = seg_cfg.grid_cells()
    names = list(seg_cfg.grid)
    lookup = np.full((6, 6), -1)
    for (r, fm), name in cells.items():
        lookup[r, fm] = names.index(name)
    codes = lookup[scored["r_score"].to_numpy(), scored["fm_score"].to_numpy()]
    return pd.Series(pd.Categorical.from_codes(codes, categories=names), index=scored.index, name="rfm_segment")


# --------------------------------------------------------------------------- purchase periods (lifetimes summary)

def as_date(value) -> dt.date:
    return pd.Timestamp(value).date()


def period_number(day, time_unit: str = "day") -> int:
    """The period number of a calendar day (days, or Monday-to-Sunday weeks, since 1970-01-05)."""
    return ((as_date(day) - EPOCH).days) // UNIT_DAYS[time_unit]


def cents(amount: ibis.Value) -> ibis.Value:
    """Money in whole cents (int64): integer sums are the same in any order a parallel engine adds them."""
    return (amount * 100).round().cast("int64")


# the columns of `daily_net`: a table with exactly these is taken for it, not for order lines
DAILY_NET_COLUMNS = ("customer_id", "day", "cents")


def daily_net(orders: ibis.Table, cut_off, customer_id_col: str = "customer_id", datetime_col: str = "order_date",
              amount_col: str = "amount") -> ibis.Table:
    """Net amount per customer and day up to and including the day `cut_off`, as an Ibis expression: the one
    pass over the order lines that every purchase summary here is taken from.

    A stage that takes several summaries of one month (the holdout's calibration and holdout, a backtest's earlier
    cut-offs) caches this table once (`engine.cache`) and passes it wherever order lines are asked for
    (`purchase_periods`, `rfm_summary`, `calibration_holdout`, ...), for cut-offs up to `cut_off`: each summary then
    reads about half as many rows as there are lines, already grouped, instead of grouping the lines again.
    (Not offers' `purchase_days`: those are per item, of purchase lines only.) Parameters as `purchase_periods`.
    Output (:data:`DAILY_NET_COLUMNS`), one row per customer and day with a line:

    ============  ======  =========================================================
    customer_id   string  renamed from ``customer_id_col``
    day           int64   day number (`period_number` in days)
    cents         int64   net amount of the day's lines in whole cents (may be zero or less)
    ============  ======  =========================================================
    """
    return _net_cents(orders, cut_off, 1, customer_id_col, datetime_col, amount_col).rename(day="period")


def _net_cents(orders: ibis.Table, cut_off, period_days: int, customer_id_col: str, datetime_col: str,
               amount_col: str) -> ibis.Table:
    """customer_id, period (of `period_days` days), cents: the order lines up to `cut_off` grouped once."""
    end = ibis.timestamp(cutoff_end(as_date(cut_off)))
    t = orders.filter(orders[datetime_col] < end)
    days = t[datetime_col].date().delta(ibis.date(EPOCH), unit="day")
    t = t.select(customer_id=t[customer_id_col], period=days // period_days, amount=t[amount_col])
    # Integer cents: DuckDB adds floats in parallel in no fixed order, so float sums differ in the last
    # bits from run to run, and the Gamma-Gamma fit and every CLV after it with them.
    return t.group_by(["customer_id", "period"]).aggregate(cents=cents(t.amount).sum())


def purchase_periods(orders: ibis.Table, cut_off, time_unit: str = "day", customer_id_col: str = "customer_id",
                     datetime_col: str = "order_date", amount_col: str = "amount") -> ibis.Table:
    """Purchase periods up to and including the day `cut_off`, as an Ibis expression.

    Input: order lines with ``customer_id_col``, ``datetime_col`` (timestamp or date) and
    ``amount_col`` (net line revenue; returns negative), or their `daily_net` up to `cut_off` or later
    (then the column names are its own). Output, one row per customer and period with a positive net amount
    (see the module docstring for why other periods are dropped):

    ============  ======  =========================================================
    customer_id   string  renamed from ``customer_id_col``
    period        int64   period number (`period_number`)
    value         float   net amount of the period's lines (> 0), to the cent
    cents         int64   the same in cents (sum these: integers add up the same in any order)
    ============  ======  =========================================================
    """
    if time_unit not in UNIT_DAYS:
        raise ValueError(f"time_unit must be one of {', '.join(UNIT_DAYS)}, got {time_unit!r}")
    unit = UNIT_DAYS[time_unit]
    if tuple(orders.columns) != DAILY_NET_COLUMNS:
        per = _net_cents(orders, cut_off, unit, customer_id_col, datetime_col, amount_col)
    else:
        days = orders.filter(orders.day <= period_number(cut_off, "day"))
        per = (days.select("customer_id", period=days.day, cents=days.cents) if unit == 1 else
               days.group_by("customer_id", period=days.day // unit).aggregate(cents=days.cents.sum()))
    per = per.filter(per.cents > 0)
    return per.select("customer_id", "period", value=per.cents.cast("float64") / 100, cents=per.cents)


def rfm_summary_expr(orders: ibis.Table, cut_off, time_unit: str = "day", **cols) -> ibis.Table:
    """One row per customer with a purchase up to `cut_off`, as ONE Ibis expression.

    Parameters: see `purchase_periods` (``cols`` passes its column-name arguments). Output, in the
    layout of ``lifetimes`` (time in units of `time_unit`):

    ==============  =======  ======================================================================
    customer_id     string
    frequency       int64    number of repeat purchase periods (purchase periods minus one)
    recency         float64  first to last purchase period
    T               float64  first purchase period to the cut-off's period (the customer's age)
    monetary_value  float64  mean net value of the repeat purchase periods (the first excluded, as
                             Gamma-Gamma requires); 0 when frequency is 0
    ==============  =======  ======================================================================
    """
    p = purchase_periods(orders, cut_off, time_unit, **cols)
    cut = period_number(cut_off, time_unit)
    agg = p.group_by("customer_id").aggregate(
        first=p.period.min(), last=p.period.max(), n=p.count(), total=p.cents.sum(),
        first_value=p.cents.argmin(p.period))
    return agg.select(
        "customer_id",
        frequency=(agg.n - 1).cast("int64"),
        recency=(agg["last"] - agg["first"]).cast("float64"),
        T=(ibis.literal(cut) - agg["first"]).cast("float64"),
        monetary_value=ibis.ifelse(agg.n > 1, (agg.total - agg.first_value) / 100 / (agg.n - 1), 0.0).cast("float64"),
    )


def rfm_summary(orders: ibis.Table, cut_off, time_unit: str = "day", **cols) -> pd.DataFrame:
    """`rfm_summary_expr` executed: a pandas frame with the same columns, sorted by customer_id."""
    return _by_customer_id(rfm_summary_expr(orders, cut_off, time_unit, **cols))


def numbers_by_customer_id(expr: ibis.Table) -> pd.DataFrame:
    """A table of one row per customer as a pandas frame in customer_id order without the ids: its other columns,
    row i being the customer `_by_customer_id` puts at i. A stage keeps the ids in the engine and joins there."""
    return to_pandas(expr.order_by("customer_id").drop("customer_id"))


def _by_customer_id(expr: ibis.Table) -> pd.DataFrame:
    """A table of one row per customer as a pandas frame sorted by customer_id, sorted by the engine: the ids are
    unique and the engines compare text by code point, as pandas does (0.5 s less than pandas' sort of 1.35M ids)."""
    return to_pandas(expr.order_by("customer_id"))


def calibration_holdout_expr(orders: ibis.Table, as_of, holdout_days: int, time_unit: str = "day",
                             **cols) -> ibis.Table:
    """Calibration summary up to ``as_of - holdout_days`` joined to what happened in the holdout.

    One row per customer with a purchase in the calibration period (customers first seen in the
    holdout are left out, as the models cannot predict them):

    ==================  =======  =============================================================
    customer_id         string
    frequency_cal       int64    `rfm_summary_expr` columns at the calibration end
    recency_cal         float64
    T_cal               float64
    monetary_value_cal  float64
    frequency_holdout   int64    purchase periods after the calibration end, up to `as_of`
    spend_holdout       float64  net value of those purchase periods
    duration_holdout    float64  length of the holdout in periods
    ==================  =======  =============================================================
    """
    cal_end = as_date(as_of) - dt.timedelta(days=int(holdout_days))
    cal = rfm_summary_expr(orders, cal_end, time_unit, **cols)
    p = purchase_periods(orders, as_of, time_unit, **cols)
    p = p.filter(p.period > period_number(cal_end, time_unit))
    hold = p.group_by("customer_id").aggregate(frequency_holdout=p.count(), spend_holdout=p.cents.sum() / 100)
    duration = float(period_number(as_of, time_unit) - period_number(cal_end, time_unit))
    j = cal.left_join(hold, "customer_id")
    return j.select(
        customer_id=cal.customer_id, frequency_cal=cal.frequency, recency_cal=cal.recency, T_cal=cal["T"],
        monetary_value_cal=cal.monetary_value,
        frequency_holdout=j.frequency_holdout.fill_null(0).cast("int64"),
        spend_holdout=j.spend_holdout.fill_null(0.0).cast("float64"),
        duration_holdout=ibis.literal(duration),
    )


def calibration_holdout(orders: ibis.Table, as_of, holdout_days: int, time_unit: str = "day",
                        **cols) -> pd.DataFrame:
    """`calibration_holdout_expr` executed, sorted by customer_id."""
    return _by_customer_id(calibration_holdout_expr(orders, as_of, holdout_days, time_unit, **cols))


def repeat_purchases_per_period(orders: ibis.Table, cut_off, time_unit: str = "day", **cols) -> pd.DataFrame:
    """Per period: customers making their first purchase (``first_purchases``) and repeat purchases.

    Small (one row per period): the input of the cumulative tracking plot.
    """
    p = purchase_periods(orders, cut_off, time_unit, **cols)
    w = p.mutate(first=p.period.min().over(group_by=p.customer_id))
    per = w.group_by("period").aggregate(first_purchases=(w.period == w["first"]).sum(),
                                         repeat_purchases=(w.period > w["first"]).sum())
    return per.to_pandas().sort_values("period").reset_index(drop=True)


def compress(summary: pd.DataFrame, columns=("frequency", "recency", "T")) -> tuple[pd.DataFrame, np.ndarray]:
    """Unique rows of `columns` with a ``weights`` count, and each input row's position among them.

    ``unique.iloc[inverse]`` gives back the input rows, so a score computed on the unique rows is
    mapped to every customer by ``score[inverse]``.
    """
    cols = list(columns)
    codes = summary.groupby(cols, sort=True).ngroup().to_numpy()
    weights = np.bincount(codes)
    first = np.zeros(len(weights), dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes))[::-1]
    unique = summary.iloc[first][cols].reset_index(drop=True)
    unique["weights"] = weights
    return unique, codes


# --------------------------------------------------------------------------- behaviour at a cut-off

def purchase_orders(lines: ir.Table, cutoff: str, last_line: bool = False) -> ir.Table:
    """One row per purchase order placed on or before day `cutoff`.

    Columns: customer_id, order_id, order_ts (first line's time), value (sum of its lines),
    discounted (any line with a discount or coupon), channel, payment_method; with `last_line`,
    last_line_ts (its last line's time) too.
    """
    p = lines.filter(~lines.is_return, lines.order_date < ibis.literal(cutoff_end(cutoff)))
    cols = set(p.columns)
    flags = []  # optional columns: only those the shop's lines have
    if "discount_amount" in cols:
        flags.append(p.discount_amount.fill_null(0) > 0)
    if "coupon_code" in cols:
        flags.append(p.coupon_code.fill_null("") != "")
    discounted = functools.reduce(operator.or_, flags).any() if flags else ibis.literal(False)
    mixes = {c: p[c].min() for c in MIX_COLUMNS if c in cols}
    last = {"last_line_ts": p.order_date.max()} if last_line else {}
    return p.group_by(["customer_id", "order_id"]).aggregate(
        order_ts=p.order_date.min(), value=p.amount.sum(), discounted=discounted, **mixes, **last)


def _with_gaps(o: ir.Table) -> ir.Table:
    """Purchase orders with gap (days since the customer's previous order; null for the first) and next_ts (the
    time of the customer's next order; null for the latest). One window sorted once serves both."""
    by_time = ibis.window(group_by="customer_id", order_by=["order_ts", "order_id"])
    return o.mutate(gap=(o.order_ts.epoch_seconds() - o.order_ts.lag().over(by_time).epoch_seconds()) / 86_400.0,
                    next_ts=o.order_ts.lead().over(by_time))


def order_history(con, lines: ir.Table, as_of: str) -> ir.Table:
    """Every purchase order up to `as_of` with its gaps (`_with_gaps`) and last line's time, kept by the engine:
    `orders_before` cuts the orders of an earlier cut-off from it, so the lines are grouped into orders and the
    orders sorted once for every cut-off of a run (three in churn's backtest). Release it with
    ``helpers.engine.release``."""
    return cache(con, _with_gaps(purchase_orders(lines, as_of, last_line=True)))


def orders_before(history: ir.Table, cutoff: str) -> ir.Table | None:
    """The orders of `order_history` placed on or before day `cutoff`, as `features_at` reads them; None when an
    order's lines straddle the cut-off (its value, discount and time at the cut-off count only the lines before
    it: `features_at` then groups the lines itself). In a clean table no order does: cleaning gives an order's
    purchase lines one time."""
    end = ibis.literal(cutoff_end(cutoff))
    straddling = history.filter((history.order_ts < end) & (history.last_line_ts >= end)).count().execute()
    return None if straddling else history.filter(history.order_ts < end).drop("last_line_ts")


MIX_COLUMNS = ("channel", "payment_method")  # optional order columns whose shares are features


def mix_levels(lines: ir.Table, cutoff: str, top: int = 6, orders: ir.Table | None = None) -> dict[str, list[str]]:
    """The `top` most common channels and payment methods among purchase orders on or before `cutoff`
    (`orders`: those orders, from `orders_before`, instead of grouping `lines`).

    Each becomes a share-of-orders feature; fixing them once per run keeps the columns of every
    cut-off the same. Ties are broken by name.
    """
    o = purchase_orders(lines, cutoff) if orders is None else orders
    present = [c for c in MIX_COLUMNS if c in o.columns]
    # one query for every column: the orders counted per combination of levels (a few rows), then per column here
    pairs = o.group_by(present).aggregate(n=o.count()).to_pandas() if present else None
    out = {}
    for col in MIX_COLUMNS:
        if col not in present:
            out[col] = []
            continue
        counts = pairs[pairs[col].notna()].groupby(col)["n"].sum()
        out[col] = sorted((str(v) for v in counts.index), key=lambda v: (-int(counts[v]), v))[:top]
    return out


def slug(value: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(value).lower()).strip("_") or "blank"


def features_at(lines: ir.Table, cutoff: str, levels: dict[str, list[str]],
                customers: ir.Table | None = None, orders: ir.Table | None = None) -> ir.Table:
    """Per-customer features at `cutoff`, from order lines dated on or before that day only.

    One row per customer with a purchase by then. Columns (days are fractional, measured to the end
    of the cut-off day): customer_id, recency_days, tenure_days, orders, revenue_gross,
    avg_order_value, gap_mean_days, gap_last_days, gap_trend ((last gap + 1) / (mean earlier gap + 1),
    > 1 means slowing down; null below 3 orders), overdue_ratio (recency / (mean gap + 1)),
    return_share (returned / purchased revenue), category_breadth, discount_share, one
    ``<channel|payment_method>_share_<level>`` per level in `levels`, and from `customers` where
    present: gender, region, age_years, marketing_opt_in. `orders`: the purchase orders up to `cutoff` with their
    gaps (`orders_before`), instead of grouping and sorting `lines` again.
    """
    end = ibis.literal(cutoff_end(cutoff))
    day = 86_400.0
    o = _with_gaps(purchase_orders(lines, cutoff)) if orders is None else orders
    # the latest order at the cut-off is the one whose next order, if any, comes after it
    o = o.mutate(latest=o.next_ts.isnull() | (o.next_ts >= end))
    shares = {}
    for col, values in levels.items():
        if col not in o.columns:
            continue
        for v in values:
            shares[f"{col}_share_{slug(v)}"] = (o[col] == v).fill_null(False).cast("float64").mean()
    per = o.group_by("customer_id").aggregate(
        orders=o.count(), first_ts=o.order_ts.min(), last_ts=o.order_ts.max(), revenue_gross=o.value.sum(),
        discount_share=o.discounted.cast("float64").mean(), gap_sum=o.gap.sum(),
        gap_last_days=o.gap.max(where=o.latest), **shares)

    lb = lines.filter(lines.order_date < end)
    breadth = {"category_breadth": lb.category.nunique(where=~lb.is_return)} if "category" in lb.columns else {}
    per_line = lb.group_by("customer_id").aggregate(returned=(-lb.amount).sum(where=lb.is_return), **breadth)

    t = per.left_join(per_line, "customer_id")
    n = t.orders.cast("float64")
    recency = (end.epoch_seconds() - t.last_ts.epoch_seconds()) / day
    gap_mean = (n > 1).ifelse(t.gap_sum / (n - 1), ibis.null("float64"))
    earlier = (n > 2).ifelse((t.gap_sum - t.gap_last_days) / (n - 2), ibis.null("float64"))
    t = t.select(
        "customer_id",
        recency_days=recency,
        tenure_days=(end.epoch_seconds() - t.first_ts.epoch_seconds()) / day,
        orders=t.orders,
        revenue_gross=t.revenue_gross,
        avg_order_value=t.revenue_gross / n,
        gap_mean_days=gap_mean,
        gap_last_days=t.gap_last_days,
        gap_trend=(t.gap_last_days + 1) / (earlier + 1),
        overdue_ratio=recency / (gap_mean + 1),
        return_share=(t.revenue_gross > 0).ifelse(t.returned.fill_null(0) / t.revenue_gross, ibis.null("float64")),
        **{k: t[k] for k in breadth},
        **({"discount_share": t.discount_share} if {"discount_amount", "coupon_code"} & set(lines.columns) else {}),
        **{k: t[k] for k in shares},
    )
    if customers is not None:
        cols = set(customers.columns)
        extra = {}
        if "gender" in cols:
            extra["gender"] = customers.gender
        if "region" in cols:
            extra["region"] = customers.region
        if "birth_year" in cols:
            extra["age_years"] = (int(str(cutoff)[:4]) - customers.birth_year).cast("float64")
        if "marketing_opt_in" in cols:
            extra["marketing_opt_in"] = customers.marketing_opt_in.cast("float64")
        if extra:
            demo = customers.select("customer_id", **extra)
            j = t.left_join(demo, "customer_id")
            t = j.select(*t.columns, *extra)
    return t


# --------------------------------------------------------------------------- purchase-model formulas

@dataclass
class Fit:
    """A fitted model (the lifetimes fitter object that scores), its parameters and penalizer, a note
    for the report, and `boundary`: a sentence naming a maximum-likelihood point on the edge of the
    model (e.g. dropout rates that hardly differ between customers), or None."""

    name: str
    model: object
    params: dict
    penalizer: float
    note: str | None = None
    boundary: str | None = None
    # the log-parameters' covariance once clv.log_param_covariance has computed it (the CLV band and the forecast
    # both need it; a fit's covariance never changes)
    covariance: object = field(default=None, repr=False, compare=False)


def lifetimes_expected_purchases(fit: Fit, t, f, r, T) -> np.ndarray:
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(fit.model.conditional_expected_number_of_purchases_up_to_time(t, f, r, T), dtype=float)


def probability_alive(fit: Fit, f, r, T) -> np.ndarray:
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = np.asarray(fit.model.conditional_probability_alive(f, r, T), dtype=float)
    if fit.name == "pareto_nbd":
        # Pareto/NBD drops out in continuous time: a purchase at the cut-off means alive (lifetimes
        # returns NaN there for T = 0, a first purchase on the cut-off day).
        p = np.where(np.asarray(r, float) >= np.asarray(T, float), 1.0, p)
    return p


def unique_x_T(f, T):
    """Unique (frequency, T) pairs and each row's position among them."""
    u, inv = compress(pd.DataFrame({"frequency": np.asarray(f, float), "T": np.asarray(T, float)}),
                      ("frequency", "T"))
    return u["frequency"].to_numpy(float), u["T"].to_numpy(float), inv


def expected_purchases(fit: Fit, t: float, f, r, T, _groups=None) -> np.ndarray:
    """E[purchases in the next t periods | frequency, recency, T], vectorised and fast.

    For all three models the expectation factorises: E(t | x, t_x, T) = P(alive | x, t_x, T) x
    E(t | alive, x, T), because given that a customer is alive the posterior of the purchase and
    drop-out rates depends on x and T only. lifetimes' own formula (with its hypergeometric function,
    the costly part) is therefore evaluated once per unique (x, T) with t_x = T, and divided by
    P(alive | x, T, T); equal to lifetimes' result to rounding (tested).
    """
    return expected_purchases_at(fit, [t], f, r, T, _groups)[0]


def expected_purchases_at(fit: Fit, ts, f, r, T, _groups=None) -> np.ndarray:
    """`expected_purchases` over each horizon of `ts` at once (rows: horizons, columns: customers): P(alive),
    which does not depend on the horizon and is the costly part for Pareto/NBD, is computed once."""
    f, r, T = (np.asarray(v, float) for v in (f, r, T))
    uf, uT, inv = _groups if _groups is not None else unique_x_T(f, T)
    alive = probability_alive(fit, f, r, T)
    if fit.name == "pareto_nbd":  # closed form (Schmittlein et al. 1987, eq. 22 given alive), finite at T = 0
        k = fit.params
        with np.errstate(all="ignore"):
            rows = [((k["r"] + uf) * (k["beta"] + uT) / ((k["alpha"] + uT) * (k["s"] - 1))
                     * (1.0 - ((k["beta"] + uT) / (k["beta"] + uT + t)) ** (k["s"] - 1))) for t in ts]
    else:
        base = probability_alive(fit, uf, uT, uT)
        rows = [lifetimes_expected_purchases(fit, t, uf, uT, uT) / base for t in ts]
    return alive * np.stack(rows)[:, inv] if len(rows) else np.zeros((0, len(f)))


def probability_of_purchase(fit: Fit, t: float, f, r, T) -> np.ndarray:
    """P(at least one purchase in the next `t` periods | history).

    BG/NBD and MBG/NBD: a customer drops out only right after a purchase, so an active customer
    makes a next purchase within t with probability 1 - ((alpha+T)/(alpha+T+t))^(r+x) (posterior
    of lambda given alive is Gamma(r+x, alpha+T)); times P(alive). Pareto/NBD: lifetimes'
    conditional PMF (Fader & Hardie, note 028), 1 - P(0 purchases).
    """
    f, r, T = (np.asarray(v, float) for v in (f, r, T))
    if fit.name == "pareto_nbd":  # factorised as in `expected_purchases`
        uf, uT, inv = unique_x_T(f, T)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p0 = np.asarray(fit.model.conditional_probability_of_n_purchases_up_to_time(0, t, uf, uT, uT), float)
        if_alive = (1.0 - p0) / probability_alive(fit, uf, uT, uT)
        return np.clip(probability_alive(fit, f, r, T) * if_alive[inv], 0.0, 1.0)
    return np.clip(probability_alive(fit, f, r, T) * buy_if_alive(fit.params, t, f, T), 0.0, 1.0)


def buy_if_alive(params: dict, t: float, f, T) -> np.ndarray:
    """BG/NBD and MBG/NBD: P(at least one purchase in the next t periods | alive, x = f, T).

    Given alive, lambda's posterior is Gamma(r + x, alpha + T), so P(no purchase in t) =
    E[exp(-lambda t)] = ((alpha + T) / (alpha + T + t))^(r + x) (Fader, Hardie & Lee 2005).
    """
    r_, alpha = params["r"], params["alpha"]
    f, T = np.asarray(f, float), np.asarray(T, float)
    return 1.0 - np.exp((r_ + f) * (np.log(alpha + T) - np.log(alpha + T + t)))


def clv_at_risk(churn: pd.DataFrame, clv: pd.DataFrame) -> tuple[float, float]:
    """(predicted CLV of the customers at high churn risk, predicted CLV of all customers): the one
    definition notebooks 05 and 07 both show. `churn`: customer_id, risk_tier (churn.parquet); `clv`:
    customer_id, clv (clv.parquet). A high-risk customer without a CLV row counts 0."""
    high = churn.loc[churn["risk_tier"] == "high", "customer_id"].astype(str)
    values = clv.assign(customer_id=clv["customer_id"].astype(str)).set_index("customer_id")["clv"]
    return float(values.reindex(high).fillna(0.0).sum()), float(values.sum())


def clv_at_risk_of_tables(churn: ibis.Table, clv: ibis.Table) -> tuple[float, float]:
    """`clv_at_risk` of the same two tables as engine tables, the same two sums: the engine joins the high-risk
    customers to their CLV, and only the CLV values reach pandas (the high-risk ones in customer_id order, as
    `clv_at_risk` takes them; all of them in clv.parquet's order), so each float sum is the same number."""
    high = churn.filter(churn.risk_tier == "high").select(customer_id=churn.customer_id.cast("string"))
    values = clv.select(key=clv.customer_id.cast("string"), clv=clv.clv)
    j = high.left_join(values, high.customer_id == values.key)
    at_risk = to_pandas(j.order_by(j.customer_id).select(clv=j.clv.fill_null(0.0)))["clv"]
    return float(at_risk.sum()), float(to_pandas(clv.select("clv"))["clv"].sum())


def cohort_retention(cohorts: pd.DataFrame, k: int) -> float | None:
    """Member-weighted share of the cohorts old enough buying k months after their first order
    (cohorts.csv: cohort_size and active_customers at months_since_first == k), rounded to 4 decimals:
    the one month-k retention notebooks 02 and 07 show. None when no cohort is k months old."""
    d = cohorts[cohorts["months_since_first"] == k]
    size = d["cohort_size"].sum()
    return round(float(d["active_customers"].sum() / size), 4) if len(d) and size > 0 else None


def _plan_total(plan: pd.DataFrame) -> tuple[float, float] | None:
    """(expected total profit, its standard deviation) of a win-back plan (winback_plan.csv: the recommended
    rows with a contact option): each segment's profit taken as normal with its expected value and the
    spread its 5-95 % band implies (width / 3.29), segments independent. None without such a row."""
    p = plan[plan["recommended"] & plan["discount"].notna() & (plan["n_customers"] > 0)]
    if p.empty:
        return None
    return (float(p["incremental_profit"].sum()),
            math.sqrt(float((((p["profit_p95"] - p["profit_p05"]) / 3.2897) ** 2).sum())))


def plan_loss_probability(plan: pd.DataFrame) -> float | None:
    """The chance that the whole win-back plan loses money (see `_plan_total`); notebooks 06 and 07 show it."""
    total = _plan_total(plan)
    if total is None:
        return None
    mean, sd = total
    if sd == 0:
        return float(mean < 0)
    return 0.5 * (1 + math.erf(-mean / sd / math.sqrt(2)))


def plan_band(plan: pd.DataFrame) -> tuple[float, float] | None:
    """The 5-95 % band of the whole plan's profit (see `_plan_total`), for 07's headline."""
    total = _plan_total(plan)
    if total is None:
        return None
    mean, sd = total
    return mean - 1.6449 * sd, mean + 1.6449 * sd


def strings(values) -> pa.ChunkedArray:
    """`values` (a pandas column, array, list or set of strings) as one Arrow large_string column."""
    if isinstance(values, (set, frozenset)):
        values = sorted(values)
    arr = pa.array(values, type=pa.large_string()) if not isinstance(values, (pa.Array, pa.ChunkedArray)) else values
    return pa.chunked_array([arr]) if isinstance(arr, pa.Array) else arr


def is_in(values, members) -> np.ndarray:
    """Which `values` are among `members` (both strings), as a boolean array. Hashes in Arrow:
    pandas' isin on Arrow-backed strings walks the members in Python (minutes for a million ids)."""
    found = pc.is_in(strings(values), value_set=strings(members).combine_chunks())
    return found.fill_null(False).to_numpy(zero_copy_only=False).astype(bool)


def ids_table(values) -> ibis.Table:
    """The distinct `values` (customer ids) as a one-column engine table `_id`, to semi-join with, sent as Arrow
    (:func:`helpers.engine.memtable`)."""
    return memtable(pa.table({"_id": pc.unique(strings(pd.Series(values).astype(str)))}))


def positions(values, names) -> np.ndarray:
    """The position of each of `values` among `names` (customer ids as text; -1 when absent), hashed in Arrow."""
    found = pc.index_in(strings(pd.Series(values).astype(str)),
                        value_set=strings(pd.Series(names).astype(str)).combine_chunks())
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def consented(customers: pd.DataFrame) -> pd.Series:
    """customers_clean's marketing_opt_in as a plain bool per row (unknown = no consent): who may be contacted."""
    return customers["marketing_opt_in"].astype("boolean").fillna(False).astype(bool)


def consented_ids(customers: pd.DataFrame) -> pa.ChunkedArray:
    """The customer ids with marketing consent (see `consented`), as Arrow strings for :func:`is_in`."""
    return strings(customers.loc[consented(customers), "customer_id"].astype(str).to_numpy(dtype=object))


def effect_basis(source: str) -> str:
    """How a plan row's uplift was obtained, from winback_plan.csv's ``uplift_source``: 'measured' (a past
    campaign measured this offer, in the segment or over the whole arm), 'interpolated' (between measured
    offers; the 0 % end may be assumed) or 'assumed' (the configured assumption, alone or added to a measured
    e-mail effect)."""
    s = str(source).strip().lower()
    if s.startswith("measured") or s.startswith("as measured"):
        return "measured"
    return "interpolated" if s.startswith("interpolated") else "assumed"


EFFECT_WORDS = {"measured": "measured in a past campaign", "interpolated": "interpolated between measured offers",
                "assumed": "assumed: no campaign measured it"}


def measured_profit(rows: pd.DataFrame) -> float:
    """The expected incremental profit of plan rows (winback_plan.csv's) whose uplift was measured in a past
    campaign (:func:`effect_basis`); the rest of their profit rests on interpolated or assumed effects."""
    measured = rows["uplift_source"].map(effect_basis) == "measured"
    return float(rows.loc[measured, "incremental_profit"].sum())
