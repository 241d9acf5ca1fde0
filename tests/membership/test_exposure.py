"""Who is exposed (audit.membership.exposure): the maths against closed forms and planted
cases, and its input checks.

Planted Gaussian scores: non-members ~ N(0, 1); a group whose members ~ N(3, 1) has TPR at
1% FPR Phi(3 - z_0.99) = 0.7497 (and at 0.1% FPR Phi(3 - z_0.999) = 0.4641); a group with
no signal has TPR = FPR.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from audit.core.errors import InvalidParameterError
from audit.membership.exposure import clopper_pearson, exposure, p_values, threshold
from audit.metrics.membership import membership_metrics


def _planted(seed=0, n=3000):
    """Groups 'leaky' (members +3), 'quiet' (no signal), each with n members and n
    non-members, and 'shifted' (everyone +2, n / 20 of each)."""
    rng = np.random.default_rng(seed)
    names, scores, member = [], [], []
    for name, shift_in, shift_out, size in (("leaky", 3.0, 0.0, n), ("quiet", 0.0, 0.0, n),
                                            ("shifted", 2.0, 2.0, n // 20)):
        for is_member, shift in ((True, shift_in), (False, shift_out)):
            scores.append(rng.normal(size=size) + shift)
            member += [is_member] * size
            names += [name] * size
    scores = np.concatenate(scores)
    return scores, np.array(member), [f"r{i}" for i in range(len(scores))], names


@pytest.fixture(scope="module")
def planted():
    s, m, ids, names = _planted()
    return exposure(s, m, ids, names, group_source="user").to_dict()


def _group(result, name):
    return next(g for g in result["groups"] if g["name"] == name)


def test_clopper_pearson_matches_its_closed_forms():
    n, alpha = 40, 0.05
    assert clopper_pearson(0, n) == (0.0, pytest.approx(1 - (alpha / 2) ** (1 / n), abs=1e-12))
    assert clopper_pearson(n, n) == (pytest.approx((alpha / 2) ** (1 / n), abs=1e-12), 1.0)
    lo, hi = clopper_pearson(12, n)
    assert (lo, hi) == pytest.approx(tuple(1 - v for v in clopper_pearson(n - 12, n)[::-1]))
    assert lo < 12 / n < hi
    # the lower end: P(Bin(n, lo) >= 12) = alpha / 2
    from scipy.stats import binom
    assert binom.sf(11, n, lo) == pytest.approx(alpha / 2, rel=1e-6)


def test_overall_tpr_is_the_roc_tpr_at_1pct_fpr_even_with_ties():
    rng = np.random.default_rng(1)
    m = rng.random(1500) < 0.5
    s = rng.integers(0, 40, 1500) + 6 * m  # many ties
    got = exposure(s, m, [str(i) for i in range(1500)], None, group_source="none").to_dict()
    assert got["overall"]["tpr"] == pytest.approx(membership_metrics(s, m).tpr_at_fpr[0.01])
    assert got["overall"]["fpr"] <= 0.01
    assert got["groups"] == [] and got["group_source"] == "none"


def test_planted_group_gets_phi_of_3_minus_z_and_ranks_first(planted):
    leaky = _group(planted, "leaky")
    assert planted["groups"][0]["name"] == "leaky" and leaky["rank"] == 1
    expected = norm.cdf(3 - norm.ppf(0.99))
    assert expected == pytest.approx(0.7497, abs=1e-4)
    assert leaky["tpr"] == pytest.approx(expected, abs=0.04)
    assert leaky["interval"][0] < leaky["tpr"] < leaky["interval"][1]
    assert leaky["interval"][1] - leaky["interval"][0] < 0.05
    assert leaky["fpr"] == 0.01 and leaky["note"] is None
    # 3000 non-members: 0.1% FPR is resolved too
    assert leaky["strict_fpr"] == 0.001
    assert leaky["strict_tpr"] == pytest.approx(norm.cdf(3 - norm.ppf(0.999)), abs=0.07)
    assert leaky["auc"] == pytest.approx(norm.cdf(3 / math.sqrt(2)), abs=0.01)


def test_group_without_signal_sits_at_chance(planted):
    quiet = _group(planted, "quiet")
    assert quiet["tpr"] == pytest.approx(0.01, abs=0.008)
    assert quiet["auc"] == pytest.approx(0.5, abs=0.03)


def test_interval_covers_the_tpr_given_the_threshold():
    # members ~ N(1, 1): given the group's own cut, the true TPR is 1 - Phi(cut - 1); the
    # Clopper-Pearson interval must cover it in at least 95% of runs (it is conservative)
    covered, width = 0, []
    for seed in range(300):
        rng = np.random.default_rng(seed)
        s = np.r_[rng.normal(size=150) + 1, rng.normal(size=200)]
        m = np.r_[np.ones(150, bool), np.zeros(200, bool)]
        g = exposure(s, m, [str(i) for i in range(350)], ["g"] * 350,
                     group_source="user").groups[0]
        truth = 1 - norm.cdf(threshold(s[~m], 0.01) - 1)
        covered += g.own.interval[0] <= truth <= g.own.interval[1]
        width.append(g.own.interval[1] - g.own.interval[0])
    assert 0.95 <= covered / 300 < 0.995
    assert np.mean(width) < 0.2


def test_global_threshold_exposes_a_group_its_own_threshold_calls_safe(planted):
    # 'shifted': members and non-members both score +2, so at its own threshold the group
    # is at chance, but the global threshold (fixed on mostly unshifted non-members)
    # flags a large share of its members -- and of its non-members
    shifted = _group(planted, "shifted")
    assert shifted["tpr"] < 0.05 and shifted["auc"] == pytest.approx(0.5, abs=0.1)
    assert shifted["global_tpr"] > 0.15 and shifted["global_fpr"] > 0.15
    quiet = _group(planted, "quiet")
    assert quiet["global_fpr"] < 0.01
    assert [g["rank"] for g in planted["groups"]] == [1, 2, 3]


def test_top_k_are_exactly_the_planted_most_exposed_ids():
    s, m, ids, names = _planted(seed=2, n=500)
    members = np.flatnonzero(m)
    planted_ids = []
    for j, i in enumerate(members[[7, 99, 300, 811, 1000]]):
        s[i] = 50.0 + j
        planted_ids.append(ids[i])
    got = exposure(s, m, ids, names, group_source="user", top_k=5).to_dict()
    top = got["top_exposed"]
    assert [t["record_id"] for t in top] == planted_ids[::-1]
    assert [t["rank"] for t in top] == [1, 2, 3, 4, 5]
    assert all(t["p_value"] == pytest.approx(1 / (1 + (~m).sum())) for t in top)
    assert top[0]["group"] == names[ids.index(planted_ids[-1])]
    assert set(top[0]) == {"rank", "record_id", "group", "score", "p_value"}  # ids, no content


def test_top_k_ties_break_by_id_and_k_caps_at_the_members():
    s = np.array([5.0, 5.0, 5.0, 0.0, 0.0, 1.0])
    m = np.array([True, True, True, False, False, False])
    got = exposure(s, m, ["c", "a", "b", "x", "y", "z"], None, group_source="none", top_k=10)
    assert [t["record_id"] for t in got.top_exposed] == ["a", "b", "c"]
    assert got.top_k == 10


def test_p_values_closed_form():
    s = np.array([3.0, 1.0, 2.0, 2.0, 0.5])
    m = np.array([True, True, False, False, False])
    # non-members 2, 2, 0.5: 3.0 has none above -> 1/4; 1.0 has two -> 3/4
    assert p_values(s, m)[:2].tolist() == [0.25, 0.75]
    assert p_values(s, m)[2] == 0.75  # ties count as "as high"


def test_threshold_allows_floor_fpr_n_false_positives():
    neg = np.arange(250, dtype=float)  # 1% of 250 -> 2 allowed
    cut = threshold(neg, 0.01)
    assert (neg > cut).sum() == 2
    assert threshold(neg[:50], 0.02) == 48.0  # one of 50
    assert threshold(np.array([1.0]), 1.0) == -math.inf


def test_too_few_non_members_says_so_and_uses_the_finest_fpr():
    rng = np.random.default_rng(3)
    s = np.r_[rng.normal(size=400) + 1, rng.normal(size=400), rng.normal(size=40) + 2,
              rng.normal(size=40), rng.normal(size=5) + 1]
    m = np.r_[np.ones(400), np.zeros(400), np.ones(40), np.zeros(40), np.ones(5)].astype(bool)
    names = ["big"] * 800 + ["small"] * 80 + ["only-members"] * 5
    got = exposure(s, m, [str(i) for i in range(len(s))], names, group_source="user").to_dict()
    small, big, lone = (_group(got, n) for n in ("small", "big", "only-members"))
    assert "not enough non-members for 1% FPR" in small["note"]
    assert "40 < 100" in small["note"] and "2.50% FPR" in small["note"]
    assert small["fpr"] == pytest.approx(1 / 40)
    neg = np.sort(s[840:880])[::-1]
    assert small["tpr"] == pytest.approx((s[800:840] > neg[1]).mean())  # one false positive
    assert small["strict_tpr"] is None and big["strict_tpr"] is None  # < 1000 non-members
    assert big["note"] is None and big["fpr"] == 0.01
    assert lone["tpr"] is None and lone["auc"] is None and "no non-members" in lone["note"]
    assert lone["global_tpr"] is not None  # the global threshold still applies to it
    # comparable groups first, coarser-FPR next, no TPR last
    assert [g["name"] for g in got["groups"]] == ["big", "small", "only-members"]


def test_result_is_deterministic_and_order_free():
    s, m, ids, names = _planted(seed=4, n=300)
    a = exposure(s, m, ids, names, group_source="user").to_dict()
    assert exposure(s, m, ids, names, group_source="user").to_dict() == a
    perm = np.random.default_rng(5).permutation(len(s))
    b = exposure(s[perm], m[perm], [ids[i] for i in perm], [names[i] for i in perm],
                 group_source="user").to_dict()
    assert b == a


@pytest.mark.parametrize("change, words", [
    (dict(record_ids=["a", "b", "a", "d"]), ["'record_ids'", "unique", "'a' twice", "0 and 2"]),
    (dict(record_ids=["a", "b", "c"]), ["'record_ids'", "one entry per score (4)", "Got 3"]),
    (dict(groups=["g", "g", "h"]), ["'groups'", "one entry per score (4)", "Got 3"]),
    (dict(groups=["g", 3, "h", "h"]), ["'groups[1]'", "a non-empty str", "Got 3"]),
    (dict(record_ids=["a", "", "c", "d"]), ["'record_ids[1]'", "non-empty str"]),
    (dict(top_k=0), ["'top_k'", "[1, inf]", "Got 0"]),
    (dict(top_k=2.5), ["'top_k'", "an int", "2.5"]),
    (dict(is_member=[True, True, True, True]), ["'is_member'", "at least one member and one non-member"]),
    (dict(scores=[0.1, np.nan, 0.3, 0.4]), ["'scores'", "finite", "nan"]),
    (dict(group_source="class-ish"), ["'group_source'", "'class-ish'"]),
])
def test_bad_inputs_are_named(change, words):
    args = dict(scores=[0.1, 0.2, 0.3, 0.4], is_member=[True, False, True, False],
                record_ids=["a", "b", "c", "d"], groups=["g", "g", "h", "h"],
                group_source="user", top_k=3)
    args.update(change)
    with pytest.raises(InvalidParameterError) as exc:
        exposure(args.pop("scores"), args.pop("is_member"), args.pop("record_ids"),
                 args.pop("groups"), **args)
    for w in words:
        assert w in str(exc.value), (w, str(exc.value))
