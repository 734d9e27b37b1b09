"""The whole month, all seven notebooks, on a small shop with a valid but unusual config.

Column names no longer follow config values, so changing a horizon changes numbers and labels, never
which columns a later notebook finds (issue 13: `clv.clv_months: 6` used to break notebook 07)."""
import pytest
import yaml

import pages
from helpers import artifacts, demo
from helpers.paths import project_root
from helpers.runner import run_month

ROOT = project_root()


# six_month_clv (the small shop's month with a 6-month CLV) is rendered once in conftest.py and shared
# with test_privacy.


@pytest.fixture(scope="module")
def no_purchase_model(tmp_path_factory):
    """A month in which no purchase model and no Gamma-Gamma can be fitted: a budget of 3 likelihood
    evaluations (`clv.max_evaluations`) stops every fit."""
    tmp = tmp_path_factory.mktemp("tiny")
    raw = tmp / "raw" / "tinyshop"
    demo.generate(raw, customers=2_000, seed=8)
    cfg = yaml.safe_load((ROOT / "config" / "default.yml").read_text())
    cfg["clv"]["max_evaluations"] = 3
    (tmp / "tiny.yml").write_text(yaml.safe_dump(cfg))
    run = run_month("2026-06-30", raw, tmp / "tiny.yml", root=ROOT, reports_dir=tmp / "reports",
                    processed_base=tmp / "processed", log=lambda _: None)
    return tmp / "reports" / "tinyshop" / "2026-06", run


def test_with_a_tiny_fit_budget_the_month_still_runs_and_the_pages_say_why(no_purchase_model):
    """Issue 14: the fit stops at its cap, the report says so, and every later page stands in for the model."""
    shown, run = no_purchase_model
    assert [p.name for p in run][-1] == "07_summary.html" and len(run) == 7
    clv_page = pages.text(shown / "04_clv.html")
    for model in ("BG/NBD", "Pareto/NBD", "MBG/NBD", "Gamma-Gamma"):
        assert f"{model} stopped at its cap of 3 likelihood evaluations without converging" in clv_page
    assert "No purchase model could be fitted, so each customer's CLV is the margin on one average order" in clv_page
    assert "the recency baseline stands in for it" in pages.text(shown / "05_churn.html")
    assert "Traceback" not in clv_page and "Error" not in clv_page


def test_a_six_month_clv_horizon_runs_all_seven_notebooks(six_month_clv):
    tmp, pages = six_month_clv
    assert [p.name for p in pages] == ["01_clean.html", "02_kpis.html", "03_segments.html", "04_clv.html",
                                       "05_churn.html", "06_winback.html", "07_summary.html"]


def test_the_horizon_goes_into_the_model_card_not_into_column_names(six_month_clv):
    month = six_month_clv[0] / "processed" / "smallshop" / "2026-06"
    assert artifacts.read(month, "clv_model")["clv_months"] == 6
    for name in ("clv", "customers_scored", "winback_targets"):
        df = artifacts.read(month, name)
        artifacts.check(name, df)


def test_the_summary_names_the_configured_horizon(six_month_clv):
    page = (six_month_clv[0] / "reports" / "smallshop" / "2026-06" / "07_summary.html").read_text()
    assert "6-month" in page and "12-month" not in page
