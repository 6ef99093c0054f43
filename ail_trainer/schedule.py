"""Deterministic round schedule: which prompts each process trains on, and which round generates them."""

from __future__ import annotations

import math

import numpy as np
from torch.utils.data import DataLoader, Dataset


class RoundSchedule:
    """Splits each epoch's (shuffled) prompts into micro-batches per process and groups them into rounds.

    Global micro-batch `j` of an epoch holds prompts `order[j*B*W:(j+1)*B*W]` (B prompts per process, W
    processes); process `r` takes the `r`-th slice of B. The last micro-batch wraps around to the start of the
    order, so every process gets the same number of micro-batches. A round covers `generation_steps` optimizer
    steps (the whole epoch when None), and every process can compute every round's prompts.
    """

    def __init__(self, num_prompts: int, batch_size: int, grad_accum: int, world_size: int, rank: int,
                 seed: int, shuffle: bool = True, generation_steps: int | None = None, drop_last: bool = False):
        self.num_prompts = num_prompts
        self.batch_size = batch_size
        self.grad_accum = grad_accum
        self.world_size = world_size
        self.rank = rank
        self.seed = seed
        self.shuffle = shuffle
        global_batch = batch_size * world_size
        divide = math.floor if drop_last and num_prompts >= global_batch else math.ceil
        self.micro_per_epoch = max(1, divide(num_prompts / global_batch))
        self.steps_per_epoch = math.ceil(self.micro_per_epoch / grad_accum)
        self.generation_steps = generation_steps or self.steps_per_epoch
        self.rounds_per_epoch = math.ceil(self.steps_per_epoch / self.generation_steps)
        self.micro_per_round = self.generation_steps * grad_accum
        self.epoch = 0
        self._orders: dict[int, np.ndarray] = {}

    def order(self, epoch: int) -> np.ndarray:
        if epoch not in self._orders:
            if self.shuffle:
                order = np.random.default_rng(self.seed + epoch).permutation(self.num_prompts)
            else:
                order = np.arange(self.num_prompts)
            need = self.micro_per_epoch * self.batch_size * self.world_size
            self._orders = {epoch: np.resize(order, need)}  # np.resize repeats from the start
        return self._orders[epoch]

    def micro_batch(self, epoch: int, j: int, rank: int | None = None) -> list[int]:
        rank = self.rank if rank is None else rank
        start = (j * self.world_size + rank) * self.batch_size
        return self.order(epoch)[start : start + self.batch_size].tolist()

    def round_of(self, j: int) -> int:
        return j // self.micro_per_round

    def global_round(self, epoch: int, r: int) -> int:
        return epoch * self.rounds_per_epoch + r

    def _micro_range(self, r: int) -> range:
        return range(r * self.micro_per_round, min((r + 1) * self.micro_per_round, self.micro_per_epoch))

    def round_prompts(self, epoch: int, r: int) -> list[int]:
        """All processes' prompts in round `r` of `epoch`, unique, in schedule order."""
        order = self.order(epoch)
        span = self._micro_range(r)
        block = order[span.start * self.batch_size * self.world_size : span.stop * self.batch_size * self.world_size]
        return list(dict.fromkeys(block.tolist()))

    def rank_prompts(self, epoch: int, r: int) -> list[int]:
        """This process's prompts in round `r` of `epoch`."""
        return list(dict.fromkeys(i for j in self._micro_range(r) for i in self.micro_batch(epoch, j)))

    # batch-sampler protocol
    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.micro_per_epoch

    def __iter__(self):
        for j in range(self.micro_per_epoch):
            yield [(i, self.epoch, self.round_of(j)) for i in self.micro_batch(self.epoch, j)]


class _Identity(Dataset):
    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, item):
        return item


def _collate(items: list[tuple[int, int, int]]) -> dict:
    return {"prompt_idx": [i for i, _, _ in items], "epoch": items[0][1], "round": items[0][2]}


class ScheduleDataLoader(DataLoader):
    """Yields `{"prompt_idx", "epoch", "round"}` micro-batches; the trainer swaps them for winner batches."""

    def __init__(self, schedule: RoundSchedule):
        super().__init__(_Identity(schedule.num_prompts), batch_sampler=schedule, collate_fn=_collate)
        self.schedule = schedule

    def set_epoch(self, epoch: int) -> None:
        self.schedule.set_epoch(epoch)
