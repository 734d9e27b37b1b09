"""Clean and validate a shop's raw exports (stage 01).

Every rule is an Ibis expression that tags each unusable row with a reason, so the same rules run
on DuckDB or Spark over tens of millions of order lines. Nothing is dropped silently: each row ends
up kept, quarantined (unusable, written to quarantine.csv with its reason) or excluded by a named
rule, and ``raw = kept + quarantined + excluded`` is checked before anything is written.

Order of the rules (the first that matches names the row):

=====================  ===========  ==============================================================
reason                 outcome      rule
=====================  ===========  ==============================================================
wrong_field_count      quarantine   the row has more or fewer fields than the header (CSV)
unreadable_row         quarantine   the reader cannot split the row (e.g. a quote never closed)
spreadsheet_error      quarantine   a field holds a spreadsheet error value (#N/A, #VALUE!, #REF!,
                                    #DIV/0!, #NAME?, #NULL!, #NUM!); ``detail`` names the column
missing_order_id       quarantine   order_id empty
missing_customer_id    quarantine   customer_id empty (ids are trimmed; ``cleaning.fold_id_case``)
bad_date               quarantine   order_date not ISO (offset allowed) nor ``cleaning.date_format``
non_finite_amount      quarantine   amount is inf or NaN
bad_amount             quarantine   amount not a number after removing currency signs/separators
test_order             excluded     status in ``test_statuses`` or customer id starts with a test prefix
cancelled              excluded     status in ``cancelled_statuses``
unpaid                 excluded     status in ``unpaid_statuses`` (pending, failed, on hold)
refunded_in_full       excluded     a platform export's order refunded in full (:mod:`helpers.presets`)
before_min_order_date  excluded     ordered before ``cleaning.min_order_date``
after_as_of            excluded     ordered after the ``as_of`` day
above_max_line_amount  excluded     \|amount\| above ``cleaning.max_line_amount`` (off by default)
duplicate_line         excluded     exact copy of an earlier line (every raw column equal)
order_conflict         quarantine   a line that passed every rule above but names another customer
                                    than the first such line of its order_id, or (a purchase line)
                                    is dated more than ``cleaning.order_time_tolerance_hours``
                                    after the order's earliest line; ``detail`` says which
=====================  ===========  ==============================================================

Returns stay in: a line with status in ``returned_statuses`` or a negative amount is a return,
its amount is made negative, and revenue is netted against it. The purchase lines of one order
(same customer, within the tolerance) are one order, dated by its earliest line. A status is
compared trimmed and in lower case, first translated by ``cleaning.status_map``; a status in none
of the lists is treated as completed, and 01 and ``retention validate`` name it with its count
(:func:`status_warning`). Order times with a UTC offset ("2025-01-31T14:05:00+02:00", "...Z") are
read in their own local time (offset dropped), or converted to ``shop.timezone`` when it is set.
Campaign rows naming a customer found neither in the kept orders nor in customers.csv are excluded
(``unknown_customer``). Customers and campaigns rows holding a spreadsheet error value are
quarantined as order lines are (a ``#N/A`` customer id never becomes a customer).

Every rule but after_as_of and order_conflict is the same for every month: the order lines are read and tagged
by them once per raw file and settings (:func:`tag_order_history`, kept by :func:`cleaned_history` beside the
shop's months), and each month cuts its tags from that (:func:`cut_orders`), so a backfill cleans once.

:func:`run` writes the artifacts and returns a :class:`CleanResult`; notebook 01's tables, sentences and
figures are drawn from it by its page, :mod:`helpers.pages.clean`.
"""
from __future__ import annotations

import csv
import datetime as dt
import functools
import hashlib
import json
import re
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from helpers import artifacts, customer_facts, engine, presets
from helpers.config import CleaningConfig, Config
from helpers.contract import CONTRACT, ContractError, check_columns, find_file
from helpers.engine import connect, cutoff_end
from helpers.paths import resolve

QUARANTINE_REASONS = ("wrong_field_count", "unreadable_row", "spreadsheet_error", "missing_order_id", "missing_customer_id", "bad_date",
                      "non_finite_amount", "bad_amount", "bad_discount", "missing_channel", "bad_spend", "order_conflict")
EXCLUSION_RULES = ("test_order", "cancelled", "unpaid", "refunded_in_full", "before_min_order_date", "after_as_of", "above_max_line_amount",
                   "duplicate_line", "duplicate_customer", "unknown_customer")
CLEAN_ARTIFACTS = {"orders": "orders_clean", "customers": "customers_clean", "campaigns": "campaigns_clean",
                   "marketing_spend": "marketing_spend_clean"}
SORT_KEYS = {"orders": ["order_date", "order_id", "source_row"], "customers": ["customer_id"],
             "campaigns": ["campaign_id", "customer_id", "source_row"],
             "marketing_spend": ["month", "channel", "source_row"]}
REASON_TEXT = {
    "wrong_field_count": "the row has more or fewer fields than the header",
    "unreadable_row": "the row cannot be split into fields (a quote is never closed)",
    "spreadsheet_error": "a field holds a spreadsheet error value (#N/A, #VALUE!, #REF!, ...)",
    "missing_order_id": "order_id is empty",
    "missing_customer_id": "customer_id is empty",
    "bad_date": "the date cannot be read",
    "non_finite_amount": "the amount is infinite or not a number (inf, NaN)",
    "bad_amount": "the amount is not a number",
    "bad_discount": "discount is not a share between 0 and 1",
    "missing_channel": "channel is empty",
    "bad_spend": "spend is not an amount of at least 0",
    "order_conflict": "a line of the order names another customer, or is dated further from the order's earliest "
                      "line than cleaning.order_time_tolerance_hours",
    "test_order": "test order or test account",
    "cancelled": "cancelled order",
    "unpaid": "order never paid (pending, failed, on hold)",
    "refunded_in_full": "order refunded in full (platform export)",
    "before_min_order_date": "dated before cleaning.min_order_date",
    "after_as_of": "dated after the analysis cut-off (as_of)",
    "above_max_line_amount": "amount above cleaning.max_line_amount",
    "duplicate_line": "exact duplicate of an earlier line",
    "duplicate_customer": "customer_id listed again (first row kept)",
    "unknown_customer": "the customer is in neither the orders nor customers.csv",
}
# What each column of a platform export becomes, per preset (the page lists it, as `retention validate` does).
PRESET_READS = {name: dict(p.reads) for name, p in presets.PRESETS.items()}
DELIMITERS = (",", ";", "\t", "|")
EMAIL_TEXT = r"[^\s,;|\"'<>]+@[^\s,;|\"'<>]+\.[A-Za-z]{2,}"
STOP_SHARE = 0.5  # more rows than this cut differently from their header: the file, not the rows, is wrong


# --------------------------------------------------------------------------- file reading

def ensure_utf8(path: Path, fallbacks: list[str], workdir: Path) -> tuple[Path, str]:
    """Return a UTF-8 readable path and the encoding the file had.

    UTF-8 (with or without BOM) is read as is. Otherwise the file is decoded with the first
    fallback encoding that fits (cp1250 covers Central European exports, latin-1 decodes any
    byte) and written as UTF-8 into `workdir`; the caller warns about it.
    """
    found = artifacts.utf8_source(path, fallbacks, workdir)
    if found is not None:
        return found
    raise ContractError(
        f"{path.name} is not UTF-8 and none of the fallback encodings ({', '.join(fallbacks)}) "
        "decode it; save it as UTF-8 or add its encoding to cleaning.encoding_fallbacks."
    )


class EmptyFile(ContractError):
    """A raw export has no header (0 bytes or blank lines only)."""


def header_fields(head: str) -> tuple[list[str], str]:
    """The header's column names and the delimiter, from the start of a CSV export.

    The delimiter is the candidate (``, ; tab |``) that splits the first line into the most fields
    (a comma on a tie). Blank names become ``column_N``, repeated names get ``_2``, ``_3``.
    """
    first = head.splitlines()[0] if head.strip() else ""
    delimiter = max(DELIMITERS, key=lambda d: len(next(csv.reader([first], delimiter=d))))
    names, seen = [], {}
    for i, name in enumerate(next(csv.reader([first], delimiter=delimiter))):
        name = name.strip().lstrip("\ufeff") or f"column_{i + 1}"
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return names, delimiter


# Where the header is: the first lines of a text file (rows of a sheet) are searched for the line naming the
# most columns the config reads; Excel may write its delimiter on a line of its own above it ("sep=;").
HEADER_SEARCH = 20
SEP_LINE = re.compile(r'^"?sep=(.)"?')
DATE_COLUMNS = {"orders": "order_date", "customers": "signup_date", "campaigns": "sent_date", "marketing_spend": "month"}
EXCEL_DAY_ZERO = dt.datetime(1899, 12, 30)  # Excel's serial day 0 (1900 date system): 45658 = 2025-01-01
EXCEL_LAST_DAY = 2958465  # 9999-12-31


def export_names(kind: str, column_map: dict[str, str], preset: presets.Preset | None = None) -> tuple[set[str], set[str]]:
    """The column names a header of `kind` is recognised by - the contract's names and the export's own names
    the column map (or a platform preset) reads - and those of them that hold dates."""
    if preset is not None and kind == "orders":
        return set(preset.reads), {c for c, becomes in preset.reads.items() if becomes == "order_date"}
    required, optional = CONTRACT[kind]
    dated = {DATE_COLUMNS[kind], *[src for src, dst in column_map.items() if dst == DATE_COLUMNS[kind]]}
    return {*required, *optional, *column_map}, dated


def _fields(line: str, delimiter: str | None = None) -> list[str]:
    """One line split by `delimiter`, or by the candidate that splits it into the most fields; names trimmed."""
    delimiter = delimiter or max(DELIMITERS, key=lambda d: len(next(csv.reader([line], delimiter=d), [])))
    return [f.strip().lstrip("\ufeff") for f in next(csv.reader([line], delimiter=delimiter), [])]


def find_header(lines: list[list[str]], names: set[str]) -> tuple[int, list[str]]:
    """Which of a file's first lines (each as its fields) is the header, and the `names` it holds: the first
    line holding the most of them; without any, the first line that is not blank (and no names)."""
    held = [list(dict.fromkeys(f for f in fields if f in names)) for fields in lines]
    best = max(range(len(lines)), key=lambda i: len(held[i]), default=0)
    if held and held[best]:
        return best, held[best]
    return next((i for i, fields in enumerate(lines) if any(fields)), 0), []


def _no_duplicate_names(label: str, header: list[str], names: set[str]) -> None:
    """Stops when a column the config reads appears twice in the header, naming both positions (1-based).
    A repeated name nothing reads is kept as ``name_2`` (:func:`header_fields`) and listed as ignored."""
    first: dict[str, int] = {}
    for i, name in enumerate(header, start=1):
        if name in first and name in names:
            raise ContractError(
                f"{label}: the column '{name}' appears twice in the header (columns {first[name]} and {i}), so "
                "it is unclear which to read; remove or rename one of them and export again.")
        first.setdefault(name, i)


def _text_from_header(path: Path, label: str, names: set[str], workdir: Path) -> tuple[Path, dict]:
    """A UTF-8 text export whose first line is its header: when Excel's ``sep=`` line, a title or blank lines
    stand above the header, a copy without them, and the report's facts (``header_line``, 1-based; the
    ``header_names`` that identified it; ``sep_line``, the delimiter that line named). Stops on a duplicated
    column the config reads."""
    head = artifacts.raw_head(path)
    lines = [line.rstrip("\r") for line in head.split("\n")[:HEADER_SEARCH + 1]]
    sep = SEP_LINE.match(lines[0].strip(" "))  # "sep=;" alone (a tool may pad it with the delimiter: "sep=;;;")
    sep = sep.group(1) if sep and not lines[0].strip(" ")[sep.end():].strip(sep.group(1)) else None
    start = 1 if sep else 0
    at, held = find_header([_fields(line, sep) for line in lines[start:]], names)
    at += start
    _no_duplicate_names(label, _fields(lines[at], sep), names)
    if at == 0:
        return path, {}
    facts = {"header_line": at + 1, "header_names": held, **({"sep_line": sep} if sep else {})}
    return artifacts.text_copy(path, workdir / f"from-header-{label}", skip_lines=at), facts


