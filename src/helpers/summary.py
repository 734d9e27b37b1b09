"""One-page monthly summary for managers (notebook 07), the CRM file and the index's trend numbers.

Everything here reads the month's artifacts only - nothing is recomputed from order lines:
kpis.csv and cohorts.csv (02), segments.parquet (03), clv.parquet + clv_model.json (04),
churn.parquet + churn_model.json (05), winback_plan.csv, winback_targets.csv and offers.parquet (06).
An artifact that is absent is reported as missing (with the notebook that makes it) and the numbers
that need it are left out; the rest of the summary still works. "Last month" is the sibling folder
``data/processed/<shop>/<YYYY-MM minus one>/``; changes are shown only when it holds artifacts.

Headline numbers (:func:`month_metrics`)
----------------------------------------
revenue, active_customers, returning_revenue_share, repeat_rate, sleeping_customers: the month's row
of kpis.csv. clv_total: sum of clv.parquet's ``clv`` (predicted margin over the ``clv_months`` that
clv_model.json records, 12 by default). high_risk_customers: customers with ``risk_tier == "high"``;
clv_at_risk: the sum of their ``clv``. winback_profit, winback_customers: sums over the plan's
recommended rows with a contact option; winback_profit_p05/p95: the band of the plan's total
(customer_facts.plan_band: segments independent, each normal with the spread of its own band).

"What to do now" rules (:func:`actions`; thresholds in the config's ``summary`` section)
-------------------------------------------------------------------------------------
Each rule looks at the data and either proposes one action or stays silent; the actions are listed in
this order of priority, at most ``summary.max_actions``:

1. **winback** - the recommended win-back row with the highest expected incremental profit (the
   offer to send, to whom, the profit and its 5-95 % band; a band that includes a loss says "test on
   a share first"). If the plan recommends nothing, the action is not to send discounts this month.
2. **clv_at_risk** - the RFM segment whose high-risk customers carry the most predicted CLV.
3. **kpi_change** - the largest month-on-month move beyond ``summary.kpi_change`` (relative) among a
   fall in revenue, active customers or repeat rate, or a rise in sleeping customers.
4. **cohort_retention** - among the newest ``summary.recent_cohorts`` cohorts (with month 1 observed
   and at least :data:`MIN_COHORT_SIZE` customers), the one whose month-1 retention is furthest below
   the median of the 12 cohorts before them, if by at least ``summary.retention_drop_pp``.
5. **best_customers** - the top ``summary.top_clv_share`` of customers by predicted CLV: their
   share of total CLV and how many of them are at medium or high churn risk.
6. **second_order** - this month's new customers and the typical month-1 retention of recent cohorts.

:func:`run` reads the month (and last month), writes ``customers_scored.parquet`` (+ its CSV copy
without e-mails) and ``trend.csv`` (the index's trend: one row per month up to this one, each from that
month's own run) and returns a :class:`SummaryResult`; notebook 07's tables, figures and sentences are
drawn from it by :mod:`helpers.pages.summary`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers import artifacts, customer_facts, plots
from helpers.customer_facts import EFFECT_WORDS, effect_basis, measured_profit
from helpers.config import Config, SummaryConfig
from helpers.paths import resolve

MIN_COHORT_SIZE = 30
REFERENCE_COHORTS = 12
# Horizons when clv_model.json does not record them (the config's defaults).
DEFAULT_CLV_MONTHS = 12
DEFAULT_PURCHASE_WINDOW_DAYS = 90

# The artifacts the summary reads, in the order the availability table lists them.
INPUTS = ("kpis", "cohorts", "segments", "clv", "clv_model", "churn", "churn_model",
          "winback_plan", "winback_targets", "offers", "customers_clean")
# Read when present, never listed as missing: the campaign plan's control group (issue 19) is shown beside the
# plan, and months run before it existed have none.
OPTIONAL_INPUTS = ("campaign_plan", "data_quality",  # data_quality: which optional columns the export had
                   "forecast_model")  # 04's forecast (months run before it existed have none)
# Columns read for the index's trends (small reads even for a million customers).
TREND_COLUMNS = {"clv": ["customer_id", "clv"], "churn": ["customer_id", "risk_tier"]}
# Of last month, what its headline numbers need; the other tables are only checked for presence (no columns).
PREVIOUS_COLUMNS = {**TREND_COLUMNS, "segments": [], "offers": [], "customers_clean": [],
                    "winback_targets": ["customer_id"]}

# customers_scored.parquet: its columns are declared in helpers.artifacts; here, where each comes from.
# customer_id is every id found in ID_SOURCES.
SCORED_COLUMNS = artifacts.ARTIFACTS["customers_scored"].columns
ID_SOURCES = ("segments", "clv", "churn")
SCORED_FROM = {
    "segments": ["rfm_segment", "r_score", "f_score", "m_score", "recency_days", "frequency", "monetary",
                 "cluster_label"],
    "clv": ["p_alive", "exp_purchases", "p_purchase", "exp_avg_value", "clv"],
    "churn": ["churn_probability", "risk_tier"],
    "winback_targets": ["winback_target", "winback_discount", "winback_expected_profit"],
    "offers": ["offer_1", "offer_2", "offer_3"],
}
# What the rules and the page read besides SCORED_FROM: CLV's age T (this month's new customers) and the win-back
# targets' columns customers_scored renames.
PER_CUSTOMER_COLUMNS = {
    "segments": ["customer_id", *SCORED_FROM["segments"]],
    "clv": ["customer_id", "T", *SCORED_FROM["clv"]],
    "churn": ["customer_id", *SCORED_FROM["churn"]],
    "winback_targets": ["customer_id", "discount", "expected_incremental_profit"],
    "offers": ["customer_id", "rank", "product_id"],
}
# Read only what the page needs: consent, never the e-mail; of the campaign plan, the arms (control group size); of
# the per-customer artifacts, the columns customers_scored takes and the rules read. At a million customers the
# offers' reasons alone were most of what 07 held.
INPUT_COLUMNS = {"customers_clean": ["customer_id", "marketing_opt_in"], "campaign_plan": ["arm"],
                 **PER_CUSTOMER_COLUMNS}

# What each column means, for the CRM's users; {clv_months} and {purchase_window_days} are the
# horizons recorded in clv_model.json.
SCORED_MEANINGS = [
    ("customer_id", "the shop's customer id"),
    ("rfm_segment", "named RFM segment (Champions, At Risk, ...)"),
    ("r_score", "recency score 1-5 (5 = bought most recently)"),
    ("f_score", "frequency score 1-5"),
    ("m_score", "monetary score 1-5"),
    ("recency_days", "days from the last order to as_of"),
    ("frequency", "number of orders"),
    ("monetary", "net revenue to date (currency)"),
    ("cluster_label", "k-means cluster in words"),
    ("p_alive", ("probability the customer has not left for good (purchase model of notebook 04; "
                 "50 % or more = likely active)")),
    ("exp_purchases", "expected purchases in the next {purchase_window_days} days"),
    ("p_purchase", "probability of at least one purchase in the next {purchase_window_days} days"),
    ("exp_avg_value", "expected value of a future order (Gamma-Gamma, currency)"),
    ("clv", "predicted {clv_months}-month CLV (margin, discounted, currency)"),
    ("churn_probability", "probability of no order in the churn horizon"),
    ("risk_tier", "low / medium / high churn risk"),
    ("winback_target", "on this month's win-back contact list (True/False)"),
    ("winback_discount", "discount to offer (0.15 = 15 %), empty if not a target"),
    ("winback_expected_profit", "expected incremental profit of contacting (currency)"),
    ("offer_1", "product id of the best personalised offer"),
    ("offer_2", "product id of the second offer"),
    ("offer_3", "product id of the third offer"),
]

# Headline rows: metric -> (label, kind, artifact it needs). kind: money, count, share (changes in
# points). The labels are the reports' names of these figures (plots.METRIC_NAMES, which the index's tiles
# show too); {clv_months} is the CLV horizon recorded in clv_model.json.
HEADLINE = {key: (plots.METRIC_NAMES[key], kind, need) for key, kind, need in (
    ("revenue", "money", "kpis"),
    ("active_customers", "count", "kpis"),
    ("returning_revenue_share", "share", "kpis"),
    ("repeat_rate", "share", "kpis"),
    ("sleeping_customers", "count", "kpis"),
    ("clv_total", "money", "clv"),
    ("high_risk_customers", "count", "churn"),
    ("clv_at_risk", "money", "churn"),
    ("winback_profit", "money", "winback_plan"),
)}


# ---------------------------------------------------------------------------------------------
# Loading a month


@dataclass
class Month:
    """The artifacts of one shop-month that exist; ``missing`` lists the ones that do not."""

    month: str
    data: dict[str, Any] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    folder: Path | None = None  # where it was read from (contact_lists reads the e-mails there, only then)
    _consent: object = field(default=None, repr=False)  # ids with marketing consent (Arrow), once read
    _metrics: dict | None = field(default=None, repr=False)  # month_metrics, once computed
    _lists: dict = field(default_factory=dict, repr=False)  # contact_lists per top_clv_share, once built

    def get(self, name: str):
        return self.data.get(name)

    def has(self, *names: str) -> bool:
        return all(n in self.data for n in names)

    def consented(self, ids: pd.Series) -> pd.Series:
        """Whether each customer id in `ids` gave marketing consent (customers_clean; read once per month)."""
        if self._consent is None:
            self._consent = customer_facts.consented_ids(self.get("customers_clean"))
        return pd.Series(customer_facts.is_in(ids.astype(str).to_numpy(dtype=object), self._consent), index=ids.index)

    @property
    def clv_months(self) -> int:
        """The horizon of clv.parquet's ``clv`` (months), as recorded in clv_model.json."""
        return int((self.get("clv_model") or {}).get("clv_months", DEFAULT_CLV_MONTHS))

    @property
    def purchase_window_days(self) -> int:
        """The window of clv.parquet's ``exp_purchases`` and ``p_purchase`` (days), from clv_model.json."""
        return int((self.get("clv_model") or {}).get("purchase_window_days", DEFAULT_PURCHASE_WINDOW_DAYS))


