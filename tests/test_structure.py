"""The project's structure holds (DESIGN.md, "One stage = one notebook = one module = one test file").

These tests read the source, not the data: who may import whom, where files are read and written,
that every stage has one shape (``run`` computes, its page in ``helpers/pages/`` presents), that
functions stay short and notebooks thin, and that the tests do not repeat themselves.
"""
import ast
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HELPERS = ROOT / "src" / "helpers"

GROUND = {"artifacts", "config", "engine", "customer_facts", "plots", "contract", "presets", "paths", "demographics",
          "words"}
STAGES = {"clean", "kpis", "segments", "clv", "forecast", "churn", "winback", "offers", "summary", "track"}
# Stages that build on another stage's results (DESIGN.md): churn uses clv; win-back uses churn, clv
# and offers, which shares its notebook; the track record (07) rebuilds the CLV stage's purchase model; the
# forecast (a section of 04) builds on the CLV stage's fits, and the track record scores its forecasts.
STAGE_ALLOWED = {"forecast": {"clv"}, "churn": {"clv"}, "winback": {"churn", "clv", "offers"},
                 "track": {"clv", "forecast"}}
# Beside the stages: the demo generator, its truth check, the runner, the publisher, the CLI, the process the
# runner forks warm kernels from (it loads the stages and pages by name, importing none) and the Spark driver the
# runner shares among a month's notebooks.
# The demo's truth is counted from the generator's records, not with the stages it checks; the site is
# built from declared artifacts, so the publisher imports no stage.
BESIDE_ALLOWED = {
    "demo": GROUND,
    "demo_truth": GROUND | {"demo"},
    "publish": GROUND,
    "runner": GROUND | {"publish", "warm_kernels", "spark_server"},
    "warm_kernels": set(),
    "spark_server": GROUND,
    "cli": GROUND | STAGES | {"demo", "runner", "publish", "pages", "spark_server"},
}
# A page (helpers/pages/<stage>.py) draws its stage's result: it may import its own stage (the result's
# type), other pages and what formats and names things, never the engine, the artifacts, the per-customer
# facts or another stage's computation.
PAGE_ALLOWED = {"plots", "config", "demographics", "pages"}
ENGINE_PACKAGES = {"ibis", "duckdb", "pyspark", "pyarrow"}
TOP = {"runner", "publish", "cli"}


def _modules() -> list[str]:
    return sorted(p.stem for p in HELPERS.glob("*.py") if p.stem != "__init__")


def _pages() -> list[str]:
    return sorted(p.stem for p in (HELPERS / "pages").glob("*.py") if p.stem != "__init__")


def _sources() -> list[Path]:
    """Every module of src/helpers, the pages included."""
    return sorted(HELPERS.rglob("*.py"))


def helper_imports(module: str) -> set[str]:
    """The helpers modules `module` imports (``pages/<stage>`` for a page), anywhere in the file
    (function-level imports too); ``helpers.pages.<x>`` counts as ``pages``."""
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


