"""Downloads pretrained weights into the standard caches, reporting bytes and honouring cancellation.

Hugging Face Hub files go to the HF cache (shared with timm and other tools); plain URLs (torchvision's
checkpoints) go to torch's hub cache. A cached file is used without touching the network.
"""
from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
)
from tqdm.auto import tqdm

from engine.errors import UserFacingError
from engine.events import CancelToken, EventSink, Progress
from engine.files import atomic_path

# timm publishes safetensors first and keeps pickled .bin files for older checkpoints.
HUB_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
CONNECT_TIMEOUT_S = 5.0  # a closed network must be reported in seconds, not minutes
OFFLINE_HINT = (
    "Connect to the internet to download it once (it is cached afterwards), "
    "or load a weights file or model bundle you already have (File ▸ Open model file…)."
)


def hub_offline() -> bool:
    # Read at call time (huggingface_hub reads it once at import), so a user's environment change counts.
    value = os.environ.get("HF_HUB_OFFLINE", "")
    return value.upper() in {"1", "ON", "YES", "TRUE"} or constants.HF_HUB_OFFLINE


def hub_cache_dir() -> str:
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.environ["HF_HOME"], "hub")
    return constants.HF_HUB_CACHE


def cached_hub_file(repo_id: str) -> Path | None:
    """The cached weights of a Hub repo, if any, found without network access."""
    repo_id, revision = _split_revision(repo_id)
    for filename in HUB_WEIGHT_FILES:
        found = try_to_load_from_cache(repo_id, filename, cache_dir=hub_cache_dir(), revision=revision)
        if isinstance(found, str):
            return Path(found)
    return None


def download_hub_weights(repo_id: str, on_event: EventSink, cancel: CancelToken) -> Path:
    """Path of the weights of `repo_id` (e.g. "timm/resnet50.a1_in1k") in the HF cache, downloading if needed."""
    cached = cached_hub_file(repo_id)
    if cached is not None:
        return cached
    if hub_offline():
        raise UserFacingError(f"Offline mode is on and {repo_id} has not been downloaded yet.", OFFLINE_HINT)
    repo, revision = _split_revision(repo_id)
    for filename in HUB_WEIGHT_FILES:
        try:
            return Path(
                hf_hub_download(
                    repo,
                    filename,
                    revision=revision,
                    cache_dir=hub_cache_dir(),
                    endpoint=os.environ.get("HF_ENDPOINT") or None,
                    etag_timeout=CONNECT_TIMEOUT_S,
                    tqdm_class=_progress_bar_class(f"Downloading {repo}", on_event, cancel),
                )
            )
        except EntryNotFoundError:
            continue  # this repo has the other file format
        except (GatedRepoError, RepositoryNotFoundError) as exc:
            raise UserFacingError(
                f"The Hugging Face Hub has no public weights at {repo_id}.",
                "Check the model name, or log in with `hf auth login` if the model is gated.",
            ) from exc
        except (LocalEntryNotFoundError, OfflineModeIsEnabled, OSError, HfHubHTTPError) as exc:
            raise UserFacingError(f"Could not reach the Hugging Face Hub to download {repo_id}.", OFFLINE_HINT) from exc
    raise UserFacingError(f"{repo_id} on the Hugging Face Hub has no weights file.", "Choose another checkpoint.")


def download_url(url: str, cache_dir: Path, on_event: EventSink, cancel: CancelToken) -> Path:
    """Download a plain URL once into `cache_dir` (atomically), with the same progress and cancellation."""
    target = cache_dir / url.rsplit("/", 1)[-1]
    if target.is_file():
        return target
    if hub_offline():
        raise UserFacingError(f"Offline mode is on and {target.name} has not been downloaded yet.", OFFLINE_HINT)
    try:
        with urllib.request.urlopen(url, timeout=CONNECT_TIMEOUT_S) as response, atomic_path(target) as tmp:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            with open(tmp, "wb") as out:
                while chunk := response.read(1 << 20):
                    cancel.check()
                    out.write(chunk)
                    done += len(chunk)
                    on_event(Progress(f"Downloading {target.name}", done, total, "bytes"))
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise UserFacingError(f"Could not download {target.name} from {url}.", OFFLINE_HINT) from exc
    return target


def _split_revision(repo_id: str) -> tuple[str, str | None]:
    repo, _, revision = repo_id.partition("@")  # timm writes pinned revisions as "org/name@rev"
    return repo, revision or None


def _progress_bar_class(what: str, on_event: EventSink, cancel: CancelToken) -> type[tqdm]:
    """A tqdm stand-in that turns huggingface_hub's byte counts into Progress events and stops on cancel."""

    class ProgressBar(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True  # our events replace the console bar
            super().__init__(*args, **kwargs)
            self._done = int(kwargs.get("initial") or 0)
            self._last_percent = -1

        def update(self, n=1):
            cancel.check()  # raising here aborts the transfer; the partial file is resumed next time
            self._done += int(n or 0)
            total = int(self.total or 0)
            percent = int(100 * self._done / total) if total else self._done >> 20
            if percent != self._last_percent:  # one event per visible change, not per chunk
                self._last_percent = percent
                on_event(Progress(what, self._done, total, "bytes"))

    return ProgressBar
