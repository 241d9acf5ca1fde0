"""Framework mappings: which audit findings evidence each clause of a standard or a regulation.

A framework file (TOML, or YAML with the same keys) maps the clauses of one framework, such
as NIST SP 800-226 or the OWASP Machine Learning Security Top 10, to the evidence fedaudit
can bring. The built-in ones live in ``audit/compliance/frameworks/`` (:data:`BUILTIN`); a
policy picks some by id or adds its own by path (``frameworks`` in
:mod:`audit.compliance.policy`); :func:`load_framework` reads and validates one file,
:func:`resolve_frameworks` a policy's list. How a clause is judged is
:mod:`audit.compliance.framework_eval`.

The format (every key checked; an unknown key, a missing one or a value of the wrong type is
an :class:`~audit.core.errors.InvalidParameterError` naming the file and the key, e.g.
``clauses[3].rules``)::

    name = "OWASP Machine Learning Security Top 10"      # required, text
    version = "2023 (draft v0.3)"                        # required, text
    date = "2023"                                        # required, text
    description = "..."                                  # optional
    [source]                                             # required: the citation
    title = "OWASP Machine Learning Security Top Ten"
    publisher = "OWASP Foundation"
    year = 2023
    url = "https://owasp.org/www-project-machine-learning-security-top-10/"

    [[clauses]]                                          # one or more
    id = "ML04"                                          # unique in the file
    title = "Membership Inference Attack"
    paraphrase = "..."                                   # in the mapping's own words
    note = "..."                                         # optional: the mapping's choices
    # exactly one of three kinds:
    # 1. evidenced by findings: which findings are about this clause, which policy rules judge them
    findings = [{family = ["membership-inference"]}, {metric = ["stage1_membership_tpr_at_1pct_fpr"]}]
    rules = ["max_tpr_at_1pct_fpr", "epsilon_emp_within_claim"]
    not_evidenced = "No membership audit was run."       # what it means when no finding exists
    # 2. all_of = ["a", "b"]: satisfied when each of these clauses of the file is
    # 3. out_of_scope = "why fedaudit cannot evidence it"

Choices of this module:

* A framework's id is its file's name without the suffix (``owasp-ml-top-10``); two selected
  frameworks with the same id are an error.
* ``findings`` is a list of selectors; a finding matches when it matches any of them. A
  selector has one or more of ``family``, ``attack``, ``threat_model`` (the finding's attack
  family, attack name, threat-model name) and ``metric`` (the finding carries a metric of that
  name, trimmed and case-insensitive), each a list of names; all the keys given must match, a
  key matches when one of its names does. Without ``findings`` the clause is about every
  finding the rules' evidence names (the claim rules: ``unit_of_privacy``...).
* ``rules`` are policy rule ids (:data:`~audit.compliance.policy.RULE_KEYS`); it may be empty
  when ``findings`` is given: such a clause can be NOT EVIDENCED, never SATISFIED (no rule
  judges what its findings measure, e.g. attribute inference).
* ``all_of`` names clauses of the same file that are not ``all_of`` themselves (no cycle).
* In a policy, an entry ending in ``.toml``, ``.yaml`` or ``.yml`` or holding a ``/`` is a
  path (:func:`~audit.compliance.policy.framework_is_path`); anything else is a built-in id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from audit.compliance.policy import RULE_KEYS, framework_is_path
from audit.core.config import read_table_file
from audit.core.errors import InvalidParameterError, invalid
from audit.core.validation import check_table_keys

#: the directory of the built-in framework files (package data)
BUILTIN_DIR = Path(__file__).parent / "frameworks"
#: the built-in frameworks, in the order a report shows them (all of them by default)
BUILTIN = ("nist-sp-800-226", "edpb-opinion-28-2024", "eu-ai-act-art-15", "owasp-ml-top-10", "nist-ai-100-2")
TOP_KEYS = ("name", "version", "date", "description", "source", "clauses")
SOURCE_KEYS = ("title", "publisher", "year", "url")
CLAUSE_KEYS = ("id", "title", "paraphrase", "note", "findings", "rules", "not_evidenced", "all_of", "out_of_scope")
SELECTOR_KEYS = ("family", "attack", "threat_model", "metric")


@dataclass(frozen=True)
class Source:
    """The citation of a framework: title, publisher, year, URL (as text)."""

    title: str
    publisher: str
    year: int
    url: str


@dataclass(frozen=True)
class Selector:
    """Which findings a clause is about: every given key must match (empty: not used)."""

    family: tuple[str, ...] = ()
    attack: tuple[str, ...] = ()
    threat_model: tuple[str, ...] = ()
    metric: tuple[str, ...] = ()

    def matches(self, finding: dict) -> bool:
        """Whether ``finding`` (a ``report.json`` finding) matches every key given."""
        metrics = {m["name"].strip().lower() for m in finding["metrics"]}
        return ((not self.family or finding["attack"]["family"] in self.family)
                and (not self.attack or finding["attack"]["name"] in self.attack)
                and (not self.threat_model or finding["threat_model"]["name"] in self.threat_model)
                and (not self.metric or any(m.strip().lower() in metrics for m in self.metric)))


@dataclass(frozen=True)
class Clause:
    """One clause; its kind is ``"evidence"``, ``"all_of"`` or ``"out_of_scope"``."""

    id: str
    title: str
    paraphrase: str
    note: str | None = None
    findings: tuple[Selector, ...] = ()
    rules: tuple[str, ...] = ()
    not_evidenced: str | None = None
    all_of: tuple[str, ...] = ()
    out_of_scope: str | None = None

    @property
    def kind(self) -> str:
        """``"out_of_scope"``, ``"all_of"`` or ``"evidence"``."""
        return "out_of_scope" if self.out_of_scope else "all_of" if self.all_of else "evidence"


@dataclass(frozen=True)
class Framework:
    """A validated framework file: its id (the file's stem), citation and clauses."""

    id: str
    name: str
    version: str
    date: str
    source: Source
    clauses: tuple[Clause, ...]
    path: str
    builtin: bool
    sha256: str
    description: str | None = None


def _table(value: Any, key: str, owner: str) -> None:
    if not isinstance(value, dict):
        raise invalid(key, owner, "a table", value)


def _text(data: dict, key: str, where: str, owner: str, *, required: bool = True) -> str | None:
    if key not in data:
        if required:
            raise InvalidParameterError(f"The {owner} lacks the required key {where + key!r}.")
        return None
    value = data[key]
    if not isinstance(value, str) or not value.strip():
        raise invalid(where + key, owner, "a non-empty str", value)
    return value


def _names(data: dict, key: str, where: str, owner: str, *, allowed: Sequence[str] | None = None,
           empty: bool = False) -> tuple[str, ...]:
    value = data.get(key, [])
    desc = ("a list of distinct str names" if empty else "a non-empty list of distinct str names") + (
        " among {" + ", ".join(repr(a) for a in allowed) + "}" if allowed is not None else "")
    if (not isinstance(value, list) or (not value and not empty) or len(set(map(str, value))) != len(value)
            or any(not isinstance(v, str) or not v.strip() or (allowed is not None and v not in allowed)
                   for v in value)):
        raise invalid(where + key, owner, desc, value)
    return tuple(value)


def _selectors(value: Any, where: str, owner: str) -> tuple[Selector, ...]:
    if not isinstance(value, list) or not value:
        raise invalid(where + "findings", owner, "a non-empty list of tables such as "
                      "{family = [\"membership-inference\"]}", value)
    out = []
    for j, table in enumerate(value):
        at = f"{where}findings[{j}]."
        _table(table, at.rstrip("."), owner)
        check_table_keys(table, SELECTOR_KEYS, owner, prefix=at)
        if not table:
            raise invalid(at.rstrip("."), owner, "a table with one or more of " + ", ".join(SELECTOR_KEYS), table)
        out.append(Selector(**{k: _names(table, k, at, owner) for k in table}))
    return tuple(out)


def _clause(data: Any, i: int, owner: str) -> Clause:
    where = f"clauses[{i}]."
    _table(data, where.rstrip("."), owner)
    check_table_keys(data, CLAUSE_KEYS, owner, prefix=where)
    kw: dict[str, Any] = {k: _text(data, k, where, owner) for k in ("id", "title", "paraphrase")}
    kw["note"] = _text(data, "note", where, owner, required=False)
    kinds = [k for k in ("all_of", "out_of_scope") if k in data] + (
        ["findings/rules"] if "findings" in data or "rules" in data else [])
    if len(kinds) != 1:
        raise invalid(where.rstrip("."), owner, "a clause with exactly one of findings/rules, all_of, out_of_scope",
                      f"{kw['id']}: {', '.join(kinds) or 'none of them'}")
    if "out_of_scope" in data or "all_of" in data:
        if "not_evidenced" in data:
            raise invalid(where + "not_evidenced", owner, "absent (only clauses evidenced by findings take it)",
                          data["not_evidenced"])
        if "out_of_scope" in data:
            return Clause(**kw, out_of_scope=_text(data, "out_of_scope", where, owner))
        return Clause(**kw, all_of=_names(data, "all_of", where, owner))
    findings = _selectors(data["findings"], where, owner) if "findings" in data else ()
    rules = _names(data, "rules", where, owner, allowed=RULE_KEYS, empty=bool(findings))
    return Clause(**kw, findings=findings, rules=rules, not_evidenced=_text(data, "not_evidenced", where, owner))


def load_framework(path: str | Path, *, builtin: bool = False) -> Framework:
    """Read and validate one framework file (``.toml``, ``.yaml`` or ``.yml``).

    Raises:
        InvalidParameterError: a missing file, another suffix, a file that does not parse, an
            unknown or missing key, a value of the wrong type, a duplicate clause id or an
            ``all_of`` naming no plain clause of the file; the message names the file and key.
    """
    p = Path(path)
    owner = f"framework file {str(p)!r}"
    data = read_table_file(p, "Framework file")
    check_table_keys(data, TOP_KEYS, owner)
    kw = {k: _text(data, k, "", owner) for k in ("name", "version", "date")}
    source = data.get("source")
    if source is None:
        raise InvalidParameterError(f"The {owner} lacks the required key 'source'.")
    _table(source, "source", owner)
    check_table_keys(source, SOURCE_KEYS, owner, prefix="source.")
    year = source.get("year")
    if isinstance(year, bool) or not isinstance(year, int):
        raise invalid("source.year", owner, "an int (the year of publication)", year)
    cite = Source(year=year, **{k: _text(source, k, "source.", owner) for k in ("title", "publisher", "url")})
    raw = data.get("clauses")
    if not isinstance(raw, list) or not raw:
        raise invalid("clauses", owner, "a non-empty list of clause tables ([[clauses]])", raw)
    clauses = tuple(_clause(c, i, owner) for i, c in enumerate(raw))
    ids = [c.id for c in clauses]
    for i, c in enumerate(clauses):
        if ids.index(c.id) != i:
            raise invalid(f"clauses[{i}].id", owner, "unique in the file", c.id)
        plain = [d.id for d in clauses if d.kind != "all_of" and d.id != c.id]
        bad = [x for x in c.all_of if x not in plain]
        if bad:
            raise invalid(f"clauses[{i}].all_of", owner, "ids of other clauses of this file that are not all_of "
                          "clauses themselves", bad)
    return Framework(id=p.stem, source=cite, clauses=clauses, path=str(p), builtin=builtin,
                     sha256=hashlib.sha256(p.read_bytes()).hexdigest(),
                     description=_text(data, "description", "", owner, required=False), **kw)


def builtin_framework(fid: str) -> Framework:
    """The built-in framework ``fid`` (one of :data:`BUILTIN`)."""
    if fid not in BUILTIN:
        raise invalid("framework", "builtin_framework", "one of {" + ", ".join(map(repr, BUILTIN)) + "}", fid)
    framework = load_framework(BUILTIN_DIR / f"{fid}.toml", builtin=True)
    return replace(framework, path=f"audit/compliance/frameworks/{fid}.toml")  # the same on every machine


def resolve_frameworks(entries: Sequence[str] | None, *, owner: str) -> list[Framework]:
    """The frameworks a policy selects: ``None`` gives every built-in one (:data:`BUILTIN`),
    otherwise each entry is a built-in id or a file path (already resolved against the
    policy file's directory, see :func:`audit.compliance.policy.load_policy`).

    Raises:
        InvalidParameterError: an unknown built-in id (naming ``owner``'s key ``frameworks``
            and the built-in ids), a bad framework file, or two frameworks with one id.
    """
    out: list[Framework] = []
    for entry in BUILTIN if entries is None else entries:
        if framework_is_path(entry):
            out.append(load_framework(entry))
        elif entry in BUILTIN:
            out.append(builtin_framework(entry))
        else:
            raise invalid("frameworks", owner, "a list of built-in framework ids among {"
                          + ", ".join(map(repr, BUILTIN)) + "} or paths of framework files (.toml, .yaml, .yml)",
                          entry)
        if [f.id for f in out].count(out[-1].id) > 1:
            raise invalid("frameworks", owner, "frameworks of distinct ids (a file's id is its name without "
                          "the suffix)", entry)
    return out
