"""Per-customer facts at a cut-off: one definition shared by segments, CLV, churn, win-back and offers.

Each stage used to compute its own "as of" facts; these tests pin that the shared ones agree with
each other on a hand-built shop (the cut-off day counts to its last second, returns are not
purchases) and that the purchase-model formulas written once here are the ones lifetimes gives."""
import numpy as np
import pandas as pd
import pytest

from helpers import customer_facts as cf
from helpers import engine
from helpers.engine import connect

AS_OF = "2025-03-31"
COLUMNS = ["order_id", "customer_id", "order_date", "amount", "category", "payment_method", "channel",
           "discount_amount", "coupon_code", "is_return"]


def line(order_id, customer_id, when, amount=50.0, is_return=False, coupon=None, channel="web"):
    return (order_id, customer_id, pd.Timestamp(when), amount, "books", "card", channel, 0.0, coupon, is_return)


# A: orders on Jan 1, Feb 1 and at 23:59:59 on the cut-off day (a 10 % coupon on the last); a return in March.
# B: one order, and one after the cut-off that no fact may see. C: only a return (no purchase at all).
ROWS = [
    line("O1", "A", "2025-01-01 10:00"), line("O2", "A", "2025-02-01 10:00", 30.0),
    line("O3", "A", "2025-03-31 23:59:59", 20.0, coupon="SAVE10", channel="app"),
    line("R1", "A", "2025-03-15 09:00", -10.0, is_return=True),
    line("O4", "B", "2025-03-01 12:00", 80.0), line("O5", "B", "2025-04-01 00:00:00", 99.0),
    line("R2", "C", "2025-02-10 08:00", -5.0, is_return=True),
]


@pytest.fixture(scope="module")
def lines():
    con = connect()
    df = pd.DataFrame(ROWS, columns=COLUMNS).astype({"order_date": "datetime64[us]"})
    return con.create_table("facts_lines", df, overwrite=True)


def test_rfm_counts_the_last_second_of_the_cut_off_day_and_nets_returns(lines):
    rfm = cf.rfm_table(lines, AS_OF).set_index("customer_id")
    assert list(rfm.index) == ["A", "B"]  # C bought nothing; B's April order is after the cut-off
    assert rfm.loc["A", ["frequency", "recency_days", "tenure_days"]].tolist() == [3, 0, 89]
    assert rfm.loc["A", "monetary"] == pytest.approx(90.0)  # 50 + 30 + 20 - 10
    assert rfm.loc["B", ["frequency", "recency_days", "monetary"]].tolist() == [1, 30, 80.0]


def test_the_lifetimes_summary_sees_the_same_purchases_as_rfm(lines):
    s = cf.rfm_summary(lines, AS_OF).set_index("customer_id")
    assert s.loc["A", ["frequency", "recency", "T"]].tolist() == [2, 89.0, 89.0]
    assert s.loc["B", ["frequency", "recency", "T"]].tolist() == [0, 0.0, 30.0]
    assert "C" not in s.index


def test_behaviour_at_the_cut_off_has_gaps_discount_share_and_channel_mix(lines):
    levels = cf.mix_levels(lines, AS_OF, top=6)
    f = cf.features_at(lines, AS_OF, levels).to_pandas().set_index("customer_id")
    a = f.loc["A"]
    assert a["orders"] == 3 and a["discount_share"] == pytest.approx(1 / 3)
    assert a["gap_last_days"] == pytest.approx((pd.Timestamp("2025-03-31 23:59:59") - pd.Timestamp("2025-02-01 10:00")).total_seconds() / 86400)
    assert a["channel_share_app"] == pytest.approx(1 / 3) and a["channel_share_web"] == pytest.approx(2 / 3)
    assert set(f.index) == {"A", "B"}


def _features(lines, cutoff, orders=None):
    levels = cf.mix_levels(lines, AS_OF, top=6)
    return cf.features_at(lines, cutoff, levels, orders=orders).to_pandas().sort_values("customer_id", ignore_index=True)


@pytest.mark.parametrize("cutoff", ["2025-01-31", "2025-02-28", AS_OF])
def test_features_cut_from_the_runs_order_history_equal_those_from_the_lines(lines, cutoff):
    """Churn's three cut-offs read one grouped and sorted order history: A's latest order and its gap at an
    earlier cut-off are the ones before that cut-off, B's April order is never seen."""
    history = cf.order_history(lines.get_backend(), lines, AS_OF)
    orders = cf.orders_before(history, cutoff)
    assert orders is not None
    pd.testing.assert_frame_equal(_features(lines, cutoff, orders), _features(lines, cutoff))


