"""Scans a user's folder of class subfolders for the fine-tuning wizard: which classes and images it holds,
which files are unusable and why, and a seeded stratified train/validation split.
"""
from __future__ import annotations

import dataclasses
import os
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from engine.errors import UserFacingError
from engine.events import CancelToken, EventSink, Log, ignore_events
from engine.sort_into_folders import UNSURE_FOLDER
from engine.training.image_check import check_files, relative_name
from engine.training.plan import MIN_IMAGES_PER_CLASS

RECOMMENDED_IMAGES_PER_CLASS = 20
IMBALANCE_THRESHOLD = 3.0
SAMPLES_PER_CLASS = 8
_LITTER = frozenset({"thumbs.db", ".ds_store", "desktop.ini"})  # compared case-folded
_VAL_NAMES = ("val", "valid", "validation")
_SPLIT_WORDS = {"train": "training", "val": "validation", "test": "test"}
_LEFT_OUT_AS = {"duplicate": "copies of images in other folders", "corrupt": "damaged or unreadable",
                "not_image": "not images"}


@dataclass(frozen=True)
class LabeledImage:
    path: str
    label: int  # index into DatasetScan.classes


@dataclass(frozen=True)
class ClassSummary:
    name: str
    images: int  # usable images, all splits together
    samples: tuple[str, ...]  # up to 8 usable image paths spread over the class, for a thumbnail strip


@dataclass(frozen=True)
class DatasetProblem:
    # "corrupt" | "not_image" | "duplicate" | "few_images" | "imbalance" | "empty_folder" | "unknown_class" | "unsure"
    kind: str
    message: str  # one sentence a user understands, naming the fix
    path: str = ""  # the file or folder concerned, "" for dataset-wide problems


@dataclass(frozen=True)
class DatasetScan:
    root: str
    layout: str  # "folders" | "split"
    classes: tuple[str, ...]  # natural, case-insensitive order
    train: tuple[LabeledImage, ...]  # "folders": every usable image; "split": the train folder's
    val: tuple[LabeledImage, ...]  # empty for "folders" (and for "split" without a val folder): split train then
    test: tuple[LabeledImage, ...]
    summaries: tuple[ClassSummary, ...]  # in class order
    problems: tuple[DatasetProblem, ...]
    min_size: tuple[int, int]  # (width, height) by area; (0, 0) when there are no images
    median_size: tuple[int, int]
    max_size: tuple[int, int]
    skipped: int  # files left out: corrupt, not images, duplicates, unknown or dropped classes

    @property
    def num_images(self) -> int:
        return sum(self.counts())

    @property
    def imbalance_ratio(self) -> float:
        counts = self.counts()
        if not counts:
            return 1.0
        return float("inf") if min(counts) == 0 else max(counts) / min(counts)

    @property
    def is_imbalanced(self) -> bool:
        return self.imbalance_ratio >= IMBALANCE_THRESHOLD

    def counts(self) -> tuple[int, ...]:
        return tuple(summary.images for summary in self.summaries)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> DatasetScan:
        known = {field.name for field in dataclasses.fields(cls)}
        fields = {key: value for key, value in raw.items() if key in known}
        fields.update(classes=tuple(raw["classes"]), skipped=int(raw["skipped"]))
        for split in ("train", "val", "test"):
            fields[split] = tuple(LabeledImage(str(item["path"]), int(item["label"])) for item in raw[split])
        fields["summaries"] = tuple(ClassSummary(s["name"], int(s["images"]), tuple(s["samples"]))
                                    for s in raw["summaries"])
        fields["problems"] = tuple(DatasetProblem(**problem) for problem in raw["problems"])
        for size in ("min_size", "median_size", "max_size"):
            fields[size] = tuple(int(value) for value in raw[size])
        return cls(**fields)


@dataclass(frozen=True)
class _Candidate:
    path: str
    split: str  # "train" | "val" | "test"
    name: str  # class folder name


