"""LAMP (Balunović, Dimitrov, Jovanović, Vechev 2022, "LAMP: Extracting Text from Gradients with
Language Model Priors", NeurIPS): gradient matching over continuous token embeddings,
alternated with discrete moves of tokens scored by the gradient distance plus a language
model's perplexity.

The adversary optimises one embedding per position (the input the model would get for the
client's tokens) so that the update it causes matches the observed one; every few steps it
tries discrete rearrangements of each sequence (swaps and moves of tokens and spans), keeps the
one with the lowest score ``distance + lm_weight * perplexity-term``, and goes on optimising
from there. The result is each embedding's nearest token (cosine).

Threat model: the white-box honest-but-curious server of the other gradient-inversion attacks
(architecture, broadcast weights, the local schedule, the batch size and the length ``T``
known; one client's update observed).

Choices of this project (the paper fixes the scheme; it attacks BERT classifiers with a GPT-2
prior, this project a causal LM):

* **Dummy**: free embeddings ``x`` (B, T - 1, d) for positions ``1 .. T - 1`` (position 0 is
  ``<bos>``'s embedding, known structure), parametrised as ``x = s u`` with ``s`` the mean norm
  of the token-embedding table ``E = wte(arange(V))`` (embedding LoRA included), so ``lr`` is in
  units of a typical embedding; ``u ~ N(0, 1/d)`` from the generator.
* **Targets**: the causal-LM loss needs the next tokens, as unknown as the inputs; the target
  of position ``t`` is the soft token of ``x_{t+1}``: ``q = softmax(cos(x_{t+1}, E) /
  temperature)`` (``temperature`` 0.05), constant with respect to the model's parameters as the
  client's ids are.
* **Token-embedding gradient**: free embeddings have no ids, so the client's input-side part of
  the token-embedding gradient (the rows of its tokens) would be missing from the dummy's; the
  dummy enters the model as ``x + q @ E - stop_grad(q @ E)``: the value is ``x``, the
  parameter gradient reaches ``E`` through the (detached) soft token ``q``, exactly the client's
  at a one-hot ``q``.
* **Distance** (``distance``): ``"cosine"`` (the paper's LAMP_cos, ``1 - cos`` over all observed
  tensors; default) or ``"l2"`` (its LAMP_L1+L2: squared L2 + ``alpha`` L1, ``alpha`` 0.01);
  plus LAMP's embedding regulariser ``reg_weight * (mean ||x_t|| / s - 1)^2`` (``reg_weight`` 0.1;
  scaled by ``s`` so it is width-free).
* **Optimiser**: Adam at ``lr`` (0.02), ``steps`` (200), the learning rate decayed by a cosine
  schedule to 0.
* **Discrete moves**: every ``discrete_every`` steps (50; not after the last step), for each
  sequence in turn, ``candidates`` (12) random moves of its free positions, drawn from the
  generator among the paper's four kinds: swap two tokens, move one token, move a span, swap two
  spans (spans of 2-4 positions). Each candidate (and the current order) is scored by the
  distance (regulariser included) plus ``lm_weight`` (0.05) times the prior's mean negative
  log-likelihood per token of the candidate's nearest tokens; the best is kept (ties: the
  current order).
* **Prior** (``prior``): ``"model"`` (default): the attacked model itself as the language model
  (:meth:`audit.models.text_lm.CausalLM.generate_logprob` with the broadcast weights), which the
  server holds and which, in federated fine-tuning, is the pre-trained LM being tuned; nothing is
  downloaded. On a random-init model it is close to uniform and its term nearly constant, so the
  moves are decided by the gradient distance. ``"none"``: distance only.
* ``cut_at_eos``, padding and update kinds are TAG's (:mod:`attacks.tag`): positions after the
  first ``<eos>`` become ``<pad>``; padding is not modelled; a one-step model delta is divided
  by ``lr``, a multi-step one is matched by ``1 - cos`` whatever ``distance`` says (stats
  ``cosine_matching`` 1.0).

Stats: ``gradient_distance`` (the final distance), ``discrete_accepted`` (moves that replaced the
current order), ``prior_nll`` (the prior's mean NLL per token of the result; 0 with ``"none"``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.func import functional_call
from tqdm.auto import tqdm

from attacks.gradient_matching import attack_copy, cosine_distance, observed_tensors
from attacks.tag import _cut_at_eos, tag_distance
from audit.core.attack import Attack, AttackResult, AttackView
from audit.core.errors import invalid
from audit.core.updates import UpdateKind
from audit.core.validation import (
    check_bool,
    check_interval,
    check_known_keys,
    check_nonnegative,
    check_options,
    check_positive,
)
from audit.models.text_lm import ByteTokenizer

DISTANCES = ("cosine", "l2")
PRIORS = ("model", "none")
PARAMS = ("steps", "lr", "discrete_every", "candidates", "distance", "alpha", "temperature",
          "reg_weight", "lm_weight", "prior", "cut_at_eos")


class _EmbeddingInputLM(nn.Module):
    """The GPT-2 of a :class:`audit.models.text_lm.CausalLM` on free embeddings of positions
    ``1 .. T - 1`` (``<bos>`` first): returns logits (B, V, T) and the soft tokens (B, T - 1, V).
    Its parameter names are the CausalLM's (both hold the model as ``lm``)."""

    def __init__(self, lm: nn.Module, vocab: int, temperature: float) -> None:
        super().__init__()
        self.lm = lm
        self.vocab = vocab
        self.temperature = temperature

    def forward(self, free: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        table = self.lm.get_input_embeddings()(torch.arange(self.vocab, device=free.device))  # (V, d)
        q = soft_tokens(free, table.detach(), self.temperature)
        mix = q.detach() @ table
        embeds = torch.cat([table[ByteTokenizer.BOS].expand(free.shape[0], 1, -1),
                            free + mix - mix.detach()], dim=1)
        mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=free.device)
        logits = self.lm(inputs_embeds=embeds, attention_mask=mask, use_cache=False).logits
        return logits.transpose(1, 2), q


