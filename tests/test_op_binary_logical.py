"""remainder, fmod, copysign, div(rounding_mode=) and the value tests / logic ops
(isfinite, isinf, isnan, logical_*): gradchecks away from the jumps and PyTorch parity."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_llm as tg
from tinygrad_llm import ops
from tinygrad_llm.testing import strategies as tst
from torch_parity import check_grad, parity, same_error


def _away_from_jumps(ab):
    """a / b at least 1e-3 from an integer: remainder and fmod jump where a / b is one."""
    a, b = np.broadcast_arrays(*ab)
    q = a / b
    return np.all(np.abs(q - np.round(q)) > 1e-3)


def _pairs():
    return tst.broadcastable_shapes(2).flatmap(lambda s: st.tuples(
        tst.arrays(shape=st.just(s[0]), elements=tst.floats(-10, 10)),
        tst.arrays(shape=st.just(s[1]), elements=tst.floats(-4, 4, avoid=(0,), margin=0.25))))


@given(_pairs().filter(_away_from_jumps))
def test_remainder_fmod_grad(ab):
    check_grad(lambda a, b: ops.remainder(a, b) + 2 * ops.fmod(a, b), *ab)


@given(_pairs().filter(lambda ab: np.all(np.abs(ab[0]) > 1e-3)))
def test_copysign_grad(ab):
    check_grad(lambda a, b: ops.copysign(a, b), *ab)


@given(tst.arrays(elements=st.sampled_from([0.0, 1.0, -2.0, np.inf, -np.inf, np.nan])))
def test_value_tests_agree_with_numpy(x):
    t = tg.tensor(x)
    np.testing.assert_array_equal(t.isfinite().data, np.isfinite(x))
    np.testing.assert_array_equal(t.isinf().data, np.isinf(x))
    np.testing.assert_array_equal(t.isnan().data, np.isnan(x))
    np.testing.assert_array_equal(t.logical_not().data, x == 0)


def test_python_sign_convention():
    a = tg.tensor([5, -5, 5, -5])
    b = tg.tensor([3, 3, -3, -3])
    np.testing.assert_array_equal(ops.remainder(a, b).data, [5 % 3, -5 % 3, 5 % -3, -5 % -3])
    np.testing.assert_array_equal(ops.fmod(a, b).data, [2, -2, 2, -2])
    np.testing.assert_array_equal((a % 3).data, [2, 1, 2, 1])


# ----- PyTorch parity -------------------------------------------------------------------------

RNG = np.random.default_rng(4)
A = RNG.uniform(-6, 6, (3, 4))
B = RNG.uniform(0.5, 3, (4,)) * RNG.choice([-1, 1], 4)


@pytest.mark.parametrize("op", ["remainder", "fmod", "copysign"])
def test_parity_binary(op):
    torch = pytest.importorskip("torch")
    parity(lambda a, b: getattr(ops, op)(a, b), lambda a, b: getattr(torch, op)(a, b), A, B)
    parity(lambda a: getattr(ops, op)(a, 2.5), lambda a: getattr(torch, op)(a, 2.5), A)
    ints = RNG.integers(-9, 9, (5,))
    parity(lambda a: getattr(ops, op)(a, 4), lambda a: getattr(torch, op)(a, 4), ints)
    parity(lambda a, b: getattr(ops, op)(a, b), lambda a, b: getattr(torch, op)(a, b),
           A.astype(np.float32), ints[:4])


@pytest.mark.parametrize("mode", [None, "floor", "trunc"])
def test_parity_div_rounding_mode(mode):
    pytest.importorskip("torch")
    parity(lambda a, b: a.div(b, rounding_mode=mode), lambda a, b: a.div(b, rounding_mode=mode),
           A, B)
    ints = np.array([7, -7, 6, -6, 0])
    parity(lambda a: a.div(4, rounding_mode=mode), lambda a: a.div(4, rounding_mode=mode), ints)
    parity(lambda a: a // 4, lambda a: a // 4, ints)


def test_parity_logical():
    torch = pytest.importorskip("torch")
    x = np.array([0.0, 1.0, np.inf, -np.inf, np.nan, -2.0])
    y = np.array([1.0, 0.0, 0.0, 3.0, 0.0, np.nan])
    for name in ("isfinite", "isinf", "isnan", "isposinf", "isneginf", "logical_not"):
        parity(lambda a: getattr(ops, name)(a), lambda a: getattr(torch, name)(a), x,
               grad=False)
    for name in ("logical_and", "logical_or", "logical_xor"):
        parity(lambda a, b: getattr(ops, name)(a, b), lambda a, b: getattr(torch, name)(a, b),
               x, y, grad=False)
    ints = np.array([0, 3, -1])
    parity(lambda a: ops.isfinite(a), lambda a: torch.isfinite(a), ints)
    parity(lambda a: ops.isinf(a), lambda a: torch.isinf(a), ints)


def test_parity_errors():
    torch = pytest.importorskip("torch")
    same_error(lambda: ops.remainder(tg.tensor([1, 2]), 0),
               lambda: torch.remainder(torch.tensor([1, 2]), 0))
    same_error(lambda: tg.tensor([1.0]).div(2, rounding_mode="round"),
               lambda: torch.tensor([1.0]).div(2, rounding_mode="round"))


def test_check_op_remainder_fmod_copysign():
    from tinygrad_llm.testing import check_op
    try:
        import torch
    except ImportError:
        torch = None
    a, b = A[:, :3] + 0.05, B[:3]                        # a / b away from integers
    check_op(ops.remainder, [a, b], ref=np.remainder,
             twin=lambda x, y: x - (x / y).floor() * y,
             torch_fn=torch and torch.remainder)
    check_op(ops.fmod, [a, b], ref=np.fmod, twin=lambda x, y: x - (x / y).trunc() * y,
             torch_fn=torch and torch.fmod)
    check_op(ops.copysign, [a, b], ref=np.copysign, twin=lambda x, y: x.abs() * y.sign(),
             torch_fn=torch and torch.copysign)