def package_imports(path: Path) -> set[str]:
    """The top-level packages a file imports (``ibis``, ``pandas``, ``helpers`` ...)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and not n.level}
    return {name.split(".")[0] for name in names}


def test_every_module_is_placed_in_the_design():
    assert set(_modules()) == GROUND | STAGES | set(BESIDE_ALLOWED)


def test_every_stage_has_a_page_and_every_page_a_stage():
    assert set(_pages()) == STAGES


@pytest.mark.parametrize("page", _pages())
def test_a_page_draws_its_result_without_the_engine_or_another_stage(page):
    source = HELPERS / "pages" / f"{page}.py"
    extra = helper_imports(f"pages/{page}") - PAGE_ALLOWED - {page}
    assert not extra, f"pages/{page}.py imports {sorted(extra)}: what the page needs, the stage's result carries"
    engines = package_imports(source) & ENGINE_PACKAGES
    assert not engines, f"pages/{page}.py imports {sorted(engines)}: a page touches no engine"


@pytest.mark.parametrize("page", _pages())
def test_a_page_reads_and_writes_no_file(page):
    source = (HELPERS / "pages" / f"{page}.py").read_text(encoding="utf-8")
    hits = sorted({m.group(0) for m in FILE_IO.finditer(source)})
    assert not hits, f"pages/{page}.py reads or writes files ({', '.join(hits)})"


def _module_function(module: str, name: str) -> ast.FunctionDef | None:
    tree = ast.parse((HELPERS / f"{module}.py").read_text(encoding="utf-8"))
    return next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name), None)


@pytest.mark.parametrize("module", sorted(STAGES))
def test_every_stage_runs_with_one_signature(module):
    run = _module_function(module, "run")
    assert run is not None, f"{module}.py has no run()"
    names = [a.arg for a in run.args.posonlyargs + run.args.args]
    assert names == ["processed_dir", "as_of", "cfg", "con"], f"{module}.run({', '.join(names)})"
    assert isinstance(run.args.defaults[-1], ast.Constant) and run.args.defaults[-1].value is None  # con=None
    assert run.args.vararg is None and run.args.kwarg is None


@pytest.mark.parametrize("module", sorted(STAGES))
def test_no_stage_function_takes_a_save_flag(module):
    tree = ast.parse((HELPERS / f"{module}.py").read_text(encoding="utf-8"))
    flagged = [n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)
               and "save" in {a.arg for a in n.args.args + n.args.kwonlyargs}]
    assert not flagged, f"{module}.py: {flagged} take save=; run writes the declared artifacts, always"


@pytest.mark.parametrize("module", sorted(STAGES))
def test_a_stage_result_carries_data_and_no_presentation(module):
    """`run` returns a dataclass named <Something>Result whose class defines no methods (properties
    derived from its fields aside): tables, sentences and figures are the page's functions of it."""
    tree = ast.parse((HELPERS / f"{module}.py").read_text(encoding="utf-8"))
    results = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name.endswith("Result")]
    assert results, f"{module}.py defines no <Stage>Result"
    run = _module_function(module, "run")
    returned = ast.unparse(run.returns) if run.returns is not None else ""
    assert returned in {r.name for r in results}, f"{module}.run() -> {returned or '?'}, not its result type"
    for result in results:  # a property derived from the result's own fields is data too
        methods = [n.name for n in result.body if isinstance(n, ast.FunctionDef)
                   and not any(isinstance(d, ast.Name) and d.id == "property" for d in n.decorator_list)]
        assert not methods, f"{module}.{result.name} has methods {methods}; they belong to pages/{module}.py"


# The longest a function may be, docstring included (DESIGN.md: a newcomer finds and reads one step at a time).
MAX_FUNCTION_LINES = 80
# Functions allowed to be longer, each with the reason it reads better whole.
LONG_FUNCTIONS: dict[str, str] = {}


def test_no_function_in_helpers_is_over_80_lines():
    long = {}
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{path.relative_to(HELPERS).as_posix()}:{node.name}"
                if node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES and name not in LONG_FUNCTIONS:
                    long[name] = node.end_lineno - node.lineno + 1
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


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


