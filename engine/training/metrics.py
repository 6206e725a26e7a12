"""How good a trained model is: accuracy, top-5, loss, per-class precision/recall/F1, confusion matrix and mistakes.

Pure numpy on predicted probabilities, so the wizard, the CLI and the report share one set of numbers.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

from engine.errors import UserFacingError

MAX_MISCLASSIFIED = 100  # the report's gallery shows a few dozen; keeping more only bloats metrics.json
TOP_K = 5
LOSS_CLIP = 1e-12  # a probability of exactly 0 would make the loss infinite


@dataclass(frozen=True)
class ClassMetrics:
    """One class's numbers; precision (recall) is 0.0 when nothing was predicted as (nothing belongs to) the class."""

    name: str
    precision: float
    recall: float
    f1: float
    support: int  # images whose true class this is


@dataclass(frozen=True)
class Misclassified:
    """One wrongly classified image and what the model took it for."""

    path: str  # "" when the caller passed no paths
    true_label: str
    predicted_label: str
    confidence: float  # the probability of the predicted class


@dataclass(frozen=True)
class Evaluation:
    """Everything measured on one set of images (validation or test)."""

    labels: tuple[str, ...]
    num_images: int
    accuracy: float
    top5: float | None  # None with fewer than 5 classes, where every image is trivially in the top 5
    loss: float  # mean cross-entropy (natural log) of the true class
    confusion: tuple[tuple[int, ...], ...]  # confusion[true][predicted]
    per_class: tuple[ClassMetrics, ...]
    misclassified: tuple[Misclassified, ...]  # most confident mistakes first, at most MAX_MISCLASSIFIED
    macro_f1: float

    @property
    def num_mistakes(self) -> int:
        """All wrongly classified images, also those beyond the kept `misclassified` list."""
        return self.num_images - sum(row[i] for i, row in enumerate(self.confusion))

    def seen_only(self) -> Evaluation:
        """This evaluation's labels, confusion matrix and per-class figures cut down to seen_classes: what a table
        or a matrix shows (the other figures, which count every class, stay)."""
        seen = seen_classes(self.confusion)
        if len(seen) == len(self.labels):
            return self
        return replace(self, labels=tuple(self.labels[i] for i in seen),
                       confusion=tuple(tuple(self.confusion[r][c] for c in seen) for r in seen),
                       per_class=tuple(self.per_class[i] for i in seen))

    def to_dict(self) -> dict:
        """Plain JSON values only."""
        return {
            "labels": list(self.labels),
            "num_images": self.num_images,
            "accuracy": self.accuracy,
            "top5": self.top5,
            "loss": self.loss,
            "macro_f1": self.macro_f1,
            "confusion": [list(row) for row in self.confusion],
            "per_class": [asdict(c) for c in self.per_class],
            "misclassified": [asdict(m) for m in self.misclassified],
        }

    @classmethod
    def from_dict(cls, raw: dict) -> Evaluation:
        top5 = raw.get("top5")
        return cls(
            labels=tuple(str(label) for label in raw["labels"]),
            num_images=int(raw["num_images"]),
            accuracy=float(raw["accuracy"]),
            top5=None if top5 is None else float(top5),
            loss=float(raw["loss"]),
            confusion=tuple(tuple(int(n) for n in row) for row in raw["confusion"]),
            per_class=tuple(
                ClassMetrics(str(c["name"]), float(c["precision"]), float(c["recall"]), float(c["f1"]),
                             int(c["support"]))
                for c in raw["per_class"]
            ),
            misclassified=tuple(
                Misclassified(str(m["path"]), str(m["true_label"]), str(m["predicted_label"]), float(m["confidence"]))
                for m in raw.get("misclassified", ())
            ),
            macro_f1=float(raw["macro_f1"]),
        )

    def summary_line(self) -> str:
        """One line for the CLI and status bars, e.g. "accuracy: 0.953 · loss: 0.142 · top-5: 1.000"."""
        parts = [f"accuracy: {self.accuracy:.3f}", f"loss: {self.loss:.3f}"]
        if self.top5 is not None:
            parts.append(f"top-5: {self.top5:.3f}")
        return " · ".join(parts)