def _cell_text(value, as_date: bool = False) -> str:
    """A workbook cell as the text a CSV export would hold: a date cell as ISO (a time only when it has one),
    a serial day number in a date column (`as_date`) likewise, a whole number without ".0"."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if as_date and isinstance(value, (int, float)) and 1 <= value <= EXCEL_LAST_DAY:
        value = EXCEL_DAY_ZERO + dt.timedelta(seconds=round(value * 86400))
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d" if value.time() == dt.time() else "%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)


def _workbook_as_csv(src: Path, sheet: str | None, names: set[str], dated: set[str], workdir: Path) -> tuple[Path, dict]:
    """An Excel workbook's sheet (the first, or ``cleaning.excel_sheet``) as a UTF-8 CSV from its header row on,
    dates written as ISO text; the report's facts (``sheet``, ``sheets``, and ``header_line``, the sheet's row,
    with ``header_names`` when rows stand above the header)."""
    try:
        name, sheets, rows = artifacts.workbook_rows(src, sheet)
    except artifacts.NoSuchSheet as exc:
        raise ContractError(f"{src.name} has no sheet named '{sheet}' (cleaning.excel_sheet); its sheets are: "
                            f"{', '.join(exc.sheets)}.") from None
    except Exception as exc:  # not a workbook, encrypted, damaged: one sentence
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise ContractError(f"{src.name} cannot be read as an Excel workbook ({first}); save it again from Excel "
                            "as .xlsx, or as CSV UTF-8.") from None
    while rows and not any(_cell_text(v).strip() for v in rows[-1]):
        rows.pop()  # a sheet's trailing empty rows (formatted, never filled) are no rows
    at, held = find_header([[_cell_text(v).strip() for v in row] for row in rows[:HEADER_SEARCH]], names)
    header = [_cell_text(v).strip() for v in rows[at]] if rows else []
    dated_at = {i for i, h in enumerate(header) if h in dated}
    table = [header, *([_cell_text(v, i in dated_at) for i, v in enumerate(row)] for row in rows[at + 1:])]
    # every row of a sheet has the sheet's columns: up to the last one holding a value (a header or not)
    width = max((i + 1 for row in table for i, v in enumerate(row) if v.strip()), default=0)
    table = [row[:width] + [""] * (width - len(row)) for row in table] if rows else []
    target = artifacts.write_text_rows(workdir / f"{src.name}.csv", table)
    facts = {"sheet": name, "sheets": len(sheets), "sheet_from": "config" if sheet is not None else "first"}
    return target, {**facts, **({"header_line": at + 1, "header_names": held} if at else {})}


def readable_source(src: Path, kind: str, cfg: Config, workdir: Path,
                    preset: presets.Preset | None = None) -> tuple[Path, str, dict]:
    """A raw export as the reader takes it - Parquet as is, else a UTF-8 CSV whose first line is the header -
    the encoding it had ("xlsx" for a workbook) and what the report says about how it was read.

    A workbook's sheet is written as CSV (:func:`_workbook_as_csv`); UTF-16 text (with its byte-order mark)
    and the fallback encodings are re-encoded (:func:`ensure_utf8`); lines ending partly in CRLF and partly in
    LF are all read as line ends (``line_ends: "mixed"``); lines above the header are skipped
    (:func:`_text_from_header`). Each copy goes to `workdir`; the raw file is never modified.
    """
    if src.suffix.lower() == ".parquet":
        return src, "parquet", {}
    names, dated = export_names(kind, getattr(cfg.columns, kind), preset)
    facts: dict = {}
    if src.suffix.lower() == ".xlsx":
        path, facts = _workbook_as_csv(src, cfg.cleaning.excel_sheet, names, dated, workdir)
        encoding = "xlsx"
    else:
        path, encoding = ensure_utf8(src, cfg.cleaning.encoding_fallbacks, workdir)
        if artifacts.mixed_line_ends(path):
            path, facts = artifacts.text_copy(path, workdir / f"lf-{src.name}", lf_only=True), {"line_ends": "mixed"}
    path, header = _text_from_header(path, src.name, names, workdir)
    return path, encoding, {**facts, **header}


@dataclass
class RawFile:
    """A raw export as read: the all-string table with contract names and ``source_row``, and what was noticed."""

    table: ir.Table
    optional: list[str]
    ignored: list[str]
    rejected: pd.DataFrame  # source_row, reason, detail, raw_line: rows the reader could not split
    delimiter: str | None = None
    rows: int = 0  # data rows in the file (read and rejected)
    files: list[tuple[str, int, int]] = field(default_factory=list)  # several files read as one: (name, first row - 1, rows)
    export_columns: list[str] = field(default_factory=list)  # the header's names, before any mapping
    reading: dict = field(default_factory=dict)  # how the file was read, for the report (:func:`readable_source`)


def _rejected_rows(rejects: ir.Table | None, n_fields: int) -> pd.DataFrame:
    """The rows the reader left out, one per line: reason, detail ('row has 9 fields, the header has 4'), raw text."""
    cols = ["source_row", "reason", "detail", "raw_line"]
    if rejects is None:
        return pd.DataFrame(columns=cols)
    found = rejects.error_message.re_extract(r"Found: ([0-9]+)", 1).nullif("").cast("int64")
    per_line = rejects.group_by("line").agg(
        error_type=rejects.error_type.first(), low=found.min(), high=found.max(), raw_line=rejects.csv_line.first()
    ).order_by("line").to_pandas()
    rows = []
    for line, error, low, high, text in per_line.itertuples(index=False):
        fields = high if error == "TOO MANY COLUMNS" else low
        if error in ("TOO MANY COLUMNS", "MISSING COLUMNS") and not pd.isna(fields):
            reason, detail = "wrong_field_count", _shape_text(int(fields), n_fields)
        else:
            reason, detail = "unreadable_row", f"the row cannot be read ({str(error).lower()})"
        rows.append((int(line) - 1, reason, detail, str(text).strip("\r\n")))
    return pd.DataFrame(rows, columns=cols)


def _shape_text(fields: int, n_fields: int) -> str:
    return f"row has {fields} field{'s' if fields != 1 else ''}, the header has {n_fields}"


def _field_count_problem(t: ir.Table, names: list[str]) -> ir.StringValue:
    """'row has 3 fields, the header has 4' for a row with more or fewer fields than the header, else NULL.

    The reader pads a short row with NULLs and reads two fields beyond the header (artifacts.RAW_EXTRA);
    a field that is present but empty is "", so the non-NULL columns count the row's fields.
    """
    present = sum(t[c].notnull().cast("int64") for c in [*names, *artifacts.RAW_EXTRA])
    text_ = ibis.literal("row has ") + present.cast("string") + " field" + (present == 1).ifelse("", "s") \
        + f", the header has {len(names)}"
    return (present != len(names)).ifelse(text_, ibis.null("string"))


def _field_count_from_text(raw_line: ir.StringValue, names: list[str], delimiter: str) -> ir.StringValue:
    """'row has 3 fields, the header has 4' from a row's raw text (Spark keeps it for such rows), else NULL.

    The fields are the delimiters outside quoted values, plus one.
    """
    bare = raw_line.re_replace(r'"([^"]|"")*"', "")
    present = bare.length() - bare.replace(delimiter, "").length() + 1
    text_ = ibis.literal("row has ") + present.cast("string") + " field" + (present == 1).ifelse("", "s") \
        + f", the header has {len(names)}"
    return raw_line.isnull().ifelse(ibis.null("string"), text_)


def _number_rows(t: ir.Table, rejected: pd.DataFrame) -> ir.Table:
    """Add ``source_row``: the row's number among the file's data rows (1 = first row after the header),
    counted in the order of the reader's file position (``artifacts.FILE_POS``, which it replaces).

    The reader leaves rejected rows out, so the k-th row read is row ``k + #{rejected before it}``:
    with the rejected rows r_1 < r_2 < ..., the j-th one sits after t_j = r_j - j rows read. The readers'
    positions are 0, 1, 2, ... on both engines, so k needs no window over the whole file. (Only DuckDB's
    reader rejects rows; Spark keeps them, with their raw text, in the table.)
    """
    pos = t[artifacts.FILE_POS]
    k = t.mutate(_k=pos + 1).drop(artifacts.FILE_POS)
    if rejected.empty:
        return k.mutate(source_row=k._k).drop("_k")
    r = sorted(rejected["source_row"].tolist())
    thresholds = ibis.memtable({"_pos": [2 * (rj - j) + 1 for j, rj in enumerate(r, start=1)]},
                               schema={"_pos": "int64"})
    slots = k.select(_pos=k._k * 2).mutate(_rej=ibis.literal(0)).union(thresholds.mutate(_rej=ibis.literal(1)))
    shift = slots.mutate(_before=slots._rej.sum().over(ibis.cumulative_window(order_by=slots._pos)))
    shift = shift.filter(shift._rej == 0).select(_k=(shift._pos / 2).cast("int64"), _before=shift._before)
    out = k.join(shift, "_k")
    return out.mutate(source_row=out._k + out._before).drop("_k", "_before")


def read_raw(con, path: Path, kind: str, column_map: dict[str, str], file_label: str | None = None,
             preset: presets.Preset | None = None, identity: presets.Identity | None = None) -> RawFile:
    """The raw file as an all-string table with contract column names and a 1-based ``source_row``.

    Stops (ContractError, one sentence) when the file is empty, holds only a header, misses a
    required column, or most of its rows do not match the header. Rows with more or fewer fields
    than the header are returned in ``rejected`` (they go to quarantine.csv); columns outside the
    contract are listed in ``ignored``. A platform ``preset`` (:mod:`helpers.presets`, with the shop's
    e-mail ``identity``) turns the order export into the contract's names instead of the column map;
    ``ignored`` then lists the export's columns the preset does not read.
    """
    label = file_label or path.name
    t, rejects, delimiter, columns = _open_raw(con, path, kind, label)
    clean_names = {c: c.strip().lstrip("\ufeff") for c in columns}
    renames = {new: old for old, new in clean_names.items() if old != new}
    if renames:
        t = t.rename(renames)
    export_columns = [c for c in t.columns if c not in ("_shape", artifacts.FILE_POS)]
    rejected = _rejected_rows(rejects, len(columns))
    number = functools.partial(_number_rows, rejected=rejected)
    transform = preset is not None and kind == "orders"
    if transform:
        t = presets.to_contract(number(t), preset, identity, label)
    else:
        mapping = {src: dst for src, dst in column_map.items() if src in t.columns and src != dst}
        if mapping:
            t = t.rename({dst: src for src, dst in mapping.items()})
        if preset is not None and kind == "customers":  # a customer may be named by e-mail only
            t = presets.customers_to_contract(number(t), identity)
    found = [c for c in t.columns if c not in ("_shape", "source_row", artifacts.FILE_POS)]
    present = check_columns(label, kind, found, column_map)
    required, _ = CONTRACT[kind]
    keep = list(dict.fromkeys([*required, *present, *[c for c in presets.PRIVATE if c in found]]))
    ignored = [c for c in export_columns if c not in preset.reads] if transform else [c for c in found if c not in keep]
    n_rows = _count_rows(t, rejected, label, kind, found, delimiter)
    # Row numbers follow the file's order (the reader's FILE_POS).
    numbered = "source_row" in t.columns  # a preset numbers the rows before it reads them
    t = (t.select(*keep, "_shape", "source_row") if numbered
         else number(t.select(*keep, "_shape", artifacts.FILE_POS)))
    return RawFile(t, present, ignored, rejected, delimiter, n_rows, export_columns=export_columns)


def _open_raw(con, path: Path, kind: str, label: str) -> tuple[ir.Table, ir.Table | None, str | None, list[str]]:
    """The file as the reader gives it: (all-string table with ``_shape`` set where a row's field count is
    wrong, the reader's rejected rows or None, the CSV delimiter or None, the header's names as read).

    Any reader error becomes one ContractError sentence naming the file; an empty file is :class:`EmptyFile`.
    """
    rejects = None
    delimiter = None
    try:
        if path.suffix.lower() == ".parquet":
            t = artifacts.raw_table(con, path)
            t = t.mutate(_shape=ibis.null("string"))
        else:
            head = artifacts.raw_head(path)
            if not head.strip():
                raise EmptyFile(f"{label} is empty (no header, no rows); export the {kind} again - the file should "
                                f"start with a header line such as {','.join(CONTRACT[kind][0])}.")
            names, delimiter = header_fields(head)
            t, rejects = artifacts.raw_csv(con, path, names, delimiter)
            if artifacts.SPARK_BAD in t.columns:
                t = t.mutate(_shape=_field_count_from_text(t[artifacts.SPARK_BAD], names, delimiter))
                t = t.drop(artifacts.SPARK_BAD)
            else:
                t = t.mutate(_shape=_field_count_problem(t, names)).drop(*artifacts.RAW_EXTRA)
        columns = [c for c in t.columns if c not in ("_shape", artifacts.FILE_POS)]
    except ContractError:
        raise
    except Exception as exc:  # reader errors differ per backend; the user needs one sentence
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise ContractError(f"{label} cannot be read as {path.suffix.lstrip('.').upper()} ({first}).") from None
    return t, rejects, delimiter, columns


def _count_rows(t: ir.Table, rejected: pd.DataFrame, label: str, kind: str, found: list[str],
                delimiter: str | None) -> int:
    """The file's data rows (read and rejected); stops when there are none, or when most of them do not
    match the header (STOP_SHARE): then the file, not the rows, is cut wrong."""
    shapes = t.group_by("_shape").agg(n=t.count()).to_pandas()
    n_rows = int(shapes["n"].sum()) + len(rejected)
    if n_rows == 0:
        has = "a header" if delimiter else "columns"
        raise EmptyFile(f"{label} has {has} ({', '.join(found[:8])}) but no rows; the export holds no "
                        f"{kind} - export again with a date range that includes some.")
    wrong = pd.concat([shapes.dropna(subset=["_shape"]).rename(columns={"_shape": "detail"}),
                       rejected.query("reason == 'wrong_field_count'").groupby("detail").size().rename("n")
                       .reset_index()], ignore_index=True).groupby("detail")["n"].sum()
    if wrong.sum() > STOP_SHARE * n_rows:
        raise ContractError(
            f"{label}: {int(wrong.sum()):,} of {n_rows:,} rows do not match the header (most often: "
            f"{wrong.sort_values(ascending=False, kind='stable').index[0]}); the file is cut differently from its "
            f"header - check the delimiter and that values holding it are quoted.")
    return n_rows


# --------------------------------------------------------------------------- value parsers

def text(s: ir.StringValue) -> ir.StringValue:
    """Trimmed text, empty -> NULL."""
    return engine.trim(s).nullif("")


def customer_key(s: ir.StringValue, fold_case: bool = False) -> ir.StringValue:
    """A customer id as compared across files: trimmed, empty -> NULL, lower case with ``cleaning.fold_id_case``."""
    t = text(s)
    return t.lower() if fold_case else t


_SPACE = " \u00a0\u202f"  # thousands separators: space, no-break space, narrow no-break space
_CURRENCY = r"(?:\p{Sc}|[A-Z]{3}|Kč|zł|kr|Ft|lei)"
AMOUNT_SHAPE = (rf"^[+-]?[{_SPACE}]*(?:{_CURRENCY}[{_SPACE}]*)?[+-]?[0-9.,]*[0-9][0-9.,'{_SPACE}]*"
                rf"(?:{_CURRENCY})?$")
PLAIN_NUMBER = r"^-?[0-9]+(\.[0-9]+)?$"  # read the same with "." or auto as the decimal mark
SCIENTIFIC = r"^[+-]?[0-9]+(\.[0-9]+)?[eE][+-]?[0-9]+$"
NON_FINITE = r"^[+-]?(inf|infinity|nan)$"


def parse_amount(s: ir.StringValue, decimal_separator: str = "auto") -> ir.FloatingValue:
    """Money written as shops export it: '12.50', '12,50', '1.234,50', '1,234.50', '€ 12.50', '12.50 EUR', '1 234,50'.

    With ``auto``, a comma followed by one or two final digits is the decimal mark ("12,50"); any
    other comma separates thousands ("1,234"). Scientific notation ('1.5e3', as a Parquet float may
    read) is a number. Anything else - letters inside the number, inf, NaN - is NULL (a tagged row).
    """
    return finite(amount_text(engine.trim(s), decimal_separator).try_cast("float64"))


def amount_text(t: ir.StringValue, decimal_separator: str = "auto") -> ir.StringValue:
    """The number in a trimmed money text `t` as text a cast reads ('-1234.50', '1.5e3'), or NULL when `t` is no
    amount (:func:`parse_amount`). Apart from the cast, so a rule that reads the amount several times parses once."""
    c = t.re_replace(r"[^0-9,.]", "")
    comma_decimal = c.re_search(r",[0-9]{1,2}$")
    as_comma = c.replace(".", "").replace(",", ".")
    as_dot = c.replace(",", "")
    if decimal_separator == ",":
        number = as_comma
    elif decimal_separator == ".":
        number = as_dot
    else:
        number = comma_decimal.ifelse(as_comma, as_dot)
    signed = t.contains("-").ifelse("-", "") + number.nullif("")
    # a plain number ('12.50', '-3') is its own text: most values are, and the cases after it are not computed for them
    plain = [(t.re_search(PLAIN_NUMBER), t)] if decimal_separator != "," else []
    return ibis.cases(*plain, (t.re_search(SCIENTIFIC), t), (t.re_search(AMOUNT_SHAPE), signed),
                      else_=ibis.null("string"))


def finite(value: ir.FloatingValue) -> ir.FloatingValue:
    """`value`, NULL where it is infinite or not a number."""
    return (value.isinf() | value.isnan()).ifelse(ibis.null("float64"), value)


def is_non_finite(s: ir.StringValue) -> ir.BooleanValue:
    """'inf', '-Infinity', 'NaN': a value the export computed, not a missing one."""
    return engine.trim(s).lower().re_search(NON_FINITE).fill_null(False)


_FORMAT_PARTS = {"%Y": ("year", r"([0-9]{4})"), "%y": ("year2", r"([0-9]{2})"), "%m": ("month", r"([0-9]{1,2})"),
                 "%d": ("day", r"([0-9]{1,2})"), "%H": ("hour", r"([0-9]{1,2})"), "%M": ("minute", r"([0-9]{1,2})"),
                 "%S": ("second", r"([0-9]{1,2})"), "%I": ("hour12", r"([0-9]{1,2})"),
                 "%p": ("ampm", r"([AaPp]\.?[Mm]\.?)")}
FORMAT_CODES = re.compile(r"%[YymdHMSIp]")
# ISO date, optional time (T or space) with optional fraction and UTC offset (Z, +02, +0200, +02:00).
PLAIN_TIMESTAMP = r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$"
ISO_TIMESTAMP = (r"^([0-9]{4}-[0-9]{1,2}-[0-9]{1,2})(?:[T ]([0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?)"
                 r" ?(Z|z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?$")


def parse_timestamp(s: ir.StringValue, date_format: str | None = None) -> ir.TimestampValue:
    """ISO dates and datetimes ('2025-01-31', '2025-01-31 14:05:00', '2025-01-31T14:05:00+02:00'), in
    their own local time (an offset is dropped; see :func:`utc_offset_minutes`), or `date_format`; NULL
    when unreadable.

    A strptime-style `date_format` (only %Y %y %m %d %H %M %S, and a 12-hour clock %I with %p: AM/PM,
    am/pm or a.m./p.m.) is read besides ISO: values are rearranged to ISO with regular expressions and
    then cast, so an impossible date ('45.13.2025', '13:00 PM') is NULL on every backend instead of an error.
    """
    return _plausible(read_timestamp(engine.trim(s), date_format))


def read_timestamp(t: ir.StringValue, date_format: str | None = None) -> ir.TimestampValue:
    """A trimmed text's timestamp as :func:`parse_timestamp` reads it, year 0 not yet dropped (:func:`_plausible`):
    apart, so a rule that reads the date several times parses it once."""
    date_part = t.re_extract(ISO_TIMESTAMP, 1)
    time_part = t.re_extract(ISO_TIMESTAMP, 2).nullif("").fill_null("00:00:00")
    # 'YYYY-MM-DD hh:mm:ss' is the text ISO_TIMESTAMP would make of it: cast as it is, the extracts not computed
    iso = ibis.cases((t.re_search(PLAIN_TIMESTAMP), t), (t.re_search(ISO_TIMESTAMP), date_part + " " + time_part),
                     else_=ibis.null("string")).try_cast("timestamp")
    if not date_format:
        return iso
    pattern, names, pos = "^", [], 0
    for m in FORMAT_CODES.finditer(date_format):
        pattern += re.escape(date_format[pos:m.start()]) + _FORMAT_PARTS[m.group()][1]
        names.append(_FORMAT_PARTS[m.group()][0])
        pos = m.end()
    pattern += re.escape(date_format[pos:]) + "$"
    part = {name: t.re_extract(pattern, i + 1) for i, name in enumerate(names)}
    year = part.get("year", ("20" + part["year2"]) if "year2" in part else None)
    if year is None or "month" not in part or "day" not in part:
        raise ValueError(f"cleaning.date_format {date_format!r} needs a year, month and day (%Y or %y, %m, %d).")
    if ("hour12" in part) != ("ampm" in part) or ("hour12" in part and "hour" in part):
        raise ValueError(f"cleaning.date_format {date_format!r}: a 12-hour clock needs both %I and %p "
                         "(and no %H); a 24-hour clock is %H.")

    def two(v):
        return v.lpad(2, "0") if v is not None else ibis.literal("00")

    hour = _hour_of_12h_clock(part["hour12"], part["ampm"]) if "hour12" in part else part.get("hour")
    formatted = year + "-" + two(part["month"]) + "-" + two(part["day"]) + " " + two(hour) + ":" + two(
        part.get("minute")) + ":" + two(part.get("second"))
    return iso.coalesce(t.re_search(pattern).ifelse(formatted, ibis.null("string")).try_cast("timestamp"))


def _hour_of_12h_clock(hour12: ir.StringValue, ampm: ir.StringValue) -> ir.StringValue:
    """'12' AM -> '0', '1'..'11' AM as is, '12' PM -> '12', '1'..'11' PM -> 13..23; NULL outside 1..12."""
    h = hour12.try_cast("int64")
    pm = ampm.upper().startswith("P")
    h24 = (h % 12) + pm.ifelse(12, 0)
    return ((h >= 1) & (h <= 12)).ifelse(h24.cast("string"), ibis.null("string"))


def _plausible(ts: ir.TimestampValue) -> ir.TimestampValue:
    """Year 0 ('0000-01-01') is a valid engine timestamp but no calendar date pandas can hold: NULL."""
    return (ts.year() >= 1).ifelse(ts, ibis.null("timestamp"))


def utc_offset_minutes(s: ir.StringValue) -> ir.IntegerValue:
    """The UTC offset an ISO timestamp carries, in minutes east of UTC ('Z' = 0, '+02:00' = 120); NULL if none."""
    off = engine.trim(s).re_extract(ISO_TIMESTAMP, 3).nullif("")
    digits = off.re_replace(r"[^0-9]", "")
    minutes = digits.substr(0, 2).cast("int64") * 60 + digits.substr(2, 2).nullif("").cast("int64").fill_null(0)
    minutes = off.upper().startswith("Z").ifelse(0, minutes)
    return off.startswith("-").ifelse(-minutes, minutes)


@functools.lru_cache(maxsize=8)
def zone_offsets(zone: str) -> pd.DataFrame:
    """The UTC offset of `zone` in minutes over time: rows (start, end, offset_minutes), UTC, 1970-2100.

    Found hourly from the zone database (zoneinfo), so conversion is a range join in the engine.
    """
    utc = pd.date_range("1970-01-01", "2100-01-01", freq="h", tz="UTC")
    offset = ((utc.tz_convert(zone).tz_localize(None) - utc.tz_localize(None)) // pd.Timedelta(minutes=1)).to_numpy()
    change = np.flatnonzero(np.diff(offset)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(utc) - 1]])
    return pd.DataFrame({"start": utc[starts].tz_localize(None), "end": utc[ends].tz_localize(None),
                         "offset_minutes": offset[starts].astype("int64")})


def to_shop_time(t: ir.Table, local: str, offset: str, zone: str | None) -> ir.Table:
    """Column `local` in shop time: a time with an offset converted to `zone` (none: left as written)."""
    if zone is None:
        return t
    utc = t[local] - t[offset].fill_null(0).as_interval("m")
    t = t.mutate(_utc=utc)
    zones = ibis.memtable(zone_offsets(zone))
    j = t.left_join(zones, [t._utc >= zones.start, t._utc < zones.end])
    shop = j._utc + j.offset_minutes.fill_null(0).as_interval("m")
    out = j.mutate(**{local: j[offset].isnull().ifelse(j[local], shop)})
    return out.drop("_utc", "start", "end", "offset_minutes")


def _in(s: ir.StringValue, values: list[str]) -> ir.BooleanValue:
    return s.lower().isin([v.lower() for v in values]) if values else ibis.literal(False)


# What Excel, LibreOffice and Google Sheets write into a cell whose formula failed (#N/A: a lookup found nothing).
SPREADSHEET_ERRORS = ("#N/A", "#VALUE!", "#REF!", "#DIV/0!", "#NAME?", "#NULL!", "#NUM!")
_SPREADSHEET_ERROR = r"(?i)^\s*#(?:N/A|VALUE!|REF!|DIV/0!|NAME\?|NULL!|NUM!)\s*$"


def spreadsheet_error(t: ir.Table, columns: list[str]) -> ir.StringValue:
    """'customer_id is #N/A (a spreadsheet error value)' for the first of `columns` holding one of
    :data:`SPREADSHEET_ERRORS` (trimmed; #n/a too), else NULL. Only text columns can hold one (a platform
    preset derives some typed columns)."""
    # a plain search for '#' first, so the regular expression runs on few values (an AND would run it on all)
    cases = [(t[c].contains("#").ifelse(t[c].re_search(_SPREADSHEET_ERROR), False).fill_null(False),
              ibis.literal(f"{c} is ") + engine.trim(t[c]).upper() + " (a spreadsheet error value)")
             for c in columns if t[c].type().is_string()]
    return ibis.cases(*cases, else_=ibis.null("string")) if cases else ibis.null("string")


def map_status(status: ir.StringValue, status_map: dict[str, str]) -> ir.StringValue:
    """A status (trimmed, lower case) translated by ``cleaning.status_map`` (its words compared trimmed and in
    lower case); other statuses as they are."""
    if not status_map:
        return status
    return ibis.cases(*[(status == k.strip().lower(), v.strip().lower()) for k, v in status_map.items()],
                      else_=status)


# --------------------------------------------------------------------------- rules

def tag_orders(raw: ir.Table, as_of: str | None, rules: CleaningConfig, zone: str | None = None) -> ir.Table:
    """Parse every order line and tag it with the first rule it breaks (``reason``; NULL = kept).

    Input: all-string columns with contract names plus ``source_row``. Output adds typed
    ``order_ts`` (shop time, see :func:`to_shop_time`), ``amount_value``, ``status_norm``,
    ``customer_key``, ``reason`` and ``detail`` (what is wrong, for a row of the wrong shape, a spreadsheet
    error or an order conflict). A kept purchase line's ``order_ts`` is its order's (see :func:`_order_conflicts`).
    The same as :func:`tag_order_history` (what no cut-off decides, cleaned once for every month) cut at
    `as_of` by :func:`cut_orders`.
    """
    history = tag_order_history(raw, rules, zone)
    return cut_orders(history, order_copies(history), as_of, rules).drop("_oid")


# Columns the history adds to the raw ones (the raw columns are the rest: compared for duplicate lines).
HISTORY_COLUMNS = ("source_row", "_shape", "order_ts", "amount_value", "status_norm", "customer_key", "_oid",
                   "_return", "_line", "reason", "_shape_detail")
# The history's rules that come after after_as_of in the order of the rules: a line they tag but dated after the
# cut-off is after_as_of (duplicate_line, also after it, is kept apart: :func:`order_copies`).
_AFTER_CUT_OFF = ("above_max_line_amount",)


def tag_order_history(raw: ir.Table, rules: CleaningConfig, zone: str | None = None) -> ir.Table:
    """Every order line parsed and tagged with the first rule that no cut-off decides (all but after_as_of,
    duplicate_line and order_conflict): what a month's tags are cut from (:func:`cut_orders`).

    Adds ``order_ts``, ``amount_value``, ``status_norm``, ``customer_key``, ``reason`` and ``_oid`` (the trimmed
    order id), ``_return``, ``_shape_detail`` and ``_line``, a hash of the raw columns (:func:`order_copies`).
    Each value is parsed once into a column the rules then read (an expression used twice would be parsed twice).
    """
    cols = set(raw.columns)
    raw_cols = [c for c in raw.columns if c not in ("source_row", "_shape")]
    shape = raw._shape if "_shape" in cols else ibis.null("string")
    t = raw.mutate(_date=engine.trim(raw.order_date))
    t = t.mutate(order_ts=read_timestamp(t._date, rules.date_format))
    t = t.mutate(order_ts=_plausible(t.order_ts))
    if zone is not None:
        t = to_shop_time(t.mutate(_offset=utc_offset_minutes(t._date)), "order_ts", "_offset", zone).drop("_offset")
    t = t.drop("_date")
    status = map_status(text(t.status).lower(), rules.status_map) if "status" in cols else ibis.null("string")
    t = t.mutate(_oid=text(t.order_id), customer_key=customer_key(t.customer_id, rules.fold_id_case),
                 status_norm=status.fill_null(rules.completed_status_if_missing.lower()), _amount=engine.trim(t.amount),
                 _sheet=spreadsheet_error(t, raw_cols), _shape_=shape,
                 _line=ibis.struct({c: t[c] for c in raw_cols}).hash())
    t = t.mutate(_amount=amount_text(t._amount, rules.decimal_separator), _non_finite=is_non_finite(t._amount))
    t = t.mutate(amount_value=finite(t._amount.try_cast("float64")))
    is_test = _in(t.status_norm, rules.test_statuses)
    for prefix in rules.test_customer_prefixes:
        is_test = is_test | t.customer_key.upper().startswith(prefix.upper()).fill_null(False)
    before = t.order_ts < ibis.literal(pd.Timestamp(rules.min_order_date).to_pydatetime())
    too_big = (t.amount_value.abs() > rules.max_line_amount) if rules.max_line_amount else ibis.literal(False)
    reason = ibis.cases(
        (t._shape_.notnull(), "wrong_field_count"),
        (t._sheet.notnull(), "spreadsheet_error"),
        (t._oid.isnull(), "missing_order_id"),
        (t.customer_key.isnull(), "missing_customer_id"),
        (t.order_ts.isnull(), "bad_date"),
        (t._non_finite, "non_finite_amount"),
        (t.amount_value.isnull(), "bad_amount"),
        (is_test, "test_order"),
        (_in(t.status_norm, rules.cancelled_statuses), "cancelled"),
        (_in(t.status_norm, rules.unpaid_statuses), "unpaid"),
        (t.status_norm == presets.REFUNDED_IN_FULL, "refunded_in_full"),
        (before, "before_min_order_date"),
        (too_big, "above_max_line_amount"),
        else_=ibis.null("string"),
    )
    is_return = (t.amount_value < 0) | _in(t.status_norm, rules.returned_statuses)
    return t.mutate(reason=reason, _return=is_return.fill_null(False),
                    _shape_detail=t._shape_.coalesce(t._sheet)).drop("_amount", "_non_finite", "_sheet", "_shape_")


def order_copies(history: ir.Table) -> ir.Table:
    """``source_row`` of every line that is an exact copy of an earlier line (every raw column equal).

    Lines are grouped by the hash of their raw columns (``_line``); only those whose hash occurs more than once
    are compared column by column, as hashes differ between engines and two different lines may share one.
    """
    raw_cols = [c for c in history.columns if c not in HISTORY_COLUMNS]
    shared = history.group_by("_line").agg(_n=history.count())
    candidates = history.semi_join(shared.filter(shared._n > 1), "_line")
    ranked = candidates.mutate(_copy=ibis.row_number().over(group_by=[candidates[c] for c in raw_cols],
                                                            order_by=candidates.source_row))
    return ranked.filter(ranked._copy > 0).select("source_row")


def cut_orders(history: ir.Table, copies: ir.Table, as_of: str | None, rules: CleaningConfig,
               keep: Callable[[ir.Table], ir.Table] | None = None) -> ir.Table:
    """A month's tags from the order history (:func:`tag_order_history`): lines dated after `as_of` are
    after_as_of, the `copies` (:func:`order_copies`) left are duplicate_line, then :func:`_order_conflicts`
    (the tags keep ``_oid``, the trimmed order id). `keep` writes the orders' :func:`order_firsts` and returns
    them read back, so that each reading of the tags joins them instead of grouping the lines again."""
    r = history.reason
    after = (history.order_ts >= ibis.literal(cutoff_end(as_of))) if as_of else ibis.literal(False)
    reason = ibis.cases(
        (r.notnull() & ~r.isin(list(_AFTER_CUT_OFF)), r),
        (after, "after_as_of"),
        (r.notnull(), r),
        (history.source_row.isin(copies.source_row), "duplicate_line"),
        else_=ibis.null("string"),
    )
    t = history.mutate(reason=reason).drop("_line")
    firsts = order_firsts(t)
    return _order_conflicts(t, rules.order_time_tolerance_hours, keep(firsts) if keep else firsts)


def order_firsts(t: ir.Table) -> ir.Table:
    """Per order id of the lines that passed every other rule (`t`: a month's tags before the conflicts), what
    :func:`_order_conflicts` compares each line with: the first such line (``_fr``, row; ``_fc``, its customer)
    and that customer's earliest purchase line (``_fts``, time; ``_fpr``, row; the lowest row among lines of one
    time). Aggregates, no window and no self-join of lines, so Spark spreads the orders over its workers."""
    ok = t.filter(t.reason.isnull())
    # per order and customer: the first kept row and the earliest purchase line; then per order, the customer of
    # the first row and that customer's earliest line (argmin: rows are unique), so the lines are grouped once
    per = ok.group_by("_oid", "customer_key").agg(
        _r=ok.source_row.min(), _e=ibis.struct({"ts": ok.order_ts, "row": ok.source_row}).min(where=~ok._return))
    orders = per.group_by("_oid").agg(_fr=per._r.min(), _fc=per.customer_key.argmin(per._r),
                                      _earliest=per._e.argmin(per._r))
    return orders.select("_oid", "_fr", "_fc", _fts=orders._earliest["ts"], _fpr=orders._earliest["row"])


def _order_conflicts(t: ir.Table, tolerance_hours: float, firsts: ir.Table) -> ir.Table:
    """Tag ``order_conflict`` on lines that passed every other rule but name another customer than the first
    such line of their order_id (any line), or, for a purchase line, are dated more than `tolerance_hours`
    after the order's earliest purchase line (a return is dated when it came back). The other purchase
    lines are one order: their ``order_ts`` becomes that earliest line's.

    `firsts` is :func:`order_firsts` of `t`, joined back on the order id. Keeps ``_oid`` (the clean table's order_id), drops ``_return`` and
    ``_shape_detail`` (``detail`` holds it).
    """
    t = t.left_join(firsts, "_oid").mutate(_ok=t.reason.isnull())
    t = t.mutate(_buy=t._ok & (t.customer_key == t._fc) & ~t._return)
    seconds = t.order_ts.epoch_seconds() - t._fts.epoch_seconds()
    tenths = (seconds / 360).ceil().cast("int64")  # hours to one decimal, rounded up: never shown as "24" when later
    hours_text = (tenths % 10 == 0).ifelse((tenths // 10).cast("string"),
                                           (tenths // 10).cast("string") + "." + (tenths % 10).cast("string"))
    detail = ibis.cases(
        (t._ok & (t.customer_key != t._fc), "order_id " + t._oid + " first appears on row " + t._fr.cast("string")
         + _OTHER_CUSTOMER),
        (t._buy & (seconds > tolerance_hours * 3600), "order_id " + t._oid + "'s earliest line (row "
         + t._fpr.cast("string") + ", " + t._fts.cast("string") + ") is " + hours_text + " hours earlier, more "
         + f"than cleaning.order_time_tolerance_hours ({tolerance_hours:g})"),
        else_=ibis.null("string"),
    )
    t = t.mutate(reason=detail.notnull().ifelse("order_conflict", t.reason), detail=detail.coalesce(t._shape_detail),
                 order_ts=(t._buy & detail.isnull()).ifelse(t._fts, t.order_ts))
    return t.drop("_ok", "_fc", "_fr", "_fts", "_fpr", "_buy", "_return", "_shape_detail")


def kept_orders(tagged: ir.Table, rules: CleaningConfig, optional_present: list[str]) -> ir.Table:
    """The kept lines in the clean layout (orders_clean.parquet), returns as negative amounts."""
    kept = tagged.filter(tagged.reason.isnull())
    cols = set(kept.columns)

    def opt_text(name):
        return text(kept[name]) if name in cols else ibis.null("string")

    def number_text(name):  # as parse_amount reads it, the cast apart: each number parsed once
        return amount_text(engine.trim(kept[name]), rules.decimal_separator) if name in cols else ibis.null("string")

    kept = kept.mutate(_quantity=number_text("quantity"), _discount=number_text("discount_amount"))
    is_return = (kept.amount_value < 0) | _in(kept.status_norm, rules.returned_statuses)
    amount = is_return.ifelse(-kept.amount_value.abs(), kept.amount_value)
    discount = finite(kept._discount.try_cast("float64")).abs()
    return kept.select(
        order_id=kept._oid,  # the tags' trimmed order id
        customer_id=kept.customer_key,
        order_date=kept.order_ts.cast("timestamp"),
        amount=amount.round(2),
        quantity=finite(kept._quantity.try_cast("float64")),
        product_id=opt_text("product_id"),
        category=opt_text("category"),
        status=kept.status_norm,
        payment_method=opt_text("payment_method"),
        channel=opt_text("channel"),
        currency=opt_text("currency"),
        discount_amount=discount.round(2),
        coupon_code=opt_text("coupon_code"),
        is_return=is_return,
        source_row=kept.source_row.cast("int64"),
    )


def tag_customers(raw: ir.Table, as_of: str | None, fold_case: bool = False) -> ir.Table:
    """Customers: a spreadsheet error value or a missing id -> quarantine, repeated id -> excluded (first row
    kept), signup after as_of -> excluded."""
    cols = set(raw.columns)
    customer_id = customer_key(raw.customer_id, fold_case)
    signup = parse_timestamp(raw.signup_date) if "signup_date" in cols else ibis.null("timestamp")
    shape = raw._shape if "_shape" in cols else ibis.null("string")
    sheet_error = spreadsheet_error(raw, [c for c in raw.columns if c not in ("source_row", "_shape")])
    copy_no = ibis.row_number().over(group_by=customer_id, order_by=raw.source_row)
    after = (signup >= ibis.literal(cutoff_end(as_of))).fill_null(False) if as_of else ibis.literal(False)
    reason = ibis.cases(
        (shape.notnull(), "wrong_field_count"),
        (sheet_error.notnull(), "spreadsheet_error"),
        (customer_id.isnull(), "missing_customer_id"),
        (copy_no > 0, "duplicate_customer"),
        (after, "after_as_of"),
        else_=ibis.null("string"),
    )
    return raw.mutate(signup_ts=signup, customer_key=customer_id, reason=reason, detail=shape.coalesce(sheet_error))


_YES = ["1", "true", "yes", "y", "ja", "t", "opt-in", "opted_in", "subscribed"]


def kept_customers(tagged: ir.Table, as_of: str | None) -> ir.Table:
    kept = tagged.filter(tagged.reason.isnull())
    cols = set(kept.columns)

    def opt_text(name):
        return text(kept[name]) if name in cols else ibis.null("string")

    year_now = pd.Timestamp(as_of).year if as_of else 2100
    birth = parse_amount(kept.birth_year, ".").cast("int64") if "birth_year" in cols else ibis.null("int64")
    birth = ((birth >= 1900) & (birth <= year_now)).ifelse(birth, ibis.null("int64"))
    consent = _in(text(kept.marketing_opt_in), _YES) if "marketing_opt_in" in cols else ibis.literal(False)
    return kept.select(
        customer_id=kept.customer_key,
        signup_date=kept.signup_ts.cast("timestamp"),
        email=opt_text("email"),
        gender=opt_text("gender").upper(),
        birth_year=birth,
        region=opt_text("region"),
        marketing_opt_in=consent.fill_null(False),
        source_row=kept.source_row.cast("int64"),
    )


def tag_campaigns(raw: ir.Table, as_of: str | None, known: ir.Table | None = None, fold_case: bool = False) -> ir.Table:
    """Campaign sends; `known` (one column ``customer_id``: buyers and listed customers) leaves out the others."""
    raw = raw.mutate(_customer_key=customer_key(raw.customer_id, fold_case))
    if known is not None:  # a join on the key: NOT IN would compare every row with every customer on Spark
        ids = known.select(_known_id=known.customer_id).distinct()
        raw = raw.left_join(ids, raw._customer_key == ids._known_id)
        raw = raw.mutate(_unknown=raw._known_id.isnull()).drop("_known_id")
    else:
        raw = raw.mutate(_unknown=ibis.literal(False))
    customer_id, unknown = raw._customer_key, raw._unknown
    sent = parse_timestamp(raw.sent_date)
    discount = parse_amount(raw.discount, ".")
    after = (sent >= ibis.literal(cutoff_end(as_of))) if as_of else ibis.literal(False)
    shape = raw._shape if "_shape" in raw.columns else ibis.null("string")
    sheet_error = spreadsheet_error(raw, [c for c in raw.columns
                                          if c not in ("source_row", "_shape", "_customer_key", "_unknown")])
    reason = ibis.cases(
        (shape.notnull(), "wrong_field_count"),
        (sheet_error.notnull(), "spreadsheet_error"),
        (customer_id.isnull(), "missing_customer_id"),
        (sent.isnull(), "bad_date"),
        (discount.isnull() | (discount < 0) | (discount > 1), "bad_discount"),
        (after, "after_as_of"),
        (unknown, "unknown_customer"),
        else_=ibis.null("string"),
    )
    return raw.mutate(sent_ts=sent, discount_value=discount, customer_key=customer_id, reason=reason,
                      detail=shape.coalesce(sheet_error)).drop("_customer_key", "_unknown")


def tag_spend(raw: ir.Table, as_of: str | None) -> ir.Table:
    """marketing_spend.csv's rows (month, channel, spend): the month as 'YYYY-MM' or any date in it, the spend
    an amount of at least 0 in the shop's currency; a month after `as_of`'s is excluded (after_as_of)."""
    t = engine.trim(raw.month.cast("string"))
    start = parse_timestamp(t.length().isin([6, 7]).ifelse(t + "-01", t))
    spend = parse_amount(raw.spend.cast("string"))
    last = pd.Timestamp(str(as_of)[:10]).to_period("M").start_time if as_of else None
    after = (start.truncate("M") > ibis.timestamp(last)) if as_of else ibis.literal(False)
    shape = raw._shape if "_shape" in raw.columns else ibis.null("string")
    sheet_error = spreadsheet_error(raw, [c for c in raw.columns if c not in ("source_row", "_shape")])
    reason = ibis.cases(
        (shape.notnull(), "wrong_field_count"),
        (sheet_error.notnull(), "spreadsheet_error"),
        (start.isnull(), "bad_date"),
        (text(raw.channel.cast("string")).isnull(), "missing_channel"),
        (spend.isnull() | (spend < 0), "bad_spend"),
        (after, "after_as_of"),
        else_=ibis.null("string"),
    )
    return raw.mutate(month_ts=start.truncate("M"), spend_value=spend, reason=reason,
                      detail=shape.coalesce(sheet_error))


def kept_spend(tagged: ir.Table) -> ir.Table:
    kept = tagged.filter(tagged.reason.isnull())
    return kept.select(month=kept.month_ts.cast("timestamp"), channel=text(kept.channel.cast("string")),
                       spend=kept.spend_value, source_row=kept.source_row.cast("int64"))


def kept_campaigns(tagged: ir.Table) -> ir.Table:
    kept = tagged.filter(tagged.reason.isnull())
    return kept.select(
        campaign_id=text(kept.campaign_id),
        customer_id=kept.customer_key,
        sent_date=kept.sent_ts.cast("timestamp"),
        arm=text(kept.arm).lower(),
        discount=kept.discount_value,
        source_row=kept.source_row.cast("int64"),
    )


# --------------------------------------------------------------------------- the stage

@dataclass
class FileReport:
    """Row accounting of one raw file."""

    file: str
    encoding: str
    rows_raw: int
    rows_kept: int
    quarantined: dict[str, int] = field(default_factory=dict)
    excluded: dict[str, int] = field(default_factory=dict)
    optional_columns: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    examples: dict[str, list[int]] = field(default_factory=dict)  # first quarantined rows per reason
    details: dict[str, str] = field(default_factory=dict)  # the detail, where one reason has one (e.g. field counts)
    parts: list = field(default_factory=list)  # an export in several files: [file, rows before it, its rows]

    def check(self) -> None:
        total = self.rows_kept + sum(self.quarantined.values()) + sum(self.excluded.values())
        if total != self.rows_raw:  # a bug, never a data problem: refuse to write anything
            raise AssertionError(f"{self.file}: {self.rows_raw} raw rows but {total} accounted for")


def _account(tagged: ir.Table, file: str, encoding: str, raw: RawFile,
             kept_rows: ir.IntegerScalar | None = None) -> FileReport:
    """Every row of the file counted by its tag. `tagged` holds every row, or with `kept_rows` (the clean table's
    count) only those not kept."""
    counts = tagged.group_by("reason").agg(n=tagged.count()).to_pandas()
    by_reason = {(r if isinstance(r, str) else None): int(n) for r, n in zip(counts["reason"], counts["n"])}
    if kept_rows is not None:
        by_reason[None] = by_reason.get(None, 0) + int(kept_rows.to_pandas())
    for reason, n in raw.rejected["reason"].value_counts().items():
        by_reason[reason] = by_reason.get(reason, 0) + int(n)
    kept = by_reason.pop(None, 0)
    report = FileReport(
        file=file, encoding=encoding, rows_raw=int(kept + sum(by_reason.values())), rows_kept=kept,
        quarantined={r: by_reason[r] for r in QUARANTINE_REASONS if r in by_reason},
        excluded={r: by_reason[r] for r in EXCLUSION_RULES if r in by_reason},
        optional_columns=raw.optional, ignored_columns=raw.ignored,
    )
    report.check()
    return report


def _quarantine_rows(tagged: ir.Table, file: str, raw: RawFile) -> pd.DataFrame:
    """The quarantined rows: file, its row, reason, detail and the row's contract columns (never an e-mail)."""
    raw_cols = [c for c in raw.table.columns if c not in ("source_row", "_shape", *presets.PRIVATE)]
    bad = tagged.filter(tagged.reason.isin(list(QUARANTINE_REASONS)))
    df = bad.select("source_row", "reason", "detail", *raw_cols).to_pandas()
    if not raw.rejected.empty:
        df = pd.concat([df, raw.rejected], ignore_index=True)
    df = df.sort_values("source_row", kind="stable").reset_index(drop=True)
    df["detail"] = df["detail"].fillna(df["reason"].map(REASON_TEXT))
    df["source_row"] = df["source_row"].astype("int64")
    names = file
    if raw.files and len(df):  # several parts of one export: each row named by its own file and row
        names, df["source_row"] = in_parts(df["source_row"].to_numpy(), raw.files)
    df.insert(0, "file", names)
    if "raw_line" in df:  # a row the reader could not split is shown as text: its e-mails are masked
        df["raw_line"] = df["raw_line"].str.replace(EMAIL_TEXT, "[e-mail]", regex=True)
    return df


def in_parts(rows: np.ndarray, parts: list) -> tuple[list[str], np.ndarray]:
    """Rows numbered through the parts of one export ([name, rows before it, its rows], ``RawFile.files``)
    as (each row's file, its row in that file)."""
    starts = np.array([offset for _, offset, _ in parts])
    part = np.searchsorted(starts, rows, side="left") - 1
    return [parts[i][0] for i in part], rows - starts[part]


def _details(details: pd.Series) -> str:
    """'row has 3 fields, the header has 4' or, for several, the three most common with their counts."""
    counts = details.value_counts(sort=True)
    if len(counts) == 1:
        return str(counts.index[0])
    return "; ".join(f"{n:,} x {d}" for d, n in counts.head(3).items()) + ("; ..." if len(counts) > 3 else "")


def stop_reason(report: dict) -> str | None:
    """Why this month cannot be analysed (one sentence), or None: no usable order line at all, or none
    in the month ending at as_of."""
    fr = report["files"]["orders"]
    facts = report["orders"]
    if fr["rows_kept"] == 0:
        q, x = sum(fr["quarantined"].values()), sum(fr["excluded"].values())
        worst = max([*fr["quarantined"].items(), *fr["excluded"].items()], key=lambda kv: kv[1])
        return (f"{fr['file']}: none of its {fr['rows_raw']:,} rows is a usable order line ({q:,} quarantined, "
                f"{x:,} excluded by rule; mostly: {REASON_TEXT[worst[0]]}); `retention validate` lists the rows "
                "and what to do.")
    as_of = report.get("as_of")
    if as_of and facts.get("lines_in_month") == 0:
        month = str(as_of)[:7]
        return (f"{fr['file']} has no usable order line in {month} (the month ending at as_of {as_of}); the last "
                f"one is dated {facts['last_date']}. Check that the export covers {month}, or run an earlier month.")
    return None


class NoOrders(ContractError):
    """No usable order line for the month: a clear stop instead of a report on nothing."""


LARGEST_LINES = 5  # the largest kept lines notebook 01 lists for a human to check


@dataclass
class CleanResult:
    """What notebook 01 shows: the data-quality report and the figures its page reads from orders_clean.

    ``report`` is the content of data_quality.json. ``monthly`` is :func:`monthly_lines` of the written
    orders_clean; ``largest`` its :data:`LARGEST_LINES` largest lines (:func:`top_lines`), and
    ``largest_purchase`` / ``median_purchase`` the largest and the median purchase line's amount (None
    without a purchase line). ``quarantine`` holds the rows of quarantine.csv.
    """

    report: dict
    currency: str
    quarantine: pd.DataFrame = field(repr=False)
    monthly: pd.DataFrame = field(repr=False)
    largest: pd.DataFrame = field(repr=False)
    largest_purchase: float | None = None
    median_purchase: float | None = None


def run(processed_dir: str | Path, as_of: str | None, cfg: Config, con=None, *, raw_dir: str | Path) -> CleanResult:
    """Clean the shop's raw exports in `raw_dir` and write the month's clean artifacts to `processed_dir`.

    The one stage that reads raw files, so it alone takes `raw_dir` (keyword-only, beside the shape every
    stage shares). Writes orders_clean, customers_clean and campaigns_clean (those the shop has),
    quarantine.csv and data_quality.json, sorted so the same input gives byte-identical files, and returns
    a :class:`CleanResult`. Raises ContractError with one sentence when a file or a required column is
    missing, a file is empty or cannot be read, and :class:`NoOrders` (writing nothing) when no order line
    is usable in the month ending at `as_of`. To check exports without writing, use :func:`validate`.
    """
    if processed_dir is None:
        raise ValueError("clean.run writes the month's artifacts and needs a processed_dir; clean.validate checks "
                         "the raw exports without writing anything.")
    con = con or connect(cfg.engine)
    with tempfile.TemporaryDirectory(prefix="retention-clean-") as tmp:  # the month's tags, in Parquet
        month = _clean_month(con, resolve(raw_dir), as_of, cfg, Path(tmp), processed_dir)
        if month.report["stop"]:
            raise NoOrders(month.report["stop"])
        _write(con, processed_dir, month)
    return _result(con, processed_dir, month, cfg.shop.currency)


def validate(raw_dir: str | Path, cfg: Config, as_of: str | None = None) -> dict:
    """Run every cleaning check and return the report without writing anything.

    A month that cannot be analysed does not raise here: its sentence is ``report["stop"]``.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        con = connect(cfg.engine)
        with tempfile.TemporaryDirectory(prefix="retention-clean-") as tmp:
            month = _clean_month(con, resolve(raw_dir), as_of, cfg, Path(tmp), None)
        return month.report


@dataclass
class _Month:
    """A month being cleaned: the report so far, the clean tables (engine expressions over the month's Parquet files
    in a temporary folder, not in processed_dir yet) and the quarantined rows per file."""

    report: dict
    outputs: dict = field(default_factory=dict)
    quarantine: list = field(default_factory=list)
    written: dict = field(default_factory=dict)  # clean tables already in Parquet in their artifact's order, by kind
    guests: pd.DataFrame | None = None  # guest_revenue.csv: per month, the revenue of lines without a customer id


def _clean_month(con, raw_dir: Path, as_of: str | None, cfg: Config, tmp: Path,
                 processed_dir: str | Path | None) -> _Month:
    """Read, tag and account every raw file of the shop (orders, then customers and campaigns if present).

    `processed_dir` only places the shop's identity key (a platform preset hashes e-mails with it); with
    None (`validate`) nothing is created and ids are hashed with the existing key or a throwaway one.
    """
    month = _Month({"as_of": as_of, "shop": raw_dir.name, "files": {}, "warnings": []})
    preset, identity = presets.get(cfg.columns.preset), None
    if preset is not None:
        shop_dir = Path(processed_dir).parent if processed_dir is not None else resolve("data/processed") / raw_dir.name
        # `validate` writes nothing: without a key yet, ids are hashed with a throwaway one (never written).
        identity = presets.Identity(artifacts.identity_key(shop_dir, create=processed_dir is not None)
                                    or f"validate-{raw_dir.name}")
        month.report["preset"] = {"name": preset.name, "label": preset.label, "refund_note": preset.refund_note,
                                  "consent_note": preset.consent_note}
    for kind, read in cleaned_history(con, raw_dir, cfg, tmp, processed_dir, preset, identity).items():
        _clean_file(con, month, kind, read, as_of, cfg, tmp, preset)
    month.outputs.pop("_registered", None)
    _add_facts(month, cfg, as_of)
    return month


# --------------------------------------------------------------------------- the cleaned history

# The code that reads and tags the raw files: its source is part of a history's key, so a changed rule, reader or
# platform mapping cleans afresh by itself (no version number to remember to raise).
_TAGGING_CODE = (Path(__file__), Path(artifacts.__file__), Path(presets.__file__), Path(engine.__file__))
KINDS = (("orders", True), ("customers", False), ("campaigns", False),  # each raw file, and whether it is required
         ("marketing_spend", False))
_RAW_FACTS = ("optional", "ignored", "delimiter", "rows", "files", "export_columns", "reading")


@dataclass
class FileHistory:
    """One raw file (or the parts of one export) as read, and for orders tagged by every rule no cut-off decides:
    what every month is cut from (:func:`cleaned_history`).

    ``raw`` is the file as read, its table the rows (contract names, ``source_row``, ``_shape``); ``table`` is
    that table (customers, campaigns) or the orders' :func:`tag_order_history`, ``copies`` the orders'
    :func:`order_copies`, each read from Parquet. ``warnings`` are what reading the file said (an encoding).
    """

    raw: RawFile
    table: ir.Table
    label: str
    encoding: str
    sources: list[str]
    warnings: list[str] = field(default_factory=list)
    copies: ir.Table | None = None


def history_key(sources: dict[str, list[Path]], cfg: Config, identity: presets.Identity | None) -> str:
    """What a cleaned history is kept under: a hash of the `sources` files' bytes (their names too) and of every
    setting that changes what they read as - the cleaning and columns sections, the shop section (time zone, currency),
    the engine (hashes and types differ between engines), a platform export's identity key - and of the source
    of the modules that read and tag them (:data:`_TAGGING_CODE`). Bytes, not sizes and times: a file copied or
    touched is the same file, and one rewritten within a second with the same size is not."""
    digest = hashlib.blake2b(digest_size=12)
    settings = {"engine": cfg.engine.backend.lower(),
                **{name: getattr(cfg, name).model_dump(mode="json") for name in ("shop", "columns", "cleaning")},
                "identity": identity.key if identity is not None else None,
                "files": {kind: [p.name for p in paths] for kind, paths in sources.items()}}
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    for path in [*_TAGGING_CODE, *(p for paths in sources.values() for p in paths)]:
        digest.update(artifacts.file_digest(path))
    return digest.hexdigest()


def cleaned_history(con, raw_dir: Path, cfg: Config, tmp: Path, processed_dir: str | Path | None,
                    preset: presets.Preset | None, identity: presets.Identity | None) -> dict[str, FileHistory | str]:
    """Every raw file of the shop read, the orders tagged as far as no cut-off decides, per kind (orders, then
    customers and campaigns if present; an optional file that is empty is the sentence saying it is treated as
    absent).

    The orders' history is kept beside the shop's months (``artifacts.history_entry``, one entry per shop, keyed
    by :func:`history_key`), so a backfill or a rerun reads and tags the order lines once. Not kept: customers
    and campaigns (small, read again each month) and a platform export's orders, as both hold e-mails, which
    leave the month only in customers_clean. `processed_dir` None (`validate`) reads the entry when the key
    matches and writes none.
    """
    sources = {kind: found for kind, required in KINDS if (found := _sources(raw_dir, kind, required, preset))}
    orders = {"orders": sources.pop("orders")}
    shop_dir = resolve(processed_dir).parent if processed_dir is not None else resolve("data/processed") / raw_dir.name
    entry = artifacts.history_entry(shop_dir, history_key(orders, cfg, identity))
    if not entry.is_dir():
        keep = processed_dir is not None and preset is None
        folder = artifacts.new_history_folder(shop_dir) if keep else tmp / "history"
        try:
            _build_history(con, orders, cfg, folder, tmp, preset, identity)
        except BaseException:  # a file that cannot be read (one sentence): no half-written entry left behind
            artifacts.remove(folder)
            raise
        entry = artifacts.keep_history(folder, shop_dir, entry.name) if keep else folder
    _build_history(con, sources, cfg, tmp / "read", tmp, preset, identity)
    return {**_load_history(con, entry), **_load_history(con, tmp / "read")}


def _build_history(con, sources: dict[str, list[Path]], cfg: Config, folder: Path, tmp: Path,
                   preset: presets.Preset | None, identity: presets.Identity | None) -> None:
    """Read every raw file into `folder`: each kind's table in Parquet (orders tagged by
    :func:`tag_order_history`, with their :func:`order_copies`) and what reading said in ``history.json``.
    Copies of a file the reader needs (another encoding, a workbook) go to `tmp`."""
    facts = {}
    for kind, paths in sources.items():
        said = {"warnings": []}
        try:
            raw, label = _read_all(con, paths, kind, cfg, tmp, said, preset, identity)
        except EmptyFile as exc:
            if kind == "orders":
                raise
            facts[kind] = f"{exc} It is treated as absent."
            continue
        table = raw.table
        if kind == "orders":
            table = tag_order_history(raw.table, cfg.cleaning, cfg.shop.timezone)
        table = artifacts.parquet_table(con, folder / f"{kind}.parquet", table)
        artifacts.release_raw(con)  # held in Parquet now: the file as read is not needed again
        if kind == "orders":
            artifacts.parquet_table(con, folder / "order_copies.parquet", order_copies(table))
        masked = raw.rejected["raw_line"].str.replace(EMAIL_TEXT, "[e-mail]", regex=True)  # as quarantine.csv shows it
        facts[kind] = {"label": label, "encoding": said["_encoding"], "warnings": said["warnings"],
                       "sources": [p.name for p in paths], "columns": raw.table.columns,
                       "rejected": raw.rejected.assign(raw_line=masked).to_dict("records"),
                       **{name: getattr(raw, name) for name in _RAW_FACTS}}
    artifacts.write_json_file(folder / "history.json", facts)


def _load_history(con, folder: Path) -> dict[str, FileHistory | str]:
    """The history :func:`_build_history` wrote in `folder`, its tables read from Parquet."""
    out: dict[str, FileHistory | str] = {}
    written = artifacts.read_json_file(folder / "history.json")
    for kind, facts in [(kind, written[kind]) for kind, _ in KINDS if kind in written]:
        if isinstance(facts, str):
            out[kind] = facts
            continue
        table = artifacts.parquet_table(con, folder / f"{kind}.parquet")
        rejected = pd.DataFrame(facts["rejected"], columns=["source_row", "reason", "detail", "raw_line"])
        raw = RawFile(table.select(*facts["columns"]), rejected=rejected, **{n: facts[n] for n in _RAW_FACTS})
        raw.files = [tuple(f) for f in raw.files]
        copies = artifacts.parquet_table(con, folder / "order_copies.parquet") if kind == "orders" else None
        out[kind] = FileHistory(raw, table, facts["label"], facts["encoding"], facts["sources"], facts["warnings"],
                                copies)
    return out


def _clean_file(con, month: _Month, kind: str, read: FileHistory | str, as_of: str | None, cfg: Config, tmp: Path,
                preset: presets.Preset | None) -> None:
    """One raw file (or the parts of one export) cut at `as_of` from its history: tag each row, keep the clean
    rows, account for every row. An optional file that is empty (`read` is then the sentence saying so) is
    treated as absent.
    """
    report, outputs = month.report, month.outputs
    if isinstance(read, str):
        report["warnings"].append(read)
        return
    raw, label = read.raw, read.label
    report["warnings"] += read.warnings
    if preset is not None and kind == "orders":  # a platform export has many columns we need not read
        report["preset"].update(files=read.sources, not_read=raw.ignored,
                                read=[c for c in preset.reads if c in raw.export_columns])
    elif raw.ignored:
        report["warnings"].append(f"{label}: columns outside the raw data contract are ignored: "
                                  f"{', '.join(raw.ignored[:10])}{'...' if len(raw.ignored) > 10 else ''}.")
    # each written once: the tags feed the accounting, the quarantine and the clean table, which the facts read;
    # the clean table sorted as its artifact is, so that `_write` moves the file into place
    tagged = _tag_file(con, tmp, kind, read, outputs, as_of, cfg, preset)
    # A shop's own order export: its kept lines go straight into the clean table and only the others are written
    # as tags, as the lines of both are never needed again (at 10M lines one wide write and read fewer). A
    # platform's customers are drawn from its kept order lines' e-mails: every tag is written there.
    split = kind == "orders" and preset is None
    rest = artifacts.parquet_table(con, tmp / f"tagged_{kind}.parquet",
                                   tagged.filter(tagged.reason.notnull()) if split else tagged)
    if not split:  # every tag is in Parquet now: read from there
        tagged = rest
    kept = _kept_table(kind, tagged, raw, as_of, cfg, label, report, read.table if split else None)
    held = [engine.cache(con, kept)] if engine.is_spark(con) else []  # Spark's sort samples its input first: once
    month.written[kind] = tmp / f"clean_{kind}.parquet"
    clean = artifacts.parquet_table(con, month.written[kind], (held[0] if held else kept).order_by(SORT_KEYS[kind]))
    engine.release(con, held)
    fr, rows = _account_file(rest, label, read.encoding, raw, kept_rows=clean.count() if split else None)
    report["files"][kind] = {**fr.__dict__, **raw.reading}  # reading: header line, sheet, line ends when notable
    month.quarantine.append(rows)
    if kind == "orders":
        _note_order_values(report, clean, rows, label, cfg.cleaning)
        month.guests = guest_revenue(rest, as_of, cfg.cleaning)
    if kind == "customers" and "customers" in outputs:  # a preset's customers: the file's rows first
        derived = outputs["customers"].anti_join(clean, "customer_id")
        clean = clean.union(derived.select(*[derived[c].cast(clean.schema()[c]).name(c) for c in clean.columns]))
        del month.written[kind]
    outputs[kind] = clean
    if kind == "orders" and preset is not None:
        outputs["customers"] = _customers_from_orders(tagged)
        outputs["_registered"] = tagged
        report["preset"]["customers_from_orders"] = int(outputs["customers"].count().to_pandas())


def guest_revenue(tagged: ir.Table, as_of: str | None, rules: CleaningConfig) -> pd.DataFrame:
    """guest_revenue.csv: per month, the order lines without a customer id that pass every other rule (a readable
    date and amount, a status that is not test, cancelled, unpaid or refunded, inside the analysed dates and the
    line-amount limit): guest checkouts. They are quarantined (no customer can be named, so no customer figure
    counts them), but their money is the shop's revenue: columns month, lines, orders, revenue (net: returns
    subtract), oldest month first."""
    t = tagged.filter((tagged.reason == "missing_customer_id") & tagged.order_ts.notnull() & tagged.amount_value.notnull())
    t = t.filter(~(_in(t.status_norm, [*rules.test_statuses, *rules.cancelled_statuses, *rules.unpaid_statuses])
                   | (t.status_norm == presets.REFUNDED_IN_FULL)).fill_null(False))
    t = t.filter(t.order_ts >= ibis.literal(pd.Timestamp(rules.min_order_date).to_pydatetime()))
    if as_of:
        t = t.filter(t.order_ts < ibis.literal(cutoff_end(as_of)))
    if rules.max_line_amount:
        t = t.filter(t.amount_value.abs() <= rules.max_line_amount)
    g = t.group_by(month=t.order_ts.strftime("%Y-%m")).agg(lines=t.count(), orders=t.order_id.nunique(),
                                                          revenue=t.amount_value.sum())
    df = g.to_pandas().sort_values("month").reset_index(drop=True)
    return pd.DataFrame({"month": df["month"].astype(str), "lines": df["lines"].astype("int64"),
                         "orders": df["orders"].astype("int64"), "revenue": df["revenue"].astype(float).round(2)})


STATUSES_NAMED = 10  # the most frequent unknown statuses a warning names (a misread column could hold thousands)
_OTHER_CUSTOMER = " with another customer_id"  # the end of an order_conflict detail naming another customer
_HOURS_APART = r"\) is ([0-9.]+) hours earlier"  # in one naming a time too far from the order's earliest line


def unknown_statuses(clean: ir.Table, rules: CleaningConfig) -> dict[str, int]:
    """Kept order lines (`clean`: the month's clean orders) per status the rules do not know (after
    ``cleaning.status_map``; trimmed, lower case), most frequent first: they are counted as completed orders."""
    kept = clean.filter(~clean.status.isin(rules.known_statuses()))
    counts = kept.group_by("status").agg(n=kept.count()).order_by([ibis.desc("n"), "status"])
    df = counts.to_pandas()
    return {str(s): int(n) for s, n in zip(df["status"], df["n"])}


def _yaml_word(word: str) -> str:
    """A status as a key of a YAML map: plain when it reads back as the same text, else quoted."""
    plain = re.fullmatch(r"[^\W\d_][\w .-]*", word) and word.lower() not in {"yes", "no", "on", "off", "true",
                                                                           "false", "null", "y", "n"}
    return word if plain else json.dumps(word, ensure_ascii=False)


def status_warning(label: str, unknown: dict[str, int]) -> str | None:
    """One sentence naming the statuses the rules do not know (:func:`unknown_statuses`) with their counts, and
    the ``cleaning.status_map`` line that maps them; None when every status is known."""
    if not unknown:
        return None
    n = sum(unknown.values())
    named = list(unknown.items())[:STATUSES_NAMED]
    listed = ", ".join(f"'{s}' ({k:,} line{'s' if k != 1 else ''})" for s, k in named)
    if len(unknown) > len(named):
        listed += (f" and {len(unknown) - len(named):,} other statuses "
                   f"({n - sum(k for _, k in named):,} lines)")
    line = "{" + ", ".join(f"{_yaml_word(s)}: <status>" for s, _ in named) + "}"
    one = n == 1
    return (f"{label}: {n:,} kept line{'' if one else 's'} {'has' if one else 'have'} a status the cleaning rules do "
            f"not know and {'is' if one else 'are'} counted as completed orders (the default): {listed}; if a status "
            f"means something else, add under cleaning: status_map: {line}, each <status> being completed or a word "
            "of cancelled_statuses, returned_statuses, unpaid_statuses or test_statuses.")


def conflict_warning(label: str, rows: pd.DataFrame, tolerance_hours: float) -> str | None:
    """One sentence on the file's order_conflict lines (its quarantined `rows`): how many name another customer,
    how many are dated too long after their order's earliest line (and how long); None without conflicts."""
    conflicts = rows[rows["reason"] == "order_conflict"]
    if conflicts.empty:
        return None
    detail = conflicts["detail"].astype(str)
    customers = int(detail.str.endswith(_OTHER_CUSTOMER).sum())
    hours = detail.str.extract(_HOURS_APART)[0].dropna().astype(float)
    parts = [f"{customers:,} name{'s' if customers == 1 else ''} another customer than the order's first line"
             ] if customers else []
    if len(hours):
        span = f"{hours.min():g}" if hours.min() == hours.max() else f"{hours.min():g} to {hours.max():g}"
        parts.append(f"{len(hours):,} {'is' if len(hours) == 1 else 'are'} dated {span} hours after the order's "
                     f"earliest line, more than cleaning.order_time_tolerance_hours ({tolerance_hours:g}) - raise it "
                     "if the shop writes an order's lines that far apart")
    n, orders = len(conflicts), conflicts["order_id"].nunique()
    return (f"{label}: {n:,} line{'' if n == 1 else 's'} of {orders:,} order{'' if orders == 1 else 's'} "
            f"{'is' if n == 1 else 'are'} quarantined as order_conflict: " + "; ".join(parts) + ".")


