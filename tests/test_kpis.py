"""KPIs and cohorts: every number pinned on a hand-built order set whose answer is worked out by hand.

The shop (as_of 2024-03-31, inactivity window 30 days):
  A: 2024-01-05 order O1 (60 + 40, discounted), 2024-02-10 O3 (30), 2024-03-01 O5 (70)
  B: 2024-01-20 O2 (50), 2024-03-31 23:00 O7 (10)
  C: 2024-02-15 O4 (80), returns 20 of it on 2024-03-03
  D: 2024-03-10 O6 (40), 2024-04-01 O8 (99, after as_of: ignored)
"""
from __future__ import annotations

import dataclasses
import math
import pickle

import ibis
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import drawn
from helpers import artifacts, kpis, plots
from helpers.config import ConfigError, config_from_dict
from helpers.pages import kpis as page

AS_OF = "2024-03-31"
LINES = [
    # order_id, customer_id, order_date, amount, is_return, discount_amount, coupon_code, channel, category
    ("O1", "A", "2024-01-05 10:00", 60.0, False, 10.0, None, "web", "shoes"),
    ("O1", "A", "2024-01-05 10:00", 40.0, False, 0.0, None, "web", "bags"),
    ("O2", "B", "2024-01-20 12:00", 50.0, False, 0.0, None, "app", "shoes"),
    ("O3", "A", "2024-02-10 09:00", 30.0, False, 0.0, None, "web", "bags"),
    ("O4", "C", "2024-02-15 18:00", 80.0, False, 0.0, None, "app", "shoes"),
    ("O4", "C", "2024-03-03 08:00", -20.0, True, 0.0, None, "app", "shoes"),
    ("O5", "A", "2024-03-01 11:00", 70.0, False, 0.0, None, "web", "shoes"),
    ("O6", "D", "2024-03-10 15:00", 40.0, False, 0.0, None, "app", "bags"),
    ("O7", "B", "2024-03-31 23:00", 10.0, False, 0.0, None, "web", "bags"),
    ("O8", "D", "2024-04-01 08:00", 99.0, False, 0.0, None, "web", "shoes"),
]
COLS = ["order_id", "customer_id", "order_date", "amount", "is_return", "discount_amount", "coupon_code",
        "channel", "category"]


def _orders(lines=LINES, drop=()):
    df = pd.DataFrame(lines, columns=COLS)
    df["order_date"] = pd.to_datetime(df["order_date"])
    df["coupon_code"] = df["coupon_code"].astype("string")
    return ibis.memtable(df.drop(columns=list(drop)))


@pytest.fixture(scope="module")
def orders():
    return kpis.orders_until(_orders(), AS_OF)


def _customers():
    return pd.DataFrame({
        "customer_id": ["A", "B", "C", "D", "L"],
        "signup_date": pd.to_datetime(["2023-12-20", "2023-12-01", "2024-02-14", "2024-03-05", "2024-01-01"]),
        "gender": ["F", "M", None, "F", "M"],
        "birth_year": [2000, 1980, 1990, 1950, 1985],
        "region": ["North", "South", "North", "East", "East"],
    })


@pytest.fixture(scope="module")
def customers():
    return ibis.memtable(_customers())


@pytest.fixture(scope="module")
def monthly(orders):
    return kpis.monthly(orders, AS_OF, inactivity_days=30).set_index("month")


def _month(folder, drop=(), customers: pd.DataFrame | None = None):
    """`folder` as a processed month: LINES (less the `drop` columns) as orders_clean, `customers` as
    customers_clean."""
    df = pd.DataFrame(LINES, columns=COLS).drop(columns=list(drop))
    df["order_date"] = pd.to_datetime(df["order_date"])
    df.to_parquet(folder / "orders_clean.parquet")
    if customers is not None:
        customers.to_parquet(folder / "customers_clean.parquet")
    return folder


@pytest.fixture(scope="module")
def res(tmp_path_factory):
    """What notebook 02 shows of the shop above, its customers file included (inactivity window 30 days,
    breakdowns over the last 3 months, discount-won customers followed for 60 days)."""
    cfg = config_from_dict({"business": {"inactivity_days": 30},
                            "kpis": {"breakdown_months": 3, "discount_followup_days": 60}})
    return kpis.run(_month(tmp_path_factory.mktemp("month"), customers=_customers()), AS_OF, cfg)


def _bridge(res, m: pd.DataFrame, month: str, base: str = "previous"):
    """`res` showing the revenue bridge of the hand-built monthly table `m` from `base`."""
    return dataclasses.replace(res, bridges={base: kpis.revenue_bridge(m, month, base)})


