"""Matching batch reconstructions to the ground truth before scoring.

Order within a batch is lost in a gradient, so reconstructions are assigned to ground-truth
images by a Hungarian assignment (``scipy.optimize.linear_sum_assignment``) on the
pairwise MSE, as the breaching framework (Geiping et al.) scores batch attacks.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment


def _np(x) -> np.ndarray:
    return x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, float)


def match_to_truth(recon, truth) -> np.ndarray:
    """``perm`` such that ``recon[perm][i]`` is the reconstruction assigned to ``truth[i]``."""
    r = _np(recon).reshape(len(recon), -1)
    t = _np(truth).reshape(len(truth), -1)
    cost = ((t[:, None, :] - r[None, :, :]) ** 2).mean(-1)  # cost[i, j]: truth i vs recon j
    rows, cols = linear_sum_assignment(cost)
    perm = np.empty(len(t), dtype=np.int64)
    perm[rows] = cols
    return perm
