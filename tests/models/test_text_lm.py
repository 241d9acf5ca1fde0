"""The causal LM stack (audit.models.text_lm): byte tokenizer, (N, V, T) logits, LoRA on GPT-2's Conv1D
and embedding, the pre-training switch, local checkpoints, errors, a federated LoRA update;
tiny configs, nothing downloaded."""

import math

import pytest
import torch
from torch import nn

from audit.data.registry import create_dataset
from audit.core.errors import InvalidParameterError
from audit.models.registry import create_model
from audit.fl.pretraining import pretrain
from audit.fl.simulation import local_update
from audit.models.text_lm import ByteTokenizer, CausalLM, save_checkpoint
from audit.core.updates import ClientData, LocalTraining, UpdateKind
from audit.models.lora import lora_pairs

T = 16
HIDDEN = 32
TINY = dict(hidden=HIDDEN, layers=2, heads=4)
TOK = ByteTokenizer()
TEXTS = ["Call Jane Roe at 555-0100.", "Grüße aus Köln, ça va? 日本", "x" * 40]
IDS, TARGETS = TOK.batch_encode(TEXTS, T)


def make(name="tiny-lm-lora", *, seed=0, length=T, num_classes=259, **params):
    torch.manual_seed(seed)
    return create_model(name, input_shape=(length,), num_classes=num_classes, channel_mean=(0.0,),
                        channel_std=(1.0,), **{**TINY, **params})


def base_state(model):
    """Base parameters (no LoRA), keyed by the name they have without LoRA."""
    lora = {n for p in lora_pairs(model) for n in (p.a, p.b)} if model.has_lora else set()
    return {n.replace(".base_layer", ""): p.detach().clone()
            for n, p in model.named_parameters() if n not in lora}


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- tokenizer ---------------------------------------------------------------------------------


def test_tokenizer_round_trip_with_non_ascii():
    for text in ["", "hello", "Grüße, ça va? 日本語 🙂", "line\nbreak\ttab"]:
        ids = TOK.encode(text)
        assert ids[0] == TOK.BOS and ids[-1] == TOK.EOS and all(0 <= i < 256 for i in ids[1:-1])
        assert len(ids) == len(text.encode("utf-8")) + 2
        assert TOK.decode(ids) == text
        assert TOK.decode(torch.tensor(ids)) == text
    assert TOK.vocab_size == 259 and (TOK.PAD, TOK.BOS, TOK.EOS) == (256, 257, 258)
    cut = TOK.encode("äb", max_len=2)  # <bos> and the first byte of 'ä' only
    assert cut == [TOK.BOS, "ä".encode()[0]] and TOK.decode(cut) == "\ufffd"


def test_batch_encode_pads_and_shifts_targets():
    ids, targets = TOK.batch_encode(["ab", "abcdefgh"], 6)
    assert ids.dtype == targets.dtype == torch.long and ids.shape == targets.shape == (2, 6)
    assert ids[0].tolist() == [257, 97, 98, 258, 256, 256]
    assert targets[0].tolist() == [97, 98, 258, -100, -100, -100]
    assert ids[1].tolist() == [257, 97, 98, 99, 100, 101]  # cut: no <eos>
    assert targets[1].tolist() == [97, 98, 99, 100, 101, -100]
    assert torch.equal(TOK.targets(ids), targets)
    again = TOK.batch_encode(["ab", "abcdefgh"], 6)
    assert torch.equal(again[0], ids) and torch.equal(again[1], targets)


# -- model -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tiny-lm", "tiny-lm-lora"])
def test_logits_are_n_v_t_and_the_loss_is_finite(name):
    m = make(name)
    assert isinstance(m, CausalLM)
    out = m(IDS)
    assert out.shape == (3, 259, T)
    loss = float(nn.functional.cross_entropy(out, TARGETS).detach())
    assert math.isfinite(loss) and abs(loss - math.log(259)) < 1.0  # near uniform at init
    assert m.lm.config._attn_implementation == "eager"


def test_logprob_is_the_summed_next_token_log_likelihood():
    m = make("tiny-lm")
    with torch.no_grad():
        lp = m.generate_logprob(IDS)
        ce = nn.functional.cross_entropy(m(IDS), TARGETS, reduction="none").sum(dim=1)
    assert lp.shape == (3,)
    assert torch.allclose(lp, -ce, atol=1e-4)


