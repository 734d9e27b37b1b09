"""Segments stage: RFM on hand-built order lines, rank scores with ties, the segment grid, k-means, migration."""
from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import ibis
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import silhouette_score

import drawn
from helpers import artifacts, plots, segments
from helpers.config import ConfigError, SegmentsConfig, config_from_dict
from helpers.pages import segments as page

AS_OF = "2025-01-31"


def order_frame(rows) -> pd.DataFrame:
    """rows: (order_id, customer_id, date, amount[, is_return[, category[, payment_method]]])."""
    full = [tuple(r) + (False, "books", "card")[len(r) - 4:] for r in rows]
    df = pd.DataFrame(full, columns=["order_id", "customer_id", "order_date", "amount", "is_return", "category",
                                     "payment_method"])
    df["order_date"] = pd.to_datetime(df["order_date"])
    return df


def order_lines(rows) -> ibis.Table:
    return ibis.memtable(order_frame(rows))


def shop_rows(n_customers: int, orders_each=lambda i: 1 + i % 4, as_of: str = AS_OF) -> list[tuple]:
    """n customers; customer i buys `orders_each(i)` orders of 10 * (i + 1), the last one i days before `as_of`."""
    rows = []
    for i in range(n_customers):
        last = pd.Timestamp(as_of) - pd.Timedelta(days=i)
        for j in range(orders_each(i)):
            rows.append((f"O{i}-{j}", f"C{i:03d}", last - pd.Timedelta(days=30 * j), 10.0 * (i + 1)))
    return rows


def shop(n_customers: int, orders_each=lambda i: 1 + i % 4) -> ibis.Table:
    return order_lines(shop_rows(n_customers, orders_each))


def write_orders_clean(month_dir, rows) -> None:
    """A month folder holding orders_clean.parquet in its declared layout (what notebook 01 writes)."""
    df = order_frame(rows).astype({"order_date": "datetime64[us]"})
    df = df.assign(quantity=1, product_id="P1", status="completed", channel="web", currency="EUR",
                   discount_amount=0.0, coupon_code=None, source_row=range(len(df)))
    artifacts.write(month_dir, "orders_clean", df[artifacts.spec("orders_clean").columns])


@pytest.fixture()
def cfg():
    return config_from_dict({"segments": {"silhouette_sample": 500}})


# --------------------------------------------------------------------------- RFM

def test_rfm_counts_orders_not_lines_nets_returns_and_ignores_later_orders():
    orders = order_lines([
        ("O1", "A", "2025-01-01 09:00", 10.0),
        ("O1", "A", "2025-01-01 09:00", 20.0),
        ("O2", "A", "2025-01-10 18:00", 30.0),
        ("O2", "A", "2025-01-15 10:00", -5.0, True),   # return of a line of O2: not an order, but netted
        ("O3", "A", "2025-02-02 10:00", 99.0),         # after as_of
        ("O4", "B", "2025-01-31 23:59", 8.0),
    ])
    rfm = segments.rfm_table(orders, AS_OF).set_index("customer_id")
    assert rfm.loc["A"].to_dict() == {"recency_days": 21, "frequency": 2, "monetary": 55.0,
                                      "avg_order_value": 27.5, "tenure_days": 30}
    assert rfm.loc["B", "recency_days"] == 0 and rfm.loc["B", "frequency"] == 1


def test_customer_with_only_returns_gets_no_rfm_row():
    orders = order_lines([("O1", "A", "2025-01-01", 10.0), ("O9", "R", "2025-01-02", -4.0, True)])
    assert segments.rfm_table(orders, AS_OF)["customer_id"].tolist() == ["A"]


# --------------------------------------------------------------------------- scores

@pytest.mark.parametrize("values,higher,expected", [
    ([10, 20, 30, 40, 50], True, [1, 2, 3, 4, 5]),
    (list(range(10)), True, [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]),
    ([0, 10, 20, 30, 40], False, [5, 4, 3, 2, 1]),            # recency: fewer days = higher score
    ([1, 2, 3], True, [1, 3, 5]),                             # 3-customer shop
    ([7], True, [3]),                                         # one customer scores the middle
    ([1, 1, 1, 1], True, [3, 3, 3, 3]),                       # everyone tied
    ([1, 1, 1, 1, 2, 3], True, [2, 2, 2, 2, 4, 5]),           # a big tie shares one score
])
def test_quintile_scores_are_rank_based_and_robust_to_ties_and_tiny_shops(values, higher, expected):
    assert segments.quintile_scores(pd.Series(values), higher).tolist() == expected