# ---------------------------------------------------------------- monthly table

@pytest.mark.parametrize("month,expected", [("2024-01", 150.0), ("2024-02", 110.0), ("2024-03", 100.0)])
def test_revenue_is_net_of_returns_booked_in_the_month_of_the_return(monthly, month, expected):
    assert monthly.loc[month, "revenue"] == expected


def test_orders_after_as_of_are_ignored(monthly):
    assert list(monthly.index) == ["2024-01", "2024-02", "2024-03"]


def test_returns_rate_is_returned_value_over_gross_sales(monthly):
    m = monthly.loc["2024-03"]
    assert (m.gross_sales, m.returned_value) == (120.0, 20.0)
    assert m.returns_rate == round(20 / 120, 4)
    assert monthly.loc["2024-01", "returns_rate"] == 0.0


@pytest.mark.parametrize("month,n_orders,active,new,returning", [
    ("2024-01", 2, 2, 2, 0), ("2024-02", 2, 2, 1, 1), ("2024-03", 3, 3, 1, 2)])
def test_a_return_is_not_an_order_and_its_customer_is_not_active(monthly, month, n_orders, active, new, returning):
    m = monthly.loc[month]
    assert (m.orders, m.active_customers, m.new_customers, m.returning_customers) == (n_orders, active, new, returning)


@pytest.mark.parametrize("month,share", [("2024-01", 0.0), ("2024-02", round(30 / 110, 4)), ("2024-03", 0.6)])
def test_returning_revenue_share_counts_earlier_customers_including_their_returns(monthly, month, share):
    # March: A 70 + B 10 + C's return -20 = 60 of 100.
    assert monthly.loc[month, "returning_revenue_share"] == share


def test_aov_and_orders_per_customer(monthly):
    assert monthly.loc["2024-01", "aov"] == 75.0
    assert monthly.loc["2024-03", "aov"] == round(100 / 3, 2)
    assert monthly.loc["2024-03", "orders_per_customer"] == 1.0


@pytest.mark.parametrize("month,rate", [("2024-01", 0.0), ("2024-02", round(1 / 3, 4)), ("2024-03", 0.5)])
def test_repeat_rate_is_share_of_buyers_to_date_with_two_or_more_orders(monthly, month, rate):
    assert monthly.loc[month, "repeat_rate"] == rate


@pytest.mark.parametrize("month,sleeping", [("2024-01", 0), ("2024-02", 1), ("2024-03", 1)])
def test_sleeping_customers_bought_before_and_were_quiet_longer_than_the_window(monthly, month, sleeping):
    # Feb: B (last Jan 20, 40 days). Mar: B woke up on Mar 31; C (last purchase Feb 15, 45 days; a return
    # is not a purchase); A's Mar 1 order is exactly 30 days old, not more.
    assert monthly.loc[month, "sleeping_customers"] == sleeping


def test_sleeping_count_matches_a_brute_force_count_on_random_orders():
    rng = np.random.default_rng(7)
    n = 300
    df = pd.DataFrame({
        "order_id": [f"O{i}" for i in range(n)],
        "customer_id": rng.choice([f"C{i}" for i in range(40)], n),
        "order_date": pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D"),
        "amount": rng.uniform(5, 50, n).round(2), "is_return": rng.random(n) < 0.1,
    })
    df.loc[df.is_return, "amount"] *= -1
    as_of, window = "2024-10-15", 60
    got = kpis.monthly(ibis.memtable(df), as_of, window).set_index("month")["sleeping_customers"]
    buys = df[~df.is_return & (df.order_date <= as_of)]
    for month in got.index:
        end = min(pd.Period(month, "M").end_time.normalize(), pd.Timestamp(as_of))
        last = buys[buys.order_date <= end + pd.Timedelta(hours=23)].groupby("customer_id").order_date.max()
        assert got[month] == int(((end - last.dt.normalize()).dt.days > window).sum()), month


def test_kpi_table_has_the_documented_columns(monthly):
    assert list(monthly.reset_index().columns) == kpis.MONTHLY_COLUMNS


# ---------------------------------------------------------------- deltas and bridge

