"""Second derivatives of the scans (ops/scan.py): gradgradcheck at float64 under hypothesis
(0-d tensors, size-1 dims), PyTorch's Hessian-vector products where installed; cumprod with
zeros, where the gradient after the first zero is 0 but its derivative is not."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from second_order_checks import (check_linear_op, check_second_order, draw_dim, leaf, squared,
                                 with_zeros)

import tinygrad_llm as tl
from tinygrad_llm.autograd import grad
from tinygrad_llm.testing import gradgradcheck
from tinygrad_llm.testing import strategies as tst

SHAPES = tst.shapes(max_dims=3, max_side=4)


@settings(max_examples=15)
@given(data=st.data())
def test_cumsum(data):
    x = data.draw(tst.arrays(shape=SHAPES))
    dim = draw_dim(data, x.ndim)
    check_linear_op(lambda t: tl.cumsum(t, dim), x, torch_fn=lambda t: t.cumsum(dim))


@settings(max_examples=25)
@given(data=st.data())
def test_cumprod_with_and_without_zeros(data):
    x = data.draw(with_zeros(SHAPES, max_zeros=3))
    dim = draw_dim(data, x.ndim)
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
    dim = draw_dim(data, x.ndim)
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
