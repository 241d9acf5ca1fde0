"""Model-extraction audits (FedQSN): a client, or a coalition of ``k`` clients, collects the
proxies the server sends it over the last ``R`` rounds of the run and estimates the global
model (``../shared/specs/attacks.md``, model extraction).

The finding sets side by side, on held-out data of the task (the dataset's records that no
client holds, at most 256): the quality of the final global model, of one proxy of it (what
a client is given), and of the adversary's estimate — perplexity for a language model
(lower is better), accuracy for a classifier — with ``gap_closed``, the share of the
proxy-to-global gap the adversary closes (1: it has the global model's quality; 0: no better
than its proxy). "The global model" is the one the last round's proxies were made from (the
last broadcast): what the defense hides from the clients at that point. Beside them, the relative L2 error and cosine of the estimate's weights
against that global model's, on the units the server did not mask, and the share of
units the adversary saw. Curves over the coalition size (1, 2, 4, ... up to the clients)
and over the rounds observed (1 up to the run's rounds) are metrics whose ``per_item`` runs
along the curve.

Choices: the coalition is clients ``0 .. k-1`` (all clients take part in every round unless
``clients_per_round`` says otherwise; then a client only holds the proxies of its rounds);
the proxy scored is a fresh one of that global model for client 0; ``model`` in the
view is the architecture re-initialised with the run's seed + 1.
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any

import torch
from torch import nn

from attacks.proxy_extraction import estimate_global, extraction_metrics
from audit.core.attack import ATTACKS, ExtractionView, LabelledData
from audit.core.config import AuditConfig
from audit.core.errors import InvalidParameterError
from audit.core.threat_model import create_threat_model

MAX_EVAL = 256
_WEIGHT_NOTES = {
    "rel_error": "relative L2 error of the estimate's weights against the global model, all parameters",
    "cosine": "cosine of the estimate's weights with the global model's, all parameters",
    "rel_error_unmasked": "relative L2 error on the units the server did not mask (and unmasked layers)",
    "cosine_unmasked": "cosine on the units the server did not mask (and unmasked layers)",
    "server_kept_fraction": "share of the masked layers' units the server kept",
    "seen_fraction": "share of the masked layers' units the coalition saw kept at least once",
    "seen_fraction_server_kept": "share of the server-kept units the coalition saw",
    "seen_fraction_server_masked": "share of the server-masked units the coalition saw",
}


def _quality(model: nn.Module, x: torch.Tensor, y: torch.Tensor, task: str) -> float:
    """Perplexity (language modelling) or accuracy (classification) on (x, y)."""
    model.eval()
    with torch.no_grad():
        out = model(x)
        if task == "language-modeling":
            return math.exp(float(nn.functional.cross_entropy(out, y)))
        return float((out.argmax(1) == y).float().mean())


def _held_out(run) -> tuple[torch.Tensor, torch.Tensor]:
    """The records no client holds (at most :data:`MAX_EVAL`)."""
    ds = run.dataset
    held = sum(len(c) for c in run.clients)
    idx = torch.arange(held, min(len(ds), held + MAX_EVAL))
    if len(idx) == 0:
        raise InvalidParameterError(
            f"The extraction audit scores on records no client holds, and dataset "
            f"{run.config.dataset!r} has none left after the clients' {held}. Lower num_targets "
            "or batch_size.")
    return ds.images[idx], ds.labels[idx]


def held_out_quality(run, model: nn.Module) -> float:
    """Perplexity or accuracy of ``model`` on the run's held-out records."""
    x, y = _held_out(run)
    device = next(model.parameters()).device
    return _quality(model, x.to(device), y.to(device), run.dataset.task)