def _note_order_values(report: dict, clean: ir.Table, rows: pd.DataFrame, label: str, rules: CleaningConfig) -> None:
    """What the order rules could not place, said in the warnings (01's page and `retention validate`): statuses
    they do not know (also counted in the file's report as ``unknown_statuses``) and what conflicts disagree on."""
    unknown = unknown_statuses(clean, rules)
    if unknown:
        report["files"]["orders"]["unknown_statuses"] = unknown
    said = [status_warning(label, unknown), conflict_warning(label, rows, rules.order_time_tolerance_hours)]
    report["warnings"] += [w for w in said if w]


def _tag_file(con, tmp: Path, kind: str, read: FileHistory, outputs: dict, as_of: str | None, cfg: Config,
              preset: presets.Preset | None) -> ir.Table:
    """Each row of one raw file tagged with the first rule it breaks (:func:`cut_orders` and its siblings).

    The orders' :func:`order_firsts` are written to `tmp` (each reading of the tags joins them, none groups the
    lines again), and their tags keep ``_oid``. Customers named by an e-mail hash take the platform's id where the
    orders give one; campaign rows are checked against the customers kept so far.
    """
    fold, raw = cfg.cleaning.fold_id_case, read.raw
    if kind == "orders":
        return cut_orders(read.table, read.copies, as_of, cfg.cleaning,
                          keep=functools.partial(artifacts.parquet_table, con, tmp / "order_firsts.parquet"))
    if kind == "customers":
        table = _registered_ids(raw.table, outputs["_registered"]) if preset is not None else raw.table
        return tag_customers(table, as_of, fold)
    if kind == "marketing_spend":
        return tag_spend(raw.table, as_of)
    known = outputs["orders"].select("customer_id")
    if "customers" in outputs:
        known = known.union(outputs["customers"].select("customer_id"))
    return tag_campaigns(raw.table, as_of, known, fold)


