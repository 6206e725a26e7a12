"""`python main.py classify … --sort-into FOLDER`, run for real: real photos classified and sorted into folders."""
from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli import CTRL_C_NEEDS_POSIX, interrupt_after_first_result, isolated_bug_log, run_cli  # noqa: F401

CAT = {"tabby, tabby cat", "tiger cat", "Egyptian cat"}
COFFEE = {"espresso", "cup"}


def files_under(folder: Path) -> list[str]:
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())


def test_the_built_in_model_sorts_real_photos_into_class_folders_and_a_second_run_copies_nothing_twice(
    photo_files, tmp_path, monkeypatch
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = photo_files[0].parent
    (folder / "broken.jpg").write_bytes(photo_files[0].read_bytes()[:300])  # a download cut short
    originals = files_under(folder)
    sorted_folder = tmp_path / "sorted"

    done = run_cli("classify", folder, "--sort-into", sorted_folder, "--json")

    assert done.returncode == 1, done.stderr  # the broken file could not be read; every photo was sorted
    records = {Path(r["path"]).name: r for r in map(json.loads, done.stdout.splitlines())}
    chelsea, coffee = records["chelsea.jpg"], records["coffee.png"]
    assert Path(chelsea["sorted_to"]).parent.name in CAT and Path(coffee["sorted_to"]).parent.name in COFFEE
    for record in records.values():
        if "error" in record:
            assert "sorted_to" not in record
            continue
        sorted_to = Path(record["sorted_to"])
        assert sorted_to.parent.name == record["top"][0]["label"]
        assert sorted_to.read_bytes() == Path(record["path"]).read_bytes()
    assert len(files_under(sorted_folder)) == 4 and files_under(folder) == originals  # copies; originals stay
    assert f"Copied 4 photos into 4 class folders in {sorted_folder}." in done.stderr
    assert "1 file that could not be read stays where it is." in done.stderr

    again = run_cli("classify", folder, "--sort-into", sorted_folder)

    assert again.returncode == 1 and "4 photos were already there." in again.stderr
    assert len(files_under(sorted_folder)) == 4


def test_move_with_a_confidence_threshold_puts_what_the_model_is_unsure_of_apart(photo_files, tiny_bundle, tmp_path):
    """The tiny untrained model is never 99.9 % sure: every photo moves into _unsure, and none is left behind."""
    folder = photo_files[0].parent
    contents = sorted(path.read_bytes() for path in photo_files)
    sorted_folder = tmp_path / "sorted"

    done = run_cli(
        "classify", folder, "--model", tiny_bundle, "--sort-into", sorted_folder, "--min-confidence", "99.9%", "--move"
    )

    assert done.returncode == 0, done.stderr
    assert files_under(folder) == []
    assert files_under(sorted_folder) == sorted(f"_unsure/{path.name}" for path in photo_files)
    assert sorted(path.read_bytes() for path in (sorted_folder / "_unsure").iterdir()) == contents
    assert "→ " + str(sorted_folder / "_unsure") in done.stdout
    assert f"Moved 4 photos into {sorted_folder}: 4 below 99.9 % confidence into _unsure." in done.stderr


@CTRL_C_NEEDS_POSIX
def test_ctrl_c_during_a_sort_says_how_far_it_got_and_leaves_no_half_copied_photo(photo_files, tiny_bundle, tmp_path):
    folder = photo_files[0].parent
    sorted_folder = tmp_path / "sorted"

    returncode, _stdout, stderr = interrupt_after_first_result(
        "classify", *[folder] * 200, "--model", tiny_bundle, "--batch-size", 1, "--sort-into", sorted_folder
    )

    assert returncode == 130, stderr
    assert "Stopped. Copied" in stderr and "Cancelled" in stderr and "Traceback" not in stderr
    assert not [path for path in sorted_folder.rglob("*") if path.name.startswith(".")]


def test_sorting_options_without_a_folder_or_with_a_file_for_one_are_refused_before_any_model_loads(
    photo_files, tmp_path
):
    photo = photo_files[0]

    for options, message in (
        (["--move"], "--move says how to sort into folders, and no --sort-into FOLDER was given."),
        (["--min-confidence", "60"], "no --sort-into FOLDER was given"),
        (["--sort-into", photo], f"{photo} is a file, not a folder."),
        (["--sort-into", tmp_path, "--min-confidence", "150"], "must be a percentage from 0 to 100"),
        (["--sort-into", tmp_path, "--min-confidence", "most"], "'most' is not a number"),
        (["--sort-into", tmp_path, "--min-confidence", "0.6"], "is a percentage: give 60 for 60 %, not 0.6"),
    ):
        done = run_cli("classify", photo, "--model", "no_such_model", *options)
        assert done.returncode == 2 and message in done.stderr, (options, done.stderr)
        assert "Traceback" not in done.stderr
