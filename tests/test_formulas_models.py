"""The documents' model formulas (attention, the Transformer, LSTM, word2vec, seed 004,
reinforcement learning), evaluated literally in float64, against the library.

Same rules as test_formulas.py (losses, optimizers, metrics, pre-training data); each test is
cited in docs/FORMULAS.md.
"""
import math

import numpy as np

import tinygrad_llm.functional as F
from tinygrad_llm import metrics, nn
from tinygrad_llm.models.lstm import LSTMLanguageModel
from tinygrad_llm.models.rl import discounted_returns, q_learning_update, reinforce_loss
from tinygrad_llm.models.seed004 import AutoRegressiveModel, Seed004LM
from tinygrad_llm.models.word2vec import SkipGramNegativeSampling, Word2Vec
from tinygrad_llm.nn.rnn import LSTM, LSTMCell

from formula_helpers import close, randomize, sigmoid, softmax_list, t64


# ----- attention and the Transformer --------------------------------------------------------

def attention_literal(Q, K, V, M=None):
    """softmax(Q K^T / sqrt(d_k) + M) V, one query row at a time."""
    d_k = Q.shape[-1]
    out = np.zeros((Q.shape[0], V.shape[1]))
    for i in range(Q.shape[0]):
        scores = [Q[i] @ K[j] / math.sqrt(d_k) + (0.0 if M is None else M[i, j])
                  for j in range(K.shape[0])]
        m = max(scores)
        weights = softmax_list([s - m for s in scores])
        out[i] = sum(weights[j] * V[j] for j in range(K.shape[0]))
    return out


def test_attention():
    rng = np.random.default_rng(18)
    Q, K, V = rng.normal(size=(3, 4)), rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    out = F.scaled_dot_product_attention(t64(Q), t64(K), t64(V))
    close(out.numpy(), attention_literal(Q, K, V))


def test_masked_attention():
    rng = np.random.default_rng(19)
    Q, K, V = (rng.normal(size=(4, 3)) for _ in range(3))
    M = nn.Transformer.generate_square_subsequent_mask(4, dtype=np.float64).numpy()
    assert all(M[i, j] == (0.0 if j <= i else -np.inf) for i in range(4) for j in range(4))
    literal = attention_literal(Q, K, V, M)
    close(F.scaled_dot_product_attention(t64(Q), t64(K), t64(V), is_causal=True).numpy(),
          literal)
    close(F.scaled_dot_product_attention(t64(Q), t64(K), t64(V), attn_mask=t64(M)).numpy(),
          literal)


def mha_literal(mha, Xq, Xkv, M=None):
    """Q, K, V = X W^Q, X W^K, X W^V (here x W^T + b, PyTorch's layout), one attention per
    head on its D columns, heads concatenated, then the output projection."""
    E, H = mha.embed_dim, mha.num_heads
    D = E // H
    W, b = mha.in_proj_weight.data, mha.in_proj_bias.data
    Q, K, V = (X @ W[k * E:(k + 1) * E].T + b[k * E:(k + 1) * E]
               for k, X in enumerate((Xq, Xkv, Xkv)))
    heads = [attention_literal(Q[:, h * D:(h + 1) * D], K[:, h * D:(h + 1) * D],
                               V[:, h * D:(h + 1) * D], M) for h in range(H)]
    return np.concatenate(heads, axis=1) @ mha.out_proj.weight.data.T + mha.out_proj.bias.data


def test_multihead_attention():
    rng = np.random.default_rng(20)
    mha = randomize(nn.MultiheadAttention(6, 2), rng)
    X = rng.normal(size=(1, 4, 6))
    out, _ = mha(t64(X), t64(X), t64(X))
    close(out.detach().numpy()[0], mha_literal(mha, X[0], X[0]))


def test_cross_attention():
    rng = np.random.default_rng(21)
    mha = randomize(nn.MultiheadAttention(4, 2), rng)
    Z, Hmem = rng.normal(size=(1, 3, 4)), rng.normal(size=(1, 5, 4))
    # queries from the decoder's Z, keys and values from the encoder output H
    out, _ = mha(t64(Z), t64(Hmem), t64(Hmem))
    close(out.detach().numpy()[0], mha_literal(mha, Z[0], Hmem[0]))


