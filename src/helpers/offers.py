"""Personalised offers (notebook 06, "What to offer"): which categories to show each customer.

Everything over order lines and customers is an Ibis expression (DESIGN.md, "Engine"): each customer's
history, profile and suggestions are kept, ranked and written (offers.parquet) by the engine. Only small
tables become pandas frames: the affinities, the similar-customer shares per profile group, the page's
tables, and the holdout sample's suggestions (at most ``evaluation_customers`` customers).

Definitions (purchase lines only, ``is_return`` False, dated on or before the cut-off; a customer's
purchases are counted per calendar day, so two orders on one day are one purchase):

- **Affinity A -> B** (A != B): of the customers whose first purchase of A lies at least
  ``affinity_window_days`` before the cut-off (so everyone had the full window), ``share`` = those
  who bought B on a later day within the window. ``base_rate`` of B = the same count summed over
  every A, divided by all those customers-with-an-A (the chance of B after any first purchase of a
  category). ``lift`` = share / base_rate. Only pairs with ``support`` (customers) >= ``min_support``
  are kept.
- **Repeat cycle**: a category a customer bought on at least ``repeat_min_orders`` days; its interval
  is the median of the days between those purchases and it is **due** on last purchase + interval.
- **Suggestions** at a cut-off, ``top_n`` per customer, best first: (1) repeat categories due within
  ``horizon_days`` (or overdue), (2) the customer's other repeat categories, (3) categories affine to
  what they bought (lift >= ``min_lift``) that they have not bought; customers with one purchase day
  have too little history for (1)-(3) beyond affinities, so they get (4) what similar customers
  bought within the window after a first purchase like theirs (gender, age band, region, first
  category; a coarser group when the group has fewer than ``similar_min_customers``) first. Every
  slot left is filled by (4), so each customer gets ``top_n`` categories.
- **Holdout**: suggestions built at ``as_of - horizon_days`` from orders up to that day are checked
  against the categories bought in the next ``horizon_days``: hit rate @N = share of the customers
  who bought in that period whose purchases include one of their N suggestions (column ``hit_rate``;
  N = ``top_n`` is kept on the result and shown only in the report's header). A shop with more
  customers at that cut-off than ``evaluation_customers`` is checked on a random sample of that many
  (their suggestions from their own history, the affinities from everyone's).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from helpers import artifacts, customer_facts, engine
from helpers.config import Config, OffersConfig
from helpers.demographics import UNKNOWN, age_band_expr
from helpers.engine import connect, cutoff_end

OFFER_COLUMNS = ["customer_id", "rank", "category", "product_id", "reason", "score"]
REASONS = {
    "due": "repeat due",
    "repeat": "repeat",
    "affinity": "bought together later",
    "similar": "similar customers",
}
PROFILE_COLUMNS = ("customer_id", "gender", "birth_year", "region")  # what a profile reads of customers_clean
PROFILE_LEVELS = [("gender", "age_band", "region", "first_category"), ("gender", "age_band", "first_category"),
                  ("first_category",), ()]
EVALUATION_SEED = 28  # draws the holdout's sample of customers (offers.evaluation_customers)


# ---------------------------------------------------------------------------------------------
# Ibis building blocks (order lines)
# ---------------------------------------------------------------------------------------------

def _day(as_of: str) -> pd.Timestamp:
    return pd.Timestamp(as_of).normalize()


def _date_lit(day: pd.Timestamp) -> ibis.Value:
    return ibis.date(day.date())


def purchase_days(orders: ir.Table, as_of: str, item: str = "category") -> ir.Table:
    """One row per customer, item (category or product_id) and purchase day up to `as_of`.

    Columns: customer_id, item, day (date), amount (net purchase value of that item that day).
    """
    end = ibis.timestamp(cutoff_end(as_of))
    o = orders.filter((orders.order_date < end) & ~orders.is_return & orders[item].notnull())
    return o.group_by("customer_id", item=o[item].cast("string"), day=o.order_date.date()).agg(amount=o.amount.sum())


def _purchase_days(orders: ir.Table, as_of: str, item: str, days: ir.Table | None) -> ir.Table:
    """`purchase_days`, or `days` (`purchase_days` at a later cut-off, kept by the engine once per run)
    up to `as_of`: the rows of a day are the same at every later cut-off."""
    return purchase_days(orders, as_of, item) if days is None else days.filter(days.day <= _date_lit(_day(as_of)))


def affinity_expr(orders: ir.Table, as_of: str, window_days: int = 90, item: str = "category",
                  days: ir.Table | None = None) -> ir.Table:
    """Per item pair (A, B): customers (with an eligible first purchase of A) and support (of them,
    bought B on a later day within `window_days`). Pairs with A == B are left out (those are repeats).

    Columns: antecedent, consequent, customers, support. A customer's first purchase of A is eligible
    when it lies at least `window_days` before `as_of`, so no window is cut short. `days`: see
    `_purchase_days`.
    """
    pdays = _purchase_days(orders, as_of, item, days).select("customer_id", "item", "day")
    last_anchor = _date_lit(_day(as_of) - pd.Timedelta(days=window_days))
    anchors = pdays.group_by("customer_id", "item").agg(first_day=pdays.day.min())
    anchors = anchors.filter(anchors.first_day <= last_anchor)
    sizes = anchors.group_by(antecedent=anchors.item).agg(customers=anchors.count())
    later = pdays.select(cid=pdays.customer_id, consequent=pdays.item, b_day=pdays.day)
    j = anchors.join(later, [anchors.customer_id == later.cid, anchors.item != later.consequent,
                             later.b_day > anchors.first_day,
                             later.b_day <= anchors.first_day + ibis.interval(days=window_days)])
    pairs = j.select("customer_id", antecedent=j.item, consequent=j.consequent).distinct()
    support = pairs.group_by("antecedent", "consequent").agg(support=pairs.count())
    return support.join(sizes, "antecedent").select("antecedent", "consequent", "customers", "support")


def category_history_expr(orders: ir.Table, as_of: str, products: bool = True,
                          days: ir.Table | None = None, products_from_days: int = 1) -> ir.Table:
    """Per customer and category up to `as_of`: the customer's purchase history in that category.

    Columns: customer_id, category, days (purchase days with the category), first_day, last_day,
    median_interval_days (median days between those purchase days; NULL with one day),
    first_amount / last_amount (value of the category on the customer's first / last purchase day,
    NULL when not bought that day), customer_days (the customer's purchase days in all
    categories), top_product (the product bought on most days in the category; NULL without
    product_id, or with ``products=False``: the holdout evaluation scores categories only and skips
    that per-product ranking, the costliest part of the expression; NULL too where the customer bought the
    category on fewer than `products_from_days` days: the suggestions read it for repeat categories only).
    `days`: see `_purchase_days`.
    """
    pd_ = _purchase_days(orders, as_of, "category", days)
    w = ibis.window(group_by=["customer_id", "item"], order_by="day")
    g = pd_.mutate(gap=pd_.day.delta(pd_.day.lag().over(w), unit="day"))
    # a category has one row per day, so its value on its own first (last) day is an argmin (argmax);
    # it is the value on the customer's first (last) day when the two days are the same
    h = g.group_by("customer_id", category=g.item).agg(
        days=g.count(), first_day=g.day.min(), last_day=g.day.max(), median_interval_days=g.gap.median(),
        own_first=g.amount.argmin(g.day), own_last=g.amount.argmax(g.day))
    cust_days = pd_.select("customer_id", "day").distinct()
    cust = cust_days.group_by(cid=cust_days.customer_id).agg(c_first=cust_days.day.min(), c_last=cust_days.day.max(),
                                                              customer_days=cust_days.count())
    t = h.join(cust, h.customer_id == cust.cid)
    h = t.select("customer_id", "category", "days", "first_day", "last_day", "median_interval_days",
                 first_amount=(t.first_day == t.c_first).ifelse(t.own_first, ibis.null("float64")),
                 last_amount=(t.last_day == t.c_last).ifelse(t.own_last, ibis.null("float64")),
                 customer_days=t.customer_days)
    if products and "product_id" in orders.columns:
        end = ibis.timestamp(cutoff_end(as_of))
        o = orders.filter((orders.order_date < end) & ~orders.is_return & orders.category.notnull()
                          & orders.product_id.notnull())
        if products_from_days > 1:  # counted on the purchase days, not on `h` (its window would run twice)
            n = pd_.group_by(_rc=pd_.customer_id, _rk=pd_.item).agg(_n=pd_.count())
            n = n.filter(n._n >= products_from_days)
            o = o.semi_join(n, [o.customer_id == n._rc, o.category.cast("string") == n._rk])
        pc = o.group_by("customer_id", pcat=o.category.cast("string"), item=o.product_id.cast("string")).agg(
            n=o.order_date.date().nunique())
        # most days first, then the first name: the smallest text "<10**9 - days, ten digits><product>" (a
        # window ranking each customer's products sorted 8.8M rows at 1.35M customers; this is one aggregate)
        key = (ibis.literal(10**9) - pc.n).cast("string").lpad(10, "0") + pc.item
        top = pc.group_by(pid=pc.customer_id, pcat=pc.pcat).agg(top_product=key.min().substr(10))
        h = h.left_join(top, [h.customer_id == top.pid, h.category == top.pcat]).drop("pid", "pcat")
    else:
        h = h.mutate(top_product=ibis.null("string"))
    return h


def later_categories_expr(orders: ir.Table, as_of: str, window_days: int, days: ir.Table | None = None) -> ir.Table:
    """Customers whose first purchase day lies at least `window_days` before `as_of`, with each
    category they bought on a later day within the window. Columns: customer_id, category.
    `days`: see `_purchase_days`."""
    pdays = _purchase_days(orders, as_of, "category", days).select("customer_id", "item", "day")
    first = pdays.group_by("customer_id").agg(first_day=pdays.day.min())
    first = first.filter(first.first_day <= _date_lit(_day(as_of) - pd.Timedelta(days=window_days)))
    j = pdays.join(first, "customer_id")
    j = j.filter((j.day > j.first_day) & (j.day <= j.first_day + ibis.interval(days=window_days)))
    return j.select("customer_id", category=j.item).distinct()


def best_sellers_expr(orders: ir.Table, as_of: str, window_days: int) -> ir.Table:
    """Per category and product: customers buying it in the `window_days` up to `as_of`."""
    start = ibis.timestamp(cutoff_end(as_of) - pd.Timedelta(days=window_days))
    end = ibis.timestamp(cutoff_end(as_of))
    o = orders.filter((orders.order_date >= start) & (orders.order_date < end) & ~orders.is_return
                      & orders.category.notnull())
    return o.group_by(category=o.category.cast("string"), product_id=o.product_id.cast("string")).agg(
        customers=o.customer_id.nunique())


# ---------------------------------------------------------------------------------------------
# Affinity table and repeat cycles (small pandas tables for the report)
# ---------------------------------------------------------------------------------------------

def affinity_table(orders: ir.Table, as_of: str, cfg: Config | OffersConfig, item: str = "category") -> pd.DataFrame:
    """Affinities A -> B with at least `min_support` customers, highest lift first.

    Index: (bought, then_bought). Columns: customers (eligible buyers of A), support (of them,
    bought B within the window), share (support / customers), base_rate (B after any first
    purchase of a category), lift (share / base_rate). `item="product_id"` gives product affinities.
    """
    oc = _ocfg(cfg)
    df = affinity_expr(orders, as_of, oc.affinity_window_days, item).to_pandas()
    return _affinity_finish(df, oc.min_support)


def _affinity_finish(df: pd.DataFrame, min_support: int) -> pd.DataFrame:
    cols = ["customers", "support", "share", "base_rate", "lift"]
    if df.empty:
        return pd.DataFrame(columns=cols, index=pd.MultiIndex.from_arrays([[], []], names=["bought", "then_bought"]))
    df = df.astype({"customers": "int64", "support": "int64"})
    anchors = df.drop_duplicates("antecedent")[["antecedent", "customers"]]
    # base rate of B: among every eligible (customer, A) with A != B, the share who bought B afterwards
    by_b = df.groupby("consequent").support.sum()
    total = anchors.customers.sum()
    own = anchors.set_index("antecedent").customers
    denominators = total - own.reindex(by_b.index).fillna(0)
    base = (by_b / denominators).rename("base_rate")
    df = df.join(base, on="consequent")
    df["share"] = df.support / df.customers
    df["lift"] = df.share / df.base_rate
    df = df[df.support >= min_support]
    df = df.rename(columns={"antecedent": "bought", "consequent": "then_bought"})
    df = df.sort_values(["lift", "support", "bought", "then_bought"], ascending=[False, False, True, True])
    out = df.set_index(["bought", "then_bought"])[cols]
    out[["share", "base_rate"]] = out[["share", "base_rate"]].round(4)
    out["lift"] = out.lift.round(2)
    return out


def _ocfg(cfg: Config | OffersConfig) -> OffersConfig:
    return cfg if isinstance(cfg, OffersConfig) else cfg.offers


def round_even(x: ir.NumericValue, digits: int = 0) -> ir.FloatingValue:
    """numpy's ``np.round(x, digits)`` as an expression: rint(x * 10**digits) / 10**digits, a half to the even
    neighbour (pandas rounds the same way; SQL's ROUND takes a half away from zero)."""
    scale = float(10 ** digits)
    r = x.cast("float64") * scale
    f = r.floor()
    up = ((r - f) > 0.5) | (((r - f) == 0.5) & ((f.cast("int64") % 2) != 0))
    return (f + up.ifelse(1.0, 0.0)) / scale


def repeat_cycles(history: ir.Table, as_of: str, cfg: Config | OffersConfig) -> ir.Table:
    """Per customer and category of `category_history_expr` with a repeat cycle: its columns plus interval_days
    (the median interval, rounded half to even), due_date, days_until_due (negative = overdue), due (due within
    horizon_days or overdue)."""
    oc = _ocfg(cfg)
    c = history.filter(history.days >= oc.repeat_min_orders)
    c = c.mutate(interval_days=round_even(c.median_interval_days).cast("int64"))
    c = c.mutate(due_date=(c.last_day + c.interval_days.as_interval("D")).cast("date"),
                 days_until_due=(c.last_day.delta(_date_lit(_day(as_of)), unit="day") + c.interval_days).cast("int64"))
    return c.mutate(due=c.days_until_due <= oc.horizon_days)


def repeat_summary(cycles: ir.Table) -> pd.DataFrame:
    """Per category of `repeat_cycles`: customers with a repeat cycle, their median interval in days
    and how many are due within the horizon (or overdue). Index: category."""
    g = engine.to_pandas(cycles.group_by("category").agg(
        customers_repeating=cycles.count(), median_interval_days=cycles.interval_days.median(),
        due_now=cycles.due.cast("int64").sum()))
    out = g.sort_values("category").set_index("category").astype(
        {"customers_repeating": "int64", "median_interval_days": "float64", "due_now": "int64"})
    out["median_interval_days"] = out.median_interval_days.round(0)
    out["due_share"] = (out.due_now / out.customers_repeating).round(4)
    return out.sort_values(["customers_repeating"], ascending=False)


# ---------------------------------------------------------------------------------------------
# Per-customer inputs (kept by the engine: one row per customer, or per customer and category)
# ---------------------------------------------------------------------------------------------

def customer_history(orders: ir.Table, as_of: str, products: bool = True,
                     days: ir.Table | None = None) -> pd.DataFrame:
    """`category_history_expr` as a pandas frame (dates as Timestamps, to the second, as Ibis gives them), through
    Arrow (:func:`helpers.engine.to_pandas`): what a test reads of a small shop's history."""
    h = engine.to_pandas(category_history_expr(orders, as_of, products, days))
    h["customer_id"] = h.customer_id.astype(str)
    return h


def profiles_expr(history: ir.Table, customers: ir.Table | None, as_of: str,
                  age_bands=(25, 35, 45, 55, 65)) -> ir.Table:
    """One row per buying customer: customer_id, first_category (largest value on the first purchase day, then
    the first name), gender, age_band, region ('(unknown)' when missing), single (one purchase day only) and
    first_day (the first purchase day)."""
    f = history.filter(history.first_amount.notnull())
    w = ibis.window(group_by="customer_id", order_by=[ibis.desc("first_amount"), "category"])
    f = f.mutate(_r=ibis.row_number().over(w))
    f = f.filter(f._r == 0)
    p = f.select("customer_id", first_category=f.category, single=f.customer_days == 1, first_day=f.first_day)
    cols = [c for c in PROFILE_COLUMNS[1:] if customers is not None and c in customers.columns]
    if cols:  # customers_clean holds each customer once (01 drops a repeated id)
        cu = customers.select(_cid=customers.customer_id.cast("string"), *cols)
        p = p.left_join(cu, p.customer_id.cast("string") == cu._cid).drop("_cid")
    text = {c: p[c].cast("string").fill_null(UNKNOWN) if c in cols else ibis.literal(UNKNOWN)
            for c in ("gender", "region")}
    band = (age_band_expr(p.birth_year, as_of, age_bands).fill_null(UNKNOWN) if "birth_year" in cols
            else ibis.literal(UNKNOWN))
    return p.select("customer_id", "first_category", gender=text["gender"], age_band=band, region=text["region"],
                    single="single", first_day="first_day")


def similar_customer_shares(profiles: ir.Table, later: ir.Table, as_of: str,
                            window_days: int) -> dict[tuple, pd.DataFrame]:
    """For each profile level (PROFILE_LEVELS), per group and category: customers (in the group whose first
    purchase lies a full window before the cut-off), buyers (of them, bought the category on a later day within
    the window) and share (small pandas tables, in group and category order). `later`: later_categories_expr.
    The engine counts the finest groups; the coarser levels are their sums."""
    finest = list(PROFILE_LEVELS[0])
    e = profiles.filter(profiles.first_day <= _date_lit(_day(as_of) - pd.Timedelta(days=window_days)))
    e = e.select(_ec=e.customer_id.cast("string"), *finest)
    lt = later.select(_lc=later.customer_id.cast("string"), category=later.category.cast("string"))
    joined = lt.join(e, lt._lc == e._ec)
    n0 = engine.to_pandas(e.group_by(finest).agg(customers=e.count()))
    b0 = engine.to_pandas(joined.group_by([*finest, "category"]).agg(buyers=joined.count()))
    out = {}
    for level in PROFILE_LEVELS:
        keys = list(level)
        if keys:
            b = b0.groupby([*keys, "category"]).buyers.sum().reset_index().join(
                n0.groupby(keys).customers.sum(), on=keys)
        else:
            b = b0.groupby("category").buyers.sum().reset_index().assign(customers=n0.customers.sum())
        b = b.astype({"buyers": "int64", "customers": "int64"})
        b["share"] = b.buyers / b.customers
        out[level] = b
    return out


@dataclass
class OfferInputs:
    """What `suggest` builds the suggestions from, all computed at one cut-off: the per-customer tables kept by
    the engine (`release_inputs` frees them), the small ones in pandas."""

    history: ir.Table          # category_history_expr
    cycles: ir.Table           # repeat_cycles
    affinities: pd.DataFrame   # affinity_table (category)
    profiles: ir.Table         # profiles_expr
    similar: dict              # similar_customer_shares
    best_sellers: pd.Series    # category -> product_id (most customers in the window)
    popular: list              # categories by customers in the window, most first
    as_of: str
    kept: list = field(default_factory=list)  # the engine's tables to release


def offer_inputs(orders: ir.Table, customers: ir.Table | pd.DataFrame | None, as_of: str, cfg: Config,
                 products: bool = True, days: ir.Table | None = None,
                 sample: ir.Table | None = None) -> OfferInputs:
    """Everything the suggestions need, from orders dated on or before `as_of` only (without each
    customer's own top product in a category with ``products=False``: see `category_history_expr`;
    `days`: see `_purchase_days`). With `sample` (a table of customer_id, `holdout_sample`) the
    per-customer inputs, the similar-customer shares and the popular categories are those customers'
    only; the affinities stay the whole shop's."""
    oc, con = cfg.offers, orders.get_backend()
    w = oc.affinity_window_days
    if isinstance(customers, pd.DataFrame):
        customers = engine.memtable(customers)
    mine = days if sample is None else _purchase_days(orders, as_of, "category", days).semi_join(sample, "customer_id")
    history = engine.cache(con, category_history_expr(orders, as_of, products, mine, oc.repeat_min_orders))
    aff = _affinity_finish(affinity_expr(orders, as_of, w, days=days).to_pandas(), oc.min_support)
    profiles = engine.cache(con, profiles_expr(history, customers, as_of, cfg.kpis.age_bands))
    similar = similar_customer_shares(profiles, later_categories_expr(orders, as_of, w, mine), as_of, w)
    if "product_id" in orders.columns:
        bs = best_sellers_expr(orders, as_of, w).to_pandas()
        bs = bs[bs.product_id.notnull()].sort_values(["category", "customers", "product_id"], ascending=[True, False, True])
        popular = bs.groupby("category").customers.sum()
        best = bs.drop_duplicates("category").set_index("category").product_id
    else:
        best = pd.Series(dtype="string")
        popular = pd.Series(dtype="float64")
    recent = history.filter(history.last_day > _date_lit(_day(as_of) - pd.Timedelta(days=w)))
    pop = engine.to_pandas(recent.group_by("category").agg(n=recent.count())).set_index("category").n
    pop = pop if len(pop) else popular
    popular_list = sorted(pop.index, key=lambda c: (-pop[c], c))
    return OfferInputs(history, repeat_cycles(history, as_of, oc), aff, profiles, similar, best, popular_list,
                       str(as_of), [history, profiles])


def release_inputs(inp: OfferInputs) -> None:
    """Free the engine's tables of `inp`."""
    if inp.kept:
        engine.release(inp.history.get_backend(), inp.kept)
        inp.kept = []


# ---------------------------------------------------------------------------------------------
# Suggestions (ranked by the engine)
# ---------------------------------------------------------------------------------------------

_SEP = "\x1f"  # joins a profile group's keys into one text


def _group_key(t: ir.Table, keys: list[str]) -> ir.StringValue:
    key = ibis.literal("")
    for i, k in enumerate(keys):
        key = (key + _SEP if i else key) + t[k].cast("string")
    return key


def _similar_slots(similar: dict, oc: OffersConfig) -> pd.DataFrame | None:
    """Per profile level, each group with at least `similar_min_customers` customers (level, gkey) and its
    top_n categories by share, then name (category, share, reason): the only ones that can be suggested.
    None when no level has a group."""
    names = [" + ".join(k.replace("_", " ") for k in lv) if lv else "all customers" for lv in PROFILE_LEVELS]
    slots = []
    for k, level in enumerate(PROFILE_LEVELS):
        table, keys = similar[level], list(level)
        ok = table[table.customers >= oc.similar_min_customers] if keys else table
        if ok.empty:
            continue
        gkey = ok[keys].astype(str).agg(_SEP.join, axis=1).to_numpy() if keys else np.full(len(ok), "")
        ok = ok.assign(level=k, gkey=gkey).sort_values(["gkey", "share", "category"], ascending=[True, False, True],
                                                       kind="stable")
        ok = ok[ok.groupby("gkey").cumcount().to_numpy() < oc.top_n]
        pct = np.round(ok.share.to_numpy(float) * 100).astype(np.int64).astype(str)
        ok = ok.assign(reason=[f"{REASONS['similar']}: {p}% of customers like them ({names[k]}) bought it within "
                               f"{oc.affinity_window_days} days" for p in pct])
        slots.append(ok[["level", "gkey", "category", "share", "reason"]])
    if not slots:
        return None
    return pd.concat(slots, ignore_index=True)


def _affinity_reasons(aff: pd.DataFrame, window_days: int) -> pd.Series:
    return (f"{REASONS['affinity']}: " + (aff.share * 100).round().astype(int).astype(str) + "% of " + aff.bought
            + " buyers buy " + aff.then_bought + f" within {window_days} days (lift "
            + aff.lift.map("{:.1f}".format) + ")")


def _cycle_reasons(c: ir.Table) -> ir.StringValue:
    """'repeat due: bought on 3 days, every ~30 days, overdue since 2026-06-01' or 'repeat: ..., next due ...'."""
    due, days = c.due_date.strftime("%Y-%m-%d"), c.days.cast("string")
    since = (c.days_until_due < 0).ifelse("overdue since ", "due ")
    every = c.interval_days.cast("string")
    now = f"{REASONS['due']}: bought on " + days + " days, every ~" + every + " days, " + since + due
    return c.due.ifelse(now, f"{REASONS['repeat']}: bought on " + days + " days, next due " + due)


def suggest_table(inp: OfferInputs, cfg: Config, details: bool = True) -> ir.Table:
    """The top `offers.top_n` categories for every customer who bought up to the inputs' cut-off (see the module
    docstring for the order of preference), as an expression in customer and rank order.

    Columns: customer_id, rank (1 = best), category, product_id (the customer's own most-bought
    product in a repeat category, else the category's best seller in the window; NULL without
    product_id), reason (one short sentence), score (0..1, the evidence share behind the reason:
    share of the customer's purchase days with the category for repeats, share of A-buyers who then
    bought B for affinities, share of similar customers for the fallback; rounded half to even).

    The engine ranks narrow candidates (customer, category, tier, score, part, ref) where the rows are: tier 0 =
    repeat due; 1 = other repeats, and what similar customers bought for a one-day customer; 2 = affinities, 3
    for a one-day customer; 4 = what similar customers bought. A category a customer has from several parts
    keeps its best (tier, then score, then part); the customer's categories rank by tier, score, then name.
    Only the chosen take their sentence (`ref`: the row of the small table of affinity and similar-customer
    sentences) and product. With ``details=False`` (the holdout evaluation, which scores categories only)
    product_id and reason are left empty."""
    oc = cfg.offers
    c = inp.cycles
    parts = [c.select("customer_id", "category", tier=c.due.ifelse(0, 1).cast("int8"),
                      score=c.days.cast("float64") / c.customer_days.cast("float64"), part=ibis.literal(0, "int8"),
                      ref=ibis.literal(-1, "int64"))]
    aff = inp.affinities.reset_index()
    aff = aff[aff.lift >= oc.min_lift].reset_index(drop=True)
    texts = []
    if not aff.empty:
        texts.append(_affinity_reasons(aff, oc.affinity_window_days))
        parts.append(_affinity_part(inp.history, aff))
    slots = _similar_slots(inp.similar, oc)
    if slots is not None:
        parts.append(_similar_part(inp.profiles, slots, first_ref=len(aff)))
        texts.append(slots.reason)
    u = ibis.union(*parts)
    u = u.mutate(_d=ibis.row_number().over(group_by=["customer_id", "category"],
                                           order_by=["tier", ibis.desc("score"), "part"]))
    u = u.filter(u._d == 0)
    u = u.mutate(rank=(ibis.row_number().over(group_by="customer_id",
                                              order_by=["tier", ibis.desc("score"), "category"]) + 1).cast("int64"))
    u = u.filter(u["rank"] <= oc.top_n).view()
    if not details:
        null = ibis.null("string")
        return u.select("customer_id", "rank", "category", product_id=null, reason=null,
                        score=round_even(u.score, 4)).order_by(["customer_id", "rank"])
    return _with_details(u, c, pd.concat(texts, ignore_index=True).astype(str) if texts else None, inp.best_sellers)


def _affinity_part(history: ir.Table, aff: pd.DataFrame) -> ir.Table:
    """Categories affine to one a customer bought and not bought yet (tier 2, or 3 for one-day customers), the
    strongest share per customer and category (ties: the first bought category by name); ref = row of `aff`."""
    pairs = engine.memtable(pd.DataFrame({"_ref": np.arange(len(aff)), "_b": aff.bought.astype(str),
                                          "_t": aff.then_bought.astype(str), "_share": aff.share.astype(float)}))
    h = history.select("customer_id", "category", "customer_days")
    j = h.join(pairs, h.category == pairs._b).view()
    bought = history.select(_mc="customer_id", _mk="category")
    j = j.anti_join(bought, [j.customer_id == bought._mc, j._t == bought._mk])
    j = j.mutate(_r=ibis.row_number().over(group_by=["customer_id", "_t"], order_by=[ibis.desc("_share"), "_b"]))
    j = j.filter(j._r == 0)
    return j.select("customer_id", category=j._t, tier=(j.customer_days == 1).ifelse(3, 2).cast("int8"),
                    score=j._share, part=ibis.literal(1, "int8"), ref=j._ref.cast("int64"))


def _similar_part(profiles: ir.Table, slots: pd.DataFrame, first_ref: int) -> ir.Table:
    """What similar customers bought (`_similar_slots`), from the finest level whose group the customer is in:
    tier 1 for one-day customers, else 4; ref = first_ref + row of `slots`. Every join is on a key column (the
    level of all customers, without keys, gives its few rows as literals: a join on a constant is a nested loop
    on Spark)."""
    groups = slots[["level", "gkey"]].drop_duplicates()
    keyed = [k for k in sorted(set(groups.level), reverse=True) if PROFILE_LEVELS[k]]
    p = profiles.select("customer_id", "single", *[_group_key(profiles, list(PROFILE_LEVELS[k])).name(f"_g{k}")
                                                   for k in keyed])
    for k in keyed:  # whether the customer is in one of the level's big-enough groups
        g = engine.memtable(pd.DataFrame({f"_h{k}": groups.gkey[groups.level == k].to_numpy()}))
        p = p.left_join(g, p[f"_g{k}"] == g[f"_h{k}"])
    everyone = [k for k in set(groups.level) if not PROFILE_LEVELS[k]]
    level = ibis.literal(everyone[0], "int64") if everyone else ibis.null("int64")
    key = ibis.literal("") if everyone else ibis.null("string")
    for k in keyed:  # the finest level wins
        level = p[f"_h{k}"].notnull().ifelse(ibis.literal(int(k), "int64"), level)
        key = p[f"_h{k}"].notnull().ifelse(p[f"_h{k}"], key)
    p = p.select("customer_id", "single", _lvl=level, _gk=key)
    p = p.filter(p._lvl.notnull()).view()
    refs = first_ref + np.arange(len(slots))
    at = slots.level.isin(keyed).to_numpy()
    parts = []
    if at.any():
        st = engine.memtable(pd.DataFrame({"_ref": refs[at], "_sl": slots.level[at].astype("int64"),
                                           "_sg": slots.gkey[at].astype(str), "_sc": slots.category[at].astype(str),
                                           "_ss": slots.share[at].astype(float)}))
        s = p.join(st, [p._lvl == st._sl, p._gk == st._sg])
        parts.append(s.select("customer_id", category=s._sc, tier=s.single.ifelse(1, 4).cast("int8"), score=s._ss,
                              part=ibis.literal(2, "int8"), ref=s._ref.cast("int64")))
    rest = p.filter(p._lvl.isin(everyone)) if everyone else None
    for i in np.flatnonzero(~at):  # the level of all customers: at most top_n categories
        parts.append(rest.select("customer_id", category=ibis.literal(str(slots.category.iloc[i])),
                                 tier=rest.single.ifelse(1, 4).cast("int8"),
                                 score=ibis.literal(float(slots.share.iloc[i]), "float64"),
                                 part=ibis.literal(2, "int8"), ref=ibis.literal(int(refs[i]), "int64")))
    return ibis.union(*parts) if len(parts) > 1 else parts[0]


def _with_details(chosen: ir.Table, cycles: ir.Table, texts: pd.Series | None, best: pd.Series) -> ir.Table:
    """The chosen candidates with their reason (a repeat's own sentence, else the sentence `ref` points to in
    `texts`) and product (a repeat's own top product, else the category's best seller)."""
    null = ibis.null("string")
    u, c = chosen, cycles
    cr = c.select(_cc="customer_id", _ck="category", _creason=_cycle_reasons(c), _cprod=c.top_product.cast("string"))
    j = u.left_join(cr, [u.customer_id == cr._cc, u.category == cr._ck])
    if texts is not None:
        tt = engine.memtable(pd.DataFrame({"_ref": np.arange(len(texts)), "_text": texts.to_numpy()}))
        j = j.left_join(tt, u.ref == tt._ref)
    if len(best):
        bt = engine.memtable(pd.DataFrame({"_bc": best.index.astype(str), "_bp": best.astype(str).to_numpy()}))
        j = j.left_join(bt, u.category == bt._bc)
    j = j.select("customer_id", "rank", "category", "score", "part", "_creason", "_cprod",
                 _text=j._text if texts is not None else null, _bp=j._bp if len(best) else null)
    own = j.part == 0
    return j.select("customer_id", "rank", "category", product_id=own.ifelse(j._cprod, null).coalesce(j._bp),
                    reason=own.ifelse(j._creason, j._text),
                    score=round_even(j.score, 4)).order_by(["customer_id", "rank"])


def suggest(orders: ir.Table, customers: ir.Table | pd.DataFrame | None, as_of: str, cfg: Config,
            inputs: OfferInputs | None = None, details: bool = True) -> pd.DataFrame:
    """`suggest_table` as a pandas frame (OFFER_COLUMNS), from `inputs` or the inputs at `as_of` (uses only
    orders dated on or before `as_of`): a small shop's, or the holdout sample's, suggestions."""
    inp = inputs or offer_inputs(orders, customers, as_of, cfg)
    try:
        out = engine.to_pandas(suggest_table(inp, cfg, details))
    finally:
        if inputs is None:
            release_inputs(inp)
    return out.astype({"customer_id": str, "rank": "int64", "category": str, "product_id": "string",
                       "reason": "string", "score": "float64"})[OFFER_COLUMNS].reset_index(drop=True)


def suggested_categories(offers: pd.DataFrame, top_n: int = 3) -> pd.DataFrame:
    """customer_id, suggested_categories ("cat1; cat2; cat3", best first, at most `top_n`): one text
    column whatever `top_n` is, for merging into winback_targets."""
    ids, joined = _joined_by_customer(offers[offers["rank"] <= top_n], "; ")
    return pd.DataFrame({"customer_id": pd.Index(ids).astype(str), "suggested_categories": joined})


def _joined_by_customer(rows: pd.DataFrame, sep: str) -> tuple[np.ndarray, np.ndarray]:
    """The customers of `rows` (customer_id, rank, category), sorted, and each one's categories joined by
    `sep`, best first (object arrays). Arrow joins whole columns a rank at a time (a Python join per
    customer took minutes for a million customers)."""
    t = pa.table({"customer_id": customer_facts.strings(rows["customer_id"].astype(str)),
                  "rank": pa.array(rows["rank"].to_numpy(dtype=np.int64)),
                  "category": customer_facts.strings(rows["category"].astype(str))})
    t = t.take(pc.sort_indices(t, sort_keys=[("customer_id", "ascending"), ("rank", "ascending")]))
    ids, cats = t["customer_id"].combine_chunks(), t["category"].combine_chunks()
    first = (np.r_[True, pc.not_equal(ids[1:], ids[:-1]).to_numpy(zero_copy_only=False)] if len(ids)
             else np.zeros(0, bool))
    starts = np.flatnonzero(first)
    group = np.cumsum(first) - 1
    position = np.arange(len(ids)) - starts[group]
    columns = []  # the k-th category of every customer (null when a customer has fewer)
    for k in range(int(position.max()) + 1 if len(ids) else 0):
        at = np.flatnonzero(position == k)
        take = np.full(len(starts), -1)
        take[group[at]] = at
        columns.append(cats.take(pa.array(take, mask=take < 0)))
    joined = (pc.binary_join_element_wise(*columns, pa.scalar(sep, pa.large_string()), null_handling="skip")
              if columns else pa.array([], pa.large_string()))
    return ids.take(pa.array(starts)).to_numpy(zero_copy_only=False), joined.to_numpy(zero_copy_only=False)


# ---------------------------------------------------------------------------------------------
# Baselines and holdout evaluation
# ---------------------------------------------------------------------------------------------

def popular_baseline(inp: OfferInputs, ids: pd.Series, top_n: int = 3) -> pd.DataFrame:
    """Every customer (`ids`: those of the inputs' profiles) gets the shop's most popular categories (customers
    buying them in the window)."""
    cats = inp.popular[:top_n]
    return pd.DataFrame({"customer_id": np.repeat(ids.to_numpy(), len(cats)),
                         "rank": np.tile(np.arange(1, len(cats) + 1), len(ids)),
                         "category": np.tile(cats, len(ids))})


def last_time_baseline(inp: OfferInputs, top_n: int = 3) -> pd.DataFrame:
    """"The same as last time": the categories of the customer's last purchase day, largest value first."""
    last = inp.history.filter(inp.history.last_amount.notnull())
    last = last.mutate(rank=ibis.row_number().over(group_by="customer_id",
                                                   order_by=[ibis.desc("last_amount"), "category"]) + 1)
    last = last.filter(last["rank"] <= top_n)
    out = engine.to_pandas(last.select("customer_id", last["rank"].cast("int64"), "category"))
    return out.astype({"customer_id": str})


def bought_between(orders: ir.Table, start: str, end: str) -> pd.DataFrame:
    """customer_id, category of purchases dated after `start` and on or before `end` (distinct)."""
    lo = ibis.timestamp(cutoff_end(start))
    hi = ibis.timestamp(cutoff_end(end))
    o = orders.filter((orders.order_date >= lo) & (orders.order_date < hi) & ~orders.is_return
                      & orders.category.notnull())
    out = engine.to_pandas(o.select("customer_id", category=o.category.cast("string")).distinct())
    return out.astype({"customer_id": str, "category": str})


def hit_rate(suggestions: pd.DataFrame, actual: pd.DataFrame, customers: pd.Series, top_n: int = 3) -> dict:
    """Hit rate @top_n among `customers` (the base at the cut-off) who bought afterwards, and coverage
    (share of the base with at least one suggestion)."""
    base = pd.Series(customers.astype("string").unique(), dtype="string")
    s = suggestions[(suggestions["rank"] <= top_n).to_numpy() & customer_facts.is_in(suggestions.customer_id.astype("string"), base)]
    act = actual[customer_facts.is_in(actual.customer_id.astype("string"), base)]
    buyers = act.customer_id.unique()
    hits = act.astype({"customer_id": "string", "category": "string"}).merge(
        s[["customer_id", "category"]].astype("string"), on=["customer_id", "category"]).customer_id.nunique()
    return {"customers": len(base), "buyers_in_horizon": int(len(buyers)),
            "hit_rate": hits / len(buyers) if len(buyers) else float("nan"),
            "coverage": s.customer_id.nunique() / len(base) if len(base) else float("nan"),
            "categories_suggested": int(s.category.nunique())}


def holdout_cutoff(as_of: str, cfg: Config) -> str:
    """The holdout's cut-off: `as_of` minus offers.horizon_days."""
    return (_day(as_of) - pd.Timedelta(days=cfg.offers.horizon_days)).strftime("%Y-%m-%d")


def holdout_sample(orders: ir.Table, as_of: str, cfg: Config,
                   days: ir.Table | None = None) -> tuple[ir.Table | None, int]:
    """The customers the holdout check scores and how many bought by its cut-off: None (every one) when
    they are at most offers.evaluation_customers (or it is null), else a random sample of that many
    (a table of customer_id), drawn with EVALUATION_SEED over the sorted ids: the same input gives the
    same sample. `days`: see `_purchase_days`."""
    n = cfg.offers.evaluation_customers
    pdays = _purchase_days(orders, holdout_cutoff(as_of, cfg), "category", days)
    ids = pdays.select(customer_id=pdays.customer_id.cast("string")).distinct().to_pyarrow()["customer_id"]
    if n is None or len(ids) <= n:
        return None, len(ids)
    ids = ids.take(pc.sort_indices(ids)).combine_chunks()
    pick = np.sort(np.random.default_rng(EVALUATION_SEED).choice(len(ids), n, replace=False))
    return engine.memtable(pa.table({"customer_id": ids.take(pa.array(pick))})), len(ids)


def evaluate_holdout(orders: ir.Table, customers: ir.Table | pd.DataFrame | None, as_of: str, cfg: Config,
                     days: ir.Table | None = None, sample: ir.Table | None = None) -> pd.DataFrame:
    """Suggestions built at `as_of - horizon_days` (orders up to then only), scored against the
    categories each customer bought in the next `horizon_days`, side by side with two baselines.

    Index: method (personalised, most popular categories, same as last time). Columns: customers
    (bought by the cut-off; of `sample` only when given, see `holdout_sample` and `offer_inputs`),
    buyers_in_horizon, hit_rate (@ offers.top_n), coverage, categories_suggested, cutoff. `days`:
    see `_purchase_days`.
    """
    oc = cfg.offers
    cutoff = holdout_cutoff(as_of, cfg)
    # categories are scored, not products or reasons: neither is computed at this cut-off
    inp = offer_inputs(orders, customers, cutoff, cfg, products=False, days=days, sample=sample)
    try:
        ours = suggest(orders, customers, cutoff, cfg, inputs=inp, details=False)
        actual = bought_between(orders, cutoff, as_of)
        base = engine.to_pandas(inp.profiles.select("customer_id")).customer_id.astype(str)
        popular, last_time = popular_baseline(inp, base, oc.top_n), last_time_baseline(inp, oc.top_n)
    finally:
        release_inputs(inp)
    rows = {
        "personalised": hit_rate(ours, actual, base, oc.top_n),
        "most popular categories": hit_rate(popular, actual, base, oc.top_n),
        "same as last time": hit_rate(last_time, actual, base, oc.top_n),
    }
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "method"
    df["hit_rate"] = df.hit_rate.astype(float).round(4)
    df["coverage"] = df.coverage.astype(float).round(4)
    df["cutoff"] = cutoff
    return df


# ---------------------------------------------------------------------------------------------
# Contact-frequency cap, second-order list, examples by segment
# ---------------------------------------------------------------------------------------------

def contact_cap(campaigns: ir.Table | pd.DataFrame | None, as_of: str, min_days: int = 7) -> set[str]:
    """Customers contacted fewer than `min_days` days before `as_of`: sent_date on or after
    as_of - (min_days - 1) and on or before as_of (min_days = 7: contacted on as_of or the 6 days
    before; one contacted exactly 7 days ago may be contacted again). Sends dated after as_of are
    not contacts yet."""
    if campaigns is None:
        return set()
    first = _day(as_of) - pd.Timedelta(days=min_days - 1)
    end = cutoff_end(as_of)
    if isinstance(campaigns, pd.DataFrame):
        d = pd.to_datetime(campaigns.sent_date)
        ids = campaigns.customer_id[(d >= first) & (d < end)]
    else:
        c = campaigns
        sent = c.sent_date.cast("timestamp")
        ids = c.filter((sent >= ibis.timestamp(first)) & (sent < ibis.timestamp(end))).select("customer_id") \
            .distinct().to_pandas().customer_id
    return set(ids.dropna().astype(str))


def apply_contact_cap(targets: pd.DataFrame, capped: set[str]) -> pd.DataFrame:
    """`targets` without the customers in `capped` (column customer_id)."""
    return targets[~customer_facts.is_in(targets.customer_id.astype("string"), capped)]


def second_order_day(orders: ir.Table, as_of: str, cfg: Config, processed_dir: str | Path | None = None) -> float:
    """The day after a first order by which `kpis.inactivity_quantile` of second orders happened
    (the figure of notebook 02: customer_facts.gap_histogram and suggested_inactivity_days). Read from 02's
    second_orders.json in `processed_dir` when it was computed at this as_of and quantile (counting every gap
    between orders again took 3 s at 1.35M customers); else counted here."""
    card = artifacts.read_if_exists(processed_dir, "second_orders") if processed_dir is not None else None
    if card and card.get("as_of") == str(as_of) and card.get("inactivity_quantile") == cfg.kpis.inactivity_quantile:
        day = card.get("second_order_day")
        return float("nan") if day is None else float(day)
    corders = customer_facts.customer_orders(customer_facts.orders_until(orders, as_of))
    return customer_facts.suggested_inactivity_days(customer_facts.gap_histogram(corders), cfg.kpis.inactivity_quantile)


def second_order_list(orders: ir.Table, offers: ir.Table | pd.DataFrame, as_of: str, cfg: Config,
                      profiles: ir.Table | None = None, day: float | None = None) -> pd.DataFrame:
    """First-time buyers (one purchase day) whose first purchase is more than `second_order_day` and at
    most `offers.second_order_max_days` days before `as_of`, with their top suggestion (`profiles`:
    `profiles_expr` at `as_of`).

    Columns: customer_id, first_day, days_since_first, suggested_category, product_id, reason.
    """
    day = second_order_day(orders, as_of, cfg) if day is None else day
    p = profiles_expr(category_history_expr(orders, as_of), None, as_of) if profiles is None else profiles
    one = p.filter(p.single)
    one = one.select(customer_id=one.customer_id.cast("string"), first_day=one.first_day,
                     days_since_first=_date_lit(_day(as_of)).delta(one.first_day, unit="day").cast("int64"))
    columns = ["customer_id", "first_day", "days_since_first", "suggested_category", "product_id", "reason"]
    if np.isnan(day):
        return engine.to_pandas(one.limit(0)).assign(suggested_category=None, product_id=None, reason=None)[columns]
    one = one.filter((one.days_since_first > day) & (one.days_since_first <= cfg.offers.second_order_max_days))
    o = engine.memtable(offers) if isinstance(offers, pd.DataFrame) else offers
    top = o.filter(o["rank"] == 1)
    top = top.select(_oc=top.customer_id.cast("string"), suggested_category=top.category.cast("string"),
                     product_id=top.product_id.cast("string"), reason=top.reason.cast("string"))
    out = engine.to_pandas(one.left_join(top, one.customer_id == top._oc).select(*columns))
    return out.sort_values(["days_since_first", "customer_id"]).reset_index(drop=True)


def examples_by_segment(offers: ir.Table | pd.DataFrame, segments: ir.Table | pd.DataFrame,
                        by: str = "rfm_segment") -> pd.DataFrame:
    """Per segment, what is suggested (no customer identifiers). Index: segment.

    Columns: customers, top_category (most common first suggestion) and its share, most_common_top3
    (the most common set of suggestions, best first), main_reason (most common kind of first reason). The
    engine counts them per segment; a tie goes to the value of the first customer in id order (as pandas'
    value_counts over the customers in id order)."""
    o = engine.memtable(offers) if isinstance(offers, pd.DataFrame) else offers
    seg = engine.memtable(segments) if isinstance(segments, pd.DataFrame) else segments
    seg = seg.select(_sid=seg.customer_id.cast("string"), _seg=seg[by].cast("string"))
    ranks = int(o["rank"].max().execute() or 0)
    first = o.filter(o["rank"] == 1)
    j = first.join(seg, first.customer_id.cast("string") == seg._sid)
    trio = [j.category.cast("string")]
    for k in range(2, ranks + 1):  # the k-th suggestion of each customer, when there is one
        ok = o.filter(o["rank"] == k)
        ok = ok.select(**{f"_k{k}": ok.customer_id, f"_c{k}": ok.category.cast("string")})
        j = j.left_join(ok, j.customer_id == ok[f"_k{k}"])
        trio.append(j[f"_c{k}"])
    j = j.select(customer_id=j.customer_id.cast("string"), segment=j._seg, category=j.category.cast("string"),
                 trio=ibis.literal(", ").join(trio), kind=j.reason.cast("string").split(":")[0])
    con = o.get_backend()
    j = engine.cache(con, j)
    try:
        sizes = engine.to_pandas(j.group_by("segment").agg(customers=j.count()))
        top = {col: _most_common(j, col) for col in ("category", "trio", "kind")}
    finally:
        engine.release(con, [j])
    if sizes.empty:  # no suggestions at all (e.g. a shop without categories)
        return pd.DataFrame(columns=["customers", "top_category", "top_category_share", "most_common_top3",
                                     "main_reason"], index=pd.Index([], name=by))
    sizes = sizes.astype({"customers": "int64"}).sort_values("segment").set_index("segment").customers
    rows = {}
    for segment, n in sizes.items():
        (cat, n_cat), (trio_, _), (kind, _) = (top[c][segment] for c in ("category", "trio", "kind"))
        rows[segment] = {"customers": int(n), "top_category": cat, "top_category_share": round(n_cat / n, 4),
                         "most_common_top3": trio_, "main_reason": kind}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = by
    return out.sort_values("customers", ascending=False)


def _most_common(t: ir.Table, col: str) -> dict[str, tuple]:
    """Per segment of `t`, the most common value of `col` and its count (ties: the smallest customer_id's)."""
    g = t.group_by("segment", _v=t[col]).agg(_n=t.count(), _first=t.customer_id.min())
    g = g.mutate(_r=ibis.row_number().over(group_by="segment", order_by=[ibis.desc("_n"), "_first"]))
    g = engine.to_pandas(g.filter(g._r == 0).select("segment", value="_v", n="_n"))
    return {seg: (v, int(n)) for seg, v, n in zip(g.segment, g.value, g.n)}


# ---------------------------------------------------------------------------------------------
# Artifact and run
# ---------------------------------------------------------------------------------------------

def save_offers(processed_dir: str | Path, offers: ir.Table | pd.DataFrame) -> Path:
    """offers.parquet: OFFER_COLUMNS, top_n rows per customer, in customer and rank order (a frame is checked
    against its declaration; a table is written by the engine)."""
    if isinstance(offers, pd.DataFrame):
        return artifacts.write(processed_dir, "offers", offers[OFFER_COLUMNS])
    return artifacts.write_table(offers.get_backend(), processed_dir, "offers", offers.select(*OFFER_COLUMNS))


def load_offers(processed_dir: str | Path) -> pd.DataFrame:
    return artifacts.read(processed_dir, "offers")


def listed_offers(con, processed_dir: str | Path, customer_ids: pd.Series) -> pd.DataFrame:
    """customer_id, rank, category of offers.parquet for `customer_ids` only (picked by the engine)."""
    o = artifacts.table(con, processed_dir, "offers")
    ids = customer_facts.ids_table(customer_ids)
    o = o.semi_join(ids, o.customer_id.cast("string") == ids._id)
    return engine.to_pandas(o.select("customer_id", "rank", "category").order_by(["customer_id", "rank"]))


@dataclass
class OffersResult:
    """What the "What to offer" section of notebook 06 shows (pandas), computed by `run` with the window,
    horizon and N in `cfg`; `helpers.pages.offers` turns it into tables and sentences. The defaults are a
    shop without any order (what a test builds one section's result from)."""

    affinities: pd.DataFrame = field(default_factory=pd.DataFrame)  # affinity_table
    repeats: pd.DataFrame = field(default_factory=pd.DataFrame)  # repeat_summary
    evaluation: pd.DataFrame = field(default_factory=pd.DataFrame)  # evaluate_holdout: hit_rate @ cfg.top_n
    capped: set = field(default_factory=set)  # contact_cap: contacted within cfg.min_days_between_contacts
    second_order_day: float = float("nan")  # second_order_day
    second_order: pd.DataFrame = field(default_factory=pd.DataFrame)  # second_order_list
    examples: pd.DataFrame = field(default_factory=pd.DataFrame)  # examples_by_segment
    as_of: str = ""
    cfg: OffersConfig = field(default_factory=OffersConfig)
    note: str | None = None  # why the section is empty (no categories): the first takeaway says it, the others refer to it
    evaluation_base: int | None = None  # customers at the holdout's cut-off when the evaluation scored a sample of them


def run(processed_dir: str | Path, as_of: str, cfg: Config, con=None) -> OffersResult:
    """Compute suggestions for every customer at `as_of`, the holdout comparison, the contact cap,
    the second-order list and examples by segment; write offers.parquet (the engine writes it: the
    suggestions of every customer do not pass through pandas)."""
    con = con or connect(cfg.engine)
    orders = artifacts.table(con, processed_dir, "orders_clean")
    customers = artifacts.table_if_exists(con, processed_dir, "customers_clean")
    campaigns = artifacts.table_if_exists(con, processed_dir, "campaigns_clean")
    # every purchase day up to as_of, kept by the engine: the holdout's earlier cut-off reads it too
    days = engine.cache(con, purchase_days(orders, as_of))
    # the holdout first: its inputs are freed before those at as_of are built
    sample, evaluation_base = holdout_sample(orders, as_of, cfg, days)
    evaluation = evaluate_holdout(orders, customers, as_of, cfg, days=days, sample=sample)
    inp = offer_inputs(orders, customers, as_of, cfg, days=days)
    engine.release(con, [days])
    save_offers(processed_dir, suggest_table(inp, cfg))
    offers = artifacts.table(con, processed_dir, "offers")
    capped = contact_cap(campaigns, as_of, cfg.offers.min_days_between_contacts)
    day = second_order_day(orders, as_of, cfg, processed_dir)
    second = second_order_list(orders, offers, as_of, cfg, profiles=inp.profiles, day=day)
    segments = artifacts.table_if_exists(con, processed_dir, "segments")
    examples = examples_by_segment(offers, segments) if segments is not None else pd.DataFrame()
    repeats = repeat_summary(inp.cycles)
    release_inputs(inp)
    return OffersResult(inp.affinities, repeats, evaluation, capped, day, second, examples,
                        str(as_of), cfg.offers, note=None if has_categories(orders, as_of) else NO_CATEGORIES,
                        evaluation_base=evaluation_base if sample is not None else None)


NO_CATEGORIES = ("This shop's orders carry no product category (the optional column 'category'), so there is "
                 "nothing to suggest: this section stays empty and the contact list has no suggested categories.")


def has_categories(orders: ir.Table, as_of: str) -> bool:
    """Whether any purchase line up to `as_of` names a category."""
    o = orders.filter(orders.order_date < ibis.timestamp(cutoff_end(as_of)))
    return bool(o.category.notnull().any().execute()) if "category" in o.columns else False
