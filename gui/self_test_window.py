"""The self-test's one Qt part: the real main window opens (offscreen when there is no display), loads its start-up
model as on a first start (the built-in one) and closes, stopping its engine thread. A frozen build that left out
Qt's platform plugins or a GUI module fails here.
"""
from __future__ import annotations

import gc
import os
import time
from pathlib import Path

from engine.self_test import SelfTestContext, SelfTestFailure
from gui.app import display_available

WINDOW_TIMEOUT_S = 60.0
POLL_MS = 50


def check_main_window(context: SelfTestContext) -> str:
    if not display_available():
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    # Imported here, after the platform is chosen: a missing Qt module is this part's FAIL, not a crash.
    from PySide6.QtCore import QEventLoop, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    if QApplication.instance() is None:
        _check_platform_plugin()

    from gui.engine_worker import EngineBridge

    from gui.engine_messages import Failure, ModelInfo
    from gui.main_window import APP_TITLE, MainWindow
    from gui.settings import APPLICATION, ORGANIZATION, load_settings

    # Settings live in the temporary folder: the window starts as on a first start and the user's stay untouched.
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(context.folder / "settings"))
    QApplication.setOrganizationName(ORGANIZATION)
    QApplication.setApplicationName(APPLICATION)
    app = QApplication.instance() or QApplication([APP_TITLE])
    answers: list[ModelInfo | Failure] = []  # appended on the engine thread; list.append is atomic
    collecting = gc.isenabled()
    gc.disable()  # as gui.app does: a collection on the engine thread could free a Qt object there and crash
    try:
        bridge = EngineBridge()
        bridge.worker.model_loaded.connect(answers.append)
        bridge.worker.model_load_failed.connect(answers.append)
        window = MainWindow(bridge, load_settings())
        started = time.perf_counter()
        exposed = False

        def finished() -> bool:
            nonlocal exposed
            handle = window.windowHandle()
            exposed = exposed or (window.isVisible() and handle is not None and handle.isExposed())
            if not (exposed and answers):
                return False
            # Done once the GUI thread has shown the outcome, not merely when the engine thread sent it.
            return isinstance(answers[0], Failure) or window.windowTitle().startswith(answers[0].name)

        loop = QEventLoop()
        poll = QTimer()
        poll.timeout.connect(lambda: loop.quit() if finished() or _late(started) else None)
        try:
            window.show()
            poll.start(POLL_MS)
            loop.exec()
            seconds = time.perf_counter() - started
        finally:
            poll.stop()
            window.close()  # saves the settings (into the temporary folder) and stops the engine thread
        engine_thread = bridge.worker.thread()
        stopped = engine_thread is None or engine_thread.isFinished()
    finally:
        if collecting:
            gc.enable()
    if not exposed:
        raise SelfTestFailure(f"the main window was not shown on the {app.platformName()} platform")
    if not answers:
        raise SelfTestFailure(f"the window's start-up model did not load within {WINDOW_TIMEOUT_S:.0f} s")
    if isinstance(answers[0], Failure):
        raise SelfTestFailure(f"the window could not load its start-up model: {answers[0].message}")
    if not stopped:
        raise SelfTestFailure("the engine thread did not stop when the window closed")
    info = answers[0]
    return f'{app.platformName()}: the main window loaded "{info.name}" ({info.backend}), ready in {seconds:.1f} s'


def _late(started: float) -> bool:
    return time.perf_counter() - started > WINDOW_TIMEOUT_S


def _check_platform_plugin() -> None:
    """A SelfTestFailure if the platform's plugin is not bundled: QApplication would abort the process instead."""
    from PySide6.QtCore import QCoreApplication

    folders = [Path(path) / "platforms" for path in QCoreApplication.libraryPaths()]
    plugins = [file.name for folder in folders if folder.is_dir() for file in folder.iterdir()]
    if not plugins:
        raise SelfTestFailure(f"no Qt platform plugins in {', '.join(map(str, folders)) or 'any Qt plugin folder'}")
    # QT_QPA_PLATFORM may list alternatives ("wayland;xcb") and options ("offscreen:fontengine=freetype").
    wanted = [choice.split(":")[0] for choice in os.environ.get("QT_QPA_PLATFORM", "").split(";") if choice]
    if wanted and not any(f"q{name}." in plugin for name in wanted for plugin in plugins):  # libqxcb.so, qwindows.dll
        raise SelfTestFailure(f"Qt's {' or '.join(wanted)} platform plugin is missing (found: {', '.join(plugins)})")
