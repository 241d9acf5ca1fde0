"""The hand check of a finding's optional ``exposure`` entry (who is exposed: per-group TPR
at low FPR and the top-k most exposed member ids of a membership attack; Carlini et al.
2022, Aerni et al. 2024), called by :func:`reports.schema.validate_report` and translated
in the published JSON Schema (``$defs/exposure`` of
``reports/schemas/audit-report-1.0.schema.json``).

Project choices: every key the membership audits write is required (so a reader can rely
on them); rates, AUCs, p-values and interval ends lie in [0, 1]; an interval is a list of
two such numbers; a record is named by a str id (its content has no place here); extra
keys are allowed, as everywhere in the report.
"""

from __future__ import annotations

from typing import Any

from reports.schema_checks import _dict, _fail, _float, _image, _int, _join, _key, _options, _str

GROUP_SOURCES = ("class", "user", "none")
#: a group entry's keys: name -> kind
GROUP_KEYS = {"name": "str", "rank": "rank", "members": "count", "non_members": "count",
              "auc": "rate?", "tpr": "rate?", "fpr": "rate?", "interval": "interval?",
              "strict_tpr": "rate?", "strict_fpr": "rate?", "strict_interval": "interval?",
              "global_tpr": "rate?", "global_fpr": "rate?", "global_interval": "interval?",
              "note": "str?"}
TOP_KEYS = {"rank": "rank", "record_id": "str", "group": "str?", "score": "number",
            "p_value": "rate"}
OVERALL_KEYS = {"members": "count", "non_members": "count", "tpr": "rate", "fpr": "rate",
                "interval": "interval"}


def _value(v: Any, path: str, kind: str) -> None:
    nullable = kind.endswith("?")
    kind = kind.rstrip("?")
    if nullable and v is None:
        return
    if kind == "str":
        _str(v, path)
    elif kind in ("rank", "count"):
        _int(v, path, low=1 if kind == "rank" else 0)
    elif kind == "rate":
        _float(v, path, low=0, high=1)
    elif kind == "number":
        _float(v, path)
    elif kind == "interval":
        if not isinstance(v, list) or len(v) != 2:
            raise _fail(path, "a list [low, high] of two numbers in [0, 1]"
                        + (" or null" if nullable else ""), v)
        for i, end in enumerate(v):
            _float(end, f"{path}[{i}]", low=0, high=1)


def _entry(obj: Any, path: str, keys: dict[str, str]) -> None:
    _dict(obj, path)
    for name, kind in keys.items():
        _value(_key(obj, path, name), _join(path, name), kind)




def check_exposure(exposure: Any, path: str) -> None:
    """Check ``finding["exposure"]`` at ``path``; raises naming the first bad key path."""
    _dict(exposure, path)
    get = lambda k: _key(exposure, path, k)  # noqa: E731
    _options(get("group_source"), _join(path, "group_source"), GROUP_SOURCES)
    for key in ("fpr", "strict_fpr", "confidence"):
        _float(get(key), _join(path, key), low=0, high=1)
    for key in ("interval_method", "record_ids", "score"):
        _str(get(key), _join(path, key))
    _entry(get("overall"), _join(path, "overall"), OVERALL_KEYS)
    _int(get("top_k"), _join(path, "top_k"), low=1)
    for key, keys in (("groups", GROUP_KEYS), ("top_exposed", TOP_KEYS)):
        items = get(key)
        if not isinstance(items, list):
            raise _fail(_join(path, key), "a list of objects", items)
        for i, item in enumerate(items):
            _entry(item, f"{_join(path, key)}[{i}]", keys)
    _image(get("image"), _join(path, "image"))
