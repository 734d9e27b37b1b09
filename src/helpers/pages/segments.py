"""The page of notebook 03 (segments): from a :class:`helpers.segments.SegmentsResult`, the RFM summary
and score tables, the named segments' shares and profiles, the R x F heatmap, the choice of k and the
clusters (profiles, snake plot, centroids, PCA), the segment x cluster crosstab and the migration from
last month's segments, each as a reader table, a takeaway sentence or a figure (``plot_*``, returning
the axes).
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from helpers import pages, plots
from helpers.plots import axes_or_new, thousands
from helpers.segments import (
    MEASURE_TEXT,
    MONEY_MEASURES,
    NEW_ROW,
    SCORED,
    SegmentsResult,
    grid_table as _grid_table,
)

PROFILE_DIMENSIONS = ("gender", "age band", "region", "category", "payment method")  # mix_table's column order


# --------------------------------------------------------------------------- helpers

def _measure(res: SegmentsResult, col: str) -> str:
    """A measure's reader name, money with the currency ('net revenue (EUR)')."""
    return plots.with_currency(MEASURE_TEXT[col], res.currency) if col in MONEY_MEASURES else MEASURE_TEXT[col]


def _order(res: SegmentsResult, by: str) -> list[str]:
    return res.segment_order if by == "rfm_segment" else list(res.centroids.index)


def _group_index(res: SegmentsResult, by: str, df: pd.DataFrame) -> pd.DataFrame:
    df = df.reindex([o for o in _order(res, by) if o in df.index])
    df.index.name = "segment" if by == "rfm_segment" else "cluster"
    return df


def _positive_revenue(monetary: pd.Series) -> float:
    return monetary.clip(lower=0).sum()


# --------------------------------------------------------------------------- RFM and scores

def rfm_summary(res: SegmentsResult) -> pd.DataFrame:
    """Quantiles of recency, frequency, monetary and average order value over the customers."""
    c = res.customers
    cols = ["recency_days", "frequency", "monetary", "avg_order_value"]
    df = c[cols].quantile([0, 0.25, 0.5, 0.75, 0.9, 1]).T
    df.columns = ["min", "25%", "median", "75%", "90%", "max"]
    df.insert(0, "mean", c[cols].mean())
    kinds = {"recency_days": "days", "frequency": "number1", "monetary": "money2", "avg_order_value": "money2"}
    out = pd.DataFrame([[plots.format_cell(v, kinds[x]) for v in df.loc[x]] for x in cols], columns=df.columns,
                       index=pd.Index([_measure(res, x) for x in cols], name="measure"))
    return out


def score_table(res: SegmentsResult) -> pd.DataFrame:
    """What each score means: customers and the value range of its measure, per score 1..5."""
    c = res.customers
    rows = {}
    for score, (col, _) in SCORED.items():
        g = c.groupby(score)[col]
        rng = g.min().map("{:,.0f}".format) + " to " + g.max().map("{:,.0f}".format)
        rows[(score[0].upper(), _measure(res, col))] = rng.reindex(range(1, 6)).fillna("-")
        counts = g.size().reindex(range(1, 6)).fillna(0).astype(int)
        rows[(score[0].upper(), "customers")] = counts.map("{:,}".format)
    df = pd.DataFrame(rows).T
    df.columns = pd.Index([f"score {i}" for i in range(1, 6)])
    df.index.names = ["score", "row"]
    return df


def score_note(res: SegmentsResult) -> str:
    """The score notes, or a sentence saying every measure spreads over all 5 levels."""
    return "\n".join(res.notes) or ("Recency, frequency and monetary each have at least 5 distinct values, so all "
                                    "three scores use the full 1-5 range (ties share a score).")


def grid_table(res: SegmentsResult) -> pd.DataFrame:
    """The segment grid the result was scored with: R score rows (5 at the top) x FM score columns."""
    return _grid_table(res.settings)


# --------------------------------------------------------------------------- named segments

