"""Saving the Classify tab's results: the file name for the format picked, and the writing, off the GUI thread
(100,000 results take 3.6 s as JSON)."""
from __future__ import annotations

from pathlib import Path

from engine.errors import UserFacingError
from engine.export import export_results
from engine.results import ImageResult
from gui.background import BackgroundCalls, background_calls

EXPORT_FILTERS = "CSV spreadsheet (*.csv);;JSON (*.json)"


def with_export_suffix(path: str, chosen_filter: str) -> str:
    """A typed name without .csv/.json gets the suffix of the format picked in the dialog."""
    if Path(path).suffix.lower() in (".csv", ".json"):
        return path
    return path + (".json" if "JSON" in chosen_filter else ".csv")


def results_exporter() -> BackgroundCalls:
    return background_calls("export-results")


def export_in_background(
    results: list[ImageResult], path: str, more: str
) -> tuple[str, str, UserFacingError | None]:
    """On the export thread: the note to show beside Export, its tooltip, and the error, if any."""
    try:
        saved = export_results(results, path)
    except UserFacingError as exc:
        return "", "", exc
    except OSError as exc:  # e.g. a file standing where the folder should be: fails before the atomic write
        return "", "", UserFacingError(f"Could not save {path}: {exc.strerror or exc}.", "Choose another folder.")
    return f"Saved {len(results):,} results{more} to {saved.name}", str(saved), None
