"""The fused C++ CPU kernel vs the masked-dense reference, its errors and the auto policy.

The kernel is compiled on first use (~45 s, cached by torch). Where a C++ compiler exists
a failed build fails these tests instead of skipping them, so a broken kernel cannot hide.
"""

from __future__ import annotations

import shutil

import pytest
import torch

from tome_train.attention import (
    BlockLayout,
    choose_impl,
    cpu_fused,
    cpu_fused_attention,
    estimate_block_scores,
    layout_from_block_scores,
    reference_attention,
    sparse_attention,
)


@pytest.fixture(scope="module", autouse=True)
def _kernel() -> None:
    if cpu_fused.load_extension() is None:
        if shutil.which("c++") and not cpu_fused.build_error().startswith("disabled"):
            pytest.fail(f"fused CPU kernel failed to build: {cpu_fused.build_error()}")
        pytest.skip(f"fused CPU kernel unavailable: {cpu_fused.build_error()}")


def _case(bsz: int, heads: int, n: int, d: int, b: int, prefix: int, keep: float, dv=None):
    q, k = (torch.randn(bsz, heads, n, d, requires_grad=True) for _ in range(2))
    v = torch.randn(bsz, heads, n, dv or d, requires_grad=True)
    g = torch.randn(bsz, heads, n, dv or d)
    layout = layout_from_block_scores(estimate_block_scores(q, k, b, prefix), keep, n, prefix, b)
    return q, k, v, g, layout


def _fwd_bwd(fn, q, k, v, g):
    out = fn(q, k, v)
    return [out.detach(), *torch.autograd.grad(out, (q, k, v), g)]


def _max_err(got, want) -> float:
    return max((a - b).abs().max().item() for a, b in zip(got, want))


@pytest.mark.parametrize("n,b", [(50, 32), (50, 16), (197, 33), (197, 64), (64, 16), (7, 3)])
@pytest.mark.parametrize("prefix", [0, 1, 5])
@pytest.mark.parametrize("keep", [0.3, 0.6])
def test_matches_reference(n: int, b: int, prefix: int, keep: float) -> None:
    if prefix > b:
        pytest.skip("the prefix must fit in block 0")
    q, k, v, g, layout = _case(2, 3, n, 16, b, prefix, keep)
    want = _fwd_bwd(lambda *a: reference_attention(*a, layout), q, k, v, g)
    got = _fwd_bwd(lambda *a: cpu_fused_attention(*a, layout), q, k, v, g)
    assert _max_err(got, want) <= 1e-4


def test_value_dim_differs_and_keep_one_is_dense() -> None:
    q, k, v, g, layout = _case(2, 2, 77, 16, 16, 2, 0.4, dv=24)
    want = _fwd_bwd(lambda *a: reference_attention(*a, layout), q, k, v, g)
    assert _max_err(_fwd_bwd(lambda *a: cpu_fused_attention(*a, layout), q, k, v, g), want) <= 1e-4
    q, k, v, g, layout = _case(2, 2, 77, 16, 16, 1, 1.0)
    want = _fwd_bwd(torch.nn.functional.scaled_dot_product_attention, q, k, v, g)
    assert _max_err(_fwd_bwd(lambda *a: cpu_fused_attention(*a, layout), q, k, v, g), want) <= 1e-4


def test_bad_inputs_raise_clear_errors() -> None:
    q, k, v, _, layout = _case(2, 2, 50, 8, 16, 1, 0.5)
    with pytest.raises(ValueError, match="float32 CPU"):
        cpu_fused_attention(q.double(), k.double(), v.double(), layout)
    with pytest.raises(ValueError, match="layout is for"):
        cpu_fused_attention(q[:1], k[:1], v[:1], layout)
    bad = BlockLayout(16, 50, 1, torch.full_like(layout.kv_blocks, 7))  # block 7 of 4
    with pytest.raises(RuntimeError, match="kv_blocks values"):
        cpu_fused_attention(q, k, v, bad)
    dup = layout.kv_blocks.clone()
    dup[0, 0] = torch.tensor([0, 0])
    with pytest.raises(RuntimeError, match="sorted without duplicates"):
        cpu_fused_attention(q, k, v, BlockLayout(16, 50, 1, dup))
    with pytest.raises(RuntimeError, match="key block 0"):
        cpu_fused_attention(q, k, v, BlockLayout(16, 50, 1, layout.kv_blocks + 1))