def plot_segment_shares(res: SegmentsResult, ax=None):
    """Share of customers and of net revenue per named segment (horizontal bars, grid order)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 5.5))
    c = res.customers
    revenue = _positive_revenue(c["monetary"]) or 1.0
    g = c.groupby("rfm_segment", observed=False)
    d = pd.DataFrame({"customers": g.size() / max(len(c), 1),
                      "net revenue": g["monetary"].apply(_positive_revenue) / revenue})
    d = d.reindex(res.segment_order).fillna(0) * 100
    long = d.rename_axis("segment").reset_index().melt("segment", var_name="share of", value_name="percent")
    sns.barplot(data=long, y="segment", x="percent", hue="share of", ax=ax, palette=["#8da0cb", "#1b9e77"])
    for container in ax.containers:
        ax.bar_label(container, fmt="{:.0f}%", padding=2, fontsize=8)
    ax.set_title("Named segments: share of customers and of net revenue")
    ax.set_xlabel("share (%)")
    ax.set_ylabel("")
    ax.legend(title="", loc="lower right", frameon=False)
    return ax


def segments_takeaway(res: SegmentsResult) -> str:
    """Customers and segments, the segment with the most revenue, and the watched segments' shares."""
    watch = res.settings.watch
    c = res.customers
    n = max(len(c), 1)
    revenue = _positive_revenue(c["monetary"]) or 1.0
    size = c["rfm_segment"].value_counts()
    rev = c.groupby("rfm_segment", observed=True)["monetary"].apply(_positive_revenue)
    top = rev.idxmax()
    w = c["rfm_segment"].isin(watch)
    text = (f"{len(c):,} customers in {int((size > 0).sum())} segments. "
            f"{top} is the segment with the most revenue: "
            f"{size[top] / n:.1%} of customers bring {rev[top] / revenue:.1%} of net revenue.")
    if not watch:  # segments.watch: [] watches no segment
        return text
    return (f"{text} {', '.join(watch)} {'together hold' if len(watch) > 1 else 'holds'} {w.mean():.1%} of "
            f"customers and {_positive_revenue(c.loc[w, 'monetary']) / revenue:.1%} of revenue.")


def answer(res: SegmentsResult) -> str:
    """The page's answer: how many customers in how many segments, where the revenue sits, the groups k-means
    found, and (from the second month) how customers moved."""
    text = segments_takeaway(res)
    if res.customers["cluster_label"].nunique() > 1:
        found = clusters_takeaway(res)
        text += f" k-means finds {res.customers['cluster_label'].nunique()} groups besides: {found[0].lower()}{found[1:]}"
    if res.migration.counts is not None:
        text += " " + migration_takeaway(res)
    return text


def glossary_table(res: SegmentsResult) -> pd.DataFrame:
    """The page's terms, with the settings behind them."""
    return pages.glossary({
        "RFM": "recency (days since the last purchase), frequency (orders) and monetary value (net revenue)",
        "R, F, M scores": "1-5 by quintiles of each measure's rank (5 = most recent, most orders, most revenue)",
        "named segment": "a cell of the R score x FM score grid (segments.grid in the config)",
        "watched segments": f"{', '.join(res.settings.watch) or 'none'} (segments.watch): the segments a win-back "
                            "looks at, named in the takeaways",
        "k-means": "clusters on log-transformed, standardised recency, frequency, monetary value, tenure and "
                   "average order value; the number of clusters is the one with the best silhouette",
        "silhouette": "how well separated the clusters are, from -1 to 1 (higher is better)",
        "inertia": "the within-cluster sum of squares; it always falls as k grows (the elbow)",
    })


def profile_table(res: SegmentsResult, by: str = "rfm_segment") -> pd.DataFrame:
    """Per segment (or cluster_label): size, shares of customers and of net revenue, medians of
    recency, orders, revenue and order value. Empty groups are left out."""
    c = res.customers
    g = c.groupby(by, observed=True)
    revenue = _positive_revenue(c["monetary"]) or 1.0
    df = pd.DataFrame({
        "customers": g.size().map("{:,}".format),
        "share of customers": (g.size() / max(len(c), 1)).map("{:.1%}".format),
        "share of net revenue": (g["monetary"].apply(_positive_revenue) / revenue).map("{:.1%}".format),
        f"median {MEASURE_TEXT['recency_days']}": g["recency_days"].median().map("{:,.0f}".format),
        f"median {MEASURE_TEXT['frequency']}": g["frequency"].median().map("{:,.1f}".format),
        f"median {_measure(res, 'monetary')}": g["monetary"].median().map("{:,.0f}".format),
        f"median {_measure(res, 'avg_order_value')}": g["avg_order_value"].median().map("{:,.0f}".format),
    })
    return _group_index(res, by, df)


