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
