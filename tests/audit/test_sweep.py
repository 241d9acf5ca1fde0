"""Audit sweeps (audit/sweep/): spec validation, grid expansion and ids, serial sweeps
with a combined compliance report, failure isolation, resume after a failure, an interrupt
and a killed process, and a sweep on a local Ray."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from audit.core.errors import InvalidParameterError
from audit.sweep import load_spec, parse_spec, run_id, run_sweep, sweep_status
from reports.compliance_schema import validate_compliance
from reports.io import load_report
from reports.schema import strip_volatile

ROOT = Path(__file__).resolve().parents[2]

#: three runs of well under a second each
TINY = {
    "name": "tiny",
    "seeds": [0, 1, 2],
    "base": {"dataset": "digits", "model": "convnet", "model_params": {"width": 4},
             "num_targets": 2, "lpips": False},
    "defenses": [{"name": "fedsgd"}],
    "attacks": [{"name": "llg"}],
}

TOML = """\
name = "grid"
seeds = [0, 1]

[base]
dataset = "digits"
model = "convnet"
model_params = { width = 4 }
num_targets = 2

[[defenses]]
name = "fedsgd"

[[defenses]]
name = "dp-fedavg"
params = { clip_norm = 1.0, noise_multiplier = [0.1, 1.0], mode = ["local", "central"] }

[[attacks]]
name = "llg"

[[attacks]]
name = "inverting-gradients"
params = { iterations = 10 }
"""

YAML = """\
attacks:
  - params: {iterations: 10}
    name: inverting-gradients
  - name: llg
defenses:
  - name: dp-fedavg
    params: {mode: [central, local], noise_multiplier: [1.0, 0.1], clip_norm: 1.0}
  - fedsgd
