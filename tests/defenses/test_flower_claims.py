"""What Flower's DP pieces claim, what they do, and the mismatches between the two, each
shown here. The empirical tests are Clopper-Pearson lower bounds at 95% confidence (a false
VIOLATION has probability <= 5% when the claim holds), seeded, so CI is deterministic."""

import math

import numpy as np
import pytest
import torch

pytest.importorskip("flwr")

from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict  # noqa: E402
from flwr.client.mod.utils import make_ffn  # noqa: E402
from flwr.clientapp.mod import LocalDpMod  # noqa: E402
from flwr.serverapp import PrivacyConfig, RdpAccountant  # noqa: E402
from flwr.supercore.privacy_accounting import (  # noqa: E402
    GaussianPrivacyEvent,
    NeighboringRelation,
    SamplingMethod,
)

from audit.core.defense import DEFENSES, FederationSchedule  # noqa: E402
from audit.fl.flower_runtime import flower_call  # noqa: E402
from audit.privacy.auditing.defense_audit import estimate, verdict  # noqa: E402
from audit.core.updates import ModelUpdate, UpdateKind  # noqa: E402
from defenses.flower_claims import local_dp_noise_std  # noqa: E402


def _update(values, client=0, n=1):
    return ModelUpdate(UpdateKind.MODEL_DELTA, {"w": torch.as_tensor(values, dtype=torch.float64)},
                       client_id=client, round=0, num_examples=n)


def _mod_reply(mod, sent, returned):
    """Run one Flower mod on a TRAIN message carrying ``sent``, the ClientApp returning ``returned``."""
    msg = Message(RecordDict({"arrays": ArrayRecord({"w": Array(np.asarray(sent, dtype=np.float64))})}),
                  dst_node_id=1, message_type="train")

    def app(m, ctx):
        return Message(RecordDict({"arrays": ArrayRecord({"w": Array(np.asarray(returned, dtype=np.float64))}),
                                   "metrics": MetricRecord({"num-examples": 1})}), reply_to=m)

    ctx = Context(run_id=0, node_id=1, node_config={}, state=RecordDict(), run_config={})
    return make_ffn(app, [mod])(msg, ctx)


def _weighted_round(defense, weights):
    gen = torch.Generator().manual_seed(0)
    obs = [defense.client_side(_update(torch.randn(5, generator=gen), k, n), generator=gen)
           for k, n in enumerate(weights)]
    defense.server_side(obs, generator=gen)


def _central_after_round(weights, **params):
    """A client-clipping wrapper (z = 2) after one round with these example weights."""
    d = DEFENSES.create("flower-dp-client-clipping", noise_multiplier=2.0, **params)
    s = FederationSchedule(len(weights), len(weights), 1)
    d.prepare(s)
    _weighted_round(d, weights)
    return d, s, d.claim(s)


# -- central wrappers -----------------------------------------------------------------------

def test_flowers_claim_equals_flowers_own_rdp_accountant():
    d = DEFENSES.create("flower-dp-client-clipping", noise_multiplier=2.0)
    s = FederationSchedule(3, 3, 1)
    d.prepare(s)
    acct = RdpAccountant(PrivacyConfig(target_delta=1e-5, population_size=3,
                                       neighboring_relation=NeighboringRelation.ADD_OR_REMOVE_ONE,
                                       sampling_method=SamplingMethod.NO_AMPLIFICATION))
    acct.compose(GaussianPrivacyEvent(noise_multiplier=2.0, sample_size=3, population_size=3))
    assert d.claim(s).epsilon == pytest.approx(acct.get_privacy_spent().epsilon, rel=1e-6)
    # with Flower's accountant on, the claim is the accountant's own number after the run
    on = DEFENSES.create("flower-dp-client-clipping", noise_multiplier=2.0, accountant=True)
    on.prepare(s)
    with flower_call(None):
        _weighted_round(on, [4, 4, 4])
    assert on.claim(s).epsilon == pytest.approx(acct.get_privacy_spent().epsilon, rel=1e-6)
    assert "RdpAccountant" in on.claim(s).accountant


def test_mismatch_example_weights_shrink_the_noise_as_run():
    """FedAvg weights clients by examples, the noise stays zC/m: z_eff = z sum(w) / (m max w)."""
    d, s, claim = _central_after_round([10, 10, 980])
    assert "effective noise multiplier 0.6803" in claim.statement
    (as_run,) = claim.alternatives
    assert as_run.epsilon > 3 * claim.epsilon


def test_mismatch_example_weights_violate_flowers_claim_empirically():
    d, s, claim = _central_after_round([1, 1, 1, 997])  # z_eff = 2 * 1000 / (4 * 997) = 0.50
    est = estimate(d, s, claim, "cp", trials=3000, seed=0)
    assert verdict(claim, est).verdict == "VIOLATION", (est.epsilon, claim.epsilon)
    assert est.epsilon <= claim.alternatives[0].epsilon  # the as-run claim holds


def test_equal_weights_pass_flowers_claim_empirically():
    d, s, claim = _central_after_round([5, 5, 5])
    assert not claim.statement.count("Mismatch")
    assert verdict(claim, estimate(d, s, claim, "cp", trials=2000, seed=0)).verdict == "PASS"


