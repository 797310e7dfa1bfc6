"""Write data/words/frequent.tsv: the English nouns, verbs and adjectives that people use most,
with the forms the title corpus needs (a noun's plural, a verb's -ing and past forms).

Not run by the build: frequent.tsv is committed. To write it again (the same bytes, given the
same package versions), in a scratch virtual environment:

    pip install wordfreq==3.1.1 lemminflect==0.2.3 wonderwords==3.0.1
    python data/words/make_frequent.py

The words are wordfreq's `top_n_list("en", 20000)` (its data is CC BY-SA 4.0; only the selection
and the ranks are used), kept where they are 3 to 12 lower-case letters, in Debian's `wamerican`
list, not stopwords of the rubric judge and not on wonderwords' profanity list. A word is a noun,
a verb or an adjective where wonderwords' list of those has it (a word can be all three: "light"),
or where lemminflect (MIT) gives that kind first among the word's lemmas ("electric", "simple",
"learn"); lemminflect gives the inflected forms, which must be in `wamerican` too.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TOP = 20000
# Pronouns and the like that wonderwords' noun list has.
NOT_CONTENT = frozenset(
    "she him hers something anything nothing someone everything everyone anyone somebody "
    "nobody everybody maybe following there yeah okay".split()
)
WORDLIST = Path("/usr/share/dict/american-english")


def main() -> int:
    import importlib.resources

    import lemminflect
    import wordfreq

    sys.path.insert(0, str(ROOT / "src"))
    from dpo_titles.rubric import STOPWORDS

    known = {w.strip() for w in WORDLIST.read_text(encoding="utf-8", errors="replace").split()}
    # Its single-word entries: the words of a phrase in it ("blow job") are innocent alone.
    profane = {
        line.strip().lower()
        for line in (importlib.resources.files("wonderwords") / "assets" / "profanitylist.txt")
        .read_text(encoding="utf-8")
        .splitlines()
        if line.strip() and " " not in line.strip()
    }
    assets = importlib.resources.files("wonderwords") / "assets"
    listed = {
        upos: set((assets / name).read_text(encoding="utf-8").split())
        for upos, name in (
            ("NOUN", "nounlist.txt"),
            ("VERB", "verblist.txt"),
            ("ADJ", "adjectivelist.txt"),
        )
    }
    rows = []
    for rank, word in enumerate(wordfreq.top_n_list("en", TOP), 1):
        if not (word.isalpha() and word.islower() and 3 <= len(word) <= 12):
            continue
        if word not in known or word in STOPWORDS or word in NOT_CONTENT:
            continue
        # A profane word, or one that holds one of more than three letters ("assclown").
        if any(p == word or (len(p) > 3 and p in word) for p in profane):
            continue
        lemmas = lemminflect.getAllLemmas(word)
        for upos, tags in (("NOUN", ("NNS",)), ("VERB", ("VBG", "VBD")), ("ADJ", ())):
            first = next(iter(lemmas), None) == upos and word in lemmas[upos]
            if word not in listed[upos] and not first:
                continue
            forms = []
            for tag in tags:
                # The first form that wamerican has ("money": "moneys" is not, "monies" is).
                inflected = [f for f in lemminflect.getInflection(word, tag=tag) if f in known]
                if not inflected:
                    break
                forms.append(inflected[0])
            else:
                rows.append((word, upos.lower(), rank, forms))
    out = HERE / "frequent.tsv"
    with open(out, "w", encoding="utf-8") as fh:
        fh.write("word\tpos\trank\tforms\n")
        for word, pos, rank, forms in rows:
            fh.write(f"{word}\t{pos}\t{rank}\t{' '.join(forms)}\n")
    counts = {p: sum(r[1] == p for r in rows) for p in ("noun", "verb", "adj")}
    print(f"wrote {out}: {counts}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
