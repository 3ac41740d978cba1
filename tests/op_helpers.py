"""Shared by the op-family test files (tests/test_op_*.py): float64 leaves, value and
gradients for a fixed upstream gradient, and the fused-vs-twin assertion."""
import numpy as np

import tinygrad_llm as tg


def leaf(a):
    return tg.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def value_and_grads(fn, arrays, upstream_seed=0):
    """fn(*leaves), and the gradient of <out, g> for a fixed random g w.r.t. every leaf."""
    leaves = [leaf(a) for a in arrays]
    out = fn(*leaves)
    g = np.random.default_rng(upstream_seed).standard_normal(out.shape)
    out.backward(g)
    return out.data, [t.grad.data for t in leaves]


def assert_twins(fused_fn, twin_fn, *arrays, atol=1e-12):
    out_f, grads_f = value_and_grads(fused_fn, arrays)
    out_t, grads_t = value_and_grads(twin_fn, arrays)
    np.testing.assert_allclose(out_f, out_t, rtol=1e-10, atol=atol)
    for gf, gt in zip(grads_f, grads_t):
        np.testing.assert_allclose(gf, gt, rtol=1e-9, atol=atol)
