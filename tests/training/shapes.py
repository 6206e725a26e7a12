"""Real class-folder datasets for training tests: coloured shapes on noisy backgrounds, written as JPEG and PNG
files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

# Each class differs in colour and shape, so a model trained from scratch in seconds can really learn it.
SHAPE_CLASSES = {
    "circles": ((220, 40, 40), "ellipse"),
    "squares": ((40, 180, 60), "rectangle"),
    "triangles": ((40, 70, 220), "triangle"),
}


def shape_image(kind: str, rng: np.random.Generator, size: int = 96) -> Image.Image:
    colour, shape = SHAPE_CLASSES[kind]
    background = rng.integers(140, 256)  # a grey of random lightness: the shape's colour is what tells classes apart
    pixels = np.clip(background + rng.normal(0, 12, (size, size, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    extent = int(rng.integers(size // 3, size * 3 // 4))
    x, y = (int(v) for v in rng.integers(0, size - extent, size=2))
    jitter = tuple(int(np.clip(c + rng.integers(-25, 26), 0, 255)) for c in colour)
    box = (x, y, x + extent, y + extent)
    if shape == "ellipse":
        draw.ellipse(box, fill=jitter)
    elif shape == "rectangle":
        draw.rectangle(box, fill=jitter)
    else:
        draw.polygon([(x + extent // 2, y), (x, y + extent), (x + extent, y + extent)], fill=jitter)
    return image


def write_shapes_dataset(root: Path, per_class: int = 30, seed: int = 0, classes=tuple(SHAPE_CLASSES)) -> Path:
    """root/<class>/NNN.jpg|png: JPEG and PNG mixed, as users' folders are."""
    rng = np.random.default_rng(seed)
    for kind in classes:
        folder = root / kind
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            suffix = ".png" if index % 3 == 0 else ".jpg"
            shape_image(kind, rng).save(folder / f"{kind}_{index:03d}{suffix}")
    return root
