"""Robustness (issue 15): hostile exports and unusual values, each with the behaviour a user sees.

Sections: "files" (how a raw file is read), "values" (what the cleaning rules do with odd values),
"properties" (hypothesis: parsers never raise, rows always add up), "validate" (`retention validate`
on each bad file). Every bad file is built in tmp_path by the test itself. The row counts asserted
here are the ones the issue's closing table quotes (raw / kept / quarantined / excluded).
"""
from __future__ import annotations

import io
import os
import re
from datetime import datetime
from pathlib import Path

import ibis
import openpyxl
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from helpers import artifacts, churn, clv, customer_facts, kpis, segments
from helpers import clean as _clean
from helpers.cli import main
from helpers.config import ConfigError, config_from_dict, load_config
from helpers.contract import ContractError
from helpers.engine import connect
from helpers.pages import churn as churn_page
from helpers.pages import clean as page
from helpers.pages import clv as clv_page

# --- the closing table: case -> message -> quarantine or exclusion reasons -> row counts -------------------
# Every clean.run of a test below goes through this recorder (the first call per test case); at the end of
# the module the rows are written as a Markdown table to $ROBUSTNESS_TABLE, by default
# robustness_table.md in pytest's base temp folder (its path is printed with -s).

TABLE: dict[str, tuple[str, str, str]] = {}


def _case() -> str:
    return os.environ.get("PYTEST_CURRENT_TEST", "?").split("::")[-1].split(" ")[0].removeprefix("test_")


class _RecordingClean:
    """helpers.clean with `run` recorded for the table; everything else is the module itself."""

    def __getattr__(self, name):
        return getattr(_clean, name)

    @staticmethod
    def run(*args, **kwargs):
        case = _case()
        try:
            res = _clean.run(*args, **kwargs)
        except Exception as exc:
            TABLE.setdefault(case, (f"stop: {exc}", "", ""))
            raise
        f = res.report["files"]["orders"]
        reasons = {**f["quarantined"], **{f"{k} (excluded)": v for k, v in f["excluded"].items()}}
        q, x = sum(f["quarantined"].values()), sum(f["excluded"].values())
        said = "; ".join(res.report["warnings"]) or "read"
        TABLE.setdefault(case, (said, ", ".join(f"{k}: {v}" for k, v in reasons.items()),
                                f"{f['rows_raw']} / {f['rows_kept']} / {q} / {x}"))
        return res


clean = _RecordingClean()


@pytest.fixture(scope="module", autouse=True)
def closing_table(tmp_path_factory):
    yield TABLE
    target = Path(os.environ.get("ROBUSTNESS_TABLE", tmp_path_factory.getbasetemp() / "robustness_table.md"))
    lines = ["| case | message / behaviour | quarantine or exclusion reasons | raw / kept / quarantined / excluded |",
             "|---|---|---|---|"]
    lines += [f"| {case.replace('_', ' ')} | {' '.join(m.split())[:240]} | {r} | {n} |".replace("\n", " ")
              for case, (m, r, n) in TABLE.items()]
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"\nrobustness table: {target}")


HEADER = "order_id,customer_id,order_date,amount\n"
AS_OF = "2025-01-31"


@pytest.fixture(scope="module")
def cfg():
    return load_config("config/default.yml")


def make_shop(tmp_path, name: str = "shop", **files) -> Path:
    """A raw folder holding `files` (file name with dots as `orders_csv=`, `orders_xlsx=`; text is written UTF-8,
    bytes as is)."""
    raw = tmp_path / "raw" / name
    raw.mkdir(parents=True)
    for fname, content in files.items():
        target = raw / re.sub(r"_(csv|txt|xlsx|parquet)$", r".\1", fname)
        if isinstance(content, pd.DataFrame):
            content.to_parquet(target)
        elif isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
    return raw


def rows(n: int, start: int = 1) -> str:
    """`n` good order lines dated in January 2025 (O<start>.., C<k>, amount k)."""
    return "".join(f"O{k},C{k},2025-01-{(k % 28) + 1:02d},{k}.00\n" for k in range(start, start + n))


def cleaned(tmp_path, cfg, orders_csv: str) -> tuple[tuple[int, int, int, int], dict]:
    """clean.run on a shop of one orders.csv: its (raw, kept, quarantined, excluded) and the file's report."""
    report = clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=make_shop(tmp_path, orders_csv=orders_csv)).report
    return counts(report), report["files"]["orders"]


def counts(report: dict, kind: str = "orders") -> tuple[int, int, int, int]:
    """(raw, kept, quarantined, excluded) of one file; asserts they add up."""
    fr = report["files"][kind]
    q, x = sum(fr["quarantined"].values()), sum(fr["excluded"].values())
    assert fr["rows_raw"] == fr["rows_kept"] + q + x
    return fr["rows_raw"], fr["rows_kept"], q, x


def quarantine(out) -> pd.DataFrame:
    return pd.read_csv(out / "quarantine.csv", dtype=str, keep_default_na=False)


# =========================================================================================== files

def test_empty_orders_csv_stops_saying_it_is_empty_not_that_a_column_is_missing(tmp_path, cfg):
    raw = make_shop(tmp_path, orders_csv="")
    with pytest.raises(ContractError) as err:
        clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=raw)
    assert str(err.value).startswith("orders.csv is empty")
    assert "missing" not in str(err.value)


def test_header_only_orders_csv_stops_saying_it_has_a_header_and_no_rows(tmp_path, cfg):
    raw = make_shop(tmp_path, orders_csv=HEADER)
    with pytest.raises(ContractError, match=r"orders.csv has a header \(order_id, customer_id, order_date, amount\) "
                                            r"but no rows"):
        clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=raw)


def test_truncated_last_line_is_quarantined_with_its_field_count_and_the_rest_kept(tmp_path, cfg):
    raw = make_shop(tmp_path, orders_csv=HEADER + rows(6) + "O999,C3,2025-0")  # cut off mid-row, no newline
    report = clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=raw).report
    assert counts(report) == (7, 6, 1, 0)
    assert report["files"]["orders"]["quarantined"] == {"wrong_field_count": 1}
    q = quarantine(tmp_path / "out")
    assert q[["source_row", "reason", "detail"]].values.tolist() == [
        ["7", "wrong_field_count", "row has 3 fields, the header has 4"]]
    assert q[["order_id", "customer_id", "order_date", "amount"]].values.tolist() == [["O999", "C3", "2025-0", ""]]


@pytest.mark.parametrize("bad_line,detail", [
    ("O2,C2,2025-01-02,$1,200.00", "row has 5 fields, the header has 4"),  # unquoted thousands comma
    ("O2,C2", "row has 2 fields, the header has 4"),
    ("O2,C2,2025-01-02,$1,", "row has 5 fields, the header has 4"),  # a trailing empty field: not read as "$1"
    ("O2,C2,2025-01-02,1,2,3,4,5", "row has 8 fields, the header has 4"),  # beyond what the reader pads
])
def test_a_row_with_more_or_fewer_fields_than_the_header_is_quarantined_and_the_rest_kept(tmp_path, cfg, bad_line,
                                                                                          detail):
    text = HEADER + rows(1) + bad_line + "\n" + rows(3, start=3) + "O9,,2025-01-09,9\n"
    raw = make_shop(tmp_path, orders_csv=text)
    report = clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=raw).report
    assert counts(report) == (6, 4, 2, 0)
    q = quarantine(tmp_path / "out")
    # row numbers stay those of the file although the reader skipped row 2
    assert q[["source_row", "reason", "detail"]].values.tolist() == [
        ["2", "wrong_field_count", detail], ["6", "missing_customer_id", "customer_id is empty"]]
    kept = pd.read_parquet(tmp_path / "out" / "orders_clean.parquet")
    assert dict(zip(kept["order_id"], kept["source_row"])) == {"O1": 1, "O3": 3, "O4": 4, "O5": 5}


