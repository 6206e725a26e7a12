"""Training augmentations: every preset works on every image, every time."""
from __future__ import annotations

import math
import random

import pytest
import torch
from PIL import Image

from engine.decode import decode_image
from engine.preprocess import DataConfig, Preprocessor
from engine.training.data import AUGMENTATION_PRESETS, LabeledImageDataset, train_transform
from engine.training.dataset import LabeledImage


def seed_augmentations(seed: int) -> None:
    """timm's augmentations draw from Python's and torch's generators."""
    random.seed(seed)
    torch.manual_seed(seed)


@pytest.mark.parametrize("preset", sorted(AUGMENTATION_PRESETS))
def test_each_preset_transforms_thousands_of_images_without_failing(preset):
    """Random magnitudes reach every corner of each operation (the heavy preset once asked Pillow for 0-bit
    posterize about one image in 500)."""
    transform = train_transform(DataConfig((3, 64, 64), "bicubic"), preset)
    image = Image.new("RGB", (96, 80), (120, 30, 200))
    seed_augmentations(0)
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


def test_a_full_fine_tune_keeps_large_photos_in_memory_reduced_for_training_and_exact_for_evaluation(tmp_path):
    """A large PNG (as HEIC, WebP: no reduced-scale decoding) and a large JPEG are decoded once. Training keeps them
    as reduced JPEGs that still give the smallest crop twice the pixels, and later epochs see the same picture;
    evaluation keeps the very picture the classify path shows the model. Small images are not kept, nor anything
    without `keep_large` or once the memory budget is spent."""
    from skimage import data

    chelsea = Image.fromarray(data.chelsea())
    big_png, small_png, big_jpeg = tmp_path / "big.png", tmp_path / "small.png", tmp_path / "big.jpg"
    chelsea.resize((1600, 1200), Image.Resampling.BICUBIC).save(big_png)
    chelsea.resize((100, 80)).save(small_png)
    chelsea.resize((1600, 1200), Image.Resampling.BICUBIC).save(big_jpeg, quality=92)
    items = [LabeledImage(str(path), label) for label, path in enumerate((big_png, small_png, big_jpeg))]
    config = DataConfig((3, 64, 64), "bicubic")
    training = LabeledImageDataset(items, train_transform(config, "light"), keep_large=True)

    def read(dataset, index):
        seed_augmentations(index)
        return dataset[index][0]

    first_epoch = [read(training, index) for index in range(3)]

    assert list(training.kept) == [str(big_png), str(big_jpeg)]
    assert decode_image(training.kept[str(big_png)]).size == (267, 200)  # 1/6: shortest side >= 2 x 96
    assert decode_image(training.kept[str(big_jpeg)]).size == (400, 300)  # the JPEG's own 1/4 decoding
    assert training.kept_bytes == sum(map(len, training.kept.values())) < 200_000
    later_epoch = read(training, 0)
    assert (later_epoch - first_epoch[0]).abs().mean() < 0.02  # the same picture, through a JPEG at quality 95

    budget_spent = LabeledImageDataset(items, train_transform(config, "light"), keep_large=True)
    budget_spent.KEPT_BYTES = 0
    assert torch.equal(read(budget_spent, 0), first_epoch[0]) and not budget_spent.kept
    not_asked = LabeledImageDataset(items, train_transform(config, "light"))
    assert torch.equal(read(not_asked, 0), first_epoch[0]) and not not_asked.kept

    preprocessor = Preprocessor(config)
    evaluation = LabeledImageDataset(items, preprocessor, keep_large=True)
    classify_path = [preprocessor(decode_image(item.path, preprocessor.decode_size)) for item in items]
    for _epoch in range(2):
        assert all(torch.equal(evaluation[index][0], classify_path[index]) for index in range(3))
    assert list(evaluation.kept) == [str(big_png), str(big_jpeg)] and evaluation.kept_bytes == 2 * 64 * 64 * 3


@pytest.mark.parametrize("augmentation", ["light", "none"])
def test_a_batch_decoded_on_threads_is_the_batch_read_one_by_one(tmp_path, augmentation):
    """The loader asks for whole batches, whose photos decode on several threads: the same seed gives the same
    tensors as reading them one at a time, a photo drawn twice is kept once, and a photo damaged since the scan
    is replaced by the next one, as it is one at a time."""
    from skimage import data

    paths = []
    for index, photo in enumerate((data.chelsea(), data.coffee(), data.astronaut())):
        paths.append(tmp_path / f"IMG_{index}.png")
        Image.fromarray(photo).resize((900, 700)).save(paths[-1])
    damaged = tmp_path / "IMG_3.jpg"
    damaged.write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    items = [LabeledImage(str(path), label) for label, path in enumerate([*paths, damaged])]
    transform = train_transform(DataConfig((3, 64, 64), "bicubic"), augmentation)
    # No photo twice: one by one, a photo's second reading would come from memory, kept after its first.
    batch = [3, 1, 2]

    seed_augmentations(1)
    together = LabeledImageDataset(items, transform, keep_large=True)
    got = together.__getitems__(batch)
    seed_augmentations(1)
    alone = LabeledImageDataset(items, transform, keep_large=True)
    expected = [alone[index] for index in batch]

    assert [label for _, label in got] == [0, 1, 2]  # the damaged photo's place taken by the next one
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(got, expected))
    assert sorted(together.kept) == sorted(map(str, paths)) and together.kept_bytes == alone.kept_bytes

    drawn_twice = LabeledImageDataset(items, transform, keep_large=True)
    drawn_twice.__getitems__([1, 1])
    one_alone = LabeledImageDataset(items, transform, keep_large=True)
    one_alone[1]
    assert list(drawn_twice.kept) == [str(paths[1])] and drawn_twice.kept_bytes == one_alone.kept_bytes
