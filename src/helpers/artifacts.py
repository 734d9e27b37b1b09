"""Every artifact declared once, and the only place that reads or writes a file.

A month's artifacts sit in ``data/processed/<shop>/<YYYY-MM>/`` (DESIGN.md, "Artifacts"). Each is
declared in :data:`ARTIFACTS` with its file, the notebook that makes it and, for tables, a pandera
schema of its columns and types. Column names never depend on a config value: a horizon or a
``top_n`` goes into the model JSON, not into a column name.

Stages read and write through this module only:

- ``read(processed_dir, name)`` / ``write(processed_dir, name, frame_or_dict)``: pandas frames and
  JSON documents, checked against the declaration on write;
- ``table(con, processed_dir, name)`` / ``write_table(con, processed_dir, name, expr)``: Parquet
  artifacts as Ibis table expressions (order lines never pass through pandas);
- ``raw_table(con, path)``: a shop's raw Parquet export as an all-string table (cleaning parses values);
  ``raw_head`` + ``raw_csv``: a raw CSV split by its own header, rows with the wrong field count visible; and
  ``utf8_source`` for an export in another encoding (re-encoded into a temporary folder), ``mixed_line_ends``
  and ``text_copy`` for a text export to be read from its header or with one kind of line end, and
  ``workbook_rows`` + ``write_text_rows`` for an Excel workbook's sheet, read as a CSV;
- ``write_file`` / ``read_json_file`` / ``write_json_file``: files outside a month folder (reports,
  ``run.json``, the demo shop).

Every write goes to a temporary file in the same folder and is renamed into place
(:func:`atomic`, the one atomic writer), so a crash never leaves a half-written file that a
later notebook would read.
"""
from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import os
import secrets
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb
import ibis
import numpy as np
import openpyxl
import pandas as pd
import pandera.pandas as pa
import psutil
import pyarrow
import pyarrow.parquet as pq

from helpers import engine
from helpers.paths import resolve

# Spreadsheet programs run a cell that starts with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "@", "\t", "\r")


class MissingArtifact(FileNotFoundError):
    """An earlier stage's artifact is absent (message says which notebook to run first)."""


class ArtifactSchemaError(ValueError):
    """A stage tried to write a frame that does not match the artifact's declaration."""


@dataclass(frozen=True)
class Artifact:
    """One declared artifact: its file in the month folder, the notebook that makes it, what it
    holds, (for tables) the pandera schema its rows must satisfy, and the notebooks that read it in the
    same month (``read_by``; the runner starts a notebook once the makers of what it reads have finished)."""

    name: str
    file: str
    made_by: str
    description: str
    schema: pa.DataFrameSchema | None = None
    csv_dtypes: dict | None = None  # how a CSV artifact's text columns are read back
    read_by: tuple[str, ...] = ()  # this month's readers; a later month reading it (03, 07) is not one

    @property
    def kind(self) -> str:
        return Path(self.file).suffix.lstrip(".")

    @property
    def columns(self) -> list[str]:
        return list(self.schema.columns) if self.schema is not None else []


def _c(dtype, nullable: bool = False, checks=None, required: bool = True) -> pa.Column:
    return pa.Column(dtype, nullable=nullable, checks=checks, required=required, coerce=False)


_STR, _FLOAT, _INT, _BOOL = "str", "float64", "int64", "bool"
_SHARE = pa.Check.in_range(0.0, 1.0)
_TS = "datetime64[us]"

# Columns of the clean tables are declared in helpers.contract terms: required columns must be
# present; optional ones are present when the shop's export had them.
ARTIFACTS: dict[str, Artifact] = {}


def declare(name: str, file: str, made_by: str, description: str, columns: dict[str, pa.Column] | None = None,
            csv_dtypes: dict | None = None, strict: bool = True, read_by: tuple[str, ...] = ()) -> Artifact:
    schema = pa.DataFrameSchema(columns, strict=strict, name=name) if columns is not None else None
    art = Artifact(name, file, made_by, description, schema, csv_dtypes, tuple(read_by))
    ARTIFACTS[name] = art
    return art



_ORDERS_OPTIONAL_TEXT = ("product_id", "category", "status", "payment_method", "channel", "currency", "coupon_code")

declare("orders_clean", "orders_clean.parquet", "01_clean",
        "kept order lines in the contract's layout, returns as negative amounts, sorted by date",
        {"order_id": _c(_STR), "customer_id": _c(_STR), "order_date": _c(_TS), "amount": _c(_FLOAT),
         "quantity": _c(None, nullable=True),
         **{c: _c(_STR, nullable=True) for c in _ORDERS_OPTIONAL_TEXT[:-1]},
         "discount_amount": _c(None, nullable=True), "coupon_code": _c(_STR, nullable=True),
         "is_return": _c(_BOOL), "source_row": _c(_INT)},
        read_by=("02_kpis", "03_segments", "04_clv", "05_churn", "06_winback", "07_summary"))
declare("customers_clean", "customers_clean.parquet", "01_clean",
        "kept customers (and leads), one row per customer_id",
        {"customer_id": _c(_STR), "signup_date": _c(None, nullable=True), "email": _c(_STR, nullable=True),
         "gender": _c(_STR, nullable=True), "birth_year": _c(None, nullable=True), "region": _c(_STR, nullable=True),
         "marketing_opt_in": _c(_BOOL), "source_row": _c(_INT)},
        read_by=("02_kpis", "03_segments", "05_churn", "06_winback", "07_summary"))
declare("campaigns_clean", "campaigns_clean.parquet", "01_clean",
        "past campaign sends: who got which arm when",
        {"campaign_id": _c(_STR), "customer_id": _c(_STR), "sent_date": _c(_TS), "arm": _c(_STR),
         "discount": _c(_FLOAT, checks=_SHARE), "source_row": _c(_INT)},
        read_by=("06_winback", "07_summary"))
declare("quarantine", "quarantine.csv", "01_clean",
        "unusable raw rows with file, row, reason (a code) and detail (a sentence); the raw row's own columns follow",
        {"file": _c(_STR), "source_row": _c(_INT), "reason": _c(_STR), "detail": _c(_STR)}, strict=False,
        csv_dtypes={"file": str, "reason": str, "detail": str, "order_id": str, "customer_id": str, "order_date": str})
declare("data_quality", "data_quality.json", "01_clean", "row accounting per file, warnings and order facts",
        read_by=("02_kpis", "04_clv", "05_churn", "07_summary"))
