"""A user's fitted scikit-learn Pipeline read from the file it was saved to, safely.

    skops file          audited: only trusted types (src/engine/model_types.py) are loaded
    joblib / pickle     only with trust_pickle: unpickling runs code from the file, so it happens in
                        a child process with memory, CPU and time limits, which hands back skops bytes
                        audited like any skops file; this process never unpickles anything
    MLflow directory    its MLmodel file (the `sklearn` flavour) names the model file, its format
                        (pickle, cloudpickle or skops) and the Python and scikit-learn versions it was
                        made with; read without MLflow

Every refusal is a ModelSourceError with a one-line reason; nothing is published from here.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sklearn.pipeline import Pipeline

from src.documents import DocumentError, read_file, read_json, read_yaml
from src.store.serialization import UnusableModelError, load_pipeline, read_schema

MLMODEL_FILE = "MLmodel"
_MAX_MLMODEL_BYTES = 1_000_000
PICKLE_MEMORY_BYTES = 4 << 30
PICKLE_CPU_SECONDS = 120
PICKLE_WALL_SECONDS = 180.0
_UNPICKLE_WORKER = "src.store.unpickle"


_MAX_FIELD_CHARS = 64  # a version string recorded by the file
_MAX_YAML_DEPTH = 32


class ModelSourceError(Exception):
    """The file cannot be imported; the message says why in one line."""


def _field(value: object) -> str | None:
    """A short plain value the file records (a version), or None: never a container stringified."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    text = str(value)
    return text if len(text) <= _MAX_FIELD_CHARS else None


@dataclass(frozen=True)
class ModelSource:
    """A Pipeline read from a user's file, and what the file says about where it was made."""

    pipeline: Pipeline
    format: str  # skops, pickle, mlflow-pickle, mlflow-cloudpickle, mlflow-skops
    sha256: str
    size: int
    sklearn_version: str | None  # as recorded by the file, when it records it
    python_version: str | None
    skops_bytes: bytes

    def to_metadata(self, path: Path) -> dict[str, Any]:
        return {
            "format": self.format,
            "file": path.name,
            "sha256": self.sha256,
            "bytes": self.size,
            "sklearn_version": self.sklearn_version,
            "python_version": self.python_version,
        }


def _is_skops(data: bytes) -> bool:
    if not data.startswith(b"PK\x03\x04"):
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "schema.json" in archive.namelist()
    except zipfile.BadZipFile:
        return False


def _recorded_sklearn_version(skops_bytes: bytes) -> str | None:
    """The `_sklearn_version` the estimators in a skops file were saved with (without loading them)."""
    try:
        schema = read_schema(skops_bytes)
    except UnusableModelError as error:
        raise ModelSourceError(str(error)) from None
    pending: list[Any] = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            version = node.get("_sklearn_version")
            if isinstance(version, dict) and isinstance(version.get("content"), str):
                try:  # a JsonNode: the value JSON-encoded
                    content = version["content"][:_MAX_FIELD_CHARS]
                    return _field(read_json(content, "a recorded version", max_bytes=_MAX_FIELD_CHARS))
                except DocumentError:
                    return None
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return None


def _read_bounded(path: Path, max_bytes: int) -> bytes:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ModelSourceError(f"{path.name} is {size} bytes, over the limit of {max_bytes} (MAX_MODEL_BYTES)")
        return read_file(path, max_bytes, path.name)  # bounded again: the file may grow after the stat
    except OSError as error:
        raise ModelSourceError(f"cannot read {path.name} ({error.strerror})") from None
    except DocumentError as error:
        raise ModelSourceError(error.message) from None


def _from_skops(data: bytes, max_bytes: int) -> Pipeline:
    try:
        return load_pipeline(data, max_bytes)
    except UnusableModelError as error:
        raise ModelSourceError(str(error)) from None


def limit_resources(memory_bytes: int, cpu_seconds: int) -> None:
    """Cap this process's address space, CPU time and core dumps (never above a cap already set)."""
    for kind, wanted in (
        (resource.RLIMIT_AS, memory_bytes),
        (resource.RLIMIT_CPU, cpu_seconds),
        (resource.RLIMIT_CORE, 0),
    ):
        _, hard = resource.getrlimit(kind)
        value = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(kind, (value, value))


def _limits() -> None:  # runs in the child before it starts Python
    limit_resources(PICKLE_MEMORY_BYTES, PICKLE_CPU_SECONDS)


