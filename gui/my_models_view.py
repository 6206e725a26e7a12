"""The model picker's "My models" page: the models the user trained, listed from their models folder off the GUI
thread, to load, to show in the file manager or to move to the trash. Also the sortable-table helpers the picker's
catalog shares."""
from __future__ import annotations

import datetime as dt
import os
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import (
    QAbstractTableModel,
    QFile,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QIcon, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QStyle,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from engine.my_models import MyModel, list_my_models, models_dir
from engine.specs import Bundle, ModelSpec
from gui.background import BackgroundCalls, background_calls
from gui.result_actions import open_in_system
from gui.status import confirm

if TYPE_CHECKING:
    from gui.evaluate_dialog import EvaluateDialog

SORT_ROLE = Qt.ItemDataRole.UserRole + 1  # numbers for numeric columns, so "9.1 M" sorts below "25.6 M"
PATH_ROLE = Qt.ItemDataRole.UserRole + 3  # the bundle's path; +2 is the catalog's architecture role
NO_PARENT = QModelIndex()  # the root, which a flat table's rows hang from
MY_COLUMNS = ("Name", "Classes", "Accuracy", "Date")
MY_NAME, MY_CLASSES, MY_ACCURACY, MY_DATE = range(len(MY_COLUMNS))
MY_HEADER_TIPS = {MY_ACCURACY: "Accuracy on the validation images set aside when the model was trained"}
MY_MODELS_EMPTY = "Models you train appear here. Train one with Train a model… (Ctrl+T)."
TOOLTIP_LABELS = 8  # a tooltip names this many classes, then says how many more
IN_USE_TIP = "In use: the Classify and Live tabs run this model"


def in_use_icon() -> QIcon:
    """The tick in the first column of the model in use's row. Not bold: the built-in model's name, the catalog's
    longest, would widen its column and push the sizes out of view."""
    return QApplication.style().standardIcon(QStyle.StandardPixmap.SP_DialogApplyButton)


def same_path(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    return os.path.normcase(os.path.abspath(a)) == os.path.normcase(os.path.abspath(b))


class MyModelsTableModel(QAbstractTableModel):
    """The user's trained models as rows, in list_my_models' order (newest first) until a header is clicked."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._models: list[MyModel] = []
        self._texts: list[tuple[str, ...]] = []  # made once per listing: views ask for them on every repaint
        self._in_use: str | None = None  # the bundle the window runs, if it is one of these

    def set_models(self, models: list[MyModel]) -> None:
        if models == self._models:
            return  # nothing changed: keep the view (and its scroll position) as it is
        self.beginResetModel()
        self._models = list(models)
        self._texts = [
            (m.name, str(m.num_classes), format_accuracy(m.accuracy), format_date(m.date)) for m in self._models
        ]
        self.endResetModel()

    def set_in_use(self, bundle: str | None) -> None:
        """Mark the row of `bundle` (the model the window runs) as in use; None marks none."""
        self._in_use = bundle
        if self._models:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._models) - 1, len(MY_COLUMNS) - 1))

    def is_in_use(self, bundle: str | Path) -> bool:
        return self._in_use is not None and same_path(bundle, self._in_use)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = NO_PARENT) -> int:
        return 0 if parent.isValid() else len(self._models)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = NO_PARENT) -> int:
        return 0 if parent.isValid() else len(MY_COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return MY_COLUMNS[section]
        return MY_HEADER_TIPS.get(section) if role == Qt.ItemDataRole.ToolTipRole else None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row, column = index.row(), index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._texts[row][column]
        if role == Qt.ItemDataRole.DecorationRole:
            return in_use_icon() if column == 0 and self.is_in_use(self._models[row].path) else None
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (MY_CLASSES, MY_ACCURACY):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        model = self._models[row]
        if role == SORT_ROLE:  # the date sorts by list position: the engine already ordered by parsed time
            accuracy = -1.0 if model.accuracy is None else model.accuracy
            return (model.name.lower(), model.num_classes, accuracy, len(self._models) - row)[column]
        if role == PATH_ROLE:
            return str(model.path)
        if role == Qt.ItemDataRole.ToolTipRole:
            tip = my_model_tooltip(model)
            return f"{IN_USE_TIP}\n{tip}" if self.is_in_use(model.path) else tip
        return None


def format_accuracy(accuracy: float | None) -> str:
    """ "96 %"; one decimal just under 100 %, where a rounded "100 %" would claim a perfect model."""
    if accuracy is None:
        return "—"
    percent = accuracy * 100
    return f"{percent:.1f} %" if 99.5 <= percent < 100 else f"{percent:.0f} %"


def format_date(iso_date: str) -> str:
    try:
        return f"{dt.datetime.fromisoformat(iso_date):%Y-%m-%d %H:%M}"
    except ValueError:
        return iso_date


def my_model_tooltip(model: MyModel) -> str:
    labels = ", ".join(model.labels[:TOOLTIP_LABELS])
    if model.num_classes > TOOLTIP_LABELS:
        labels += f", … and {model.num_classes - TOOLTIP_LABELS} more"
    lines = [model.name, f"Architecture: {model.architecture}", f"Classes ({model.num_classes}): {labels}"]
    if model.base_model:
        lines.append(f"Started from: {model.base_model}")
    if model.accuracy is not None:
        lines.append(f"Validation accuracy: {format_accuracy(model.accuracy)}")
    lines += [f"Trained: {format_date(model.date)}", str(model.path)]
    return "\n".join(lines)


def move_to_trash(path: str) -> str:
    """Where the user can get a deleted model back. Returns `path`; it still exists if the system had no trash."""
    QFile.moveToTrash(path)
    return path


def folder_lister() -> BackgroundCalls:
    """Lists models folders off the GUI thread: listing reads one small file per bundle (~0.4 ms each here, more
    on slow or network disks). One thread: listings are rare and short."""
    return background_calls("my-models")


class MyModelsPage(QWidget):
    """The user's trained models as a sortable table, with Load, Show folder and Delete buttons."""

    load_requested = Signal(object)  # the ModelSpec of the chosen model's bundle
    listed = Signal()  # the table shows a fresh listing of the models folder
    count_changed = Signal(int)  # how many models the table shows
    message_changed = Signal(str)  # a message for the user to show inline ("" for none)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._listing: Future | None = None
        self._list_again = False
        self._to_select: str | None = None  # a bundle to select once a listing shows it
        self._trashing: Future | None = None
        # Queued even when the listing is already done at submit(): the result must never arrive inside refresh().
        folder_lister().done.connect(self._listing_finished, Qt.ConnectionType.QueuedConnection)
        folder_lister().done.connect(self._trashed, Qt.ConnectionType.QueuedConnection)

        self.table_model = MyModelsTableModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSortRole(SORT_ROLE)
        self.proxy.setSourceModel(self.table_model)
        self.table = sortable_table(self.proxy)
        header = self.table.horizontalHeader()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(MY_NAME, QHeaderView.ResizeMode.Stretch)  # long names elide; numbers stay in view
        self.table.doubleClicked.connect(lambda _index: self.load_chosen())
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.empty_label = QLabel(MY_MODELS_EMPTY)
        self.empty_label.setWordWrap(True)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.load_button = QPushButton("Load")
        self.load_button.setToolTip("Load the chosen model of yours")
        self.load_button.clicked.connect(self.load_chosen)
        self.show_folder_button = QPushButton("Show folder")
        self.show_folder_button.setToolTip("Open the chosen model's folder (its training report is inside), "
                                           "or the folder that holds all your models")
        self.show_folder_button.clicked.connect(self.show_folder)
        self.evaluate_button = QPushButton("Evaluate…")
        self.evaluate_button.setToolTip("Measure the chosen model on a folder of labelled pictures: accuracy, "
                                        "figures per class, confusions and mistakes")
        self.evaluate_button.clicked.connect(self.evaluate_chosen)
        self.evaluate_dialog: EvaluateDialog | None = None
        self.delete_button = QPushButton("Delete…")
        self.delete_button.setToolTip("Move the chosen model to the trash (Del)")
        self.delete_button.clicked.connect(self.delete_chosen)
        QShortcut(QKeySequence.StandardKey.Delete, self.table, self.delete_chosen,
                  context=Qt.ShortcutContext.WidgetShortcut)

        buttons = QHBoxLayout()
        buttons.setSpacing(4)
        for button in (self.load_button, self.evaluate_button, self.show_folder_button, self.delete_button):
            # Narrower than the style's usual minimum when the panel is, so the window fits a 1024-pixel screen.
            button.setMinimumWidth(button.fontMetrics().horizontalAdvance(button.text()) + 14)
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 6, 0, 0)  # lined up with the catalog page beside it
        layout.addWidget(self.table, 1)
        layout.addWidget(self.empty_label, 1)
        layout.addLayout(buttons)
        self._show_models([], listed=False)

    def refresh(self) -> None:
        """List the models folder again, off the GUI thread.

        `listed` is emitted once the table shows the folder as it was at this call or later: while a listing runs,
        further calls ask for one more listing after it, and only that newest one says "listed".
        """
        if self._listing is not None:
            self._list_again = True  # the folder may have changed since the running listing looked
            return
        self._listing = folder_lister().submit(list_my_models, models_dir())

    def _listing_finished(self, listing: Future) -> None:
        if listing is not self._listing:
            return  # another page's listing: every page hears the one lister
        self._listing = None
        self._show_models(listing.result(), listed=True)
        if self._list_again:  # show this one meanwhile, but say "listed" only for the newer look
            self._list_again = False
            self.refresh()
        else:
            self.listed.emit()

    def _show_models(self, models: list[MyModel], listed: bool) -> None:
        chosen = self.chosen_model()
        self.table_model.set_models(models)
        kept = self._row_of(chosen) if chosen else None
        if kept is not None:
            self.table.selectRow(kept.row())
        if self._to_select is not None and (self._select_row(self._to_select) or listed):
            self._to_select = None  # selected, or not in the folder as listed after the request
        self.table.setVisible(bool(models))
        self.empty_label.setVisible(listed and not models)  # no "none yet" before the first listing
        self._update_buttons()
        self.count_changed.emit(len(models))

    def select_model(self, bundle: str) -> None:
        """Select `bundle`'s row: now, or once the listing that is running shows it (a model just trained)."""
        if not self._select_row(bundle):
            self._to_select = bundle

    def _select_row(self, bundle: str) -> bool:
        index = self._row_of(bundle)
        if index is not None:
            self.table.selectRow(index.row())
            self.table.scrollTo(index)
        return index is not None

    def _row_of(self, bundle: str | Path) -> QModelIndex | None:
        """The table's row (first column) showing `bundle`, in its current sort order."""
        for row in range(self.proxy.rowCount()):
            index = self.proxy.index(row, 0)
            if same_path(index.data(PATH_ROLE), bundle):
                return index
        return None

    def _selection_changed(self, _selected, _deselected) -> None:
        self._update_buttons()

    def _update_buttons(self) -> None:
        chosen = self.chosen_model() is not None
        self.load_button.setEnabled(chosen)
        self.evaluate_button.setEnabled(chosen)
        self.delete_button.setEnabled(chosen and self._trashing is None)

    def chosen_model(self) -> Path | None:
        """The selected model's bundle, if any."""
        rows = self.table.selectionModel().selectedRows()
        return Path(rows[0].data(PATH_ROLE)) if rows else None

    def load_chosen(self) -> None:
        path = self.chosen_model()
        if path is None:
            self.message_changed.emit("Choose one of your models in the list.")
        elif not path.exists():  # deleted or moved since the list was made
            self.refresh()
            self.message_changed.emit(f"{path.name} is no longer in your models folder.")
        else:
            self.load_requested.emit(ModelSpec(source=Bundle(str(path))))

    def evaluate_chosen(self) -> None:
        """Open Evaluate on a folder for the chosen model; one at a time, so a running one is brought forward."""
        from gui.evaluate_dialog import EvaluateDialog  # the training modules import torch: not on the window's start

        path = self.chosen_model()
        if path is None:
            return
        if self.evaluate_dialog is not None:
            if self.evaluate_dialog.running:
                self.evaluate_dialog.raise_()
                self.evaluate_dialog.activateWindow()
                return
            self.evaluate_dialog.deleteLater()
        name = self.table.selectionModel().selectedRows()[0].data()
        self.evaluate_dialog = EvaluateDialog(path, name, self.window())
        self.evaluate_dialog.show()

    def delete_chosen(self) -> None:
        """Move the chosen model to the trash, after asking; never the model in use."""
        path = self.chosen_model()
        if path is None or self._trashing is not None:
            return
        name = self.table.selectionModel().selectedRows()[0].data()
        if self.table_model.is_in_use(path):
            self.message_changed.emit(f"“{name}” is in use. Load another model before deleting it.")
            return
        if confirm(self, "Delete model", f"Move “{name}” to the trash?\n{path}"):
            self._trashing = folder_lister().submit(move_to_trash, str(path))
            self._update_buttons()

    def _trashed(self, trashing: Future) -> None:
        if trashing is not self._trashing:
            return
        self._trashing = None
        path = Path(trashing.result())
        if path.exists():
            self.message_changed.emit(
                f"{path.name} could not be moved to the trash. Show folder, then delete it there."
            )
        else:
            self.message_changed.emit("")
        self.refresh()

    def folder_to_show(self) -> Path:
        """The chosen model's bundle folder (or the folder holding a single-file bundle); else the models folder."""
        path = self.chosen_model()
        if path is not None and path.exists():
            return path if path.is_dir() else path.parent
        return models_dir()

    def show_folder(self) -> None:
        folder = self.folder_to_show()
        try:
            folder.mkdir(parents=True, exist_ok=True)  # nothing trained yet: show where models will appear
        except OSError:
            self.message_changed.emit(f"Could not open {folder}.")
            return
        open_in_system(folder, lambda message, hint: self.message_changed.emit(f"{message} {hint}"))


def sortable_table(model: QSortFilterProxyModel) -> QTableView:
    """A read-only, single-row-selection table in the model's own order until a header is clicked."""
    table = QTableView()
    table.setModel(model)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setAlternatingRowColors(True)
    table.setWordWrap(False)
    table.verticalHeader().hide()
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 8)  # compact rows
    table.setSortingEnabled(True)
    table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # the given order until a header is clicked
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setStretchLastSection(True)
    return table
