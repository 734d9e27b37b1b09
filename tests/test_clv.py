"""CLV stage: the per-customer summary on hand-built orders, the holdout split, compressed fits,
fast scores equal to lifetimes', recovery of the demo shop's true parameters, and the fallbacks."""
from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import ibis
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from helpers import artifacts, clv, customer_facts, engine, plots
from helpers.config import ClvConfig, config_from_dict
from helpers.pages import clv as page
from helpers.paths import resolve

# Cut-off 2025-01-31 (the whole day counts).
LINES = [
    ("C1", "2025-01-01 10:00", 10.0),   # same day as the next line: one purchase of 15
    ("C1", "2025-01-01 18:00", 5.0),
    ("C1", "2025-01-05 09:00", 20.0),
    ("C1", "2025-01-10 09:00", 30.0),
    ("C1", "2025-02-01 09:00", 100.0),  # after the cut-off: ignored
    ("C2", "2025-01-20 12:00", 40.0),   # a single order
    ("C3", "2025-01-02 12:00", 50.0),
    ("C3", "2025-01-08 12:00", -20.0),  # a return-only day is not a purchase
    ("C4", "2025-01-03 12:00", 60.0),
    ("C4", "2025-01-15 12:00", 40.0),   # return netted into its day: purchase of 30
    ("C4", "2025-01-15 13:00", -10.0),
    ("C5", "2025-02-03 12:00", 70.0),   # only after the cut-off: not a customer yet
    ("C6", "2025-01-31 23:30", 25.0),   # on the cut-off day: counts, T = 0
]
EXPECTED = {  # frequency, recency, T, monetary_value
    "C1": (2, 9.0, 30.0, 25.0),
    "C2": (0, 0.0, 11.0, 0.0),
    "C3": (0, 0.0, 29.0, 0.0),
    "C4": (1, 12.0, 28.0, 30.0),
    "C6": (0, 0.0, 0.0, 0.0),
}


def orders_table(lines=LINES) -> ibis.Table:
    df = pd.DataFrame(lines, columns=["customer_id", "order_date", "amount"])
    df["order_date"] = pd.to_datetime(df["order_date"])
    return ibis.memtable(df)


def write_orders_clean(folder: Path, lines) -> Path:
    """(customer_id, order_date, amount) lines as a month's orders_clean.parquet (one order per line)."""
    df = pd.DataFrame(lines, columns=["customer_id", "order_date", "amount"])
    n = len(df)
    df.insert(0, "order_id", [f"O{i:05d}" for i in range(n)])
    df["order_date"] = pd.to_datetime(df["order_date"]).astype("datetime64[us]")
    df["amount"] = df["amount"].astype(float)
    df = df.assign(quantity=1.0, product_id="P1", category="shoes", status="completed", payment_method="card",
                   channel="web", currency="EUR", discount_amount=0.0, coupon_code=pd.Series([None] * n, dtype="str"),
                   is_return=df["amount"] < 0, source_row=np.arange(n, dtype="int64"))
    artifacts.write(folder, "orders_clean", df)
    return folder


def small_shop_lines(customers: int = 300, seed: int = 11, end: str = "2025-06-30") -> list[tuple]:
    """A small shop not made by the demo generator: first orders through 2024 and the first half of
    2025, repeat orders at a customer's own rate until they drop out (a seeded BG/NBD-like process)."""
    rng = np.random.default_rng(seed)
    start, stop = pd.Timestamp("2024-01-01"), pd.Timestamp(end) + pd.Timedelta(hours=20)
    lines = []
    for i in range(customers):
        t = start + pd.Timedelta(days=int(rng.integers(0, 540)), hours=int(rng.integers(8, 20)))
        rate, p_drop = rng.gamma(2.0, 1 / 60), rng.beta(1.0, 4.0)  # purchases per day; drop-out after a purchase
        while t < stop:
            lines.append((f"S{i:04d}", t.strftime("%Y-%m-%d %H:%M"), float(np.round(rng.gamma(4.0, 15.0), 2))))
            if rng.random() < p_drop:
                break
            t += pd.Timedelta(days=float(rng.exponential(1 / rate)))
    return lines


def summary_of(con, lines=LINES, cut_off="2025-01-31", unit="day") -> pd.DataFrame:
    return con.to_pandas(customer_facts.rfm_summary_expr(orders_table(lines), cut_off, unit)).set_index("customer_id").sort_index()


def test_summary_matches_the_hand_computed_example(con):
    s = summary_of(con)
    assert list(s.index) == list(EXPECTED)
    for cid, (f, r, T, m) in EXPECTED.items():
        assert s.loc[cid, "frequency"] == f
        assert s.loc[cid, "recency"] == r
        assert s.loc[cid, "T"] == T
        assert s.loc[cid, "monetary_value"] == pytest.approx(m, abs=1e-9)


@pytest.mark.parametrize("cid, frequency", [("C2", 0), ("C6", 0), ("C3", 0)])
def test_customer_with_one_purchase_day_has_frequency_zero_and_no_monetary_value(con, cid, frequency):
    s = summary_of(con)
    assert s.loc[cid, "frequency"] == frequency and s.loc[cid, "monetary_value"] == 0.0


def test_orders_after_the_cut_off_are_ignored(con):
    s = summary_of(con)
    assert "C5" not in s.index
    assert s.loc["C1", "frequency"] == 2


def test_same_week_orders_merge_when_the_time_unit_is_a_week(con):
    lines = [("W1", "2025-01-06 10:00", 10.0), ("W1", "2025-01-12 10:00", 10.0),  # Monday and Sunday
             ("W1", "2025-01-13 10:00", 30.0)]                                    # next Monday
    s = summary_of(con, lines, cut_off="2025-01-31", unit="week")
    assert tuple(s.loc["W1", ["frequency", "recency", "T"]]) == (1, 1.0, 3.0)
    assert s.loc["W1", "monetary_value"] == pytest.approx(30.0)


def test_rfm_summary_returns_pandas_sorted_by_customer(con):
    s = clv.rfm_summary(orders_table(), "2025-01-31")
    assert list(s.columns) == ["customer_id", "frequency", "recency", "T", "monetary_value"]
    assert list(s["customer_id"]) == sorted(EXPECTED)


