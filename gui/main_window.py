"""Classifier Studio's main window: the Classify and Live tabs in the middle, the model picker docked on the left.

It owns the model-load lifecycle on the GUI side: asks the engine thread to load, shows progress/ready/error
in the status bar, and ignores events from loads that a newer one superseded.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, QUrl
from PySide6.QtGui import QCloseEvent, QDesktopServices, QImage, QKeySequence, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QMainWindow,
    QMessageBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine.clip_catalog import zero_shot_name
from engine.paths import app_version, user_data_dir
from engine.specs import (
    BUILTIN_NAME,
    Builtin,
    Bundle,
    DeviceSupport,
    Hub,
    InferenceChoice,
    ModelSpec,
    ZeroShot,
    builtin_model_spec,
)
from gui.app import log_file
from gui.classify_view import ClassifyView
from gui.engine_worker import EngineBridge
from gui.engine_messages import Failure, LoadProgress, ModelInfo
from gui.live_view import LiveView
from gui.menus import build_menu_bar
from gui.model_picker import ModelPicker
from gui.settings import AppSettings, save_settings
from gui.status import MessageBanner, ModelStatus

log = logging.getLogger(__name__)
APP_TITLE = "Classifier Studio"
DEFAULT_SIZE = (1360, 860)


def spec_name(spec: ModelSpec) -> str:
    """The name the status bar shows while a model loads (the engine's LoadedModel.name once it has)."""
    if isinstance(spec.source, Builtin):
        return BUILTIN_NAME
    if isinstance(spec.source, ZeroShot):
        return zero_shot_name(spec.arch)
    return Path(spec.source.path).stem if isinstance(spec.source, Bundle) else spec.arch


def device_text(choice: InferenceChoice, devices: DeviceSupport | None) -> str:
    """What the status bar shows while a model loads, e.g. "CPU · fp32": found without torch, from the devices
    the engine reported (before that, as chosen: "Auto · fp32"); the loaded model's line has the engine's own."""
    if devices is not None and devices.resolve(choice.device) in devices.devices:
        return devices.description(choice.device, choice.precision)
    return f"{'Auto' if choice.device == 'auto' else choice.device.upper()} · {choice.precision}"


class MainWindow(QMainWindow):
    def __init__(self, bridge: EngineBridge, settings: AppSettings, autoload: bool = True) -> None:
        super().__init__()
        self.bridge = bridge
        self.settings = settings
        self._autoload = autoload
        self._shown_once = False
        self._closed = False
        self._loading: tuple[ModelSpec, InferenceChoice] | None = None  # the load in flight: spec and choice
        self._loaded: ModelInfo | None = None  # the model the engine is using
        self._loaded_spec: ModelSpec | None = None  # and what it was loaded from
        # The load that falls back to the built-in model if it fails: the start-up one, or a model loaded again
        # after a failure (_fall_back).
        self._builtin_fallback_id: int | None = None
        self._fallback: ModelSpec | None = None  # loaded again if the load in flight fails while none is in use
        self._devices: DeviceSupport | None = None  # as the engine reports them, once it has imported torch
        self.train_wizard = None  # the fine-tuning wizard while it is open (gui.train_wizard.TrainWizard)
        self._paths_to_open: list[str] = []  # files the app was started with, classified once a model is ready
        self.setWindowTitle(APP_TITLE)

        self.classify_view = ClassifyView(bridge)
        self.live_view = LiveView(bridge)
        self.live_view.outputs.look_closer.connect(self.look_closer)
        self.classify_view.videos_dropped.connect(self.play_videos)
        self.classify_view.model_dropped.connect(self.load_dropped_model)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.classify_view, "Classify")
        self.tabs.addTab(self.live_view, "Live")
        self.tabs.setTabToolTip(1, "Classify a camera, a video file or a network stream as it plays")
        self.banner = MessageBanner()
        self.banner.action_clicked.connect(self.open_model_file)
        # The banner lines up with the classify view's content; a layout whose widgets are hidden takes no space.
        margins = self.classify_view.layout().contentsMargins()
        banner_row = QVBoxLayout()
        banner_row.setContentsMargins(margins.left(), margins.top(), margins.right(), 0)
        banner_row.addWidget(self.banner)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(banner_row)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

        self.picker = ModelPicker()
        self.picker.load_requested.connect(self.load_model)
        self.picker.set_choice(settings.inference_choice)
        self.picker.choice_changed.connect(self._choice_changed)
        self.picker_dock = QDockWidget("Models")
        self.picker_dock.setObjectName("modelPickerDock")  # restoreState finds docks by object name
        self.picker_dock.setWidget(self.picker)
        self.picker_dock.setAllowedAreas(Qt.DockWidgetArea.LeftDockWidgetArea | Qt.DockWidgetArea.RightDockWidgetArea)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.picker_dock)

        self.model_status = ModelStatus(self.statusBar())
        build_menu_bar(self)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.classify_view.cancel)

        worker = bridge.worker
        worker.devices_listed.connect(self._on_devices_listed)
        worker.model_load_progressed.connect(self._on_load_progress)
        worker.model_loaded.connect(self._on_model_loaded)
        worker.model_load_failed.connect(self._on_load_failed)
        self.classify_view.folder_used.connect(self._on_folder_used)
        if settings.recent_folders:
            self.classify_view.set_recent_folder(settings.recent_folders[0])
        self._restore_layout()

    def _on_folder_used(self, folder: str) -> None:
        self.settings.add_recent_folder(folder)
        self.classify_view.set_recent_folder(folder)
        self.recent_menu.refresh()

    def _restore_layout(self) -> None:
        restored = bool(self.settings.window_geometry) and self.restoreGeometry(self.settings.window_geometry)
        if not restored:
            width, height = DEFAULT_SIZE
            screen = self.screen().availableGeometry()
            # Never larger than the screen: small laptop screens get 90 % of their area.
            self.resize(min(width, int(screen.width() * 0.9)), min(height, int(screen.height() * 0.9)))
        self._layout_restored = bool(self.settings.window_state) and self.restoreState(self.settings.window_state)

    def _size_picker(self) -> None:
        # At most a third of the window, so the results beside it keep room for file names and labels.
        width = min(self.picker.sizeHint().width(), self.width() // 3)
        self.resizeDocks([self.picker_dock], [width], Qt.Orientation.Horizontal)

    # Actions

    def toggle_picker(self) -> None:
        if self.picker_dock.isVisible():
            self.picker_dock.hide()
        else:
            self.picker_dock.show()
            self.picker_dock.raise_()
            self.picker.search_field.setFocus()

    def open_model_file(self) -> None:
        self.picker.choose_model_file()

    def open_train_wizard(self) -> None:
        """Open the fine-tuning wizard beside the window (non-modal), or bring the open one to the front."""
        from gui.train_wizard import TrainWizard  # deferred: the training stack is not needed to classify

        if self.train_wizard is None:
            self.train_wizard = TrainWizard(self)
            self.train_wizard.model_chosen.connect(self.use_trained_model)
            self.train_wizard.model_saved.connect(lambda _bundle: self.picker.refresh_my_models())
            self.train_wizard.finished.connect(self._train_wizard_closed)
        self.train_wizard.show()
        self.train_wizard.raise_()
        self.train_wizard.activateWindow()

    def use_trained_model(self, bundle: str) -> int:
        """Load a model the wizard just trained: classify and live recognition use it at once."""
        self.picker.show_my_model(bundle)
        return self.load_model(ModelSpec(source=Bundle(bundle)))

    def _train_wizard_closed(self) -> None:
        wizard, self.train_wizard = self.train_wizard, None
        if wizard is not None:
            wizard.deleteLater()  # its training thread has ended: done() waited for it

    def report_internal_error(self, summary: str) -> None:
        """What the error notifier calls: a bug must never pass silently, nor crash the window."""
        path = log_file()
        where = f" ({path})" if path else ""
        self.banner.show_message(
            "Something went wrong inside Classifier Studio.",
            f"See the log{where} for details; you can keep working. {summary}",
        )

    def show_log(self) -> None:
        """Open the log file in the user's text viewer (what support asks for first)."""
        path = log_file()
        if path is None or not path.is_file():
            self.banner.show_message("Classifier Studio is not writing a log file this time.",
                                     "Messages go to the terminal it was started from.")
        elif not QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))):
            self.banner.show_message("No program here opens the log file.", f"It is {path}.")

    def show_about(self) -> None:
        path = log_file()
        QMessageBox.about(
            self,
            f"About {APP_TITLE}",
            f"<b>{APP_TITLE} {app_version()}</b><p>Try image classifiers on your own pictures, recognise what a "
            "camera sees, and teach models your own classes.</p>"
            f"<p>Models and caches: {user_data_dir()}<br>Log: {path or 'the terminal'}</p>",
        )

    # Model loading

    def load_model(self, spec: ModelSpec, choice: InferenceChoice | None = None) -> int:
        """Start loading `spec` (run as the picker says unless `choice` is given); a load still running is
        superseded. Returns the request id."""
        choice = choice or self.picker.choice
        self.banner.hide()
        if self._loaded is None and self._loading is not None and self._loading[0] != spec:
            self._fallback = self._fallback or self._loading[0]  # what the user had chosen before, never "No model"
        self._loading = (spec, choice)
        # int8 calibrates on a few images from the folders the user classified lately.
        request_id = self.bridge.request_load(spec, choice, tuple(self.settings.recent_folders))
        after_batch = self.classify_view.running  # the engine thread takes requests in order
        self.model_status.show_loading(spec_name(spec), device_text(choice, self._devices), after_batch)
        return request_id

    def _choice_changed(self, choice: InferenceChoice) -> None:
        """A new device, precision or backend applies at once: the model in use (or loading) loads again with it."""
        spec = self._loading[0] if self._loading else self._loaded_spec
        if spec is None:
            return
        superseded = self.bridge.current_load_id if self._loading else None
        request_id = self.load_model(spec, choice)
        if superseded is not None and superseded == self._builtin_fallback_id:
            self._builtin_fallback_id = request_id  # the same model, reloaded: it still falls back to the built-in one

    def _on_devices_listed(self, devices: DeviceSupport) -> None:
        """The engine imported torch and found these devices. A remembered device this computer lacks falls back
        to auto in the picker, which reloads the model with it (as the user changing the device does)."""
        self._devices = devices
        self.picker.set_devices(devices)
        if self._loading is not None:  # "Auto · fp32" becomes what auto is, e.g. "CPU · fp32"
            self.model_status.show_device(device_text(self._loading[1], devices))

    def play_videos(self, paths: list[str]) -> None:
        """Video files dropped on the Classify tab or opened with the app: the Live tab plays them."""
        self.tabs.setCurrentWidget(self.live_view)
        self.live_view.play_files(paths)

    def look_closer(self, image: QImage) -> None:
        """The Live tab's picture on screen, classified in the Classify tab, where Where it looked works on it."""
        self.tabs.setCurrentWidget(self.classify_view)
        self.classify_view.classify_picture(image, "Live frame")

    def load_dropped_model(self, path: str) -> None:
        """A weights file or model bundle dropped on the window: loaded as the model picker would load it."""
        self.picker_dock.show()  # where a weights file's "select its architecture" message appears
        if os.path.isdir(path):
            self.picker.load_bundle(path)
        else:
            self.picker.load_model_file(path)

    def open_paths(self, paths: list[str]) -> None:
        """Files or folders the app was opened with ("Open with" in a file manager), once a model is ready: images are
        classified, videos play in the Live tab."""
        if self._loaded is not None:
            self.classify_view.add_paths(paths)
        else:
            self._paths_to_open.extend(paths)

    def _load_remembered_model(self) -> None:
        """Start-up: the remembered model, or on a first start the built-in one, which needs no network."""
        spec = self.settings.model_spec() or builtin_model_spec()
        if isinstance(spec.source, (Hub, Builtin)):
            self.picker.select_arch(spec.arch)
        self._builtin_fallback_id = self.load_model(spec)

    def _fall_back(self, failed: ModelSpec, failure: Failure, spec: ModelSpec, instead: str) -> None:
        """No model is in use and `failed` cannot be had (e.g. offline and never downloaded): say so, load `spec`.
        If that fails in turn, the built-in model, which needs no network."""
        self._builtin_fallback_id = self.load_model(spec)
        self.banner.show_message(
            f"{spec_name(failed)} could not be loaded ({failure.message.rstrip('.')}); {instead}.",
            failure.hint,
            "Open model file…",
        )

    def _is_current(self, request_id: int) -> bool:
        return request_id == self.bridge.current_load_id

    def _on_load_progress(self, progress: LoadProgress) -> None:
        if self._is_current(progress.request_id):
            self.model_status.show_progress(progress)

    def _on_model_loaded(self, info: ModelInfo) -> None:
        if not self._is_current(info.request_id) or self._loading is None:
            return
        spec, choice = self._loading
        self._loading = self._fallback = None
        self._loaded, self._loaded_spec = info, spec
        self.settings.remember_model(spec, choice)
        self.picker.show_in_use(spec)
        self.model_status.show_ready(info)
        self.setWindowTitle(f"{info.name} — {APP_TITLE}")
        log.info("Loaded %s on %s with %s in %.1f s", info.name, info.device, info.backend, info.load_seconds)
        if self._paths_to_open:
            paths, self._paths_to_open = self._paths_to_open, []
            self.classify_view.add_paths(paths)

    def _on_load_failed(self, failure: Failure) -> None:
        if not self._is_current(failure.request_id) or self._loading is None:
            return  # a superseded load: the newer one speaks for itself
        failed, self._loading = self._loading[0], None
        fallback, self._fallback = self._fallback, None
        self._show_loaded_model()  # the engine keeps using the previous model, if any
        if failure.cancelled:
            if self._loaded is None:
                self.model_status.show_cancelled()
            return
        if self._loaded is None and fallback is not None:
            self._fall_back(failed, failure, fallback, f"loading {spec_name(fallback)} again")
        elif failure.request_id == self._builtin_fallback_id and not isinstance(failed.source, Builtin):
            self._fall_back(failed, failure, builtin_model_spec(), "using the built-in model instead")
        else:
            self.model_status.show_error(failure.message)
            self.banner.show_message(failure.message, failure.hint, "Open model file…")

    def _show_loaded_model(self) -> None:
        if self._loaded is None:
            self.model_status.show_no_model()
        else:
            self.model_status.show_ready(self._loaded)

    # Window lifecycle

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._shown_once:
            self._shown_once = True
            if not self._layout_restored:  # dock sizes apply once the window is laid out, hence deferred
                QTimer.singleShot(0, self._size_picker)
            if self._autoload:
                QTimer.singleShot(0, self._load_remembered_model)  # after the first paint

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._closed:
            self._closed = True
            self.settings.window_geometry = bytes(self.saveGeometry().data())
            self.settings.window_state = bytes(self.saveState().data())
            if self._loaded is None:  # nothing loaded: remember the device the user chose anyway
                self.settings.remember_choice(self.picker.choice)
            save_settings(self.settings)
            self.live_view.shutdown()
            if self.train_wizard is not None:  # quitting cancels a training run (it stays resumable)
                self.train_wizard.shutdown()
                self.train_wizard.close()
            self.bridge.shutdown()
        super().closeEvent(event)
