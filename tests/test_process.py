"""A month's run under faults: a failing notebook, SIGTERM, a rerun, two months at once; and `make lab` as root.

Runs go through the `retention run` command (`python -m helpers.cli run`, in-process where no second
process is needed) in a throwaway project (pyproject.toml, config/, notebooks/, data/), so that the exit
code and the message are the ones a scheduler sees, and nothing lands in this repository's reports/ or data/. The real notebooks run on a 200-customer demo shop, only
those the case needs (`--only`); the earlier stages' artifacts are made in-process (`<stage>.run`, the call
each notebook makes) to keep the file fast. SIGTERM, two months at once and JupyterLab's start are in the
slow tier (`make test-slow`).
"""
from __future__ import annotations

import hashlib
import html.parser
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from helpers import artifacts, churn, clean, clv, demo, forecast, kpis, segments, summary, track, winback
from helpers.cli import main as cli_main
from helpers.config import load_config
from helpers.paths import project_root

ROOT = project_root()
AS_OF = "2026-06-30"
SHOP = "tiny"
STAGES_BEFORE_04 = (kpis, segments)  # after clean, which takes the raw folder


def make_project(root: Path, notebooks: Path | None = None) -> Path:
    """A project the CLI can run in: pyproject.toml, an empty src/helpers/, the real config, `notebooks` (copied) or an empty
    notebooks/ folder, and data/raw/<SHOP>/."""
    (root / "pyproject.toml").write_text("[project]\nname = 'fixture'\n")
    (root / "src" / "helpers").mkdir(parents=True)  # how the CLI finds its project root (the code is ROOT's)
    (root / "config").mkdir()
    shutil.copy(ROOT / "config" / "default.yml", root / "config" / "default.yml")
    if notebooks is not None:
        shutil.copytree(notebooks, root / "notebooks")
    else:
        (root / "notebooks").mkdir()
    (root / "data" / "raw" / SHOP).mkdir(parents=True)
    return root


def make_notebook(root: Path, name: str, *code: str) -> Path:
    """notebooks/<name>: a title, the four-parameter `parameters` cell and one code cell per `code`."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    parameters = nbformat.v4.new_code_cell("as_of = ''\nraw_dir = ''\nprocessed_dir = ''\nconfig_path = ''")
    parameters.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {name}"), parameters,
                *(nbformat.v4.new_code_cell(source) for source in code)]
    path = root / "notebooks" / name
    nbformat.write(nb, str(path))
    return path


def cli(root: Path, *args: str, **popen) -> subprocess.Popen:
    """`python -m helpers.cli run ...` in the project `root` (its own process group, like a cron job)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, "-m", "helpers.cli", "run", *args], cwd=root, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, **popen)


def hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def hidden_files(*folders: Path) -> list[str]:
    """Temp or partial files (dot files: artifacts.atomic's `.x.parquet.*.tmp`, the runner's `.NN_x.*.ipynb`)."""
    return sorted(p.name for folder in folders for p in folder.rglob(".*"))


def run_stages(raw: Path, processed: Path, cfg, stages) -> None:
    """What each notebook's `<stage>.run(...)` call writes, in-process."""
    fits = None
    for stage in stages:
        if stage is clean:
            clean.run(processed, AS_OF, cfg, raw_dir=raw)
        elif stage is forecast:  # 04's second call, on the fits of its first
            forecast.run(processed, AS_OF, cfg, clv_result=fits)
        else:
            result = stage.run(processed, AS_OF, cfg)
            fits = result if stage is clv else fits


