"""Where the model looked: which parts of a photo its answer depends on, shown as a heat map.

Each part of the picture the model sees is hidden in turn (filled with the training set's mean colour, which is 0
after normalisation) and the drop in the class's probability is measured: occlusion sensitivity (Zeiler and
Fergus, 2014). It needs only forward passes, so it works the same on every backend (ONNX Runtime, int8, a GPU)
and every model (CNNs, vision transformers, CLIP zero-shot, the user's own bundles), for about 50 passes per
photo, run in batches and cancellable between them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import cv2
import numpy as np
from PIL import Image

from engine.errors import UserFacingError
from engine.events import CancelToken, EventSink, Progress, ignore_events

if TYPE_CHECKING:
    from engine.predict import Classifier

POSITIONS = 7  # hiding places per side: 7 x 7 = 49 passes
PATCH_FRACTION = 4  # a hidden square is a quarter of the input's side, so neighbouring places overlap by half
BATCH = 8
NOTHING_MATTERS = 0.02  # a largest drop below 2 % of the probability is noise, not a place that matters
HEAT_OPACITY = 0.6  # the colour's share where the heat is highest; cold parts show the photo as it is


@dataclass(frozen=True)
class Explanation:
    label: str
    class_index: int
    prob: float  # the class's probability on the whole picture
    lowest_prob: float  # its probability with the part that matters most hidden
    heat: np.ndarray  # HxW float32 in 0..1 over the model's input: the drop there, relative to the largest drop
    seen: np.ndarray  # HxWx3 uint8: the picture as the model saw it (resized and cropped to its input)

    @property
    def anything_matters(self) -> bool:
        return bool(self.heat.max() > 0)

    def overlay(self) -> np.ndarray:
        """The picture the model saw with the heat drawn over it in colour (HxWx3 uint8 RGB)."""
        colours = cv2.cvtColor(cv2.applyColorMap(np.uint8(np.round(self.heat * 255)), cv2.COLORMAP_TURBO),
                               cv2.COLOR_BGR2RGB)
        weight = (HEAT_OPACITY * self.heat)[..., None]
        return np.uint8(np.round(self.seen * (1 - weight) + colours * weight))

    def describe(self) -> str:
        name = f"“{self.label}”"
        if not self.anything_matters:
            return f"No one part of the picture decides {name} ({self.prob:.1%}): hiding any part changes little."
        return (f"Hiding the warmest part of what the model sees lowers {name} from {self.prob:.1%} "
                f"to {self.lowest_prob:.1%}; the cold parts hardly matter.")


def explain(
    classifier: Classifier,
    image: Image.Image,
    class_index: int | None = None,
    cancel: CancelToken | None = None,
    on_event: EventSink = ignore_events,
) -> Explanation:
    """Which parts of `image` the class `class_index` (default: the top class) depends on, for this classifier."""
    indexes = None if class_index is None else (class_index,)
    return explain_classes(classifier, image, indexes, cancel, on_event)[0]


def explain_classes(
    classifier: Classifier,
    image: Image.Image,
    class_indexes: Sequence[int] | None = None,
    cancel: CancelToken | None = None,
    on_event: EventSink = ignore_events,
) -> list[Explanation]:
    """`explain` for each of `class_indexes` (default: the top class), from the one set of passes they share."""
    preprocessor = classifier.preprocessor
    _, height, width = preprocessor.config.input_size
    cropped = preprocessor.crop(image)  # resized once: what the model is given is exactly what the user is shown
    picture = np.empty((1, 3, height, width), np.float32)
    preprocessor.normalise(cropped, picture[0])
    probs = classifier.probabilities(picture)[0]
    indexes = [int(np.argmax(probs))] if class_indexes is None else [int(i) for i in class_indexes]
    prob = probs[indexes]

    places = hiding_places(height, width)
    drops = np.empty((len(places), len(indexes)), np.float32)
    for start in range(0, len(places), BATCH):
        if cancel is not None:
            cancel.check()
        chunk = places[start:start + BATCH]
        hidden = np.repeat(picture, len(chunk), axis=0)
        for copy, (top, left, bottom, right) in zip(hidden, chunk):
            copy[:, top:bottom, left:right] = 0.0  # the mean colour, once normalised
        drops[start:start + len(chunk)] = prob - classifier.probabilities(hidden)[:, indexes]
        on_event(Progress("Hiding each part of the picture in turn", start + len(chunk), len(places), "passes"))
    seen = np.asarray(cropped)
    return [
        Explanation(classifier.loaded.labels[index], index, float(prob[k]), float(prob[k] - drops[:, k].max()),
                    heat_map(places, drops[:, k], height, width, float(prob[k])), seen)
        for k, index in enumerate(indexes)
    ]


def class_in_model(labels: tuple[str, ...], index: int, label: str) -> int:
    """`label`'s index in the model in use: the same model's `index`, or the class of that name in another."""
    if 0 <= index < len(labels) and labels[index] == label:
        return index
    if label in labels:
        return labels.index(label)
    raise UserFacingError(
        f"The model in use now has no class “{label}”.",
        "The photo was classified by another model: classify it again with this one to see where it looks.",
    )


def hiding_places(height: int, width: int) -> list[tuple[int, int, int, int]]:
    """The squares hidden in turn, as (top, left, bottom, right): POSITIONS per side, from edge to edge."""
    patch_h, patch_w = max(1, height // PATCH_FRACTION), max(1, width // PATCH_FRACTION)
    tops = np.linspace(0, height - patch_h, POSITIONS).round().astype(int)
    lefts = np.linspace(0, width - patch_w, POSITIONS).round().astype(int)
    return [(int(t), int(lf), int(t) + patch_h, int(lf) + patch_w) for t in tops for lf in lefts]


def heat_map(places: list[tuple[int, int, int, int]], drops: np.ndarray, height: int, width: int,
             prob: float) -> np.ndarray:
    """Each pixel's mean drop over the squares that hid it, smoothed and scaled so the largest is 1.

    Rises (hiding a part made the class likelier) count as no drop. All zeros when no drop reaches
    NOTHING_MATTERS of the probability: scaling noise up to full colour would point at parts that do not matter.
    """
    total = np.zeros((height, width), np.float32)
    hidden = np.zeros((height, width), np.float32)
    for (top, left, bottom, right), drop in zip(places, np.clip(drops, 0, None)):
        total[top:bottom, left:right] += drop
        hidden[top:bottom, left:right] += 1
    heat = total / np.maximum(hidden, 1)
    sigma = max(height, width) / (2 * (POSITIONS - 1))  # half a step: smooths the squares' edges away
    heat = cv2.GaussianBlur(heat, (0, 0), sigma)
    largest = float(heat.max())
    if float(drops.max()) < NOTHING_MATTERS * max(prob, 1e-6) or largest <= 0:
        return np.zeros((height, width), np.float32)
    return heat / largest