def _shop_lines(con, seed=5, n=1500):
    """Not the demo generator's: lines at any minute over 16 months, a fifth of them returns or zero-price lines,
    several per customer and day, and some after every cut-off below."""
    rng = np.random.default_rng(seed)
    when = pd.Timestamp("2024-03-01") + pd.to_timedelta(rng.integers(0, 480 * 24 * 60, n), unit="min")
    amount = np.round(rng.gamma(2.0, 20.0, n), 2) * rng.choice([1, 1, 1, 1, -1, 0], n)
    rows = [line(f"O{i}", f"K{k}", w, a, is_return=a < 0)
            for i, (k, w, a) in enumerate(zip(rng.integers(0, 120, n), when, amount))]
    return con.create_table(f"facts_shop_{seed}", pd.DataFrame(rows, columns=COLUMNS).astype(
        {"order_date": "datetime64[us]", "coupon_code": "string"}), overwrite=True)


@pytest.mark.parametrize("unit", ["day", "week"])
def test_summaries_taken_from_the_cached_daily_net_amounts_equal_those_from_the_lines(unit):
    """04 groups the month's lines once per customer and day and takes every summary from that: at each earlier
    cut-off (one in mid-week), the lifetimes summary, the holdout split and the tracking counts are the lines' own."""
    con = connect()
    lines = _shop_lines(con)
    days = engine.cache(con, cf.daily_net(lines, "2025-06-30"))
    for cutoff in ("2024-09-18", "2025-01-01", "2025-06-30"):
        pd.testing.assert_frame_equal(cf.rfm_summary(days, cutoff, unit), cf.rfm_summary(lines, cutoff, unit))
        pd.testing.assert_frame_equal(cf.calibration_holdout(days, cutoff, 45, unit),
                                      cf.calibration_holdout(lines, cutoff, 45, unit))
        pd.testing.assert_frame_equal(cf.repeat_purchases_per_period(days, cutoff, unit),
                                      cf.repeat_purchases_per_period(lines, cutoff, unit))
    assert len(cf.rfm_summary(days, "2024-09-18", unit)) < len(cf.rfm_summary(days, "2025-06-30", unit))


def test_an_order_whose_lines_straddle_the_cut_off_is_grouped_from_the_lines():
    """Only the lines before a cut-off count: an order with a line on each side of it cannot come from the history
    (its value there is both lines'), so orders_before says so and the features group the lines themselves."""
    con = connect()
    rows = [line("O1", "A", "2025-01-01 10:00"), line("O2", "A", "2025-02-27 10:00", 30.0),
            line("O2", "A", "2025-03-02 10:00", 70.0)]
    split = con.create_table("facts_split", pd.DataFrame(rows, columns=COLUMNS).astype(
        {"order_date": "datetime64[us]", "coupon_code": "string"}), overwrite=True)
    history = cf.order_history(con, split, AS_OF)
    assert cf.orders_before(history, "2025-02-28") is None
    assert cf.orders_before(history, AS_OF) is not None
    f = _features(split, "2025-02-28").set_index("customer_id")
    assert f.loc["A", "revenue_gross"] == pytest.approx(80.0)  # O1 and O2's first line


def test_gaps_between_orders_count_whole_days(lines):
    corders = cf.customer_orders(cf.orders_until(lines, AS_OF))
    hist = cf.gap_histogram(corders, max_days=60).set_index("gap_days")
    assert hist.loc[31, "second_orders"] == 1  # A: Jan 1 -> Feb 1
    assert hist.loc[58, "later_orders"] == 1  # A: Feb 1 -> Mar 31
    assert hist[["second_orders", "later_orders"]].to_numpy().sum() == 2
    assert cf.suggested_inactivity_days(hist.reset_index(), 0.8) == 31


def test_p_buy_if_alive_is_the_bgnbd_closed_form():
    params = {"r": 0.7, "alpha": 60.0}
    f, T, t = np.array([0.0, 3.0]), np.array([100.0, 300.0]), 90.0
    expected = 1 - ((params["alpha"] + T) / (params["alpha"] + T + t)) ** (params["r"] + f)
    np.testing.assert_allclose(cf.buy_if_alive(params, t, f, T), expected)


def test_quintile_scores_need_no_more_than_the_values():
    scores = cf.quintile_scores(pd.Series([5.0, 1.0, 3.0, 3.0, 9.0]))
    assert scores.tolist() == [4, 1, 3, 3, 5]


# --- who is a customer, a lead, a repeat customer (one definition for 01, 02, 04 and 05; issue 27)

# P: two purchase orders, the first with a return under its own order id (a repeat customer).
# Q: one order and a larger credit note booked as its own document (not an order, so not a repeat).
# Z: only a zero-price line. F: a purchase cancelled by a credit note the same day.
# W: a purchase on Monday 3 March returned on Friday 7 March (same week, another day).
# R: only a credit note: no purchase, so no customer. S: bought only after the cut-off.
WHO = [
    line("P1", "P", "2025-01-10 10:00", 100.0), line("P1", "P", "2025-01-20 10:00", -40.0, is_return=True),
    line("P2", "P", "2025-02-10 10:00", 50.0),
    line("Q1", "Q", "2025-01-05 10:00", 100.0), line("QC", "Q", "2025-02-05 10:00", -300.0, is_return=True),
    line("Z1", "Z", "2025-02-01 10:00", 0.0),
    line("F1", "F", "2025-03-01 10:00", 80.0), line("FC", "F", "2025-03-01 16:00", -80.0, is_return=True),
    line("W1", "W", "2025-03-03 10:00", 60.0), line("W1", "W", "2025-03-07 10:00", -60.0, is_return=True),
    line("RC", "R", "2025-01-15 10:00", -25.0, is_return=True),
    line("S1", "S", "2025-04-02 10:00", 70.0),
]


