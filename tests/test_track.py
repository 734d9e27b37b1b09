"""Track record and closed loop (issue 19): last months' predictions scored against what happened, and a
planned campaign measured against its plan.

Three kinds of test:
- a tiny hand-built history (three customers, order lines written here) where every metric is known by
  hand, including a month where nothing was predicted and one whose horizon has not passed;
- the power calculation against the textbook figure;
- a 12-month backfill of a small demo shop, driven through the stage functions the notebooks call
  (clean, clv, churn, track; segments and winback in the months that plan or measure a campaign), because
  7 notebooks x 12 months through papermill take many minutes. Cheap, and said so: the shop's export is
  cleaned once per period of history (every stage cuts its data at its own as_of, so a month's stages see
  no later order), the CLV stage skips its holdout comparison (holdout longer than the history)
  and its fits are capped at 150 likelihood evaluations. In April 2026 the plan's
  campaign is "sent" by `send_campaign` (campaign log and the responders' orders, a known effect); June
  (April + 2) measures it next to its plan.
"""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from helpers import artifacts, churn, clean, clv, demo, publish, segments, summary, track, winback
from helpers.config import config_from_dict, load_config
from helpers.pages import summary as summary_page
from helpers.pages import track as page
from helpers.pages import winback as winback_page
from helpers.paths import project_root

ROOT = project_root()


# --------------------------------------------------------------------------- a tiny hand-built history

def _lines(rows):
    df = pd.DataFrame(rows, columns=["customer_id", "order_date", "amount"])
    df["order_id"] = [f"O{i}" for i in range(len(df))]
    df["order_date"] = pd.to_datetime(df["order_date"]).astype("datetime64[us]")
    df["is_return"] = df["amount"] < 0
    df["source_row"] = np.arange(len(df), dtype="int64")
    return df


def _snapshot(as_of, rows, horizon=90):
    df = pd.DataFrame(rows, columns=["customer_id", "exp_purchases_30d", "exp_purchases_90d", "p_purchase_90d",
                                     "churn_probability"])
    df["as_of"], df["churn_horizon_days"], df["clv"], df["period_days"] = as_of, horizon, 10.0, 1
    return df[track.PREDICTION_COLUMNS]


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """Shop 'hand': 2025-12 predicted three customers, 2026-02 kept no prediction, 2026-03 predicted two;
    this month is 2026-04 (as_of 2026-04-30)."""
    shop = tmp_path_factory.mktemp("hand") / "processed" / "hand"
    lines = _lines([
        ("A", "2026-01-10 10:00", 20.0), ("A", "2026-01-10 18:00", 5.0),  # two lines, one purchase day
        ("A", "2026-02-15 10:00", 30.0), ("A", "2026-03-20 10:00", 30.0),
        ("B", "2026-01-05 10:00", 10.0), ("B", "2026-01-20 10:00", -10.0),  # a return is no purchase
        ("C", "2026-04-10 10:00", 15.0),  # after December's 90 days, inside March's 30
        ("A", "2025-11-01 10:00", 10.0), ("B", "2025-11-01 10:00", 10.0), ("C", "2025-11-01 10:00", 10.0),
    ])
    for month in ("2025-12", "2026-02", "2026-03", "2026-04"):
        (shop / month).mkdir(parents=True)
    artifacts.write(shop / "2025-12", "predictions", _snapshot("2025-12-31", [
        ("A", 1.0, 2.0, 0.8, 0.1), ("B", 0.5, 1.0, 0.4, 0.7), ("C", 0.5, 1.0, 0.3, 0.9)]))
    artifacts.write(shop / "2026-03", "predictions", _snapshot("2026-03-31", [
        ("A", 2.0, 3.0, 0.9, 0.2), ("C", 0.5, 1.0, 0.3, 0.9)]))
    artifacts.atomic(artifacts.path(shop / "2026-04", "orders_clean"), lambda tmp: lines.to_parquet(tmp, index=False))
    cfg = load_config("config/default.yml")
    res = track.run(shop / "2026-04", "2026-04-30", cfg)
    return res, shop