def soft_tokens(x: torch.Tensor, table: torch.Tensor, temperature: float) -> torch.Tensor:
    """``softmax(cos(x, table) / temperature)`` over the vocabulary, (..., V)."""
    sim = nn.functional.normalize(x, dim=-1) @ nn.functional.normalize(table, dim=-1).T
    return torch.softmax(sim / temperature, dim=-1)


def random_move(row: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random permutation of ``row``'s positions (dim 0) by one of LAMP's moves: swap two
    tokens, move a token, move a span, swap two adjacent-free spans (spans of 2-4 positions)."""
    n = row.shape[0]
    idx = list(range(n))

    def draw(high: int) -> int:
        return int(torch.randint(high, (1,), generator=generator))

    kind = draw(4)
    if n < 2:
        return row
    if kind == 0:  # swap two tokens
        i, j = draw(n), draw(n)
        idx[i], idx[j] = idx[j], idx[i]
    elif kind == 1:  # move one token
        i = draw(n)
        tok = idx.pop(i)
        idx.insert(draw(n), tok)
    else:
        width = min(2 + draw(3), n // 2 if kind == 3 else n - 1) if n >= 3 else 1
        width = max(width, 1)
        i = draw(n - width + 1)
        span = idx[i:i + width]
        if kind == 2:  # move a span
            rest = idx[:i] + idx[i + width:]
            k = draw(len(rest) + 1)
            idx = rest[:k] + span + rest[k:]
        else:  # swap two non-overlapping spans of equal width
            starts = [j for j in range(n - width + 1) if j + width <= i or j >= i + width]
            if starts:
                j = starts[draw(len(starts))]
                other = idx[j:j + width]
                idx[j:j + width], idx[i:i + width] = span, other
    return row[torch.tensor(idx, device=row.device)]


def discrete_step(current: torch.Tensor, score, candidates: int,
                  generator: torch.Generator) -> tuple[torch.Tensor, int]:
    """LAMP's discrete step: for each sequence ``b`` of ``current`` (B, n, d) in turn,
    ``candidates`` :func:`random_move` s of its positions, each scored by ``score`` (lower is
    better) with the other sequences as they stand; a candidate better than the best so far
    replaces it (greedy). Returns the result and the number of replacements."""
    current = current.clone()
    best = score(current)
    accepted = 0
    for b in range(current.shape[0]):
        for _ in range(candidates):
            trial = current.clone()
            trial[b] = random_move(current[b], generator)
            s = score(trial)
            if s < best:
                best, current = s, trial
                accepted += 1
    return current, accepted


class LAMP(Attack):
    """Embedding-space gradient matching alternated with prior-scored discrete token moves."""

    name = "lamp"
    family = "text-inversion"

    def __init__(self, *, steps: int = 200, lr: float = 0.02, discrete_every: int = 50,
                 candidates: int = 12, distance: str = "cosine", alpha: float = 0.01,
                 temperature: float = 0.05, reg_weight: float = 0.1, lm_weight: float = 0.05,
                 prior: str = "model", cut_at_eos: bool = True) -> None:
        self.steps = check_interval("steps", self.name, steps, kind=int, low=1)
        self.lr = check_positive("lr", self.name, lr)
        self.discrete_every = check_interval("discrete_every", self.name, discrete_every, kind=int, low=1)
        self.candidates = check_interval("candidates", self.name, candidates, kind=int, low=0)
        self.distance = check_options("distance", self.name, distance, DISTANCES)
        self.alpha = check_nonnegative("alpha", self.name, alpha)
        self.temperature = check_positive("temperature", self.name, temperature)
        self.reg_weight = check_nonnegative("reg_weight", self.name, reg_weight)
        self.lm_weight = check_nonnegative("lm_weight", self.name, lm_weight)
        self.prior = check_options("prior", self.name, prior, PRIORS)
        self.cut_at_eos = check_bool("cut_at_eos", self.name, cut_at_eos)

    @classmethod
    def from_params(cls, **params: Any) -> "LAMP":
        """Build from user parameters (see :data:`PARAMS`)."""
        check_known_keys(params, PARAMS, cls.name)
        return cls(**params)

    def params(self) -> dict[str, Any]:
        return {"steps": self.steps, "lr": self.lr, "discrete_every": self.discrete_every,
                "candidates": self.candidates, "distance": self.distance, "alpha": self.alpha,
                "temperature": self.temperature, "reg_weight": self.reg_weight,
                "lm_weight": self.lm_weight, "prior": self.prior, "cut_at_eos": self.cut_at_eos}

    def run(self, view: AttackView, *, generator: torch.Generator, device: torch.device,
            progress: bool = False) -> AttackResult:
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
        dummy_model = _EmbeddingInputLM(causal.lm, vocab, self.temperature)
        weight = training.loss_weight(device)
        names = list(params)
        leaves = {n: p.detach().requires_grad_(True) for n, p in params.items()}
        with torch.no_grad():
            table = causal.lm.get_input_embeddings()(torch.arange(vocab, device=device)).detach()
        scale = float(table.norm(dim=-1).mean())

        def objective(u: torch.Tensor, create_graph: bool) -> torch.Tensor:
            free = scale * u
            logits, q = functional_call(dummy_model, leaves, (free,))
            loss = nn.functional.cross_entropy(logits[:, :, :-1], q.transpose(1, 2), weight=weight)
            grads = torch.autograd.grad(loss, [leaves[n] for n in names], create_graph=create_graph)
            dummy = dict(zip(names, grads))
            dist = cosine_distance(dummy, observed) if use_cosine else tag_distance(dummy, observed, self.alpha)
            reg = (u.norm(dim=-1).mean() - 1.0) ** 2
            return dist + self.reg_weight * reg

        def decode(u: torch.Tensor) -> torch.Tensor:
            ids = soft_tokens(u, table, 1.0).argmax(dim=-1)
            bos = torch.full((u.shape[0], 1), ByteTokenizer.BOS, dtype=torch.long, device=device)
            return torch.cat([bos, ids], dim=1)

        def prior_nll(ids: torch.Tensor) -> torch.Tensor:
            if self.prior == "none":
                return torch.zeros(ids.shape[0], device=device)
            with torch.no_grad():
                logp = causal.generate_logprob(ids)
                count = (ids[:, 1:] != ByteTokenizer.PAD).sum(dim=1).clamp_min(1)
            return -logp / count

        def score(u: torch.Tensor) -> float:
            with torch.enable_grad():
                dist = float(objective(u, create_graph=False).detach())
            return dist + self.lm_weight * float(prior_nll(decode(u)).mean())

        width = table.shape[1]
        u = (torch.randn((batch, length - 1, width), generator=generator) / math.sqrt(width)).to(device)
        u.requires_grad_(True)
        opt = torch.optim.Adam([u], lr=self.lr)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 0.5 * (1.0 + math.cos(math.pi * i / self.steps)))
        accepted = 0
        bar = tqdm(total=self.steps, desc=self.name, disable=not progress, leave=False)
        with torch.enable_grad():
            for step in range(1, self.steps + 1):
                loss = objective(u, create_graph=True)
                (u.grad,) = torch.autograd.grad(loss, [u])
                opt.step()
                sched.step()
                bar.update(1)
                if self.candidates and step % self.discrete_every == 0 and step < self.steps:
                    with torch.no_grad():
                        moved, n = discrete_step(u.detach(), score, self.candidates, generator)
                        u.copy_(moved)  # Adam's moments stay (per position)
                    accepted += n
        bar.close()
        final_u = u.detach()
        with torch.enable_grad():
            final = float(objective(final_u, create_graph=False).detach())
        ids = decode(final_u)
        tokens = [[int(i) for i in row] for row in ids.cpu()]
        if self.cut_at_eos:
            tokens = [_cut_at_eos(row) for row in tokens]
        nll = float(prior_nll(torch.tensor(tokens, device=device)).mean())
        return AttackResult(tokens=tokens, stats={
            "gradient_distance": final,
            "discrete_accepted": float(accepted),
            "prior_nll": nll,
            "cosine_matching": float(use_cosine),
        })
