"""Every formula of the source documents, evaluated literally in float64, against the library.

One test per formula (the table in docs/FORMULAS.md cites each). The "literal" side is the
formula as written, with plain NumPy loops or direct evaluation on tiny inputs; the library
side is the function a user calls. Statistical formulas (masking rates, sampling
distributions) are checked within a few standard errors on large draws.
"""
import math
from collections import Counter

import numpy as np

import tinygrad_llm as tg
import tinygrad_llm.functional as F
from tinygrad_llm import keras, losses, metrics, nn, optim
from tinygrad_llm.data import NegativeSampler, make_nsp_pairs, mask_tokens, skipgram_pairs

from formula_helpers import close, randomize, sigmoid, softmax_list, t64


# ----- losses -----------------------------------------------------------------------------

def test_mse_loss():
    rng = np.random.default_rng(0)
    y, y_hat = rng.normal(size=7), rng.normal(size=7)
    literal = sum((y[i] - y_hat[i]) ** 2 for i in range(7)) / 7     # (1/n) sum (y - y^)^2
    close(losses.mse_loss(t64(y_hat), t64(y)).item(), literal)


def test_binary_cross_entropy():
    rng = np.random.default_rng(1)
    p, y = rng.uniform(0.05, 0.95, 6), rng.integers(0, 2, 6).astype(float)
    literal = -sum(y[i] * math.log(p[i]) + (1 - y[i]) * math.log(1 - p[i])
                   for i in range(6)) / 6
    close(losses.binary_cross_entropy(t64(p), t64(y)).item(), literal)


def test_cross_entropy_probabilities():
    rng = np.random.default_rng(2)
    logits, target = rng.normal(size=(3, 4)), rng.dirichlet(np.ones(4), size=3)
    # L = -sum_i y_i log y^_i per row, y^ = softmax(logits), averaged over the rows
    literal = np.mean([-sum(target[r, i] * math.log(softmax_list(logits[r])[i])
                            for i in range(4)) for r in range(3)])
    close(losses.cross_entropy(t64(logits), t64(target)).item(), literal)


def test_cross_entropy_class_indices():
    rng = np.random.default_rng(3)
    logits, target = rng.normal(size=(5, 6)), rng.integers(0, 6, 5)
    # one-hot y: L = -(1/N) sum_n log softmax(z_n)[t_n]
    literal = -np.mean([math.log(softmax_list(logits[n])[target[n]]) for n in range(5)])
    close(F.cross_entropy(t64(logits), target).item(), literal)


def test_nll_loss():
    rng = np.random.default_rng(4)
    logp, target = np.log(rng.dirichlet(np.ones(3), size=4)), rng.integers(0, 3, 4)
    literal = -np.mean([logp[n, target[n]] for n in range(4)])
    close(losses.nll_loss(t64(logp), target).item(), literal)


def test_sparse_categorical_crossentropy():
    rng = np.random.default_rng(5)
    probs, y = rng.dirichlet(np.ones(3), size=4), rng.integers(0, 3, 4)
    probs[0] = [1.0, 0.0, 0.0]                 # Keras clips p to [1e-7, 1 - 1e-7]
    y[0] = 1
    eps = 1e-7
    literal = -np.mean([math.log(min(max(probs[i, y[i]], eps), 1 - eps)) for i in range(4)])
    close(keras.sparse_categorical_crossentropy(y, t64(probs)).item(), literal)


def test_cosine_embedding_loss():
    rng = np.random.default_rng(6)
    a, b, y = rng.normal(size=(4, 3)), rng.normal(size=(4, 3)), np.array([1, -1, 1, -1])
    margin = 0.1
    terms = []
    for i in range(4):
        cos = float(a[i] @ b[i]) / math.sqrt(float(a[i] @ a[i]) * float(b[i] @ b[i]))
        terms.append(1 - cos if y[i] == 1 else max(0.0, cos - margin))
    close(losses.cosine_embedding_loss(t64(a), t64(b), y, margin=margin).item(),
          np.mean(terms), tol=1e-9)


def test_negative_sampling_loss():
    rng = np.random.default_rng(7)
    v, u, u_neg = rng.normal(size=(3, 4)), rng.normal(size=(3, 4)), rng.normal(size=(3, 2, 4))
    # -log s(u_o . v_c) - sum_k log s(-u_k . v_c)
    literal = np.mean([-math.log(sigmoid(u[n] @ v[n]))
                       - sum(math.log(sigmoid(-(u_neg[n, k] @ v[n]))) for k in range(2))
                       for n in range(3)])
    close(losses.negative_sampling_loss(t64(v), t64(u), t64(u_neg)).item(), literal)


