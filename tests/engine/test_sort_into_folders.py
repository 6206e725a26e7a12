"""Sorting classified photos into class folders: real files copied or moved, nothing overwritten, nothing lost.

The results here stand for what classifying gave (the command line and window tests classify for real first);
what is checked is what lands on the disk.
"""
from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from engine import sort_into_folders as sorting
from engine.errors import UserFacingError
from engine.events import CancelToken, Progress
from engine.results import ImageResult, TopClass
from engine.sort_into_folders import (
    UNSURE_FOLDER,
    FolderSorter,
    SortOptions,
    class_folder_name,
    describe_plan,
    move_to_class,
    put_back,
    sort_into_folders,
)


def classified(path: Path | str, label: str, prob: float = 0.9) -> ImageResult:
    return ImageResult(str(path), (TopClass(label, 0, prob), TopClass("other", 1, 1 - prob)), ms=3.0)


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under `folder`, by its path relative to it: what the user sees in their file manager."""
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


@pytest.fixture
def photos(photo_files) -> dict[str, Path]:
    return {path.stem: path for path in photo_files}  # chelsea.jpg, coffee.png, astronaut.webp, rocket.jpg


def test_photos_are_copied_into_a_folder_per_class_byte_for_byte_and_the_originals_stay(photos, tmp_path):
    before = {path: path.read_bytes() for path in photos.values()}
    os.utime(photos["chelsea"], (1_500_000_000, 1_500_000_000))  # the day the photo was taken
    destination = tmp_path / "sorted"
    results = [
        classified(photos["chelsea"], "tabby, tabby cat"),
        classified(photos["coffee"], "espresso"),
        classified(photos["rocket"], "space shuttle"),
        classified(photos["astronaut"], "T-shirt/top"),
    ]
    events: list[Progress] = []

    report = sort_into_folders(results, SortOptions(str(destination)), events.append)

    assert tree(destination) == {
        "tabby, tabby cat/chelsea.jpg": before[photos["chelsea"]],
        "espresso/coffee.png": before[photos["coffee"]],
        "space shuttle/rocket.jpg": before[photos["rocket"]],
        "T-shirt_top/astronaut.webp": before[photos["astronaut"]],
    }
    assert {path: path.read_bytes() for path in photos.values()} == before  # a copy: the originals are untouched
    assert report.moved == {}
    assert (destination / "tabby, tabby cat" / "chelsea.jpg").stat().st_mtime == 1_500_000_000
    assert report.into_classes == 4
    assert report.folders == {"tabby, tabby cat", "espresso", "space shuttle", "T-shirt_top"}
    assert report.summary() == [f"Copied 4 photos into 4 class folders in {destination}."]
    assert [(e.done, e.total) for e in events] == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]
    assert not list(destination.rglob(".*")), "no temporary file is left behind"


def test_photos_the_model_is_unsure_of_go_into_one_folder_of_their_own(photos, tmp_path):
    destination = tmp_path / "sorted"
    results = [classified(photos["chelsea"], "tabby, tabby cat", 0.81), classified(photos["coffee"], "espresso", 0.42)]

    report = sort_into_folders(results, SortOptions(str(destination), min_confidence=0.5))

    assert sorted(tree(destination)) == ["_unsure/coffee.png", "tabby, tabby cat/chelsea.jpg"]
    assert report.summary() == [
        f"Copied 2 photos into {destination}: 1 into 1 class folder, 1 below 50 % confidence into _unsure."
    ]


def test_same_names_from_different_folders_are_kept_apart_and_sorting_again_copies_nothing_twice(tmp_path):
    """Two cameras both write IMG_0001.jpg: both photos must survive; a second sort (after adding photos, or after
    a cancel) copies only what is new."""
    photos = []
    for camera, color in (("phone", (200, 30, 30)), ("camera", (30, 30, 200))):
        (tmp_path / camera).mkdir()
        Image.new("RGB", (64, 48), color).save(tmp_path / camera / "IMG_0001.jpg")
        photos.append(tmp_path / camera / "IMG_0001.jpg")
    destination = tmp_path / "sorted"
    results = [classified(path, "dog") for path in photos]

    sort_into_folders(results, SortOptions(str(destination)))
    assert tree(destination) == {
        "dog/IMG_0001.jpg": photos[0].read_bytes(),
        "dog/IMG_0001 (2).jpg": photos[1].read_bytes(),
    }

    Image.new("RGB", (64, 48), (30, 200, 30)).save(tmp_path / "phone" / "IMG_0002.jpg")
    new_photo = classified(tmp_path / "phone" / "IMG_0002.jpg", "dog")
    again = sort_into_folders([*results, new_photo], SortOptions(str(destination)))

    assert sorted(tree(destination)) == ["dog/IMG_0001 (2).jpg", "dog/IMG_0001.jpg", "dog/IMG_0002.jpg"]
    assert (again.into_classes, again.already_there) == (1, 2)
    assert "2 photos were already there." in again.summary()


def test_moving_takes_the_photos_out_of_their_folder_and_sorting_a_sorted_folder_into_itself_loses_nothing(
    photos, tmp_path
):
    contents = {name: path.read_bytes() for name, path in photos.items()}
    destination = tmp_path / "sorted"
    results = [classified(photos["chelsea"], "cat"), classified(photos["coffee"], "cup")]

    report = sort_into_folders(results, SortOptions(str(destination), move=True))

    assert tree(destination) == {"cat/chelsea.jpg": contents["chelsea"], "cup/coffee.png": contents["coffee"]}
    assert not photos["chelsea"].exists() and not photos["coffee"].exists()
    assert report.summary()[0] == f"Moved 2 photos into 2 class folders in {destination}."
    assert report.moved == {  # the window's table follows the photos to their new place
        str(photos["chelsea"]): str(destination / "cat" / "chelsea.jpg"),
        str(photos["coffee"]): str(destination / "cup" / "coffee.png"),
    }

    # The user points the sort at the sorted folder itself: every photo is already where it belongs.
    moved = [classified(destination / "cat" / "chelsea.jpg", "cat"),
             classified(destination / "cup" / "coffee.png", "cup")]
    again = sort_into_folders(moved, SortOptions(str(destination), move=True))
    assert tree(destination) == {"cat/chelsea.jpg": contents["chelsea"], "cup/coffee.png": contents["coffee"]}
    assert again.already_there == 2 and again.moved == {}


def test_a_move_of_a_photo_whose_copy_is_already_sorted_removes_only_the_original(photos, tmp_path):
    destination = tmp_path / "sorted"
    sort_into_folders([classified(photos["chelsea"], "cat")], SortOptions(str(destination)))  # copied first

    report = sort_into_folders([classified(photos["chelsea"], "cat")], SortOptions(str(destination), move=True))

    assert not photos["chelsea"].exists()
    assert (destination / "cat" / "chelsea.jpg").is_file() and report.already_there == 1
    assert report.moved == {str(photos["chelsea"]): str(destination / "cat" / "chelsea.jpg")}


def test_unreadable_and_vanished_files_are_reported_and_the_rest_are_sorted(photos, tmp_path):
    destination = tmp_path / "sorted"
    gone = tmp_path / "deleted meanwhile.jpg"
    results = [
        ImageResult(str(tmp_path / "broken.jpg"), error="The file is damaged or truncated."),
        classified(gone, "cat"),
        classified(photos["coffee"], "cup"),
    ]

    report = sort_into_folders(results, SortOptions(str(destination)))

    assert sorted(tree(destination)) == ["cup/coffee.png"]
    assert report.summary() == [
        f"Copied 1 photo into 1 class folder in {destination}.",
        "1 file that could not be read stays where it is.",
        f"1 photo could not be sorted: {gone}: the file is no longer there.",
    ]


def test_a_cancelled_sort_stops_between_photos_and_says_how_far_it_got(photos, tmp_path):
    destination = tmp_path / "sorted"
    cancel = CancelToken()
    results = [classified(path, "thing") for path in photos.values()]

    def cancel_after_two(event: Progress) -> None:
        if event.done == 2:
            cancel.cancel()

    report = sort_into_folders(results, SortOptions(str(destination)), cancel_after_two, cancel)

    assert len(tree(destination)) == 2 and report.cancelled
    assert report.summary()[0] == f"Stopped. Copied 2 photos into 1 class folder in {destination}."


def test_a_full_disk_stops_the_sort_with_a_clear_message_and_no_half_written_photo(photos, tmp_path, monkeypatch):
    destination = tmp_path / "sorted"
    real_copy = shutil.copy2
    copies = []

    def disk_fills_on_the_second_photo(source, target):
        copies.append(source)
        if len(copies) == 2:
            Path(target).write_bytes(Path(source).read_bytes()[:1000])  # what fitted before the disk filled
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_copy(source, target)

    monkeypatch.setattr(sorting.shutil, "copy2", disk_fills_on_the_second_photo)
    results = [classified(path, "thing") for path in photos.values()]

    with pytest.raises(UserFacingError) as raised:
        sort_into_folders(results, SortOptions(str(destination)))

    assert raised.value.message == f"The disk is full: sorting into {destination} stopped after 1 photo."
    assert raised.value.report.into_classes == 1  # what was done before: the window follows moves with it
    assert "sort again" in raised.value.hint
    assert tree(destination) == {"thing/chelsea.jpg": photos["chelsea"].read_bytes()}  # no piece of coffee.png


def test_the_destination_must_be_a_folder_the_user_may_write(photos, tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")

    with pytest.raises(UserFacingError, match="is a file, not a folder"):
        sort_into_folders([classified(photos["coffee"], "cup")], SortOptions(str(a_file)))

    deep = tmp_path / "new" / "nested" / "sorted"
    sort_into_folders([classified(photos["coffee"], "cup")], SortOptions(str(deep)))
    assert (deep / "cup" / "coffee.png").is_file()


def test_a_sorter_fed_one_result_at_a_time_says_where_each_photo_went(photos, tmp_path):
    sorter = FolderSorter(SortOptions(str(tmp_path / "sorted"), min_confidence=0.5))

    assert sorter.sort(classified(photos["chelsea"], "cat", 0.9)) == str(tmp_path / "sorted" / "cat" / "chelsea.jpg")
    unsure = str(tmp_path / "sorted" / UNSURE_FOLDER / "coffee.png")
    assert sorter.sort(classified(photos["coffee"], "cup", 0.2)) == unsure
    assert sorter.sort(ImageResult("broken.jpg", error="damaged")) is None


@pytest.mark.parametrize(
    "label, folder",
    [
        ("tabby, tabby cat", "tabby, tabby cat"),
        ("T-shirt/top", "T-shirt_top"),
        ('a "quoted" <name>: yes?', "a _quoted_ _name__ yes_"),
        ("ends with dots...", "ends with dots"),
        ("  spaced  ", "spaced"),
        ("CON", "_CON"),
        ("com1.txt", "_com1.txt"),
        ("..", "_unnamed class"),
        ("", "_unnamed class"),
        ("_unsure", "_unsure (class)"),
        ("x" * 300, "x" * 120),
    ],
)
def test_class_labels_become_folder_names_every_desktop_system_accepts(label, folder):
    assert class_folder_name(label) == folder


def test_the_plan_says_beforehand_what_the_threshold_sends_where(tmp_path):
    results = [
        classified(tmp_path / "a.jpg", "cat", 0.9),
        classified(tmp_path / "b.jpg", "cat", 0.6),
        classified(tmp_path / "c.jpg", "T-shirt/top", 0.3),
        ImageResult(str(tmp_path / "d.jpg"), error="damaged"),
    ]

    assert describe_plan(results, SortOptions("out")) == (
        "3 photos will be copied: 3 into 2 class folders. 1 file that could not be read stays where it is."
    )
    assert describe_plan(results, SortOptions("out", min_confidence=0.7, move=True)) == (
        "3 photos will be moved: 1 into 1 class folder, 2 below 70 % confidence into _unsure."
        " 1 file that could not be read stays where it is."
    )
    assert describe_plan(results[3:], SortOptions("out")) == (
        "0 photos will be copied. 1 file that could not be read stays where it is."
    )
    assert not list(tmp_path.iterdir()), "planning writes nothing"


def test_a_move_never_deletes_a_photo_on_the_word_of_its_size_and_date_alone(tmp_path):
    """A different photo with the same name, size and date in the class folder: the original is moved in beside
    it, not deleted as if it were already there."""
    photo = tmp_path / "camera" / "IMG_0001.jpg"
    photo.parent.mkdir()
    photo.write_bytes(b"\xff\xd8 the photo being sorted \xff\xd9")
    stranger = tmp_path / "sorted" / "dog" / "IMG_0001.jpg"
    stranger.parent.mkdir(parents=True)
    stranger.write_bytes(b"\xff\xd8 another photo, same size \xff\xd9"[: len(photo.read_bytes())])
    for path in (photo, stranger):
        os.utime(path, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    assert photo.stat().st_size == stranger.stat().st_size and photo.read_bytes() != stranger.read_bytes()
    original = photo.read_bytes()

    report = sort_into_folders([classified(photo, "dog")], SortOptions(str(tmp_path / "sorted"), move=True))

    assert (tmp_path / "sorted" / "dog" / "IMG_0001 (2).jpg").read_bytes() == original
    assert report.into_classes == 1 and report.already_there == 0


def test_a_photo_filed_under_the_wrong_class_moves_into_the_right_class_folder(tmp_path, photo_files):
    data = tmp_path / "data"
    (data / "cats" / "indoor").mkdir(parents=True)
    (data / "dogs").mkdir()
    photo = data / "cats" / "indoor" / "x.jpg"
    shutil.copy(photo_files[0], photo)
    (data / "dogs" / "x.jpg").write_bytes(Path(photo_files[1]).read_bytes())  # another photo with that name

    moved = move_to_class(photo, "cats", "dogs")
    assert moved == data / "dogs" / "x (2).jpg" and not photo.exists()
    assert moved.read_bytes() == Path(photo_files[0]).read_bytes()
    assert (data / "dogs" / "x.jpg").read_bytes() == Path(photo_files[1]).read_bytes()  # never overwritten

    assert put_back(moved, photo) == photo and not moved.exists()  # undone: where it was, subfolder and name
    assert photo.read_bytes() == Path(photo_files[0]).read_bytes()
    back = move_to_class(move_to_class(photo, "cats", "dogs"), "dogs", "cats")  # into the class folder itself
    assert back == data / "cats" / "x (2).jpg" and back.read_bytes() == Path(photo_files[0]).read_bytes()

    into_new = move_to_class(back, "cats", "T-shirt/top")  # a class with no folder yet: a name every system takes
    assert into_new == data / "T-shirt_top" / back.name

    with pytest.raises(UserFacingError, match="not in a folder named “birds”"):
        move_to_class(into_new, "birds", "cats")
    with pytest.raises(UserFacingError, match="not there any more"):
        move_to_class(photo, "cats", "dogs")
    shutil.copy(photo_files[2], photo)
    with pytest.raises(UserFacingError, match="Another file is at"):  # put back where another photo is now
        put_back(into_new, photo)
    assert into_new.exists() and photo.read_bytes() == Path(photo_files[2]).read_bytes()


def test_a_photo_already_in_the_right_class_folder_is_not_kept_twice(tmp_path, photo_files):
    for name in ("cats", "dogs"):
        (tmp_path / name).mkdir()
        shutil.copy(photo_files[0], tmp_path / name / "x.jpg")  # the same photo filed under both classes
    assert move_to_class(tmp_path / "cats" / "x.jpg", "cats", "dogs") == tmp_path / "dogs" / "x.jpg"
    assert not (tmp_path / "cats" / "x.jpg").exists()
    assert list((tmp_path / "dogs").iterdir()) == [tmp_path / "dogs" / "x.jpg"]
