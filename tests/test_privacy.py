"""Privacy: reports are e-mailed around, so no e-mail address, customer name or raw customer id may appear
in a rendered HTML report or a committed notebook output; lists meant for spreadsheets escape formulas.

The ids, e-mails and names searched for are the shop's own, read from its raw customers.csv and
orders.csv, and matched as whole tokens (so C000012 does not match inside C0000123 or a base64 image).
"""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pandas as pd
import pytest

import months
import pages
import shops
from helpers import artifacts
from helpers.paths import project_root
from helpers.runner import run_month

ROOT = project_root()
TOKEN = re.compile(r"[\w@.+'=|!-]+")
EMAIL = re.compile(r"[\w.+'=-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"^-?\d*\.?\d+([eE][-+]?\d+)?$")


def shop_identities(raw: Path) -> dict[str, set[str]]:
    """The customer ids (customers.csv and orders.csv), e-mails and name parts of a raw shop."""
    customers = pd.read_csv(raw / "customers.csv", dtype=str)
    orders = pd.read_csv(raw / "orders.csv", usecols=["customer_id"], dtype=str)
    names = set()
    for col in ("first_name", "last_name", "name"):
        if col in customers:
            names |= {part for v in customers[col].dropna() for part in v.split() if len(part) > 3}
    return {"customer id": set(customers["customer_id"].dropna()) | set(orders["customer_id"].dropna()),
            "e-mail": set(customers["email"].dropna()), "name": names}


def leaks(text: str, identities: dict[str, set[str]]) -> dict[str, list[str]]:
    """What of the shop's identities a text shows: whole tokens, plus anything that looks like an e-mail."""
    tokens = set(TOKEN.findall(text)) | set(text.split())
    tokens |= {t.strip(".,;:!?()[]{}'\"") for t in tokens}  # an id at the end of a sentence: "... C000012."
    found = {kind: sorted(tokens & values)[:5] for kind, values in identities.items()}
    looks_like_email = {m.group() for t in tokens if "@" in t for m in [EMAIL.search(t)] if m}
    found["e-mail"] = sorted(set(found["e-mail"]) | looks_like_email)[:5]
    return {kind: hits for kind, hits in found.items() if hits}


def output_text(notebook: Path) -> str:
    """Every output of a notebook as text (tables, printed text, Markdown, errors), images left out."""
    parts = []
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        for out in cell.get("outputs", []):
            parts += [out.get("text", ""), out.get("evalue", ""), *out.get("traceback", [])]
            for kind, value in out.get("data", {}).items():
                if not kind.startswith("image/"):
                    parts.append(value if isinstance(value, str) else "".join(value) if isinstance(value, list)
                                 else json.dumps(value))
    return "\n".join("".join(p) if isinstance(p, list) else p for p in parts)


@pytest.fixture(scope="module")
def hostile_month(six_month_clv):
    """conftest's small month: its customers.csv carries names, every opted-in customer's e-mail (and one
    name) starts with a spreadsheet formula character; all seven notebooks rendered in-process, the pages
    written by the runner's exporter (`publish.notebook_to_html`). The same shop through `retention run`
    (papermill kernels) is checked in the slow tier below."""
    month = six_month_clv
    return {"raw": month.raw, "pages": month.pages, "reports": month.reports, "processed": month.processed,
            "identities": shop_identities(month.raw)}


def test_the_rendered_month_has_all_seven_pages(hostile_month):
    assert hostile_month["pages"] == [
        "01_clean.html", "02_kpis.html", "03_segments.html", "04_clv.html", "05_churn.html", "06_winback.html",
        "07_summary.html"]


def test_no_html_report_shows_an_email_a_name_or_a_customer_id(hostile_month):
    found = {p.name: leaks(p.read_text(encoding="utf-8"), hostile_month["identities"])
             for p in sorted(hostile_month["reports"].glob("*.html"))}
    assert len(found) == 7
    assert {page: hits for page, hits in found.items() if hits} == {}


def test_no_executed_notebook_of_the_month_shows_an_email_a_name_or_a_customer_id(hostile_month):
    found = {p.name: leaks(output_text(p), hostile_month["identities"])
             for p in sorted(hostile_month["reports"].glob("*.ipynb"))}
    assert {page: hits for page, hits in found.items() if hits} == {}


@pytest.fixture(scope="module")
def runner_month(tmp_path_factory):
    """The hostile shop's month as a scheduler runs it: `run_month` (seven papermill kernels, the executed
    notebooks as the runner saves them, its pages and index). Only the slow tests below ask for it."""
    tmp = tmp_path_factory.mktemp("runner")
    raw = tmp / "raw" / "smallshop"
    shops.hostile_small_shop(raw)
    config = months.config_file(tmp / "six.yml", shops.SIX_MONTH_CLV)
    written = run_month("2026-06-30", raw, config, root=ROOT, reports_dir=tmp / "reports",
                        processed_base=tmp / "processed", log=lambda _: None)
    return {"raw": raw, "pages": written, "reports": tmp / "reports"}


@pytest.mark.slow  # seven papermill kernels: make test-slow
def test_the_month_as_retention_run_writes_it_shows_no_email_a_name_or_a_customer_id(runner_month):
    assert [p.name for p in runner_month["pages"]] == months.PAGES
    identities = shop_identities(runner_month["raw"])
    reports = runner_month["reports"]
    shown = {p.name: leaks(p.read_text(encoding="utf-8"), identities) for p in reports.rglob("*.html")}
    shown |= {p.name: leaks(output_text(p), identities) for p in reports.rglob("*.ipynb")}
    assert len(shown) == 7 + 7 + 1  # the pages, the executed notebooks and the index
    assert {name: hits for name, hits in shown.items() if hits} == {}


TIMINGS = re.compile(r"\d+(\.\d+)?\s?(s|ms|seconds)\b")  # as tests/nbval_sanitize.cfg masks them


@pytest.mark.slow
def test_the_in_process_month_reads_as_the_runners_month(runner_month, six_month_clv):
    """What the fast tier reads (conftest's in-process `six_month_clv`) is what `retention run` publishes
    for the same shop and config: page by page the same visible text, timings aside."""
    for page in months.PAGES:
        by_runner = TIMINGS.sub("TIME", pages.text(runner_month["pages"][0].parent / page))
        in_process = TIMINGS.sub("TIME", pages.text(six_month_clv.reports / page))
        assert in_process == by_runner, f"{page} differs: {_first_difference(in_process, by_runner)}"


def _first_difference(a: str, b: str) -> str:
    i = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return f"in-process ...{a[max(0, i - 80):i + 80]!r}... runner ...{b[max(0, i - 80):i + 80]!r}..."


def test_no_committed_notebook_output_shows_an_email_a_name_or_a_customer_id():
    """The committed outputs were made on the demo shop in data/raw/demo (`make demo`)."""
    raw = ROOT / "data" / "raw" / "demo"
    if not (raw / "customers.csv").exists():
        pytest.skip("data/raw/demo is not there: `make demo` writes the shop the committed outputs were made on")
    identities = shop_identities(raw)
    assert len(identities["customer id"]) > 1000 and len(identities["e-mail"]) > 1000
    found = {p.name: leaks(output_text(p), identities) for p in sorted((ROOT / "notebooks").glob("*.ipynb"))}
    assert len(found) == 7
    assert {nb: hits for nb, hits in found.items() if hits} == {}


def test_the_leak_check_finds_an_id_an_email_and_a_name_as_whole_tokens():
    ids = {"customer id": {"C000012"}, "e-mail": {"c000012@example.com"}, "name": {"Quillon0012"}}
    assert leaks("top customer C000012 spent 5", ids) == {"customer id": ["C000012"]}
    assert leaks("C0000123 and C000012x and aC000012", ids) == {}
    assert leaks("<td>Quillon0012</td> wrote from =c000012@example.com", ids) == {
        "e-mail": ["=c000012@example.com"], "name": ["Quillon0012"]}
    assert leaks("mail c000012@example.com", ids) == {"e-mail": ["c000012@example.com"]}
    assert leaks("Top customer: C000012. (Quillon0012)", ids) == {"customer id": ["C000012"], "name": ["Quillon0012"]}


def spreadsheet_cells(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as f:
        return [cell for row in csv.reader(f) for cell in row]


def runs_as_formula(cell: str) -> bool:
    """A cell a spreadsheet would evaluate: a formula character first, unless it is a number or a lone dash."""
    return cell.startswith(FORMULA_START) and not NUMBER.match(cell) and cell != "-"


def test_every_csv_of_the_month_escapes_cells_a_spreadsheet_would_run(hostile_month):
    csvs = sorted(hostile_month["processed"].glob("*.csv"))
    assert {"winback_targets.csv", "customers_scored.csv", "quarantine.csv"} <= {p.name for p in csvs}
    risky = {p.name: [c for c in spreadsheet_cells(p) if runs_as_formula(c)][:3] for p in csvs}
    assert {name: cells for name, cells in risky.items() if cells} == {}


def test_the_target_list_holds_every_hostile_email_with_an_apostrophe_in_front(hostile_month):
    targets = artifacts.read(hostile_month["processed"], "winback_targets")
    assert len(targets) > 0, "the hostile shop should have consented win-back targets"
    raw = pd.read_csv(hostile_month["raw"] / "customers.csv", dtype=str).set_index("customer_id")["email"]
    expected = ("'" + raw.loc[targets["customer_id"]]).tolist()
    assert targets["email"].tolist() == expected
    assert all(e[1] in "=+-@" for e in targets["email"])


@pytest.mark.parametrize("value,escaped", [
    ("=1+1", "'=1+1"), ("+49 123", "'+49 123"), ("-2+3+cmd|' /C calc'!E2", "'-2+3+cmd|' /C calc'!E2"),
    ("@SUM(A1)", "'@SUM(A1)"), ("-x@y.org", "'-x@y.org"), ("\t=1", "'\t=1"),
    ("-12.5", "-12.5"), ("-.5", "-.5"), ("-1e-3", "-1e-3"), ("-", "-"), ("a=b", "a=b"), ("C000001", "C000001")])
def test_a_text_cell_starting_with_a_formula_character_is_prefixed_and_a_negative_number_is_not(value, escaped):
    out = artifacts.escape_formulas(pd.DataFrame({"email": [value]}))
    assert out["email"].iloc[0] == escaped
