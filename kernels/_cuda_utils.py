"""Shared pieces of the ``@cuda.jit`` kernels: block-wide reductions through shared memory.

No warp shuffles: numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1, used by the test suite on
machines without a GPU) has none, and a shared-memory tree costs little next to the row's
reads. Every row kernel runs one block per row with a power-of-two number of threads
(``cuda_threads_per_block``) no larger than ``TPB_MAX``, the size of the shared scratch arrays.
"""
try:
    from numba import cuda
except Exception:  # numba without a CUDA target: the kernels below are never launched
    cuda = None

TPB_MAX = 256


def cuda_jit(*args, **kwargs):
    """``numba.cuda.jit`` when available; otherwise a decorator whose kernels raise on use."""
    if cuda is not None:
        return cuda.jit(*args, **kwargs)

    def stub(fn):
        def missing(*a, **k):
            raise RuntimeError("numba.cuda is not available in this numba installation")
        return missing
    return stub


@cuda_jit(device=True)
def block_max(scratch, v):
    """Max of ``v`` over the block's threads (every thread gets it)."""
    tid = cuda.threadIdx.x
    scratch[tid] = v
    cuda.syncthreads()
    stride = cuda.blockDim.x // 2
    while stride > 0:
        if tid < stride:
            other = scratch[tid + stride]
            if other > scratch[tid]:
                scratch[tid] = other
        cuda.syncthreads()
        stride //= 2
    result = scratch[0]
    cuda.syncthreads()          # scratch is reused by the next reduction
    return result


@cuda_jit(device=True)
def block_sum(scratch, v):
    """Sum of ``v`` over the block's threads (every thread gets it)."""
    tid = cuda.threadIdx.x
    scratch[tid] = v
    cuda.syncthreads()
    stride = cuda.blockDim.x // 2
    while stride > 0:
        if tid < stride:
            scratch[tid] += scratch[tid + stride]
        cuda.syncthreads()
        stride //= 2
    result = scratch[0]
    cuda.syncthreads()
    return result
