"""What a report records about the machine and software that produced it."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

import audit

PACKAGES = (
    "torch",
    "torchvision",
    "numpy",
    "scipy",
    "scikit-image",
    "scikit-learn",
    "lpips",
    "dp-accounting",
    "opacus",
    "click",
    "jinja2",
)


def package_versions() -> dict[str, str]:
    """Installed versions of the packages results depend on."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def environment_info(*, device: str, threads: int) -> dict:
    """The report's ``environment`` block."""
    return {
        "fedaudit": audit.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "device": device,
        "threads": threads,
    }
