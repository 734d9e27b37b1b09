"""The parity rules between two runs of a month (tests/test_spark_parity.py, scripts/spark_benchmark.py): every
stage run in one process as a notebook runs it, and every artifact compared.

The comparison, sorted by key with integer and timestamp widths normalised: counts, ids and text exactly, money (a
column that the first run stores rounded to the cent) to 0.01, every other number (model outputs) to 1e-4 relative.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import artifacts, churn, clean, clv, forecast, kpis, segments, summary, track, winback

# JSON keys that hold a measurement of the run, not a result (fit time in seconds)
VOLATILE_KEYS = ("seconds", "elapsed", "duration")



def stages(as_of: str) -> tuple:
    """(notebook, run(raw, processed_dir, cfg)) for the seven notebooks of the month `as_of`, in the runner's order,
    each running what its notebook runs (04: the CLV models, then the forecast; 07: the summary, then the track
    record)."""
    return (("01_clean", lambda raw, pdir, cfg: clean.run(pdir, as_of, cfg, raw_dir=raw)),
            ("02_kpis", lambda raw, pdir, cfg: kpis.run(pdir, as_of, cfg)),
            ("03_segments", lambda raw, pdir, cfg: segments.run(pdir, as_of, cfg)),
            ("04_clv", lambda raw, pdir, cfg: forecast.run(pdir, as_of, cfg, clv_result=clv.run(pdir, as_of, cfg))),
            ("05_churn", lambda raw, pdir, cfg: churn.run(pdir, as_of, cfg)),
            ("06_winback", lambda raw, pdir, cfg: winback.run(pdir, as_of, cfg)),
            ("07_summary", lambda raw, pdir, cfg: (summary.run(pdir, as_of, cfg), track.run(pdir, as_of, cfg))))


def _frame(processed_dir: Path, name: str) -> pd.DataFrame:
    df = artifacts.read(processed_dir, name)
    out = pd.DataFrame(index=range(len(df)))
    for c in df.columns:
        s = df[c].reset_index(drop=True)
        if pd.api.types.is_datetime64_any_dtype(s):
            s = s.dt.tz_localize(None) if s.dt.tz is not None else s
            s = s.astype("datetime64[us]")
        elif pd.api.types.is_bool_dtype(s):
            s = s.astype("boolean")
        elif pd.api.types.is_integer_dtype(s):
            s = s.astype("Int64")
        elif pd.api.types.is_float_dtype(s):
            s = s.astype("float64")
        else:
            s = s.astype("string")
        out[c] = s
    keys = [c for c in out.columns if not pd.api.types.is_float_dtype(out[c])]
    return out.sort_values(keys, kind="stable", na_position="last").reset_index(drop=True) if keys else out


def _is_money(s: pd.Series) -> bool:
    x = s.dropna().to_numpy()
    return len(x) > 0 and bool(np.all(np.abs(x - np.round(x, 2)) < 1e-9))


def table_differences(expected: pd.DataFrame, got: pd.DataFrame, name: str) -> list[str]:
    """What differs between two normalised artifact frames, one sentence each (empty: the same)."""
    if list(expected.columns) != list(got.columns):
        return [f"{name}: columns {list(got.columns)} instead of {list(expected.columns)}"]
    if len(expected) != len(got):
        return [f"{name}: {len(got)} rows instead of {len(expected)}"]
    out = []
    for c in expected.columns:
        e, g = expected[c], got[c]
        if pd.api.types.is_float_dtype(e):
            a, b = e.to_numpy(float), g.to_numpy(float)
            if not np.array_equal(np.isnan(a), np.isnan(b)):
                out.append(f"{name}.{c}: missing values differ")
                continue
            a, b = a[~np.isnan(a)], b[~np.isnan(b)]
            # money to the cent (a half-cent tie may round either way), model outputs to 1e-4 relative
            ok = np.abs(a - b) <= 0.01 + 1e-9 if _is_money(e) else np.isclose(b, a, rtol=1e-4, atol=1e-12)
            if not ok.all():
                i = int(np.argmin(ok))
                out.append(f"{name}.{c}: {int((~ok).sum())} values differ (e.g. {b[i]!r} instead of {a[i]!r})")
        else:
            same = (e.isna() & g.isna()) | (e == g).fillna(False)
            if not same.all():
                i = int(np.argmin(same.to_numpy()))
                out.append(f"{name}.{c}: {int((~same).sum())} values differ (e.g. {g.iloc[i]!r} instead of {e.iloc[i]!r})")
    return out


def json_differences(expected, got, where: str) -> list[str]:
    if isinstance(expected, dict) and isinstance(got, dict):
        if set(expected) != set(got):
            return [f"{where}: keys {sorted(set(got) ^ set(expected))} in one run only"]
        return [d for k in expected if not any(v in str(k) for v in VOLATILE_KEYS)
                for d in json_differences(expected[k], got[k], f"{where}.{k}")]
    if isinstance(expected, list) and isinstance(got, list):
        if len(expected) != len(got):
            return [f"{where}: {len(got)} items instead of {len(expected)}"]
        return [d for i, (e, g) in enumerate(zip(expected, got)) for d in json_differences(e, g, f"{where}[{i}]")]
    if isinstance(expected, float) and isinstance(got, (int, float)) and not isinstance(got, bool):
        if math.isnan(expected) and math.isnan(got):
            return []
        return [] if math.isclose(got, expected, rel_tol=1e-4, abs_tol=1e-9) else [f"{where}: {got!r} instead of {expected!r}"]
    return [] if expected == got else [f"{where}: {got!r} instead of {expected!r}"]


def month_differences(expected_dir: Path, got_dir: Path) -> list[str]:
    """Every difference between two runs of a month, artifact by artifact (absent in both: skipped)."""
    out = []
    for name, art in artifacts.ARTIFACTS.items():
        there = artifacts.exists(expected_dir, name), artifacts.exists(got_dir, name)
        if there != (True, True):
            if any(there):
                out.append(f"{art.file}: written by one run only")
            continue
        if art.kind == "json":
            out += json_differences(artifacts.read(expected_dir, name), artifacts.read(got_dir, name), art.file)
        else:
            out += table_differences(_frame(expected_dir, name), _frame(got_dir, name), art.file)
    return out


def run_stages(raw: Path, processed_dir: Path, cfg, as_of: str) -> dict[str, float]:
    """Every stage of the month in this process; the seconds each took."""
    times = {}
    for stage, run in stages(as_of):
        start = time.perf_counter()
        run(raw, processed_dir, cfg)
        times[stage] = round(time.perf_counter() - start, 1)
    return times
