"""DistributedDataParallel: one model replica per rank, gradients averaged during backward.

At construction every rank checks that its parameters have the same names, shapes and dtypes
as rank 0's (an error names the first one that differs), then takes rank 0's parameter and
buffer values (broadcast), so every replica starts identical.

During backward the gradients are averaged in buckets, as PyTorch does:

    bucket  = consecutive parameters in REVERSE registration order (the order backward
              produces their gradients), up to bucket_cap_mb megabytes, one dtype each
    hook    = Tensor.register_post_accumulate_grad_hook: when a parameter's gradient is
              complete, copy it into its bucket's flat buffer
    launch  = when all of a bucket's gradients are in, start a non-blocking all-reduce (sum)
              of the flat buffer; buckets start strictly in order, so every rank issues the
              same collectives in the same order
    finish  = after the last bucket starts: wait for all (watchdog), divide by world size,
              copy the averages back into each .grad

so the all-reduce of late layers overlaps the backward pass of early layers. The mean of the
per-rank mean losses' gradients equals the gradient of the mean loss over the global batch,
so N ranks with batch B step exactly like one process with batch N*B (up to summation order).

A parameter that got no gradient on some rank (unused in its forward) leaves its bucket
incomplete: ``finish_gradient_sync()`` then contributes zeros for it and finishes. The training
loop calls it before clipping and ``optimizer.step()``; it costs nothing when backward already
finished the sync. ``no_sync()`` skips the averaging for gradient-accumulation micro-batches.
"""
import contextlib
import threading
import time

import numpy as np

from .. import autograd, backend
from ..nn.module import Module
from . import process_group as pg
from .faults import DistributedError


def plan_buckets(nbytes, keys, cap_bytes):
    """Split parameters (given in the order buckets should fill) into buckets.

    ``nbytes[i]`` is parameter i's gradient size, ``keys[i]`` its (dtype, device): a bucket
    holds one key only and closes when adding the next parameter would pass ``cap_bytes``
    (a parameter larger than the cap gets a bucket of its own). Returns lists of indices.
    """
    if cap_bytes <= 0:
        raise ValueError(f"bucket cap must be positive, got {cap_bytes} bytes")
    buckets, current, size, key = [], [], 0, None
    for i, (n, k) in enumerate(zip(nbytes, keys)):
        if current and (k != key or size + n > cap_bytes):
            buckets.append(current)
            current, size = [], 0
        current.append(i)
        size += n
        key = k
    if current:
        buckets.append(current)
    return buckets


class _Bucket:
    def __init__(self, params, xp):
        self.params = params
        self.sizes = [p.data.size for p in params]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(int)
        self.flat = xp.empty(int(self.offsets[-1]), dtype=params[0].dtype)
        self.seen = [False] * len(params)
        self.pending = len(params)
        self.work = None

    def view(self, i):
        start, stop = self.offsets[i], self.offsets[i + 1]
        return self.flat[start:stop].reshape(self.params[i].data.shape)

    def reset(self):
        self.seen = [False] * len(self.params)
        self.pending = len(self.params)
        self.work = None


