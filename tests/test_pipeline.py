"""The whole month, all seven notebooks, on a small shop with a valid but unusual config.

Column names no longer follow config values, so changing a horizon changes numbers and labels, never
which columns a later notebook finds (issue 13: `clv.clv_months: 6` used to break notebook 07)."""
import pytest

import pages
from helpers import artifacts, demo


# six_month_clv (the small shop's month with a 6-month CLV) is rendered once in conftest.py and shared
# with test_privacy and test_agreement.

# A budget of 3 likelihood evaluations (`clv.max_evaluations`) stops every fit, whatever the shop's size:
# 1,000 customers give every page its sections.
TINY_BUDGET = {"clv": {"max_evaluations": 3}}


def _tinyshop(out):
    return demo.generate(out, customers=1_000, seed=8)


@pytest.fixture(scope="module")
def no_purchase_model(rendered_month):
    """A month in which no purchase model and no Gamma-Gamma can be fitted (rendered in-process)."""
    return rendered_month("tinyshop", _tinyshop, config=TINY_BUDGET).check()


def test_with_a_tiny_fit_budget_the_month_still_runs_and_the_pages_say_why(no_purchase_model):
    """Issue 14: the fit stops at its cap, the report says so, and every later page stands in for the model."""
    month = no_purchase_model
    assert month.pages[-1] == "07_summary.html" and len(month.pages) == 7
    clv_page = pages.text(month.page_path("04"))
    for model in ("BG/NBD", "Pareto/NBD", "MBG/NBD", "Gamma-Gamma"):
        assert f"{model} stopped at its cap of 3 likelihood evaluations without converging" in clv_page
    assert "No purchase model could be fitted, so each customer's CLV is the margin on one average order" in clv_page
    assert "the recency baseline stands in for it" in pages.text(month.page_path("05"))
    assert "Traceback" not in clv_page and "Error" not in clv_page


def test_a_six_month_clv_horizon_runs_all_seven_notebooks(six_month_clv):
    assert six_month_clv.pages == ["01_clean.html", "02_kpis.html", "03_segments.html", "04_clv.html",
                                       "05_churn.html", "06_winback.html", "07_summary.html"]


def test_the_horizon_goes_into_the_model_card_not_into_column_names(six_month_clv):
    month = six_month_clv.processed
    assert artifacts.read(month, "clv_model")["clv_months"] == 6
    for name in ("clv", "customers_scored", "winback_targets"):
        df = artifacts.read(month, name)
        artifacts.check(name, df)


def test_the_summary_names_the_configured_horizon(six_month_clv):
    page = six_month_clv.page_path("07").read_text(encoding="utf-8")
    assert "6-month" in page and "12-month" not in page