def _row(res, month, model):
    r = res.rows[(res.rows["month"] == month) & (res.rows["model"] == model)]
    assert len(r) == 1, (month, model, res.rows)
    return r.iloc[0]


def test_purchases_are_scored_as_the_model_counts_them_days_with_a_purchase(history):
    res, _ = history
    r30, r90 = _row(res, "2025-12", "purchases_30d"), _row(res, "2025-12", "purchases_90d")
    # 30 days to 2026-01-30: A one purchase day (two lines), B one (its return is none), C none
    assert (r30["predicted"], r30["actual"], r30["error_pct"]) == (2.0, 2.0, 0.0)
    assert r30["mae"] == pytest.approx((0 + 0.5 + 0.5) / 3)
    # 90 days to 2026-03-31: A three, B one, C none (its April order is later)
    assert (r90["predicted"], r90["actual"]) == (4.0, 4.0)
    assert r90["mae"] == pytest.approx((1 + 0 + 1) / 3)


def test_probabilities_get_brier_auc_and_the_error_of_the_expected_count(history):
    res, _ = history
    buy, ch = _row(res, "2025-12", "p_purchase_90d"), _row(res, "2025-12", "churn")
    assert buy["brier"] == pytest.approx((0.2 ** 2 + 0.6 ** 2 + 0.3 ** 2) / 3)
    assert buy["error_pct"] == pytest.approx(100 * (1.5 - 2) / 2)
    assert buy["auc"] == 1.0
    # churned = no purchase in the 90 days: C only
    assert (ch["predicted"], ch["actual"]) == (pytest.approx(1.7), 1.0)
    assert ch["brier"] == pytest.approx((0.1 ** 2 + 0.7 ** 2 + 0.1 ** 2) / 3)
    assert ch["auc"] == 1.0 and ch["error_pct"] == pytest.approx(70.0)


def test_a_month_without_a_snapshot_and_a_horizon_not_yet_passed_are_listed_with_their_status(history):
    res, _ = history
    assert _row(res, "2026-02", "all")["status"] == "no prediction kept"
    r30, r90 = _row(res, "2026-03", "purchases_30d"), _row(res, "2026-03", "purchases_90d")
    assert r30["status"] == "scored" and (r30["predicted"], r30["actual"]) == (2.5, 1.0)
    assert r90["status"] == "horizon not complete" and r90["horizon_end"] == "2026-06-29"
    table = page.record_table(res)
    assert list(table.index) == ["2026-03", "2026-02", "2025-12"]
    assert table.loc["2026-03", "purchases 90 d: error"] == "after 2026-06-29"
    assert table.loc["2026-02", "status"] == "no prediction kept"
    assert table.loc["2025-12", "churners: error"] == "+70%"


def test_the_track_record_is_written_and_reads_back_as_declared(history):
    res, shop = history
    back = artifacts.read(shop / "2026-04", "track_record")
    assert len(back) == len(res.rows) and set(back["status"]) == {"scored", "horizon not complete", "no prediction kept"}


def test_march_30_day_over_forecast_beyond_the_band_raises_the_alarm(history):
    res, _ = history
    (alarm,) = [a for a in page.alarms(res.rows, res.settings.error_band) if "30 days" in a]
    assert "+150%" in alarm and "2026-03" in alarm
    assert page.takeaway(res).startswith("ALARM")


def test_the_latest_scored_months_calibration_is_on_the_result_and_the_page_shows_it(history):
    res, _ = history
    month, groups = res.calibrations["purchases_90d"]
    assert month == "2025-12" and groups["customers"].sum() == 3
    assert res.calibrations["purchases_30d"][0] == "2026-03"  # March's 30 days have passed, its 90 not yet
    table = page.calibration_table(res)
    assert table.index.name == "expected purchases, next 90 days (2025-12): group (1 = lowest prediction)"
    assert page.calibration_table(res, "churn").index.name.startswith("churn probability (2025-12)")
    # the page draws from the result: data only, no methods
    assert not [n for n, v in vars(track.TrackResult).items() if callable(v) and not n.startswith("__")]


