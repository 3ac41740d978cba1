"""Second derivatives of the fused ops (softmax, log_softmax, layer norm, attention,
cross-entropy, the LSTM layer) and of every loss in losses.py, float64, on awkward shapes.

A fused op's first-order backward is a kernel on raw arrays; under create_graph=True its
gradient is taken through its ``twin`` (the composite of primitive ops, backprop.py), so each
check here is also a check of the twin's graph. ``test_*_twin_path_is_taken`` make the kernel
backward raise and see the second derivative still come out (and the twin called)."""
import importlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_llm as tg
import tinygrad_llm.functional as F
from second_order_checks import check_second_order, leaf
from tinygrad_llm import losses
from tinygrad_llm.autograd import grad
from tinygrad_llm.testing import strategies as tst

# the modules (tinygrad_llm.ops re-exports functions of the same names)
attention_ops = importlib.import_module("tinygrad_llm.ops.attention")
ce_ops = importlib.import_module("tinygrad_llm.ops.cross_entropy")
ln_ops = importlib.import_module("tinygrad_llm.ops.layer_norm")
lstm_ops = importlib.import_module("tinygrad_llm.ops.lstm")
softmax_ops = importlib.import_module("tinygrad_llm.ops.softmax")

SMALL = settings(max_examples=12, deadline=None)


def values(shape, lo=-3.0, hi=3.0):
    return hnp.arrays(np.float64, shape, elements=tst.floats(lo, hi))


# ----- softmax, log_softmax ------------------------------------------------------------------

@SMALL
@given(tst.arrays(shape=tst.shapes(min_dims=0, max_dims=3), elements=tst.floats(-4, 4)),
       st.data(), st.booleans())
def test_softmax_and_log_softmax_second_derivative(x, data, log):
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1)) if x.ndim else 0
    fn = F.log_softmax if log else F.softmax
    check_second_order(lambda t: fn(t, dim), x)


def test_softmax_row_of_minus_inf_has_zero_second_derivative():
    x = np.array([[0.3, -1.0, 2.0], [-np.inf, -np.inf, -np.inf]])
    t = leaf(x)
    g, = grad((F.softmax(t, -1) * tg.tensor(np.arange(6.0).reshape(2, 3))).sum(), t,
              create_graph=True)
    h, = grad((g * g).sum(), t)
    assert np.all(np.isfinite(h.data)) and np.all(h.data[1] == 0)
    check_second_order(lambda a: F.softmax(a, -1), x[:1])


# ----- layer norm ----------------------------------------------------------------------------

@SMALL
@given(st.data(), st.integers(1, 2), st.booleans(), st.booleans(),
       st.sampled_from([1e-5, 0.1]))
def test_layer_norm_second_derivative(data, k, with_weight, with_bias, eps):
    lead = data.draw(tst.shapes(min_dims=0, max_dims=2, max_side=3))
    norm = data.draw(tst.shapes(min_dims=k, max_dims=k, max_side=4))
    x = data.draw(tst.distinct(shape=st.just(lead + norm), min_gap=0.3))
    arrays = [x]
    if with_weight:
        arrays.append(data.draw(values(norm)))
    if with_bias:
        arrays.append(data.draw(values(norm)))

    def fn(t, *params):
        w = params[0] if with_weight else None
        b = params[-1] if with_bias else None
        return F.layer_norm(t, norm, w, b, eps=eps)
    check_second_order(fn, *arrays)


# ----- attention -----------------------------------------------------------------------------

@SMALL
@given(st.data(), st.sampled_from(["none", "causal", "bottom-right", "float", "bool", "padding"]),
       st.integers(2, 4))
def test_attention_second_derivative(data, masking, nd):
    lead = data.draw(st.lists(st.integers(1, 2), min_size=nd - 2, max_size=nd - 2))
    tq, tk, d = data.draw(st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)))
    q = data.draw(values(tuple(lead) + (tq, d)))
    k = data.draw(values(tuple(lead) + (tk, d)))
    v = data.draw(values(tuple(lead) + (tk, d)))
    kwargs = {}
    if masking == "causal":
        kwargs["is_causal"] = True
    elif masking == "bottom-right":
        kwargs.update(is_causal=True, causal_align="bottom-right")
    elif masking == "float":
        kwargs["attn_mask"] = data.draw(values((tq, tk), -1, 1))
    elif masking == "bool":
        kwargs["attn_mask"] = data.draw(hnp.arrays(np.bool_, (tq, tk)))
    elif masking == "padding" and nd >= 3:
        kwargs["key_padding_mask"] = data.draw(hnp.arrays(np.bool_, (lead[0], tk)))
    check_second_order(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, **kwargs),
                       q, k, v, max_elementwise=40)


