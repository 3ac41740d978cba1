"""Fault handling: no rank may be left waiting forever for a peer that died, hung or raised.

Three mechanisms, all on MPI itself (no side channel):

1. ``wait(work, what)``: every collective is started non-blocking and waited for here, polling
   with a deadline (the watchdog). Past the deadline it raises :class:`CollectiveTimeout`,
   naming the collective, the rank and the timeout.
2. An unhandled exception on any rank (the ``sys.excepthook`` installed by
   ``init_process_group``) prints the traceback, sends a one-line notice to every other rank on
   a communicator of its own, gives them a moment to print it, and calls ``MPI_Abort``, which
   makes ``mpiexec`` end every process of the job.
3. A listener thread on every rank receives such notices: it prints
   ``[rank 0] aborting: rank 1 failed: ValueError: ...`` and aborts, even while its rank is in
   the middle of a long computation.

A rank killed by a signal is seen by ``mpiexec`` itself, which then ends the others.
"""
import os
import sys
import threading
import time

FAULT_TAG = 7177
DEFAULT_TIMEOUT = 300.0   # seconds a collective may wait before the watchdog fires


class DistributedError(RuntimeError):
    """A failure of the distributed job (a collective timed out, a peer failed, a mismatch)."""


class CollectiveTimeout(DistributedError):
    """A collective did not complete within the process group's timeout."""


def default_timeout():
    """TINYGRAD_DIST_TIMEOUT (seconds) or DEFAULT_TIMEOUT."""
    value = os.environ.get("TINYGRAD_DIST_TIMEOUT", "")
    if not value:
        return DEFAULT_TIMEOUT
    try:
        timeout = float(value)
    except ValueError:
        raise ValueError(f"TINYGRAD_DIST_TIMEOUT={value!r}: expected a number of seconds")
    if not timeout > 0:
        raise ValueError(f"TINYGRAD_DIST_TIMEOUT={value!r}: must be positive")
    return timeout


def wait(test, what, rank, timeout, spin=0.02):
    """Poll ``test()`` until it returns True; raise CollectiveTimeout after ``timeout`` s.

    For the first ``spin`` seconds it tests continuously (yielding the core between tests):
    MPI moves a collective along only inside such calls, in many small steps that need both
    ranks, so sleeping here would multiply its duration. After that it sleeps up to 1 ms
    between tests, so that a rank waiting for a slow peer leaves the core to it.
    """
    start = time.monotonic()
    deadline = start + timeout
    polls = 0
    while not test():
        polls += 1
        now = time.monotonic()
        if now > deadline:
            raise CollectiveTimeout(
                f"rank {rank}: {what} did not complete within {timeout:g} s: another rank "
                f"died, hung or skipped this collective (set TINYGRAD_DIST_TIMEOUT or "
                f"init_process_group(timeout=...) to change the limit)")
        if now - start < spin:
            os.sched_yield()
        else:
            time.sleep(min(1e-3, 1e-6 * polls))


class FaultHandler:
    """The excepthook and the listener thread of one MPI process group (see module doc)."""

    def __init__(self, comm, grace=1.0, interrupt_grace=30.0):
        from mpi4py import MPI
        self.MPI = MPI
        self.comm = comm                      # a communicator used for fault notices only
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.grace = grace                    # seconds peers get to print a notice
        self.interrupt_grace = interrupt_grace
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._previous_hook = None
        self._thread = None

    def install(self):
        self._previous_hook = sys.excepthook
        sys.excepthook = self._excepthook
        threads = self.MPI.Query_thread() >= self.MPI.THREAD_MULTIPLE
        if self.size > 1 and threads:
            self._thread = threading.Thread(target=self._listen, name="tinygrad-dist-faults",
                                            daemon=True)
            self._thread.start()

    def uninstall(self):
        if self._previous_hook is not None and sys.excepthook == self._excepthook:
            sys.excepthook = self._previous_hook
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def abort(self, message, notice=None, code=1):
        """Print ``message``, send ``notice`` to the other ranks (if given), then abort."""
        self._stop.set()
        sys.stderr.write(f"[rank {self.rank}/{self.size}] {message}\n")
        sys.stderr.flush()
        if notice is not None and self.size > 1:
            self._notify(notice)
            time.sleep(self.grace)
        else:
            time.sleep(0.2)   # mpiexec forwards output asynchronously; the abort may drop it
        self.MPI.COMM_WORLD.Abort(code)
        os._exit(code)        # MPI_Abort may return before mpiexec has ended this process

    def _notify(self, message):
        import numpy as np
        data = np.frombuffer(message.encode("utf-8")[:4000], dtype=np.uint8).copy()
        for peer in range(self.size):
            if peer != self.rank:
                self.comm.Isend([data, self.MPI.BYTE], dest=peer, tag=FAULT_TAG)

    def check(self):
        """Receive a pending fault notice, if any: returns (rank, message) or None."""
        import numpy as np
        with self._lock:
            status = self.MPI.Status()
            if not self.comm.Iprobe(source=self.MPI.ANY_SOURCE, tag=FAULT_TAG, status=status):
                return None
            data = np.empty(status.Get_count(self.MPI.BYTE), dtype=np.uint8)
            self.comm.Recv([data, self.MPI.BYTE], source=status.Get_source(), tag=FAULT_TAG)
        return status.Get_source(), data.tobytes().decode("utf-8", errors="replace")

    def _listen(self):
        while not self._stop.wait(0.05):
            notice = self.check()
            if notice is not None:
                peer, message = notice
                self.abort(f"aborting the job: rank {peer} failed with {message}")

    def _excepthook(self, kind, value, tb):
        self._previous_hook(kind, value, tb)
        if issubclass(kind, KeyboardInterrupt):
            if self.rank != 0:
                # Every rank got the Ctrl-C; rank 0 may be writing the interrupt checkpoint.
                # Its own abort ends this process; wait for it (bounded).
                sys.stderr.write(f"[rank {self.rank}/{self.size}] interrupted: waiting up to "
                                 f"{self.interrupt_grace:g} s for rank 0 to finish\n")
                sys.stderr.flush()
                self._stop.wait(self.interrupt_grace)
            self.abort("interrupted: ending the whole job", code=130)
            return
        first_line = str(value).splitlines()[0] if str(value) else ""
        notice = f"{kind.__name__}: {first_line}"
        self.abort(f"unhandled {notice} -- aborting the whole job", notice=notice)