def _load(model: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    out = copy.deepcopy(model)
    with torch.no_grad():
        for n, p in out.named_parameters():
            p.copy_(state[n].to(p.device))
    return out


def _architecture(model: nn.Module, seed: int) -> nn.Module:
    """A copy of ``model`` with fresh random weights (the architecture only)."""
    out = copy.deepcopy(model)
    torch.manual_seed(seed)
    for m in out.modules():
        if m is not out and hasattr(m, "reset_parameters"):
            m.reset_parameters()
    return out


def _view(run, k: int, rounds: int, arch: nn.Module) -> ExtractionView:
    coalition = range(k)
    recs = run.transcript.rounds[len(run.transcript.rounds) - rounds:]
    proxies = tuple(rec.received[c] for rec in recs for c in coalition if c in rec.received)
    data = LabelledData(torch.cat([run.clients[c].images for c in coalition]).cpu(),
                        torch.cat([run.clients[c].labels for c in coalition]).cpu())
    return ExtractionView(create_threat_model(run.config.threat_model or run.defense.default_threat_model),
                          arch, proxies, data, run.training or run.defense.local_training,
                          run.defense.public_state())


def _metric(name: str, unit: str, direction: str, values: list[float], baseline, note: str) -> dict[str, Any]:
    finite = [v for v in values if v is not None]
    worst = (max(finite) if direction == "higher-leaks-more" else min(finite)) if finite else None
    return {"name": name, "unit": unit, "direction": direction,
            "mean": sum(finite) / len(finite) if finite else None, "worst": worst, "per_item": values,
            "baseline": baseline, "note": note}


def _curve(n: int) -> list[int]:
    out, k = [], 1
    while k < n:
        out.append(k)
        k *= 2
    return out + [n]


def run_extraction_findings(config: AuditConfig, prepare_run, *, device: torch.device,
                            progress: bool = False) -> list[dict]:
    """The extraction finding for ``config`` (attack of family ``model-extraction``).

    ``prepare_run(config, device=, progress=)`` builds the federated run (the harness passes
    its own ``prepare``; this room does not import the harness above it).
    """
    start = time.perf_counter()
    attack = ATTACKS.create(config.attack, **config.attack_params)
    run = prepare_run(config, device=device, progress=progress)
    if not any(rec.received for rec in run.transcript.rounds):
        raise InvalidParameterError(
            f"Attack {attack.name!r} extracts the global model from the proxies clients receive; "
            f"defense {run.defense.name!r} sends the global model itself. Use a defense that "
            "sends proxies (e.g. 'fedqsn').")
    k = min(int(getattr(attack, "coalition", 1)), config.num_targets)
    r = min(int(getattr(attack, "rounds_observed", None) or config.rounds), config.rounds)
    x, y = (t.to(device) for t in _held_out(run))
    task = run.dataset.task
    arch = _architecture(run.model, config.seed + 1)
    # the global model the last round's proxies were made from (the last broadcast)
    global_state = {n: t.detach().clone() for n, t in run.transcript.rounds[-1].broadcast.items()}
    global_model = _load(run.model, global_state)
    proxy, _ = run.defense.client_model(global_model, client_id=0, round=config.rounds)
    q_global, q_proxy = _quality(global_model, x, y, task), _quality(proxy, x, y, task)

    def extract(kk: int, rr: int, i: int) -> tuple[dict, float]:
        gen = torch.Generator().manual_seed(config.seed * 1_000_003 + i)
        result = attack.run(_view(run, kk, rr, arch), generator=gen, device=device, progress=progress)
        return result.model_state, _quality(_load(arch, result.model_state), x, y, task)

    worse = 1.0 if task == "language-modeling" else -1.0  # perplexity: higher is worse

    def closed(q: float) -> float | None:
        """None when the proxy is no worse than the global model (no gap to close)."""
        gap = q_proxy - q_global
        return None if gap * worse <= 1e-12 * abs(q_global) else (q_proxy - q) / gap

    state, q_ext = extract(k, r, 0)
    seen = estimate_global(_view(run, k, r, arch).proxies)[1]
    scores = extraction_metrics(state, global_state, getattr(run.defense, "layers", {}),
                                run.defense.server_state().get("server_keep"), seen=seen)
    weights = [(f"weights_{name}", "lower-leaks-more" if "error" in name else "higher-leaks-more",
                value, _WEIGHT_NOTES.get(name, name)) for name, value in scores.items()]
    ks, rs = _curve(config.num_targets), _curve(config.rounds)
    gap_k = [closed(extract(kk, r, 1 + j)[1]) for j, kk in enumerate(ks)]
    gap_r = [closed(extract(k, rr, 100 + j)[1]) for j, rr in enumerate(rs)]
    unit, direction = (("", "lower-leaks-more") if task == "language-modeling" else ("", "higher-leaks-more"))
    qname = "perplexity" if task == "language-modeling" else "accuracy"
    proxy_base = {"description": "the proxy a client is given", "mean": q_proxy, "worst": q_proxy}
    metrics = [
        _metric(f"extracted_{qname}", unit, direction, [q_ext], proxy_base,
                f"coalition of {k} client(s), proxies of the last {r} round(s); global model: "
                f"{q_global:.4g}, one proxy: {q_proxy:.4g}"),
        _metric(f"global_{qname}", unit, direction, [q_global], None,
                "the global model of the last round (the last broadcast), which the defense keeps from the clients"),
        _metric("gap_closed", "", "higher-leaks-more", [closed(q_ext)],
                {"description": "the proxy itself", "mean": 0.0, "worst": 0.0},
                "(proxy - extracted) / (proxy - global) in task quality: 1 = the global model's quality; "
                "null when the proxy is no worse than the global model (nothing to close: the proxy "
                "itself gives the model away)"),
        _metric("gap_closed_by_coalition", "", "higher-leaks-more", gap_k, None,
                f"per_item along coalition sizes k = {ks} (last {r} round(s))"),
        _metric("gap_closed_by_rounds", "", "higher-leaks-more", gap_r, None,
                f"per_item along rounds observed R = {rs} (coalition of {k})"),
    ] + [_metric(name, "", d, [v], None, note) for name, d, v, note in weights]
    return [{
        "id": f"{run.defense.name}:{attack.name}",
        "title": f"{attack.name} against {run.defense.name}",
        "defense": {"name": run.defense.name, "params": run.defense.params()},
        "claim": run.claim.to_dict(),
        "threat_model": run.threat_model.to_dict() if config.threat_model else
        create_threat_model(run.defense.default_threat_model).to_dict(),
        "attack": {"name": attack.name, "family": attack.family, "params": attack.params()},
        "setting": {"dataset": config.dataset, "model": config.model,
                    "model_params": dict(config.model_params), "batch_size": config.batch_size,
                    "num_targets": k, "local_steps": run.defense.local_training.steps,
                    "rounds": config.rounds, "clients": config.num_targets},
        "metrics": metrics,
        "images": None,
        "runtime_s": time.perf_counter() - start + run.runtime_s,
    }]
