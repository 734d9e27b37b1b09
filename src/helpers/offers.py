"""Personalised offers (notebook 06, "What to offer"): which categories to show each customer.

Everything over order lines is an Ibis expression (DESIGN.md, "Engine"); only per-customer (or
per customer x category) results and the small affinity tables become pandas frames.

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
from helpers.demographics import age_band
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
                          days: ir.Table | None = None) -> ir.Table:
    """Per customer and category up to `as_of`: the customer's purchase history in that category.

    Columns: customer_id, category, days (purchase days with the category), first_day, last_day,
    median_interval_days (median days between those purchase days; NULL with one day),
    first_amount / last_amount (value of the category on the customer's first / last purchase day,
    NULL when not bought that day), customer_days (the customer's purchase days in all
    categories), top_product (the product bought on most days in the category; NULL without
    product_id, or with ``products=False``: the holdout evaluation scores categories only and skips
    that per-product ranking, the costliest part of the expression). `days`: see `_purchase_days`.
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


def repeat_cycle_table(history: pd.DataFrame, as_of: str, cfg: Config | OffersConfig) -> pd.DataFrame:
    """Per customer and category with a repeat cycle: interval_days, due_date, days_until_due
    (negative = overdue), due (due within horizon_days or overdue). From `customer_history`."""
    oc = _ocfg(cfg)
    h = history[history.days >= oc.repeat_min_orders].copy()
    h["interval_days"] = h.median_interval_days.astype(float).round().astype("int64")
    h["due_date"] = pd.to_datetime(h.last_day) + pd.to_timedelta(h.interval_days, unit="D")
    h["days_until_due"] = (h.due_date - _day(as_of)).dt.days.astype("int64")
    h["due"] = h.days_until_due <= oc.horizon_days
    return h[["customer_id", "category", "days", "interval_days", "last_day", "due_date", "days_until_due", "due"]]


def repeat_summary(cycles: pd.DataFrame) -> pd.DataFrame:
    """Per category of `repeat_cycle_table`: customers with a repeat cycle, their median interval in days
    and how many are due within the horizon (or overdue). Index: category."""
    g = cycles.groupby("category")
    out = pd.DataFrame({
        "customers_repeating": g.size().astype("int64"),
        "median_interval_days": g.interval_days.median().round(0),
        "due_now": g.due.sum().astype("int64"),
    })
    out["due_share"] = (out.due_now / out.customers_repeating).round(4)
    return out.sort_values(["customers_repeating"], ascending=False)


# ---------------------------------------------------------------------------------------------
# Per-customer inputs (pandas, one row per customer or customer x category)
# ---------------------------------------------------------------------------------------------

def customer_history(orders: ir.Table, as_of: str, products: bool = True,
                     days: ir.Table | None = None) -> pd.DataFrame:
    """`category_history_expr` as a pandas frame (dates as Timestamps, to the second, as Ibis gives them), through
    Arrow (:func:`helpers.engine.to_pandas`): Ibis' own conversion makes a Python date of every row first (2.5 of
    the 11 s this took at 1.35M customers)."""
    h = engine.to_pandas(category_history_expr(orders, as_of, products, days))
    h["customer_id"] = h.customer_id.astype(str)
    return h


def customer_profiles(history: pd.DataFrame, customers: ir.Table | pd.DataFrame | None, as_of: str,
                      age_bands=(25, 35, 45, 55, 65)) -> pd.DataFrame:
    """One row per buying customer: customer_id, first_category (largest value on the first purchase
    day), gender, age_band, region ('(unknown)' when missing), single (one purchase day only)."""
    first = history[history.first_amount.notnull()]
    order, starts = _by_customer(first, "first_amount")
    prof = first.iloc[order[starts]][["customer_id", "category", "customer_days"]].rename(
        columns={"category": "first_category"})
    prof["single"] = prof.pop("customer_days") == 1
    if customers is not None:
        cols = [c for c in PROFILE_COLUMNS if c in customers.columns]
        cu = customers[cols] if isinstance(customers, pd.DataFrame) else engine.to_pandas(customers.select(*cols))
        # each buyer's first row in customers (a left merge on its de-duplicated rows), found by Arrow's hash
        at = customer_facts.positions(prof["customer_id"], cu["customer_id"])
        prof = prof.assign(**{c: cu[c].array.take(at, allow_fill=True) for c in cols[1:]})
    for c in ("gender", "region"):
        prof[c] = prof[c].astype("string").fillna("(unknown)") if c in prof else "(unknown)"
    if "birth_year" in prof:
        prof["age_band"] = age_band(prof.pop("birth_year"), as_of, age_bands)
    else:
        prof["age_band"] = "(unknown)"
    return prof[["customer_id", "first_category", "gender", "age_band", "region", "single"]].reset_index(drop=True)


