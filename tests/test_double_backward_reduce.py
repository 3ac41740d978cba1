"""Second derivatives of the reductions (ops/reduce.py): gradgradcheck at float64 under
hypothesis (0-d tensors, size-1 dims, every dim/keepdim form), PyTorch's Hessian-vector
products where installed; prod with zeros (its second derivative is not 0 where two x are 0)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from second_order_checks import (check_linear_op, check_second_order, leaf, squared,
                                 torch_parity, with_zeros)

import tinygrad_llm as tl
from tinygrad_llm.autograd import grad
from tinygrad_llm.testing import gradgradcheck
from tinygrad_llm.testing import strategies as tst

SHAPES = tst.shapes(max_dims=3, max_side=3)


def _dim_keepdim(data, ndim, allow_none=True, allow_tuple=True):
    dim = data.draw(tst.dims(ndim, allow_none=allow_none, allow_tuple=allow_tuple))
    return dim, (dim is not None and data.draw(st.booleans()))


def _torch_reduce(name, dim, keepdim, **kw):
    def f(t):
        fn = getattr(t, name)
        return fn(**kw) if dim is None else fn(dim=dim, keepdim=keepdim, **kw)
    return f


@pytest.mark.parametrize("name", ["sum", "mean"])
@settings(max_examples=15)
@given(data=st.data())
def test_sum_and_mean_inside_a_nonlinear_graph(name, data):
    x = data.draw(tst.arrays(shape=SHAPES))
    dim, keepdim = _dim_keepdim(data, x.ndim)
    ours = getattr(tl, name)
    check_linear_op(lambda t: ours(t, dim, keepdim), x, torch_fn=_torch_reduce(name, dim, keepdim))


@pytest.mark.parametrize("name", ["var", "std"])
@settings(max_examples=15)
@given(data=st.data())
def test_var_and_std(name, data):
    x = data.draw(tst.distinct(tst.shapes(min_dims=1, max_dims=3, min_side=2, max_side=3)))
    dim, keepdim = _dim_keepdim(data, x.ndim, allow_none=False)
    correction = data.draw(st.sampled_from([0, 1]))
    ours = getattr(tl, name)
    check_second_order(lambda t: ours(t, dim, keepdim, correction=correction), x,
                       torch_fn=_torch_reduce(name, dim, keepdim, correction=correction))


@pytest.mark.parametrize("name", ["amax", "amin"])
@settings(max_examples=12)
@given(data=st.data())
def test_amax_amin(name, data):
    x = data.draw(tst.distinct(SHAPES))          # no ties: a kink of max
    dim, keepdim = _dim_keepdim(data, x.ndim)
    ours = getattr(tl, name)
    dims = () if dim is None else dim
    check_linear_op(lambda t: ours(t, dim, keepdim), x,
                    torch_fn=lambda t: getattr(t, name)(dim=dims, keepdim=keepdim))


@pytest.mark.parametrize("name", ["max", "min"])
@settings(max_examples=12)
@given(data=st.data())
def test_max_min_with_dim_values(name, data):
    x = data.draw(tst.distinct(tst.shapes(min_dims=1, max_dims=3, max_side=3)))
    dim, keepdim = _dim_keepdim(data, x.ndim, allow_none=False, allow_tuple=False)
    ours = getattr(tl, name)
    check_second_order(squared(lambda t: ours(t, dim, keepdim).values), x,
                       torch_fn=squared(lambda t: getattr(t, name)(dim, keepdim).values))


@settings(max_examples=20)
@given(data=st.data())
def test_prod_with_and_without_zeros(data):
    x = data.draw(with_zeros(SHAPES))
    dim = data.draw(tst.dims(x.ndim, allow_tuple=False))
    keepdim = dim is not None and data.draw(st.booleans())
    check_second_order(lambda t: tl.prod(t, dim, keepdim), x,
                       torch_fn=_torch_reduce("prod", dim, keepdim))


def test_prod_second_derivative_with_two_zeros_is_the_product_of_the_rest():
    # d^2 (x0 x1 x2 x3) / dx0 dx2 = x1 x3, although y / x_i is 0 / 0 there
    x = leaf([0.0, 3.0, 0.0, -2.0])
    (g,) = grad(tl.prod(x), x, create_graph=True)
    (h,) = grad(g[0], x)
    np.testing.assert_allclose(h.numpy(), [0.0, 0.0, -6.0, 0.0])


def _signed_distinct_abs(draw_data, shape):
    """Values whose absolute values are distinct and at least 0.1 (no kink of |x| or max)."""
    d = draw_data.draw(tst.distinct(shape))
    signs = draw_data.draw(tst.arrays(shape=st.just(d.shape), elements=st.sampled_from([-1., 1.])))
    return (d - d.min() + 0.1) * signs


@pytest.mark.parametrize("p", [1.5, 2.0, 3.0, float("inf")])
@settings(max_examples=12)
@given(data=st.data())
def test_norm(p, data):
    x = _signed_distinct_abs(data, SHAPES)
    dim, keepdim = _dim_keepdim(data, x.ndim)

    def theirs(t):
        import torch
        return torch.linalg.vector_norm(t, ord=p, dim=dim, keepdim=keepdim)
    fn = (lambda t: tl.norm(t, p, dim, keepdim))
    if p == float("inf"):                  # piecewise linear: put it in a nonlinear graph
        fn, theirs = squared(fn), squared(theirs)
    check_second_order(fn, x, torch_fn=theirs)


@settings(max_examples=15)
@given(data=st.data())
def test_logsumexp(data):
    x = data.draw(tst.arrays(shape=SHAPES, elements=tst.floats(-5, 5)))
    dim, keepdim = _dim_keepdim(data, x.ndim, allow_none=False)
    dim = () if dim is None else dim      # a 0-d tensor: no axis to name

    def theirs(t):
        import torch
        return torch.logsumexp(t, dim=dim, keepdim=keepdim)
    check_second_order(lambda t: tl.logsumexp(t, dim, keepdim), x, torch_fn=theirs)


def test_logsumexp_hessian_is_diag_p_minus_p_p_transposed():
    x = np.array([0.3, -1.0, 2.0, 0.5])
    t = leaf(x)
    (g,) = grad(tl.logsumexp(t, 0), t, create_graph=True)
    hessian = np.stack([grad(g[i], t, retain_graph=True)[0].numpy() for i in range(4)])
    p = np.exp(x) / np.exp(x).sum()
    np.testing.assert_allclose(hessian, np.diag(p) - np.outer(p, p), rtol=1e-12, atol=1e-15)


def test_var_twin_gives_the_same_gradient_as_the_saved_deviations():
    x = np.random.default_rng(3).standard_normal((3, 4))
    assert gradgradcheck(lambda t: tl.var(t, 1), [leaf(x)])
    torch_parity(lambda t: tl.var(t, (0, 1), keepdim=True),
                 lambda t: t.var(dim=(0, 1), keepdim=True), x)


FLOAT32_CASES = {
    "amax": lambda t: tl.amax(t, 1), "max": lambda t: tl.max(t, 1).values,
    "var": lambda t: tl.var(t, 1), "prod": lambda t: tl.prod(t, 1),
    "norm_inf": lambda t: tl.norm(t, float("inf"), 1), "norm3": lambda t: tl.norm(t, 3.0, 1),
    "logsumexp": lambda t: tl.logsumexp(t, 1), "cumprod": lambda t: tl.cumprod(t, 1),
}


@pytest.mark.parametrize("name", sorted(FLOAT32_CASES))
def test_float32_first_and_second_derivatives_stay_float32(name):
    # amax's gradient divided by the int64 tie count came out float64
    x0 = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    x0[0, 1] = 0.0
    x = tl.tensor(x0, requires_grad=True)
    y = FLOAT32_CASES[name](x)
    (first,) = grad((y * y).sum(), x, retain_graph=True)
    (g,) = grad((y * y).sum(), x, create_graph=True)
    (h,) = grad((g * g).sum(), x)
    assert (first.dtype, g.dtype, h.dtype) == (np.float32,) * 3


@pytest.mark.parametrize("axis, keepdims", [((0, 2), False), ((-1, 0), True), (1, False),
                                            (None, False)])
def test_namespace_prod_and_cumprod_follow_numpy(axis, keepdims):
    # tensor_namespace is what a recorded backward formula calls as xp.prod / xp.cumprod
    from tinygrad_llm import tensor_namespace as tn
    x = np.random.default_rng(4).standard_normal((2, 3, 4))
    np.testing.assert_allclose(tn.prod(tl.tensor(x), axis, keepdims).numpy(),
                               np.prod(x, axis=axis, keepdims=keepdims), rtol=1e-12)
    assert gradgradcheck(lambda t: tn.prod(t, axis, keepdims), [leaf(x)])
    cum_axis = axis if isinstance(axis, int) else None
    np.testing.assert_allclose(tn.cumprod(tl.tensor(x), cum_axis).numpy(),
                               np.cumprod(x, axis=cum_axis), rtol=1e-12)
