"""The page of notebook 01 (clean): is the data sound? It shows where every raw row went (kept, quarantined,
excluded by a named rule) with one sentence on whether the data can be trusted, how the files were read,
the warnings, the kept lines, orders and net revenue per month, the largest lines for a human to check and
the customer file's facts; and, for ``retention validate``, the same accounting with what to do about each
reason. Tables and sentences about the rows take the data-quality report (:class:`CleanResult` or its
``report``, which is what ``clean.validate`` returns); the rest take the :class:`CleanResult`.
"""
from __future__ import annotations

import hashlib

import pandas as pd

from helpers import plots
from helpers.clean import LARGEST_LINES, PRESET_READS, REASON_TEXT, CleanResult

# What a user can do about each reason (`retention validate` prints it).
REASON_FIX = {
    "wrong_field_count": "usually a value holding the delimiter without quotes (e.g. 1,200.00) or a line cut off; "
                         "export again with quoted fields",
    "unreadable_row": "a quote opened in this row is never closed; export again or fix the quote in the file",
    "spreadsheet_error": "a spreadsheet formula failed in this cell (#N/A: a lookup found nothing; #VALUE!, #REF!, "
                         "#DIV/0!: a wrong or missing input); fix the formula or type the value, then save the file "
                         "again",
    "missing_order_id": "export the order number on every line",
    "missing_customer_id": "export the customer id (or e-mail) on every line and map its column under columns.orders; "
                           "in a platform export, an order with neither (e.g. a point-of-sale sale without a "
                           "customer) cannot be tied to anyone and stays out",
    "bad_date": "export ISO dates (2025-01-31 or 2025-01-31 14:05:00) or set cleaning.date_format to the "
                "export's format (e.g. \"%d.%m.%Y\")",
    "non_finite_amount": "inf and NaN are not amounts; fix the export's formula for these lines",
    "bad_amount": "amounts must be numbers such as 12.50, 12,50 or 1.234,50 (a currency sign is allowed)",
    "bad_discount": "campaign discounts must be shares between 0 and 1 (0.10 = 10 % off)",
    "missing_channel": "name the channel the money was spent on in every row of marketing_spend.csv",
    "bad_spend": "spend must be an amount of at least 0 in the shop's currency, such as 1200 or 1.200,50",
    "order_conflict": "one order number is used for different customers, or for lines further apart in time than "
                      "cleaning.order_time_tolerance_hours; check the export's order ids, or raise the tolerance if "
                      "the shop writes an order's lines that far apart",
    "unknown_customer": "the campaign file names customers the shop does not know; check it belongs to this shop",
}


def _report(source: CleanResult | dict) -> dict:
    """The data-quality report of a :class:`CleanResult`, or the report itself (``clean.validate``'s)."""
    return source.report if isinstance(source, CleanResult) else source


# --------------------------------------------------------------------------- the rows and the files

def accounting_table(source: CleanResult | dict) -> pd.DataFrame:
    """Per file: kept, each quarantine reason, each exclusion rule and the raw total, with shares of raw."""
    rows = []
    for fr in _report(source)["files"].values():
        raw = fr["rows_raw"] or 1
        outcomes = [("kept", "", fr["rows_kept"])]
        outcomes += [("quarantined", r, n) for r, n in fr["quarantined"].items()]
        outcomes += [("excluded", r, n) for r, n in fr["excluded"].items()]
        outcomes += [("raw total", "", fr["rows_raw"])]
        for outcome, reason, n in outcomes:
            rows.append({"file": fr["file"], "outcome": outcome, "reason": reason, "rows": f"{n:,}",
                         "share of raw": f"{n / raw:.2%}", "meaning": REASON_TEXT.get(reason, "")})
    return pd.DataFrame(rows).set_index(["file", "outcome"])


# The page's words for each reason (quarantine.csv holds the reason ids; the glossary at the page's end names them).
REASON_WORDS = {
    "wrong_field_count": "more or fewer fields than the header", "unreadable_row": "a quote never closed",
    "spreadsheet_error": "a spreadsheet error value (#N/A, #VALUE!, ...)", "missing_order_id": "no order number",
    "missing_customer_id": "no customer id", "bad_date": "date cannot be read",
    "non_finite_amount": "amount infinite or not a number", "bad_amount": "amount is not a number",
    "bad_discount": "discount is not a share between 0 and 1",
    "missing_channel": "no channel", "bad_spend": "spend is not an amount of at least 0",
    "order_conflict": "one order number for two customers, or for far-apart dates", "test_order": "test order",
    "cancelled": "cancelled order", "unpaid": "never paid", "refunded_in_full": "refunded in full",
    "before_min_order_date": "before the first date analysed", "after_as_of": "after the cut-off",
    "above_max_line_amount": "above the largest believable line amount", "duplicate_line": "exact duplicate of a line",
    "duplicate_customer": "customer listed twice", "unknown_customer": "customer unknown to the shop",
}


