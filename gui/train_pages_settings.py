"""The wizard's settings page: the few settings most people touch, every other TrainPlan field under "Advanced",
and where the finished model is saved. Everything starts at TrainPlan's defaults, so pressing Next is enough."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.devices import available_devices
from engine.errors import UserFacingError
from engine.training.plan import AUGMENTATIONS, TrainPlan, default_model_name
from engine.training.run import models_dir, unique_path
from gui.train_pages import WizardPage, WizardState, bold_label, error_label, note_label, show_error

DEFAULTS = TrainPlan(data_dir="")
AUGMENTATION_WORDS = {
    "none": "None: the images as they are",
    "light": "Light: flips, gentle crops and colour changes",
    "standard": "Standard: stronger crops and RandAugment",
    "heavy": "Heavy: strong crops, RandAugment, erasing, mixup",
}
DEVICE_WORDS = {"auto": "Automatic (a GPU when there is one)", "cpu": "CPU", "cuda": "CUDA GPU", "mps": "Apple GPU"}


class LearningRateBox(QDoubleSpinBox):
    """A learning rate typed and shown as 0.001 or 1e-05; the arrows halve and double it; 0 is "auto"."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setDecimals(10)
        self.setRange(0.0, 10.0)

    def textFromValue(self, value: float) -> str:
        return f"{value:g}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text.strip())
        except ValueError:
            return 0.0

    def validate(self, text: str, position: int):
        stripped = text.strip()
        if stripped == self.specialValueText() or stripped in ("", ".", "-", "e"):
            return QValidator.State.Intermediate, text, position
        try:
            value = float(stripped)
        except ValueError:
            partial = stripped.endswith(("e", "e-", "E", "E-"))
            return (QValidator.State.Intermediate if partial else QValidator.State.Invalid), text, position
        return (QValidator.State.Acceptable if 0 <= value <= 10 else QValidator.State.Invalid), text, position

    def stepBy(self, steps: int) -> None:
        value = self.value() or 1e-4
        self.setValue(value * 2.0 ** steps)


def spin(low: int, high: int, value: int, special: str = "", suffix: str = "", step: int = 1) -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setSingleStep(step)
    box.setValue(value)
    box.setSuffix(suffix)
    if special:
        box.setSpecialValueText(special)
    return box


def decimal(low: float, high: float, value: float, decimals: int, step: float) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(low, high)
    box.setDecimals(decimals)
    box.setSingleStep(step)
    box.setValue(value)
    return box


def _form() -> QFormLayout:
    """A form whose fields keep their natural width: a spin box stretched across the page reads badly."""
    form = QFormLayout()
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
    form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft)
    form.setHorizontalSpacing(16)
    return form


