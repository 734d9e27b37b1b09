"""Config sweep (issue 15): every setting at a valid value the demo never uses, and every invalid one refused.

The settings are read from the pydantic models in helpers.config, not from a hand list, so a setting added
there is swept here without touching this file (or this file says which rule it lacks):

- Valid: each numeric, list, choice and yes/no setting gets a non-default value from its declaration -
  run "low" takes the low end of its range (or the shortest list, or an empty one where allowed), run "high"
  the other end (or a longer or different list, another segment grid), all settings of a run at once. Fit
  and sampling budgets (``BUDGETS``) stay small but workable in both, so the other settings reach the fitted
  models; run "budgets" is "high" with every budget at the bottom of its range (every fit stops at once).
  Each run executes the seven notebooks' code cells in-process (tests/months.py), as papermill would (each stage's ``run()``
  and every table, figure and takeaway a reader sees), on a 200-customer demo shop: no error, no warning
  on the page, every artifact with its declared columns.
- Invalid: each setting gets the values its declaration refuses (below or above its range, the wrong type,
  an empty list where one is needed, a choice not offered); each is refused at load with one sentence
  naming the dotted key.

The last section pins, on frames built in the test, each failure the sweep found.
"""
from __future__ import annotations

import copy
import datetime
import json
import re
import shutil
import types
import typing
import warnings
from pathlib import Path
from types import SimpleNamespace

import annotated_types as at
import matplotlib
import pandas as pd
import pytest
import yaml
from threadpoolctl import threadpool_limits

import months
from helpers import artifacts, demo, offers, summary, winback
from helpers.config import SECTIONS, Config, ConfigError, SegmentsConfig, config_from_dict
from helpers.pages import kpis as kpis_page
from helpers.pages import segments as segments_page
from helpers.pages import offers as offers_page, winback as winback_page

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
AS_OF = "2026-06-30"
RUNS = ("low", "high", "budgets")
DEFAULTS = Config().model_dump(exclude={"source"})

# Fit and sampling budgets: (low, high, minimum). Their far end would only make the sweep slow, so runs
# "low" and "high" use small values that still let the models fit (so the other settings reach the fitted
# models), below the shop's 200 customers where a sample is drawn; run "budgets" is run "high" with each
# budget at the bottom of its range (every fit stops at once).
BUDGETS = {
    ("clv", "max_evaluations"): (200, 200, 1),
    ("clv", "fit_seconds"): (10.0, 5.0, 0.01),
    ("clv", "sample_customers"): (150, 100, 1),
    ("segments", "k_max"): (2, 7, 2),
    ("segments", "silhouette_sample"): (150, 100, 2),
    ("churn", "max_iter"): (10, 50, 1),
    ("churn", "max_train_rows"): (150, 100, 1),
    ("churn", "backtest_rows"): (150, 100, 1),
    ("churn", "importance_rows"): (50, 100, 1),
    ("churn", "importance_repeats"): (1, 2, 1),
    ("winback", "draws"): (200, 300, 1),
    ("offers", "evaluation_customers"): (150, 100, 1),
    # null (OMP_NUM_THREADS, 1 in the tests) is the default; more threads than cores' share make a fit many
    # times slower on shared cores
    ("churn", "model_threads"): (2, 2, 1),
}
# A different valid segment grid (five segments instead of eleven) for run "high"; the settings that
# name segments follow it (a grid has no "low end" to derive).
OTHER_GRID = {"Best": {"r": "4-5", "fm": "4-5"}, "Recent": {"r": "4-5", "fm": "1-3"}, "Middle": {"r": 3, "fm": "1-5"},
              "Slipping": {"r": "1-2", "fm": "3-5"}, "Gone": {"r": "1-2", "fm": "1-2"}}
# The decimal separator describes the file, not a choice to sweep: "," reads the demo's "12.50" as 1250
# (the robustness tests read comma-decimal files).
FILE_FORMAT = {("cleaning", "decimal_separator"): "."}
# Cleaning rules whose far end legitimately leaves no order line (a stop, tested in test_robustness): a cap
# of 0.01 per line or a first order date after the shop's last order. Swept at ends that keep the month.
KEEP_THE_MONTH = {("cleaning", "max_line_amount"): {"low": 1e6, "high": 150.0},
                  ("cleaning", "min_order_date"): {"low": datetime.date(1970, 1, 1), "high": datetime.date(2024, 1, 1)}}
