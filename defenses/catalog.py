"""fedaudit's own defenses: the ``builtin`` entry point of group ``fedaudit.defenses``.

One line per defense; another package adds its own through an entry point of the same
group (see :mod:`audit.core.registry`)."""

from __future__ import annotations

from audit.core.registry import Registry
from defenses.deer import DEeR
from defenses.dp_fedavg import DPFedAvg
from defenses.dr_encoder import DREncoder
from defenses.fedavg import FedAvg, FedSGD
from defenses.fedit_lora import FedITLoRA
from defenses.fedqsn import FedQSN
from defenses.fedre import FedRE
from defenses.ffa_lora import FFALoRA
from defenses.flower_builtin import flower_dp_client_clipping, flower_dp_server_clipping, flower_local_dp
from defenses.gradient_pruning import GradientPruning
from defenses.qsgd import QSGD
from defenses.sign_sgd import SignSGD
from defenses.top_k import TopK
from defenses.uniform_ldp import UniformLDP


def register(registry: Registry) -> None:
    """Register fedaudit's defenses."""
    registry.register("fedsgd", FedSGD.from_params, summary="undefended FedSGD: one gradient per client and round")
    registry.register("fedavg", FedAvg.from_params, summary="undefended FedAvg: E local SGD steps, model deltas averaged")
    registry.register("dp-fedavg", DPFedAvg.from_params, summary="client-level DP-FedAvg: L2 clipping + Gaussian noise, local or central")
    registry.register("fedre", FedRE.from_params, summary="FedRE: layer-wise local DP with PSI-guided budgets, perturbation-aware aggregation")
    registry.register("deer", DEeR.from_params, summary="DEeR: federated LoRA, alternating B/A phases, DP noise mapped through the frozen peer")
    registry.register("dr-encoder", DREncoder.from_params, summary="DR-Encoder: LoRA updates encoded by an autoencoder trained on synthetic gradients, code clipped and noised")
    registry.register("fedqsn", FedQSN.from_params, summary="FedQSN: clients get only a masked (hidden units), NF-quantized proxy of the global model; no DP claim")
    registry.register("fedit-lora", FedITLoRA.from_params, summary="DP federated LoRA, A and B trained and noised together (DEeR's baseline)")
    registry.register("ffa-lora", FFALoRA.from_params, summary="DP FFA-LoRA: A frozen, B trained and noised (DEeR's baseline)")
    registry.register("flower-dp-client-clipping", flower_dp_client_clipping, summary="Flower's central DP wrapper with client-side fixed clipping (needs the [flower] extra)")
    registry.register("flower-dp-server-clipping", flower_dp_server_clipping, summary="Flower's central DP wrapper with server-side fixed clipping (needs the [flower] extra)")
    registry.register("flower-local-dp", flower_local_dp, summary="FedAvg with Flower's LocalDpMod on every client (needs the [flower] extra)")
    registry.register("uniform-ldp", UniformLDP.from_params, summary="layer-wise local DP, budget even over layers (FedRE's baseline)")
    registry.register("top-k-sparsification", TopK.from_params, summary="top-k sparsification: each client sends its k largest-magnitude update entries; no DP claim")
    registry.register("gradient-pruning", GradientPruning.from_params, summary="gradient pruning (Zhu et al. 2019's defense): smallest-magnitude share of each update zeroed; no DP claim")
    registry.register("qsgd", QSGD.from_params, summary="QSGD (Alistarh et al. 2017): unbiased stochastic quantisation to 2^bits-1 levels per bucket norm; no DP claim")
    registry.register("signsgd", SignSGD.from_params, summary="signSGD with majority vote (Bernstein et al. 2018): clients send signs, server a scaled vote; no DP claim")
