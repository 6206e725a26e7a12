"""The wizard's model page: which catalog model to start from (with a recommendation), its weights, and the method."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.catalog import BUILTIN_ARCH, BUILTIN_TAG, GUIDANCE, CatalogEntry, base_name, catalog, is_known_architecture
from engine.training.plan import METHODS
from engine.weights import WEIGHTS_SUFFIXES
from gui.train_pages import ModelChoice, WizardPage, WizardState, bold_label, error_label, note_label, show_error

# (images below, words, catalog tag), smallest first: the catalog's "Dataset Size Guidelines".
DATASET_SIZES = ((1_000, "small", "small datasets"), (10_000, "medium", "medium datasets"),
                 (float("inf"), "large", "large datasets"))
PRIORITIES = {"fast": ("Fast", "fastest"), "accurate": ("Accurate", "most accurate"), "small": ("Small", "smallest")}
COLUMNS = ("Model", "Family", "Params", "GMACs", "Input", "Suits")
ARCH_ROLE = Qt.ItemDataRole.UserRole + 1


def dataset_size(num_images: int) -> tuple[str, str]:
    """("small" | "medium" | "large", the catalog tag for it)."""
    return next((words, tag) for limit, words, tag in DATASET_SIZES if num_images < limit)


def recommend(entries: list[CatalogEntry], num_images: int, priority: str | None) -> CatalogEntry:
    """The built-in model unless a priority is chosen; then the guidance's first pick for it, preferring one that
    also suits the data set's size."""
    by_name = {entry.display_name: entry for entry in entries}
    default = next(entry for entry in entries if entry.arch == BUILTIN_ARCH)
    if priority is None:
        return default
    picks = [by_name[name] for name in GUIDANCE[PRIORITIES[priority][1]] if name in by_name]
    size_tag = dataset_size(num_images)[1]
    fitting = [entry for entry in picks if size_tag in entry.tags]
    return (fitting or picks or [default])[0]


def _row_name(entry: CatalogEntry) -> str:
    return f"{entry.display_name} ({BUILTIN_TAG})" if entry.arch == BUILTIN_ARCH else entry.display_name