def test_negative_sampler_unigram_power():
    counts = np.array([50.0, 10.0, 1.0, 0.0, 5.0])
    expected = [c ** 0.75 / sum(k ** 0.75 for k in counts) for c in counts]
    sampler = NegativeSampler(counts, power=0.75, seed=0)
    close(sampler.probs, expected, tol=1e-12)
    draws = sampler.sample(200_000)
    freq = np.bincount(draws, minlength=5) / len(draws)
    se = np.sqrt(np.asarray(expected) * (1 - np.asarray(expected)) / len(draws))
    assert np.all(np.abs(freq - expected) <= 5 * se + 1e-12), (freq, expected)


def test_skipgram_pairs():
    ids, window = [5, 6, 7, 8, 9], 2
    literal = [(ids[i], ids[j]) for i in range(len(ids)) for j in range(len(ids))
               if 0 < abs(i - j) <= window]
    centers, contexts = skipgram_pairs(ids, window)
    assert sorted(zip(centers.tolist(), contexts.tolist())) == sorted(literal)


# ----- models: linear, softmax, embeddings ---------------------------------------------------

def test_linear_model():
    rng = np.random.default_rng(8)
    x, w, b = rng.normal(size=(3, 4)), rng.normal(size=(2, 4)), rng.normal(size=2)
    # y = w_1 x_1 + ... + w_n x_n + b, one row of w per output
    literal = [[sum(w[o, k] * x[r, k] for k in range(4)) + b[o] for o in range(2)]
               for r in range(3)]
    close(F.linear(t64(x), t64(w), t64(b)).numpy(), literal)
    layer = nn.Linear(4, 2).double()
    layer.weight.data[...], layer.bias.data[...] = w, b
    close(layer(t64(x)).detach().numpy(), literal)


def test_softmax():
    z = np.array([[1.0, -2.0, 0.5, 3.0], [0.0, 0.0, 0.0, 0.0]])
    literal = [softmax_list(row) for row in z]               # e^{z_i} / sum_j e^{z_j}
    close(F.softmax(t64(z), dim=-1).numpy(), literal)


def test_keras_dense_softmax():
    rng = np.random.default_rng(9)
    dense = keras.layers.Dense(3, activation="softmax")
    dense.build(4, tg.Generator(0))
    randomize(dense, rng)
    x = rng.normal(size=(2, 4))
    W, b = dense.linear.weight.data, dense.linear.bias.data
    literal = [softmax_list([x[r] @ W[o] + b[o] for o in range(3)]) for r in range(2)]
    close(dense(t64(x)).detach().numpy(), literal)


def test_embedding_lookup():
    rng = np.random.default_rng(10)
    W = t64(rng.normal(size=(5, 3)), grad=True)
    ids = np.array([[4, 0], [4, 2]])
    out = F.embedding(ids, W)
    close(out.detach().numpy(), [[W.data[4], W.data[0]], [W.data[4], W.data[2]]])
    out.sum().backward()                                     # dL/dW[v] = number of uses of v
    close(W.grad.numpy()[:, 0], [1, 0, 1, 0, 2])


# ----- optimizers ---------------------------------------------------------------------------

def _regression_problem(seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(6, 3)), rng.normal(size=6), rng.normal(size=3), rng.normal()


def _mse_gradient(X, y, w, b):
    """d/dw and d/db of (1/n) sum (x_i . w + b - y_i)^2, written out."""
    n = len(y)
    r = [sum(X[i, k] * w[k] for k in range(len(w))) + b - y[i] for i in range(n)]
    gw = [2 / n * sum(r[i] * X[i, k] for i in range(n)) for k in range(len(w))]
    return np.array(gw), 2 / n * sum(r)


def _linear_with(w, b):
    layer = nn.Linear(len(w), 1).double()
    layer.weight.data[...], layer.bias.data[...] = w[None], b
    return layer


def test_gradient_descent():
    X, y, w, b = _regression_problem(11)
    lr = 0.1
    gw, gb = _mse_gradient(X, y, w, b)
    layer = _linear_with(w, b)
    opt = optim.GD(layer.parameters(), lr=lr)
    losses.mse_loss(layer(t64(X)).reshape(-1), t64(y)).backward()
    opt.step()                                  # theta_{t+1} = theta_t - eta grad L(theta_t)
    close(layer.weight.data[0], w - lr * gw)
    close(layer.bias.data[0], b - lr * gb)


def test_sgd_single_sample():
    X, y, w, b = _regression_problem(12)
    lr, i = 0.05, 3
    gw, gb = _mse_gradient(X[i:i + 1], y[i:i + 1], w, b)     # grad L(theta; x_i, y_i)
    layer = _linear_with(w, b)
    opt = optim.SGD(layer.parameters(), lr=lr)
    losses.mse_loss(layer(t64(X[i:i + 1])).reshape(-1), t64(y[i:i + 1])).backward()
    opt.step()
    close(layer.weight.data[0], w - lr * gw)
    close(layer.bias.data[0], b - lr * gb)


