"""Special functions NumPy lacks: erf (for the exact GELU, 0.5 * x * (1 + erf(x / sqrt(2)))).

Shape legend: x and the result have any shape (elementwise).

    erf(x) = 2 / sqrt(pi) * integral_0^x exp(-t^2) dt,     d erf / dx = 2 / sqrt(pi) exp(-x^2)

Implementations: (a) reference, ``math.erf`` per element (correctly rounded libm); (b) numba
CPU: float32 uses a vectorizable rational approximation (``_fastmath.erf_fast``, max abs
error 4.2e-7 measured against math.erf on [-6, 6], a few float32 ulp near |erf| = 1), float64
uses ``math.erf`` in a compiled loop (libm, exact to ~1 ulp); (c) CUDA:
``cupyx.scipy.special.erf`` for CuPy arrays, or a ``@cuda.jit`` kernel (math.erf) for NumPy
arrays under the simulator.
"""
import math

import numpy as np
from numba import njit

from tinygrad_llm.backend import get_array_module

from . import _dispatch as D
from ._cuda_utils import cuda, cuda_jit
from ._fastmath import erf_fast


# (a) Reference --------------------------------------------------------------------------------

def erf_ref(x):
    """erf elementwise through math.erf (slow, exact). Works for NumPy; CuPy goes through host."""
    xp = get_array_module(x)
    host = D.backend.to_numpy(x)
    flat = np.fromiter((math.erf(float(v)) for v in host.reshape(-1)), dtype=np.float64,
                       count=host.size)
    return xp.asarray(flat.reshape(host.shape).astype(x.dtype))


# (b) Numba CPU ---------------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def _erf_cpu(first, stop, step, x, out, chunk):
    """Flat x, out (M,); work items are chunks of ``chunk`` elements; out overwritten."""
    m = x.shape[0]
    for k in range(first, stop, step):
        lo, hi = k * chunk, min((k + 1) * chunk, m)
        xb, ob = x[lo:hi], out[lo:hi]        # a range(n) loop vectorizes, range(lo, hi) not
        for i in range(xb.size):
            ob[i] = erf_fast(xb[i])


# (c) CUDA --------------------------------------------------------------------------------------

@cuda_jit
def _erf_cuda(x, out):
    i = cuda.grid(1)
    if i < x.shape[0]:
        out[i] = math.erf(x[i])


# Public API ------------------------------------------------------------------------------------

_CHUNK = 16384


def erf(x, *, out=None, impl="auto"):
    """erf(x) elementwise for float32/float64 x of any shape. out: optional buffer, overwritten.

    Returns an array of x's shape and dtype.
    """
    xp = get_array_module(x)
    D.check_float([("x", x)])
    which = D.choose_impl(x, out, impl=impl)
    out = D.prepare_out(out, "out", x.shape, x.dtype, xp)
    if x.size == 0:
        return out
    if which == "ref":
        return D.write_into(out, erf_ref(x))
    flat = D.contiguous(xp, x).reshape(-1)
    res = out.reshape(-1) if out.flags.c_contiguous else xp.empty_like(flat)
    if which == "cpu":
        n_chunks = -(-flat.size // _CHUNK)
        D.parallel_items(_erf_cpu, n_chunks, flat, res, _CHUNK, min_items_per_thread=2)
    elif D.backend.is_cupy_array(flat):
        D.backend.cupy_special().erf(flat, out=res)
    else:                                                  # NumPy arrays under the simulator
        tpb = D.cuda_threads_per_block()
        _erf_cuda[-(-flat.size // tpb), tpb](flat, res)
    return D.write_into(out, res.reshape(x.shape))
