"""The unit of privacy: its two levels, the words that name them, and which covers which.

Unit matching: a claim's unit is free text (``"one client's local data (replace-one, L2
sensitivity 2C per release)"``, ``"one training example (sample-level DP-SGD accounting,
add-or-remove)"``). Its level (:func:`unit_level`) is that of the *first* of these words in
it (whole words, case-insensitive; ``client's`` counts): ``client``, ``user``, ``device``,
``participant`` -> client level; ``example``, ``record``, ``sample``, ``data point`` ->
example level. The first word names whose data the unit is ("one example of a client" is
example level). Client level contains example level (changing one example changes one
client's data), so a client-level claim satisfies ``unit_of_privacy = "example"`` with the
same epsilon, and an example-level claim does not satisfy ``"client"`` (SP 800-226:
user-level privacy protects more than event-level; :data:`LEVEL_COVERS`). A claim whose
unit is missing or has none of the words FAILs: the unit must be stated (SP 800-226). The
policy value accepts the same words (:data:`UNIT_ALIASES`: ``user``/``device``/
``participant`` mean ``client``; ``record``/``sample`` mean ``example``).

:func:`neighbouring_relation` reads the neighbouring relation (replace-one or
add-or-remove) stated in a claim's unit or mechanism text; it is shown, not converted.
"""

from __future__ import annotations

import re

#: unit_of_privacy values accepted in a policy -> the level they mean
UNIT_ALIASES = {
    "client": "client", "user": "client", "device": "client", "participant": "client",
    "example": "example", "record": "example", "sample": "example",
}
#: containment of the levels: a claim at a level protects every level listed for it
LEVEL_COVERS = {"client": ("client", "example"), "example": ("example",)}
_UNIT_WORDS = re.compile(
    r"\b(?P<client>clients?|users?|devices?|participants?)\b"
    r"|\b(?P<example>examples?|records?|samples?|data[ -]points?|datapoints?)\b",
    re.IGNORECASE,
)


def unit_level(unit: str | None) -> str | None:
    """``"client"``, ``"example"`` or None: the level named by the first unit word in
    ``unit`` (see the module docstring, "Unit matching")."""
    if not unit:
        return None
    m = _UNIT_WORDS.search(unit)
    if m is None:
        return None
    return "client" if m.group("client") else "example"


def neighbouring_relation(claim: dict) -> str | None:
    """``"replace-one"``, ``"add-or-remove"`` or None: the neighbouring relation named in
    the claim's ``unit`` or ``mechanism`` text."""
    text = f"{claim.get('unit') or ''} {claim.get('mechanism') or ''}".lower()
    if "replace-one" in text or "replace one" in text:
        return "replace-one"
    if "add-or-remove" in text or "add/remove" in text or "add or remove" in text:
        return "add-or-remove"
    return None
