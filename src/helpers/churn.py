"""Churn risk (stage 05): who is drifting away, how sure the model is, and whether it beats recency.

Definition
----------
Customers of an online shop do not cancel, they stop buying. A customer is *active at a cut-off*
``c`` (a day, ``'YYYY-MM-DD'``) if they placed at least one purchase (an order line that is not a
return) on or before day ``c``. An active customer is *churned* if they place no purchase in the
``H`` days after it (``churn.horizon_days``), i.e. none dated from day ``c + 1`` 00:00 to day
``c + H`` 23:59:59. Returns are never purchases.

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

Order lines are handled as Ibis expressions (DESIGN.md, "Engine"); only per-customer frames become
pandas. The per-customer behaviour at a cut-off (`features_at`, `mix_levels`) is defined once in
``helpers.customer_facts``; the BG/NBD fit comes from ``helpers.clv``.

Use: ``res = run(processed_dir, as_of, cfg)`` returns a `ChurnRun` whose methods give every table,
figure and sentence of notebook 05 (``res.metrics_table()``, ``res.plot_calibration()``, ...).
"""
from __future__ import annotations

import contextlib
import io
import math
import re
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
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

from helpers import artifacts, clv, customer_facts, plots
from helpers.config import ChurnConfig, Config
from helpers.customer_facts import features_at, mix_levels
from helpers.engine import connect, cutoff_end

MODELS = ("bgnbd", "recency", "model")
MODEL_NAMES = {"bgnbd": "purchase-model P(no purchase)", "recency": "days since last order only",
               "model": "gradient boosting (calibrated)"}
TIERS = ("low", "medium", "high")
CATEGORICAL = ("gender", "region")
BGNBD_COLUMNS = ("p_alive", "p_no_purchase")

# Readable names for the features (tables and figures), from the reports' one vocabulary
# (plots.DISPLAY_NAMES); mix shares are named when built. The two purchase-model columns say where
# they come from.
FEATURE_LABELS = {
    **{f: plots.display_name(f) for f in (
        "recency_days", "tenure_days", "orders", "revenue_gross", "avg_order_value", "gap_mean_days", "gap_last_days",
        "gap_trend", "overdue_ratio", "return_share", "category_breadth", "discount_share", "age_years",
        "marketing_opt_in", "gender", "region")},
    "p_alive": "purchase-model P(alive)",
    "p_no_purchase": "purchase-model P(no order in the horizon)",
}


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
                  customers: ir.Table | None = None, bgnbd: bool = True) -> pd.DataFrame:
    """`customer_facts.features_at` as a pandas frame (one row per customer, sorted by customer_id),
    plus the BG/NBD columns p_alive and p_no_purchase at the same cut-off when `bgnbd` is true.

    Floats are rounded to 6 decimals so that engine-side summation order cannot change a model.
    See `feature_frame_with_params` for the BG/NBD parameters of the same fit.
    """
    return feature_frame_with_params(lines, cutoff, levels, cfg, customers, bgnbd)[0]


def feature_frame_with_params(lines: ir.Table, cutoff: str, levels: dict[str, list[str]], cfg: Config,
                              customers: ir.Table | None = None,
                              bgnbd: bool = True) -> tuple[pd.DataFrame, dict[str, float]]:
    """(`feature_frame`, the BG/NBD parameters r, alpha, a, b fitted at `cutoff`; {} without `bgnbd`)."""
    df = features_at(lines, cutoff, levels, customers).to_pandas()
    df = df.sort_values("customer_id", kind="stable").reset_index(drop=True)
    df["customer_id"] = df["customer_id"].astype(str)
    for col in df.columns:
        if col in CATEGORICAL:
            df[col] = df[col].astype("object").where(df[col].notna(), None)
        elif col != "customer_id":
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64").round(6)
    if not bgnbd:
        return df, {}
    try:
        with quiet():
            base, params = bgnbd_baseline(lines, cutoff, cfg)
    except Exception as exc:  # noqa: BLE001 - a purchase model that cannot be fitted must not stop the stage
        # The columns stay (empty), so the artifact keeps its layout; all-empty columns are no model feature.
        return df.assign(p_alive=np.nan, p_no_purchase=np.nan), {BGNBD_FAILED: one_line(exc)}
    df = df.merge(base, on="customer_id", how="left")
    # A customer whose every purchase day was netted to <= 0 by same-day returns has no BG/NBD
    # purchase: treated as not alive, so certain not to buy.
    df["p_alive"] = df["p_alive"].fillna(0.0)
    df["p_no_purchase"] = df["p_no_purchase"].fillna(1.0)
    return df, params


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

