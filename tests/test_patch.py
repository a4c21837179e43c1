import math

import pytest
import timm
import torch

import tome_train.patch as P
from tome_train.patch import kept_token_count

# Wider models run at 112 px to keep the suite fast on 2 cores; the patch does not
# depend on the token count (the 224 px configurations are covered by the tiny ones).
FAMILIES = {
    "deit_tiny_patch16_224": {},
    "deit_small_patch16_224": {"img_size": 112},
    "deit_base_patch16_224": {"img_size": 112},
    "deit_tiny_distilled_patch16_224": {},
    "deit_small_distilled_patch16_224": {"img_size": 112},
    "deit3_small_patch16_224": {"img_size": 112},
    "deit3_base_patch16_224": {"img_size": 112},
    "vit_small_patch14_reg4_dinov2": {"img_size": 224},
}
PREFIX = {"deit_tiny_distilled_patch16_224": 2, "deit_small_distilled_patch16_224": 2,
          "vit_small_patch14_reg4_dinov2": 5}


def _pair(name: str, **kw):
    kw = {**FAMILIES.get(name, {}), **kw}
    model = timm.create_model(name, pretrained=False, **kw)
    ref = timm.create_model(name, pretrained=False, **kw)
    ref.load_state_dict(model.state_dict())
    return model, ref


def _expected_counts(num_patches: int, prefix: int, keep: float, fuse: bool, depth=12, layers=(3, 6, 9)):
    counts, n = [], num_patches
    for i in range(depth):
        counts.append(prefix + n)
        if i in layers:
            k = kept_token_count(n, keep)
            n = k + (1 if fuse and k < n else 0)
    return counts


@pytest.mark.parametrize("name", list(FAMILIES))
def test_family_identity_and_pruning(name: str) -> None:
    model, ref = _pair(name)
    model.eval(), ref.eval()
    keys = {k: v.clone() for k, v in model.state_dict().items()}
    size = FAMILIES[name].get("img_size", 224)
    x = torch.randn(2, 3, size, size)
    P.timm(model)
    assert list(model.state_dict()) == list(keys)
    with torch.no_grad():
        out, expected = model(x), ref(x)
        assert torch.allclose(out, expected, atol=1e-5)
        model.keep_rate = 0.7
        pruned = model(x)
    assert pruned.shape == expected.shape
    assert not torch.allclose(pruned, expected, atol=1e-5)
    prefix = PREFIX.get(name, 1)
    num_patches = model.patch_embed.num_patches
    assert model._tome_info["token_counts"] == _expected_counts(num_patches, prefix, 0.7, False)
    for k, v in model.state_dict().items():
        assert torch.equal(v, keys[k])


@pytest.mark.parametrize("fused_attn", [True, False])
@pytest.mark.parametrize("train", [True, False])
def test_fused_attention_and_modes(fused_attn: bool, train: bool) -> None:
    model, ref = _pair("deit3_small_patch16_224", img_size=48)
    for m in (model, ref):
        m.train(train)
        for blk in m.blocks:
            blk.attn.fused_attn = fused_attn
    x = torch.randn(3, 3, 48, 48)
    P.timm(model, keep_rate=1.0)
    assert torch.allclose(model(x), ref(x), atol=1e-5)
    model.keep_rate = 0.5
    out = model(x)
    out.sum().backward()
    assert model.blocks[0].attn.qkv.weight.grad is not None


def test_fused_and_unfused_prune_the_same_tokens() -> None:
    model, ref = _pair("deit_tiny_patch16_224", img_size=96)
    P.timm(model, keep_rate=0.6)
    P.timm(ref, keep_rate=0.6)
    for blk in ref.blocks:
        blk.attn.fused_attn = False
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        assert torch.allclose(model.eval()(x), ref.eval()(x), atol=1e-5)


def test_fuse_adds_one_token_per_stage_and_changes_output() -> None:
    model, _ = _pair("deit_tiny_patch16_224")
    P.timm(model.eval(), keep_rate=0.7, fuse=True)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        fused = model(x)
        assert model._tome_info["token_counts"] == _expected_counts(196, 1, 0.7, True)
        model.fuse = False
        dropped = model(x)
    assert not torch.allclose(fused, dropped)


def test_prune_tokens_keeps_prefix_and_top_tokens() -> None:
    x = torch.randn(2, 8, 4)
    scores = torch.tensor([[9.0, 9.0, 0.1, 0.5, 0.2, 0.9, 0.3, 0.0]] * 2)
    out, idx, _ = P.prune_tokens(x, scores, keep_rate=0.5, num_prefix_tokens=2)
    assert out.shape == (2, 5, 4)
    assert torch.equal(out[:, :2], x[:, :2])  # prefix tokens untouched
    assert idx.tolist() == [[1, 3, 4]] * 2  # patch tokens 3, 5, 6 of x, in original order
    assert torch.equal(out[:, 2:], x[:, [3, 5, 6]])