def rows_table(source: CleanResult | dict) -> pd.DataFrame:
    """Where the rows went, in the reader's words: per file, kept, each quarantine reason and exclusion rule
    (as :data:`REASON_WORDS`), rows and share of raw. The reason ids and what to do: :func:`reasons_table`."""
    table = accounting_table(source)
    words = [REASON_WORDS.get(r, r) for r in table["reason"]]
    return table.assign(reason=words).drop(columns="meaning")


def reasons_table(source: CleanResult | dict) -> pd.DataFrame:
    """The page's glossary of the reasons found: the id quarantine.csv and data_quality.json use, its meaning,
    and what to do about it (for a quarantine reason)."""
    found = []
    for fr in _report(source)["files"].values():
        found += [r for r in [*fr["quarantined"], *fr["excluded"]] if r not in found]
    return pd.DataFrame([{"reason": r, "in words": REASON_WORDS.get(r, r), "meaning": REASON_TEXT.get(r, ""),
                          "what to do": REASON_FIX.get(r, "nothing: the rule keeps such rows out on purpose")}
                         for r in found], columns=["reason", "in words", "meaning", "what to do"]).set_index("reason")


def takeaway(source: CleanResult | dict) -> str:
    """One sentence on whether the data is sound, computed from the report."""
    report = _report(source)
    fr = report["files"]["orders"]
    raw = fr["rows_raw"] or 1
    q = sum(fr["quarantined"].values())
    x = sum(fr["excluded"].values())
    o = report["orders"]
    worst = max(fr["quarantined"].items(), key=lambda kv: kv[1], default=None)
    s = (f"{fr['rows_kept']:,} of {fr['rows_raw']:,} order lines ({fr['rows_kept'] / raw:.1%}) are usable, "
         f"covering {o['orders']:,} orders from {o['customers']:,} customers between {o['first_date']} and "
         f"{o['last_date']}; {q:,} {'line' if q == 1 else 'lines'} ({q / raw:.1%}) {'is' if q == 1 else 'are'} "
         "quarantined")
    s += f" (mostly: {REASON_WORDS.get(worst[0], worst[0])})" if worst else ""
    s += f" and {x:,} ({x / raw:.1%}) excluded by rule."
    if q / raw > 0.05:
        s += " More than 5% of lines are unusable: check the export settings before trusting the results."
    return s


def warnings_text(source: CleanResult | dict) -> str:
    """The report's warnings, one per line, or a sentence saying there are none."""
    return ("\n".join(f"warning: {w}" for w in _report(source)["warnings"])
            or "No warnings: every file is UTF-8 and in one currency.")


def file_lines(source: CleanResult | dict) -> list[str]:
    """How each file was read where that is worth a sentence: a workbook's sheet, UTF-16 text, lines ending
    partly in CRLF, and the header when it is not the first line (which line, and why)."""
    lines = []
    for fr in _report(source)["files"].values():
        name = fr["file"]
        if "sheet" in fr:
            which = ("named by cleaning.excel_sheet" if fr["sheet_from"] == "config" else
                     f"the first of {fr['sheets']}; cleaning.excel_sheet names another" if fr["sheets"] > 1 else
                     "its only sheet")
            lines.append(f"{name}: sheet '{fr['sheet']}' was read ({which}); cells shown as dates, and day numbers "
                         "in date columns, are read as dates.")
        if fr.get("encoding") == "utf-16":
            lines.append(f"{name} is UTF-16 text (Excel's \"Unicode Text\"), read as such.")
        if fr.get("line_ends") == "mixed":
            lines.append(f"{name}: its lines end partly in CRLF (Windows) and partly in LF; both are read as line ends.")
        if "header_line" in fr:
            lines.append(_header_sentence(fr))
    return lines