def test_calibration_holdout_counts_purchases_after_the_calibration_end(con):
    # as_of 2025-01-31, holdout 20 days -> calibration ends 2025-01-11
    d = clv.calibration_holdout(orders_table(), "2025-01-31", 20).set_index("customer_id")
    assert list(d.index) == ["C1", "C3", "C4"]  # C2 and C6 first bought in the holdout
    assert tuple(d.loc["C1", ["frequency_cal", "recency_cal", "T_cal"]]) == (2, 9.0, 10.0)
    assert d.loc["C1", "frequency_holdout"] == 0
    assert d.loc["C4", "frequency_cal"] == 0 and d.loc["C4", "T_cal"] == 8.0
    assert d.loc["C4", "frequency_holdout"] == 1 and d.loc["C4", "spend_holdout"] == pytest.approx(30.0)
    assert (d["duration_holdout"] == 20.0).all()


def test_compress_keeps_weights_and_maps_back_every_row():
    s = pd.DataFrame({"frequency": [0, 1, 0, 1, 2], "recency": [0.0, 3, 0, 3, 5], "T": [9.0, 9, 9, 9, 9]})
    u, inv = clv.compress(s)
    assert len(u) == 3 and u["weights"].sum() == 5
    pd.testing.assert_frame_equal(u.iloc[inv][["frequency", "recency", "T"]].reset_index(drop=True), s)


# --- demo shop with known truth -------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo_summary(con, demo_shop):
    """The demo shop's summary at its last day (conftest: generated and cleaned in a temporary folder),
    campaign-induced WINBACK orders removed (they are extra orders outside the BG/NBD process)."""
    processed, truth = demo_shop
    o = con.read_parquet(str(Path(processed) / "orders_clean.parquet"))
    o = o.filter(~o.coupon_code.fill_null("").startswith("WINBACK"))
    return clv.rfm_summary(o, truth["end"]), truth


def log_standard_errors(name: str, unique: pd.DataFrame, params: dict) -> dict:
    """Standard errors of the log-parameters from the Hessian of the (per-customer mean) likelihood at
    `params`, by central differences of its exact gradient, times the number of customers."""
    f, r, T, w = (unique[c].to_numpy(float) for c in ("frequency", "recency", "T", "weights"))
    scale = 1.0 / T.max()
    objective, _ = clv._objective(name, f, r * scale, T * scale, w, 0.0)
    keys = clv.PARAM_NAMES[name]
    x = np.log([params[k] * (scale if k == "alpha" else 1.0) for k in keys])
    h = 1e-4
    H = np.column_stack([(np.asarray(objective(x + h * e)[1]) - np.asarray(objective(x - h * e)[1])) / (2 * h)
                         for e in np.eye(len(x))])
    return dict(zip(keys, np.sqrt(np.diag(np.linalg.inv((H + H.T) / 2 * w.sum())))))


def test_bgnbd_recovers_the_demo_truth_within_3_standard_errors_plus_10_percent(demo_summary):
    # Tolerance on each log-parameter: 3 standard errors (20,000 customers pin r and alpha to about 2 %,
    # a and b only to about 5-7 %) plus 10 % for what the demo generator adds to a pure BG/NBD process
    # (seed 42's alpha sits 9 % off, 4.7 standard errors). Over seeds 42, 7, 2026 and 5 the largest
    # error was b = -11 % (seed 7): a fixed 10 % passed seed 42 only.
    summary, truth = demo_summary
    u, _ = clv.compress(summary)
    fit = clv.fit_purchase_model("bgnbd", u)
    se = log_standard_errors("bgnbd", u, fit.params)
    for k, true in truth["bgnbd"].items():
        assert abs(np.log(fit.params[k] / true)) <= 0.10 + 3 * se[k], (k, fit.params[k], true, se[k])


def test_gamma_gamma_recovers_the_demo_truth_within_15_percent(demo_summary):
    summary, truth = demo_summary
    gg = clv.fit_gamma_gamma(summary)
    for k, true in truth["gamma_gamma"].items():
        assert gg.params[k] == pytest.approx(true, rel=0.15), k


def test_compressed_fit_gives_the_same_parameters_as_the_uncompressed_one(demo_summary):
    summary, _ = demo_summary
    u, _ = clv.compress(summary)
    full = summary[["frequency", "recency", "T"]].assign(weights=1)
    a, b = clv.fit_purchase_model("bgnbd", u), clv.fit_purchase_model("bgnbd", full)
    assert len(u) < len(summary)
    for k in a.params:
        assert a.params[k] == pytest.approx(b.params[k], rel=1e-4), k


