"""Where Classifier Studio's bundled files and the user's data and logs live (in a source checkout and in a
PyInstaller build), and which version is installed."""
from __future__ import annotations

import os
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


APP_NAME = "Classifier Studio"
DATA_DIR_ENV = "CLASSIFIER_STUDIO_DATA_DIR"  # lets users (and portable installs) keep data elsewhere


def user_data_dir() -> Path:
    """Classifier Studio's per-user data folder (converted models, ...), where each OS expects it.

    Read from the environment on every call, so a changed XDG_DATA_HOME or override takes effect at once.
    """
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(override).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = str(Path.home() / "Library" / "Application Support")
    else:
        # The XDG spec says a relative XDG_DATA_HOME is invalid and must be ignored.
        xdg = os.environ.get("XDG_DATA_HOME", "")
        base = xdg if os.path.isabs(xdg) else str(Path.home() / ".local" / "share")
    return Path(base) / APP_NAME


def user_log_dir() -> Path:
    """Where Classifier Studio writes its log, where each OS keeps logs (XDG state folder on Linux)."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / APP_NAME / "Logs"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Logs" / APP_NAME
    xdg = os.environ.get("XDG_STATE_HOME", "")
    return Path(xdg if os.path.isabs(xdg) else str(Path.home() / ".local" / "state")) / APP_NAME


def package_version(package: str) -> str:
    """An installed package's version, or "unknown" (e.g. a frozen build without its metadata): for cache keys."""
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


def app_version() -> str:
    """The installed version, as `--version` and Help > About show it ("dev" in a never-installed checkout)."""
    from importlib import metadata  # deferred: ~35 ms of the window's start-up, for the About box only

    try:
        return metadata.version("classifier-studio")
    except metadata.PackageNotFoundError:
        return "dev"
