"""Customer lifetime value: MBG/NBD, Pareto/NBD or BG/NBD and Gamma-Gamma, validated on a holdout.

Stage 04. The work splits as DESIGN.md "Engine" says:

- **over order lines** (Ibis, in `helpers.customer_facts`): `purchase_periods`, `rfm_summary_expr` /
  `rfm_summary` and `calibration_holdout` turn orders_clean into one row per customer, each from the month's
  `daily_net` (the lines grouped once per customer and day, cached by `run`; the forecast caches its own);
- **over customers** (pandas + ``lifetimes``): the models are fitted on *compressed* rows (one row per
  unique ``(frequency, recency, T)`` with a ``weights`` count, as Fader and Hardie do), and every
  score is computed vectorised on those unique rows and mapped back, so fitting N customers does
  not cost N likelihood terms. The formulas (`probability_alive`, `expected_purchases`,
  `probability_of_purchase`) live in `helpers.customer_facts`, shared with churn and win-back.
- **where the customers are**: the customers' ids stay in the engine. `run` takes the summary's numbers in
  customer_id order without the ids (`customer_facts.numbers_by_customer_id`) for the fits and the page; the
  scores are computed a batch at a time where the rows are (`Scorer` through `engine.map_batches`: on Spark's
  executors) and written to clv.parquet by the engine; CLV by segment is joined there (`clv_by_segment_table`),
  and so are the forecast's values per new customer (`forecast.acquisition_cells` with the scores).

Purchase definition (used by every function here, and by churn and win-back through customer_facts):
order lines are netted per customer and time unit (``day`` by default, or ``week``, Monday to
Sunday), returns included on the day they were booked. A period with a **positive** net amount is one
purchase; a period whose net is zero or negative (a return-only day, or returns larger than that
day's purchases) is *not* a purchase and its amount is left out of ``monetary_value`` (Gamma-Gamma
needs positive values; a return booked weeks after its order cannot be matched to a purchase
period without an order link the raw contract does not guarantee).

Models (``lifetimes`` 0.11, time measured in the configured unit):

- BG/NBD: Fader, Hardie & Lee (2005), "Counting your customers the easy way", Marketing Science 24(2).
- Pareto/NBD: Schmittlein, Morrison & Colombo (1987), Management Science 33(1).
- MBG/NBD: Batislam, Denizel & Filiztekin (2007), IJRM 24(3) (a customer may also drop out at time 0).
- Gamma-Gamma: Fader, Hardie & Lee (2005), "RFM and CLV", JMR 42(4); it assumes a customer's mean
  order value is independent of their purchase frequency, which `monetary_correlation` checks.

Fitting (every purchase-model fit, holdout candidates and final, and Gamma-Gamma): lifetimes' own
negative log-likelihood on the compressed rows, weighted, minimised by scipy's L-BFGS-B on
log-parameters (time scaled so the oldest customer has age 1, as lifetimes does), with at most
``clv.max_evaluations`` evaluations (the cap decides the result, so a rerun gives the same bytes) and
``clv.fit_seconds`` of wall-clock time (past it the fit is abandoned, never shortened); the
parameters are then set on a lifetimes fitter object, which scores. A fit that stops at its cap or
limit is left out, with one sentence in the report. A maximum-likelihood point on the boundary (a
gamma shape and its rate growing together: rates that hardly differ between customers) is kept and
named in words (`boundary_sentence`).

Model choice (``clv.model: auto``): among the candidates within ``clv.model_tolerance`` of the best
holdout MAE, MBG/NBD, then Pareto/NBD, then BG/NBD; if the final fit of the chosen one fails, the
next in `model_ranking` is used and the report says so. BG/NBD lets a customer drop out only after a
repeat purchase, so its P(alive) of a one-time buyer is always 1: the report leaves it blank.

A customer none of whose periods is a purchase (only zero-price lines, or purchases cancelled by
returns in the same period: `customer_facts.no_positive_purchase`) has nothing to value: they get no
row in clv.parquet (so no CLV, empty in customers_scored), and the page says how many and why, so 04
never counts fewer customers than the other pages without a word.

Output: clv.parquet, one row per customer with a purchase in the columns declared in `helpers.artifacts` (``p_alive``,
``exp_purchases`` and ``p_purchase`` over ``clv.purchase_window_days``, ``exp_avg_value``, ``clv`` over
``clv.clv_months``); the horizons behind those columns are recorded in clv_model.json, never spelled
into a column name. `run` returns a `ClvResult`; its page (tables, sentences, figures) is `helpers.pages.clv`.
"""
from __future__ import annotations

import datetime as dt
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
from autograd import value_and_grad
from lifetimes import (
    BetaGeoFitter,
    GammaGammaFitter,
    ModifiedBetaGeoFitter,
    ParetoNBDFitter,
)
from scipy.optimize import minimize
from scipy.special import gammaln, hyp2f1, logsumexp

from helpers import artifacts, engine
from helpers.config import ClvConfig, Config
from helpers.customer_facts import (
    EPOCH,
    UNIT_DAYS,
    Fit,
    as_date,
    calibration_holdout,
    calibration_holdout_expr,
    compress,
    daily_net,
    expected_purchases,
    lifetimes_expected_purchases,
    no_positive_counts,
    numbers_by_customer_id,
    period_number,
    probability_alive,
    probability_of_purchase,
    purchase_periods,
    repeat_purchases_per_period,
    rfm_summary,
    rfm_summary_expr,
    unique_x_T,
)

__all__ = [
    "MODEL_NAMES", "SCORE_COLUMNS", "fit_purchase_model", "fit_final", "fit_gamma_gamma", "score_customers",
    "expected_purchases_by_horizon", "holdout_comparison", "choose_model", "model_ranking", "fit_first_that_fits",
    "FitFailed", "boundary_sentence", "alive_maps", "AliveMaps", "ClvResult", "run",
]

MODEL_NAMES = {"bgnbd": "BG/NBD", "pareto_nbd": "Pareto/NBD", "mbgnbd": "MBG/NBD"}
PARAM_NAMES = {"bgnbd": ("r", "alpha", "a", "b"), "mbgnbd": ("r", "alpha", "a", "b"),
               "pareto_nbd": ("r", "alpha", "s", "beta")}
FITTERS = {"bgnbd": BetaGeoFitter, "pareto_nbd": ParetoNBDFitter, "mbgnbd": ModifiedBetaGeoFitter}
SUMMARY_COLUMNS = ["customer_id", "frequency", "recency", "T", "monetary_value"]
SCORE_COLUMNS = artifacts.ARTIFACTS["clv"].columns  # clv.parquet, as declared
DAYS_PER_MONTH = 365.0 / 12.0
FREQUENCY_CAP = 7  # calibration frequencies >= this are pooled in the holdout-by-frequency view
LOG_BOUND = 18.0  # fitted log-parameters (time scaled so the oldest customer has age 1) stay within +-18
BOUNDARY_SHAPE = 50.0  # a gamma shape above this: rates differ by under 1/sqrt(50) = 14 % (coefficient of variation)
PREFERENCE = ("mbgnbd", "pareto_nbd", "bgnbd")  # among near-equal candidates, in this order


