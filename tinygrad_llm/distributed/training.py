"""Helpers the training loop and the CLI call to run data-parallel (each works, as a no-op
or with a world of one, when no process group is initialized).

    launched_world_size()             ranks of the mpiexec job this process is in (env, no MPI)
    start(backend)                    init_process_group when launched by mpiexec -n N > 1
    same_on_every_rank(what, value)   an error naming the first rank whose value differs
    is_main_process()                 rank 0 (or no process group): logs, checkpoints, bar
    world_size(), rank()
    shard_rows(batch)                 this rank's contiguous block of a global batch's rows
    sharded_batches(get_batch)        get_batch(rng) -> this rank's share of the global batch
    mean_over_ranks(x)                a float averaged over the ranks (the logged loss)
    validation_windows(ids, T)        the whole validation stream as (x, y) windows
    evaluate_sharded(model, x, y, B)  mean loss over all windows, sharded over ranks, reduced
    unwrap(model)                     the module inside a DistributedDataParallel
    micro_batch_context(model, last)  no_sync() for all but the last micro-batch of a step
    end_of_backward(model, loss, sig) finish the gradient averaging; agree on the loss and on
                                      whether any rank was signalled (all stop after one step)

Every rank draws the same global batch from the same seeded generator and keeps its own rows
(rank r keeps rows [r*B, (r+1)*B)), so N ranks of batch B see exactly the batches of one
process with batch N*B, and a checkpoint's generator state resumes on any number of ranks.
"""
import contextlib
import os

import numpy as np

from .. import autograd
from . import process_group as pg

# what the launchers tell their processes: MPICH/Intel MPI (hydra), Open MPI, PMIx (srun)
_WORLD_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE")


def launched_world_size(environ=None):
    """How many processes the launcher (mpiexec, mpirun, srun) started, read from its
    environment variables without initializing MPI; 1 for a plain ``python`` run."""
    environ = os.environ if environ is None else environ
    for var in _WORLD_SIZE_VARS:
        value = environ.get(var, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1


def start(backend="mpi"):
    """Join the job if this process was launched as one of several (mpiexec -n N, N > 1);
    returns the world size (1, without touching MPI, for a plain run)."""
    if launched_world_size() > 1 and not pg.is_initialized():
        pg.init_process_group(backend)
    return world_size()


def same_on_every_rank(what, value):
    """Raise DistributedError (on every rank) if a JSON-able ``value`` differs from rank 0's,
    e.g. a fingerprint of the tokenized corpus that every rank built on its own."""
    if world_size() == 1:
        return
    from .faults import DistributedError
    values = pg.all_gather_object(value)
    for r, v in enumerate(values):
        if v != values[0]:
            raise DistributedError(f"{what} differs between rank 0 ({values[0]!r}) and rank "
                                   f"{r} ({v!r}): every rank must see the same input")


def world_size():
    return pg.get_world_size() if pg.is_initialized() else 1


def rank():
    return pg.get_rank() if pg.is_initialized() else 0


def is_main_process():
    return rank() == 0


def unwrap(model):
    from .ddp import DistributedDataParallel
    return model.module if isinstance(model, DistributedDataParallel) else model


def micro_batch_context(model, last):
    """Inside a step of gradient accumulation: ``model.no_sync()`` (gradients stay local) for
    every micro-batch but the last, whose backward averages the sums; a no-op otherwise."""
    if last or not hasattr(model, "no_sync"):
        return contextlib.nullcontext()
    return model.no_sync()


def end_of_backward(model, loss, signum):
    """After a step's backward on every rank: finish DDP's averaging (usually done already by
    its last hook), then agree on (the mean loss over ranks, the largest signal number any
    rank received or None), so that every rank logs the same loss and all stop after the
    same step. Two scalar all-reduces; nothing at all in a world of one."""
    finish = getattr(model, "finish_gradient_sync", None)
    if finish is not None:
        finish()
    if world_size() == 1:
        return loss, signum
    loss = pg.all_reduce_scalar(loss, pg.ReduceOp.AVG)
    agreed = int(pg.all_reduce_scalar(signum or 0, pg.ReduceOp.MAX))
    return loss, (agreed or None)


def abort_job(message, code=1):
    """End every process of the job now (after printing ``message`` here and on the other
    ranks): for errors that hit some ranks only, which would leave the others waiting."""
    handler = pg._STATE.get("faults")
    if handler is None or world_size() == 1:
        return
    handler.abort(message, notice=message, code=code)


def shard_rows(batch, rank_=None, world=None):
    """Rows [r*B, (r+1)*B) of every array/Tensor in ``batch`` (a tuple, list, dict or one
    array), B = rows / world. The global batch must split evenly."""
    rank_ = rank() if rank_ is None else rank_
    world = world_size() if world is None else world
    if world == 1:
        return batch
    if isinstance(batch, dict):
        return {k: shard_rows(v, rank_, world) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(shard_rows(v, rank_, world) for v in batch)
    from ..tensor import Tensor
    data = batch.data if isinstance(batch, Tensor) else batch
    rows = data.shape[0]
    if rows % world:
        raise ValueError(f"a global batch of {rows} rows does not split evenly over {world} "
                         f"ranks; make it a multiple of the world size")
    per = rows // world
    part = data[rank_ * per:(rank_ + 1) * per]
    return Tensor(part) if isinstance(batch, Tensor) else part


def sharded_batches(get_global_batch):
    """get_batch(rng) returning this rank's rows of ``get_global_batch(rng)``."""
    def get_batch(rng):
        return shard_rows(get_global_batch(rng))
    return get_batch


def mean_over_ranks(value):
    return pg.all_reduce_scalar(value, pg.ReduceOp.AVG) if world_size() > 1 else float(value)


def validation_windows(ids, block_size):
    """Non-overlapping (x, y) windows covering the token stream ``ids``: (n, T) each."""
    ids = np.asarray(ids, dtype=np.int64)
    n = (len(ids) - 1) // block_size
    if n < 1:
        raise ValueError(f"the validation stream has {len(ids)} tokens, too few for one window "
                         f"of block_size {block_size}")
    x = ids[:n * block_size].reshape(n, block_size)                  # (n, T)
    y = ids[1:n * block_size + 1].reshape(n, block_size)             # (n, T)
    return x, y


@autograd.no_grad()
def evaluate_sharded(model, x, y, batch_size, device="cpu"):
    """Mean next-token loss over all rows of (x, y): rank r evaluates rows r, r+R, ...;
    the sums of (loss x rows) and the row counts are summed over ranks, then divided."""
    from ..tensor import Tensor
    model = unwrap(model)
    was_training = model.training
    model.eval()
    mine = np.arange(rank(), len(x), world_size())
    total, count = 0.0, 0
    for start in range(0, len(mine), batch_size):
        rows = mine[start:start + batch_size]
        _, loss = model(Tensor(x[rows], device=device), Tensor(y[rows], device=device))
        total += float(loss.item()) * len(rows)
        count += len(rows)
    model.train(was_training)
    if world_size() > 1:
        total = pg.all_reduce_scalar(total, pg.ReduceOp.SUM)
        count = pg.all_reduce_scalar(count, pg.ReduceOp.SUM)
    return total / count
