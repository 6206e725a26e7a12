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