def load_month(processed_dir: str | Path, names=None, columns: dict | None = None) -> Month:
    """Read the month's artifacts (``names``, default :data:`INPUTS`) that exist.

    ``columns`` optionally restricts the columns read per table artifact ({"clv": [...]}).
    """
    columns = {**INPUT_COLUMNS, **(columns or {})}
    m = Month(artifacts.month_of(processed_dir), folder=Path(processed_dir))
    for name in names or INPUTS:
        found = artifacts.read_if_exists(processed_dir, name, columns.get(name))
        if found is None:
            m.missing.append(name)
        else:
            m.data[name] = found
    for name in OPTIONAL_INPUTS if names is None else ():
        found = artifacts.read_if_exists(processed_dir, name, columns.get(name))
        if found is not None:
            m.data[name] = found
    return m


def load_previous(processed_dir: str | Path) -> Month | None:
    """Last month's artifacts (the columns its headline numbers need, :data:`PREVIOUS_COLUMNS`), or None when
    that folder holds none of them."""
    folder = artifacts.previous_dir(processed_dir)
    if not folder.is_dir():
        return None
    prev = load_month(folder, columns=PREVIOUS_COLUMNS)
    return prev if prev.data else None


def availability_table(month: Month, previous: Month | None) -> pd.DataFrame:
    """Per artifact: present or missing this month and last month, and the notebook that makes it."""
    rows = []
    for name in INPUTS:
        rows.append({
            "artifact": artifacts.ARTIFACTS[name].file,
            "made by": artifacts.ARTIFACTS[name].made_by,
            month.month: "present" if month.has(name) else "missing",
            artifacts.previous_month(month.month): ("present" if previous and previous.has(name) else "missing"),
        })
    return pd.DataFrame(rows).set_index("artifact")


