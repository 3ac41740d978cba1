"""Second-order checks for nonlinear ops (activations, reductions, scans, sorting), shared by
tests/test_double_backward_{activation,reduce,scan,sorting}.py.

* ``gradgradcheck(fn, x)``: the derivatives of S = <w, dL/dx>, L = <g, fn(x)>, with respect to
  x (the op's second derivative) and to g (its backward's dependence on g) against central
  finite differences of the first-order gradient;
* ``torch_parity``: the Hessian-vector product d/dx <w, dL/dx> (and dL/dx itself) against
  torch.autograd.grad(..., create_graph=True) applied twice, where torch is installed.
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
    """x -> fn(x)^2: puts a linear op (sum, cumsum) inside a graph with a second derivative."""
    def f(*xs):
        outs = [o * o for o in _outputs(fn(*xs))]
        return outs[0] if len(outs) == 1 else tuple(outs)
    return f


def check_second_order(fn, *arrays, torch_fn=None, rtol=1e-9, atol=1e-11):
    """gradgradcheck of fn; with ``torch_fn``, second-order parity with PyTorch too."""
    assert gradgradcheck(fn, [leaf(a) for a in arrays])
    if torch_fn is not None:
        torch_parity(fn, torch_fn, *arrays, rtol=rtol, atol=atol)


def _first_and_second(grad_fn, fn, leaves, c, w, tensor):
    """(dL/dx, d/dx <w, dL/dx>) with L = sum_k <c_k, y_k>, written once for both libraries."""
    outs = _outputs(fn(*leaves))
    loss = sum((o * tensor(ck)).sum() for o, ck in zip(outs, c))
    first = grad_fn(loss, leaves, create_graph=True)
    inner = sum((g * tensor(wk)).sum() for g, wk in zip(first, w))
    if inner.requires_grad:
        second = grad_fn(inner, leaves, allow_unused=True)
    else:                                  # the gradient does not depend on x at all
        second = [None] * len(leaves)
    return ([g.detach().numpy() for g in first],
            [np.zeros(tuple(x.shape)) if h is None else h.detach().numpy()
             for h, x in zip(second, leaves)])


def torch_parity(fn, torch_fn, *arrays, rtol=1e-9, atol=1e-11, seed=0):
    """dL/dx and the Hessian-vector product of L = <c, fn(x)> agree with PyTorch's."""
    import pytest
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    shapes = [o.shape for o in _outputs(fn(*[tg.tensor(a) for a in arrays]))]
    c = [rng.standard_normal(s) for s in shapes]
    w = [rng.standard_normal(a.shape) for a in arrays]
    ours = _first_and_second(grad, fn, [leaf(a) for a in arrays], c, w, tg.tensor)
    theirs = _first_and_second(
        lambda out, xs, **kw: torch.autograd.grad(out, xs, **kw), torch_fn,
        [torch.tensor(a, requires_grad=True) for a in arrays], c, w, torch.tensor)
    for kind, mine, ref in zip(("first", "second"), ours, theirs):
        for a, b in zip(mine, ref):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"{kind} derivative")
