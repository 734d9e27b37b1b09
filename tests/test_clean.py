"""Cleaning stage: every rule on a hand-built export, row accounting, encodings, clear errors; its page."""
from __future__ import annotations

import dataclasses
import json
import re
from datetime import datetime

import ibis
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import artifacts, clean, plots
from helpers.config import ConfigError, config_from_dict, load_config
from helpers.contract import ContractError
from helpers.engine import connect
from helpers.pages import clean as page

HEADER = "order_id,customer_id,order_date,amount,status,discount_amount,currency\n"
ROWS = [
    "O1,C1,2025-01-02 10:00:00,\"12,50\",completed,0,EUR",   # kept, decimal comma
    "O1,C1,2025-01-02 10:00:00,\"12,50\",completed,0,EUR",   # exact duplicate
    "O2,,2025-01-03,3,completed,,EUR",                        # missing customer
    "O3,C3,2025-13-45,5,completed,,EUR",                      # bad date
    "O4,C4,2025-01-04,abc,completed,,EUR",                    # bad amount
    "O5,TEST1,2025-01-04,5,test,,EUR",                        # test order
    "O6,C6,2025-01-04,\"1.234,50\",cancelled,,EUR",           # cancelled
    "O7,C7,2025-02-04,€ 20.00,returned,,EUR",                 # return written positive
    "O8,C8,2025-03-04,-7.5,completed,1,EUR",                  # return as negative line
    "O9,C9,2026-03-04,7.5,completed,1,EUR",                   # after as_of
    ",C10,2025-03-05,7.5,completed,1,EUR",                    # missing order id
]


@pytest.fixture()
def cfg():
    return load_config("config/default.yml")


@pytest.fixture()
def shop(tmp_path):
    raw = tmp_path / "raw" / "shop"
    raw.mkdir(parents=True)
    (raw / "orders.csv").write_text(HEADER + "\n".join(ROWS) + "\n", encoding="utf-8")
    (raw / "customers.csv").write_text(
        "customer_id,signup_date,email,gender,birth_year,region,marketing_opt_in\n"
        "C1,2024-12-01,a@example.com,f,1980,North,1\n"
        "C1,2024-12-02,a2@example.com,f,1980,North,1\n"
        ",2024-12-01,x@example.com,m,1990,South,0\n"
        "C7,2024-12-05,b@example.com,m,1850,South,yes\n"
        "L1,2025-01-05,lead@example.com,,2001,East,0\n",
        encoding="utf-8",
    )
    return raw


def test_every_row_is_kept_quarantined_or_excluded_with_its_reason(shop, cfg, tmp_path):
    report = clean.run(tmp_path / "out", "2025-03-31", cfg, raw_dir=shop).report
    orders = report["files"]["orders"]
    assert orders["rows_raw"] == 11
    assert orders["rows_kept"] == 3
    assert orders["quarantined"] == {"missing_order_id": 1, "missing_customer_id": 1, "bad_date": 1, "bad_amount": 1}
    assert orders["excluded"] == {"test_order": 1, "cancelled": 1, "after_as_of": 1, "duplicate_line": 1}


def test_an_export_in_several_currencies_needs_a_rate_only_for_the_currencies_of_kept_lines(tmp_path, cfg):
    # a shop's own export (not a platform's): a GBP line with a bad date, a CHF line in conflict with its order's
    # first line (another customer) and a JPY line after the cut-off are not kept, so only USD needs a rate
    raw = tmp_path / "raw" / "shop"
    raw.mkdir(parents=True)
    (raw / "orders.csv").write_text(HEADER + "\n".join([
        "O1,C1,2025-01-02,10,completed,,EUR", "O2,C2,2025-01-03,20,completed,,usd",
        "O3,C3,2025-13-45,5,completed,,GBP", "O4,C4,2025-01-05,5,completed,,EUR", "O4,C5,2025-01-05,6,completed,,CHF",
        "O9,C9,2026-03-04,7.5,completed,,JPY"]) + "\n", encoding="utf-8")
    with pytest.raises(ContractError, match=r"orders.csv mixes currencies \(EUR, USD\) and the config has no exchange "
                                            r"rate for USD;"):
        clean.run(tmp_path / "out", "2025-01-31", cfg, raw_dir=raw)
    cfg = config_from_dict({"shop": {"exchange_rates": {"USD": 0.5}}})  # as a shop would set it
    res = clean.run(tmp_path / "out", "2025-01-31", cfg, raw_dir=raw)
    orders = pd.read_parquet(tmp_path / "out" / "orders_clean.parquet")
    assert dict(zip(orders["order_id"], orders["amount"])) == {"O1": 10.0, "O2": 10.0, "O4": 5.0}
    assert any("1 USD = 0.5 EUR" in w for w in res.report["warnings"])
    report = res.report["files"]["orders"]
    assert (report["rows_raw"], report["rows_kept"]) == (6, 3)
    assert report["quarantined"] == {"bad_date": 1, "order_conflict": 1}
    assert report["excluded"] == {"after_as_of": 1}