def test_deltas_compare_with_previous_month_and_same_month_last_year(monthly):
    deltas = kpis.deltas(monthly.reset_index(), "2024-03")
    assert (deltas.month, deltas.previous, deltas.last_year) == ("2024-03", "2024-02", "2023-03")
    d = deltas.table
    assert d.loc["revenue", "this_month"] == 100.0 and d.loc["revenue", "previous_month"] == 110.0
    assert d.loc["revenue", "vs_previous"] == round(100 / 110 - 1, 4)
    assert d.loc["repeat_rate", "vs_previous"] == round(0.5 - 0.3333, 4)  # shares change in points
    assert math.isnan(d.loc["revenue", "same_month_last_year"]) and math.isnan(d.loc["revenue", "vs_last_year"])


def test_report_tables_show_kpis_by_label_with_money_shares_and_changes_formatted(monthly, res):
    m = monthly.reset_index()
    t = page.monthly_table(res, 2)
    assert list(t.columns) == ["2024-02", "2024-03"]
    assert t.loc["Net revenue (EUR)", "2024-03"] == "100" and t.loc["Repeat rate (2+ orders so far)", "2024-03"] == "50.0%"
    d = page.deltas_table(res)
    assert list(d.columns) == ["2024-03", "2024-02", "vs last month", "2023-03 (a year ago)", "vs a year ago"]
    assert d.loc["Net revenue (EUR)", "vs last month"] == "-9.1%"            # 100 vs 110
    assert d.loc["Repeat rate (2+ orders so far)", "vs last month"] == "+16.7 pp"  # 50.0% vs 33.3%
    assert d.loc["Net revenue (EUR)", "vs a year ago"] == "\u2013"           # no month a year back
    assert page.format_kpi("revenue", 1234567.8) == "1,234,568" and page.format_kpi("aov", 76.244) == "76.24"
    february = dataclasses.replace(res, deltas=kpis.deltas(m, "2024-02"))
    assert list(page.deltas_table(february).columns[:2]) == ["2024-02", "2024-01"]


@pytest.mark.parametrize("base", ["previous", "last_year"])
def test_revenue_bridge_parts_add_up_to_the_total_change(base):
    m = pd.DataFrame({"month": ["2023-03", "2024-02", "2024-03"], "revenue": [90.0, 110.0, 100.0],
                      "orders": [3, 2, 3], "active_customers": [2, 2, 3]})
    b = kpis.revenue_bridge(m, "2024-03", base)
    parts = b[b.kind == "part"].value
    totals = b[b.kind == "total"].value
    assert len(parts) == 3
    assert parts.sum() == pytest.approx(totals.iloc[-1] - totals.iloc[0], rel=1e-12, abs=1e-9)


def test_revenue_bridge_puts_no_change_on_an_unchanged_lever():
    m = pd.DataFrame({"month": ["2024-02", "2024-03"], "revenue": [110.0, 100.0], "orders": [2, 3],
                      "active_customers": [2, 3]})
    b = kpis.revenue_bridge(m, "2024-03")
    assert b.loc["orders per customer effect", "value"] == 0.0
    L = (100 - 110) / (math.log(100) - math.log(110))
    assert b.loc["active customers effect", "value"] == pytest.approx(L * math.log(3 / 2))
    assert b.loc["aov effect", "value"] == pytest.approx(L * math.log((100 / 3) / 55))


def test_revenue_bridge_with_equal_revenue_uses_the_limit_of_the_log_mean():
    m = pd.DataFrame({"month": ["2024-02", "2024-03"], "revenue": [100.0, 100.0], "orders": [2, 4],
                      "active_customers": [2, 2]})
    b = kpis.revenue_bridge(m, "2024-03")
    assert b[b.kind == "part"].value.sum() == pytest.approx(0.0, abs=1e-9)
    assert b.loc["orders per customer effect", "value"] == pytest.approx(100 * math.log(2))


def test_a_shop_younger_than_a_year_gets_a_sentence_instead_of_a_year_on_year_bridge(res):
    """A six-month-old shop: no same month last year, so no waterfall, and the page says why."""
    m = pd.DataFrame({"month": ["2025-01", "2025-06"], "revenue": [90.0, 100.0], "orders": [3, 2],
                      "active_customers": [2, 2]})
    b = kpis.revenue_bridge(m, "2025-06", "last_year")
    assert b.kind.tolist() == ["gap"]
    young = _bridge(res, m, "2025-06", "last_year")
    assert page.bridge_takeaway(young, "last_year") == (
        "No revenue bridge from 2024-06: the order history runs from 2025-01 to 2025-06, so there is no 2024-06 "
        "to compare with.")
    assert page.plot_bridge(young, "last_year") is None
    m.loc[0, ["revenue", "orders", "active_customers"]] = [0.0, 0, 0]
    m.loc[0, "month"] = "2025-05"
    assert "one of the two months has none" in page.bridge_takeaway(_bridge(res, m, "2025-06"))