def _header_sentence(fr: dict) -> str:
    """'orders.csv: line 3 was taken as the header, the first line naming ...; the 2 lines above it ... were skipped.'"""
    unit = "row" if "sheet" in fr else "line"
    at, held, sep = fr["header_line"], fr.get("header_names", []), fr.get("sep_line")
    why = (f"the first {unit} naming columns the config reads ({', '.join(held[:4])}{', ...' if len(held) > 4 else ''})"
           if held else f"the first {unit} that is not blank")
    others = at - 1 - bool(sep)
    skipped = (f"the {others} {unit}s above it (a title, notes or blank {unit}s) were skipped" if others > 1 else
               f"the {unit} above it (a title, a note or a blank {unit}) was skipped")
    if sep:
        sep_line = f"Excel's delimiter line (sep={'<tab>' if sep == chr(9) else sep})"
        after = (f"the {others} lines after it (a title, notes or blank lines)" if others > 1 else
                 "the line after it (a title, a note or a blank line)")
        skipped = f"{sep_line} and {after} were skipped" if others else f"{sep_line} above it was skipped"
    return f"{fr['file']}: {unit} {at} was taken as the header, {why}; {skipped}."


def reading_lines(source: CleanResult | dict) -> list[str]:
    """How the raw files were read: the raw data contract, or a platform preset's files, the columns it used
    (and what each became), those it left, how refunds were netted and where the customers came from; then
    :func:`file_lines`."""
    report = _report(source)
    p = report.get("preset")
    orders = report["files"]["orders"]
    if not p:
        found = ", ".join(orders.get("optional_columns", [])) or "none"
        return [f"{orders['file']} follows the raw data contract (columns.preset: null); optional columns found: {found}.",
                *file_lines(report)]
    files = p.get("files", [])
    lines = [f"Read as a {p['label']} (columns.preset: {p['name']}): {len(files)} file{'s' if len(files) != 1 else ''} "
             f"({', '.join(files)}), read as one table."]
    reads = PRESET_READS[p["name"]]
    used = p.get("read", [])
    lines.append(f"Columns used ({len(used)}): " + "; ".join(f"{c} -> {reads[c]}" for c in used) + ".")
    not_read = p.get("not_read", [])
    if not_read:
        lines.append(f"Columns not used ({len(not_read)}): {', '.join(not_read)}.")
    lines.append(p["refund_note"])
    if "customers_from_orders" in p:
        listed = " (customers.csv's rows come first)" if "customers" in report["files"] else ""
        lines.append(f"Customers: {p['customers_from_orders']:,} with e-mail, consent and region from their latest "
                     f"kept order{listed}; a customer is the platform's customer id, else a keyed hash of the "
                     "e-mail, which stays in customers_clean; an order with neither is quarantined "
                     "(missing_customer_id).")
    if p.get("consent_note") and "customers" not in report["files"]:
        lines.append(p["consent_note"])
    return lines + file_lines(report)


def reading_text(source: CleanResult | dict) -> str:
    """:func:`reading_lines`, one per line."""
    return "\n".join(reading_lines(source))


def customers_table(source: CleanResult | dict) -> pd.DataFrame:
    """Customer-file facts (listed customers, leads, buyers missing from the file, consent share)."""
    report = _report(source)
    facts = report.get("customers")
    if not facts:
        return pd.DataFrame({"value": ["not provided"]}, index=pd.Index(["customers.csv"], name="fact"))
    labels = {"customers_listed": "customers listed", "leads_without_order": "leads (signed up, never ordered)",
              "buyers_not_in_customer_file": "buyers missing from customers.csv",
              "marketing_opt_in_share": "share with marketing consent"}
    if report.get("preset") and "customers" not in report["files"]:  # the customers came from the order export
        facts = {k: v for k, v in facts.items() if k in ("customers_listed", "marketing_opt_in_share")}
        labels["customers_listed"] = "customers (from the order export)"
    values = [f"{v:,}" if isinstance(v, int) else f"{v:.1%}" for v in facts.values()]
    return pd.DataFrame({"value": values}, index=pd.Index([labels.get(k, k) for k in facts], name="fact"))


