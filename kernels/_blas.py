"""BLAS threads, and a matrix product that runs on the kernels' own thread pool.

Two OpenBLAS libraries live in the process: NumPy's (``numpy.libs/libscipy_openblas64_*``,
behind ``a @ b``) and SciPy's (``scipy.libs/libscipy_openblas*``, behind numba's ``np.dot``).
Each keeps its own pool of worker threads, and after every multithreaded call those workers
keep spinning for a while (OpenBLAS's THREAD_TIMEOUT) waiting for more work. On a machine with
few cores that spinning thread takes the core from whatever runs next (benchmarks/README.md,
"BLAS threads", has the measurements).

So the ops keep OpenBLAS's threads for the one case where they win, and shorten their spin:

    single_threaded_blas()   context manager: both OpenBLAS libraries run on the calling
                             thread only, restored on exit (process-wide while inside)
    matmul(a, b)             a @ b for 2-D NumPy arrays with the rows of the result (or its
                             columns, when there are few rows) split across the kernels' thread
                             pool (``_dispatch.parallel_items``), one single-threaded GEMM per
                             thread: as fast as OpenBLAS's own threads on the products of
                             training, and only the pool's workers spin afterwards, briefly
                             (kernels/_threads.py), not OpenBLAS's as well.

Products with a short A (at most SHORT_A_ROWS rows and SHORT_A_ENTRIES entries: the Linear
layers of a forward pass over a short sequence, as in generation without a KV cache) are the
exception and go to OpenBLAS's own threads. Split by rows on the pool, each thread packs all
of B (the weight) for a few rows of work; split by columns, they are still 5-25 % slower
(benchmarks/README.md, session 9). OpenBLAS's threads share the packed panels and are still
spinning from the previous product; the pool's own spinning workers are sent to sleep first
(``_threads.nap``), so that the two do not fight over the cores. OpenBLAS's spin is made
short: NumPy's OpenBLAS is told (once, on import, unless the user set
OPENBLAS_THREAD_TIMEOUT) to spin SPIN_CYCLES_LOG2 = 22, i.e.
2^22 cycles (~1.5 ms), instead of 2^28 (~0.1 s): long enough to carry its workers from one
layer's product to the next, short enough that they do not take the cores from the numba
kernels after the last one (benchmarks/README.md, "Generation without a cache").

One shape gets its own kernel: A with a handful of rows times the transpose of a C-contiguous
W (N, K), i.e. a Linear layer or the tied output head during a decoding step. That product
streams W once; OpenBLAS's gemv must wake its threads at every call, while numba's OpenMP
workers are still spinning from the previous layer, so the numba loop
``_few_rows_times_transposed`` is faster there (benchmarks/README.md, "Generation"). Not in a
child forked after numba's OpenMP layer started (``_dispatch.prange_allowed``): there the
product takes the general path.
"""
import ctypes
import glob
import os

import numpy as np

from . import _dispatch as D

try:
    from numba import njit, prange

    from . import _threads
    from ._fastmath import as_type_of
except ImportError:  # numba is required, but plain a @ b works without it
    njit = _threads = None

_controls = None          # [(get, set), ...] for each OpenBLAS found; [] when none
_numpy_blas_found = False  # NumPy's OpenBLAS can be pinned to one thread (else: no splitting)


def _find_openblas(libdir, prefix):
    """(library, get, set) of the bundled OpenBLAS in libdir, or None."""
    for path in sorted(glob.glob(os.path.join(libdir, "libscipy_openblas*.so*"))):
        lib = ctypes.CDLL(path)
        for suffix in ("", "64_"):
            get = getattr(lib, f"{prefix}get_num_threads{suffix}", None)
            set_ = getattr(lib, f"{prefix}set_num_threads{suffix}", None)
            if get is not None and set_ is not None:
                set_.argtypes = [ctypes.c_int]
                return lib, get, set_
    return None


SPIN_CYCLES_LOG2 = 22               # OpenBLAS's idle workers spin 2^22 cycles (docstring)
_TIMEOUT_VAR = "OPENBLAS_THREAD_TIMEOUT"


