"""Second-order checks for linear ops (movement, shape, pad, indexing, scatter), shared by
tests/test_double_backward_movement.py and tests/test_double_backward_indexing.py.

A linear op y = A x has the backward G = A^T g: linear in g, constant in x. So

* gradgradcheck(op) checks dS/dg = A w (the backward's graph depends on g, through the
  adjoint A) and dS/dx = 0 (no spurious dependence on x);
* gradgradcheck(op(x)^2) checks the op's backward inside a nonlinear graph, where its g
  depends on x: d/dx <w, 2 A^T (A x * g)> = 2 A^T diag(g) A w;
* ``torch_parity`` compares that Hessian-vector product with torch.autograd.grad twice.
"""
import numpy as np

import tinygrad_llm as tg
from tinygrad_llm.autograd import grad
from tinygrad_llm.testing import gradgradcheck


def leaf(a):
    return tg.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def _outputs(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def squared(fn):
    """x -> fn(x)^2 (each output squared): a nonlinear graph around the linear op."""
    def f(*xs):
        outs = [o * o for o in _outputs(fn(*xs))]
        return outs[0] if len(outs) == 1 else tuple(outs)
    return f


def check_linear_op(fn, *arrays, torch_fn=None):
    """gradgradcheck on fn and on fn squared; with ``torch_fn``, second-order torch parity."""
    assert gradgradcheck(fn, [leaf(a) for a in arrays])
    assert gradgradcheck(squared(fn), [leaf(a) for a in arrays])
    if torch_fn is not None:
        torch_parity(fn, torch_fn, *arrays)


def _hvp(grad_fn, fn, leaves, c, w, tensor):
    """d/dx <w, dL/dx> with L = sum_k <c_k, y_k^2>: the same formula for both libraries."""
    outs = _outputs(fn(*leaves))
    loss = sum(((o * o) * tensor(ck)).sum() for o, ck in zip(outs, c))
    first = grad_fn(loss, leaves, create_graph=True)
    inner = sum((g * tensor(wk)).sum() for g, wk in zip(first, w))
    return [g.detach().numpy() if hasattr(g, "detach") else g.numpy()
            for g in grad_fn(inner, leaves)]


def torch_parity(fn, torch_fn, *arrays, rtol=1e-10, atol=1e-12, seed=0):
    """The Hessian-vector product of sum(c * fn(x)^2) in tinygrad_llm and in torch agree."""
    import pytest
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    shapes = [o.shape for o in _outputs(fn(*[tg.tensor(a) for a in arrays]))]
    c = [rng.standard_normal(s) for s in shapes]
    w = [rng.standard_normal(a.shape) for a in arrays]
    ours = _hvp(grad, fn, [leaf(a) for a in arrays], c, w, tg.tensor)
    theirs = _hvp(lambda out, xs, **kw: torch.autograd.grad(out, xs, **kw), torch_fn,
                  [torch.tensor(a, requires_grad=True) for a in arrays], c, w, torch.tensor)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
