"""Classifier Studio's start-up time: from `python main.py cat.jpg` to a visible window, to the first model ready,
and to the photo classified.

Each start runs the real app in throwaway user folders (config, data, state, cache, home), offscreen unless a
display exists. Two clocks: the app's own (the lines gui/app.py writes to its log, counted from main.py's first
line), and this script's (from launching the process to the line appearing in the log, polled every 20 ms; it
includes the interpreter's own start). The first start converts the built-in model and exports it to ONNX
Runtime; the later starts find both cached, as a user's every start after the first does, and start from the
checked ONNX file without importing torch (engine/quick_start.py).

Then the command line: `python main.py classify cat.jpg`, in fp32 and with --int8, the whole command timed from
launch to exit, in full (the quick-start records deleted before each run, every other file cached) and as
users' runs after the first go (from the records).

    python benchmarks/startup.py [--repeats 3] [--timeout 300]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.paths import user_log_dir  # noqa: E402  (torch-free)
from engine.quick_start import quick_start_dir  # noqa: E402  (torch-free)

GOAL_WINDOW_S = 1.0
POLL_S = 0.02
LOG_FILE_NAME = "classifier-studio.log"  # gui/app.py's LOG_FILE_NAME (not imported: that would pull in Qt here)
WINDOW_LINE = re.compile(r"Window shown ([\d.]+) s after launch")
MODEL_LINE = re.compile(r"First model ready ([\d.]+) s after launch \((.*)\)")
RESULT_LINE = re.compile(r"First image classified ([\d.]+) s after launch")


@dataclass
class Start:
    label: str
    window_app: float
    window_outside: float
    model_app: float
    model_outside: float
    model_name: str
    result_app: float
    result_outside: float


def throwaway_environment(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    folders = {"HOME": "home", "XDG_CONFIG_HOME": "config", "XDG_DATA_HOME": "data", "XDG_STATE_HOME": "state",
               "XDG_CACHE_HOME": "cache", "LOCALAPPDATA": "local", "APPDATA": "roaming"}
    for variable, name in folders.items():
        (home / name).mkdir(parents=True, exist_ok=True)
        env[variable] = str(home / name)
    for variable in ("CLASSIFIER_STUDIO_DATA_DIR", "HF_HOME", "HF_HUB_CACHE", "TORCH_HOME"):
        env.pop(variable, None)
    env["HF_HUB_OFFLINE"] = "1"  # the built-in model needs no network; nothing here should reach for it
    if not (sys.platform in ("win32", "darwin") or env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        env["QT_QPA_PLATFORM"] = "offscreen"
    return env


def write_photo(path: Path) -> Path:
    from skimage import data  # a real photo of a cat (scikit-image, a test dependency)
    from PIL import Image

    Image.fromarray(data.chelsea()).save(path, quality=92)
    return path


def as_the_app_sees_it(env: dict[str, str], folder: Callable[[], Path]) -> Path:
    """A folder of the app's (engine.paths, engine.quick_start), computed as the app does under `env`."""
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        return folder()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def start_once(label: str, env: dict[str, str], log_file: Path, timeout: float, output: Path, photo: Path) -> Start:
    """One launch of `main.py PHOTO`, as "Open with" in a file manager: the photo is classified once a model is
    ready."""
    offset = log_file.stat().st_size if log_file.is_file() else 0
    window = model = result = None
    with output.open("wb") as sink:
        launched = time.perf_counter()
        app = subprocess.Popen(
            [sys.executable, str(ROOT / "main.py"), str(photo)], cwd=ROOT, env=env, stdout=sink, stderr=sink
        )
        try:
            while result is None:
                elapsed = time.perf_counter() - launched
                if elapsed > timeout:
                    raise SystemExit(f"{label}: no model after {timeout:.0f} s; see {log_file} and {output}")
                if app.poll() is not None:
                    raise SystemExit(f"{label}: the app exited with {app.returncode}; see {output}")
                text = _new_text(log_file, offset)
                if window is None and (found := WINDOW_LINE.search(text)):
                    window = (float(found.group(1)), elapsed)
                if window is not None and model is None and (found := MODEL_LINE.search(text)):
                    model = (float(found.group(1)), elapsed, found.group(2))
                if model is not None and (found := RESULT_LINE.search(text)):
                    result = (float(found.group(1)), elapsed)
                time.sleep(POLL_S)
        finally:
            stop(app)
    return Start(label, window[0], window[1], model[0], model[1], model[2], result[0], result[1])