def _kept_table(kind: str, tagged: ir.Table, raw: RawFile, as_of: str | None, cfg: Config, label: str,
                report: dict, history: ir.Table | None = None) -> ir.Table:
    """The kept rows of one file in their clean layout; order amounts in the shop's currency (`history`: see
    :func:`_in_shop_currency`)."""
    if kind == "orders":
        return _in_shop_currency(kept_orders(tagged, cfg.cleaning, raw.optional), cfg.shop, label, report, history)
    if kind == "customers":
        return kept_customers(tagged, as_of)
    if kind == "marketing_spend":
        return kept_spend(tagged)
    return kept_campaigns(tagged)


def _account_file(tagged: ir.Table, label: str, encoding: str, raw: RawFile,
                  kept_rows: ir.IntegerScalar | None = None) -> tuple[FileReport, pd.DataFrame]:
    """The file's row accounting (with example rows and details per quarantine reason) and its quarantined rows.
    `kept_rows`: see :func:`_account`."""
    fr = _account(tagged, label, encoding, raw, kept_rows)
    fr.parts = [list(p) for p in raw.files]
    rows = _quarantine_rows(tagged, label, raw)
    fr.examples = {r: (g["source_row"].head(5).tolist() if not raw.files else  # several files: name each
                       [f"{f} row {n}" for f, n in zip(g["file"].head(5), g["source_row"].head(5))])
                   for r, g in rows.groupby("reason", sort=False)}
    fr.details = {r: _details(g["detail"]) for r, g in rows.groupby("reason", sort=False)
                  if r in ("wrong_field_count", "unreadable_row", "spreadsheet_error")}
    return fr, rows


