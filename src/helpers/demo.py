"""A deterministic synthetic online shop whose true behaviour is known.

`generate` writes the raw files of the demo shop (``orders.csv``, ``customers.csv``,
``campaigns.csv``) following the raw data contract in DESIGN.md, plus ``truth.json`` with the
parameters and counts it was built from, so that tests can check that each stage recovers them.
Notebooks never read ``truth.json``.

Generative model
----------------
Purchases follow the BG/NBD model (Fader, Hardie & Lee 2005, "Counting your customers the easy
way: an alternative to the Pareto/NBD model", Marketing Science 24(2)), in the parameterisation of
the `lifetimes` package, time measured in days:

- while active, a customer buys as a Poisson process with rate ``lambda ~ Gamma(r, rate=alpha)``
  (mean ``r / alpha`` purchases a day);
- right after every repeat purchase the customer becomes inactive for good with probability
  ``p ~ Beta(a, b)`` (the first purchase never ends a customer's life, as in the paper's likelihood);
- ``lambda`` and ``p`` are independent across and within customers.

Order values follow the Gamma-Gamma model (Fader, Hardie & Lee 2005, "RFM and CLV: using
iso-value curves for customer base analysis", Journal of Marketing Research 42(4)): each customer
has ``nu ~ Gamma(q, rate=v)`` and each order's net value (after discounts) is
``z ~ Gamma(p, rate=nu)``, so the population mean order value is ``p * v / (q - 1)``. Order values
are independent of the purchase process.

Everything else (products, categories, coupons, returns, a randomised win-back campaign and dirty
rows) is layered on top without changing those two processes; see `generate` for the details.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from helpers import artifacts
from helpers.contract import CONTRACT

__all__ = ["generate", "BGNBD_TRUTH", "GAMMA_GAMMA_TRUTH", "CATEGORIES", "CATEGORY_TRANSITION"]

# --- truth of the two models ------------------------------------------------------------------
# r, alpha (days): mean purchase rate 0.7 / 60 = 0.0117 a day (about 4 a year while active);
# a, b: mean drop-out probability after each repeat purchase 0.6 / 3.6 = 0.167.
BGNBD_TRUTH = {"r": 0.7, "alpha": 60.0, "a": 0.6, "b": 3.0}
# mean net order value p * v / (q - 1) = 6 * 40 / 3 = 80 EUR.
GAMMA_GAMMA_TRUTH = {"p": 6.0, "q": 4.0, "v": 40.0}

# --- catalogue ----------------------------------------------------------------------------------
CATEGORIES = ("laptops", "phones", "accessories", "audio", "home", "fashion", "beauty", "books")
PRODUCTS_PER_CATEGORY = (30, 25, 60, 35, 50, 80, 45, 100)
CATEGORY_POPULARITY = np.array([0.08, 0.10, 0.16, 0.10, 0.14, 0.18, 0.12, 0.12])
# Category of the next order given the previous order's category (rows: previous, columns: next,
# in CATEGORIES order). After laptops or phones the next order is mostly accessories or audio.
CATEGORY_TRANSITION = np.array([
    [0.05, 0.05, 0.40, 0.20, 0.08, 0.07, 0.05, 0.10],  # laptops
    [0.04, 0.06, 0.40, 0.25, 0.07, 0.08, 0.05, 0.05],  # phones
    [0.08, 0.10, 0.20, 0.15, 0.14, 0.13, 0.10, 0.10],  # accessories
    [0.06, 0.08, 0.25, 0.15, 0.14, 0.12, 0.08, 0.12],  # audio
    [0.04, 0.05, 0.08, 0.08, 0.35, 0.15, 0.12, 0.13],  # home
    [0.03, 0.05, 0.07, 0.06, 0.12, 0.40, 0.20, 0.07],  # fashion
    [0.02, 0.04, 0.05, 0.05, 0.12, 0.30, 0.35, 0.07],  # beauty
    [0.04, 0.04, 0.07, 0.08, 0.12, 0.10, 0.07, 0.48],  # books
])
# Share of orders in the customer's preferred category (first order: FIRST_ORDER_PREFERRED).
PREFERRED_CATEGORY_WEIGHT = 0.35
FIRST_ORDER_PREFERRED = 0.60
# Probability that an extra line of an order stays in the order's main category.
SAME_CATEGORY_LINE = 0.5
LINES_PER_ORDER_PROBS = np.array([0.50, 0.30, 0.15, 0.05])  # 1..4 lines
QUANTITY_PROBS = np.array([0.80, 0.15, 0.05])  # 1..3 units

PAYMENT_METHODS = ("card", "paypal", "invoice", "apple_pay")
PAYMENT_POPULARITY = np.array([0.45, 0.30, 0.15, 0.10])
CHANNELS = ("web", "app", "marketplace")
CHANNEL_POPULARITY = np.array([0.55, 0.30, 0.15])
PREFERENCE_LOYALTY = 0.85  # share of orders using the customer's preferred payment/channel
REGIONS = ("North", "South", "East", "West", "Central", "Capital")
REGION_POPULARITY = np.array([0.18, 0.20, 0.14, 0.16, 0.12, 0.20])
MARKETING_OPT_IN = 0.70
LEAD_SHARE = 0.15  # leads on top of the buying customers

# --- discounts, returns, campaign, dirt --------------------------------------------------------
WELCOME = ("WELCOME10", 0.10)
SUMMER = ("SUMMER15", 0.15)  # July and August, on SUMMER_SHARE of orders
SUMMER_SHARE = 0.20
BLACK_WEEK_DISCOUNT = 0.20  # 24-30 November, no coupon code, on BLACK_WEEK_SHARE of orders
BLACK_WEEK_SHARE = 0.50
# P(first order uses WELCOME10 | p) rises with the drop-out probability p, so coupon customers
# churn more while the marginal p ~ Beta(a, b) stays the truth.
WELCOME_BASE, WELCOME_SLOPE, WELCOME_MAX = 0.10, 1.2, 0.90
RETURN_RATE = {"fashion": 0.12}  # share of completed lines returned later; other categories:
RETURN_RATE_DEFAULT = 0.03
RETURN_DELAY_DAYS = (2, 21)

CAMPAIGN_ID = "WB-2026-01"
CAMPAIGN_SENT = "2026-01-15"
CAMPAIGN_WINDOW_DAYS = 30
CAMPAIGN_MIN_LAPSE_DAYS = 120
CAMPAIGN_LONG_LAPSE_DAYS = 365
CAMPAIGN_HIGH_VALUE_EUR = 80.0
CAMPAIGN_ARMS = {"control": (0.0, ""), "discount_10": (0.10, "WINBACK10"),
                 "discount_20": (0.20, "WINBACK20")}
# Probability of an extra, campaign-induced order within the window, by customer type and arm.
CAMPAIGN_UPLIFT = {
    "long_lapsed": {"control": 0.0, "discount_10": 0.0, "discount_20": 0.0},
    "high_value": {"control": 0.0, "discount_10": 0.04, "discount_20": 0.05},
    "low_value": {"control": 0.0, "discount_10": 0.06, "discount_20": 0.12},
}

# Dirty rows as a share of the clean rows (completed + return lines); each has one kind of dirt.
DIRT_SHARE = {"duplicate_line": 0.004, "test_order": 0.001, "cancelled": 0.005,
              "missing_customer_id": 0.003, "bad_date": 0.003, "decimal_comma": 0.004}
BAD_DATES = ("2025-13-45", "not a date", "")
TEST_AMOUNTS_CENTS = np.array([1, 100, 1000, 9999])

# The files carry every column of the raw data contract, in its order.
ORDER_COLUMNS = [*CONTRACT["orders"][0], *CONTRACT["orders"][1]]
CUSTOMER_COLUMNS = [*CONTRACT["customers"][0], *CONTRACT["customers"][1]]
CAMPAIGN_COLUMNS = [*CONTRACT["campaigns"][0], *CONTRACT["campaigns"][1]]
SPEND_COLUMNS = [*CONTRACT["marketing_spend"][0], *CONTRACT["marketing_spend"][1]]
# marketing_spend.csv: what winning one customer who prefers each channel cost (EUR), times a monthly noise
# (lognormal, sd SPEND_NOISE); the app channel paid nothing in SPEND_GAP (a month without spend).
CAC_TRUTH = {"web": 18.0, "app": 30.0, "marketplace": 12.0}
SPEND_NOISE = 0.15
SPEND_GAP = ("app", "2024-12")

_SECONDS_PER_DAY = 86_400
# Relative order volume per hour of the day (a shop is busiest in the evening).
_HOURLY_WEIGHT = np.array([1, 0.6, 0.4, 0.3, 0.3, 0.4, 0.8, 1.5, 2.5, 3, 3.2, 3.4,
                           3.6, 3.4, 3.2, 3.2, 3.4, 3.8, 4.4, 5, 5.2, 4.6, 3.4, 2])
_COUPON_CODES = ("", WELCOME[0], SUMMER[0]) + tuple(c for _, c in CAMPAIGN_ARMS.values() if c)
_STATUSES = ("completed", "returned", "cancelled", "test")
_KIND_NATURAL, _KIND_CAMPAIGN = 0, 1  # order from the BG/NBD process / induced by the campaign


def generate(out: str | Path, customers: int = 20_000, seed: int = 42,
             start: str = "2023-07-01", end: str = "2026-06-30") -> dict:
    """Write orders.csv, customers.csv, campaigns.csv and truth.json into `out` (created if missing).

    Parameters
    ----------
    out : str or Path
        Folder for the four files; created if missing, files overwritten.
    customers : int
        Number of buying customers (leads come on top: ``round(0.15 * customers)``).
    seed : int
        Seed of ``numpy.random.default_rng``; the same seed gives byte-identical files.
    start, end : str
        First and last calendar day of the shop's history ('YYYY-MM-DD', both inclusive).

    Returns
    -------
    dict
        The truth, same content as ``truth.json``.

    Notes
    -----
    Assumptions layered on the BG/NBD and Gamma-Gamma truth (see the module docstring):

    - Acquisition: first orders fall in ``[start, end - 60 days]`` with a density growing
      linearly to three times its initial value (a growing shop). Buyers sign up on the day of
      their first order (half of them) or some days before (exponential, mean 7 days).
    - Orders are split into 1-4 lines whose net amounts add up to the Gamma-Gamma order value;
      a discounted line carries ``discount_amount = gross - net``. Main categories follow a
      Markov chain mixed with a preferred category per customer (`CATEGORY_TRANSITION`).
    - Discounts: WELCOME10 on some first orders (more often for customers with a high drop-out
      probability), SUMMER15 in July-August, 20 % without coupon in the Black week.
    - Returns: a few % of completed lines (12 % in fashion) get a return line (status
      ``returned``, negative amount and quantity, same order and product, 2-21 days later,
      only if that is before ``end``).
    - Win-back campaign `CAMPAIGN_ID` sent on `CAMPAIGN_SENT` to buyers with no order in the
      120 days before; arms assigned by complete randomisation with equal sizes. The outcome
      is the natural BG/NBD purchase plus, with probability `CAMPAIGN_UPLIFT[type][arm]`, an
      extra order within 30 days using the arm's coupon (it does not change the natural process).
    - Dirt (about 2 % of rows, one kind per row, added after the clean rows): exact duplicate
      lines, ``test`` orders of ``TEST....`` customers, ``cancelled`` orders, lines with an empty
      customer id, malformed dates (`BAD_DATES`), and correct amounts written with a decimal
      comma (``"12,50"``, valid completed lines that cleaning must keep).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    day0 = np.datetime64(start, "D")
    horizon = int((np.datetime64(end, "D") - day0).astype(int)) + 1  # days, end inclusive
    sent_day = int((np.datetime64(CAMPAIGN_SENT, "D") - day0).astype(int))
    if sent_day - CAMPAIGN_MIN_LAPSE_DAYS <= 0 or sent_day + CAMPAIGN_WINDOW_DAYS > horizon:
        raise ValueError(f"{CAMPAIGN_SENT} plus {CAMPAIGN_WINDOW_DAYS} days must lie in {start}..{end}")

    cust = _simulate_customers(rng, customers, horizon)
    orders = _simulate_purchases(rng, cust, horizon)
    campaign, campaign_orders, campaign_truth = _run_campaign(rng, cust, orders, sent_day)
    orders = {k: np.concatenate([orders[k], campaign_orders[k]]) for k in orders}
    _assign_discounts(rng, cust, orders, day0)
    _assign_categories(rng, cust, orders)
    lines = _split_lines(rng, orders)
    returns = _make_returns(rng, lines)
    dirt_lines, dirt_orders = _make_dirt(rng, orders, lines, returns)

    customers_cols, ids, signup_sec = _customers_table(rng, cust, horizon, day0)
    orders_cols, truth_rows, dirt_counts = _assemble_orders(
        rng, cust, orders, lines, returns, dirt_lines, dirt_orders, day0, ids, signup_sec)
    campaigns_cols = _campaigns_table(campaign, ids)
    _write_csv(orders_cols, ORDER_COLUMNS, out / "orders.csv")
    _write_csv(customers_cols, CUSTOMER_COLUMNS, out / "customers.csv")
    _write_csv(campaigns_cols, CAMPAIGN_COLUMNS, out / "campaigns.csv")
    spend = _spend_table(seed, cust, day0)
    _write_csv(spend, SPEND_COLUMNS, out / "marketing_spend.csv")

    truth = _truth(seed, customers, start, end, cust, customers_cols, campaign_truth, dirt_counts, truth_rows)
    truth["marketing_spend"] = {"cac_per_preferring_customer": dict(CAC_TRUTH), "noise_sd": SPEND_NOISE,
                                "month_without_spend": list(SPEND_GAP), "rows": len(spend["month"])}
    artifacts.write_json_file(out / "truth.json", truth, sort_keys=False)
    return truth


