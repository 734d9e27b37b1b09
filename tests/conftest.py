"""Fixtures shared by test files.

- `demo_raw`, `demo_shop`: the demo shop generated (and cleaned) in a temporary folder once per session:
  no test reads data/processed (what nbval or an earlier run left there) except those marked demo_month.
- `rendered_month`: a whole month (all seven notebooks) of any shop and config, rendered in-process
  (tests/months.py) once per session and shared by every test file that asks for it by name.
- `con`: a DuckDB connection per test file, for order lines a test writes (tests/lines.py).
- `six_month_clv`: the hostile small shop's month with an unusual config (a `rendered_month`), read by
  test_pipeline, test_privacy and test_agreement.
"""
from __future__ import annotations

import os
from pathlib import Path

# Two test workers share the cores: one OpenMP and BLAS thread each (as the runner gives two notebooks side by side),
# set before any test imports scikit-learn or numpy. churn.model_threads' default (null) follows it.
for _threads in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_threads, "1")

import pytest
import yaml
from filelock import FileLock

from helpers import clean, demo
from helpers.config import load_config
from helpers.engine import connect
from helpers.paths import project_root

import months  # noqa: I001  (tests/months.py and tests/shops.py, beside this file)
import shops

ROOT = project_root()
# the demo shop the statistical tests read: seed 42 is the shop of data/raw/demo; any other seed must pass too
# (RETENTION_DEMO_SEED=7 pytest ...), the tolerances are stated in the tests, not tuned to one shop
DEMO_SEED = int(os.environ.get("RETENTION_DEMO_SEED", "42"))


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: `make test` runs on two workers
def pytest_xdist_make_scheduler(config, log):
    """Each test file goes to one worker as a whole, so its module fixtures are made once; the notebooks nbval
    checks go together to one worker, in order (each reads the artifacts of the one before). xdist's
    ``--dist loadgroup`` would say this with marks, but it renames node ids in a way pytest 9 ignores."""
    from xdist.scheduler import LoadScopeScheduling

    class FileOrNotebooks(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "the notebooks (nbval)" if path.endswith(".ipynb") else path

    return FileOrNotebooks(config, log)


@pytest.fixture(scope="session")
def six_month_clv(rendered_month):
    """The hostile small shop's month with a valid but unusual config (6-month CLV, horizons 7 and 30 days,
    2 offers per customer), all seven notebooks rendered in-process: read by test_pipeline, test_privacy
    and test_agreement."""
    return rendered_month("smallshop", shops.hostile_small_shop, config=shops.SIX_MONTH_CLV).check()


@pytest.fixture(scope="module")
def con():
    """A connection of the default engine (DuckDB) for the tables a test file builds itself (tests/lines.py)."""
    return connect()


@pytest.fixture(scope="session")
def demo_raw(tmp_path_factory):
    """The demo shop's raw files (20,000 customers, seed `DEMO_SEED`), generated once per session in a
    temporary folder: (the raw folder, the generator's truth). Read it; copy before writing into it."""
    raw = tmp_path_factory.mktemp("demo_shop") / "raw" / "demo"
    return raw, demo.generate(raw, customers=20_000, seed=DEMO_SEED)


@pytest.fixture(scope="session")
def demo_shop(demo_raw):
    """The demo shop cleaned for June 2026: (the cleaned month's folder, the generator's truth). Read it;
    copy before writing into it."""
    raw, truth = demo_raw
    processed = raw.parent.parent / "processed" / "demo" / "2026-06"
    clean.run(processed, "2026-06-30", load_config(ROOT / "config" / "default.yml"), raw_dir=raw)
    return processed, truth


@pytest.fixture(scope="session")
def rendered_month(tmp_path_factory):
    """``rendered_month(name, make_raw, as_of="2026-06-30", config=None, preset=None) -> months.Month``

    The month of shop `name` (``make_raw(raw_folder)`` writes its raw files and returns its truth, kept as
    ``Month.truth``), all seven notebooks run in-process (tests/months.py) with the default config updated
    by `config` (``{"clv": {"clv_months": 6}}``) and `preset` as ``retention run --preset`` passes it.

    Rendered the first time a test asks for `name`, then shared by every test and file that asks again,
    across pytest-xdist's workers too (a file lock: the second worker waits and reads the first one's
    month). The same name must come with the same settings. A failing cell is kept on the month;
    ``Month.check()`` fails the asking test with the notebook, cell and error."""
    shared = _session_folder(tmp_path_factory) / "months"
    shared.mkdir(parents=True, exist_ok=True)

    def get(name: str, make_raw, as_of: str = "2026-06-30", config: dict | None = None,
            preset: str | None = None) -> months.Month:
        settings = yaml.safe_dump({"make_raw": f"{make_raw.__module__}.{make_raw.__qualname__}", "as_of": as_of,
                                   "config": config or {}, "preset": preset}, sort_keys=True)
        base, kept = shared / name, shared / f"{name}.pickle"
        with FileLock(shared / f"{name}.lock"):
            if kept.exists():
                month = months.Month.load(kept)
                assert month.settings == settings, (
                    f"the month '{name}' was rendered with other settings before:\n{month.settings}\nnow:\n{settings}")
                return month
            raw = base / "raw" / name
            truth = make_raw(raw)
            month = months.render(raw, as_of, months.config_file(base / "config.yml", config or {}), base, preset=preset)
            month.truth, month.settings = truth, settings
            month.save(kept)
            return month
    return get


def _session_folder(tmp_path_factory) -> Path:
    """A folder of this test session that every pytest-xdist worker sees (each worker's own base folder
    sits in it); without xdist, the session's base folder."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
