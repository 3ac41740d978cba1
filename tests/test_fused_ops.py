"""Linear, embedding, GELU-tanh and dropout Functions (ops/matmul.py, ops/indexing.py,
ops/activation.py, ops/elementwise.py): gradchecks and agreement with their unfused forms.
(Softmax, layer norm, attention and cross-entropy have a file each: tests/test_op_*.py.)"""
import numpy as np
import pytest
from hypothesis import given

import tinygrad_llm as tg
import tinygrad_llm.functional as F
from op_helpers import assert_twins, leaf
from tinygrad_llm.testing import gradcheck
from tinygrad_llm.testing import strategies as tst

rng = np.random.default_rng(0)

# ----- linear, embedding, dropout --------------------------------------------------------------

def test_linear_gradcheck_and_twin():
    x, w, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((5, 4)), rng.standard_normal(5)
    assert gradcheck(F.linear, [leaf(x), leaf(w), leaf(b)])
    assert gradcheck(lambda x, w: F.linear(x, w), [leaf(x), leaf(w)])
    assert_twins(F.linear, lambda x, w, b: x @ w.T + b, x, w, b)
    with pytest.raises(ValueError, match="do not match"):
        F.linear(tg.randn(2, 3), tg.randn(5, 4))


def test_embedding_gradcheck_with_repeats_and_padding():
    ids = np.array([[0, 2, 2], [3, 0, 1]])
    w = rng.standard_normal((4, 3))
    assert gradcheck(lambda w: F.embedding(ids, w), [leaf(w)])
    wt = leaf(w)
    F.embedding(ids, wt, padding_idx=2).backward(np.ones((2, 3, 3)))
    np.testing.assert_array_equal(wt.grad.data[2], 0)
    np.testing.assert_array_equal(wt.grad.data[0], 2)  # id 0 used twice: gradients add


@given(tst.arrays(elements=tst.floats(-6, 6)))
def test_gelu_tanh_fused_equals_unfused_and_gradchecks(x):
    from tinygrad_llm.ops import activation
    assert_twins(lambda t: F.gelu(t, approximate="tanh"),
                 lambda t: activation.gelu(t, approximate="tanh"), x)
    assert gradcheck(lambda t: F.gelu(t, approximate="tanh"), [leaf(x)])


def test_gelu_tanh_fused_on_many_blocks_matches_unfused():
    """Large enough for many blocks shared among threads (kernels/gelu.py _BLOCK)."""
    from tinygrad_llm.ops import activation
    x = rng.standard_normal(9 * 65536 + 123) * 3
    assert_twins(lambda t: F.gelu(t, approximate="tanh"),
                 lambda t: activation.gelu(t, approximate="tanh"), x)


def test_dropout_function():
    x = leaf(np.ones((50, 40)))
    y = F.dropout(x, 0.25, True, generator=tg.Generator(0))
    kept = y.data != 0
    assert 0.65 < kept.mean() < 0.85
    np.testing.assert_allclose(y.data[kept], 1 / 0.75)
    y.backward(np.ones(y.shape))
    np.testing.assert_array_equal(x.grad.data, y.data)
    assert F.dropout(x, 0.5, training=False) is x
    np.testing.assert_array_equal(F.dropout(x, 1.0).data, 0)
    with pytest.raises(ValueError):
        F.dropout(x, 1.5)


def test_every_fused_op_runs_on_the_reference_when_forced(monkeypatch):
    """TINYGRAD_LLM_KERNELS=ref (read at each call) gives the same values and gradients."""
    x = rng.standard_normal((2, 4, 6))
    t = np.array([[0, 5, 1, 2], [3, 3, 4, 0]])

    def run():
        leaves = [leaf(x)]
        a = leaves[0]
        qkv = a.reshape(2, 4, 3, 2).permute(2, 0, 3, 1)[..., None].expand(3, 2, 2, 4, 3)
        y = F.layer_norm(a, 6) + F.softmax(a, 1) + F.log_softmax(a, -1)
        y = y + F.packed_self_attention(qkv, is_causal=True).permute(0, 2, 1, 3).reshape(
            2, 4, 6)
        loss = F.cross_entropy(y.reshape(8, 6), t.reshape(8), label_smoothing=0.1)
        loss.backward()
        return loss.data, a.grad.data

    auto = run()
    monkeypatch.setenv("TINYGRAD_LLM_KERNELS", "ref")
    ref = run()
    for got, want in zip(auto, ref):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
