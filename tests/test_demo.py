"""Tests of the synthetic demo shop: the files follow the raw data contract, the dirt is counted
exactly, and the models' truth can be recovered from the clean rows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter, GammaGammaFitter

from helpers.contract import CONTRACT
from helpers.demo import campaign_type, generate

# Every column of the raw data contract, required ones first (helpers/contract.py).
ORDER_COLUMNS = [*CONTRACT["orders"][0], *CONTRACT["orders"][1]]
CUSTOMER_COLUMNS = [*CONTRACT["customers"][0], *CONTRACT["customers"][1]]
CAMPAIGN_COLUMNS = [*CONTRACT["campaigns"][0], *CONTRACT["campaigns"][1]]
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
WINBACK_CODES = {"WINBACK10", "WINBACK20"}


def _read(path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def shop(demo_raw):
    """The default demo shop (20k buyers, conftest's `demo_raw`): big enough for the recovery tests."""
    out, truth = demo_raw
    orders = _read(out / "orders.csv")
    orders["ts"] = pd.to_datetime(orders["order_date"], format=DATE_FORMAT, errors="coerce")
    orders["value"] = pd.to_numeric(orders["amount"].str.replace(",", ".", regex=False))
    return {"dir": out, "truth": truth, "orders": orders,
            "customers": _read(out / "customers.csv"), "campaigns": _read(out / "campaigns.csv")}


@pytest.fixture(scope="module")
def clean_lines(shop) -> pd.DataFrame:
    """Completed lines with a customer, a valid date and not an exact duplicate (returns out)."""
    o = shop["orders"]
    raw = o[ORDER_COLUMNS]
    keep = ((o["status"] == "completed") & (o["customer_id"] != "") & o["ts"].notna()
            & ~raw.duplicated(keep="first"))
    return o[keep]


def _dirt_flags(orders: pd.DataFrame) -> pd.DataFrame:
    """One boolean column per kind of dirt, detected from the CSV alone."""
    return pd.DataFrame({
        "duplicate_line": orders[ORDER_COLUMNS].duplicated(keep="first"),
        "test_order": orders["status"] == "test",
        "cancelled": orders["status"] == "cancelled",
        "missing_customer_id": orders["customer_id"] == "",
        "bad_date": orders["ts"].isna(),
        "decimal_comma": orders["amount"].str.contains(",", regex=False),
    })


# --- determinism ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_shops(tmp_path_factory):
    dirs = {}
    for name, seed in [("a", 7), ("b", 7), ("c", 8)]:
        dirs[name] = tmp_path_factory.mktemp(f"small_{name}")
        generate(dirs[name], customers=1_500, seed=seed)
    return dirs


FILES = ["orders.csv", "customers.csv", "campaigns.csv", "truth.json"]


@pytest.mark.parametrize("name", FILES)
def test_same_seed_writes_byte_identical_files(small_shops, name):
    assert (small_shops["a"] / name).read_bytes() == (small_shops["b"] / name).read_bytes()


@pytest.mark.parametrize("name", FILES)
def test_different_seed_writes_different_files(small_shops, name):
    assert (small_shops["a"] / name).read_bytes() != (small_shops["c"] / name).read_bytes()


def test_truth_json_is_the_returned_truth(shop):
    assert json.loads((shop["dir"] / "truth.json").read_text()) == shop["truth"]


# --- the raw data contract -----------------------------------------------------------------------

def test_files_have_the_contract_columns_in_order(shop):
    assert list(_read(shop["dir"] / "orders.csv").columns) == ORDER_COLUMNS
    assert list(shop["customers"].columns) == CUSTOMER_COLUMNS
    assert list(shop["campaigns"].columns) == CAMPAIGN_COLUMNS


def test_statuses_are_completed_cancelled_returned_or_test(shop):
    assert set(shop["orders"]["status"]) == {"completed", "cancelled", "returned", "test"}


def test_discount_amount_is_never_negative(shop):
    assert (pd.to_numeric(shop["orders"]["discount_amount"]) >= 0).all()


def test_money_has_two_decimals(shop):
    o = shop["orders"]
    assert o["amount"].str.fullmatch(r"-?\d+[.,]\d{2}").all()
    assert o["discount_amount"].str.fullmatch(r"\d+\.\d{2}").all()


def test_coupon_code_is_empty_or_a_known_coupon(shop):
    assert set(shop["orders"]["coupon_code"]) <= {"", "WELCOME10", "SUMMER15"} | WINBACK_CODES


def test_currency_payment_and_channel_use_the_documented_values(shop):
    o = shop["orders"]
    assert set(o["currency"]) == {"EUR"}
    assert set(o["payment_method"]) == {"card", "paypal", "invoice", "apple_pay"}
    assert set(o["channel"]) == {"web", "app", "marketplace"}
    assert o["category"].nunique() == 8


def test_ids_follow_the_contract_formats(shop):
    o, c = shop["orders"], shop["customers"]
    assert o["order_id"].str.fullmatch(r"O\d{7}").all()
    assert o["product_id"].str.fullmatch(r"P\d{4}").all()
    assert o["customer_id"].str.fullmatch(r"(C\d{6}|TEST\d{4}|)").all()
    assert c["customer_id"].str.fullmatch(r"C\d{6}").all() and c["customer_id"].is_unique
    assert (c["email"] == c["customer_id"].str.lower() + "@example.com").all()


def test_customer_attributes_are_in_range(shop):
    c = shop["customers"]
    assert set(c["gender"]) == {"F", "M", ""}
    assert pd.to_numeric(c["birth_year"]).between(1950, 2005).all()
    assert c["region"].nunique() == 6
    assert set(c["marketing_opt_in"]) == {"0", "1"}


def test_marketing_consent_share_is_70_percent_within_5_points(shop):
    share = (shop["customers"]["marketing_opt_in"] == "1").mean()
    assert share == pytest.approx(0.70, abs=0.05)


def test_leads_exist_and_have_no_orders(shop):
    customers, truth = shop["customers"], shop["truth"]
    buyers = set(shop["orders"]["customer_id"])
    leads = customers[~customers["customer_id"].isin(buyers)]
    assert len(leads) == truth["leads"] == round(0.15 * truth["customers"])
    assert len(customers) == truth["customers"] + truth["leads"]


def test_signup_is_not_after_the_first_order(shop):
    o = shop["orders"]
    real = o[o["customer_id"].str.startswith("C") & o["ts"].notna()]
    first = real.groupby("customer_id")["ts"].min()
    signup = pd.to_datetime(shop["customers"].set_index("customer_id")["signup_date"],
                            format=DATE_FORMAT)
    assert (signup.loc[first.index] <= first).all()


def test_every_valid_date_lies_between_start_and_end(shop):
    truth, o = shop["truth"], shop["orders"]
    ts = o["ts"].dropna()
    assert ts.min() >= pd.Timestamp(truth["start"])
    assert ts.max() < pd.Timestamp(truth["end"]) + pd.Timedelta(days=1)


def test_campaign_rows_follow_the_contract(shop):
    camp, truth = shop["campaigns"], shop["truth"]["campaign"]
    assert set(camp["campaign_id"]) == {truth["campaign_id"]}
    assert set(camp["sent_date"]) == {truth["sent_date"]}
    discount = camp.groupby("arm")["discount"].first().astype(float).to_dict()
    assert discount == {arm: v["discount"] for arm, v in truth["arms"].items()}
    assert camp["customer_id"].isin(shop["customers"]["customer_id"]).all()


def test_campaign_types_follow_the_documented_thresholds():
    lapsed, value = [364, 365, 364, 364, 500], [80.0, 10.0, 79.99, 200.0, 200.0]
    assert campaign_type(lapsed, value).tolist() == \
        ["high_value", "long_lapsed", "low_value", "high_value", "long_lapsed"]


# --- dirt ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["duplicate_line", "test_order", "cancelled",
                                  "missing_customer_id", "bad_date", "decimal_comma"])
