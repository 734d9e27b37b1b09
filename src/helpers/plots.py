"""One look for every figure: the seaborn theme and the few chart types the reports need.

Every plot function takes ``ax=None`` and returns the axes, so a test can check what was drawn
and a notebook can place two charts on one figure.
"""
from __future__ import annotations

import re
import textwrap
from functools import partial

import itables
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from IPython import get_ipython
from IPython.core.pylabtools import print_figure
from IPython.display import Markdown, display
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

# what the reports call things and how they write a number, in a module of their own (the publisher needs them
# without matplotlib); every page keeps reading them here
from helpers.words import METRIC_NAMES, MISSING, SORTABLE_MIME, format_value, money  # noqa: F401

FIGSIZE = (9, 4.5)
PALETTE = "crest"


def use_style() -> None:
    """Apply the project's seaborn theme (call once at the top of a notebook); tables show their text whole."""
    sns.set_theme(context="notebook", style="whitegrid", palette="deep")
    pd.set_option("display.max_colwidth", None)
    pd.set_option("display.max_rows", PLAIN_ROWS)  # a table of up to PLAIN_ROWS rows is shown whole
    _figures_with_alt_text()


def figure_alt(fig) -> str:
    """A figure's description for readers who cannot see it (the page's alt text): its title, or its axes'
    titles joined, with what the axes measure."""
    titles = [fig._suptitle.get_text()] if getattr(fig, "_suptitle", None) is not None else []
    titles += [ax.get_title() for ax in fig.axes if ax.get_title()]
    axes = [ax for ax in fig.axes if ax.get_title() or ax.get_xlabel() or ax.get_ylabel()]
    measures = "; ".join(" against ".join(x for x in (ax.get_ylabel(), ax.get_xlabel()) if x) for ax in axes[:2])
    text = "; ".join(dict.fromkeys(t for t in titles if t)) or "Chart"
    return f"{text} ({measures})" if measures else text


def _figures_with_alt_text() -> None:
    """In a notebook, every figure's PNG output carries its alt text (metadata ``alt``, which the report's page
    writes on the image): the inline backend's PNG formatter wrapped, so figures look as before."""
    shell = get_ipython()
    if shell is None:
        return
    plt.close(plt.figure())  # the backend loads with the first figure and sets its formatter then: before wrapping
    png = shell.display_formatter.formatters["image/png"]
    try:
        draw = png.lookup_by_type(Figure)
    except KeyError:
        draw = None
    if getattr(draw, "with_alt", False):  # wrapped already (use_style called twice)
        return
    if draw is None:
        draw = partial(print_figure, fmt="png", base64=True, bbox_inches="tight")

    def with_alt(fig):
        data = draw(fig)
        if isinstance(data, tuple):  # a formatter that already returns (data, metadata), e.g. retina
            data, meta = data
            return data, {**(meta or {}), "alt": figure_alt(fig)}
        return data, {"alt": figure_alt(fig)}

    with_alt.with_alt = True
    png.for_type(Figure, with_alt)
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
plain_number = FuncFormatter(lambda v, _: f"{v:,.0f}" if abs(v) >= 1 else f"{v:g}")  # log axes: 0.1, 1, 10, 1,000


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
    ax.xaxis.set_major_formatter(thousands)  # '1,500,000', never '1e6'
    return ax


# ---------------------------------------------------------------------------------------------
# One vocabulary: the names a reader sees for the columns of every table (02-06), defined once.
# Model-internal names (lifetimes' T, recency, frequency, monetary_value; exp_purchases_30d ...)
# never reach a report: a table function passes its frame through `for_readers` / `table_for_readers`.

