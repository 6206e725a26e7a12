"""Prediction: top-k classes for images, one at a time or a whole batch of files, each file timed.

A file that fails to decode gets its own error result; the rest of the batch carries on.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

import numpy as np
from PIL import Image

from engine.decode import IMAGE_EXTENSIONS, decode_image
from engine.errors import UserFacingError
from engine.events import CancelToken, EventSink, Progress, ignore_events
from engine.onnx_session import softmax
from engine.preprocess import Preprocessor
from engine.results import ImageResult, TopClass
from engine.specs import LoadedModel
from engine.threads import ordered_on_threads

if TYPE_CHECKING:
    from engine.runtime import InferenceBackend

DEFAULT_TOPK = 5
DEFAULT_BATCH = 8
# Threads that decode and preprocess the next batch while the model runs. Two even on two cores: a file's
# reading and the model's gaps between operators leave room (benchmarks/inference.py: +7-20 % over one).
PREPARE_WORKERS = max(2, min(4, (os.cpu_count() or 2) // 2))


class Classifier:
    """A loaded model plus its preprocessing: images in, sorted top-k probabilities out."""

    def __init__(self, loaded: LoadedModel, backend: InferenceBackend | None = None) -> None:
        if backend is None:  # engine.runtime.create_backend picks a faster one
            from engine.runtime import PyTorchBackend  # imports torch; a quick start's backend needs none

            backend = PyTorchBackend(loaded)
        self.loaded = loaded
        self.backend = backend
        self.preprocessor = Preprocessor(loaded.data_config)
        # One throwaway forward pass pays the backend's first-call setup now, so "ready" means ready and the
        # first image's time is the model's real speed.
        self.predict_batch(np.zeros((1, *loaded.data_config.input_size), np.float32), topk=1)

    def for_live(self) -> Classifier:
        """This classifier tuned to share the CPU with live capture and display (itself if nothing changes)."""
        backend = self.backend.for_live()
        return self if backend is self.backend else Classifier(self.loaded, backend)

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities (N × classes, float32) for a preprocessed NCHW float32 batch."""
        # Softmax and top-k in numpy: torch's versions wake its thread pool, ~0.4 ms per call on 2 cores.
        return softmax(self.backend.logits(batch).astype(np.float32, copy=False))

    def predict_batch(self, batch: np.ndarray, topk: int = DEFAULT_TOPK) -> list[tuple[TopClass, ...]]:
        """Top-k classes for each image of a preprocessed NCHW float32 batch."""
        return [self.top_classes(p, topk) for p in self.probabilities(batch)]

    def top_classes(self, probs: np.ndarray, topk: int = DEFAULT_TOPK) -> tuple[TopClass, ...]:
        """The `topk` most likely classes of one image's probabilities, highest first; ties keep class order."""
        order = np.argsort(-probs, kind="stable")[: min(topk, probs.shape[-1])]
        labels = self.loaded.labels
        return tuple(TopClass(labels[i], i, float(probs[i])) for i in order.tolist())

    def predict_images(self, images: list[Image.Image], topk: int = DEFAULT_TOPK) -> list[tuple[TopClass, ...]]:
        return self.predict_batch(self.preprocessor.batch_array(images), topk)

    def classify_encoded(
        self, name: str, data: bytes, topk: int = DEFAULT_TOPK, thumbnail_size: int = 0
    ) -> ImageResult:
        """Classify one encoded image held in memory (e.g. pasted from the clipboard)."""
        buffer = np.empty((1, *self.preprocessor.config.input_size), dtype=np.float32)
        prepared = _RunNow().submit(self._prepare, data, buffer[0], thumbnail_size)
        return self._finish_chunk([(name, prepared)], buffer, topk)[0]

    def classify_stream(
        self,
        paths: Iterable[str | os.PathLike],
        topk: int = DEFAULT_TOPK,
        batch_size: int = DEFAULT_BATCH,
        on_event: EventSink = ignore_events,
        cancel: CancelToken | None = None,
        thumbnail_size: int = 0,
    ) -> Iterator[ImageResult]:
        """Classify files in batches, yielding each result as its batch finishes.

        Nothing is kept here, so a folder of any size costs only what the caller keeps (the window keeps
        thumbnails within a budget; the command line keeps nothing). While the model runs on one batch, worker
        threads decode and preprocess the next into a second buffer (decoding, resizing and the model all release
        the GIL), so a folder goes nearly at the model's speed.
        """
        cancel = cancel or CancelToken()
        paths = [str(p) for p in paths]
        size = max(1, batch_size)
        chunks = [paths[i : i + size] for i in range(0, len(paths), size)]
        buffers = [np.empty((size, *self.preprocessor.config.input_size), dtype=np.float32) for _ in range(2)]
        done = 0
        # One file has nothing to overlap with: it is prepared in this thread, without a hand-over (~0.5 ms).
        pool = ThreadPoolExecutor(PREPARE_WORKERS, thread_name_prefix="prepare-images") if len(paths) > 1 else _RunNow()
        try:
            ahead = self._start_preparing(pool, chunks[0], buffers[0], thumbnail_size) if chunks else []
            for index in range(len(chunks)):
                cancel.check()
                current = ahead
                if index + 1 < len(chunks):
                    ahead = self._start_preparing(pool, chunks[index + 1], buffers[(index + 1) % 2], thumbnail_size)
                results = self._finish_chunk(current, buffers[index % 2], topk)
                done += len(results)
                yield from results
                on_event(Progress("Classifying", done, len(paths)))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # on cancel, images not yet started are skipped

    def classify_files(
        self,
        paths: Iterable[str | os.PathLike],
        topk: int = DEFAULT_TOPK,
        batch_size: int = DEFAULT_BATCH,
        on_event: EventSink = ignore_events,
        cancel: CancelToken | None = None,
    ) -> list[ImageResult]:
        """classify_stream's results as one list, for a known handful of files (scripts, the self-test)."""
        return list(self.classify_stream(paths, topk, batch_size, on_event, cancel))

    def _start_preparing(
        self, pool: ThreadPoolExecutor | _RunNow, paths: list[str], buffer: np.ndarray, thumbnail_size: int
    ) -> list[tuple[str, Future[_Prepared]]]:
        return [
            (path, pool.submit(self._prepare, path, buffer[slot], thumbnail_size)) for slot, path in enumerate(paths)
        ]

    def _prepare(self, source: str | bytes, out: np.ndarray, thumbnail_size: int) -> _Prepared:
        """Decode one file (or encoded bytes) and write its model input into `out` (a worker thread's job)."""
        started = time.perf_counter()
        try:
            image = decode_image(source, self.preprocessor.decode_size)
            self.preprocessor.fill(image, out)
        except UserFacingError as exc:
            return _Prepared(error=str(exc))
        thumbnail = make_thumbnail(image, thumbnail_size) if thumbnail_size else None
        return _Prepared((time.perf_counter() - started) * 1000, thumbnail)

    def _finish_chunk(
        self, chunk: list[tuple[str, Future[_Prepared]]], buffer: np.ndarray, topk: int
    ) -> list[ImageResult]:
        prepared = [(path, future.result()) for path, future in chunk]
        usable = [slot for slot, (_, p) in enumerate(prepared) if p.error is None]
        tops: dict[int, tuple[TopClass, ...]] = {}
        share = 0.0
        if usable:
            # Rows of files that failed to decode hold garbage: leave them out (a copy, only when any failed).
            batch = buffer[: len(chunk)] if len(usable) == len(chunk) else buffer[usable]
            started = time.perf_counter()
            tops = dict(zip(usable, self.predict_batch(batch, topk)))
            share = (time.perf_counter() - started) * 1000 / len(usable)
        return [
            ImageResult(path, error=p.error) if p.error is not None
            else ImageResult(path, tops[slot], p.prep_ms + share, None, p.thumbnail)
            for slot, (path, p) in enumerate(prepared)
        ]


