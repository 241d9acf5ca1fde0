"""ModelCache: safetensors round trip, stable keys, corrupt and unreadable entries."""

from __future__ import annotations

import json
import os
import pickle
import warnings

import pytest
import torch
from safetensors.torch import save_file

from audit.core.errors import InvalidParameterError
from audit.models.cache import ModelCache

SPEC = {"arch": "mlp", "seed": 3, "lr": 0.05, "layers": [8, 4], "extra": {"b": None, "a": True}}


def _tensors() -> dict[str, torch.Tensor]:
    return {
        "fc.weight": torch.randn(4, 8),
        "fc.bias": torch.randn(4),
        "steps": torch.tensor(7, dtype=torch.int64),
        "transposed": torch.arange(6.0).reshape(2, 3).t(),  # not contiguous
    }


def test_round_trip_gives_equal_tensors(tmp_path):
    cache = ModelCache(tmp_path / "a" / "b")  # parents are created
    tensors = _tensors()
    assert SPEC not in cache
    assert cache.load(SPEC) is None
    path = cache.save(SPEC, tensors)
    assert path == cache.path(SPEC) == tmp_path / "a" / "b" / f"{ModelCache.key(SPEC)}.safetensors"
    assert SPEC in cache
    assert sorted(os.listdir(tmp_path / "a" / "b")) == [path.name]  # no temp file left
    loaded = cache.load(SPEC)
    assert loaded.keys() == tensors.keys()
    for name, tensor in tensors.items():
        assert loaded[name].dtype == tensor.dtype
        assert torch.equal(loaded[name], tensor)
        assert loaded[name].is_contiguous()


def test_loaded_tensors_do_not_follow_later_file_changes(tmp_path):
    cache = ModelCache(tmp_path)
    cache.save(SPEC, {"w": torch.ones(4)})
    loaded = cache.load(SPEC)
    with open(cache.path(SPEC), "r+b") as f:  # rewrite the data bytes in place
        f.seek(-16, os.SEEK_END)
        f.write(b"\0" * 16)
    assert torch.equal(loaded["w"], torch.ones(4))


def test_save_overwrites_and_stores_metadata(tmp_path):
    from safetensors import safe_open

    cache = ModelCache(tmp_path)
    cache.save(SPEC, {"w": torch.zeros(2)})
    cache.save(SPEC, {"w": torch.ones(2)})
    assert torch.equal(cache.load(SPEC)["w"], torch.ones(2))
    with safe_open(str(cache.path(SPEC)), framework="pt") as f:
        meta = f.metadata()
    assert meta["fedaudit_cache_format"] == "1"
    assert json.loads(meta["fedaudit_spec"]) == SPEC


def test_key_is_stable_and_ignores_dict_order():
    reordered = {"extra": {"a": True, "b": None}, "layers": [8, 4], "lr": 0.05, "seed": 3,
                 "arch": "mlp"}
    canonical = json.dumps(SPEC, sort_keys=True, separators=(",", ":"))
    import hashlib

    assert ModelCache.key(SPEC) == hashlib.sha256(canonical.encode()).hexdigest()[:32]
    assert ModelCache.key(reordered) == ModelCache.key(SPEC)
    assert len(ModelCache.key(SPEC)) == 32
    assert ModelCache.key({**SPEC, "seed": 4}) != ModelCache.key(SPEC)
    assert ModelCache.key({**SPEC, "layers": [4, 8]}) != ModelCache.key(SPEC)  # lists keep order


def test_key_rejects_non_json_specs():
    with pytest.raises(InvalidParameterError, match="JSON-ready"):
        ModelCache.key({"model": object()})
    with pytest.raises(InvalidParameterError, match="mapping"):
        ModelCache.key(["seed", 1])


def _write_truncated(path, cache):
    cache.save(SPEC, _tensors())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 10])


def _write_random(path, cache):
    path.write_bytes(torch.randint(0, 256, (500,), dtype=torch.uint8,
                                   generator=torch.Generator().manual_seed(1)).numpy().tobytes())


