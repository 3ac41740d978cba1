"""The one place where a kernel implementation is chosen, plus the checks every op shares.

    choose_impl(*arrays, impl="auto") -> "ref" | "cpu" | "cuda"

Rules, in order:

1. ``impl`` given per call ("ref", "cpu", "cuda") wins. "cpu" needs NumPy arrays and numba;
   "cuda" needs CuPy arrays on a GPU, or NumPy arrays with the numba CUDA simulator on
   (``NUMBA_ENABLE_CUDASIM=1`` set before numba is imported).
2. ``impl="auto"`` and the environment variable ``TINYGRAD_LLM_KERNELS=ref`` (read at each
   call): the NumPy/CuPy reference. (Other accepted values: "" or "auto", which change nothing.)
3. ``impl="auto"``: by array type. NumPy -> "cpu" (numba ``@njit``), or "ref" without numba;
   CuPy -> "cuda" (numba ``@cuda.jit``). If numba-cuda cannot build and launch a kernel on this
   GPU (not installed, no NVVM/libdevice for this CUDA, a driver mismatch), CuPy arrays raise a
   RuntimeError that says why, never a silent switch to the slower reference: set
   ``TINYGRAD_LLM_KERNELS=ref`` to choose the CuPy reference knowingly. The check compiles and
   launches a one-thread kernel once per process (``cuda_kernels_status``); its answer is cached.

Arrays that are ``None`` (optional inputs) are skipped. Mixing NumPy and CuPy arrays is an
error that names both.
"""
import math
import os

import numpy as np

from tinygrad_llm import backend

from . import _buffer_pool

IMPLS = ("auto", "ref", "cpu", "cuda")
ENV_VAR = "TINYGRAD_LLM_KERNELS"


def env_setting():
    """TINYGRAD_LLM_KERNELS as set right now, lower case ("" when unset). Read at every kernel
    call, so it is read from os.environ's own dict: os.environ.get costs 0.7 us (it encodes the
    key and decodes the value each time), a few percent of a small model's training step."""
    if _ENVIRON_DATA is None:                             # not CPython's os.environ
        return os.environ.get(ENV_VAR, "").strip().lower()
    value = _ENVIRON_DATA.get(_ENV_KEY)
    return "" if value is None else os.environ.decodevalue(value).strip().lower()


_ENVIRON_DATA = getattr(os.environ, "_data", None)        # CPython's mapping behind os.environ
_ENV_KEY = os.environ.encodekey(ENV_VAR) if _ENVIRON_DATA is not None else None
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

try:
    import numba

    from . import _threads
    _HAVE_NUMBA = True
    try:
        from numba.np.ufunc import parallel as _numba_parallel
        _numba_parallel._is_initialized                     # noqa: B018 (private: may move)
    except (ImportError, AttributeError):
        _numba_parallel = None
except ImportError:  # numba is a hard requirement, but the references work without it
    _HAVE_NUMBA = False

try:
    from numba import cuda as _numba_cuda
except Exception:  # numba without its CUDA target (or numba-cuda not installed)
    _numba_cuda = None


def numba_available():
    """True when numba imports (the CPU kernels can run)."""
    return _HAVE_NUMBA


def cudasim_enabled():
    """True when numba's CUDA simulator is on (NUMBA_ENABLE_CUDASIM=1 before numba import)."""
    if _numba_cuda is None:
        return False
    from numba import config
    return bool(getattr(config, "ENABLE_CUDASIM", 0))


def numba_cuda_usable():
    """True when ``@cuda.jit`` kernels can launch: a real CUDA GPU or the simulator."""
    if _numba_cuda is None:
        return False
    try:
        return bool(_numba_cuda.is_available())
    except Exception:
        return False


_cuda_status = None     # (ok, reason) of the one probe per process; see cuda_kernels_status


