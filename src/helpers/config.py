"""Load and check the project configuration (config/default.yml).

The config is read once, validated, and passed explicitly to every helper:
``cfg = load_config("config/default.yml")``. Each section is a frozen pydantic model with one line
per setting: its type, its allowed range and its default. config/default.yml documents every
setting and holds exactly these defaults (a test keeps the two equal). Checks that span settings
live in one place, ``Config._cross_checks``. Unknown keys and out-of-range values stop with one
sentence that names the file, the key and what is allowed.
"""
from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from helpers.paths import resolve


class ConfigError(ValueError):
    """The configuration file is unreadable or holds an invalid value (message: one sentence)."""


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        raise ValueError("unknown time zone") from None
    return name


def _rising(values: list) -> list:
    if values != sorted(set(values)):
        raise ValueError("values must rise")
    return values


def _date_format(fmt: str | None) -> str | None:
    """A date format the cleaning can read unambiguously: %Y or %y, %m and %d, optionally %H or %I with
    %p, %M and %S; nothing else after a %."""
    if fmt is None:
        return fmt
    codes = re.findall(r"%(.)", fmt)
    unknown = sorted(set(codes) - set("YymdHMSIp"))
    if unknown:
        raise ValueError(f"unknown code {', '.join('%' + c for c in unknown)} (known: %Y %y %m %d %H %M %S %I %p)")
    if not ({"Y", "y"} & set(codes) and "m" in codes and "d" in codes):
        raise ValueError("needs a year, month and day (%Y or %y, %m, %d)")
    if ("I" in codes) != ("p" in codes) or ("I" in codes and "H" in codes):
        raise ValueError("a 12-hour clock needs both %I and %p (and no %H); a 24-hour clock is %H")
    if len(codes) != len(set(codes)):
        raise ValueError("names a code twice")
    return fmt


# Reusable settings types; the description completes "<key> must be ..." in error messages.
Whole = Annotated[int, Field(description="a whole number")]
PositiveInt = Annotated[int, Field(gt=0, description="a positive whole number")]
AtLeastTwo = Annotated[int, Field(ge=2, description="a whole number of at least 2")]
NonNegative = Annotated[float, Field(ge=0, description="a number >= 0")]
Share = Annotated[float, Field(gt=0, lt=1, description="a share between 0 and 1 (0.05 = 5 %)")]
Probability = Annotated[float, Field(gt=0, le=1, description="a share between 0 and 1 (0.3 = 30 %)")]
RisingWhole = Annotated[list[PositiveInt], Field(min_length=1, description="a rising list of positive whole numbers"),
                        AfterValidator(_rising)]
TimeZone = Annotated[str, AfterValidator(_zone)]
DateFormat = Annotated[str | None, Field(description='null or a date format such as "%d.%m.%Y %H:%M"'),
                       AfterValidator(_date_format)]
ColumnMap = Annotated[dict[str, str], Field(description="a map of export column names to contract names (text: text)")]


