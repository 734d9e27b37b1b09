"""The whole month, all seven notebooks, on a small shop with a valid but unusual config.

Column names no longer follow config values, so changing a horizon changes numbers and labels, never
which columns a later notebook finds (issue 13: `clv.clv_months: 6` used to break notebook 07)."""
import pytest
import yaml

from helpers import artifacts, demo
from helpers.paths import project_root
from helpers.runner import run_month

ROOT = project_root()


@pytest.fixture(scope="module")
def six_month_clv(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("clv6")
    raw = tmp / "raw" / "smallshop"
    demo.generate(raw, customers=2_000, seed=7)
    cfg = yaml.safe_load((ROOT / "config" / "default.yml").read_text())
    cfg["clv"]["clv_months"] = 6
    cfg["clv"]["horizons_days"] = [7, 30]
    cfg["offers"]["top_n"] = 2
    (tmp / "six.yml").write_text(yaml.safe_dump(cfg))
    pages = run_month("2026-06-30", raw, tmp / "six.yml", root=ROOT, reports_dir=tmp / "reports",
                      processed_base=tmp / "processed", log=lambda _: None)
    return tmp, pages


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
