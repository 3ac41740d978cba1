"""Adam's and AdamW's numba kernels (kernels/adam.py) against the line-by-line NumPy reference
(TINYGRAD_LLM_KERNELS=ref): one parameter at a time, and the small parameters of a group
updated several per call (adam_update_many)."""
import numpy as np
import pytest

import tinygrad_llm as tg
from tinygrad_llm import optim


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls,kw", [(optim.Adam, {"weight_decay": 0.1, "amsgrad": True}),
                                    (optim.AdamW, {"weight_decay": 0.1})])
def test_adam_kernel_matches_numpy_reference(monkeypatch, dtype, cls, kw):
    """The one-pass numba update against the line-by-line NumPy reference."""
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal((5, 3)).astype(dtype) for _ in range(4)]

    def run():
        p = tg.tensor(np.linspace(-1, 1, 15).reshape(5, 3).astype(dtype), requires_grad=True)
        opt = cls([p], lr=0.1, **kw)
        for g in grads:
            p.grad = tg.tensor(g)
            opt.step()
        return p.data, opt.state["0"]

    fast, fast_state = run()
    monkeypatch.setenv("TINYGRAD_LLM_KERNELS", "ref")
    ref, ref_state = run()
    tol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(fast, ref, rtol=tol, atol=tol)
    for key in ("exp_avg", "exp_avg_sq"):
        np.testing.assert_allclose(fast_state[key], ref_state[key], rtol=tol, atol=tol)


@pytest.mark.parametrize("cls,kw", [(optim.Adam, {"weight_decay": 0.1, "amsgrad": True}),
                                    (optim.AdamW, {"weight_decay": 0.1}),
                                    (optim.AdamW, {"weight_decay": 0.0})])
def test_adam_batched_kernel_matches_reference_over_many_awkward_parameters(monkeypatch, cls,
                                                                            kw):
    """More parameters than one batch of the multi-tensor kernel, of mixed dtypes and sizes
    (empty, one element, odd, one above the parallel threshold), a non-contiguous gradient
    and a parameter that misses its gradient on some steps (so its step count lags)."""
    from tinygrad_llm.kernels.adam import BATCH, PARALLEL_MIN_SIZE
    rng = np.random.default_rng(1)
    shapes = [(0,), (1,), (3, 5), (7,), (2, 1, 3), (PARALLEL_MIN_SIZE + 3,)] + [(4,)] * BATCH
    dtypes = [np.float32, np.float64] * len(shapes)

    def run():
        params = [tg.tensor(rng.standard_normal(s).astype(d), requires_grad=True)
                  for s, d in zip(shapes, dtypes)]
        opt = cls(params, lr=0.05, **kw)
        for step in range(4):
            for i, p in enumerate(params):
                if i == 3 and step % 2:
                    p.grad = None                                 # skipped this step
                elif i == 2:
                    g = rng.standard_normal(p.shape[::-1]).astype(p.dtype).T
                    p.grad = tg.tensor(g)                         # a transposed view
                else:
                    p.grad = tg.tensor(rng.standard_normal(p.shape).astype(p.dtype))
            opt.step()
        return [p.data for p in params]

    rng = np.random.default_rng(1)
    fast = run()
    monkeypatch.setenv("TINYGRAD_LLM_KERNELS", "ref")
    rng = np.random.default_rng(1)
    ref = run()
    for a, b in zip(fast, ref):
        tol = 1e-5 if a.dtype == np.float32 else 1e-13
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