def notes(month: Month, previous: Month | None) -> list[str]:
    """One sentence per gap: missing artifacts of this month (grouped by notebook) and no last month."""
    out = []
    for notebook, files in artifacts.files_by_notebook(month.missing).items():
        out.append(f"Not available this month: {', '.join(files)} (made by {notebook}); "
                   f"the numbers and actions that need them are left out.")
    if previous is None:
        out.append(f"No artifacts for {artifacts.previous_month(month.month)} in this shop's processed folder: the KPI "
                   f"changes below come from kpis.csv's history, but CLV, churn risk and the win-back plan have no "
                   f"last month to compare with; run that month (retention backfill) to see theirs.")
    return out


# ---------------------------------------------------------------------------------------------
# Headline numbers


def _kpi_row(kpis: pd.DataFrame, month: str) -> pd.Series | None:
    rows = kpis[kpis["month"] == month]
    if rows.empty:
        return None
    return rows.iloc[-1]


def high_risk_clv(month: Month) -> pd.DataFrame | None:
    """High-risk customers (churn) with their ``clv`` (0 when CLV has no row), or None."""
    if not month.has("churn"):
        return None
    churn = month.get("churn")
    high = churn.loc[churn["risk_tier"] == "high", ["customer_id"]]
    if month.has("clv"):
        high = high.merge(month.get("clv")[["customer_id", "clv"]], on="customer_id", how="left")
        high["clv"] = high["clv"].fillna(0.0)
    return high


KPI_KEYS = ("revenue", "active_customers", "returning_revenue_share", "repeat_rate", "sleeping_customers")


def month_metrics(month: Month) -> dict[str, float]:
    """The headline numbers of one month (NaN where the artifact is missing); see the module docstring.
    Computed once per loaded month (the page, the rules and the trend all ask): each call returns a copy."""
    if month._metrics is None:
        month._metrics = _month_metrics(month)
    return dict(month._metrics)


def _month_metrics(month: Month) -> dict[str, float]:
    out = {key: math.nan for key in HEADLINE}
    out.update(winback_profit_p05=math.nan, winback_profit_p95=math.nan, winback_customers=math.nan,
               guest_revenue=math.nan)
    if month.has("kpis"):
        row = _kpi_row(month.get("kpis"), month.month)
        if row is not None:
            for key in KPI_KEYS:
                out[key] = float(row[key])
            out["guest_revenue"] = float(row.get("guest_revenue", 0.0))  # a month run before issue 30 has none
    if month.has("clv"):
        out["clv_total"] = float(month.get("clv")["clv"].sum())
    if month.has("churn"):
        out["high_risk_customers"] = float((month.get("churn")["risk_tier"] == "high").sum())
        if month.has("clv"):  # the same definition as notebook 05's sentence
            out["clv_at_risk"] = customer_facts.clv_at_risk(month.get("churn"), month.get("clv"))[0]
    plan = recommended_plan(month)
    if plan is not None:
        contact = plan[plan["discount"].notna()]  # a segment the plan leaves alone contacts nobody
        out["winback_profit"] = float(contact["incremental_profit"].sum())
        band = customer_facts.plan_band(plan) or (0.0, 0.0)  # the band of the total, not a sum of bands
        out["winback_profit_p05"], out["winback_profit_p95"] = band
        out["winback_customers"] = float(contact["n_customers"].sum())
    return out


def forecast_totals(month: Month) -> pd.DataFrame | None:
    """04's forecast summed over its horizons (forecast_model.json's ``totals``: months, source, purchases,
    revenue, margin, each with ``_low`` and ``_high``), or None when the month has no forecast."""
    card = month.get("forecast_model")
    rows = (card or {}).get("totals") or []
    return pd.DataFrame(rows) if rows else None


def recommended_plan(month: Month) -> pd.DataFrame | None:
    """The plan's recommended rows (possibly none), or None when winback_plan.csv is missing."""
    if not month.has("winback_plan"):
        return None
    plan = month.get("winback_plan")
    return plan[plan["recommended"]]


def previous_metrics(month: Month, previous: Month | None) -> dict[str, float]:
    """Last month's headline numbers. The KPI rows come from this month's kpis.csv, which holds every
    month of the shop's history: so they exist from the first run and agree with notebook 02 (last
    month's own kpis.csv only where this one lacks the month). Model rows (CLV, churn risk, plan) need
    last month's artifacts."""
    out = month_metrics(previous) if previous is not None else dict.fromkeys(month_metrics(month), math.nan)
    if month.has("kpis"):
        row = _kpi_row(month.get("kpis"), artifacts.previous_month(month.month))
        if row is not None:
            out.update({key: float(row[key]) for key in KPI_KEYS})
    return out


def headline_numbers(month: Month, previous: Month | None) -> pd.DataFrame:
    """Numeric headline table: index metric key; columns this_month, last_month, change
    (difference; for shares in fractions, i.e. 0.01 = 1 point) and change_pct (relative, levels only)."""
    cur = month_metrics(month)
    prev = previous_metrics(month, previous)
    rows = []
    for key, (_, kind, _) in HEADLINE.items():
        a, b = cur[key], prev[key]
        change = a - b
        pct = (a / b - 1) if kind != "share" and b not in (0,) and not math.isnan(b) else math.nan
        rows.append({"metric": key, "this_month": a, "last_month": b, "change": change, "change_pct": pct})
    return pd.DataFrame(rows).set_index("metric")



# ---------------------------------------------------------------------------------------------
# What to do now


@dataclass(frozen=True)
class Action:
    rule: str
    text: str
    evidence: str


