"""Sorting classified photos into one folder per top-1 class, for a user who wants their pictures in order.

Each photo is copied (or moved) under its own name and never overwrites anything; a photo already sorted there is
left as it is, so sorting again after a cancel or a full disk picks up where it stopped. Photos whose top-1
confidence is below the user's threshold go into one folder of their own; files that could not be read stay where
they are.
"""
from __future__ import annotations

import errno
import filecmp
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import UserFacingError
from engine.events import CancelToken, EventSink, Progress, ignore_events
from engine.results import ImageResult

UNSURE_FOLDER = "_unsure"  # the underscore keeps it apart from the class folders, and first in a file manager
MAX_FOLDER_NAME = 120
_NOT_IN_FILE_NAMES = re.compile(r'[<>:"/\\|?*\x00-\x1f]')  # what Windows, macOS or Linux refuse in a name
_WINDOWS_DEVICE_NAMES = {"CON", "PRN", "AUX", "NUL"} | {f"{port}{n}" for port in ("COM", "LPT") for n in range(1, 10)}
_DISK_ERRORS = {errno.ENOSPC, errno.EROFS, getattr(errno, "EDQUOT", errno.ENOSPC)}


@dataclass(frozen=True)
class SortOptions:
    destination: str
    min_confidence: float = 0.0  # 0..1: photos whose top-1 confidence is below it go into UNSURE_FOLDER
    move: bool = False  # move the files rather than copy them


@dataclass
class SortReport:
    """What a sort did, counted as it goes: a cancelled sort's report says how far it got."""

    options: SortOptions
    into_classes: int = 0
    unsure: int = 0
    already_there: int = 0
    unreadable: int = 0  # classifying them failed: they stay where they are
    failures: list[tuple[str, str]] = field(default_factory=list)  # (path, why): not sorted, for this reason
    folders: set[str] = field(default_factory=set)  # the class folders photos went into
    moved: dict[str, str] = field(default_factory=dict)  # old path -> new path of each photo a move took away
    cancelled: bool = False

    def summary(self) -> list[str]:
        """Sentences for the user: what went where, then what did not."""
        options = self.options
        verb = "Moved" if options.move else "Copied"
        if not self.unsure:
            folders = _count(len(self.folders), "class folder")
            lines = [f"{verb} {_count(self.into_classes, 'photo')} into {folders} in {options.destination}."]
        else:
            where = _where(self.into_classes, len(self.folders), self.unsure, options.min_confidence)
            placed = _count(self.into_classes + self.unsure, "photo")
            lines = [f"{verb} {placed} into {options.destination}: {', '.join(where)}."]
        if self.cancelled:
            lines[0] = "Stopped. " + lines[0]
        if self.already_there:
            was = "was" if self.already_there == 1 else "were"
            lines.append(f"{_count(self.already_there, 'photo')} {was} already there.")
        if self.unreadable:
            lines.append(_unreadable(self.unreadable))
        if self.failures:
            path, why = self.failures[0]
            more = f" (and {len(self.failures) - 1:,} more)" if len(self.failures) > 1 else ""
            lines.append(f"{_count(len(self.failures), 'photo')} could not be sorted: {path}: {why}{more}.")
        return lines


def describe_plan(results: Sequence[ImageResult], options: SortOptions) -> str:
    """What sorting `results` will do, before anything is written: the window says it as the user sets the
    threshold. Photos already sorted there are counted as to be copied: only the sort itself looks."""
    readable = [result.top[0] for result in results if result.error is None and result.top]
    sure = [top.label for top in readable if top.prob >= options.min_confidence]
    folders = len({class_folder_name(label) for label in set(sure)})
    where = _where(len(sure), folders, len(readable) - len(sure), options.min_confidence)
    verb = "moved" if options.move else "copied"
    text = f"{_count(len(readable), 'photo')} will be {verb}" + (f": {', '.join(where)}." if where else ".")
    if len(readable) < len(results):
        text += " " + _unreadable(len(results) - len(readable))
    return text


