"""White-box canaries in LoRA parameter space: an empirical epsilon for DP federated LoRA
(``deer``, ``fedit-lora``, ``ffa-lora``) through the defense's own client side.

A canary client's update, in every round of the run, is the worst-case delta of each matrix
it trains: Frobenius norm ``C`` (after the defense's own clipping of a 1000 C update) along
the direction where the noise is weakest. For DEeR's A with frozen peer B the noise is
``B^+ xi_W`` with covariance ``s^2 (B^T B)^{-1}``, weakest along B's top right singular
vector; for B with peer A along A's top left singular vector; for isotropic noise any
direction. The peers of round ``r`` are the broadcast weights the run recorded.

The adversary's statistic is the Gaussian likelihood-ratio projection: the release is
mapped to the product space (``B obs`` for A, ``obs A`` for B, ``obs`` for isotropic
noise), where the noise is isotropic within the peer's subspace, and projected on the
canary's image; the sum over matrices and rounds is the sufficient statistic of the composed
releases. Two adversaries, each set against the claims about it:

* ``each update`` (the server sees the canary client's release): canary ``D`` against
  ``-D`` (replace-one), against the "as run, each update" claim;
* ``aggregate`` (observers of the mean of ``K`` releases, the other clients sending zero
  updates): canary ``D`` present against absent (the client sends zero; add-or-remove of
  its contribution), against the official claim and "as run, aggregate".

Choice (the unit): the official claim is per training example, but the mechanism clips only
each client's whole update, so nothing bounds one example's effect on it below ``C`` (a
client with one example, or an example that dominates the clipped delta): a client-level
canary that saturates the clip is a valid worst case for that claim too.

The bound is Clopper-Pearson at 95% (:func:`audit.privacy.estimators.clopper_pearson_epsilon`), so
with ``trials`` per side it cannot exceed about ``ln(trials)``.

One-shot canary clients (Andrew et al. 2023, :func:`lora_one_shot_epsilon`): canary clients
submit random directions (each trained matrix a random unit matrix, scaled past the clip) in
every round; the cosine of what the adversary observes with each canary's image (summed
over rounds, in the product space) against the cosine with fresh random directions gives a
GDP mu and an epsilon *estimate*. A run holds ``K`` canary clients (the schedule's clients
per round, so the aggregate's noise is the claim's); ``canaries / K`` runs are simulated.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from audit.privacy.estimators import EmpiricalEpsilon, clopper_pearson_epsilon, one_shot_epsilon
from audit.core.updates import ModelUpdate

VIEWS = ("each update", "aggregate")


def _direction(side: str, peer: torch.Tensor | None, shape: torch.Size) -> torch.Tensor:
    """Unit-norm worst-case direction for a matrix of ``shape``."""
    d = torch.zeros(shape, dtype=torch.float64)
    if peer is None:
        d[0, 0] = 1.0
        return d
    p = peer.detach().double().cpu()
    if side == "A":  # A (r x d_in) under B (d_out x r): top right singular vector of B
        _, _, vh = torch.linalg.svd(p, full_matrices=False)
        d[:, 0] = vh[0]
    else:  # B (d_out x r) under A (r x d_in): top left singular vector of A
        u, _, _ = torch.linalg.svd(p, full_matrices=False)
        d[0, :] = u[:, 0]
    return d


def _image(side: str, peer: torch.Tensor | None, m: torch.Tensor) -> torch.Tensor:
    """Map a matrix to the product space, where the noise is isotropic."""
    if peer is None:
        return m
    p = peer.detach().double().cpu()
    return p @ m if side == "A" else m @ p


def canary_scores(defense, broadcasts: Sequence[Mapping[str, torch.Tensor]], *, view: str,
                  trials: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores of ``trials`` runs with the canary and ``trials`` without, for ``view``."""
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    own = copy.deepcopy(defense)
    gen = torch.Generator().manual_seed(seed)
    k = own.schedule.clients_per_round
    rounds = []
    for r, weights in enumerate(broadcasts):
        own.set_peer_weights(weights)
        mats = []
        for name, peer, side in own.trained_matrices(r):
            peer_w = None if peer is None else weights[peer]
            shape = weights[name].shape
            unit = _direction(side, peer_w, shape)
            canary = own.clip_norm * unit
            mats.append((name, peer_w, side, canary, _image(side, peer_w, canary)))
        rounds.append((r, dict(weights), mats))

    def release(sign: float) -> float:
        score = 0.0
        for r, weights, mats in rounds:
            own.set_peer_weights(weights)
            big = {n: (sign * 1000.0 * c).to(weights[n].dtype) for n, _, _, c, _ in mats}
            zero = {n: torch.zeros_like(weights[n]) for n, _, _, _, _ in mats}
            first = own.client_side(ModelUpdate(own.local_training.kind, big if sign else zero,
                                                client_id=0, round=r), generator=gen)
            if view == "each update":
                obs = first.tensors
            else:
                rest = [own.client_side(ModelUpdate(own.local_training.kind, zero, client_id=i,
                                                    round=r), generator=gen)
                        for i in range(1, k)]
                obs = {n: sum(o.tensors[n] for o in [first, *rest]) for n in first.tensors}
            for n, peer_w, side, _, img in mats:
                score += float((_image(side, peer_w, obs[n].double().cpu()) * img).sum())
        return score

    neg = -1.0 if view == "each update" else 0.0
    with_ = np.array([release(1.0) for _ in range(trials)])
    without = np.array([release(neg) for _ in range(trials)])
    return with_, without


