"""Live recognition's speed on a real video file: does the live pipeline keep up with the model alone?

For each model, in the same run: model-only speed at batch 1 (a preprocessed tensor → forward → top-5, timed
before and after the live run so background load hits both alike) on the backend the live view uses (`auto`:
ONNX Runtime on the CPU) with every core, and in plain PyTorch eager mode for comparison; then the live pipeline
as the Live tab runs it (sharing the CPU with capture and display) on a 640x480 video
of real photos played in real time: inference FPS and its ratio to model-only (capped at the video's rate: a
faster model can only see the frames there are), latency from capture to prediction (median, p95), frames the
model never saw, capture FPS against the file's own rate, and the display-side rate: a thread polling
latest_frame() at 60 Hz, as the window's video view does, counting new frames per second while inference runs.

Rates come from median times (per forward; between consecutive predictions), so that a shared machine's
stalls do not decide the ratio; "sustained" is predictions over the whole run's time, stalls included.
Random weights let activations decay into denormal floats, which a CPU computes up to 30x slower and which
depend on the picture (resnet50: 76 ms on one frame, 2.4 s on the next); trained weights do not, so the
benchmark flushes denormals to zero and seeds the weights, to time what a trained model would do.

    python benchmarks/live.py [--models a,b] [--device cpu] [--precision fp32] [--backend auto] [--int8]
                              [--seconds 10] [--threads N] [--size 640x480]

On a GPU, `--device cuda --precision fp16` (or bf16) runs the live pipeline in that precision; the eager
column stays plain fp32 PyTorch on the same device, the baseline users would otherwise have.
"""
from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.cli_live import summarize  # noqa: E402  (the same figures `main.py live` prints)
from engine.live.capture import SourceStatus  # noqa: E402
from engine.live.pipeline import LivePipeline, LiveSettings  # noqa: E402
from engine.live.sources import VideoFileSource  # noqa: E402
from engine.models import load_model  # noqa: E402
from engine.predict import Classifier  # noqa: E402
from engine.runtime import create_backend  # noqa: E402
from engine.specs import BACKENDS, PRECISIONS, Builtin, ModelSpec, RandomInit, spec_for_name  # noqa: E402

MODELS = ["mobilenetv3_large_100", "resnet50", "tf_efficientnet_lite0"]
VIDEO_SIZE = (640, 480)  # width, height: a common webcam mode (the default of --size)
VIDEO_FPS = 30
DISPLAY_HZ = 60
MODEL_ONLY_S = 3.0  # timed before and after each live run


