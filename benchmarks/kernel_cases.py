"""The cases of the kernel lab (bench_kernels.py): for each fused kernel, its inputs, every
implementation (NumPy reference, numba CPU, numba CUDA when a GPU is there, PyTorch CPU when
installed) and the float64 reference they are validated against before anything is timed.

Each case is a dict: name, shape, impls {name: fn()}, check {name: fn() -> max rel error},
bytes (compulsory traffic) or flops (for the rate column), tol (largest accepted error).
Import after harness.set_threads (numpy, numba and torch read the thread count on import).
"""
import math

import harness
import numpy as np

import tinygrad_llm.kernels as K
from tinygrad_llm.kernels import _dispatch

try:
    import torch
    harness.torch_threads(torch)
except ImportError:
    torch = None


GPU = (_dispatch.numba_cuda_usable() and not _dispatch.cudasim_enabled()
       and _dispatch.backend.gpu_available())


def rel_err(got, ref):
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    fin = np.isfinite(ref)
    return float(np.abs(got[fin] - ref[fin]).max() / max(1.0, np.abs(ref[fin]).max()))


def as_np(a):
    """NumPy view of a NumPy / CuPy array or a torch tensor."""
    if hasattr(a, "detach"):
        return a.detach().numpy()
    return _dispatch.backend.to_numpy(a)


def max_err(results, refs):
    """Largest relative error over a tuple of results against float64 references."""
    if not isinstance(results, tuple):
        results, refs = (results,), (refs,)
    return max(rel_err(as_np(g), r) for g, r in zip(results, refs))


def checks(impls, refs):
    return {name: (lambda f=f: max_err(f(), refs)) for name, f in impls.items()}


# ------------------------------------------------------------------------------------ cases --

def softmax_case(quick):
    n, c = 8192, 256
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c)).astype(np.float32)
    out = np.empty_like(x)
    ref64 = K.softmax_forward(x.astype(np.float64), impl="ref")
    impls = {"reference (numpy)": lambda: K.softmax_forward(x, impl="ref"),
             "numba cpu": lambda: K.softmax_forward(x, out=out, impl="cpu")}
    if GPU:
        import cupy
        xg = cupy.asarray(x)
        impls["numba cuda"] = lambda: (K.softmax_forward(xg, impl="cuda"),
                                       cupy.cuda.Device().synchronize())[0]
    if torch is not None:
        tx = torch.from_numpy(x)
        impls["torch"] = lambda: torch.softmax(tx, -1)
    return dict(name="softmax fwd", shape=f"{n}x{c} float32", impls=impls,
                check=checks(impls, ref64),
                bytes=2 * x.nbytes, flops=None, tol=1e-5)


def attention_case(t, quick):
    b, h, d = 8, 4, 64
    rng = np.random.default_rng(1)
    q, k, v, do = (rng.standard_normal((b, h, t, d)).astype(np.float32) for _ in range(4))
    q64, k64, v64, do64 = (a.astype(np.float64) for a in (q, k, v, do))
    o64, l64 = K.attention_forward(q64, k64, v64, causal=True, impl="ref")
    ref = (o64,) + K.attention_backward(q64, k64, v64, o64, l64, do64, causal=True, impl="ref")

    def ours(impl, arrays=(q, k, v, do)):
        qq, kk, vv, dd = arrays
        o, lse = K.attention_forward(qq, kk, vv, causal=True, impl=impl)
        return (o,) + K.attention_backward(qq, kk, vv, o, lse, dd, causal=True, impl=impl)

    impls = {"reference (numpy)": lambda: ours("ref"), "numba cpu": lambda: ours("cpu")}
    if GPU:
        import cupy
        dev = tuple(cupy.asarray(a) for a in (q, k, v, do))
        impls["numba cuda"] = lambda: (ours("cuda", dev), cupy.cuda.Device().synchronize())[0]
    if torch is not None:
        tq, tk, tv = (torch.from_numpy(a).requires_grad_(True) for a in (q, k, v))
        tdo = torch.from_numpy(do)

        def sdpa():
            for a in (tq, tk, tv):
                a.grad = None
            out = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=True)
            out.backward(tdo)
            return out.detach(), tq.grad, tk.grad, tv.grad
        impls["torch SDPA"] = sdpa

    return dict(name="attention causal fwd+bwd", shape=f"B{b} H{h} T{t} D{d} float32",
                impls=impls, check=checks(impls, ref), bytes=None,
                flops=12.0 * b * h * t * t * d, tol=1e-4)


