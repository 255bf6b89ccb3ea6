"""Leave-one-source-out: each source scored by a model that never saw it."""

from __future__ import annotations

from src.model.cross_source import leave_one_source_out
from src.model.datasets import Dataset
from src.model.trainer import ModelTrainer

GOOD = ["great", "lovely", "excellent", "wonderful"]
BAD = ["awful", "terrible", "dreadful", "horrible"]


def make_dataset() -> Dataset:
    """Three sources that agree on what words mean, and one whose labels are reversed."""
    texts: list[str] = []
    labels: list[str] = []
    sources: list[str] = []
    for source, flipped in (("shop", False), ("cafe", False), ("hotel", False), ("contrarian", True)):
        for i in range(40):
            for words, label in ((GOOD, "positive"), (BAD, "negative")):
                texts.append(f"{words[i % 4]} {source} visit number {i}")
                labels.append({"positive": "negative", "negative": "positive"}[label] if flipped else label)
                sources.append(source)
    return Dataset(texts, labels, sources, "test")


def test_each_source_is_scored_by_a_model_trained_without_it() -> None:
    data = make_dataset()
    report = leave_one_source_out(ModelTrainer(min_df=1, max_df=1.0), data, lambda part: None)
    assert report is not None
    assert list(report.per_source) == ["cafe", "contrarian", "hotel", "shop"]
    assert all(scores.support == 80 for scores in report.per_source.values())
    # The sources that agree with the others are predicted well; the reversed one cannot be.
    assert min(report.per_source[s].accuracy for s in ("cafe", "hotel", "shop")) > 0.9
    assert report.per_source["contrarian"].accuracy < 0.1
    assert report.mean_accuracy == sum(s.accuracy for s in report.per_source.values()) / 4
    assert "contrarian" in report.format_report()
    assert report.to_dict()["per_source"]["shop"]["support"] == 80


def test_training_only_sources_are_never_held_out_and_one_source_has_nothing_to_leave_out() -> None:
    data = make_dataset()
    lexicon = Dataset(GOOD + BAD, ["positive"] * 4 + ["negative"] * 4, ["lexicon"] * 8, "lex")
    combined = Dataset(
        data.texts + lexicon.texts,
        data.labels + lexicon.labels,
        data.sources + lexicon.sources,
        "combined",
        training_only=frozenset({"lexicon"}),
    )
    report = leave_one_source_out(ModelTrainer(min_df=1, max_df=1.0), combined, lambda part: part.balanced_weights())
    assert report is not None
    assert "lexicon" not in report.per_source
    single = data.where(lambda source: source == "shop")
    assert leave_one_source_out(ModelTrainer(min_df=1, max_df=1.0), single, lambda part: None) is None
