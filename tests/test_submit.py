"""`make submit`'s script against a loopback server speaking the KFP v2beta1 REST API."""

import yaml

from pipelines.submit import main
from tests.conftest import REPO
from tests.fakes.kfp_server import KfpServer


def test_submit_sends_the_compiled_spec_and_parameters(tmp_path, monkeypatch, capsys):
    params = tmp_path / "params.yaml"
    # A parameter by its name of before (titles_per_idea) still works, under its new name.
    params.write_text("train_recipe: original\ntitles_per_idea: 5\n")
    monkeypatch.setenv("KFP_TOKEN", "tok-SECRET-987")
    with KfpServer(token="tok-SECRET-987") as server:
        code = main(
            [
                "--host",
                server.host,
                "--params",
                str(params),
                "--set",
                "eval_seed=7",
                "--experiment",
                "titles",
                "--run-name",
                "r1",
            ]
        )
        out = capsys.readouterr()
        assert code == 0, out.err
        (run,) = server.runs.values()
    committed = list(
        yaml.safe_load_all((REPO / "pipelines" / "dpo_titles_pipeline.yaml").read_text())
    )
    # The pipeline and its Kubernetes platform spec both travel, exactly as compiled.
    assert run["pipeline_spec"]["pipeline_spec"] == committed[0]
    assert run["pipeline_spec"]["platform_spec"] == committed[1]
    assert run["runtime_config"]["parameters"] == {
        "train_recipe": "original",
        "gen_titles_per_idea": 5,
        "eval_seed": 7,
    }
    assert run["display_name"] == "r1"
    assert server.experiments[run["experiment_id"]]["display_name"] == "titles"
    assert f"{server.host}/#/runs/details/{run['run_id']}" in out.out
    assert "tok-SECRET-987" not in out.out + out.err
    assert all(
        r["headers"].get("authorization") == "Bearer tok-SECRET-987" for r in server.requests
    )


def test_submit_errors_are_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("KFP_HOST", raising=False)
    assert main([]) == 2
    assert capsys.readouterr().err.strip() == (
        "submit: error: no KFP endpoint: set KFP_HOST or pass --host"
    )
    assert main(["--host", "http://127.0.0.1:9", "--pipeline", str(tmp_path / "none.yaml")]) == 2
    assert "run `make compile` first" in capsys.readouterr().err
    assert main(["--host", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("submit: error: cannot reach http://127.0.0.1:9")
    assert err.count("\n") == 1