def mix_table(res: SegmentsResult, by: str = "rfm_segment", top: int = 2) -> pd.DataFrame:
    """Per segment (or cluster_label): the `top` most common values of each profile dimension
    with their shares, e.g. gender "F 52% · M 41%" (customers; categories and payment methods by
    purchase revenue). Dimensions without data are left out."""
    mix = res.mix[res.mix["by"] == by]
    cols = {}
    for dimension, d in mix.groupby("dimension", sort=False):
        cols[dimension] = d.groupby("group").apply(
            lambda x: " · ".join(f"{str(v).replace('_', ' ')} {s:.0%}" for v, s in zip(x["value"].head(top),
                                                                                     x["share"].head(top))))
    df = pd.DataFrame(cols)
    order = [d for d in PROFILE_DIMENSIONS if d in df.columns]
    return _group_index(res, by, df[order] if order else df)


def plot_rfm_heatmap(res: SegmentsResult, ax=None):
    """R score (rows, 5 at the top) x F score: colour = customers, text = customers and mean monetary."""
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 5.5))
    c = res.customers
    g = c.groupby(["r_score", "f_score"])
    n = g.size().unstack().reindex(index=range(5, 0, -1), columns=range(1, 6))
    m = g["monetary"].mean().unstack().reindex(index=range(5, 0, -1), columns=range(1, 6))
    text = n.copy().astype(object)
    for r in n.index:
        for f in n.columns:
            text.loc[r, f] = ("" if pd.isna(n.loc[r, f]) else
                              f"{n.loc[r, f]:,.0f}\n{res.currency} {m.loc[r, f]:,.0f}")
    sns.heatmap(n, mask=n.isna(), annot=text.to_numpy(), fmt="", cmap="crest", ax=ax,  # empty cells stay blank
                cbar_kws={"label": "customers"}, annot_kws={"fontsize": 8})
    ax.set_title("Customers (and mean net revenue) per R and F score")
    ax.grid(False)
    ax.set_xlabel("F score (5 = most orders)")
    ax.set_ylabel("R score (5 = most recent)")
    ax.tick_params(axis="y", rotation=0)
    return ax


def heatmap_takeaway(res: SegmentsResult) -> str:
    """The top cell's customers and their mean spend against the mean customer's."""
    c = res.customers
    top = c[(c["r_score"] == 5) & (c["f_score"] == 5)]
    mean = c["monetary"].mean()
    if top.empty:
        return "No customer has both R = 5 and F = 5 (too few distinct values to fill the top cell)."
    return (f"The top cell (R = 5, F = 5) holds {len(top):,} customers ({len(top) / len(c):.1%}) spending "
            f"{res.currency} {top['monetary'].mean():,.0f} on average, "
            f"{top['monetary'].mean() / mean:.1f} times the "
            f"mean customer ({res.currency} {mean:,.0f}).")


# --------------------------------------------------------------------------- k-means clusters

def plot_k_choice(res: SegmentsResult, ax=None):
    """Elbow (inertia, left axis) and silhouette (right axis) per k, chosen k marked."""
    ax = axes_or_new(ax)
    k = res.k_scores
    if k.empty:
        ax.set_title("Too few distinct customers to compare cluster counts")
        return ax
    ax.plot(k["k"], k["inertia"], marker="o", color=sns.color_palette()[0], label="inertia (elbow)")
    ax.set_xlabel("number of clusters k")
    ax.set_ylabel("inertia (within-cluster sum of squares)")
    ax.yaxis.set_major_formatter(thousands)
    ax2 = ax.twinx()
    ax2.plot(k["k"], k["silhouette"], marker="s", color=sns.color_palette()[3], label="silhouette")
    ax2.set_ylabel("silhouette (higher = better separated)")
    ax2.set_ylim(min(0.0, float(k["silhouette"].min())), max(float(k["silhouette"].max()) * 1.25, 0.1))  # from 0:
    ax2.grid(False)                                         # a cut axis made 0.25 vs 0.28 look like a chasm
    ax.axvline(res.k, color="grey", linestyle="--", linewidth=1)
    ax.set_title(f"Choosing k: elbow and silhouette (chosen k = {res.k})")
    lines = ax.get_lines()[:1] + ax2.get_lines()
    ax.legend(lines, [x.get_label() for x in lines], loc="upper center", frameon=False)
    return ax


