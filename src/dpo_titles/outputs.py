"""Where the tool may write, and how: nothing a user already has is ever lost.

The one policy every writer of the library goes through:

- **Ours or not.** A folder the tool writes carries a marker, `.dpo-titles-output.json`, listing
  every file it wrote there with its SHA-256. A file the tool writes is recorded, with its
  SHA-256, in the ledger `.dpo-titles-files.json` of the folder it sits in. Nothing else counts
  as the tool's own.
- **Never over what is not ours.** An output path that exists is refused, unless it is an empty
  folder (nothing to lose) or `force` is given and it is one of ours, unchanged: a file whose
  checksum is the one recorded, a folder holding exactly the files its marker lists, each with
  its recorded checksum.
- **Never over an input.** An output that is an input, an ancestor of one, inside an input
  folder or inside another output folder, or the current folder or one above it, is refused;
  so is a working folder (checkpoints) in any of those places.
- **The rename is the commit.** Content goes to a hidden temporary name that is unique per
  process (`.NAME.<pid>-<random>.partial`) and is renamed into place only when whole, so a crash
  leaves nothing that looks complete and two writers never mix their rows. A folder of ours is
  replaced by an atomic exchange (`renameat2`), so the old one stays in place until the new one
  is. Without `force`, an output that appeared while the work ran is not replaced.
- **One mode.** Files are created as any other program's (0666 less the umask: 0644 by default),
  folders 0777 less the umask, whatever a library made them with.

Each refusal is a one-line `UserError` that says what to do.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import UserError

log = logging.getLogger(__name__)

MARKER = ".dpo-titles-output.json"
LEDGER = ".dpo-titles-files.json"
PARTIAL = ".partial"
# Files the policy itself keeps; uploads and exports leave them out.
BOOKKEEPING = (MARKER, LEDGER)
# Room left in a file name for the temporary name's additions (`.`, pid, random, suffix), and
# the longest path any filesystem here takes.
_MAX_NAME_BYTES = 200
_MAX_PATH_BYTES = 3800

_umask_lock = threading.Lock()


def _umask() -> int:
    with _umask_lock:
        mask = os.umask(0)
        os.umask(mask)
    return mask


def _unique_name(target: Path, suffix: str = PARTIAL) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}{suffix}")


_TEMPORARY = re.compile(r"^\..+\.\d+-[0-9a-f]{8}\.(partial|old|tmp)$")


def is_bookkeeping(name: str) -> bool:
    """True for the policy's own files and temporary names: never part of an output."""
    return name in BOOKKEEPING or bool(_TEMPORARY.match(name))


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


def normalise_modes(root: Path) -> None:
    """Give every file and folder under `root` the mode a plain program would: some writers
    (temporary files, safetensors, torch.save) create 0600 files other processes cannot read."""
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


@contextlib.contextmanager
def _io_errors(target: Path) -> Iterator[None]:
    """A filesystem that refuses the commit (read-only, immutable, a mount point, full) is a
    one-line error, not a traceback."""
    try:
        yield
    except OSError as exc:
        if isinstance(exc, FileExistsError):
            raise
        raise UserError(f"cannot write {target}: {exc.strerror or exc}") from None


# --------------------------------------------------------------------------------------------
# What is ours
# --------------------------------------------------------------------------------------------


def _folder_files(folder: Path) -> list[str]:
    """Every file under `folder` (relative, POSIX), but the folder's own marker."""
    out = []
    for path in folder.rglob("*"):
        if path.is_dir() and not path.is_symlink():
            continue
        rel = path.relative_to(folder).as_posix()
        if rel != MARKER:
            out.append(rel)
    return sorted(out)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None


