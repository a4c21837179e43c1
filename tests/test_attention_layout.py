"""Block layouts: builders, validation, token masks, block-size choice and FLOPs."""

from __future__ import annotations

import math

import pytest
import torch

from tome_train.attention import (
    BlockLayout,
    choose_block_size,
    dense_attention_flops,
    estimate_block_scores,
    layout_from_block_scores,
    sparse_attention,
    sparse_attention_flops,
)


@pytest.mark.parametrize("bad", [0, 0.0, -0.1, 1.01, 2, float("nan"), "x", None])
def test_attn_keep_validation(bad) -> None:
    with pytest.raises(ValueError, match=r"attn_keep.*\(0, 1\]"):
        layout_from_block_scores(torch.rand(1, 4, 4), bad, 128, 1, 32)


@pytest.mark.parametrize("n,b,keep", [(50, 32, 0.3), (197, 32, 0.3), (197, 64, 0.5),
                                      (577, 58, 0.3), (100, 10, 0.05)])
def test_layout_from_scores_rule(n: int, b: int, keep: float) -> None:
    nb = math.ceil(n / b)
    scores = torch.rand(3, nb, nb)
    layout = layout_from_block_scores(scores, keep, n, 1, b)
    kv = layout.kv_blocks
    k = max(1, math.ceil(keep * nb))
    assert kv.shape == (3, nb, k) and kv.dtype == torch.long
    assert (kv[..., 0] == 0).all(), "prefix block 0 must always be kept"
    layout.validate()
    # the other k-1 blocks are the top-scoring ones among blocks 1..nb-1
    for bi in range(3):
        for qi in range(nb):
            want = set((scores[bi, qi, 1:].topk(k - 1).indices + 1).tolist()) if k > 1 else set()
            assert set(kv[bi, qi, 1:].tolist()) == want


def test_keep_one_keeps_everything() -> None:
    layout = layout_from_block_scores(torch.rand(2, 7, 7), 1.0, 197, 1, 32)
    assert layout.blocks_per_row == 7
    assert layout.token_mask().all()
    assert layout.kept_fraction() == 1.0


def test_scores_shape_error() -> None:
    with pytest.raises(ValueError, match="scores must be"):
        layout_from_block_scores(torch.rand(2, 3, 3), 0.5, 197, 1, 32)


def test_layout_validation_errors() -> None:
    kv = torch.zeros(1, 4, 1, dtype=torch.long)
    with pytest.raises(ValueError, match="num_prefix_tokens"):
        BlockLayout(32, 100, 33, kv)
    with pytest.raises(ValueError, match="kv_blocks must have shape"):
        BlockLayout(32, 200, 1, kv)
    with pytest.raises(ValueError, match="LongTensor"):
        BlockLayout(32, 100, 1, kv.int())
    bad = BlockLayout(32, 100, 1, torch.tensor([[[1], [1], [1], [1]]]))
    with pytest.raises(ValueError, match="block 0"):
        bad.validate()
    dup = BlockLayout(32, 100, 1, torch.tensor([[[0, 0]] * 4]))
    with pytest.raises(ValueError, match="sorted"):
        dup.validate()


def test_token_mask_prefix_rows_and_cols() -> None:
    n, b, p = 50, 16, 3
    kv = torch.tensor([[[0], [0], [0], [0]]])
    mask = BlockLayout(b, n, p, kv).token_mask()[0]
    assert mask[:p].all() and mask[:, :p].all()
    # query 40 (block 2) sees block 0 only
    assert mask[40, :16].all() and not mask[40, 16:].any()


def test_estimate_block_scores_shape_and_normalisation() -> None:
    q, k = torch.randn(2, 3, 50, 8), torch.randn(2, 3, 50, 8)
    s = estimate_block_scores(q, k, 16, 1)
    assert s.shape == (2, 4, 4)
    torch.testing.assert_close(s.sum(-1), torch.ones(2, 4))
    # a key block aligned with a query block gets the most mass
    q = torch.zeros(1, 1, 64, 4)
    k = torch.zeros(1, 1, 64, 4)
    q[..., 32:48, 0] = 5.0
    k[..., 32:48, 0] = 5.0
    assert estimate_block_scores(q, k, 16)[0, 2].argmax() == 2
    with pytest.raises(ValueError, match="q and k"):
        estimate_block_scores(torch.randn(2, 3, 50, 8), torch.randn(2, 3, 49, 8), 16)


@pytest.mark.parametrize("n", [50, 197, 577, 1025])
@pytest.mark.parametrize("keep", [0.1, 0.3, 0.5, 1.0])
def test_choose_block_size(n: int, keep: float) -> None:
    b = choose_block_size(n, keep, num_prefix_tokens=5)
    assert 5 <= b and math.ceil(n / b) >= 2


def test_flops_formula() -> None:
    kv = torch.arange(4).repeat(1, 4, 1)  # keep everything, no prefix, N multiple of b
    layout = BlockLayout(16, 64, 0, kv)
    assert sparse_attention_flops(2, 3, 64, 8, layout) == dense_attention_flops(2, 3, 64, 8)
    half = sparse_attention_flops(2, 3, 64, 8, blocks_per_row=2, block_size=16)
    assert half == dense_attention_flops(2, 3, 64, 8) // 2
    with pytest.raises(ValueError, match="layout"):
        sparse_attention_flops(2, 3, 64, 8)


def test_fvcore_counts_traced_block_sparse() -> None:
    fvcore = pytest.importorskip("fvcore.nn")
    bsz, h, n, d, b, p = 2, 3, 50, 8, 16, 2
    q, k, v = (torch.randn(bsz, h, n, d) for _ in range(3))
    layout = layout_from_block_scores(estimate_block_scores(q, k, b, p), 0.5, n, p, b)

    class Attn(torch.nn.Module):
        def forward(self, q, k, v):
            return sparse_attention(q, k, v, layout, impl="block_sparse")

    counter = fvcore.FlopCountAnalysis(Attn(), (q, k, v))
    counter.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    assert counter.total() == sparse_attention_flops(bsz, h, n, d, layout)
