"""DEeR's noise regulator against its closed forms (projections onto the peer's column /
row space), and its refusal of singular peers."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from defenses.lora_noise_regulator import (
    SingularPeerError,
    noise_for_a,
    noise_for_b,
    sensitivity_factor,
)

shapes = st.tuples(st.integers(1, 6), st.integers(6, 24), st.integers(6, 24), st.integers(0, 10_000))


def _orthonormal_basis(m: torch.Tensor) -> torch.Tensor:
    u, _, _ = torch.linalg.svd(m, full_matrices=False)
    return u


@settings(max_examples=60, deadline=None)
@given(shapes)
def test_b_times_xi_a_is_the_projection_of_xi_w_onto_b_columns(shape):
    r, d_out, d_in, seed = shape
    g = torch.Generator().manual_seed(seed)
    b = torch.randn(d_out, r, generator=g, dtype=torch.float64)
    xi_w = torch.randn(d_out, d_in, generator=g, dtype=torch.float64)
    xi_a = noise_for_a(xi_w, b)
    assert xi_a.shape == (r, d_in)
    u = _orthonormal_basis(b)
    assert torch.allclose(b @ xi_a, u @ u.T @ xi_w, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(shapes)
def test_xi_b_times_a_is_the_projection_of_xi_w_onto_a_rows(shape):
    r, d_out, d_in, seed = shape
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(r, d_in, generator=g, dtype=torch.float64)
    xi_w = torch.randn(d_out, d_in, generator=g, dtype=torch.float64)
    xi_b = noise_for_b(xi_w, a)
    assert xi_b.shape == (d_out, r)
    v = _orthonormal_basis(a.T)  # d_in x r basis of A's row space
    assert torch.allclose(xi_b @ a, xi_w @ v @ v.T, atol=1e-9)


def test_closed_form_on_a_diagonal_peer():
    # B = [diag(2, 4); 0]: B^+ xi_W keeps the first two rows, divided by 2 and 4
    b = torch.zeros(3, 2, dtype=torch.float64)
    b[0, 0], b[1, 1] = 2.0, 4.0
    xi_w = torch.arange(12, dtype=torch.float64).reshape(3, 4)
    expected = torch.stack([xi_w[0] / 2, xi_w[1] / 4])
    assert torch.allclose(noise_for_a(xi_w, b), expected)
    assert torch.allclose(noise_for_b(xi_w.T, b.T), expected.T)
    assert sensitivity_factor(b) == pytest.approx(4.0)


def test_float32_in_float32_out():
    g = torch.Generator().manual_seed(0)
    b, xi = torch.randn(16, 4, generator=g), torch.randn(16, 8, generator=g)
    assert noise_for_a(xi, b).dtype == torch.float32


@pytest.mark.parametrize("peer", [
    torch.zeros(8, 2),  # B at initialisation
    torch.tensor([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]]),  # rank 1 of 2
])
def test_singular_peers_raise_a_clear_error_not_nan(peer):
    xi = torch.ones(peer.shape[0], 5)
    with pytest.raises(SingularPeerError, match="lora_B.*rank deficient"):
        noise_for_a(xi, peer, name="blocks.0.query.lora_B")
    with pytest.raises(SingularPeerError, match="rank deficient"):
        noise_for_b(xi.T.contiguous(), peer.T.contiguous())


def test_ill_conditioned_but_full_rank_peer_gives_finite_noise():
    u, _ = torch.linalg.qr(torch.randn(32, 4, generator=torch.Generator().manual_seed(1),
                                       dtype=torch.float64))
    b = u @ torch.diag(torch.tensor([1.0, 1e-2, 1e-4, 1e-6], dtype=torch.float64))
    xi = torch.randn(32, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    out = noise_for_a(xi, b)
    assert torch.isfinite(out).all()
    assert torch.allclose(b @ out, u @ u.T @ xi, atol=1e-6)
    with pytest.raises(SingularPeerError):
        noise_for_a(xi, b, rcond=1e-5)


def test_mapped_noise_has_covariance_s2_times_inverse_gram():
    """Monte Carlo: each column of xi_A ~ N(0, s^2 (B^T B)^{-1}). 40,000 draws; entries of
    the sample covariance have relative standard error ~ sqrt(2/40000) = 0.7%, the 5%
    tolerance is > 7 standard errors (false failure << 1e-6); seeded."""
    g = torch.Generator().manual_seed(3)
    b = torch.randn(10, 3, generator=g, dtype=torch.float64)
    s, n = 0.7, 40_000
    xi_w = s * torch.randn(n, 10, 1, generator=g, dtype=torch.float64)
    cols = torch.stack([noise_for_a(x, b)[:, 0] for x in xi_w[:2000]])  # per-call path
    batched = torch.linalg.solve(b.T @ b, b.T @ xi_w[..., 0].T).T  # same formula, all draws
    assert torch.allclose(cols, batched[:2000], atol=1e-12)
    cov = batched.T @ batched / n
    expected = s ** 2 * torch.linalg.inv(b.T @ b)
    scale = math.sqrt(float(torch.diag(expected).max()) * float(torch.diag(expected).min()))
    assert torch.allclose(cov, expected, atol=0.05 * scale)
