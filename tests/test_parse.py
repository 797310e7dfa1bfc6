import pytest

from dpo_titles.api_calls import ParseError
from dpo_titles.providers.parse import parse_ranking, parse_titles, parse_verdict


@pytest.mark.parametrize(
    "text",
    [
        "1. First Title Here\n2. Second Title Here",
        "Here are 2 titles:\n- First Title Here\n- Second Title Here",
        '```json\n{"titles": ["First Title Here", "Second Title Here"]}\n```',
        '["First Title Here", "Second Title Here"]',
        'Sure! Here they are:\n1) "First Title Here"\n2) "Second Title Here"\nEnjoy!',
    ],
)
def test_titles_from_every_shape(text):
    assert parse_titles(text)[-2:] == ["First Title Here", "Second Title Here"]


def test_empty_titles_are_parse_errors():
    for text in (None, "", "  \n"):
        with pytest.raises(ParseError):
            parse_titles(text)


def test_verdicts():
    assert parse_verdict('{"winner": "B", "rationale": "shorter"}') == ("B", "shorter")
    assert parse_verdict('```json\n{"winner": "tie"}\n```')[0] == "tie"
    assert parse_verdict("Title A")[0] == "A"
    with pytest.raises(ParseError, match="neither"):
        parse_verdict('{"winner": "neither"}')
    with pytest.raises(ParseError):
        parse_verdict("")


TITLES = ["Pasta in Ten Minutes", "Knife Skills for Beginners", "Fried Rice Without a Wok"]


def test_rankings_must_be_permutations():
    assert parse_ranking('{"ranking": [2, 1, 3], "rationale": "x"}', TITLES) == ([1, 0, 2], "x")
    bad_answers = (
        '{"ranking": [1, 2]}',
        '{"ranking": [1, 1, 2]}',
        '{"ranking": [1, 2, 9]}',
        '{"ranking": [0, 1, 3]}',  # neither 0-based nor 1-based
        '{"ranking": [1, "Pasta in Ten Minutes", 2]}',  # two conventions at once
        '{"ranking": ["Pasta in Ten Minutes", "Pasta in Ten Minutes", "Knife Skills for '
        'Beginners"]}',
        '{"ranking": ["Pasta", "Knife", "Rice"]}',  # not the titles
        "no",
    )
    for bad in bad_answers:
        with pytest.raises(ParseError):
            parse_ranking(bad, TITLES)


def test_unambiguous_rankings_in_other_conventions_are_read():
    # 0-based numbers: a permutation of 0..n-1 cannot also be one of 1..n.
    assert parse_ranking('{"ranking": [0, 2, 1]}', TITLES)[0] == [0, 2, 1]
    assert parse_ranking('{"ranking": ["2", "Title 3", "#1"]}', TITLES)[0] == [1, 2, 0]
    # The titles themselves, in any case and spacing, quoted or numbered.
    named = (
        '{"ranking": ["fried rice without a wok", "1. Pasta in Ten Minutes", '
        '"\\"Knife Skills  for Beginners\\""]}'
    )
    assert parse_ranking(named, TITLES)[0] == [2, 0, 1]


def test_a_verdict_may_name_the_winning_title():
    pair = ("Pasta in Ten Minutes", "Knife Skills for Beginners")
    assert parse_verdict('{"winner": "Knife Skills for Beginners"}', pair)[0] == "B"
    assert parse_verdict("pasta in ten minutes.", pair)[0] == "A"
    with pytest.raises(ParseError):
        parse_verdict('{"winner": "Something Else"}', pair)
