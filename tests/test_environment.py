"""The conda environment and the pip lock pin the same versions, so both kinds of user get the same run."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# conda-forge name -> PyPI name where they differ
CONDA_TO_PYPI = {"ibis-duckdb": "ibis-framework", "python-duckdb": "duckdb", "pandera-base": "pandera"}
RUNTIME = ["pandas", "numpy", "scipy", "scikit-learn", "seaborn", "matplotlib", "lifetimes", "statsmodels", "papermill",
           "nbconvert", "ipykernel", "pyarrow", "pyyaml", "pydantic", "pandera", "jupyterlab", "ibis-framework", "duckdb", "openpyxl", "pytest", "pytest-xdist", "nbval", "hypothesis"]


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def _conda() -> tuple[str, dict[str, str]]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pins, python = {}, None
    for dep in env["dependencies"]:
        if isinstance(dep, str) and "=" in dep:
            name, version = dep.split("=", 1)
            if name == "python":
                python = version
            else:
                pins[CONDA_TO_PYPI.get(name, name)] = version
    return python, pins


def test_every_lock_line_is_an_exact_pin():
    lines = [l for l in (ROOT / "requirements.lock").read_text().splitlines() if l.strip() and not l.startswith("#")]
    assert lines and all("==" in l for l in lines)


def test_environment_yml_pins_the_same_versions_as_the_lock():
    lock = _lock()
    python, conda = _conda()
    assert python == "3.11"
    for name, version in conda.items():
        assert lock.get(name) == version, f"environment.yml pins {name}={version}, lock has {lock.get(name)}"
    missing = [p for p in RUNTIME if p not in conda]
    assert not missing, f"environment.yml lacks {missing}"


def test_environment_yml_installs_the_project_itself_with_pip():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = [d for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert pip and "-e ." in pip[0]["pip"]


def _make_demo_dry_run(tmp_path, generator_newer: bool) -> str:
    """`make -n demo` in a copy of the Makefile, the demo shop present, demo.py newer or older than it."""
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    for name in ("requirements.lock", "pyproject.toml", "src/helpers/demo.py", ".venv/.installed",
                 "data/raw/demo/orders.csv"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    times = {"requirements.lock": 1, "pyproject.toml": 1, ".venv/.installed": 2,
             "src/helpers/demo.py": 4 if generator_newer else 3, "data/raw/demo/orders.csv": 3 if generator_newer else 4}
    for name, t in times.items():
        os.utime(tmp_path / name, (1_700_000_000 + t * 60, 1_700_000_000 + t * 60))
    return subprocess.run(["make", "-n", "demo"], cwd=tmp_path, capture_output=True, text=True, check=True).stdout


def test_make_demo_regenerates_the_shop_when_the_generator_changed(tmp_path):
    assert "retention demo --out data/raw/demo" in _make_demo_dry_run(tmp_path, generator_newer=True)


def test_make_demo_keeps_a_shop_newer_than_its_generator(tmp_path):
    assert "retention demo" not in _make_demo_dry_run(tmp_path, generator_newer=False)