class _Section(BaseModel):
    """Frozen and strict (a bool is not a number, "5" is not 5); unknown keys are refused."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    def replace(self, **changes: Any):
        """A validated copy with some settings changed (the old ``dataclasses.replace``)."""
        return self.model_validate({**dict(self), **changes})


CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="a three-letter currency code such as USD")]
Rate = Annotated[float, Field(gt=0, description="a positive number")]


class ShopConfig(_Section):
    currency: str = "EUR"
    exchange_rates: dict[CurrencyCode, Rate] = Field(
        {}, description="a map of currency codes to the value of one unit in shop.currency ({USD: 0.92})")
    timezone: TimeZone | None = Field(None, description="an IANA time zone name such as Europe/Prague, or null")


SparkKey = Annotated[str, Field(pattern=r"^spark\.[A-Za-z0-9_.\-]+$", description="a Spark setting name such as spark.sql.shuffle.partitions")]
SparkConf = Annotated[dict[SparkKey, str | int | float | bool], Field(
    description="a map of Spark settings to values, for example {spark.sql.shuffle.partitions: 8, spark.driver.memory: 4g}")]


class EngineConfig(_Section):
    backend: str = Field("duckdb", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                         description="duckdb, spark or the name of another Ibis backend")
    spark_master: str = Field("local[2]", pattern=r"\S", description="a Spark master URL such as local[2]")
    spark_conf: SparkConf = {}
    spark_log_level: Literal["ALL", "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "OFF"] = Field(
        "WARN", description="a log4j level: what Spark writes to spark.log beside the month's reports (ERROR and "
                            "worse also on the console)")
    # a Spark Connect server to work on instead of starting a Spark driver (its own settings apply)
    spark_remote: str | None = Field(None, pattern=r"^sc://\S+$", description="null or a URL such as sc://host:15002")
    # `retention run` on Spark: one driver (a Spark Connect server, helpers.spark_server) for the month's notebooks
    spark_shared_driver: bool = Field(True, description="true or false")
    threads: PositiveInt | None = Field(None, description="a positive whole number or null (all cores)")
    # pasted into DuckDB's SET memory_limit, hence the strict pattern
    memory_limit: str | None = Field("3GB", pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$",
                                     description='a size such as "8GB" or "512 MiB", or null (DuckDB\'s default)')
    # where DuckDB writes what does not fit in memory_limit; pasted into SET temp_directory (quotes doubled)
    temp_directory: str | None = Field(None, pattern=r"\S",
                                       description="a folder, or null (retention-duckdb in the system's temp folder)")
    # the runner's notebooks at once; each kernel's DuckDB then gets its share of threads and memory_limit
    parallel_notebooks: PositiveInt = Field(2, description="a positive whole number (1 = one notebook at a time)")
    # the runner's kernels forked from one process that has imported what the notebooks import (helpers.warm_kernels)
    warm_kernels: bool = Field(True, description="true or false")


class ColumnsConfig(_Section):
    """A platform preset (helpers.presets) or, per file, the shop export's column name -> the contract's name."""

    preset: Literal["shopify", "woocommerce"] | None = Field(
        None, description="shopify, woocommerce or null (the raw data contract, with the column maps below)")
    orders: ColumnMap = {}
    customers: ColumnMap = {}
    campaigns: ColumnMap = {}
    marketing_spend: ColumnMap = {}


class CleaningConfig(_Section):
    encoding_fallbacks: list[str] = ["cp1250", "latin-1"]
    excel_sheet: str | None = Field(None, description="null (the first sheet) or the name of a sheet of an .xlsx export")
    decimal_separator: Literal["auto", ".", ","] = "auto"
    date_format: DateFormat = None
    test_statuses: list[str] = ["test"]
    cancelled_statuses: list[str] = ["cancelled", "canceled", "voided"]
    returned_statuses: list[str] = ["returned", "refunded"]
    unpaid_statuses: list[str] = ["unpaid", "pending", "failed", "on-hold"]
    test_customer_prefixes: list[str] = ["TEST"]
    completed_status_if_missing: str = "completed"
    status_map: dict[str, str] = Field(
        {}, description="a map of the shop's own status words to known statuses (completed or a word of the status "
                        "lists above), such as {storniert: cancelled}")
    order_time_tolerance_hours: float = Field(
        24.0, ge=0, description="a number of hours >= 0 (24 = one day; 0 = every line of an order at one time)")
    min_order_date: date = Field(date(2000, 1, 1), strict=False, description='a date written as YYYY-MM-DD')
    max_line_amount: float | None = Field(None, gt=0, description="a positive amount or null (no limit)")
    fold_id_case: bool = False

    def known_statuses(self) -> list[str]:
        """The status words the rules know, trimmed and in lower case: completed (and the status of a line without
        one), then the test, cancelled, returned and unpaid lists; ``status_map`` must map to one of them."""
        words = ["completed", self.completed_status_if_missing, *self.test_statuses, *self.cancelled_statuses,
                 *self.returned_statuses, *self.unpaid_statuses]
        return list(dict.fromkeys(w.strip().lower() for w in words))


class BusinessConfig(_Section):
    inactivity_days: PositiveInt = Field(180, description="a positive whole number of days")


class KpisConfig(_Section):
    """KPIs and cohorts (stage 02); the inactivity window itself is business.inactivity_days."""

    second_order_windows: RisingWhole = [30, 60, 90]
    signup_order_days: PositiveInt = 30
    discount_followup_days: PositiveInt = 365
    inactivity_quantile: Share = Field(0.8, description="a share between 0 and 1 (0.8 = 80 %)")
    breakdown_months: PositiveInt = 12
    age_bands: RisingWhole = [25, 35, 45, 55, 65]
    heatmap_cohorts: PositiveInt = 24


class SegmentsConfig(_Section):
    """RFM segment grid (segment -> R score range x FM score range) and k-means settings (stage 03).

    A range is one score (``5``) or ``"lo-hi"`` (``"4-5"``), inclusive, scores 1..5. Every R x FM
    cell must belong to exactly one segment; ``grid_cells()`` says which cell is wrong if not.
    """

    grid: dict[str, dict[str, int | str]] = Field({
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
    }, description='a map of segment names to {r: ..., fm: ...} with scores 1..5 or ranges like "4-5"')
    watch: list[str] = ["At Risk", "Hibernating", "Lost"]
    k_min: AtLeastTwo = 2
    k_max: AtLeastTwo = 8
    silhouette_sample: AtLeastTwo = 10_000
    random_state: Whole = 42

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

        if not self.grid:
            raise ValueError("must map segment names to {r: ..., fm: ...}")
        cells: dict[tuple[int, int], str] = {}
        for name, spec in self.grid.items():
            if set(spec) != {"r", "fm"}:
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


class ClvConfig(_Section):
    """CLV stage (notebook 04): time unit, holdout validation, model choice and business values."""

    time_unit: Literal["day", "week"] = "day"
    holdout_days: PositiveInt = 180
    model: Literal["auto", "bgnbd", "pareto_nbd", "mbgnbd"] = "auto"
    model_tolerance: NonNegative = 0.05
    penalizer: NonNegative = 0.0
    max_evaluations: PositiveInt = 3000
    fit_seconds: float = Field(60.0, gt=0, description="a positive number of seconds")
    gross_margin: Probability = 0.3
    monthly_discount_rate: float = Field(0.01, ge=0, lt=1, description="between 0 and 1 (0.01 = 1 % a month)")
    clv_months: PositiveInt = 12
    horizons_days: list[PositiveInt] = Field([30, 90, 365], min_length=1,
                                             description="a list of positive whole numbers of days")
    purchase_window_days: PositiveInt = 90
    correlation_warning: Probability = 0.3
    sample_customers: PositiveInt = 200_000
    seed: Whole = 42


class ForecastConfig(_Section):
    """Forecast (notebook 04, "What will the next months bring?"): horizon, band, backtest, new customers."""

    months: int = Field(12, ge=1, le=36, description="a whole number of months from 1 to 36")
    horizons_months: list[PositiveInt] = Field([3, 6, 12], min_length=1,
                                               description="a list of positive whole numbers of months")
    band: float = Field(0.8, gt=0, lt=1, description="a share between 0 and 1 (0.8 = an 80 % band)")
    backtest_months: list[PositiveInt] = Field([3, 12], description="a list of positive whole numbers of months")
    seasonal_min_months: int = Field(24, ge=24, description="a whole number of months, at least 24 (two years)")
    curve_cohorts: PositiveInt = 24
    draws: int = Field(400, ge=50, description="a whole number of at least 50")
    seed: Whole = 42


class BudgetConfig(_Section):
    """Acquisition budgets (notebook 04, "What is a new customer worth?"): how fast a new customer must pay back."""

    payback_months: int = Field(12, ge=1, le=24, description="a whole number of months from 1 to 24")


class ChurnConfig(_Section):
    """Churn stage (notebook 05): churn definition, risk tiers and the supervised model's settings."""

    horizon_days: PositiveInt = 90
    tier_thresholds: Annotated[list[Share], AfterValidator(_rising)] = Field(
        [0.5, 0.8], min_length=2, max_length=2,
        description="two probabilities [medium_from, high_from] with 0 < medium < high < 1")
    min_customers: PositiveInt = 200
    min_class_size: PositiveInt = 20
    max_train_rows: PositiveInt = 300_000
    backtest_rows: PositiveInt = 300_000
    calibration_share: float = Field(0.2, gt=0, lt=0.5, description="between 0 and 0.5 (0.2 = 20 %)")
    max_iter: PositiveInt = 200
    learning_rate: Probability = Field(0.05, description="between 0 and 1")
    max_leaf_nodes: AtLeastTwo = 15
    mix_levels: PositiveInt = 6
    importance_rows: PositiveInt = 5_000
    importance_repeats: PositiveInt = 3
    model_threads: PositiveInt | None = Field(None, description="a positive whole number or null (the notebook's "
                                                                "share of the cores)")
    random_state: Whole = 42