def bgnbd_baseline(lines: ir.Table, cutoff: str, cfg: Config) -> tuple[pd.DataFrame, dict[str, float]]:
    """BG/NBD baseline at `cutoff`: (frame of customer_id, p_alive, p_no_purchase in the next
    churn.horizon_days days; the fitted parameters r, alpha, a, b rounded to 6 decimals).

    Reuses the purchase model of stage 04 unchanged: the per-customer summary at the cut-off
    (``customer_facts.rfm_summary``, one Ibis expression; purchase periods in ``clv.time_unit``,
    returns netted), the purchase model stage 04 prefers fitted on compressed rows
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
    on the unique (x, t_x, T) rows and mapped back to customers.
    """
    unit = cfg.clv.time_unit
    summary = customer_facts.rfm_summary(lines, cutoff, unit)
    unique, inverse = customer_facts.compress(summary)
    fit = clv.fit_first_that_fits(unique, cfg.clv)
    t = cfg.churn.horizon_days / customer_facts.UNIT_DAYS[unit]
    f, r, T = (unique[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    p_alive = np.clip(customer_facts.probability_alive(fit, f, r, T), 0.0, 1.0)
    p_none = 1.0 - customer_facts.probability_of_purchase(fit, t, f, r, T)
    out = pd.DataFrame({"customer_id": summary["customer_id"].astype(str).to_numpy(),
                        "p_alive": p_alive[inverse].round(6), "p_no_purchase": p_none[inverse].round(6)})
    return out, {k: round(v, 6) for k, v in fit.params.items()}


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
class ChurnRun:
    """Everything notebook 05 shows: backtest, importance, scores and the model card.

    Each table, figure and sentence of the notebook is a method (a thin wrapper around the
    module-level function of the same name), so the notebook needs no config values.
    """

    as_of: str
    horizon_days: int
    cutoffs: dict
    backtest_ok: bool
    backtest_note: str
    chosen_model: str
    metrics: pd.DataFrame  # index: model; roc_auc, pr_auc, brier, top_decile_lift, top_decile_captured
    test_predictions: pd.DataFrame  # customer_id, churned, p_bgnbd, p_recency, p_model (test cut-off)
    importance: pd.DataFrame  # index: feature; importance_mean, importance_std (ROC-AUC drop)
    scored: pd.DataFrame  # customer_id, churn_probability, risk_tier, p_alive_baseline, p_no_purchase_bgnbd + features
    card: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)  # seconds per step (benchmark only; not saved)
    segments: pd.DataFrame | None = None  # customer_id, rfm_segment of segments.parquet (notebook 03), if made
    failures: list[str] = field(default_factory=list)  # one sentence per model that could not be fitted
    clv: pd.DataFrame | None = None  # customer_id, clv of clv.parquet (notebook 04), if made
    clv_months: int | None = None  # its horizon (clv_model.json)
    currency: str = "EUR"

    def definition_text(self) -> str:
        return definition_text(self.horizon_days)

    def metrics_table(self) -> pd.DataFrame:
        return metrics_for_readers(self)

    def metrics_takeaway(self) -> str:
        return metrics_takeaway(self)

    def calibration_table(self, bins: int = 10) -> pd.DataFrame:
        return calibration_table(self, bins)

    def plot_calibration(self, ax=None):
        return plot_calibration(self, ax)

    def calibration_takeaway(self) -> str:
        return calibration_takeaway(self)

    def importance_table(self, top: int = 12) -> pd.DataFrame:
        return importance_for_readers(self, top)

    def plot_importance(self, top: int = 12, ax=None):
        return plot_importance(self, top, ax)

    def tier_table(self) -> pd.DataFrame:
        return tiers_for_readers(self)

    def tier_takeaway(self) -> str:
        return tier_takeaway(self, self.currency)

    def tier_reasons(self, top_features: int = 8, reasons: int = 3) -> pd.DataFrame:
        return tier_reasons(self, top_features, reasons)

    def tiers_by_segment(self) -> pd.DataFrame:
        return tiers_by_segment_for_readers(tiers_by_segment(self.scored, self.segments))

    def plot_tiers_by_segment(self, ax=None):
        return plot_tiers_by_segment(tiers_by_segment(self.scored, self.segments), ax)

    def segment_takeaway(self) -> str:
        return segment_takeaway(tiers_by_segment(self.scored, self.segments))

    def outputs_text(self) -> str:
        return outputs_text(self)


def _enough(frame: pd.DataFrame, cfg: ChurnConfig) -> str | None:
    n, churned = len(frame), int(frame["churned"].sum()) if len(frame) else 0
    if n < cfg.min_customers:
        return f"only {n:,} customers who had bought (need {cfg.min_customers:,})"
    if min(churned, n - churned) < cfg.min_class_size:
        return f"only {min(churned, n - churned):,} customers in the smaller class (need {cfg.min_class_size:,})"
    return None


def labelled_frame(lines, cutoff, levels, cfg, customers=None, bgnbd=True) -> pd.DataFrame:
    """Feature frame at `cutoff` with the column churned (next churn.horizon_days days)."""
    feats = feature_frame(lines, cutoff, levels, cfg, customers, bgnbd=bgnbd)
    lab = labels_at(lines, cutoff, cfg.churn.horizon_days).to_pandas()
    lab["customer_id"] = lab["customer_id"].astype(str)
    out = feats.merge(lab, on="customer_id", how="inner", validate="one_to_one")
    out["churned"] = out["churned"].astype(bool)
    return out


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


def backtest(train: pd.DataFrame, test: pd.DataFrame, cfg: ChurnConfig, has_bgnbd: bool):
    """Fit on the training window, evaluate the three models on the test window.

    Returns (metrics frame indexed by model, test predictions, fitted model, why it could not be
    fitted); a model that cannot be fitted is None, left out of the metrics, and `why` says so."""
    model, why = fit_model_or_none(train, cfg)
    recency = fit_recency(train)
    pred = test[["customer_id", "churned"]].copy()
    pred["p_model"] = predict_model(model, test) if model is not None else np.nan
    pred["p_recency"] = recency.predict(test["recency_days"].to_numpy())
    y = test["churned"].astype(int).to_numpy()
    rows = {}
    if has_bgnbd:
        pred["p_bgnbd"] = test["p_no_purchase"].to_numpy()
        rows["bgnbd"] = model_metrics(y, pred["p_bgnbd"])
    else:
        pred["p_bgnbd"] = np.nan
    rows["recency"] = model_metrics(y, pred["p_recency"], score=test["recency_days"])
    if model is not None:
        rows["model"] = model_metrics(y, pred["p_model"])
    metrics = pd.DataFrame(rows).T
    metrics.index.name = "model"
    return metrics, pred, model, why


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


def run(processed_dir: str | Path, as_of: str, cfg: Config, con=None, save: bool = True) -> ChurnRun:
    """Backtest, choose, retrain on the latest labelled window, score at `as_of`, save the artifacts.

    Reads orders_clean (and customers_clean and segments if present) from `processed_dir`; writes
    churn.parquet and churn_model.json there when `save` is true. Gradient boosting runs on
    churn.model_threads OpenMP threads: on shared cores, OpenMP's waiting threads made a fit up to
    30 times slower. (threadpool_limits only limits libraries already loaded: sklearn.ensemble,
    imported at the top of this module, has loaded OpenMP by now.)
    """
    with threadpool_limits(limits=cfg.churn.model_threads, user_api="openmp"):
        return _run(processed_dir, as_of, cfg, con, save)


def _run(processed_dir, as_of: str, cfg: Config, con, save: bool) -> ChurnRun:
    ch = cfg.churn
    timings: dict[str, float] = {}
    clock = [time.perf_counter()]

    def lap(step: str) -> None:
        now_ = time.perf_counter()
        timings[step] = round(now_ - clock[0], 2)
        clock[0] = now_

    con = con or connect(cfg.engine)
    lines = artifacts.table(con, processed_dir, "orders_clean")
    customers = artifacts.table_if_exists(con, processed_dir, "customers_clean")
    H = ch.horizon_days
    cut = backtest_cutoffs(as_of, H)
    levels = mix_levels(lines, cut["train_cutoff"], ch.mix_levels)

    # Enough history? Checked on the labels alone, before any feature or model work.
    problem = None
    for which in ("train", "test"):
        lab = labels_at(lines, cut[f"{which}_cutoff"], H).to_pandas()
        why = _enough(lab, ch)
        if why and problem is None:
            problem = f"at the {which} cut-off {cut[f'{which}_cutoff']}: {why}"
    lap("labels")

    importance = pd.DataFrame(columns=["importance_mean", "importance_std"]).rename_axis("feature")
    n_train = n_test = 0
    failures: list[str] = []  # models that could not be fitted, one sentence each
    now, bgnbd_params = feature_frame_with_params(lines, cut["as_of"], levels, cfg, customers)
    lap("features_as_of")
    if BGNBD_FAILED in bgnbd_params:
        failures.append(BGNBD_FAILED_NOTE.format(reason=bgnbd_params[BGNBD_FAILED]))
    if problem is None:
        train = labelled_frame(lines, cut["train_cutoff"], levels, cfg, customers)
        test = labelled_frame(lines, cut["test_cutoff"], levels, cfg, customers)
        n_train, n_test = len(train), len(test)
        lap("features_backtest")
        has_bgnbd = bool(test["p_no_purchase"].notna().all())
        metrics, pred, bt_model, why = backtest(train, test, ch, has_bgnbd=has_bgnbd)
        lap("backtest_models")
        if bt_model is None:
            failures.append(MODEL_FAILED.format(reason=why))
        else:
            importance = permutation_table(bt_model, test, ch)
        lap("importance")
        chosen = choose_model(metrics)
        note = (f"Backtest: trained on the {n_train:,} customers who had bought by {cut['train_cutoff']}, "
                f"tested on the {n_test:,} who had bought by {cut['test_cutoff']}.")
    else:
        metrics = pd.DataFrame(columns=["roc_auc", "pr_auc", "brier", "top_decile_lift", "top_decile_captured"])
        metrics.index.name = "model"
        pred = pd.DataFrame(columns=["customer_id", "churned", "p_bgnbd", "p_recency", "p_model"])
        if BGNBD_FAILED in bgnbd_params:
            chosen = "recency"
            test = labelled_frame(lines, cut["test_cutoff"], levels, cfg, customers, bgnbd=False)
            note = (f"Not enough history for the backtest ({problem}); churn probability is the recency baseline, "
                    f"fitted on the customers who had bought by {cut['test_cutoff']}.")
        else:
            chosen = "bgnbd"
            note = f"Not enough history for the backtest ({problem}); churn probability is the purchase-model baseline."

    scored = now.copy()
    final = None
    if chosen == "model":
        final, why = fit_model_or_none(test, ch)
        if final is None:
            failures.append(MODEL_FAILED.format(reason=why))
            chosen = choose_model(metrics.drop(index="model"))
    if chosen == "bgnbd" and BGNBD_FAILED in bgnbd_params:  # chosen on the backtest, not fitted at as_of
        chosen = "recency"
    if chosen == "model":
        scored["churn_probability"] = predict_model(final, now)
    elif chosen == "recency":
        scored["churn_probability"] = fit_recency(test).predict(now["recency_days"].to_numpy())
    else:
        scored["churn_probability"] = now["p_no_purchase"].to_numpy()
    scored["churn_probability"] = scored["churn_probability"].astype(float).round(6)
    scored["risk_tier"] = assign_tiers(scored["churn_probability"], ch.tier_thresholds)
    scored["p_alive_baseline"] = now["p_alive"]
    scored["p_no_purchase_bgnbd"] = now["p_no_purchase"]
    lap("scoring")

    card = model_card(cfg, cut, n_train, n_test, len(now), metrics, chosen, note, problem is None,
                      features=[c for c in now.columns if c != "customer_id"])
    card["bgnbd_params_at_as_of"] = {} if BGNBD_FAILED in bgnbd_params else bgnbd_params
    if failures:
        card["not_fitted"] = failures
    segments = artifacts.read_if_exists(processed_dir, "segments", columns=["customer_id", "rfm_segment"])
    clv_scores = artifacts.read_if_exists(processed_dir, "clv", columns=["customer_id", "clv"])
    clv_card = artifacts.read_if_exists(processed_dir, "clv_model")
    result = ChurnRun(as_of=cut["as_of"], horizon_days=H, cutoffs=cut, backtest_ok=problem is None,
                      backtest_note=note, chosen_model=chosen, metrics=metrics.astype(float).round(4),
                      test_predictions=pred, importance=importance, scored=scored, card=card, timings=timings,
                      segments=segments, failures=failures,
                      clv=clv_scores, clv_months=(clv_card or {}).get("clv_months"), currency=cfg.shop.currency)
    if save:
        save_artifacts(processed_dir, result)
        lap("save")
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
                           ("max_iter", "learning_rate", "max_leaf_nodes", "max_train_rows", "calibration_share",
                            "random_state")},
    }


