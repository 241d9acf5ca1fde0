"""Gradient inversion and label recovery on recorded updates, and what can be said of their
result with or without the ground truth.

With ``truth/``: each target's reconstructions are matched to its true images (Hungarian
assignment on MSE) and scored with MSE, PSNR, SSIM and LPIPS beside the baseline image,
recovered labels with the multiset label accuracy beside chance: the functions the
in-simulation audit scores with (:mod:`audit.metrics.scoring`, :mod:`audit.metrics.image`),
so the same reconstructions give the same figures. Without it: the reconstructions are
shown as they come, and the finding says that no ground truth was given.

Either way, every reconstruction's **gradient distance** is reported: ``1 - cos`` between
the update the reconstruction (with the attack's labels) would produce under the recorded
local training and the observed update (Geiping et al. 2020's matching loss, without TV).
It needs no ground truth: a distance near 0 says the reconstruction explains what the
server saw. Its baseline is a uniform random image with the same labels.

Project choices: target ``i`` (in the metadata's order) is attacked with a generator
seeded ``seed * 1_000_003 + i``, as the in-simulation audit seeds its targets, so a
recording of a fedaudit run reproduces its attack; the labels of the distance are the
attack's, else the recorded ones, else recovered (iDLG / LLG) from the update; the grid
shows at most 16 images.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from attacks.gradient_matching import attack_copy, cosine_distance, make_update_fn, observed_tensors
from attacks.label_recovery import recover_labels
from audit.core.attack import Attack, AttackView
from audit.fl.recorded_truth import GroundTruth
from audit.fl.recorded_updates import RecordedUpdate
from audit.metrics.image import MetricSummary, Baseline, score_reconstructions
from audit.metrics.lpips_metric import LpipsScorer
from audit.metrics.scoring import align, label_accuracy, label_summary
from reports.images import image_grid_png, png_base64

MAX_GRID_IMAGES = 16
#: what a finding without ground truth says, in its metric note and its caption
NO_TRUTH = ("No ground truth was given (no truth/ folder): the reconstructions are not scored "
            "against the clients' real data; only their gradient distance is measured.")


def target_generator(seed: int, i: int) -> torch.Generator:
    """The generator of target ``i`` (the in-simulation audit's seeding)."""
    return torch.Generator().manual_seed(seed * 1_000_003 + i)


def gradient_distance(view: AttackView, images: torch.Tensor, labels: torch.Tensor,
                      device: torch.device) -> float:
    """``1 - cos`` between the update ``(images, labels)`` would produce and the observed one."""
    model, params = attack_copy(view.model, device, view.target.tensors, view.local_training)
    observed = observed_tensors(view.target.tensors, params, device)
    update = make_update_fn(model, view.local_training, client_id=view.target.client_id,
                            round=view.target.round)
    candidate = update(params, images.to(device), labels.to(device))
    return float(cosine_distance({n: t.detach() for n, t in candidate.items()}, observed))


def _distances(view: AttackView, images: torch.Tensor, labels: torch.Tensor, seed: int, i: int,
               device: torch.device) -> tuple[float, float] | None:
    """(reconstruction's, random image's) gradient distance, when each example has one image."""
    if not len(images) == len(labels) == view.batch_size:
        return None
    noise = torch.rand(images.shape, generator=target_generator(seed, i))
    return (gradient_distance(view, images, labels, device),
            gradient_distance(view, noise, labels, device))


def _summary(values: Sequence[float], baseline: Sequence[float], note: str | None) -> dict[str, Any]:
    v, b = tuple(values), tuple(baseline)
    return MetricSummary("gradient_distance", "", "lower-leaks-more", v, sum(v) / len(v), min(v),
                         Baseline("a uniform random image with the same labels", sum(b) / len(b), min(b)),
                         note).to_dict()


def reconstruction_evidence(views: Sequence[tuple[RecordedUpdate, AttackView]], attack: Attack, *,
                            truth: GroundTruth | None, seed: int, device: torch.device,
                            lpips_scorer: LpipsScorer | None, progress: bool = False,
                            ) -> tuple[list[dict], dict | None, list[dict]]:
    """``(metrics, images entry, one row per target)`` of ``attack`` on ``views``."""
    scored = truth is not None and bool(truth.data)
    recon, real, accs, dist, base, rows = [], [], [], [], [], []
    for i, (u, view) in enumerate(tqdm(views, desc=f"{attack.name} targets", disable=not progress)):
        result = attack.run(view, generator=target_generator(seed, i), device=device, progress=progress)
        row: dict[str, Any] = {"file": u.file, "client_id": u.client_id, "round": u.round,
                               "num_examples": u.num_examples}
        images, true_labels = None, None
        if scored:
            images, true_labels = truth.data[u.file]
            true_labels = true_labels if true_labels is not None else (
                None if u.labels is None else torch.tensor(u.labels))
        if result.images is not None:
            x = result.images.float().cpu()
            labels = result.labels if result.labels is not None else view.labels
            if labels is None:
                labels = recover_labels(view, generator=target_generator(seed, i))
            pair = _distances(view, x, labels.cpu(), seed, i, device)
            if pair is not None:
                row["gradient_distance"] = pair[0]
                dist.append(pair[0])
                base.append(pair[1])
            recon.append(align(x, images) if scored else x)
            if scored:
                real.append(images)
        if result.labels is not None:
            row["labels"] = [int(v) for v in result.labels.reshape(-1)]
            if true_labels is not None:
                accs.append(label_accuracy(result.labels, true_labels))
        rows.append(row)
    metrics: list[dict] = []
    grid = None
    if recon:
        r = torch.cat(recon)
        n = min(len(r), MAX_GRID_IMAGES)
        if scored:
            t = torch.cat(real)
            metrics += [s.to_dict() for s in score_reconstructions(
                r, t, baseline_image=truth.baseline_image, lpips_scorer=lpips_scorer)]
            png, caption = image_grid_png([t[:n], r[:n]], scale=max(2, 96 // t.shape[-1])), (
                f"Top row: ground truth (truth/); bottom row: {attack.name} reconstruction ({n} of "
                f"{len(t)} images, matched by Hungarian assignment).")
        else:
            png, caption = image_grid_png([r[:n]], scale=max(2, 96 // r.shape[-1])), (
                f"{attack.name} reconstructions from the recorded updates ({n} of {len(r)} images). "
                + NO_TRUTH)
        grid = {"png_base64": png_base64(png), "caption": caption}
    if dist:
        metrics.append(_summary(dist, base, None if scored else NO_TRUTH))
    if accs:
        metrics.append(label_summary(accs, views[0][1].num_classes).to_dict())
    return metrics, grid, rows