def test_dirt_count_in_truth_equals_rows_in_the_csv(shop, kind):
    flags = _dirt_flags(shop["orders"])
    assert shop["truth"]["dirt"][kind] == int(flags[kind].sum()) > 0


def test_each_dirty_row_has_exactly_one_kind_of_dirt(shop):
    assert _dirt_flags(shop["orders"]).sum(axis=1).max() == 1


def test_total_dirt_share_is_between_1_and_3_percent(shop):
    share = _dirt_flags(shop["orders"]).any(axis=1).mean()
    assert 0.01 <= share <= 0.03


def test_bad_dates_use_the_documented_garbage_forms(shop):
    o = shop["orders"]
    assert set(o.loc[o["ts"].isna(), "order_date"]) == {"2025-13-45", "not a date", ""}


def test_decimal_comma_rows_are_otherwise_valid_completed_lines(shop):
    o = shop["orders"]
    comma = o[o["amount"].str.contains(",", regex=False)]
    assert comma["amount"].str.fullmatch(r"\d+,\d{2}").all()
    assert (comma["status"] == "completed").all() and comma["ts"].notna().all()
    assert (comma["customer_id"] != "").all()


def test_cancelled_and_test_orders_are_whole_orders(shop):
    o = shop["orders"]
    for status in ["cancelled", "test"]:
        ids = o.loc[o["status"] == status, "order_id"].unique()
        assert (o.loc[o["order_id"].isin(ids), "status"] == status).all()
    assert o.loc[o["status"] == "test", "customer_id"].str.startswith("TEST").all()