def _spend_table(seed: int, cust: dict, day0: np.datetime64) -> dict:
    """marketing_spend.csv's columns: per month of the history and channel, the customers acquired that month
    who prefer the channel times its CAC_TRUTH, with lognormal noise; drawn from a stream of its own, so the
    orders are the same with or without the file."""
    rng = np.random.default_rng([seed, 7])
    months = (day0 + np.floor(cust["t0"]).astype("timedelta64[D]")).astype("datetime64[M]")
    rows = {"month": [], "channel": [], "spend": []}
    for month in np.unique(months):
        for c, name in enumerate(CHANNELS):
            label = str(month)
            if (name, label) == SPEND_GAP:
                continue
            won = int(((months == month) & (cust["pref_channel"] == c)).sum())
            rows["month"].append(label)
            rows["channel"].append(name)
            rows["spend"].append(f"{won * CAC_TRUTH[name] * rng.lognormal(0.0, SPEND_NOISE):.2f}")
    return rows


def _campaigns_table(campaign: dict, ids: np.ndarray) -> dict:
    """campaigns.csv's columns: one row per campaign customer, sorted by customer id."""
    by_id = np.argsort(ids[campaign["cust"]], kind="stable")
    arm = campaign["arm"][by_id]
    return {
        "campaign_id": np.full(len(arm), CAMPAIGN_ID),
        "customer_id": ids[campaign["cust"]][by_id],
        "sent_date": np.full(len(arm), CAMPAIGN_SENT),
        "arm": arm,
        "discount": np.array([f"{CAMPAIGN_ARMS[a][0]:.2f}" for a in arm.tolist()]),
    }


