"""The black-box tester against the bug zoo: every planted bug gives VIOLATION at 95%
confidence and every correct twin PASS. Seeded, so deterministic in CI.

False-positive rate: the Clopper-Pearson bound holds with probability >= 0.95, so a correct
mechanism is flagged with probability at most alpha = 0.05 per test; over 20 seeds more
than one false alarm would itself be unlikely (P[Bin(20, 0.05) >= 2] = 0.26 at worst, and
far less in practice because the bound is loose), which the sweep test checks.
"""

import pytest

from audit.privacy.testing.bug_zoo import BUGS, zoo
from audit.privacy.testing.mechanism_tester import laplace_reachability_scores, test_mechanism


def _test(bug, *, correct, seed=0, samples=300_000):
    mech, data, neighbour = zoo(bug, correct=correct)
    scores = laplace_reachability_scores(mech.scale) if bug == "floating-point-laplace" else None
    return test_mechanism(mech, data, neighbour, samples=samples, seed=seed, scores=scores)


@pytest.mark.parametrize("bug", BUGS)
def test_planted_bug_is_caught(bug):
    result = _test(bug, correct=False)
    assert result.verdict == "VIOLATION", result.to_dict()
    assert result.estimate.nature == "lower-bound" and result.estimate.confidence == pytest.approx(0.95)


@pytest.mark.parametrize("bug", BUGS)
def test_correct_twin_passes(bug):
    result = _test(bug, correct=True)
    assert result.verdict == "PASS", result.to_dict()


def test_correct_mechanism_false_alarms_over_20_seeds():
    alarms = sum(
        _test("sensitivity-off-by-2", correct=True, seed=s, samples=20_000).verdict == "VIOLATION"
        for s in range(20)
    )
    assert alarms <= 1
