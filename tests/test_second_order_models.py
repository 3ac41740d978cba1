"""Second derivatives through models, float64.

Against PyTorch (torch.autograd.grad(create_graph=True), the same weights in torch code written
plainly here): the gradient-norm penalty P = ||dL/dtheta||^2 differentiated w.r.t. theta (and
the input) for a GPT block, a Hessian-vector product for an LSTM layer, and both for
cross-entropy with ignore_index, class weights and label smoothing.

Through whole models (GPT, BERT, seq2seq, the LSTM language model at tiny sizes): dP/dtheta comes out finite for every
parameter and, on a few coordinates, equals central differences of P, each P from a plain
first-order backward pass.
"""
import numpy as np
import pytest

import tinygrad_llm as tg
from tinygrad_llm import nn
from tinygrad_llm.autograd import grad
from tinygrad_llm.models.bert import BertConfig, BertForPreTraining
from tinygrad_llm.models.gpt import GPT, Block, GPTConfig
from tinygrad_llm.models.lstm import LSTMConfig, LSTMLanguageModel
from tinygrad_llm.models.seq2seq import Seq2SeqConfig, Seq2SeqTransformer

rng = np.random.default_rng(0)


def _randomize(module, scale=0.3, seed=0):
    """float64 and random weights everywhere (biases, LayerNorm gains around 1)."""
    r = np.random.default_rng(seed)
    module.to(np.float64)
    for name, p in module.named_parameters():
        gain = name.endswith("weight") and p.ndim == 1
        p.data[...] = r.normal(1.0 if gain else 0.0, scale, p.shape)
    return dict(module.named_parameters())


def _penalty_and_its_gradient(loss, wrt):
    """(P = sum ||dL/dw||^2 over wrt, dP/dw for each w), both with create_graph first."""
    gs = grad(loss, wrt, create_graph=True)
    penalty = sum((g * g).sum() for g in gs)
    found = grad(penalty, wrt, allow_unused=True)     # None: dL/dw does not depend on theta
    return penalty, [tg.zeros_like(w) if d is None else d for d, w in zip(found, wrt)]


def _torch_penalty_and_its_gradient(torch, loss, wrt):
    gs = torch.autograd.grad(loss, wrt, create_graph=True)
    penalty = sum((g * g).sum() for g in gs)
    found = torch.autograd.grad(penalty, wrt, allow_unused=True)
    return penalty, [torch.zeros_like(w) if d is None else d for d, w in zip(found, wrt)]


def _assert_close(ours, theirs, rtol=1e-8, atol=1e-10):
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=rtol, atol=atol)


# ----- a GPT block against PyTorch -----------------------------------------------------------

def _torch_gpt_block(torch, x, p, n_head, eps):
    """GPT-2's block: x + attn(ln_1(x)), then + mlp(ln_2(x)); causal attention written out."""
    tf = torch.nn.functional
    B, T, C = x.shape
    D = C // n_head
    h = tf.layer_norm(x, (C,), p["ln_1.weight"], p["ln_1.bias"], eps)
    qkv = h @ p["attn.c_attn.weight"].T + p["attn.c_attn.bias"]                # (B, T, 3C)
    q, k, v = qkv.reshape(B, T, 3, n_head, D).permute(2, 0, 3, 1, 4)            # (B, H, T, D)
    scores = q @ k.transpose(-1, -2) / D ** 0.5                                # (B, H, T, T)
    hidden = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    att = torch.softmax(scores.masked_fill(hidden, float("-inf")), dim=-1)
    y = (att @ v).permute(0, 2, 1, 3).reshape(B, T, C)
    x = x + y @ p["attn.c_proj.weight"].T + p["attn.c_proj.bias"]
    h = tf.layer_norm(x, (C,), p["ln_2.weight"], p["ln_2.bias"], eps)
    h = tf.gelu(h @ p["mlp.c_fc.weight"].T + p["mlp.c_fc.bias"], approximate="tanh")
    return x + h @ p["mlp.c_proj.weight"].T + p["mlp.c_proj.bias"]


