"""The compiled scorer must give the Pipeline's probabilities to 1e-9, whatever the settings."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MaxAbsScaler

from src.engine.compiled import CompiledScorer, UnsupportedPipelineError
from src.engine.featurizers import VocabularyFeaturizer
from src.model.datasets import Dataset, vader_polarity_words
from src.model.text_features import TOKEN_PATTERN, NegationTfidfVectorizer, SentimentCueVectorizer
from src.store.store import StoredModel

TOLERANCE = 1e-9


def varied_texts(data: Dataset, count: int = 2500) -> list[str]:
    """Real texts plus the awkward kinds: empty after tokenising, unicode, punctuation, long, repeated."""
    rng = random.Random(11)
    texts = rng.sample(data.texts, count)
    awkward = [
        "",
        " ",
        "!!! ??? ...",
        "a",
        "I",
        "Café crème, naïve façade, ÉCOLE Ünïcödé",
        "日本語のテキスト 映画 良い",
        "emoji 😀😀 great 👍",
        "good " * 500,
        "not not not good good bad",
        "zzqxv unseenword anotherunseen",
        "\x00null\x00byte good",
        "tab\tseparated\nnew line\r\nmovie",
        "THE MOVIE WAS GREAT",
        "Not bad at all :) but I won't go back, never again :-( <3",
        "It isn\u2019t good. No problems; nothing wrong, hardly any issues!",
        "not not not, no no ;p :D http://example.com/not-good",
        " ".join(rng.sample(data.texts, 30)),
    ]
    for _ in range(200):
        words = rng.choice(data.texts).split()
        rng.shuffle(words)
        awkward.append(" ".join(words[: rng.randint(1, 40)]))
    return texts + awkward


def assert_parity(pipeline: Pipeline, texts: list[str]) -> None:
    scorer = CompiledScorer(pipeline)
    expected = pipeline.predict_proba(texts)
    actual = np.array([scorer.predict_proba(text) for text in texts])
    assert actual.shape == expected.shape
    assert np.abs(actual - expected).max() <= TOLERANCE
    assert scorer.classes == [str(c) for c in pipeline.classes_]


def test_default_model_parity(stored: StoredModel, bundled: Dataset) -> None:
    assert_parity(stored.pipeline, varied_texts(bundled))


VARIANTS: dict[str, dict[str, Any]] = {
    "unigrams": {"ngram_range": (1, 1)},
    "no sublinear tf": {"sublinear_tf": False},
    "no idf": {"use_idf": False},
    "l1 norm": {"norm": "l1"},
    "no norm": {"norm": None},
    "binary tf": {"binary": True},
    "stop words, no lowercase": {"stop_words": "english", "lowercase": False},
    "bigrams and trigrams only": {"ngram_range": (2, 3)},
    "ascii accents, custom tokens": {"strip_accents": "ascii", "token_pattern": r"(?u)\b\w+\b"},
}


@pytest.mark.parametrize("options", VARIANTS.values(), ids=VARIANTS.keys())
def test_parity_for_other_settings(bundled: Dataset, options: dict[str, Any]) -> None:
    train = bundled.sample(3000, random_state=3)
    pipeline = Pipeline([("tfidf", TfidfVectorizer(min_df=2, **options)), ("clf", LogisticRegression(C=3.0))])
    pipeline.fit(train.texts, train.labels)
    assert_parity(pipeline, varied_texts(bundled, 600))


def test_parity_for_three_classes(bundled: Dataset) -> None:
    train = bundled.sample(3000, random_state=4)
    labels = [
        source if source == "tweets" else label for source, label in zip(train.sources, train.labels, strict=True)
    ]
    pipeline = Pipeline(
        [("tfidf", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)), ("clf", LogisticRegression())]
    )
    pipeline.fit(train.texts, labels)
    assert len(pipeline.classes_) == 3
    assert_parity(pipeline, varied_texts(bundled, 1000))


@pytest.mark.parametrize("options", [{}, {"ngram_range": (1, 3), "token_pattern": TOKEN_PATTERN}, {"binary": True}])
def test_parity_with_negation_marking(bundled: Dataset, options: dict[str, Any]) -> None:
    train = bundled.sample(3000, random_state=5)
    vectorizer = NegationTfidfVectorizer(min_df=2, sublinear_tf=True, **options)
    pipeline = Pipeline([("tfidf", vectorizer), ("clf", LogisticRegression(C=2.0))])
    pipeline.fit(train.texts, train.labels)
    assert any(term.startswith("neg_") for term in vectorizer.vocabulary_)
    assert_parity(pipeline, varied_texts(bundled, 600))


class ShoutingVectorizer(TfidfVectorizer):  # type: ignore[misc]
    """A subclass that changes the analysis: the scorer cannot know what else it changes."""

    def build_preprocessor(self):
        return str.upper


@pytest.mark.parametrize(
    ("pipeline", "reason"),
    [
        (Pipeline([("v", TfidfVectorizer(dtype=np.float32)), ("c", LogisticRegression())]), "float64"),
        (Pipeline([("v", CountVectorizer(dtype=np.float32)), ("c", LogisticRegression())]), "float64"),
        (Pipeline([("v", TfidfVectorizer()), ("s", MaxAbsScaler()), ("c", LogisticRegression())]), "MaxAbsScaler"),
        (Pipeline([("v", ShoutingVectorizer()), ("c", LogisticRegression())]), "ShoutingVectorizer"),
    ],
)
def test_unsupported_options_are_refused(pipeline: Pipeline, reason: str) -> None:
    pipeline.fit(["good film", "bad film", "great", "awful"], ["p", "n", "p", "n"])
    with pytest.raises(UnsupportedPipelineError, match=reason):
        CompiledScorer(pipeline)


def test_vocabulary_is_shared_not_copied(stored: StoredModel) -> None:
    scorer = CompiledScorer(stored.pipeline)
    featurizer = scorer.featurizer
    assert isinstance(featurizer, VocabularyFeaturizer)
    assert featurizer._vocabulary is stored.pipeline.named_steps["tfidf"].vocabulary_


def test_unknown_words_are_counted(stored: StoredModel) -> None:
    scorer = CompiledScorer(stored.pipeline)
    weighted = scorer.weigh("great movie qqqzzz wwwxxx")
    assert weighted.tokens == 4
    assert weighted.unknown_tokens == 2
    empty = scorer.weigh("... ???")
    assert (empty.tokens, empty.unknown_tokens, empty.features) == (0, 0, [])
    shouted = scorer.weigh("!!!")  # no words, one cue (xxexcl): a feature, but no word to count
    assert (shouted.tokens, shouted.unknown_tokens, len(shouted.features)) == (0, 0, 1)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=300))
def test_any_string_gives_valid_probabilities(stored: StoredModel, text: str) -> None:
    scorer = CompiledScorer(stored.pipeline)
    probabilities = scorer.predict_proba(text)
    assert all(0.0 <= p <= 1.0 for p in probabilities)
    assert abs(sum(probabilities) - 1.0) <= 1e-12
    assert np.abs(np.array(probabilities) - stored.pipeline.predict_proba([text])[0]).max() <= TOLERANCE


CUE_TEXTS = [
    "not not good, but never bad and not awful",
    "It was fine but slow but cheap but loud; but why?",
    "GREAT!! BUT THE BATTERY OVERHEATS!!! :( :-) <3",
    "Café crème, naïve but NOT bad at all",
    "no no no but yes yes but no",
    "hardly worth it and not recommended but the staff were lovely!!",
    "",
    "but",
    "!!",
]


@pytest.mark.parametrize("options", [{}, {"binary": True, "ngram_range": (1, 3)}, {"negation_max_words": None}])
def test_parity_with_sentiment_cues(bundled: Dataset, options: dict[str, Any]) -> None:
    positive, negative = vader_polarity_words()
    train = bundled.sample(3000, random_state=6)
    vectorizer = SentimentCueVectorizer(
        min_df=2,
        sublinear_tf=True,
        strip_accents="unicode",
        token_pattern=TOKEN_PATTERN,
        positive_words="\n".join(positive),
        negative_words="\n".join(negative),
        **options,
    )
    pipeline = Pipeline([("tfidf", vectorizer), ("clf", LogisticRegression(C=2.0))])
    pipeline.fit(train.texts, train.labels)
    assert {"lexpos", "lexneg", "xxexcl", "xxcaps"} <= set(vectorizer.vocabulary_)
    assert_parity(pipeline, CUE_TEXTS + varied_texts(bundled, 600))
