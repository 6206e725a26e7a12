"""Downloads pretrained weights into the standard caches, reporting bytes and honouring cancellation.

Hugging Face Hub files go to the HF cache (shared with timm and other tools); plain URLs (torchvision's
checkpoints) go to torch's hub cache. A cached file is used without touching the network.
"""
from __future__ import annotations

import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path

import httpx2  # huggingface_hub 2.x's HTTP client: its connection errors and timeouts
from huggingface_hub import constants, get_hf_file_metadata, hf_hub_download, hf_hub_url, try_to_load_from_cache
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
)
from tqdm.auto import tqdm

from engine.errors import UserFacingError
from engine.events import CancelToken, EventSink, Progress
from engine.files import atomic_path

# timm publishes safetensors first and keeps pickled .bin files for older checkpoints.
HUB_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
CONNECT_TIMEOUT_S = 5.0  # a closed network must be reported in seconds, not minutes
DOWNLOAD_CHUNK_BYTES = 256 * 1024  # progress and cancellation every 256 KB: often enough on a slow line
OFFLINE_HINT = (
    "Connect to the internet to download it once (it is cached afterwards), "
    "or load a weights file or model bundle you already have."
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


def cached_hub_file(repo_id: str, filenames: tuple[str, ...] = HUB_WEIGHT_FILES) -> Path | None:
    """The cached weights of a Hub repo, if any, found without network access."""
    repo_id, revision = _split_revision(repo_id)
    for filename in filenames:
        found = try_to_load_from_cache(repo_id, filename, cache_dir=hub_cache_dir(), revision=revision)
        if isinstance(found, str):
            return Path(found)
    return None


def download_hub_weights(
    repo_id: str, on_event: EventSink, cancel: CancelToken, filenames: tuple[str, ...] = HUB_WEIGHT_FILES
) -> Path:
    """Path of the weights of `repo_id` (e.g. "timm/resnet50.a1_in1k") in the HF cache, downloading if needed.

    `filenames`: the names the weights may have in the repo, preferred first.
    """
    cached = cached_hub_file(repo_id, filenames)
    if cached is not None:
        return cached
    if hub_offline():
        raise UserFacingError(f"Offline mode is on and {repo_id} has not been downloaded yet.", OFFLINE_HINT)
    repo, revision = _split_revision(repo_id)
    endpoint = os.environ.get("HF_ENDPOINT") or None
    # huggingface_hub reads bodies in 10 MB pieces and reports once per piece: too coarse to show progress or
    # to cancel on a slow connection. It reads this constant at every download.
    constants.DOWNLOAD_CHUNK_SIZE = min(constants.DOWNLOAD_CHUNK_SIZE, DOWNLOAD_CHUNK_BYTES)
    for filename in filenames:
        try:
            _ask_hub_for(repo, filename, revision, endpoint)
            return Path(
                hf_hub_download(
                    repo,
                    filename,
                    revision=revision,
                    cache_dir=hub_cache_dir(),
                    endpoint=endpoint,
                    etag_timeout=CONNECT_TIMEOUT_S,
                    tqdm_class=_progress_bar_class(f"Downloading {repo}", on_event, cancel),
                )
            )
        except RemoteEntryNotFoundError:
            continue  # this repo has the other file format
        except (GatedRepoError, RepositoryNotFoundError) as exc:
            raise UserFacingError(
                f"The Hugging Face Hub has no public weights at {repo_id}.",
                "Check the model name, or log in with `hf auth login` if the model is gated.",
            ) from exc
        except HfHubHTTPError as exc:  # the Hub answered, with a server error or a refusal
            status = exc.response.status_code if exc.response is not None else "?"
            raise UserFacingError(
                f"The Hugging Face Hub could not send {repo_id} (HTTP {status}).",
                "Try again later, or load a weights file or model bundle you already have "
                "(File ▸ Open model file…).",
            ) from exc
        except (httpx2.TransportError, LocalEntryNotFoundError, OfflineModeIsEnabled, OSError) as exc:
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
            _save_body(response, tmp, url, on_event, cancel)
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise UserFacingError(f"Could not download {target.name} from {url}.", OFFLINE_HINT) from exc
    return target


def _save_body(
    response: http.client.HTTPResponse, tmp: Path, url: str, on_event: EventSink, cancel: CancelToken
) -> None:
    """Stream the body into `tmp`. A broken or short body raises, so atomic_path never keeps a truncated file."""
    name = url.rsplit("/", 1)[-1]
    total = int(response.headers.get("Content-Length") or 0)
    done = 0
    with open(tmp, "wb") as out:
        while True:
            try:
                chunk = response.read(DOWNLOAD_CHUNK_BYTES)
            except (OSError, http.client.HTTPException) as exc:  # network errors, not atomic_path's disk errors
                raise _interrupted(url) from exc
            if not chunk:
                break
            cancel.check()
            out.write(chunk)
            done += len(chunk)
            on_event(Progress(f"Downloading {name}", done, total, "bytes"))
    if total and done != total:  # the server hung up early; urllib returns the short body without complaint
        raise _interrupted(url)


def _interrupted(url: str) -> UserFacingError:
    name = url.rsplit("/", 1)[-1]
    return UserFacingError(
        f"The download of {name} from {url} was interrupted.", "Try again when the connection is stable."
    )


def _ask_hub_for(repo: str, filename: str, revision: str | None, endpoint: str | None) -> None:
    """One HEAD request with our timeout and no retries, raising what hf_hub_download would raise.

    Without it an unreachable Hub costs minutes: when the first request fails and nothing is cached,
    hf_hub_download retries with backoff and a 60 s timeout before giving up.
    """
    url = hf_hub_url(repo, filename, revision=revision, endpoint=endpoint)
    get_hf_file_metadata(url, timeout=CONNECT_TIMEOUT_S, endpoint=endpoint, retry_on_errors=False)


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
            cancel.check()  # raising here aborts the transfer; huggingface_hub deletes its partial file
            self._done += int(n or 0)
            total = int(self.total or 0)
            percent = int(100 * self._done / total) if total else self._done >> 20
            if percent != self._last_percent:  # one event per visible change, not per chunk
                self._last_percent = percent
                on_event(Progress(what, self._done, total, "bytes"))

    return ProgressBar
