"""Fused kernels vs their float64 references: dispatch, softmax, layer norm, cross-entropy, erf.

Attention has its own file (test_kernels_attention.py); the CUDA kernels are checked in
test_kernels_cudasim.py (own process, NUMBA_ENABLE_CUDASIM=1).

Rules used throughout (research/testing.md 2.4):
  float64 kernel vs float64 reference: rtol = atol = 1e-12 (scaled by the values' size);
  float32 kernel: max|k32 - ref64| <= 2 * max|naive32 - ref64| + 4 * eps32 * max|ref64|,
  where naive32 is the reference run in float32 (flash-attention's rule).
The numba signatures compiled here are (float32, float64) x C-contiguous only: wrappers make
inputs contiguous, so non-contiguous views cost no extra compilation.
"""
import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_llm.kernels as K
from tinygrad_llm.kernels import _dispatch

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


def assert_within_naive(k32, naive32, ref64, factor=2.0):
    """flash-attention's rule: the kernel is at most `factor` x as wrong as the naive float32."""
    k32, naive32, ref64 = (np.asarray(a, dtype=np.float64) for a in (k32, naive32, ref64))
    fin = np.isfinite(ref64)
    np.testing.assert_array_equal(np.isfinite(k32), fin)
    if not fin.any():
        return
    err = np.abs(k32[fin] - ref64[fin]).max()
    naive = np.abs(naive32[fin] - ref64[fin]).max()
    floor = 4 * EPS32 * np.abs(ref64[fin]).max()
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
    code = ("import importlib.util, tinygrad_llm.kernels as k; "
            "print(importlib.util.find_spec('kernels') is None, k.__name__)")
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, check=True)
    assert res.stdout.split() == ["True", "tinygrad_llm.kernels"]


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


# ---------------------------------------------------------------------------- cross-entropy --

def literal_cross_entropy(logits, targets, ignore_index, eps, reduction):
    """The float64 formula written out with Python loops (PyTorch's label smoothing)."""
    n, v = logits.shape
    losses, dlog = np.zeros(n), np.zeros((n, v))
    valid = [i for i in range(n) if targets[i] != ignore_index]
    for i in valid:
        row = [float(a) for a in logits[i]]
        m = max(row)
        lse = m + math.log(sum(math.exp(a - m) for a in row))
        logp = [a - lse for a in row]
        q = [eps / v + (1 - eps) * (j == targets[i]) for j in range(v)]
        losses[i] = -sum(qj * lp for qj, lp in zip(q, logp))
        dlog[i] = [math.exp(lp) - qj for lp, qj in zip(logp, q)]
    if reduction == "none":
        return losses, dlog
    if reduction == "sum":
        return losses.sum(), dlog
    return losses.sum() / len(valid), dlog / len(valid)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("n,v", [(1, 1), (7, 13), (33, 257)])
def test_cross_entropy_against_literal_formula(n, v, smoothing, reduction):
    logits = RNG.standard_normal((n, v)) * 3
    targets = RNG.integers(0, v, n)
    if n > 2:
        targets[[0, n // 2]] = -100
    loss, lse = K.cross_entropy_forward(logits, targets, label_smoothing=smoothing,
                                        reduction=reduction)
    want, dwant = literal_cross_entropy(logits, targets, -100, smoothing, reduction)
    np.testing.assert_allclose(loss, want, rtol=1e-12, atol=1e-12)
    dloss = np.ones(n) if reduction == "none" else 1.0
    d = K.cross_entropy_backward(logits, targets, lse, dloss, label_smoothing=smoothing,
                                 reduction=reduction)
    np.testing.assert_allclose(d, dwant, rtol=1e-11, atol=1e-13)
    # float32 kernel vs the naive float32 reference
    l32 = logits.astype(np.float32)
    k_loss, k_lse = K.cross_entropy_forward(l32, targets, label_smoothing=smoothing,
                                            reduction=reduction)
    n_loss, n_lse = K.cross_entropy_forward(l32, targets, label_smoothing=smoothing,
                                            reduction=reduction, impl="ref")
    r_loss, r_lse = K.cross_entropy_forward(f64(l32), targets, label_smoothing=smoothing,
                                            reduction=reduction, impl="ref")
    assert_within_naive(k_loss, n_loss, r_loss)
    assert_within_naive(k_lse, n_lse, r_lse)
    kw = dict(label_smoothing=smoothing, reduction=reduction)
    assert_within_naive(K.cross_entropy_backward(l32, targets, n_lse, dloss, **kw),
                        K.cross_entropy_backward(l32, targets, n_lse, dloss, impl="ref", **kw),
                        K.cross_entropy_backward(f64(l32), targets, f64(n_lse), dloss,
                                                 impl="ref", **kw))


@pytest.mark.parametrize("bad", [5, -1, -7])
def test_cross_entropy_out_of_range_targets(bad):
    logits = np.zeros((3, 5))
    with pytest.raises(IndexError, match=rf"Target {bad} is out of bounds for 5 classes"):
        K.cross_entropy_forward(logits, np.array([0, bad, 1]))
    with pytest.raises(TypeError, match="integers"):
        K.cross_entropy_forward(logits, np.array([0.0, 1.0, 2.0]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_huge_logits_and_all_ignored(dtype):
    logits = np.array([[1e4, -1e4], [0.0, 0.0]], dtype=dtype)
    targets = np.array([1, -100])
    loss, lse = K.cross_entropy_forward(logits, targets, reduction="sum")
    np.testing.assert_allclose(loss, 2e4, rtol=1e-6)
    d = K.cross_entropy_backward(logits, targets, lse, 1.0, reduction="sum")
    np.testing.assert_allclose(d, [[1, -1], [0, 0]], atol=1e-6)
    loss, lse = K.cross_entropy_forward(logits, np.array([-100, -100]))
    assert loss == 0 and not np.isnan(lse).any()
    d = K.cross_entropy_backward(logits, np.array([-100, -100]), lse)
    assert np.all(d == 0)


def test_cross_entropy_reference_gradcheck_and_torch():
    logits = RNG.standard_normal((4, 5))
    targets = np.array([1, -100, 4, 0])
    dy = np.ones(4)

    def rows():
        return K.cross_entropy_rows_ref(logits, targets, -100, 0.2)[0]
    _, lse = K.cross_entropy_rows_ref(logits, targets, -100, 0.2)
    (num,) = numeric_vjp(rows, [logits], dy)
    np.testing.assert_allclose(K.cross_entropy_backward_ref(logits, targets, lse, dy, -100, 0.2),
                               num, rtol=1e-6, atol=1e-9)
    torch = pytest.importorskip("torch")
    tl = torch.tensor(logits, requires_grad=True)
    tloss = torch.nn.functional.cross_entropy(tl, torch.tensor(targets), label_smoothing=0.2)
    tloss.backward()
    loss, lse = K.cross_entropy_forward(logits, targets, label_smoothing=0.2, impl="ref")
    np.testing.assert_allclose(loss, tloss.item(), rtol=1e-12)
    d = K.cross_entropy_backward(logits, targets, lse, label_smoothing=0.2, impl="ref")
    np.testing.assert_allclose(d, tl.grad.numpy(), rtol=1e-10, atol=1e-14)


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
