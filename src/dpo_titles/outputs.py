"""Where the tool may write, and how: nothing a user already has is ever lost.

The one policy every writer of the library goes through:

- **Ours or not.** A folder the tool writes carries a marker, `.dpo-titles-output.json`, listing
  every file it wrote there. A file the tool writes is recorded, with its SHA-256, in the ledger
  `.dpo-titles-files.json` of the folder it sits in. Nothing else counts as the tool's own.
- **Never over what is not ours.** An output path that exists is refused, unless it is an empty
  folder (nothing to lose) or `force` is given and it is one of ours, unchanged: a file whose
  checksum is the one recorded, a folder holding nothing but what its marker lists.
- **Never over an input.** An output that is an input, an ancestor of one, inside an input
  folder, or the current folder or one above it, is refused.
- **The rename is the commit.** Content goes to a hidden temporary name that is unique per
  process (`.NAME.<pid>-<random>.partial`) and is renamed into place only when whole, so a crash
  leaves nothing that looks complete and two writers never mix their rows. Without `force`, an
  output that appeared while the work ran is not replaced.
- **One mode.** Files are created as any other program's (0666 less the umask: 0644 by default),
  folders 0777 less the umask, whatever a library made them with.

Each refusal is a one-line `UserError` that says what to do.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import UserError

MARKER = ".dpo-titles-output.json"
LEDGER = ".dpo-titles-files.json"
PARTIAL = ".partial"
# Files the policy itself keeps; uploads and exports leave them out.
BOOKKEEPING = (MARKER, LEDGER)

_umask_lock = threading.Lock()


def _umask() -> int:
    with _umask_lock:
        mask = os.umask(0)
        os.umask(mask)
    return mask


def _unique_name(target: Path, suffix: str = PARTIAL) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}{suffix}")


def is_bookkeeping(name: str) -> bool:
    """True for the policy's own files and for temporary names: never part of an output."""
    return name in BOOKKEEPING or (name.startswith(".") and name.endswith(PARTIAL))


