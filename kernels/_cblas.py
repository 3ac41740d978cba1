"""NumPy's own BLAS GEMM, callable from inside numba kernels.

    gemm(a, b, out)           out = a @ b        (2-D float32 or float64, one dtype)
    gemm(a, b, out, 1.0)      out += a @ b       (the optional 4th argument is beta)

Why: inside an ``@njit`` kernel, ``np.dot`` calls the BLAS that SciPy exports
(``scipy.linalg.cython_blas``, SciPy's bundled OpenBLAS), while NumPy's wheels bundle their
own, newer OpenBLAS, which is faster on the small per-step products of the LSTM recurrence
(benchmarks/README.md, "LSTM"). ``gemm`` also takes beta, so a kernel can accumulate
C += A B in place instead of through a temporary.

How: NumPy's ``cblas_sgemm`` / ``cblas_dgemm`` (named ``scipy_cblas_sgemm64_`` in its
``numpy.libs/libscipy_openblas64_*.so``, with 64-bit integers) is given an LLVM symbol name
with ``llvmlite.binding.add_symbol`` and declared to numba as an ``ExternalFunction``. Compiled
code refers to that name, not to an address, so numba's on-disk cache stays valid from one
process to the next: every process registers the name again when this module is imported.

Where NumPy has no bundled OpenBLAS (Accelerate, MKL, a distribution's BLAS), the same names
are bound to the numba ``cfunc`` fallbacks below, which compute the product with ``np.dot``:
the kernels then link and give the same results, at SciPy's BLAS speed.

Operands may be C-contiguous or transposed views of C-contiguous arrays (row stride or column
stride of one element), with any leading dimension; ``out`` needs contiguous rows that do not
overlap (a slice of a wider array is fine). Anything else raises ValueError.
"""
import ctypes
import glob
import os

import llvmlite.binding as llvm
import numpy as np
from numba import carray, cfunc, njit, types
from numba.core.errors import TypingError
from numba.extending import overload

from ._fastmath import as_type_of

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112     # the CBLAS enum values

_SIGNATURES = {}
for _char, _ftype in (("s", types.float32), ("d", types.float64)):
    # (order, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc); pointers as
    # 64-bit integers (the same registers as a pointer in the C calling convention)
    _SIGNATURES[_char] = types.void(
        types.int32, types.int32, types.int32, types.int64, types.int64, types.int64, _ftype,
        types.int64, types.int64, types.int64, types.int64, _ftype, types.int64, types.int64)

_SYMBOL = "tinygrad_llm_cblas_{}gemm"


def _numpy_openblas():
    """NumPy's bundled OpenBLAS (ctypes.CDLL) exporting the 64-bit-integer CBLAS, or None."""
    libdir = os.path.dirname(np.__file__) + ".libs"
    for path in sorted(glob.glob(os.path.join(libdir, "libscipy_openblas64_*.so*"))):
        try:
            lib = ctypes.CDLL(path)
            lib.scipy_cblas_sgemm64_, lib.scipy_cblas_dgemm64_   # noqa: B018 (both must exist)
            return lib
        except (OSError, AttributeError):
            continue
    return None


def _fallback(ftype):
    """A cfunc with the CBLAS signature computing C = alpha A B + beta C with np.dot (the
    row-major case only, which is all ``gemm`` asks for)."""
    ptr = types.CPointer(ftype)
    sig = types.void(types.int32, types.int32, types.int32, types.int64, types.int64,
                     types.int64, ftype, ptr, types.int64, ptr, types.int64, ftype, ptr,
                     types.int64)

    @cfunc(sig, cache=True)
    def fallback(order, trans_a, trans_b, m, n, k, alpha, a_ptr, lda, b_ptr, ldb, beta,
                 c_ptr, ldc):
        a = carray(a_ptr, (k, lda))[:, :m].T if trans_a == TRANS else \
            carray(a_ptr, (m, lda))[:, :k]
        b = carray(b_ptr, (n, ldb))[:, :k].T if trans_b == TRANS else \
            carray(b_ptr, (k, ldb))[:, :n]
        c = carray(c_ptr, (m, ldc))[:, :n]
        ab = alpha * np.dot(np.ascontiguousarray(a), np.ascontiguousarray(b))
        if beta == 0:                     # as in BLAS: C is not read (it may hold NaNs)
            c[:, :] = ab
        else:
            c[:, :] = ab + beta * c
    return fallback


