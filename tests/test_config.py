"""Config: defaults load, typos and out-of-range values stop with one sentence naming the key."""
import pydantic
import pytest

from helpers.config import (ClvConfig, Config, ConfigError, EngineConfig, SegmentsConfig, config_from_dict,
                            load_config)


def test_default_config_loads_with_the_documented_defaults():
    cfg = load_config("config/default.yml")
    assert cfg.engine.backend == "duckdb"
    assert cfg.business.inactivity_days == 180
    assert cfg.cleaning.decimal_separator == "auto"
    assert cfg.source == "config/default.yml"


def test_default_yml_holds_exactly_the_model_defaults():
    assert load_config("config/default.yml").replace(source="defaults") == Config()


def test_every_section_builds_with_no_arguments():
    cfg = Config()
    assert cfg.source == "defaults" and EngineConfig().memory_limit == "3GB" and EngineConfig().parallel_notebooks == 2
    assert len(SegmentsConfig().grid_cells()) == 25
    assert cfg.winback.assumed_uplift[0.0] == 0.007 and cfg.clv.horizons_days == [30, 90, 365]


def test_config_is_frozen_and_replace_gives_a_validated_copy():
    cfg = Config()
    with pytest.raises(pydantic.ValidationError):
        cfg.clv.holdout_days = 30
    assert cfg.replace(clv=cfg.clv.replace(holdout_days=30)).clv.holdout_days == 30
    assert cfg.clv.holdout_days == 180
    with pytest.raises(ValueError, match="holdout_days"):
        cfg.clv.replace(holdout_days=-1)


def test_unknown_key_names_the_section_and_the_known_keys():
    with pytest.raises(ConfigError, match=r"unknown key 'cleaning.decimal_sep'.*decimal_separator"):
        config_from_dict({"cleaning": {"decimal_sep": ","}})


@pytest.mark.parametrize("values,match", [
    ({"cleaning": {"decimal_separator": ";"}}, "decimal_separator"),
    ({"business": {"inactivity_days": -5}}, "inactivity_days must be a positive"),
    ({"columns": {"orders": {"Email": 3}}}, "columns.orders"),
])
def test_invalid_values_are_refused_with_the_key_named(values, match):
    with pytest.raises(ConfigError, match=match):
        config_from_dict(values)


@pytest.mark.parametrize("values,message", [
    ({"clv": {"holdout_days": -3}}, "config/x.yml: clv.holdout_days must be a positive whole number, got -3."),
    ({"churn": {"max_iter": True}}, "config/x.yml: churn.max_iter must be a positive whole number, got True."),
    ({"summary": {"kpi_change": 1.5}},
     "config/x.yml: summary.kpi_change must be a share between 0 and 1 (0.05 = 5 %), got 1.5."),
    ({"clv": {"foo": 1}}, "config/x.yml: unknown key 'clv.foo'; known keys under 'clv' are time_unit, holdout_days, "),
    ({"cvl": {}}, "config/x.yml: unknown section 'cvl'; known sections are shop, engine, columns, "),
    ({"winback": {"candidate_segments": ["At Rsk"]}},
     "config/x.yml: winback.candidate_segments must list segment names from segments.grid ("),
    ({"segments": {"grid": {**SegmentsConfig().grid, "Promising": {"r": 4, "fm": 2}}}},
     "config/x.yml: segments.grid: cell R=4, FM=2 is in both 'Potential Loyalists' and 'Promising'; "),
    ({"engine": {"memory_limit": "8GB; DROP"}}, "config/x.yml: engine.memory_limit must be a size such as \"8GB\""),
    ({"engine": {"threads": 0}},
     "config/x.yml: engine.threads must be a positive whole number or null (all cores), got 0."),
    ({"engine": {"parallel_notebooks": 0}},
     "config/x.yml: engine.parallel_notebooks must be a positive whole number (1 = one notebook at a time), got 0."),
    ({"winback": {"assumed_uplift": {0.0: 0.007, 0.05: 0.01}}},
     "config/x.yml: winback.assumed_uplift must map every offered discount "),
    ({"winback": {"discount_levels": [0.1, 0.05]}},
     "config/x.yml: winback.discount_levels must be rising shares between 0 and 1 (0.1 = 10 % off), got [0.1, 0.05]: values must rise."),
    ({"segments": {"watch": ["Gone"]}},
     "config/x.yml: segments.watch must list segment names from segments.grid, got ['Gone']."),
    ({"engine": {"backend": "duck db"}}, "config/x.yml: engine.backend must be duckdb, spark or "),
    ({"offers": {"repeat_min_orders": 1}},
     "config/x.yml: offers.repeat_min_orders must be a whole number of at least 2"),
    ({"clv": 5}, "config/x.yml: 'clv' must be a mapping of keys to values, got 5."),
])
def test_each_kind_of_error_is_one_sentence_naming_the_file_and_the_key(values, message):
    with pytest.raises(ConfigError) as err:
        config_from_dict(values, source="config/x.yml")
    text = str(err.value)
    assert text.startswith(message)
    assert text.endswith(".") and text.count(". ") == 0 and "\n" not in text


