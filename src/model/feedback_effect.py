"""What training on corrections changed: the candidate's answers against CURRENT's on the corrected
texts and on a fixed probe set (the behaviour suite's texts), shown before anything is published.

A poisoned slice of corrections (many texts about one product labelled against their sense) shows
here as answers that flipped on texts nobody corrected, even when the held-out scores barely move.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from src.model.behaviour import load_suite

EXAMPLES = 5


def probe_set() -> list[str]:
    """The fixed probe texts: every text of the behaviour suite, once, in order."""
    return list(dict.fromkeys(text for case in load_suite().cases for text in case.texts))


@dataclass(frozen=True)
class Changes:
    """How many of some texts got another answer, with a few of them."""

    texts: int
    changed: int
    examples: list[dict[str, str]] = field(default_factory=list)  # text, before, after


@dataclass(frozen=True)
class FeedbackEffect:
    """The answers that training on the corrections changed, against CURRENT."""

    current_version: str
    corrected: Changes
    agreeing_with_corrections: tuple[int, int]  # (CURRENT, candidate): corrected texts answered as corrected
    probes: Changes

    def to_dict(self) -> dict[str, Any]:
        """The effect for the version's metadata."""
        return asdict(self)

    def format_report(self) -> str:
        """Lines for the training report."""
        before, after = self.agreeing_with_corrections
        lines = [
            f"feedback effect against CURRENT {self.current_version}:",
            f"  corrected texts: {self.corrected.changed} of {self.corrected.texts} answered differently; "
            f"answered as corrected: {before} by CURRENT, {after} by the candidate",
            f"  probe texts (behaviour suite): {self.probes.changed} of {self.probes.texts} answered differently",
        ]
        for title, changes in (("corrected", self.corrected), ("probe", self.probes)):
            for example in changes.examples:
                lines.append(f"    {title}: {example['before']} -> {example['after']}: {example['text'][:100]!r}")
        return "\n".join(lines)


def _changes(texts: Sequence[str], before: Sequence[str], after: Sequence[str]) -> Changes:
    changed = [
        {"text": text, "before": old, "after": new}
        for text, old, new in zip(texts, before, after, strict=True)
        if old != new
    ]
    return Changes(len(texts), len(changed), changed[:EXAMPLES])


def feedback_effect(
    candidate: Any, current: Any, current_version: str, corrected: Sequence[str], labels: Sequence[str]
) -> FeedbackEffect:
    """Compare two fitted pipelines (anything with `predict`) on the corrected texts and the probe set."""
    probes = probe_set()
    texts = [*corrected, *probes]
    before = [str(label) for label in current.predict(texts)]
    after = [str(label) for label in candidate.predict(texts)]
    count = len(corrected)
    agreeing = (
        sum(old == label for old, label in zip(before[:count], labels, strict=True)),
        sum(new == label for new, label in zip(after[:count], labels, strict=True)),
    )
    return FeedbackEffect(
        current_version,
        _changes(corrected, before[:count], after[:count]),
        agreeing,
        _changes(probes, before[count:], after[count:]),
    )
