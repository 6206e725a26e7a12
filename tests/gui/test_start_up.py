"""Start-up: the window shows before torch is imported, and the engine thread, not the GUI thread, imports it
to load the remembered model. Each story runs in a fresh Python process, as `python main.py` does."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Records which thread first imports torch and timm, and when (an import that is already done asks no finder).
WATCH_IMPORTS = """
import gc, os, sys, threading, time
os.environ["QT_QPA_PLATFORM"] = "offscreen"
first_imports = {}

class WatchImports:
    def find_spec(self, name, path=None, target=None):
        if name in ("torch", "timm") and name not in first_imports:
            first_imports[name] = (threading.get_ident(), time.perf_counter(), threading.current_thread().name)
        return None

sys.meta_path.insert(0, WatchImports())
gc.disable()  # as gui.app does: no collection on the engine thread
from PySide6.QtWidgets import QApplication
app = QApplication([])
from gui.engine_worker import EngineBridge
from gui.main_window import MainWindow
from gui.settings import AppSettings
"""


def run_python(code: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", WATCH_IMPORTS + textwrap.dedent(code)],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_window_shows_and_works_without_importing_torch():
    run_python("""
        window = MainWindow(EngineBridge(), AppSettings(), autoload=False)
        window.show()
        app.processEvents()
        for tab in (1, 0):  # the Live tab and back
            window.tabs.setCurrentIndex(tab)
            app.processEvents()
        window.picker.tabs.setCurrentIndex(1)  # My models, listed off the GUI thread
        app.processEvents()
        assert window.isVisible() and window.model_status.state_label.text() == "no model loaded"
        assert window.picker.device_box.count() == 2, "Auto and the CPU until the engine lists the devices"
        window.close()
        assert not first_imports, f"imported at start-up: {sorted(first_imports)}"
    """)


def test_the_remembered_model_loads_at_once_and_the_engine_thread_imports_torch(tiny_bundle):
    run_python(f"""
        settings = AppSettings(model_source="bundle", model_path={str(tiny_bundle)!r}, device="cpu",
                               backend="pytorch")
        bridge = EngineBridge()
        answers = []  # appended on the engine thread
        bridge.worker.model_loaded.connect(answers.append)
        bridge.worker.model_load_failed.connect(answers.append)
        window = MainWindow(bridge, settings)
        window.show()
        shown = time.perf_counter()
        assert "torch" not in sys.modules
        deadline = shown + 240
        while window.model_status.state_label.text() != "ready" and time.perf_counter() < deadline:
            app.processEvents()
            time.sleep(0.01)
        assert window.model_status.state_label.text() == "ready", answers
        assert window.model_status.model_label.text() == "tiny_bundle"
        assert window.model_status.device_label.text() == "CPU · fp32 · PyTorch"
        main = threading.main_thread().ident
        for name in ("torch", "timm"):
            thread, when, _ = first_imports[name]
            assert thread != main, f"the GUI thread imported {{name}}"
            assert when > shown, f"{{name}} was imported before the window was shown"
        from engine.devices import available_devices  # torch is imported by now: this costs nothing
        listed = [window.picker.device_box.itemData(i) for i in range(window.picker.device_box.count())]
        assert listed == ["auto", *available_devices()], listed
        window.close()
    """)


def test_a_model_onnx_runtime_ran_before_is_ready_without_waiting_for_torch(tiny_bundle, photo_files):
    """The second start: the remembered model comes from its checked ONNX file; torch is imported beside the
    engine thread, only to list the devices, and timm not at all."""
    from engine.models import load_model
    from engine.predict import Classifier
    from engine.quick_start import remember
    from engine.runtime import create_backend
    from engine.specs import Bundle, InferenceChoice, ModelSpec

    spec, choice = ModelSpec(source=Bundle(str(tiny_bundle))), InferenceChoice("cpu")
    loaded = load_model(spec, "cpu")
    remember(spec, choice, Classifier(loaded, create_backend(loaded)))  # what the first start left behind
    run_python(f"""
        settings = AppSettings(model_source="bundle", model_path={str(tiny_bundle)!r}, device="cpu")
        bridge = EngineBridge()
        results = []
        bridge.worker.image_classified.connect(lambda update: results.append(update.result))
        window = MainWindow(bridge, settings)
        window.show()
        deadline = time.perf_counter() + 240
        while window.model_status.state_label.text() != "ready" and time.perf_counter() < deadline:
            app.processEvents()
            time.sleep(0.01)
        assert window.model_status.state_label.text() == "ready"
        assert window.model_status.device_label.text() == "CPU · fp32 · ONNX Runtime"
        window.open_paths([{str(photo_files[0])!r}])
        while not results and time.perf_counter() < deadline:
            app.processEvents()
            time.sleep(0.01)
        assert results and results[0].error is None and len(results[0].top) == 3, results
        from engine.devices import available_devices  # waits for the listing thread's import of torch
        while window.picker.device_box.count() < 1 + len(available_devices()) and time.perf_counter() < deadline:
            app.processEvents()
            time.sleep(0.01)
        listed = [window.picker.device_box.itemData(i) for i in range(window.picker.device_box.count())]
        assert listed == ["auto", *available_devices()], listed
        assert first_imports["torch"][2] == "list-devices", first_imports
        assert "timm" not in first_imports, "a quick start needs no timm"
        window.close()
    """)