def test_calibration_groups_customers_by_prediction():
    cal = track.calibration([0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1], bins=2)
    assert cal["mean_predicted"].round(2).tolist() == [0.15, 0.35]
    assert cal["mean_actual"].tolist() == [0.0, 1.0]


def _rows(errors, model="purchases_90d"):
    months = [f"2026-0{i + 1}" for i in range(len(errors))]
    return pd.DataFrame([track._row(m, model, "scored", 90, None, {"error_pct": e, "mae": 0.5})
                         for m, e in zip(months, errors)])


@pytest.mark.parametrize("errors, says", [
    ([2.0, 12.0, 15.0, 9.0], "over-forecasts by 12% for three months running"),
    ([-12.0, 1.0, -8.0], "under-forecasts by 8% in 2026-03"),
    ([30.0, 3.0, -2.0], "on target (within 5%) for two months running"),
])
def test_the_verdict_says_in_words_how_a_model_has_done_lately(errors, says):
    cfg = load_config("config/default.yml").track
    assert says in page.verdict(_rows(errors), "purchases_90d", cfg)


def test_an_error_beyond_the_configured_band_is_an_alarm_and_within_it_is_not():
    assert page.alarms(_rows([5.0, 25.0]), band=0.2)
    assert not page.alarms(_rows([25.0, 5.0]), band=0.2)


# --------------------------------------------------------------------------- the power calculation

def test_control_group_size_matches_the_textbook_two_proportion_sample_size():
    # 5 % -> 7 %, alpha 5 % two-sided, power 80 %, equal groups: n = (z_a sqrt(2 pbar qbar) + z_b sqrt(p0 q0 +
    # p1 q1))^2 / delta^2 = 2,212.2, so 2,213 per group (Fleiss, Levin & Paik 2003, without continuity correction)
    assert winback.power_two_proportions(0.05, 0.02, 2213, 2213, 0.05) >= 0.8
    assert winback.power_two_proportions(0.05, 0.02, 2212, 2212, 0.05) < 0.8
    assert winback.detectable_uplift(0.05, 2213, 2213) == pytest.approx(0.02, abs=1e-4)
    # a list of 4,426: the smallest control group that reaches 80 % (the larger treated arm helps a little)
    n_c = winback.control_size(4426, 0.05, 0.02, 0.05, 0.8, 0.5)
    assert 2100 < n_c <= 2213
    assert winback.power_two_proportions(0.05, 0.02, 4426 - n_c, n_c, 0.05) >= 0.8
    assert winback.power_two_proportions(0.05, 0.02, 4426 - n_c + 1, n_c - 1, 0.05) < 0.8


def test_a_small_list_holds_back_at_most_the_configured_share_and_says_what_it_can_detect():
    assert winback.control_size(100, 0.05, 0.02, 0.05, 0.8, 0.5) == 50
    assert winback.control_size(100, 0.05, 0.02, 0.05, 0.8, 0.0) == 0
    assert winback.detectable_uplift(0.05, 50, 50) > 0.1


def test_the_control_group_is_drawn_within_segments_and_the_same_seed_draws_the_same_customers():
    targets = pd.DataFrame({"customer_id": [f"C{i:03d}" for i in range(30)], "segment": ["A"] * 20 + ["B"] * 10})
    one, two = winback.assign_control(targets, 9, seed=1), winback.assign_control(targets, 9, seed=1)
    assert one.equals(two) and int(one.sum()) == 9
    assert int(one[:20].sum()) == 6 and int(one[20:].sum()) == 3


# --------------------------------------------------------------------------- a 12-month backfill with a campaign

MONTHS = [str(d.date()) for d in pd.date_range("2025-07-31", "2026-06-30", freq="ME")]
PLAN_AS_OF, MEASURE_AS_OF = "2026-04-30", "2026-06-30"
EFFECT = 0.3  # a treated customer places an extra order in the window with this probability


