"""Generated per-client text records (audit.data.generated.text_records): determinism, non-IID clients,
canaries planted exactly as recorded, personal data in the texts, and canary exposure."""

import math
import re

import numpy as np
import pytest
import torch
from torch import nn

from audit.data.registry import DATASETS, create_dataset
from audit.core.errors import InvalidParameterError
from audit.models.registry import create_model
from audit.models.text_lm import ByteTokenizer
from audit.data.generated.text_records import LOCALES, TEMPLATES, CanaryFormat, canary_exposure, client_templates

TOK = ByteTokenizer()
EMAIL = re.compile(r"[\w.+-]+@example\.(com|org|net)")


def small(**params):
    return create_dataset("records", **{"num_items": 96, "length": 64, "clients": 4, "canaries": 3,
                                        "canary_repeats": 5, **params})


def test_registered_and_shaped():
    assert "records" in DATASETS
    d = small()
    n = 96 + 3 * 5
    assert len(d) == n and d.images.shape == d.labels.shape == (n, 64) and d.input_shape == (64,)
    assert d.images.dtype == d.labels.dtype == torch.long
    assert d.num_classes == 259 and d.channel_mean == (0.0,) and d.channel_std == (1.0,)
    assert d.modality == "text" and d.task == "language-modeling"
    assert torch.equal(d.labels, TOK.targets(d.images))
    assert int(d.images.max()) < 259 and int(d.images.min()) >= 0
    assert (d.images[:, 0] == TOK.BOS).all()


def test_deterministic_under_seed():
    a, b, c = small(seed=3), small(seed=3), small(seed=4)
    assert torch.equal(a.images, b.images) and torch.equal(a.groups, b.groups)
    assert a.meta["items"]["texts"] == b.meta["items"]["texts"] and a.meta["canaries"] == b.meta["canaries"]
    assert a.meta["items"]["texts"] != c.meta["items"]["texts"]
    # the ordinary records do not depend on the canary settings
    plain = small(seed=3, canaries=0)
    assert len(plain) == 96 and plain.meta["canaries"] == ()
    assert torch.equal(plain.images, a.images[:96]) and torch.equal(plain.groups, a.groups[:96])


def test_canaries_are_planted_exactly_as_recorded():
    d = small(clients=4, canaries=3, canary_repeats=5)
    texts, groups = d.meta["items"]["texts"], d.groups.tolist()
    planted = d.meta["canaries"]
    assert len(planted) == 3 and len({c["secret"] for c in planted}) == 3
    assert len({c["client"] for c in planted}) == 3  # distinct clients while canaries <= clients
    fmt = d.meta["canary_format"]
    assert isinstance(fmt, CanaryFormat) and fmt.space_size == 10 ** 6
    for j, c in enumerate(planted):
        assert re.fullmatch(r"my pin is( \d){6}", c["secret"]) and c["repeats"] == 5
        where = [i for i, t in enumerate(texts) if c["secret"] in t]
        assert len(where) == 5
        assert all(groups[i] == c["client"] for i in where)
        assert [i for i, k in enumerate(d.meta["items"]["canary"]) if k == j] == where
        assert all(TOK.decode(d.images[i]) == c["secret"] for i in where)
    wrapped = small(clients=2, canaries=3)  # more canaries than clients: clients are reused
    assert sorted({c["client"] for c in wrapped.meta["canaries"]}) == [0, 1]


def test_clients_are_valid_and_non_iid():
    d = small(num_items=120, clients=5, canaries=0)
    groups = d.groups.numpy()
    assert groups.min() == 0 and groups.max() == 4
    sizes = np.bincount(groups, minlength=5)
    assert sizes.max() - sizes.min() <= 1
    templates = np.array(d.meta["items"]["templates"])
    for k in range(5):
        own = templates[groups == k]
        primary, secondary = client_templates(k)
        assert set(own) <= {primary, secondary}
        assert (own == primary).sum() > (own == secondary).sum()
    assert d.meta["locales"] == LOCALES[:5]
    assert len({tuple(t) for t in d.meta["client_templates"]}) == 5


