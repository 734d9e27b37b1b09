"""Per-customer facts at a cut-off: one definition shared by segments, CLV, churn, win-back and offers.

Each stage used to compute its own "as of" facts; these tests pin that the shared ones agree with
each other on a hand-built shop (the cut-off day counts to its last second, returns are not
purchases) and that the purchase-model formulas written once here are the ones lifetimes gives."""
import numpy as np
import pandas as pd
import pytest

from helpers import customer_facts as cf
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
