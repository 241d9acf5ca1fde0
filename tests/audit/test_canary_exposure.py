"""Secret Sharer exposure (audit.privacy.auditing.canary_exposure): closed forms, the exact
rank against brute force, the sampled estimate against the exact one, a planted canary, and
clear errors on bad inputs.

Tolerances: the sampled estimate is checked against the exact exposure through its 99.9%
Clopper-Pearson interval, on 10 secrets: a correct estimator fails this check with
probability at most 10 x 0.1% = 1% over seeds (union bound; CP is conservative); the seed is
fixed, so the test is deterministic. The coverage check of the interval itself simulates
binomial draws and allows the 95% interval 2 points of slack below 95% on 2000 trials
(the binomial standard error there is 0.5 points).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from audit.core.errors import InvalidParameterError
from audit.data.generated.text_records import CanaryFormat, canary_exposure
from audit.models.text_lm import ByteTokenizer, tiny_lm
from audit.privacy.auditing.canary_exposure import (
    UNSEEN_MEAN_BITS,
    canary_exposures,
    enumerate_space,
    exact_rank,
    exposure_from_rank,
    exposure_metric,
    sampled_rank,
)

TOK = ByteTokenizer()


class TableLM(nn.Module):
    """A fake LM: the log-likelihood of a record is ``table[text]`` (``default`` otherwise)."""

    def __init__(self, table: dict[str, float], default: float = -50.0) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.table, self.default = table, default

    def generate_logprob(self, ids: torch.Tensor) -> torch.Tensor:
        return torch.tensor([self.table.get(TOK.decode(row), self.default) for row in ids])


def _lm(length: int = 24, seed: int = 0, **kw) -> nn.Module:
    torch.manual_seed(seed)
    return tiny_lm(input_shape=(length,), num_classes=259, channel_mean=None, channel_std=None, **kw)


def test_closed_forms_first_is_log2_R_last_is_zero():
    assert exposure_from_rank(1, 10 ** 6) == pytest.approx(math.log2(10 ** 6))
    assert exposure_from_rank(10 ** 6, 10 ** 6) == 0.0
    assert exposure_from_rank(4, 16) == pytest.approx(2.0)
    fmt = CanaryFormat(digits=2)
    space = enumerate_space(fmt)
    assert len(space) == 100 == len(set(space)) and space[7] == "my pin is 0 7"
    scores = {s: -float(i) for i, s in enumerate(space)}  # "0 0" most likely, "9 9" least
    res = canary_exposures(TableLM(scores), TOK, [space[0], space[-1], space[3]], fmt)
    assert [r.estimator for r in res] == ["exact"] * 3
    assert res[0].exposure == pytest.approx(math.log2(100)) and res[0].rank == 1
    assert res[1].exposure == 0.0 and res[1].rank == 100
    assert res[2].rank == 4 and res[2].exposure == pytest.approx(math.log2(100 / 4))
    assert res[0].interval == (res[0].exposure, res[0].exposure)
    # ties count as "not more likely": every candidate alike ranks first
    assert canary_exposures(TableLM({}, -3.0), TOK, [space[5]], fmt)[0].rank == 1
    # the sampled estimate of a secret no draw beats is log2 |R|, its interval's low end ~log2(n/3.7)
    top = canary_exposures(TableLM(scores), TOK, [space[0]], fmt, estimator="sampled", candidates=400)[0]
    assert top.exposure == pytest.approx(math.log2(100)) and top.more_likely == 0
    assert top.interval[1] == pytest.approx(math.log2(100))
    assert 0 < top.interval[0] < math.log2(100)


def test_exact_rank_matches_brute_force_on_an_enumerable_format():
    fmt = CanaryFormat(digits=2)
    model = _lm()
    space = enumerate_space(fmt)
    res = canary_exposures(model, TOK, space, fmt, estimator="exact")
    ids, targets = TOK.batch_encode(space, max(len(TOK.encode(s)) for s in space))
    with torch.no_grad():  # an independent path: the training loss, summed per record
        nll = nn.functional.cross_entropy(model(ids), targets, reduction="none").sum(1).double()
    brute = (-nll).numpy()
    for i, r in enumerate(res):
        lo = 1 + int((brute > brute[i] + 1e-4).sum())
        hi = 1 + int((brute > brute[i] - 1e-4).sum())
        assert lo <= r.rank <= hi, (i, r.rank, lo, hi)
        assert r.log_perplexity == pytest.approx(float(nll[i]) / math.log(2), rel=1e-4)
    # ranks of the whole space are a permutation (no ties in a random model's float scores)
    assert sorted(int(r.rank) for r in res) == list(range(1, 101))
    assert exact_rank(0.5, [1.0, 0.5, 0.2, 2.0]) == 3


def test_sampled_estimate_agrees_with_exact_within_its_interval():
    fmt = CanaryFormat(digits=3)
    model = _lm(seed=1)
    space = enumerate_space(fmt)
    exact = canary_exposures(model, TOK, space, fmt, estimator="exact")
    order = np.argsort([r.rank for r in exact])
    picked = [space[i] for i in order[[0, 3, 30, 100, 250, 400, 550, 700, 850, 999]]]
    want = {r.secret: r for r in exact}
    sampled = canary_exposures(model, TOK, picked, fmt, estimator="sampled", candidates=2000, seed=3,
                               confidence=0.999)
    for s in sampled:
        e = want[s.secret]
        assert s.interval[0] - 1e-9 <= e.exposure <= s.interval[1] + 1e-9, (s, e)
        assert s.rank_interval[0] <= e.rank <= s.rank_interval[1]
        assert 0 <= s.extrapolated <= math.log2(1000)
    # the skew-normal extrapolation follows the exact exposure away from the extremes
    mid = [s for s in sampled if 30 <= want[s.secret].rank <= 700]
    assert all(abs(s.extrapolated - want[s.secret].exposure) < 1.0 for s in mid)
    # with one secret the point estimate is the existing sampled canary_exposure's
    one = canary_exposures(model, TOK, [picked[4]], fmt, estimator="sampled", candidates=500, seed=7,
                           batch_size=250)[0]
    assert one.exposure == pytest.approx(canary_exposure(model, TOK, picked[4], fmt, candidates=500, seed=7))


def test_sampled_interval_covers_at_its_confidence():
    rng = np.random.default_rng(0)
    size, n, hits, trials = 10 ** 6, 1000, 0, 2000
    for _ in range(trials):
        rank = int(rng.integers(1, size + 1))
        h = int(rng.binomial(n, (rank - 1) / size))
        est, (lo, hi) = sampled_rank(h, n, size, 0.95)
        assert 1 <= lo <= est <= hi <= size
        hits += lo <= rank <= hi
    assert hits / trials >= 0.93
    assert sampled_rank(0, 100, 1000, 0.95)[0] == 1.0
    est, (lo, hi) = sampled_rank(100, 100, 1000, 0.95)
    assert est == hi == 1000.0 and lo == pytest.approx(1 + 1000 * 0.025 ** 0.01)


def test_a_planted_canary_is_more_exposed_than_an_unseen_secret():
    fmt = CanaryFormat(digits=3)
    rng = np.random.default_rng(5)
    canary, unseen = fmt(rng), fmt(rng)
    assert canary != unseen
    others = [f"Refund customer {i} ({i}@example.com)." for i in range(32)]
    texts = [canary] * 32 + others
    model = _lm(length=40, layers=1, hidden=32, heads=2)
    ids, targets = TOK.batch_encode(texts, 40)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(40):
        opt.zero_grad()
        nn.functional.cross_entropy(model(ids), targets).backward()
        opt.step()
    planted, control = canary_exposures(model, TOK, [canary, unseen], fmt)
    assert planted.estimator == "exact"
    assert planted.exposure > 8.0  # of log2 1000 = 9.97: ranked among the first 4
    assert planted.exposure > control.exposure + 3.0
    assert model.training  # the mode is restored after scoring
    metric = exposure_metric([planted, control])
    from reports.schema import _check_metric

    _check_metric(metric, "metric")
    assert metric["worst"] == planted.exposure and metric["baseline"]["mean"] == pytest.approx(UNSEEN_MEAN_BITS)


def test_bad_inputs_give_clear_errors():
    fmt = CanaryFormat(digits=2)
    lm = TableLM({})
    good = "my pin is 1 2"
    with pytest.raises(InvalidParameterError, match="'model'"):
        canary_exposures("not a model", TOK, [good], fmt)
    with pytest.raises(InvalidParameterError, match=r"logits \(N, V, T\)"):
        canary_exposures(nn.Linear(3, 3), TOK, [good], fmt)
    with pytest.raises(InvalidParameterError, match="'tokenizer'"):
        canary_exposures(lm, object(), [good], fmt)
    with pytest.raises(InvalidParameterError, match="'secrets'"):
        canary_exposures(lm, TOK, good, fmt)
    with pytest.raises(InvalidParameterError, match="'secrets'"):
        canary_exposures(lm, TOK, [], fmt)
    with pytest.raises(InvalidParameterError, match="canary format"):
        canary_exposures(lm, TOK, ["my pin is 1 2 3"], fmt)
    with pytest.raises(InvalidParameterError, match="'estimator'"):
        canary_exposures(lm, TOK, [good], fmt, estimator="skewnormal")
    with pytest.raises(InvalidParameterError, match="'candidates'"):
        canary_exposures(lm, TOK, [good], fmt, estimator="sampled", candidates=0)
    with pytest.raises(InvalidParameterError, match="'confidence'"):
        canary_exposures(lm, TOK, [good], fmt, estimator="sampled", confidence=1.0)
    with pytest.raises(InvalidParameterError, match="enumerates R"):
        canary_exposures(lm, TOK, [good], lambda rng: good, estimator="exact", space_size=100)
    with pytest.raises(InvalidParameterError, match="'space_size'"):
        canary_exposures(lm, TOK, [good], lambda rng: good)
    with pytest.raises(InvalidParameterError, match="once"):
        canary_exposures(lm, TOK, ["a"], space=["a", "a"])
    with pytest.raises(InvalidParameterError, match="not one"):
        canary_exposures(lm, TOK, ["c"], space=["a", "b"])
    with pytest.raises(InvalidParameterError, match="'format_fn'"):
        canary_exposures(lm, TOK, [good])
    with pytest.raises(InvalidParameterError, match="'rank'"):
        exposure_from_rank(0, 10)
    with pytest.raises(InvalidParameterError, match="'rank'"):
        exposure_from_rank(11, 10)
    nan = TableLM({}, float("nan"))
    with pytest.raises(InvalidParameterError, match="non-finite"):
        canary_exposures(nan, TOK, [good], fmt)
    with pytest.raises(InvalidParameterError, match="positions"):
        canary_exposures(_lm(length=8), TOK, [good], fmt)
    # an explicit space of a free-form format is ranked exactly
    space = ["alpha", "beta", "gamma"]
    res = canary_exposures(TableLM({"beta": -1.0, "alpha": -2.0, "gamma": -3.0}), TOK, ["alpha"], space=space)
    assert res[0].rank == 2 and res[0].space_size == 3 and res[0].estimator == "exact"


def _benchmark():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "canary_exposure.py"
    spec = importlib.util.spec_from_file_location("canary_exposure_benchmark", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_benchmark_writes_its_report_whole_or_not_at_all(tmp_path, monkeypatch):
    bench = _benchmark()
    out = tmp_path / "exposure"
    out.mkdir()
    (out / "old.txt").write_text("previous run")
    with pytest.raises(KeyError):  # the markdown of an incomplete report fails half-way
        bench.write_atomic(out, {"rows": []})
    assert [p.name for p in tmp_path.iterdir()] == ["exposure"]
    assert (out / "old.txt").read_text() == "previous run"
    monkeypatch.setattr(bench, "markdown", lambda report: "# table\n")
    bench.write_atomic(out, {"rows": [], "space_size": 10 ** 6})
    assert sorted(p.name for p in out.iterdir()) == ["exposure.json", "exposure.md"]
    assert [p.name for p in tmp_path.iterdir()] == ["exposure"]
    import json

    assert json.loads((out / "exposure.json").read_text())["space_size"] == 10 ** 6
    with pytest.raises(SystemExit):
        bench.parse(["--out", str(out), "--defenses", "fedavg,nope"])
