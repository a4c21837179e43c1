"""Block layouts for attention-level sparsity.

A :class:`BlockLayout` says, for every query block, which key blocks it attends to.
Tokens are grouped in contiguous blocks of ``block_size`` (token ``t`` is in block
``t // block_size``; the last block may be partial and its padding is never attended).
Every row of ``kv_blocks`` holds the same number ``k`` of *sorted, distinct* key-block
indices so kernels stay regular (one batched matmul shape), and key block 0 is always
present because it holds the prefix tokens (CLS, distillation, registers: always the
first tokens). On top of the block pattern, the prefix rows are dense: prefix queries
attend to every key. Since block 0 is always kept, every query attends to the prefix
keys as long as ``num_prefix_tokens <= block_size`` (validated).

Builders:

* :func:`estimate_block_scores` -- cheap O((N/b)^2 d) estimate of head-averaged attention
  mass between blocks from mean-pooled q and k (never the dense N x N matrix).
* :func:`layout_from_block_scores` -- keep the top ``ceil(attn_keep * n_blocks)`` key
  blocks per query block (block 0 forced in, counted in that budget).
* :func:`choose_block_size` -- a block size that makes ``ceil(attn_keep * n_blocks)``
  close to ``attn_keep * n_blocks`` while keeping blocks large enough for fast matmuls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..validation import check_fraction

__all__ = [
    "BlockLayout",
    "check_attn_keep",
    "choose_block_size",
    "estimate_block_scores",
    "layout_from_block_scores",
]


def check_attn_keep(attn_keep: float) -> float:
    """Return ``attn_keep`` as float or raise ``ValueError`` if outside (0, 1]."""
    return check_fraction(attn_keep, "attn_keep")


def _num_blocks(num_tokens: int, block_size: int) -> int:
    return -(-num_tokens // block_size)


def kept_blocks_per_row(num_blocks: int, attn_keep: float) -> int:
    """``ceil(attn_keep * num_blocks)`` clamped to [1, num_blocks] (float-noise safe)."""
    k = math.ceil(check_attn_keep(attn_keep) * num_blocks - 1e-9)
    return max(1, min(num_blocks, k))


@dataclass
class BlockLayout:
    """Which key blocks each query block attends to.

    Attributes:
        block_size: tokens per block (the last block may be partial).
        num_tokens: sequence length N (prefix included).
        num_prefix_tokens: leading always-attended tokens, ``0 <= P <= block_size``.
        kv_blocks: LongTensor ``[B, n_blocks, k]``: sorted distinct key-block indices per
            query block, block 0 always present. Shared by all heads.
    """

    block_size: int
    num_tokens: int
    num_prefix_tokens: int
    kv_blocks: torch.Tensor

    def __post_init__(self) -> None:
        if self.block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {self.block_size}")
        if self.num_tokens < 1:
            raise ValueError(f"num_tokens must be >= 1, got {self.num_tokens}")
        if not 0 <= self.num_prefix_tokens <= min(self.block_size, self.num_tokens):
            raise ValueError(
                "num_prefix_tokens must be in [0, min(block_size, num_tokens)] so the prefix "
                f"fits in key block 0, got {self.num_prefix_tokens} (block_size={self.block_size}, "
                f"num_tokens={self.num_tokens})"
            )
        kv = self.kv_blocks
        if not isinstance(kv, torch.Tensor) or kv.dim() != 3 or kv.dtype != torch.long:
            raise ValueError(
                "kv_blocks must be a LongTensor of shape [B, n_blocks, k], got "
                f"{getattr(kv, 'dtype', type(kv))} {tuple(getattr(kv, 'shape', ()))}"
            )
        if kv.shape[1] != self.num_blocks or not 1 <= kv.shape[2] <= self.num_blocks:
            raise ValueError(
                f"kv_blocks must have shape [B, {self.num_blocks}, k] with 1 <= k <= "
                f"{self.num_blocks} for num_tokens={self.num_tokens}, "
                f"block_size={self.block_size}; got {tuple(kv.shape)}"
            )

    @property
    def num_blocks(self) -> int:
        return _num_blocks(self.num_tokens, self.block_size)

    @property
    def blocks_per_row(self) -> int:
        return int(self.kv_blocks.shape[2])

    @property
    def batch_size(self) -> int:
        return int(self.kv_blocks.shape[0])

    def validate(self) -> BlockLayout:
        """Check the index values (sorted, distinct, in range, block 0 present).

        Synchronises with the device, so kernels do not call it on every step; the
        builders below always produce valid layouts.
        """
        kv = self.kv_blocks
        if kv.numel() == 0:
            return self
        if int(kv.min()) < 0 or int(kv.max()) >= self.num_blocks:
            raise ValueError(f"kv_blocks values must be in [0, {self.num_blocks - 1}]")
        if kv.shape[2] > 1 and bool((kv[..., 1:] <= kv[..., :-1]).any()):
            raise ValueError("kv_blocks rows must be sorted ascending without duplicates")
        if bool((kv[..., 0] != 0).any()):
            raise ValueError("kv_blocks rows must contain key block 0 (the prefix block)")
        return self

    def token_mask(self) -> torch.Tensor:
        """Boolean ``[B, N, N]`` mask (True = attend) implied by the layout."""
        n, b, p = self.num_tokens, self.block_size, self.num_prefix_tokens
        nb = self.num_blocks
        kv = self.kv_blocks
        block_mask = torch.zeros(kv.shape[0], nb, nb, dtype=torch.bool, device=kv.device)
        block_mask.scatter_(2, kv, True)
        tok = torch.arange(n, device=kv.device) // b
        mask = block_mask[:, tok][:, :, tok]
        mask[:, :p, :] = True
        mask[:, :, :p] = True
        return mask

    def kept_fraction(self) -> float:
        """Fraction of the N x N query-key pairs the layout computes (prefix included)."""
        return float(self.token_mask().float().mean())

    def to(self, device: torch.device | str) -> BlockLayout:
        return BlockLayout(self.block_size, self.num_tokens, self.num_prefix_tokens,
                           self.kv_blocks.to(device))


def choose_block_size(num_tokens: int, attn_keep: float, num_prefix_tokens: int = 1,
                      min_block: int = 16, max_block: int = 128,
                      power_of_two: bool = False) -> int:
    """Block size minimising the block-sparse cost model of ``dispatch``.

    Cost ``nb * k * b * (b + 40)`` with ``nb = ceil(N / b)``, ``k = ceil(keep * nb)``:
    the ``b^2`` part is the padded matmul work (so a tiny partial last block or a
    ``ceil`` that rounds ``keep * nb`` far up is penalised), the ``+ 40`` part the
    per-row overhead of gathers and of small, inefficient matmuls. Blocks must hold the
    prefix tokens and there must be at least 2 blocks (else attention is dense anyway).
    When possible ``k >= 2``, so every query block gets at least one key block chosen by
    score besides the forced prefix block 0 (``k = 1`` would attend to block 0 only).
    ``power_of_two``: only 16, 32, 64, 128 (FlexAttention's Triton tiles need them).
    """
    keep = check_attn_keep(attn_keep)
    best, best_cost = None, math.inf
    sizes = range(max(min_block, num_prefix_tokens, 1), max_block + 1)
    for b in (b for b in sizes if not power_of_two or b in (16, 32, 64, 128)):
        nb = _num_blocks(num_tokens, b)
        if nb < 2:
            break
        k = kept_blocks_per_row(nb, keep)
        cost = nb * k * b * (b + 40) * (1 if k >= 2 or k == nb else 100)
        if cost < best_cost:
            best, best_cost = b, cost
    if best is None:  # very short sequence: two blocks (dispatch will use dense anyway)
        best = max(num_prefix_tokens, 1, _num_blocks(num_tokens, 2))
    return best


def estimate_block_scores(q: torch.Tensor, k: torch.Tensor, block_size: int,
                          num_prefix_tokens: int = 0) -> torch.Tensor:
    """Head-averaged attention mass between query and key blocks, ``[B, nb, nb]``.

    Mean-pools q and k over each block (padding excluded), takes the softmax over key
    blocks of the pooled logits, weights each key block by its token count (a block of
    ``m`` similar keys gets ~``m`` times the mass of one key) and averages over heads.
    Cost O(B H (N/b)^2 D) instead of O(B H N^2 D). ``num_prefix_tokens`` is accepted
    for symmetry with the kernels: block 0 is always kept by the layout builder, so
    the estimate does not need to treat prefix tokens specially.
    """
    if q.dim() != 4 or k.dim() != 4 or q.shape[:3] != k.shape[:3]:
        raise ValueError(
            f"q and k must be [B, H, N, D] with matching B, H, N; got {tuple(q.shape)} and "
            f"{tuple(k.shape)}"
        )
    del num_prefix_tokens
    bsz, heads, n, d = q.shape
    nb = _num_blocks(n, block_size)
    pad = nb * block_size - n
    with torch.no_grad():
        qf, kf = q.float(), k.float()
        if pad:
            qf = torch.nn.functional.pad(qf, (0, 0, 0, pad))
            kf = torch.nn.functional.pad(kf, (0, 0, 0, pad))
        counts = torch.full((nb,), float(block_size), device=q.device)
        counts[-1] = block_size - pad
        qp = qf.view(bsz, heads, nb, block_size, d).sum(3) / counts[:, None]
        kp = kf.view(bsz, heads, nb, block_size, d).sum(3) / counts[:, None]
        logits = qp @ kp.transpose(-1, -2) * d**-0.5 + counts.log()
        return logits.softmax(-1).mean(1)


def layout_from_block_scores(scores: torch.Tensor, attn_keep: float, num_tokens: int,
                             num_prefix_tokens: int, block_size: int) -> BlockLayout:
    """Keep the top ``k = ceil(attn_keep * nb)`` key blocks per query block.

    Rule: key block 0 (prefix) is always kept and counts toward ``k``; the other
    ``k - 1`` are the highest-scoring remaining blocks. Indices are returned sorted.
    ``attn_keep=1.0`` keeps everything (the layout then equals dense attention).
    """
    keep = check_attn_keep(attn_keep)
    nb = _num_blocks(num_tokens, block_size)
    if scores.dim() != 3 or scores.shape[1:] != (nb, nb):
        raise ValueError(
            f"scores must be [B, {nb}, {nb}] for num_tokens={num_tokens}, "
            f"block_size={block_size}; got {tuple(scores.shape)}"
        )
    k = kept_blocks_per_row(nb, keep)
    s = scores.detach().float().clone()
    s[..., 0] = math.inf
    idx = s.topk(k, dim=-1).indices.sort(-1).values
    return BlockLayout(block_size, num_tokens, num_prefix_tokens, idx.contiguous())
