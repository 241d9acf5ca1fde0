"""A small causal language model with LoRA adapters, the model of federated LLM fine-tuning.

DR-Encoder (arXiv 2412.17053) audits and defends federated LoRA fine-tuning of large
language models: clients fine-tune LoRA adapters of a causal LM on their private text and
share only the adapters. This module builds that stack small and from configs, mirroring
:mod:`audit.models.vit_lora`: ``tiny-lm`` is a ``transformers.GPT2LMHeadModel`` behind
:class:`CausalLM`, ``tiny-lm-lora`` the same model with LoRA injected by ``peft``
(``LoraConfig(r, lora_alpha=alpha, lora_dropout=0, bias="none", init_lora_weights=True,
fan_in_fan_out=True)``).

How text flows through the project's federated code unchanged: an item's ``images`` are its
token ids (LongTensor (N, T)) and its ``labels`` the next-token targets (N, T), ``-100`` where
nothing is to be predicted (padding, the last position); :meth:`CausalLM.forward` returns the
logits transposed to (N, V, T), so ``nn.CrossEntropyLoss()(model(ids), targets)`` is the
causal LM loss (as for segmentation, with CrossEntropyLoss's default ``ignore_index=-100``).

Choices of this project:

* :class:`ByteTokenizer`: byte-level (UTF-8 bytes are ids 0-255, then ``<pad>`` 256, ``<bos>``
  257, ``<eos>`` 258; vocabulary 259), so no tokenizer file is needed, nothing is downloaded
  or trained, and every string (any language) is encoded losslessly. An item is ``<bos>`` +
  bytes + ``<eos>``, right-padded (truncated) to the data's length ``T``; its target at
  position ``t`` is the id at ``t + 1`` (``-100`` on padding and at the last position).
* Random init from a ``GPT2Config`` (seeded by torch's global RNG; ``vocab_size =
  num_classes``, ``n_positions = T``, dropout 0), or a local checkpoint directory
  (``checkpoint=``, e.g. written by :func:`save_checkpoint` after
  :func:`audit.fl.pretraining.pretrain` under :meth:`CausalLM.pretraining`); nothing is ever
  downloaded (``local_files_only=True``). With a checkpoint, the architecture comes from its
  ``config.json`` (``layers``, ``hidden`` and ``heads`` are ignored); its ``model_type`` must
  be ``gpt2``, its vocabulary the data's ``num_classes`` and its ``n_positions`` at least
  ``T``. ``channel_mean`` and ``channel_std`` (image statistics) are ignored.
* Eager attention (``attn_implementation="eager"``): the SDPA kernel transformers picks on
  CPU has no double backward (measured: "derivative for
  aten::_scaled_dot_product_flash_attention_for_cpu_backward is not implemented"), which
  gradient-inversion attacks need.
* The attention mask is ``ids != <pad>``. Padding is on the right, so with causal attention
  it changes nothing at non-padding positions (and padding positions have no target).
* GPT-2 ties the LM head to the token embedding ``wte`` (one parameter, listed once, as
  ``lm.transformer.wte.weight``, or ``...wte.base_layer.weight`` under embedding LoRA).
* ``targets`` of ``tiny-lm-lora`` is a comma-separated subset of ``attention`` (the fused
  q/k/v projection ``attn.c_attn`` of every block), ``mlp`` (``mlp.c_fc``) and ``embedding``
  (the token embedding ``transformer.wte``); default ``attention``. GPT-2's projections are
  ``transformers.pytorch_utils.Conv1D`` (weight stored (d_in, d_out)), which peft adapts with
  ``fan_in_fan_out=True``; its LoRA factors are ordinary ``nn.Linear`` weights all the same,
  A (r x d_in) and B (d_out x r) (``lora_A.<adapter>.weight``), as :func:`lora_pairs`
  reports them. For the embedding peft keeps the factors as bare parameters
  ``lora_embedding_A.<adapter>`` (r x vocab) and ``lora_embedding_B.<adapter>`` (d x r), the
  same A/B layout (the one-hot token is the input), and initialises them the other way round
  (A zero, B normal); ``tiny-lm-lora`` re-initialises them like the Linear factors (A
  Kaiming-uniform as ``nn.Linear`` would, B zero), so for every pair B is zero at init, the
  adapted model equals the base, and a defense that freezes A (FFA-LoRA) still trains every
  pair. The embedding LoRA changes the input embedding only, not the tied LM head.
* In ``tiny-lm-lora`` only the LoRA A and B matrices are trainable (the base, head included,
  is frozen); a base for the task comes from pre-training (:meth:`CausalLM.pretraining`).
* The model returns a logits tensor (not a transformers output object), like every model of
  :mod:`audit.models.registry`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from audit.core.errors import invalid
from audit.core.validation import check_interval
from audit.models.hf_checkpoint import bad_checkpoint, checkpoint_dir, load_pretrained, save_base
from audit.models.lora import base_trainable, lora_modules, lora_parameter_names

if TYPE_CHECKING:  # pragma: no cover - imported lazily (transformers takes seconds to import)
    from transformers import GPT2LMHeadModel

#: ``targets`` entries of ``tiny-lm-lora`` and the (suffixes of the) module names they stand for
TARGETS: dict[str, str] = {
    "attention": "attn.c_attn",
    "mlp": "mlp.c_fc",
    "embedding": "transformer.wte",
}

IGNORE_INDEX = -100  # nn.CrossEntropyLoss's default ignore_index


class ByteTokenizer:
    """UTF-8 bytes as ids 0-255, then ``<pad>`` (256), ``<bos>`` (257), ``<eos>`` (258)."""

    PAD = 256
    BOS = 257
    EOS = 258
    vocab_size = 259

    def encode(self, text: str, max_len: int | None = None) -> list[int]:
        """``<bos>`` + the UTF-8 bytes of ``text`` + ``<eos>``, cut to ``max_len`` ids (no padding)."""
        if not isinstance(text, str):
            raise invalid("text", "ByteTokenizer.encode", "a str", text)
        ids = [self.BOS, *text.encode("utf-8"), self.EOS]
        if max_len is not None:
            max_len = check_interval("max_len", "ByteTokenizer.encode", max_len, kind=int, low=1)
            ids = ids[:max_len]
        return ids

    def decode(self, ids) -> str:
        """The text of ``ids`` (a list or 1-D tensor); special ids (and ``-100``) skipped,
        bytes that are no valid UTF-8 (e.g. a cut character) shown as U+FFFD."""
        if isinstance(ids, torch.Tensor):
            ids = ids.reshape(-1).tolist()
        return bytes(int(i) for i in ids if 0 <= int(i) < 256).decode("utf-8", errors="replace")

    def batch_encode(self, texts: Sequence[str], length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ids, targets)``, LongTensors (N, ``length``): ids are :meth:`encode` right-padded
        with ``<pad>``; ``targets[:, t] = ids[:, t + 1]``, ``-100`` where that is ``<pad>`` and at
        the last position."""
        length = check_interval("length", "ByteTokenizer.batch_encode", length, kind=int, low=2)
        ids = torch.full((len(texts), length), self.PAD, dtype=torch.long)
        for i, text in enumerate(texts):
            row = self.encode(text, length)
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        return ids, self.targets(ids)

    def targets(self, ids: torch.Tensor) -> torch.Tensor:
        """Next-token targets of ``ids`` (N, T): shifted left by one, ``-100`` on padding."""
        out = torch.full_like(ids, IGNORE_INDEX)
        out[:, :-1] = ids[:, 1:]
        out[out == self.PAD] = IGNORE_INDEX
        return out


