"""What a user does with one result of the batch table: open the photo, show its folder, copy its path or its
classes. Double-click or Enter opens it; a right-click offers the rest."""
from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtCore import QModelIndex, QObject, QPoint, Qt, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import QApplication, QMenu, QTableView

from engine.results import ImageResult
from gui.result_widgets import format_percent


def result_text(result: ImageResult) -> str:
    """The result as a user pastes it into a note or a chat: the path, then one class per line."""
    if result.error is not None:
        return f"{result.path}\n{result.error}"
    return "\n".join([result.path, *(f"{format_percent(top.prob)}  {top.label}" for top in result.top)])


class RowActions(QObject):
    """The batch table's row actions; `result_at(row)` gives the result a table row shows."""

    failed = Signal(str, str)  # message, hint: a file that could not be opened

    def __init__(self, table: QTableView, result_at) -> None:
        super().__init__(table)
        self.table = table
        self.result_at = result_at
        table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        table.customContextMenuRequested.connect(self._show_menu)
        table.activated.connect(self._open_row)  # double-click, or Enter on the current row
        self.menu: QMenu | None = None  # the last menu shown, for tests and for screen readers

    def _show_menu(self, position: QPoint) -> None:
        index = self.table.indexAt(position)
        if not index.isValid():
            return
        self.table.setCurrentIndex(index)  # as in a file manager: the row the menu is for is the one selected
        result = self.result_at(index.row())
        is_file = os.path.isfile(result.path)
        menu = QMenu(self.table)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        _add(menu, "Open", lambda: self.open_file(result.path), is_file, QKeySequence(Qt.Key.Key_Return))
        _add(menu, "Show in folder", lambda: self.open_file(os.path.dirname(result.path)), is_file)
        menu.addSeparator()
        _add(menu, "Copy path", lambda: QApplication.clipboard().setText(result.path), os.path.isabs(result.path))
        _add(menu, "Copy result", lambda: QApplication.clipboard().setText(result_text(result)))
        self.menu = menu
        menu.popup(self.table.viewport().mapToGlobal(position))

    def _open_row(self, index: QModelIndex) -> None:
        result = self.result_at(index.row())
        if os.path.isfile(result.path):
            self.open_file(result.path)

    def open_file(self, path: str) -> None:
        open_in_system(path, self.failed.emit)


def open_in_system(path: str | os.PathLike, failed: Callable[[str, str], None]) -> None:
    """Open a photo, a folder or a report in the program the system uses for it; when none does, `failed` gets the
    message and the hint, for the caller to show where the user is looking."""
    if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))):
        failed(f"Could not open {path}.", "No program on this system opens it; open it from your file manager instead.")


def _add(menu: QMenu, text: str, slot, enabled: bool = True, shortcut: QKeySequence | None = None) -> QAction:
    action = menu.addAction(text)
    action.triggered.connect(slot)
    action.setEnabled(enabled)
    if shortcut is not None:
        action.setShortcut(shortcut)  # shown beside the item, as a hint; the table handles the key itself
    return action
