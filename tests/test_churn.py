"""Churn stage: labels at the window edges, features without leakage, BG/NBD baseline, backtest, tiers,
and its page (helpers.pages.churn)."""
from __future__ import annotations

import ast
import dataclasses
import json
import shutil
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest

import lines
from helpers import artifacts, churn, clv, customer_facts, engine, plots
from helpers.config import ConfigError, config_from_dict, load_config
from helpers.pages import churn as page

CUTOFF = "2025-03-31"  # features use lines up to 2025-03-31 23:59:59; the 90-day window is Apr 1 .. Jun 29


@pytest.fixture(scope="module")
def cfg():
    base = load_config("config/default.yml")
    # Lighter model settings keep the test file fast; the logic is the same.
    return base.replace(churn=base.churn.replace(importance_rows=2000, importance_repeats=2, max_iter=100))


def line(order_id, customer_id, when, amount=50.0, category="books", channel="web", payment="card",
         discount=0.0, coupon="", is_return=False):
    return {"order_id": order_id, "customer_id": customer_id, "order_date": pd.Timestamp(when), "amount": amount,
            "quantity": 1.0, "product_id": "P1", "category": category, "status": "returned" if is_return else "completed",
            "payment_method": payment, "channel": channel, "currency": "EUR", "discount_amount": discount,
            "coupon_code": coupon, "is_return": is_return, "source_row": 0}


table = lines.table  # order lines written here, as an in-memory table (tests/lines.py)


# --------------------------------------------------------------------------- labels at the window edges

EDGE_CASES = {
    # customer: (lines, expected churned; None = not active at the cut-off)
    "last_second_of_cutoff_day_only": ([("2025-03-31 23:59:59", False)], True),
    "buys_first_second_after_cutoff": ([("2025-01-10", False), ("2025-04-01 00:00:00", False)], False),
    "buys_last_second_of_window": ([("2025-01-10", False), ("2025-06-29 23:59:59", False)], False),
    "buys_first_second_after_window": ([("2025-01-10", False), ("2025-06-30 00:00:00", False)], True),
    "only_a_return_in_window": ([("2025-01-10", False), ("2025-04-15", True)], True),
    "first_order_after_cutoff": ([("2025-04-01 00:00:00", False)], None),
    "only_returns_before_cutoff": ([("2025-02-01", True), ("2025-05-01", False)], None),
}


@pytest.fixture(scope="module")
def edge_labels(con):
    rows = []
    for i, (cust, (events, _)) in enumerate(EDGE_CASES.items()):
        for j, (when, is_return) in enumerate(events):
            rows.append(line(f"O{i}-{j}", cust, when, amount=-20.0 if is_return else 50.0, is_return=is_return))
    lab = churn.labels_at(table(con, rows, "edges"), CUTOFF, 90).to_pandas()
    return dict(zip(lab["customer_id"], lab["churned"]))


@pytest.mark.parametrize("customer", list(EDGE_CASES))
def test_label_is_correct_at_the_window_edges(edge_labels, customer):
    expected = EDGE_CASES[customer][1]
    if expected is None:
        assert customer not in edge_labels
    else:
        assert bool(edge_labels[customer]) is expected


def test_backtest_cutoffs_are_as_of_minus_two_horizons_and_one_horizon():
    assert churn.backtest_cutoffs("2026-06-30", 90) == {
        "train_cutoff": "2026-01-01", "test_cutoff": "2026-04-01", "as_of": "2026-06-30"}


# --------------------------------------------------------------------------- features

def hand_built_lines():
    return [
        # customer A: orders on Jan 1, Jan 11 and Jan 31 (gaps 10 and 20 days), one partly returned
        line("A1", "A", "2025-01-01 00:00", 100.0, "books", "web", "card"),
        line("A1", "A", "2025-01-01 00:00", 20.0, "audio", "web", "card"),
        line("A2", "A", "2025-01-11 00:00", 60.0, "books", "app", "paypal", discount=6.0),
        line("A3", "A", "2025-01-31 00:00", 60.0, "home", "app", "card", coupon="WELCOME10"),
        line("A3r", "A", "2025-02-10 00:00", -24.0, "home", "app", "card", is_return=True),
        # customer B: one order on the cut-off day at noon
        line("B1", "B", "2025-03-31 12:00", 40.0, "fashion", "marketplace", "invoice"),
    ]


