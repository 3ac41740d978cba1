"""Quickstart: a character-level language model written with raw tensors, trained on the Zen of
Python (text every Python installation carries, in the ``this`` module), then sampled.

    python examples/quickstart.py [--steps 300] [--seed 0]

The model is an embedding table, one tanh hidden layer over the last 3 characters, and a
softmax over the next character, with every parameter a plain Tensor and the update rule
written out: p <- p - lr * dL/dp.
"""
import argparse
import codecs
import contextlib
import io

import numpy as np

import tinygrad_llm as tg
import tinygrad_llm.functional as F

CONTEXT = 3


def zen_text():
    with contextlib.redirect_stdout(io.StringIO()):  # importing `this` prints the Zen
        import this
    return codecs.decode(this.s, "rot13")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    text = zen_text()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    ids = np.array([stoi[c] for c in text])
    V, E, H = len(chars), 16, 128
    # (N, CONTEXT) windows of previous characters and the (N,) next character
    X = np.stack([ids[i:len(ids) - CONTEXT + i] for i in range(CONTEXT)], axis=1)
    Y = ids[CONTEXT:]

    g = tg.Generator(args.seed)
    emb = (tg.randn(V, E, generator=g) * 0.5).requires_grad_()
    w1 = (tg.randn(CONTEXT * E, H, generator=g) * (CONTEXT * E) ** -0.5).requires_grad_()
    b1 = tg.zeros(H, requires_grad=True)
    w2 = (tg.randn(H, V, generator=g) * H ** -0.5).requires_grad_()
    b2 = tg.zeros(V, requires_grad=True)
    params = [emb, w1, b1, w2, b2]

    def logits_of(x_ids):
        x = emb[x_ids].reshape(len(x_ids), CONTEXT * E)          # (B, CONTEXT*E)
        return (x @ w1 + b1).tanh() @ w2 + b2                     # (B, V)

    rng = np.random.default_rng(args.seed)
    for step in range(args.steps + 1):
        batch = rng.integers(0, len(Y), 128)
        logp = F.log_softmax(logits_of(X[batch]), -1)             # (B, V)
        loss = -logp.gather(1, tg.tensor(Y[batch][:, None])).mean()
        for p in params:
            p.grad = None
        loss.backward()
        with tg.no_grad():
            for p in params:
                p.sub_(0.5 * p.grad)
        if step % 100 == 0:
            print(f"step {step:4d}  loss {loss.item():.3f}")

    context = list(ids[:CONTEXT])
    with tg.no_grad():
        for _ in range(200):
            probs = F.softmax(logits_of(np.array([context[-CONTEXT:]])), -1).numpy()[0]
            context.append(int(rng.choice(V, p=probs / probs.sum())))
    print("".join(chars[i] for i in context))
    return loss.item()


if __name__ == "__main__":
    main()
