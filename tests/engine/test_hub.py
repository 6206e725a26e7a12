"""Pretrained weights from the Hugging Face Hub, end to end against a real local Hub server.

Cache layout, byte progress, cancellation, resume, offline and error messages, as a user meets them.
"""
from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save as safetensors_bytes

from engine.errors import Cancelled, UserFacingError
from engine.events import CancelToken, Progress, ignore_events
from engine.hub import CONNECT_TIMEOUT_S, OFFLINE_HINT, download_url
from engine.models import Hub, ModelSpec, load_model
from tests.hub_server import FakeHub, SilentServer, Throttle, refused_endpoint

ARCH = "mobilenetv3_small_100"  # a catalog model with ~10 MB of weights: real, yet quick to serve
REPO = timm.models.get_pretrained_cfg(ARCH).hf_hub_id  # the repo timm names, e.g. timm/mobilenetv3_small_100.lamb_in1k


@pytest.fixture(scope="module")
def served_state() -> dict[str, torch.Tensor]:
    """The weights our Hub serves: a seeded random init, so a model holding them got them from the download."""
    torch.manual_seed(1234)
    return {key: value.contiguous() for key, value in timm.create_model(ARCH, pretrained=False).state_dict().items()}


@pytest.fixture(scope="module")
def safetensors_file(served_state) -> bytes:
    return safetensors_bytes(served_state)


@pytest.fixture
def hub(monkeypatch):
    with FakeHub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        yield hub


def repo_cache() -> Path:
    """The standard HF cache folder of REPO under the HF_HOME the autouse fixture chose."""
    return Path(os.environ["HF_HOME"]) / "hub" / f"models--{REPO.replace('/', '--')}"


def assert_same_weights(model: torch.nn.Module, expected: dict[str, torch.Tensor]) -> None:
    loaded = model.state_dict()
    assert loaded.keys() == expected.keys()
    assert [key for key, value in expected.items() if not torch.equal(loaded[key].cpu(), value)] == []


def load_from_hub(**kwargs):
    return load_model(ModelSpec(ARCH, Hub()), **kwargs)


def test_download_lands_in_the_hf_cache_with_byte_progress(hub, served_state, safetensors_file):
    hub.add_file(REPO, "model.safetensors", safetensors_file)
    events = []

    loaded = load_from_hub(on_event=events.append)

    assert_same_weights(loaded.model, served_state)
    assert REPO in loaded.source
    commit = hub.commit_of(REPO)
    assert (repo_cache() / "refs" / "main").read_text() == commit
    cached = repo_cache() / "snapshots" / commit / "model.safetensors"
    assert cached.read_bytes() == safetensors_file
    progress = [event for event in events if isinstance(event, Progress)]
    assert {(p.unit, p.total) for p in progress} == {("bytes", len(safetensors_file))}
    done = [p.done for p in progress]
    assert done == sorted(set(done)) and done[-1] == len(safetensors_file)
    assert len(progress) >= 5, "progress is reported while the bytes arrive, not only at the end"
    assert progress[-1].fraction == 1.0
    assert [(r.method, r.range) for r in hub.requests if r.server == "cdn"] == [("GET", None)]


def test_a_dropped_connection_resumes_with_a_range_request(hub, served_state, safetensors_file):
    hub.add_file(REPO, "model.safetensors", safetensors_file)
    dropped_after = 3 * 1024 * 1024
    hub.drop_once_after = dropped_after
    events = []

    loaded = load_from_hub(on_event=events.append)

    assert_same_weights(loaded.model, served_state)
    downloads = [r for r in hub.requests if r.server == "cdn"]
    assert len(downloads) == 2 and downloads[0].range is None
    resumed_from = int(downloads[1].range.removeprefix("bytes=").removesuffix("-"))
    assert 0 < resumed_from <= dropped_after, "the second request asks only for the missing bytes"
    done = [event.done for event in events if isinstance(event, Progress)]
    assert done == sorted(set(done)) and done[-1] == len(safetensors_file), "no bytes counted twice"


def test_cached_weights_load_without_the_network(hub, served_state, safetensors_file, monkeypatch):
    hub.add_file(REPO, "model.safetensors", safetensors_file)
    load_from_hub()
    requests_after_download = hub.request_count

    events = []
    assert_same_weights(load_from_hub(on_event=events.append).model, served_state)
    assert hub.request_count == requests_after_download
    assert not [event for event in events if isinstance(event, Progress)]

    hub.close()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert_same_weights(load_from_hub().model, served_state)