def k_table(res: SegmentsResult) -> pd.DataFrame:
    """Inertia and silhouette per k tried, with the chosen k marked."""
    df = res.k_scores.set_index("k")
    df["chosen"] = np.where(df.index == res.k, "yes", "")
    return plots.table_for_readers(df, {"inertia": "count", "silhouette": "number3"})


def k_takeaway(res: SegmentsResult) -> str:
    """Why this k (or why everyone is in one cluster)."""
    if res.k_scores.empty:
        k_min = res.settings.k_min
        if res.silhouette_sample <= k_min < len(res.customers):
            return (f"The sample of {res.silhouette_sample:,} customers that scores each k (setting "
                    f"segments.silhouette_sample) is too small for {k_min} clusters, so everyone is in one "
                    f"cluster; raise it above {k_min}.")
        return "Too few distinct customers to compare cluster counts: everyone is in one cluster."
    s = res.k_scores.set_index("k")["silhouette"]
    return (f"k = {res.k} has the best silhouette ({s[res.k]:.3f}) among k = {s.index.min()}..{s.index.max()}, "
            f"scored on a fixed sample of {res.silhouette_sample:,} customers; k-means is then fitted on all "
            f"{len(res.customers):,} customers.")


def clusters_takeaway(res: SegmentsResult) -> str:
    """The largest cluster's and the highest-revenue cluster's shares of customers and revenue."""
    c = res.customers
    revenue = _positive_revenue(c["monetary"]) or 1.0
    g = c.groupby("cluster_label", observed=True)
    share, rev = g.size() / len(c), g["monetary"].apply(_positive_revenue) / revenue
    big, best = share.idxmax(), rev.idxmax()
    s = f"The largest cluster, '{big}', holds {share[big]:.0%} of customers and {rev[big]:.0%} of revenue"
    if best != big:
        s += f"; '{best}' holds {share[best]:.0%} of customers and {rev[best]:.0%} of revenue"
    return s + "."


def plot_snake(res: SegmentsResult, ax=None):
    """Snake plot: each cluster's centroid on the standardised log features."""
    ax = axes_or_new(ax)
    long = res.centroids.rename(columns=MEASURE_TEXT).reset_index().melt("cluster_label", var_name="feature",
                                                                          value_name="z")
    sns.lineplot(data=long, x="feature", y="z", hue="cluster_label", marker="o", sort=False, ax=ax)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_title("Cluster centroids (snake plot)")
    ax.set_xlabel("")
    ax.tick_params(axis="x", rotation=15)
    ax.set_ylabel("standardised log value (sd from the mean)")
    ax.legend(title="cluster", fontsize=8, frameon=False, bbox_to_anchor=(1.01, 1), loc="upper left")
    return ax


def centroid_table(res: SegmentsResult) -> pd.DataFrame:
    """Cluster centroids in standard deviations from the mean of each (log) feature."""
    return plots.for_readers(res.centroids.rename(columns=MEASURE_TEXT).rename_axis("cluster").round(2))


def plot_pca(res: SegmentsResult, ax=None):
    """2-D PCA of the clustering features for a fixed sample of customers, coloured by cluster."""
    ax = axes_or_new(ax)
    sns.scatterplot(data=res.pca, x="pc1", y="pc2", hue="cluster_label", s=10, alpha=0.6, linewidth=0, ax=ax)
    ax.set_title(f"Clusters on the first two principal components ({len(res.pca):,} sampled customers)")
    ax.set_xlabel("principal component 1")
    ax.set_ylabel("principal component 2")
    ax.legend(title="cluster", fontsize=8, frameon=False, bbox_to_anchor=(1.01, 1), loc="upper left", markerscale=2)
    return ax


def pca_takeaway(res: SegmentsResult) -> str:
    """How much of the variation the two PCA axes keep."""
    return (f"The two axes keep {res.pca_explained:.0%} of the variation of the five features, so clusters that "
            f"overlap here may still be apart in the dimensions not shown.")


# --------------------------------------------------------------------------- segments x clusters

def crosstab_table(res: SegmentsResult) -> pd.DataFrame:
    """Customers per named segment (rows, grid order) x cluster (columns), with thousands separators."""
    t = res.crosstab
    return plots.table_for_readers(t, {c: "count" for c in t.columns}, max_rows=None)


