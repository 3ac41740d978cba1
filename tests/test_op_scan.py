"""cumsum, cumprod (with zeros), cummax, cummin: float64 gradchecks and PyTorch parity."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_llm as tg
from tinygrad_llm.testing import strategies as tst
from torch_parity import check_grad, parity


@st.composite
def array_and_dim(draw, elements=None, min_dims=1):
    x = draw(tst.arrays(shape=tst.shapes(min_dims=min_dims), elements=elements))
    dim = draw(st.integers(-x.ndim, x.ndim - 1)) if x.ndim else 0
    return x, dim


@given(array_and_dim(min_dims=0))
def test_cumsum_grad(xd):
    x, dim = xd
    check_grad(lambda a: a.cumsum(dim), x)


@given(array_and_dim(elements=tst.floats(-2, 2)))
def test_cumprod_grad(xd):
    x, dim = xd
    check_grad(lambda a: a.cumprod(dim), x)


@given(array_and_dim(elements=st.sampled_from([0.0, 0.0, 1.5, -0.5, 2.0, -1.25])))
def test_cumprod_grad_with_zeros(xd):
    # zeros (often several) in the input: the derivative is a polynomial in x, so central
    # differences are exact up to rounding even at x = 0
    x, dim = xd
    check_grad(lambda a: a.cumprod(dim), x)


@given(array_and_dim(), st.booleans())
def test_cummax_cummin_grad(xd, use_min):
    x, dim = xd
    x = np.round(x, 1) + np.arange(x.size).reshape(x.shape) * 1e-3   # distinct values
    check_grad(lambda a: (a.cummin(dim) if use_min else a.cummax(dim)).values, x)


def test_cumprod_zero_gradient_by_hand():
    x = tg.tensor([2.0, 0.0, 3.0, 4.0], requires_grad=True)
    x.cumprod(0).sum().backward()
    # y = [2, 0, 0, 0]: dy/dx0 = 1 (only y0 survives), dy/dx1 = 2 + 2*3 + 2*3*4 = 32, rest 0
    np.testing.assert_array_equal(x.grad.data, [1.0, 32.0, 0.0, 0.0])


def test_integer_cumsum_is_int64():
    assert tg.tensor([True, False, True]).cumsum(0).dtype == np.int64
    assert tg.tensor([1, 2, 3], dtype="int32").cumprod(0).dtype == np.int64
    assert tg.tensor([1.0, 2.0]).cumsum(0, dtype="float64").dtype == np.float64


def test_dim_out_of_range():
    with pytest.raises(IndexError):
        tg.tensor([[1.0, 2.0]]).cumsum(2)


# ----- PyTorch parity -------------------------------------------------------------------------

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("op", ["cumsum", "cumprod"])
def test_parity_cumsum_cumprod(op, dim):
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal((3, 4))
    x[1, 1] = x[2, 0] = x[2, 3] = 0.0
    parity(lambda a: getattr(a, op)(dim), lambda a: getattr(torch, op)(a, dim), x)


@pytest.mark.parametrize("op", ["cummax", "cummin"])
def test_parity_cummax_cummin(op):
    torch = pytest.importorskip("torch")
    x = np.array([[1.0, 3.0, 3.0, 2.0, 5.0], [0.0, -1.0, -1.0, 4.0, -2.0]])   # with ties
    parity(lambda a: getattr(a, op)(1), lambda a: getattr(torch, op)(a, 1), x)
    with_nan = np.array([1.0, np.nan, 3.0, np.nan, 0.0])            # NaN sticks, as torch
    parity(lambda a: getattr(a, op)(0), lambda a: getattr(torch, op)(a, 0), with_nan,
           grad=False)
    ints = np.array([3, 1, 3, 0, 7])
    parity(lambda a: getattr(a, op)(0), lambda a: getattr(torch, op)(a, 0), ints)


def test_parity_integer_dtypes():
    torch = pytest.importorskip("torch")
    x = np.array([1, 2, 3], dtype=np.int32)
    parity(lambda a: a.cumsum(0), lambda a: a.cumsum(0), x)
    parity(lambda a: a.cumsum(0, dtype="float64"), lambda a: a.cumsum(0, dtype=torch.float64),
           x)


# ----- check_op: the NumPy reference, gradcheck, the composite twin, PyTorch ------------------

def _torch():
    try:
        import torch
        return torch
    except ImportError:
        return None


def test_check_op_cumsum_cumprod():
    from tinygrad_llm.testing import check_op
    torch = _torch()
    x = np.random.default_rng(9).standard_normal((3, 4))
    upper = tg.tensor(np.triu(np.ones((4, 4))))          # (x @ U)_j = sum_{i<=j} x_i
    check_op(lambda a: a.cumsum(1), [x], ref=lambda a: np.cumsum(a, 1),
             twin=lambda a: a @ upper,
             torch_fn=torch and (lambda a: torch.cumsum(a, 1)))
    x[1, 2] = 0.0
    check_op(lambda a: a.cumprod(1), [x], ref=lambda a: np.cumprod(a, 1),
             torch_fn=torch and (lambda a: torch.cumprod(a, 1)))
