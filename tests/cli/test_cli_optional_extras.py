"""Ray and Flower are optional extras: without it, asking for it ends with exit 2 and what to install;
the default backend falls back to training in-process."""

import sys

from cli_run import run

from audit.fl.parallel_training import import_ray, ray_available


def test_ray_backend_without_ray_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # ``import ray`` now raises ImportError
    code, _, err = run(["audit", "--attack", "loss", "--dataset", "purchase-synthetic", "--model", "mlp",
                        "--defense", "fedavg", "--backend", "ray", "--out", str(tmp_path)], capsys)
    assert code == 2 and "pip install 'fedaudit[ray]'" in err, err
    assert not (tmp_path / "report.json").exists()


def test_flower_defense_without_flower_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "flwr", None)  # ``import flwr`` now raises ImportError
    for defense in ("flower-local-dp", "flower-dp-client-clipping", "flower-dp-server-clipping"):
        code, _, err = run(["audit", "--attack", "dlg", "--dataset", "digits", "--defense", defense,
                            "--num-targets", "1", "--no-progress", "--out", str(tmp_path)], capsys)
        assert code == 2 and "pip install 'fedaudit[flower]'" in err and defense in err, err
    assert not (tmp_path / "report.json").exists()


def test_import_ray_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    try:
        import_ray("a sweep")
    except Exception as exc:  # noqa: BLE001
        assert "fedaudit[ray]" in str(exc) and "a sweep" in str(exc)
    else:
        raise AssertionError("import_ray did not fail without ray")
    assert isinstance(ray_available(), bool)
