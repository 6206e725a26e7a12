"""The model picker's "Zero-shot" page: the user names classes, and a CLIP model sorts pictures into them without
any training (engine/zero_shot.py builds it when the engine loads it)."""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engine.clip_catalog import (
    CLIP_MODELS,
    DEFAULT_PROMPT,
    clip_display_name,
    is_clip_arch,
    parse_classes,
    parse_prompt,
    prompt_as_typed,
)
from engine.errors import UserFacingError
from engine.specs import ModelSpec, ZeroShot

EXPLANATION = (
    "Name the classes to tell apart, one per line or separated by commas. CLIP sorts your pictures into them: "
    "no training needed. The CLIP model is downloaded once; Load weights file… uses a checkpoint you have."
)
EXAMPLE = "cat\ndog\ncoffee mug"
PROMPT_TIP = (
    "The sentence CLIP reads for each class, with the class name where {} is. Saying what your pictures are helps "
    'CLIP tell classes apart: "a photo of a {}, a type of bird.", "a close-up photo of a {} on a conveyor belt." '
    "Leave it empty for CLIP's own sentence."
)


class ZeroShotPage(QWidget):
    load_requested = Signal(object)  # ModelSpec with a ZeroShot source
    message_changed = Signal(str)  # what is wrong with the class names, "" when nothing is

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        explanation = QLabel(EXPLANATION)
        explanation.setWordWrap(True)
        self.model_box = QComboBox()
        for model in CLIP_MODELS:
            self.model_box.addItem(f"{model.display_name} · {model.download_gb:.1f} GB", model.arch)
        self.model_box.setToolTip("Lighter models answer faster; heavier ones tell similar classes apart better")
        # Its longest name must not widen the models panel: the window fits a 1024-pixel screen.
        self.model_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_box.setMinimumContentsLength(20)
        self.classes_field = QPlainTextEdit()
        self.classes_field.setPlaceholderText(EXAMPLE)
        self.classes_field.setTabChangesFocus(True)
        self.classes_field.textChanged.connect(lambda: self.message_changed.emit(""))
        self.prompt_field = QLineEdit()
        self.prompt_field.setPlaceholderText(DEFAULT_PROMPT)
        self.prompt_field.setToolTip(PROMPT_TIP)
        self.prompt_field.setClearButtonEnabled(True)
        self.prompt_field.textChanged.connect(lambda: self.message_changed.emit(""))
        self.prompt_field.returnPressed.connect(lambda: self.use_classes())
        self.use_button = QPushButton("Use these classes")
        self.use_button.setToolTip("Load the CLIP model with these classes (Ctrl+Return)")
        self.use_button.clicked.connect(lambda: self.use_classes())
        QShortcut(QKeySequence("Ctrl+Return"), self.classes_field, lambda: self.use_classes())

        model_row = QHBoxLayout()
        model_row.addWidget(QLabel("CLIP model:"))
        model_row.addWidget(self.model_box, 1)
        prompt_label = QLabel("Sentence:")
        prompt_label.setToolTip(PROMPT_TIP)
        prompt_label.setBuddy(self.prompt_field)
        prompt_row = QHBoxLayout()
        prompt_row.addWidget(prompt_label)
        prompt_row.addWidget(self.prompt_field, 1)
        button_row = QHBoxLayout()
        button_row.addStretch(1)
        button_row.addWidget(self.use_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 6, 0, 0)  # lined up with the catalog page
        layout.addWidget(explanation)
        layout.addLayout(model_row)
        layout.addWidget(self.classes_field, 1)
        layout.addLayout(prompt_row)
        layout.addLayout(button_row)

    def use_classes(self, weights: str = "") -> None:
        """Load the chosen CLIP model for the typed classes: its Hub weights, or the checkpoint file `weights`."""
        try:
            classes = parse_classes(self.classes_field.toPlainText())
            prompt = parse_prompt(self.prompt_field.text())
        except UserFacingError as exc:
            self.message_changed.emit(f"{exc.message} {exc.hint}")
            return
        self.load_requested.emit(ModelSpec(self.model_box.currentData(), ZeroShot(classes, weights, prompt)))

    def show_spec(self, spec: ModelSpec) -> None:
        """Fill the page with a zero-shot model's CLIP model and classes (the one in use, say)."""
        if not (isinstance(spec.source, ZeroShot) and is_clip_arch(spec.arch)):
            return
        index = self.model_box.findData(spec.arch)
        if index < 0:  # another open_clip model, from the command line's --model: offer it as it is
            self.model_box.addItem(clip_display_name(spec.arch), spec.arch)
            index = self.model_box.count() - 1
        self.model_box.setCurrentIndex(index)
        self.classes_field.setPlainText("\n".join(spec.source.classes))
        self.prompt_field.setText(prompt_as_typed(spec.source.prompt))