def lora_canary_epsilon(defense, broadcasts: Sequence[Mapping[str, torch.Tensor]], *,
                        view: str, delta: float, trials: int = 2000,
                        seed: int = 0) -> EmpiricalEpsilon:
    """Clopper-Pearson lower bound (95%) on epsilon from white-box LoRA canaries."""
    with_, without = canary_scores(defense, broadcasts, view=view, trials=trials, seed=seed)
    est = clopper_pearson_epsilon(with_, without, delta=delta, alpha=0.05, seed=seed)
    return EmpiricalEpsilon(f"{est.estimator}-lora-{view.replace(' ', '-')}", est.epsilon,
                            est.delta, est.nature, est.confidence, est.trials, est.compute_s,
                            {**est.details, "view": view, "rounds": len(broadcasts)})


def _unit(shape, generator: torch.Generator) -> torch.Tensor:
    m = torch.randn(shape, generator=generator, dtype=torch.float64)
    return m / m.norm()


def lora_one_shot_epsilon(defense, broadcasts: Sequence[Mapping[str, torch.Tensor]], *,
                          view: str, delta: float, canaries: int = 2000,
                          seed: int = 0) -> EmpiricalEpsilon:
    """One-shot epsilon *estimate* from random-direction canary clients in LoRA space."""
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    own = copy.deepcopy(defense)
    gen = torch.Generator().manual_seed(seed)
    k = own.schedule.clients_per_round
    cos_c, cos_n = [], []
    for _ in range(-(-canaries // k)):
        seen = [[] for _ in range(k)]
        mine = [[] for _ in range(k)]
        null = [[] for _ in range(k)]
        for r, weights in enumerate(broadcasts):
            own.set_peer_weights(weights)
            mats = own.trained_matrices(r)
            outs = []
            for i in range(k):
                dirs = {n: _unit(weights[n].shape, gen) for n, _, _ in mats}
                fresh = {n: _unit(weights[n].shape, gen) for n, _, _ in mats}
                big = {n: (1000.0 * own.clip_norm * d).to(weights[n].dtype) for n, d in dirs.items()}
                outs.append(own.client_side(ModelUpdate(own.local_training.kind, big,
                                                        client_id=i, round=r),
                                            generator=gen).tensors)
                for n, peer, side in mats:
                    peer_w = None if peer is None else weights[peer]
                    mine[i].append(_image(side, peer_w, dirs[n]).reshape(-1))
                    null[i].append(_image(side, peer_w, fresh[n]).reshape(-1))
            total = {n: sum(o[n] for o in outs) for n, _, _ in mats}
            for i in range(k):
                obs = outs[i] if view == "each update" else total
                for n, peer, side in mats:
                    peer_w = None if peer is None else weights[peer]
                    seen[i].append(_image(side, peer_w, obs[n].double().cpu()).reshape(-1))
        for i in range(k):
            o = torch.cat(seen[i])
            cos = torch.nn.functional.cosine_similarity
            cos_c.append(float(cos(o, torch.cat(mine[i]), dim=0)))
            cos_n.append(float(cos(o, torch.cat(null[i]), dim=0)))
    est = one_shot_epsilon(np.array(cos_c), np.array(cos_n), delta=delta)
    return EmpiricalEpsilon(f"{est.estimator}-lora-{view.replace(' ', '-')}", est.epsilon,
                            est.delta, est.nature, est.confidence, est.trials, est.compute_s,
                            {**est.details, "view": view, "rounds": len(broadcasts)})
