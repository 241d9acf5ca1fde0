"""Attacks. One module per attack, one registry line each below."""

from attacks.analytic_fc import AnalyticFC
from attacks.autoencoder_reconstruction import AutoencoderReconstruction
from attacks.dlg import DLG, IDLG
from attacks.inverting_gradients import InvertingGradients
from attacks.label_recovery import LabelCountRecovery
from attacks.lira import LiRA
from attacks.loss_threshold import LossThreshold
from attacks.proxy_extraction import ProxyExtraction
from attacks.rmia import RMIA
from attacks.snr_weighted_inverting_gradients import SNRWeightedInvertingGradients
from attacks.tag import TAG
from attacks.token_set_leakage import TokenSetLeakage
from attacks.update_membership import UpdateMembership
from audit.attack import ATTACKS
from audit.validation import strict_factory

ATTACKS.register("inverting-gradients", InvertingGradients.from_params, summary="Inverting Gradients (Geiping et al. 2020): cosine + TV, signed Adam, batched restarts")
ATTACKS.register("snr-inverting-gradients", SNRWeightedInvertingGradients.from_params, summary="adaptive Inverting Gradients: per-layer cosine weighted by each layer's known signal-to-noise (vs layer-wise DP)")
ATTACKS.register("dlg", DLG.from_params, summary="DLG (Zhu et al. 2019): L2 gradient matching with L-BFGS, joint labels")
ATTACKS.register("idlg", IDLG.from_params, summary="iDLG (Zhao et al. 2020): analytic label, then DLG on the images")
ATTACKS.register("llg", LabelCountRecovery.from_params, summary="batch label recovery from the last-layer bias update (LLG-style counts)")
ATTACKS.register("analytic-fc", AnalyticFC.from_params, summary="closed-form input recovery through a fully connected first layer (Phong et al. 2017)")
ATTACKS.register("loss", strict_factory(LossThreshold), summary="LOSS membership attack (Yeom et al. 2018): low loss means member")
ATTACKS.register("lira", strict_factory(LiRA), summary="LiRA (Carlini et al. 2022): per-example Gaussians from shadow models, online/offline")
ATTACKS.register("rmia", strict_factory(RMIA), summary="RMIA (Zarifzadeh et al. 2024): likelihood ratio against population samples")
ATTACKS.register("ae-reconstruction", strict_factory(AutoencoderReconstruction), summary="DR-Encoder codes decoded into the LoRA update (server's decoder, or a shadow autoencoder from the stage-1 statistics), then its token set")
ATTACKS.register("tag", TAG.from_params, summary="TAG (Deng et al. 2021): text from an LM update by matching gradients of soft token inputs (L2 + L1)")
ATTACKS.register("token-set", strict_factory(TokenSetLeakage), summary="the batch's token set from the embedding (or embedding-LoRA) update rows")
ATTACKS.register("proxy-extraction", strict_factory(ProxyExtraction), summary="a client or coalition pools the FedQSN proxies it received over rounds into an estimate of the global model (optionally fine-tuned on its data)")
ATTACKS.register("update-mia", strict_factory(UpdateMembership), summary="update-based membership: candidate gradient vs one client's observed update")

__all__ = ["ATTACKS", "AutoencoderReconstruction", "DLG", "IDLG", "AnalyticFC", "InvertingGradients", "LabelCountRecovery", "LiRA", "LossThreshold",
           "ProxyExtraction", "RMIA", "SNRWeightedInvertingGradients", "TAG", "TokenSetLeakage", "UpdateMembership"]
