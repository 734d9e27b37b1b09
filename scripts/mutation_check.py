"""Issue 25's check that tests moved to another tier, month or shop still catch their bugs: break the code
once per moved fixture or shop, run the tests that must catch it, restore the file.

    .venv/bin/python scripts/mutation_check.py          # every mutation (about 5 minutes on 2 cores)
    .venv/bin/python scripts/mutation_check.py 7 8      # some of them, with the failing assertions shown

Each line says CAUGHT (the tests failed, as they must) or MISSED. The file is restored even on Ctrl-C.
"""
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# (what breaks, file, the text replaced, its replacement, the tests that must fail)
M = [
 ("shops: a notebook cell that raises on a shop's month", "src/helpers/pages/summary.py",
  "        s = f\"In {month.month} revenue was {plots.money(rev.this_month, currency)}\"",
  "        raise RuntimeError('mutant')",
  "tests/test_shops.py -k whole_month"),
 ("shops: a warning shown on a page", "src/helpers/pages/segments.py",
  "    return \"\\n\".join(res.notes) or (",
  "    import warnings; warnings.warn('mutant', UserWarning)\n    return \"\\n\".join(res.notes) or (",
  "tests/test_shops.py -k whole_month"),
 ("shops: the boundary sentence loses its lifetime", "src/helpers/clv.py",
  "customers' dropout rates hardly differ: about 1 in {params['beta'] / params['s'] * unit:,.0f} ",
  "customers' dropout rates hardly differ: about 1 in {params['beta'] / params['s'] * unit * 2:,.0f} ",
  "tests/test_shops.py -k boundary"),
 ("shops: the measured uplift's interval shifted", "src/helpers/winback.py",
  "\"uplift_pp\": round(100 * d, 4), \"uplift_low\": round(100 * lo, 4),",
  "\"uplift_pp\": round(100 * d, 4), \"uplift_low\": round(100 * lo + 50, 4),",
  "tests/test_shops.py -k winback_page"),
 ("exports: --preset not passed to the notebooks", "src/helpers/runner.py",
  "config_text_with(config_file, {\"columns\": {\"preset\": preset}},",
  "config_text_with(config_file, {},",
  "tests/test_exports.py -k 'full_report or shopify_page'"),
 ("exports: the refund note gone from 01", "src/helpers/presets.py",
  "refund_note=(\"Shopify's Refunded Amount has no date:",
  "refund_note=(\"Shopify's refunds have no date:",
  "tests/test_exports.py -k shopify_page"),
 ("pipeline: the fit cap's sentence", "src/helpers/clv.py",
  "stopped at its cap of {max_evaluations:,} likelihood evaluations",
  "stopped after {max_evaluations:,} likelihood evaluations",
  "tests/test_pipeline.py"),
 ("privacy: a raw customer id on page 03", "src/helpers/pages/segments.py",
  "    return \"\\n\".join(res.notes) or (",
  "    res.notes = res.notes + [f\"Top customer: {res.customers['customer_id'].iloc[0]}.\"]\n    return \"\\n\".join(res.notes) or (",
  "tests/test_privacy.py"),
 ("privacy: CSV formulas not escaped", "src/helpers/artifacts.py",
  "    out = df.copy()\n    for col in out.columns:",
  "    out = df.copy()\n    return out\n    for col in out.columns:",
  "tests/test_privacy.py"),
 ("agreement: 07's revenue off by one euro", "src/helpers/pages/summary.py",
  "        s = f\"In {month.month} revenue was {plots.money(rev.this_month, currency)}\"",
  "        s = f\"In {month.month} revenue was {plots.money(rev.this_month + 1, currency)}\"",
  "tests/test_agreement.py -k revenue"),
 ("spark: the comparison ignores model outputs", "tests/test_spark_parity.py",
  "ok = np.abs(a - b) <= 0.01 + 1e-9 if _is_money(e) else np.isclose(b, a, rtol=1e-4, atol=1e-12)",
  "ok = np.abs(a - b) <= 0.01 + 1e-9 if _is_money(e) else np.isclose(b, a, rtol=1e-1, atol=1e-12)",
  "tests/test_spark_parity.py"),
 ("sweep: a warning on a page with swept settings", "src/helpers/pages/segments.py",
  "    return \"\\n\".join(res.notes) or (",
  "    import warnings; warnings.warn('mutant', UserWarning)\n    return \"\\n\".join(res.notes) or (",
  "tests/test_config_sweep.py -k every_notebook_runs"),
 ("process (200 customers): stale CLV files kept after 04 fails", "src/helpers/runner.py",
  "            if p.is_file() and p.stat().st_mtime_ns < since_ns:",
  "            if False:",
  "tests/test_process.py -k failing_notebook"),
 ("demo shop from conftest: the generator's truth.json differs from what it returns", "src/helpers/demo.py",
  "    return truth\n", "    return {**truth, 'seed': -1}\n",
  "tests/test_demo.py -k truth_json"),
]
only = sys.argv[1:]
for i, (what, file, old, new, tests) in enumerate(M):
    if only and str(i) not in only:
        continue
    p = ROOT / file
    src = p.read_text()
    assert src.count(old) == 1, (what, src.count(old))
    p.write_text(src.replace(old, new))
    try:
        t = time.time()
        r = subprocess.run(f"{sys.executable} -m pytest {tests} -q -x -p no:cacheprovider", shell=True, cwd=ROOT,
                           capture_output=True, text=True)
        last = [l for l in r.stdout.splitlines() if l.strip()][-1]
        if only: print("\n".join([l for l in r.stdout.splitlines() if l.startswith("E ")][:8]))
        print(f"[{i}] {what}: {'CAUGHT' if r.returncode else 'MISSED'} ({last}; {time.time()-t:.0f} s)", flush=True)
    finally:
        p.write_text(src)
