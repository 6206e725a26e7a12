"""The model picker's Catalog tab: the curated catalog as a table people read and sort, filtered by a search."""
from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt

from engine.catalog import BUILTIN_TAG, CatalogEntry
from gui.my_models_view import IN_USE_TIP, NO_PARENT, SORT_ROLE, in_use_icon

COLUMNS = ("Family", "Name", "Params", "GMACs", "Input", "Tags")
FAMILY, NAME, PARAMS, GMACS, INPUT, TAGS = range(len(COLUMNS))
ARCH_ROLE = Qt.ItemDataRole.UserRole + 2
HEADER_TIPS = {
    PARAMS: "Parameters, in millions",
    GMACS: "Billions of multiply-adds per image at the input size (about half the FLOPs)",
    INPUT: "Image size the pretrained weights were made for (height × width)",
    TAGS: "Guidance: which models suit which needs",
}


def format_params(params: int) -> str:
    return f"{params / 1e6:.1f} M"


class CatalogTableModel(QAbstractTableModel):
    """Catalog entries as rows; DisplayRole is what people read, SORT_ROLE what sorting compares."""

    def __init__(self, entries: list[CatalogEntry], parent=None) -> None:
        super().__init__(parent)
        self._entries = entries
        self._in_use: str | None = None  # the architecture the window runs with its catalog weights, if any

    def set_in_use(self, arch: str | None) -> None:
        """Mark the row of `arch` as the model in use; None marks none."""
        self._in_use = arch
        self.dataChanged.emit(self.index(0, 0), self.index(len(self._entries) - 1, len(COLUMNS) - 1))

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = NO_PARENT) -> int:
        return 0 if parent.isValid() else len(self._entries)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = NO_PARENT) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def entry(self, row: int) -> CatalogEntry:
        return self._entries[row]

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return HEADER_TIPS.get(section)
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        entry, column = self._entries[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return _display(entry, column)
        if role == SORT_ROLE:
            return _sort_key(entry, column)
        if role == ARCH_ROLE:
            return entry.arch
        in_use = entry.arch == self._in_use
        if role == Qt.ItemDataRole.DecorationRole:
            return in_use_icon() if column == 0 and in_use else None
        if role == Qt.ItemDataRole.ToolTipRole:
            tip = f"{entry.display_name} — {entry.arch} ({entry.num_classes} classes, {entry.source})"
            return f"{IN_USE_TIP}\n{tip}" if in_use else tip
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (PARAMS, GMACS, INPUT):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


def _display(entry: CatalogEntry, column: int) -> str:
    if column == FAMILY:
        return entry.family
    if column == NAME:  # the built-in model is marked where the eye lands, not only in the Tags column
        return f"{entry.display_name} ({BUILTIN_TAG})" if entry.source == "builtin" else entry.display_name
    if column == PARAMS:
        return format_params(entry.params)
    if column == GMACS:
        return f"{entry.gflops:.2f}"
    if column == INPUT:
        return f"{entry.input_size[0]} × {entry.input_size[1]}"
    return ", ".join(entry.tags)


def _sort_key(entry: CatalogEntry, column: int):
    if column == PARAMS:
        return entry.params
    if column == GMACS:
        return entry.gflops
    if column == INPUT:
        return entry.input_size[0] * entry.input_size[1]
    return _display(entry, column).lower()


class CatalogFilter(QSortFilterProxyModel):
    """Keeps the rows whose name, family, architecture or tags contain every word of the search."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._words: list[str] = []
        self.setSortRole(SORT_ROLE)

    def set_search(self, text: str) -> None:
        self.beginFilterChange()
        self._words = text.lower().split()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex) -> bool:
        entry = self.sourceModel().entry(source_row)
        text = " ".join((entry.display_name, entry.family, entry.arch, *entry.tags)).lower()
        compact = text.replace("-", "").replace(" ", "")  # "mobilenet v3" finds "MobileNetV3-Large"
        return all(word in text or word in compact for word in self._words)