def test_tied_customers_always_share_one_score():
    values = pd.Series(np.random.default_rng(0).integers(0, 7, size=1000))
    scores = segments.quintile_scores(values)
    assert scores.groupby(values).nunique().max() == 1
    assert scores.between(1, 5).all()


def test_fm_score_is_the_mean_of_f_and_m_rounded_half_up_on_real_scores():
    # five customers: frequency 1..5 gives F = 1..5; monetary chosen so M = 2, 5, 4, 1, 3. Each (F + M) is odd,
    # so every FM is a half-way case: (1+2)/2 = 1.5 -> 2, 3.5 -> 4, 3.5 -> 4, 2.5 -> 3, 4 -> 4.
    rfm = pd.DataFrame({"recency_days": [1, 2, 3, 4, 5], "frequency": [1, 2, 3, 4, 5],
                        "monetary": [20.0, 50.0, 40.0, 10.0, 30.0]})
    scored = segments.rfm_scores(rfm)
    assert scored["f_score"].tolist() == [1, 2, 3, 4, 5] and scored["m_score"].tolist() == [2, 5, 4, 1, 3]
    assert scored["fm_score"].tolist() == [2, 4, 4, 3, 4]


def test_fm_score_of_equal_f_and_m_is_that_score():
    rfm = pd.DataFrame({"recency_days": [1, 2, 3, 4, 5], "frequency": [1, 2, 3, 4, 5],
                        "monetary": [10.0, 20.0, 30.0, 40.0, 50.0]})
    assert segments.rfm_scores(rfm)["fm_score"].tolist() == [1, 2, 3, 4, 5]


def test_a_half_way_fm_score_puts_the_customer_in_the_grid_cell_above():
    # R = 1 and F, M = 2, 3: FM 2.5 rounds to 3, which the default grid calls 'At Risk' (rounded down to 2 it would be 'Lost')
    rfm = pd.DataFrame({"recency_days": [50, 40, 30, 20, 10], "frequency": [2, 1, 3, 4, 5],
                        "monetary": [30.0, 10.0, 20.0, 40.0, 50.0]})
    scored = segments.rfm_scores(rfm)
    first = scored.iloc[0]
    assert (first["r_score"], first["f_score"], first["m_score"], first["fm_score"]) == (1, 2, 3, 3)
    assert segments.assign_segments(scored, SegmentsConfig()).iloc[0] == DEFAULT_GRID[1][2]


def test_notes_say_when_a_measure_has_fewer_than_5_distinct_values():
    rfm = segments.rfm_table(shop(8, orders_each=lambda i: 1), AS_OF)
    notes = segments.score_notes(rfm)
    assert notes == ["The F score uses 1 of the 5 levels because orders has only 1 distinct value; "
                     "tied customers always share one score."]


# --------------------------------------------------------------------------- the grid

DEFAULT_GRID = {  # R score row (5 at the top) -> the segment of FM = 1..5, as documented in config/default.yml
    5: ["New Customers", "Potential Loyalists", "Potential Loyalists", "Champions", "Champions"],
    4: ["Promising", "Potential Loyalists", "Potential Loyalists", "Loyal Customers", "Loyal Customers"],
    3: ["About to Sleep", "About to Sleep", "Need Attention", "Loyal Customers", "Loyal Customers"],
    2: ["Hibernating", "Hibernating", "At Risk", "At Risk", "Can't Lose Them"],
    1: ["Lost", "Lost", "At Risk", "At Risk", "Can't Lose Them"],
}


@pytest.mark.parametrize("r", range(1, 6))
@pytest.mark.parametrize("fm", range(1, 6))
def test_every_grid_cell_gets_its_documented_segment(r, fm):
    scored = pd.DataFrame({"r_score": [r], "fm_score": [fm]})
    assert segments.assign_segments(scored, SegmentsConfig()).iloc[0] == DEFAULT_GRID[r][fm - 1]


