import pytest
import torch

import tome_train  # noqa: F401  (registers the project's models)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
