"""Platform presets (issue 16): clean.run on a Shopify and two WooCommerce exports (tests/exports.py).

Each fixture is cleaned once with ``columns.preset`` set (as_of 2025-06-30); the tests pin what the
cleaning must produce: kept orders, kept lines, net revenue, customers, marketing consent per e-mail,
quarantined and excluded rows, and that no e-mail leaves customers_clean.parquet.

Then the same exports as a user meets them: a whole month with ``--preset`` (all seven pages, rendered
in-process as conftest's `rendered_month` does; no e-mail in any artifact or report but customers_clean and the consented target list),
`retention validate --preset`, the same customer id across months, a file mixing currencies, a folder
without the platform's files and the wrong preset.
"""
from __future__ import annotations

import json

import exports
import pages
import pandas as pd
import pytest

from helpers import clean, cli
from helpers.config import config_from_dict
from helpers.contract import ContractError
from helpers.paths import project_root

FIXTURES = {
    "shopify": ("shopify", exports.shopify_export),
    "woocommerce_orders": ("woocommerce", exports.woocommerce_orders_export),
    "woocommerce_items": ("woocommerce", exports.woocommerce_items_export),
}


@pytest.fixture(scope="module", params=list(FIXTURES))
def cleaned(request, tmp_path_factory):
    """(processed folder, expected figures, CleanResult) of one fixture, cleaned once per module."""
    preset, write = FIXTURES[request.param]
    tmp = tmp_path_factory.mktemp(request.param)
    raw = tmp / "raw" / request.param
    expected = write(raw)
    processed = tmp / "processed" / request.param / "2025-06"
    cfg = config_from_dict({"columns": {"preset": preset}})
    run = clean.run(processed, exports.AS_OF, cfg, raw_dir=raw)
    return processed, expected, run


def _orders(processed) -> pd.DataFrame:
    return pd.read_parquet(processed / "orders_clean.parquet")


def _quality(processed) -> dict:
    return json.loads((processed / "data_quality.json").read_text(encoding="utf-8"))


def test_kept_orders_and_lines(cleaned):
    processed, expected, _ = cleaned
    orders = _orders(processed)
    assert orders.loc[~orders["is_return"].astype(bool), "order_id"].nunique() == expected["orders"]
    assert len(orders) == expected["lines_kept"]


def test_revenue(cleaned):
    """Net revenue: goods after discounts, without shipping and tax, less the refunded share."""
    processed, expected, _ = cleaned
    assert round(float(_orders(processed)["amount"].sum()), 2) == pytest.approx(expected["revenue"], abs=1e-9)


def test_revenue_is_exact_per_order(cleaned):
    """Each order's lines add up to whole cents (the split over lines loses nothing)."""
    processed, _, _ = cleaned
    per_order = _orders(processed).groupby("order_id")["amount"].sum()
    assert ((per_order * 100).round(6) % 1 == 0).all()


def test_customers(cleaned):
    """Case and blanks of an e-mail do not split a customer; a guest with a registered e-mail is that customer."""
    processed, expected, _ = cleaned
    assert _orders(processed)["customer_id"].nunique() == expected["customers"]


def test_consent_per_email(cleaned):
    processed, expected, _ = cleaned
    customers = pd.read_parquet(processed / "customers_clean.parquet")
    customers = customers[customers["email"].notna()]
    by_email = customers.assign(key=customers["email"].str.strip().str.lower())
    for email, flag in expected["consent"].items():
        rows = by_email[by_email["key"] == email]
        assert len(rows) == 1, f"{email}: {len(rows)} rows in customers_clean"
        assert bool(rows["marketing_opt_in"].iloc[0]) is flag, email


def test_quarantined_and_excluded(cleaned):
    processed, expected, _ = cleaned
    fr = _quality(processed)["files"]["orders"]
    assert fr["quarantined"] == {"missing_customer_id": expected["quarantined"]}
    assert fr["excluded"] == expected["excluded"]
    assert fr["rows_kept"] == expected["lines_kept"]
    assert fr["rows_raw"] == expected["lines_kept"] + expected["quarantined"] + sum(expected["excluded"].values())


