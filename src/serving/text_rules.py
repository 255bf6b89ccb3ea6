"""The text rules, the same for every protocol, applied by the data plane before any model runs.

A batch holds 1 to MAX_BATCH_SIZE texts; a text has a non-blank character, at most MAX_TEXT_LENGTH
characters, and at most NORMALISED_LENGTH_FACTOR times that once Unicode NFKD expands it (the model
strips accents through NFKD, so the expanded length is what scoring costs: U+FDFA becomes 18
characters). A broken rule is an InvalidInputError that says which text broke it; the protocol's
adapter says where its request holds that text (InvalidInputError.at).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from src.config import Settings
from src.errors import InvalidInputError

Location = tuple[str | int, ...]
# A character that is white space neither to Python nor to JSON Schema (ECMA-262) regexes; the JSON
# schema publishes this pattern, so clients can check the rule before sending.
NON_BLANK = "[^\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"
_NON_BLANK = re.compile(NON_BLANK)
NORMALISED_LENGTH_FACTOR = 3


@dataclass(frozen=True)
class TextLimits:
    """The configurable bounds of the rules."""

    max_text_length: int
    max_batch_size: int

    @classmethod
    def from_settings(cls, settings: Settings) -> TextLimits:
        """MAX_TEXT_LENGTH and MAX_BATCH_SIZE."""
        return cls(settings.max_text_length, settings.max_batch_size)


_SURROGATE = re.compile("[\ud800-\udfff]")


def check_batch_size(count: int, limits: TextLimits, loc: Location) -> None:
    """A batch of `count` texts must hold at least one and at most MAX_BATCH_SIZE."""
    if count < 1:
        raise InvalidInputError("at least one text is needed", loc=loc)
    if count > limits.max_batch_size:
        raise InvalidInputError(
            f"batch has {count} texts; the limit is {limits.max_batch_size} (MAX_BATCH_SIZE)", loc=loc
        )


def check_text(text: str, limits: TextLimits, loc: Location) -> None:
    """One text: not too long, not blank, Unicode text, not too long once normalised."""
    longest = limits.max_text_length
    if len(text) > longest:
        raise InvalidInputError(f"text has {len(text)} characters; the limit is {longest} (MAX_TEXT_LENGTH)", loc=loc)
    if not _NON_BLANK.search(text):
        raise InvalidInputError("text must contain at least one non-whitespace character", loc=loc)
    if not text.isascii():
        if _SURROGATE.search(text):
            # JSON's \ud800 escapes can name half a character; no UTF-8 text (gRPC, binary tensors) can.
            raise InvalidInputError("text holds a lone surrogate (\\ud800-\\udfff): it is not Unicode text", loc=loc)
        expanded = len(unicodedata.normalize("NFKD", text))
        limit = NORMALISED_LENGTH_FACTOR * longest
        if expanded > limit:
            raise InvalidInputError(
                f"text expands to {expanded} characters under Unicode normalisation (NFKD); the limit is "
                f"{limit} ({NORMALISED_LENGTH_FACTOR} x MAX_TEXT_LENGTH)",
                loc=loc,
            )


def check_texts(texts: Sequence[str], limits: TextLimits) -> None:
    """Every rule, for a request's texts in order; the first broken one is raised, naming its text's
    index (the batch's rule, none), for the adapter to place in its own request."""
    check_batch_size(len(texts), limits, ())
    for index, text in enumerate(texts):
        try:
            check_text(text, limits, ())
        except InvalidInputError as error:
            error.text_index = index
            raise
