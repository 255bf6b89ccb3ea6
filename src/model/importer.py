"""Import a user's fitted scikit-learn text Pipeline into the model store, verified before it is published.

In order, each step able to refuse with a one-line reason (and nothing published):
1. read the file (src/store/model_sources.py): skops audited, pickle only when trusted and then
   in a limited child process, an MLflow directory by its MLmodel file; the shape and parameters
   of the Pipeline checked as every server will (src/engine/pipeline_checks.py);
2. parity: the engine that will serve it (compiled, or the Pipeline loaded back from skops)
   reproduces the model's own outputs and labels on sample texts to 1e-9 (src/engine/parity.py);
3. versions: a model made with another scikit-learn minor version is refused, unless the sample
   carries the outputs it gave where it was made and this server reproduces those to 1e-9;
4. the quality gate, with labelled test data: not worse than CURRENT (as training), `force` overrides;
5. publish as the model's new CURRENT version, with the source file's sha256 and recorded versions,
   the parity report, the evaluation and the gate's verdict in its metadata.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sklearn

from src.drift.profile import ProfileError
from src.engine.parity import TOLERANCE, ModelRaisedError, builtin_texts, check_parity, model_outputs, probe_texts
from src.errors import DatasetError, ModelStoreError
from src.model import quality_gate
from src.model.behaviour import run_on_pipeline
from src.model.datasets import Dataset, load_file
from src.model.evaluation import evaluate_predictions
from src.model.publication import Candidate, gate_and_publish
from src.model.reference import reference_profile
from src.store.model_sources import ModelSource, ModelSourceError, read_model_source
from src.store.registry import ModelRegistry
from src.store.serialization import UnusableModelError

logger = logging.getLogger(__name__)

EXPECTED_PREFIX = "expected_"
_MAX_SAMPLE_ROWS = 100_000


class ImportRefusedError(Exception):
    """The model cannot be imported: a bad or unsafe model, or an unreadable sample or test file (the
    quality gate's refusal is QualityGateRefusedError, src/model/publication.py)."""


@dataclass(frozen=True)
class ImportOptions:
    trust_pickle: bool = False
    sample: Path | None = None
    test: Path | None = None
    text_column: str = "text"
    label_column: str = "label"
    force: bool = False
    keep: int | None = None


@dataclass(frozen=True)
class Sample:
    """Texts to check parity on, and (optionally) the outputs the model gave where it was made."""

    texts: list[str]
    expected: np.ndarray | None
    origin: str


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def read_sample(path: Path | None, text_column: str) -> Sample:
    """The user's sample CSV (a text column, optionally `expected_<class>` columns), else the built-in set."""
    if path is None:
        return Sample(builtin_texts(), None, "built-in mixed set")
    try:
        content = path.read_bytes().decode("utf-8-sig")
    except OSError as error:
        raise ImportRefusedError(f"cannot read the sample {path.name} ({error.strerror})") from None
    except UnicodeDecodeError:
        raise ImportRefusedError(f"the sample {path.name} is not UTF-8 text") from None
    try:
        return _parse_sample(path.name, content, text_column)
    except csv.Error as error:  # a field over csv's limit (131,072 characters), a stray NUL, ...
        raise ImportRefusedError(f"the sample {path.name} is not CSV that can be read ({error})") from None


def _parse_sample(name: str, content: str, text_column: str) -> Sample:
    reader = csv.DictReader(io.StringIO(content, newline=""))
    fields = reader.fieldnames or []
    if text_column not in fields:
        shown = ", ".join(field[:40] for field in fields[:20])
        raise ImportRefusedError(f"the sample {name} has no column {text_column!r} (found: {shown})")
    expected_columns = [f for f in fields if f.startswith(EXPECTED_PREFIX)]
    texts: list[str] = []
    rows: list[list[float]] = []
    for row in reader:
        if len(texts) >= _MAX_SAMPLE_ROWS:
            raise ImportRefusedError(f"the sample {name} has over {_MAX_SAMPLE_ROWS} rows")
        texts.append(row[text_column] or "")
        try:
            rows.append([float(row[column]) for column in expected_columns])
        except (TypeError, ValueError):
            raise ImportRefusedError(
                f"the sample {name}, line {reader.line_num}: an expected_ value is not a number"
            ) from None
    if not texts:
        raise ImportRefusedError(f"the sample {name} has no rows")
    expected = np.asarray(rows, dtype=np.float64) if expected_columns else None
    return Sample(texts, expected, f"{name} ({len(texts)} texts)")


def _recorded_parity(source: ModelSource, served: Any, sample: Sample) -> dict[str, Any] | None:
    """The outputs the model gave where it was made (the sample's expected_ columns), reproduced here.

    Required when the model was made with another scikit-learn minor version: the only proof that
    this server computes what the model computed there. Checked whenever the sample carries them.
    """
    made_with, here = source.sklearn_version or "unknown", sklearn.__version__
    other_version = source.sklearn_version is not None and _minor(source.sklearn_version) != _minor(here)
    refusal = (
        f"the model was made with scikit-learn {made_with} but this server runs {here}; refused unless "
        f"--sample carries the outputs it gave there ({EXPECTED_PREFIX}<class> columns) and they are reproduced"
        if other_version
        else "the outputs recorded in the sample are not reproduced"
    )
    if sample.expected is None:
        if other_version:
            raise ImportRefusedError(refusal)
        return None
    _, reproduced, _ = model_outputs(served, sample.texts)
    if reproduced.shape != sample.expected.shape:
        raise ImportRefusedError(
            f"{refusal} (the sample has {sample.expected.shape[1]} expected_ columns, the model "
            f"gives {reproduced.shape[1]} outputs)"
        )
    difference = float(np.abs(reproduced - sample.expected).max())
    if not difference <= TOLERANCE:
        raise ImportRefusedError(f"{refusal} (they differ by up to {difference:.3g})")
    return {"made_with": made_with, "served_with": here, "max_abs_difference": difference, "texts": len(sample.texts)}


def _read_test(options: ImportOptions) -> Dataset | None:
    if options.test is None:
        return None
    try:
        return load_file(options.test, text_column=options.text_column, label_column=options.label_column)
    except DatasetError as error:
        raise ImportRefusedError(str(error)) from None


def _reference(pipeline: Any, options: ImportOptions, test: Dataset | None, sample: Sample) -> dict[str, Any] | None:
    """The reference profile for drift: on the labelled test file, else on the user's sample, else none
    (the built-in parity texts say nothing about the traffic the model is meant for)."""
    try:
        if test is not None and options.test is not None:
            return reference_profile(pipeline, test.texts, f"--test {options.test.name}").to_dict()
        if options.sample is not None:
            return reference_profile(pipeline, sample.texts, f"--sample {options.sample.name}").to_dict()
    except ProfileError as error:  # e.g. more classes than a profile holds: served without drift, said why
        logger.warning("no reference profile for drift: %s", error)
    return None


def _gate(
    source: ModelSource, options: ImportOptions, registry: ModelRegistry, name: str, test: Dataset | None
) -> tuple[dict[str, Any], quality_gate.GateVerdict | None]:
    """The evaluation on --test and the quality gate's verdict (none without --test)."""
    if test is None:
        return {}, None
    pipeline = source.pipeline
    classes = [str(label) for label in pipeline.classes_]
    predicted = [str(label) for label in pipeline.predict(test.texts)]
    evaluation = evaluate_predictions(test.labels, predicted, sorted(set(classes) | set(test.labels)), test.sources)
    behaviour = run_on_pipeline(pipeline)
    mine = quality_gate.ModelFigures(evaluation.macro_f1, behaviour.pass_rate if behaviour else None)
    verdict = quality_gate.check(mine, classes, test, registry.resolve(name), force=options.force)
    return {"evaluation": evaluation.to_dict(), "behaviour": behaviour.to_dict() if behaviour else None}, verdict


def import_model(
    registry: ModelRegistry, name: str, path: str | Path, options: ImportOptions
) -> tuple[str, dict[str, Any]]:
    """Verify the model at `path` and publish it as model `name`'s new CURRENT; its version and metadata.

    ImportRefusedError for a model that cannot be served, QualityGateRefusedError for one worse than
    CURRENT on --test; nothing is published then."""
    path = Path(path)
    try:
        source = read_model_source(path, trust_pickle=options.trust_pickle, max_bytes=registry.max_model_bytes)
    except ModelSourceError as error:
        raise ImportRefusedError(str(error)) from None
    try:  # what servers will load, within what they may answer: before any costly check
        candidate = Candidate.of(source.pipeline, registry.max_model_bytes)
        served = candidate.served
        registry.output.check(name, served)
    except UnusableModelError as error:
        raise ImportRefusedError(str(error)) from None
    except ModelStoreError as error:
        raise ImportRefusedError(error.message) from None
    sample = read_sample(options.sample, options.text_column)
    try:
        parity = check_parity(source.pipeline, served, [*sample.texts, *probe_texts(source.pipeline)])
    except ModelRaisedError as error:
        raise ImportRefusedError(str(error)) from None
    if not parity.passed:
        what = (
            "labels differ" if not parity.labels_equal else f"outputs differ by up to {parity.max_abs_difference:.3g}"
        )
        raise ImportRefusedError(
            f"the {parity.engine} engine does not reproduce the model ({what}; tolerance {TOLERANCE})"
        )
    recorded = _recorded_parity(source, served, sample)
    test = _read_test(options)
    evaluation, verdict = _gate(source, options, registry, name, test)
    metadata = {
        "classes": [str(label) for label in source.pipeline.classes_],
        "steps": [type(step).__name__ for _, step in source.pipeline.steps],
        "engine": parity.engine,
        "output": parity.output,
        "imported_from": source.to_metadata(path),
        "parity": {**parity.to_dict(), "sample": sample.origin},
        "recorded_outputs_parity": recorded,
        "reference_profile": _reference(served, options, test, sample),
        **evaluation,
    }
    store = registry.store(name)
    version = gate_and_publish(store, candidate, metadata, verdict, keep=options.keep)
    return version, store.read_metadata(version)
