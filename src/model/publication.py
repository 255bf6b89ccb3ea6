"""One gate-and-publish for every way a model reaches the store: training (src/model/trainer.py) and
import (src/model/importer.py).

A `Candidate` is a fitted Pipeline serialized once and read back once by the servers' own trusted
loader; `gate_and_publish` judges it against CURRENT on the same labelled rows (the quality gate,
src/model/quality_gate.py), and publishes those very bytes with the verdict in its metadata, or
raises QualityGateRefusedError with nothing written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sklearn.pipeline import Pipeline

from src.errors import ModelStoreError
from src.model import quality_gate
from src.store.serialization import UnusableModelError, dump_pipeline, load_pipeline
from src.store.store import ModelStore


class QualityGateRefusedError(Exception):
    """The candidate is worse than CURRENT on the same rows; nothing was published."""

    def __init__(self, verdict: quality_gate.GateVerdict) -> None:
        super().__init__(f"refused by the quality gate, nothing published: {verdict.reason} (--force overrides)")
        self.verdict = verdict


@dataclass(frozen=True)
class Candidate:
    """A model to publish: its skops bytes and the Pipeline they load as under the trusted loader."""

    model_bytes: bytes
    served: Pipeline

    @classmethod
    def of(cls, pipeline: Pipeline, max_bytes: int) -> Candidate:
        """Serialize once and read back as every server will; ModelStoreError when servers could not."""
        model_bytes = dump_pipeline(pipeline)
        try:
            return cls(model_bytes, load_pipeline(model_bytes, max_bytes))
        except UnusableModelError as error:
            raise ModelStoreError(str(error)) from None


def gate_and_publish(
    store: ModelStore,
    candidate: Candidate,
    metadata: dict[str, Any],
    verdict: quality_gate.GateVerdict | None,
    *,
    keep: int | None = None,
) -> str:
    """Publish the candidate's bytes as the store's new CURRENT, the verdict (None: no labelled rows to
    judge on) in its metadata; QualityGateRefusedError, nothing written, when the gate refused it."""
    if verdict is not None and not verdict.passed:
        raise QualityGateRefusedError(verdict)
    recorded = {**metadata, "quality_gate": verdict.to_dict() if verdict is not None else None}
    return store.publish_bytes(candidate.model_bytes, candidate.served, recorded, keep=keep)
