"""Deep Leakage from Gradients (Zhu, Liu, Han 2019, NeurIPS) and iDLG (Zhao, Mopuri, Bilen
2020).

DLG: minimise the squared L2 distance between the candidate update and the observed one,
jointly over dummy images and dummy soft labels, with L-BFGS. iDLG: first recover the label
analytically (:mod:`attacks.label_recovery`), then optimise the images only.

Threat model: as Inverting Gradients (white-box honest-but-curious server).

Choices: ``iterations`` counts L-BFGS steps of up to ``max_iter=20`` evaluations each (the
reference code's loop), default 50 (the paper runs 300); uniform init in [0, 1]; no box
constraint during optimisation (as in DLG) but the result is clipped to [0, 1] for
scoring; a non-finite loss (L-BFGS can diverge in float32) stops the run and keeps the
last finite iterate.
"""

from __future__ import annotations

from typing import Any

import torch
from tqdm.auto import tqdm

from attacks.gradient_matching import attack_copy, l2_distance, make_update_fn, observed_tensors
from attacks.label_recovery import recover_labels
from audit.core.attack import Attack, AttackResult, AttackView
from audit.core.validation import check_interval, check_known_keys, check_positive


class DLG(Attack):
    """L2 gradient matching with L-BFGS over images and soft labels."""

    name = "dlg"
    family = "gradient-inversion"
    optimise_labels = True

    def __init__(self, *, iterations: int = 50, lr: float = 1.0) -> None:
        self.iterations = check_interval("iterations", self.name, iterations, kind=int, low=1)
        self.lr = check_positive("lr", self.name, lr)

    @classmethod
    def from_params(cls, **params: Any) -> "DLG":
        """Build from user parameters (iterations, lr)."""
        check_known_keys(params, ("iterations", "lr"), cls.name)
        return cls(**params)

    def params(self) -> dict[str, Any]:
        return {"iterations": self.iterations, "lr": self.lr}

    def run(
        self,
        view: AttackView,
        *,
        generator: torch.Generator,
        device: torch.device,
        progress: bool = False,
    ) -> AttackResult:
        model, params = attack_copy(view.model, device, view.target.tensors, view.local_training)
        observed = observed_tensors(view.target.tensors, params, device)
        update_fn = make_update_fn(model, view.local_training, client_id=view.target.client_id,
                                   round=view.target.round)
        b = view.batch_size
        x = torch.rand((b, *view.input_shape), generator=generator).to(device).requires_grad_(True)
        if self.optimise_labels and view.labels is None:
            logits = torch.randn((b, view.num_classes), generator=generator).to(device)
            logits.requires_grad_(True)
            variables = [x, logits]
            label_fn = lambda: torch.softmax(logits, dim=-1)  # noqa: E731
        else:
            fixed = recover_labels(view, generator=generator).to(device)
            logits = None
            variables = [x]
            label_fn = lambda: fixed  # noqa: E731
        opt = torch.optim.LBFGS(variables, lr=self.lr, max_iter=20)

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = l2_distance(update_fn(params, x, label_fn()), observed)
            loss.backward()
            return loss

        last_good = x.detach().clone()
        loss_value = float("nan")
        steps = tqdm(range(self.iterations), desc=self.name, disable=not progress, leave=False)
        for _ in steps:
            loss = opt.step(closure)
            loss_value = float(loss.detach())
            if not torch.isfinite(loss) or not torch.isfinite(x).all():
                break
            last_good = x.detach().clone()
        labels = (
            torch.argmax(logits.detach(), dim=-1) if logits is not None else label_fn().detach()
        )
        return AttackResult(
            images=last_good.clamp(0.0, 1.0).cpu(),
            labels=labels.cpu(),
            stats={"gradient_distance": loss_value},
        )


class IDLG(DLG):
    """iDLG: analytic label recovery, then DLG on the images only."""

    name = "idlg"
    optimise_labels = False
