"""Black-box audit of an Opacus run: mislabelled input canaries read from the final model.

:func:`black_box_input_one_run` (``one-run-input``, the realistic and much weaker variant
of the white-box audits): ``input_canaries`` examples taken out of ``train_data`` get a
wrong label (shifted by a random non-zero offset) and are each put back with probability
1/2; a fresh run of your ``make`` + training on that data; the score of a canary is its
loss (with the wrong label) on a reference model -- one more run on the data without any
canary, which is independent of the inclusion bits -- minus its loss on the final model,
read with the one-run estimator (Steinke, Nasr, Jagielski 2023). Clipping and noise keep a
mislabelled example that is seen a few times from being memorised, so this bound is
usually 0 on short trainings even when the white-box bound shows a violation. Unlike the
gradient canaries, these go through your data loader.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import ConcatDataset, Dataset, Subset

from audit.core.claims import PrivacyClaim
from audit.core.errors import invalid
from audit.core.validation import check_interval
from audit.integrations.opacus.claim import opacus_claim
from audit.integrations.opacus.lint_facts import OpacusStepTap
from audit.integrations.opacus.run import AUDIT_OWNER, OpacusRun, run_info, run_training
from audit.privacy.estimators import EmpiricalEpsilon, best_one_run_epsilon


def _label(y: Any) -> int:
    return int(y.item() if isinstance(y, torch.Tensor) else y)


class _Relabelled(Dataset):
    """Items of ``base`` at ``indices`` with new labels (kept in the base's label type)."""

    def __init__(self, base: Dataset, indices: Sequence[int], labels: Sequence[int]) -> None:
        self.base, self.indices, self.labels = base, list(indices), list(labels)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        x, y = self.base[self.indices[i]]
        new = self.labels[i]
        return x, (torch.as_tensor(new, dtype=y.dtype) if isinstance(y, torch.Tensor) else new)


def _labels(data: Dataset) -> np.ndarray:
    tensors = getattr(data, "tensors", None)
    if tensors is not None and len(tensors) >= 2:
        return tensors[1].reshape(-1).cpu().numpy().astype(np.int64)
    return np.array([_label(data[i][1]) for i in range(len(data))], dtype=np.int64)


def _canary_losses(run: OpacusRun, model: nn.Module, pool: np.ndarray, planted: np.ndarray) -> np.ndarray:
    device = next(model.parameters()).device
    model.eval()
    losses = []
    with torch.no_grad():
        for idx, lab in zip(pool.tolist(), planted.tolist()):
            x, y = run.train_data[idx]
            out = model(torch.as_tensor(x)[None].to(device))
            target = torch.as_tensor([lab], dtype=y.dtype if isinstance(y, torch.Tensor) else torch.long).to(device)
            losses.append(float(run.loss_fn(out, target)))
    return np.array(losses)


def black_box_input_one_run(run: OpacusRun, *, canaries: int = 200, seed: int = 0, calibrate: bool = True
                            ) -> tuple[EmpiricalEpsilon, PrivacyClaim, dict]:
    """A fresh run with ``canaries`` mislabelled examples of ``train_data``, each in with
    probability 1/2, scored by their loss on the final model (minus their loss on a
    reference model trained without any canary, with ``calibrate``): the black-box one-run
    lower bound (95%), that run's claim and diagnostics."""
    canaries = check_interval("input_canaries", AUDIT_OWNER, canaries, kind=int, low=20)
    n = len(run.train_data)
    if canaries > n // 2:
        raise invalid("input_canaries", AUDIT_OWNER, f"at most half the training examples (<= {n // 2})", canaries)
    rng = np.random.default_rng(seed)
    labels = _labels(run.train_data)
    k_classes = run.num_classes or int(labels.max()) + 1
    if k_classes < 2:
        raise invalid("train_data", AUDIT_OWNER, "a dataset with at least 2 classes", f"{k_classes} class")
    order = rng.permutation(n)
    pool, keep = order[:canaries], np.sort(order[canaries:])
    planted = (labels[pool] + rng.integers(1, k_classes, size=canaries)) % k_classes
    included = rng.random(canaries) < 0.5
    data = ConcatDataset([Subset(run.train_data, keep.tolist()),
                          _Relabelled(run.train_data, pool[included].tolist(), planted[included].tolist())])
    training, step_tap = run_training(run, data, seed, lambda opt, q: OpacusStepTap(opt))
    loss = _canary_losses(run, training.model, pool, planted)
    reference = None
    if calibrate:  # a run without any canary: how hard each wrong label is anyway
        ref_training, _ = run_training(run, Subset(run.train_data, keep.tolist()), seed + 104729)
        reference = _canary_losses(run, ref_training.model, pool, planted)
    scores = -loss if reference is None else reference - loss
    ks = [k for k in (5, 10, 20, 50) if 2 * k <= canaries]
    claim = opacus_claim(training.privacy_engine, run.delta, accountant=run.accountant,
                         claimed_epsilon=run.claimed_epsilon)
    est = best_one_run_epsilon(scores, included, delta=float(claim.delta), beta=0.05, ks=ks)
    diag = {"canary": "mislabelled input", "observation": "the final model's loss",
            "included": int(included.sum()), "calibrated_by_reference_run": bool(calibrate),
            "loss_gap_out_minus_in": float(loss[~included].mean() - loss[included].mean())}
    est = EmpiricalEpsilon("one-run-input", est.epsilon, est.delta, est.nature, est.confidence, est.trials,
                           est.compute_s, {**est.details, **diag})
    return est, claim, run_info(training, 1.0 / len(training.data_loader), delta=float(claim.delta),
                                tap=step_tap)


__all__ = ["black_box_input_one_run"]