def test_gpt_block_gradient_penalty_matches_torch():
    torch = pytest.importorskip("torch")
    cfg = GPTConfig(n_embd=8, n_head=2, block_size=8, dropout=0.0)
    block = Block(cfg)
    params = _randomize(block)
    block.eval()
    x_np = rng.standard_normal((2, 4, 8))
    u = rng.standard_normal((2, 4, 8))
    names = list(params)

    x = tg.tensor(x_np, requires_grad=True)
    wrt = [x] + [params[n] for n in names]
    loss = (block(x) * tg.tensor(u)).sum()
    penalty, ours = _penalty_and_its_gradient(loss, wrt)

    tp = {n: torch.tensor(params[n].data, requires_grad=True) for n in names}
    tx = torch.tensor(x_np, requires_grad=True)
    t_wrt = [tx] + [tp[n] for n in names]
    t_loss = (_torch_gpt_block(torch, tx, tp, cfg.n_head, cfg.layer_norm_epsilon)
              * torch.tensor(u)).sum()
    t_penalty, theirs = _torch_penalty_and_its_gradient(torch, t_loss, t_wrt)

    np.testing.assert_allclose(penalty.data, t_penalty.item(), rtol=1e-10)
    _assert_close(ours, theirs)


# ----- an LSTM layer against PyTorch ---------------------------------------------------------

def _torch_lstm(torch, x, h, c, w_ih, w_hh, b_ih, b_hh):
    """The LSTM recurrence in PyTorch's gate order i, f, g, o; x (T, B, I) -> (T, B, H)."""
    ys = []
    for t in range(x.shape[0]):
        i, f, g, o = (x[t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        ys.append(h)
    return torch.stack(ys), h, c


@pytest.mark.parametrize("fused", [True, False])
def test_lstm_layer_hessian_vector_product_matches_torch(fused):
    torch = pytest.importorskip("torch")
    T, B, n_in, H = 4, 2, 3, 3
    lstm = nn.LSTM(n_in, H)
    params = _randomize(lstm, scale=0.5, seed=1)
    names = ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    x_np, h0_np, c0_np = (rng.standard_normal(s) for s in [(T, B, n_in), (1, B, H), (1, B, H)])
    u, uh = rng.standard_normal((T, B, H)), rng.standard_normal((1, B, H))
    vs = [rng.standard_normal((T, B, n_in))] + [rng.standard_normal(params[n].shape)
                                                 for n in names]

    x, h0, c0 = (tg.tensor(a, requires_grad=True) for a in (x_np, h0_np, c0_np))
    wrt = [x] + [params[n] for n in names]
    y, (h, c) = lstm(x, (h0, c0), fused=fused)
    loss = (y * tg.tensor(u)).sum() + (c * tg.tensor(uh)).sum()
    gs = grad(loss, wrt, create_graph=True)
    ours = grad(sum((g * tg.tensor(v)).sum() for g, v in zip(gs, vs)), wrt + [h0, c0])

    tx, th0, tc0 = (torch.tensor(a, requires_grad=True) for a in (x_np, h0_np, c0_np))
    tp = [torch.tensor(params[n].data, requires_grad=True) for n in names]
    ty, th, tc = _torch_lstm(torch, tx, th0[0], tc0[0], *tp)
    t_loss = (ty * torch.tensor(u)).sum() + (tc * torch.tensor(uh[0])).sum()
    t_gs = torch.autograd.grad(t_loss, [tx] + tp, create_graph=True)
    theirs = torch.autograd.grad(sum((g * torch.tensor(v)).sum() for g, v in zip(t_gs, vs)),
                                 [tx] + tp + [th0, tc0])
    _assert_close(ours, theirs)


# ----- cross-entropy against PyTorch ---------------------------------------------------------

@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.15])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_second_derivatives_match_torch(reduction, smoothing, weighted):
    torch = pytest.importorskip("torch")
    N, C = 5, 4
    x_np = rng.standard_normal((N, C)) * 2
    target = np.array([0, 3, -100, 1, 3])
    weight = rng.uniform(0.5, 2.0, C) if weighted else None
    u = rng.standard_normal(N if reduction == "none" else ())
    v = rng.standard_normal((N, C))

    def ours_of(f):
        x = tg.tensor(x_np, requires_grad=True)
        loss = (tg.nn.functional.cross_entropy(x, target, weight, reduction=reduction,
                                               label_smoothing=smoothing) * tg.tensor(u)).sum()
        return f(loss, x)

    def theirs_of(f):
        x = torch.tensor(x_np, requires_grad=True)
        w = None if weight is None else torch.tensor(weight)
        loss = (torch.nn.functional.cross_entropy(x, torch.tensor(target), w,
                                                  reduction=reduction,
                                                  label_smoothing=smoothing)
                * torch.tensor(u)).sum()
        return f(loss, x)

    def penalty(g, ag, loss, x):
        return ag(sum((d * d).sum() for d in g(loss, [x], create_graph=True)), [x])

    def hvp(g, ag, loss, x, tensor):
        (d,) = g(loss, [x], create_graph=True)
        return ag((d * tensor(v)).sum(), [x])

    _assert_close(ours_of(lambda loss, x: penalty(grad, grad, loss, x)),
                  theirs_of(lambda loss, x: penalty(torch.autograd.grad, torch.autograd.grad,
                                                    loss, x)))
    _assert_close(ours_of(lambda loss, x: hvp(grad, grad, loss, x, tg.tensor)),
                  theirs_of(lambda loss, x: hvp(torch.autograd.grad, torch.autograd.grad,
                                                loss, x, torch.tensor)))