SEGMENT_NAMES = {"low": {("segments", "watch"): [], ("winback", "candidate_segments"): []},
                 "high": {("segments", "grid"): OTHER_GRID, ("segments", "watch"): ["Gone", "Slipping"],
                          ("winback", "candidate_segments"): ["Slipping", "Gone", "Middle"]}}


# ---------------------------------------------------------------------------------------------
# Reading the declarations


def _settings():
    """(section, key, field) for every setting of every section, in the order of config/default.yml."""
    for section, model in SECTIONS.items():
        for key, field in model.model_fields.items():
            yield section, key, field


def _unwrap(tp, metadata=()) -> tuple[typing.Any, list, bool]:
    """(base type, constraints, null allowed) of an annotation such as ``Annotated[int, Field(gt=0)] | None``."""
    constraints, optional = list(metadata), False
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        arms = [a for a in typing.get_args(tp) if a is not type(None)]
        optional = len(arms) < len(typing.get_args(tp))
        if len(arms) == 1:
            tp = arms[0]
    while typing.get_origin(tp) is typing.Annotated:
        tp, *extra = typing.get_args(tp)
        for item in extra:
            constraints += getattr(item, "metadata", [item])
    return tp, constraints, optional


def _bounds(constraints) -> dict:
    out = {}
    for c in constraints:
        for name in ("gt", "ge", "lt", "le", "min_length", "max_length"):
            if hasattr(c, name) and isinstance(c, (at.Gt, at.Ge, at.Lt, at.Le, at.MinLen, at.MaxLen)):
                out[name] = getattr(c, name)
    return out


def _is_text(tp) -> bool:
    base, _, _ = _unwrap(tp)
    if base is str:
        return True
    return typing.get_origin(base) is dict and all(_unwrap(a)[0] is str for a in typing.get_args(base))


# Settings that say what the raw files are, not how to analyse them: the demo shop is in the raw data
# contract, not a platform export (the presets have their own shops in tests/test_exports.py).
DESCRIBES_THE_FILES = {("columns", "preset")}
# Settings read only when engine.backend is spark: the sweep runs on DuckDB (tests/test_spark_parity.py runs
# Spark with its own engine.spark_conf; tests/test_engine.py checks the setting's validation).
SPARK_ONLY = {("engine", "spark_conf")}


def swept_settings() -> list[tuple[str, str]]:
    """Every setting but the free-text ones (names, formats, column maps): numbers, lists, choices, yes/no."""
    return [(s, k) for s, k, f in _settings()
            if not _is_text(f.annotation) and (s, k) not in DESCRIBES_THE_FILES | SPARK_ONLY]


# ---------------------------------------------------------------------------------------------
# Valid values the demo never uses


def _number(base, b: dict, default, end: str):
    """The low or high end of a number's allowed range (one step inside an open bound)."""
    lo = b.get("ge", b.get("gt"))
    hi = b.get("le", b.get("lt"))
    if base is int:
        low = 0 if lo is None else lo if "ge" in b else lo + 1
        high = hi if hi is not None else (default + 1 if lo is None else max(3 * (default or 1), low + 1))
        if "lt" in b:
            high -= 1
    else:
        step = 0.01 * (hi - lo) if lo is not None and hi is not None else 0.01
        low = 0.0 if lo is None else lo if "ge" in b else lo + step
        high = hi if "le" in b else hi - step if hi is not None else 4 * default if default else 1.0
        low, high = round(low, 6), round(high, 6)
    value = low if end == "low" else high
    if value == default:  # the default sits at this end: one step inside the range
        value = round(default + (1 if base is int else step) * (1 if end == "low" else -1), 6)
    return value


def _list(base, b: dict, default: list, end: str) -> list:
    item, constraints, _ = _unwrap(typing.get_args(base)[0])
    lo_len, hi_len = b.get("min_length", 0), b.get("max_length")
    if typing.get_origin(item) is typing.Literal:
        choices = list(typing.get_args(item))
        return ([] if lo_len == 0 else choices[:lo_len]) if end == "low" else choices
    if item is str:
        if end == "low":
            return [] if lo_len == 0 else default[:lo_len]
        return default[:1] if len(default) > 1 else [*default, "other"]
    ib = _bounds(constraints)
    if end == "low":  # the smallest list, from the low end of the items' range
        n = max(lo_len, 1) if lo_len or item is int else 0
        first = _number(item, ib, None, "low")
        step = 1 if item is int else 0.01
        return [round(first + i * step, 6) for i in range(n)]
    if item is int:
        return [3 * v for v in default]
    top = _number(item, ib, None, "high")
    n = len(default) if hi_len is None else min(len(default), hi_len)
    return [round(top - (n - 1 - i) * 0.01, 6) for i in range(n)]


