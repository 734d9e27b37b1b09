"""Numbers that agree (issue 17): a figure a reader meets on two pages is the same number on both.

Read from the pages as a reader sees them - the markdown sentences of the executed notebooks - for
two months: the demo month whose executed notebooks are committed in notebooks/ (nbval keeps them
current), and the small shop's month rendered with an unusual config (conftest ``six_month_clv``).
Pair by pair: the month's revenue, orders and active customers (01, 02, 07); month-1 retention (02,
07); the win-back plan's customers and profit (06's plan, profit curve and contact list; 07's
headline) and its best segment's offer (06, 07); the holdout totals (04's table sentence and its
tracking sentence); customers at high churn risk and their CLV (05, 07).
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from helpers.paths import project_root

ROOT = project_root()
NUMBER = r"([0-9][0-9,]*(?:\.[0-9]+)?)"
MONEY = r"[A-Z]{3} (-?[0-9][0-9,]*)"


def _said(folder: Path, stem: str) -> str:
    """Every markdown output of notebook `stem` in `folder`, one text (the reader's sentences)."""
    nb = nbformat.read(next(folder.glob(f"{stem}*.ipynb")), as_version=4)
    texts = [o["data"]["text/markdown"] for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
             if "text/markdown" in o.get("data", {})]
    return "\n".join(texts).replace("\\_", "_")


def _one(pattern: str, text: str, page: str) -> tuple[str, ...]:
    m = re.search(pattern, text)
    assert m, f"{page}: no sentence matches {pattern!r}"
    return m.groups()


def _n(value: str) -> float:
    return float(value.replace(",", ""))


@pytest.fixture(scope="module", params=["demo", "small shop"])
def pages(request):
    if request.param == "demo":
        folder = ROOT / "notebooks"
    else:
        folder = request.getfixturevalue("six_month_clv").reports
    return {stem: _said(folder, stem) for stem in ("01", "02", "04", "05", "06", "07")}


def test_revenue_orders_and_active_customers_agree_on_01_02_and_07(pages):
    month, orders1, customers1, revenue1 = _one(
        r"In ([0-9]{4}-[0-9]{2}), " + NUMBER + r" orders from " + NUMBER + r" customers brought " + MONEY,
        pages["01"], "01")
    customers2, orders2, revenue2 = _one(
        r"In " + month + r" " + NUMBER + r" customers placed " + NUMBER + r" orders worth " + MONEY, pages["02"], "02")
    revenue7, customers7 = _one(r"In " + month + r" revenue was " + MONEY + r".*? from " + NUMBER + r" active customers",
                                pages["07"], "07")
    assert _n(orders1) == _n(orders2)
    assert _n(customers1) == _n(customers2) == _n(customers7)
    assert _n(revenue1) == _n(revenue2) == _n(revenue7)


def test_month_one_retention_agrees_on_02_and_07(pages):
    (m1_02,) = _one(r"Of a typical cohort, ([0-9]+)% after 1 month", pages["02"], "02")
    if "second-order offer" not in pages["07"]:
        pytest.skip("07 shows no second-order action for this month")
    (m1_07,) = _one(r"typically only ([0-9]+)% of a cohort buys again in its second month", pages["07"], "07")
    assert m1_02 == m1_07


def test_the_win_back_plan_is_one_plan_on_06_and_07(pages):
    n_plan, p_plan = _one(r"The plan: " + NUMBER + r" customers on the contact list \(winback_targets.csv\), "
                          r"expected extra profit " + MONEY, pages["06"], "06 plan")
    # with a control group held back (issue 19) the plan contacts the rest of the best depth
    curve = pages["06"] if "held back at random as a control group" not in pages["06"] else None
    n_best, p_best = (_one(r"contacting the best " + NUMBER + r" maximises expected profit at " + MONEY,
                           pages["06"], "06 profit curve") if curve else
                      _one(r"control group, so the plan contacts " + NUMBER + r" for " + MONEY, pages["06"],
                           "06 profit curve"))
    n_list, p_list = _one(r"winback_targets.csv lists the plan's " + NUMBER + r" customers \(expected incremental "
                          r"profit " + MONEY, pages["06"], "06 contact list")
    n_07, p_07 = _one(r"The win-back plan contacts " + NUMBER + r" customers \(the list: winback_targets.csv\) and is "
                      r"expected to add " + MONEY, pages["07"], "07 headline")
    assert _n(n_plan) == _n(n_best) == _n(n_list) == _n(n_07)
    assert _n(p_plan) == _n(p_best) == _n(p_list) == _n(p_07)


def test_07s_win_back_action_repeats_06s_offer_for_that_segment(pages):
    if "on the contact list (winback_targets.csv" not in pages["07"]:
        pytest.skip("no win-back offer pays this month")
    n7, seg, p7, low7, high7 = _one(r"to the " + NUMBER + r" customers in '([^']+)' on the contact list.*?expected extra "
                                    r"profit " + MONEY + r" \(5-95 %: " + MONEY + r" to " + MONEY, pages["07"], "07")
    n6, p6 = _one(re.escape(seg) + r" [^;]*? to " + NUMBER + r" customers \(expected " + MONEY, pages["06"], "06")
    assert (_n(n6), _n(p6)) == (_n(n7), _n(p7))


def test_holdout_totals_agree_between_04s_table_sentence_and_its_tracking_sentence(pages):
    predicted, actual = _one(r"it predicted " + NUMBER + r" repeat purchases against " + NUMBER + r" actual",
                             pages["04"], "04 table")
    actual_t, predicted_t = _one(r"made " + NUMBER + r" repeat purchases in it; [^ ]+ expected " + NUMBER,
                                 pages["04"], "04 tracking")
    assert (_n(actual), _n(predicted)) == (_n(actual_t), _n(predicted_t))


def test_customers_at_high_churn_risk_and_their_clv_agree_on_05_and_07(pages):
    n5, clv5 = _one(NUMBER + r" of the " + NUMBER + r" customers who had bought by then .*?carrying " + MONEY,
                    pages["05"], "05")[0::2]
    n7, clv7 = _one(NUMBER + r" customers are at high churn risk, carrying " + MONEY, pages["07"], "07")
    assert (_n(n5), _n(clv5)) == (_n(n7), _n(clv7))