def test_a_quote_never_closed_quarantines_that_row_as_unreadable(tmp_path, cfg):
    accounting, orders = cleaned(tmp_path, cfg, HEADER + rows(4) + 'O5,C5,2025-01-05,"9\n')
    assert accounting == (5, 4, 1, 0) and orders["quarantined"] == {"unreadable_row": 1}


def test_a_file_cut_differently_from_its_header_stops_instead_of_quarantining_every_row(tmp_path, cfg):
    text = HEADER + "".join(f"O{k},C{k},2025-01-0{k},{k},00\n" for k in range(1, 6))  # decimal comma, unquoted
    raw = make_shop(tmp_path, orders_csv=text)
    with pytest.raises(ContractError, match=r"orders.csv: 5 of 5 rows do not match the header \(most often: row has "
                                            r"5 fields, the header has 4\)"):
        clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=raw)


def test_a_ragged_row_is_never_reported_as_a_missing_column(tmp_path, cfg):
    raw = make_shop(tmp_path, orders_csv=HEADER + rows(30) + "O99,C9,2025-01-09,$1,200.00\n")
    # the header is fine: no "required column ... is missing"
    report = clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=raw).report
    assert counts(report) == (31, 30, 1, 0)


def test_missing_required_column_is_named_and_the_columns_found_are_listed(tmp_path, cfg):
    raw = make_shop(tmp_path, orders_csv="order_id,order_date,amount,Kunde\nO1,2025-01-01,5,C1\n")
    with pytest.raises(ContractError, match=r"orders.csv: required column 'customer_id' is missing .* columns found: "
                                            r"order_id, order_date, amount, Kunde\."):
        clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=raw)


def test_extra_columns_are_ignored_and_noted_in_the_report(tmp_path, cfg):
    raw = make_shop(tmp_path, orders_csv="order_id,customer_id,order_date,amount,gift_note,warehouse\n"
                                         "O1,C1,2025-01-02,5,hi,W1\nO2,C2,2025-01-03,6,,W2\n")
    report = clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=raw).report
    assert counts(report) == (2, 2, 0, 0)
    assert report["files"]["orders"]["ignored_columns"] == ["gift_note", "warehouse"]
    assert "orders.csv: columns outside the raw data contract are ignored: gift_note, warehouse." in report["warnings"]
    assert "gift_note" not in pd.read_parquet(tmp_path / "out" / "orders_clean.parquet").columns


def test_semicolon_delimited_file_with_decimal_commas_is_read(tmp_path, cfg):
    raw = make_shop(tmp_path, orders_csv="order_id;customer_id;order_date;amount\n"
                                         "O1;C1;2025-01-02;12,50\nO2;C2;2025-01-03;1.234,50\nO3;C3;2025-01-04;-2,5\n")
    report = clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=raw).report
    assert counts(report) == (3, 3, 0, 0)
    assert report["orders"]["revenue_net"] == round(12.50 + 1234.50 - 2.5, 2)


def test_utf8_with_bom_and_semicolons_reads_the_first_column(tmp_path, cfg):
    raw = make_shop(tmp_path, orders_csv=("\ufefforder_id;customer_id;order_date;amount\nO1;C1;2025-01-02;5\n"
                                          ).encode("utf-8"))
    report = clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=raw).report
    assert counts(report) == (1, 1, 0, 0) and not any("UTF-8" in w for w in report["warnings"])


def test_cp1250_export_is_read_with_a_warning(tmp_path, cfg):
    raw = make_shop(tmp_path, orders_csv=(HEADER + "O1,Dvořák,2025-01-02,\"10,00\"\n").encode("cp1250"))
    res = clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=raw)
    assert counts(res.report) == (1, 1, 0, 0)
    assert "orders.csv is not UTF-8; it was read as cp1250. Check accented names." in res.report["warnings"]
    assert pd.read_parquet(tmp_path / "out" / "orders_clean.parquet")["customer_id"].tolist() == ["Dvořák"]


