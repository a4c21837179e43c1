"""The attention-level knob (``model.attn_keep``) inside the timm patch."""

import pytest
import timm
import torch

import tome_train.patch as P
from tome_train.flops import forward_gflops

FAMILIES = {
    "deit_tiny_patch16_224": 160,
    "deit_tiny_distilled_patch16_224": 160,
    "deit3_small_patch16_224": 160,
    "vit_small_patch14_reg4_dinov2": 168,
}


@pytest.mark.parametrize("name", list(FAMILIES))
@pytest.mark.parametrize("fuse", [False, True])
def test_sparse_kernels_match_masked_reference_in_model(name: str, fuse: bool) -> None:
    from tome_train.attention import cpu_fused

    size = FAMILIES[name]
    model = timm.create_model(name, img_size=size)
    P.timm(model, keep_rate=0.7, attn_keep=0.3, fuse=fuse)
    x = torch.randn(2, 3, size, size)
    results = {}
    impls = ["reference", "block_sparse"] + (["cpu_fused"] if cpu_fused.is_available() else [])
    for impl in impls:
        model.attn_impl = impl
        model.zero_grad()
        out = model(x)
        out.square().mean().backward()
        results[impl] = (out.detach(), model.blocks[1].attn.qkv.weight.grad.clone())
        layout = model._tome_info["attn_layout"]
        assert layout is not None and layout.num_prefix_tokens == model.num_prefix_tokens
    ref_out, ref_grad = results.pop("reference")
    for impl, (out, grad) in results.items():
        assert torch.allclose(out, ref_out, atol=1e-4), impl
        assert torch.allclose(grad, ref_grad, atol=1e-4), impl


def test_attention_level_changes_output_and_flops() -> None:
    model = timm.create_model("deit_small_patch16_224", img_size=224).eval()
    P.timm(model, keep_rate=0.7, attn_impl="block_sparse")
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        tokens_only = model(x)
        flops_tokens = forward_gflops(model)
        model.attn_keep = 0.3
        both = model(x)
        flops_both = forward_gflops(model)
    assert not torch.allclose(both, tokens_only, atol=1e-4)
    assert flops_both < flops_tokens - 0.01
    model.attn_keep = 1.0  # 1.0 means dense attention
    with torch.no_grad():
        assert torch.allclose(model(x), tokens_only, atol=1e-6)


def test_attention_level_without_token_pruning() -> None:
    model = timm.create_model("deit_tiny_patch16_224", img_size=160)
    ref = timm.create_model("deit_tiny_patch16_224", img_size=160)
    ref.load_state_dict(model.state_dict())
    P.timm(model, keep_rate=1.0, attn_keep=0.5, attn_impl="block_sparse")
    x = torch.randn(2, 3, 160, 160)
    out = model(x)
    assert model._tome_info["token_counts"] == [101] * 12
    assert model._tome_info["attn_layout"] is not None
    assert not torch.allclose(out, ref(x), atol=1e-4)


def test_auto_falls_back_to_dense_for_short_sequences() -> None:
    model = timm.create_model("deit_tiny_patch16_224", img_size=160)
    P.timm(model, keep_rate=0.7, attn_keep=0.3)  # attn_impl="auto"
    model(torch.randn(1, 3, 160, 160))
    assert model._tome_info["attn_layout"] is None  # 70 tokens on CPU: sparsity won't pay


def test_bad_attention_knobs() -> None:
    model = timm.create_model("deit_tiny_patch16_224", img_size=64)
    with pytest.raises(ValueError, match="attn_keep"):
        P.timm(model, attn_keep=0.0)
    with pytest.raises(ValueError, match="attn_impl"):
        P.timm(model, attn_impl="magic")
    assert not P.is_patched(model)
    P.timm(model, attn_keep=0.5)
    model.attn_keep = 3
    with pytest.raises(ValueError, match="attn_keep"):
        model(torch.randn(1, 3, 64, 64))