# ----- whole models: finite, and equal to finite differences on a few coordinates -----------

def _penalty_plain(loss_fn, params):
    """P = sum ||dL/dtheta||^2 from a first-order backward pass."""
    gs = grad(loss_fn(), params, allow_unused=True)
    return sum(float((g.data * g.data).sum()) for g in gs if g is not None)


def _check_model(model, loss_fn, n_coords=4, eps=1e-6, seed=0):
    model.eval()
    params = list(model.parameters())
    gs = grad(loss_fn(), params, create_graph=True, allow_unused=True)
    penalty = sum((g * g).sum() for g in gs if g is not None)
    hs = grad(penalty, params, allow_unused=True)
    assert sum(h is not None for h in hs) >= len(params) - 1
    for h in hs:
        assert h is None or np.all(np.isfinite(h.data))
    r = np.random.default_rng(seed)
    # the coordinates with the largest second-order signal, and random ones
    big = sorted(((float(np.abs(h.data).max()), k) for k, h in enumerate(hs) if h is not None),
                 reverse=True)[:n_coords // 2]
    picks = [(k, int(np.argmax(np.abs(hs[k].data)))) for _, k in big]
    while len(picks) < n_coords:
        k = int(r.integers(len(params)))
        if hs[k] is not None:
            picks.append((k, int(r.integers(params[k].data.size))))
    for k, i in picks:
        flat = params[k].data.reshape(-1)
        old = flat[i]
        flat[i] = old + eps
        plus = _penalty_plain(loss_fn, params)
        flat[i] = old - eps
        minus = _penalty_plain(loss_fn, params)
        flat[i] = old
        numeric = (plus - minus) / (2 * eps)
        analytic = hs[k].data.reshape(-1)[i]
        assert abs(analytic - numeric) <= 1e-5 + 1e-4 * abs(numeric), (k, i, analytic, numeric)


def test_gpt_second_derivative_through_the_whole_model():
    model = GPT(GPTConfig(block_size=8, vocab_size=11, n_layer=2, n_head=2, n_embd=8))
    _randomize(model, scale=0.3, seed=2)
    idx = rng.integers(0, 11, (2, 5))
    targets = rng.integers(0, 11, (2, 5))
    targets[0, 1] = -100
    _check_model(model, lambda: model(idx, targets)[1])


def test_bert_second_derivative_through_the_whole_model():
    cfg = BertConfig(vocab_size=13, max_position_embeddings=8, hidden_size=8,
                     num_hidden_layers=2, num_attention_heads=2, intermediate_size=16,
                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                     layer_norm_eps=1e-5)
    model = BertForPreTraining(cfg)
    _randomize(model, scale=0.3, seed=3)
    ids = rng.integers(0, 13, (2, 5))
    labels = np.where(rng.random((2, 5)) < 0.5, ids, -100)
    labels[0, 0] = ids[0, 0]
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    _check_model(model, lambda: model(ids, mask, labels=labels,
                                      next_sentence_label=np.array([0, 1]))["loss"])


def test_seq2seq_second_derivative_through_the_whole_model():
    cfg = Seq2SeqConfig(src_vocab_size=12, tgt_vocab_size=12, d_model=8, nhead=2,
                        num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=16,
                        dropout=0.0, max_len=8, activation="gelu", label_smoothing=0.1)
    model = Seq2SeqTransformer(cfg)
    _randomize(model, scale=0.3, seed=4)
    src = rng.integers(1, 12, (2, 4))
    src[1, 3] = cfg.pad_token_id
    dec, labels = rng.integers(1, 12, (2, 3)), rng.integers(1, 12, (2, 3))
    _check_model(model, lambda: model(src, dec, attention_mask=(src != 0).astype(np.int64),
                                      labels=labels)["loss"])


def test_lstm_language_model_second_derivative_through_the_whole_model():
    model = LSTMLanguageModel(LSTMConfig(vocab_size=9, n_embd=4, hidden_size=3))
    _randomize(model, scale=0.4, seed=5)
    idx, targets = rng.integers(0, 9, (2, 4)), rng.integers(0, 9, (2, 4))
    _check_model(model, lambda: model(idx, targets)[1])