def _shorten_spin(lib):
    """Make NumPy's OpenBLAS workers spin 2^SPIN_CYCLES_LOG2 cycles before they sleep.

    OpenBLAS reads OPENBLAS_THREAD_TIMEOUT when it starts its workers, and NumPy has started
    them by now: so the variable is set, re-read (openblas_read_env) and removed again, and the
    workers are stopped (blas_thread_shutdown_); the next threaded call starts them anew with
    the new timeout. A value the user set is left alone, as is an OpenBLAS without these
    functions. Only how long idle workers spin changes, never a result.
    """
    read_env = getattr(lib, "openblas_read_env", None)
    shutdown = getattr(lib, "blas_thread_shutdown_", None)
    if os.environ.get(_TIMEOUT_VAR) or read_env is None or shutdown is None:
        return False
    os.environ[_TIMEOUT_VAR] = str(SPIN_CYCLES_LOG2)
    try:
        read_env()
    finally:
        del os.environ[_TIMEOUT_VAR]
    shutdown()
    return True


def _numpy_openblas():
    """NumPy's bundled OpenBLAS as (library, get, set), or None (another BLAS vendor or
    layout: its threading is left alone). Its idle spin is shortened here, when the kernels
    are imported, rather than at the first product: restarting its workers must not race
    with a product another thread may have started by then."""
    try:
        found = _find_openblas(os.path.dirname(np.__file__) + ".libs", "scipy_openblas_")
        if found is not None:
            _shorten_spin(found[0])
        return found
    except Exception:
        return None


_NUMPY_OPENBLAS = _numpy_openblas()


def _blas_controls():
    """(get, set) thread-count functions of NumPy's and SciPy's OpenBLAS, where found."""
    global _controls, _numpy_blas_found
    if _controls is None:
        found = []
        if _NUMPY_OPENBLAS is not None:
            found.append(_NUMPY_OPENBLAS[1:])
            _numpy_blas_found = True
        try:
            import scipy
            import scipy.linalg.cython_blas  # noqa: F401  (loads the library)
            scipy_blas = _find_openblas(os.path.dirname(scipy.__file__) + ".libs",
                                        "scipy_openblas_")
            if scipy_blas is not None:
                found.append(scipy_blas[1:])
        except Exception:
            pass
        _controls = found
    return _controls


class single_threaded_blas:
    """Context manager: NumPy's and SciPy's OpenBLAS run 1 thread inside, restored on exit.

    The setting is process-wide: BLAS calls made by other Python threads meanwhile also run on
    one thread, and overlapping uses from several threads may restore it early (only speed is
    affected, never results).
    """

    def __enter__(self):
        self._saved = []
        for get, set_ in _blas_controls():
            n = get()
            if n != 1:
                set_(1)
                self._saved.append((set_, n))
        return self

    def __exit__(self, *exc):
        for set_, n in self._saved:
            set_(n)
        return False


MIN_PARALLEL_FLOPS = 1 << 22        # ~4 MFLOP (~40 us on one core): below, one thread
OPENBLAS_SERIAL_MNK = 1 << 18       # OpenBLAS itself runs m * n * k <= 2^18 on one thread
MIN_ROWS_PER_THREAD = 32
SHORT_A_ROWS = 256                  # A with at most this many rows and ...
SHORT_A_ENTRIES = 1 << 18           # ... entries: OpenBLAS's own threads (module docstring)


def _rows(first, stop, step, a, b, out, bounds):
    for k in range(first, stop, step):
        lo, hi = bounds[k], bounds[k + 1]
        np.matmul(a[lo:hi], b, out=out[lo:hi])


def _cols(first, stop, step, a, b, out, bounds):
    for k in range(first, stop, step):
        lo, hi = bounds[k], bounds[k + 1]
        np.matmul(a, b[:, lo:hi], out=out[:, lo:hi])


FEW_ROWS = 8                 # A with at most this many rows: the decoding kernel below
MIN_FEW_ROWS_WEIGHT = 1 << 14  # ... when W has at least this many entries (else a @ b)


