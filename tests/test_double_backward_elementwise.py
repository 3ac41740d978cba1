"""Second derivatives of the elementwise arithmetic (ops/elementwise.py, ops/binary.py):
gradgradcheck in float64 on broadcast shapes (size-1 axes and 0-d included) under hypothesis,
and parity with torch.autograd.grad(create_graph=True) twice.

The strategies keep every input away from kinks and jumps (ties of max/min, the clamp bounds,
the zeros of copysign, the integer quotients of remainder): no loose tolerance anywhere.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_llm as tg
from tinygrad_llm import ops
from tinygrad_llm.autograd import grad
from tinygrad_llm.ops.elementwise import Dropout
from tinygrad_llm.testing import strategies as tst

from second_order_checks import check_second_order, torch_parity

SETTINGS = settings(max_examples=12, deadline=None)


def _pair(draw, a_elements, b_elements):
    shape_a, shape_b = draw(tst.broadcastable_shapes(2, max_side=3))
    return (draw(hnp.arrays(np.float64, shape_a, elements=a_elements)),
            draw(hnp.arrays(np.float64, shape_b, elements=b_elements)))


@st.composite
def pairs(draw, a_elements=None, b_elements=None):
    """Two float64 arrays whose shapes broadcast together."""
    default = tst.floats(-3, 3)
    return _pair(draw, default if a_elements is None else a_elements,
                 default if b_elements is None else b_elements)


def _offset_from_integers(lo, hi):
    """Floats k + f with k an integer in [-3, 2] and f in [lo, hi]: two such families with
    disjoint [lo, hi] are never closer than the gap between the ranges (no ties)."""
    return st.integers(-3, 2).flatmap(lambda k: st.floats(k + lo, k + hi))


NO_TIES = (_offset_from_integers(0.05, 0.45), _offset_from_integers(0.55, 0.95))


@st.composite
def dividend_divisor(draw):
    """(a, b) with a / b at least 0.1 from every integer: remainder and fmod are smooth there."""
    shape_q, shape_b = draw(tst.broadcastable_shapes(2, max_side=3))
    shape_a = np.broadcast_shapes(shape_q, shape_b)
    q = draw(hnp.arrays(np.float64, shape_a, elements=_offset_from_integers(0.1, 0.9)))
    b = draw(hnp.arrays(np.float64, shape_b, elements=tst.floats(0.5, 2)))
    sign = draw(st.sampled_from([1.0, -1.0]))
    return q * b, sign * b


# ----- arithmetic ---------------------------------------------------------------------------

@SETTINGS
@given(pairs())
def test_add_sub_mul_gradgrad(ab):
    check_second_order(lambda a, b: (a + b) * (a - b) * b, *ab)


@SETTINGS
@given(pairs(b_elements=tst.floats(0.5, 3)))
def test_div_gradgrad(ab):
    a, b = ab
    check_second_order(lambda a, b: a / b, a, b)
    check_second_order(lambda a, b: a / -b, a, b)


@SETTINGS
@given(tst.arrays(shape=tst.shapes(max_side=3), elements=tst.floats(-3, 3)))
def test_neg_and_python_number_operands_gradgrad(x):
    check_second_order(lambda x: 2.5 / (1.5 + -x * x) - 3 * x, x)


@SETTINGS
@given(pairs(a_elements=tst.floats(0.3, 2.5),
             b_elements=tst.floats(-2, 2, avoid=(0.0,), margin=0.05)))
def test_pow_tensor_exponent_gradgrad(ab):
    # b = 0 is excluded: there da = b a^(b-1) is taken as 0 (as torch), a kink in b
    check_second_order(lambda a, b: a ** b, *ab)


@SETTINGS
@given(tst.arrays(shape=tst.shapes(max_side=3), elements=tst.floats(-2, 2)),
       st.sampled_from([0, 1, 2, 3, -2, 0.0, 2.0]))
def test_pow_python_exponent_gradgrad(x, exponent):
    x = np.where(np.abs(x) < 0.2, 0.5, x)        # x^-2 is smooth away from 0
    check_second_order(lambda x: x ** exponent, x)


@SETTINGS
@given(tst.positive(shape=tst.shapes(max_side=3), lo=0.3, hi=3),
       st.sampled_from([0.5, -1.5, 2.0]))
def test_pow_fractional_exponent_and_python_base_gradgrad(x, number):
    check_second_order(lambda x: x ** number, x)
    check_second_order(lambda x: abs(number) ** x, x)          # rpow: a Python number as base


def test_pow_zero_exponent_has_a_constant_zero_gradient_not_nan():
    x = tg.tensor(np.array([0.0, 1.5]), requires_grad=True)
    (g,) = grad((x ** 0).sum(), x, create_graph=True)
    assert np.array_equal(g.data, [0.0, 0.0]) and not g.requires_grad   # as torch
    b = tg.tensor(np.array([0.0, 0.0]), requires_grad=True)
    ga, gb = grad((x ** b * x).sum(), [x, b], create_graph=True)
    assert np.all(np.isfinite(ga.data)) and np.all(np.isfinite(gb.data))


# ----- comparison-based ---------------------------------------------------------------------

@SETTINGS
@given(pairs(*NO_TIES), st.booleans())
def test_maximum_minimum_gradgrad(ab, swap):
    a, b = ab[::-1] if swap else ab
    check_second_order(lambda a, b: ops.maximum(a, b) * a, a, b)
    check_second_order(lambda a, b: ops.minimum(a, b) * (a + b), a, b)


@SETTINGS
@given(tst.away_from((-0.5, 0.7), shape=tst.shapes(max_side=3), margin=1e-2, lo=-2, hi=2))
def test_clamp_gradgrad(x):
    check_second_order(lambda x: ops.clamp(x, -0.5, 0.7) * x, x)
    check_second_order(lambda x: ops.clamp(x, min=-0.5) * x * x, x)


@SETTINGS
@given(pairs(_offset_from_integers(0.02, 0.3), _offset_from_integers(0.36, 0.63)), st.data())
def test_clamp_tensor_bounds_gradgrad(x_lo, data):
    x, lo = x_lo                              # x, lo and hi never tie, and lo < hi
    hi = np.ceil(lo.max()) + data.draw(hnp.arrays(
        np.float64, data.draw(tst.shapes(max_dims=1, max_side=1)),
        elements=_offset_from_integers(0.69, 0.97).map(lambda v: v + 3)))
    check_second_order(lambda x, lo, hi: ops.clamp(x, lo, hi) * x * (lo + hi), x, lo, hi)
    check_second_order(lambda x, lo: ops.clamp(x, min=lo) * lo * x, x, lo)


@SETTINGS
@given(pairs(), st.data())
def test_where_and_masked_fill_gradgrad(ab, data):
    a, b = ab
    shape = np.broadcast_shapes(a.shape, b.shape)
    cond = data.draw(hnp.arrays(np.bool_, shape))
    mask = tg.tensor(data.draw(hnp.arrays(np.bool_, a.shape)))
    check_second_order(lambda a, b: ops.where(tg.tensor(cond), a * a, b * b * b), a, b)
    check_second_order(lambda a: ops.masked_fill(a * a, mask, 1.5), a)


# ----- copies, casts, dropout ---------------------------------------------------------------

@SETTINGS
@given(tst.arrays(shape=tst.shapes(max_side=3), elements=tst.floats(-3, 3)))
def test_clone_to_device_and_dropout_gradgrad(x):
    multiplier = np.random.default_rng(0).integers(0, 2, x.shape) / 0.5
    check_second_order(lambda x: ops.clone(x) * x, x)
    check_second_order(lambda x: ops.to_device(x, "cpu") * x, x)
    check_second_order(lambda x: Dropout.apply(x * x, multiplier), x)


@SETTINGS
@given(st.data())
def test_cast_second_derivative_goes_through_float32_and_back(data):
    x_values = data.draw(tst.arrays(shape=tst.shapes(max_side=3), elements=tst.floats(-3, 3)))
    w = data.draw(tst.arrays(shape=st.just(x_values.shape), elements=tst.floats(-3, 3)))
    x = tg.tensor(x_values, requires_grad=True)
    y = ops.cast(x, np.float32)
    (g,) = grad((y * y * y).sum(), x, create_graph=True)            # 3 x^2, cast back
    (h,) = grad((g * tg.tensor(w)).sum(), x)                        # 6 x w
    assert g.dtype == np.float64 and h.dtype == np.float64 and g.requires_grad
    np.testing.assert_allclose(h.data, 6 * x_values * w, rtol=1e-5, atol=1e-5)  # float32 inside


# ----- binary.py: remainder, fmod, copysign ----------------------------------------------------

@SETTINGS
@given(dividend_divisor())
def test_remainder_fmod_gradgrad(ab):
    check_second_order(lambda a, b: ops.remainder(a, b) * a * b, *ab)
    check_second_order(lambda a, b: ops.fmod(a, b) * b * b, *ab)


@SETTINGS
@given(pairs(*(tst.floats(-3, 3, avoid=(0.0,), margin=0.05),) * 2))
def test_copysign_gradgrad(ab):
    check_second_order(lambda a, b: ops.copysign(a, b) * a * b, *ab)


# ----- mixed dtypes: the saved inputs are promoted again in backward -------------------------

@pytest.mark.parametrize("fn", [
    lambda a, b: a ** b, lambda a, b: a / b, lambda a, b: ops.maximum(a, b) * a,
    lambda a, b: ops.remainder(a, b) * a, lambda a, b: ops.copysign(a, b) * a * b],
    ids=["pow", "div", "maximum", "remainder", "copysign"])
def test_mixed_float32_float64_second_derivatives_match_float64(fn):
    a_values, b_values = np.array([0.7, 1.3, 2.2]), np.array([0.4, 2.1, 1.7])
    results = []
    for a_dtype in (np.float32, np.float64):
        a = tg.tensor(a_values.astype(a_dtype), requires_grad=True)
        b = tg.tensor(b_values, requires_grad=True)
        ga, gb = grad(fn(a, b).sum(), [a, b], create_graph=True)
        assert ga.dtype == a_dtype and gb.dtype == np.float64
        results.append([h.data for h in grad((ga * ga).sum() + gb.sum(), [a, b])])
    for mixed, plain in zip(*results):
        np.testing.assert_allclose(mixed, plain, rtol=1e-5, atol=1e-6)


# ----- torch parity of the second derivatives -----------------------------------------------

@pytest.mark.parametrize("name", ["mul", "div", "pow", "rpow", "maximum", "where", "clamp",
                                  "clamp_tensor_bounds", "remainder", "fmod", "copysign"])
def test_second_derivatives_match_torch(name):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    a = rng.uniform(0.5, 2.0, (2, 1, 3)) * rng.choice([-1, 1], (2, 1, 3))
    b = rng.uniform(0.5, 2.0, (4, 1)) * rng.choice([-1, 1], (4, 1))
    cond = rng.random((2, 4, 3)) > 0.5
    cases = {
        "mul": (lambda a, b: a * b * a, lambda a, b: a * b * a),
        "div": (lambda a, b: a / b, lambda a, b: a / b),
        "pow": (lambda a, b: abs(a) ** b, lambda a, b: abs(a) ** b),
        "rpow": (lambda a, b: 1.7 ** (a * b), lambda a, b: 1.7 ** (a * b)),
        "maximum": (lambda a, b: ops.maximum(a, b) * b, lambda a, b: torch.maximum(a, b) * b),
        "where": (lambda a, b: ops.where(tg.tensor(cond), a * a, b * a),
                  lambda a, b: torch.where(torch.tensor(cond), a * a, b * a)),
        "clamp": (lambda a, b: ops.clamp(a * b, -1.1, 0.9) * a,
                  lambda a, b: torch.clamp(a * b, -1.1, 0.9) * a),
        "clamp_tensor_bounds": (lambda a, b: ops.clamp(a * b, b - 1, b * b) * a * b,
                                lambda a, b: torch.clamp(a * b, b - 1, b * b) * a * b),
        "remainder": (lambda a, b: ops.remainder(a, b) * a * b,
                      lambda a, b: torch.remainder(a, b) * a * b),
        "fmod": (lambda a, b: ops.fmod(a, b) * b * b, lambda a, b: torch.fmod(a, b) * b * b),
        "copysign": (lambda a, b: ops.copysign(a, b) * a * b,
                     lambda a, b: torch.copysign(a, b) * a * b),
    }
    torch_parity(*cases[name], a, b)


def test_numpy_array_on_the_left_of_a_tensor_is_recorded():
    # NumPy defers to Tensor's reflected operators (as for torch.Tensor): the result is a
    # Tensor with a graph, not an ndarray of the values, so a mask times a gradient stays
    # differentiable under create_graph
    x = tg.tensor(np.array([0.3, -1.2, 2.0]), requires_grad=True)
    w = np.array([1.0, 2.0, 3.0])
    assert isinstance(w * x, tg.Tensor) and (w * x).requires_grad
    mask = w > 1.5
    y = mask * x * x * x + 2.0 / (x * x + 1)
    (g,) = grad(y.sum(), x, create_graph=True)
    (h,) = grad(g.sum(), x)
    xv = x.data
    np.testing.assert_allclose(h.data, 6 * mask * xv + 2 * (6 * xv ** 2 - 2) / (xv ** 2 + 1) ** 3,
                               rtol=1e-12)


@pytest.mark.parametrize("x_dtype,lo_dtype", [("float32", "int64"), ("float32", "float64"),
                                              ("float64", "float32"), ("int64", "float32")])
def test_clamp_tensor_bounds_dtypes_match_torch(x_dtype, lo_dtype):
    torch = pytest.importorskip("torch")
    values = {"x": np.array([0.3, 1.2, 2.0]), "lo": np.array([1.0, 1.0, 1.0]),
              "hi": np.array([1.5, 1.5, 1.5])}
    dtypes = {"x": x_dtype, "lo": lo_dtype, "hi": "float32"}
    ours = {k: tg.tensor(v.astype(dtypes[k]), requires_grad=dtypes[k] != "int64")
            for k, v in values.items()}
    theirs = {k: torch.tensor(v.astype(dtypes[k]), requires_grad=dtypes[k] != "int64")
              for k, v in values.items()}
    y = ops.clamp(ours["x"], ours["lo"], ours["hi"])
    y_torch = torch.clamp(theirs["x"], theirs["lo"], theirs["hi"])
    assert str(y.dtype) == str(y_torch.dtype).replace("torch.", "")
    (y * y).sum().backward()
    (y_torch * y_torch).sum().backward()
    for k in values:
        if theirs[k].grad is not None:
            assert str(ours[k].grad.dtype) == dtypes[k]
            np.testing.assert_allclose(ours[k].grad.data, theirs[k].grad.numpy(), rtol=1e-6)