def test_default_yml_grid_is_the_documented_grid(cfg):
    from helpers.config import load_config

    table = segments.grid_table(load_config("config/default.yml").segments)
    assert {r: table.loc[r].tolist() for r in range(1, 6)} == DEFAULT_GRID


def test_every_customer_gets_exactly_one_segment(cfg):
    scored = segments.rfm_scores(segments.rfm_table(shop(60), AS_OF))
    seg = segments.assign_segments(scored, cfg.segments)
    assert seg.notna().all() and len(seg) == 60


@pytest.mark.parametrize("grid,match", [
    ({**SegmentsConfig().grid, "Lost": {"r": 1, "fm": "1-3"}}, r"cell R=1, FM=3 is in both 'At Risk' and 'Lost'"),
    ({k: v for k, v in SegmentsConfig().grid.items() if k != "Promising"}, r"cell R=4, FM=1 belongs to no segment"),
    ({**SegmentsConfig().grid, "Lost": {"r": 1, "fm": "0-2"}}, r"'Lost.fm' must lie within 1..5"),
    ({**SegmentsConfig().grid, "Lost": {"r": 1}}, r"'Lost' must have exactly the keys r and fm"),
    ({**SegmentsConfig().grid, "Lost": {"r": "one", "fm": 1}}, r"'Lost.r' must be a score"),
])
def test_config_refuses_a_grid_with_holes_or_overlaps_naming_the_cell(grid, match):
    with pytest.raises(ConfigError, match=match):
        config_from_dict({"segments": {"grid": grid}})


@pytest.mark.parametrize("values,match", [
    ({"k_min": 5, "k_max": 3}, "segments.k_max must be at least"),
    ({"k_min": 1}, "segments.k_min must be a whole number of at least 2"),
    ({"silhouette_sample": 1.5}, "segments.silhouette_sample"),
    ({"watch": ["Gone"]}, "segments.watch must list segment names"),
    ({"random_state": "x"}, "segments.random_state"),
])
def test_config_refuses_bad_clustering_settings_naming_the_key(values, match):
    with pytest.raises(ConfigError, match=match):
        config_from_dict({"segments": values})


# --------------------------------------------------------------------------- whole stage on tiny shops

def test_a_three_customer_shop_gets_valid_scores_segments_and_clusters(cfg):
    seg = segments.build(shop(3), AS_OF, cfg)
    c = seg.customers.set_index("customer_id")
    assert c["r_score"].tolist() == [5, 3, 1] and c["m_score"].tolist() == [1, 3, 5]
    assert c["rfm_segment"].tolist() == ["New Customers", "Need Attention", "Can't Lose Them"]
    assert seg.k == 2 and set(c["cluster"]) == {1, 2}
    assert seg.notes[0].startswith("Only 3 customer(s)")


def test_a_shop_where_everyone_bought_once_still_scores_and_clusters(cfg):
    seg = segments.build(shop(40, orders_each=lambda i: 1), AS_OF, cfg)
    c = seg.customers
    assert (c["f_score"] == 3).all() and c["r_score"].nunique() == 5
    assert c["rfm_segment"].notna().all() and c["cluster"].between(1, seg.k).all()
    assert any("F score uses 1 of the 5 levels" in n for n in seg.notes)


def test_a_shop_of_identical_customers_is_one_cluster(cfg):
    seg = segments.build(order_lines([("O1", "A", "2025-01-01", 5.0), ("O2", "B", "2025-01-01", 5.0)]), AS_OF, cfg)
    assert seg.k == 1 and seg.customers["cluster"].tolist() == [1, 1] and seg.k_scores.empty


def test_clustering_is_reproducible_with_the_same_seed(cfg):
    orders = shop(200)
    a, b = segments.build(orders, AS_OF, cfg), segments.build(orders, AS_OF, cfg)
    pd.testing.assert_frame_equal(a.customers, b.customers)
    pd.testing.assert_frame_equal(a.k_scores, b.k_scores)
    assert a.customers.groupby("cluster")["monetary"].mean().is_monotonic_decreasing  # 1 = most valuable


