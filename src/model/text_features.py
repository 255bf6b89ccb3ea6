"""Text features that generalise across domains, kept inside a plain linear TF-IDF model.

- Negation marking: the words after a negation cue, up to the next punctuation mark or contrast word,
  get a `neg_` prefix, so "not bad" becomes the terms `not` and `neg_bad`, which the model weighs
  apart from `bad`. Das & Chen (2001) and Pang et al. (2002) mark negation this way.
- A token pattern that keeps emoticons (`:)`, `:-(`, `<3`) as terms beside words of 2+ characters.

`NegationTfidfVectorizer` is a TfidfVectorizer whose preprocessor also marks negation; everything
else (tokenizer, vocabulary, idf) is scikit-learn's, so the compiled scorer, which calls the
vectorizer's own `build_preprocessor()` and `build_tokenizer()`, reproduces it exactly. Its class is
on the model file's reviewed trusted-type list.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

NEGATION_PREFIX = "neg_"

# Words (2+ characters, as scikit-learn's default) or an emoticon standing on its own.
TOKEN_PATTERN = r"(?u)\b\w\w+\b|(?<![\w:;=])[:;=][-o']?(?:[()\[\]/\\|*]+|[dp3](?!\w))|<3"

_SCOPE_END_WORDS = ["but", "however", "although", "though", "yet", "except"]
_PUNCTUATION = r".,!?;:()\[\]\""
# A cue ("not", "never", "don't"), then its scope: everything up to the next punctuation mark, contrast
# word, cue (which starts a scope of its own) or the end. One regular expression, so the work is done in C.
# Negation cues: not, no, none, nobody, nothing, nowhere, nor, never, neither, without, cannot,
# hardly, barely, scarcely, the apostrophe-less "dont" ... "hadnt", and any word ending in "n't".
# Spelt as a tree behind a word-start check, which Python's re rejects quickly at most positions.
_CUE = (
    r"(?<!\w)(?:no(?:t|ne|body|thing|where|r)?|ne(?:ver|ither)|without|cannot|hardly|barely|scarcely"
    r"|(?:do|does|did|is|was|are|were|ca|could|would|should|wo|ai|have|has|had)nt|\w*n['\u2019]t)\b(?!['\u2019]\w)"
)
_NEGATION = re.compile(
    rf"({_CUE})([^{_PUNCTUATION}]*?)(?=[{_PUNCTUATION}]|\b(?:{'|'.join(_SCOPE_END_WORDS)})\b|{_CUE}|$)"
)
# The start of each word in a scope (not the "s" of "it's").
_WORD_START = re.compile(r"(?<!\w)(?<!\w['\u2019])(?=\w)")


def _mark_scope(match: re.Match[str]) -> str:
    return match.group(1) + _WORD_START.sub(NEGATION_PREFIX, match.group(2))


def mark_negation(text: str) -> str:
    """Prefix each word in a negation's scope with `neg_`; the text is expected lower-case."""
    return _NEGATION.sub(_mark_scope, text)


class NegationTfidfVectorizer(TfidfVectorizer):  # type: ignore[misc]  # scikit-learn ships no types
    """A TfidfVectorizer that marks negated words (`not bad` -> `not neg_bad`) before tokenizing."""

    def build_preprocessor(self) -> Callable[[str], str]:
        """scikit-learn's preprocessor (accents, lower case), then negation marking."""
        base = super().build_preprocessor()

        def preprocess(text: str) -> str:
            return mark_negation(base(text))

        return preprocess


# --- Sentiment cues: shared lexicon evidence, contrast and raw cues (SentimentCueVectorizer) ---

LEXICON_POSITIVE = "lexpos"
LEXICON_NEGATIVE = "lexneg"
EXCLAMATION = "xxexcl"
ALL_CAPS = "xxcaps"
_CUE_TOKENS = (LEXICON_POSITIVE, LEXICON_NEGATIVE, EXCLAMATION, ALL_CAPS)
_WORD = re.compile(r"\w+")
# The text after "but", up to the end of its sentence or clause.
_BUT_CLAUSE = re.compile(r"\bbut\b([^.!?;]*)")
_CAPS_WORD = re.compile(r"(?<![^\W\d_])[A-Z]{3,}(?![^\W\d_])")


def _scoped_negation(end_at_and: bool) -> re.Pattern[str]:
    ends = [*_SCOPE_END_WORDS, "and"] if end_at_and else _SCOPE_END_WORDS
    return re.compile(rf"({_CUE})([^{_PUNCTUATION}]*?)(?=[{_PUNCTUATION}]|\b(?:{'|'.join(ends)})\b|{_CUE}|$)")


_NEGATION_TO_AND = _scoped_negation(end_at_and=True)


def mark_negation_scoped(text: str, *, end_at_and: bool, max_words: int | None) -> str:
    """mark_negation with a narrower scope: it also ends at "and", and only its first `max_words` words
    (all, for None) get the prefix."""
    pattern = _NEGATION_TO_AND if end_at_and else _NEGATION
    if max_words is None:
        return pattern.sub(_mark_scope, text)

    def mark(match: re.Match[str]) -> str:
        return match.group(1) + _WORD_START.sub(NEGATION_PREFIX, match.group(2), count=max_words)

    return pattern.sub(mark, text)


def _words(joined: str) -> frozenset[str]:
    return frozenset(word for word in joined.split("\n") if word)


