"""The model file: a fitted Pipeline in skops format, loaded only with reviewed types.

skops writes a dict entry by entry, which for a vocabulary of 400k n-grams makes a large file that
takes seconds to load. The vectorizer's `vocabulary_` is therefore saved as one newline-joined
string of terms in index order (`vocabulary_terms_`), and the dict is rebuilt on load.
"""

from __future__ import annotations

import io
import warnings
import zipfile
from typing import Any

import skops.io
from sklearn.exceptions import InconsistentVersionWarning
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.pipeline import FeatureUnion, Pipeline

from src.config import DEFAULT_MAX_MODEL_BYTES
from src.documents import DocumentError, read_json
from src.engine.model_types import trusted_types
from src.engine.pipeline_checks import UnsupportedModelError, check_pipeline


class UnusableModelError(Exception):
    """A model file that is not a skops file, is too large, needs an untrusted type, or is configured
    in a way the service does not serve."""


# A model file of ours unpacks to about 2.5x its size (mostly the vocabulary string in schema.json).
UNPACK_FACTOR = 4
_MAX_MEMBERS = 10_000


# Reviewed: every type a model file may contain (src/engine/model_types.py). Anything else in a file is
# refused before loading.
TRUSTED_TYPES = trusted_types()


def _skops_bytes(pipeline: Pipeline) -> bytes:
    data: bytes = skops.io.dumps(pipeline, compression=zipfile.ZIP_DEFLATED)
    return data


def _vectorizers(pipeline: Pipeline) -> list[Any]:
    """The pipeline's text vectorizers: its first step, or the members of a FeatureUnion there."""
    first = pipeline.steps[0][1] if isinstance(pipeline, Pipeline) and pipeline.steps else None
    if isinstance(first, FeatureUnion):
        members = [m.steps[0][1] if isinstance(m, Pipeline) else m for _, m in first.transformer_list]
        return [m for m in members if not isinstance(m, str)]
    return [first]


def dump_pipeline(pipeline: Pipeline) -> bytes:
    """The skops bytes of a fitted Pipeline, its vocabularies stored compactly; the pipeline is left as it was."""
    compacted: list[tuple[Any, dict[str, int]]] = []
    for vectorizer in _vectorizers(pipeline):
        vocabulary = getattr(vectorizer, "vocabulary_", None)
        if not isinstance(vectorizer, CountVectorizer) or not isinstance(vocabulary, dict):
            continue
        if not any("\n" in term for term in vocabulary):
            compacted.append((vectorizer, vocabulary))
    try:
        for vectorizer, vocabulary in compacted:
            del vectorizer.vocabulary_
            vectorizer.vocabulary_terms_ = "\n".join(sorted(vocabulary, key=vocabulary.__getitem__))
        return _skops_bytes(pipeline)
    finally:
        for vectorizer, vocabulary in compacted:
            if hasattr(vectorizer, "vocabulary_terms_"):
                del vectorizer.vocabulary_terms_
            vectorizer.vocabulary_ = vocabulary


def _restore_vocabulary(pipeline: Pipeline) -> None:
    for vectorizer in _vectorizers(pipeline):
        terms = getattr(vectorizer, "vocabulary_terms_", None)
        if isinstance(terms, str):
            vectorizer.vocabulary_ = {term: index for index, term in enumerate(terms.split("\n"))}
            del vectorizer.vocabulary_terms_


# A skops node is an object of at least `__class__`, `__module__` and `__loader__` (over 40 bytes): a
# schema with far more objects and arrays than its size allows is made to be expanded, not loaded.
_MIN_BYTES_PER_NODE = 16
_MAX_SCHEMA_DEPTH = 256  # a Pipeline of unions of pipelines nests a few dozen levels; the rest is not a model


def read_schema(data: bytes) -> Any:
    """A skops file's schema.json, parsed only after its objects and arrays are counted (189 MB of `{},`
    would take gigabytes to parse); nesting too deep is refused too. UnusableModelError if it cannot be."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            raw = archive.read("schema.json")
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as error:
        raise UnusableModelError(f"not a skops file ({error})") from None
    nodes = raw.count(b"{") + raw.count(b"[")
    if nodes > len(raw) // _MIN_BYTES_PER_NODE + 1_000:
        raise UnusableModelError(f"schema.json holds {nodes} objects and arrays in {len(raw)} bytes: not a model")
    try:
        return read_json(raw, "schema.json", max_bytes=len(raw), max_depth=_MAX_SCHEMA_DEPTH, finite=False)
    except DocumentError as error:
        raise UnusableModelError(f"not a skops file ({error.message})") from None


def _types_in_file(data: bytes) -> set[str]:
    """Every `module.Class` a skops file's schema names, found without loading any of it."""
    schema = read_schema(data)
    found: set[str] = set()
    pending: list[Any] = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if "__module__" in node and "__class__" in node:
                found.add(f"{node['__module__']}.{node['__class__']}")
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return found


def check_archive(data: bytes, max_bytes: int) -> None:
    """Refuse a file over `max_bytes`, or whose members declare more than UNPACK_FACTOR times that.

    Only the zip's central directory is read: a member that inflates to gigabytes (a zip bomb) is
    refused before one byte of it is decompressed. zipfile never reads past a member's declared
    size, so the declared sizes bound what loading can allocate.
    """
    if len(data) > max_bytes:
        raise UnusableModelError(f"the file is {len(data)} bytes, over the limit of {max_bytes} (MAX_MODEL_BYTES)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError) as error:
        raise UnusableModelError(f"not a skops file ({error})") from None
    if len(members) > _MAX_MEMBERS:
        raise UnusableModelError(f"the file has {len(members)} members, over {_MAX_MEMBERS}")
    unpacked = sum(member.file_size for member in members)
    if unpacked > UNPACK_FACTOR * max_bytes:
        raise UnusableModelError(
            f"the file unpacks to {unpacked} bytes, over the limit of {UNPACK_FACTOR} x MAX_MODEL_BYTES "
            f"({UNPACK_FACTOR * max_bytes})"
        )


def load_pipeline(data: bytes, max_bytes: int = DEFAULT_MAX_MODEL_BYTES) -> Pipeline:
    """The Pipeline in skops bytes: size limits first, then TRUSTED_TYPES before loading anything,
    then the loaded Pipeline's parameters (src/store/pipeline_checks.py)."""
    check_archive(data, max_bytes)
    untrusted = sorted(_types_in_file(data) - set(TRUSTED_TYPES))
    if untrusted:
        raise UnusableModelError(f"refusing untrusted types {', '.join(untrusted)}")
    try:
        with warnings.catch_warnings():
            # Which scikit-learn made the file is judged by the store (metadata) and the importer
            # (the recorded version, with parity), not by a warning at load.
            warnings.simplefilter("ignore", InconsistentVersionWarning)
            pipeline = skops.io.loads(data, trusted=TRUSTED_TYPES)
    except Exception as error:  # skops raises many kinds on a damaged file
        raise UnusableModelError(f"cannot load the model file ({error})") from None
    if not isinstance(pipeline, Pipeline):
        raise UnusableModelError("the model file does not hold a scikit-learn Pipeline")
    _restore_vocabulary(pipeline)
    try:
        check_pipeline(pipeline)
    except UnsupportedModelError as error:
        raise UnusableModelError(f"unsupported model: {error}") from None
    return pipeline