def _run_optimizer(opt_cls, grads, p0, **kw):
    """Apply the optimizer to a parameter for a fixed sequence of gradients."""
    p = t64(p0, grad=True)
    opt = opt_cls([p], **kw)
    for g in grads:
        p.grad = t64(g)
        opt.step()
    return p.data


def test_sgd_momentum():
    rng = np.random.default_rng(13)
    grads, p = rng.normal(size=(4, 3)), rng.normal(size=3)
    lr, mu = 0.1, 0.9
    expected, v = p.copy(), np.zeros(3)
    for t, g in enumerate(grads):
        v = g.copy() if t == 0 else mu * v + g                # v_t = mu v_{t-1} + g_t
        expected = expected - lr * v                          # theta_t = theta_{t-1} - lr v_t
    close(_run_optimizer(optim.SGD, grads, p, lr=lr, momentum=mu), expected)


def _adam_literal(grads, p, lr, b1, b2, eps, wd, decoupled):
    m, v, p = np.zeros_like(p), np.zeros_like(p), p.copy()
    for t, g in enumerate(grads, start=1):
        if decoupled:
            p = p - lr * wd * p                               # AdamW: decay outside Adam
        else:
            g = g + wd * p                                    # Adam: L2 inside the gradient
        m = b1 * m + (1 - b1) * g                             # first moment
        v = b2 * v + (1 - b2) * g * g                         # second moment
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)   # bias corrections
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


def test_adam():
    rng = np.random.default_rng(14)
    grads, p = rng.normal(size=(5, 4)), rng.normal(size=4)
    kw = {"lr": 0.01, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.1}
    close(_run_optimizer(optim.Adam, grads, p, **kw),
          _adam_literal(grads, p, 0.01, 0.9, 0.999, 1e-8, 0.1, decoupled=False))


def test_adamw():
    rng = np.random.default_rng(15)
    grads, p = rng.normal(size=(5, 4)), rng.normal(size=4)
    kw = {"lr": 0.01, "betas": (0.9, 0.95), "eps": 1e-8, "weight_decay": 0.1}
    close(_run_optimizer(optim.AdamW, grads, p, **kw),
          _adam_literal(grads, p, 0.01, 0.9, 0.95, 1e-8, 0.1, decoupled=True))


def test_linear_warmup_schedule():
    p = t64(np.zeros(1), grad=True)
    opt = optim.SGD([p], lr=1.0)
    warmup, total = 3, 8
    sched = optim.get_linear_schedule_with_warmup(opt, warmup, total)
    for step in range(10):
        literal = step / warmup if step < warmup else max(0.0, (total - step) / (total - warmup))
        close(opt.param_groups[0]["lr"], literal)
        opt.step()
        sched.step()


def test_l1_penalty():
    rng = np.random.default_rng(16)
    a, b = rng.normal(size=(2, 3)), rng.normal(size=4)
    literal = sum(abs(v) for v in a.ravel()) + sum(abs(v) for v in b)    # sum_w |w|
    close(losses.l1_penalty([t64(a), t64(b)]).item(), literal)


def test_l2_penalty():
    rng = np.random.default_rng(17)
    a, g = rng.normal(size=3), rng.normal(size=3)
    close(losses.l2_penalty([t64(a)]).item(), sum(v * v for v in a))   # sum_w w^2
    # L + lambda sum w^2 has gradient g + 2 lambda w: SGD's weight_decay = 2 lambda
    lam, lr = 0.05, 0.1
    close(_run_optimizer(optim.SGD, [g], a, lr=lr, weight_decay=2 * lam),
          a - lr * (g + 2 * lam * a))


# ----- evaluation metrics -------------------------------------------------------------------

def test_perplexity():
    rng = np.random.default_rng(32)
    logits, targets = rng.normal(size=(2, 3, 5)), rng.integers(0, 5, (2, 3))
    log_p = [math.log(softmax_list(logits[b, t])[targets[b, t]])
             for b in range(2) for t in range(3)]
    literal = math.exp(-sum(log_p) / len(log_p))              # exp(-(1/N) sum log p)
    close(metrics.perplexity_from_logits(logits, targets), literal)
    close(metrics.perplexity(-np.mean(log_p)), literal)


def _ngrams(tokens, n):
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def test_bleu():
    hyps = ["the cat sat on the mat today", "a quick brown fox jumps over the dog"]
    refs = ["the cat sat on the red mat", "the quick brown fox jumps over the lazy dog"]
    correct, total = [0] * 4, [0] * 4
    c = r = 0
    for h, ref in zip(hyps, refs):
        ht, rt = h.split(), ref.split()
        c, r = c + len(ht), r + len(rt)
        for n in range(1, 5):
            hc, rc = _ngrams(ht, n), _ngrams(rt, n)
            correct[n - 1] += sum(min(k, rc[g]) for g, k in hc.items())   # clipped counts
            total[n - 1] += sum(hc.values())
    p = [correct[n] / total[n] for n in range(4)]
    bp = 1.0 if c >= r else math.exp(1 - r / c)               # brevity penalty
    literal = 100 * bp * math.exp(sum(math.log(x) for x in p) / 4)
    score = metrics.corpus_bleu(hyps, refs, tokenize="none", smooth_method="none")
    close(score.score, literal)