def _few_rows_times_transposed_py(a, w, out):
    """out[r, i] = sum_j a[r, j] w[i, j]   (C = A W^T)   for A (m, K) of few rows, W (N, K).

    Each thread takes a block of W's rows (prange) and reads each row once for all m rows of
    A. Rows are taken as views (ar, wi) and indexed by the loop counter alone, so that the
    inner dot product vectorizes; fastmath lets it reassociate the sum (float rounding differs
    from BLAS by a few ulps).
    """
    m, k = a.shape
    for i in prange(w.shape[0]):
        wi = w[i]
        for r in range(m):
            ar = a[r]
            s = as_type_of(ar[0], 0.0)
            for j in range(k):
                s += ar[j] * wi[j]
            out[r, i] = s


if njit is not None:
    _few_rows_times_transposed = njit(cache=True, parallel=True,
                                      fastmath={"reassoc", "contract", "nsz", "arcp"})(
        _few_rows_times_transposed_py)
    # The same loop for other parallel kernels to inline (kernels/gpt_decode.py): a cached
    # kernel that calls a parallel=True one segfaults once loaded from the cache (numba issue
    # 8578), so the prange must become part of the caller's own parallel code.
    few_rows_times_transposed_inline = njit(inline="always")(_few_rows_times_transposed_py)
else:
    _few_rows_times_transposed = few_rows_times_transposed_inline = None


def _is_decoding_shape(a, b):
    """A of few rows times b = W^T with W C-contiguous and big enough to be worth a kernel."""
    m, k = a.shape
    return (0 < m <= FEW_ROWS and k > 0 and b.shape[1] * k >= MIN_FEW_ROWS_WEIGHT
            and b.T.flags.c_contiguous and _few_rows_times_transposed is not None
            and D.prange_allowed()
            and D.choose_impl(a, b) == "cpu")


def matmul(a, b):
    """C = A @ B for 2-D A (M, K) and B (K, N), either possibly a transposed view.

    NumPy float arrays: computed with single-threaded BLAS calls on the kernels' thread pool,
    split by rows of C (or by columns when M is small); a decoding step's few rows times a
    transposed weight by ``_few_rows_times_transposed``. Anything else (CuPy arrays, other
    dtypes, other ranks), or a NumPy whose BLAS threads cannot be set (not its bundled
    OpenBLAS: splitting would oversubscribe the cores): ``a @ b``.
    """
    if (type(a) is not np.ndarray or type(b) is not np.ndarray or a.ndim != 2 or b.ndim != 2
            or a.dtype != b.dtype or a.dtype not in D.FLOAT_DTYPES or a.shape[1] != b.shape[0]):
        return a @ b
    (m, k), n = a.shape, b.shape[1]
    if _is_decoding_shape(a, b):
        out = np.empty((m, n), a.dtype)
        _few_rows_times_transposed(np.ascontiguousarray(a), b.T, out)
        return out
    if m * n * k <= OPENBLAS_SERIAL_MNK:
        return a @ b                    # saves the thread toggling (~8 us) on tiny products
    nt = D.num_threads() if _blas_controls() and _numpy_blas_found else 1
    if nt > 1 and m <= SHORT_A_ROWS and m * k <= SHORT_A_ENTRIES:
        if 2 * m * n * k >= MIN_PARALLEL_FLOPS:
            if _threads is not None:
                _threads.nap()          # the pool's spinning workers leave the cores to ...
            return a @ b                # ... OpenBLAS's own threads (module docstring)
    with single_threaded_blas():
        if nt == 1 or 2 * m * n * k < MIN_PARALLEL_FLOPS:
            return a @ b
        out = D.empty_apart((m, n), a.dtype, [a, b])
        if m >= nt * MIN_ROWS_PER_THREAD:
            bounds = [m * t // nt for t in range(nt + 1)]
            D.parallel_items(_rows, nt, a, b, out, bounds)
        else:
            bounds = [n * t // nt for t in range(nt + 1)]
            D.parallel_items(_cols, nt, a, b, out, bounds)
    return out
