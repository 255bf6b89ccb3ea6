"""Corrections from production as training data: `python -m src.model.train_script --feedback DIR`.

DIR is a PREDICTION_LOG_DIR: `feedback-*.jsonl` holds corrections (request id, index, label, model,
the key that gave it and, from its feedback token, the digest of the text it corrects),
`predictions-*.jsonl` the records they correct (rotated files, `.1`, `.2`, ..., included). Only
corrections from the key ids asked for (`--feedback-keys`; `anonymous` for a server without keys)
are read. A correction becomes a training row when the record it names is there, is of this model,
was answered for the same key, kept its text (not redacted) and that text is the one the token
named (a later request reusing the X-Request-ID cannot swap the text); the row's source is
`feedback`. Of several corrections of one text by one key, the first counts (as the server takes
them). A line that is not a JSON object is skipped and counted, never fatal: a log cut by a crash
ends in half a line.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from src.documents import DocumentError, read_json
from src.errors import DatasetError
from src.model.datasets import Dataset
from src.tenants.feedback_tokens import text_digest
from src.tenants.keys import ANONYMOUS

logger = logging.getLogger(__name__)

FEEDBACK_SOURCE = "feedback"


@dataclass
class FeedbackCounts:
    """What the folder held and what became training rows."""

    corrections: int = 0
    used: int = 0
    other_keys: dict[str, int] = field(default_factory=dict)  # corrections of keys not asked for, by key id
    repeated: int = 0  # a later correction of a text already corrected by the same key
    unmatched: int = 0  # no record of the request for that key (sampled out, rotated away, another model's)
    redacted: int = 0  # the record holds a hash or a redacted text, not the text
    other_text: int = 0  # the record's text is not the one the correction's token named
    unknown_labels: dict[str, int] = field(default_factory=dict)
    bad_lines: int = 0

    def format_report(self) -> str:
        """One line for the training log."""
        unknown = sum(self.unknown_labels.values())
        others = ", ".join(f"{key} {count}" for key, count in sorted(self.other_keys.items())) or "none"
        return (
            f"feedback: {self.corrections} corrections from the keys asked for, {self.used} used; skipped: "
            f"{self.repeated} repeated, {self.unmatched} without their prediction record, {self.other_text} for "
            f"another text, {self.redacted} redacted, {unknown} with a label the data does not have, "
            f"{self.bad_lines} unreadable lines; not asked for: {others}"
        )


_MAX_LINE_DEPTH = 8  # a correction or a prediction record, as the service writes them


def _lines(folder: Path, prefix: str, counts: FeedbackCounts) -> Iterator[dict[str, Any]]:
    for path in sorted(folder.glob(f"{prefix}-*.jsonl*")):
        with path.open("rb") as handle:
            for raw in handle:
                try:
                    document = read_json(raw, "a ledger line", max_bytes=len(raw), max_depth=_MAX_LINE_DEPTH)
                except DocumentError:
                    counts.bad_lines += 1
                    continue
                if isinstance(document, dict):
                    yield document
                else:
                    counts.bad_lines += 1


def _key(document: dict[str, Any]) -> str:
    key = document.get("key")
    return key if isinstance(key, str) and key else ANONYMOUS


def load_feedback(folder: Path, model: str, labels: set[str], keys: set[str]) -> tuple[Dataset, FeedbackCounts]:
    """The corrected texts of `model` in a prediction log folder, labelled by the corrections of `keys`.

    `labels` are the training data's: a correction to another label is skipped (and counted).
    """
    if not folder.is_dir():
        raise DatasetError(f"--feedback {folder}: not a folder")
    counts = FeedbackCounts()
    # (key, request id, index) -> (time, label, the text's digest or None)
    corrections: dict[tuple[str, str, int], tuple[str, str, str | None]] = {}
    for document in _lines(folder, "feedback", counts):
        if document.get("model") != model:
            continue
        key_id = _key(document)
        index, label, digest = document.get("index", 0), document.get("label"), document.get("text_digest")
        if not isinstance(index, int) or not isinstance(label, str) or not isinstance(digest, str | None):
            counts.bad_lines += 1
            continue
        if key_id not in keys:
            counts.other_keys[key_id] = counts.other_keys.get(key_id, 0) + 1
            continue
        counts.corrections += 1
        identity = (key_id, str(document.get("request_id")), index)
        stamp = str(document.get("time", ""))
        if identity in corrections and corrections[identity][0] <= stamp:
            counts.repeated += 1
            continue
        if identity in corrections:
            counts.repeated += 1
        corrections[identity] = (stamp, label, digest)
    wanted = {request_id for _, request_id, _ in corrections}
    # Every text a record gave each (key, request id, index): a client may reuse its own request ids.
    texts: dict[tuple[str, str, int], list[str | None]] = {}
    for document in _lines(folder, "predictions", counts):
        request_id = document.get("request_id")
        if request_id not in wanted or document.get("model") != model or document.get("status") != 200:
            continue
        sent = document.get("texts")
        if not isinstance(sent, list):
            continue
        for index, text in enumerate(sent):
            identity = (_key(document), str(request_id), index)
            if identity in corrections:
                texts.setdefault(identity, []).append(None if document.get("redacted") else str(text))
    rows: list[tuple[str, str]] = []
    for identity, (_, label, digest) in sorted(corrections.items()):
        candidates = texts.get(identity, [])
        kept = [text for text in candidates if text is not None]
        named = [text for text in kept if digest is None or text_digest(text).hex() == digest]
        text = named[-1] if named else None
        if not candidates:
            counts.unmatched += 1
        elif not kept:
            counts.redacted += 1
        elif text is None:
            counts.other_text += 1
        elif label not in labels:
            counts.unknown_labels[label] = counts.unknown_labels.get(label, 0) + 1
        else:
            rows.append((text, label))
    counts.used = len(rows)
    dataset = Dataset(
        texts=[text for text, _ in rows],
        labels=[label for _, label in rows],
        sources=[FEEDBACK_SOURCE] * len(rows),
        dataset_id=f"feedback:{folder.name}",
    )
    return dataset, counts
