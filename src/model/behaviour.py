"""The behaviour suite: CheckList-style tests of a sentiment model, read from behaviour_suite.yaml.

A suite is data (see the YAML file's header): minimum-functionality texts with an expected label,
invariance templates whose fillings must agree, and directional pairs whose change must move
P(positive) the stated way. `run_suite` scores any model given as a batch function texts ->
P(positive), and reports pass rates per test type and per capability, with the failures.
"""

from __future__ import annotations

import importlib.resources
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.pipeline import Pipeline

from src.documents import read_yaml

SUITE_LABELS = ("negative", "positive")
ProbabilityOfPositive = Callable[[Sequence[str]], Sequence[float]]


@dataclass(frozen=True)
class Case:
    """One test: its type, capability and domain, the texts it scores, and how to judge them."""

    type: str
    capability: str
    domain: str
    texts: tuple[str, ...]
    expected: str  # MFT: the label; DIR: "up" or "down"; INV: "same"
    max_delta: float = 0.0

    def passes(self, positive: Sequence[float]) -> bool:
        """Whether the P(positive) of each of `texts` meets this case's expectation."""
        scores = [float(p) for p in positive]
        if self.type == "MFT":
            return (scores[0] > 0.5) == (self.expected == "positive")
        if self.type == "DIR":
            return scores[1] < scores[0] if self.expected == "down" else scores[1] > scores[0]
        same_label = len({p > 0.5 for p in scores}) == 1
        return same_label and max(scores) - min(scores) <= self.max_delta


@dataclass(frozen=True)
class Suite:
    """The parsed suite file: its version and every case."""

    version: str
    cases: list[Case]


@dataclass
class BehaviourReport:
    """Pass rates of one model on the suite, overall, per test type and per capability."""

    suite_version: str
    cases: int
    pass_rate: float
    by_type: dict[str, float]
    by_capability: dict[str, float]
    failures: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self, max_failures: int = 25) -> dict[str, Any]:
        """A JSON-ready form for metadata.json, keeping the first `max_failures` failures."""
        record = asdict(self)
        record["failures"] = self.failures[:max_failures]
        return record

    def format_report(self) -> str:
        """The lines the training script prints."""
        lines = [f"behaviour suite v{self.suite_version}: {self.cases} cases, {self.pass_rate:.1%} pass"]
        lines += [f"  {'type ' + name:<36}{rate:>8.1%}" for name, rate in self.by_type.items()]
        lines += [f"  {'capability ' + name:<36}{rate:>8.1%}" for name, rate in self.by_capability.items()]
        for failure in self.failures[:10]:
            lines.append(f"  FAIL {failure['type']}/{failure['capability']}: {failure['texts'][-1]!r}")
        return "\n".join(lines)


def _mft_cases(group: dict[str, Any]) -> list[Case]:
    return [Case("MFT", group["capability"], group["domain"], (text,), group["label"]) for text in group["texts"]]


def _dir_cases(group: dict[str, Any]) -> list[Case]:
    return [
        Case("DIR", group["capability"], group["domain"], (pair["text"], pair["variant"]), group["direction"])
        for pair in group["pairs"]
    ]


def _inv_cases(group: dict[str, Any], max_delta: float) -> list[Case]:
    return [
        Case(
            "INV",
            group["capability"],
            group["domain"],
            tuple(item["template"].replace("{x}", str(value)) for value in item["fill"]),
            "same",
            max_delta,
        )
        for item in group["templates"]
    ]


def parse_suite(document: dict[str, Any]) -> Suite:
    """A Suite from the YAML document's content."""
    max_delta = float(document["invariance_max_delta"])
    cases: list[Case] = []
    for group in document["groups"]:
        kind = group["type"]
        if kind == "MFT":
            cases += _mft_cases(group)
        elif kind == "DIR":
            cases += _dir_cases(group)
        elif kind == "INV":
            cases += _inv_cases(group, max_delta)
        else:
            raise ValueError(f"unknown behaviour test type {kind!r}")
    return Suite(str(document["version"]), cases)


@cache
def load_suite() -> Suite:
    """The suite shipped with the service (src/model/behaviour_suite.yaml)."""
    text = (importlib.resources.files("src.model") / "behaviour_suite.yaml").read_text(encoding="utf-8")
    return parse_suite(read_yaml(text, "behaviour_suite.yaml", max_bytes=len(text)))


def applies_to(classes: Sequence[str]) -> bool:
    """The suite is for sentiment models: exactly the labels negative and positive."""
    return sorted(map(str, classes)) == list(SUITE_LABELS)


def _rates(outcomes: dict[str, list[bool]]) -> dict[str, float]:
    return {name: sum(results) / len(results) for name, results in sorted(outcomes.items())}


def run_suite(positive_probability: ProbabilityOfPositive, suite: Suite | None = None) -> BehaviourReport:
    """Score every case with one batch call and report the pass rates and failures."""
    suite = suite or load_suite()
    texts = [text for case in suite.cases for text in case.texts]
    scores = list(positive_probability(texts))
    by_type: dict[str, list[bool]] = defaultdict(list)
    by_capability: dict[str, list[bool]] = defaultdict(list)
    failures: list[dict[str, Any]] = []
    start = 0
    for case in suite.cases:
        positive = scores[start : start + len(case.texts)]
        start += len(case.texts)
        passed = case.passes(positive)
        by_type[case.type].append(passed)
        by_capability[case.capability].append(passed)
        if not passed:
            failures.append(
                {
                    "type": case.type,
                    "capability": case.capability,
                    "domain": case.domain,
                    "expected": case.expected,
                    "texts": list(case.texts),
                    "p_positive": [round(float(p), 4) for p in positive],
                }
            )
    outcomes = [passed for results in by_type.values() for passed in results]
    return BehaviourReport(
        suite_version=suite.version,
        cases=len(suite.cases),
        pass_rate=sum(outcomes) / len(outcomes),
        by_type=_rates(by_type),
        by_capability=_rates(by_capability),
        failures=failures,
    )


def run_on_pipeline(pipeline: Pipeline) -> BehaviourReport | None:
    """The suite's report for a fitted sentiment Pipeline; None for a model with other labels."""
    classes = [str(label) for label in pipeline.classes_]
    if not applies_to(classes):
        return None
    positive = classes.index("positive")
    if hasattr(pipeline, "predict_proba"):
        return run_suite(lambda texts: pipeline.predict_proba(list(texts))[:, positive])
    # A model without probabilities: its decision score through the logistic function, so 0.5 is its
    # decision boundary (the score is for the second class, `positive` in sorted order).
    return run_suite(lambda texts: expit(np.asarray(pipeline.decision_function(list(texts)), dtype=np.float64)))
