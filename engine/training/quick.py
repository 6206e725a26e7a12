"""The quick method: a frozen backbone's features, computed once and cached, and a new linear head trained on them.

Teachable Machine and Lobe work this way: an epoch over a few hundred cached feature vectors takes milliseconds.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from engine.events import CancelToken, EventSink, Progress
from engine.files import atomic_path
from engine.preprocess import DataConfig, Preprocessor
from engine.training.base_model import heads, replace_heads
from engine.training.data import LabeledImageDataset, balanced_sample_weights, make_loader
from engine.training.dataset import LabeledImage
from engine.training.plan import TrainPlan
from engine.weights import weights_digest

StepCallback = Callable[[int, float, int], None]  # (step, loss, images in the step)


class QuickLearner:
    def __init__(
        self,
        model: nn.Module,
        plan: TrainPlan,
        config: DataConfig,
        splits: dict[str, tuple[LabeledImage, ...]],
        num_classes: int,
        loss_weights: torch.Tensor | None,
        device: torch.device,
    ) -> None:
        self.model, self.plan, self.config, self.splits, self.device = model, plan, config, splits, device
        self.head = nn.Linear(heads(model)[0].in_features, num_classes)
        self.head.load_state_dict(heads(model)[0].state_dict())  # the seeded fresh head from base_model
        self.head.to(device)
        self.optimizer = torch.optim.AdamW(self.head.parameters(), lr=plan.effective_lr, weight_decay=plan.weight_decay)
        self.base_lrs = [plan.effective_lr]
        self.loss = nn.CrossEntropyLoss(weight=loss_weights, label_smoothing=plan.label_smoothing).to(device)
        self.features: dict[str, torch.Tensor] = {}
        self.labels: dict[str, torch.Tensor] = {}
        self.sample_weights: torch.Tensor | None = None
        self.feature_images: LabeledImageDataset | None = None  # the images the features came from, when read

    @property
    def steps_per_epoch(self) -> int:
        return max(1, -(-len(self.labels["train"]) // self.plan.batch_size))

    def prepare(self, cache: Path, on_event: EventSink, cancel: CancelToken) -> None:
        """Features for every split, from the cache when it was made for the same images and backbone."""
        key = self._cache_key()
        cached = _read_cache(cache, key)
        if cached is None:
            cached = self._extract_all(on_event, cancel)
            with atomic_path(cache) as tmp:
                save_file(cached, str(tmp), metadata={"key": key})
        # Standardised features let one learning rate suit every backbone, trained or random; the scaling is
        # folded back into the head's weights in final_model(), so the saved model takes raw images as usual.
        train = cached["train.features"]
        # The floor keeps a feature that hardly varies on the training images from exploding on new ones.
        std = train.std(0, unbiased=False)
        self.mean, self.std = train.mean(0), std.clamp_min(float(std.mean()) * 0.1 + 1e-6)
        for part in ("train", "val", "test"):
            self.features[part] = ((cached[f"{part}.features"] - self.mean) / self.std).to(self.device)
            self.labels[part] = cached[f"{part}.labels"].to(self.device)
        if self.plan.balanced_sampling:
            labels = self.labels["train"].tolist()
            self.sample_weights = torch.tensor(balanced_sample_weights(labels, self.head.out_features))

    def datasets(self) -> list[LabeledImageDataset]:
        """The images read for the features: none when they came from the cache."""
        return [self.feature_images] if self.feature_images is not None else []

    def train_epoch(self, epoch: int, lr_factor: Callable[[int], float], on_step: StepCallback, cancel: CancelToken):
        self.head.train()
        generator = torch.Generator().manual_seed(self.plan.seed * 1000 + epoch)
        count = len(self.labels["train"])
        if self.sample_weights is not None:
            order = torch.multinomial(self.sample_weights.cpu(), count, replacement=True, generator=generator)
        else:
            order = torch.randperm(count, generator=generator)
        total_loss, correct = 0.0, 0
        for step, start in enumerate(range(0, count, self.plan.batch_size), start=1):
            cancel.check()
            index = order[start:start + self.plan.batch_size].to(self.device)
            for group, base in zip(self.optimizer.param_groups, self.base_lrs):
                group["lr"] = base * lr_factor(step)
            logits = self.head(self.features["train"][index])
            loss = self.loss(logits, self.labels["train"][index])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total_loss += loss.item() * len(index)
            correct += int((logits.argmax(1) == self.labels["train"][index]).sum())
            on_step(step, loss.item(), len(index))
        return total_loss / count, correct / count

    @torch.no_grad()
    def predict(self, part: str, cancel: CancelToken) -> np.ndarray:
        self.head.eval()
        if len(self.labels[part]) == 0:
            return np.zeros((0, self.head.out_features), dtype=np.float32)
        return torch.softmax(self.head(self.features[part]).float(), dim=1).cpu().numpy()

    def state(self) -> dict:
        return {"head": self.head.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state(self, state: dict) -> None:
        self.head.load_state_dict(state["head"])
        self.optimizer.load_state_dict(state["optimizer"])

    def snapshot(self) -> dict[str, torch.Tensor]:
        """What the best epoch keeps: only the head, since the backbone never changes."""
        return {k: v.detach().cpu().clone() for k, v in self.head.state_dict().items()}

    def restore(self, snapshot: dict[str, torch.Tensor]) -> None:
        self.head.load_state_dict(snapshot)

    def final_model(self) -> nn.Module:
        """The whole classifier: the backbone with the trained head, standardisation folded in, in each head slot."""
        weight, bias = self.head.weight.detach().cpu(), self.head.bias.detach().cpu()
        folded = nn.Linear(self.head.in_features, self.head.out_features)
        with torch.no_grad():
            folded.weight.copy_(weight / self.std)
            folded.bias.copy_(bias - (weight * (self.mean / self.std)).sum(1))
        replace_heads(self.model, lambda old: _copy_of(folded))
        return self.model.to("cpu").eval()

    def _cache_key(self) -> str:
        description = {
            "weights": weights_digest(self.model),
            "input": self.config.to_dict(),
            "flip": self.plan.augmentation != "none",
            "splits": {part: [[i.path, i.label] for i in items] for part, items in self.splits.items()},
        }
        return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()

    @torch.no_grad()
    def _extract_all(self, on_event: EventSink, cancel: CancelToken) -> dict[str, torch.Tensor]:
        # With augmentation on, each training image also counts mirrored: a second view at no labelling cost.
        views = 2 if self.plan.augmentation != "none" else 1
        total = len(self.splits["train"]) * views + len(self.splits["val"]) + len(self.splits["test"])
        backbone = self.model.to(self.device).eval()
        slots = heads(backbone)
        replace_heads(backbone, lambda old: nn.Identity())
        # One loader over every split: with worker processes, each loader would spawn them afresh.
        items = [*self.splits["train"], *self.splits["val"], *self.splits["test"]]
        self.feature_images = LabeledImageDataset(items, Preprocessor(self.config))
        loader = make_loader(self.feature_images, self.plan.batch_size, self.plan.workers, shuffle=False,
                             seed=self.plan.seed)
        train, val = len(self.splits["train"]), len(self.splits["val"])
        features, flipped, labels, done = [], [], [], 0
        try:
            for images, targets in loader:
                cancel.check()
                images = images.to(self.device)
                features.append(backbone(images).float().cpu())
                training_images = images[: max(0, train - done)]  # the training images come first
                if views == 2 and len(training_images):
                    flipped.append(backbone(training_images.flip(3)).float().cpu())
                labels.append(targets.long())
                done += len(targets)
                on_event(Progress("Computing features", done + (views - 1) * min(done, train), total))
            everything = torch.cat(features) if features else torch.zeros((0, self.head.in_features))
            mirrored = torch.cat(flipped) if flipped else everything[:0]
            targets = torch.cat(labels) if labels else torch.zeros(0, dtype=torch.long)
            out = {
                "train.features": torch.cat([everything[:train], mirrored[:train]]),
                "train.labels": torch.cat([targets[:train]] * views),
                "val.features": everything[train:train + val],
                "val.labels": targets[train:train + val],
                "test.features": everything[train + val:],
                "test.labels": targets[train + val:],
            }
        finally:
            restore = iter(slots)
            replace_heads(backbone, lambda old: next(restore))
        return out


def _copy_of(linear: nn.Linear) -> nn.Linear:
    copy = nn.Linear(linear.in_features, linear.out_features)
    copy.load_state_dict(linear.state_dict())
    return copy


def _read_cache(path: Path, key: str) -> dict[str, torch.Tensor] | None:
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as handle:
            if (handle.metadata() or {}).get("key") != key:
                return None
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError):
        return None  # a damaged cache is simply rebuilt
