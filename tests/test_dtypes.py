"""PyTorch's type promotion (dtypes.py) against torch itself, op by op, for every dtype pair.

Regression for a silent bug: NumPy's rules turned float32 with an int64 tensor into float64,
and int tensors through exp, /, + 0.5, ** 0.5 into float64, so a model ran in float64 unseen.
"""
import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_llm as tl
from tinygrad_llm import dtypes

DTYPES = [np.bool_, np.uint8, np.int8, np.int16, np.int32, np.int64, np.float16, np.float32,
          np.float64]
SCALARS = [True, 3, 0.5]


def _array(dtype, shape):
    return (np.arange(1, 1 + int(np.prod(shape))).reshape(shape) % 3 + 1).astype(dtype)


def test_result_type_matches_the_rules_written_down():
    assert dtypes.result_type(np.ones(2, np.int64), np.ones(2, np.float32)) == np.float32
    assert dtypes.result_type(np.ones(2, np.int64), 0.5) == np.float32
    assert dtypes.result_type(np.ones(2, np.float32), np.ones((), np.float64)) == np.float32
    assert dtypes.result_type(np.ones(2, np.int64), np.ones((), np.float64)) == np.float64
    assert dtypes.result_type(np.ones(2, np.bool_), 2) == np.int64
    with pytest.raises(TypeError):
        dtypes.result_type(1, 2.0)


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "maximum"])
def test_binary_ops_promote_like_torch(op):
    torch = pytest.importorskip("torch")
    pairs = list(itertools.product(DTYPES, DTYPES))
    for da, db in pairs:
        if op == "sub" and np.bool_ in (da, db):
            continue                              # torch refuses bool subtraction
        for shape_b in [(3,), ()]:
            a, b = _array(da, (2, 3)), _array(db, shape_b)
            want = getattr(torch, op)(torch.from_numpy(a), torch.from_numpy(np.array(b)))
            got = getattr(tl, op)(tl.tensor(a), tl.tensor(b))
            assert got.dtype == np.dtype(str(want.dtype).replace("torch.", "")), (op, da, db,
                                                                                   shape_b)
            np.testing.assert_allclose(got.numpy().astype(np.float64),
                                       want.numpy().astype(np.float64), rtol=1e-3)


@pytest.mark.parametrize("scalar", SCALARS)
def test_python_numbers_are_weak_like_torch(scalar):
    torch = pytest.importorskip("torch")
    for d in DTYPES:
        a = _array(d, (4,))
        for fn in (lambda x: x + scalar, lambda x: x * scalar, lambda x: scalar * x):
            want = fn(torch.from_numpy(a)).dtype
            got = fn(tl.tensor(a)).dtype
            assert got == np.dtype(str(want).replace("torch.", "")), (d, scalar)


def test_integer_tensors_through_float_functions_give_the_default_dtype():
    torch = pytest.importorskip("torch")
    a = np.array([1, 2, 3])
    for name in ("exp", "log", "sqrt", "sin", "cos", "tanh", "sigmoid", "rsqrt", "erf"):
        want = getattr(torch, name)(torch.from_numpy(a)).dtype
        got = getattr(tl, name)(tl.tensor(a)).dtype
        assert got == np.float32 and str(want) == "torch.float32", name
    assert (tl.tensor(a) / 2).dtype == np.float32
    assert (tl.tensor(a) / tl.tensor(a)).dtype == np.float32
    assert (tl.tensor(a) ** 0.5).dtype == np.float32
    assert (tl.tensor(a) + 0.5).dtype == np.float32


def test_gradients_come_back_in_each_inputs_dtype():
    a = tl.tensor(np.ones(3, np.float32), requires_grad=True)
    b = tl.tensor(np.array(2.0), dtype=np.float64, requires_grad=True)   # a 0-d float64
    y = a * b
    assert y.dtype == np.float32
    y.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    assert float(b.grad.data) == 3.0


def test_linear_and_matmul_refuse_mixed_dtypes_like_torch():
    layer = tl.nn.Linear(2, 3)
    with pytest.raises(RuntimeError, match="dtype"):
        layer(tl.ones(4, 2, dtype=tl.float64))
    with pytest.raises(RuntimeError, match="same dtype"):
        tl.ones(2, 2) @ tl.ones(2, 2, dtype=tl.float64)


def test_default_dtype_can_be_changed_and_restored():
    assert tl.get_default_dtype() == np.float32
    tl.set_default_dtype(tl.float64)
    try:
        assert tl.tensor([1.0]).dtype == np.float64 and tl.zeros(2).dtype == np.float64
        assert (tl.tensor([1, 2]) * 0.5).dtype == np.float64
    finally:
        tl.set_default_dtype(tl.float32)
    with pytest.raises(TypeError):
        tl.set_default_dtype(tl.int64)


@given(st.sampled_from(DTYPES), st.sampled_from(DTYPES), st.booleans())
def test_where_promotes_like_torch(da, db, zero_dim):
    torch = pytest.importorskip("torch")
    a, b = _array(da, (3,)), _array(db, () if zero_dim else (3,))
    cond = np.array([True, False, True])
    want = torch.where(torch.from_numpy(cond), torch.from_numpy(a), torch.from_numpy(np.array(b)))
    got = tl.where(tl.tensor(cond), tl.tensor(a), tl.tensor(b))
    assert got.dtype == np.dtype(str(want.dtype).replace("torch.", ""))
