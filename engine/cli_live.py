"""`live`: live recognition without a window, on a camera, a video file or a stream, with an FPS/latency summary.

Registered by engine/cli.py; torch and OpenCV are imported only when the command runs.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from typing import TYPE_CHECKING

from engine.cli_common import (
    EXIT_BUG,
    EXIT_CANCELLED,
    EXIT_OK,
    EXIT_USAGE,
    StderrReporter,
    add_model_arguments,
    cancel_on_ctrl_c,
    exit_status,
    load_classifier,
    model_spec_from_args,
    positive_int,
)
from engine.errors import UserFacingError
from engine.events import CancelToken, Event
from engine.live.types import MAX_SMOOTHING

if TYPE_CHECKING:
    from engine.live.pipeline import LivePrediction, LiveSettings
    from engine.live.sources import FrameSource
    from engine.models import ModelSpec
    from engine.predict import Classifier

DEFAULT_LIVE_TOPK = 1  # one line per frame reads best; --topk adds classes to the same line
STEP_TIMEOUT_S = 0.1  # how often the loop looks up from waiting for a frame (Ctrl+C, end of file)
SUMMARY = "Recognise what a camera, video file or stream shows, frame by frame."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("source", metavar="SOURCE", help="a camera index (0, 1, …), a video file, or a stream URL (rtsp://, http://)")
    add_model_arguments(parser)
    add("--frames", type=positive_int, metavar="N", help="stop after N predictions (default: run until stopped)")
    add("--loop", action="store_true", help="play a video file again from the start when it ends")
    add("--topk", type=positive_int, default=DEFAULT_LIVE_TOPK, metavar="K", help="classes per frame (default: 1)")
    add(
        "--smoothing",
        type=_smoothing,
        default=0.0,
        metavar="S",
        help=f"steady the prediction over frames: 0 (off, default) … {MAX_SMOOTHING} (weight of the past)",
    )
    add("--mirror", action="store_true", help="flip frames left-right first (a front camera's mirror view)")
    add("--json", action="store_true", help="print one JSON object per prediction on stdout, then a summary object")


def run(args: argparse.Namespace) -> int:
    from engine.live.pipeline import LiveSettings  # deferred: OpenCV and torch take a while to import
    from engine.live.sources import open_source

    spec = model_spec_from_args(args.model, args.weights, args.classes, args.prompt)
    settings = LiveSettings(topk=args.topk, smoothing=args.smoothing, mirror=args.mirror)
    source = open_source(args.source, loop=args.loop)
    # Opened before the model loads, so a missing camera or a broken file is reported at once; the capture
    # thread then uses the source as it is (open() again is a no-op), so a camera is not opened twice.
    source.open()
    reporter = StderrReporter(sys.stderr)
    cancel = CancelToken()
    with cancel_on_ctrl_c(cancel):
        try:
            classifier = _load_classifier(spec, args, reporter, cancel)
        except BaseException:
            source.close()  # nothing else holds it yet; once the pipeline runs, the pipeline releases it
            raise
        predictions, interrupted = _recognise(source, classifier, settings, args, reporter, cancel)
    summary = summarize(predictions, source.fps)
    if args.json:
        print(json.dumps(summary), flush=True)
    else:
        reporter.line(format_summary(summary))
    return EXIT_CANCELLED if cancel.cancelled or interrupted else EXIT_OK


def _load_classifier(
    spec: ModelSpec, args: argparse.Namespace, reporter: StderrReporter, cancel: CancelToken
) -> Classifier:
    return load_classifier(spec, args, reporter, cancel).for_live()  # shares the CPU with capture


def _recognise(
    source: FrameSource,
    classifier: Classifier,
    settings: LiveSettings,
    args: argparse.Namespace,
    reporter: StderrReporter,
    cancel: CancelToken,
) -> tuple[list[LivePrediction], bool]:
    """Classifies frames until --frames, the end of the file or Ctrl+C; returns the predictions and whether a
    second Ctrl+C cut the run short."""
    from engine.live.pipeline import LivePipeline

    pipeline = LivePipeline(source, SourceReporter(reporter), settings)
    show = _print_json if args.json else _print_human
    predictions: list[LivePrediction] = []
    try:
        pipeline.start()
        while not cancel.cancelled and len(predictions) < (args.frames or float("inf")):
            prediction = pipeline.step(classifier, timeout=STEP_TIMEOUT_S)
            if prediction is not None:
                predictions.append(prediction)
                show(prediction)
            elif pipeline.finished:  # the file ended and its last frame was classified, or reading failed
                if pipeline.status.state == "failed":
                    raise UserFacingError(pipeline.status.message, SOURCE_HINT)
                break
    except KeyboardInterrupt:  # the second Ctrl+C: stop at once, but still say what was measured
        return predictions, True
    finally:
        pipeline.stop()  # releases the source, unless a stuck read outlives it (the capture thread then does)
    return predictions, False


class SourceReporter:
    """Shows the capture thread's news on stderr: a camera dropping out and coming back, the end of a file."""

    def __init__(self, reporter: StderrReporter) -> None:
        self.reporter = reporter
        self._reconnecting = False

    def __call__(self, event: Event) -> None:
        from engine.live.capture import SourceStatus

        if not isinstance(event, SourceStatus):
            self.reporter(event)
        elif event.state == "reconnecting":
            self._reconnecting = True
            self.reporter.line(f"reconnecting: {event.message}")
        elif event.state == "running" and self._reconnecting:
            self._reconnecting = False
            self.reporter.line(event.message)
        elif event.state == "ended":
            self.reporter.line(event.message)


