"""The versioned model store on persistent storage.

    MODEL_DIR/<version>/model.skops     the fitted Pipeline, saved with skops (never pickle)
    MODEL_DIR/<version>/metadata.json   sha256 of model.skops, versions, classes, params, data, scores
    MODEL_DIR/CURRENT                   the active version's name

Publishing writes a version into a hidden temporary folder, renames it into place, then replaces
CURRENT with os.replace, so a crash at any point leaves the previous model active and readable, and
two publishers racing each leave a complete version with CURRENT naming one of them.
The file format (skops, trusted types, compact vocabulary) is src/model/serialization.py's.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import secrets
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sklearn
from sklearn.pipeline import Pipeline

from src.errors import ModelNotFoundError, ModelStoreError, ModelVerificationError
from src.model.serialization import UnusableModelError, dump_pipeline, load_pipeline

logger = logging.getLogger(__name__)

MODEL_FILE = "model.skops"
METADATA_FILE = "metadata.json"
CURRENT_FILE = "CURRENT"
_TEMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class StoredModel:
    """A verified model loaded from the store, with its version and metadata."""

    version: str
    pipeline: Pipeline
    metadata: dict[str, Any]


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durably(path: Path, data: bytes) -> None:
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


class ModelStore:
    """Versioned models under one root folder: publish atomically, find CURRENT, load verified."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def new_version(self) -> str:
        """A unique, time-ordered version name such as 20261126T041500Z-3f9a1c."""
        return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"

    def publish(self, pipeline: Pipeline, metadata: dict[str, Any], *, version: str | None = None) -> str:
        """Store a fitted pipeline as a new version and make it CURRENT; returns the version."""
        version = version or self.new_version()
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / version
        if final.exists():
            raise ModelStoreError(f"version {version} already exists in {self.root}")
        staging = self.root / f"{_TEMP_PREFIX}{version}"
        staging.mkdir()
        try:
            model_bytes = dump_pipeline(pipeline)
            _write_durably(staging / MODEL_FILE, model_bytes)
            full_metadata = {
                **metadata,
                "version": version,
                "sha256": hashlib.sha256(model_bytes).hexdigest(),
                "sklearn_version": sklearn.__version__,
                "python_version": platform.python_version(),
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            _write_durably(staging / METADATA_FILE, json.dumps(full_metadata, indent=2).encode())
            _fsync_dir(staging)
            staging.rename(final)
            _fsync_dir(self.root)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self.activate(version)
        logger.info("published model version %s to %s", version, self.root)
        return version

    def activate(self, version: str) -> None:
        """Point CURRENT at an existing version, atomically."""
        if not (self.root / version / METADATA_FILE).is_file():
            raise ModelNotFoundError(f"no model version {version!r} in {self.root}")
        pointer = self.root / f"{_TEMP_PREFIX}{CURRENT_FILE}-{secrets.token_hex(4)}"
        _write_durably(pointer, f"{version}\n".encode())
        os.replace(pointer, self.root / CURRENT_FILE)  # noqa: PTH105 - the atomic rename is the point
        _fsync_dir(self.root)

    def current_version(self) -> str | None:
        """The version CURRENT names, or None when nothing has been published."""
        try:
            name = (self.root / CURRENT_FILE).read_text().strip()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise ModelStoreError(f"cannot read {self.root / CURRENT_FILE}: {error.strerror}") from None
        return name or None

    def versions(self) -> list[str]:
        """Every complete version in the store, oldest first."""
        if not self.root.is_dir():
            return []
        return sorted(
            entry.name
            for entry in self.root.iterdir()
            if entry.is_dir() and not entry.name.startswith(".") and (entry / METADATA_FILE).is_file()
        )

    def read_metadata(self, version: str) -> dict[str, Any]:
        """A version's metadata.json, checked to be a JSON object."""
        path = self.root / version / METADATA_FILE
        try:
            metadata = json.loads(path.read_text())
        except FileNotFoundError:
            raise ModelNotFoundError(f"no model version {version!r} in {self.root}") from None
        except (OSError, ValueError) as error:
            raise ModelVerificationError(f"model {version}: unreadable {METADATA_FILE} ({error})") from None
        if not isinstance(metadata, dict):
            raise ModelVerificationError(f"model {version}: {METADATA_FILE} is not a JSON object")
        return metadata

    def load(self, version: str | None = None) -> StoredModel:
        """Load and verify a version (CURRENT by default); raises rather than return a doubtful model."""
        if version is None:
            version = self.current_version()
            if version is None:
                raise ModelNotFoundError(f"no model has been published in {self.root} (no {CURRENT_FILE} file)")
        if "/" in version or version.startswith("."):
            raise ModelNotFoundError(f"invalid model version name {version!r}")
        metadata = self.read_metadata(version)
        self._check_versions(version, metadata)
        path = self.root / version / MODEL_FILE
        try:
            data = path.read_bytes()
        except OSError as error:
            raise ModelVerificationError(f"model {version}: cannot read {MODEL_FILE} ({error.strerror})") from None
        if hashlib.sha256(data).hexdigest() != metadata.get("sha256"):
            raise ModelVerificationError(f"model {version}: {MODEL_FILE} does not match the sha256 in its metadata")
        pipeline = self._load_trusted(version, data)
        return StoredModel(version=version, pipeline=pipeline, metadata=metadata)

    @staticmethod
    def _check_versions(version: str, metadata: dict[str, Any]) -> None:
        saved = str(metadata.get("sklearn_version", "unknown"))
        if _minor(saved) != _minor(sklearn.__version__):
            raise ModelVerificationError(
                f"model {version} was saved with scikit-learn {saved} but this server runs "
                f"{sklearn.__version__}; retrain it with `python -m src.model.train_script`"
            )

    @staticmethod
    def _load_trusted(version: str, data: bytes) -> Pipeline:
        try:
            return load_pipeline(data)
        except UnusableModelError as error:
            raise ModelVerificationError(f"model {version}: {error}") from None
