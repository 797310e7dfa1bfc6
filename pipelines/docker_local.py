"""`make run-local RUNNER=docker`: the pipeline through kfp.local's DockerRunner, every task in
the image `make compile` names for it, as the image's user (uid 1000), with Docker or Podman.

What this adds to kfp.local, and why:

- **Podman**: kfp.local starts each container with `auto_remove=True` and then asks for its exit
  status; Podman (4.3) has removed the container by then and answers 500 "no such container",
  so a task that succeeded is reported as failed. `run_container` below is kfp.local's own
  `run_docker_container` without `auto_remove`: it waits for the real exit status, then removes
  the container.
- **The pipeline root** is bind-mounted into every container at the same path (kfp.local does
  that); the task runs as uid 1000, so the folder is made writable for it.
- **Inputs outside the image** (the ideas file, the tiny model, ...) reach the tasks as they do
  on a cluster from a mounted volume: each local path parameter is bind-mounted read-only at the
  same absolute path; a checkpoint folder read-write.
- **The CUDA image** runs the GPU tasks on a cluster. When it is not built here, the GPU tasks
  run in the CPU image instead, and the run says so.
- **Network**: none, unless the run uses an API back end, a `gs://` URI or a hub id.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def passed_env() -> tuple[str, ...]:
    """Environment variables passed into the containers when set here: the back ends' keys and
    endpoints (providers.BACKENDS), the Hub's, the Cloud Storage emulator's. A Kubernetes
    Secret does this on a cluster."""
    from dpo_titles.providers import BACKENDS, secret_env

    endpoints = tuple(b.base_url_env for b in BACKENDS if b.base_url_env)
    return (*secret_env(), *endpoints, "HF_ENDPOINT", "STORAGE_EMULATOR_HOST")


# Parameters that may name a local file or folder the tasks read, and the one they write.
READ_PATHS = ("ideas_uri", "eval_ideas_uri", "prepare_human_preferences_uri", "base_model")
READ_PATHS += ("gen_model", "train_recipe")
WRITE_PATHS = ("train_checkpoint_dir",)


def run_container(client, image: str, command: list[str], volumes: dict, **run_args) -> int:
    """kfp.local's `run_docker_container`, waiting for the exit status before the container
    is removed (Docker and Podman alike)."""
    image = image if ":" in image.rsplit("/", 1)[-1] else f"{image}:latest"
    if not any(image in i.tags for i in client.images.list()):
        print(f"Pulling image {image!r}")
        client.images.pull(image)
    container = client.containers.run(
        image=image,
        command=command,
        detach=True,
        stdout=True,
        stderr=True,
        volumes=volumes,
        **run_args,
    )
    try:
        for line in container.logs(stream=True, follow=True):
            print(line.decode(errors="replace"), end="")
        return int(container.wait()["StatusCode"])
    finally:
        container.remove(force=True)


def client():
    """A Docker API client (DOCKER_HOST: Docker's socket, or Podman's compatible one)."""
    import docker

    try:
        made = docker.from_env()
        made.ping()
    except docker.errors.DockerException as exc:
        raise RuntimeError(
            "no container runtime answers (set DOCKER_HOST to Docker's or Podman's socket; on "
            f"the project's machines: bash ../shared/containers/setup.sh): {exc}"
        ) from None
    return made


def has_image(api, name: str) -> bool:
    """True if the image is present here."""
    import docker

    try:
        api.images.get(name)
    except docker.errors.ImageNotFound:
        return False
    return True


def choose_images(api) -> list[str]:
    """Check that the images `make compile` names are here; the GPU tasks fall back to the CPU
    image when the CUDA one is not built. Returns what to say about it. Call before the
    pipeline is imported: the components read their images when they are defined."""
    from components import images

    notes = []
    if not has_image(api, images.BASE_IMAGE):
        raise RuntimeError(
            f"image {images.BASE_IMAGE} is not built here: run `make images IMAGES=base` "
            "(with the same IMAGE_REGISTRY and IMAGE_TAG)"
        )
    if not has_image(api, images.TRAIN_IMAGE):
        notes.append(
            f"the CUDA image {images.TRAIN_IMAGE} is not built here: the GPU tasks (train, "
            f"evaluate) run in the CPU image {images.BASE_IMAGE}"
        )
        # Read by components/train.py and evaluate.py when the pipeline is imported, next.
        images.TRAIN_IMAGE = images.BASE_IMAGE
    elif _revision(api, images.TRAIN_IMAGE) != _revision(api, images.BASE_IMAGE):
        # A CUDA image left from older code would run that code in the GPU tasks only, and
        # fail on parameters it does not know; the CPU image is the one `make images` keeps.
        notes.append(
            f"the CUDA image {images.TRAIN_IMAGE} was built from another commit than the CPU "
            f"image: the GPU tasks (train, evaluate) run in the CPU image {images.BASE_IMAGE} "
            "(make images IMAGES=train to rebuild it)"
        )
        images.TRAIN_IMAGE = images.BASE_IMAGE
    stale = stale_image_note(api, images.BASE_IMAGE)
    if stale:
        notes.append(stale)
    return notes


def _revision(api, name: str) -> str:
    labels = api.images.get(name).labels or {}
    return labels.get("org.opencontainers.image.revision", "")


def stale_image_note(api, name: str) -> str | None:
    """A note when the image was built from another commit than this checkout's (the tasks run
    the image's copy of the code, not the working tree's)."""
    built_from = _revision(api, name)
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src", "components", "pipelines"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    if built_from and built_from != head:
        return (
            f"{name} was built from commit {built_from[:12]}, this checkout is {head[:12]}: the "
            "tasks run the image's code (make images to rebuild)"
        )
    if dirty:
        return f"the working tree has changes the image {name} does not hold (make images)"
    return None


def needs_network(params: dict) -> bool:
    """True if a task of this run talks to something outside its container."""
    from dpo_titles.providers import BACKENDS

    remote = {b.name for b in BACKENDS if b.key_env}  # a back end with a key is an API
    if any(params.get(k) in remote for k in ("gen_provider", "label_judge", "eval_judge")):
        return True
    for value in params.values():
        if isinstance(value, str) and value.startswith(("gs://", "hf://")):
            return True
    model = str(params.get("base_model", ""))
    return bool(model) and not os.path.exists(model)  # a hub id


def runner(params: dict, pipeline_root: Path):
    """kfp.local's DockerRunner for this run: inputs mounted, keys passed, network as needed."""
    from docker.types import Mount
    from kfp import local
    from kfp.local import docker_task_handler

    docker_task_handler.run_docker_container = run_container
    pipeline_root.mkdir(parents=True, exist_ok=True)
    # The tasks run as uid 1000 and write their outputs under the pipeline root.
    os.chmod(pipeline_root, 0o777)
    mounts = []
    for key in READ_PATHS + WRITE_PATHS:
        value = params.get(key)
        if isinstance(value, str) and value.startswith("/"):
            if key in WRITE_PATHS:
                Path(value).mkdir(parents=True, exist_ok=True)
                os.chmod(value, 0o777)
            elif not os.path.exists(value):
                continue
            else:
                check_readable(Path(value), key)
            mounts.append(
                Mount(target=value, source=value, type="bind", read_only=key in READ_PATHS)
            )
    environment = {k: os.environ[k] for k in passed_env() if os.environ.get(k)}
    environment["HF_HUB_OFFLINE"] = "0" if needs_network(params) else "1"
    return local.DockerRunner(
        mounts=mounts,
        environment=environment,
        network_mode="host" if needs_network(params) else "none",
    )


def check_readable(path: Path, key: str) -> None:
    """The tasks read mounted inputs as uid 1000: a file only its owner (another user) may read
    would fail inside the container with a confusing 'no such file'."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    for file in files:
        info = file.stat()
        if info.st_uid != 1000 and not info.st_mode & 0o004:
            raise RuntimeError(
                f"{key}: {file} is not readable by the containers' user (uid 1000): "
                f"chmod a+r {file}"
            )


def base_image() -> str:
    """The CPU image the components run in."""
    from components import images

    return images.BASE_IMAGE


def hand_back(api, pipeline_root: Path, image: str) -> None:
    """Make what the tasks wrote (as uid 1000) removable by this user, as a container of the
    same image, when this user is neither root nor uid 1000."""
    if os.getuid() in (0, 1000):
        return
    api.containers.run(
        image,
        ["chmod", "-R", "a+rwX", str(pipeline_root)],
        volumes={str(pipeline_root): {"bind": str(pipeline_root), "mode": "rw"}},
        network_mode="none",
        remove=True,
    )