def test_rouge_n():
    pred, ref = "the cat was found under the bed", "the cat was under the bed"
    for n in (1, 2):
        pc, rc = _ngrams(pred.split(), n), _ngrams(ref.split(), n)
        overlap = sum(min(k, pc[g]) for g, k in rc.items())
        p, r = overlap / sum(pc.values()), overlap / sum(rc.values())
        s = metrics.rouge_n(pred, ref, n=n)
        close([s.precision, s.recall, s.fmeasure], [p, r, 2 * p * r / (p + r)])


def test_rouge_l():
    pred, ref = ["police", "killed", "the", "gunman"], ["police", "kill", "the", "gunman"]

    def lcs(a, b):                                            # longest common subsequence
        if not a or not b:
            return 0
        if a[-1] == b[-1]:
            return lcs(a[:-1], b[:-1]) + 1
        return max(lcs(a[:-1], b), lcs(a, b[:-1]))
    p, r = lcs(pred, ref) / len(pred), lcs(pred, ref) / len(ref)
    s = metrics.rouge_l(" ".join(pred), " ".join(ref))
    close([s.precision, s.recall, s.fmeasure], [p, r, 2 * p * r / (p + r)])


def test_accuracy():
    y_true, y_pred = [0, 1, 2, 1, 0, 2], [0, 2, 2, 1, 1, 2]
    literal = sum(t == p for t, p in zip(y_true, y_pred)) / len(y_true)
    close(metrics.accuracy(y_true, y_pred), literal)


def test_precision_recall_f1():
    y_true, y_pred = [1, 0, 1, 1, 0, 0, 1, 0], [1, 1, 1, 0, 0, 1, 1, 0]
    tp = sum(t == 1 and p == 1 for t, p in zip(y_true, y_pred))
    fp = sum(t == 0 and p == 1 for t, p in zip(y_true, y_pred))
    fn = sum(t == 1 and p == 0 for t, p in zip(y_true, y_pred))
    prec, rec = tp / (tp + fp), tp / (tp + fn)
    close(metrics.precision(y_true, y_pred), prec)
    close(metrics.recall(y_true, y_pred), rec)
    close(metrics.f1_score(y_true, y_pred), 2 * prec * rec / (prec + rec))


# ----- pre-training data --------------------------------------------------------------------

def test_masked_lm_masking():
    rng = np.random.default_rng(33)
    V, MASK, special = 60, 4, (0, 1, 2, 3)
    ids = rng.integers(5, V, size=(200, 500))
    ids[:, 0], ids[:, -1] = 2, 3                              # [CLS] ... [SEP]
    masked, labels = mask_tokens(ids, mask_token_id=MASK, vocab_size=V, rng=rng,
                                 special_ids=special)
    chosen = labels != -100
    assert not chosen[:, [0, -1]].any()                       # specials are never chosen
    assert np.array_equal(labels[chosen], ids[chosen])        # labels: the original ids
    assert np.array_equal(masked[~chosen], ids[~chosen])      # the rest is untouched
    n_cand, n = ids[:, 1:-1].size, chosen.sum()
    p_mask = (masked[chosen] == MASK).mean()
    p_random = ((masked[chosen] != MASK) & (masked[chosen] != ids[chosen])).mean()
    # 15% chosen; of those 80% [MASK], 10% random (which may redraw the same id), 10% kept
    p_same_draw = 1 / (V - len(special) - 1)
    for observed, expected, count in ((n / n_cand, 0.15, n_cand), (p_mask, 0.8, n),
                                      (p_random, 0.1 * (1 - p_same_draw), n)):
        assert abs(observed - expected) < 5 * math.sqrt(expected * (1 - expected) / count)


def test_next_sentence_pairs():
    rng = np.random.default_rng(34)
    docs = [[f"d{d}s{s}" for s in range(6)] for d in range(40)]
    pairs = make_nsp_pairs(docs, rng=rng)
    labels = np.array([label for _, _, label in pairs])
    assert abs(labels.mean() - 0.5) < 5 * math.sqrt(0.25 / len(labels))   # 50% IsNext
    for a, b, label in pairs:
        da, sa = map(int, a[1:].split("s"))
        db, sb = map(int, b[1:].split("s"))
        if label == 0:
            assert (db, sb) == (da, sa + 1)                   # the real next sentence
        else:
            assert db != da                                   # from another document
