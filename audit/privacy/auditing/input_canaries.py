"""Black-box one-run audit with input canaries (Steinke, Nasr, Jagielski 2023, black-box
variant): the adversary sees only the final global model and scores canary examples by
their loss.

``canaries`` mislabelled digits (label shifted by a random non-zero offset) each sit in a
client of their own and are "in" with probability 1/2. Local mode (replace-one claim): an
"out" canary client holds the correctly labelled digit instead. Central mode
(add-or-remove claim): an "out" canary client is absent. Regular clients hold the rest of
the training data. After ``rounds`` rounds, the score of a canary is minus its loss (with
its planted label) on the final model, and the one-run bound is taken over the most
confident guesses.

Choices: digits and a small MLP (the embedded task where a memorised label shows in the
loss), 16 regular clients of 32 examples, all clients in every round, server learning
rate 1 for model deltas; the bound is black-box, so it is far looser than the white-box
canaries of :mod:`audit.privacy.auditing.defense_audit`.
"""

from __future__ import annotations

import torch
from torch import nn

from audit.data.registry import create_dataset
from audit.core.defense import Defense, FederationSchedule
from audit.privacy.estimators import EmpiricalEpsilon, best_one_run_epsilon
from audit.models.registry import create_model
from audit.fl.simulation import ClientData, FederatedSimulation


def black_box_one_run(defense: Defense, *, mode: str, delta: float, canaries: int = 200,
                      regular_clients: int = 16, per_client: int = 32, rounds: int = 10,
                      seed: int = 0, device: torch.device | str = "cpu",
                      ) -> tuple[EmpiricalEpsilon, dict, FederationSchedule]:
    """One federated run with input canaries: the black-box one-run bound, diagnostics, and
    the schedule that was run (the claim to compare with is the defense's for it)."""
    gen = torch.Generator().manual_seed(seed)
    data = create_dataset("digits")
    n_regular = regular_clients * per_client
    if n_regular + canaries > len(data):
        raise ValueError("not enough digits for these canaries")
    order = torch.randperm(len(data), generator=gen)
    regular, canary_idx = order[:n_regular], order[n_regular:n_regular + canaries]
    x_c = data.images[canary_idx]
    true_y = data.labels[canary_idx]
    planted = (true_y + torch.randint(1, 10, (canaries,), generator=gen)) % 10
    included = torch.rand(canaries, generator=gen) < 0.5
    clients = [ClientData(data.images[regular[i * per_client:(i + 1) * per_client]],
                          data.labels[regular[i * per_client:(i + 1) * per_client]])
               for i in range(regular_clients)]
    for k in range(canaries):
        if included[k]:
            clients.append(ClientData(x_c[k:k + 1], planted[k:k + 1]))
        elif mode == "local":
            clients.append(ClientData(x_c[k:k + 1], true_y[k:k + 1]))
    torch.manual_seed(seed)
    model = create_model("mlp", input_shape=data.input_shape, num_classes=10,
                         channel_mean=data.channel_mean, channel_std=data.channel_std, hidden=64)
    schedule = FederationSchedule(num_clients=len(clients), clients_per_round=len(clients), rounds=rounds)
    defense.prepare(schedule)
    FederatedSimulation(model=model, clients=clients, defense=defense, schedule=schedule,
                        seed=seed, device=device).run()
    model.eval()
    with torch.no_grad():
        loss = nn.functional.cross_entropy(model(x_c.to(model.fc1.weight.device)), planted.to(model.fc1.weight.device),
                                           reduction="none").cpu()
    scores = (-loss).numpy()
    ks = [k for k in (5, 10, 20, 50) if 2 * k <= canaries]
    est = best_one_run_epsilon(scores, included.numpy(), delta=delta, beta=0.05, ks=ks)
    gap = float(loss[~included].mean() - loss[included].mean())
    return est, {"canaries": canaries, "rounds": rounds, "loss_gap_out_minus_in": gap}, schedule