def test_own_silhouette_matches_sklearn():
    X = np.random.default_rng(1).normal(size=(300, 5))
    labels = [np.arange(300) % k for k in (2, 3, 5)]
    ours = segments.silhouettes(X, labels, chunk=64)
    assert ours == pytest.approx([silhouette_score(X, lab) for lab in labels], abs=1e-9)


@pytest.mark.parametrize("centroid,name", [
    ([-1.0, 1.0, 1.0, 0.0, 0.0], "high value, active, frequent"),
    ([1.0, -1.0, -1.0, 0.0, 0.0], "low value, lapsed, rare"),
    ([0.2, 0.0, 0.1, 0.0, 0.0], "mid value, cooling, occasional"),
])
def test_clusters_are_named_from_their_centroids(centroid, name):
    assert segments.name_clusters(np.array([centroid])) == [name]


def test_clusters_with_the_same_description_get_numbered_names():
    assert segments.name_clusters(np.zeros((2, 5))) == ["mid value, cooling, occasional",
                                                        "mid value, cooling, occasional (2)"]


def test_profiles_show_demographics_categories_and_payment_methods(cfg):
    orders = order_lines([("O1", "A", "2025-01-01", 10.0, False, "books", "card"),
                          ("O2", "A", "2025-01-20", 30.0, False, "toys", "paypal"),
                          ("O3", "B", "2025-01-05", 5.0, False, "books", "card")])
    customers = ibis.memtable(pd.DataFrame({"customer_id": ["A", "B"], "gender": ["F", None],
                                            "birth_year": [1990, 1950], "region": ["North", "North"]}))
    seg = segments.build(orders, AS_OF, cfg, customers)
    mix = seg.mix[seg.mix["by"] == "cluster_label"].set_index(["dimension", "value"])["share"]
    assert seg.customers["rfm_segment"].tolist() == ["Loyal Customers", "Hibernating"]
    a_mix = seg.mix[(seg.mix["by"] == "rfm_segment") & (seg.mix["group"] == "Loyal Customers")]
    assert a_mix.set_index(["dimension", "value"])["share"].to_dict() == {
        ("age band", "35-44"): 1.0, ("category", "toys"): 0.75, ("category", "books"): 0.25,
        ("gender", "F"): 1.0, ("payment method", "paypal"): 0.75, ("payment method", "card"): 0.25,
        ("region", "North"): 1.0}
    assert ("gender", "(unknown)") in mix.index and ("age band", "65+") in mix.index
    assert list(page.mix_table(seg, "rfm_segment").columns) == ["gender", "age band", "region", "category",
                                                          "payment method"]


def test_a_customer_column_the_export_leaves_empty_is_left_out_of_the_profiles(cfg):
    """A platform export with an empty gender column: the page showed "gender (unknown) 100 %" per segment."""
    orders = order_lines([("O1", "A", "2025-01-01", 10.0, False, "books", "apple_pay"),
                          ("O2", "B", "2025-01-05", 5.0, False, "books", "card")])
    customers = ibis.memtable(pd.DataFrame({"customer_id": ["A", "B"], "gender": pd.array([None, None], dtype="string"),
                                            "birth_year": [1990, 1950], "region": ["North", "South"]}))
    seg = segments.build(orders, AS_OF, cfg, customers)
    assert "gender" not in set(seg.mix["dimension"]) and "region" in set(seg.mix["dimension"])
    assert "apple pay" in " ".join(page.mix_table(seg, "rfm_segment")["payment method"])  # the label in words


def test_segments_parquet_holds_the_documented_columns(cfg, tmp_path):
    seg = segments.build(shop(20), AS_OF, cfg)
    artifacts.write(tmp_path, "segments", segments.segments_frame(seg.customers))
    df = artifacts.read(tmp_path, "segments")
    assert list(df.columns) == ["customer_id", "recency_days", "frequency", "monetary", "avg_order_value", "r_score",
                                "f_score", "m_score", "rfm_segment", "cluster", "cluster_label"]
    assert df["customer_id"].is_monotonic_increasing and df["rfm_segment"].map(type).eq(str).all()