# ---------------------------------------------------------------- cohorts

def test_cohort_table_shares_and_revenue_per_member(orders):
    c = kpis.cohorts(orders, AS_OF).set_index(["cohort", "months_since_first"])
    assert list(c.loc["2024-01"].active_customers) == [2, 1, 2]
    assert list(c.loc["2024-01"].retention) == [1.0, 0.5, 1.0]
    assert list(c.loc["2024-01"].revenue_per_member) == [75.0, 15.0, 40.0]
    assert list(c.loc["2024-02"].active_customers) == [1, 0]          # a return is not buying
    assert list(c.loc["2024-02"].revenue) == [80.0, -20.0]            # but it is in the cohort's revenue
    assert c.loc[("2024-03", 0), "cohort_size"] == 1
    assert list(c.reset_index().columns) == kpis.COHORT_COLUMNS


# ---------------------------------------------------------------- first and second orders

def test_leads_and_share_of_signups_ordering_within_30_days(orders, customers):
    t = kpis.leads_and_signups(orders, customers, AS_OF, days=30).iloc[0]
    # Observable signups (before Mar 1): A (ordered after 16 days), B (51 days), C (1 day), L (never).
    assert (t.listed_customers, t.leads, t.signups_30d_old) == (5, 1, 4)
    assert t.ordered_within_30d == 0.5


def test_second_order_rates_by_cohort_leave_unfinished_windows_empty(orders):
    r = kpis.second_order_rates(orders, AS_OF, windows=(30, 60, 90))
    jan = r.loc["2024-01"]
    assert jan.first_buyers == 2
    assert jan.second_within_30d == 0.0     # A after 36 days, B after 71
    assert jan.second_within_60d == 0.5
    assert math.isnan(jan.second_within_90d)  # no January buyer has been watched for 90 days


def test_discount_won_customers_are_compared_with_full_price_ones(orders):
    t = kpis.discount_first_order(orders, AS_OF, followup_days=60)
    d, f = t.loc["discounted first order"], t.loc["full-price first order"]
    assert (d.customers, d.repeat_rate_60d, d.revenue_per_customer_60d) == (1, 1.0, 200.0)
    assert (f.customers, f.repeat_rate_60d, f.revenue_per_customer_60d) == (1, 0.0, 50.0)


def test_discount_comparison_needs_a_discount_column():
    with pytest.raises(kpis.MissingColumn):
        kpis.discount_first_order(_orders(drop=("discount_amount", "coupon_code")), AS_OF)


def test_gaps_between_orders_and_the_suggested_inactivity_window(orders):
    h = kpis.gap_histogram(orders, max_days=100)
    assert h.set_index("gap_days").second_orders[[36, 71]].tolist() == [1, 1]
    assert h.second_orders.sum() == 2 and h.later_orders.sum() == 1
    assert h.set_index("gap_days").later_orders[20] == 1
    s = kpis.gap_summary(h)
    assert s.loc["second orders", "median_days"] == 36
    assert kpis.suggested_inactivity_days(h, 0.8) == 71


def test_long_gaps_are_counted_in_the_last_bin(orders):
    h = kpis.gap_histogram(orders, max_days=50)
    assert h.set_index("gap_days").second_orders[50] == 1 and len(h) == 51


# ---------------------------------------------------------------- breakdowns

def test_breakdown_by_an_order_column(orders):
    b = kpis.breakdown(orders, "channel", AS_OF, months=3)
    # web: O1 100, O3 30, O5 70, O7 10 (A, B); app: O2 50, O4 80 - 20, O6 40 (B, C, D).
    assert b.loc["web", "revenue"] == 210.0 and b.loc["app", "revenue"] == 150.0
    assert (b.loc["web", "customers"], b.loc["web", "orders"]) == (2, 4)
    assert b.loc["app", "returns_rate"] == round(20 / 170, 4)
    assert b.loc["web", "repeat_rate"] == 0.5  # A ordered three times on the web, B once
    assert b.revenue_share.sum() == pytest.approx(1.0)


