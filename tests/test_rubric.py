from dpo_titles.rubric import TIE_MARGIN, compare, content_words, score_title

IDEA = "Bake crusty sourdough bread at home with a simple starter"


def test_good_title_beats_each_flaw():
    good = "Crusty Sourdough Bread at Home With a Simple Starter"
    flawed = {
        "short": "Sourdough",
        "long": "Crusty sourdough bread at home with a simple starter, explained slowly, "
        "step by step, with every mistake I made",
        "shouting": "CRUSTY SOURDOUGH BREAD at Home With a Simple Starter",
        "filler": "You Won't Believe This Sourdough Bread Starter Trick",
        "offtopic": "My Favourite Budget Travel Hacks for Tokyo and Kyoto",
    }
    g = score_title(good, IDEA)
    for flaw, title in flawed.items():
        v = compare(IDEA, good, title)
        assert v.winner == "A", (flaw, g, score_title(title, IDEA))


def test_parts_are_documented_values():
    s = score_title("BREAD!!! You won't believe this", IDEA)
    assert s.parts["length"] == 3.0  # 31 characters
    assert s.parts["shouting"] == -1.5
    assert s.parts["filler"] == -2.0  # "you won't believe" counted once, not with its pieces
    assert s.parts["punctuation"] == -1.0
    assert score_title("", IDEA).total == 0.0


def test_leftovers_and_repetition_penalised():
    assert (
        score_title('Title: "Sourdough bread at home for beginners"', IDEA).parts["leftovers"] == -2
    )
    assert (
        score_title("Bread bread bread: sourdough at home for all", IDEA).parts["repetition"] == -1
    )


def test_compare_is_symmetric_and_ties_are_ties():
    a = "Crusty Sourdough Bread at Home With a Simple Starter"
    b = "Simple Starter Sourdough: Crusty Bread at Home"
    v1, v2 = compare(IDEA, a, b), compare(IDEA, b, a)
    assert {v1.winner, v2.winner} == {"tie"} or {v1.winner, v2.winner} == {"A", "B"}
    assert abs(score_title(a, IDEA).total - score_title(b, IDEA).total) < TIE_MARGIN
    assert v1.winner == "tie"


def test_content_words_drop_stopwords_and_stem():
    assert content_words("How to bake breads at home") == {"bake", "bread", "home"}


def test_off_topic_loses_to_an_on_topic_title_with_one_habit():
    off = "The weirdest museum exhibits around the world"  # clean, 45 characters, another video
    assert score_title(off, IDEA).parts["off_topic"] == -3.0
    assert score_title("Sourdough at home", IDEA).parts["off_topic"] == 0.0
    for habit in (
        "The ULTIMATE way to bake sourdough!!!",  # shouting
        "Sourdough tips",  # too short
        "Sourdough bread at home (you won't believe this)",  # filler
    ):
        assert compare(IDEA, habit, off).winner == "A", (habit, score_title(habit, IDEA))
