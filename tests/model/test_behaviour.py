"""Behavioural tests of the model itself: clear cases, negation, invariances (text -> expected label)."""

from __future__ import annotations

import pytest

from src.model.predictor import Predictor
from src.model.store import StoredModel


@pytest.fixture(scope="module")
def predictor(stored: StoredModel) -> Predictor:
    return Predictor(stored)


@pytest.mark.parametrize(
    "text",
    [
        "This movie was absolutely wonderful, I loved every minute of it.",
        "A brilliant, moving film with superb acting.",
        "Great service and friendly staff, thank you!",
        "Best purchase I have made all year, highly recommended.",
        "What a fantastic performance, truly excellent.",
    ],
)
def test_clearly_positive(predictor: Predictor, text: str) -> None:
    assert predictor.predict(text).label == "positive"


@pytest.mark.parametrize(
    "text",
    [
        "This movie was terrible, a complete waste of time.",
        "Awful acting, boring plot, the worst film I have seen.",
        "My flight was delayed for hours and the staff were rude.",
        "Horrible product, it broke after one day. Do not buy.",
        "Dull, tedious and badly written.",
    ],
)
def test_clearly_negative(predictor: Predictor, text: str) -> None:
    assert predictor.predict(text).label == "negative"


@pytest.mark.parametrize(("negated", "plain"), [("not good", "good"), ("not worth watching", "worth watching")])
def test_negation_pulls_towards_negative(predictor: Predictor, negated: str, plain: str) -> None:
    assert predictor.predict(negated).probabilities["positive"] < predictor.predict(plain).probabilities["positive"]


def test_not_good_is_negative(predictor: Predictor) -> None:
    assert predictor.predict("The film was not good.").label == "negative"


@pytest.mark.parametrize(
    "text", ["A wonderful film.", "Terrible acting and a boring plot.", "The staff were friendly and helpful"]
)
def test_invariant_to_case_and_surrounding_whitespace(predictor: Predictor, text: str) -> None:
    expected = predictor.predict(text).probabilities
    for variant in (text.upper(), text.lower(), f"  {text}\n\t", text.title()):
        assert predictor.predict(variant).probabilities == pytest.approx(expected, abs=1e-12)
