"""Tests of reports.schema: validate_report and strip_volatile."""

from __future__ import annotations

import copy

import pytest
from sample_report import make_report

from audit.core.errors import InvalidParameterError
from reports.schema import SCHEMA_VERSION, VOLATILE_KEYS, strip_volatile, validate_report


def test_sample_is_valid_and_returned_unchanged():
    report = make_report()
    before = copy.deepcopy(report)
    assert validate_report(report) is report
    assert report == before
    assert SCHEMA_VERSION == "1.0"
    assert VOLATILE_KEYS == ("created_utc", "runtime_s")


@pytest.mark.parametrize("version, word", [("0.9", "older"), ("2.0", "newer"), ("1.0-beta", "")])
def test_wrong_schema_version_names_found_and_supported(version, word):
    report = make_report()
    report["schema_version"] = version
    with pytest.raises(InvalidParameterError) as info:
        validate_report(report)
    msg = str(info.value)
    assert "schema_version" in msg and repr(version) in msg and "'1.0'" in msg
    assert word in msg
    assert "\n" not in msg


def test_missing_key_names_the_path():
    report = make_report()
    del report["findings"][0]["claim"]["epsilon"]
    with pytest.raises(InvalidParameterError, match=r"findings\[0\]\.claim\.epsilon"):
        validate_report(report)


@pytest.mark.parametrize(
    "mutate, path",
    [
        (lambda r: r["findings"][0]["claim"].__setitem__("epsilon", "8"),
         "findings[0].claim.epsilon"),
        (lambda r: r["findings"][0]["claim"].__setitem__("has_dp", 1), "findings[0].claim.has_dp"),
        (lambda r: r["findings"][0]["claim"].__setitem__("delta", 2.0), "findings[0].claim.delta"),
        (lambda r: r["findings"][0]["claim"].__setitem__("trust_model", "global"),
         "findings[0].claim.trust_model"),
        (lambda r: r["findings"][1]["metrics"][0].__setitem__("direction", "up"),
         "findings[1].metrics[0].direction"),
        (lambda r: r["findings"][0]["metrics"][0]["per_item"].__setitem__(1, float("nan")),
         "findings[0].metrics[0].per_item[1]"),
        (lambda r: r["findings"][0]["setting"].__setitem__("batch_size", 2.0),
         "findings[0].setting.batch_size"),
        (lambda r: r["findings"][0]["defense"]["params"].__setitem__("bad", [1, 2]),
         "findings[0].defense.params.bad"),
        (lambda r: r["findings"][0]["images"].__setitem__("png_base64", "not base64!"),
         "findings[0].images.png_base64"),
        (lambda r: r["environment"].__setitem__("threads", "4"), "environment.threads"),
        (lambda r: r.__setitem__("seed", True), "seed"),
        (lambda r: r.__setitem__("notes", "one note"), "notes"),
        (lambda r: r.__setitem__("created_utc", "yesterday"), "created_utc"),
        (lambda r: r.__setitem__("kind", "other"), "kind"),
        (lambda r: r["findings"][1].__setitem__("id", "dpsgd-ig"), "findings[1].id"),
    ],
)
def test_wrong_type_names_the_path(mutate, path):
    report = make_report()
    mutate(report)
    with pytest.raises(InvalidParameterError) as info:
        validate_report(report)
    msg = str(info.value)
    assert repr(path) in msg, msg
    assert "\n" not in msg


def test_not_a_dict():
    with pytest.raises(InvalidParameterError, match="JSON object"):
        validate_report([1, 2])


def test_extra_keys_and_null_images_are_allowed():
    report = make_report()
    report["extra"] = {"anything": 1}
    report["findings"][0]["images"] = None
    report["findings"][0]["metrics"][0]["baseline"] = None
    validate_report(report)


def test_strip_volatile_removes_keys_at_every_level_and_copies():
    report = make_report()
    stripped = strip_volatile(report)
    assert "created_utc" not in stripped and "runtime_s" not in stripped
    assert all("runtime_s" not in f for f in stripped["findings"])
    assert "runtime_s" in report["findings"][0]  # input untouched
    stripped["findings"][0]["setting"]["model_params"]["hidden"].append(1)
    assert report["findings"][0]["setting"]["model_params"]["hidden"] == [64]
    other = make_report()
    other["created_utc"] = "2030-01-01T00:00:00+00:00"
    other["runtime_s"] = 99.0
    other["findings"][1]["runtime_s"] = 42.0
    assert strip_volatile(other) == strip_volatile(make_report())