@pytest.mark.parametrize("name", ["bgnbd", "mbgnbd", "pareto_nbd"])
def test_fast_expected_purchases_equal_lifetimes_own_formula(demo_summary, name):
    summary, _ = demo_summary
    u, _ = clv.compress(summary.iloc[:3000])
    fit = clv.fit_purchase_model(name, u)
    f, r, T = (u[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    ok = T > 0
    ours = clv.expected_purchases(fit, 90, f[ok], r[ok], T[ok])
    theirs = clv.lifetimes_expected_purchases(fit, 90, f[ok], r[ok], T[ok])
    finite = np.isfinite(theirs)  # lifetimes' Pareto/NBD formula overflows for a few rows; ours does not
    assert finite.mean() > 0.99 and np.isfinite(ours).all()
    np.testing.assert_allclose(ours[finite], theirs[finite], rtol=1e-8)


# --- bounded fits: lifetimes' likelihood under L-BFGS-B ------------------------------------------

@pytest.fixture(scope="module")
def cdnow():
    """lifetimes' CDNOW summary (2,357 customers, weeks) and lifetimes' own fits of each model on it."""
    import warnings

    from lifetimes import (
        BetaGeoFitter,
        GammaGammaFitter,
        ModifiedBetaGeoFitter,
        ParetoNBDFitter,
    )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pkg_resources deprecation inside lifetimes.datasets
        from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value

        d = load_cdnow_summary_data_with_monetary_value()
        u, _ = clv.compress(d)
        args = (u["frequency"], u["recency"], u["T"])
        theirs = {"bgnbd": BetaGeoFitter().fit(*args, weights=u["weights"]),
                  "mbgnbd": ModifiedBetaGeoFitter().fit(*args, weights=u["weights"]),
                  "pareto_nbd": ParetoNBDFitter().fit(*args, weights=u["weights"], initial_params=np.ones(4))}
        rep = d[d["frequency"] > 0]
        theirs["gamma_gamma"] = GammaGammaFitter().fit(rep["frequency"], rep["monetary_value"])
    return d, u, {k: dict(m.params_) for k, m in theirs.items()}


@pytest.mark.parametrize("name", ["bgnbd", "mbgnbd", "pareto_nbd", "gamma_gamma"])
def test_fitted_parameters_equal_lifetimes_own_fit_on_cdnow_to_1e_3(cdnow, name):
    d, u, theirs = cdnow
    ours = clv.fit_gamma_gamma(d) if name == "gamma_gamma" else clv.fit_purchase_model(name, u, time_unit="week")
    assert ours.boundary is None
    for k, v in theirs[name].items():
        assert ours.params[k] == pytest.approx(v, rel=1e-3), k


@pytest.mark.parametrize("params", [(0.55, 0.2, 0.6, 0.25), (1.0, 1.0, 1.0, 1.0), (2.1, 0.09, 75.0, 24.7),
                                    (0.5, 2.0, 0.7, 0.3)])
def test_our_pareto_nbd_likelihood_equals_lifetimes_own_per_customer(cdnow, params):
    from lifetimes import ParetoNBDFitter

    _, u, _ = cdnow
    f, r, T, w = (u[c].to_numpy(float) for c in ("frequency", "recency", "T", "weights"))
    r, T = r / T.max(), T / T.max()  # the fit's time scale: the oldest customer has age 1
    theirs = ParetoNBDFitter._negative_log_likelihood(np.array(params), f, r, T, w, 0.1) / len(f)
    assert clv.pareto_nbd_nll(f, r, T, w, 0.1)(np.array(params)) == pytest.approx(theirs, rel=1e-12)


def test_the_fitted_model_is_a_lifetimes_fitter_that_scores_like_lifetimes_own(cdnow):
    from lifetimes import BetaGeoFitter

    _, u, theirs = cdnow
    fit = clv.fit_purchase_model("bgnbd", u)
    assert isinstance(fit.model, BetaGeoFitter)
    ref = BetaGeoFitter()
    ref.params_ = pd.Series(theirs["bgnbd"])
    f, r, T = (u[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    np.testing.assert_allclose(fit.model.conditional_probability_alive(f, r, T),
                               ref.conditional_probability_alive(f, r, T), rtol=1e-3)


@pytest.mark.parametrize("name", ["bgnbd", "pareto_nbd"])
def test_a_tiny_evaluation_budget_stops_the_fit_and_says_so(cdnow, name):
    _, u, _ = cdnow
    with pytest.raises(clv.FitFailed, match="stopped at its cap of 5 likelihood evaluations"):
        clv.fit_purchase_model(name, u, max_evaluations=5)


def test_a_fit_past_its_time_limit_is_abandoned_and_says_so(cdnow):
    _, u, _ = cdnow
    with pytest.raises(clv.FitFailed, match="time limit of 1e-09 s"):
        clv.fit_purchase_model("pareto_nbd", u, fit_seconds=1e-9)


def test_the_same_fit_twice_gives_the_same_bytes(cdnow):
    _, u, _ = cdnow
    a, b = clv.fit_purchase_model("pareto_nbd", u), clv.fit_purchase_model("pareto_nbd", u)
    assert json.dumps(a.params) == json.dumps(b.params)


# --- a shop whose customers share one dropout rate: the boundary, named ----------------------------

def homogeneous_dropout_lines(customers: int = 4000, mean_life_days: float = 240.0, seed: int = 7,
                              end: str = "2025-12-31") -> list[tuple]:
    """A shop the demo generator did not make: first orders spread over two years, purchase rates
    that differ (Gamma, mean one in 30 days), Poisson purchases while active, and exponential
    lifetimes with ONE common mean (`mean_life_days`) for everyone. Pareto/NBD's maximum-likelihood
    point is then on the boundary: s and beta grow together, s/beta = 1/mean_life_days."""
    rng = np.random.default_rng(seed)
    stop = pd.Timestamp(end) + pd.Timedelta(hours=20)
    first = stop - pd.to_timedelta(rng.uniform(1, 730, customers), unit="D")
    rate = rng.gamma(2.0, 1 / 60, customers)
    active = np.minimum(rng.exponential(mean_life_days, customers), (stop - first) / pd.Timedelta(days=1))
    n = rng.poisson(rate * active)
    owner = np.repeat(np.arange(customers), n)
    times = first[owner] + pd.to_timedelta(rng.uniform(0, active[owner]), unit="D")
    days = pd.DatetimeIndex(np.concatenate([first, times])).strftime("%Y-%m-%d %H:%M")
    who = np.concatenate([np.arange(customers), owner])
    values = np.round(rng.gamma(4.0, 15.0, len(who)), 2)
    return list(zip([f"H{w:05d}" for w in who], days, values))


@pytest.fixture(scope="module")
def homogeneous_run(tmp_path_factory):
    folder = write_orders_clean(tmp_path_factory.mktemp("homogeneous"), homogeneous_dropout_lines())
    # Pareto/NBD pinned, as on the 30,000-customer shop of issue 14 where its fit never finished
    return folder, clv.run(folder, "2025-12-31", config_from_dict({"clv": {"model": "pareto_nbd"}}))


def test_on_a_shop_with_one_common_dropout_rate_the_report_names_the_boundary(homogeneous_run):
    _, res = homogeneous_run
    assert res.final.name == "pareto_nbd" and res.final.params["s"] > clv.BOUNDARY_SHAPE
    assert res.final.boundary in page.comparison_takeaway(res)
    text = res.final.boundary
    assert text.startswith("Pareto/NBD: customers' dropout rates hardly differ: about 1 in ")
    days = float(text.split("about 1 in ")[1].split(" days")[0].replace(",", ""))
    assert days == pytest.approx(240, rel=0.2)  # the generator's common mean lifetime, within 20 %
    assert "In the holdout comparison, Pareto/NBD: customers' dropout rates hardly differ" \
        in page.comparison_takeaway(res)


def test_on_the_homogeneous_shop_gamma_gamma_names_order_values_that_hardly_differ(homogeneous_run):
    _, res = homogeneous_run  # every order value is Gamma(4, 15): mean 60 for everyone
    text = res.gamma_gamma.boundary
    assert text.startswith("Gamma-Gamma: customers' typical order values hardly differ beyond chance: about ")
    assert float(text.split("about ")[1].split(" per order")[0]) == pytest.approx(60, rel=0.05)


def test_on_the_homogeneous_shop_every_fit_finishes_within_its_cap(homogeneous_run):
    folder, res = homogeneous_run
    assert res.comparison["mae"].notna().all()
    assert not any("cap" in n or "time limit" in n for n in res.notes)
    assert artifacts.read(folder, "clv_model")["model"] == res.final.name


# --- failures contained: the stage still writes its artifacts and every section says why ----------

def test_with_a_tiny_budget_every_section_says_why_and_the_artifacts_are_written(tmp_path):
    folder = write_orders_clean(tmp_path, small_shop_lines())
    res = clv.run(folder, "2025-06-30", config_from_dict({"clv": {"max_evaluations": 3}}))
    assert res.final is None and res.gamma_gamma is None
    takeaway = page.comparison_takeaway(res)
    assert "BG/NBD stopped at its cap of 3 likelihood evaluations without converging and is left out." in takeaway
    assert "No purchase model could be fitted" in takeaway and "Gamma-Gamma stopped at its cap of 3" in takeaway
    assert "could not be fitted on the calibration period" in page.tracking_takeaway(res)
    assert "No purchase model could be fitted" in page.matrix_takeaway(res)
    assert page.plot_alive_matrices(res) is None and page.plot_period_transactions(res) is None
    assert "message" in page.params_table(res).columns
    saved = artifacts.read(folder, "clv")
    assert saved["p_alive"].isna().all() and (saved["clv"] > 0).all()
    assert artifacts.read(folder, "clv_model")["model"] is None
    page.clv_takeaway(res), page.period_tx_takeaway(res), page.correlation_takeaway(res), page.comparison_table(res)


def test_when_the_final_fit_of_the_chosen_model_fails_the_next_one_is_used_and_said(tmp_path, monkeypatch):
    folder = write_orders_clean(tmp_path, small_shop_lines())
    real = clv.fit_final

    def final_fails_for_mbgnbd(summary, name, c):
        if name == "mbgnbd":
            raise clv.FitFailed("MBG/NBD stopped at its cap of 3,000 likelihood evaluations without converging "
                                "and is left out.")
        return real(summary, name, c)

    monkeypatch.setattr(clv, "fit_final", final_fails_for_mbgnbd)
    res = clv.run(folder, "2025-06-30", config_from_dict({"clv": {"model": "mbgnbd"}}))
    assert res.final.name == "pareto_nbd" and res.model_json["model"] == "pareto_nbd"
    assert ("Final fit: MBG/NBD stopped at its cap of 3,000 likelihood evaluations without converging. "
            "Pareto/NBD is used instead.") in page.comparison_takeaway(res)


# --- P(alive) a manager can believe ----------------------------------------------------------------

@pytest.fixture(scope="module")
def demo_month_runs(tmp_path_factory):
    """clv.run on a copy of the demo month (data/processed/demo/2026-06: orders_clean, segments) with the
    model chosen by the rule (auto); the result and the median P(alive) per RFM segment."""
    import shutil

    src = resolve("data/processed/demo/2026-06")
    assert (src / "orders_clean.parquet").exists() and (src / "segments.parquet").exists(), \
        "the demo month's orders_clean and segments are not there: make test runs these after nbval"
    runs = {}
    for model in ("auto",):
        folder = tmp_path_factory.mktemp(f"demo_{model}")
        for name in ("orders_clean", "segments"):
            shutil.copy(src / artifacts.ARTIFACTS[name].file, folder / artifacts.ARTIFACTS[name].file)
        res = clv.run(folder, "2026-06-30", config_from_dict({"clv": {"model": model}}))
        seg = artifacts.read(folder, "segments", columns=["customer_id", "rfm_segment"])
        saved = artifacts.read(folder, "clv")
        runs[model] = (res, saved.merge(seg, on="customer_id").groupby("rfm_segment")["p_alive"].median())
    return runs


@pytest.mark.demo_month
def test_on_the_demo_month_the_rule_chooses_mbgnbd_all_three_being_within_5_percent(demo_month_runs):
    res, _ = demo_month_runs["auto"]
    mae = res.comparison["mae"]
    assert (mae <= mae.min() * 1.05).all() and res.final.name == "mbgnbd"
    assert "Rule: among the models whose holdout MAE is within 5% of the best, MBG/NBD is preferred" \
        in page.comparison_takeaway(res)


@pytest.mark.demo_month
def test_on_the_demo_month_lost_customers_no_longer_read_as_likely_active(demo_month_runs):
    _, median = demo_month_runs["auto"]
    assert median["Lost"] < 0.5  # BG/NBD gave every one of them 1.00


def _demo_truth_alive(folder: Path, monkeypatch) -> pd.DataFrame:
    """Per customer of the demo shop (demo.generate's defaults, the shop of data/raw/demo): alive at its
    end (2026-06-30) in the generator's own simulation. Regenerated, because truth.json keeps counts only."""
    from helpers import demo

    seen = {}
    table = demo._customers_table

    def keep(rng, cust, horizon, day0):
        out = table(rng, cust, horizon, day0)
        seen.update(alive=cust["alive_end"], ids=out[1][: len(cust["alive_end"])])
        return out

    monkeypatch.setattr(demo, "_customers_table", keep)
    demo.generate(folder)
    return pd.DataFrame({"customer_id": seen["ids"].astype(str), "alive": seen["alive"]})


@pytest.mark.demo_month
def test_on_the_demo_month_p_alive_ranks_lost_above_at_risk_as_the_generators_truth_does(
        demo_month_runs, tmp_path, monkeypatch):
    """Issue 14 asked for the median P(alive) of 'Lost' below that of 'At Risk'. The demo's own truth says
    the opposite: it is generated by BG/NBD, where a one-time buyer cannot drop out, and 'Lost' is 89 %
    one-time buyers, so 92 % of 'Lost' are alive at the cut-off against 32 % of 'At Risk' (measured here).
    The chosen MBG/NBD ranks them as the truth does (0.37 vs 0.28) while no longer calling 'Lost' certainly
    active (BG/NBD: 1.00); only Pareto/NBD reverses them (0.21 vs 0.24), against the truth. What a reader
    needs is on the page: 'Lost' is the segment least likely to order soon, and why (see
    test_a_segment_of_one_time_buyers_least_likely_to_order_is_explained_against_quiet_frequent_buyers)."""
    res, median = demo_month_runs["auto"]
    seg = artifacts.read(resolve("data/processed/demo/2026-06"), "segments", columns=["customer_id", "rfm_segment"])
    truth = seg.merge(_demo_truth_alive(tmp_path, monkeypatch), on="customer_id", validate="one_to_one")
    assert len(truth) == len(seg)
    share = truth.groupby("rfm_segment")["alive"].mean()
    assert share["Lost"] > 0.85 and share["At Risk"] < 0.40
    assert median["At Risk"] < median["Lost"] < 0.5
    least = res.segments["mean_p_purchase"].idxmin()
    assert least == "Lost" and "although its mean P(alive)" in page.segment_takeaway(res)


def p_alive_grid(fit: clv.Fit, T_max: float = 1000.0):
    """P(alive) over a grid: rows = repeat purchases 0..10 with tenure T fixed, columns = days since
    the last order rising from 0 to T; plus one-time buyers (days since last order = tenure) over T."""
    T = np.full(101, T_max)
    since = np.linspace(0, T_max, 101)
    rows = [clv.probability_alive(fit, np.full(101, float(x)), T - since, T) for x in range(1, 11)]
    one_time = clv.probability_alive(fit, np.zeros(101), np.zeros(101), np.maximum(since, 1e-9))
    return np.vstack(rows + [one_time])


@pytest.mark.demo_month
def test_p_alive_never_rises_with_days_since_the_last_order_for_the_chosen_model(demo_month_runs):
    grid = p_alive_grid(demo_month_runs["auto"][0].final)
    assert np.isfinite(grid).all() and (np.diff(grid, axis=1) <= 1e-12).all()


@pytest.mark.parametrize("name", ["bgnbd", "mbgnbd", "pareto_nbd"])
@pytest.mark.parametrize("T_max", [30.0, 365.0, 3000.0])
def test_p_alive_never_rises_with_days_since_the_last_order_for_every_model(cdnow, name, T_max):
    _, u, _ = cdnow
    grid = p_alive_grid(clv.fit_purchase_model(name, u), T_max)
    assert np.isfinite(grid).all() and (np.diff(grid, axis=1) <= 1e-12).all()
    if name != "bgnbd":  # BG/NBD keeps one-time buyers at 1.00: the report leaves that row blank
        assert grid[-1, -1] < grid[-1, 1]


def test_under_bgnbd_the_report_leaves_one_time_buyers_p_alive_blank_and_says_why(tmp_path):
    import matplotlib.pyplot as plt

    folder = write_orders_clean(tmp_path, small_shop_lines())
    res = clv.run(folder, "2025-06-30", config_from_dict({"clv": {"model": "bgnbd"}}))
    axes = page.plot_alive_matrices(res)
    assert not any(t.get_text() for t in axes[0].texts if t.get_position()[1] < 1)  # row 0 unannotated
    plt.close("all")
    assert "cannot tell whether a one-time buyer is still active" in page.matrix_takeaway(res)
    assert "of repeat customers are likely active ('likely active' means a P(alive) of 50% or more" in page.clv_takeaway(res)
    assert "; BG/NBD does not judge one-time buyers." in page.clv_takeaway(res)


# --- holdout metrics, scores and fallbacks -------------------------------------------------------

def test_holdout_metrics_are_mean_absolute_and_root_mean_squared_errors(monkeypatch):
    calhold = pd.DataFrame({"frequency_cal": [0, 1, 2], "recency_cal": [0.0, 5, 8], "T_cal": [10.0, 10, 10],
                            "frequency_holdout": [0, 1, 4], "duration_holdout": [30.0] * 3})
    predictions = np.array([0.5, 1.0, 2.0])
    monkeypatch.setattr(clv, "expected_purchases", lambda fit, t, f, r, T: predictions)
    monkeypatch.setattr(clv, "fit_purchase_model", lambda name, u, *a: clv.Fit(name, None, {}, 0.0))
    table, _, preds = clv.holdout_comparison(calhold, ClvConfig(), models=("bgnbd",))
    row = table.loc["bgnbd"]
    assert row["mae"] == pytest.approx((0.5 + 0 + 2) / 3)
    assert row["rmse"] == pytest.approx(np.sqrt((0.25 + 0 + 4) / 3))
    assert row["predicted_total"] == pytest.approx(3.5) and row["actual_total"] == 5
    assert list(preds["pred_bgnbd"]) == [0.5, 1.0, 2.0]


def test_model_with_lowest_holdout_mae_is_chosen_when_no_other_is_within_the_tolerance():
    table = pd.DataFrame({"mae": [0.9, 0.8, np.nan]}, index=["bgnbd", "pareto_nbd", "mbgnbd"])
    assert clv.choose_model(table) == "pareto_nbd"
    assert clv.choose_model(table, "mbgnbd") == "mbgnbd"


@pytest.mark.parametrize("maes, tolerance, chosen", [
    ((0.800, 0.820, 0.839), 0.05, "mbgnbd"),      # all within 5 %: MBG/NBD first
    ((0.800, 0.820, 0.841), 0.05, "pareto_nbd"),  # MBG/NBD 5.1 % worse: Pareto/NBD next
    ((0.800, 0.841, 0.841), 0.05, "bgnbd"),       # only BG/NBD within 5 %
    ((0.800, 0.820, 0.839), 0.0, "bgnbd"),        # tolerance 0: the lowest MAE
])
def test_among_models_within_the_tolerance_mbgnbd_then_pareto_nbd_then_bgnbd_is_preferred(maes, tolerance, chosen):
    table = pd.DataFrame({"mae": maes}, index=["bgnbd", "pareto_nbd", "mbgnbd"])
    assert clv.choose_model(table, "auto", tolerance) == chosen


def test_the_ranking_tries_the_other_fitted_models_by_mae_then_the_unfitted_ones():
    table = pd.DataFrame({"mae": [0.8, np.nan, 0.95]}, index=["bgnbd", "pareto_nbd", "mbgnbd"])
    assert clv.model_ranking(table, "auto", 0.05) == ["bgnbd", "mbgnbd", "pareto_nbd"]
    assert clv.model_ranking(None, "pareto_nbd") == ["pareto_nbd", "mbgnbd", "bgnbd"]


def test_clv_is_margin_times_value_times_discounted_monthly_purchases(demo_summary):
    summary, _ = demo_summary
    s = summary.iloc[:500]
    u, _ = clv.compress(s)
    fit, gg = clv.fit_purchase_model("bgnbd", u), clv.fit_gamma_gamma(s)
    cfg = ClvConfig(gross_margin=0.5, monthly_discount_rate=0.02, clv_months=2)
    out = clv.score_customers(s, fit, gg, cfg)
    row = out.iloc[0]
    args = [np.array([row[c]], float) for c in ("frequency", "recency", "T")]
    m1 = clv.lifetimes_expected_purchases(fit, clv.DAYS_PER_MONTH, *args)[0]
    m2 = clv.lifetimes_expected_purchases(fit, 2 * clv.DAYS_PER_MONTH, *args)[0]
    assert row["clv"] == pytest.approx(0.5 * row["exp_avg_value"] * (m1 / 1.02 + (m2 - m1) / 1.02 ** 2))
    assert list(out.columns) == artifacts.ARTIFACTS["clv"].columns
    assert out["p_purchase"].between(0, 1).all() and out["p_alive"].between(0, 1).all()


def test_expected_purchases_over_the_purchase_window_equal_the_horizon_of_the_same_length(demo_summary):
    summary, _ = demo_summary
    s = summary.iloc[:500]
    u, _ = clv.compress(s)
    fit, gg = clv.fit_purchase_model("bgnbd", u), clv.fit_gamma_gamma(s)
    cfg = ClvConfig(purchase_window_days=90, horizons_days=[30, 90, 365])
    out = clv.score_customers(s, fit, gg, cfg)
    by_horizon = clv.expected_purchases_by_horizon(s, fit, cfg.horizons_days)
    assert list(by_horizon.columns) == ["exp_purchases_30d", "exp_purchases_90d", "exp_purchases_365d"]
    np.testing.assert_array_equal(by_horizon["exp_purchases_90d"].to_numpy(), out["exp_purchases"].to_numpy())
    assert (by_horizon["exp_purchases_30d"] <= by_horizon["exp_purchases_365d"]).all()


def test_shop_without_repeat_customers_gets_clv_from_average_order_value(tmp_path):
    lines = [("A", "2025-01-03 10:00", 40.0), ("B", "2025-01-04 10:00", 60.0), ("B", "2025-01-04 11:00", 20.0)]
    cfg = config_from_dict({"clv": {"gross_margin": 0.5}})
    res = clv.run(write_orders_clean(tmp_path, lines), "2025-01-31", cfg)
    assert res.final is None and "No customer has bought twice" in res.notes[0]
    assert res.scores["clv"].tolist() == pytest.approx([0.5 * 60.0, 0.5 * 60.0])  # AOV (40 + 80) / 2
    assert res.scores["p_alive"].isna().all()
    saved = artifacts.read(tmp_path, "clv_model")
    assert saved["n_repeat_customers"] == 0 and saved["n_customers"] == 2
    assert page.segments_table(res) is None and "notebook 03" in page.segment_takeaway(res)


# --- the stage on a small shop -------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_shop_runs(tmp_path_factory):
    """clv.run on the same small shop with the default config and with a 6-month CLV."""
    lines = small_shop_lines()
    runs = {}
    for months in (12, 6):
        folder = write_orders_clean(tmp_path_factory.mktemp(f"clv_{months}m"), lines)
        cfg = config_from_dict({"clv": {"clv_months": months}})
        runs[months] = (folder, clv.run(folder, "2025-06-30", cfg))
    return runs


@pytest.mark.parametrize("months", [12, 6])
def test_clv_parquet_has_the_declared_columns_whatever_the_clv_months(small_shop_runs, months):
    folder, res = small_shop_runs[months]
    saved = artifacts.read(folder, "clv")
    assert list(saved.columns) == artifacts.ARTIFACTS["clv"].columns
    artifacts.check("clv", saved)
    assert "customer_id" not in res.scores  # the ids stay in the engine, which wrote the file
    pd.testing.assert_frame_equal(saved.drop(columns="customer_id"), res.scores)
    card = artifacts.read(folder, "clv_model")
    assert card["clv_months"] == months
    assert card["purchase_window_days"] == 90 and card["horizons_days"] == [30, 90, 365]
    assert card["time_unit"] == "day"


def test_a_six_month_clv_is_smaller_than_a_twelve_month_one_for_every_customer(small_shop_runs):
    clv12, clv6 = small_shop_runs[12][1].scores["clv"], small_shop_runs[6][1].scores["clv"]
    assert (clv6 > 0).all() and (clv6 < clv12).all()


def test_the_report_names_the_horizons_the_artifact_does_not(small_shop_runs):
    res = small_shop_runs[6][1]
    table = page.clv_summary_table(res)
    # lifetimes' recency is first-to-last purchase time, never shown as "recency" (03's days since last order)
    assert list(table.index) == ["repeat purchases", "days from first to last purchase", "days since first purchase",
                                 "mean repeat order value (EUR)", "P(alive)", "expected purchases, next 30 days",
                                 "expected purchases, next 90 days", "expected purchases, next 365 days",
                                 "P(order in the next 90 days)", "expected order value (EUR)",
                                 "CLV, next 6 months (margin, EUR)"]
    assert table.loc["CLV, next 6 months (margin, EUR)", "mean"] == f"{res.scores['clv'].mean():,.2f}"
    assert table.loc["P(alive)", "max"].endswith("%") and plots.unreadable_names(table) == []
    assert "over the next 6 months" in page.clv_takeaway(res)


def test_page_tables_are_the_data_functions_tables_for_readers(small_shop_runs):
    _, res = small_shop_runs[12]
    numbers = clv.decile_table(res.scores["clv"])
    assert numbers["customers"].sum() == len(res.scores)
    pd.testing.assert_frame_equal(res.deciles, numbers)
    shown = page.decile_table(res)
    assert shown["share of total CLV"].tolist() == [f"{v:.1f}%" for v in numbers["clv_share_pct"]]
    assert shown.index.name == "CLV decile"
    assert page.comparison_table(res)["chosen"].tolist().count("yes") == 1


def test_the_result_is_data_without_an_engine_and_without_page_methods(small_shop_runs):
    from ibis.backends import BaseBackend

    _, res = small_shop_runs[12]
    assert dataclasses.is_dataclass(res) and isinstance(res, clv.ClvResult)
    assert [n for n, v in vars(clv.ClvResult).items() if callable(v) and not n.startswith("__")] == []
    held = [getattr(res, f.name) for f in dataclasses.fields(res)]
    held += list(vars(res.alive).values()) + list(vars(res.final).values()) + list(vars(res.gamma_gamma).values())
    assert not [v for v in held if isinstance(v, (ibis.Expr, BaseBackend))]


def test_the_page_imports_no_engine_no_artifacts_and_no_other_stage():
    import ast

    import helpers.pages.clv as module

    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {f"{n.module}.{a.name}" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    allowed = ("__future__.", "matplotlib", "numpy", "pandas", "seaborn", "helpers.plots", "helpers.pages", "helpers.clv.")
    assert [m for m in imported if not m.startswith(allowed)] == []


def test_no_table_of_notebook_04_shows_a_model_internal_or_snake_case_name(small_shop_runs, tmp_path):
    _, res = small_shop_runs[12]
    tables = {"comparison": page.comparison_table(res), "by frequency": page.holdout_by_frequency_table(res),
              "parameters": page.params_table(res), "summary": page.clv_summary_table(res),
              "deciles": page.decile_table(res)}
    assert {k: plots.unreadable_names(t) for k, t in tables.items()} == {k: [] for k in tables}
    assert not set(tables["summary"].index) & plots.MODEL_INTERNAL_NAMES
    scores = artifacts.read(small_shop_runs[12][0], "clv")
    ids = scores["customer_id"]
    segments = clv.segment_table(scores.assign(rfm_segment=["A", "B"] * (len(ids) // 2)))
    seg = page.segments_table(dataclasses.replace(res, segments=segments))
    assert plots.unreadable_names(seg) == [] and "mean CLV, next 12 months (margin, EUR)" in seg.columns
    assert seg["mean P(alive)"].str.endswith("%").all() and seg["share of total CLV"].str.endswith("%").all()


def test_alive_heatmap_axes_read_first_to_last_purchase_not_recency(small_shop_runs):
    _, res = small_shop_runs[12]
    axes = page.plot_alive_matrices(res)
    assert [ax.get_xlabel() for ax in axes] == ["days from first to last purchase"] * 2
    assert "recency" not in " ".join(ax.get_title() + ax.get_xlabel() + ax.get_ylabel() for ax in axes)
    assert all(t.get_text().endswith("%") for t in axes[0].texts)  # P(alive) labelled in whole percent
    plt.close("all")


@pytest.mark.parametrize("values, key", [
    ({"time_unit": "month"}, "clv.time_unit"),
    ({"gross_margin": 30}, "clv.gross_margin"),
    ({"model": "bgbd"}, "clv.model"),
    ({"horizons_days": [30, -1]}, "clv.horizons_days"),
])
def test_invalid_clv_settings_are_refused_naming_the_key(values, key):
    from helpers.config import ConfigError

    with pytest.raises(ConfigError, match=key):
        config_from_dict({"clv": values})


# --- one vocabulary: P(alive) and the chance of an order, per segment --------------------------------

def _segment_table(rows: dict) -> pd.DataFrame:
    t = pd.DataFrame.from_dict(rows, orient="index",
                               columns=["mean_p_alive", "mean_p_purchase", "mean_repeat_purchases"])
    t.index.name = "segment"
    return t


def test_a_segment_of_one_time_buyers_least_likely_to_order_is_explained_against_quiet_frequent_buyers():
    """The demo's pattern (04, 2026-06): 'Lost' (one-time buyers, 679 days silent) has P(alive) 35 %,
    above 'At Risk' (31 %, 1.7 repeat purchases) - the generator's truth agrees (92 % vs 32 % alive) -
    while its chance of an order in 90 days is the lowest. The page says both, and why."""
    t = _segment_table({"Champions": [0.90, 0.64, 8.6], "At Risk": [0.31, 0.08, 1.7],
                        "Can't Lose Them": [0.17, 0.07, 6.7], "Lost": [0.35, 0.04, 0.1]})
    text = page.alive_and_order_sentence(t, 90)
    assert text.startswith(" 'Lost' is the least likely to order in the next 90 days (4% on average), although its "
                           "mean P(alive) (35%) is above that of 'Can't Lose Them' (17%) and 'At Risk' (31%)")
    assert "stronger evidence of having left" in text


def test_when_the_least_likely_to_order_also_has_the_lowest_p_alive_nothing_needs_explaining():
    t = _segment_table({"Champions": [0.90, 0.64, 8.6], "Lost": [0.10, 0.04, 0.1]})
    assert page.alive_and_order_sentence(t, 30) == " 'Lost' is the least likely to order in the next 30 days (4% on average)."
    assert page.alive_and_order_sentence(_segment_table({"Lost": [np.nan, np.nan, 0.1]}), 30) == ""


def test_the_summary_is_the_same_to_the_last_bit_whatever_order_the_lines_come_in(con):
    # money is summed in whole cents: a float sum depends on the order a parallel engine adds the lines
    # in, and a repeat-purchase mean at exactly half a cent (here 12.345) then rounds either way from run
    # to run, moving the Gamma-Gamma fit (04's cells 8 and 20 failed nbval now and then)
    rng = np.random.default_rng(3)
    lines = [("H", "2025-01-01 10:00", 10.0)]
    for day, total_cents in ((2, 1234), (3, 1235)):  # two repeat days: mean 12.345
        cents = rng.multinomial(total_cents - 40, np.ones(40) / 40) + 1
        lines += [("H", f"2025-01-0{day} {h % 24:02d}:00", c / 100) for h, c in enumerate(cents)]
    lines += [(f"R{i}", "2025-01-05 10:00", round(float(a), 2)) for i, a in enumerate(rng.random(50) * 100)]
    forward = summary_of(con, lines)
    for seed in range(5):
        shuffled = [lines[i] for i in np.random.default_rng(seed).permutation(len(lines))]
        pd.testing.assert_frame_equal(summary_of(con, shuffled), forward, check_exact=True)
    assert forward.loc["H", "monetary_value"] == 12.345
    assert forward.loc["H", ["frequency", "recency"]].tolist() == [2, 2.0]


def test_segments_without_positive_clv_get_a_sentence_and_an_empty_grid_draws_without_a_warning():
    """A tiny shop whose models give no positive CLV: the segment sentence says so instead of failing,
    and a frequency x recency grid with no value draws without a RuntimeWarning on the page."""
    table = pd.DataFrame({"customers": [2, 3], "mean_clv": [0.0, 0.0], "total_clv": [0.0, 0.0],
                          "mean_p_alive": [1.0, 1.0], "mean_p_purchase": [0.2, 0.1],
                          "mean_repeat_purchases": [1.0, 0.0], "clv_share_pct": [np.nan, np.nan]},
                         index=pd.Index(["About to Sleep", "At Risk"], name="segment"))
    assert page.segment_sentence(table).startswith("No segment holds a positive CLV this month")
    grid = pd.DataFrame(np.nan, index=pd.Index([0, 1], name="frequency"), columns=pd.Index([0, 1], name="recency"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        page.plot_matrix(grid, "P(alive)")
    plt.close("all")


def test_the_score_summary_names_each_score_in_its_unit_whatever_the_time_unit():
    dist = pd.DataFrame({"mean": [3.0, 20.0, 52.0, 0.5, 1.25, 40.0]},
                        index=["frequency", "recency", "T", "p_alive", "exp_purchases_30d", "clv_12m"])
    weeks = page.summary_for_readers(dist, "CZK", "week")
    assert weeks["mean"].to_dict() == {"repeat purchases": "3.00", "weeks from first to last purchase": "20",
                                       "weeks since first purchase": "52", "P(alive)": "50.0%",
                                       "expected purchases, next 30 days": "1.25",  # horizons stay in days
                                       "CLV, next 12 months (margin, CZK)": "40.00"}


# --- the CLV total's band: the fits' parameter uncertainty ------------------------------------------

@pytest.mark.parametrize("name", ["bgnbd", "gamma_gamma"])
def test_log_parameter_standard_errors_equal_lifetimes_own_on_cdnow(cdnow, name):
    """lifetimes' standard errors (its autograd Hessian, delta method to the parameters) divided by the
    parameters are the standard errors of the log-parameters our covariance gives."""
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    d, u, _ = cdnow
    if name == "gamma_gamma":
        rep = d[d["frequency"] > 0]
        theirs, ours = GammaGammaFitter().fit(rep["frequency"], rep["monetary_value"]), clv.fit_gamma_gamma(d)
        order = ["p", "q", "v"]
    else:
        theirs = BetaGeoFitter().fit(u["frequency"], u["recency"], u["T"], weights=u["weights"])
        ours, order = clv.fit_purchase_model(name, u, time_unit="week"), ["r", "alpha", "a", "b"]
    expected = (theirs.standard_errors_ / theirs.params_)[order].to_numpy()
    assert np.sqrt(np.diag(clv.log_param_covariance(ours))) == pytest.approx(expected, rel=2e-3)


def test_the_clv_total_band_brackets_the_total_and_repeats_exactly(cdnow):
    d, u, _ = cdnow
    d = d.rename_axis("customer_id").reset_index()
    settings = ClvConfig(time_unit="week")
    fit, gg = clv.fit_purchase_model("bgnbd", u, time_unit="week"), clv.fit_gamma_gamma(d)
    total = clv.score_customers(d, fit, gg, settings)["clv"].sum()
    low, high = clv.clv_total_band(d, fit, gg, settings)
    assert low < total < high and (high - low) / total < 0.5  # 2,357 customers: a band, not a guess
    assert clv.clv_total_band(d, fit, gg, settings) == (low, high)  # seeded draws: the same bytes on a rerun
    assert clv.clv_total_band(d, None, gg, settings, 30.0) is None  # no purchase model: nothing to draw from


def test_clv_by_segment_joined_by_the_engine_is_the_pandas_table(tmp_path):
    """04 joins its scores to segments.parquet in the engine (the page holds no customer id): the same table as
    the pandas join's, a segment's customer without a score and a score without a segment left out."""
    scores = pd.DataFrame({"customer_id": ["d", "a", "c", "b", "e"], "frequency": [0, 3, 1, 2, 5],
                           "clv": [1.5, 40.25, 7.0, 12.5, 99.0], "p_alive": [0.2, 0.9, 0.5, 0.7, 1.0],
                           "p_purchase": [0.1, 0.6, 0.3, 0.4, 0.9]})
    segments = pd.DataFrame({"customer_id": ["a", "b", "c", "d", "x"],
                             "rfm_segment": ["Champions", "Champions", "Lost", "Lost", "Lost"]})
    segments.to_parquet(artifacts.path(tmp_path, "segments"))
    con = engine.connect()
    table = clv.clv_by_segment_table(con, tmp_path, ibis.memtable(scores))
    pd.testing.assert_frame_equal(table, clv.segment_table(scores.sort_values("customer_id").merge(segments)))
    assert list(table.index) == ["Champions", "Lost"] and table.loc["Lost", "customers"] == 2
    assert clv.clv_by_segment_table(con, tmp_path / "none", ibis.memtable(scores)) is None
