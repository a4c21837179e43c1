"""Attention-level sparsity: block layouts, block-sparse kernels and a dispatcher.

Typical use in a patched timm block (q, k, v are ``[B, H, N, D]``)::

    b = choose_block_size(N, attn_keep, num_prefix_tokens)
    scores = estimate_block_scores(q, k, b, num_prefix_tokens)      # cheap
    layout = layout_from_block_scores(scores, attn_keep, N, num_prefix_tokens, b)
    out = sparse_attention(q, k, v, layout)   # "auto": fused/block-sparse or dense
"""

from .block_sparse import block_sparse_attention, block_sparse_attention_traceable
from .cpu_fused import cpu_fused_attention
from .dispatch import (
    IMPLS,
    choose_impl,
    explain_impl,
    layout_kept_fraction,
    predicted_speedup,
    sparse_attention,
)
from .flops import dense_attention_flops, sparse_attention_flops
from .layout import (
    BlockLayout,
    check_attn_keep,
    choose_block_size,
    estimate_block_scores,
    kept_blocks_per_row,
    layout_from_block_scores,
)
from .reference import reference_attention

__all__ = [
    "IMPLS",
    "BlockLayout",
    "benchmark_attention",
    "block_sparse_attention",
    "block_sparse_attention_traceable",
    "check_attn_keep",
    "choose_block_size",
    "choose_impl",
    "cpu_fused_attention",
    "dense_attention_flops",
    "estimate_block_scores",
    "explain_impl",
    "kept_blocks_per_row",
    "layout_kept_fraction",
    "layout_from_block_scores",
    "predicted_speedup",
    "reference_attention",
    "sparse_attention",
    "sparse_attention_flops",
]


def __getattr__(name: str):  # lazy: bench imports timing helpers only when asked
    if name == "benchmark_attention":
        from .bench import benchmark_attention

        return benchmark_attention
    raise AttributeError(name)