def future_lines():
    return [
        line("A4", "A", "2025-04-01 00:00", 999.0, "laptops", "app", "paypal", discount=50.0),
        line("A3r2", "A", "2025-04-02 00:00", -36.0, "home", "app", "card", is_return=True),
        line("B2", "B", "2025-05-05 00:00", 10.0, "beauty", "web", "apple_pay"),
        line("C1", "C", "2025-04-03 00:00", 10.0, "beauty", "web", "apple_pay"),
    ]


def test_features_of_a_hand_built_customer_have_exact_values(con):
    lines = table(con, hand_built_lines(), "feat")
    levels = customer_facts.mix_levels(lines, CUTOFF)
    assert levels == {"channel": ["app", "marketplace", "web"], "payment_method": ["card", "invoice", "paypal"]}
    f = customer_facts.features_at(lines, CUTOFF, levels).to_pandas().set_index("customer_id")
    a = f.loc["A"]
    assert a["recency_days"] == pytest.approx(60.0)  # Jan 31 00:00 to Apr 1 00:00
    assert a["tenure_days"] == pytest.approx(90.0)
    assert a["orders"] == 3
    assert a["revenue_gross"] == pytest.approx(240.0)
    assert a["avg_order_value"] == pytest.approx(80.0)
    assert a["gap_mean_days"] == pytest.approx(15.0)
    assert a["gap_last_days"] == pytest.approx(20.0)
    assert a["gap_trend"] == pytest.approx(21.0 / 11.0)
    assert a["overdue_ratio"] == pytest.approx(60.0 / 16.0)
    assert a["return_share"] == pytest.approx(0.1)
    assert a["category_breadth"] == 3
    assert a["discount_share"] == pytest.approx(2 / 3)
    assert a["channel_share_app"] == pytest.approx(2 / 3)
    assert a["payment_method_share_card"] == pytest.approx(2 / 3)
    b = f.loc["B"]
    assert b["recency_days"] == pytest.approx(0.5)
    assert b["orders"] == 1
    assert np.isnan(b["gap_mean_days"]) and np.isnan(b["gap_trend"])


def test_features_do_not_change_when_future_orders_are_appended(con, cfg):
    past = table(con, hand_built_lines(), "past")
    both = table(con, hand_built_lines() + future_lines(), "past_and_future")
    levels = customer_facts.mix_levels(past, CUTOFF)
    assert customer_facts.mix_levels(both, CUTOFF) == levels
    before = churn.feature_frame(past, CUTOFF, levels, cfg, bgnbd=False)
    after = churn.feature_frame(both, CUTOFF, levels, cfg, bgnbd=False)
    pd.testing.assert_frame_equal(before, after)


def test_the_labelled_frame_holds_the_customers_with_a_positive_purchase_with_their_features_and_labels(con, cfg):
    """One query builds it (features, labels, the BG/NBD summary): Z, whose only purchase was free, is left out."""
    lines = table(con, hand_built_lines() + future_lines() + [line("Z1", "Z", "2025-02-01", 0.0)], "labelled")
    levels = customer_facts.mix_levels(lines, CUTOFF)
    frame = churn.labelled_frame(lines, CUTOFF, levels, cfg, bgnbd=False)
    assert list(frame["customer_id"]) == ["A", "B"]
    assert frame["churned"].tolist() == [False, False]
    left_out = customer_facts.no_positive_purchase(lines, CUTOFF)
    assert left_out.to_dict("records") == [{"customer_id": "Z", "reason": "zero_price"}]
    assert customer_facts.no_positive_counts(lines, CUTOFF) == {"zero_price": 1}
    plain = churn.feature_frame(lines, CUTOFF, levels, cfg, bgnbd=False)
    pd.testing.assert_frame_equal(frame.drop(columns="churned"), plain)


