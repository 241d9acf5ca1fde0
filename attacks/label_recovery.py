"""Label recovery from the last layer's update.

* iDLG (Zhao et al. 2020, "iDLG: Improved Deep Leakage from Gradients"): at batch 1 the
  cross-entropy gradient of the last layer's bias is ``softmax(z) - onehot(y)``, negative
  only at the true label, so ``y = argmin(dL/db)``.
* LLG-style counts (Wainakh et al. 2022, "User-Level Label Leakage from Gradients in
  Federated Learning"): for a batch of B the mean bias gradient is ``p_bar - n / B`` with
  ``n`` the label counts, so ``n ~ B (p_bar - dL/db)``; the adversary estimates ``p_bar``
  by running the broadcast model on dummy inputs it draws itself.

Choices: the bias of the last ``nn.Linear`` is used (every registered model has one); a
model delta from E local steps (full-batch steps, or epochs times minibatches) is divided by ``lr * E`` to approximate the mean gradient;
counts are rounded by largest remainder so they sum to B.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from audit.core.attack import Attack, AttackResult, AttackView
from audit.core.errors import InvalidParameterError
from audit.core.updates import UpdateKind
from audit.core.validation import check_interval, check_known_keys


def last_bias_name(model: nn.Module) -> str:
    """Parameter name of the bias of the model's last linear layer."""
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and m.bias is not None]
    if not names:
        raise InvalidParameterError(
            "Label recovery needs a model whose last layer is nn.Linear with a bias. "
            f"Got {type(model).__name__} instead."
        )
    return f"{names[-1]}.bias" if names[-1] else "bias"


def mean_bias_gradient(view: AttackView) -> torch.Tensor:
    """The observed last-layer bias update, rescaled to a mean gradient."""
    name = last_bias_name(view.model)
    if name not in view.target.tensors:
        raise InvalidParameterError(
            f"Label recovery reads the update of the last layer's bias ({name!r}), which the "
            "observed update does not contain (the client sends only the parameters it trains, "
            "e.g. LoRA factors). Use --threat-model hbc-server-labels (labels known). Got an "
            f"update of {len(view.target.tensors)} tensor(s) without it instead.")
    g = view.target.tensors[name].detach().double().cpu()
    if view.target.kind is UpdateKind.MODEL_DELTA:
        g = g / (view.local_training.lr * local_step_count(view))
    return g


def local_step_count(view: AttackView) -> int:
    """How many local steps the client took: ``steps`` full-batch steps, or ``epochs`` times
    the minibatches of its ``batch_size`` examples (the last one smaller)."""
    training = view.local_training
    if view.target.kind is UpdateKind.GRADIENT:
        return 1
    if training.batch_size is None:
        return training.steps
    return training.epochs * -(-view.batch_size // training.batch_size)


def idlg_labels(view: AttackView) -> torch.Tensor:
    """iDLG's label at batch 1 (the most negative bias-gradient entry), as shape (1,)."""
    return torch.argmin(mean_bias_gradient(view)).reshape(1)


def count_labels(
    view: AttackView, *, generator: torch.Generator, dummy_samples: int = 64
) -> torch.Tensor:
    """LLG-style label counts for a batch, returned as a sorted label vector of length B."""
    b = view.batch_size
    g = mean_bias_gradient(view)
    model = view.model
    was_training = model.training
    model.eval()
    with torch.no_grad():
        dev = next(model.parameters()).device
        dummy = torch.rand((dummy_samples, *view.input_shape), generator=generator).to(dev)
        p_bar = torch.softmax(model(dummy), dim=-1).mean(0).double().cpu()
    model.train(was_training)
    return counts_to_labels((b * (p_bar - g)).clamp(min=0), b)


def counts_to_labels(estimate: torch.Tensor, total: int) -> torch.Tensor:
    """Non-negative real label counts rounded by largest remainder to integers summing to
    ``total``, as a sorted label vector of that length."""
    counts = estimate.clamp(min=0).floor()
    remainder = estimate.clamp(min=0) - counts
    missing = int(total - counts.sum())
    if missing > 0:
        counts[torch.argsort(remainder, descending=True, stable=True)[:missing]] += 1
    elif missing < 0:
        for _ in range(-missing):
            counts[torch.argmax(counts)] -= 1
    return torch.repeat_interleave(torch.arange(len(counts)), counts.long())


def recover_labels(view: AttackView, *, generator: torch.Generator) -> torch.Tensor:
    """The labels an adversary uses: known ones if its threat model grants them, else
    iDLG at batch 1 and LLG counts for larger batches."""
    if view.labels is not None:
        return view.labels.clone()
    if view.batch_size == 1:
        return idlg_labels(view)
    return count_labels(view, generator=generator)


class LabelCountRecovery(Attack):
    """Batch label recovery from the last layer's bias update (LLG-style counts)."""

    name = "llg"
    family = "label-recovery"

    def __init__(self, *, dummy_samples: int = 64) -> None:
        self.dummy_samples = check_interval("dummy_samples", self.name, dummy_samples, kind=int, low=1)

    @classmethod
    def from_params(cls, **params: Any) -> "LabelCountRecovery":
        """Build from user parameters (``dummy_samples``)."""
        check_known_keys(params, ("dummy_samples",), cls.name)
        return cls(**params)

    def params(self) -> dict[str, Any]:
        return {"dummy_samples": self.dummy_samples}

    def run(self, view, *, generator, device, progress=False) -> AttackResult:
        if view.batch_size == 1:
            labels = idlg_labels(view)
        else:
            labels = count_labels(view, generator=generator, dummy_samples=self.dummy_samples)
        return AttackResult(labels=labels)