# churn.parquet's columns, as declared in helpers.artifacts
SCORED_COLUMNS = artifacts.ARTIFACTS["churn"].columns


def save_artifacts(processed_dir: str | Path, result: ChurnRun) -> None:
    """churn.parquet (customer_id, churn_probability, risk_tier, p_alive_baseline, p_no_purchase_bgnbd)
    and churn_model.json, checked against their declarations in helpers.artifacts."""
    out = result.scored[SCORED_COLUMNS].copy()
    out["risk_tier"] = out["risk_tier"].astype(str)
    artifacts.write(processed_dir, "churn", out)
    artifacts.write(processed_dir, "churn_model", result.card)


def load_scores(processed_dir: str | Path) -> pd.DataFrame:
    """churn.parquet as written by notebook 05 (its declared columns)."""
    return artifacts.read(processed_dir, "churn")


# --------------------------------------------------------------------------- tables and sentences

def feature_label(name: str) -> str:
    """Readable name of a feature column (tables and figures)."""
    if name in FEATURE_LABELS:
        return FEATURE_LABELS[name]
    m = re.match(r"(channel|payment_method)_share_(.+)", name)
    if m:
        return f"share of orders via {m.group(2)}" if m.group(1) == "channel" else f"share of orders paid by {m.group(2)}"
    return name


