"""Block-sparse attention in plain PyTorch ops (CPU and CUDA, fp32/bf16/fp16).

Design (measured on a shared 2-core AVX-512 CPU against the fused flash-attention CPU
kernel behind dense ``F.scaled_dot_product_attention``):

* A custom ``autograd.Function``: letting autograd differentiate gathers and softmax
  costs extra full passes over the score tensor and a slow ``index_add`` scatter.
* For each query block its ``k`` kept key/value blocks are gathered (one
  ``index_select`` of whole blocks) and the scores are one batched matmul with
  ``B*H*n_blocks`` folded into the batch dim; softmax runs over kept keys only.
  The ``1/sqrt(d)`` scale and the padding mask of the partial last block are fused into
  that matmul (``baddbmm`` with a broadcast bias). Layouts are sorted, so the last block
  can only sit in the last slot.
* Work is split in chunks of batch elements whose probability tensor stays below
  glibc's 32 MB mmap threshold (fresh larger tensors page-fault on every call and made
  the same batched matmuls 2-3x slower), yet as few chunks as possible: on a loaded
  machine every multi-threaded op can stall a few ms on a descheduled OpenMP thread
  (measured: 6 MB chunks 0.6x dense, 28 MB chunks 0.9x under load; both ~1.6-1.7x
  on a quiet machine), which is also why there are no per-chunk padding copies.
* The backward reuses the saved probabilities and gathered blocks (cheap at keep ~0.3)
  with four batched matmuls; key/value block gradients are scattered back with a
  one-hot batched matmul (exact: every output is the sum of its kept terms only).
* Prefix rows (CLS & co.) attend to all keys: computed densely on the side (on CPU with
  the fused flash kernel, else with matmuls) and their key/value gradients added.

On CUDA the whole batch is one chunk (no page-fault issue there).
FLOPs under ``torch.jit`` tracing: see ``flops.py``.
"""

from __future__ import annotations

import torch

from .layout import BlockLayout

__all__ = ["block_sparse_attention"]

# Target size of one chunk's probability tensor (bytes); see the module docstring.
_CPU_CHUNK_BYTES = 28 << 20