def test_breakdown_table_shows_the_hand_computed_aov_and_rates_of_every_group(orders):
    # web: O1 100 + O3 30 + O5 70 (A) + O7 10 (B) = 210 over 4 orders -> AOV 52.50, A repeats (1 of 2);
    # app: O2 50 (B) + O4 80 - 20 (C) + O6 40 (D) = 150 over 3 orders -> AOV 50.00, returned 20 of 170.
    expected = pd.DataFrame({
        "customers": [2, 3], "orders": [4, 3], "revenue": [210.0, 150.0],
        "revenue_share": [round(210 / 360, 4), round(150 / 360, 4)], "aov": [52.5, 50.0],
        "returns_rate": [0.0, round(20 / 170, 4)], "repeat_rate": [0.5, 0.0],
    }, index=pd.Index(["web", "app"], name="channel"))
    pd.testing.assert_frame_equal(kpis.breakdown(orders, "channel", AS_OF, months=3), expected)


def test_breakdown_takeaway_quotes_the_hand_computed_aov(orders, res):
    by_category = kpis.breakdown(orders, "category", AS_OF, months=3)
    pd.testing.assert_frame_equal(res.breakdowns["category"], by_category)
    # shoes: O1 60 + O2 50 + O4 80 - 20 + O5 70 = 240 over 4 orders -> AOV 60; bags: 40 + 30 + 40 + 10 = 120 / 4 = 30
    assert by_category["aov"].to_dict() == {"shoes": 60.0, "bags": 30.0}
    assert "shoes brings the most revenue (67%, average order EUR 60)" in page.breakdown_takeaway(res, "category")


def test_breakdown_window_covers_only_the_last_months(orders):
    b = kpis.breakdown(orders, "channel", AS_OF, months=1)
    assert b.loc["web", "revenue"] == 80.0 and b.loc["app", "revenue"] == 20.0


def test_breakdown_by_age_band_and_unknown_gender(orders, customers):
    age = kpis.breakdown(orders, "age_band", AS_OF, customers, months=3, age_bands=(25, 35, 45, 55, 65))
    assert age.loc["under 25", "revenue"] == 200.0   # A, born 2000
    assert age.loc["65+", "revenue"] == 40.0        # D, born 1950
    g = kpis.breakdown(orders, "gender", AS_OF, customers, months=3)
    assert g.loc["(unknown)", "customers"] == 1      # C


@pytest.mark.parametrize("dimension,drop", [("channel", ("channel",)), ("category", ("category",))])
def test_a_missing_order_column_skips_its_section_with_a_note(tmp_path, dimension, drop, capsys):
    assert kpis.breakdown_or_missing(_orders(drop=drop), dimension, AS_OF) == (None, dimension)
    res = kpis.run(_month(tmp_path, drop=drop), AS_OF, config_from_dict({}))
    assert res.skipped[dimension] == dimension and dimension not in res.breakdowns
    assert page.breakdown_table(res, dimension) is None and page.plot_breakdown(res, dimension) is None
    assert f"needs the {dimension} column" in capsys.readouterr().out


@pytest.mark.parametrize("dimension", ["region", "age_band"])
def test_a_missing_customer_column_or_file_skips_its_section_with_a_note(orders, customers, month_dir, dimension,
                                                                         capsys):
    assert kpis.breakdown_or_missing(orders, dimension, AS_OF, None) == (None, kpis.CUSTOMERS_FILE)
    res = kpis.run(month_dir, AS_OF, config_from_dict({}))  # no customers file
    assert page.breakdown_table(res, dimension) is None
    assert "Skipped" in capsys.readouterr().out
    if dimension == "region":
        assert kpis.breakdown_or_missing(orders, dimension, AS_OF, customers.drop("region")) == (None, "region")


@pytest.mark.parametrize("dimension, column", [("gender", "gender"), ("age_band", "birth_year")])
def test_a_customer_column_without_a_single_value_is_said_absent_not_tabulated_as_unknown(orders, customers,
                                                                                          dimension, column):
    """A platform export carries the column empty: the page said "(unknown) brings the most revenue", 100 %."""
    empty = customers.mutate(**{column: ibis.null().cast(customers[column].type())})
    assert kpis.breakdown_or_missing(orders, dimension, AS_OF, empty) == (None, column)


# ---------------------------------------------------------------- config, artifacts, takeaways

@pytest.mark.parametrize("values", [{"inactivity_quantile": 1.5}, {"second_order_windows": [60, 30]},
                                    {"breakdown_months": 0}])
def test_bad_kpi_settings_are_refused_naming_the_key(values):
    with pytest.raises(ConfigError, match=f"kpis.{next(iter(values))}"):
        config_from_dict({"kpis": values})


@pytest.fixture()
def month_dir(tmp_path):
    return _month(tmp_path)


