"""ops/layer_norm_linear.py: linear(layer_norm(x)) as one op that keeps x only. Same values and
gradients as the two ops in a row (float64, gradcheck, PyTorch; the second derivative is in
test_double_backward_fused_pairs.py), and it holds one array of x's size less for backward."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_llm as tg
import tinygrad_llm.functional as F
from op_helpers import assert_gpt_unchanged_by, middle_kept_by_two_ops
from tinygrad_llm.models import GPT, GPTConfig
from tinygrad_llm.testing import check_op, gradcheck


def arrays(seed, batch, c, n_out):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(batch + (c,)) * 2 + 0.5, rng.standard_normal(c) + 1,
            rng.standard_normal(c), rng.standard_normal((n_out, c)), rng.standard_normal(n_out))


def layer_norm_ref(x, w, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def test_against_reference_twin_gradcheck_and_torch():
    x, lw, lb, w, b = arrays(0, (2, 3), 5, 4)
    torch = pytest.importorskip("torch")
    tF = torch.nn.functional
    check_op(lambda *t: F.layer_norm_linear(*t, eps=1e-3), [x, lw, lb, w, b],
             ref=lambda x, lw, lb, w, b: layer_norm_ref(x, lw, lb, 1e-3) @ w.T + b,
             twin=lambda x, lw, lb, w, b: F.linear(F.layer_norm(x, 5, lw, lb, 1e-3), w, b),
             torch_fn=lambda x, lw, lb, w, b: tF.linear(tF.layer_norm(x, (5,), lw, lb, 1e-3),
                                                        w, b))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2 ** 16), batch=st.sampled_from([(1,), (3,), (2, 4), (0,)]),
       c=st.integers(1, 6), n_out=st.integers(1, 5), present=st.tuples(*[st.booleans()] * 3),
       constant_row=st.booleans())
def test_gradients_equal_the_two_ops_in_a_row(seed, batch, c, n_out, present, constant_row):
    x, lw, lb, w, b = arrays(seed, batch, c, n_out)
    if constant_row and x.size:
        x.reshape(-1, c)[0] = 1.5                 # var = 0: the eps path of layer norm
    leaves = [tg.tensor(a, requires_grad=True) for a in (x, lw, lb, w, b)]
    for i, keep in zip((1, 2, 4), present):       # ln weight, ln bias, bias: optional
        if not keep:
            leaves[i] = None
    fused = F.layer_norm_linear(*leaves)
    g = np.random.default_rng(seed + 1).standard_normal(fused.shape)
    fused.backward(tg.tensor(g))
    present_leaves = [t for t in leaves if t is not None]
    ours = [t.grad.data.copy() for t in present_leaves]
    for t in present_leaves:
        t.grad = None
    two = F.linear(F.layer_norm(leaves[0], c, leaves[1], leaves[2]), leaves[3], leaves[4])
    two.backward(tg.tensor(g))
    np.testing.assert_allclose(fused.data, two.data, rtol=1e-12, atol=1e-12)
    for a, t in zip(ours, present_leaves):
        np.testing.assert_allclose(a, t.grad.data, rtol=1e-10, atol=1e-11)
    if x.size and all(present):
        assert gradcheck(F.layer_norm_linear, leaves)


def test_float32_keeps_only_the_input():
    rng = np.random.default_rng(0)
    x = tg.tensor(rng.standard_normal((64, 512)).astype(np.float32), requires_grad=True)
    ln_w, ln_b = tg.ones(512, requires_grad=True), tg.zeros(512, requires_grad=True)
    w = tg.tensor(rng.standard_normal((256, 512)).astype(np.float32), requires_grad=True)
    y = F.layer_norm_linear(x, ln_w, ln_b, w)
    big = [a for a in y._ctx.saved if a is not None and a.shape == x.shape]
    assert len(big) == 1 and big[0] is x.data       # x, and no normalized copy of it
    y2 = middle_kept_by_two_ops(lambda x: F.layer_norm(x, 512, ln_w, ln_b),  # keeps n too
                                lambda n: F.linear(n, w), x)
    np.testing.assert_allclose(y.data, y2.data, rtol=1e-5, atol=1e-4)


def test_bad_arguments():
    x, w = tg.randn(2, 3), tg.randn(4, 3)
    with pytest.raises(ValueError, match="ln_weight"):
        F.layer_norm_linear(x, tg.ones(4), None, w)
    with pytest.raises(ValueError, match="ln_bias"):
        F.layer_norm_linear(x, None, tg.ones(2), w)
    with pytest.raises(ValueError, match="do not match"):
        F.layer_norm_linear(x, None, None, tg.randn(4, 5))
    with pytest.raises(ValueError, match="at least one axis"):
        F.layer_norm_linear(tg.tensor(1.0), None, None, w)


def test_gpt_with_and_without_the_fused_layer_norms_agree():
    """GPT runs layer_norm_linear for ln_1 -> c_attn, ln_2 -> c_fc and ln_f -> the tied head
    when the modules are plain; replaced ones take the two-op path: same loss and gradients."""
    cfg = GPTConfig(vocab_size=17, block_size=8, n_layer=2, n_head=2, n_embd=8, dropout=0.0)
    tg.manual_seed(0)
    model = GPT(cfg)

    def replace_layer_norms(model):
        class Wrapped(tg.nn.LayerNorm):          # a subclass: not fused
            pass
        owners = [(block, name) for block in model.transformer.h for name in ("ln_1", "ln_2")]
        for owner, name in owners + [(model.transformer, "ln_f")]:
            plain = Wrapped(8)
            plain.weight, plain.bias = getattr(owner, name).weight, getattr(owner, name).bias
            setattr(owner, name, plain)
    assert_gpt_unchanged_by(model, replace_layer_norms,
                            tg.tensor(np.random.default_rng(0).integers(0, 17, (2, 8))))
