"""The "What to offer" section of notebook 06 (06_winback.ipynb): which categories pay to show each customer.
From an `offers.OffersResult` it draws the category affinities, the repeat cycles, the holdout check of the
suggestions against two simple baselines, what each RFM segment is shown, and the second-order list, each
table with its takeaway sentence; the numbers behind the takeaways stay on the result.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from helpers import plots
from helpers.offers import OffersResult

NO_CATEGORIES_AGAIN = "Empty for the same reason: no order names a product category."


# ---------------------------------------------------------------------------------------------
# Affinities and repeat cycles
# ---------------------------------------------------------------------------------------------

def affinities_table(res: OffersResult, top: int = 10) -> pd.DataFrame:
    """The `top` affinities (highest lift first) for reading."""
    return affinities_for_readers(res.affinities.head(top), res.cfg.affinity_window_days)


def affinity_takeaway(res: OffersResult) -> str:
    if res.note:
        return res.note
    table, window_days = res.affinities, res.cfg.affinity_window_days
    if table.empty:
        return "No pair of categories has enough customers yet to show an affinity."
    (a, b), r = next(table.iterrows())
    strong = int((table.lift >= 1.5).sum())
    return (f"Of customers who bought {a}, {r.share:.0%} bought {b} within {window_days} days, "
            f"{r.lift:.1f} times the base rate of {r.base_rate:.0%}; {strong} of {len(table)} pairs with enough "
            f"customers have a lift of 1.5 or more.")


def repeats_table(res: OffersResult) -> pd.DataFrame:
    return repeats_for_readers(res.repeats, res.cfg.horizon_days)


def repeat_takeaway(res: OffersResult) -> str:
    if res.note:
        return NO_CATEGORIES_AGAIN
    summary, horizon_days = res.repeats, res.cfg.horizon_days
    if summary.empty:
        return "No customer has bought a category twice yet, so there are no repeat cycles."
    top = summary.index[0]
    fastest = summary.median_interval_days.idxmin()
    return (f"{int(summary.customers_repeating.sum()):,} customer-category repeat cycles; {top} has the most repeat "
            f"buyers ({int(summary.loc[top, 'customers_repeating']):,}), {fastest} the shortest cycle "
            f"({summary.loc[fastest, 'median_interval_days']:.0f} days); {int(summary.due_now.sum()):,} are due "
            f"within {horizon_days} days or overdue.")


# ---------------------------------------------------------------------------------------------
# Holdout check
# ---------------------------------------------------------------------------------------------

def evaluation_table(res: OffersResult) -> pd.DataFrame:
    """`offers.evaluate_holdout` for reading: the hit rate's header names its N ('hit rate (one of the 3
    suggestions bought)'), counts with separators, rates in %."""
    top_n = res.cfg.top_n
    t = res.evaluation.rename(columns={"hit_rate": f"hit_rate_at_{top_n}"})
    return plots.table_for_readers(t, {"customers": "count", "buyers_in_horizon": "count", f"hit_rate_at_{top_n}": "share",
                                       "coverage": "share", "categories_suggested": "count"})


def evaluation_takeaway(res: OffersResult) -> str:
    if res.note:
        return NO_CATEGORIES_AGAIN
    evaluation, col, n = res.evaluation, "hit_rate", res.cfg.top_n
    cutoff = evaluation.cutoff.iloc[0]
    buyers = int(evaluation.loc["personalised", "buyers_in_horizon"])
    sampled = ("" if res.evaluation_base is None else f" Measured on a random sample of "
               f"{int(evaluation.loc['personalised', 'customers']):,} of the {res.evaluation_base:,} customers.")
    if evaluation[col].isna().all():  # nobody checked bought in the next period (a small shop, or a small sample)
        return (f"Built on orders up to {cutoff}: none of the customers checked bought in the next period, so the "
                f"suggestions cannot be checked against what they bought yet.{sampled}")
    ours = evaluation.loc["personalised", col]
    others = evaluation.drop(index="personalised")
    best_other = others[col].idxmax()
    if ours > others[col].max():
        verdict = (f"the personalised suggestions win: {ours:.1%} hit rate @{n} vs {others[col].max():.1%} for "
                   f"'{best_other}' (+{(ours - others[col].max()) * 100:.1f} points)")
    elif ours == others[col].max():  # e.g. offers.top_n as large as the number of categories: every method hits
        verdict = (f"the personalised suggestions do no better than '{best_other}' (both {ours:.1%} hit rate @{n}), "
                   "so review the offer settings before using the suggestions")
    else:
        verdict = (f"'{best_other}' wins ({others[col].max():.1%} hit rate @{n} vs {ours:.1%} personalised), "
                   "so review the offer settings before using the suggestions")
    return (f"Built on orders up to {cutoff} and checked against what the {buyers:,} customers who bought in the "
            f"next period actually bought, {verdict}.{sampled}")


