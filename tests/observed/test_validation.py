"""Every bad recording is refused before any attack runs: an InvalidParameterError naming
the bad value from :func:`audit.api.audit_observed`, exit code 2 with one ``Error: ...``
line from ``fedaudit audit --observed``, and nothing written either way."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from audit.api import audit_observed
from audit.cli.main import main
from audit.core.errors import InvalidParameterError

UPDATE = "updates/round-0-client-1.safetensors"


def meta(change):
    """A mutation of the directory that edits its observed.json with ``change(meta)``."""
    def mutate(d):
        path = d / "observed.json"
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))
    return mutate


def tensors(file, change):
    """A mutation that rewrites the safetensors ``file`` with ``change(tensors)``."""
    def mutate(d):
        data = load_file(str(d / file))
        change(data)
        save_file(data, str(d / file))
    return mutate


def _set(path, value):
    def change(m):
        *keys, last = path
        for k in keys:
            m = m[k]
        m[last] = value
    return change


def _drop(path):
    def change(m):
        *keys, last = path
        for k in keys:
            m = m[k]
        del m[last]
    return change


def _labels(first, second):
    def change(m):
        m["updates"][0]["labels"], m["updates"][1]["labels"] = first, second
    return change


CASES = {
    "missing directory": (lambda d: shutil.rmtree(d), "no such directory"),
    "missing metadata": (lambda d: (d / "observed.json").unlink(), "must hold its metadata observed.json"),
    "unparseable metadata": (lambda d: (d / "observed.json").write_text("{not json"), "must be JSON"),
    "metadata not an object": (lambda d: (d / "observed.json").write_text("[1]"), "a JSON object"),
    "missing key": (meta(_drop(["local_training"])), "'local_training' entry"),
    "missing nested key": (meta(_drop(["updates", 1, "client_id"])), "'updates[1].client_id' entry"),
    "unknown key": (meta(_set(["colour"], "blue")), "Unknown key 'colour'"),
    "unknown nested key": (meta(_set(["updates", 0, "weight"], 1)), "Unknown key 'updates[0].weight'"),
    "unknown local-training key": (meta(_set(["local_training", "nesterov"], True)), "'local_training.nesterov'"),
    "wrong version": (meta(_set(["version"], 2)), "'version' entry"),
    "wrong format": (meta(_set(["format"], "flower")), "'flower'"),
    "bad update kind": (meta(_set(["update_kind"], "weights")), "'weights'"),
    "bad local training": (meta(_set(["local_training", "optimizer"], "rmsprop")), "rmsprop"),
    "bad input shape": (meta(_set(["data", "input_shape"], [8, 8])), "'data.input_shape'"),
    "update file missing": (lambda d: (d / UPDATE).unlink(), "no such file"),
    "file not safetensors": (lambda d: (d / UPDATE).write_bytes(b"not a tensor file"), "must be a safetensors file"),
    "broadcast not safetensors": (lambda d: (d / "broadcast/round-0.safetensors").write_bytes(b"\x00" * 9),
                                  "'rounds[0].broadcast' file"),
    "path outside the directory": (meta(_set(["updates", 0, "file"], "../elsewhere.safetensors")), "inside the directory"),
    "update file of another kind": (meta(_set(["updates", 0, "file"], "updates/x.npz")), "'updates[0].file'"),
    "round not listed": (meta(_set(["updates", 0, "round"], 5)), "'updates[0].round'"),
    "two updates of one client": (meta(_set(["updates", 1, "client_id"], 0)), "the only update of its client"),
    "labels for some updates": (meta(_set(["updates", 0, "labels"], [1])), "all record 'labels' or none"),
    "label out of range": (meta(_labels([10], [0])), "'updates[0].labels'"),
    "tensor name not the model's": (tensors(UPDATE, lambda t: t.update({"head.weight": t.pop("fc1.weight")})),
                                    "'head.weight', which the model does not"),
    "tensor shape not the model's": (meta(_set(["model", "params"], {"hidden": 32})), "has shape"),
    "broadcast lacks a parameter": (tensors("broadcast/round-0.safetensors", lambda t: t.pop("fc2.bias")),
                                    "lacks 'fc2.bias'"),
    "update of buffers only": (tensors(UPDATE, lambda t: (t.clear(), t.update(
        {"standardize.mean": torch.zeros(1, 1, 1, 1)}))), "none of the model's trainable"),
    "unknown model": (meta(_set(["model", "entry_point"], "no-such-model")), "no-such-model"),
    "missing model file": (meta(_set(["model", "entry_point"], "missing_model.py:build")), "missing_model.py"),
    "bad model parameter": (meta(_set(["model", "params"], {"depth": 3})), "depth"),
    "partial truth": (lambda d: (d / "truth/round-0-client-1.safetensors").unlink(), "every update or none"),
    "truth of another shape": (tensors("truth/round-0-client-0.safetensors",
                                       lambda t: t.update(images=torch.zeros(1, 3, 8, 8))), "'images' of shape"),
}
OPTIONS = {  # bad options on a good recording: (API keyword arguments, CLI options, needle)
    "labels not recorded": ({"threat_model": "hbc-server-labels"}, ["--threat-model", "hbc-server-labels"],
                            "no labels are recorded"),
    "unknown threat model": ({"threat_model": "eavesdropper"}, ["--threat-model", "eavesdropper"], "eavesdropper"),
    "final-model attack": ({"attack": "lira"}, ["--attack", "lira"], "update-based membership attack"),
    "membership without candidates": ({"attack": "update-mia"}, ["--attack", "update-mia"], "needs candidates"),
    "unknown attack parameter": ({"attack_params": {"bogus": 1}}, ["--attack-param", "bogus=1"], "bogus"),
}


def _refused(directory, tmp_path, capsys, needle, kwargs, options):
    out = tmp_path / "out"
    kwargs = {"attack": "analytic-fc", "lpips": False, **kwargs}
    with pytest.raises(InvalidParameterError) as exc:
        audit_observed(directory, out=out, **kwargs)
    assert needle in str(exc.value)
    if "--attack" not in options:
        options = ["--attack", "analytic-fc", *options]
    with pytest.raises(SystemExit) as done:
        main(["audit", "--observed", str(directory), "--no-lpips", "--no-progress", *options, "--out", str(out)])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert done.value.code == 2 and len(lines) == 1 and lines[0].startswith("Error: "), err
    assert needle in lines[0]
    assert not out.exists()


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_recording_is_refused_naming_the_value(recording, tmp_path, capsys, case):
    mutate, needle = CASES[case]
    mutate(recording)
    _refused(recording, tmp_path, capsys, needle, {}, [])


@pytest.mark.parametrize("case", list(OPTIONS))
def test_a_bad_option_is_refused_naming_the_value(recording, tmp_path, capsys, case):
    kwargs, options, needle = OPTIONS[case]
    _refused(recording, tmp_path, capsys, needle, kwargs, options)


def test_simulation_options_do_not_apply_to_a_recording(recording, tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as done:
        main(["audit", "--observed", str(recording), "--dataset", "digits", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert done.value.code == 2 and err.startswith("Error: The '--dataset' option does not apply"), err
    assert not out.exists()
