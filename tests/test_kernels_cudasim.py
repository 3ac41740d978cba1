"""The @cuda.jit kernels against their references: in numba's CUDA simulator, and on a real GPU.

Run the simulator tests in their own process (the variable must be set before numba loads):

    NUMBA_ENABLE_CUDASIM=1 pytest -m cudasim tests/test_kernels_cudasim.py

The simulator runs one OS thread per CUDA thread (~0.3-0.6 s per block), so its shapes are tiny.
The same tests run at full size on CuPy arrays when CuPy sees a CUDA GPU: those cases are
marked ``gpu`` (not ``cudasim``), so ``pytest -m gpu tests/`` runs them without the simulator
(tests/run_all.sh does that when a GPU answers). Without either, the whole module is skipped.
"""
import os

import numpy as np
import pytest

from tinygrad_llm import backend

SIM = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
GPU = (not SIM) and backend.gpu_available()

pytestmark = pytest.mark.skipif(not (SIM or GPU),
                                reason="needs NUMBA_ENABLE_CUDASIM=1 or a CUDA GPU")

import tinygrad_llm.kernels as K  # noqa: E402  (after the skip: numba reads the variable)

MODES = [
    pytest.param("sim", marks=[pytest.mark.cudasim,
                               pytest.mark.skipif(not SIM, reason="simulator not enabled")]),
    pytest.param("gpu", marks=[pytest.mark.gpu,
                               pytest.mark.skipif(not GPU, reason="no CuPy CUDA GPU")]),
]


@pytest.fixture(params=MODES)
def mode(request):
    return request.param


def to_dev(mode, *arrays):
    if mode == "sim":
        return arrays
    import cupy
    return tuple(None if a is None else cupy.asarray(a) for a in arrays)


def host(a):
    return None if a is None else backend.to_numpy(a)


def check(got, ref, dtype):
    got, ref = host(got), host(ref)
    fin = np.isfinite(ref)
    np.testing.assert_array_equal(np.isfinite(got), fin)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    scale = max(1.0, float(np.abs(ref[fin]).max()) if fin.any() else 1.0)
    np.testing.assert_allclose(got[fin], ref[fin], rtol=tol, atol=tol * scale)


RNG = np.random.default_rng(7)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_softmax_cuda(mode, log, dtype):
    shape = (3, 37) if mode == "sim" else (4096, 1000)
    x = (RNG.standard_normal(shape) * 4).astype(dtype)
    x[1] = -np.inf
    dy = RNG.standard_normal(shape).astype(dtype)
    x, dy = to_dev(mode, x, dy)
    fwd = K.log_softmax_forward if log else K.softmax_forward
    bwd = K.log_softmax_backward if log else K.softmax_backward
    y = fwd(x, impl="cuda")
    check(y, fwd(x, impl="ref"), dtype)
    yr = fwd(x, impl="ref")
    check(bwd(yr, dy, impl="cuda"), bwd(yr, dy, impl="ref"), dtype)


# (B, H, Tq, Tk, D). Second cases: more keys than one shared-memory tile (32 float32 rows, 16
# float64) and more queries than one block; on the GPU a decoding step (Tq = 1) at D = 128.
ATTENTION_SHAPES = {"sim": [(1, 2, 5, 7, 4), (1, 1, 37, 40, 4)],
                    "gpu": [(4, 4, 300, 513, 64), (2, 3, 1, 200, 128)]}