def _where(into_classes: int, folders: int, unsure: int, min_confidence: float) -> list[str]:
    """Where photos go, as "4 into 3 class folders" and "2 below 50 % confidence into _unsure", leaving out a 0."""
    where = [f"{into_classes:,} into {_count(folders, 'class folder')}"] if into_classes else []
    if unsure:
        where.append(f"{unsure:,} below {min_confidence * 100:g} % confidence into {UNSURE_FOLDER}")
    return where


def _unreadable(files: int) -> str:
    stays = "stays where it is" if files == 1 else "stay where they are"
    return f"{_count(files, 'file')} that could not be read {stays}."


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def class_folder_name(label: str) -> str:
    """A folder name for a class label that every desktop system accepts: "T-shirt/top" becomes "T-shirt_top"."""
    name = _NOT_IN_FILE_NAMES.sub("_", label).strip()[:MAX_FOLDER_NAME].rstrip(". ")  # Windows drops trailing dots
    if not name.strip("."):
        name = "_unnamed class"
    if name.split(".")[0].upper() in _WINDOWS_DEVICE_NAMES:
        name = "_" + name
    if name.casefold() == UNSURE_FOLDER:
        name += " (class)"
    return name


def prepare_destination(destination: str) -> None:
    """Create the destination folder, or say clearly why it cannot be one: called before any work starts."""
    path = Path(destination)
    if path.exists() and not path.is_dir():
        raise UserFacingError(f"{destination} is a file, not a folder.", "Choose a folder to sort the photos into.")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserFacingError(
            f"Could not create the folder {destination} ({exc.strerror or exc}).",
            "Choose a folder you may write to.",
        ) from exc
    if not os.access(path, os.W_OK):
        raise UserFacingError(f"No permission to write into {destination}.", "Choose a folder you may write to.")


class FolderSorter:
    """Sorts results one at a time, as they come (the command line sorts while it classifies)."""

    def __init__(self, options: SortOptions) -> None:
        self.options = options
        self.report = SortReport(options)

    def sort(self, result: ImageResult) -> str | None:
        """Copy or move `result`'s file into its folder; the file's new path, or None when it was not sorted.

        Raises UserFacingError when the disk is full or read-only: every photo after it would fail too.
        """
        report = self.report
        if result.error is not None or not result.top:
            report.unreadable += 1
            return None
        source = Path(result.path)
        if not source.is_file():
            report.failures.append((result.path, "the file is no longer there"))
            return None
        top = result.top[0]
        unsure = top.prob < self.options.min_confidence
        folder = Path(self.options.destination) / (UNSURE_FOLDER if unsure else class_folder_name(top.label))
        try:
            folder.mkdir(parents=True, exist_ok=True)
            target, already_there = _place_for(source, folder, same_bytes=self.options.move)
            if not already_there:
                (_move if self.options.move else _copy)(source, target)
            elif self.options.move and not os.path.samefile(source, target):
                source.unlink()  # moving means the original goes: its exact copy is there already
        except OSError as exc:
            if exc.errno in _DISK_ERRORS:
                raise self._disk_full(exc) from exc
            report.failures.append((result.path, exc.strerror or str(exc)))
            return None
        if self.options.move and not source.exists():  # not when it was already in its place
            report.moved[result.path] = str(target)
        if already_there:
            report.already_there += 1
        elif unsure:
            report.unsure += 1
        else:
            report.into_classes += 1
            report.folders.add(folder.name)
        return str(target)

    def _disk_full(self, exc: OSError) -> SortStopped:
        report = self.report
        done = report.into_classes + report.unsure
        what = "read-only" if exc.errno == errno.EROFS else "full"
        return SortStopped(
            f"The disk is {what}: sorting into {self.options.destination} stopped after {_count(done, 'photo')}.",
            "Free some space (or choose another folder) and sort again: photos already sorted are skipped.",
            report,
        )


class SortStopped(UserFacingError):
    """The disk filled (or turned read-only) mid-sort; `report` says what was done before, moves included."""

    def __init__(self, message: str, hint: str, report: SortReport) -> None:
        super().__init__(message, hint)
        self.report = report


