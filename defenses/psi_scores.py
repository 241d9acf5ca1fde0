"""Per-layer sensitivity scores to privacy-sensitive input pixels (PSI), for FedRE.

FedRE (arXiv 2505.04889) is a layer-wise local-DP defense for federated learning on
document images: it gives *less privacy budget (more noise) to the layers whose gradients
carry more privacy-sensitive information* (PSI: the pixels of tax numbers, invoice numbers,
totals, ...). That principle is what this module takes from the paper (verified). How the
PSI content of a layer's gradient is measured, and how scores become budget shares, are
**the project's choices**, not the paper's:

* **Score (project choice).** For layer ``l`` (the trainable parameters owned by one module,
  e.g. weight and bias of ``enc1.conv1``)::

      s_l = sqrt( E_x || d g_l(x) / d x_PSI ||_F^2 )

  where ``g_l(x)`` is the gradient of the training loss of *one* example ``x`` (with its
  label) w.r.t. the parameters of layer ``l`` and ``x_PSI`` are the input values inside that
  example's PSI mask (all channels). The expectation is the mean over the sampled examples
  (a few, e.g. 10: also a project choice). An example with an *empty* PSI mask contributes
  exactly zero but still counts in the mean (it carries no PSI).
* **Random projections (project choice).** Full Jacobians are never formed. For
  ``v = mask * z`` with ``z ~ N(0, I)`` over all ``C*H*W`` input values,
  ``E_v ||J_l v||^2 = ||J_l restricted to PSI||_F^2``, so ``s_l^2`` is estimated by the mean
  of ``||J_l v||^2`` over examples and ``projections`` draws (unbiased for ``s_l^2``, with
  relative standard deviation at most ``sqrt(2 / P)``, about ``sqrt(2 / (N * P))`` when the
  examples' Jacobian norms are alike).
* **Budget weights (project choice).** :func:`normalized_budget_weights`: ``w_l ∝ 1/s_l``
  with scores floored at ``floor * max_k s_k`` (formula there).

Projections are drawn in one fixed, documented order so that both estimators (and anyone
reproducing a score) use exactly the same vectors: a ``torch.Generator`` on the CPU seeded
with ``seed`` draws **one** tensor ``Z = torch.randn((N, P, C, H, W), dtype=images.dtype)``
up front; it is moved to the images' device and multiplied by the masks:
``V[n, p] = Z[n, p] * psi_masks[n]`` (broadcast over channels).

Two estimators of the same quantity:

* :func:`psi_layer_scores`: ``J_l v`` for **all** layers at once as one forward-over-reverse
  Jacobian-vector product of ``x -> g(x)`` (``torch.func.jvp`` of ``torch.func.grad`` of a
  ``torch.func.functional_call``), batched with ``torch.func.vmap`` over the examples
  (outer) and the projections (inner), so the primal forward/backward of an example is run
  once and only the tangents are batched over its ``P`` projections.
* :func:`psi_layer_scores_loop`: the plain-``torch.autograd`` reference, a per-layer,
  per-example, per-projection loop with the double-backward trick (slow; for tests and the
  benchmark ``benchmarks/fedre_psi_scoring.py``).

Activations. ``J_l v`` needs second derivatives of the network in ``x``; they exist almost
everywhere. ELU (the project's default) is continuously differentiable and its second
derivative exists except at 0 (a null set; autograd uses a one-sided value there), so
``J_l v`` is well defined. For ReLU the second
derivative is zero almost everywhere (and undefined on a null set); the ``x``-dependence of
``g_l`` still flows through the linear layers (the activations and the back-propagated
signal both depend on ``x``), so the score is well defined almost everywhere and the two
estimators agree.

Model state. Neither estimator changes the model's parameters, buffers or train/eval mode.
The model is evaluated in the mode it is in. A ``BatchNorm`` in training mode would update
its running statistics (and cannot do so under ``vmap``): the scores are then computed on a
private copy of the model whose batch norms use the statistics of the one example, without
running statistics (``torch.func.replace_all_batch_norm_modules_``), which is what the
training forward pass of a batch of one computes. Dropout active in training mode makes
``x -> g_l(x)`` random; it is refused (call ``model.eval()`` first).
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Mapping

import torch
from torch import nn
from torch.func import functional_call, grad, jvp, vmap

from audit.core.errors import InvalidParameterError, invalid
from audit.core.validation import check_interval

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

_OWNER = "psi_layer_scores"


# --------------------------------------------------------------------------- layers


def parameter_layers(model: nn.Module) -> dict[str, list[str]]:
    """Layer name -> names of its trainable parameters, in model order.

    A layer is the set of parameters owned directly by one module; its name is that module's
    qualified name (``"enc1.conv1"`` owns ``"enc1.conv1.weight"`` and ``"enc1.conv1.bias"``).
    Parameters owned by the root module itself form the layer ``""``. Frozen parameters
    (``requires_grad=False``) are left out; a parameter shared by several modules appears once,
    under its first name (as in ``model.named_parameters()``).
    """
    layers: dict[str, list[str]] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            layers.setdefault(name.rpartition(".")[0], []).append(name)
    return layers


# --------------------------------------------------------------------------- checks


def _check_inputs(
    owner: str, model: nn.Module, images, labels, psi_masks, projections, seed, loss_fn, chunk
) -> tuple[int, int, LossFn, int | None]:
    if not isinstance(model, nn.Module):
        raise invalid("model", owner, "a torch.nn.Module", type(model).__name__)
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or not images.is_floating_point():
        raise invalid("images", owner, "a floating tensor of shape (N, C, H, W)",
                      getattr(images, "shape", images))
    n, _, h, w = images.shape
    if n < 1:
        raise invalid("images", owner, "a tensor with at least one example", tuple(images.shape))
    if not isinstance(psi_masks, torch.Tensor) or psi_masks.dtype != torch.bool \
            or tuple(psi_masks.shape) != (n, h, w):
        raise invalid("psi_masks", owner, f"a bool tensor of shape ({n}, {h}, {w})",
                      (getattr(psi_masks, "shape", psi_masks), getattr(psi_masks, "dtype", None)))
    if not isinstance(labels, torch.Tensor) or labels.dim() < 1 or labels.shape[0] != n:
        raise invalid("labels", owner, f"a tensor with {n} rows (one per example)",
                      getattr(labels, "shape", labels))
    if loss_fn is None:
        if labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8) \
                or tuple(labels.shape) not in ((n,), (n, h, w)):
            raise invalid("labels", owner,
                          f"an integer tensor of shape ({n},) or ({n}, {h}, {w}) for the default "
                          "cross-entropy loss", (tuple(labels.shape), labels.dtype))
        loss_fn = nn.functional.cross_entropy
    elif not callable(loss_fn):
        raise invalid("loss_fn", owner, "a callable (output, target) -> scalar loss, or None", loss_fn)
    projections = check_interval("projections", owner, projections, kind=int, low=1)
    seed = check_interval("seed", owner, seed, kind=int, low=0)
    if chunk is not None:
        chunk = check_interval("chunk", owner, chunk, kind=int, low=1)
    devices = {p.device for p in model.parameters()} | {b.device for b in model.buffers()}
    if devices - {images.device}:
        raise invalid("images", owner, "on the model's device "
                      f"({', '.join(sorted(str(d) for d in devices))})", str(images.device))
    if not parameter_layers(model):
        raise invalid("model", owner, "a model with at least one trainable parameter", type(model).__name__)
    return projections, seed, loss_fn, chunk


def _scoring_model(model: nn.Module, owner: str) -> nn.Module:
    """``model`` itself, or a private copy whose training-mode batch norms keep no running stats."""
    for name, m in model.named_modules():
        if isinstance(m, nn.modules.dropout._DropoutNd) and m.training and m.p > 0:
            raise invalid("model", owner, "free of active dropout (call model.eval() first); "
                          f"module {name!r} is", type(m).__name__)
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training and m.track_running_stats
           for m in model.modules()):
        model = copy.deepcopy(model)
        torch.func.replace_all_batch_norm_modules_(model)
    return model


def _projections(images: torch.Tensor, psi_masks: torch.Tensor, projections: int, seed: int) -> torch.Tensor:
    """``V`` of shape (N, P, C, H, W): the documented draw order (see the module docstring)."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    z = torch.randn((images.shape[0], projections, *images.shape[1:]), generator=gen, dtype=images.dtype)
    z = z.to(images.device)
    return z * psi_masks[:, None, None, :, :].to(images.dtype)