seeds: [1, 0]
base: {num_targets: 2, model: convnet, model_params: {width: 4}, dataset: digits}
"""


def _write(tmp_path: Path, text: str, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _final_dirs(out: Path) -> list[Path]:
    runs = out / "runs"
    return sorted(p for p in runs.iterdir() if not p.name.startswith(".")) if runs.is_dir() else []


def _mtimes(dirs) -> dict[str, int]:
    return {d.name: (d / "report.json").stat().st_mtime_ns for d in dirs}


# -- spec validation ------------------------------------------------------------------------------

BASE_TOML = '[base]\ndataset = "digits"\n'
ONE = '[[defenses]]\nname = "fedsgd"\n[[attacks]]\nname = "llg"\n'


@pytest.mark.parametrize("text, match", [
    ('defences = []\n' + ONE, r"Unknown key 'defences' in sweep spec '.*spec.toml'; valid keys"),
    ('[[defenses]]\nname = "fedsgd"\n', r"The 'attacks' key of sweep spec '.*spec.toml' must be"),
    ('attacks = []\n[[defenses]]\nname = "fedsgd"\n', r"'attacks' key .* non-empty list"),
    ('[base]\nseed = 3\n' + ONE, r"'base.seed' key of sweep spec '.*spec.toml' is set by the 'seeds' axis"),
    ('[base]\ndefense = "fedavg"\n' + ONE, r"'base.defense' .* 'defenses' axis"),
    ('[base]\ncolour = 3\n' + ONE, r"Unknown key 'base.colour' in sweep spec '.*spec.toml'"),
    ('[base]\nthreads = 0\n' + ONE, r"'base.threads' key .* an int >= 1. Got 0"),
    ('[base]\ndevice = "tpu"\n' + ONE, r"'base.device' key .* Got 'tpu'"),
    ('[base]\nlpips = "yes"\n' + ONE, r"'base.lpips' key"),
    ('[base]\ndataset = "digitz"\n' + ONE, r"'base.dataset' key of sweep spec '.*spec.toml' is not valid: "
                                          r"Unknown dataset 'digitz'; valid datasets are: .*digits"),
    ('[base]\nmodel = "cnn"\n' + ONE, r"'base.model' key .* Unknown model 'cnn'"),
    ('[base]\nmodel_params = 3\n' + ONE, r"Sweep spec '.*spec.toml', run .*'model_params'"),
    ('seeds = [-1]\n' + ONE, r"'seeds' key .* ints >= 0. Got \[-1\]"),
    ('seeds = [1, 1]\n' + ONE, r"'seeds' key .* without repeats"),
    ('[[defenses]]\nname = "fedsgd"\n[[defenses]]\nparams = 3\nname = "dp-fedavg"\n[[attacks]]\nname = "llg"\n',
     r"'defenses\[1\].params' key of sweep spec '.*spec.toml' must be a table"),
    ('[[defenses]]\nname = "dp-fedavg"\nparams = { clip_norm = [] }\n[[attacks]]\nname = "llg"\n',
     r"'defenses\[0\].params.clip_norm' key .* non-empty list"),
    ('[[defenses]]\nname = "fedsgd"\ncolour = 1\n[[attacks]]\nname = "llg"\n',
     r"Unknown key 'defenses\[0\].colour'"),
    ('[[defenses]]\nname = 3\n[[attacks]]\nname = "llg"\n', r"'defenses\[0\].name' key"),
    ('[[defenses]]\nname = "nope"\n[[attacks]]\nname = "llg"\n',
     r"Sweep spec '.*spec.toml', run defenses\[0\] x attacks\[0\] x seeds\[0\] .*'nope'"),
    ('[[defenses]]\nname = "dp-fedavg"\nparams = { clip_norm = [1.0, -1.0], noise_multiplier = 1.0 }\n'
     '[[attacks]]\nname = "llg"\n',
     r"run defenses\[0\]\(clip_norm=-1.0, noise_multiplier=1.0\) x attacks\[0\] x seeds\[0\] "
     r"\(dp-fedavg, llg, seed 0\): .*'clip_norm'.*-1"),
    ('[[defenses]]\nname = "fedsgd"\n[[attacks]]\nname = "inverting-gradients"\n'
     'params = { iterations = 0 }\n', r"attacks\[0\]\(iterations=0\).*'iterations'"),
    ('[base]\nbatch_size = 0\n' + ONE, r"Sweep spec '.*spec.toml', run .*'batch_size'"),
    (ONE + '[estimator]\nname = "magic"\n', r"'estimator\[0\].name' key .* 'cp'"),
    (ONE + '[estimator]\nname = "cp"\nparams = { trails = 100 }\n',
     r"Unknown key 'estimator\[0\].params.trails' in sweep spec '.*spec.toml'; estimator 'cp' takes: trials"),
    (ONE + '[estimator]\nname = "cp"\nparams = { trials = [100, 0] }\n',
     r"'estimator\[0\].params.trials' key .* an int >= 1. Got 0"),
    ('[[defenses]]\nname = "fedsgd"\n[[defenses]]\nname = "fedsgd"\n[[attacks]]\nname = "llg"\n',
     r"same run twice: defenses\[0\] x attacks\[0\] x seeds\[0\] and defenses\[1\]"),
    ('name = 3\n' + ONE, r"'name' key"),
    ('seeds = [0\n', r"Sweep spec '.*spec.toml' is not valid"),
])
def test_spec_errors_name_the_key_and_the_file(tmp_path, text, match):
    with pytest.raises(InvalidParameterError, match=match):
        load_spec(_write(tmp_path, text))


def test_spec_file_errors(tmp_path):
    with pytest.raises(InvalidParameterError, match="'.*missing.toml' does not exist"):
        load_spec(tmp_path / "missing.toml")
    with pytest.raises(InvalidParameterError, match=r"must end in .toml, .yaml or .yml"):
        load_spec(_write(tmp_path, ONE, "spec.json"))
    with pytest.raises(InvalidParameterError, match=r"Unknown key 'base.colour' in sweep spec '.*s.yaml'"):
        load_spec(_write(tmp_path, "base: {colour: red}\ndefenses: [fedsgd]\nattacks: [llg]\n", "s.yaml"))
    with pytest.raises(InvalidParameterError, match=r"'.*l.yml' must hold a table"):
        load_spec(_write(tmp_path, "- 1\n- 2\n", "l.yml"))
    with pytest.raises(InvalidParameterError, match=r"'.*bad.yaml' is not valid"):
        load_spec(_write(tmp_path, "base: {a: [1\n", "bad.yaml"))


# -- grid expansion and ids -----------------------------------------------------------------------


def test_grid_expansion_and_stable_ids(tmp_path):
    spec = load_spec(_write(tmp_path, TOML))
    # (fedsgd + dp-fedavg 2 x 2) x 2 attacks x 2 seeds
    assert len(spec) == (1 + 4) * 2 * 2 and spec.name == "grid"
    ids = [r.id for r in spec.runs]
    assert len(set(ids)) == len(ids)
    for run in spec.runs:
        assert re.fullmatch(r"[A-Za-z0-9._-]{1,80}-[0-9a-f]{10}", run.id), run.id
        assert run.id.startswith(run.slug + "-") and not run.id.startswith(".")
        assert run_id(run.config, run.estimator, run.estimator_params) == (run.id, run.slug)
    # grid order: defenses, their params (sorted keys), attacks, seeds
    first = spec.runs[0]
    assert (first.config.defense, first.config.attack, first.config.seed) == ("fedsgd", "llg", 0)
    assert first.slug == "fedsgd__llg__s0"
    dp = [r for r in spec.runs if r.config.defense == "dp-fedavg"]
    assert dp[0].config.defense_params == {"clip_norm": 1.0, "mode": "local", "noise_multiplier": 0.1}
    assert dp[0].slug == "dp-fedavg_clip_norm-1.0_mode-local_noise_multiplier-0.1__llg__s0"
    assert dp[0].origin == ("defenses[1](clip_norm=1.0, mode=local, noise_multiplier=0.1) "
                            "x attacks[0] x seeds[0]")
    assert all(r.config.model_params == {"width": 4} and r.config.num_targets == 2 for r in spec.runs)
    assert spec.settings == {"device": "cpu", "threads": 1, "lpips": True, "cache_dir": None}

    # the same grid in YAML, every list and table in another order: the same ids
    again = load_spec(_write(tmp_path, YAML, "spec.yaml"))
    assert sorted(r.id for r in again.runs) == sorted(ids)
    assert [r.id for r in load_spec(tmp_path / "spec.toml").runs] == ids  # deterministic


def test_estimator_axis_and_list_literals():
    spec = parse_spec({
        "defenses": [{"name": "dp-fedavg", "params": {"clip_norm": 1.0, "noise_multiplier": 1.0}}],
        "attacks": [{"name": "llg", "threat_model": "hbc-server"}],
        "estimator": ["cp", {"name": "one-shot", "params": {"canaries": [200, 400]}}],
        "seeds": 4,
    })
    assert [(r.estimator, r.estimator_params) for r in spec.runs] == [
        ("cp", {}), ("one-shot", {"canaries": 200}), ("one-shot", {"canaries": 400})]
    assert all(r.config.seed == 4 and r.config.threat_model == "hbc-server" for r in spec.runs)
    slug = spec.runs[1].slug  # cut to 80 characters, the seed kept
    assert slug == "dp-fedavg_clip_norm-1.0_noise_multiplier-1.0__llg__hbc-server__one-shot_cana__s4"
    assert len(slug) <= 80 and spec.runs[1].id != spec.runs[2].id
    # a list wrapped in a list is one value, not an axis
    from audit.sweep.spec import _grid

    assert _grid({"a": [[1, 2]], "b": [3, 4]}, "s", "k") == [{"a": [1, 2], "b": 3}, {"a": [1, 2], "b": 4}]


# -- serial sweeps --------------------------------------------------------------------------------


def test_serial_sweep_writes_run_dirs_and_a_combined_report(tmp_path, capsys):
    out = tmp_path / "out"
    spec = parse_spec(TINY)
    assert sweep_status(spec, out).pending == tuple(r.id for r in spec.runs)
    result = run_sweep(spec, out, backend="serial", progress=True)
    assert "sweep tiny" in capsys.readouterr().err  # the progress bar
    ids = tuple(r.id for r in spec.runs)
    assert result.done == ids and result.done_before == () and result.failed == {}
    assert (result.backend, result.workers, result.threads_per_worker) == ("serial", 1, 1)
    assert all(i.threads == 1 and i.pid == os.getpid() for i in result.run_info.values())
    dirs = _final_dirs(out)
    assert [d.name for d in dirs] == sorted(ids) and result.run_dirs == [out / "runs" / i for i in ids]
    for run in spec.runs:
        d = out / "runs" / run.id
        assert sorted(p.name for p in d.iterdir()) == ["report.html", "report.json", "run.json"]
        report = load_report(d / "report.json")
        assert report["seed"] == run.config.seed and report["environment"]["threads"] == 1
        assert json.loads((d / "run.json").read_text())["config"] == run.config.to_dict()
    assert not [p for p in (out / "runs").iterdir() if p.name.startswith(".")]

    compliance = validate_compliance(json.loads((out / "compliance.json").read_text()))
    assert [r["dir"] for r in compliance["reproducibility"]["runs"]] == [str(out / "runs" / i) for i in ids]
    assert result.compliance == (out / "compliance.json", out / "compliance.html")
    assert result.compliance_status == compliance["verdict"]["status"] == "FAIL"  # fedsgd: no DP claim
    assert "<html" in (out / "compliance.html").read_text().lower()
    manifest = json.loads((out / "sweep.json").read_text())
    assert [r["status"] for r in manifest["runs"]] == ["done"] * 3
    assert sweep_status(spec, out).done == ids and "3 run(s) done" in result.summary()

    # everything finished: a rerun executes nothing (and starts no Ray for it)
    again = run_sweep(spec, out, backend="ray", progress=False)
    assert again.done == () and again.done_before == ids and again.ray_init_s is None
    assert "ray" not in sys.modules or not sys.modules["ray"].is_initialized()
    assert _mtimes(_final_dirs(out)) == _mtimes(dirs)


def _fail_on_seed(monkeypatch, seed: int, exc: BaseException, calls: list):
    import audit.harness

    real = audit.harness.run_audit_findings

    def patched(config, **kwargs):
        calls.append(config.seed)
        if config.seed == seed:
            raise exc
        return real(config, **kwargs)

    monkeypatch.setattr(audit.harness, "run_audit_findings", patched)


def test_a_failed_run_is_recorded_and_a_rerun_executes_only_it(tmp_path, monkeypatch):
    out, spec, calls = tmp_path / "out", parse_spec(TINY), []
    ids = [r.id for r in spec.runs]
    _fail_on_seed(monkeypatch, 1, RuntimeError("boom on seed 1"), calls)
    result = run_sweep(spec, out, backend="serial", progress=False)
    assert calls == [0, 1, 2]  # the failure did not stop the sweep
    assert result.done == (ids[0], ids[2]) and result.failed == {ids[1]: "RuntimeError: boom on seed 1"}
    note = (out / "failed" / f"{ids[1]}.txt").read_text()
    assert note.startswith("RuntimeError: boom on seed 1") and "Traceback" in note and '"seed": 1' in note
    assert [d.name for d in _final_dirs(out)] == sorted([ids[0], ids[2]])
    assert len(json.loads((out / "compliance.json").read_text())["reproducibility"]["runs"]) == 2
    status = sweep_status(spec, out)
    assert status.done == (ids[0], ids[2]) and status.pending == (ids[1],)
    assert status.failed == {ids[1]: "RuntimeError: boom on seed 1"}
    before = _mtimes(_final_dirs(out))

    monkeypatch.undo()
    calls.clear()
    _fail_on_seed(monkeypatch, -1, RuntimeError("never"), calls)
    again = run_sweep(spec, out, backend="serial", progress=False)
    assert calls == [1] and again.done == (ids[1],) and set(again.done_before) == {ids[0], ids[2]}
    assert not (out / "failed" / f"{ids[1]}.txt").exists()
    after = _mtimes(_final_dirs(out))
    assert {k: after[k] for k in before} == before and len(after) == 3
    assert len(json.loads((out / "compliance.json").read_text())["reproducibility"]["runs"]) == 3


def test_an_interrupt_leaves_no_partial_run_and_the_rerun_resumes(tmp_path, monkeypatch):
    out, spec, calls = tmp_path / "out", parse_spec(TINY), []
    ids = [r.id for r in spec.runs]
    _fail_on_seed(monkeypatch, 1, KeyboardInterrupt(), calls)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, out, backend="serial", progress=False)
    assert calls == [0, 1]
    assert [d.name for d in _final_dirs(out)] == [ids[0]]
    before = _mtimes(_final_dirs(out))

    # interrupted while the run directory is being written: nothing final, nothing left over
    monkeypatch.undo()
    import reports.assembly

    real_write = reports.assembly.write_report

    def write_then_interrupt(out_dir, report):
        real_write(out_dir, report)
        raise KeyboardInterrupt

    monkeypatch.setattr(reports.assembly, "write_report", write_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, out, backend="serial", progress=False)
    assert [d.name for d in _final_dirs(out)] == [ids[0]]
    assert not [p for p in (out / "runs").iterdir() if p.name.startswith(".")]

    monkeypatch.undo()
    calls.clear()
    _fail_on_seed(monkeypatch, -1, RuntimeError("never"), calls)
    result = run_sweep(spec, out, backend="serial", progress=False)  # the lock was released
    assert calls == [1, 2] and result.done == (ids[1], ids[2]) and result.done_before == (ids[0],)
    assert {k: v for k, v in _mtimes(_final_dirs(out)).items() if k in before} == before


def test_a_corrupt_run_dir_is_run_again_and_replaced(tmp_path):
    out, spec = tmp_path / "out", parse_spec({**TINY, "seeds": [0, 1]})
    ids = [r.id for r in spec.runs]
    bad = out / "runs" / ids[0]
    bad.mkdir(parents=True)
    (bad / "report.json").write_text("{not json")
    (out / "runs" / f".tmp-{ids[1]}-12345").mkdir()  # left by a killed sweep
    assert sweep_status(spec, out).pending == tuple(ids)
    result = run_sweep(spec, out, backend="serial", progress=False)
    assert result.done == tuple(ids)
    load_report(bad / "report.json")
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted(ids)


def test_killed_sweep_process_resumes_with_only_the_unfinished_runs(tmp_path):
    """SIGKILL a sweep in a subprocess once its first run is final; the rerun skips it."""
    spec_path = tmp_path / "spec.toml"
    spec_path.write_text(textwrap.dedent("""\
        name = "killed"
        seeds = [0, 1, 2]
        [base]
        dataset = "digits"
        model = "convnet"
        model_params = { width = 4 }
        num_targets = 2
        lpips = false
        [[defenses]]
        name = "fedsgd"
        [[attacks]]
        name = "inverting-gradients"
        params = { iterations = 25, restarts = 1 }
        """))
    spec = load_spec(spec_path)
    assert len(spec) == 3
    out = tmp_path / "out"
    code = ("import sys; from audit.sweep.runner import run_sweep; "
            "run_sweep(sys.argv[1], sys.argv[2], backend='serial', progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(spec_path), str(out)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while not _final_dirs(out):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no run finished in 90 s"
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finished = _final_dirs(out)
    assert 1 <= len(finished) < 3
    assert not (out / "compliance.json").exists()
    before = _mtimes(finished)
    status = sweep_status(spec, out)
    assert set(status.done) == set(before) and len(status.pending) == 3 - len(finished)

    result = run_sweep(spec, out, backend="serial", progress=False)
    assert set(result.done_before) == set(before)
    assert set(result.done) == set(status.pending)
    assert {k: v for k, v in _mtimes(_final_dirs(out)).items() if k in before} == before
    assert len(_final_dirs(out)) == 3 and (out / "compliance.json").is_file()
    assert not [p for p in (out / "runs").iterdir() if p.name.startswith(".")]


# -- parameters, lock, Ray ------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, match", [
    ({"backend": "dask"}, r"'backend' parameter of run_sweep .*'dask'"),
    ({"workers": 0}, r"'workers' parameter of run_sweep .*Got 0"),
    ({"ray_address": ""}, "ray_address"),
    ({"ray_runtime_env": "x"}, "ray_runtime_env"),
])
def test_bad_parameters_are_rejected(tmp_path, kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        run_sweep(parse_spec(TINY), tmp_path / "out", **{"backend": "serial", **kwargs})
    with pytest.raises(InvalidParameterError, match="'spec' parameter of run_sweep"):
        run_sweep(3, tmp_path / "out", backend="serial")


def test_ray_backend_without_ray_asks_to_install_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(InvalidParameterError, match=re.escape("pip install 'fedaudit[ray]'")):
        run_sweep(parse_spec(TINY), tmp_path / "out", backend="ray")
    assert not (tmp_path / "out").exists()


def test_one_sweep_at_a_time_per_output_directory(tmp_path):
    fcntl = pytest.importorskip("fcntl")
    out = tmp_path / "out"
    out.mkdir()
    fd = os.open(out / ".sweep.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(InvalidParameterError, match="Another sweep is running in"):
            run_sweep(parse_spec(TINY), out, backend="serial", progress=False)
    finally:
        os.close(fd)
    assert _final_dirs(out) == []


@pytest.fixture()
def ray_tmp(monkeypatch):
    """A fresh local Ray's session files in a short temporary folder (Ray's unix socket
    paths must stay under 107 characters), removed afterwards."""
    from audit.fl.parallel_training import shutdown_ray

    shutdown_ray()
    temp = tempfile.mkdtemp(prefix="fa-sweep-ray-")
    monkeypatch.setenv("RAY_TMPDIR", temp)
    yield temp
    shutdown_ray()
    shutil.rmtree(temp, ignore_errors=True)


def test_ray_sweep_of_two_runs_matches_serial_and_records_failures(tmp_path, ray_tmp, monkeypatch):
    """Two tiny runs on a local Ray with 2 CPUs (one torch thread each) give the reports of
    the serial backend; two runs that fail in the workers (FedRE wants more public
    examples than digits has: a check at run time) are recorded, the others finish.
    Started from another folder, the workers still import this checkout's audit package."""
    import ray

    monkeypatch.chdir(tmp_path)

    spec = parse_spec({**TINY, "seeds": [0, 1], "defenses": [
        "fedsgd", {"name": "fedre", "params": {"public_size": 5000}}]})
    good = [r.id for r in spec.runs if r.config.defense == "fedsgd"]
    bad = [r.id for r in spec.runs if r.config.defense == "fedre"]
    start = time.perf_counter()
    result = run_sweep(spec, tmp_path / "ray", backend="ray", workers=2, progress=False)
    seconds = time.perf_counter() - start
    print(f"Ray sweep of 2 tiny runs (+2 failing): {seconds:.1f} s (ray.init {result.ray_init_s:.1f} s)")
    assert not ray.is_initialized()  # the local instance it started is shut down
    assert (result.backend, result.workers, result.threads_per_worker) == ("ray", 2, 1)
    assert sorted(result.done) == sorted(good) and sorted(result.failed) == sorted(bad)
    assert all("needs 5000 public examples" in m for m in result.failed.values())
    assert "needs 5000 public examples" in (tmp_path / "ray" / "failed" / f"{bad[0]}.txt").read_text()
    assert result.ray_init_s is not None and result.ray_init_s > 0
    assert all(i.threads == 1 and i.pid != os.getpid() for i in result.run_info.values())
    compliance = json.loads((tmp_path / "ray" / "compliance.json").read_text())
    assert len(compliance["reproducibility"]["runs"]) == 2

    serial = run_sweep(spec, tmp_path / "serial", backend="serial", progress=False)
    assert sorted(serial.failed) == sorted(bad)
    for run_dir in serial.run_dirs:
        a = load_report(run_dir / "report.json")
        b = load_report(tmp_path / "ray" / "runs" / run_dir.name / "report.json")
        assert strip_volatile(a) == strip_volatile(b)
