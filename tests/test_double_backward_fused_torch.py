"""Second derivatives of the fused ops and the losses against PyTorch, float64: the
Hessian-vector product d/dx <w, d<u, f(x)>/dx> with torch.autograd.grad(create_graph=True).
(Finite-difference checks on awkward shapes: tests/test_double_backward_fused.py.)"""
import numpy as np
import pytest

import tinygrad_llm as tg
import tinygrad_llm.functional as F
from tinygrad_llm import losses
from tinygrad_llm.autograd import grad


def _hvp(lib, grad_fn, fn, arrays, u, ws):
    """d/dx <w, d<u, fn(x)>/dx> for the library ``lib`` (tinygrad_llm or torch)."""
    xs = [lib.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*xs)
    gs = grad_fn((out * lib.tensor(u)).sum(), xs, create_graph=True)
    found = grad_fn(sum((g * lib.tensor(w)).sum() for g, w in zip(gs, ws)), xs,
                    allow_unused=True)
    return [np.zeros(x.shape) if d is None else d.detach().numpy() if lib is not tg else d.data
            for d, x in zip(found, xs)]


def _torch_attention(torch, q, k, v, causal=False, mask=None):
    """softmax(q k^T / sqrt(D) + mask) v written out (torch's fused CPU kernel has no double
    backward); causal: query i sees keys j <= i."""
    s = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
    if causal:
        s = s.masked_fill(torch.ones(s.shape[-2:]).triu(1).bool(), float("-inf"))
    if mask is not None:
        s = s + mask
    return torch.softmax(s, -1) @ v


MASK = np.array([[0.0, -1.0, -np.inf, 0.5]] * 3)
TARGET = np.array([0, 2, -100, 1])
CLASS_W = np.array([1.0, 2, 0.5])


def _cases(lib):
    """name -> (function of the inputs, input shapes); lib is "ours" or the torch module."""
    if lib == "ours":
        F_, L, make = F, losses, tg.tensor
        attention = F.scaled_dot_product_attention
    else:
        F_ = L = lib.nn.functional
        make = lib.tensor

        def attention(q, k, v, is_causal=False, attn_mask=None):
            return _torch_attention(lib, q, k, v, is_causal, attn_mask)
    target, class_w = make(TARGET), make(CLASS_W)
    return {
        "softmax": (lambda a: F_.softmax(a, 1), [(2, 3, 2)]),
        "log_softmax": (lambda a: F_.log_softmax(a, -1), [(3, 4)]),
        "layer_norm": (lambda a, w, b: F_.layer_norm(a, (2, 3), w, b), [(2, 2, 3), (2, 3),
                                                                       (2, 3)]),
        "attention_causal": (lambda q, k, v: attention(q, k, v, is_causal=True),
                             [(1, 2, 4, 2), (1, 2, 4, 2), (1, 2, 4, 2)]),
        "attention_float_mask": (lambda q, k, v: attention(q, k, v, attn_mask=make(MASK)),
                                 [(2, 3, 2), (2, 4, 2), (2, 4, 2)]),
        "cross_entropy": (lambda a: F_.cross_entropy(a, target, class_w, ignore_index=-100,
                                                     label_smoothing=0.1), [(4, 3)]),
        "cross_entropy_probabilities": (lambda a, p: F_.cross_entropy(
            a, F_.softmax(p, -1), label_smoothing=0.2), [(3, 4), (3, 4)]),
        "binary_cross_entropy": (lambda a, y: L.binary_cross_entropy(
            a.sigmoid(), y.sigmoid()), [(2, 3), (2, 3)]),
        "bce_with_logits": (lambda a, y: L.binary_cross_entropy_with_logits(
            a, y.sigmoid(), pos_weight=make(np.array([0.5, 1.0, 3.0]))), [(2, 3), (2, 3)]),
        "nll_loss": (lambda a: L.nll_loss(F_.log_softmax(a, 1), target, class_w), [(4, 3)]),
        "cosine_embedding": (lambda a, b: L.cosine_embedding_loss(
            a, b, make(np.array([1, -1, -1])), -0.9), [(3, 4), (3, 4)]),
        "mse": (lambda a, b: L.mse_loss(a, b), [(2, 3), (2, 3)]),
    }


@pytest.mark.parametrize("case", sorted(_cases("ours")))
def test_second_derivatives_match_torch(case):
    torch = pytest.importorskip("torch")
    ours, shapes = _cases("ours")[case]
    theirs, _ = _cases(torch)[case]
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal(s) for s in shapes]
    with torch.no_grad():
        out_shape = tuple(theirs(*[torch.tensor(a) for a in arrays]).shape)
    u = rng.standard_normal(out_shape)
    ws = [rng.standard_normal(s) for s in shapes]
    mine = _hvp(tg, grad, ours, arrays, u, ws)
    ref = _hvp(torch, torch.autograd.grad, theirs, arrays, u, ws)
    for a, b in zip(mine, ref):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)


def _torch_layer_norm_written_out(a, w, b, eps=1e-5):
    """Over the last two axes. torch 2.13's native layer_norm gives a wrong third derivative
    (its double backward is not itself differentiated correctly): on a (2, 3) input it was
    off by 216 (of 153) from finite differences of its second derivative, which this
    composite and ours match to 3e-8."""
    xc = a - a.mean((-2, -1), keepdim=True)
    return xc / ((xc * xc).mean((-2, -1), keepdim=True) + eps).sqrt() * w + b


@pytest.mark.parametrize("case", ["softmax", "layer_norm", "attention_causal", "cross_entropy"])
def test_third_derivatives_match_torch(case):
    """The twin's graph is made of primitive ops, so it differentiates again: a third
    derivative d/dx <v, d/dx <w, d<u, f>/dx>>."""
    torch = pytest.importorskip("torch")
    ours, shapes = _cases("ours")[case]
    theirs, _ = _cases(torch)[case]
    if case == "layer_norm":
        theirs = _torch_layer_norm_written_out
    rng = np.random.default_rng(8)
    arrays = [rng.standard_normal(s) for s in shapes]
    with torch.no_grad():
        u = rng.standard_normal(tuple(theirs(*[torch.tensor(a) for a in arrays]).shape))
    w, v = rng.standard_normal(shapes[0]), rng.standard_normal(shapes[0])
    results = []
    for lib, grad_fn, fn in ((tg, grad, ours), (torch, torch.autograd.grad, theirs)):
        xs = [lib.tensor(a, requires_grad=True) for a in arrays]
        g1, = grad_fn((fn(*xs) * lib.tensor(u)).sum(), xs[0], create_graph=True)
        g2, = grad_fn((g1 * g1 * lib.tensor(w)).sum(), xs[0], create_graph=True)
        g3, = grad_fn((g2 * lib.tensor(v)).sum(), xs[0])
        results.append(g3.data if lib is tg else g3.numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-8, atol=1e-10)