def test_the_run_command_loads_no_plotting_library_and_no_iri_parser():
    """`retention run` stays alive beside every kernel of a month: matplotlib and seaborn (the pages') would add
    86 MB to the month's peak memory, counted over every process. rfc3987_syntax (jsonschema's, under nbformat)
    builds a parser on import: 1.4 s before the first notebook starts."""
    code = ("import sys, helpers.cli; print(sorted(m for m in ('matplotlib', 'seaborn', 'helpers.plots', "
            "'rfc3987_syntax') if sys.modules.get(m) is not None))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert out.stdout.strip() == "[]"


# Calls that read or write a Parquet, CSV or JSON file (or any file by hand). Only artifacts.py may.
FILE_IO = re.compile(
    r"\bread_parquet\(|\bto_parquet\(|\bread_csv\(|\bto_csv\(|\bjson\.loads?\(|\bjson\.dump\(|"
    r"\.read_text\(|\.write_text\(|\.read_bytes\(|\.write_bytes\(|\bopen\(|\bpq\.|\bpyarrow\.parquet|\bpyarrow\.csv"
)
# config.py reads the YAML config (not an artifact); engine.py writes the log4j2 settings a Spark driver starts
# with (Spark reads them from a file); the CLI prints JSON to the terminal.
FILE_IO_ALLOWED = {"config": {".read_text("}, "engine": {".write_text("},
                   "publish": {"open("},  # publish: PIL's Image.open of a figure's bytes in memory
                   "warm_kernels": {"json.loads(", "open("},  # the runner's requests over a pipe; /dev/null
                   "spark_server": {"json.loads("}}  # the runner's settings over a pipe


@pytest.mark.parametrize("module", [m for m in _modules() if m != "artifacts"])
def test_no_file_is_read_or_written_outside_artifacts(module):
    source = (HELPERS / f"{module}.py").read_text(encoding="utf-8")
    hits = [m.group(0) for m in FILE_IO.finditer(source) if m.group(0) not in FILE_IO_ALLOWED.get(module, set())]
    assert not hits, f"{module}.py reads or writes files itself ({', '.join(sorted(set(hits)))}); use helpers.artifacts"


def test_no_dataframe_attrs_carry_results():
    for path in _sources():
        assert ".attrs" not in path.read_text(encoding="utf-8"), f"{path.name} passes results through DataFrame.attrs"


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
    for call in re.findall(r"\w+\.run\(([^)]*)\)", "\n".join(calls)):
        args = [a.strip() for a in call.split(",")]
        assert args[:3] == ["processed_dir", "as_of", "cfg"], call
        if notebook.stem == "01_clean":  # the one stage that reads the raw exports, by keyword
            assert "raw_dir=raw_dir" in args, call


@pytest.mark.parametrize("notebook", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.stem)
def test_every_notebook_draws_its_page_from_helpers_pages(notebook):
    imports = "\n".join(src for _, src in _code_cells(notebook) if "import" in src)
    assert "from helpers.pages import" in imports, f"{notebook.name} does not import its page"


# Optional backends a shop installs itself (DESIGN.md, "Engine") are imported where they are used.
OPTIONAL_BACKENDS = {"pyspark"}


@pytest.mark.parametrize("module", _modules() + [f"pages/{p}" for p in _pages()])
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
# (DESIGN.md, Tests), and the runner's one Spark driver shared by a month's kernels (test_spark_parity.py, in
# `make test-spark`). Everywhere else a whole month is conftest's in-process `rendered_month`.
KERNEL_FILES = {"test_runner.py", "test_process.py", "test_cli.py", "test_publish.py", "test_privacy.py",
                "test_spark_parity.py"}


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


# Six or more lines standing again elsewhere in tests/ (blank lines, comments and imports left out, white
# space folded) are a fixture or helper waiting to be shared (tests/shops.py, lines.py, exports.py).
REPEAT_LINES = 6


def _code_lines(path: Path) -> list[tuple[int, str]]:
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = " ".join(line.split())
        if text and not text.startswith(("#", "import ", "from ")) and text.strip("()[]{},:") != "":
            out.append((number, text))
    return out


def repeated_blocks(paths: list[Path], size: int = REPEAT_LINES) -> list[str]:
    """'a.py:10 ~ b.py:40' for each run of `size` code lines found at two places (the first pair of each run)."""
    seen: dict[tuple[str, ...], str] = {}
    found, last = [], {}
    for path in paths:
        lines = _code_lines(path)
        for k in range(len(lines) - size + 1):
            key = tuple(text for _, text in lines[k:k + size])
            here = f"{path.name}:{lines[k][0]}"
            if key in seen and last.get(path.name) != k - 1:
                found.append(f"{here} ~ {seen[key]}")
            if key in seen:
                last[path.name] = k
            seen.setdefault(key, here)
    return found


def test_repeated_blocks_are_found():
    a = "def f(x):\n    y = x + 1\n    z = y * 2\n    w = z - 3\n    v = w / 4\n    u = v ** 5\n    return u\n"
    assert repeated_blocks_in({"a.py": a, "b.py": "# other\n" + a.replace("def f", "def g")}) == ["b.py:3 ~ a.py:2"]
    assert repeated_blocks_in({"a.py": a, "b.py": a.replace("z - 3", "z - 4")}) == []


def repeated_blocks_in(files: dict[str, str], size: int = REPEAT_LINES) -> list[str]:
    """`repeated_blocks` of files given as {name: text}."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for name, text in files.items():
            (Path(tmp) / name).write_text(text, encoding="utf-8")
            paths.append(Path(tmp) / name)
        return repeated_blocks(paths, size)


def test_no_block_of_six_lines_is_repeated_in_the_tests():
    assert repeated_blocks(sorted(TESTS.glob("*.py"))) == []