def test_mismatch_client_side_wrapper_without_its_mod_never_clips():
    strategy_defense = DEFENSES.create("flower-dp-client-clipping", noise_multiplier=2.0, client_mod=False)
    s = FederationSchedule(3, 3, 1)
    strategy_defense.prepare(s)
    claim = strategy_defense.claim(s)
    assert "no client clips its update" in claim.statement and not claim.alternatives
    est = estimate(strategy_defense, s, claim, "cp", trials=1000, seed=0)
    assert verdict(claim, est).verdict == "VIOLATION" and est.epsilon > 4  # 1000 trials cap it near 5


def test_mismatch_flowers_clipping_fails_on_an_exactly_zero_update():
    with flower_call(None), pytest.raises(ZeroDivisionError):
        _mod_reply(LocalDpMod(1.0, 2.0, 1.0, 1e-5), [1.0, 2.0], [1.0, 2.0])


# -- LocalDpMod -------------------------------------------------------------------------------

def test_local_dp_mod_noise_is_the_classic_formula_with_sensitivity_not_2c():
    """Measured: the mod's noise std is s sqrt(2 ln(1.25/delta)) / epsilon, with s as given
    (here s = C), half what replace-one local DP of a C-clipped update needs (2C)."""
    mod = LocalDpMod(clipping_norm=1.0, sensitivity=1.0, epsilon=1.0, delta=1e-5)
    with flower_call(torch.Generator().manual_seed(0)):
        outs = [np.asarray(_mod_reply(mod, np.zeros(200), np.full(200, 0.001)).content["arrays"]["w"].numpy())
                for _ in range(10)]
    measured = float(np.std(np.concatenate(outs)))
    sigma = local_dp_noise_std(sensitivity=1.0, epsilon_=1.0, delta=1e-5)
    assert sigma == pytest.approx(math.sqrt(2 * math.log(1.25e5)))
    assert measured == pytest.approx(sigma, rel=0.05)
    d = DEFENSES.create("flower-local-dp", clipping_norm=1.0, sensitivity=1.0, epsilon=1.0, delta=1e-5)
    claim = d.claim(FederationSchedule(2, 2, 1))
    assert "below the replace-one sensitivity 2C = 2" in claim.statement
    assert claim.alternatives[0].epsilon == pytest.approx(1.6103, abs=1e-3)  # as run, > 1 claimed


def test_mismatch_sensitivity_zero_adds_no_noise_yet_claims_epsilon():
    d = DEFENSES.create("flower-local-dp", clipping_norm=1.0, sensitivity=0.0, epsilon=1.0)
    s = FederationSchedule(2, 2, 1)
    d.prepare(s)
    claim = d.claim(s)
    assert claim.epsilon == 1.0 and "no noise is added at all" in claim.statement
    est = estimate(d, s, claim, "cp", trials=1000, seed=0)
    assert verdict(claim, est).verdict == "VIOLATION" and est.epsilon > 4  # 1000 trials cap it near 5


def test_sensitivity_2c_passes_its_claim():
    d = DEFENSES.create("flower-local-dp", clipping_norm=1.0, sensitivity=2.0, epsilon=0.9)
    s = FederationSchedule(2, 2, 1)
    d.prepare(s)
    claim = d.claim(s)
    assert "Mismatch" not in claim.statement
    assert claim.alternatives[0].epsilon <= claim.epsilon  # as run, the stated epsilon holds
    assert verdict(claim, estimate(d, s, claim, "cp", trials=2000, seed=0)).verdict == "PASS"


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_mismatch_flower_accepts_local_dp_values_it_cannot_run_with():
    """Flower's constructor accepts epsilon 0, delta 0 and delta 2; a message then gives
    inf weights, a ZeroDivisionError, or NaN weights. fedaudit refuses them (see
    test_flower_defense.py)."""
    with flower_call(torch.Generator().manual_seed(0)):
        inf = _mod_reply(LocalDpMod(1.0, 1.0, 0.0, 1e-5), [0.0], [0.5]).content["arrays"]["w"].numpy()
        with pytest.raises(ZeroDivisionError):
            _mod_reply(LocalDpMod(1.0, 1.0, 1.0, 0.0), [0.0], [0.5])
        nan = _mod_reply(LocalDpMod(1.0, 1.0, 1.0, 2.0), [0.0], [0.5]).content["arrays"]["w"].numpy()
    assert not np.isfinite(inf).all() and np.isnan(nan).all()


def test_canaries_do_not_charge_the_runs_own_flower_accountant():
    d = DEFENSES.create("flower-dp-client-clipping", noise_multiplier=2.0, accountant=True)
    s = FederationSchedule(3, 3, 1)
    d.prepare(s)
    _weighted_round(d, [4, 4, 4])
    before = d.claim(s).epsilon
    estimate(d, s, d.claim(s), "cp", trials=200, seed=0)
    assert d.strategy.privacy_spent().num_releases == 1 and d.claim(s).epsilon == before
