"""Load and check the project configuration (config/default.yml).

The config is read once, validated, and passed explicitly to every helper:
``cfg = load_config("config/default.yml")``. Unknown keys and out-of-range values stop with one
sentence that names the file, the key and what to do.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from helpers.paths import resolve


class ConfigError(ValueError):
    """The configuration file is unreadable or holds an invalid value (message: one sentence)."""


@dataclass(frozen=True)
class ShopConfig:
    currency: str = "EUR"


@dataclass(frozen=True)
class EngineConfig:
    backend: str = "duckdb"
    spark_master: str = "local[2]"
    threads: int | None = None
    memory_limit: str | None = None


@dataclass(frozen=True)
class ColumnsConfig:
    """Per file, the shop export's column name -> the raw data contract's name."""

    orders: dict[str, str] = field(default_factory=dict)
    customers: dict[str, str] = field(default_factory=dict)
    campaigns: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CleaningConfig:
    encoding_fallbacks: list[str] = field(default_factory=lambda: ["cp1250", "latin-1"])
    decimal_separator: str = "auto"
    date_format: str | None = None
    test_statuses: list[str] = field(default_factory=lambda: ["test"])
    cancelled_statuses: list[str] = field(default_factory=lambda: ["cancelled", "canceled", "voided"])
    returned_statuses: list[str] = field(default_factory=lambda: ["returned", "refunded"])
    test_customer_prefixes: list[str] = field(default_factory=lambda: ["TEST"])
    completed_status_if_missing: str = "completed"


@dataclass(frozen=True)
class BusinessConfig:
    inactivity_days: int = 180


@dataclass(frozen=True)
class KpisConfig:
    """KPIs and cohorts (stage 02); the inactivity window itself is business.inactivity_days."""

    second_order_windows: list[int] = field(default_factory=lambda: [30, 60, 90])
    signup_order_days: int = 30
    discount_followup_days: int = 365
    inactivity_quantile: float = 0.8
    breakdown_months: int = 12
    age_bands: list[int] = field(default_factory=lambda: [25, 35, 45, 55, 65])
    heatmap_cohorts: int = 24


@dataclass(frozen=True)
class SegmentsConfig:
    """RFM segment grid (segment -> R score range x FM score range) and k-means settings (stage 03).

    A range is one score (``5``) or ``"lo-hi"`` (``"4-5"``), inclusive, scores 1..5. Every R x FM
    cell must belong to exactly one segment; ``grid_cells()`` says which cell is wrong if not.
    """

    grid: dict[str, dict] = field(default_factory=lambda: {
        "Champions": {"r": 5, "fm": "4-5"},
        "Loyal Customers": {"r": "3-4", "fm": "4-5"},
        "Potential Loyalists": {"r": "4-5", "fm": "2-3"},
        "New Customers": {"r": 5, "fm": 1},
        "Promising": {"r": 4, "fm": 1},
        "Need Attention": {"r": 3, "fm": 3},
        "About to Sleep": {"r": 3, "fm": "1-2"},
        "At Risk": {"r": "1-2", "fm": "3-4"},
        "Can't Lose Them": {"r": "1-2", "fm": 5},
        "Hibernating": {"r": 2, "fm": "1-2"},
        "Lost": {"r": 1, "fm": "1-2"},
    })
    watch: list[str] = field(default_factory=lambda: ["At Risk", "Hibernating", "Lost"])
    k_min: int = 2
    k_max: int = 8
    silhouette_sample: int = 10_000
    random_state: int = 42

    def grid_cells(self) -> dict[tuple[int, int], str]:
        """{(r_score, fm_score): segment} for all 25 cells; ValueError (one sentence) on a hole or overlap."""
        def scores(name, axis, spec):
            lo, _, hi = str(spec).partition("-")
            try:
                lo, hi = int(lo), int(hi or lo)
            except ValueError:
                raise ValueError(f"'{name}.{axis}' must be a score 1..5 or a range like \"4-5\", got {spec!r}") from None
            if not 1 <= lo <= hi <= 5:
                raise ValueError(f"'{name}.{axis}' must lie within 1..5 with low <= high, got {spec!r}")
            return range(lo, hi + 1)

        if not isinstance(self.grid, dict) or not self.grid:
            raise ValueError("must map segment names to {r: ..., fm: ...}")
        cells: dict[tuple[int, int], str] = {}
        for name, spec in self.grid.items():
            if not isinstance(spec, dict) or set(spec) != {"r", "fm"}:
                raise ValueError(f"'{name}' must have exactly the keys r and fm, got {spec!r}")
            for r in scores(name, "r", spec["r"]):
                for fm in scores(name, "fm", spec["fm"]):
                    if (r, fm) in cells:
                        raise ValueError(f"cell R={r}, FM={fm} is in both '{cells[(r, fm)]}' and '{name}'")
                    cells[(r, fm)] = name
        for r in range(5, 0, -1):
            for fm in range(1, 6):
                if (r, fm) not in cells:
                    raise ValueError(f"cell R={r}, FM={fm} belongs to no segment")
        return cells


@dataclass(frozen=True)
class ClvConfig:
    """CLV stage (notebook 04): time unit, holdout validation, model choice and business values."""

    time_unit: str = "day"
    holdout_days: int = 180
    model: str = "auto"
    penalizer: float = 0.0
    retry_penalizer: float = 0.001
    gross_margin: float = 0.3
    monthly_discount_rate: float = 0.01
    clv_months: int = 12
    horizons_days: list[int] = field(default_factory=lambda: [30, 90, 365])
    purchase_window_days: int = 90
    correlation_warning: float = 0.3
    sample_customers: int = 200_000
    seed: int = 42


@dataclass(frozen=True)
class ChurnConfig:
    """Churn stage (notebook 05): churn definition, risk tiers and the supervised model's settings."""

    horizon_days: int = 90
    tier_thresholds: list[float] = field(default_factory=lambda: [0.5, 0.8])
    min_customers: int = 200
    min_class_size: int = 20
    max_train_rows: int = 300_000
    calibration_share: float = 0.2
    max_iter: int = 200
    learning_rate: float = 0.05
    max_leaf_nodes: int = 15
    mix_levels: int = 6
    importance_rows: int = 5_000
    importance_repeats: int = 3
    model_threads: int | None = 1
    random_state: int = 42