def sha256_file(path: Path) -> str:
    """The file's SHA-256, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_private_file(path: Path, data: bytes) -> None:
    """Replace `path` (a file of the tool's own bookkeeping or cache) with `data` atomically."""
    tmp = _unique_name(path, ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _normalise_modes(root: Path) -> None:
    """Give every file and folder under `root` the mode a plain program would: some writers
    (temporary files, safetensors) create 0600 files that other processes cannot read."""
    mask = _umask()
    file_mode, dir_mode = 0o666 & ~mask, 0o777 & ~mask
    if root.is_dir() and not root.is_symlink():
        os.chmod(root, dir_mode)
        for base, dirs, files in os.walk(root):
            for d in dirs:
                path = os.path.join(base, d)
                if not os.path.islink(path):
                    os.chmod(path, dir_mode)
            for f in files:
                path = os.path.join(base, f)
                if not os.path.islink(path):
                    os.chmod(path, file_mode)
    elif root.is_file():
        os.chmod(root, file_mode)


# --------------------------------------------------------------------------------------------
# What is ours
# --------------------------------------------------------------------------------------------


def _folder_entries(folder: Path) -> list[str]:
    """Every file under `folder` (relative, POSIX), the policy's own files left out."""
    out = []
    for path in folder.rglob("*"):
        if path.is_dir() and not path.is_symlink():
            continue
        rel = path.relative_to(folder).as_posix()
        if not is_bookkeeping(path.name):
            out.append(rel)
    return sorted(out)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _why_not_our_folder(folder: Path) -> str | None:
    """None if `folder` is an output of the tool holding nothing else; else the reason."""
    marker = _read_json(folder / MARKER)
    if not isinstance(marker, dict) or not isinstance(marker.get("files"), list):
        return "it was not written by dpo-titles"
    listed = set(marker["files"])
    foreign = [e for e in _folder_entries(folder) if e not in listed]
    if foreign:
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        return f"it holds {foreign[0]}{more}, which dpo-titles did not write there"
    return None


def _ledger(folder: Path) -> dict:
    data = _read_json(folder / LEDGER)
    files = data.get("files") if isinstance(data, dict) else None
    return files if isinstance(files, dict) else {}


def _why_not_our_file(path: Path) -> str | None:
    recorded = _ledger(path.parent).get(path.name)
    if not isinstance(recorded, dict) or "sha256" not in recorded:
        return "it was not written by dpo-titles"
    if path.is_symlink() or not path.is_file() or sha256_file(path) != recorded["sha256"]:
        return "it was changed after dpo-titles wrote it"
    return None


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An advisory lock on a folder, so two writers update its ledger one after the other."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _record_file(path: Path) -> None:
    """Add the file just written to its folder's ledger (name and checksum)."""
    folder = path.parent
    with _locked(folder):
        ledger_path = folder / LEDGER
        found = _read_json(ledger_path) if os.path.lexists(ledger_path) else {"written_by": ""}
        if not isinstance(found, dict) or found.get("written_by") not in ("", "dpo-titles"):
            return  # a file of that name that is not our ledger is left alone, unrecorded
        files = _ledger(folder)
        files[path.name] = {"sha256": sha256_file(path), "size": path.stat().st_size}
        body = {"written_by": "dpo-titles", "files": dict(sorted(files.items()))}
        write_private_file(ledger_path, (json.dumps(body, indent=1) + "\n").encode("utf-8"))


def _write_marker(folder: Path, kind: str) -> None:
    from . import __version__

    marker = {
        "written_by": "dpo-titles",
        "version": __version__,
        "kind": kind,
        "files": _folder_entries(folder),
    }
    (folder / MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------------------------
# Checks before any work
# --------------------------------------------------------------------------------------------


def _resolved(path: str | os.PathLike) -> Path:
    return Path(os.path.realpath(os.path.abspath(os.fspath(path))))


def _within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


# Room left in a file name for the temporary name's additions (`.`, pid, random, suffix).
_MAX_NAME_BYTES = 200


def check_output(
    path: str | os.PathLike,
    *,
    inputs: Iterable[str | os.PathLike | None] = (),
    force: bool = False,
    what: str = "output",
    folder: bool | None = None,
) -> None:
    """Refuse `path` as an output before any work starts; see the module's policy. `folder`
    says whether the output is a folder (True) or a file (False)."""
    text = os.fspath(path)
    if not text or not text.strip():
        raise UserError(f"the {what} path is empty: name a file or folder to write")
    target = Path(text)
    if target.name in ("", ".", "..") or text.rstrip("/").endswith(("/.", "/..")):
        raise UserError(f"{what} {text!r} names a folder by '.' or '..': name a new folder")
    if is_bookkeeping(target.name):
        raise UserError(f"{what} {text}: that name is dpo-titles' own bookkeeping; name another")
    if len(target.name.encode("utf-8")) > _MAX_NAME_BYTES:
        raise UserError(f"{what} name is longer than {_MAX_NAME_BYTES} bytes: shorten it")
    where = _resolved(target)
    _check_folder_path(where, text, what)
    if _within(_resolved(os.getcwd()), where):
        raise UserError(
            f"{what} {text} is the current folder or one above it: name a new file or folder"
        )
    for given in inputs:
        if not given or "://" in os.fspath(given):
            continue
        source = Path(given)
        if not os.path.lexists(source):
            continue
        real = _resolved(source)
        if real == where:
            raise UserError(f"{what} {text} is the input {given}: write somewhere else")
        if _within(real, where):
            raise UserError(f"{what} {text} holds the input {given}: write somewhere else")
        if real.is_dir() and _within(where, real):
            raise UserError(
                f"{what} {text} is inside the input folder {given}: write somewhere else"
            )
    for parent in where.parents:
        if (parent / MARKER).is_file():
            raise UserError(
                f"{what} {text} is inside {parent}, an output folder of dpo-titles: write "
                "somewhere else (it would no longer be that output)"
            )
    _check_replaceable(target, force, what)
    if folder is not None and os.path.lexists(target):
        if folder and not target.is_dir():
            raise UserError(f"{what} {text} is a file, and this writes a folder: name another")
        if not folder and target.is_dir():
            raise UserError(f"{what} {text} is a folder, and this writes a file: name another")


def _check_folder_path(where: Path, text: str, what: str) -> None:
    """The folders on the way to an output must be folders, and the nearest one that exists
    writable, so that a run does not do its work only to fail at the end."""
    for parent in where.parents:
        if os.path.lexists(parent):
            if not parent.is_dir():
                raise UserError(f"{what} {text}: {parent} is a file, not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise UserError(f"{what} {text}: no permission to write in {parent}")
            return


def _check_replaceable(target: Path, force: bool, what: str) -> None:
    if not os.path.lexists(target):
        return
    if target.is_symlink():
        raise UserError(f"{what} {target} is a symbolic link: name a new file or folder")
    if target.is_dir():
        try:
            empty = next(target.iterdir(), None) is None
        except OSError as exc:
            raise UserError(f"cannot read {what} folder {target}: {exc.strerror}") from None
        if empty:
            return
        why = _why_not_our_folder(target)
    elif target.is_file():
        why = _why_not_our_file(target)
    else:
        raise UserError(f"{what} {target} exists and is not a file or folder: name another")
    if why:
        raise UserError(
            f"{what} {target} already exists and {why}: choose another path or move it away"
        )
    if not force:
        raise UserError(
            f"{what} {target} already exists (an earlier output of dpo-titles): pass --force "
            "to replace it, or choose another path"
        )


def check_companion(path: str | os.PathLike, what: str) -> None:
    """A file written beside an output (its failures file) may replace only an earlier one of
    ours; anything else at that name is refused before any work starts."""
    target = Path(path)
    if not os.path.lexists(target):
        return
    why = (
        _why_not_our_file(target)
        if target.is_file() and not target.is_symlink()
        else "it is not a plain file"
    )
    if why:
        raise UserError(
            f"{what} {target} already exists and {why}: choose another output path or move it away"
        )


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _appeared(target: Path) -> UserError:
    return UserError(
        f"{target} appeared while this run was writing it (another run?): nothing of this run "
        "was kept; pass --force to replace it, or choose another path"
    )


def _make_parent(target: Path) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError(f"cannot write {target}: part of its folder path is a file") from None
    except PermissionError:
        raise UserError(f"cannot write {target}: no permission to create its folder") from None


@contextlib.contextmanager
def atomic_file(
    path: str | os.PathLike, *, force: bool = False, what: str = "output", record: bool = True
) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write a file to; commit it to `path` only if the
    block succeeds, and only over nothing or (with `force`) a file of ours. The file is recorded
    in its folder's ledger, unless `record` is false (an exact copy of something, a download)."""
    target = Path(path)
    _check_replaceable(target, force, what)
    _make_parent(target)
    tmp = _unique_name(target)
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except PermissionError:
        raise UserError(f"cannot write {target}: no permission in {target.parent}") from None
    try:
        yield tmp
        _normalise_modes(tmp)
        with _locked(target.parent):
            if os.path.lexists(target):
                if not force:
                    raise _appeared(target)
                _check_replaceable(target, force, what)
                os.replace(tmp, target)
            else:
                _link_or_rename(tmp, target)
        if record and not _inside_partial(target):
            _record_file(target)  # a file of a folder being written is listed by its marker
    finally:
        tmp.unlink(missing_ok=True)


def _inside_partial(target: Path) -> bool:
    return any(p.name.startswith(".") and p.name.endswith(PARTIAL) for p in target.parents)


def _link_or_rename(tmp: Path, target: Path) -> None:
    """Put `tmp` at `target` only if nothing is there (a hard link fails on an existing name)."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise _appeared(target) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        # A filesystem without hard links: the folder lock above keeps our own writers apart.
        if os.path.lexists(target):
            raise _appeared(target) from None
        os.replace(tmp, target)


@contextlib.contextmanager
def atomic_dir(
    path: str | os.PathLike,
    *,
    force: bool = False,
    kind: str | None = "output",
    what: str = "output",
) -> Iterator[Path]:
    """Yield a new temporary folder beside `path`; when the block succeeds, mark it as ours (as
    `kind`; None leaves an exact copy of something, a download, unmarked) and rename it into
    place over nothing, an empty folder, or (with `force`) a folder of ours."""
    target = Path(path)
    _check_replaceable(target, force, what)
    _make_parent(target)
    tmp = _unique_name(target)
    try:
        os.mkdir(tmp, 0o777)
    except PermissionError:
        raise UserError(f"cannot write {target}: no permission in {target.parent}") from None
    aside: Path | None = None
    try:
        yield tmp
        if kind is not None:
            _write_marker(tmp, kind)
        _normalise_modes(tmp)
        if os.path.lexists(target):
            if target.is_dir() and next(target.iterdir(), None) is None:
                pass  # an empty folder is replaced by the rename itself
            elif not force:
                raise _appeared(target)
            else:
                _check_replaceable(target, force, what)
                aside = _unique_name(target, ".old")
                os.rename(target, aside)
        try:
            os.rename(tmp, target)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise _appeared(target) from None
            raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if aside is not None:
            if not os.path.lexists(target):  # the new folder never arrived: put the old back
                os.rename(aside, target)
            elif aside.is_dir():
                shutil.rmtree(aside, ignore_errors=True)
            else:
                aside.unlink(missing_ok=True)


def check_folder_claim(path: str | os.PathLike, kind: str, what: str = "folder") -> None:
    """Refuse `path` as a working folder of the tool's own (checkpoints) if it is not a folder,
    or holds files the tool did not put there; before any work starts."""
    folder = Path(path)
    if os.path.lexists(folder) and not folder.is_dir():
        raise UserError(f"{what} {folder} exists and is not a folder: name a folder")
    if folder.is_dir() and next(folder.iterdir(), None) is not None:
        marker = _read_json(folder / MARKER)
        if not isinstance(marker, dict) or marker.get("kind") != kind:
            raise UserError(
                f"{what} {folder} holds files that dpo-titles did not put there: name an empty "
                "or new folder"
            )


def claim_folder(path: str | os.PathLike, kind: str, what: str = "folder") -> Path:
    """Use `path` as a working folder of the tool's own (checkpoints), creating it and marking
    it as `kind` if needed; see `check_folder_claim` for what is refused."""
    check_folder_claim(path, kind, what)
    folder = Path(path)
    if (folder / MARKER).is_file():
        return folder
    _make_parent(folder)
    folder.mkdir(exist_ok=True)
    marker = {"written_by": "dpo-titles", "kind": kind, "files": []}
    write_private_file(folder / MARKER, (json.dumps(marker) + "\n").encode("utf-8"))
    return folder


def remove_output(path: str | os.PathLike) -> bool:
    """Remove a file of ours (recorded and unchanged), as when a run no longer has a failures
    file to write; anything else is left alone. True if something was removed."""
    target = Path(path)
    if target.is_file() and not target.is_symlink() and _why_not_our_file(target) is None:
        target.unlink()
        with _locked(target.parent):
            files = _ledger(target.parent)
            if files.pop(target.name, None) is not None:
                body = {"written_by": "dpo-titles", "files": files}
                write_private_file(
                    target.parent / LEDGER, (json.dumps(body, indent=1) + "\n").encode("utf-8")
                )
        return True
    return False


def safe_child(root: Path, relative: str, label: str) -> Path:
    """`root / relative` for a name that came from elsewhere (an object name, an archive
    member); refused unless it stays inside `root`."""
    parts = relative.split("/")
    if (
        not relative
        or relative.startswith("/")
        or "\\" in relative
        or "\0" in relative
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise UserError(
            f"{label} has a name that would not stay inside {root} ({relative!r}): refused; "
            "rename the object"
        )
    child = root.joinpath(*parts)
    if not _within(_resolved(child), _resolved(root)):
        raise UserError(f"{label} would be written outside {root}: refused")
    return child