def sort_into_folders(
    results: Sequence[ImageResult],
    options: SortOptions,
    on_event: EventSink = ignore_events,
    cancel: CancelToken | None = None,
) -> SortReport:
    """Sort every result's file; a cancel stops between two files and the report says how far it got."""
    prepare_destination(options.destination)
    sorter = FolderSorter(options)
    what = "Moving photos" if options.move else "Copying photos"
    on_event(Progress(what, 0, len(results)))
    for done, result in enumerate(results, start=1):
        if cancel is not None and cancel.cancelled:
            sorter.report.cancelled = True
            break
        sorter.sort(result)
        on_event(Progress(what, done, len(results)))
    return sorter.report


def _place_for(source: Path, folder: Path, same_bytes: bool) -> tuple[Path, bool]:
    """Where `source` goes in `folder` under its own name ("IMG_1 (2).jpg" when "IMG_1.jpg" is another photo), and
    whether that photo is there already: the same file, or a copy of it. A copy made by an earlier sort has the
    photo's size and date (copy2 keeps them), which is enough to skip it; a move, which then deletes the original,
    first checks every byte (`same_bytes`)."""
    stem, suffix = source.stem, source.suffix
    for n in range(1, 100_000):
        candidate = folder / (source.name if n == 1 else f"{stem} ({n}){suffix}")
        if not candidate.exists():
            return candidate, False
        if os.path.samefile(source, candidate) or filecmp.cmp(source, candidate, shallow=not same_bytes):
            return candidate, True
    raise OSError(errno.EEXIST, f"too many photos named {source.name} in {folder}")


def _copy(source: Path, target: Path) -> None:
    """Copy beside the target, then rename: a cancel, a crash or a full disk never leaves half a photo."""
    fd, staging = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        shutil.copy2(source, staging)  # copy2 keeps the photo's dates, which photo tools sort by
        os.replace(staging, target)
    finally:
        Path(staging).unlink(missing_ok=True)


def _move(source: Path, target: Path) -> None:
    try:
        os.replace(source, target)  # on one disk: a rename, instant and atomic
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        _copy(source, target)  # another disk: copy whole, and only then remove the original
        source.unlink()


def move_to_class(photo: str | Path, label: str, new_label: str) -> Path:
    """Move a photo filed under the wrong class into the class folder beside its own: `data/cats/x.jpg` (or
    `data/cats/indoor/x.jpg`) into `data/dogs/`, under "x (2).jpg" if another photo has its name. Returns its new
    path. For a user who finds, looking at a model's mistakes, that the model was right and the folder wrong."""
    source = Path(photo)
    if not source.is_file():
        raise UserFacingError(f"{source} is not there any more.", "It was moved or deleted since the evaluation.")
    class_folder = next((folder for folder in source.parents if folder.name == label), None)
    if class_folder is None:
        raise UserFacingError(f"{source.name} is not in a folder named “{label}”.", "Move it by hand.")
    named = class_folder.parent / new_label  # the dataset's own folder for the class, else a name every system takes
    folder = named if named.is_dir() else class_folder.parent / class_folder_name(new_label)
    try:
        folder.mkdir(exist_ok=True)
        target, already_there = _place_for(source, folder, same_bytes=True)
        if already_there:  # every byte the same: the photo is in that class already, once is enough
            source.unlink()
        else:
            _move(source, target)
    except OSError as exc:
        raise UserFacingError(
            f"Could not move {source.name} into {folder} ({exc.strerror or exc}).", "Check that you may write there."
        ) from exc
    return target


def put_back(moved: str | Path, original: str | Path) -> Path:
    """Undo move_to_class: the photo back at its original path, unless another file took that name since."""
    moved, original = Path(moved), Path(original)
    if not moved.is_file():
        raise UserFacingError(f"{moved} is not there any more.", "It was moved or deleted since.")
    if original.exists():
        raise UserFacingError(f"Another file is at {original} now.", "Move the photo back by hand.")
    try:
        original.parent.mkdir(parents=True, exist_ok=True)
        _move(moved, original)
    except OSError as exc:
        raise UserFacingError(
            f"Could not move {moved.name} back to {original.parent} ({exc.strerror or exc}).",
            "Check that you may write there.",
        ) from exc
    return original
