"""Evaluates a saved model on a folder of labelled images, through the same loading and preprocessing as classify."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from engine.errors import UserFacingError
from engine.events import CancelToken, EventSink, Progress, ignore_events
from engine.models import Bundle, ModelSpec, load_model
from engine.preprocess import Preprocessor
from engine.training.data import LabeledImageDataset, make_loader, warn_unreadable
from engine.training.dataset import scan_class_folders
from engine.training.metrics import Evaluation, evaluate_predictions


def evaluate_bundle(
    bundle: str | Path,
    data_dir: str | Path,
    device: str = "auto",
    batch_size: int = 32,
    on_event: EventSink = ignore_events,
    cancel: CancelToken | None = None,
) -> tuple[Evaluation, str]:
    """The model's metrics on `data_dir` and which images were used ("all", "test" or "val" of a split folder)."""
    cancel = cancel or CancelToken()
    loaded = load_model(ModelSpec(source=Bundle(str(bundle))), device=device, on_event=on_event, cancel=cancel)
    scan = scan_class_folders(data_dir, on_event, cancel, for_training=False)  # one photo of one class will do
    part, items = ("test", scan.test) if scan.test else ("val", scan.val) if scan.val else ("all", scan.train)
    unknown = [name for name in scan.classes if name not in loaded.labels]
    if unknown:
        raise UserFacingError(
            f"The model does not know the classes {', '.join(unknown)} found in {data_dir}.",
            f"Its classes are: {', '.join(loaded.labels)}. Rename the folders to match, or choose another model.",
        )
    to_model = [loaded.labels.index(name) for name in scan.classes]
    targets = np.asarray([to_model[item.label] for item in items], dtype=np.int64)
    loader = make_loader(
        LabeledImageDataset(items, Preprocessor(loaded.data_config)), batch_size, workers=0, shuffle=False, seed=0
    )
    probabilities, done = [], 0
    with torch.inference_mode():
        for images, _ in loader:
            cancel.check()
            logits = loaded.model(images.to(loaded.device.device, loaded.device.dtype))
            probabilities.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
            done += len(images)
            on_event(Progress("Evaluating", done, len(items)))
    warn_unreadable([loader.dataset], on_event)
    evaluation = evaluate_predictions(loaded.labels, targets, np.concatenate(probabilities), [i.path for i in items])
    return evaluation, part
