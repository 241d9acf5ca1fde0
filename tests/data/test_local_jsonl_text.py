"""The ``jsonl-text`` dataset: texts become the byte tokens ``records`` uses, clients come
from a field; every bad file is a clear error naming the parameter and the value."""

from __future__ import annotations

import json

import pytest

from audit.core.errors import InvalidParameterError
from audit.data.registry import create_dataset
from audit.models.text_lm import ByteTokenizer


def _write(tmp_path, lines, name="t.jsonl"):
    p = tmp_path / name
    p.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    return p


def test_texts_round_trip_as_byte_tokens_with_clients(tmp_path):
    rows = [{"text": "héllo", "user": "bob"}, {"text": "a longer line of text", "user": "alice"},
            "", {"text": "x", "user": "bob"}]
    ds = create_dataset("jsonl-text", path=_write(tmp_path, rows), client_key="user", length=16)
    ids, targets = ByteTokenizer().batch_encode(["héllo", "a longer line of text", "x"], 16)
    assert ds.task == "language-modeling" and ds.modality == "text" and ds.input_shape == (16,)
    assert ds.images.equal(ids) and ds.labels.equal(targets) and ds.num_classes == 259
    assert ByteTokenizer().decode(ds.images[0]) == "héllo"
    assert ds.meta["items"]["texts"] == ("héllo", "a longer line of text", "x")
    assert ds.meta["client_names"] == ("alice", "bob") and ds.clients.tolist() == [1, 0, 1]
    sub = ds.subset([2])
    assert sub.meta["items"]["texts"] == ("x",) and sub.clients.tolist() == [1]


def test_text_key_and_limit(tmp_path):
    ds = create_dataset("jsonl-text", path=_write(tmp_path, [{"body": "a"}, {"body": "b"}, {"body": "c"}], "t.ndjson"),
                        text_key="body", limit=2)
    assert ds.meta["items"]["texts"] == ("a", "b") and ds.clients is None


@pytest.mark.parametrize("lines, params, match", [
    ([{"text": "a"}, {"body": "b"}], {}, r"'text_key'.*line 2 has 'body'.*'text'"),
    ([{"text": "a"}, {"text": 3}], {}, r"'text_key'.*holding text \(line 2 holds 3\)"),
    ([{"text": "a"}, "{not json"], {}, r"'path'.*JSON object.*line 2"),
    ([{"text": "a"}, [1, 2]], {}, r"'path'.*line 2 holds a list"),
    ([{"text": "a", "c": 1}, {"text": "b"}], {"client_key": "c"}, r"'client_key'.*line 2.*'c'"),
    ([{"text": "a", "c": None}], {"client_key": "c"}, r"'client_key'.*client ids.*line 1.*None"),
    (["", "  "], {}, r"'path'.*at least one item.*no items"),
    ([{"text": "a"}], {"length": 4}, r"'length'.*\[8, 4096\].*4"),
    ([{"text": "a"}], {"limit": 0}, r"'limit'.*0"),
])
def test_bad_files_are_errors_naming_the_value(tmp_path, lines, params, match):
    with pytest.raises(InvalidParameterError, match=match):
        create_dataset("jsonl-text", path=_write(tmp_path, lines), **params)


def test_bad_paths(tmp_path):
    with pytest.raises(InvalidParameterError, match=r"'path'.*required"):
        create_dataset("jsonl-text")
    with pytest.raises(InvalidParameterError, match=r"'path'.*ending in \.jsonl or \.ndjson.*t\.json'"):
        create_dataset("jsonl-text", path=_write(tmp_path, [{"text": "a"}], "t.json"))
