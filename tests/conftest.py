"""Fixtures shared by test files. The demo shop is generated and cleaned here, in a temporary folder,
once per session: no test reads data/processed (what nbval or an earlier run left there) except those
marked demo_month. A rendered month is expensive (seven notebooks, about two minutes on
shared cores), so the small shop's month is rendered once per session and read by every file that
needs one (test_pipeline: an unusual config; test_privacy: hostile identities)."""
from __future__ import annotations

import os

import pandas as pd
import pytest
import yaml

from helpers import clean, demo
from helpers.config import load_config
from helpers.paths import project_root
from helpers.runner import run_month

ROOT = project_root()
# the demo shop the statistical tests read: seed 42 is the shop of data/raw/demo; any other seed must pass too
# (RETENTION_DEMO_SEED=7 pytest ...), the tolerances are stated in the tests, not tuned to one shop
DEMO_SEED = int(os.environ.get("RETENTION_DEMO_SEED", "42"))
# what a spreadsheet runs as a formula (OWASP "CSV injection"), given to the opted-in customers in turn
HOSTILE_EMAIL_PREFIXES = ("=", "+", "-2+3+", "@")
HOSTILE_NAME = "=cmd|' /C calc'!A0"


def add_hostile_identities(raw) -> None:
    """Give customers.csv first and last names (extra columns a shop's export may carry) and make every
    opted-in customer's e-mail, and one name, start with a spreadsheet formula character."""
    customers = pd.read_csv(raw / "customers.csv", dtype=str)
    n = len(customers)
    customers["first_name"] = [f"Quillon{i:05d}" for i in range(n)]
    customers["last_name"] = [f"Brackwater{i:05d}" for i in range(n)]
    consent = customers["marketing_opt_in"].fillna("0").isin(["1", "true", "True"])
    prefixes = [HOSTILE_EMAIL_PREFIXES[k % len(HOSTILE_EMAIL_PREFIXES)] for k in range(int(consent.sum()))]
    customers.loc[consent, "email"] = [p + e for p, e in zip(prefixes, customers.loc[consent, "email"])]
    customers.loc[customers.index[consent][0], "first_name"] = HOSTILE_NAME
    customers.to_csv(raw / "customers.csv", index=False)


@pytest.fixture(scope="session")
def six_month_clv(tmp_path_factory):
    """The 2,000-customer demo shop (seed 7) with hostile identities, all seven notebooks rendered with a
    valid but unusual config (6-month CLV, horizons 7 and 30 days, 2 offers per customer)."""
    tmp = tmp_path_factory.mktemp("clv6")
    raw = tmp / "raw" / "smallshop"
    demo.generate(raw, customers=2_000, seed=7)
    add_hostile_identities(raw)
    cfg = yaml.safe_load((ROOT / "config" / "default.yml").read_text())
    cfg["clv"]["clv_months"] = 6
    cfg["clv"]["horizons_days"] = [7, 30]
    cfg["offers"]["top_n"] = 2
    (tmp / "six.yml").write_text(yaml.safe_dump(cfg))
    pages = run_month("2026-06-30", raw, tmp / "six.yml", root=ROOT, reports_dir=tmp / "reports",
                      processed_base=tmp / "processed", log=lambda _: None)
    return tmp, pages


@pytest.fixture(scope="session")
def demo_shop(tmp_path_factory):
    """The demo shop (20,000 customers, seed `DEMO_SEED`) generated and cleaned in a temporary folder:
    (the cleaned month's folder, the generator's truth). Read it; copy before writing into it."""
    out = tmp_path_factory.mktemp("demo_shop")
    raw = out / "raw" / "demo"
    truth = demo.generate(raw, customers=20_000, seed=DEMO_SEED)
    processed = out / "processed" / "demo" / "2026-06"
    clean.run(raw, "2026-06-30", load_config(ROOT / "config" / "default.yml"), processed_dir=processed)
    return processed, truth
