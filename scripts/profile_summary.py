"""Where a monthly run spends its time, per notebook and per function of src/helpers.

Reads what py-spy (a sampling profiler, not a project dependency: ``pip install py-spy``) recorded
over a whole benchmark run, every kernel included:

    py-spy record --subprocesses --rate 20 --format raw --output /tmp/month.spy -- \\
        .venv/bin/python scripts/benchmark.py --raw /tmp/bench/raw/bench --keep /tmp/perf --skip-naive
    .venv/bin/python scripts/profile_summary.py /tmp/month.spy --rate 20

Kernels are matched to notebooks by start order (the runner starts one kernel per notebook, 01 first).
Each sample is charged to the deepest frame in src/helpers (the helpers function that was running,
with whatever library it called); samples with no helpers frame are "imports" (module loading),
"kernel" (the rest of the main thread: waiting for the next cell, code in the notebook itself).
Seconds are samples / rate: wall seconds the kernel's main thread spent there (the kernel's I/O
threads are left out; DuckDB's worker threads are not sampled, the main thread waiting for them is).
"""
from __future__ import annotations

import argparse
import re
from collections import Counter, defaultdict

NOTEBOOKS = ["01_clean", "02_kpis", "03_segments", "04_clv", "05_churn", "06_winback", "07_summary"]
FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^()]*?):(?P<line>\d+)\)$")
PROCESS = re.compile(r'^process (?P<pid>\d+):"(?P<cmd>.*)"$')


def charge(frames: list[str]) -> str:
    """The label a stack's sample is charged to (frames outermost first)."""
    deepest = None
    for frame in frames:
        m = FRAME.match(frame)
        if m and re.search(r"(^|/)helpers/[^/]+\.py$", m["file"]):
            deepest = f"{m['file'].rsplit('/', 1)[-1].removesuffix('.py')}.{m['func']}"
    if deepest:
        return deepest
    if any(f.startswith("_find_and_load") for f in frames):
        return "imports"
    return "kernel"


def read(path: str) -> dict[int, Counter]:
    """pid -> Counter(label -> samples) for the kernels in the file."""
    per: dict[int, Counter] = defaultdict(Counter)
    for line in open(path, encoding="utf-8", errors="replace"):
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        # a child's stack sits under its parents' process frames: the innermost one is the sampled process
        where = [i for i, f in enumerate(frames) if PROCESS.match(f)]
        if not where:
            continue
        m = PROCESS.match(frames[where[-1]])
        if "ipykernel" not in m["cmd"]:
            continue
        own = frames[where[-1] + 1:]
        if own and own[0].startswith("Thread._bootstrap"):  # the kernel's I/O threads, waiting in select()
            continue
        per[int(m["pid"])][charge(own)] += int(count)
    return per


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("profile", help="py-spy raw output (--format raw --subprocesses)")
    ap.add_argument("--rate", type=float, default=20.0, help="py-spy's --rate (samples per second)")
    ap.add_argument("--top", type=int, default=8, help="functions listed per notebook")
    args = ap.parse_args()
    per = read(args.profile)
    print("| notebook | sampled s | where (s) |\n|---|---:|---|")
    for name, pid in zip(NOTEBOOKS, sorted(per)):
        counts = per[pid]
        total = sum(counts.values()) / args.rate
        top = ", ".join(f"{label} {n / args.rate:.1f}" for label, n in counts.most_common(args.top))
        print(f"| {name} | {total:.1f} | {top} |")


if __name__ == "__main__":
    main()
