"""`dpo-titles annotate`: which pairs are asked, the answers file, and the server over real HTTP
on loopback (the page in a real browser is tests/test_annotate_browser.py)."""

from __future__ import annotations

import csv
import http.client
import itertools
import json
import math
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from dpo_titles.annotate import DEFAULT_SEED, annotate, open_session
from dpo_titles.annotate.answers import (
    HUMAN_EVAL_COLUMNS,
    HUMAN_PREFERENCE_COLUMNS,
    Answers,
)
from dpo_titles.annotate.pairs import (
    CANDIDATES,
    COMPARISONS,
    candidate_pair_id,
    from_candidates,
    from_comparisons,
)
from dpo_titles.annotate.server import MAX_BODY, TOKEN_HEADER
from dpo_titles.errors import UserError
from dpo_titles.files import read_csv, write_csv

NASTY = "</td><script>alert(1)</script><img src=x onerror=alert(2)>"
IDEAS = {
    "How I fixed my bike": ["Bike fixed!", "I fixed my bike in 10 minutes", "Bike repair", "Fix"],
    "Cooking pasta": ["Pasta 101", "The only pasta video you need", NASTY],
    "Learning Rust": ["Rust in a day", "Why I switched to Rust"],
    "Lonely idea": ["Only one title"],
}
ALL_PAIRS = sum(math.comb(len(set(t)), 2) for t in IDEAS.values())  # 6 + 3 + 1 + 0


