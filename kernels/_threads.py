"""The kernels' worker threads: they wait for work by spinning, not by sleeping.

    run_shares(kernel, shares, args)   kernel(*shares[0], *args) on the calling thread and
                                       kernel(*shares[i], *args) on worker i - 1, all at once;
                                       returns when every share is done (re-raising the first
                                       error of a worker)

Why spin: a worker that sleeps between calls (a ``ThreadPoolExecutor``) must be woken by the
operating system, and on a virtual machine waking an idle CPU costs ~70 us per hand-off
(benchmarks/README.md, "Thread shares"): more than a whole layer norm or softmax of a small
model. OpenMP runtimes (torch's pool, numba's ``prange``) avoid it by letting idle workers spin
for a while; this module does the same for the serial ``@njit(nogil=True)`` kernels that
``_dispatch.parallel_items`` splits.

How a hand-off goes, and why the GIL never stands in the way:

1. The caller stores the task (a Python tuple) and, per worker, a new sequence number in
   ``flags[w, POSTED]``, then calls its own share: entering the nogil kernel releases the GIL.
2. Worker w spins in ``_wait_for_post`` (compiled, nogil) until its POSTED slot changes. It
   then keeps spinning GRACE_US more, so that the caller has released the GIL by the time the
   worker needs it to read the task: a worker that finds the GIL taken sleeps in CPython's GIL
   wait, and waking it costs the same ~70 us.
3. The worker calls its share (nogil), then calls ``_wait_for_post`` again, which first marks
   ``flags[w, DONE]`` with the task's number (an atomic release store, so the share's writes
   are visible before it) and spins for the next task.
4. The caller, after its own share, spins in ``_wait_for_done`` (nogil) until every posted
   worker's DONE slot holds the number.

A worker that sees no task for SPIN_US goes to sleep on a ``threading.Event`` (the next post
wakes it, paying the ~70 us once), so idle processes do not burn a core; ``nap()`` sends
spinning workers to sleep at once, before work that other threads need the cores for
(OpenBLAS's own threads: kernels/_blas.py). Spinning uses the
CPU's pause instruction on x86 (``llvm.x86.sse2.pause``). Durations are counted in loop
iterations, calibrated once against ``time.perf_counter``.

One caller at a time: a second Python thread that asks while a hand-off is in flight runs its
shares one after another on its own thread (same results, no speed-up), as does every call
under NUMBA_DISABLE_JIT (the waiting loops exist only compiled). A forked child starts new
workers; so does a call with more shares than there are workers, and the old ones end.
"""
import os
import platform
import threading
import time

import numpy as np
from llvmlite import ir
from numba import config, njit, types
from numba.core import cgutils
from numba.extending import intrinsic

SPIN_US = 200.0         # how long an idle worker spins before it sleeps
GRACE_US = 2.0          # extra spin after a post, while the caller releases the GIL
POSTED, DONE, NAP = 0, 8, 9   # columns of a worker's row of flags (POSTED and DONE 64 bytes
                              # apart: no false sharing)
_ROW = 16               # int64 per worker row (two cache lines)
_IS_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")


# ---------------------------------------------------------------------------------------------
# Compiled waiting loops (nogil): atomic loads and stores, the pause instruction
# ---------------------------------------------------------------------------------------------

def _slot_pointer(context, builder, sig, args):
    aryty = sig.args[0]
    ary = context.make_array(aryty)(context, builder, args[0])
    return cgutils.get_item_pointer(context, builder, aryty, ary, [args[1], args[2]])


@intrinsic
def _load_acquire(typingctx, flags, row, col):
    """flags[row, col] read with acquire ordering (never hoisted out of a loop)."""
    if not (isinstance(flags, types.Array) and flags.dtype == types.int64 and flags.ndim == 2):
        return None

    def codegen(context, builder, sig, args):
        return builder.load_atomic(_slot_pointer(context, builder, sig, args), "acquire", 8)
    return types.int64(flags, row, col), codegen


@intrinsic
def _store_release(typingctx, flags, row, col, value):
    """flags[row, col] = value with release ordering (earlier writes become visible first)."""
    if not (isinstance(flags, types.Array) and flags.dtype == types.int64 and flags.ndim == 2):
        return None

    def codegen(context, builder, sig, args):
        val = context.cast(builder, args[3], sig.args[3], types.int64)
        builder.store_atomic(val, _slot_pointer(context, builder, sig, args), "release", 8)
        return context.get_dummy_value()
    return types.void(flags, row, col, value), codegen


@intrinsic
def _pause(typingctx):
    """The x86 pause instruction (a hint that this is a spin loop); nothing elsewhere."""
    def codegen(context, builder, sig, args):
        if _IS_X86:
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse2.pause")
            builder.call(fn, [])
        return context.get_dummy_value()
    return types.void(), codegen


