import pytest
import timm
import torch

from tome_train.flops import forward_gflops


@pytest.mark.parametrize("name,size", [("deit_micro_patch2_16", 16), ("deit_micro_patch4_32", 32), ("deit_tiny_patch4_32", 32),
                                       ("deit_small_patch4_32", 32)])
def test_registered_models(name: str, size: int) -> None:
    assert timm.is_model(name)
    model = timm.create_model(name, num_classes=7)
    assert model.default_cfg["input_size"] == (3, size, size)
    assert model(torch.randn(2, 3, size, size)).shape == (2, 7)
    assert len(model.blocks) == 12 and model.num_prefix_tokens == 1
    assert forward_gflops(model) > 0


def test_single_channel_and_no_pretrained() -> None:
    model = timm.create_model("deit_micro_patch2_16", in_chans=1)
    assert model(torch.randn(1, 1, 16, 16)).shape == (1, 10)
    with pytest.raises(ValueError, match="pretrained"):
        timm.create_model("deit_tiny_patch4_32", pretrained=True)