declare("guest_revenue", "guest_revenue.csv", "01_clean",
        "per month, the order lines without a customer id that pass every other rule (guest checkouts): lines, "
        "orders and net revenue; quarantined, so no customer figure counts them, but the shop's revenue",
        {"month": _c(_STR), "lines": _c(_INT), "orders": _c(_INT), "revenue": _c(_FLOAT)},
        csv_dtypes={"month": str}, read_by=("02_kpis",))
declare("kpis", "kpis.csv", "02_kpis", "one row per calendar month: revenue, orders, customers, shares",
        {"month": _c(_STR), "revenue": _c(_FLOAT), "gross_sales": _c(_FLOAT), "returned_value": _c(_FLOAT),
         "returns_rate": _c(_FLOAT, nullable=True), "orders": _c(_INT), "active_customers": _c(_INT),
         "new_customers": _c(_INT), "returning_customers": _c(_INT),
         "returning_revenue_share": _c(_FLOAT, nullable=True), "aov": _c(_FLOAT, nullable=True),
         "orders_per_customer": _c(_FLOAT, nullable=True), "repeat_rate": _c(_FLOAT, nullable=True),
         "sleeping_customers": _c(_INT),
         # added by issue 30: a month run before it has no such column (read as 0 by the summary)
         "guest_revenue": _c(_FLOAT, required=False)},
        csv_dtypes={"month": str}, read_by=("07_summary",))
declare("cohorts", "cohorts.csv", "02_kpis", "one row per acquisition month and months since the first order",
        {"cohort": _c(_STR), "months_since_first": _c(_INT), "cohort_size": _c(_INT), "active_customers": _c(_INT),
         "retention": _c(_FLOAT, checks=_SHARE), "revenue": _c(_FLOAT), "revenue_per_member": _c(_FLOAT)},
        csv_dtypes={"cohort": str}, read_by=("07_summary",))
declare("second_orders", "second_orders.json", "02_kpis",
        "the day after a first order by which kpis.inactivity_quantile of second orders had happened (02's gap "
        "histogram), with its as_of and quantile: 06's second-order list starts there instead of counting again",
        read_by=("06_winback",))
declare("segments", "segments.parquet", "03_segments", "one row per customer who bought: RFM, segment, cluster",
        {"customer_id": _c(_STR), "recency_days": _c(_INT), "frequency": _c(_INT), "monetary": _c(_FLOAT),
         "avg_order_value": _c(_FLOAT), "r_score": _c(_INT, checks=pa.Check.in_range(1, 5)),
         "f_score": _c(_INT, checks=pa.Check.in_range(1, 5)), "m_score": _c(_INT, checks=pa.Check.in_range(1, 5)),
         "rfm_segment": _c(_STR), "cluster": _c(_INT), "cluster_label": _c(_STR)},
        read_by=("04_clv", "05_churn", "06_winback", "07_summary"))
declare("marketing_spend_clean", "marketing_spend_clean.parquet", "01_clean",
        "what the shop paid to win customers (marketing_spend.csv): month (its first day), channel, spend in the "
        "shop's currency",
        {"month": _c(_TS), "channel": _c(_STR), "spend": _c(_FLOAT), "source_row": _c(_INT)},
        read_by=("04_clv",))
declare("clv", "clv.parquet", "04_clv",
        "one row per customer who bought: the purchase-model summary and scores; horizons in clv_model.json",
        {"customer_id": _c(_STR), "frequency": _c(_INT), "recency": _c(_FLOAT), "T": _c(_FLOAT),
         "monetary_value": _c(_FLOAT), "p_alive": _c(_FLOAT, nullable=True, checks=_SHARE),
         "exp_purchases": _c(_FLOAT, nullable=True), "p_purchase": _c(_FLOAT, nullable=True, checks=_SHARE),
         "exp_avg_value": _c(_FLOAT, nullable=True), "clv": _c(_FLOAT, nullable=True)},
        read_by=("05_churn", "06_winback", "07_summary"))
declare("clv_model", "clv_model.json", "04_clv",
        "the chosen model, its parameters, the holdout comparison and the horizons of clv.parquet's columns",
        read_by=("05_churn", "06_winback", "07_summary"))
declare("forecast", "forecast.csv", "04_clv",
        "the next forecast.months months, one row per month and source (existing: customers who bought by as_of; "
        "new: customers still to be won): expected purchases, revenue and margin, each with its band "
        "(forecast.band, 80 % by default: *_low, *_high)",
        {"month": _c(_STR), "months_ahead": _c(_INT), "source": _c(_STR, checks=pa.Check.isin(["existing", "new"])),
         **{f"{q}{s}": _c(_FLOAT) for q in ("purchases", "revenue", "margin") for s in ("", "_low", "_high")}},
        csv_dtypes={"month": str, "source": str})
declare("forecast_model", "forecast_model.json", "04_clv",
        "the forecast's card: the purchase model it used and why, how new customers were forecast, the band, the "
        "sums over forecast.horizons_months per source with their bands, and the backtest",
        read_by=("07_summary",))
declare("churn", "churn.parquet", "05_churn", "one row per customer who bought: churn probability and risk tier",
        {"customer_id": _c(_STR), "churn_probability": _c(_FLOAT, checks=_SHARE), "risk_tier": _c(_STR),
         "p_alive_baseline": _c(_FLOAT, nullable=True), "p_no_purchase_bgnbd": _c(_FLOAT, nullable=True)},
        read_by=("06_winback", "07_summary"))
declare("churn_model", "churn_model.json", "05_churn", "model card: definition, backtest metrics, chosen model",
        read_by=("07_summary",))
_UPLIFT = {"uplift_pp": _c(_FLOAT, nullable=True), "uplift_low": _c(_FLOAT, nullable=True),
           "uplift_high": _c(_FLOAT, nullable=True)}
declare("winback_measured", "winback_measured.csv", "06_winback",
        "measured uplift of past campaigns per arm and segment",
        {"campaign_id": _c(_STR), "arm": _c(_STR), "discount": _c(_FLOAT), "segment": _c(_STR),
         "n_treated": _c(_INT), "n_control": _c(_INT), "conv_treated": _c(_FLOAT), "conv_control": _c(_FLOAT), **_UPLIFT,
         # revenue per customer in the window (purchase lines), treated vs control, and its difference
         "revenue_treated": _c(_FLOAT, nullable=True), "revenue_control": _c(_FLOAT, nullable=True),
         "revenue_uplift": _c(_FLOAT, nullable=True), "revenue_uplift_low": _c(_FLOAT, nullable=True),
         "revenue_uplift_high": _c(_FLOAT, nullable=True)},
        csv_dtypes={"campaign_id": str, "arm": str, "segment": str}, read_by=("07_summary",))
