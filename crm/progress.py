"""Progress bars for long jobs: drawn when a person watches a terminal, silent under Celery,
cron or a pipe (tqdm disables itself when stderr is not a TTY)."""

from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress(items: Iterable[T], *, total: int | None = None, desc: str = "") -> Iterator[T]:
    yield from tqdm(items, total=total, desc=desc, disable=None, leave=False, unit="batch")