def value_for(section: str, key: str, end: str):
    """A valid non-default value of one setting, derived from its declaration."""
    if (section, key) in SEGMENT_NAMES[end]:
        return SEGMENT_NAMES[end][(section, key)]
    if (section, key) in FILE_FORMAT:
        return FILE_FORMAT[(section, key)]
    if (section, key) in KEEP_THE_MONTH:
        return KEEP_THE_MONTH[(section, key)][end]
    if (section, key) in BUDGETS:
        return BUDGETS[(section, key)][RUNS.index(end)]
    field = SECTIONS[section].model_fields[key]
    default = DEFAULTS[section][key]
    base, constraints, optional = _unwrap(field.annotation, field.metadata)
    b = _bounds(constraints)
    if base is bool:
        return not default if end == "low" else default
    if typing.get_origin(base) is typing.Literal:
        others = [c for c in typing.get_args(base) if c != default]
        return others[min(RUNS.index(end), len(others) - 1)]
    if base in (int, float):
        if default is None:  # an optional cap or count that is off by default: switch it on, loose or tight
            return {"low": 1 if base is int else 1e6, "high": _number(base, b, None, "low") + (base is int)}[end]
        if optional and end == "low":
            return None
        return _number(base, b, default, end)
    if typing.get_origin(base) is list:
        return _list(base, b, default, end)
    if key == "assumed_uplift":  # keys follow the offered discounts (see _consistent)
        return {k: (-0.5 if end == "low" else 0.5) for k in default}
    if key == "grid":
        return default
    if key == "exchange_rates":  # the demo's orders are all in EUR: rates for other currencies change nothing
        return {"low": {"USD": 0.01}, "high": {"USD": 0.92, "GBP": 1000.0}}[end]
    raise AssertionError(f"no sweep rule for {section}.{key} ({field.annotation}); add one to tests/test_config_sweep.py")


def _consistent(values: dict) -> dict:
    """The checks across settings (Config._cross_checks): k_max >= k_min, an uplift for each offered discount."""
    seg, wb = values["segments"], values["winback"]
    seg["k_max"] = max(seg["k_max"], seg["k_min"])
    offered = sorted(set(wb["discount_levels"]) | ({0.0} if wb["contact_without_discount"] else set()))
    uplift = next(iter(wb["assumed_uplift"].values()))
    wb["assumed_uplift"] = {d: uplift * (1 + d) for d in offered}
    return values


def run_values(end: str) -> dict:
    values = copy.deepcopy(DEFAULTS)
    for section, key in swept_settings():
        values[section][key] = value_for(section, key, "high" if end == "budgets" else end)
    if end == "budgets":
        for (section, key), (_, _, minimum) in BUDGETS.items():
            values[section][key] = minimum
    return _consistent(values)


@pytest.mark.parametrize("end", RUNS)
def test_each_run_of_the_sweep_is_a_valid_config(end):
    config_from_dict(run_values(end), source=f"sweep-{end}")


def test_every_numeric_list_choice_and_yes_no_setting_is_swept_to_a_non_default_value():
    unswept = [f"{s}.{k}" for s, k in swept_settings()
               if all(run_values(end)[s][k] == DEFAULTS[s][k] for end in RUNS)]
    assert not unswept, f"these settings keep their default in every run: {unswept}"
    assert len(swept_settings()) >= 70  # the sections hold about 75 such settings today


# ---------------------------------------------------------------------------------------------
# The runs: all seven notebooks' code cells in-process


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    raw = tmp_path_factory.mktemp("sweep") / "raw" / "sweepshop"
    demo.generate(raw, customers=200, seed=15)
    return raw


