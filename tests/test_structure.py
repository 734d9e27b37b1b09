"""The project's structure holds (DESIGN.md, "One stage = one notebook = one module = one test file").

These tests read the source, not the data: who may import whom, where files are read and written,
and that notebooks stay thin (no config values threaded by hand through their cells).
"""
import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HELPERS = ROOT / "src" / "helpers"

GROUND = {"artifacts", "config", "engine", "customer_facts", "plots", "contract", "presets", "paths", "demographics"}
STAGES = {"clean", "kpis", "segments", "clv", "churn", "winback", "offers", "summary", "track"}
# Stages that build on another stage's results (DESIGN.md): churn uses clv; win-back uses churn, clv
# and offers, which shares its notebook; the track record (07) rebuilds the CLV stage's purchase model.
STAGE_ALLOWED = {"churn": {"clv"}, "winback": {"churn", "clv", "offers"}, "track": {"clv"}}
# Beside the stages: the demo generator, its truth check, the runner, the publisher and the CLI.
BESIDE_ALLOWED = {
    "demo": GROUND,
    "demo_truth": GROUND | STAGES | {"demo"},
    "publish": GROUND | STAGES,
    "runner": GROUND | {"publish"},
    "cli": GROUND | STAGES | {"demo", "runner", "publish"},
}
TOP = {"runner", "publish", "cli"}


def _modules() -> list[str]:
    return sorted(p.stem for p in HELPERS.glob("*.py") if p.stem != "__init__")