class DistributedDataParallel(Module):
    """Wrap ``module`` for data-parallel training (see the module docstring).

    ``bucket_cap_mb``: bucket size in MiB (PyTorch's default 25). ``overlap=False`` starts the
    all-reduces only after the whole backward pass (for measuring what the overlap hides).
    MPI advances a non-blocking collective only inside MPI calls: the gradient hooks test the
    oldest running all-reduce; ``progress_thread=True`` adds a thread that tests it every
    0.2 ms during backward (off by default: on this 2-core machine it measured no gain).
    The wrapped model is ``ddp.module`` (save its state_dict, not the wrapper's).
    """

    def __init__(self, module, bucket_cap_mb=25.0, broadcast_buffers=True, process_group=None,
                 overlap=True, progress_thread=False):
        super().__init__()
        self.module = module
        self.process_group = process_group if process_group is not None else pg.group()
        self.overlap = bool(overlap)
        self._poller = _Poller() if progress_thread and overlap else None
        self.bucket_cap_mb = float(bucket_cap_mb)
        check_same_parameters(self.process_group, module)
        broadcast_state(self.process_group, module, buffers=broadcast_buffers)
        params = [p for p in module.parameters() if p.requires_grad]
        params.reverse()           # backward produces the last layers' gradients first
        buckets = plan_buckets([p.data.nbytes for p in params],
                               [(p.data.dtype, backend.device_of(p.data)) for p in params],
                               int(self.bucket_cap_mb * 2 ** 20))
        self._buckets = [_Bucket([params[i] for i in idx], backend.get_array_module(
            params[idx[0]].data)) for idx in buckets]
        self._where = {id(p): (b, i) for b, bucket in enumerate(self._buckets)
                       for i, p in enumerate(bucket.params)}
        self._handles = [p.register_post_accumulate_grad_hook(self._on_grad) for p in params]
        self._sync = True          # False inside no_sync()
        self._armed = False        # a forward with sync ran: its backward averages gradients
        self._next = 0             # index of the next bucket to start
        self._finished = False     # this forward's averaging is done (more grads: an error)
        # syncs done, seconds spent waiting for all-reduces after backward, gradient bytes
        # per sync, and of those the bytes already averaged when backward ended (summed);
        # when the last finish began (time.perf_counter)
        self.stats = {"syncs": 0, "wait_s": 0.0, "last_finish_at": None,
                      "bytes": sum(b.flat.nbytes for b in self._buckets),
                      "bytes_done_in_backward": 0}

    @property
    def num_buckets(self):
        return len(self._buckets)

    def bucket_parameter_names(self):
        """The parameter names of each bucket, in launch order (for tests and curiosity)."""
        names = {id(p): n for n, p in self.module.named_parameters()}
        return [[names[id(p)] for p in b.params] for b in self._buckets]

    def forward(self, *args, **kwargs):
        self._finished = False
        if self._sync and autograd.is_grad_enabled():
            self._arm()
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """Forward/backward inside this block only accumulate local gradients (no
        communication); the next synced backward averages the accumulated sums."""
        previous, self._sync = self._sync, False
        try:
            yield
        finally:
            self._sync = previous

    def _arm(self):
        if self._armed and (self._next > 0 or any(b.pending < len(b.params)
                                                   for b in self._buckets)):
            missing = self._missing_names()
            raise DistributedError(
                f"DistributedDataParallel: the previous backward pass did not finish averaging "
                f"gradients (no gradient for {missing[:5]}{' ...' if len(missing) > 5 else ''})"
                f": call ddp.finish_gradient_sync() after backward and before the optimizer "
                f"step")
        for bucket in self._buckets:
            bucket.reset()
        self._next = 0
        self._armed = True

    def _missing_names(self):
        names = {id(p): n for n, p in self.module.named_parameters()}
        return [names[id(p)] for b in self._buckets for p, s in zip(b.params, b.seen) if not s]

    def _on_grad(self, param):
        b, i = self._where[id(param)]
        bucket = self._buckets[b]
        if (self._armed and bucket.seen[i]) or self._finished:
            raise DistributedError(
                "DistributedDataParallel: a parameter received a second gradient after one "
                "synced forward (backward called twice?); the ranks' gradients would differ. "
                "Use no_sync() for all but the last micro-batch of an accumulation")
        if not self._armed:
            return
        view = bucket.view(i)
        view[...] = param.grad.data
        bucket.seen[i] = True
        bucket.pending -= 1
        if self.overlap:
            self._launch_ready()
            if self._poller is not None and self._next:
                self._poller.start(self._running)
            else:
                self._poll()
        if bucket.pending == 0 and all(bk.pending == 0 for bk in self._buckets[self._next:]):
            self.finish_gradient_sync()

    def _launch_ready(self):
        while self._next < len(self._buckets) and self._buckets[self._next].pending == 0:
            bucket = self._buckets[self._next]
            bucket.work = self.process_group.all_reduce(bucket.flat, "sum")
            self._next += 1

    def _running(self):
        """The oldest started all-reduce that has not completed, or None."""
        for bucket in self._buckets[:self._next]:
            if not bucket.work.is_completed():
                return bucket.work
        return None

    def _poll(self):
        """One MPI test on the oldest running all-reduce: MPICH advances non-blocking
        collectives only inside MPI calls, so the hooks give it those chances."""
        self._running()

    def finish_gradient_sync(self):
        """Complete the averaging of this step's gradients (no-op if already done or if the
        last forward ran under no_sync). Parameters that got no gradient contribute zeros."""
        if not self._armed:
            return
        for bucket in self._buckets[self._next:]:
            for i, p in enumerate(bucket.params):
                if not bucket.seen[i]:
                    view = bucket.view(i)
                    if p.grad is None:
                        view[...] = 0
                    else:
                        view[...] = p.grad.data
                    bucket.seen[i] = True
            bucket.pending = 0
        self.stats["last_finish_at"] = time.perf_counter()
        if self._poller is not None:
            self._poller.stop()           # one thread at a time may test a request
        # how much of the gradient had been averaged while backward ran (the overlap)
        self.stats["bytes_done_in_backward"] += sum(
            b.flat.nbytes for b in self._buckets[:self._next] if b.work.is_completed())
        self._launch_ready()
        world = self.process_group.size
        xp = backend.get_array_module(self._buckets[0].flat) if self._buckets else np
        start = time.perf_counter()
        for bucket in self._buckets:      # all first: the peers need our MPI calls to finish
            bucket.work.wait()
        self.stats["wait_s"] += time.perf_counter() - start
        for bucket in self._buckets:
            for i, p in enumerate(bucket.params):
                if p.grad is None:
                    from ..tensor import Tensor
                    p.grad = Tensor._wrap(bucket.view(i) / world)
                else:                     # the average, written into .grad in one pass
                    xp.divide(bucket.view(i), world, out=p.grad.data)
        self.stats["syncs"] += 1
        self._armed = False
        self._finished = True

    def remove_hooks(self):
        for handle in self._handles:
            handle.remove()
        self._handles = []


