"""Our preprocessing gives the same model input as timm's own eval transform, for models with different configs."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from timm.data import create_transform, resolve_data_config

from engine.preprocess import BANDS_TRIED_KEPT, DataConfig, Preprocessor

# Different input sizes, crop percentages, interpolations, means/stds and crop modes.
ARCHS = [
    "resnet50.a1_in1k",  # 224, crop 0.95, bicubic, ImageNet mean/std
    "vit_base_patch16_224.augreg2_in21k_ft_in1k",  # crop 0.9, mean/std 0.5
    "inception_v3.tv_in1k",  # 299, crop 0.875
    "efficientnet_b3.ra2_in1k",  # 288
    "vgg16.tv_in1k",  # bilinear
    "swinv2_tiny_window8_256.ms_in1k",  # 256
    "tf_efficientnet_lite0.in1k",  # the built-in model
]


def _timm_transform(config: dict):
    return create_transform(**config)


@pytest.fixture(scope="module")
def images(photo_arrays) -> list[Image.Image]:
    cat = Image.fromarray(photo_arrays["chelsea"])
    return [
        cat,  # landscape
        Image.fromarray(photo_arrays["astronaut"]),  # square
        Image.fromarray(photo_arrays["rocket"]).rotate(90, expand=True),  # portrait
        cat.resize((37, 120)),  # tiny and tall: upscaled
        cat.resize((1999, 401)),  # very wide
    ]


@pytest.mark.parametrize("arch", ARCHS)
def test_matches_timm_eval_transform(arch, images):
    config = resolve_data_config(pretrained_cfg=timm.models.get_pretrained_cfg(arch).to_dict())
    expected_transform = _timm_transform(config)
    ours = Preprocessor(DataConfig.from_dict(config))
    for image in images:
        expected = expected_transform(image)
        actual = ours(image)
        assert actual.shape == expected.shape == (3, *config["input_size"][1:])
        assert torch.allclose(actual, expected, atol=1e-5), f"{arch} {image.size}"


@pytest.mark.parametrize("mode", ["squash", "border"])
def test_other_crop_modes_match_timm(mode, images):
    config = {
        "input_size": (3, 224, 160),
        "interpolation": "bilinear",
        "mean": (0.5, 0.4, 0.3),
        "std": (0.2, 0.25, 0.3),
        "crop_pct": 0.9,
        "crop_mode": mode,
    }
    expected_transform = _timm_transform(config)
    ours = Preprocessor(DataConfig.from_dict(config))
    for image in images:
        assert torch.allclose(ours(image), expected_transform(image), atol=1e-5), f"{mode} {image.size}"


def test_non_square_center_crop_matches_timm(images):
    config = {"input_size": (3, 192, 256), "interpolation": "bicubic", "crop_pct": 0.95, "crop_mode": "center",
              "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
    ours = Preprocessor(DataConfig.from_dict(config))
    expected_transform = _timm_transform(config)
    for image in images:
        assert torch.allclose(ours(image), expected_transform(image), atol=1e-5), image.size


def test_batch_is_the_images_stacked(images):
    pre = Preprocessor(DataConfig((3, 224, 224)))
    batch = pre.batch(images[:3])
    assert batch.shape == (3, 3, 224, 224) and batch.dtype == torch.float32
    assert torch.equal(batch[2], pre(images[2]))


def test_data_config_round_trips_through_json_values():
    config = DataConfig((3, 288, 288), "bilinear", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 1.0, "squash")
    assert DataConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize("mode", ["center", "squash", "border"])
@pytest.mark.parametrize(("input_size", "interpolation"), [((3, 224, 224), "bicubic"), ((3, 192, 256), "bilinear")])
def test_two_threads_resize_to_the_very_same_pixels(mode, input_size, interpolation, images, photo_arrays):
    """The live view's two-thread resize (row bands, then column bands) gives what one Pillow call gives, bit for
    bit, on camera-sized frames with odd sizes too, and on pictures too small to be worth splitting."""
    config = DataConfig(input_size, interpolation, crop_pct=0.875, crop_mode=mode)
    ours = Preprocessor(config)
    frames = [Image.fromarray(photo_arrays["coffee"]).resize(size) for size in ((640, 480), (1280, 720), (641, 479))]
    with ThreadPoolExecutor(2) as pool:
        for image in [*frames, *images]:
            assert np.array_equal(ours.fill_array(np.asarray(image), pool=pool), ours.fill_array(np.asarray(image))), (
                mode, input_size, image.size
            )
    if mode != "border":  # border mode fits the whole picture and pads: there is no crop to split
        landscape = [tried for (image_size, _, _), tried in ours._bands_tried.items() if image_size == (640, 480)]
        assert landscape == [True], "a landscape camera frame is resized in bands, not only one Pillow call"


def test_dragging_the_live_crop_box_through_many_sizes_keeps_few_in_memory(photo_arrays):
    ours = Preprocessor(DataConfig((3, 64, 64), crop_pct=1.0))
    photo = photo_arrays["coffee"]
    with ThreadPoolExecutor(2) as pool:
        for width in range(100, 100 + BANDS_TRIED_KEPT + 10):  # a new crop size at every frame
            crop = np.ascontiguousarray(photo[:90, :width])
            assert np.array_equal(ours.fill_array(crop, pool=pool), ours.fill_array(crop)), width
    assert 0 < len(ours._bands_tried) <= BANDS_TRIED_KEPT