class CausalLM(nn.Module):
    """A transformers GPT-2 (``lm``) on token ids (N, T); returns logits (N, V, T)."""

    def __init__(self, lm: GPT2LMHeadModel, pad_id: int = ByteTokenizer.PAD) -> None:
        super().__init__()
        self.lm = lm
        self.pad_id = int(pad_id)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = (ids != self.pad_id).long()
        return self.lm(input_ids=ids, attention_mask=mask, use_cache=False).logits.transpose(1, 2)

    @property
    def has_lora(self) -> bool:
        """Whether LoRA adapters are injected."""
        return any(True for _ in lora_modules(self))

    @contextlib.contextmanager
    def pretraining(self) -> Iterator[CausalLM]:
        """Within: the base LM (embeddings and tied head included) trainable, LoRA frozen;
        flags restored after. Without LoRA everything is trainable within."""
        with base_trainable(self):
            yield self

    def generate_logprob(self, ids: torch.Tensor) -> torch.Tensor:
        """Log-likelihood (nats) of each sequence of ``ids`` (N, T): the sum over positions
        ``t >= 1`` that are not ``<pad>`` of ``log p(ids[t] | ids[:t])`` (``<eos>`` included,
        ``<bos>`` given); (N,). Differentiable; wrap in ``torch.no_grad()`` to score."""
        logp = torch.log_softmax(self(ids).float(), dim=1)  # (N, V, T)
        target = ids[:, 1:]
        picked = logp[:, :, :-1].gather(1, target.unsqueeze(1)).squeeze(1)  # (N, T-1)
        return (picked * (target != self.pad_id)).sum(dim=1)


