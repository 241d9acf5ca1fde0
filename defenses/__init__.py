"""Defenses and baselines. One module per defense, one registry line each below."""

from audit.defense import DEFENSES
from defenses.deer import DEeR
from defenses.dp_fedavg import DPFedAvg
from defenses.dr_encoder import DREncoder
from defenses.fedavg import FedAvg, FedSGD
from defenses.fedit_lora import FedITLoRA
from defenses.fedqsn import FedQSN
from defenses.fedre import FedRE
from defenses.ffa_lora import FFALoRA
from defenses.flower_builtin import flower_dp_client_clipping, flower_dp_server_clipping, flower_local_dp
from defenses.flower_strategy import FlowerDefense
from defenses.uniform_ldp import UniformLDP

DEFENSES.register("fedsgd", FedSGD.from_params, summary="undefended FedSGD: one gradient per client and round")
DEFENSES.register("fedavg", FedAvg.from_params, summary="undefended FedAvg: E local SGD steps, model deltas averaged")
DEFENSES.register("dp-fedavg", DPFedAvg.from_params, summary="client-level DP-FedAvg: L2 clipping + Gaussian noise, local or central")
DEFENSES.register("fedre", FedRE.from_params, summary="FedRE: layer-wise local DP with PSI-guided budgets, perturbation-aware aggregation")
DEFENSES.register("deer", DEeR.from_params, summary="DEeR: federated LoRA, alternating B/A phases, DP noise mapped through the frozen peer")
DEFENSES.register("dr-encoder", DREncoder.from_params, summary="DR-Encoder: LoRA updates encoded by an autoencoder trained on synthetic gradients, code clipped and noised")
DEFENSES.register("fedqsn", FedQSN.from_params, summary="FedQSN: clients get only a masked (hidden units), NF-quantized proxy of the global model; no DP claim")
DEFENSES.register("fedit-lora", FedITLoRA.from_params, summary="DP federated LoRA, A and B trained and noised together (DEeR's baseline)")
DEFENSES.register("ffa-lora", FFALoRA.from_params, summary="DP FFA-LoRA: A frozen, B trained and noised (DEeR's baseline)")
DEFENSES.register("flower-dp-client-clipping", flower_dp_client_clipping, summary="Flower's central DP wrapper with client-side fixed clipping (needs the [flower] extra)")
DEFENSES.register("flower-dp-server-clipping", flower_dp_server_clipping, summary="Flower's central DP wrapper with server-side fixed clipping (needs the [flower] extra)")
DEFENSES.register("flower-local-dp", flower_local_dp, summary="FedAvg with Flower's LocalDpMod on every client (needs the [flower] extra)")
DEFENSES.register("uniform-ldp", UniformLDP.from_params, summary="layer-wise local DP, budget even over layers (FedRE's baseline)")

__all__ = ["DEFENSES", "DEeR", "DPFedAvg", "DREncoder", "FFALoRA", "FedAvg", "FedITLoRA", "FedQSN", "FedRE", "FlowerDefense", "FedSGD",
           "UniformLDP"]
