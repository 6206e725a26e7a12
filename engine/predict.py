"""Prediction: top-k classes for images, one at a time or a whole batch of files, each file timed.

A file that fails to decode gets its own error result; the rest of the batch carries on.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from PIL import Image

from engine.decode import IMAGE_EXTENSIONS, decode_image
from engine.errors import UserFacingError
from engine.events import CancelToken, EventSink, Progress, ignore_events
from engine.models import LoadedModel
from engine.preprocess import Preprocessor
from engine.results import ImageResult, TopClass
from engine.runtime import InferenceBackend, PyTorchBackend

DEFAULT_TOPK = 5
DEFAULT_BATCH = 8


class Classifier:
    """A loaded model plus its preprocessing: images in, sorted top-k probabilities out."""

    def __init__(self, loaded: LoadedModel, backend: InferenceBackend | None = None) -> None:
        self.loaded = loaded
        self.backend = backend or PyTorchBackend(loaded)  # engine.runtime.create_backend picks a faster one
        self.preprocessor = Preprocessor(loaded.data_config)
        # One throwaway forward pass pays torch's first-call setup now, so "ready" means ready and the
        # first image's time is the model's real speed.
        self.predict_tensor(torch.zeros(1, *loaded.data_config.input_size), topk=1)

    def for_live(self) -> Classifier:
        """This classifier tuned to share the CPU with live capture and display (itself if nothing changes)."""
        backend = self.backend.for_live()
        return self if backend is self.backend else Classifier(self.loaded, backend)

    @torch.inference_mode()
    def predict_tensor(self, batch: torch.Tensor, topk: int = DEFAULT_TOPK) -> list[tuple[TopClass, ...]]:
        logits = torch.from_numpy(self.backend.logits(batch.numpy()))
        probs = logits.softmax(dim=-1)
        k = min(topk, probs.shape[-1])
        values, indices = probs.topk(k, dim=-1)  # sorted, highest first
        labels = self.loaded.labels
        return [
            tuple(TopClass(labels[i], i, p) for p, i in zip(row_p.tolist(), row_i.tolist()))
            for row_p, row_i in zip(values, indices)
        ]

    def predict_images(self, images: list[Image.Image], topk: int = DEFAULT_TOPK) -> list[tuple[TopClass, ...]]:
        return self.predict_tensor(self.preprocessor.batch(images), topk)

    def classify_encoded(
        self, name: str, data: bytes, topk: int = DEFAULT_TOPK, thumbnail_size: int = 0
    ) -> ImageResult:
        """Classify one encoded image held in memory (e.g. pasted from the clipboard)."""
        started = time.perf_counter()
        try:
            image = decode_image(data, self.preprocessor.decode_size)
        except UserFacingError as exc:
            return ImageResult(name, error=str(exc))
        top = self.predict_images([image], topk)[0]
        thumbnail = make_thumbnail(image, thumbnail_size) if thumbnail_size else None
        return ImageResult(name, top, (time.perf_counter() - started) * 1000, None, thumbnail)

    def classify_files(
        self,
        paths: Iterable[str | os.PathLike],
        topk: int = DEFAULT_TOPK,
        batch_size: int = DEFAULT_BATCH,
        on_result: Callable[[ImageResult], None] = lambda _r: None,
        on_event: EventSink = ignore_events,
        cancel: CancelToken | None = None,
        thumbnail_size: int = 0,
    ) -> list[ImageResult]:
        """Classify files in batches; results arrive through `on_result` as each batch finishes."""
        cancel = cancel or CancelToken()
        paths = [str(p) for p in paths]
        results: list[ImageResult] = []
        for start in range(0, len(paths), max(1, batch_size)):
            cancel.check()
            chunk = paths[start : start + batch_size]
            for result in self._classify_chunk(chunk, topk, thumbnail_size):
                results.append(result)
                on_result(result)
            on_event(Progress("Classifying", len(results), len(paths)))
        return results

    def _classify_chunk(self, paths: list[str], topk: int, thumbnail_size: int) -> list[ImageResult]:
        size = self.preprocessor.config.input_size
        buffer = np.empty((len(paths), *size), dtype=np.float32)
        prepared: list[tuple[int, str, float, np.ndarray | None]] = []
        results: dict[int, ImageResult] = {}
        for slot, path in enumerate(paths):
            started = time.perf_counter()
            try:
                image = decode_image(path, self.preprocessor.decode_size)
                self.preprocessor.fill(image, buffer[len(prepared)])
            except UserFacingError as exc:
                results[slot] = ImageResult(path, error=str(exc))
                continue
            thumbnail = make_thumbnail(image, thumbnail_size) if thumbnail_size else None
            prepared.append((slot, path, (time.perf_counter() - started) * 1000, thumbnail))
        if prepared:
            started = time.perf_counter()
            tops = self.predict_tensor(torch.from_numpy(buffer[: len(prepared)]), topk)
            share = (time.perf_counter() - started) * 1000 / len(prepared)
            for (slot, path, prep_ms, thumbnail), top in zip(prepared, tops):
                results[slot] = ImageResult(path, top, prep_ms + share, None, thumbnail)
        return [results[slot] for slot in range(len(paths))]


def make_thumbnail(image: Image.Image, size: int) -> np.ndarray:
    thumb = image.copy()
    thumb.thumbnail((size, size), Image.Resampling.BILINEAR)
    return np.ascontiguousarray(np.asarray(thumb.convert("RGB")))


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