def _new_text(log_file: Path, offset: int) -> str:
    try:
        with log_file.open("rb") as file:
            file.seek(offset)
            return file.read().decode("utf-8", "replace")
    except OSError:
        return ""


def stop(app: subprocess.Popen) -> None:
    if app.poll() is None:
        app.terminate()
        try:
            app.wait(10)
        except subprocess.TimeoutExpired:
            app.kill()
            app.wait()


def command_seconds(env: dict[str, str], photo: Path, extra: list[str], timeout: float) -> float:
    """Launch to exit of `main.py classify PHOTO [extra]`, which must succeed."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), "classify", str(photo), *extra], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise SystemExit(f"main.py classify {' '.join(extra)} failed:\n{done.stderr}")
    return time.perf_counter() - started


def time_command_line(env: dict[str, str], photo: Path, repeats: int, timeout: float) -> None:
    """The classify command in fp32 and int8: loaded in full vs from the quick-start record (see the docstring)."""
    records = as_the_app_sees_it(env, quick_start_dir)
    print(f"\n{'python main.py classify cat.jpg':<40} {'first':>8} {'in full (median)':>17} {'quick (median)':>15}")
    for extra in ([], ["--int8"]):
        first = command_seconds(env, photo, extra, timeout)  # exports (and quantizes) once
        full, quick = [], []
        for _ in range(repeats):
            shutil.rmtree(records, ignore_errors=True)
            full.append(command_seconds(env, photo, extra, timeout))  # writes the record again
            quick.append(command_seconds(env, photo, extra, timeout))
        print(f"{' '.join(extra) or '(fp32)':<40} {first:>6.2f} s {statistics.median(full):>15.2f} s "
              f"{statistics.median(quick):>13.2f} s   (quick: {', '.join(f'{q:.2f}' for q in quick)} s)")


def print_table(starts: list[Start]) -> None:
    print(f"{'start':<22} {'window (app)':>13} {'window (outside)':>17} {'model (app)':>12} {'model (outside)':>16}"
          f" {'1st result (app)':>17} {'1st result (outside)':>21}  model")
    for s in starts:
        print(f"{s.label:<22} {s.window_app:>11.2f} s {s.window_outside:>15.2f} s {s.model_app:>10.2f} s "
              f"{s.model_outside:>14.2f} s {s.result_app:>15.2f} s {s.result_outside:>19.2f} s  {s.model_name}")


def print_summary(cached: list[Start]) -> None:
    if not cached:
        return
    window = statistics.median(s.window_outside for s in cached)
    model = statistics.median(s.model_outside for s in cached)
    result = statistics.median(s.result_outside for s in cached)
    verdict = "met" if window < GOAL_WINDOW_S else "NOT met"
    print(f"\nCached starts, median from launch (outside clock): window {window:.2f} s, first model ready "
          f"{model:.2f} s, first photo classified {result:.2f} s. Goal window < {GOAL_WINDOW_S:.1f} s: {verdict}.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="starts with the model cached (default 3)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds a start may take to a ready model")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="startup-bench-") as folder:
        env = throwaway_environment(Path(folder))
        log_file = as_the_app_sees_it(env, user_log_dir) / LOG_FILE_NAME
        output = Path(folder) / "app-output.txt"
        photo = write_photo(Path(folder) / "cat.jpg")
        starts = [start_once("first (convert+export)", env, log_file, args.timeout, output, photo)]
        for i in range(args.repeats):
            starts.append(start_once(f"cached #{i + 1}", env, log_file, args.timeout, output, photo))
        print_table(starts)
        print_summary(starts[1:])
        time_command_line(env, photo, args.repeats, args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