def _truth(seed, customers, start, end, cust, customers_cols, campaign_truth, dirt_counts, truth_rows) -> dict:
    """truth.json's content: the models' parameters, the campaign, the dirt and the row counts."""
    welcome = cust["welcome"]
    return {
        "seed": seed,
        "customers": customers,
        "leads": int(len(customers_cols["customer_id"]) - customers),
        "start": start,
        "end": end,
        "bgnbd": dict(BGNBD_TRUTH),
        "gamma_gamma": dict(GAMMA_GAMMA_TRUTH),
        "mean_order_value": GAMMA_GAMMA_TRUTH["p"] * GAMMA_GAMMA_TRUTH["v"]
        / (GAMMA_GAMMA_TRUTH["q"] - 1),
        "alive_at_end_share": round(float(cust["alive_end"].mean()), 6),
        "campaign": campaign_truth,
        "dirt": dirt_counts,
        "rows": truth_rows,
        "coupon_effect": {
            "coupon_code": WELCOME[0],
            "discount": WELCOME[1],
            "p_coupon_given_dropout_p": f"min({WELCOME_MAX}, {WELCOME_BASE} + {WELCOME_SLOPE} * p)",
            "customers_with_welcome_coupon": int(welcome.sum()),
            "mean_dropout_p_with_coupon": round(float(cust["p"][welcome].mean()), 6),
            "mean_dropout_p_without_coupon": round(float(cust["p"][~welcome].mean()), 6),
        },
        "categories": list(CATEGORIES),
        "category_transition": np.round(_normalised_transition(), 6).tolist(),
        "preferred_category_weight": PREFERRED_CATEGORY_WEIGHT,
        "return_rate": {c: RETURN_RATE.get(c, RETURN_RATE_DEFAULT) for c in CATEGORIES},
    }


# --- customers and purchases ------------------------------------------------------------------

def _simulate_customers(rng: np.random.Generator, n: int, horizon: int) -> dict:
    """Per-customer latent traits: acquisition time t0 (days from start), lambda, p, nu, preferences."""
    acquire_days = horizon  # new customers keep arriving up to the last day, as in a live shop
    t0 = _growing_times(rng, n, acquire_days)
    bg, gg = BGNBD_TRUTH, GAMMA_GAMMA_TRUTH
    lam = rng.gamma(bg["r"], 1.0 / bg["alpha"], n)
    p = rng.beta(bg["a"], bg["b"], n)
    nu = rng.gamma(gg["q"], 1.0 / gg["v"], n)
    welcome = rng.random(n) < np.minimum(WELCOME_MAX, WELCOME_BASE + WELCOME_SLOPE * p)
    return {
        "n": n, "horizon_sec": horizon * _SECONDS_PER_DAY, "t0": t0, "lam": lam, "p": p, "nu": nu, "welcome": welcome,
        "pref_cat": rng.choice(len(CATEGORIES), n, p=CATEGORY_POPULARITY),
        "pref_pay": rng.choice(len(PAYMENT_METHODS), n, p=PAYMENT_POPULARITY),
        "pref_channel": rng.choice(len(CHANNELS), n, p=CHANNEL_POPULARITY),
    }