@pytest.fixture(scope="module")
def who():
    con = connect()
    df = pd.DataFrame(WHO, columns=COLUMNS).astype({"order_date": "datetime64[us]", "coupon_code": "string"})
    listed = pd.DataFrame({"customer_id": ["P", "R", "S", "X"]})  # X: listed, no line at all
    return con.create_table("who_lines", df, overwrite=True), con.create_table("who_listed", listed, overwrite=True)


def test_a_customer_has_a_purchase_line_and_a_repeat_customer_two_purchase_orders(who):
    lines, _ = who
    c = cf.customers_expr(lines, AS_OF).to_pandas().set_index("customer_id")["purchase_orders"]
    assert c.sort_index().to_dict() == {"F": 1, "P": 2, "Q": 1, "W": 1, "Z": 1}  # R only returned, S bought later
    assert cf.customer_counts(lines, AS_OF) == cf.CustomerCounts(customers=5, repeat_customers=1, leads=None)


def test_a_lead_is_listed_with_no_purchase_even_if_they_returned_something(who):
    lines, listed = who
    assert sorted(cf.leads_expr(listed, lines, AS_OF).to_pandas()["customer_id"]) == ["R", "S", "X"]
    assert cf.customer_counts(lines, AS_OF, listed).leads == 3
    assert cf.customer_counts(lines, None, listed).leads == 2  # all lines: S has bought by then


@pytest.mark.parametrize("unit, expected", [
    ("day", {"F": "returned", "Z": "zero_price"}),
    ("week", {"F": "returned", "W": "returned", "Z": "zero_price"}),  # W's return falls in its purchase's week
])
def test_customers_with_no_positive_purchase_are_named_with_the_reason(who, unit, expected):
    lines, _ = who
    left = cf.no_positive_purchase(lines, AS_OF, unit)
    assert dict(zip(left["customer_id"], left["reason"])) == expected
    # exactly the customers the purchase models have no row for
    summary = cf.rfm_summary(lines, AS_OF, unit)
    assert set(summary["customer_id"]) | set(left["customer_id"]) == {"F", "P", "Q", "W", "Z"}
    assert not set(summary["customer_id"]) & set(left["customer_id"])


def test_01s_count_of_customers_with_no_positive_purchase_is_reused_only_at_its_own_day_and_period(who):
    lines, _ = who
    assert cf.no_positive_counts(lines, AS_OF, "day") == {"zero_price": 1, "returned": 1}
    by_01 = {"orders": {"no_positive_purchase": {"as_of": AS_OF, "time_unit": "day",
                                                 "customers": {"zero_price": 1, "returned": 7}}}}
    assert cf.no_positive_counts(lines, AS_OF, "day", by_01) == {"zero_price": 1, "returned": 7}  # not counted again
    assert cf.no_positive_counts(lines, AS_OF, "week", by_01) == {"zero_price": 1, "returned": 2}  # W's week
    assert cf.no_positive_counts(lines, "2024-01-01", "day", by_01) == {}


def test_01s_customer_counts_are_taken_only_for_its_own_day_and_with_leads_when_it_had_the_customer_file():
    quality = {"as_of": AS_OF, "orders": {"customers": 5, "repeat_customers": 1},
               "customers": {"leads_without_order": 3}}
    assert cf.counts_from_01(quality, AS_OF, listed=True) == cf.CustomerCounts(5, 1, 3)
    assert cf.counts_from_01(quality, AS_OF, listed=False) == cf.CustomerCounts(5, 1, None)
    assert cf.counts_from_01(quality, "2025-02-28", listed=True) is None
    assert cf.counts_from_01({**quality, "customers": {}}, AS_OF, listed=True) is None
    assert cf.counts_from_01({**quality, "as_of": None}, AS_OF, listed=False) is None
    assert cf.counts_from_01(None, AS_OF, listed=False) is None


def test_average_order_value_is_of_purchase_orders_net_of_their_own_returns_never_of_credit_notes(who):
    lines, _ = who
    rfm = cf.rfm_table(lines, AS_OF).set_index("customer_id")
    assert rfm.loc["P", ["monetary", "avg_order_value"]].tolist() == [110.0, 55.0]  # (100 - 40 + 50) / 2
    assert rfm.loc["Q", ["frequency", "monetary", "avg_order_value"]].tolist() == [1, -200.0, 100.0]
    assert rfm.loc["Z", "avg_order_value"] == 0.0
    assert "R" not in rfm.index
