"""The fused ops of ops/fused.py: float64 gradchecks, agreement with their unfused twins
(the *_composite functions beside each Function in ops/) in value and gradient, parity with PyTorch, and the
numerics contract (masked rows, huge logits, bad targets)."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_llm as tg
import tinygrad_llm.functional as F
from tinygrad_llm.ops.attention import scaled_dot_product_attention_composite
from tinygrad_llm.ops.cross_entropy import cross_entropy_composite
from tinygrad_llm.ops.layer_norm import layer_norm_composite
from tinygrad_llm.ops.softmax import log_softmax_composite, softmax_composite
from tinygrad_llm.testing import gradcheck
from tinygrad_llm.testing import strategies as tst


def leaf(a):
    return tg.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def value_and_grads(fn, arrays, upstream_seed=0):
    """fn(*leaves), and the gradient of <out, g> for a fixed random g w.r.t. every leaf."""
    leaves = [leaf(a) for a in arrays]
    out = fn(*leaves)
    g = np.random.default_rng(upstream_seed).standard_normal(out.shape)
    out.backward(g)
    return out.data, [t.grad.data for t in leaves]


def assert_twins(fused_fn, twin_fn, *arrays, atol=1e-12):
    out_f, grads_f = value_and_grads(fused_fn, arrays)
    out_t, grads_t = value_and_grads(twin_fn, arrays)
    np.testing.assert_allclose(out_f, out_t, rtol=1e-10, atol=atol)
    for gf, gt in zip(grads_f, grads_t):
        np.testing.assert_allclose(gf, gt, rtol=1e-9, atol=atol)


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


# ----- scaled dot-product attention ----------------------------------------------------------

def _qkv(b=2, h=2, tq=3, tk=4, d=3, dv=None):
    return (rng.standard_normal((b, h, tq, d)), rng.standard_normal((b, h, tk, d)),
            rng.standard_normal((b, h, tk, dv or d)))


def _twin_attention(mask):
    return lambda q, k, v: scaled_dot_product_attention_composite(q, k, v, mask)[0]


@pytest.mark.parametrize("tq,tk", [(3, 3), (3, 5), (5, 2), (1, 4)])
def test_sdpa_fused_equals_twin_with_masks(tq, tk):
    q, k, v = _qkv(tq=tq, tk=tk)
    float_mask = rng.standard_normal((tq, tk))
    assert_twins(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, float_mask),
                 _twin_attention(float_mask), q, k, v, atol=1e-10)
    allowed = rng.random((2, 1, tq, tk)) < 0.7
    allowed[..., 0] = True  # no fully masked row (the twin would give NaN there)
    additive = np.where(allowed, 0.0, -np.inf)
    assert_twins(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, allowed),
                 _twin_attention(additive), q, k, v, atol=1e-10)
    causal = np.where(np.tril(np.ones((tq, tk), bool)), 0.0, -np.inf)  # top-left, as torch
    assert_twins(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                 _twin_attention(causal), q, k, v, atol=1e-10)


def test_sdpa_gradcheck_fused_and_composite_paths():
    q, k, v = _qkv(b=1, h=2, tq=3, tk=4, d=2)
    kpm = np.array([[False, False, True, False]])
    assert gradcheck(lambda q, k, v: F.scaled_dot_product_attention(
        q, k, v, key_padding_mask=kpm), [leaf(q), leaf(k), leaf(v)])
    assert gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                     [leaf(q[:, :, :3]), leaf(k[:, :, :3]), leaf(v[:, :, :3])])
    # a float mask that needs a gradient takes the composite path, and gets its gradient
    mask = leaf(rng.standard_normal((3, 4)))
    assert gradcheck(lambda q, m: F.scaled_dot_product_attention(q, leaf(k), leaf(v), m),
                     [leaf(q), mask])
    # V with another head size also takes the composite path
    q2, k2, v2 = _qkv(b=1, h=1, tq=2, tk=3, d=2, dv=4)
    assert gradcheck(F.scaled_dot_product_attention, [leaf(q2), leaf(k2), leaf(v2)])


def test_packed_self_attention_equals_sdpa():
    qkv = rng.standard_normal((3, 2, 2, 4, 3))
    kpm = np.array([[False, False, True, False], [False] * 4])
    for kwargs in (dict(is_causal=True), dict(attn_mask=rng.standard_normal((4, 4))),
                   dict(key_padding_mask=kpm)):
        assert_twins(lambda t: F.packed_self_attention(t, **kwargs),
                     lambda t: F.scaled_dot_product_attention(t[0], t[1], t[2], **kwargs),
                     qkv, atol=1e-12)
    assert gradcheck(lambda t: F.packed_self_attention(t, is_causal=True), [leaf(qkv)])
    with pytest.raises(ValueError, match="3, B, H, T, D"):
        F.packed_self_attention(tg.zeros(2, 1, 1, 3, 2))


def test_sdpa_fully_masked_rows_give_zero_output_and_zero_grad():
    q, k, v = (leaf(a) for a in _qkv(b=2, h=1, tq=3, tk=4))
    allowed = np.ones((2, 1, 3, 4), bool)
    allowed[0, 0, 1] = False                       # query 1 of batch 0 sees nothing
    kpm = np.array([[False] * 4, [True] * 4])      # batch 1: every key is padding
    out = F.scaled_dot_product_attention(q, k, v, allowed, key_padding_mask=kpm)
    assert np.all(np.isfinite(out.data))
    assert np.all(out.data[0, 0, 1] == 0) and np.all(out.data[1] == 0)
    out.backward(np.ones(out.shape))
    for t in (q, k, v):
        assert np.all(np.isfinite(t.grad.data))
    assert np.all(q.grad.data[0, 0, 1] == 0) and np.all(q.grad.data[1] == 0)
    assert np.all(k.grad.data[1] == 0) and np.all(v.grad.data[1] == 0)


def test_sdpa_dropout_is_seeded_and_changes_output():
    q, k, v = (tg.tensor(a) for a in _qkv())
    a = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5, generator=tg.Generator(3))
    b = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5, generator=tg.Generator(3))
    c = F.scaled_dot_product_attention(q, k, v)
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.allclose(a.data, c.data)


def test_sdpa_errors():
    q, k, v = (tg.tensor(a) for a in _qkv())
    with pytest.raises(ValueError, match="not both"):
        F.scaled_dot_product_attention(q, k, v, np.ones((3, 4), bool), is_causal=True)
    with pytest.raises(TypeError, match="bool"):
        F.scaled_dot_product_attention(q, k, v, key_padding_mask=np.zeros((2, 4)))
    with pytest.raises(ValueError, match="key_padding_mask"):
        F.scaled_dot_product_attention(q, k, v, key_padding_mask=np.zeros((2, 3), bool))


@pytest.mark.oracle
@pytest.mark.parametrize("case", ["none", "bool", "float", "causal", "causal_rect", "3d"])
def test_sdpa_matches_torch(case):
    torch = pytest.importorskip("torch")
    tq, tk = (3, 5) if case == "causal_rect" else (4, 4)
    q, k, v = _qkv(b=2, h=3, tq=tq, tk=tk, d=4)
    if case == "3d":
        q, k, v = q[0], k[0], v[0]
    kwargs = {}
    if case == "bool":
        m = rng.random((tq, tk)) < 0.6
        m[:, 0] = True
        kwargs["attn_mask"] = m
    elif case == "float":
        kwargs["attn_mask"] = rng.standard_normal((2, 1, tq, tk))
    elif case.startswith("causal"):
        kwargs["is_causal"] = True
    g = rng.standard_normal(q.shape[:-1] + (v.shape[-1],))
    ours = [leaf(a) for a in (q, k, v)]
    out = F.scaled_dot_product_attention(*ours, **kwargs)
    out.backward(g)
    theirs = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    tkw = {n: (torch.tensor(m) if n == "attn_mask" else m) for n, m in kwargs.items()}
    t_out = torch.nn.functional.scaled_dot_product_attention(*theirs, **tkw)
    t_out.backward(torch.tensor(g))
    np.testing.assert_allclose(out.data, t_out.detach().numpy(), atol=1e-10)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.data, b.grad.numpy(), atol=1e-10)


# ----- cross-entropy -------------------------------------------------------------------------

CE_CASES = [dict(), dict(reduction="sum"), dict(reduction="none"), dict(label_smoothing=0.2),
            dict(ignore_index=1), dict(ignore_index=2, label_smoothing=0.1, reduction="sum")]


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("kwargs", CE_CASES)
def test_cross_entropy_fused_equals_twin_and_gradchecks(kwargs, weighted):
    x = rng.standard_normal((5, 4)) * 3
    t = np.array([0, 1, 2, 3, 1])
    w = rng.random(4) + 0.5 if weighted else None

    def fused(x):
        return F.cross_entropy(x, t, w, **kwargs)

    def unfused(x):
        return cross_entropy_composite(x, t, w, **kwargs)

    assert_twins(fused, unfused, x, atol=1e-12)
    assert gradcheck(fused, [leaf(x)])


@pytest.mark.oracle
@pytest.mark.parametrize("shape", [(6, 5), (3, 5, 4), (2, 5, 2, 3), (5,)])
@pytest.mark.parametrize("kwargs", CE_CASES + [dict(weight=True), dict(
    weight=True, label_smoothing=0.3, ignore_index=0)])
def test_cross_entropy_matches_torch(shape, kwargs):
    torch = pytest.importorskip("torch")
    kwargs = dict(kwargs)
    c = shape[0] if len(shape) == 1 else shape[1]
    t_shape = () if len(shape) == 1 else (shape[0],) + shape[2:]
    x = rng.standard_normal(shape) * 2
    t = rng.integers(0, c, size=t_shape)
    if t.ndim and "ignore_index" in kwargs:
        t.reshape(-1)[0] = kwargs["ignore_index"]  # at least one ignored row
        t.reshape(-1)[-1] = (kwargs["ignore_index"] + 1) % c  # and one kept (torch: NaN)
    elif "ignore_index" in kwargs and t == kwargs["ignore_index"]:
        t = (t + 1) % c
    if kwargs.pop("weight", False):
        kwargs["weight"] = rng.random(c) + 0.5
    ours = leaf(x)
    loss = F.cross_entropy(ours, t, **kwargs)
    g = rng.standard_normal(loss.shape)
    loss.backward(g)
    theirs = torch.tensor(x, requires_grad=True)
    tkw = {n: (torch.tensor(v) if n == "weight" else v) for n, v in kwargs.items()}
    t_loss = torch.nn.functional.cross_entropy(theirs, torch.tensor(t), **tkw)
    t_loss.backward(torch.tensor(g))
    np.testing.assert_allclose(loss.data, t_loss.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_huge_logits_are_stable(dtype):
    x = tg.tensor(np.array([[1e4, -1e4, 0.0], [0.0, 1e4, -1e4]], dtype=dtype),
                  requires_grad=True)
    loss = F.cross_entropy(x, np.array([1, 1]), reduction="none")
    np.testing.assert_allclose(loss.data, [2e4, 0.0], rtol=1e-6)
    loss.sum().backward()
    assert np.all(np.isfinite(x.grad.data))
    np.testing.assert_allclose(x.grad.data, [[1, -1, 0], [0, 0, 0]], atol=1e-6)


@pytest.mark.parametrize("bad", [-1, 3, 100])
def test_cross_entropy_target_out_of_range_raises(bad):
    x = tg.randn(2, 3)
    with pytest.raises(IndexError, match=str(bad)):
        F.cross_entropy(x, np.array([0, bad]))
    # -1 is fine when it is the ignore_index
    F.cross_entropy(x, np.array([0, -1]), ignore_index=-1)


def test_cross_entropy_bad_arguments():
    x = tg.randn(2, 3)
    with pytest.raises(TypeError, match="class indices"):
        F.cross_entropy(x, np.array([True, False]))
    with pytest.raises(ValueError, match="class probabilities has shape"):
        F.cross_entropy(x, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="target of shape"):
        F.cross_entropy(x, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(x, np.array([0, 1]), reduction="avg")


def test_cross_entropy_all_ignored_is_zero_not_nan():
    x = leaf(rng.standard_normal((2, 3)))
    loss = F.cross_entropy(x, np.array([-100, -100]))
    loss.backward()
    assert loss.item() == 0.0 and np.all(x.grad.data == 0)


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
