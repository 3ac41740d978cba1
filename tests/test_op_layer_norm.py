"""Layer norm (ops/layer_norm.py, kernels/layer_norm.py): every check in one file.

The kernel's own tests (float32 error bounds, each implementation against the float64
reference) are in tests/test_kernels.py."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_llm as tg
import tinygrad_llm.functional as F
from op_helpers import assert_twins, leaf
from tinygrad_llm import kernels
from tinygrad_llm.ops.layer_norm import layer_norm_composite
from tinygrad_llm.testing import check_op, gradcheck
from tinygrad_llm.testing import strategies as tst

rng = np.random.default_rng(0)

# ----- layer norm ----------------------------------------------------------------------------

@given(tst.shapes(min_dims=1, max_dims=3, max_side=5), st.booleans(), st.data())
def test_layer_norm_fused_equals_composite_and_gradchecks(shape, affine, data):
    x = data.draw(tst.arrays(shape=st.just(shape)))
    if shape[-1] > 1:  # keep the rows away from constant, where d/dx is ~1/sqrt(eps)
        x = x + np.arange(shape[-1])
    c = shape[-1]
    arrays = [x] + ([rng.standard_normal(c), rng.standard_normal(c)] if affine else [])

    def fused(x, w=None, b=None):
        return F.layer_norm(x, (c,), w, b, eps=1e-5)

    def unfused(x, w=None, b=None):
        return layer_norm_composite(x, 1, w, b, eps=1e-5)

    assert_twins(fused, unfused, *arrays, atol=1e-10)
    assert gradcheck(fused, [leaf(a) for a in arrays])


def test_layer_norm_over_two_axes_matches_twin():
    x, w, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((3, 4)), rng.standard_normal(
        (3, 4))
    assert_twins(lambda x, w, b: F.layer_norm(x, (3, 4), w, b),
                 lambda x, w, b: layer_norm_composite(x, 2, w, b), x, w, b, atol=1e-10)


def test_layer_norm_constant_row_is_zero_with_finite_grad():
    eps = 1e-5
    x, w, b = leaf(np.full((2, 6), 3.0)), leaf(rng.standard_normal(6)), leaf(np.zeros(6))
    y = F.layer_norm(x, (6,), w, b, eps)
    np.testing.assert_array_equal(y.data, 0.0)
    g = rng.standard_normal((2, 6))
    y.backward(g)
    dxhat = g * w.data
    expected = (dxhat - dxhat.mean(-1, keepdims=True)) / np.sqrt(eps)  # torch's value too
    assert np.all(np.isfinite(x.grad.data))
    np.testing.assert_allclose(x.grad.data, expected, rtol=1e-9)


def test_layer_norm_bad_shapes():
    with pytest.raises(ValueError, match="normalized_shape"):
        F.layer_norm(tg.randn(2, 3), (4,))
    with pytest.raises(ValueError, match="weight"):
        F.layer_norm(tg.randn(2, 3), 3, tg.randn(4))


@given(tst.shapes(min_dims=1, max_dims=3, max_side=5), st.data())
def test_check_op_layer_norm(shape, data):
    x = data.draw(tst.arrays(shape=shape))
    c = shape[-1]
    w, b = rng.standard_normal(c), rng.standard_normal(c)
    torch = pytest.importorskip("torch")

    def ref(x, w, b):
        return kernels.layer_norm_forward_ref(x, w, b, 1e-5)[0]
    check_op(lambda x, w, b, **kw: F.layer_norm(x, (c,), w, b, **kw), [x, w, b], ref=ref,
             twin=lambda x, w, b: layer_norm_composite(x, 1, w, b, eps=1e-5),
             impls=("ref", "cpu"),
             torch_fn=lambda x, w, b: torch.nn.functional.layer_norm(x, (c,), w, b),
             gradcheck_kwargs=dict(atol=1e-4))
