"""Audit membership from recorded scores only (the score-level audit, docs/membership.md).

A stand-in for a deployment: a small classifier trained (here, with plain torch) on a secret
half of 400 candidate examples, and four reference models trained on other halves, each
queried on the candidates and on 100 population examples. What a deployment would keep —
logits, true labels, who was a member of what — goes into a CSV in fedaudit's scores
format, written with the standard csv module; fedaudit then audits the CSV alone, through
its Python function :func:`audit.membership.score_audit.audit_scores` (no model, no
training), with LOSS (Yeom et al. 2018), LiRA online and offline (Carlini et al. 2022)
and RMIA (Zarifzadeh et al. 2024).

    python3 examples/score_level_mia.py [--out DIR] [--seed N]

Prints ``wrote <csv>``, then one line per attack: ``<attack>: AUC <a> TPR@1%FPR <t>``.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

CANDIDATES, POPULATION, FEATURES, CLASSES, REFERENCES = 400, 100, 20, 4, 4


def make_data(rng: np.random.Generator):
    """A noisy 4-class task: 10% of the labels are random, so a model must memorise them."""
    centers = rng.normal(size=(CLASSES, FEATURES))
    n = CANDIDATES + POPULATION
    y = rng.integers(0, CLASSES, n)
    x = centers[y] + 1.5 * rng.normal(size=(n, FEATURES))
    noisy = rng.random(n) < 0.1
    y[noisy] = rng.integers(0, CLASSES, int(noisy.sum()))
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


def train(x: torch.Tensor, y: torch.Tensor, seed: int) -> nn.Module:
    """The deployment's training recipe: an MLP, full-batch Adam, to memorisation."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(FEATURES, 128), nn.ReLU(), nn.Linear(128, CLASSES))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


def record(out: Path, seed: int) -> Path:
    """Train the target and reference models and write what they output as a scores CSV."""
    rng = np.random.default_rng(seed)
    x, y = make_data(rng)
    cand = slice(0, CANDIDATES)  # the rows after it are the population
    member = rng.random(CANDIDATES) < 0.5
    ref_in = rng.random((REFERENCES, CANDIDATES)) < 0.5
    models = [train(x[cand][m], y[cand][m], seed + k)
              for k, m in enumerate([member, *ref_in])]
    with torch.no_grad():
        logits = [model(x).double().numpy() for model in models]  # (rows, classes) per model
    header = ["id", "member", "label", "population"]
    header += [f"logit_{c}" for c in range(CLASSES)]
    for m in range(REFERENCES):
        header += [f"ref{m}_logit_{c}" for c in range(CLASSES)] + [f"ref{m}_in"]
    path = out / "scores.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for i in range(CANDIDATES + POPULATION):
            is_pop = i >= CANDIDATES
            row = [f"example-{i}", 0 if is_pop else int(member[i]), int(y[i]), int(is_pop)]
            row += [repr(float(v)) for v in logits[0][i]]
            for m in range(REFERENCES):
                row += [repr(float(v)) for v in logits[m + 1][i]] + [0 if is_pop else int(ref_in[m, i])]
            writer.writerow(row)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="Folder for scores.csv (default: a temporary one).")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from audit.membership.score_audit import audit_scores

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        out.mkdir(parents=True, exist_ok=True)
        path = record(out, args.seed)
        print(f"wrote {path}")
        for finding in audit_scores(path, seed=args.seed):
            metrics = finding["membership"]["metrics"]
            print(f"{finding['id'].split(':')[1]}: AUC {metrics['auc']:.3f} "
                  f"TPR@1%FPR {metrics['tpr_at_fpr']['0.01']:.3f}")


if __name__ == "__main__":
    main()