def send_campaign(raw, plan: pd.DataFrame, effect: float, seed: int = 7) -> set[str]:
    """The shop sends campaign_plan.csv: its rows are appended to the raw campaigns.csv, and each treated
    customer places an extra order within the window with probability `effect`. Returns the responders."""
    rng = np.random.default_rng(seed)
    camp = pd.read_csv(raw / "campaigns.csv", dtype=str)
    pd.concat([camp, plan.astype(str)], ignore_index=True).to_csv(raw / "campaigns.csv", index=False)
    treated = plan[plan["arm"] != "control"].sort_values("customer_id")
    hit = treated[rng.random(len(treated)) < effect]
    orders = pd.read_csv(raw / "orders.csv", dtype=str)
    sent = pd.Timestamp(plan["sent_date"].iloc[0])
    extra = pd.DataFrame({"order_id": [f"X{i:05d}" for i in range(len(hit))], "customer_id": hit["customer_id"],
                          "order_date": [str(sent + pd.Timedelta(days=int(d), hours=12)) for d in rng.integers(0, 25, len(hit))],
                          "amount": "40.00", "status": "completed", "currency": "EUR", "quantity": "1"})
    pd.concat([orders, extra], ignore_index=True).to_csv(raw / "orders.csv", index=False)
    return set(hit["customer_id"])


def _month(processed, as_of):
    return processed / as_of[:7]


@pytest.fixture(scope="module")
def backfill(tmp_path_factory):
    """12 months of a 400-customer demo shop through the stage functions; April's plan sent; June measures it."""
    tmp = tmp_path_factory.mktemp("backfill")
    raw, processed = tmp / "raw" / "small", tmp / "processed" / "small"
    demo.generate(raw, customers=400, seed=11)
    values = yaml.safe_load((ROOT / "config" / "default.yml").read_text())
    values["clv"]["max_evaluations"] = 150
    values["clv"]["holdout_days"] = 5000  # longer than the history: the holdout comparison is skipped (3 fits fewer)
    values["churn"]["min_customers"] = 10 ** 6  # the BG/NBD baseline, no classifier: cheap
    cfg = config_from_dict(values)
    # One cleaning per stretch of history: every stage cuts its data at its own as_of, so a month's stages
    # see no later order; April's cleaning serves July to April, June's (after sending) May and June.
    source = _month(processed, PLAN_AS_OF)
    clean.run(source, PLAN_AS_OF, cfg, raw_dir=raw)
    responders, plan_run = set(), None
    for as_of in MONTHS:
        pdir = _month(processed, as_of)
        if pdir != source:
            pdir.mkdir(parents=True, exist_ok=True)
            for name in ("orders_clean", "customers_clean", "campaigns_clean"):
                if artifacts.exists(source, name):
                    shutil.copy(artifacts.path(source, name), artifacts.path(pdir, name))
        clv.run(pdir, as_of, cfg)
        churn.run(pdir, as_of, cfg)
        if as_of in (PLAN_AS_OF, MEASURE_AS_OF):
            segments.run(pdir, as_of, cfg)
            wb = winback.run(pdir, as_of, cfg)
            plan_run = wb if as_of == PLAN_AS_OF else plan_run
        res = track.run(pdir, as_of, cfg)
        if as_of == PLAN_AS_OF:  # the shop sends April's plan; May and June see its orders
            responders = send_campaign(raw, artifacts.read(pdir, "campaign_plan"), EFFECT)
            source = _month(processed, MEASURE_AS_OF)
            clean.run(source, MEASURE_AS_OF, cfg, raw_dir=raw)
    return {"res": res, "plan_run": plan_run, "processed": processed, "responders": responders, "cfg": cfg}


