"""One model's versioned store on persistent storage (MODEL_DIR/<name>, see registry.py).

    <store>/<version>/model.skops     the fitted Pipeline, saved with skops (never pickle)
    <store>/<version>/metadata.json   sha256 of model.skops, versions, classes, params, data, scores
    <store>/CURRENT                   the active version's name

Publishing checks the Pipeline as every server will when loading it, writes the version into a
hidden temporary folder, renames it into place, then replaces CURRENT with os.replace, so a model
servers would refuse never goes live, a crash at any point leaves the previous model active and
readable, and two publishers racing each leave a complete version with CURRENT naming one of them.
The file format (skops, trusted types, compact vocabulary) is src/store/serialization.py's.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import platform
import re
import secrets
import shutil
import stat
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import scipy
import sklearn
from sklearn.pipeline import Pipeline

from src.config import (
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_MAX_CLASSES,
    DEFAULT_MAX_MODEL_BYTES,
    DEFAULT_MAX_RESPONSE_BYTES,
)
from src.documents import DocumentError, read_json
from src.errors import ModelNotFoundError, ModelStoreError, ModelVerificationError, quoted
from src.store.serialization import UnusableModelError, dump_pipeline, load_pipeline

logger = logging.getLogger(__name__)

MODEL_FILE = "model.skops"
METADATA_FILE = "metadata.json"
CURRENT_FILE = "CURRENT"
_TEMP_PREFIX = ".tmp-"
# Version names are written into CURRENT and joined to the root: no separators, no leading dot.
_VERSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# A temporary folder older than this was left by a crashed publish; a live one is seconds old.
STALE_TEMP_SECONDS = 3600.0
MAX_METADATA_BYTES = 4_000_000
_MAX_CURRENT_BYTES = 256


def check_version_name(version: str, kind: str = "model version") -> str:
    """The name itself if it can name a version (or model) folder; ModelNotFoundError otherwise."""
    if not _VERSION_NAME.fullmatch(version):
        raise ModelNotFoundError(f"invalid {kind} name {quoted(version)}")
    return version


@dataclass(frozen=True)
class OutputLimits:
    """What a model may make a server answer: its classes (MAX_CLASSES), and the bytes of its answer to
    one full batch (MAX_RESPONSE_BYTES for MAX_BATCH_SIZE texts). A model of 20,000 classes answered a
    3 KB request with 183 MB and held a worker's event loop for 20 s."""

    max_classes: int = DEFAULT_MAX_CLASSES
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE

    def check(self, version: str, pipeline: Pipeline) -> None:
        """ModelVerificationError if the model's classes or its answer to a full batch are over the limits."""
        classes = [str(label) for label in getattr(pipeline, "classes_", [])]
        if len(classes) > self.max_classes:
            raise ModelVerificationError(
                f"model {version}: {len(classes)} classes, over the limit of {self.max_classes} (MAX_CLASSES)"
            )
        # One text's JSON answer at most: its label, then each class's name and a float of up to 24 characters.
        per_text = (
            64 + max(map(len, map(json.dumps, classes)), default=0) + sum(len(json.dumps(c)) + 26 for c in classes)
        )
        largest = per_text * self.max_batch_size
        if largest > self.max_response_bytes:
            raise ModelVerificationError(
                f"model {version}: its answer to {self.max_batch_size} texts (MAX_BATCH_SIZE) can reach {largest} "
                f"bytes, over the limit of {self.max_response_bytes} (MAX_RESPONSE_BYTES)"
            )