def test_quarantine_file_lists_each_unusable_row_with_file_row_and_reason(shop, cfg, tmp_path):
    clean.run(tmp_path / "out", "2025-03-31", cfg, raw_dir=shop)
    q = pd.read_csv(tmp_path / "out" / "quarantine.csv", dtype=str, keep_default_na=False)
    got = set(zip(q["file"], q["source_row"].astype(int), q["reason"]))
    assert got == {("orders.csv", 3, "missing_customer_id"), ("orders.csv", 4, "bad_date"),
                   ("orders.csv", 5, "bad_amount"), ("orders.csv", 11, "missing_order_id"),
                   ("customers.csv", 3, "missing_customer_id")}


def test_decimal_comma_and_currency_signs_parse_and_returns_are_negative(shop, cfg, tmp_path):
    clean.run(tmp_path / "out", "2025-03-31", cfg, raw_dir=shop)
    o = pd.read_parquet(tmp_path / "out" / "orders_clean.parquet").set_index("order_id")
    assert o.loc["O1", "amount"] == 12.50
    assert o.loc["O7", "amount"] == -20.0 and o.loc["O7", "is_return"]
    assert o.loc["O8", "amount"] == -7.5 and o.loc["O8", "is_return"]
    assert not o.loc["O1", "is_return"]
    assert str(o["order_date"].dtype).startswith("datetime64")


def test_data_quality_json_adds_up_and_names_no_machine_path(shop, cfg, tmp_path):
    clean.run(tmp_path / "out", "2025-03-31", cfg, raw_dir=shop)
    text = (tmp_path / "out" / "data_quality.json").read_text()
    dq = json.loads(text)
    for fr in dq["files"].values():
        assert fr["rows_raw"] == fr["rows_kept"] + sum(fr["quarantined"].values()) + sum(fr["excluded"].values())
    assert str(tmp_path) not in text
    assert dq["orders"]["revenue_net"] == round(12.5 - 20 - 7.5, 2)


def test_customers_are_deduplicated_and_leads_counted(shop, cfg, tmp_path):
    report = clean.run(tmp_path / "out", "2025-03-31", cfg, raw_dir=shop).report
    c = pd.read_parquet(tmp_path / "out" / "customers_clean.parquet").set_index("customer_id")
    assert sorted(c.index) == ["C1", "C7", "L1"]
    assert c.loc["C1", "email"] == "a@example.com"  # first row wins
    assert pd.isna(c.loc["C7", "birth_year"])       # 1850 is not a plausible birth year
    assert bool(c.loc["C7", "marketing_opt_in"]) and not bool(c.loc["L1", "marketing_opt_in"])
    assert report["files"]["customers"]["excluded"] == {"duplicate_customer": 1}
    # L1 never ordered; C7 only returned something (a return is no purchase: customer_facts' definition of a lead)
    assert report["customers"]["leads_without_order"] == 2


@pytest.mark.parametrize("text,expected", [
    ("12.50", 12.5), ("12,50", 12.5), ("1.234,50", 1234.5), ("1,234.50", 1234.5), ("1,234", 1234.0),
    ("€ 12.50", 12.5), ("12.50 EUR", 12.5), ("-3,5", -3.5), ("", None), ("abc", None), ("12-3", None),
    ("1 234,50", 1234.5), ("1'234.50", 1234.5), ("-€ 5.00", -5.0), ("1.5e3", 1500.0), ("12abc34", None),
    ("inf", None), ("NaN", None), ("1e400", None), ("12 Kč", 12.0),
])
def test_amounts_are_read_as_shops_write_them(text, expected):
    t = ibis.memtable({"s": [text]}, schema={"s": "string"})
    got = connect().execute(clean.parse_amount(t.s).name("v")).iloc[0]
    assert (pd.isna(got) and expected is None) or got == pytest.approx(expected)


@pytest.mark.parametrize("text,decimal,expected", [
    ("1.234", ",", 1234.0), ("1.234", "auto", 1.234), ("1.234", ".", 1.234), ("-12", ",", -12.0),
    ("007.50", "auto", 7.5), ("-0.5", ".", -0.5), ("12.", "auto", 12.0), (".5", "auto", 0.5),
])
def test_plain_numbers_follow_the_decimal_setting(text, decimal, expected):
    # a plain number is read without the shop-format rules, except where "," makes its dot a thousands mark
    t = ibis.memtable({"s": [text]}, schema={"s": "string"})
    assert connect().execute(clean.parse_amount(t.s, decimal).name("v")).iloc[0] == pytest.approx(expected)


