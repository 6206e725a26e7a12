"""The full fine-tune method: every layer learns, the new head at a higher learning rate; optionally unfrozen in stages.

Mixed precision on CUDA, gradient accumulation, class weights or balanced sampling, mixup/cutmix in the heavy preset.
"""
from __future__ import annotations

import contextlib
import random
from collections.abc import Callable

import numpy as np
import torch
from timm.loss import SoftTargetCrossEntropy
from torch import nn

from engine.errors import UserFacingError
from engine.events import CancelToken
from engine.preprocess import DataConfig, Preprocessor
from engine.training.base_model import head_parameter_names
from engine.training.data import (
    LabeledImageDataset,
    balanced_sample_weights,
    make_loader,
    make_mixup,
    train_transform,
)
from engine.training.dataset import LabeledImage
from engine.training.plan import TrainPlan

StepCallback = Callable[[int, float, int], None]  # (step, loss, images in the step)


class FullLearner:
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
        self.model, self.plan, self.config, self.splits, self.device = model.to(device), plan, config, splits, device
        self.num_classes = num_classes
        head_names = head_parameter_names(model)
        named = list(model.named_parameters())
        self.head_params = [p for n, p in named if n in head_names]
        self.backbone_params = [p for n, p in named if n not in head_names]
        lr = plan.effective_lr
        self.base_lrs = [lr, lr * plan.head_lr_multiplier]
        self.optimizer = torch.optim.AdamW(
            [{"params": self.backbone_params, "lr": lr}, {"params": self.head_params, "lr": self.base_lrs[1]}],
            weight_decay=plan.weight_decay,
        )
        self.mixup = make_mixup(plan.augmentation, num_classes, plan.label_smoothing)
        self.loss = (
            SoftTargetCrossEntropy()
            if self.mixup
            else nn.CrossEntropyLoss(weight=loss_weights, label_smoothing=plan.label_smoothing)
        ).to(device)
        self.autocast_dtype = _autocast_dtype(device, plan.mixed_precision)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.autocast_dtype == torch.float16)
        train_items = splits["train"]
        weights = (
            balanced_sample_weights([i.label for i in train_items], num_classes) if plan.balanced_sampling else None
        )
        # Loaders live as long as the learner: with worker processes, each new loader would spawn them afresh.
        self.train_loader = make_loader(
            LabeledImageDataset(train_items, train_transform(config, plan.augmentation), keep_large=True),
            plan.batch_size, plan.workers, shuffle=True, seed=plan.seed, sample_weights=weights, drop_last=True,
        )
        self.eval_loaders: dict[str, torch.utils.data.DataLoader] = {}

    @property
    def batches_per_epoch(self) -> int:
        count = len(self.splits["train"])  # the loader drops a last partial batch only when there are several
        return count // self.plan.batch_size if count > self.plan.batch_size else 1

    @property
    def steps_per_epoch(self) -> int:
        return max(1, -(-self.batches_per_epoch // self.plan.grad_accumulation))

    def prepare(self, cache, on_event, cancel: CancelToken) -> None:
        """Nothing to precompute: every epoch reads and augments the images afresh."""

    def datasets(self) -> list[LabeledImageDataset]:
        return [self.train_loader.dataset, *(loader.dataset for loader in self.eval_loaders.values())]

    def train_epoch(self, epoch: int, lr_factor: Callable[[int], float], on_step: StepCallback, cancel: CancelToken):
        self._unfreeze_for(epoch)
        self.model.train()
        # Each epoch's order, augmentations and dropout follow from the seed alone: a resumed run repeats them.
        epoch_seed = self.plan.seed * 1000 + epoch
        loader = self.train_loader
        loader.generator.manual_seed(epoch_seed)
        random.seed(epoch_seed)  # timm's augmentations draw from Python's random
        torch.manual_seed(epoch_seed)
        accumulate = self.plan.grad_accumulation
        total_loss, correct, seen, step, pending = 0.0, 0, 0, 0, 0
        self.optimizer.zero_grad(set_to_none=True)
        try:
            for batch_index, (images, targets) in enumerate(loader, start=1):
                cancel.check()
                images, targets = images.to(self.device, non_blocking=True), targets.to(self.device)
                inputs, soft = self.mixup(images, targets) if self.mixup else (images, targets)
                with self._autocast():
                    logits = self.model(inputs)
                    loss = self.loss(logits.float(), soft)
                self.scaler.scale(loss / accumulate).backward()
                pending += len(targets)
                total_loss += loss.item() * len(targets)
                correct += int((logits.argmax(1) == targets).sum())
                seen += len(targets)
                if batch_index % accumulate == 0 or batch_index == len(loader):
                    step += 1
                    for group, base in zip(self.optimizer.param_groups, self.base_lrs):
                        group["lr"] = base * lr_factor(step)
                    self.scaler.step(self.optimizer)
                    self.scaler.update()
                    self.optimizer.zero_grad(set_to_none=True)
                    on_step(step, loss.item(), pending)
                    pending = 0
        except torch.OutOfMemoryError as exc:
            self.optimizer.zero_grad(set_to_none=True)
            torch.cuda.empty_cache()
            smaller = max(1, self.plan.batch_size // 2)
            raise UserFacingError(
                f"The GPU ran out of memory at batch size {self.plan.batch_size}.",
                f"Resume with a smaller batch (e.g. {smaller}), gradient accumulation, or a smaller model.",
            ) from exc
        return total_loss / max(seen, 1), correct / max(seen, 1)

    @torch.no_grad()
    def predict(self, part: str, cancel: CancelToken) -> np.ndarray:
        self.model.eval()
        if not self.splits[part]:
            return np.zeros((0, self.num_classes), dtype=np.float32)
        if part not in self.eval_loaders:
            self.eval_loaders[part] = make_loader(
                LabeledImageDataset(self.splits[part], Preprocessor(self.config), keep_large=True),
                self.plan.batch_size, self.plan.workers, shuffle=False, seed=self.plan.seed,
            )
        out = []
        for images, _ in self.eval_loaders[part]:
            cancel.check()
            with self._autocast():
                logits = self.model(images.to(self.device))
            out.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
        return np.concatenate(out)

    def state(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict()}

    def load_state(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])

    def snapshot(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}

    def restore(self, snapshot: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(snapshot)

    def final_model(self) -> nn.Module:
        return self.model.to("cpu").float().eval()

    def _unfreeze_for(self, epoch: int) -> None:
        """Progressive unfreezing: epoch 1 trains the head, epoch 2 also the last third, then everything."""
        if not self.plan.progressive_unfreeze:
            return
        thaw_from = {1: len(self.backbone_params), 2: 2 * len(self.backbone_params) // 3}.get(epoch, 0)
        for index, param in enumerate(self.backbone_params):
            param.requires_grad_(index >= thaw_from)

    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)


def _autocast_dtype(device: torch.device, wanted: bool) -> torch.dtype | None:
    if not wanted or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
