"""A right-click on a heat map: Copy picture, or Save picture… as PNG, JPEG or WebP, for a report or a slide (the
picture `main.py explain` saves)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QPoint, QStandardPaths, Qt, Signal
from PySide6.QtWidgets import QApplication, QFileDialog, QLabel, QMenu

from engine.errors import UserFacingError
from gui.result_widgets import thumbnail_pixmap

if TYPE_CHECKING:
    import numpy as np

PICTURE_TIP = "Right-click to copy or save this picture."
SAVE_FILTERS = "PNG picture (*.png);;JPEG picture (*.jpg *.jpeg);;WebP picture (*.webp)"
_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def heat_map_name(photo: str, label: str) -> str:
    """`cat-where-it-looked-Egyptian cat.png`: the photo's name and the class's first name, as a file name."""
    from engine.sort_into_folders import class_folder_name  # what every desktop system takes in a name

    stem = Path(photo).stem or "picture"
    return f"{stem}-where-it-looked-{class_folder_name(label.split(',')[0])}.png"


class PictureMenu(QObject):
    """The context menu of a label while it shows a picture that `pixels` returns (None: no menu). `name` gives the
    file name offered when saving, beside the photo when `folder` gives one. A failed save says why (failed)."""

    failed = Signal(str, str)  # message, hint

    def __init__(self, label: QLabel, pixels: Callable[[], np.ndarray | None], name: Callable[[], str],
                 folder: Callable[[], str] = lambda: "") -> None:
        super().__init__(label)
        self.label, self._pixels, self._name, self._folder = label, pixels, name, folder
        self.menu: QMenu | None = None  # the last menu shown, for tests and screen readers
        label.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        label.customContextMenuRequested.connect(self._show_menu)

    def _show_menu(self, position: QPoint) -> None:
        pixels = self._pixels()
        if pixels is None:
            return
        menu = QMenu(self.label)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.addAction("Copy picture", lambda: QApplication.clipboard().setImage(thumbnail_pixmap(pixels).toImage()))
        menu.addAction("Save picture…", lambda: self.save(pixels))
        self.menu = menu
        menu.popup(self.label.mapToGlobal(position))

    def save(self, pixels: np.ndarray) -> None:
        from engine.files import save_picture

        folder = self._folder() or QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
        path, _ = QFileDialog.getSaveFileName(self.label, "Save picture", str(Path(folder) / self._name()),
                                              SAVE_FILTERS)
        if not path:
            return
        if not path.lower().endswith(_SUFFIXES):
            path += ".png"
        try:
            save_picture(pixels, path)
        except UserFacingError as exc:  # a full disk, a folder not ours to write
            self.failed.emit(exc.message, exc.hint)