@pytest.mark.parametrize("text,fmt,expected", [
    ("2025-01-31", None, "2025-01-31 00:00:00"), ("2025-01-31 14:05:00", None, "2025-01-31 14:05:00"),
    ("2025-13-45", None, None), ("not a date", None, None),
    ("31.01.2025", "%d.%m.%Y", "2025-01-31 00:00:00"), ("45.13.2025", "%d.%m.%Y", None),
    ("1/2/25 9:05", "%m/%d/%y %H:%M", "2025-01-02 09:05:00"),
    ("2025-01-31T14:05:00+02:00", None, "2025-01-31 14:05:00"), ("2025-01-31 14:05Z", None, "2025-01-31 14:05:00"),
    ("2025-01-31", "%d.%m.%Y", "2025-01-31 00:00:00"),  # ISO is read besides the configured format
    ("2025-02-30 10:00:00", None, None), ("2025-1-31 14:05:00", None, "2025-01-31 14:05:00"),
    ("2025/01/31", None, None), ("infinity", None, None), ("epoch", None, None), ("0000-01-01", None, None),
    ("1/31/2025 12:05 AM", "%m/%d/%Y %I:%M %p", "2025-01-31 00:05:00"),  # a 12-hour clock: midnight is 12 AM
    ("1/31/2025 12:05 PM", "%m/%d/%Y %I:%M %p", "2025-01-31 12:05:00"),
    ("1/31/2025 7:05 pm", "%m/%d/%Y %I:%M %p", "2025-01-31 19:05:00"),
    ("1/31/2025 7:05 p.m.", "%m/%d/%Y %I:%M %p", "2025-01-31 19:05:00"),
    ("1/31/2025 13:05 PM", "%m/%d/%Y %I:%M %p", None), ("1/31/2025 0:05 AM", "%m/%d/%Y %I:%M %p", None),
])
def test_dates_are_read_or_become_null_never_an_error(text, fmt, expected):
    t = ibis.memtable({"s": [text]}, schema={"s": "string"})
    got = connect().execute(clean.parse_timestamp(t.s, fmt).name("v")).iloc[0]
    assert (pd.isna(got) and expected is None) or str(pd.Timestamp(got)) == expected


# strftime patterns that cannot be misread: a year, month and day in any order between separators, and a
# time of day on a 24-hour or a 12-hour clock (or none); strftime pads, so each field's width is known.
DATE_ORDERS = [("%Y", "%m", "%d"), ("%d", "%m", "%Y"), ("%m", "%d", "%Y"), ("%d", "%m", "%y"), ("%m", "%d", "%y"),
               ("%y", "%m", "%d")]
TIMES = ["", " %H:%M", " %H:%M:%S", "T%H:%M", " %I:%M %p", " %I:%M:%S %p", " %I:%M%p"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(order=st.sampled_from(DATE_ORDERS), sep=st.sampled_from(["-", "/", ".", " ", ""]),
       time=st.sampled_from(TIMES),
       moments=st.lists(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31, 23, 59, 59)),
                        min_size=1, max_size=12))
def test_any_unambiguous_date_format_reads_back_every_moment_it_wrote(order, sep, time, moments):
    fmt = sep.join(order) + time
    config_from_dict({"cleaning": {"date_format": fmt}})  # the config accepts every such format
    kept = {"%S": "second", "%M": "minute"}
    expected = [m.replace(microsecond=0, **{v: 0 for k, v in kept.items() if k not in fmt},
                          **({} if "%H" in fmt or "%I" in fmt else {"hour": 0})) for m in moments]
    t = ibis.memtable({"s": [m.strftime(fmt) for m in moments]}, schema={"s": "string"})
    got = connect().execute(clean.parse_timestamp(t.s, fmt).name("v"))
    assert [pd.Timestamp(g).to_pydatetime() for g in got] == expected, [m.strftime(fmt) for m in moments]


@pytest.mark.parametrize("fmt,why", [
    ("%d.%m", "needs a year, month and day"), ("%d.%m.%Y %I:%M", "needs both %I and %p"),
    ("%d.%m.%Y %H:%M %p", "needs both %I and %p"), ("%d.%b.%Y", "unknown code %b"), ("%d.%m.%Y %d", "twice"),
])
def test_a_date_format_that_would_be_misread_is_refused_in_one_sentence(fmt, why):
    with pytest.raises(ConfigError, match=f"cleaning.date_format must be .*{re.escape(why)}"):
        config_from_dict({"cleaning": {"date_format": fmt}})