@pytest.fixture(scope="module")
def demo_dir(demo_shop, tmp_path_factory):
    """The demo shop's cleaned month (conftest: generated and cleaned in a temporary folder), linked into
    a folder of this module's own so that nothing writes into the shared one."""
    src = demo_shop[0]
    work = tmp_path_factory.mktemp("churn_demo") / "month"
    work.mkdir()
    for name in ("orders_clean.parquet", "customers_clean.parquet"):
        (work / name).symlink_to(src / name)
    return work


def test_demo_features_and_bgnbd_ignore_appended_future_orders(con, cfg, demo_dir):
    orders = pd.read_parquet(demo_dir / "orders_clean.parquet")
    cutoff = "2025-12-31"
    past = orders[orders["order_date"] < pd.Timestamp("2026-01-01")]
    customers = con.read_parquet(str(demo_dir / "customers_clean.parquet"))
    p, a = con.create_table("demo_past", past, overwrite=True), con.create_table("demo_all", orders, overwrite=True)
    levels = customer_facts.mix_levels(p, cutoff)
    before, params_before = churn.feature_frame_with_params(p, cutoff, levels, cfg, customers)
    after, params_after = churn.feature_frame_with_params(a, cutoff, levels, cfg, customers)
    pd.testing.assert_frame_equal(before, after)
    assert params_before == params_after and set(params_before) == {"r", "alpha", "a", "b"}
    assert {"p_alive", "p_no_purchase"} <= set(before.columns)
    # the plain frame (what win-back uses) is the same frame
    pd.testing.assert_frame_equal(churn.feature_frame(p, cutoff, levels, cfg, customers), before)


def test_the_labelled_window_kept_by_the_engine_gives_the_frames_own_rows_sample_and_numbers(con, cfg, demo_dir):
    """The backtest takes its windows from the engine (`labelled_window`) and only samples and id-free columns reach
    pandas: each is what the pandas frame (`labelled_frame`) gives, including the random draw above the sample size
    (the rows of the same positions in customer_id order)."""
    orders = con.read_parquet(str(demo_dir / "orders_clean.parquet"))
    customers = con.read_parquet(str(demo_dir / "customers_clean.parquet"))
    cutoff = "2025-12-31"
    levels = customer_facts.mix_levels(orders, cutoff)
    frame = churn.labelled_frame(orders, cutoff, levels, cfg, customers)
    window = churn.labelled_window(con, orders, cutoff, levels, cfg, customers)
    try:
        assert window.n == len(frame) > 3000 and window.has_bgnbd()
        pd.testing.assert_frame_equal(window.sample(len(frame), 1), frame)
        drawn = churn._sample(frame, 3000, 7)
        pd.testing.assert_frame_equal(window.sample(3000, 7), drawn)
        assert not drawn.index.equals(pd.RangeIndex(3000))  # a draw, not the first rows
        pd.testing.assert_frame_equal(window.numbers(["recency_days", "churned"]),
                                      frame[["recency_days", "churned"]])
    finally:
        engine.release(con, [window.rows])