def test_no_email_outside_customers_clean(cleaned):
    """Privacy: e-mails stay in customers_clean.parquet; every other file of the month is free of them."""
    processed, expected, _ = cleaned
    emails = {e.strip().lower() for e in expected["emails"]}
    checked = 0
    for path in sorted(p for p in processed.rglob("*") if p.is_file()):
        if path.name == "customers_clean.parquet":
            continue
        if path.suffix == ".parquet":
            text = pd.read_parquet(path).to_csv(index=False)
        else:
            text = path.read_bytes().decode("utf-8", errors="ignore")
        text = text.lower()
        leaked = sorted(e for e in emails if e in text)
        assert not leaked, f"{path.name} holds {leaked}"
        checked += 1
    assert checked >= 3  # orders_clean.parquet, quarantine.csv, data_quality.json at least


# ---------------------------------------------------------------------------------------------
# The same exports through a whole month (`retention run --preset ...`), and what a user meets around it

ROOT = project_root()
PAGES = ["01_clean.html", "02_kpis.html", "03_segments.html", "04_clv.html", "05_churn.html",
         "06_winback.html", "07_summary.html"]
MONTHS = {"shopify": "shopify", "woocommerce_orders": "woocommerce"}  # one export of each platform
# Shopify's month runs in the fast tier; WooCommerce's (14 s in-process) in the slow tier (make test-slow, CI): its
# reading and cleaning are checked in the fast tier above, and both months go through the same stages.
MONTH_PARAMS = ["shopify", pytest.param("woocommerce_orders", marks=pytest.mark.slow)]


def _month(rendered_month, name):
    """The platform's month with ``--preset`` as `retention run --preset` passes it, rendered in-process once
    per session (conftest `rendered_month`)."""
    return rendered_month(name, FIXTURES[name][1], as_of=exports.AS_OF, preset=MONTHS[name]).check()


@pytest.mark.parametrize("name", MONTH_PARAMS)
def test_a_platform_export_runs_to_a_full_report(rendered_month, name):
    month = _month(rendered_month, name)
    assert month.pages == PAGES
    orders = pd.read_parquet(month.processed / "orders_clean.parquet")
    assert round(float(orders["amount"].sum()), 2) == pytest.approx(month.truth["revenue"], abs=1e-9)
    # the notebooks read the config with the preset, kept beside the month's reports
    config = (month.reports / "config.yml").read_text(encoding="utf-8")
    assert f"preset: {MONTHS[name]}" in config


@pytest.mark.parametrize("name", MONTH_PARAMS)
def test_no_email_in_any_artifact_or_report_but_customers_clean_and_the_target_list(rendered_month, name):
    month = _month(rendered_month, name)
    emails = {e.strip().lower() for e in month.truth["emails"]}
    allowed = {"customers_clean.parquet", "winback_targets.csv", "contact_lists.csv"}
    files = [p for p in month.processed.parent.rglob("*") if p.is_file() and p.name not in allowed]
    files += [p for p in month.reports.rglob("*") if p.is_file()]
    assert len(files) > 20
    for path in files:
        text = (pd.read_parquet(path).to_csv(index=False) if path.suffix == ".parquet"
                else path.read_bytes().decode("utf-8", errors="ignore")).lower()
        leaked = sorted(e for e in emails if e in text)
        assert not leaked, f"{path} holds {leaked}"
    for lists in ("winback_targets.csv", "contact_lists.csv"):  # only consenting customers' e-mails, if any
        if (month.processed / lists).exists():
            listed = pd.read_csv(month.processed / lists)
            consent = month.truth["consent"]
            for email in listed.get("email", pd.Series(dtype=str)).dropna():
                assert consent[email.strip().lower()] is True, f"{lists} names a customer without consent"


def test_the_shopify_page_01_says_how_refunds_and_customers_were_read(rendered_month):
    month = _month(rendered_month, "shopify")
    page = pages.text(month.page_path("01"))
    assert "Read as a Shopify order export (columns.preset: shopify): 2 files" in page
    assert "Refunded Amount has no date: each refund is netted on its order's date" in page
    assert "orders_export_2.csv" in page  # the largest lines name their file


def test_one_person_keeps_one_customer_id_across_months(tmp_path):
    """The e-mail key is made once per shop: two months of the same shop give the same ids."""
    raw = tmp_path / "raw" / "shop"
    exports.shopify_export(raw)
    cfg = config_from_dict({"columns": {"preset": "shopify"}})
    ids = []
    for month, as_of in (("2025-05", "2025-05-31"), ("2025-06", "2025-06-30")):
        clean.run(tmp_path / "processed" / "shop" / month, as_of, cfg, raw_dir=raw)
        c = pd.read_parquet(tmp_path / "processed" / "shop" / month / "customers_clean.parquet")
        ids.append(dict(zip(c["email"].str.strip().str.lower(), c["customer_id"])))
    shared = set(ids[0]) & set(ids[1])
    assert shared and all(ids[0][e] == ids[1][e] for e in shared)
    assert all(v.startswith("e:") and "@" not in v for v in ids[1].values())
    key = tmp_path / "processed" / "shop" / "identity.key"
    assert oct(key.stat().st_mode & 0o777) == "0o600"


