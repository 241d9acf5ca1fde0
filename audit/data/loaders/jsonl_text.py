"""``jsonl-text``: a user's JSONL text, one JSON object a line, for language modelling.

Each line holds an object with a text field (``text_key``, default ``"text"``) and, when
``client_key`` is given, the id of the line's client (for the ``"column"`` client split,
:mod:`audit.data.client_partition`). The texts become byte tokens of ``length`` with
next-token targets (:func:`audit.data.dataset.from_texts`, as the ``records`` dataset):
``task="language-modeling"``, ``modality="text"``, the raw texts in
``meta["items"]["texts"]``.

The project's own choices: UTF-8; blank lines are skipped; a line that is not a JSON
object, or lacks the text (a string) or the client field, is an error naming its line;
``limit`` keeps the first lines (and stops reading there).
"""

from __future__ import annotations

import json

from audit.core.errors import invalid
from audit.data.dataset import ImageDataset
from audit.data.loaders.local_arrays import limit_items, text_dataset
from audit.data.loaders.local_checks import check_nonempty, client_ids, local_file

_NAME = "jsonl-text"
_OWNER = f"dataset {_NAME!r}"


def _field(obj: dict, param: str, key: str, file, line: int):
    if key not in obj:
        raise invalid(param, _OWNER, f"a field of every line of {str(file)!r} (line {line} has "
                      f"{', '.join(map(repr, obj)) or 'no field'})", key)
    return obj[key]


def jsonl_text(*, path=None, text_key: str = "text", client_key: str | None = None,
               length: int = 64, limit: int | None = None) -> ImageDataset:
    """A local JSONL file of texts (``text_key``) and optional clients (``client_key``)."""
    file = local_file(path, _NAME, (".jsonl", ".ndjson"))
    limit = limit_items(limit, _OWNER)
    texts: list[str] = []
    clients: list = []
    lines: list[int] = []
    try:
        with open(file, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if limit is not None and len(texts) >= limit:
                    break
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise invalid("path", _OWNER, "a JSONL file, one JSON object a line",
                                  f"{file} (line {number}: {exc.msg})") from None
                if not isinstance(obj, dict):
                    raise invalid("path", _OWNER, "a JSONL file, one JSON object a line",
                                  f"{file} (line {number} holds a {type(obj).__name__})")
                text = _field(obj, "text_key", text_key, file, number)
                if not isinstance(text, str):
                    raise invalid("text_key", _OWNER, f"a field holding text (line {number} holds "
                                  f"{text!r})", text_key)
                if client_key is not None:
                    clients.append(_field(obj, "client_key", client_key, file, number))
                texts.append(text)
                lines.append(number)
    except UnicodeDecodeError as exc:
        raise invalid("path", _OWNER, "a UTF-8 text file", f"{file} ({exc})") from None
    check_nonempty(len(texts), _OWNER, repr(str(file)))
    ids = None if client_key is None else client_ids(clients, "client_key", _OWNER, client_key,
                                                     lambda i: f"line {lines[i]}")
    return text_dataset(_NAME, texts, length, f"local JSONL text {file}", _OWNER, ids)
