"""Scoring of text attacks: token sets, matched sequences and the random-record baseline."""

import pytest
import torch

from audit.models.text_lm import ByteTokenizer
from audit.metrics.text_scoring import score_text

TOK = ByteTokenizer()


def _ids(*texts, length=32):
    return TOK.batch_encode(list(texts), length)[0]


def test_exact_sequences_score_one_and_the_baseline_less():
    truth = _ids("alice pays bob", "carol mails dan")
    recovered = [row.tolist() for row in truth.flip(0)]  # order is matched, not assumed
    metrics, samples = score_text([(recovered, truth)], baseline=_ids("zed owes quinn")[0],
                                  sequences=True)
    m = {s.name: s for s in metrics}
    for name in ("token_precision", "token_recall", "token_accuracy", "rouge1", "rouge2", "rougeL"):
        assert m[name].mean == pytest.approx(1.0), name
    assert m["rouge1"].baseline.mean == pytest.approx(0.0)
    assert 0 < m["token_recall"].baseline.mean < 1  # shared letters
    assert samples[0]["truth"] == "alice pays bob | carol mails dan"


def test_a_token_set_has_no_sequence_metrics():
    truth = _ids("abc")
    metrics, samples = score_text([([[ord("a"), ord("b"), ord("z")]], truth)],
                                  baseline=_ids("xyz")[0], sequences=False)
    m = {s.name: s for s in metrics}
    assert set(m) == {"token_precision", "token_recall"}
    assert m["token_precision"].mean == pytest.approx(2 / 3)
    assert m["token_recall"].mean == pytest.approx(2 / 3)
    assert samples[0]["recovered"] == "abz"


def test_a_missing_sequence_scores_zero_for_its_record():
    truth = _ids("hello world", "good day")
    metrics, _ = score_text([([TOK.encode("hello world")], truth)], baseline=torch.zeros(32, dtype=torch.long),
                            sequences=True)
    m = {s.name: s for s in metrics}
    assert m["rouge1"].mean == pytest.approx(0.5)  # one of two records recovered exactly
