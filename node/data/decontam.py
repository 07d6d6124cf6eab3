"""Decontamination: find training records that overlap the run's held-out evaluation split.

A record is contaminated if it shares any word n-gram (n = 13, as in the GPT-3
paper) with the evaluation text, or if its normalized words equal a whole
evaluation paragraph (short records have no 13-gram to share). Words are
lowercased ``\\w+`` runs, so punctuation and spacing changes do not hide overlap.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from node.data.canonical import canonical

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class DecontamConfig:
    ngram: int = 13  # GPT-3's contamination n-gram: long enough that sharing one is not chance
    min_exact_words: int = 4  # shorter records ("See also:") are boilerplate; exact matches below this are ignored


def _words(text: str) -> list[str]:
    return _WORD.findall(canonical(text).lower())


def _key(words: Iterable[str]) -> bytes:
    return hashlib.blake2b(" ".join(words).encode(), digest_size=12).digest()


class EvalIndex:
    """The n-grams and paragraphs of the evaluation split, hashed (the split itself is not kept)."""

    def __init__(self, paragraphs: Iterable[str], cfg: DecontamConfig = DecontamConfig()) -> None:
        self.cfg = cfg
        self._grams: set[bytes] = set()
        self._paragraphs: set[bytes] = set()
        for text in paragraphs:
            words = _words(text)
            if len(words) >= cfg.min_exact_words:
                self._paragraphs.add(_key(words))
            for i in range(len(words) - cfg.ngram + 1):
                self._grams.add(_key(words[i : i + cfg.ngram]))

    def __len__(self) -> int:
        return len(self._grams)

    def overlap(self, text: str) -> str | None:
        """Why ``text`` overlaps the evaluation split, or None if it does not."""
        words = _words(text)
        n = self.cfg.ngram
        if len(words) >= self.cfg.min_exact_words and _key(words) in self._paragraphs:
            return "equals an evaluation paragraph"
        for i in range(len(words) - n + 1):
            if _key(words[i : i + n]) in self._grams:
                return f"shares a {n}-word sequence with the evaluation split (at word {i})"
        return None
