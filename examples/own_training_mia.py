"""Audit membership of your own trained target, with shadow models trained by your own
training function (docs/membership.md, "Your target, your training").

A stand-in for a deployment: a noisy 4-class task of 400 rows (10% random labels, which a
model must memorise), saved as ``data.npz`` with a ``member`` array marking the secret half
the target trained on; the target, built by :func:`build` and trained by :func:`train`,
saved as ``target.safetensors``. fedaudit is then given the weights, the data, the members
and *this file's* ``build`` and ``train``, trains eight shadow models with them (LiRA
online, Carlini et al. 2022), and audits the target with LOSS (Yeom et al. 2018) and LiRA
online and offline — the same as::

    fedaudit mia --target-weights DIR/target.safetensors --model examples/own_training_mia.py:build \\
        --dataset npz --dataset-param path=DIR/data.npz --members DIR/data.npz \\
        --train examples/own_training_mia.py:train --out DIR/report

    python3 examples/own_training_mia.py [--out DIR] [--seed N]

Prints ``wrote <dir>``, then one line per attack: ``<attack>: AUC <a> TPR@1%FPR <t>``.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROWS, FEATURES, CLASSES, SHADOW_MODELS = 400, 20, 4, 8
HERE = Path(__file__).resolve()


def build(*, input_shape, num_classes, hidden: int = 128) -> nn.Module:
    """The deployment's model: an MLP over the (1, 1, D) rows fedaudit's ``npz`` data gives."""
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), hidden), nn.ReLU(),
                         nn.Linear(hidden, num_classes))


def train(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, seed: int) -> None:
    """The deployment's training recipe: full-batch Adam, 300 steps (to memorisation)."""
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        opt.zero_grad()
        nn.functional.cross_entropy(model(images), labels).backward()
        opt.step()


def deploy(out: Path, seed: int) -> tuple[Path, Path]:
    """Write the data (with its ``member`` array) and train and save the target."""
    from audit.models.weights import save_weights

    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(CLASSES, FEATURES))
    y = rng.integers(0, CLASSES, ROWS)
    x = centers[y] + 1.5 * rng.normal(size=(ROWS, FEATURES))
    x = (x - x.min(0)) / (x.max(0) - x.min(0))  # per feature onto [0, 1], as fedaudit's npz data
    noisy = rng.random(ROWS) < 0.1
    y[noisy] = rng.integers(0, CLASSES, int(noisy.sum()))
    member = rng.random(ROWS) < 0.5
    data = out / "data.npz"
    np.savez(data, x=x.astype(np.float32), y=y, member=member)
    # fedaudit's npz data hold rows as (N, 1, 1, D) float32 (min-max scaled: here unchanged);
    # the target trains on the very same inputs
    rows = torch.tensor(x, dtype=torch.float32).view(ROWS, 1, 1, FEATURES)
    torch.manual_seed(seed)
    target = build(input_shape=(1, 1, FEATURES), num_classes=CLASSES)
    train(target, rows[member], torch.tensor(y)[member], seed=seed)
    return data, save_weights(target, out / "target.safetensors")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="Directory for the files (default: a temp dir).")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="own-training-mia-"))
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)  # as fedaudit's default (threads=1): faster for models this small
    data, weights = deploy(out, args.seed)
    from audit.api import audit_membership_scores

    report = audit_membership_scores(
        target_weights=weights, model=f"{HERE}:build", dataset="npz",
        dataset_params={"path": str(data)}, members=data, train=f"{HERE}:train",
        shadow_models=SHADOW_MODELS, seed=args.seed, out=out / "report")
    print(f"wrote {out / 'report'}")
    for finding in report["findings"]:
        metrics = finding["membership"]["metrics"]
        print(f"{finding['id'].split(':')[1]}: AUC {metrics['auc']:.3f} "
              f"TPR@1%FPR {metrics['tpr_at_fpr']['0.01']:.3f}")


if __name__ == "__main__":
    main()