def diagnosis(source: CleanResult | dict) -> list[str]:
    """What `retention validate` prints under the table: per file and reason, how many rows, example
    rows and what to do; then the warnings and the verdict. Plain sentences for the person who exports."""
    report = _report(source)
    lines = reading_lines(report)
    for fr in report["files"].values():
        q, x = sum(fr["quarantined"].values()), sum(fr["excluded"].values())
        lines.append(f"{fr['file']}: {fr['rows_raw']:,} rows - {fr['rows_kept']:,} kept, {q:,} quarantined, "
                     f"{x:,} excluded by rule.")
        for reason, n in fr["quarantined"].items():
            rows = fr.get("examples", {}).get(reason, [])
            label = "" if rows and isinstance(rows[0], str) else "rows "
            where = f" ({label}{', '.join(map(str, rows))}{', ...' if n > len(rows) else ''})" if rows else ""
            detail = fr.get("details", {}).get(reason) or REASON_TEXT[reason]
            fix = f" What to do: {REASON_FIX[reason]}." if reason in REASON_FIX else ""
            lines.append(f"  {n:,} quarantined{where}: {detail}.{fix}")
        for reason, n in fr["excluded"].items():
            lines.append(f"  {n:,} excluded: {REASON_TEXT[reason]}.")
    lines += [f"warning: {w}" for w in report["warnings"]]
    lines.append(f"STOP: {report['stop']}" if report.get("stop") else takeaway(report))
    return lines


# --------------------------------------------------------------------------- the kept lines

def monthly_table(res: CleanResult, months: int = 13) -> pd.DataFrame:
    """The last `months` rows of ``res.monthly`` (:func:`helpers.clean.monthly_lines`), indexed by month, as a
    reader reads them."""
    t = res.monthly.set_index("month").tail(months)
    return plots.table_for_readers(
        t, {"lines": "count", "orders": "count", "customers": "count", "revenue_net": "money",
            "return_lines": "count"}, res.currency,
        names={"lines": "order lines", "orders": "orders (with a purchase)",
               "customers": "customers (with a purchase)", "revenue_net": f"net revenue ({res.currency})",
               "return_lines": "return lines"})


def month_takeaway(res: CleanResult) -> str:
    """The as_of month's orders, customers and net revenue, counted as notebooks 02 and 07 count them."""
    m = res.monthly
    month = str(res.report.get("as_of") or "")[:7] or (m["month"].iloc[-1] if len(m) else "")
    row = m[m["month"] == month]
    if row.empty:
        return f"No kept order line in {month}."
    r = row.iloc[0]
    return (f"In {month}, {int(r['orders']):,} orders from {int(r['customers']):,} customers brought "
            f"{plots.money(r['revenue_net'], res.currency)} of net revenue (after {int(r['return_lines']):,} "
            "return lines); a return alone is not an order, so notebooks 02 and 07 show the same numbers.")


def plot_monthly(res: CleanResult, ax=None):
    """Net revenue per month (bars) and orders (line, right-hand axis); returns the axes."""
    return plots.plot_monthly_bars(res.monthly, "month", "revenue_net",
                                   title="Net revenue (bars) and orders (line) per month",
                                   ylabel=f"net revenue ({res.currency})", line="orders", line_label="orders", ax=ax)


def largest_lines(res: CleanResult) -> pd.DataFrame:
    """The largest kept order lines (``res.largest``), largest first: the row in the raw file (for an export in
    several files: the file and its row), the order (its id hashed: reports carry no raw ids), date, amount,
    quantity, category. No customer column."""
    df = res.largest
    fr = res.report["files"]["orders"]
    where = {"file": df["file"], "row": df["row"]} if fr.get("parts") else {f"row in {fr['file']}": df["row"]}
    out = pd.DataFrame({
        **where,
        "order (hashed)": [hashlib.sha256(str(v).encode("utf-8")).hexdigest()[:10] for v in df["order_id"]],
        "date": pd.to_datetime(df["order_date"]).dt.strftime("%Y-%m-%d"),
        f"amount ({res.currency})": df["amount"].map(lambda v: f"{v:,.2f}"),
    })
    for c in ("quantity", "category"):
        if c in df and df[c].notna().any():  # optional columns the export did not have are all empty
            out[c] = df[c].map(lambda v: f"{v:g}" if isinstance(v, float) else v)
    out.index = pd.RangeIndex(1, len(out) + 1, name="rank")
    return out


def largest_lines_takeaway(res: CleanResult) -> str:
    """One sentence: how far the largest line stands above a typical purchase line."""
    top, median = res.largest_purchase, res.median_purchase
    if top is None:
        return "There is no purchase line to check."
    ratio = top / median if median else float("nan")
    file = res.report["files"]["orders"]["file"]
    return (f"The largest line is {top:,.2f} {res.currency}, {ratio:,.0f} times the median purchase line "
            f"({median:,.2f} {res.currency}). Check the {LARGEST_LINES} lines above in {file}; if one is a typo or "
            f"a test, set the largest believable line amount in the config (glossary) to exclude such lines.")