def _register():
    """Bind the two symbol names; returns True when they are NumPy's OpenBLAS."""
    lib = _numpy_openblas()
    for char, ftype in (("s", types.float32), ("d", types.float64)):
        if lib is not None:
            address = ctypes.cast(getattr(lib, f"scipy_cblas_{char}gemm64_"), ctypes.c_void_p)
            address = address.value
        else:
            address = _fallback(ftype).address
        llvm.add_symbol(_SYMBOL.format(char), address)
    return lib is not None


USING_NUMPY_BLAS = _register()
_sgemm = types.ExternalFunction(_SYMBOL.format("s"), _SIGNATURES["s"])
_dgemm = types.ExternalFunction(_SYMBOL.format("d"), _SIGNATURES["d"])


def _float_itemsize(a, b, out):
    """The element size of a, b and out (the njit version checks their dtypes when typing)."""
    return out.itemsize


@overload(_float_itemsize)
def _float_itemsize_overload(a, b, out):
    if a.dtype == b.dtype == out.dtype and out.dtype in (types.float32, types.float64):
        return lambda a, b, out: out.itemsize
    raise TypingError(f"gemm: a, b and out must share one float dtype (float32 or float64), "
                      f"got {a.dtype}, {b.dtype}, {out.dtype}")


@njit(cache=True, nogil=True)
def _layout(x, itemsize):
    """(trans, leading dimension) of a 2-D operand: rows contiguous -> (NO_TRANS, row
    stride), columns contiguous (a transposed C array) -> (TRANS, column stride)."""
    rows, cols = x.shape
    if x.strides[1] == itemsize or cols == 1:
        return NO_TRANS, max(x.strides[0] // itemsize, cols, 1)
    if x.strides[0] == itemsize or rows == 1:
        return TRANS, max(x.strides[1] // itemsize, rows, 1)
    raise ValueError("gemm: an operand has neither contiguous rows nor contiguous columns")


SMALL_GEMM = 1 << 14   # m * n * k at or below which plain loops beat the BLAS call's overhead


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract", "nsz", "arcp"})
def _small_gemm(a, b, out, beta):
    """out = a @ b + beta * out by loops, for products too small to pay for a BLAS call
    (a decoding step's attention: one query row against a tile of keys, ~2 us per call
    saved). Each inner loop runs along a contiguous row so that it vectorizes."""
    m, k = a.shape
    n = b.shape[1]
    zero = as_type_of(out[0, 0], 0.0)
    beta_t = as_type_of(out[0, 0], beta)
    if b.strides[0] == b.itemsize and k > 1:   # b = B^T with B (n, k) C-contiguous: dots
        bt = b.T
        for i in range(m):
            ai = a[i]
            for j in range(n):
                bj = bt[j]
                s = zero
                for p in range(k):
                    s += ai[p] * bj[p]
                out[i, j] = s if beta == 0 else s + beta_t * out[i, j]
    else:                                      # rows of b contiguous: row updates
        for i in range(m):
            row = out[i]
            if beta == 0:
                for j in range(n):
                    row[j] = zero
            elif beta != 1:
                for j in range(n):
                    row[j] *= beta_t
            ai = a[i]
            for p in range(k):
                aip = ai[p]
                bp = b[p]
                for j in range(n):
                    row[j] += aip * bp[j]


@njit(cache=True, nogil=True)
def gemm(a, b, out, beta=0.0):
    """out = a @ b + beta * out with NumPy's BLAS; a (m, k), b (k, n), out (m, n)."""
    m, k = a.shape
    n = b.shape[1]
    if b.shape[0] != k or out.shape[0] != m or out.shape[1] != n:
        raise ValueError("gemm: shapes do not match")
    if m == 0 or n == 0:
        return
    size = _float_itemsize(a, b, out)
    ldc = out.strides[0] // size if m > 1 else n
    if out.strides[1] != size and n > 1 or ldc < n:
        raise ValueError("gemm: out must have contiguous, non-overlapping rows")
    if k == 0:                            # an empty sum: out = beta * out (not read if 0)
        if beta == 0:
            out[:, :] = 0
        else:
            out[:, :] = beta * out
        return
    if m * n * k <= SMALL_GEMM:
        _small_gemm(a, b, out, beta)
        return
    ta, lda = _layout(a, size)
    tb, ldb = _layout(b, size)
    if size == 4:
        _sgemm(ROW_MAJOR, ta, tb, m, n, k, np.float32(1.0), a.ctypes.data, lda,
               b.ctypes.data, ldb, np.float32(beta), out.ctypes.data, ldc)
    else:
        _dgemm(ROW_MAJOR, ta, tb, m, n, k, 1.0, a.ctypes.data, lda, b.ctypes.data, ldb,
               beta, out.ctypes.data, ldc)
