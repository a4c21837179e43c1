import json

import pytest
import timm
import torch
import torch.nn.functional as F

import tome_train.patch as P
from tome_train.cli import flops as flops_cli
from tome_train.flops import TrainingFlopsLedger, count_flops, forward_gflops

# Reference figures (timm 1.0.31, attention matmuls counted,
# fvcore convention: one multiply-add = one flop).
EXPECTED = {
    "deit_tiny_patch16_224": (1.258, 0.815, 0.824),
    "deit_small_patch16_224": (4.608, 3.003, 3.036),
    "deit_base_patch16_224": (17.583, 11.498, 11.623),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_deit_flops_dense_drop_fuse(name: str) -> None:
    dense_ref, drop_ref, fuse_ref = EXPECTED[name]
    model = timm.create_model(name)
    dense = forward_gflops(model)
    P.timm(model, keep_rate=0.7)
    drop = forward_gflops(model)
    model.fuse = True
    fuse = forward_gflops(model)
    assert dense == pytest.approx(dense_ref, rel=0.01)
    assert drop == pytest.approx(drop_ref, rel=0.01)
    assert fuse == pytest.approx(fuse_ref, rel=0.01)


class _Attn(torch.nn.Module):
    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v)


def test_sdpa_handle_counts_both_matmuls() -> None:
    from fvcore.nn import FlopCountAnalysis

    from tome_train.flops import EXTRA_HANDLES

    q, k, v = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 7, 8), torch.randn(2, 3, 7, 4)
    analysis = FlopCountAnalysis(_Attn(), (q, k, v)).set_op_handle(**EXTRA_HANDLES)
    analysis.unsupported_ops_warnings(False)
    assert analysis.total() == 2 * 3 * 5 * 7 * (8 + 4)


def test_count_flops_keeps_rng_and_mode() -> None:
    model = timm.create_model("deit_micro_patch2_16", drop_path_rate=0.1).train()
    state = torch.get_rng_state()
    report = count_flops(model)
    assert torch.equal(state, torch.get_rng_state())
    assert model.training
    assert report.gflops > 0
    with pytest.raises(ValueError, match="input_size"):
        count_flops(model, (3, 16))


def test_token_pruning_reduces_flops_in_proportion() -> None:
    model = timm.create_model("deit_tiny_patch4_32")
    dense = forward_gflops(model)
    P.timm(model, keep_rate=0.5, prune_layers=(0,))
    # After block 0's attention, every later layer runs on 1 + 32 instead of 65 tokens.
    assert forward_gflops(model) < 0.6 * dense


def test_ledger_records_and_round_trips() -> None:
    ledger = TrainingFlopsLedger()
    ledger.record("train", epoch=0, samples=100, forward_gflops=2.0, wall_s=1.5)
    ledger.record(epoch=1, samples=50, forward_gflops=1.0, wall_s=0.5)  # kind defaults to train
    totals = ledger.totals()
    assert totals["train_gflops"] == pytest.approx(3 * (200 + 50))
    assert totals["samples"] == 150 and totals["epochs"] == 2
    other = TrainingFlopsLedger()
    other.load_state_dict(ledger.state_dict())
    assert other.rows == ledger.rows
    with pytest.raises(ValueError, match="samples"):
        ledger.record(epoch=2, samples=-1, forward_gflops=1.0, wall_s=0.0)
    with pytest.raises(ValueError, match="rows"):
        other.load_state_dict({})


def test_ledger_rows_by_kind() -> None:
    """Scoring and selection passes count 1 forward per sample; totals split by kind."""
    ledger = TrainingFlopsLedger()
    train = ledger.record("train", epoch=0, samples=100, forward_gflops=2.0, wall_s=1.0)
    score = ledger.record("score", epoch=0, samples=100, forward_gflops=2.0, wall_s=0.2)
    select = ledger.record("select", step=7, samples=40, forward_gflops=0.5, wall_s=0.1)
    grand = ledger.record("score", samples=10, forward_gflops=1.0, wall_s=0.1, passes=3)
    assert [r["kind"] for r in ledger.rows] == ["train", "score", "select", "score"]
    assert (train["gflops"], score["gflops"], select["gflops"], grand["gflops"]) == (600, 200, 20, 30)
    assert set(train) == {"kind", "epoch", "samples", "forward_gflops_per_sample", "passes", "gflops", "wall_s"}
    assert select["step"] == 7 and "epoch" not in select
    totals = ledger.totals()
    assert totals["train_gflops"] == 600 and totals["gflops"] == 850 and totals["epochs"] == 1
    assert totals["by_kind"]["score"] == {"gflops": 230, "samples": 110, "wall_s": pytest.approx(0.3), "rows": 2}
    assert totals["by_kind"]["select"]["gflops"] == 20 and "condense" not in totals["by_kind"]
    merged = TrainingFlopsLedger()
    merged.extend(ledger.rows)
    merged.extend([{"epoch": 0, "samples": 1, "forward_gflops_per_sample": 1.0, "train_gflops": 3.0,
                    "wall_s": 0.0}])  # a row written before kinds existed
    assert merged.totals()["train_gflops"] == 603 and merged.totals()["gflops"] == 853
    for bad, match in ((dict(kind="eval"), "kind"), (dict(passes=0), "passes"),
                       (dict(forward_gflops=float("nan")), "forward_gflops"), (dict(wall_s=-1), "wall_s")):
        args = {"kind": "score", "samples": 1, "forward_gflops": 1.0, "wall_s": 0.0, **bad}
        with pytest.raises(ValueError, match=match):
            ledger.record(args.pop("kind"), **args)


def test_flops_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert flops_cli.main(["--model", "deit_tiny_patch16_224", "--keep-rate", "0.7", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["dense_gflops"] == pytest.approx(1.258, rel=0.01)
    assert out["sparse_gflops"] == pytest.approx(0.815, rel=0.01)
    assert out["ratio"] == pytest.approx(out["sparse_gflops"] / out["dense_gflops"], rel=1e-3)
    assert out["tokens_per_block"][:5] == [197, 197, 197, 197, 139]


def test_flops_cli_rejects_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        flops_cli.main(["--keep-rate", "0"])
    assert "--keep-rate" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        flops_cli.main(["--model", "deit_tiny_patch16_224", "--prune-layers", "3,12"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "prune_layers" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_flops_cli_counts_a_cnn_dense_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert flops_cli.main(["--model", "convnet3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # convs: 3->128 at 32 px, 128->128 at 16 and 8 px: 3.5 + 37.7 + 9.4 M MACs; plus norms and head
    assert out["family"] == "cnn" and out["dense_gflops"] == pytest.approx(0.0516, abs=0.001)
    assert out["sparse_gflops"] is None and out["keep_rate"] is None and "n/a" in out["note"]
    assert flops_cli.main(["--model", "resnet18_small", "--img-size", "32", "--in-chans", "1"]) == 0
    assert "dense" in capsys.readouterr().out
    for bad in (["--keep-rate", "0.7"], ["--attn-keep", "0.5"]):
        with pytest.raises(SystemExit) as info:
            flops_cli.main(["--model", "convnet3", *bad])
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert bad[0] in err and "not a ViT" in err and "Traceback" not in err
