"""One look for every figure: the seaborn theme and the few chart types the reports need.

Every plot function takes ``ax=None`` and returns the axes, so a test can check what was drawn
and a notebook can place two charts on one figure.
"""
from __future__ import annotations

import re
import textwrap

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from IPython import get_ipython
from IPython.display import Markdown, display
from matplotlib.ticker import FuncFormatter, MaxNLocator

FIGSIZE = (9, 4.5)
PALETTE = "crest"


def use_style() -> None:
    """Apply the project's seaborn theme (call once at the top of a notebook)."""
    sns.set_theme(context="notebook", style="whitegrid", palette="deep")
    plt.rcParams.update({"figure.figsize": FIGSIZE, "figure.dpi": 100, "axes.titleweight": "bold",
                         "axes.titlesize": 13, "savefig.bbox": "tight"})


def axes_or_new(ax):
    """`ax`, or the axes of a new figure in the reports' size (every plot_* function takes ax=None)."""
    if ax is None:
        _, ax = plt.subplots(figsize=FIGSIZE)
    return ax


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|~])")


def takeaway_markdown(sentence: str) -> str:
    """A takeaway as Markdown: one paragraph per line, "1. ..." lines stay a numbered list, and every
    character Markdown would act on (``*``, ``_``, ``#``, ``<``, ...) is escaped, so the text shows as written."""
    lines = [_MARKDOWN_SPECIAL.sub(r"\\\1", line.strip()) for line in sentence.splitlines() if line.strip()]
    return "\n\n".join(lines)


def say(sentence: str, width: int = 110) -> None:
    """Show a computed takeaway: as Markdown in a notebook (a paragraph in the HTML report, checked by
    nbval like any output), printed and wrapped to `width` elsewhere."""
    shell = get_ipython()
    if shell is not None and getattr(shell, "kernel", None) is not None:
        display(Markdown(takeaway_markdown(sentence)))
    else:
        print("\n".join(textwrap.fill(line, width) for line in sentence.splitlines()))


thousands = FuncFormatter(lambda v, _: f"{v:,.0f}")


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

LIKELY_ACTIVE_FROM = 0.5  # P(alive) from which a customer is "likely active"


def likely_active(p_alive) -> pd.Series:
    """True where the purchase model's P(alive) makes a customer *likely active* (NaN: not judged)."""
    return pd.Series(p_alive, dtype=float) >= LIKELY_ACTIVE_FROM


def likely_active_definition() -> str:
    return (f"'likely active' means a P(alive) of {LIKELY_ACTIVE_FROM:.0%} or more: the purchase model of "
            "notebook 04 finds it more likely that the customer still buys from the shop than that they have "
            "left for good")


def high_churn_risk_definition(high_from: float, horizon_days: int) -> str:
    return (f"'high churn risk' means a probability of {high_from:.0%} or more of placing no order in the next "
            f"{horizon_days} days (notebook 05)")


def alive_vs_churn(horizon_days: int) -> str:
    """Why 04's P(alive) and 05's churn risk count different customers, in one sentence."""
    return (f"The two answer different questions: P(alive) asks whether a customer has left for good, churn risk "
            f"whether they will order in the next {horizon_days} days, so a customer who buys a few times a year "
            "can be likely active and at high churn risk at once.")


def plot_monthly_bars(df: pd.DataFrame, x: str, y: str, title: str, ylabel: str, ax=None,
                      line: str | None = None, line_label: str | None = None):
    """Bars of `y` per month (`x`), optionally a second measure `line` on a right-hand axis."""
    ax = axes_or_new(ax)
    sns.barplot(data=df, x=x, y=y, color=sns.color_palette()[0], ax=ax)
    ax.set_title(title)
    ax.set_xlabel("month")
    ax.set_ylabel(ylabel)
    ax.yaxis.set_major_formatter(thousands)
    labels = [t.get_text() for t in ax.get_xticklabels()]
    step = max(1, len(labels) // 12)
    ax.set_xticks(range(0, len(labels), step), labels[::step], rotation=45, ha="right")
    if line:
        ax2 = ax.twinx()
        ax2.plot(range(len(df)), df[line].to_numpy(), color=sns.color_palette()[3], marker="o", ms=3,
                 label=line_label or line)
        ax2.set_ylabel(line_label or line)
        ax2.yaxis.set_major_formatter(thousands)
        ax2.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts: no 1.5 orders on a small shop's axis
        ax2.set_ylim(bottom=0)
        ax2.grid(False)
        ax2.legend(loc="upper left", frameon=False)
    return ax


def plot_share_bars(df: pd.DataFrame, category: str, value: str, title: str, xlabel: str, ax=None):
    """Horizontal bars of `value` per `category`, largest first, labelled with the value."""
    ax = axes_or_new(ax)
    d = df.sort_values(value, ascending=False)
    sns.barplot(data=d, y=category, x=value, color=sns.color_palette()[0], ax=ax)
    for container in ax.containers:
        ax.bar_label(container, fmt="{:,.0f}", padding=3)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("")
    return ax
