"""Turns a decoded image into the model's input tensor, following the model's own data config.

Gives the same numbers as timm's eval transform (`resolve_data_config` + `create_transform`), but works on
numpy so that a batch fills one preallocated buffer, and so that video frames can skip PIL files later.
"""
from __future__ import annotations

import math
from concurrent.futures import Executor
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from engine.specs import DataConfig  # defined there, plain values that bundles carry

if TYPE_CHECKING:
    import torch

# timm's interpolation names → Pillow's filters (torchvision maps them the same way for PIL input).
_PIL_FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
    "lanczos": Image.Resampling.LANCZOS,
}


BANDED_MIN_SIDE = 64  # smaller images resize faster than two threads can be handed the work
BANDS_TRIED_KEPT = 64  # sizes whose banded resize was tried, remembered per preprocessor


class Preprocessor:
    """Resize, centre-crop, scale and normalise images exactly as timm's eval transform does."""

    def __init__(self, config: DataConfig) -> None:
        self.config = config
        _, self.height, self.width = config.input_size
        self._filter = _PIL_FILTERS.get(config.interpolation, Image.Resampling.BICUBIC)
        self._scale = 1.0 / 255.0
        self._mean = np.asarray(config.mean, dtype=np.float32).reshape(3, 1, 1)
        self._std = np.asarray(config.std, dtype=np.float32).reshape(3, 1, 1)
        self._bands_tried: dict[tuple, bool] = {}  # (image size, resized size, crop box) → bands give Pillow's pixels

    @property
    def decode_size(self) -> int:
        """The largest side the resize step produces: what decode_image's `min_size` needs for this model."""
        pct = self.config.crop_pct
        return max(math.floor(self.height / pct), math.floor(self.width / pct))

    def crop(self, image: Image.Image, pool: Executor | None = None) -> Image.Image:
        """Resize and crop an RGB image to the model's input size (the geometric half of the transform).

        `pool`: two threads to resize a large image with (the same pixels, in about half the time; see
        `_resize_in_bands`), for work that waits on it, such as a live frame.
        """
        pct = self.config.crop_pct
        scale_h, scale_w = math.floor(self.height / pct), math.floor(self.width / pct)
        if self.config.crop_mode == "squash":
            size = (scale_w, scale_h)
        elif self.config.crop_mode == "border":
            return self._fit_with_border(image, scale_h, scale_w)
        elif scale_h == scale_w:
            size = _shorter_side_size(image.size, scale_h)
        else:
            ratio = min(image.height / scale_h, image.width / scale_w)  # timm's ResizeKeepRatio(longest=0)
            size = (round(image.width / ratio), round(image.height / ratio))
        if pool is not None and size != image.size and min(*size, *image.size) >= BANDED_MIN_SIDE:
            box = _center_box(size, self.height, self.width)
            if box is not None and self._bands_exact(image.size, size, box, pool):
                return _resize_in_bands(image, size, self._filter, box, pool)
        return _center_crop(_resize(image, size, self._filter), self.height, self.width, fill=(0, 0, 0))

    def _bands_exact(
        self, image_size: tuple[int, int], size: tuple[int, int], box: tuple[int, int, int, int], pool: Executor
    ) -> bool:
        """Whether resizing in bands gives Pillow's own pixels for these sizes, tried once on random pixels.

        Pillow chooses which of its two passes goes first by an estimate of its own (a tall photo squashed to a
        square goes vertical first); the bands follow the horizontal-first order, so they are only used where
        Pillow does the same. A live stream's frames all have one size: one try, about 10 ms, per stream (and one
        per size while the user drags the crop box).
        """
        key = (image_size, size, box)
        if key not in self._bands_tried:
            if len(self._bands_tried) >= BANDS_TRIED_KEPT:  # dragging the live crop box makes a size per frame
                self._bands_tried.clear()
            noise = np.random.default_rng(0).integers(0, 256, (image_size[1], image_size[0], 3), dtype=np.uint8)
            probe = Image.fromarray(noise)
            expected = np.asarray(probe.resize(size, self._filter).crop(box))
            self._bands_tried[key] = np.array_equal(
                expected, np.asarray(_resize_in_bands(probe, size, self._filter, box, pool))
            )
        return self._bands_tried[key]

    def _fit_with_border(self, image: Image.Image, scale_h: int, scale_w: int) -> Image.Image:
        ratio = max(image.height / scale_h, image.width / scale_w)  # ResizeKeepRatio(longest=1)
        image = _resize(image, (round(image.width / ratio), round(image.height / ratio)), self._filter)
        fill = tuple(round(255 * v) for v in self.config.mean)
        return _center_crop(image, self.height, self.width, fill=fill)

    def fill(self, image: Image.Image, out: np.ndarray, pool: Executor | None = None) -> None:
        """Write the normalised CHW float32 input for `image` into `out` (one slot of a batch buffer)."""
        self.normalise(self.crop(image, pool), out)

    def normalise(self, cropped: Image.Image, out: np.ndarray) -> None:
        """The numeric half of the transform: `crop`'s result, scaled and normalised into `out`."""
        pixels = np.asarray(cropped, dtype=np.float32).transpose(2, 0, 1)
        np.multiply(pixels, self._scale, out=out)
        out -= self._mean
        out /= self._std

    def fill_array(self, rgb: np.ndarray, out: np.ndarray | None = None, pool: Executor | None = None) -> np.ndarray:
        """The same as `fill` for an RGB uint8 HxWx3 array (a video frame), without going through a file.

        Returns `out`, or a new CHW float32 array when `out` is None.
        """
        if out is None:
            out = np.empty((3, self.height, self.width), dtype=np.float32)
        self.fill(Image.fromarray(np.ascontiguousarray(rgb)), out, pool)  # uint8 HxWx3 is RGB
        return out

    def batch_array(self, images: list[Image.Image]) -> np.ndarray:
        """The NCHW float32 batch for `images`, as numpy (what inference takes; no torch needed)."""
        buffer = np.empty((len(images), 3, self.height, self.width), dtype=np.float32)
        for slot, image in zip(buffer, images):
            self.fill(image, slot)
        return buffer

    def batch(self, images: list[Image.Image]) -> torch.Tensor:
        import torch  # for training and tests; inference stays in numpy

        return torch.from_numpy(self.batch_array(images))

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.batch([image])[0]


