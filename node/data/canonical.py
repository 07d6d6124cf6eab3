"""The canonical text every vetting check reads, so look-alike spellings cannot slip past them.

Stored bytes are never changed: training reads them as packed. Checks read the
canonical form instead: NFKC (fullwidth and other compatibility forms folded),
format characters (zero-width space, soft hyphen, joiners, bidi controls)
removed, and Cyrillic/Greek letters that look like Latin ones folded to Latin
inside words that are written mostly in Latin look-alikes. A record whose
canonical form differs a lot from its bytes was written to evade checks, which
is itself a reason to exclude it (``changed_fraction``).
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import lru_cache

# Cyrillic and Greek letters rendered like Latin letters in common fonts (Unicode confusables, letters only).
_CONFUSABLES = str.maketrans({
    "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t",
    "у": "y", "х": "x", "ѕ": "s", "і": "i", "ј": "j", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ѵ": "v", "һ": "h",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T",
    "Х": "X", "Ѕ": "S", "І": "I", "Ј": "J", "Ү": "Y",
    "α": "a", "ο": "o", "ρ": "p", "ν": "v", "ι": "i", "κ": "k", "τ": "t", "υ": "u", "χ": "x",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O",
    "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
})
_CONFUSABLE_CHARS = frozenset(chr(c) for c in _CONFUSABLES)
_WORD = re.compile(r"\w+")
# Format characters (Unicode category Cf) and look-alikes: text holding none of them, already in
# NFKC, is its own canonical form, which settles most records without a per-character loop.
_FORMAT = re.compile(
    "[\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]"
)
_SUSPECT = re.compile(_FORMAT.pattern[:-1] + "".join(sorted(_CONFUSABLE_CHARS)) + "]")


def _plain(text: str) -> bool:
    return unicodedata.is_normalized("NFKC", text) and not _SUSPECT.search(text)


@lru_cache(maxsize=65536)
def _char(c: str) -> str:
    if unicodedata.category(c) == "Cf":
        return ""
    return unicodedata.normalize("NFKC", c)


def _folder(text: str):
    """A word folder for ``text``: in mostly-Latin text a word made only of look-alikes is folded too."""
    latin = sum(1 for c in text if c.isascii() and c.isalpha())
    other = sum(1 for c in text if not c.isascii() and c.isalpha())
    mostly_latin = latin > other

    def fold(m: re.Match[str]) -> str:
        word = m.group(0)
        lat = sum(1 for c in word if c.isascii() and c.isalpha())
        looks = sum(1 for c in word if c in _CONFUSABLE_CHARS)
        # Real Russian or Greek words hold letters with no Latin twin, or stand among other
        # Cyrillic/Greek words; a look-alike word inside Latin text is a disguise.
        if looks and lat + looks == len(word) and (lat or mostly_latin):
            return word.translate(_CONFUSABLES)
        return word

    return fold


def canonical(text: str) -> str:
    """The form of ``text`` that checks compare: NFKC, no format characters, look-alikes folded."""
    if text.isascii() or _plain(text):
        return text
    flat = unicodedata.normalize("NFC", "".join(_char(c) for c in text))
    return _WORD.sub(_folder(flat), flat)


def changed_fraction(text: str) -> float:
    """Share of the non-space characters of ``text`` that canonicalization removes or replaces."""
    if text.isascii() or _plain(text):
        return 0.0
    significant = sum(1 for c in text if not c.isspace())
    if not significant:
        return 0.0
    changed = 0
    for c in text:
        mapped = _char(c)
        # Fullwidth punctuation is ordinary in CJK text; only letters, digits and removed characters count.
        if mapped == "" or (mapped != c and c.isalnum()):
            changed += 1
    flat = "".join(_char(c) for c in text)
    fold = _folder(flat)
    for m in _WORD.finditer(flat):
        if m.group(0) != fold(m):
            changed += sum(1 for c in m.group(0) if c in _CONFUSABLE_CHARS)
    return min(1.0, changed / significant)


def json_strings(value: object, keys: bool = True) -> list[str]:
    """Every string in a parsed JSON value (keys too, if asked), in document order, without recursion."""
    out: list[str] = []
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, dict):
            for k, x in reversed(list(v.items())):
                stack.append(x)
                if keys:
                    stack.append(k)
        elif isinstance(v, list):
            stack.extend(reversed(v))
        elif v is not None and not isinstance(v, bool):
            out.append(json.dumps(v))
    return out
