"""Shops the demo generator did not make (issue 14): the generators in tests/shops.py give what they
claim, the CDNOW converter writes the raw contract, and the whole month runs on every one of them.

The month runs (all seven notebooks) are rendered in-process, once per session (conftest `rendered_month`);
the whole CDNOW log's, the seasonal shop's, the homogeneous shop's and the Pareto/NBD shop's months are in the
slow tier. A run that
stops anywhere fails its test with the notebook, cell and error.
"""
from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from lifetimes import ParetoNBDFitter
from lifetimes.utils import summary_data_from_transaction_data
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp
from scipy.stats import chi2, gamma, norm

import pages
import shops
from helpers import artifacts, clean, clv
from helpers.config import load_config
from helpers.contract import CONTRACT
from helpers.paths import project_root

ROOT = project_root()
GENERATORS = {"pareto_nbd": shops.pareto_nbd_shop, "homogeneous_dropout": shops.homogeneous_dropout_shop,
              "seasonal": shops.seasonal_shop}
CDNOW_AS_OF = "1998-06-30"
PAGES = ["01_clean.html", "02_kpis.html", "03_segments.html", "04_clv.html", "05_churn.html",
         "06_winback.html", "07_summary.html"]


def _load_converter():
    spec = importlib.util.spec_from_file_location("cdnow_to_raw", ROOT / "scripts" / "cdnow_to_raw.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cdnow_to_raw = _load_converter()


def _orders(raw: Path) -> pd.DataFrame:
    o = pd.read_csv(raw / "orders.csv", dtype={"order_id": str, "customer_id": str})
    o["order_date"] = pd.to_datetime(o["order_date"], format="%Y-%m-%d")
    return o


def _compressed_summary(orders: pd.DataFrame, as_of: str) -> pd.DataFrame:
    """lifetimes' frequency / recency / T in days, one row per distinct triple with its count w."""
    s = summary_data_from_transaction_data(orders, "customer_id", "order_date", observation_period_end=as_of)
    return s.groupby(["frequency", "recency", "T"]).size().rename("w").reset_index()


def _pareto_nbd_loglik(params, c: pd.DataFrame) -> float:
    ll = ParetoNBDFitter._conditional_log_likelihood(params, c["frequency"].to_numpy(), c["recency"].to_numpy(),
                                                     c["T"].to_numpy())
    return float((c["w"] * ll).sum())


def _exponential_dropout_loglik(mean_days: float, r: float, alpha: float, c: pd.DataFrame, nodes: int = 300) -> float:
    """Log-likelihood of Poisson purchases (rate ~ Gamma(r, rate=alpha)) with one common exponential
    lifetime of mean `mean_days` (the Pareto/NBD with no spread in dropout rates, s -> infinity).

    Per customer (x repeat purchases, the last at t_x, observed for T days), given the rate lambda:
    L = lambda^x mu e^{-(lambda+mu) t_x} / (lambda+mu) + lambda^(x+1) e^{-(lambda+mu) T} / (lambda+mu)
    (Fader & Hardie 2005, "A note on deriving the Pareto/NBD model and related expressions"), integrated
    over lambda on a log grid. lifetimes' Pareto/NBD likelihood cannot be used there: its hypergeometric terms are slow
    and inaccurate at s in the thousands.
    """
    mu = 1.0 / mean_days
    u = np.linspace(np.log(1e-7), 0.0, nodes)
    lam = np.exp(u)[None, :]
    x, tx, T = (c[k].to_numpy()[:, None] for k in ("frequency", "recency", "T"))
    log_l = (x * np.log(lam) - np.log(lam + mu)
             + np.logaddexp(np.log(mu) - (lam + mu) * tx, np.log(lam) - (lam + mu) * T))
    log_prior = gamma.logpdf(lam, r, scale=1 / alpha) + u[None, :]  # d lambda = lambda du
    return float((c["w"].to_numpy() * (logsumexp(log_l + log_prior, axis=1) + np.log(u[1] - u[0]))).sum())


# ---------------------------------------------------------------------------------------------
# The generated files


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    base = tmp_path_factory.mktemp("shops")
    out = {}
    for name, make in GENERATORS.items():
        start = time.perf_counter()
        truth = make(base / name)
        out[name] = {"dir": base / name, "truth": truth, "seconds": time.perf_counter() - start,
                     "orders": _orders(base / name)}
    return out


@pytest.mark.parametrize("name", GENERATORS)
def test_each_shop_is_written_in_under_two_seconds(generated, name):
    """3,000 customers, 9,000-19,000 orders: about 0.1 s here, so CI can afford a new shop per test."""
    assert generated[name]["seconds"] < 2.0


@pytest.mark.parametrize("name, order_columns, files", [
    ("pareto_nbd", ["order_id", "customer_id", "order_date", "amount", "quantity"],
     {"orders.csv", "customers.csv", "campaigns.csv"}),
    ("homogeneous_dropout", ["order_id", "customer_id", "order_date", "amount"], {"orders.csv"}),
    ("seasonal", ["order_id", "customer_id", "order_date", "amount", "quantity", "category"],
     {"orders.csv", "customers.csv"}),
])
def test_each_shop_writes_the_raw_contract_with_only_the_columns_it_claims(generated, name, order_columns, files):
    shop = generated[name]
    assert {p.name for p in shop["dir"].iterdir()} == files
    header = (shop["dir"] / "orders.csv").read_text().splitlines()[0].split(",")
    assert header == order_columns and set(header) <= set(CONTRACT["orders"][0]) | set(CONTRACT["orders"][1])
    o = shop["orders"]
    assert o["order_id"].is_unique and len(o) == shop["truth"]["orders"]
    assert o["customer_id"].nunique() == shop["truth"]["customers"] == 3_000
    assert o["order_date"].max() <= pd.Timestamp(shops.AS_OF) and (o["amount"] >= 1.0).all()
    amounts = pd.read_csv(shop["dir"] / "orders.csv", dtype=str)["amount"]
    assert amounts.str.fullmatch(r"\d+\.\d{2}").all()
    if "customers.csv" in files:
        assert (shop["dir"] / "customers.csv").read_text().splitlines()[0] == "customer_id,region,marketing_opt_in"


def test_a_generator_with_the_same_seed_writes_the_same_bytes(tmp_path):
    for name, make in GENERATORS.items():
        make(tmp_path / "a" / name)
        make(tmp_path / "b" / name)
        for f in (tmp_path / "a" / name).iterdir():
            assert f.read_bytes() == (tmp_path / "b" / name / f.name).read_bytes(), f"{name}/{f.name}"


def test_pareto_nbd_shop_gives_back_its_parameters_to_lifetimes(tmp_path):
    """The natural orders (the same shop without the campaign's extra orders) are Pareto/NBD: lifetimes'
    fit is within 15 % of r and alpha, and the truth lies inside the fit's 99 % likelihood-ratio region
    (2 * (logL(fit) - logL(truth)) below the chi-square(4) 99 % point, 13.3). s and beta alone are
    poorly determined by 3,000 customers (seeds 1-10 gave up to +57 % / +74 %), so they are held by the
    likelihood-ratio region, not a tolerance of their own."""
    truth = shops.pareto_nbd_shop(tmp_path, campaign=False)["pareto_nbd"]
    c = _compressed_summary(_orders(tmp_path), shops.AS_OF)
    state = np.random.get_state()
    np.random.seed(0)  # lifetimes starts its Nelder-Mead restarts from np.random.randn: fixed, not test order
    try:
        params = ParetoNBDFitter().fit(c["frequency"], c["recency"], c["T"], weights=c["w"]).params_
    finally:
        np.random.set_state(state)
    for k in ("r", "alpha"):
        assert params[k] == pytest.approx(truth[k], rel=0.15), k
    # The maximum likelihood is the better of lifetimes' Nelder-Mead and our bounded L-BFGS-B fit: a
    # Nelder-Mead stop short of the maximum must not read as "the truth fits better than the fit".
    ours = clv.fit_purchase_model("pareto_nbd", c.rename(columns={"w": "weights"})).params
    best = max(_pareto_nbd_loglik(params.to_numpy(), c), _pareto_nbd_loglik([ours[k] for k in params.index], c))
    statistic = 2 * (best - _pareto_nbd_loglik([truth[k] for k in params.index], c))
    assert 0 <= statistic < chi2.ppf(0.99, df=4)


def test_homogeneous_dropout_shop_loses_customers_after_one_common_mean_of_300_days(generated):
    """The lifetimes drawn average 300 days (within 5 %), and the data show it: with the purchase
    process's truth, the likelihood of one common exponential lifetime peaks within 10 % of 300 days
    (seeds 2, 5, 7, 8 gave 290-315)."""
    shop = generated["homogeneous_dropout"]
    truth = shop["truth"]
    assert truth["drawn_mean_lifetime_days"] == pytest.approx(300, rel=0.05)
    c = _compressed_summary(shop["orders"], shops.AS_OF)
    best = minimize_scalar(lambda log_m: -_exponential_dropout_loglik(np.exp(log_m), truth["r"], truth["alpha"], c),
                           bounds=(np.log(50), np.log(2_000)), method="bounded", options={"xatol": 0.01})
    assert np.exp(best.x) == pytest.approx(truth["dropout_mean_days"], rel=0.10)


def test_seasonal_shop_orders_three_times_as_often_in_november_and_december(generated):
    """Repeat orders in and out of season each within 4 % of their expectation given every customer's
    rate and days alive (about 6,600 and 9,300: Poisson sd about 1 %); and the season's share of all
    orders is over twice its share of the calendar (61 of 365 days)."""
    shop = generated["seasonal"]
    o, truth = shop["orders"].sort_values(["customer_id", "order_date"]), shop["truth"]
    repeat = o[o.duplicated("customer_id", keep="first")]  # a customer's first order is not from the process
    season = repeat["order_date"].dt.month.isin(truth["season_months"])
    assert season.sum() == pytest.approx(truth["expected_repeat_orders_in_season"], rel=0.04)
    assert (~season).sum() == pytest.approx(truth["expected_repeat_orders_out_of_season"], rel=0.04)
    assert o["order_date"].dt.month.isin([11, 12]).mean() > 2 * 61 / 365


def test_seasonal_shop_order_values_are_lognormal_with_a_heavy_tail(generated):
    """Mean order value within 8 % of exp(log 35 + (0.6^2 + 1^2) / 2) = 69.09 (seed 3: 66.35); the top
    1 % of orders carry over 10 % of revenue (11.7 %) and the mean is above 1.7 times the median (1.94).
    The Gamma-Gamma values of the Pareto/NBD shop give 7.6 % and 1.38."""
    shop = generated["seasonal"]
    v = shop["orders"]["amount"].sort_values(ascending=False).to_numpy()
    assert v.mean() == pytest.approx(shop["truth"]["mean_order_value"], rel=0.08)
    assert v[: len(v) // 100].sum() / v.sum() > 0.10
    assert v.mean() > 1.7 * np.median(v)


def test_the_email_campaign_is_randomized_without_discount_and_its_uplift_covers_the_truth(generated):
    """Two equal arms, control and email, discount 0.00 everywhere; conversion (an order in the 30 days
    from the send date) measured from the files alone: the 95 % interval of the difference covers the
    generator's conversion uplift (7.5 pp) and excludes zero."""
    shop = generated["pareto_nbd"]
    camp, truth = pd.read_csv(shop["dir"] / "campaigns.csv", dtype=str), shop["truth"]["campaign"]
    assert set(camp["arm"]) == {"control", "email"} and set(camp["discount"]) == {"0.00"}
    assert camp["customer_id"].is_unique and abs((camp["arm"] == "email").sum() - (camp["arm"] == "control").sum()) <= 1
    o = shop["orders"]
    sent = pd.Timestamp(truth["sent_date"])
    window = o[(o["order_date"] >= sent) & (o["order_date"] < sent + pd.Timedelta(days=truth["window_days"]))]
    camp["converted"] = camp["customer_id"].isin(window["customer_id"])
    rate = camp.groupby("arm")["converted"].agg(["mean", "size"])
    diff = rate.loc["email", "mean"] - rate.loc["control", "mean"]
    se = np.sqrt((rate["mean"] * (1 - rate["mean"]) / rate["size"]).sum())
    low, high = diff - norm.ppf(0.975) * se, diff + norm.ppf(0.975) * se
    assert low < truth["conversion_uplift"] < high and low > 0


def test_the_clv_stage_on_the_homogeneous_dropout_shop_finishes_within_ten_seconds(generated, tmp_path):
    """The boundary case of the issue at CI size: dropout rates that do not differ send s and beta off
    together (lifetimes' Nelder-Mead took 30 s here); with the capped optimiser the stage takes about as
    long as on the other shops."""
    cfg = load_config(ROOT / "config" / "default.yml")
    clean.run(tmp_path, shops.AS_OF, cfg, raw_dir=generated["homogeneous_dropout"]["dir"])
    start = time.perf_counter()
    clv.run(tmp_path, shops.AS_OF, cfg)
    assert time.perf_counter() - start < 10.0


# ---------------------------------------------------------------------------------------------
# CDNOW


def test_cdnow_lines_become_orders_with_deterministic_ids():
    source = ["customer_id  date number_of_cds  dollar_value",
              " 00001 19970101  1   11.77",
              " 00002 19970112  1   12.00",
              " 00002 19970112  5   77.00",
              " 00003 19970102  2   20.76"]
    assert cdnow_to_raw.convert_lines(source) == [
        "order_id,customer_id,order_date,amount,quantity",
        "00001-19970101-1,00001,1997-01-01,11.77,1",
        "00002-19970112-1,00002,1997-01-12,12.00,1",
        "00002-19970112-2,00002,1997-01-12,77.00,5",
        "00003-19970102-1,00003,1997-01-02,20.76,2"]
    assert cdnow_to_raw.convert_lines(source, customers=2)[-1].startswith("00002-19970112-2,")


def test_a_cdnow_line_that_is_not_four_fields_names_its_line_number():
    with pytest.raises(ValueError, match="line 3 is not 'customer_id YYYYMMDD quantity amount'"):
        cdnow_to_raw.convert_lines([" 00001 19970101 1 11.77", "", " 00002 1997-01-12 1 12.00"])


def test_the_converted_cdnow_log_keeps_every_line_customer_and_dollar(tmp_path):
    """lifetimes' copy: 69,659 purchase lines, 23,570 customers, first purchases in Q1 1997, last line
    June 1998; the dollar total of the source equals that of orders.csv."""
    source = cdnow_to_raw.default_source()
    cdnow_to_raw.main(["--out", str(tmp_path / "cdnow")])
    o = _orders(tmp_path / "cdnow")
    assert len(o) == 69_659 and o["order_id"].is_unique and o["customer_id"].nunique() == 23_570
    assert o["order_date"].min() == pd.Timestamp("1997-01-01") and o["order_date"].max() == pd.Timestamp("1998-06-30")
    src = pd.read_csv(source, sep=r"\s+", dtype={"customer_id": str})
    assert o["amount"].sum() == pytest.approx(src["dollar_value"].sum(), abs=0.01)
    assert (o["customer_id"] == src["customer_id"]).all()


# ---------------------------------------------------------------------------------------------
# The whole month on every shop: rendered in-process (conftest `rendered_month`), pages as a reader gets them

# The seasonal shop's month only has to run on heavy-tailed, seasonal orders: 1,000 customers do. The
# Pareto/NBD shop's campaign and the homogeneous shop's 300-day lifetime are measured on the page: 3,000.
MONTH_SHOPS = {"pareto_nbd": shops.pareto_nbd_shop, "homogeneous_dropout": shops.homogeneous_dropout_shop,
               "seasonal": lambda out: shops.seasonal_shop(out, customers=1_000)}
# CDNOW's orders (1997-98) predate the default cleaning.min_order_date: config/cdnow.yml's settings
CDNOW_CONFIG = yaml.safe_load((ROOT / "config" / "cdnow.yml").read_text(encoding="utf-8"))


def _cdnow_shop(out: Path) -> None:
    cdnow_to_raw.main(["--out", str(out)])


def _month(rendered_month, name: str):
    if name == "cdnow":  # the whole real log, all 23,570 customers (the slow tier)
        return rendered_month("cdnow", _cdnow_shop, as_of=CDNOW_AS_OF, config=CDNOW_CONFIG).check()
    return rendered_month(name, MONTH_SHOPS[name], as_of=shops.AS_OF).check()


# The seasonal shop's month is used by no other test: it runs in the slow tier with CDNOW's (make test-slow, CI).
# So does the homogeneous shop's (27 s in-process, most of it its Pareto/NBD refits at the boundary, hyp2f1 near 1):
# the fast tier keeps the boundary in words on its CLV stage (test_clv) and that stage's ten seconds (above).
# And the Pareto/NBD shop's (24 s, with the win-back test below that reads it): `make test` reached 308 s on a
# fresh clone with it. The fast tier keeps that shop's generator (above) and the Pareto/NBD fits (test_clv); the
# whole months of shops the generator did not make all run in the slow tier.
@pytest.mark.parametrize("name", [pytest.param("pareto_nbd", marks=pytest.mark.slow),
                                  pytest.param("homogeneous_dropout", marks=pytest.mark.slow),
                                  pytest.param("seasonal", marks=pytest.mark.slow),
                                  pytest.param("cdnow", marks=pytest.mark.slow)])
def test_the_whole_month_runs_on_the_shop(rendered_month, name):
    month = _month(rendered_month, name)
    assert month.pages == PAGES
    assert sorted(p.name for p in month.reports.glob("*.html")) == PAGES
    shown = {stem: w for stem, w in month.warnings.items() if w}
    assert not shown, f"warnings a reader would see on the pages: {shown}"


@pytest.mark.slow  # the Pareto/NBD shop's month (above)
def test_the_winback_page_measures_the_email_campaign_and_covers_its_true_uplift(rendered_month):
    month = _month(rendered_month, "pareto_nbd")
    measured = artifacts.read(month.processed, "winback_measured")
    arm = measured[(measured["arm"] == "email") & (measured["segment"] == "all")].iloc[0]
    assert arm["discount"] == 0.0
    assert arm["uplift_low"] < 100 * month.truth["campaign"]["conversion_uplift"] < arm["uplift_high"]


@pytest.mark.slow  # the homogeneous shop's month (above)
def test_the_homogeneous_dropout_report_names_the_boundary_in_words(rendered_month):
    """The 04 page a reader sees says what the boundary fit means, with the generator's ~300-day lifetime
    (the whole history's fit; the 240 days of test_clv are the calibration period's)."""
    month = _month(rendered_month, "homogeneous_dropout")
    page = pages.text(month.page_path("04"))
    said = page.split("customers' dropout rates hardly differ: about 1 in ")[1]
    assert float(said.split(" days")[0].replace(",", "")) == pytest.approx(300, rel=0.25)
