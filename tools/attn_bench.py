"""Iterate on the sparse attention kernels: dense SDPA vs sparse, fwd+bwd, JSON out.

    OMP_NUM_THREADS=2 python tools/attn_bench.py --tokens 577 --attn-keep 0.3
"""

from __future__ import annotations

import argparse
import json

from tome_train.attention.bench import benchmark_attention


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tokens", type=int, default=577)
    ap.add_argument("--attn-keep", type=float, default=0.3)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--prefix", type=int, default=1)
    ap.add_argument("--block-size", type=int, default=None)
    ap.add_argument("--impl", default="auto")
    ap.add_argument("--iters", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    print(json.dumps(benchmark_attention(
        a.tokens, a.attn_keep, batch=a.batch, heads=a.heads, head_dim=a.head_dim,
        impl=a.impl, warmup=a.warmup, iters=a.iters, prefix=a.prefix,
        block_size=a.block_size, device=a.device)))


if __name__ == "__main__":
    main()
