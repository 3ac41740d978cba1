"""Second derivatives of the ops that run two ops as one (GELU + Linear, LayerNorm + Linear),
and of fused ops whose inputs share a history, float64. As in test_double_backward_fused.py,
each is taken through the op's twin (the two ops in a row)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_llm as tg
import tinygrad_llm.functional as F
from second_order_checks import check_second_order
from tinygrad_llm.testing import strategies as tst

SMALL = settings(max_examples=12, deadline=None)


def values(shape, lo=-3.0, hi=3.0):
    return hnp.arrays(np.float64, shape, elements=tst.floats(lo, hi))


# ----- GELU + Linear -------------------------------------------------------------------------

@SMALL
@given(st.data(), st.sampled_from(["none", "tanh"]), st.booleans())
def test_gelu_linear_second_derivative(data, approximate, bias):
    rows, n_in, n_out = data.draw(st.tuples(st.integers(1, 3), st.integers(1, 3),
                                            st.integers(1, 3)))
    arrays = [data.draw(values(s)) for s in [(rows, n_in), (n_out, n_in)]]
    if bias:
        arrays.append(data.draw(values((n_out,))))
    torch = pytest.importorskip("torch")
    check_second_order(lambda *t: F.gelu_linear(*t, approximate=approximate), *arrays,
                       torch_fn=lambda *t: torch.nn.functional.linear(
                           torch.nn.functional.gelu(t[0], approximate=approximate), *t[1:]))


# ----- LayerNorm + Linear --------------------------------------------------------------------

@SMALL
@given(st.data(), st.booleans())
def test_layer_norm_linear_second_derivative(data, bias):
    rows, c, n_out = data.draw(st.tuples(st.integers(1, 3), st.integers(2, 4),
                                         st.integers(1, 3)))
    arrays = [data.draw(values(s)) for s in [(rows, c), (c,), (c,), (n_out, c)]]
    if bias:
        arrays.append(data.draw(values((n_out,))))
    torch = pytest.importorskip("torch")
    tF = torch.nn.functional
    check_second_order(F.layer_norm_linear, *arrays,
                       torch_fn=lambda x, lw, lb, *wb: tF.linear(
                           tF.layer_norm(x, (x.shape[-1],), lw, lb), *wb))


@pytest.mark.parametrize("case", ["attention(x, x, x)", "gelu_linear(2 W, W)",
                                  "layer_norm(x, weight=x[0])",
                                  "layer_norm_linear(embedding(W), W)"])
def test_twin_inputs_that_share_a_history(case):
    """A fused op whose inputs are one Tensor twice, or one computed from another: through the
    twin, each input position gets its own partial derivative (the outer walk adds the paths
    between them), as in the first-order backward."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((1, 2, 3, 4)), rng.standard_normal((5, 4)) * 0.5
    idx = tg.tensor(rng.integers(0, 5, (2, 3)))
    fn, arrays = {
        "attention(x, x, x)": (lambda x: F.scaled_dot_product_attention(x, x, x), [x]),
        "gelu_linear(2 W, W)": (lambda w: F.gelu_linear(w * 2, w), [w[:4]]),
        "layer_norm(x, weight=x[0])": (lambda x: F.layer_norm(x, 4, x[0, 0, 0]), [x]),
        "layer_norm_linear(embedding(W), W)": (
            lambda w: F.layer_norm_linear(F.embedding(idx, w), None, None, w), [w]),
    }[case]
    check_second_order(fn, *arrays)