def metrics_table(result: ChurnRun) -> pd.DataFrame:
    """The backtest metrics side by side, one row per model (readable names)."""
    m = result.metrics.copy()
    m.index = [MODEL_NAMES.get(i, i) for i in m.index]
    m.index.name = "model"
    return m.rename(columns={"roc_auc": "ROC-AUC", "pr_auc": "PR-AUC", "brier": "Brier score",
                             "top_decile_lift": "top-10% lift", "top_decile_captured": "churners in top 10%"})


def metrics_takeaway(result: ChurnRun) -> str:
    if not result.backtest_ok:
        return " ".join([result.backtest_note, *result.failures])
    m = result.metrics
    rate = result.test_predictions["churned"].mean()
    parts = [result.backtest_note,
             f"{rate:.0%} of the test customers churned in the {result.horizon_days} days after the cut-off."]
    rec = m.loc["recency", "roc_auc"]
    bg = f" and {m.loc['bgnbd', 'roc_auc']:.3f} for the purchase-model baseline" if "bgnbd" in m.index else ""
    if "model" in m.index:
        parts.append(f"The calibrated model ranks churners with ROC-AUC {m.loc['model', 'roc_auc']:.3f} against "
                     f"{rec:.3f} for recency alone{bg}; its top 10% holds "
                     f"{m.loc['model', 'top_decile_captured']:.0%} of all churners.")
    else:
        parts.append(f"Recency alone ranks churners with ROC-AUC {rec:.3f}{bg}.")
    parts += result.failures
    parts.append(f"Chosen for scoring: {MODEL_NAMES[result.chosen_model]}.")
    return " ".join(parts)