def _run_notebooks(notebooks: list[Path], end: str, raw: Path, processed: Path, folder: Path) -> None:
    """Execute the notebooks in-process as papermill would (tests/months.py); fail on an error or a warning
    a report would show, or an artifact off its declaration."""
    config_path = folder / f"sweep-{end}.yml"
    config_path.write_text(yaml.safe_dump(run_values(end)), encoding="utf-8")
    params = {"as_of": AS_OF, "raw_dir": str(raw), "processed_dir": str(processed), "config_path": str(config_path)}
    for notebook in notebooks:
        try:
            _, raised = months.execute(notebook, params)
        except months.Stopped as stopped:
            pytest.fail(f"with the '{end}' settings: {stopped.failure}")
        # a warning is a box of library text on the report page
        shown = [f"{w.category.__name__}: {w.message}" for w in raised
                 if issubclass(w.category, (UserWarning, RuntimeWarning))
                 and not issubclass(w.category, (DeprecationWarning, FutureWarning))]
        assert not shown, f"{notebook.name} warns with the '{end}' settings: {shown}"
        for name, art in artifacts.ARTIFACTS.items():
            if art.made_by == notebook.stem and art.schema is not None:
                df = artifacts.read(processed, name)
                missing = [c for c in art.columns if c not in df.columns]
                assert not missing, f"{art.file} lost column(s) {missing} with the '{end}' settings"
                artifacts.check(name, df)


# Notebooks 01 (cleaning) and 02 (KPIs) come before every fitted model, so they read no fit budget: runs
# whose settings differ only in BUDGETS ("high" and "budgets") share one execution of them.
FIRST_MODEL_NOTEBOOK = 2  # 03_segments


@pytest.fixture(scope="module")
def months_before_the_models(shop, tmp_path_factory):
    done: dict[str, Path] = {}

    def month(end: str) -> Path:
        values = run_values(end)
        key = json.dumps({s: {k: v for k, v in keys.items() if (s, k) not in BUDGETS} for s, keys in values.items()},
                         sort_keys=True, default=str)
        if key not in done:
            folder = tmp_path_factory.mktemp(f"first-notebooks-{end}")
            processed = folder / "processed" / "sweepshop" / AS_OF[:7]
            _run_notebooks(NOTEBOOKS[:FIRST_MODEL_NOTEBOOK], end, shop, processed, folder)
            done[key] = processed
        return done[key]
    return month


@pytest.mark.parametrize("end", RUNS)
def test_every_notebook_runs_and_every_artifact_keeps_its_columns_with_the_swept_settings(
        end, shop, months_before_the_models, tmp_path):
    processed = tmp_path / "processed" / "sweepshop" / AS_OF[:7]
    shutil.copytree(months_before_the_models(end), processed)
    _run_notebooks(NOTEBOOKS[FIRST_MODEL_NOTEBOOK:], end, shop, processed, tmp_path)


# ---------------------------------------------------------------------------------------------
# Invalid values: refused at load, one sentence naming the key


def invalid_values(section: str, key: str) -> list:
    """Values the declaration refuses: outside the range, the wrong type, too short a list, no such choice."""
    field = SECTIONS[section].model_fields[key]
    base, constraints, optional = _unwrap(field.annotation, field.metadata)
    b = _bounds(constraints)
    bad: list = [[1, 2]] if base is not list and typing.get_origin(base) is not list else [5]
    if base is bool:
        return [*bad, 1, "yes"]
    if base is str:
        patterns = [c.pattern for c in constraints if getattr(c, "pattern", None)]
        return [*bad, 5] + [next(t for t in ("has space;", " ") if not all(re.search(p, t) for p in patterns))
                            for _ in patterns[:1]]
    if typing.get_origin(base) is typing.Literal:
        return [*bad, "no-such-choice"]
    if base in (int, float):
        bad += ["12", True] + ([2.5] if base is int else [])
        if "gt" in b or "ge" in b:
            lo = b.get("gt", b.get("ge"))
            bad.append(lo if "gt" in b else lo - 1)
        if "lt" in b or "le" in b:
            hi = b.get("lt", b.get("le"))
            bad.append(hi if "lt" in b else hi + 1)
        return bad
    if typing.get_origin(base) is list:
        item, item_constraints, _ = _unwrap(typing.get_args(base)[0])
        bad.append(["x", 5] if item is not str else [5])
        if b.get("min_length"):
            bad.append([])
        ib = _bounds(item_constraints)
        if "gt" in ib or "ge" in ib:
            lo = ib.get("gt", ib.get("ge"))
            bad.append([lo if "gt" in ib else lo - 1] * max(b.get("min_length", 1), 1))
        if typing.get_origin(item) is typing.Literal:
            bad.append(["no-such-choice"])
        return bad
    if typing.get_origin(base) is dict:
        return [*bad, "text"]
    if base is datetime.date:
        return [*bad, "2025-13-01", "yesterday", 20250101]
    raise AssertionError(f"no invalid-value rule for {section}.{key} ({field.annotation})")


