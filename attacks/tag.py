"""TAG (Deng et al. 2021, "TAG: Gradient Attack on Transformer-based Language Models",
Findings of EMNLP): recover a client's text from its update by gradient
matching over continuous dummy inputs.

The adversary re-simulates the client's causal-LM loss on dummy text and moves the dummy so
that its update matches the observed one. The dummy is a logit vector over the vocabulary per
position, ``z`` (B, T, V); its soft one-hot ``softmax(z)`` enters the model through
``inputs_embeds = softmax(z) @ E`` where ``E`` is the token-embedding table the model would
use for every id (``wte(arange(V))``, so an embedding LoRA, peft's ``lora_embedding_A/B``,
is part of it and receives its gradient). The LM loss needs targets, the next tokens, which
are as unknown as the inputs: the dummy's own soft distribution shifted by one position is
the soft target (cross entropy with soft labels), as gradient inversion optimises unknown
labels jointly with the inputs (DLG). The distance is TAG's, ``||g' - g||_2^2 + alpha
||g' - g||_1`` summed over the observed tensors (the squared L2 of this project's DLG,
:func:`attacks.gradient_matching.l2_distance`, plus the L1 term), or ``1 - cos`` with
``distance="cosine"``. The result is ``argmax z`` per position.

Threat model: the white-box honest-but-curious server of the other gradient-inversion attacks
(architecture, broadcast weights, the local schedule, the batch size and the sequence length
``T`` known; one client's update observed).

Choices of this project (the paper does not fix them):

* ``<bos>``: position 0 is fixed to ``<bos>`` (every record starts with it; known structure),
  the other ``T - 1`` positions are optimised over the whole vocabulary (specials included).
* Padding is not modelled: the dummy attends to all ``T`` positions and every position but
  the last has a (soft) target, which is exact for records that fill ``T`` (cut records); for
  a shorter record the client's loss masks its padding, so the dummy's tail positions are
  unconstrained and the L2 scale differs (the ``cosine`` distance is scale-free).
* ``cut_at_eos`` (default true): every recovered position after the first ``<eos>`` (at
  position >= 1) is set to ``<pad>``, the record format (:class:`audit.models.text_lm.ByteTokenizer`:
  after ``<eos>`` only padding), since those positions are unconstrained (above).
* Init: ``z ~ N(0, 1)`` from the generator passed to :meth:`TAG.run`; ``restarts`` independent
  runs one after the other, the one with the smallest final distance kept.
* Optimiser: Adam at ``lr`` (default 0.1, in logit units), ``steps`` iterations (default 300),
  the learning rate decayed by a cosine schedule to 0; ``alpha`` default 0.01.
* Update kinds: a gradient is matched as is; a model delta of one local step is ``lr *
  gradient`` (``delta = theta_broadcast - theta_after`` points uphill,
  :mod:`audit.core.updates`), so it is divided by the client's ``lr`` and matched as a gradient; a
  model delta of several local steps is used as a direction only, matched with ``1 - cos``
  whatever ``distance`` says (stats ``cosine_matching`` 1.0).
* The client's loss is re-simulated as :func:`audit.fl.simulation.local_update` computes it
  (``nn.CrossEntropyLoss`` on the (N, V, T) logits, mean over the ``B (T - 1)`` target
  positions), with soft targets; class weights, if a task had any, weight the soft targets but
  the mean stays over positions (torch's rule for probability targets).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.func import functional_call
from tqdm.auto import tqdm

from attacks.gradient_matching import attack_copy, cosine_distance, l2_distance, observed_tensors
from audit.core.attack import Attack, AttackResult, AttackView
from audit.core.errors import invalid
from audit.models.text_lm import ByteTokenizer
from audit.core.updates import UpdateKind
from audit.core.validation import (
    check_bool,
    check_interval,
    check_known_keys,
    check_nonnegative,
    check_options,
    check_positive,
)

DISTANCES = ("tag", "cosine")
PARAMS = ("steps", "restarts", "lr", "alpha", "distance", "cut_at_eos")


class _SoftInputLM(nn.Module):
    """The GPT-2 of a :class:`audit.models.text_lm.CausalLM` on soft one-hot inputs (B, T, V) ->
    logits (B, V, T). Its parameter names are the CausalLM's (both hold the model as ``lm``)."""

    def __init__(self, lm: nn.Module) -> None:
        super().__init__()
        self.lm = lm

    def forward(self, soft: torch.Tensor) -> torch.Tensor:
        wte = self.lm.get_input_embeddings()
        table = wte(torch.arange(soft.shape[-1], device=soft.device))  # (V, d), LoRA included
        embeds = soft @ table
        mask = torch.ones(soft.shape[:2], dtype=torch.long, device=soft.device)
        out = self.lm(inputs_embeds=embeds, attention_mask=mask, use_cache=False)
        return out.logits.transpose(1, 2)


def tag_distance(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor],
                 alpha: float) -> torch.Tensor:
    """TAG's distance: squared L2 plus ``alpha`` times L1 of ``a - b``, over the tensors of ``b``."""
    l2 = l2_distance(a, b)
    if not alpha:
        return l2
    return l2 + alpha * sum((a[n] - b[n]).abs().sum() for n in b)


