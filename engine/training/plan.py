"""What a training run is asked to do (TrainPlan) and what it reports while it runs (StepMetrics, EpochMetrics).

Every wizard setting and every `train` CLI flag is a field here, with the default a beginner gets by pressing Next.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from engine.errors import UserFacingError

METHODS = {
    "quick": "Quick: the pretrained backbone stays frozen; its features are computed once and a new head learns "
    "on them. Seconds on a CPU for a few hundred images.",
    "full": "Full fine-tune: every layer learns, the new head at a higher learning rate. Slower, usually more "
    "accurate, and the only way to learn from scratch.",
}
# Augmentation presets, built on timm's training transform (see engine/training/data.py).
AUGMENTATIONS = ("none", "light", "standard", "heavy")
# "pretrained" = the architecture's published weights, "builtin" = the offline built-in model's weights,
# "scratch" = random weights; anything else is a path to a weights file or a model bundle.
INIT_CHOICES = ("pretrained", "builtin", "scratch")
MIN_IMAGES_PER_CLASS = 5  # fewer than this and a validation split cannot hold one image per class
# Folder names that say nothing about what a model tells apart: the name comes from a folder above them.
_GENERIC_FOLDER_NAMES = {"data", "dataset", "datasets", "images", "imgs", "img", "pictures", "photos", "train",
                         "training", "classes", "input"}


def default_model_name(data_dir: str) -> str:
    """The name a model trained on `data_dir` gets unless the user names it: the folder's name, or for
    `parts/data` (or `parts/dataset/images`) the name of the folder that says what the images are; never the
    home folder's (the user's own name) or a folder further up."""
    path = Path(data_dir)
    for folder in (path, *path.parents[:2]):
        if folder == Path.home() or folder == folder.parent:
            break
        if folder.name.lower() not in _GENERIC_FOLDER_NAMES:
            return folder.name
    return path.name or "model"


@dataclass(frozen=True)
class TrainPlan:
    data_dir: str
    arch: str = "tf_efficientnet_lite0.in1k"  # the built-in model: fine-tunes offline
    init: str = "builtin"
    method: str = "quick"
    epochs: int = 0  # 0 = the method's default (quick 30, full 10)
    batch_size: int = 32
    lr: float = 0.0  # 0 = the default: quick 1e-3 (the head); full 1e-4, or 1e-3 from scratch (head × multiplier)
    head_lr_multiplier: float = 10.0
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0  # linear warm-up, then cosine decay to zero
    label_smoothing: float = 0.1
    augmentation: str = "light"
    image_size: int = 0  # 0 = the model's own input size
    eval_every: int = 1
    early_stopping_patience: int = 5  # evaluations without improvement before stopping; 0 = never stop early
    grad_accumulation: int = 1
    mixed_precision: bool = True  # used on CUDA only
    class_weights: bool = False  # weight the loss by inverse class frequency (for lopsided folders)
    balanced_sampling: bool = False  # or draw each class equally often
    progressive_unfreeze: bool = False  # full method: head first, then the later stages, then everything
    seed: int = 0
    workers: int = 0  # data loader worker processes; 0 = load in the training thread
    val_fraction: float = 0.2
    device: str = "auto"
    export_onnx: bool = False  # also write model.onnx into the bundle folder, checked against PyTorch
    output: str = ""  # bundle to write; "" = a new folder under the user's models folder
    name: str = ""  # the model's display name; "" = default_model_name(data_dir)

    @property
    def effective_epochs(self) -> int:
        return self.epochs or (30 if self.method == "quick" else 10)

    @property
    def effective_lr(self) -> float:
        if self.lr:
            return self.lr
        return 1e-3 if self.method == "quick" or self.init == "scratch" else 1e-4

    def validated(self) -> TrainPlan:
        """Self, or a UserFacingError naming the setting that is out of range."""
        checks = (
            (self.method in METHODS, f"Unknown method '{self.method}'.", f"Choose one of: {', '.join(METHODS)}."),
            (
                self.augmentation in AUGMENTATIONS,
                f"Unknown augmentation preset '{self.augmentation}'.",
                f"Choose one of: {', '.join(AUGMENTATIONS)}.",
            ),
            (self.epochs >= 0, "The number of epochs cannot be negative.", "Use 0 for the default, or more."),
            (self.batch_size >= 1, "The batch size must be at least 1.", "Try 16 or 32."),
            (self.lr >= 0, "The learning rate cannot be negative.", "Use 0 for the default, or e.g. 1e-4."),
            (0 < self.val_fraction < 1, "The validation share must be between 0 and 1.", "20 % (0.2) is usual."),
            (self.grad_accumulation >= 1, "Gradient accumulation must be at least 1.", "Use 1 to turn it off."),
            (self.eval_every >= 1, "Evaluate every N epochs needs N of at least 1.", "Use 1 to evaluate every epoch."),
            (self.workers >= 0, "The number of data loader workers cannot be negative.", "Use 0 to load in-thread."),
            (self.image_size == 0 or self.image_size >= 32, "The image size is too small.", "Use 0 or at least 32."),
            (0 <= self.label_smoothing < 1, "Label smoothing must be between 0 and 1.", "0.1 is usual."),
        )
        for ok, message, hint in checks:
            if not ok:
                raise UserFacingError(message, hint)
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> TrainPlan:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


@dataclass(frozen=True)
class StepMetrics:
    """One optimiser step (or one batch of features for the quick method)."""

    epoch: int  # 1-based
    epochs: int
    step: int  # 1-based within the epoch
    steps: int
    loss: float
    lr: float
    images_per_second: float
    eta_seconds: float  # for the whole run


@dataclass(frozen=True)
class EpochMetrics:
    """One evaluated epoch: what the wizard's curves and the report's history are drawn from."""

    epoch: int
    epochs: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    val_top5: float | None  # only with 5 classes or more
    per_class_accuracy: tuple[float, ...]  # validation recall per class, in label order
    seconds: float
    best_epoch: int  # the best epoch so far (validation accuracy, ties by loss)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> EpochMetrics:
        raw = dict(raw)
        raw["per_class_accuracy"] = tuple(raw.get("per_class_accuracy", ()))
        return cls(**raw)
