"""The one bounded reader, and every reader built on it, fed hostile input by hypothesis.

Nested, huge, aliased, truncated and non-UTF-8 documents go to `read_json` and `read_yaml` and to
what reads ROLLOUT, metadata.json, key files, MLmodel files and request bodies: each is refused with
one line (DocumentError, or the caller's own typed error) or a 4xx, never a 500, a traceback, a dead
worker or a stopped store poll.
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from src.api.main import create_app
from src.documents import DocumentError, encode_json, read_json, read_yaml
from src.errors import ModelStoreError
from src.serving.served_models import ServedModels
from src.store import rollout as rollouts
from src.store.model_sources import ModelSourceError, read_model_source
from src.store.registry import ModelRegistry
from src.store.store import ModelStore
from src.tenants.keys import KeyFileError, read_key_file
from tests.conftest import make_settings

READERS = settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _nested(depth: int, kind: str) -> str:
    opening, closing = {"list": ("[", "]"), "object": ('{"a":', "}"), "yaml": ("- ", "")}[kind]
    if kind == "yaml":
        return "".join(f"{'  ' * level}-\n" for level in range(depth)) + "  " * depth + "x\n"
    return opening * depth + "1" + closing * depth


nested = st.builds(_nested, st.integers(65, 6_000), st.sampled_from(["list", "object", "yaml"]))
laughs = st.integers(2, 9).map(
    lambda levels: (
        "a: &a0 [x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]\n" for n in range(1, levels))
    )
)
valid = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
truncated = st.builds(lambda doc, cut: json.dumps(doc)[:cut], valid, st.integers(0, 40))
wide_encodings = st.builds(
    lambda doc, codec: json.dumps(doc).encode(codec), valid, st.sampled_from(["utf-16", "utf-32"])
)
numbers = st.sampled_from(
    ["1e999", "-1e999", "NaN", "Infinity", "9" * 5_000, "[1e400]", "a: 1.0e+999", "a: " + "9" * 5000]
)
hostile: st.SearchStrategy[str | bytes] = st.one_of(
    nested, laughs, truncated, wide_encodings, numbers, st.binary(max_size=200), st.text(max_size=200)
)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def _one_line(message: str, what: str = "") -> None:
    assert message, message
    assert "\n" not in message, message
    assert "Traceback" not in message, message
    assert len(message) < 600, message
    assert message.startswith(what), message


@READERS
@given(hostile)
def test_read_json_returns_a_bounded_document_or_one_line(document: str | bytes) -> None:
    try:
        value = read_json(document, "the document", max_bytes=100_000, max_depth=64)
    except DocumentError as error:
        _one_line(error.message, "the document ")
    else:
        assert _depth(value) <= 64
        assert json.loads(json.dumps(value, allow_nan=False)) == value  # finite, and plain JSON


@READERS
@given(hostile)
def test_read_yaml_returns_a_bounded_document_or_one_line(document: str | bytes) -> None:
    try:
        value = read_yaml(document, "the document", max_bytes=100_000, max_depth=64)
    except DocumentError as error:
        _one_line(error.message, "the document ")
    else:
        assert _depth(value) <= 64
        assert len(json.dumps(value, default=str)) < 200_000  # no alias expanded it


def test_the_bounds_are_held_exactly() -> None:
    assert _depth(read_json(_nested(64, "list"), "x", max_bytes=1_000)) == 64
    with pytest.raises(DocumentError, match="x is nested over 64 levels deep"):
        read_json(_nested(65, "list"), "x", max_bytes=1_000)
    with pytest.raises(DocumentError, match="x is over 10 bytes"):
        read_json(b"[" + b" " * 10 + b"]", "x", max_bytes=10)
    assert read_json(str(2**63 - 1), "x", max_bytes=100) == 2**63 - 1
    with pytest.raises(DocumentError, match="out of range"):
        read_json(str(2**63), "x", max_bytes=100)
    assert read_json('{"a": NaN}', "x", max_bytes=100, finite=False) != {}  # our own files may hold NaN
    with pytest.raises(DocumentError, match="x uses a YAML alias"):
        read_yaml("a: &x [1]\nb: *x\n", "x", max_bytes=100)
    with pytest.raises(DocumentError, match=r"not finite at a\.b"):
        read_yaml("a: {b: .nan}\n", "x", max_bytes=100)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        max_leaves=20,
    )
)
def test_encode_json_writes_every_value_back_as_the_standard_library_reads_it(value: Any) -> None:
    # st.text() draws lone surrogates and st.integers() integers past 64 bits: what orjson refuses
    encoded = encode_json(value)
    assert json.loads(encoded.decode("utf-8")) == value  # strict UTF-8: a surrogate is escaped, not written raw


def test_encode_json_writes_a_non_finite_float_as_null_never_as_javascripts_names() -> None:
    assert encode_json([math.nan, math.inf, -math.inf, "\ud800"]) == b'[null,null,null,"\\ud800"]'


@pytest.fixture(scope="module")
def served_copy(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelStore, ServedModels]:
    root = tmp_path_factory.mktemp("hostile-documents") / "models"
    shutil.copytree(model_dir, root)
    registry = ModelRegistry(root)
    served = ServedModels([registry], default_name=registry.default_name, max_models=8)
    served.load_all()
    return registry.store(), served


@READERS
@given(hostile)
def test_a_hostile_rollout_is_refused_in_one_line_and_the_store_poll_goes_on(
    served_copy: tuple[ModelStore, ServedModels], document: str | bytes
) -> None:
    store, served = served_copy
    path = store.root / rollouts.ROLLOUT_FILE
    path.write_bytes(document if isinstance(document, bytes) else document.encode("utf-8", "surrogatepass"))
    try:
        try:
            rollouts.read_rollout(store)
        except ModelStoreError as error:
            _one_line(error.message, "model sentiment: ")
        asyncio.run(served.reload_if_changed())  # never raises, whatever ROLLOUT holds
        assert served.default.predictor is not None
        assert served.default.traffic is None
    finally:
        path.unlink(missing_ok=True)


@READERS
@given(hostile)
def test_hostile_metadata_is_refused_in_one_line(document: str | bytes) -> None:
    content = document if isinstance(document, bytes) else document.encode("utf-8", "surrogatepass")
    try:
        metadata = ModelStore.parse_metadata("v1", content)
    except ModelStoreError as error:
        _one_line(error.message)
    else:
        assert isinstance(metadata, dict)


@READERS
@given(hostile)
def test_a_hostile_key_file_is_refused_in_one_line(tmp_path: Path, document: str | bytes) -> None:
    path = tmp_path / "keys.yaml"
    path.write_bytes(document if isinstance(document, bytes) else document.encode("utf-8", "surrogatepass"))
    with pytest.raises(KeyFileError) as refused:
        read_key_file(path)
    _one_line(str(refused.value))


@READERS
@given(hostile)
def test_a_hostile_mlmodel_file_is_refused_in_one_line(tmp_path: Path, document: str | bytes) -> None:
    folder = tmp_path / "mlflow-model"
    folder.mkdir(exist_ok=True)
    (folder / "MLmodel").write_bytes(
        document if isinstance(document, bytes) else document.encode("utf-8", "surrogatepass")
    )
    with pytest.raises(ModelSourceError) as refused:
        read_model_source(folder, trust_pickle=False, max_bytes=10_000_000)
    _one_line(str(refused.value))


@pytest.fixture(scope="module")
def body_client(model_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(model_dir)), raise_server_exceptions=False) as client:
        yield client


BODY_ROUTES = [
    "/predict",
    "/predict/batch",
    "/v2/models/sentiment/infer",
    "/v1/models/sentiment:predict",
    "/invocations",
    "/v2/repository/index",
    "/feedback",
]


@READERS
@given(hostile, st.sampled_from(BODY_ROUTES))
def test_a_hostile_body_is_a_4xx_naming_the_problem(body_client: TestClient, document: str | bytes, path: str) -> None:
    content = document if isinstance(document, bytes) else document.encode("utf-8", "surrogatepass")
    answer = body_client.post(path, content=content, headers={"Content-Type": "application/json"})
    assert 400 <= answer.status_code < 500 or answer.status_code == 200, (path, answer.status_code, answer.text)
    if answer.status_code >= 400:
        error = answer.json()
        message = error.get("detail") or error.get("error") or error.get("message")
        assert message, answer.text
    assert body_client.post("/predict", json={"text": "still answering"}).status_code == 200
