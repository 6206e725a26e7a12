"""Turns a decoded image into the model's input tensor, following the model's own data config.

Gives the same numbers as timm's eval transform (`resolve_data_config` + `create_transform`), but works on
numpy so that a batch fills one preallocated buffer, and so that video frames can skip PIL files later.
"""
from __future__ import annotations

import math

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


class Preprocessor:
    """Resize, centre-crop, scale and normalise images exactly as timm's eval transform does."""

    def __init__(self, config: DataConfig) -> None:
        self.config = config
        _, self.height, self.width = config.input_size
        self._filter = _PIL_FILTERS.get(config.interpolation, Image.Resampling.BICUBIC)
        self._scale = 1.0 / 255.0
        self._mean = np.asarray(config.mean, dtype=np.float32).reshape(3, 1, 1)
        self._std = np.asarray(config.std, dtype=np.float32).reshape(3, 1, 1)

    @property
    def decode_size(self) -> int:
        """The largest side the resize step produces: what decode_image's `min_size` needs for this model."""
        pct = self.config.crop_pct
        return max(math.floor(self.height / pct), math.floor(self.width / pct))

    def crop(self, image: Image.Image) -> Image.Image:
        """Resize and crop an RGB image to the model's input size (the geometric half of the transform)."""
        pct = self.config.crop_pct
        scale_h, scale_w = math.floor(self.height / pct), math.floor(self.width / pct)
        if self.config.crop_mode == "squash":
            image = _resize(image, (scale_w, scale_h), self._filter)
        elif self.config.crop_mode == "border":
            return self._fit_with_border(image, scale_h, scale_w)
        elif scale_h == scale_w:
            image = _resize(image, _shorter_side_size(image.size, scale_h), self._filter)
        else:
            ratio = min(image.height / scale_h, image.width / scale_w)  # timm's ResizeKeepRatio(longest=0)
            image = _resize(image, (round(image.width / ratio), round(image.height / ratio)), self._filter)
        return _center_crop(image, self.height, self.width, fill=(0, 0, 0))

    def _fit_with_border(self, image: Image.Image, scale_h: int, scale_w: int) -> Image.Image:
        ratio = max(image.height / scale_h, image.width / scale_w)  # ResizeKeepRatio(longest=1)
        image = _resize(image, (round(image.width / ratio), round(image.height / ratio)), self._filter)
        fill = tuple(round(255 * v) for v in self.config.mean)
        return _center_crop(image, self.height, self.width, fill=fill)

    def fill(self, image: Image.Image, out: np.ndarray) -> None:
        """Write the normalised CHW float32 input for `image` into `out` (one slot of a batch buffer)."""
        pixels = np.asarray(self.crop(image), dtype=np.float32).transpose(2, 0, 1)
        np.multiply(pixels, self._scale, out=out)
        out -= self._mean
        out /= self._std

    def fill_array(self, rgb: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The same as `fill` for an RGB uint8 HxWx3 array (a video frame), without going through a file.

        Returns `out`, or a new CHW float32 array when `out` is None.
        """
        if out is None:
            out = np.empty((3, self.height, self.width), dtype=np.float32)
        self.fill(Image.fromarray(np.ascontiguousarray(rgb)), out)  # uint8 HxWx3 is RGB
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


def _center_crop(image: Image.Image, height: int, width: int, fill: tuple[int, ...]) -> Image.Image:
    if image.width < width or image.height < height:  # torchvision pads images smaller than the crop
        padded = Image.new("RGB", (max(width, image.width), max(height, image.height)), fill)
        padded.paste(image, ((padded.width - image.width) // 2, (padded.height - image.height) // 2))
        image = padded
    top = int(round((image.height - height) / 2.0))
    left = int(round((image.width - width) / 2.0))
    return image.crop((left, top, left + width, top + height))