def layer_norm_case(quick):
    n, c = 2048, 256
    rng = np.random.default_rng(2)
    x = rng.standard_normal((n, c)).astype(np.float32)
    w, bias = (rng.standard_normal(c).astype(np.float32) for _ in range(2))
    dy = rng.standard_normal((n, c)).astype(np.float32)
    r = K.layer_norm_forward(x.astype(np.float64), w.astype(np.float64),
                             bias.astype(np.float64), impl="ref")
    ref = (r[0],) + K.layer_norm_backward(dy.astype(np.float64), x.astype(np.float64),
                                          w.astype(np.float64), r[1], r[2], impl="ref")

    def ours(impl):
        y, mean, rstd = K.layer_norm_forward(x, w, bias, impl=impl)
        return (y,) + K.layer_norm_backward(dy, x, w, mean, rstd, impl=impl)
    impls = {"reference (numpy)": lambda: ours("ref"), "numba cpu": lambda: ours("cpu")}
    if torch is not None:
        tx, tw, tb = (torch.from_numpy(a).requires_grad_(True) for a in (x, w, bias))
        tdy = torch.from_numpy(dy)

        def tln():
            for a in (tx, tw, tb):
                a.grad = None
            y = torch.nn.functional.layer_norm(tx, (c,), tw, tb, 1e-5)
            y.backward(tdy)
            return y.detach(), tx.grad, tw.grad, tb.grad
        impls["torch"] = tln
    return dict(name="layer norm fwd+bwd", shape=f"{n}x{c} float32", impls=impls,
                check=checks(impls, ref),
                bytes=5 * x.nbytes, flops=None, tol=1e-4)


def cross_entropy_case(quick):
    n, v = 2048, 8192
    rng = np.random.default_rng(3)
    logits = (rng.standard_normal((n, v)) * 2).astype(np.float32)
    targets = rng.integers(0, v, n)
    dl = np.empty_like(logits)
    l64 = logits.astype(np.float64)
    rl, rlse = K.cross_entropy_forward(l64, targets, impl="ref")
    ref = (rl, K.cross_entropy_backward(l64, targets, rlse, impl="ref"))

    def ours(impl, out=None):
        loss, lse = K.cross_entropy_forward(logits, targets, impl=impl)
        return loss, K.cross_entropy_backward(logits, targets, lse, impl=impl, out=out)
    impls = {"reference (numpy)": lambda: ours("ref"),
             "numba cpu": lambda: ours("cpu", out=dl)}
    if torch is not None:
        tl = torch.from_numpy(logits).requires_grad_(True)
        tt = torch.from_numpy(targets)

        def tce():
            tl.grad = None
            loss = torch.nn.functional.cross_entropy(tl, tt)
            loss.backward()
            return loss.detach(), tl.grad
        impls["torch"] = tce
    return dict(name="cross-entropy fwd+bwd", shape=f"{n}x{v} float32", impls=impls,
                check=checks(impls, ref), bytes=3 * logits.nbytes, flops=None, tol=1e-5)


def erf_case(quick):
    n = 2**20
    x = np.random.default_rng(4).standard_normal(n).astype(np.float32) * 2
    out = np.empty_like(x)
    ref = np.array([math.erf(float(a)) for a in x])
    impls = {"reference (math.erf loop)": lambda: K.erf(x, impl="ref"),
             "numba cpu": lambda: K.erf(x, out=out, impl="cpu")}
    if torch is not None:
        tx = torch.from_numpy(x)
        impls["torch"] = lambda: torch.erf(tx)
    return dict(name="erf", shape=f"{n} float32", impls=impls, check=checks(impls, ref),
                bytes=2 * x.nbytes, flops=None, tol=1e-6)
