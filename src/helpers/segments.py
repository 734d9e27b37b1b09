"""RFM scores, named segments, k-means clusters and segment migration (stage 03).

Per customer at ``as_of`` (one Ibis expression over the clean order lines, see ``rfm_expr``):

===================  ==========================================================================
column               meaning
===================  ==========================================================================
recency_days         days from the last purchase to ``as_of`` (0 = bought on the cut-off day)
frequency            distinct orders with at least one purchase line (returns are not orders)
monetary             net revenue: purchases minus returns, shop currency
avg_order_value      monetary / frequency
tenure_days          days from the first purchase to ``as_of`` (used by k-means only)
===================  ==========================================================================

Scores 1-5 are quintiles of the mid-rank (``quintile_scores``): ties share one score, a shop of any
size gets valid scores, and a measure with fewer than 5 distinct values uses fewer levels (reported
by ``score_notes``). R is 5 for the most recent customers, F and M are 5 for the most/largest.
FM = (F + M) / 2 rounded half up, and the named segment is the cell (R, FM) of the grid in the
config (``segments.grid``), which is checked on load to cover each of the 25 cells exactly once.

k-means runs on log1p-transformed, standardised recency, frequency, monetary, tenure and average
order value. k is chosen in ``segments.k_min..k_max`` by the silhouette on a fixed random sample
(silhouette costs O(n^2)); the final model is fitted on every customer with a fixed random_state.
Clusters are numbered by centroid value (1 = highest monetary) and named from their centroids.

``run(processed_dir, as_of, cfg)`` reads the month's clean tables (and last month's segments.parquet,
for the migration), writes segments.parquet and returns a :class:`Segmentation`, whose methods give
notebook 03 each table, figure and takeaway; ``build`` does the same from tables, without files.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import ibis
import ibis.expr.types as ir
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from helpers import artifacts, plots
from helpers.config import Config, SegmentsConfig
from helpers.customer_facts import (
    SCORED,
    assign_segments,
    quintile_scores,
    rfm_scores,
    rfm_table,
)
from helpers.demographics import UNKNOWN, age_band
from helpers.engine import connect
from helpers.plots import axes_or_new, thousands

FEATURES = ["recency_days", "frequency", "monetary", "tenure_days", "avg_order_value"]
# The measures in the reports' one vocabulary (plots.DISPLAY_NAMES): 03's frequency counts orders
# (lifetimes' frequency in 04 counts repeat purchases), its recency is days since the last order.
MEASURE_TEXT = {"recency_days": plots.display_name("recency_days"), "frequency": plots.display_name("orders"),
                "monetary": plots.display_name("monetary"), "avg_order_value": plots.display_name("avg_order_value"),
                "tenure_days": plots.display_name("tenure_days")}
MONEY_MEASURES = ("monetary", "avg_order_value")
PCA_POINTS = 3000  # customers drawn on the PCA scatter
NEW_ROW, GONE_COL = "(new this month)", "(not in this month)"


# --------------------------------------------------------------------------- scores and named segments


def score_notes(rfm: pd.DataFrame) -> list[str]:
    """One sentence per measure whose score uses fewer than the 5 levels (few distinct values or a
    large tie), and one for a shop with fewer than 5 customers."""
    notes = []
    if 0 < len(rfm) < 5:
        notes.append(f"Only {len(rfm)} customer(s): scores are valid but cannot spread over 5 levels.")
    for score, (col, higher) in SCORED.items():
        if rfm.empty:
            break
        levels = quintile_scores(rfm[col], higher).nunique()
        if levels == 5:
            continue
        distinct = rfm[col].nunique()
        mode = rfm[col].mode().iloc[0]
        name = MEASURE_TEXT[col].split(" (")[0]
        why = (f"{name} has only {distinct} distinct value{'s' if distinct != 1 else ''}" if distinct < 5 else
               f"{(rfm[col] == mode).mean():.0%} of customers share the same {name} ({mode:,.0f})")
        notes.append(f"The {score[0].upper()} score uses {levels} of the 5 levels because {why}; "
                     f"tied customers always share one score.")
    return notes


def grid_table(seg_cfg: SegmentsConfig) -> pd.DataFrame:
    """The segment grid as it is applied: R score rows (5 at the top) x FM score columns."""
    cells = seg_cfg.grid_cells()
    df = pd.DataFrame([[cells[(r, fm)] for fm in range(1, 6)] for r in range(5, 0, -1)],
                      index=pd.Index(range(5, 0, -1), name="R score"), columns=pd.Index(range(1, 6), name="FM score"))
    return df


# --------------------------------------------------------------------------- k-means

def cluster_features(rfm: pd.DataFrame) -> np.ndarray:
    """log1p of the k-means features (negatives clipped to 0), standardised to mean 0 and sd 1."""
    X = np.column_stack([np.log1p(rfm[c].to_numpy(dtype="float64").clip(min=0)) for c in FEATURES])
    return StandardScaler().fit_transform(X)


def _sample(n: int, size: int, random_state: int) -> np.ndarray:
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(random_state).choice(n, size=size, replace=False))


def silhouettes(S: np.ndarray, labelings: list[np.ndarray], chunk: int = 1000) -> list[float]:
    """Mean silhouette of each labelling of the rows of `S` (Rousseeuw 1987), as sklearn's
    ``silhouette_score`` but computing the pairwise distances once for all labellings (chunked,
    so memory stays at chunk x n)."""
    n = len(S)
    sq = (S * S).sum(axis=1)
    onehots = [np.eye(lab.max() + 1)[lab] for lab in labelings]
    sums = [np.empty((n, o.shape[1])) for o in onehots]  # per row: summed distance to each cluster
    for start in range(0, n, chunk):
        blk = S[start:start + chunk]
        dist = np.sqrt(np.maximum(sq[start:start + chunk, None] + sq[None, :] - 2 * blk @ S.T, 0))
        for o, total in zip(onehots, sums):
            total[start:start + chunk] = dist @ o
    out, rows = [], np.arange(n)
    for lab, o, total in zip(labelings, onehots, sums):
        size = o.sum(axis=0)
        own = size[lab]
        a = total[rows, lab] / np.maximum(own - 1, 1)
        mean = total / np.maximum(size, 1)
        mean[rows, lab] = np.inf
        b = mean.min(axis=1)
        s = np.where(own > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-12), 0.0)  # singleton clusters score 0
        out.append(float(s.mean()))
    return out


def choose_k(X: np.ndarray, k_min: int, k_max: int, sample_size: int, random_state: int) -> pd.DataFrame:
    """Inertia (elbow) and silhouette of k-means for each k, on one fixed random sample of rows.

    Returns columns k, inertia, silhouette; a k needs more distinct rows than clusters, so a tiny
    or uniform shop may get fewer rows (none: everyone is one cluster).
    """
    S = X[_sample(len(X), sample_size, random_state)]
    distinct = len(np.unique(S, axis=0)) if len(S) else 0
    ks, inertia, labels = [], [], []
    with threadpool_limits(1):  # small problems: threads only add overhead (and contention on a busy host)
        for k in range(k_min, min(k_max, distinct - 1) + 1):
            km = KMeans(n_clusters=k, n_init=4, random_state=random_state).fit(S)
            ks.append(k)
            inertia.append(float(km.inertia_))
            labels.append(km.labels_)
    return pd.DataFrame({"k": ks, "inertia": inertia, "silhouette": silhouettes(S, labels) if labels else []},
                        columns=["k", "inertia", "silhouette"])


def best_k(k_scores: pd.DataFrame) -> int:
    """The k with the highest silhouette (the smaller k on a tie); 1 when no k could be tried."""
    if k_scores.empty:
        return 1
    return int(k_scores.sort_values(["silhouette", "k"], ascending=[False, True]).iloc[0]["k"])


def fit_clusters(X: np.ndarray, k: int, random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """k-means on every row; returns (cluster 1..k per row, centroids k x features).

    Clusters are renumbered by centroid monetary (then recency) so cluster 1 is the most valuable
    and the numbering does not depend on k-means' arbitrary label order.
    """
    if k <= 1 or len(X) <= k:
        return np.ones(len(X), dtype="int64"), X.mean(axis=0, keepdims=True) if len(X) else np.zeros((1, X.shape[1]))
    with threadpool_limits(1):  # one thread: identical results on any host, and no oversubscription
        km = KMeans(n_clusters=k, n_init=4, random_state=random_state).fit(X)
    m, r = FEATURES.index("monetary"), FEATURES.index("recency_days")
    order = np.lexsort((km.cluster_centers_[:, r], -km.cluster_centers_[:, m]))
    rank = np.empty(k, dtype="int64")
    rank[order] = np.arange(1, k + 1)
    return rank[km.labels_], km.cluster_centers_[order]


def _level(z: float, high: str, mid: str, low: str) -> str:
    return high if z >= 0.5 else low if z <= -0.5 else mid


def name_clusters(centroids: np.ndarray) -> list[str]:
    """A name per centroid (standardised units): value from monetary, activity from recency, habit
    from frequency, each high/middle/low at +-0.5 sd, e.g. "high value, active, frequent"."""
    col = {c: i for i, c in enumerate(FEATURES)}
    names: list[str] = []
    for c in centroids:
        name = ", ".join([
            _level(c[col["monetary"]], "high value", "mid value", "low value"),
            _level(-c[col["recency_days"]], "active", "cooling", "lapsed"),
            _level(c[col["frequency"]], "frequent", "occasional", "rare"),
        ])
        dup = sum(n == name or n.startswith(name + " (") for n in names)
        names.append(f"{name} ({dup + 1})" if dup else name)
    return names


# --------------------------------------------------------------------------- profiles

def profile_mix(rfm: pd.DataFrame, orders: ir.Table, customers: ir.Table | None, as_of: str,
                age_bands=(25, 35, 45, 55, 65)) -> pd.DataFrame:
    """Share of each value of gender, age band, region (customers), category and payment method
    (purchase revenue, joined on the engine) within each segment and cluster.

    Columns: by (rfm_segment | cluster_label), group, dimension, value, share. Dimensions whose
    column is missing or empty are left out.
    """
    groups = rfm[["customer_id", "rfm_segment", "cluster_label"]].astype({"rfm_segment": str, "cluster_label": str})
    parts = []

    def add(frame: pd.DataFrame, dimension: str, weight: str | None) -> None:
        for by in ("rfm_segment", "cluster_label"):
            w = frame.groupby([by, "value"], observed=True)[weight].sum() if weight else \
                frame.groupby([by, "value"], observed=True).size()
            share = (w / w.groupby(level=0).transform("sum")).rename("share").reset_index()
            parts.append(share.rename(columns={by: "group"}).assign(by=by, dimension=dimension))

    if customers is not None:
        cols = [c for c in ("gender", "birth_year", "region") if c in customers.columns]
        if cols:
            demo = groups.merge(customers.select("customer_id", *cols).to_pandas(), on="customer_id", how="left")
            if "gender" in cols:
                add(demo.assign(value=demo["gender"].fillna(UNKNOWN)), "gender", None)
            if "birth_year" in cols:
                add(demo.assign(value=age_band(demo["birth_year"], as_of, age_bands)), "age band", None)
            if "region" in cols:
                add(demo.assign(value=demo["region"].fillna(UNKNOWN)), "region", None)
    day = ibis.date(str(as_of)[:10])
    lines = orders.filter((orders.order_date.date() <= day) & ~orders.is_return)
    dims = {c: d for c, d in (("category", "category"), ("payment_method", "payment method")) if c in orders.columns}
    if dims:  # one join of the order lines to the groups, aggregated to a few thousand rows on the engine
        j = lines.select("customer_id", "amount", *dims).inner_join(ibis.memtable(groups), "customer_id")
        cents = (j.amount * 100).round().cast("int64").sum()  # whole cents: order-independent sums
        agg = j.group_by(["rfm_segment", "cluster_label", *dims]).agg(revenue=cents).to_pandas()
        for col, dimension in dims.items():
            if agg[col].notna().any():
                add(agg.assign(value=agg[col].fillna(UNKNOWN)), dimension, "revenue")
    if not parts:
        return pd.DataFrame(columns=["by", "group", "dimension", "value", "share"])
    mix = pd.concat(parts, ignore_index=True)[["by", "group", "dimension", "value", "share"]]
    return mix.sort_values(["by", "group", "dimension", "share", "value"], ascending=[True, True, True, False, True],
                           ignore_index=True)


# --------------------------------------------------------------------------- migration

def migration_matrix(previous: pd.DataFrame, current: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Customers from each previous segment (rows) to each current segment (columns).

    Rows of previous segments sum to that segment's size last month; customers new this month
    form the row NEW_ROW, and last month's customers absent now (a data correction) the column GONE_COL.
    """
    j = previous[["customer_id", "rfm_segment"]].merge(current[["customer_id", "rfm_segment"]], on="customer_id",
                                                      how="outer", suffixes=("_from", "_to"))
    frm = j["rfm_segment_from"].astype(object).where(j["rfm_segment_from"].notna(), NEW_ROW)
    to = j["rfm_segment_to"].astype(object).where(j["rfm_segment_to"].notna(), GONE_COL)
    t = pd.crosstab(frm, to)
    extra_rows = [r for r in t.index if r not in order and r != NEW_ROW]
    extra_cols = [c for c in t.columns if c not in order and c != GONE_COL]
    rows = order + extra_rows + ([NEW_ROW] if NEW_ROW in t.index else [])
    cols = order + extra_cols + ([GONE_COL] if GONE_COL in t.columns else [])
    t = t.reindex(index=rows, columns=cols, fill_value=0)
    t.index.name, t.columns.name = "from (last month)", "to (this month)"
    return t


