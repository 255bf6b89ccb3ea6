from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from src.model.datasets import Dataset
from src.model.text_features import TOKEN_PATTERN, NegationTfidfVectorizer, SentimentCueVectorizer
from src.model.trainer import DEFAULT_C, ModelTrainer


def _xy(data: Dataset, size: int) -> tuple[list[str], list[str]]:
    small = data.sample(size, random_state=2)
    return small.texts, small.labels


def test_seed_interface_train_then_save(tmp_path: Path, sample: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_DIR", str(tmp_path))
    from src.config import get_settings

    get_settings.cache_clear()
    try:
        trainer = ModelTrainer()
        assert trainer.train(*_xy(sample, 2000)) is trainer
        version = trainer.save_model()
    finally:
        get_settings.cache_clear()
    assert (tmp_path / "sentiment" / version / "model.skops").is_file()
    assert (tmp_path / "sentiment" / "CURRENT").read_text().strip() == version


def test_pipeline_is_tfidf_then_logistic_regression(trained: ModelTrainer) -> None:
    steps = [type(step) for _, step in trained.pipeline_.steps]
    assert steps == [SentimentCueVectorizer, LogisticRegression]
    assert issubclass(SentimentCueVectorizer, TfidfVectorizer)
    assert trained.classes_ == ["negative", "positive"]
    vectorizer = trained.pipeline_.named_steps["tfidf"]
    assert vectorizer.ngram_range == (1, 2)
    assert vectorizer.sublinear_tf is True
    assert vectorizer.token_pattern == TOKEN_PATTERN
    assert len(vectorizer.positive_words.split("\n")) + len(vectorizer.negative_words.split("\n")) == 5606
    assert (vectorizer.contrast, vectorizer.raw_cues, vectorizer.negation_max_words) == (True, True, 3)
    assert trained.pipeline_.named_steps["clf"].random_state == 42
    assert trained.pipeline_.named_steps["clf"].C == DEFAULT_C


def test_plain_features_on_request(sample: Dataset) -> None:
    texts, labels = _xy(sample, 600)
    cues_off = {"lexicon_tokens": False, "contrast": False, "raw_cues": False}
    plain = ModelTrainer(negation=False, emoticons=False, **cues_off).train(texts, labels)  # type: ignore[arg-type]
    assert type(plain.pipeline_.named_steps["tfidf"]) is TfidfVectorizer
    assert not any(term.startswith("neg_") for term in plain.pipeline_.named_steps["tfidf"].vocabulary_)
    negation_only = ModelTrainer(narrow_negation=False, **cues_off).train(texts, labels)  # type: ignore[arg-type]
    assert type(negation_only.pipeline_.named_steps["tfidf"]) is NegationTfidfVectorizer  # as before the cues


def test_sample_weights_reach_the_classifier() -> None:
    texts = ["good", "bad", "good", "bad", "meh", "meh"]
    labels = ["positive", "negative", "positive", "negative", "positive", "negative"]
    leaning = ModelTrainer(min_df=1, max_df=1.0).train(texts, labels, sample_weight=[1, 1, 1, 1, 5, 1])
    assert leaning.pipeline_.predict_proba(["meh"])[0][1] > 0.5
    other_way = ModelTrainer(min_df=1, max_df=1.0).train(texts, labels, sample_weight=[1, 1, 1, 1, 1, 5])
    assert other_way.pipeline_.predict_proba(["meh"])[0][1] < 0.5


def test_training_is_reproducible(sample: Dataset) -> None:
    texts, labels = _xy(sample, 1500)
    a = ModelTrainer().train(texts, labels).pipeline_.predict_proba(texts[:50])
    b = ModelTrainer().train(texts, labels).pipeline_.predict_proba(texts[:50])
    assert (a == b).all()


def test_untrained_trainer_says_so() -> None:
    with pytest.raises(NotFittedError, match="train"):
        ModelTrainer().predict(["good"])


def test_single_class_cannot_train() -> None:
    with pytest.raises(ValueError, match="two distinct labels"):
        ModelTrainer().train(["a b", "c d"], ["positive", "positive"])


def test_evaluation_on_held_out_data(trained: ModelTrainer, bundled: Dataset, sample: Dataset) -> None:
    seen = set(sample.texts)
    held_out = [
        i
        for i in range(0, len(bundled), 37)
        if bundled.texts[i] not in seen and bundled.sources[i] not in bundled.training_only
    ][:1500]
    evaluation = trained.evaluate(
        [bundled.texts[i] for i in held_out],
        [bundled.labels[i] for i in held_out],
        [bundled.sources[i] for i in held_out],
    )
    assert evaluation.accuracy > 0.8
    assert set(evaluation.per_source) == {"imdb", "rotten_tomatoes", "tweets", "uci_amazon", "uci_imdb", "uci_yelp"}
    assert sum(map(sum, evaluation.confusion)) == evaluation.support == len(held_out)
    assert evaluation.per_class["positive"].support + evaluation.per_class["negative"].support == len(held_out)
    report = evaluation.format_report()
    for word in ("accuracy", "macro-F1", "confusion matrix", "rotten_tomatoes", "precision"):
        assert word in report


def test_tune_picks_the_best_candidate_by_cross_validation(sample: Dataset) -> None:
    trainer = ModelTrainer(C=0.001)
    result = trainer.tune(*_xy(sample, 1500), grid={"C": [0.01, 10.0]}, folds=2)
    assert len(result.scores) == 2
    best_params, best_score = max(result.scores, key=lambda pair: pair[1])
    assert result.best_params == best_params
    assert result.best_score == best_score
    assert best_params["C"] == trainer.C


def test_tune_rejects_unknown_parameters(sample: Dataset) -> None:
    with pytest.raises(ValueError, match="cannot tune"):
        ModelTrainer().tune(*_xy(sample, 100), grid={"penalty": ["l1"]})


def test_three_classes_train_and_round_trip(tmp_path: Path) -> None:
    texts = ["great", "wonderful day", "terrible", "awful day", "it is a table", "the sky is sky"] * 5
    labels = ["positive", "positive", "negative", "negative", "neutral", "neutral"] * 5
    trainer = ModelTrainer(min_df=1, max_df=1.0).train(texts, labels)
    assert trainer.classes_ == ["negative", "neutral", "positive"]
    trainer.save_model(tmp_path)
    loaded = ModelTrainer.load_model(tmp_path)
    assert loaded.classes_ == trainer.classes_
    named = trainer.save_model(tmp_path, name="moods")
    assert ModelTrainer.load_model(tmp_path, name="moods").classes_ == trainer.classes_
    assert (tmp_path / "moods" / named / "model.skops").is_file()
    assert loaded.min_df == 1
    assert loaded.predict(["wonderful", "awful", "table"]) == trainer.predict(["wonderful", "awful", "table"])
