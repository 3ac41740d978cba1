"""Second-order checks shared by tests/test_double_backward_*.py: the second derivative of an op
against finite differences (tinygrad_llm.testing.gradgradcheck) and against PyTorch.

For ``fn`` with outputs y_k, fixed random upstream gradients g_k and fixed random weights w_j:

    L(x) = sum_k <g_k, y_k(x)>
    G_j  = dL/dx_j                        first order (autograd.grad, create_graph=True)
    S    = sum_j <w_j, G_j>
    dS/dx_i = sum_j (d^2 L / dx_i dx_j) w_j     a Hessian-vector product (second backward pass)
    dS/dg_k = J_k w                       the backward's dependence on its upstream gradient

* ``check_second_order`` runs gradgradcheck (dS/dx and dS/dg against central differences of
  the first-order gradient, per element or along random directions) and, given ``torch_fn``,
  ``torch_parity``; it returns dS/dx (``hessian_vector``) for further assertions.
* ``torch_parity`` compares G, dS/dx and dS/dg with torch.autograd.grad applied twice.
* ``squared(fn)`` = fn(x)^2: a linear op (reshape, sum, gather, cumsum) has the backward
  A^T g, linear in g and constant in x, so its dS/dx is zero. Squaring puts it inside a
  nonlinear graph, where its g depends on x: d/dx <w, 2 A^T (A x * g)> = 2 A^T diag(g) A w.
  ``check_linear_op`` checks both fn and squared(fn).
"""
import numpy as np
from hypothesis import strategies as st

import tinygrad_llm as tg
from tinygrad_llm.autograd import grad
from tinygrad_llm.testing import gradgradcheck
from tinygrad_llm.testing import strategies as tst


def leaf(a):
    return tg.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def _outputs(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def squared(fn):
    """x -> fn(x)^2 (each output squared): a nonlinear graph around a linear op."""
    def f(*xs):
        outs = [o * o for o in _outputs(fn(*xs))]
        return outs[0] if len(outs) == 1 else tuple(outs)
    return f


@st.composite
def with_zeros(draw, shape, max_zeros=2):
    """Values in [-2, 2], at least 0.1 from 0 (no subnormal products), then up to
    ``max_zeros`` of them (maybe adjacent) made 0: where prod and cumprod are hard."""
    x = draw(tst.arrays(shape=shape, elements=tst.floats(-2, 2, avoid=(0,), margin=0.1)))
    flat = x.reshape(-1)
    for i in draw(st.lists(st.integers(0, flat.size - 1), max_size=max_zeros)):
        flat[i] = 0.0
    return x


def draw_dim(data, ndim):
    """One axis of an ndim-array, negative ones too (0-d arrays take -1 and 0)."""
    return data.draw(st.integers(-max(ndim, 1), max(ndim, 1) - 1))


def check_second_order(fn, *arrays, torch_fn=None, rtol=1e-10, atol=1e-12,
                       **gradgradcheck_kwargs):
    """gradgradcheck of fn on float64 leaves made from ``arrays``; with ``torch_fn``, parity of
    first and second derivatives with PyTorch (``rtol``, ``atol``). Inputs of more than
    ``max_elementwise`` (64) numbers in all are checked along ``n_directions`` (4) random
    directions. Returns dS/dx per input."""
    gradgradcheck_kwargs.setdefault("n_directions", 4)
    assert gradgradcheck(fn, [leaf(a) for a in arrays], **gradgradcheck_kwargs)
    if torch_fn is not None:
        torch_parity(fn, torch_fn, *arrays, rtol=rtol, atol=atol)
    return hessian_vector(fn, *arrays)[1]


def check_linear_op(fn, *arrays, torch_fn=None, rtol=1e-10, atol=1e-12):
    """A linear op (or one that is linear away from its kinks: max, sort): check_second_order
    of fn (dS/dx = 0, dS/dg = A w) and of squared(fn) (the op's backward inside a nonlinear
    graph); ``torch_fn`` is compared squared."""
    check_second_order(fn, *arrays)
    check_second_order(squared(fn), *arrays, rtol=rtol, atol=atol,
                       torch_fn=None if torch_fn is None else squared(torch_fn))


def _upstream(fn, arrays, seed):
    """(g_k per float output, w_j per input): standard normal draws from ``seed``."""
    rng = np.random.default_rng(seed)
    with tg.no_grad():
        outs = _outputs(fn(*[tg.tensor(a) for a in arrays]))
    g = [rng.standard_normal(tuple(o.shape)) for o in outs]
    w = [rng.standard_normal(a.shape) for a in arrays]
    return g, w


def _derivatives(grad_fn, fn, xs, g, w, tensor, numpy_of):
    """(G, dS/dx, dS/dg) as NumPy arrays (zeros where unused), written once for both libraries."""
    gs = [tensor(gk, requires_grad=True) for gk in g]
    pairs = [(o, gk) for o, gk in zip(_outputs(fn(*xs)), gs) if o.requires_grad]
    G = grad_fn([o for o, _ in pairs], xs, [gk for _, gk in pairs], create_graph=True,
                allow_unused=True)
    G = [tensor(np.zeros(tuple(x.shape))) if Gj is None else Gj for Gj, x in zip(G, xs)]
    S = sum((Gj * tensor(wj)).sum() for Gj, wj in zip(G, w))
    variables = list(xs) + gs
    if S.requires_grad:
        H = grad_fn(S, variables, allow_unused=True)
    else:                                     # no first derivative depends on x or g
        H = [None] * len(variables)
    H = [np.zeros(tuple(v.shape)) if h is None else numpy_of(h) for h, v in zip(H, variables)]
    return [numpy_of(Gj) for Gj in G], H[:len(xs)], H[len(xs):]


def hessian_vector(fn, *arrays, seed=0):
    """(G, dS/dx, dS/dg) of ``fn`` on float64 tinygrad_llm leaves (see the module docstring)."""
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    g, w = _upstream(fn, arrays, seed)
    return _derivatives(grad, fn, [leaf(a) for a in arrays], g, w, tg.tensor,
                        lambda t: np.asarray(t.data))


def torch_parity(fn, torch_fn, *arrays, rtol=1e-10, atol=1e-12, seed=0):
    """G, dS/dx and dS/dg of ``fn`` equal those of ``torch_fn`` for the same g and w."""
    import pytest
    torch = pytest.importorskip("torch")
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    g, w = _upstream(fn, arrays, seed)
    ours = hessian_vector(fn, *arrays, seed=seed)
    theirs = _derivatives(torch.autograd.grad, torch_fn,
                          [torch.tensor(a, requires_grad=True) for a in arrays], g, w,
                          torch.tensor, lambda t: t.detach().numpy())
    for kind, mine, ref in zip(("first derivative", "Hessian-vector product dS/dx",
                                "derivative w.r.t. the upstream gradient dS/dg"), ours, theirs):
        for i, (a, b) in enumerate(zip(mine, ref)):
            assert a.shape == b.shape, f"{kind} {i}: shape {a.shape} != torch's {b.shape}"
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"{kind} {i}")
