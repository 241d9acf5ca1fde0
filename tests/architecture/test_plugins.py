"""A defense written in a package outside this repo is found through its entry point.

The test writes a tiny package and its ``*.dist-info`` (METADATA + entry_points.txt) into a
temporary folder put on ``PYTHONPATH``, as ``pip install`` would lay it out, and asks a fresh
``fedaudit`` process for it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

PLUGIN = '''
"""An outside defense: FedAvg under another name (what a user's package would ship)."""
from defenses.fedavg import FedAvg


def register(registry):
    registry.register("outside-fedavg", FedAvg.from_params, summary="FedAvg from a package outside fedaudit")
'''


def _install_fake(tmp: Path, hook: str, body: str = PLUGIN) -> dict[str, str]:
    (tmp / "outside_plugin").mkdir()
    (tmp / "outside_plugin" / "__init__.py").write_text(body)
    info = tmp / "outside_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: outside-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[fedaudit.defenses]\noutside = {hook}\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(tmp), env.get("PYTHONPATH")) if p)
    return env


def _fedaudit(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    code = "import sys; from audit.cli.main import main; sys.argv = ['fedaudit', *sys.argv[1:]]; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_outside_defense_is_listed_and_built(tmp_path):
    env = _install_fake(tmp_path, "outside_plugin:register")
    listed = _fedaudit("list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "outside-fedavg" in listed.stdout and "FedAvg from a package outside fedaudit" in listed.stdout
    assert "dp-fedavg" in listed.stdout  # the built-in entries are still there
    code = textwrap.dedent("""
        from audit.core.defense import DEFENSES
        d = DEFENSES.create("outside-fedavg", local_steps=2)
        print(type(d).__name__, d.name)
    """)
    built = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert built.returncode == 0, built.stderr
    assert built.stdout.split()[0] == "FedAvg"


def test_broken_plugin_is_one_clear_error(tmp_path):
    env = _install_fake(tmp_path, "outside_plugin:missing_function")
    listed = _fedaudit("list", env=env)
    assert listed.returncode == 2
    assert "Traceback" not in listed.stderr
    assert "outside" in listed.stderr and "outside_plugin:missing_function" in listed.stderr


def test_plugin_taking_a_builtin_name_is_refused(tmp_path):
    body = PLUGIN.replace('"outside-fedavg"', '"fedavg"')
    env = _install_fake(tmp_path, "outside_plugin:register", body)
    listed = _fedaudit("list", env=env)
    assert listed.returncode == 2
    assert "'fedavg' is already registered" in listed.stderr
