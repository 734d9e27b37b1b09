"""Clean and validate a shop's raw exports (stage 01).

Every rule is an Ibis expression that tags each unusable row with a reason, so the same rules run
on DuckDB or Spark over tens of millions of order lines. Nothing is dropped silently: each row ends
up kept, quarantined (unusable, written to quarantine.csv with its reason) or excluded by a named
rule, and ``raw = kept + quarantined + excluded`` is checked before anything is written.

Order of the rules (the first that matches names the row):

=====================  ===========  ==============================================================
reason                 outcome      rule
=====================  ===========  ==============================================================
missing_order_id       quarantine   order_id empty
missing_customer_id    quarantine   customer_id empty
bad_date               quarantine   order_date not a date (ISO, or ``cleaning.date_format``)
bad_amount             quarantine   amount not a number after removing currency signs/separators
test_order             excluded     status in ``test_statuses`` or customer id starts with a test prefix
cancelled              excluded     status in ``cancelled_statuses``
after_as_of            excluded     ordered after the ``as_of`` day
duplicate_line         excluded     exact copy of an earlier line (every raw column equal)
=====================  ===========  ==============================================================

Returns stay in: a line with status in ``returned_statuses`` or a negative amount is a return,
its amount is made negative, and revenue is netted against it.
"""
from __future__ import annotations

import re
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pandas as pd

from helpers import artifacts, plots
from helpers.config import CleaningConfig, Config
from helpers.contract import CONTRACT, ContractError, check_columns, find_file
from helpers.engine import connect, cutoff_end
from helpers.paths import resolve

QUARANTINE_REASONS = ("missing_order_id", "missing_customer_id", "bad_date", "bad_amount", "bad_discount")
EXCLUSION_RULES = ("test_order", "cancelled", "after_as_of", "duplicate_line", "duplicate_customer")
CLEAN_ARTIFACTS = {"orders": "orders_clean", "customers": "customers_clean", "campaigns": "campaigns_clean"}
SORT_KEYS = {"orders": ["order_date", "order_id", "source_row"], "customers": ["customer_id"],
             "campaigns": ["campaign_id", "customer_id", "source_row"]}
REASON_TEXT = {
    "missing_order_id": "order_id is empty",
    "missing_customer_id": "customer_id is empty",
    "bad_date": "the date cannot be read",
    "bad_amount": "the amount is not a number",
    "bad_discount": "discount is not a share between 0 and 1",
    "test_order": "test order or test account",
    "cancelled": "cancelled order",
    "after_as_of": "dated after the analysis cut-off (as_of)",
    "duplicate_line": "exact duplicate of an earlier line",
    "duplicate_customer": "customer_id listed again (first row kept)",
}


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


def read_raw(con, path: Path, kind: str, column_map: dict[str, str]) -> tuple[ir.Table, list[str]]:
    """The raw file as an all-string table with contract column names and a 1-based `source_row`."""
    try:
        t = artifacts.raw_table(con, path)
        columns = list(t.columns)
    except Exception as exc:  # reader errors differ per backend; the user needs one sentence
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise ContractError(f"{path.name} cannot be read as {path.suffix.lstrip('.').upper()} ({first}).") from None
    clean_names = {c: c.strip().lstrip("\ufeff") for c in columns}
    renames = {new: old for old, new in clean_names.items() if old != new}
    if renames:
        t = t.rename(renames)
    mapping = {src: dst for src, dst in column_map.items() if src in t.columns and src != dst}
    if mapping:
        t = t.rename({dst: src for src, dst in mapping.items()})
    present = check_columns(path.name, kind, list(t.columns), column_map)
    required, _ = CONTRACT[kind]
    keep = [*required, *present]
    # Row numbers follow the file's order (DuckDB keeps insertion order for a single file).
    t = t.select(*keep).mutate(source_row=ibis.row_number() + 1)
    return t, present


# --------------------------------------------------------------------------- value parsers

def text(s: ir.StringValue) -> ir.StringValue:
    """Trimmed text, empty -> NULL."""
    return s.strip().nullif("")