def moved_into(counts: pd.DataFrame, watch: list[str]) -> dict[str, int]:
    """Last month's customers who are now in each watched segment but were elsewhere last month."""
    body = counts.drop(index=NEW_ROW, errors="ignore")
    return {s: int(body[s].sum() - (body.loc[s, s] if s in body.index else 0)) if s in body else 0 for s in watch}


@dataclass
class Migration:
    """Where last month's customers are now (notebook 03, "Segment migration").

    ``counts`` is None in a shop's first month (no segments.parquet the month before); the table,
    takeaway and figure then say so instead.
    """

    previous_month: str                 # 'YYYY-MM'
    counts: pd.DataFrame | None = None  # rows: previous segment (+ NEW_ROW), columns: current segment (+ GONE_COL)
    moved_in: dict[str, int] = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        """Counts with a total per row, or a one-row note in the first month."""
        if self.counts is None:
            return pd.DataFrame({"segments found": ["no (first month)"]},
                                index=pd.Index([self.previous_month], name="previous month"))
        t = self.counts.copy()
        t = t.loc[t.sum(axis=1) > 0, t.sum(axis=0) > 0]
        t["total"] = t.sum(axis=1)
        return plots.table_for_readers(t, {c: "count" for c in t.columns}, max_rows=None)

    def takeaway(self) -> str:
        if self.counts is None:
            return (f"First month: no segments from {self.previous_month} were found, so there is no migration to "
                    f"show. From next month this section shows how customers moved between segments.")
        body = self.counts.drop(index=NEW_ROW, errors="ignore")
        stayed = sum(body.loc[s, s] for s in body.index if s in body.columns)
        total = int(body.to_numpy().sum()) or 1
        moved = ", ".join(f"{n:,} into {s}" for s, n in self.moved_in.items())
        new = int(self.counts.loc[NEW_ROW].sum()) if NEW_ROW in self.counts.index else 0
        return (f"Since {self.previous_month}, {stayed / total:.1%} of last month's {total:,} customers kept their "
                f"segment; {moved} (customers who were elsewhere last month). {new:,} customers are new this month.")

    def plot(self, ax=None):
        """Row shares of the transition matrix (from last month's segment to this month's); draws
        nothing and returns None in the first month."""
        if self.counts is None:
            return None
        if ax is None:
            _, ax = plt.subplots(figsize=(10, 6.5))
        t = self.counts.loc[self.counts.sum(axis=1) > 0, self.counts.sum(axis=0) > 0]
        shares = t.div(t.sum(axis=1), axis=0) * 100
        sns.heatmap(shares, annot=True, fmt=".0f", cmap="crest", ax=ax, cbar_kws={"label": "% of the row"},
                    annot_kws={"fontsize": 8})
        ax.set_title(f"Segment migration since {self.previous_month} (% of last month's segment)")
        ax.set_xlabel("segment this month")
        ax.set_ylabel("segment last month")
        ax.set_xticklabels(ax.get_xticklabels(), rotation=30, ha="right")
        return ax