def _shorter_side_size(size: tuple[int, int], short: int) -> tuple[int, int]:
    # torchvision's Resize(int): the shorter side becomes `short`, the longer is truncated, not rounded.
    width, height = size
    if width <= height:
        return short, int(short * height / width)
    return int(short * width / height), short


def _resize(image: Image.Image, size: tuple[int, int], resample: Image.Resampling) -> Image.Image:
    return image if image.size == size else image.resize(size, resample)


def _center_box(size: tuple[int, int], height: int, width: int) -> tuple[int, int, int, int] | None:
    """torchvision's centre crop of an image of `size` as a box; None when the image is smaller (it pads those)."""
    if size[0] < width or size[1] < height:
        return None
    top = int(round((size[1] - height) / 2.0))
    left = int(round((size[0] - width) / 2.0))
    return left, top, left + width, top + height


def _resize_in_bands(
    image: Image.Image, size: tuple[int, int], resample: Image.Resampling, box: tuple[int, int, int, int],
    pool: Executor,
) -> Image.Image:
    """`image.resize(size, resample).crop(box)`, bit for bit, with two threads.

    Pillow resizes in two passes, each rounded to 8 bits: horizontal, then vertical. A row of the first pass
    depends on one row of the image, a column of the second on one column of the first's result, so each pass
    splits into two bands that threads compute at once (Pillow lets go of the GIL while it resamples), and the
    second pass only computes the columns the crop keeps. 640x480 → 224 px: 3.3 → 2.3 ms; 1920x1080: 14.8 → 8.2 ms.
    """
    width, height = size
    left, top, right, bottom = box
    middle = image.height // 2

    def horizontal(rows: tuple[int, int]) -> np.ndarray:
        band = image.crop((0, rows[0], image.width, rows[1])).resize((width, rows[1] - rows[0]), resample)
        return np.asarray(band)[:, left:right]

    resized_rows = np.concatenate(list(pool.map(horizontal, ((0, middle), (middle, image.height)))))
    half = (right - left) // 2

    def vertical(columns: tuple[int, int]) -> np.ndarray:
        band = Image.fromarray(np.ascontiguousarray(resized_rows[:, columns[0]:columns[1]]))
        return np.asarray(band.resize((band.width, height), resample))[top:bottom]

    return Image.fromarray(np.concatenate(list(pool.map(vertical, ((0, half), (half, right - left)))), axis=1))


def _center_crop(image: Image.Image, height: int, width: int, fill: tuple[int, ...]) -> Image.Image:
    if image.width < width or image.height < height:  # torchvision pads images smaller than the crop
        padded = Image.new("RGB", (max(width, image.width), max(height, image.height)), fill)
        padded.paste(image, ((padded.width - image.width) // 2, (padded.height - image.height) // 2))
        image = padded
    return image.crop(_center_box(image.size, height, width))