def test_run_writes_kpis_and_cohorts_csv(month_dir):
    cfg = config_from_dict({"business": {"inactivity_days": 30}})
    run = kpis.run(month_dir, AS_OF, cfg)
    assert run.leads is None  # no customers file
    saved = pd.read_csv(month_dir / "kpis.csv")
    assert list(saved.columns) == [*kpis.MONTHLY_COLUMNS, "guest_revenue"] and saved.revenue.tolist() == [150.0, 110.0, 100.0]
    assert list(pd.read_csv(month_dir / "cohorts.csv").columns) == kpis.COHORT_COLUMNS
    for name in ("kpis", "cohorts"):  # what a later stage reads back matches the declaration
        artifacts.check(name, artifacts.read(month_dir, name))


def test_the_result_holds_the_tables_of_the_functions_with_its_settings(month_dir, orders):
    cfg = config_from_dict({"shop": {"currency": "CZK"}, "business": {"inactivity_days": 30},
                            "kpis": {"breakdown_months": 3, "second_order_windows": [30, 60],
                                     "discount_followup_days": 60}})
    res = kpis.run(month_dir, AS_OF, cfg)
    m = kpis.monthly(orders, AS_OF, 30)
    pd.testing.assert_frame_equal(res.monthly, kpis.with_guest_revenue(m, None))  # no guest_revenue.csv here: 0
    assert "Net revenue (CZK)" in page.monthly_table(res, 2).index and list(page.monthly_table(res, 2).columns) == [
        "2024-02", "2024-03"]
    pd.testing.assert_frame_equal(res.deltas.table, kpis.deltas(m).table)
    assert "Net revenue (CZK)" in page.deltas_table(res).index
    assert "worth CZK 100 net" in page.monthly_takeaway(res)
    pd.testing.assert_frame_equal(res.bridges["previous"], kpis.revenue_bridge(m, base="previous"))
    pd.testing.assert_frame_equal(res.bridges["last_year"], kpis.revenue_bridge(m, base="last_year"))
    pd.testing.assert_frame_equal(res.breakdowns["channel"], kpis.breakdown(orders, "channel", AS_OF, months=3))
    assert list(res.second_orders.columns) == ["first_buyers", "second_within_30d", "second_within_60d"]
    assert "repeat_rate_60d" in res.discount.columns
    assert page.breakdown_table(res, "region") is None and page.plot_breakdown(res, "region") is None
    ax = page.plot_breakdown(res, "channel")
    assert ax.get_title() == "Net revenue by channel, last 3 months" and ax.get_xlabel() == "net revenue (CZK)"


def test_the_result_holds_plain_data_and_no_engine_object(res):
    """The page reads the result only: nothing on it can reach back into the engine."""
    values = [getattr(res, f.name) for f in dataclasses.fields(res)]
    values += [*res.bridges.values(), *res.breakdowns.values(), res.deltas.table]
    assert not [v for v in values if type(v).__module__.split(".")[0] in ("ibis", "duckdb", "pyspark")]
    assert sorted(res.breakdowns) == ["age_band", "category", "channel", "gender", "region"]
    assert res.skipped == {"payment_method": "payment_method"}
    pickle.loads(pickle.dumps(res))  # frames, numbers and settings only: no connection to carry


def test_takeaways_are_computed_from_the_numbers(res):
    text = page.monthly_takeaway(res)
    assert "In 2024-03 3 customers placed 3 orders worth EUR 100 net" in text
    assert "fell by EUR 10" in page.bridge_takeaway(res, "previous")
    assert "within 71 days" in page.inactivity_takeaway(res)


# ---------------------------------------------------------------- what the figures draw

def test_trend_chart_stacks_returning_under_new_revenue_per_month(res):
    # returning revenue: Jan 0, Feb 30 of 110, Mar 60 of 100 (drawn from the share kept to 4 decimals: +-0.01 %)
    ax = page.plot_trend(res)
    bars = drawn.bars(ax)
    assert list(bars) == ["returning customers", "new customers"]
    assert bars["returning customers"] == pytest.approx([0.0, 30.0, 60.0], abs=0.02)
    assert bars["new customers"] == pytest.approx([150.0, 80.0, 40.0], abs=0.02)
    assert drawn.bottoms(ax)["new customers"] == pytest.approx([0.0, 30.0, 60.0], abs=0.02)
    assert drawn.legend(ax) == ["returning customers", "new customers"]
    assert drawn.xticks(ax) == ["2024-01", "2024-02", "2024-03"]


