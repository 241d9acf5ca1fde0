"""Exposure of inserted text canaries in a fine-tuned language model (Carlini, Liu,
Erlingsson, Kos, Song 2019, "The Secret Sharer: Evaluating and Testing Unintended
Memorization in Neural Networks", USENIX Security).

A canary is a secret ``s[r]`` drawn uniformly from a format's space R (here
:class:`audit.data.generated.text_records.CanaryFormat`, ``"my pin is 4 8 2 9 1 3"``: |R| =
10^digits) and planted in a client's training data. The model orders every candidate of R by
its log-perplexity ``Px(x) = -log2 Pr(x)`` (the whole record ``<bos> x <eos>``, summed over
tokens, not normalised by length; the candidates of a digit format all have one length);
``rank(s[r])`` is the secret's position in that order (1 = the most likely), and

    exposure = log2 |R| - log2 rank(s[r])   (bits, in [0, log2 |R|]).

A secret ranked first has exposure ``log2 |R|``, one ranked last 0; a secret the model never
saw has a uniform rank, so its exposure is about ``log2 e = 1.44`` bits on average
(:data:`UNSEEN_MEAN_BITS`) and at least ``x`` bits with probability ``2^-x``.

Estimators (:func:`canary_exposures`, ``estimator=``):

* ``"exact"``: every candidate of R is scored and ``rank = 1 + #{r in R: Px(r) < Px(s)}``
  (ties rank the secret first among them). R is enumerated from a :class:`CanaryFormat`
  (``digits`` small enough) or given as ``space=`` (every candidate, once).
* ``"sampled"``: ``n = candidates`` candidates are drawn uniformly *with replacement* from R
  (``format_fn(np.random.default_rng(seed))``, the draws of
  :func:`audit.data.generated.text_records.canary_exposure`) and ``h`` of them are strictly
  more likely than the secret (a draw of the secret itself never counts). Then ``h`` is
  Binomial(n, (rank - 1) / |R|) exactly, so ``rank = 1 + |R| h / n`` is unbiased and the
  Clopper-Pearson interval on ``(rank - 1) / |R|`` at ``confidence`` gives an interval on the
  rank and so on the exposure that holds with probability at least ``confidence``. The point
  estimate resolves exposures up to about ``log2 n`` bits: when no draw is more likely
  (``h = 0``) it reads ``log2 |R|`` and only the interval's lower end (about ``log2(n / 3.7)``
  at 95%) is informative.
* ``"auto"`` (default): exact when |R| can be enumerated and is at most ``max_enumerate``,
  sampled otherwise.

Beside the sampled estimate, the extrapolation of Carlini et al. (section 4.3): a skew-normal
distribution fitted (``scipy.stats.skewnorm.fit``, maximum likelihood) to the sampled
candidates' log-perplexities, and ``exposure ~ -log2 F(Px(s))`` with F its CDF (clamped to
``[1 / |R|, 1]``). It reaches beyond ``log2 n`` but rests on the fitted shape: an
approximation without a stated confidence, reported as ``extrapolated`` and never as the
estimate.

Project choices: the rank is computed on the model's log-likelihood in float64 (the model
runs in float32); ties count as "not more likely"; candidates equal to the secret (as
strings) never count as more likely, whatever the batch they were scored in; the model is
put in eval mode for scoring and its mode restored after; every canary of one call is
ranked against the same candidates (one scoring pass).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from audit.core.errors import InvalidParameterError, invalid
from audit.core.validation import check_interval, check_options
from audit.data.generated.text_records import CanaryFormat
from audit.models.text_lm import ByteTokenizer

OWNER = "the canary exposure audit"
ESTIMATORS = ("auto", "exact", "sampled")
#: mean exposure (bits) of a secret with a uniform rank, for large |R|: log2 e
UNSEEN_MEAN_BITS = 1.0 / math.log(2.0)
DEFAULT_MAX_ENUMERATE = 10_000


@dataclass(frozen=True)
class Exposure:
    """One canary's exposure under one model (bits; see the module docstring)."""

    secret: str
    exposure: float  # the estimate (exact: the exposure)
    interval: tuple[float, float]  # (low, high) bits; exact: (exposure, exposure)
    rank: float  # 1 = the most likely; sampled: the unbiased estimate 1 + |R| h / n
    rank_interval: tuple[float, float]
    space_size: int  # |R|
    estimator: str  # "exact" | "sampled"
    candidates: int  # candidates scored: |R| (exact) or n draws (sampled)
    more_likely: int  # candidates strictly more likely than the secret
    confidence: float | None  # of ``interval`` (sampled); None for exact
    log_perplexity: float  # Px(secret), bits
    extrapolated: float | None = None  # skew-normal extrapolation (sampled only), bits

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["interval"] = list(self.interval)
        d["rank_interval"] = list(self.rank_interval)
        if d["extrapolated"] is not None and not math.isfinite(d["extrapolated"]):
            d["extrapolated"] = None  # no fit (fewer than 3 candidates, or all alike): JSON null
        return d


