"""The fused GELU-tanh kernel against its float64 reference (kernels/gelu.py).

Rules of test_kernels.py: float64 kernel vs float64 reference to 1e-12; the float32 kernel
within 2x the float32 reference's own error plus 4 eps32 of the values' size.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_llm.kernels import _dispatch
from tinygrad_llm.kernels.gelu import (gelu_tanh_backward, gelu_tanh_backward_ref,
                                       gelu_tanh_forward, gelu_tanh_forward_ref)

pytestmark = pytest.mark.skipif(not _dispatch.numba_available(), reason="needs numba")
EPS32 = float(np.finfo(np.float32).eps)


def _check32(got, ref64, naive32):
    bound = 2 * np.abs(naive32 - ref64).max() + 4 * EPS32 * max(1.0, np.abs(ref64).max())
    assert np.abs(got - ref64).max() <= bound


@settings(max_examples=30, deadline=None)
@given(n=st.integers(0, 70000), scale=st.sampled_from([0.1, 1.0, 5.0, 30.0]),
       seed=st.integers(0, 2**31 - 1))
def test_float32_within_reference_error(n, scale, seed):
    """Sizes around the 16384-element work items; scales from the Taylor range of tanh
    (|u| < 1/4) to saturation."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * scale).astype(np.float32)
    dy = rng.standard_normal(n).astype(np.float32)
    y = gelu_tanh_forward(x, impl="cpu")
    y64 = gelu_tanh_forward_ref(x.astype(np.float64))
    y32 = gelu_tanh_forward_ref(x)
    assert y.dtype == np.float32 and y.shape == x.shape
    if n:
        _check32(y, y64, y32)
    dx = gelu_tanh_backward(x, dy, impl="cpu")
    dx64 = gelu_tanh_backward_ref(x.astype(np.float64), dy.astype(np.float64))
    if n:
        _check32(dx, dx64, gelu_tanh_backward_ref(x, dy))


def test_float64_matches_reference_and_keeps_shape():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 7)) * 4
    dy = rng.standard_normal(x.shape)
    y = gelu_tanh_forward(x, impl="cpu")
    np.testing.assert_allclose(y, gelu_tanh_forward_ref(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gelu_tanh_backward(x, dy, impl="cpu"),
                               gelu_tanh_backward_ref(x, dy), rtol=1e-12, atol=1e-12)


def test_extremes_and_non_contiguous():
    x = np.array([-1e4, -30, -0.2, -0.0, 0.0, 1e-30, 0.2, 30, 1e4, np.inf, -np.inf, np.nan],
                 dtype=np.float32)
    y = gelu_tanh_forward(x, impl="cpu")
    with np.errstate(invalid="ignore"):
        y64 = gelu_tanh_forward_ref(x.astype(np.float64))
    np.testing.assert_allclose(y[:9], y64[:9], rtol=1e-6, atol=1e-30)
    assert y[9] == np.inf and np.isnan(y[10]) and np.isnan(y[11])   # -inf * 0 is nan, as ref
    x2 = np.arange(24, dtype=np.float32).reshape(4, 6)[:, ::2] / 7 - 1
    np.testing.assert_allclose(gelu_tanh_forward(x2, impl="cpu"),
                               gelu_tanh_forward_ref(x2), rtol=2e-6, atol=1e-7)
    with pytest.raises(ValueError):
        gelu_tanh_backward(x2, np.zeros((2, 2), np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("split", [False, True])
def test_backward_into_out_and_in_place(dtype, split, monkeypatch):
    """out= receives dx; out=dy overwrites the upstream gradient with dx (a loop of its own),
    on one thread or split in blocks over several."""
    if split:
        monkeypatch.setattr(_dispatch, "MIN_VALUES_PER_THREAD", 1)
        monkeypatch.setattr(_dispatch, "num_threads", lambda: 3)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((300, 70)).astype(dtype)
    dy = rng.standard_normal((300, 70)).astype(dtype)
    expected = gelu_tanh_backward(x, dy)
    out = np.empty_like(x)
    assert gelu_tanh_backward(x, dy, out=out) is not None
    np.testing.assert_array_equal(out, expected)
    same = dy.copy()
    gelu_tanh_backward(x, same, out=same)
    np.testing.assert_array_equal(same, expected)
    with pytest.raises(ValueError, match="C-contiguous"):
        gelu_tanh_backward(x, dy, out=np.empty((70, 300), dtype).T)


def test_contiguous_copies_of_large_arrays_come_from_the_pool():
    """_dispatch.contiguous, which the kernels call on their inputs: a large strided NumPy
    array is copied into a pooled buffer, equal and C-contiguous; a contiguous one is itself."""
    from tinygrad_llm.kernels import _buffer_pool
    was = _buffer_pool.set_enabled(True)
    try:
        a = np.arange(512 * 300, dtype=np.float32).reshape(512, 300)
        c = _dispatch.contiguous(np, a.T)
        assert c.flags.c_contiguous and np.array_equal(c, a.T)
        assert _buffer_pool.is_pool_buffer(c.base)
        assert _dispatch.contiguous(np, a) is a
    finally:
        _buffer_pool.set_enabled(was)
