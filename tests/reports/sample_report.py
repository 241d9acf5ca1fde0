"""A valid sample report (schema 1.0) with two findings, for the tests of ``reports``.

Finding 0 is a DP-SGD defense with a central (ε, δ) claim, attacked by gradient
inversion, with an image grid and an LPIPS metric that could not be computed (null,
with a note). Finding 1 has no DP claim and a defense name/param holding markup.
"""

from __future__ import annotations

import numpy as np

from reports.images import image_grid_png, png_base64

LPIPS_NOTE = (
    "LPIPS not computed: backbone weights not found at "
    "/root/.cache/torch/hub/checkpoints/alexnet-owt-7be5be79.pth"
)
NASTY = "<script>alert('x')</script>"


def sample_png() -> bytes:
    """A small deterministic ground-truth / reconstruction grid."""
    rng = np.random.default_rng(0)
    truth = rng.random((3, 3, 8, 8))
    recon = np.clip(truth + 0.1 * rng.standard_normal(truth.shape), 0, 1)
    return image_grid_png([truth, recon])


def _metric(name, unit, direction, mean, worst, per_item, baseline=None, note=None):
    return {"name": name, "unit": unit, "direction": direction, "mean": mean, "worst": worst,
            "per_item": per_item, "baseline": baseline, "note": note}


def _threat() -> dict:
    return {
        "name": "honest-but-curious-server",
        "adversary": "the aggregation server",
        "observes": "each client's model update (one round)",
        "knows": ["model architecture", "initial weights", "batch size"],
        "description": "The server follows the protocol but tries to reconstruct inputs.",
    }


def _setting(batch_size: int) -> dict:
    return {"dataset": "digits-8x8", "model": "mlp",
            "model_params": {"hidden": [64], "act": "relu"}, "batch_size": batch_size,
            "num_targets": 3, "local_steps": 1, "rounds": 1, "clients": 1}


def make_report() -> dict:
    """Build a fresh sample report dict (a new object on every call)."""
    dp_finding = {
        "id": "dpsgd-ig",
        "title": "DP-SGD against inverting gradients",
        "defense": {"name": "dp-sgd", "params": {"noise_multiplier": 1.1, "max_grad_norm": 1.0,
                                                 "poisson": True}},
        "claim": {"has_dp": True, "epsilon": 7.93, "delta": 1e-05, "unit": "example",
                  "trust_model": "central", "compositions": 100, "accountant": "rdp",
                  "mechanism": "subsampled gaussian",
                  "statement": "(7.93, 1e-05)-DP per example after 100 steps (RDP accountant)."},
        "threat_model": _threat(),
        "attack": {"name": "inverting-gradients", "family": "gradient-inversion",
                   "params": {"iterations": 200, "lr": 0.1, "tv_weight": 0.0001}},
        "setting": _setting(3),
        "metrics": [
            _metric("psnr", "dB", "higher-leaks-more", 14.2345, 18.9, [12.1, 11.6, 18.9],
                    {"description": "random dataset image", "mean": 10.05, "worst": 12.3}),
            _metric("ssim", "", "higher-leaks-more", 0.31, 0.52, [0.2, 0.21, 0.52],
                    {"description": "random dataset image", "mean": 0.12, "worst": 0.2}),
            _metric("mse", "", "lower-leaks-more", 0.038, 0.013, [0.05, 0.051, 0.013],
                    {"description": "random dataset image", "mean": 0.1, "worst": 0.06}),
            _metric("lpips", "", "lower-leaks-more", None, None, [None, None, None],
                    None, LPIPS_NOTE),
        ],
        "images": {"png_base64": png_base64(sample_png()),
                   "caption": "rows: ground truth / reconstruction"},
        "runtime_s": 3.21,
    }
    nodp_finding = {
        "id": "clip-idlg",
        "title": "Gradient clipping against iDLG",
        "defense": {"name": f"clip {NASTY}", "params": {"note": NASTY, "max_norm": 5}},
        "claim": {"has_dp": False, "epsilon": None, "delta": None, "unit": None,
                  "trust_model": None, "compositions": None, "accountant": None,
                  "mechanism": None, "statement": "Clipping alone makes no DP claim."},
        "threat_model": _threat(),
        "attack": {"name": "idlg", "family": "label-inference", "params": {"seed": 3}},
        "setting": _setting(1),
        "metrics": [
            _metric("label_accuracy", "fraction", "higher-leaks-more", 1.0, 1.0, [1.0],
                    {"description": "chance (1/10)", "mean": 0.1, "worst": 0.1}),
        ],
        "images": None,
        "runtime_s": 0.5,
    }
    return {
        "schema_version": "1.0",
        "kind": "fedaudit-audit",
        "title": "Sample audit",
        "created_utc": "2025-01-02T03:04:05+00:00",
        "runtime_s": 4.0,
        "command": "fedaudit audit --config audit.yaml --seed 0 --out out/",
        "seed": 0,
        "environment": {"fedaudit": "0.1.0", "python": "3.11.9", "platform": "Linux-x86_64",
                        "packages": {"torch": "2.5.0", "numpy": "2.1.0"}, "device": "cpu",
                        "threads": 4},
        "notes": [LPIPS_NOTE],
        "findings": [dp_finding, nodp_finding],
    }
