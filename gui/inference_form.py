"""The model picker's "how to run it" rows: device, precision, inference backend and the int8 switch.

Which devices there are is known only once torch is imported, in the engine thread; until the engine reports
them (set_devices), the device list offers Auto and the CPU, plus a remembered device, which then stays chosen
if this computer has it and falls back to Auto if not.
"""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QWidget

from engine.specs import PRECISIONS, DeviceSupport, InferenceChoice

DEVICE_NAMES = {"cpu": "CPU", "cuda": "CUDA GPU", "mps": "Apple GPU (MPS)"}
BACKEND_NAMES = {"auto": "Auto (fastest)", "pytorch": "PyTorch", "onnxruntime": "ONNX Runtime"}
BACKEND_TIP = (
    "What runs the model. Auto uses ONNX Runtime on the CPU (1.6-3x faster than PyTorch, same results; a model "
    "is converted once, the first time, and kept) and PyTorch on a GPU. A model ONNX Runtime cannot run falls back "
    "to PyTorch; the status bar shows what is in use."
)
INT8_TIP = (
    "Runs the model with 8-bit integers on the CPU: faster, slightly less accurate. It is calibrated on a few "
    "images from your recent folders; how often it agrees with full precision shows in the status bar's tooltip."
)


class InferenceChoiceForm(QWidget):
    choice_edited = Signal(object)  # InferenceChoice, when the user changes a row, or a remembered one cannot be had

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.devices: DeviceSupport | None = None  # until the engine reports them
        self.device_box = QComboBox()
        self.precision_box = QComboBox()
        self._fill_devices("auto")
        self._fill_precisions("fp32")
        self.device_box.currentIndexChanged.connect(lambda _index: self._fill_precisions(self.precision))
        self.backend_box = QComboBox()
        for backend, name in BACKEND_NAMES.items():
            self.backend_box.addItem(name, backend)
        self.backend_box.setToolTip(BACKEND_TIP)
        self.int8_box = QCheckBox("int8: faster, slightly less accurate")
        self.int8_box.setToolTip(INT8_TIP)
        for signal in (self.device_box.activated, self.precision_box.activated, self.backend_box.activated,
                       self.int8_box.clicked):
            signal.connect(lambda *_args: self.choice_edited.emit(self.choice))
        layout = QFormLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addRow("Device", self.device_box)
        layout.addRow("Precision", self.precision_box)
        layout.addRow("Inference", self.backend_box)
        layout.addRow("", self.int8_box)

    @property
    def device(self) -> str:
        return self.device_box.currentData()

    @property
    def precision(self) -> str:
        return self.precision_box.currentData()

    @property
    def choice(self) -> InferenceChoice:
        return InferenceChoice(self.device, self.precision, self.backend_box.currentData(), self.int8_box.isChecked())

    def set_choice(self, choice: InferenceChoice) -> None:
        """Restore a remembered choice; a device this computer lacks falls back to auto (once the devices are known)."""
        self._fill_devices(choice.device)
        self._fill_precisions(choice.precision)
        self.backend_box.setCurrentIndex(max(self.backend_box.findData(choice.backend), 0))
        self.int8_box.setChecked(choice.int8)

    def set_devices(self, devices: DeviceSupport) -> None:
        """The engine found these devices: list them; `choice_edited` if the choice shown so far cannot be had."""
        before = self.choice
        self.devices = devices
        self._fill_devices(before.device)
        self._fill_precisions(before.precision)
        if self.choice != before:
            self.choice_edited.emit(self.choice)

    def _fill_devices(self, wanted: str) -> None:
        """Auto, then the devices there are; before the engine knows them, the CPU and the one wanted."""
        if self.devices is None:
            label, devices = "Auto", ["cpu"] + ([wanted] if wanted in DEVICE_NAMES and wanted != "cpu" else [])
        else:
            label, devices = f"Auto ({DEVICE_NAMES.get(self.devices.auto, self.devices.auto)})", self.devices.devices
        self.device_box.blockSignals(True)  # the precisions are filled once, by the caller
        self.device_box.clear()
        self.device_box.addItem(label, "auto")
        for device in devices:
            self.device_box.addItem(DEVICE_NAMES.get(device, device), device)
        self.device_box.setCurrentIndex(max(self.device_box.findData(wanted), 0))
        self.device_box.blockSignals(False)

    def _fill_precisions(self, wanted: str | None) -> None:
        """What the chosen device runs (all precisions until the engine says); `wanted` if it is one, else fp32."""
        if self.devices is None:
            precisions = PRECISIONS
        else:
            precisions = self.devices.precisions.get(self.devices.resolve(self.device), ("fp32",))
        self.precision_box.clear()
        for precision in precisions:
            self.precision_box.addItem(precision, precision)
        self.precision_box.setCurrentIndex(max(self.precision_box.findData(wanted or "fp32"), 0))