declare("winback_plan", "winback_plan.csv", "06_winback",
        "simulated profit per segment and offer over the customers who can be contacted; each segment's "
        "recommended row is the plan: the customers of winback_targets.csv with that offer",
        {"segment": _c(_STR), "discount": _c(_FLOAT, nullable=True), "n_customers": _c(_INT), **_UPLIFT,
         "incremental_buyers": _c(_FLOAT), "incremental_revenue": _c(_FLOAT), "discount_cost": _c(_FLOAT),
         "incremental_profit": _c(_FLOAT), "profit_p05": _c(_FLOAT), "profit_p95": _c(_FLOAT),
         "roi": _c(_FLOAT, nullable=True), "recommended": _c(_BOOL), "option": _c(_STR), "uplift_source": _c(_STR)},
        csv_dtypes={"segment": str, "option": str, "uplift_source": str}, read_by=("07_summary",))
declare("winback_targets", "winback_targets.csv", "06_winback",
        "the consented contact list (with e-mails; never in a report)",
        {"customer_id": _c(_STR), "email": _c(_STR, nullable=True), "segment": _c(_STR), "discount": _c(_FLOAT),
         "expected_incremental_profit": _c(_FLOAT), "suggested_categories": _c(_STR, nullable=True)},
        csv_dtypes={"customer_id": str, "email": str, "segment": str, "suggested_categories": str},
        read_by=("07_summary",))
declare("campaign_plan", "campaign_plan.csv", "06_winback",
        "the next win-back campaign in the campaigns.csv layout: the contact list's customers with their offer, and "
        "a randomized control group (arm control, discount 0) held back to measure it; after sending, the shop "
        "appends it to data/raw/<shop>/campaigns.csv",
        {"campaign_id": _c(_STR), "customer_id": _c(_STR), "sent_date": _c(_STR), "arm": _c(_STR),
         "discount": _c(_FLOAT, checks=_SHARE)},
        csv_dtypes={"campaign_id": str, "customer_id": str, "sent_date": str, "arm": str}, read_by=("07_summary",))
declare("offers", "offers.parquet", "06_winback", "personalised suggestions: top categories per customer with a reason",
        {"customer_id": _c(_STR), "rank": _c(_INT), "category": _c(_STR), "product_id": _c(_STR, nullable=True),
         "reason": _c(_STR), "score": _c(_FLOAT)}, read_by=("07_summary",))
declare("predictions", "predictions.parquet", "07_summary",
        "the month's prediction snapshot per customer who bought, kept so later months can score it (helpers.track): "
        "expected purchases over 30 and 90 days, P(purchase in 90 days), churn probability over churn_horizon_days, "
        "CLV; period_days: the purchase model's period (1 = day, 7 = week)",
        {"customer_id": _c(_STR), "as_of": _c(_STR), "exp_purchases_30d": _c(_FLOAT, nullable=True),
         "exp_purchases_90d": _c(_FLOAT, nullable=True), "p_purchase_90d": _c(_FLOAT, nullable=True, checks=_SHARE),
         "churn_probability": _c(_FLOAT, nullable=True, checks=_SHARE), "churn_horizon_days": _c(_INT),
         "clv": _c(_FLOAT, nullable=True), "period_days": _c(_INT)})
declare("track_record", "track_record.csv", "07_summary",
        "every earlier month's predictions scored against what happened by this month's as_of: one row per "
        "predicted month and model, with its status (scored, horizon not complete, no prediction kept); 04's revenue "
        "forecasts (forecast_<h>m) with their band (band_low, band_high)",
        {"month": _c(_STR), "model": _c(_STR), "status": _c(_STR), "horizon_days": _c(_INT),
         "horizon_end": _c(_STR, nullable=True), "customers": _c(_INT),
         "predicted": _c(_FLOAT, nullable=True), "actual": _c(_FLOAT, nullable=True),
         "error_pct": _c(_FLOAT, nullable=True), "mae": _c(_FLOAT, nullable=True),
         "auc": _c(_FLOAT, nullable=True), "brier": _c(_FLOAT, nullable=True),
         "band_low": _c(_FLOAT, nullable=True), "band_high": _c(_FLOAT, nullable=True)},
        csv_dtypes={"month": str, "model": str, "status": str, "horizon_end": str})
declare("customers_scored", "customers_scored.parquet", "07_summary",
        "one row per customer joining every score (the file a CRM imports); see summary.SCORED_COLUMNS",
        {"customer_id": _c(_STR), "rfm_segment": _c(_STR, nullable=True),
         **{c: _c(None, nullable=True) for c in ("r_score", "f_score", "m_score", "recency_days", "frequency")},
         "monetary": _c(_FLOAT, nullable=True), "cluster_label": _c(_STR, nullable=True),
         **{c: _c(_FLOAT, nullable=True) for c in ("p_alive", "exp_purchases", "p_purchase", "exp_avg_value", "clv",
                                                    "churn_probability")},
         "risk_tier": _c(_STR, nullable=True), "winback_target": _c(_BOOL),
         "winback_discount": _c(_FLOAT, nullable=True), "winback_expected_profit": _c(_FLOAT, nullable=True),
         **{f"offer_{i}": _c(_STR, nullable=True) for i in (1, 2, 3)}})
declare("contact_lists", "contact_lists.csv", "07_summary",
        "the lists 07's actions name besides the win-back list: per list, the customers who gave marketing "
        "consent and are not on this month's win-back list, with their e-mail (never in a report)",
        {"list": _c(_STR), "customer_id": _c(_STR), "email": _c(_STR, nullable=True),
         "rfm_segment": _c(_STR, nullable=True), "clv": _c(_FLOAT, nullable=True), "risk_tier": _c(_STR, nullable=True)},
        csv_dtypes={"list": str, "customer_id": str, "email": str, "rfm_segment": str, "risk_tier": str})
declare("trend", "trend.csv", "07_summary",
        "one row per month of the shop up to this one (oldest first), each month's figures from its own run: "
        "revenue, active customers and repeat rate (its kpis.csv) and CLV at risk (its clv and churn scores; "
        "summary.month_metrics); empty where that month lacks the artifact. The index's tiles read it",
        {"month": _c(_STR), "revenue": _c(_FLOAT, nullable=True), "active_customers": _c(_FLOAT, nullable=True),
         "repeat_rate": _c(_FLOAT, nullable=True), "clv_at_risk": _c(_FLOAT, nullable=True)},
        csv_dtypes={"month": str})