def _growing_times(rng: np.random.Generator, n: int, days: float, growth: float = 2.0) -> np.ndarray:
    """Times in [0, days) with density proportional to 1 + growth * t / days (inverse CDF)."""
    u = rng.random(n)
    x = (-1.0 + np.sqrt(1.0 + 2.0 * growth * u * (1.0 + growth / 2.0))) / growth
    return np.minimum(x * days, np.nextafter(days, 0))


def _simulate_purchases(rng: np.random.Generator, cust: dict, horizon: int) -> dict:
    """First orders and BG/NBD repeat orders up to the horizon, one entry per order.

    The number of repeat purchases before drop-out is K ~ Geometric(p) on {1, 2, ...}; purchases
    arrive as a Poisson process, so given N ~ Poisson(lambda * T) arrivals in the T days from the
    day after the first order to the end, the
    times are uniform order statistics, of which only the first min(N, K) happen. Those are drawn
    without materialising all N uniforms: U_(j) = S_j / S_{N+1} for exponential partial sums S.
    """
    n, t0 = cust["n"], cust["t0"]
    # Repeat purchases run from the day after the first order to the end, so the exposure is
    # exactly T = end - first order date in whole days, as the RFM summary measures it.
    origin = np.floor(t0) + 1.0
    span = horizon - origin
    k = rng.geometric(cust["p"])
    arrivals = rng.poisson(cust["lam"] * span)
    x = np.minimum(arrivals, k)
    cust["x"] = x
    cust["alive_end"] = arrivals < k

    idx = np.repeat(np.arange(n), x)
    csum = np.cumsum(rng.exponential(1.0, int(x.sum())))
    bounds = np.concatenate([[0.0], csum])
    ends = np.cumsum(x)
    before = bounds[ends - x]
    partial = csum - np.repeat(before, x)
    rest = np.zeros(n)
    has = x > 0
    rest[has] = rng.gamma((arrivals - x + 1)[has])
    total = bounds[ends] - before + rest
    t_rep = origin[idx] + partial / total[idx] * span[idx]
    # time of the K-th repeat purchase, after which the customer is inactive (inf if still alive)
    death = np.full(n, np.inf)
    dead = ~cust["alive_end"]  # dead customers made all K repeats: the last one ends them
    death[dead] = t_rep[ends[dead] - 1]
    cust["death"] = death

    cust_all = np.concatenate([np.arange(n), idx])
    t_all = np.concatenate([t0, t_rep])
    first = np.concatenate([np.ones(n, bool), np.zeros(len(idx), bool)])
    order = np.lexsort((t_all, cust_all))
    gg = GAMMA_GAMMA_TRUTH
    cust_all, t_all, first = cust_all[order], t_all[order], first[order]
    value = rng.gamma(gg["p"], 1.0 / cust["nu"][cust_all])
    return {"cust": cust_all, "t": t_all, "first": first, "value": value,
            "kind": np.full(len(cust_all), _KIND_NATURAL)}


def campaign_type(lapsed_days, mean_order_value) -> np.ndarray:
    """The demo campaign's customer type: long_lapsed (no order for CAMPAIGN_LONG_LAPSE_DAYS days or
    more), else high_value (mean order value before sending >= CAMPAIGN_HIGH_VALUE_EUR) or low_value.

    lapsed_days: sent date minus the day of the last order; the uplift differs by type (CAMPAIGN_UPLIFT).
    """
    lapsed, value = np.asarray(lapsed_days, dtype=float), np.asarray(mean_order_value, dtype=float)
    return np.where(lapsed >= CAMPAIGN_LONG_LAPSE_DAYS, "long_lapsed",
                    np.where(value >= CAMPAIGN_HIGH_VALUE_EUR, "high_value", "low_value"))


def _run_campaign(rng: np.random.Generator, cust: dict, orders: dict, sent_day: int):
    """Randomised win-back campaign on lapsed buyers; returns assignment, extra orders, truth."""
    before = orders["t"] < sent_day
    frame = pd.DataFrame({"cust": orders["cust"][before], "day": np.floor(orders["t"][before]),
                          "value": orders["value"][before]})
    per = frame.groupby("cust").agg(last_day=("day", "max"), mean_value=("value", "mean"))
    lapsed = sent_day - per["last_day"].to_numpy()
    eligible = per.index.to_numpy()[lapsed >= CAMPAIGN_MIN_LAPSE_DAYS]
    per = per.loc[eligible]
    kind = campaign_type(sent_day - per["last_day"].to_numpy(), per["mean_value"].to_numpy())
    arm_names = list(CAMPAIGN_ARMS)
    arm = np.array(arm_names)[rng.permutation(len(eligible)) % len(arm_names)]
    uplift = np.array([CAMPAIGN_UPLIFT[t][a] for t, a in zip(kind, arm)], dtype=float)
    extra = rng.random(len(eligible)) < uplift

    # natural purchase probability in the window, given the latent traits
    w = CAMPAIGN_WINDOW_DAYS
    alive = cust["death"][eligible] >= sent_day
    p_natural = alive * (1.0 - np.exp(-w * cust["lam"][eligible]))
    in_window = (orders["t"] >= sent_day) & (orders["t"] < sent_day + w)
    bought_natural = np.isin(eligible, orders["cust"][in_window])

    ex_cust = eligible[extra]
    t_extra = sent_day + rng.random(len(ex_cust)) * w
    value = rng.gamma(GAMMA_GAMMA_TRUTH["p"], 1.0 / cust["nu"][ex_cust])
    campaign_orders = {"cust": ex_cust, "t": t_extra, "first": np.zeros(len(ex_cust), bool),
                       "value": value, "kind": np.full(len(ex_cust), _KIND_CAMPAIGN)}
    cust["campaign_arm"] = dict(zip(ex_cust.tolist(), arm[extra].tolist()))

    types = list(CAMPAIGN_UPLIFT)
    df = pd.DataFrame({"type": kind, "arm": arm, "buy": bought_natural | extra,
                       "binary_uplift": uplift * (1.0 - p_natural)})
    truth = {
        "campaign_id": CAMPAIGN_ID,
        "sent_date": CAMPAIGN_SENT,
        "window_days": w,
        "eligibility": f"bought before and no completed order in the {CAMPAIGN_MIN_LAPSE_DAYS} "
                       "days before sent_date (lapsed_days = sent_date - last order date)",
        "arms": {a: {"discount": d, "coupon_code": c} for a, (d, c) in CAMPAIGN_ARMS.items()},
        "customer_types": {
            "long_lapsed": f"lapsed_days >= {CAMPAIGN_LONG_LAPSE_DAYS}",
            "high_value": f"lapsed_days < {CAMPAIGN_LONG_LAPSE_DAYS} and mean order value before "
                          f"sent_date >= {CAMPAIGN_HIGH_VALUE_EUR:g} EUR",
            "low_value": f"lapsed_days < {CAMPAIGN_LONG_LAPSE_DAYS} and mean order value before "
                         f"sent_date < {CAMPAIGN_HIGH_VALUE_EUR:g} EUR",
        },
        "true_uplift": {t: dict(CAMPAIGN_UPLIFT[t]) for t in types},
        "true_uplift_meaning": "probability of an extra, campaign-induced order in the window",
        # expected uplift in P(any purchase in window): uplift * (1 - P(natural purchase))
        "true_uplift_purchase_prob": {
            t: {a: round(float(df.loc[(df["type"] == t) & (df["arm"] == a), "binary_uplift"]
                               .mean()), 6) if ((df["type"] == t) & (df["arm"] == a)).any() else 0.0
                for a in arm_names} for t in types},
        "n_per_arm": {a: int((arm == a).sum()) for a in arm_names},
        "n_per_type_arm": {t: {a: int(((kind == t) & (arm == a)).sum()) for a in arm_names}
                           for t in types},
        # the generator's own count of campaign customers who bought in the window (a natural or an extra
        # order), per type and arm: the realised outcome a measurement of the campaign must reproduce
        "buyers_per_type_arm": {t: {a: int(df.loc[(df["type"] == t) & (df["arm"] == a), "buy"].sum())
                                    for a in arm_names} for t in types},
        "extra_orders": {a: int((extra & (arm == a)).sum()) for a in arm_names},
        "observed_purchase_rate": {a: round(float(df.loc[df["arm"] == a, "buy"].mean()), 6)
                                   for a in arm_names},
    }
    return {"cust": eligible, "arm": arm}, campaign_orders, truth


