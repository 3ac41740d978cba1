"""Unary math (ops/unary.py): each op against NumPy's formula, a float64 gradcheck under
hypothesis on its domain, and PyTorch's values, gradients and dtypes where installed."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_llm as tl
from tinygrad_llm.testing import check_op
from tinygrad_llm.testing import strategies as tst

# name -> (NumPy reference, the domain the gradcheck draws from)
CASES = {
    "exp": (np.exp, (-5, 5)),
    "log": (np.log, (0.1, 5)),
    "log2": (np.log2, (0.1, 5)),
    "log1p": (np.log1p, (-0.9, 5)),
    "expm1": (np.expm1, (-5, 5)),
    "sqrt": (np.sqrt, (0.1, 5)),
    "rsqrt": (lambda a: 1 / np.sqrt(a), (0.1, 5)),
    "reciprocal": (lambda a: 1 / a, (0.2, 5)),
    "sin": (np.sin, (-6, 6)),
    "cos": (np.cos, (-6, 6)),
    "tan": (np.tan, (-1.3, 1.3)),
    "asin": (np.arcsin, (-0.9, 0.9)),
    "acos": (np.arccos, (-0.9, 0.9)),
    "atan": (np.arctan, (-5, 5)),
    "sinh": (np.sinh, (-4, 4)),
    "cosh": (np.cosh, (-4, 4)),
    "asinh": (np.arcsinh, (-5, 5)),
    "atanh": (np.arctanh, (-0.9, 0.9)),
    "erf": (np.vectorize(math.erf), (-3, 3)),
}
FLAT = {"floor": np.floor, "ceil": np.ceil, "round": np.round, "trunc": np.trunc,
        "sign": np.sign}


@pytest.mark.parametrize("name", sorted(CASES))
@given(data=st.data())
def test_unary_op_reference_gradcheck_and_torch(name, data):
    ref, (lo, hi) = CASES[name]
    x = data.draw(tst.arrays(shape=tst.shapes(max_dims=3, max_side=4),
                             elements=tst.floats(lo, hi)))
    try:
        import torch
        theirs = getattr(torch, name)
    except ImportError:
        theirs = None
    check_op(getattr(tl, name), [x], ref=ref, torch_fn=theirs, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("name", sorted(FLAT))
def test_rounding_ops_are_flat(name):
    x = tl.tensor([-2.5, -0.4, 0.0, 0.5, 1.5, 2.7], dtype=tl.float64, requires_grad=True)
    y = getattr(tl, name)(x)
    np.testing.assert_array_equal(y.detach().numpy(), FLAT[name](x.detach().numpy()))
    y.sum().backward()
    assert not x.grad.numpy().any()


def test_integer_input_gives_the_default_float_dtype_and_methods_exist():
    a = tl.tensor([1, 2, 3])
    with np.errstate(all="ignore"):                  # asin(2), atanh(1), ... are NaN or inf
        for name in CASES:
            assert getattr(tl, name)(a).dtype == np.float32, name
    x = tl.tensor([0.5, 1.0])
    np.testing.assert_allclose(x.sin().numpy(), np.sin([0.5, 1.0]), rtol=1e-6)
    np.testing.assert_allclose(x.rsqrt().numpy(), 1 / np.sqrt([0.5, 1.0]), rtol=1e-6)