INVALID = [(s, k, v) for s, k, _ in _settings() for v in invalid_values(s, k)]


@pytest.mark.parametrize("section,key,value", INVALID, ids=[f"{s}.{k}={v!r}" for s, k, v in INVALID])
def test_an_invalid_value_is_refused_at_load_with_one_sentence_naming_the_key(section, key, value):
    with pytest.raises(ConfigError) as err:
        config_from_dict({section: {key: value}}, source="config/shop.yml")  # what load_config calls
    text = str(err.value)
    assert text.startswith(f"config/shop.yml: {section}.{key} must be ")
    assert text.endswith(".") and "\n" not in text and ". " not in text.replace("config/shop.yml", "")
    assert "Traceback" not in text and "pydantic" not in text and "http" not in text
    # pydantic's words ("Input should be a valid integer"), not the reader's
    assert "Input should" not in text and not re.search(r"a valid (string|integer|number|list|boolean|dict)", text)


# ---------------------------------------------------------------------------------------------
# What the sweep found, each pinned on a frame built here


def _campaign_frame(control_segments, treated_segments):
    rows = [{"campaign_id": "C1", "arm": "control", "discount": 0.0, "segment": s, "converted": i % 2}
            for i, s in enumerate(control_segments)]
    rows += [{"campaign_id": "C1", "arm": "discount_10", "discount": 0.1, "segment": s, "converted": 1}
             for s in treated_segments]
    return pd.DataFrame(rows)


def test_a_segment_found_only_in_the_control_arm_gets_no_measured_row_and_the_arm_is_still_measured():
    """A 200-customer shop (seed 15) had a segment in the control arm only: its row had no treated conversion
    rate and winback_measured.csv failed its declaration, stopping notebook 06 with the default config."""
    measured = winback.measure_uplift(_campaign_frame(["A", "A", "B", "B"], ["A", "A"]))
    assert measured[["segment", "n_treated", "n_control"]].values.tolist() == [["all", 2, 4], ["A", 2, 2]]
    assert measured["conv_treated"].tolist() == [1.0, 1.0] and measured["conv_control"].tolist() == [0.5, 0.5]
    artifacts.check("winback_measured", measured)


def _cands(segments):
    return pd.DataFrame({"customer_id": [f"c{i}" for i in range(len(segments))],
                         "segment": pd.Series(segments, dtype=str), "p_baseline": 0.1, "order_value": 50.0,
                         "reason": "segment"})


def test_no_candidate_segment_or_tier_gives_an_empty_plan_with_the_declared_columns():
    """winback.candidate_segments: [] and candidate_risk_tiers: [] (valid: nobody is a candidate) stopped
    notebook 06 with KeyError 'segment'."""
    cfg = config_from_dict({"winback": {"candidate_segments": [], "candidate_risk_tiers": []}})
    cands = _cands([])
    uplift = winback.uplift_assumptions(artifacts.empty("winback_measured"), [], cfg)
    the_plan = winback.plan(winback.simulate(cands, uplift, cfg))
    assert the_plan.empty and list(the_plan.columns) == artifacts.spec("winback_plan").columns
    artifacts.check("winback_plan", the_plan)
    assert winback.customer_rows(cands, uplift, the_plan, cfg).empty


def test_with_no_contact_option_every_segment_is_planned_as_no_contact_and_nobody_gets_an_offer():
    """winback.discount_levels: [] with contact_without_discount: false (valid: only "no contact" is left)
    stopped notebook 06 merging float and text discounts."""
    cfg = config_from_dict({"winback": {"discount_levels": [], "contact_without_discount": False,
                                        "assumed_uplift": {}}})
    cands = _cands(["At Risk", "At Risk", "Lost"])
    uplift = winback.uplift_assumptions(artifacts.empty("winback_measured"), ["At Risk", "Lost"], cfg)
    assert uplift.empty and uplift["discount"].dtype == float
    the_plan = winback.plan(winback.simulate(cands, uplift, cfg))
    assert the_plan[["segment", "option", "recommended"]].values.tolist() == [
        ["At Risk", winback.NO_CONTACT, True], ["Lost", winback.NO_CONTACT, True]]
    rows = winback.customer_rows(cands, uplift, the_plan, cfg)
    assert len(rows) == 3 and not rows["recommended"].any() and rows["discount"].isna().all()
    assert (rows["expected_incremental_profit"] == 0).all()


