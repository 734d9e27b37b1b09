"""Forecast: what the customers we have, and the customers still to come, will bring in the next months.

Stage 04's second half (DESIGN.md: a section of notebook 04; its page is `helpers.pages.forecast`). It
builds on the purchase model and Gamma-Gamma that `helpers.clv` fitted, without refitting them.

**Existing customers** (everyone with a purchase up to ``as_of``): for each future month ``m`` the
expected purchases of every customer between ``as_of`` and the end of month ``m``
(`customer_facts.expected_purchases`, the model's conditional expectation), differenced into months, times
the customer's expected order value (Gamma-Gamma) for revenue, times ``clv.gross_margin`` for margin.
Its band (``forecast.band``, 80 % by default) carries two uncertainties, as draws:

- the parameters': draws of the purchase model's and Gamma-Gamma's log-parameters from the inverse Hessian
  of their likelihood (`clv.log_param_covariance`, as the CLV band; no refits), each draw's effect on the
  monthly totals by their first-order change (gradients measured on a fixed sample of customers);
- the purchases' own noise: each customer's future simulated from the model's posterior given their
  history (alive or not; their purchase rate; their drop-out; each order's value), on a fixed sample of
  customers whose deviations are scaled to the whole (a sum of independent customers).

**New customers** (first purchase after ``as_of``): the monthly count of first purchases is forecast by an
exponential-smoothing model (statsmodels' ETS on log counts: damped trend and, with at least
``forecast.seasonal_min_months`` full months of history, a yearly season; with fewer, no season, and
with under six months the mean of the months seen), simulated ``forecast.draws`` times; each month's new
customers then buy as the recent cohorts did: purchases and revenue per new customer in their first,
second, ... month (the newest ``forecast.curve_cohorts`` cohorts observed at that age). Their band: the ETS
paths, each times a factor whose sd is how far the same forecast made ``max(forecast.backtest_months)`` months
ago missed (`new_customer_error`): the paths alone carry the month-to-month noise, not a wrong trend.

**Purchases** are the purchase models' unit: a customer's days with a positive net amount (weeks with
``clv.time_unit: week``); **revenue** is the net value of those days (a return booked on a later day is not
deducted), both for the forecast and for the history and backtest it is compared with.

**Backtest**: the same forecast made at the end of the month ``h`` months before (``forecast.backtest_months``),
with the models refitted on the history up to then, against what happened since.

Output: forecast.csv (declared in `helpers.artifacts`), one row per future month and source (existing, new):
purchases, revenue and margin, each with its band (``*_low``, ``*_high``).
"""
from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
from statsmodels.tsa.exponential_smoothing.ets import ETSModel

from helpers import artifacts, engine
from helpers.clv import (
    DAYS_PER_MONTH,
    MODEL_NAMES,
    FitFailed,
    ClvResult,
    parameter_moves,
    average_purchase_value,
    fit_final,
    fit_gamma_gamma,
)
from helpers.config import ClvConfig, Config, ForecastConfig
from helpers.customer_facts import (
    EPOCH,
    UNIT_DAYS,
    Fit,
    as_date,
    daily_net,
    expected_purchases,
    expected_purchases_at,
    month_index,
    period_number,
    probability_alive,
    purchase_periods,
    rfm_summary,
)

__all__ = ["ForecastResult", "run", "month_ends", "monthly_activity", "existing_forecast", "simulate_existing",
           "new_customer_series", "forecast_new_customers", "value_curve", "new_forecast", "backtest",
           "forecast_model", "forecast_fit", "holdout_error", "new_at", "new_customer_error", "with_model_error", "COLUMNS", "QUANTITIES"]

COLUMNS = artifacts.ARTIFACTS["forecast"].columns  # forecast.csv, as declared
QUANTITIES = ("purchases", "revenue")  # forecast; margin is revenue x clv.gross_margin
GRADIENT_ROWS = 1000  # the totals' sensitivity to each parameter is measured on a fixed sample of this many customers
NOISE_ROWS = 500  # the purchases' noise is simulated for a fixed sample of this many customers
MIN_TREND_MONTHS = 6  # fewer full months of first purchases: new customers are forecast as their mean


# --- dates --------------------------------------------------------------------------------------

def month_ends(as_of, months: int) -> list[dt.date]:
    """The last day of each of the `months` calendar months after `as_of`'s month. The first forecast month
    runs from the day after `as_of` to the first of these (a whole month when `as_of` is a month's end)."""
    start = pd.Period(as_date(as_of), "M")
    return [(start + m).end_time.date() for m in range(1, months + 1)]


def _month_label(day) -> str:
    return pd.Period(as_date(day), "M").strftime("%Y-%m")


def last_full_month(as_of) -> pd.Period:
    """`as_of`'s month when `as_of` is its last day, else the month before."""
    p = pd.Period(as_date(as_of), "M")
    return p if p.end_time.date() == as_date(as_of) else p - 1


# --- over order lines: one small frame per month and acquisition month ----------------------------

