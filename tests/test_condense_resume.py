"""Condensation checkpoints: a run stopped and continued equals the uninterrupted run, bitwise."""

from __future__ import annotations

import pytest
import torch
from test_condense_methods import FAST, TINY_NET, tiny_pool

from tome_train.condense import METHODS, get_method
from tome_train.condense.checkpoint import load_state, save_state


def new_condenser(method: str, seed: int = 0, **options):
    cls = get_method(method)
    config = cls.config_class().replace({**FAST[method], **options})
    return cls(tiny_pool(), 2, config, model="convnet3", seed=seed, model_kwargs=TINY_NET)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_continued_run_equals_uninterrupted(method: str, tmp_path) -> None:
    whole = new_condenser(method)
    whole.run(3, progress=False)
    path = tmp_path / "state.pt"
    first = new_condenser(method)
    first.run(1, progress=False, checkpoint=path)
    second = new_condenser(method)
    assert load_state(second, path) == 1
    info = second.run(3, progress=False, checkpoint=path)
    assert info["resumed_at"] == 1 and len(info["losses"]) == 3
    assert torch.equal(second.images.detach(), whole.images.detach())
    assert second.history == whole.history
    assert second.cost == whole.cost
    assert second.details() == whole.details()
    third = new_condenser(method)  # the final checkpoint restores the finished run
    assert load_state(third, path) == 3 and torch.equal(third.images.detach(), whole.images.detach())


def test_checkpoint_of_another_run_is_refused(tmp_path) -> None:
    path = tmp_path / "state.pt"
    new_condenser("dm").run(2, progress=False, checkpoint=path)
    with pytest.raises(ValueError, match=r"different run \(config.lr_img: checkpoint 1.0, now 0.5"):
        load_state(new_condenser("dm", lr_img=0.5), path)
    with pytest.raises(ValueError, match="different run.*method: checkpoint 'dm', now 'dsa'"):
        load_state(new_condenser("dsa"), path)
    with pytest.raises(ValueError, match="seed: checkpoint 0, now 1"):
        load_state(new_condenser("dm", seed=1), path)
    resumed = new_condenser("dm")
    load_state(resumed, path)
    with pytest.raises(ValueError, match="--iterations 1 is below the 2 iterations"):
        resumed.run(1, progress=False)


def test_damaged_or_foreign_checkpoint_is_refused(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_state(new_condenser("dm"), tmp_path / "missing.pt")
    foreign = tmp_path / "foreign.pt"
    torch.save({"model": {}}, foreign)
    with pytest.raises(ValueError, match="not a condensation checkpoint"):
        load_state(new_condenser("dm"), foreign)
    path = tmp_path / "state.pt"
    save_state(new_condenser("dm"), path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="truncated"):
        load_state(new_condenser("dm"), path)
