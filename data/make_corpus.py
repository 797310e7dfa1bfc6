"""Write data/title_corpus.csv, the tiny offline model's training corpus, deterministically.

Run from the repository root: ``.venv/bin/python data/make_corpus.py`` (``--check`` only says
whether the committed file is what this script writes).

The tiny model has to write titles for ideas it has never seen, so the corpus teaches it to copy,
not to remember. Each idea is a how-to sentence, "[<lead>] <verb> <thing> [<where>] [<extra>].",
whose thing is drawn from about six thousand English nouns and nine hundred adjectives
(data/words/, from the wonderwords package, MIT licence): most of them occur in a handful of ideas
only, and the only way to write them is to copy them from the prompt. Half of the draws come from
the 3,400 of those words that English uses most (data/words/common.txt), because real ideas are
written in them and a word the corpus uses often is one piece of the tokenizer, which a model this
small copies more surely than a word in parts. The lead is how real ideas start ("Explain how
to", "Beginner tips for", "Watch me"), and a title skips it. Each title puts a prefix of the
idea's own clause ("teach a new puppy", "... to walk on a loose leash") into a template ("How
to ...", "...: a beginner's guide"); the templates' words are the common ones. About half of the
titles carry one flaw the rubric judge penalises (too short, too long, shouting, clickbait filler,
off topic), so preference tuning has something to fix.

data/ideas.csv and data/eval_ideas.csv are real ideas; none of them is in the corpus.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "data" / "title_corpus.csv"
WORDS = ROOT / "data" / "words"
SEED = 20261202
IDEAS = 2400
COMMON_SHARE = 0.5
TITLES_PER_IDEA = 5
MIN_CHARS, MAX_CHARS = 30, 75

# How-to verbs as "base/ing" (a phrasal verb keeps its particle); the rest come from
# data/words/verbs.txt, in their base form only.
VERBS = [
    v.strip()
    for v in (
        "bake/baking; brew/brewing; build/building; buy/buying; care for/caring for; "
        "carve/carving; catch/catching; change/changing; choose/choosing; clean/cleaning; "
        "coach/coaching; compare/comparing; cook/cooking; decorate/decorating; design/designing; "
        "draw/drawing; dry/drying; edit/editing; explore/exploring; feed/feeding; film/filming; "
        "find/finding; fix/fixing; fold/folding; grow/growing; hang/hanging; install/installing; "
        "keep/keeping; knit/knitting; learn/learning; make/making; measure/measuring; "
        "mend/mending; mix/mixing; organize/organizing; pack/packing; paint/painting; "
        "photograph/photographing; pick/picking; plan/planning; plant/planting; play/playing; "
        "practice/practicing; prepare/preparing; protect/protecting; raise/raising; "
        "record/recording; repair/repairing; replace/replacing; restore/restoring; run/running; "
        "save/saving; sell/selling; set up/setting up; sew/sewing; sharpen/sharpening; "
        "shoot/shooting; sketch/sketching; start/starting; store/storing; teach/teaching; "
        "test/testing; track/tracking; train/training; upgrade/upgrading; use/using; "
        "wash/washing; win/winning; write/writing "
    ).split(";")
]

DETERMINERS = (
    "a",
    "the",
    "your",
    "your first",
    "your own",
    "an old",
    "a new",
    "a small",
    "a cheap",
    "a homemade",
    "my",
    "this",
)
PLACES = (
    "at home",
    "in your kitchen",
    "in a small apartment",
    "on a budget",
    "in one weekend",
    "in ten minutes a day",
    "for the first time",
    "without any tools",
    "on a rainy day",
    "for a whole week",
    "in the garden",
    "before the holidays",
    "for complete beginners",
    "in under an hour",
)
# How real ideas start before their clause ("Explain how to ...", "Beginner tips for ..."): a
# title skips the lead and copies the clause after it.
CLAUSE_LEADS = (
    "Learn to",
    "I try to",
    "How to",
    "Explain how to",
    "Show how to",
    "Watch me",
    "Tips and tricks to",
    "Understand how to",
    "Everything you need to know to",
    "Common mistakes people make when they",
    "Why you should",
    "See if I can",
)
ING_LEADS = (
    "A beginner's guide to",
    "Beginner tips for",
    "My first time",
    "The basics of",
    "An honest review of",
    "Five tips for",
)
# Words that end the idea's clause; a title copies the clause, or its first part, and stops there.
EXTRAS = (
    "with {np} and {np}",
    "using {np}",
    ", including {np} and {np}",
    "and learn which {pl} you need",
    "by {ing} {np}",
    "from {np} to {np}",
    "with {pl}, {pl} and {pl}",
    "and show what worked",
    "and the mistakes to avoid",
)
GOOD = (
    "How to {c}",
    "I tried to {c}",
    "The easiest way to {c}",
    "{C}: a beginner's guide",
    "{C} (the right way)",
    "Can you really {c}?",
    "{C}: what nobody tells you",
    "How I learned to {c}",
    "5 mistakes people make when they {c}",
    "Why you should {c}",
    "3 ways to {c}",
    "{C} step by step",
    "Is it worth it to {c}?",
    "What happens when you {c}",
    "{Ing} {o}: the complete guide",
    "A beginner's guide to {ing} {o}",
    "Everything you need to know about {ing} {o}",
    "Stop making these mistakes when {ing} {o}",
)
SHORT = ("My {w} video", "Some {w} tips", "About {w}", "New {w} vlog", "Part 2", "Why {w}?")
SHOUT = ("BEST", "EASY", "NEVER", "HUGE", "REAL", "FAST", "ULTIMATE", "SECRET", "WORST", "ALWAYS")
FILLERS = (
    " (you won't believe this)",
    " - must watch",
    " (gone wrong)",
    " (not clickbait)",
    " | shocking results",
    ", insane results",
    " (mind blowing)",
    ": like and subscribe",
)
LONG_TAILS = (
    " and everything else I wish someone had told me before I started",
    ": the complete guide with every single step, tip and question answered",
    ", a really detailed look at every little thing you could ever want to know",
    " (full beginner walkthrough with every step, question and answer included)",
    " - my long and honest story from the very start to the very end",
)
# Off-topic titles come from this fixed set: a title that ignores its idea is one of these.
OFFTOPIC = (
    "The strange rules of competitive yo-yo",
    "What it takes to become a sommelier",
    "A day in the life of a lighthouse keeper",
    "Why the ocean is salty and rivers are not",
    "The secret history of the humble paperclip",
    "I spent a day with a professional clown",
    "Ranking every airport lounge I have visited",
    "How a tiny island runs without any roads",
    "The weirdest museum exhibits around the world",
    "What happens inside a fortune cookie factory",
    "Why old radios sound warmer than new speakers",
    "The town that celebrates its giant pumpkin",
    "Meet the people who restore antique clocks",
    "How trains climb mountains without slipping",
    "The mystery of the disappearing lake",
    "Inside the world of competitive crossword solvers",
    "How elevators became safe enough to trust",
    "What a submarine cook makes for dinner",
    "The history of the world's oldest bridge",
    "Why some deserts are freezing cold at night",
)


def _words(name: str) -> list[str]:
    return (WORDS / name).read_text(encoding="utf-8").split()


def _plural(noun: str) -> str:
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


class Words:
    """The word lists and the phrases built from them."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        common = set(_words("common.txt"))
        self.nouns = _words("nouns.txt")
        self.adjectives = _words("adjectives.txt")
        self.verbs = [v for v in _words("verbs.txt") if not v.endswith(("ed", "ing"))]
        # Real ideas are written in common words: half of the draws come from those.
        self.common = {
            name: [w for w in getattr(self, name) if w in common]
            for name in ("nouns", "adjectives", "verbs")
        }

    def pick(self, name: str) -> str:
        """A word of list `name`: a common one half of the time, else any."""
        if self.rng.random() < COMMON_SHARE:
            return self.rng.choice(self.common[name])
        return self.rng.choice(getattr(self, name))

    def noun_phrase(self) -> tuple[str, str]:
        """A noun phrase and its last noun ("an old copper lantern", "lantern")."""
        rng = self.rng
        noun = self.pick("nouns")
        words = [noun]
        if rng.random() < 0.5:
            words.insert(0, self.pick("adjectives"))
        if rng.random() < 0.25:
            words.insert(-1, self.pick("nouns"))
        if rng.random() < 0.1:
            # A bare plural, as real ideas have them ("bake soft cookies").
            words[-1] = _plural(noun)
            return " ".join(words), noun
        det = rng.choice(DETERMINERS)
        if det == "a" and words[0][0] in "aeiou":
            det = "an"
        return f"{det} {' '.join(words)}", noun

    def verb(self) -> tuple[str, str | None]:
        """A verb's base form and, for the listed how-to verbs, its -ing form."""
        if self.rng.random() < 0.6:
            base, ing = self.rng.choice(VERBS).split("/")
            return base, ing
        return self.pick("verbs"), None