# ---------------------------------------------------------------------------------------------
# Paths


def spec(name: str) -> Artifact:
    if name not in ARTIFACTS:
        raise KeyError(f"unknown artifact {name!r}; known: {', '.join(ARTIFACTS)}")
    return ARTIFACTS[name]


def path(processed_dir: str | Path, name: str) -> Path:
    """The file of artifact `name` for the month in `processed_dir` (in a notebook the runner started beside the
    notebook that makes it, once that notebook has ended: :func:`await_maker`)."""
    p = resolve(processed_dir) / spec(name).file
    await_maker(p.parent, spec(name).made_by)
    return p


# The runner (helpers.runner) starts a notebook beside the notebooks that make what it reads, so that its kernel
# start, imports and the work that needs only earlier inputs overlap theirs. It tells the kernel, in this variable
# (JSON), the month's folder, the notebooks still running that it waits for, the folder where the runner marks each
# notebook that ended (a file named after it) and its own pid; the kernel adds the seconds it waited to
# ``<ended>/<notebook>.waited``, which the runner leaves out of the notebook's time.
INPUTS_VARIABLE = "RETENTION_INPUTS"


def await_maker(folder: Path, made_by: str, poll_seconds: float = 0.05) -> None:
    """Wait until notebook `made_by` has ended, when this kernel's run (:data:`INPUTS_VARIABLE`) still waits for it
    and `folder` is the run's month; return at once otherwise (outside a run, another month, a notebook that
    ended or is not in the run). A runner that died stops the wait with one sentence."""
    said = os.environ.get(INPUTS_VARIABLE)
    if not said:
        return
    inputs = json.loads(said)
    if made_by not in inputs["waits_for"] or str(Path(folder).resolve()) != inputs["month"]:
        return
    ended = Path(inputs["ended"])
    marker = ended / made_by
    if marker.exists():
        return
    started = time.perf_counter()
    while not marker.exists():
        time.sleep(poll_seconds)
        if not _alive(inputs["runner_pid"]):
            raise RuntimeError(f"the run that started this notebook stopped before {made_by} ended; run the month again")
    before = waited_seconds(ended, inputs["notebook"])
    write_file(ended / f"{inputs['notebook']}.waited", repr(before + time.perf_counter() - started))


def mark_ended(ended: Path, notebook: str) -> None:
    """The runner's side of :func:`await_maker`: `notebook` has ended, its artifacts are final (written, or
    removed as an earlier run's)."""
    write_file(Path(ended) / notebook, b"")


def waited_seconds(ended: Path, notebook: str) -> float:
    """The seconds `notebook`'s kernel waited in :func:`await_maker` (0 when it never waited)."""
    p = Path(ended) / f"{notebook}.waited"
    return float(p.read_text()) if p.exists() else 0.0


def _alive(pid: int) -> bool:
    """Whether process `pid` still runs (psutil: ``os.kill(pid, 0)`` would end it on Windows)."""
    return psutil.pid_exists(pid)


def exists(processed_dir: str | Path, name: str) -> bool:
    return path(processed_dir, name).exists()


def require(processed_dir: str | Path, name: str) -> Path:
    """The artifact's path, or one clear sentence saying which notebook makes it."""
    p = path(processed_dir, name)
    if not p.exists():
        art = spec(name)
        raise MissingArtifact(f"{art.file} is missing in {processed_dir}; run {art.made_by} for this month first.")
    return p


def month_of(processed_dir: str | Path) -> str:
    """'data/processed/demo/2026-06/' -> '2026-06' (the folder's name)."""
    name = Path(str(processed_dir).rstrip("/\\")).name
    if len(name) != 7 or name[4] != "-" or not (name[:4] + name[5:]).isdigit():
        raise ValueError(f"processed_dir must end in a month folder like 2026-06, got {str(processed_dir)!r}")
    return name


def previous_month(month: str) -> str:
    """'2026-01' -> '2025-12'."""
    year, mon = int(month[:4]), int(month[5:7])
    year, mon = (year, mon - 1) if mon > 1 else (year - 1, 12)
    return f"{year:04d}-{mon:02d}"


def previous_dir(processed_dir: str | Path) -> Path:
    """The sibling folder of the month before: .../demo/2026-06 -> .../demo/2026-05."""
    folder = resolve(str(processed_dir).rstrip("/\\"))
    return folder.parent / previous_month(month_of(folder))


def files_by_notebook(names) -> dict[str, list[str]]:
    """The files of the named artifacts grouped by the notebook that makes them, in order of first mention."""
    out: dict[str, list[str]] = {}
    for name in names:
        out.setdefault(ARTIFACTS[name].made_by, []).append(ARTIFACTS[name].file)
    return out


def notebook_inputs() -> dict[str, set[str]]:
    """Every notebook the declarations name (as maker or reader) -> the notebooks that make what it reads in
    the same month (never itself), e.g. ``"04_clv" -> {"01_clean", "03_segments"}``."""
    out: dict[str, set[str]] = {}
    for art in ARTIFACTS.values():
        out.setdefault(art.made_by, set())
        for reader in art.read_by:
            out.setdefault(reader, set()).update({art.made_by} - {reader})
    return out


def parquet_rows(p: str | Path) -> int:
    """The rows of a Parquet file, from its metadata (no row is read)."""
    return pq.ParquetFile(p).metadata.num_rows


def month_dirs(shop_processed_dir: str | Path) -> list[Path]:
    """The shop's month folders (``YYYY-MM``), oldest first."""
    base = resolve(shop_processed_dir)
    if not base.is_dir():
        return []
    out = []
    for p in sorted(base.iterdir()):
        try:
            month_of(p)
        except ValueError:
            continue
        if p.is_dir():
            out.append(p)
    return out


# ---------------------------------------------------------------------------------------------
# The one atomic writer


def atomic(p: str | Path, write) -> Path:
    """The one atomic writer: `write(tmp_path)` produces the file in a temp file beside `p`, which is
    then renamed into place, so readers never see half a file (Parquet writers want a path). The
    file is readable by others (reports are published).

    `write` may replace the temp file by a folder (Spark writes a Parquet table as a folder of
    parts). A folder, or a file where a folder was, cannot be renamed over the old one: the old one is
    renamed aside first and removed after, so a reader sees the old artifact, the new one or, for
    that instant, none - never a mix.
    """
    p = Path(p)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        if Path(tmp).is_dir():
            os.chmod(tmp, 0o755)
            for part in Path(tmp).iterdir():
                os.chmod(part, 0o644)
        else:
            os.chmod(tmp, 0o644)  # mkstemp makes 0600
        if Path(tmp).is_dir() or (p.is_dir() and not p.is_symlink()):
            _swap_folder(Path(tmp), p)
        else:
            os.replace(tmp, p)
    except BaseException:
        remove(tmp)
        raise
    return p