class FitFailed(RuntimeError):
    """A fit that stopped at its evaluation cap or its time limit, or ran into unusable parameters;
    the message is one sentence for the report."""


class _OutOfTime(Exception):
    pass


def _minimise(objective, x0, max_evaluations: int, fit_seconds: float, label: str, gradient: bool):
    """L-BFGS-B on log-parameters, bounded to +-LOG_BOUND, at most `max_evaluations` evaluations of
    the objective (counting finite-difference ones); the cap, not the clock, decides the result, so a
    rerun gives the same bytes. Past `fit_seconds` of wall-clock time the fit is abandoned (FitFailed)."""
    start, calls = time.perf_counter(), [0]

    def f(x):
        calls[0] += 1
        if time.perf_counter() - start > fit_seconds:
            raise _OutOfTime
        value = objective(x)
        if gradient:
            v, g = value
            return (float(v), np.asarray(g, float)) if np.isfinite(v) else (1e300, np.zeros_like(x))
        return float(value) if np.isfinite(value) else 1e300

    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            res = minimize(f, np.asarray(x0, float), jac=gradient or None, method="L-BFGS-B",
                           bounds=[(-LOG_BOUND, LOG_BOUND)] * len(x0),
                           options={"maxfun": max_evaluations, "maxiter": max_evaluations,
                                    "ftol": 1e-13, "gtol": 1e-9})
    except _OutOfTime:
        raise FitFailed(f"{label} did not finish within its time limit of {fit_seconds:g} s "
                        f"({calls[0]:,} likelihood evaluations) and is left out.") from None
    if not np.isfinite(res.fun) or res.fun >= 1e300:
        raise FitFailed(f"{label} could not be fitted: its likelihood is not finite on this data.")
    if res.nfev >= max_evaluations or res.nit >= max_evaluations or "LIMIT" in str(res.message).upper():
        raise FitFailed(f"{label} stopped at its cap of {max_evaluations:,} likelihood evaluations without "
                        "converging and is left out.")
    return res.x


def _objective(name: str, f, r, T, w, penalizer: float):
    """(negative log-likelihood of log-parameters per customer, whether it returns its gradient too).

    lifetimes' own likelihoods (its fitters' ``_negative_log_likelihood``): BG/NBD, MBG/NBD and
    Gamma-Gamma are written in autograd, so the gradient is exact; Pareto/NBD's is plain numpy,
    so L-BFGS-B takes finite differences. Pareto/NBD's is divided by the row count to be per
    customer like the others."""
    if name == "pareto_nbd":
        nll = pareto_nbd_nll(f, r, T, w, penalizer)
        return (lambda x: nll(np.exp(x))), False
    if name == "gamma_gamma":
        return value_and_grad(lambda x: GammaGammaFitter._negative_log_likelihood(x, f, r, w, penalizer)), True
    nll = FITTERS[name]._negative_log_likelihood
    return value_and_grad(lambda x: nll(x, f, r, T, w, penalizer)), True


def pareto_nbd_nll(f, r, T, w, penalizer: float = 0.0):
    """lifetimes' Pareto/NBD negative log-likelihood (``ParetoNBDFitter._negative_log_likelihood``,
    Fader & Hardie note 009 eq. 18-20) as a function of the parameters (r, alpha, s, beta), divided by
    the row count; each Gauss hypergeometric term is evaluated once per unique (x, t_x) and (x, T)
    pair (its only arguments besides the parameters), the costly part near the boundary. Equal to
    lifetimes' value to rounding (tested)."""
    f, r, T, w = (np.asarray(v, float) for v in (f, r, T, w))
    xr, inv_r = np.unique(np.column_stack([f, r]), axis=0, return_inverse=True)
    xT, inv_T = np.unique(np.column_stack([f, T]), axis=0, return_inverse=True)
    inv_r, inv_T = inv_r.ravel(), inv_T.ravel()
    n = len(f)

    def nll(params) -> float:
        r_, alpha, s, beta = params
        if min(params) <= 0:
            return np.inf
        lo, hi = min(alpha, beta), max(alpha, beta)

        def h(pairs):  # hyp2f1 over unique (x, time) pairs, time = t_x or T
            x, t = pairs[:, 0], pairs[:, 1]
            rsf = r_ + s + x
            return hyp2f1(rsf, r_ + x if alpha < beta else s + 1, rsf + 1.0, (hi - lo) / (hi + t))

        rsf = r_ + s + f
        q_1, q_2 = hi + r, hi + T
        log_a0 = logsumexp([np.log(h(xr))[inv_r] + rsf * np.log(q_2), np.log(h(xT))[inv_T] + rsf * np.log(q_1)],
                           axis=0, b=[np.ones(n), -np.ones(n)]) - rsf * np.log(q_1 * q_2)
        a_1 = gammaln(r_ + f) - gammaln(r_) + r_ * np.log(alpha) + s * np.log(beta)
        a_2 = np.logaddexp(-(r_ + f) * np.log(alpha + T) - s * np.log(beta + T), np.log(s) + log_a0 - np.log(rsf))
        return float(-(w * (a_1 + a_2)).sum() / w.mean() / n + penalizer * np.sum(np.asarray(params) ** 2) / n)

    return nll


def boundary_sentence(name: str, params: dict, time_unit: str = "day") -> str | None:
    """Words for a maximum-likelihood point on the boundary (a shape parameter above BOUNDARY_SHAPE,
    its partner growing with it), or None. The ratio that stays finite is what the data shows."""
    unit = UNIT_DAYS[time_unit]
    said = []
    r_, alpha = params.get("r"), params.get("alpha")
    if r_ is not None and r_ > BOUNDARY_SHAPE:
        said.append(f"customers' purchase rates hardly differ: about one purchase every {alpha / r_ * unit:,.0f} "
                    "days while active, for everyone")
    if name == "pareto_nbd" and params["s"] > BOUNDARY_SHAPE:
        said.append(f"customers' dropout rates hardly differ: about 1 in {params['beta'] / params['s'] * unit:,.0f} "
                    "days for everyone")
    if name in ("bgnbd", "mbgnbd") and min(params["a"], params["b"]) > BOUNDARY_SHAPE / 10 and \
            params["a"] + params["b"] > BOUNDARY_SHAPE:
        p = params["a"] / (params["a"] + params["b"])
        said.append(f"customers' chance of dropping out after a purchase hardly differs: about {p:.1%} for everyone")
    if name == "gamma_gamma" and params["q"] > BOUNDARY_SHAPE:
        said.append("customers' typical order values hardly differ beyond chance: about "
                    f"{params['p'] * params['v'] / (params['q'] - 1):,.2f} per order for everyone")
    if not said:
        return None
    label = "Gamma-Gamma" if name == "gamma_gamma" else MODEL_NAMES[name]
    return (f"{label}: " + "; ".join(said) + " (the fit runs to the edge of the model, where the spread between "
            "customers vanishes; scores use these boundary parameters).")


def _lifetimes_object(name: str, params: dict, penalizer: float, data: pd.DataFrame):
    """The lifetimes fitter with `params` set as if it had fitted them, so its conditional_* methods
    score as before."""
    model = (GammaGammaFitter if name == "gamma_gamma" else FITTERS[name])(penalizer_coef=penalizer)
    model.params_ = pd.Series(params)
    model.data = data.reset_index(drop=True)
    if name != "gamma_gamma":
        model.predict = model.conditional_expected_number_of_purchases_up_to_time
    return model