# -- closed forms --------------------------------------------------------------------------

def exposure_from_rank(rank: float, space_size: int) -> float:
    """``log2 |R| - log2 rank`` for a rank in [1, |R|] (a sampled estimate may be fractional)."""
    space_size = check_interval("space_size", OWNER, space_size, kind=int, low=1)
    rank = check_interval("rank", OWNER, rank, kind=float, low=1, high=space_size)
    return math.log2(space_size) - math.log2(rank)


def exact_rank(secret_score: float, scores: Sequence[float] | np.ndarray | torch.Tensor) -> int:
    """``1 + #{scores strictly above secret_score}`` (scores: log-likelihoods, higher = more likely)."""
    arr = np.asarray(scores.detach().cpu() if isinstance(scores, torch.Tensor) else scores, dtype=np.float64)
    if arr.ndim != 1 or not np.all(np.isfinite(arr)) or not math.isfinite(float(secret_score)):
        raise InvalidParameterError(
            f"The scores of {OWNER} must be a 1-D array of finite log-likelihoods and the "
            f"secret's score finite. Got shape {arr.shape} and secret score {secret_score!r} instead.")
    return 1 + int((arr > float(secret_score)).sum())


def sampled_rank(more_likely: int, draws: int, space_size: int, confidence: float = 0.95
                 ) -> tuple[float, tuple[float, float]]:
    """The rank estimate ``1 + |R| h / n`` and its Clopper-Pearson interval at ``confidence``
    (two-sided) from ``h`` of ``n`` uniform draws strictly more likely than the secret."""
    from scipy.stats import beta

    draws = check_interval("candidates", OWNER, draws, kind=int, low=1)
    h = check_interval("more_likely", OWNER, more_likely, kind=int, low=0, high=draws)
    size = check_interval("space_size", OWNER, space_size, kind=int, low=1)
    confidence = check_interval("confidence", OWNER, confidence, kind=float, low=0, high=1, closed="neither")
    alpha = 1.0 - confidence
    p_lo = 0.0 if h == 0 else float(beta.ppf(alpha / 2, h, draws - h + 1))
    p_hi = 1.0 if h == draws else float(beta.ppf(1 - alpha / 2, h + 1, draws - h))
    top = float(size)

    def rank(p: float) -> float:
        return min(top, 1.0 + size * p)

    return rank(h / draws), (rank(p_lo), rank(p_hi))


def enumerate_space(fmt: CanaryFormat) -> list[str]:
    """Every secret of ``fmt``, in the order of the digits read as a number (index ``i`` is
    ``fmt.prefix`` + the ``digits`` decimal digits of ``i``, spaced)."""
    if not isinstance(fmt, CanaryFormat):
        raise invalid("format_fn", OWNER, "a CanaryFormat to enumerate (or pass space=)", type(fmt).__name__)
    d = fmt.digits
    return [fmt.prefix + " ".join(f"{i:0{d}d}") for i in range(10 ** d)]


def skewnorm_exposure(secret_bits: float, candidate_bits: np.ndarray, space_size: int) -> float:
    """Carlini et al.'s extrapolation: ``-log2 F(Px(s))``, F the CDF of a skew-normal fitted to
    the candidates' log-perplexities (bits), clamped to ``[1 / |R|, 1]``."""
    from scipy.stats import skewnorm

    x = np.asarray(candidate_bits, dtype=np.float64)
    if x.size < 3 or float(np.std(x)) == 0.0:
        return float("nan")
    a, loc, scale = skewnorm.fit(x)
    logcdf = float(skewnorm.logcdf(secret_bits, a, loc, scale))
    bits = -logcdf / math.log(2.0)
    return float(min(max(bits, 0.0), math.log2(space_size)))