@njit(cache=True, nogil=True)
def _wait_for_post(flags, w, seen, max_spins, grace_spins):
    """Mark worker w's task ``seen`` done, then spin until its POSTED slot differs from
    ``seen`` (and grace_spins more), its NAP slot is set, or max_spins pass. Returns the
    POSTED slot's value."""
    _store_release(flags, w, DONE, seen)
    for _ in range(max_spins):
        posted = _load_acquire(flags, w, POSTED)
        if posted != seen:
            for _ in range(grace_spins):
                _pause()
            return posted
        if _load_acquire(flags, w, NAP) != 0:
            break
        _pause()
    return _load_acquire(flags, w, POSTED)


@njit(cache=True, nogil=True)
def _wait_for_done(flags, n_workers, seq, max_spins):
    """Spin until flags[w, DONE] == seq for every w < n_workers, at most max_spins; returns
    whether they all are."""
    for _ in range(max_spins):
        w = 0
        while w < n_workers and _load_acquire(flags, w, DONE) == seq:
            w += 1
        if w == n_workers:
            return True
        _pause()
    return False


def _spins_per_us():
    """Iterations of the waiting loop per microsecond on this machine (measured once)."""
    flags = np.zeros((1, _ROW), np.int64)
    _wait_for_done(flags, 1, 1, 10)                       # compile / load from the cache
    n = 20000
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        _wait_for_done(flags, 1, 1, n)                    # never done: spins n times
        best = min(best, time.perf_counter() - t)
    return max(1.0, n / (best * 1e6))


# ---------------------------------------------------------------------------------------------
# The workers
# ---------------------------------------------------------------------------------------------

_yield_cpu = getattr(os, "sched_yield", None) or (lambda: time.sleep(0))


class _Workers:
    def __init__(self, n):
        rate = _spins_per_us()
        self.max_spins = max(1, int(SPIN_US * rate))
        self.grace_spins = int(GRACE_US * rate)
        self.flags = np.zeros((n, _ROW), np.int64)
        self.seq = 0
        self.task = None
        self.errors = [None] * n
        self.asleep = [False] * n
        self.wake = [threading.Event() for _ in range(n)]
        self.lock = threading.Lock()
        self.pid = os.getpid()
        self.closed = False
        for w in range(n):
            threading.Thread(target=self._work, args=(w,), daemon=True,
                             name=f"tinygrad_llm_kernel_{w}").start()

    def nap(self):
        """Spinning workers leave their spin and sleep (see the module function)."""
        self.flags[:, NAP] = 1

    def close(self):
        """Let the threads end (the pool is replaced by a bigger one): they leave their spin,
        wake and return. Call with the workers idle (their lock held)."""
        self.closed = True
        self.nap()
        for event in self.wake:
            event.set()

    def _work(self, w):
        seen = 0
        while not self.closed:
            posted = _wait_for_post(self.flags, w, seen, self.max_spins, self.grace_spins)
            if posted == seen:                   # nothing came: sleep until a post wakes us
                self.flags[w, NAP] = 0
                self.asleep[w] = True
                if self.flags[w, POSTED] == seen:
                    self.wake[w].wait()
                self.wake[w].clear()
                self.asleep[w] = False
                continue
            seen = posted
            self._run_share(w)

    def _run_share(self, w):
        """Worker w's share of the posted task (a function of its own, so that the task's
        arrays are not kept alive by the worker's locals once it is done)."""
        kernel, shares, args = self.task
        try:
            kernel(*shares[w + 1], *args)
        except BaseException as e:               # reported by the caller; the worker lives on
            self.errors[w] = e

    def run(self, kernel, shares, args):
        n_posted = len(shares) - 1
        self.seq += 1
        self.task = (kernel, shares, args)
        for w in range(n_posted):
            self.flags[w, POSTED] = self.seq
            if self.asleep[w]:
                self.wake[w].set()
        try:
            kernel(*shares[0], *args)
        finally:
            while not _wait_for_done(self.flags, n_posted, self.seq, self.max_spins):
                _yield_cpu()                     # more threads than cores: let the worker run
            self.task = None
            errors = [e for e in self.errors if e is not None]
            self.errors = [None] * len(self.errors)
        if errors:
            raise errors[0]


_workers = None


def nap():
    """Make spinning workers sleep now: called before work that other threads will run (a
    product on OpenBLAS's own threads), so that no worker of ours spins on the cores they
    need. The next split wakes them (one slow hand-off)."""
    workers = _workers
    if workers is not None:
        workers.nap()


def run_shares(kernel, shares, args):
    """kernel(*share, *args) for every share at once: the first on this thread, the others on
    the workers (started on first use, more when more shares are asked for)."""
    global _workers
    if config.DISABLE_JIT:
        for share in shares:
            kernel(*share, *args)
        return
    if (_workers is None or len(_workers.flags) < len(shares) - 1
            or _workers.pid != os.getpid()):
        old = _workers
        if old is not None and old.pid == os.getpid() and old.lock.acquire(blocking=False):
            old.close()                 # (a forked child has none of the old threads)
            old.lock.release()
        _workers = _Workers(len(shares) - 1)
    workers = _workers
    if not workers.lock.acquire(blocking=False):      # another thread is mid-hand-off
        for share in shares:
            kernel(*share, *args)
        return
    try:
        workers.run(kernel, shares, args)
    finally:
        workers.lock.release()
