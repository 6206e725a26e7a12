"""Training augmentations: every preset works on every image, every time."""
from __future__ import annotations

import math
import random

import pytest
import torch
from PIL import Image

from engine.decode import decode_image
from engine.preprocess import DataConfig
from engine.training.data import AUGMENTATION_PRESETS, LabeledImageDataset, train_transform
from engine.training.dataset import LabeledImage


@pytest.mark.parametrize("preset", sorted(AUGMENTATION_PRESETS))
def test_each_preset_transforms_thousands_of_images_without_failing(preset):
    """Random magnitudes reach every corner of each operation (the heavy preset once asked Pillow for 0-bit
    posterize about one image in 500)."""
    transform = train_transform(DataConfig((3, 64, 64), "bicubic"), preset)
    image = Image.new("RGB", (96, 80), (120, 30, 200))
    random.seed(0)
    torch.manual_seed(0)
    for _ in range(3000):
        assert transform(image).shape == (3, 64, 64)


@pytest.mark.parametrize("preset", sorted(AUGMENTATION_PRESETS))
def test_phone_photos_are_decoded_smaller_yet_every_crop_still_shrinks_twofold(tmp_path, preset):
    """A 12-megapixel JPEG is decoded at a reduced scale for training, never so small that timm's smallest random
    crop would have fewer than twice the pixels it is resized to, and the dataset yields the model's input."""
    photo = tmp_path / "IMG_0001.jpg"
    Image.radial_gradient("L").resize((4032, 3024)).convert("RGB").save(photo, quality=90)
    transform = train_transform(DataConfig((3, 224, 224), "bicubic"), preset)

    decoded = decode_image(photo, transform.decode_size)

    assert decoded.width < 4032 or preset == "heavy"  # heavy crops down to 8 % of the area: it needs every pixel
    min_scale = AUGMENTATION_PRESETS[preset]["scale"][0]
    assert math.sqrt(0.75 * min_scale) * min(decoded.size) >= 2 * 224
    image, label = LabeledImageDataset([LabeledImage(str(photo), 1)], transform)[0]
    assert image.shape == (3, 224, 224) and label == 1
