"""Second derivatives of the unary math (ops/unary.py, ops/trig.py): gradgradcheck in float64
under hypothesis on shapes with size-1 axes and 0-d, each op on its smooth domain, and parity
with torch.autograd.grad(create_graph=True) twice.

The rounding functions (floor, ceil, round, trunc, sign) are flat: their first and second
derivatives are 0, checked through a product with x away from the jumps.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_llm import ops
from tinygrad_llm.testing import strategies as tst

from second_order_checks import check_second_order, torch_parity

# name: (the domain of x, as (lo, hi) or a strategy of elements)
SMOOTH = {
    "exp": (-3, 3), "log": (0.2, 4), "log2": (0.2, 4), "log1p": (-0.8, 3),
    "expm1": (-3, 3), "sqrt": (0.2, 4), "rsqrt": (0.2, 4),
    "reciprocal": tst.floats(-3, 3, avoid=(0.0,), margin=0.3),
    "abs": tst.floats(-3, 3, avoid=(0.0,), margin=0.05),
    "sin": (-4, 4), "cos": (-4, 4), "tan": (-1.2, 1.2), "asin": (-0.9, 0.9),
    "acos": (-0.9, 0.9), "atan": (-3, 3), "sinh": (-3, 3), "cosh": (-3, 3),
    "asinh": (-3, 3), "atanh": (-0.9, 0.9), "erf": (-3, 3),
}
FLAT = ["floor", "ceil", "round", "trunc", "sign"]


def _elements(domain):
    return tst.floats(*domain) if isinstance(domain, tuple) else domain


@pytest.mark.parametrize("name", sorted(SMOOTH))
def test_unary_gradgrad(name):
    op = getattr(ops, name)

    @settings(max_examples=10, deadline=None)
    @given(tst.arrays(shape=tst.shapes(max_side=3), elements=_elements(SMOOTH[name])))
    def check(x):
        check_second_order(op, x)

    check()


@pytest.mark.parametrize("name", FLAT)
@settings(max_examples=8, deadline=None)
@given(x=tst.arrays(shape=tst.shapes(max_side=3),
                    elements=st.integers(-3, 2).flatmap(lambda k: st.floats(k + 0.1,
                                                                             k + 0.4))))
def test_flat_ops_have_zero_second_derivative(name, x):
    # x - k in [0.1, 0.4]: away from the integers (floor, ceil, trunc), the halves (round)
    # and 0 (sign)
    op = getattr(ops, name)
    check_second_order(lambda x: op(x) * x * x, x)


@pytest.mark.parametrize("name", sorted(SMOOTH) + FLAT)
def test_second_derivatives_match_torch(name):
    torch = pytest.importorskip("torch")
    domain = SMOOTH.get(name, (0.1, 0.4))
    lo, hi = domain if isinstance(domain, tuple) else (0.3, 3)
    rng = np.random.default_rng(2)
    x = rng.uniform(lo, hi, (2, 3))
    if name in FLAT:
        x = x + rng.integers(-3, 3, x.shape)          # k + [0.1, 0.4]: away from the jumps
    elif name in ("abs", "reciprocal"):
        x = x * rng.choice([-1, 1], x.shape)
    ours, theirs = getattr(ops, name), getattr(torch, name)
    torch_parity(lambda x: ours(x) * x, lambda x: theirs(x) * x, x)
