"""kernels/_blas.py (GEMMs on the kernels' thread pool) and _dispatch.empty_apart."""
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_llm.kernels import _blas, _dispatch


@settings(max_examples=30, deadline=None)
@given(m=st.integers(1, 300), k=st.integers(1, 70), n=st.integers(1, 300),
       ta=st.booleans(), tb=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**31 - 1))
def test_matmul_equals_numpy(m, k, n, ta, tb, dtype, seed):
    """Row split and column split (the thresholds are lowered so that small shapes take the
    threaded paths too), on C-ordered and transposed operands."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    a, b = (a.T if ta else a), (b.T if tb else b)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_blas, "MIN_PARALLEL_FLOPS", 0)
        mp.setattr(_blas, "OPENBLAS_SERIAL_MNK", 0)
        mp.setattr(_blas, "SHORT_A_ROWS", 0)               # no short-A exception either
        got = _blas.matmul(a, b)
    assert got.shape == (m, n) and got.dtype == dtype and got.flags.c_contiguous
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(got, a @ b, rtol=tol, atol=tol * max(1.0, np.abs(a @ b).max()))


def test_matmul_falls_back_for_other_inputs():
    i = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(_blas.matmul(i, i.T), i @ i.T)           # integers
    x = np.ones((2, 3, 4))
    np.testing.assert_array_equal(_blas.matmul(x, np.ones((4, 5))), x @ np.ones((4, 5)))
    with pytest.raises(ValueError):
        _blas.matmul(np.ones((2, 3)), np.ones((4, 5)))                      # NumPy's error


def test_single_threaded_blas_restores_the_thread_counts():
    controls = _blas._blas_controls()
    if not controls:
        pytest.skip("no OpenBLAS thread control found (another BLAS vendor)")
    before = [get() for get, _ in controls]
    with _blas.single_threaded_blas():
        assert [get() for get, _ in controls] == [1] * len(controls)
    assert [get() for get, _ in controls] == before


@pytest.mark.parametrize("shape", [(3,), (64, 1024), (300, 257)])
def test_empty_apart_places_outputs_apart(shape):
    x = np.ones(shape, np.float32)
    y = _dispatch.empty_apart(shape, np.float32, [x])
    t = _dispatch.empty_apart(shape, np.float32, [x], [y])
    assert y.shape == t.shape == shape and y.flags.c_contiguous and t.flags.writeable
    if x.nbytes >= _dispatch._MIN_APART_BYTES:
        starts = [a.ctypes.data % 4096 for a in (x, y, t)]
        for i in range(3):
            for j in range(i):
                d = (starts[i] - starts[j]) % 4096
                assert min(d, 4096 - d) >= 512, starts
    y[...] = 2
    t[...] = 3
    assert (y == 2).all() and (t == 3).all()


def test_no_splitting_when_numpys_blas_threads_cannot_be_set(monkeypatch):
    """Another BLAS (MKL, Accelerate, ...): one plain call, never a split that would run a
    multithreaded BLAS on every pool thread."""
    _blas._blas_controls()
    monkeypatch.setattr(_blas, "_numpy_blas_found", False)

    def no_split(*args, **kwargs):
        raise AssertionError("split although NumPy's BLAS threads are unknown")
    monkeypatch.setattr(_dispatch, "parallel_items", no_split)
    a, b = np.ones((512, 256)), np.ones((256, 512))
    np.testing.assert_array_equal(_blas.matmul(a, b), a @ b)


@pytest.mark.parametrize("m, k, split", [(116, 256, False), (256, 1024, False),
                                         (257, 256, True), (256, 1025, True)])
def test_short_a_goes_to_openblas_threads(monkeypatch, m, k, split):
    """A of at most SHORT_A_ROWS rows and SHORT_A_ENTRIES entries: one plain call (OpenBLAS's
    own threads); a longer or wider A: split over the pool. Results equal NumPy's either way."""
    if not _blas._blas_controls() or not _blas._numpy_blas_found:
        pytest.skip("NumPy's OpenBLAS thread control not found: nothing is split anyway")
    monkeypatch.setattr(_dispatch, "num_threads", lambda: 2)
    calls = []
    real = _dispatch.parallel_items

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)
    monkeypatch.setattr(_dispatch, "parallel_items", spy)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(np.float32)
    w = rng.standard_normal((768, k)).astype(np.float32)
    np.testing.assert_allclose(_blas.matmul(a, w.T), a @ w.T, rtol=1e-5, atol=1e-4)
    assert bool(calls) == split


