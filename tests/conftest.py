"""Shared test settings: one torch thread (measured faster on the 2-core machines), and no
network (nothing in the suite downloads)."""

import os

import pytest
import torch

torch.set_num_threads(1)
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
