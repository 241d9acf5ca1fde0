"""DAGER (attacks.dager): the span property in closed form (dL/dW = X^T Delta, inputs in the
span, others not); exact recovery of planted batches of 1, 2 and 4 records from a tiny GPT-2's
gradient (full fine-tuning and LoRA), padding and shared prefixes included; a clear error when
the batch fills the width (B x T >= d); bad parameters; end to end through the CLI."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from attacks.dager import DAGER, LAYER1, _layer1_inputs
from attacks.gradient_span import input_space, layer_spans, row_span
from attacks.gradient_matching import attack_copy
from audit.cli.main import main
from audit.core.attack import AttackView
from audit.core.errors import InvalidParameterError
from audit.core.threat_model import create_threat_model
from audit.core.updates import ClientData, LocalTraining, UpdateKind
from audit.data.registry import create_dataset
from audit.fl.simulation import local_update
from audit.models.registry import create_model
from audit.models.text_lm import ByteTokenizer

CPU = torch.device("cpu")
T = 12  # records are longer: every item is cut to <bos> + 11 bytes, B (T - 1) <= 44 < 63


def _model(name="tiny-lm", length=T, **params):
    torch.manual_seed(0)
    return create_model(name, input_shape=(length,), num_classes=ByteTokenizer.vocab_size,
                        channel_mean=None, channel_std=None, **params)


def _view(model, ids, training=LocalTraining()):
    update = local_update(model, ClientData(ids, ByteTokenizer().targets(ids)), training, client_id=0, round=0)
    return AttackView(create_threat_model("hbc-server"), model, update, training, len(ids),
                      (ids.shape[1],), ByteTokenizer.vocab_size)


def _records(items, length=T):
    ds = create_dataset("records", num_items=16, length=length, clients=1, canaries=0)
    return ds.images[items]


def _run(view, **params):
    return DAGER(**params).run(view, generator=torch.Generator().manual_seed(0), device=CPU)


def test_first_layer_gradient_is_inputs_times_output_gradient_and_spans_the_inputs():
    model = _model()
    ids = _records([0, 1, 2])
    captured = {}
    module = dict(model.named_modules())[LAYER1]
    hook = module.register_forward_hook(lambda m, args, out: captured.update(x=args[0], y=out))
    out = model(ids)
    hook.remove()
    captured["y"].retain_grad()
    loss = nn.functional.cross_entropy(out, ByteTokenizer().targets(ids))
    loss.backward()
    x = captured["x"].reshape(-1, captured["x"].shape[-1]).detach().double()
    delta = captured["y"].grad.reshape(-1, captured["y"].shape[-1]).double()
    grad = module.weight.grad.double()
    torch.testing.assert_close(grad, x.T @ delta, rtol=1e-5, atol=1e-9)  # dL/dW = X^T Delta (Conv1D)

    copy, _ = attack_copy(model, CPU)
    spans = layer_spans(copy, LAYER1, {f"{LAYER1}.weight": module.weight.grad}, 1e-7)
    (span,) = spans
    # ln_1 has beta = 0 at init: its outputs fill a hyperplane (63 of 64 dimensions)
    assert span.space == 63 and span.usable
    inputs = _layer1_inputs(copy.lm, T, ByteTokenizer.vocab_size, CPU)
    visible = [(t, int(v)) for row in ids for t, v in enumerate(row[:-1])]  # the last position has no target
    assert span.rank <= len(set(visible)) < 63
    member = torch.stack([inputs[t, v] for t, v in visible])
    assert float(span.distance(member).max()) < 1e-5  # measured ~1e-6
    # the last position (no target, zero gradient) and a token at a position it does not hold
    assert float(span.distance(inputs[T - 1, ids[0, T - 1]].unsqueeze(0))) > 0.05
    assert float(span.distance(inputs[3, 250].unsqueeze(0))) > 0.05


def test_row_span_rank_and_usability():
    basis = torch.linalg.qr(torch.randn(10, 3, dtype=torch.float64))[0]  # 3 directions of R^10
    matrix = torch.randn(20, 3, dtype=torch.float64) @ basis.T  # (20, 10), rank 3
    span = row_span("m", "m.weight", matrix, 1e-7, torch.eye(10, dtype=torch.float64))
    assert (span.rank, span.space, span.usable) == (3, 10, True)
    inside = torch.randn(4, 3, dtype=torch.float64) @ basis.T
    assert float(span.distance(inside).max()) < 1e-12
    full = row_span("m", "m.weight", torch.randn(20, 10, dtype=torch.float64), 1e-7, torch.eye(10, dtype=torch.float64))
    assert (full.rank, full.usable) == (10, False)  # a full-rank gradient tells nothing
    ln = nn.LayerNorm(10)
    assert input_space(ln, 10, CPU).shape == (10, 9)  # beta = 0: a hyperplane
    with torch.no_grad():
        ln.bias.fill_(0.3)
    assert input_space(ln, 10, CPU).shape == (10, 10)


@pytest.mark.parametrize("items", [[0], [3, 7], [0, 1, 2, 3], [4, 9, 10, 15]])
def test_dager_recovers_a_batch_of_records_exactly(items):
    ids = _records(items)
    result = _run(_view(_model(), ids))
    assert sorted(result.tokens) == sorted(ids.tolist())  # exact, every token of every record
    assert result.stats["filled_sequences"] == 0.0
    assert result.stats["last_token_residual"] < 1e-4 and result.stats["gradient_relative_error"] < 1e-4


def test_dager_with_padding_and_shared_prefixes():
    texts = ["abc", "abcdef", "Hi", "Hi"]  # "abc" ends where "abcdef" goes on; a duplicate record
    ids, _ = ByteTokenizer().batch_encode(texts, T)
    result = _run(_view(_model(), ids))
    assert sorted(result.tokens) == sorted(ids.tolist())
    # "abc" is hidden behind "abcdef" and one "Hi" behind the other: 2 found, 2 filled
    assert result.stats["sequences_found"] == 2.0 and result.stats["filled_sequences"] == 2.0


def test_dager_from_lora_gradients_with_a_wide_rank():
    ids = _records([0, 5])
    model = _model("tiny-lm-lora", r=64)
    view = _view(model, ids)
    assert all(float(view.target.tensors[n].abs().max()) == 0.0 for n in view.target.tensors if "lora_A" in n)
    result = _run(view)  # dL/dB (with A x) carries the span at round 0
    assert sorted(result.tokens) == sorted(ids.tolist())
    with pytest.raises(InvalidParameterError, match="rank-deficient first-layer.*lora_B.*rank 8 of 8"):
        _run(_view(_model("tiny-lm-lora"), ids))  # r = 8 < 2 x 11 positions


def test_dager_says_so_when_the_batch_fills_the_width():
    ids = _records([0, 1, 2, 3], length=20)  # 4 x 19 = 76 positions >= 63
    with pytest.raises(InvalidParameterError, match=r"rank-deficient prefix.*batch 4 x length 20.*rank 63 of 63"):
        _run(_view(_model(length=20), ids))
    narrow = _model(length=20, hidden=16, heads=2)  # 19 positions >= 15 at batch 1
    with pytest.raises(InvalidParameterError, match=r"rank-deficient first-layer.*hidden size 16"):
        _run(_view(narrow, ids[:1]))


def test_dager_one_step_model_delta_is_exact_and_a_multi_step_one_approximate():
    ids = _records([1, 2])
    delta = LocalTraining(steps=1, lr=0.1, kind=UpdateKind.MODEL_DELTA)
    assert sorted(_run(_view(_model(), ids, delta)).tokens) == sorted(ids.tolist())
    fedavg = LocalTraining(steps=2, lr=0.1, kind=UpdateKind.MODEL_DELTA)
    # the inputs drift between local steps: flagged approximate (measured: not exact at B 1-2)
    assert _run(_view(_model(), ids, fedavg)).stats["approximate_gradient"] == 1.0
    adam = LocalTraining(steps=1, lr=0.1, kind=UpdateKind.MODEL_DELTA, optimizer="adam")
    with pytest.raises(InvalidParameterError, match="optimizer='adam'"):
        _run(_view(_model(), ids, adam))


@pytest.mark.parametrize("params, name", [({"rank_tol": 0}, "rank_tol"), ({"rank_tol": 1}, "rank_tol"),
                                          ({"tau": -1}, "tau"), ({"prefix_tau": "x"}, "prefix_tau")])
def test_bad_parameters_are_named(params, name):
    with pytest.raises(InvalidParameterError, match=f"'{name}'"):
        DAGER.from_params(**params)


def test_unknown_parameter_round_trip_and_non_text_view():
    with pytest.raises(InvalidParameterError, match="'threshold'"):
        DAGER.from_params(threshold=1)
    dager = DAGER.from_params(rank_tol="1e-6", tau=0.001, prefix_tau=0.01)
    assert dager.params() == {"rank_tol": 1e-6, "tau": 0.001, "prefix_tau": 0.01}
    assert DAGER.from_params(**dager.params()).params() == dager.params()
    assert (DAGER.name, DAGER.family) == ("dager", "text-inversion")
    view = _view(_model(), _records([0]))
    image = AttackView(view.threat_model, view.model, view.target, view.local_training, 1, (3, 8, 8), 259)
    with pytest.raises(InvalidParameterError, match="'input_shape'"):
        _run(image)


def test_cli_audit_with_dager_on_records(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["list"])
    assert exc.value.code == 0
    listed = capsys.readouterr().out
    assert "dager" in listed and "lamp" in listed
    argv = ["audit", "--dataset", "records", "--dataset-param", "num_items=16", "--dataset-param",
            f"length={T}", "--model", "tiny-lm", "--num-targets", "2", "--batch-size", "2", "--seed", "0",
            "--defense", "fedsgd", "--attack", "dager", "--out", str(tmp_path), "--no-lpips"]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0, capsys.readouterr().err
    finding = json.loads((tmp_path / "report.json").read_text())["findings"][0]
    metrics = {m["name"]: m for m in finding["metrics"]}
    # measured: token accuracy and ROUGE-1/2/L 1.00 on both clients (baseline accuracy 0.05)
    assert metrics["token_accuracy"]["per_item"] == [1.0, 1.0]
    assert metrics["rougeL"]["mean"] == 1.0 > metrics["rougeL"]["baseline"]["mean"]
    assert finding["attack"]["name"] == "dager"