def _by_customer(history: pd.DataFrame, value: str) -> tuple[np.ndarray, np.ndarray]:
    """Positions of `history`'s rows sorted by customer_id, `value` largest first, then category, and
    which of them start a customer. Arrow sorts the text (pandas compares it in Python)."""
    t = pa.table({"c": customer_facts.strings(history.customer_id), "v": pa.array(history[value].to_numpy(float)),
                  "k": customer_facts.strings(history.category)})
    order = pc.sort_indices(t, sort_keys=[("c", "ascending"), ("v", "descending"), ("k", "ascending")])
    c = t["c"].take(order)
    starts = np.r_[True, pc.not_equal(c[1:], c[:-1]).to_numpy(zero_copy_only=False)] if len(c) else np.zeros(0, bool)
    return order.to_numpy(), starts


def similar_customer_shares(profiles: pd.DataFrame, later: pd.DataFrame, eligible_ids) -> dict[tuple, pd.DataFrame]:
    """For each profile level (PROFILE_LEVELS), per group and category: customers (in the group and
    in `eligible_ids`, i.e. first purchase a full window before the cut-off), buyers (of them, bought
    the category on a later day within the window) and share. `later` holds customer_id, category
    (from later_categories_expr)."""
    eligible = profiles[customer_facts.is_in(profiles.customer_id, pd.Series(eligible_ids, dtype="string"))]
    joined = later.merge(eligible, on="customer_id")
    out = {}
    for level in PROFILE_LEVELS:
        keys = list(level)
        if keys:
            n = eligible.groupby(keys).size().rename("customers")
            b = joined.groupby(keys + ["category"]).size().rename("buyers").reset_index()
            b = b.join(n, on=keys)
        else:
            b = joined.groupby("category").size().rename("buyers").reset_index()
            b["customers"] = len(eligible)
        b["share"] = b.buyers / b.customers
        out[level] = b
    return out


# ---------------------------------------------------------------------------------------------
# Suggestions
# ---------------------------------------------------------------------------------------------

@dataclass
class OfferInputs:
    """What `suggest` builds the suggestions from, all computed at one cut-off (pandas)."""

    history: pd.DataFrame      # customer_history
    cycles: pd.DataFrame       # repeat_cycle_table
    affinities: pd.DataFrame   # affinity_table (category)
    profiles: pd.DataFrame     # customer_profiles
    similar: dict              # similar_customer_shares
    best_sellers: pd.DataFrame  # category -> product_id (most customers in the window)
    popular: list              # categories by customers in the window, most first
    as_of: str


def offer_inputs(orders: ir.Table, customers: ir.Table | pd.DataFrame | None, as_of: str, cfg: Config,
                 products: bool = True, days: ir.Table | None = None,
                 sample: ir.Table | None = None) -> OfferInputs:
    """Everything the suggestions need, from orders dated on or before `as_of` only (without each
    customer's own top product in a category with ``products=False``: see `category_history_expr`;
    `days`: see `_purchase_days`). With `sample` (a table of customer_id, `holdout_sample`) the
    per-customer inputs, the similar-customer shares and the popular categories are those customers'
    only; the affinities stay the whole shop's."""
    oc = cfg.offers
    w = oc.affinity_window_days
    mine = days if sample is None else _purchase_days(orders, as_of, "category", days).semi_join(sample, "customer_id")
    history = customer_history(orders, as_of, products, mine)
    cycles = repeat_cycle_table(history, as_of, oc)
    aff = _affinity_finish(affinity_expr(orders, as_of, w, days=days).to_pandas(), oc.min_support)
    profiles = customer_profiles(history, customers, as_of, cfg.kpis.age_bands)
    first = history.groupby("customer_id").first_day.min()
    elig = first.index[first <= _day(as_of) - pd.Timedelta(days=w)]
    later = engine.to_pandas(later_categories_expr(orders, as_of, w, mine)).astype({"customer_id": str})
    similar = similar_customer_shares(profiles, later, elig)
    if "product_id" in orders.columns:
        bs = best_sellers_expr(orders, as_of, w).to_pandas()
        bs = bs[bs.product_id.notnull()].sort_values(["category", "customers", "product_id"], ascending=[True, False, True])
        popular = bs.groupby("category").customers.sum()
        best = bs.drop_duplicates("category").set_index("category").product_id
    else:
        best = pd.Series(dtype="string")
        popular = pd.Series(dtype="float64")
    recent = history[history.last_day > _day(as_of) - pd.Timedelta(days=w)]
    pop = recent.groupby("category").size().sort_values(ascending=False) if not recent.empty else popular
    popular_list = sorted(pop.index, key=lambda c: (-pop[c], c))
    return OfferInputs(history, cycles, aff, profiles, similar, best, popular_list, str(as_of))