# -- scoring -------------------------------------------------------------------------------

def _check_tokenizer(tokenizer) -> Any:
    if tokenizer is None:
        return ByteTokenizer()
    if not (callable(getattr(tokenizer, "batch_encode", None)) and callable(getattr(tokenizer, "encode", None))):
        raise invalid("tokenizer", OWNER, "a tokenizer with encode(text) and batch_encode(texts, length) "
                      "(e.g. audit.models.text_lm.ByteTokenizer)", type(tokenizer).__name__)
    return tokenizer


def _logprob_fn(model) -> Callable[[torch.Tensor], torch.Tensor]:
    """The model's sequence log-likelihood: its ``generate_logprob``, or, for a module whose
    forward returns next-token logits (N, V, T) (the project's convention), computed here."""
    if callable(getattr(model, "generate_logprob", None)):
        return model.generate_logprob
    pad = int(getattr(model, "pad_id", ByteTokenizer.PAD))

    def logprob(ids: torch.Tensor) -> torch.Tensor:
        try:
            out = model(ids)
        except Exception as exc:  # a user's model: say what was expected
            raise InvalidParameterError(
                f"The 'model' parameter of {OWNER} must take token ids (N, T) and return next-token "
                f"logits (N, V, T) (or have generate_logprob). Calling it failed: {exc}") from exc
        if not isinstance(out, torch.Tensor) or out.dim() != 3 or out.shape[0] != ids.shape[0] \
                or out.shape[2] != ids.shape[1] or out.shape[1] <= int(ids.max()):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise InvalidParameterError(
                f"The 'model' parameter of {OWNER} must return next-token logits (N, V, T) for token "
                f"ids (N, T) = {tuple(ids.shape)} with V above every id (or have generate_logprob). "
                f"Got {shape} instead.")
        logp = torch.log_softmax(out.float(), dim=1)
        target = ids[:, 1:]
        picked = logp[:, :, :-1].gather(1, target.unsqueeze(1)).squeeze(1)
        return (picked * (target != pad)).sum(dim=1)

    return logprob


def _check_model(model) -> None:
    if not isinstance(model, nn.Module) and not callable(getattr(model, "generate_logprob", None)):
        raise invalid("model", OWNER, "a language model (a torch module returning logits (N, V, T), "
                      "or with generate_logprob, e.g. 'tiny-lm')", type(model).__name__)


def _device(model) -> torch.device:
    params = getattr(model, "parameters", None)
    if callable(params):
        for p in params():
            return p.device
    return torch.device("cpu")


@torch.no_grad()
def score_texts(model, texts: Sequence[str], tokenizer=None, *, batch_size: int = 500) -> np.ndarray:
    """Log-likelihood (nats, float64) of each text as a whole record (``<bos>`` text ``<eos>``)."""
    _check_model(model)
    tokenizer = _check_tokenizer(tokenizer)
    batch_size = check_interval("batch_size", OWNER, batch_size, kind=int, low=1)
    texts = list(texts)
    if not texts:
        return np.zeros(0)
    fn = _logprob_fn(model)
    device = _device(model)
    length = max(2, max(len(tokenizer.encode(t)) for t in texts))
    n_pos = getattr(getattr(getattr(model, "lm", None), "config", None), "n_positions", None)
    if isinstance(n_pos, int) and length > n_pos:
        raise InvalidParameterError(
            f"The secrets of {OWNER} must fit the model's {n_pos} positions; the longest "
            f"candidate encodes to {length} tokens. Use a shorter format.")
    was_training = getattr(model, "training", None)
    if isinstance(model, nn.Module):
        model.eval()
    out = []
    try:
        for start in range(0, len(texts), batch_size):
            ids, _ = tokenizer.batch_encode(texts[start:start + batch_size], length)
            s = fn(ids.to(device))
            if not isinstance(s, torch.Tensor) or tuple(s.shape) != (ids.shape[0],):
                shape = tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
                raise InvalidParameterError(
                    f"The 'model' parameter of {OWNER} must give one log-likelihood per sequence, "
                    f"shape ({ids.shape[0]},). Got {shape} instead.")
            out.append(s.detach().double().cpu())
    finally:
        if isinstance(model, nn.Module) and was_training is not None:
            model.train(was_training)
    scores = torch.cat(out).numpy()
    if not np.all(np.isfinite(scores)):
        raise InvalidParameterError(
            f"The 'model' parameter of {OWNER} gave non-finite log-likelihoods "
            f"({int((~np.isfinite(scores)).sum())} of {len(scores)}); check its weights.")
    return scores