def calibration_table(result: ChurnRun, bins: int = 10) -> pd.DataFrame:
    """Mean predicted vs observed churn rate per probability decile bin, per model (test window)."""
    pred = result.test_predictions
    rows = []
    for key, col in (("bgnbd", "p_bgnbd"), ("recency", "p_recency"), ("model", "p_model")):
        if col not in pred or pred[col].isna().all():
            continue
        b = np.clip((pred[col].to_numpy(dtype=float) * bins).astype(int), 0, bins - 1)
        g = pd.DataFrame({"bin": b, "p": pred[col].astype(float), "y": pred["churned"].astype(float)}).groupby("bin")
        for k, grp in g:
            rows.append({"model": MODEL_NAMES[key], "predicted": f"{k / bins:.1f}-{(k + 1) / bins:.1f}",
                         "customers": len(grp), "mean_predicted": round(grp["p"].mean(), 3),
                         "observed_churn": round(grp["y"].mean(), 3)})
    cols = ["model", "predicted", "customers", "mean_predicted", "observed_churn"]
    return pd.DataFrame(rows, columns=cols).set_index(["model", "predicted"])


def plot_calibration(result: ChurnRun, ax=None):
    """Reliability curves on the test window: observed churn rate vs predicted probability, per model."""
    ax = plots.axes_or_new(ax)
    cal = calibration_table(result).reset_index()
    for name, grp in cal.groupby("model", sort=False):
        ax.plot(grp["mean_predicted"], grp["observed_churn"], marker="o", label=name)
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(f"Calibration on the test window (cut-off {result.cutoffs['test_cutoff']})")
    ax.set_xlabel(f"predicted probability of no order in {result.horizon_days} days")
    ax.set_ylabel("observed share churned")
    ax.xaxis.set_major_formatter(plots.percent_axis)
    ax.yaxis.set_major_formatter(plots.percent_axis)
    ax.legend(loc="upper left", frameon=False)
    return ax


