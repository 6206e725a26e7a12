"""Sort into folders, in the real window's Classify tab: real photos classified by a real model, then sorted on
disk through the dialog the user sees."""
from __future__ import annotations

import errno
import shutil
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from engine import sort_into_folders as sorting
from engine.results import ImageResult, TopClass
from gui.result_widgets import ERROR_COLOR
from gui.sort_dialog import SortDialog
from tests.gui.conftest import WAIT_MS
from tests.gui.test_classify_view import drop_files
from tests.gui.test_main_window import menu_actions


def files_under(folder: Path) -> list[str]:
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())


@pytest.fixture
def window(window_with_tiny_model):
    return window_with_tiny_model


@pytest.fixture
def view(window):
    return window.classify_view


def open_sort_dialog(view, qtbot) -> SortDialog:
    qtbot.mouseClick(view.sort_button, Qt.MouseButton.LeftButton)
    dialog = view.sort_dialog
    assert dialog is not None and dialog.isVisible() and dialog.isModal()
    return dialog


def test_sorting_a_classified_batch_copies_each_photo_into_its_top_class_folder(view, qtbot, photo_files, tmp_path):
    corrupt_jpeg = tmp_path / "broken.jpg"
    corrupt_jpeg.write_bytes(photo_files[0].read_bytes()[:300])  # a download cut short
    drop_files(view, qtbot, [*photo_files, corrupt_jpeg])
    assert view.sort_button.isEnabled()
    top1 = {Path(r.path).name: r.top[0].label for r in view.model.results if r.error is None}
    dialog = open_sort_dialog(view, qtbot)

    # Beside the photos' folder, not inside it, where classifying the folder again would find every copy.
    assert dialog.folder_field.text() == str(photo_files[0].parent.parent / "photos sorted")
    folders = len(set(top1.values()))
    assert dialog.plan_label.text() == (
        f"4 photos will be copied: 4 into {folders} class folder{'s' if folders > 1 else ''}."
        " 1 file that could not be read stays where it is."
    )
    destination = tmp_path / "sorted"
    dialog.folder_field.setText(str(destination))
    with qtbot.waitSignal(dialog.sort_finished, timeout=WAIT_MS):
        qtbot.mouseClick(dialog.sort_button, Qt.MouseButton.LeftButton)

    assert files_under(destination) == sorted(f"{label}/{name}" for name, label in top1.items())
    assert all(path.is_file() for path in photo_files)  # copied: the originals stay
    assert dialog.outcome_label.text().startswith(f"Copied 4 photos into {folders} class folder")
    assert dialog.open_button.isVisible() and dialog.close_button.text() == "Close"
    # The offscreen platform opens nothing, as a desktop without a file manager: said below what was done.
    summary = dialog.outcome_label.text()
    for _ in range(2):
        qtbot.mouseClick(dialog.open_button, Qt.MouseButton.LeftButton)
    assert dialog.outcome_label.text() == (
        f"{summary}\nCould not open {destination}. No program on this system opens it; "
        "open it from your file manager instead."
    )
    qtbot.mouseClick(dialog.close_button, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()


def test_a_threshold_sends_the_unsure_photos_apart_and_move_takes_them_out_of_their_folder(
    view, qtbot, photo_files, tmp_path
):
    drop_files(view, qtbot, photo_files)
    dialog = open_sort_dialog(view, qtbot)
    dialog.folder_field.setText("sorted")  # a name alone: a folder beside the photos' own
    assert dialog.options.destination == str(tmp_path / "sorted")
    assert dialog.threshold.text() == "off"

    dialog.threshold.setValue(99)  # the tiny untrained model is never that sure
    dialog.move_box.setChecked(True)
    assert dialog.plan_label.text() == "4 photos will be moved: 4 below 99 % confidence into _unsure."
    with qtbot.waitSignal(dialog.sort_finished, timeout=WAIT_MS):
        qtbot.mouseClick(dialog.sort_button, Qt.MouseButton.LeftButton)

    assert files_under(tmp_path / "sorted") == sorted(f"_unsure/{path.name}" for path in photo_files)
    assert not any(path.exists() for path in photo_files)
    assert dialog.outcome_label.text() == (
        f"Moved 4 photos into {tmp_path / 'sorted'}: 4 below 99 % confidence into _unsure."
    )


def move_into_class_folders(view, qtbot, photo_files, destination: Path):
    """The photos classified, then moved into class folders under `destination` with the Sort dialog."""
    drop_files(view, qtbot, photo_files)
    dialog = open_sort_dialog(view, qtbot)
    dialog.folder_field.setText(str(destination))
    dialog.move_box.setChecked(True)
    with qtbot.waitSignal(dialog.sort_finished, timeout=WAIT_MS):
        qtbot.mouseClick(dialog.sort_button, Qt.MouseButton.LeftButton)
    return dialog, destination


def test_after_a_move_the_rows_follow_the_photos_and_sorting_again_finds_them_in_place(
    view, qtbot, opened_urls, photo_files, tmp_path
):
    dialog, destination = move_into_class_folders(view, qtbot, photo_files, tmp_path / "sorted")

    new_places = {str(destination / r.top[0].label / Path(r.path).name) for r in view.model.results}
    assert {r.path for r in view.model.results} == new_places  # every row points where its photo is now
    assert all(Path(path).is_file() for path in new_places)
    assert view.batch.card.title.toolTip() in new_places
    table = view.batch.table
    table.setCurrentIndex(view.model.index(2, 0))
    qtbot.keyClick(table, Qt.Key.Key_Return)  # Open finds the photo in its new place
    assert [url.toLocalFile() for url in opened_urls] == [view.model.result_at(2).path]

    with qtbot.waitSignal(dialog.sort_finished, timeout=WAIT_MS):  # Sort again: nothing is missing, nothing moves
        qtbot.mouseClick(dialog.sort_button, Qt.MouseButton.LeftButton)
    assert dialog.outcome_label.text().endswith("4 photos were already there.")
    assert "could not be sorted" not in dialog.outcome_label.text()


def test_a_disk_that_fills_mid_move_still_leaves_the_moved_rows_pointing_at_their_photos(
    view, qtbot, photo_files, tmp_path, monkeypatch
):
    real_move, moves = sorting._move, []

    def disk_fills_on_the_second_move(source, target):  # a move onto another disk, which fills up
        moves.append(source)
        if len(moves) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_move(source, target)

    monkeypatch.setattr(sorting, "_move", disk_fills_on_the_second_move)
    dialog, destination = move_into_class_folders(view, qtbot, photo_files, tmp_path / "sorted")

    outcome = dialog.outcome_label.text()
    assert outcome.startswith(f"The disk is full: sorting into {destination} stopped after 1 photo.")
    moved = [r for r in view.model.results if Path(r.path).parent.parent == destination]
    assert len(moved) == 1 and Path(moved[0].path).is_file()
    assert Path(moved[0].path).parent.name == moved[0].top[0].label
    rest = {r.path for r in view.model.results} - {moved[0].path}
    assert len(rest) == 3 and all(Path(path).is_file() for path in rest)  # still where they were


def test_with_a_filter_set_sort_offers_just_the_rows_it_shows(view, qtbot, photo_files, tmp_path):
    drop_files(view, qtbot, photo_files)
    view.batch.filter_field.setText("coffee")
    dialog = open_sort_dialog(view, qtbot)
    assert dialog.only_shown_box.isVisible() and dialog.only_shown_box.isChecked()
    assert dialog.only_shown_box.text() == "Only the 1 photo the filter shows"
    assert dialog.plan_label.text() == "1 photo will be copied: 1 into 1 class folder."
    dialog.only_shown_box.setChecked(False)
    assert dialog.plan_label.text().startswith("4 photos will be copied")
    dialog.only_shown_box.setChecked(True)
    destination = tmp_path / "sorted"
    dialog.folder_field.setText(str(destination))
    with qtbot.waitSignal(dialog.sort_finished, timeout=WAIT_MS):
        qtbot.mouseClick(dialog.sort_button, Qt.MouseButton.LeftButton)

    coffee = next(r for r in view.model.results if Path(r.path).name == "coffee.png")
    assert files_under(destination) == [f"{coffee.top[0].label}/coffee.png"]
    qtbot.mouseClick(dialog.close_button, Qt.MouseButton.LeftButton)

    view.batch.filter_field.clear()  # no filter: the whole set, and no choice to make
    dialog = open_sort_dialog(view, qtbot)
    assert not dialog.only_shown_box.isVisible() and dialog.plan_label.text().startswith("4 photos")


def test_the_sort_button_waits_for_the_batch_to_finish(window, view, qtbot, photo_files, tmp_path):
    many = tmp_path / "many"
    many.mkdir()
    for n in range(120):
        shutil.copy(photo_files[n % len(photo_files)], many / f"{n}{photo_files[n % len(photo_files)].suffix}")
    assert not view.sort_button.isEnabled()  # nothing classified yet
    menu_actions(window)["Sort into folders…"].trigger()
    assert view.sort_dialog is None and view.banner.message_label.text() == "There are no photos to sort yet."

    with qtbot.waitSignal(view.set_finished, timeout=WAIT_MS):
        view.add_paths([str(many)])
        assert view.running and not view.sort_button.isEnabled()
        menu_actions(window)["Sort into folders…"].trigger()  # the File menu is always there
        assert view.sort_dialog is None
        assert view.banner.message_label.text() == "Sorting into folders starts once the photos are classified."
    assert view.sort_button.isEnabled()


@pytest.fixture
def photo_results(photo_files) -> list[ImageResult]:
    """What classifying the photos gave (the tests above classify for real; these test the dialog's own work)."""
    return [ImageResult(str(path), (TopClass("thing", 0, 0.9),)) for path in photo_files]


def test_cancel_stops_the_sort_between_two_photos_and_says_how_far_it_got(
    qtbot, photo_results, tmp_path, monkeypatch
):
    second_copy_started, go_on = threading.Event(), threading.Event()
    real_copy = shutil.copy2
    copies = []

    def slow_second_copy(source, target):  # a slow disk, held up on the second photo until the test lets it go
        copies.append(source)
        if len(copies) == 2:
            second_copy_started.set()
            go_on.wait(timeout=10)
        return real_copy(source, target)

    monkeypatch.setattr(sorting.shutil, "copy2", slow_second_copy)
    dialog = SortDialog(photo_results)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.folder_field.setText(str(tmp_path / "sorted"))

    with qtbot.waitSignal(dialog.sort_finished, timeout=WAIT_MS):
        qtbot.mouseClick(dialog.sort_button, Qt.MouseButton.LeftButton)
        assert second_copy_started.wait(timeout=10)
        assert not dialog.folder_field.isEnabled() and dialog.progress_bar.isVisible()
        qtbot.mouseClick(dialog.close_button, Qt.MouseButton.LeftButton)  # Cancel
        assert dialog.isVisible() and dialog.close_button.text() == "Stopping…"
        go_on.set()

    assert files_under(tmp_path / "sorted") == sorted(f"thing/{Path(r.path).name}" for r in photo_results[:2])
    assert dialog.outcome_label.text() == f"Stopped. Copied 2 photos into 1 class folder in {tmp_path / 'sorted'}."
    assert dialog.isVisible() and dialog.folder_field.isEnabled() and dialog.sort_button.isEnabled()

    with qtbot.waitSignal(dialog.sort_finished, timeout=WAIT_MS):  # Sort again: the rest, nothing twice
        qtbot.mouseClick(dialog.sort_button, Qt.MouseButton.LeftButton)
    assert len(files_under(tmp_path / "sorted")) == len(photo_results)
    assert "2 photos were already there." in dialog.outcome_label.text()


def test_a_folder_that_cannot_be_written_is_said_in_the_dialog(qtbot, photo_results, tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("a file, not a folder")
    dialog = SortDialog(photo_results)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.folder_field.setText(str(a_file))

    with qtbot.waitSignal(dialog.sort_finished, timeout=WAIT_MS):
        qtbot.mouseClick(dialog.sort_button, Qt.MouseButton.LeftButton)

    assert dialog.outcome_label.text() == f"{a_file} is a file, not a folder. Choose a folder to sort the photos into."
    assert ERROR_COLOR.name() in dialog.outcome_label.styleSheet()
    assert not dialog.open_button.isVisible()
    dialog.folder_field.clear()
    assert not dialog.sort_button.isEnabled()


def test_photos_that_share_a_folder_or_not_get_a_sensible_default_destination(tmp_path):
    from gui.sort_dialog import default_destination

    def at(*paths: Path) -> list[ImageResult]:
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")
        return [ImageResult(str(path), (TopClass("x", 0, 1.0),)) for path in paths]

    holiday = tmp_path / "holiday"
    assert default_destination(at(holiday / "a.jpg", holiday / "beach" / "b.jpg")) == str(tmp_path / "holiday sorted")
    assert default_destination(at(holiday / "one.jpg")) == str(tmp_path / "holiday sorted")
    assert default_destination([ImageResult("Pasted image", (TopClass("x", 0, 1.0),))]) == str(
        Path.home() / "Sorted photos"
    )
