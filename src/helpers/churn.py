"""Churn risk (stage 05): who is drifting away, how sure the model is, and whether it beats recency.

Definition
----------
Customers of an online shop do not cancel, they stop buying. A customer is *active at a cut-off*
``c`` (a day, ``'YYYY-MM-DD'``) if they placed at least one purchase (an order line that is not a
return) on or before day ``c``. An active customer is *churned* if they place no purchase in the
``H`` days after it (``churn.horizon_days``), i.e. none dated from day ``c + 1`` 00:00 to day
``c + H`` 23:59:59. Returns are never purchases. A customer with no positive purchase by ``c`` (only
zero-price lines, or purchases cancelled by returns in the same period:
``customer_facts.no_positive_purchase``) is not scored at all: their churn risk is left empty (no row
in churn.parquet) and the page says how many and why, never a made-up 100 %.

Everything at a cut-off uses only order lines dated on or before day ``c`` (features, BG/NBD fit,
mix levels); the label uses only the ``H`` days after it.

Models compared (same customers, same labels)
---------------------------------------------
- ``bgnbd``: P(no purchase in the next H days) from a BG/NBD model fitted at the cut-off (no labels
  needed), see `p_no_purchase`;
- ``recency``: days since the last order, turned into a probability by an isotonic (monotone)
  regression fitted on the training window; it ranks by raw recency;
- ``model``: scikit-learn `HistGradientBoostingClassifier` on all features (including the two BG/NBD
  quantities) in a `Pipeline`, its probabilities calibrated by isotonic regression on held-back
  training customers.

Backtest (mirrors use): train on the cut-off ``as_of - 2H`` labelled by ``as_of - H``, test on the
cut-off ``as_of - H`` labelled by ``as_of``. Scoring at ``as_of`` retrains the chosen model on the
latest labelled window (cut-off ``as_of - H``).

Order lines are handled as Ibis expressions (DESIGN.md, "Engine"), and so are the customers: the backtest's two
labelled windows are kept by the engine (`labelled_window`), with each customer's features and baseline computed
where the rows are (`engine.map_batches`: on Spark's executors). The classifier is fitted on a sample of a window
(churn.max_train_rows rows, the engine picking them by id), the recency baseline on two columns of every row, and
the three are compared on a sample of the test window (churn.backtest_rows: the rows scoring then trains on, drawn
once; every customer below it). The customers at
as_of are scored the same way (`Scorer`) and churn.parquet is written by the engine; the page gets the columns it
reads without the customers' ids (`page_scores`), and the tiers by segment and the CLV at risk are joined by the
engine. The per-customer behaviour at a cut-off (`features_at`, `mix_levels`) is defined once in
``helpers.customer_facts``; the BG/NBD fit comes from ``helpers.clv``.

Use: ``res = run(processed_dir, as_of, cfg)`` writes churn.parquet and churn_model.json and returns a
`ChurnResult`; ``helpers.pages.churn`` turns it into every table, figure and sentence of notebook 05
(``page.metrics_table(res)``, ``page.plot_calibration(res)``, ...).
"""
from __future__ import annotations

import contextlib
import io
import math
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.inspection import permutation_importance
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder
from threadpoolctl import threadpool_limits

from helpers import artifacts, clv, customer_facts, engine, plots
from helpers.config import ChurnConfig, Config
from helpers.customer_facts import features_at, mix_levels, order_history, orders_before
from helpers.engine import connect, cutoff_end, release

MODELS = ("bgnbd", "recency", "model")
TIERS = ("low", "medium", "high")
CATEGORICAL = ("gender", "region")
BGNBD_COLUMNS = ("p_alive", "p_no_purchase")


# --------------------------------------------------------------------------- cut-offs and labels

def shift_days(day: str, days: int) -> str:
    """`day` moved by `days` days, as 'YYYY-MM-DD'."""
    return (datetime.fromisoformat(str(day)[:10]) + timedelta(days=days)).strftime("%Y-%m-%d")


def backtest_cutoffs(as_of: str, horizon_days: int) -> dict:
    """The backtest's cut-offs: train at as_of - 2H (labelled by as_of - H), test at as_of - H (labelled by as_of)."""
    return {"train_cutoff": shift_days(as_of, -2 * horizon_days), "test_cutoff": shift_days(as_of, -horizon_days),
            "as_of": str(as_of)[:10]}


def labels_at(lines: ir.Table, cutoff: str, horizon_days: int) -> ir.Table:
    """Churn label of every customer active at `cutoff`: columns customer_id, churned (bool).

    Active: a purchase line dated on or before day `cutoff`. Churned: no purchase line dated in
    (day `cutoff`, day `cutoff` + `horizon_days`], whole days. Return lines count for neither.
    """
    end = cutoff_end(cutoff)
    stop = end + timedelta(days=horizon_days)
    p = lines.filter(~lines.is_return, lines.order_date < ibis.literal(stop))
    before = p.order_date < ibis.literal(end)
    g = p.group_by("customer_id").aggregate(active=before.any(), bought=(~before).any())
    return g.filter(g.active).select("customer_id", churned=~g.bought)


# --------------------------------------------------------------------------- features (Ibis)


def feature_frame(lines: ir.Table, cutoff: str, levels: dict[str, list[str]], cfg: Config,
                  customers: ir.Table | None = None, bgnbd: bool = True, orders: ir.Table | None = None) -> pd.DataFrame:
    """`customer_facts.features_at` as a pandas frame (one row per customer, sorted by customer_id),
    plus the BG/NBD columns p_alive and p_no_purchase at the same cut-off when `bgnbd` is true.

    Floats are rounded to 6 decimals so that engine-side summation order cannot change a model.
    See `feature_frame_with_params` for the BG/NBD parameters of the same fit.
    """
    return feature_frame_with_params(lines, cutoff, levels, cfg, customers, bgnbd, orders=orders)[0]