def _length(input_shape, owner: str) -> int:
    shape = tuple(input_shape)
    if len(shape) != 1 or not isinstance(shape[0], int) or shape[0] < 2:
        raise invalid("input_shape", owner, "(T,) with T >= 2 (token ids per item)", shape)
    return shape[0]


def _load_checkpoint(checkpoint: Any, *, length: int, vocab: int, owner: str):
    from transformers import GPT2Config, GPT2LMHeadModel

    path = checkpoint_dir(checkpoint, owner=owner, model_type="gpt2", family="GPT-2")
    config = GPT2Config.from_pretrained(str(path), local_files_only=True)
    if config.vocab_size != vocab:
        raise bad_checkpoint(owner, f"a GPT-2 checkpoint with vocab_size={vocab} (the data's num_classes)",
                              str(checkpoint), f"vocab_size={config.vocab_size!r}")
    if config.n_positions < length:
        raise bad_checkpoint(owner, f"a GPT-2 checkpoint with n_positions >= {length} (the data's length)",
                              str(checkpoint), f"n_positions={config.n_positions!r}")
    return load_pretrained(GPT2LMHeadModel, path, config, owner=owner, checkpoint=checkpoint,
                           what="the GPT-2 LM")


def _build(owner: str, *, input_shape, num_classes, layers, hidden, heads, checkpoint) -> CausalLM:
    length = _length(input_shape, owner)
    num_classes = check_interval("num_classes", owner, num_classes, kind=int, low=ByteTokenizer.vocab_size)
    layers = check_interval("layers", owner, layers, kind=int, low=1, high=64)
    hidden = check_interval("hidden", owner, hidden, kind=int, low=1, high=8192)
    heads = check_interval("heads", owner, heads, kind=int, low=1, high=hidden)
    if hidden % heads:
        raise invalid("hidden", owner, f"an int divisible by heads={heads}", hidden)

    if checkpoint is None:
        from transformers import GPT2Config, GPT2LMHeadModel

        config = GPT2Config(vocab_size=num_classes, n_positions=length, n_embd=hidden, n_layer=layers,
                            n_head=heads, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                            bos_token_id=ByteTokenizer.BOS, eos_token_id=ByteTokenizer.EOS,
                            pad_token_id=ByteTokenizer.PAD, attn_implementation="eager")
        lm = GPT2LMHeadModel(config)
    else:
        lm = _load_checkpoint(checkpoint, length=length, vocab=num_classes, owner=owner)
    model = CausalLM(lm)
    model.train()  # from_pretrained returns eval mode; a fresh nn.Module trains
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def tiny_lm(*, input_shape, num_classes, channel_mean, channel_std, layers: int = 2, hidden: int = 64,
            heads: int = 4, checkpoint: str | None = None) -> CausalLM:
    """Small GPT-2 (transformers), random init or a local ``checkpoint``; all parameters trainable.

    ``input_shape`` is ``(T,)`` (token ids per item), ``num_classes`` the vocabulary (>= 259,
    :class:`ByteTokenizer`'s); ``channel_mean`` and ``channel_std`` are ignored.
    """
    return _build("tiny-lm", input_shape=input_shape, num_classes=num_classes, layers=layers, hidden=hidden,
                  heads=heads, checkpoint=checkpoint)


