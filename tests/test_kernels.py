"""Fused kernels vs their float64 references: dispatch, softmax, layer norm, erf.

Attention and cross-entropy have their own files (test_kernels_attention.py,
test_kernels_cross_entropy.py); the CUDA kernels are checked in test_kernels_cudasim.py (own
process, NUMBA_ENABLE_CUDASIM=1). Shared tolerances and helpers: kernel_helpers.py.

Rules used throughout (research/testing.md 2.4):
  float64 kernel vs float64 reference: rtol = atol = 1e-12 (scaled by the values' size);
  float32 kernel: max|k32 - ref64| <= 2 * max|naive32 - ref64| + 4 * eps32 * max|ref64|,
  where naive32 is the reference run in float32 (flash-attention's rule).
The numba signatures compiled here are (float32, float64) x C-contiguous only: wrappers make
inputs contiguous, so non-contiguous views cost no extra compilation.
"""
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_llm.kernels as K
from tinygrad_llm.kernels import _dispatch

from kernel_helpers import (RNG, SHAPES, assert_close64, assert_within_naive, f64,
                            noncontig, numeric_vjp)


# --------------------------------------------------------------------------------- dispatch --

def test_choose_impl_rules(monkeypatch):
    x = np.zeros(3)
    monkeypatch.delenv(_dispatch.ENV_VAR, raising=False)
    assert K.choose_impl(x) == "cpu"
    assert K.choose_impl(x, None, impl="ref") == "ref"
    monkeypatch.setenv(_dispatch.ENV_VAR, "ref")
    assert K.choose_impl(x) == "ref"
    assert K.choose_impl(x, impl="cpu") == "cpu"           # an explicit impl wins
    monkeypatch.setenv(_dispatch.ENV_VAR, "fast")
    with pytest.raises(ValueError, match=_dispatch.ENV_VAR):
        K.choose_impl(x)
    with pytest.raises(ValueError, match="impl must be one of"):
        K.choose_impl(x, impl="gpu")


def test_env_var_forces_reference_path(monkeypatch):
    monkeypatch.setenv(_dispatch.ENV_VAR, "ref")
    calls = []
    monkeypatch.setattr(K.softmax, "softmax_ref",
                        lambda x: calls.append(1) or np.zeros_like(x))
    K.softmax_forward(np.ones((2, 3)))
    assert calls == [1]


@pytest.mark.skipif(_dispatch.cudasim_enabled(), reason="the simulator accepts NumPy arrays")
def test_cuda_on_numpy_without_simulator_is_a_clear_error():
    with pytest.raises(RuntimeError, match="NUMBA_ENABLE_CUDASIM"):
        K.softmax_forward(np.ones((2, 3)), impl="cuda")


def test_dtype_errors():
    with pytest.raises(TypeError, match="float32 or float64"):
        K.softmax_forward(np.ones((2, 3), dtype=np.int64))
    with pytest.raises(TypeError, match="float16"):
        K.layer_norm_forward(np.ones((2, 3), dtype=np.float16))
    q = np.ones((1, 1, 2, 4), np.float32)
    with pytest.raises(TypeError, match="dtype"):
        K.attention_forward(q, q.astype(np.float64), q)


def test_no_top_level_kernels_package(tmp_path):
    """Our kernels/ folder installs as tinygrad_llm.kernels only. A top-level ``kernels`` may
    still exist (transformers >= 5 depends on the PyPI package of that name), but it must not
    be ours: its files must lie outside this project."""
    code = ("import importlib.util, importlib.metadata as md, tinygrad_llm.kernels as k; "
            "s = importlib.util.find_spec('kernels'); "
            "print(k.__name__); print(k.__file__); print(s.origin if s else '-'); "
            "print(','.join(md.packages_distributions().get('kernels', [])) or '-')")
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, check=True)
    name, ours, top, owners = res.stdout.splitlines()
    assert name == "tinygrad_llm.kernels"
    our_dir = os.path.dirname(os.path.abspath(ours))
    assert top == "-" or not os.path.abspath(top).startswith(our_dir + os.sep), (
        f"a top-level 'kernels' resolves to our folder: {top}")
    assert "tinygrad_llm" not in owners.replace("-", "_"), (
        f"the installed tinygrad_llm distribution provides a top-level 'kernels': {owners}")


# ---------------------------------------------------------------------------------- softmax --