# -- the audit -----------------------------------------------------------------------------

def _space_size(fmt, space, space_size) -> int:
    if space is not None:
        size = len(space)
    elif space_size is not None:
        size = space_size
    else:
        size = getattr(fmt, "space_size", None)
    if size is None:
        raise InvalidParameterError(
            f"The 'space_size' parameter of {OWNER} must be given (|R|, the number of possible "
            "secrets) when format_fn has no space_size attribute and no space is given. Got None instead.")
    return check_interval("space_size", OWNER, size, kind=int, low=1)


def _check_secret(secret: Any, fmt, space_index: dict[str, int] | None) -> str:
    if not isinstance(secret, str):
        raise invalid("secrets", OWNER, "a sequence of str", secret)
    if isinstance(fmt, CanaryFormat):
        body = secret[len(fmt.prefix):]
        parts = body.split(" ")
        if not secret.startswith(fmt.prefix) or len(parts) != fmt.digits or \
                not all(len(p) == 1 and p in "0123456789" for p in parts):
            raise InvalidParameterError(
                f"The secrets of {OWNER} must follow the canary format ({fmt.prefix!r} + "
                f"{fmt.digits} spaced digits). Got {secret!r} instead.")
    if space_index is not None and secret not in space_index:
        raise InvalidParameterError(
            f"The secrets of {OWNER} must be candidates of the space R; {secret!r} is not one.")
    return secret


