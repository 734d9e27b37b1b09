"""Where a shop-month's files live, and atomic save / typed load of each artifact.

A month's artifacts sit in ``data/processed/<shop>/<YYYY-MM>/`` (DESIGN.md, "Artifacts"). Every write
goes to a temporary file in the same folder and is renamed into place, so a crash never leaves a
half-written artifact that a later notebook would read.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from helpers.paths import resolve

FILES = {
    "orders_clean": "orders_clean.parquet",
    "customers_clean": "customers_clean.parquet",
    "campaigns_clean": "campaigns_clean.parquet",
    "quarantine": "quarantine.csv",
    "data_quality": "data_quality.json",
    "kpis": "kpis.csv",
    "cohorts": "cohorts.csv",
    "segments": "segments.parquet",
    "clv": "clv.parquet",
    "clv_model": "clv_model.json",
    "churn": "churn.parquet",
    "churn_model": "churn_model.json",
    "winback_measured": "winback_measured.csv",
    "winback_plan": "winback_plan.csv",
    "winback_targets": "winback_targets.csv",
    "offers": "offers.parquet",
    "customers_scored": "customers_scored.parquet",
}

# Spreadsheet programs run a cell that starts with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "@", "\t", "\r")


class MissingArtifact(FileNotFoundError):
    """An earlier stage's artifact is absent (message says which notebook to run first)."""


def path(processed_dir: str | Path, name: str) -> Path:
    """The file of artifact `name` (a key of FILES) for the month in `processed_dir`."""
    if name not in FILES:
        raise KeyError(f"unknown artifact {name!r}; known: {', '.join(FILES)}")
    return resolve(processed_dir) / FILES[name]


def require(processed_dir: str | Path, name: str, made_by: str) -> Path:
    """The artifact's path, or one clear sentence saying which notebook makes it."""
    p = path(processed_dir, name)
    if not p.exists():
        raise MissingArtifact(f"{FILES[name]} is missing in {processed_dir}; run {made_by} for this month first.")
    return p


def _atomic_target(p: Path) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    return p.with_name(f".{p.name}.tmp")


def save_json(processed_dir: str | Path, name: str, data: dict) -> Path:
    p = path(processed_dir, name)
    tmp = _atomic_target(p)
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, p)
    return p


def load_json(processed_dir: str | Path, name: str, made_by: str = "the earlier notebooks") -> dict:
    return json.loads(require(processed_dir, name, made_by).read_text(encoding="utf-8"))


def escape_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """Prefix text cells that a spreadsheet would execute as a formula with an apostrophe."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            s = out[col].astype("string")
            risky = s.str.startswith(_FORMULA_START, na=False) | s.str.match(r"^-[^0-9.]", na=False)
            out[col] = s.mask(risky, "'" + s)
    return out


def save_csv(processed_dir: str | Path, name: str, df: pd.DataFrame) -> Path:
    p = path(processed_dir, name)
    tmp = _atomic_target(p)
    escape_formulas(df).to_csv(tmp, index=False, lineterminator="\n")
    os.replace(tmp, p)
    return p


def save_parquet(processed_dir: str | Path, name: str, df: pd.DataFrame) -> Path:
    p = path(processed_dir, name)
    tmp = _atomic_target(p)
    df.to_parquet(tmp, index=False)
    os.replace(tmp, p)
    return p


def load_parquet(processed_dir: str | Path, name: str, made_by: str = "the earlier notebooks") -> pd.DataFrame:
    return pd.read_parquet(require(processed_dir, name, made_by))
