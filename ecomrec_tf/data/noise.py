"""Seeded text noise of shoppers' typing: typos, abbreviations, casing (pure Python, for generators)."""

from __future__ import annotations

import random

from ecomrec_tf.preprocessing.keyboard import KEY_NEIGHBOURS

ABBREVIATIONS = {
    "please": "pls",
    "you": "u",
    "your": "ur",
    "thanks": "thx",
    "with": "w/",
    "information": "info",
    "because": "bc",
    "received": "recvd",
    "tomorrow": "tmrw",
    "message": "msg",
    "quantity": "qty",
    "order": "ordr",
    "for": "4",
    "are": "r",
    "to": "2",
    "days": "d",
    "before": "b4",
    "without": "w/o",
}


def typo(word: str, rng: random.Random) -> str:
    """One keyboard slip in `word`: an adjacent key, a dropped, doubled or swapped letter."""
    if len(word) < 4 or not word.isalpha():
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(("adjacent", "drop", "double", "swap"))
    if kind == "adjacent" and word[i].lower() in KEY_NEIGHBOURS:
        return word[:i] + rng.choice(KEY_NEIGHBOURS[word[i].lower()]) + word[i + 1 :]
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    if kind == "double":
        return word[: i + 1] + word[i:]
    return word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]


def add_noise(text: str, rng: random.Random, typo_rate: float = 0.3, abbreviation_rate: float = 0.4) -> str:
    """Typos, abbreviations, a missing space and casing as shoppers type them."""
    words = text.split()
    for i, word in enumerate(words):
        if word.lower() in ABBREVIATIONS and rng.random() < abbreviation_rate:
            words[i] = ABBREVIATIONS[word.lower()]
    if rng.random() < typo_rate:
        i = rng.randrange(len(words))
        words[i] = typo(words[i], rng)
    if len(words) > 2 and rng.random() < 0.05:
        i = rng.randrange(len(words) - 1)
        words[i : i + 2] = [words[i] + words[i + 1]]
    text = " ".join(words)
    casing = rng.random()
    if casing < 0.15:
        return text[:1].upper() + text[1:]
    if casing < 0.22:
        return text.upper()
    if casing < 0.30:
        return " ".join(w.capitalize() if rng.random() < 0.5 else w for w in text.split())
    return text
