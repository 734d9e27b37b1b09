"""Small raw shops from generative processes that `helpers.demo` does not use, each with its truth.

The demo shop is BG/NBD purchases with Gamma-Gamma order values and every optional column; a
pipeline tuned on it can still break on a shop that looks different. Each function here writes one
shop in the raw data contract (DESIGN.md) into ``out`` and returns a truth dict:

- :func:`pareto_nbd_shop`: Pareto/NBD purchases (Schmittlein, Morrison & Colombo 1987; lifetimes'
  parameterisation, time in days): while alive a customer buys as a Poisson process with rate
  ``lambda ~ Gamma(r, rate=alpha)``, and dies after an exponential lifetime with rate
  ``mu ~ Gamma(s, rate=beta)``. Gamma-Gamma order values. orders.csv with the four required columns
  and ``quantity``; customers.csv with ``region`` and ``marketing_opt_in`` only; campaigns.csv with a
  randomized e-mail-only campaign (see :func:`email_campaign`).
- :func:`homogeneous_dropout_shop`: the same purchase process, but every customer's lifetime is
  exponential with one common mean (300 days): dropout rates do not differ between customers, so a
  Pareto/NBD fit runs to its boundary (s and beta without bound, s / beta = 1 / 300). orders.csv with
  the four required columns only; no customers or campaigns file.
- :func:`seasonal_shop`: Pareto/NBD lifetimes, but purchase intensity times ``SEASON_FACTOR`` (3) in
  November and December, and heavy-tailed (lognormal) order values. orders.csv with the four required
  columns plus ``quantity`` and ``category``; customers.csv with ``region`` and ``marketing_opt_in``.

Every customer's first order falls uniformly in the first ``ACQUISITION_SHARE`` of the history
(2023-01-01 to :data:`AS_OF`), one row per order, dates as ISO ``YYYY-MM-DD``, amounts with two
decimals. numpy only; fixed seeds; a 3,000-customer shop takes well under a second.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from helpers import demo

START = np.datetime64("2023-01-01")
AS_OF = "2025-12-31"
HISTORY_DAYS = int((np.datetime64(AS_OF) - START).astype(int)) + 1  # 1,095: the day AS_OF is included
ACQUISITION_SHARE = 0.75  # first orders fall in the first 75 % of the history

PARETO_NBD_TRUTH = {"r": 0.75, "alpha": 90.0, "s": 0.8, "beta": 500.0}
# Gamma-Gamma order values (lifetimes' p, q, v): mean order value p * v / (q - 1) = 5 * 30 / 2 = 75.
GAMMA_GAMMA_TRUTH = {"p": 5.0, "q": 3.0, "v": 30.0}
DROPOUT_MEAN_DAYS = 300.0
SEASON_FACTOR = 3.0
SEASON_MONTHS = (11, 12)
# log(order value) = m_c + ORDER_SIGMA * e, customer level m_c ~ N(log(LOGNORMAL_MEDIAN), CUSTOMER_SIGMA).
LOGNORMAL_MEDIAN, CUSTOMER_SIGMA, ORDER_SIGMA = 35.0, 0.6, 1.0
MIN_AMOUNT = 1.0  # order values are clipped below at 1.00 so that no order rounds to 0.00

REGIONS = ("North", "South", "East", "West")
CATEGORIES = ("books", "music", "games", "gifts")
CONSENT_SHARE = 0.6

CAMPAIGN = {"campaign_id": "EM-2025-09", "sent_date": "2025-09-15", "window_days": 30,
            "min_lapse_days": 60, "extra_order_probability": 0.08}


# ---------------------------------------------------------------------------------------------
# The three shops


def pareto_nbd_shop(out: str | Path, customers: int = 3_000, seed: int = 1, campaign: bool = True) -> dict:
    """Pareto/NBD purchases, Gamma-Gamma values, customers.csv and (default) an e-mail campaign."""
    rng = np.random.default_rng(seed)
    t = PARETO_NBD_TRUTH
    pop = _population(rng, customers, lam=rng.gamma(t["r"], 1 / t["alpha"], customers),
                      mu=rng.gamma(t["s"], 1 / t["beta"], customers))
    orders = _purchases(rng, pop)
    orders["amount"] = _gamma_gamma_values(rng, pop, orders["cust"])
    truth = {"shop": "pareto_nbd", "as_of": AS_OF, "customers": customers, "seed": seed,
             "pareto_nbd": dict(t), "gamma_gamma": dict(GAMMA_GAMMA_TRUTH),
             "mean_order_value": GAMMA_GAMMA_TRUTH["p"] * GAMMA_GAMMA_TRUTH["v"] / (GAMMA_GAMMA_TRUTH["q"] - 1)}
    if campaign:
        orders, truth["campaign"] = email_campaign(rng, pop, orders, out)
    orders["quantity"] = 1 + rng.binomial(2, 0.2, len(orders["cust"]))
    _write_orders(out, pop, orders, extra=("quantity",))
    _write_customers(out, rng, pop)
    truth["orders"] = len(orders["cust"])
    return truth


def homogeneous_dropout_shop(out: str | Path, customers: int = 3_000, seed: int = 2,
                             dropout_mean_days: float = DROPOUT_MEAN_DAYS) -> dict:
    """Every lifetime exponential with one common mean; orders.csv with the four required columns only."""
    rng = np.random.default_rng(seed)
    t = PARETO_NBD_TRUTH
    pop = _population(rng, customers, lam=rng.gamma(t["r"], 1 / t["alpha"], customers),
                      mu=np.full(customers, 1 / dropout_mean_days))
    orders = _purchases(rng, pop)
    orders["amount"] = _gamma_gamma_values(rng, pop, orders["cust"])
    _write_orders(out, pop, orders)
    return {"shop": "homogeneous_dropout", "as_of": AS_OF, "customers": customers, "seed": seed,
            "r": t["r"], "alpha": t["alpha"], "dropout_mean_days": dropout_mean_days,
            # the lifetimes drawn, uncensored (the data only shows them cut at AS_OF)
            "drawn_mean_lifetime_days": round(float(np.mean(pop["lifetime"])), 2),
            "orders": len(orders["cust"])}


def seasonal_shop(out: str | Path, customers: int = 3_000, seed: int = 3) -> dict:
    """Purchase intensity x SEASON_FACTOR in November-December; lognormal order values."""
    rng = np.random.default_rng(seed)
    t = PARETO_NBD_TRUTH
    pop = _population(rng, customers, lam=rng.gamma(t["r"], 1 / t["alpha"], customers),
                      mu=rng.gamma(t["s"], 1 / t["beta"], customers))
    orders = _purchases(rng, pop, season=True)
    level = rng.normal(np.log(LOGNORMAL_MEDIAN), CUSTOMER_SIGMA, customers)
    values = np.exp(level[orders["cust"]] + ORDER_SIGMA * rng.standard_normal(len(orders["cust"])))
    orders["amount"] = np.maximum(values, MIN_AMOUNT)
    orders["quantity"] = 1 + rng.binomial(3, 0.15, len(orders["cust"]))
    orders["category"] = np.array(CATEGORIES)[rng.integers(0, len(CATEGORIES), len(orders["cust"]))]
    _write_orders(out, pop, orders, extra=("quantity", "category"))
    _write_customers(out, rng, pop)
    # expected repeat orders in and out of season, given each customer's rate and days alive
    in_days, out_days = _season_exposure(pop)
    return {"shop": "seasonal", "as_of": AS_OF, "customers": customers, "seed": seed,
            "pareto_nbd": dict(t), "season_factor": SEASON_FACTOR, "season_months": list(SEASON_MONTHS),
            "expected_repeat_orders_in_season": round(float(SEASON_FACTOR * pop["lam"] @ in_days), 2),
            "expected_repeat_orders_out_of_season": round(float(pop["lam"] @ out_days), 2),
            # lognormal mean: exp(mu + (customer variance + order variance) / 2)
            "mean_order_value": round(float(np.exp(np.log(LOGNORMAL_MEDIAN)
                                                   + (CUSTOMER_SIGMA ** 2 + ORDER_SIGMA ** 2) / 2)), 2),
            "orders": len(orders["cust"])}


def email_campaign(rng: np.random.Generator, pop: dict, orders: dict, out: str | Path) -> tuple[dict, dict]:
    """Randomized e-mail-only campaign (discount 0.0, arms control / email); writes campaigns.csv.

    Eligible: customers whose first order is at least ``min_lapse_days`` before the send date and
    with no order in the ``min_lapse_days`` before it. Complete randomisation into two equal arms.
    An e-mailed customer places, with probability ``extra_order_probability``, one extra order at a
    uniform time in the window ``[sent, sent + window_days)`` on top of the natural process (which the
    e-mail does not change). So the true uplift in P(an order in the window) is
    ``extra_order_probability * (1 - P(natural order in the window))``, averaged over the eligible
    customers with each one's rate and lifetime: that is ``truth['conversion_uplift']``. The revenue
    uplift per customer is ``extra_order_probability`` times the expected extra order's value.
    """
    c = CAMPAIGN
    sent = int((np.datetime64(c["sent_date"]) - START).astype(int))
    w = c["window_days"]
    lapsed = np.ones(len(pop["birth"]), bool)
    lapsed[orders["cust"][(orders["day"] >= sent - c["min_lapse_days"]) & (orders["day"] < sent)]] = False
    eligible = np.flatnonzero(lapsed & (pop["birth"] <= sent - c["min_lapse_days"]))
    arm = np.where(rng.permutation(len(eligible)) % 2 == 0, "control", "email")
    emailed = eligible[arm == "email"]
    extra = emailed[rng.random(len(emailed)) < c["extra_order_probability"]]
    extra_day = sent + rng.integers(0, w, len(extra))
    # P(natural order in the window | rate, lifetime): Poisson with the days alive in the window
    start, end = np.maximum(pop["birth"][eligible], sent), np.minimum(pop["death"][eligible], sent + w)
    p_natural = 1 - np.exp(-pop["lam"][eligible] * np.clip(end - start, 0, None))
    extra_values = _gamma_gamma_values(rng, pop, extra)
    mean_value = _gamma_gamma_expected(pop, eligible).mean()
    n = len(eligible)  # eligible is sorted, so campaigns.csv is in customer order
    _write_csv(Path(out) / "campaigns.csv", {
        "campaign_id": np.full(n, c["campaign_id"]), "customer_id": pop["ids"][eligible],
        "sent_date": np.full(n, c["sent_date"]), "arm": arm, "discount": np.full(n, "0.00")})
    merged = {"cust": np.concatenate([orders["cust"], extra]), "day": np.concatenate([orders["day"], extra_day]),
              "amount": np.concatenate([orders["amount"], extra_values])}
    truth = {**c, "arms": {"control": 0.0, "email": 0.0},
             "n_per_arm": {a: int((arm == a).sum()) for a in ("control", "email")}, "extra_orders": len(extra),
             "conversion_uplift": round(float(c["extra_order_probability"] * (1 - p_natural).mean()), 6),
             "revenue_uplift_per_customer": round(float(c["extra_order_probability"] * mean_value), 4)}
    return merged, truth


# ---------------------------------------------------------------------------------------------
# Building blocks


def _population(rng: np.random.Generator, n: int, lam: np.ndarray, mu: np.ndarray) -> dict:
    """Customers with a first-order day, a purchase rate and a death day (may lie after AS_OF)."""
    birth = rng.integers(0, int(ACQUISITION_SHARE * HISTORY_DAYS), n)
    lifetime = rng.exponential(1.0, n) / mu
    ids = np.char.add("C", np.char.zfill(np.arange(1, n + 1).astype(str), 6))
    # Gamma-Gamma: each customer's nu ~ Gamma(q, rate=v); used only by the shops with those values
    g = GAMMA_GAMMA_TRUTH
    nu = rng.gamma(g["q"], 1 / g["v"], n)
    return {"ids": ids, "birth": birth, "lam": lam, "mu": mu, "lifetime": lifetime,
            "death": birth + lifetime, "nu": nu}


def _purchases(rng: np.random.Generator, pop: dict, season: bool = False) -> dict:
    """First order at birth, then Poisson repeat orders while alive and before the end of AS_OF.

    With ``season`` the intensity is ``SEASON_FACTOR`` times higher in SEASON_MONTHS: candidates are
    drawn at the peak rate and thinned outside the season (Lewis & Shedler 1979).
    """
    birth, end = pop["birth"].astype(float), np.minimum(pop["death"], HISTORY_DAYS)
    peak = pop["lam"] * (SEASON_FACTOR if season else 1.0)
    n = rng.poisson(peak * np.clip(end - birth - 1, 0, None))
    cust = np.repeat(np.arange(len(birth)), n)
    # repeat orders start the day after the first order (one order a day at most from the first day)
    t = birth[cust] + 1 + rng.random(len(cust)) * (end - birth - 1)[cust]
    day = np.floor(t).astype(int)
    if season:
        keep = _in_season(day) | (rng.random(len(day)) < 1 / SEASON_FACTOR)
        cust, day = cust[keep], day[keep]
    cust = np.concatenate([np.arange(len(birth)), cust])
    day = np.concatenate([pop["birth"], day])
    return {"cust": cust, "day": day}


def _in_season(day: np.ndarray) -> np.ndarray:
    month = (START + day).astype("datetime64[M]").astype(int) % 12 + 1
    return np.isin(month, SEASON_MONTHS)


def _season_exposure(pop: dict) -> tuple[np.ndarray, np.ndarray]:
    """Days each customer can place a repeat order, in and out of season (repeat orders start at birth + 1)."""
    days = np.arange(HISTORY_DAYS)
    in_season = _in_season(days).astype(float)
    cum = np.concatenate([[0.0], np.cumsum(in_season)])
    lo = pop["birth"] + 1.0
    hi = np.maximum(np.minimum(pop["death"], HISTORY_DAYS), lo)

    def cum_at(x):  # season days in [0, x) for fractional x
        whole = np.floor(x).astype(int)
        return cum[whole] + (x - whole) * in_season[np.minimum(whole, HISTORY_DAYS - 1)]

    inside = cum_at(hi) - cum_at(lo)
    return inside, (hi - lo) - inside


def _gamma_gamma_values(rng: np.random.Generator, pop: dict, cust: np.ndarray) -> np.ndarray:
    """Order value z ~ Gamma(p, rate=nu) for the customer of each order (Fader, Hardie & Lee 2005)."""
    z = rng.gamma(GAMMA_GAMMA_TRUTH["p"], 1 / pop["nu"][cust])
    return np.maximum(z, MIN_AMOUNT)


def _gamma_gamma_expected(pop: dict, cust: np.ndarray) -> np.ndarray:
    return GAMMA_GAMMA_TRUTH["p"] / pop["nu"][cust]


def _write_orders(out: str | Path, pop: dict, orders: dict, extra: tuple[str, ...] = ()) -> None:
    """orders.csv sorted by date then customer; order ids O0000001... in that order."""
    order = np.lexsort((orders["cust"], orders["day"]))
    n = len(order)
    rows = {"order_id": np.char.add("O", np.char.zfill(np.arange(1, n + 1).astype(str), 7)),
            "customer_id": pop["ids"][orders["cust"][order]],
            "order_date": (START + orders["day"][order]).astype(str),
            "amount": np.char.mod("%.2f", np.round(orders["amount"][order], 2))}
    rows.update({k: orders[k][order].astype(str) for k in extra})
    _write_csv(Path(out) / "orders.csv", rows)


def _write_customers(out: str | Path, rng: np.random.Generator, pop: dict) -> None:
    n = len(pop["ids"])
    _write_csv(Path(out) / "customers.csv", {
        "customer_id": pop["ids"],
        "region": np.array(REGIONS)[rng.integers(0, len(REGIONS), n)],
        "marketing_opt_in": np.where(rng.random(n) < CONSENT_SHARE, "1", "0")})


def _write_csv(path: Path, columns: dict) -> None:
    """Plain CSV: no field here holds a comma or a quote, so nothing needs quoting."""
    names = list(columns)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(row) for row in zip(*(np.asarray(columns[k]).astype(str).tolist() for k in names))]
    path.write_text(",".join(names) + "\n" + "".join(line + "\n" for line in lines))


# ---------------------------------------------------------------------------------------------
# The demo shop with hostile identities (privacy: test_privacy, conftest's `six_month_clv`)

# what a spreadsheet runs as a formula (OWASP "CSV injection"), given to the opted-in customers in turn
HOSTILE_EMAIL_PREFIXES = ("=", "+", "-2+3+", "@")
HOSTILE_NAME = "=cmd|' /C calc'!A0"


def add_hostile_identities(raw: Path) -> None:
    """Give customers.csv first and last names (extra columns a shop's export may carry) and make every
    opted-in customer's e-mail, and one name, start with a spreadsheet formula character."""
    customers = pd.read_csv(raw / "customers.csv", dtype=str)
    n = len(customers)
    customers["first_name"] = [f"Quillon{i:05d}" for i in range(n)]
    customers["last_name"] = [f"Brackwater{i:05d}" for i in range(n)]
    consent = customers["marketing_opt_in"].fillna("0").isin(["1", "true", "True"])
    prefixes = [HOSTILE_EMAIL_PREFIXES[k % len(HOSTILE_EMAIL_PREFIXES)] for k in range(int(consent.sum()))]
    customers.loc[consent, "email"] = [p + e for p, e in zip(prefixes, customers.loc[consent, "email"])]
    customers.loc[customers.index[consent][0], "first_name"] = HOSTILE_NAME
    customers.to_csv(raw / "customers.csv", index=False)


def hostile_small_shop(raw: Path) -> dict:
    """The 1,000-customer demo shop (seed 7) with hostile identities (`add_hostile_identities`)."""
    truth = demo.generate(raw, customers=1_000, seed=7)
    add_hostile_identities(raw)
    return truth


# the unusual but valid config the hostile shop's month is rendered with: 6-month CLV, horizons 7 and 30 days,
# 2 offers per customer
SIX_MONTH_CLV = {"clv": {"clv_months": 6, "horizons_days": [7, 30]}, "offers": {"top_n": 2}}