@dataclass(frozen=True)
class SummaryConfig:
    """Monthly summary (notebook 07): thresholds of the "what to do now" rules (helpers.summary)."""

    max_actions: int = 5
    kpi_change: float = 0.05
    retention_drop_pp: float = 0.05
    recent_cohorts: int = 6
    top_clv_share: float = 0.1


@dataclass(frozen=True)
class WinbackConfig:
    """Win-back stage (notebook 06): candidates, offer options, uplift assumptions and the simulation.

    Gross margin is ``clv.gross_margin`` (not repeated here)."""

    candidate_segments: list[str] = field(default_factory=lambda: ["At Risk", "Can't Lose Them", "Hibernating",
                                                                   "About to Sleep"])
    candidate_risk_tiers: list[str] = field(default_factory=lambda: ["high"])
    window_days: int = 30
    contact_without_discount: bool = True
    discount_levels: list[float] = field(default_factory=lambda: [0.05, 0.10, 0.15, 0.20])
    contact_cost: float = 0.10
    assumed_uplift: dict = field(default_factory=lambda: {0.0: 0.007, 0.05: 0.015, 0.10: 0.025, 0.15: 0.035,
                                                          0.20: 0.045})
    assumed_uplift_sd_share: float = 0.5
    min_group_customers: int = 200
    holdout_share: float = 0.5
    draws: int = 2000
    seed: int = 42
    budget: float | None = None


@dataclass(frozen=True)
class OffersConfig:
    """Personalised offers (notebook 06, "What to offer"): affinities, repeat cycles, holdout, contact cap."""

    affinity_window_days: int = 90
    min_support: int = 30
    min_lift: float = 1.1
    top_n: int = 3
    repeat_min_orders: int = 2
    horizon_days: int = 90
    similar_min_customers: int = 50
    min_days_between_contacts: int = 7
    second_order_max_days: int = 365


