"""The "your own Flower strategy" example of docs/integrations.md works as written (about 20 lines): it
audits FedMedian with LocalDpMod end to end and writes the report."""

import re
from pathlib import Path

import pytest

pytest.importorskip("flwr")

from audit.core.defense import DEFENSES  # noqa: E402
from reports.io import load_report  # noqa: E402

PAGE = Path(__file__).resolve().parents[1] / "docs" / "integrations.md"


def test_own_flower_strategy_example_audits_end_to_end(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)
    code = next(b for b in blocks if b.startswith("# audit_my_flower.py"))
    assert len(code.strip().splitlines()) <= 25
    monkeypatch.chdir(tmp_path)
    try:
        with pytest.raises(SystemExit) as exc:
            exec(compile(code, "audit_my_flower.py", "exec"), {"__name__": "__main__"})
        assert exc.value.code == 0
    finally:
        DEFENSES._entries.pop("my-flower-setup", None)
    attack, dp = load_report(tmp_path / "my-flower-audit" / "report.json")["findings"][:2]
    assert attack["defense"]["params"]["strategy"] == "FedMedian"
    assert attack["defense"]["params"]["mods"] == "LocalDpMod"
    assert attack["threat_model"]["name"] == "hbc-server"
    assert dp["claim"]["epsilon"] == pytest.approx(0.9)  # LocalDpMod's own statement, one round
    audit = dp["privacy_audit"]
    assert audit["verdict"] == "PASS"  # sensitivity 2C: the statement holds
    assert [a["label"] for a in audit["alternatives"]] == ["as run"]
    assert audit["alternatives"][0]["epsilon_claim"] < 0.9