class SummaryConfig(_Section):
    """Monthly summary (notebook 07): thresholds of the "what to do now" rules (helpers.summary)."""

    max_actions: int = Field(5, ge=3, le=5, description="a whole number from 3 to 5")
    kpi_change: Share = 0.05
    retention_drop_pp: Share = 0.05
    recent_cohorts: PositiveInt = 6
    top_clv_share: Share = 0.1


class WinbackConfig(_Section):
    """Win-back stage (notebook 06): candidates, offer options, uplift assumptions and the simulation.

    Gross margin is ``clv.gross_margin`` (not repeated here)."""

    candidate_segments: list[str] = ["At Risk", "Can't Lose Them", "Hibernating", "About to Sleep"]
    candidate_risk_tiers: list[Literal["low", "medium", "high"]] = Field(
        ["high"], description="a list holding only low, medium and high (may be empty)")
    window_days: PositiveInt = 30
    contact_without_discount: bool = True
    discount_levels: Annotated[list[Share], AfterValidator(_rising)] = Field(
        [0.05, 0.10, 0.15, 0.20], description="rising shares between 0 and 1 (0.1 = 10 % off)")
    contact_cost: NonNegative = Field(0.10, description="an amount >= 0 per contacted customer")
    # discount (0 = contact without discount) -> uplift in purchase probability; YAML keys are floats
    assumed_uplift: dict[Annotated[float, Field(ge=0, le=1)], Annotated[float, Field(gt=-1, lt=1)]] = Field(
        {0.0: 0.007, 0.05: 0.015, 0.10: 0.025, 0.15: 0.035, 0.20: 0.045},
        description="a map of discounts (0..1) to uplifts in purchase probability between -1 and 1")
    assumed_uplift_sd_share: NonNegative = Field(0.5, description="a number >= 0 (0.5 = sd of half the uplift)")
    min_group_customers: PositiveInt = 200
    holdout_share: Share = Field(0.5, description="between 0 and 1 (0.5 = half)")
    draws: PositiveInt = 2000
    seed: Whole = 42
    budget: float | None = Field(None, gt=0, description="a positive amount or null (no cap)")
    # the randomized control group of the next campaign (winback.control_size: a power calculation)
    control_min_detectable_uplift: Share = Field(
        0.02, description="a share between 0 and 1 (0.02 = 2 percentage points more buyers)")
    control_base_conversion: Share = Field(0.05, description="a share between 0 and 1 (0.05 = 5 % buy in the window)")
    control_alpha: float = Field(0.05, gt=0, lt=0.5, description="between 0 and 0.5 (0.05 = 5 %, two-sided)")
    control_power: float = Field(0.8, ge=0.5, lt=1, description="between 0.5 and 1 (0.8 = 80 %)")
    control_max_share: float = Field(0.5, ge=0, le=0.5, description="between 0 and 0.5 (0 = no control group)")


