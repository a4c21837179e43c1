"""The learned selector's pipeline: from one whole-data run to a predicted score per sample.

:func:`predict_scores` runs every stage that trains (through :mod:`tome_train.job`, as
``tools/train.py`` does) and times each. Its input is one whole-data run of the
condensation papers' protocol (``tools/coreset.py`` makes it):

1. indicators: the scores of :data:`INDICATOR_SCORES` (measured by the whole-data run's
   hooks), CLS-attention statistics of a small ViT trained for ``vit_epochs`` and patched
   by :mod:`tome_train.patch`, and a PCA of the whole-data network's penultimate features;
2. probes: a class-stratified validation split carved from the training set; k-means
   clusters of the other samples' embeddings (``probe_grouping``: ``class``, one k-means
   group of every class per cluster, or ``global``); per cluster, a ``probe_model`` trained
   on the cluster alone (``--subset``) whose top-1 on the validation split is its label;
3. regressor: an MLP fitted so that each cluster's mean predicted score matches its label.

The cost of every pass is one FLOPs-ledger row of kind ``select`` (with its ``stage``);
the whole-data run's rows are included too, since the learned selector needs that run.
The indicators (the ViT's training most of all) are cached apart from the rest, so a
change to the probes or the regressor reuses them.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ...atomic import atomic_save, load_cache
from ...data import save_indices
from ...flops import TrainingFlopsLedger
from ...scoring import importance
from .indicators import ClsAttentionHook, indicator_matrix, pca_embedding
from .probes import ValidationTop1Hook, class_covering_clusters, kmeans_clusters, validation_split
from .regressor import fit_regressor, predict

INDICATOR_SCORES = ("loss", "el2n", "forgetting", "curvature", "margin")
PROBE_GROUPINGS = ("class", "global")  # LearnedConfig.probe_grouping
DEFAULT_VIT = {"digits": "deit_micro_patch2_16"}  # elsewhere deit_micro_patch4_32
INDICATOR_FIELDS = ("dataset", "data_path", "img_size", "seed", "device", "vit_model", "vit_epochs", "keep_rate",
                    "pca_dims")


@dataclass(frozen=True)
class LearnedConfig:
    """Everything that determines the predicted scores (also their cache key)."""

    dataset: str
    data_path: str | None
    img_size: int
    seed: int = 0
    device: str = "cpu"
    vit_model: str | None = None
    vit_epochs: int = 3
    keep_rate: float = 0.7
    pca_dims: int = 8
    probe_clusters: int = 8
    probe_grouping: str = "class"
    probe_model: str = "convnet3"
    probe_epochs: int = 15
    validation_fraction: float = 0.2
    regressor_steps: int = 300

    def check(self) -> None:
        for name in ("vit_epochs", "pca_dims", "probe_clusters", "probe_epochs", "regressor_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in (0, 1), got {self.validation_fraction}")
        if not 0.0 < self.keep_rate <= 1.0:
            raise ValueError(f"keep_rate must be in (0, 1], got {self.keep_rate}")
        if self.probe_grouping not in PROBE_GROUPINGS:
            raise ValueError(f"probe_grouping must be one of {', '.join(PROBE_GROUPINGS)}, got {self.probe_grouping!r}")


def _train(argv: list[str], hooks: tuple) -> dict[str, Any]:
    from ...job.reuse import (
        train_or_reuse,  # the whole training stack: imported when a probe trains
    )

    summary, _ = train_or_reuse(argv, rerun=True, hooks=hooks)
    return summary


def _common(cfg: LearnedConfig, epochs: int, run_dir: Path) -> list[str]:
    # The engine's test pass is cut to one image: probes and the ViT are judged elsewhere.
    argv = ["--dataset", cfg.dataset, "--img-size", str(cfg.img_size), "--epochs", str(epochs),
            "--eval-every", str(epochs), "--seed", str(cfg.seed), "--device", cfg.device,
            "--limit-test", "1", "--output-dir", str(run_dir), "--no-progress"]
    return argv + (["--data-path", str(cfg.data_path)] if cfg.data_path is not None else [])


def _add_rows(ledger: TrainingFlopsLedger, rows: list[dict[str, Any]], stage: str) -> None:
    for row in rows:
        passes = row.get("passes", 3 if row.get("kind", "train") == "train" else 1)
        added = ledger.record("select", samples=int(row["samples"]), forward_gflops=row["forward_gflops_per_sample"],
                              wall_s=row["wall_s"], epoch=row.get("epoch"), passes=passes)
        added["stage"] = stage


def _eval_row(ledger: TrainingFlopsLedger, summary: dict[str, Any], samples: int, seconds: float,
              stage: str) -> None:
    row = ledger.record("select", samples=samples, forward_gflops=summary["dense_forward_gflops"], wall_s=seconds)
    row["stage"] = stage


def indicator_columns(cfg: LearnedConfig, plain: Any, whole: dict[str, Any], work: Path,
                      ledger: TrainingFlopsLedger) -> dict[str, torch.Tensor]:
    """The raw indicator columns (name -> values; ``pca`` is ``N x pca_dims``)."""
    columns = {name: importance(whole["scores"][name], True) for name in INDICATOR_SCORES}  # +inf -> finite
    vit = cfg.vit_model or DEFAULT_VIT.get(cfg.dataset, "deit_micro_patch4_32")
    hook = ClsAttentionHook(plain, cfg.keep_rate)
    argv = _common(cfg, cfg.vit_epochs, work / "vit") + ["--model", vit, "--warmup-epochs", "1"]
    summary = _train(argv, (hook,))
    _add_rows(ledger, summary["ledger"], "vit")
    _eval_row(ledger, summary, len(plain), hook.seconds, "vit_cls_attention")
    columns.update(hook.stats)
    columns["pca"] = pca_embedding(whole["features"], cfg.pca_dims, cfg.seed)
    return columns


def cluster_labels(cfg: LearnedConfig, plain: Any, features: torch.Tensor, labels: torch.Tensor, work: Path,
                   ledger: TrainingFlopsLedger) -> tuple[torch.Tensor, torch.Tensor, list[float]]:
    """``(train_rows, their k-means cluster, label per cluster)``; labels are probe top-1 in [0, 1]."""
    train_rows, val_rows = validation_split(labels, cfg.validation_fraction, cfg.seed)
    if cfg.probe_clusters > train_rows.numel():
        raise ValueError(f"probe_clusters ({cfg.probe_clusters}) must not exceed the number of samples left "
                         f"for training after the validation split ({train_rows.numel()})")
    if cfg.probe_grouping == "class":
        assignment = class_covering_clusters(features[train_rows], labels[train_rows], cfg.probe_clusters, cfg.seed)
    else:
        assignment = kmeans_clusters(features[train_rows], cfg.probe_clusters, cfg.seed)
    scores = []
    for k in range(cfg.probe_clusters):
        run_dir = work / "probes" / f"cluster{k}"
        rows = train_rows[assignment == k]
        save_indices(rows, run_dir / "indices.pt")
        hook = ValidationTop1Hook(plain, val_rows)
        argv = _common(cfg, cfg.probe_epochs, run_dir) + [
            "--model", cfg.probe_model, "--subset", str(run_dir / "indices.pt"), "--opt", "sgd", "--lr", "0.01",
            "--momentum", "0.9", "--weight-decay", "5e-4", "--batch-size", "64", "--warmup-epochs", "0",
            "--smoothing", "0"]
        summary = _train(argv, (hook,))
        _add_rows(ledger, summary["ledger"], f"probe{k}")
        _eval_row(ledger, summary, int(val_rows.numel()), hook.seconds, f"probe{k}_validation")
        scores.append(hook.top1 / 100.0)
    return train_rows, assignment, scores


def cached_indicators(cfg: LearnedConfig, plain: Any, whole: dict[str, Any], work: Path,
                      ledger: TrainingFlopsLedger, whole_digest: str,
                      rerun: bool) -> tuple[torch.Tensor, list[str], list[str], float]:
    """``(matrix, column names, indicator names, seconds)`` from ``work/indicators.pt`` when it
    was made with the same indicator settings and whole-data run, else computed (and saved).
    The ledger gets the indicator rows either way, and ``seconds`` is what computing took."""
    cache = work / "indicators.pt"
    key = {**{name: getattr(cfg, name) for name in INDICATOR_FIELDS}, "whole_data": whole_digest}
    saved = None if rerun else load_cache(cache)
    if saved is not None:
        if saved.get("config") == key:
            ledger.rows.extend(dict(row) for row in saved["ledger"])
            return saved["matrix"], saved["columns"], saved["indicators"], saved["seconds"]
    start, first_row = time.perf_counter(), len(ledger.rows)
    columns = indicator_columns(cfg, plain, whole, work, ledger)
    matrix, names = indicator_matrix(columns)
    saved = {"config": key, "matrix": matrix, "columns": names, "indicators": list(columns),
             "seconds": time.perf_counter() - start, "ledger": ledger.rows[first_row:]}
    atomic_save(saved, cache)
    return matrix, names, saved["indicators"], saved["seconds"]


def predict_scores(cfg: LearnedConfig, plain: Any, whole: dict[str, Any], work: Path,
                   rerun: bool = False) -> dict[str, Any]:
    """The predicted score of every sample of ``plain`` and the recipe that made it.

    ``whole``: ``features`` and ``labels`` of ``plain`` and the raw ``scores`` of
    :data:`INDICATOR_SCORES` from one whole-data run, with its ``summary``. Cached in
    ``work/learned.pt`` under ``cfg`` and a digest of the embedding (reused unless ``rerun``).
    """
    cfg.check()
    cache = work / "learned.pt"
    features = whole["features"].detach().cpu().contiguous()
    key = {**asdict(cfg), "whole_data": hashlib.sha256(features.numpy().tobytes()).hexdigest()}
    saved = None if rerun else load_cache(cache)
    if saved is not None and saved.get("config") == key:
        return saved
    missing = [name for name in INDICATOR_SCORES if name not in whole["scores"]]
    if missing:
        raise ValueError(f"the whole-data run lacks the indicator scores {', '.join(missing)}")
    ledger = TrainingFlopsLedger()
    _add_rows(ledger, whole["summary"]["ledger"], "whole_data")
    timings: dict[str, float] = {}
    matrix, names, indicators, timings["indicators_s"] = cached_indicators(cfg, plain, whole, work, ledger,
                                                                           key["whole_data"], rerun)
    t0 = time.perf_counter()
    train_rows, assignment, cluster_scores = cluster_labels(cfg, plain, whole["features"], whole["labels"], work,
                                                            ledger)
    timings["probes_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    model, curve = fit_regressor(matrix[train_rows], assignment, torch.tensor(cluster_scores), seed=cfg.seed,
                                 steps=cfg.regressor_steps)
    predicted = predict(model, matrix)
    timings["regressor_s"] = time.perf_counter() - t0
    probe_clusters = torch.full((matrix.shape[0],), -1, dtype=torch.long)
    probe_clusters[train_rows] = assignment
    result = {
        "config": key, "scores": predicted, "probe_clusters": probe_clusters, "cluster_labels": cluster_scores,
        "indicators": indicators, "indicator_columns": names, "regressor_curve": curve, "timings": timings,
        "ledger": ledger.rows, "whole_data_s": float(whole["summary"]["run_wall_s"]),
    }
    atomic_save(result, cache)
    return result
