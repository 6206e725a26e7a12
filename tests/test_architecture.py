"""The layering holds by itself: the engine imports no Qt and nothing from the GUI."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contract_holds():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert lint, "import-linter is part of the test extras"
    result = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "The engine knows nothing of widgets or Qt KEPT" in result.stdout


def test_engine_runs_without_qt_installed_in_the_process():
    code = (
        "import sys, engine.models, engine.predict, engine.catalog, engine.decode;"
        "assert not [m for m in sys.modules if m.startswith('PySide6')], 'engine imported Qt'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)



def heavy_modules_imported_by(modules: tuple[str, ...]) -> list[str]:
    """Which of torch, timm, ONNX Runtime, numpy and OpenCV a fresh interpreter has after importing `modules`."""
    code = (
        f"import sys, {', '.join(modules)};"
        "print(' '.join(m for m in ('torch', 'timm', 'onnxruntime', 'numpy', 'cv2') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_what_the_window_imports_leaves_torch_to_the_engine_thread():
    """The window's modules and the engine vocabulary they use import neither torch nor timm (seconds, which the
    engine thread spends after the window shows: see tests/gui/test_start_up.py), nor numpy and OpenCV (a fifth
    of the window's own start-up; the engine imports them when it first needs them)."""
    window = (
        "engine.specs", "engine.results", "engine.catalog", "engine.bundle", "engine.weights", "engine.my_models",
        "engine.export", "engine.live.types", "engine.live.sources", "engine.live.capture", "engine.live.recording",
        "gui.main_window", "gui.engine_worker", "gui.model_picker", "gui.settings", "gui.status", "gui.live_view",
    )
    assert heavy_modules_imported_by(window) == []


def test_the_live_pipeline_the_window_makes_imports_no_torch():
    """The GUI thread makes the live pipeline when the user starts a stream, maybe before torch is imported."""
    assert set(heavy_modules_imported_by(("engine.live.pipeline",))).isdisjoint({"torch", "timm", "onnxruntime"})


def test_classifying_from_a_checked_onnx_file_needs_no_torch():
    """What a quick start runs (engine.quick_start) imports neither torch nor timm: seconds saved at every start."""
    modules = ("engine.quick_start", "engine.predict", "engine.preprocess", "engine.onnx_session", "engine.decode")
    assert set(heavy_modules_imported_by(modules)).isdisjoint({"torch", "timm"})
