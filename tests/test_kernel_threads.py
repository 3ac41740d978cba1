"""The kernels' spinning worker threads (kernels/_threads.py): every share runs exactly once,
errors reach the caller, and the pool survives sleeping, concurrent callers and fork."""
import multiprocessing
import os
import threading
import time

import numpy as np
import pytest
from numba import njit

from tinygrad_llm.kernels import _dispatch as D
from tinygrad_llm.kernels import _threads


@njit(nogil=True, cache=True)
def _count_items(first, stop, step, hits):
    for i in range(first, stop, step):
        hits[i] += 1


@njit(nogil=True, cache=True)
def _fail_on(first, stop, step, hits, bad):
    for i in range(first, stop, step):
        if i == bad:
            raise ValueError("item failed")
        hits[i] += 1


def _shares(n_items, nt):
    bounds = [n_items * t // nt for t in range(nt + 1)]
    return [(bounds[t], bounds[t + 1], 1) for t in range(nt)]


def _run_counting(n_items, nt):
    hits = np.zeros(n_items, np.int64)
    _threads.run_shares(_count_items, _shares(n_items, nt), (hits,))
    return hits


@pytest.mark.parametrize("nt", [2, 3, 5])
def test_every_item_runs_exactly_once(nt):
    for n_items in (1, 7, 64, 1000):
        for _ in range(20):
            hits = _run_counting(n_items, nt)
            np.testing.assert_array_equal(hits, np.ones(n_items, np.int64))


def test_interleaved_shares_through_parallel_items(monkeypatch):
    monkeypatch.setattr(D, "num_threads", lambda: 3)
    hits = np.zeros(100, np.int64)
    D.parallel_items(_count_items, 100, hits, interleave=True)
    np.testing.assert_array_equal(hits, np.ones(100, np.int64))


def test_shares_run_on_distinct_threads_at_once():
    """Each share waits until all three have started: only threads running at the same
    time get past the barrier (a serial fallback would time out)."""
    barrier = threading.Barrier(3, timeout=30)
    seen = {}

    def kernel(first, stop, step):
        seen[first] = threading.get_ident()
        barrier.wait()
    _threads.run_shares(kernel, _shares(3, 3), ())
    assert len(set(seen.values())) == 3
    assert seen[0] == threading.get_ident()            # the caller runs the first share


def test_without_the_jit_the_shares_run_one_after_another(monkeypatch):
    monkeypatch.setattr(_threads.config, "DISABLE_JIT", True)
    order = []
    _threads.run_shares(lambda first, stop, step: order.append(first), _shares(9, 3), ())
    assert order == [0, 3, 6]


def test_workers_that_went_to_sleep_are_woken():
    _run_counting(10, 2)
    time.sleep(max(0.01, 20 * _threads.SPIN_US * 1e-6))     # past the spin: workers sleep
    assert any(_threads._workers.asleep)
    for _ in range(3):
        np.testing.assert_array_equal(_run_counting(10, 2), np.ones(10, np.int64))
        time.sleep(0.005)


def test_a_workers_error_reaches_the_caller_and_the_pool_goes_on():
    hits = np.zeros(10, np.int64)
    with pytest.raises(ValueError, match="item failed"):
        _threads.run_shares(_fail_on, _shares(10, 2), (hits, 7))    # 7 is in the worker's share
    assert hits[:5].tolist() == [1] * 5                               # the caller's share ran
    np.testing.assert_array_equal(_run_counting(10, 2), np.ones(10, np.int64))


def test_the_callers_error_waits_for_the_workers_and_leaves_no_stale_error():
    hits = np.zeros(10, np.int64)
    with pytest.raises(ValueError, match="item failed"):
        _threads.run_shares(_fail_on, _shares(10, 2), (hits, 2))    # in the caller's share
    assert hits[5:].tolist() == [1] * 5                               # the worker finished
    np.testing.assert_array_equal(_run_counting(10, 2), np.ones(10, np.int64))


def test_concurrent_callers_all_get_their_results():
    errors = []

    def caller():
        try:
            for _ in range(200):
                np.testing.assert_array_equal(_run_counting(33, 2), np.ones(33, np.int64))
        except BaseException as e:     # reported below
            errors.append(e)
    threads = [threading.Thread(target=caller) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def _child_result(conn):
    conn.send(_run_counting(50, 2).tolist())
    conn.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_starts_its_own_workers():
    _run_counting(50, 2)                               # the parent's workers exist
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_child_result, args=(child,))
    proc.start()
    assert parent.poll(60), "the child did not answer"
    assert parent.recv() == [1] * 50
    proc.join(10)
    assert proc.exitcode == 0


def test_the_workers_keep_no_reference_to_a_finished_tasks_arrays():
    import weakref
    hits = np.zeros(64, np.int64)
    alive = weakref.ref(hits)
    _threads.run_shares(_count_items, _shares(64, 2), (hits,))
    del hits
    assert alive() is None        # freed at once: the memory returns while the workers spin


def test_split_kernels_leave_numbas_openmp_layer_unstarted():
    """Reading the thread count must not start numba's threading layer (GNU OpenMP by
    default), which slows a torch imported afterwards ~100x (kernels/_dispatch.num_threads)."""
    import subprocess
    import sys
    code = "\n".join([
        "import numpy as np",
        "import numba.np.ufunc.parallel as p",
        "from tinygrad_llm.kernels import _dispatch as D, softmax",
        "x = np.random.default_rng(0).standard_normal((512, 512)).astype(np.float32)",
        "softmax.softmax_forward(x)",
        "assert D.num_threads() == 2, D.num_threads()",
        "assert not p._is_initialized, 'started'",
        "import numba; numba.set_num_threads(1)",
        "assert D.num_threads() == 1, D.num_threads()",
    ])
    env = dict(os.environ, NUMBA_NUM_THREADS="2")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=300, cwd=os.path.dirname(os.path.abspath(__file__)))
    assert r.returncode == 0, r.stderr[-2000:]


def test_nap_sends_spinning_workers_to_sleep_and_the_next_split_wakes_them(monkeypatch):
    _run_counting(10, 2)
    workers = _threads._workers
    monkeypatch.setattr(workers, "max_spins", 1 << 50)      # would spin for days
    _run_counting(10, 2)                                     # now spinning with that budget
    time.sleep(0.01)
    assert not workers.asleep[0]
    _threads.nap()
    deadline = time.monotonic() + 10
    while not workers.asleep[0] and time.monotonic() < deadline:
        time.sleep(0.001)
    assert workers.asleep[0]
    monkeypatch.undo()                                       # the usual budget again ...
    np.testing.assert_array_equal(_run_counting(10, 2), np.ones(10, np.int64))
    _threads.nap()                                           # ... and no long spin left over


def test_a_pool_grown_for_more_shares_lets_the_old_threads_end():
    _run_counting(10, 2)
    old = [t for t in threading.enumerate() if t.name.startswith("tinygrad_llm_kernel")]
    want = len(_threads._workers.flags) + 2                  # more shares than workers
    np.testing.assert_array_equal(_run_counting(40, want), np.ones(40, np.int64))
    for t in old:
        t.join(10)
        assert not t.is_alive()
    np.testing.assert_array_equal(_run_counting(40, want), np.ones(40, np.int64))