def parse_amount(s: ir.StringValue, decimal_separator: str = "auto") -> ir.FloatingValue:
    """Money written as shops export it: '12.50', '12,50', '1.234,50', '1,234.50', '€ 12.50', '12.50 EUR'.

    With ``auto``, a comma followed by one or two final digits is the decimal mark ("12,50"); any
    other comma separates thousands ("1,234"). Unreadable values become NULL (a tagged row).
    """
    c = s.strip().re_replace(r"[^0-9,.\-]", "")
    comma_decimal = c.re_search(r",[0-9]{1,2}$")
    as_comma = c.replace(".", "").replace(",", ".")
    as_dot = c.replace(",", "")
    if decimal_separator == ",":
        number = as_comma
    elif decimal_separator == ".":
        number = as_dot
    else:
        number = comma_decimal.ifelse(as_comma, as_dot)
    return number.nullif("").try_cast("float64")


_FORMAT_PARTS = {"%Y": ("year", r"([0-9]{4})"), "%y": ("year2", r"([0-9]{2})"), "%m": ("month", r"([0-9]{1,2})"),
                 "%d": ("day", r"([0-9]{1,2})"), "%H": ("hour", r"([0-9]{1,2})"), "%M": ("minute", r"([0-9]{1,2})"),
                 "%S": ("second", r"([0-9]{1,2})")}


def parse_timestamp(s: ir.StringValue, date_format: str | None = None) -> ir.TimestampValue:
    """ISO dates and datetimes ('2025-01-31', '2025-01-31 14:05:00'); NULL when unreadable.

    With a strptime-style `date_format` (only %Y %y %m %d %H %M %S), values are rearranged to ISO
    with regular expressions and then cast, so an impossible date ('45.13.2025') is NULL on every
    backend instead of an error.
    """
    t = s.strip()
    if not date_format:
        return t.try_cast("timestamp")
    pattern, names, pos = "^", [], 0
    for m in re.finditer(r"%[YymdHMS]", date_format):
        pattern += re.escape(date_format[pos:m.start()]) + _FORMAT_PARTS[m.group()][1]
        names.append(_FORMAT_PARTS[m.group()][0])
        pos = m.end()
    pattern += re.escape(date_format[pos:]) + "$"
    part = {name: t.re_extract(pattern, i + 1) for i, name in enumerate(names)}
    year = part.get("year", ("20" + part["year2"]) if "year2" in part else None)
    if year is None or "month" not in part or "day" not in part:
        raise ValueError(f"cleaning.date_format {date_format!r} needs a year, month and day (%Y or %y, %m, %d).")

    def two(v):
        return v.lpad(2, "0") if v is not None else ibis.literal("00")

    iso = year + "-" + two(part["month"]) + "-" + two(part["day"]) + " " + two(part.get("hour")) + ":" + two(
        part.get("minute")) + ":" + two(part.get("second"))
    return t.re_search(pattern).ifelse(iso, ibis.null("string")).try_cast("timestamp")


def _in(s: ir.StringValue, values: list[str]) -> ir.BooleanValue:
    return s.lower().isin([v.lower() for v in values]) if values else ibis.literal(False)


# --------------------------------------------------------------------------- rules

def tag_orders(raw: ir.Table, as_of: str | None, rules: CleaningConfig) -> ir.Table:
    """Parse every order line and tag it with the first rule it breaks (``reason``; NULL = kept).

    Input: all-string columns with contract names plus ``source_row``. Output adds typed
    ``order_ts``, ``amount_value``, ``status_norm`` and ``reason``.
    """
    cols = set(raw.columns)
    raw_cols = [c for c in raw.columns if c != "source_row"]
    order_id, customer_id = text(raw.order_id), text(raw.customer_id)
    status = text(raw.status).lower() if "status" in cols else ibis.null("string")
    status = status.fill_null(rules.completed_status_if_missing.lower())
    order_ts = parse_timestamp(raw.order_date, rules.date_format)
    amount_value = parse_amount(raw.amount, rules.decimal_separator)
    is_test = _in(status, rules.test_statuses)
    for prefix in rules.test_customer_prefixes:
        is_test = is_test | customer_id.upper().startswith(prefix.upper()).fill_null(False)
    copy_no = ibis.row_number().over(group_by=[raw[c] for c in raw_cols], order_by=raw.source_row)
    after = (order_ts >= ibis.literal(cutoff_end(as_of))) if as_of else ibis.literal(False)
    reason = ibis.cases(
        (order_id.isnull(), "missing_order_id"),
        (customer_id.isnull(), "missing_customer_id"),
        (order_ts.isnull(), "bad_date"),
        (amount_value.isnull(), "bad_amount"),
        (is_test, "test_order"),
        (_in(status, rules.cancelled_statuses), "cancelled"),
        (after, "after_as_of"),
        (copy_no > 0, "duplicate_line"),
        else_=ibis.null("string"),
    )
    return raw.mutate(order_ts=order_ts, amount_value=amount_value, status_norm=status, reason=reason)