def write_photo_video(path: Path, seconds: float, size: tuple[int, int] = VIDEO_SIZE) -> Path:
    """An MJPG video of real photos, one per second, each slowly panning so that every frame differs."""
    from skimage import data

    width, height = size
    margin = 80  # pixels the view pans across each photo
    photos = [_cover(photo, width + margin, height) for photo in (data.chelsea(), data.coffee(), data.rocket())]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), float(VIDEO_FPS), size)
    for i in range(round(seconds * VIDEO_FPS)):
        photo = photos[(i // VIDEO_FPS) % len(photos)]
        left = (i % VIDEO_FPS) * margin // VIDEO_FPS
        writer.write(np.ascontiguousarray(photo[:, left : left + width, ::-1]))  # RGB → OpenCV's BGR
    writer.release()
    return path


def _cover(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale to fill width x height, then crop the middle (no borders)."""
    image = Image.fromarray(rgb)
    scale = max(width / image.width, height / image.height)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BILINEAR)
    left, top = (image.width - width) // 2, (image.height - height) // 2
    return np.asarray(image.crop((left, top, left + width, top + height)))


def model_only_seconds(classifier: Classifier, rgb: np.ndarray, seconds: float) -> list[float]:
    """Times of batch-1 forwards of the model alone, for `seconds`: preprocessing done once, outside the timing."""
    batch = classifier.preprocessor.batch_array([Image.fromarray(rgb)])
    for _ in range(3):
        classifier.predict_batch(batch)
    times: list[float] = []
    finish = time.perf_counter() + seconds
    while not times or time.perf_counter() < finish:
        started = time.perf_counter()
        classifier.predict_batch(batch)  # ends with .cpu(), so GPU work is finished when it returns
        times.append(time.perf_counter() - started)
    return times


class DisplayPoller(threading.Thread):
    """What the window's video view does: look at the newest frame DISPLAY_HZ times a second; count the new ones."""

    def __init__(self, pipeline: LivePipeline) -> None:
        super().__init__(daemon=True)
        self.pipeline = pipeline
        self.new_frame_times: list[float] = []
        self._stopping = threading.Event()

    def run(self) -> None:
        last_index, tick = None, time.perf_counter()
        while not self._stopping.is_set():
            frame = self.pipeline.latest_frame()
            if frame is not None and frame.index != last_index:
                last_index = frame.index
                self.new_frame_times.append(time.perf_counter())
            tick += 1 / DISPLAY_HZ
            self._stopping.wait(max(0.0, tick - time.perf_counter()))

    def stop(self) -> None:
        self._stopping.set()
        self.join()

    @property
    def fps(self) -> float:
        times = self.new_frame_times
        return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0


def live_run(classifier: Classifier, video: Path) -> tuple[dict, float, float]:
    """Plays the whole video through the live pipeline.

    Returns the CLI's summary, the median-interval inference rate and the display-side rate.
    """
    ended = threading.Event()

    def on_event(event) -> None:
        if isinstance(event, SourceStatus) and event.state in ("ended", "failed"):
            ended.set()

    source = VideoFileSource(video)
    pipeline = LivePipeline(source, on_event, LiveSettings(topk=5))
    display = DisplayPoller(pipeline)
    predictions = []
    pipeline.start()
    display.start()
    try:
        while True:
            ended_before = ended.is_set()  # read first: the last frame may arrive just before the end
            prediction = pipeline.step(classifier, timeout=0.1)
            if prediction is not None:
                predictions.append(prediction)
            elif ended_before:
                break
    finally:
        display.stop()
        pipeline.stop()
    intervals = [b.shown_at - a.shown_at for a, b in itertools.pairwise(predictions)]
    return summarize(predictions, source.fps), 1 / statistics.median(intervals), display.fps


def model_spec(arch: str) -> ModelSpec:
    """The built-in model as shipped; any other architecture with random weights (speed does not depend on them)."""
    spec = spec_for_name(arch)
    return spec if isinstance(spec.source, Builtin) else ModelSpec(spec.arch, RandomInit())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS)
    parser.add_argument("--backend", default="auto", choices=BACKENDS)
    parser.add_argument("--int8", action="store_true")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the test video")
    parser.add_argument("--threads", type=int, default=0, help="torch's CPU threads (default: torch's own choice)")
    parser.add_argument(
        "--size", default="x".join(map(str, VIDEO_SIZE)), help="the test video's WIDTHxHEIGHT (1280x720: an HD webcam)"
    )
    args = parser.parse_args()
    size = tuple(int(n) for n in args.size.lower().split("x"))
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # see the docstring: random weights only
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device} {args.precision}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        video = write_photo_video(Path(tmp) / "photos.avi", args.seconds, size)
        frames = round(args.seconds * VIDEO_FPS)
        print(f"video: {size[0]}x{size[1]} MJPG, {VIDEO_FPS} fps, {frames} frames of real photos")
        print(
            f"{'model':22} {'backend':17} {'eager FPS':>9} {'model-only FPS':>14} {'live FPS':>8} {'ratio':>5} "
            f"{'vs eager':>8} {'sustained':>9} {'latency ms p50/p95':>18} {'dropped':>9} {'capture FPS':>11} "
            f"{'display FPS':>11}"
        )
        still = cv2.cvtColor(cv2.VideoCapture(str(video)).read()[1], cv2.COLOR_BGR2RGB)
        for arch in args.models.split(","):
            torch.manual_seed(0)
            loaded = load_model(model_spec(arch), device=args.device, precision=args.precision)
            torch.manual_seed(0)  # the same weights, in plain fp32
            eager = Classifier(loaded if args.precision == "fp32" else load_model(model_spec(arch), device=args.device))
            classifier = Classifier(loaded, create_backend(loaded, args.backend, args.int8))
            live_classifier = classifier.for_live()  # as the Live tab does
            forwards = model_only_seconds(classifier, still, MODEL_ONLY_S)
            eager_forwards = model_only_seconds(eager, still, MODEL_ONLY_S)
            live, live_fps, display_fps = live_run(live_classifier, video)
            forwards += model_only_seconds(classifier, still, MODEL_ONLY_S)
            eager_forwards += model_only_seconds(eager, still, MODEL_ONLY_S)
            model_only = 1 / statistics.median(forwards)
            eager_fps = 1 / statistics.median(eager_forwards)
            reachable = min(model_only, VIDEO_FPS)  # a model faster than the video still sees only its frames
            latency = f"{live['latency_ms_median']:.0f} / {live['latency_ms_p95']:.0f}"
            print(
                f"{arch:22} {classifier.backend.name:17} {eager_fps:9.1f} {model_only:14.1f} {live_fps:8.1f} "
                f"{live_fps / reachable:5.2f} {live_fps / min(eager_fps, VIDEO_FPS):8.2f} {live['inference_fps']:9.1f} "
                f"{latency:>18} {live['dropped']:>4}/{frames:<4} "
                f"{live['capture_fps']:11.1f} {display_fps:11.1f}",
                flush=True,
            )
    print(f"ratio = live FPS / the lower of model-only FPS (same backend, every core) and the video's {VIDEO_FPS} fps "
          "(goal: at least 0.90); vs eager: the same against plain PyTorch eager")
    print(f"capture and display FPS: goal the video's {VIDEO_FPS} fps; dropped: frames the model never saw, of all;")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