def fit_from_card(card: dict | None) -> Fit | None:
    """The purchase model that clv_model.json describes, rebuilt without fitting (None without one):
    what a later month needs to score this month's predictions (helpers.track)."""
    name, params = (card or {}).get("model"), (card or {}).get("params") or {}
    if name not in FITTERS or not params:
        return None
    penalizer = float(card.get("penalizer") or 0.0)
    return Fit(name, _lifetimes_object(name, params, penalizer, pd.DataFrame()), params, penalizer)


def fit_purchase_model(name: str, unique: pd.DataFrame, penalizer: float = 0.0, max_evaluations: int = 3000,
                       fit_seconds: float = 60.0, time_unit: str = "day", start: dict | None = None) -> Fit:
    """Fit BG/NBD (``bgnbd``), Pareto/NBD (``pareto_nbd``) or MBG/NBD (``mbgnbd``) on compressed rows.

    `unique` has ``frequency``, ``recency``, ``T`` and ``weights`` (see `compress`). lifetimes'
    likelihood, weighted by row counts, is minimised by `_minimise` (L-BFGS-B on log-parameters with
    time scaled so the oldest customer has age 1, as lifetimes does; at most `max_evaluations`
    evaluations, abandoned after `fit_seconds`). A boundary solution is kept and named in the Fit's
    ``boundary`` sentence. Raises FitFailed with one sentence for the report. `start`: parameters to start from
    (the forecast's backtest refits from this month's fit: the same model on a shorter history), else
    lifetimes' starting points.
    """
    label = MODEL_NAMES[name]
    f = unique["frequency"].to_numpy(float)
    r, T = unique["recency"].to_numpy(float), unique["T"].to_numpy(float)
    w = unique["weights"].to_numpy(float)
    scale = 1.0 / T.max() if T.max() > 0 else 1.0
    objective, gradient = _objective(name, f, r * scale, T * scale, w, penalizer)
    x0 = np.zeros(4) if name == "pareto_nbd" else np.full(4, 0.1)  # lifetimes' starting points
    if start:
        x0 = np.clip(np.log([start[k] * (scale if k in ("alpha", "beta") else 1.0) for k in PARAM_NAMES[name]]),
                     -LOG_BOUND + 1.0, LOG_BOUND - 1.0)
    x = _minimise(objective, x0, max_evaluations, fit_seconds, label, gradient)
    params = dict(zip(PARAM_NAMES[name], np.exp(x).tolist()))
    params["alpha"] /= scale
    if name == "pareto_nbd":
        params["beta"] /= scale
    params = {k: float(v) for k, v in params.items()}
    boundary = boundary_sentence(name, params, time_unit)
    at_bound = [k for k, v in zip(PARAM_NAMES[name], x) if abs(v) >= LOG_BOUND - 1e-6]
    if at_bound and boundary is None:
        raise FitFailed(f"{label} could not be fitted: parameter {at_bound[0]} ran to the edge of its range "
                        f"({params[at_bound[0]]:.3g}) and is left out.")
    data = unique[["frequency", "recency", "T", "weights"]]
    return Fit(name, _lifetimes_object(name, params, penalizer, data), params, penalizer, None, boundary)


def fit_sample(rows: pd.DataFrame, clv: ClvConfig) -> pd.DataFrame:
    """The rows a purchase model is fitted on: every row, or above ``clv.sample_customers`` rows (one per customer)
    a fixed random sample of them (``clv.seed``), in their order. A four-parameter model is pinned down long
    before a million customers; every customer is still scored."""
    return rows if len(rows) <= clv.sample_customers else rows.sample(n=clv.sample_customers,
                                                                     random_state=clv.seed).sort_index()


def fit_final(summary: pd.DataFrame, name: str, clv: ClvConfig, start: dict | None = None) -> Fit:
    """The final purchase-model fit on all customers' summary, compressed to unique rows.

    The fit takes `fit_sample`'s rows (above ``clv.sample_customers``, a fixed random sample); every customer is
    still scored. The returned note says when it sampled. Raises FitFailed like `fit_purchase_model`.
    """
    rows, note = fit_sample(summary, clv), None
    if len(rows) < len(summary):
        note = (f"The final {MODEL_NAMES[name]} fit used a random sample of {clv.sample_customers:,} of "
                f"{len(summary):,} customers; every customer is scored.")
    unique, _ = compress(rows)
    fit = fit_purchase_model(name, unique, clv.penalizer, clv.max_evaluations, clv.fit_seconds, clv.time_unit, start)
    fit.note = note
    return fit


def fit_gamma_gamma(summary: pd.DataFrame, penalizer: float = 0.0, max_evaluations: int = 3000,
                    fit_seconds: float = 60.0) -> Fit:
    """Gamma-Gamma on repeat customers (frequency > 0, monetary_value > 0), compressed on
    (frequency, monetary_value rounded to cents), fitted like `fit_purchase_model` (lifetimes'
    likelihood, L-BFGS-B on log-parameters, values scaled by their median for the optimiser).
    Raises FitFailed when it stops at its cap or time limit or gives q <= 1 (no finite mean value)."""
    rep = summary.loc[(summary["frequency"] > 0) & (summary["monetary_value"] > 0), ["frequency", "monetary_value"]]
    rep = rep.assign(monetary_value=rep["monetary_value"].round(2))
    if len(rep) < 2:
        raise FitFailed("Gamma-Gamma could not be fitted: fewer than two repeat customers with a positive order value.")
    unique, _ = compress(rep, ("frequency", "monetary_value"))
    m = unique["monetary_value"].to_numpy(float)
    scale = 1.0 / float(np.median(m))
    objective, _ = _objective("gamma_gamma", unique["frequency"].to_numpy(float), m * scale, None,
                              unique["weights"].to_numpy(float), penalizer)
    x = _minimise(objective, np.full(3, 0.1), max_evaluations, fit_seconds, "Gamma-Gamma", True)
    params = dict(zip(("p", "q", "v"), np.exp(x).tolist()))
    params["v"] = float(params["v"] / scale)
    boundary = boundary_sentence("gamma_gamma", params)
    if params["q"] <= 1:
        raise FitFailed(f"Gamma-Gamma could not be fitted: q = {params['q']:.3g} <= 1 leaves no finite mean order value.")
    at_bound = [k for k, v in zip(("p", "q", "v"), x) if abs(v) >= LOG_BOUND - 1e-6]
    if at_bound and boundary is None:
        raise FitFailed(f"Gamma-Gamma could not be fitted: parameter {at_bound[0]} ran to the edge of its range "
                        f"({params[at_bound[0]]:.3g}).")
    return Fit("gamma_gamma", _lifetimes_object("gamma_gamma", params, penalizer, unique), params, penalizer,
               None, boundary)


# --- over customers: predictions ---------------------------------------------------------------


