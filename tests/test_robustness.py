"""Robustness (issue 15): hostile exports and unusual values, each with the behaviour a user sees.

Sections: "files" (how a raw file is read), "values" (what the cleaning rules do with odd values),
"properties" (hypothesis: parsers never raise, rows always add up), "validate" (`retention validate`
on each bad file). Every bad file is built in tmp_path by the test itself. The row counts asserted
here are the ones the issue's closing table quotes (raw / kept / quarantined / excluded).
"""
from __future__ import annotations

import os
from pathlib import Path

import ibis
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from helpers import clean as _clean
from helpers.cli import main
from helpers.config import config_from_dict, load_config
from helpers.contract import ContractError
from helpers.engine import connect
from helpers.pages import clean as page

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
    """A raw folder holding `files` (file name with dots as `orders_csv=`; text is written UTF-8, bytes as is)."""
    raw = tmp_path / "raw" / name
    raw.mkdir(parents=True)
    for fname, content in files.items():
        target = raw / fname.replace("_csv", ".csv").replace("_parquet", ".parquet")
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
                     "O2,C3,2025-01-03,5\nO2,C3,2025-01-04,6\n")
    report = clean.run(tmp_path / "out", AS_OF, cfg, raw_dir=make_shop(tmp_path, orders_csv=text)).report
    assert counts(report) == (5, 3, 2, 0)
    q = quarantine(tmp_path / "out")
    assert q[["source_row", "reason", "detail"]].values.tolist() == [
        ["3", "order_conflict", "order_id O1 first appears on row 1 with another customer_id"],
        ["5", "order_conflict", "order_id O2 first appears on row 4 with another order_date (2025-01-03 00:00:00)"]]


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
    "bad dates": ({"orders_csv": HEADER + rows(3) + "O9,C9,31/01/2025,5\n"}, 0,
                  "1 quarantined (rows 4): the date cannot be read. What to do: export ISO dates"),
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