def _add_facts(month: _Month, cfg: Config, as_of: str | None) -> None:
    """The report's facts on the kept orders and customers, the warnings they call for, and the stop sentence."""
    report, outputs = month.report, month.outputs
    con = outputs["orders"].get_backend()
    # the orders end at as_of: every customer grouped once for the counts below (at 10M lines each grouped them)
    buyers = engine.cache(con, customer_facts.buyers_expr(outputs["orders"]))
    report["orders"] = _order_facts(outputs["orders"], cfg.shop.currency, as_of, buyers)
    report["warnings"] += _shape_warnings(report["orders"])
    report["warnings"] += _no_positive_purchase(report["orders"], outputs["orders"], as_of, cfg.clv.time_unit,
                                                buyers)
    if "customers" in outputs:
        report["customers"] = _customer_facts(outputs["customers"], outputs["orders"], buyers)
    engine.release(con, [buyers])
    unknown = report["files"].get("campaigns", {}).get("excluded", {}).get("unknown_customer")
    if unknown:
        report["warnings"].append(f"{unknown:,} campaign rows name customers found neither in the orders nor in "
                                  "customers.csv; they are left out.")
    report["stop"] = stop_reason(report)


def _write(con, processed_dir: str | Path, month: _Month) -> None:
    """The month's clean tables, quarantine.csv and data_quality.json."""
    for kind, expr in month.outputs.items():  # sorted so the same input gives byte-identical files
        if kind in month.written:  # its Parquet file is the artifact already
            artifacts.move_table(month.written[kind], processed_dir, CLEAN_ARTIFACTS[kind], expr.columns)
        else:
            artifacts.write_table(con, processed_dir, CLEAN_ARTIFACTS[kind], expr.order_by(SORT_KEYS[kind]))
    artifacts.write(processed_dir, "quarantine", pd.concat(month.quarantine, ignore_index=True))
    artifacts.write(processed_dir, "guest_revenue", month.guests if month.guests is not None
                    else artifacts.empty("guest_revenue"))
    artifacts.write(processed_dir, "data_quality", month.report)


