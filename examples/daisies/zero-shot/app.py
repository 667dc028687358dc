"""Zero Shot Text Classification: rank candidate labels for a text.

A small deterministic keyword model stands in for a neural network: each known label
has a bundled list of keywords; other labels are scored by their word overlap with the
text. Scores are a softmax over the raw scores, so they sum to 1.
"""

from __future__ import annotations

import math
import re
from typing import Any

KEYWORDS: dict[str, frozenset[str]] = {
    label: frozenset(words.split())
    for label, words in {
        "astronomy": "moon lunar star sun solar planet galaxy telescope orbit comet asteroid "
        "meteor nebula universe cosmos space nasa astronaut rocket spacecraft eclipse mars "
        "jupiter saturn venus mercury constellation astronomy astronomer satellite",
        "travel": "travel trip journey vacation holiday flight fly airport hotel tourist "
        "tourism visit passport luggage beach cruise destination abroad tour ticket train "
        "explore backpacking resort sightseeing",
        "sports": "sport football soccer basketball tennis baseball game match team score "
        "goal player coach league tournament olympics race championship athlete stadium "
        "cricket golf hockey win",
        "cooking": "cook cooking recipe bake baking oven kitchen chef ingredient dish meal "
        "food dinner lunch breakfast fry boil flavor spice sauce pasta soup dessert cake",
        "finance": "money bank stock market invest investment investor finance financial "
        "price dollar euro budget loan interest tax profit revenue economy inflation "
        "trading fund crypto bitcoin debt credit",
        "music": "music song album band concert guitar piano singer sing melody rhythm "
        "lyrics orchestra jazz rock pop drum violin playlist musician tune symphony",
        "politics": "politics political election vote government president minister "
        "parliament congress senate law policy party campaign democracy senator governor "
        "referendum diplomat mayor",
        "technology": "technology tech computer software hardware internet app smartphone "
        "phone ai robot code programming data digital algorithm chip startup device gadget "
        "cloud cyber network",
        "science": "science scientist research experiment laboratory lab physics chemistry "
        "biology theory hypothesis discovery molecule atom",
        "health": "health doctor hospital medicine disease patient nurse vaccine virus "
        "symptom treatment therapy fitness diet exercise sleep",
        "weather": "weather rain snow storm sunny cloudy wind temperature forecast hot cold "
        "humid thunder hurricane",
    }.items()
}

SHARPNESS = 3.0
"""How peaked the softmax is: one keyword more gives about 20 times the odds."""


def _stem(word: str) -> str:
    """A crude stem: lowercase, without a final plural ``s``."""
    word = word.lower()
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    return word


def _words(text: str) -> list[str]:
    return [_stem(w) for w in re.findall(r"[A-Za-z0-9]+", text)]


_STEMMED = {_stem(label): frozenset(_stem(w) for w in words) for label, words in KEYWORDS.items()}


def _overlap(label_words: list[str], text_words: list[str]) -> float:
    """Word overlap: 1 per equal word, 0.5 per word contained in the other (4+ letters)."""
    score = 0.0
    for lw in label_words:
        for tw in text_words:
            if lw == tw:
                score += 1.0
            elif len(lw) >= 4 and len(tw) >= 4 and (lw in tw or tw in lw):
                score += 0.5
    return score


def _score(label: str, text_words: list[str]) -> float:
    label_words = _words(label)
    score = _overlap(label_words, text_words)
    keywords = _STEMMED.get(" ".join(label_words))
    if keywords is not None:
        score += sum(1.0 for w in text_words if w in keywords)
    return score


def _labels(candidate_labels: str | list[str]) -> list[str]:
    raw = candidate_labels.split(",") if isinstance(candidate_labels, str) else candidate_labels
    labels = [str(label).strip() for label in raw]
    labels = [label for label in labels if label]
    if not labels:
        raise ValueError("candidate_labels is empty")
    return labels


def compute(text: str, candidate_labels: str | list[str]) -> dict[str, Any]:
    """Rank ``candidate_labels`` by how well they describe ``text``.

    Args:
        text: The text to classify.
        candidate_labels: The labels, as a list or a comma-separated string.

    Returns:
        ``{"sequence": text, "labels": [...], "scores": [...]}``, labels sorted by
        decreasing score, scores summing to 1 (as the Hugging Face pipeline does).
    """
    labels = _labels(candidate_labels)
    text_words = _words(text)
    raw = [_score(label, text_words) for label in labels]
    top = max(raw)
    weights = [math.exp(SHARPNESS * (r - top)) for r in raw]
    total = sum(weights)
    ranked = sorted(
        zip(labels, (w / total for w in weights), strict=True),
        key=lambda pair: -pair[1],
    )
    return {
        "sequence": text,
        "labels": [label for label, _ in ranked],
        "scores": [score for _, score in ranked],
    }