def _swap_folder(tmp: Path, p: Path) -> None:
    old = p.with_name(f".{p.name}.{uuid.uuid4().hex[:12]}.old.tmp")
    had_old = p.exists() or p.is_symlink()
    if had_old:
        os.replace(p, old)
    try:
        os.replace(tmp, p)
    except BaseException:
        if had_old:
            os.replace(old, p)
        raise
    if had_old:
        remove(old)


def remove(p: str | Path) -> None:
    """Remove a file or a folder (a Spark-written Parquet table, a temp file of :func:`atomic`), if there."""
    p = Path(p)
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


def write_file(p: str | Path, data: str | bytes) -> Path:
    """Text (UTF-8) or bytes to `p`, atomically."""
    if not isinstance(data, (str, bytes)):
        raise TypeError(f"write_file takes text or bytes, got {type(data).__name__}")
    payload = data.encode("utf-8") if isinstance(data, str) else data
    return atomic(p, lambda tmp: Path(tmp).write_bytes(payload))


IDENTITY_KEY = "identity.key"  # beside a shop's month folders: data/processed/<shop>/identity.key


def identity_key(shop_dir: str | Path, create: bool = True) -> str | None:
    """The shop's secret for hashing e-mails into customer ids (helpers.presets.Identity).

    Made once (64 random hex digits, readable by the owner only) and kept beside the shop's processed
    months, so a customer's id is the same every month. With ``create=False`` a missing key gives None.
    """
    p = Path(shop_dir) / IDENTITY_KEY
    if p.is_file():
        return p.read_text(encoding="ascii").strip()
    if not create:
        return None
    p.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another run made it first
        return p.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key + "\n")
    return key


def json_text(data) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"


