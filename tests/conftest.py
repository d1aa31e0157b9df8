"""Shared fixtures. Tests build their own tiny images; `shared_data` gives ../shared/data
(the project's development data, never copied into the repo) or skips with a reason."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("UNMASK_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "labels.csv").is_file():
        pytest.skip(f"development data not found at {SHARED_DATA} (set UNMASK_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