def layer_norm_literal(x, gain, bias, eps=1e-5):
    out = np.zeros_like(x)
    for r in range(x.shape[0]):
        mean = sum(x[r]) / len(x[r])
        var = sum((v - mean) ** 2 for v in x[r]) / len(x[r])          # biased variance
        out[r] = [(v - mean) / math.sqrt(var + eps) * g + b
                  for v, g, b in zip(x[r], gain, bias)]
    return out


def test_layer_norm():
    rng = np.random.default_rng(22)
    x, g, b = rng.normal(size=(3, 5)), rng.normal(size=5), rng.normal(size=5)
    close(F.layer_norm(t64(x), 5, t64(g), t64(b)).numpy(), layer_norm_literal(x, g, b))


def ffn_literal(x, l1, l2):
    """FFN(x) = max(0, x W_1 + b_1) W_2 + b_2."""
    h = np.maximum(0.0, x @ l1.weight.data.T + l1.bias.data)
    return h @ l2.weight.data.T + l2.bias.data


def test_feed_forward():
    rng = np.random.default_rng(23)
    ffn = randomize(nn.PositionwiseFeedForward(4, 8), rng)
    x = rng.normal(size=(3, 4))
    close(ffn(t64(x)).detach().numpy(), ffn_literal(x, ffn.linear1, ffn.linear2))


def _ln(x, norm):
    return layer_norm_literal(x, norm.weight.data, norm.bias.data, norm.eps)


def test_encoder_layer_post_ln():
    rng = np.random.default_rng(24)
    layer = randomize(nn.TransformerEncoderLayer(4, 2, dim_feedforward=8, dropout=0.0), rng)
    X = rng.normal(size=(1, 3, 4))
    Z = _ln(X[0] + mha_literal(layer.self_attn, X[0], X[0]), layer.norm1)    # LN(X + Attn)
    H = _ln(Z + ffn_literal(Z, layer.linear1, layer.linear2), layer.norm2)   # LN(Z + FFN)
    close(layer(t64(X)).detach().numpy()[0], H)


def test_decoder_layer_post_ln():
    rng = np.random.default_rng(25)
    layer = randomize(nn.TransformerDecoderLayer(4, 2, dim_feedforward=8, dropout=0.0), rng)
    Y, Hmem = rng.normal(size=(1, 3, 4)), rng.normal(size=(1, 5, 4))
    M = nn.Transformer.generate_square_subsequent_mask(3, dtype=np.float64)
    Z = _ln(Y[0] + mha_literal(layer.self_attn, Y[0], Y[0], M.numpy()), layer.norm1)
    C = _ln(Z + mha_literal(layer.multihead_attn, Z, Hmem[0]), layer.norm2)
    out = _ln(C + ffn_literal(C, layer.linear1, layer.linear2), layer.norm3)  # O
    close(layer(t64(Y), t64(Hmem), tgt_mask=M).detach().numpy()[0], out)


