"""Second derivatives through the sorting ops (ops/sorting.py): their values are a gather at the
sorting permutation, so the op's own second derivative is 0 and its backward is linear in g;
inside a nonlinear graph the Hessian-vector product must match finite differences and PyTorch.
Values are distinct (a tie is where the permutation, and so the derivative, jumps)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from second_order_checks import check_linear_op, check_second_order, draw_dim, leaf, squared

import tinygrad_llm as tl
from tinygrad_llm.autograd import grad
from tinygrad_llm.testing import strategies as tst

SHAPES = tst.shapes(max_dims=3, max_side=4)


@settings(max_examples=15)
@given(data=st.data())
def test_sort_values(data):
    x = data.draw(tst.distinct(SHAPES))
    dim, descending = draw_dim(data, x.ndim), data.draw(st.booleans())
    ours = (lambda t: tl.sort(t, dim, descending).values)
    check_linear_op(ours, x, torch_fn=lambda t: t.sort(dim=dim, descending=descending).values)


@settings(max_examples=15)
@given(data=st.data())
def test_topk_values(data):
    x = data.draw(tst.distinct(tst.shapes(min_dims=1, max_dims=3, max_side=4)))
    dim, largest = draw_dim(data, x.ndim), data.draw(st.booleans())
    k = data.draw(st.integers(1, x.shape[dim]))
    ours = (lambda t: tl.topk(t, k, dim, largest).values)
    check_second_order(squared(ours), x, torch_fn=squared(
        lambda t: t.topk(k, dim=dim, largest=largest).values))


@settings(max_examples=15)
@given(data=st.data())
def test_kthvalue_and_msort(data):
    x = data.draw(tst.distinct(tst.shapes(min_dims=1, max_dims=3, max_side=4)))
    dim, keepdim = draw_dim(data, x.ndim), data.draw(st.booleans())
    k = data.draw(st.integers(1, x.shape[dim]))
    check_second_order(squared(lambda t: tl.kthvalue(t, k, dim, keepdim).values), x,
                       torch_fn=squared(lambda t: t.kthvalue(k, dim, keepdim).values))
    check_second_order(squared(tl.msort), x, torch_fn=squared(lambda t: t.sort(dim=0).values))


def test_sorted_values_in_a_product_have_the_expected_hessian():
    # L = v0 v1 with v = sort(x) descending: d^2 L / dx_i dx_j = 1 for the two largest x
    x = leaf([0.5, 3.0, -1.0, 2.0])
    v = tl.sort(x, descending=True).values
    (g,) = grad(v[0] * v[1], x, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), [0.0, 2.0, 0.0, 3.0])
    (h,) = grad(g[1], x)
    np.testing.assert_allclose(h.numpy(), [0.0, 0.0, 0.0, 1.0])


@pytest.mark.parametrize("op", [tl.argsort, lambda t: tl.sort(t).indices])
def test_indices_carry_no_gradient(op):
    x = leaf([0.5, 3.0, -1.0])
    indices = op(x)
    assert indices.dtype == np.int64 and not indices.requires_grad