def monthly_activity(orders: ibis.Table, as_of, time_unit: str = "day") -> pd.DataFrame:
    """Purchases per calendar month and acquisition month, as one Ibis expression (a few hundred rows).

    Output, one row per (month, first_month) with a purchase, months as ``pandas.Period``:

    ===========  ======  ============================================================================
    month        period  calendar month of the purchases (periods up to `as_of`)
    first_month  period  the customers' first purchase month (their cohort)
    purchases    int64   purchase periods (`customer_facts.purchase_periods`) in that month
    revenue      float   their net value
    new          int64   customers whose first purchase period is in that month (0 unless month = first_month)
    ===========  ======  ============================================================================
    """
    p = purchase_periods(orders, as_of, time_unit)
    first = p.group_by("customer_id").aggregate(first=p.period.min())
    j = p.join(first, "customer_id")
    # a period's calendar month: its first day's (a week belongs to the month of its Monday)
    day = ibis.date(EPOCH) + (j.period * UNIT_DAYS[time_unit]).as_interval("D")
    fday = ibis.date(EPOCH) + (j["first"] * UNIT_DAYS[time_unit]).as_interval("D")
    j = j.select(month=month_index(day), first_month=month_index(fday), cents=j.cents,
                 is_first=(j.period == j["first"]).cast("int64"))
    agg = j.group_by(["month", "first_month"]).aggregate(purchases=j.count(), cents=j.cents.sum(),
                                                         new=j.is_first.sum())
    df = agg.to_pandas()
    out = pd.DataFrame({
        "month": [pd.Period(year=int(m) // 12, month=int(m) % 12 + 1, freq="M") for m in df["month"]],
        "first_month": [pd.Period(year=int(m) // 12, month=int(m) % 12 + 1, freq="M") for m in df["first_month"]],
        "purchases": df["purchases"].astype("int64"), "revenue": df["cents"].astype(float) / 100,
        "new": df["new"].astype("int64")})
    return out.sort_values(["month", "first_month"], kind="stable").reset_index(drop=True)


def history(activity: pd.DataFrame, as_of, months: int = 24) -> pd.DataFrame:
    """The last `months` full months up to `as_of`: month, purchases, revenue, new customers (first purchases)."""
    end = last_full_month(as_of)
    per = activity.groupby("month")[["purchases", "revenue", "new"]].sum()
    idx = pd.period_range(end - months + 1, end, freq="M")
    per = per.reindex(idx, fill_value=0)
    first = activity["month"].min() if len(activity) else end
    per = per[per.index >= first]
    return per.rename_axis("month").reset_index()


# --- existing customers ---------------------------------------------------------------------------

def _horizons(as_of, ends: list[dt.date], time_unit: str) -> np.ndarray:
    """Model time from `as_of` to each month end, in the purchase model's unit."""
    a = as_date(as_of)
    return np.array([(e - a).days for e in ends], float) / UNIT_DAYS[time_unit]


def _cumulative(summary: pd.DataFrame, fit: Fit, gg: Fit | None, t: np.ndarray, aov: float):
    """(cumulative expected purchases, cumulative expected revenue) to each horizon in `t`, summed over
    `summary`'s customers: arrays of len(t)."""
    f, r, T = (summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    value = _order_value(summary, gg, aov)
    cum = expected_purchases_at(fit, t, f, r, T)  # horizons x customers
    return cum.sum(axis=1), cum @ value


def _order_value(summary: pd.DataFrame, gg: Fit | None, aov: float) -> np.ndarray:
    if gg is None:
        return np.full(len(summary), float(aov))
    return np.asarray(gg.model.conditional_expected_average_profit(
        summary["frequency"].to_numpy(float), summary["monetary_value"].to_numpy(float)), dtype=float)


def _parameter_moves(summary: pd.DataFrame, fit: Fit, gg: Fit | None, t: np.ndarray, aov: float,
                     centre: tuple[np.ndarray, np.ndarray], draws: int, rng: np.random.Generator):
    """Draws x months moves of the cumulative (purchases, revenue) totals from the fits' parameter
    uncertainty (`clv.parameter_moves`, measured on a fixed sample of :data:`GRADIENT_ROWS` customers whose
    relative change stands for the whole's); None where it cannot be measured (a boundary fit)."""
    sample = summary if len(summary) <= GRADIENT_ROWS else summary.sample(n=GRADIENT_ROWS, random_state=0)
    with np.errstate(all="ignore"):
        ratios = [c / b for c, b in zip(centre, _cumulative(sample, fit, gg, t, aov))]

    def totals_of(moved) -> np.ndarray:
        got = _cumulative(sample, moved[0], moved[1] if gg is not None else None, t, aov)
        return np.concatenate([v * r for v, r in zip(got, ratios)])

    moves = parameter_moves([f for f in (fit, gg) if f is not None], totals_of, np.concatenate(centre), draws, rng)
    if moves is None:
        return None
    return [moves[:, :len(t)], moves[:, len(t):]]


def simulate_existing(summary: pd.DataFrame, fit: Fit, gg: Fit | None, t: np.ndarray, draws: int,
                      rng: np.random.Generator, aov: float = float("nan")) -> tuple[np.ndarray, np.ndarray]:
    """Draws x months cumulative (purchases, revenue) of `summary`'s customers, each simulated from the
    model's posterior given their history (`fit`'s parameters held fixed):

    - alive with probability P(alive); if alive, purchase rate lambda ~ Gamma(r + x, alpha + T);
    - BG/NBD: after each purchase the customer drops out with p ~ Beta(a, b + x) (MBG/NBD: Beta(a, b + x + 1),
      as the first purchase could end them too); Pareto/NBD: the remaining lifetime is exponential with
      mu ~ Gamma(s, beta + T);
    - each purchase's value: nu ~ Gamma(q + p x, v + x m) (Gamma-Gamma's posterior), a month's k purchases
      worth Gamma(p k, nu) together; without Gamma-Gamma every purchase is worth `aov`.
    Their mean is the models' expectation (`_cumulative`), which the tests check."""
    k = fit.params
    n = len(summary)
    x, r_, T = (np.broadcast_to(summary[c].to_numpy(float), (draws, n)) for c in ("frequency", "recency", "T"))
    alive = rng.random((draws, n)) < np.nan_to_num(probability_alive(fit, x[0], r_[0], T[0]), nan=1.0)
    lam = rng.gamma(k["r"] + x, 1.0 / (k["alpha"] + T))
    widths = np.diff(np.concatenate([[0.0], t]))
    if fit.name == "pareto_nbd":
        mu = rng.gamma(k["s"], 1.0 / (k["beta"] + T))
        life = rng.exponential(1.0, (draws, n)) / mu
        starts = np.concatenate([[0.0], t[:-1]])
        exposure = np.clip(life[..., None] - starts, 0.0, widths)  # draws x n x months
        counts = rng.poisson(lam[..., None] * exposure)
        cum = np.cumsum(counts, axis=2)
    else:
        p = rng.beta(k["a"], k["b"] + x + (1.0 if fit.name == "mbgnbd" else 0.0))
        lives = rng.geometric(np.clip(p, 1e-12, 1.0))  # purchases until (and including) the one that ends them
        cum = np.minimum(np.cumsum(rng.poisson(lam[..., None] * widths), axis=2), lives[..., None])
    cum = np.where(alive[..., None], cum, 0)
    monthly = np.diff(cum, axis=2, prepend=0)
    if gg is None:
        revenue = monthly * float(aov)
    else:
        g = gg.params
        mv = np.broadcast_to(summary["monetary_value"].to_numpy(float), (draws, n))
        nu = rng.gamma(g["q"] + g["p"] * x, 1.0 / (g["v"] + x * mv))
        shape = g["p"] * monthly
        revenue = np.where(monthly > 0, rng.gamma(np.maximum(shape, 1e-12), 1.0 / nu[..., None]), 0.0)
    return cum.sum(axis=1).astype(float), np.cumsum(revenue.sum(axis=1), axis=1)


@dataclass
class Draws:
    """A forecast as draws: per quantity (purchases, revenue) an array draws x months of monthly values,
    and the centre (the expectation) per month."""

    centre: dict[str, np.ndarray]
    draws: dict[str, np.ndarray]


def existing_forecast(summary: pd.DataFrame, fit: Fit | None, gg: Fit | None, as_of, ends: list[dt.date],
                      time_unit: str, draws: int, seed: int, aov: float = float("nan"),
                      notes: list | None = None, model_error: float = 0.0) -> Draws | None:
    """The existing customers' monthly purchases and revenue (expectation and draws; see the module
    docstring). `model_error`: the model's relative error on its holdout total (`holdout_error`), the sd of
    a factor common to every month of a draw (how far the model itself may be off, beyond its parameters'
    uncertainty and the chance in who buys). None without a purchase model."""
    if fit is None or summary.empty:
        return None
    notes = notes if notes is not None else []
    rng = np.random.default_rng(seed)
    t = _horizons(as_of, ends, time_unit)
    centre = _cumulative(summary, fit, gg, t, aov)
    if not all(np.all(np.isfinite(c)) for c in centre):
        notes.append(f"{MODEL_NAMES[fit.name]}'s expectations are not finite for some customers (a fit on the edge of "
                     "its range), so what the customers you have will buy is not forecast.")
        return None
    moves = _parameter_moves(summary, fit, gg, t, aov, centre, draws, rng)
    if moves is None:
        notes.append("The models' parameter uncertainty could not be measured (a fit on the edge of its range), "
                     "so the existing customers' band carries the purchases' own noise only.")
        moves = [np.zeros((draws, len(t))) for _ in QUANTITIES]
    sample = summary if len(summary) <= NOISE_ROWS else summary.sample(n=NOISE_ROWS, random_state=1)
    sims = simulate_existing(sample, fit, gg, t, draws, rng, aov)
    scale = np.sqrt(len(summary) / len(sample))  # a sum of independent customers: variance grows with their number
    factor = level_factors(model_error, draws, rng)
    out_c, out_d = {}, {}
    for q, name in enumerate(QUANTITIES):
        noise = (sims[q] - sims[q].mean(axis=0)) * scale
        cum_draws = (centre[q] + moves[q]) * factor + noise
        out_c[name] = np.diff(centre[q], prepend=0.0)
        out_d[name] = np.diff(cum_draws, axis=1, prepend=0.0)
    return Draws(out_c, out_d)


# --- new customers --------------------------------------------------------------------------------

def new_customer_series(activity: pd.DataFrame, as_of) -> pd.Series:
    """New customers (first purchases) per full calendar month up to `as_of`, from the export's second month
    on: its first month is most likely cut by the export's start, and a month before it is not a month
    without customers."""
    end = last_full_month(as_of)
    per = activity.groupby("first_month")["new"].sum()
    if per.empty:
        return pd.Series(dtype=float)
    start = per.index.min() + 1 if len(per) > 1 else per.index.min()  # the export's first month is likely partial
    idx = pd.period_range(start, end, freq="M")
    return per.reindex(idx, fill_value=0).astype(float) if len(idx) else pd.Series(dtype=float)


def forecast_new_customers(series: pd.Series, months: int, cfg: ForecastConfig, draws: int,
                           rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """(draws x months simulated new customers per future month, the model's description for the page).

    ETS (statsmodels) on log(1 + count), additive errors and damped trend; a yearly season with at least
    ``cfg.seasonal_min_months`` months; under `MIN_TREND_MONTHS` months (or when the fit fails), the mean of
    the months seen with their spread."""
    y = np.log1p(series.to_numpy(float))
    n = len(y)
    if n >= MIN_TREND_MONTHS:
        seasonal = n >= cfg.seasonal_min_months
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                model = ETSModel(pd.Series(y), error="add", trend="add", damped_trend=True,
                                 seasonal="add" if seasonal else None, seasonal_periods=12 if seasonal else None)
                fitted = model.fit(disp=False, maxiter=200)
                paths = np.asarray(fitted.simulate(months, repetitions=draws, anchor="end", rng=rng), float)
            paths = np.expm1(paths.reshape(months, draws).T).clip(min=0.0)
            if np.all(np.isfinite(paths)):
                how = ("exponential smoothing with a damped trend and a yearly season" if seasonal else
                       f"exponential smoothing with a damped trend, no season (the season needs "
                       f"{cfg.seasonal_min_months} months of history, the shop has {n})")
                return paths, how
        except Exception:  # noqa: BLE001 - a model that cannot be fitted leaves its reason, never stops 04
            pass
    if n == 0:
        return np.zeros((draws, months)), "no full month of history"
    counts = series.to_numpy(float)
    sd = counts.std(ddof=1) if n > 1 else np.sqrt(max(counts.mean(), 1.0))
    paths = rng.normal(counts.mean(), sd, (draws, months)).clip(min=0.0)
    why = "too short for a trend" if n < MIN_TREND_MONTHS else "the trend model could not be fitted to them"
    return paths, f"the mean of the {n} full month{'s' if n != 1 else ''} seen ({why})"


def value_curve(activity: pd.DataFrame, as_of, months: int, cohorts: int) -> pd.DataFrame:
    """Purchases and revenue per new customer by months since their first purchase month (0 = that month,
    first purchase included), from the newest `cohorts` full-month cohorts observed whole at each age; an
    age no cohort has reached yet takes the last age observed.

    Output: age, purchases_per_customer, revenue_per_customer, cohorts (the number behind each age; 0
    where carried forward)."""
    end = last_full_month(as_of)
    sizes = activity[activity["month"] == activity["first_month"]].groupby("first_month")["new"].sum()
    sizes = sizes[(sizes.index <= end) & (sizes.index > end - cohorts)]
    a = activity[activity["first_month"].isin(sizes.index) & (activity["month"] <= end)].copy()
    a["age"] = [(m - f).n for m, f in zip(a["month"], a["first_month"])]
    rows = []
    for age in range(months):
        seen = sizes[sizes.index + age <= end]
        if len(seen) == 0 or seen.sum() == 0:
            last = rows[-1] if rows else {"purchases_per_customer": 1.0, "revenue_per_customer": 0.0}
            rows.append({"age": age, "purchases_per_customer": last["purchases_per_customer"],
                         "revenue_per_customer": last["revenue_per_customer"], "cohorts": 0})
            continue
        at = a[(a["age"] == age) & a["first_month"].isin(seen.index)]
        rows.append({"age": age, "purchases_per_customer": at["purchases"].sum() / seen.sum(),
                     "revenue_per_customer": at["revenue"].sum() / seen.sum(), "cohorts": len(seen)})
    return pd.DataFrame(rows)


def new_forecast(paths: np.ndarray, curve: pd.DataFrame) -> Draws:
    """Monthly purchases and revenue of the customers won in each future month, who buy by `curve`:
    month j brings sum over i <= j of new_i x per-customer value at age j - i."""
    months = paths.shape[1]
    out = {}
    for name in QUANTITIES:
        c = curve[f"{name}_per_customer"].to_numpy(float)[:months]
        conv = np.zeros(months)
        conv[: len(c)] = c
        m = np.array([[conv[j - i] if j >= i else 0.0 for j in range(months)] for i in range(months)])
        out[name] = paths @ m
    return Draws({k: v.mean(axis=0) for k, v in out.items()}, out)


def new_at(activity: pd.DataFrame, cut: pd.Period, months: int, cfg: ForecastConfig,
           draws: int | None = None) -> Draws | None:
    """The new-customer forecast made at the end of month `cut` from the history up to it, for `months`
    months, in `draws` draws (default ``cfg.draws``; None with under :data:`MIN_TREND_MONTHS` full months of
    first purchases by then)."""
    seen = activity[activity["month"] <= cut]
    cut_day = cut.end_time.date()
    series = new_customer_series(seen, cut_day)
    if len(series) < MIN_TREND_MONTHS:
        return None
    paths, _ = forecast_new_customers(series, months, cfg, draws or cfg.draws, np.random.default_rng(cfg.seed))
    return new_forecast(paths, value_curve(seen, cut_day, months, cfg.curve_cohorts))


def backtest_draws(cfg: ForecastConfig) -> int:
    """The backtest's draws: half of ``cfg.draws`` (at least 50), enough for a band's two quantiles."""
    return max(50, cfg.draws // 2)


def new_customer_error(activity: pd.DataFrame, as_of, cfg: ForecastConfig) -> float:
    """How far the new-customer forecast made ``max(forecast.backtest_months)`` months ago missed the revenue of
    the customers won since (predicted / actual - 1; 0 without that much history): the sd of the new customers'
    model-error factor, as the holdout's miss is for the customers you have. The ETS paths alone carry only the
    month-to-month noise of first purchases, not how wrong the trend may be."""
    if not cfg.backtest_months:
        return 0.0
    h = max(cfg.backtest_months)
    cut = last_full_month(as_of) - h
    d = new_at(activity, cut, h, cfg, backtest_draws(cfg))  # as the backtest draws it: the page shows one miss
    actual = _actual(activity, cut, h)["new"]["revenue"]
    if d is None or actual <= 0:
        return 0.0
    return float(d.centre["revenue"].sum() / actual - 1.0)


def with_model_error(d: Draws | None, error: float, seed: int) -> Draws | None:
    """`d`'s draws, each times one factor 1 + N(0, `error`) common to its months (a level the model may have
    wrong); the centre unchanged."""
    if d is None or not error:
        return d
    factor = level_factors(error, d.draws["purchases"].shape[0], np.random.default_rng(seed))
    return Draws(d.centre, {q: v * factor for q, v in d.draws.items()})


def level_factors(error: float, draws: int, rng: np.random.Generator) -> np.ndarray:
    """One factor 1 + N(0, `error`) per draw (a column), common to the draw's months: a model's level may be
    off by about its measured miss; ones without an error."""
    return 1.0 + rng.normal(0.0, abs(error), (draws, 1)) if error else np.ones((draws, 1))


def combined(a: Draws, b: Draws) -> Draws:
    """Two independent forecasts (existing and new customers) as one: centres and draws added."""
    return Draws({q: a.centre[q] + b.centre[q] for q in QUANTITIES}, {q: a.draws[q] + b.draws[q] for q in QUANTITIES})


# --- the table ------------------------------------------------------------------------------------

def band_of(values: np.ndarray, band: float) -> tuple[float, float]:
    """The central `band` of `values` (0.8: the 10th and 90th percentiles), the low end at least 0."""
    low, high = np.quantile(values, [(1.0 - band) / 2.0, (1.0 + band) / 2.0])
    return float(max(low, 0.0)), float(high)


def _summed(d: Draws, months: slice, band: float, margin: float) -> dict:
    """Purchases, revenue and margin of `d` summed over `months`, each with its band from the summed draws."""
    row = {}
    for q in QUANTITIES:
        row[q] = float(d.centre[q][months].sum())
        row[f"{q}_low"], row[f"{q}_high"] = band_of(d.draws[q][:, months].sum(axis=1), band)
    for s in ("", "_low", "_high"):
        row[f"margin{s}"] = margin * row[f"revenue{s}"]
    return row


def forecast_table(existing: Draws | None, new: Draws | None, ends: list[dt.date], margin: float,
                   band: float) -> pd.DataFrame:
    """forecast.csv: one row per future month and source with purchases, revenue and margin and their band."""
    rows = [{"month": _month_label(end), "months_ahead": m + 1, "source": source,
             **_summed(d, slice(m, m + 1), band, margin)}
            for source, d in (("existing", existing), ("new", new)) if d is not None for m, end in enumerate(ends)]
    return pd.DataFrame(rows, columns=COLUMNS)


def totals(existing: Draws | None, new: Draws | None, horizons, margin: float, band: float) -> pd.DataFrame:
    """Sums over the next 3, 6, 12... months per source (existing, new, all) with their band from the summed
    draws (existing and new are independent: their draws are added)."""
    parts = {s: d for s, d in (("existing", existing), ("new", new)) if d is not None}
    if len(parts) == 2:
        parts["all"] = combined(existing, new)
    return pd.DataFrame([{"months": h, "source": source, **_summed(d, slice(0, h), band, margin)}
                         for h in horizons for source, d in parts.items() if h <= len(d.centre["purchases"])])


# --- backtest -------------------------------------------------------------------------------------

def _actual(activity: pd.DataFrame, cut: pd.Period, h: int) -> dict[str, dict[str, float]]:
    """What happened in the h months after month `cut`: purchases and revenue of the customers acquired up
    to `cut` (existing) and after it (new)."""
    w = activity[(activity["month"] > cut) & (activity["month"] <= cut + h)]
    old = w["first_month"] <= cut
    return {"existing": {q: float(w.loc[old, q].sum()) for q in QUANTITIES},
            "new": {q: float(w.loc[~old, q].sum()) for q in QUANTITIES}}


def backtest(orders: ibis.Table, activity: pd.DataFrame, as_of, model: Fit, clv: ClvConfig,
             cfg: ForecastConfig, notes: list, model_error: float = 0.0, new_error: float = 0.0) -> pd.DataFrame | None:
    """The forecast made at the end of the month h months before `as_of`'s last full month, for each h of
    ``cfg.backtest_months``, refitted on the history up to then, against what happened: one row per h and
    source (existing, new, all) with predicted, band, actual, error_pct and covered. The band's model-error
    terms are this month's (`model_error`, `new_error`): a holdout comparison at every cut-off would double the
    backtest's fits for the width of a band. Each refit starts from `model`'s parameters (this month's fit of the
    same model), and the bands take half of ``cfg.draws``: enough for a band's two quantiles. `orders`: the order
    lines or their `customer_facts.daily_net` up to `as_of`."""
    end = last_full_month(as_of)
    draws = backtest_draws(cfg)
    rows = []
    for h in cfg.backtest_months:
        cut = end - h
        cut_day = cut.end_time.date()
        nw = with_model_error(new_at(activity, cut, h, cfg, draws), new_error, cfg.seed + 2)
        if nw is None:
            continue
        summary = rfm_summary(orders, cut_day, clv.time_unit)
        if not (summary["frequency"] > 0).any():
            continue
        try:
            fit = fit_final(summary, model.name, clv, start=model.params)
        except FitFailed:
            notes.append(f"Backtest at {cut_day}: the purchase model could not be fitted on the history up to then.")
            continue
        try:
            gg = fit_gamma_gamma(summary, clv.penalizer, clv.max_evaluations, clv.fit_seconds)
            aov = float("nan")
        except FitFailed:
            gg, aov = None, average_purchase_value(orders, cut_day, clv.time_unit)
        ends = month_ends(cut_day, h)
        ex = existing_forecast(summary, fit, gg, cut_day, ends, clv.time_unit, draws, cfg.seed, aov,
                               model_error=model_error)
        if ex is None:
            continue
        actual = _actual(activity, cut, h)
        for source, d in {"existing": ex, "new": nw, "all": combined(ex, nw)}.items():
            row = {"months": h, "cutoff": str(cut_day), "source": source}
            for q in QUANTITIES:
                pred = float(d.centre[q].sum())
                act = (actual["existing"][q] + actual["new"][q]) if source == "all" else actual[source][q]
                low, high = band_of(d.draws[q].sum(axis=1), cfg.band)
                row.update({q: pred, f"{q}_low": low, f"{q}_high": high, f"{q}_actual": act,
                            f"{q}_error_pct": (pred - act) / act * 100 if act else float("nan"),
                            f"{q}_covered": bool(low <= act <= high)})
            rows.append(row)
    return pd.DataFrame(rows) if rows else None


# --- how far the model itself may be off --------------------------------------------------------------

def holdout_error(comparison: pd.DataFrame | None, name: str) -> float:
    """The model's relative error on its holdout total (predicted / actual - 1; 0 without a comparison):
    the sd of the band's model-error factor."""
    if comparison is None or name not in comparison.index:
        return 0.0
    row = comparison.loc[name]
    if not (np.isfinite(row["predicted_total"]) and row["actual_total"] > 0):
        return 0.0
    return float(row["predicted_total"] / row["actual_total"] - 1.0)


# --- acquisition: what a new customer is worth, by how they were won -------------------------------

VALUE_MONTHS = (12, 24)  # a customer's value is given at these many months after their first order
DIMENSIONS = {"cohort": "first order month", "channel": "channel of the first order",
              "category": "main category of the first order", "coupon": "coupon of the first order"}
NO_COUPON = "(no coupon)"


def acquisition_facts(orders: ibis.Table, as_of, months=VALUE_MONTHS, days: ibis.Table | None = None,
                      scores: ibis.Table | None = None) -> pd.DataFrame:
    """One row per customer with a purchase up to `as_of`: how they were won and what they have brought since: the
    rows `acquisition_cells` sums in the engine, here in pandas (with `customer_values`, the definition the cells are
    tested against; the stage itself takes the cells). The revenue columns are summed from the lines'
    `customer_facts.daily_net`: `days`, when the stage has it cached (up to `as_of` or later), else taken here.

    ============  =======  ===============================================================================
    customer_id   string
    first_date    date     the day of their first purchase line
    cohort        string   its month, 'YYYY-MM'
    channel       string   the first order's channel (when the export has the column)
    category      string   the category of the first order's largest line (when the export has it)
    coupon        string   the first order's coupon, or NO_COUPON (when the export has the column)
    age_days      int64    days from the first purchase to `as_of`
    revenue_<m>m  float    net revenue (returns deducted) from the first purchase until `m` months (m x 365/12
                           days) after it or `as_of`, whichever comes first, one column per `months`
    revenue       float    net revenue from the first purchase up to `as_of`
    ============  =======  ===============================================================================

    With `scores` (clv.parquet as a table), each customer's frequency, recency, T and exp_avg_value are joined to
    the rows by the engine (empty for a customer without a score) and customer_id is left out: the frame is in
    customer_id order and the ids stay in the engine (`customer_values` takes the scores from it).
    """
    expr, attrs, kept = _acquisition_expr(orders, as_of, months, days, scores)
    df = engine.to_pandas(expr.order_by("customer_id"))
    engine.release(orders.get_backend(), kept)
    df["age_days"] = (pd.Timestamp(as_date(as_of)) - df["first_date"]).dt.days.astype("int64")
    for m in months:
        df[f"revenue_{m}m"] = df.pop(f"cents_{m}").astype(float) / 100
    df["revenue"] = df.pop("cents_all").astype(float) / 100
    if "coupon" in df:
        blank = df["coupon"].isna() | (df["coupon"].astype(str).str.strip() == "")
        df["coupon"] = df["coupon"].where(~blank, NO_COUPON)
    joined = list(SCORED_FACTS) if scores is not None else []
    ids = [] if scores is not None else ["customer_id"]
    return df[[*ids, *attrs, "first_date", "cohort", "age_days", *[f"revenue_{m}m" for m in months], "revenue",
               *joined]]


def _acquisition_expr(orders: ibis.Table, as_of, months, days: ibis.Table | None, scores: ibis.Table | None):
    """(`acquisition_facts`' rows as one Ibis expression, with the revenue in whole cents (cents_<m>, cents_all)
    and first_date a timestamp; the attribute columns it has; the engine's tables to release after it is read)."""
    t = orders.filter(orders.order_date < ibis.timestamp(engine.cutoff_end(as_of)))
    buy = t.filter(~t.is_return)
    con = orders.get_backend()
    # kept for the two uses below: each would group the lines again
    first = engine.cache(con, buy.group_by("customer_id").aggregate(first_ts=buy.order_date.min(),
                                                                     first_order=buy.order_id.argmin(buy.order_date)))
    lines = buy.join(first, ["customer_id", buy.order_id == first.first_order])
    attrs = {}
    if "channel" in orders.columns:
        attrs["channel"] = lines.channel.max()
    if "category" in orders.columns:
        attrs["category"] = lines.category.argmax(lines.amount)
    if "coupon_code" in orders.columns:
        attrs["coupon"] = lines.coupon_code.max()
    per = lines.group_by("customer_id").aggregate(**attrs) if attrs else None
    d = daily_net(orders, as_of) if days is None else days.filter(days.day <= period_number(as_of, "day"))
    j = d.join(first, "customer_id")
    start = j.first_ts.date().delta(ibis.date(EPOCH), unit="day")
    sums = {f"cents_{m}": (j.cents * (j.day < start + int(round(m * DAYS_PER_MONTH))).cast("int64")).sum()
            for m in months}
    agg = j.group_by("customer_id").aggregate(first_ts=j.first_ts.min(), cents_all=j.cents.sum(), **sums)
    if per is not None:
        agg = agg.left_join(per, agg.customer_id == per.customer_id).select(agg, *[per[c] for c in attrs])
    # the day and its month written by the engine: in pandas these took 2.5 of the 10 s at 1.35M customers
    agg = agg.mutate(first_date=agg.first_ts.truncate("D"), cohort=agg.first_ts.strftime("%Y-%m"))
    if scores is not None:
        s = scores.select(key=scores.customer_id.cast("string"), **{c: scores[c] for c in SCORED_FACTS})
        agg = agg.left_join(s, agg.customer_id == s.key).drop("key")
    return agg.drop("first_ts"), list(attrs), [first]


SCORED_FACTS = ("frequency", "recency", "T", "exp_avg_value")  # what customer_values takes of clv.parquet


def customer_values(facts: pd.DataFrame, scores: pd.DataFrame | None, fit: Fit | None, margin: float,
                    time_unit: str, months=VALUE_MONTHS) -> pd.DataFrame:
    """Each customer's margin at `months` after their first order: what they brought until then or until
    as_of, plus what the purchase model expects from as_of to that point (expected purchases times their
    expected order value; nothing expected once the point has passed, or without a model). Adds
    ``value_<m>m`` (margin), ``expected_<m>m`` (its expected part) and ``margin_so_far`` to `facts`.
    `scores`: clv.parquet's rows, matched to `facts` by customer_id; None when `facts` carry their columns
    (`acquisition_facts` with `scores`)."""
    out = facts.copy()
    s = out if scores is None else scores.set_index("customer_id").reindex(out["customer_id"])
    expected = _expected_revenue(out["age_days"].to_numpy(float), s, fit, time_unit, months)
    for m in months:
        out[f"expected_{m}m"] = margin * expected[m]
        out[f"value_{m}m"] = margin * (out[f"revenue_{m}m"].to_numpy(float) + expected[m])
    out["margin_so_far"] = margin * out["revenue"]
    return out


def _expected_revenue(age_days: np.ndarray, scores: pd.DataFrame, fit: Fit | None, time_unit: str,
                      months) -> dict[int, np.ndarray]:
    """Per point m of `months`: what the purchase model expects each customer (`scores`: their SCORED_FACTS, in
    the order of `age_days`) to spend from as_of until m months after their first order (0 once it has passed,
    and without a model or a score)."""
    half = DAYS_PER_MONTH / 2  # the time left is taken to the nearest half month: one evaluation per half month
    left = {m: np.round(np.clip(m * DAYS_PER_MONTH - (age_days + 1), 0.0, None) / half) for m in months}
    expected = {m: np.zeros(len(age_days)) for m in months}
    if fit is None:
        return expected
    f, r, T, v = (scores[c].to_numpy(float) for c in SCORED_FACTS)
    ok = np.isfinite(f) & np.isfinite(v)
    for h in np.unique(np.concatenate([left[m][ok] for m in months])):
        if h <= 0:
            continue
        need = ok & np.any([left[m] == h for m in months], axis=0)
        e = np.nan_to_num(expected_purchases(fit, h * half / UNIT_DAYS[time_unit], f[need], r[need], T[need]))
        for m in months:
            at = left[m][need] == h
            expected[m][np.flatnonzero(need)[at]] = e[at] * v[need][at]
    return expected


MICRO = 1_000_000  # the expected revenue per customer is summed by the engine in whole millionths of the currency


@dataclass
class _Expected:
    """A batch of customers (`engine.map_batches`: on Spark's executors; customer_id, first_date and SCORED_FACTS)
    as what the purchase model expects each to spend until each point, in whole millionths (`_expected_revenue`, as
    `customer_values` takes it): integers, so that the engine's sums do not depend on the order of the rows."""

    fit: Fit
    time_unit: str
    months: tuple
    as_of: str

    def schema(self) -> pa.Schema:
        return pa.schema([("customer_id", pa.string()), *[(f"micro_{m}", pa.int64()) for m in self.months]])

    def __call__(self, rows: pd.DataFrame) -> pd.DataFrame:
        age = (pd.Timestamp(as_date(self.as_of)) - rows["first_date"]).dt.days.to_numpy(float)
        expected = _expected_revenue(age, rows, self.fit, self.time_unit, self.months)
        return pd.DataFrame({"customer_id": rows["customer_id"].astype(str).to_numpy(),
                             **{f"micro_{m}": np.round(expected[m] * MICRO).astype("int64") for m in self.months}})


def acquisition_cells(orders: ibis.Table, as_of, fit: Fit | None, margin: float, time_unit: str,
                      months=VALUE_MONTHS, days: ibis.Table | None = None, scores: ibis.Table | None = None
                      ) -> pd.DataFrame:
    """`customer_values` of `acquisition_facts`' customers summed by the engine per combination of the attributes
    and the cohort (a few thousand cells, not a row per customer): the attributes, cohort, ``customers``, and the
    sums ``margin_so_far``, ``value_<m>m`` and ``expected_<m>m``, which `acquisition_table` and `spend_tables`
    take as they take one row per customer. The expected revenue is taken where the rows are (on Spark, on the
    executors), for the customers young enough to have some (first order less than max(`months`) ago, with a
    score); only the cells reach pandas, in the order of their first customer's id."""
    expr, attrs, kept = _acquisition_expr(orders, as_of, months, days, scores)
    con = orders.get_backend()
    facts = engine.cache(con, expr)
    mapped = None
    if fit is not None and scores is not None:
        since = pd.Timestamp(as_date(as_of)) - pd.Timedelta(days=max(months) * DAYS_PER_MONTH)
        young = facts.filter((facts.first_date > since.to_pydatetime()) & facts.frequency.notnull())
        score = _Expected(fit, time_unit, tuple(months), str(as_of))
        mapped = engine.map_batches(con, young.select("customer_id", "first_date", *SCORED_FACTS), score,
                                    score.schema())
        j = facts.left_join(mapped, facts.customer_id == mapped.customer_id).select(
            facts, *[mapped[f"micro_{m}"].fill_null(0).name(f"micro_{m}") for m in months])
    else:
        j = facts.mutate(**{f"micro_{m}": ibis.literal(0, "int64") for m in months})
    keys = [*attrs, "cohort"]
    sums = ["cents_all", *[f"{k}_{m}" for k in ("cents", "micro") for m in months]]
    grouped = j.group_by(keys).aggregate(customers=j.count(), first_id=j.customer_id.min(),
                                         **{c: j[c].sum() for c in sums})
    cells = engine.to_pandas(grouped).sort_values("first_id", kind="stable", ignore_index=True)
    engine.release(con, [facts, *kept] + ([mapped] if mapped is not None else []))
    if "coupon" in cells:  # as `acquisition_facts` gives it: blank is NO_COUPON (the groups merge in the tables)
        blank = cells["coupon"].isna() | (cells["coupon"].astype(str).str.strip() == "")
        cells["coupon"] = cells["coupon"].where(~blank, NO_COUPON)
    out = cells[[*keys, "customers"]].copy()
    out["customers"] = out["customers"].astype("int64")
    out["margin_so_far"] = margin * cells["cents_all"].astype(float) / 100
    for m in months:
        expected = cells[f"micro_{m}"].astype(float) / MICRO
        out[f"expected_{m}m"] = margin * expected
        out[f"value_{m}m"] = margin * (cells[f"cents_{m}"].astype(float) / 100 + expected)
    return out


def _sizes(v: pd.DataFrame) -> pd.Series:
    """Customers per row: `acquisition_cells`' count, or 1 for a row per customer."""
    return v["customers"] if "customers" in v else pd.Series(1, index=v.index)


def acquisition_table(values: pd.DataFrame, dimension: str, payback_months: int, min_customers: int = 1,
                      months=VALUE_MONTHS) -> pd.DataFrame | None:
    """Per value of `dimension` (a column of `values`): customers, margin so far per customer, the value per
    customer at each of `months` and at `payback_months` (the most one may pay to win such a customer and earn
    it back within that time), and the share of the first of `months`' value already realised. Largest groups
    first; groups under `min_customers` are left out. None when the shop's data lack the dimension. `values`: one
    row per customer (`customer_values`), or `acquisition_cells`' sums with their ``customers``."""
    if dimension not in values or values[dimension].isna().all():
        return None
    v = values.dropna(subset=[dimension])
    v = v.assign(customers=_sizes(v))
    g = v.groupby(dimension, sort=False)
    n = g["customers"].sum()
    out = pd.DataFrame({"customers": n, "margin_so_far": g["margin_so_far"].sum() / n})
    for m in months:
        out[f"value_{m}m"] = g[f"value_{m}m"].sum() / n
    out["ceiling"] = g[f"value_{payback_months}m"].sum() / n if f"value_{payback_months}m" in v else np.nan
    first = months[0]
    out["realised_share"] = 1.0 - g[f"expected_{first}m"].sum() / g[f"value_{first}m"].sum().where(
        g[f"value_{first}m"].sum() > 0)
    out = out[out["customers"] >= min_customers]
    if dimension == "cohort":
        return out.sort_index(ascending=False).rename_axis(dimension)
    return out.sort_values("customers", ascending=False, kind="stable").rename_axis(dimension)


def value_points(payback_months: int) -> tuple[int, ...]:
    """The months after the first order at which a customer's value is computed: the page's 12 and 24, the
    payback, and a few early points to read a payback time from."""
    return tuple(sorted({1, 3, 6, *VALUE_MONTHS, payback_months}))


def payback_month(points: dict[int, float], cost: float) -> float:
    """The month at which a customer's cumulative margin (`points`: month -> value, linear between them, 0 at 0)
    first reaches `cost`; NaN when it does not within the last point."""
    xs = [0.0, *sorted(points)]
    ys = [0.0, *(points[m] for m in sorted(points))]
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        if y1 >= cost:
            return x0 + (x1 - x0) * ((cost - y0) / (y1 - y0) if y1 > y0 else 0.0)
    return float("nan")


def _key(values) -> pd.Series:
    """A channel name as compared between the orders and the spend file: trimmed, lower case."""
    return pd.Series(values, dtype="object").astype(str).str.strip().str.lower()


def spend_tables(spend: pd.DataFrame | None, values: pd.DataFrame, payback_months: int,
                 points=None) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """What a new customer cost per channel, from marketing_spend_clean (month, channel, spend) and the
    customers' first orders (`values`: `customer_values` with ``channel`` and ``cohort``, or `acquisition_cells`).

    By month: channel, month, spend, new customers won through the channel that month, cost per new customer.
    By channel (over the months the file has spend for it): spend, new customers, cost per new customer, value
    per customer at 12 months and at the payback, LTV:CAC (12-month value / cost) and payback months (when the
    cumulative margin reaches the cost; NaN beyond 24 months or without customers). (None, None) without spend
    or without a channel column in the orders."""
    if spend is None or spend.empty or "channel" not in values or values["channel"].isna().all():
        return None, None
    points = points or value_points(payback_months)
    sp = spend.assign(key=_key(spend["channel"]), cohort=pd.to_datetime(spend["month"]).dt.strftime("%Y-%m"))
    sp = sp.groupby(["key", "cohort"], as_index=False).agg(channel=("channel", "first"), spend=("spend", "sum"))
    v = values.dropna(subset=["channel"])
    v = v.assign(key=_key(v["channel"]).to_numpy(), customers=_sizes(v))
    won = v.groupby(["key", "cohort"])["customers"].sum().rename("new_customers").reset_index()
    by_month = sp.merge(won, on=["key", "cohort"], how="left").fillna({"new_customers": 0})
    by_month["new_customers"] = by_month["new_customers"].astype("int64")
    by_month["cost_per_customer"] = by_month["spend"] / by_month["new_customers"].where(by_month["new_customers"] > 0)
    rows = []
    for key, g in by_month.groupby("key", sort=False):
        paid = v[(v["key"] == key) & v["cohort"].isin(g["cohort"])]
        n, total = int(g["new_customers"].sum()), float(g["spend"].sum())
        cac = total / n if n else float("nan")
        curve = {m: float(paid[f"value_{m}m"].sum() / n) if n else float("nan") for m in points}
        rows.append({"channel": g["channel"].iloc[0], "months": len(g), "spend": total, "new_customers": n,
                     "cost_per_customer": cac, "value_12m": curve.get(12, float("nan")),
                     "ceiling": curve.get(payback_months, float("nan")),
                     "ltv_cac": curve.get(12, float("nan")) / cac if n and cac > 0 else float("nan"),
                     "payback_months": payback_month(curve, cac) if n else float("nan")})
    by_channel = pd.DataFrame(rows).sort_values("ltv_cac", ascending=False, na_position="last", kind="stable")
    by_month = by_month.sort_values(["cohort", "channel"], kind="stable")[
        ["cohort", "channel", "spend", "new_customers", "cost_per_customer"]].rename(columns={"cohort": "month"})
    return by_channel.reset_index(drop=True), by_month.reset_index(drop=True)


def ltv_curves(activity: pd.DataFrame, as_of, margin: float, quarters: int = 6, months: int = 24) -> pd.DataFrame:
    """Cumulative margin per customer by months since the first purchase (0 = the first month), one column per
    acquisition quarter (the newest `quarters` with at least one full month), ages up to `months` - 1 that the
    quarter's every cohort has completed."""
    end = last_full_month(as_of)
    a = activity[activity["month"] <= end].copy()
    a["age"] = [(m - f).n for m, f in zip(a["month"], a["first_month"])]
    a["quarter"] = [f"{f.year}-Q{f.quarter}" for f in a["first_month"]]
    sizes = a.groupby("quarter")["new"].sum()
    last_cohort = a.groupby("quarter")["first_month"].max()
    keep = [q for q in sorted(sizes.index)[-quarters:] if sizes[q] > 0 and last_cohort[q] <= end]
    curves = {}
    for q in keep:
        seen = (end - last_cohort[q]).n + 1  # ages every cohort of the quarter has completed
        rev = a[a["quarter"] == q].groupby("age")["revenue"].sum().reindex(range(min(seen, months)), fill_value=0.0)
        curves[q] = margin * rev.cumsum() / sizes[q]
    return pd.DataFrame(curves).rename_axis("months_since_first")


# --- which purchase model forecasts ---------------------------------------------------------------

def forecast_model(comparison: pd.DataFrame | None, chosen: str, clv: ClvConfig) -> tuple[str, str]:
    """(the purchase model the forecast uses, the sentence saying why when it is not CLV's).

    CLV's model is the preferred one among those near the best holdout MAE (a model that lets a one-time buyer
    drop out reads better customer by customer); the forecast takes the model with the best holdout MAE
    itself: on 12 shops each of BG/NBD and Pareto/NBD purchases (scripts/forecast_study.py's shops), its
    12-month totals were the closest to the truth's expectation (mean |error| 1.0 % and 0.6 %, against 1.2 %
    and 6.1 % for CLV's choice and 2.9 % and 1.0 % for the closest holdout total). A pinned ``clv.model`` is
    kept."""
    if comparison is None or clv.model != "auto" or chosen not in comparison.index:
        return chosen, ""
    mae = comparison["mae"].dropna()
    if mae.empty or mae.idxmin() == chosen:
        return chosen, ""
    best = mae.idxmin()
    why = (f"The forecast uses {MODEL_NAMES[best]}, the model with the smallest holdout error per customer "
           f"(MAE {mae[best]:.3f} against {mae[chosen]:.3f} for {MODEL_NAMES[chosen]}, which CLV prefers among "
           "near-equal models).")
    return best, why


def forecast_fit(clv_result: ClvResult, clv: ClvConfig) -> tuple[Fit | None, str]:
    """(the purchase-model fit the forecast uses, the sentence when it is not CLV's): `forecast_model`'s
    choice fitted on the whole history, or CLV's fit when that is the choice or the other cannot be fitted."""
    fit = clv_result.final
    if fit is None:
        return None, ""
    name, why = forecast_model(clv_result.comparison, fit.name, clv)
    if name == fit.name:
        return fit, ""
    try:
        return fit_final(clv_result.scores, name, clv), why
    except FitFailed:
        return fit, ""


# --- the stage --------------------------------------------------------------------------------------

@dataclass
class ForecastResult:
    """What the forecast computed, for its page (`helpers.pages.forecast`): no engine.

    `table` is forecast.csv; `totals` the sums over ``forecast.horizons_months`` per source (existing, new,
    all); `history` the last 24 full months (purchases, revenue, new customers); `curve` a new customer's
    purchases and revenue by months since their first (`value_curve`); `backtest` (None without history
    enough) the forecasts made h months ago against what happened; `new_model` how new customers were
    forecast; `notes` what a reader must know (a model that could not be used, and why)."""

    as_of: str
    settings: ForecastConfig
    currency: str
    gross_margin: float
    table: pd.DataFrame
    totals: pd.DataFrame
    history: pd.DataFrame
    curve: pd.DataFrame
    backtest: pd.DataFrame | None = None
    new_model: str = ""
    new_series: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    notes: list = field(default_factory=list)
    payback_months: int = 12
    model_error: float = 0.0  # the purchase model's miss on its holdout total (the band's model-error term)
    new_error: float = 0.0  # the new-customer forecast's miss made max(backtest_months) ago (its band's term)
    acquisition: dict = field(default_factory=dict)  # dimension -> acquisition_table (None: the data lack it)
    spend_by_channel: pd.DataFrame | None = None  # spend_tables; None without marketing_spend.csv
    spend_by_month: pd.DataFrame | None = None
    curves: pd.DataFrame = field(default_factory=pd.DataFrame)  # ltv_curves


def run(processed_dir: str | Path, as_of: str, cfg: Config, con=None, *, clv_result: ClvResult) -> ForecastResult:
    """Forecast the next ``forecast.months`` months from the fits in `clv_result` (stage 04's `clv.run` of the
    same month, which notebook 04 runs first: the forecast builds on its fits and holdout comparison, without
    refitting them); writes forecast.csv and forecast_model.json and returns what 04's forecast section shows."""
    fc, clv = cfg.forecast, cfg.clv
    con = con or engine.connect(cfg.engine)
    orders = artifacts.table(con, processed_dir, "orders_clean")
    # the lines grouped once per customer and day: the activity, the backtest's summaries and the acquisition
    # revenue are taken from it (at 10M lines each grouped the lines again)
    days = engine.cache(con, daily_net(orders, as_of))
    notes: list[str] = []
    activity = monthly_activity(days, as_of, clv.time_unit)
    ends = month_ends(as_of, fc.months)
    summary = clv_result.scores
    fit, gg = clv_result.final, clv_result.gamma_gamma
    fit, why = forecast_fit(clv_result, clv)
    notes += [why] if why else []
    aov = float("nan") if gg is not None else float(
        average_purchase_value(days, as_of, clv.time_unit) if len(summary) else 0.0)
    error = holdout_error(clv_result.comparison, fit.name) if fit else 0.0
    existing = existing_forecast(summary, fit, gg, as_of, ends, clv.time_unit, fc.draws, fc.seed, aov, notes,
                                 model_error=error)
    if fit is None:
        notes.append("No purchase model could be fitted (no customer has bought twice yet), so what the existing "
                     "customers will buy is not forecast; only new customers are.")
    series = new_customer_series(activity, as_of)
    rng = np.random.default_rng(fc.seed + 1)
    paths, how = forecast_new_customers(series, fc.months, fc, fc.draws, rng)
    curve = value_curve(activity, as_of, fc.months, fc.curve_cohorts)
    new_error = new_customer_error(activity, as_of, fc)
    new = with_model_error(new_forecast(paths, curve), new_error, fc.seed + 2) if len(series) else None
    if new is None:
        notes.append("No full month of first purchases yet, so new customers are not forecast.")
    table = forecast_table(existing, new, ends, clv.gross_margin, fc.band)
    sums = totals(existing, new, fc.horizons_months, clv.gross_margin, fc.band)
    bt = backtest(days, activity, as_of, fit, clv, fc, notes, error, new_error) if fit is not None else None
    acq = acquisition(orders, processed_dir, as_of, cfg, artifacts.table(con, processed_dir, "clv"), fit, days)
    artifacts.write(processed_dir, "forecast", table)
    artifacts.write(processed_dir, "forecast_model", _card(as_of, fc, clv, fit, how, sums, bt, notes, acq))
    return ForecastResult(
        as_of=str(as_of), settings=fc, currency=cfg.shop.currency, gross_margin=clv.gross_margin, table=table,
        totals=sums, history=history(activity, as_of), curve=curve, backtest=bt, new_model=how, new_series=series,
        notes=notes, model_error=error, new_error=new_error, payback_months=cfg.budget.payback_months, acquisition=acq["tables"],
        spend_by_channel=acq["by_channel"], spend_by_month=acq["by_month"],
        curves=ltv_curves(activity, as_of, clv.gross_margin))


def acquisition(orders: ibis.Table, processed_dir, as_of, cfg: Config, scores: ibis.Table, fit: Fit | None,
                days: ibis.Table | None = None) -> dict:
    """The acquisition tables (value per new customer by each of :data:`DIMENSIONS` the data have) and, with
    marketing_spend_clean, what a new customer cost per channel and month. `scores`: the month's clv.parquet as a
    table (joined to the customers by the engine); `days`: see `acquisition_facts`."""
    payback = cfg.budget.payback_months
    points = value_points(payback)
    values = acquisition_cells(orders, as_of, fit, cfg.clv.gross_margin, cfg.clv.time_unit, points, days, scores)
    tables = {d: acquisition_table(values, d, payback) for d in DIMENSIONS}
    spend = artifacts.read_if_exists(processed_dir, "marketing_spend_clean")
    by_channel, by_month = spend_tables(spend, values, payback, points)
    return {"tables": tables, "by_channel": by_channel, "by_month": by_month, "has_spend": spend is not None}


def _records(df: pd.DataFrame | None) -> list[dict]:
    if df is None:
        return []
    def plain(v):
        v = v.item() if hasattr(v, "item") else v
        return None if isinstance(v, float) and not np.isfinite(v) else v
    return [{k: plain(v) for k, v in row.items()} for row in df.to_dict("records")]


def _card(as_of, fc: ForecastConfig, clv: ClvConfig, fit: Fit | None, how: str, sums: pd.DataFrame,
          bt: pd.DataFrame | None, notes: list, acq: dict) -> dict:
    """forecast_model.json: what 07 and later months' track record read of this month's forecast, and the
    value per new customer by channel (with its cost where marketing_spend.csv gives one)."""
    channels = acq["tables"].get("channel")
    return {"as_of": str(as_of), "months": fc.months, "band": fc.band, "time_unit": clv.time_unit,
            "gross_margin": clv.gross_margin, "model": fit.name if fit is not None else None,
            "new_customers_model": how, "totals": _records(sums), "backtest": _records(bt), "notes": list(notes),
            "channels": _records(channels.reset_index() if channels is not None else None),
            "spend_by_channel": _records(acq["by_channel"]), "has_spend_file": acq["has_spend"]}
