from __future__ import annotations

import json
from pathlib import Path

import pytest

from src.errors import DatasetError
from src.model.datasets import Dataset, load_file


def test_bundled_data_has_every_source_and_both_labels(bundled: Dataset) -> None:
    counts: dict[tuple[str, str], int] = {}
    for source, label in zip(bundled.sources, bundled.labels, strict=True):
        counts[source, label] = counts.get((source, label), 0) + 1
    assert counts[("imdb", "negative")] == counts[("imdb", "positive")] == 12_500
    assert counts[("rotten_tomatoes", "negative")] == counts[("rotten_tomatoes", "positive")] == 4_265
    assert counts[("tweets", "negative")] > 10_000
    assert counts[("tweets", "positive")] > 5_000
    for source in ("uci_amazon", "uci_imdb", "uci_yelp"):
        assert counts[(source, "negative")] == counts[(source, "positive")] == 500
    assert counts[("vader_lexicon", "negative")] > 2_000
    assert counts[("vader_lexicon", "positive")] > 2_000
    assert set(bundled.labels) == {"negative", "positive"}
    assert all(text and "<br />" not in text for text in bundled.texts[:2000])
    assert bundled.training_only == {"vader_lexicon", "vader_lexicon_negated"}


def test_lexicon_words_and_their_negations_have_opposite_labels(bundled: Dataset) -> None:
    label = {text: y for text, y, s in zip(bundled.texts, bundled.labels, bundled.sources, strict=True) if "vader" in s}
    assert label["excellent"] == "positive"
    assert label["not excellent"] == "negative"
    assert label["horrible"] == "negative"
    assert label["not horrible"] == "positive"
    assert label[":)"] == "positive"
    assert "not :)" not in label


def test_training_only_sources_stay_out_of_the_test_split(bundled: Dataset) -> None:
    train, test = bundled.split(0.2, random_state=42)
    assert not bundled.training_only & set(test.sources)
    assert train.sources.count("vader_lexicon") == bundled.sources.count("vader_lexicon")
    testable = len(bundled) - sum(source in bundled.training_only for source in bundled.sources)
    assert len(test) == round(testable * 0.2)


def test_balanced_weights_give_every_source_and_label_the_same_total() -> None:
    data = Dataset(
        texts=["a", "b", "c", "d", "e", "f", "g"],
        labels=["p", "p", "p", "n", "p", "n", "n"],
        sources=["big", "big", "big", "big", "small", "small", "lex"],
        dataset_id="t",
        training_only=frozenset({"lex"}),
    )
    weights = data.balanced_weights(training_only_weight=0.5)
    totals: dict[tuple[str, str], float] = {}
    for weight, source, label in zip(weights, data.sources, data.labels, strict=True):
        totals[source, label] = totals.get((source, label), 0.0) + weight
    assert totals["big", "p"] == pytest.approx(totals["big", "n"])
    assert totals["big", "p"] == pytest.approx(totals["small", "p"])
    assert totals["lex", "n"] == pytest.approx(totals["small", "n"] / 2)
    assert sum(weights) == pytest.approx(len(weights))


def test_split_is_stratified_and_reproducible(bundled: Dataset) -> None:
    small = bundled.where(lambda source: source not in bundled.training_only).sample(2_000, random_state=1)
    train, test = small.split(0.25, random_state=3)
    again, _ = small.split(0.25, random_state=3)
    assert len(train) == 1_500
    assert len(test) == 500
    assert train.texts == again.texts
    assert set(test.sources) == {"imdb", "rotten_tomatoes", "tweets", "uci_amazon", "uci_imdb", "uci_yelp"}
    assert not set(train.texts) & set(test.texts) - set(train.texts)


def test_sample_and_hash(bundled: Dataset) -> None:
    a = bundled.sample(300, random_state=5)
    b = bundled.sample(300, random_state=5)
    c = bundled.sample(300, random_state=6)
    assert len(a) == 300
    assert a.sha256 == b.sha256 != c.sha256
    assert "sample=300" in a.dataset_id


def test_reads_csv_with_custom_columns(tmp_path: Path) -> None:
    path = tmp_path / "reviews.csv"
    path.write_text('review,stars,site\n"Loved it, truly",pos,a\nHated it,neg,b\n', encoding="utf-8")
    data = load_file(path, text_column="review", label_column="stars", source_column="site")
    assert data.texts == ["Loved it, truly", "Hated it"]
    assert data.labels == ["pos", "neg"]
    assert data.sources == ["a", "b"]


def test_reads_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "reviews.jsonl"
    rows = [{"text": "great", "label": "positive"}, {"text": "awful", "label": "negative"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    data = load_file(path)
    assert data.labels == ["positive", "negative"]
    assert data.sources == ["reviews", "reviews"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "empty"),
        ("header.csv", b"text,label\n", "no labelled rows"),
        ("nolabel.csv", b"text,grade\ngood,1\n", "no column 'label'"),
        ("one.csv", b"text,label\ngood,pos\nfine,pos\n", "only one label"),
        ("latin.csv", "text,label\ncaf\u00e9,pos\n".encode("latin-1"), "not UTF-8"),
        ("blank.csv", b"text,label\n   ,pos\nbad,neg\n", "must be non-empty text"),
        ("nolabelvalue.csv", b"text,label\ngood,\nbad,neg\n", "is empty"),
        ("broken.jsonl", b'{"text": "a", "label": "x"}\n{"text": \n', "broken.jsonl:2 is not valid JSON"),
        ("list.jsonl", b'["a", "b"]\n', "JSON object"),
    ],
)
def test_bad_files_fail_with_a_reason(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=message):
        load_file(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such file"):
        load_file(tmp_path / "absent.csv")