def _assign_discounts(rng: np.random.Generator, cust: dict, orders: dict, day0: np.datetime64) -> None:
    """Discount rate and coupon code per order (WELCOME, WINBACK, SUMMER, Black week)."""
    m = len(orders["t"])
    day = day0 + np.floor(orders["t"]).astype("int64").astype("timedelta64[D]")
    month = day.astype("datetime64[M]").astype(int) % 12 + 1
    mday = (day - day.astype("datetime64[M]")).astype(int) + 1
    rate = np.zeros(m)
    code = np.zeros(m, dtype=np.int64)  # index into _COUPON_CODES
    summer = np.isin(month, (7, 8)) & (rng.random(m) < SUMMER_SHARE)
    rate[summer], code[summer] = SUMMER[1], _COUPON_CODES.index(SUMMER[0])
    black = (month == 11) & (mday >= 24) & (rng.random(m) < BLACK_WEEK_SHARE)
    rate[black], code[black] = BLACK_WEEK_DISCOUNT, 0
    welcome = orders["first"] & cust["welcome"][orders["cust"]]
    rate[welcome], code[welcome] = WELCOME[1], _COUPON_CODES.index(WELCOME[0])
    camp = orders["kind"] == _KIND_CAMPAIGN
    arms = [cust["campaign_arm"][c] for c in orders["cust"][camp].tolist()]
    rate[camp] = [CAMPAIGN_ARMS[a][0] for a in arms]
    code[camp] = [_COUPON_CODES.index(CAMPAIGN_ARMS[a][1]) for a in arms]
    orders["rate"], orders["code"] = rate, code


def _assign_categories(rng: np.random.Generator, cust: dict, orders: dict) -> None:
    """Main category per order: preferred category mixed with a Markov chain over orders."""
    order = np.lexsort((orders["t"], orders["cust"]))
    for key in orders:
        orders[key] = orders[key][order]
    c = orders["cust"]
    m = len(c)
    starts = np.r_[True, c[1:] != c[:-1]]
    rank = np.arange(m) - np.maximum.accumulate(np.where(starts, np.arange(m), 0))
    by_rank = np.lexsort((c, rank))
    rank_sorted = rank[by_rank]
    cuts = np.searchsorted(rank_sorted, np.arange(rank_sorted[-1] + 2 if m else 1))
    cum_trans = np.cumsum(_normalised_transition(), axis=1)
    cum_pop = np.cumsum(CATEGORY_POPULARITY / CATEGORY_POPULARITY.sum())
    prev = np.zeros(cust["n"], dtype=int)
    cat = np.zeros(m, dtype=int)
    u_pref, u_cat = rng.random(m), rng.random(m)
    for r in range(len(cuts) - 1):
        sl = by_rank[cuts[r]:cuts[r + 1]]
        who = c[sl]
        pref = cust["pref_cat"][who]
        if r == 0:
            drawn = np.minimum(np.searchsorted(cum_pop, u_cat[sl], side="right"), len(CATEGORIES) - 1)
            chosen = np.where(u_pref[sl] < FIRST_ORDER_PREFERRED, pref, drawn)
        else:
            rows = cum_trans[prev[who]]
            drawn = np.minimum((u_cat[sl][:, None] >= rows).sum(axis=1), len(CATEGORIES) - 1)
            chosen = np.where(u_pref[sl] < PREFERRED_CATEGORY_WEIGHT, pref, drawn)
        cat[sl] = chosen
        prev[who] = chosen
    orders["cat"] = cat
    loyal = rng.random(m) < PREFERENCE_LOYALTY
    orders["pay"] = np.where(loyal, cust["pref_pay"][c],
                             rng.choice(len(PAYMENT_METHODS), m, p=PAYMENT_POPULARITY))
    loyal = rng.random(m) < PREFERENCE_LOYALTY
    orders["channel"] = np.where(loyal, cust["pref_channel"][c],
                                 rng.choice(len(CHANNELS), m, p=CHANNEL_POPULARITY))


def _normalised_transition() -> np.ndarray:
    return CATEGORY_TRANSITION / CATEGORY_TRANSITION.sum(axis=1, keepdims=True)