def test_prune_tokens_fuse_is_attention_weighted_mean() -> None:
    x = torch.randn(1, 5, 3)
    scores = torch.tensor([[1.0, 0.4, 0.3, 0.2, 0.1]])
    out, _, _ = P.prune_tokens(x, scores, keep_rate=0.5, num_prefix_tokens=1, fuse=True)
    assert out.shape == (1, 4, 3)
    expected = (x[0, 3] * 0.2 + x[0, 4] * 0.1) / 0.3
    assert torch.allclose(out[0, -1], expected, atol=1e-6)


def test_kept_token_count_is_float_robust() -> None:
    assert kept_token_count(100, 0.7) == 70
    assert kept_token_count(196, 0.7) == 138
    assert kept_token_count(3, 0.01) == 1
    assert kept_token_count(10, 1.0) == 10


def test_unpatch_restores_classes_and_outputs() -> None:
    model, ref = _pair("deit_tiny_distilled_patch16_224", img_size=64)
    classes = [type(model)] + [type(m) for b in model.blocks for m in (b, b.attn)]
    P.timm(model, keep_rate=0.5, fuse=True)
    assert P.is_patched(model)
    patched = [type(m).__name__ for m in (model, model.blocks[0], model.blocks[0].attn)]
    assert patched == ["TokenPruningVisionTransformerDistilled", "TokenPruningBlock",
                       "TokenPruningAttention"]
    P.unpatch(model)
    assert not P.is_patched(model)
    assert [type(model)] + [type(m) for b in model.blocks for m in (b, b.attn)] == classes
    assert not hasattr(model, "keep_rate")
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model.eval()(x), ref.eval()(x))
    with pytest.raises(ValueError, match="not patched"):
        P.unpatch(model)


def test_repatch_only_updates_knobs() -> None:
    model, _ = _pair("deit_tiny_patch16_224", img_size=64)
    P.timm(model, keep_rate=0.5)
    cls = type(model)
    P.timm(model, keep_rate=0.9, prune_layers=(2,))
    assert type(model) is cls and model.keep_rate == 0.9 and model.prune_layers == (2,)


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5, math.nan])
def test_bad_keep_rate_rejected_before_patching(bad: float) -> None:
    model, _ = _pair("deit_tiny_patch16_224", img_size=64)
    cls = type(model)
    with pytest.raises(ValueError, match="keep_rate"):
        P.timm(model, keep_rate=bad)
    assert type(model) is cls and not P.is_patched(model)
    with pytest.raises(ValueError, match="keep_rate"):  # a string is not a number either
        P.timm(model, keep_rate="0.5")


def test_bad_knob_set_later_is_caught_at_forward() -> None:
    model, _ = _pair("deit_tiny_patch16_224", img_size=64)
    P.timm(model)
    model.keep_rate = 2.0
    with pytest.raises(ValueError, match="keep_rate"):
        model(torch.randn(1, 3, 64, 64))


@pytest.mark.parametrize("layers,exc", [((12,), ValueError), ((-1,), ValueError), ((3, 3), ValueError),
                                        ((1.5,), TypeError), (3, TypeError)])
def test_bad_prune_layers(layers, exc) -> None:
    model, _ = _pair("deit_tiny_patch16_224", img_size=64)
    with pytest.raises(exc, match="prune_layers"):
        P.timm(model, prune_layers=layers)
    assert not P.is_patched(model)


def test_non_vit_and_no_class_token_rejected() -> None:
    with pytest.raises(TypeError, match="VisionTransformer"):
        P.timm(timm.create_model("resnet18"))
    with pytest.raises(TypeError, match="VisionTransformer"):
        P.timm(torch.nn.Linear(2, 2))
    vit = timm.create_model("vit_tiny_patch16_224", class_token=False, global_pool="avg", img_size=64)
    with pytest.raises(ValueError, match="class token"):
        P.timm(vit)
    assert not P.is_patched(vit)


def test_project_models_patch_and_train_step() -> None:
    model = timm.create_model("deit_micro_patch2_16")
    P.timm(model, keep_rate=0.5)
    out = model(torch.randn(4, 1, 16, 16))
    assert out.shape == (4, 10)
    out.logsumexp(-1).mean().backward()
    assert model._tome_info["token_counts"] == _expected_counts(64, 1, 0.5, False)


@pytest.mark.parametrize("fuse", [False, True])
def test_stage_token_counts_match_a_forward(fuse: bool) -> None:
    model, _ = _pair("deit_tiny_patch16_224")
    P.timm(model.eval(), keep_rate=0.55, fuse=fuse)
    with torch.no_grad():
        model(torch.randn(1, 3, 224, 224))
    seen = model._tome_info["token_counts"]
    assert model.stage_token_counts() == tuple(seen[layer + 1] - 1 for layer in (3, 6, 9))
