"""logsigmoid, elu, hardsigmoid, hardswish, softplus(beta, threshold), normalize: float64
gradchecks away from the kinks and PyTorch parity, extreme inputs included."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_llm as tg
from tinygrad_llm import ops
from tinygrad_llm.testing import strategies as tst
from torch_parity import check_grad, parity


@given(tst.arrays(elements=tst.floats(-30, 30)))
def test_logsigmoid_grad(x):
    check_grad(ops.logsigmoid, x)


@given(tst.away_from([0.0]), st.sampled_from([0.5, 1.0, 2.0]))
def test_elu_grad(x, alpha):
    check_grad(lambda a: ops.elu(a, alpha), x)


@given(tst.away_from([-3.0, 3.0]))
def test_hardsigmoid_hardswish_grad(x):
    check_grad(lambda a: ops.hardsigmoid(a) + ops.hardswish(a), x)


@given(tst.arrays(elements=tst.floats(-30, 30)), st.sampled_from([0.5, 1.0, 3.0]),
       st.sampled_from([5.0, 20.0]))
def test_softplus_grad(x, beta, threshold):
    x = np.where(np.abs(beta * x - threshold) < 1e-2, x + 0.1, x)   # off the switch point
    check_grad(lambda a: ops.softplus(a, beta=beta, threshold=threshold), x)


@st.composite
def rows_and_dim(draw):
    x = draw(tst.arrays(shape=tst.shapes(min_dims=1)))
    return x, draw(st.integers(-x.ndim, x.ndim - 1))


@given(rows_and_dim(), st.sampled_from([1.5, 2.0, 3.0]))
def test_normalize_grad(xd, p):
    x, dim = xd
    x = np.where(np.abs(x) < 1e-2, 0.5, x)   # |x|^(p-1) has a kink at 0 for p < 2
    check_grad(lambda a: ops.normalize(a, p=p, dim=dim), x)


def test_normalize_zero_row_gives_zero_and_finite_gradient():
    x = tg.tensor(np.zeros((2, 3)), requires_grad=True)
    y = ops.normalize(x, dim=1)
    y.sum().backward()
    assert np.all(y.data == 0) and np.all(np.isfinite(x.grad.data))


# ----- PyTorch parity -------------------------------------------------------------------------

X = np.concatenate([np.linspace(-40, 40, 41), [-3.0, 3.0, -2.999, 2.999, 0.0, 1e-8, -1e-8]])


@pytest.mark.parametrize("name, kwargs", [
    ("logsigmoid", {}), ("elu", {}), ("elu", {"alpha": 0.3}), ("hardsigmoid", {}),
    ("hardswish", {}), ("softplus", {}), ("softplus", {"beta": 2.0, "threshold": 10.0}),
])
def test_parity_activations(name, kwargs):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    # torch's float64 hardsigmoid gradient uses a float32 1/6 (relative error 3e-8)
    rtol = 1e-7 if name == "hardsigmoid" else 1e-10
    parity(lambda a: getattr(ops, name)(a, **kwargs), lambda a: getattr(F, name)(a, **kwargs),
           X, rtol=rtol)
    parity(lambda a: getattr(ops, name)(a, **kwargs), lambda a: getattr(F, name)(a, **kwargs),
           X.astype(np.float32), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("p, dim", [(2.0, 1), (1.0, 0), (3.0, -1)])
def test_parity_normalize(p, dim):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(5).standard_normal((3, 4))
    x[1] = 0.0                       # a zero row: eps keeps it finite
    parity(lambda a: ops.normalize(a, p=p, dim=dim),
           lambda a: torch.nn.functional.normalize(a, p=p, dim=dim), x)


# ----- check_op: the NumPy reference, gradcheck, the composite twin, PyTorch ------------------

def _F():
    try:
        import torch
        return torch.nn.functional
    except ImportError:
        return None


Z = np.linspace(-6, 6, 25) + 0.01                        # off the kinks at 0 and +-3
CHECK_OP = [
    ("logsigmoid", ops.logsigmoid, lambda x: -np.log1p(np.exp(-x)),
     lambda a: a.sigmoid().log()),
    ("elu", ops.elu, lambda x: np.where(x > 0, x, np.expm1(x)),
     lambda a: tg.where(a > 0, a, a.exp() - 1)),
    ("hardsigmoid", ops.hardsigmoid, lambda x: np.clip(x / 6 + 0.5, 0, 1),
     lambda a: (a / 6 + 0.5).clamp(0, 1)),
    ("hardswish", ops.hardswish, lambda x: x * np.clip(x + 3, 0, 6) / 6,
     lambda a: a * (a + 3).clamp(0, 6) / 6),
    ("softplus", lambda a: ops.softplus(a, beta=2.0), lambda x: np.log1p(np.exp(2 * x)) / 2,
     lambda a: ((2 * a).exp() + 1).log() / 2),
]


@pytest.mark.parametrize("name, fn, ref, twin", CHECK_OP, ids=[c[0] for c in CHECK_OP])
def test_check_op(name, fn, ref, twin):
    from tinygrad_llm.testing import check_op
    F = _F()
    kwargs = {"beta": 2.0} if name == "softplus" else {}
    rtol = 1e-7 if name == "hardsigmoid" else 1e-9      # torch's float32 1/6, see above
    check_op(fn, [Z], ref=ref, twin=twin, rtol=rtol,
             torch_fn=F and (lambda t: getattr(F, name)(t, **kwargs)))
