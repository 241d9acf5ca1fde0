"""The "Extending" example of docs/extending.md works as written: one module plus one registry line,
and the harness, CLI and reports pick the new defense up."""

import re
from pathlib import Path

import pytest

from audit.cli.main import main
from audit.core.defense import DEFENSES
from reports.io import load_report

PAGE = Path(__file__).resolve().parents[1] / "docs" / "extending.md"


@pytest.fixture
def top_k_registered():
    text = PAGE.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    module_code = next(b for b in blocks if b.startswith("# defenses/top_k.py"))
    register_line = next(b for b in blocks if b.startswith("# defenses/catalog.py"))
    namespace: dict = {}
    exec(compile(module_code, "defenses/top_k.py", "exec"), namespace)
    exec(compile(register_line, "defenses/catalog.py", "exec"), {"registry": DEFENSES, **namespace})
    yield
    DEFENSES._entries.pop("top-k", None)


def test_extending_example_runs_end_to_end(top_k_registered, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["audit", "--defense", "top-k", "--defense-param", "fraction=0.05", "--attack", "llg",
              "--dataset", "digits", "--num-targets", "2", "--no-progress", "--out", str(tmp_path)])
    assert exc.value.code == 0, capsys.readouterr().err
    finding = load_report(tmp_path / "report.json")["findings"][0]
    assert finding["defense"] == {"name": "top-k", "params": {"fraction": 0.05, "lr": 0.1}}
    assert finding["claim"]["has_dp"] is False