def test_breakdown_chart_draws_each_groups_net_revenue_largest_first(res):
    ax = page.plot_breakdown(dataclasses.replace(res, currency="CZK"), "channel")
    assert drawn.yticks(ax) == ["web", "app"]
    assert [round(p.get_width(), 6) for p in ax.patches] == [210.0, 150.0]
    assert [t.get_text() for t in ax.texts] == ["210", "150"]
    assert ax.get_xlabel() == "net revenue (CZK)"


def test_bridge_chart_draws_each_levers_part_under_its_own_label(res):
    # 10 -> 12 customers, 10 -> 15 orders (1.25 per customer), revenue 100 -> 195 (AOV 10 -> 13);
    # logarithmic mean L = 95 / ln 1.95, each lever's part L ln(x1 / x0)
    m = pd.DataFrame({"month": ["2024-02", "2024-03"], "revenue": [100.0, 195.0], "orders": [10, 15],
                      "active_customers": [10, 12]})
    L = 95 / math.log(1.95)
    parts = [L * math.log(1.2), L * math.log(1.25), L * math.log(1.3)]
    ax = page.plot_bridge(_bridge(res, m, "2024-03"))
    assert drawn.xticks(ax) == ["active customers", "orders per customer", "average order value", "total change"]
    assert [p.get_height() for p in ax.patches] == pytest.approx([*parts, 95.0])
    assert [p.get_y() for p in ax.patches] == pytest.approx([0, 0, 0, 0])  # each bar is a change, from zero
    assert [t.get_text() for t in ax.texts] == ["+26", "+32", "+37", "+95"]
    assert ax.get_title() == "What moved revenue from 2024-02 (EUR 100) to 2024-03 (EUR 195)"


# ---------------------------------------------------------------- tables and figures for people

def test_every_table_notebook_02_shows_uses_reader_names_only(res):
    shown = {
        "bridge": page.bridge_table(res, "previous"),
        "retention": page.retention_table(res),
        "leads": page.leads_table(res),
        "second orders": page.second_order_table(res),
        "discount": page.discount_table(res),
        "gaps": page.gap_table(res),
        "breakdown": page.breakdown_table(res, "channel"),
    }
    assert {name: plots.unreadable_names(t) for name, t in shown.items()} == {name: [] for name in shown}


def test_breakdown_table_shows_money_with_its_currency_and_rates_in_percent(res):
    t = page.breakdown_table(dataclasses.replace(res, currency="CZK", min_rate_base=1), "channel")
    assert t.loc["app"].to_dict() == {
        "customers": "3", "orders": "3", "net revenue (CZK)": "150", "share of net revenue": "41.7%",
        "average order value (CZK)": "50.00", "returns rate": "11.8%", "customers with 2+ orders in the window": "0.0%"}
    # under reports.min_rate_base (100 by default) a group of 3 customers shows its counts, not "0.0%"
    assert page.breakdown_table(res, "channel").loc["app", "customers with 2+ orders in the window"] == "0 of 3"
    assert page.breakdown_table(res, "payment_method") is None  # a skipped section stays skipped


def test_bridge_table_names_the_lever_and_shows_whole_money_with_separators(res):
    m = pd.DataFrame({"month": ["2024-02", "2024-03"], "revenue": [100_000.0, 195_000.0], "orders": [10, 15],
                      "active_customers": [10, 12]})
    t = page.bridge_table(_bridge(res, m, "2024-03"))
    assert list(t.columns) == ["amount (EUR)", "kind"] and t.index.name == "step"
    assert "average order value effect" in t.index and t.loc["revenue 2024-03", "amount (EUR)"] == "195,000"


def test_second_order_table_shows_13_cohorts_in_percent_and_an_unfinished_window_as_a_dash(res):
    t = page.second_order_table(dataclasses.replace(res, min_rate_base=1))
    assert t.loc["2024-01"].tolist() == ["2", "0.0%", "50.0%", plots.MISSING]
    # reports.min_rate_base (100): a cohort of 2 first-time buyers shows its counts, never "50.0%"
    assert page.second_order_table(res).loc["2024-01"].tolist() == ["2", "0 of 2", "1 of 2", plots.MISSING]
    long = pd.DataFrame({"first_buyers": range(20), "second_within_30d": 0.25},
                        index=pd.Index([f"c{i:02d}" for i in range(20)], name="cohort"))
    cut = page.second_order_table(dataclasses.replace(res, second_orders=long))
    assert len(cut) == 14 and cut.index[0] == "c07" and cut.index[-1] == "... 7 earlier cohorts not shown"


