"""Defenses and baselines. One module per defense, one registry line each below."""

from audit.defense import DEFENSES
from defenses.dp_fedavg import DPFedAvg
from defenses.fedavg import FedAvg, FedSGD
from defenses.fedre import FedRE
from defenses.uniform_ldp import UniformLDP

DEFENSES.register("fedsgd", FedSGD.from_params, summary="undefended FedSGD: one gradient per client and round")
DEFENSES.register("fedavg", FedAvg.from_params, summary="undefended FedAvg: E local SGD steps, model deltas averaged")
DEFENSES.register("dp-fedavg", DPFedAvg.from_params, summary="client-level DP-FedAvg: L2 clipping + Gaussian noise, local or central")
DEFENSES.register("fedre", FedRE.from_params, summary="FedRE: layer-wise local DP with PSI-guided budgets, perturbation-aware aggregation")
DEFENSES.register("uniform-ldp", UniformLDP.from_params, summary="layer-wise local DP, budget even over layers (FedRE's baseline)")

__all__ = ["DEFENSES", "DPFedAvg", "FedAvg", "FedRE", "FedSGD", "UniformLDP"]