@dataclass(frozen=True)
class Config:
    shop: ShopConfig = field(default_factory=ShopConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    columns: ColumnsConfig = field(default_factory=ColumnsConfig)
    cleaning: CleaningConfig = field(default_factory=CleaningConfig)
    business: BusinessConfig = field(default_factory=BusinessConfig)
    kpis: KpisConfig = field(default_factory=KpisConfig)
    segments: SegmentsConfig = field(default_factory=SegmentsConfig)
    clv: ClvConfig = field(default_factory=ClvConfig)
    churn: ChurnConfig = field(default_factory=ChurnConfig)
    winback: WinbackConfig = field(default_factory=WinbackConfig)
    offers: OffersConfig = field(default_factory=OffersConfig)
    summary: SummaryConfig = field(default_factory=SummaryConfig)
    source: str = "defaults"


def _build(cls, values: Any, where: str, source: str):
    if values is None:
        return cls()
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: '{where}' must be a mapping of keys to values, got {values!r}.")
    known = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(
            f"{source}: unknown key '{where}.{unknown[0]}'; known keys under '{where}' are "
            f"{', '.join(sorted(known))}."
        )
    kwargs = {}
    for name, value in values.items():
        f = known[name]
        section = f.default_factory
        if isinstance(section, type) and dataclasses.is_dataclass(section):
            kwargs[name] = _build(section, value, name if where == "config" else f"{where}.{name}", source)
        else:
            kwargs[name] = value
    return cls(**kwargs)


def _check(cfg: Config) -> None:
    src = cfg.source
    if cfg.engine.backend not in {"duckdb", "spark", "pyspark"} and not cfg.engine.backend.isidentifier():
        raise ConfigError(f"{src}: engine.backend must be duckdb, spark or an Ibis backend name, got {cfg.engine.backend!r}.")
    if cfg.cleaning.decimal_separator not in {"auto", ".", ","}:
        raise ConfigError(
            f"{src}: cleaning.decimal_separator must be auto, \".\" or \",\", got {cfg.cleaning.decimal_separator!r}."
        )
    for section in ("orders", "customers", "campaigns"):
        mapping = getattr(cfg.columns, section)
        if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
            raise ConfigError(f"{src}: columns.{section} must map export column names to contract names (text: text).")
    if not isinstance(cfg.business.inactivity_days, int) or cfg.business.inactivity_days <= 0:
        raise ConfigError(
            f"{src}: business.inactivity_days must be a positive whole number of days, got {cfg.business.inactivity_days!r}."
        )
    seg = cfg.segments
    try:
        names = set(seg.grid_cells().values())
    except ValueError as exc:
        raise ConfigError(f"{src}: segments.grid: {exc}; every R x FM cell (1..5 x 1..5) needs exactly one segment.") from None
    if not isinstance(seg.watch, list) or not set(seg.watch) <= names:
        raise ConfigError(f"{src}: segments.watch must list segment names from segments.grid, got {seg.watch!r}.")
    for key in ("k_min", "k_max", "silhouette_sample"):
        value = getattr(seg, key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 2:
            raise ConfigError(f"{src}: segments.{key} must be a whole number of at least 2, got {value!r}.")
    if seg.k_max < seg.k_min:
        raise ConfigError(f"{src}: segments.k_max must be at least segments.k_min ({seg.k_min}), got {seg.k_max!r}.")
    if not isinstance(seg.random_state, int) or isinstance(seg.random_state, bool):
        raise ConfigError(f"{src}: segments.random_state must be a whole number, got {seg.random_state!r}.")
    _check_clv(cfg.clv, src)
    _check_churn(cfg.churn, src)
    _check_winback(cfg.winback, src)
    _check_offers(cfg.offers, src)
    _check_kpis(cfg.kpis, src)
    sm = cfg.summary
    if not isinstance(sm.max_actions, int) or isinstance(sm.max_actions, bool) or not 3 <= sm.max_actions <= 5:
        raise ConfigError(f"{src}: summary.max_actions must be a whole number from 3 to 5, got {sm.max_actions!r}.")
    if not isinstance(sm.recent_cohorts, int) or isinstance(sm.recent_cohorts, bool) or sm.recent_cohorts < 1:
        raise ConfigError(f"{src}: summary.recent_cohorts must be a positive whole number, got {sm.recent_cohorts!r}.")
    for key in ("kpi_change", "retention_drop_pp", "top_clv_share"):
        v = getattr(sm, key)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 < v < 1:
            raise ConfigError(f"{src}: summary.{key} must be a share between 0 and 1 (0.05 = 5 %), got {v!r}.")


def _check_kpis(k: KpisConfig, src: str) -> None:
    def whole(v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v > 0

    for key in ("signup_order_days", "discount_followup_days", "breakdown_months", "heatmap_cohorts"):
        if not whole(getattr(k, key)):
            raise ConfigError(f"{src}: kpis.{key} must be a positive whole number, got {getattr(k, key)!r}.")
    for key in ("second_order_windows", "age_bands"):
        v = getattr(k, key)
        if not isinstance(v, list) or not v or not all(whole(x) for x in v) or v != sorted(set(v)):
            raise ConfigError(f"{src}: kpis.{key} must be a rising list of positive whole numbers, got {v!r}.")
    q = k.inactivity_quantile
    if not isinstance(q, (int, float)) or isinstance(q, bool) or not 0 < q < 1:
        raise ConfigError(f"{src}: kpis.inactivity_quantile must be a share between 0 and 1 (0.8 = 80 %), got {q!r}.")


def _check_clv(clv: ClvConfig, src: str) -> None:
    def whole(v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v > 0

    def number(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    if clv.time_unit not in {"day", "week"}:
        raise ConfigError(f"{src}: clv.time_unit must be day or week, got {clv.time_unit!r}.")
    if clv.model not in {"auto", "bgnbd", "pareto_nbd", "mbgnbd"}:
        raise ConfigError(f"{src}: clv.model must be auto, bgnbd, pareto_nbd or mbgnbd, got {clv.model!r}.")
    for key in ("holdout_days", "clv_months", "purchase_window_days", "sample_customers"):
        if not whole(getattr(clv, key)):
            raise ConfigError(f"{src}: clv.{key} must be a positive whole number, got {getattr(clv, key)!r}.")
    if not isinstance(clv.seed, int) or isinstance(clv.seed, bool):
        raise ConfigError(f"{src}: clv.seed must be a whole number, got {clv.seed!r}.")
    if not isinstance(clv.horizons_days, list) or not clv.horizons_days or not all(whole(h) for h in clv.horizons_days):
        raise ConfigError(f"{src}: clv.horizons_days must be a list of positive whole numbers of days, got {clv.horizons_days!r}.")
    for key in ("penalizer", "retry_penalizer"):
        if not number(getattr(clv, key)) or getattr(clv, key) < 0:
            raise ConfigError(f"{src}: clv.{key} must be a number >= 0, got {getattr(clv, key)!r}.")
    if not number(clv.gross_margin) or not 0 < clv.gross_margin <= 1:
        raise ConfigError(f"{src}: clv.gross_margin must be a share between 0 and 1 (0.3 = 30 %), got {clv.gross_margin!r}.")
    if not number(clv.monthly_discount_rate) or not 0 <= clv.monthly_discount_rate < 1:
        raise ConfigError(
            f"{src}: clv.monthly_discount_rate must be between 0 and 1 (0.01 = 1 % a month), got {clv.monthly_discount_rate!r}.")
    if not number(clv.correlation_warning) or not 0 < clv.correlation_warning <= 1:
        raise ConfigError(f"{src}: clv.correlation_warning must be between 0 and 1, got {clv.correlation_warning!r}.")


def _check_churn(ch: ChurnConfig, src: str) -> None:
    def whole(v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v > 0

    def number(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    for key in ("horizon_days", "min_customers", "min_class_size", "max_train_rows", "max_iter", "mix_levels",
                "importance_rows", "importance_repeats"):
        if not whole(getattr(ch, key)):
            raise ConfigError(f"{src}: churn.{key} must be a positive whole number, got {getattr(ch, key)!r}.")
    if not whole(ch.max_leaf_nodes) or ch.max_leaf_nodes < 2:
        raise ConfigError(f"{src}: churn.max_leaf_nodes must be a whole number >= 2, got {ch.max_leaf_nodes!r}.")
    t = ch.tier_thresholds
    if (not isinstance(t, list) or len(t) != 2 or not all(number(v) for v in t)
            or not 0 < t[0] < t[1] < 1):
        raise ConfigError(
            f"{src}: churn.tier_thresholds must be two probabilities [medium_from, high_from] with 0 < medium < high < 1, got {t!r}.")
    if not number(ch.calibration_share) or not 0 < ch.calibration_share < 0.5:
        raise ConfigError(f"{src}: churn.calibration_share must be between 0 and 0.5 (0.2 = 20 %), got {ch.calibration_share!r}.")
    if not number(ch.learning_rate) or not 0 < ch.learning_rate <= 1:
        raise ConfigError(f"{src}: churn.learning_rate must be between 0 and 1, got {ch.learning_rate!r}.")
    if ch.model_threads is not None and not whole(ch.model_threads):
        raise ConfigError(f"{src}: churn.model_threads must be a positive whole number or null (all cores), got {ch.model_threads!r}.")
    if not isinstance(ch.random_state, int) or isinstance(ch.random_state, bool):
        raise ConfigError(f"{src}: churn.random_state must be a whole number, got {ch.random_state!r}.")


def _check_winback(wb: WinbackConfig, src: str) -> None:
    def whole(v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v > 0

    def share(v, low_ok=True) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and (0 <= v if low_ok else 0 < v) and v <= 1

    for key in ("candidate_segments", "candidate_risk_tiers"):
        v = getattr(wb, key)
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise ConfigError(f"{src}: winback.{key} must be a list of names (may be empty), got {v!r}.")
    if not set(wb.candidate_risk_tiers) <= {"low", "medium", "high"}:
        raise ConfigError(f"{src}: winback.candidate_risk_tiers may hold only low, medium and high, got {wb.candidate_risk_tiers!r}.")
    for key in ("window_days", "draws", "min_group_customers"):
        if not whole(getattr(wb, key)):
            raise ConfigError(f"{src}: winback.{key} must be a positive whole number, got {getattr(wb, key)!r}.")
    if not isinstance(wb.contact_without_discount, bool):
        raise ConfigError(f"{src}: winback.contact_without_discount must be true or false, got {wb.contact_without_discount!r}.")
    lv = wb.discount_levels
    if (not isinstance(lv, list) or not all(share(x, low_ok=False) and x < 1 for x in lv) or lv != sorted(set(lv))):
        raise ConfigError(f"{src}: winback.discount_levels must be rising shares between 0 and 1 (0.1 = 10 % off), got {lv!r}.")
    if not isinstance(wb.contact_cost, (int, float)) or isinstance(wb.contact_cost, bool) or wb.contact_cost < 0:
        raise ConfigError(f"{src}: winback.contact_cost must be an amount >= 0 per contacted customer, got {wb.contact_cost!r}.")
    au = wb.assumed_uplift
    needed = set(lv) | ({0.0} if wb.contact_without_discount else set())
    if (not isinstance(au, dict) or not all(share(k) and isinstance(v, (int, float)) and -1 < v < 1 for k, v in au.items())
            or not needed <= {float(k) for k in au}):
        raise ConfigError(f"{src}: winback.assumed_uplift must map every offered discount (0 = contact without discount, "
                          f"and each of winback.discount_levels) to an uplift in purchase probability between -1 and 1, got {au!r}.")
    if not isinstance(wb.assumed_uplift_sd_share, (int, float)) or isinstance(wb.assumed_uplift_sd_share, bool) \
            or wb.assumed_uplift_sd_share < 0:
        raise ConfigError(f"{src}: winback.assumed_uplift_sd_share must be a number >= 0 (0.5 = sd of half the uplift), "
                          f"got {wb.assumed_uplift_sd_share!r}.")
    if not share(wb.holdout_share, low_ok=False) or not wb.holdout_share < 1:
        raise ConfigError(f"{src}: winback.holdout_share must be between 0 and 1 (0.5 = half), got {wb.holdout_share!r}.")
    if not isinstance(wb.seed, int) or isinstance(wb.seed, bool):
        raise ConfigError(f"{src}: winback.seed must be a whole number, got {wb.seed!r}.")
    if wb.budget is not None and (not isinstance(wb.budget, (int, float)) or isinstance(wb.budget, bool) or wb.budget <= 0):
        raise ConfigError(f"{src}: winback.budget must be a positive amount or null (no cap), got {wb.budget!r}.")


def _check_offers(of: OffersConfig, src: str) -> None:
    for key in ("affinity_window_days", "min_support", "top_n", "repeat_min_orders", "horizon_days",
                "similar_min_customers", "min_days_between_contacts", "second_order_max_days"):
        v = getattr(of, key)
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise ConfigError(f"{src}: offers.{key} must be a positive whole number, got {v!r}.")
    if of.repeat_min_orders < 2:
        raise ConfigError(f"{src}: offers.repeat_min_orders must be at least 2 (a cycle needs two orders), got {of.repeat_min_orders!r}.")
    if not isinstance(of.min_lift, (int, float)) or isinstance(of.min_lift, bool) or of.min_lift < 1:
        raise ConfigError(f"{src}: offers.min_lift must be a number >= 1 (1.2 = 20 % above the base rate), got {of.min_lift!r}.")


def load_config(path: str | Path = "config/default.yml") -> Config:
    """Read a YAML config (relative paths are taken from the project root), fill defaults and validate."""
    p = resolve(path)
    if not p.exists():
        raise ConfigError(f"Config file {path} does not exist; copy config/default.yml and pass its path.")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML ({exc.__class__.__name__}: {exc}).") from None
    return config_from_dict(raw, source=str(path))


def config_from_dict(values: dict, source: str = "config") -> Config:
    """Build and validate a Config from a plain dict (as read from YAML)."""
    cfg = _build(Config, values, "config", source)
    cfg = dataclasses.replace(cfg, source=source)
    _check(cfg)
    return cfg