def test_cleaning_rules_run_on_an_in_memory_table_through_the_engine(cfg):
    raw = ibis.memtable(pd.DataFrame({
        "order_id": ["A", "B", "C"], "customer_id": ["X", "Y", "Z"],
        "order_date": ["2025-01-01", "2025-01-02", "2025-02-30"], "amount": ["1", "2", "3"],
        "source_row": [1, 2, 3]}))
    tagged = clean.tag_orders(raw, "2025-03-31", cfg.cleaning)
    reasons = connect(cfg.engine).execute(tagged.order_by("source_row").reason).tolist()
    assert [r if isinstance(r, str) else None for r in reasons] == [None, None, "bad_date"]


def test_column_map_translates_a_shops_own_export_names(tmp_path):
    raw = tmp_path / "shopify"
    raw.mkdir()
    (raw / "orders.csv").write_text("Name,Email,Created at,Total\n#1001,a,2025-01-01,10.00\n", encoding="utf-8")
    cfg = config_from_dict({"columns": {"orders": {"Name": "order_id", "Email": "customer_id",
                                                   "Created at": "order_date", "Total": "amount"}}})
    report = clean.run(tmp_path / "out", "2025-01-31", cfg, raw_dir=raw).report
    assert report["files"]["orders"]["rows_kept"] == 1


def test_missing_required_column_is_one_sentence_naming_file_and_column(tmp_path, cfg):
    raw = tmp_path / "bad"
    raw.mkdir()
    (raw / "orders.csv").write_text("order_id,order_date,amount\nO1,2025-01-01,1\n", encoding="utf-8")
    with pytest.raises(ContractError, match=r"orders.csv: required column 'customer_id' is missing"):
        clean.run(tmp_path / "out", "2025-03-31", cfg, raw_dir=raw)


def test_missing_orders_file_says_where_it_was_expected(tmp_path, cfg):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ContractError, match=r"orders.csv is missing"):
        clean.run(tmp_path / "out", "2025-03-31", cfg, raw_dir=tmp_path / "empty")


def test_cp1250_export_is_read_with_a_warning(tmp_path, cfg):
    raw = tmp_path / "cz"
    raw.mkdir()
    (raw / "orders.csv").write_bytes((HEADER + "O1,Čapek,2025-01-02,\"10,00\",completed,0,CZK\n").encode("cp1250"))
    report = clean.run(tmp_path / "out", "2025-01-31", cfg, raw_dir=raw).report
    assert report["files"]["orders"]["encoding"] == "cp1250"
    assert any("not UTF-8" in w for w in report["warnings"])
    assert pd.read_parquet(tmp_path / "out" / "orders_clean.parquet")["customer_id"].tolist() == ["Čapek"]


def test_utf8_with_bom_reads_the_first_column(tmp_path, cfg):
    raw = tmp_path / "bom"
    raw.mkdir()
    (raw / "orders.csv").write_bytes(("\ufeff" + HEADER + "O1,C1,2025-01-02,10,completed,0,EUR\n").encode("utf-8"))
    assert clean.run(tmp_path / "out", "2025-01-31", cfg, raw_dir=raw).report["files"]["orders"]["rows_kept"] == 1


def test_parquet_export_is_cleaned_like_csv(tmp_path, cfg):
    raw = tmp_path / "pq"
    raw.mkdir()
    pd.DataFrame({"order_id": ["O1", "O2"], "customer_id": ["C1", None],
                  "order_date": pd.to_datetime(["2025-01-01", "2025-01-02"]), "amount": [10.0, 5.0]}
                 ).to_parquet(raw / "orders.parquet")
    report = clean.run(tmp_path / "out", "2025-01-31", cfg, raw_dir=raw).report
    assert report["files"]["orders"]["rows_kept"] == 1
    assert report["files"]["orders"]["quarantined"] == {"missing_customer_id": 1}


