"""scripts/install_desktop_entry.sh adds a built app to the Linux application menu, where it can open images."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the .desktop entry is for Linux desktops")


def test_the_menu_entry_starts_the_build_and_offers_it_for_images(tmp_path):
    app = tmp_path / "Apps with spaces" / "ClassifierStudio"
    (app / "_internal").mkdir(parents=True)
    shutil.copytree(REPO / "resources", app / "_internal" / "resources")
    (app / "ClassifierStudio").write_text("#!/bin/sh\n")
    (app / "ClassifierStudio").chmod(0o755)
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "share")}
    subprocess.run(["bash", "scripts/install_desktop_entry.sh", str(app)], cwd=REPO, env=env, check=True,
                   capture_output=True)

    entry = (tmp_path / "share" / "applications" / "classifier-studio.desktop").read_text(encoding="utf-8")
    fields = dict(line.split("=", 1) for line in entry.splitlines() if "=" in line)
    assert fields["Exec"] == f'"{app / "ClassifierStudio"}" %F'  # %F: the files chosen in "Open with"
    assert {"image/jpeg", "image/png", "inode/directory", "video/mp4"} <= set(fields["MimeType"].split(";"))
    assert (tmp_path / "share" / "icons" / "hicolor" / "256x256" / "apps" / "classifier-studio.png").is_file()

    subprocess.run(["bash", "scripts/install_desktop_entry.sh", "--uninstall"], cwd=REPO, env=env, check=True,
                   capture_output=True)
    assert not (tmp_path / "share" / "applications" / "classifier-studio.desktop").exists()