def test_cancel_stops_the_download_promptly_and_a_later_load_completes(hub, served_state, safetensors_file):
    hub.add_file(REPO, "model.safetensors", safetensors_file)
    hub.throttle = Throttle(chunk_bytes=64 * 1024, delay_s=0.01)  # ~6 MB/s: the whole file takes ~1.6 s
    cancel = CancelToken()
    seen: list[Progress] = []
    cancelled_at: list[float] = []

    def cancel_on_first_progress(event) -> None:
        if isinstance(event, Progress) and not cancel.cancelled:
            seen.append(event)
            cancelled_at.append(time.monotonic())
            cancel.cancel()

    with pytest.raises(Cancelled):
        load_from_hub(on_event=cancel_on_first_progress, cancel=cancel)

    assert time.monotonic() - cancelled_at[0] < 2.0
    assert seen[0].done < seen[0].total // 2, "cancelled while the download was under way"
    snapshot_files = [p for p in (repo_cache() / "snapshots").rglob("*") if p.is_file() or p.is_symlink()]
    assert snapshot_files == []
    assert list((repo_cache() / "blobs").iterdir()) == [], "no complete blob and no partial file left behind"

    hub.throttle = None
    assert_same_weights(load_from_hub().model, served_state)
    assert [p.name for p in (repo_cache() / "blobs").iterdir()] == [hashlib.sha256(safetensors_file).hexdigest()]


def test_offline_mode_with_an_empty_cache_says_what_to_do(hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.monotonic()

    with pytest.raises(UserFacingError) as error:
        load_from_hub()

    assert time.monotonic() - started < 2.0
    assert "offline" in error.value.message.lower() and REPO in error.value.message
    assert error.value.hint == OFFLINE_HINT
    assert "connect" in error.value.hint.lower() and "file" in error.value.hint.lower()
    assert hub.request_count == 0


def test_a_refused_connection_is_reported_at_once(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", refused_endpoint())
    started = time.monotonic()

    with pytest.raises(UserFacingError) as error:
        load_from_hub()

    assert time.monotonic() - started < 3.0
    assert "could not reach" in error.value.message.lower() and REPO in error.value.message
    assert error.value.hint == OFFLINE_HINT


def test_a_hub_that_never_answers_is_reported_after_the_connect_timeout(monkeypatch):
    outcome: list[BaseException] = []

    def attempt() -> None:
        try:
            load_from_hub()
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)

    with SilentServer() as silent:
        monkeypatch.setenv("HF_ENDPOINT", silent.endpoint)
        started = time.monotonic()
        worker = threading.Thread(target=attempt, daemon=True)  # a hang fails this test instead of freezing the run
        worker.start()
        worker.join(15.0)
        elapsed = time.monotonic() - started
        assert not worker.is_alive(), "loading hangs on a Hub that accepts connections but never answers"

    assert elapsed < CONNECT_TIMEOUT_S + 3.0
    assert len(outcome) == 1 and isinstance(outcome[0], UserFacingError), outcome
    assert "could not reach" in outcome[0].message.lower()
    assert outcome[0].hint == OFFLINE_HINT


def test_a_repo_with_only_pytorch_model_bin_falls_back_to_it(hub, served_state):
    buffer = io.BytesIO()
    torch.save(served_state, buffer)
    hub.add_file(REPO, "pytorch_model.bin", buffer.getvalue())  # model.safetensors answers 404 EntryNotFound

    loaded = load_from_hub()

    assert_same_weights(loaded.model, served_state)
    asked = {(r.method, r.path.rsplit("/", 1)[-1]) for r in hub.requests if r.server == "hub"}
    assert ("HEAD", "model.safetensors") in asked
    cached = repo_cache() / "snapshots" / hub.commit_of(REPO) / "pytorch_model.bin"
    assert cached.read_bytes() == buffer.getvalue()
    requests_after_download = hub.request_count
    assert_same_weights(load_from_hub().model, served_state)
    assert hub.request_count == requests_after_download


def test_an_unknown_repo_is_a_clear_error(hub):
    hub.add_file("timm/some-other-model", "model.safetensors", b"not asked for")
    started = time.monotonic()

    with pytest.raises(UserFacingError) as error:
        load_from_hub()

    assert time.monotonic() - started < 3.0
    assert REPO in error.value.message and "no public weights" in error.value.message
    assert error.value.hint


def test_a_hub_outage_is_reported_without_minutes_of_retries(hub, safetensors_file):
    hub.add_file(REPO, "model.safetensors", safetensors_file)
    hub.fail_with = 503
    started = time.monotonic()

    with pytest.raises(UserFacingError) as error:
        load_from_hub()

    assert time.monotonic() - started < 3.0
    assert "503" in error.value.message and REPO in error.value.message
    assert "try again later" in error.value.hint.lower()


def test_a_plain_url_download_is_cached_once_and_never_truncated(hub, tmp_path):
    content = os.urandom(3 * 1024 * 1024)  # a torchvision-style checkpoint served from a plain URL
    hub.add_file("downloads/checkpoints", "weights.pth", content)
    url = hub.cdn_url(content)
    hub.drop_once_after = 1024 * 1024
    folder = tmp_path / "checkpoints"

    with pytest.raises(UserFacingError) as error:
        download_url(url, folder, ignore_events, CancelToken())
    assert "interrupted" in error.value.message
    assert list(folder.iterdir()) == [], "a short body is not kept, not even as a temporary file"

    events = []
    saved = download_url(url, folder, events.append, CancelToken())
    assert saved.read_bytes() == content
    assert events[-1] == Progress(f"Downloading {saved.name}", len(content), len(content), "bytes")
    requests_after_download = hub.request_count
    assert download_url(url, folder, ignore_events, CancelToken()) == saved
    assert hub.request_count == requests_after_download
