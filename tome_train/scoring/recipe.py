"""Training recipes for scoring runs.

A scoring run trains a model only to read per-sample statistics off it. For CNNs the
data-pruning literature trains it the classical way: DeepCore's selection training (and
Toneva et al.'s) is SGD with momentum, no warm-up, plain cross-entropy and a cosine decay.
``tools/train.py``'s defaults are DeiT's instead (AdamW, 5 warm-up epochs, label
smoothing): on a short scoring run the LR is still warming up when the run ends, and a
forgetting count over it is nearly all zeros. ViTs keep those defaults, since SGD at 0.1
does not train them.
"""

from __future__ import annotations

from ..validation import flags_given

__all__ = ["RECIPES", "apply_recipe", "recipe_argv", "resolve_recipe"]

# tools/train.py flags of each recipe; flags given after them on the command line win.
# A command line that names its own --opt brings that optimizer's defaults: the recipe's
# optimizer settings are dropped then (SGD's LR and momentum make no sense for AdamW).
_OPTIMIZER_FLAGS = ("--opt", "--lr", "--momentum", "--weight-decay")
RECIPES: dict[str, tuple[str, ...]] = {
    "deepcore": ("--opt", "sgd", "--lr", "0.1", "--momentum", "0.9", "--weight-decay", "5e-4",
                 "--batch-size", "128", "--warmup-epochs", "0", "--min-lr", "0", "--smoothing", "0"),
    "train": (),
}


def resolve_recipe(recipe: str, model: str) -> str:
    """``recipe`` itself, or for ``"auto"``: ``"train"`` for a model the token-level patch
    applies to (a ViT), ``"deepcore"`` for any other (a CNN)."""
    if recipe != "auto":
        if recipe not in RECIPES:
            raise ValueError(f"recipe must be 'auto' or one of {', '.join(RECIPES)}, got {recipe!r}")
        return recipe
    import torch

    from tome_train.models import create_model

    from ..patch.timm import patchable

    with torch.device("meta"):  # structure only: no weights are allocated
        model_obj = create_model(model, arg="--model")
    return "train" if patchable(model_obj) else "deepcore"


def recipe_argv(recipe: str, given: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The ``tools/train.py`` flags of a resolved recipe, to be placed before ``given`` (the
    flags of the command line); without the optimizer settings when ``given`` sets ``--opt``."""
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {', '.join(RECIPES)}, got {recipe!r}")
    flags = RECIPES[recipe]
    pairs = [(flags[i], flags[i + 1]) for i in range(0, len(flags), 2)]
    if "--opt" in flags_given(given):
        pairs = [(k, v) for k, v in pairs if k not in _OPTIMIZER_FLAGS]
    return [x for pair in pairs for x in pair]


def apply_recipe(train_argv: list[str], recipe: str = "auto") -> tuple[str, list[str]]:
    """``(resolved recipe, train_argv with the recipe's flags placed first)``: argparse keeps
    the last value of a flag, so every flag of ``train_argv`` wins over the recipe's."""
    from ..job.args import parse_args, resolve_defaults

    model = resolve_defaults(parse_args(list(train_argv)), 1).model
    name = resolve_recipe(recipe, model)
    return name, [*recipe_argv(name, train_argv), *train_argv]
