"""fedaudit's own attacks: the ``builtin`` entry point of group ``fedaudit.attacks``.

One line per attack; another package adds its own through an entry point of the same
group (see :mod:`audit.core.registry`)."""

from __future__ import annotations

from attacks.analytic_fc import AnalyticFC
from attacks.autoencoder_reconstruction import AutoencoderReconstruction
from attacks.dager import DAGER
from attacks.dlg import DLG, IDLG
from attacks.fedavg_inversion import FedAvgInversion
from attacks.imprint import Imprint
from attacks.inverting_gradients import InvertingGradients
from attacks.label_recovery import LabelCountRecovery
from attacks.lamp import LAMP
from attacks.lira import LiRA
from attacks.loss_threshold import LossThreshold
from attacks.prior_inversion import PriorGuidedInversion
from attacks.proxy_extraction import ProxyExtraction
from attacks.rmia import RMIA
from attacks.snr_weighted_inverting_gradients import SNRWeightedInvertingGradients
from attacks.tag import TAG
from attacks.token_set_leakage import TokenSetLeakage
from attacks.trap_weights import TrapWeights
from attacks.update_membership import UpdateMembership
from audit.core.registry import Registry
from audit.core.validation import strict_factory


def register(registry: Registry) -> None:
    """Register fedaudit's attacks."""
    registry.register("inverting-gradients", InvertingGradients.from_params, summary="Inverting Gradients (Geiping et al. 2020): cosine + TV, signed Adam, batched restarts")
    registry.register("fedavg-inversion", FedAvgInversion.from_params, summary="FedAvg inversion (Dimitrov et al. 2022): unknown minibatch order, per-epoch candidates with an epoch-consistency prior, step-wise label counts")
    registry.register("snr-inverting-gradients", SNRWeightedInvertingGradients.from_params, summary="adaptive Inverting Gradients: per-layer cosine weighted by each layer's known signal-to-noise (vs layer-wise DP)")
    registry.register("dlg", DLG.from_params, summary="DLG (Zhu et al. 2019): L2 gradient matching with L-BFGS, joint labels")
    registry.register("idlg", IDLG.from_params, summary="iDLG (Zhao et al. 2020): analytic label, then DLG on the images")
    registry.register("llg", LabelCountRecovery.from_params, summary="batch label recovery from the last-layer bias update (LLG-style counts)")
    registry.register("analytic-fc", AnalyticFC.from_params, summary="closed-form input recovery through a fully connected first layer (Phong et al. 2017)")
    registry.register("loss", strict_factory(LossThreshold), summary="LOSS membership attack (Yeom et al. 2018): low loss means member")
    registry.register("lira", strict_factory(LiRA), summary="LiRA (Carlini et al. 2022): per-example Gaussians from shadow models, online/offline")
    registry.register("rmia", strict_factory(RMIA), summary="RMIA (Zarifzadeh et al. 2024): likelihood ratio against population samples")
    registry.register("ae-reconstruction", strict_factory(AutoencoderReconstruction), summary="DR-Encoder codes decoded into the LoRA update (server's decoder, or a shadow autoencoder from the stage-1 statistics), then its token set")
    registry.register("tag", TAG.from_params, summary="TAG (Deng et al. 2021): text from an LM update by matching gradients of soft token inputs (L2 + L1)")
    registry.register("dager", DAGER.from_params, summary="DAGER (Petrov et al. 2024): exact batch of sequences from the span of the first layers' weight gradients (B x T < hidden)")
    registry.register("lamp", LAMP.from_params, summary="LAMP (Balunovic et al. 2022): embedding-space gradient matching alternated with token moves scored by an LM prior (the attacked model)")
    registry.register("token-set", strict_factory(TokenSetLeakage), summary="the batch's token set from the embedding (or embedding-LoRA) update rows")
    registry.register("proxy-extraction", strict_factory(ProxyExtraction), summary="a client or coalition pools the FedQSN proxies it received over rounds into an estimate of the global model (optionally fine-tuned on its data)")
    registry.register("update-mia", strict_factory(UpdateMembership), summary="update-based membership: candidate gradient vs one client's observed update")
    registry.register("imprint", Imprint.from_params, summary="malicious server's imprint/binning module (Fowl et al. 2022, Robbing the Fed): exact recovery from large batches and aggregates")
    registry.register("trap-weights", TrapWeights.from_params, summary="malicious server's trap weights in the first FC layer (Boenisch et al. 2023): units fired by one example give it exactly")
    registry.register("gias", PriorGuidedInversion.from_params, summary="prior-guided inversion after GIAS (Jeon et al. 2021): latent then weight search through a decoder trained on the adversary's public split")
