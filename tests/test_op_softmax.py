"""softmax and log_softmax (ops/softmax.py, kernels/softmax.py): every check in one file.

The kernels' own tests (awkward shapes, float32 error bounds, each implementation against the
float64 reference) are in tests/test_kernels.py."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_llm as tg
import tinygrad_llm.functional as F
from op_helpers import assert_twins, leaf
from tinygrad_llm import kernels
from tinygrad_llm.ops.softmax import log_softmax_composite, softmax_composite
from tinygrad_llm.testing import check_op, gradcheck
from tinygrad_llm.testing import strategies as tst

rng = np.random.default_rng(0)

# ----- softmax / log_softmax -----------------------------------------------------------------

@given(tst.arrays(shape=tst.shapes(min_dims=1, max_dims=3)), st.data())
def test_softmax_fused_equals_composite_and_gradchecks(x, data):
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1))
    assert_twins(lambda t: F.softmax(t, dim), lambda t: softmax_composite(t, dim), x)
    assert_twins(lambda t: F.log_softmax(t, dim), lambda t: log_softmax_composite(t, dim), x)
    assert gradcheck(lambda t: F.softmax(t, dim), [leaf(x)])
    assert gradcheck(lambda t: F.log_softmax(t, dim), [leaf(x)])


def test_softmax_all_masked_row_gives_zeros_and_zero_grad():
    x = leaf([[0.0, 1.0, 2.0], [-np.inf, -np.inf, -np.inf]])
    y = F.softmax(x, -1)
    assert np.all(np.isfinite(y.data)) and np.all(y.data[1] == 0)
    y.backward(np.ones((2, 3)))
    assert np.all(x.grad.data[1] == 0) and np.all(np.isfinite(x.grad.data))


def test_softmax_impl_ref_and_env_var_agree(monkeypatch):
    x = rng.standard_normal((3, 5))
    auto = F.softmax(tg.tensor(x), 1).data
    ref = F.softmax(tg.tensor(x), 1, impl="ref").data
    monkeypatch.setenv("TINYGRAD_LLM_KERNELS", "ref")
    env = F.log_softmax(tg.tensor(x), 1).data
    np.testing.assert_allclose(auto, ref, rtol=1e-12)
    np.testing.assert_allclose(env, np.log(ref), rtol=1e-12)


@given(tst.arrays(shape=tst.shapes(min_dims=1, max_dims=3), elements=tst.floats(-20, 20)),
       st.data())
def test_check_op_softmax_and_log_softmax(x, data):
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1))
    torch = pytest.importorskip("torch")
    for fn, ref, twin, theirs in (
            (F.softmax, kernels.softmax_ref, softmax_composite, torch.softmax),
            (F.log_softmax, kernels.log_softmax_ref, log_softmax_composite,
             torch.log_softmax)):
        def moved_ref(a, dim, ref=ref):       # the kernels' references work on the last axis
            return np.moveaxis(ref(np.moveaxis(a, dim, -1)), -1, dim)
        check_op(fn, [x], kwargs=dict(dim=dim), ref=moved_ref, twin=twin,
                 impls=("ref", "cpu"), torch_fn=theirs)
