"""ops/gelu_linear.py: linear(gelu(x)) as one op that keeps x only. Same values and gradients
as the two ops in a row (float64, gradcheck, PyTorch; the second derivative is in
test_double_backward_fused_pairs.py), and it holds one array of x's size less for backward."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_llm as tg
import tinygrad_llm.functional as F
from op_helpers import assert_gpt_unchanged_by, middle_kept_by_two_ops
from tinygrad_llm.testing import check_op, gradcheck
from tinygrad_llm.models import GPT, GPTConfig

APPROX = ["none", "tanh"]


def arrays(seed, batch, n_in, n_out):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(batch + (n_in,)) * 2, rng.standard_normal((n_out, n_in)),
            rng.standard_normal(n_out))


def gelu_ref(x, approximate):
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    from math import erf
    return x * 0.5 * (1 + np.vectorize(erf)(x / np.sqrt(2)))


@pytest.mark.parametrize("approximate", APPROX)
def test_against_reference_twin_gradcheck_and_torch(approximate):
    x, w, b = arrays(0, (2, 3), 5, 4)
    torch = pytest.importorskip("torch")
    tF = torch.nn.functional
    check_op(lambda x, w, b: F.gelu_linear(x, w, b, approximate), [x, w, b],
             ref=lambda x, w, b: gelu_ref(x, approximate) @ w.T + b,
             twin=lambda x, w, b: F.linear(F.gelu(x, approximate=approximate), w, b),
             torch_fn=lambda x, w, b: tF.linear(tF.gelu(x, approximate=approximate), w, b))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2 ** 16), batch=st.sampled_from([(1,), (3,), (2, 4), (0,)]),
       n_in=st.integers(1, 6), n_out=st.integers(1, 5), bias=st.booleans(),
       approximate=st.sampled_from(APPROX))
def test_gradients_equal_the_two_ops_in_a_row(seed, batch, n_in, n_out, bias, approximate):
    x, w, b = arrays(seed, batch, n_in, n_out)
    leaves = [tg.tensor(a, requires_grad=True) for a in (x, w, b)]
    if not bias:
        leaves[2] = None
    fused = F.gelu_linear(leaves[0], leaves[1], leaves[2], approximate)
    g = np.random.default_rng(seed + 1).standard_normal(fused.shape)
    fused.backward(tg.tensor(g))
    ours = [t.grad.data.copy() for t in leaves if t is not None]
    for t in leaves:
        if t is not None:
            t.grad = None
    two = F.linear(F.gelu(leaves[0], approximate=approximate), leaves[1], leaves[2])
    two.backward(tg.tensor(g))
    np.testing.assert_allclose(fused.data, two.data, rtol=1e-12, atol=1e-12)
    for a, t in zip(ours, [t for t in leaves if t is not None]):
        np.testing.assert_allclose(a, t.grad.data, rtol=1e-10, atol=1e-12)
    if x.size and bias:
        assert gradcheck(lambda *t: F.gelu_linear(*t, approximate), leaves)


def test_float32_keeps_only_the_input():
    x = tg.tensor(np.random.default_rng(0).standard_normal((64, 1024)).astype(np.float32),
                  requires_grad=True)
    w = tg.tensor(np.random.default_rng(1).standard_normal((256, 1024)).astype(np.float32),
                  requires_grad=True)
    y = F.gelu_linear(x, w, None, "tanh")
    saved = y._ctx.saved
    assert len(saved) == 2 and saved[0] is x.data and saved[1] is w.data
    y2 = middle_kept_by_two_ops(lambda x: F.gelu(x, approximate="tanh"),     # keeps h too
                                lambda h: F.linear(h, w), x)
    np.testing.assert_allclose(y.data, y2.data, rtol=1e-5, atol=1e-4)


def test_bad_arguments():
    x, w = tg.randn(2, 3), tg.randn(4, 3)
    with pytest.raises(ValueError, match="approximate"):
        F.gelu_linear(x, w, approximate="fast")
    with pytest.raises(ValueError, match="do not match"):
        F.gelu_linear(x, tg.randn(4, 5))
    with pytest.raises(ValueError, match="bias"):
        F.gelu_linear(x, w, tg.randn(3))
    with pytest.raises(ValueError, match="dtype"):
        F.gelu_linear(x.to(tg.float64), w.to(tg.float32))


@pytest.mark.parametrize("activation", ["gelu_new", "gelu"])
def test_gpt_mlp_fused_and_unfused_agree(activation):
    """GPT's MLP runs gelu_linear when c_proj is a plain Linear; a replaced c_proj takes the
    two-op path: same loss and gradients."""
    cfg = GPTConfig(vocab_size=17, block_size=8, n_layer=1, n_head=2, n_embd=8, dropout=0.0,
                    activation=activation)
    tg.manual_seed(0)
    model = GPT(cfg)

    def replace_c_proj(model):
        class Wrapped(tg.nn.Linear):             # a subclass: not fused
            pass
        mlp = model.transformer.h[0].mlp
        plain = Wrapped(4 * 8, 8)
        plain.weight, plain.bias = mlp.c_proj.weight, mlp.c_proj.bias
        mlp.c_proj = plain
    assert_gpt_unchanged_by(model, replace_c_proj,
                            tg.tensor(np.random.default_rng(0).integers(0, 17, (2, 8))))