class SettingsPage(WizardPage):
    title = "Settings"
    subtitle = "The defaults suit most folders: press Start training. Change what you know you need."
    next_text = "Start training"

    def __init__(self, state: WizardState, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self._scan_seen = None
        self._class_weights_seen = DEFAULTS.class_weights
        self.epochs = spin(0, 1000, DEFAULTS.epochs, "auto")
        self.batch_size = spin(1, 4096, DEFAULTS.batch_size)
        self.lr = LearningRateBox()
        self.lr.setValue(DEFAULTS.lr)
        self.image_size = spin(0, 2048, DEFAULTS.image_size, "auto", " px", 32)
        self.val_percent = spin(5, 50, round(DEFAULTS.val_fraction * 100), suffix=" %")
        self.augmentation = QComboBox()
        for preset in AUGMENTATIONS:
            self.augmentation.addItem(AUGMENTATION_WORDS.get(preset, preset), preset)
        self.augmentation.setCurrentIndex(AUGMENTATIONS.index(DEFAULTS.augmentation))
        self.name = QLineEdit()
        self.save_in = QLineEdit()
        self.save_in.setPlaceholderText(str(models_dir()))
        self._advanced_fields()
        for box in (self.epochs, self.batch_size, self.lr, self.image_size, self.val_percent):
            box.setMinimumWidth(box.fontMetrics().horizontalAdvance("auto (0.0001)") + 48)
        self.error = error_label()
        self._lay_out()

    def _advanced_fields(self) -> None:
        d = DEFAULTS
        self.head_lr_multiplier = decimal(1.0, 1000.0, d.head_lr_multiplier, 1, 1.0)
        self.head_lr_multiplier.setToolTip("Full method: the new head learns this many times faster than the rest")
        self.weight_decay = decimal(0.0, 1.0, d.weight_decay, 4, 0.01)
        self.warmup_epochs = decimal(0.0, 100.0, d.warmup_epochs, 1, 0.5)
        self.warmup_epochs.setToolTip("Epochs over which the learning rate rises to its full value")
        self.label_smoothing = decimal(0.0, 0.9, d.label_smoothing, 2, 0.05)
        self.eval_every = spin(1, 100, d.eval_every)
        self.patience = spin(0, 1000, d.early_stopping_patience, "never")
        self.patience.setToolTip("Stop when this many evaluations in a row bring no improvement")
        self.grad_accumulation = spin(1, 256, d.grad_accumulation)
        self.grad_accumulation.setToolTip("Add up the gradients of this many batches per step: a larger batch in "
                                          "the same memory")
        self.mixed_precision = QCheckBox("Mixed precision")
        self.mixed_precision.setToolTip("Faster training in half precision; used on CUDA GPUs only")
        self.mixed_precision.setChecked(d.mixed_precision)
        self.class_weights = QCheckBox("Class weights")
        self.class_weights.setToolTip("The loss counts images of small classes more: for lopsided folders")
        self.class_weights.setChecked(d.class_weights)
        self.balanced_sampling = QCheckBox("Balanced sampling")
        self.balanced_sampling.setToolTip("Draw images of each class equally often: for lopsided folders")
        self.balanced_sampling.setChecked(d.balanced_sampling)
        self.progressive_unfreeze = QCheckBox("Progressive unfreeze")
        self.progressive_unfreeze.setToolTip("Full method: train the head first, then the later stages, then all")
        self.progressive_unfreeze.setChecked(d.progressive_unfreeze)
        self.export_onnx = QCheckBox("Also export ONNX")
        self.export_onnx.setToolTip("Write model.onnx beside the model, checked against it: for ONNX Runtime, "
                                    "OpenCV or phones. Adds a few seconds to a minute at the end.")
        self.export_onnx.setChecked(d.export_onnx)
        self.seed = spin(0, 2**31 - 1, d.seed)
        self.seed.setToolTip("The same seed, data and settings give the same split and the same model")
        self.workers = spin(0, 64, d.workers, "none (in the training thread)")
        self.workers.setToolTip("Processes that decode images beside the training; 0 decodes in the training thread")
        self.device = QComboBox()
        for device in ("auto", *available_devices()):
            self.device.addItem(DEVICE_WORDS.get(device, device), device)
        self.device.setCurrentIndex(max(self.device.findData(d.device), 0))

    def _lay_out(self) -> None:
        basic = _form()
        basic.addRow("Epochs", self.epochs)
        basic.addRow("Batch size", self.batch_size)
        basic.addRow("Learning rate", self.lr)
        basic.addRow("Image size", self.image_size)
        basic.addRow("Validation share", self.val_percent)
        basic.addRow("Augmentation", self.augmentation)
        output = QFormLayout()
        output.addRow("Model name", self.name)
        save_row = QHBoxLayout()
        save_row.addWidget(self.save_in, 1)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self.choose_folder)
        save_row.addWidget(browse)
        output.addRow("Save in", save_row)
        self.output_note = note_label()
        self.name.textChanged.connect(self._show_output)
        self.save_in.textChanged.connect(self._show_output)

        self.advanced_toggle = QToolButton()
        self.advanced_toggle.setText("Advanced")
        self.advanced_toggle.setCheckable(True)
        self.advanced_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_toggle.setAutoRaise(True)
        self.advanced = QFrame()
        self.advanced.setFrameShape(QFrame.Shape.StyledPanel)
        grid = QGridLayout(self.advanced)
        grid.setHorizontalSpacing(24)
        left, right = _form(), _form()
        for label, field in (("Head learning rate ×", self.head_lr_multiplier), ("Weight decay", self.weight_decay),
                             ("Warm-up (epochs)", self.warmup_epochs), ("Label smoothing", self.label_smoothing),
                             ("Evaluate every (epochs)", self.eval_every)):
            left.addRow(label, field)
        for label, field in (("Stop early after (evaluations)", self.patience),
                             ("Gradient accumulation (batches)", self.grad_accumulation), ("Seed", self.seed),
                             ("Loader workers", self.workers), ("Device", self.device)):
            right.addRow(label, field)
        checks = QHBoxLayout()
        for box in (self.mixed_precision, self.class_weights, self.balanced_sampling, self.progressive_unfreeze,
                    self.export_onnx):
            checks.addWidget(box)
        checks.addStretch(1)
        grid.addLayout(left, 0, 0)
        grid.addLayout(right, 0, 1)
        grid.addLayout(checks, 1, 0, 1, 2)
        grid.setColumnStretch(2, 1)
        self.advanced.hide()
        self.advanced_toggle.toggled.connect(self._toggle_advanced)

        content = QWidget()
        layout = QVBoxLayout(content)
        layout.setContentsMargins(0, 0, 8, 0)
        layout.addWidget(bold_label("Training"))
        layout.addLayout(basic)
        layout.addSpacing(8)
        layout.addWidget(bold_label("The finished model"))
        layout.addLayout(output)
        layout.addWidget(self.output_note)
        layout.addSpacing(8)
        layout.addWidget(self.advanced_toggle)
        layout.addWidget(self.advanced)
        layout.addWidget(self.error)
        layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(content)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

    def _toggle_advanced(self, shown: bool) -> None:
        self.advanced.setVisible(shown)
        self.advanced_toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save the model in", self.save_in.text() or str(models_dir()))
        if folder:
            self.save_in.setText(folder)

    # What the other pages decided

    def enter(self) -> None:
        scan, model = self.state.scan, self.state.model
        if scan is not None and scan is not self._scan_seen:  # a new folder: its own name and class-weight advice
            self._scan_seen = scan
            self.name.setPlaceholderText(default_model_name(scan.root))
            own_val = bool(scan.val)
            self.val_percent.setEnabled(not own_val)
            self.val_percent.setToolTip("Your folder has its own validation folder." if own_val else "")
        if self.state.class_weights != self._class_weights_seen:  # the data page's advice, when it changes
            self._class_weights_seen = self.state.class_weights
            self.class_weights.setChecked(self.state.class_weights)
        if model is not None:
            probe = dataclasses.replace(DEFAULTS, method=model.method, init=model.init)
            self.epochs.setSpecialValueText(f"auto ({probe.effective_epochs})")
            self.lr.setSpecialValueText(f"auto ({probe.effective_lr:g})")
            self.image_size.setSpecialValueText(f"auto ({model.input_size} px)" if model.input_size else "auto")
            full = model.method == "full"
            self.progressive_unfreeze.setEnabled(full)
            self.head_lr_multiplier.setEnabled(full)
        self._show_output()

    def _model_name(self) -> str:
        return self.name.text().strip() or self.name.placeholderText() or "model"

    def _show_output(self) -> None:
        folder = self.save_in.text().strip() or str(models_dir())
        self.output_note.setText(f"Saved as a model bundle in {Path(folder) / self._model_name()} "
                                 "(a number is added if that folder exists); it appears under “My models”.")

    def plan(self) -> TrainPlan:
        """The TrainPlan these settings describe (a UserFacingError names a setting out of range)."""
        scan, model = self.state.scan, self.state.model
        if scan is None or model is None:
            raise UserFacingError("Choose a folder and a model first.", "Go back to the first pages.")
        save_in = self.save_in.text().strip()
        output = ""
        if save_in and Path(save_in).expanduser() != models_dir():
            output = str(unique_path(Path(save_in).expanduser(), self._model_name()))
        return TrainPlan(
            data_dir=scan.root, arch=model.arch, init=model.init, method=model.method,
            epochs=self.epochs.value(), batch_size=self.batch_size.value(), lr=self.lr.value(),
            head_lr_multiplier=self.head_lr_multiplier.value(), weight_decay=self.weight_decay.value(),
            warmup_epochs=self.warmup_epochs.value(), label_smoothing=self.label_smoothing.value(),
            augmentation=self.augmentation.currentData(), image_size=self.image_size.value(),
            eval_every=self.eval_every.value(), early_stopping_patience=self.patience.value(),
            grad_accumulation=self.grad_accumulation.value(), mixed_precision=self.mixed_precision.isChecked(),
            class_weights=self.class_weights.isChecked(), balanced_sampling=self.balanced_sampling.isChecked(),
            progressive_unfreeze=self.progressive_unfreeze.isChecked(), seed=self.seed.value(),
            workers=self.workers.value(), val_fraction=self.val_percent.value() / 100,
            device=self.device.currentData(), export_onnx=self.export_onnx.isChecked(), output=output,
            name=self.name.text().strip(),
        ).validated()

    def validate(self) -> str:
        try:
            self.plan()
        except UserFacingError as exc:
            show_error(self.error, exc.message, exc.hint)
            return exc.message
        show_error(self.error, "")
        return ""
