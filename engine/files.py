"""Atomic writes: a file the user made is either the old good one or the new good one, never half of each; a folder
copied whole or not at all. And for caches: the short digest that names a file after what it was made from, and
keeping a cache folder within a size by deleting what was used least recently."""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path

from engine.errors import UserFacingError


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path beside `target`; renamed onto `target` only if the block succeeds."""
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise _disk_error(target, exc) from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp makes the file private (0600); users expect what they save to get the usual permissions.
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, target)
    except OSError as exc:
        raise _disk_error(target, exc) from exc
    finally:
        tmp.unlink(missing_ok=True)


def _read_umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it: done once, at import, before worker threads exist
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def write_atomically(target: str | os.PathLike, write: Callable[[Path], None]) -> None:
    with atomic_path(target) as tmp:
        write(tmp)


def write_text_atomically(target: str | os.PathLike, text: str) -> None:
    write_atomically(target, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def save_picture(pixels, target: str | os.PathLike) -> None:
    """An RGB uint8 array (HxWx3) saved atomically: as PNG, unless the suffix names another format Pillow writes
    (.jpg, .webp)."""
    from PIL import Image

    kind = Image.registered_extensions().get(Path(target).suffix.lower(), "PNG")
    write_atomically(target, lambda tmp: Image.fromarray(pixels).save(tmp, format=kind))


def copy_folder(source: str | Path, target: str | Path, what: str) -> str:
    """Copy `source` to the new folder `target` whole or not at all: copied beside it, then renamed into place."""
    source, target = Path(source), Path(target)
    if target.exists():
        raise UserFacingError(f"{target} already exists.", "Choose another folder or delete the old copy first.")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            shutil.copytree(source, staging, dirs_exist_ok=True)
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    except OSError as exc:
        raise UserFacingError(
            f"{what} could not be copied to {target} ({exc.strerror or exc}).",
            "Choose a folder you may write to, on a disk with free space.",
        ) from exc
    return str(target)


def _disk_error(target: Path, exc: OSError) -> UserFacingError:
    if exc.errno == errno.ENOSPC:
        return UserFacingError(f"The disk is full: could not save {target}.", "Free some space and try again.")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return UserFacingError(f"No permission to write {target}.", "Choose a folder you can write to.")
    return UserFacingError(f"Could not save {target}: {exc.strerror or exc}.", "Choose another folder.")


def key_digest(key: dict) -> str:
    """24 hex characters naming a cache file after its key (plain JSON values): any change, another name."""
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]


def mark_used(path: str | os.PathLike) -> None:
    """Note that a cached file was just used, in its access time (set explicitly: many disks never update it).

    Its modification time stays as it is: quick start recognises files by size and modification time.
    """
    with contextlib.suppress(OSError):  # a read-only cache only forgets the order of use
        os.utime(path, ns=(time.time_ns(), os.stat(path).st_mtime_ns))


def delete_least_recently_used(files: Iterable[Path], budget_bytes: int, keep: Collection[Path] = ()) -> list[Path]:
    """Delete the files used least recently (see mark_used) until the rest take at most `budget_bytes`; `keep`
    stays whatever its size. Returns the deleted files; one that cannot be deleted is skipped."""
    entries = []
    for path in files:
        with contextlib.suppress(OSError):  # gone meanwhile: another process pruned it
            stat = path.stat()
            entries.append((stat.st_atime_ns, stat.st_size, path))
    total = sum(size for _used, size, _path in entries)
    deleted = []
    for _used, size, path in sorted(entries):
        if total <= budget_bytes:
            break
        if path in keep:
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            total -= size
            deleted.append(path)
    return deleted