def test_after_a_12_month_backfill_the_track_record_has_every_month_whose_horizon_passed(backfill):
    res = backfill["res"]
    rows = res.rows
    scored90 = set(rows.loc[(rows["model"] == "purchases_90d") & (rows["status"] == "scored"), "month"])
    # June 30: a 90-day horizon has passed for predictions made at the end of March or earlier
    assert scored90 == {m[:7] for m in MONTHS if m <= "2026-03-31"}
    scored30 = set(rows.loc[(rows["model"] == "purchases_30d") & (rows["status"] == "scored"), "month"])
    assert scored30 == {m[:7] for m in MONTHS[:-1]}
    table = page.record_table(res)
    assert list(table.index) == [m[:7] for m in MONTHS[:-1]][::-1]
    assert table.loc["2026-04", "purchases 90 d: error"] == "after 2026-07-29"
    assert page.takeaway(res).count("scored") >= 1 and "11 earlier month(s)" in page.takeaway(res)


def test_the_trend_chart_draws_one_line_per_scored_model(backfill):
    ax = page.plot_trend(backfill["res"])
    labels = [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert {"expected purchases, next 30 days", "expected purchases, next 90 days", "churn probability"} <= set(labels)


def test_the_contact_list_and_the_plan_leave_the_control_group_out(backfill):
    pdir = _month(backfill["processed"], PLAN_AS_OF)
    plan = artifacts.read(pdir, "campaign_plan")
    targets = artifacts.read(pdir, "winback_targets")
    control = set(plan.loc[plan["arm"] == "control", "customer_id"])
    assert control and not control & set(targets["customer_id"])
    assert set(plan.loc[plan["arm"] != "control", "customer_id"]) == set(targets["customer_id"])
    the_plan = artifacts.read(pdir, "winback_plan")
    assert int(the_plan.loc[the_plan["recommended"] & the_plan["discount"].notna(), "n_customers"].sum()) == len(targets)
    group = backfill["plan_run"].control
    assert group.n_control == len(control) and "control group of" in winback_page.control_takeaway(backfill["plan_run"])


def test_two_months_after_sending_the_measured_uplift_stands_next_to_the_plan_and_covers_the_truth(backfill):
    res = backfill["res"]
    (chk,) = [c for c in res.checks if c.month == PLAN_AS_OF[:7]]
    assert chk.status == "scored"
    # the truth: treated responders who would not have bought in the window anyway
    lines = artifacts.read(_month(backfill["processed"], MEASURE_AS_OF), "orders_clean")
    window = lines[(lines["order_date"] >= "2026-05-01") & (lines["order_date"] < "2026-05-31") & ~lines["is_return"]]
    organic = set(window.loc[~window["order_id"].str.startswith("X"), "customer_id"])
    true_extra = len(backfill["responders"] - organic)
    # stated tolerance: the 95 % interval of the measured extra buyers covers the true count
    assert chk.measured_low <= true_extra <= chk.measured_high
    assert chk.measured_low > 0  # a 30 % effect on ~50 customers is visible
    table = page.campaign_table(res)
    assert table.loc[PLAN_AS_OF[:7], "status"] == "measured"
    assert "it worked" in page.campaign_takeaway(res)


def test_the_index_links_the_track_record_of_a_month_that_scored_earlier_predictions(history, tmp_path):
    res, shop = history
    reports = tmp_path / "reports"
    for month in ("2026-03", "2026-04"):
        artifacts.write_file(reports / "hand" / month / "07_summary.html", "<html></html>")
    index = publish.build_index(reports, processed_base=shop.parent).read_bytes().decode()
    assert 'href="hand/2026-04/07_summary.html#Track-record">track record</a>' in index
    assert "hand/2026-03/07_summary.html#Track-record" not in index  # March's run scored nothing (no file)


def test_the_summary_counts_the_contacts_and_shows_the_control_group_apart(backfill, tmp_path):
    april = shutil.copytree(_month(backfill["processed"], PLAN_AS_OF), tmp_path / "small" / PLAN_AS_OF[:7])
    res = summary.run(april, PLAN_AS_OF, backfill["cfg"])  # on a copy: 07 writes its files there
    n_control = backfill["plan_run"].control.n_control
    said = summary_page.winback_takeaway(res)
    assert f"reach {backfill['plan_run'].control.n_treated:,} customers" in said
    assert f"control group of {n_control:,} customers" in said


def test_without_this_months_orders_nothing_is_scored_and_the_page_says_why(tmp_path):
    month = tmp_path / "processed" / "shop" / "2026-04"
    month.mkdir(parents=True)
    res = track.run(month, "2026-04-30", load_config("config/default.yml"))
    assert "orders_clean.parquet (01_clean) is missing" in page.takeaway(res)
    # a first run: the takeaway alone, no empty table, chart or calibration
    assert page.record_table(res) is None and page.plot_trend(res) is None and page.calibration_table(res) is None
    assert page.campaign_table(res) is None and "campaign_plan.csv" in page.campaign_takeaway(res)


def test_an_empty_contact_list_plans_no_campaign_and_says_so():
    empty = artifacts.empty("winback_targets")
    group, held = winback.control_group(empty, artifacts.empty("winback_measured"), "2026-06-30",
                                        load_config("config/default.yml"))
    plan = winback.campaign_plan(empty, held, group)
    artifacts.check("campaign_plan", plan)
    assert plan.empty and group.n_control == 0
    assert winback_page.control_takeaway(winback.WinbackResult(control=group)).startswith("Nobody is on the contact list")


def _activity(rows) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["month", "first_month", "purchases", "revenue", "new"])
    return df.assign(month=[pd.Period(m, "M") for m in df["month"]],
                     first_month=[pd.Period(m, "M") for m in df["first_month"]])


