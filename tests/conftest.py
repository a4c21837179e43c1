"""Shared fixtures: a fixed seed per test and the optional shared real data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import tome_train  # noqa: F401  (registers the project's models)

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The optional real data beside the repository; tests using it skip when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not available at {SHARED_DATA}")
    return SHARED_DATA
