"""LPIPS plumbing only. The backbone planted here has RANDOM weights: values computed with
it test the wiring and are never reported as LPIPS."""

import pytest
import torch
import torchvision

from audit.metrics.lpips_metric import ALEXNET_WEIGHTS_FILE, LpipsScorer, backbone_weights_path


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    return tmp_path


def test_absent_weights_say_why(torch_home):
    scorer = LpipsScorer()
    path = torch_home / "hub" / "checkpoints" / ALEXNET_WEIGHTS_FILE
    assert backbone_weights_path() == path
    assert not scorer.available
    assert scorer.reason == f"LPIPS not computed: backbone weights not found at {path}"
    with pytest.raises(RuntimeError):
        scorer(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))


def test_planted_random_backbone_is_loaded_and_used(torch_home):
    path = torch_home / "hub" / "checkpoints" / ALEXNET_WEIGHTS_FILE
    path.parent.mkdir(parents=True)
    torch.manual_seed(5)
    state = torchvision.models.alexnet(weights=None).state_dict()
    torch.save(state, path)
    scorer = LpipsScorer()
    assert scorer.available and scorer.reason is None
    assert torch.equal(scorer._net.net.slice1[0].weight, state["features.0.weight"])
    assert torch.equal(getattr(scorer._net.net.slice5, "10").bias, state["features.10.bias"])
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    same = scorer(x, x)
    diff = scorer(x, 1 - x)
    assert same == pytest.approx([0.0, 0.0], abs=1e-6)
    assert (diff > 0).all()


def test_corrupt_weights_file(torch_home):
    path = torch_home / "hub" / "checkpoints" / ALEXNET_WEIGHTS_FILE
    path.parent.mkdir(parents=True)
    path.write_bytes(b"garbage")
    scorer = LpipsScorer()
    assert not scorer.available and "could not be loaded" in scorer.reason
