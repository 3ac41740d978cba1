"""The ``nccl`` backend: the same collectives on CuPy arrays through ``cupy.cuda.nccl``.

NCCL needs every rank to hold the same 128-byte unique id before it can build its
communicator: rank 0 draws it and MPI broadcasts it (so ``mpiexec`` launches NCCL jobs too; a
world of one needs no MPI). Each collective runs on a side stream that first waits for the
compute stream (so it sees the finished gradients) and records an event when done;
``Work.wait()`` polls that event under the watchdog, then makes the compute stream wait for it.

CuPy and its NCCL bindings come from backend.py, the project's one CuPy import.
"""
import numpy as np

from .. import backend
from . import faults
from .mpi_group import Work, check_reduce_op

# NumPy dtype name -> the name of NCCL's data type constant in cupy.cuda.nccl
NCCL_DTYPES = {"int8": "NCCL_INT8", "uint8": "NCCL_UINT8", "int32": "NCCL_INT32",
               "uint32": "NCCL_UINT32", "int64": "NCCL_INT64", "uint64": "NCCL_UINT64",
               "float16": "NCCL_FLOAT16", "float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64"}
NCCL_OPS = {"sum": "NCCL_SUM", "avg": "NCCL_SUM", "max": "NCCL_MAX", "min": "NCCL_MIN",
            "product": "NCCL_PROD"}


def nccl_dtype_name(dtype):
    """The cupy.cuda.nccl constant name for a NumPy dtype; a clear error for others."""
    name = np.dtype(dtype).name
    if name not in NCCL_DTYPES:
        raise TypeError(f"NCCL cannot reduce arrays of dtype {name}; supported: "
                        f"{', '.join(NCCL_DTYPES)}")
    return NCCL_DTYPES[name]


def encode_unique_id(uid):
    """NCCL's unique id (a tuple of 128 C chars as ints) as an int8 array MPI can broadcast."""
    arr = np.asarray(uid, dtype=np.int64)
    if arr.shape != (128,) or arr.min() < -128 or arr.max() > 255:
        raise ValueError(f"an NCCL unique id is 128 chars, got shape {arr.shape}")
    return (arr & 0xFF).astype(np.uint8).view(np.int8)


def decode_unique_id(arr):
    return tuple(int(v) for v in np.asarray(arr, dtype=np.int8))


class NCCLGroup:
    """One NCCL communicator over all ranks; rank r uses GPU (local rank mod GPUs per node)."""

    name = "nccl"

    def __init__(self, timeout, mpi_comm=None):
        cupy, nccl = backend.cupy_nccl()
        self.cupy, self.nccl, self.timeout = cupy, nccl, timeout
        if mpi_comm is None:                     # a world of one: no MPI needed
            self.rank, self.size, local_rank = 0, 1, 0
        else:
            from mpi4py import MPI
            self.rank, self.size = mpi_comm.Get_rank(), mpi_comm.Get_size()
            node = mpi_comm.Split_type(MPI.COMM_TYPE_SHARED)
            local_rank = node.Get_rank()
            node.Free()
        n_gpus = cupy.cuda.runtime.getDeviceCount()
        if n_gpus < 1:
            raise RuntimeError("init_process_group(backend='nccl'): no CUDA GPU is visible")
        self.device = cupy.cuda.Device(local_rank % n_gpus)
        self.device.use()
        uid = encode_unique_id(nccl.get_unique_id()) if self.rank == 0 else \
            np.empty(128, np.int8)
        if mpi_comm is not None:
            request = mpi_comm.Ibcast(uid, root=0)
            faults.wait(request.Test, "NCCL unique id broadcast", self.rank, timeout)
        self.comm = nccl.NcclCommunicator(self.size, decode_unique_id(uid), self.rank)
        self.stream = cupy.cuda.Stream(non_blocking=True)   # the side stream of collectives

    def _check(self, array, what):
        if not isinstance(array, self.cupy.ndarray):
            raise TypeError(f"the nccl backend's {what} takes CuPy arrays, got "
                            f"{type(array).__module__}.{type(array).__name__}; use "
                            f"init_process_group(backend='mpi') for NumPy arrays")
        if not array.flags.c_contiguous:
            raise ValueError(f"{what} needs a C-contiguous array (shape {array.shape})")
        return getattr(self.nccl, nccl_dtype_name(array.dtype))

    def _launch(self, what, call, on_done=None):
        """Run ``call(stream_ptr)`` on the side stream after the compute stream's work."""
        compute = self.cupy.cuda.get_current_stream()
        self.stream.wait_event(compute.record())
        call(self.stream.ptr)
        done = self.stream.record()

        def finish():
            compute.wait_event(done)       # later kernels on the compute stream see the result
            if on_done is not None:
                on_done()
        return Work(lambda: done.done, what, self, finish)

    def all_reduce(self, array, op="sum"):
        op = check_reduce_op(op)
        dtype = self._check(array, "all_reduce")
        nccl_op = getattr(self.nccl, NCCL_OPS[op])
        on_done = None
        if op == "avg":
            if array.dtype.kind not in "fc":
                raise TypeError(f"all_reduce(avg) needs a floating array, got {array.dtype}")

            def on_done():
                array[...] /= self.size
        return self._launch(
            f"all_reduce({op}) of {array.nbytes} bytes",
            lambda s: self.comm.allReduce(array.data.ptr, array.data.ptr, array.size, dtype,
                                          nccl_op, s), on_done)

    def broadcast(self, array, src=0):
        dtype = self._check(array, "broadcast")
        if not 0 <= src < self.size:
            raise ValueError(f"src must be a rank in [0, {self.size}), got {src}")
        return self._launch(f"broadcast of {array.nbytes} bytes from rank {src}",
                            lambda s: self.comm.bcast(array.data.ptr, array.size, dtype, src, s))

    def all_gather(self, out, array):
        dtype = self._check(array, "all_gather")
        self._check(out, "all_gather")
        if out.shape != (self.size,) + array.shape or out.dtype != array.dtype:
            raise ValueError(f"all_gather output must have shape {(self.size,) + array.shape} "
                             f"and dtype {array.dtype}, got {out.shape} {out.dtype}")
        return self._launch(f"all_gather of {array.nbytes} bytes",
                            lambda s: self.comm.allGather(array.data.ptr, out.data.ptr,
                                                          array.size, dtype, s))

    def barrier(self):
        """All ranks reach this point: an all-reduce of one byte (NCCL has no barrier)."""
        one = self.cupy.zeros(1, dtype=self.cupy.uint8)
        return self.all_reduce(one, "sum")

    def destroy(self):
        self.stream.synchronize()
        self.comm.destroy()