def confusion_matrix(targets: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """int64 (num_classes, num_classes) counts, rows the true class, columns the predicted one."""
    targets = np.asarray(targets, dtype=np.int64).reshape(-1)
    predictions = np.asarray(predictions, dtype=np.int64).reshape(-1)
    if targets.shape != predictions.shape:
        raise ValueError(f"targets ({targets.size}) and predictions ({predictions.size}) differ in length")
    for name, values in (("targets", targets), ("predictions", predictions)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"{name} must lie in 0..{num_classes - 1}")
    flat = np.bincount(targets * num_classes + predictions, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(np.int64)


def seen_classes(confusion: Sequence[Sequence[int]] | np.ndarray) -> tuple[int, ...]:
    """The classes that occur in the targets or the predictions: the only ones an evaluation says anything about
    (a 1000-class model checked on two folders of photos has a few, not a million cells of zeros)."""
    counts = np.asarray(confusion, dtype=np.int64).reshape(len(confusion), -1)
    return tuple(int(i) for i in np.flatnonzero(counts.sum(axis=1) + counts.sum(axis=0) > 0))


def evaluate_predictions(
    labels: Sequence[str], targets: np.ndarray, probabilities: np.ndarray, paths: Sequence[str] = ()
) -> Evaluation:
    """Measure predicted class probabilities (N, C) against true class indices (N,).

    `paths` (empty or one per image) name the images for the misclassified list. Raises ValueError for
    inconsistent shapes and UserFacingError when there are no images at all.
    """
    labels = tuple(str(label) for label in labels)
    targets, probabilities = _validated(labels, targets, probabilities, paths)
    n, c = probabilities.shape

    predictions = probabilities.argmax(axis=1)
    correct = predictions == targets
    true_prob = probabilities[np.arange(n), targets]
    loss = float(-np.log(np.clip(true_prob, LOSS_CLIP, None)).mean())
    top5 = None
    if c >= TOP_K:
        # A stable sort breaks ties by class index, exactly as argmax does, so top-5 always includes top-1.
        ranked = np.argsort(-probabilities, axis=1, kind="stable")[:, :TOP_K]
        top5 = float((ranked == targets[:, None]).any(axis=1).mean())

    confusion = confusion_matrix(targets, predictions, c)
    per_class = _per_class(labels, confusion)
    # Averaged over the classes that occur in the targets or the predictions (scikit-learn's default): a class
    # absent from this set says nothing about the model and would drag the average down.
    macro_f1 = float(np.mean([per_class[i].f1 for i in seen_classes(confusion)]))

    wrong = np.flatnonzero(~correct)
    confidence = probabilities[wrong, predictions[wrong]]
    order = wrong[np.argsort(-confidence, kind="stable")][:MAX_MISCLASSIFIED]
    misclassified = tuple(
        Misclassified(
            path=str(paths[i]) if len(paths) else "",
            true_label=labels[targets[i]],
            predicted_label=labels[predictions[i]],
            confidence=float(probabilities[i, predictions[i]]),
        )
        for i in order
    )
    return Evaluation(
        labels=labels,
        num_images=int(n),
        accuracy=float(correct.mean()),
        top5=top5,
        loss=loss,
        confusion=tuple(tuple(int(v) for v in row) for row in confusion),
        per_class=per_class,
        misclassified=misclassified,
        macro_f1=macro_f1,
    )


def _validated(
    labels: tuple[str, ...], targets: np.ndarray, probabilities: np.ndarray, paths: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    targets = np.asarray(targets)
    probabilities = np.asarray(probabilities)
    if not labels:
        raise ValueError("labels is empty: an evaluation needs at least one class")
    if probabilities.ndim != 2:
        raise ValueError(f"probabilities must be 2-D (images, classes), got shape {probabilities.shape}")
    if probabilities.shape[1] != len(labels):
        raise ValueError(f"probabilities have {probabilities.shape[1]} columns but there are {len(labels)} labels")
    if targets.ndim != 1:
        raise ValueError(f"targets must be 1-D (one class index per image), got shape {targets.shape}")
    if targets.shape[0] != probabilities.shape[0]:
        raise ValueError(f"{targets.shape[0]} targets but {probabilities.shape[0]} rows of probabilities")
    if len(paths) not in (0, targets.shape[0]):
        raise ValueError(f"{len(paths)} paths for {targets.shape[0]} images: pass one path per image, or none")
    if targets.shape[0] == 0:
        raise UserFacingError(
            "There are no images to evaluate.",
            "Add images to the data folder (at least a few per class) so some can be held out for evaluation.",
        )
    if targets.dtype.kind not in "iu":
        raise ValueError(f"targets must be integer class indices, got {targets.dtype}")
    if targets.min() < 0 or targets.max() >= len(labels):
        raise ValueError(f"targets must lie in 0..{len(labels) - 1}, got {targets.min()}..{targets.max()}")
    probabilities = probabilities.astype(np.float64)
    if not np.isfinite(probabilities).all():
        raise ValueError("probabilities contain NaN or infinite values")
    if not np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-2):
        raise ValueError("each row of probabilities must sum to 1 (apply softmax to logits first)")
    return targets.astype(np.int64), probabilities


def _per_class(labels: tuple[str, ...], confusion: np.ndarray) -> tuple[ClassMetrics, ...]:
    hits = np.diag(confusion)
    predicted = confusion.sum(axis=0)
    support = confusion.sum(axis=1)
    metrics = []
    for i, name in enumerate(labels):
        # Plain division guarded by counts instead of numpy's 0/0, which would warn and give NaN.
        precision = float(hits[i] / predicted[i]) if predicted[i] else 0.0
        recall = float(hits[i] / support[i]) if support[i] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        metrics.append(ClassMetrics(name, precision, recall, f1, int(support[i])))
    return tuple(metrics)
