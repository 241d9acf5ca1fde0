"""``purchase-synthetic``: a generated stand-in for Purchase-100, the classic
membership-inference benchmark (Shokri et al. 2017, "Membership inference attacks against
machine learning models"; used by LiRA, Carlini et al. 2022, and RMIA, Zarifzadeh et al.
2024).

Purchase-100 holds binary "bought item j" vectors of 600 items, clustered into 100
classes; its targets reach 100% training accuracy and clearly lower test accuracy, and,
as on CIFAR-10, the loss alone finds few members at low false-positive rates while
per-example calibrated attacks (LiRA) find many: the regime a membership audit needs in
order to separate defenses. The real data cannot be downloaded here, so it is generated:
each class has a profile of ``characteristic`` items bought with probability ``rate``
(every other item with ``base_rate``); each example's label is uniform, and its rates mix
its class profile with another random class's profile with weight ~ U(0, ``atypical``),
so typical examples are easy and atypical ones must be memorised (the long tail that
leaks membership, Feldman 2020).

Choices (ours, documented): 10 classes (not 100) so that a target trained on about 1000
members generalises like the real targets trained on 10-20k; 60 characteristic items at
rate 0.4 over a 0.05 background, ``atypical = 0.6``. With FedAvg on ~1000 members (10
clients, 20 rounds of 5 local full-batch steps at lr 0.5, MLP 600-128-10) this gives 100%
training accuracy and about 80% test accuracy; LOSS then reaches AUC ~0.68 with ~1.4%
TPR at 1% FPR, LiRA (8 shadow models) AUC ~0.92 with ~45% (``benchmarks/membership.py``).
``data_seed`` fixes profiles and examples. Stored as (N, 1, 1, D) with
``modality="tabular"`` (no augmentation).
"""

from __future__ import annotations

import numpy as np

from audit.data.dataset import ImageDataset, from_arrays
from audit.core.validation import check_interval


def generate_purchase(*, n: int = 5000, features: int = 600, classes: int = 10,
                      characteristic: int = 60, rate: float = 0.4, base_rate: float = 0.05,
                      atypical: float = 0.6, data_seed: int = 0,
                      limit: int | None = None) -> ImageDataset:
    """``n`` binary feature vectors from ``classes`` random purchase profiles."""
    owner = "dataset 'purchase-synthetic'"
    n = check_interval("n", owner, n, kind=int, low=1, high=10_000_000)
    features = check_interval("features", owner, features, kind=int, low=1, high=100_000)
    classes = check_interval("classes", owner, classes, kind=int, low=2, high=10_000)
    characteristic = check_interval("characteristic", owner, characteristic, kind=int, low=1,
                                    high=features)
    rate = check_interval("rate", owner, rate, low=0, high=1)
    base_rate = check_interval("base_rate", owner, base_rate, low=0, high=1)
    atypical = check_interval("atypical", owner, atypical, low=0, high=1)
    data_seed = check_interval("data_seed", owner, data_seed, kind=int, low=0)
    rng = np.random.default_rng(data_seed)
    profiles = np.full((classes, features), base_rate)
    for c in range(classes):
        profiles[c, rng.choice(features, characteristic, replace=False)] = rate
    labels = rng.integers(classes, size=n)
    # atypical examples: each mixes its class profile with another class's, weight ~ U(0, atypical)
    other = (labels + rng.integers(1, classes, size=n)) % classes
    weight = rng.random(n)[:, None] * atypical
    rates = (1 - weight) * profiles[labels] + weight * profiles[other]
    x = (rng.random((n, features)) < rates).astype(np.float32)
    ds = from_arrays("purchase-synthetic", x.reshape(n, 1, features, 1), labels, classes,
                     f"generated (data_seed={data_seed}): {classes} purchase profiles of "
                     f"{characteristic}/{features} items at rate {rate}, background {base_rate}",
                     limit)
    return ImageDataset(ds.name, ds.images, ds.labels, ds.num_classes, ds.channel_mean,
                        ds.channel_std, ds.source, modality="tabular")


def purchase_synthetic(*, n: int = 5000, features: int = 600, classes: int = 10,
                       characteristic: int = 60, rate: float = 0.4, base_rate: float = 0.05,
                       atypical: float = 0.6, data_seed: int = 0,
                       limit: int | None = None) -> ImageDataset:
    """Generated Purchase-100 stand-in: the ``purchase-synthetic`` dataset's factory."""
    return generate_purchase(n=n, features=features, classes=classes,
                             characteristic=characteristic, rate=rate, base_rate=base_rate,
                             atypical=atypical, data_seed=data_seed, limit=limit)
