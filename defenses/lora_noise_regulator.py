"""DEeR's noise regulator (arXiv 2410.12926; official code CUHK-AIM-Group/DEeR): DP noise
drawn for the full weight update ``xi_W`` (d_out x d_in) and mapped onto the trained LoRA
matrix through its frozen peer, so the noise the *product* ``B A`` receives is exactly the
projection of ``xi_W``.

With ``W = B A`` (``B``: d_out x r, ``A``: r x d_in):

* training ``A`` with ``B`` frozen: ``xi_A = (B^T B)^{-1} B^T xi_W`` (``B^+ xi_W``), so
  ``B xi_A = P_B xi_W``, the projection onto ``B``'s column space;
* training ``B`` with ``A`` frozen: ``xi_B = xi_W A^T (A A^T)^{-1}`` (``xi_W A^+``), so
  ``xi_B A = xi_W P_A``, the projection onto ``A``'s row space.

Privacy geometry (what the audit's "as run" claim uses): the columns of ``xi_A`` are
``N(0, s^2 (B^T B)^{-1})``, so a clipped ``Delta A`` (Frobenius norm <= C) released as
``Delta A + xi_A`` has Mahalanobis sensitivity ``||B Delta A||_F / s <= sigma_max(B) C / s``:
the effective noise multiplier is ``s / (sigma_max(B) C)``, *smaller* than the nominal
``s / C`` as soon as the peer's largest singular value exceeds 1
(:func:`sensitivity_factor`). The same holds for ``B`` with ``sigma_max(A)``.

Choices (the code uses a plain ``torch.inverse``):

* the maps solve the normal equations in float64 (``torch.linalg.solve`` on the r x r Gram
  matrix) and return the input dtype;
* a peer whose smallest singular value is below ``rcond`` times its largest (or that is
  all zero, like ``B`` at initialisation) raises :class:`SingularPeerError`: a
  pseudo-inverse would put *no* noise on the peer's null directions (a zero ``B`` would
  give ``xi_A = 0``) and the release would not be private; DEeR avoids the case by
  training ``B`` first, against the Kaiming-initialised (full-rank) ``A``.
"""

from __future__ import annotations

import torch

#: default relative threshold on the peer's singular values (float64 solve is accurate far
#: below this; the noise in the weak directions grows like 1 / sigma_min)
RCOND = 1e-7


class SingularPeerError(ValueError):
    """The frozen peer matrix is (numerically) rank deficient: no noise can be mapped."""


def _check_peer(peer: torch.Tensor, name: str, rcond: float) -> torch.Tensor:
    if peer.ndim != 2:
        raise ValueError(f"The peer matrix {name!r} must be 2-D. Got shape {tuple(peer.shape)}.")
    p = peer.detach().to(torch.float64)
    if not torch.isfinite(p).all():
        raise SingularPeerError(f"The peer matrix {name!r} has non-finite entries.")
    s = torch.linalg.svdvals(p)
    if s.numel() == 0 or float(s[0]) == 0.0 or float(s[-1]) < rcond * float(s[0]):
        smallest = 0.0 if s.numel() == 0 else float(s[-1])
        largest = 0.0 if s.numel() == 0 else float(s[0])
        raise SingularPeerError(
            f"The noise regulator cannot map noise through the peer matrix {name!r}: it is "
            f"rank deficient (singular values from {largest:.3g} down to {smallest:.3g}, "
            f"rcond {rcond:g}); a pseudo-inverse would leave its null directions without noise."
        )
    return p


def noise_for_a(xi_w: torch.Tensor, b: torch.Tensor, *, name: str = "B",
                rcond: float = RCOND) -> torch.Tensor:
    """``(B^T B)^{-1} B^T xi_W``: noise for ``A`` (r x d_in) when ``B`` (d_out x r) is frozen."""
    p = _check_peer(b, name, rcond)
    if xi_w.shape[0] != p.shape[0]:
        raise ValueError(f"xi_W has {xi_w.shape[0]} rows but the peer {name!r} has {p.shape[0]}.")
    out = torch.linalg.solve(p.T @ p, p.T @ xi_w.to(torch.float64))
    return out.to(xi_w.dtype)


def noise_for_b(xi_w: torch.Tensor, a: torch.Tensor, *, name: str = "A",
                rcond: float = RCOND) -> torch.Tensor:
    """``xi_W A^T (A A^T)^{-1}``: noise for ``B`` (d_out x r) when ``A`` (r x d_in) is frozen."""
    p = _check_peer(a, name, rcond)
    if xi_w.shape[1] != p.shape[1]:
        raise ValueError(f"xi_W has {xi_w.shape[1]} columns but the peer {name!r} has {p.shape[1]}.")
    # xi_W A^T (A A^T)^{-1} = ((A A^T)^{-1} A xi_W^T)^T, (A A^T) symmetric
    out = torch.linalg.solve(p @ p.T, p @ xi_w.to(torch.float64).T).T
    return out.to(xi_w.dtype)


def sensitivity_factor(peer: torch.Tensor) -> float:
    """``sigma_max(peer)``: how much the map through the peer scales the sensitivity of a
    clipped release relative to its noise (> 1 weakens the nominal noise multiplier)."""
    return float(torch.linalg.matrix_norm(peer.detach().to(torch.float64), ord=2))