class ModelPage(WizardPage):
    title = "Model"
    subtitle = "The model your classifier starts from, and how it learns your classes."

    def __init__(self, state: WizardState, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.entries = catalog()
        self.note = note_label()
        self.error = error_label()
        self.recommendation = QLabel()
        self.recommendation.setWordWrap(True)
        self.priority_group = QButtonGroup(self)
        self.priority_buttons: dict[str, QRadioButton] = {}
        for key, (words, _tag) in PRIORITIES.items():
            button = QRadioButton(words)
            self.priority_group.addButton(button)
            self.priority_buttons[key] = button
            button.toggled.connect(self._priority_changed)
        self.table = self._make_table()
        self.other_field = QLineEdit()
        self.other_field.setPlaceholderText("or type any timm model name, e.g. resnet26d")
        self.other_field.setClearButtonEnabled(True)
        self.other_field.textEdited.connect(self._other_typed)
        self.start_group = QButtonGroup(self)
        self.pretrained_radio = QRadioButton()
        self.scratch_radio = QRadioButton("Random weights (from scratch: needs many images and the full method)")
        self.file_radio = QRadioButton("Weights file or bundle:")
        for button in (self.pretrained_radio, self.scratch_radio, self.file_radio):
            self.start_group.addButton(button)
            button.toggled.connect(self._changed)
        self.pretrained_radio.setChecked(True)
        self.file_field = QLineEdit()
        self.file_field.setPlaceholderText("a .safetensors/.pth file or a model bundle")
        self.file_field.textChanged.connect(lambda _text: self.file_radio.setChecked(True))
        self.method_group = QButtonGroup(self)
        self.method_radios: dict[str, QRadioButton] = {}
        for method in METHODS:
            radio = QRadioButton({"quick": "Quick", "full": "Full fine-tune"}.get(method, method))
            self.method_group.addButton(radio)
            self.method_radios[method] = radio
            radio.toggled.connect(self._changed)
        self.method_radios["quick"].setChecked(True)
        self._lay_out()
        self._select_arch(BUILTIN_ARCH)

    def _make_table(self) -> QTableWidget:
        table = QTableWidget(len(self.entries), len(COLUMNS))
        table.setHorizontalHeaderLabels(COLUMNS)
        table.verticalHeader().hide()
        table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 8)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setAlternatingRowColors(True)
        table.setWordWrap(False)
        for row, entry in enumerate(self.entries):
            cells = (_row_name(entry), entry.family, f"{entry.params / 1e6:.1f} M", f"{entry.gflops:.2f}",
                     f"{entry.input_size[0]} px", ", ".join(t for t in entry.tags if t != BUILTIN_TAG))
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(ARCH_ROLE, entry.arch)
                item.setToolTip(f"{entry.display_name} — {entry.arch}")
                if column in (2, 3, 4):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                table.setItem(row, column, item)
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        table.currentCellChanged.connect(self._row_chosen)
        return table

    def _lay_out(self) -> None:
        priority_row = QHBoxLayout()
        priority_row.addWidget(QLabel("What matters most?"))
        for button in self.priority_buttons.values():
            priority_row.addWidget(button)
        priority_row.addStretch(1)
        box = QFrame()
        box.setFrameShape(QFrame.Shape.StyledPanel)
        box_layout = QVBoxLayout(box)
        box_layout.addWidget(self.recommendation)
        box_layout.addLayout(priority_row)
        file_row = QHBoxLayout()
        file_row.addWidget(self.file_radio)
        file_row.addWidget(self.file_field, 1)
        for text, slot in (("File…", self.choose_weights_file), ("Bundle folder…", self.choose_bundle_folder)):
            button = QPushButton(text)
            button.clicked.connect(slot)
            file_row.addWidget(button)
        choices = QGridLayout()
        choices.setColumnStretch(1, 1)
        choices.addWidget(bold_label("Start from"), 0, 0, Qt.AlignmentFlag.AlignTop)
        start = QVBoxLayout()
        start.addWidget(self.pretrained_radio)
        start.addWidget(self.scratch_radio)
        start.addLayout(file_row)
        choices.addLayout(start, 0, 1)
        choices.addWidget(bold_label("Method"), 1, 0, Qt.AlignmentFlag.AlignTop)
        methods = QVBoxLayout()
        for method, radio in self.method_radios.items():
            methods.addWidget(radio)
            description = note_label(METHODS[method].split(": ", 1)[-1])
            description.setContentsMargins(24, 0, 0, 4)
            methods.addWidget(description)
        choices.addLayout(methods, 1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(box)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.other_field)
        layout.addLayout(choices)
        layout.addWidget(self.note)
        layout.addWidget(self.error)

    # Recommendation

    def enter(self) -> None:
        self._show_recommendation()

    def _num_images(self) -> int:
        return self.state.scan.num_images if self.state.scan else 0

    def priority(self) -> str | None:
        return next((key for key, button in self.priority_buttons.items() if button.isChecked()), None)

    def _priority_changed(self, checked: bool) -> None:
        if checked:
            self._select_arch(recommend(self.entries, self._num_images(), self.priority()).arch)
            self._show_recommendation()

    def _show_recommendation(self) -> None:
        count = self._num_images()
        words, size_tag = dataset_size(count)
        pick = recommend(self.entries, count, self.priority())
        if self.priority() is None:
            why = ("built in, so it works offline with no download, and small enough to fine-tune on a CPU. "
                   "Choose a priority to see other suggestions.")
        else:
            why = f"the catalog's pick for “{PRIORITIES[self.priority()][1]}”"
            why += f" that also suits {size_tag}." if size_tag in pick.tags else "."
        self.recommendation.setText(
            f"Your {count:,} images make a <b>{words}</b> data set. Recommended: <b>{pick.display_name}</b> — {why}"
        )
        bold = QFont(self.table.font())
        bold.setBold(True)
        header = self.table.horizontalHeader()
        # Sized to contents, the columns are measured again after every cell's change: 320 ms for the table.
        header.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        for row, entry in enumerate(self.entries):
            fits = size_tag in entry.tags or entry.arch == pick.arch
            for column in range(len(COLUMNS)):
                self.table.item(row, column).setFont(bold if fits else self.table.font())
            name = self.table.item(row, 0)
            name.setText(f"★ {_row_name(entry)}" if entry.arch == pick.arch else _row_name(entry))
            name.setToolTip("Recommended for your images" if entry.arch == pick.arch else entry.arch)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)  # once, for all the changes

    # Choosing

    def _select_arch(self, arch: str) -> None:
        row = next((r for r, entry in enumerate(self.entries) if entry.arch == arch), -1)
        if row >= 0:
            self.table.setCurrentCell(row, 0)
            self.table.scrollToItem(self.table.item(row, 0))
        self._changed()

    def select_model(self, name: str) -> None:
        """Choose a catalog model by architecture, or type any other timm name (as a user would)."""
        if any(entry.arch == name for entry in self.entries):
            self.other_field.clear()
            self._select_arch(name)
        else:
            self.other_field.setText(name)
            self._other_typed(name)

    def _row_chosen(self, row: int, _column: int, _previous_row: int, _previous_column: int) -> None:
        if row >= 0 and self.other_field.text():
            self.other_field.clear()
        self._changed()

    def _other_typed(self, text: str) -> None:
        if text.strip():
            self.table.clearSelection()
            self.table.setCurrentCell(-1, -1)
        self._changed()

    def choose_weights_file(self) -> None:
        suffixes = " ".join(f"*{suffix}" for suffix in WEIGHTS_SUFFIXES)
        path, _ = QFileDialog.getOpenFileName(self, "Start from weights", "", f"Weights and bundles ({suffixes})")
        if path:
            self.file_field.setText(path)

    def choose_bundle_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Start from a model bundle folder")
        if path:
            self.file_field.setText(path)

    def set_start(self, init: str) -> None:
        """"pretrained" (or "builtin"), "scratch", or a weights file / bundle path."""
        if init in ("pretrained", "builtin"):
            self.pretrained_radio.setChecked(True)
        elif init == "scratch":
            self.scratch_radio.setChecked(True)
        else:
            self.file_field.setText(init)

    def set_method(self, method: str) -> None:
        self.method_radios[method].setChecked(True)

    def _entry(self) -> CatalogEntry | None:
        row = self.table.currentRow()
        return self.entries[row] if row >= 0 and not self.other_field.text().strip() else None

    def arch(self) -> str:
        entry = self._entry()
        return entry.arch if entry else self.other_field.text().strip()

    def choice(self) -> ModelChoice:
        entry, arch = self._entry(), self.arch()
        is_builtin = base_name(arch) == base_name(BUILTIN_ARCH)
        if self.scratch_radio.isChecked():
            init = "scratch"
        elif self.file_radio.isChecked():
            init = self.file_field.text().strip()
        else:
            init = "builtin" if is_builtin and arch == BUILTIN_ARCH else "pretrained"
        method = next(m for m, radio in self.method_radios.items() if radio.isChecked())
        name = entry.display_name if entry else arch
        return ModelChoice(arch, init, method, name, entry.input_size[0] if entry else 0)

    def _changed(self, *_args) -> None:
        arch = self.arch()
        builtin = arch == BUILTIN_ARCH
        self.pretrained_radio.setText("Built-in weights (works offline, no download)" if builtin
                                      else "Pretrained weights (downloaded once, needs the internet)")
        notes = []
        if self.scratch_radio.isChecked() and self.method_radios["quick"].isChecked():
            notes.append("From scratch, Quick trains only a new head on random features: choose Full fine-tune "
                         "for a real result.")
        if self.file_radio.isChecked():
            notes.append("A bundle brings its own architecture; a plain weights file must fit the model chosen above.")
        self.note.setText(" ".join(notes))
        self.note.setVisible(bool(notes))
        show_error(self.error, "")
        self.state.model = self.choice() if arch else None
        self.complete_changed.emit()

    def is_complete(self) -> bool:
        return bool(self.arch()) and (not self.file_radio.isChecked() or bool(self.file_field.text().strip()))

    def validate(self) -> str:
        arch, choice = self.arch(), self.choice()
        message = ""
        if self._entry() is None and not is_known_architecture(arch):
            message = (f"“{arch}” is not a model timm knows. Choose one in the list, or check the name "
                       "(e.g. resnet26d).")
        elif self.file_radio.isChecked() and not Path(choice.init).expanduser().exists():
            message = f"{choice.init} does not exist: choose a weights file or a model bundle folder."
        show_error(self.error, message)
        self.state.model = None if message else choice
        return message