def migration(previous: pd.DataFrame | None, current: pd.DataFrame, previous_month: str,
              seg_cfg: SegmentsConfig) -> Migration:
    """From last month's segments (customer_id, rfm_segment; None in the first month) to `current`'s."""
    if previous is None:
        return Migration(previous_month)
    counts = migration_matrix(previous, current, list(seg_cfg.grid))
    return Migration(previous_month, counts, moved_into(counts, seg_cfg.watch))


# --------------------------------------------------------------------------- the stage

@dataclass
class Segmentation:
    """Everything notebook 03 shows, one method per table, figure and takeaway.

    ``customers`` is what segments.parquet holds (+ fm_score, tenure_days); ``settings`` is the
    config's grid (its order is the order of the segments in every table) and watch list.
    """

    customers: pd.DataFrame
    k_scores: pd.DataFrame
    centroids: pd.DataFrame          # index cluster_label, columns FEATURES (standardised units)
    pca: pd.DataFrame                # a sample: pc1, pc2, cluster_label
    mix: pd.DataFrame                # by, group, dimension, value, share
    settings: SegmentsConfig = field(default_factory=SegmentsConfig)
    notes: list[str] = field(default_factory=list)
    silhouette_sample: int = 0
    pca_explained: float = 0.0       # share of the features' variance the two PCA axes keep
    currency: str = "EUR"
    previous_month: str = ""         # 'YYYY-MM'
    previous: pd.DataFrame | None = None  # last month's customer_id, rfm_segment; None in the first month

    @property
    def k(self) -> int:
        return len(self.centroids)

    @property
    def segment_order(self) -> list[str]:
        return list(self.settings.grid)

    def grid_table(self) -> pd.DataFrame:
        return grid_table(self.settings)

    def migration(self) -> Migration:
        """How last month's customers moved between segments (a first-month note without last month)."""
        return migration(self.previous, self.customers, self.previous_month, self.settings)

    def rfm_summary(self) -> pd.DataFrame:
        """Quantiles of recency, frequency, monetary and average order value over the customers."""
        c = self.customers
        cols = ["recency_days", "frequency", "monetary", "avg_order_value"]
        df = c[cols].quantile([0, 0.25, 0.5, 0.75, 0.9, 1]).T
        df.columns = ["min", "25%", "median", "75%", "90%", "max"]
        df.insert(0, "mean", c[cols].mean())
        kinds = {"recency_days": "days", "frequency": "number1", "monetary": "money2", "avg_order_value": "money2"}
        out = pd.DataFrame([[plots.format_cell(v, kinds[x]) for v in df.loc[x]] for x in cols], columns=df.columns,
                           index=pd.Index([self._measure(x) for x in cols], name="measure"))
        return out

    def score_table(self) -> pd.DataFrame:
        """What each score means: customers and the value range of its measure, per score 1..5."""
        c = self.customers
        rows = {}
        for score, (col, _) in SCORED.items():
            g = c.groupby(score)[col]
            rng = g.min().map("{:,.0f}".format) + " to " + g.max().map("{:,.0f}".format)
            rows[(score[0].upper(), self._measure(col))] = rng.reindex(range(1, 6)).fillna("-")
            counts = g.size().reindex(range(1, 6)).fillna(0).astype(int)
            rows[(score[0].upper(), "customers")] = counts.map("{:,}".format)
        df = pd.DataFrame(rows).T
        df.columns = pd.Index([f"score {i}" for i in range(1, 6)])
        df.index.names = ["score", "row"]
        return df

    def _measure(self, col: str) -> str:
        """A measure's reader name, money with the currency ('net revenue (EUR)')."""
        return plots.with_currency(MEASURE_TEXT[col], self.currency) if col in MONEY_MEASURES else MEASURE_TEXT[col]

    def score_note(self) -> str:
        """The score notes, or a sentence saying every measure spreads over all 5 levels."""
        return "\n".join(self.notes) or ("Recency, frequency and monetary each have at least 5 distinct values, so all "
                                        "three scores use the full 1-5 range (ties share a score).")

    def plot_segment_shares(self, ax=None):
        """Share of customers and of net revenue per named segment (horizontal bars, grid order)."""
        if ax is None:
            _, ax = plt.subplots(figsize=(9, 5.5))
        c = self.customers
        revenue = c["monetary"].clip(lower=0).sum() or 1.0
        g = c.groupby("rfm_segment", observed=False)
        d = pd.DataFrame({"customers": g.size() / max(len(c), 1),
                          "net revenue": g["monetary"].apply(lambda m: m.clip(lower=0).sum()) / revenue})
        d = d.reindex(self.segment_order).fillna(0) * 100
        long = d.rename_axis("segment").reset_index().melt("segment", var_name="share of", value_name="percent")
        sns.barplot(data=long, y="segment", x="percent", hue="share of", ax=ax, palette=["#8da0cb", "#1b9e77"])
        for container in ax.containers:
            ax.bar_label(container, fmt="{:.0f}%", padding=2, fontsize=8)
        ax.set_title("Named segments: share of customers and of net revenue")
        ax.set_xlabel("share (%)")
        ax.set_ylabel("")
        ax.legend(title="", loc="lower right", frameon=False)
        return ax

    def segments_takeaway(self) -> str:
        watch = self.settings.watch
        c = self.customers
        n = max(len(c), 1)
        revenue = c["monetary"].clip(lower=0).sum() or 1.0
        size = c["rfm_segment"].value_counts()
        rev = c.groupby("rfm_segment", observed=True)["monetary"].apply(lambda m: m.clip(lower=0).sum())
        top = rev.idxmax()
        w = c["rfm_segment"].isin(watch)
        text = (f"{len(c):,} customers in {int((size > 0).sum())} segments. "
                f"{top} is the segment with the most revenue: "
                f"{size[top] / n:.1%} of customers bring {rev[top] / revenue:.1%} of net revenue.")
        if not watch:  # segments.watch: [] watches no segment
            return text
        return (f"{text} {', '.join(watch)} {'together hold' if len(watch) > 1 else 'holds'} {w.mean():.1%} of "
                f"customers and {c.loc[w, 'monetary'].clip(lower=0).sum() / revenue:.1%} of revenue.")

    def profile_table(self, by: str = "rfm_segment") -> pd.DataFrame:
        """Per segment (or cluster_label): size, shares of customers and of net revenue, medians of
        recency, orders, revenue and order value. Empty groups are left out."""
        c = self.customers
        g = c.groupby(by, observed=True)
        revenue = c["monetary"].clip(lower=0).sum() or 1.0
        df = pd.DataFrame({
            "customers": g.size().map("{:,}".format),
            "share of customers": (g.size() / max(len(c), 1)).map("{:.1%}".format),
            "share of net revenue": (g["monetary"].apply(lambda m: m.clip(lower=0).sum()) / revenue).map("{:.1%}".format),
            f"median {MEASURE_TEXT['recency_days']}": g["recency_days"].median().map("{:,.0f}".format),
            f"median {MEASURE_TEXT['frequency']}": g["frequency"].median().map("{:,.1f}".format),
            f"median {self._measure('monetary')}": g["monetary"].median().map("{:,.0f}".format),
            f"median {self._measure('avg_order_value')}": g["avg_order_value"].median().map("{:,.0f}".format),
        })
        return self._group_index(by, df)

    def mix_table(self, by: str = "rfm_segment", top: int = 2) -> pd.DataFrame:
        """Per segment (or cluster_label): the `top` most common values of each profile dimension
        with their shares, e.g. gender "F 52% · M 41%" (customers; categories and payment methods by
        purchase revenue). Dimensions without data are left out."""
        mix = self.mix[self.mix["by"] == by]
        cols = {}
        for dimension, d in mix.groupby("dimension", sort=False):
            cols[dimension] = d.groupby("group").apply(
                lambda x: " · ".join(f"{v} {s:.0%}" for v, s in zip(x["value"].head(top), x["share"].head(top))))
        df = pd.DataFrame(cols)
        order = [d for d in ("gender", "age band", "region", "category", "payment method") if d in df.columns]
        return self._group_index(by, df[order] if order else df)

    def plot_rfm_heatmap(self, ax=None):
        """R score (rows, 5 at the top) x F score: colour = customers, text = customers and mean monetary."""
        if ax is None:
            _, ax = plt.subplots(figsize=(9, 5.5))
        c = self.customers
        g = c.groupby(["r_score", "f_score"])
        n = g.size().unstack().reindex(index=range(5, 0, -1), columns=range(1, 6))
        m = g["monetary"].mean().unstack().reindex(index=range(5, 0, -1), columns=range(1, 6))
        text = n.copy().astype(object)
        for r in n.index:
            for f in n.columns:
                text.loc[r, f] = ("" if pd.isna(n.loc[r, f]) else
                                  f"{n.loc[r, f]:,.0f}\n{self.currency} {m.loc[r, f]:,.0f}")
        sns.heatmap(n, mask=n.isna(), annot=text.to_numpy(), fmt="", cmap="crest", ax=ax,  # empty cells stay blank
                    cbar_kws={"label": "customers"}, annot_kws={"fontsize": 8})
        ax.set_title("Customers (and mean net revenue) per R and F score")
        ax.grid(False)
        ax.set_xlabel("F score (5 = most orders)")
        ax.set_ylabel("R score (5 = most recent)")
        ax.tick_params(axis="y", rotation=0)
        return ax

    def heatmap_takeaway(self) -> str:
        c = self.customers
        top = c[(c["r_score"] == 5) & (c["f_score"] == 5)]
        mean = c["monetary"].mean()
        if top.empty:
            return "No customer has both R = 5 and F = 5 (too few distinct values to fill the top cell)."
        return (f"The top cell (R = 5, F = 5) holds {len(top):,} customers ({len(top) / len(c):.1%}) spending "
                f"{self.currency} {top['monetary'].mean():,.0f} on average, "
                f"{top['monetary'].mean() / mean:.1f} times the "
                f"mean customer ({self.currency} {mean:,.0f}).")

    def plot_k_choice(self, ax=None):
        """Elbow (inertia, left axis) and silhouette (right axis) per k, chosen k marked."""
        ax = axes_or_new(ax)
        k = self.k_scores
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
        ax2.grid(False)
        ax.axvline(self.k, color="grey", linestyle="--", linewidth=1)
        ax.set_title(f"Choosing k: elbow and silhouette (chosen k = {self.k})")
        lines = ax.get_lines()[:1] + ax2.get_lines()
        ax.legend(lines, [x.get_label() for x in lines], loc="upper center", frameon=False)
        return ax

    def k_table(self) -> pd.DataFrame:
        """Inertia and silhouette per k tried, with the chosen k marked."""
        df = self.k_scores.set_index("k")
        df["chosen"] = np.where(df.index == self.k, "yes", "")
        return plots.table_for_readers(df, {"inertia": "count", "silhouette": "number3"})

    def k_takeaway(self) -> str:
        if self.k_scores.empty:
            k_min = self.settings.k_min
            if self.silhouette_sample <= k_min < len(self.customers):
                return (f"The sample of {self.silhouette_sample:,} customers that scores each k (setting "
                        f"segments.silhouette_sample) is too small for {k_min} clusters, so everyone is in one "
                        f"cluster; raise it above {k_min}.")
            return "Too few distinct customers to compare cluster counts: everyone is in one cluster."
        s = self.k_scores.set_index("k")["silhouette"]
        return (f"k = {self.k} has the best silhouette ({s[self.k]:.3f}) among k = {s.index.min()}..{s.index.max()}, "
                f"scored on a fixed sample of {self.silhouette_sample:,} customers; k-means is then fitted on all "
                f"{len(self.customers):,} customers.")

    def clusters_takeaway(self) -> str:
        c = self.customers
        revenue = c["monetary"].clip(lower=0).sum() or 1.0
        g = c.groupby("cluster_label", observed=True)
        share, rev = g.size() / len(c), g["monetary"].apply(lambda m: m.clip(lower=0).sum()) / revenue
        big, best = share.idxmax(), rev.idxmax()
        s = f"The largest cluster, '{big}', holds {share[big]:.0%} of customers and {rev[big]:.0%} of revenue"
        if best != big:
            s += f"; '{best}' holds {share[best]:.0%} of customers and {rev[best]:.0%} of revenue"
        return s + "."

    def plot_snake(self, ax=None):
        """Snake plot: each cluster's centroid on the standardised log features."""
        ax = axes_or_new(ax)
        long = self.centroids.rename(columns=MEASURE_TEXT).reset_index().melt("cluster_label", var_name="feature",
                                                                               value_name="z")
        sns.lineplot(data=long, x="feature", y="z", hue="cluster_label", marker="o", sort=False, ax=ax)
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set_title("Cluster centroids (snake plot)")
        ax.set_xlabel("")
        ax.tick_params(axis="x", rotation=15)
        ax.set_ylabel("standardised log value (sd from the mean)")
        ax.legend(title="cluster", fontsize=8, frameon=False, bbox_to_anchor=(1.01, 1), loc="upper left")
        return ax

    def centroid_table(self) -> pd.DataFrame:
        """Cluster centroids in standard deviations from the mean of each (log) feature."""
        return plots.for_readers(self.centroids.rename(columns=MEASURE_TEXT).rename_axis("cluster").round(2))

    def plot_pca(self, ax=None):
        """2-D PCA of the clustering features for a fixed sample of customers, coloured by cluster."""
        ax = axes_or_new(ax)
        sns.scatterplot(data=self.pca, x="pc1", y="pc2", hue="cluster_label", s=10, alpha=0.6, linewidth=0, ax=ax)
        ax.set_title(f"Clusters on the first two principal components ({len(self.pca):,} sampled customers)")
        ax.set_xlabel("principal component 1")
        ax.set_ylabel("principal component 2")
        ax.legend(title="cluster", fontsize=8, frameon=False, bbox_to_anchor=(1.01, 1), loc="upper left", markerscale=2)
        return ax

    def pca_takeaway(self) -> str:
        return (f"The two axes keep {self.pca_explained:.0%} of the variation of the five features, so clusters that "
                f"overlap here may still be apart in the dimensions not shown.")

    def crosstab(self) -> pd.DataFrame:
        """Customers per named segment (rows, grid order) x cluster (columns)."""
        c = self.customers
        t = pd.crosstab(c["rfm_segment"], c["cluster_label"])
        t = t.reindex(index=[s for s in self.segment_order if s in t.index], columns=list(self.centroids.index),
                      fill_value=0)
        t.index.name, t.columns.name = "segment", "cluster"
        return t

    def crosstab_table(self) -> pd.DataFrame:
        """`crosstab` for reading: customers with thousands separators."""
        t = self.crosstab()
        return plots.table_for_readers(t, {c: "count" for c in t.columns}, max_rows=None)

    def plot_crosstab(self, ax=None):
        """Segment x cluster: colour and text = share of the segment's customers in each cluster."""
        if ax is None:
            _, ax = plt.subplots(figsize=(10, 6))
        t = self.crosstab()
        shares = t.div(t.sum(axis=1).replace(0, 1), axis=0)
        sns.heatmap(shares * 100, annot=True, fmt=".0f", cmap="crest", ax=ax, cbar_kws={"label": "% of the segment"},
                    annot_kws={"fontsize": 8})
        ax.set_title("Where each named segment falls among the clusters (% of the segment)")
        ax.set_xlabel("cluster")
        ax.set_ylabel("")
        ax.set_xticklabels(ax.get_xticklabels(), rotation=30, ha="right")
        return ax

    def crosstab_takeaway(self) -> str:
        t = self.crosstab()
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

    def _order(self, by: str) -> list[str]:
        return self.segment_order if by == "rfm_segment" else list(self.centroids.index)

    def _group_index(self, by: str, df: pd.DataFrame) -> pd.DataFrame:
        df = df.reindex([o for o in self._order(by) if o in df.index])
        df.index.name = "segment" if by == "rfm_segment" else "cluster"
        return df


