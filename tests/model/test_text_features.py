"""Negation marking and the emoticon-keeping token pattern."""

from __future__ import annotations

import pytest

from src.model.text_features import TOKEN_PATTERN, NegationTfidfVectorizer, mark_negation


@pytest.mark.parametrize(
    ("text", "marked"),
    [
        ("not bad at all", "not neg_bad neg_at neg_all"),
        ("not bad, actually good", "not neg_bad, actually good"),
        ("i don't like it but the price is fine", "i don't neg_like neg_it but the price is fine"),
        ("it isn\u2019t worth it. never again!", "it isn\u2019t neg_worth neg_it. never neg_again!"),
        ("no problems whatsoever", "no neg_problems neg_whatsoever"),
        ("i dont care; great food", "i dont neg_care; great food"),
        ("a lovely day", "a lovely day"),
        ("i want this, it went well", "i want this, it went well"),
        ("", ""),
    ],
)
def test_words_in_a_negations_scope_are_marked(text: str, marked: str) -> None:
    assert mark_negation(text) == marked


def tokens(text: str) -> list[str]:
    vectorizer = NegationTfidfVectorizer(token_pattern=TOKEN_PATTERN)
    analyze = vectorizer.build_analyzer()
    return list(analyze(text))


def test_the_vectorizer_lowercases_strips_accents_then_marks() -> None:
    vectorizer = NegationTfidfVectorizer(token_pattern=TOKEN_PATTERN, strip_accents="unicode")
    assert vectorizer.build_tokenizer()(vectorizer.build_preprocessor()("NOT Café-good")) == [
        "not",
        "neg_cafe",
        "neg_good",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("great :) :-( ;p :D <3 :))", ["great", ":)", ":-(", ";p", ":d", "<3", ":))"]),
        ("see http://example.com", ["see", "http", "example", "com"]),
        ("a 10:30 meeting", ["10", "30", "meeting"]),
    ],
)
def test_emoticons_are_terms_and_urls_and_times_are_not(text: str, expected: list[str]) -> None:
    assert tokens(text) == expected


def test_negated_terms_are_features_of_their_own() -> None:
    texts = ["not good", "good", "not bad", "bad"]
    vectorizer = NegationTfidfVectorizer(token_pattern=TOKEN_PATTERN).fit(texts)
    assert {"neg_good", "neg_bad", "good", "bad", "not"} <= set(vectorizer.vocabulary_)