def test_padding_does_not_change_the_logits_of_the_text():
    m = make("tiny-lm", length=24)
    short, _ = TOK.batch_encode(["hello"], 10)
    long, _ = TOK.batch_encode(["hello"], 24)
    with torch.no_grad():
        assert torch.allclose(m(short)[..., :7], m(long)[..., :7], atol=1e-5)


def test_lora_at_init_leaves_the_base_model_unchanged():
    base = make("tiny-lm")
    lora = make("tiny-lm-lora", targets="attention,embedding,mlp")
    assert same(base_state(base), base_state(lora))
    with torch.no_grad():
        assert torch.equal(base(IDS), lora(IDS))
    assert all(not lora.get_parameter(p.b).any() for p in lora_pairs(lora))
    assert all(lora.get_parameter(p.a).abs().sum() > 0 for p in lora_pairs(lora))


def test_only_lora_is_trainable_with_the_right_shapes():
    m = make("tiny-lm-lora", r=4, alpha=8)
    pairs = lora_pairs(m)
    assert [p.module for p in pairs] == [f"lm.transformer.h.{i}.attn.c_attn" for i in range(2)]
    params = dict(m.named_parameters())
    for p in pairs:  # GPT-2's Conv1D (fan_in_fan_out), yet nn.Linear-shaped LoRA factors
        assert p.a.endswith(".lora_A.default.weight") and p.b.endswith(".lora_B.default.weight")
        assert params[p.a].shape == (4, HIDDEN) and params[p.b].shape == (3 * HIDDEN, 4)
        assert p.scaling == pytest.approx(8 / 4)
    trainable = {n for n, p in params.items() if p.requires_grad}
    assert trainable == {n for p in pairs for n in (p.a, p.b)}
    assert all(p.requires_grad for p in make("tiny-lm").parameters())


def test_embedding_and_mlp_targets_add_lora_pairs():
    m = make("tiny-lm-lora", r=4, targets="attention,embedding,mlp")
    pairs = {p.module: p for p in lora_pairs(m)}
    emb = pairs["lm.transformer.wte"]
    assert emb.a == "lm.transformer.wte.lora_embedding_A.default"
    assert m.get_parameter(emb.a).shape == (4, 259) and m.get_parameter(emb.b).shape == (HIDDEN, 4)
    fc = pairs["lm.transformer.h.0.mlp.c_fc"]
    assert m.get_parameter(fc.a).shape == (4, HIDDEN) and m.get_parameter(fc.b).shape == (4 * HIDDEN, 4)
    assert len(pairs) == 1 + 2 * 2
    trainable = {n for n, p in m.named_parameters() if p.requires_grad}
    assert trainable == {n for p in pairs.values() for n in (p.a, p.b)}
    # a step on the embedding LoRA alone changes the outputs (A is not zero, so B learns)
    before = m(IDS).detach()
    loss = nn.functional.cross_entropy(m(IDS), TARGETS)
    (grad,) = torch.autograd.grad(loss, [m.get_parameter(emb.b)])
    assert grad.abs().sum() > 0
    with torch.no_grad():
        m.get_parameter(emb.b).sub_(1.0 * grad)
        assert not torch.allclose(before, m(IDS))


def test_pretraining_trains_the_base_not_lora_and_restores_flags():
    d = create_dataset("records", num_items=24, length=T, clients=2, canaries=1, canary_repeats=2)
    m = make("tiny-lm-lora", targets="attention,embedding")
    flags = {n: p.requires_grad for n, p in m.named_parameters()}
    lora = {n for p in lora_pairs(m) for n in (p.a, p.b)}
    with m.pretraining() as inside:
        assert inside is m
        assert all(p.requires_grad == (n not in lora) for n, p in m.named_parameters())
    assert flags == {n: p.requires_grad for n, p in m.named_parameters()}
    base = base_state(m)
    lora_before = {n: m.get_parameter(n).detach().clone() for n in lora}
    stats = pretrain(m, d, steps=3, batch_size=8, seed=0)
    assert stats["steps"] == 3 and math.isfinite(stats["final_loss"])
    assert 0.0 <= stats["train_accuracy"] <= 1.0
    after = base_state(m)
    assert not torch.equal(base["lm.transformer.wte.weight"], after["lm.transformer.wte.weight"])
    assert all(torch.equal(v, m.get_parameter(n)) for n, v in lora_before.items())
    assert flags == {n: p.requires_grad for n, p in m.named_parameters()}


