"""Where Classifier Studio's bundled files live, in a source checkout and in a PyInstaller build."""
from __future__ import annotations

import sys
from pathlib import Path


def resources_dir() -> Path:
    """The `resources/` folder: beside `engine/` in a checkout, inside the unpacked bundle when frozen."""
    # PyInstaller unpacks bundled data into a temp folder it names in sys._MEIPASS; __file__ there
    # points into the archive, so it can't be used to find data files.
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"