def plan_parts(month: Month) -> pd.DataFrame | None:
    """The plan's contacted rows (a discount chosen, customers to contact), most profitable first, with
    ``basis`` (:func:`effect_basis`); None without winback_plan.csv."""
    plan = recommended_plan(month)
    if plan is None:
        return None
    parts = plan[plan["discount"].notna() & (plan["n_customers"] > 0)].copy()
    parts["basis"] = [effect_basis(x) for x in parts["uplift_source"]]
    return parts.sort_values(["incremental_profit", "segment"], ascending=[False, True])


def consent_state(month: Month) -> str:
    """'some' (at least one customer gave marketing consent), 'none' (the data say nobody did), 'unknown'
    (the shop's data carry no consent at all) or 'missing' (customers_clean was not made)."""
    customers = month.get("customers_clean")
    if customers is None:
        return "missing"
    if customer_facts.consented(customers).any():
        return "some"
    exported = ((month.get("data_quality") or {}).get("files") or {}).get("customers")
    return "unknown" if exported is None or "marketing_opt_in" not in exported.get("optional_columns", []) else "none"


NO_CONSENT = {
    "unknown": "the shop's data carry no marketing consent for anyone (the customers export has no opt-in column, "
               "or it is empty), and only customers who opted in may be e-mailed",
    "none": "no customer in the shop's data gave marketing consent, and only customers who opted in may be e-mailed",
}


def _offer_words(row) -> str:
    return f"{row['discount']:.0%} off" if row["discount"] > 0 else "a reminder without a discount"


def _rule_winback(month, previous, cfg, currency):
    parts = plan_parts(month)
    if parts is None:
        return None
    m = month_metrics(month)
    paying = parts[parts["incremental_profit"] > 0]
    if paying.empty:
        state, candidates = consent_state(month), int(month.get("winback_plan")["n_customers"].sum())
        if not candidates and state in NO_CONSENT:
            return Action("winback", f"Nobody can be sent a win-back offer this month: {NO_CONSENT[state]}. Collect "
                                     "consent at checkout or in the customer account; the win-back report (06) shows "
                                     "what the offers would bring if you had it.",
                          "no customer with marketing consent")
        if not candidates:
            return Action("winback", "Send no win-back offer this month: every customer the plan would choose was "
                                     "contacted within the last week or has no marketing consent.",
                          "no contactable win-back candidate")
        return Action("winback", "Do not send win-back discounts this month: no tested offer is expected to pay for "
                                 "itself in any segment.",
                      "no win-back offer with positive profit")
    n, total = int(parts["n_customers"].sum()), m["winback_profit"]
    measured = measured_profit(parts)
    text = (f"Send the win-back plan to {n:,} customers in {len(parts)} segment(s), each with the offer that pays best "
            f"in their segment (winback_targets.csv: e-mail, offer and suggested categories per customer; all gave "
            f"marketing consent, none was contacted in the last week): expected extra profit "
            f"{plots.money(total, currency)}")
    if not math.isnan(m["winback_profit_p05"]):
        text += (f" (5-95 %: {plots.money(m['winback_profit_p05'], currency)} to "
                 f"{plots.money(m['winback_profit_p95'], currency)})")
    text += (f", of which {plots.money(measured, currency)} rests on effects measured in past campaigns and "
             f"{plots.money(total - measured, currency)} on interpolated or assumed ones.")
    top = paying.head(3)
    text += " Largest parts: " + "; ".join(
        f"'{r['segment']}', {int(r['n_customers']):,} customers, {_offer_words(r)}, "
        f"{plots.money(r['incremental_profit'], currency)} ({r['basis']})" for _, r in top.iterrows()) + "."
    if not math.isnan(m["winback_profit_p05"]) and m["winback_profit_p05"] < 0:
        text += " The band includes a loss, so send it to a share of them first."
    return Action("winback", text, "the recommended win-back plan, its largest parts by profit")


def clv_at_risk_by_segment(month: Month) -> pd.DataFrame | None:
    """Per RFM segment: customers, high-risk customers, CLV of the high-risk ones and its share of all
    CLV at risk; largest first. None if segments, CLV or churn is missing."""
    if not month.has("segments", "clv", "churn"):
        return None
    seg = month.get("segments")[["customer_id", "rfm_segment"]]
    high = high_risk_clv(month).merge(seg, on="customer_id", how="left")
    high["rfm_segment"] = high["rfm_segment"].fillna("(no segment)")
    out = (high.groupby("rfm_segment")
           .agg(high_risk_customers=("customer_id", "size"), clv_at_risk=("clv", "sum")))
    out = out.join(seg.groupby("rfm_segment").size().rename("customers"), how="left")
    out["customers"] = out["customers"].fillna(0).astype(int)
    total = out["clv_at_risk"].sum()
    out["share_of_clv_at_risk"] = out["clv_at_risk"] / total if total > 0 else 0.0
    out = out[["customers", "high_risk_customers", "clv_at_risk", "share_of_clv_at_risk"]]
    out.index.name = "segment"
    return out.sort_values(["clv_at_risk", "high_risk_customers"], ascending=False)


def _rule_clv_at_risk(month, previous, cfg, currency):
    table = clv_at_risk_by_segment(month)
    if table is None or table.empty or table["clv_at_risk"].iloc[0] <= 0:
        return None
    name, top = table.index[0], table.iloc[0]
    text = (f"'{name}' holds the most CLV at risk: its {int(top['high_risk_customers']):,} high-risk customers carry "
            f"{plots.money(top['clv_at_risk'], currency)} of predicted {month.clv_months}-month CLV "
            f"({top['share_of_clv_at_risk']:.0%} of all CLV at risk).")
    plan = recommended_plan(month)
    row = None if plan is None else plan[(plan["segment"] == name) & plan["discount"].notna()]
    if row is not None and len(row) and int(row["n_customers"].iloc[0]) > 0:
        r = row.iloc[0]
        total = int(month_metrics(month)["winback_customers"])
        text += (f" The win-back plan ({total:,} customers) includes {int(r['n_customers']):,} customers "
                 f"of '{name}' with {_offer_words(r)}: expected extra profit {plots.money(r['incremental_profit'], currency)} "
                 f"({EFFECT_WORDS[effect_basis(r['uplift_source'])]}); the others lack consent, were contacted lately "
                 "or would not pay back an offer - keep them in service e-mails.")
    else:
        text += (" No offer pays back for them this month (or none can be contacted): keep them in service e-mails "
                 "rather than discounts.")
    return Action("clv_at_risk", text, "segment with most CLV among high-risk")


