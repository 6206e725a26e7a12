"""Sorting photos into class folders: Classifier Studio's sorter against a plain shutil.copy2 loop, same files, same
run. The sorter also writes each copy beside its place and renames it in, and checks for photos already there.

    python benchmarks/sort.py [--photos 2000] [--kb 150]
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.results import ImageResult, TopClass  # noqa: E402
from engine.sort_into_folders import SortOptions, sort_into_folders  # noqa: E402

LABELS = [f"class {n}" for n in range(20)]


def make_photos(folder: Path, count: int, kb: int) -> list[ImageResult]:
    folder.mkdir()
    results = []
    for n in range(count):
        path = folder / f"IMG_{n:05}.jpg"
        path.write_bytes(os.urandom(kb * 1024))  # the bytes of a photo; their content does not matter to copying
        results.append(ImageResult(str(path), (TopClass(LABELS[n % len(LABELS)], n % len(LABELS), 0.9),)))
    return results


def plain_copy(results: list[ImageResult], destination: Path) -> None:
    for result in results:
        folder = destination / result.top[0].label
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy2(result.path, folder / os.path.basename(result.path))


def timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=2000)
    parser.add_argument("--kb", type=int, default=150, help="size of each photo in KB")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        results = make_photos(root / "photos", args.photos, args.kb)
        plain = timed(lambda: plain_copy(results, root / "plain"))
        ours = timed(lambda: sort_into_folders(results, SortOptions(str(root / "sorted"))))
        again = timed(lambda: sort_into_folders(results, SortOptions(str(root / "sorted"))))
        moved = timed(lambda: sort_into_folders(results, SortOptions(str(root / "moved"), move=True)))
    megabytes = args.photos * args.kb / 1024
    print(f"{args.photos:,} photos of {args.kb} KB ({megabytes:,.0f} MB), {len(LABELS)} classes")
    print(f"plain shutil.copy2 loop     {plain:6.2f} s  {args.photos / plain:7,.0f} photos/s")
    print(f"Sort into folders (copy)    {ours:6.2f} s  {args.photos / ours:7,.0f} photos/s  {ours / plain:.2f}x plain")
    print(f"again, all already there    {again:6.2f} s  {args.photos / again:7,.0f} photos/s")
    print(f"Sort into folders (move)    {moved:6.2f} s  {args.photos / moved:7,.0f} photos/s  (one disk: renames)")


if __name__ == "__main__":
    main()