@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_softmax_matches_reference(shape, log):
    fwd = K.log_softmax_forward if log else K.softmax_forward
    bwd = K.log_softmax_backward if log else K.softmax_backward
    x = RNG.standard_normal(shape) * 4
    dy = RNG.standard_normal(shape)
    y64 = fwd(x, impl="ref")
    assert_close64(fwd(x), y64)
    assert_close64(fwd(noncontig(x)), y64)
    assert_close64(bwd(y64, dy), bwd(y64, dy, impl="ref"))
    x32, dy32 = x.astype(np.float32), dy.astype(np.float32)
    y32 = fwd(x32)
    assert y32.dtype == np.float32
    assert_within_naive(y32, fwd(x32, impl="ref"), fwd(f64(x32), impl="ref"))
    y32r = fwd(f64(x32), impl="ref").astype(np.float32)      # same saved output for both
    assert_within_naive(bwd(y32r, dy32), bwd(y32r, dy32, impl="ref"),
                        bwd(f64(y32r), f64(dy32), impl="ref"))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_masked_rows_and_huge_logits(dtype):
    x = (RNG.standard_normal((4, 9)) * 3).astype(dtype)
    x[0] = -np.inf                                   # fully masked row
    x[1, :4] = -np.inf
    x[2] = [1e4, 0, -1e4, 5, 1e4, 3, 2, 1, 0]        # huge but finite logits
    y = K.softmax_forward(x)
    assert np.all(y[0] == 0) and np.all(y[1, :4] == 0)
    assert np.all(np.isfinite(y)) and np.allclose(y[1:].sum(-1), 1, atol=1e-6)
    np.testing.assert_allclose(y[2, [0, 4]], 0.5, rtol=1e-6)
    ly = K.log_softmax_forward(x)
    assert np.all(ly[0] == -np.inf) and not np.isnan(ly).any()
    np.testing.assert_allclose(ly[2, 2], -2e4 - math.log(2), rtol=1e-6)
    dy = RNG.standard_normal(x.shape).astype(dtype)
    for grad in (K.softmax_backward(y, dy), K.log_softmax_backward(ly, dy)):
        assert not np.isnan(grad).any()


@given(rows=st.integers(1, 6), cols=st.integers(1, 40), shift=st.floats(-1e3, 1e3),
       seed=st.integers(0, 2**31 - 1))
@settings(max_examples=15)
def test_softmax_properties(rows, cols, shift, seed):
    x = np.random.default_rng(seed).standard_normal((rows, cols)) * 10
    y = K.softmax_forward(x)
    assert np.all((y >= 0) & (y <= 1))
    np.testing.assert_allclose(y.sum(-1), 1, rtol=1e-12)
    np.testing.assert_allclose(K.softmax_forward(x + shift), y, atol=1e-12 * max(1, abs(shift)))


def test_softmax_out_buffers_are_overwritten():
    x = RNG.standard_normal((5, 7))
    out = np.full((5, 7), np.nan)
    assert K.softmax_forward(x, out=out) is out
    assert_close64(out, K.softmax_forward(x, impl="ref"))
    strided = np.full((5, 14), np.nan)[:, ::2]
    K.log_softmax_forward(x, out=strided)
    assert_close64(strided, K.log_softmax_forward(x, impl="ref"))


def test_softmax_reference_backward_gradcheck():
    x = RNG.standard_normal((2, 5))
    dy = RNG.standard_normal((2, 5))
    for fwd, bwd in ((K.softmax_ref, K.softmax_backward_ref),
                     (K.log_softmax_ref, K.log_softmax_backward_ref)):
        (num,) = numeric_vjp(lambda: fwd(x), [x], dy)
        np.testing.assert_allclose(bwd(fwd(x), dy), num, rtol=1e-7, atol=1e-8)


def test_softmax_reference_against_torch():
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal((3, 11)) * 5
    np.testing.assert_allclose(K.softmax_ref(x), torch.softmax(torch.tensor(x), -1).numpy(),
                               rtol=1e-13)
    np.testing.assert_allclose(K.log_softmax_ref(x),
                               torch.log_softmax(torch.tensor(x), -1).numpy(), rtol=1e-13)


# ------------------------------------------------------------------------------- layer norm --

