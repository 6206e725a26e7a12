"""Work on a few threads whose results are wanted in order: the folder scan's checks, thumbnails."""
from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from engine.events import CancelToken

Item = TypeVar("Item")
Result = TypeVar("Result")


def ordered_on_threads(
    function: Callable[[Item], Result], items: Iterable[Item], threads: int, ahead: int, cancel: CancelToken,
    name: str,
) -> Iterator[Result]:
    """`function` of each item in the items' order, run on `threads` threads (decoders and file reads release the
    GIL) with at most `ahead` items started before the one awaited. Cancelling waits for none: those running finish
    on their own, the rest never start."""
    left = iter(items)
    pool = ThreadPoolExecutor(threads, thread_name_prefix=name)
    try:
        pending = deque(pool.submit(function, item) for item in itertools.islice(left, ahead))
        while pending:
            cancel.check()
            result = pending.popleft().result()
            pending.extend(pool.submit(function, item) for item in itertools.islice(left, 1))
            yield result
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