def _write_pickle(path, cache):
    with open(path, "wb") as f:
        pickle.dump({"fc.weight": torch.ones(2)}, f)


def _write_empty(path, cache):
    path.write_bytes(b"")


def _contiguous() -> dict[str, torch.Tensor]:
    return {name: t.contiguous() for name, t in _tensors().items()}


def _write_without_metadata(path, cache):
    save_file(_contiguous(), str(path))


def _write_other_spec(path, cache):
    cache.save({**SPEC, "seed": 99}, _tensors())
    os.replace(cache.path({**SPEC, "seed": 99}), path)


def _write_other_format(path, cache):
    save_file(_contiguous(), str(path), metadata={
        "fedaudit_spec": json.dumps(SPEC, sort_keys=True, separators=(",", ":")),
        "fedaudit_cache_format": "0"})


@pytest.mark.parametrize("writer, reason", [
    (_write_truncated, "not a readable safetensors file"),
    (_write_random, "not a readable safetensors file"),
    (_write_pickle, "not a readable safetensors file"),
    (_write_empty, "not a readable safetensors file"),
    (_write_without_metadata, "metadata missing"),
    (_write_other_spec, "stored spec differs"),
    (_write_other_format, "unknown cache format"),
])
def test_corrupt_entry_warns_is_removed_and_reads_as_missing(tmp_path, writer, reason):
    cache = ModelCache(tmp_path)
    path = cache.path(SPEC)
    writer(path, cache)
    assert path.exists()
    with pytest.warns(RuntimeWarning, match="is corrupt") as record:
        assert cache.load(SPEC) is None
    message = str(record[0].message)
    assert str(path) in message and reason in message and "retrained" in message
    assert "\n" not in message
    assert not path.exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cache.load(SPEC) is None  # now simply absent


def test_unreadable_entry_raises_naming_the_file(tmp_path, monkeypatch):
    cache = ModelCache(tmp_path)
    path = cache.save(SPEC, _tensors())
    real_access = os.access

    def access(p, mode, **kw):
        return False if os.fspath(p) == os.fspath(path) else real_access(p, mode, **kw)

    monkeypatch.setattr(os, "access", access)
    with pytest.raises(InvalidParameterError, match="must be readable") as info:
        cache.load(SPEC)
    assert str(path) in str(info.value)
    assert path.exists()  # an unreadable file is not deleted


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root can read any file")
def test_chmod_000_entry_raises(tmp_path):
    cache = ModelCache(tmp_path)
    path = cache.save(SPEC, _tensors())
    path.chmod(0)
    try:
        with pytest.raises(InvalidParameterError, match="must be readable"):
            cache.load(SPEC)
    finally:
        path.chmod(0o600)


def test_directory_that_is_a_file_is_rejected(tmp_path):
    target = tmp_path / "cache"
    target.write_text("not a directory")
    with pytest.raises(InvalidParameterError) as info:
        ModelCache(target)
    message = str(info.value)
    assert message == (f"The 'cache_dir' parameter must be a writable directory. "
                       f"Got {str(target)!r} instead (not a directory).")
    with pytest.raises(InvalidParameterError, match="writable directory"):
        ModelCache(target / "below")


def test_directory_not_writable_is_rejected(tmp_path, monkeypatch):
    target = tmp_path / "ro"
    target.mkdir()
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False)
    with pytest.raises(InvalidParameterError, match=r"\(not writable\)"):
        ModelCache(target)


def test_save_rejects_non_tensors_and_cleans_up(tmp_path):
    cache = ModelCache(tmp_path)
    with pytest.raises(InvalidParameterError, match="mapping of str to torch.Tensor"):
        cache.save(SPEC, {"w": [1.0, 2.0]})
    assert os.listdir(tmp_path) == []


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    import audit.models.cache as mc

    def broken_save(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(mc, "save_file", broken_save)
    cache = ModelCache(tmp_path)
    with pytest.raises(OSError, match="disk full"):
        cache.save(SPEC, _tensors())
    assert os.listdir(tmp_path) == []
