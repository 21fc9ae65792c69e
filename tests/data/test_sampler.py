import pytest

from mldanet.data.sampler import EpochBatchSampler


def test_order_depends_only_on_seed_and_epoch():
    a = EpochBatchSampler(10, 3, seed=1)
    b = EpochBatchSampler(10, 3, seed=1)
    a.set_epoch(2)
    b.set_epoch(2)
    assert list(a) == list(b)
    b.set_epoch(3)
    assert list(a) != list(b)
    assert len(a) == 3 and all(len(batch) == 3 for batch in a)
    flat = [i for batch in a for i in batch]
    assert len(set(flat)) == 9 and set(flat) <= set(range(10))


def test_resume_skips_exactly_the_batches_already_seen():
    full = EpochBatchSampler(20, 4, seed=5)
    full.set_epoch(1)
    resumed = EpochBatchSampler(20, 4, seed=5)
    resumed.set_epoch(1, start_batch=2)
    assert list(resumed) == list(full)[2:]


def test_ranks_split_the_single_process_batches():
    single = EpochBatchSampler(16, 4, seed=0)
    ranks = [EpochBatchSampler(16, 2, seed=0, rank=r, world_size=2) for r in range(2)]
    for s in (single, *ranks):
        s.set_epoch(0)
    for full, r0, r1 in zip(single, *ranks):
        assert sorted(r0 + r1) == sorted(full)


def test_too_small_split_is_a_clear_error():
    with pytest.raises(ValueError, match="the split has 3 samples, fewer than one batch"):
        EpochBatchSampler(3, 4, seed=0)
