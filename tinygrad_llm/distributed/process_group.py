"""The default process group and PyTorch's functional collectives over it.

    init_process_group(backend="mpi" | "nccl", timeout=None)   once per process
    get_rank(), get_world_size(), get_backend(), is_initialized(), is_available()
    all_reduce(t, op=ReduceOp.SUM), broadcast(t, src), all_gather(list, t), barrier()
    destroy_process_group()

``t`` is a Tensor or an array (NumPy for "mpi", CuPy for "nccl"), changed in place. With
``async_op=True`` a collective returns its Work (``wait()``, ``is_completed()``); otherwise it
returns after the watchdog has seen it complete.
"""
import json

import numpy as np

from . import faults

_STATE = {"group": None, "faults": None}


class ReduceOp:
    """PyTorch's reduce-op names (plain strings underneath: "sum", "avg", ...)."""
    SUM = "sum"
    AVG = "avg"
    MAX = "max"
    MIN = "min"
    PRODUCT = "product"


def is_available():
    """True when mpi4py (and so an MPI library) can be imported."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def init_process_group(backend="mpi", timeout=None, handle_faults=True):
    """Join the job started by ``mpiexec`` (a single process is a world of one).

    ``timeout`` (seconds, default TINYGRAD_DIST_TIMEOUT or 300) bounds every collective wait.
    ``handle_faults`` installs the excepthook and listener of faults.py: an unhandled exception
    on any rank aborts the whole job with a message on every rank.
    """
    if _STATE["group"] is not None:
        raise RuntimeError("init_process_group was already called in this process; call "
                           "destroy_process_group() first")
    if backend not in ("mpi", "nccl"):
        raise ValueError(f"backend must be 'mpi' or 'nccl', got {backend!r}")
    timeout = faults.default_timeout() if timeout is None else float(timeout)
    if not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout}")
    if not is_available():
        if backend == "nccl":
            from .nccl_group import NCCLGroup
            _STATE["group"] = NCCLGroup(timeout)          # a world of one needs no MPI
            return _STATE["group"]
        raise ImportError("init_process_group(backend='mpi') needs mpi4py and an MPI library: "
                          "pip install -e '.[dist]' (see docs/DISTRIBUTED.md)")
    from .mpi_group import MPIGroup
    mpi = MPIGroup(timeout)
    group = mpi
    if backend == "nccl":
        from .nccl_group import NCCLGroup
        group = NCCLGroup(timeout, mpi_comm=mpi.comm)
    if handle_faults:
        handler = faults.FaultHandler(mpi.fault_comm)
        handler.install()
        _STATE["faults"] = handler
    _STATE["group"], _STATE["mpi"] = group, mpi
    return group


def destroy_process_group():
    """Leave the process group (stops the fault listener, frees the communicators)."""
    group = _STATE["group"]
    if group is None:
        return
    if _STATE["faults"] is not None:
        _STATE["faults"].uninstall()
    if group is not _STATE.get("mpi") and _STATE.get("mpi") is not None:
        _STATE["mpi"].destroy()
    group.destroy()
    _STATE.update(group=None, faults=None, mpi=None)


def is_initialized():
    return _STATE["group"] is not None


def group():
    """The default process group; a clear error before init_process_group."""
    if _STATE["group"] is None:
        raise RuntimeError("the default process group is not initialized: call "
                           "tinygrad_llm.distributed.init_process_group() first (and start the "
                           "program with mpiexec -n N)")
    return _STATE["group"]


def get_rank():
    return group().rank


def get_world_size():
    return group().size


def get_backend():
    return group().name


def _array(t, what):
    from ..tensor import Tensor
    data = t.data if isinstance(t, Tensor) else t
    if not hasattr(data, "dtype") or not hasattr(data, "shape"):
        raise TypeError(f"{what} takes a Tensor or an array, got {type(t).__name__}")
    return data


def _finish(work, async_op):
    if async_op:
        return work
    work.wait()
    return None


def all_reduce(tensor, op=ReduceOp.SUM, async_op=False):
    """Reduce ``tensor`` in place over all ranks (sum, avg, max, min or product)."""
    return _finish(group().all_reduce(_array(tensor, "all_reduce"), op), async_op)


def broadcast(tensor, src=0, async_op=False):
    """Overwrite ``tensor`` on every rank with rank ``src``'s values."""
    return _finish(group().broadcast(_array(tensor, "broadcast"), src), async_op)


def barrier(async_op=False):
    return _finish(group().barrier(), async_op)


def all_gather(tensor_list, tensor, async_op=False):
    """Fill ``tensor_list[r]`` with rank r's ``tensor`` (PyTorch's signature)."""
    g = group()
    data = _array(tensor, "all_gather")
    if len(tensor_list) != g.size:
        raise ValueError(f"all_gather needs a list of {g.size} tensors (the world size), got "
                         f"{len(tensor_list)}")
    outs = [_array(t, "all_gather") for t in tensor_list]
    for r, out in enumerate(outs):
        if out.shape != data.shape:
            raise ValueError(f"all_gather: tensor_list[{r}] has shape {out.shape}, expected "
                             f"{data.shape}")
    xp = _array_module(data)
    stacked = xp.empty((g.size,) + data.shape, dtype=data.dtype)
    work = g.all_gather(stacked, xp.ascontiguousarray(data))

    def scatter():
        for r, out in enumerate(outs):
            out[...] = stacked[r]
    work._on_done = scatter
    return _finish(work, async_op)


def _array_module(data):
    from .. import backend
    return backend.get_array_module(data)


def all_reduce_scalar(value, op=ReduceOp.AVG):
    """A Python float reduced over all ranks (the mean by default); for losses and counts."""
    g = group()
    xp = getattr(g, "cupy", np)      # the nccl group reduces CuPy arrays
    buf = xp.asarray([float(value)], dtype=np.float64)
    g.all_reduce(buf, op).wait()
    return float(buf[0])


def all_gather_object(obj, process_group=None):
    """Every rank's JSON-serializable ``obj``, as a list indexed by rank (no pickle: JSON
    bytes through two all_gathers, lengths first)."""
    g = group() if process_group is None else process_group
    xp = getattr(g, "cupy", np)
    payload = json.dumps(obj, sort_keys=True).encode("utf-8")
    lengths = xp.empty((g.size, 1), dtype=np.int64)
    g.all_gather(lengths, xp.asarray([len(payload)], dtype=np.int64)).wait()
    longest = int(lengths.max())
    mine = np.zeros(longest, dtype=np.uint8)
    mine[:len(payload)] = np.frombuffer(payload, dtype=np.uint8)
    gathered = xp.empty((g.size, longest), dtype=np.uint8)
    g.all_gather(gathered, xp.asarray(mine)).wait()
    rows = np.asarray(gathered.get() if hasattr(gathered, "get") else gathered)
    lengths = np.asarray(lengths.get() if hasattr(lengths, "get") else lengths)
    return [json.loads(rows[r, :int(lengths[r, 0])].tobytes().decode("utf-8"))
            for r in range(g.size)]