def calibration_takeaway(result: ChurnRun) -> str:
    if not result.backtest_ok:
        return "No calibration check: the backtest did not run."
    cal = calibration_table(result).reset_index()
    gaps = {}
    for name, grp in cal.groupby("model", sort=False):
        w = grp["customers"] / grp["customers"].sum()
        gaps[name] = float((w * (grp["mean_predicted"] - grp["observed_churn"]).abs()).sum())
    best = min(gaps, key=gaps.get)
    return ("Average gap between predicted and observed churn (customer-weighted): "
            + ", ".join(f"{k} {v:.1%}" for k, v in gaps.items()) + f"; best calibrated: {best}.")


def importance_table(result: ChurnRun, top: int = 12) -> pd.DataFrame:
    """The `top` features by permutation importance (drop in test ROC-AUC when shuffled)."""
    imp = result.importance.head(top).copy()
    imp.index = [feature_label(i) for i in imp.index]
    imp.index.name = "feature"
    return imp.rename(columns={"importance_mean": "ROC-AUC drop (mean)", "importance_std": "ROC-AUC drop (sd)"})


def plot_importance(result: ChurnRun, top: int = 12, ax=None):
    """Horizontal bars: drop in test ROC-AUC when each feature is shuffled (mean +/- sd)."""
    ax = plots.axes_or_new(ax)
    imp = importance_table(result, top).iloc[::-1]
    ax.barh(imp.index, imp.iloc[:, 0], xerr=imp.iloc[:, 1], color=plots.sns.color_palette()[0])
    ax.set_title("What the model relies on (permutation importance, test window)")
    ax.set_xlabel("drop in ROC-AUC when the feature is shuffled")
    ax.set_ylabel("")
    return ax


def tier_table(result: ChurnRun) -> pd.DataFrame:
    """Customers, share and mean churn probability per risk tier at as_of."""
    s = result.scored
    g = s.groupby("risk_tier", observed=False)
    out = pd.DataFrame({"customers": g.size(), "share": (g.size() / len(s)).round(3),
                        "mean_churn_probability": g["churn_probability"].mean().round(3)})
    lo, hi = result.card["tier_thresholds"]["medium_from"], result.card["tier_thresholds"]["high_from"]
    out.insert(0, "churn probability", [f"below {lo:.0%}", f"{lo:.0%} to {hi:.0%}", f"{hi:.0%} and above"])
    out.index.name = "risk tier"
    return out