def test_row_counts_in_truth_add_up(shop):
    rows, o = shop["truth"]["rows"], shop["orders"]
    assert rows["orders_csv"] == len(o)
    assert rows["return_lines"] == int((o["status"] == "returned").sum())
    assert rows["orders_csv"] == rows["clean_lines"] + rows["return_lines"] + rows["dirty_lines_to_drop"]


def test_clean_lines_are_exactly_the_rows_left_after_removing_dirt(shop, clean_lines):
    assert len(clean_lines) == shop["truth"]["rows"]["clean_lines"]


def test_return_lines_reverse_a_completed_line_of_the_same_order_later(shop, clean_lines):
    o = shop["orders"]
    ret = o[o["status"] == "returned"]
    assert (ret["value"] < 0).all() and (pd.to_numeric(ret["quantity"]) < 0).all()
    sold = clean_lines[["order_id", "product_id", "value", "ts"]]
    matched = ret.merge(sold, on=["order_id", "product_id"], suffixes=("", "_sold"))
    assert len(matched) == len(ret)
    assert (matched["value"] == -matched["value_sold"]).all()
    assert (matched["ts"] > matched["ts_sold"]).all()


# --- model truth ---------------------------------------------------------------------------------

def _rfm_at_end(lines: pd.DataFrame, end: str) -> pd.DataFrame:
    """frequency = distinct purchase days - 1; recency and T in days, measured at `end`."""
    days = lines.assign(day=lines["ts"].dt.normalize()).drop_duplicates(["customer_id", "day"])
    per = days.groupby("customer_id")["day"].agg(["min", "max", "size"])
    return pd.DataFrame({"frequency": per["size"] - 1,
                         "recency": (per["max"] - per["min"]).dt.days,
                         "T": (pd.Timestamp(end) - per["min"]).dt.days})


def test_bgnbd_truth_is_recovered_by_lifetimes_within_10_percent(shop, clean_lines):
    truth = shop["truth"]
    natural = clean_lines[~clean_lines["coupon_code"].isin(WINBACK_CODES)]  # campaign-induced out
    rfm = _rfm_at_end(natural, truth["end"])
    assert len(rfm) == truth["customers"]
    cells = rfm.value_counts().rename("n").reset_index()  # same likelihood, far fewer rows
    model = BetaGeoFitter(penalizer_coef=0.0).fit(cells["frequency"], cells["recency"], cells["T"],
                                                   weights=cells["n"])
    fitted, true = model.params_, truth["bgnbd"]
    tolerance = 0.10
    assert fitted["r"] == pytest.approx(true["r"], rel=tolerance)
    assert fitted["alpha"] == pytest.approx(true["alpha"], rel=tolerance)
    assert fitted["a"] / (fitted["a"] + fitted["b"]) == pytest.approx(
        true["a"] / (true["a"] + true["b"]), rel=tolerance)


def test_population_mean_order_value_is_the_gamma_gamma_mean_within_10_percent(shop, clean_lines):
    gg = shop["truth"]["gamma_gamma"]
    true_mean = gg["p"] * gg["v"] / (gg["q"] - 1)
    order_values = clean_lines.groupby("order_id")["value"].sum()
    assert order_values.mean() == pytest.approx(true_mean, rel=0.10)