def _plan_row(segment, discount, profit, option):
    return {"segment": segment, "discount": discount, "n_customers": 46, "incremental_profit": profit,
            "profit_p05": profit / 2, "profit_p95": profit * 2, "recommended": True, "option": option,
            "uplift_source": "assumed"}


def test_the_summary_action_for_a_winning_reminder_without_discount_does_not_call_it_a_0_percent_offer():
    """The 'high' run's summary said "Send the 0% win-back offer to the 46 customers in 'Slipping'"."""
    month = summary.Month("2026-06", {"winback_plan": pd.DataFrame([_plan_row("Slipping", 0.0, 2459.0,
                                                                              "contact, no discount")])})
    action = summary._rule_winback(month, None, Config().summary, "EUR")
    assert "'Slipping', 46 customers, a reminder without a discount, EUR 2,459 (assumed)" in action.text
    assert "0%" not in action.text
    month = summary.Month("2026-06", {"winback_plan": pd.DataFrame([_plan_row("Lost", 0.1, 50.0, "10% off")])})
    assert "'Lost', 46 customers, 10% off, EUR 50" in summary._rule_winback(month, None, Config().summary, "EUR").text


def test_with_no_watched_segment_the_segments_takeaway_leaves_the_watch_sentence_out():
    """segments.watch: [] made the takeaway read "...of net revenue.  together hold 0.0% of customers"."""
    customers = pd.DataFrame({"rfm_segment": ["Lost", "Champions", "Champions"], "monetary": [10.0, 50.0, 40.0]})
    seg = SimpleNamespace(customers=customers, settings=SegmentsConfig(watch=[]))
    text = segments_page.segments_takeaway(seg)
    assert text == ("3 customers in 2 segments. Champions is the segment with the most revenue: 66.7% of customers "
                    "bring 90.0% of net revenue.")
    seg.settings = SegmentsConfig(watch=["Lost"])
    assert segments_page.segments_takeaway(seg).endswith(" Lost holds 33.3% of customers and 10.0% of revenue.")


