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


def test_rankings_must_be_permutations():
    assert parse_ranking('{"ranking": [2, 1, 3], "rationale": "x"}', 3) == ([1, 0, 2], "x")
    for bad in ('{"ranking": [1, 2]}', '{"ranking": [1, 1, 2]}', '{"ranking": [1, 2, 9]}', "no"):
        with pytest.raises(ParseError):
            parse_ranking(bad, 3)
