"""Sparse attention kernels vs the masked-dense reference (forward and q/k/v grads)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tome_train.attention import (
    block_sparse_attention,
    block_sparse_attention_traceable,
    choose_impl,
    estimate_block_scores,
    layout_from_block_scores,
    reference_attention,
    sparse_attention,
)
from tome_train.attention import flex as flex_mod


def _inputs(bsz: int, heads: int, n: int, d: int, dtype=torch.float32):
    q, k, v = (torch.randn(bsz, heads, n, d, dtype=dtype, requires_grad=True) for _ in range(3))
    return q, k, v, torch.randn(bsz, heads, n, d, dtype=dtype)


def _fwd_bwd(fn, q, k, v, g):
    out = fn(q, k, v)
    return [out.detach(), *torch.autograd.grad(out, (q, k, v), g)]


def _assert_close(got, want, atol: float = 1e-4) -> None:
    for name, a, b in zip(("out", "dq", "dk", "dv"), got, want):
        err = (a.float() - b.float()).abs().max().item()
        assert err <= atol, f"{name}: max abs err {err:.2e} > {atol}"


@pytest.mark.parametrize("n,b", [(50, 32), (50, 16), (197, 32), (197, 64), (64, 16)])
@pytest.mark.parametrize("prefix", [0, 1, 5])
@pytest.mark.parametrize("keep", [0.3, 0.6])
def test_block_sparse_matches_reference(n: int, b: int, prefix: int, keep: float) -> None:
    q, k, v, g = _inputs(2, 3, n, 16)
    layout = layout_from_block_scores(estimate_block_scores(q, k, b, prefix), keep, n,
                                      prefix, b)
    want = _fwd_bwd(lambda *a: reference_attention(*a, layout), q, k, v, g)
    _assert_close(_fwd_bwd(lambda *a: block_sparse_attention(*a, layout), q, k, v, g), want)
    _assert_close(_fwd_bwd(lambda *a: block_sparse_attention_traceable(*a, layout), q, k, v, g),
                  want)


def test_block_sparse_small_cpu_chunks(monkeypatch) -> None:
    import tome_train.attention.block_sparse as bs

    monkeypatch.setattr(bs, "_CPU_CHUNK_BYTES", 1)  # one batch element per chunk
    q, k, v, g = _inputs(3, 2, 77, 8)
    layout = layout_from_block_scores(estimate_block_scores(q, k, 16, 2), 0.4, 77, 2, 16)
    want = _fwd_bwd(lambda *a: reference_attention(*a, layout), q, k, v, g)
    _assert_close(_fwd_bwd(lambda *a: block_sparse_attention(*a, layout), q, k, v, g), want)


def test_keep_one_equals_dense_sdpa() -> None:
    q, k, v, g = _inputs(2, 2, 197, 16)
    layout = layout_from_block_scores(estimate_block_scores(q, k, 32, 1), 1.0, 197, 1, 32)
    want = _fwd_bwd(F.scaled_dot_product_attention, q, k, v, g)
    for impl in ("reference", "block_sparse", "dense", "auto"):
        got = _fwd_bwd(lambda *a, i=impl: sparse_attention(*a, layout, impl=i), q, k, v, g)
        _assert_close(got, want)


@pytest.mark.parametrize("impl", ["block_sparse", "cpu_fused"])
def test_non_contiguous_inputs_and_scale(impl: str) -> None:
    from tome_train.attention import cpu_fused

    if impl == "cpu_fused" and not cpu_fused.is_available():
        pytest.skip(f"fused CPU kernel unavailable: {cpu_fused.build_error()}")
    bsz, n, h, d = 2, 50, 3, 8
    qkv = torch.randn(bsz, n, 3, h, d, requires_grad=True)
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # timm's layout
    layout = layout_from_block_scores(estimate_block_scores(q, k, 16, 1), 0.5, n, 1, 16)
    got = sparse_attention(q, k, v, layout, impl=impl, scale=0.2)
    want = reference_attention(q, k, v, layout, scale=0.2)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    (g1,) = torch.autograd.grad(got.sum(), qkv)
    (g2,) = torch.autograd.grad(want.sum(), qkv)
    torch.testing.assert_close(g1, g2, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_block_sparse_low_precision(dtype) -> None:
    q, k, v, g = _inputs(2, 2, 50, 16, dtype)
    layout = layout_from_block_scores(estimate_block_scores(q, k, 16, 1), 0.5, 50, 1, 16)
    got = _fwd_bwd(lambda *a: block_sparse_attention(*a, layout), q, k, v, g)
    ref = [t.detach().float().requires_grad_(True) for t in (q, k, v)]
    want = _fwd_bwd(lambda *a: reference_attention(*a, layout), *ref, g.float())
    _assert_close(got, want, atol=0.1)
    assert all(t.dtype == dtype for t in got)


def test_dispatch_errors() -> None:
    q, k, v, _ = _inputs(2, 2, 50, 8)
    layout = layout_from_block_scores(estimate_block_scores(q, k, 16, 1), 0.5, 50, 1, 16)
    with pytest.raises(ValueError, match=r"impl must be one of .*block_sparse"):
        sparse_attention(q, k, v, layout, impl="sparse")
    with pytest.raises(ValueError, match="dropout_p"):
        sparse_attention(q, k, v, layout, impl="block_sparse", dropout_p=0.1)
    with pytest.raises(ValueError, match="layout is for"):
        sparse_attention(q[:1], k[:1], v[:1], layout, impl="block_sparse")
    with pytest.raises(ValueError, match=r"\[B, H, N, D\]"):
        sparse_attention(q[0], k[0], v[0], layout)
    with pytest.raises(ValueError, match="attn_keep"):
        choose_impl(197, 0.0, "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            sparse_attention(q, k, v, layout, impl="triton")


def test_auto_dispatch_policy_without_fused_kernel(monkeypatch) -> None:
    from tome_train.attention import cpu_fused

    monkeypatch.setitem(cpu_fused._state, "ext", None)
    monkeypatch.setitem(cpu_fused._state, "error", "disabled for this test")
    assert choose_impl(197, 0.3, "cpu") == "dense"  # the ops kernel would not pay
    assert choose_impl(577, 1.0, "cpu") == "dense"
    assert choose_impl(50, 0.3, "cpu") == "dense"
    assert choose_impl(577, 0.3, "cpu") == "block_sparse"
    # auto with a dense decision computes plain dense attention
    q, k, v, g = _inputs(2, 2, 197, 8)
    layout = layout_from_block_scores(estimate_block_scores(q, k, 33, 1), 0.3, 197, 1, 33)
    got = _fwd_bwd(lambda *a: sparse_attention(*a, layout), q, k, v, g)
    _assert_close(got, _fwd_bwd(F.scaled_dot_product_attention, q, k, v, g))
    # dropout in training falls back to dense instead of failing
    out = sparse_attention(q, k, v, layout, dropout_p=0.5)
    assert out.shape == q.shape


@pytest.mark.slow
@pytest.mark.skipif(not flex_mod.is_available("cpu"), reason="FlexAttention unavailable")
def test_flex_forward_matches_reference() -> None:
    with torch.no_grad():
        q, k, v, _ = _inputs(2, 2, 50, 16)
        layout = layout_from_block_scores(estimate_block_scores(q, k, 32, 2), 0.5, 50, 2, 32)
        got = sparse_attention(q, k, v, layout, impl="flex")
        torch.testing.assert_close(got, reference_attention(q, k, v, layout),
                                   atol=1e-4, rtol=1e-4)


def test_flex_refuses_cpu_backward() -> None:
    q, k, v, _ = _inputs(1, 1, 50, 8)
    layout = layout_from_block_scores(estimate_block_scores(q, k, 16, 1), 0.5, 50, 1, 16)
    with pytest.raises(RuntimeError, match="FlexAttention"):
        sparse_attention(q, k, v, layout, impl="flex")