DISPLAY_NAMES = {
    # customers and orders (02, 03, 05)
    "customer_id": "customer", "rfm_segment": "segment", "cluster_label": "cluster",
    "recency_days": "days since last order", "orders": "orders", "monetary": "net revenue",
    "avg_order_value": "average order value", "tenure_days": "days since first order",
    "customers": "customers", "revenue": "net revenue", "revenue_share": "share of net revenue",
    "aov": "average order value", "returns_rate": "returns rate",
    "repeat_rate": "customers with 2+ orders in the window",
    "months_since_first": "months since first order", "cohorts": "cohorts",
    "retention": "share of the cohort buying that month",
    "cumulative_revenue_per_member": "cumulative net revenue per member",
    "listed_customers": "customers in the customers file", "leads": "leads (no order yet)",
    "lead_share": "share of leads", "first_buyers": "first-time buyers",
    "median_days": "median days since previous order", "value": "amount", "kind": "kind",
    "revenue_gross": "purchase revenue", "gap_mean_days": "mean days between orders",
    "gap_last_days": "days between the last two orders", "gap_trend": "last gap / earlier gaps",
    "overdue_ratio": "days since last order / mean gap", "return_share": "share of revenue returned",
    "category_breadth": "categories bought", "discount_share": "share of orders with a discount",
    "age_years": "age (years)", "marketing_opt_in": "marketing opt-in", "gender": "gender", "region": "region",
    # purchase model and CLV (04): lifetimes' names in the words of the reader
    "T": "days since first purchase",
    "recency": "days from first to last purchase",
    "frequency": "repeat purchases",
    "monetary_value": "mean repeat order value",
    "p_alive": "P(alive)",
    "exp_avg_value": "expected order value",
    "clv": "CLV (margin)",
    "mae": "mean absolute error (purchases per customer)",
    "rmse": "root mean squared error (purchases per customer)",
    "predicted_total": "predicted repeat purchases", "actual_total": "actual repeat purchases",
    "total_error_pct": "error of the total", "penalizer": "penalizer", "chosen": "chosen",
    "calibration_repeat_purchases": "repeat purchases in the calibration period",
    "actual": "actual",
    "clv_share_pct": "share of total CLV", "cumulative_pct": "cumulative share of total CLV",
    "mean_clv": "mean CLV (margin)", "total_clv": "total CLV (margin)", "mean_p_alive": "mean P(alive)",
    "mean_repeat_purchases": "mean repeat purchases",
    "inertia": "inertia (within-cluster sum of squares)", "silhouette": "silhouette", "k": "clusters (k)",
    # churn (05)
    "churn_probability": "churn probability", "mean_churn_probability": "mean churn probability",
    "share": "share", "risk_tier": "risk tier",
    # offers (06)
    "bought": "bought first", "then_bought": "then bought", "support": "then bought it",
    "base_rate": "base rate", "lift": "lift",
    "customers_repeating": "repeat buyers of the category",
    "median_interval_days": "median days between purchases", "due_now": "due now or overdue",
    "due_share": "share due now or overdue", "buyers_in_horizon": "buyers in the horizon",
    "coverage": "customers with a suggestion", "categories_suggested": "categories suggested",
    "cutoff": "cut-off", "top_category": "most common first suggestion",
    "top_category_share": "share shown it first", "most_common_top3": "most common set of suggestions",
    "main_reason": "main reason", "suggested_category": "suggested category",
    "median_days_since_first": "median days since first order",
}

# names with a number in them: pattern -> reader name (the number is the horizon, window or N)
_DISPLAY_PATTERNS = [
    (re.compile(r"^exp_purchases_(\d+)d$"), "expected purchases, next {} days"),
    (re.compile(r"^p_purchase_(\d+)d$"), "P(order in the next {} days)"),
    (re.compile(r"^clv_(\d+)m$"), "CLV, next {} months (margin)"),
    (re.compile(r"^second_within_(\d+)d$"), "second order within {} days"),
    (re.compile(r"^signups_(\d+)d_old$"), "signups at least {} days ago"),
    (re.compile(r"^ordered_within_(\d+)d$"), "ordered within {} days of signing up"),
    (re.compile(r"^repeat_rate_(\d+)d$"), "ordered again within {} days"),
    (re.compile(r"^revenue_per_customer_(\d+)d$"), "net revenue per customer, first {} days"),
    (re.compile(r"^p(\d+)_days$"), "{}th percentile of days since previous order"),
    (re.compile(r"^hit_rate_at_(\d+)$"), "hit rate (one of the {} suggestions bought)"),
]

# internal names that must never be a reader's column or index name (tests check tables against it)
MODEL_INTERNAL_NAMES = frozenset({"T", "recency", "frequency", "monetary_value", "monetary", "p_alive"})


