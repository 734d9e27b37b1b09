"""Config: defaults load, typos and out-of-range values stop with one sentence naming the key."""
import pytest

from helpers.config import ConfigError, config_from_dict, load_config


def test_default_config_loads_with_the_documented_defaults():
    cfg = load_config("config/default.yml")
    assert cfg.engine.backend == "duckdb"
    assert cfg.business.inactivity_days == 180
    assert cfg.cleaning.decimal_separator == "auto"


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


def test_missing_config_file_says_what_to_do(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yml")