class _RunNow:
    """A stand-in for the thread pool that runs each job at once, in the calling thread."""

    def submit(self, job: Callable[..., _Prepared], *args) -> Future[_Prepared]:
        future: Future[_Prepared] = Future()
        future.set_result(job(*args))
        return future

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


@dataclass(frozen=True)
class _Prepared:
    """One file's decode and preprocess outcome: its time and thumbnail, or why it could not be read."""

    prep_ms: float = 0.0
    thumbnail: np.ndarray | None = None
    error: str | None = None


def make_thumbnail(image: Image.Image, size: int) -> np.ndarray:
    thumb = image.copy()
    thumb.thumbnail((size, size), Image.Resampling.BILINEAR)
    return np.ascontiguousarray(np.asarray(thumb.convert("RGB")))


def file_thumbnail(path: str, size: int) -> np.ndarray | None:
    """make_thumbnail of an image file (a JPEG decoded at reduced scale), or None when the file cannot be read any
    more: moved, deleted or damaged since it was listed."""
    try:
        return make_thumbnail(decode_image(path, size), size)
    except UserFacingError:
        return None


def file_thumbnails(
    paths: Iterable[str], size: int, cancel: CancelToken | None = None
) -> Iterator[tuple[str, np.ndarray | None]]:
    """(path, file_thumbnail) in the paths' order, decoded a few at a time on threads: decoders release the GIL, and
    a phone's 12-megapixel HEIC takes most of a second. Stops at `cancel` within one thumbnail."""
    threads = min(4, os.cpu_count() or 1)
    return ordered_on_threads(lambda path: (path, file_thumbnail(path, size)), paths, threads, 2 * threads,
                              cancel or CancelToken(), "thumbnails")


def expand_paths(inputs: Iterable[str | os.PathLike], cancel: CancelToken | None = None) -> list[Path]:
    """Files as given (a non-image file then gets its own clear error) and image files found in folders, recursively."""
    cancel = cancel or CancelToken()
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if not path.is_dir():
            found.append(path)
            continue
        for root, dirs, files in os.walk(path):
            cancel.check()
            dirs.sort()
            found.extend(Path(root) / f for f in sorted(files) if Path(f).suffix.lower() in IMAGE_EXTENSIONS)
    return found


def calibration_images(
    folders: Iterable[str | os.PathLike], preprocessor: Preprocessor, limit: int = 16
) -> list[np.ndarray]:
    """Up to `limit` preprocessed images from the top level of `folders` (the user's recent folders), for int8.

    Only each folder's own files are listed, not its subfolders, so a huge tree costs nothing; files that do
    not decode are skipped.
    """
    candidates: list[str] = []
    for folder in folders:
        try:
            with os.scandir(folder) as entries:
                names = sorted(e.path for e in entries if e.is_file() and _is_image_name(e.name))
        except OSError:
            continue
        step = max(1, len(names) // limit)  # spread over the folder rather than its first files
        candidates.extend(names[::step][:limit])
    images: list[np.ndarray] = []
    for path in candidates:
        if len(images) == limit:
            break
        try:
            image = decode_image(path, preprocessor.decode_size)
        except UserFacingError:
            continue
        out = np.empty(preprocessor.config.input_size, dtype=np.float32)
        preprocessor.fill(image, out)
        images.append(out)
    return images


def _is_image_name(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_EXTENSIONS
