"""Bad input: exit code 2, one line naming the bad value, no report written."""

import pytest

from cli_run import run

FAST = ["--attack-param", "iterations=2", "--num-targets", "1", "--no-progress"]



@pytest.mark.parametrize(
    "args, needle",
    [
        (["--defense", "nodefense"], "nodefense"),
        (["--attack", "noattack"], "noattack"),
        (["--dataset", "nodata"], "nodata"),
        (["--model", "nomodel"], "nomodel"),
        (["--threat-model", "nothreat"], "nothreat"),
        (["--defense", "dp-fedavg", "--defense-param", "clip_norm=0", "--defense-param", "noise_multiplier=1"], "clip_norm"),
        (["--defense", "dp-fedavg", "--defense-param", "clip_norm=-2", "--defense-param", "noise_multiplier=1"], "-2"),
        (["--defense", "dp-fedavg", "--defense-param", "noise_multiplier=-0.5"], "-0.5"),
        (["--batch-size", "0"], "batch_size"),
        (["--batch-size", "abc"], "abc"),
        (["--attack-param", "iterations=0"], "iterations"),
        (["--attack-param", "bogus=1"], "bogus"),
        (["--dataset", "image-folder", "--dataset-param", "path=/nonexistent/dir"], "/nonexistent/dir"),
        (["--dataset", "cifar10", "--dataset-param", "path=/nonexistent/cifar"], "/nonexistent/cifar"),
        (["--device", "tpu"], "tpu"),
        (["--defense-param", "novalue"], "novalue"),
        (["--num-targets", "99"], "99"),
        (["--simulation", "batched"], "batched"),
        (["--client-sampling", "uniform"], "uniform"),
        (["--simulation", "loop", "--client-sampling", "poisson"], "client_sampling"),
        (["--defense", "uniform-ldp", "--defense-param", "target_epsilon=8", "--simulation", "vectorised"],
         "uniform-ldp"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, args, needle):
    out = tmp_path / "out"
    code, _, err = run(["audit", *FAST, *args, "--out", str(out)], capsys)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), err
    assert needle in lines[0]
    assert not (out / "report.json").exists() and not (out / "report.html").exists()


def test_corrupt_image_folder_is_named(tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "broken.png").write_bytes(b"not a png at all")
    code, _, err = run(
        ["audit", *FAST, "--dataset", "image-folder", "--dataset-param", f"path={folder}", "--out", str(tmp_path / "o")],
        capsys,
    )
    assert code == 2 and "broken.png" in err


@pytest.mark.parametrize(
    "name, text, needle",
    [
        ("c.toml", 'defense = "fedsgd"\nbogus_key = 3\n', "bogus_key"),
        ("c.yaml", "defense: fedsgd\nnot_a_key: 1\n", "not_a_key"),
        ("c.toml", "defense = \n", "not valid"),
        ("c.ini", "x", "must end in"),
    ],
)
def test_bad_config_file(tmp_path, capsys, name, text, needle):
    cfg = tmp_path / name
    cfg.write_text(text)
    code, _, err = run(["audit", "--config", str(cfg), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_missing_config_file(tmp_path, capsys):
    code, _, err = run(["audit", "--config", str(tmp_path / "nope.toml"), "--out", str(tmp_path)], capsys)
    assert code == 2 and "nope.toml" in err


def test_unknown_option_is_one_line(capsys):
    code, _, err = run(["audit", "--no-such-option"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--no-such-option" in err


def test_report_command_rejects_corrupt_json(tmp_path, capsys):
    bad = tmp_path / "report.json"
    bad.write_text("{not json")
    code, _, err = run(["report", str(bad), "--format", "html"], capsys)
    assert code == 2 and "report.json" in err
    assert not (tmp_path / "report.html").exists()


def test_report_command_rejects_unknown_format(tmp_path, capsys):
    code, _, err = run(["report", str(tmp_path / "r.json"), "--format", "pdf"], capsys)
    assert code == 2 and "pdf" in err
