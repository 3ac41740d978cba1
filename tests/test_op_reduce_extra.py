"""prod (with zeros), norm, any/all(dim=), sum(dtype=), mean(dtype=): float64 gradchecks and
PyTorch parity (values, dtypes, gradients, errors)."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_llm as tg
from tinygrad_llm.testing import strategies as tst
from torch_parity import check_grad, parity, same_error


@st.composite
def array_and_dim(draw, elements=None):
    x = draw(tst.arrays(elements=elements))
    dim = draw(st.one_of(st.none(), st.integers(-x.ndim, x.ndim - 1))) if x.ndim else None
    return x, dim, draw(st.booleans())


@given(array_and_dim(elements=tst.floats(-2, 2)))
def test_prod_grad(case):
    x, dim, keepdim = case
    check_grad(lambda a: a.prod(dim, keepdim), x)


@given(array_and_dim(elements=st.sampled_from([0.0, 0.0, 1.5, -0.5, 2.0])))
def test_prod_grad_with_zeros(case):
    x, dim, keepdim = case    # one zero: the product of the others; two or more: 0
    check_grad(lambda a: a.prod(dim, keepdim), x)


@given(array_and_dim(), st.sampled_from([1.0, 2.0, 3.0, float("inf")]))
def test_norm_grad(case, p):
    x, dim, keepdim = case
    x = np.where(np.abs(x) < 1e-2, 0.5, x) + 1e-3 * np.arange(x.size).reshape(x.shape)
    check_grad(lambda a: a.norm(p, dim, keepdim), x)


def test_prod_zero_gradient_by_hand():
    x = tg.tensor([[2.0, 0.0, 3.0], [0.0, 0.0, 5.0]], requires_grad=True)
    x.prod(1).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[0.0, 6.0, 0.0], [0.0, 0.0, 0.0]])


@given(tst.arrays(elements=st.sampled_from([0.0, 1.0])), st.data())
def test_any_all_match_numpy(x, data):
    dim = data.draw(tst.dims(x.ndim))
    keepdim = data.draw(st.booleans())
    axis = dim if dim is None or isinstance(dim, int) else tuple(dim)
    t = tg.tensor(x)
    np.testing.assert_array_equal(t.any(dim, keepdim).data, x.any(axis, keepdims=keepdim))
    np.testing.assert_array_equal(t.all(dim, keepdim).data, x.all(axis, keepdims=keepdim))


def test_sum_and_mean_dtype_keep_gradients():
    x = tg.tensor([1.0, 2.0], requires_grad=True)        # float32
    y = x.sum(dtype="float64")
    assert y.dtype == np.float64
    y.backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.data, [1.0, 1.0])
    assert tg.tensor([1, 2]).mean(dtype="float32").item() == 1.5


# ----- PyTorch parity -------------------------------------------------------------------------

RNG = np.random.default_rng(6)


@pytest.mark.parametrize("dim, keepdim", [(None, False), (0, False), (1, True), (-1, False)])
def test_parity_prod(dim, keepdim):
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal((3, 4))
    x[0, 1] = 0.0
    x[2, 0] = x[2, 3] = 0.0
    if dim is None:
        parity(lambda a: a.prod(), lambda a: a.prod(), x)
    else:
        parity(lambda a: a.prod(dim, keepdim), lambda a: a.prod(dim, keepdim), x)
    ints = RNG.integers(-3, 4, (3, 4)).astype(np.int32)
    parity(lambda a: a.prod(), lambda a: a.prod(), ints)
    parity(lambda a: a.prod(1, dtype="float64"), lambda a: a.prod(1, dtype=torch.float64), ints)


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0, float("inf")])
def test_parity_norm(p):
    pytest.importorskip("torch")
    x = RNG.standard_normal((3, 4))
    x[1] = 0.0
    parity(lambda a: a.norm(p, 1), lambda a: a.norm(p, 1), x)
    parity(lambda a: a.norm(p), lambda a: a.norm(p), x)


def test_parity_any_all_sum_mean_dtypes():
    torch = pytest.importorskip("torch")
    x = np.array([[0.0, 1.0, 2.0], [0.0, 0.0, 3.0]])
    for op in ("any", "all"):
        parity(lambda a: getattr(a, op)(), lambda a: getattr(a, op)(), x)
        parity(lambda a: getattr(a, op)(dim=1), lambda a: getattr(a, op)(dim=1), x)
        parity(lambda a: getattr(a, op)(0, True), lambda a: getattr(a, op)(0, True), x)
    bools = x > 0
    ints = np.array([[1, 2], [3, 4]], dtype=np.int32)
    for arr in (bools, ints):
        parity(lambda a: a.sum(), lambda a: a.sum(), arr)
        parity(lambda a: a.sum(1), lambda a: a.sum(1), arr)
        parity(lambda a: a.mean(dtype="float64"), lambda a: a.mean(dtype=torch.float64), arr)
    parity(lambda a: a.sum(0, dtype="float32"), lambda a: a.sum(0, dtype=torch.float32), x)
    same_error(lambda: tg.tensor(ints).mean(), lambda: torch.tensor(ints).mean())
    same_error(lambda: tg.tensor(x).prod(3), lambda: torch.tensor(x).prod(3))


def test_check_op_prod_norm():
    from tinygrad_llm.testing import check_op
    try:
        import torch
    except ImportError:
        torch = None
    x = RNG.uniform(0.5, 2.0, (3, 4)) * RNG.choice([-1, 1], (3, 4))
    check_op(lambda a: a.prod(1), [x], ref=lambda a: np.prod(a, 1),
             twin=lambda a: a.abs().log().sum(1).exp() * a.sign().prod(1).detach(),
             torch_fn=torch and (lambda a: a.prod(1)))
    check_op(lambda a: a.norm(3.0, 0), [x], ref=lambda a: (np.abs(a) ** 3).sum(0) ** (1 / 3),
             twin=lambda a: (a.abs() ** 3).sum(0) ** (1 / 3),
             torch_fn=torch and (lambda a: a.norm(3.0, 0)))
