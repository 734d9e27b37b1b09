"""The conda environment and the pip lock pin the same versions, so both kinds of user get the same run."""
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# conda-forge name -> PyPI name where they differ
CONDA_TO_PYPI = {"ibis-duckdb": "ibis-framework", "python-duckdb": "duckdb", "pandera-base": "pandera"}
RUNTIME = ["pandas", "numpy", "scipy", "scikit-learn", "seaborn", "matplotlib", "lifetimes", "papermill",
           "nbconvert", "ipykernel", "pyarrow", "pyyaml", "pydantic", "pandera", "jupyterlab", "ibis-framework", "duckdb", "pytest", "nbval", "hypothesis"]


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