@pytest.mark.parametrize("case", [0, 1])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_attention_cuda(mode, dtype, case):
    b, h, tq, tk, d = ATTENTION_SHAPES[mode][case]
    q = RNG.standard_normal((b, h, tq, d)).astype(dtype)
    k = RNG.standard_normal((b, h, tk, d)).astype(dtype)
    v = RNG.standard_normal((b, h, tk, d)).astype(dtype)
    dout = RNG.standard_normal((b, h, tq, d)).astype(dtype)
    kpm = np.zeros((b, tk), dtype=bool)
    kpm[0, -1] = True
    am = RNG.standard_normal((tq, tk)).astype(dtype)
    if tq > 1:
        am[0] = -np.inf                               # one fully masked query row
    q, k, v, dout, kpm, am = to_dev(mode, q, k, v, dout, kpm, am)
    opts = dict(causal=True, key_padding_mask=kpm, attn_mask=am)
    out, lse = K.attention_forward(q, k, v, impl="cuda", **opts)
    rout, rlse = K.attention_forward(q, k, v, impl="ref", **opts)
    check(out, rout, dtype)
    check(lse, rlse, dtype)
    grads = K.attention_backward(q, k, v, rout, rlse, dout, impl="cuda", **opts)
    refs = K.attention_backward(q, k, v, rout, rlse, dout, impl="ref", **opts)
    for g, r in zip(grads, refs):
        assert not np.isnan(host(g)).any()
        check(g, r, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_layer_norm_cuda(mode, dtype, monkeypatch):
    n, c = (3, 37) if mode == "sim" else (2048, 768)
    if mode == "sim":     # several row chunks for dweight/dbias at the simulator's tiny size
        from tinygrad_llm.kernels import layer_norm
        monkeypatch.setattr(layer_norm, "DWDB_ROWS_PER_CHUNK", 1)
    x = (RNG.standard_normal((n, c)) * 2 + 1).astype(dtype)
    w = RNG.standard_normal(c).astype(dtype)
    b = RNG.standard_normal(c).astype(dtype)
    dy = RNG.standard_normal((n, c)).astype(dtype)
    x, w, b, dy = to_dev(mode, x, w, b, dy)
    got = K.layer_norm_forward(x, w, b, impl="cuda")
    ref = K.layer_norm_forward(x, w, b, impl="ref")
    for g, r in zip(got, ref):
        check(g, r, dtype)
    _, mean, rstd = ref
    for g, r in zip(K.layer_norm_backward(dy, x, w, mean, rstd, impl="cuda"),
                    K.layer_norm_backward(dy, x, w, mean, rstd, impl="ref")):
        check(g, r, dtype)
    dx, dw, db = K.layer_norm_backward(dy, x, None, mean, rstd, has_bias=False, impl="cuda")
    assert dw is None and db is None
    check(dx, K.layer_norm_backward(dy, x, None, mean, rstd, has_bias=False, impl="ref")[0],
          dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_cross_entropy_cuda(mode, reduction, dtype):
    n, v = (3, 37) if mode == "sim" else (2048, 8192)
    logits = (RNG.standard_normal((n, v)) * 3).astype(dtype)
    targets = RNG.integers(0, v, n)
    targets[1] = -100
    logits, targets = to_dev(mode, logits, targets)
    opts = dict(label_smoothing=0.1, reduction=reduction)
    loss, lse = K.cross_entropy_forward(logits, targets, impl="cuda", **opts)
    rloss, rlse = K.cross_entropy_forward(logits, targets, impl="ref", **opts)
    check(loss, rloss, dtype)
    check(lse, rlse, dtype)
    dloss = to_dev(mode, np.ones(n, dtype))[0] if reduction == "none" else 1.0
    check(K.cross_entropy_backward(logits, targets, rlse, dloss, impl="cuda", **opts),
          K.cross_entropy_backward(logits, targets, rlse, dloss, impl="ref", **opts), dtype)


def test_erf_cuda(mode):
    x = np.linspace(-5, 5, 50 if mode == "sim" else 1_000_001)
    (xd,) = to_dev(mode, x)
    check(K.erf(xd, impl="cuda"), K.erf(x, impl="ref"), np.float64)


def test_choose_impl_auto_on_device(mode):
    if mode == "sim":
        assert K.choose_impl(np.zeros(2)) == "cpu"           # NumPy arrays still go to numba
        assert K.choose_impl(np.zeros(2), impl="cuda") == "cuda"
    else:
        (x,) = to_dev(mode, np.zeros(2))
        assert K.choose_impl(x) == "cuda"
        with pytest.raises(ValueError, match="impl='cpu'"):
            K.choose_impl(x, impl="cpu")