@pytest.mark.parametrize("affine", [(True, True), (False, True), (True, False), (False, False)])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_layer_norm_matches_reference(shape, affine):
    c = shape[-1]
    x = RNG.standard_normal(shape) * 3 + 1
    w = RNG.standard_normal(c) if affine[0] else None
    b = RNG.standard_normal(c) if affine[1] else None
    dy = RNG.standard_normal(shape)
    ref = K.layer_norm_forward(x, w, b, impl="ref")
    for got, r in zip(K.layer_norm_forward(noncontig(x), w, b), ref):
        assert_close64(got, r)
    _, mean, rstd = ref
    gref = K.layer_norm_backward(dy, x, w, mean, rstd, has_bias=b is not None, impl="ref")
    got = K.layer_norm_backward(dy, x, w, mean, rstd, has_bias=b is not None)
    for g, r in zip(got, gref):
        assert (g is None) == (r is None)
        if g is not None:
            assert_close64(g, r, tol=1e-11)
    # float32 against the naive float32 reference
    x32, dy32 = x.astype(np.float32), dy.astype(np.float32)
    w32 = None if w is None else w.astype(np.float32)
    b32 = None if b is None else b.astype(np.float32)
    y32, m32, r32 = K.layer_norm_forward(x32, w32, b32)
    naive = K.layer_norm_forward(x32, w32, b32, impl="ref")
    ref64 = K.layer_norm_forward(f64(x32), f64(w32), f64(b32), impl="ref")
    for got, nv, r in zip((y32, m32, r32), naive, ref64):
        assert got.dtype == np.float32
        assert_within_naive(got, nv, r)
    g32 = K.layer_norm_backward(dy32, x32, w32, naive[1], naive[2], has_bias=b is not None)
    gn = K.layer_norm_backward(dy32, x32, w32, naive[1], naive[2], has_bias=b is not None,
                               impl="ref")
    g64 = K.layer_norm_backward(f64(dy32), f64(x32), f64(w32), f64(naive[1]), f64(naive[2]),
                                has_bias=b is not None, impl="ref")
    for g, nv, r in zip(g32, gn, g64):
        if g is not None:
            assert_within_naive(g, nv, r)


def test_layer_norm_constant_row_is_finite():
    x = np.array([[5.0, 5.0, 5.0]])
    w = np.array([1.0, 2.0, 3.0])
    y, mean, rstd = K.layer_norm_forward(x, w, None, eps=1e-5)
    assert np.all(y == 0)
    dy = np.array([[1.0, 2.0, 3.0]]) * w / w     # arbitrary upstream
    dx, dw, _ = K.layer_norm_backward(dy, x, w, mean, rstd, has_bias=False)
    assert np.all(np.isfinite(dx)) and np.all(np.isfinite(dw))


def test_layer_norm_shape_errors():
    with pytest.raises(ValueError, match=r"weight has shape \(4,\)"):
        K.layer_norm_forward(np.ones((2, 3)), np.ones(4))


def test_layer_norm_reference_gradcheck_and_torch():
    x = RNG.standard_normal((3, 4))
    w = RNG.standard_normal(4)
    b = RNG.standard_normal(4)
    dy = RNG.standard_normal((3, 4))
    _, mean, rstd = K.layer_norm_forward_ref(x, w, b, 1e-5)
    dx, dw, db = K.layer_norm_backward_ref(dy, x, w, mean, rstd)
    num = numeric_vjp(lambda: K.layer_norm_forward_ref(x, w, b, 1e-5)[0], [x, w, b], dy)
    for g, n in zip((dx, dw, db), num):
        np.testing.assert_allclose(g, n, rtol=1e-6, atol=1e-8)
    torch = pytest.importorskip("torch")
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.layer_norm(tx, (4,), tw, tb, 1e-5)
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(K.layer_norm_forward_ref(x, w, b, 1e-5)[0],
                               ty.detach().numpy(), rtol=1e-12)
    for g, t in zip((dx, dw, db), (tx, tw, tb)):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-10, atol=1e-12)


# -------------------------------------------------------------------------------------- erf --

def test_erf_against_math_erf():
    x = np.concatenate([np.linspace(-6, 6, 4001), [0.0, -0.0, 1e-30, 30.0]])
    want = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(K.erf(x), want, rtol=0, atol=1e-15)
    np.testing.assert_allclose(K.erf(noncontig(x[None])[0]), want, rtol=0, atol=1e-15)
    x32 = x.astype(np.float32)
    want32 = np.array([math.erf(float(v)) for v in x32])
    got32 = K.erf(x32)
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, want32, rtol=0, atol=1e-6)
    np.testing.assert_allclose(K.erf(x32.reshape(5, -1), impl="ref").reshape(-1), want32,
                               atol=1e-7)
    special = K.erf(np.array([np.nan, np.inf, -np.inf], dtype=np.float32))
    assert np.isnan(special[0]) and list(special[1:]) == [1, -1]


def test_erf_matches_scipy_when_available():
    special = pytest.importorskip("scipy.special")
    x = RNG.standard_normal(1000) * 3
    np.testing.assert_allclose(K.erf(x), special.erf(x), rtol=1e-15, atol=1e-16)


def test_kernels_never_import_tensor_or_autograd():
    """kernels/ is arrays in, arrays out: only tinygrad_llm.backend may be imported."""
    import pathlib
    import re
    root = pathlib.Path(K.__file__).parent
    for path in root.glob("*.py"):
        for line in path.read_text().splitlines():
            if re.match(r"\s*(from|import)\s+tinygrad_llm", line):
                assert re.match(r"\s*from tinygrad_llm(\.backend)? import", line), (path, line)
                assert "backend" in line, (path, line)