@SMALL
@given(st.data(), st.booleans())
def test_packed_self_attention_second_derivative(data, causal):
    b, h, t, d = data.draw(st.tuples(*(st.integers(1, 2) for _ in range(4))))
    qkv = data.draw(values((3, b, h, t, d)))
    check_second_order(lambda a: F.packed_self_attention(a, is_causal=causal), qkv)


def test_attention_with_a_mask_that_needs_grad_and_grouped_query_heads():
    rng = np.random.default_rng(9)
    q, k, v = (rng.standard_normal((2, 3, 2)) for _ in range(3))
    mask = rng.standard_normal((3, 3))
    check_second_order(lambda a, b, c, m: F.scaled_dot_product_attention(a, b, c, attn_mask=m),
                       q, k, v, mask)
    q4, k2, v2 = (rng.standard_normal(s) for s in [(1, 4, 3, 2), (1, 2, 3, 2), (1, 2, 3, 2)])
    check_second_order(lambda a, b, c: F.scaled_dot_product_attention(
        a, b, c, is_causal=True, enable_gqa=True), q4, k2, v2)


# ----- cross-entropy -------------------------------------------------------------------------

@SMALL
@given(st.data(), st.sampled_from(["mean", "sum", "none"]), st.sampled_from([0.0, 0.2]),
       st.booleans())
def test_cross_entropy_on_indices_second_derivative(data, reduction, smoothing, weighted):
    n, c = data.draw(st.tuples(st.integers(1, 4), st.integers(1, 4)))
    x = data.draw(values((n, c)))
    target = data.draw(hnp.arrays(np.int64, (n,), elements=st.sampled_from(
        list(range(c)) + [-100])))
    weight = data.draw(values((c,), 0.2, 2.0)) if weighted else None
    check_second_order(lambda t: F.cross_entropy(t, target, weight, reduction=reduction,
                                                 label_smoothing=smoothing), x)


def test_cross_entropy_with_extra_axes_and_every_row_ignored():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 2))                     # (N, C, d1)
    target = np.array([[0, 2], [-100, 1]])
    check_second_order(lambda t: F.cross_entropy(t, target, label_smoothing=0.1), x)
    ignored = np.full((2, 2), -100)
    h = check_second_order(lambda t: F.cross_entropy(t, ignored), x)
    assert all(np.all(a == 0) for a in h)


@SMALL
@given(st.data(), st.sampled_from(["mean", "sum", "none"]), st.sampled_from([0.0, 0.3]))
def test_cross_entropy_on_probabilities_second_derivative(data, reduction, smoothing):
    n, c = data.draw(st.tuples(st.integers(1, 3), st.integers(1, 4)))
    x = data.draw(values((n, c)))
    p = data.draw(values((n, c), 0.1, 1.0))
    p = p / p.sum(-1, keepdims=True)
    check_second_order(lambda t, y: F.cross_entropy(t, y, reduction=reduction,
                                                    label_smoothing=smoothing), x, p)


# ----- LSTM ----------------------------------------------------------------------------------

@SMALL
@given(st.data(), st.booleans())
def test_lstm_layer_second_derivative(data, bias):
    T, B, n_in, H = data.draw(st.tuples(st.integers(1, 3), st.integers(1, 2),
                                        st.integers(1, 2), st.integers(1, 2)))
    arrays = [data.draw(values(s, -1, 1)) for s in
              [(T, B, n_in), (B, H), (B, H), (4 * H, n_in), (4 * H, H)]]
    if bias:
        arrays += [data.draw(values((4 * H,), -1, 1)) for _ in range(2)]

    def fn(x, h0, c0, w_ih, w_hh, *b):
        y, h, c = lstm_ops.lstm_layer(x, h0, c0, w_ih, w_hh, *b)
        return tg.cat([y.reshape(-1), h.reshape(-1) * 2, c.reshape(-1)])
    check_second_order(fn, *arrays, max_elementwise=30)


