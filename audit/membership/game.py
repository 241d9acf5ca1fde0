"""The membership-inference game: candidates, a secret member set, a federated target and
the adversary's shadow (reference) models trained with the target's own procedure.

Following LiRA (Carlini et al. 2022, "Membership inference attacks from first
principles"): the dataset is split, by seed, into *candidates*, the adversary's
*population* data and a *control* pool. Each candidate is a member of the target with
probability 1/2, independently (so the game is also a one-run audit, Steinke et al.
2023). The target is trained federatedly through :class:`audit.fl.simulation.FederatedSimulation`
with the audited defense; shadow models repeat exactly that procedure (same defense,
schedule, model and client split rule) on subsets of the candidates chosen by the
adversary, each candidate in exactly half of them (Carlini et al.'s balanced design).

Project choices, where the papers are silent:

* A model's training data is split IID across ``num_clients`` clients after a seeded
  shuffle; every client runs the defense's local training on all its data (full-batch
  steps, as in the simulation); the whole member set goes through federated rounds.
* The *control* target (``control=True``) is trained on the same number of examples
  drawn from the control pool, disjoint from candidates and population: it saw neither
  "members" nor non-members, so every attack should score AUC 0.5 on it.
* A model is described by a JSON-ready *training spec*; its hash keys the on-disk cache
  (:mod:`audit.models.cache`), so a shadow model is trained once per spec.
* Shadow model k uses seed ``1_000_003 * (game seed + 1) + k``: the adversary does not
  know the target's randomness.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from audit.core.attack import LabelledData
from audit.data.dataset import ImageDataset
from audit.data.registry import create_dataset
from audit.core.defense import DEFENSES, FederationSchedule
from audit.core.errors import InvalidParameterError
from audit.models.registry import create_model
from audit.models.weights import load_weights
from audit.fl.simulation import ClientData, FederatedSimulation, Transcript
from audit.core.validation import check_interval

#: bump when the training code changes what a spec produces (invalidates the cache)
TRAINING_FORMAT = 1


@dataclass(frozen=True)
class TrainingRecipe:
    """Everything that defines how a model is trained, except its data and seed."""

    dataset: str
    dataset_params: dict[str, Any]
    model: str
    model_params: dict[str, Any]
    defense: str
    defense_params: dict[str, Any]
    num_clients: int
    clients_per_round: int
    rounds: int
    #: the clients' local training over the defense's (keys of LocalTraining); {}: the defense's
    local_training: dict[str, Any] = field(default_factory=dict)
    #: initial (broadcast) weights, a .safetensors file; None: random init
    weights: str | None = None

    def spec(self, indices: Sequence[int], seed: int) -> dict[str, Any]:
        """The JSON-ready spec of one model trained on ``indices`` with ``seed`` (the user's
        local training and weights only when given, so other specs keep their cache keys)."""
        return {
            "format": TRAINING_FORMAT,
            "dataset": self.dataset, "dataset_params": dict(self.dataset_params),
            "model": self.model, "model_params": dict(self.model_params),
            "defense": self.defense, "defense_params": dict(self.defense_params),
            "num_clients": self.num_clients, "clients_per_round": self.clients_per_round,
            "rounds": self.rounds, "indices": [int(i) for i in indices], "seed": int(seed),
            **({"local_training": dict(self.local_training)} if self.local_training else {}),
            **({"weights": self.weights} if self.weights else {}),
        }


@functools.lru_cache(maxsize=4)
def _dataset(key: str) -> ImageDataset:
    name, params = json.loads(key)
    return create_dataset(name, **params)


def dataset_of(spec: dict[str, Any]) -> ImageDataset:
    """The spec's dataset (built once per process)."""
    return _dataset(json.dumps([spec["dataset"], spec["dataset_params"]], sort_keys=True))


def client_split(indices: Sequence[int], num_clients: int, seed: int) -> list[np.ndarray]:
    """IID split of ``indices`` into ``num_clients`` parts after a seeded shuffle."""
    idx = np.asarray(indices, dtype=np.int64)
    if len(idx) < num_clients:
        raise InvalidParameterError(
            f"The 'num_clients' parameter of the membership game must be at most the number "
            f"of training examples ({len(idx)}). Got {num_clients!r} instead."
        )
    perm = np.random.default_rng(seed).permutation(len(idx))
    return [np.sort(part) for part in np.array_split(idx[perm], num_clients)]


