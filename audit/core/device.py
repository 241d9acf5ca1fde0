"""Device choice for ``--device auto|cpu|cuda`` and the thread setting."""

from __future__ import annotations

import torch

from audit.core.errors import InvalidParameterError
from audit.core.validation import check_interval, check_options

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(choice: str) -> torch.device:
    """``auto`` picks CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    choice = check_options("device", "fedaudit", choice, DEVICE_CHOICES)
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise InvalidParameterError(
            "The 'device' parameter of fedaudit must be a device that exists; CUDA is not "
            "available on this machine. Got 'cuda' instead."
        )
    return torch.device(choice)


def set_threads(threads: int) -> int:
    """Set torch's intra-op threads explicitly (its default was measured slower here)."""
    threads = check_interval("threads", "fedaudit", threads, kind=int, low=1)
    torch.set_num_threads(threads)
    return threads


def describe_device(device: torch.device) -> str:
    """A human-readable device name for reports."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return "cpu"