class TrackConfig(_Section):
    """Track record (notebook 07, helpers.track): how last months' predictions are judged."""

    error_band: Share = Field(0.2, description="a share between 0 and 1 (0.2 = an alarm beyond +/-20 %)")
    verdict_tolerance: Share = Field(0.05, description="a share between 0 and 1 (0.05 = within +/-5 % is on target)")
    verdict_months: PositiveInt = 3
    calibration_bins: AtLeastTwo = 10


class OffersConfig(_Section):
    """Personalised offers (notebook 06, "What to offer"): affinities, repeat cycles, holdout, contact cap."""

    affinity_window_days: PositiveInt = 90
    min_support: PositiveInt = 30
    min_lift: float = Field(1.1, ge=1, description="a number >= 1 (1.2 = 20 % above the base rate)")
    top_n: PositiveInt = 3
    repeat_min_orders: int = Field(2, ge=2, description="a whole number of at least 2 (a cycle needs two orders)")
    horizon_days: PositiveInt = 90
    similar_min_customers: PositiveInt = 50
    min_days_between_contacts: PositiveInt = 7
    second_order_max_days: PositiveInt = 365
    evaluation_customers: PositiveInt | None = Field(
        100_000, description="a positive whole number or null (every customer)")


class ReportsConfig(_Section):
    """How the pages show numbers: a rate on a small base is shown with its counts, not as a bare share."""

    min_rate_base: PositiveInt = 100