_KPI_MOVES = {  # metric -> (direction that is bad, label, kind)
    "revenue": (-1, "Revenue", "money"), "active_customers": (-1, "Active customers", "count"),
    "repeat_rate": (-1, "The repeat rate", "share"),
    "sleeping_share": (+1, "The share of past buyers who are sleeping", "share"),
}
# Measures of the whole history to date (they drift while a shop is young): compared with a year ago only when
# the year-ago month itself had a year of history before it.
_TO_DATE = ("repeat_rate", "sleeping_share")
_KPI_ADVICE = {
    "revenue": "check the KPI report's channel and category breakdown to see where it was lost.",
    "active_customers": "check acquisition and the reminder e-mails to recent buyers.",
    "repeat_rate": "push second orders: a follow-up offer 2-4 weeks after a first purchase.",
    "sleeping_share": "put the newly sleeping customers with high CLV on the win-back list.",
}


def kpi_rates(kpis: pd.DataFrame) -> pd.DataFrame:
    """The measures the KPI alarm compares, per month of kpis.csv (index month): revenue, active_customers,
    repeat_rate, and sleeping_share - sleeping customers over everyone who had bought by the month's end (the
    running sum of new customers), so a growing customer base does not read as customers falling asleep."""
    k = kpis.sort_values("month").set_index("month")
    to_date = k["new_customers"].cumsum()
    out = k[["revenue", "active_customers", "repeat_rate"]].astype(float)
    out["sleeping_share"] = (k["sleeping_customers"] / to_date.where(to_date > 0)).astype(float)
    return out


def _rule_kpi_change(month, previous, cfg, currency):
    """The measure that moved most the wrong way, against last month or the same month last year (a rate
    where a count would grow with the customer base; see :func:`kpi_rates`)."""
    if not month.has("kpis"):
        return None
    kpis = month.get("kpis")
    if previous is not None and previous.has("kpis"):  # months this kpis.csv lacks, from last month's own
        older = previous.get("kpis")
        kpis = pd.concat([older[~older["month"].isin(kpis["month"])], kpis], ignore_index=True)
    rates = kpi_rates(kpis)
    if month.month not in rates.index:
        return None
    first = pd.Period(rates.index[0], "M")
    year_ago = pd.Period(month.month, "M") - 12
    best, best_score = None, 0.0
    for label in (artifacts.previous_month(month.month), str(year_ago)):
        if label not in rates.index:
            continue
        for key, (bad, _, _) in _KPI_MOVES.items():
            if key in _TO_DATE and label == str(year_ago) and (year_ago - first).n < 12:
                continue
            a, b = rates.at[month.month, key], rates.at[label, key]
            if pd.isna(a) or pd.isna(b) or b == 0:
                continue
            rel = a / b - 1
            if bad * rel >= cfg.kpi_change and bad * rel > best_score:
                best, best_score = (key, rel, a, b, label), bad * rel
    if best is None:
        return None
    key, rel, a, b, label = best
    _, name, kind = _KPI_MOVES[key]
    verb = "rose" if rel > 0 else "fell"
    change = f"{abs(rel):.1%}" if kind != "share" else f"{abs(a - b) * 100:.1f} points"
    text = (f"{name} {verb} {change} vs {label} ({plots.format_value(b, kind, currency)} to "
            f"{plots.format_value(a, kind, currency)}")
    if key == "sleeping_share":
        k = kpis.set_index("month")
        text += f"; {int(k.at[label, 'sleeping_customers']):,} to {int(k.at[month.month, 'sleeping_customers']):,} customers"
    text += f"), the measure that moved most the wrong way: {_KPI_ADVICE[key]}"
    return Action("kpi_change", text, f"largest move of {cfg.kpi_change:.0%}+ the wrong way (vs last month or last year)")


def cohort_retention_check(cohorts: pd.DataFrame, recent: int = 6) -> pd.DataFrame:
    """Month-1 retention of the newest ``recent`` cohorts (size >= MIN_COHORT_SIZE, month 1 observed)
    against the median of the REFERENCE_COHORTS cohorts before them. Index cohort; columns
    cohort_size, retention_m1, reference, gap (reference - retention_m1, in fractions)."""
    m1 = cohorts[(cohorts["months_since_first"] == 1) & (cohorts["cohort_size"] >= MIN_COHORT_SIZE)]
    m1 = m1.sort_values("cohort")
    latest, before = m1.tail(recent), m1.iloc[:-recent].tail(REFERENCE_COHORTS) if len(m1) > recent else m1.iloc[:0]
    if latest.empty or before.empty:
        return pd.DataFrame(columns=["cohort_size", "retention_m1", "reference", "gap"]).rename_axis("cohort")
    ref = float(before["retention"].median())
    out = latest.set_index("cohort")[["cohort_size", "retention"]].rename(columns={"retention": "retention_m1"})
    out["reference"] = ref
    out["gap"] = ref - out["retention_m1"]
    return out


def _rule_cohort_retention(month, previous, cfg, currency):
    if not month.has("cohorts"):
        return None
    check = cohort_retention_check(month.get("cohorts"), cfg.recent_cohorts)
    if check.empty or check["gap"].max() < cfg.retention_drop_pp:
        return None
    worst = check.sort_values(["gap"], ascending=False).iloc[0]
    name = check.sort_values(["gap"], ascending=False).index[0]
    return Action("cohort_retention",
                  f"Find out why customers acquired in {name} came back less: {worst['retention_m1']:.1%} bought "
                  f"again in their second month vs {worst['reference']:.1%} typically (check that month's "
                  f"channels, campaigns and first-order discounts).",
                  f"cohort month-1 retention {cfg.retention_drop_pp * 100:.0f}+ pp below typical")