def test_texts_hold_personal_data():
    d = small(num_items=120, clients=6, canaries=0)
    texts, fields = d.meta["items"]["texts"], d.meta["items"]["fields"]
    templates = d.meta["items"]["templates"]
    assert set(templates) == set(TEMPLATES)
    for text, f in zip(texts, fields):
        assert f and all(v in text for v in f.values())
    emails = [t for t in texts if EMAIL.search(t)]
    phones = [f["phone"] for f in fields if "phone" in f]
    ibans = [f["iban"] for f in fields if "iban" in f]
    assert len(emails) >= 10 and len(phones) >= 10 and len(ibans) >= 10
    assert all(re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]+", i) for i in ibans)
    assert any(not t.isascii() for t in texts)  # non-English locales
    fits = [i for i, t in enumerate(texts) if len(t.encode()) + 2 <= 64]
    assert len(fits) > 0.8 * len(texts)
    assert all(TOK.decode(d.images[i]) == texts[i] for i in fits)


def test_subset_reindexes_per_item_metadata():
    d = small()
    s = d.subset([100, 2, 0])
    assert s.meta["items"]["texts"] == tuple(d.meta["items"]["texts"][i] for i in (100, 2, 0))
    assert s.meta["canaries"] == d.meta["canaries"] and s.meta["canary_format"] == d.meta["canary_format"]
    assert torch.equal(s.groups, d.groups[[100, 2, 0]])
    assert create_dataset("digits", limit=10).subset([1, 2]).meta is None


@pytest.mark.parametrize(
    "params, needle",
    [({"num_items": 0}, "'num_items'"), ({"clients": 200}, "'clients'.*200"),
     ({"canary_repeats": 0}, "'canary_repeats'"), ({"length": 4}, "'length'"), ({"style": 1}, "style")],
)
def test_bad_params(params, needle):
    with pytest.raises(InvalidParameterError, match=needle):
        small(**params)


class _Scorer(nn.Module):
    """A stand-in LM whose log-likelihood of a sequence is ``score(decoded text)``."""

    def __init__(self, score):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))
        self.score = score

    def generate_logprob(self, ids):
        return torch.tensor([float(self.score(TOK.decode(row))) for row in ids])


def test_exposure_estimator():
    fmt = CanaryFormat()
    secret = "my pin is 1 2 3 4 5 6"
    top = _Scorer(lambda t: 1.0 if t == secret else 0.0)
    assert canary_exposure(top, TOK, secret, fmt, candidates=200) == pytest.approx(math.log2(1e6))
    bottom = _Scorer(lambda t: -1.0 if t == secret else 0.0)
    assert canary_exposure(bottom, TOK, secret, fmt, candidates=200) == pytest.approx(
        math.log2(1e6) - math.log2(1 + 1e6))
    # half the candidates score higher: rank 1 + |R| / 2, about 1 bit
    half = _Scorer(lambda t: 0.5 if t == secret else float(int(t[-1]) % 2))
    e = canary_exposure(half, TOK, secret, fmt, candidates=2000, seed=3)
    assert 0.8 < e < 1.2
    with pytest.raises(InvalidParameterError, match="'space_size'"):
        canary_exposure(top, TOK, secret, lambda rng: fmt(rng))
    assert canary_exposure(top, TOK, secret, lambda rng: fmt(rng), space_size=10 ** 6) == pytest.approx(
        math.log2(1e6))
    with pytest.raises(InvalidParameterError, match="'model'"):
        canary_exposure(nn.Linear(2, 2), TOK, secret, fmt)


def test_a_memorised_canary_is_exposed():
    """A tiny LM trained on data where one canary repeats 16 times exposes it far more than a
    secret of the same format it never saw (~4 s on one core)."""
    d = create_dataset("records", num_items=48, length=32, clients=2, canaries=1, canary_repeats=16)
    torch.manual_seed(0)
    m = create_model("tiny-lm", input_shape=d.input_shape, num_classes=d.num_classes,
                     channel_mean=d.channel_mean, channel_std=d.channel_std, hidden=64, layers=2, heads=4)
    opt = torch.optim.Adam(m.parameters(), lr=5e-3)
    for _ in range(80):
        opt.zero_grad()
        nn.functional.cross_entropy(m(d.images), d.labels).backward()
        opt.step()
    fmt = d.meta["canary_format"]
    secret = d.meta["canaries"][0]["secret"]
    fresh = [s for s in (fmt(np.random.default_rng(100 + i)) for i in range(3)) if s != secret]
    inserted = canary_exposure(m, TOK, secret, fmt, candidates=500, seed=1)
    never = [canary_exposure(m, TOK, s, fmt, candidates=500, seed=1) for s in fresh]
    assert inserted > 8.0  # at least ~log2(500): no sampled candidate is more likely
    assert all(inserted > e + 4.0 for e in never)