def _split_lines(rng: np.random.Generator, orders: dict) -> dict:
    """Split each order's net value into 1-4 lines with distinct products; amounts in cents."""
    m = len(orders["t"])
    n_lines = rng.choice(len(LINES_PER_ORDER_PROBS), m, p=LINES_PER_ORDER_PROBS) + 1
    oi = np.repeat(np.arange(m), n_lines)
    pos = np.arange(len(oi)) - np.repeat(np.cumsum(n_lines) - n_lines, n_lines)
    share = rng.gamma(1.0, 1.0, len(oi))
    share = share / np.bincount(oi, weights=share)[oi]
    net = np.maximum(np.round(orders["value"][oi] * share * 100).astype(np.int64), 1)
    rate = orders["rate"][oi]
    disc = np.round(net / (1.0 - rate) - net).astype(np.int64)

    main = orders["cat"][oi]
    cum_trans = np.cumsum(_normalised_transition(), axis=1)
    other = np.minimum((rng.random(len(oi))[:, None] >= cum_trans[main]).sum(axis=1),
                       len(CATEGORIES) - 1)
    cat = np.where((pos == 0) | (rng.random(len(oi)) < SAME_CATEGORY_LINE), main, other)
    # products: Zipf-like popularity inside each category, ids contiguous per category
    sizes = np.array(PRODUCTS_PER_CATEGORY)
    offset = np.cumsum(sizes) - sizes
    u = rng.random(len(oi))
    local = np.zeros(len(oi), dtype=np.int64)
    for k, size in enumerate(sizes):
        sel = cat == k
        cum = np.cumsum(1.0 / np.arange(1, size + 1) ** 0.8)
        local[sel] = np.minimum(np.searchsorted(cum / cum[-1], u[sel], side="right"), size - 1)
    while True:  # distinct products within an order, so no two clean lines are identical
        key = pd.DataFrame({"o": oi, "c": cat, "l": local})
        dup = key.duplicated(["o", "c", "l"]).to_numpy()
        if not dup.any():
            break
        local[dup] = (local[dup] + 1) % sizes[cat[dup]]
    quantity = rng.choice(len(QUANTITY_PROBS), len(oi), p=QUANTITY_PROBS) + 1
    return {"order": oi, "pos": pos, "cents": net, "disc": disc, "cat": cat,
            "product": offset[cat] + local, "qty": quantity}


def _make_returns(rng: np.random.Generator, lines: dict) -> dict:
    """Return lines for a few % of completed lines, a few days later (dropped later if past end)."""
    rates = np.array([RETURN_RATE.get(c, RETURN_RATE_DEFAULT) for c in CATEGORIES])
    picked = np.flatnonzero(rng.random(len(lines["order"])) < rates[lines["cat"]])
    lo, hi = RETURN_DELAY_DAYS
    delay = rng.uniform(lo, hi + 1, len(picked))
    return {"line": picked, "delay": delay}


def _make_dirt(rng: np.random.Generator, orders: dict, lines: dict, returns: dict):
    """Choose which clean lines are copied or reformatted into dirt, and the extra dirty orders."""
    completed = np.arange(len(lines["order"]))  # every clean line is a completed line
    base = len(completed) + len(returns["line"])
    n = {k: int(round(v * base)) for k, v in DIRT_SHARE.items()}
    shuffled = rng.permutation(completed)
    comma = np.sort(shuffled[:n["decimal_comma"]])
    dup = np.sort(shuffled[n["decimal_comma"]:n["decimal_comma"] + n["duplicate_line"]])
    missing = np.sort(rng.choice(completed, n["missing_customer_id"], replace=False))
    bad = np.sort(rng.choice(completed, n["bad_date"], replace=False))
    # cancelled orders: copies of real orders placed shortly before them, until enough lines
    per_order = np.bincount(lines["order"], minlength=len(orders["t"]))
    cand = rng.permutation(len(orders["t"]))
    n_cancel = int(np.searchsorted(np.cumsum(per_order[cand]), n["cancelled"])) + 1
    cancelled = np.sort(cand[:n_cancel]) if n["cancelled"] else np.array([], dtype=int)
    n_test = max(2, int(round(n["test_order"] / 2.0))) if n["test_order"] else 0
    return ({"comma": comma, "dup": dup, "missing": missing, "bad": bad},
            {"cancelled": cancelled, "n_test": n_test})


# --- assembling and writing ---------------------------------------------------------------------

def _assemble_orders(rng, cust, orders, lines, returns, dirt_lines, dirt_orders, day0, ids,
                     signup_sec):
    """Every row of orders.csv as string columns (sorted), the exact row counts and dirt counts.

    Rows come in blocks: 0 clean completed lines, 1 return lines, 2 exact duplicates of clean
    lines, 3 cancelled orders, 4 lines with a missing customer id, 5 lines with a malformed
    date, 6 test orders. Blocks 2-6 are dirt; decimal commas are a format of some block-0 rows.
    """
    blocks, n_order_ids = _row_blocks(rng, cust, orders, lines, returns, dirt_lines, dirt_orders, signup_sec)
    sizes = [len(b["num"]) for b in blocks]
    first_row = np.cumsum([0] + sizes)
    cols = {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}
    comma = np.zeros(len(cols["num"]), bool)
    comma[dirt_lines["comma"]] = True  # block 0 rows are indexed like the clean lines
    bad_form = np.full(len(cols["num"]), -1)
    bad_form[first_row[5]:first_row[6]] = np.arange(sizes[5]) % len(BAD_DATES)

    order = np.lexsort((cols["tag"], cols["pos"], cols["num"]))
    cols = {k: v[order] for k, v in cols.items()}
    comma, bad_form = comma[order], bad_form[order]
    rows = _format_rows(cols, comma, bad_form, day0, ids, width=max(7, len(str(n_order_ids))))

    dirt = {"duplicate_line": sizes[2], "test_order": sizes[6], "cancelled": sizes[3],
            "missing_customer_id": sizes[4], "bad_date": sizes[5],
            "decimal_comma": int(comma.sum())}
    dirt = {k: int(v) for k, v in dirt.items()}
    truth_rows = {
        "orders_csv": int(sum(sizes)),
        "clean_lines": int(sizes[0]),
        "return_lines": int(sizes[1]),
        "dirty_lines_to_drop": int(sum(sizes[2:])),
        "clean_orders": int(len(orders["t"])),
        "campaign_orders": int((orders["kind"] == _KIND_CAMPAIGN).sum()),
        "note": "orders_csv = clean_lines + return_lines + dirty_lines_to_drop; decimal_comma "
                "lines are clean lines (keep them)",
    }
    dirt["bad_date_forms"] = list(BAD_DATES)
    dirt["test_customer_prefix"] = "TEST"
    return rows, truth_rows, dirt