class _Poller:
    """A thread that tests the oldest running all-reduce every ``interval`` seconds while
    backward computes (NumPy releases the GIL in its kernels), so that MPI's progress engine
    moves the collectives along between the gradient hooks. It sleeps between tests: on a
    machine with as many ranks as cores, a spinning progress thread would steal the cores."""

    def __init__(self, interval=2e-4):
        self.interval = interval
        self._thread = None
        self._stop = threading.Event()

    def start(self, oldest_running):
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(oldest_running,), daemon=True,
                                        name="tinygrad-ddp-progress")
        self._thread.start()

    def _run(self, oldest_running):
        while not self._stop.wait(self.interval):
            oldest_running()

    def stop(self):
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None


def check_same_parameters(group, module):
    """Every rank's parameter names, shapes and dtypes must equal rank 0's: a DistributedError
    naming the first parameter that differs (raised on every rank)."""
    mine = [[name, list(p.shape), str(p.dtype)] for name, p in module.named_parameters()]
    everyone = pg.all_gather_object(mine, group)
    reference = everyone[0]
    for rank, theirs in enumerate(everyone[1:], start=1):
        ref_names = [r[0] for r in reference]
        names = [t[0] for t in theirs]
        if ref_names != names:
            only0 = [n for n in ref_names if n not in names]
            only_r = [n for n in names if n not in ref_names]
            if not only0 and not only_r:
                i = next(i for i, (a, b) in enumerate(zip(ref_names, names)) if a != b)
                raise DistributedError(
                    f"DistributedDataParallel: parameter #{i} is {ref_names[i]!r} on rank 0 "
                    f"but {names[i]!r} on rank {rank} (same names in a different order)")
            raise DistributedError(
                f"DistributedDataParallel: the model differs across ranks: parameters only on "
                f"rank 0: {only0[:5]}, only on rank {rank}: {only_r[:5]}")
        for ref, other in zip(reference, theirs):
            if ref != other:
                raise DistributedError(
                    f"DistributedDataParallel: parameter {ref[0]!r} has shape {tuple(ref[1])} "
                    f"{ref[2]} on rank 0 but shape {tuple(other[1])} {other[2]} on rank {rank}")


def broadcast_state(group, module, buffers=True):
    """Overwrite every parameter (and floating buffer) with rank 0's values."""
    tensors = list(module.parameters())
    if buffers:
        tensors += [b for b in module.buffers()
                    if b is not None and np.dtype(b.dtype).kind == "f"]
    for t in tensors:
        data = t.data
        if data.flags.c_contiguous and getattr(data.flags, "writeable", True):   # CuPy: none
            group.broadcast(data, 0).wait()
        else:
            xp = backend.get_array_module(data)
            buf = xp.ascontiguousarray(data).copy()
            group.broadcast(buf, 0).wait()
            data[...] = buf
