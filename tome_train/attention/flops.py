"""FLOPs of sparse attention (one multiply-add = one flop, fvcore convention).

Dense SDPA counts ``B*H*N*N*D`` for QK^T plus ``B*H*N*N*Dv`` for AV. The block-sparse
kernel multiplies ``n_blocks * k`` (query block, key block) pairs of ``b x b`` (padding
of the partial last block included: that is the work actually done) plus the dense
prefix rows, ``P`` queries against all ``nb * b`` (padded) keys. The fused CPU kernel
(``cpu_fused``) skips the padding of the partial last block, so for it this is an upper
bound by at most ``(nb * b - N) / N`` of the sparse attention term (under 0.001 GFLOPs
for DeiT-S at 224 px); its backward recomputes the scores, which forward FLOP counts
(fvcore's convention) do not include for any kernel.

fvcore hook: under ``torch.jit.is_tracing()``, ``sparse_attention`` switches to
``block_sparse_attention_traceable``, whose graph holds ``aten::bmm`` nodes of exactly
these sizes (and gathers/softmax, which fvcore does not count), so
``FlopCountAnalysis`` counts the sparse work natively with no custom handle; the total
equals :func:`sparse_attention_flops`. The dense fallback traces as plain SDPA.
"""

from __future__ import annotations

from .layout import BlockLayout

__all__ = ["dense_attention_flops", "sparse_attention_flops"]


def dense_attention_flops(batch: int, heads: int, num_tokens: int, head_dim: int,
                          value_dim: int | None = None) -> int:
    dv = head_dim if value_dim is None else value_dim
    return batch * heads * num_tokens * num_tokens * (head_dim + dv)


def sparse_attention_flops(batch: int, heads: int, num_tokens: int, head_dim: int,
                           layout: BlockLayout | None = None, *,
                           blocks_per_row: int | None = None, block_size: int | None = None,
                           num_prefix_tokens: int | None = None,
                           value_dim: int | None = None) -> int:
    """Multiply-adds of the block-sparse forward for one attention call.

    Pass a ``layout`` or (``blocks_per_row``, ``block_size``, ``num_prefix_tokens``).
    """
    if layout is not None:
        b, k, p = layout.block_size, layout.blocks_per_row, layout.num_prefix_tokens
    else:
        if blocks_per_row is None or block_size is None:
            raise ValueError("pass layout=... or both blocks_per_row= and block_size=")
        b, k, p = block_size, blocks_per_row, num_prefix_tokens or 0
    dv = head_dim if value_dim is None else value_dim
    nb = -(-num_tokens // b)
    pairs = nb * k * b * b + p * nb * b
    return batch * heads * pairs * (head_dim + dv)