def processes_in(folder: Path) -> list[int]:
    """Ids of the processes whose working directory is `folder` or below (Linux /proc)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cwd = (proc / "cwd").resolve(strict=True) if proc.name.isdigit() else None
        except OSError:  # gone, or not ours to read
            continue
        if cwd is not None and (cwd == folder.resolve() or folder.resolve() in cwd.parents):
            found.append(int(proc.name))
    return found


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds} s for {what}")
        time.sleep(0.05)


class _HTMLChecker(html.parser.HTMLParser):
    """Counts start and end tags of the elements that must pair up."""

    PAIRED = {"html", "head", "body", "section", "div", "ul", "li", "h1", "h2", "h3", "figure", "svg", "a"}

    def __init__(self):
        super().__init__()
        self.open: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.PAIRED:
            self.open.append(tag)

    def handle_endtag(self, tag):
        if tag in self.PAIRED:
            assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1] if self.open else None}>"
            self.open.pop()


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """A 200-customer demo shop and the artifacts of every stage for June 2026, made in-process once."""
    tmp = tmp_path_factory.mktemp("shop")
    raw = tmp / "raw" / SHOP
    demo.generate(raw, customers=200, seed=11)
    cfg = load_config(ROOT / "config" / "default.yml")
    processed = tmp / "processed" / SHOP / AS_OF[:7]
    run_stages(raw, processed, cfg, (clean, kpis, segments, clv, forecast, churn, winback, summary, track))
    return raw, processed, cfg


# --- a failing notebook -----------------------------------------------------------------------------

def test_a_failing_notebook_keeps_earlier_artifacts_later_notebooks_run_and_the_index_marks_it(
        shop, tmp_path, monkeypatch, capsys):
    """04 raises in the cell after its imports. The run goes on with 06, which shows the measured uplift
    and says why there is no plan, and 07, which shows everything but CLV and says so; the CLI exits 1
    naming 04 and the cell; 01-03's and 05's artifacts and May are untouched; the CLV files an earlier run
    left are removed, so no later notebook takes them for this run's."""
    raw, made, _ = shop
    root = make_project(tmp_path, notebooks=ROOT / "notebooks")
    broken = nbformat.read(root / "notebooks" / "04_clv.ipynb", as_version=4)
    imports = next(i for i, c in enumerate(broken.cells) if c.cell_type == "code" and "import" in c.source
                   and "parameters" not in c.metadata.get("tags", []))
    broken.cells.insert(imports + 1, nbformat.v4.new_code_cell("raise RuntimeError('the CLV fit server is down')"))
    nbformat.write(broken, root / "notebooks" / "04_clv.ipynb")
    failing_cell = imports + 2  # papermill's injected-parameters cell comes before it
    shutil.copytree(raw, root / "data" / "raw" / SHOP, dirs_exist_ok=True)

    june = root / "data" / "processed" / SHOP / "2026-06"
    shutil.copytree(made, june)
    for name in ("winback_measured", "winback_plan", "winback_targets", "offers", "customers_scored"):
        artifacts.path(june, name).unlink()
    (june / "customers_scored.csv").unlink()
    stale = [artifacts.path(june, n) for n in ("clv", "clv_model", "forecast", "forecast_model")]  # "an earlier run's"
    for p in stale:
        os.utime(p, (time.time() - 86_400, time.time() - 86_400))
    may = root / "data" / "processed" / SHOP / "2026-05"
    may_reports = root / "reports" / SHOP / "2026-05"
    shutil.copytree(made, may)
    may_reports.mkdir(parents=True)
    (may_reports / "07_summary.html").write_text("<html>May</html>")
    rerun = {a.file for a in artifacts.ARTIFACTS.values() if a.made_by in ("04_clv", "06_winback", "07_summary")}
    kept = {n: h for n, h in hashes(june).items() if n not in rerun and not n.startswith("customers_scored")}
    before_may = hashes(may) | {f"reports/{n}": h for n, h in hashes(may_reports).items()}

    monkeypatch.chdir(root)  # the `retention` command in-process (this process has imported it all already)
    exit_code = cli_main(["run", "--raw", f"data/raw/{SHOP}", "--as-of", AS_OF, "--only", "04,06,07"])
    err = capsys.readouterr().err

    assert exit_code == 1
    assert f"04_clv.ipynb failed at cell {failing_cell}: RuntimeError: the CLV fit server is down" in err
    assert "partial report: reports/tiny/2026-06/04_clv.html" in err
    assert "Traceback" not in err and "later notebooks ran" not in err  # 07 did not fail
    assert {n: h for n, h in hashes(june).items() if n in kept} == kept
    assert hashes(may) | {f"reports/{n}": h for n, h in hashes(may_reports).items()} == before_may
    assert not any(p.exists() for p in stale)

    reports = root / "reports" / SHOP / "2026-06"
    record = json.loads((reports / "run.json").read_text())
    assert record["status"] == "failed"
    assert [(n["name"], n["status"]) for n in record["notebooks"]] == [
        ("04_clv", "failed"), ("06_winback", "ok"), ("07_summary", "ok")]
    winback_page = (reports / "06_winback.html").read_text()
    assert "The win-back plan needs clv.parquet and clv_model.json (04_clv) for this month" in winback_page
    assert record["notebooks"][0]["stale_removed"] == ["clv.parquet", "clv_model.json", "forecast.csv",
                                                       "forecast_model.json"]
    # 07: the summary lists what is missing and shows the rest.
    assert "Not available this month: clv.parquet, clv_model.json (made by 04_clv)" in (
        reports / "07_summary.html").read_text()
    index = (root / "reports" / "index.html").read_text()
    assert "latest run failed" in index
    assert f"04_clv.ipynb failed at cell {failing_cell}: RuntimeError: the CLV fit server is down" in index
    assert 'href="tiny/2026-06/04_clv.html">04_clv' in index
    line_04 = next(line for line in index.splitlines() if 'href="tiny/2026-06/04_clv.html"' in line)
    assert 'class="badge failed">failed<' in line_04
    assert hidden_files(june, reports) == []


# --- SIGTERM ----------------------------------------------------------------------------------------

SLOW_WRITE = """import time
from pathlib import Path
from helpers import artifacts

def half_then_wait(tmp):
    Path(tmp).write_bytes(b'PAR1' + b'x' * 4096)  # half an artifact, then a long pause
    time.sleep(120)

artifacts.atomic(Path(processed_dir) / 'clv.parquet', half_then_wait)"""