def _probe_cuda_kernels():
    """Build and launch a one-thread @cuda.jit kernel on a CuPy array: (ok, reason)."""
    if _numba_cuda is None:
        return False, "numba.cuda does not import (is numba-cuda installed for this numba?)"
    try:
        if not _numba_cuda.is_available():
            return False, ("numba.cuda.is_available() is False: no CUDA driver, or numba-cuda "
                           "finds no NVVM/libdevice for this CUDA version")
        import warnings

        cupy = backend.cupy

        def add_one(a):
            a[0] += 1.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")         # a 1-thread grid is reported as wasteful
            kernel = _numba_cuda.jit(add_one)
            a = cupy.zeros(1, dtype=np.float32)
            kernel[1, 1](a)
            got = float(a[0])
        if got != 1.0:
            return False, f"a probe kernel ran but wrote {got} instead of 1.0"
    except Exception as e:  # compile (NVVM, ptxas), link or launch errors: report, don't hide
        return False, f"{type(e).__name__}: {e}"
    return True, ""


def cuda_kernels_status():
    """(ok, reason): whether the numba CUDA kernels can run on CuPy arrays here. Probed once per
    process by compiling and launching a one-thread kernel; ``reason`` says what failed."""
    global _cuda_status
    if _cuda_status is None:
        _cuda_status = _probe_cuda_kernels()
    return _cuda_status


def cuda_unusable_error(reason):
    """The error raised when CuPy arrays reach a kernel but numba-cuda cannot run here."""
    return RuntimeError(
        f"the numba CUDA kernels cannot run on this GPU ({reason}). Install numba-cuda for your "
        f"CUDA major version (pip install 'tinygrad_llm[gpu-cuda13]' or '[gpu-cuda12]', see "
        f"docs/GPU.md), or set {ENV_VAR}=ref to run the CuPy reference implementations instead")


def _cuda_or_raise():
    ok, reason = cuda_kernels_status()
    if not ok:
        raise cuda_unusable_error(reason)
    return "cuda"


def cuda_threads_per_block(n_max=256):
    """Threads per block for the row kernels: a power of two; small under the simulator,
    which runs one OS thread per CUDA thread."""
    return 32 if cudasim_enabled() else n_max


def _array_kind(arrays):
    """'cupy', 'numpy', or raise when both kinds are mixed."""
    for a in arrays:                      # the common case first: NumPy arrays (and Nones)
        if a is not None and type(a) is not np.ndarray:
            break
    else:
        return "numpy"
    kinds = {}
    for a in arrays:
        if a is None:
            continue
        kind = "cupy" if backend.is_cupy_array(a) else "numpy"
        kinds.setdefault(kind, type(a).__module__ + "." + type(a).__name__)
    if len(kinds) > 1:
        raise ValueError(
            "kernel inputs live on different devices: got both "
            f"{kinds['numpy']} (cpu) and {kinds['cupy']} (cuda); move them to one device")
    return next(iter(kinds), "numpy")


def choose_impl(*arrays, impl="auto"):
    """Pick "ref", "cpu" or "cuda" for these arrays; see the module docstring for the rules."""
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    kind = _array_kind(arrays)
    if impl == "auto":
        env = env_setting()
        if env == "ref":
            return "ref"
        if env not in ("", "auto"):
            raise ValueError(f"environment variable {ENV_VAR}={env!r}: expected 'ref' or 'auto'")
        if kind == "cupy":
            return _cuda_or_raise()
        return "cpu" if _HAVE_NUMBA else "ref"
    if impl == "ref":
        return "ref"
    if impl == "cpu":
        if kind == "cupy":
            raise ValueError("impl='cpu' runs numba CPU kernels on NumPy arrays, but got CuPy "
                             "arrays; use impl='cuda' or 'auto', or move them with to_numpy")
        if not _HAVE_NUMBA:
            raise RuntimeError("impl='cpu' needs numba, which is not installed")
        return "cpu"
    # impl == "cuda"
    if kind == "numpy" and not cudasim_enabled():
        raise RuntimeError(
            "impl='cuda' needs CuPy arrays on a CUDA GPU, but got NumPy arrays; set "
            "NUMBA_ENABLE_CUDASIM=1 before importing numba to run the CUDA kernels on "
            "NumPy arrays in numba's simulator")
    if not numba_cuda_usable():
        raise RuntimeError("impl='cuda' needs numba.cuda with a CUDA GPU (or the simulator)")
    return _cuda_or_raise() if kind == "cupy" else "cuda"