def test_above_backtest_rows_the_models_are_compared_on_the_sample_scoring_then_trains_on(con, cfg, demo_dir):
    """At 1.35M customers, scoring every test-window customer with the classifier was 6 s of 05; above
    churn.backtest_rows the three models are compared on a random sample, the one drawn once for scoring's refit,
    and the page's note says so."""
    orders = con.read_parquet(str(demo_dir / "orders_clean.parquet"))
    levels = customer_facts.mix_levels(orders, "2025-12-31")
    small = cfg.churn.replace(backtest_rows=1500, max_train_rows=1500, max_iter=20, importance_rows=200)
    cut = {"train_cutoff": "2025-09-30", "test_cutoff": "2025-12-31"}
    windows = {c: churn.labelled_window(con, orders, c, levels, cfg) for c in cut.values()}
    test = windows[cut["test_cutoff"]]
    try:
        out = churn.run_backtest(con, windows.get, cut, small, [], churn._Timer())
        sample = f"tested on a random sample of 1,500 of the {test.n:,} customers who had bought by 2025-12-31"
        assert sample in out.note
        pred, drawn = out.predictions, test.sample(small.max_train_rows, small.random_state)  # scoring's refit
        assert test.n > 1500 and len(pred) == 1500 and out.chosen in churn.MODELS
        again = test.sample(1500, small.random_state)
        assert again is not drawn  # the kept draw was handed over once, then forgotten: drawn again, the same rows
        pd.testing.assert_frame_equal(again, drawn)
        np.testing.assert_array_equal(pred["churned"], drawn["churned"])
        expected = churn.model_metrics(drawn["churned"].astype(int).to_numpy(), pred["p_model"])
        assert out.metrics.loc["model"].to_dict() == pytest.approx(expected)
        # at or below the setting, every customer of the test window is scored
        train = churn.labelled_window(con, orders, cut["train_cutoff"], levels, cfg)
        assert len(churn.backtest(train, test, small.replace(backtest_rows=test.n))[1]) == test.n
        # and when a sample (of one customer) cannot hold both churned and retained customers
        assert len(churn.backtest(train, test, small.replace(backtest_rows=1))[1]) == test.n
        engine.release(con, [train.rows])
    finally:
        engine.release(con, [test.rows])


# --------------------------------------------------------------------------- BG/NBD baseline

def test_bgnbd_no_purchase_probability_follows_the_closed_form(con, cfg, demo_dir):
    lines = con.read_parquet(str(demo_dir / "orders_clean.parquet"))
    summary = customer_facts.rfm_summary(lines, "2025-12-31")
    base, prm = churn.bgnbd_baseline(summary, cfg)
    s = summary.iloc[[0, 1, 2, 3, 4]]
    t = cfg.churn.horizon_days
    expected = (1 - base.loc[s.index, "p_alive"]) + base.loc[s.index, "p_alive"] * (
        (prm["alpha"] + s["T"]) / (prm["alpha"] + s["T"] + t)) ** (prm["r"] + s["frequency"])
    np.testing.assert_allclose(base.loc[s.index, "p_no_purchase"], expected, atol=2e-6)
    assert base["p_no_purchase"].between(0, 1).all() and base["p_alive"].between(0, 1).all()


def test_above_the_sample_size_the_purchase_baseline_is_fitted_on_a_sample_and_every_customer_is_scored(cfg):
    # a population drawn here (not the demo generator): purchase rates and lifetimes vary by customer
    rng = np.random.default_rng(11)
    n = 1500
    T = rng.integers(30, 700, n).astype(float)
    x = rng.poisson(rng.gamma(1.5, 1.0, n) * T / 150).astype(float)
    summary = pd.DataFrame({"frequency": x, "recency": np.where(x > 0, np.floor(T * rng.uniform(0.2, 1, n)), 0.0),
                            "T": T}, index=pd.RangeIndex(100, 100 + n))
    small = cfg.replace(clv=cfg.clv.replace(sample_customers=400))
    base, params = churn.bgnbd_baseline(summary, small)
    assert base.index.equals(summary.index) and base.notna().all().all()
    sample = summary.sample(n=400, random_state=small.clv.seed).sort_index()
    on_sample = clv.fit_first_that_fits(customer_facts.compress(sample)[0], small.clv).params
    on_all = clv.fit_first_that_fits(customer_facts.compress(summary)[0], small.clv).params
    assert params == {k: round(v, 6) for k, v in on_sample.items()}
    assert params != {k: round(v, 6) for k, v in on_all.items()}
    # at or below the sample size every customer's row is fitted, as before
    assert churn.bgnbd_baseline(summary, cfg)[1] == {k: round(v, 6) for k, v in on_all.items()}


# --------------------------------------------------------------------------- metrics and tiers

def test_top_decile_lift_and_captured_churners_are_exact():
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 1] * 2)  # 6 churners of 20; top 10 % = 2 customers
    score = np.arange(20, 0, -1, dtype=float)  # the first two rows score highest
    lift, captured = churn.top_decile(y, score)
    assert lift == pytest.approx(1.0 / 0.3)
    assert captured == pytest.approx(2 / 6)


