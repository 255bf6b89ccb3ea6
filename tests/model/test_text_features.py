"""Negation marking, the emoticon-keeping token pattern, and the sentiment cues."""

from __future__ import annotations

import pytest
from sklearn.base import clone

from src.model.text_features import TOKEN_PATTERN, NegationTfidfVectorizer, SentimentCueVectorizer, mark_negation


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


def cue_vectorizer(**options: object) -> SentimentCueVectorizer:
    defaults: dict[str, object] = {
        "positive_words": "good\ngreat\nlove\nok",
        "negative_words": "bad\nruined\noverheats\nawful",
        "strip_accents": "unicode",
        "token_pattern": TOKEN_PATTERN,
    }
    return SentimentCueVectorizer(**{**defaults, **options})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "preprocessed"),
    [
        # lexicon words add shared tokens; a negated one flips
        ("Good food, not bad", "good food, not neg_bad lexpos lexpos"),
        # narrow negation: the scope ends at "and", and only 3 words are marked
        ("not bad and great", "not neg_bad and great lexpos lexpos"),
        ("never a moment of fun or joy here", "never neg_a neg_moment neg_of fun or joy here"),
        # contrast: the clause after each "but" is appended once more
        (
            "Great screen but it overheats. Fine, but ok",
            "great screen but it overheats. fine, but ok  it overheats  ok lexpos lexneg lexpos lexneg lexpos",
        ),
        # raw cues: "!!" once, each all-caps word of 3+ letters
        ("I LOVE IT!! ok OK", "i love it!! ok ok lexpos lexpos lexpos xxexcl xxcaps"),  # IT, OK: too short
        ("Café RUINED", "cafe ruined lexneg xxcaps"),
        ("", ""),
    ],
)
def test_sentiment_cues_are_appended_after_negation_marking(text: str, preprocessed: str) -> None:
    assert cue_vectorizer().build_preprocessor()(text) == preprocessed


def test_each_cue_can_be_turned_off() -> None:
    text = "Not good and GREAT but awful!!"
    off = cue_vectorizer(
        negation_ends_at_and=False,
        negation_max_words=None,
        contrast=False,
        raw_cues=False,
        positive_words="",
        negative_words="",
    )
    assert off.build_preprocessor()(text) == NegationTfidfVectorizer(strip_accents="unicode").build_preprocessor()(text)


def test_the_cue_vectorizer_clones_with_its_lexicon() -> None:
    vectorizer = cue_vectorizer(negation_max_words=2)
    cloned = clone(vectorizer)
    assert cloned.get_params() == vectorizer.get_params()
    assert cloned.build_preprocessor()("not bad at all!!") == vectorizer.build_preprocessor()("not bad at all!!")
