"""Text scoring (audit.metrics.text) against hand-computed values: token accuracy, token-set
precision/recall, ROUGE-1/2/L F-measures (rouge-score's tokenizer), decoding."""

from __future__ import annotations

import math

import pytest
import torch

from audit.core.errors import InvalidParameterError
from audit.metrics.text import decode_tokens, rouge_scores, token_accuracy, token_set_scores

BOS, EOS, PAD = 257, 258, 256


def test_token_accuracy_is_position_wise_over_the_truths_content():
    # content: recovered [72, 105, 33], truth [72, 101, 33] -> 2 of 3
    assert token_accuracy([BOS, 72, 105, 33, EOS], [BOS, 72, 101, 33, EOS, PAD]) == pytest.approx(2 / 3)
    recovered, truth = torch.tensor([BOS, 72, 105, 33]), torch.tensor([[BOS, 72, 101, 33]])
    assert token_accuracy(recovered, truth) == pytest.approx(2 / 3)
    assert token_accuracy([BOS, 72], [BOS, 72, 101]) == 0.5  # a missing position is wrong
    assert token_accuracy([72, 101, 99, 98], [BOS, 72, 101, EOS]) == 1.0  # extra tokens ignored
    assert token_accuracy([BOS, 72, EOS, 101], [BOS, 72, 101]) == 1.0  # specials dropped from both
    assert token_accuracy([1, 2], [-100, 3, 2]) == 0.5  # [1, 2] vs [3, 2]: -100 dropped
    assert token_accuracy([1, 2, 3], [BOS, EOS, PAD]) == 1.0  # nothing to recover
    assert token_accuracy([], [5]) == 0.0


def test_token_set_scores():
    # sets {1, 2, 3} and {1, 2, 4, 5}: 2 common
    s = token_set_scores([BOS, 1, 2, 3, 3], [1, 2, 4, 5, PAD, EOS])
    assert s == {"precision": pytest.approx(2 / 3), "recall": 0.5}
    assert token_set_scores([BOS, PAD], [1]) == {"precision": 0.0, "recall": 0.0}
    assert token_set_scores([1], [BOS]) == {"precision": 0.0, "recall": 1.0}
    assert token_set_scores(torch.tensor([7, 8]), torch.tensor([8, 7])) == {"precision": 1.0, "recall": 1.0}


def test_rouge_by_hand():
    # truth: the cat sat on the mat (6 words), recovered: the cat on mat (4 words)
    # unigrams: 4 common (the, cat, on, mat): P 1, R 4/6 -> F 0.8
    # bigrams: 5 vs 3, common "the cat": P 1/3, R 1/5 -> F 0.25; LCS "the cat on mat": F 0.8
    s = rouge_scores("the cat on mat", "the cat sat on the mat")
    assert s == pytest.approx({"rouge1": 0.8, "rouge2": 0.25, "rougeL": 0.8})
    assert rouge_scores("the cat", "the cat") == {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}
    assert rouge_scores("dog", "the cat") == {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}


def test_rouge_tokenizer_lowercases_and_keeps_ascii_alphanumerics_only():
    # truth -> call bob at 555 1234 (5), recovered -> call bob 555 1234 (4): 4 common, P 1, R 4/5
    # -> F 8/9; bigrams 4 vs 3, common "call bob", "555 1234": P 2/3, R 1/2 -> F 4/7; LCS 4 -> 8/9
    s = rouge_scores("call bob 555 1234", "Call Bob at 555-1234.")
    assert s == pytest.approx({"rouge1": 8 / 9, "rouge2": 4 / 7, "rougeL": 8 / 9})
    # ü and ß are no [a-z0-9]: "Grüße" is the words "gr" and "e"
    assert rouge_scores("gr e", "Grüße") == {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}
    assert rouge_scores("!!!", "...")["rouge1"] == 0.0  # no words at all


def test_rouge_rejects_non_strings():
    with pytest.raises(InvalidParameterError, match="'recovered_text'"):
        rouge_scores([72, 105], "Hi")


def test_decode_tokens_skips_specials():
    assert decode_tokens([BOS, 72, 105, EOS, PAD, PAD]) == "Hi"
    assert decode_tokens(torch.tensor([BOS, 72, 105, -100])) == "Hi"
    assert decode_tokens([BOS, *"Grüße".encode()]) == "Grüße"


def test_next_token_accuracy_pools_the_scored_positions():
    from audit.metrics.text import next_token_accuracy

    # 2 items, vocab 3, 3 positions; logits (N, V, T) whose argmax is given per position
    predicted = torch.tensor([[0, 1, 2], [2, 2, 0]])
    logits = torch.nn.functional.one_hot(predicted, 3).float().transpose(1, 2)  # (2, 3, 3)
    targets = torch.tensor([[0, 2, -100], [2, -100, -100]])
    # scored: (0,0) hit, (0,1) miss, (1,0) hit -> 2 of 3 pooled (a mean per item would be 3/4)
    assert next_token_accuracy(logits, targets) == pytest.approx(2 / 3)
    assert next_token_accuracy(logits.transpose(1, 2), targets, class_dim=2) == pytest.approx(2 / 3)
    assert next_token_accuracy(torch.zeros(1, 3, 2), torch.tensor([[1, 0]])) == 0.5  # ties -> id 0
    assert math.isnan(next_token_accuracy(logits, torch.full((2, 3), -100)))  # nothing scored
    with pytest.raises(InvalidParameterError, match="targets"):
        next_token_accuracy(logits, targets[:, :2])