@pytest.mark.parametrize("p, tier", [(0.0, "low"), (0.4999, "low"), (0.5, "medium"), (0.7999, "medium"),
                                     (0.8, "high"), (1.0, "high")])
def test_risk_tier_follows_the_configured_thresholds(p, tier):
    assert str(churn.assign_tiers([p], [0.5, 0.8])[0]) == tier


@pytest.mark.parametrize("value", [[0.8, 0.5], [0.5], [0, 0.5], [0.5, 1.2]])
def test_config_refuses_bad_tier_thresholds(value):
    with pytest.raises(ConfigError, match="churn.tier_thresholds"):
        config_from_dict({"churn": {"tier_thresholds": value}})


# --------------------------------------------------------------------------- end to end on the demo shop

@pytest.fixture(scope="module")
def demo_run(cfg, demo_dir):
    return churn.run(demo_dir, "2026-06-30", cfg)


def test_supervised_model_beats_recency_on_the_demo_backtest(demo_run):
    m = demo_run.metrics
    assert demo_run.backtest_ok
    assert set(m.index) == {"bgnbd", "recency", "model"}
    assert m.loc["model", "roc_auc"] > m.loc["recency", "roc_auc"]
    assert m["brier"].between(0, 0.25).all()


def test_run_writes_scores_and_model_card(demo_run, demo_dir):
    scores = churn.load_scores(demo_dir)
    assert list(scores.columns) == churn.SCORED_COLUMNS == artifacts.ARTIFACTS["churn"].columns
    artifacts.check("churn", scores)
    assert scores["customer_id"].is_unique and scores["churn_probability"].between(0, 1).all()
    assert set(scores["risk_tier"]) <= set(churn.TIERS)
    # the page's frame is the file's rows in the same order, without the ids (they stay in the engine)
    assert "customer_id" not in demo_run.scored and len(demo_run.scored) == len(scores)
    np.testing.assert_array_equal(demo_run.scored["churn_probability"], scores["churn_probability"])
    assert demo_run.scored["risk_tier"].astype(str).tolist() == scores["risk_tier"].tolist()
    card = json.loads((demo_dir / "churn_model.json").read_text())
    assert card["horizon_days"] == 90 and card["chosen_model"] in churn.MODELS
    assert card["train"] == {"cutoff": "2026-01-01", "labelled_until": "2026-04-01",
                             "customers": demo_run.card["train"]["customers"]}
    assert set(card["metrics"]) == {"bgnbd", "recency", "model"}
    assert card["tier_thresholds"] == {"medium_from": 0.5, "high_from": 0.8}
    assert card["bgnbd_params_at_as_of"] == demo_run.card["bgnbd_params_at_as_of"]
    assert set(card["bgnbd_params_at_as_of"]) == {"r", "alpha", "a", "b"}


def test_short_history_falls_back_to_the_bgnbd_baseline(cfg, demo_dir, tmp_path):
    month = tmp_path / "month"  # a copy, so that demo_run's churn.parquet stays as written
    shutil.copytree(demo_dir, month, symlinks=True, ignore=shutil.ignore_patterns("churn*"))
    res = churn.run(month, "2023-12-31", cfg)  # the demo shop starts 2023-07-01
    assert not res.backtest_ok and res.chosen_model == "bgnbd"
    assert "Not enough history" in res.backtest_note
    saved = churn.load_scores(month)
    np.testing.assert_allclose(saved["churn_probability"], saved["p_no_purchase_bgnbd"], atol=1e-6)
    np.testing.assert_array_equal(res.scored["churn_probability"], saved["churn_probability"])


def test_tier_reasons_and_tables_have_one_row_per_tier(demo_run):
    assert list(page.tier_numbers(demo_run).index) == list(churn.TIERS)
    assert list(page.tier_table(demo_run).index) == list(churn.TIERS)
    assert list(page.tier_reasons(demo_run).index) == list(churn.TIERS)
    assert "ROC-AUC" in page.metrics_numbers(demo_run).columns


@pytest.mark.parametrize("feature, value, shown", [("p_alive", 0.3812, "38%"), ("discount_share", 0.05, "5%"),
                                                   ("recency_days", 431.0, "431"), ("orders", 2.0, "2.0")])