def helper_imports(module: str) -> set[str]:
    """The helpers modules `module` imports, anywhere in the file (function-level imports too)."""
    tree = ast.parse((HELPERS / f"{module}.py").read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "helpers":
                found |= {a.name for a in node.names}
            elif node.module.startswith("helpers."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("helpers.")}
    return found - {module}


def test_every_module_is_placed_in_the_design():
    assert set(_modules()) == GROUND | STAGES | set(BESIDE_ALLOWED)


@pytest.mark.parametrize("module", sorted(GROUND))
def test_ground_floor_imports_only_the_ground_floor(module):
    assert helper_imports(module) <= GROUND, f"{module} imports {helper_imports(module) - GROUND}"


@pytest.mark.parametrize("module", sorted(STAGES))
def test_a_stage_imports_the_ground_floor_and_only_the_stages_it_builds_on(module):
    allowed = GROUND | STAGE_ALLOWED.get(module, set())
    extra = helper_imports(module) - allowed
    assert not extra, f"{module} imports {sorted(extra)}; DESIGN.md allows only the ground floor" + (
        f" and {sorted(STAGE_ALLOWED[module])}" if module in STAGE_ALLOWED else "")


@pytest.mark.parametrize("module", sorted(BESIDE_ALLOWED))
def test_modules_beside_the_stages_import_what_the_design_allows(module):
    extra = helper_imports(module) - BESIDE_ALLOWED[module]
    assert not extra, f"{module} imports {sorted(extra)}"


def test_nothing_imports_the_runner_the_publisher_or_the_cli_but_the_layer_above():
    above = {"runner": {"cli"}, "publish": {"runner", "cli"}, "cli": set()}
    for module in _modules():
        for top in TOP & helper_imports(module):
            assert module in above[top], f"{module} imports {top}"


# Calls that read or write a Parquet, CSV or JSON file (or any file by hand). Only artifacts.py may.
FILE_IO = re.compile(
    r"\bread_parquet\(|\bto_parquet\(|\bread_csv\(|\bto_csv\(|\bjson\.loads?\(|\bjson\.dump\(|"
    r"\.read_text\(|\.write_text\(|\.read_bytes\(|\.write_bytes\(|\bopen\(|\bpq\.|\bpyarrow\.parquet|\bpyarrow\.csv"
)
# config.py reads the YAML config (not an artifact); the CLI prints JSON to the terminal.
FILE_IO_ALLOWED = {"config": {".read_text("}}


@pytest.mark.parametrize("module", [m for m in _modules() if m != "artifacts"])
def test_no_file_is_read_or_written_outside_artifacts(module):
    source = (HELPERS / f"{module}.py").read_text(encoding="utf-8")
    hits = [m.group(0) for m in FILE_IO.finditer(source) if m.group(0) not in FILE_IO_ALLOWED.get(module, set())]
    assert not hits, f"{module}.py reads or writes files itself ({', '.join(sorted(set(hits)))}); use helpers.artifacts"


def test_no_dataframe_attrs_carry_results():
    for module in _modules():
        source = (HELPERS / f"{module}.py").read_text(encoding="utf-8")
        assert ".attrs" not in source, f"{module}.py passes results through DataFrame.attrs"


def _code_cells(path: Path) -> list[tuple[int, str]]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return [(i, "".join(c["source"])) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"]


@pytest.mark.parametrize("notebook", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.stem)
def test_no_notebook_cell_threads_config_values_by_hand(notebook):
    offending = [i for i, src in _code_cells(notebook) if re.search(r"\bcfg\.", src)]
    assert not offending, f"{notebook.name}: cells {offending} read cfg.<section>; the stage's result object should"


@pytest.mark.parametrize("notebook", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.stem)
def test_every_stage_runs_with_one_call_of_the_same_shape(notebook):
    calls = [src for _, src in _code_cells(notebook) if re.search(r"\.run\(", src)]
    assert calls, f"{notebook.name} never calls <stage>.run(...)"
    first = re.search(r"\w+\.run\(([^)]*)\)", calls[0]).group(1)
    args = [a.strip() for a in first.split(",")]
    if notebook.stem == "01_clean":  # the one stage that reads the raw exports
        assert args[:3] == ["raw_dir", "as_of", "cfg"]
    else:
        assert args[:3] == ["processed_dir", "as_of", "cfg"], first


# Optional backends a shop installs itself (DESIGN.md, "Engine") are imported where they are used.
OPTIONAL_BACKENDS = {"pyspark"}


@pytest.mark.parametrize("module", _modules())
def test_imports_sit_at_the_top_of_the_module(module):
    tree = ast.parse((HELPERS / f"{module}.py").read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    inner = [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top]
    names = [(n.module if isinstance(n, ast.ImportFrom) else n.names[0].name) or "" for n in inner]
    hidden = [f"line {n.lineno}: {name}" for n, name in zip(inner, names) if name.split(".")[0] not in OPTIONAL_BACKENDS]
    assert not hidden, f"{module}.py imports inside functions: {hidden}"


# --------------------------------------------------------------------------- the test suite itself

TESTS = ROOT / "tests"
# What starts Jupyter kernels to render notebooks: the runner (papermill) and the `retention` command.
KERNEL_RUNS = {"run_month", "backfill", "refresh_notebooks", "execute_notebook"}
CLI_RUNS = {"run", "backfill"}
# The files whose point is the runner, the command, publishing or privacy as `retention run` writes it
# (DESIGN.md, Tests). Everywhere else a whole month is conftest's in-process `rendered_month`.
KERNEL_FILES = {"test_runner.py", "test_process.py", "test_cli.py", "test_publish.py", "test_privacy.py"}


def kernel_runs(tree: ast.AST) -> list[int]:
    """Lines of the calls that start a kernel: the runner's functions, papermill's execute_notebook, and
    the `retention` command's run or backfill (in-process `main([...])` or `python -m helpers.cli ...`)."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            words = [e.value for arg in node.args if isinstance(arg, (ast.List, ast.Tuple))
                     for e in arg.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            command = words[words.index("helpers.cli") + 1:] if "helpers.cli" in words else words
            if name in KERNEL_RUNS or (command and command[0] in CLI_RUNS and (name in {"main", "cli_main"}
                                                                                or "helpers.cli" in words)):
                lines.append(node.lineno)
    return lines


def test_kernel_runs_are_found_in_each_way_a_test_starts_one():
    found = kernel_runs(ast.parse("run_month('2026-06-30', raw)\nrunner.backfill('2026-01', '2026-06', raw)\n"
                                  "pm.execute_notebook(a, b)\ncli_main(['run', '--raw', raw])\n"
                                  "subprocess.run([sys.executable, '-m', 'helpers.cli', 'run'])\n"
                                  "main(['validate', '--raw', raw])\nmonths.render(raw, as_of, cfg, base)"))
    assert found == [1, 2, 3, 4, 5]


def test_only_the_runner_publishing_and_privacy_tests_start_kernels():
    """A test whose point is a number reads a month rendered in-process (conftest `rendered_month`); the
    runner's kernels (papermill, about six times slower) are for what only they show."""
    starts = {p.name: kernel_runs(ast.parse(p.read_text(encoding="utf-8")))
              for p in sorted(TESTS.glob("*.py")) if p.name not in KERNEL_FILES}
    assert {name: lines for name, lines in starts.items() if lines} == {}
