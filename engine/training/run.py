"""A training run's folder: the plan, the fixed split and the checkpoints, so a cancelled run resumes exactly.

    <runs>/<date>-<name>/run.json          plan, classes, the train/val/test split, status (written atomically)
                         checkpoint.pt     the last completed epoch (torch.load(weights_only=True) only)
                         best.safetensors  the best weights so far
                         features.safetensors  the quick method's cached backbone features

When the run finishes, only run.json stays (and the report, when the model was saved as a single file).
"""
from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

from engine.errors import UserFacingError
from engine.files import write_text_atomically
from engine.my_models import models_dir as models_dir  # re-exported: training saves its models there
from engine.paths import user_data_dir
from engine.training.dataset import DatasetScan, LabeledImage, stratified_split
from engine.training.plan import TrainPlan, default_model_name

RUN_FILE = "run.json"
CHECKPOINT_FILE = "checkpoint.pt"
BEST_FILE = "best.safetensors"
FEATURES_FILE = "features.safetensors"
RUN_FORMAT = "classifier-studio-run"
# Bump when run.json changes meaning; a newer run is refused rather than misread.
RUN_SCHEMA_VERSION = 1
STATUSES = ("new", "cancelled", "failed", "finished")


@dataclass(frozen=True)
class Run:
    folder: Path
    plan: TrainPlan
    classes: tuple[str, ...]
    train: tuple[LabeledImage, ...]
    val: tuple[LabeledImage, ...]
    test: tuple[LabeledImage, ...]
    dataset: dict = field(default_factory=dict)  # the scan's summary: folder, layout, images per class, problems
    created: str = ""
    status: str = "new"
    epochs_done: int = 0
    bundle: str = ""  # where the finished model was saved

    @property
    def name(self) -> str:
        return self.plan.name or Path(self.plan.data_dir).name

    @property
    def resumable(self) -> bool:
        return self.status in ("new", "cancelled", "failed")

    def with_status(self, status: str, **changes) -> Run:
        run = replace(self, status=status, **changes)
        save_run(run)
        return run


def runs_dir() -> Path:
    return user_data_dir() / "runs"


def create_run(plan: TrainPlan, scan: DatasetScan, parent: Path | None = None) -> Run:
    """A new run folder holding the plan and a split that never changes afterwards (seeded, stratified)."""
    plan = plan.validated()
    if scan.val:
        train, val = scan.train, scan.val
    else:
        train, val = stratified_split(scan.train, plan.val_fraction, plan.seed)
    plan = replace(plan, name=plan.name or default_model_name(scan.root))
    now = dt.datetime.now()
    folder = unique_path(parent or runs_dir(), f"{now:%Y%m%d-%H%M%S}-{plan.name}")
    run = Run(
        folder=folder,
        plan=plan,
        classes=scan.classes,
        train=tuple(train),
        val=tuple(val),
        test=scan.test,
        dataset={
            "folder": scan.root,
            "layout": scan.layout,
            "images_per_class": dict(zip(scan.classes, scan.counts())),
            "skipped_files": scan.skipped,
            "problems": [problem.message for problem in scan.problems],
        },
        created=now.isoformat(timespec="seconds"),
    )
    save_run(run)
    return run


def save_run(run: Run) -> None:
    payload = {
        "format": RUN_FORMAT,
        "schema_version": RUN_SCHEMA_VERSION,
        "plan": run.plan.to_dict(),
        "classes": list(run.classes),
        "split": {part: [[item.path, item.label] for item in getattr(run, part)] for part in ("train", "val", "test")},
        "dataset": run.dataset,
        "created": run.created,
        "status": run.status,
        "epochs_done": run.epochs_done,
        "bundle": run.bundle,
    }
    write_text_atomically(run.folder / RUN_FILE, json.dumps(payload, indent=1))


def open_run(folder: str | Path) -> Run:
    folder = Path(folder).expanduser()
    path = folder / RUN_FILE
    if not path.is_file():
        raise UserFacingError(f"{folder} is not a training run (it has no {RUN_FILE}).", "Choose a run folder.")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("format") != RUN_FORMAT:
            raise ValueError("not a Classifier Studio run")
        if int(raw.get("schema_version", 0)) > RUN_SCHEMA_VERSION:
            raise UserFacingError(f"The run {folder.name} was made by a newer Classifier Studio.", "Update it.")
        split = {
            part: tuple(LabeledImage(str(p), int(label)) for p, label in raw["split"][part])
            for part in ("train", "val", "test")
        }
        return Run(
            folder=folder,
            plan=TrainPlan.from_dict(raw["plan"]),
            classes=tuple(raw["classes"]),
            dataset=dict(raw.get("dataset") or {}),
            created=str(raw.get("created", "")),
            status=str(raw.get("status", "new")),
            epochs_done=int(raw.get("epochs_done", 0)),
            bundle=str(raw.get("bundle", "")),
            **split,
        )
    except UserFacingError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise UserFacingError(f"The run {folder.name} is damaged ({exc}).", "Start a new run.") from exc


def default_bundle_path(name: str) -> Path:
    """A new folder under the user's models folder, never an existing one."""
    return unique_path(models_dir(), name)


def list_runs(parent: Path | None = None) -> list[Run]:
    """Readable runs, newest first; damaged ones are left out."""
    parent = parent or runs_dir()
    runs = []
    for folder in sorted(parent.glob("*/"), reverse=True) if parent.is_dir() else ():
        try:
            runs.append(open_run(folder))
        except UserFacingError:
            continue
    return runs


def delete_run(folder: str | Path) -> None:
    """Delete a run the user gave up on, with its checkpoints. Only a folder holding run.json is deleted."""
    folder = Path(folder)
    if not (folder / RUN_FILE).is_file():
        raise UserFacingError(f"{folder} is not a training run, so it was not deleted.")
    try:
        shutil.rmtree(folder)
    except OSError as exc:
        raise UserFacingError(
            f"The run {folder.name} could not be deleted ({exc.strerror or exc}).",
            "Close any program using its files and try again.",
        ) from exc


def unique_path(parent: Path, name: str) -> Path:
    slug = re.sub(r"[^\w.-]+", "-", name, flags=re.UNICODE).strip("-.") or "model"
    candidate, number = parent / slug, 2
    while candidate.exists():
        candidate, number = parent / f"{slug}-{number}", number + 1
    return candidate