def write_json_file(p: str | Path, data, sort_keys: bool = True) -> Path:
    """A JSON document outside a month folder (run.json, truth.json), written atomically."""
    text = (json_text(data) if sort_keys
            else json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    return write_file(p, text)


def read_json_file(p: str | Path, default=None):
    """A JSON document outside a month folder; `default` when it is missing or unreadable."""
    try:
        return json.loads(Path(p).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        if default is not None:
            return default
        raise


# ---------------------------------------------------------------------------------------------
# Pandas frames and JSON documents


def escape_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """Prefix text cells that a spreadsheet would execute as a formula with an apostrophe."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            s = out[col].astype("string")
            # "-2+3+cmd|..." runs too: a leading minus is safe only on a plain number (or a lone dash)
            risky = s.str.startswith(_FORMULA_START, na=False) | (
                s.str.startswith("-", na=False) & ~s.str.fullmatch(r"-|-\d*\.?\d+([eE][-+]?\d+)?", na=False))
            out[col] = s.mask(risky, "'" + s)
    return out


def csv_text(df: pd.DataFrame) -> str:
    """A frame as CSV text with spreadsheet formulas escaped (what every CSV artifact holds), written by pandas:
    the text :func:`write_csv` writes, byte for byte."""
    return _pandas_csv(escape_formulas(df))


def _pandas_csv(df: pd.DataFrame) -> str:
    buf = io.StringIO()
    df.to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue()


def write_csv(p: str | Path, df: pd.DataFrame) -> Path:
    """`df` as CSV with spreadsheet formulas escaped, atomically: the bytes of :func:`csv_text`.

    pandas formats a float in Python, one value at a time (10 of the 16 s that customers_scored.csv took at 1.35M
    customers). So when every column is text, whole numbers, booleans or float64, an in-memory DuckDB writes each
    line as pandas would, and the lines go to the file in batches: a float's shortest round-trip digits (as
    ``repr``); NaN and missing values empty; "True" / "False"; a field quoted, its quotes doubled, when it holds a
    comma, a quote or a line feed (Python's csv module leaves a carriage return unquoted when lines end in a line
    feed). Any other column (dates, categories, float32) and a one-column frame are written by pandas. Objects are
    text by then: escaping the formulas made them so.
    """
    escaped = escape_formulas(df)
    fields = _csv_fields(escaped) if df.shape[1] > 1 and df.columns.is_unique else None
    if fields is None:
        return write_file(p, _pandas_csv(escaped))
    data = pyarrow.Table.from_pandas(escaped, preserve_index=False).rename_columns([f"c{i}" for i in range(df.shape[1])])
    header = _pandas_csv(escaped.iloc[:0]).encode("utf-8")

    def lines(tmp):
        con = duckdb.connect(config={"threads": max(1, (os.cpu_count() or 1) // engine.share())})
        try:
            con.register("frame", data)
            line = " || ',' || ".join(fields) + " || chr(10)"
            reader = con.execute(f"SELECT {line} FROM frame").to_arrow_reader(CSV_BATCH_ROWS)
            with Path(tmp).open("wb") as out:
                out.write(header)
                for batch in reader:
                    out.write(_string_bytes(batch.column(0)))
        finally:
            con.close()

    return atomic(p, lines)


CSV_BATCH_ROWS = 500_000  # lines formatted and written at a time by write_csv


def _csv_fields(df: pd.DataFrame) -> list[str] | None:
    """Per column of `df` (named c0, c1 ... in the query) the SQL giving its CSV field as pandas writes it, or
    None when a column is of a kind left to pandas."""
    out = []
    for i, (_, s) in enumerate(df.items()):
        c, d = f"c{i}", s.dtype
        if pd.api.types.is_bool_dtype(d):
            out.append(f"CASE WHEN {c} THEN 'True' WHEN NOT {c} THEN 'False' ELSE '' END")
        elif pd.api.types.is_integer_dtype(d):
            out.append(f"coalesce(CAST({c} AS VARCHAR), '')")
        elif d == "float64" and isinstance(d, np.dtype):
            out.append(f"CASE WHEN isnan({c}) THEN '' ELSE coalesce(CAST({c} AS VARCHAR), '') END")
        elif isinstance(d, pd.StringDtype) or (d == object and pd.api.types.infer_dtype(s, skipna=True) in (
                "string", "empty")):
            special = " OR ".join(f"contains({c}, {x})" for x in ("','", "'\"'", "chr(10)"))
            out.append(f"CASE WHEN {c} IS NULL THEN '' WHEN {special} "
                       f"THEN '\"' || replace({c}, '\"', '\"\"') || '\"' ELSE {c} END")
        else:
            return None
    return out


def _string_bytes(column) -> memoryview:
    """The concatenated bytes of an Arrow string column without nulls (its data buffer between the first and
    last offset)."""
    offsets = np.frombuffer(column.buffers()[1], dtype=np.int64 if pyarrow.types.is_large_string(column.type)
                            else np.int32)[column.offset:column.offset + len(column) + 1]
    return memoryview(column.buffers()[2])[offsets[0]:offsets[-1]]


def check(name: str, df: pd.DataFrame) -> pd.DataFrame:
    """Validate a frame against artifact `name`'s schema; one sentence naming the column if not."""
    art = spec(name)
    if art.schema is None:
        return df
    try:
        return art.schema.validate(df, lazy=False)
    except (pa.errors.SchemaError, pa.errors.SchemaErrors) as exc:
        first = str(exc).strip().splitlines()[0]
        raise ArtifactSchemaError(f"{art.file} does not match its declaration in helpers.artifacts: {first}") from None


def write(processed_dir: str | Path, name: str, data) -> Path:
    """Write artifact `name` (a DataFrame for .parquet/.csv, a dict for .json), checked and atomic."""
    art = spec(name)
    p = path(processed_dir, name)
    if art.kind == "json":
        return write_file(p, json_text(data))
    check(name, data)
    if art.kind == "csv":
        return write_csv(p, data)
    return atomic(p, lambda tmp: data.to_parquet(tmp, index=False))


def read(processed_dir: str | Path, name: str, columns: list[str] | None = None):
    """Read artifact `name`: a DataFrame (.parquet, .csv) or a dict (.json)."""
    art = spec(name)
    p = require(processed_dir, name)
    if art.kind == "json":
        return json.loads(p.read_text(encoding="utf-8"))
    if art.kind == "csv":
        df = pd.read_csv(p, dtype=art.csv_dtypes or None, usecols=columns)
        if df.empty and art.schema is not None:  # a header-only CSV carries no types: use the declared ones
            typed = empty(name)
            df = df.astype({c: typed[c].dtype for c in df.columns if c in typed.columns})
        return df
    return pd.read_parquet(p, columns=columns)


def empty(name: str) -> pd.DataFrame:
    """A frame with artifact `name`'s declared columns and types and no rows (e.g. nothing measured)."""
    def dtype(col):
        return "object" if col.dtype is None else "str" if "string" in str(col.dtype) else str(col.dtype)

    return pd.DataFrame({c: pd.Series(dtype=dtype(col)) for c, col in spec(name).schema.columns.items()})


def read_if_exists(processed_dir: str | Path, name: str, columns: list[str] | None = None):
    """Like :func:`read`, or None when the artifact is absent (optional inputs such as customers)."""
    return read(processed_dir, name, columns) if exists(processed_dir, name) else None


def write_csv_file(p: str | Path, df: pd.DataFrame) -> Path:
    """A CSV beside an artifact that is not itself declared (e.g. the CRM copy without e-mails)."""
    return write_csv(p, df)


# ---------------------------------------------------------------------------------------------
# Ibis tables (order lines stay in the engine)


def table(con, processed_dir: str | Path, name: str) -> ibis.Table:
    """A month's Parquet artifact as a table expression, e.g. ``table(con, pdir, "orders_clean")``.

    The artifact is one file, or a folder of parts where Spark wrote it (either engine reads both).
    """
    p = require(processed_dir, name)
    if p.is_dir() and getattr(con, "name", "") == "duckdb":
        return con.read_parquet(str(p / "*.parquet"))
    return con.read_parquet(str(p))


def table_if_exists(con, processed_dir: str | Path, name: str) -> ibis.Table | None:
    return table(con, processed_dir, name) if exists(processed_dir, name) else None


def write_table(con, processed_dir: str | Path, name: str, expr: ibis.Table) -> Path:
    """Write an expression to artifact `name`'s Parquet file atomically (the engine writes it)."""
    _has_declared_columns(name, expr.columns)
    if engine.is_spark(con):  # Spark writes a folder of parts, with mode "overwrite" over the reserved temp name
        return atomic(path(processed_dir, name), lambda tmp: con.to_parquet(expr, tmp, mode="overwrite"))
    return atomic(path(processed_dir, name), lambda tmp: con.to_parquet(expr, tmp))


def _has_declared_columns(name: str, columns) -> None:
    """Raise ArtifactSchemaError when a table for Parquet artifact `name` lacks a required declared column."""
    art = spec(name)
    if art.schema is not None:
        missing = [c for c, col in art.schema.columns.items() if col.required and c not in columns]
        if missing:
            raise ArtifactSchemaError(f"{art.file} lacks declared column(s) {', '.join(missing)}.")


def move_table(src: Path, processed_dir: str | Path, name: str, columns: list[str]) -> Path:
    """A Parquet file (or Spark's folder of parts) the engine already wrote in the final layout and order, with
    `columns`, moved into place as artifact `name` (atomically; checked against the declaration like
    :func:`write_table`): a large table is not written twice."""
    _has_declared_columns(name, columns)

    def move(tmp: str) -> None:
        Path(tmp).unlink()  # the name atomic() reserved
        shutil.move(src, tmp)

    return atomic(path(processed_dir, name), move)


def file_digest(p: str | Path) -> bytes:
    """A SHA-256 digest of a file's bytes (read in blocks: a 1 GB export is not held in memory). SHA-256, as CPUs
    with SHA instructions hash it about twice as fast as BLAKE2b (a 930 MB export: 0.7 s against 1.6 s)."""
    with open(p, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").digest()


def raw_table(con, p: str | Path) -> ibis.Table:
    """A shop's raw Parquet export as a table whose columns are all strings (a CSV: :func:`raw_csv`).

    Cleaning rules parse every value themselves, so a malformed date or amount becomes a tagged
    row instead of a reader error. ``_file_pos`` is each row's position in the file, 0, 1, 2, ...: DuckDB's
    row number within the file, on Spark counted from partition offsets (:func:`_spark_view`).
    """
    p = Path(p)
    if engine.is_spark(con):
        from pyspark.sql import functions as F

        df = con._session.read.parquet(str(p))
        df = df.select(*[F.col(f"`{c}`").cast("string").alias(c) for c in df.columns])
        return _spark_view(con, df)
    t = con.read_parquet(str(p), file_row_number=True)
    return t.select(*[t[c].cast("string").name(c) for c in t.columns if c != "file_row_number"],
                    t.file_row_number.cast("int64").name(FILE_POS))


def _spark_view(con, df, one_partition: bool = False) -> ibis.Table:
    """A Spark DataFrame read from a file as a cached Ibis table with :data:`FILE_POS` 0, 1, 2, ... in the file's
    order: read once, so every use sees the same rows and positions. `one_partition`: the file is read as one
    partition (a CSV read with multiLine is never split), whose ids are 0, 1, 2, ... already.

    Spark's ``monotonically_increasing_id`` is the partition's number times 2**33 plus the row's offset in it
    (partitions follow the file); each partition's rows are counted (one small result per partition) and the
    offsets of the partitions before it added, so no window over the whole file puts it in one task."""
    from pyspark.sql import functions as F

    name = f"raw_{uuid.uuid4().hex[:12]}"
    if one_partition:
        df.withColumn(FILE_POS, F.monotonically_increasing_id()).createOrReplaceTempView(name)
        return engine.cache(con, con.table(name))
    df = df.withColumn("_mid", F.monotonically_increasing_id()).persist()
    part = F.shiftright(F.col("_mid"), 33)
    counts = sorted((r["_part"], r["n"]) for r in df.groupBy(part.alias("_part")).agg(F.count("*").alias("n")).collect())
    starts, total = [], 0
    for p, n in counts:
        starts.append((p, total))
        total += n
    offsets = df.sparkSession.createDataFrame(starts or [(0, 0)], "_part long, _start long")
    positioned = df.join(F.broadcast(offsets), part == offsets["_part"]).select(
        *[F.col(f"`{c}`") for c in df.columns if c != "_mid"],
        (F.col("_start") + F.col("_mid") - F.shiftleft(part, 33)).alias(FILE_POS))
    positioned.createOrReplaceTempView(name)
    table = engine.cache(con, con.table(name))
    table.count().execute()  # cached now, so the read can be let go
    df.unpersist()
    return table


def raw_head(p: str | Path, max_bytes: int = 1 << 16) -> str:
    """The first bytes of a raw CSV export as text (UTF-8, BOM removed), to read its header line.

    Call it on the UTF-8 copy from :func:`utf8_source`; "" for an empty file.
    """
    with open(p, "rb") as fh:
        return fh.read(max_bytes).decode("utf-8", errors="replace").lstrip("\ufeff")


RAW_EXTRA = ("_extra_field_1", "_extra_field_2")  # read beyond the header's fields to see rows that have more
RAW_NULL = "\x01retention-null\x01"
FILE_POS = "_file_pos"  # a raw row's position in its file (see raw_table, raw_csv)
SPARK_BAD = "_corrupt_record"  # Spark's raw text of a row with more or fewer fields than the header  # so an empty field reads as "" and only a field the row lacks is NULL


def raw_csv(con, p: str | Path, columns: list[str], delimiter: str) -> tuple[ibis.Table, ibis.Table | None]:
    """A raw CSV export split into `columns` (the header's names, all strings), and the rows that do not fit.

    The header is read by the caller (:func:`raw_head`), so the reader never guesses the dialect: a
    row with more or fewer fields than the header, or an unclosed quote, cannot make a present
    column look missing. On DuckDB the table has two more columns (:data:`RAW_EXTRA`) and an empty
    field reads as "" while a field the row lacks is NULL, so the number of fields of every row is
    known (DuckDB alone would silently drop a trailing empty field); rows it cannot read at all (a
    quote never closed, far too many fields) are left out of the table and listed in the second table
    (``line``, ``error_type``, ``error_message``, ``csv_line``; ``store_rejects``). Other backends
    return None there. The table is materialised once, so the rejects belong to one scan.

    Spark reads with the same quoting (a doubled quote is a quote, a quoted field may span lines,
    hence ``multiLine``, which reads a file in one task). It reads an unquoted empty field as NULL,
    so it cannot count fields from the values: instead a row whose field count differs from the
    header's keeps its raw text in :data:`SPARK_BAD` (and its fields as far as they go).

    Both engines add :data:`FILE_POS`, the row's position in the file, 0, 1, 2, ...: DuckDB's table row id
    (the table is filled in the file's order), on Spark counted from partition offsets (:func:`_spark_view`).
    """
    p = Path(p)
    if engine.is_spark(con):
        from pyspark.sql import types as T

        schema = T.StructType([T.StructField(c, T.StringType()) for c in [*columns, SPARK_BAD]])
        df = con._session.read.csv(
            str(p), schema=schema, header=True, enforceSchema=True, sep=delimiter, quote='"', escape='"',
            multiLine=True, mode="PERMISSIVE", columnNameOfCorruptRecord=SPARK_BAD, encoding="UTF-8")
        return _spark_view(con, df, one_partition=True), None
    for parallel in (True, False):
        token = uuid.uuid4().hex[:12]
        t = con.read_csv(str(p), all_varchar=True, header=True, auto_detect=False, delim=delimiter, quote='"',
                         escape='"', columns={c: "VARCHAR" for c in [*columns, *RAW_EXTRA]}, null_padding=True,
                         nullstr=RAW_NULL, store_rejects=True, rejects_table=f"rejects_{token}",
                         rejects_scan=f"rejects_scan_{token}", parallel=parallel)
        try:
            con.create_table(f"raw_{token}", t, temp=True)
            break
        except Exception as exc:  # a quoted line break: DuckDB's parallel scanner cannot pad rows around it
            if not parallel or "parallel=false" not in str(exc):
                raise
    # rowid: the order the single-file scan inserted the rows in (DuckDB keeps insertion order), 0, 1, 2, ...
    table = con.sql(f'SELECT *, rowid AS {FILE_POS} FROM "raw_{token}"')
    return table, con.table(f"rejects_{token}")


RAW_TABLES = r"^(raw|rejects|rejects_scan)_[0-9a-f]{12}$"  # the tables raw_csv fills (DuckDB)


def release_raw(con) -> None:
    """Drop the tables :func:`raw_csv` read files into, once what was read from them is kept elsewhere
    (10M lines: gigabytes of text that would otherwise stay in memory, or spill, until the kernel ends).
    Spark reads lazily and keeps nothing: nothing to drop."""
    if getattr(con, "name", "") != "duckdb":
        return
    names = con.raw_sql("SELECT table_name FROM duckdb_tables() WHERE temporary AND "
                        f"regexp_matches(table_name, '{RAW_TABLES}')").fetchall()
    for (name,) in names:
        con.drop_table(name, database="temp", force=True)


def parquet_table(con, p: str | Path, expr: ibis.Table | None = None) -> ibis.Table:
    """The Parquet table at `p`, written from `expr` first when given (Spark writes a folder of parts): a table
    read many times is read from disk, instead of computed again or held in the engine's memory."""
    p = Path(p)
    if expr is not None:
        p.parent.mkdir(parents=True, exist_ok=True)
        if engine.is_spark(con):
            con.to_parquet(expr, str(p), mode="overwrite")
        else:
            con.to_parquet(expr, str(p))
    if p.is_dir() and not engine.is_spark(con):
        return con.read_parquet(str(p / "*.parquet"))
    return con.read_parquet(str(p))


HISTORY = "cleaned_history"  # beside a shop's month folders: data/processed/<shop>/cleaned_history/<key>/


def history_entry(shop_dir: str | Path, key: str) -> Path:
    """The folder of the shop's cleaned history kept under `key` (stage 01; see ``clean.cleaned_history``)."""
    return Path(shop_dir) / HISTORY / key


def new_history_folder(shop_dir: str | Path) -> Path:
    """An empty folder to write a cleaned history into, beside the entries (:func:`keep_history` moves it in)."""
    base = Path(shop_dir) / HISTORY
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=base, prefix=".new-"))