def check_float(name_array_pairs):
    """Check every named array is float32 or float64 and all share one dtype; return it."""
    dtype = None
    for name, a in name_array_pairs:
        if a is None:
            continue
        if a.dtype not in FLOAT_DTYPES:
            raise TypeError(f"{name} must be float32 or float64, got dtype {a.dtype}")
        if dtype is None:
            dtype = a.dtype
        elif a.dtype != dtype:
            first = name_array_pairs[0][0]
            raise TypeError(f"{name} has dtype {a.dtype} but {first} has {dtype}; "
                            "the kernels need one floating dtype")
    return dtype


def check_shape(name, a, shape):
    if tuple(a.shape) != tuple(shape):
        raise ValueError(f"{name} has shape {tuple(a.shape)}, expected {tuple(shape)}")


def empty(shape, dtype, xp=np):
    """An uninitialized array for a kernel's output; large NumPy ones come from the buffer
    pool (kernels/_buffer_pool.py), so that writing them does not page-fault every training step."""
    if xp is not np:
        return xp.empty(shape, dtype=dtype)
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < _buffer_pool.MIN_BYTES:
        return np.empty(shape, dtype)
    return _buffer_pool.take(nbytes).view(dtype).reshape(shape)


def prepare_out(out, name, shape, dtype, xp):
    """Return ``out`` checked against (shape, dtype), or a fresh array. Kernels overwrite it."""
    if out is None:
        return empty(shape, dtype, xp)
    check_shape(name, out, shape)
    if out.dtype != dtype:
        raise TypeError(f"{name} has dtype {out.dtype}, expected {dtype}")
    if xp is not backend.get_array_module(out):
        raise ValueError(f"{name} is on a different device than the inputs")
    return out


# ---------------------------------------------------------------------------------------------
# Output buffers placed apart from the inputs
# ---------------------------------------------------------------------------------------------
# glibc hands out same-sized large blocks at fixed distances (size + 16 bytes apart), so a
# kernel's fresh output often starts at nearly the same offset within a 4 KiB page as its
# input. A numba loop that loads x[j] and stores y[j], t[j] then runs several times slower at
# some such distances (the core's memory-disambiguation logic compares only the low address
# bits and makes loads wait for unrelated stores; benchmarks/README.md, "Output placement").
# Starting each output at least _APART bytes away, modulo the page, from every input and every
# other output avoids it: ``empty_apart`` over-allocates one page and returns a view at a
# chosen offset.

_PAGE = 4096
_APART = 512
_MIN_APART_BYTES = 1 << 16      # below this the arrays live in cache and the effect is small