def _why_not_our_folder(folder: Path) -> str | None:
    """None if `folder` is an output of the tool holding exactly what it wrote; else why."""
    marker = _read_json(folder / MARKER)
    files = marker.get("files") if isinstance(marker, dict) else None
    if not isinstance(files, dict):
        return "it was not written by dpo-titles"
    present = _folder_files(folder)
    foreign = [f for f in present if f not in files]
    if foreign:
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        return f"it holds {foreign[0]}{more}, which dpo-titles did not write there"
    for name, recorded in files.items():
        path = folder / name
        if name not in present or path.is_symlink() or sha256_file(path) != recorded:
            return f"{name} in it was changed after dpo-titles wrote it"
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


def _update_ledger(folder: Path, change) -> None:
    """Apply `change` to the folder's ledger (a dict of name -> record) under its lock. A file
    of that name that is not our ledger is left alone; a ledger that cannot be written is a
    warning (the output stands; --force will not replace it later)."""
    with _locked(folder):
        ledger_path = folder / LEDGER
        found = _read_json(ledger_path) if os.path.lexists(ledger_path) else {"written_by": ""}
        if not isinstance(found, dict) or found.get("written_by") not in ("", "dpo-titles"):
            return
        files = _ledger(folder)
        change(files)
        body = {"written_by": "dpo-titles", "files": dict(sorted(files.items()))}
        try:
            write_private_file(ledger_path, (json.dumps(body, indent=1) + "\n").encode("utf-8"))
        except OSError as exc:
            log.warning("could not record in %s (%s)", ledger_path, exc.strerror or exc)


def _record_file(path: Path) -> None:
    """Add the file just written to its folder's ledger (name and checksum)."""
    record = {"sha256": sha256_file(path), "size": path.stat().st_size}
    _update_ledger(path.parent, lambda files: files.__setitem__(path.name, record))


