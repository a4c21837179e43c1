import pytest
import timm
import torch

from tome_train.flops import forward_gflops


@pytest.mark.parametrize("name,chans,size", [("deit_micro_patch2_16", 1, 16), ("deit_micro_patch4_32", 3, 32),
                                             ("deit_tiny_patch4_32", 3, 32), ("deit_small_patch4_32", 3, 32)])
def test_registered_models(name: str, chans: int, size: int) -> None:
    assert timm.is_model(name)
    model = timm.create_model(name, num_classes=7)
    assert model.default_cfg["input_size"] == (chans, size, size)
    assert model.patch_embed.proj.in_channels == chans
    assert model(torch.randn(2, chans, size, size)).shape == (2, 7)
    assert len(model.blocks) == 12 and model.num_prefix_tokens == 1
    assert forward_gflops(model) > 0


def test_single_channel_and_no_pretrained() -> None:
    model = timm.create_model("deit_micro_patch4_32", in_chans=1)
    assert model(torch.randn(1, 1, 32, 32)).shape == (1, 10)
    with pytest.raises(ValueError, match="pretrained"):
        timm.create_model("deit_tiny_patch4_32", pretrained=True)


@pytest.mark.parametrize("name", ["convnet3", "convnet3_bn", "convnet3_ln", "convnet3_nonorm", "convnet3_maxpool",
                                  "resnet18_small", "resnet18_small_in"])
@pytest.mark.parametrize("chans,size", [(1, 28), (3, 32)])
def test_cnn_baselines(name: str, chans: int, size: int) -> None:
    model = timm.create_model(name, num_classes=7, in_chans=chans, img_size=size)
    x = torch.randn(2, chans, size, size)
    feats = model.forward_features(x)
    assert feats.ndim == 2 and feats.shape == (2, model.num_features)
    assert torch.allclose(model.forward_head(feats), model(x), atol=1e-5)
    assert model.get_classifier().out_features == 7
    assert forward_gflops(model, (chans, size, size)) > 0


def test_convnet_is_the_papers_convnet() -> None:
    model = timm.create_model("convnet3", in_chans=1, img_size=28)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [128] * 3
    assert isinstance(model.features[1], torch.nn.GroupNorm) and model.features[1].num_groups == 128
    # 28x28 grey input: the papers pad the first conv by 3, so 32 -> 16 -> 8 -> 4.
    assert model.num_features == 128 * 4 * 4 and model.features[0].padding == (3, 3)
    assert timm.create_model("convnet3", in_chans=1, img_size=28, stem_padding=1).num_features == 128 * 3 * 3
    assert timm.create_model("convnet3", in_chans=3, img_size=32).num_features == 128 * 4 * 4
    with pytest.raises(ValueError, match="norm"):
        timm.create_model("convnet3", norm="bogus")