def kept_orders(tagged: ir.Table, rules: CleaningConfig, optional_present: list[str]) -> ir.Table:
    """The kept lines in the clean layout (orders_clean.parquet), returns as negative amounts."""
    kept = tagged.filter(tagged.reason.isnull())
    cols = set(kept.columns)

    def opt_text(name):
        return text(kept[name]) if name in cols else ibis.null("string")

    def opt_number(name):
        return parse_amount(kept[name], rules.decimal_separator) if name in cols else ibis.null("float64")

    is_return = (kept.amount_value < 0) | _in(kept.status_norm, rules.returned_statuses)
    amount = is_return.ifelse(-kept.amount_value.abs(), kept.amount_value)
    discount = opt_number("discount_amount").abs()
    return kept.select(
        order_id=text(kept.order_id),
        customer_id=text(kept.customer_id),
        order_date=kept.order_ts.cast("timestamp"),
        amount=amount.round(2),
        quantity=opt_number("quantity"),
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


def tag_customers(raw: ir.Table, as_of: str | None) -> ir.Table:
    """Customers: missing id -> quarantine, repeated id -> excluded (first row kept), signup after as_of -> excluded."""
    cols = set(raw.columns)
    customer_id = text(raw.customer_id)
    signup = parse_timestamp(raw.signup_date) if "signup_date" in cols else ibis.null("timestamp")
    copy_no = ibis.row_number().over(group_by=customer_id, order_by=raw.source_row)
    after = (signup >= ibis.literal(cutoff_end(as_of))).fill_null(False) if as_of else ibis.literal(False)
    reason = ibis.cases(
        (customer_id.isnull(), "missing_customer_id"),
        (copy_no > 0, "duplicate_customer"),
        (after, "after_as_of"),
        else_=ibis.null("string"),
    )
    return raw.mutate(signup_ts=signup, reason=reason)


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
        customer_id=text(kept.customer_id),
        signup_date=kept.signup_ts.cast("timestamp"),
        email=opt_text("email"),
        gender=opt_text("gender").upper(),
        birth_year=birth,
        region=opt_text("region"),
        marketing_opt_in=consent.fill_null(False),
        source_row=kept.source_row.cast("int64"),
    )


def tag_campaigns(raw: ir.Table, as_of: str | None) -> ir.Table:
    customer_id = text(raw.customer_id)
    sent = parse_timestamp(raw.sent_date)
    discount = parse_amount(raw.discount, ".")
    after = (sent >= ibis.literal(cutoff_end(as_of))) if as_of else ibis.literal(False)
    reason = ibis.cases(
        (customer_id.isnull(), "missing_customer_id"),
        (sent.isnull(), "bad_date"),
        (discount.isnull() | (discount < 0) | (discount > 1), "bad_discount"),
        (after, "after_as_of"),
        else_=ibis.null("string"),
    )
    return raw.mutate(sent_ts=sent, discount_value=discount, reason=reason)


