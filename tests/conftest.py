"""Shared test settings: one torch thread (measured faster on the 2-core machines), no
network (nothing in the suite downloads), and hypothesis derandomized (every property test
draws the same examples on every run, so CI is deterministic; set
HYPOTHESIS_PROFILE=explore to search with fresh random examples)."""

import os

import pytest
import torch
from hypothesis import settings

torch.set_num_threads(1)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