def _result(con, processed_dir: str | Path, month: _Month, currency: str) -> CleanResult:
    """The result, with what the page shows computed from the orders_clean just written."""
    orders = artifacts.table(con, processed_dir, "orders_clean")
    fr = month.report["files"]["orders"]
    largest_purchase, median_purchase = purchase_line_range(orders)
    return CleanResult(
        report=month.report, currency=currency, quarantine=pd.concat(month.quarantine, ignore_index=True),
        monthly=monthly_lines(orders), largest=top_lines(orders, fr["file"], LARGEST_LINES, fr.get("parts")),
        largest_purchase=largest_purchase, median_purchase=median_purchase)


def _sources(raw_dir: Path, kind: str, required: bool, preset: presets.Preset | None) -> list[Path]:
    """The files that hold `kind`: the contract's one file, or a platform export's own (maybe several)."""
    if kind == "orders" and preset is not None:
        found = presets.order_files(raw_dir, preset)
        if not found:
            find_file(raw_dir, kind, False)  # a missing folder gets its own sentence
            raise ContractError(
                f"{raw_dir} holds no {preset.label}: put the export there as it was downloaded "
                f"({' or '.join(preset.files)}) or as orders.csv.")
        return found
    src = find_file(raw_dir, kind, required)
    return [src] if src is not None else []