def tier_reasons(result: ChurnRun, top_features: int = 8, reasons: int = 3) -> pd.DataFrame:
    """Per risk tier, the features (among the most important) where the tier differs most from all
    customers: median in the tier vs median overall, distance measured in overall interquartile ranges."""
    s = result.scored
    candidates = [f for f in result.importance.index if f in s.columns and f not in CATEGORICAL][:top_features]
    if not candidates:
        candidates = ["recency_days", "orders", "tenure_days"]
    overall = s[candidates].median()
    iqr = (s[candidates].quantile(0.75) - s[candidates].quantile(0.25)).replace(0, np.nan)
    iqr = iqr.fillna(s[candidates].std()).replace(0, 1.0)
    rows = {}
    for tier in TIERS:
        grp = s[s["risk_tier"] == tier]
        if grp.empty:
            rows[tier] = ["no customers"]
            continue
        med = grp[candidates].median()
        z = ((med - overall) / iqr).abs().fillna(0).sort_values(ascending=False, kind="stable")
        rows[tier] = [f"{feature_label(f)}: {_fmt(med[f], f)} (all {_fmt(overall[f], f)})" for f in z.index[:reasons]]
    out = pd.DataFrame.from_dict({t: (r if isinstance(r, list) else [r]) for t, r in rows.items()}, orient="index")
    out.columns = [f"reason {i + 1} (tier median vs all)" for i in range(out.shape[1])]
    out = out.fillna("")
    out.index.name = "risk tier"
    return out


def _fmt(v: float, feature: str = "") -> str:
    """A tier median as a reader reads it: probabilities and shares in % ('38%'), other figures by size."""
    if pd.isna(v):
        return "n/a"
    if feature.startswith("p_") or feature.endswith("_share"):
        return f"{v:.0%}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.0f}"
    if abs(v) >= 1:
        return f"{v:.1f}"
    return f"{v:.2f}"


def tier_takeaway(result: ChurnRun, currency: str = "EUR") -> str:
    """How many customers are at high and medium churn risk, and how many of the high-risk ones the
    purchase model still finds likely active (04's P(alive), the same fit as this page's baseline)."""
    t = tier_table(result)
    high = t.loc["high"]
    horizon = result.card["horizon_days"]
    text = (f"At {result.as_of}, {int(high['customers']):,} of the {int(t['customers'].sum()):,} customers who had "
            f"bought by then ({high['share']:.0%}) are at high churn risk "
            f"({plots.high_churn_risk_definition(result.card['tier_thresholds']['high_from'], horizon)})")
    if result.clv is not None and int(high["customers"]) > 0:
        at_risk, total = customer_facts.clv_at_risk(result.scored, result.clv)
        share = f" ({at_risk / total:.0%} of the total)" if total > 0 else ""
        text += (f", carrying {plots.money(at_risk, currency)} of predicted {result.clv_months}-month CLV{share}")
    text += f"; {int(t.loc['medium', 'customers']):,} are at medium risk."
    s = result.scored
    if s["p_alive_baseline"].notna().any() and int(high["customers"]) > 0:
        both = int((plots.likely_active(s["p_alive_baseline"].to_numpy()).to_numpy() & (s["risk_tier"] == "high").to_numpy()).sum())
        text += (f" {both:,} of the high-risk customers are still likely active in notebook 04 "
                 f"({plots.likely_active_definition()}). {plots.alive_vs_churn(horizon)}")
    return text


def tiers_by_segment(scored: pd.DataFrame, segments: pd.DataFrame | None) -> pd.DataFrame:
    """Share of each RFM segment's customers per risk tier (rows: segment).

    `scored`: customer_id, risk_tier, churn_probability (`ChurnRun.scored`); `segments`: customer_id,
    rfm_segment (segments.parquet of notebook 03). Without segments, one row says so."""
    if segments is None:
        return plots.note_table("segments.parquet is missing; run 03_segments for this month to see tiers by segment.",
                                "segments", "segment")
    col = "rfm_segment"
    seg = segments[["customer_id", col]].assign(customer_id=lambda d: d["customer_id"].astype(str))
    j = scored[["customer_id", "risk_tier", "churn_probability"]].merge(seg, on="customer_id", how="inner")
    tab = pd.crosstab(j[col], j["risk_tier"], normalize="index").reindex(columns=list(TIERS), fill_value=0).round(3)
    tab.columns = [f"share {c}" for c in tab.columns]
    tab.insert(0, "customers", j.groupby(col).size())
    tab["mean_churn_probability"] = j.groupby(col)["churn_probability"].mean().round(3)
    tab = tab.sort_values("mean_churn_probability", ascending=False, kind="stable")
    tab.index.name = "segment"
    return tab