def test_run_writes_segments_parquet_that_passes_its_declaration(cfg, tmp_path):
    month = tmp_path / "shop" / "2025-01"
    write_orders_clean(month, shop_rows(30))
    seg = segments.run(month, AS_OF, cfg)
    written = artifacts.read(month, "segments")
    artifacts.check("segments", written)
    assert len(written) == 30 and written["rfm_segment"].tolist() == seg.customers["rfm_segment"].astype(str).tolist()


def test_every_figure_is_drawn_with_a_title(cfg):
    seg = segments.build(shop(60), AS_OF, cfg)
    for plot in (page.plot_segment_shares, page.plot_rfm_heatmap, page.plot_k_choice, page.plot_snake,
                 page.plot_pca, page.plot_crosstab):
        ax = plot(seg)
        assert ax.get_title()
        plt.close("all")
    assert page.plot_migration(seg) is None  # no previous month: nothing to draw


def test_segment_share_chart_draws_each_segments_customer_and_revenue_share_on_its_own_row(cfg):
    # shop(3): C000 New Customers (1 order of 10), C001 Need Attention (2 x 20), C002 Can't Lose Them (3 x 30);
    # net revenue 10 + 40 + 90 = 140
    seg = segments.build(shop(3), AS_OF, cfg)
    ax = page.plot_segment_shares(seg)
    assert drawn.yticks(ax) == seg.segment_order and drawn.legend(ax) == ["customers", "net revenue"]
    widths = {name: dict(zip(seg.segment_order, w)) for name, w in drawn.bars(ax, horizontal=True).items()}
    drawn_rows = {s: (widths["customers"][s], widths["net revenue"][s]) for s in seg.segment_order
                  if widths["customers"][s] or widths["net revenue"][s]}
    expected = {"New Customers": (100 / 3, 100 * 10 / 140), "Need Attention": (100 / 3, 100 * 40 / 140),
                "Can't Lose Them": (100 / 3, 100 * 90 / 140)}
    assert list(drawn_rows) == [s for s in seg.segment_order if s in expected]
    for name, shares in expected.items():
        assert drawn_rows[name] == pytest.approx(shares, abs=1e-6)
    plt.close("all")


def test_the_result_keeps_the_config_it_shows(cfg):
    seg = segments.build(shop(60), AS_OF, cfg)
    pd.testing.assert_frame_equal(page.grid_table(seg), segments.grid_table(cfg.segments))
    assert "At Risk, Hibernating, Lost together hold" in page.segments_takeaway(seg)
    assert page.profile_table(seg, "rfm_segment").index.tolist() == [
        s for s in cfg.segments.grid if s in set(seg.customers["rfm_segment"])]



def test_the_result_holds_frames_and_values_and_no_engine_object(cfg, tmp_path):
    month = tmp_path / "shop" / "2025-01"
    write_orders_clean(month, shop_rows(30))
    seg = segments.run(month, AS_OF, cfg)
    values = {f.name: getattr(seg, f.name) for f in dataclasses.fields(seg)}
    values.update({f"migration.{f.name}": getattr(seg.migration, f.name) for f in dataclasses.fields(seg.migration)})
    assert [name for name, v in values.items() if isinstance(v, ibis.Expr)] == []
    assert {name for name, v in values.items() if isinstance(v, pd.DataFrame)} == {
        "customers", "k_scores", "centroids", "pca", "mix", "crosstab"}  # migration.counts: None in a first month
    assert seg.crosstab.to_numpy().sum() == 30 and list(seg.crosstab.columns) == list(seg.centroids.index)


