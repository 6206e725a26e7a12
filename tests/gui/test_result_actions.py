"""The batch table's rows, as a user handles them: double-click or Enter opens the photo, a right-click shows its
folder or copies its path or its classes. What the system is asked to open is caught with Qt's own URL handler."""
from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QContextMenuEvent
from PySide6.QtWidgets import QApplication

from tests.gui.test_classify_view import drop_files


def opened_paths(opened_urls) -> list[str]:
    return [url.toLocalFile() for url in opened_urls]


@pytest.fixture
def view(window_with_tiny_model, qtbot, photo_files):
    view = window_with_tiny_model.classify_view
    drop_files(view, qtbot, photo_files)
    return view


def row_of(view, name: str) -> int:
    return next(row for row in range(view.model.rowCount()) if Path(view.model.result_at(row).path).name == name)


def right_click_menu(view, row: int) -> dict:
    table = view.batch.table
    position = table.visualRect(view.model.index(row, 1)).center()
    event = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, position, table.viewport().mapToGlobal(position))
    QApplication.sendEvent(table.viewport(), event)
    menu = view.batch.row_actions.menu
    assert menu is not None and menu.isVisible()
    return {action.text(): action for action in menu.actions() if action.text()}


def test_double_click_or_enter_opens_the_photo_in_the_systems_viewer(view, qtbot, opened_urls, photo_files):
    table = view.batch.table
    row = row_of(view, "coffee.png")
    cell = table.visualRect(view.model.index(row, 1)).center()

    # As the system sends a double-click: a click, then the second press as a double-click.
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=cell)
    qtbot.mouseDClick(table.viewport(), Qt.MouseButton.LeftButton, pos=cell)
    assert opened_paths(opened_urls) == [str(photo_files[1])]

    table.setCurrentIndex(view.model.index(row_of(view, "rocket.jpg"), 0))
    qtbot.keyClick(table, Qt.Key.Key_Return)
    assert opened_paths(opened_urls) == [str(photo_files[1]), str(photo_files[3])]


def test_a_right_click_shows_the_folder_and_copies_the_path_or_the_result(view, qtbot, opened_urls, photo_files):
    row = row_of(view, "chelsea.jpg")
    result = view.model.result_at(row)
    actions = right_click_menu(view, row)
    assert view.batch.table.currentIndex().row() == row and view.batch.card.result == result  # the row is chosen
    assert list(actions) == ["Open", "Show in folder", "Copy path", "Copy result"]
    assert all(action.isEnabled() for action in actions.values())

    actions["Show in folder"].trigger()
    assert opened_paths(opened_urls) == [str(photo_files[0].parent)]

    right_click_menu(view, row)["Copy path"].trigger()
    assert QApplication.clipboard().text() == str(photo_files[0])

    right_click_menu(view, row)["Copy result"].trigger()
    lines = QApplication.clipboard().text().splitlines()
    assert lines[0] == str(photo_files[0])
    assert [line.split("  ", 1)[1] for line in lines[1:]] == [top.label for top in result.top]
    assert lines[1].split("  ", 1)[0].endswith("%")


def test_a_pasted_picture_has_no_file_to_open_but_its_result_can_be_copied(view, qtbot, opened_urls, photo_files):
    from PySide6.QtGui import QImage

    with qtbot.waitSignal(view.set_finished, timeout=60_000):
        QApplication.clipboard().setImage(QImage(str(photo_files[0])))
        view.paste_from_clipboard()
    actions = right_click_menu(view, 0)

    assert [name for name, action in actions.items() if action.isEnabled()] == ["Copy result"]
    actions["Copy result"].trigger()
    assert QApplication.clipboard().text().startswith("Pasted image\n")
    view.batch.table.setCurrentIndex(view.model.index(0, 0))
    qtbot.keyClick(view.batch.table, Qt.Key.Key_Return)
    assert opened_paths(opened_urls) == []


def test_a_photo_no_program_opens_is_said_in_the_banner(view, qtbot, photo_files):
    # No URL handler here: the offscreen platform, like a desktop without an image viewer, opens nothing.
    table = view.batch.table
    table.setCurrentIndex(view.model.index(row_of(view, "rocket.jpg"), 0))
    qtbot.keyClick(table, Qt.Key.Key_Return)
    assert view.banner.isVisible()
    assert view.banner.message_label.text() == f"Could not open {photo_files[3]}."
    assert "open it from your file manager" in view.banner.hint_label.text()
