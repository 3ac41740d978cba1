"""The ``mpi`` backend: collectives on NumPy arrays through mpi4py.

Every collective is the non-blocking MPI call (``Iallreduce``, ``Ibcast``, ``Iallgather``,
``Ibarrier``) waited for by the watchdog in faults.py, so none can hang forever. Buffers are
passed to MPI directly (mpi4py's buffer interface, no pickle); they must be C-contiguous NumPy
arrays, and they are reduced in place.
"""
import numpy as np

from . import faults

REDUCE_OPS = ("sum", "avg", "max", "min", "product")


class Work:
    """A started collective: ``is_completed()`` polls it, ``wait()`` blocks (with the watchdog)
    and then runs its finishing step (the division of an average)."""

    def __init__(self, test, what, group, on_done=None):
        self._test, self.what, self.group, self._on_done = test, what, group, on_done
        self._done = False

    def is_completed(self):
        return self._done or self._test()

    def wait(self):
        if not self._done:
            faults.wait(self._test, self.what, self.group.rank, self.group.timeout)
            if self._on_done is not None:
                self._on_done()
            self._done = True
        return True


def check_reduce_op(op):
    op = getattr(op, "value", op)
    if op not in REDUCE_OPS:
        raise ValueError(f"reduce op must be one of {REDUCE_OPS}, got {op!r}")
    return op


class MPIGroup:
    """All processes of ``mpiexec`` (MPI_COMM_WORLD, duplicated so that our collectives never
    mix with the user's own MPI traffic)."""

    name = "mpi"

    def __init__(self, timeout):
        from mpi4py import MPI
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD.Dup()
        self.fault_comm = MPI.COMM_WORLD.Dup()
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.timeout = timeout

    def _check(self, array, what):
        if type(array) is not np.ndarray:
            raise TypeError(f"the mpi backend's {what} takes NumPy arrays, got "
                            f"{type(array).__module__}.{type(array).__name__}; use "
                            f"init_process_group(backend='nccl') for CuPy arrays")
        if not array.flags.c_contiguous or not array.flags.writeable:
            raise ValueError(f"{what} needs a writable C-contiguous array (shape "
                             f"{array.shape}, strides {array.strides})")

    def _work(self, request, what, on_done=None):
        return Work(request.Test, what, self, on_done)

    def all_reduce(self, array, op="sum"):
        """Start reducing ``array`` in place over all ranks; returns a Work."""
        op = check_reduce_op(op)
        self._check(array, "all_reduce")
        mpi_op = {"sum": self.MPI.SUM, "avg": self.MPI.SUM, "max": self.MPI.MAX,
                  "min": self.MPI.MIN, "product": self.MPI.PROD}[op]
        request = self.comm.Iallreduce(self.MPI.IN_PLACE, array, op=mpi_op)
        on_done = None
        if op == "avg":
            if array.dtype.kind not in "fc":
                raise TypeError(f"all_reduce(avg) needs a floating array, got {array.dtype}")

            def on_done():
                array[...] /= self.size
        return self._work(request, f"all_reduce({op}) of {array.nbytes} bytes", on_done)

    def broadcast(self, array, src=0):
        self._check(array, "broadcast")
        self._check_rank(src, "src")
        return self._work(self.comm.Ibcast(array, root=src),
                          f"broadcast of {array.nbytes} bytes from rank {src}")

    def all_gather(self, out, array):
        """Start gathering every rank's ``array`` into ``out`` (shape (world_size, *shape))."""
        self._check(array, "all_gather")
        self._check(out, "all_gather")
        if out.shape != (self.size,) + array.shape or out.dtype != array.dtype:
            raise ValueError(f"all_gather output must have shape {(self.size,) + array.shape} "
                             f"and dtype {array.dtype}, got {out.shape} {out.dtype}")
        return self._work(self.comm.Iallgather(array, out),
                          f"all_gather of {array.nbytes} bytes")

    def barrier(self):
        return self._work(self.comm.Ibarrier(), "barrier")

    def _check_rank(self, rank, what):
        if not 0 <= rank < self.size:
            raise ValueError(f"{what} must be a rank in [0, {self.size}), got {rank}")

    def destroy(self):
        self.comm.Free()
        self.fault_comm.Free()
