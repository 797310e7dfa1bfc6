"""Write data/title_corpus.csv, the tiny offline model's training corpus, deterministically.

Run from the repository root: ``.venv/bin/python data/make_corpus.py`` (``--check`` only says
whether the committed file is what this script writes). Each idea is a sentence built from one
topic's verbs, objects and items; each of its titles comes from a template that reuses the idea's
own words, so that a model trained on it learns to copy from the prompt instead of reciting
memorised titles. About half of the titles carry one flaw the rubric judge penalises (too short,
too long, shouting, clickbait filler, off topic), so preference tuning has something to fix.

The topics are those of data/ideas.csv and a few neighbours; data/eval_ideas.csv deliberately
holds ideas of other topics, to show how the model does on words it never saw.
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
SEED = 20261202
IDEAS_PER_TOPIC = 110
TITLES_PER_IDEA = 5
MIN_CHARS, MAX_CHARS = 30, 75

# topic: (verbs as "base/ing", objects, items, topic modifiers). Objects read after a verb.
TOPICS: dict[str, tuple[str, str, str, str]] = {
    "cooking": (
        "cook/cooking make/making prepare/preparing master/mastering",
        "crispy roast potatoes; a creamy mushroom risotto; restaurant-style fried rice; a juicy "
        "pan-seared steak; fluffy buttermilk pancakes; a simple tomato sauce; homemade pizza "
        "dough; a spicy chicken curry; fresh egg pasta; a hearty lentil soup; crispy baked tofu; "
        "a classic beef stew; garlic butter shrimp; a quick vegetable stir fry; perfect scrambled "
        "eggs; homemade dumplings; a lemon herb salmon; slow cooker chili; a weeknight ramen bowl; "
        "street-style tacos",
        "garlic; butter; olive oil; onions; rice; flour; eggs; lemon; fresh herbs; a cast iron "
        "pan; a sharp knife; leftovers; spices; soy sauce; a slow cooker; cheap ingredients; a "
        "wok; frozen vegetables; chickpeas; a blender",
        "on a weeknight; for a family of four; with five ingredients; in thirty minutes",
    ),
    "baking": (
        "bake/baking make/making decorate/decorating",
        "a no-knead sourdough loaf; chewy chocolate chip cookies; a moist banana bread; flaky "
        "butter croissants; a simple sponge cake; cinnamon rolls; soft dinner rolls; a lemon "
        "tart; fudgy brownies; a birthday layer cake; homemade bagels; apple pie; blueberry "
        "muffins; a focaccia with herbs",
        "flour; yeast; butter; sugar; a stand mixer; a dutch oven; parchment paper; a kitchen "
        "scale; cold butter; a sourdough starter; baking soda; vanilla; whipped cream",
        "without a mixer; for the first time; with just four ingredients",
    ),
    "travel": (
        "plan/planning visit/visiting explore/exploring travel/traveling",
        "a two-week trip through Japan; three days in Lisbon; a road trip across Iceland; a "
        "weekend in Paris; a budget trip to Mexico City; a month in Southeast Asia; a hiking trip "
        "in the Alps; a first solo trip abroad; a city break in Rome; a train journey across "
        "Europe; a week in New York; a beach holiday in Greece; a backpacking route through Peru",
        "hostels; rail passes; cheap flights; street food; a carry-on backpack; local buses; "
        "travel insurance; a daily budget; public transport; viewpoints; markets; jet lag; "
        "travel apps; night trains; museums",
        "on a budget; with only a backpack; without a car; for under a thousand dollars",
    ),
    "personal finance": (
        "build/building start/starting plan/planning track/tracking",
        "a monthly budget; an emergency fund; a simple retirement plan; a debt payoff plan; a "
        "savings habit; a grocery budget; a side income; a first investment portfolio; a "
        "spending tracker; a sinking fund for holidays; a plan to pay off credit cards; a net "
        "worth spreadsheet",
        "index funds; a spreadsheet; credit cards; interest rates; the snowball method; the "
        "avalanche method; a high-yield savings account; automatic transfers; receipts; "
        "subscriptions; a credit score; compound interest; taxes",
        "on a low income; in your twenties; with real numbers; step by step",
    ),
    "fitness": (
        "build/building start/starting follow/following design/designing",
        "a full-body workout at home; a beginner strength routine; a twenty-minute cardio "
        "session; a stretching routine for desk workers; a push-up progression; a core workout; "
        "a weekly training plan; a kettlebell routine; a mobility routine for tight hips; a "
        "resistance band workout; a muscle-building plan",
        "dumbbells; resistance bands; squats; lunges; planks; protein; rest days; a foam roller; "
        "a kettlebell; push-ups; warm-ups; good form; progressive overload",
        "with no equipment; in twenty minutes a day; for complete beginners",
    ),
    "running": (
        "train/training start/starting improve/improving plan/planning",
        "for a first 5K; for a half marathon; a couch to 5K plan; a faster mile; an easy running "
        "routine; for a trail race; a marathon training block; a safe return after injury",
        "running shoes; intervals; easy runs; a heart rate monitor; hills; long runs; pacing; "
        "stretching; recovery days; a running watch; hydration",
        "in eight weeks; without getting injured; as a beginner",
    ),
    "programming": (
        "build/building write/writing debug/debugging learn/learning",
        "a to-do list app in Python; a REST API with FastAPI; a command-line tool; a simple web "
        "scraper; a Discord bot; a weather app with JavaScript; a personal website; a unit test "
        "suite; a slow SQL query; a small game with Pygame; a chat app with websockets; a "
        "password generator; a budget tracker in Python",
        "Python; JavaScript; Git; a JSON file; a database; unit tests; the terminal; VS Code; "
        "an API key; error messages; functions; classes; a debugger; SQL; Docker",
        "for beginners; in one afternoon; from scratch; with clear examples",
    ),
    "gardening": (
        "grow/growing plant/planting start/starting care/caring",
        "tomatoes in containers; a raised garden bed; a compost bin; herbs on a windowsill; a "
        "pollinator flower bed; strawberries on a balcony; potatoes in grow bags; a vegetable "
        "patch; houseplants in a dark apartment; a small orchard; peppers from seed; a lawn "
        "without chemicals",
        "seedlings; compost; mulch; potting soil; a watering can; fertilizer; aphids; "
        "pollinators; seeds; a trellis; grow lights; pruning shears; rainwater",
        "in a small backyard; on a balcony; for the first harvest; in a cold climate",
    ),
    "home repair": (
        "fix/fixing repair/repairing install/installing replace/replacing",
        "a leaky kitchen faucet; a hole in drywall; floating shelves; a running toilet; a "
        "squeaky door; a broken light switch; a clogged sink drain; a ceiling fan; cracked "
        "bathroom tiles; a sticking window; a dripping shower head; a loose stair railing",
        "a drill; a stud finder; wall anchors; plumber's tape; a putty knife; spackle; a "
        "wrench; screws; caulk; sandpaper; a level; a voltage tester",
        "without calling a plumber; in one afternoon; with basic tools",
    ),
    "photography": (
        "take/taking shoot/shooting edit/editing capture/capturing",
        "sharp photos in low light; better portraits at home; landscape photos; the Milky Way; "
        "street photos; food photos for social media; sunset photos; product photos; black "
        "and white photos; family photos with a phone",
        "a tripod; natural light; a reflector; Lightroom; aperture; shutter speed; ISO; a prime "
        "lens; night mode; a phone camera; composition; filters; a cheap flash",
        "with a phone; with an entry-level camera; without expensive gear",
    ),
    "science": (
        "explain/explaining understand/understanding explore/exploring",
        "why the sky is blue; how vaccines work; how black holes form; how batteries store "
        "energy; why we dream; how earthquakes happen; how volcanoes erupt; why the moon has "
        "phases; how the human eye sees color; how lightning forms; how magnets work; why ice "
        "floats",
        "light; gravity; atoms; electricity; experiments; animations; the immune system; sound "
        "waves; simple analogies; diagrams; energy; the brain; chemistry",
        "with simple experiments; for curious kids; in plain language",
    ),
    "productivity": (
        "plan/planning build/building set/setting try/trying",
        "a weekly planning routine; a note-taking system; a morning routine; the Pomodoro "
        "technique; a focused study schedule; a calm inbox routine; a simple habit tracker; a "
        "distraction-free workspace; a digital declutter; a daily to-do list",
        "a calendar; a notebook; time blocks; phone limits; deep work; a timer; email filters; "
        "checklists; breaks; goals; a journal; apps; sticky notes",
        "in thirty minutes a week; for a whole month; without burning out",
    ),
    "gaming": (
        "build/building play/playing improve/improving rank/ranking",
        "a budget gaming PC; the best indie games of the year; Minecraft survival; aim in "
        "shooters; a speedrun of a classic platformer; a retro console setup; strategy games "
        "for beginners; a cozy farming game; a first playthrough of Elden Ring",
        "graphics cards; a gaming mouse; sensitivity settings; shelter; iron; boss fights; "
        "controllers; frame rates; practice drills; hidden items; a monitor; mods",
        "on a budget; for the first time; in one week",
    ),
    "music practice": (
        "learn/learning practice/practicing play/playing improve/improving",
        "guitar chords; piano scales; sheet music for piano; a first song on the ukulele; "
        "rhythm with a metronome; singing scales; fingerpicking patterns; blues improvisation; "
        "drum grooves; a daily practice routine",
        "a metronome; chords; scales; a capo; finger exercises; ear training; key signatures; "
        "a strumming pattern; backing tracks; a tuner; songs",
        "in one week; in ten minutes a day; without a teacher",
    ),
    "drawing": (
        "draw/drawing sketch/sketching paint/painting learn/learning",
        "realistic portraits; a simple landscape in watercolor; cartoon characters; hands and "
        "faces; a daily sketchbook habit; perspective drawings of a city; digital art on a "
        "tablet; still life with pencils",
        "pencils; watercolor paints; a sketchbook; shading; proportions; brushes; a drawing "
        "tablet; reference photos; ink pens; color theory",
        "for beginners; in thirty days; with cheap supplies",
    ),
    "cleaning": (
        "clean/cleaning organize/organizing declutter/decluttering",
        "a messy kitchen; a small closet; a garage; a tiny apartment; a bathroom in ten minutes; "
        "a home office; a fridge; a kids' playroom; a pantry; a whole house before guests",
        "storage bins; baking soda; vinegar; labels; a donation box; a checklist; shelves; "
        "microfiber cloths; a timer; drawers",
        "in one weekend; on a budget; without buying anything",
    ),
}

GENERIC_MODS = (
    "at home; step by step; the easy way; like a pro; in one weekend; for complete beginners; "
    "on a tight budget; in under an hour"
)

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
# Lower-case idea words after a template word: a capitalised copy of a word the tokenizer spells
# letter by letter would be a word the model must spell without having seen it spelt.
# Off-topic titles come from this fixed set, not from other ideas: the model then meets the topic
# words of an idea only where it copies them from that idea's prompt.
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
SHORT = ("My {w} video", "Some {w} tips", "About {w}", "New {w} vlog", "Part 2", "Why {w}?")


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(";") if t.strip()]


def _np(obj: str) -> str:
    """The object without its leading article, for "a guide to ..." titles."""
    for article in ("a ", "an ", "the "):
        if obj.startswith(article):
            return obj[len(article) :]
    return obj


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def make_idea(rng: random.Random, topic: tuple) -> dict:
    verbs, objects, items, mods = topic
    base, ing = rng.choice(verbs.split()).split("/")
    obj = rng.choice(_split(objects))
    mod = rng.choice(_split(mods) + _split(GENERIC_MODS))
    picked = rng.sample(_split(items), 3)
    form = rng.randrange(7)
    if form == 0:
        idea = f"{_cap(base)} {obj} {mod}, covering {_and(picked)}."
    elif form == 1:
        idea = f"{_cap(base)} {obj} {mod} with {_and(picked[:2])}."
    elif form == 2:
        idea = f"A beginner's guide to {ing} {obj}, including {_and(picked[:2])}."
    elif form == 3:
        idea = f"Learn to {base} {obj} {mod}, using {_and(picked)}."
    elif form == 4:
        idea = f"Explain how to {base} {obj} and the common mistakes to avoid with {picked[0]}."
    elif form == 5:
        idea = f"I try to {base} {obj} {mod} and show what worked, from {_and(picked[:2])}."
    else:
        idea = f"Compare {_and(picked)} for {ing} {obj} {mod}."
    return {"idea": idea, "base": base, "ing": ing, "obj": obj, "mod": mod, "items": picked}


def good_titles(p: dict) -> list[str]:
    """Titles that reuse the idea's words, each a different shape; all within 30-75 characters
    are kept, the others dropped by the caller."""
    b, g, o, n, m, it = p["base"], p["ing"], p["obj"], _np(p["obj"]), p["mod"], p["items"]
    return [
        f"How to {b} {o} {m}",
        f"How to {b} {o}: {_and(it[:2])}",
        f"I tried to {b} {o} {m}",
        f"The easiest way to {b} {o}",
        f"5 mistakes to avoid when {g} {o}",
        f"A beginner's guide to {n}",
        f"Why {it[0]} changes how you {b} {o}",
        f"Can you really {b} {o} {m}?",
        f"{g.capitalize()} {o} with {it[0]} and {it[1]}",
        f"What nobody tells you about {n}",
        f"My simple method to {b} {o}",
        f"3 ways to {b} {o} {m}",
        f"Everything you need to know about {n}",
        f"How I learned to {b} {o} {m}",
        f"Stop making these {n} mistakes",
        f"The only {n} guide you need",
        f"Should you use {it[0]} or {it[1]} to {b} {o}?",
        f"Is it worth it to {b} {o} {m}?",
    ]


def titles_for(rng: random.Random, p: dict) -> list[tuple[str, str]]:
    fits = [t for t in good_titles(p) if MIN_CHARS <= len(t) <= MAX_CHARS]
    rng.shuffle(fits)
    out: list[tuple[str, str]] = []
    flaws = ["short", "long", "shouting", "filler", "offtopic"]
    rng.shuffle(flaws)
    n_flawed = rng.choice((2, 2, 3))
    for flaw in flaws[:n_flawed]:
        base = fits.pop()
        if flaw == "short":
            word = _np(p["obj"]).split()[-1]
            title = rng.choice(SHORT).format(w=word)
            if len(title) >= MIN_CHARS:
                title = "Part 2"
        elif flaw == "long":
            title = base + rng.choice(LONG_TAILS)
            while len(title) <= MAX_CHARS:
                title += " and more"
        elif flaw == "shouting":
            words = rng.sample(SHOUT, 2)
            title = f"The {words[0]} way to {p['base']} {p['obj']}!!!"
            if len(title) > MAX_CHARS or rng.random() < 0.5:
                title = f"{words[0]} {words[1]} tips!!! {base}"
            if not MIN_CHARS <= len(title) <= MAX_CHARS:
                title = f"{words[0]} {words[1]} tips: {_np(p['obj'])}!!!"
            if not MIN_CHARS <= len(title) <= MAX_CHARS:
                title = f"The {words[0]} {words[1]} video you will see!!!"
        elif flaw == "filler":
            title = base + rng.choice(FILLERS)
            if len(title) > MAX_CHARS:
                title = "You won't believe this: " + _np(p["obj"])
            if not MIN_CHARS <= len(title) <= MAX_CHARS:
                title = "You won't believe what happened next (must watch)"
        else:
            title = rng.choice(OFFTOPIC)
        out.append((title, flaw))
    while len(out) < TITLES_PER_IDEA and fits:
        out.append((fits.pop(), ""))
    return out


def corpus_rows(seed: int = SEED) -> list[dict]:
    """Every (idea, title, flaw) row, shuffled by idea so any prefix covers every topic."""
    rng = random.Random(seed)
    plans = []
    seen = set()
    for name in sorted(TOPICS):
        made = 0
        while made < IDEAS_PER_TOPIC:
            p = make_idea(rng, TOPICS[name])
            if p["idea"] in seen:
                continue
            seen.add(p["idea"])
            plans.append((name, p))
            made += 1
    rng.shuffle(plans)
    rows = []
    for _, p in plans:
        for title, flaw in titles_for(rng, p):
            rows.append({"idea": p["idea"], "title": title, "flaw": flaw})
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
