"""The images, for real: built by `make images`, run by Docker or Podman (DOCKER_HOST).

Without a container runtime, or without the CPU image built, these tests are skipped with the
reason; under CI they fail instead (`.ci/run` prepares Podman and builds the image first),
unless `.ci/run` said the machine cannot run them (DPO_TITLES_SKIP_IMAGES).
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tarfile

import pytest

from tests.conftest import REPO, RUN_ARTIFACTS, bundled_ideas

# What the CPU image may weigh (it was 1.75 GB when this was set: torch's CPU build is most of
# it); images/README.md records the figures.
BASE_IMAGE_BUDGET_GB = 2.0
# Shapes of real credentials, standing alone: a Hugging Face token (hf_ and 34 letters), an
# OpenAI-style key (sk-), a Google API key (AIza and 35 more).
SECRET_SHAPES = re.compile(
    rb"(?<![\w-])(?:hf_[A-Za-z]{34}|sk-[A-Za-z0-9]{32,}|AIza[\w-]{35})(?![\w-])"
)
KEY_VARIABLES = ("TOGETHER_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "HF_TOKEN")


def _unavailable(reason: str):
    said = os.environ.get("DPO_TITLES_SKIP_IMAGES")  # .ci/run: this machine cannot run them
    if os.environ.get("CI") and not said:
        pytest.fail(f"{reason} (CI runs the image tests: .ci/run prepares them)")
    pytest.skip(f"{reason}; {said}" if said else reason)


@pytest.fixture(scope="module")
def api():
    try:
        import docker

        # Saving a 2 GB image takes a while through Podman's compatible API.
        client = docker.from_env(timeout=900)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - no runtime, no socket, no package: all a skip
        _unavailable(f"no container runtime at DOCKER_HOST ({type(exc).__name__})")
    yield client
    client.close()


@pytest.fixture(scope="module")
def image(api):
    import docker

    from components.images import BASE_IMAGE

    try:
        return api.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        _unavailable(f"{BASE_IMAGE} is not built: make images IMAGES=base")


def run_in(api, image, *command: str) -> str:
    out = api.containers.run(image.id, list(command), network_mode="none", remove=True)
    return out.decode()


def test_the_image_runs_as_uid_1000_with_everything_installed(api, image):
    assert run_in(api, image, "id", "-u").strip() == "1000"
    assert run_in(api, image, "id", "-g").strip() == "1000"
    assert "No broken requirements found" in run_in(api, image, "pip", "check")
    assert run_in(api, image, "dpo-titles", "--help").startswith("usage: dpo-titles")
    versions = run_in(
        api,
        image,
        "python3",
        "-c",
        "import sys, dpo_titles, torch, trl, kfp; print(sys.version_info[:2], "
        "dpo_titles.__version__, torch.__version__, torch.cuda.is_available())",
    )
    from dpo_titles import __version__

    assert versions.split() == ["(3,", "11)", __version__, "2.13.0+cpu", "False"]


def test_the_image_says_what_it_is_and_keeps_within_its_size(image):
    from dpo_titles import __version__

    labels = image.labels
    assert labels["org.opencontainers.image.version"] == __version__
    assert re.fullmatch(r"[0-9a-f]{40}", labels["org.opencontainers.image.revision"])
    assert labels["org.opencontainers.image.source"].startswith("https://")
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert image.attrs["Size"] <= BASE_IMAGE_BUDGET_GB * 1e9, image.attrs["Size"]


def test_no_key_or_token_is_in_any_layer_the_history_or_the_environment(image, tmp_path):
    values = [os.environ[k].encode() for k in KEY_VARIABLES if len(os.environ.get(k, "")) >= 8]
    env = image.attrs["Config"]["Env"] or []
    assert not [e for e in env if e.split("=", 1)[0] in KEY_VARIABLES], env
    history = json.dumps(image.history()).encode()
    assert not SECRET_SHAPES.search(history) and not any(v in history for v in values)
    saved = tmp_path / "image.tar"
    with open(saved, "wb") as fh:
        for chunk in image.save(named=False):
            fh.write(chunk)
    scanned = 0
    with tarfile.open(saved) as outer:
        for member in outer:
            if not member.isfile():
                continue
            for name, data in _files(outer.extractfile(member)):
                scanned += 1
                found = SECRET_SHAPES.search(data)
                assert not found, f"{member.name}:{name} holds {found.group()[:8]}..."
                assert not any(v in data for v in values), f"{member.name}:{name}"
    assert scanned > 1000  # the layers' files were read, not just the manifest


def _files(stream):
    """The files of a layer tarball, streamed (or the member itself when it is not one)."""
    head = stream.read(512)
    rest = io.BufferedReader(_Rejoined(head, stream)) if head else stream
    try:
        with tarfile.open(fileobj=rest, mode="r|*") as layer:
            for member in layer:
                if member.isfile():
                    yield member.name, layer.extractfile(member).read()
    except tarfile.TarError:
        yield "(member)", head + stream.read()


class _Rejoined(io.RawIOBase):
    """`head` then the rest of `stream`, as one readable stream."""

    def __init__(self, head: bytes, stream):
        self.head, self.stream = head, stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.head:
            n = min(len(buffer), len(self.head))
            buffer[:n], self.head = self.head[:n], self.head[n:]
            return n
        data = self.stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def test_the_pipeline_runs_with_every_task_in_its_image(api, image, tmp_path, tiny_model):
    ideas = bundled_ideas(tmp_path / "ideas.csv", 12, ("idea", "category"))
    os.chmod(tmp_path, 0o755)  # the tasks (uid 1000) read the ideas file through a mount
    argv = [
        *("--preset", "local", "--runner", "docker", "--ideas", str(ideas)),
        *("--runs-dir", str(tmp_path / "runs"), "--run-id", "d1"),
        *("--set", f"base_model={tiny_model}"),
        *("--set", "train_overrides={num_train_epochs: 1}"),
        *("--set", "eval_samples_per_idea=2", "--set", "sample_temperature=1.2"),
    ]
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.run_local", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    run = tmp_path / "runs" / "d1"
    for name in RUN_ARTIFACTS:
        assert (run / name).exists(), name
    # Every task said where it ran: as uid 1000, in the image's Python, not this one.
    ran = re.findall(r"dpo-titles (\w[\w ]*): running as uid (\d+), Python [\d.]+ \((\S+)\)", out)
    stages = {stage for stage, _, _ in ran}
    assert {"preflight", "generate", "label", "prepare", "train", "evaluate", "report"} <= stages
    assert {uid for _, uid, _ in ran} == {"1000"}
    image_python = run_in(api, image, "python3", "-c", "import sys; print(sys.executable)")
    assert {python for _, _, python in ran} == {image_python.strip()} != {sys.executable}
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n_comparisons"] > 0 and "train_loss" in metrics


def _tag_rule(**env) -> tuple[int, dict]:
    """Run the release workflow's own "Image name and tags" step with `env`."""
    import tempfile

    import yaml

    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "images.yaml").read_text())
    step = next(s for s in workflow["jobs"]["build"]["steps"] if s.get("id") == "meta")
    with tempfile.NamedTemporaryFile("r", suffix=".out") as out:
        done = subprocess.run(
            ["bash", "-e", "-c", step["run"]],
            cwd=REPO,
            env={"PATH": os.environ["PATH"], "GITHUB_OUTPUT": out.name, **env},
            capture_output=True,
            text=True,
        )
        outputs = dict(line.split("=", 1) for line in out.read().splitlines())
    return done.returncode, outputs


def test_the_release_workflow_pushes_the_tag_make_compile_uses():
    from components.images import BASE_IMAGE, CUDA_IMAGE, REGISTRY
    from dpo_titles import __version__

    owner = REGISTRY.removeprefix("ghcr.io/")
    for name, compiled in (
        ("dpo-titles-python", BASE_IMAGE),
        ("dpo-titles-python-cuda", CUDA_IMAGE),
    ):
        env = {"OWNER": owner.upper(), "NAME": name, "SHA": "0123456789abcdef" * 2}
        code, out = _tag_rule(**env, REF_TYPE="tag", REF_NAME=f"v{__version__}")
        assert code == 0 and compiled in out["tags"].split(","), out
        assert out["version"] == __version__
        code, out = _tag_rule(**env, REF_TYPE="branch", REF_NAME="main")
        assert code == 0 and out["tags"] == f"ghcr.io/{owner}/{name}:{env['SHA']}"
        code, _ = _tag_rule(**env, REF_TYPE="tag", REF_NAME="v99.0.0")
        assert code == 1  # a tag that is not the package's version is refused
