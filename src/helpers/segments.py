"""RFM scores, named segments, k-means clusters and segment migration (stage 03).

Per customer at ``as_of`` (one Ibis expression over the clean order lines, see ``rfm_expr``):

===================  ==========================================================================
column               meaning
===================  ==========================================================================
recency_days         days from the last purchase to ``as_of`` (0 = bought on the cut-off day)
frequency            distinct orders with at least one purchase line (returns are not orders)
monetary             net revenue: purchases minus returns, shop currency
avg_order_value      mean value of the purchase orders, each net of its own returns (a credit note
                     booked as its own document is no order: see ``customer_facts``)
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
for the migration), writes segments.parquet and returns a :class:`SegmentsResult`, from which
``helpers.pages.segments`` draws notebook 03's tables, figures and takeaways; ``build`` computes the
same result from tables, without files.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from helpers import artifacts, engine, plots
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


def silhouettes(S: np.ndarray, labelings: list[np.ndarray], chunk: int = 2000) -> list[float]:
    """Mean silhouette of each labelling of the rows of `S` (Rousseeuw 1987), as sklearn's
    ``silhouette_score`` but computing the pairwise distances once for all labellings (chunked,
    so memory stays at chunk x n) and summing them per cluster of every labelling in one product."""
    n, rows = len(S), np.arange(len(S))
    sq = (S * S).sum(axis=1)
    offsets = np.cumsum([0] + [int(lab.max()) + 1 for lab in labelings])
    onehot = np.zeros((n, offsets[-1]))  # the labellings' cluster indicators side by side
    for lab, start in zip(labelings, offsets):
        onehot[rows, start + lab] = 1.0
    sums = np.empty((n, offsets[-1]))  # per row: summed distance to each cluster of each labelling
    for start in range(0, n, chunk):
        dist = S[start:start + chunk] @ S.T
        dist *= -2
        dist += sq[start:start + chunk, None]
        dist += sq[None, :]
        np.maximum(dist, 0, out=dist)
        np.sqrt(dist, out=dist)
        sums[start:start + chunk] = dist @ onehot
    out = []
    for lab, lo, hi in zip(labelings, offsets[:-1], offsets[1:]):
        total, size = sums[:, lo:hi], onehot[:, lo:hi].sum(axis=0)
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
            demo = groups.merge(engine.to_pandas(customers.select("customer_id", *cols)), on="customer_id", how="left")
            cols = [c for c in cols if demo[c].notna().any()]  # an empty export column is absent, not "(unknown) 100 %"
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
        j = lines.select("customer_id", "amount", *dims).inner_join(engine.memtable(groups), "customer_id")
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

    ``counts`` is None in a shop's first month (no segments.parquet the month before); the page's
    table, takeaway and figure then say so instead.
    """

    previous_month: str                 # 'YYYY-MM'
    counts: pd.DataFrame | None = None  # rows: previous segment (+ NEW_ROW), columns: current segment (+ GONE_COL)
    moved_in: dict[str, int] = field(default_factory=dict)  # watched segment -> customers moved into it


def migration(previous: pd.DataFrame | None, current: pd.DataFrame, previous_month: str,
              seg_cfg: SegmentsConfig) -> Migration:
    """From last month's segments (customer_id, rfm_segment; None in the first month) to `current`'s."""
    if previous is None:
        return Migration(previous_month)
    counts = migration_matrix(previous, current, list(seg_cfg.grid))
    return Migration(previous_month, counts, moved_into(counts, seg_cfg.watch))


def segment_cluster_counts(customers: pd.DataFrame, segment_order: list[str], clusters: list[str]) -> pd.DataFrame:
    """Customers per named segment (rows, grid order, empty segments left out) x cluster (columns)."""
    t = pd.crosstab(customers["rfm_segment"], customers["cluster_label"])
    t = t.reindex(index=[s for s in segment_order if s in t.index], columns=clusters, fill_value=0)
    t.index.name, t.columns.name = "segment", "cluster"
    return t


# --------------------------------------------------------------------------- the stage

@dataclass
class SegmentsResult:
    """What notebook 03 shows (its page, ``helpers.pages.segments``, draws every table, figure and takeaway).

    ``customers`` is what segments.parquet holds (+ fm_score, tenure_days); ``settings`` is the
    config's grid (its order is the order of the segments in every table) and watch list.
    """

    customers: pd.DataFrame
    k_scores: pd.DataFrame           # k, inertia, silhouette per k tried
    centroids: pd.DataFrame          # index cluster_label, columns FEATURES (standardised units)
    pca: pd.DataFrame                # a sample: pc1, pc2, cluster_label
    mix: pd.DataFrame                # by, group, dimension, value, share
    crosstab: pd.DataFrame           # customers per segment (rows) x cluster (columns)
    migration: Migration             # from last month's segments (counts None in the first month)
    settings: SegmentsConfig = field(default_factory=SegmentsConfig)
    notes: list[str] = field(default_factory=list)
    silhouette_sample: int = 0
    pca_explained: float = 0.0       # share of the features' variance the two PCA axes keep
    currency: str = "EUR"

    @property
    def k(self) -> int:
        """The number of clusters fitted."""
        return len(self.centroids)

    @property
    def segment_order(self) -> list[str]:
        """The named segments in the config's grid order."""
        return list(self.settings.grid)


def pca_sample(X: np.ndarray, labels: pd.Series, size: int, random_state: int) -> tuple[pd.DataFrame, float]:
    """The first two principal components of `X` for a fixed sample of `size` rows (pc1, pc2,
    cluster_label from `labels`), and the share of the variance the two axes keep (0 when `X` has
    fewer than 2 rows or no spread)."""
    pts = _sample(len(X), size, random_state)
    if len(X) >= 2 and np.ptp(X, axis=0).any():
        pca_model = PCA(n_components=2, random_state=random_state).fit(X)
        explained = float(pca_model.explained_variance_ratio_.sum())
        coords = pca_model.transform(X[pts])
        coords[:, 0] *= np.sign(coords[:, 0].sum() or 1)  # PCA's sign is arbitrary; fix it for stable figures
        coords[:, 1] *= np.sign(coords[:, 1].sum() or 1)
    else:
        coords, explained = np.zeros((len(pts), 2)), 0.0
    return pd.DataFrame({"pc1": coords[:, 0], "pc2": coords[:, 1], "cluster_label": labels.to_numpy()[pts]}), explained


def build(orders: ir.Table, as_of: str, cfg: Config, customers: ir.Table | None = None,
          previous: pd.DataFrame | None = None, previous_month: str | None = None) -> SegmentsResult:
    """RFM, scores, named segments, clusters, profile mixes and migration from the clean tables (no files).

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
    pca, explained = pca_sample(X, rfm["cluster_label"], min(PCA_POINTS, sc.silhouette_sample), sc.random_state)
    previous_month = previous_month or artifacts.previous_month(str(as_of)[:7])
    return SegmentsResult(customers=rfm, k_scores=k_scores, centroids=centroids, pca=pca,
                          mix=profile_mix(rfm, orders, customers, as_of, cfg.kpis.age_bands),
                          crosstab=segment_cluster_counts(rfm, list(sc.grid), list(centroids.index)),
                          migration=migration(previous, rfm, previous_month, sc), settings=sc,
                          notes=score_notes(rfm), silhouette_sample=min(len(X), sc.silhouette_sample),
                          pca_explained=explained, currency=cfg.shop.currency)


def run(processed_dir: str | Path, as_of: str, cfg: Config, con=None) -> SegmentsResult:
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