def _unique_rows(summary: pd.DataFrame):
    """(frequency, recency, T) of the unique rows, their (x, T) groups, and each row's position."""
    u, inv = compress(summary)
    f, r, T = (u[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    return f, r, T, unique_x_T(f, T), inv


def score_customers(summary: pd.DataFrame, fit: Fit | None, gg: Fit | None, clv: ClvConfig,
                    average_order_value: float = float("nan")) -> pd.DataFrame:
    """Per customer: P(alive), expected purchases and P(at least one purchase) over the purchase
    window, expected average order value and CLV, computed on the unique (frequency, recency, T)
    rows and mapped back.

    Input: `rfm_summary` columns (customer_id may be left out: then so it is in the output). Each row's scores
    are its own, whatever rows come with it (`Scorer` scores a batch at a time). Output: clv.parquet's declared
    columns (`SCORE_COLUMNS`):
    the summary, ``p_alive``, ``exp_purchases`` and ``p_purchase`` over ``clv.purchase_window_days``,
    ``exp_avg_value`` (currency; Gamma-Gamma) and ``clv`` = gross margin x expected average order
    value x expected purchases in each of the next ``clv.clv_months`` months, discounted at
    ``clv.monthly_discount_rate`` per month (a month = 365/12 days).
    Without a purchase model (`fit` None: no repeat customers), the purchase columns are empty and
    CLV is the margin on one `average_order_value`, the only value the data supports; the same value
    stands in for Gamma-Gamma when `gg` is None.
    """
    out = summary[[c for c in SUMMARY_COLUMNS if c in summary]].copy()  # with customer_id when `summary` has it
    columns = [c for c in SCORE_COLUMNS if c in out or c not in SUMMARY_COLUMNS]
    unit = UNIT_DAYS[clv.time_unit]
    if gg is not None:
        out["exp_avg_value"] = np.asarray(gg.model.conditional_expected_average_profit(
            out["frequency"].to_numpy(float), out["monetary_value"].to_numpy(float)), dtype=float)
    else:
        out["exp_avg_value"] = float(average_order_value)
    if fit is None:
        out[["p_alive", "exp_purchases", "p_purchase"]] = np.nan
        out["clv"] = clv.gross_margin * out["exp_avg_value"]
        return out[columns]
    f, r, T, groups, inv = _unique_rows(out)
    window = clv.purchase_window_days / unit
    out["p_alive"] = probability_alive(fit, f, r, T)[inv]
    out["exp_purchases"] = expected_purchases(fit, window, f, r, T, groups)[inv]
    out["p_purchase"] = probability_of_purchase(fit, window, f, r, T)[inv]
    discounted = np.zeros(len(f))
    previous = np.zeros(len(f))
    for m in range(1, clv.clv_months + 1):
        cum = expected_purchases(fit, m * DAYS_PER_MONTH / unit, f, r, T, groups)
        discounted += (cum - previous) / (1.0 + clv.monthly_discount_rate) ** m
        previous = cum
    out["clv"] = clv.gross_margin * out["exp_avg_value"].to_numpy() * discounted[inv]
    return out[columns]


# --- how sure the total is: the fits' parameter uncertainty ---------------------------------------

BAND = (0.05, 0.95)  # the CLV total's band: 5-95 % of the parameter draws
BAND_DRAWS = 2000
BAND_ROWS = 500  # the total's sensitivity to each parameter is measured on a fixed sample of this many customers


def _nll_at(fit: Fit):
    """(the fit's total negative log-likelihood as a function of its log-parameters - or its gradient, where the
    likelihood has an exact one -, those log-parameters, whether it is the gradient), on the rows it was fitted
    on (its model's ``data``), in the time or value scale the fit used."""
    data = fit.model.data
    w = data["weights"].to_numpy(float)
    if fit.name == "gamma_gamma":
        m = data["monetary_value"].to_numpy(float)
        scale = 1.0 / float(np.median(m))
        objective, gradient = _objective("gamma_gamma", data["frequency"].to_numpy(float), m * scale, None, w,
                                         fit.penalizer)
        x = np.log([fit.params["p"], fit.params["q"], fit.params["v"] * scale])
    else:
        T = data["T"].to_numpy(float)
        scale = 1.0 / T.max() if T.max() > 0 else 1.0
        objective, gradient = _objective(fit.name, data["frequency"].to_numpy(float),
                                         data["recency"].to_numpy(float) * scale, T * scale, w, fit.penalizer)
        scaled = {k: v * (scale if k in ("alpha", "beta") else 1.0) for k, v in fit.params.items()}
        x = np.log([scaled[k] for k in PARAM_NAMES[fit.name]])
    n = w.sum()  # the objectives are per customer: the total likelihood is n times theirs
    if gradient:  # the exact gradient (autograd): the Hessian from differences of it
        return (lambda y: n * np.asarray(objective(y)[1], float)), x, True
    return (lambda y: n * float(objective(y))), x, False


def log_param_covariance(fit: Fit | None, step: float = 1e-4) -> np.ndarray | None:
    """The covariance of a fit's log-parameters: the inverse Hessian of its total negative log-likelihood at
    the optimum (central differences), in :data:`PARAM_NAMES` order (p, q, v for Gamma-Gamma). None without
    a fit, without the rows it was fitted on, or where the Hessian is not positive definite (a boundary fit)."""
    if fit is None or fit.model is None or getattr(fit.model, "data", None) is None or fit.model.data.empty:
        return None
    if fit.covariance is None:
        fit.covariance = _log_param_covariance(fit, step)
    return None if isinstance(fit.covariance, str) else fit.covariance


def _log_param_covariance(fit: Fit, step: float):
    """`log_param_covariance` computed ('none' where the Hessian is not positive definite)."""
    nll, x, is_gradient = _nll_at(fit)
    k = len(x)
    h = np.zeros((k, k))
    e = np.eye(k) * step
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if is_gradient:
            for j in range(k):
                h[:, j] = (nll(x + e[j]) - nll(x - e[j])) / (2 * step)
            h = (h + h.T) / 2
        else:
            for i in range(k):
                for j in range(i, k):
                    h[i, j] = h[j, i] = (nll(x + e[i] + e[j]) - nll(x + e[i] - e[j]) - nll(x - e[i] + e[j])
                                         + nll(x - e[i] - e[j])) / (4 * step * step)
    if not np.all(np.isfinite(h)) or np.any(np.linalg.eigvalsh(h) <= 0):
        return "none"
    return np.linalg.inv(h)


def _param_names(fit: Fit) -> tuple[str, ...]:
    return ("p", "q", "v") if fit.name == "gamma_gamma" else PARAM_NAMES[fit.name]


def log_params(fit: Fit) -> np.ndarray:
    """A fit's parameters as logs, in :data:`PARAM_NAMES` order (p, q, v for Gamma-Gamma)."""
    return np.log([fit.params[k] for k in _param_names(fit)])


def _with_log_params(fit: Fit, x: np.ndarray) -> Fit:
    params = dict(zip(_param_names(fit), np.exp(x).tolist()))
    return Fit(fit.name, _lifetimes_object(fit.name, params, fit.penalizer, pd.DataFrame()), params, fit.penalizer)


def parameter_moves(fits: list[Fit], value, base: np.ndarray, draws: int, rng: np.random.Generator,
                    step: float = 1e-4) -> np.ndarray | None:
    """Draws x len(`base`) moves of ``value(fits)`` (an array, `base` its value at `fits`) from the fits'
    parameter uncertainty: draws of each fit's log-parameters from their covariance (:func:`log_param_covariance`;
    no refits), the value's first-order change by forward differences (one evaluation per parameter). The CLV
    total's band and the forecast's both stand on it. None where a covariance is not usable or a change is not
    finite."""
    covs = [log_param_covariance(f) for f in fits]
    if any(c is None for c in covs):
        return None
    grads = []
    for i, one in enumerate(fits):
        x0 = log_params(one)
        g = np.zeros((len(x0), len(base)))
        for j in range(len(x0)):
            x = x0.copy()
            x[j] += step
            moved = [*fits[:i], _with_log_params(one, x), *fits[i + 1:]]
            g[j] = (np.asarray(value(moved), float) - base) / step
        grads.append(g)
    if not all(np.all(np.isfinite(g)) for g in grads):
        return None
    return sum(rng.multivariate_normal(np.zeros(len(g)), c, draws) @ g for g, c in zip(grads, covs))


def clv_total_band(summary: pd.DataFrame, fit: Fit | None, gg: Fit | None, clv: ClvConfig,
                   average_order_value: float = float("nan"), total_clv: float | None = None
                   ) -> tuple[float, float] | None:
    """The 5-95 % band of the total CLV from the purchase model's and Gamma-Gamma's parameter uncertainty:
    :data:`BAND_DRAWS` draws of the log-parameters from their covariance (:func:`log_param_covariance`; no
    refits, seed ``clv.seed``), the total for each draw by its first-order change (the total's gradient by
    forward differences: 7 scorings of a fixed sample of :data:`BAND_ROWS` customers, its total scaled to
    the whole, whatever the shop's size and the number of draws). Purchase noise is not in it: it is how sure
    the models are of the expected total. None without a purchase model or a usable covariance."""
    if fit is None:
        return None
    centre = float(score_customers(summary, fit, gg, clv, average_order_value)["clv"].sum()
                   if total_clv is None else total_clv)
    sample = summary if len(summary) <= BAND_ROWS else summary.sample(n=BAND_ROWS, random_state=clv.seed)
    # the sample's total, scaled to the whole: its relative change per parameter stands for the whole's
    ratio = centre / float(score_customers(sample, fit, gg, clv, average_order_value)["clv"].sum() or np.nan)
    if not np.isfinite(ratio):
        return None

    def total(moved) -> np.ndarray:
        return np.array([ratio * float(score_customers(sample, moved[0], moved[1] if gg is not None else None, clv,
                                                       average_order_value)["clv"].sum())])

    fits = [f for f in (fit, gg) if f is not None]  # total(fits) is the centre by construction of ratio
    moves = parameter_moves(fits, total, np.array([centre]), BAND_DRAWS, np.random.default_rng(clv.seed))
    if moves is None:
        return None
    moves = moves[:, 0]
    low, high = np.quantile(centre + moves, BAND)
    return float(low), float(high)


def expected_purchases_by_horizon(summary: pd.DataFrame, fit: Fit | None, horizons_days, time_unit: str = "day"
                                  ) -> pd.DataFrame:
    """Expected purchases over each horizon, one column ``exp_purchases_<h>d`` per day count in
    `horizons_days`, rows as `summary` (empty without a purchase model).

    A table for the report only: clv.parquet keeps one horizon, the purchase window.
    """
    cols = [f"exp_purchases_{h}d" for h in horizons_days]
    if fit is None:
        return pd.DataFrame(np.nan, index=summary.index, columns=cols)
    f, r, T, groups, inv = _unique_rows(summary)
    return pd.DataFrame({c: expected_purchases(fit, h / UNIT_DAYS[time_unit], f, r, T, groups)[inv]
                         for h, c in zip(horizons_days, cols)}, index=summary.index)


def scores_for_report(scores: pd.DataFrame, by_horizon: pd.DataFrame, clv: ClvConfig) -> pd.DataFrame:
    """clv.parquet's scores as the report shows them: the expectation per horizon in place of
    ``exp_purchases``, and the window and CLV months in the column names (``p_purchase_90d``,
    ``clv_12m``)."""
    s = scores.drop(columns=["customer_id", "exp_purchases"], errors="ignore").rename(
        columns={"p_purchase": f"p_purchase_{clv.purchase_window_days}d", "clv": f"clv_{clv.clv_months}m"})
    at = s.columns.get_loc("p_alive") + 1
    return pd.concat([s.iloc[:, :at], by_horizon, s.iloc[:, at:]], axis=1)


def average_purchase_value(orders: ibis.Table, as_of, time_unit: str = "day") -> float:
    """Mean net value of all purchase periods up to `as_of`: the value of one order when no
    Gamma-Gamma can be fitted (0 without any purchase)."""
    periods = purchase_periods(orders, as_of, time_unit)
    return float((periods.cents.mean() / 100).to_pandas() or 0)  # integer cents: the same every run


# --- holdout validation --------------------------------------------------------------------------

def holdout_comparison(calhold: pd.DataFrame, clv: ClvConfig, models=tuple(MODEL_NAMES)):
    """Fit each candidate on the calibration period and compare its holdout predictions.

    Above ``clv.sample_customers`` customers, a fixed random sample (``clv.seed``) is used.
    Returns (table indexed by model name with mae, rmse, predicted_total, actual_total,
    total_error_pct, penalizer; dict of `Fit`; per-customer predictions frame with
    ``frequency_cal``, ``frequency_holdout`` and one ``pred_<model>`` column each).
    """
    data = fit_sample(calhold, clv)
    s = data.rename(columns={"frequency_cal": "frequency", "recency_cal": "recency", "T_cal": "T"})
    u, inv = compress(s)
    f, r, T = (u[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    duration = float(data["duration_holdout"].iloc[0])
    actual = data["frequency_holdout"].to_numpy(float)
    preds = data[["frequency_cal", "frequency_holdout"]].reset_index(drop=True)
    rows, fits = [], {}
    for name in models:
        try:
            fit = fit_purchase_model(name, u, clv.penalizer, clv.max_evaluations, clv.fit_seconds, clv.time_unit)
        except FitFailed as exc:
            rows.append({"model": name, "mae": np.nan, "rmse": np.nan, "predicted_total": np.nan,
                         "actual_total": actual.sum(), "total_error_pct": np.nan, "penalizer": np.nan,
                         "note": str(exc)})
            continue
        fits[name] = fit
        pred = expected_purchases(fit, duration, f, r, T)[inv]
        preds[f"pred_{name}"] = pred
        err = pred - actual
        rows.append({"model": name, "mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err ** 2).mean())),
                     "predicted_total": float(pred.sum()), "actual_total": float(actual.sum()),
                     "total_error_pct": float(100 * (pred.sum() - actual.sum()) / max(actual.sum(), 1e-12)),
                     "penalizer": fit.penalizer,
                     "note": f"In the holdout comparison, {fit.boundary}" if fit.boundary else None})
    table = pd.DataFrame(rows).set_index("model")
    return table, fits, preds


def model_ranking(table: pd.DataFrame | None, pinned: str = "auto", tolerance: float = 0.05) -> list[str]:
    """Candidates in the order they are tried for the final fit.

    Pinned: that model, then the others in `PREFERENCE` order. ``auto``: the candidates whose holdout
    MAE is within `tolerance` (a share) of the best, MBG/NBD first, then Pareto/NBD, then BG/NBD
    (MBG/NBD and Pareto/NBD let a one-time buyer drop out, BG/NBD does not); then the other fitted
    candidates by MAE. Candidates that could not be fitted in the comparison come last, in
    preference order.
    """
    if pinned != "auto":
        return [pinned] + [m for m in PREFERENCE if m != pinned]
    usable = table["mae"].dropna() if table is not None else pd.Series(dtype=float)
    if not len(usable):
        return list(PREFERENCE)
    near = usable[usable <= usable.min() * (1.0 + tolerance)].index
    order = [m for m in PREFERENCE if m in near] + [m for m in usable.sort_values().index if m not in near]
    return order + [m for m in PREFERENCE if m not in order]


def fit_first_that_fits(unique: pd.DataFrame, clv: ClvConfig) -> Fit:
    """Without a holdout comparison (churn's baseline at a cut-off): the pinned model, else the
    preferred one (MBG/NBD), falling back along `model_ranking`; a fallback is said in the Fit's note.
    Raises FitFailed when none can be fitted."""
    failed = []
    for name in model_ranking(None, clv.model, clv.model_tolerance):
        try:
            fit = fit_purchase_model(name, unique, clv.penalizer, clv.max_evaluations, clv.fit_seconds, clv.time_unit)
        except FitFailed as exc:
            failed.append(str(exc))
            continue
        fit.note = " ".join(failed) or None
        return fit
    raise FitFailed(" ".join(failed))


def choose_model(table: pd.DataFrame, pinned: str = "auto", tolerance: float = 0.05) -> str:
    """The configured model, or (``auto``) the first of `model_ranking`."""
    return model_ranking(table, pinned, tolerance)[0]


def holdout_by_frequency(preds: pd.DataFrame, cap: int = FREQUENCY_CAP) -> pd.DataFrame:
    """Mean actual and predicted holdout purchases per calibration frequency (``cap`` and above pooled)."""
    f = preds["frequency_cal"].clip(upper=cap)
    label = f.astype(int).astype(str).where(f < cap, f"{cap}+")
    cols = ["frequency_holdout"] + [c for c in preds.columns if c.startswith("pred_")]
    g = preds[cols].groupby([f.rename("order"), label.rename("calibration_repeat_purchases")])
    out = g.mean().assign(customers=g.size()).reset_index(level=0, drop=True)
    return out.rename(columns={"frequency_holdout": "actual",
                               **{c: MODEL_NAMES[c[5:]] for c in cols[1:]}})


def tracking_table(per_period: pd.DataFrame, fits: dict, cal_end_period: int) -> pd.DataFrame:
    """Cumulative repeat purchases per period, actual and expected by each fitted model.

    Each cohort of customers first buying in period d adds ``n_d * E[X(t - d)]`` expected repeat
    purchases by period t (the model's unconditional expectation, as lifetimes'
    ``expected_cumulative_transactions``), so the holdout part is a genuine forecast.
    """
    start, end = int(per_period["period"].min()), int(per_period["period"].max())
    grid = pd.DataFrame({"period": np.arange(start, end + 1)})
    d = grid.merge(per_period, on="period", how="left").fillna(0)
    out = pd.DataFrame({"period": d["period"], "actual": d["repeat_purchases"].cumsum()})
    births = d["first_purchases"].to_numpy(float)
    lags = np.arange(len(d), dtype=float)
    for name, fit in fits.items():
        with np.errstate(all="ignore"):
            ex = np.nan_to_num(np.asarray(fit.model.expected_number_of_purchases_up_to_time(lags), float))
        out[MODEL_NAMES[name]] = np.convolve(births, ex)[: len(d)]
    out["holdout"] = out["period"] > cal_end_period
    return out


def period_transactions(summary: pd.DataFrame, fit: Fit, seed: int = 42, cap: int = FREQUENCY_CAP) -> pd.DataFrame:
    """Customers by number of repeat purchases: actual vs simulated from the fitted model.

    Every customer is simulated once over their own age T with the fitted parameters (fixed seed).
    """
    rng = np.random.default_rng(seed)
    T = summary["T"].to_numpy(float)
    n = len(T)
    prm = fit.params
    lam = rng.gamma(prm["r"], 1.0 / prm["alpha"], n)
    if fit.name == "pareto_nbd":
        mu = rng.gamma(prm["s"], 1.0 / prm["beta"], n)
        life = rng.exponential(1.0 / np.maximum(mu, 1e-300))
        sim = rng.poisson(lam * np.minimum(life, T))
    else:
        p = rng.beta(prm["a"], prm["b"], n)
        k = rng.geometric(np.clip(p, 1e-12, 1.0))  # repeats before dropping out (BG/NBD: >= 1)
        if fit.name == "mbgnbd":
            k = k - 1  # MBG/NBD may also drop out right after the first purchase
        sim = np.minimum(rng.poisson(lam * T), k)
    labels = [str(i) for i in range(cap)] + [f"{cap}+"]
    actual = np.bincount(np.minimum(summary["frequency"].to_numpy(int), cap), minlength=cap + 1)
    model = np.bincount(np.minimum(sim, cap), minlength=cap + 1)
    return pd.DataFrame({"actual": actual, MODEL_NAMES[fit.name]: model},
                        index=pd.Index(labels, name="repeat_purchases"))


def alive_matrix(fit: Fit, T: float, t_days: int, time_unit: str, max_frequency: int, n_recency: int = 12):
    """P(alive) and expected purchases in the next `t_days` over frequency x recency, at age `T`."""
    rec = np.linspace(0, T, n_recency + 1)
    f = np.arange(max_frequency + 1, dtype=float)
    ff, rr = np.meshgrid(f, rec, indexing="ij")
    ff, rr = ff.ravel(), rr.ravel()
    tt = np.full_like(ff, T)
    ok = ~((ff == 0) & (rr > 0))  # a customer without repeats has recency 0
    p = np.where(ok, probability_alive(fit, ff, rr, tt), np.nan)
    e = np.where(ok, lifetimes_expected_purchases(fit, t_days / UNIT_DAYS[time_unit], ff, rr, tt), np.nan)
    unit = "days" if time_unit == "day" else "weeks"
    # lifetimes' recency is the time from the first to the last purchase, not the time since the last
    # order (03's "days since last order"): the axis says so, so the two cannot be read as one
    cols = pd.Index([f"{x:,.0f}" for x in rec], name=f"{unit} from first to last purchase")
    idx = pd.Index(f.astype(int), name="repeat purchases")
    return (pd.DataFrame(p.reshape(len(f), -1), index=idx, columns=cols),
            pd.DataFrame(e.reshape(len(f), -1), index=idx, columns=cols))


def monetary_correlation(summary: pd.DataFrame) -> float:
    """Pearson correlation of frequency and mean repeat order value among repeat customers."""
    rep = summary[summary["frequency"] > 0]
    if len(rep) < 3 or rep["monetary_value"].std() == 0 or rep["frequency"].std() == 0:
        return float("nan")
    return float(np.corrcoef(rep["frequency"], rep["monetary_value"])[0, 1])


# --- tables of data ------------------------------------------------------------------------------

def score_distribution(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and quantiles (25, 50, 75, 90 %, max) of each column of `table`, rounded to 3 decimals."""
    d = table.describe(percentiles=[0.25, 0.5, 0.75, 0.9]).T
    return d[["mean", "25%", "50%", "75%", "90%", "max"]].round(3)


def decile_table(values) -> pd.DataFrame:
    """Customers ranked by CLV (`values`) in ten equal groups: CLV share and cumulative share per decile."""
    v = np.sort(np.asarray(values, dtype=float))[::-1]
    groups = np.array_split(v, 10)
    total = v.sum() if v.sum() else 1.0
    d = pd.DataFrame({"customers": [len(g) for g in groups], "clv_share_pct": [100 * g.sum() / total for g in groups]},
                     index=pd.Index([f"top {10 * (i + 1)} %" if i == 0 else f"{10 * i}-{10 * (i + 1)} %"
                                     for i in range(10)], name="clv decile"))
    d["cumulative_pct"] = d["clv_share_pct"].cumsum()
    return d.round(1)


def segment_table(j: pd.DataFrame) -> pd.DataFrame:
    """Customers, mean and total CLV, mean P(alive), mean P(purchase) over the purchase window, mean repeat
    purchases and share of total CLV per RFM segment, of the scored customers who have a segment (`j`: rfm_segment,
    clv, p_alive, p_purchase, frequency, in customer_id order; the stage takes it from the engine's join,
    `clv_by_segment_table`)."""
    g = j.groupby("rfm_segment", observed=True)
    out = pd.DataFrame({"customers": g.size(), "mean_clv": g["clv"].mean(), "total_clv": g["clv"].sum(),
                        "mean_p_alive": g["p_alive"].mean(), "mean_p_purchase": g["p_purchase"].mean(),
                        "mean_repeat_purchases": g["frequency"].mean()})
    out["clv_share_pct"] = 100 * out["total_clv"] / out["total_clv"].sum()
    out.index.name = "segment"
    return out.sort_values("mean_clv", ascending=False).round(2)


def clv_by_segment_table(con, processed_dir: str | Path, scored: ibis.Table) -> pd.DataFrame | None:
    """`segment_table` of the scored customers joined to segments.parquet by the engine (None without it): only
    their segment and scores reach pandas, not their ids."""
    segments = artifacts.table_if_exists(con, processed_dir, "segments")
    if segments is None:
        return None
    seg = segments.select(customer_id=segments.customer_id.cast("string"), rfm_segment=segments.rfm_segment)
    j = scored.join(seg, "customer_id")
    return segment_table(engine.to_pandas(j.order_by("customer_id").select(
        "rfm_segment", "clv", "p_alive", "p_purchase", "frequency")))


@dataclass
class Scorer:
    """`score_customers` with the fits of the month, a batch of `rfm_summary_expr` rows at a time
    (`engine.map_batches`: on Spark's executors), each batch checked against clv.parquet's declaration there."""

    fit: Fit | None
    gamma_gamma: Fit | None
    settings: ClvConfig
    average_order_value: float

    SCHEMA = pa.schema([("customer_id", pa.string()), ("frequency", pa.int64()),
                        *[(c, pa.float64()) for c in SCORE_COLUMNS[2:]]])

    def __call__(self, rows: pd.DataFrame) -> pd.DataFrame:
        out = score_customers(rows, self.fit, self.gamma_gamma, self.settings, self.average_order_value)
        artifacts.check("clv", out)
        return out


# --- the stage -----------------------------------------------------------------------------------

@dataclass
class AliveMaps:
    """P(alive) and expected purchases in the purchase window over repeat purchases x time from first
    to last purchase (`alive_matrix`), for customers first seen `age` time units ago (the oldest
    customer's age), and P(alive) of such a customer with 5 repeat purchases whose last one was at the
    cut-off or halfway through."""

    age: float
    p_alive: pd.DataFrame
    expected_purchases: pd.DataFrame
    p_alive_last_at_cutoff: float
    p_alive_last_halfway: float


def alive_maps(fit: Fit | None, scores: pd.DataFrame, clv: ClvConfig) -> AliveMaps | None:
    """The maps of `fit` at the oldest customer's age in `scores`, for 0 to the 99th percentile of repeat
    purchases (at least 3, at most 12); None without a purchase model."""
    if fit is None:
        return None
    T = float(scores["T"].max())
    max_f = int(min(12, max(3, scores["frequency"].quantile(0.99))))
    p, e = alive_matrix(fit, T, clv.purchase_window_days, clv.time_unit, max_f)
    recent = probability_alive(fit, np.array([5.0]), np.array([T]), np.array([T]))[0]
    halfway = probability_alive(fit, np.array([5.0]), np.array([T / 2]), np.array([T]))[0]
    return AliveMaps(T, p, e, float(recent), float(halfway))


@dataclass
class ClvResult:
    """What stage 04 computed, for its page (`helpers.pages.clv`): frames, numbers and the fits, no
    engine. `scores` is clv.parquet's rows in customer_id order without the ids (they stay in the engine, which
    wrote clv.parquet), `model_json` is clv_model.json.

    `by_horizon`: expected purchases per ``clv.horizons_days`` (rows as `scores`); `score_summary`: the
    `score_distribution` of `scores_for_report`; `deciles`: `decile_table` of CLV. `comparison`,
    `by_frequency` and `tracking` (`tracking_table` with each period's first ``date``) come from the
    holdout comparison, None without one; `period_tx` (`period_transactions`) and `alive` (`alive_maps`)
    are None without a purchase model; `final` and `gamma_gamma` are the fits (lifetimes objects inside),
    None when they failed; `segments` is CLV per RFM segment (None without segments.parquet);
    `churn_horizon_days` is notebook 05's horizon, for the sentence on P(alive) vs churn risk.
    `left_out`: how many customers have no positive purchase, by reason (`customer_facts.no_positive_counts`);
    they have no row in `scores`, so no CLV.
    """

    as_of: str
    settings: ClvConfig
    currency: str
    scores: pd.DataFrame
    model_json: dict
    by_horizon: pd.DataFrame
    score_summary: pd.DataFrame
    deciles: pd.DataFrame
    comparison: pd.DataFrame | None = None
    by_frequency: pd.DataFrame | None = None
    tracking: pd.DataFrame | None = None
    period_tx: pd.DataFrame | None = None
    alive: AliveMaps | None = None
    final: Fit | None = None
    gamma_gamma: Fit | None = None
    correlation: float = float("nan")
    notes: list = field(default_factory=list)
    segments: pd.DataFrame | None = None
    churn_horizon_days: int = 90
    left_out: dict = field(default_factory=dict)


def _holdout(days: ibis.Table, as_of: str, clv: ClvConfig, cal_end: dt.date, notes: list):
    """(comparison, by_frequency, tracking) of the holdout comparison, or three None when there are no
    repeat purchases before `cal_end`; what a reader needs to know is added to `notes`. `days`: the order lines
    or their `daily_net`."""
    unit = clv.time_unit
    calhold = numbers_by_customer_id(calibration_holdout_expr(days, as_of, clv.holdout_days, unit))
    if not (len(calhold) and (calhold["frequency_cal"] > 0).any()):
        notes.append(f"No repeat purchases before {cal_end}: the holdout comparison is skipped.")
        return None, None, None
    comparison, fits, preds = holdout_comparison(calhold, clv)
    by_freq = holdout_by_frequency(preds)
    if len(calhold) > clv.sample_customers:
        notes.append(f"The holdout comparison used a random sample of {clv.sample_customers:,} of "
                     f"{len(calhold):,} customers.")
    notes += [n for n in comparison["note"].dropna()]
    per_period = repeat_purchases_per_period(days, as_of, unit)
    tracking = tracking_table(per_period, fits, period_number(cal_end, unit))
    tracking.insert(1, "date", pd.Timestamp(EPOCH) + pd.to_timedelta(tracking["period"] * UNIT_DAYS[unit], unit="D"))
    return comparison, by_freq, tracking


def _final_fits(summary: pd.DataFrame, comparison: pd.DataFrame | None, clv: ClvConfig, notes: list):
    """(final purchase model, Gamma-Gamma), each None when it cannot be fitted: the first candidate of
    `model_ranking` that fits; what failed, what stands in, and boundary fits are added to `notes`."""
    final = None
    failed: list[str] = []
    for name in model_ranking(comparison, clv.model, clv.model_tolerance):
        try:
            final = fit_final(summary, name, clv)
        except FitFailed as exc:
            failed.append(str(exc).replace(" and is left out", ""))
            continue
        break
    if failed:
        notes.append("Final fit: " + " ".join(failed) + (
            f" {MODEL_NAMES[final.name]} is used instead." if final else
            " No purchase model could be fitted, so each customer's CLV is the margin on one average order and "
            "the purchase columns are empty."))
    if final is not None:
        notes += [n for n in (final.note, final.boundary) if n and n not in notes]
    try:
        gg = fit_gamma_gamma(summary, clv.penalizer, clv.max_evaluations, clv.fit_seconds)
        notes += [n for n in (gg.boundary,) if n]
    except FitFailed as exc:
        gg = None
        notes.append(f"{exc} Every customer's expected order value is the mean value of all purchases instead.")
    return final, gg


def _model_card(as_of: str, clv: ClvConfig, summary: pd.DataFrame, final: Fit | None, gg: Fit | None,
                comparison: pd.DataFrame | None, corr: float, cal_end: dt.date, notes: list) -> dict:
    """clv_model.json: the chosen model and its parameters, Gamma-Gamma's, the holdout metrics, the
    money assumptions, the horizons behind clv.parquet's columns and the notes."""
    return {
        "as_of": str(as_of), "time_unit": clv.time_unit, "model": final.name if final else None,
        "model_pinned": clv.model != "auto",
        "params": final.params if final else {}, "penalizer": final.penalizer if final else None,
        "gamma_gamma": gg.params if gg else {}, "gamma_gamma_penalizer": gg.penalizer if gg else None,
        "n_customers": len(summary), "n_repeat_customers": int((summary["frequency"] > 0).sum()),
        "calibration_end": str(cal_end), "holdout_days": clv.holdout_days,
        "holdout": ({m: {k: (None if pd.isna(v) else float(v)) for k, v in row.items()
                         if k in ("mae", "rmse", "predicted_total", "actual_total")}
                     for m, row in comparison.iterrows()} if comparison is not None else {}),
        "frequency_monetary_correlation": None if not np.isfinite(corr) else corr,
        "gross_margin": clv.gross_margin, "monthly_discount_rate": clv.monthly_discount_rate,
        # the horizons of clv.parquet's columns: clv over clv_months, exp_purchases and p_purchase
        # over purchase_window_days (both in days; model time in time_unit)
        "clv_months": clv.clv_months, "purchase_window_days": clv.purchase_window_days,
        "horizons_days": list(clv.horizons_days), "notes": notes,
    }


def run(processed_dir: str | Path, as_of: str, cfg: Config, con=None) -> ClvResult:
    """Stage 04: summary, holdout comparison, final fit, scores; writes clv.parquet + clv_model.json.

    Reads orders_clean (notebook 01) and, for CLV by segment, segments.parquet (notebook 03) when
    it is there. Returns everything notebook 04's page shows (`ClvResult`).
    """
    clv = cfg.clv
    con = con or engine.connect(cfg.engine)
    orders = artifacts.table(con, processed_dir, "orders_clean")
    notes: list[str] = []
    unit = clv.time_unit
    cal_end = as_date(as_of) - dt.timedelta(days=clv.holdout_days)
    # the lines grouped once per customer and day: every summary below is taken from it
    days = engine.cache(con, daily_net(orders, as_of))
    # the customers' ids stay in the engine: the fits, the figures and the tables take their numbers in customer_id
    # order, the scores are written where the customers are (`Scorer`), and the segments are joined there
    summary_t = engine.cache(con, rfm_summary_expr(days, as_of, unit))
    summary = numbers_by_customer_id(summary_t)

    comparison = by_freq = tracking = final = gg = None
    if not (summary["frequency"] > 0).any():
        notes.append("No customer has bought twice yet, so no purchase model can be fitted; each customer's CLV "
                     "is the margin on one average order, and the purchase columns are empty.")
    else:
        comparison, by_freq, tracking = _holdout(days, as_of, clv, cal_end, notes)
        final, gg = _final_fits(summary, comparison, clv, notes)
    aov = average_purchase_value(days, as_of, unit) if gg is None else float("nan")
    scored = engine.map_batches(con, summary_t, Scorer(final, gg, clv, aov), Scorer.SCHEMA)
    artifacts.write_table(con, processed_dir, "clv", scored.order_by("customer_id"))
    scores = numbers_by_customer_id(scored)
    by_horizon = expected_purchases_by_horizon(summary, final, clv.horizons_days, unit)
    corr = monetary_correlation(summary)
    if np.isfinite(corr) and abs(corr) > clv.correlation_warning:
        notes.append(f"Frequency and mean order value correlate ({corr:+.2f}, above |{clv.correlation_warning}|): "
                     "Gamma-Gamma assumes independence, so expected order values are less reliable.")

    band = clv_total_band(summary, final, gg, clv, aov, float(scores["clv"].sum()))
    model_json = _model_card(as_of, clv, summary, final, gg, comparison, corr, cal_end, notes)
    model_json["clv_total_band"] = list(band) if band is not None else None  # 5-95 %, parameter uncertainty
    artifacts.write(processed_dir, "clv_model", model_json)
    by_segment = clv_by_segment_table(con, processed_dir, scored)
    engine.release(con, [scored, summary_t])
    return ClvResult(
        as_of=str(as_of), settings=clv, currency=cfg.shop.currency, scores=scores, model_json=model_json,
        by_horizon=by_horizon, score_summary=score_distribution(scores_for_report(scores, by_horizon, clv)),
        deciles=decile_table(scores["clv"]), comparison=comparison, by_frequency=by_freq, tracking=tracking,
        period_tx=period_transactions(summary, final, clv.seed) if final else None,
        alive=alive_maps(final, scores, clv), final=final, gamma_gamma=gg, correlation=corr, notes=notes,
        segments=by_segment, churn_horizon_days=cfg.churn.horizon_days,
        left_out=no_positive_counts(orders, as_of, unit, artifacts.read_if_exists(processed_dir, "data_quality")))
