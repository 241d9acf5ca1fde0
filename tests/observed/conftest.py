"""Recordings the offline-audit tests share: small fedaudit runs on digits (8x8 grey
images) written as recorded-updates directories by :func:`audit.api.record_observed`."""

import shutil
from pathlib import Path

import pytest

from audit.api import record_observed


@pytest.fixture(scope="session")
def mlp_recording(tmp_path_factory) -> Path:
    """FedSGD, an MLP, 2 clients of 1 image each, with the ground truth (read only)."""
    out = tmp_path_factory.mktemp("recordings") / "mlp"
    return record_observed(out=out, defense="fedsgd", dataset="digits", model="mlp",
                           num_targets=2, batch_size=1)


@pytest.fixture
def recording(mlp_recording, tmp_path) -> Path:
    """A private copy of ``mlp_recording``, for a test to break."""
    return Path(shutil.copytree(mlp_recording, tmp_path / "recording"))