def _row_blocks(rng, cust, orders, lines, returns, dirt_lines, dirt_orders, signup_sec) -> tuple[list[dict], int]:
    """The seven blocks of rows (see `_assemble_orders`) as integer columns, and how many order ids
    were given out (real and dirty orders share one auto-increment, in time order)."""
    n_clean = len(lines["order"])
    cl = lines["order"]
    order_sec = _to_seconds(orders["t"])
    line_sec = order_sec[cl]
    rl = returns["line"]
    ret_sec = _to_seconds(orders["t"][cl[rl]] + returns["delay"])
    keep = ret_sec < cust["horizon_sec"]  # returns after the export's end have not happened
    rl, ret_sec = rl[keep], ret_sec[keep]

    canc = dirt_orders["cancelled"]  # re-placed right after a cancelled copy of the same order
    canc_sec = np.maximum(order_sec[canc] - rng.integers(300, 7200, len(canc)),
                          signup_sec[orders["cust"][canc]])
    canc_lines = np.flatnonzero(np.isin(cl, canc))
    miss, bad, dup = dirt_lines["missing"], dirt_lines["bad"], dirt_lines["dup"]
    n_test = dirt_orders["n_test"]
    test_sec = rng.integers(0, int(order_sec.max()) + 1, n_test)
    test_n_lines = rng.integers(1, 4, n_test)

    # order ids follow time over all orders, real and dirty (like a shop's auto-increment)
    stamp = np.concatenate([order_sec, canc_sec, line_sec[miss], line_sec[bad], test_sec])
    order_num = np.empty(len(stamp), dtype=np.int64)
    order_num[np.argsort(stamp, kind="stable")] = np.arange(1, len(stamp) + 1)
    o_real, o_canc, o_miss, o_bad, o_test = np.split(
        order_num, np.cumsum([len(order_sec), len(canc), len(miss), len(bad)]))
    canc_num = np.zeros(len(order_sec), dtype=np.int64)
    canc_num[canc] = o_canc
    canc_at = np.zeros(len(order_sec), dtype=np.int64)
    canc_at[canc] = canc_sec

    def block(src, num, sec, sign, status, cust_idx, keep_discount, tag=0):
        return {
            "num": num, "pos": lines["pos"][src], "tag": np.full(len(src), tag), "cust": cust_idx,
            "sec": sec, "cents": sign * lines["cents"][src], "qty": sign * lines["qty"][src],
            "product": lines["product"][src], "cat": lines["cat"][src],
            "status": np.full(len(src), _STATUSES.index(status)),
            "pay": orders["pay"][cl[src]], "chan": orders["channel"][cl[src]],
            "disc": lines["disc"][src] * keep_discount, "code": orders["code"][cl[src]] * keep_discount,
        }

    blocks = [
        block(np.arange(n_clean), o_real[cl], line_sec, 1, "completed", orders["cust"][cl], 1),
        block(rl, o_real[cl[rl]], ret_sec, -1, "returned", orders["cust"][cl[rl]], 0, tag=1),
        block(dup, o_real[cl[dup]], line_sec[dup], 1, "completed", orders["cust"][cl[dup]], 1, tag=2),
        block(canc_lines, canc_num[cl[canc_lines]], canc_at[cl[canc_lines]], 1, "cancelled",
              orders["cust"][cl[canc_lines]], 1),
        block(miss, o_miss, line_sec[miss], 1, "completed", np.full(len(miss), -1), 1),
        block(bad, o_bad, line_sec[bad], 1, "completed", orders["cust"][cl[bad]], 1),
        _test_block(rng, o_test, test_sec, test_n_lines),
    ]
    return blocks, len(stamp)


def _test_block(rng, o_test: np.ndarray, test_sec: np.ndarray, test_n_lines: np.ndarray) -> dict:
    """Block 6: test orders of TEST0001..TEST0005 with 1-3 lines each, at test amounts."""
    n_test = len(o_test)
    n_t = int(test_n_lines.sum())
    t_prod = rng.integers(0, sum(PRODUCTS_PER_CATEGORY), n_t)
    return {
        "num": np.repeat(o_test, test_n_lines),
        "pos": np.arange(n_t) - np.repeat(np.cumsum(test_n_lines) - test_n_lines, test_n_lines),
        "tag": np.zeros(n_t, dtype=int),
        "cust": -2 - np.repeat(np.arange(n_test) % 5, test_n_lines),  # TEST0001..TEST0005
        "sec": np.repeat(test_sec, test_n_lines),
        "cents": rng.choice(TEST_AMOUNTS_CENTS, n_t), "qty": np.ones(n_t, dtype=np.int64),
        "product": t_prod,
        "cat": np.repeat(np.arange(len(CATEGORIES)), PRODUCTS_PER_CATEGORY)[t_prod],
        "status": np.full(n_t, _STATUSES.index("test")),
        "pay": np.zeros(n_t, dtype=np.int64), "chan": np.zeros(n_t, dtype=np.int64),
        "disc": np.zeros(n_t, dtype=np.int64), "code": np.zeros(n_t, dtype=np.int64),
    }