def unreadable_names(df: pd.DataFrame) -> list[str]:
    """The column and index names of a displayed table a reader should not see: model-internal names
    (``T``, ``recency``, ``p_alive`` ...) and snake_case. Empty for a table fit for a report."""
    names = [*df.columns, *df.columns.names, *df.index.names]
    return [n for n in names if isinstance(n, str) and (n in MODEL_INTERNAL_NAMES or "_" in n)]


def display_name(name) -> str:
    """The reader's name of a column or index name: DISPLAY_NAMES, a numbered pattern
    (``exp_purchases_30d`` -> 'expected purchases, next 30 days') or, for any other snake_case name,
    its words ('median_days' -> 'median days'). A name that is not a string is returned as it is."""
    if not isinstance(name, str):
        return name
    if name in DISPLAY_NAMES:
        return DISPLAY_NAMES[name]
    for pattern, text in _DISPLAY_PATTERNS:
        m = pattern.match(name)
        if m:
            return text.format(*m.groups())
    return name.replace("_", " ") if "_" in name else name


def for_readers(df: pd.DataFrame, names: dict | None = None) -> pd.DataFrame:
    """A copy of `df` with reader names on its columns, its index and their names (axis titles):
    `names` first, then `display_name`. The values are left alone."""
    names = names or {}

    def name(x):
        return names.get(x, display_name(x)) if isinstance(x, str) else x

    out = df.copy()
    out.columns = out.columns.map(name) if not isinstance(out.columns, pd.MultiIndex) else out.columns
    out.columns.names = [name(n) for n in out.columns.names]
    out.index.names = [name(n) for n in out.index.names]
    return out


MAX_ROWS = 15  # rows a table shows inline; the rest is in its artifact
PLAIN_ROWS = 100  # a sortable table up to this many rows is shown whole as plain HTML (no DataTables bundle)


def note_table(note: str, label: str, index_name: str = "") -> pd.DataFrame:
    """A one-row table that says why there is nothing to show (a missing artifact, an empty result)."""
    return pd.DataFrame({"note": [note]}, index=pd.Index([label], name=index_name))


def rest_row_label(hidden: int, where: str | None) -> str:
    """The last row of a cut table: how many rows are not shown and where they are."""
    return f"... {hidden:,} more rows" + (f" in {where}" if where else " not shown")


def table_for_readers(df: pd.DataFrame, kinds: dict | None = None, currency: str | None = "EUR",
                      names: dict | None = None, max_rows: int | None = MAX_ROWS,
                      rest: str | None = None, sortable: str | None = None) -> pd.DataFrame:
    """A table as a person reads it: values formatted by kind, reader names, at most `max_rows` rows.

    `kinds` maps a column (internal name) to a kind of `format_value` (money, money2, share, count,
    ratio) or 'pct' (a number already in percent, 43.1 -> '43.1%'), 'share0' (0.9 -> '90%'), 'days' (whole days, '1,095'),
    'numberN' (N decimals: number1 -> '3.0'); columns without a kind keep their values.
    A money column's name carries the currency ('net revenue (EUR)'). A longer table keeps its first
    `max_rows` rows (in its own order) and a last row saying how many more there are and where
    (`rest`, e.g. 'clv.parquet'). The numbers themselves stay in the artifacts.
    With `sortable` (a fixed HTML id, e.g. 'winback-simulation') a longer table comes back as a
    :class:`SortableTable`: cut in the notebook, whole and sortable in the HTML report."""
    kinds = kinds or {}
    names = dict(names or {})
    out = df.copy()
    for col, kind in kinds.items():
        if col not in out.columns:
            continue
        out[col] = [format_cell(v, kind) for v in out[col]]
        if kind.startswith("money") and currency and col not in names:
            names[col] = with_currency(display_name(col), currency)
    if sortable:
        return long_table(for_readers(out, names), sortable, max_rows)
    return for_readers(cut_rows(out, max_rows, rest), names)


def long_table(df: pd.DataFrame, table_id: str, max_rows: int | None = MAX_ROWS):
    """`df` whole, as plain HTML, when it has at most :data:`PLAIN_ROWS` rows (a page stays light and reads in a
    mail preview without JavaScript); a longer one as a :class:`SortableTable` (id `table_id`) showing `max_rows`."""
    return SortableTable(df, table_id, max_rows) if max_rows is not None and len(df) > PLAIN_ROWS else df