SOURCE_HINT = "Check that the camera is connected and not in use by another app, or that the file or URL plays."


def _print_human(prediction: LivePrediction) -> None:
    classes = "   ".join(f"{top.prob * 100:5.1f} % {top.label}" for top in prediction.top)
    print(f"frame {prediction.frame_index}  {prediction.latency_ms:.0f} ms  {classes}", flush=True)


def _print_json(prediction: LivePrediction) -> None:
    record = {
        "frame_index": prediction.frame_index,
        "top": [{"label": t.label, "index": t.index, "prob": round(t.prob, 6)} for t in prediction.top],
        "latency_ms": round(prediction.latency_ms, 2),
        "inference_fps": round(prediction.inference_fps, 2),
        "capture_fps": round(prediction.capture_fps, 2),
        "dropped": prediction.dropped,
    }
    print(json.dumps(record), flush=True)


def summarize(predictions: list[LivePrediction], source_fps: float) -> dict:
    """Rates over the whole run (from the predictions' own timestamps), not the rolling figures of the last second."""
    latencies = sorted(p.latency_ms for p in predictions)
    first, last = (predictions[0], predictions[-1]) if predictions else (None, None)
    spans = len(predictions) >= 2  # a rate needs two timestamps
    return {
        "summary": True,
        "predictions": len(predictions),
        "inference_fps": _rate(len(predictions) - 1, last.shown_at - first.shown_at) if spans else None,
        "capture_fps": (
            _rate(last.frame_index - first.frame_index, last.captured_at - first.captured_at) if spans else None
        ),
        "source_fps": round(source_fps, 2),
        "latency_ms_median": round(statistics.median(latencies), 2) if latencies else None,
        "latency_ms_p95": round(latencies[round(0.95 * (len(latencies) - 1))], 2) if latencies else None,
        "dropped": last.dropped if last else 0,
    }


def _rate(count: int, seconds: float) -> float | None:
    return round(count / seconds, 2) if seconds > 0 else None


def format_summary(summary: dict) -> str:
    def rate(value: float | None) -> str:
        return "–" if value is None else f"{value:.1f} FPS"

    def ms(value: float | None) -> str:
        return "–" if value is None else f"{value:.0f} ms"

    source = f" (the source's nominal rate: {summary['source_fps']:g} fps)" if summary["source_fps"] else ""
    return "\n".join([
        f"{summary['predictions']} predictions",
        f"  inference  {rate(summary['inference_fps'])}",
        f"  capture    {rate(summary['capture_fps'])}{source}",
        f"  latency    median {ms(summary['latency_ms_median'])}, p95 {ms(summary['latency_ms_p95'])}",
        f"  dropped    {summary['dropped']} {'frame' if summary['dropped'] == 1 else 'frames'} the model never saw",
    ])


def _smoothing(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not 0.0 <= value <= MAX_SMOOTHING:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_SMOOTHING}")
    return value


EPILOG = """\
Frames are read in real time; the model always takes the newest one, so a slow model skips frames
rather than falling behind. The summary (inference and capture FPS, latency, frames dropped) goes to
stderr at the end, or is the last JSON object with --json. A camera that is unplugged is retried.

examples:
  %(prog)s 0
  %(prog)s clip.mp4 --frames 100 --json > predictions.jsonl
  %(prog)s rtsp://192.168.1.20/stream --model resnet50 --device cuda --topk 3
  %(prog)s 0 --model my_bundle/ --smoothing 0.7 --mirror

""" + exit_status(
    (EXIT_OK, "the run ended (--frames reached, or the end of the file)"),
    (EXIT_USAGE, "bad arguments, the source could not be opened, or the model could not be loaded"),
    (EXIT_BUG, "something unexpected went wrong (details are in the log)"),
    (EXIT_CANCELLED, "stopped with Ctrl+C (the summary is still printed)"),
)