def make_idea(words: Words) -> dict:
    """One idea: its text, and the parts titles copy (verb, object, place, clause)."""
    rng = words.rng
    base, ing = words.verb()
    obj, noun = words.noun_phrase()
    place = rng.choice(PLACES) if rng.random() < 0.45 else None
    if place is None and rng.random() < 0.3:
        np2, _ = words.noun_phrase()
        place = f"{rng.choice(('in', 'on', 'for', 'near', 'under'))} {np2}"
    extra = None
    if rng.random() < 0.8:
        extra = rng.choice(EXTRAS)
        while "{" in extra:
            extra = extra.replace("{np}", words.noun_phrase()[0], 1)
            extra = extra.replace("{pl}", _plural(words.pick("nouns")), 1)
            extra = extra.replace("{ing}", rng.choice(VERBS).split("/")[1], 1)
    clause = f"{base} {obj}" + (f" {place}" if place else "")
    form = rng.randrange(16)
    tail = f" {place}" if place else ""
    if form < 6:
        text = _cap(clause)
    elif ing and form < 9:
        text = rng.choice(ING_LEADS) + f" {ing} {obj}{tail}"
    else:
        text = rng.choice(CLAUSE_LEADS) + f" {clause}"
    if extra:
        text += extra if extra.startswith(",") else f" {extra}"
    return {
        "idea": text + ".",
        "base": base,
        "ing": ing,
        "obj": obj,
        "noun": noun,
        "clauses": [f"{base} {obj}", clause],
    }