def test_same_input_gives_byte_identical_artifacts(shop, cfg, tmp_path):
    clean.run(tmp_path / "a", "2025-03-31", cfg, raw_dir=shop)
    clean.run(tmp_path / "b", "2025-03-31", cfg, raw_dir=shop)
    for name in ("orders_clean.parquet", "customers_clean.parquet", "quarantine.csv", "data_quality.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_validate_writes_nothing(shop, cfg, tmp_path):
    before = sorted(p.name for p in tmp_path.rglob("*"))
    report = clean.validate(shop, cfg, as_of="2025-03-31")
    assert report["files"]["orders"]["rows_raw"] == 11
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_latest_order_date_ignores_unreadable_dates(shop, cfg):
    assert clean.latest_order_date(shop, cfg) == "2026-03-04"


def test_the_page_shows_the_same_tables_from_the_result_as_from_its_report(shop, cfg, tmp_path):
    res = clean.run(tmp_path / "out", "2025-03-31", cfg, raw_dir=shop)
    pd.testing.assert_frame_equal(page.accounting_table(res), page.accounting_table(res.report))
    pd.testing.assert_frame_equal(page.customers_table(res), page.customers_table(res.report))
    assert page.takeaway(res) == page.takeaway(res.report)
    assert page.warnings_text(res) == page.warnings_text(res.report)
    assert res.report == artifacts.read(tmp_path / "out", "data_quality")


def test_the_result_holds_frames_and_numbers_and_no_engine_object(shop, cfg, tmp_path):
    res = clean.run(tmp_path / "out", "2025-03-31", cfg, raw_dir=shop)
    held = {f.name: type(getattr(res, f.name)) for f in dataclasses.fields(res)}
    assert set(held.values()) <= {dict, str, float, type(None), pd.DataFrame}, held
    assert not [name for name, value in vars(clean.CleanResult).items() if callable(value) and not name.startswith("_")]
    assert res.largest["row"].tolist() == [1, 9, 8]  # O1 12.50, then the returns O8 -7.50 and O7 -20.00
    assert (res.largest_purchase, res.median_purchase) == (12.5, 12.5)


def test_written_artifacts_match_their_declarations(shop, cfg, tmp_path):
    out = tmp_path / "out"
    clean.run(out, "2025-03-31", cfg, raw_dir=shop)
    for name in ("orders_clean", "customers_clean", "quarantine"):
        artifacts.check(name, artifacts.read(out, name))


def test_monthly_lines_count_lines_orders_and_net_revenue_per_month(shop, cfg, tmp_path):
    res = clean.run(tmp_path / "out", "2025-03-31", cfg, raw_dir=shop)
    m = res.monthly
    # O1 12.50 in January; O7 returned (-20) in February; O8 a return line (-7.5) in March.
    assert m["month"].tolist() == ["2025-01", "2025-02", "2025-03"]
    assert m["revenue_net"].tolist() == [12.5, -20.0, -7.5]
    assert m["return_lines"].tolist() == [0, 1, 1]
    table = page.monthly_table(res, 2)
    assert table.index.tolist() == ["2025-02", "2025-03"]
    # for a reader: no internal names, money with its currency, the March return line as -7.50 net
    assert plots.unreadable_names(table) == []
    assert table.loc["2025-03", f"net revenue ({cfg.shop.currency})"] == plots.format_cell(-7.5, "money")
    assert table.loc["2025-03", "orders (with a purchase)"] == "0"  # a return alone is not an order


def test_monthly_lines_are_those_of_the_written_artifacts(shop, cfg, tmp_path):
    res = clean.run(tmp_path / "out", "2025-03-31", cfg, raw_dir=shop)
    written = clean.monthly_lines(artifacts.table(connect(cfg.engine), tmp_path / "out", "orders_clean"))
    pd.testing.assert_frame_equal(res.monthly, written)


def test_run_without_a_folder_to_write_to_points_to_validate(shop, cfg):
    with pytest.raises(ValueError, match="needs a processed_dir; clean.validate checks the raw exports"):
        clean.run(None, "2025-03-31", cfg, raw_dir=shop)


# --------------------------------------------------------------------------- on the demo shop

@pytest.fixture(scope="module")
def small_demo_shop(tmp_path_factory):
    """A 2,000-customer shop of the demo generator (seed 7; conftest's `demo_raw` is the 20,000-customer demo
    shop): its dirt (duplicates, test orders, bad dates) is what these tests count."""
    from helpers import demo

    raw = tmp_path_factory.mktemp("raw") / "demo"
    truth = demo.generate(raw, customers=2_000, seed=7)
    return raw, truth


def test_demo_dirt_lands_in_quarantine_or_exclusion_with_the_right_reason(small_demo_shop, cfg, tmp_path):
    raw, truth = small_demo_shop
    report = clean.run(tmp_path / "out", truth["end"], cfg, raw_dir=raw).report
    orders = report["files"]["orders"]
    dirt = truth["dirt"]
    assert orders["quarantined"] == {"missing_customer_id": dirt["missing_customer_id"], "bad_date": dirt["bad_date"]}
    assert orders["excluded"] == {"test_order": dirt["test_order"], "cancelled": dirt["cancelled"],
                                  "duplicate_line": dirt["duplicate_line"]}
    assert orders["rows_kept"] == truth["rows"]["clean_lines"] + truth["rows"]["return_lines"]
    dirty = sum(orders["quarantined"].values()) + sum(orders["excluded"].values())
    assert 0.01 <= dirty / orders["rows_raw"] <= 0.03  # "about 2%" of rows are dirt


def test_demo_net_revenue_matches_an_independent_pandas_reading(small_demo_shop, cfg, tmp_path):
    raw, truth = small_demo_shop
    clean.run(tmp_path / "out", truth["end"], cfg, raw_dir=raw)
    df = pd.read_csv(raw / "orders.csv", dtype=str, keep_default_na=False)
    ok = (df.status.isin(["completed", "returned"]) & (df.customer_id != "")
          & pd.to_datetime(df.order_date, errors="coerce", format="%Y-%m-%d %H:%M:%S").notna()
          & ~df.customer_id.str.startswith("TEST"))
    df = df[ok].drop_duplicates()
    expected = df.amount.str.replace(",", ".").astype(float).sum()
    got = pd.read_parquet(tmp_path / "out" / "orders_clean.parquet").amount.sum()
    assert got == pytest.approx(expected, abs=0.01)


# --------------------------------------------------------------------------- every cleaning setting does what it says
# Each case: the setting changed, a file built for it, and what the cleaning must then do (the reasons
# excluded or quarantined, and the kept lines' amounts); the same file with the default config does otherwise.
S_HEADER = "order_id,customer_id,order_date,amount,status\n"
SETTING_CASES = {
    # a Danish shop's Windows export: byte F8 is "ø" in cp1252 and "ř" in cp1250, the first default fallback
    "encoding_fallbacks": ({"encoding_fallbacks": ["cp1252"]}, (S_HEADER + "O1,C1,2025-01-02,10.00,completed\n"
                           "O2,Søren,2025-01-03,5.00,completed\n").encode("cp1252"), {}, [10.0, 5.0], ["C1", "Søren"]),
    "decimal_separator": ({"decimal_separator": ","}, S_HEADER + "O1,C1,2025-01-02,1.250,completed\n", {}, [1250.0], None),
    "test_statuses": ({"test_statuses": ["test", "probe"]}, S_HEADER + "O1,C1,2025-01-02,5,probe\n"
                      "O2,C2,2025-01-02,5,completed\n", {"test_order": 1}, [5.0], None),
    "cancelled_statuses": ({"cancelled_statuses": ["storno"]}, S_HEADER + "O1,C1,2025-01-02,5,storno\n"
                           "O2,C2,2025-01-02,5,completed\n", {"cancelled": 1}, [5.0], None),
    "returned_statuses": ({"returned_statuses": ["retour"]}, S_HEADER + "O1,C1,2025-01-02,5,completed\n"
                          "O1,C1,2025-01-09,5,retour\n", {}, [5.0, -5.0], None),
    "unpaid_statuses": ({"unpaid_statuses": ["awaiting payment"]}, S_HEADER + "O1,C1,2025-01-02,5,awaiting payment\n"
                        "O2,C2,2025-01-02,5,completed\n", {"unpaid": 1}, [5.0], None),
    "test_customer_prefixes": ({"test_customer_prefixes": ["qa-"]}, S_HEADER + "O1,QA-7,2025-01-02,5,completed\n"
                               "O2,C2,2025-01-02,5,completed\n", {"test_order": 1}, [5.0], None),
    "completed_status_if_missing": ({"completed_status_if_missing": "pending"}, S_HEADER +
                                    "O1,C1,2025-01-02,5,\nO2,C2,2025-01-02,7,completed\n", {"unpaid": 1}, [7.0], None),
    "min_order_date": ({"min_order_date": "2025-01-10"}, S_HEADER + "O1,C1,2025-01-02,5,completed\n"
                       "O2,C2,2025-01-12,7,completed\n", {"before_min_order_date": 1}, [7.0], None),
    "max_line_amount": ({"max_line_amount": 100.0}, S_HEADER + "O1,C1,2025-01-02,5000,completed\n"
                        "O2,C2,2025-01-12,7,completed\n", {"above_max_line_amount": 1}, [7.0], None),
    "fold_id_case": ({"fold_id_case": True}, S_HEADER + "O1,Anna,2025-01-02,5,completed\n"
                     "O2,ANNA ,2025-01-12,7,completed\n", {}, [5.0, 7.0], ["anna", "anna"]),
    "date_format": ({"date_format": "%m/%d/%Y %I:%M %p"}, S_HEADER + "O1,C1,1/2/2025 9:15 PM,5,completed\n"
                    "O2,C2,2025-01-03,7,completed\nO3,C3,03.01.2025,9,completed\n", {"bad_date": 1}, [5.0, 7.0], None),
}


# Settings whose behaviour is shown by their own tests in tests/test_robustness.py (a file built for each).
TESTED_IN_ROBUSTNESS = {"excel_sheet",  # test_the_sheet_named_in_cleaning_excel_sheet_is_read_and_...
                        "status_map",  # test_status_map_maps_a_shops_own_status_words_to_the_known_statuses
                        "order_time_tolerance_hours"}  # test_order_time_tolerance_hours_decides_how_far_apart_...


def test_every_documented_cleaning_setting_has_a_case():
    documented = set(load_config("config/default.yml").cleaning.model_fields)
    assert set(SETTING_CASES) | TESTED_IN_ROBUSTNESS == documented


@pytest.mark.parametrize("setting", list(SETTING_CASES))
def test_each_cleaning_setting_does_what_it_says_on_a_file_built_for_it(tmp_path, setting):
    changes, content, reasons, amounts, customers = SETTING_CASES[setting]
    raw = tmp_path / "raw" / "shop"
    raw.mkdir(parents=True)
    (raw / "orders.csv").write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))

    def cleaned(cleaning: dict):
        out = tmp_path / ("set" if cleaning else "default")
        report = clean.run(out, "2025-01-31", config_from_dict({"cleaning": cleaning}), raw_dir=raw).report
        f = report["files"]["orders"]
        kept = pd.read_parquet(out / "orders_clean.parquet").sort_values("source_row")
        return {**f["quarantined"], **f["excluded"]}, kept["amount"].round(2).tolist(), kept["customer_id"].tolist()

    got_reasons, got_amounts, got_customers = cleaned(changes)
    assert (got_reasons, got_amounts) == (reasons, amounts)
    if customers is not None:
        assert got_customers == customers
    assert cleaned({}) != (got_reasons, got_amounts, got_customers), "the setting changes nothing on its file"