def test_masked_keys_get_zero_probability_and_no_double_backward() -> None:
    # One key at -3e38 logits: dense softmax gives it exactly 0 and so must the kernel,
    # or dS @ K brings the huge key back into dq.
    q, k, v, g, layout = _case(1, 1, 40, 8, 16, 1, 1.0)
    with torch.no_grad():
        q.copy_(q.abs() + 0.1)
        k[0, 0, 20] = -3e37
    want = _fwd_bwd(lambda *a: reference_attention(*a, layout), q, k, v, g)
    got = _fwd_bwd(lambda *a: cpu_fused_attention(*a, layout), q, k, v, g)
    assert _max_err(got, want) <= 1e-4
    out = cpu_fused_attention(q, k, v, layout)
    (dq,) = torch.autograd.grad(out.sum(), q, create_graph=True)
    with pytest.raises(RuntimeError):
        dq.sum().backward()


def test_auto_policy_picks_fused_where_it_pays() -> None:
    q, k, v, _, layout = _case(2, 2, 197, 8, 33, 1, 0.3)
    with torch.no_grad():  # dropout in auto: dense, whatever the grad mode
        assert sparse_attention(q, k, v, layout, dropout_p=0.1).shape == q.shape
    assert choose_impl(577, 0.3, "cpu") == "cpu_fused"
    assert choose_impl(197, 0.3, "cpu") == "cpu_fused"
    assert choose_impl(577, 1.0, "cpu") == "dense"
    assert choose_impl(50, 0.7, "cpu") == "dense"  # two blocks, both kept: nothing skipped
    assert choose_impl(50, 0.3, "cpu") == "dense"  # under MIN_FUSED_TOKENS
    assert choose_impl(577, 0.3, "cpu", dtype=torch.bfloat16) == "block_sparse"
    q, k, v, g, layout = _case(2, 2, 197, 8, 33, 1, 0.3)
    want = _fwd_bwd(lambda *a: reference_attention(*a, layout), q, k, v, g)
    assert _max_err(_fwd_bwd(lambda *a: sparse_attention(*a, layout), q, k, v, g), want) <= 1e-4


def test_disabled_by_environment(monkeypatch) -> None:
    monkeypatch.setattr(cpu_fused, "_state", {"ext": None, "error": None})
    monkeypatch.setenv("TOME_TRAIN_NO_CPU_EXT", "1")
    assert not cpu_fused.is_available()
    assert cpu_fused.build_error() == "disabled by TOME_TRAIN_NO_CPU_EXT"
    q, k, v, _, layout = _case(1, 1, 50, 8, 16, 1, 0.5)
    with pytest.raises(RuntimeError, match="unavailable"):
        cpu_fused_attention(q, k, v, layout)


def test_is_built_only_with_an_up_to_date_library_in_the_cache(tmp_path, monkeypatch) -> None:
    # The compile notice prints only when _is_built is False: a cached build stays quiet.
    import os

    from torch.utils.cpp_extension import LIB_EXT

    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    name = "tome_train_bsa_cpu_test"
    assert not cpu_fused._is_built(name)
    library = tmp_path / name / f"{name}{LIB_EXT}"
    library.write_bytes(b"")
    assert cpu_fused._is_built(name)
    older = cpu_fused._SOURCE.stat().st_mtime - 10
    os.utime(library, (older, older))  # the source changed since: ninja rebuilds
    assert not cpu_fused._is_built(name)
