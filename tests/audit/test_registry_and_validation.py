"""Registries list valid names on error; parameter checks use one wording."""

import math

import pytest

from audit.core.config import AuditConfig, parse_pairs, parse_value
from audit.core.errors import InvalidParameterError
from audit.core.registry import Registry
from audit.core.validation import check_interval, check_options


def test_registry_unknown_name_lists_valid_ones():
    reg = Registry("widget")
    reg.register("a", lambda: 1, summary="first")
    reg.register("b", lambda: 2)
    with pytest.raises(InvalidParameterError, match=r"Unknown widget 'c'; valid widgets are: a, b"):
        reg.create("c")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", lambda: 3)
    reg.register("a", lambda: 3, force=True)
    assert reg.create("a") == 3 and reg.names() == ["a", "b"]


@pytest.mark.parametrize("value", [0.0, -1.0, math.nan, "x", True])
def test_interval_wording(value):
    with pytest.raises(InvalidParameterError, match=r"The 'clip' parameter of F must be a float.* Got .* instead"):
        check_interval("clip", "F", value, low=0, closed="right")


def test_options_wording():
    with pytest.raises(InvalidParameterError, match=r"among \{'a', 'b'\}\. Got 'c' instead"):
        check_options("mode", "F", "c", ("a", "b"))


def test_cli_values_are_typed():
    assert parse_value("3") == 3 and parse_value("1e-5") == 1e-5 and parse_value("true") is True
    assert parse_value("none") is None and parse_value("local") == "local"
    assert parse_pairs(["a=1", "b = x"], "--p") == {"a": 1, "b": "x"}
    with pytest.raises(InvalidParameterError, match="'novalue'"):
        parse_pairs(["novalue"], "--p")


@pytest.mark.parametrize("field, value", [("batch_size", 0), ("num_targets", -1), ("rounds", 0), ("seed", -3)])
def test_config_rejects_bad_counts(field, value):
    with pytest.raises(InvalidParameterError, match=field):
        AuditConfig(**{field: value})


def test_check_table_keys_names_the_key_the_place_and_the_valid_keys():
    from audit.core.validation import check_table_keys

    check_table_keys({"a": 1}, ["a", "b"], "spec 'x'")
    with pytest.raises(InvalidParameterError, match=r"Unknown key 'base.c' in spec 'x'; valid keys are: a, b\."):
        check_table_keys({"c": 1}, ["a", "b"], "spec 'x'", prefix="base.")
    with pytest.raises(InvalidParameterError, match=r"The spec 'x' must hold a table of settings. Got list"):
        check_table_keys([1], ["a"], "spec 'x'")