def test_checkpoint_round_trip(tmp_path):
    base = make("tiny-lm", seed=5)
    with torch.no_grad():  # a non-random feature, to be sure weights come from the file
        base.get_parameter("lm.transformer.ln_f.bias").add_(1.0)
    save_checkpoint(base, tmp_path)
    loaded = make("tiny-lm-lora", seed=123, hidden=64, checkpoint=str(tmp_path))
    assert loaded.lm.config.n_embd == HIDDEN  # architecture from the checkpoint
    assert loaded.lm.config._attn_implementation == "eager"
    assert same(base_state(base), base_state(loaded))
    assert all(not p.requires_grad for n, p in loaded.named_parameters() if "lora_" not in n)
    with torch.no_grad():
        assert torch.equal(base(IDS), loaded(IDS))
    shorter = make("tiny-lm", length=T // 2, checkpoint=str(tmp_path))  # n_positions >= T suffices
    assert shorter(IDS[:, : T // 2]).shape == (3, 259, T // 2)
    with pytest.raises(InvalidParameterError, match="save the base before"):
        save_checkpoint(loaded, tmp_path / "again")


@pytest.mark.parametrize(
    "params, needle",
    [({"r": 0}, "'r'.*Got 0"),
     ({"checkpoint": "/nonexistent/lm"}, "'checkpoint'.*no such directory"),
     ({"hidden": 30, "heads": 4}, "'hidden'.*30"),
     ({"targets": "attention,lm_head"}, "'targets'.*lm_head"),
     ({"targets": "attention,attention"}, "'targets'"),
     ({"alpha": 0}, "'alpha'"),
     ({"num_classes": 100}, "'num_classes'.*100"),
     ({"length": 1}, "'input_shape'"),
     ({"depth": 3}, "depth")],
)
def test_bad_params(params, needle):
    with pytest.raises(InvalidParameterError, match=needle):
        make("tiny-lm-lora", **params)


def test_checkpoint_must_match_the_data(tmp_path):
    save_checkpoint(make("tiny-lm"), tmp_path / "ck")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidParameterError, match="'checkpoint'.*vocab_size=259"):
        make("tiny-lm-lora", num_classes=300, checkpoint=str(tmp_path / "ck"))
    with pytest.raises(InvalidParameterError, match="'checkpoint'.*n_positions=16"):
        make("tiny-lm", length=32, checkpoint=str(tmp_path / "ck"))
    with pytest.raises(InvalidParameterError, match="'checkpoint'.*config.json"):
        make("tiny-lm", checkpoint=str(tmp_path / "empty"))
    (tmp_path / "vit").mkdir()
    (tmp_path / "vit" / "config.json").write_text('{"model_type": "vit"}')
    with pytest.raises(InvalidParameterError, match="'checkpoint'.*model_type='vit'"):
        make("tiny-lm", checkpoint=str(tmp_path / "vit"))


def test_fedavg_update_holds_only_lora_tensors():
    m = make("tiny-lm-lora", targets="attention,embedding")
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    training = LocalTraining(steps=2, lr=0.1, kind=UpdateKind.MODEL_DELTA)
    update = local_update(m, ClientData(IDS, TARGETS), training, client_id=3, round=0)
    assert update.kind is UpdateKind.MODEL_DELTA and update.num_examples == 3
    assert set(update.tensors) == {n for p in lora_pairs(m) for n in (p.a, p.b)}
    assert all(torch.isfinite(t).all() for t in update.tensors.values())
    assert any(t.abs().sum() > 0 for t in update.tensors.values())
    assert all(torch.equal(p, before[n]) for n, p in m.named_parameters())  # broadcast model untouched


def test_double_backward_for_gradient_attacks():
    m = make("tiny-lm-lora")
    params = [p for p in m.parameters() if p.requires_grad]
    grads = torch.autograd.grad(nn.functional.cross_entropy(m(IDS), TARGETS), params, create_graph=True)
    sum((g ** 2).sum() for g in grads).backward()
    assert all(p.grad is not None for p in params)


def test_same_seed_same_weights():
    a, b = make(seed=7), make(seed=7)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
