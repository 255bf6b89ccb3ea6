"""Several named models in one store root, and the single-model layout that came before.

    MODEL_DIR/<name>/<version>/model.skops      each model is a ModelStore of its own
    MODEL_DIR/<name>/<version>/metadata.json
    MODEL_DIR/<name>/CURRENT

The old layout (MODEL_DIR/<version>/..., MODEL_DIR/CURRENT) is read as the default model while
MODEL_DIR/<default>/CURRENT does not exist, so everything published before keeps serving; the first
model published under the default name takes over from it, and `migrate()` moves the old versions
into the new layout. A model folder never holds a metadata.json of its own, an old version folder
always does: that is how the two are told apart.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from src.config import DEFAULT_MAX_MODEL_BYTES, DEFAULT_MODEL_NAME, MODEL_NAME_PATTERN, Settings
from src.errors import ModelNotFoundError, ModelStoreError
from src.store.rollout import protected_versions
from src.store.store import CURRENT_FILE, METADATA_FILE, ModelStore, OutputLimits, fsync_dir

logger = logging.getLogger(__name__)

_MODEL_NAME = re.compile(MODEL_NAME_PATTERN)


def check_model_name(name: str) -> str:
    """The name itself if it can name a model; ModelNotFoundError otherwise.

    CURRENT is refused: in a store still in the old layout, MODEL_DIR/CURRENT is the default model's
    pointer, and a model folder of that name would hide it.
    """
    if not _MODEL_NAME.fullmatch(name):
        raise ModelNotFoundError(f"invalid model name {name!r}: letters, digits, '.', '_' and '-', at most 64")
    if name.upper() == CURRENT_FILE:
        raise ModelNotFoundError(f"invalid model name {name!r}: {CURRENT_FILE} names the old layout's pointer")
    return name


class ModelRegistry:
    """The models under one root: each name's store, which store serves it, and which names exist."""

    def __init__(
        self,
        root: str | Path,
        *,
        default_name: str = DEFAULT_MODEL_NAME,
        max_model_bytes: int = DEFAULT_MAX_MODEL_BYTES,
        output: OutputLimits | None = None,
    ) -> None:
        self.root = Path(root)
        self.default_name = check_model_name(default_name)
        self.max_model_bytes = max_model_bytes
        self.output = output or OutputLimits()

    @classmethod
    def from_settings(cls, settings: Settings, root: str | Path | None = None) -> ModelRegistry:
        """The registry every publisher and server uses: MODEL_DIR (or `root`), the default name, the size limit."""
        return cls(
            settings.model_dir if root is None else root,
            default_name=settings.default_model_name,
            max_model_bytes=settings.max_model_bytes,
            output=OutputLimits(settings.max_classes, settings.max_response_bytes, settings.max_batch_size),
        )

    def store(self, name: str | None = None) -> ModelStore:
        """The store a model of this name publishes to: MODEL_DIR/<name> (the default model by default)."""
        name = check_model_name(self.default_name if name is None else name)
        return ModelStore(
            self.root / name,
            max_model_bytes=self.max_model_bytes,
            name=name,
            output=self.output,
            in_use=protected_versions,
        )

    def legacy_store(self) -> ModelStore:
        """The old single-model layout at the root, read as the default model."""
        return ModelStore(
            self.root,
            max_model_bytes=self.max_model_bytes,
            name=f"{self.default_name} (old layout)",
            output=self.output,
            in_use=protected_versions,
        )

    def stores(self, name: str | None = None) -> list[ModelStore]:
        """Where a model may be served from, in order of preference: its own store, then the old layout."""
        name = self.default_name if name is None else name
        if name == self.default_name:
            return [self.store(name), self.legacy_store()]
        return [self.store(name)]

    def resolve(self, name: str | None = None) -> ModelStore:
        """The first of the model's stores with a CURRENT version (its own store when none has one)."""
        stores = self.stores(name)
        for store in stores:
            if store.current_version() is not None:
                return store
        return stores[0]

    def names(self) -> list[str]:
        """Every model with a published version, sorted; the default one if only the old layout holds it."""
        if not self.root.is_dir():
            return []
        found = set()
        try:
            entries = list(self.root.iterdir())
        except OSError as error:
            raise ModelStoreError(f"cannot list the model store {self.root}: {error.strerror}") from None
        for entry in entries:
            if _is_model_folder(entry):
                found.add(entry.name)
        if self.default_name not in found and self.legacy_store().current_version() is not None:
            found.add(self.default_name)
        return sorted(found)

    def migrate(self) -> list[str]:
        """Move the old layout's versions into MODEL_DIR/<default>/; returns the versions moved.

        Each version is one rename on the same file system. The CURRENT version moves first and the new
        CURRENT is written right after it, so a server always finds the served version in one layout or
        the other; the old CURRENT goes last.
        """
        legacy, target = self.legacy_store(), self.store()
        if target.current_version() is not None:
            raise ModelStoreError(f"{target.root} already has a CURRENT model; nothing was moved")
        current = legacy.current_version()
        versions = legacy.versions()
        order = ([current] if current in versions else []) + [v for v in versions if v != current]
        target.root.mkdir(parents=True, exist_ok=True)
        for version in order:
            if (target.root / version).exists():
                raise ModelStoreError(f"{target.root / version} exists already; move it away first")
            (self.root / version).rename(target.root / version)
            if version == current:
                target.activate(version)
        fsync_dir(target.root)
        (self.root / CURRENT_FILE).unlink(missing_ok=True)
        fsync_dir(self.root)
        if order:
            logger.info("moved %d versions from %s into %s", len(order), self.root, target.root)
        return order


def _is_model_folder(entry: Path) -> bool:
    if not entry.is_dir() or entry.name.startswith(".") or entry.name.upper() == CURRENT_FILE:
        return False
    if not _MODEL_NAME.fullmatch(entry.name):
        return False
    if (entry / METADATA_FILE).exists():  # a version of the old layout
        return False
    try:
        return (entry / CURRENT_FILE).is_file() or any(
            (child / METADATA_FILE).is_file() for child in entry.iterdir() if not child.name.startswith(".")
        )
    except OSError:
        return False
