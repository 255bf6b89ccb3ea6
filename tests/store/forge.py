"""Versions written into a store past publish(), as a hostile or careless writer of the volume would."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import sklearn

from src.store.store import CURRENT_FILE, METADATA_FILE, MODEL_FILE


def write_version(root: Path, version: str, model_bytes: bytes) -> None:
    """A version whose metadata matches its model file (so only the file's content is judged), made CURRENT."""
    folder = root / version
    folder.mkdir(parents=True)
    (folder / MODEL_FILE).write_bytes(model_bytes)
    metadata = {"sha256": hashlib.sha256(model_bytes).hexdigest(), "sklearn_version": sklearn.__version__}
    (folder / METADATA_FILE).write_text(json.dumps(metadata))
    (root / CURRENT_FILE).write_text(version)