@pytest.mark.slow  # a second process, a kernel and a signal: make test-slow
def test_sigterm_during_a_run_leaves_no_half_written_artifact_and_the_index_says_interrupted(tmp_path):
    """`timeout` (or a scheduler) sends SIGTERM while a notebook is half-way through writing an artifact:
    the temp file goes, the artifact never appears, no kernel is left running, run.json and the index
    say 'interrupted', and the CLI exits 143 with one sentence."""
    root = make_project(tmp_path)
    make_notebook(root, "01_slow.ipynb", SLOW_WRITE)
    make_notebook(root, "02_never.ipynb", "print('never')")
    june = root / "data" / "processed" / SHOP / "2026-06"
    reports = root / "reports" / SHOP / "2026-06"

    run = cli(root, "--raw", f"data/raw/{SHOP}", "--as-of", AS_OF)
    try:
        wait_for(lambda: any(p.stat().st_size for p in june.glob(".clv.parquet.*.tmp")), 60,
                 "the notebook to start writing clv.parquet")
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()

    assert run.returncode == 143
    assert err.strip().splitlines()[-1].startswith("retention run: interrupted by SIGTERM;")
    assert "Traceback" not in err
    assert hidden_files(june, reports) == []
    assert not (june / "clv.parquet").exists()
    record = json.loads((reports / "run.json").read_text())
    assert record["status"] == "interrupted" and record["interrupted_by"] == "SIGTERM"
    assert [(n["name"], n["status"]) for n in record["notebooks"]] == [("01_slow", "interrupted")]
    assert not (reports / "02_never.html").exists()
    index = (root / "reports" / "index.html").read_text()
    assert "latest run interrupted" in index and "latest run running" not in index
    assert "interrupted by SIGTERM during 01_slow" in index
    if Path("/proc/self/cwd").exists():  # Linux: the kernel runs in the project folder
        wait_for(lambda: processes_in(tmp_path) == [], 5, "the stopped run's kernel to exit")


# --- a rerun ----------------------------------------------------------------------------------------

def test_a_rerun_of_the_same_month_gives_byte_identical_artifacts(shop):
    """Every file in the month's processed folder is hashed after the first run and after a rerun of all
    seven stages into the same folder. No file is excluded: none carries a run timestamp (the run's
    times live in reports/<shop>/<month>/run.json and the executed notebooks, which are not artifacts)."""
    raw, processed, cfg = shop
    first = hashes(processed)
    assert len(first) == len(artifacts.ARTIFACTS) + 1  # every declared artifact, plus customers_scored.csv
    run_stages(raw, processed, cfg, (clean, kpis, segments, clv, forecast, churn, winback, summary, track))
    assert hashes(processed) == first


# --- two months at once -----------------------------------------------------------------------------

@pytest.mark.slow  # two processes with a kernel each: make test-slow
def test_two_months_run_in_parallel_leave_a_valid_index_listing_both(tmp_path):
    """May and June run at the same time in two processes; each rebuilds reports/index.html as it ends.
    The index afterwards is well-formed and lists both months as finished, not 'running'."""
    root = make_project(tmp_path)
    make_notebook(root, "01_a.ipynb", "print(as_of)")
    runs = [cli(root, "--raw", f"data/raw/{SHOP}", "--as-of", as_of) for as_of in ("2026-05-31", "2026-06-30")]
    for run in runs:
        _, err = run.communicate(timeout=120)
        assert run.returncode == 0, err

    index = (root / "reports" / "index.html").read_text()
    checker = _HTMLChecker()
    checker.feed(index)
    checker.close()
    assert checker.open == []
    assert index.rstrip().endswith("</html>")
    for month in ("2026-05", "2026-06"):
        assert f'href="tiny/{month}/01_a.html"' in index
    assert "latest run" not in index  # neither 'running' nor 'failed'
    assert hidden_files(root / "reports") == []


# --- make lab ---------------------------------------------------------------------------------------

def lab_command() -> list[str]:
    """The command `make lab` runs (dry run: `make -n`), without the setup and demo steps."""
    out = subprocess.run(["make", "-n", "-C", str(ROOT), "lab"], capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if "jupyter lab" in line)
    return line.split()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_lab_passes_allow_root_exactly_when_run_as_root():
    assert ("--allow-root" in lab_command()) is (os.getuid() == 0)


@pytest.mark.slow  # a JupyterLab server start: make test-slow
@pytest.mark.skipif(shutil.which("make") is None or os.getuid() != 0, reason="needs make, and root")
def test_make_labs_command_starts_jupyterlab_as_root(tmp_path):
    """Run as root, the command `make lab` builds starts a JupyterLab server (which, without
    --allow-root, would stop at once with "Running as root is not recommended")."""
    command = lab_command()
    jupyter = Path(sys.executable).with_name("jupyter")
    args = [str(jupyter), *command[1:], "--no-browser", "--ServerApp.port=0", "--IdentityProvider.token=",
            f"--ServerApp.root_dir={ROOT}"]
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path), "JUPYTER_CONFIG_DIR": str(tmp_path)}
    lab = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        started = []
        for line in lab.stderr:
            started.append(line)
            if "is running at" in line or "Running as root" in line:
                break
        assert any("is running at" in line for line in started), "".join(started)
    finally:
        lab.terminate()
        lab.wait(timeout=20)
