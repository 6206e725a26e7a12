"""Images to tensors for training: timm's augmentations for learning, the classify path's own preprocessing for
evaluation.

Evaluation uses engine.preprocess.Preprocessor, so validation accuracy is measured on exactly what classification sees.
"""
from __future__ import annotations

import io
import math
import multiprocessing
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import torch
from PIL import Image
from timm.data import Mixup, create_transform

from engine.decode import ImageDecodeError, decode_image
from engine.events import EventSink, Log
from engine.preprocess import DataConfig, Preprocessor
from engine.training.dataset import LabeledImage

# Each preset is a set of create_transform(is_training=True) arguments; "none" uses the evaluation transform.
AUGMENTATION_PRESETS: dict[str, dict] = {
    "light": {"scale": (0.6, 1.0), "hflip": 0.5, "color_jitter": 0.1},
    "standard": {"scale": (0.25, 1.0), "hflip": 0.5, "auto_augment": "rand-m7-n2-mstd0.5"},  # RandAugment: rotation…
    # mmax9: at magnitude 10, timm's increasing posterize asks Pillow for 0 bits, which Pillow refuses.
    "heavy": {"scale": (0.08, 1.0), "hflip": 0.5, "auto_augment": "rand-m9-mstd0.5-inc1-mmax9", "re_prob": 0.25},
}
MIXUP_PRESETS = {"heavy": {"mixup_alpha": 0.8, "cutmix_alpha": 1.0}}


def training_data_config(base: DataConfig, image_size: int) -> DataConfig:
    """The model's data config at the size the user chose (0 keeps the model's own)."""
    if not image_size:
        return base
    return replace(base, input_size=(3, image_size, image_size))


class AugmentingTransform:
    """timm's training transform for a preset, and the shortest side it needs decoded (`decode_size`)."""

    def __init__(self, config: DataConfig, augmentation: str) -> None:
        preset = AUGMENTATION_PRESETS[augmentation]
        self.transform = create_transform(config.input_size, is_training=True, interpolation=config.interpolation,
                                          mean=config.mean, std=config.std, **preset)
        # The smallest random crop (its least area, at the narrowest 3:4 aspect ratio) keeps at least this share
        # of the image's shortest side. decode_image keeps that side at least twice `decode_size`, so even that
        # crop still shrinks by 2 or more, as the classify path's resize does; a phone's 12-megapixel JPEG is
        # then decoded at a quarter or half of its size instead of in full.
        smallest_crop_side = math.sqrt(0.75 * preset["scale"][0])
        self.decode_size = math.ceil(max(config.input_size[1:]) / smallest_crop_side)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.transform(image)


def train_transform(config: DataConfig, augmentation: str) -> AugmentingTransform | Preprocessor:
    """The training images' transform; without augmentation ("none"), the classify path's own."""
    if augmentation not in AUGMENTATION_PRESETS:
        return Preprocessor(config)
    return AugmentingTransform(config, augmentation)


def make_mixup(augmentation: str, num_classes: int, label_smoothing: float) -> Mixup | None:
    preset = MIXUP_PRESETS.get(augmentation)
    if preset is None:
        return None
    return Mixup(**preset, label_smoothing=label_smoothing, num_classes=num_classes)