def test_lstm_cell_second_derivative():
    rng = np.random.default_rng(1)
    B, n_in, H = 2, 3, 2
    arrays = [rng.uniform(-1, 1, s) for s in
              [(B, n_in), (B, H), (B, H), (4 * H, n_in), (4 * H, H), (4 * H,), (4 * H,)]]
    check_second_order(lambda *a: tg.stack(list(lstm_ops.lstm_cell(*a))), *arrays)


# ----- the twin path is taken ----------------------------------------------------------------

def _boom(*args, **kwargs):
    raise AssertionError("the kernel's backward ran under create_graph=True")


def _second_derivative_through_twin(monkeypatch, fn_cls, kernel, names, f, arrays):
    """With create_graph=True, f's gradient must come from the twin, with the kernel's
    backward never called (it raises); the second pass may use it (for the path through
    f's output), and the second derivative must be right."""
    calls = []
    twin = fn_cls.twin

    def spy(*args, **kwargs):
        calls.append(1)
        return twin(*args, **kwargs)
    monkeypatch.setattr(fn_cls, "twin", staticmethod(spy))
    for name in names:
        monkeypatch.setattr(kernel, name, _boom)
    leaves = [leaf(a) for a in arrays]
    with pytest.raises(AssertionError, match="kernel's backward"):   # the patch is in place
        f(*leaves).sum().backward()
    out = f(*leaves)
    gs = grad((out * out).sum(), leaves, create_graph=True)
    assert calls and all(g.requires_grad for g in gs)
    monkeypatch.undo()
    hs = grad(sum((g * g).sum() for g in gs), leaves)
    assert all(np.all(np.isfinite(h.data)) for h in hs)
    check_second_order(f, *arrays)


def test_softmax_twin_path_is_taken(monkeypatch):
    x = np.random.default_rng(2).standard_normal((2, 3))
    _second_derivative_through_twin(monkeypatch, softmax_ops.Softmax, softmax_ops.kernel,
                                    ["softmax_backward"], lambda t: F.softmax(t, -1), [x])
    _second_derivative_through_twin(monkeypatch, softmax_ops.LogSoftmax, softmax_ops.kernel,
                                    ["log_softmax_backward"], lambda t: F.log_softmax(t, 0),
                                    [x])


def test_layer_norm_twin_path_is_taken(monkeypatch):
    rng = np.random.default_rng(3)
    _second_derivative_through_twin(
        monkeypatch, ln_ops.LayerNorm, ln_ops.kernel, ["layer_norm_backward"],
        lambda t, w, b: F.layer_norm(t, (3,), w, b),
        [rng.standard_normal((2, 3)), rng.standard_normal(3), rng.standard_normal(3)])


def test_attention_twin_path_is_taken(monkeypatch):
    rng = np.random.default_rng(4)
    q, k, v = (rng.standard_normal((1, 2, 3, 2)) for _ in range(3))
    _second_derivative_through_twin(
        monkeypatch, attention_ops.ScaledDotProductAttention, attention_ops.kernel,
        ["attention_backward"],
        lambda a, b, c: F.scaled_dot_product_attention(a, b, c, is_causal=True), [q, k, v])
    _second_derivative_through_twin(
        monkeypatch, attention_ops.PackedSelfAttention, attention_ops.kernel,
        ["attention_backward"], lambda a: F.packed_self_attention(a), [np.stack([q, k, v])])


def test_cross_entropy_twin_path_is_taken(monkeypatch):
    x = np.random.default_rng(5).standard_normal((3, 4))
    t = np.array([1, -100, 3])
    _second_derivative_through_twin(monkeypatch, ce_ops.CrossEntropy, ce_ops.kernel,
                                    ["cross_entropy_backward"],
                                    lambda a: F.cross_entropy(a, t, label_smoothing=0.1), [x])


def test_lstm_twin_path_is_taken(monkeypatch):
    rng = np.random.default_rng(6)
    arrays = [rng.uniform(-1, 1, s) for s in [(2, 1, 2), (1, 1), (1, 1), (4, 2), (4, 1)]]
    _second_derivative_through_twin(monkeypatch, lstm_ops.LSTMLayer, lstm_ops.kernel,
                                    ["lstm_backward"],
                                    lambda *a: lstm_ops.lstm_layer(*a)[0], arrays)


# ----- every loss in losses.py ---------------------------------------------------------------

LOSS_SHAPES = tst.shapes(min_dims=1, max_dims=2, max_side=3)