def _scores(layers: Mapping[str, list[str]], sq_sums: torch.Tensor, count: int) -> dict[str, float]:
    return {name: math.sqrt(max(float(s), 0.0) / count) for name, s in zip(layers, sq_sums, strict=True)}


# --------------------------------------------------------------------------- torch.func


def psi_layer_scores(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    psi_masks: torch.Tensor,
    *,
    projections: int = 8,
    seed: int = 0,
    loss_fn: LossFn | None = None,
    chunk: int | None = None,
) -> dict[str, float]:
    """PSI score ``s_l`` of every layer (see the module docstring), with ``torch.func``.

    ``images`` (N, C, H, W); ``labels`` (N,) class indices or (N, H, W) per-pixel class
    indices (segmentation: the default loss is then the mean cross-entropy over the pixels of
    the one example); with a custom ``loss_fn(output, target)`` the labels may be any tensor
    with N rows, and ``loss_fn`` gets ``model(x[None])`` and ``labels[n][None]``.
    ``psi_masks`` (N, H, W) bool. ``projections``: draws ``P`` per example, from a generator
    seeded with ``seed`` (draw order in the module docstring). ``chunk`` bounds memory: at
    most ``chunk`` (example, projection) pairs go through one vmapped call (whole examples
    when ``chunk >= P``, else one example in slices of ``chunk`` projections); ``None``: all
    at once. Runs on the images' device. Returns layer name -> ``s_l`` in model order
    (:func:`parameter_layers`).
    """
    projections, seed, loss_fn, chunk = _check_inputs(
        _OWNER, model, images, labels, psi_masks, projections, seed, loss_fn, chunk)
    net = _scoring_model(model, _OWNER)
    layers = parameter_layers(net)
    trainable = [n for names in layers.values() for n in names]
    named = dict(net.named_parameters())
    params = {n: named[n].detach() for n in trainable}
    consts = {n: p.detach() for n, p in named.items() if n not in params}
    consts.update({n: b.detach() for n, b in net.named_buffers()})
    v_all = _projections(images, psi_masks, projections, seed)
    n_total = images.shape[0]

    def loss_one(prm, x, y):
        out = functional_call(net, (prm, consts), (x.unsqueeze(0),))
        return loss_fn(out, y.unsqueeze(0))

    grad_fn = grad(loss_one)

    def sq_norms(x, y, v):  # one example, one projection -> (L,) of ||J_l v||^2
        _, tangent = jvp(lambda xx: grad_fn(params, xx, y), (x,), (v,))
        return torch.stack([sum(tangent[n].square().sum() for n in names) for names in layers.values()])

    per_example = vmap(sq_norms, in_dims=(None, None, 0))  # projections of one example
    batched = vmap(per_example, in_dims=(0, 0, 0))  # examples x projections

    active = [i for i in range(n_total) if bool(psi_masks[i].any())]  # empty masks give 0
    total = torch.zeros(len(layers), dtype=torch.float64, device=images.device)
    with torch.no_grad(), warnings.catch_warnings():  # torch.func ignores the outer grad mode
        # torch registers its jvp decompositions with torch.jit.script on first use; its
        # deprecation warning is torch's own business, not the caller's
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)
        if chunk is None or chunk >= projections:
            per_call = max(len(active), 1) if chunk is None else max(chunk // projections, 1)
            for s in range(0, len(active), per_call):
                idx = torch.tensor(active[s:s + per_call], device=images.device)
                out = batched(images[idx], labels[idx], v_all[idx])
                total += out.to(torch.float64).sum(dim=(0, 1))
        else:
            for i in active:
                for s in range(0, projections, chunk):
                    out = per_example(images[i], labels[i], v_all[i, s:s + chunk])
                    total += out.to(torch.float64).sum(dim=0)
    return _scores(layers, total, n_total * projections)


# --------------------------------------------------------------------------- reference loop


def psi_layer_scores_loop(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    psi_masks: torch.Tensor,
    *,
    projections: int = 8,
    seed: int = 0,
    loss_fn: LossFn | None = None,
    chunk: int | None = None,
) -> dict[str, float]:
    """The same scores with plain ``torch.autograd``: the slow reference.

    For each layer, each example (with a non-empty mask) and each of the same projections
    ``v`` as :func:`psi_layer_scores`: ``g_l = grad(loss, layer params, create_graph=True)``;
    ``u = zeros_like(g_l)`` requiring grad; ``w = grad(g_l, x, grad_outputs=u,
    create_graph=True)`` (``= J_l^T u``, linear in ``u``); ``J_l v = grad(w, u,
    grad_outputs=v)``. The graph of ``g_l`` and ``w`` does not depend on ``v``, so it is built
    once per (layer, example) and kept (``retain_graph``) for that example's projections:
    a straightforward loop, not an artificially slowed one. ``chunk`` is accepted for a
    common signature and ignored.
    """
    projections, seed, loss_fn, _ = _check_inputs(
        "psi_layer_scores_loop", model, images, labels, psi_masks, projections, seed, loss_fn, chunk)
    net = _scoring_model(model, "psi_layer_scores_loop")
    layers = parameter_layers(net)
    named = dict(net.named_parameters())
    v_all = _projections(images, psi_masks, projections, seed)
    n_total = images.shape[0]
    total = torch.zeros(len(layers), dtype=torch.float64)
    for li, names in enumerate(layers.values()):
        layer_params = [named[n] for n in names]
        for i in range(n_total):
            if not bool(psi_masks[i].any()):
                continue  # an empty mask contributes exactly 0
            with torch.enable_grad():
                x = images[i:i + 1].detach().clone().requires_grad_(True)
                loss = loss_fn(net(x), labels[i:i + 1])
                g = torch.autograd.grad(loss, layer_params, create_graph=True)
                u = [torch.zeros_like(t, requires_grad=True) for t in g]
                (w,) = torch.autograd.grad(g, x, grad_outputs=u, create_graph=True, allow_unused=True)
                for p in range(projections):
                    if w is None or not w.requires_grad:
                        break  # g_l does not depend on x: J_l = 0
                    jv = torch.autograd.grad(w, u, grad_outputs=v_all[i, p:p + 1],
                                             retain_graph=True, allow_unused=True)
                    total[li] += sum(float(t.double().square().sum()) for t in jv if t is not None)
    return _scores(layers, total, n_total * projections)


# --------------------------------------------------------------------------- budget weights


def normalized_budget_weights(scores: Mapping[str, float], *, floor: float = 0.05) -> dict[str, float]:
    """Budget shares ``w_l ∝ 1/s_l`` (more PSI, less budget), summing to 1.

    Formula (project choice): ``s'_l = max(s_l, floor * max_k s_k)``, then
    ``w_l = (1/s'_l) / sum_k (1/s'_k)``. The floor keeps a layer with a tiny (or zero) score
    from taking the whole budget: no layer gets more than ``1/floor`` times the share of
    another. ``floor`` lies in (0, 1]; ``floor = 1`` gives equal shares, and so do scores that
    are all zero. Weights are non-increasing in the score (strictly decreasing between scores
    above the floor). Scores must be finite and >= 0, at least one layer.
    """
    owner = "normalized_budget_weights"
    floor = check_interval("floor", owner, floor, low=0.0, high=1.0, closed="right")
    if not isinstance(scores, Mapping) or len(scores) == 0:
        raise invalid("scores", owner, "a non-empty mapping of layer name -> score", scores)
    vals: dict[str, float] = {}
    for name, s in scores.items():
        if isinstance(s, torch.Tensor) and s.numel() == 1:
            s = s.item()
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s) or s < 0:
            raise InvalidParameterError(
                f"The 'scores' parameter of {owner} must map layer names to finite scores >= 0. "
                f"Got {s!r} for layer {name!r} instead.")
        vals[name] = float(s)
    top = max(vals.values())
    if top == 0.0:
        return {name: 1.0 / len(vals) for name in vals}
    inv = {name: 1.0 / max(s, floor * top) for name, s in vals.items()}
    z = sum(inv.values())
    return {name: i / z for name, i in inv.items()}