def simulate(spec: dict[str, Any], *, device: torch.device | str = "cpu",
             progress: bool = False) -> tuple[nn.Module, FederatedSimulation, Transcript]:
    """Train the model of ``spec`` federatedly; returns it with its simulation and transcript."""
    ds = dataset_of(spec)
    torch.manual_seed(spec["seed"])
    model = create_model(spec["model"], input_shape=ds.input_shape, num_classes=ds.num_classes,
                         channel_mean=ds.channel_mean, channel_std=ds.channel_std,
                         **spec["model_params"])
    if spec.get("weights"):
        load_weights(model, spec["weights"], what=f"model {spec['model']!r}")
    parts = client_split(spec["indices"], spec["num_clients"], spec["seed"])
    clients = [ClientData(ds.images[p], ds.labels[p]) for p in parts]
    defense = DEFENSES.create(spec["defense"], **spec["defense_params"])
    schedule = FederationSchedule(spec["num_clients"], spec["clients_per_round"], spec["rounds"])
    defense.prepare(schedule)
    training = (defense.local_training.with_overrides(spec["local_training"])
                if spec.get("local_training") else None)
    sim = FederatedSimulation(model=model, clients=clients, defense=defense, schedule=schedule,
                              seed=spec["seed"], device=device, training=training)
    transcript = sim.run(progress=progress)
    return sim.model, sim, transcript


def train_federated(spec: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Train the model of ``spec`` on CPU and return its weights (a shadow-model task)."""
    model, _, _ = simulate(spec)
    return {k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()}


def model_from_weights(spec: dict[str, Any], weights: dict[str, torch.Tensor]) -> nn.Module:
    """A model of the spec's architecture loaded with ``weights`` (eval mode)."""
    ds = dataset_of(spec)
    model = create_model(spec["model"], input_shape=ds.input_shape, num_classes=ds.num_classes,
                         channel_mean=ds.channel_mean, channel_std=ds.channel_std,
                         **spec["model_params"])
    model.load_state_dict(weights)
    return model.eval()


@dataclass(frozen=True)
class MembershipGame:
    """Candidates, population, control pool and the target's secret members, by seed."""

    dataset: ImageDataset
    candidates: np.ndarray  # dataset indices
    population: np.ndarray  # dataset indices, the adversary's
    control_pool: np.ndarray  # dataset indices, trained on by the control target only
    target_in: np.ndarray  # bool per candidate: member of the target
    seed: int
    control: bool = False

    @property
    def target_indices(self) -> np.ndarray:
        """Dataset indices the target trains on."""
        n = int(self.target_in.sum())
        return self.control_pool[:n] if self.control else self.candidates[self.target_in]

    def candidate_data(self) -> LabelledData:
        """The candidates' inputs and labels (membership hidden)."""
        return LabelledData(self.dataset.images[self.candidates], self.dataset.labels[self.candidates])

    def population_data(self) -> LabelledData:
        """The adversary's population data."""
        return LabelledData(self.dataset.images[self.population], self.dataset.labels[self.population])

    def summary(self) -> dict[str, Any]:
        """JSON-ready description of the split for the report."""
        return {
            "seed": self.seed,
            "candidates": len(self.candidates),
            "members": int(self.target_in.sum()),
            "non_members": int((~self.target_in).sum()),
            "population": len(self.population),
            "control": self.control,
            "member_rule": "each candidate a member with probability 1/2, independently, by seed",
        }


def make_game(dataset: ImageDataset, *, num_candidates: int, num_population: int, seed: int,
              control: bool = False, exact_members: int | None = None) -> MembershipGame:
    """Split ``dataset`` by ``seed`` into candidates, population and control pool.

    Members are independent fair coin flips over the candidates, or, with
    ``exact_members``, a uniformly random subset of exactly that size (used when a
    client's data size must be exact, e.g. the update-based attack's batch).
    """
    owner = "the membership game"
    n = len(dataset)
    num_candidates = check_interval("num_candidates", owner, num_candidates, kind=int, low=4)
    num_population = check_interval("num_population", owner, num_population, kind=int, low=0)
    if num_candidates + num_population > n:
        raise InvalidParameterError(
            f"The membership game needs num_candidates + num_population <= {n} (the size of "
            f"dataset {dataset.name!r}). Got {num_candidates} + {num_population} instead."
        )
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    candidates = np.sort(perm[:num_candidates])
    population = np.sort(perm[num_candidates:num_candidates + num_population])
    control_pool = perm[num_candidates + num_population:]
    target_in = rng.random(num_candidates) < 0.5
    if exact_members is not None:
        exact_members = check_interval("exact_members", owner, exact_members, kind=int, low=1,
                                       high=num_candidates - 1)
        target_in = np.zeros(num_candidates, dtype=bool)
        target_in[rng.choice(num_candidates, exact_members, replace=False)] = True
    if control and len(control_pool) < int(target_in.sum()):
        raise InvalidParameterError(
            f"The control target needs {int(target_in.sum())} examples outside candidates and "
            f"population, but dataset {dataset.name!r} leaves {len(control_pool)}; lower "
            f"num_candidates or num_population."
        )
    return MembershipGame(dataset, candidates, population, control_pool, target_in, seed, control)


def shadow_seed(game_seed: int, k: int) -> int:
    """The seed of the adversary's k-th shadow model (independent of the target's)."""
    return 1_000_003 * (game_seed + 1) + k
