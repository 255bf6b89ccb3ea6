"""The behaviour suite: its content, how cases are judged, and the report."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from src.model.behaviour import Case, applies_to, load_suite, parse_suite, run_on_pipeline, run_suite
from src.serving.predictor import Predictor
from src.store.store import StoredModel

DOMAINS = {
    "products",
    "restaurants",
    "hotels_travel",
    "apps_software",
    "customer_service",
    "films_books",
    "health_everyday",
    "work",
}


def test_the_suite_covers_what_it_must() -> None:
    suite = load_suite()
    assert len(suite.cases) >= 200
    assert {case.domain for case in suite.cases} >= DOMAINS
    capabilities = Counter(case.capability for case in suite.cases)
    for capability in ("vocabulary", "negation", "contrast", "intensity", "names", "appended negative clause"):
        assert capabilities[capability] >= 8, capability
    assert {case.type for case in suite.cases} == {"MFT", "INV", "DIR"}
    texts = [text for case in suite.cases for text in case.texts]
    assert all(text.strip() and "{x}" not in text for text in texts)
    vocabulary = [case for case in suite.cases if case.capability == "vocabulary"]
    assert Counter(case.expected for case in vocabulary) == {"positive": 64, "negative": 64}


def test_no_text_is_expected_both_ways() -> None:
    expected: dict[str, set[str]] = {}
    for case in load_suite().cases:
        if case.type == "MFT":
            expected.setdefault(case.texts[0], set()).add(case.expected)
    assert all(len(labels) == 1 for labels in expected.values())


@pytest.mark.parametrize(
    ("case", "scores", "passes"),
    [
        (Case("MFT", "c", "d", ("t",), "positive"), [0.51], True),
        (Case("MFT", "c", "d", ("t",), "positive"), [0.5], False),
        (Case("MFT", "c", "d", ("t",), "negative"), [0.2], True),
        (Case("DIR", "c", "d", ("a", "b"), "down"), [0.6, 0.59], True),
        (Case("DIR", "c", "d", ("a", "b"), "down"), [0.6, 0.6], False),
        (Case("DIR", "c", "d", ("a", "b"), "up"), [0.1, 0.3], True),
        (Case("INV", "c", "d", ("a", "b", "c"), "same", 0.1), [0.7, 0.75, 0.65], True),
        (Case("INV", "c", "d", ("a", "b"), "same", 0.1), [0.7, 0.85], False),
        (Case("INV", "c", "d", ("a", "b"), "same", 0.1), [0.48, 0.52], False),  # the label flips
    ],
)
def test_each_kind_of_case_is_judged_by_its_rule(case: Case, scores: list[float], passes: bool) -> None:
    assert case.passes(scores) is passes


def test_report_counts_pass_rates_per_type_and_capability() -> None:
    suite = parse_suite(
        {
            "version": "t",
            "invariance_max_delta": 0.1,
            "groups": [
                {"type": "MFT", "capability": "v", "domain": "d", "label": "positive", "texts": ["good", "fine"]},
                {"type": "MFT", "capability": "n", "domain": "d", "label": "negative", "texts": ["bad"]},
                {
                    "type": "INV",
                    "capability": "i",
                    "domain": "d",
                    "templates": [{"template": "{x} ok", "fill": [1, 2]}],
                },
                {
                    "type": "DIR",
                    "capability": "r",
                    "domain": "d",
                    "direction": "down",
                    "pairs": [{"text": "good", "variant": "good but bad"}],
                },
            ],
        }
    )
    scores = {"good": 0.9, "fine": 0.4, "bad": 0.1, "1 ok": 0.6, "2 ok": 0.62, "good but bad": 0.5}

    def model(texts: Sequence[str]) -> list[float]:
        return [scores[text] for text in texts]

    report = run_suite(model, suite)
    assert report.cases == 5
    assert report.pass_rate == pytest.approx(4 / 5)
    assert report.by_type == {"DIR": 1.0, "INV": 1.0, "MFT": pytest.approx(2 / 3)}
    assert report.by_capability["v"] == 0.5
    assert [failure["texts"] for failure in report.failures] == [["fine"]]
    assert "FAIL MFT/v: 'fine'" in report.format_report()


def test_unknown_test_types_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown behaviour test type 'XYZ'"):
        parse_suite({"version": "t", "invariance_max_delta": 0.1, "groups": [{"type": "XYZ"}]})


def test_only_negative_positive_models_take_the_suite() -> None:
    assert applies_to(["positive", "negative"])
    assert not applies_to(["ham", "spam"])
    topics = Pipeline([("tfidf", TfidfVectorizer()), ("clf", LogisticRegression())])
    topics.fit(["goal scored", "election vote", "match won", "parliament debate"], ["sport", "politics"] * 2)
    assert run_on_pipeline(topics) is None


@pytest.mark.parametrize(
    "text", ["A wonderful film.", "Terrible acting and a boring plot.", "The staff were friendly and helpful"]
)
def test_invariant_to_case_and_surrounding_whitespace(stored: StoredModel, text: str) -> None:
    predictor = Predictor(stored)
    expected = predictor.predict(text)
    for variant in (text.lower(), f"  {text}\n\t", text.title()):
        assert predictor.predict(variant).probabilities == pytest.approx(expected.probabilities, abs=1e-12)
    # All-caps words are a deliberate cue (`xxcaps`, docs/training.md): shouting may move the
    # probability a little, never the verdict.
    shouted = predictor.predict(text.upper())
    assert shouted.label == expected.label
    assert shouted.probabilities == pytest.approx(expected.probabilities, abs=0.05)
