"""One gate-and-publish: the bytes verified are the bytes published, and a refusal writes nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from src.model import quality_gate
from src.model.importer import ImportOptions, import_model
from src.model.publication import Candidate, QualityGateRefusedError, gate_and_publish
from src.store import serialization
from src.store.registry import ModelRegistry
from src.store.store import ModelStore
from tests.store.test_store import tiny_pipeline


def _verdict(passed: bool) -> quality_gate.GateVerdict:
    return quality_gate.GateVerdict(passed, "because", quality_gate.ModelFigures(0.5, None), None)


def test_the_bytes_read_back_are_the_bytes_published(tmp_path: Path) -> None:
    candidate = Candidate.of(tiny_pipeline(), 50_000_000)
    store = ModelStore(tmp_path / "m")
    version = gate_and_publish(store, candidate, {"classes": ["negative", "positive"]}, _verdict(True))
    assert (tmp_path / "m" / version / "model.skops").read_bytes() == candidate.model_bytes
    metadata = store.read_metadata(version)
    assert metadata["sha256"] == hashlib.sha256(candidate.model_bytes).hexdigest()
    assert metadata["quality_gate"]["passed"] is True


def test_a_refused_candidate_writes_nothing(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "m")
    with pytest.raises(QualityGateRefusedError, match="refused by the quality gate, nothing published: because"):
        gate_and_publish(store, Candidate.of(tiny_pipeline(), 50_000_000), {}, _verdict(False))
    assert not (tmp_path / "m").exists()


def test_an_import_serializes_and_verifies_its_pipeline_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import skops.io

    skops.io.dump(tiny_pipeline(), tmp_path / "tiny.skops")
    calls = {"dump": 0, "load": 0}
    dump, load = serialization.dump_pipeline, serialization.load_pipeline

    def counted_dump(*args: object, **kwargs: object) -> bytes:
        calls["dump"] += 1
        return dump(*args, **kwargs)

    def counted_load(*args: object, **kwargs: object) -> object:
        calls["load"] += 1
        return load(*args, **kwargs)  # type: ignore[arg-type]

    for module in ("src.store.serialization", "src.model.publication", "src.store.store", "src.store.model_sources"):
        monkeypatch.setattr(f"{module}.dump_pipeline", counted_dump, raising=False)
        monkeypatch.setattr(f"{module}.load_pipeline", counted_load, raising=False)
    registry = ModelRegistry(tmp_path / "store")
    version, _ = import_model(registry, "mine", tmp_path / "tiny.skops", ImportOptions())
    # The user's file read once (the audited load), our form of it written once and read back once.
    assert calls == {"dump": 1, "load": 2}
    stored = (tmp_path / "store" / "mine" / version / "model.skops").read_bytes()
    assert serialization.load_pipeline(stored) is not None
