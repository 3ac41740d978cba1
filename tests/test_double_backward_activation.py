"""Second derivatives of the activations (ops/activation.py): gradgradcheck at float64 under
hypothesis on awkward shapes (0-d, size-1 dims), away from each op's kinks, and PyTorch's
Hessian-vector products where torch is installed; the fused GELU/SiLU through their twins."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from second_order_checks import check_second_order, leaf

import tinygrad_llm as tl
from tinygrad_llm.autograd import grad
from tinygrad_llm.ops import activation
from tinygrad_llm.testing import strategies as tst


def _torch_f(name, **kw):
    def f(x):
        import torch
        return getattr(torch.nn.functional, name)(x, **kw)
    return f


# name -> (ours, torch's, domain, kinks the draws stay away from)
CASES = {
    "tanh": (tl.tanh, _torch_f("tanh"), (-3, 3), ()),
    "sigmoid": (tl.sigmoid, _torch_f("sigmoid"), (-6, 6), ()),
    "relu": (tl.relu, _torch_f("relu"), (-3, 3), (0,)),
    "leaky_relu": (lambda x: tl.leaky_relu(x, 0.2), _torch_f("leaky_relu", negative_slope=0.2),
                   (-3, 3), (0,)),
    "gelu": (tl.gelu, _torch_f("gelu"), (-4, 4), ()),
    "gelu_tanh": (lambda x: tl.gelu(x, approximate="tanh"),
                  _torch_f("gelu", approximate="tanh"), (-4, 4), ()),
    "silu": (tl.silu, _torch_f("silu"), (-6, 6), ()),
    "softplus": (tl.softplus, _torch_f("softplus"), (-6, 6), ()),
    "softplus_beta": (lambda x: tl.softplus(x, beta=2.0, threshold=3.0),
                      _torch_f("softplus", beta=2.0, threshold=3.0), (-3, 3), (1.5,)),
    "logsigmoid": (tl.logsigmoid, _torch_f("logsigmoid"), (-6, 6), ()),
    "elu": (lambda x: tl.elu(x, 1.3), _torch_f("elu", alpha=1.3), (-3, 3), (0,)),
    # torch has no double backward for hardsigmoid (finite differences only)
    "hardsigmoid": (tl.hardsigmoid, None, (-5, 5), (-3, 3)),
    "hardswish": (tl.hardswish, _torch_f("hardswish"), (-5, 5), (-3, 3)),
}


@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=12)
@given(data=st.data())
def test_activation_second_derivative(name, data):
    ours, theirs, (lo, hi), kinks = CASES[name]
    x = data.draw(tst.arrays(shape=tst.shapes(max_dims=3, max_side=3),
                             elements=tst.floats(lo, hi, avoid=kinks, margin=0.05)))
    check_second_order(ours, x, torch_fn=theirs)


@settings(max_examples=10)
@given(x=tst.arrays(shape=tst.shapes(min_dims=1, max_dims=3, max_side=3),
                    elements=tst.floats(-3, 3, avoid=(0,), margin=0.1)),
       p=st.sampled_from([1.5, 2.0, 3.0]))
def test_normalize_second_derivative(x, p):
    def theirs(t):
        import torch
        return torch.nn.functional.normalize(t, p=p, dim=-1)
    check_second_order(lambda t: tl.normalize(t, p=p, dim=-1), x, torch_fn=theirs)


def _second(fn, x):
    """d^2/dx^2 of sum(fn(x)), elementwise (fn acts elementwise)."""
    t = leaf(x)
    (g,) = grad(fn(t).sum(), t, create_graph=True)
    (h,) = grad(g.sum(), t)
    return h.detach().numpy()


def test_sigmoid_based_second_derivatives_at_zero():
    # the stable sigmoid goes through |x|, whose derivative at 0 is 0: the recorded backward
    # must use the sigmoid op there, or softplus'' (0) would come out 0 instead of 1/4
    x = np.array([0.0, 1.0])
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(_second(tl.softplus, x), s * (1 - s), rtol=1e-12)
    np.testing.assert_allclose(_second(tl.logsigmoid, x), -s * (1 - s), rtol=1e-12)
    np.testing.assert_allclose(_second(lambda t: tl.softplus(t, beta=3.0), x),
                               3 * (1 / (1 + np.exp(-3 * x))) * (1 - 1 / (1 + np.exp(-3 * x))),
                               rtol=1e-12)


def test_gelu_second_derivatives_match_the_formulas():
    x = np.linspace(-3, 3, 13)
    phi = np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(_second(tl.gelu, x), 2 * phi - x * x * phi, rtol=1e-10,
                               atol=1e-14)
    c, k = math.sqrt(2 / math.pi), 0.044715
    u = c * (x + k * x ** 3)
    t, du = np.tanh(u), c * (1 + 3 * k * x * x)
    sech2 = 1 - t * t
    expected = sech2 * du + 0.5 * x * (-2 * t * sech2 * du * du + sech2 * c * 6 * k * x)
    np.testing.assert_allclose(_second(lambda a: tl.gelu(a, approximate="tanh"), x), expected,
                               rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("op", [activation.GeluTanh, activation.GeluExact, activation.Silu])
def test_fused_activations_declare_a_twin_that_computes_the_same(op):
    x = np.random.default_rng(0).standard_normal((4, 5))
    np.testing.assert_allclose(op.twin(tl.tensor(x)).numpy(), op.apply(tl.tensor(x)).numpy(),
                               rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_float32_second_derivative_keeps_its_dtype(approximate):
    x = np.linspace(-2, 2, 7)
    h32 = _second_f32(lambda t: tl.gelu(t, approximate=approximate), x)
    assert h32.dtype == np.float32
    np.testing.assert_allclose(h32, _second(lambda t: tl.gelu(t, approximate=approximate), x),
                               rtol=1e-4, atol=1e-5)


def _second_f32(fn, x):
    t = tl.tensor(x.astype(np.float32), requires_grad=True)
    (g,) = grad(fn(t).sum(), t, create_graph=True)
    (h,) = grad(g.sum(), t)
    return h.detach().numpy()
