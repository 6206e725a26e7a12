"""The main window's menu bar: File (with the folders classified lately), Model, View and Help."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QToolButton

from gui.settings import AppSettings

if TYPE_CHECKING:
    from gui.main_window import MainWindow


def add_action(menu: QMenu, text: str, slot, shortcut: str | QKeySequence.StandardKey | None = None) -> QAction:
    action = menu.addAction(text)
    action.triggered.connect(slot)
    if isinstance(shortcut, QKeySequence.StandardKey):
        action.setShortcuts(shortcut)  # all of the platform's bindings, e.g. Ctrl+V and Shift+Ins
    elif shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    return action


class RecentFoldersMenu(QMenu):
    """File ▸ Open recent: the folders the user classified lately, newest first; choosing one classifies it again."""

    def __init__(self, settings: AppSettings, open_folder: Callable[[str], None], parent: QMenu) -> None:
        super().__init__("Open &recent", parent)  # owned by its menu, as addMenu(title) would make it
        self._settings = settings
        self._open_folder = open_folder
        self.refresh()

    def refresh(self) -> None:
        self.clear()
        for folder in self._settings.recent_folders:
            action = self.addAction(folder)
            action.triggered.connect(lambda _checked=False, f=folder: self._open_folder(f))
        if self._settings.recent_folders:
            self.addSeparator()
            add_action(self, "Clear recent folders", self._clear)
        self.setEnabled(bool(self._settings.recent_folders))

    def _clear(self) -> None:
        self._settings.recent_folders = []
        self.refresh()


def build_menu_bar(window: MainWindow) -> None:
    """Fill the window's menu bar; keeps `window.recent_menu` and `window.train_action`, which change later."""
    view = window.classify_view
    file_menu = window.menuBar().addMenu("&File")
    add_action(file_menu, "&Open images…", view.open_files, QKeySequence.StandardKey.Open)
    add_action(file_menu, "Open &folder…", view.open_folder, "Ctrl+Shift+O")
    window.recent_menu = RecentFoldersMenu(window.settings, lambda folder: view.add_paths([folder]), file_menu)
    file_menu.addMenu(window.recent_menu)
    add_action(file_menu, "&Paste image", view.paste_from_clipboard, QKeySequence.StandardKey.Paste)
    file_menu.addSeparator()
    add_action(file_menu, "&Export results…", view.export_results, "Ctrl+E")
    add_action(file_menu, "&Sort into folders…", view.sort_into_folders)
    file_menu.addSeparator()
    add_action(file_menu, "Open &model file…", window.open_model_file)
    file_menu.addSeparator()
    add_action(file_menu, "&Quit", window.close, "Ctrl+Q")  # Windows has no standard Quit key

    model_menu = window.menuBar().addMenu("&Model")
    add_action(model_menu, "&Choose model…", window.toggle_picker, "Ctrl+M")
    add_action(model_menu, "Cancel &loading", window.bridge.cancel_load)
    model_menu.addSeparator()
    window.train_action = add_action(model_menu, "&Train a model…", window.open_train_wizard, "Ctrl+T")
    window.train_action.setToolTip("Teach a model your own classes from a folder of images (Ctrl+T)")
    window.train_action.setIconText("Train a model…")  # a tool button would drop the ellipsis and the &
    train_button = QToolButton()
    train_button.setDefaultAction(window.train_action)
    window.tabs.setCornerWidget(train_button, Qt.Corner.TopRightCorner)

    view_menu = window.menuBar().addMenu("&View")
    toggle = window.picker_dock.toggleViewAction()
    toggle.setText("&Model picker")
    view_menu.addAction(toggle)

    help_menu = window.menuBar().addMenu("&Help")
    add_action(help_menu, "Show &log", window.show_log)
    add_action(help_menu, "&About Classifier Studio", window.show_about)
