"""What the reports call things and how they write a number, without any plotting library.

The pages use these through :mod:`helpers.plots`, which re-exports them; the publisher (the site's index, and so
the runner) imports this module alone, so `retention run` loads neither matplotlib nor seaborn: 86 MB less in
the process that is alive beside every notebook's kernel.
"""
from __future__ import annotations

import pandas as pd

SORTABLE_MIME = "application/vnd.retention.sortable-table+html"  # read by publish.notebook_to_html


def money(value: float, currency: str = "EUR") -> str:
    """12345.6 -> 'EUR 12,346'."""
    return f"{currency} {value:,.0f}"


MISSING = "\u2013"  # what a table shows for a value that does not exist (no month a year back, no ROI)


def format_value(value, kind: str, currency: str | None = None) -> str:
    """One number as the reports show it, by kind: money (whole units; 'EUR 12,346' when a currency is
    given, else '12,346'), money2 (with cents), share (0.0407 -> '4.1%'), count ('4,269') or ratio
    ('1.26'). A missing value (None, NaN) is shown as MISSING."""
    if value is None or pd.isna(value):
        return MISSING
    if kind == "money" and currency:
        return money(value, currency)
    return {"money": f"{value:,.0f}", "money2": f"{value:,.2f}", "share": f"{100 * value:.1f}%",
            "count": f"{value:,.0f}", "ratio": f"{value:,.2f}"}[kind]


# ---------------------------------------------------------------------------------------------
# Words a reader sees on several pages, defined here once (04, 05, 07 use these)

# The month's key figures by name, as 07's headline table and the index's tiles (helpers.publish) both
# show them: one figure, one name on every page. {clv_months} is the CLV horizon clv_model.json records.
METRIC_NAMES = {
    "revenue": "Revenue",
    "orders": "Orders",
    "active_customers": "Active customers",
    "new_customers": "New customers",
    "returning_revenue_share": "Revenue from returning customers",
    "repeat_rate": "Repeat rate (customers with 2+ orders)",
    "sleeping_customers": "Sleeping customers",
    "clv_total": "Predicted {clv_months}-month CLV, all customers",
    "high_risk_customers": "Customers at high churn risk",
    "clv_at_risk": "CLV of high-risk customers",
    "winback_profit": "Win-back plan: expected profit",
}
