"""DAGER (Petrov, Dimitrov, Baader, Müller, Vechev 2024, "DAGER: Exact Gradient Inversion for
Large Language Models", NeurIPS): exact recovery of a batch of token sequences from a
transformer's gradient by testing candidate inputs for membership in the span of a linear
layer's weight gradient.

The fact it rests on: a linear layer ``y = x W`` applied to the rows of ``X`` (one row per
token position of the batch) has the weight gradient ``dL/dW = X^T Delta`` (``Delta`` the
gradient of the loss at its outputs), so its column space lies in the span of the inputs
``x_t``, and equals it when ``Delta`` has full row rank (generic). When the number ``n`` of
positions is below the input width ``d``, that span is a proper subspace of ``R^d``, and an
input ``x`` "was in the batch" if and only if (generically) it lies in it. For GPT-2 the input of
the first block's fused q/k/v projection (``h.0.attn.c_attn``) at position ``t`` is
``ln_1(wte[v] + wpe[t])``: a function of the token ``v`` and the position only, so testing the
``V`` candidates at each position against that span gives the set of tokens the batch has at
position ``t``. Deeper inputs depend on the whole prefix (causal attention), so the span of a
later layer's gradient tells which prefixes the batch holds: the paper filters candidate
prefixes with the second layer, which assembles the per-position token sets into sequences.

Threat model: the white-box honest-but-curious server (architecture and broadcast weights known,
one client's update observed), as the other gradient-inversion attacks; the batch size ``B``
and the length ``T`` are known.

What this implementation does (choices of this project; the paper fixes the principle):

* **Spans** (:class:`attacks.gradient_span.Span`): the row space of a gradient matrix, from its SVD in float64 with
  the numerical rank ``r = #{s_i > rank_tol * s_max}``; ``rank_tol`` default 1e-7 for gradients
  and 1e-6 for model deltas (measured on the tiny LM: spurious singular values near 3e-8 of the
  largest for a float32 gradient, near 3e-7 for ``(theta_0 - theta_1) / lr``; true ones down to
  ~1e-6). A vector's distance to the span is its residual after projection on the ``r`` right
  singular vectors, relative to its norm; it is "in" below ``tau`` (default 1e-4; measured
  members ~1e-7 to 5e-6, non-members >= 5e-4). Several spans of one step (LoRA factors, the two
  prefix layers) are combined by the smallest distance: a span whose last true direction fell
  under the threshold misses members (measured once in 8 batches of 4), while a false candidate
  would have to lie in a proper subspace of every one.
* **Usable spans**: a span is used only when its rank is below the dimension its tested vectors
  can fill and below the matrix's other dimension (a gradient of full rank carries no
  membership information, and one capped by its own shape, e.g. a LoRA rank below ``n``, may be
  a strict part of the inputs' span). GPT-2 feeds every projection a LayerNorm output
  ``gamma (u - mean u) / std u + beta``, which lies in the hyperplane ``<x, 1/gamma> = <beta,
  1/gamma>``: a linear one when that constant is 0 (``beta = 0`` at init), so the space is
  ``d - 1`` dimensional there (:func:`input_space`).
* **Additive closure at init** (measured): with ``ln_1``'s ``beta = 0`` the layer-1 inputs are
  ``wte(v) + wpe(t)`` up to a per-vector scale, so their span is closed under ``(t, v), (t, v'),
  (t', v) -> (t', v')``: at batch 4 the layer-1 sets held ~14-18 tokens per position instead of
  <= 4 (one at batch 1, where no position holds two tokens). The prefix spans remove them.
* **Layer 1, full fine-tuning**: ``h.0.attn.c_attn.weight`` (transformers ``Conv1D``, stored
  ``(d_in, d_out)``): its transpose's row space is tested with ``ln_1(wte(v) + wpe(t))`` for
  every vocabulary id ``v`` (specials included) and position ``t``; the table ``wte(arange(V))``
  includes an embedding LoRA when there is one.
* **LoRA** (``tiny-lm-lora`` with attention targets): a LoRA layer computes ``W x + s B A x``,
  so ``dL/dA = s B^T Delta^T X`` (rows in the inputs' span: the paper's test, usable once
  ``B != 0``; this project's LoRA starts with ``B = 0``, where ``dL/dA = 0``) and ``dL/dB = s
  Delta^T (X A^T)`` (rows in the span of the projected inputs ``A x``; usable from round 0).
  Both are tested, each when usable (``x`` is tested with ``A x`` against ``dL/dB``); a
  candidate must pass every usable span. Both need the LoRA rank above the number of
  positions ``n`` (the span of ``dL/dB`` lives in ``R^{r_lora}``), so the default ``r = 8``
  only admits ``B (T - 1) < 8``; use a larger ``r`` (e.g. ``r=64``).
* **Which positions are visible**: a position takes part in the gradient only when its output
  reaches a loss term. With right padding and ``-100`` targets on padding, the last non-pad
  position ``L_b - 1`` of a sequence (its ``<eos>``, or the cut last byte at ``T - 1``) has no
  target and no later position with one, so its input has zero gradient at every layer:
  positions ``0 .. L_b - 2`` are visible, the rest is not. A sequence ends where no
  extension of its prefix is in the prefix span; its last token is the *target* of its last
  visible position, recovered next; every later position is ``<pad>``.
* **Assembly for B > 1**: at every position the candidate prefixes are the live prefixes times
  the tokens found at that position; the prefix spans are those of block 0's MLP input
  (``h.0.mlp.c_fc``: ``ln_2`` after block 0's attention, which depends on the prefix) and
  block 1's q/k/v input (``h.1.attn.c_attn``, the paper's second layer), whichever the update
  carries (full weight or LoRA factors) and are usable; a prefix passes when it is in every
  one. Inputs are read with forward hooks on a copy of the model run on the prefixes. At most
  ``B`` prefixes stay live (smallest distance first). At batch 1 the token sets have one
  member, so no prefix span is needed (used when present).
* **Last tokens** (the part the span cannot see): with the visible prefixes known, the
  client's loss is affine in the one-hot targets ``e_{y_b}`` of the sequences' last visible
  positions (the inputs at invisible positions do not matter), so ``N (g_obs - g_known) =
  -sum_b J_b^T e_{y_b}``, ``J_b`` the Jacobian of those logits, ``N`` the number of target
  positions and ``g_known`` the gradient of the rest of the loss (known targets and the
  log-sum-exp of the unknown ones). It is solved over the vocabulary (``<pad>`` excluded) by
  least squares then a discrete search, on the final LayerNorm and the last block's observed
  tensors (smallest first, up to 8192 numbers; tensors with a zero update skipped).
* **Batches with equal prefixes**: sequences that agree on all their visible positions
  collapse to one; when fewer than ``B`` sequences come out, the missing ones are chosen
  greedily among the recovered visible prefixes and their prefixes, by the residual of the
  last-token solve (stats ``filled_sequences``).
* **Updates**: a gradient is used as is; a one-step SGD model delta is turned back into the
  gradient (``delta / lr - weight_decay * theta``); a multi-step SGD delta is used as
  ``delta / (lr * steps)``, an approximation (the inputs' span drifts as the embedding and
  ``ln_1`` train; stats ``approximate_gradient`` 1.0). Adam deltas, user losses and class
  weights are rejected with a clear error.
* **When n >= d**: with ``B (T - 1) >= d - 1`` visible positions (no padding) the gradients
  have full rank and every candidate is in the span; the attack then raises
  :class:`~audit.core.errors.InvalidParameterError` naming the batch, the length, the width and
  the ranks instead of returning noise. At init the layer-1 span can stay rank-deficient (the
  additive closure above: rank ~ distinct tokens + positions), so it is the prefix spans that
  fill up and raise (e.g. ``B = 4``, ``T = 20`` on the default width 64: ranks 63 of 63).

Stats: ``layer1_rank`` (and its width ``layer1_dim``), ``tokens_per_position`` (mean size of
the layer-1 token sets over visible positions), ``sequences_found`` (before filling),
``last_token_residual`` (relative residual of the last-token solve: ~0 when exact) and
``gradient_relative_error`` of the recovered batch's re-simulated update.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from attacks.gradient_matching import attack_copy, observed_tensors
from attacks.gradient_span import Span, layer_spans, span_distance
from audit.core.attack import Attack, AttackResult, AttackView
from audit.core.errors import InvalidParameterError, invalid
from audit.core.updates import CROSS_ENTROPY, LocalTraining, UpdateKind
from audit.core.validation import check_interval, check_known_keys
from audit.models.text_lm import IGNORE_INDEX, ByteTokenizer

PARAMS = ("rank_tol", "tau", "prefix_tau")
LAYER1 = "lm.transformer.h.0.attn.c_attn"
PREFIX_LAYERS = ("lm.transformer.h.0.mlp.c_fc", "lm.transformer.h.1.attn.c_attn")
#: default numerical-rank thresholds (relative to the largest singular value): float32 gradients
#: put the spurious singular values near 3e-8, a model delta (theta_0 - theta_1 in float32,
#: divided by lr) near 3e-7; true ones reach ~1e-6 (measured, tiny-lm)
RANK_TOL, RANK_TOL_DELTA = 1e-7, 1e-6
JACOBIAN_CAP = 8192  # parameters in the last-token solve


def _layer1_inputs(lm: nn.Module, length: int, vocab: int, device: torch.device) -> torch.Tensor:
    """(T, V, d): the input of block 0's q/k/v projection for token ``v`` at position ``t``
    (``ln_1(wte(v) + wpe(t))``; GPT-2's embedding dropout is off in the attack's copy)."""
    tr = lm.transformer
    table = tr.wte(torch.arange(vocab, device=device))
    pos = tr.wpe(torch.arange(length, device=device))
    return tr.h[0].ln_1(table.unsqueeze(0) + pos.unsqueeze(1))


def _prefix_inputs(model: nn.Module, modules: Sequence[str], prefixes: torch.Tensor) -> dict[str, torch.Tensor]:
    """The inputs of ``modules`` at the last position of each prefix (K, t + 1), by hooks."""
    found: dict[str, torch.Tensor] = {}
    named = dict(model.named_modules())
    hooks = [named[m].register_forward_hook(
        lambda mod, args, out, m=m: found.__setitem__(m, args[0][:, -1].detach()))
        for m in modules]
    try:
        mask = torch.ones_like(prefixes)
        model.lm(input_ids=prefixes, attention_mask=mask, use_cache=False)
    finally:
        for h in hooks:
            h.remove()
    return found


def observed_gradient(view: AttackView, params: Mapping[str, torch.Tensor],
                      device: torch.device, owner: str) -> tuple[dict[str, torch.Tensor], bool]:
    """The observed update as a gradient (see the module notes) and whether it is approximate."""
    training: LocalTraining = view.local_training
    if training.loss != CROSS_ENTROPY or training.class_weights is not None:
        raise InvalidParameterError(
            f"The local training of {owner} must use the unweighted cross-entropy (the causal-LM "
            f"loss the attack re-simulates). Got loss={training.loss!r}, class_weights="
            f"{training.class_weights!r} instead.")
    observed = observed_tensors(view.target.tensors, params, device)
    if training.kind is UpdateKind.GRADIENT:
        return observed, False
    if training.optimizer != "sgd":
        raise InvalidParameterError(
            f"The local training of {owner} must use SGD when the update is a model delta (an "
            f"Adam step rescales each coordinate, which breaks the span). Got "
            f"optimizer={training.optimizer!r} instead.")
    steps = training.steps if training.batch_size is None else None
    if steps == 1:
        return {n: t / training.lr - training.weight_decay * params[n] for n, t in observed.items()}, False
    scale = training.lr * (steps or training.epochs)
    return {n: t / scale for n, t in observed.items()}, True


class _LastTokens:
    """The affine last-token problem of a set of visible prefixes (module notes)."""

    def __init__(self, model: nn.Module, params: Mapping[str, torch.Tensor],
                 observed: Mapping[str, torch.Tensor], length: int, vocab: int, device: torch.device) -> None:
        self.model, self.length, self.vocab, self.device = model, length, vocab, device
        self.leaves = {n: p.detach().requires_grad_(True) for n, p in params.items()}
        self.observed = observed
        self.head = model.lm.get_output_embeddings()
        every = dict(model.named_parameters())
        tied = {n for n in params if every[n] is self.head.weight}  # its gradient has a head term
        layers = model.lm.config.n_layer
        order = [n for n in params if n.startswith("lm.transformer.ln_f.")]
        order += sorted((n for n in params if n.startswith(f"lm.transformer.h.{layers - 1}.")),
                        key=lambda n: params[n].numel())
        order += [n for n in sorted(params, key=lambda n: params[n].numel()) if n not in order]
        subset, total = [], 0
        for n in order:
            if n in tied or not bool(observed[n].any()):  # e.g. LoRA A while B = 0: no signal
                continue
            if subset and total + params[n].numel() > JACOBIAN_CAP:
                continue
            subset.append(n)
            total += params[n].numel()
        if not subset:
            raise InvalidParameterError(
                "Attack 'dager' solves the last tokens from the update of parameters behind the LM "
                f"head; the update has only {sorted(params)}.")
        self.subset = subset
        self.candidates = torch.tensor([v for v in range(vocab) if v != ByteTokenizer.PAD], device=device)

    def batch(self, prefixes: Sequence[Sequence[int]], last: Sequence[int]) -> torch.Tensor:
        ids = torch.full((len(prefixes), self.length), ByteTokenizer.PAD, dtype=torch.long, device=self.device)
        for b, (p, y) in enumerate(zip(prefixes, last)):
            ids[b, : len(p)] = torch.tensor(list(p), dtype=torch.long, device=self.device)
            ids[b, len(p)] = int(y)
        return ids

    def solve(self, prefixes: Sequence[Sequence[int]]) -> tuple[list[int], float]:
        """The last tokens of ``prefixes`` (each 1 .. T - 1 visible ids) and the relative residual.

        The unknown part of the update is ``sum_b G_b^T head[y_b]`` (``G_b`` the Jacobian of the
        final hidden state at the sequence's last visible position, ``head`` the LM head), so
        least squares in the ``B d`` unknowns ``head[y_b]`` gives each target's head row, then its
        nearest row; a discrete search (:func:`_assign`) polishes the choice."""
        ids = self.batch(prefixes, [ByteTokenizer.EOS] * len(prefixes))  # placeholder: invisible
        targets = ByteTokenizer().targets(ids)
        count = int((targets != IGNORE_INDEX).sum())
        rows = torch.arange(len(prefixes), device=self.device)
        cols = torch.tensor([len(p) - 1 for p in prefixes], device=self.device)
        known = targets.clone()
        known[rows, cols] = IGNORE_INDEX
        seen: list[torch.Tensor] = []
        hook = self.head.register_forward_hook(lambda mod, args, out: seen.append(args[0]))
        try:
            with torch.enable_grad():
                logits = functional_call(self.model, self.leaves, (ids,))  # (B, V, T)
                z = logits[rows, :, cols]  # (B, V)
                hidden = seen[-1][rows, cols]  # (B, d): the LM head's input
                fixed = nn.functional.cross_entropy(logits, known, reduction="sum") + torch.logsumexp(z, 1).sum()
                leaves = [self.leaves[n] for n in self.subset]
                g_fixed = torch.autograd.grad(fixed / count, leaves, retain_graph=True)
                want = torch.cat([(count * (g - self.observed[n])).reshape(-1).double()
                                  for n, g in zip(self.subset, g_fixed)])  # = sum_b G_b^T head[y_b]
                width = hidden.shape[1]
                eye = torch.eye(width, device=self.device, dtype=hidden.dtype)
                jacobians = []
                for b in range(len(prefixes)):
                    parts = torch.autograd.grad(hidden[b], leaves, grad_outputs=eye, is_grads_batched=True,
                                                retain_graph=True)
                    jacobians.append(torch.cat([g.reshape(width, -1) for g in parts], 1).double())
        finally:
            hook.remove()
        head = self.head.weight.detach().double()[self.candidates]  # (V', d)
        stacked = torch.cat(jacobians, 0)  # (B d, P)
        rows_hat = torch.linalg.lstsq(stacked.T, want.unsqueeze(1)).solution.reshape(len(prefixes), width)
        init = [int(torch.cdist(r.unsqueeze(0), head).argmin()) for r in rows_hat]
        jac = [head @ g for g in jacobians]  # (V', P): the update of each candidate target
        chosen = _assign(jac, want, init=init)
        fit = sum(jac[b][chosen[b]] for b in range(len(prefixes)))
        residual = float((want - fit).norm() / want.norm().clamp_min(1e-300))
        return [int(self.candidates[c]) for c in chosen], residual

    def gradient_error(self, ids: torch.Tensor) -> float:
        """Relative L2 error of the re-simulated gradient of ``ids`` against the observed one."""
        targets = ByteTokenizer().targets(ids)
        with torch.enable_grad():
            logits = functional_call(self.model, self.leaves, (ids,))
            loss = nn.functional.cross_entropy(logits, targets)
            grads = torch.autograd.grad(loss, list(self.leaves.values()))
        err = sum(float(((g - self.observed[n]) ** 2).sum()) for n, g in zip(self.leaves, grads))
        ref = sum(float((self.observed[n] ** 2).sum()) for n in self.leaves)
        return (err / max(ref, 1e-300)) ** 0.5


def _assign(jac: Sequence[torch.Tensor], want: torch.Tensor, *, init: Sequence[int] | None = None,
            sweeps: int = 10) -> list[int]:
    """One row per ``jac[b]`` (K, P) whose sum approximates ``want`` (P,) in L2: from ``init``
    (else matching pursuit), coordinate descent and pairwise swaps."""
    batch = len(jac)
    sq = [(j * j).sum(1) for j in jac]
    chosen: list[int | None] = [None] * batch if init is None else list(init)
    residual = want.clone()
    if init is not None:
        residual = want - sum(jac[b][k] for b, k in enumerate(init))
    for _ in range(batch if init is None else 0):
        best = None
        for b in range(batch):
            if chosen[b] is not None:
                continue
            cost = sq[b] - 2 * (jac[b] @ residual)
            k = int(cost.argmin())
            if best is None or float(cost[k]) < best[0]:
                best = (float(cost[k]), b, k)
        _, b, k = best
        chosen[b] = k
        residual = residual - jac[b][k]
    for _ in range(sweeps):
        changed = False
        for b in range(batch):
            rest = residual + jac[b][chosen[b]]
            k = int((sq[b] - 2 * (jac[b] @ rest)).argmin())
            if k != chosen[b]:
                changed = True
                chosen[b] = k
            residual = rest - jac[b][k]
        for b in range(batch):  # swaps: one coordinate at a time cannot exchange two tokens
            for c in range(b + 1, batch):
                kb, kc = chosen[b], chosen[c]
                swapped = residual + jac[b][kb] + jac[c][kc] - jac[b][kc] - jac[c][kb]
                if float(swapped.norm()) < float(residual.norm()) * (1 - 1e-9):
                    chosen[b], chosen[c] = kc, kb
                    residual = swapped
                    changed = True
        if not changed:
            break
    return [int(c) for c in chosen]


class DAGER(Attack):
    """Exact batch recovery from the span of GPT-2's first-layer (and second-layer) weight gradients."""

    name = "dager"
    family = "text-inversion"

    def __init__(self, *, rank_tol: float | None = None, tau: float = 1e-4, prefix_tau: float | None = None) -> None:
        self.rank_tol = None if rank_tol is None else check_interval(
            "rank_tol", self.name, rank_tol, low=0, high=1, closed="neither")
        self.tau = check_interval("tau", self.name, tau, low=0, high=1, closed="neither")
        self.prefix_tau = None if prefix_tau is None else check_interval(
            "prefix_tau", self.name, prefix_tau, low=0, high=1, closed="neither")

    @classmethod
    def from_params(cls, **params: Any) -> "DAGER":
        """Build from user parameters (rank_tol, tau, prefix_tau)."""
        check_known_keys(params, PARAMS, cls.name)
        return cls(**params)

    def params(self) -> dict[str, Any]:
        return {"rank_tol": self.rank_tol, "tau": self.tau, "prefix_tau": self.prefix_tau}

    def _too_many(self, spans: Sequence[Span], batch: int, length: int, width: int,
                  which: str, approximate: bool) -> InvalidParameterError:
        ranks = ", ".join(f"{s.name}: rank {s.rank} of {s.space}" for s in spans) or "none in the update"
        steps = (" The update is a multi-step model delta, whose span mixes the inputs of every "
                 "local step (raise rank_tol and tau to try anyway, or attack FedSGD gradients)."
                 if approximate else "")
        return InvalidParameterError(
            f"Attack {self.name!r} needs a rank-deficient {which} gradient: fewer visible token "
            f"positions than the width its inputs span (batch x (length - 1) < hidden size "
            f"{width}, or < the LoRA rank for LoRA factors); got batch {batch} x length {length} "
            f"and {ranks}. Lower the batch or the length, or widen the model.{steps}")

    def run(self, view: AttackView, *, generator: torch.Generator, device: torch.device,
            progress: bool = False) -> AttackResult:
        owner = f"attack {self.name!r}"
        shape = tuple(view.input_shape)
        if len(shape) != 1 or not isinstance(shape[0], int) or shape[0] < 2:
            raise invalid("input_shape", owner, "(T,) with T >= 2 (token ids of a text dataset)", shape)
        lm = getattr(view.model, "lm", None)
        if not isinstance(lm, nn.Module) or not hasattr(getattr(lm, "transformer", None), "wpe"):
            raise invalid("model", owner, "a GPT-2 causal language model ('tiny-lm' or 'tiny-lm-lora')",
                          type(view.model).__name__)
        check_interval("num_classes", owner, view.num_classes, kind=int, low=ByteTokenizer.vocab_size)
        length, vocab, batch = shape[0], int(view.num_classes), int(view.batch_size)
        prefix_tau = self.tau if self.prefix_tau is None else self.prefix_tau

        model, params = attack_copy(view.model, device, view.target.tensors, view.local_training)
        observed, approximate = observed_gradient(view, params, device, owner)
        rank_tol = self.rank_tol
        if rank_tol is None:
            rank_tol = RANK_TOL_DELTA if view.local_training.kind is UpdateKind.MODEL_DELTA else RANK_TOL
        width = model.lm.config.n_embd
        with torch.no_grad():
            spans1 = layer_spans(model, LAYER1, observed, rank_tol)
            if not spans1:
                raise InvalidParameterError(
                    f"Attack {self.name!r} reads the gradient of the first block's q/k/v projection "
                    f"({LAYER1}: full fine-tuning, or LoRA with targets including 'attention'); the "
                    f"observation has none. Got update entries {sorted(observed)[:4]} instead.")
            if not any(s.usable for s in spans1):
                raise self._too_many(spans1, batch, length, width, "first-layer", approximate)
            modules = dict(model.named_modules())
            prefix_all = [s for m in PREFIX_LAYERS if m in modules for s in layer_spans(model, m, observed, rank_tol)]
            prefix_spans = [s for s in prefix_all if s.usable]
            prefix_modules = sorted({s.module for s in prefix_spans})

            x1 = _layer1_inputs(model.lm, length, vocab, device)  # (T, V, d)
            d1 = torch.stack([span_distance(spans1, x1[t]) for t in range(length)])  # (T, V)
            sets: list[list[int]] = []
            live: list[list[int]] = [[]]
            finished: list[list[int]] = []
            for t in range(length - 1):  # position T - 1 never has a target: never visible
                tokens = torch.nonzero(d1[t] < self.tau).flatten().tolist()
                cands = [p + [v] for p in live for v in tokens]
                if not cands:
                    break
                sets.append(tokens)
                if prefix_spans:
                    ids = torch.tensor(cands, dtype=torch.long, device=device)
                    inputs = _prefix_inputs(model, prefix_modules, ids)
                    dist = torch.stack([s.distance(inputs[s.module]) for s in prefix_spans]).amin(dim=0)
                    keep = [i for i in dist.argsort().tolist() if float(dist[i]) < prefix_tau][:batch]
                elif len(cands) > 1:
                    raise self._too_many(prefix_all, batch, length, width, "prefix (block 0 MLP, block 1 attention)",
                                         approximate)
                else:
                    keep = [0]
                extended = [cands[i] for i in sorted(keep)]
                finished += [p for p in live if p and not any(e[:-1] == p for e in extended)]
                live = extended
                if not live:
                    break
            finished += live
            finished = [p for p in finished if p][:batch]

        solver = _LastTokens(model, params, observed, length, vocab, device)
        found = len(finished)
        if not finished:
            raise InvalidParameterError(
                f"Attack {self.name!r} found no token of the first position in the first-layer span "
                f"(tau={self.tau}); the update may not be a causal-LM gradient of this model.")
        while len(finished) < batch:  # sequences that share all visible positions with another
            pool = sorted({tuple(p[:k]) for p in finished for k in range(1, len(p) + 1)})
            scored = [(solver.solve([*finished, list(c)])[1], list(c)) for c in pool]
            finished.append(min(scored)[1])
        last, residual = solver.solve(finished)
        ids = solver.batch(finished, last)
        tokens = [[int(i) for i in row] for row in ids.cpu()]
        return AttackResult(tokens=tokens, stats={
            "layer1_rank": float(max(s.rank for s in spans1 if s.usable)),
            "layer1_dim": float(max(s.space for s in spans1 if s.usable)),
            "prefix_spans": float(len(prefix_spans)),
            "tokens_per_position": float(sum(map(len, sets)) / max(len(sets), 1)),
            "sequences_found": float(found),
            "filled_sequences": float(batch - found),
            "last_token_residual": residual,
            "gradient_relative_error": solver.gradient_error(ids),
            "approximate_gradient": float(approximate),
        })