def canary_exposures(model, tokenizer, secrets: Sequence[str], format_fn=None, *, estimator: str = "auto",
                     candidates: int = 10_000, seed: int = 0, confidence: float = 0.95,
                     space: Sequence[str] | None = None, space_size: int | None = None,
                     max_enumerate: int = DEFAULT_MAX_ENUMERATE, extrapolate: bool = True,
                     batch_size: int = 500) -> list[Exposure]:
    """The exposure of each of ``secrets`` under ``model`` (see the module docstring).

    ``format_fn`` draws a secret from a numpy Generator (a :class:`CanaryFormat`, or any
    callable with ``space_size`` or with ``space_size=`` given); ``space`` lists all of R for
    the exact rank of a format that cannot be enumerated here. ``tokenizer`` None means
    :class:`ByteTokenizer`.
    """
    _check_model(model)
    tokenizer = _check_tokenizer(tokenizer)
    estimator = check_options("estimator", OWNER, estimator, ESTIMATORS)
    candidates = check_interval("candidates", OWNER, candidates, kind=int, low=1)
    seed = check_interval("seed", OWNER, seed, kind=int, low=0)
    confidence = check_interval("confidence", OWNER, confidence, kind=float, low=0, high=1, closed="neither")
    max_enumerate = check_interval("max_enumerate", OWNER, max_enumerate, kind=int, low=1)
    if isinstance(secrets, str) or not isinstance(secrets, Sequence) or len(secrets) == 0:
        raise invalid("secrets", OWNER, "a non-empty sequence of str", secrets)
    if space is not None:
        if isinstance(space, str) or not all(isinstance(s, str) for s in space) or len(space) == 0:
            raise invalid("space", OWNER, "a non-empty sequence of str (every candidate of R)", type(space).__name__)
        if len(set(space)) != len(space):
            raise InvalidParameterError(f"The 'space' parameter of {OWNER} must list every candidate once; "
                                        f"it has {len(space) - len(set(space))} repeats.")
    if format_fn is None and space is None:
        raise InvalidParameterError(f"The 'format_fn' parameter of {OWNER} must be given (a callable "
                                    "drawing a secret from a numpy Generator) unless space is. Got None instead.")
    if format_fn is not None and not callable(format_fn):
        raise invalid("format_fn", OWNER, "a callable drawing a secret from a numpy Generator", format_fn)
    size = _space_size(format_fn, space, space_size)
    enumerable = space is not None or isinstance(format_fn, CanaryFormat)
    if estimator == "auto":
        estimator = "exact" if enumerable and size <= max_enumerate else "sampled"
    if estimator == "exact":
        if not enumerable:
            raise InvalidParameterError(
                f"The exact estimator of {OWNER} enumerates R: give a CanaryFormat or space=. "
                f"Got format_fn {type(format_fn).__name__} instead.")
        if space is None and size > 10 ** 7:
            raise InvalidParameterError(
                f"The exact estimator of {OWNER} scores all of R, and |R| = {size} is too many "
                "(at most 10^7); use estimator='sampled'.")
        if space is None and size != format_fn.space_size:
            raise InvalidParameterError(
                f"The 'space_size' parameter of {OWNER} must be the format's |R| = "
                f"{format_fn.space_size} for the exact estimator. Got {size} instead.")
    if estimator == "sampled" and format_fn is None:
        raise InvalidParameterError(f"The sampled estimator of {OWNER} draws candidates with format_fn; "
                                    "give one. Got None instead.")
    full = list(space) if space is not None else (enumerate_space(format_fn) if estimator == "exact" else None)
    index = None if full is None else {s: i for i, s in enumerate(full)}
    secrets = [_check_secret(s, format_fn if space is None else None, index) for s in secrets]
    ln2 = math.log(2.0)

    if estimator == "exact":
        scores = score_texts(model, full, tokenizer, batch_size=batch_size)
        results = []
        for s in secrets:
            own = float(scores[index[s]])
            rank = exact_rank(own, scores)
            e = exposure_from_rank(rank, size)
            results.append(Exposure(s, e, (e, e), float(rank), (float(rank), float(rank)), size, "exact",
                                    size, rank - 1, None, -own / ln2))
        return results

    rng = np.random.default_rng(seed)
    drawn = [format_fn(rng) for _ in range(candidates)]
    if not all(isinstance(d, str) for d in drawn):
        raise invalid("format_fn", OWNER, "a callable returning a str secret", format_fn)
    scores = score_texts(model, [*secrets, *drawn], tokenizer, batch_size=batch_size)
    own_scores, cand = scores[:len(secrets)], scores[len(secrets):]
    drawn_arr = np.asarray(drawn, dtype=object)
    results = []
    for s, own in zip(secrets, own_scores):
        higher = int(((cand > own) & (drawn_arr != s)).sum())
        rank, (r_lo, r_hi) = sampled_rank(higher, candidates, size, confidence)
        e = exposure_from_rank(rank, size)
        interval = (exposure_from_rank(r_hi, size), exposure_from_rank(r_lo, size))
        ext = skewnorm_exposure(-own / ln2, -cand / ln2, size) if extrapolate else None
        results.append(Exposure(s, e, interval, rank, (r_lo, r_hi), size, "sampled", candidates, higher,
                                confidence, float(-own / ln2), ext))
    return results


def exposure_metric(results: Sequence[Exposure], *, name: str = "canary_exposure_bits",
                    note: str | None = None) -> dict[str, Any]:
    """The report's metric entry (:func:`reports.schema.validate_report`'s shape) of a call's
    exposures: mean, worst (the largest) and per canary, beside an unseen secret's mean."""
    if not results or not all(isinstance(r, Exposure) for r in results):
        raise invalid("results", OWNER, "a non-empty sequence of Exposure", results)
    values = [float(r.exposure) for r in results]
    r0 = results[0]
    how = ("exact rank over all of R" if r0.estimator == "exact" else
           f"rank estimated from {r0.candidates} uniform draws, {r0.confidence:.0%} Clopper-Pearson "
           "intervals in 'exposure_intervals'")
    return {
        "name": name, "unit": "bits", "direction": "higher-leaks-more",
        "mean": sum(values) / len(values), "worst": max(values), "per_item": values,
        "baseline": {"description": "a secret the model never saw (uniform rank): log2 e",
                     "mean": UNSEEN_MEAN_BITS, "worst": UNSEEN_MEAN_BITS},
        "note": note or (f"Secret Sharer exposure log2|R| - log2 rank, |R| = {r0.space_size}; {how}."),
    }