def keep_history(folder: Path, shop_dir: str | Path, key: str) -> Path:
    """Move the history written in `folder` into place as the entry `key` (renamed: a reader never sees half of
    one) and remove the shop's other entries - one per shop, the one its raw files and settings now give."""
    entry = history_entry(shop_dir, key)
    try:
        os.replace(folder, entry)
    except OSError:  # another run kept the same entry first
        remove(folder)
    for other in entry.parent.iterdir():
        if other.name != key and not other.name.startswith(".new-"):
            remove(other)
    return entry


def utf8_source(p: Path, fallbacks: list[str], workdir: Path) -> tuple[Path, str] | None:
    """A UTF-8 readable copy of a raw export and the encoding it had, or None if nothing decodes it.

    UTF-8 (with or without BOM) and Parquet are read in place. Text that starts with a UTF-16 byte-order
    mark (Excel's "Unicode Text") is written as UTF-8 into `workdir` ("utf-16"; None when it does not
    decode). Otherwise the file is decoded with the first fallback encoding that fits (cp1250 covers
    Central European exports, latin-1 decodes any byte) and written as UTF-8 into `workdir` (the raw
    file is never modified).
    """
    if p.suffix.lower() == ".parquet":
        return p, "parquet"
    with open(p, "rb") as fh:
        bom = fh.read(2)
    if bom in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return _transcoded(p, "utf-16", workdir / p.name)
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with open(p, "rb") as fh:
            while chunk := fh.read(1 << 22):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        return p, "utf-8"
    except UnicodeDecodeError:
        pass
    for enc in fallbacks:
        try:
            with open(p, "rb") as fh:
                codecs.decode(fh.read(1 << 22), enc)  # cheap probe before the full transcode
        except (UnicodeDecodeError, LookupError):
            continue
        found = _transcoded(p, enc, workdir / p.name)
        if found is not None:
            return found
    return None


