"""Fixtures of the batch tests: the settings of a store holding the trained model."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.config import Settings


@pytest.fixture
def settings(model_dir: Path) -> Settings:
    return Settings(model_dir=model_dir)