def build(orders: ir.Table, as_of: str, cfg: Config, customers: ir.Table | None = None,
          previous: pd.DataFrame | None = None, previous_month: str | None = None) -> Segmentation:
    """RFM, scores, named segments, clusters and profile mixes from the clean tables (no files).

    `previous` is last month's segments (customer_id, rfm_segment) for the migration, of the month
    `previous_month` (default: the month before `as_of`).
    """
    sc = cfg.segments
    rfm = rfm_scores(rfm_table(orders, as_of))
    rfm["rfm_segment"] = assign_segments(rfm, sc)
    X = cluster_features(rfm)
    k_scores = choose_k(X, sc.k_min, sc.k_max, sc.silhouette_sample, sc.random_state)
    labels, centers = fit_clusters(X, best_k(k_scores), sc.random_state)
    names = name_clusters(centers)
    rfm["cluster"] = labels
    rfm["cluster_label"] = pd.Categorical.from_codes(labels - 1, categories=names)
    centroids = pd.DataFrame(centers, columns=FEATURES, index=pd.Index(names, name="cluster_label"))
    pts = _sample(len(X), min(PCA_POINTS, sc.silhouette_sample), sc.random_state)
    if len(X) >= 2 and np.ptp(X, axis=0).any():
        pca_model = PCA(n_components=2, random_state=sc.random_state).fit(X)
        explained = float(pca_model.explained_variance_ratio_.sum())
        coords = pca_model.transform(X[pts])
        coords[:, 0] *= np.sign(coords[:, 0].sum() or 1)  # PCA's sign is arbitrary; fix it for stable figures
        coords[:, 1] *= np.sign(coords[:, 1].sum() or 1)
    else:
        coords, explained = np.zeros((len(pts), 2)), 0.0
    pca = pd.DataFrame({"pc1": coords[:, 0], "pc2": coords[:, 1],
                        "cluster_label": rfm["cluster_label"].to_numpy()[pts]})
    return Segmentation(customers=rfm, k_scores=k_scores, centroids=centroids, pca=pca,
                        mix=profile_mix(rfm, orders, customers, as_of, cfg.kpis.age_bands), settings=sc,
                        notes=score_notes(rfm), silhouette_sample=min(len(X), sc.silhouette_sample),
                        pca_explained=explained, currency=cfg.shop.currency,
                        previous_month=previous_month or artifacts.previous_month(str(as_of)[:7]), previous=previous)


def run(processed_dir: str | Path, as_of: str, cfg: Config, con=None) -> Segmentation:
    """Build the month's segmentation from its clean artifacts (and last month's segments.parquet,
    when there is one, for the migration) and write segments.parquet."""
    con = con or connect(cfg.engine)
    orders = artifacts.table(con, processed_dir, "orders_clean")
    customers = artifacts.table_if_exists(con, processed_dir, "customers_clean")
    last = artifacts.previous_dir(processed_dir)
    previous = artifacts.read_if_exists(last, "segments", columns=["customer_id", "rfm_segment"])
    seg = build(orders, as_of, cfg, customers, previous, artifacts.month_of(last))
    artifacts.write(processed_dir, "segments", segments_frame(seg.customers))
    return seg


def segments_frame(customers: pd.DataFrame) -> pd.DataFrame:
    """segments.parquet's rows: the declared columns, segment names as text, sorted by customer_id."""
    df = customers[artifacts.spec("segments").columns].astype({"rfm_segment": str, "cluster_label": str})
    return df.sort_values("customer_id", ignore_index=True)