# ---------------------------------------------------------------------------------------------
# Contact cap, examples by segment, second-order list
# ---------------------------------------------------------------------------------------------

def cap_takeaway(res: OffersResult, targets: pd.DataFrame | None = None) -> str:
    """How many customers the contact cap leaves out (of `targets`, a contact list, when given)."""
    capped, min_days = res.capped, res.cfg.min_days_between_contacts
    if targets is not None:
        left_out = int(targets.customer_id.astype(str).isin(capped).sum())  # object strings: isin hashes in C
        return (f"{len(capped):,} customers were contacted in the last {min_days} days; {left_out:,} of them were on "
                f"the target list and are left out, so nobody is mailed twice within {min_days} days.")
    return f"{len(capped):,} customers were contacted in the last {min_days} days and are left out of the targets."


def examples_table(res: OffersResult) -> pd.DataFrame:
    return examples_for_readers(res.examples)


def examples_takeaway(res: OffersResult) -> str:
    if res.note:
        return NO_CATEGORIES_AGAIN
    examples = res.examples
    if examples.empty:
        return "No segment has suggestions yet."
    distinct = examples.top_category.nunique()
    trios = examples.most_common_top3.nunique()
    big = examples.index[0]
    lead = (f"{distinct} different leading categories" if distinct > 1
            else f"the same leading category ({examples.top_category.iloc[0]}) in every segment")
    reasons = ", ".join(sorted(examples.main_reason.unique()))
    return (f"Across {len(examples)} segments there are {lead} and {trios} different most common sets of three; "
            f"the main reasons are {reasons}. The largest segment, {big}, is mostly shown "
            f"{examples.loc[big, 'top_category']} first ({examples.loc[big, 'top_category_share']:.0%} of its customers).")


def second_order_table(res: OffersResult) -> pd.DataFrame:
    return second_order_for_readers(second_order_summary(res.second_order))


def second_order_takeaway(res: OffersResult) -> str:
    if res.note:
        return NO_CATEGORIES_AGAIN
    second, day, max_days = res.second_order, res.second_order_day, res.cfg.second_order_max_days
    if np.isnan(day):
        return "No customer has placed a second order yet, so there is no second-order list."
    if second.empty:
        return f"No first-time buyer is between {day:.0f} and {max_days} days past the first order."
    top = second.suggested_category.value_counts()
    return (f"{len(second):,} first-time buyers are more than {day:.0f} days past their first order (by then most "
            f"second orders have happened) and at most {max_days} days; the most common suggestion for them is "
            f"{top.index[0]} ({top.iloc[0] / len(second):.0%}).")


def second_order_summary(second: pd.DataFrame) -> pd.DataFrame:
    """The second-order list by suggested category (no customer ids). Index: suggested_category."""
    g = second.groupby("suggested_category")
    out = pd.DataFrame({"customers": g.size().astype("int64"),
                        "median_days_since_first": g.days_since_first.median().round(0)})
    out["share"] = (out.customers / out.customers.sum()).round(4)
    return out.sort_values("customers", ascending=False)


# ---------------------------------------------------------------------------------------------
# The section's tables for people (the result keeps the numbers for the takeaways)
# ---------------------------------------------------------------------------------------------

def affinities_for_readers(table: pd.DataFrame, window_days: int = 90) -> pd.DataFrame:
    """`offers.affinity_table` for reading: counts with separators, shares in %, lift with 2 decimals."""
    return plots.table_for_readers(
        table, {"customers": "count", "support": "count", "share": "share", "base_rate": "share", "lift": "ratio"},
        names={"customers": "customers who bought it first", "support": f"then bought within {window_days} days",
               "share": f"share who then bought within {window_days} days",
               "base_rate": f"base rate (any first purchase, {window_days} days)"})


def repeats_for_readers(summary: pd.DataFrame, horizon_days: int = 90) -> pd.DataFrame:
    """`offers.repeat_summary` for reading."""
    return plots.table_for_readers(
        summary, {"customers_repeating": "count", "median_interval_days": "days", "due_now": "count",
                  "due_share": "share"},
        names={"due_now": f"due within {horizon_days} days or overdue",
               "due_share": f"share due within {horizon_days} days or overdue"})


def examples_for_readers(examples: pd.DataFrame) -> pd.DataFrame:
    """`offers.examples_by_segment` for reading."""
    return plots.table_for_readers(examples, {"customers": "count", "top_category_share": "share"},
                                   sortable="offers-examples")


def second_order_for_readers(summary: pd.DataFrame) -> pd.DataFrame:
    """`second_order_summary` for reading."""
    return plots.table_for_readers(summary, {"customers": "count", "median_days_since_first": "days",
                                             "share": "share"}, names={"share": "share of the list"})
