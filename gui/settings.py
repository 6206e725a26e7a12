"""What Classifier Studio remembers between runs, as one typed dataclass stored in the user's QSettings."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from PySide6.QtCore import QByteArray, QSettings

from engine.clip_catalog import DEFAULT_PROMPT, parse_prompt, prompt_as_typed
from engine.errors import UserFacingError
from engine.specs import (
    BACKENDS,
    DEVICE_CHOICES,
    PRECISIONS,
    Builtin,
    Bundle,
    Hub,
    InferenceChoice,
    ModelSpec,
    WeightsFile,
    ZeroShot,
    builtin_model_spec,
)

log = logging.getLogger(__name__)

ORGANIZATION = "Classifier Studio"
APPLICATION = "Classifier Studio"
# Bump when a stored key changes its meaning or type incompatibly (not for added keys: they fall back
# to defaults on their own). Settings written under another version are ignored rather than misread.
SCHEMA_VERSION = 1
MAX_RECENT_FOLDERS = 8
SOURCE_KINDS = ("builtin", "hub", "file", "bundle", "zero-shot")


@dataclass
class AppSettings:
    model_arch: str = ""  # timm name; empty for bundles (they name their own architecture)
    model_source: str = ""  # one of SOURCE_KINDS; empty until a model has loaded once
    model_path: str = ""  # the weights file or bundle, for "file" and "bundle" (and a CLIP file for "zero-shot")
    model_classes: list[str] = field(default_factory=list)  # the class names, for "zero-shot"
    model_prompt: str = ""  # the sentence they are put in, for "zero-shot"; empty means the default
    device: str = "auto"
    precision: str = "fp32"
    backend: str = "auto"  # one of engine.specs.BACKENDS
    int8: bool = False
    window_geometry: bytes = b""
    window_state: bytes = b""  # dock layout: whether the model picker is shown, and where
    recent_folders: list[str] = field(default_factory=list)  # most recent first
    topk: int = 5

    def model_spec(self) -> ModelSpec | None:
        """The remembered model, or None on a first start."""
        if self.model_source == "builtin":
            return builtin_model_spec()
        if self.model_source == "hub" and self.model_arch:
            return ModelSpec(self.model_arch, Hub())
        if self.model_source == "file" and self.model_arch and self.model_path:
            return ModelSpec(self.model_arch, WeightsFile(self.model_path))
        if self.model_source == "bundle" and self.model_path:
            return ModelSpec(source=Bundle(self.model_path))
        if self.model_source == "zero-shot" and self.model_arch and len(self.model_classes) >= 2:
            return ModelSpec(self.model_arch, ZeroShot(tuple(self.model_classes), self.model_path, self._prompt()))
        return None

    def _prompt(self) -> str:
        try:
            return parse_prompt(self.model_prompt)
        except UserFacingError:  # written by hand: the default sentence rather than no model
            return DEFAULT_PROMPT

    @property
    def inference_choice(self) -> InferenceChoice:
        return InferenceChoice(self.device, self.precision, self.backend, self.int8)

    def remember_choice(self, choice: InferenceChoice) -> None:
        self.device, self.precision = choice.device, choice.precision
        self.backend, self.int8 = choice.backend, choice.int8

    def remember_model(self, spec: ModelSpec, choice: InferenceChoice) -> None:
        """Remember a model that loaded. Untrained (random) models are not worth restoring, so they are skipped."""
        source = spec.source
        if isinstance(source, Builtin):
            self.model_arch, self.model_source, self.model_path = spec.arch, "builtin", ""
        elif isinstance(source, Hub):
            self.model_arch, self.model_source, self.model_path = spec.arch, "hub", ""
        elif isinstance(source, WeightsFile):
            self.model_arch, self.model_source, self.model_path = spec.arch, "file", source.path
        elif isinstance(source, Bundle):
            self.model_arch, self.model_source, self.model_path = "", "bundle", source.path
        elif isinstance(source, ZeroShot):
            self.model_arch, self.model_source, self.model_path = spec.arch, "zero-shot", source.path
        else:
            return
        self.model_classes = list(source.classes) if isinstance(source, ZeroShot) else []
        self.model_prompt = prompt_as_typed(source.prompt) if isinstance(source, ZeroShot) else ""
        self.remember_choice(choice)

    def add_recent_folder(self, folder: str) -> None:
        self.recent_folders = [folder, *(f for f in self.recent_folders if f != folder)][:MAX_RECENT_FOLDERS]


def user_settings_store() -> QSettings:
    """The per-user settings file in the platform's config folder (%APPDATA%, ~/.config).

    An INI file everywhere rather than the registry/plist: one format to read back, readable by people, and
    redirectable with QSettings.setPath, which is how tests keep away from the real user's settings.
    """
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)


def load_settings(store: QSettings | None = None) -> AppSettings:
    """Read the settings; anything missing, corrupt or written by another schema falls back to its default."""
    store = store or user_settings_store()
    defaults = AppSettings()
    if _as_int(store.value("schema_version"), None) != SCHEMA_VERSION:
        if store.contains("schema_version"):
            log.warning("Ignoring settings written by another version of Classifier Studio")
        return defaults
    source = _as_str(store.value("model/source"), "")
    device = _as_str(store.value("device"), defaults.device)
    precision = _as_str(store.value("precision"), defaults.precision)
    topk = _as_int(store.value("topk"), defaults.topk)
    backend = _as_str(store.value("backend"), defaults.backend)
    return AppSettings(
        model_arch=_as_str(store.value("model/arch"), ""),
        model_source=source if source in SOURCE_KINDS else "",
        model_path=_as_str(store.value("model/path"), ""),
        model_classes=_as_str_list(store.value("model/classes")),
        model_prompt=_as_str(store.value("model/prompt"), ""),
        device=device if device in DEVICE_CHOICES else defaults.device,
        precision=precision if precision in PRECISIONS else defaults.precision,
        backend=backend if backend in BACKENDS else defaults.backend,
        int8=_as_bool(store.value("int8"), defaults.int8),
        window_geometry=_as_bytes(store.value("window/geometry")),
        window_state=_as_bytes(store.value("window/state")),
        recent_folders=_as_str_list(store.value("recent_folders"))[:MAX_RECENT_FOLDERS],
        topk=topk if topk is not None and 1 <= topk <= 100 else defaults.topk,
    )


def save_settings(settings: AppSettings, store: QSettings | None = None) -> None:
    store = store or user_settings_store()
    store.setValue("schema_version", SCHEMA_VERSION)
    store.setValue("model/arch", settings.model_arch)
    store.setValue("model/source", settings.model_source)
    store.setValue("model/path", settings.model_path)
    store.setValue("model/classes", list(settings.model_classes))
    store.setValue("model/prompt", settings.model_prompt)
    store.setValue("device", settings.device)
    store.setValue("precision", settings.precision)
    store.setValue("backend", settings.backend)
    store.setValue("int8", settings.int8)
    store.setValue("window/geometry", QByteArray(settings.window_geometry))
    store.setValue("window/state", QByteArray(settings.window_state))
    store.setValue("recent_folders", list(settings.recent_folders))
    store.setValue("topk", settings.topk)
    store.sync()
    if store.status() != QSettings.Status.NoError:
        log.warning("Could not save settings to %s", store.fileName())


def _as_str(value: object, default: str) -> str:
    return value if isinstance(value, str) else default


def _as_int(value: object, default: int | None) -> int | None:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str):  # INI files give numbers back as text
        try:
            return int(value)
        except ValueError:
            return default
    return default


def _as_bool(value: object, default: bool) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):  # INI files give booleans back as text
        return value.lower() == "true"
    return default


def _as_bytes(value: object) -> bytes:
    if isinstance(value, QByteArray):
        return bytes(value.data())
    if isinstance(value, bytes):
        return value
    return b""


def _as_str_list(value: object) -> list[str]:
    # INI files read a one-item list back as a plain string and an empty list as None.
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, (list, tuple)):
        return [item for item in value if isinstance(item, str) and item]
    return []