@SMALL
@given(st.data(), LOSS_SHAPES, st.sampled_from(["mean", "sum", "none"]))
def test_regression_and_binary_losses_second_derivative(data, shape, reduction):
    x, y = data.draw(values(shape)), data.draw(values(shape))
    p, q = data.draw(values(shape, 0.05, 0.95)), data.draw(values(shape, 0.01, 0.99))
    w, pw = data.draw(values(shape, 0.5, 2.0)), data.draw(values(shape[-1:], 0.5, 2.0))
    check_second_order(lambda a, b: losses.mse_loss(a, b, reduction), x, y)
    check_second_order(lambda a, b: losses.binary_cross_entropy(a, b, w, reduction), p, q)
    check_second_order(lambda a, b: losses.binary_cross_entropy_with_logits(
        a, b, w, reduction, pos_weight=pw), x, q)


@SMALL
@given(st.data(), st.sampled_from(["mean", "sum", "none"]), st.sampled_from([0.0, 0.1]))
def test_classification_losses_second_derivative(data, reduction, smoothing):
    n, c = data.draw(st.tuples(st.integers(1, 3), st.integers(1, 4)))
    x = data.draw(values((n, c)))
    target = data.draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, c - 1)))
    target[-1] = -100 if n > 1 else target[-1]
    weight = data.draw(values((c,), 0.5, 2.0))
    check_second_order(lambda a: losses.cross_entropy(a, target, weight, reduction=reduction,
                                                      label_smoothing=smoothing), x)
    check_second_order(lambda a: losses.nll_loss(F.log_softmax(a, 1), target, weight,
                                                 reduction=reduction), x)


@SMALL
@given(st.data(), st.sampled_from(["mean", "sum", "none"]))
def test_embedding_losses_second_derivative(data, reduction):
    n, d, k = data.draw(st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 2)))
    away = tst.away_from([0.0], shape=st.just((n, d)), margin=0.5, lo=-3, hi=3)
    x1, x2 = data.draw(away), data.draw(away)             # no norm near 0
    y = data.draw(hnp.arrays(np.int64, (n,), elements=st.sampled_from([1, -1])))
    cos = (x1 * x2).sum(-1) / np.sqrt((x1 * x1).sum(-1) * (x2 * x2).sum(-1))
    margin = float(cos.min()) - 0.05                      # max(0, cos - margin): no kink
    check_second_order(lambda a, b: losses.cosine_embedding_loss(a, b, y, margin, reduction),
                       x1, x2)
    v, u, neg = data.draw(values((n, d))), data.draw(values((n, d))), data.draw(
        values((n, k, d)))
    check_second_order(lambda a, b, c: losses.negative_sampling_loss(a, b, c, reduction),
                       v, u, neg, max_elementwise=30)


@SMALL
@given(st.data())
def test_penalties_second_derivative(data):
    a = data.draw(tst.away_from([0.0], shape=LOSS_SHAPES, margin=0.05))
    b = data.draw(tst.away_from([0.0], shape=LOSS_SHAPES, margin=0.05))
    h = check_second_order(lambda s, t: losses.l1_penalty([s, t]), a, b)
    assert all(np.all(x == 0) for x in h)                 # |w| is piecewise linear
    check_second_order(lambda s, t: losses.l2_penalty([s, t]), a, b)


# ----- a deep graph --------------------------------------------------------------------------

def test_graph_of_depth_20000_is_differentiated_twice():
    x = leaf([0.7, -1.3])
    y = x
    for _ in range(20_000):
        y = y * 1.0001 + 0.0
    g, = grad((y * y).sum(), x, create_graph=True)        # 2 a^2n x
    h, = grad(g.sum(), x)                                 # 2 a^2n
    expected = 2 * 1.0001 ** 40_000
    np.testing.assert_allclose(g.data, expected * x.data, rtol=1e-9)
    np.testing.assert_allclose(h.data, [expected, expected], rtol=1e-9)


def test_tanh_chain_of_depth_20000_is_differentiated_twice():
    x = leaf([0.3])
    y = x
    for _ in range(20_000):
        y = y.tanh()
    g, = grad(y.sum(), x, create_graph=True)
    h, = grad(g.sum(), x)

    def first(v):
        t = leaf([v])
        z = t
        for _ in range(20_000):
            z = z.tanh()
        return grad(z.sum(), t)[0].data[0]
    eps = 1e-5
    numeric = (first(0.3 + eps) - first(0.3 - eps)) / (2 * eps)
    np.testing.assert_allclose(h.data[0], numeric, rtol=1e-5)