class _FakeOpenBLAS:
    """The two OpenBLAS functions _shorten_spin calls, recording what they saw."""

    def __init__(self):
        self.seen, self.shutdowns = [], 0

    def openblas_read_env(self):
        self.seen.append(os.environ.get("OPENBLAS_THREAD_TIMEOUT"))

    def blas_thread_shutdown_(self):
        self.shutdowns += 1


def test_openblas_spin_is_shortened_and_the_environment_left_as_it_was(monkeypatch):
    monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)
    lib = _FakeOpenBLAS()
    assert _blas._shorten_spin(lib)
    assert lib.seen == [str(_blas.SPIN_CYCLES_LOG2)] and lib.shutdowns == 1
    assert "OPENBLAS_THREAD_TIMEOUT" not in os.environ


def test_a_users_openblas_thread_timeout_is_left_alone(monkeypatch):
    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "26")
    lib = _FakeOpenBLAS()
    assert not _blas._shorten_spin(lib)
    assert lib.seen == [] and lib.shutdowns == 0
    assert not _blas._shorten_spin(object())      # an OpenBLAS without these functions


def test_numpys_openblas_spins_shorter_and_still_computes_after_its_threads_restart():
    """The shortened spin restarts NumPy's OpenBLAS workers: threaded products stay right."""
    _blas._blas_controls()
    found = _blas._find_openblas(os.path.dirname(np.__file__) + ".libs", "scipy_openblas_")
    lib = found[0] if found else None
    names = ("openblas_thread_timeout", "openblas_read_env", "blas_thread_shutdown_")
    if (lib is not None and all(hasattr(lib, n) for n in names)
            and not os.environ.get("OPENBLAS_THREAD_TIMEOUT")):
        assert lib.openblas_thread_timeout() == _blas.SPIN_CYCLES_LOG2
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((300, 200)), rng.standard_normal((200, 400))
    np.testing.assert_allclose(a @ b, np.einsum("ik,kj->ij", a, b), rtol=1e-10, atol=1e-10)


def _spy_few_rows(monkeypatch):
    """Count the calls of the decoding kernel while still running it."""
    calls = []
    kernel = _blas._few_rows_times_transposed

    def spy(a, w, out):
        calls.append(a.shape)
        return kernel(a, w, out)
    monkeypatch.setattr(_blas, "_few_rows_times_transposed", spy)
    return calls


@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, _blas.FEW_ROWS), k=st.sampled_from([1, 2, 3, 17, 64, 129, 1000]),
       n=st.sampled_from([1, 5, 31, 300]), strided_a=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**31 - 1))
