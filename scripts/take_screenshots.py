"""Takes the README's screenshots of the real window: the built-in model's real predictions on real photos.

Run on a screen or under a virtual one (Linux:
`xvfb-run -s "-screen 0 1400x900x24" python scripts/take_screenshots.py`).
Uses empty, temporary user folders and no network, as on a first start offline.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
sys.path.insert(0, str(ROOT))


def write_photos(folder: Path) -> list[Path]:
    from PIL import Image
    from skimage import data

    photos = {
        "cat.jpg": data.chelsea(),
        "coffee.jpg": data.coffee(),
        "astronaut.png": data.astronaut(),
        "rocket.jpg": data.rocket(),
        "motorcycle.webp": data.stereo_motorcycle()[0],
        "hubble.jpg": data.hubble_deep_field(),
    }
    paths = []
    for name, pixels in photos.items():
        Image.fromarray(pixels).save(folder / name)
        paths.append(folder / name)
    broken = folder / "broken_download.jpg"
    broken.write_bytes((folder / "cat.jpg").read_bytes()[:2000])
    return [*paths, broken]


def main() -> int:
    home = Path(tempfile.mkdtemp(prefix="classifier-studio-shots-"))
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"), ("HF_HOME", "hf")):
        os.environ[var] = str(home / sub)
    os.environ["HF_HUB_OFFLINE"] = "1"

    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from engine.paths import resources_dir
    from gui.engine_worker import EngineBridge
    from gui.main_window import MainWindow
    from gui.settings import AppSettings

    app = QApplication(["Classifier Studio"])
    app.setStyle("Fusion")
    app.setWindowIcon(QIcon(str(resources_dir() / "icon.svg")))
    window = MainWindow(EngineBridge(), AppSettings(), autoload=True)
    window.resize(1360, 820)
    window.show()

    def wait_until(condition, timeout_s: float = 120) -> None:
        loop_timer = QTimer()
        loop_timer.setSingleShot(True)
        loop_timer.start(int(timeout_s * 1000))
        while not condition() and loop_timer.isActive():
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        if not condition():
            raise SystemExit("timed out waiting for the window")

    def settle_and_grab(name: str) -> None:
        for _ in range(20):
            app.processEvents()
        OUT.mkdir(parents=True, exist_ok=True)
        window.grab().save(str(OUT / name))
        print("wrote", OUT / name)

    def classify(paths: list[Path]) -> None:
        finished = []
        window.classify_view.set_finished.connect(lambda: finished.append(True))
        window.classify_view.add_paths([str(p) for p in paths])
        wait_until(lambda: bool(finished))

    photos = write_photos(home)
    wait_until(lambda: window.model_status.state_label.text() == "ready")
    classify(photos[:1])
    settle_and_grab("single-photo.png")
    looked = window.classify_view.single_looked
    looked.button.click()
    wait_until(lambda: looked.caption.isVisible())
    settle_and_grab("where-it-looked.png")
    looked.button.click()
    classify(photos)
    settle_and_grab("batch.png")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