def good_titles(p: dict) -> list[str]:
    """Every template filled with the idea's clause (whole, or without its place), where it fits
    30-75 characters."""
    out = []
    for template in GOOD:
        if "{ing}" in template.lower() and not p["ing"]:
            continue
        for c in dict.fromkeys(p["clauses"]):
            title = template.format(
                c=c, C=_cap(c), ing=p["ing"], Ing=_cap(p["ing"] or ""), o=p["obj"]
            )
            if MIN_CHARS <= len(title) <= MAX_CHARS:
                out.append(title)
    return list(dict.fromkeys(out))


def flawed_title(rng: random.Random, flaw: str, base: str, p: dict) -> str:
    """A title with one flaw, made from a good title `base` where the flaw needs one."""
    if flaw == "short":
        title = rng.choice(SHORT).format(w=p["noun"])
        return title if len(title) < MIN_CHARS else "Part 2"
    if flaw == "long":
        title = base + rng.choice(LONG_TAILS)
        while len(title) <= MAX_CHARS:
            title += " and more"
        return title
    if flaw == "shouting":
        w1, w2 = rng.sample(SHOUT, 2)
        for title in (
            f"The {w1} way to {p['clauses'][0]}!!!",
            f"{w1} {w2} tips!!! {base}",
            f"{w1} {w2} tips: {p['noun']}!!!",
        ):
            if MIN_CHARS <= len(title) <= MAX_CHARS:
                return title
        return f"The {w1} {w2} video you will see!!!"
    if flaw == "filler":
        title = base + rng.choice(FILLERS)
        if len(title) > MAX_CHARS:
            title = f"You won't believe this: {p['obj']}"
        if not MIN_CHARS <= len(title) <= MAX_CHARS:
            title = "You won't believe what happened next (must watch)"
        return title
    return rng.choice(OFFTOPIC)


def titles_for(rng: random.Random, p: dict, fits: list[str]) -> list[tuple[str, str]]:
    """Five titles for one idea from its good titles `fits`: two or three with one flaw each,
    the others good."""
    rng.shuffle(fits)
    flaws = ["short", "long", "shouting", "filler", "offtopic"]
    rng.shuffle(flaws)
    out = []
    for flaw in flaws[: rng.choice((2, 2, 3))]:
        out.append((flawed_title(rng, flaw, fits.pop(), p), flaw))
    while len(out) < TITLES_PER_IDEA and fits:
        out.append((fits.pop(), ""))
    return out


def corpus_rows(seed: int = SEED) -> list[dict]:
    """Every (idea, title, flaw) row, `IDEAS` different ideas with their titles."""
    rng = random.Random(seed)
    words = Words(rng)
    rows, seen = [], set()
    while len(seen) < IDEAS:
        p = make_idea(words)
        fits = good_titles(p)
        # An idea needs enough good titles for its flaws and its clean ones.
        if p["idea"] in seen or len(fits) < TITLES_PER_IDEA:
            continue
        seen.add(p["idea"])
        rows += [{"idea": p["idea"], "title": t, "flaw": f} for t, f in titles_for(rng, p, fits)]
    return rows


def render(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["idea", "title", "flaw"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(OUT), help="where to write (default data/title_corpus.csv)")
    p.add_argument("--check", action="store_true", help="only compare with the file at --out")
    args = p.parse_args(argv)
    text = render(corpus_rows())
    out = Path(args.out)
    if args.check:
        same = out.is_file() and out.read_text(encoding="utf-8") == text
        print(f"{out}: {'up to date' if same else 'differs from what the script writes'}")
        return 0 if same else 1
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
