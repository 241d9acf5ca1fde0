"""Membership inference from DR-Encoder's stage-1 statistics: does a client's released
per-layer (mean, std) reveal whether a target record was in its data?

DR-Encoder (Wu et al., arXiv 2412.17053, AAAI-25; :mod:`defenses.dr_encoder`) has every
client send, in stage 1, the mean and the standard deviation of its LoRA update's entries,
per layer, *without noise*, to let the server train the gradient autoencoder; its DP claim
covers only the stage-2 codes (``../shared/specs/defenses.md``, privacy point (a)).
:mod:`attacks.statistics_leakage` shows these statistics give each layer's update norm
exactly; this module asks the membership question of them, with the shadow-model
likelihood-ratio test of LiRA (Carlini, Chien, Nasr, Song, Terzis, Tramer 2022,
"Membership inference attacks from first principles", IEEE S&P).

Threat model: the server (or an eavesdropper on stage 1) observes one client's stage-1
statistics; it knows the broadcast model, the local training schedule
(:class:`audit.core.updates.LocalTraining`, public in DR-Encoder), the client's number of records,
holds *population* records from the client's distribution (not the client's own) and the
candidate record (e.g. a canary secret). This is the usual shadow-model membership
adversary.

Attack: the adversary simulates shadow clients, random draws of population records with
and without the candidate, computes their stage-1 statistics exactly as the defense does
(:func:`defenses.gradient_autoencoder.layer_statistics` on
:func:`audit.fl.simulation.local_update`), fits a Gaussian to the features of the IN shadows
and one to the OUT shadows, and scores a target client's statistics by the log-likelihood
ratio ``log N(x; IN) - log N(x; OUT)`` (higher = member).

Choices of this project:

* **Features**: per layer (a LoRA matrix), the mean and the log of the standard deviation of
  the update's entries (``2 L`` numbers for ``L`` layers; the std is floored at 1e-30 before
  the log, a layer whose update is exactly zero gives a constant feature, which the fit
  drops). Log std because the std is a positive scale (its log is closer to Gaussian and
  shifts additively when the loss grows); the mean because it carries information the norm
  does not. Measured (``tiny-lm-lora``, LoRA on attention and MLP, 12 records, a canary
  once, 200 shadows and 200 targets per side, seeds 0 and 1, pooled model): mean + log std
  gave AUC 0.81 and 0.87, log std alone (or, the same, the log layer norms of
  :mod:`attacks.statistics_leakage`) 0.78 and 0.83.
* **Gaussians** (``covariance``): features are first standardised with the mean and std of
  all shadows (features with zero spread are dropped). ``"pooled"`` (default): one full
  covariance shared by both sides (the within-side residuals, Ledoit-Wolf shrinkage from
  scikit-learn), so the log-likelihood ratio is linear in the features (Fisher's
  discriminant). The per-layer statistics are strongly correlated (every layer's std grows
  with the client's loss), which a diagonal model counts several times over; measured in
  the setting above and at 32 records, the pooled model gave AUC +0.00 to +0.07 over the
  diagonal ones (never less).
  ``"diagonal"``: per-side per-feature means and standard deviations (LiRA's online test,
  features assumed independent); ``"diagonal-fixed"``: one standard deviation per feature
  pooled over both sides (LiRA's fixed-variance variant). Diagonal standard deviations are
  floored at 1e-3 (standardised units), as :mod:`attacks.lira` floors its own.
* **Neighbouring** (``neighbouring``): ``"replace"`` (default): a client always holds
  ``client_size`` records; with the candidate, ``repeats`` copies of it replace as many
  population records (a client's size is public to the server, so the test is on content,
  not on size); ``"add"``: the candidate's copies come on top of ``client_size`` records.
  Every trial is an independent draw; IN and OUT draws are the same mixture of neighbouring
  datasets, so the Clopper-Pearson bound is a bound for the mechanism "stage-1 statistics"
  on replace-``repeats`` (or add-``repeats``) record-level neighbours inside one client.
* **Draws**: the population is split by a seeded permutation into a shadow half and a
  target half, so the target trials' records never appear in a shadow (when each half has
  at least ``client_size`` records; otherwise both use the whole population and the result
  says ``"disjoint_draws": False``). A draw is ``client_size`` (minus the candidate's copies)
  distinct records, without replacement, from its half. ``canary=None`` plays the null
  game: both sides are plain population draws (a calibration check: AUC 0.5 and epsilon 0
  up to sampling error).
* **Outputs**: AUC (with a bootstrap interval), TPR at 1% and 10% FPR and balanced accuracy
  (:func:`audit.metrics.membership.membership_metrics`), beside the trivial baseline (AUC
  0.5, TPR = FPR); a Clopper-Pearson lower bound on epsilon at 95%
  (:func:`audit.privacy.estimators.clopper_pearson_epsilon`, threshold chosen on half the target
  trials) at the given ``delta``; and, labelled as an estimate, a GDP fit
  (:func:`audit.privacy.estimators.gdp_fit_epsilon`). DR-Encoder claims nothing for stage 1, so
  any epsilon is outside its claim; the bound says how much the statistics alone leak.
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from audit.core.errors import InvalidParameterError, invalid
from audit.privacy.estimators import clopper_pearson_epsilon, gdp_fit_epsilon
from audit.metrics.membership import membership_metrics
from audit.fl.simulation import local_update, trained_names
from audit.core.updates import ClientData, LocalTraining
from audit.core.validation import check_interval, check_options
from defenses.gradient_autoencoder import LayerStats, layer_statistics

OWNER = "statistics_membership_game"
COVARIANCES = ("pooled", "diagonal", "diagonal-fixed")
NEIGHBOURINGS = ("replace", "add")
FEATURES_PER_LAYER = ("mean", "log_std")
STD_FLOOR = 1e-30  # before the log: an all-zero layer update gives a (dropped) constant
MIN_STD = 1e-3  # diagonal standard deviations, in standardised units (as attacks.lira)
REPORTED_FPRS = (0.01, 0.1)
THREAT_MODEL = (
    "server or stage-1 eavesdropper: observes one client's per-layer (mean, std) of its LoRA "
    "update (DR-Encoder stage 1, no noise); knows the broadcast model, the local training "
    "schedule, the client's size, the candidate record, and holds population records of the "
    "client's distribution (not the client's own)")


# -- features ------------------------------------------------------------------------------

def feature_names(layers: Sequence[str]) -> list[str]:
    """Names of the features of :func:`statistics_features`, in order."""
    return [f"{n}:{f}" for n in layers for f in FEATURES_PER_LAYER]


def statistics_features(statistics: Mapping[str, LayerStats] | Sequence[Mapping[str, LayerStats]],
                        layers: Sequence[str] | None = None) -> np.ndarray:
    """Features of stage-1 statistics: per layer (in the order of ``layers``, default the
    mapping's order) the mean and the log std (std floored at 1e-30).

    One mapping gives a vector (2 L,); a sequence of mappings a matrix (N, 2 L).
    """
    if isinstance(statistics, Mapping):
        names = list(statistics) if layers is None else list(layers)
        missing = [n for n in names if n not in statistics]
        if missing:
            raise InvalidParameterError(
                f"The statistics must have every layer the features were fitted on. Got none "
                f"for {missing[:3]} instead.")
        return np.array([v for n in names for v in
                         (float(statistics[n].mean), math.log(max(float(statistics[n].std), STD_FLOOR)))],
                        dtype=np.float64)
    rows = list(statistics)
    if not rows:
        raise InvalidParameterError("statistics_features needs at least one set of statistics. Got none.")
    names = list(rows[0]) if layers is None else list(layers)
    return np.stack([statistics_features(s, names) for s in rows])


def statistics_from_observation(tensors: Mapping[str, torch.Tensor]) -> dict[str, LayerStats]:
    """A stage-1 observation of :class:`defenses.dr_encoder.DREncoder` (tensors named
    ``<layer>::mean`` and ``<layer>::std``, one entry each) as layer statistics."""
    out: dict[str, LayerStats] = {}
    for key in tensors:
        if key.endswith("::mean"):
            layer = key[: -len("::mean")]
            std = tensors.get(f"{layer}::std")
            if std is None:
                raise InvalidParameterError(
                    f"A stage-1 observation must carry '<layer>::std' beside '<layer>::mean'. "
                    f"Got no {layer + '::std'!r} instead.")
            out[layer] = LayerStats(float(tensors[key].reshape(-1)[0]), float(std.reshape(-1)[0]))
    if not out:
        raise InvalidParameterError(
            "A stage-1 observation must carry tensors named '<layer>::mean' and '<layer>::std'. "
            f"Got {sorted(tensors)[:3]} instead.")
    return out


def client_statistics(model: nn.Module, data: ClientData, training: LocalTraining, *,
                      trainable: Collection[str] | None = None) -> dict[str, LayerStats]:
    """The stage-1 statistics a client holding ``data`` would send: its raw update from the
    broadcast ``model`` (left unchanged), reduced by ``layer_statistics`` as the defense does."""
    update = local_update(model, data, training, client_id=0, round=0, trainable=trainable)
    return layer_statistics(update.tensors)


# -- the likelihood-ratio model ------------------------------------------------------------

@dataclass(frozen=True)
class MembershipGaussians:
    """Gaussians fitted to IN and OUT shadow features; :meth:`score` is their log-likelihood
    ratio (higher = member). Means and spreads live in standardised units (``(x - center)
    / scale`` on the ``kept`` features)."""

    layers: tuple[str, ...]
    covariance: str
    center: np.ndarray
    scale: np.ndarray
    kept: np.ndarray  # bool mask over the 2 L features
    mean_in: np.ndarray
    mean_out: np.ndarray
    std_in: np.ndarray | None  # diagonal models
    std_out: np.ndarray | None
    weights: np.ndarray | None  # pooled model: Sigma^-1 (mean_in - mean_out)
    shadows_in: int
    shadows_out: int

    @property
    def feature_names(self) -> list[str]:
        """Names of the features the model uses (the dropped constant ones left out)."""
        return [n for n, k in zip(feature_names(self.layers), self.kept, strict=True) if k]

    def _standardise(self, features: np.ndarray) -> np.ndarray:
        x = np.asarray(features, dtype=np.float64)
        if x.shape[-1] != len(self.kept):
            raise InvalidParameterError(
                f"Features must have {len(self.kept)} columns (2 per layer of the fit). Got "
                f"shape {x.shape} instead.")
        return (x[..., self.kept] - self.center) / self.scale

    def score(self, features: np.ndarray) -> np.ndarray:
        """Log-likelihood ratio IN vs OUT of a feature vector (scalar array) or matrix (N,)."""
        z = self._standardise(features)
        if self.weights is not None:
            return (z - 0.5 * (self.mean_in + self.mean_out)) @ self.weights
        return (_log_normal(z, self.mean_in, self.std_in)
                - _log_normal(z, self.mean_out, self.std_out)).sum(-1)

    def score_statistics(self, statistics: Mapping[str, LayerStats]) -> float:
        """The score of one client's stage-1 statistics."""
        return float(self.score(statistics_features(statistics, self.layers)))


def _log_normal(z: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return -0.5 * ((z - mean) / std) ** 2 - np.log(std)


def fit_membership_gaussians(features_in: np.ndarray, features_out: np.ndarray, *,
                             layers: Sequence[str], covariance: str = "pooled") -> MembershipGaussians:
    """Fit the IN and OUT Gaussians to shadow features (N_in, 2 L) and (N_out, 2 L) (see the
    module docstring for ``covariance``)."""
    owner = "fit_membership_gaussians"
    covariance = check_options("covariance", owner, covariance, COVARIANCES)
    fi = np.asarray(features_in, dtype=np.float64)
    fo = np.asarray(features_out, dtype=np.float64)
    width = 2 * len(layers)
    for name, f in (("features_in", fi), ("features_out", fo)):
        if f.ndim != 2 or f.shape[1] != width or len(f) < 2 or not np.isfinite(f).all():
            raise invalid(name, owner, f"a finite (N >= 2, {width}) array (2 features per layer)",
                          f"an array of shape {f.shape}")
    pooled = np.concatenate([fi, fo])
    center, scale = pooled.mean(0), pooled.std(0)
    kept = scale > 1e-12 * np.maximum(np.abs(center), 1e-300)
    if not kept.any():
        raise InvalidParameterError(
            "The shadow features are all constant: the statistics do not depend on the data "
            "(e.g. zero local steps' worth of update). Got no feature with any spread.")
    center, scale = center[kept], scale[kept]
    zi, zo = (fi[:, kept] - center) / scale, (fo[:, kept] - center) / scale
    mi, mo = zi.mean(0), zo.mean(0)
    si = so = w = None
    if covariance == "pooled":
        from sklearn.covariance import LedoitWolf

        resid = np.concatenate([zi - mi, zo - mo])
        sigma = LedoitWolf(assume_centered=True).fit(resid).covariance_
        w = np.linalg.solve(sigma, mi - mo)
    elif covariance == "diagonal":
        si, so = np.maximum(zi.std(0, ddof=1), MIN_STD), np.maximum(zo.std(0, ddof=1), MIN_STD)
    else:
        var = (((zi - mi) ** 2).sum(0) + ((zo - mo) ** 2).sum(0)) / (len(zi) + len(zo) - 2)
        si = so = np.maximum(np.sqrt(var), MIN_STD)
    return MembershipGaussians(tuple(layers), covariance, center, scale, kept, mi, mo, si, so, w,
                               len(fi), len(fo))


# -- the game ------------------------------------------------------------------------------

def _client(population: ClientData, idx: np.ndarray, canary: ClientData | None,
            repeats: int) -> ClientData:
    x, y = population.images[idx], population.labels[idx]
    if canary is not None:
        x = torch.cat([x, canary.images.repeat_interleave(repeats, 0)])
        y = torch.cat([y, canary.labels.repeat_interleave(repeats, 0)])
    return ClientData(x, y)


def shadow_features(model: nn.Module, population: ClientData, canary: ClientData | None,
                    training: LocalTraining, *, pool: np.ndarray, client_size: int, repeats: int,
                    trials: int, member: bool, rng: np.random.Generator, neighbouring: str = "replace",
                    layers: Sequence[str] | None = None,
                    trainable: Collection[str] | None = None) -> np.ndarray:
    """Features (trials, 2 L) of ``trials`` simulated clients drawn from the population rows
    ``pool``: with the canary's records ``repeats`` times each when ``member`` (and a canary
    is given), without otherwise (see the module docstring for ``neighbouring``)."""
    inserted = len(canary) * repeats if (member and canary is not None) else 0
    draw = client_size - inserted if neighbouring == "replace" else client_size
    rows = []
    for _ in range(trials):
        idx = rng.choice(pool, size=draw, replace=False)
        data = _client(population, idx, canary if inserted else None, repeats)
        rows.append(statistics_features(client_statistics(model, data, training, trainable=trainable),
                                        layers))
    return np.stack(rows)


def statistics_membership_game(model: nn.Module, population: ClientData, canary: ClientData | None,
                               training: LocalTraining, *, client_size: int, repeats: int = 4,
                               shadow_trials: int = 64, target_trials: int = 100,
                               covariance: str = "pooled", neighbouring: str = "replace",
                               delta: float = 1e-5, alpha: float = 0.05, seed: int = 0,
                               trainable: Collection[str] | None = None) -> dict[str, Any]:
    """Play the membership game on DR-Encoder's stage-1 statistics.

    Args:
        model: The broadcast model (left unchanged); its trained parameters are the layers.
        population: Records of the clients' distribution held by the adversary.
        canary: The candidate record(s) (each inserted ``repeats`` times), or None for the
            null game (both sides plain population draws).
        training: The clients' local training (DR-Encoder: ``UpdateKind.MODEL_DELTA``).
        client_size: Records per simulated client (see ``neighbouring``).
        repeats: Copies of each canary record in a member client.
        shadow_trials: Shadow clients per side (IN and OUT), >= 2.
        target_trials: Target clients per side, scored by the fitted model, >= 4.
        covariance: "pooled" (default), "diagonal" or "diagonal-fixed".
        neighbouring: "replace" (default) or "add".
        delta: Delta of the Clopper-Pearson bound and the GDP estimate, in (0, 1).
        alpha: 1 - confidence of the Clopper-Pearson bound.
        seed: Seed of the population split, the draws and the estimators.
        trainable: Restrict the update to these parameter names (as a defense may).

    Returns:
        A JSON-ready dict: ``scores_with`` / ``scores_without`` (target trials), ``auc``,
        ``auc_interval``, ``tpr_at_fpr`` ({"0.01": .., "0.1": ..}), ``balanced_accuracy``,
        ``baseline``, ``epsilon_lower_bound`` with ``delta`` and ``confidence``, the full
        ``epsilon`` (Clopper-Pearson) and ``epsilon_gdp_estimate`` results, ``settings``,
        ``feature_names``, ``disjoint_draws``, ``local_updates``, ``runtime_s``, ``cpu_s``,
        ``threat_model`` and a one-line ``summary``.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    client_size = check_interval("client_size", OWNER, client_size, kind=int, low=1)
    repeats = check_interval("repeats", OWNER, repeats, kind=int, low=1)
    shadow_trials = check_interval("shadow_trials", OWNER, shadow_trials, kind=int, low=2)
    target_trials = check_interval("target_trials", OWNER, target_trials, kind=int, low=4)
    covariance = check_options("covariance", OWNER, covariance, COVARIANCES)
    neighbouring = check_options("neighbouring", OWNER, neighbouring, NEIGHBOURINGS)
    delta = check_interval("delta", OWNER, delta, low=0, high=1, closed="neither")
    alpha = check_interval("alpha", OWNER, alpha, low=0, high=1, closed="neither")
    seed = check_interval("seed", OWNER, seed, kind=int, low=0)
    if canary is not None and len(canary) == 0:
        raise invalid("canary", OWNER, "None or a ClientData with at least one record", "an empty ClientData")
    inserted = 0 if canary is None else len(canary) * repeats
    if neighbouring == "replace" and inserted >= client_size:
        raise InvalidParameterError(
            f"The 'client_size' parameter of {OWNER} must exceed the canary's copies "
            f"({inserted}) under replace neighbouring. Got {client_size!r} instead.")
    n_pop = len(population)
    if n_pop < client_size:
        raise InvalidParameterError(
            f"The population of {OWNER} must hold at least client_size={client_size} records. "
            f"Got {n_pop} instead.")

    device = next(model.parameters()).device
    population = population.to(device)
    canary = None if canary is None else canary.to(device)
    layers = trained_names(model, trainable)  # the update's (and the statistics') layers
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_pop)
    disjoint = n_pop // 2 >= client_size
    shadow_pool, target_pool = (order[: n_pop // 2], order[n_pop // 2:]) if disjoint else (order, order)

    def features(pool, trials, member):
        return shadow_features(model, population, canary, training, pool=pool,
                               client_size=client_size, repeats=repeats, trials=trials,
                               member=member, rng=rng, neighbouring=neighbouring, layers=layers,
                               trainable=trainable)

    fit = fit_membership_gaussians(features(shadow_pool, shadow_trials, True),
                                   features(shadow_pool, shadow_trials, False),
                                   layers=layers, covariance=covariance)
    s_with = fit.score(features(target_pool, target_trials, True))
    s_without = fit.score(features(target_pool, target_trials, False))

    mm = membership_metrics(np.r_[s_with, s_without],
                            np.r_[np.ones(target_trials, bool), np.zeros(target_trials, bool)],
                            fprs=REPORTED_FPRS, seed=seed)
    cp = clopper_pearson_epsilon(s_with, s_without, delta=delta, alpha=alpha, seed=seed)
    gdp = gdp_fit_epsilon(s_with, s_without, delta=delta)
    tpr = {f"{f:g}": float(mm.tpr_at_fpr[f]) for f in REPORTED_FPRS}
    what = ("no canary (null game: both sides plain population draws)" if canary is None else
            f"a canary of {len(canary)} record(s) x {repeats}")
    summary = (
        f"DR-Encoder stage-1 statistics (per-layer mean and std, no noise) vs {what} in a "
        f"{client_size}-record client ({neighbouring} neighbouring): AUC {mm.auc:.3f} (chance 0.5), "
        f"TPR {tpr['0.01']:.0%} at 1% FPR and {tpr['0.1']:.0%} at 10% FPR, epsilon >= "
        f"{cp.epsilon:.2f} at delta {delta:g} ({1 - alpha:.0%} Clopper-Pearson lower bound; "
        f"{target_trials}+{target_trials} target trials, {shadow_trials}+{shadow_trials} shadow "
        "clients). DR-Encoder's DP claim does not cover stage 1.")
    return {
        "attack": "statistics-membership",
        "threat_model": THREAT_MODEL,
        "scores_with": s_with.tolist(),
        "scores_without": s_without.tolist(),
        "auc": mm.auc,
        "auc_interval": list(mm.auc_interval),
        "tpr_at_fpr": tpr,
        "balanced_accuracy": mm.balanced_accuracy,
        "baseline": {"auc": 0.5, "tpr_at_fpr": {k: float(k) for k in tpr}, "epsilon": 0.0},
        "epsilon_lower_bound": cp.epsilon,
        "delta": delta,
        "confidence": 1.0 - alpha,
        "epsilon": cp.to_dict(),
        "epsilon_gdp_estimate": gdp.to_dict(),
        "settings": {"client_size": client_size, "repeats": repeats, "canary_records":
                     0 if canary is None else len(canary), "shadow_trials": shadow_trials,
                     "target_trials": target_trials, "covariance": covariance,
                     "neighbouring": neighbouring, "seed": seed, "population": n_pop,
                     "local_steps": training.steps, "lr": training.lr,
                     "momentum": training.momentum, "update_kind": training.kind.value},
        "feature_names": fit.feature_names,
        "disjoint_draws": disjoint,
        "local_updates": 2 * (shadow_trials + target_trials),
        "runtime_s": time.perf_counter() - wall,
        "cpu_s": time.process_time() - cpu,
        "summary": summary,
    }
