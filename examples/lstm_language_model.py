"""Seed 001's LSTM language model: Embedding -> LSTM(128) -> Dense(vocab), character level.

    python examples/lstm_language_model.py [--quick] [--steps N] [--hidden 128] [--seed 0]

Data: the first ``--chars`` characters of the built-in corpus (the standard library's
docstrings, ``tinygrad_llm.data.default_corpus``); the first 90% train, the last 10% are the
held-out text. The model (tinygrad_llm/models/lstm.py) predicts every next character,

    P(w_{t+1} | w_1..w_t) = softmax(Dense(LSTM(Embedding(w_1..w_t))))

trained with the mean cross-entropy -log P(w_{t+1} | w_<=t) and Adam, as the seed compiles it
(``loss='sparse_categorical_crossentropy', optimizer='adam'``). Evaluation: held-out
perplexity PPL = exp(mean NLL) next to two count-based baselines fitted on the training text,
the unigram model P(w) (which ignores context) and the bigram model P(w_{t+1} | w_t), both
add-one smoothed. Then the model writes text from a prompt.
"""
import argparse
import math
import time

import numpy as np

from tinygrad_llm import optim
from tinygrad_llm.autograd import no_grad
from tinygrad_llm.creation import Generator
from tinygrad_llm.data import CharTokenizer, LMWindowDataset, default_corpus
from tinygrad_llm.metrics import perplexity
from tinygrad_llm.models.lstm import LSTMConfig, LSTMLanguageModel


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small run (about 20 s)")
    p.add_argument("--chars", type=int, default=400_000, help="corpus characters to use")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--block-size", type=int, default=64)
    p.add_argument("--n-embd", type=int, default=32)
    p.add_argument("--hidden", type=int, default=128, help="LSTM units (seed 001: 128)")
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--eval-windows", type=int, default=200, help="held-out windows scored")
    p.add_argument("--max-new-tokens", type=int, default=200)
    p.add_argument("--prompt", default="The ")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.chars, args.steps = min(args.chars, 60_000), min(args.steps, 200)
        args.hidden, args.block_size = min(args.hidden, 64), min(args.block_size, 32)
        args.eval_windows = min(args.eval_windows, 100)
        args.max_new_tokens = min(args.max_new_tokens, 100)
    return args


def count_baselines(train_ids, val_ids, vocab_size):
    """Held-out perplexities of the add-one smoothed unigram and bigram models."""
    uni = np.bincount(train_ids, minlength=vocab_size) + 1.0                     # (V,)
    uni_ppl = perplexity(-np.mean(np.log(uni[val_ids] / uni.sum())))
    big = np.ones((vocab_size, vocab_size))                                      # (V, V)
    np.add.at(big, (train_ids[:-1], train_ids[1:]), 1.0)
    big /= big.sum(1, keepdims=True)
    big_ppl = perplexity(-np.mean(np.log(big[val_ids[:-1], val_ids[1:]])))
    return uni_ppl, big_ppl


@no_grad()
def heldout_nll(model, data, n_windows):
    """Mean cross-entropy (nats per character) over up to n_windows consecutive windows."""
    model.eval()
    n = min(n_windows, len(data))
    losses = []
    for start in range(0, n, 50):
        xs, ys = zip(*(data[i] for i in range(start, min(n, start + 50))))
        _, loss = model(np.stack(xs), np.stack(ys))
        losses.append((float(loss.item()), len(xs)))
    model.train()
    return sum(nll * k for nll, k in losses) / sum(k for _, k in losses)


def main(argv=None):
    args = parse_args(argv)
    say = (lambda *a: None) if args.quiet else print
    t0 = time.time()
    text = default_corpus(max_chars=args.chars)
    cut = int(0.9 * len(text))
    tok = CharTokenizer.from_corpus(text[:cut])
    train_ids = np.array(tok.encode(text[:cut]), dtype=np.int64)
    val_ids = np.array(tok.encode(text[cut:]), dtype=np.int64)
    V = tok.vocab_size
    train = LMWindowDataset(train_ids, args.block_size)
    val = LMWindowDataset(val_ids, args.block_size)
    say(f"corpus: {len(text):,} chars, vocab {V}, train {len(train_ids):,} / "
        f"held-out {len(val_ids):,} chars")

    cfg = LSTMConfig(vocab_size=V, n_embd=args.n_embd, hidden_size=args.hidden)
    model = LSTMLanguageModel(cfg, generator=Generator(args.seed))
    opt = optim.Adam(model.named_parameters(), lr=args.lr)
    sched = optim.get_cosine_schedule_with_warmup(opt, 20, args.steps)
    rng = np.random.default_rng(args.seed)
    for step in range(1, args.steps + 1):
        x, y = train.random_batch(args.batch_size, rng)
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        optim.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 100 == 0 or step == 1:
            say(f"step {step:4d}  train loss {loss.item():.3f}")

    nll = heldout_nll(model, val, args.eval_windows)
    val_ppl = perplexity(nll)
    uni_ppl, big_ppl = count_baselines(train_ids, val_ids, V)
    say(f"held-out perplexity: LSTM {val_ppl:.2f}  |  unigram {uni_ppl:.2f}  "
        f"bigram {big_ppl:.2f}  (uniform would be {V})")
    prompt = np.array([tok.encode(args.prompt)], dtype=np.int64)
    out = model.generate(prompt, args.max_new_tokens, temperature=0.8,
                         generator=Generator(args.seed))
    sample = tok.decode(out[0].tolist())
    say("sample:", sample)
    seconds = time.time() - t0
    say(f"{seconds:.1f} s")
    return {"val_ppl": val_ppl, "val_nll": nll, "unigram_ppl": uni_ppl, "bigram_ppl": big_ppl,
            "train_loss": float(loss.item()), "vocab_size": V, "sample": sample,
            "seconds": seconds, "bits_per_char": nll / math.log(2)}


if __name__ == "__main__":
    main()