# --------------------------------------------------------------------------- the cleaned history, reused

def _year_of_orders(raw):
    """Twelve months of a small shop, with what a cut-off decides: a duplicate line, an order whose lines name
    two customers, one written on two days (a conflict only once both days are in), a line far in the future."""
    rows = [f"O{m}{k},C{k},2025-{m:02d}-{10 + k:02d} 10:00:00,{m + k}.50,completed" for m in range(1, 13)
            for k in range(1, 4)]
    rows += ["O11,C1,2025-01-11 10:00:00,2.50,completed", "O52,C9,2025-05-12 12:00:00,3,completed",
             "O83,C3,2025-09-20 10:00:00,4,completed", "O99,C9,2027-01-01,5,completed"]
    (raw / "orders.csv").write_text("order_id,customer_id,order_date,amount,status\n" + "\n".join(rows) + "\n")
    (raw / "customers.csv").write_text("customer_id,signup_date\nC1,2024-12-01\nC2,2025-03-01\nC3,2025-08-01\n")


def _month_files(folder):
    return {name: (folder / name).read_bytes() for name in
            ("orders_clean.parquet", "customers_clean.parquet", "quarantine.csv", "data_quality.json")}


@pytest.fixture()
def tag_calls(monkeypatch):
    """How often the order lines were tagged (clean.tag_order_history called)."""
    calls = []
    tag = clean.tag_order_history
    monkeypatch.setattr(clean, "tag_order_history", lambda *a, **k: calls.append(1) or tag(*a, **k))
    return calls


