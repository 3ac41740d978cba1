"""kernels/_buffer_pool.py: large kernel outputs reuse memory, but never memory still in use."""
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_llm as tg
import tinygrad_llm.functional as F
from tinygrad_llm.kernels import _buffer_pool as pool
from tinygrad_llm.kernels import _dispatch as D

BIG = pool.MIN_BYTES


pytestmark = pytest.mark.usefixtures("fresh_pool")      # conftest.py


def test_a_free_buffer_is_reused_and_a_held_one_is_not():
    a = pool.take(BIG)
    address = a.ctypes.data
    b = pool.take(BIG)                       # a is still held: b must be other memory
    assert not np.shares_memory(a, b)
    del a
    c = pool.take(BIG)
    assert c.ctypes.data == address          # a's memory, now free, comes back
    assert not np.shares_memory(b, c)


def test_views_keep_their_buffer_in_use():
    view = D.empty((BIG // 8,), np.float64)[3:]   # a slice of a view of a pooled buffer
    view[:] = 7.0
    others = [D.empty((BIG // 8,), np.float64) for _ in range(3)]
    for o in others:
        assert not np.shares_memory(view, o)
        o[:] = -1.0
    assert (view == 7.0).all()


def test_small_and_disabled_takes_are_plain_arrays():
    small = pool.take(BIG - 1)
    assert pool.pooled_bytes() == 0 and small.nbytes == BIG - 1
    pool.set_enabled(False)
    a = pool.take(BIG)
    del a
    assert pool.pooled_bytes() == 0


def test_unused_sizes_are_dropped_after_the_window(monkeypatch):
    monkeypatch.setattr(pool, "WINDOW", 3)
    pool.take(BIG)                            # size BIG, then three takes of another size
    for _ in range(3):
        pool.take(BIG + 64)
    assert pool.pooled_bytes() == BIG + 64


def test_the_pool_stays_under_max_bytes(monkeypatch):
    monkeypatch.setattr(pool, "MAX_BYTES", 3 * BIG)
    for k in range(10):
        pool.take(BIG + 64 * k)
    assert pool.pooled_bytes() <= 3 * BIG


def test_at_most_per_size_buffers_of_one_size(monkeypatch):
    monkeypatch.setattr(pool, "PER_SIZE", 2)
    held = [pool.take(BIG) for _ in range(5)]
    assert pool.pooled_bytes() == 2 * BIG
    assert len({a.ctypes.data for a in held}) == 5      # all distinct memory


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 2), st.integers(0, 7)), max_size=40))
def test_live_buffers_never_share_memory(ops):
    """A random program of takes (of three sizes) and drops: every buffer still held has its
    own memory, and the value written into it survives all later takes."""
    run_program([(drop, BIG + 4096 * size, slot) for drop, size, slot in ops])


def run_program(ops):
    """Takes of (drop, nbytes, slot): drop the buffer in slot, or take nbytes into it; after
    each take every live buffer keeps its value and no two share memory."""
    pool.clear()
    live = {}
    for n, (drop, nbytes, slot) in enumerate(ops):
        if drop:
            live.pop(slot, None)
            continue
        a = pool.take(nbytes)
        a[:] = n % 251
        live[slot] = (a, n % 251)
        for b, value in live.values():
            assert (b == value).all()
        arrays = [b for b, _ in live.values()]
        for i in range(len(arrays)):
            for j in range(i):
                assert not np.shares_memory(arrays[i], arrays[j])


def test_a_free_larger_buffer_serves_a_smaller_take():
    big = pool.take(4 * BIG)
    start = big.ctypes.data
    del big
    small = pool.take(2 * BIG)               # no free buffer of its size: the idle one lends
    assert small.ctypes.data == start and small.nbytes == 2 * BIG
    assert pool.pooled_bytes() == 4 * BIG    # nothing new mapped


def test_a_much_larger_free_buffer_is_not_lent():
    big = pool.take((pool.SPARE_RATIO + 1) * BIG)
    address = big.ctypes.data
    del big
    small = pool.take(BIG)
    assert small.ctypes.data != address
    assert pool.pooled_bytes() == (pool.SPARE_RATIO + 2) * BIG


def test_a_lent_buffer_is_in_use_until_its_borrower_is_gone():
    big = pool.take(4 * BIG)
    del big
    lent = pool.take(3 * BIG)
    lent[:] = 5
    again = pool.take(3 * BIG)
    whole = pool.take(4 * BIG)
    for other in (again, whole):
        assert not np.shares_memory(lent, other)
        other[:] = 9
    assert (lent == 5).all()
    address = lent.ctypes.data
    del lent
    del again, whole
    assert pool.take(4 * BIG).ctypes.data == address      # free again once all are gone


def test_a_gradient_in_a_lent_buffer_is_private_only_when_alone():
    from tinygrad_llm.kernels import fastnp
    big = pool.take(4 * BIG)
    del big
    g = D.empty((3 * BIG // 4,), np.float32)                  # lent from the idle buffer
    assert fastnp.memory_is_private(g)
    other = g[1:]
    assert not fastnp.memory_is_private(g)
    del other
    assert fastnp.memory_is_private(g)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.sampled_from([1, 2, 3, 4, 9]),
                          st.integers(0, 7)), max_size=40))
def test_live_buffers_never_share_memory_across_sizes(ops):
    """As above with sizes 1 to 9 times BIG, so that idle larger buffers are lent to smaller
    takes (and some are too large to be lent)."""
    run_program([(drop, times * BIG, slot) for drop, times, slot in ops])


def test_threads_never_get_the_same_buffer():
    got, barrier = [], threading.Barrier(4)

    def worker():
        barrier.wait()
        for _ in range(50):
            got.append(pool.take(BIG))       # all kept alive: all must be distinct

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({a.ctypes.data for a in got}) == len(got) == 200


def test_outputs_of_repeated_ops_stay_intact():
    x = tg.randn(512, 256, requires_grad=True)       # 512 KiB outputs: pooled
    y1 = F.layer_norm(x, 256)
    first = y1.data.copy()
    y2 = F.layer_norm(x * 2, 256)                     # same shape while y1 is alive
    assert not np.shares_memory(y1.data, y2.data)
    np.testing.assert_array_equal(y1.data, first)
    (y1.sum() + y2.sum()).backward()
    np.testing.assert_array_equal(y1.data, first)
