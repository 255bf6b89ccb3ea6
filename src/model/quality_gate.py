"""The quality gate: a candidate model is published only if it is not worse than CURRENT.

Both models are scored on the same rows (the candidate's held-out split) and, for sentiment models,
on the behaviour suite. The candidate is refused when its macro-F1 is lower than CURRENT's by more
than `f1_tolerance`, or its behaviour-suite pass rate by more than `behaviour_tolerance`. A store
with no CURRENT model, or one whose CURRENT cannot be loaded, has nothing to compare with: the
candidate passes, and the verdict says why.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sklearn.metrics import f1_score
from sklearn.pipeline import Pipeline

from src.errors import ModelNotFoundError, ModelStoreError, ModelVerificationError
from src.model.behaviour import run_on_pipeline
from src.model.datasets import Dataset
from src.store.store import ModelStore

F1_TOLERANCE = 0.01
BEHAVIOUR_TOLERANCE = 0.02


@dataclass(frozen=True)
class ModelFigures:
    """What the gate compares: macro-F1 on the shared test rows and the behaviour-suite pass rate."""

    macro_f1: float
    behaviour_pass_rate: float | None
    version: str | None = None


@dataclass(frozen=True)
class GateVerdict:
    """Whether the candidate may be published, why, and the figures behind the decision."""

    passed: bool
    reason: str
    candidate: ModelFigures
    current: ModelFigures | None
    tolerances: dict[str, float] = field(default_factory=dict)
    forced: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form for metadata.json."""
        return asdict(self)

    def format_report(self) -> str:
        """The lines the training script prints."""
        lines = [f"quality gate: {'PASS' if self.passed else 'REFUSED'}{' (forced)' if self.forced else ''}"]
        lines.append(f"  {self.reason}")
        for name, figures in (("candidate", self.candidate), (f"current {self.current_version}", self.current)):
            if figures is not None:
                behaviour = "n/a" if figures.behaviour_pass_rate is None else f"{figures.behaviour_pass_rate:.3f}"
                lines.append(f"  {name:<34} macro-F1 {figures.macro_f1:.4f}  behaviour {behaviour}")
        return "\n".join(lines)

    @property
    def current_version(self) -> str:
        """The CURRENT version compared with, or a dash."""
        return (self.current.version if self.current else None) or "-"


def figures(pipeline: Pipeline, test: Dataset, version: str | None = None) -> ModelFigures:
    """A model's macro-F1 on `test` and, for a sentiment model, its behaviour-suite pass rate."""
    classes = [str(label) for label in pipeline.classes_]
    predicted = [str(label) for label in pipeline.predict(test.texts)]
    macro_f1 = float(f1_score(test.labels, predicted, labels=classes, average="macro", zero_division=0.0))
    behaviour = run_on_pipeline(pipeline)
    return ModelFigures(macro_f1, behaviour.pass_rate if behaviour else None, version)


def _compare(candidate: ModelFigures, current: ModelFigures) -> list[str]:
    problems = []
    if candidate.macro_f1 < current.macro_f1 - F1_TOLERANCE:
        problems.append(
            f"macro-F1 {candidate.macro_f1:.4f} is below CURRENT's {current.macro_f1:.4f} by more than {F1_TOLERANCE}"
        )
    if (
        candidate.behaviour_pass_rate is not None
        and current.behaviour_pass_rate is not None
        and candidate.behaviour_pass_rate < current.behaviour_pass_rate - BEHAVIOUR_TOLERANCE
    ):
        problems.append(
            f"behaviour pass rate {candidate.behaviour_pass_rate:.3f} is below CURRENT's "
            f"{current.behaviour_pass_rate:.3f} by more than {BEHAVIOUR_TOLERANCE}"
        )
    return problems


def check(
    mine: ModelFigures, classes: list[str], test: Dataset, store: ModelStore, *, force: bool = False
) -> GateVerdict:
    """Compare a candidate (its figures on `test`, its classes) with the store's CURRENT model on `test`."""
    tolerances = {"macro_f1": F1_TOLERANCE, "behaviour_pass_rate": BEHAVIOUR_TOLERANCE}
    try:
        stored = store.load()
    except ModelNotFoundError:
        return GateVerdict(True, "the store has no CURRENT model: nothing to compare with", mine, None, tolerances)
    except (ModelVerificationError, ModelStoreError) as error:
        reason = f"CURRENT cannot be loaded ({error}): nothing usable to compare with"
        return GateVerdict(True, reason, mine, None, tolerances)
    theirs_classes = [str(label) for label in stored.pipeline.classes_]
    if sorted(theirs_classes) != sorted(classes):
        problems = [f"CURRENT {stored.version} predicts other labels ({', '.join(theirs_classes)}): not comparable"]
        theirs = None
    else:
        theirs = figures(stored.pipeline, test, stored.version)
        problems = _compare(mine, theirs)
    if not problems:
        return GateVerdict(True, f"not worse than CURRENT {stored.version}", mine, theirs, tolerances)
    reason = "; ".join(problems)
    if force:
        return GateVerdict(True, f"--force overrides: {reason}", mine, theirs, tolerances, forced=True)
    return GateVerdict(False, reason, mine, theirs, tolerances)