@pytest.mark.slow  # 15 cleans, about 9 s: make test-slow
def test_a_twelve_month_backfill_tags_the_order_lines_once_and_each_month_equals_a_fresh_clean(tmp_path, cfg,
                                                                                             tag_calls):
    raw = tmp_path / "raw" / "shop"
    raw.mkdir(parents=True)
    _year_of_orders(raw)
    months = [str(pd.Timestamp(f"2025-{m:02d}-01") + pd.offsets.MonthEnd(0))[:10] for m in range(1, 13)]
    for as_of in months:
        clean.run(tmp_path / "backfill" / as_of[:7], as_of, cfg, raw_dir=raw)
    assert len(tag_calls) == 1
    assert len(list((tmp_path / "backfill" / artifacts.HISTORY).iterdir())) == 1  # one entry per shop
    checked = [months[0], months[4], months[-1]]  # no conflict yet, O52's arrives, both in
    for as_of in checked:  # each cleaned afresh, in a shop folder of its own
        fresh = tmp_path / f"fresh-{as_of}" / as_of[:7]
        clean.run(fresh, as_of, cfg, raw_dir=raw)
        assert _month_files(tmp_path / "backfill" / as_of[:7]) == _month_files(fresh), as_of
    assert len(tag_calls) == 1 + len(checked)
    files = [json.loads((tmp_path / "backfill" / m[:7] / "data_quality.json").read_text())["files"]["orders"]
             for m in months]
    assert [f["excluded"]["duplicate_line"] for f in files] == [1] * 12
    # O52's other customer comes in with May, O83's line five weeks late with September
    assert [f["quarantined"].get("order_conflict", 0) for f in files] == [0] * 4 + [1] * 4 + [2] * 4


