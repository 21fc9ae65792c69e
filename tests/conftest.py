"""Shared fixtures. Real test data lives in ``../shared/data`` beside the checkout (never copied in)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MLDANET_SHARED_DATA", REPO.parent / "shared" / "data"))

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; tests that need it skip (with the reason) only when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DATA} (set MLDANET_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def kitti_sample(shared_data: Path) -> Path:
    return shared_data / "kitti_sample"


@pytest.fixture(scope="session")
def splits_dir(shared_data: Path) -> Path:
    return shared_data / "splits"
