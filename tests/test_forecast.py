"""The forecast (helpers.forecast): what existing and new customers will bring, its band and its backtest.

Small frames built here; the recovery of known parameters over 40 shops of 20,000 customers is a study
(scripts/forecast_study.py), not a test.
"""
from __future__ import annotations

import datetime as dt

import ibis
import numpy as np
import pandas as pd
import pytest

from helpers import artifacts, clv, customer_facts, engine, forecast
from helpers.config import ForecastConfig, config_from_dict, ConfigError
from helpers.customer_facts import Fit

TRUTHS = {
    "bgnbd": {"r": 0.7, "alpha": 60.0, "a": 0.6, "b": 3.0},
    "mbgnbd": {"r": 0.7, "alpha": 60.0, "a": 0.6, "b": 3.0},
    "pareto_nbd": {"r": 0.75, "alpha": 90.0, "s": 0.8, "beta": 500.0},
}
GG = {"p": 6.0, "q": 4.0, "v": 40.0}


def _fit(name: str, params: dict) -> Fit:
    return Fit(name, clv._lifetimes_object(name, params, 0.0, pd.DataFrame()), params, 0.0)


def _summary(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    T = rng.integers(30, 900, n).astype(float)
    freq = rng.poisson(T / 150).astype(int)
    rec = np.where(freq > 0, np.floor(rng.random(n) * T), 0.0)
    mv = np.where(freq > 0, rng.gamma(6.0, 12.0, n), 0.0)
    return pd.DataFrame({"customer_id": [f"C{i}" for i in range(n)], "frequency": freq, "recency": rec, "T": T,
                         "monetary_value": mv})


@pytest.mark.parametrize("name", sorted(TRUTHS))
def test_simulated_futures_average_to_the_models_expectation(name):
    """The band's purchase noise comes from simulating each customer; its mean must be the model's expectation
    (else the band would sit beside the forecast)."""
    s = _summary()
    fit, gg = _fit(name, TRUTHS[name]), _fit("gamma_gamma", GG)
    t = np.array([30.0, 91.0, 365.0])
    purchases, revenue = forecast._cumulative(s, fit, gg, t, float("nan"))
    sims = forecast.simulate_existing(s, fit, gg, t, 2000, np.random.default_rng(1))
    assert sims[0].mean(axis=0) == pytest.approx(purchases, rel=0.03)
    assert sims[1].mean(axis=0) == pytest.approx(revenue, rel=0.04)
    assert np.all(np.diff(sims[0], axis=1) >= 0)  # cumulative: never fewer purchases later


def test_existing_forecast_months_add_up_and_the_band_holds_the_centre():
    s = _summary()
    fit, gg = _fit("bgnbd", TRUTHS["bgnbd"]), _fit("gamma_gamma", GG)
    ends = forecast.month_ends("2026-06-30", 12)
    d = forecast.existing_forecast(s, fit, gg, "2026-06-30", ends, "day", 400, 7)
    cum = forecast._cumulative(s, fit, gg, np.array([365.0]), float("nan"))
    assert d.centre["purchases"].sum() == pytest.approx(cum[0][0])  # July..June 2027 is 365 days
    table = forecast.forecast_table(d, None, ends, 0.3, 0.8)
    artifacts.check("forecast", table)
    assert list(table["month"]) == [f"{y}-{m:02d}" for y, m in [(2026, m) for m in range(7, 13)] + [(2027, m) for m in range(1, 7)]]
    assert (table["purchases_low"] <= table["purchases"]).all() and (table["purchases"] <= table["purchases_high"]).all()
    assert table["margin"].to_numpy() == pytest.approx(0.3 * table["revenue"].to_numpy())


def test_a_model_error_widens_the_band_but_not_the_centre():
    s = _summary()
    fit, gg = _fit("bgnbd", TRUTHS["bgnbd"]), _fit("gamma_gamma", GG)
    ends = forecast.month_ends("2026-06-30", 12)
    plain = forecast.existing_forecast(s, fit, gg, "2026-06-30", ends, "day", 400, 7)
    wide = forecast.existing_forecast(s, fit, gg, "2026-06-30", ends, "day", 400, 7, model_error=0.1)
    width = [np.subtract(*np.quantile(d.draws["revenue"].sum(axis=1), [0.9, 0.1])) for d in (plain, wide)]
    assert wide.centre["revenue"] == pytest.approx(plain.centre["revenue"])
    assert width[1] > 1.3 * width[0]


def test_month_ends_start_after_the_cut_off_month():
    assert forecast.month_ends("2026-06-30", 3) == [dt.date(2026, 7, 31), dt.date(2026, 8, 31), dt.date(2026, 9, 30)]
    assert forecast.month_ends("2026-06-15", 1) == [dt.date(2026, 7, 31)]
    assert str(forecast.last_full_month("2026-06-15")) == "2026-05"


def _activity(rows) -> pd.DataFrame:
    """(month, first_month, purchases, revenue, new) rows with months as 'YYYY-MM'."""
    df = pd.DataFrame(rows, columns=["month", "first_month", "purchases", "revenue", "new"])
    df["month"] = [pd.Period(m, "M") for m in df["month"]]
    df["first_month"] = [pd.Period(m, "M") for m in df["first_month"]]
    return df


def test_value_curve_is_per_new_customer_by_months_since_the_first():
    a = _activity([
        ("2026-01", "2026-01", 12, 1200.0, 10), ("2026-02", "2026-01", 3, 300.0, 0), ("2026-03", "2026-01", 2, 100.0, 0),
        ("2026-02", "2026-02", 25, 2000.0, 20), ("2026-03", "2026-02", 4, 400.0, 0),
        ("2026-03", "2026-03", 30, 3000.0, 30),
    ])
    c = forecast.value_curve(a, "2026-03-31", 4, cohorts=24)
    assert c["purchases_per_customer"].tolist()[:3] == pytest.approx([67 / 60, 7 / 30, 2 / 10])
    assert c["revenue_per_customer"].tolist()[:3] == pytest.approx([6200 / 60, 700 / 30, 10.0])
    assert c["cohorts"].tolist() == [3, 2, 1, 0]  # month +3: no cohort is that old, the last month carried
    assert c["purchases_per_customer"].iloc[3] == c["purchases_per_customer"].iloc[2]


def test_new_customers_buy_by_the_curve_from_the_month_they_are_won():
    curve = pd.DataFrame({"age": [0, 1, 2], "purchases_per_customer": [1.0, 0.5, 0.25],
                          "revenue_per_customer": [100.0, 50.0, 25.0], "cohorts": [3, 2, 1]})
    d = forecast.new_forecast(np.full((5, 3), 10.0), curve)
    assert d.centre["purchases"].tolist() == pytest.approx([10.0, 15.0, 17.5])
    assert d.centre["revenue"].tolist() == pytest.approx([1000.0, 1500.0, 1750.0])


def test_new_customer_series_leaves_out_the_exports_first_and_the_unfinished_month():
    a = _activity([("2025-11", "2025-11", 5, 50.0, 5), ("2025-12", "2025-12", 9, 90.0, 9),
                   ("2026-01", "2026-01", 7, 70.0, 7), ("2026-02", "2026-02", 4, 40.0, 4)])
    s = forecast.new_customer_series(a, "2026-02-20")
    assert [str(p) for p in s.index] == ["2025-12", "2026-01"] and s.tolist() == [9.0, 7.0]


def _series(months: int, season: bool = True) -> pd.Series:
    idx = pd.period_range("2020-01", periods=months, freq="M")
    base = np.full(months, 200.0) + np.arange(months)
    if season:
        base = base * np.where(idx.month == 12, 3.0, 1.0)
    return pd.Series(base, index=idx)


def test_two_years_of_first_purchases_forecast_their_season():
    cfg = ForecastConfig()
    paths, how = forecast.forecast_new_customers(_series(36), 12, cfg, 200, np.random.default_rng(0))
    mean = paths.mean(axis=0)  # January 2023 .. December 2023
    assert "yearly season" in how
    assert mean[11] > 2 * np.median(mean[:11])


def test_under_two_years_of_history_the_forecast_has_no_season_and_says_so():
    cfg = ForecastConfig()
    _, how = forecast.forecast_new_customers(_series(14), 12, cfg, 100, np.random.default_rng(0))
    assert "no season" in how and "24 months" in how and "has 14" in how
    paths, how = forecast.forecast_new_customers(_series(3, season=False), 6, cfg, 100, np.random.default_rng(0))
    assert "mean of the 3 full months" in how
    assert paths.mean() == pytest.approx(201.0, rel=0.05)


def _comparison(totals: dict, mae: dict) -> pd.DataFrame:
    return pd.DataFrame({"mae": mae, "predicted_total": totals, "actual_total": {k: 1000.0 for k in totals},
                         "total_error_pct": {k: (v / 1000 - 1) * 100 for k, v in totals.items()}})


def test_the_forecast_takes_the_model_with_the_best_holdout_mae():
    c = _comparison({"mbgnbd": 1060.0, "pareto_nbd": 1020.0, "bgnbd": 1001.0}, {"mbgnbd": 0.70, "pareto_nbd": 0.69,
                                                                                  "bgnbd": 0.80})
    auto = clv.ClvConfig()
    name, why = forecast.forecast_model(c, "mbgnbd", auto)
    assert name == "pareto_nbd"  # BG/NBD's total is closer, but per customer it is the worst
    assert "Pareto/NBD" in why and "0.690" in why and "0.700" in why
    assert forecast.forecast_model(c, "mbgnbd", clv.ClvConfig(model="mbgnbd")) == ("mbgnbd", "")
    assert forecast.forecast_model(c, "pareto_nbd", auto) == ("pareto_nbd", "")
    assert forecast.forecast_model(None, "bgnbd", auto) == ("bgnbd", "")


def test_backtest_actuals_split_customers_won_before_and_after_the_cut_off():
    a = _activity([("2026-01", "2025-12", 5, 50.0, 0), ("2026-02", "2026-01", 3, 30.0, 0),
                   ("2026-02", "2026-02", 4, 40.0, 4), ("2026-04", "2025-12", 9, 90.0, 0)])
    got = forecast._actual(a, pd.Period("2026-01", "M"), 2)
    assert got == {"existing": {"purchases": 3.0, "revenue": 30.0}, "new": {"purchases": 4.0, "revenue": 40.0}}


def test_a_horizon_beyond_the_forecast_is_refused_with_the_key_to_fix():
    with pytest.raises(ConfigError, match="forecast.horizons_months must be at most forecast.months"):
        config_from_dict({"forecast": {"months": 6}})


# --- acquisition: value per new customer, the spend file --------------------------------------------------

def _orders(rows) -> "ibis.Table":
    import ibis
    df = pd.DataFrame(rows, columns=["customer_id", "order_id", "order_date", "amount", "channel", "category",
                                     "coupon_code"])
    df["order_date"] = pd.to_datetime(df["order_date"])
    df["is_return"] = df["amount"] < 0
    return ibis.duckdb.connect().create_table("orders", df)


def test_acquisition_facts_take_the_scores_from_the_engine_and_leave_the_ids_there():
    """04's forecast joins clv.parquet's scores to the new customers in the engine: the facts come without ids, in
    customer_id order, each row with its own customer's scores (empty for a customer without one), and give the
    same values per customer as the scores matched by id in pandas."""
    orders = _orders([("B", "b1", "2024-03-01", 40.0, "ads", "bags", None), ("B", "b2", "2024-09-01", 60.0, "ads", "bags", None),
                      ("A", "a1", "2025-10-01", 20.0, "mail", "shoes", "HELLO"), ("C", "c1", "2025-11-01", 30.0, "ads", "bags", None)])
    scores = pd.DataFrame({"customer_id": ["A", "B"], "frequency": [0, 1], "recency": [0.0, 184.0], "T": [91.0, 670.0],
                           "exp_avg_value": [25.0, 55.0]})
    plain = forecast.acquisition_facts(orders, "2025-12-31", (6, 12))
    joined = forecast.acquisition_facts(orders, "2025-12-31", (6, 12), scores=ibis.memtable(scores))
    assert "customer_id" not in joined and plain["customer_id"].tolist() == ["A", "B", "C"]
    expected = plain.merge(scores, on="customer_id", how="left").drop(columns="customer_id")
    pd.testing.assert_frame_equal(joined, expected, check_dtype=False)
    fit = clv.fit_purchase_model("bgnbd", clv.compress(pd.DataFrame({"frequency": [0, 1, 2, 0, 3], "recency": [0.0, 100, 200, 0, 300],
                                                                     "T": [400.0, 500, 600, 300, 700]}))[0])
    by_id = forecast.customer_values(plain, scores, fit, 0.3, "day", (6, 12))
    pd.testing.assert_frame_equal(forecast.customer_values(joined, None, fit, 0.3, "day", (6, 12))[by_id.columns[1:]],
                                  by_id.drop(columns="customer_id"), check_dtype=False)
    a, b, c = by_id["expected_12m"].tolist()
    assert a > 0 and b == 0 and c == 0  # A is young; B's twelve months are past; C, as young as A, has no score


def test_the_engine_sums_cells_that_give_the_tables_of_the_customers_own_values():
    """04's acquisition tables come from cells the engine sums (each customer's expected revenue taken where the
    rows are, in whole millionths): the same tables, to the millionth, as one row per customer in pandas, the
    groups in the same order, and fewer rows reach pandas than there are customers."""
    rows = [(f"{c}{i}", f"{c}{i}o{k}", f"2025-{4 + (i + k * 4) % 9:02d}-0{1 + k}", 20.0 + 7 * i + k, ch, cat, cp)
            for c, ch, cat, cp in (("W", "web", "shoes", None), ("A", "app", "bags", "HELLO"), ("X", None, "bags", " "))
            for i in range(6) for k in range(1 + i % 3)]
    rows += [("O1", "o1", "2023-05-02", 80.0, "web", "shoes", None),
             ("O1", "o2", "2025-05-02", 30.0, "web", "bags", None)]
    orders = _orders(rows)  # O1 is over two years old: the model adds nothing to them (the engine skips them)
    summary = customer_facts.rfm_summary(orders, "2025-12-31")
    fit = clv.fit_purchase_model("bgnbd", clv.compress(pd.DataFrame({
        "frequency": [0, 1, 2, 0, 3], "recency": [0.0, 100, 200, 0, 300], "T": [400.0, 500, 600, 300, 700]}))[0])
    scores = summary.assign(exp_avg_value=summary["monetary_value"].fillna(0.0) + 10.0)
    table = ibis.memtable(scores[["customer_id", "frequency", "recency", "T", "exp_avg_value"]])
    cells = forecast.acquisition_cells(orders, "2025-12-31", fit, 0.3, "day", (6, 12), scores=table)
    values = forecast.customer_values(forecast.acquisition_facts(orders, "2025-12-31", (6, 12)), scores, fit, 0.3,
                                      "day", (6, 12))
    assert len(cells) < len(values) == 19 and cells["customers"].sum() == 19
    young = values["customer_id"] != "O1"
    assert values["expected_6m"].gt(0).any() and values.loc[young, "expected_12m"].gt(0).all()  # the model's part
    assert values.loc[~young, ["expected_6m", "expected_12m"]].eq(0).all(axis=None)
    for dim in ("channel", "category", "coupon", "cohort"):
        by_cell, by_customer = (forecast.acquisition_table(v, dim, 6, months=(6, 12)) for v in (cells, values))
        assert list(by_cell.index) == list(by_customer.index)
        pd.testing.assert_frame_equal(by_cell, by_customer, check_dtype=False, rtol=1e-6)


def test_two_channels_of_known_worth_are_given_back():
    """Customers won through 'ads' bring 100, then 100 seven months later; through 'mail' one order of 50 and a
    return of 10. All are over two years old, so their worth is what they bought, model or not."""
    rows = []
    for i in range(6):
        rows += [(f"A{i}", f"a{i}", "2023-01-10", 100.0, "ads", "shoes", None),
                 (f"A{i}", f"a{i}b", "2023-08-10", 100.0, "ads", "bags", None),
                 (f"A{i}", f"a{i}c", "2025-06-10", 100.0, "ads", "bags", None)]  # after 24 months: not counted
    for i in range(4):
        rows += [(f"M{i}", f"m{i}", "2023-02-01", 50.0, "mail", "bags", "HELLO"),
                 (f"M{i}", f"m{i}", "2023-02-01", 0.0, "mail", "socks", "HELLO"),
                 (f"M{i}", f"m{i}r", "2023-02-20", -10.0, None, "bags", None)]
    rows.append(("A0", "a0d", "2026-01-05", 100.0, "ads", "bags", None))  # after as_of: never counted
    orders = _orders(rows)
    facts = forecast.acquisition_facts(orders, "2025-12-31", (6, 12, 24))
    # the same from the lines' purchase days, as forecast.run takes them (cached up to a later day)
    days = engine.cache(orders.get_backend(), customer_facts.daily_net(orders, "2026-03-31"))
    pd.testing.assert_frame_equal(forecast.acquisition_facts(orders, "2025-12-31", (6, 12, 24), days), facts)
    values = forecast.customer_values(facts, pd.DataFrame(columns=["customer_id", "frequency", "recency", "T",
                                                                   "exp_avg_value"]), None, 0.3, "day", (6, 12, 24))
    t = forecast.acquisition_table(values, "channel", payback_months=6)
    assert list(t.index) == ["ads", "mail"] and t["customers"].tolist() == [6, 4]
    assert t.loc["ads", "value_12m"] == pytest.approx(0.3 * 200) and t.loc["ads", "value_24m"] == pytest.approx(0.3 * 200)
    assert t.loc["ads", "ceiling"] == pytest.approx(0.3 * 100)  # the second order comes after six months
    assert t.loc["mail", "value_12m"] == pytest.approx(0.3 * 40)
    assert t.loc["ads", "margin_so_far"] == pytest.approx(0.3 * 300)
    assert forecast.acquisition_table(values, "category", 6).index.tolist() == ["shoes", "bags"]  # the largest line
    assert forecast.acquisition_table(values, "coupon", 6).index.tolist() == [forecast.NO_COUPON, "HELLO"]


def _values(channels: dict[str, list[str]]) -> pd.DataFrame:
    """customer_values-like rows: per channel the cohorts ('YYYY-MM') of its customers; each worth 10 at every
    point but 1 month (4)."""
    rows = [{"customer_id": f"{c}{i}", "channel": c, "cohort": m} for c, months in channels.items()
            for i, m in enumerate(months)]
    v = pd.DataFrame(rows)
    for m in forecast.value_points(12):
        v[f"value_{m}m"] = 4.0 if m == 1 else 10.0
    return v


def _spend(rows) -> pd.DataFrame:
    return pd.DataFrame({"month": pd.to_datetime([f"{m}-01" for m, _, _ in rows]), "channel": [c for _, c, _ in rows],
                         "spend": [float(s) for _, _, s in rows]})


def test_without_a_spend_file_there_is_no_cost_and_the_page_says_what_the_file_adds():
    assert forecast.spend_tables(None, _values({"web": ["2026-05"]}), 12) == (None, None)


def test_cost_per_new_customer_ltv_cac_and_payback_per_channel():
    values = _values({"web": ["2026-04", "2026-04", "2026-05", "2026-05"], "app": ["2026-05"]})
    spend = _spend([("2026-04", "Web", 16), ("2026-05", "web ", 24), ("2026-05", "app", 5), ("2026-05", "tv", 100)])
    by_channel, by_month = forecast.spend_tables(spend, values, 12)
    web = by_channel.set_index("channel").loc["Web"]
    assert web["new_customers"] == 4 and web["cost_per_customer"] == pytest.approx(10.0)
    assert web["ltv_cac"] == pytest.approx(1.0) and web["payback_months"] == pytest.approx(3.0)
    app = by_channel.set_index("channel").loc["app"]
    assert app["ltv_cac"] == pytest.approx(2.0) and app["payback_months"] == pytest.approx(1 + 2 / 6)  # 4 at 1, 10 at 3
    tv = by_channel.set_index("channel").loc["tv"]  # spend, but no customer's first order names the channel
    assert tv["new_customers"] == 0 and np.isnan(tv["cost_per_customer"]) and np.isnan(tv["ltv_cac"])
    assert by_channel["channel"].iloc[0] == "app"  # pays best first
    assert len(by_month) == 4 and by_month.set_index(["month", "channel"]).loc[("2026-04", "Web"), "new_customers"] == 2


def test_customers_won_in_a_month_without_spend_do_not_lower_the_cost():
    values = _values({"web": ["2026-04", "2026-05", "2026-05", "2026-06"]})
    by_channel, _ = forecast.spend_tables(_spend([("2026-05", "web", 30)]), values, 12)
    assert by_channel["new_customers"].iloc[0] == 2 and by_channel["cost_per_customer"].iloc[0] == pytest.approx(15.0)
    assert by_channel["months"].iloc[0] == 1


def test_the_page_names_the_channel_that_pays_best_and_the_unpaid_spend():
    from helpers.pages import forecast as page
    values = _values({"web": ["2026-05"] * 4, "app": ["2026-05"]})
    by_channel, by_month = forecast.spend_tables(_spend([("2026-05", "web", 40), ("2026-05", "app", 5),
                                                         ("2026-05", "tv", 9)]), values, 12)
    res = forecast.ForecastResult(as_of="2026-05-31", settings=ForecastConfig(), currency="EUR", gross_margin=0.3,
                                  table=pd.DataFrame(), totals=pd.DataFrame(), history=pd.DataFrame(),
                                  curve=pd.DataFrame(), acquisition={"channel": forecast.acquisition_table(
                                      values.assign(margin_so_far=3.0, expected_12m=0.0), "channel", 12)},
                                  spend_by_channel=by_channel, spend_by_month=by_month)
    text = page.acquisition_answer(res)
    assert "app pays best" in text and "The channel that pays least is web" in text and "Spend on tv won no customer" in text
    res.spend_by_channel = None
    assert "Add marketing_spend.csv" in page.acquisition_answer(res)


def test_the_new_customers_band_carries_how_far_the_same_forecast_missed_a_year_ago():
    """First purchases flat at 100 a month for two years, then 200 a month for the last year: the forecast made a
    year ago (from the flat years) missed the customers won since by about half, and that miss widens the band."""
    months = pd.period_range("2023-06", "2026-06", freq="M")
    won = [100 if m <= pd.Period("2025-06", "M") else 200 for m in months]
    a = _activity([(str(m), str(m), n, 50.0 * n, n) for m, n in zip(months, won)])
    cfg = ForecastConfig()
    error = forecast.new_customer_error(a, "2026-06-30", cfg)
    assert error == pytest.approx(-0.5, abs=0.08)
    d = forecast.new_at(a, pd.Period("2026-06", "M"), 12, cfg)
    wide = forecast.with_model_error(d, error, 3)
    assert wide.centre["revenue"] == pytest.approx(d.centre["revenue"])
    spread = [np.subtract(*np.quantile(x.draws["revenue"].sum(axis=1), [0.9, 0.1])) for x in (d, wide)]
    assert spread[1] > 2 * spread[0]
    assert forecast.new_customer_error(a[a["month"] >= pd.Period("2025-10", "M")], "2026-06-30", cfg) == 0.0