def feature_frame_with_params(lines: ir.Table, cutoff: str, levels: dict[str, list[str]], cfg: Config,
                              customers: ir.Table | None = None, bgnbd: bool = True,
                              horizon_days: int | None = None,
                              orders: ir.Table | None = None) -> tuple[pd.DataFrame, dict[str, float]]:
    """(`feature_frame`, the BG/NBD parameters r, alpha, a, b fitted at `cutoff`; {} without `bgnbd`).

    Customers with no positive purchase at `cutoff` (`customer_facts.no_positive_purchase`) are left out:
    no model has a purchase of theirs to judge (the BG/NBD summary has no row of theirs), and a churn
    risk made up for them (once: P(no purchase) = 1) would be a number the data does not support.
    With `horizon_days`, the frame ends with the label churned (`labels_at`) of each customer. `orders`: see
    `customer_facts.features_at`.
    """
    summary, df = cutoff_rows(lines, cutoff, levels, cfg, customers, horizon_days, orders)
    label = df.pop("churned").astype(bool) if horizon_days is not None else None
    df = as_features(df)
    if bgnbd:
        try:
            with quiet():
                base, params = bgnbd_baseline(summary, cfg)
        except Exception as exc:  # noqa: BLE001 - a purchase model that cannot be fitted must not stop the stage
            # The columns stay (empty), so the artifact keeps its layout; all-empty columns are no model feature.
            df, params = df.assign(p_alive=np.nan, p_no_purchase=np.nan), {BGNBD_FAILED: one_line(exc)}
        else:
            # every customer left has a positive purchase period, so a row in the BG/NBD summary
            df = df.assign(**{c: base.loc[df.index, c].to_numpy() for c in BGNBD_COLUMNS})
    else:
        params = {}
    df = df.reset_index(drop=True)
    if label is not None:
        df["churned"] = label.to_numpy()
    return df, params