def _format_rows(cols: dict, comma: np.ndarray, bad_form: np.ndarray, day0, ids, width: int) -> dict:
    """The sorted integer columns written as orders.csv's string columns (Arrow arrays)."""
    amount = _format_cents(cols["cents"])
    amount = pc.if_else(pa.array(comma), pc.replace_substring(amount, ".", ","), amount)
    dates = pc.if_else(pa.array(bad_form >= 0),
                       pa.array(BAD_DATES).take(pa.array(np.maximum(bad_form, 0))),
                       _format_seconds(cols["sec"], day0))
    # customer labels: buyers' ids, then "" (missing id), then TEST0001..TEST0005
    labels = pa.array(list(ids) + [""] + [f"TEST{k:04d}" for k in range(1, 6)])
    c = cols["cust"]
    label_idx = np.where(c >= 0, c, np.where(c == -1, len(ids), len(ids) - 1 - c))
    return {
        "order_id": _prefixed(cols["num"], "O", width),
        "customer_id": labels.take(pa.array(label_idx)),
        "order_date": dates,
        "amount": amount,
        "quantity": pc.cast(pa.array(cols["qty"]), pa.string()),
        "product_id": _prefixed(cols["product"] + 1, "P", 4),
        "category": pa.array(CATEGORIES).take(pa.array(cols["cat"])),
        "status": pa.array(_STATUSES).take(pa.array(cols["status"])),
        "payment_method": pa.array(PAYMENT_METHODS).take(pa.array(cols["pay"])),
        "channel": pa.array(CHANNELS).take(pa.array(cols["chan"])),
        "currency": pa.array(np.full(len(c), "EUR")),
        "discount_amount": _format_cents(cols["disc"]),
        "coupon_code": pa.array(_COUPON_CODES).take(pa.array(cols["code"])),
    }


def _to_seconds(t: np.ndarray) -> np.ndarray:
    """Days from start (float) to whole seconds; the fraction of a day maps monotonically onto
    the shop's hourly profile, so the order of events within a day is kept."""
    day = np.floor(t)
    cdf = np.concatenate([[0.0], np.cumsum(_HOURLY_WEIGHT) / _HOURLY_WEIGHT.sum()])
    sec_of_day = np.interp(t - day, cdf, np.arange(25) * 3600.0)
    return day.astype(np.int64) * _SECONDS_PER_DAY + np.minimum(sec_of_day.astype(np.int64),
                                                                _SECONDS_PER_DAY - 1)


def _format_seconds(sec: np.ndarray, day0: np.datetime64) -> pa.Array:
    """Seconds from day0 to 'YYYY-MM-DD HH:MM:SS' (through small lookup tables: fast)."""
    day, second = np.divmod(sec, _SECONDS_PER_DAY)
    n_days = int(day.max()) + 1 if len(day) else 1
    dates = np.datetime_as_string(day0 + np.arange(n_days).astype("timedelta64[D]"), unit="D")
    clock = [f"{h:02d}:{m:02d}:{x:02d}" for h in range(24) for m in range(60) for x in range(60)]
    return pc.binary_join_element_wise(pa.array(dates).take(pa.array(day)),
                                       pa.array(clock).take(pa.array(second)), " ")


def _format_cents(cents: np.ndarray) -> pa.Array:
    """Integer cents to '12.50' / '-3.05' strings."""
    absolute = np.abs(cents)
    return pc.binary_join_element_wise(
        pa.array(np.where(cents < 0, "-", "")),
        pc.cast(pa.array(absolute // 100), pa.string()),
        ".",
        pc.utf8_lpad(pc.cast(pa.array(absolute % 100), pa.string()), 2, "0"),
        "")


def _prefixed(numbers: np.ndarray, prefix: str, width: int) -> pa.Array:
    """1 -> 'O0000001': a prefix and a zero-padded number."""
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _customers_table(rng: np.random.Generator, cust: dict, horizon: int, day0: np.datetime64):
    """customers.csv columns for buyers and leads (ids in signup order); buyers' ids and signups."""
    n = cust["n"]
    n_leads = int(round(LEAD_SHARE * n))
    t0_sec = _to_seconds(cust["t0"])
    same_day = rng.random(n) < 0.5
    lead_time = np.where(same_day, rng.integers(60, 1800, n),
                         (rng.exponential(7.0, n) * _SECONDS_PER_DAY).astype(np.int64))
    signup = t0_sec - lead_time
    early = signup < 0  # first order right after the start: signed up earlier in that span
    signup[early] = (t0_sec[early] * rng.random(int(early.sum()))).astype(np.int64)
    signup = np.concatenate([signup, _to_seconds(_growing_times(rng, n_leads, horizon))])
    total = n + n_leads
    rank = np.empty(total, dtype=np.int64)
    rank[np.argsort(signup, kind="stable")] = np.arange(1, total + 1)
    width = max(6, len(str(total)))
    ids_all = np.array([f"C{k:0{width}d}" for k in rank.tolist()])
    order = np.argsort(rank)
    gender = rng.choice(3, total, p=[0.47, 0.45, 0.08])
    birth = np.clip(np.round(rng.normal(1983, 12, total)), 1950, 2005).astype(np.int64)
    region = rng.choice(len(REGIONS), total, p=REGION_POPULARITY)
    opt_in = (rng.random(total) < MARKETING_OPT_IN).astype(np.int64)
    ids_sorted = pa.array(ids_all[order])
    frame = {
        "customer_id": ids_sorted,
        "signup_date": _format_seconds(signup[order], day0),
        "email": pc.binary_join_element_wise(pc.utf8_lower(ids_sorted), "@example.com", ""),
        "gender": pa.array(["F", "M", ""]).take(pa.array(gender[order])),
        "birth_year": pc.cast(pa.array(birth[order]), pa.string()),
        "region": pa.array(REGIONS).take(pa.array(region[order])),
        "marketing_opt_in": pc.cast(pa.array(opt_in[order]), pa.string()),
    }
    return frame, ids_all[:n], signup[:n]


def _write_csv(columns: dict, names: list[str], path: Path) -> None:
    """Write string columns as CSV with a fixed column order, '\\n' line ends and minimal
    quoting (a field is quoted only if it holds a comma, a quote or a line break)."""
    fields = []
    for name in names:
        col = columns[name]
        col = col if isinstance(col, (pa.Array, pa.ChunkedArray)) else pa.array(col, pa.string())
        needs = pc.match_substring_regex(col, '[,"\\n\\r]')
        if pc.any(needs).as_py():
            quoted = pc.binary_join_element_wise('"', pc.replace_substring(col, '"', '""'), '"', "")
            col = pc.if_else(needs, quoted, col)
        fields.append(col)
    body = pc.binary_join_element_wise(*fields, ",").to_pylist() if len(fields[0]) else []
    text = ",".join(names) + "\n" + "".join(line + "\n" for line in body)
    artifacts.write_file(path, text)