def empty_apart(shape, dtype, inputs, outputs=()):
    """A new C-contiguous NumPy array whose start is >= 512 bytes (mod 4 KiB) from the start of
    every array in ``inputs`` and ``outputs`` (pass the outputs made so far for this call)."""
    dtype = np.dtype(dtype)
    n = math.prod(shape)
    if n * dtype.itemsize < _MIN_APART_BYTES:
        return np.empty(shape, dtype)
    raw = _buffer_pool.take(n * dtype.itemsize + _PAGE)
    # (the address through __array_interface__: a.ctypes.data costs 1.8 us, this 1 us)
    taken = [a.__array_interface__["data"][0] % _PAGE for a in (*inputs, *outputs)
             if a is not None]
    start = raw.__array_interface__["data"][0] % _PAGE
    for step in range(_PAGE // 64):
        shift = step * 64                                   # keep 64-byte alignment steps
        offset = (start + shift) % _PAGE
        if all(min((offset - t) % _PAGE, (t - offset) % _PAGE) >= _APART for t in taken):
            break
    return raw[shift:shift + n * dtype.itemsize].view(dtype).reshape(shape)


def contiguous(xp, a):
    """C-contiguous view or copy: keeps numba at one compiled layout per dtype. A large NumPy
    copy goes into a pooled buffer (see ``empty``)."""
    if (xp is np and a.__class__ is np.ndarray and not a.flags.c_contiguous
            and a.nbytes >= _buffer_pool.MIN_BYTES):
        out = empty(a.shape, a.dtype)
        out[...] = a
        return out
    return xp.ascontiguousarray(a)


def write_into(out, result):
    """Copy ``result`` into ``out`` unless they are the same array; return ``out``."""
    if out is not result:
        out[...] = result
    return out


# ---------------------------------------------------------------------------------------------
# Parallel loops: serial nogil kernels run on a few threads
# ---------------------------------------------------------------------------------------------
# The CPU kernels are compiled with @njit(nogil=True) and take (first, stop, step) work-item
# bounds; ``parallel_items`` runs them on numba.get_num_threads() threads: the caller's and
# the spinning workers of kernels/_threads.py. This compiles much faster than
# parallel=True/prange (parfors) and keeps numba's OpenMP layer, which OpenBLAS refuses to
# nest in, out of the BLAS-calling kernels.
#
# MIN_VALUES_PER_THREAD: the least share of an array, in values, worth a second thread for
# the row and elementwise kernels (softmax, log-softmax, layer norm, cross-entropy, GELU).
# Alone they pay from ~2^15 (benchmarks/README.md, "Thread shares"), but between products on
# OpenBLAS's own threads (generation without a cache) splits that small cost more than they
# save (session 9 there).
MIN_VALUES_PER_THREAD = 1 << 18


def num_threads():
    """Threads the CPU kernels use: numba's setting (NUMBA_NUM_THREADS / set_num_threads).

    Read without starting numba's own threading layer: ``numba.get_num_threads()`` starts it,
    and numba's default layer is GNU OpenMP, which, once running, makes a torch imported later
    in the same process run its parallel regions ~100x slower after ``torch.set_num_threads``
    (measured: a small SDPA call 0.2 -> 24 ms). Until something starts the layer (a prange
    kernel, or the user's ``numba.set_num_threads``), numba's setting is NUMBA_NUM_THREADS.
    """
    if _HAVE_NUMBA:
        if _numba_parallel is not None and not _numba_parallel._is_initialized:
            return max(1, numba.config.NUMBA_NUM_THREADS)
        return max(1, numba.get_num_threads())
    return max(1, os.cpu_count() or 1)


# numba's prange kernels (the decoding products) run on numba's threading layer, GNU OpenMP by
# default, which is not fork-safe: numba kills a forked child that starts a parallel region
# after its parent had the layer running ("Terminating: fork() called from a process already
# using GNU OpenMP"). A fork hook notes that case, and those kernels then run serially.
_openmp_inherited = False


def _note_fork():
    global _openmp_inherited
    if _numba_parallel is not None and _numba_parallel._is_initialized:
        try:
            _openmp_inherited = _openmp_inherited or numba.threading_layer() == "omp"
        except ValueError:          # no layer started after all
            pass


def prange_allowed():
    """Whether numba's parallel (prange) kernels may run in this process: False in a child
    forked after its parent started numba's GNU OpenMP layer."""
    return not _openmp_inherited


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_note_fork)


def parallel_items(kernel, n_items, *args, interleave=False, min_items_per_thread=1):
    """Run ``kernel(first, stop, step, *args)`` over items 0..n_items-1 split across threads.

    Contiguous ranges by default (rows stay together in memory); ``interleave=True`` deals the
    items round-robin (thread t gets t, t + n, ...), which balances causal attention, where
    later query blocks carry more keys. The calling thread runs the first share itself.
    """
    nt = max(1, n_items // max(1, min_items_per_thread))
    if nt > 1:
        nt = min(nt, num_threads())
    if nt <= 1:
        kernel(0, n_items, 1, *args)
        return
    if interleave:
        shares = [(t, n_items, nt) for t in range(nt)]
    else:
        bounds = [n_items * t // nt for t in range(nt + 1)]
        shares = [(bounds[t], bounds[t + 1], 1) for t in range(nt)]
    _threads.run_shares(kernel, shares, args)