def _read_all(con, sources: list[Path], kind: str, cfg: Config, tmp: Path, report: dict,
              preset: presets.Preset | None, identity: presets.Identity | None) -> tuple[RawFile, str]:
    """Read one file, or several parts of one export (each with its header) as one table numbered through."""
    raws, encodings = [], []
    for src in sources:
        path, encoding, reading = readable_source(src, kind, cfg, tmp, preset)
        if encoding not in {"utf-8", "parquet", "utf-16", "xlsx"}:  # UTF-16 has its byte-order mark: no guess
            report["warnings"].append(f"{src.name} is not UTF-8; it was read as {encoding}. Check accented names.")
        encodings.append(encoding)
        raws.append(read_raw(con, path, kind, getattr(cfg.columns, kind), src.name, preset, identity))
        raws[-1].reading = reading
    report["_encoding"] = next((e for e in encodings if e != "utf-8"), encodings[0])
    if len(raws) == 1:
        return raws[0], sources[0].name
    label = f"{sources[0].name} to {sources[-1].name} ({len(sources)} files)"
    first = raws[0]
    for src, raw in zip(sources[1:], raws[1:]):
        if raw.table.columns != first.table.columns:
            raise ContractError(f"{src.name} does not have the columns of {sources[0].name}; the parts of one "
                                "export must come from the same export - download them again together.")
    offset, tables, rejected, files = 0, [], [], []
    for src, raw in zip(sources, raws):
        tables.append(raw.table.mutate(source_row=raw.table.source_row + offset))
        if not raw.rejected.empty:
            rejected.append(raw.rejected.assign(source_row=raw.rejected["source_row"] + offset))
        files.append((src.name, offset, raw.rows))
        offset += raw.rows
    table = tables[0]
    for more in tables[1:]:
        table = table.union(more)
    ignored = list(dict.fromkeys(c for raw in raws for c in raw.ignored))
    rejected_rows = pd.concat(rejected, ignore_index=True) if rejected else first.rejected
    return RawFile(table, first.optional, ignored, rejected_rows, first.delimiter, offset, files,
                   first.export_columns, first.reading), label