def cut_rows(df: pd.DataFrame, max_rows: int | None = MAX_ROWS, rest: str | None = None) -> pd.DataFrame:
    """The first `max_rows` rows of `df` and a last row saying how many more there are and where (`rest`)."""
    hidden = len(df) - max_rows if max_rows is not None and len(df) > max_rows else 0
    if not hidden:
        return df
    out = df.head(max_rows).astype(object)
    label = rest_row_label(hidden, rest)
    key = label if out.index.nlevels == 1 else (label,) + ("",) * (out.index.nlevels - 1)
    out.loc[key, :] = ""
    return out


class SortableTable:
    """A long table for people: in the notebook (JupyterLab, nbval) its first `max_rows` rows and a line
    saying how many more there are; in the published HTML report every row, sortable and searchable
    (itables/DataTables, offline: `publish.notebook_to_html` embeds the JavaScript once per page).

    The notebook output carries both: ``text/html`` (the short table) and :data:`SORTABLE_MIME` (the
    interactive one), so a notebook stays small and its outputs stable (`table_id` is fixed, never random).
    """

    def __init__(self, table: pd.DataFrame, table_id: str, max_rows: int = MAX_ROWS):
        self.table, self.table_id, self.max_rows = table, table_id, max_rows

    def __len__(self) -> int:
        return len(self.table)

    @property
    def inline(self) -> pd.DataFrame:
        """What the notebook shows: the first rows and a last row pointing to the report."""
        label = "the HTML report (sortable, searchable)"
        return cut_rows(self.table, self.max_rows, label)

    def interactive_html(self) -> str:
        return itables.to_html_datatable(
            self.table, table_id=self.table_id, connected=False, display_logo_when_loading=False,
            pageLength=self.max_rows, lengthMenu=[self.max_rows, 50, 100, -1], classes="display compact",
            layout={"topStart": "pageLength", "topEnd": "search", "bottomStart": "info", "bottomEnd": "paging"})

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        inline = self.inline
        return {"text/plain": repr(inline), "text/html": inline._repr_html_(), SORTABLE_MIME: self.interactive_html()}


def with_currency(name: str, currency: str) -> str:
    """'net revenue' -> 'net revenue (EUR)'; 'mean CLV (margin)' -> 'mean CLV (margin, EUR)'."""
    return f"{name[:-1]}, {currency})" if name.endswith(")") else f"{name} ({currency})"


def format_cell(value, kind: str) -> str:
    """`format_value` plus the kinds only tables need: pct (already in percent), days, numberN (N decimals)."""
    if isinstance(value, str):
        return value
    if value is None or pd.isna(value):
        return MISSING
    if kind == "pct":
        return f"{value:.1f}%"
    if kind == "share0":  # a share known to 2 decimals only: 0.9 -> '90%'
        return f"{100 * value:.0f}%"
    if kind == "days":
        return f"{value:,.0f}"
    if kind.startswith("number"):  # number1, number3 ...: that many decimals
        return f"{value:,.{int(kind[6:] or 0)}f}"
    return format_value(value, kind)


def rate_or_counts(rate: float, base: int, min_base: int) -> str:
    """A rate as a reader should see it: '61.8%' over a base of at least `min_base` (reports.min_rate_base),
    else its counts ('21 of 34'), which do not pretend a precision a few customers cannot give."""
    if rate is None or pd.isna(rate):
        return MISSING
    return f"{round(rate * base):,} of {int(base):,}" if base < min_base else format_value(rate, "share")


def option_colors(options: list[str], plain: str | None = None) -> list:
    """Colours for ordered offers (no discount, 5 % off ... 20 % off) a reader tells apart: the offer
    without a discount (`plain`) in grey, the discounts from light to dark along viridis (its lightness
    rises steadily, so neighbours differ and the order survives grey-scale printing)."""
    steps = [o for o in options if o != plain]
    shades = dict(zip(steps, sns.color_palette("viridis_r", len(steps) + 1)[1:])) if steps else {}
    return [shades.get(o, (0.6, 0.6, 0.6)) for o in options]


percent_axis = FuncFormatter(lambda v, _: f"{v:.0%}")  # a 0..1 share on an axis: 0.25 -> '25%'
