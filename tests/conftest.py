"""Shared fixtures. Real data and weights live in ../shared (or $MNET_SHARED); tests needing them skip without."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MNET_SHARED", REPO.parent / "shared")).resolve()


def shared_path(*parts: str) -> Path:
    """Path under ../shared, or skip the test with the reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data/weights not available: {path} is missing (set MNET_SHARED to the shared/ folder)")
    return path


@pytest.fixture
def shared():
    """Callable fixture: ``shared('data', 'imagenet')`` returns the path or skips."""
    return shared_path
