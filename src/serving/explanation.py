"""Why a linear model predicted what it did: each term's exact share of the decision scores."""

from __future__ import annotations

from dataclasses import dataclass

from src.engine.compiled import CompiledScorer, TermWeights


@dataclass(frozen=True, slots=True)
class TermShare:
    """A term of the text and how much it pushed one class's score."""

    term: str
    contribution: float


@dataclass(frozen=True)
class Explanation:
    """Decision scores split into an intercept plus one share per term.

    For a binary model there is one score, for the second class (e.g. `positive`): a term with a
    negative share pushed towards the first class. `terms` lists the `top` terms with the largest
    shares and `other_terms` adds up the shares of the rest, so that always
    `scores[c] == intercepts[c] + sum of c's shares in terms + other_terms[c]`.
    """

    scores: dict[str, float]
    intercepts: dict[str, float]
    terms: list[dict[str, object]]
    other_terms: dict[str, float]
    terms_total: int
    towards: dict[str, list[TermShare]]


def explain(scorer: CompiledScorer, text: str, top: int = 10) -> tuple[TermWeights, Explanation]:
    """One text's weights (to predict from, without weighing it again) and its explanation: the `top`
    terms with the largest shares, the sum of the others, and the `top` terms pushing towards each class.

    The size of an explanation is bounded by `top`, whatever the length of the text.
    """
    labels = scorer.score_labels
    weighted, shares = scorer.contributions(text)
    intercepts = dict(zip(labels, scorer.intercepts, strict=True))
    scores = {label: intercepts[label] + sum(s.contributions[k] for s in shares) for k, label in enumerate(labels)}
    shares.sort(key=lambda s: max(map(abs, s.contributions)), reverse=True)
    listed, rest = shares[:top], shares[top:]
    terms = [
        {"term": s.term, "weight": s.weight, "contributions": dict(zip(labels, s.contributions, strict=True))}
        for s in listed
    ]
    other_terms = {label: float(sum(s.contributions[k] for s in rest)) for k, label in enumerate(labels)}
    towards: dict[str, list[TermShare]] = {}
    if len(labels) == 1:  # binary: pushing the one score down pushes towards the first class
        first, second = scorer.classes
        towards[first] = [TermShare(s.term, -s.contributions[0]) for s in shares if s.contributions[0] < 0]
        towards[second] = [TermShare(s.term, s.contributions[0]) for s in shares if s.contributions[0] > 0]
    else:
        for k, label in enumerate(labels):
            towards[label] = [TermShare(s.term, s.contributions[k]) for s in shares if s.contributions[k] > 0]
    for label, pushed in towards.items():
        towards[label] = sorted(pushed, key=lambda share: share.contribution, reverse=True)[:top]
    return weighted, Explanation(scores, intercepts, terms, other_terms, len(shares), towards)