def _ocfg(cfg: Config | OffersConfig) -> OffersConfig:
    return cfg if isinstance(cfg, OffersConfig) else cfg.offers


def _sorted_names(*columns) -> pa.Array:
    """The distinct strings of `columns`, sorted by code point (as Python and pandas sort them)."""
    u = pc.unique(pa.chunked_array([c for col in columns for c in customer_facts.strings(col).chunks], type=pa.large_string()))
    return u.take(pc.array_sort_indices(u))


def _codes(values, names: pa.Array) -> np.ndarray:
    """Positions of `values` in `names` (from `_sorted_names`, so codes sort as the strings do)."""
    return pc.index_in(customer_facts.strings(values), value_set=names).to_numpy(zero_copy_only=False).astype(np.int64)


def _take_strings(names: pa.Array, codes: np.ndarray) -> pd.Series:
    return pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([names.take(pa.array(codes))])))


def _expand(starts: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each entry of `group` (ids into blocks [starts[g], starts[g + 1]) of a sorted table), the
    table rows of its block, concatenated, and the block sizes (for np.repeat of the entry's own data)."""
    size = starts[group + 1] - starts[group]
    rows = np.repeat(starts[group], size) + (np.arange(size.sum()) - np.repeat(np.cumsum(size) - size, size))
    return rows, size


def _similar_candidates(inp: OfferInputs, oc: OffersConfig, ids: pa.Array, cats: pa.Array) -> pd.DataFrame:
    """Integer frame cust, cat, share, level (index into PROFILE_LEVELS): per customer the categories
    of the finest profile group with at least `similar_min_customers` customers (the `top_n` with the
    largest shares: the only ones that can be suggested)."""
    prof = inp.profiles
    cust = _codes(prof.customer_id, ids)
    assigned = np.zeros(len(prof), bool)
    parts = []
    for k, level in enumerate(PROFILE_LEVELS):
        if assigned.all():
            break
        table, keys = inp.similar[level], list(level)
        ok = table[table.customers >= oc.similar_min_customers] if keys else table
        if ok.empty:
            continue
        groups = ok[keys].drop_duplicates().reset_index(drop=True) if keys else pd.DataFrame(index=[0])
        if keys:
            gid = prof[keys].merge(groups.reset_index(names="_g"), on=keys, how="left")["_g"].to_numpy()
            hit = ~assigned & ~np.isnan(gid)
        else:
            gid, hit = np.zeros(len(prof)), ~assigned
        if not hit.any():
            continue
        ok_g = ok.merge(groups.reset_index(names="_g"), on=keys) if keys else ok.assign(_g=0)
        ok_g = ok_g.assign(_cat=_codes(ok_g["category"], cats))
        # a customer's similar categories rank by share, then name (`_best_candidates`), and the first top_n
        # are distinct categories: none after them can be among the customer's top_n
        ok_g = ok_g.sort_values(["_g", "share", "_cat"], ascending=[True, False, True], kind="stable")
        ok_g = ok_g[ok_g.groupby("_g").cumcount().to_numpy() < oc.top_n]
        starts = np.searchsorted(ok_g["_g"].to_numpy(), np.arange(len(groups) + 1))
        rows, size = _expand(starts, gid[hit].astype(np.int64))
        ok_cat = ok_g["_cat"].to_numpy()
        parts.append(pd.DataFrame({"cust": np.repeat(cust[hit], size).astype(np.int32), "cat": ok_cat[rows].astype(np.int32),
                                   "share": ok_g["share"].to_numpy(dtype=float)[rows], "level": np.int8(k)}))
        assigned |= hit
    if not parts:
        return pd.DataFrame({"cust": np.zeros(0, np.int64), "cat": np.zeros(0, np.int64), "share": np.zeros(0),
                             "level": np.zeros(0, np.int8)})
    return pd.concat(parts, ignore_index=True)


_SRC_CYCLE, _SRC_AFFINITY, _SRC_SIMILAR = 0, 1, 2


def suggest(orders: ir.Table, customers: ir.Table | pd.DataFrame | None, as_of: str, cfg: Config,
            inputs: OfferInputs | None = None, details: bool = True) -> pd.DataFrame:
    """The top `offers.top_n` categories for every customer who bought up to `as_of` (see the module
    docstring for the order of preference). Uses only orders dated on or before `as_of`.

    Columns: customer_id, rank (1 = best), category, product_id (the customer's own most-bought
    product in a repeat category, else the category's best seller in the window; NULL without
    product_id), reason (one short sentence), score (0..1, the evidence share behind the reason:
    share of the customer's purchase days with the category for repeats, share of A-buyers who then
    bought B for affinities, share of similar customers for the fallback).

    Candidates are ranked as integer codes (customers and categories by their sorted names) and the
    reason sentences are written for the chosen `top_n` per customer only: for a million customers
    the candidates run to tens of millions of rows. With ``details=False`` (the holdout evaluation,
    which scores categories only) product_id and reason are left empty and no sentence is written.
    """
    oc = cfg.offers
    inp = inputs or offer_inputs(orders, customers, as_of, cfg)
    h, prof = inp.history, inp.profiles
    aff = inp.affinities.reset_index()
    aff = aff[aff.lift >= oc.min_lift].reset_index(drop=True)
    ids = _sorted_names(h.customer_id, prof.customer_id)
    cats = _sorted_names(h.category, aff.then_bought, aff.bought, *(t.category for t in inp.similar.values()))
    single = np.zeros(len(ids), bool)
    single[_codes(prof.customer_id[prof.single], ids)] = True
    h_cust, h_cat = _codes(h.customer_id, ids), _codes(h.category, cats)
    cyc, cycle_part = _cycle_candidates(inp, ids, cats, h_cust, h_cat)
    sim = _similar_candidates(inp, oc, ids, cats)
    parts = [p for p in (cycle_part, _affinity_candidates(aff, cats, h_cust, h_cat, single),
                         _similar_part(sim, single)) if p is not None]
    if not parts:
        return _empty_offers()
    cust, cat, score, src, ref, rank = _best_candidates(parts, len(cats), oc.top_n)
    out = pd.DataFrame({"customer_id": _take_strings(ids, cust), "rank": rank.astype("int64"),
                        "category": _take_strings(cats, cat)})
    if not details:
        return out.assign(product_id=pd.Series(pd.NA, index=range(len(cat)), dtype="string"),
                          reason=pd.Series(pd.NA, index=range(len(cat)), dtype="string"),
                          score=np.round(score.astype(float), 4))[OFFER_COLUMNS]
    product, reason = _reasons(src, ref, cyc, aff, sim, oc.affinity_window_days)
    # the customer's own product, else the category's best seller: taken by category code, in Arrow
    best = pa.array(inp.best_sellers.reindex(cats.to_pylist()).to_numpy(dtype=object), pa.large_string(),
                    from_pandas=True).take(pa.array(cat))
    return out.assign(product_id=pd.Series(pd.arrays.ArrowStringArray(pc.coalesce(product.cast(pa.large_string()),
                                                                                  best))),
                      reason=reason, score=np.round(score.astype(float), 4))[OFFER_COLUMNS]


# A candidate part: (cust, cat, tier, score, src, ref), arrays of one length (src may be one number): customer
# and category codes, the tier (0 = repeat due; 1 = other repeats, and what similar customers bought for a
# one-day customer; 2 = affinities, 3 for a one-day customer; 4 = what similar customers bought), the score,
# the source (_SRC_*) and ref = the row in that source's frame.

def _cycle_candidates(inp: OfferInputs, ids: pa.Array, cats: pa.Array, h_cust: np.ndarray, h_cat: np.ndarray):
    """Repeat categories (tier 0 when due, else 1): the cycles with each customer's purchase days and top
    product in the category (the rows `ref` points to), and the candidate part (None without a cycle)."""
    h = inp.history
    h_at = pd.Index(h_cust * len(cats) + h_cat)  # (customer, category) -> row of h
    c_cust, c_cat = _codes(inp.cycles.customer_id, ids), _codes(inp.cycles.category, cats)
    row = h_at.get_indexer(c_cust * len(cats) + c_cat)
    cyc = inp.cycles[row >= 0].assign(customer_days=h.customer_days.to_numpy()[row[row >= 0]],
                                       top_product=h.top_product.to_numpy()[row[row >= 0]])
    if cyc.empty:
        return cyc, None
    return cyc, (c_cust[row >= 0], c_cat[row >= 0], np.where(cyc.due, 0, 1),
                 (cyc.days / cyc.customer_days).to_numpy(float), _SRC_CYCLE, np.arange(len(cyc)))


def _affinity_candidates(aff: pd.DataFrame, cats: pa.Array, h_cust: np.ndarray, h_cat: np.ndarray,
                         single: np.ndarray):
    """Categories affine to one a customer bought and not bought yet (tier 2, or 3 for one-day
    customers), the strongest share per customer and category; None without affinities."""
    if aff.empty:
        return None
    a_bought, a_then = _codes(aff.bought, cats), _codes(aff.then_bought, cats)
    by_bought = np.argsort(a_bought, kind="stable")
    starts = np.searchsorted(a_bought[by_bought], np.arange(len(cats) + 1))
    pos, size = _expand(starts, h_cat)
    pair = by_bought[pos]  # row of aff for each (customer, bought category, then_bought)
    cust = np.repeat(h_cust, size)
    share = aff.share.to_numpy(float)[pair]
    # per customer and then_bought keep the strongest share (ties: first bought category by name)
    order = np.lexsort((a_bought[pair], -share, a_then[pair], cust))
    cust, pair, share = cust[order], pair[order], share[order]
    key = cust * len(cats) + a_then[pair]
    first = np.r_[True, key[1:] != key[:-1]]
    cust, pair, share, key = cust[first], pair[first], share[first], key[first]
    new = ~np.isin(key, h_cust * len(cats) + h_cat)  # not bought before
    cust, pair, share = cust[new], pair[new], share[new]
    return (cust, a_then[pair], np.where(single[cust], 3, 2), share, _SRC_AFFINITY, pair)


def _similar_part(sim: pd.DataFrame, single: np.ndarray):
    """What similar customers bought (`_similar_candidates`): tier 1 for one-day customers, else 4."""
    if sim.empty:
        return None
    s_cust = sim.cust.to_numpy()
    return (s_cust, sim.cat.to_numpy(), np.where(single[s_cust], 1, 4), sim.share.to_numpy(float),
            _SRC_SIMILAR, np.arange(len(sim)))


def _best_candidates(parts: list, n_cats: int, top_n: int):
    """All candidate parts in one set of arrays, ranked per customer (tier, then score, then category
    code): cust, cat, score, src, ref and rank (1 = best) of the best `top_n` distinct categories per
    customer, in customer and rank order. Empties `parts` once it is copied: tens of millions of
    candidates at a million customers, freed before the sort."""
    dtypes = (np.int32, np.int32, np.int8, np.float64, np.int8, np.int32)
    cust, cat, tier, score, src, ref = (
        np.concatenate([np.broadcast_to(np.asarray(p[i], dtype=dt), len(p[0])) for p in parts])
        for i, dt in enumerate(dtypes))
    parts.clear()
    order = np.lexsort((np.arange(len(cust)), cat, -score, tier, cust))
    key = cust[order].astype(np.int64) * n_cats + cat[order]
    first = ~pd.Series(key).duplicated().to_numpy()  # the best row per customer and category
    del key
    idx = order[first]
    c = cust[idx]
    pos = np.arange(len(c))
    rank = pos - np.maximum.accumulate(np.where(np.r_[True, c[1:] != c[:-1]], pos, 0)) + 1
    sel = idx[rank <= top_n]
    return cust[sel], cat[sel], score[sel], src[sel], ref[sel], rank[rank <= top_n]


def _reasons(src: np.ndarray, ref: np.ndarray, cyc: pd.DataFrame, aff: pd.DataFrame, sim: pd.DataFrame,
             window_days: int) -> tuple[pa.Array, pd.Series]:
    """For the chosen candidates (their source and row in it, `src` and `ref`): the customer's own top
    product (repeats; missing otherwise; Arrow) and the reason sentence, aligned to the candidates. A sentence is
    written once per repeat candidate, affinity and (share, profile level), in Arrow; each candidate then takes
    its own (millions of rows at a million customers: no Python string per row)."""
    texts, take, own = [], np.zeros(len(src), np.int64), np.full(len(src), -1)  # own: the row of cyc, or -1
    w = str(window_days)
    for kind in (_SRC_CYCLE, _SRC_AFFINITY, _SRC_SIMILAR):
        at = np.flatnonzero(src == kind)
        if not len(at):
            continue
        rows, offset = ref[at], sum(len(t) for t in texts)
        if kind == _SRC_CYCLE:
            texts.append(_cycle_reasons(cyc.iloc[rows]))
            take[at] = offset + np.arange(len(at))
            own[at] = rows
        elif kind == _SRC_AFFINITY:
            texts.append(pa.array((f"{REASONS['affinity']}: " + (aff.share * 100).round().astype(int).astype(str)
                                   + "% of " + aff.bought + " buyers buy " + aff.then_bought + " within " + w
                                   + " days (lift " + aff.lift.map("{:.1f}".format) + ")").to_numpy(dtype=object),
                                  type=pa.string()))
            take[at] = offset + rows
        else:
            levels = np.array([" + ".join(k.replace("_", " ") for k in lv) if lv else "all customers"
                               for lv in PROFILE_LEVELS], dtype=object)
            # a sentence per (percent, level) pair that occurs, as one integer (np.unique of 2-D rows is slow)
            key = np.round(sim.share.to_numpy(float)[rows] * 100).astype(np.int64) * len(levels) + sim.level.to_numpy()[rows]
            pairs, which = np.unique(key, return_inverse=True)
            texts.append(pa.array(f"{REASONS['similar']}: " + (pairs // len(levels)).astype(str).astype(object)
                                  + "% of customers like them (" + levels[pairs % len(levels)] + ") bought it within "
                                  + w + " days", type=pa.string()))
            take[at] = offset + which.ravel()
    reasons = pa.concat_arrays(texts).take(pa.array(take)) if texts else pa.array([], pa.string())
    product = pa.array(cyc.top_product, type=pa.string(), from_pandas=True).take(
        pa.array(np.maximum(own, 0), mask=own < 0))
    return product, pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([reasons], type=pa.string())))


def _cycle_reasons(r: pd.DataFrame) -> pa.Array:
    """'repeat due: bought on 3 days, every ~30 days, overdue since 2026-06-01' or 'repeat: ..., next due ...'."""
    days = pa.array(r.days.to_numpy(np.int64)).cast(pa.string())
    dates, which = np.unique(r.due_date.to_numpy("datetime64[D]"), return_inverse=True)  # a date's text written once
    due = pa.array(pd.DatetimeIndex(dates).strftime("%Y-%m-%d").to_numpy(dtype=object), type=pa.string()).take(
        pa.array(which.ravel()))
    since = pa.array(np.where(r.days_until_due.to_numpy() < 0, "overdue since ", "due "))
    now = pc.binary_join_element_wise(f"{REASONS['due']}: bought on ", days, " days, every ~",
                                      pa.array(r.interval_days.to_numpy(np.int64)).cast(pa.string()), " days, ",
                                      since, due, "")
    later = pc.binary_join_element_wise(f"{REASONS['repeat']}: bought on ", days, " days, next due ", due, "")
    return pc.if_else(pa.array(r.due.to_numpy(bool)), now, later)


def _empty_offers() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": pd.Series(dtype="string"), "rank": pd.Series(dtype="int64"),
                         "category": pd.Series(dtype="string"), "product_id": pd.Series(dtype="string"),
                         "reason": pd.Series(dtype="string"), "score": pd.Series(dtype="float64")})


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