# The sections, in the order of config/default.yml and the notebooks: ``cfg.<name>`` is a section model.
SECTIONS = {"shop": ShopConfig, "engine": EngineConfig, "columns": ColumnsConfig, "cleaning": CleaningConfig,
            "business": BusinessConfig, "kpis": KpisConfig, "segments": SegmentsConfig, "clv": ClvConfig,
            "forecast": ForecastConfig, "budget": BudgetConfig, "churn": ChurnConfig, "winback": WinbackConfig, "offers": OffersConfig, "summary": SummaryConfig,
            "track": TrackConfig, "reports": ReportsConfig}


class _Config(_Section):
    """The whole configuration: one section per stage (``SECTIONS``, added by ``create_model`` below), and
    the file it was read from (``source``)."""

    source: str = "defaults"

    @model_validator(mode="before")
    @classmethod
    def _empty_section_takes_defaults(cls, values: Any) -> Any:
        """A section with nothing under it (``clv:``, YAML null) keeps its defaults."""
        if isinstance(values, dict):
            return {k: {} if v is None and k != "source" else v for k, v in values.items()}
        return values

    @model_validator(mode="after")
    def _cross_checks(self) -> _Config:
        """Every check that involves more than one setting; each message names the key to fix."""
        known = self.cleaning.known_statuses()
        unknown = [v for v in self.cleaning.status_map.values() if v.strip().lower() not in known]
        if unknown:
            raise ValueError(f"cleaning.status_map must map each status to a known status ({', '.join(known)}), "
                             f"got {unknown[0]!r}")
        seg, wb, fc = self.segments, self.winback, self.forecast
        if max(fc.horizons_months) > fc.months:
            raise ValueError(f"forecast.horizons_months must be at most forecast.months ({fc.months}), "
                             f"got {max(fc.horizons_months)}")
        try:
            names = set(seg.grid_cells().values())
        except ValueError as exc:
            raise ValueError(f"segments.grid: {exc}; every R x FM cell (1..5 x 1..5) needs exactly one segment"
                             ) from None
        if not set(seg.watch) <= names:
            raise ValueError(f"segments.watch must list segment names from segments.grid, got {seg.watch!r}")
        if seg.k_max < seg.k_min:
            raise ValueError(f"segments.k_max must be at least segments.k_min ({seg.k_min}), got {seg.k_max!r}")
        unknown = [s for s in wb.candidate_segments if s not in names]
        if unknown:
            raise ValueError(f"winback.candidate_segments must list segment names from segments.grid "
                             f"({', '.join(seg.grid)}), got {unknown[0]!r}")
        offered = set(wb.discount_levels) | ({0.0} if wb.contact_without_discount else set())
        missing = sorted(offered - set(wb.assumed_uplift))
        if missing:
            raise ValueError(f"winback.assumed_uplift must map every offered discount (0 = contact without discount, "
                             f"and each of winback.discount_levels) to an uplift, but has none for "
                             f"{', '.join(map(str, missing))}")
        return self