@lru_cache(maxsize=16)
def _lexicon_tokens(positive_words: str, negative_words: str) -> dict[str, str]:
    """Each lexicon word, plain and negated, to the token it adds: one dictionary lookup per word.

    Built once per lexicon: scikit-learn calls build_preprocessor() on every transform.
    """
    tokens: dict[str, str] = {}
    for words, plain, flipped in (
        (_words(positive_words), LEXICON_POSITIVE, LEXICON_NEGATIVE),
        (_words(negative_words), LEXICON_NEGATIVE, LEXICON_POSITIVE),
    ):
        for word in words:
            tokens.setdefault(word, plain)
            tokens.setdefault(NEGATION_PREFIX + word, flipped)
    return tokens


class SentimentCueVectorizer(TfidfVectorizer):  # type: ignore[misc]  # scikit-learn ships no types
    """A TfidfVectorizer whose preprocessor adds sentiment cues a bag of n-grams cannot learn alone.

    After scikit-learn's preprocessing (accents, lower case) and negation marking (`negation`; its
    scope also ends at "and" with `negation_ends_at_and`, and only its first `negation_max_words`
    words are marked):
    - `contrast`: the text after each "but", up to `.!?;`, is appended once more, since the clause
      after "but" usually carries the verdict;
    - lexicon evidence: for each word of `positive_words` or `negative_words` (newline-joined, stored
      in the model, so serving needs no lexicon package), one shared token `lexpos` or `lexneg` is
      appended, flipped for a negated (`neg_`) word, so every lexicon word shares one learnt weight
      and a word the corpora rarely use still counts;
    - `raw_cues`: `xxexcl` once when the raw text has "!!", `xxcaps` per all-caps word of 3+ letters.
    Everything else is scikit-learn's, so the compiled scorer, which calls `build_preprocessor()` and
    `build_tokenizer()`, reproduces it exactly.
    """

    def __init__(
        self,
        *,
        input: str = "content",
        encoding: str = "utf-8",
        decode_error: str = "strict",
        strip_accents: str | None = None,
        lowercase: bool = True,
        preprocessor: Callable[[str], str] | None = None,
        tokenizer: Callable[[str], list[str]] | None = None,
        analyzer: str = "word",
        stop_words: str | list[str] | None = None,
        token_pattern: str = r"(?u)\b\w\w+\b",
        ngram_range: tuple[int, int] = (1, 1),
        max_df: float = 1.0,
        min_df: float = 1,
        max_features: int | None = None,
        vocabulary: dict[str, int] | None = None,
        binary: bool = False,
        dtype: type = np.float64,
        norm: str | None = "l2",
        use_idf: bool = True,
        smooth_idf: bool = True,
        sublinear_tf: bool = False,
        negation: bool = True,
        negation_ends_at_and: bool = True,
        negation_max_words: int | None = 3,
        contrast: bool = True,
        positive_words: str = "",
        negative_words: str = "",
        raw_cues: bool = True,
    ) -> None:
        super().__init__(
            input=input,
            encoding=encoding,
            decode_error=decode_error,
            strip_accents=strip_accents,
            lowercase=lowercase,
            preprocessor=preprocessor,
            tokenizer=tokenizer,
            analyzer=analyzer,
            stop_words=stop_words,
            token_pattern=token_pattern,
            ngram_range=ngram_range,
            max_df=max_df,
            min_df=min_df,
            max_features=max_features,
            vocabulary=vocabulary,
            binary=binary,
            dtype=dtype,
            norm=norm,
            use_idf=use_idf,
            smooth_idf=smooth_idf,
            sublinear_tf=sublinear_tf,
        )
        self.negation = negation
        self.negation_ends_at_and = negation_ends_at_and
        self.negation_max_words = negation_max_words
        self.contrast = contrast
        self.positive_words = positive_words
        self.negative_words = negative_words
        self.raw_cues = raw_cues

    def build_split_preprocessor(self) -> Callable[[str], tuple[str, str]]:
        """The preprocessing as (the text, what is appended to it): the preprocessor returns their
        concatenation. The compiled scorer counts the text's words (and the unknown ones, the drift
        signal) without what is appended, so cues and repeated clauses do not dilute that share."""
        base = super().build_preprocessor()
        negation, end_at_and, max_words = self.negation, self.negation_ends_at_and, self.negation_max_words
        contrast, raw_cues = self.contrast, self.raw_cues
        tokens = _lexicon_tokens(self.positive_words, self.negative_words)
        find_words = _WORD.findall

        def split(raw: str) -> tuple[str, str]:
            text = base(raw)
            if negation:
                text = mark_negation_scoped(text, end_at_and=end_at_and, max_words=max_words)
            tail = ""
            if contrast and "but" in text:
                clauses = _BUT_CLAUSE.findall(text)
                if clauses:
                    tail = " " + " ".join(clauses)
            cues = [tokens[word] for word in find_words(text + tail) if word in tokens] if tokens else []
            if raw_cues:
                if "!!" in raw:
                    cues.append(EXCLAMATION)
                cues.extend(ALL_CAPS for _ in _CAPS_WORD.finditer(raw))
            if cues:
                tail = f"{tail} {' '.join(cues)}"
            return text, tail

        return split

    def build_preprocessor(self) -> Callable[[str], str]:
        """scikit-learn's preprocessor, then negation marking, contrast, lexicon tokens and raw cues."""
        split = self.build_split_preprocessor()

        def preprocess(raw: str) -> str:
            text, tail = split(raw)
            return text + tail

        return preprocess