def test_one_raw_byte_or_one_cleaning_setting_changed_tags_again(tmp_path, cfg, tag_calls):
    raw = tmp_path / "raw" / "shop"
    raw.mkdir(parents=True)
    _year_of_orders(raw)
    out = tmp_path / "out" / "2025-12"
    clean.run(out, "2025-12-31", cfg, raw_dir=raw)
    clean.run(out, "2025-12-31", cfg, raw_dir=raw)
    assert len(tag_calls) == 1
    entries = list((tmp_path / "out" / artifacts.HISTORY).iterdir())
    text = (raw / "orders.csv").read_text()
    (raw / "orders.csv").write_text(text.replace("1.50,", "1.60,", 1))
    clean.validate(raw, cfg, as_of="2025-12-31")  # tags in a temporary folder and keeps nothing
    assert len(tag_calls) == 2 and list((tmp_path / "out" / artifacts.HISTORY).iterdir()) == entries
    clean.run(out, "2025-12-31", cfg, raw_dir=raw)
    assert len(tag_calls) == 3
    clean.run(out, "2025-12-31", config_from_dict({"cleaning": {"max_line_amount": 14}}), raw_dir=raw)
    assert len(tag_calls) == 4
    assert len(list((tmp_path / "out" / artifacts.HISTORY).iterdir())) == 1


def test_a_changed_tagging_code_tags_again(tmp_path, cfg, tag_calls, monkeypatch):
    """The tagging code's source is part of the key: an upgrade that changes a rule cleans afresh by itself."""
    raw = tmp_path / "raw" / "shop"
    raw.mkdir(parents=True)
    _year_of_orders(raw)
    code = tmp_path / "clean_code.py"
    code.write_text("# a rule\n")
    monkeypatch.setattr(clean, "_TAGGING_CODE", (code,))
    out = tmp_path / "out" / "2025-12"
    clean.run(out, "2025-12-31", cfg, raw_dir=raw)
    clean.run(out, "2025-12-31", cfg, raw_dir=raw)
    assert len(tag_calls) == 1
    code.write_text("# a rule, changed\n")
    clean.run(out, "2025-12-31", cfg, raw_dir=raw)
    assert len(tag_calls) == 2


GUEST_ROWS = [
    "G1,,2025-01-10,40,completed,,EUR",        # a guest checkout: counted
    "G1,,2025-01-10,10,completed,,EUR",        # its second line: one order
    "G2,,2025-02-11,-5,returned,,EUR",         # a guest's return: subtracts
    "G3,,2025-01-12,99,cancelled,,EUR",        # cancelled: no revenue
    "G4,,2025-13-45,77,completed,,EUR",        # unreadable date: no month to put it in
    "G5,,2025-04-02,55,completed,,EUR",        # after the cut-off
]


def test_guest_lines_are_quarantined_yet_their_revenue_is_written_per_month(tmp_path, cfg):
    """A real shop: 22.5 % of the month's revenue came from orders without a customer id and vanished."""
    raw = tmp_path / "raw" / "guests"
    raw.mkdir(parents=True)
    (raw / "orders.csv").write_text(HEADER + "\n".join([ROWS[0], ROWS[8], *GUEST_ROWS]) + "\n", encoding="utf-8")
    res = clean.run(tmp_path / "out", "2025-03-31", cfg, raw_dir=raw)
    assert res.report["files"]["orders"]["quarantined"]["missing_customer_id"] == 6  # still counted as unusable
    guests = artifacts.read(tmp_path / "out", "guest_revenue")
    assert guests.values.tolist() == [["2025-01", 2, 1, 50.0], ["2025-02", 1, 1, -5.0]]


def test_the_marketing_spend_file_is_cleaned_and_every_row_accounted(shop, cfg, tmp_path):
    """month as 'YYYY-MM' or a date in it, spend as shops write amounts; a bad row is quarantined with its reason
    and a month after as_of's excluded, never dropped silently."""
    (shop / "marketing_spend.csv").write_text(
        "month,channel,spend\n2025-01,web,1200\n2025-02-15,web,\"1.100,50\"\n2025-03,app,-5\n2025-03,,40\n"
        "March,web,10\n2025-04,web,99\n2025-03,app,#N/A\n", encoding="utf-8")
    report = clean.run(tmp_path / "out", "2025-03-31", cfg, raw_dir=shop).report
    spend = report["files"]["marketing_spend"]
    assert spend["rows_raw"] == 7 and spend["rows_kept"] == 2
    assert spend["quarantined"] == {"spreadsheet_error": 1, "bad_date": 1, "missing_channel": 1, "bad_spend": 1}
    assert spend["excluded"] == {"after_as_of": 1}
    kept = artifacts.read(tmp_path / "out", "marketing_spend_clean")
    assert kept["month"].dt.strftime("%Y-%m").tolist() == ["2025-01", "2025-02"]
    assert kept["spend"].tolist() == [1200.0, 1100.5]