def test_tier_reasons_show_probabilities_and_shares_in_percent(feature, value, shown):
    assert page._fmt(value, feature) == shown


def test_the_page_shows_the_numbers_tables_for_readers_and_the_definition_of_the_model_card(demo_run):
    for shown, numbers in ((page.metrics_table(demo_run), page.metrics_numbers(demo_run)),
                           (page.tier_table(demo_run), page.tier_numbers(demo_run)),
                           (page.importance_table(demo_run), page.importance_numbers(demo_run))):
        assert list(shown.index) == list(numbers.index) and len(shown.columns) == len(numbers.columns)
    assert page.metrics_takeaway(demo_run).startswith(demo_run.backtest_note)
    assert page.definition_text(demo_run) == churn.definition_text(90) == demo_run.card["definition"]
    assert page.outputs_text(demo_run).startswith(f"churn.parquet: the {len(demo_run.scored):,} customers who had "
                                                  f"bought by 2026-06-30")
    assert page.plot_calibration(demo_run).get_title() == "Calibration on the test window (cut-off 2026-04-01)"
    assert len(page.plot_importance(demo_run).patches) == len(page.importance_numbers(demo_run))


def test_the_result_holds_no_engine_object_and_the_page_touches_no_engine_or_file():
    """The result is plain data; the page imports no engine, no artifact reader and no other stage."""
    kinds = {f.name: f.type for f in dataclasses.fields(churn.ChurnResult)}
    assert not any("ibis" in str(k) or "Table" in str(k) or "con" == n for n, k in kinds.items())
    assert not any(callable(getattr(churn.ChurnResult, n, None)) for n in ("metrics_table", "tier_table", "plot_calibration"))
    tree = ast.parse(Path(page.__file__).read_text(encoding="utf-8"))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {f"{n.module}.{a.name}" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    forbidden = ("ibis", "duckdb", "helpers.engine", "helpers.artifacts", "helpers.customer_facts", "helpers.clv",
                 "helpers.segments")
    assert not [m for m in imported if m.startswith(forbidden)]
    assert "read_" not in Path(page.__file__).read_text(encoding="utf-8")


def test_the_demo_result_carries_frames_and_numbers_only(demo_run):
    for f in dataclasses.fields(demo_run):
        assert not isinstance(getattr(demo_run, f.name), ibis.Expr), f.name


def test_tiers_by_segment_says_when_segments_are_missing(demo_run):
    # the demo folder of these tests has no segments.parquet
    table = page.tiers_by_segment(demo_run)
    assert list(table.columns) == ["note"] and "run 03_segments" in table["note"].iloc[0]
    assert page.segment_takeaway(demo_run) == table["note"].iloc[0]
    ax = page.plot_tiers_by_segment(demo_run)
    assert ax.texts[0].get_text() == table["note"].iloc[0] and not ax.axison


def test_tiers_by_segment_gives_each_segments_tier_shares():
    scored = pd.DataFrame({"customer_id": ["a", "b", "c", "d"],
                           "risk_tier": pd.Categorical(["high", "low", "high", "medium"], categories=list(churn.TIERS)),
                           "churn_probability": [0.9, 0.1, 0.85, 0.6]})
    segments = pd.DataFrame({"customer_id": ["a", "b", "c", "d", "e"],
                             "rfm_segment": ["Lost", "Champions", "Lost", "Champions", "Champions"]})
    table = churn.tier_shares(scored.merge(segments, on="customer_id"))
    assert list(table.index) == ["Lost", "Champions"]  # highest mean churn probability first
    assert table.loc["Lost", "customers"] == 2 and table.loc["Lost", "share high"] == 1.0
    assert table.loc["Champions", "share low"] == 0.5 and table.loc["Champions", "share medium"] == 0.5
    assert table.loc["Champions", "mean_churn_probability"] == pytest.approx(0.35)


def test_the_engine_joins_give_the_tiers_by_segment_and_the_clv_at_risk_of_their_pandas_definitions(tmp_path):
    """05 joins its scores to segments.parquet and clv.parquet in the engine (no customer id reaches the page):
    the same tables and sums as the pandas join and the definition 07 uses, a high-risk customer without a CLV row counting 0
    and a segment's customer without a score left out."""
    scored = pd.DataFrame({"customer_id": ["d", "a", "c", "b", "e"],
                           "risk_tier": ["medium", "high", "high", "low", "high"],
                           "churn_probability": [0.6, 0.9, 0.85, 0.1, 0.95]})
    segments = pd.DataFrame({"customer_id": ["a", "b", "c", "d", "x"],
                             "rfm_segment": ["Lost", "Champions", "Lost", "Champions", "Champions"]})
    clv_scores = pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "clv": [10.25, 3.5, 0.125, 7.0]})
    segments.to_parquet(artifacts.path(tmp_path, "segments"))
    con = churn.connect()
    table = ibis.memtable(scored)
    by_engine = churn.tiers_by_segment_table(con, tmp_path, table)
    pd.testing.assert_frame_equal(by_engine, churn.tier_shares(scored.sort_values("customer_id").merge(segments)))
    assert by_engine.loc["Lost", "customers"] == 2 and "x" not in set(by_engine.index)
    assert customer_facts.clv_at_risk_of_tables(table, ibis.memtable(clv_scores)) == \
        customer_facts.clv_at_risk(scored.sort_values("customer_id"), clv_scores) == (10.375, 20.875)
    assert churn.tiers_by_segment_table(con, tmp_path / "none", table)["note"].str.contains("03_segments").all()