def popular_baseline(inp: OfferInputs, top_n: int = 3) -> pd.DataFrame:
    """Every customer gets the shop's most popular categories (customers buying them in the window)."""
    cats = inp.popular[:top_n]
    ids = inp.profiles.customer_id
    return pd.DataFrame({"customer_id": np.repeat(ids.to_numpy(), len(cats)),
                         "rank": np.tile(np.arange(1, len(cats) + 1), len(ids)),
                         "category": np.tile(cats, len(ids))})


def last_time_baseline(inp: OfferInputs, top_n: int = 3) -> pd.DataFrame:
    """"The same as last time": the categories of the customer's last purchase day, largest value first."""
    last = inp.history[inp.history.last_amount.notnull()]
    order, starts = _by_customer(last, "last_amount")
    last = last.iloc[order].assign(rank=np.arange(len(order)) - np.flatnonzero(starts)[np.cumsum(starts) - 1] + 1)
    return last[last["rank"] <= top_n][["customer_id", "rank", "category"]].reset_index(drop=True)


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
    return ibis.memtable(pa.table({"customer_id": ids.take(pa.array(pick))})), len(ids)


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
    ours = suggest(orders, customers, cutoff, cfg, inputs=inp, details=False)
    actual = bought_between(orders, cutoff, as_of)
    base = inp.profiles.customer_id
    rows = {
        "personalised": hit_rate(ours, actual, base, oc.top_n),
        "most popular categories": hit_rate(popular_baseline(inp, oc.top_n), actual, base, oc.top_n),
        "same as last time": hit_rate(last_time_baseline(inp, oc.top_n), actual, base, oc.top_n),
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


def second_order_day(orders: ir.Table, as_of: str, cfg: Config) -> float:
    """The day after a first order by which `kpis.inactivity_quantile` of second orders happened
    (the figure of notebook 02: customer_facts.gap_histogram and suggested_inactivity_days)."""
    corders = customer_facts.customer_orders(customer_facts.orders_until(orders, as_of))
    return customer_facts.suggested_inactivity_days(customer_facts.gap_histogram(corders), cfg.kpis.inactivity_quantile)


def second_order_list(orders: ir.Table, offers: pd.DataFrame, as_of: str, cfg: Config,
                      history: pd.DataFrame | None = None, day: float | None = None) -> pd.DataFrame:
    """First-time buyers (one purchase day) whose first purchase is more than `second_order_day` and at
    most `offers.second_order_max_days` days before `as_of`, with their top suggestion.

    Columns: customer_id, first_day, days_since_first, suggested_category, product_id, reason.
    """
    day = second_order_day(orders, as_of, cfg) if day is None else day
    h = customer_history(orders, as_of) if history is None else history
    one = h[h.customer_days == 1].drop_duplicates("customer_id")[["customer_id", "first_day"]]
    one = one.assign(days_since_first=(_day(as_of) - one.first_day).dt.days.astype("int64"))
    if np.isnan(day):
        return one.iloc[0:0].assign(suggested_category=None, product_id=None, reason=None)
    keep = one[(one.days_since_first > day) & (one.days_since_first <= cfg.offers.second_order_max_days)]
    top = offers[offers["rank"] == 1][["customer_id", "category", "product_id", "reason"]]
    out = keep.merge(top.astype({"customer_id": str}), on="customer_id", how="left")
    out = out.rename(columns={"category": "suggested_category"})
    return out.sort_values(["days_since_first", "customer_id"]).reset_index(drop=True)


def examples_by_segment(offers: pd.DataFrame, segments: pd.DataFrame, by: str = "rfm_segment") -> pd.DataFrame:
    """Per segment, what is suggested (no customer identifiers). Index: segment.

    Columns: customers, top_category (most common first suggestion) and its share, most_common_top3
    (the most common set of suggestions, best first), main_reason (most common kind of first reason).
    """
    first = offers[offers["rank"] == 1]
    seg_at = customer_facts.positions(first["customer_id"], segments["customer_id"])
    if not (seg_at >= 0).any():  # no suggestions at all (e.g. a shop without categories)
        return pd.DataFrame(columns=["customers", "top_category", "top_category_share", "most_common_top3",
                                     "main_reason"], index=pd.Index([], name=by))
    first = first[seg_at >= 0].copy()
    first[by] = segments[by].astype(str).to_numpy(dtype=object)[seg_at[seg_at >= 0]]
    kind = pc.list_element(pc.split_pattern(customer_facts.strings(first.reason.astype(str)), ":", max_splits=1), 0)
    first["kind"] = kind.to_numpy(zero_copy_only=False)  # the kind of reason, before its ':'
    ids, trio = _joined_by_customer(offers, ", ")  # "a, b, c": the suggestions best first
    trio_at = customer_facts.positions(first["customer_id"], ids)
    first["trio"] = pd.Series(trio[trio_at], index=first.index, dtype="string")
    rows = {}
    for seg, g in first.groupby(by):
        vc = g.category.value_counts()
        rows[seg] = {"customers": len(g), "top_category": vc.index[0], "top_category_share": round(vc.iloc[0] / len(g), 4),
                     "most_common_top3": g.trio.value_counts().index[0],
                     "main_reason": g.kind.value_counts().index[0]}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = by
    return out.sort_values("customers", ascending=False)


# ---------------------------------------------------------------------------------------------
# Artifact and run
# ---------------------------------------------------------------------------------------------

def save_offers(processed_dir: str | Path, offers: pd.DataFrame) -> Path:
    """offers.parquet: OFFER_COLUMNS, top_n rows per customer (checked against its declaration)."""
    return artifacts.write(processed_dir, "offers", offers[OFFER_COLUMNS])


def load_offers(processed_dir: str | Path) -> pd.DataFrame:
    return artifacts.read(processed_dir, "offers")


@dataclass
class OffersResult:
    """What the "What to offer" section of notebook 06 shows (pandas), computed by `run` with the window,
    horizon and N in `cfg`; `helpers.pages.offers` turns it into tables and sentences. The defaults are a
    shop without any order (what a test builds one section's result from)."""

    affinities: pd.DataFrame = field(default_factory=pd.DataFrame)  # affinity_table
    repeats: pd.DataFrame = field(default_factory=pd.DataFrame)  # repeat_summary
    offers: pd.DataFrame = field(default_factory=lambda: _empty_offers())  # offers.parquet's rows
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
    the second-order list and examples by segment; write offers.parquet."""
    con = con or connect(cfg.engine)
    orders = artifacts.table(con, processed_dir, "orders_clean")
    customers = artifacts.table_if_exists(con, processed_dir, "customers_clean")
    if customers is not None:  # read once: the profiles at as_of and at the holdout's cut-off join it
        customers = engine.to_pandas(customers.select(*[c for c in PROFILE_COLUMNS if c in customers.columns]))
    campaigns = artifacts.table_if_exists(con, processed_dir, "campaigns_clean")
    # every purchase day up to as_of, kept by the engine: the holdout's earlier cut-off reads it too
    days = engine.cache(con, purchase_days(orders, as_of))
    # the holdout first: its inputs are freed before those at as_of are built (the memory peak is one set)
    sample, evaluation_base = holdout_sample(orders, as_of, cfg, days)
    evaluation = evaluate_holdout(orders, customers, as_of, cfg, days=days, sample=sample)
    inp = offer_inputs(orders, customers, as_of, cfg, days=days)
    engine.release(con, [days])
    del customers  # the inputs hold what the suggestions need of it
    offers = suggest(orders, None, as_of, cfg, inputs=inp)
    save_offers(processed_dir, offers)
    capped = contact_cap(campaigns, as_of, cfg.offers.min_days_between_contacts)
    day = second_order_day(orders, as_of, cfg)
    second = second_order_list(orders, offers, as_of, cfg, history=inp.history, day=day)
    segments = artifacts.read_if_exists(processed_dir, "segments", columns=["customer_id", "rfm_segment"])
    examples = examples_by_segment(offers, segments) if segments is not None else pd.DataFrame()
    return OffersResult(inp.affinities, repeat_summary(inp.cycles), offers, evaluation, capped, day, second, examples,
                        str(as_of), cfg.offers, note=None if has_categories(orders, as_of) else NO_CATEGORIES,
                        evaluation_base=evaluation_base if sample is not None else None)


NO_CATEGORIES = ("This shop's orders carry no product category (the optional column 'category'), so there is "
                 "nothing to suggest: this section stays empty and the contact list has no suggested categories.")


def has_categories(orders: ir.Table, as_of: str) -> bool:
    """Whether any purchase line up to `as_of` names a category."""
    o = orders.filter(orders.order_date < ibis.timestamp(cutoff_end(as_of)))
    return bool(o.category.notnull().any().execute()) if "category" in o.columns else False
