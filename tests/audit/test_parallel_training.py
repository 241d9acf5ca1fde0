"""train_models: cache hits, resume after a failure, duplicates, and Ray matching serial."""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile

import parallel_training_fixtures as fx
import pytest
import torch

from audit.core.errors import InvalidParameterError
from audit.models.cache import ModelCache
from audit.fl.parallel_training import TrainingStats, shutdown_ray, train_models

FIXTURES_DIR = str(pathlib.Path(fx.__file__).resolve().parent)


def _specs(n: int, **extra) -> list[dict]:
    return [{"seed": i, "dim": 3, **extra} for i in range(n)]


@pytest.fixture(autouse=True)
def _reset_fixture_state():
    fx.CALLS.clear()
    fx.FAIL_SEEDS.clear()
    yield
    fx.CALLS.clear()
    fx.FAIL_SEEDS.clear()


def _assert_same(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for name in x:
            assert torch.equal(x[name], y[name]), name


@pytest.mark.parametrize("kwargs, match", [
    ({"backend": "dask"}, "'auto'.*'dask'"),
    ({"backend": None}, "backend"),
    ({"workers": 0}, "'workers'.*Got 0"),
    ({"workers": 1.5}, "workers"),
    ({"threads_per_worker": 0}, "threads_per_worker"),
    ({"cache": "/tmp/somewhere"}, "ModelCache"),
])
def test_bad_parameters_are_rejected(kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        train_models(_specs(1), fx.tiny_train, **kwargs)


def test_bad_specs_and_results_are_rejected(tmp_path):
    with pytest.raises(InvalidParameterError, match="specs"):
        train_models({"seed": 1}, fx.tiny_train, backend="serial")
    with pytest.raises(InvalidParameterError, match="JSON-ready"):
        train_models([{"seed": object()}], fx.tiny_train, backend="serial")
    cache = ModelCache(tmp_path)
    with pytest.raises(InvalidParameterError, match="result of train_fn"):
        train_models(_specs(1), fx.not_tensors, backend="serial", cache=cache)
    assert os.listdir(tmp_path) == []


def test_serial_keeps_order_trains_duplicates_once_and_loads_hits(tmp_path):
    cache = ModelCache(tmp_path)
    specs = [{"seed": 2}, {"seed": 0}, {"seed": 2}, {"seed": 1}]
    models, stats = train_models(specs, fx.counting_train, cache=cache, backend="serial")
    assert fx.CALLS == [2, 0, 1]
    assert stats == TrainingStats(loaded=0, trained=3, backend="serial", workers=1,
                                  threads_per_worker=1, seconds=stats.seconds)
    assert stats.seconds >= 0
    _assert_same(models, [fx.tiny_train(s) for s in specs])
    assert len(os.listdir(tmp_path)) == 3

    fx.CALLS.clear()
    again, stats = train_models(specs[::-1], fx.counting_train, cache=cache, backend="serial")
    assert fx.CALLS == []
    assert (stats.loaded, stats.trained) == (3, 0)
    _assert_same(again, models[::-1])


def test_serial_without_cache_and_empty_specs():
    models, stats = train_models(_specs(2), fx.counting_train, backend="serial")
    assert fx.CALLS == [0, 1] and (stats.loaded, stats.trained) == (0, 2)
    assert all(set(m) == {"weight", "bias", "threads"} for m in models)
    assert train_models([], fx.tiny_train, backend="serial")[0] == []


def test_serial_sets_threads_around_each_call_and_restores_them():
    before = torch.get_num_threads()
    models, stats = train_models(_specs(1), fx.tiny_train, backend="serial",
                                 threads_per_worker=2)
    assert int(models[0]["threads"]) == 2 and stats.threads_per_worker == 2
    assert torch.get_num_threads() == before


def test_failure_keeps_finished_models_and_rerun_trains_only_the_missing(tmp_path):
    cache = ModelCache(tmp_path)
    specs = _specs(5)
    fx.FAIL_SEEDS.add(2)
    with pytest.raises(RuntimeError, match="boom on seed 2"):
        train_models(specs, fx.counting_train, cache=cache, backend="serial")
    assert fx.CALLS == [0, 1]
    assert [s in cache for s in specs] == [True, True, False, False, False]
    assert not [n for n in os.listdir(tmp_path) if not n.endswith(".safetensors")]

    fx.FAIL_SEEDS.clear()
    fx.CALLS.clear()
    models, stats = train_models(specs, fx.counting_train, cache=cache, backend="serial")
    assert fx.CALLS == [2, 3, 4]
    assert (stats.loaded, stats.trained) == (2, 3)
    _assert_same(models, [fx.tiny_train(s) for s in specs])


def test_corrupt_cache_entry_is_retrained(tmp_path):
    cache = ModelCache(tmp_path)
    specs = _specs(3)
    train_models(specs, fx.counting_train, cache=cache, backend="serial")
    path = cache.path(specs[1])
    path.write_bytes(path.read_bytes()[:40])
    fx.CALLS.clear()
    with pytest.warns(RuntimeWarning, match="corrupt"):
        models, stats = train_models(specs, fx.counting_train, cache=cache, backend="serial")
    assert fx.CALLS == [1]
    assert (stats.loaded, stats.trained) == (2, 1)
    _assert_same(models, [fx.tiny_train(s) for s in specs])
    assert cache.load(specs[1]) is not None


def test_progress_bar_is_labelled(capsys):
    train_models(_specs(2), fx.tiny_train, backend="serial", progress=True)
    assert "shadow models" in capsys.readouterr().err


@pytest.fixture(scope="module")
def local_ray():
    """A fresh local Ray whose session files go to a temporary folder, removed afterwards.

    (The folder is short and under /tmp, not pytest's tmp_path, because Ray's unix
    socket paths must stay under 107 characters.)
    """
    shutdown_ray()
    temp = tempfile.mkdtemp(prefix="fa-ray-")
    mp = pytest.MonkeyPatch()
    mp.setenv("RAY_TMPDIR", temp)
    path = os.pathsep.join(p for p in (FIXTURES_DIR, os.environ.get("PYTHONPATH")) if p)
    yield {"env_vars": {"PYTHONPATH": path}}
    shutdown_ray()
    mp.undo()
    shutil.rmtree(temp, ignore_errors=True)


def test_ray_matches_serial_and_resumes_from_cache(tmp_path, local_ray):
    specs = _specs(6) + [{"seed": 1, "dim": 3}]  # one duplicate
    serial, _ = train_models(specs, fx.tiny_train, backend="serial")
    cache = ModelCache(tmp_path)
    cache.save(specs[0], serial[0])
    models, stats = train_models(specs, fx.tiny_train, cache=cache, backend="ray",
                                 workers=2, ray_runtime_env=local_ray)
    assert stats.backend == "ray" and stats.workers == 2 and stats.threads_per_worker == 1
    assert (stats.loaded, stats.trained) == (1, 5)
    _assert_same(models, serial)
    assert all(int(m["threads"]) == 1 for m in models)
    assert all(s in cache for s in specs)

    # Ray stays up between calls; a task error comes back as the original exception
    # after the models that finished before it were saved
    failing = _specs(2, dim=5) + [{"seed": 9, "dim": 5, "raise": "on purpose"}]
    with pytest.raises(ValueError, match="spec 9 asked to fail: on purpose"):
        train_models(failing, fx.tiny_train, cache=cache, backend="ray", workers=2,
                     ray_runtime_env=local_ray)
    assert failing[0] in cache and failing[1] in cache and failing[2] not in cache


def test_auto_trains_fast_models_here_after_timing_the_first(tmp_path):
    shutdown_ray()
    specs = _specs(4)
    serial, _ = train_models(specs, fx.tiny_train, backend="serial")
    models, stats = train_models(specs, fx.tiny_train, cache=ModelCache(tmp_path), backend="auto",
                                 workers=2)
    _assert_same(models, serial)
    # a millisecond model: 3 more take far less than a Ray start
    assert stats.backend == "serial" and stats.trained == 4 and stats.workers == 1
    assert stats.reason.startswith("auto: serial (one model took")
    _, one = train_models(_specs(3, dim=9), fx.tiny_train, backend="auto", workers=1)
    assert one.backend == "serial" and "1 worker" in one.reason


def test_auto_starts_ray_when_it_pays_and_keeps_using_it(tmp_path, local_ray, monkeypatch):
    shutdown_ray()
    import audit.fl.parallel_training as pt

    monkeypatch.setattr(pt, "RAY_START_SECONDS", -1.0)  # a free Ray start: Ray always pays
    specs = _specs(5, dim=10)
    serial, _ = train_models(specs, fx.tiny_train, backend="serial")
    cache = ModelCache(tmp_path)
    models, stats = train_models(specs, fx.tiny_train, cache=cache, backend="auto", workers=2,
                                 ray_runtime_env=local_ray)
    _assert_same(models, serial)
    assert stats.backend == "ray" and stats.trained == 5 and "on Ray with 2 workers" in stats.reason
    assert all(s in cache for s in specs)
    monkeypatch.setattr(pt, "RAY_START_SECONDS", 1e9)  # Ray is up now: used whatever it costs
    _, again = train_models(_specs(2, dim=11), fx.tiny_train, backend="auto", workers=2,
                            ray_runtime_env=local_ray)
    assert again.backend == "ray" and again.reason == "auto: Ray is already running"


def test_ray_explains_a_train_fn_the_workers_cannot_import(tmp_path, local_ray):
    cache = ModelCache(tmp_path)
    with pytest.raises(Exception, match="No module named 'parallel_training_fixtures'") as info:
        train_models(_specs(2, dim=2), fx.tiny_train, cache=cache, backend="ray", workers=2)
    assert any("ray_runtime_env" in note for note in getattr(info.value, "__notes__", []))
    assert os.listdir(tmp_path) == []
