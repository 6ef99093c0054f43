"""RoundSchedule arithmetic: coverage per epoch, equal work per rank, round sizes and resume offsets."""

import pytest

from ail_trainer.schedule import RoundSchedule


def schedules(n, batch, world, accum=1, steps=None, seed=0):
    return [RoundSchedule(n, batch, accum, world, rank, seed, generation_steps=steps) for rank in range(world)]


@pytest.mark.parametrize("n, batch, world, accum", [(10, 2, 1, 1), (10, 2, 2, 1), (37, 4, 3, 2), (8, 8, 2, 1)])
def test_every_prompt_once_per_epoch_and_every_rank_equal(n, batch, world, accum):
    ranks = schedules(n, batch, world, accum)
    for epoch in (0, 1):
        for s in ranks:
            s.set_epoch(epoch)
        per_rank = [[i for micro in s for (i, _, _) in micro] for s in ranks]
        assert len({len(p) for p in per_rank}) == 1  # same number of prompts (and micro-batches) everywhere
        seen = [i for p in per_rank for i in p]
        assert set(seen) == set(range(n))
        assert len(seen) - n < batch * world  # only the last global batch wraps around
    assert ranks[0].order(0).tolist() != ranks[0].order(1).tolist()  # reshuffled per epoch


def test_rounds_cover_exactly_generation_steps():
    s = schedules(40, 2, 2, accum=2, steps=3)[0]
    assert (s.micro_per_epoch, s.steps_per_epoch, s.rounds_per_epoch) == (10, 5, 2)
    rounds = [r for micro in s for (_, _, r) in micro[:1]]
    assert rounds == [0] * 6 + [1] * 4  # 3 steps x 2 accumulation micro-batches, then the rest
    assert len(s.round_prompts(0, 0)) == 3 * 2 * 2 * 2 and len(s.round_prompts(0, 1)) == 40 - 24


def test_round_prompts_are_the_union_of_the_ranks_prompts():
    ranks = schedules(30, 3, 2, steps=2)
    for r in range(ranks[0].rounds_per_epoch):
        union = set(ranks[0].rank_prompts(0, r)) | set(ranks[1].rank_prompts(0, r))
        assert union == set(ranks[0].round_prompts(0, r))
        assert not set(ranks[0].rank_prompts(0, r)) & set(ranks[1].rank_prompts(0, r))


def test_resume_offsets_are_deterministic():
    """A resumed run rebuilds the same schedule, so skipping k micro-batches lands on the same prompts and rounds."""
    a, b = schedules(50, 4, 1, steps=2, seed=7)[0], schedules(50, 4, 1, steps=2, seed=7)[0]
    full = list(a)
    for skip in (0, 3, 5):
        assert list(b)[skip:] == full[skip:]
    assert [r for micro in full for (_, _, r) in micro[:1]] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6]
    assert a.global_round(2, 3) == 2 * a.rounds_per_epoch + 3


def test_global_rounds_are_unique_across_epochs():
    s = schedules(20, 2, 1, steps=4)[0]
    ids = [s.global_round(e, r) for e in range(3) for r in range(s.rounds_per_epoch)]
    assert ids == list(range(len(ids)))
