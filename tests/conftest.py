"""Shared test helpers: where the repository and the real UGallery files are."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UGALLERY = REPO.parent / "shared" / "ugallery"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def ugallery_dir() -> Path:
    """The real UGallery files; tests that need them skip when the folder is absent."""
    if not (UGALLERY / "valid_sales.csv").exists():
        pytest.skip(f"real UGallery files not found at {UGALLERY}")
    return UGALLERY
