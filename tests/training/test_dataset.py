"""The fine-tuning wizard's folder scan on real image files: what it keeps, what it reports, how it splits."""
from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from engine.errors import Cancelled, UserFacingError
from engine.results import ImageResult, TopClass
from engine.sort_into_folders import UNSURE_FOLDER, SortOptions, sort_into_folders
from engine.events import CancelToken, Progress
from engine.training.dataset import (
    DatasetScan,
    LabeledImage,
    scan_class_folders,
    stratified_split,
)

_rng = np.random.default_rng(7)


def write_image(path: Path, size: tuple[int, int] = (16, 12), mode: str = "RGB", **save) -> Path:
    """A distinct noise image (so no two files share bytes by accident) in the format the suffix names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    pixels = _rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode).save(path, **save)
    return path


def write_truncated_jpeg(path: Path) -> Path:
    write_image(path, (64, 64))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def kinds_and_paths(scan: DatasetScan) -> list[tuple[str, str]]:
    return [(problem.kind, problem.path) for problem in scan.problems]


@pytest.fixture
def photos(tmp_path) -> Path:
    """A class-folders data set with every kind of trouble a real folder has."""
    root = tmp_path / "photos"
    cats, dogs = root / "cats", root / "dogs"
    for index in range(4):
        write_image(cats / f"c{index}.jpg", (40, 30))
    write_image(cats / "grey.png", (50, 50), mode="L")
    write_image(cats / "nested" / "deep" / "rgba.png", (30, 20), mode="RGBA")
    write_truncated_jpeg(cats / "broken.jpg")
    (cats / "zero.jpg").write_bytes(b"")
    (cats / "notes.txt").write_text("not a picture")
    shutil.copyfile(cats / "c0.jpg", cats / "copy.jpg")
    write_image(cats / ".hidden.jpg")
    (cats / "Thumbs.db").write_bytes(b"litter")
    for index in range(3):
        write_image(dogs / f"d{index}.jpg", (60, 40))
        write_image(dogs / f"w{index}.webp", (60, 40))
    shutil.copyfile(cats / "c1.jpg", dogs / "c1_again.jpg")  # the same picture labelled as two classes
    (root / "empty").mkdir()
    (root / ".git").mkdir()  # hidden folders are not classes
    return root


def test_scan_reports_every_usable_image_and_every_problem(photos):
    scan = scan_class_folders(photos)

    assert scan.layout == "folders" and scan.root == str(photos)
    assert scan.classes == ("cats", "dogs")
    assert scan.counts() == (6, 6) and scan.num_images == 12
    cats = ["c0.jpg", "c1.jpg", "c2.jpg", "c3.jpg", "grey.png", "nested/deep/rgba.png"]
    dogs = ["d0.jpg", "d1.jpg", "d2.jpg", "w0.webp", "w1.webp", "w2.webp"]
    expected = [LabeledImage(str(photos / "cats" / name), 0) for name in cats]
    expected += [LabeledImage(str(photos / "dogs" / name), 1) for name in dogs]
    assert scan.train == tuple(expected)
    assert scan.val == () and scan.test == ()
    assert kinds_and_paths(scan) == [
        ("corrupt", str(photos / "cats" / "broken.jpg")),
        ("duplicate", str(photos / "cats" / "copy.jpg")),
        ("not_image", str(photos / "cats" / "notes.txt")),
        ("corrupt", str(photos / "cats" / "zero.jpg")),
        ("duplicate", str(photos / "dogs" / "c1_again.jpg")),
        ("empty_folder", str(photos / "empty")),
    ]
    messages = [problem.message for problem in scan.problems]
    assert "broken.jpg" in messages[0] and "cut off" in messages[0]
    assert "cats/c0.jpg" in messages[1]
    assert "notes.txt" in messages[2]
    assert "zero.jpg" in messages[3] and "0 bytes" in messages[3]
    assert "cats/c1.jpg" in messages[4] and "two classes" in messages[4] and '"dogs"' in messages[4]
    assert "empty" in messages[5]
    assert scan.skipped == 5
    assert (scan.min_size, scan.median_size, scan.max_size) == ((30, 20), (60, 40), (50, 50))
    assert [summary.name for summary in scan.summaries] == ["cats", "dogs"]
    assert scan.summaries[0].samples == tuple(str(photos / "cats" / name) for name in cats)
    assert not scan.is_imbalanced and scan.imbalance_ratio == 1.0


def test_truncated_jpeg_is_corrupt_even_when_pillow_is_told_to_accept_truncated_files(tmp_path, monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # some other library may have set it
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown portrait
    for name in ("a", "b"):
        for index in range(5):
            write_image(tmp_path / name / f"{index}.jpg", (40, 30), progressive=True, exif=exif.tobytes())
    write_truncated_jpeg(tmp_path / "a" / "cut.jpg")

    scan = scan_class_folders(tmp_path)

    assert kinds_and_paths(scan) == [("corrupt", str(tmp_path / "a" / "cut.jpg"))]
    assert "cut off" in scan.problems[0].message
    assert scan.counts() == (5, 5)
    assert scan.max_size == (30, 40)


def test_decompression_bombs_and_garbage_are_reported_not_fatal(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5000)
    for name in ("a", "b"):
        for index in range(5):
            write_image(tmp_path / name / f"{index}.png", (8, 8))
    write_image(tmp_path / "a" / "huge.png", (120, 120))
    (tmp_path / "b" / "garbage.png").write_bytes(b"\x89PNG but nothing after it")

    scan = scan_class_folders(tmp_path)

    assert kinds_and_paths(scan) == [("corrupt", str(tmp_path / "a" / "huge.png")),
                                     ("corrupt", str(tmp_path / "b" / "garbage.png"))]
    assert "too large" in scan.problems[0].message
    assert "garbage.png" in scan.problems[1].message and "damaged" in scan.problems[1].message
    assert scan.counts() == (5, 5) and scan.skipped == 2


def test_small_and_lopsided_classes_are_reported(tmp_path):
    for name, count in (("many", 15), ("some", 5), ("tiny", 3), ("single", 1)):
        for index in range(count):
            write_image(tmp_path / name / f"{index:02}.png", (8, 8))

    scan = scan_class_folders(tmp_path)

    assert scan.classes == ("many", "some", "tiny")  # "single" cannot be split into training and validation
    assert scan.counts() == (15, 5, 3)
    assert kinds_and_paths(scan) == [
        ("few_images", str(tmp_path / "single")),
        ("few_images", str(tmp_path / "tiny")),
        ("imbalance", ""),
    ]
    assert "3 usable images" in scan.problems[1].message and "20" in scan.problems[1].message
    assert '"many"' in scan.problems[2].message and '"tiny"' in scan.problems[2].message
    assert "class weights" in scan.problems[2].message
    assert scan.skipped == 1
    assert scan.imbalance_ratio == 5.0 and scan.is_imbalanced
    many = sorted(str(tmp_path / "many" / f"{index:02}.png") for index in range(15))
    samples = scan.summaries[0].samples
    assert len(samples) == 8 and len(set(samples)) == 8 and set(samples) <= set(many)
    assert list(samples) == sorted(samples) and samples[0] == many[0]


def test_split_layout_keeps_the_users_train_val_test_folders(tmp_path):
    def fill(folder: Path, count: int) -> list[str]:
        return [str(write_image(folder / f"{index}.png", (8, 8))) for index in range(count)]

    train = {name: fill(tmp_path / "train" / name, 5) for name in ("Class10", "class2")}
    val = {name: fill(tmp_path / "valid" / name, count) for name, count in (("Class10", 1), ("class2", 2))}
    test = {name: fill(tmp_path / "test" / name, 1) for name in ("Class10", "class2")}
    fill(tmp_path / "valid" / "birds", 2)

    scan = scan_class_folders(tmp_path)

    assert scan.layout == "split"
    assert scan.classes == ("class2", "Class10")  # natural order: 2 before 10, case ignored
    assert scan.train == tuple(LabeledImage(p, 0) for p in train["class2"]) + tuple(
        LabeledImage(p, 1) for p in train["Class10"])
    assert scan.val == tuple(LabeledImage(p, 0) for p in val["class2"]) + (LabeledImage(val["Class10"][0], 1),)
    assert scan.test == (LabeledImage(test["class2"][0], 0), LabeledImage(test["Class10"][0], 1))
    assert scan.counts() == (8, 7)
    assert kinds_and_paths(scan) == [("unknown_class", str(tmp_path / "valid" / "birds"))]
    assert "birds" in scan.problems[0].message
    assert scan.skipped == 2


def test_a_folder_made_by_sort_into_folders_trains_on_its_classes_and_leaves_the_unsure_photos_out(tmp_path):
    """Classify, sort, check the folders by hand, train: the photos the model was unsure of are not a class."""
    results = []
    for index in range(60):
        label, prob = ("cats", "dogs", "birds")[index % 3], 0.9 if index < 48 else 0.2
        path = tmp_path / "camera" / f"IMG_{index:04}.png"
        path.parent.mkdir(exist_ok=True)
        Image.new("RGB", (16, 12), (index * 4, 255 - index * 4, index % 7 * 30)).save(path)  # every photo different
        results.append(ImageResult(str(path), (TopClass(label, index % 3, prob),)))
    sort_into_folders(results, SortOptions(str(tmp_path / "sorted"), min_confidence=0.5))

    scan = scan_class_folders(tmp_path / "sorted")

    assert scan.classes == ("birds", "cats", "dogs") and scan.counts() == (16, 16, 16)
    assert kinds_and_paths(scan) == [("unsure", str(tmp_path / "sorted" / UNSURE_FOLDER))]
    assert scan.problems[0].message == (
        '"_unsure" holds the photos Sort into folders was unsure of, so its 12 files are left out; move each into '
        "its class folder to train on it."
    )
    assert scan.skipped == 12


def test_refuses_folders_it_cannot_train_on(tmp_path):
    (tmp_path / "empty_root").mkdir()
    with pytest.raises(UserFacingError, match="holds no class folders") as refused:
        scan_class_folders(tmp_path / "empty_root")
    assert "own subfolder" in refused.value.hint

    for index in range(5):
        write_image(tmp_path / "one" / "cats" / f"{index}.png")
    with pytest.raises(UserFacingError, match="at least two classes"):
        scan_class_folders(tmp_path / "one")

    for name in ("a", "b"):
        (tmp_path / "texts" / name).mkdir(parents=True)
        (tmp_path / "texts" / name / "readme.txt").write_text("no pictures here")
    with pytest.raises(UserFacingError, match="no usable images"):
        scan_class_folders(tmp_path / "texts")

    write_image(tmp_path / "lone" / "cats" / "0.png")  # one image: too few to split, the only class left out
    for index in range(5):
        write_image(tmp_path / "lone" / "dogs" / f"{index}.png", size=(12 + index, 12))
    with pytest.raises(UserFacingError, match='has only one with enough usable images \\("dogs"\\)') as refused:
        scan_class_folders(tmp_path / "lone")
    assert 'Class "cats" has only 1 usable image, too few to split' in refused.value.message

    with pytest.raises(UserFacingError, match="does not exist"):
        scan_class_folders(tmp_path / "missing")


def test_a_class_left_with_no_usable_images_says_why(tmp_path):
    """The same photos copied into every class folder: a user sees 250 photos in "dogs" and must be told why
    "dogs" counts for nothing."""
    for index in range(5):
        write_image(tmp_path / "data" / "cats" / f"{index}.png", size=(16 + index, 12))
    shutil.copytree(tmp_path / "data" / "cats", tmp_path / "data" / "dogs")
    (tmp_path / "data" / "dogs" / "broken.jpg").write_bytes(b"\xff\xd8 not a whole jpeg")
    with pytest.raises(UserFacingError, match="at least two classes") as refused:
        scan_class_folders(tmp_path / "data")
    assert 'left out: "dogs" (5 copies of images in other folders, 1 damaged or unreadable).' in refused.value.message


def test_scan_survives_a_json_round_trip(photos):
    scan = scan_class_folders(photos)
    assert DatasetScan.from_dict(json.loads(json.dumps(scan.to_dict()))) == scan


def test_progress_ends_with_every_file_checked(photos):
    events = []
    scan_class_folders(photos, on_event=events.append)
    progress = [event for event in events if isinstance(event, Progress)]
    assert progress[-1] == Progress("Scanning images", 17, 17)  # 10 files under cats, 7 under dogs
    assert [event.done for event in progress] == sorted(event.done for event in progress)


def test_cancel_stops_the_scan(photos):
    token = CancelToken()
    seen = []

    def cancel_on_first_progress(event):
        if isinstance(event, Progress):
            seen.append(event)
            token.cancel()

    with pytest.raises(Cancelled):
        scan_class_folders(photos, on_event=cancel_on_first_progress, cancel=token)
    assert len(seen) == 1 and seen[0].done < seen[0].total


def _items() -> list[LabeledImage]:
    sizes = {0: 50, 1: 10, 2: 2, 3: 1}
    return [LabeledImage(f"/data/{label}/{index:03}.jpg", label) for label, count in sizes.items()
            for index in range(count)]


def test_stratified_split_keeps_each_class_in_proportion():
    items = _items()
    train, val = stratified_split(items, 0.2, seed=0)

    def per_class(part):
        return [sum(item.label == label for item in part) for label in range(4)]

    assert per_class(val) == [10, 2, 1, 0]  # at least one to val and one to train for any class of two or more
    assert per_class(train) == [40, 8, 1, 1]
    assert sorted(train + val, key=lambda item: item.path) == sorted(items, key=lambda item: item.path)
    assert list(train) == sorted(train, key=lambda item: (item.label, item.path))
    assert list(val) == sorted(val, key=lambda item: (item.label, item.path))


def test_stratified_split_is_deterministic_per_seed():
    items = _items()
    shuffled = items[:]
    random.Random(3).shuffle(shuffled)

    assert stratified_split(shuffled, 0.2, seed=5) == stratified_split(items, 0.2, seed=5)
    assert stratified_split(items, 0.2, seed=6)[1] != stratified_split(items, 0.2, seed=5)[1]
