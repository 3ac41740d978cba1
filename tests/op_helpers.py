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


def middle_kept_by_two_ops(first, second, x):
    """second(first(x)) as two ops; asserts the graph keeps first(x)'s array alive (what a
    fused pair such as gelu_linear avoids) and returns the output Tensor."""
    import gc
    import weakref
    middle = first(x)
    ref = weakref.ref(middle.data)
    out = second(middle)
    del middle
    gc.collect()
    assert ref() is not None
    return out


def assert_gpt_unchanged_by(model, replace, idx):
    """The loss and every parameter gradient of GPT ``model`` on ``idx`` are the same before
    and after ``replace(model)`` (which swaps modules for ones a fused path does not take)."""
    def loss_and_grads():
        model.zero_grad()
        _, loss = model(idx, idx)
        loss.backward()
        return loss.item(), {n: p.grad.data.copy() for n, p in model.named_parameters()}

    fused = loss_and_grads()
    replace(model)
    unfused = loss_and_grads()
    assert abs(fused[0] - unfused[0]) < 1e-5
    for name, g in fused[1].items():
        np.testing.assert_allclose(g, unfused[1][name], rtol=1e-4, atol=1e-6, err_msg=name)