BEST_AT_RISK, NEW_CUSTOMERS = "best customers at risk", "new customers"  # contact_lists.csv's lists


def top_customers(month: Month, share: float) -> pd.DataFrame:
    """The top ``share`` of customers by predicted CLV (at least one; ids break ties): customer_id, clv."""
    clv = month.get("clv")[["customer_id", "clv"]]
    n = max(1, round(len(clv) * share))
    if clv["clv"].notna().sum() > n:  # only the rows at or above the n-th value need sorting
        clv = clv[clv["clv"] >= clv["clv"].nlargest(n).iloc[-1]]
    return clv.sort_values(["clv", "customer_id"], ascending=[False, True]).head(n)


def new_customer_ids(month: Month) -> pd.Series | None:
    """The customers whose first purchase falls in the month (clv.parquet's age T), or None without clv.parquet."""
    if not month.has("clv"):
        return None
    card = month.get("clv_model") or {}
    as_of = pd.Timestamp(card.get("as_of") or pd.Period(month.month, "M").end_time.normalize())
    days = (as_of.normalize() - pd.Period(month.month, "M").start_time).days  # age of a first order on day 1
    unit_days = 7 if card.get("time_unit") == "week" else 1
    clv = month.get("clv")
    return clv.loc[clv["T"] * unit_days <= days, "customer_id"].astype(str)


def contact_lists(month: Month, cfg: SummaryConfig) -> pd.DataFrame:
    """contact_lists.csv: the customers the best-customers and new-customers actions are about who gave marketing
    consent and are not on this month's win-back list (one message a week at most), with their e-mail, segment,
    CLV and churn tier. Empty (declared columns) without customers_clean or CLV."""
    key = cfg.top_clv_share
    if key in month._lists:
        return month._lists[key]
    parts = []
    if month.has("clv", "customers_clean"):
        if month.has("churn"):
            top = top_customers(month, cfg.top_clv_share).merge(
                month.get("churn")[["customer_id", "risk_tier"]], on="customer_id", how="left")
            parts.append(top[top["risk_tier"].isin(["medium", "high"])].assign(list=BEST_AT_RISK))
        new = new_customer_ids(month)
        parts.append(pd.DataFrame({"customer_id": new}).assign(list=NEW_CUSTOMERS))
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["customer_id", "list"])
    out["customer_id"] = out["customer_id"].astype(str)
    if len(out):
        out = out[month.consented(out["customer_id"]).to_numpy()]
        targets = month.get("winback_targets")
        if targets is not None:
            out = out[~customer_facts.is_in(out["customer_id"], targets["customer_id"].astype(str))]
    emails = (artifacts.read(month.folder, "customers_clean", ["customer_id", "email"])
              if len(out) and month.folder is not None else None)
    facts = [("customers_clean", emails, ["email"]), ("segments", month.get("segments"), ["rfm_segment"]),
             ("clv", month.get("clv"), ["clv"]), ("churn", month.get("churn"), ["risk_tier"])]
    out = out.drop(columns=[c for c in ("clv", "risk_tier") if c in out.columns])
    for _, frame, cols in facts:
        if frame is not None and len(out):
            f = frame[["customer_id", *cols]].assign(customer_id=frame["customer_id"].astype(str))
            f = f[customer_facts.is_in(f["customer_id"], out["customer_id"])]  # the list's customers only
            out = out.merge(f.drop_duplicates("customer_id"), on="customer_id", how="left")
    out = out.reindex(columns=artifacts.ARTIFACTS["contact_lists"].columns)
    out = out.sort_values(["list", "clv", "customer_id"], ascending=[True, False, True], na_position="last")
    for col, decl in artifacts.ARTIFACTS["contact_lists"].schema.columns.items():
        out[col] = out[col].astype(str(decl.dtype))
    month._lists[key] = out.reset_index(drop=True)
    return month._lists[key]


def _on_list(month: Month, cfg: SummaryConfig, name: str) -> int:
    lists = contact_lists(month, cfg)
    return int((lists["list"] == name).sum())


def _rule_best_customers(month, previous, cfg, currency):
    if not month.has("clv"):
        return None
    clv = month.get("clv")
    total = clv["clv"].sum()
    if total <= 0 or len(clv) == 0:
        return None
    top = top_customers(month, cfg.top_clv_share)
    n, share = len(top), top["clv"].sum() / total
    text = (f"Look after your best {n:,} customers (top {cfg.top_clv_share:.0%} by predicted CLV, "
            f"{share:.0%} of all predicted CLV)")
    if month.has("churn"):
        tiers = top.merge(month.get("churn")[["customer_id", "risk_tier"]], on="customer_id", how="left")
        at_risk = int(tiers["risk_tier"].isin(["medium", "high"]).sum())
        text += f": {at_risk:,} of them are at medium or high churn risk"
        if month.has("customers_clean"):
            reachable = _on_list(month, cfg, BEST_AT_RISK)
            text += (f"; {reachable:,} of those gave marketing consent and are not on the win-back list - send them "
                     f"a thank-you or early access, no discount needed (contact_lists.csv, list '{BEST_AT_RISK}': "
                     "e-mail, segment, CLV).")
        else:
            text += " - a thank-you or early access, no discount needed."
    else:
        text += ": reward them with service and early access rather than discounts."
    return Action("best_customers", text, f"top {cfg.top_clv_share:.0%} of customers by CLV")