def test_a_heatmap_of_cohorts_with_no_later_month_says_so_instead_of_warning():
    """kpis.heatmap_cohorts: 1 shows this month's cohort only, which has no month after its first order:
    seaborn warned "All-NaN slice encountered" into the report."""
    matrix = pd.DataFrame({0: [1.0], 1: [float("nan")]}, index=pd.Index(["2026-06"], name="cohort"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ax = kpis_page.plot_cohort_heatmap(SimpleNamespace(cohort_matrix=matrix))
    assert [t.get_text() for t in ax.texts] == ["no cohort shown has a month after its first order yet"]
    plt.close("all")


def test_the_simulation_plot_of_an_empty_plan_says_so_instead_of_warning():
    """No candidate (winback.candidate_segments and candidate_risk_tiers empty) made matplotlib warn "No
    artists with labels found to put in legend" into the report."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ax = winback_page.plot_simulation(winback.WinbackResult(plan=artifacts.empty("winback_plan")))
    assert [t.get_text() for t in ax.texts] == ["no offer simulated"] and ax.get_legend() is None
    plt.close("all")


def test_a_silhouette_sample_too_small_for_k_min_is_named_as_the_reason_for_one_cluster():
    """segments.silhouette_sample: 2 with k_min: 3 gave "Too few distinct customers" for 200 distinct customers."""
    seg = SimpleNamespace(k_scores=pd.DataFrame(columns=["k", "inertia", "silhouette"]), silhouette_sample=2,
                          settings=SegmentsConfig(k_min=3, k_max=3), customers=pd.DataFrame({"customer_id": range(200)}))
    assert segments_page.k_takeaway(seg) == (
        "The sample of 2 customers that scores each k (setting segments.silhouette_sample) is too small for 3 "
        "clusters, so everyone is in one cluster; raise it above 3.")
    seg.customers = pd.DataFrame({"customer_id": range(3)})
    assert segments_page.k_takeaway(seg).startswith("Too few distinct customers")


@pytest.mark.parametrize("share,train,held", [(0.01, 40, 0), (0.99, 0, 40)])
def test_an_uplift_model_with_nobody_to_train_on_or_to_judge_it_says_so(share, train, held):
    """winback.holdout_share at either end of its range: the page said "T-learner ... trained on 83 customers,
    judged on 0 held out" (or trained on 0) as if a model had been fitted and judged."""
    frame = pd.DataFrame({"campaign_id": "C1", "sent_date": pd.Timestamp("2026-01-10"),
                          "arm": ["control", "discount_10"] * 20, "converted": [0, 0, 1, 1] * 10,
                          "x": [float(i) for i in range(40)]})
    cfg = config_from_dict({"winback": {"holdout_share": share}})
    with threadpool_limits(limits=1, user_api="openmp"):  # as fit_uplift_models runs it (spinning threads)
        models = winback.t_learner(frame, ["x"], cfg)
    assert models.areas.empty and not models.curves
    assert models.note.startswith(f"No per-customer uplift model on campaign C1: of its customers {train} are left "
                                  f"to train on and {held} held out to judge it (winback.holdout_share {share:.0%})")


def test_an_expected_profit_outside_its_band_of_few_draws_is_drawn_without_a_negative_error_bar():
    """winback.draws: 1 gives a 5-95 % band of one draw, which the exact expected profit can miss: matplotlib
    refused the negative error bar and notebook 06 stopped."""
    the_plan = pd.DataFrame([{**_plan_row("Lost", 0.1, 10.0, "10% off"), "profit_p05": 20.0, "profit_p95": 30.0}])
    ax = winback_page.plot_simulation(winback.WinbackResult(plan=the_plan))
    assert [p.get_height() for p in ax.patches] == [10.0]
    plt.close("all")


def test_with_everyone_in_one_cluster_the_crosstab_takeaway_does_not_call_a_segment_mixed():
    """Run 'budgets' (one cluster) read "Best map most cleanly onto one cluster (100% ...); Best are the most
    mixed (at most 100% in any one cluster), so the clusters split them by something the fixed grid ignores"."""
    one = pd.DataFrame({"mid value": [5, 3]}, index=["Best", "Gone"])
    seg = SimpleNamespace(crosstab=one)
    assert segments_page.crosstab_takeaway(seg) == (
        "Everyone is in one cluster ('mid value'), so the clusters do not split the segments.")
    seg.crosstab = pd.DataFrame({"a": [5, 0], "b": [0, 3]}, index=["Best", "Gone"])
    assert segments_page.crosstab_takeaway(seg) == (
        "Every segment maps onto one cluster: no segment is split by the clusters.")
    seg.crosstab = pd.DataFrame({"a": [5, 1], "b": [0, 3]}, index=["Best", "Gone"])
    assert segments_page.crosstab_takeaway(seg).startswith(
        "Best map most cleanly onto one cluster (100% in 'a'); Gone are the most mixed (at most 75% in any one")


def _evaluation(personalised, popular, last_time):
    return pd.DataFrame({"hit_rate": [personalised, popular, last_time], "buyers_in_horizon": 70, "cutoff": "2025-10-03"},
                        index=pd.Index(["personalised", "most popular categories", "same as last time"], name="method"))


def test_a_tie_between_personalised_and_baseline_suggestions_is_not_called_a_win():
    """offers.top_n: 9 (as many as the shop's categories) read "'most popular categories' wins (100.0% hit rate
    @9 vs 100.0% personalised)"."""
    def said(evaluation, top_n):
        cfg = config_from_dict({"offers": {"top_n": top_n}})
        return offers_page.evaluation_takeaway(offers.OffersResult(evaluation=evaluation, cfg=cfg.offers))

    assert said(_evaluation(1.0, 1.0, 0.5), 9) == (
        "Built on orders up to 2025-10-03 and checked against what the 70 customers who bought in the next period "
        "actually bought, the personalised suggestions do no better than 'most popular categories' (both 100.0% "
        "hit rate @9), so review the offer settings before using the suggestions.")
    assert "'same as last time' wins (60.0% hit rate @3 vs 50.0% personalised)" in said(_evaluation(0.5, 0.4, 0.6), 3)