def _write_marker(folder: Path, kind: str) -> None:
    from . import __version__

    marker = {
        "written_by": "dpo-titles",
        "version": __version__,
        "kind": kind,
        "files": {name: sha256_file(folder / name) for name in _folder_files(folder)},
    }
    (folder / MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------------------------
# Checks before any work
# --------------------------------------------------------------------------------------------


def _resolved(path: str | os.PathLike) -> Path:
    return Path(os.path.realpath(os.path.abspath(os.fspath(path))))


def _within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def _check_name(text: str, what: str) -> Path:
    """The path as given: non-empty, not `.`/`..`, UTF-8, of a length any filesystem takes."""
    if not text or not text.strip():
        raise UserError(f"the {what} path is empty: name a file or folder to write")
    target = Path(text)
    if target.name in ("", ".", "..") or text.rstrip("/").endswith(("/.", "/..")):
        raise UserError(f"{what} {text!r} names a folder by '.' or '..': name a new folder")
    try:
        encoded = os.path.abspath(text).encode("utf-8")
    except UnicodeEncodeError:
        raise UserError(f"{what} {text!r} is not valid UTF-8: rename it") from None
    if is_bookkeeping(target.name):
        raise UserError(f"{what} {text}: that name is dpo-titles' own bookkeeping; name another")
    if any(len(part.encode("utf-8")) > _MAX_NAME_BYTES for part in target.parts):
        raise UserError(f"{what}: a name in {text[:60]!r}... is over {_MAX_NAME_BYTES} bytes")
    if len(encoded) > _MAX_PATH_BYTES:
        raise UserError(f"{what} {text[:60]!r}... is over {_MAX_PATH_BYTES} bytes: shorten it")
    return target


def _check_place(
    text: str, what: str, inputs: Iterable, workdirs: Iterable = (), own_kind: str | None = None
) -> Path:
    """Where an output or working folder goes: not the current folder or above, no input in or
    around it, not inside an input folder or another output folder, and its folders writable.
    `workdirs` are paths the run will create (they are compared even before they exist)."""
    where = _resolved(text)
    if _within(_resolved(os.getcwd()), where):
        raise UserError(
            f"{what} {text} is the current folder or one above it: name a new file or folder"
        )
    given = [(g, True) for g in inputs if g] + [(g, False) for g in workdirs if g]
    for source, must_exist in given:
        if "://" in os.fspath(source) or (must_exist and not os.path.lexists(source)):
            continue
        real = _resolved(source)
        if real == where:
            raise UserError(f"{what} {text} is the input {source}: write somewhere else")
        if _within(real, where):
            raise UserError(f"{what} {text} holds the input {source}: write somewhere else")
        if (real.is_dir() or not must_exist) and _within(where, real):
            raise UserError(
                f"{what} {text} is inside the input folder {source}: write somewhere else"
            )
    for parent in where.parents:
        if (parent / MARKER).is_file():
            raise UserError(
                f"{what} {text} is inside {parent}, an output folder of dpo-titles: write "
                "somewhere else (it would no longer be that output)"
            )
    for parent in where.parents:
        if os.path.lexists(parent):
            if not parent.is_dir():
                raise UserError(f"{what} {text}: {parent} is a file, not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise UserError(f"{what} {text}: no permission to write in {parent}")
            break
    if os.path.ismount(where):
        raise UserError(f"{what} {text} is a mount point: name a folder inside it")
    return where


def check_output(
    path: str | os.PathLike,
    *,
    inputs: Iterable[str | os.PathLike | None] = (),
    workdirs: Iterable[str | os.PathLike | None] = (),
    force: bool = False,
    what: str = "output",
    folder: bool | None = None,
) -> None:
    """Refuse `path` as an output before any work starts; see the module's policy. `folder`
    says whether the output is a folder (True) or a file (False); `workdirs` are folders the
    run will write too (a checkpoint folder)."""
    text = os.fspath(path)
    target = _check_name(text, what)
    _check_place(text, what, inputs, workdirs)
    _check_replaceable(target, force, what)
    if folder is not None and os.path.lexists(target):
        if folder and not target.is_dir():
            raise UserError(f"{what} {text} is a file, and this writes a folder: name another")
        if not folder and target.is_dir():
            raise UserError(f"{what} {text} is a folder, and this writes a file: name another")


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


def check_companion(
    path: str | os.PathLike, what: str, inputs: Iterable[str | os.PathLike | None] = ()
) -> None:
    """A file written beside an output (its failures file) may replace only an earlier one of
    ours, and never an input; anything else at that name is refused before any work starts."""
    target = Path(path)
    where = _resolved(target)
    for source in inputs:
        if source and "://" not in os.fspath(source) and _resolved(source) == where:
            raise UserError(f"{what} {target} is the input {source}: choose another output")
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
    except OSError as exc:
        raise UserError(f"cannot create the folder of {target}: {exc.strerror}") from None


def _inside_partial(target: Path) -> bool:
    return any(_TEMPORARY.match(p.name) for p in target.parents)


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
    with _io_errors(target):
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        normalise_modes(tmp)
        with _locked(target.parent), _io_errors(target):
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


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2); False where the system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    result = renameat2(
        _AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), ctypes.c_uint(_RENAME_EXCHANGE)
    )
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(
    path: str | os.PathLike,
    *,
    force: bool = False,
    kind: str | None = "output",
    what: str = "output",
) -> Iterator[Path]:
    """Yield a new temporary folder beside `path`; when the block succeeds, mark it as ours (as
    `kind`; None leaves an exact copy of something, a download, unmarked) and put it in place
    of nothing, an empty folder, or (with `force`) a folder of ours, which is swapped out."""
    target = Path(path)
    _check_replaceable(target, force, what)
    _make_parent(target)
    tmp = _unique_name(target)
    with _io_errors(target):
        os.mkdir(tmp, 0o777)
    aside: Path | None = None
    try:
        yield tmp
        if kind is not None:
            _write_marker(tmp, kind)
        normalise_modes(tmp)
        with _io_errors(target):
            if os.path.lexists(target) and not (
                target.is_dir() and next(target.iterdir(), None) is None
            ):
                if not force:
                    raise _appeared(target)
                _check_replaceable(target, force, what)
                if _exchange(tmp, target):
                    return  # the old folder is now at `tmp`, removed below
                aside = _unique_name(target, ".old")
                os.rename(target, aside)
            try:
                os.rename(tmp, target)  # replaces an empty folder, or nothing
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                    raise _appeared(target) from None
                raise
    finally:
        if os.path.lexists(tmp):
            _remove(tmp)
        if aside is not None:
            if not os.path.lexists(target):  # the new folder never arrived: put the old back
                os.rename(aside, target)
            else:
                _remove(aside)