def categories_as_text(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with its categorical feature columns as `as_features` gives them (text, None where missing), as they
    come back from the engine as pandas' string columns."""
    return df.assign(**{c: df[c].astype("object").where(df[c].notna(), None) for c in CATEGORICAL if c in df.columns})


def as_features(df: pd.DataFrame) -> pd.DataFrame:
    """`cutoff_expr`'s feature columns as the models take them: categorical columns as text (None where missing),
    every other column but customer_id and churned a float rounded to 6 decimals (so that engine-side summation
    order cannot change a model)."""
    df = df.copy()
    for col in df.columns:
        if col in CATEGORICAL:
            df[col] = df[col].astype("object").where(df[col].notna(), None)
        elif col not in ("customer_id", "churned"):
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64").round(6)
    return df


SUMMARY_KEYS = ("customer_id", "frequency", "recency", "T", "is_customer")  # cutoff_expr's columns that are no feature


def cutoff_expr(lines: ir.Table, cutoff: str, levels: dict[str, list[str]], cfg: Config,
                customers: ir.Table | None = None, horizon_days: int | None = None,
                orders: ir.Table | None = None) -> ir.Table:
    """Everything the models need at `cutoff`, as one Ibis expression: one row per customer with a positive
    purchase (`customer_facts.rfm_summary_expr`'s customer_id, frequency, recency, T), is_customer (true where
    `features_at` has a row, else null) and the `features_at` columns, with churned from `labels_at` when
    `horizon_days` is given. Parameters: see `feature_frame_with_params`."""
    feats = features_at(lines, cutoff, levels, customers, orders)
    columns = [c for c in feats.columns if c != "customer_id"]
    if horizon_days is not None:
        feats = feats.join(labels_at(lines, cutoff, horizon_days), "customer_id")
        columns.append("churned")
    feats = feats.mutate(is_customer=ibis.literal(True))
    summary = customer_facts.rfm_summary_expr(lines, cutoff, cfg.clv.time_unit)
    j = summary.left_join(feats, summary.customer_id == feats.customer_id)
    return j.select(customer_id=summary.customer_id.cast("string"), frequency=summary.frequency,
                    recency=summary.recency, T=summary["T"], is_customer=feats.is_customer,
                    **{c: feats[c] for c in columns})


def cutoff_rows(lines: ir.Table, cutoff: str, levels: dict[str, list[str]], cfg: Config,
                customers: ir.Table | None = None, horizon_days: int | None = None,
                orders: ir.Table | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`cutoff_expr` collected, sorted by customer_id: (the lifetimes summary of every customer with a positive
    purchase, `customer_facts.rfm_summary`; the `features_at` rows of those among them who are customers, with
    churned when `horizon_days` is given).

    The second frame's index points into the first. One query rather than one per piece: at a million
    customers each piece's string ids cost more than its arithmetic.
    """
    both = engine.to_pandas(cutoff_expr(lines, cutoff, levels, cfg, customers, horizon_days, orders))
    # sorted here, not by the engine: its sort of every column kept far more memory after the query
    both = both.sort_values("customer_id", kind="stable", ignore_index=True)
    rows = both["is_customer"].notna().to_numpy()
    columns = [c for c in both.columns if c not in SUMMARY_KEYS]
    return both[["customer_id", "frequency", "recency", "T"]], both.loc[rows, ["customer_id", *columns]]


BGNBD_FAILED = "not fitted"  # key of feature_frame_with_params' parameters when the BG/NBD fit failed


@contextlib.contextmanager
def quiet():
    """Keep a library's console output (optimiser dumps, warnings) out of the report."""
    with warnings.catch_warnings(), np.errstate(all="ignore"), \
            contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def one_line(exc: BaseException, limit: int = 160) -> str:
    """An exception as a short phrase for a report sentence: its message's first line, or its type."""
    text = str(exc).strip().splitlines()[0].strip() if str(exc).strip() else type(exc).__name__
    text = text.rstrip(".")
    return text if len(text) <= limit else text[:limit - 3] + "..."


# --------------------------------------------------------------------------- BG/NBD baseline

def bgnbd_baseline(summary: pd.DataFrame, cfg: Config) -> tuple[pd.DataFrame, dict[str, float]]:
    """BG/NBD baseline on `summary`, the lifetimes summary at a cut-off (``customer_facts.rfm_summary``:
    frequency, recency, T): (frame of p_alive, p_no_purchase in the next churn.horizon_days days, with
    `summary`'s index; the fitted parameters r, alpha, a, b rounded to 6 decimals).

    Reuses the purchase model of stage 04 unchanged: the per-customer summary at the cut-off (purchase
    periods in ``clv.time_unit``, returns netted), the purchase model stage 04 prefers fitted on compressed rows
    (``clv.fit_first_that_fits``: ``clv.model`` when pinned, else MBG/NBD, which, unlike BG/NBD, lets a
    one-time buyer drop out; the formula below holds for both), and ``customer_facts.probability_of_purchase``.

    Derivation of P(no purchase in the next t) (Fader, Hardie & Lee 2005): a customer is dead (then
    no purchase for sure) or alive at T. While alive, purchases are Poisson with rate lambda, so
    P(none in t | lambda, alive) = exp(-lambda t); dropping out happens only right after a
    purchase, so it cannot happen inside a purchase-free window. Given alive, the history's
    likelihood is proportional to lambda^x exp(-lambda T), so lambda's posterior is
    Gamma(r + x, alpha + T) and E[exp(-lambda t)] = ((alpha + T) / (alpha + T + t))^(r + x). Hence

        P(no purchase in t) = (1 - p_alive) + p_alive * ((alpha + T) / (alpha + T + t))^(r + x)
                            = 1 - customer_facts.probability_of_purchase(fit, t, x, t_x, T)

    with x = repeat purchase periods, t_x their recency, T the customer's age, p_alive lifetimes'
    ``conditional_probability_alive``; t = H days in the model's time unit. The scores are computed
    on the unique (x, t_x, T) rows and mapped back to customers. The model is fitted on ``clv.fit_sample``'s rows,
    as stage 04's final fit is (above ``clv.sample_customers`` customers, a fixed random sample); every customer
    is scored.
    """
    fit = fit_bgnbd(summary, cfg)
    return bgnbd_columns(fit, summary, cfg), {k: round(v, 6) for k, v in fit.params.items()}


def fit_bgnbd(summary: pd.DataFrame, cfg: Config) -> customer_facts.Fit:
    """`bgnbd_baseline`'s fit: stage 04's preferred purchase model on `summary` (frequency, recency, T of every
    customer with a positive purchase, sorted by customer_id), on ``clv.fit_sample``'s rows compressed."""
    sample = clv.fit_sample(summary, cfg.clv)
    return clv.fit_first_that_fits(customer_facts.compress(sample)[0], cfg.clv)


def bgnbd_columns(fit: customer_facts.Fit, summary: pd.DataFrame, cfg: Config) -> pd.DataFrame:
    """p_alive and p_no_purchase in the next churn.horizon_days days of `fit` for each row of `summary`
    (frequency, recency, T), rounded to 6 decimals, with `summary`'s index: computed on the unique rows, each row's
    value its own whatever rows come with it (`Scorer` computes them a batch at a time)."""
    unique, inverse = customer_facts.compress(summary)
    t = cfg.churn.horizon_days / customer_facts.UNIT_DAYS[cfg.clv.time_unit]
    f, r, T = (unique[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    with np.errstate(all="ignore"):
        p_alive = np.clip(customer_facts.probability_alive(fit, f, r, T), 0.0, 1.0)
        p_none = 1.0 - customer_facts.probability_of_purchase(fit, t, f, r, T)
    return pd.DataFrame({"p_alive": p_alive[inverse].round(6), "p_no_purchase": p_none[inverse].round(6)},
                        index=summary.index)


def window_features(rows: pd.DataFrame, bgnbd: customer_facts.Fit | None, cfg: Config) -> pd.DataFrame:
    """`cutoff_expr`'s rows (a batch of them, or all) as the models take them: customer_id, the features
    (`as_features`) and the purchase-model baseline's p_alive and p_no_purchase (`bgnbd_columns` of `bgnbd`, empty
    when it could not be fitted), then churned when the rows carry a label. Each row's values are its own."""
    label = rows["churned"].astype(bool).to_numpy() if "churned" in rows.columns else None
    now = as_features(rows.drop(columns=[c for c in (*SUMMARY_KEYS, "churned") if c in rows.columns
                                         and c != "customer_id"]))
    if bgnbd is None:
        now = now.assign(p_alive=np.nan, p_no_purchase=np.nan)
    elif len(now):
        base = bgnbd_columns(bgnbd, rows[["frequency", "recency", "T"]], cfg)
        now = now.assign(**{c: base[c].to_numpy() for c in BGNBD_COLUMNS})
    else:
        now = now.assign(p_alive=pd.Series(dtype=float), p_no_purchase=pd.Series(dtype=float))
    return now if label is None else now.assign(churned=label)


@dataclass
class _WindowRows:
    """`window_features` a batch at a time (`engine.map_batches`), into `schema`."""

    bgnbd: customer_facts.Fit | None
    cfg: Config
    schema: pa.Schema

    def __call__(self, rows: pd.DataFrame) -> pd.DataFrame:
        with quiet():
            return window_features(rows, self.bgnbd, self.cfg)[self.schema.names]


@dataclass
class LabelledWindow:
    """A labelled cut-off window, kept by the engine (`labelled_window`): one row per customer with a positive
    purchase at the cut-off, with `labelled_frame`'s columns (customer_id, the features, p_alive, p_no_purchase,
    churned). Only what a model takes reaches pandas: `numbers` (columns of every row, without ids) and `sample`
    (the rows `_sample` would draw from the whole frame), both in customer_id order, as the frame has them.
    `release` it when done."""

    rows: ir.Table
    n: int
    missing_bgnbd: int = 0  # rows without the purchase-model baseline (it could not be fitted at the cut-off)
    _ids: pa.ChunkedArray | None = field(default=None, repr=False)  # the ids in customer_id order, once drawn from
    _drawn: dict = field(default_factory=dict, repr=False)  # (rows, seed) -> `sample`'s kept frame: the backtest
    # scores the test window's sample that scoring then trains on (churn.backtest_rows = max_train_rows): drawn once

    def numbers(self, columns: list[str]) -> pd.DataFrame:
        return engine.to_pandas(self.rows.order_by("customer_id").select(*columns))

    def _frame(self, rows: ir.Table) -> pd.DataFrame:
        return categories_as_text(engine.to_pandas(rows.order_by("customer_id")))

    def sample(self, rows: int, seed: int, keep: bool = False) -> pd.DataFrame:
        """`_sample(labelled_frame(...), rows, seed)`: every row up to `rows`, else the same random draw of
        positions in customer_id order, whose rows the engine picks by their ids (only the ids reach pandas).
        A draw made with `keep` is handed to the next call with the same rows and seed without asking the engine,
        and then forgotten (callers do not change it)."""
        if (rows, seed) in self._drawn:
            return self._drawn[rows, seed] if keep else self._drawn.pop((rows, seed))
        drawn = self._draw(rows, seed)
        if keep:
            self._drawn[rows, seed] = drawn
        return drawn

    def _draw(self, rows: int, seed: int) -> pd.DataFrame:
        if self.n <= rows:
            return self._frame(self.rows)
        at = pd.RangeIndex(self.n).to_series().sample(n=rows, random_state=seed).sort_index().to_numpy()
        if self._ids is None:
            self._ids = self.rows.order_by("customer_id").select("customer_id").to_pyarrow()["customer_id"]
        picked = engine.memtable(pa.table({"customer_id": self._ids.take(pa.array(at))}))
        out = self._frame(self.rows.semi_join(picked, "customer_id"))
        out.index = at
        return out

    def has_bgnbd(self) -> bool:
        """Whether the purchase-model baseline scored every row (it was fitted at the cut-off)."""
        return self.missing_bgnbd == 0


def labelled_window(con, lines: ir.Table, cutoff: str, levels: dict[str, list[str]], cfg: Config,
                    customers: ir.Table | None = None, history: ir.Table | None = None,
                    bgnbd: bool = True) -> LabelledWindow:
    """`labelled_frame` kept by the engine: `cutoff_expr` with churned, the purchase model fitted on the summary's
    numbers alone (`bgnbd_at`; not with ``bgnbd=False``: its columns are then empty), and each row's features and
    baseline computed where the rows are (`engine.map_batches`: on Spark's executors)."""
    orders = None if history is None else orders_before(history, cutoff)
    # computed once: the purchase model fits on its summary columns (every row), the features are its customers'
    expr = engine.cache(con, cutoff_expr(lines, cutoff, levels, cfg, customers, cfg.churn.horizon_days, orders))
    fit = bgnbd_at(expr, cfg)[0] if bgnbd else None
    features = [c for c in expr.columns if c not in SUMMARY_KEYS and c != "churned"]
    schema = pa.schema([("customer_id", pa.string()),
                        *[(c, pa.string() if c in CATEGORICAL else pa.float64()) for c in features],
                        *[(c, pa.float64()) for c in BGNBD_COLUMNS], ("churned", pa.bool_())])
    rows = engine.map_batches(con, expr.filter(expr.is_customer.notnull()), _WindowRows(fit, cfg, schema), schema)
    counts = rows.aggregate(n=rows.count(), missing=rows.p_no_purchase.isnull().sum()).to_pyarrow().to_pylist()[0]
    engine.release(con, [expr])  # after the count: Spark has computed the rows (and kept them) by then
    return LabelledWindow(rows, int(counts["n"]), int(counts["missing"] or 0))


# --------------------------------------------------------------------------- models (pandas)

def model_columns(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(numeric, categorical) feature columns of a feature frame (everything but customer_id / churned)."""
    skip = {"customer_id", "churned"}
    # A column without a single value (an optional column this shop lacks, a failed baseline) is no
    # feature: gradient boosting's binning fails on it ("window shape cannot be larger than input").
    empty = {c for c in frame.columns if frame[c].isna().all()}
    cat = [c for c in CATEGORICAL if c in frame.columns and c not in empty]
    num = [c for c in frame.columns if c not in skip and c not in cat and c not in empty]
    return num, cat


def build_model(numeric: list[str], categorical: list[str], cfg: ChurnConfig):
    """Pipeline: categorical columns ordinal-encoded (unknown -> missing), then gradient boosting
    with native categorical splits and native missing-value handling."""
    enc = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan)
    prep = ColumnTransformer([("cat", enc, categorical), ("num", "passthrough", numeric)],
                             verbose_feature_names_out=False)
    hgb = HistGradientBoostingClassifier(
        max_iter=cfg.max_iter, learning_rate=cfg.learning_rate, max_leaf_nodes=cfg.max_leaf_nodes,
        categorical_features=list(range(len(categorical))) or None, early_stopping=True,
        validation_fraction=0.1, random_state=cfg.random_state)
    return Pipeline([("prepare", prep), ("boost", hgb)])


def _sample(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    return frame if len(frame) <= rows else frame.sample(n=rows, random_state=seed).sort_index()


def fit_model(train: pd.DataFrame, cfg: ChurnConfig):
    """Fit the calibrated gradient-boosting model on a labelled feature frame (column churned).

    The pipeline trains on (at most churn.max_train_rows) customers minus a stratified
    churn.calibration_share, on which an isotonic calibration maps its scores to probabilities.
    """
    data = _sample(train, cfg.max_train_rows, cfg.random_state)
    numeric, categorical = model_columns(data)
    X, y = data[categorical + numeric], data["churned"].astype(int).to_numpy()
    X_fit, X_cal, y_fit, y_cal = train_test_split(X, y, test_size=cfg.calibration_share, stratify=y,
                                                  random_state=cfg.random_state)
    pipe = build_model(numeric, categorical, cfg).fit(X_fit, y_fit)
    calibrated = CalibratedClassifierCV(FrozenEstimator(pipe), method="isotonic").fit(X_cal, y_cal)
    calibrated.feature_columns_ = categorical + numeric
    return calibrated


def fit_model_or_none(train: pd.DataFrame, cfg: ChurnConfig):
    """(`fit_model`, None), or (None, the reason) when it cannot be fitted on this shop's data (one
    class in the calibration split, too few customers...): the page then shows the baselines."""
    try:
        with quiet():
            return fit_model(train, cfg), None
    except Exception as exc:  # noqa: BLE001 - the classifier's failure stays in its own section
        return None, one_line(exc)


MODEL_FAILED = ("The gradient-boosting model could not be fitted on this shop's data ({reason}); the page shows "
                "the baselines instead.")
BGNBD_FAILED_NOTE = ("The purchase-model baseline could not be fitted ({reason}); its columns are empty and the recency "
                     "baseline stands in for it.")


def predict_model(model, frame: pd.DataFrame) -> np.ndarray:
    """Calibrated churn probability of each row of a feature frame."""
    return model.predict_proba(frame[model.feature_columns_])[:, 1]


def fit_recency(train: pd.DataFrame):
    """Recency-only baseline: isotonic regression of churned on recency_days (more days, more churn)."""
    return IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip").fit(
        train["recency_days"].to_numpy(), train["churned"].astype(float).to_numpy())


# --------------------------------------------------------------------------- metrics

def top_decile(y, score) -> tuple[float, float]:
    """(lift, captured) in the top 10 % by `score`: churn rate there / overall, and share of all
    churners found there. Ties at the cut are broken by row order (frames are sorted by customer)."""
    y = np.asarray(y, dtype=float)
    order = np.argsort(-np.asarray(score, dtype=float), kind="stable")
    k = max(1, int(math.ceil(0.1 * len(y))))
    top = y[order[:k]]
    rate = y.mean()
    return (float(top.mean() / rate) if rate > 0 else float("nan"),
            float(top.sum() / y.sum()) if y.sum() > 0 else float("nan"))


def model_metrics(y, probability, score=None) -> dict:
    """ROC-AUC, PR-AUC (average precision), Brier score, top-decile lift and captured churners.

    Ranking metrics use `score` when given (the recency baseline ranks by raw days), else the
    probability; the Brier score always uses the probability."""
    y = np.asarray(y, dtype=int)
    prob = np.asarray(probability, dtype=float)
    rank = prob if score is None else np.asarray(score, dtype=float)
    lift, captured = top_decile(y, rank)
    return {"roc_auc": float(roc_auc_score(y, rank)), "pr_auc": float(average_precision_score(y, rank)),
            "brier": float(brier_score_loss(y, prob)), "top_decile_lift": lift,
            "top_decile_captured": captured}


# --------------------------------------------------------------------------- backtest and scoring

@dataclass
class ChurnResult:
    """What stage 05 computed: backtest, importance, scores and the model card, and what its page shows
    of the earlier stages (segments of 03, CLV of 04). ``helpers.pages.churn`` draws the page from it."""

    as_of: str
    horizon_days: int
    cutoffs: dict
    backtest_ok: bool
    backtest_note: str
    chosen_model: str
    metrics: pd.DataFrame  # index: model; roc_auc, pr_auc, brier, top_decile_lift, top_decile_captured
    test_predictions: pd.DataFrame  # churned, p_model, p_recency, p_bgnbd of the test cut-off's customers, no ids
    importance: pd.DataFrame  # index: feature; importance_mean, importance_std (ROC-AUC drop)
    # what the page reads of the scored customers (`page_scores`): churn_probability, risk_tier, p_alive_baseline
    # and the tier reasons' features, in customer_id order; their ids stay in churn.parquet, written by the engine
    scored: pd.DataFrame
    card: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)  # seconds per step (benchmark only; not saved)
    tiers_by_segment: pd.DataFrame | None = None  # tiers_by_segment_table: churn.parquet and segments.parquet (03)
    failures: list[str] = field(default_factory=list)  # one sentence per model that could not be fitted
    # (predicted CLV of the high-risk customers, of all customers), customer_facts.clv_at_risk on
    # clv.parquet (notebook 04), if made; clv_months: its horizon (clv_model.json)
    clv_at_risk: tuple[float, float] | None = None
    clv_months: int | None = None
    currency: str = "EUR"
    # how many customers have no positive purchase at as_of, by reason (customer_facts.no_positive_counts): not
    # scored, so no row in `scored`. time_unit: the purchase period (clv.time_unit)
    left_out: dict = field(default_factory=dict)
    time_unit: str = "day"


@dataclass
class BacktestOutcome:
    """One step's outcome: the backtest (or why there is none) and the model it chose."""

    metrics: pd.DataFrame  # unrounded, as model_card wants them
    predictions: pd.DataFrame
    chosen: str
    note: str
    test: LabelledWindow | None = None  # the labelled test window, on which scoring retrains
    importance: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["importance_mean", "importance_std"]).rename_axis("feature"))
    n_train: int = 0
    n_test: int = 0


class _Timer:
    """Seconds per step (`ChurnResult.timings`, for scripts/bench_churn.py)."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.timings[step] = round(now - self._last, 2)
        self._last = now


def _enough(n: int, churned: int, cfg: ChurnConfig) -> str | None:
    if n < cfg.min_customers:
        return f"only {n:,} customers who had bought (need {cfg.min_customers:,})"
    if min(churned, n - churned) < cfg.min_class_size:
        return f"only {min(churned, n - churned):,} customers in the smaller class (need {cfg.min_class_size:,})"
    return None


def labelled_frame(lines, cutoff, levels, cfg, customers=None, bgnbd=True, history=None) -> pd.DataFrame:
    """Feature frame at `cutoff` with the column churned (next churn.horizon_days days); `history`: the run's
    `customer_facts.order_history`, which the frame's orders are cut from. The stage keeps its windows in the engine
    (`labelled_window`); this frame, all in pandas, is what they are checked against."""
    orders = None if history is None else orders_before(history, cutoff)
    return feature_frame_with_params(lines, cutoff, levels, cfg, customers, bgnbd, cfg.churn.horizon_days, orders)[0]


def permutation_table(model, frame: pd.DataFrame, cfg: ChurnConfig) -> pd.DataFrame:
    """Permutation importance on (a sample of) the test customers: mean and sd drop in ROC-AUC when a
    feature's values are shuffled, largest first; index: readable feature name."""
    data = _sample(frame, cfg.importance_rows, cfg.random_state)
    cols = model.feature_columns_
    # Shuffled on the encoded matrix (one column per feature, same order) and scored by the boosted
    # model itself: the isotonic calibration is monotone, so the ranking - and ROC-AUC - barely moves,
    # and skipping the pandas round trip per shuffle is several times faster.
    pipe = model.estimator.estimator
    encoded = pipe[:-1].transform(data[cols])
    res = permutation_importance(pipe[-1], np.asarray(encoded, dtype=float), data["churned"].astype(int),
                                 scoring="roc_auc", n_repeats=cfg.importance_repeats, random_state=cfg.random_state)
    out = pd.DataFrame({"feature": cols, "importance_mean": res.importances_mean, "importance_std": res.importances_std})
    out = out.sort_values(["importance_mean", "feature"], ascending=[False, True]).round(4)
    return out.set_index("feature")


def backtest(train: LabelledWindow, test: LabelledWindow, cfg: ChurnConfig):
    """Fit on the training window, evaluate the three models on the test window.

    The classifier is fitted on `train`'s sample (churn.max_train_rows), the recency baseline on its recency and
    label; the three are scored on the test window's sample (churn.backtest_rows; every customer below it, or when
    the sample lacks churned or retained customers), the rows that scoring then trains on when the two settings
    are equal. Returns (metrics frame indexed by model,
    test predictions: churned, p_model, p_recency, p_bgnbd in customer_id order, without ids; fitted model, why it
    could not be fitted); a model that cannot be fitted is None, left out of the metrics, and `why` says so."""
    model, why = fit_model_or_none(train.sample(cfg.max_train_rows, cfg.random_state), cfg)
    recency = fit_recency(train.numbers(["recency_days", "churned"]))
    has_bgnbd = test.has_bgnbd()
    rows = test.sample(cfg.backtest_rows, cfg.random_state, keep=True)
    if rows["churned"].nunique() < 2:  # a sample too small to rank churners (a tiny setting): every customer
        rows = test.sample(test.n, cfg.random_state)
    pred = _Predictions(model, recency, has_bgnbd)(rows).drop(columns="customer_id").reset_index(drop=True)
    return backtest_metrics(pred, has_bgnbd, model is not None), pred.drop(columns="recency_days"), model, why


def backtest_metrics(pred: pd.DataFrame, has_bgnbd: bool, has_model: bool) -> pd.DataFrame:
    """`model_metrics` of each model scored on the test window (`pred`: churned, p_model, p_recency, p_bgnbd,
    recency_days), indexed by model: the purchase-model baseline when it scored every customer, recency, and the
    classifier when it was fitted."""
    y = pred["churned"].astype(int).to_numpy()
    rows = {}
    if has_bgnbd:
        rows["bgnbd"] = model_metrics(y, pred["p_bgnbd"])
    rows["recency"] = model_metrics(y, pred["p_recency"], score=pred["recency_days"])
    if has_model:
        rows["model"] = model_metrics(y, pred["p_model"])
    metrics = pd.DataFrame(rows).T
    metrics.index.name = "model"
    return metrics


@dataclass
class _Predictions:
    """The backtest's three probabilities for a batch of the test window's rows (`backtest`)."""

    model: object | None
    recency: object
    has_bgnbd: bool
    SCHEMA = pa.schema([("customer_id", pa.string()), ("churned", pa.bool_()), ("p_model", pa.float64()),
                        ("p_recency", pa.float64()), ("p_bgnbd", pa.float64()), ("recency_days", pa.float64())])

    def __call__(self, rows: pd.DataFrame) -> pd.DataFrame:
        with quiet():
            rows, n = categories_as_text(rows), len(rows)
            return pd.DataFrame({
                "customer_id": rows["customer_id"].astype(str).to_numpy(),
                "churned": rows["churned"].astype(bool).to_numpy(),
                "p_model": (predict_model(self.model, rows) if self.model is not None and n else np.full(n, np.nan)),
                "p_recency": self.recency.predict(rows["recency_days"].to_numpy()) if n else np.zeros(0),
                "p_bgnbd": rows["p_no_purchase"].to_numpy(dtype=float) if self.has_bgnbd else np.full(n, np.nan),
                "recency_days": rows["recency_days"].to_numpy(dtype=float)})


def choose_model(metrics: pd.DataFrame) -> str:
    """The supervised model if its test ROC-AUC is at least the best baseline's, else the best baseline."""
    best_baseline = metrics.drop(index="model", errors="ignore")["roc_auc"].idxmax()
    if "model" in metrics.index and metrics.loc["model", "roc_auc"] >= metrics.loc[best_baseline, "roc_auc"]:
        return "model"
    return str(best_baseline)


def assign_tiers(probability, thresholds) -> pd.Categorical:
    """low below thresholds[0], medium from thresholds[0], high from thresholds[1]."""
    lo, hi = thresholds
    p = np.asarray(probability, dtype=float)
    codes = np.where(p >= hi, 2, np.where(p >= lo, 1, 0))
    return pd.Categorical.from_codes(codes, categories=list(TIERS), ordered=True)


def history_problem(lines: ir.Table, cut: dict, ch: ChurnConfig) -> str | None:
    """Why the backtest cannot run (too few customers or churners at a cut-off), or None. Checked on
    the labels alone, before any feature or model work."""
    problem = None
    for which in ("train", "test"):
        lab = labels_at(lines, cut[f"{which}_cutoff"], ch.horizon_days)
        counts = lab.aggregate(n=lab.count(), churned=lab.churned.sum()).to_pandas().iloc[0]
        why = _enough(int(counts["n"]), int(0 if pd.isna(counts["churned"]) else counts["churned"]), ch)
        if why and problem is None:
            problem = f"at the {which} cut-off {cut[f'{which}_cutoff']}: {why}"
    return problem


def run_backtest(con, window, cut: dict, ch: ChurnConfig, failures: list[str], timer: _Timer) -> BacktestOutcome:
    """The backtest of the three models, their permutation importance and the model chosen.

    `window(cutoff)` gives the labelled window at a cut-off (`labelled_window`); a model that cannot be fitted
    adds its sentence to `failures`. The training window is released here, the test window is kept on the outcome
    (scoring retrains on it)."""
    train, test = window(cut["train_cutoff"]), window(cut["test_cutoff"])
    timer.lap("features_backtest")
    metrics, pred, bt_model, why = backtest(train, test, ch)
    engine.release(con, [train.rows])
    timer.lap("backtest_models")
    tested = (f"the {test.n:,}" if len(pred) == test.n
              else f"a random sample of {len(pred):,} of the {test.n:,} customers")
    note = (f"Backtest: trained on the {train.n:,} customers who had bought by {cut['train_cutoff']}, "
            f"tested on {tested} who had bought by {cut['test_cutoff']}.")
    out = BacktestOutcome(metrics=metrics, predictions=pred, chosen=choose_model(metrics), note=note, test=test,
                          n_train=train.n, n_test=test.n)
    if bt_model is None:
        failures.append(MODEL_FAILED.format(reason=why))
    else:
        out.importance = permutation_table(bt_model, test.sample(ch.importance_rows, ch.random_state), ch)
    timer.lap("importance")
    return out


def no_backtest(window, cut: dict, problem: str, bgnbd_failed: bool) -> BacktestOutcome:
    """Not enough history: the purchase-model baseline scores, or the recency baseline (fitted on the
    test window) when the purchase model could not be fitted either."""
    metrics = pd.DataFrame(columns=["roc_auc", "pr_auc", "brier", "top_decile_lift", "top_decile_captured"])
    metrics.index.name = "model"
    pred = pd.DataFrame(columns=["churned", "p_model", "p_recency", "p_bgnbd"])
    if bgnbd_failed:
        note = (f"Not enough history for the backtest ({problem}); churn probability is the recency baseline, "
                f"fitted on the customers who had bought by {cut['test_cutoff']}.")
        return BacktestOutcome(metrics=metrics, predictions=pred, chosen="recency", note=note,
                               test=window(cut["test_cutoff"], bgnbd=False))
    note = f"Not enough history for the backtest ({problem}); churn probability is the purchase-model baseline."
    return BacktestOutcome(metrics=metrics, predictions=pred, chosen="bgnbd", note=note)


SCORED_COLUMNS = artifacts.ARTIFACTS["churn"].columns
REASON_FEATURES = 8  # the page explains each tier by how it differs on at most this many of the top features
REASON_FALLBACK = ("recency_days", "orders", "tenure_days")


def reason_features(importance: pd.DataFrame, features, top: int = REASON_FEATURES) -> list[str]:
    """The numeric features, most important first (`permutation_table`'s order), that the page's tier reasons
    compare tiers on: at most `top` of them; without an importance table, recency, orders and tenure."""
    chosen = [f for f in importance.index if f in features and f not in CATEGORICAL][:top]
    return chosen or [f for f in REASON_FALLBACK if f in features]


@dataclass
class Scorer:
    """The scoring of the customers at as_of, one batch of `cutoff_expr` rows at a time (`engine.map_batches`: on
    Spark's executors), into churn.parquet's columns plus the `keep` feature columns the page reads.

    `chosen`: the model that scores (`MODELS`); `model`: `fit_model`'s classifier when that is "model";
    `recency`: `fit_recency`'s regression when that is "recency"; `bgnbd`: the purchase model fitted at as_of
    (`fit_bgnbd`), None when it could not be fitted (its columns are then empty). Each row's scores depend on
    that row only, so the batches may be cut anywhere. Every batch is checked against churn.parquet's
    declaration where it is scored."""

    chosen: str
    model: object | None
    recency: object | None
    bgnbd: customer_facts.Fit | None
    cfg: Config
    keep: list[str]

    def schema(self) -> pa.Schema:
        return pa.schema([("customer_id", pa.string()), ("churn_probability", pa.float64()),
                          ("risk_tier", pa.string()), ("p_alive_baseline", pa.float64()),
                          ("p_no_purchase_bgnbd", pa.float64()), *[(c, pa.float64()) for c in self.keep]])

    def __call__(self, rows: pd.DataFrame) -> pd.DataFrame:
        with quiet():  # the libraries' warnings stay out of the page (and of the executors' logs)
            return self._score(rows)

    def _score(self, rows: pd.DataFrame) -> pd.DataFrame:
        now = window_features(rows, self.bgnbd, self.cfg)
        if not len(now):
            probability = np.zeros(0)
        elif self.chosen == "model":
            probability = predict_model(self.model, now)
        elif self.chosen == "recency":
            probability = self.recency.predict(now["recency_days"].to_numpy())
        else:
            probability = now["p_no_purchase"].to_numpy()
        probability = np.asarray(probability, dtype=float).round(6)
        out = pd.DataFrame({"customer_id": now["customer_id"].astype(str).to_numpy(), "churn_probability": probability,
                            "risk_tier": assign_tiers(probability, self.cfg.churn.tier_thresholds).astype(str),
                            "p_alive_baseline": now["p_alive"].to_numpy(dtype=float),
                            "p_no_purchase_bgnbd": now["p_no_purchase"].to_numpy(dtype=float),
                            **{c: now[c].to_numpy(dtype=float) for c in self.keep}})
        artifacts.check("churn", out[SCORED_COLUMNS])
        return out


def make_scorer(bt: BacktestOutcome, cfg: Config, failures: list[str], bgnbd: customer_facts.Fit | None,
                keep: list[str]) -> tuple[Scorer, str]:
    """(the `Scorer` of the customers at as_of, the model that scores them). The chosen model is retrained on the
    latest labelled window (the test window); if it cannot be, the best baseline scores instead and `failures`
    says why; the purchase-model baseline gives way to recency when it could not be fitted at as_of."""
    chosen, model, ch = bt.chosen, None, cfg.churn
    if chosen == "model":
        model, why = fit_model_or_none(bt.test.sample(ch.max_train_rows, ch.random_state), ch)
        if model is None:
            failures.append(MODEL_FAILED.format(reason=why))
            chosen = choose_model(bt.metrics.drop(index="model"))
    if chosen == "bgnbd" and bgnbd is None:  # chosen on the backtest, not fitted at as_of
        chosen = "recency"
    recency = fit_recency(bt.test.numbers(["recency_days", "churned"])) if chosen == "recency" else None
    return Scorer(chosen, model, recency, bgnbd, cfg, keep), chosen


def bgnbd_at(rows: ir.Table, cfg: Config) -> tuple[customer_facts.Fit | None, dict]:
    """(`fit_bgnbd` on a summary at a cut-off (`customer_facts.rfm_summary_expr`: the rows of `cutoff_expr`), its
    parameters rounded to 6 decimals), or (None, {BGNBD_FAILED: why}) when it cannot be fitted. Only the summary's
    numbers reach pandas, in customer_id order (the order `clv.fit_sample` draws from), not the customers' ids."""
    summary = engine.to_pandas(rows.order_by("customer_id").select("frequency", "recency", "T"))
    try:
        with quiet():
            fit = fit_bgnbd(summary, cfg)
    except Exception as exc:  # noqa: BLE001 - a purchase model that cannot be fitted must not stop the stage
        return None, {BGNBD_FAILED: one_line(exc)}
    return fit, {k: round(v, 6) for k, v in fit.params.items()}


def page_scores(scored: ir.Table, keep: list[str]) -> pd.DataFrame:
    """What the page reads of the scored customers, in customer_id order and without their ids: churn_probability,
    risk_tier (ordered categories `TIERS`), p_alive_baseline and the `keep` features."""
    df = engine.to_pandas(scored.order_by("customer_id").select("churn_probability", "risk_tier", "p_alive_baseline",
                                                                *keep))
    df["risk_tier"] = pd.Categorical(df["risk_tier"], categories=list(TIERS), ordered=True)
    return df


def tier_shares(joined: pd.DataFrame | None) -> pd.DataFrame:
    """Share of each RFM segment's customers per risk tier (rows: segment), highest mean churn probability first,
    of the scored customers who have a segment (`joined`: risk_tier, churn_probability, rfm_segment, in customer_id
    order; the stage takes it from the engine's join, `tiers_by_segment_table`). None: segments.parquet is missing,
    and one row says so."""
    if joined is None:
        return plots.note_table("segments.parquet is missing; run 03_segments for this month to see tiers by segment.",
                                "segments", "segment")
    col, j = "rfm_segment", joined
    tab = pd.crosstab(j[col], j["risk_tier"], normalize="index").reindex(columns=list(TIERS), fill_value=0).round(3)
    tab.columns = [f"share {c}" for c in tab.columns]
    tab.insert(0, "customers", j.groupby(col).size())
    tab["mean_churn_probability"] = j.groupby(col)["churn_probability"].mean().round(3)
    tab = tab.sort_values("mean_churn_probability", ascending=False, kind="stable")
    tab.index.name = "segment"
    return tab


def tiers_by_segment_table(con, processed_dir: str | Path, scored: ir.Table) -> pd.DataFrame:
    """`tier_shares` of the scored customers joined to segments.parquet by the engine: only their tier, churn
    probability and segment reach pandas, not their ids."""
    segments = artifacts.table_if_exists(con, processed_dir, "segments")
    if segments is None:
        return tier_shares(None)
    seg = segments.select(customer_id=segments.customer_id.cast("string"), rfm_segment=segments.rfm_segment)
    j = scored.join(seg, "customer_id")
    return tier_shares(engine.to_pandas(j.order_by("customer_id").select("risk_tier", "churn_probability",
                                                                         "rfm_segment")))


def earlier_stages(con, processed_dir: str | Path, scored: ir.Table) -> dict:
    """What the page shows of notebooks 03 and 04, taken here so that the page reads no file: the scores' tiers by
    segment (`tiers_by_segment_table`), clv_at_risk (`customer_facts.clv_at_risk_of_tables`) and clv_months;
    None for each whose artifact this month lacks."""
    clv_scores = artifacts.table_if_exists(con, processed_dir, "clv")
    clv_card = artifacts.read_if_exists(processed_dir, "clv_model")
    return {"tiers_by_segment": tiers_by_segment_table(con, processed_dir, scored),
            "clv_at_risk": None if clv_scores is None else customer_facts.clv_at_risk_of_tables(scored, clv_scores),
            "clv_months": (clv_card or {}).get("clv_months")}


def run(processed_dir: str | Path, as_of: str, cfg: Config, con=None) -> ChurnResult:
    """Backtest, choose, retrain on the latest labelled window, score at `as_of`, save the artifacts.

    Reads orders_clean (and customers_clean, segments, clv and clv_model if present) from
    `processed_dir`; writes churn.parquet and churn_model.json there. The customers at as_of are scored where
    they are (`engine.map_batches`: on Spark's executors) and churn.parquet is written by the engine; the page
    gets the columns it reads, without the customers' ids (`ChurnResult.scored`). Gradient boosting runs on
    churn.model_threads OpenMP threads, null: OpenMP's own count, which follows OMP_NUM_THREADS (the
    runner sets it to each notebook's share of the cores when notebooks run side by side: on shared
    cores, OpenMP's waiting threads made a fit up to 30 times slower) or else takes every core.
    The scores do not depend on the count (churn.parquet byte-identical with 1 and 2 threads).
    (threadpool_limits only limits libraries already loaded: sklearn.ensemble, imported at the top
    of this module, has loaded OpenMP by now.)
    """
    timer = _Timer()
    with threadpool_limits(limits=cfg.churn.model_threads, user_api="openmp"):
        result = _compute(processed_dir, as_of, cfg, con, timer)
        artifacts.write(processed_dir, "churn_model", result.card)
        timer.lap("save")
    return result


def _compute(processed_dir, as_of: str, cfg: Config, con, timer: _Timer) -> ChurnResult:
    """`run` but for churn_model.json: features, backtest, scoring into churn.parquet, model card, the earlier
    stages' figures."""
    ch = cfg.churn
    con = con or connect(cfg.engine)
    lines = artifacts.table(con, processed_dir, "orders_clean")
    customers = artifacts.table_if_exists(con, processed_dir, "customers_clean")
    cut = backtest_cutoffs(as_of, ch.horizon_days)
    # every purchase order up to as_of, grouped and sorted once: each cut-off's features cut their orders from it
    history = order_history(con, lines, cut["as_of"])
    levels = mix_levels(lines, cut["train_cutoff"], ch.mix_levels, orders_before(history, cut["train_cutoff"]))
    problem = history_problem(lines, cut, ch)
    timer.lap("labels")

    failures: list[str] = []  # models that could not be fitted, one sentence each
    now = cutoff_expr(lines, cut["as_of"], levels, cfg, customers, orders=orders_before(history, cut["as_of"]))
    # fitted on the summary alone (the rows of `now`, without its features: those are computed once, to score)
    bgnbd, bgnbd_params = bgnbd_at(customer_facts.rfm_summary_expr(lines, cut["as_of"], cfg.clv.time_unit), cfg)
    features = [c for c in now.columns if c not in SUMMARY_KEYS] + list(BGNBD_COLUMNS)
    timer.lap("features_as_of")
    if bgnbd is None:
        failures.append(BGNBD_FAILED_NOTE.format(reason=bgnbd_params[BGNBD_FAILED]))
    window = partial(labelled_window, con, lines, levels=levels, cfg=cfg, customers=customers, history=history)
    bt = (run_backtest(con, window, cut, ch, failures, timer) if problem is None
          else no_backtest(window, cut, problem, bgnbd is None))
    scorer, chosen = make_scorer(bt, cfg, failures, bgnbd, reason_features(bt.importance, features))
    scored = engine.map_batches(con, now.filter(now.is_customer.notnull()), scorer, scorer.schema())
    artifacts.write_table(con, processed_dir, "churn", scored.select(*SCORED_COLUMNS).order_by("customer_id"))
    page = page_scores(scored, scorer.keep)
    timer.lap("scoring")

    card = model_card(cfg, cut, bt.n_train, bt.n_test, len(page), bt.metrics, chosen, bt.note, problem is None,
                      features=features)
    card["bgnbd_params_at_as_of"] = {} if bgnbd is None else bgnbd_params
    if failures:
        card["not_fitted"] = failures
    result = ChurnResult(as_of=cut["as_of"], horizon_days=ch.horizon_days, cutoffs=cut, backtest_ok=problem is None,
                         backtest_note=bt.note, chosen_model=chosen, metrics=bt.metrics.astype(float).round(4),
                         test_predictions=bt.predictions, importance=bt.importance, scored=page, card=card,
                         timings=timer.timings, failures=failures, currency=cfg.shop.currency,
                         left_out=customer_facts.no_positive_counts(
                             lines, cut["as_of"], cfg.clv.time_unit,
                             artifacts.read_if_exists(processed_dir, "data_quality")),
                         time_unit=cfg.clv.time_unit, **earlier_stages(con, processed_dir, scored))
    release(con, [scored, history] + ([] if bt.test is None else [bt.test.rows]))
    return result


def definition_text(horizon_days: int) -> str:
    """The churn definition in one sentence (notebook and churn_model.json)."""
    return (f"A customer who bought at least once on or before a cut-off day is churned if they place no "
            f"order in the {horizon_days} days after it (returns do not count as orders).")


def model_card(cfg: Config, cut: dict, n_train: int, n_test: int, n_scored: int, metrics: pd.DataFrame,
               chosen: str, note: str, backtest_ok: bool, features: list[str]) -> dict:
    """The content of churn_model.json."""
    H = cfg.churn.horizon_days
    return {
        "definition": definition_text(H),
        "horizon_days": H,
        "backtest_available": backtest_ok,
        "backtest_note": note,
        "train": {"cutoff": cut["train_cutoff"], "labelled_until": cut["test_cutoff"], "customers": n_train},
        "test": {"cutoff": cut["test_cutoff"], "labelled_until": cut["as_of"], "customers": n_test},
        "scoring": {"cutoff": cut["as_of"], "trained_on_cutoff": cut["test_cutoff"],
                    "trained_labelled_until": cut["as_of"], "customers": n_scored},
        "metrics": {m: {k: round(float(v), 4) for k, v in row.items()} for m, row in metrics.iterrows()},
        "chosen_model": chosen,
        "tier_thresholds": {"medium_from": cfg.churn.tier_thresholds[0], "high_from": cfg.churn.tier_thresholds[1]},
        "features": features,
        "model_settings": {k: getattr(cfg.churn, k) for k in
                           ("max_iter", "learning_rate", "max_leaf_nodes", "max_train_rows", "backtest_rows",
                            "calibration_share", "random_state")},
    }


# churn.parquet's columns, as declared in helpers.artifacts
def load_scores(processed_dir: str | Path) -> pd.DataFrame:
    """churn.parquet as written by notebook 05 (its declared columns)."""
    return artifacts.read(processed_dir, "churn")
