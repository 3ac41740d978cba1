"""Shared helpers of the kernel tests (test_kernels*.py): float64 comparisons, flash-attention's
float32 error rule, a numeric vector-Jacobian product and strided views.

Rules (research/testing.md 2.4):
  float64 kernel vs float64 reference: rtol = atol = 1e-12 (scaled by the values' size);
  float32 kernel: max|k32 - ref64| <= 2 * max|naive32 - ref64| + 4 * eps32 * max|ref64|,
  where naive32 is the reference run in float32.
"""
import numpy as np

RNG = np.random.default_rng(1234)
EPS32 = float(np.finfo(np.float32).eps)


def f64(a):
    return None if a is None else np.asarray(a, dtype=np.float64)


def assert_close64(got, ref, tol=1e-12):
    got, ref = np.asarray(got), np.asarray(ref)
    fin = np.isfinite(ref)
    np.testing.assert_array_equal(np.isfinite(got), fin)
    scale = max(1.0, float(np.abs(ref[fin]).max()) if fin.any() else 1.0)
    np.testing.assert_allclose(got[fin], ref[fin], rtol=tol, atol=tol * scale)


def assert_within_naive(k32, naive32, ref64, factor=2.0, min_scale=0.0):
    """flash-attention's rule: the kernel is at most `factor` x as wrong as the naive float32,
    plus 4 ulps of the largest reference value (taken at least at ``min_scale``: attention
    gradients that cancel to ~0 still carry the rounding of their O(1) terms)."""
    k32, naive32, ref64 = (np.asarray(a, dtype=np.float64) for a in (k32, naive32, ref64))
    fin = np.isfinite(ref64)
    np.testing.assert_array_equal(np.isfinite(k32), fin)
    if not fin.any():
        return
    err = np.abs(k32[fin] - ref64[fin]).max()
    naive = np.abs(naive32[fin] - ref64[fin]).max()
    floor = 4 * EPS32 * max(np.abs(ref64[fin]).max(), min_scale)
    assert err <= factor * naive + floor, (err, naive, floor)


def numeric_vjp(f, inputs, dout, h=1e-6):
    """sum(dout * d f / d x) for each x in inputs, by central differences (float64)."""
    grads = []
    for x in inputs:
        g = np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            old = x[idx]
            x[idx] = old + h
            plus = np.sum(dout * f())
            x[idx] = old - h
            minus = np.sum(dout * f())
            x[idx] = old
            g[idx] = (plus - minus) / (2 * h)
        grads.append(g)
    return grads


SHAPES = [(1, 1), (7, 13), (3, 5, 97), (2, 257)]


def noncontig(x):
    """A strided view of the same values (every other column of a wider array)."""
    wide = np.empty(x.shape[:-1] + (2 * x.shape[-1],), dtype=x.dtype)
    wide[..., ::2] = x
    view = wide[..., ::2]
    assert not view.flags.c_contiguous or view.size <= 1
    return view