def _unpickle_in_child(path: Path) -> tuple[bytes, str | None]:
    """Load a pickle or joblib file in a limited child process; its Pipeline as skops bytes, and the
    scikit-learn version the pickle was made with."""
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory(prefix="ml-service-import-") as folder:
        out = Path(folder) / "model.skops"
        try:
            finished = subprocess.run(
                [sys.executable, "-m", _UNPICKLE_WORKER, str(path), str(out)],
                capture_output=True,
                timeout=PICKLE_WALL_SECONDS,
                preexec_fn=_limits,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ModelSourceError(f"loading {path.name} took over {PICKLE_WALL_SECONDS:.0f} s; stopped") from None
        if finished.returncode != 0:
            lines = finished.stderr.decode(errors="replace").strip().splitlines() or [
                f"the loader stopped with status {finished.returncode} (over {PICKLE_MEMORY_BYTES >> 30} GiB "
                f"of memory or {PICKLE_CPU_SECONDS} s of CPU?)"
            ]
            raise ModelSourceError(f"cannot load {path.name}: {lines[-1]}")
        report = json.loads(finished.stdout.decode() or "{}")
        return out.read_bytes(), report.get("sklearn_version")


def _from_pickle(path: Path, max_bytes: int, kind: str) -> tuple[Pipeline, bytes, str | None]:
    skops_bytes, version = _unpickle_in_child(path)
    return _from_skops(skops_bytes, max_bytes), skops_bytes, version


def _refuse_pickle(path: Path) -> ModelSourceError:
    return ModelSourceError(
        f"{path.name} is a pickle (or joblib) file, and loading one runs any code it holds; "
        "import it with --trust-pickle only if you trust whoever made it"
    )


def _inside(folder: Path, name: object) -> Path:
    if not isinstance(name, str) or not name:
        raise ModelSourceError(f"{MLMODEL_FILE} does not name the model file (flavors.sklearn.pickled_model)")
    path = (folder / name).resolve()
    if not path.is_relative_to(folder.resolve()) or not path.is_file():
        raise ModelSourceError(
            f"{MLMODEL_FILE} names a model file {name[:100]!r} that is not a file inside the directory"
        )
    return path


def _read_mlflow(folder: Path, *, trust_pickle: bool, max_bytes: int) -> ModelSource:
    if (folder / MLMODEL_FILE).is_symlink():
        raise ModelSourceError(f"{MLMODEL_FILE} is a symbolic link; the file itself must be in the directory")
    mlmodel = _read_bounded(folder / MLMODEL_FILE, _MAX_MLMODEL_BYTES)
    try:
        document = read_yaml(mlmodel, MLMODEL_FILE, max_bytes=_MAX_MLMODEL_BYTES, max_depth=_MAX_YAML_DEPTH)
    except DocumentError as error:
        raise ModelSourceError(error.message) from None
    flavors = document.get("flavors") if isinstance(document, dict) else None
    sklearn_flavor = flavors.get("sklearn") if isinstance(flavors, dict) else None
    if not isinstance(sklearn_flavor, dict):
        found = ", ".join(str(_field(name)) for name in list(flavors)[:10]) if isinstance(flavors, dict) else "none"
        raise ModelSourceError(f"{MLMODEL_FILE} has no sklearn flavour (flavours: {found})")
    python_flavor = flavors.get("python_function") if isinstance(flavors, dict) else None
    python_version = python_flavor.get("python_version") if isinstance(python_flavor, dict) else None
    path = _inside(folder, sklearn_flavor.get("pickled_model"))
    serialization = _field(sklearn_flavor.get("serialization_format", "cloudpickle")) or "?"
    recorded = sklearn_flavor.get("sklearn_version")
    data = _read_bounded(path, max_bytes)
    if serialization == "skops":
        pipeline, skops_bytes = _from_skops(data, max_bytes), data
    elif serialization in ("pickle", "cloudpickle"):
        if not trust_pickle:
            raise _refuse_pickle(path)
        pipeline, skops_bytes, _ = _from_pickle(path, max_bytes, serialization)
    else:
        raise ModelSourceError(
            f"{MLMODEL_FILE} names serialization format {serialization!r}; supported: "
            "pickle, cloudpickle (with --trust-pickle) and skops"
        )
    return ModelSource(
        pipeline,
        f"mlflow-{serialization}",
        hashlib.sha256(data).hexdigest(),
        len(data),
        _field(recorded),
        _field(python_version),
        skops_bytes,
    )


def read_model_source(path: str | Path, *, trust_pickle: bool, max_bytes: int) -> ModelSource:
    """The Pipeline saved at `path` (a skops, joblib or pickle file, or an MLflow model directory)."""
    path = Path(path)
    if path.is_dir():
        if not (path / MLMODEL_FILE).is_file():
            raise ModelSourceError(f"{path.name} is a directory without an {MLMODEL_FILE} file (not an MLflow model)")
        return _read_mlflow(path, trust_pickle=trust_pickle, max_bytes=max_bytes)
    if not path.exists():
        raise ModelSourceError(f"{path}: no such file or directory")
    data = _read_bounded(path, max_bytes)
    digest = hashlib.sha256(data).hexdigest()
    if _is_skops(data):
        pipeline = _from_skops(data, max_bytes)
        return ModelSource(pipeline, "skops", digest, len(data), _recorded_sklearn_version(data), None, data)
    if not trust_pickle:
        raise _refuse_pickle(path)
    pipeline, skops_bytes, version = _from_pickle(path, max_bytes, "pickle")
    return ModelSource(pipeline, "pickle", digest, len(data), version, None, skops_bytes)
