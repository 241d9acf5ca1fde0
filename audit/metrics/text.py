"""Scoring recovered text against the truth: token accuracy, token-set precision/recall, ROUGE.

Text attacks (TAG-style optimisation, :mod:`attacks.tag`; token-set leakage,
:mod:`attacks.token_set_leakage`) return token ids of :class:`audit.models.text_lm.ByteTokenizer`
(bytes 0-255, then the special ids ``<pad>`` 256, ``<bos>`` 257, ``<eos>`` 258). Every
function here drops the special ids (any id >= 256, and ``-100``/negative ids) first, so
padding and the known ``<bos>`` earn no credit.

Choices of this project:

* :func:`token_accuracy` is position-wise over the truth's non-special tokens, after the
  special ids are removed from *both* sequences (so a recovered sequence of the padded length
  ``T`` is compared with the record's bytes from their first byte on); a recovered special id
  in the middle therefore shifts the rest of the recovered bytes by one. Missing recovered
  positions count as wrong; recovered tokens beyond the truth's length are ignored. An empty
  truth scores 1.0 (nothing to recover).
* :func:`token_set_scores` follows :func:`attacks.token_set_leakage.token_set_metrics`:
  precision 0.0 for an empty recovered set, recall 1.0 for an empty truth set.
* :func:`rouge_scores` are the F-measures of Google's ``rouge-score`` package
  (``RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=False)``; ``rougeL`` is the
  sentence-level LCS, not ``rougeLsum``). Its default tokenizer **lowercases and replaces
  every character outside ``[a-z0-9]`` by a space** (punctuation, and also non-ASCII letters
  such as ``ü`` or ``é``, which split a word), so ROUGE compares ASCII alphanumeric words only:
  ``"Call Bob at 555-1234."`` is ``call bob at 555 1234``. A text with no such word scores 0.
* :func:`next_token_accuracy` scores a *model*, not an attack: the top-1 next-token accuracy
  over the scored positions of :class:`ByteTokenizer` targets (label not ``-100``; the
  ``<eos>`` target counts, padding does not), pooled over all tokens of all items (not a mean
  of per-item accuracies); a tie in the logits goes to the lowest id (``argmax``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch

from audit.core.errors import invalid
from audit.models.text_lm import IGNORE_INDEX, ByteTokenizer

#: ids >= this are special (``<pad>``, ``<bos>``, ``<eos>``) in :class:`ByteTokenizer`
FIRST_SPECIAL = 256
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def _ids(ids: Sequence[int] | torch.Tensor) -> list[int]:
    if isinstance(ids, torch.Tensor):
        ids = ids.reshape(-1).tolist()
    return [int(i) for i in ids]


def content_ids(ids: Sequence[int] | torch.Tensor) -> list[int]:
    """``ids`` without the special ids (>= 256) and without negative ids (``-100``)."""
    return [i for i in _ids(ids) if 0 <= i < FIRST_SPECIAL]


def token_accuracy(recovered: Sequence[int] | torch.Tensor, truth: Sequence[int] | torch.Tensor) -> float:
    """Fraction of the truth's non-special tokens recovered at their position (special ids
    dropped from both sequences first); 1.0 for a truth without content."""
    r, t = content_ids(recovered), content_ids(truth)
    if not t:
        return 1.0
    return sum(1 for a, b in zip(r, t) if a == b) / len(t)


def token_set_scores(recovered: Sequence[int] | torch.Tensor,
                     truth: Sequence[int] | torch.Tensor) -> dict[str, float]:
    """Precision and recall of the set of recovered non-special ids against the truth's set."""
    r, t = set(content_ids(recovered)), set(content_ids(truth))
    hit = len(r & t)
    return {"precision": hit / len(r) if r else 0.0, "recall": hit / len(t) if t else 1.0}


def decode_tokens(ids: Sequence[int] | torch.Tensor) -> str:
    """The text of byte-token ``ids`` (special ids skipped; invalid UTF-8 shown as U+FFFD)."""
    return ByteTokenizer().decode(content_ids(ids))


@functools.lru_cache(maxsize=1)
def _scorer():
    from rouge_score import rouge_scorer  # imports nltk: lazily

    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=False)


def rouge_scores(recovered_text: str, truth_text: str) -> dict[str, float]:
    """ROUGE-1, ROUGE-2 and ROUGE-L F-measures of ``recovered_text`` against ``truth_text``
    (``rouge-score``'s tokenizer: lowercase ASCII alphanumeric words only, see the module)."""
    for name, value in (("recovered_text", recovered_text), ("truth_text", truth_text)):
        if not isinstance(value, str):
            raise invalid(name, "rouge_scores", "a str", value)
    scores = _scorer().score(truth_text, recovered_text)  # score(target, prediction)
    return {k: float(scores[k].fmeasure) for k in ROUGE_TYPES}


def next_token_accuracy(logits: torch.Tensor, targets: torch.Tensor, *, class_dim: int = 1) -> float:
    """Top-1 accuracy of ``logits`` over the positions of ``targets`` that are not ``-100``,
    pooled over all items; ``class_dim`` is the vocabulary axis (1: :class:`CausalLM`'s
    (N, V, T) logits against (N, T) targets). NaN when no position is scored."""
    if not isinstance(logits, torch.Tensor) or not isinstance(targets, torch.Tensor):
        raise invalid("logits", "next_token_accuracy", "a torch.Tensor (with targets a torch.Tensor)",
                      type(logits).__name__)
    predicted = logits.argmax(dim=class_dim)
    if predicted.shape != targets.shape:
        raise invalid("targets", "next_token_accuracy",
                      f"a tensor of shape {tuple(predicted.shape)} (the logits without dim {class_dim})",
                      tuple(targets.shape))
    scored = targets != IGNORE_INDEX
    count = int(scored.sum())
    if count == 0:
        return float("nan")
    return int(((predicted == targets) & scored).sum()) / count
