"""Saving is atomic: a failed write leaves the previous file intact and says why in words."""
from __future__ import annotations

import pytest

from engine.errors import UserFacingError
from engine.files import write_atomically, write_text_atomically


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "results.csv"
    write_text_atomically(target, "old,good\n")

    def crash(tmp):
        tmp.write_text("half")
        raise RuntimeError("crashed mid-write")

    with pytest.raises(RuntimeError):
        write_atomically(target, crash)
    assert target.read_text() == "old,good\n"
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv"]


def test_an_impossible_folder_is_a_clear_error(tmp_path):
    (tmp_path / "taken").write_text("a file where a folder should be")
    with pytest.raises(UserFacingError, match="Could not save"):
        write_text_atomically(tmp_path / "taken" / "out.json", "{}")
