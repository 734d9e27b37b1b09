"""The stages' pages: takeaways, reader tables and figures drawn from each stage's typed result.

One module per stage (``helpers/pages/<stage>.py``), as lifetimes keeps every figure in plotting.py:
the computation lives in ``helpers/<stage>.py`` (``run(processed_dir, as_of, cfg, con=None)`` writes the
stage's declared artifacts and returns its result), and a page function takes that result and returns a
table, a sentence or the axes of a figure. Pages touch no engine and read no file: what a page needs,
the result carries.

The package itself holds what every page shares: :func:`rests_on`, the box a page that shows money puts
once near its answer (the margin, the contact cost, the discount rate and the horizons its figures are
computed with, each with this run's value and its key in config/default.yml, and whether effects were
measured or assumed), and :func:`glossary`, the reference table at the end of a page. These two are the only
places of a report where config keys, rule names and library names appear; every other sentence speaks
the reader's words.
"""
from __future__ import annotations

import html
from dataclasses import dataclass

import pandas as pd

from helpers.config import Config

BOX_CLASS = "rests-on"  # the HTML class of the box (the page tests exempt it from the reader-words check)

# config key -> (reader name, what it does to the figures, how its value reads)
SETTINGS = {
    "clv.gross_margin": ("Gross margin", "every profit and CLV figure is margin (revenue times this), not revenue",
                         "share"),
    "winback.contact_cost": ("Cost of one contact", "charged for every customer a campaign contacts", "money2"),
    "clv.monthly_discount_rate": ("Discount rate", "a euro next month is worth this much less today; CLV is "
                                  "discounted by it", "share_month"),
    "clv.clv_months": ("CLV horizon", "CLV is the margin a customer is expected to bring over this time", "months"),
    "clv.purchase_window_days": ("Purchase window", "the expected purchases and the chance to buy are over this time",
                                 "days"),
    "forecast.band": ("Forecast band", "each forecast's band holds this share of its draws (parameters, who buys, "
                      "new customers)", "share"),
    "churn.horizon_days": ("Churn horizon", "a customer counts as lost who does not order within this time", "days"),
    "winback.window_days": ("Response window", "a win-back offer counts as answered by an order within this time",
                            "days"),
    "winback.assumed_uplift": ("Effect assumed where no campaign measured it",
                               "extra buyers per offer, in percentage points of the segment; used only where no past "
                               "campaign with a control group measured that offer", "uplift_map"),
    "offers.min_days_between_contacts": ("Contact gap", "nobody is contacted twice within this time", "days"),
}


def _setting(cfg: Config, key: str):
    section, name = key.split(".")
    return getattr(getattr(cfg, section), name)


def _value_text(value, kind: str, currency: str) -> str:
    if kind == "share":
        return f"{value:.0%}"
    if kind == "share_month":
        return f"{value:.1%} a month"
    if kind == "money2":
        return f"{currency} {value:,.2f}"
    if kind == "months":
        return f"{value} months"
    if kind == "days":
        return f"{value} days"
    if kind == "uplift_map":
        return ", ".join(("contact without discount" if d == 0 else f"{d:.0%} off") + f" +{u * 100:.1f} pp"
                         for d, u in sorted(value.items()))
    return str(value)


@dataclass(frozen=True)
class RestsOn:
    """The box: a heading line and one row per setting (reader name, value, effect, config key)."""

    rows: tuple[tuple[str, str, str, str], ...]
    note: str = ""

    def text(self) -> str:
        lines = ["What these numbers rest on:"]
        lines += [f"- {name}: {value} ({effect}; config {key})" for name, value, effect, key in self.rows]
        return "\n".join(lines + ([self.note] if self.note else []))

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        items = "".join(f"<li><b>{html.escape(name)}: {html.escape(value)}</b> - {html.escape(effect)} "
                        f"<code>{html.escape(key)}</code></li>" for name, value, effect, key in self.rows)
        note = f"<p>{html.escape(self.note)}</p>" if self.note else ""
        return (f'<div class="{BOX_CLASS}" style="border:1px solid #c9d3e0;background:#f5f8fc;padding:8px 14px;'
                f'margin:8px 0;border-radius:4px;font-size:90%"><p style="margin:4px 0"><b>What these numbers rest '
                f'on</b> (set in the config file; the key for the analyst in grey)</p>'
                f'<ul style="margin:4px 0">{items}</ul>{note}</div>')


def rests_on(cfg: Config, keys: list[str], note: str = "") -> RestsOn:
    """The box for the settings ``keys`` (see :data:`SETTINGS`), with this run's values; ``note`` one more
    sentence (e.g. which effects were measured and which assumed)."""
    currency = cfg.shop.currency
    rows = tuple((SETTINGS[k][0], _value_text(_setting(cfg, k), SETTINGS[k][2], currency), SETTINGS[k][1], k)
                 for k in keys)
    return RestsOn(rows, note)


def effects_note(bases: list[str]) -> str:
    """The box's sentence on a win-back plan: how many of its segment offers were measured, interpolated or
    assumed (``bases``: each offer's ``effect_basis``); '' without offers."""
    if not bases:
        return ""
    n = {b: sum(1 for x in bases if x == b) for b in ("measured", "interpolated", "assumed")}
    return (f"Of the plan's {len(bases)} segment offers, {n['measured']} were measured in a past campaign with a "
            f"control group, {n['interpolated']} interpolated between measured offers and {n['assumed']} assumed.")


def glossary(terms: dict[str, str]) -> pd.DataFrame:
    """The page's reference table: one row per term (a column, a model, a rule or a setting) and what it means."""
    return pd.DataFrame({"meaning": list(terms.values())}, index=pd.Index(list(terms), name="term"))