def test_few_rows_kernel_equals_float64_reference(m, k, n, strided_a, dtype, seed):
    """A decoding step's product: few rows times a transposed C-contiguous weight, on awkward
    shapes (the size threshold is lowered so that every shape takes the kernel)."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((n, k)).astype(dtype)                  # a Linear weight (out, in)
    a = rng.standard_normal((m, 2 * k) if strided_a else (m, k)).astype(dtype)
    a = a[:, ::2] if strided_a else a
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_blas, "MIN_FEW_ROWS_WEIGHT", 0)
        calls = _spy_few_rows(mp)
        got = _blas.matmul(a, w.T)
    assert calls == [(m, k)]
    assert got.shape == (m, n) and got.dtype == dtype and got.flags.c_contiguous
    ref = a.astype(np.float64) @ w.T.astype(np.float64)
    tol = 1e-12 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * np.sqrt(k) * np.abs(ref).max())


def test_few_rows_kernel_only_for_its_shape(monkeypatch):
    """Not taken for many rows, for a C-contiguous right operand (not a transposed weight), or
    with TINYGRAD_LLM_KERNELS=ref (the plain NumPy product)."""
    calls = _spy_few_rows(monkeypatch)
    w = np.ones((768, 256), np.float32)
    _blas.matmul(np.ones((1, 256), np.float32), w.T)
    assert calls == [(1, 256)]
    _blas.matmul(np.ones((_blas.FEW_ROWS + 1, 256), np.float32), w.T)
    _blas.matmul(np.ones((1, 768), np.float32), w)
    monkeypatch.setenv("TINYGRAD_LLM_KERNELS", "ref")
    np.testing.assert_array_equal(_blas.matmul(np.ones((1, 256), np.float32), w.T),
                                  np.full((1, 768), 256, np.float32))
    assert calls == [(1, 256)]


# ----- kernels/_cblas.py: NumPy's BLAS GEMM called from numba kernels -----------------------

def _operand(rng, shape, transposed, padded, dtype):
    """A (rows, cols) operand: C-contiguous, or a transposed view, optionally a sub-block of a
    wider array (leading dimension larger than the row)."""
    rows, cols = shape
    stored = (cols, rows) if transposed else (rows, cols)
    full = rng.standard_normal((stored[0], stored[1] + 3 if padded else stored[1]))
    x = full.astype(dtype)[:, :stored[1]]
    return x.T if transposed else x


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 40), k=st.integers(1, 40), n=st.integers(1, 40), ta=st.booleans(),
       tb=st.booleans(), pad_a=st.booleans(), pad_b=st.booleans(), pad_out=st.booleans(),
       accumulate=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**31 - 1))
def test_cblas_gemm_equals_float64_reference(m, k, n, ta, tb, pad_a, pad_b, pad_out,
                                             accumulate, dtype, seed):
    """out = a @ b (+ out with beta = 1) for C-ordered, transposed and sub-block operands and
    an out whose rows are strided (a sub-block: the columns beside it stay untouched); with
    beta = 0 the NaNs already in out are never read."""
    from tinygrad_llm.kernels._cblas import gemm
    rng = np.random.default_rng(seed)
    a = _operand(rng, (m, k), ta, pad_a, dtype)
    b = _operand(rng, (k, n), tb, pad_b, dtype)
    start = rng.standard_normal((m, n)).astype(dtype) if accumulate else \
        np.full((m, n), np.nan, dtype)
    wide = np.full((m, n + 5 if pad_out else n), 7.0, dtype)
    out = wide[:, :n]
    out[...] = start
    gemm(a, b, out, 1.0 if accumulate else 0.0)
    assert (wide[:, n:] == 7.0).all()
    ref = a.astype(np.float64) @ b.astype(np.float64) + (start if accumulate else 0)
    tol = 1e-12 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol * np.sqrt(k) * np.abs(ref).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cblas_fallback_cfunc_equals_numpy(dtype):
    """Without NumPy's bundled OpenBLAS the symbols point at numba cfuncs; called here through
    ctypes with the CBLAS arguments (row-major, both transposes, sub-block leading dims)."""
    import ctypes

    from numba import types

    from tinygrad_llm.kernels import _cblas
    ftype = types.float32 if dtype == np.float32 else types.float64
    fallback = _cblas._fallback(ftype).ctypes
    rng = np.random.default_rng(1)
    for ta in (False, True):
        for tb in (False, True):
            a = _operand(rng, (5, 7), ta, True, dtype)
            b = _operand(rng, (7, 3), tb, True, dtype)
            for beta in (0.0, 2.0):
                out = np.full((5, 3), np.nan if beta == 0 else 1.0, dtype)
                lda = (a.T if ta else a).strides[0] // a.itemsize
                ldb = (b.T if tb else b).strides[0] // b.itemsize
                ptr = ctypes.POINTER(ctypes.c_float if dtype == np.float32 else ctypes.c_double)
                fallback(_cblas.ROW_MAJOR, _cblas.TRANS if ta else _cblas.NO_TRANS,
                         _cblas.TRANS if tb else _cblas.NO_TRANS, 5, 3, 7, 1.0,
                         a.ctypes.data_as(ptr), lda, b.ctypes.data_as(ptr), ldb, beta,
                         out.ctypes.data_as(ptr), 3)
                expected = a @ b + (beta * np.ones((5, 3)) if beta else 0)
                np.testing.assert_allclose(out, expected, rtol=1e-5)


def test_cblas_gemm_rejects_bad_operands():
    from numba.core.errors import TypingError

    from tinygrad_llm.kernels._cblas import gemm
    with pytest.raises(TypingError, match="one float dtype"):
        gemm(np.ones((2, 3), np.float32), np.ones((3, 2)), np.ones((2, 2), np.float32))
    with pytest.raises(ValueError, match="shapes do not match"):
        gemm(np.ones((2, 3)), np.ones((4, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="out must have contiguous, non-overlapping rows"):
        gemm(np.ones((2, 3)), np.ones((3, 2)), np.ones((2, 2)).T.copy().T)   # columns
    with pytest.raises(ValueError, match="out must have contiguous, non-overlapping rows"):
        gemm(np.ones((2, 3)), np.ones((3, 2)),                            # rows overlap
             np.lib.stride_tricks.as_strided(np.ones(4), (2, 2), (8, 8)))
    # an operand strided both ways: fine for the small products done by loops, an error for
    # the BLAS path (which needs one contiguous axis)
    a = np.arange(24.0).reshape(4, 6)[::2, ::2]
    out = np.empty((2, 2))
    gemm(a, np.ones((3, 2)), out)
    np.testing.assert_array_equal(out, a @ np.ones((3, 2)))
    big = np.ones((64, 512))[::2, ::2]                             # (32, 256): 32 * 4 * 256 > 2^14
    with pytest.raises(ValueError, match="contiguous columns"):
        gemm(big, np.ones((256, 4)), np.ones((32, 4)))
