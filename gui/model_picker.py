"""The model picker: the curated catalog as a searchable, sortable table, any timm name, a weights file or a bundle,
and the user's own trained models (the "My models" tab, gui.my_models_view.MyModelsPage).

It only decides what to load and how to run it; it emits `load_requested(spec, InferenceChoice)` and the window
does the loading. `choice_changed` says the device, precision or backend changed (the window reloads with it).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from PySide6.QtCore import QModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine.bundle import INFO_NAME, WEIGHTS_NAME, is_bundle
from engine.catalog import architecture_problem, catalog, find_entry
from engine.specs import Builtin, Bundle, DeviceSupport, Hub, InferenceChoice, ModelSpec, WeightsFile, spec_for_name
from engine.weights import WEIGHTS_SUFFIXES
from gui.background import background_calls
from gui.catalog_table import ARCH_ROLE, CatalogFilter, CatalogTableModel
from gui.inference_form import InferenceChoiceForm
from gui.my_models_view import MyModelsPage, sortable_table
from gui.zero_shot_page import ZeroShotPage

log = logging.getLogger(__name__)
ERROR_STYLE = "color: #b3261e;"
PICKER_WIDTH = 500  # the docked picker's first width: name, size and speed columns visible at once


class ModelPicker(QWidget):
    load_requested = Signal(object, object)  # ModelSpec, InferenceChoice
    choice_changed = Signal(object)  # InferenceChoice, when the user changes device, precision, backend or int8
    my_models_listed = Signal()  # My models shows a fresh listing of the models folder

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.search_field = QLineEdit()
        self.search_field.setPlaceholderText("Search by name, family or tag (e.g. mobile, vit, accurate)")
        self.search_field.setClearButtonEnabled(True)
        self.table_model = CatalogTableModel(catalog(), self)
        self.proxy = CatalogFilter(self)
        self.proxy.setSourceModel(self.table_model)
        self.search_field.textChanged.connect(self.proxy.set_search)
        self.table = self._make_table()

        self.name_field = QLineEdit()
        self.name_field.setPlaceholderText("or type any timm model name, e.g. resnet50.a1_in1k")
        self.name_field.setClearButtonEnabled(True)
        self.name_field.textEdited.connect(lambda _text: self._show_message(""))
        self.name_field.returnPressed.connect(self.load_chosen)
        self.message_label = QLabel()
        self.message_label.setWordWrap(True)
        self.message_label.setStyleSheet(ERROR_STYLE)
        self.message_label.hide()

        self.choice_form = InferenceChoiceForm()
        self.choice_form.choice_edited.connect(self.choice_changed)
        form = self.choice_form
        self.device_box, self.precision_box, self.backend_box, self.int8_box = (
            form.device_box, form.precision_box, form.backend_box, form.int8_box
        )
        # A typed name outside the catalog is checked off the GUI thread (it needs timm); then `_after_check` runs.
        self._name_check: Future | None = None
        self._after_check: Callable[[], None] = lambda: None
        background_calls("name-check").done.connect(self._name_checked, Qt.ConnectionType.QueuedConnection)

        self.load_button = QPushButton("Load")
        self.load_button.setDefault(True)
        self.load_button.setToolTip("Load the chosen model (downloads pretrained weights once)")
        self.load_button.clicked.connect(self.load_chosen)
        file_button = QPushButton("Load weights file…")
        file_button.setToolTip("A .safetensors/.pth/.pt/.bin file for the chosen model, or a model bundle file")
        file_button.clicked.connect(self.choose_model_file)
        bundle_button = QPushButton("Open bundle folder…")
        bundle_button.clicked.connect(self.choose_bundle_folder)
        self.my_models_page = MyModelsPage()
        self.my_models_page.load_requested.connect(self._request)
        self.my_models_page.message_changed.connect(self._show_message)
        self.my_models_page.count_changed.connect(self._my_models_counted)
        self.my_models_page.listed.connect(self.my_models_listed)
        self.zero_shot_page = ZeroShotPage()
        self.zero_shot_page.load_requested.connect(self._request)
        self.zero_shot_page.message_changed.connect(self._show_message)
        self._lay_out(file_button, bundle_button)

    def _make_table(self) -> QTableView:
        table = sortable_table(self.proxy)
        table.selectionModel().currentRowChanged.connect(self._row_chosen)
        table.doubleClicked.connect(lambda _index: self.load_chosen())
        return table

    def _lay_out(self, file_button: QPushButton, bundle_button: QPushButton) -> None:
        files = QHBoxLayout()
        files.addWidget(file_button)
        files.addWidget(bundle_button)
        files.addStretch(1)
        load_row = QHBoxLayout()
        load_row.addWidget(self.name_field, 1)
        load_row.addWidget(self.load_button)
        self.catalog_page = QWidget()
        catalog_layout = QVBoxLayout(self.catalog_page)
        catalog_layout.setContentsMargins(0, 6, 0, 0)  # lined up with the buttons below the tabs
        catalog_layout.addWidget(self.search_field)
        catalog_layout.addWidget(self.table, 1)
        catalog_layout.addLayout(load_row)

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.catalog_page, "Catalog")
        self.tabs.addTab(self.my_models_page, "My models")
        self.tabs.setTabToolTip(1, "Models you trained, from your models folder")
        self.tabs.addTab(self.zero_shot_page, "Zero-shot")
        self.tabs.setTabToolTip(2, "Classes you name, sorted by CLIP without training")
        self.tabs.currentChanged.connect(self._tab_changed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.message_label)
        layout.addLayout(files)
        layout.addWidget(self.choice_form)

    def sizeHint(self) -> QSize:
        return QSize(PICKER_WIDTH, super().sizeHint().height())

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.refresh_my_models()  # a model may have been trained, or copied into the folder, meanwhile

    def refresh_my_models(self) -> None:
        """List the models folder again, off the GUI thread (call it when training finishes).

        `my_models_listed` is emitted once My models shows the folder as it was at this call or later.
        """
        self.my_models_page.refresh()

    def _tab_changed(self, index: int) -> None:
        if self.tabs.widget(index) is self.my_models_page:
            self.refresh_my_models()

    def _my_models_counted(self, count: int) -> None:
        index = self.tabs.indexOf(self.my_models_page)
        self.tabs.setTabText(index, f"My models ({count})" if count else "My models")

    # What is chosen

    @property
    def device(self) -> str:
        return self.choice_form.device

    @property
    def precision(self) -> str:
        return self.choice_form.precision

    @property
    def choice(self) -> InferenceChoice:
        return self.choice_form.choice

    def set_choice(self, choice: InferenceChoice) -> None:
        """Restore a remembered choice; a device this computer lacks falls back to auto."""
        self.choice_form.set_choice(choice)

    def set_devices(self, devices: DeviceSupport) -> None:
        """The devices the engine found (it imports torch, which knows them); `choice_changed` if the choice
        shown so far cannot be had here."""
        self.choice_form.set_devices(devices)

    def chosen_arch(self) -> str:
        """The typed or selected architecture; selecting a row fills the name field, so the field is the truth."""
        return self.name_field.text().strip()

    def select_arch(self, arch: str) -> None:
        """Show `arch` as the chosen model: its catalog row selected, or just its name typed."""
        rows = [r for r in range(self.table_model.rowCount()) if self.table_model.entry(r).arch == arch]
        index = self.proxy.mapFromSource(self.table_model.index(rows[0], 0)) if rows else QModelIndex()
        if index.isValid():
            self.table.setCurrentIndex(index)
            self.table.scrollTo(index)
        self.name_field.setText(arch)

    def _row_chosen(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self.name_field.setText(current.data(ARCH_ROLE))
            self._show_message("")

    def show_in_use(self, spec: ModelSpec) -> None:
        """Mark the model the window now runs: its catalog row, or its row under My models."""
        self.table_model.set_in_use(spec.arch if isinstance(spec.source, (Hub, Builtin)) else None)
        self.my_models_page.table_model.set_in_use(spec.source.path if isinstance(spec.source, Bundle) else None)
        self.zero_shot_page.show_spec(spec)

    def show_my_model(self, bundle: str) -> None:
        """Open My models at `bundle` (a model just trained and put to use)."""
        self.tabs.setCurrentWidget(self.my_models_page)
        self.my_models_page.select_model(bundle)

    # Loading

    def load_chosen(self) -> None:
        """Load the chosen architecture with its pretrained weights."""
        arch = self.chosen_arch()
        if not arch:
            self._show_message("Choose a model in the list or type a timm model name.")
        else:
            self._when_known(arch, lambda: self._request(spec_for_name(arch)))

    def choose_model_file(self) -> None:
        suffixes = " ".join(f"*{suffix}" for suffix in WEIGHTS_SUFFIXES)
        path, _ = QFileDialog.getOpenFileName(
            self, "Open model file", "", f"Weights and bundles ({suffixes});;All files (*)"
        )
        if path:
            self.load_model_file(path)

    def choose_bundle_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open model bundle folder")
        if path:
            self.load_bundle(path)

    def load_model_file(self, path: str) -> None:
        """A bundle file loads on its own; plain weights load into the chosen architecture (on the Zero-shot tab, the
        chosen CLIP model)."""
        arch = self.chosen_arch()
        if self.tabs.currentWidget() is self.zero_shot_page:
            self.zero_shot_page.use_classes(weights=path)
        elif is_bundle(path):
            self._request(ModelSpec(source=Bundle(path)))
        elif not arch:
            self._show_message(
                f"{Path(path).name} holds weights only: select the architecture it was trained for in the list "
                "(or type its timm name), then load the file again."
            )
        else:
            self._when_known(arch, lambda: self._request(ModelSpec(arch, WeightsFile(path))))

    def load_bundle(self, path: str) -> None:
        if not is_bundle(path):
            self._show_message(
                f"{Path(path).name} is not a Classifier Studio model bundle. "
                f"Choose a folder that holds {INFO_NAME} and {WEIGHTS_NAME}."
            )
            return
        self._request(ModelSpec(source=Bundle(path)))

    def _when_known(self, arch: str, then: Callable[[], None]) -> None:
        """Run `then` if `arch` can be loaded, else say why inline; a newer check or request replaces this one."""
        if find_entry(arch) is not None:  # the catalog's own names need no check (nor timm)
            then()
            return
        # Checking a name outside the catalog needs timm, which the GUI thread never imports.
        self._name_check = background_calls("name-check").submit(architecture_problem, arch)
        self._after_check = then

    def _name_checked(self, check: Future) -> None:
        if check is not self._name_check:
            return  # superseded, or another picker's
        self._name_check = None
        try:
            problem = check.result()
        except Exception:  # noqa: BLE001 - let the engine try it: its load reports what is wrong
            log.exception("Could not check the model name")
            problem = ""
        if problem:
            self._show_message(problem)
        else:
            self._after_check()

    def _request(self, spec: ModelSpec) -> None:
        self._name_check = None  # a name still being checked is no longer what the user asked for
        self._show_message("")
        self.load_requested.emit(spec, self.choice)

    def _show_message(self, text: str) -> None:
        self.message_label.setText(text)
        self.message_label.setVisible(bool(text))

    @property
    def message(self) -> str:
        """The inline message shown under the name field ("" when none)."""
        return self.message_label.text() if self.message_label.isVisibleTo(self) else ""