def _forecast_card(as_of="2026-03-31"):
    return {"as_of": as_of, "time_unit": "day", "band": 0.8, "totals": [
        {"months": 3, "source": "all", "revenue": 1000.0, "revenue_low": 900.0, "revenue_high": 1100.0},
        {"months": 3, "source": "existing", "revenue": 700.0, "revenue_low": 650.0, "revenue_high": 750.0},
        {"months": 6, "source": "all", "revenue": 2000.0, "revenue_low": 1800.0, "revenue_high": 2200.0}]}


def test_a_forecast_is_scored_once_its_months_have_passed_with_its_band():
    """March's forecast of April-June revenue (existing and new customers) against the months' revenue, and its
    six-month forecast listed as not complete until September has ended."""
    activity = _activity([("2026-03", "2026-01", 5, 999.0, 0), ("2026-04", "2026-01", 3, 400.0, 0),
                          ("2026-05", "2026-05", 2, 350.0, 2), ("2026-06", "2026-02", 1, 450.0, 0),
                          ("2026-07", "2026-02", 1, 77.0, 0)])
    rows = pd.DataFrame(track.score_forecast("2026-03", _forecast_card(), "2026-06-30", activity))
    three = rows.set_index("model").loc["forecast_3m"]
    assert three["status"] == track.SCORED and three["actual"] == 1200.0 and three["predicted"] == 1000.0
    assert three["error_pct"] == pytest.approx(100 * (1000 - 1200) / 1200)
    assert (three["band_low"], three["band_high"]) == (900.0, 1100.0) and three["horizon_end"] == "2026-06-30"
    six = rows.set_index("model").loc["forecast_6m"]
    assert six["status"] == track.NOT_YET and six["horizon_end"] == "2026-09-30"
    assert "forecast_12m" not in set(rows["model"])  # that month forecast no 12-month total
    full = pd.DataFrame(rows, columns=track.RECORD_COLUMNS)
    artifacts.check("track_record", full.astype({"customers": "int64", "horizon_days": "int64"}))
    assert "held the actual revenue in 0 of 1 scored forecast." in page.band_coverage(full)
    table = page.record_table_from_rows(full)
    assert table.loc["2026-03", "revenue 3 m: error"] == "-17%, outside its band"
    assert table.loc["2026-03", "revenue 6 m: error"] == "after 2026-09-30"