def _with_currency(raw, order: str, currency: str) -> None:
    """Rewrite one Shopify order's Currency (on its first row) in the export's parts."""
    for path in sorted(raw.glob("orders_export_*.csv")):
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        first = df.index[df["Name"] == order]
        if len(first):
            df.loc[first[0], "Currency"] = currency
            df.to_csv(path, index=False)


def test_a_file_mixing_currencies_stops_unless_the_config_has_a_rate(tmp_path):
    raw = tmp_path / "raw" / "shop"
    expected = exports.shopify_export(raw)
    _with_currency(raw, "#1002", "USD")
    cfg = config_from_dict({"columns": {"preset": "shopify"}})
    with pytest.raises(ContractError, match=r"mixes currencies \(EUR, USD\) and the config has no exchange rate for "
                                            r"USD; add shop.exchange_rates: \{USD: <value of 1 USD in EUR>\}"):
        clean.run(tmp_path / "processed" / "shop" / "2025-06", exports.AS_OF, cfg, raw_dir=raw)
    cfg = config_from_dict({"columns": {"preset": "shopify"}, "shop": {"exchange_rates": {"USD": 0.5}}})
    res = clean.run(tmp_path / "processed" / "shop" / "2025-06", exports.AS_OF, cfg, raw_dir=raw)
    orders = pd.read_parquet(tmp_path / "processed" / "shop" / "2025-06" / "orders_clean.parquet")
    usd = orders["currency"] == "USD"
    assert usd.any() and set(orders.loc[usd, "order_id"]) == {"#1002"}
    # #1002 (79.00) now counts half: revenue falls by 39.50
    assert round(float(orders["amount"].sum()), 2) == pytest.approx(expected["revenue"] - 39.50, abs=1e-9)
    assert any("1 USD = 0.5 EUR" in w for w in res.report["warnings"])


def test_a_folder_without_the_platform_files_stops_with_one_sentence(tmp_path):
    raw = tmp_path / "raw" / "shop"
    raw.mkdir(parents=True)
    (raw / "export.xlsx").write_bytes(b"")
    cfg = config_from_dict({"columns": {"preset": "shopify"}})
    with pytest.raises(ContractError, match=r"holds no Shopify order export: put the export there as it was "
                                            r"downloaded \(orders_export.csv or orders_export_\*.csv\) or as orders.csv"):
        clean.validate(raw, cfg)


def test_the_wrong_preset_names_the_missing_columns(tmp_path):
    raw = tmp_path / "raw" / "shop"
    exports.shopify_export(raw)
    (raw / "orders_export_1.csv").rename(raw / "orders.csv")
    (raw / "orders_export_2.csv").unlink()
    cfg = config_from_dict({"columns": {"preset": "woocommerce"}})
    with pytest.raises(ContractError, match=r"orders.csv is not a WooCommerce .* column 'order_id', 'date' or "
                                            r"'order_date', 'order_total' is missing"):
        clean.validate(raw, cfg)


def test_validate_with_preset_lists_the_columns_it_used_and_those_it_did_not(tmp_path, capsys):
    raw = tmp_path / "raw" / "shop"
    exports.shopify_export(raw)
    assert cli.main(["validate", "--raw", str(raw), "--preset", "shopify", "--as-of", exports.AS_OF]) == 0
    out = capsys.readouterr().out
    assert "Read as a Shopify order export (columns.preset: shopify): 2 files (orders_export_1.csv, " \
           "orders_export_2.csv)" in out
    assert "Columns used (20): Name -> order_id; Email -> customer_id (keyed hash)" in out
    assert "Columns not used (59): Paid at, Fulfillment Status" in out
    assert "2 quarantined (orders_export_1.csv row 3, orders_export_1.csv row 4)" in out  # rows in their own file
    assert not any(e.strip().lower() in out.lower() for e in exports.shopify_export(tmp_path / "again")["emails"])
    assert not (tmp_path / "processed").exists()