Config = create_model("Config", __base__=_Config, __module__=__name__,
                      **{name: (section, Field(default_factory=section)) for name, section in SECTIONS.items()})


def _error_sentence(exc: ValidationError, values: Any, source: str) -> str:
    """The first pydantic error as one sentence naming the file and the dotted key."""
    err = exc.errors()[0]
    if err["type"] == "value_error" and not err["loc"]:  # a cross-check: its message names the keys
        return f"{source}: {err['ctx']['error']}."
    path, owner, field, value = [], Config, None, values
    for part in err["loc"]:  # walk the models down to the setting; deeper parts are list items or map keys
        if not (isinstance(owner, type) and issubclass(owner, BaseModel) and part in owner.model_fields):
            break
        field, owner = owner.model_fields[part], owner.model_fields[part].annotation
        path.append(str(part))
        value = value.get(part) if isinstance(value, dict) else getattr(value, part, None)
    key = ".".join(path)
    if err["type"] == "extra_forbidden":
        known = ", ".join(k for k in owner.model_fields if k != "source")
        name = ".".join([*path, str(err["loc"][-1])])
        if not path:
            return f"{source}: unknown section '{name}'; known sections are {known}."
        return f"{source}: unknown key '{name}'; known keys under '{key}' are {known}."
    if not path or (isinstance(owner, type) and issubclass(owner, BaseModel)):
        return f"{source}: '{key or 'config'}' must be a mapping of keys to values, got {value!r}."
    rule = field.description or _plain_rule(err, item=len(err["loc"]) > len(path))
    why = f": {err['ctx']['error']}" if err["type"] == "value_error" and err.get("ctx") else ""
    return f"{source}: {key} must be {rule}, got {value!r}{why}."


# pydantic's words for a wrong type, as a reader would say them (settings without a description)
_TYPE_WORDS = {"string_type": "text", "bool_type": "true or false", "list_type": "a list such as [a, b]",
               "dict_type": "a map such as {a: b}"}


def _plain_rule(err: dict, item: bool) -> str:
    """What a setting without a description must be, from the pydantic error; `item`: the error is in one of
    the setting's list items or map entries (the message then describes the whole setting)."""
    words = _TYPE_WORDS.get(err["type"]) or re.sub(r"^Input should be ", "", err["msg"])
    if item:
        return "a list of text values" if err["type"] == "string_type" else f"a list or map of items that are {words}"
    return words


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


def config_text_with(path: str | Path, changes: dict[str, dict], why: str) -> str:
    """The YAML text of the config file at `path` with some settings changed (``{section: {key: value}}``),
    validated first, so a wrong value stops with one sentence before anything runs."""
    p = resolve(path)
    values = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    for section, settings in changes.items():
        values[section] = {**(values.get(section) or {}), **settings}
    config_from_dict(values, source=f"{p.name} with {why}")
    changed = ", ".join(f"{s}.{k}: {v}" for s, kv in changes.items() for k, v in kv.items())
    return (f"# {p.name} with {changed} ({why}); written by the run - edit the original\n"
            + yaml.safe_dump(values, sort_keys=False, allow_unicode=True))


def config_from_dict(values: dict, source: str = "config") -> Config:
    """Build and validate a Config from a plain dict (as read from YAML)."""
    if isinstance(values, dict) and "source" in values:  # the file's name is set here, not in the file
        known = ", ".join(k for k in Config.model_fields if k != "source")
        raise ConfigError(f"{source}: unknown section 'source'; known sections are {known}.")
    try:
        return Config.model_validate({**values, "source": source} if isinstance(values, dict) else values)
    except ValidationError as exc:
        raise ConfigError(_error_sentence(exc, values, source)) from None
