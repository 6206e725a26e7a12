"""Test helpers for live recognition: real video files written with OpenCV, and a real model that knows colours.

Colours are given as RGB (what people mean by "red"); the helpers convert to OpenCV's BGR themselves.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
import torch

COLORS: dict[str, tuple[int, int, int]] = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}
COLOR_LABELS: tuple[str, ...] = tuple(COLORS)
COLOR_ARCH = "test_efficientnet"  # timm's tiny test architecture


class CodecUnavailable(RuntimeError):
    """This OpenCV build cannot write the requested codec/container; tests should skip that case."""


def write_video(path: str | Path, frames_rgb: Iterable[np.ndarray], fps: float = 30, fourcc: str = "MJPG") -> Path:
    """Write RGB uint8 frames (all the same size) as a real video file; the container follows the suffix."""
    path = Path(path)
    writer: cv2.VideoWriter | None = None
    try:
        for rgb in frames_rgb:
            if writer is None:
                height, width = rgb.shape[:2]
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), float(fps), (width, height))
                if not writer.isOpened():
                    raise CodecUnavailable(f"OpenCV cannot write {fourcc} into {path.suffix} here")
            writer.write(np.ascontiguousarray(rgb[..., ::-1]))
    finally:
        if writer is not None:
            writer.release()
    if writer is None:
        raise ValueError("write_video needs at least one frame")
    return path


def solid_frame(rgb: tuple[int, int, int], size: tuple[int, int] = (160, 120)) -> np.ndarray:
    """An RGB uint8 frame of one colour; size is (width, height) like OpenCV's."""
    width, height = size
    return np.full((height, width, 3), rgb, dtype=np.uint8)


def write_color_video(
    path: str | Path,
    colors: list[tuple[int, int, int]],
    frames_per_color: int,
    fps: float = 30,
    size: tuple[int, int] = (160, 120),
    fourcc: str = "MJPG",
) -> Path:
    """A video of solid RGB colours, `frames_per_color` frames each, in order (frame i shows colors[i // n])."""
    frames = (solid_frame(color, size) for color in colors for _ in range(frames_per_color))
    return write_video(path, frames, fps, fourcc)


def color_classifier(folder: str | Path) -> Path:
    """A bundle of timm's tiny test_efficientnet whose head is fitted to tell red, green and blue frames apart.

    The backbone keeps its seeded random weights; only the linear head is solved (ridge least squares on
    pooled features of many shades of each colour), which takes well under a second.
    """
    import timm
    from timm.data import resolve_data_config

    from engine.bundle import BundleInfo, save_bundle
    from engine.preprocess import DataConfig, Preprocessor

    torch.manual_seed(0)
    model = timm.create_model(COLOR_ARCH, pretrained=False, num_classes=len(COLOR_LABELS)).eval()
    config = DataConfig.from_dict(resolve_data_config({}, model=model))
    preprocessor = Preprocessor(config)
    _, height, width = config.input_size

    shades, targets = _color_shades(per_class=24)
    # Solid colours stay solid through resize and crop, so a small image of each shade is the model's exact input.
    batch = np.stack([preprocessor.fill_array(solid_frame(rgb, (width, height)), None) for rgb in shades])
    with torch.inference_mode():
        features = model.forward_head(model.forward_features(torch.from_numpy(batch)), pre_logits=True).double()
    inputs = torch.cat([features, torch.ones(len(features), 1, dtype=torch.float64)], dim=1)
    wanted = torch.full((len(shades), len(COLOR_LABELS)), -8.0, dtype=torch.float64)
    wanted[torch.arange(len(shades)), torch.tensor(targets)] = 8.0
    ridge = 1e-3 * torch.eye(inputs.shape[1], dtype=torch.float64)
    solution = torch.linalg.solve(inputs.T @ inputs + ridge, inputs.T @ wanted)  # (features + 1, classes)
    with torch.no_grad():
        model.classifier.weight.copy_(solution[:-1].T.float())
        model.classifier.bias.copy_(solution[-1].float())
    info = BundleInfo(COLOR_ARCH, COLOR_LABELS, config, {"made_by": "tests: colour classifier"})
    return save_bundle(Path(folder), model.state_dict(), info)


def _color_shades(per_class: int) -> tuple[list[tuple[int, int, int]], list[int]]:
    # Bright, dark and slightly impure shades, so video compression's small colour shifts change nothing.
    rng = np.random.default_rng(0)
    shades, targets = [], []
    for label_index, pure in enumerate(COLORS.values()):
        shades.append(pure)
        targets.append(label_index)
        for _ in range(per_class - 1):
            main = int(rng.integers(140, 256))
            others = rng.integers(0, 70, size=3)
            shades.append(tuple(main if channel == 255 else int(others[i]) for i, channel in enumerate(pure)))
            targets.append(label_index)
    return shades, targets
