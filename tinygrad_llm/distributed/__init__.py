"""Data-parallel training over MPI (processes and machines, NumPy arrays) and NCCL (CuPy
arrays), with PyTorch's names. Start the program with ``mpiexec -n N python train.py``:

    from tinygrad_llm import distributed as dist
    dist.init_process_group("mpi")                 # or "nccl" for CuPy models
    model = dist.DistributedDataParallel(model)    # rank 0's weights on every rank
    loss = model(x, y)[1]; loss.backward()         # gradients averaged in buckets, overlapped
    model.finish_gradient_sync(); optimizer.step()

Files:
    process_group.py  init/destroy, rank and size, all_reduce, broadcast, all_gather, barrier
    mpi_group.py      the mpi backend (mpi4py non-blocking collectives)
    nccl_group.py     the nccl backend (cupy.cuda.nccl on a side stream)
    faults.py         watchdog on every wait, abort of the whole job on an unhandled error
    ddp.py            DistributedDataParallel (buckets, hooks, no_sync)
    sampler.py        DistributedSampler
    training.py       helpers for the training loop (sharded batches and validation)
"""
from .ddp import DistributedDataParallel, plan_buckets
from .faults import CollectiveTimeout, DistributedError
from .process_group import (ReduceOp, all_gather, all_gather_object, all_reduce,
                            all_reduce_scalar, barrier, broadcast, destroy_process_group,
                            get_backend, get_rank, get_world_size, init_process_group,
                            is_available, is_initialized)
from .sampler import DistributedSampler

__all__ = [
    "CollectiveTimeout", "DistributedDataParallel", "DistributedError", "DistributedSampler",
    "ReduceOp", "all_gather", "all_gather_object", "all_reduce", "all_reduce_scalar",
    "barrier", "broadcast", "destroy_process_group", "get_backend", "get_rank",
    "get_world_size", "init_process_group", "is_available", "is_initialized", "plan_buckets",
]