def _parse_targets(targets: Any, owner: str) -> list[str]:
    constraint = "a comma-separated str among " + ", ".join(repr(t) for t in TARGETS) + " without repeats"
    if not isinstance(targets, str):
        raise invalid("targets", owner, constraint, targets)
    names = [t.strip() for t in targets.split(",") if t.strip()]
    if not names or len(set(names)) != len(names) or any(t not in TARGETS for t in names):
        raise invalid("targets", owner, constraint, targets)
    return names


def _target_modules(model: CausalLM, targets: list[str]) -> list[str]:
    """Names (in ``model``) of the modules ``targets`` stand for, in module order."""
    layers = model.lm.config.n_layer
    found = []
    for t in targets:
        names = [n for n, _ in model.named_modules() if n.endswith("." + TARGETS[t])]
        want = 1 if t == "embedding" else layers
        if len(names) != want:
            raise RuntimeError(f"tiny-lm-lora: found {len(names)} modules for target {t!r} "
                               f"(suffix {TARGETS[t]!r}), expected {want}; unsupported transformers layout")
        found.extend(names)
    order = {n: i for i, (n, _) in enumerate(model.named_modules())}
    return sorted(found, key=order.__getitem__)


def _reinit_embedding_lora(model: CausalLM) -> None:
    """peft's embedding LoRA starts with A zero and B normal; make it A as ``nn.Linear``'s
    Kaiming-uniform init (``a = sqrt(5)``, as peft does for Linear A) and B zero."""
    for _, module in lora_modules(model):
        for adapter, a in getattr(module, "lora_embedding_A", {}).items():
            with torch.no_grad():
                nn.init.kaiming_uniform_(a, a=math.sqrt(5))
                module.lora_embedding_B[adapter].zero_()


def tiny_lm_lora(*, input_shape, num_classes, channel_mean, channel_std, layers: int = 2, hidden: int = 64,
                 heads: int = 4, checkpoint: str | None = None, r: int = 8, alpha: float = 16,
                 targets: str = "attention") -> CausalLM:
    """The small GPT-2 with LoRA (peft) on ``targets``; only LoRA A and B trainable."""
    owner = "tiny-lm-lora"
    names = _parse_targets(targets, owner)
    alpha = check_interval("alpha", owner, alpha, kind=float, low=0, closed="right")
    r = check_interval("r", owner, r, kind=int, low=1, high=8192)
    model = _build(owner, input_shape=input_shape, num_classes=num_classes, layers=layers, hidden=hidden,
                   heads=heads, checkpoint=checkpoint)
    modules = _target_modules(model, names)

    from peft import LoraConfig, inject_adapter_in_model

    # fan_in_fan_out: GPT-2's Conv1D stores (d_in, d_out); peft's Embedding LoRA ignores the flag
    config = LoraConfig(r=r, lora_alpha=alpha, target_modules=modules, lora_dropout=0.0, bias="none",
                        init_lora_weights=True, fan_in_fan_out=True)
    injected = inject_adapter_in_model(config, model)
    assert injected is model
    _reinit_embedding_lora(model)
    lora = lora_parameter_names(model)
    for name, p in model.named_parameters():
        p.requires_grad_(name in lora)
    return model


def save_checkpoint(model: CausalLM, path) -> Path:
    """Write the base GPT-2 of ``model`` (no LoRA) to the directory ``path`` (``save_pretrained``).

    Load it with ``checkpoint=path`` (``tiny-lm`` or ``tiny-lm-lora``). Save the base before
    injecting LoRA.
    """
    if not isinstance(model, CausalLM):
        raise invalid("model", "save_checkpoint", "a CausalLM (model 'tiny-lm')", type(model).__name__)
    return save_base(model, model.lm, path, what="a language model")
