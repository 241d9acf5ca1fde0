"""Generated per-client customer records with canary secrets (a federated LLM-tuning stand-in).

Federated LoRA fine-tuning of language models (DR-Encoder, arXiv 2412.17053) is audited on
clients' private text. Real customer records cannot ship with this project, so
:func:`records` *generates* short instruction-like records full of personal data, and plants
canaries to measure memorisation (Carlini, Liu, Erlingsson, Kos, Song 2019: "The Secret
Sharer: Evaluating and Testing Unintended Memorization in Neural Networks"). Everything below
is the project's own choice:

* **Texts** come from Faker (names, e-mails, phone numbers, IBANs, addresses, reference
  numbers, amounts) inside :data:`TEMPLATES`, e.g. ``"Refund Norma Fisher
  (tammy76@example.com)."``; the personal values of each item are
  recorded (``meta["items"]["fields"]``). Templates are short (most records fit the default
  64 byte tokens; longer ones, mostly addresses, are cut and lose their ``<eos>``).
* **Clients** (``groups``) are non-IID in two ways: client ``k`` writes in its own Faker
  locale (:data:`LOCALES`, cycled; names, phone and IBAN formats and addresses differ,
  e.g. German umlauts) and draws its records from two templates: ``k mod 6`` for
  ``round(3/4 n_k)`` of its ``n_k`` records (a seeded random choice), ``(k + 1) mod 6`` for
  the rest. Items are assigned to clients evenly in a seeded random order (client sizes
  differ by at most one).
* **Determinism**: ``default_rng(seed)`` draws the client assignment and the templates;
  item ``i`` uses ``Faker(<its client's locale>).seed_instance(seed * 1_000_003 + i)``;
  canaries use ``default_rng([seed, 1])``. So a seed gives the same records whatever the
  canary settings (canary items are appended after the ``num_items`` records).
* **Canaries**: ``canaries`` distinct secrets of :class:`CanaryFormat` (``"my pin is 4 8 2 9
  1 3"``: six random digits, |R| = 10^6 candidates), secret ``j`` planted as a whole record
  ``canary_repeats`` times in the data of one client (a seeded permutation of the clients,
  cycled, so distinct clients while ``canaries <= clients``). Recorded in
  ``meta["canaries"]`` (secret, client, repeats) and per item in ``meta["items"]["canary"]``
  (the canary's index, -1 for ordinary records).
* **Tokens**: :class:`audit.models.text_lm.ByteTokenizer`; ``images`` are the ids (N, T),
  ``labels`` the next-token targets (N, T) with -100 where nothing is predicted
  (``task="language-modeling"``, ``modality="text"``, ``num_classes=259``).

:func:`canary_exposure` is the Secret Sharer's exposure estimated by sampling (see there).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from audit.core.errors import InvalidParameterError, invalid
from audit.models.text_lm import ByteTokenizer
from audit.core.validation import check_interval

if TYPE_CHECKING:
    from audit.data.dataset import ImageDataset

_OWNER = "dataset 'records'"
_ITEM_STRIDE = 1_000_003  # > the largest num_items, so (seed, item) -> Faker seed is one-to-one
PRIMARY_SHARE = 0.75

LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pl_PL")


def _address(fake) -> str:
    return ", ".join(part.strip() for part in fake.address().splitlines() if part.strip())


def _account(fake) -> tuple[str, dict[str, str]]:
    f = {"name": fake.name(), "iban": fake.iban()}
    return f"{f['name']}: new account {f['iban']}.", f


def _contact(fake) -> tuple[str, dict[str, str]]:
    f = {"name": fake.name(), "phone": fake.phone_number(), "reference": fake.numerify("#####")}
    return f"Call {f['name']} at {f['phone']}, order {f['reference']}.", f


def _email(fake) -> tuple[str, dict[str, str]]:
    f = {"name": fake.name(), "email": fake.email()}
    return f"Refund {f['name']} ({f['email']}).", f


def _shipping(fake) -> tuple[str, dict[str, str]]:
    f = {"reference": fake.numerify("#####"), "address": _address(fake)}
    return f"Ship {f['reference']} to {f['address']}.", f


def _reset(fake) -> tuple[str, dict[str, str]]:
    f = {"email": fake.email(), "phone": fake.phone_number()}
    return f"Reset {f['email']}, phone {f['phone']}.", f


def _transfer(fake) -> tuple[str, dict[str, str]]:
    f = {"amount": f"{fake.random_int(5, 4999)}.{fake.random_int(0, 99):02d}", "iban": fake.iban(),
         "name": fake.first_name()}
    return f"Pay {f['amount']} to {f['iban']}, {f['name']}.", f


#: template name -> generator of (text, personal fields) from a seeded Faker
TEMPLATES: dict[str, Callable[[Any], tuple[str, dict[str, str]]]] = {
    "account": _account,
    "contact": _contact,
    "email": _email,
    "shipping": _shipping,
    "reset": _reset,
    "transfer": _transfer,
}


@dataclass(frozen=True)
class CanaryFormat:
    """Secrets ``prefix`` + ``digits`` random decimal digits separated by spaces; called with a
    numpy Generator it draws one (uniformly among :attr:`space_size`)."""

    prefix: str = "my pin is "
    digits: int = 6

    def __call__(self, rng: np.random.Generator) -> str:
        return self.prefix + " ".join(str(int(d)) for d in rng.integers(0, 10, self.digits))

    @property
    def space_size(self) -> int:
        """|R|: the number of distinct secrets."""
        return 10 ** self.digits


def client_templates(client: int) -> tuple[str, str]:
    """(primary, secondary) template of ``client``."""
    names = list(TEMPLATES)
    return names[client % len(names)], names[(client + 1) % len(names)]


def records(*, num_items: int = 512, length: int = 64, seed: int = 0, clients: int = 8, canaries: int = 4,
            canary_repeats: int = 4) -> "ImageDataset":
    """Generated customer records of ``clients`` non-IID clients (``groups``), byte tokens of
    ``length``, plus ``canaries`` secrets each planted ``canary_repeats`` times in one client.

    ``len`` is ``num_items + canaries * canary_repeats`` (canary items last); see the module
    docstring for the choices, ``meta`` for the raw texts and the canaries.
    """
    from faker import Faker

    from audit.data.dataset import from_texts

    num_items = check_interval("num_items", _OWNER, num_items, kind=int, low=1, high=_ITEM_STRIDE - 1)
    length = check_interval("length", _OWNER, length, kind=int, low=8, high=4096)
    seed = check_interval("seed", _OWNER, seed, kind=int, low=0, high=2**32 - 1)
    clients = check_interval("clients", _OWNER, clients, kind=int, low=1, high=num_items)
    canaries = check_interval("canaries", _OWNER, canaries, kind=int, low=0, high=10_000)
    canary_repeats = check_interval("canary_repeats", _OWNER, canary_repeats, kind=int, low=1, high=10_000)

    rng = np.random.default_rng(seed)
    client_of = rng.permutation(np.arange(num_items) % clients)
    primary = np.zeros(num_items, dtype=bool)
    for k in range(clients):
        own = rng.permutation(np.flatnonzero(client_of == k))
        primary[own[: int(round(PRIMARY_SHARE * len(own)))]] = True
    fakers: dict[str, Any] = {}
    texts, templates, fields = [], [], []
    for i in range(num_items):
        k = int(client_of[i])
        locale = LOCALES[k % len(LOCALES)]
        if locale not in fakers:
            fakers[locale] = Faker(locale)
        fake = fakers[locale]
        fake.seed_instance(seed * _ITEM_STRIDE + i)
        template = client_templates(k)[0 if primary[i] else 1]
        text, f = TEMPLATES[template](fake)
        texts.append(text)
        templates.append(template)
        fields.append(f)

    fmt = CanaryFormat()
    crng = np.random.default_rng([seed, 1])
    order = crng.permutation(clients)
    secrets: list[str] = []
    while len(secrets) < canaries:
        s = fmt(crng)
        if s not in secrets:
            secrets.append(s)
    planted = tuple({"secret": s, "client": int(order[j % clients]), "repeats": canary_repeats}
                    for j, s in enumerate(secrets))
    groups = client_of.tolist()
    canary_of = [-1] * num_items
    for j, c in enumerate(planted):
        texts += [c["secret"]] * canary_repeats
        templates += ["canary"] * canary_repeats
        fields += [{"secret": c["secret"]} for _ in range(canary_repeats)]
        groups += [c["client"]] * canary_repeats
        canary_of += [j] * canary_repeats

    meta = {
        "tokenizer": "byte",
        "locales": tuple(LOCALES[k % len(LOCALES)] for k in range(clients)),
        "client_templates": tuple(client_templates(k) for k in range(clients)),
        "canary_format": fmt,
        "canaries": planted,
        "items": {"texts": tuple(texts), "templates": tuple(templates), "fields": tuple(fields),
                  "canary": tuple(canary_of)},
    }
    return from_texts(
        "records", texts, length,
        f"generated customer records (Faker), {clients} clients, {canaries} canaries x {canary_repeats}, "
        f"seed {seed}", groups=torch.as_tensor(groups, dtype=torch.long), meta=meta)


@torch.no_grad()
def _scores(model, tokenizer: ByteTokenizer, texts: list[str], batch_size: int) -> torch.Tensor:
    device = next(model.parameters()).device
    length = max(len(tokenizer.encode(t)) for t in texts)
    out = []
    for start in range(0, len(texts), batch_size):
        ids, _ = tokenizer.batch_encode(texts[start:start + batch_size], max(length, 2))
        out.append(model.generate_logprob(ids.to(device)).double().cpu())
    return torch.cat(out)


def canary_exposure(model, tokenizer: ByteTokenizer, secret: str, format_fn: Callable[[np.random.Generator], str],
                    candidates: int = 1000, seed: int = 0, *, space_size: int | None = None,
                    batch_size: int = 250) -> float:
    """Exposure (bits) of ``secret`` under ``model`` (Carlini et al. 2019), estimated by sampling.

    ``candidates`` secrets are drawn with ``format_fn(np.random.default_rng(seed))`` (uniformly,
    with replacement, from the format's space R); each candidate and ``secret`` is scored by the
    model's log-likelihood of the whole record (``<bos>`` secret ``<eos>``,
    :meth:`audit.models.text_lm.CausalLM.generate_logprob`). The rank of ``secret`` in R is estimated
    from the fraction of sampled candidates scoring strictly higher: ``rank = 1 + |R| *
    higher / candidates`` (ties and draws of the secret itself count as not higher), and
    ``exposure = log2 |R| - log2 rank``, in [log2 |R| - log2(1 + |R|), log2 |R|]; with
    ``candidates`` samples it resolves exposures up to about ``log2 candidates`` and reports
    ``log2 |R|`` when no candidate scores higher. |R| is ``space_size``, or
    ``format_fn.space_size`` (as :class:`CanaryFormat` has).
    """
    owner = "canary_exposure"
    if not callable(getattr(model, "generate_logprob", None)):
        raise invalid("model", owner, "a language model with generate_logprob (e.g. 'tiny-lm')",
                      type(model).__name__)
    if not isinstance(secret, str):
        raise invalid("secret", owner, "a str", secret)
    if not callable(format_fn):
        raise invalid("format_fn", owner, "a callable drawing a secret from a numpy Generator", format_fn)
    candidates = check_interval("candidates", owner, candidates, kind=int, low=1)
    seed = check_interval("seed", owner, seed, kind=int, low=0)
    batch_size = check_interval("batch_size", owner, batch_size, kind=int, low=1)
    size = space_size if space_size is not None else getattr(format_fn, "space_size", None)
    if size is None:
        raise InvalidParameterError(
            f"The 'space_size' parameter of {owner} must be given (|R|, the number of possible "
            f"secrets) when format_fn has no space_size attribute. Got None instead.")
    size = check_interval("space_size", owner, size, kind=int, low=1)
    rng = np.random.default_rng(seed)
    sampled = [format_fn(rng) for _ in range(candidates)]
    was_training = model.training
    model.eval()
    try:
        scores = _scores(model, tokenizer, [secret, *sampled], batch_size)
    finally:
        model.train(was_training)
    higher = int((scores[1:] > scores[0]).sum())
    rank = 1.0 + size * higher / candidates
    return math.log2(size) - math.log2(rank)