def kept_campaigns(tagged: ir.Table) -> ir.Table:
    kept = tagged.filter(tagged.reason.isnull())
    return kept.select(
        campaign_id=text(kept.campaign_id),
        customer_id=text(kept.customer_id),
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

    def check(self) -> None:
        total = self.rows_kept + sum(self.quarantined.values()) + sum(self.excluded.values())
        if total != self.rows_raw:  # a bug, never a data problem: refuse to write anything
            raise AssertionError(f"{self.file}: {self.rows_raw} raw rows but {total} accounted for")


def _account(tagged: ir.Table, file: str, encoding: str, optional: list[str]) -> FileReport:
    counts = tagged.group_by("reason").agg(n=tagged.count()).to_pandas()
    by_reason = {(r if isinstance(r, str) else None): int(n) for r, n in zip(counts["reason"], counts["n"])}
    kept = by_reason.pop(None, 0)
    report = FileReport(
        file=file, encoding=encoding, rows_raw=int(kept + sum(by_reason.values())), rows_kept=kept,
        quarantined={r: by_reason[r] for r in QUARANTINE_REASONS if r in by_reason},
        excluded={r: by_reason[r] for r in EXCLUSION_RULES if r in by_reason},
        optional_columns=optional,
    )
    report.check()
    return report


def _quarantine_rows(tagged: ir.Table, file: str, raw_cols: list[str]) -> pd.DataFrame:
    bad = tagged.filter(tagged.reason.isin(list(QUARANTINE_REASONS)))
    df = bad.select("source_row", "reason", *raw_cols).order_by("source_row").to_pandas()
    df.insert(0, "file", file)
    return df


def run(raw_dir: str | Path, as_of: str | None, cfg: Config, processed_dir: str | Path | None = None,
        con=None, log=None) -> CleanRun:
    """Clean a shop's raw exports; write the artifacts to `processed_dir` unless it is None.

    The one stage that reads raw files (so it takes `raw_dir` first). Returns a :class:`CleanRun`
    whose ``report`` is the data-quality report (the content of data_quality.json). Raises
    ContractError with one sentence when a file or a required column is missing or a file cannot be
    read.
    """
    raw_dir = resolve(raw_dir)
    con = con or connect(cfg.engine)
    report: dict = {"as_of": as_of, "shop": raw_dir.name, "files": {}, "warnings": []}
    quarantine = []
    outputs = {}
    with tempfile.TemporaryDirectory(prefix="retention-clean-") as tmp:
        for kind, required in (("orders", True), ("customers", False), ("campaigns", False)):
            src = find_file(raw_dir, kind, required)
            if src is None:
                continue
            path, encoding = ensure_utf8(src, cfg.cleaning.encoding_fallbacks, Path(tmp))
            if encoding not in {"utf-8", "parquet"}:
                report["warnings"].append(f"{src.name} is not UTF-8; it was read as {encoding}. Check accented names.")
            raw, optional = read_raw(con, path, kind, getattr(cfg.columns, kind))
            raw_cols = [c for c in raw.columns if c != "source_row"]
            tagged = {"orders": lambda: tag_orders(raw, as_of, cfg.cleaning),
                      "customers": lambda: tag_customers(raw, as_of),
                      "campaigns": lambda: tag_campaigns(raw, as_of)}[kind]()
            # materialise once: the tags feed the accounting, the quarantine and the clean table
            if _can_cache(con):
                tagged = con.create_table(f"tagged_{kind}", tagged, temp=True, overwrite=True)
            clean = {"orders": lambda: kept_orders(tagged, cfg.cleaning, optional),
                     "customers": lambda: kept_customers(tagged, as_of),
                     "campaigns": lambda: kept_campaigns(tagged)}[kind]()
            if _can_cache(con):
                clean = con.create_table(f"clean_{kind}", clean, temp=True, overwrite=True)
            fr = _account(tagged, src.name, encoding, optional)
            report["files"][kind] = fr.__dict__
            quarantine.append(_quarantine_rows(tagged, src.name, raw_cols))
            outputs[kind] = clean
            if log:
                log(f"{src.name}: {fr.rows_raw:,} rows, {fr.rows_kept:,} kept, "
                    f"{sum(fr.quarantined.values()):,} quarantined, {sum(fr.excluded.values()):,} excluded")
        report["orders"] = _order_facts(outputs["orders"], cfg.shop.currency)
        if report["orders"]["currencies"] and len(report["orders"]["currencies"]) > 1:
            report["warnings"].append(
                f"orders are in several currencies ({', '.join(report['orders']['currencies'])}); "
                f"amounts are summed as if all were {cfg.shop.currency}."
            )
        if "customers" in outputs:
            report["customers"] = _customer_facts(outputs["customers"], outputs["orders"])
        if processed_dir is not None:
            for kind, expr in outputs.items():  # sorted so the same input gives byte-identical files
                artifacts.write_table(con, processed_dir, CLEAN_ARTIFACTS[kind], expr.order_by(SORT_KEYS[kind]))
            artifacts.write(processed_dir, "quarantine", pd.concat(quarantine, ignore_index=True))
            artifacts.write(processed_dir, "data_quality", report)
    return CleanRun(report, cfg.shop.currency, processed_dir, con)


def _can_cache(con) -> bool:
    return getattr(con, "name", "") == "duckdb"


def _order_facts(orders: ir.Table, currency: str) -> dict:
    facts = orders.aggregate(
        lines=orders.count(),
        orders=orders.order_id.nunique(),
        customers=orders.customer_id.nunique(),
        revenue_net=orders.amount.sum(),
        return_lines=orders.is_return.sum(),
        first_date=orders.order_date.min(),
        last_date=orders.order_date.max(),
    ).to_pandas().iloc[0]
    currencies = orders.filter(orders.currency.notnull()).currency.upper().name("c").as_table().distinct().to_pandas()
    return {
        "lines": int(facts["lines"]),
        "orders": int(facts["orders"]),
        "customers": int(facts["customers"]),
        "revenue_net": round(float(facts["revenue_net"] or 0.0), 2),
        "return_lines": int(facts["return_lines"] or 0),
        "first_date": None if pd.isna(facts["first_date"]) else str(pd.Timestamp(facts["first_date"]).date()),
        "last_date": None if pd.isna(facts["last_date"]) else str(pd.Timestamp(facts["last_date"]).date()),
        "currencies": sorted(currencies["c"].tolist()),
        "currency": currency,
    }


def _customer_facts(customers: ir.Table, orders: ir.Table) -> dict:
    buyers = orders.select("customer_id").distinct()
    listed = customers.select("customer_id")
    leads = listed.anti_join(buyers, "customer_id").count().to_pandas()
    unlisted = buyers.anti_join(listed, "customer_id").count().to_pandas()
    agg = customers.aggregate(n=customers.count(), consent=customers.marketing_opt_in.sum()).to_pandas().iloc[0]
    n = int(agg["n"])
    return {
        "customers_listed": n,
        "leads_without_order": int(leads),
        "buyers_not_in_customer_file": int(unlisted),
        "marketing_opt_in_share": round(float(agg["consent"] or 0) / n, 4) if n else 0.0,
    }


# --------------------------------------------------------------------------- presentation

def accounting_table(report: dict) -> pd.DataFrame:
    """Per file: kept, each quarantine reason, each exclusion rule and the raw total, with shares of raw."""
    rows = []
    for fr in report["files"].values():
        raw = fr["rows_raw"] or 1
        outcomes = [("kept", "", fr["rows_kept"])]
        outcomes += [("quarantined", r, n) for r, n in fr["quarantined"].items()]
        outcomes += [("excluded", r, n) for r, n in fr["excluded"].items()]
        outcomes += [("raw total", "", fr["rows_raw"])]
        for outcome, reason, n in outcomes:
            rows.append({"file": fr["file"], "outcome": outcome, "reason": reason, "rows": n,
                         "share of raw": f"{n / raw:.2%}", "meaning": REASON_TEXT.get(reason, "")})
    return pd.DataFrame(rows).set_index(["file", "outcome"])


def warnings_text(report: dict) -> str:
    """The report's warnings, one per line, or a sentence saying there are none."""
    return "\n".join(f"warning: {w}" for w in report["warnings"]) or "No warnings: every file is UTF-8 and in one currency."


def customers_table(report: dict) -> pd.DataFrame:
    """Customer-file facts (listed customers, leads, buyers missing from the file, consent share)."""
    facts = report.get("customers")
    if not facts:
        return pd.DataFrame({"value": ["not provided"]}, index=pd.Index(["customers.csv"], name="fact"))
    labels = {"customers_listed": "customers listed", "leads_without_order": "leads (signed up, never ordered)",
              "buyers_not_in_customer_file": "buyers missing from customers.csv",
              "marketing_opt_in_share": "share with marketing consent"}
    values = [f"{v:,}" if isinstance(v, int) else f"{v:.1%}" for v in facts.values()]
    return pd.DataFrame({"value": values}, index=pd.Index([labels.get(k, k) for k in facts], name="fact"))


def takeaway(report: dict) -> str:
    """One sentence on whether the data is sound, computed from the report."""
    fr = report["files"]["orders"]
    raw = fr["rows_raw"] or 1
    q = sum(fr["quarantined"].values())
    x = sum(fr["excluded"].values())
    o = report["orders"]
    worst = max(fr["quarantined"].items(), key=lambda kv: kv[1], default=None)
    s = (f"{fr['rows_kept']:,} of {fr['rows_raw']:,} order lines ({fr['rows_kept'] / raw:.1%}) are usable, "
         f"covering {o['orders']:,} orders from {o['customers']:,} customers between {o['first_date']} and "
         f"{o['last_date']}; {q:,} lines ({q / raw:.1%}) are quarantined")
    s += f" (mostly {REASON_TEXT[worst[0]]})" if worst else ""
    s += f" and {x:,} ({x / raw:.1%}) excluded by rule."
    if q / raw > 0.05:
        s += " More than 5% of lines are unusable: check the export settings before trusting the results."
    return s


def monthly_lines(orders: ir.Table) -> pd.DataFrame:
    """Kept order lines per calendar month, from orders_clean.

    Columns: month ('YYYY-MM', oldest first), lines, orders (distinct order_id), customers
    (distinct customer_id), revenue_net (sum of amount, returns subtracted), return_lines.
    """
    t = orders
    month = t.order_date.truncate("M").cast("date").name("month")
    g = t.group_by(month).agg(
        lines=t.count(), orders=t.order_id.nunique(), customers=t.customer_id.nunique(),
        revenue_net=t.amount.sum().round(2), return_lines=t.is_return.sum(),
    ).order_by("month")
    df = g.to_pandas()
    df["month"] = pd.to_datetime(df["month"]).dt.strftime("%Y-%m")
    return df


def plot_monthly_lines(monthly: pd.DataFrame, currency: str = "EUR", ax=None):
    """Net revenue per month (bars) and orders (line, right-hand axis), from `monthly_lines`."""
    return plots.plot_monthly_bars(monthly, "month", "revenue_net", title="Net revenue (bars) and orders (line) per month",
                                   ylabel=f"net revenue ({currency})", line="orders", line_label="orders", ax=ax)


@dataclass
class CleanRun:
    """What notebook 01 works with: the data-quality report and, when written, the clean artifacts.

    ``report`` is the content of data_quality.json; every table and sentence of the notebook is a
    method, so the notebook needs no config value.
    """

    report: dict
    currency: str
    processed_dir: str | Path | None
    con: object = field(repr=False, default=None)
    _monthly: pd.DataFrame | None = field(default=None, init=False, repr=False)

    def accounting_table(self) -> pd.DataFrame:
        return accounting_table(self.report)

    def takeaway(self) -> str:
        return takeaway(self.report)

    def warnings_text(self) -> str:
        return warnings_text(self.report)

    def customers_table(self) -> pd.DataFrame:
        return customers_table(self.report)

    def monthly_lines(self) -> pd.DataFrame:
        """`monthly_lines` of the orders_clean just written (computed once)."""
        if self._monthly is None:
            if self.processed_dir is None:
                raise ValueError("nothing was written (processed_dir=None), so there is no orders_clean to read.")
            self._monthly = monthly_lines(artifacts.table(self.con, self.processed_dir, "orders_clean"))
        return self._monthly

    def monthly_table(self, months: int = 13) -> pd.DataFrame:
        """The last `months` rows of `monthly_lines`, indexed by month."""
        return self.monthly_lines().set_index("month").tail(months)

    def plot_monthly(self, ax=None):
        return plot_monthly_lines(self.monthly_lines(), self.currency, ax)


def validate(raw_dir: str | Path, cfg: Config, as_of: str | None = None) -> dict:
    """Run every cleaning check and return the report without writing anything."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run(raw_dir, as_of, cfg, processed_dir=None).report


def order_date_range(raw_dir: str | Path, cfg: Config) -> tuple[str, str]:
    """First and last readable order dates in the raw orders file ('YYYY-MM-DD'), used to pick months to run."""
    raw_dir = resolve(raw_dir)
    con = connect(cfg.engine)
    src = find_file(raw_dir, "orders", required=True)
    with tempfile.TemporaryDirectory(prefix="retention-peek-") as tmp:
        path, _ = ensure_utf8(src, cfg.cleaning.encoding_fallbacks, Path(tmp))
        raw, _ = read_raw(con, path, "orders", cfg.columns.orders)
        ts = parse_timestamp(raw.order_date, cfg.cleaning.date_format)
        span = raw.aggregate(first=ts.min(), last=ts.max()).to_pandas().iloc[0]
    if pd.isna(span["last"]):
        raise ContractError(f"{src.name}: no order_date could be read, so the month to run is unknown; pass --as-of.")
    return str(pd.Timestamp(span["first"]).date()), str(pd.Timestamp(span["last"]).date())


def latest_order_date(raw_dir: str | Path, cfg: Config) -> str:
    """The last readable order date in the raw orders file ('YYYY-MM-DD'), used to pick the month to run."""
    return order_date_range(raw_dir, cfg)[1]
