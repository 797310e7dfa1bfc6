"""Write data/title_corpus.csv, the tiny offline model's training corpus, deterministically.

Run from the repository root: ``.venv/bin/python data/make_corpus.py`` (``--check`` only says
whether the committed file is what this script writes).

The tiny model has to write titles for ideas it has never seen, so the corpus teaches it to copy,
not to remember: every good title is a stretch of its idea's own words, copied as they stand, in
a frame ("How to ...", "...: a beginner's guide"). The ideas come in the shapes real ones have:
how-to sentences ("[<lead>] <verb> <thing> [<where>] [<extra>].", the lead being how real ideas
start, "Explain how to", "Beginner tips for", which a title skips) and the other shapes of a
channel's ideas (reviews, a day in the life, lists, questions, challenges, histories), whose
titles copy the idea's opening words up to where its details start. The words in the slots are
English nouns, verbs and adjectives drawn by how much English uses them (data/words/frequent.tsv,
from wordfreq's 20,000 commonest words), so the words real ideas are written in occur in many
ideas and are whole pieces of the tokenizer; a tenth come from about six thousand rarer nouns
(data/words/nouns.txt), which the tokenizer keeps in parts, so that the model learns to copy a
word it does not know piece by piece, as it must with a name in a real idea. Ideas are typed as
people type them: mostly as sentences, some in Title Case or lower case, some without a full
stop. Four of each idea's five titles carry one flaw the rubric judge penalises (too short, too
long, shouting, clickbait filler, off topic), so preference tuning has something to fix.

data/ideas.csv and data/eval_ideas.csv are real ideas; none of them is in the corpus.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import string
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "data" / "title_corpus.csv"
WORDS = ROOT / "data" / "words"
SEED = 20261204
IDEAS = 5000
# The share of ideas in a how-to shape; the others take one of OTHER_SHAPES.
HOW_TO_SHARE = 0.55
# A word is drawn from the commonest `COMMON_RANKS` of its kind this often (dealt from a shuffled
# deck, so that each comes up), else from all of them.
COMMON_SHARE = 0.7
COMMON_RANKS = 1500
# How often a noun is a rare one of data/words/nouns.txt (in parts to the tokenizer).
RARE_SHARE = 0.1
TITLES_PER_IDEA = 5
# Of them, this many carry a flaw: the base model's habits, at a rate where DPO has something to
# fix (with 3 of 5 the win over six files of unseen ideas was 0.60-0.74, bench/README.md).
FLAWED_PER_IDEA = 4
MIN_CHARS, MAX_CHARS = 30, 75
# How people type an idea into a file: the share written in Title Case and all in lower case (the
# rest as a sentence), and the share without its final full stop or question mark. Titles copy
# the idea as it is written, so the model learns to copy a capitalised word and to stop where an
# idea ends without a full stop (with none of these, tuned titles of such ideas ran on into broken
# words: 89% real words on 20 ideas without a full stop, 70% on Title Case ones; bench/README.md).
TITLE_CASE_SHARE = 0.15
LOWER_CASE_SHARE = 0.1
UNPUNCTUATED_SHARE = 0.3
# Title Case as style guides write it keeps these lower case inside a title; half the Title Case
# ideas capitalise every word, as many people do.
SMALL_WORDS = frozenset("a an and as at but by for in of on or the to vs with".split())

# The verbs of how-to ideas as people write them; data/words/frequent.tsv adds the rest.
HOW_TO_VERBS = (
    (
        "bake build buy care for carve catch change choose clean coach compare cook decorate "
        "design draw dry edit explore feed film find fix fold grow hang install keep knit learn "
        "make measure mend mix organize pack paint photograph pick plan plant play practice "
        "prepare protect raise record repair replace restore run save sell set up sew sharpen "
        "shoot sketch start store teach test track train upgrade use wash win write explain "
        "understand get identify overcome avoid visit survive pay take fly drive ride swim "
        "climb hike travel study read speak sing dance brew grill roast fry boil iron polish "
        "sand cut glue wire code debug deploy host stream budget invest borrow rent move"
    )
    .replace("care for", "care_for")
    .replace("set up", "set_up")
    .split()
)
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
    "in thirty days",
    "with no experience",
    "for under fifty dollars",
    "in three easy steps",
    "through the winter",
    "every single day",
    "in just fifteen minutes",
    "for more than a year",
    "with only one hand",
    "in twenty minutes or less",
    "even if you have no time",
    "for under {price}",
    "in {year}",
    "in 20 minutes",
    "for less than {price}",
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
    "Step-by-step guide to",
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
    "without {ing} {np}",
    "instead of {ing} {np}",
    "so that {pl} stop {ing}",
    "with only {np}",
    "with just {pl} and {pl}",
    "and get more {pl} out of it",
    "before {ing} {np} again",
)
# Frames for a how-to idea's clause, copied as the idea has it ("Meditate for ten minutes" stays
# capitalised): a title never starts with a copied word, nor changes one, since a word in parts
# is other pieces at the start of a title or in another case, and the model could not copy it.
VERB_FRAMES = (
    "How to {c}",
    "I tried to {c}",
    "The easiest way to {c}",
    "Can you really {c}?",
    "How I learned to {c}",
    "5 mistakes people make when they {c}",
    "Why you should {c}",
    "3 ways to {c}",
    "Is it worth it to {c}?",
    "What happens when you {c}",
    "The right way to {c}",
    "How to {c}: a beginner's guide",
    "How to {c} step by step",
)
# The same for the clause of an idea that says "<lead> <verb>ing ..." ("Beginner tips for").
ING_FRAMES = (
    "A beginner's guide to {c}",
    "Everything you need to know about {c}",
    "Stop making these mistakes when {c}",
    "Tips for {c}",
    "The truth about {c}",
    "What I learned from {c}",
    "The basics of {c}",
    "Tips and tricks for {c}",
    "Mistakes to avoid when {c}",
)
# The other shapes of ideas: text with the slots of Words.fill, and in [ ] the stretch that
# titles copy (the idea's opening words, up to where its details start).
OTHER_SHAPES = (
    "[My honest review of {np}] after {dur}.",
    "[Review of the {Name} {noun}] after {dur} of daily use.",
    "[Reviewing the cheapest {noun} on {Name}]. Is it worth it?",
    "[Testing {adj} {pl} to see which ones] actually work.",
    "[{Name} vs {Name2}: which {noun} is better] for {ing}?",
    "[A day in the life of a {person}] in {Town}.",
    "[Day in the life of a {adj} {person}] in {Town}.",
    "[I tried {ing} {bare}] every day for {dur}.",
    "[I tried {ing} {bare} for {dur}]. Here's what happened.",
    "[Our {adj} trip to {Town}] in a rented {noun}.",
    "[A {adj} week alone in {Town}]: {pl}, {pl} and {pl}.",
    "[The story of how {np} {past} {np2}].",
    "[{Num} {adj} {pl} that {verb} {np}].",
    "[{Num} mistakes {adj} {people} make] and how to avoid them.",
    "[{Num} mistakes I made in my first year of {ing}], and what they cost me.",
    "[{Num} {pl} every {person} should know].",
    "[{Num} {adj} {pl} in {Town}] you need to visit.",
    "[Ranking every {noun} {noun2}] from worst to best.",
    "[Why do {pl} {verb} {bare}]?",
    "[Why is {np} so {adj}]?",
    "[Why is {np} {adj} but {pl} {verb}]?",
    "[What happens when you {verb} {np}] every day?",
    "[What actually happens to your {noun} when you stop {ing} {bare}]?",
    "[How {pl} {verb} and why some of them {verb2}].",
    "[Is {np} worth it] in {year}?",
    "[Is {np} still worth {ing} in {year}]? An honest {noun} review.",
    "[The weird history of {np}].",
    "[The history of the {noun}] in under ten minutes.",
    "[Reacting to my old {pl}], {num} years later.",
    "[Living in a {adj} {noun} for {dur}]: the good and the bad.",
    "[{Ing} {bare} from scratch]: my first attempt.",
    "[Things every new {person} forgets to {verb}].",
    "[The real cost of {ing} {np}] for one year.",
    "[{Noun} challenge: can I {verb} {np} in {dur}]?",
    "[Explaining {np} to a {person}].",
    "[What I learned from {ing} {bare}] for {dur}.",
    "[Why you feel {adj} after {ing} {np}].",
    "[{Num} {adj} {pl} for people who] hate {pl2}.",
    "[The best {adj} {pl} for {ing}] and {ing2}.",
    "[Building {np} by ourselves]: the first month.",
)
# A stretch is cut before these words where it is too long for a title.
CUT_BEFORE = frozenset(
    "that for with in on from after to and by when at every which about while".split()
)
# Frames for the stretch an idea of another shape gives; a title copies it alone or in one (its
# first word is a common one, "Why", "My", "Ten", or comes after a frame's colon).
OTHER_GOOD = (
    "{S}",
    "Explained: {S}",
    "Watch this: {S}",
    "Honest take: {S}",
    "New video: {S}",
    "{S}: my honest take",
    "{S} (explained)",
    "{S}: the full story",
    "{S}: what I learned",
    "{S}: the truth",
    "{S}, honestly",
    "{S}: here's what happened",
    "{S}: is it worth it?",
)
PEOPLE = (
    "nurse teacher chef farmer pilot student baker plumber designer programmer firefighter "
    "gardener mechanic barista doctor lawyer photographer musician carpenter dentist painter "
    "driver librarian scientist engineer writer coach runner parent beekeeper"
).split()
DURATIONS = (
    "a week",
    "thirty days",
    "30 days",
    "six months",
    "a year",
    "one weekend",
    "two weeks",
    "three months",
    "ten days",
    "a month",
)
NUMBERS = ("Three", "Five", "Seven", "Ten", "Eight", "Six", "Four", "Twelve", "5", "7", "10")
YEARS = ("2024", "2025", "2026")
UNITS = ("minute", "day", "week", "hour", "year", "inch", "foot", "mile", "dollar", "step", "piece")
PRICES = ("$20", "$50", "$100", "$300", "$1,000", "fifty dollars", "$15")
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


def _ing(verb: str) -> str:
    if verb.endswith("ie"):
        return verb[:-2] + "ying"
    if verb.endswith("e") and not verb.endswith(("ee", "ye", "oe")):
        return verb[:-1] + "ing"
    return verb + "ing"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


class Words:
    """The word lists, and the phrases and slots built from them."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.kinds: dict[str, list[tuple[str, list[str]]]] = {"noun": [], "verb": [], "adj": []}
        with open(WORDS / "frequent.tsv", encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                self.kinds[row["pos"]].append((row["word"], row["forms"].split()))
        self.rare_nouns = _words("nouns.txt")
        self.decks: dict[str, list[tuple[str, list[str]]]] = {}
        # A how-to verb's -ing form: the frequent list's, else the spelling rule's.
        forms = {word: f for word, f in self.kinds["verb"]}
        self.how_to = []
        for verb in HOW_TO_VERBS:
            head, _, particle = verb.partition("_")
            ing = forms[head][0] if head in forms else _ing(head)
            self.how_to.append((verb.replace("_", " "), f"{ing} {particle}".strip()))

    def _draw(self, kind: str) -> tuple[str, list[str]]:
        """A word of `kind`: the next of a shuffled deck of the commonest (so that each of them
        comes up, and as often as the others), else any."""
        words = self.kinds[kind]
        if self.rng.random() >= COMMON_SHARE:
            return self.rng.choice(words)
        deck = self.decks.setdefault(kind, [])
        if not deck:
            deck += words[:COMMON_RANKS]
            self.rng.shuffle(deck)
        return deck.pop()

    def noun(self) -> tuple[str, str]:
        """A noun and its plural: a frequent one, or now and then a rare one."""
        if self.rng.random() < RARE_SHARE:
            noun = self.rng.choice(self.rare_nouns)
            return noun, _plural(noun)
        noun, forms = self._draw("noun")
        return noun, forms[0]

    def adjective(self) -> str:
        return self._draw("adj")[0]

    def verb(self) -> tuple[str, str, str]:
        """A verb's base, -ing and past forms (a phrasal how-to verb keeps its particle)."""
        if self.rng.random() < 0.5:
            base, ing = self.rng.choice(self.how_to)
            return base, ing, base
        base, (ing, past) = self._draw("verb")
        return base, ing, past

    def name(self) -> str:
        """A made-up name, as a brand or a place ("Harbor", "Lantern 5")."""
        noun = self.rng.choice(self.rare_nouns if self.rng.random() < 0.5 else ["x"])
        if noun == "x":
            noun = self._draw("noun")[0]
        name = _cap(noun)
        if self.rng.random() < 0.3:
            name += f" {self.rng.randrange(2, 20)}"
        return name

    def noun_phrase(self) -> tuple[str, str]:
        """A noun phrase and its last noun ("an old copper lantern", "lantern")."""
        rng = self.rng
        noun, plural = self.noun()
        words = [noun]
        if rng.random() < 0.5:
            words.insert(0, self.adjective())
        if rng.random() < 0.25:
            words.insert(-1, self.noun()[0])
        if rng.random() < 0.1:
            # A compound with a hyphen or a number, as real ideas have them ("night-shift",
            # "ten-minute", "3D", "WF-1000").
            words.insert(-1, self.compound())
        if rng.random() < 0.25:
            # A bare plural, as real ideas have them ("bake soft cookies").
            words[-1] = plural
            return " ".join(words), noun
        det = rng.choice(DETERMINERS)
        if det == "a" and words[0][0] in "aeiou":
            det = "an"
        return f"{det} {' '.join(words)}", noun

    def compound(self) -> str:
        """A modifier with a hyphen or digits ("low-cost", "ten-minute", "X200", "3D")."""
        rng = self.rng
        kind = rng.randrange(4)
        if kind == 0:
            return f"{self.adjective()}-{self.noun()[0]}"
        if kind == 1:
            return f"{rng.choice(NUMBERS[:8]).lower()}-{rng.choice(UNITS)}"
        if kind == 2:
            return f"{rng.randrange(2, 500)}-{rng.choice(UNITS)}"
        return _cap(self.noun()[0])[: rng.randrange(1, 4)].upper() + str(rng.randrange(1, 3000))

    def bare(self) -> str:
        """A noun phrase without a determiner, plural ("cheap tomatoes")."""
        plural = self.noun()[1]
        return f"{self.adjective()} {plural}" if self.rng.random() < 0.4 else plural

    def fill(self, template: str) -> tuple[str, str]:
        """A template of OTHER_SHAPES with its slots filled; returns the text and its main noun
        (a slot is drawn only if the template has it)."""
        rng = self.rng
        # A slot whose name ends in "2" is another draw of the same kind ("np2", "Name2").
        makers = {
            "np": lambda: self.noun_phrase()[0],
            "noun": lambda: self.noun()[0],
            "Noun": lambda: _cap(self.noun()[0]),
            "pl": lambda: self.noun()[1],
            "bare": self.bare,
            "adj": self.adjective,
            "verb": lambda: self.verb()[0],
            "ing": lambda: self.verb()[1],
            "Ing": lambda: _cap(self.verb()[1]),
            "past": lambda: self.verb()[2],
            "person": lambda: rng.choice(PEOPLE),
            "people": lambda: _plural(rng.choice(PEOPLE)),
            "Name": self.name,
            "Town": self.name,
            "dur": lambda: rng.choice(DURATIONS),
            "num": lambda: rng.choice(NUMBERS[:6]).lower(),
            "Num": lambda: rng.choice(NUMBERS),
            "year": lambda: rng.choice(YEARS),
        }
        names = [field for _, field, _, _ in string.Formatter().parse(template) if field]
        slots = {name: makers[name.removesuffix("2")]() for name in dict.fromkeys(names)}
        nouns = [slots[n].split()[-1] for n in ("np", "noun", "bare", "pl", "Noun") if n in slots]
        return template.format(**slots), (nouns or [slots.get("person", "video")])[0].lower()


def how_to_idea(words: Words) -> dict:
    """An idea in a how-to shape: its text, and its good titles, which copy its clause (with or
    without its place) as the idea has it."""
    rng = words.rng
    base, ing, _ = words.verb()
    obj, noun = words.noun_phrase()
    place = rng.choice(PLACES) if rng.random() < 0.45 else None
    if place:
        place = place.format(price=rng.choice(PRICES), year=rng.choice(YEARS))
    if place is None and rng.random() < 0.3:
        np2, _ = words.noun_phrase()
        place = f"{rng.choice(('in', 'on', 'for', 'near', 'under'))} {np2}"
    extra = None
    if rng.random() < 0.8:
        extra = rng.choice(EXTRAS)
        while "{" in extra:
            extra = extra.replace("{np}", words.noun_phrase()[0], 1)
            extra = extra.replace("{pl}", words.noun()[1], 1)
            extra = extra.replace("{ing}", words.verb()[1], 1)
    tail = f" {place}" if place else ""
    form = rng.randrange(16)
    if form < 7:
        verb, frames, lead = _cap(base), VERB_FRAMES, ""
    elif form < 10:
        verb, frames, lead = ing, ING_FRAMES, rng.choice(ING_LEADS) + " "
    else:
        verb, frames, lead = base, VERB_FRAMES, rng.choice(CLAUSE_LEADS) + " "
    clause = f"{verb} {obj}{tail}"
    if extra:
        clause += extra if extra.startswith(",") else f" {extra}"
    text = lead + clause
    # The clause whole, or cut where a detail starts ("Build a birdhouse from scrap wood" of
    # "Build a birdhouse from scrap wood with basic tools"), but never inside its object.
    clauses = [c for c in [*shorter(clause), clause] if len(c) >= len(f"{verb} {obj}")]
    return {
        "idea": text + ".",
        "noun": noun,
        "good": [(frame, c.rstrip(",")) for frame in frames for c in clauses],
        "shout": (
            f"The {{w}} {'way' if frames is VERB_FRAMES else 'guide'} to {{S}}!!!",
            f"{verb} {obj}",
        ),
        "whole": text,
    }


def shorter(stretch: str) -> list[str]:
    """The stretch cut before each word where its details start ("Seven stretches that fixed
    my back" -> "Seven stretches"), where at least three words are left."""
    words = stretch.split(" ")
    return [" ".join(words[:i]) for i in range(3, len(words)) if words[i] in CUT_BEFORE]


def other_idea(words: Words) -> dict:
    """An idea of another shape: its text, and titles that copy its opening stretch (or as much
    of it as fits)."""
    template = words.rng.choice(OTHER_SHAPES)
    filled, noun = words.fill(template)
    stretch = filled[filled.index("[") + 1 : filled.index("]")]
    text = filled.replace("[", "").replace("]", "")
    if not text.endswith((".", "?", "!")):
        text += "."
    return {
        "idea": text,
        "noun": noun,
        "good": [(t, s) for s in [stretch, *shorter(stretch)] for t in OTHER_GOOD],
        "shout": ("{w}: {S}!!!", stretch),
        "whole": text.rstrip(".?!"),
    }


def recaser(rng: random.Random):
    """How one idea is typed: a function that recases a stretch of it (as a sentence, in Title
    Case or all in lower case), and whether its final full stop or question mark is left off."""
    draw = rng.random()
    if draw < TITLE_CASE_SHARE:
        small = SMALL_WORDS if rng.random() < 0.5 else frozenset()

        def case(text: str) -> str:
            words = text.split(" ")
            return " ".join(w if i and w in small else _cap(w) for i, w in enumerate(words))
    elif draw < TITLE_CASE_SHARE + LOWER_CASE_SHARE:
        case = str.lower
    else:

        def case(text: str) -> str:
            return text

    return case, rng.random() < UNPUNCTUATED_SHARE


def typed(p: dict, rng: random.Random) -> dict:
    """The idea `p` as one person types it (see recaser), with its titles, which copy its words as
    they are written and the frames' own as they are."""
    case, unpunctuated = recaser(rng)
    idea = case(p["idea"])
    shout, stretch = p["shout"]
    return {
        "idea": idea.rstrip(".?!") if unpunctuated else idea,
        "noun": p["noun"],
        "good": [frame.format(c=case(s), S=case(s)) for frame, s in p["good"]],
        "shout": shout.format(w="{w}", S=case(stretch)),
        "whole": case(p["whole"]),
    }


def flawed_title(rng: random.Random, flaw: str, base: str, p: dict) -> str:
    """A title with one flaw, made from a good title `base` where the flaw needs one."""
    if flaw == "short":
        title = rng.choice(SHORT).format(w=p["noun"])
        return title if len(title) < MIN_CHARS else "Part 2"
    if flaw == "long":
        # The whole idea copied, or a good title with a tail.
        title = p["whole"] + rng.choice(("", ": the full story", " (explained)"))
        if len(title) <= MAX_CHARS or rng.random() < 0.5:
            title = base + rng.choice(LONG_TAILS)
        while len(title) <= MAX_CHARS:
            title += " and more"
        return title
    if flaw == "shouting":
        w1, w2 = rng.sample(SHOUT, 2)
        for title in (
            p["shout"].format(w=w1),
            f"{w1} {w2} tips!!! {base}",
            f"{w1} {w2} tips: {p['noun']}!!!",
        ):
            if MIN_CHARS <= len(title) <= MAX_CHARS:
                return title
        return f"The {w1} {w2} video you will see!!!"
    if flaw == "filler":
        title = base + rng.choice(FILLERS)
        if len(title) > MAX_CHARS:
            title = f"You won't believe this: {p['noun']} edition"
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
    for flaw in flaws[:FLAWED_PER_IDEA]:
        out.append((flawed_title(rng, flaw, fits.pop(), p), flaw))
    while len(out) < TITLES_PER_IDEA and fits:
        out.append((fits.pop(), ""))
    return out


def corpus_rows(seed: int = SEED) -> list[dict]:
    """Every (idea, title, flaw) row, `IDEAS` different ideas with their titles."""
    rng = random.Random(seed)
    # Its own stream, so that how ideas are typed leaves which ideas are drawn as they were.
    typing = random.Random(f"{seed}-typing")
    words = Words(rng)
    rows, seen = [], set()
    while len(seen) < IDEAS:
        p = how_to_idea(words) if rng.random() < HOW_TO_SHARE else other_idea(words)
        p = typed(p, typing)
        fits = [t for t in dict.fromkeys(p["good"]) if MIN_CHARS <= len(t) <= MAX_CHARS]
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
