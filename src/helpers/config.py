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
class Config:
    shop: ShopConfig = field(default_factory=ShopConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    columns: ColumnsConfig = field(default_factory=ColumnsConfig)
    cleaning: CleaningConfig = field(default_factory=CleaningConfig)
    business: BusinessConfig = field(default_factory=BusinessConfig)
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