def test_sinusoidal_position_encoding():
    d = 6
    pe = nn.sinusoidal_position_encoding(5, d, dtype=np.float64)
    for pos in range(5):
        for i in range(d // 2):
            angle = pos / 10000 ** (2 * i / d)
            close(pe[pos, 2 * i], math.sin(angle), tol=1e-12)       # PE(pos, 2i)
            close(pe[pos, 2 * i + 1], math.cos(angle), tol=1e-12)   # PE(pos, 2i + 1)


# ----- recurrent models ---------------------------------------------------------------------

def lstm_step_literal(x, h, c, W_ih, W_hh, b_ih, b_hh):
    """i, f, g, o gates (PyTorch's order), c' = f c + i g, h' = o tanh(c')."""
    H = len(h)
    a = W_ih @ x + b_ih + W_hh @ h + b_hh
    i = np.array([sigmoid(v) for v in a[:H]])
    f = np.array([sigmoid(v) for v in a[H:2 * H]])
    g = np.tanh(a[2 * H:3 * H])
    o = np.array([sigmoid(v) for v in a[3 * H:]])
    c_new = f * c + i * g
    return o * np.tanh(c_new), c_new


def test_lstm_equations():
    rng = np.random.default_rng(26)
    cell = randomize(LSTMCell(3, 2), rng)
    x, h, c = rng.normal(size=3), rng.normal(size=2), rng.normal(size=2)
    h1, c1 = cell(t64(x[None]), (t64(h[None]), t64(c[None])))
    lit_h, lit_c = lstm_step_literal(x, h, c, *(p.data for p in cell.parameters()))
    close(h1.detach().numpy()[0], lit_h)
    close(c1.detach().numpy()[0], lit_c)
    lstm = randomize(LSTM(3, 2, batch_first=True), rng)          # the fused sequence layer
    xs = rng.normal(size=(1, 4, 3))
    out, _ = lstm(t64(xs))
    h, c = np.zeros(2), np.zeros(2)
    for t in range(4):
        h, c = lstm_step_literal(xs[0, t], h, c, *(p.data for p in lstm.layer_parameters(0)))
        close(out.detach().numpy()[0, t], h)


def test_lstm_language_model_formula():
    rng = np.random.default_rng(27)
    model = randomize(LSTMLanguageModel(vocab_size=6, n_embd=3, hidden_size=4), rng)
    ids = np.array([[1, 4, 2, 5]])
    logits, loss = model(ids[:, :-1], ids[:, 1:])
    h, c, nll = np.zeros(4), np.zeros(4), []
    for t in range(3):                       # P(w_{t+1} | w_<=t) = softmax(Dense(LSTM(E[w])))
        x = model.embedding.weight.data[ids[0, t]]
        h, c = lstm_step_literal(x, h, c, *(p.data for p in model.lstm.parameters()))
        z = model.head.weight.data @ h + model.head.bias.data
        close(logits.detach().numpy()[0, t], z)
        nll.append(-math.log(softmax_list(z)[ids[0, t + 1]]))
    close(loss.item(), np.mean(nll))


# ----- word2vec -----------------------------------------------------------------------------

def test_word2vec_cosine_model():
    rng = np.random.default_rng(28)
    model = randomize(Word2Vec(vocab_size=5, embedding_dim=3), rng)
    ctx, tgt, y = np.array([0, 1, 2]), np.array([1, 3, 4]), np.array([1, -1, 1])
    E = model.embedding.weight.data
    terms = []
    for a, b, label in zip(ctx, tgt, y):
        cos = E[a] @ E[b] / math.sqrt((E[a] @ E[a]) * (E[b] @ E[b]))
        terms.append(1 - cos if label == 1 else max(0.0, cos))
    close(model.loss(ctx, tgt, y).item(), np.mean(terms), tol=1e-9)


def test_sgns_model_loss():
    rng = np.random.default_rng(29)
    model = randomize(SkipGramNegativeSampling(vocab_size=6, embedding_dim=3), rng)
    center, context, neg = np.array([0, 2]), np.array([1, 3]), np.array([[4, 5], [5, 1]])
    W_in, W_out = model.in_embed.weight.data, model.out_embed.weight.data
    literal = np.mean([-math.log(sigmoid(W_out[o] @ W_in[c]))
                       - sum(math.log(sigmoid(-(W_out[k] @ W_in[c]))) for k in ks)
                       for c, o, ks in zip(center, context, neg)])
    close(model(center, context, neg).item(), literal)


def test_cosine_similarity():
    rng = np.random.default_rng(30)
    u, v = rng.normal(size=4), rng.normal(size=4)
    literal = sum(u * v) / (math.sqrt(sum(u * u)) * math.sqrt(sum(v * v)))
    close(metrics.cosine_similarity(u, v), literal)


def test_analogy():
    rng = np.random.default_rng(31)
    E = rng.normal(size=(8, 3))
    a, b, c = 1, 2, 3
    unit = E / np.sqrt((E * E).sum(1, keepdims=True))
    target = unit[a] - unit[b] + unit[c]                      # e_a - e_b + e_c
    cosines = {w: (E[w] @ target) / math.sqrt((E[w] @ E[w]) * (target @ target))
               for w in range(8) if w not in (a, b, c)}
    (best,), _ = metrics.analogy(E, a, b, c)
    assert best == max(cosines, key=cosines.get)


# ----- seed 004 -----------------------------------------------------------------------------

def _seed004_model(rng, V=6):
    model = Seed004LM(V).double()
    model.W_e.data[...] = rng.normal(size=V)
    model.W_h.data[...] = rng.normal(size=(V, V))
    return model


def test_seed004_autoregressive_formula():
    rng = np.random.default_rng(35)
    model = _seed004_model(rng)
    W_e, W_h = model.W_e.data, model.W_h.data
    ids = np.array([[1, 3, 3, 0, 5], [2, 2, 4, 1, 0]])
    logits, loss = model(ids[:, :-1], ids[:, 1:])
    probs = F.softmax(logits, dim=-1).detach().numpy()
    nll = []
    for b in range(2):
        for t in range(4):
            # P(w_{t+1} | w_1..w_t) = softmax_v(W_e[v] + sum_{i<=t} W_h[w_i][v])
            z = [W_e[v] + sum(W_h[ids[b, i], v] for i in range(t + 1)) for v in range(6)]
            close(probs[b, t], softmax_list(z))
            nll.append(-math.log(softmax_list(z)[ids[b, t + 1]]))
    close(loss.item(), np.mean(nll))
    close(model.context_logits(ids[:, :2]).detach().numpy(),
          logits.detach().numpy()[:, 1])


def test_seed004_label_conditioned_formula():
    rng = np.random.default_rng(36)
    model = _seed004_model(rng)
    W_e, W_h = model.W_e.data, model.W_h.data
    label_words, text = np.array([[5, 2]]), np.array([[1, 4, 4, 0]])
    # P(w_1..w_n | y) = prod_i softmax(W_e[w_i] + sum_{j<=y} W_h[w_j]), w_j the label's words
    z = [W_e[v] + sum(W_h[w, v] for w in label_words[0]) for v in range(6)]
    literal = sum(math.log(softmax_list(z)[w]) for w in text[0])
    close(model.conditional_log_prob(label_words, text).item(), literal)


def test_seed004_embedding_linear_linear():
    rng = np.random.default_rng(37)
    model = randomize(AutoRegressiveModel(7, 3, 4), rng)
    x = np.array([0, 6, 2])
    E, W1, b1 = model.embedding.weight.data, model.hidden.weight.data, model.hidden.bias.data
    W2, b2 = model.out.weight.data, model.out.bias.data
    literal = [W2 @ (W1 @ E[w] + b1) + b2 for w in x]           # no nonlinearity between
    close(model(x).detach().numpy(), literal)


# ----- reinforcement learning ---------------------------------------------------------------

def test_discounted_returns():
    r, gamma = [1.0, 0.0, -2.0, 3.0], 0.9
    literal = [sum(gamma ** k * r[t + k] for k in range(len(r) - t)) for t in range(len(r))]
    close(discounted_returns(r, gamma), literal)


def test_reinforce_gradient():
    rng = np.random.default_rng(38)
    S, A = 3, 4
    theta = t64(rng.normal(size=(S, A)), grad=True)           # a tabular softmax policy
    states, actions = rng.integers(0, S, (5, 6)), rng.integers(0, A, (5, 6))
    R = rng.normal(size=5)
    baseline = R.mean()
    logp = F.log_softmax(theta, dim=-1)[states, actions]      # log pi(a_t | s_t)  (B, T)
    reinforce_loss(logp, R, baseline).backward()
    # grad J = (1/B) sum_b (R_b - b) sum_t grad log pi(a_t | s_t), and
    # d log softmax(theta_s)[a] / d theta_s = onehot(a) - softmax(theta_s)
    grad_j = np.zeros((S, A))
    for b in range(5):
        for t in range(6):
            s, a = states[b, t], actions[b, t]
            pi = np.array(softmax_list(theta.data[s]))
            grad_j[s] += (R[b] - baseline) * (np.eye(A)[a] - pi) / 5
    close(theta.grad.numpy(), -grad_j)                        # the loss is -J


def test_q_learning_update():
    rng = np.random.default_rng(39)
    Q = rng.normal(size=(4, 2))
    expected = Q.copy()
    s, a, r, s2, alpha, gamma = 1, 0, 0.5, 3, 0.3, 0.9
    expected[s, a] = Q[s, a] + alpha * (r + gamma * max(Q[s2]) - Q[s, a])
    q_learning_update(Q, s, a, r, s2, False, alpha, gamma)
    close(Q, expected)
    expected[2, 1] = Q[2, 1] + alpha * (r - Q[2, 1])          # terminal s': no future value
    q_learning_update(Q, 2, 1, r, 0, True, alpha, gamma)
    close(Q, expected)