def _transcoded(p: Path, encoding: str, target: Path) -> tuple[Path, str] | None:
    """`p` decoded as `encoding` and written as UTF-8 to `target` (line ends as they are); None if it does not decode."""
    try:
        with open(p, encoding=encoding, newline="") as src, open(target, "w", encoding="utf-8", newline="") as dst:
            shutil.copyfileobj(src, dst, 1 << 22)
    except (UnicodeDecodeError, LookupError):
        return None
    return target, encoding


def mixed_line_ends(p: str | Path) -> bool:
    """Whether some lines of a text file end in CRLF and others in LF alone (two exports pasted together):
    one pass over the bytes (the CSV reader takes one kind of line end per file)."""
    crlf = bare_lf = False
    last = b""
    with open(p, "rb") as fh:
        while chunk := fh.read(1 << 22):
            if b"\r" not in chunk and last != b"\r":  # the common case, one fast search: every LF is bare
                bare_lf = bare_lf or b"\n" in chunk
            else:
                pairs = chunk.count(b"\r\n") + (last == b"\r" and chunk[:1] == b"\n")
                crlf = crlf or pairs > 0
                bare_lf = bare_lf or chunk.count(b"\n") > pairs
            last = chunk[-1:]
            if crlf and bare_lf:
                return True
    return False


def text_copy(p: str | Path, target: Path, skip_lines: int = 0, lf_only: bool = False) -> Path:
    """A copy of a text file into `target` without its first `skip_lines` lines (above the header), with
    every CRLF written as LF when `lf_only`; the raw file is never modified."""
    carry = b""
    with open(p, "rb") as fh, open(target, "wb") as out:
        for _ in range(skip_lines):
            fh.readline()
        while chunk := fh.read(1 << 22):
            if lf_only:
                chunk = carry + chunk
                carry = b"\r" if chunk.endswith(b"\r") else b""  # its LF may start the next chunk
                chunk = chunk[:len(chunk) - len(carry)].replace(b"\r\n", b"\n")
            out.write(chunk)
        out.write(carry)
    return target


class NoSuchSheet(LookupError):
    """A workbook lacks the sheet asked for; ``sheets`` are the names it has."""

    def __init__(self, sheets: list[str]):
        super().__init__(", ".join(sheets))
        self.sheets = sheets


def workbook_rows(p: str | Path, sheet: str | None) -> tuple[str, list[str], list[list]]:
    """A sheet of an Excel workbook (.xlsx, read with openpyxl): its name, the workbook's sheet names and its
    rows from row 1 as Python values - text, numbers, bool, datetime for a cell shown as a date, a formula's
    last computed value, an error cell as its text ("#N/A"), None when empty; rows may differ in length.
    `sheet` None reads the first sheet; a name the workbook lacks raises :class:`NoSuchSheet`."""
    book = openpyxl.load_workbook(p, read_only=True, data_only=True)
    try:
        names = list(book.sheetnames)
        name = sheet if sheet is not None else names[0]
        if name not in names:
            raise NoSuchSheet(names)
        ws = book[name]
        ws.reset_dimensions()  # the size a sheet declares may be wrong: read the rows it holds
        return name, names, [list(row) for row in ws.iter_rows(values_only=True)]
    finally:
        book.close()


def write_text_rows(target: Path, rows) -> Path:
    """Rows of text written as a UTF-8 CSV (comma, quotes where needed, LF line ends) to `target`."""
    with open(target, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    return target