def test_gamma_gamma_fit_recovers_the_mean_order_value_within_10_percent(shop, clean_lines):
    gg = shop["truth"]["gamma_gamma"]
    natural = clean_lines[~clean_lines["coupon_code"].isin(WINBACK_CODES)]
    daily = (natural.assign(day=natural["ts"].dt.normalize())
             .groupby(["customer_id", "day"])["value"].sum().reset_index())
    repeat = daily[daily.groupby("customer_id").cumcount() > 0]  # lifetimes: repeat purchases
    per = repeat.groupby("customer_id")["value"].agg(["size", "mean"])
    model = GammaGammaFitter(penalizer_coef=0.0).fit(per["size"], per["mean"])
    p, q, v = model.params_["p"], model.params_["q"], model.params_["v"]
    assert p * v / (q - 1) == pytest.approx(gg["p"] * gg["v"] / (gg["q"] - 1), rel=0.10)


def test_welcome_coupon_customers_drop_out_more(shop, clean_lines):
    effect = shop["truth"]["coupon_effect"]
    assert effect["mean_dropout_p_with_coupon"] > 1.5 * effect["mean_dropout_p_without_coupon"]
    ordered = clean_lines.sort_values("ts").groupby("customer_id")
    first, first_ts = ordered["coupon_code"].first(), ordered["ts"].first()
    n_orders = clean_lines.groupby("customer_id")["order_id"].nunique()
    # compare customers with at least a year of history, so recent one-order customers don't dominate
    seasoned = first_ts <= pd.Timestamp(shop["truth"]["end"]) - pd.Timedelta(days=365)
    welcome = (first == "WELCOME10") & seasoned
    others = (first != "WELCOME10") & seasoned
    assert n_orders[welcome].mean() < 0.9 * n_orders[others].mean()


def test_truth_has_a_row_stochastic_category_transition(shop):
    matrix = np.array(shop["truth"]["category_transition"])
    assert matrix.shape == (8, 8)
    assert np.allclose(matrix.sum(axis=1), 1.0, atol=1e-5)


# --- win-back campaign ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def campaign_view(shop, clean_lines):
    """One row per campaign customer: arm, lapsed days at sending, purchase in the window."""
    truth = shop["truth"]["campaign"]
    sent = pd.Timestamp(truth["sent_date"])
    camp = shop["campaigns"].set_index("customer_id")
    before = clean_lines[clean_lines["ts"] < sent]
    last = before.groupby("customer_id")["ts"].max().dt.normalize()
    window = clean_lines[(clean_lines["ts"] >= sent)
                         & (clean_lines["ts"] < sent + pd.Timedelta(days=truth["window_days"]))]
    return camp.assign(lapsed_days=(sent - last.reindex(camp.index)).dt.days,
                       bought=camp.index.isin(window["customer_id"]))


def test_campaign_targets_only_customers_lapsed_at_least_120_days(campaign_view):
    assert campaign_view["lapsed_days"].min() >= 120


def test_campaign_arms_are_balanced(shop, campaign_view):
    counts = campaign_view["arm"].value_counts()
    assert counts.max() - counts.min() <= 1
    assert counts.to_dict() == shop["truth"]["campaign"]["n_per_arm"]


def test_campaign_arms_have_similar_recency_before_sending(campaign_view):
    means = campaign_view.groupby("arm")["lapsed_days"].mean()
    assert means.max() / means.min() < 1.05  # randomised: no arm holds the staler customers


def test_campaign_coupons_appear_only_in_their_arm_and_window(shop, clean_lines, campaign_view):
    truth = shop["truth"]["campaign"]
    sent = pd.Timestamp(truth["sent_date"])
    for arm, spec in truth["arms"].items():
        used = clean_lines[clean_lines["coupon_code"] == spec["coupon_code"]] if spec["coupon_code"] else None
        if used is None:
            continue
        assert (campaign_view.loc[used["customer_id"].unique(), "arm"] == arm).all()
        assert used["ts"].between(sent, sent + pd.Timedelta(days=truth["window_days"])).all()


def test_discount_raises_the_purchase_rate_over_control(campaign_view):
    rate = campaign_view.groupby("arm")["bought"].mean()
    assert rate["discount_20"] > rate["discount_10"] > rate["control"]


def test_a_customer_type_exists_on_which_the_discount_changes_nothing(shop, clean_lines, campaign_view):
    uplift = shop["truth"]["campaign"]["true_uplift"]
    zero = [t for t, arms in uplift.items() if all(v == 0 for v in arms.values())]
    assert zero == ["long_lapsed"]
    long_lapsed = campaign_view.index[campaign_view["lapsed_days"] >= 365]
    used = clean_lines[clean_lines["coupon_code"].isin(WINBACK_CODES)]
    assert len(long_lapsed) > 0 and not used["customer_id"].isin(long_lapsed).any()