def _rule_second_order(month, previous, cfg, currency):
    if not month.has("kpis", "cohorts"):
        return None
    row = _kpi_row(month.get("kpis"), month.month)
    typical = customer_facts.cohort_retention(month.get("cohorts"), 1)  # notebook 02's month-1 retention
    if row is None or typical is None or row["new_customers"] <= 0:
        return None
    who = ""
    if month.has("clv", "customers_clean"):
        reachable = _on_list(month, cfg, NEW_CUSTOMERS)
        who = (f" ({reachable:,} of them gave marketing consent and are not on the win-back list: contact_lists.csv, "
               f"list '{NEW_CUSTOMERS}')")
    return Action("second_order",
                  f"Welcome the {int(row['new_customers']):,} new customers of {month.month}{who} with a "
                  f"second-order offer: typically only {typical:.0%} of a cohort buys again in its second month "
                  "(month-1 retention, notebook 02).",
                  "new customers and month-1 retention")


RULES = [_rule_winback, _rule_clv_at_risk, _rule_kpi_change, _rule_cohort_retention, _rule_best_customers,
         _rule_second_order]


def actions(month: Month, previous: Month | None, cfg: SummaryConfig | None = None,
            currency: str = "EUR") -> list[Action]:
    """Up to ``cfg.max_actions`` actions from the rules in the module docstring, in priority order."""
    cfg = cfg or SummaryConfig()
    found = [rule(month, previous, cfg, currency) for rule in RULES]
    return [a for a in found if a is not None][: cfg.max_actions]



# ---------------------------------------------------------------------------------------------
# What the page shows besides the headline: the plan, its control group, the KPIs of the last months


def recent_kpis(month: Month, months: int = 13) -> pd.DataFrame:
    """The last ``months`` rows of kpis.csv up to this month (index month)."""
    if not month.has("kpis"):
        return pd.DataFrame()
    k = month.get("kpis")
    k = k[k["month"] <= month.month].tail(months)
    return k.set_index("month")[["revenue", "active_customers", "new_customers", "repeat_rate",
                                 "sleeping_customers"]]


def control_group_size(month: Month) -> int:
    """Customers held back as the control group in campaign_plan.csv (0 without one)."""
    plan = month.get("campaign_plan")
    return 0 if plan is None else int((plan["arm"].astype(str).str.lower() == "control").sum())


# ---------------------------------------------------------------------------------------------
# customers_scored.parquet


def _scored_frame(month: Month, name: str) -> pd.DataFrame | None:
    """customer_id and the columns customers_scored takes from artifact `name` (one row per customer),
    or None when the artifact is missing."""
    df = month.get(name)
    return None if df is None else df[["customer_id", *SCORED_FROM[name]]].drop_duplicates("customer_id")


def _as_declared(out: pd.DataFrame) -> pd.DataFrame:
    """Cast every column to its declared type; the ones declared without a type (scores, counts) are
    whole numbers that may be missing (Int64)."""
    for col, decl in artifacts.ARTIFACTS["customers_scored"].schema.columns.items():
        if decl.dtype is None:
            out[col] = pd.to_numeric(out[col], errors="coerce").astype("Int64")
        elif str(decl.dtype) == "float64":
            out[col] = pd.to_numeric(out[col], errors="coerce").astype("float64")
        else:
            out[col] = out[col].astype(str(decl.dtype))
    return out


def build_customers_scored(month: Month) -> pd.DataFrame:
    """One row per customer (every id in segments, CLV or churn) with the columns of SCORED_COLUMNS;
    a missing artifact leaves its columns empty (``winback_target`` False: nobody is on a list that
    was not made). Never carries e-mail addresses."""
    parts = [f for f in (_scored_frame(month, name) for name in ID_SOURCES) if f is not None]
    ids = pd.concat([f["customer_id"] for f in parts], ignore_index=True) if parts else pd.Series([], dtype=str)
    out = pd.DataFrame({"customer_id": ids.drop_duplicates().sort_values().to_numpy()})
    for f in parts:
        out = out.merge(f, on="customer_id", how="left")
    targets = month.get("winback_targets")
    if targets is not None:
        t = targets.drop_duplicates("customer_id")[["customer_id", "discount", "expected_incremental_profit"]]
        t = t.rename(columns={"discount": "winback_discount", "expected_incremental_profit": "winback_expected_profit"})
        out = out.merge(t, on="customer_id", how="left")
    out["winback_target"] = (customer_facts.is_in(out["customer_id"], targets["customer_id"]) if targets is not None
                             else False)
    offers = month.get("offers")
    if offers is not None and not offers.empty:
        # each customer's products at ranks 1 to 3 put in place by position (hashed in Arrow; a pivot took seconds)
        top = offers[["customer_id", "rank", "product_id"]]
        top = top[top["rank"].between(1, 3)].iloc[::-1]  # reversed: a customer's first row at a rank is put last
        at, rank, product = (customer_facts.positions(top["customer_id"], out["customer_id"]),
                             top["rank"].to_numpy(), top["product_id"].to_numpy(dtype=object))
        for r in (1, 2, 3):
            column = np.full(len(out), None, dtype=object)
            here = (rank == r) & (at >= 0)  # a customer of the offers with no score is no row here
            column[at[here]] = product[here]
            out[f"offer_{r}"] = column
    out = out.reindex(columns=SCORED_COLUMNS)
    return _as_declared(out).reset_index(drop=True)


def save_customers_scored(processed_dir: str | Path, scored: pd.DataFrame) -> tuple[Path, Path]:
    """Write customers_scored.parquet and customers_scored.csv (formula characters escaped) atomically."""
    if any("mail" in c.lower() for c in scored.columns):
        raise ValueError("customers_scored must not carry e-mail addresses")
    parquet = artifacts.write(processed_dir, "customers_scored", scored)
    return parquet, artifacts.write_csv_file(parquet.with_suffix(".csv"), scored)


# ---------------------------------------------------------------------------------------------
# trend.csv: the index's trend, each month's figures from its own run


TREND_METRICS = {  # metric -> (chart title, kind)
    "revenue": ("Revenue", "money"),
    "active_customers": ("Active customers", "count"),
    "repeat_rate": ("Repeat rate", "share"),
    "clv_at_risk": ("CLV at risk", "money"),
}


