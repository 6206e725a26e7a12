"""The packaged app: scripts/build_app.sh builds it with build.spec, the frozen app passes its own --self-test,
shows its window and has its first model ready, started the way a user starts it, and downloads a Hub model
into the user's Hugging Face cache (from a real local HTTP server playing the Hub).

Takes several minutes and several GB of disk: skip it locally with `pytest -m "not packaging"`; CI runs it.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save as safetensors_bytes

from tests.hub_server import FakeHub

REPO = Path(__file__).resolve().parents[1]
BUILD_TIMEOUT_S = 40 * 60  # a hang guard: the build takes ~4 minutes here, the checks ~1 more

pytestmark = pytest.mark.packaging


@pytest.mark.skipif(sys.platform != "linux", reason="scripts/build_app.sh is the Linux build; see README for others")
def test_the_built_app_passes_its_self_test_and_starts(tmp_path):
    dist, work = tmp_path / "dist", tmp_path / "work"
    env = {**os.environ, "PYTHON": sys.executable, "DIST_DIR": str(dist), "WORK_DIR": str(work)}
    env.pop("CLASSIFIER_STUDIO_DATA_DIR", None)
    try:
        done = subprocess.run(
            ["bash", "scripts/build_app.sh"], cwd=REPO, env=env, capture_output=True, text=True,
            encoding="utf-8", errors="replace", timeout=BUILD_TIMEOUT_S, check=False,
        )
        output = done.stdout + done.stderr
        print(output[-4000:])  # build time, size and start-up figures, in the CI log
        assert done.returncode == 0, output[-4000:]
        assert re.search(r"^Built in \d+ s: \S+ in ", done.stdout, re.MULTILINE)
        for part in ("catalog", "model", "photos", "onnxruntime", "zero-shot", "live", "training", "window"):
            assert re.search(rf"^PASS  {part} ", done.stdout, re.MULTILINE), f"{part} did not pass:\n{done.stdout}"
        assert "Self-test passed (8/8)" in done.stdout
        starts = re.findall(r"window shown after (\d+\.\d+) s, first model ready after (\d+\.\d+) s", done.stdout)
        assert len(starts) == 2, done.stdout
        app = dist / "ClassifierStudio"
        assert (app / "_internal" / "resources" / "classifier-studio.desktop").is_file()
        assert not (app / "_internal" / "triton").exists(), "torch.compile's triton is left out of the build"
        assert not list(app.glob("**/*.log")) and not list(app.glob("**/onnx-cache")), "nothing is written into the app"
        still_running = subprocess.run(["pgrep", "-f", str(app)], capture_output=True, text=True, check=False)
        assert still_running.stdout == "", "the script stops the apps it started"
        downloads_into_the_hf_cache(app / "ClassifierStudio", tmp_path)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)  # several GB


def downloads_into_the_hf_cache(app: Path, tmp_path: Path) -> None:
    arch = "mobilenetv3_small_100.lamb_in1k"
    torch.manual_seed(0)
    weights = safetensors_bytes(
        {k: v.contiguous() for k, v in timm.create_model(arch, pretrained=False).state_dict().items()}
    )
    hf_home = tmp_path / "hf"
    with FakeHub() as hub:
        hub.add_file(f"timm/{arch}", "model.safetensors", weights)
        env = {**os.environ, "HF_ENDPOINT": hub.endpoint, "HF_HOME": str(hf_home),
               "CLASSIFIER_STUDIO_DATA_DIR": str(tmp_path / "data")}
        done = subprocess.run(
            [str(app), "classify", str(REPO / "resources" / "self-test" / "chelsea.jpg"), "--model", arch, "--json"],
            env=env, capture_output=True, text=True, timeout=600, check=False,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    assert '"top"' in done.stdout
    assert list(hf_home.glob(f"hub/models--timm--{arch}/snapshots/*/model.safetensors"))
