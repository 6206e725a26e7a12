"""Starts Classifier Studio's window: checks for a display, sets up the application, logging and error reporting.

Qt's GUI modules are imported only once a display is known to exist, so a headless machine gets a one-line
pointer to the command line instead of Qt's platform-plugin abort.
"""
from __future__ import annotations

import gc
import logging
import os
import sys
import time
from logging.handlers import RotatingFileHandler
from pathlib import Path

from engine.paths import resources_dir, user_log_dir

log = logging.getLogger(__name__)
NO_DISPLAY_MESSAGE = (
    "Classifier Studio found no display to open its window on (DISPLAY and WAYLAND_DISPLAY are not set); "
    "use the command line instead: `python main.py classify PHOTO`, or see `python main.py --help`."
)
LOG_FILE_NAME = "classifier-studio.log"
LOG_HANDLER_NAME = "classifier-studio-log"  # how log_file() tells our handler from others (e.g. pytest's)
DESKTOP_FILE_NAME = "classifier-studio"  # resources/classifier-studio.desktop
GC_INTERVAL_MS = 500
APP_LOGGERS = ("gui", "engine")


def display_available() -> bool:
    """False on Linux/BSD without an X11 or Wayland display, unless a Qt platform (e.g. offscreen) is chosen."""
    if sys.platform in ("win32", "darwin") or os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run_gui(argv: list[str], launched: float | None = None, open_paths: list[str] | None = None) -> int:
    """Run the window until it closes and return the exit code; `argv` may hold Qt's own options (e.g. -platform).

    `launched` (time.perf_counter() at start-up) times the window's appearance and the first model's, in the log.
    `open_paths` are image files or folders to classify once the first model is ready.
    """
    if not display_available():
        print(NO_DISPLAY_MESSAGE, file=sys.stderr)
        return 2

    from PySide6.QtGui import QGuiApplication, QIcon
    from PySide6.QtWidgets import QApplication

    from gui.application import StudioApplication
    from gui.engine_worker import EngineBridge
    from gui.main_window import APP_TITLE, MainWindow
    from gui.settings import APPLICATION, ORGANIZATION, load_settings
    from gui.status import ErrorNotifier

    QApplication.setOrganizationName(ORGANIZATION)
    QApplication.setApplicationName(APPLICATION)
    app = QApplication.instance() or StudioApplication([APP_TITLE, *argv])
    app.setStyle("Fusion")
    app.setWindowIcon(QIcon(str(resources_dir() / "icon.svg")))
    QGuiApplication.setDesktopFileName(DESKTOP_FILE_NAME)  # Wayland and taskbars match the window to its .desktop
    _log_to_file(user_log_dir())

    _collect_garbage_on_the_gui_thread(app)
    bridge = EngineBridge()
    window = MainWindow(bridge, load_settings())
    notifier = ErrorNotifier(window)
    notifier.error_reported.connect(window.report_internal_error)
    notifier.install()
    if launched is not None:
        _log_start_up_times(window, bridge, launched)
    if open_paths:
        window.open_paths(open_paths)
    if isinstance(app, StudioApplication):
        app.open_files_with(window.open_paths)
    try:
        window.show()
        return app.exec()
    finally:
        notifier.uninstall()
        gc.enable()


def _log_start_up_times(window, bridge, launched: float) -> None:
    """Logs when the window first shows, when the first model is ready and when the first image is classified
    (scripts/build_app.sh and benchmarks/startup.py read them)."""
    from PySide6.QtCore import QTimer

    def since_launch() -> float:
        return time.perf_counter() - launched

    QTimer.singleShot(0, lambda: log.info("Window shown %.2f s after launch", since_launch()))  # after the first paint

    def first_model(info) -> None:
        log.info("First model ready %.2f s after launch (%s)", since_launch(), info.name)
        bridge.worker.model_loaded.disconnect(first_model)

    bridge.worker.model_loaded.connect(first_model)

    def first_result(_update) -> None:
        log.info("First image classified %.2f s after launch", since_launch())
        bridge.worker.image_classified.disconnect(first_result)

    bridge.worker.image_classified.connect(first_result)


def _collect_garbage_on_the_gui_thread(app) -> None:
    """Python collects reference cycles in whichever thread happens to allocate; a Qt object's wrapper freed on
    the engine thread crashes Qt. So automatic collection is off and the GUI thread collects on a timer instead."""
    from PySide6.QtCore import QTimer

    gc.disable()
    timer = QTimer(app)
    timer.timeout.connect(_collect_by_thresholds)
    timer.start(GC_INTERVAL_MS)


def _collect_by_thresholds() -> None:
    """What automatic collection would do, generation by generation, by the same thresholds."""
    thresholds, counts = gc.get_threshold(), gc.get_count()
    for generation in range(3):
        if counts[generation] <= thresholds[generation]:
            return
        gc.collect(generation)


def log_file() -> Path | None:
    """The file the app's log is written to, if it has one (the command line and tests may not)."""
    for handler in logging.getLogger().handlers:
        if handler.get_name() == LOG_HANDLER_NAME and isinstance(handler, logging.FileHandler):
            return Path(handler.baseFilename)
    return None


def _log_to_file(folder: Path) -> None:
    """Warnings and tracebacks go to a rotating log file the error banner points to (unless logging is set up)."""
    root = logging.getLogger()
    if root.handlers:
        return
    # The app's own progress at INFO; libraries only from WARNING (the ONNX exporter alone logs hundreds of lines).
    root.setLevel(logging.WARNING)
    for ours in APP_LOGGERS:
        logging.getLogger(ours).setLevel(logging.INFO)
    stderr = logging.StreamHandler()
    stderr.setLevel(logging.WARNING)
    root.addHandler(stderr)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handler = RotatingFileHandler(folder / LOG_FILE_NAME, maxBytes=1_000_000, backupCount=3, encoding="utf-8")
    except OSError as exc:
        log.warning("Cannot write the log file in %s (%s); logging to the terminal only", folder, exc)
        return
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.set_name(LOG_HANDLER_NAME)
    root.addHandler(handler)