@dataclass(frozen=True)
class StoredModel:
    """A verified model loaded from the store, with its version and metadata."""

    version: str
    pipeline: Pipeline
    metadata: dict[str, Any]


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def fsync_dir(path: Path) -> None:
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
    """Versioned models under one root folder: publish atomically, find CURRENT, load verified.

    `max_model_bytes` bounds a model file (and what it may unpack to) before any of it is read.
    Errors name the model (`name`), not the folder: servers show them on keyless endpoints. A
    CURRENT, version folder or file that is a symbolic link leading out of the store is refused.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        max_model_bytes: int = DEFAULT_MAX_MODEL_BYTES,
        name: str | None = None,
        output: OutputLimits | None = None,
        in_use: Callable[[ModelStore], Collection[str]] | None = None,
    ) -> None:
        self.root = Path(root)
        self.max_model_bytes = max_model_bytes
        self.name = name or self.root.name
        self.output = output or OutputLimits()
        # The versions something beside CURRENT still needs (a running rollout's, given by the registry:
        # src/store/rollout.py builds on this module); prune never removes them.
        self.in_use = in_use

    def new_version(self) -> str:
        """A unique, time-ordered version name such as 20261126T041500123Z-3f9a1c (to the millisecond).

        Names sort in publishing order, which prune and roll back rely on; seconds alone left two
        versions published within one second in random order.
        """
        now = datetime.now(UTC)
        return f"{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}Z-{secrets.token_hex(3)}"

    def publish(
        self, pipeline: Pipeline, metadata: dict[str, Any], *, version: str | None = None, keep: int | None = None
    ) -> str:
        """Store a fitted pipeline as a new version and make it CURRENT; returns the version.

        With `keep`, older versions beyond the newest `keep` are pruned afterwards (see prune()).
        """
        version = check_version_name(version or self.new_version())
        model_bytes = dump_pipeline(pipeline)
        served = self._load_trusted(version, model_bytes, self.max_model_bytes)
        return self.publish_bytes(model_bytes, served, metadata, version=version, keep=keep)

    def publish_bytes(
        self,
        model_bytes: bytes,
        served: Pipeline,
        metadata: dict[str, Any],
        *,
        version: str | None = None,
        keep: int | None = None,
    ) -> str:
        """Store skops bytes already read back by the trusted loader (`served`, the Pipeline they load
        as) as a new version and make it CURRENT; returns the version. Nothing is serialized again."""
        version = check_version_name(version or self.new_version())
        # What every server will check when it loads the version, checked before anything moves.
        self.output.check(version, served)
        full_metadata = {
            **metadata,
            "version": version,
            "sha256": hashlib.sha256(model_bytes).hexdigest(),
            "sklearn_version": sklearn.__version__,
            "python_version": platform.python_version(),
            "numpy_version": np.__version__,
            "scipy_version": scipy.__version__,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        metadata_bytes = json.dumps(full_metadata, indent=2).encode()
        # Read back as every server will read it, before anything is written: a version servers would
        # refuse is never published, and CURRENT never names one.
        self._check_versions(version, self.parse_metadata(version, metadata_bytes))
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / version
        if final.exists():
            raise ModelStoreError(f"model {self.name}: version {version} already exists")
        staging = self.root / f"{_TEMP_PREFIX}{version}"
        staging.mkdir()
        try:
            _write_durably(staging / MODEL_FILE, model_bytes)
            _write_durably(staging / METADATA_FILE, metadata_bytes)
            fsync_dir(staging)
            staging.rename(final)
            fsync_dir(self.root)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self.activate(version)
        logger.info("published model %s version %s to %s", self.name, version, self.root)
        if keep is not None:
            self.prune(keep)
        return version

    def prune(self, keep: int) -> list[str]:
        """Delete all but the newest `keep` versions (never CURRENT, nor what `in_use` names: a running
        rollout's candidate and baseline) and stale temporary folders.

        Returns the versions deleted. A volume of 1 GiB fills up with every training run otherwise.
        """
        if keep < 1:
            raise ValueError("keep at least one version")
        try:
            protected = {self.current_version(), *(self.in_use(self) if self.in_use else ())}
        except ModelStoreError as error:  # which versions a rollout needs is unknown: keep them all
            logger.warning("model %s: nothing pruned: %s", self.name, error.message)
            return []
        doomed = [version for version in self.versions()[:-keep] if version not in protected]
        for version in doomed:
            # Renamed first, so a half-deleted version never looks complete to a reader.
            trash = self.root / f"{_TEMP_PREFIX}delete-{version}"
            (self.root / version).rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
        if doomed:
            logger.info("pruned %d old model versions from %s: %s", len(doomed), self.root, ", ".join(doomed))
        self.remove_stale_temporaries()
        return doomed

    def remove_stale_temporaries(self, older_than: float = STALE_TEMP_SECONDS) -> list[str]:
        """Delete `.tmp-*` entries older than `older_than` seconds, left by publishes that crashed."""
        if not self.root.is_dir():
            return []
        cutoff = time.time() - older_than
        removed = []
        for entry in self.root.iterdir():
            if entry.name.startswith(_TEMP_PREFIX) and entry.lstat().st_mtime < cutoff:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
                removed.append(entry.name)
        return removed

    def activate(self, version: str) -> None:
        """Point CURRENT at an existing version, atomically (roll back or promote)."""
        check_version_name(version)
        if not self._inside(self.root / version / METADATA_FILE).is_file():
            raise ModelNotFoundError(f"model {self.name} has no version {quoted(version)}")
        pointer = self.root / f"{_TEMP_PREFIX}{CURRENT_FILE}-{secrets.token_hex(4)}"
        _write_durably(pointer, f"{version}\n".encode())
        os.replace(pointer, self.root / CURRENT_FILE)  # noqa: PTH105 - the atomic rename is the point
        fsync_dir(self.root)

    def read_pointer(self, name: str, limit: int) -> bytes | None:
        """Up to `limit` + 1 bytes of a small file at the store's root (CURRENT, ROLLOUT), or None when
        there is none; opened without following a symbolic link, refused unless a regular file."""
        try:
            fd = os.open(self.root / name, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        except OSError as error:
            reason = "it is a symbolic link" if error.errno == errno.ELOOP else error.strerror
            raise ModelStoreError(f"model {self.name}: cannot read {name} ({reason})") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ModelStoreError(f"model {self.name}: cannot read {name} (not a file)")
        with os.fdopen(fd, "rb") as handle:
            return handle.read(limit + 1)

    def current_version(self) -> str | None:
        """The version CURRENT names, or None when nothing has been published.

        CURRENT is opened without following a symbolic link, and only a version name is taken from
        it: its content is never repeated in an error.
        """
        content = self.read_pointer(CURRENT_FILE, _MAX_CURRENT_BYTES)
        if content is None:
            return None
        try:
            name = content.decode("ascii").strip()
        except UnicodeDecodeError:
            name = "\0"
        if not name:
            return None
        if len(content) > _MAX_CURRENT_BYTES or not _VERSION_NAME.fullmatch(name):
            raise ModelStoreError(f"model {self.name}: {CURRENT_FILE} does not hold a version name")
        return name

    def _inside(self, path: Path) -> Path:
        """`path` itself, if it resolves inside the store; ModelVerificationError if a link leads out of it."""
        try:
            resolved = path.resolve()
            root = self.root.resolve()
        except (OSError, RuntimeError) as error:
            raise ModelVerificationError(f"model {self.name}: cannot resolve a path ({error})") from None
        if not resolved.is_relative_to(root):
            raise ModelVerificationError(f"model {self.name}: a symbolic link leads out of the model store")
        return path

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
        path = self._inside(self.root / check_version_name(version) / METADATA_FILE)
        try:
            if path.stat().st_size > MAX_METADATA_BYTES:
                raise ModelVerificationError(f"model {version}: {METADATA_FILE} is over {MAX_METADATA_BYTES} bytes")
            content = path.read_bytes()
        except FileNotFoundError:
            raise ModelNotFoundError(f"model {self.name} has no version {quoted(version)}") from None
        except OSError as error:
            raise ModelVerificationError(f"model {version}: unreadable {METADATA_FILE} ({error.strerror})") from None
        return self.parse_metadata(version, content)

    @staticmethod
    def parse_metadata(version: str, content: bytes) -> dict[str, Any]:
        """A version's metadata from its bytes, as servers read it: bounded in size and depth, a JSON object."""
        try:
            metadata = read_json(
                content, f"model {version}: {METADATA_FILE}", max_bytes=MAX_METADATA_BYTES, finite=False
            )
        except DocumentError as error:
            raise ModelVerificationError(error.message) from None
        if not isinstance(metadata, dict):
            raise ModelVerificationError(f"model {version}: {METADATA_FILE} is not a JSON object")
        return metadata

    def load(self, version: str | None = None) -> StoredModel:
        """Load and verify a version (CURRENT by default); raises rather than return a doubtful model."""
        if version is None:
            version = self.current_version()
            if version is None:
                raise ModelNotFoundError(f"no version published yet (no {CURRENT_FILE})")
        check_version_name(version)
        metadata = self.read_metadata(version)
        self._check_versions(version, metadata)
        path = self._inside(self.root / version / MODEL_FILE)
        try:
            size = path.stat().st_size
            if size > self.max_model_bytes:
                raise ModelVerificationError(
                    f"model {version}: {MODEL_FILE} is {size} bytes, over the limit of {self.max_model_bytes} "
                    "(MAX_MODEL_BYTES)"
                )
            data = path.read_bytes()
        except OSError as error:
            raise ModelVerificationError(f"model {version}: cannot read {MODEL_FILE} ({error.strerror})") from None
        if hashlib.sha256(data).hexdigest() != metadata.get("sha256"):
            raise ModelVerificationError(f"model {version}: {MODEL_FILE} does not match the sha256 in its metadata")
        pipeline = self._load_trusted(version, data, self.max_model_bytes)
        self.output.check(version, pipeline)
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
    def _load_trusted(version: str, data: bytes, max_bytes: int) -> Pipeline:
        try:
            return load_pipeline(data, max_bytes)
        except UnusableModelError as error:
            raise ModelVerificationError(f"model {version}: {error}") from None