def workbook(*sheets: tuple[str, list[list]]) -> bytes:
    """An .xlsx file written with openpyxl (the library the cleaning reads it with): its sheets as (name, rows);
    a datetime is a date cell, "#N/A" an error cell, a number in a date column Excel's serial day number."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, sheet_rows in sheets:
        sheet = book.create_sheet(name)
        for row in sheet_rows:
            sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


XLSX_ORDERS = [["order_id", "customer_id", "order_date", "amount"],
               ["O1", 17850, datetime(2025, 1, 3, 14, 5), 12.5],  # a date cell, a number as customer id
               ["O2", "C2", 45667, 7],  # Excel's serial day number 45667 = 2025-01-10
               ["O3", "C3", 45667.75, "1.234,50"],  # a serial with a time (18:00), an amount typed as text
               ["O4", "C4", "2025-01-12", 3]]  # a date typed as text
UTF16_ORDERS = ("\ufeff" + (HEADER + rows(3)).replace(",", "\t").replace("\n", "\r\n")).encode("utf-16-le")


@pytest.mark.parametrize("name", ["orders_csv", "orders_txt"])
def test_utf16_unicode_text_from_excel_is_read_as_the_contract(tmp_path, cfg, name):
    res = clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=make_shop(tmp_path, **{name: UTF16_ORDERS}))
    file = name.replace("_", ".")
    assert counts(res.report) == (3, 3, 0, 0) and res.report["files"]["orders"]["encoding"] == "utf-16"
    assert not any("UTF-8" in w for w in res.report["warnings"])
    assert f"{file} is UTF-16 text (Excel's \"Unicode Text\"), read as such." in page.reading_lines(res)
    assert pd.read_parquet(tmp_path / "out" / "orders_clean.parquet")["amount"].tolist() == [1.0, 2.0, 3.0]


def test_orders_xlsx_reads_the_first_sheet_with_date_cells_and_serial_numbers_as_dates(tmp_path, cfg):
    raw = make_shop(tmp_path, orders_xlsx=workbook(("Orders", XLSX_ORDERS), ("Notes", [["not", "orders"]])))
    res = clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=raw)
    assert counts(res.report) == (4, 4, 0, 0)
    kept = pd.read_parquet(tmp_path / "out" / "orders_clean.parquet").sort_values("order_id")
    assert kept["order_date"].astype(str).tolist() == ["2025-01-03 14:05:00", "2025-01-10 00:00:00",
                                                       "2025-01-10 18:00:00", "2025-01-12 00:00:00"]
    assert kept["customer_id"].tolist() == ["17850", "C2", "C3", "C4"]
    assert kept["amount"].tolist() == [12.5, 7.0, 1234.5, 3.0]
    assert ("orders.xlsx: sheet 'Orders' was read (the first of 2; cleaning.excel_sheet names another); cells "
            "shown as dates, and day numbers in date columns, are read as dates.") in page.reading_lines(res)


def test_the_sheet_named_in_cleaning_excel_sheet_is_read_and_a_missing_one_is_named(tmp_path):
    raw = make_shop(tmp_path, orders_xlsx=workbook(("Summary", [["total", 5]]), ("Orders", XLSX_ORDERS)))
    res = clean.run(tmp_path / "out", AS_OF, config_from_dict({"cleaning": {"excel_sheet": "Orders"}}), raw_dir=raw)
    assert counts(res.report) == (4, 4, 0, 0) and res.report["files"]["orders"]["sheet"] == "Orders"
    assert "orders.xlsx: sheet 'Orders' was read (named by cleaning.excel_sheet)" in page.reading_text(res)
    with pytest.raises(ContractError) as stop:
        clean.run(tmp_path / "out2", AS_OF, config_from_dict({"cleaning": {"excel_sheet": "Bestellungen"}}), raw_dir=raw)
    assert str(stop.value) == ("orders.xlsx has no sheet named 'Bestellungen' (cleaning.excel_sheet); its sheets are: "
                               "Summary, Orders.")


def test_an_xlsx_with_title_rows_and_an_error_cell_finds_its_header_and_quarantines_the_error(tmp_path, cfg):
    sheet = [["Orders, January 2025"], [], *XLSX_ORDERS, ["O5", "#N/A", "2025-01-13", 4], [None, None, None, None]]
    res = clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=make_shop(tmp_path, orders_xlsx=workbook(("Orders", sheet))))
    assert counts(res.report) == (5, 4, 1, 0)
    assert res.report["files"]["orders"]["quarantined"] == {"spreadsheet_error": 1}
    assert res.report["files"]["orders"]["header_line"] == 3
    assert ("orders.xlsx: row 3 was taken as the header, the first row naming columns the config reads (order_id, "
            "customer_id, order_date, amount); the 2 rows above it (a title, notes or blank rows) were skipped."
            ) in page.reading_lines(res)


def test_customers_xlsx_is_found_and_read_like_customers_csv(tmp_path, cfg):
    customers = workbook(("Customers", [["customer_id", "signup_date", "marketing_opt_in"],
                                        ["C1", datetime(2024, 12, 1), True], ["C2", 45600, False]]))
    res = clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=make_shop(tmp_path, orders_csv=HEADER + rows(3),
                                                                    customers_xlsx=customers))
    assert counts(res.report, "customers") == (2, 2, 0, 0)
    listed = pd.read_parquet(tmp_path / "out" / "customers_clean.parquet")
    assert listed["signup_date"].astype(str).tolist() == ["2024-12-01", "2024-11-04"]  # 45600 = 2024-11-04


@pytest.mark.parametrize("ends", ["crlf then lf", "lf then crlf", "alternating, quoted last field"])
def test_a_file_whose_lines_end_partly_in_crlf_and_partly_in_lf_is_read_whole(tmp_path, cfg, ends):
    lines = [f'O{k},C{k},2025-01-{k + 1:02d},"{k}.00"' for k in range(1, 7)]
    eol = {"crlf then lf": ["\r\n"] * 3 + ["\n"] * 4, "lf then crlf": ["\n"] * 4 + ["\r\n"] * 3,
           "alternating, quoted last field": ["\r\n", "\n"] * 3 + ["\r\n"]}[ends]
    text = "".join(line + end for line, end in zip([HEADER.strip(), *lines], eol))
    res = clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=make_shop(tmp_path, orders_csv=text.encode()))
    assert counts(res.report) == (6, 6, 0, 0) and res.report["orders"]["revenue_net"] == 21.0
    assert ("orders.csv: its lines end partly in CRLF (Windows) and partly in LF; both are read as line ends."
            in page.reading_lines(res))


@pytest.mark.parametrize("above,line,said", [
    ("Orders export, January 2025\n\n", 3, "the 2 lines above it (a title, notes or blank lines) were skipped."),
    ("sep=,\n", 2, "Excel's delimiter line (sep=,) above it was skipped."),
    ("sep=,\nMy shop\n", 3, "Excel's delimiter line (sep=,) and the line after it (a title, a note or a blank line) "
                            "were skipped."),
])
def test_a_title_or_sep_line_above_the_header_is_skipped_and_the_header_line_is_said(tmp_path, cfg, above, line, said):
    res = clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=make_shop(tmp_path, orders_csv=above + HEADER + rows(4)))
    assert counts(res.report) == (4, 4, 0, 0)
    fr = res.report["files"]["orders"]
    assert fr["header_line"] == line and fr["header_names"] == ["order_id", "customer_id", "order_date", "amount"]
    assert (f"orders.csv: line {line} was taken as the header, the first line naming columns the config reads "
            f"(order_id, customer_id, order_date, amount); {said}") in page.reading_lines(res)
    assert quarantine(tmp_path / "out").empty


def test_excels_sep_line_gives_the_delimiter_and_the_header_is_found_through_the_column_map(tmp_path):
    text = "sep=;\nBestellnummer;Kunde;Datum;Betrag\nB1;K1;2025-01-02;12,50\nB2;K2;2025-01-03;7,00\n"
    cfg = config_from_dict({"columns": {"orders": {"Bestellnummer": "order_id", "Kunde": "customer_id",
                                                   "Datum": "order_date", "Betrag": "amount"}}})
    res = clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=make_shop(tmp_path, orders_csv=text))
    assert counts(res.report) == (2, 2, 0, 0) and res.report["orders"]["revenue_net"] == 19.5
    assert res.report["files"]["orders"]["sep_line"] == ";"
    assert ("orders.csv: line 2 was taken as the header, the first line naming columns the config reads "
            "(Bestellnummer, Kunde, Datum, Betrag); Excel's delimiter line (sep=;) above it was skipped."
            ) in page.reading_lines(res)


def test_a_column_named_twice_stops_naming_it_and_both_positions(tmp_path, cfg):
    raw = make_shop(tmp_path, orders_csv="order_id,amount,customer_id,order_date,amount\nO1,5,C1,2025-01-02,6\n")
    with pytest.raises(ContractError) as stop:
        clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=raw)
    assert str(stop.value) == ("orders.csv: the column 'amount' appears twice in the header (columns 2 and 5), so it "
                               "is unclear which to read; remove or rename one of them and export again.")


def test_a_repeated_column_nothing_reads_is_ignored_and_listed(tmp_path, cfg):
    raw = make_shop(tmp_path, orders_csv="order_id,note,customer_id,order_date,amount,note\nO1,a,C1,2025-01-02,5,b\n")
    report = clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=raw).report
    assert counts(report) == (1, 1, 0, 0)
    assert "orders.csv: columns outside the raw data contract are ignored: note, note_2." in report["warnings"]


def test_without_an_orders_file_the_sentence_names_every_accepted_form(tmp_path, cfg):
    raw = make_shop(tmp_path, customers_csv="customer_id\nC1\n")
    with pytest.raises(ContractError) as stop:
        clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=raw)
    assert str(stop.value) == (f"{raw / 'orders.csv'} is missing; the raw data contract needs orders.csv, orders.txt, "
                               f"orders.xlsx or orders.parquet in {raw}.")


@pytest.mark.parametrize("content,note", [
    ("", "customers.csv is empty (no header, no rows)"),
    ("customer_id,email\n", "customers.csv has a header (customer_id, email) but no rows"),
])
def test_an_empty_customers_csv_is_treated_as_absent_with_a_note(tmp_path, cfg, content, note):
    raw = make_shop(tmp_path, orders_csv=HEADER + rows(3), customers_csv=content)
    res = clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=raw)
    assert counts(res.report) == (3, 3, 0, 0)
    assert "customers" not in res.report["files"]
    assert any(w.startswith(note) and w.endswith("It is treated as absent.") for w in res.report["warnings"])
    assert not (tmp_path / "out" / "customers_clean.parquet").exists()


def test_parquet_orders_are_cleaned_like_csv(tmp_path, cfg):
    df = pd.DataFrame({"order_id": ["O1", "O2", "O3"], "customer_id": ["C1", None, "C3"],
                       "order_date": [pd.Timestamp("2025-01-01"), pd.Timestamp("2025-01-02"),
                                                      pd.Timestamp("2025-01-03 10:00")],
                       "amount": [10.0, 5.0, float("inf")]})
    report = clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=make_shop(tmp_path, orders_parquet=df)).report
    assert counts(report) == (3, 1, 2, 0)
    assert report["files"]["orders"]["quarantined"] == {"missing_customer_id": 1, "non_finite_amount": 1}


# =========================================================================================== values

def test_iso_dates_and_the_configured_format_are_read_and_other_formats_quarantined(tmp_path):
    cfg = config_from_dict({"cleaning": {"date_format": "%d.%m.%Y"}})
    text = HEADER + ("O1,C1,2025-01-05,5\nO2,C2,2025-01-06 10:00:00,5\nO3,C3,07.01.2025,5\n"
                     "O4,C4,01/08/2025,5\nO5,C5,2025/01/09,5\nO6,C6,infinity,5\n")
    report = clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=make_shop(tmp_path, orders_csv=text)).report
    assert counts(report) == (6, 3, 3, 0)
    assert quarantine(tmp_path / "out").query("reason == 'bad_date'")["source_row"].tolist() == ["4", "5", "6"]


TIMES = HEADER + "O1,C1,2025-01-31T14:05:00+02:00,5\nO2,C2,2025-01-15 09:00:00Z,5\nO3,C3,2025-01-20 08:30:00,5\n"


@pytest.mark.parametrize("zone,expected", [
    (None, ["2025-01-31 14:05:00", "2025-01-15 09:00:00", "2025-01-20 08:30:00"]),       # offset dropped
    ("Europe/Prague", ["2025-01-31 13:05:00", "2025-01-15 10:00:00", "2025-01-20 08:30:00"]),  # UTC+1 in winter
    ("America/New_York", ["2025-01-31 07:05:00", "2025-01-15 04:00:00", "2025-01-20 08:30:00"]),
])
def test_timestamps_with_offsets_are_read_in_their_own_local_time_or_converted_to_shop_timezone(tmp_path, zone,
                                                                                                 expected):
    cfg = config_from_dict({"shop": {"timezone": zone}})
    clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=make_shop(tmp_path, orders_csv=TIMES))
    o = pd.read_parquet(tmp_path / "out" / "orders_clean.parquet").sort_values("order_id")
    assert o["order_date"].astype(str).tolist() == expected


def test_summer_time_is_used_for_a_summer_timestamp(tmp_path):
    cfg = config_from_dict({"shop": {"timezone": "Europe/Prague"}})
    raw = make_shop(tmp_path, orders_csv=HEADER + "O1,C1,2025-07-01T10:00:00Z,5\n")
    clean.run(tmp_path / "out", "2025-07-31", cfg, raw_dir=raw)
    assert str(pd.read_parquet(tmp_path / "out" / "orders_clean.parquet")["order_date"][0]) == "2025-07-01 12:00:00"


def test_lines_dated_after_as_of_are_excluded_by_after_as_of(tmp_path, cfg):
    accounting, orders = cleaned(tmp_path, cfg, HEADER + rows(3) + "O8,C8,2031-05-01,5\nO9,C9,2025-02-01 00:00:00,5\n")
    assert accounting == (5, 3, 0, 2) and orders["excluded"] == {"after_as_of": 2}


def test_lines_before_min_order_date_are_excluded_by_a_named_rule(tmp_path, cfg):
    raw = make_shop(tmp_path, orders_csv=HEADER + rows(3) + "O8,C8,1970-01-01,5\nO9,C9,1999-12-31 23:59:59,5\n")
    report = clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=raw).report
    assert counts(report) == (5, 3, 0, 2)
    assert report["files"]["orders"]["excluded"] == {"before_min_order_date": 2}
    later = config_from_dict({"cleaning": {"min_order_date": "2025-01-03"}})
    report = clean.run(tmp_path / "out", AS_OF, later, raw_dir=raw).report
    assert report["files"]["orders"]["excluded"] == {"before_min_order_date": 3}


@pytest.mark.parametrize("value", ["inf", "-inf", "Infinity", "NaN", "nan"])
def test_non_finite_amounts_are_quarantined(tmp_path, cfg, value):
    accounting, orders = cleaned(tmp_path, cfg, HEADER + rows(2) + f"O9,C9,2025-01-09,{value}\n")
    assert accounting == (3, 2, 1, 0) and orders["quarantined"] == {"non_finite_amount": 1}


def test_negative_amounts_are_returns_and_net_the_revenue(tmp_path, cfg):
    raw = make_shop(tmp_path, orders_csv=HEADER + "O1,C1,2025-01-02,50\nO1,C1,2025-01-20,-20\n")
    res = clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=raw)
    assert counts(res.report) == (2, 2, 0, 0)  # a return keeps its order id and later date: no conflict
    assert res.report["orders"]["revenue_net"] == 30.0 and res.report["orders"]["return_lines"] == 1


def test_lines_above_max_line_amount_are_excluded_only_when_it_is_set(tmp_path, cfg):
    raw = make_shop(tmp_path, orders_csv=HEADER + rows(3) + "O9,C9,2025-01-09,250000\nO10,C9,2025-01-10,-250000\n")
    assert counts(clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=raw).report) == (5, 5, 0, 0)  # off by default
    capped = config_from_dict({"cleaning": {"max_line_amount": 10000}})
    report = clean.run(tmp_path / "out", AS_OF, capped, raw_dir=raw).report
    assert counts(report) == (5, 3, 0, 2)
    assert report["files"]["orders"]["excluded"] == {"above_max_line_amount": 2}


def test_the_five_largest_lines_are_listed_without_customer_ids(tmp_path, cfg):
    text = HEADER + rows(8) + "O99,alice@example.com,2025-01-20,99999.00\n"
    res = clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=make_shop(tmp_path, orders_csv=text))
    top = page.largest_lines(res)
    assert top.columns.tolist() == ["row in orders.csv", "order (hashed)", "date", "amount (EUR)"]
    assert top["row in orders.csv"].tolist() == [9, 8, 7, 6, 5]
    assert top["amount (EUR)"].tolist() == ["99,999.00", "8.00", "7.00", "6.00", "5.00"]
    shown = top.to_string()
    assert "alice" not in shown and "O99" not in shown and "C8" not in shown
    assert page.largest_lines_takeaway(res).startswith("The largest line is 99,999.00 EUR, 20,000 times the "
                                                       "median purchase line (5.00 EUR).")


def test_lines_of_one_order_disagreeing_on_customer_or_date_quarantine_the_later_ones_naming_the_first(tmp_path, cfg):
    text = HEADER + ("O1,C1,2025-01-02 10:00:00,5\nO1,C1,2025-01-02 10:00:00,6\nO1,C2,2025-01-02 10:00:00,7\n"
                     "O2,C3,2025-01-03,5\nO2,C3,2025-01-05,6\n")
    report = clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=make_shop(tmp_path, orders_csv=text)).report
    assert counts(report) == (5, 3, 2, 0)
    q = quarantine(tmp_path / "out")
    assert q[["source_row", "reason", "detail"]].values.tolist() == [
        ["3", "order_conflict", "order_id O1 first appears on row 1 with another customer_id"],
        ["5", "order_conflict", "order_id O2's earliest line (row 4, 2025-01-03 00:00:00) is 48 hours earlier, more "
                                "than cleaning.order_time_tolerance_hours (24)"]]


# A retailer's transaction log as its order system writes it: an invoice's later lines one or two minutes after
# its first (the real log had 64 such invoices, 1,394 lines, all quarantined before issue 27).
INVOICE = HEADER + ("536365,17850,2025-01-10 08:27:00,20.34\n536365,17850,2025-01-10 08:26:00,15.30\n"
                    "536365,17850,2025-01-10 08:28:00,22.00\n")


def test_an_invoice_whose_lines_are_written_minutes_apart_is_one_order_dated_by_its_earliest_line(tmp_path, cfg):
    res = clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=make_shop(tmp_path, orders_csv=INVOICE))
    assert counts(res.report) == (3, 3, 0, 0)
    assert res.report["orders"]["orders"] == 1 and res.monthly["orders"].tolist() == [1]
    kept = pd.read_parquet(tmp_path / "out" / "orders_clean.parquet")
    assert kept["order_date"].astype(str).tolist() == ["2025-01-10 08:26:00"] * 3
    assert res.report["orders"]["revenue_net"] == 57.64


def test_an_invoice_naming_two_customers_or_with_lines_days_apart_is_a_conflict_saying_which(tmp_path, cfg):
    text = HEADER + ("536366,17850,2025-01-10 08:28:00,11.10\n536366,13047,2025-01-10 08:29:00,9.90\n"
                     "536367,12583,2025-01-03 08:34:00,40.00\n536367,12583,2025-01-06 08:34:00,18.00\n"
                     "536367,12583,2025-01-03 08:35:00,12.00\n")
    res = clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=make_shop(tmp_path, orders_csv=text))
    assert counts(res.report) == (5, 3, 2, 0)
    assert quarantine(tmp_path / "out")[["source_row", "reason", "detail"]].values.tolist() == [
        ["2", "order_conflict", "order_id 536366 first appears on row 1 with another customer_id"],
        ["4", "order_conflict", "order_id 536367's earliest line (row 3, 2025-01-03 08:34:00) is 72 hours earlier, "
                                "more than cleaning.order_time_tolerance_hours (24)"]]
    said = ("orders.csv: 2 lines of 2 orders are quarantined as order_conflict: 1 names another customer than the "
            "order's first line; 1 is dated 72 hours after the order's earliest line, more than "
            "cleaning.order_time_tolerance_hours (24) - raise it if the shop writes an order's lines that far apart.")
    assert said in res.report["warnings"] and f"warning: {said}" in page.warnings_text(res).splitlines()


@pytest.mark.parametrize("hours,expected,details", [
    (24, (4, 4, 0, 0), []),  # the default: a day
    (1, (4, 3, 1, 0), ["order_id O1's earliest line (row 1, 2025-01-10 10:00:00) is 3 hours earlier, more than "
                       "cleaning.order_time_tolerance_hours (1)"]),
    (0, (4, 2, 2, 0), ["order_id O1's earliest line (row 1, 2025-01-10 10:00:00) is 3 hours earlier, more than "
                       "cleaning.order_time_tolerance_hours (0)",
                       "order_id O2's earliest line (row 3, 2025-01-11 10:00:00) is 0.5 hours earlier, more than "
                       "cleaning.order_time_tolerance_hours (0)"]),
])
def test_order_time_tolerance_hours_decides_how_far_apart_one_orders_lines_may_be(tmp_path, hours, expected, details):
    text = HEADER + "O1,C1,2025-01-10 10:00:00,5\nO1,C1,2025-01-10 13:00:00,6\nO2,C2,2025-01-11 10:00:00,7\n" \
                    "O2,C2,2025-01-11 10:30:00,8\n"
    cfg = config_from_dict({"cleaning": {"order_time_tolerance_hours": hours}})
    report = clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=make_shop(tmp_path, orders_csv=text)).report
    assert counts(report) == expected and report["orders"]["orders"] == 2
    assert quarantine(tmp_path / "out")["detail"].tolist() == details


S_HEADER = "order_id,customer_id,order_date,amount,status\n"
FOREIGN_STATUSES = S_HEADER + ("O1,C1,2025-01-02,5,Storniert\nO2,C2,2025-01-03,6, storniert \nO3,C3,2025-01-04,7,"
                               "versendet\nO4,C4,2025-01-05,8,completed\nO5,C5,2025-01-06,9,retourniert\n")


def test_statuses_the_rules_do_not_know_are_named_with_their_counts_and_counted_as_completed(tmp_path, cfg):
    res = clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=make_shop(tmp_path, orders_csv=FOREIGN_STATUSES))
    assert counts(res.report) == (5, 5, 0, 0) and res.report["orders"]["revenue_net"] == 35.0
    assert res.report["files"]["orders"]["unknown_statuses"] == {"storniert": 2, "retourniert": 1, "versendet": 1}
    said = ("orders.csv: 4 kept lines have a status the cleaning rules do not know and are counted as completed "
            "orders (the default): 'storniert' (2 lines), 'retourniert' (1 line), 'versendet' (1 line); if a status "
            "means something else, add under cleaning: status_map: {storniert: <status>, retourniert: <status>, "
            "versendet: <status>}, each <status> being completed or a word of cancelled_statuses, returned_statuses, "
            "unpaid_statuses or test_statuses.")
    assert res.report["warnings"][0] == said and f"warning: {said}" in page.warnings_text(res).splitlines()


def test_status_map_maps_a_shops_own_status_words_to_the_known_statuses(tmp_path):
    mapped = config_from_dict({"cleaning": {"status_map": {" STORNIERT": "cancelled", "versendet": "Completed",
                                                           "retourniert": "returned"}}})
    res = clean.run(tmp_path / "out", AS_OF, mapped, raw_dir=make_shop(tmp_path, orders_csv=FOREIGN_STATUSES))
    assert counts(res.report) == (5, 3, 0, 2) and res.report["files"]["orders"]["excluded"] == {"cancelled": 2}
    assert "unknown_statuses" not in res.report["files"]["orders"]
    assert not any("status" in w for w in res.report["warnings"])
    kept = pd.read_parquet(tmp_path / "out" / "orders_clean.parquet")
    assert dict(zip(kept["order_id"], kept["status"])) == {"O3": "completed", "O4": "completed", "O5": "returned"}
    assert res.report["orders"]["revenue_net"] == 7 + 8 - 9


def test_status_map_must_map_to_a_known_status():
    with pytest.raises(ConfigError) as err:
        config_from_dict({"cleaning": {"status_map": {"storniert": "storno"}}}, source="x.yml")
    assert str(err.value) == ("x.yml: cleaning.status_map must map each status to a known status (completed, test, "
                              "cancelled, canceled, voided, returned, refunded, unpaid, pending, failed, on-hold), "
                              "got 'storno'.")


def test_spreadsheet_error_values_in_any_field_quarantine_the_line_naming_the_column(tmp_path, cfg):
    text = S_HEADER + ("O1,#N/A,2025-01-02,5,completed\nO2,C2,2025-01-02,#VALUE!,completed\n#REF!,C3,2025-01-02,5,\n"
                       "O4,C4,2025-01-02,#DIV/0!,completed\nO5,C5,#NAME?,5,completed\nO6,C6,2025-01-02,5,#NULL!\n"
                       "O7,C7,2025-01-02,#NUM!,completed\nO8, #n/a ,2025-01-02,5,completed\n" + "O9,C9,2025-01-02,5,\n")
    res = clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=make_shop(tmp_path, orders_csv=text))
    assert counts(res.report) == (9, 1, 8, 0) and res.report["files"]["orders"]["quarantined"] == {"spreadsheet_error": 8}
    assert quarantine(tmp_path / "out")["detail"].tolist() == [
        f"{column} is {value} (a spreadsheet error value)" for column, value in [
            ("customer_id", "#N/A"), ("amount", "#VALUE!"), ("order_id", "#REF!"), ("amount", "#DIV/0!"),
            ("order_date", "#NAME?"), ("status", "#NULL!"), ("amount", "#NUM!"), ("customer_id", "#N/A")]]
    assert pd.read_parquet(tmp_path / "out" / "orders_clean.parquet")["customer_id"].tolist() == ["C9"]


def test_a_spreadsheet_error_in_customers_or_campaigns_never_becomes_a_customer(tmp_path, cfg):
    raw = make_shop(tmp_path, orders_csv=HEADER + rows(2), customers_csv="customer_id,region\nC1,north\n#N/A,south\n"
                    "C2,#REF!\n", campaigns_csv="campaign_id,customer_id,sent_date,arm,discount\n"
                    "K1,C1,2025-01-10,control,0\nK1,#N/A,2025-01-10,email,0.1\n")
    res = clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=raw)
    assert counts(res.report, "customers") == (3, 1, 2, 0) and counts(res.report, "campaigns") == (2, 1, 1, 0)
    assert res.report["files"]["campaigns"]["quarantined"] == {"spreadsheet_error": 1}
    assert pd.read_parquet(tmp_path / "out" / "customers_clean.parquet")["customer_id"].tolist() == ["C1"]
    assert quarantine(tmp_path / "out").query("file == 'customers.csv'")["detail"].tolist() == [
        "customer_id is #N/A (a spreadsheet error value)", "region is #REF! (a spreadsheet error value)"]


def test_customer_ids_are_trimmed_and_case_folded_only_when_asked(tmp_path, cfg):
    text = HEADER + "O1, C1 ,2025-01-02,5\nO2,C1,2025-01-03,5\nO3,c1,2025-01-04,5\n"
    raw = make_shop(tmp_path, orders_csv=text)
    assert clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=raw).report["orders"]["customers"] == 2  # "C1" and "c1"
    folded = config_from_dict({"cleaning": {"fold_id_case": True}})
    assert clean.run(tmp_path / "out", AS_OF, folded, raw_dir=raw).report["orders"]["customers"] == 1


def test_a_shop_with_one_customer_is_cleaned_with_a_note(tmp_path, cfg):
    text = HEADER + "O1,C1,2025-01-02,5\nO2,C1,2025-01-09,7\n"
    report = clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=make_shop(tmp_path, orders_csv=text)).report
    assert counts(report) == (2, 2, 0, 0)
    assert report["warnings"] == ["only one customer has a usable order: segments, models and cohorts need many; "
                                  "read them with care."]


def test_a_shop_where_everyone_bought_once_is_cleaned_with_a_note(tmp_path, cfg):
    report = clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=make_shop(tmp_path, orders_csv=HEADER + rows(5))).report
    assert counts(report) == (5, 5, 0, 0) and report["orders"]["repeat_customers"] == 0
    assert any(w.startswith("no customer ordered twice") for w in report["warnings"])


def test_a_month_without_orders_stops_with_a_clear_sentence_and_writes_nothing(tmp_path, cfg):
    raw = make_shop(tmp_path, orders_csv=HEADER + rows(5))  # January 2025 only
    with pytest.raises(clean.NoOrders, match=r"orders.csv has no usable order line in 2025-03 \(the month ending at "
                                             r"as_of 2025-03-31\); the last one is dated 2025-01-06"):
        clean.run(tmp_path / "out", "2025-03-31", cfg, raw_dir=raw)
    assert not (tmp_path / "out").exists()


def test_an_export_with_no_usable_line_stops_naming_the_main_reason(tmp_path, cfg):
    raw = make_shop(tmp_path, orders_csv=HEADER + "O1,C1,someday,5\nO2,C2,2025-13-01,5\n")
    with pytest.raises(clean.NoOrders, match=r"orders.csv: none of its 2 rows is a usable order line \(2 quarantined, "
                                             r"0 excluded by rule; mostly: the date cannot be read\)"):
        clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=raw)


def test_campaign_rows_naming_unknown_customers_are_counted_and_left_out(tmp_path, cfg):
    raw = make_shop(tmp_path, orders_csv=HEADER + rows(3), customers_csv="customer_id\nC1\nL7\n",
                    campaigns_csv="campaign_id,customer_id,sent_date,arm,discount\n"
                                  "K1,C1,2025-01-10,control,0\nK1,L7,2025-01-10,email,0.1\n"
                                  "K1,X1,2025-01-10,email,0.1\nK1,X2,2025-01-10,control,0\n")
    res = clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=raw)
    assert counts(res.report, "campaigns") == (4, 2, 0, 2)
    assert res.report["files"]["campaigns"]["excluded"] == {"unknown_customer": 2}
    assert ("2 campaign rows name customers found neither in the orders nor in customers.csv; they are left out."
            in res.report["warnings"])
    assert sorted(pd.read_parquet(tmp_path / "out" / "campaigns_clean.parquet")["customer_id"]) == ["C1", "L7"]


# =========================================================================================== properties

AMOUNT_LIKE = clean.AMOUNT_SHAPE.replace(r"\p{Sc}", "[€$£]")  # Python's re has no \p{..}; RE2 has


def _values(expr_of, strings: list[str]) -> list:
    t = ibis.memtable({"s": strings}, schema={"s": "string"})
    return connect().execute(expr_of(t.s).name("v")).tolist()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.text(max_size=20), st.from_regex(AMOUNT_LIKE, fullmatch=True)), min_size=1, max_size=30),
       st.sampled_from(["auto", ",", "."]))
def test_any_text_gives_an_amount_or_null_never_an_error(strings, decimal):
    got = _values(lambda s: clean.parse_amount(s, decimal), strings)
    assert all(pd.isna(v) or (isinstance(v, float) and abs(v) < float("inf")) for v in got)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.text(max_size=25), st.from_regex(clean.ISO_TIMESTAMP, fullmatch=True)),
                min_size=1, max_size=20))
def test_any_text_gives_a_timestamp_or_null_never_an_error(strings):
    got = _values(lambda s: clean.parse_timestamp(s, "%d.%m.%Y %H:%M"), strings)
    assert all(pd.isna(v) or pd.Timestamp(v).year >= 1 for v in got)


FIELD = st.text(alphabet="0123456789abcXYZ-.,;:€ ", max_size=8)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(FIELD, FIELD, FIELD, FIELD), min_size=1, max_size=12))
def test_any_row_of_text_is_kept_or_tagged_with_a_known_reason(table):
    raw = ibis.memtable(pd.DataFrame(table, columns=["order_id", "customer_id", "order_date", "amount"]).assign(
        source_row=range(1, len(table) + 1)))
    tagged = connect().execute(clean.tag_orders(raw, AS_OF, load_config("config/default.yml").cleaning))
    reasons = set(tagged["reason"].dropna())
    assert reasons <= set(clean.QUARANTINE_REASONS) | set(clean.EXCLUSION_RULES)
    kept = tagged[tagged["reason"].isna()]
    assert kept["amount_value"].notna().all() and kept["order_ts"].notna().all()


ROW = st.lists(st.text(alphabet="0123456789ABC-.: ", max_size=10), min_size=1, max_size=6)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(st.lists(ROW, min_size=1, max_size=15))
@example([[" "], ["O1", "C1", "2025-01-02", "5"], [""], ["O2", "C2", "2025-01-03", "5", ""],
          ["O3", "C3", "2025-01-04", "5"], ["O4", "C3", "2025-01-05", "5"]])
def test_for_any_small_file_raw_rows_equal_kept_plus_quarantined_plus_excluded(tmp_path_factory, table):
    lines = [",".join(r) for r in table]
    data_rows = [line for line in lines if line]  # an empty line is no row; a line of spaces is (1 field)
    raw = tmp_path_factory.mktemp("prop") / "shop"
    raw.mkdir()
    (raw / "orders.csv").write_text(HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    try:
        report = clean.validate(raw, load_config("config/default.yml"), as_of=AS_OF)
    except ContractError as exc:  # allowed only for a file that holds no row, or mostly mis-cut rows
        wrong = sum(len(r) != 4 for r in table if ",".join(r))
        assert not data_rows or "do not match the header" in str(exc) and wrong > len(data_rows) / 2
        return
    raw_n, kept, q, x = counts(report)
    assert raw_n == len(data_rows) and kept + q + x == raw_n


# =========================================================================================== validate

BAD_FILES = {
    "empty": ({"orders_csv": ""}, 1, "orders.csv is empty"),
    "header only": ({"orders_csv": HEADER}, 1, "has a header (order_id, customer_id, order_date, amount) but no rows"),
    "truncated": ({"orders_csv": HEADER + rows(6) + "O999,C3,2025-0"}, 0,
                  "1 quarantined (rows 7): row has 3 fields, the header has 4. What to do: usually a value holding "
                  "the delimiter without quotes"),
    "missing column": ({"orders_csv": "order_id,amount\nO1,5\n"}, 1,
                       "required column 'customer_id' is missing"),
    "no orders file": ({"customers_csv": "customer_id\nC1\n"}, 1,
                       "the raw data contract needs orders.csv, orders.txt, orders.xlsx or orders.parquet"),
    "UTF-16 text": ({"orders_txt": UTF16_ORDERS}, 0, "orders.txt is UTF-16 text (Excel's \"Unicode Text\"), read as such."),
    "orders.xlsx": ({"orders_xlsx": workbook(("Orders", [["Shop X"], *XLSX_ORDERS]))}, 0,
                    "orders.xlsx: sheet 'Orders' was read (its only sheet); cells shown as dates, and day numbers in "
                    "date columns, are read as dates.\norders.xlsx: row 2 was taken as the header, the first row naming "
                    "columns the config reads (order_id, customer_id, order_date, amount); the row above it (a title, "
                    "a note or a blank row) was skipped."),
    "mixed line ends": ({"orders_csv": (HEADER + rows(4)).replace("\n", "\r\n", 2)}, 0,
                        "orders.csv: its lines end partly in CRLF (Windows) and partly in LF; both are read as line "
                        "ends.\norders.csv: 4 rows - 4 kept"),
    "title line": ({"orders_csv": "Orders January 2025\n" + HEADER + rows(3)}, 0,
                   "orders.csv: line 2 was taken as the header, the first line naming columns the config reads "
                   "(order_id, customer_id, order_date, amount); the line above it (a title, a note or a blank line) "
                   "was skipped.\norders.csv: 3 rows - 3 kept"),
    "sep line": ({"orders_csv": "sep=;\n" + (HEADER + rows(3)).replace(",", ";")}, 0,
                 "(order_id, customer_id, order_date, amount); Excel's delimiter line (sep=;) above it was skipped."),
    "column named twice": ({"orders_csv": "order_id,customer_id,customer_id,order_date,amount\nO1,C1,C2,2025-01-02,5\n"},
                           1, "orders.csv: the column 'customer_id' appears twice in the header (columns 2 and 3), so "
                              "it is unclear which to read; remove or rename one of them and export again."),
    "bad dates": ({"orders_csv": HEADER + rows(3) + "O9,C9,31/01/2025,5\n"}, 0,
                  "1 quarantined (rows 4): the date cannot be read. What to do: export ISO dates"),
    "unknown statuses": ({"orders_csv": "order_id,customer_id,order_date,amount,status\nO1,C1,2025-01-02,5,Storniert\n"
                                        "O2,C2,2025-01-03,5,storniert\nO3,C3,2025-01-04,5,versendet\n"}, 0,
                         "warning: orders.csv: 3 kept lines have a status the cleaning rules do not know and are "
                         "counted as completed orders (the default): 'storniert' (2 lines), 'versendet' (1 line); if "
                         "a status means something else, add under cleaning: status_map: {storniert: <status>, "
                         "versendet: <status>}, each <status> being completed or a word of cancelled_statuses, "
                         "returned_statuses, unpaid_statuses or test_statuses."),
    "#N/A customer id": ({"orders_csv": HEADER + rows(3) + "O9,#N/A,2025-01-09,5\n"}, 0,
                         "orders.csv: 4 rows - 3 kept, 1 quarantined, 0 excluded by rule.\n  1 quarantined (rows 4): "
                         "customer_id is #N/A (a spreadsheet error value). What to do: a spreadsheet formula failed "
                         "in this cell"),
    "invoice lines minutes apart": ({"orders_csv": HEADER + rows(3) + "536365,C9,2025-01-09 08:26:00,5\n"
                                                    "536365,C9,2025-01-09 08:27:00,6\n536365,C9,2025-01-09 08:28:00,7\n"},
                                    0, "orders.csv: 6 rows - 6 kept, 0 quarantined, 0 excluded by rule."),
    "no usable line": ({"orders_csv": HEADER + "O1,,2025-01-02,5\n"}, 1,
                       "none of its 1 rows is a usable order line"),
    "0-byte customers": ({"orders_csv": HEADER + rows(3), "customers_csv": ""}, 0,
                         "warning: customers.csv is empty (no header, no rows)"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_validate_diagnoses_each_bad_file_in_words_and_exits_non_zero_for_a_stop(tmp_path, capsys, case):
    files, code, phrase = BAD_FILES[case]
    raw = make_shop(tmp_path, **files)
    assert main(["validate", "--raw", str(raw), "--as-of", AS_OF]) == code
    out = capsys.readouterr()
    text = out.out + out.err
    assert phrase in text and "Traceback" not in text
    if code:
        assert out.err.startswith("retention validate: ") and out.err.count("\n") == 1


# =========================================================================================== customers
# Who is a customer, a lead, a repeat customer (helpers.customer_facts), the same on every page; customers
# whose purchases net to zero or less are counted and shown apart in 04 and 05 (issue 27).

def _customers_shop(tmp_path) -> Path:
    """40 ordinary customers over a year (C1..C40, every sixth buys once), plus: ZP, whose only purchase is a
    zero-price line; FR, whose purchase a credit note cancels the same day; QC, one order of 50 and a credit note
    of 500 (its own document) half a year later; CN, listed, with only a credit note; L1, listed, no line."""
    lines = []
    for k in range(1, 41):
        day, gap, n = pd.Timestamp("2024-02-01") + pd.Timedelta(days=3 * k), 20 + (k % 7) * 15, 0
        while day <= pd.Timestamp(AS_OF) and (n == 0 or k % 6):
            n += 1
            lines.append(f"O{k}-{n},C{k},{day:%Y-%m-%d} 10:00:00,{20 + k + 3 * n}.00")
            day += pd.Timedelta(days=gap)
    lines += ["Z1,ZP,2024-09-10 10:00:00,0.00",
              "F1,FR,2024-10-05 10:00:00,80.00", "F1C,FR,2024-10-05 15:00:00,-80.00",
              "Q1,QC,2024-06-01 10:00:00,50.00", "Q1C,QC,2024-12-01 10:00:00,-500.00",
              "CN1,CN,2024-11-03 10:00:00,-45.00"]
    listed = [f"C{k}" for k in range(1, 41)] + ["ZP", "FR", "QC", "CN", "L1"]
    return make_shop(tmp_path, orders_csv=HEADER + "\n".join(lines) + "\n",
                     customers_csv="customer_id\n" + "\n".join(listed) + "\n")


@pytest.fixture(scope="module")
def customers_month(tmp_path_factory, cfg):
    """The shop above through 01, 02, 03, 04 and 05 (stages run directly on one folder)."""
    tmp = tmp_path_factory.mktemp("customers")
    out, con = tmp / "out" / AS_OF[:7], connect()
    report = clean.run(out, AS_OF, cfg, raw_dir=_customers_shop(tmp), con=con).report
    return {"folder": out, "report": report, "kpis": kpis.run(out, AS_OF, cfg, con),
            "segments": segments.run(out, AS_OF, cfg, con),
            "clv": clv.run(out, AS_OF, cfg, con), "churn": churn.run(out, AS_OF, cfg, con)}


def test_customers_leads_and_repeat_customers_are_the_same_count_in_01_and_02(customers_month):
    report, k = customers_month["report"], customers_month["kpis"]
    # customers: C1..C40, ZP, FR, QC (CN only has a credit note); leads: CN and L1; repeat: C1..C40 but every sixth
    assert (report["orders"]["customers"], report["orders"]["repeat_customers"],
            report["customers"]["leads_without_order"]) == (43, 34, 2)
    assert (k.counts.customers, k.counts.repeat_customers, k.counts.leads) == (43, 34, 2)
    assert k.leads["leads"].iloc[0] == 2
    # 02 takes 01's counts of the month: the definitions, counted again on what 01 wrote, agree with them
    con = connect()
    month = customers_month["folder"]
    assert customer_facts.customer_counts(artifacts.table(con, month, "orders_clean"), AS_OF,
                                          artifacts.table(con, month, "customers_clean")) == k.counts


def test_customers_with_no_positive_purchase_get_no_clv_and_04_says_how_many_and_why(customers_month):
    res, saved = customers_month["clv"], artifacts.read(customers_month["folder"], "clv")
    assert res.left_out == {"zero_price": 1, "returned": 1}
    assert len(res.scores) == len(saved)
    assert len(saved) + sum(res.left_out.values()) == customers_month["report"]["orders"]["customers"]
    assert not {"FR", "ZP"} & set(saved["customer_id"])
    assert "QC" in set(saved["customer_id"])  # QC's purchase day kept its value: a later credit note is a return
    assert ("2 customers whose purchases net to zero or less (1 bought only zero-price lines and 1 had every "
            "purchase cancelled by returns or credit notes within the day) are not valued: the purchase model has "
            "no purchase of theirs to learn from, so their CLV is left empty (they are counted as customers on the "
            "other pages).") in clv_page.clv_takeaway(res)


def test_customers_with_no_positive_purchase_get_no_churn_risk_never_100_percent(customers_month):
    res, saved = customers_month["churn"], churn.load_scores(customers_month["folder"])
    assert res.left_out == {"zero_price": 1, "returned": 1}
    assert not {"FR", "ZP", "CN"} & set(saved["customer_id"])
    assert len(res.scored) == len(saved)
    assert len(saved) + sum(res.left_out.values()) == customers_month["report"]["orders"]["customers"]
    assert (saved["churn_probability"] < 1.0).all()
    assert ("2 customers whose purchases net to zero or less (1 bought only zero-price lines and 1 had every "
            "purchase cancelled by returns or credit notes within the day) are not scored: no model has a purchase "
            "of theirs to judge, so their churn risk is left empty rather than set to 100 %.") in churn_page.tier_takeaway(res)


def test_segment_profiles_show_order_values_of_purchases_not_of_credit_notes(customers_month):
    c = customers_month["segments"].customers.set_index("customer_id")
    assert c.loc["QC", ["frequency", "monetary", "avg_order_value"]].tolist() == [1, -450.0, 50.0]
    assert c.loc["ZP", "avg_order_value"] == 0.0 and c["avg_order_value"].min() >= 0
    assert "CN" not in c.index and len(c) == 43


NO_POSITIVE = ("2 customers have no purchase that nets to more than zero (1 bought only zero-price lines; 1 had every "
               "purchase cancelled by returns or credit notes within the day): counted as customers, but 04 gives "
               "them no CLV and 05 no churn risk, and both pages say so.")


def test_01_and_validate_say_how_many_customers_have_no_positive_purchase(customers_month, tmp_path, capsys):
    report = customers_month["report"]
    assert report["orders"]["no_positive_purchase"] == {"as_of": AS_OF, "time_unit": "day",
                                                        "customers": {"zero_price": 1, "returned": 1}}
    assert NO_POSITIVE in page.warnings_text(report)
    assert main(["validate", "--raw", str(_customers_shop(tmp_path)), "--as-of", AS_OF]) == 0
    assert f"warning: {NO_POSITIVE}" in capsys.readouterr().out