def _softmax_(s: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dim, in place."""
    return torch.ops.aten._softmax.out(s, -1, False, out=s)


def _softmax_backward_(dp: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """``p * (dp - sum(dp * p))`` over the last dim, in place in ``dp``."""
    return torch.ops.aten._softmax_backward_data.out(dp, p, -1, p.dtype, grad_input=dp)


def _pad_rows(x: torch.Tensor, n_full: int) -> torch.Tensor:
    """Contiguous ``[B, H, n_full, D]`` copy of ``x`` with zero rows after N."""
    n = x.shape[2]
    if n == n_full:
        return x.contiguous()
    return torch.cat([x, x.new_zeros(x.shape[0], x.shape[1], n_full - n, x.shape[3])], 2)


def _chunk_size(bsz: int, heads: int, nb: int, b: int, kk: int, elem: int,
                device: torch.device) -> int:
    if device.type != "cpu":
        return bsz
    per_elem = heads * nb * b * kk * b * elem
    return max(1, min(bsz, _CPU_CHUNK_BYTES // max(per_elem, 1)))


def _prefix_forward(q_pre: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                    scale: float, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense rows of the prefix queries ``[M, P, D]`` over the padded keys ``[M, Np, D]``.

    Padded keys (index >= n) get probability 0, so the backward can update the
    contiguous padded gradient buffers in place.
    """
    s = torch.baddbmm(q_pre.new_empty(()).expand(q_pre.shape[0], q_pre.shape[1], k.shape[1]),
                      q_pre, k.transpose(1, 2), beta=0.0, alpha=scale)
    if n < k.shape[1]:
        s[:, :, n:] = float("-inf")
    p = _softmax_(s)
    return torch.bmm(p, v), p


def _prefix_backward_(do_pre: torch.Tensor, q_pre: torch.Tensor, k: torch.Tensor,
                      v: torch.Tensor, p: torch.Tensor, scale: float, dk: torch.Tensor,
                      dv: torch.Tensor) -> torch.Tensor:
    """Add the prefix rows' key/value gradients into ``dk``/``dv``; return their dq."""
    dv.baddbmm_(p.transpose(1, 2), do_pre)
    ds = _softmax_backward_(torch.bmm(do_pre, v.transpose(1, 2)), p)
    dk.baddbmm_(ds.transpose(1, 2), q_pre, alpha=scale)
    return torch.bmm(ds, k).mul_(scale)


class _BlockSparseAttn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, kv_blocks, block_size: int, num_prefix: int, scale: float):
        bsz, heads, n, d = q.shape
        dv = v.shape[-1]
        b = block_size
        nb, kk = kv_blocks.shape[1], kv_blocks.shape[2]
        n_full = nb * b
        n_pad = n_full - n
        cb = _chunk_size(bsz, heads, nb, b, kk, q.element_size(), q.device)
        rows = heads * nb  # gathered matrices per batch element
        qp, kp, vp = _pad_rows(q, n_full), _pad_rows(k, n_full), _pad_rows(v, n_full)
        base = torch.arange(bsz * heads, device=q.device).view(bsz, heads, 1) * nb
        idx = (base + kv_blocks.view(bsz, 1, nb * kk)).view(-1)
        if n_pad:  # query blocks whose last slot is the partial last block
            has_last = (kv_blocks[:, :, -1] == nb - 1).view(bsz, 1, nb, 1, 1)
        out = q.new_empty(bsz, heads, n_full, dv)
        out_b = out.view(bsz * rows, b, dv)
        q_b, k_b, v_b = (qp.view(bsz * rows, b, d), kp.view(bsz * rows, b * d),
                         vp.view(bsz * rows, b * dv))
        probs, kgs, vgs = [], [], []
        for s in range(0, bsz, cb):
            r0, r1 = s * rows, min(bsz, s + cb) * rows
            ii = idx[r0 * kk:r1 * kk]
            kg = k_b.index_select(0, ii).view(r1 - r0, kk * b, d)
            vg = v_b.index_select(0, ii).view(r1 - r0, kk * b, dv)
            qc = q_b[r0:r1]
            sc = torch.baddbmm(qc.new_empty(()).expand(r1 - r0, b, kk * b), qc,
                               kg.transpose(1, 2), beta=0.0, alpha=scale)
            if n_pad:  # -inf on the padded keys (only ``n_pad`` columns are touched)
                sc.view(-1, heads, nb, b, kk * b)[..., kk * b - n_pad:].masked_fill_(
                    has_last[s:s + cb], float("-inf"))
            p = _softmax_(sc)
            torch.bmm(p, vg, out=out_b[r0:r1])
            probs.append(p)
            kgs.append(kg)
            vgs.append(vg)
        p_pre = None
        if num_prefix:  # prefix queries attend to every key
            m = bsz * heads
            o_pre, p_pre = _prefix_forward(qp.view(m, n_full, d)[:, :num_prefix],
                                           kp.view(m, n_full, d), vp.view(m, n_full, dv),
                                           scale, n)
            out[:, :, :num_prefix] = o_pre.view(bsz, heads, num_prefix, dv)
        ctx.save_for_backward(q, k, v, kv_blocks)
        ctx.bufs = (probs, kgs, vgs, p_pre, kp, vp)
        ctx.meta = (b, num_prefix, scale, cb)
        return out[:, :, :n] if n_pad else out

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, kv_blocks = ctx.saved_tensors
        probs, kgs, vgs, p_pre, kp, vp = ctx.bufs
        b, num_prefix, scale, cb = ctx.meta
        bsz, heads, n, d = q.shape
        dv = v.shape[-1]
        nb, kk = kv_blocks.shape[1], kv_blocks.shape[2]
        n_full = nb * b
        rows = heads * nb
        qp = _pad_rows(q, n_full)
        do = _pad_rows(grad_out, n_full)
        if num_prefix and do.data_ptr() == grad_out.data_ptr():
            do = do.clone()  # never modify the incoming gradient in place
        if num_prefix:
            do_pre = do[:, :, :num_prefix].clone()
            do[:, :, :num_prefix] = 0  # those rows come from the dense side path
        dq = q.new_empty(bsz, heads, n_full, d)
        dk = k.new_empty(bsz, heads, n_full, d)
        dvv = v.new_empty(bsz, heads, n_full, dv)
        # onehot[bh, j, i*kk+s] = 1 when query block i uses key block j in slot s.
        onehot = q.new_zeros(bsz, nb, nb * kk)
        onehot.scatter_(1, kv_blocks.view(bsz, 1, nb * kk), 1.0)
        onehot = onehot[:, None].expand(bsz, heads, nb, nb * kk).reshape(bsz * heads, nb,
                                                                          nb * kk)
        q_b, do_b = qp.view(bsz * rows, b, d), do.view(bsz * rows, b, dv)
        dq_b = dq.view(bsz * rows, b, d)
        dk_h, dv_h = dk.view(bsz * heads, nb, b * d), dvv.view(bsz * heads, nb, b * dv)
        for ci, s in enumerate(range(0, bsz, cb)):
            r0, r1 = s * rows, min(bsz, s + cb) * rows
            h0, h1 = s * heads, min(bsz, s + cb) * heads
            p, kg, vg = probs[ci], kgs[ci], vgs[ci]
            doc = do_b[r0:r1]
            dvg = torch.bmm(p.transpose(1, 2), doc)
            ds = _softmax_backward_(torch.bmm(doc, vg.transpose(1, 2)), p)
            torch.baddbmm(dq_b[r0:r1], ds, kg, beta=0.0, alpha=scale, out=dq_b[r0:r1])
            dkg = torch.baddbmm(kg, ds.transpose(1, 2), q_b[r0:r1], beta=0.0, alpha=scale)
            oh = onehot[h0:h1]
            torch.bmm(oh, dkg.view(h1 - h0, nb * kk, b * d), out=dk_h[h0:h1])
            torch.bmm(oh, dvg.view(h1 - h0, nb * kk, b * dv), out=dv_h[h0:h1])
        ctx.bufs = None
        if num_prefix:
            m = bsz * heads
            dq_pre = _prefix_backward_(
                do_pre.view(m, num_prefix, dv), qp.view(m, n_full, d)[:, :num_prefix],
                kp.view(m, n_full, d), vp.view(m, n_full, dv), p_pre, scale,
                dk.view(m, n_full, d), dvv.view(m, n_full, dv))
            dq[:, :, :num_prefix] = dq_pre.view(bsz, heads, num_prefix, d)
        if n_full > n:
            dq, dk, dvv = dq[:, :, :n], dk[:, :, :n], dvv[:, :, :n]
        return dq, dk, dvv, None, None, None, None