def make_scratch(path: str | os.PathLike) -> Path:
    """A new hidden working folder beside `path`, named as a temporary (so nothing takes it for
    an output, and uploads leave it out); the caller removes it."""
    target = Path(path)
    _make_parent(target)
    scratch = _unique_name(target)
    with _io_errors(target):
        os.mkdir(scratch, 0o777)
    return scratch


_TRAINER_CHECKPOINT = re.compile(r"^checkpoint-\d+$")


def _foreign_in_workdir(folder: Path, allowed: Iterable[str]) -> list[str]:
    names = set(allowed) | {MARKER}
    return sorted(
        p.name
        for p in folder.iterdir()
        if p.name not in names and not (_TRAINER_CHECKPOINT.match(p.name) and p.is_dir())
    )


def check_workdir(
    path: str | os.PathLike,
    kind: str,
    *,
    allowed: Iterable[str] = (),
    inputs: Iterable[str | os.PathLike | None] = (),
    what: str = "folder",
) -> None:
    """Refuse `path` as a working folder of the tool's own (checkpoints) before any work: it
    must be placed as an output would be, and hold nothing but its marker of `kind`, the names
    in `allowed` and the trainer's `checkpoint-<step>` folders."""
    text = os.fspath(path)
    folder = _check_name(text, what)
    _check_place(text, what, inputs)
    if os.path.lexists(folder) and (folder.is_symlink() or not folder.is_dir()):
        raise UserError(f"{what} {folder} exists and is not a folder: name a folder")
    if folder.is_dir() and next(folder.iterdir(), None) is not None:
        marker = _read_json(folder / MARKER)
        foreign = _foreign_in_workdir(folder, allowed)
        if not isinstance(marker, dict) or marker.get("kind") != kind or foreign:
            shown = f" ({foreign[0]})" if foreign else ""
            raise UserError(
                f"{what} {folder} holds files that dpo-titles did not put there{shown}: name an "
                "empty or new folder"
            )


def claim_workdir(
    path: str | os.PathLike, kind: str, *, allowed: Iterable[str] = (), what: str = "folder"
) -> Path:
    """Check `path` with `check_workdir`, then create and mark it as a working folder of `kind`
    if it is not one yet."""
    check_workdir(path, kind, allowed=allowed, what=what)
    folder = Path(path)
    if (folder / MARKER).is_file():
        return folder
    _make_parent(folder)
    with _io_errors(folder):
        folder.mkdir(exist_ok=True)
        marker = {"written_by": "dpo-titles", "kind": kind, "files": {}}
        write_private_file(folder / MARKER, (json.dumps(marker) + "\n").encode("utf-8"))
    return folder


def clear_workdir(folder: Path) -> None:
    """Remove the trainer's `checkpoint-<step>` folders from a working folder of ours; nothing
    else in it is touched."""
    for child in folder.glob("checkpoint-*"):
        if _TRAINER_CHECKPOINT.match(child.name) and child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)


def remove_output(path: str | os.PathLike) -> bool:
    """Remove a file of ours (recorded and unchanged), as when a run no longer has a failures
    file to write; anything else is left alone. True if something was removed."""
    target = Path(path)
    if target.is_file() and not target.is_symlink() and _why_not_our_file(target) is None:
        target.unlink()
        _update_ledger(target.parent, lambda files: files.pop(target.name, None))
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