def plot_crosstab(res: SegmentsResult, ax=None):
    """Segment x cluster: colour and text = share of the segment's customers in each cluster."""
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 6))
    t = res.crosstab
    shares = t.div(t.sum(axis=1).replace(0, 1), axis=0)
    sns.heatmap(shares * 100, annot=True, fmt=".0f", cmap="crest", ax=ax, cbar_kws={"label": "% of the segment"},
                annot_kws={"fontsize": 8})
    ax.set_title("Where each named segment falls among the clusters (% of the segment)")
    ax.set_xlabel("cluster")
    ax.set_ylabel("")
    ax.set_xticklabels(ax.get_xticklabels(), rotation=30, ha="right")
    return ax


def crosstab_takeaway(res: SegmentsResult) -> str:
    """The segment that maps most cleanly onto one cluster and the most mixed one."""
    t = res.crosstab
    if t.empty:
        return "No customers to cross-tabulate."
    shares = t.div(t.sum(axis=1), axis=0)
    spread = shares.max(axis=1)
    mixed = spread.idxmin()
    firm = spread.idxmax()
    used = t.columns[t.sum(axis=0) > 0]
    if len(used) == 1:  # e.g. a silhouette sample too small to try k clusters
        return f"Everyone is in one cluster ('{used[0]}'), so the clusters do not split the segments."
    if spread[mixed] == 1:
        return "Every segment maps onto one cluster: no segment is split by the clusters."
    return (f"{firm} map most cleanly onto one cluster ({spread[firm]:.0%} in '{shares.loc[firm].idxmax()}'); "
            f"{mixed} are the most mixed (at most {spread[mixed]:.0%} in any one cluster), so the clusters split "
            f"them by something the fixed grid ignores (tenure or order value).")


# --------------------------------------------------------------------------- migration

def migration_table(res: SegmentsResult) -> pd.DataFrame:
    """Customers from last month's segment (rows, + the new customers) to this month's (columns, +
    customers gone from the data), with a total per row; a one-row note in the first month."""
    mig = res.migration
    if mig.counts is None:
        return pd.DataFrame({"segments found": ["no (first month)"]},
                            index=pd.Index([mig.previous_month], name="previous month"))
    t = mig.counts.copy()
    t = t.loc[t.sum(axis=1) > 0, t.sum(axis=0) > 0]
    t["total"] = t.sum(axis=1)
    return plots.table_for_readers(t, {c: "count" for c in t.columns}, max_rows=None)


def migration_takeaway(res: SegmentsResult) -> str:
    """Share of last month's customers who kept their segment, moves into the watched segments, new
    customers; in the first month, a sentence saying there is no migration yet."""
    mig = res.migration
    if mig.counts is None:
        return (f"First month: no segments from {mig.previous_month} were found, so there is no migration to "
                f"show. From next month this section shows how customers moved between segments.")
    body = mig.counts.drop(index=NEW_ROW, errors="ignore")
    stayed = sum(body.loc[s, s] for s in body.index if s in body.columns)
    total = int(body.to_numpy().sum()) or 1
    moved = ", ".join(f"{n:,} into {s}" for s, n in mig.moved_in.items())
    new = int(mig.counts.loc[NEW_ROW].sum()) if NEW_ROW in mig.counts.index else 0
    return (f"Since {mig.previous_month}, {stayed / total:.1%} of last month's {total:,} customers kept their "
            f"segment; {moved} (customers who were elsewhere last month). {new:,} customers are new this month.")


def plot_migration(res: SegmentsResult, ax=None):
    """Row shares of the transition matrix (from last month's segment to this month's); draws
    nothing and returns None in the first month."""
    mig = res.migration
    if mig.counts is None:
        return None
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 6.5))
    t = mig.counts.loc[mig.counts.sum(axis=1) > 0, mig.counts.sum(axis=0) > 0]
    shares = t.div(t.sum(axis=1), axis=0) * 100
    sns.heatmap(shares, annot=True, fmt=".0f", cmap="crest", ax=ax, cbar_kws={"label": "% of the row"},
                annot_kws={"fontsize": 8})
    ax.set_title(f"Segment migration since {mig.previous_month} (% of last month's segment)")
    ax.set_xlabel("segment this month")
    ax.set_ylabel("segment last month")
    ax.set_xticklabels(ax.get_xticklabels(), rotation=30, ha="right")
    return ax