def test_bridge_of_a_one_percent_month_draws_the_change_at_a_scale_that_shows_it(res):
    """On revenue's scale a 1 % change was a step one pixel high; the bars are the changes, from zero."""
    m = pd.DataFrame({"month": ["2024-02", "2024-03"], "revenue": [1000.0, 1010.0], "orders": [10, 10],
                      "active_customers": [10, 10]})
    ax = page.plot_bridge(_bridge(res, m, "2024-03"))
    lo, hi = ax.get_ylim()
    assert lo <= 0 < 10 <= hi < 20  # the axis spans the change (10), not the revenue (1,010)
    assert ax.patches[-1].get_height() == pytest.approx(10.0)
    plt.close("all")


def test_cohort_heatmap_labels_every_cell_in_percent(res):
    ax = page.plot_cohort_heatmap(res)
    labels = [t.get_text() for t in ax.texts]
    assert labels and all(t.endswith("%") for t in labels)
    plt.close("all")


def test_guest_revenue_is_named_beside_the_customers_revenue_never_inside_it(month_dir):
    """Revenue of lines without a customer id (01's guest_revenue.csv) goes into kpis.csv's own column and the
    page's answer; `revenue` stays what customers bought."""
    before = kpis.run(month_dir, AS_OF, config_from_dict({}))
    month = before.monthly["month"].iloc[-1]
    artifacts.write(month_dir, "guest_revenue", pd.DataFrame({"month": [month], "lines": [3], "orders": [2],
                                                              "revenue": [25.0]}))
    res = kpis.run(month_dir, AS_OF, config_from_dict({}))
    assert res.monthly["revenue"].tolist() == before.monthly["revenue"].tolist()
    assert res.monthly["guest_revenue"].iloc[-1] == 25.0 and before.monthly["guest_revenue"].iloc[-1] == 0.0
    total = before.monthly["revenue"].iloc[-1] + 25.0
    assert f"Guest orders without a customer id brought EUR 25 more ({25.0 / total:.1%} of the shop's" in page.answer(res)
    assert "Guest orders" not in page.answer(before)
    assert "Net revenue of guest orders (no customer id) (EUR)" in page.monthly_table(res).index


def test_second_order_windows_stay_cumulative_over_one_base_per_cohort():
    """A real shop read 47.1 % within 60 days and 33.3 % within 90: the 90-day rate was over the few buyers of
    the cohort's first days. One base per cohort, and no rate until the window is over for all of it."""
    lines = [("a1", "A", "2024-01-01 10:00", 10.0, False, 0.0, None, "web", "x"),
             ("a2", "A", "2024-03-15 10:00", 10.0, False, 0.0, None, "web", "x"),  # A: second order after 74 days
             ("b1", "B", "2024-01-30 10:00", 10.0, False, 0.0, None, "web", "x"),
             ("b2", "B", "2024-02-20 10:00", 10.0, False, 0.0, None, "web", "x"),  # B: after 21 days
             ("c1", "C", "2024-01-31 10:00", 10.0, False, 0.0, None, "web", "x")]
    r = kpis.second_order_rates(_orders(lines), "2024-04-10", windows=(30, 60, 90))
    jan = r.loc["2024-01"]  # every January buyer is 60 days old by 2024-04-10, C (01-31) not yet 90
    assert (jan.first_buyers, jan.second_within_30d, jan.second_within_60d) == (3, round(1 / 3, 4), round(1 / 3, 4))
    assert math.isnan(jan.second_within_90d)  # A's 90-day rate alone (1 of 1 watched) would read 100 %


def test_the_comparison_sentence_never_names_the_running_count_of_sleeping_customers(res):
    """'Sleeping customers rose the most (+112.8 %)' while past buyers nearly doubled: a count that grows with the
    customer base is no KPI move; the answer gives the sleeping share of past buyers instead."""
    m = pd.DataFrame({"month": ["2023-03", "2024-02", "2024-03"], "revenue": [100.0, 100.0, 110.0],
                      "orders": [10, 10, 11], "active_customers": [10, 10, 10], "sleeping_customers": [5, 10, 30]})
    for c, v in {"gross_sales": 1.0, "returned_value": 0.0, "returns_rate": 0.0, "new_customers": 1,
                 "returning_customers": 1, "returning_revenue_share": 0.5, "aov": 10.0, "orders_per_customer": 1.0,
                 "repeat_rate": 0.5}.items():
        m[c] = v
    text = page.deltas_takeaway(dataclasses.replace(res, deltas=kpis.deltas(m)))
    assert "sleeping" not in text and "revenue rose the most (+10.0%)" in text