def _cut_at_eos(row: list[int]) -> list[int]:
    """``row`` with every position after its first ``<eos>`` (at position >= 1) ``<pad>``."""
    for t in range(1, len(row)):
        if row[t] == ByteTokenizer.EOS:
            return row[: t + 1] + [ByteTokenizer.PAD] * (len(row) - t - 1)
    return row


class TAG(Attack):
    """Gradient matching (L2 + alpha L1) over soft token inputs of a causal LM, Adam, restarts."""

    name = "tag"
    family = "text-inversion"

    def __init__(self, *, steps: int = 300, restarts: int = 1, lr: float = 0.1, alpha: float = 0.01,
                 distance: str = "tag", cut_at_eos: bool = True) -> None:
        self.steps = check_interval("steps", self.name, steps, kind=int, low=1)
        self.restarts = check_interval("restarts", self.name, restarts, kind=int, low=1)
        self.lr = check_positive("lr", self.name, lr)
        self.alpha = check_nonnegative("alpha", self.name, alpha)
        self.distance = check_options("distance", self.name, distance, DISTANCES)
        self.cut_at_eos = check_bool("cut_at_eos", self.name, cut_at_eos)

    @classmethod
    def from_params(cls, **params: Any) -> "TAG":
        """Build from user parameters (steps, restarts, lr, alpha, distance, cut_at_eos)."""
        check_known_keys(params, PARAMS, cls.name)
        return cls(**params)

    def params(self) -> dict[str, Any]:
        return {"steps": self.steps, "restarts": self.restarts, "lr": self.lr, "alpha": self.alpha,
                "distance": self.distance, "cut_at_eos": self.cut_at_eos}

    def run(
        self,
        view: AttackView,
        *,
        generator: torch.Generator,
        device: torch.device,
        progress: bool = False,
    ) -> AttackResult:
        owner = f"attack {self.name!r}"
        shape = tuple(view.input_shape)
        if len(shape) != 1 or not isinstance(shape[0], int) or shape[0] < 2:
            raise invalid("input_shape", owner, "(T,) with T >= 2 (token ids of a text dataset)", shape)
        if not isinstance(getattr(view.model, "lm", None), nn.Module):
            raise invalid("model", owner, "a causal language model ('tiny-lm' or 'tiny-lm-lora')",
                          type(view.model).__name__)
        check_interval("num_classes", owner, view.num_classes, kind=int, low=ByteTokenizer.vocab_size)
        length, vocab, batch = shape[0], int(view.num_classes), int(view.batch_size)

        causal, params = attack_copy(view.model, device, view.target.tensors, view.local_training)
        observed = observed_tensors(view.target.tensors, params, device)
        training = view.local_training
        use_cosine = self.distance == "cosine"
        if training.kind is UpdateKind.MODEL_DELTA:
            if training.steps == 1:
                observed = {n: t / training.lr for n, t in observed.items()}
            else:
                use_cosine = True
        soft_model = _SoftInputLM(causal.lm)
        weight = training.loss_weight(device)
        names = list(params)
        leaves = {n: p.detach().requires_grad_(True) for n, p in params.items()}

        def distance(z: torch.Tensor, create_graph: bool) -> torch.Tensor:
            soft = torch.softmax(z, dim=-1)  # (B, T, V)
            logits = functional_call(soft_model, leaves, (soft,))  # (B, V, T)
            target = soft[:, 1:].transpose(1, 2)  # next-token soft targets (B, V, T - 1)
            loss = nn.functional.cross_entropy(logits[:, :, :-1], target, weight=weight)
            grads = torch.autograd.grad(loss, [leaves[n] for n in names], create_graph=create_graph)
            dummy = dict(zip(names, grads))
            if use_cosine:
                return cosine_distance(dummy, observed)
            return tag_distance(dummy, observed, self.alpha)

        bos = torch.full((batch, 1, vocab), -1e4, device=device)
        bos[:, :, ByteTokenizer.BOS] = 1e4  # softmax: exactly one-hot <bos>
        finals: list[float] = []
        best_tokens: torch.Tensor | None = None
        bar = tqdm(total=self.restarts * self.steps, desc=self.name, disable=not progress, leave=False)
        with torch.enable_grad():
            for _ in range(self.restarts):
                free = torch.randn((batch, length - 1, vocab), generator=generator).to(device)
                free.requires_grad_(True)
                opt = torch.optim.Adam([free], lr=self.lr)
                sched = torch.optim.lr_scheduler.LambdaLR(
                    opt, lambda i: 0.5 * (1.0 + math.cos(math.pi * i / self.steps)))
                for _ in range(self.steps):
                    loss = distance(torch.cat([bos, free], dim=1), create_graph=True)
                    (free.grad,) = torch.autograd.grad(loss, [free])
                    opt.step()
                    sched.step()
                    bar.update(1)
                z = torch.cat([bos, free.detach()], dim=1)
                final = float(distance(z, create_graph=False).detach())
                if not finals or final < min(finals):
                    best_tokens = z.argmax(dim=-1)
                finals.append(final)
        bar.close()
        best = min(range(len(finals)), key=finals.__getitem__)
        assert best_tokens is not None
        tokens = [[int(i) for i in row] for row in best_tokens.cpu()]
        if self.cut_at_eos:
            tokens = [_cut_at_eos(row) for row in tokens]
        return AttackResult(
            tokens=tokens,
            stats={
                "gradient_distance": finals[best],
                "best_restart": best,
                "restart_distances": finals,
                "cosine_matching": float(use_cosine),
            },
        )