def block_sparse_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                           layout: BlockLayout, scale: float | None = None) -> torch.Tensor:
    """Attention over the blocks kept by ``layout`` only; q, k, v are ``[B, H, N, D]``."""
    bsz, _, n, d = q.shape
    if layout.num_tokens != n or layout.batch_size != bsz:
        raise ValueError(
            f"layout is for B={layout.batch_size}, N={layout.num_tokens} but q is "
            f"{tuple(q.shape)}"
        )
    if scale is None:
        scale = d**-0.5
    kv = layout.kv_blocks.to(q.device)
    return _BlockSparseAttn.apply(q, k, v, kv, layout.block_size,
                                  layout.num_prefix_tokens, float(scale))


def block_sparse_attention_traceable(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                     layout: BlockLayout,
                                     scale: float | None = None) -> torch.Tensor:
    """Same result with plain differentiable ops, for ``torch.jit`` tracing (fvcore).

    The traced graph holds ``aten::bmm`` nodes of exactly the sizes the fast kernel
    multiplies (gathered blocks and prefix rows), so fvcore's native bmm handle counts
    the sparse work. Slower than the custom Function; not used for training.
    """
    bsz, heads, n, d = q.shape
    dv = v.shape[-1]
    b, p = layout.block_size, layout.num_prefix_tokens
    kv = layout.kv_blocks.to(q.device)
    nb, kk = kv.shape[1], kv.shape[2]
    n_full, m = nb * b, bsz * heads
    scale = d**-0.5 if scale is None else scale
    qp, kp, vp = (_pad_rows(t, n_full) for t in (q, k, v))
    idx = (torch.arange(m, device=q.device).view(bsz, heads, 1) * nb
           + kv.view(bsz, 1, nb * kk)).view(-1)
    kg = kp.reshape(m * nb, b * d).index_select(0, idx).view(m * nb, kk * b, d)
    vg = vp.reshape(m * nb, b * dv).index_select(0, idx).view(m * nb, kk * b, dv)
    s = torch.bmm(qp.reshape(m * nb, b, d), kg.transpose(1, 2)) * scale
    key_pos = (kv * b).view(bsz, 1, nb, kk, 1) + torch.arange(b, device=q.device)
    s = s.view(bsz, heads, nb, b, kk * b).masked_fill(
        (key_pos >= n).view(bsz, 1, nb, 1, kk * b), float("-inf"))
    out = torch.bmm(s.view(m * nb, b, kk * b).softmax(-1), vg).view(bsz, heads, n_full, dv)
    if p:
        s_pre = torch.bmm(qp.reshape(m, n_full, d)[:, :p], kp.reshape(m, n_full, d)
                          .transpose(1, 2)) * scale
        s_pre = s_pre.masked_fill(torch.arange(n_full, device=q.device) >= n, float("-inf"))
        o_pre = torch.bmm(s_pre.softmax(-1), vp.reshape(m, n_full, dv)).view(bsz, heads, p, dv)
        out = torch.cat([o_pre, out[:, :, p:]], 2)
    return out[:, :, :n]