class LabeledImageDataset(torch.utils.data.Dataset):
    """(tensor, label) pairs for scanned images; a file that stopped decoding since the scan is replaced, not fatal.

    Large JPEGs are decoded at a reduced scale: for a Preprocessor just as the classify path decodes them, so
    validation accuracy is what classification will see. With `keep_large`, for the epochs of a full fine-tune,
    each large photo is decoded once and kept in memory: a phone's HEIC takes about 600 ms to decode, a
    12-megapixel PNG 280 ms, its JPEG 40 ms even at a reduced scale. Training keeps it reduced as far as the
    random crops allow, as a quality-95 JPEG (about 200 KB, 10 ms to decode again); evaluation keeps the exact
    picture the model is shown (150 KB at 224 px).
    """

    KEPT_BYTES = 512 * 2**20  # per loading process

    def __init__(
        self, items: Sequence[LabeledImage], transform: AugmentingTransform | Preprocessor, keep_large: bool = False
    ) -> None:
        self.items = list(items)
        self.transform = transform
        self.min_size = transform.decode_size
        self.keep_large = keep_large
        self.kept: dict[str, bytes | Image.Image] = {}  # path → reduced JPEG (training) or cropped picture
        self.kept_bytes = 0
        # path → why, for each photo that stopped decoding since the scan (read in this process: without workers)
        self.unreadable: dict[str, str] = {}
        self.warned: set[str] = set()  # those warn_unreadable has told of

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        for attempt in range(len(self.items)):
            item = self.items[(index + attempt) % len(self.items)]
            try:
                picture, keep = self._load(item.path)
            except ImageDecodeError as exc:
                self.unreadable.setdefault(item.path, exc.message)
                continue  # changed or deleted after the scan; the next image stands in
            return self._finish(item.path, picture, keep), item.label
        raise ImageDecodeError("None of the training images can be read any more.", "Scan the data folder again.")

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, int]]:
        """A batch (the DataLoader asks for whole batches this way), its photos decoded on a few threads: decoders
        release the GIL, and a phone's HEIC keeps one core busy for 0.6 s. The random augmentations run afterwards,
        in order, so a seed still gives the same batches."""
        threads = min(len(indices), os.cpu_count() or 1, 8)
        if threads < 2 or torch.utils.data.get_worker_info() is not None:  # a worker process: one of several
            return [self[index] for index in indices]
        paths = [self.items[index].path for index in indices]
        with ThreadPoolExecutor(threads, thread_name_prefix="training-decode") as pool:
            loaded = list(pool.map(self._load_or_none, paths))
        return [
            (self._finish(path, *got), self.items[index].label) if got is not None else self[index]
            for index, path, got in zip(indices, paths, loaded)
        ]

    def _load(self, path: str) -> tuple[Image.Image, bytes | Image.Image | None]:
        """The picture to augment (training) or to normalise (evaluation), and what to keep of it, if anything.
        Safe to run on several threads at once: it only reads the kept photos."""
        kept = self.kept.get(path)
        if isinstance(self.transform, Preprocessor):
            if isinstance(kept, Image.Image):
                return kept, None
            cropped = self.transform.crop(decode_image(path, self.min_size))
            return cropped, cropped if self._worth_keeping(path, cropped) else None
        if isinstance(kept, bytes):
            return decode_image(kept), None
        image = decode_image(path, self.min_size)
        factor = min(image.size) // (2 * self.min_size)
        if factor >= 2:  # a format with no reduced-scale decoding
            image = image.reduce(factor)  # box averaging, as a JPEG's reduced-scale decoding does
        if not self._worth_keeping(path, image):
            return image, None
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=95, subsampling=0)
        return image, buffer.getvalue()

    def _load_or_none(self, path: str) -> tuple[Image.Image, bytes | Image.Image | None] | None:
        try:
            return self._load(path)
        except ImageDecodeError:
            return None  # __getitem__ then finds the image that stands in

    def _finish(self, path: str, picture: Image.Image, keep: bytes | Image.Image | None) -> torch.Tensor:
        if keep is not None and path not in self.kept:  # balanced sampling can draw a photo twice in a batch
            self.kept[path] = keep
            self.kept_bytes += len(keep) if isinstance(keep, bytes) else 3 * keep.width * keep.height
        if isinstance(self.transform, Preprocessor):
            out = torch.empty(self.transform.config.input_size)
            self.transform.normalise(picture, out.numpy())  # as Preprocessor.__call__ does after its crop
            return out
        return self.transform(picture)

    def _worth_keeping(self, path: str, picture: Image.Image) -> bool:
        """Whether there is room, and the file holds at least 4 times the pixels kept (so decoding it costs)."""
        return (self.keep_large and self.kept_bytes < self.KEPT_BYTES
                and 4 * picture.width * picture.height <= _stored_pixels(path))


def warn_unreadable(datasets: Iterable[LabeledImageDataset], on_event: EventSink) -> None:
    """A warning, once, for each photo that could not be read any more, so that another stood in for it."""
    for dataset in datasets:
        for path, why in dataset.unreadable.items():
            if path not in dataset.warned:
                dataset.warned.add(path)
                on_event(Log("warning", f"{why} Another photo stood in for it; scan the folder again to leave it out."))


def _stored_pixels(path: str) -> int:
    """The pixels the file holds at full size (read from its header); 0 when it is gone since it was decoded."""
    try:
        with Image.open(path) as stored:
            return stored.width * stored.height
    except OSError:
        return 0


def make_loader(
    dataset: LabeledImageDataset,
    batch_size: int,
    workers: int,
    shuffle: bool,
    seed: int,
    sample_weights: Sequence[float] | None = None,
    drop_last: bool = False,
) -> torch.utils.data.DataLoader:
    generator = torch.Generator().manual_seed(seed)
    sampler = None
    if sample_weights is not None:
        sampler = torch.utils.data.WeightedRandomSampler(
            list(sample_weights), num_samples=len(dataset), replacement=True, generator=generator
        )
        shuffle = False
    extra = {}
    if workers > 0:
        # Spawned workers start clean: forking a process that runs Qt and torch threads can deadlock, and the
        # frozen app relays spawn through multiprocessing.freeze_support in main.py.
        extra = {"multiprocessing_context": multiprocessing.get_context("spawn"), "persistent_workers": True}
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        sampler=sampler,
        num_workers=workers,
        generator=generator,
        drop_last=drop_last and len(dataset) > batch_size,
        **extra,
    )


def balanced_sample_weights(labels: Sequence[int], num_classes: int) -> list[float]:
    """Per-image weights that draw every class equally often."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes).astype(np.float64)
    return [1.0 / counts[label] for label in labels]


def inverse_frequency_weights(labels: Sequence[int], num_classes: int) -> torch.Tensor:
    """Loss weights that make each class count as much as the others, averaging 1 over the images."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes).astype(np.float64)
    weights = np.where(counts > 0, len(labels) / (num_classes * np.maximum(counts, 1)), 0.0)
    return torch.tensor(weights, dtype=torch.float32)