# --------------------------------------------------------------------------- the tables for people
# (the functions above keep the numbers for figures and takeaways; these format them for reading)

def metrics_for_readers(result: ChurnRun) -> pd.DataFrame:
    """`metrics_table` for reading: scores with 3 decimals, lift with 2, the churners' share in %."""
    return plots.table_for_readers(metrics_table(result), {"ROC-AUC": "number3", "PR-AUC": "number3",
                                                           "Brier score": "number3", "top-10% lift": "ratio",
                                                           "churners in top 10%": "share"})


def importance_for_readers(result: ChurnRun, top: int = 12) -> pd.DataFrame:
    """`importance_table` for reading (drops in ROC-AUC with 4 decimals)."""
    t = importance_table(result, top)
    return plots.table_for_readers(t, {c: "number4" for c in t.columns})


def tiers_for_readers(result: ChurnRun) -> pd.DataFrame:
    """`tier_table` for reading: customers with separators, shares and probabilities in %."""
    # 05 scores every customer who had bought by as_of, not only those active (buying) in the month
    return plots.table_for_readers(tier_table(result), {"customers": "count", "share": "share",
                                                        "mean_churn_probability": "share"},
                                   names={"customers": f"customers who had bought by {result.as_of}",
                                          "share": "share of customers"})


def tiers_by_segment_for_readers(table: pd.DataFrame) -> pd.DataFrame:
    """`tiers_by_segment` for reading (the one-row note without segments stays as it is)."""
    if "note" in table.columns:
        return table
    shares = {f"share {t}": "share" for t in TIERS}
    return plots.table_for_readers(table, {"customers": "count", **shares, "mean_churn_probability": "share"},
                                   names={f"share {t}": f"share at {t} risk" for t in TIERS})


def plot_tiers_by_segment(table: pd.DataFrame, ax=None):
    """Stacked horizontal bars: share of each segment's customers in each risk tier."""
    ax = plots.axes_or_new(ax)
    if "note" in table.columns:
        ax.text(0.5, 0.5, table["note"].iloc[0], ha="center", va="center", wrap=True)
        ax.set_axis_off()
        return ax
    shares = table[[f"share {t}" for t in TIERS]].iloc[::-1]
    left = np.zeros(len(shares))
    colors = {"low": "#7fbf7b", "medium": "#fdb863", "high": "#d6604d"}
    for t in TIERS:
        vals = shares[f"share {t}"].to_numpy()
        ax.barh(shares.index, vals, left=left, color=colors[t], label=t)
        left += vals
    ax.set_xlim(0, 1)
    ax.set_title("Churn risk tiers within each RFM segment")
    ax.set_xlabel("share of the segment's customers")
    ax.xaxis.set_major_formatter(plots.percent_axis)
    ax.set_ylabel("")
    ax.legend(title="risk tier", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return ax


def segment_takeaway(table: pd.DataFrame) -> str:
    if "note" in table.columns:
        return str(table["note"].iloc[0])
    worst = table.index[0]
    big = table.sort_values("customers", ascending=False).index[0]
    return (f"Highest mean churn probability: {worst} ({table.loc[worst, 'mean_churn_probability']:.0%}, "
            f"{table.loc[worst, 'share high']:.0%} high risk). The largest segment, {big}, has "
            f"{table.loc[big, 'share high']:.0%} of its customers at high risk.")


def outputs_text(result: ChurnRun) -> str:
    """What was written for the later stages (no paths, no customer ids)."""
    c = result.card
    return (f"churn.parquet: the {len(result.scored):,} customers who had bought by {result.as_of}, with churn_probability "
            f"({MODEL_NAMES[result.chosen_model]}), risk_tier and the purchase-model p_alive baseline. churn_model.json: "
            f"definition, {c['horizon_days']}-day horizon, backtest metrics of all three models, chosen model, "
            f"thresholds, training ({c['train']['customers']:,} customers) and test ({c['test']['customers']:,}) "
            f"sizes and dates.")
