"""How readable titles are and whether they use their idea: real-word share and idea-word reuse.

A word is a run of letters and digits (with an apostrophe suffix such as "'s") that holds a letter.
It counts as real when a word list has it (any case; of the lone letters only "a" and "I"), when
the idea itself has it (a name or a technical word the title copied), or when it is a number with
a short unit ("5K", "1080p"). A title reuses its idea when it shares a content word with it, by
the rubric judge's stems and stopwords.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from .errors import UserError
from .rubric import content_words

DEFAULT_WORDLIST = "/usr/share/dict/american-english"
WORDLIST_PACKAGE = "wamerican"

_WORD = re.compile(r"[A-Za-z0-9]+(?:['\u2019][A-Za-z]+)*")
_NUMBER_UNIT = re.compile(r"\d+[a-z]{0,3}")


def load_wordlist(path: str | Path = DEFAULT_WORDLIST) -> frozenset[str]:
    """The lower-cased words of a word list file, one a line (Debian's wamerican by default)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"word list {path} does not exist: install it with `apt-get install -y "
            f"{WORDLIST_PACKAGE}`, or pass another list of words, one a line"
        )
    with open(path, encoding="utf-8", errors="replace") as fh:
        words = frozenset(line.strip().lower() for line in fh if line.strip())
    if not words:
        raise UserError(f"word list {path} holds no words")
    return words


def title_words(text: str) -> list[str]:
    """The lower-cased words of a text that hold a letter, apostrophes made straight."""
    found = (w.lower().replace("\u2019", "'") for w in _WORD.findall(text))
    return [w for w in found if any(c.isalpha() for c in w)]


def is_real_word(word: str, known: frozenset[str], idea_words: set[str]) -> bool:
    """Whether a lower-cased word is in the word list or the idea, or is a number with a unit."""
    stem = word[:-2] if word.endswith("'s") else word
    if len(word) == 1:
        # The word list has every letter; a lone letter other than these is a broken word.
        return word in ("a", "i") or word in idea_words
    return (
        any(w in known or w in idea_words for w in (word, stem))
        or _NUMBER_UNIT.fullmatch(word) is not None
    )


def real_word_counts(title: str, idea: str, known: frozenset[str]) -> tuple[int, int]:
    """How many of the title's words are real (see is_real_word), and how many words it has."""
    idea_words = set(title_words(idea))
    words = title_words(title)
    return sum(is_real_word(w, known, idea_words) for w in words), len(words)


def real_word_share(pairs: Iterable[tuple[str, str]], known: frozenset[str]) -> float:
    """The share of real words among all the words of (idea, title) pairs' titles (0 if none)."""
    real = total = 0
    for idea, title in pairs:
        r, n = real_word_counts(title, idea, known)
        real, total = real + r, total + n
    return real / total if total else 0.0


def reuses_idea(title: str, idea: str) -> bool:
    """Whether the title shares a content word (the rubric's stems, no stopwords) with the idea."""
    return bool(content_words(title) & content_words(idea))


def reuse_share(pairs: Iterable[tuple[str, str]]) -> float:
    """The share of (idea, title) pairs whose title reuses a content word of its idea."""
    flags = [reuses_idea(title, idea) for idea, title in pairs]
    return sum(flags) / len(flags) if flags else 0.0


def non_words(pairs: Iterable[tuple[str, str]], known: frozenset[str]) -> list[str]:
    """The words of the titles that are not real, in order of appearance, for a reader to see."""
    out = []
    for idea, title in pairs:
        idea_words = set(title_words(idea))
        out += [w for w in title_words(title) if not is_real_word(w, known, idea_words)]
    return out