def test_the_page_imports_no_engine_and_no_artifact_reader():
    tree = ast.parse(Path(page.__file__).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {f"{n.module}.{a.name}" if n.module == "helpers" else n.module
                 for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert imported <= {"__future__", "matplotlib.pyplot", "numpy", "pandas", "seaborn", "helpers.plots", "helpers.pages",
                        "helpers.segments"}, imported

# --------------------------------------------------------------------------- migration

def test_migration_rows_sum_to_last_months_segment_sizes():
    previous = pd.DataFrame({"customer_id": ["A", "B", "C", "D", "E"],
                             "rfm_segment": ["Champions", "Champions", "At Risk", "Lost", "Lost"]})
    current = pd.DataFrame({"customer_id": ["A", "B", "C", "D", "F"],
                            "rfm_segment": ["Champions", "At Risk", "Lost", "Lost", "New Customers"]})
    order = list(SegmentsConfig().grid)
    m = segments.migration_matrix(previous, current, order)
    body = m.drop(index=segments.NEW_ROW)
    assert body.sum(axis=1).to_dict() == {**{s: 0 for s in order}, "Champions": 2, "At Risk": 1, "Lost": 2}
    assert m.loc["Lost", segments.GONE_COL] == 1 and m.loc[segments.NEW_ROW, "New Customers"] == 1
    assert segments.moved_into(m, ["At Risk", "Hibernating", "Lost"]) == {"At Risk": 1, "Hibernating": 0, "Lost": 1}


def test_first_month_says_so_and_the_next_month_reads_the_sibling_folder(cfg, tmp_path):
    first, second = tmp_path / "shop" / "2025-12", tmp_path / "shop" / "2026-01"
    write_orders_clean(first, shop_rows(12, as_of="2025-12-31"))
    write_orders_clean(second, shop_rows(15, as_of="2026-01-31"))
    seg = segments.run(first, "2025-12-31", cfg)
    assert seg.migration.counts is None and page.plot_migration(seg) is None
    assert page.migration_takeaway(seg).startswith("First month: no segments from 2025-11")
    assert page.migration_table(seg).to_dict("index") == {"2025-11": {"segments found": "no (first month)"}}
    seg = segments.run(second, "2026-01-31", cfg)
    mig = seg.migration
    assert mig.previous_month == "2025-12"
    assert mig.counts.drop(index=segments.NEW_ROW).to_numpy().sum() == 12  # every customer of December
    assert mig.counts.loc[segments.NEW_ROW].sum() == 3
    assert page.migration_table(seg)["total"].map(lambda v: int(v.replace(",", ""))).sum() == 15  # with separators
    assert page.migration_takeaway(seg).startswith("Since 2025-12, ")


def test_no_table_of_notebook_03_shows_a_model_internal_or_snake_case_name(cfg):
    seg = segments.build(shop(60), AS_OF, cfg)
    tables = {"summary": page.rfm_summary(seg), "scores": page.score_table(seg),
              "profile": page.profile_table(seg, "rfm_segment"), "clusters": page.profile_table(seg, "cluster_label"),
              "mix": page.mix_table(seg, "rfm_segment"), "k": page.k_table(seg), "centroids": page.centroid_table(seg),
              "crosstab": page.crosstab_table(seg), "migration": page.migration_table(seg)}
    assert {k: plots.unreadable_names(t) for k, t in tables.items()} == {k: [] for k in tables}
    # 03's recency is the days since the last order, in the words every page uses
    assert list(tables["summary"].index) == ["days since last order", "orders", "net revenue (EUR)",
                                             "average order value (EUR)"]
    assert "median days since last order" in tables["profile"].columns
    assert not any("recency" in str(name) for t in tables.values() for name in [*t.columns, *t.index])


def test_segment_tables_show_counts_with_separators_and_money_with_its_currency(cfg):
    # customer i of shop(200) spends 10 * (i + 1) per order: the largest customer 2,000 per order
    seg = segments.build(shop(200), AS_OF, cfg)
    c = seg.customers
    summary = page.rfm_summary(seg)
    assert summary.loc["net revenue (EUR)", "max"] == f"{c['monetary'].max():,.2f}" and "," in summary.loc[
        "net revenue (EUR)", "max"]
    assert summary.loc["days since last order", "max"] == f"{c['recency_days'].max():,.0f}"
    profile = page.profile_table(seg, "rfm_segment")
    assert profile["customers"].map(lambda v: int(v.replace(",", ""))).sum() == len(c)
    crosstab = page.crosstab_table(seg)
    assert crosstab.map(lambda v: int(v.replace(",", ""))).to_numpy().sum() == len(c)
