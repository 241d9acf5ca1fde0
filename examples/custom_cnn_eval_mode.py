"""Audit your own model as your clients really train it.

A user's CNN with BatchNorm, its broadcast weights from a safetensors file, and FedAvg
clients that train 2 local epochs of minibatches (2 images each) with the model in **eval
mode** (BatchNorm normalises by its running statistics). Inverting Gradients (Geiping et
al. 2020) re-simulates exactly that local training; a second run makes the adversary assume
train mode instead (batch statistics), which is the wrong function to match, and shows what
the wrong assumption costs in PSNR. The server knows the clients' labels
(``hbc-server-labels``), so the comparison is about the model mode alone.

    python3 examples/custom_cnn_eval_mode.py [--iterations 600] [--out DIR]

Prints one line per run: ``<assumption> PSNR <mean> dB (baseline <b> dB)``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from torch import nn


def build(*, num_classes: int, width: int = 16) -> nn.Module:
    """The user's model: two conv + BatchNorm blocks and a linear head, for 3x32x32 images."""
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ELU(),
        nn.Conv2d(width, width, 3, padding=1, stride=2), nn.BatchNorm2d(width), nn.ELU(),
        nn.Flatten(), nn.Linear(width * 16 * 16, num_classes))


def pretrained_weights(path: Path, num_classes: int, steps: int = 5) -> Path:
    """Weights briefly trained on images no client holds (what a deployed model carries:
    BatchNorm running statistics that fit its weights), saved as safetensors. Longer
    training saturates this tiny model's softmax and makes every inversion harder."""
    from audit.data.registry import create_dataset
    from audit.models.weights import save_weights

    torch.manual_seed(1)
    model = build(num_classes=num_classes)
    data = create_dataset("natural-32")
    images, labels = data.images[8:], data.labels[8:]
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for step in range(steps):
        idx = torch.arange(4 * step, 4 * step + 4) % len(labels)
        opt.zero_grad()
        nn.functional.cross_entropy(model(images[idx]), labels[idx]).backward()
        opt.step()
    return save_weights(model, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=600)
    parser.add_argument("--out", default=None, help="Write each run's report under this directory.")
    args = parser.parse_args()
    from audit.api import run_audit

    with tempfile.TemporaryDirectory() as tmp:
        weights = pretrained_weights(Path(tmp) / "broadcast.safetensors", num_classes=8)
        for assumption in (None, "train"):
            report = run_audit(
                defense="fedavg", defense_params={"lr": 0.01},
                local_training={"epochs": 2, "batch_size": 2, "model_mode": "eval"},
                attack="inverting-gradients", threat_model="hbc-server-labels",
                attack_params={"iterations": args.iterations, "restarts": 1,
                               **({"assumed_model_mode": assumption} if assumption else {})},
                dataset="natural-32", model=f"{Path(__file__).resolve()}:build", weights=str(weights),
                batch_size=4, num_targets=1, seed=0, lpips=False, threads=1,
                out=None if args.out is None else Path(args.out) / (assumption or "true-mode"))
            psnr = next(m for m in report["findings"][0]["metrics"] if m["name"] == "psnr")
            label = "assumes train mode" if assumption else "knows eval mode"
            print(f"{label}: PSNR {psnr['mean']:.2f} dB (baseline {psnr['baseline']['mean']:.2f} dB)")


if __name__ == "__main__":
    main()
