"""An `IterableDataset` read in rounds: rows are pulled only when a round needs them."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from datasets import Dataset, IterableDataset

from .data import PromptData


class PromptStream:
    """Pulls rows from a streaming dataset as rounds need them, normalizing each chunk like a map-style dataset.

    Prompt `i` is the stream's `i`-th row (counting on through restarts when the stream runs out), so every process
    and a resumed run see the same prompt at the same index.
    """

    def __init__(self, dataset: IterableDataset, load: Callable[[Dataset], PromptData]):
        self.dataset = dataset
        self.load = load
        self.passes = 0
        self.read = 0
        self._rows: Iterator[dict] = iter(dataset)

    def _next_rows(self, n: int) -> list[dict]:
        rows: list[dict] = []
        while len(rows) < n:
            try:
                rows.append(next(self._rows))
                self.read += 1
            except StopIteration:
                if self.read == 0:
                    raise ValueError("The IterableDataset yielded no rows; pass a dataset with at least one "
                                     "prompt.") from None
                self.passes += 1
                if hasattr(self.dataset, "set_epoch"):
                    self.dataset.set_epoch(self.passes)
                self._rows = iter(self.dataset)
        return rows

    def take(self, n: int) -> PromptData:
        return self.load(Dataset.from_list(self._next_rows(n)))

    def fill(self, data: PromptData, size: int) -> None:
        """Extend `data` in place until it holds at least `size` prompts."""
        if len(data) < size:
            data.extend(self.take(size - len(data)))