def write_rows(path: Path, columns: list[str], rows: list[dict]) -> Path:
    """A CSV as a user (not dpo-titles) would write it: no ledger entry."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def candidates_csv(path: Path, ideas: dict[str, list[str]] = IDEAS) -> Path:
    """A candidates CSV of `ideas` (idea -> titles), one title repeated."""
    rows = [{"idea": i, "title": t, "provider": "hf"} for i, ts in ideas.items() for t in ts]
    # A repeated title is one title, not a pair with itself.
    rows.append({"idea": "Learning Rust", "title": "Rust in a day", "provider": "hf"})
    return write_rows(path, ["idea", "title", "provider"], rows)


def comparisons_csv(path: Path) -> Path:
    """A comparisons CSV as `evaluate` writes it: five rows, two of them with nothing to tell."""
    columns = ["idea", "sample", "base_title", "tuned_title", "verdict", "rationale"]
    rows = [
        {"idea": "Cooking pasta", "sample": "0", "base_title": "Pasta", "tuned_title": NASTY},
        {"idea": "Cooking pasta", "sample": "1", "base_title": "Same", "tuned_title": "Same"},
        {"idea": "Learning Rust", "sample": "0", "base_title": "Rust", "tuned_title": "Rust!"},
        {"idea": "Learning Rust", "sample": "1", "base_title": "", "tuned_title": "Rust?"},
        {"idea": "Bikes", "sample": "0", "base_title": "Bike", "tuned_title": "Bike fixed"},
    ]
    for row in rows:
        row.update(verdict="tuned", rationale="the judge's reason")
    return write_rows(path, columns, rows)


@pytest.fixture()
def cand(tmp_path) -> Path:
    """The candidates of IDEAS."""
    return candidates_csv(tmp_path / "cand.csv")


# --- Which pairs ---------------------------------------------------------------------------------


def test_every_pair_of_each_idea_is_asked_once(cand):
    pairs = from_candidates(cand, pairs=None, seed=DEFAULT_SEED)
    assert len(pairs) == ALL_PAIRS == 10
    assert len({p.id for p in pairs}) == ALL_PAIRS
    for p in pairs:
        assert p.left != p.right and {p.left, p.right} <= set(IDEAS[p.idea])
    assert {p.idea for p in pairs} == set(IDEAS) - {"Lonely idea"}
    expected = {
        candidate_pair_id(idea, a, b)
        for idea, titles in IDEAS.items()
        for a, b in itertools.combinations(titles, 2)
    }
    assert {p.id for p in pairs} == expected


def test_default_seed_is_the_generate_stages():
    from dpo_titles.settings import Generation

    assert DEFAULT_SEED == Generation().seed


def test_a_sample_is_spread_over_ideas_and_reproducible(cand):
    three = from_candidates(cand, pairs=3, seed=7)
    # Three ideas have pairs: a sample of three takes one of each before any second one.
    assert sorted(p.idea for p in three) == sorted(set(IDEAS) - {"Lonely idea"})
    five = from_candidates(cand, pairs=5, seed=7)
    counts = Counter(p.idea for p in five)
    assert len(five) == 5 and counts["Learning Rust"] == 1  # it has one pair only
    assert max(counts.values()) - min(counts.values()) <= 1
    again = from_candidates(cand, pairs=5, seed=7)
    assert again == five  # same ids, same left and right
    # A larger sample of the same seed starts with the smaller one, each shown the same way.
    assert from_candidates(cand, pairs=8, seed=7)[:5] == five
    # More than there are: all of them.
    assert len(from_candidates(cand, pairs=99, seed=7)) == ALL_PAIRS
    seeds = {
        tuple((p.id, p.left) for p in from_candidates(cand, pairs=5, seed=s)) for s in range(6)
    }
    assert len(seeds) > 1


def test_left_and_right_are_drawn_at_random(tmp_path):
    many = {f"idea {i}": [f"title {i} a", f"title {i} b", f"title {i} c"] for i in range(20)}
    pairs = from_candidates(candidates_csv(tmp_path / "c.csv", many), pairs=None, seed=1)
    first_left = sum(p.left < p.right for p in pairs)
    assert len(pairs) == 60 and 10 < first_left < 50


def test_preferences_restrict_to_the_judges_pairs(cand, tmp_path):
    judged = [
        ("How I fixed my bike", "Bike repair", "Bike fixed!"),
        ("How I fixed my bike", "Fix", "I fixed my bike in 10 minutes"),
        ("Cooking pasta", NASTY, "Pasta 101"),
        ("Not a candidate idea", "x", "y"),
    ]
    prefs = write_rows(
        tmp_path / "prefs.csv",
        ["idea", "chosen", "rejected", "judge", "rationale"],
        [{"idea": i, "chosen": c, "rejected": r, "judge": "rubric"} for i, c, r in judged],
    )
    pairs = from_candidates(cand, pairs=None, seed=3, preferences=prefs)
    assert {p.id for p in pairs} == {candidate_pair_id(*j) for j in judged[:3]}
    assert len(from_candidates(cand, pairs=2, seed=3, preferences=prefs)) == 2


def test_preferences_of_other_candidates_are_refused(cand, tmp_path):
    prefs = write_rows(
        tmp_path / "prefs.csv",
        ["idea", "chosen", "rejected"],
        [{"idea": "elsewhere", "chosen": "a", "rejected": "b"}],
    )
    with pytest.raises(UserError, match="no pair of the preferences file"):
        from_candidates(cand, pairs=None, seed=3, preferences=prefs)


def test_comparisons_give_one_pair_per_row_with_two_titles(tmp_path):
    pairs = from_comparisons(comparisons_csv(tmp_path / "cmp.csv"), pairs=None, seed=5)
    assert len(pairs) == 3  # equal titles and an empty one are left out
    for p in pairs:
        shown = p.public()
        assert set(shown) == {"id", "idea", "left", "right"}
        assert "base" not in json.dumps(shown) and "tuned" not in json.dumps(shown)
        assert p.left_role in ("base", "tuned")
    assert len(from_comparisons(tmp_path / "cmp.csv", pairs=2, seed=5)) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [("idea,name\nx,y\n", "lacks column"), ("idea,title\nx,only one\n", "nothing to compare")],
)
def test_bad_candidates_are_one_line(tmp_path, text, message):
    path = tmp_path / "cand.csv"
    path.write_text(text)
    with pytest.raises(UserError, match=message):
        from_candidates(path, pairs=None, seed=1)


def test_missing_candidates_file(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        from_candidates(tmp_path / "nope.csv", pairs=None, seed=1)


# --- The answers file ----------------------------------------------------------------------------


def answer_all(session, choices):
    """Answer the session's pairs in order with `choices` (left/right/tie); returns what was
    shown and answered: [(pair, choice)]."""
    given = []
    for choice in choices:
        pair = session.queue[0]
        session.answer(pair.id, choice)
        given.append((pair, choice))
    return given


def test_each_answer_is_saved_at_once(cand, tmp_path):
    out = tmp_path / "human.csv"
    with open_session(out, candidates=cand, labeller="ann") as session:
        (left, _), (right, _), (tie, _) = answer_all(session, ["left", "right", "tie"])
        rows = read_csv(out, HUMAN_PREFERENCE_COLUMNS, "answers")
    header = out.read_text(encoding="utf-8").splitlines()[0]
    assert header == ",".join(HUMAN_PREFERENCE_COLUMNS)
    assert [r["pair"] for r in rows] == [left.id, right.id, tie.id]
    assert (rows[0]["chosen"], rows[0]["rejected"], rows[0]["shown_left"]) == (
        left.left,
        left.right,
        "chosen",
    )
    assert rows[0]["verdict"] == rows[1]["verdict"] == "preferred"
    assert (rows[1]["chosen"], rows[1]["rejected"], rows[1]["shown_left"]) == (
        right.right,
        right.left,
        "rejected",
    )
    assert (rows[2]["verdict"], rows[2]["chosen"], rows[2]["rejected"]) == (
        "tie",
        tie.left,
        tie.right,
    )
    assert all(r["labeller"] == "ann" and r["labelled_at"].endswith("+00:00") for r in rows)
    assert all(r["pair"] == candidate_pair_id(r["idea"], r["chosen"], r["rejected"]) for r in rows)
    # The file is ours (in the folder's ledger), so `--force` rules and resuming apply to it.
    ledger = json.loads((tmp_path / ".dpo-titles-files.json").read_text())
    assert "human.csv" in ledger["files"]


def test_resume_never_asks_an_answered_pair_again(cand, tmp_path):
    out = tmp_path / "human.csv"
    with open_session(out, candidates=cand) as session:
        answered = {p.id for p, _ in answer_all(session, ["left", "tie", "right", "left"])}
        assert session.state()["done"] == 4
    with open_session(out, candidates=cand) as again:
        assert again.total == ALL_PAIRS and len(again.queue) == ALL_PAIRS - 4
        assert not answered & {p.id for p in again.queue}
        assert again.state()["done"] == 4 and not again.state()["can_undo"]
        # Undo takes back this session's answers only: nothing yet.
        assert again.undo()["message"] == "nothing to undo in this session"
        answer_all(again, ["right"] * (ALL_PAIRS - 4))
        assert again.state()["finished"] and again.state()["pair"] is None
        summary = again.wait(linger=0.01)
    rows = read_csv(out, HUMAN_PREFERENCE_COLUMNS, "answers")
    assert len(rows) == len({r["pair"] for r in rows}) == ALL_PAIRS
    assert summary == {
        "out": str(out),
        "answered": ALL_PAIRS,
        "preferred": ALL_PAIRS - 1,
        "tie": 1,
        "this_session": ALL_PAIRS - 4,
        "remaining": 0,
    }


def test_undo_and_skip(cand, tmp_path):
    out = tmp_path / "human.csv"
    with open_session(out, candidates=cand) as session:
        first, second = session.queue[0], session.queue[1]
        session.answer(first.id, "left")
        session.answer(second.id, "tie")
        state = session.undo()
        assert state["pair"]["id"] == second.id and state["done"] == 1
        assert [r["pair"] for r in read_csv(out, [], "answers")] == [first.id]
        # Skipping sends the pair to the end of the queue and records nothing.
        state = session.skip(second.id)
        assert state["pair"]["id"] != second.id and session.queue[-1].id == second.id
        assert len(read_csv(out, [], "answers")) == 1
        # An answer for a pair not (or no longer) asked changes nothing.
        assert session.answer(first.id, "right")["message"] == "that pair is answered already"
        session.undo()
        assert read_csv(out, [], "answers") == []
        assert session.undo()["message"] == "nothing to undo in this session"


def test_a_users_own_file_is_refused(cand, tmp_path):
    out = write_rows(tmp_path / "human.csv", HUMAN_PREFERENCE_COLUMNS, [])
    before = out.read_bytes()
    with pytest.raises(UserError, match="not written by dpo-titles"):
        open_session(out, candidates=cand)
    assert out.read_bytes() == before


def test_an_edited_answers_file_is_refused(cand, tmp_path):
    out = tmp_path / "human.csv"
    with open_session(out, candidates=cand) as session:
        answer_all(session, ["left"])
    with open(out, "a", encoding="utf-8") as fh:
        fh.write("an,edit,by,hand,,,,\n")
    with pytest.raises(UserError, match="changed after dpo-titles wrote it"):
        open_session(out, candidates=cand)


def test_another_kind_of_output_is_refused(cand, tmp_path):
    judge_file = tmp_path / "prefs.csv"
    write_csv(
        judge_file, [{"idea": "i", "chosen": "a", "rejected": "b"}], ["idea", "chosen", "rejected"]
    )
    with pytest.raises(UserError, match="not the answers of `annotate --candidates`"):
        open_session(judge_file, candidates=cand)
    evals = tmp_path / "human_eval.csv"
    with open_session(evals, comparisons=comparisons_csv(tmp_path / "cmp.csv")) as session:
        answer_all(session, ["tie"])
    with pytest.raises(UserError, match="not the answers of `annotate --candidates`"):
        open_session(evals, candidates=cand)


def test_a_file_changed_by_another_session_is_not_overwritten(cand, tmp_path):
    out = tmp_path / "human.csv"
    with open_session(out, candidates=cand) as one, open_session(out, candidates=cand) as two:
        one.answer(one.queue[0].id, "left")
        with pytest.raises(UserError, match="changed by someone else"):
            two.answer(two.queue[1].id, "right")
        assert two.state()["done"] == 0
    assert len(read_csv(out, [], "answers")) == 1


def test_comparisons_answers_name_the_model_in_the_file_only(tmp_path):
    out = tmp_path / "human_eval.csv"
    with open_session(out, comparisons=comparisons_csv(tmp_path / "cmp.csv")) as session:
        given = answer_all(session, ["left", "right", "tie"])
        summary = session.summary()
    rows = read_csv(out, HUMAN_EVAL_COLUMNS, "answers")
    assert out.read_text(encoding="utf-8").splitlines()[0] == ",".join(HUMAN_EVAL_COLUMNS)
    for row, (pair, choice) in zip(rows, given, strict=True):
        right_role = "tuned" if pair.left_role == "base" else "base"
        expected = {"left": pair.left_role, "right": right_role, "tie": "tie"}[choice]
        assert row["verdict"] == expected and row["shown_left"] == pair.left_role
        shown = {pair.left_role: pair.left, right_role: pair.right}
        assert (row["base_title"], row["tuned_title"]) == (shown["base"], shown["tuned"])
        assert row["sample"] == pair.sample
    assert summary["answered"] == 3 and summary["tie"] == 1
    assert summary["tuned"] + summary["base"] == 2


def test_human_preferences_skip_ties(tmp_path):
    from dpo_titles.dataset import read_human_preferences

    rows = [
        {"idea": "a", "chosen": "x", "rejected": "y", "verdict": "preferred"},
        {"idea": "a", "chosen": "x", "rejected": "z", "verdict": "tie"},
        {"idea": "b", "chosen": "p", "rejected": "q", "verdict": "preferred"},
    ]
    with_verdict = write_rows(tmp_path / "h.csv", ["idea", "chosen", "rejected", "verdict"], rows)
    kept = read_human_preferences(with_verdict)
    assert [(r["idea"], r["rejected"]) for r in kept] == [("a", "y"), ("b", "q")]
    assert all(r["judge"] == "human" for r in kept)
    # A file without a verdict column keeps every row, as before.
    plain = write_rows(
        tmp_path / "plain.csv",
        ["idea", "chosen", "rejected"],
        [{k: r[k] for k in ("idea", "chosen", "rejected")} for r in rows],
    )
    assert len(read_human_preferences(plain)) == 3


def test_prepare_accepts_the_answers_file(cand, tmp_path):
    from dpo_titles.cli import main

    out = tmp_path / "human.csv"
    with open_session(out, candidates=cand) as session:
        given = answer_all(session, ["left", "tie", "right", "left", "tie"])
    judge = write_rows(
        tmp_path / "prefs.csv",
        ["idea", "chosen", "rejected", "judge", "rationale"],
        [
            {"idea": f"judged idea {i}", "chosen": f"good {i}", "rejected": f"bad {i}"}
            for i in range(6)
        ],
    )
    dataset = tmp_path / "ds"
    before = out.read_bytes()
    code = main(
        [
            "-q",
            "prepare",
            "--preferences",
            str(judge),
            "--human-preferences",
            str(out),
            "--out",
            str(dataset),
        ]
    )
    assert code == 0
    assert out.read_bytes() == before
    split = json.loads((dataset / "split.json").read_text())
    preferred = sum(choice != "tie" for _, choice in given)
    assert split["train_pairs"] + split["validation_pairs"] == 6 + preferred


# --- The server over HTTP ------------------------------------------------------------------------

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never a proxy


def fetch(session, path, *, body=None, token="header", query_token=False, headers=None):
    """(status, headers, body) of one request to the session's server."""
    url = f"http://127.0.0.1:{session.port}{path}"
    if query_token:
        url += ("&" if "?" in url else "?") + f"token={session.token}"
    sent = dict(headers or {})
    if token == "header":
        sent[TOKEN_HEADER] = session.token
    elif token is not None:
        sent[TOKEN_HEADER] = token
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        sent.setdefault("Content-Type", "application/json")
    request = urllib.request.Request(url, data=data, headers=sent)
    try:
        with _OPENER.open(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


@pytest.fixture()
def served(cand, tmp_path):
    """A session on the candidates of IDEAS, served on loopback."""
    with open_session(tmp_path / "human.csv", candidates=cand, labeller="web") as session:
        yield session


def test_no_or_wrong_token_is_403_with_no_data(served):
    for path in ("/", "/api/state", "/favicon.ico", "/nowhere"):
        for token in (None, "wrong", served.token[:-1], ""):
            status, _, body = fetch(served, path, token=token)
            assert status == 403 and body == b"forbidden", (path, token)
    # The page takes the token in its query, the API in the header only.
    assert fetch(served, f"/?token={served.token}x", token=None)[0] == 403
    assert fetch(served, f"/api/state?token={served.token}", token=None)[0] == 403
    status, _, body = fetch(served, "/api/answer", body={"pair": "x", "choice": "left"}, token=None)
    assert status == 403 and body == b"forbidden"
    assert not (Path(served.answers.path)).exists()


def test_a_foreign_host_is_refused(served):
    for host in ("evil.example:%d", "127.0.0.1.evil.example:%d", "127.0.0.1:1", "localhost"):
        status, _, body = fetch(
            served, "/api/state", headers={"Host": host % served.port if "%" in host else host}
        )
        assert status == 403 and body == b"forbidden", host
    # No Host at all (HTTP/1.0 style) is refused too.
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
    conn.putrequest("GET", f"/?token={served.token}", skip_host=True)
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 403 and response.read() == b"forbidden"
    conn.close()
    assert fetch(served, "/api/state", headers={"Host": f"localhost:{served.port}"})[0] == 200


def test_the_page_and_its_headers(served):
    status, headers, body = fetch(served, "/", token=None, query_token=True)
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    nonce = csp.split("script-src 'nonce-")[1].split("'")[0]
    html = body.decode("utf-8")
    assert html.count(f'nonce="{nonce}"') == 2  # the one style and the one script
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store"
    assert '<meta name="viewport"' in html
    # Nothing from elsewhere: no external script, style, font or image.
    assert "http://" not in html and "https://" not in html and "//" not in html.split("<script")[0]
    # A fresh nonce per response.
    again = fetch(served, "/", token=None, query_token=True)[1]["Content-Security-Policy"]
    assert again != csp
    # Headers on an API answer and a refusal, too.
    for response in (fetch(served, "/api/state"), fetch(served, "/api/state", token=None)):
        assert response[1]["X-Content-Type-Options"] == "nosniff"
        assert "default-src 'none'" in response[1]["Content-Security-Policy"]


def test_answer_through_the_api(served):
    status, _, body = fetch(served, "/api/state")
    state = json.loads(body)
    assert status == 200 and state["done"] == 0 and state["total"] == ALL_PAIRS
    pair = state["pair"]
    assert set(pair) == {"id", "idea", "left", "right"}
    status, _, body = fetch(served, "/api/answer", body={"pair": pair["id"], "choice": "right"})
    after = json.loads(body)
    assert status == 200 and after["done"] == 1 and after["pair"]["id"] != pair["id"]
    assert after["sides"] == {"left": 0, "right": 1, "tie": 0} and after["can_undo"]
    rows = read_csv(served.answers.path, HUMAN_PREFERENCE_COLUMNS, "answers")
    assert len(rows) == 1
    assert (rows[0]["idea"], rows[0]["chosen"], rows[0]["rejected"]) == (
        pair["idea"],
        pair["right"],
        pair["left"],
    )
    assert rows[0]["verdict"] == "preferred" and rows[0]["labeller"] == "web"
    # The same answer sent twice (a double press) is recorded once.
    again = json.loads(fetch(served, "/api/answer", body={"pair": pair["id"], "choice": "left"})[2])
    assert again["message"] == "that pair is answered already" and again["done"] == 1
    skip = json.loads(fetch(served, "/api/skip", body={"pair": after["pair"]["id"]})[2])
    assert skip["done"] == 1 and skip["pair"]["id"] != after["pair"]["id"]
    undone = json.loads(fetch(served, "/api/undo", body={})[2])
    assert undone["done"] == 0 and undone["pair"]["id"] == pair["id"]
    assert read_csv(served.answers.path, [], "answers") == []


def test_bad_requests_are_refused(served):
    pair = served.queue[0].id
    cases = [
        ({"pair": pair, "choice": "both"}, {}, 400),
        ({"choice": "left"}, {}, 400),
        (b"[1, 2]", {}, 400),
        (b"{not json", {}, 400),
        (
            json.dumps({"pair": pair, "choice": "left"}).encode(),
            {"Content-Type": "text/plain"},
            415,
        ),
        (b"{" + b" " * MAX_BODY + b"}", {}, 413),
        ({"pair": pair, "choice": "left"}, {"Origin": "http://evil.example"}, 403),
    ]
    for body, headers, expected in cases:
        status, _, _ = fetch(served, "/api/answer", body=body, headers=headers)
        assert status == expected, (body[:40], headers)
    assert fetch(served, "/api/state", body={})[0] == 404  # POST to a GET route
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
    conn.request("OPTIONS", "/api/answer", headers={"Origin": "http://evil.example"})
    assert conn.getresponse().status == 403  # a preflight: no token, no way through
    conn.close()
    assert not Path(served.answers.path).exists()
    same_origin = {"Origin": f"http://127.0.0.1:{served.port}"}
    assert (
        fetch(served, "/api/answer", body={"pair": pair, "choice": "tie"}, headers=same_origin)[0]
        == 200
    )


def test_a_hostile_title_is_json_text_never_markup(tmp_path):
    only = {"Cooking pasta": ["Pasta 101", NASTY]}
    cand = candidates_csv(tmp_path / "cand.csv", only)
    with open_session(tmp_path / "h.csv", candidates=cand, pairs=None) as session:
        state = json.loads(fetch(session, "/api/state")[2])
        assert NASTY in (state["pair"]["left"], state["pair"]["right"])
        raw = fetch(session, "/api/state")[2].decode("ascii")
        assert "<script>" not in raw  # escaped by the JSON: \u003c... never raw markup
        html = fetch(session, "/", token=None, query_token=True)[2].decode("utf-8")
        assert "alert(" not in html and "onerror" not in html and "Pasta 101" not in html
        assert "textContent" in html and "innerHTML" not in html
        session.answer(state["pair"]["id"], "left" if state["pair"]["left"] == NASTY else "right")
    rows = read_csv(tmp_path / "h.csv", HUMAN_PREFERENCE_COLUMNS, "answers")
    assert rows[0]["chosen"] == NASTY


def test_it_listens_on_loopback_only(served):
    host, port = served._server.server_address[:2]
    assert host == "127.0.0.1" and port == served.port
    assert served.url == f"http://127.0.0.1:{served.port}/?token={served.token}"
    assert len(served.token) >= 43


# --- The command ---------------------------------------------------------------------------------


def test_the_command_returns_at_once_when_all_is_answered(cand, tmp_path, capsys):
    out = tmp_path / "human.csv"
    with open_session(out, candidates=cand, pairs=2) as session:
        answer_all(session, ["left", "tie"])
    summary = annotate(out, candidates=cand, pairs=2)
    assert summary["answered"] == 2 and summary["remaining"] == 0
    assert "answered in" in capsys.readouterr().err


def test_ctrl_c_leaves_the_answers_saved(cand, tmp_path, capsys, monkeypatch):
    from dpo_titles.annotate import server

    out = tmp_path / "human.csv"

    def interrupted(self, linger=0):
        self.answer(self.queue[0].id, "left")
        raise KeyboardInterrupt

    monkeypatch.setattr(server.Session, "wait", interrupted)
    summary = annotate(out, candidates=cand)
    assert summary["answered"] == 1 and summary["remaining"] == ALL_PAIRS - 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("dpo-titles annotate: stopped; 1 answers are saved")
    assert len(read_csv(out, HUMAN_PREFERENCE_COLUMNS, "answers")) == 1


def test_wait_returns_after_the_last_answer(cand, tmp_path):
    import threading

    out = tmp_path / "human.csv"
    with open_session(out, candidates=cand, pairs=2) as session:
        results = []
        waiter = threading.Thread(target=lambda: results.append(session.wait(linger=0.05)))
        waiter.start()
        answer_all(session, ["left", "right"])
        waiter.join(timeout=10)
        assert not waiter.is_alive()
    assert results[0]["remaining"] == 0 and results[0]["preferred"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "exactly one of --candidates"),
        (["--candidates", "{cand}", "--comparisons", "{cand}"], "exactly one of --candidates"),
        (["--candidates", "{cand}", "--pairs", "0"], "--pairs"),
        (["--candidates", "{cand}", "--port", "70000"], "--port"),
        (["--candidates", "{cand}", "--seed", "-1"], "--seed"),
        (["--candidates", "{tmp}/missing.csv"], "does not exist"),
        (["--comparisons", "{cand}"], "lacks column"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cand, tmp_path, capsys, args, message):
    from dpo_titles.cli import main

    argv = [a.format(cand=cand, tmp=tmp_path) for a in args]
    code = main(["annotate", *argv, "--out", str(tmp_path / "h.csv")])
    err = capsys.readouterr()
    assert code == 2 and err.out == ""
    lines = err.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in err.err
    assert not (tmp_path / "h.csv").exists()


def test_answers_open_checks_the_mode(tmp_path):
    with pytest.raises(ValueError):
        Answers.open(tmp_path / "x.csv", "neither")
    assert Answers.open(tmp_path / "x.csv", CANDIDATES).rows == []
    assert Answers.open(tmp_path / "y.csv", COMPARISONS).columns == HUMAN_EVAL_COLUMNS
