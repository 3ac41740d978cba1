"""Second derivatives of the scans (ops/scan.py): gradgradcheck at float64 under hypothesis
(0-d tensors, size-1 dims), PyTorch's Hessian-vector products where installed; cumprod with
zeros, where the gradient after the first zero is 0 but its derivative is not."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from second_order_checks import check_second_order, leaf, squared

import tinygrad_llm as tl
from tinygrad_llm.autograd import grad
from tinygrad_llm.testing import gradgradcheck
from tinygrad_llm.testing import strategies as tst

SHAPES = tst.shapes(max_dims=3, max_side=4)


def _dim(data, ndim):
    return data.draw(st.integers(-max(ndim, 1), max(ndim, 1) - 1))


@settings(max_examples=15)
@given(data=st.data())
def test_cumsum(data):
    x = data.draw(tst.arrays(shape=SHAPES))
    dim = _dim(data, x.ndim)
    check_second_order(lambda t: tl.cumsum(t, dim), x)               # linear: dS/dg only
    check_second_order(squared(lambda t: tl.cumsum(t, dim)), x,
                       torch_fn=squared(lambda t: t.cumsum(dim)))


@st.composite
def _with_zeros(draw):
    """Values in [-2, 2], at least 0.1 from 0, then up to 3 of them (maybe adjacent) made 0."""
    x = draw(tst.arrays(shape=SHAPES, elements=tst.floats(-2, 2, avoid=(0,), margin=0.1)))
    flat = x.reshape(-1)
    for i in draw(st.lists(st.integers(0, flat.size - 1), max_size=3)):
        flat[i] = 0.0
    return x


@settings(max_examples=25)
@given(data=st.data())
def test_cumprod_with_and_without_zeros(data):
    x = data.draw(_with_zeros())
    dim = _dim(data, x.ndim)
    check_second_order(lambda t: tl.cumprod(t, dim), x, torch_fn=lambda t: t.cumprod(dim))


def test_cumprod_gradient_after_a_zero_keeps_its_derivative():
    # L = x0 + x0 x1 + x0 x1 x2 at x = (2, 0, 3): dL/dx2 = x0 x1 = 0, d^2 L / dx1 dx2 = x0 = 2
    x = leaf([2.0, 0.0, 3.0])
    (g,) = grad(tl.cumprod(x, 0).sum(), x, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), [1.0, 2.0 + 6.0, 0.0])
    (h,) = grad(g[2], x)
    np.testing.assert_allclose(h.numpy(), [0.0, 2.0, 0.0])


def test_cumprod_with_two_zeros_second_derivative():
    # L = sum_j prod_{k<=j} x_k at x = (0, 1.5, 0, 2): d^2 L / dx0 dx2 = x1 + x1 x3 = 4.5
    x = leaf([0.0, 1.5, 0.0, 2.0])
    (g,) = grad(tl.cumprod(x, 0).sum(), x, create_graph=True)
    (h,) = grad(g[0], x)
    np.testing.assert_allclose(h.numpy(), [0.0, 1.0 + 0.0, 1.5 + 1.5 * 2.0, 0.0])


@pytest.mark.parametrize("name", ["cummax", "cummin"])
@settings(max_examples=12)
@given(data=st.data())
def test_cummax_cummin_values(name, data):
    x = data.draw(tst.distinct(SHAPES))          # no ties
    dim = _dim(data, x.ndim)
    ours = getattr(tl, name)
    check_second_order(lambda t: ours(t, dim).values, x)
    check_second_order(squared(lambda t: ours(t, dim).values), x,
                       torch_fn=squared(lambda t: getattr(t, name)(dim).values))


@pytest.mark.parametrize("op", [lambda t: tl.cumprod(t, 1), lambda t: tl.prod(t, 1)])
def test_third_derivative_of_products_with_zeros(op):
    # gradgradcheck of the recorded gradient: the backward of the backward is recorded too
    x = np.array([[1.5, 0.0, -2.0, 0.0, 0.7], [0.3, 0.0, 1.2, -0.8, 1.1]])
    c = np.random.default_rng(2).standard_normal(op(tl.tensor(x)).shape)

    def first(t):
        with tl.enable_grad():
            t = t if t.requires_grad else t.detach().requires_grad_()
            (g,) = grad((op(t) * tl.tensor(c)).sum(), t, create_graph=True)
        return g
    assert gradgradcheck(first, [leaf(x)])