def test_the_tier_sentence_defines_high_churn_risk_and_counts_the_high_risk_customers_still_likely_active(demo_run):
    """One vocabulary with 04: "high churn risk" and "likely active" defined in words, and the
    customers who are both counted, with the sentence on why the two pages differ."""
    s = demo_run.scored
    both = int(((s["p_alive_baseline"] >= 0.5) & (s["risk_tier"] == "high")).sum())
    text = page.tier_takeaway(demo_run)
    assert "'high churn risk' means a probability of 80% or more of placing no order in the next 90 days" in text
    assert f" {both:,} of the high-risk customers are still likely active in notebook 04" in text
    assert "P(alive) asks whether a customer has left for good, churn risk whether they will order" in text
    assert 0 < both < int((s["risk_tier"] == "high").sum())


def test_no_table_of_notebook_05_shows_a_model_internal_or_snake_case_name(demo_run):
    tables = {"metrics": page.metrics_table(demo_run), "importance": page.importance_table(demo_run),
              "tiers": page.tier_table(demo_run), "reasons": page.tier_reasons(demo_run)}
    assert {k: plots.unreadable_names(t) for k, t in tables.items()} == {k: [] for k in tables}
    assert "recency only" not in tables["metrics"].index  # 05's recency is the days since the last order
    assert not any(" H " in f for f in tables["importance"].index)


def test_tier_table_shows_counts_with_separators_and_shares_in_percent(demo_run):
    numbers, shown = page.tier_numbers(demo_run), page.tier_table(demo_run)
    high = shown.loc["high"]
    assert high[f"customers who had bought by {demo_run.as_of}"] == f"{int(numbers.loc['high', 'customers']):,}"
    assert high["share of customers"] == f"{100 * numbers.loc['high', 'share']:.1f}%"
    assert high["mean churn probability"].endswith("%")


def test_tiers_by_segment_for_readers_shows_shares_at_each_risk_in_percent():
    table = pd.DataFrame({"customers": [1200, 3], "share low": [0.0, 0.5], "share medium": [0.0, 0.5],
                          "share high": [1.0, 0.0], "mean_churn_probability": [0.875, 0.35]},
                         index=pd.Index(["Lost", "Champions"], name="segment"))
    shown = page.tiers_by_segment_for_readers(table)
    assert shown.loc["Lost"].to_dict() == {"customers": "1,200", "share at low risk": "0.0%",
                                           "share at medium risk": "0.0%", "share at high risk": "100.0%",
                                           "mean churn probability": "87.5%"}
    assert plots.unreadable_names(shown) == []
