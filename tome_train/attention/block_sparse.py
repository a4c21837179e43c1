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
* Work is split in a few chunks of batch elements so intermediates stay in cache and
  below glibc's mmap threshold (fresh multi-10-MB tensors page-fault on every call and
  made the same batched matmuls 2-3x slower), yet few enough that the op count stays
  low: on a loaded machine every multi-threaded op can stall a few ms on a descheduled
  OpenMP thread, which is why there are no per-chunk padding/scaling copies.
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
_CPU_CHUNK_BYTES = 12 << 20

_flash_fwd = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
_flash_bwd = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu_backward",
                     None)


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
    out = x.new_empty(x.shape[0], x.shape[1], n_full, x.shape[3])
    out[:, :, :n].copy_(x)
    out[:, :, n:].zero_()
    return out


def _chunk_size(bsz: int, heads: int, nb: int, b: int, kk: int, elem: int,
                device: torch.device) -> int:
    if device.type != "cpu":
        return bsz
    per_elem = heads * nb * b * kk * b * elem
    return max(1, min(bsz, _CPU_CHUNK_BYTES // max(per_elem, 1)))


def _prefix_forward(q_pre, k, v, scale):
    """Dense rows for the prefix queries: returns (out, state for backward)."""
    if q_pre.device.type == "cpu" and _flash_fwd is not None:
        out, lse = _flash_fwd(q_pre, k, v, 0.0, False, scale=scale)
        return out, (out, lse)
    p = torch.matmul(q_pre, k.transpose(-1, -2)).mul_(scale).softmax(-1)
    return torch.matmul(p, v), (p,)


def _prefix_backward(do_pre, q_pre, k, v, state, scale):
    """Gradients (dq_pre, dk, dv) of the dense prefix rows."""
    if len(state) == 2:
        out, lse = state
        return _flash_bwd(do_pre.contiguous(), q_pre, k, v, out, lse, 0.0, False, scale=scale)
    (p,) = state
    dv = torch.matmul(p.transpose(-1, -2), do_pre)
    ds = _softmax_backward_(torch.matmul(do_pre, v.transpose(-1, -2)), p).mul_(scale)
    return torch.matmul(ds, k), torch.matmul(ds.transpose(-1, -2), q_pre), dv


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
        if n_pad:  # -inf on the padded keys of the last block (last slot only)
            bias = q.new_zeros(bsz, nb, kk, b)
            bias[:, :, -1, b - n_pad:] = torch.where(
                kv_blocks[:, :, -1:] == nb - 1, float("-inf"), 0.0).to(q.dtype)
            bias = bias.view(bsz, 1, nb, 1, kk * b).expand(bsz, heads, nb, 1, kk * b)
            bias = bias.reshape(bsz * rows, 1, kk * b)
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
            if n_pad:
                sc = torch.baddbmm(bias[r0:r1], qc, kg.transpose(1, 2), alpha=scale)
            else:
                sc = torch.baddbmm(qc.new_empty(()).expand(r1 - r0, b, kk * b), qc,
                                   kg.transpose(1, 2), beta=0.0, alpha=scale)
            p = _softmax_(sc)
            torch.bmm(p, vg, out=out_b[r0:r1])
            probs.append(p)
            kgs.append(kg)
            vgs.append(vg)
        pre_state = None
        if num_prefix:  # prefix queries attend to every key
            o_pre, pre_state = _prefix_forward(q[:, :, :num_prefix], k, v, scale)
            out[:, :, :num_prefix] = o_pre
        ctx.save_for_backward(q, k, v, kv_blocks)
        ctx.bufs = (probs, kgs, vgs, pre_state)
        ctx.meta = (b, num_prefix, scale, cb)
        return out[:, :, :n] if n_pad else out

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, kv_blocks = ctx.saved_tensors
        probs, kgs, vgs, pre_state = ctx.bufs
        b, num_prefix, scale, cb = ctx.meta
        bsz, heads, n, d = q.shape
        dv = v.shape[-1]
        nb, kk = kv_blocks.shape[1], kv_blocks.shape[2]
        n_full = nb * b
        rows = heads * nb
        qp = _pad_rows(q, n_full)
        do = _pad_rows(grad_out, n_full)
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
        if n_full > n:
            dq, dk, dvv = dq[:, :, :n], dk[:, :, :n], dvv[:, :, :n]
        if num_prefix:
            dq_pre, dk_pre, dv_pre = _prefix_backward(do_pre, q[:, :, :num_prefix], k, v,
                                                      pre_state, scale)
            dq[:, :, :num_prefix] = dq_pre
            dk += dk_pre
            dvv += dv_pre
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