def test_assumed_uplift_without_contact_only_needs_the_discount_levels():
    cfg = config_from_dict({"winback": {"contact_without_discount": False, "discount_levels": [0.1],
                                        "assumed_uplift": {0.1: 0.02}}})
    assert cfg.winback.assumed_uplift == {0.1: 0.02}


def test_a_valid_unusual_config_loads(tmp_path):
    path = tmp_path / "shop.yml"
    path.write_text("clv: {clv_months: 6, horizons_days: [7, 30], gross_margin: 1}\n"
                    "offers: {top_n: 5}\nsegments: {k_min: 4, k_max: 4}\nengine: {memory_limit: 512 MiB, threads: 2}\n"
                    "winback: {assumed_uplift: {0: 0.01, 0.05: 0.015, 0.1: 0.025, 0.15: 0.035, 0.2: 0.045},"
                    " budget: 500}\n"
                    "columns:\n", encoding="utf-8")
    cfg = load_config(path)
    assert (cfg.clv.clv_months, cfg.clv.horizons_days, cfg.offers.top_n) == (6, [7, 30], 5)
    assert cfg.clv.gross_margin == 1.0 and isinstance(cfg.clv.gross_margin, float)
    assert cfg.segments.k_min == cfg.segments.k_max == 4
    assert cfg.engine.memory_limit == "512 MiB" and cfg.columns.orders == {}
    assert list(cfg.winback.assumed_uplift)[0] == 0.0 and cfg.winback.budget == 500


def test_clv_section_alone_keeps_its_defaults():
    assert ClvConfig(gross_margin=0.5).holdout_days == 180


def test_a_source_key_in_the_file_is_refused():
    with pytest.raises(ConfigError, match="unknown section 'source'"):
        config_from_dict({"source": "elsewhere.yml"})


def test_missing_config_file_says_what_to_do(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yml")


@pytest.mark.parametrize("values,message", [
    ({"cleaning": {"test_statuses": ["test", 5]}}, "x.yml: cleaning.test_statuses must be a list of text values, got ['test', 5]."),
    ({"cleaning": {"test_statuses": "test"}}, "x.yml: cleaning.test_statuses must be a list such as [a, b], got 'test'."),
    ({"winback": {"contact_without_discount": "yes"}},
     "x.yml: winback.contact_without_discount must be true or false, got 'yes'."),
    ({"shop": {"currency": 5}}, "x.yml: shop.currency must be text, got 5."),
])
def test_a_setting_without_a_description_is_described_in_plain_words(values, message):
    """Issue 15 sweep: these said "must be a valid string, got [5]" (the item's rule for the whole list)."""
    with pytest.raises(ConfigError) as err:
        config_from_dict(values, source="x.yml")
    assert str(err.value) == message