def _currencies(t: ir.Table) -> list[str]:
    """The currencies `t`'s currency column names, upper case, sorted."""
    found = t.filter(t.currency.notnull()).currency.upper().name("c").as_table().distinct().to_pandas()
    return sorted(found["c"].tolist())


def _in_shop_currency(orders: ir.Table, shop, label: str, report: dict, history: ir.Table | None = None) -> ir.Table:
    """Amounts in shop.currency: orders in several currencies are converted with shop.exchange_rates (the
    currency column keeps each order's own); without a rate for one of them the run stops.

    `history`: the order history (:func:`tag_order_history`) `orders` are cut from. Its lines no rule tagged hold
    every kept line, so when they name no currency but the shop's, neither do the kept lines, which are then not
    read for it (an expression joining each line to its order's firsts).
    """
    if history is not None:
        if "currency" not in history.columns:  # nor in the kept lines
            return orders
        ok = history.filter(history.reason.isnull())
        if not [c for c in _currencies(ok.mutate(currency=text(ok.currency))) if c != shop.currency.upper()]:
            return orders
    found = _currencies(orders)
    others = [c for c in found if c != shop.currency.upper()]
    if not others:
        return orders
    if len(found) == 1:
        report["warnings"].append(f"{label}: every order is in {found[0]}, but shop.currency is {shop.currency}; the "
                                  f"reports say {shop.currency} - set shop.currency: {found[0]} if that is the shop's "
                                  "currency.")
        return orders
    missing = [c for c in others if c not in shop.exchange_rates]
    if missing:
        raise ContractError(
            f"{label} mixes currencies ({', '.join(found)}) and the config has no exchange rate for "
            f"{', '.join(missing)}; add shop.exchange_rates: {{{missing[0]}: <value of 1 {missing[0]} in "
            f"{shop.currency}>}} to the config, or put each currency's orders in a shop folder of its own.")
    rate = ibis.cases(*[(orders.currency.upper() == c, shop.exchange_rates[c]) for c in others], else_=1.0)
    report["warnings"].append(
        f"{label}: orders in {', '.join(others)} are converted to {shop.currency} with shop.exchange_rates ("
        + ", ".join(f"1 {c} = {shop.exchange_rates[c]} {shop.currency}" for c in others) + ").")
    return orders.mutate(amount=(orders.amount * rate).round(2), discount_amount=(orders.discount_amount * rate).round(2))


def _customers_from_orders(tagged: ir.Table) -> ir.Table:
    """A platform export's customers: e-mail, consent and region from each customer's latest kept line."""
    kept = tagged.filter(tagged.reason.isnull())
    ranked = kept.mutate(_n=ibis.row_number().over(group_by=kept.customer_key,
                                                   order_by=[ibis.desc(kept.order_ts), ibis.desc(kept.source_row)]))
    latest = ranked.filter(ranked._n == 0)
    return latest.select(
        customer_id=latest.customer_key,
        signup_date=ibis.null("timestamp"),
        email=text(latest.email),
        gender=ibis.null("string"),
        birth_year=ibis.null("int64"),
        region=text(latest._region),
        marketing_opt_in=latest._consent.cast("boolean").fill_null(False),
        source_row=latest.source_row.cast("int64"),
    )


def _registered_ids(customers: ir.Table, tagged_orders: ir.Table) -> ir.Table:
    """customers.csv rows named by an e-mail hash take the platform's id where the orders give one for that e-mail."""
    o = tagged_orders.filter(tagged_orders.email.notnull() & ~tagged_orders.customer_key.startswith("e:"))
    ids = o.group_by(_email=presets.Identity.normalise(o.email)).agg(_registered=o.customer_key.max())
    if "email" not in customers.columns:
        return customers
    c = customers.mutate(_email=presets.Identity.normalise(customers.email))
    j = c.left_join(ids, "_email")
    hashed = j.customer_id.startswith("e:").fill_null(False)
    out = j.mutate(customer_id=(hashed & j._registered.notnull()).ifelse(j._registered, j.customer_id))
    return out.select(*customers.columns)


def _shape_warnings(facts: dict) -> list[str]:
    """Shops the later notebooks can say little about: one customer, or nobody ordered twice."""
    if facts["customers"] == 1:
        return ["only one customer has a usable order: segments, models and cohorts need many; read them with care."]
    if facts["customers"] and facts["repeat_customers"] == 0:
        return ["no customer ordered twice: repeat rates are 0 and the purchase models have no repeat "
                "purchases to learn from."]
    return []


def _order_facts(orders: ir.Table, currency: str, as_of: str | None, buyers: ir.Table) -> dict:
    """The orders' facts of data_quality.json (`buyers`: `customer_facts.buyers_expr` of `orders`)."""
    month_start = pd.Timestamp(as_of).to_period("M").start_time.to_pydatetime() if as_of else None
    in_month = (orders.order_date >= month_start).sum() if month_start else orders.count()
    facts = orders.aggregate(
        lines=orders.count(),
        orders=orders.order_id.nunique(where=~orders.is_return),  # as in 02: a return alone is not an order
        revenue_net=orders.amount.sum(),
        return_lines=orders.is_return.sum(),
        first_date=orders.order_date.min(),
        last_date=orders.order_date.max(),
        lines_in_month=in_month,
    ).to_pandas().iloc[0]
    who = customer_facts.customer_counts(orders, buyers=buyers)  # customers, repeat customers: one definition, as in 02
    currencies = orders.filter(orders.currency.notnull()).currency.upper().name("c").as_table().distinct().to_pandas()
    return {
        "lines": int(facts["lines"]),
        "orders": int(facts["orders"]),
        "customers": who.customers,
        "repeat_customers": who.repeat_customers,
        "revenue_net": round(float(facts["revenue_net"] or 0.0), 2),
        "return_lines": int(facts["return_lines"] or 0),
        "first_date": None if pd.isna(facts["first_date"]) else str(pd.Timestamp(facts["first_date"]).date()),
        "last_date": None if pd.isna(facts["last_date"]) else str(pd.Timestamp(facts["last_date"]).date()),
        "lines_in_month": int(facts["lines_in_month"] or 0),
        "currencies": sorted(currencies["c"].tolist()),
        "currency": currency,
    }


def _no_positive_purchase(facts: dict, orders: ir.Table, as_of: str | None, time_unit: str,
                          buyers: ir.Table) -> list[str]:
    """Customers whose purchases net to zero or less (customer_facts.no_positive_purchase): counted in the
    report's facts by reason, with the day and purchase period counted at (04 and 05 read the count there), and
    one warning saying what 04 and 05 do with them when there are any."""
    if not facts["lines"]:
        return []
    cut = str(as_of or facts["last_date"])[:10]
    found = customer_facts.no_positive_counts(orders, cut, time_unit, buyers=buyers)
    # where and how it was counted, so that 04 and 05 need not count again (customer_facts.no_positive_counts)
    facts["no_positive_purchase"] = {"as_of": cut, "time_unit": time_unit, "customers": found}
    if not found:
        return []
    parts = [f"{found.get('zero_price', 0):,} bought only zero-price lines" if found.get("zero_price") else "",
             f"{found.get('returned', 0):,} had every purchase cancelled by returns or credit notes within the "
             f"{time_unit}" if found.get("returned") else ""]
    n = sum(found.values())
    return [f"{n:,} customer{'s' if n != 1 else ''} {'have' if n != 1 else 'has'} no purchase that nets to more "
            f"than zero ({'; '.join(p for p in parts if p)}): counted as customers, but 04 gives them no CLV and 05 "
            "no churn risk, and both pages say so."]


def _customer_facts(customers: ir.Table, orders: ir.Table, buyers: ir.Table) -> dict:
    """`buyers`: `customer_facts.buyers_expr` of `orders` (as in 02: a return alone buys nothing)."""
    listed = customers.select("customer_id")
    leads = customer_facts.leads_expr(listed, orders, buyers=buyers).count().to_pandas()
    unlisted = buyers.select("customer_id").anti_join(listed, "customer_id").count().to_pandas()
    agg = customers.aggregate(n=customers.count(), consent=customers.marketing_opt_in.sum()).to_pandas().iloc[0]
    n = int(agg["n"])
    return {
        "customers_listed": n,
        "leads_without_order": int(leads),
        "buyers_not_in_customer_file": int(unlisted),
        "marketing_opt_in_share": round(float(agg["consent"] or 0) / n, 4) if n else 0.0,
    }


# --------------------------------------------------------------------------- what notebook 01 shows

def monthly_lines(orders: ir.Table) -> pd.DataFrame:
    """Kept order lines per calendar month, from orders_clean.

    Columns: month ('YYYY-MM', oldest first), lines, orders (distinct order_id with a purchase line),
    customers (distinct customer_id with a purchase line), revenue_net (sum of amount, returns
    subtracted), return_lines. Orders and customers count as in notebook 02 (kpis): a return alone is
    not an order, so the two pages show the same numbers.
    """
    t = orders
    month = t.order_date.truncate("M").cast("date").name("month")
    buy = ~t.is_return
    g = t.group_by(month).agg(
        lines=t.count(), orders=t.order_id.nunique(where=buy), customers=t.customer_id.nunique(where=buy),
        revenue_net=t.amount.sum().round(2), return_lines=t.is_return.sum(),
    ).order_by("month")
    df = g.to_pandas()
    df["month"] = pd.to_datetime(df["month"]).dt.strftime("%Y-%m")
    return df


def top_lines(orders: ir.Table, file: str = "orders.csv", n: int = LARGEST_LINES,
              parts: list | None = None) -> pd.DataFrame:
    """The `n` kept order lines with the largest amounts, largest first, for a human to check.

    Columns: file (`file`, or with `parts`, an export in several files, the part holding the line), row
    (the line's row in that file), order_id, order_date, amount, then quantity and category (those
    orders_clean has). The order ids are raw: the page hashes them (reports carry no raw ids).
    """
    cols = set(orders.columns)
    top = orders.order_by([orders.amount.desc(), orders.source_row]).limit(n)
    extra = [c for c in ("quantity", "category") if c in cols]
    df = top.select("source_row", "order_id", "order_date", "amount", *extra).to_pandas()
    rows = df.pop("source_row").astype("int64").to_numpy()
    names, in_file = in_parts(rows, parts) if parts else ([file] * len(rows), rows)
    df.insert(0, "file", names)
    df.insert(1, "row", in_file)
    return df


def purchase_line_range(orders: ir.Table) -> tuple[float | None, float | None]:
    """The largest and the median purchase line's amount (a line with amount > 0); (None, None) without one."""
    buys = orders.filter(orders.amount > 0)
    agg = buys.aggregate(top=buys.amount.max(), median=buys.amount.median()).to_pandas().iloc[0]
    if pd.isna(agg["top"]):
        return None, None
    return float(agg["top"]), float(agg["median"])


def order_date_range(raw_dir: str | Path, cfg: Config) -> tuple[str, str]:
    """First and last readable order dates in the raw orders file ('YYYY-MM-DD'), used to pick months to run."""
    raw_dir = resolve(raw_dir)
    con = connect(cfg.engine)
    preset = presets.get(cfg.columns.preset)
    identity = presets.Identity("peek") if preset is not None else None  # ids are not looked at here
    sources = _sources(raw_dir, "orders", True, preset)
    with tempfile.TemporaryDirectory(prefix="retention-peek-") as tmp:
        raw, label = _read_all(con, sources, "orders", cfg, Path(tmp), {"warnings": []}, preset, identity)
        ts = parse_timestamp(raw.table.order_date, cfg.cleaning.date_format)
        span = raw.table.aggregate(first=ts.min(), last=ts.max()).to_pandas().iloc[0]
    if pd.isna(span["last"]):
        raise ContractError(f"{label}: no order_date could be read, so the month to run is unknown; pass --as-of.")
    return str(pd.Timestamp(span["first"]).date()), str(pd.Timestamp(span["last"]).date())


def latest_order_date(raw_dir: str | Path, cfg: Config) -> str:
    """The last readable order date in the raw orders file ('YYYY-MM-DD'), used to pick the month to run."""
    return order_date_range(raw_dir, cfg)[1]