def trend_row(month: Month, metrics: dict[str, float] | None = None) -> dict:
    """trend.csv's row of a loaded month: its TREND_METRICS (``metrics``: its :func:`month_metrics`, if known)."""
    metrics = month_metrics(month) if metrics is None else metrics
    return {"month": month.month, **{k: metrics[k] for k in TREND_METRICS}}


def month_trend_row(folder: str | Path) -> dict | None:
    """An earlier month's trend row: the one its own run wrote (its trend.csv), or, for a month run before
    trend.csv existed, computed from its kpis, clv and churn; None when it has none of these."""
    own = artifacts.read_if_exists(folder, "trend")
    if own is not None:
        rows = own[own["month"] == artifacts.month_of(folder)]
        if len(rows):
            return {"month": artifacts.month_of(folder), **{k: float(rows[k].iloc[-1]) for k in TREND_METRICS}}
    m = load_month(folder, names=["kpis", "clv", "churn"], columns=TREND_COLUMNS)
    return trend_row(m) if m.data else None


def trend_table(shop_processed_dir: str | Path, up_to: str | None = None) -> pd.DataFrame:
    """Per month folder in data/processed/<shop>/ (oldest first, up to month ``up_to`` if given): the
    TREND_METRICS of that month's own run (:func:`month_trend_row`; NaN where missing). Rerunning a month
    replaces exactly its row."""
    rows = [month_trend_row(folder) for folder in artifacts.month_dirs(shop_processed_dir)
            if up_to is None or folder.name <= up_to]
    return pd.DataFrame([r for r in rows if r], columns=["month", *TREND_METRICS]).set_index("month")


def trend_rows(processed_dir: str | Path, month: Month, metrics: dict[str, float]) -> tuple[pd.DataFrame, list[str]]:
    """trend.csv's rows: every earlier month of the shop (:func:`month_trend_row`), then this month (from
    ``metrics``, its :func:`month_metrics`); and one sentence per earlier month left out because its files
    could not be read."""
    rows, said = [], []
    for folder in artifacts.month_dirs(resolve(str(processed_dir).rstrip("/\\")).parent):
        if folder.name >= month.month:
            continue
        try:
            row = month_trend_row(folder)
        except Exception as err:  # an older month's broken file must not take this month's report down
            said.append(f"{folder.name} is left out of trend.csv (the report index's trend): its artifacts could "
                        f"not be read ({type(err).__name__}: {err}).")
            continue
        if row is not None:
            rows.append(row)
    rows.append(trend_row(month, metrics))
    return pd.DataFrame(rows, columns=["month", *TREND_METRICS]), said


# ---------------------------------------------------------------------------------------------
# The stage: run() and its result


@dataclass
class SummaryResult:
    """Notebook 07's month, as its page (helpers.pages.summary) shows it: this month's and last month's
    artifacts, the numbers and actions computed from them, the CRM file and the trend written, and the
    config values the report needs (the rules' thresholds, the currency)."""

    month: Month
    previous: Month | None
    last_month: str  # 'YYYY-MM' before month.month, whether or not it was run
    availability: pd.DataFrame  # per artifact: present or missing this month and last month
    notes: list[str]  # one sentence per gap (missing artifacts, no last month, a month left out of the trend)
    made_by: dict[str, str]  # artifact -> the notebook that makes it (INPUTS)
    metrics: dict[str, float]  # this month's month_metrics
    previous_run_metrics: dict[str, float] | None  # last month's month_metrics from its own run, if any
    numbers: pd.DataFrame  # headline_numbers
    plan_loss: float | None  # chance that the whole win-back plan loses money (None without a plan)
    actions: list[Action]
    clv_at_risk: pd.DataFrame | None  # clv_at_risk_by_segment
    plan: pd.DataFrame | None  # the plan's recommended rows (recommended_plan)
    control_group: int  # customers held back in campaign_plan.csv
    recent_kpis: pd.DataFrame
    scored: pd.DataFrame
    files: tuple[Path, Path]
    trend: pd.DataFrame
    list_sizes: dict[str, int]  # contact_lists.csv: customers per list (the file holds the e-mails; never shown)
    thresholds: SummaryConfig = field(default_factory=SummaryConfig)
    currency: str = "EUR"


def run(processed_dir: str | Path, as_of: str, cfg: Config, con=None) -> SummaryResult:
    """Read this month's and last month's artifacts, write customers_scored.parquet (+ its CSV copy) and
    trend.csv, and return what the page shows (actions use ``cfg.summary``, money ``cfg.shop.currency``).

    ``as_of`` and ``con`` keep the stage's common signature: the summary reads only artifacts (the
    month is ``processed_dir``'s folder name), so it needs neither the cut-off nor the engine.
    """
    month, previous = load_month(processed_dir), load_previous(processed_dir)
    scored = build_customers_scored(month)
    files = save_customers_scored(processed_dir, scored)
    metrics = month_metrics(month)
    lists = contact_lists(month, cfg.summary)
    artifacts.write(processed_dir, "contact_lists", lists)
    trend, left_out = trend_rows(processed_dir, month, metrics)
    artifacts.write(processed_dir, "trend", trend)
    plan = month.get("winback_plan")
    return SummaryResult(
        month, previous, artifacts.previous_month(month.month), availability_table(month, previous),
        notes(month, previous) + left_out, {name: artifacts.spec(name).made_by for name in INPUTS}, metrics,
        month_metrics(previous) if previous is not None else None, headline_numbers(month, previous),
        customer_facts.plan_loss_probability(plan) if plan is not None else None,
        actions(month, previous, cfg.summary, cfg.shop.currency), clv_at_risk_by_segment(month),
        recommended_plan(month), control_group_size(month), recent_kpis(month), scored, files, trend,
        lists["list"].value_counts().to_dict(), cfg.summary, cfg.shop.currency)