def scan_class_folders(
    root: str | os.PathLike,
    on_event: EventSink = ignore_events,
    cancel: CancelToken | None = None,
    for_training: bool = True,
) -> DatasetScan:
    """Scan `root` (class subfolders, or train/val[/test] folders of class subfolders) and check every file.

    Raises UserFacingError when the folder cannot be trained on at all, engine.errors.Cancelled when cancelled.
    Everything short of that is reported in DatasetScan.problems, one file never stopping the scan. Not
    `for_training` (a model measured on it), one class and one image of a class are enough.
    """
    cancel = cancel or CancelToken()
    root_path = os.path.abspath(os.fsdecode(root))
    folders = _locate_splits(root_path, on_event)
    # Sort into folders puts the photos it was unsure of there: not a class, but photos still to sort by hand.
    names = [name for name in _subfolders(folders["train"]) if name != UNSURE_FOLDER]
    if not names:
        example = os.path.basename(root_path) or "photos"
        raise UserFacingError(f'"{folders["train"]}" holds no class folders.',
                              f"Put each class's images in its own subfolder, e.g. {example}/cats, {example}/dogs.")
    candidates, folder_problems, skipped = _collect(folders, names, root_path, cancel)
    checked = check_files([candidate.path for candidate in candidates], root_path, on_event, cancel)

    # Keep the first copy of identical bytes (by path); later copies would leak between splits or classes.
    kept: dict[bytes, _Candidate] = {}
    per_class: dict[str, list[tuple[_Candidate, tuple[int, int]]]] = {name: [] for name in names}
    file_problems: list[DatasetProblem] = []
    left_out: dict[str, Counter[str]] = {name: Counter() for name in names}  # class -> problem kind -> files
    for candidate, result in zip(candidates, checked):
        if result.problem:
            file_problems.append(DatasetProblem(result.problem, result.message, candidate.path))
            left_out[candidate.name][result.problem] += 1
        elif result.digest in kept:
            file_problems.append(_duplicate(candidate, kept[result.digest], root_path))
            left_out[candidate.name]["duplicate"] += 1
        else:
            kept[result.digest] = candidate
            per_class[candidate.name].append((candidate, result.size))
    skipped += len(file_problems)
    if not kept:
        found = (f"none of the {len(candidates)} files in its class folders is" if candidates
                 else "its class folders hold")
        raise UserFacingError(f'"{root_path}" holds no usable images: {found} a readable image.',
                              "Put JPEG or PNG images in each class folder.")

    is_split = folders["train"] != root_path
    one_is_enough = is_split or not for_training
    classes, class_problems, dropped = _judge_classes(per_class, one_is_enough, folders["train"], root_path)
    if len(classes) < (2 if for_training else 1):
        only = f'only one with enough usable images ("{classes[0]}")' if classes else "none with enough usable images"
        too_few = "".join(f" {problem.message}" for problem in class_problems
                          if problem.kind == "few_images" and os.path.basename(problem.path) not in classes)
        raise UserFacingError(f'Training needs at least two classes; "{root_path}" has {only}.'
                              + too_few + _why_left_out(classes, left_out),
                              "Add a folder of images for each further class next to it, e.g. cats and dogs.")

    splits: dict[str, list[LabeledImage]] = {"train": [], "val": [], "test": []}
    sizes: list[tuple[int, int]] = []
    for label, name in enumerate(classes):
        for candidate, size in per_class[name]:
            splits[candidate.split].append(LabeledImage(candidate.path, label))
            sizes.append(size)
    sizes.sort(key=lambda wh: (wh[0] * wh[1], wh))
    scan = DatasetScan(
        root=root_path,
        layout="split" if is_split else "folders",
        classes=tuple(classes),
        train=_by_label(splits["train"]),
        val=_by_label(splits["val"]),
        test=_by_label(splits["test"]),
        summaries=tuple(_summary(name, [candidate.path for candidate, _ in per_class[name]]) for name in classes),
        problems=tuple(file_problems + class_problems + folder_problems),
        min_size=sizes[0],
        median_size=sizes[(len(sizes) - 1) // 2],
        max_size=sizes[-1],
        skipped=skipped + dropped,
    )
    on_event(Log("info", f"Found {scan.num_images} usable images in {len(classes)} classes; "
                         f"{scan.skipped} files left out."))
    return scan


def _locate_splits(root: str, on_event: EventSink) -> dict[str, str]:
    """{"train": folder} for the class-folders layout, plus "val" and/or "test" for a split the user made."""
    if not os.path.exists(root):
        raise UserFacingError(f'The folder "{root}" does not exist.',
                              "Check the path; the folder may have been moved, renamed or deleted.")
    if not os.path.isdir(root):
        raise UserFacingError(f'"{root}" is a file, not a folder.',
                              "Choose the folder that holds one subfolder of images per class.")
    top = _subfolders(root)
    by_key = {name.casefold(): name for name in top}
    val_key = next((key for key in _VAL_NAMES if key in by_key), "")
    if "train" not in by_key or not (val_key or "test" in by_key or len(top) == 1):
        return {"train": root}
    folders = {split: os.path.join(root, by_key[key])
               for split, key in (("train", "train"), ("val", val_key), ("test", "test")) if key in by_key}
    ignored = sorted(set(top) - {os.path.basename(folder) for folder in folders.values()})
    if ignored:
        on_event(Log("warning", f"Ignored folders next to train/val/test: {', '.join(ignored)}."))
    return folders


def _collect(
    folders: dict[str, str], names: list[str], root: str, cancel: CancelToken
) -> tuple[list[_Candidate], list[DatasetProblem], int]:
    """Every file of every known class in every split (sorted by path); val/test folders of unknown classes."""
    candidates: list[_Candidate] = []
    problems: list[DatasetProblem] = []
    skipped = 0
    for split, folder in folders.items():
        for name in _subfolders(folder):
            class_folder = os.path.join(folder, name)
            files = _list_files(class_folder, cancel)
            if name in names:
                candidates.extend(_Candidate(path, split, name) for path in files)
                continue
            skipped += len(files)
            files_are = "file is" if len(files) == 1 else "files are"
            if name == UNSURE_FOLDER:
                problems.append(DatasetProblem(
                    "unsure",
                    f'"{relative_name(class_folder, root)}" holds the photos Sort into folders was unsure of, so its '
                    f"{len(files)} {files_are} left out; move each into its class folder to train on it.",
                    class_folder))
                continue
            problems.append(DatasetProblem(
                "unknown_class",
                f'"{relative_name(class_folder, root)}" has no matching class folder in '
                f'"{relative_name(folders["train"], root)}", so its {len(files)} {files_are} left out; add a "{name}" '
                "folder of training images or rename it to an existing class.", class_folder))
    return sorted(candidates, key=lambda candidate: candidate.path), problems, skipped


def _judge_classes(
    per_class: dict[str, list[tuple[_Candidate, tuple[int, int]]]], one_is_enough: bool, train_folder: str, root: str
) -> tuple[list[str], list[DatasetProblem], int]:
    """The classes that can be used (natural order), the problems with them, and how many images were dropped.
    `one_is_enough`: a class's one image need not be split into training and validation."""
    classes: list[str] = []
    problems: list[DatasetProblem] = []
    dropped = 0
    for name in sorted(per_class, key=_natural_key):
        images = per_class[name]
        folder = os.path.join(train_folder, name)
        if not any(candidate.split == "train" for candidate, _ in images):
            elsewhere = f" (its {len(images)} images in other splits are left out too)" if images else ""
            problems.append(DatasetProblem(
                "empty_folder", f'Class folder "{relative_name(folder, root)}" holds no usable images, so "{name}" is '
                f"left out of training{elsewhere}; add images to it or delete the folder.", folder))
            dropped += len(images)
        elif not one_is_enough and len(images) < 2:
            problems.append(DatasetProblem(
                "few_images", f'Class "{name}" has only 1 usable image, too few to split into training and '
                f"validation, so it is left out; add at least {RECOMMENDED_IMAGES_PER_CLASS} images of it.", folder))
            dropped += len(images)
        else:
            classes.append(name)
            if len(images) < MIN_IMAGES_PER_CLASS:
                problems.append(DatasetProblem(
                    "few_images", f'Class "{name}" has only {len(images)} usable images; it needs at least '
                    f"{MIN_IMAGES_PER_CLASS} and about {RECOMMENDED_IMAGES_PER_CLASS} for a reliable result: add "
                    "more images of it.", folder))
    counts = {name: len(per_class[name]) for name in classes}
    if classes and max(counts.values()) >= IMBALANCE_THRESHOLD * min(counts.values()):
        big, small = max(classes, key=counts.__getitem__), min(classes, key=counts.__getitem__)
        problems.append(DatasetProblem(
            "imbalance", f'The classes are lopsided: "{big}" has {counts[big]} images but "{small}" only '
            f"{counts[small]} ({counts[big] / counts[small]:.1f}x); add images to the small classes, or turn on "
            "class weights or balanced sampling in the training options."))
    return classes, problems, dropped


def stratified_split(
    items: Sequence[LabeledImage], val_fraction: float, seed: int
) -> tuple[tuple[LabeledImage, ...], tuple[LabeledImage, ...]]:
    """(train, val): per class a seeded shuffle, round(n * val_fraction) of it to val, at least one image to each
    part when the class has two or more. The same items and seed give the same split in any input order."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1, not {val_fraction}")
    by_label: dict[int, list[LabeledImage]] = {}
    for item in sorted(items, key=lambda item: (item.path, item.label)):
        by_label.setdefault(item.label, []).append(item)
    train: list[LabeledImage] = []
    val: list[LabeledImage] = []
    for label, members in by_label.items():
        # One generator per class: adding images to one class leaves the other classes' splits as they were.
        random.Random(f"{seed}:{label}").shuffle(members)
        count = len(members)
        to_val = min(max(round(count * val_fraction), 1), count - 1) if count >= 2 else 0
        val.extend(members[:to_val])
        train.extend(members[to_val:])
    return _by_label(train), _by_label(val)


def _by_label(items: list[LabeledImage]) -> tuple[LabeledImage, ...]:
    return tuple(sorted(items, key=lambda item: (item.label, item.path)))


def _natural_key(name: str) -> tuple:
    # "class2" before "class10"; case-insensitive, the exact name breaking ties so the order is total.
    parts = re.split(r"(\d+)", name.casefold())
    return tuple(int(part) if index % 2 else part for index, part in enumerate(parts)), name


def _visible(name: str) -> bool:
    return not name.startswith(".") and name.casefold() not in _LITTER


def _subfolders(folder: str) -> list[str]:
    try:
        with os.scandir(folder) as entries:
            return sorted(entry.name for entry in entries if _visible(entry.name) and entry.is_dir())
    except OSError:
        return []


def _list_files(folder: str, cancel: CancelToken) -> list[str]:
    """Every visible file under `folder`, nested folders included (symlinked folders are not followed: loops)."""
    found: list[str] = []
    pending = [folder]
    while pending:
        cancel.check()
        try:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    if not _visible(entry.name):
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                    elif entry.is_file():
                        found.append(entry.path)
        except OSError:
            continue  # an unreadable subfolder: its files simply are not part of the data set
    return sorted(found)


def _why_left_out(classes: list[str], left_out: dict[str, Counter[str]]) -> str:
    """Why the other class folders count for nothing, e.g. every image in them is a copy of one in another class
    (without it, "only one class" puzzles someone looking at a folder of 250 photos)."""
    reasons = [
        f'"{name}" (' + ", ".join(f"{count} {_LEFT_OUT_AS[kind]}" for kind, count in kinds.most_common()) + ")"
        for name, kinds in sorted(left_out.items(), key=lambda item: _natural_key(item[0]))
        if name not in classes and kinds
    ]
    if not reasons:
        return ""
    more = f" and {len(reasons) - 3} more" if len(reasons) > 3 else ""
    return f" The files in the other class folders were left out: {', '.join(reasons[:3])}{more}."


def _duplicate(copy: _Candidate, original: _Candidate, root: str) -> DatasetProblem:
    copy_rel, original_rel = relative_name(copy.path, root), relative_name(original.path, root)
    if copy.name != original.name:
        message = (f'"{copy_rel}" in class "{copy.name}" is an exact copy of "{original_rel}" in class '
                   f'"{original.name}": the same image is labeled as two classes, so the copy is left out; delete it '
                   "from the class it does not belong to.")
    elif copy.split != original.split:
        message = (f'"{copy_rel}" is an exact copy of "{original_rel}" in the {_SPLIT_WORDS[original.split]} '
                   "folder, which would make the scores look better than they are, so it is left out; delete one.")
    else:
        message = f'"{copy_rel}" is an exact copy of "{original_rel}", so it is left out; delete the copy.'
    return DatasetProblem("duplicate", message, copy.path)


def _summary(name: str, paths: list[str]) -> ClassSummary:
    paths = sorted(paths)
    shown = min(SAMPLES_PER_CLASS, len(paths))
    return ClassSummary(name, len(paths), tuple(paths[index * len(paths) // shown] for index in range(shown)))
