"""Seed 004's pre-training and fine-tuning: its two formulas, literally, and its PyTorch code.

    python examples/seed004_autoregressive.py [--quick] [--samples 3000] [--seed 0]

Data: generated sentences about four topics (sports, cooking, science, music; ``topic_task``
below): each topic has its own nouns, verbs and adjectives, 15% of the content words are
borrowed from another topic (noise), and function words are shared. Preprocessed as seed 004
says (lowercase, punctuation removed, split into words), each written <bos> w_1 .. w_n <eos>.
80% train, 20% held out. How each formula is read (shapes, the softmax, the ambiguities) is
written in tinygrad_llm/models/seed004.py.

Stage 1, pre-training on the texts without labels (3.1):
  (a) formula 1, P(w_{t+1} | w_1..w_t) = softmax(W_e[w_{t+1}] + sum_{i<=t} W_h[w_i]), with
      W_e (V,) and W_h (V, V), trained by Adam on the mean NLL (``Seed004LM``);
  (b) the seed's code, Embedding -> Linear -> Linear with CrossEntropyLoss and Adam
      (``AutoRegressiveModel.fit``), a bigram model.
  Score: held-out NLL per token (nats) next to the add-one unigram model's.

Stage 2, fine-tuning with labels (3.2): each label (the topic) is written as one word,
its name ("sports", ...), the label words of formula 2:
  (a) formula 2, P(w_1..w_n | y) = prod_i softmax(W_e[w_i] + sum_{j<=y} W_h[w_j]), starting
      from stage 1's W_e, W_h;
  (b) the seed's ``MultiLabelRegressionModel``, loaded with stage 1's weights and trained on
      (label word, text word) pairs.
  Score: held-out NLL per word of the text given its true label, next to the unigram
  model's, and the accuracy of classifying by Bayes' rule, argmax_y P(text | y) (topics are
  drawn uniformly, so P(y) is uniform).
"""
import argparse
import re
import time

import numpy as np

import tinygrad_llm.functional as F
from tinygrad_llm import optim
from tinygrad_llm.autograd import no_grad
from tinygrad_llm.creation import Generator
from tinygrad_llm.data import WordTokenizer, make_cleaner, pad_sequences
from tinygrad_llm.models.seed004 import (AutoRegressiveModel, MultiLabelRegressionModel,
                                         Seed004LM)

TOPICS = {  # label word: (nouns, verbs, adjectives)
    "sports": (("team", "player", "coach", "ball", "goal", "match", "stadium", "referee"),
               ("kicked", "scored", "won", "lost", "trained", "passed"),
               ("fast", "strong", "tired", "winning")),
    "cooking": (("chef", "soup", "oven", "pan", "recipe", "salt", "garlic", "kitchen"),
                ("baked", "stirred", "boiled", "tasted", "chopped", "served"),
                ("hot", "spicy", "fresh", "sweet")),
    "science": (("scientist", "atom", "experiment", "theory", "lab", "cell", "telescope",
                 "data"), ("measured", "tested", "observed", "proved", "studied", "computed"),
                ("precise", "new", "small", "quantum")),
    "music": (("band", "singer", "guitar", "song", "drum", "concert", "piano", "melody"),
              ("played", "sang", "tuned", "recorded", "composed", "heard"),
              ("loud", "soft", "catchy", "slow")),
}
LABEL_WORDS = tuple(TOPICS)             # label y -> its word sequence (one word each)
TEMPLATES = ("the {a} {n} {v} the {n}", "a {n} {v} a {a} {n} and the {n} {v}",
             "the {n} was {a}", "{n} and {n} {v} the {a} {n} today",
             "yesterday the {n} {v} a {n}")


def topic_task(n, seed=0, noise=0.15):
    """(texts, labels): sentences of TEMPLATES filled with one topic's words; each content
    word comes from another topic with probability ``noise``."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(len(TOPICS), size=n)

    def word(y, field):                       # field "n", "v" or "a": a noun, verb, adjective
        topic = y if rng.random() >= noise else rng.integers(len(TOPICS))
        options = TOPICS[LABEL_WORDS[topic]]["nva".index(field)]
        return options[rng.integers(len(options))]

    texts = [re.sub(r"\{(\w)\}", lambda m, y=y: word(y, m.group(1)),
                    TEMPLATES[rng.integers(len(TEMPLATES))]) for y in labels]
    return texts, labels.astype(np.int64)


def prepare(n, seed):
    texts, labels = topic_task(n, seed=seed)
    clean = make_cleaner(lowercase=True, remove_punctuation=True)
    texts = clean.map(texts)
    cut = int(0.8 * n)
    tok = WordTokenizer.from_corpus(texts[:cut] + list(LABEL_WORDS))
    seqs = [tok.encode(t, add_special_tokens=True) for t in texts]          # <bos> .. <eos>
    return tok, seqs, labels, cut


def lm_arrays(seqs):
    """(x, y) padded (N, T): x = seq[:-1], y = seq[1:] with -100 on padding."""
    x, _ = pad_sequences([s[:-1] for s in seqs], 0)
    y, _ = pad_sequences([s[1:] for s in seqs], -100)
    return x, y


def unigram_nll(train_targets, test_targets, V):
    """Mean -log P(w) of the held-out targets under add-one smoothed training counts."""
    counts = np.bincount(train_targets, minlength=V) + 1.0
    return float(-np.mean(np.log(counts[test_targets] / counts.sum())))


def batches(n, batch_size, rng):
    order = rng.permutation(n)
    return [order[s:s + batch_size] for s in range(0, n, batch_size)]


def pretrain_formula1(model, x, y, args, rng):
    opt = optim.Adam(model.named_parameters(), lr=args.lr)
    for _ in range(args.epochs):
        for idx in batches(len(x), args.batch_size, rng):
            _, loss = model(x[idx], y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()


@no_grad()
def nll_formula1(model, x, y):
    _, loss = model(x, y)
    return float(loss.item())


def pair_batches(x, y, batch_size, rng):
    """For the seed's per-position models: the (token, next token) pairs, shuffled."""
    keep = y.reshape(-1) != -100
    xs, ys = x.reshape(-1)[keep], y.reshape(-1)[keep]
    return lambda: ((xs[i], ys[i]) for i in batches(len(xs), batch_size, rng))


@no_grad()
def nll_per_position(model, x, y):
    keep = y.reshape(-1) != -100
    logits = model(x.reshape(-1)[keep])
    return float(F.cross_entropy(logits, y.reshape(-1)[keep]).item())


def text_words(seqs):
    """The words of each text (no <bos>/<eos>), padded, and their mask."""
    return pad_sequences([s[1:-1] for s in seqs], 0)


def finetune_formula2(model, label_ids, words, mask, labels, args, rng):
    """Minimize -(1/words) sum log P(text | y) over the labelled training texts."""
    opt = optim.Adam(model.named_parameters(), lr=args.lr)
    for _ in range(args.epochs):
        for idx in batches(len(words), args.batch_size, rng):
            logp = model.conditional_log_prob(label_ids[labels[idx]], words[idx], mask[idx])
            loss = -logp.sum() / float(mask[idx].sum())
            opt.zero_grad()
            loss.backward()
            opt.step()


@no_grad()
def score_formula2(model, label_ids, words, mask, labels):
    """(held-out NLL per word given the true label, Bayes accuracy)."""
    per_label = np.stack([model.conditional_log_prob(
        np.repeat(label_ids[y][None], len(words), 0), words, mask).numpy()
        for y in range(len(LABEL_WORDS))], axis=1)                             # (N, K)
    nll = -per_label[np.arange(len(words)), labels].sum() / mask.sum()
    return float(nll), float((per_label.argmax(1) == labels).mean())


@no_grad()
def score_label_model(model, label_ids, words, mask, labels):
    logp = F.log_softmax(model(label_ids[:, 0]), dim=-1).numpy()              # (K, V)
    per_label = np.stack([(logp[y][words] * mask).sum(1) for y in range(len(LABEL_WORDS))],
                         axis=1)                                              # (N, K)
    nll = -per_label[np.arange(len(words)), labels].sum() / mask.sum()
    return float(nll), float((per_label.argmax(1) == labels).mean())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--samples", type=int, default=3000)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.05, help="Adam, formulas 1 and 2")
    p.add_argument("--code-lr", type=float, default=0.01, help="Adam, the seed's code")
    p.add_argument("--embedding-dim", type=int, default=32)
    p.add_argument("--hidden-dim", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.samples, args.epochs = min(args.samples, 1200), min(args.epochs, 5)
    say = (lambda *a: None) if args.quiet else print
    t0 = time.time()
    rng = np.random.default_rng(args.seed)
    tok, seqs, labels, cut = prepare(args.samples, args.seed)
    V = tok.vocab_size
    x, y = lm_arrays(seqs)
    xtr, ytr, xte, yte = x[:cut], y[:cut], x[cut:], y[cut:]
    uni = unigram_nll(ytr[ytr != -100], yte[yte != -100], V)
    say(f"{len(seqs)} texts, vocab {V}; e.g. {tok.decode(seqs[0])!r}")
    r = {"vocab_size": V, "pretrain": {"unigram_nll": uni}, "finetune": {}}

    # ----- stage 1: pre-training ----------------------------------------------------------
    lm = Seed004LM(V)
    pretrain_formula1(lm, xtr, ytr, args, rng)
    r["pretrain"]["formula1_nll"] = nll_formula1(lm, xte, yte)
    code = AutoRegressiveModel(V, args.embedding_dim, args.hidden_dim, Generator(args.seed))
    code.fit(pair_batches(xtr, ytr, args.batch_size, rng), args.epochs, lr=args.code_lr)
    r["pretrain"]["code_nll"] = nll_per_position(code, xte, yte)
    say(f"pre-training, held-out NLL per token: formula 1 {r['pretrain']['formula1_nll']:.3f}"
        f", Embedding->Linear->Linear {r['pretrain']['code_nll']:.3f}, unigram {uni:.3f}")
    bos = np.array([[tok.bos_token_id]] * 3)
    for row in lm.generate(bos, 12, generator=Generator(args.seed), eos_token_id=tok.eos_token_id):
        say("  formula 1 writes:", tok.decode(row.tolist(), skip_special_tokens=True))

    # ----- stage 2: fine-tuning on labels -------------------------------------------------
    label_ids = np.array([[tok.token_to_id(w)] for w in LABEL_WORDS])          # (K, Y=1)
    words, mask = text_words(seqs)
    wtr, mtr, ltr = words[:cut], mask[:cut], labels[:cut]
    wte, mte, lte = words[cut:], mask[cut:], labels[cut:]
    uni_words = unigram_nll(wtr[mtr == 1], wte[mte == 1], V)
    finetune_formula2(lm, label_ids, wtr, mtr, ltr, args, rng)
    nll2, acc2 = score_formula2(lm, label_ids, wte, mte, lte)
    tuned = MultiLabelRegressionModel(V, args.embedding_dim, args.hidden_dim)
    tuned.load_state_dict(code.state_dict())                  # "load the pre-trained model"
    pairs_x = np.repeat(label_ids[ltr, 0][:, None], wtr.shape[1], 1)           # (N, n)
    pairs_y = np.where(mtr == 1, wtr, -100)
    tuned.fit(pair_batches(pairs_x, pairs_y, args.batch_size, rng), args.epochs,
              lr=args.code_lr)
    nll_c, acc_c = score_label_model(tuned, label_ids, wte, mte, lte)
    r["finetune"] = {"unigram_nll": uni_words, "formula2_nll": nll2, "formula2_accuracy": acc2,
                     "code_nll": nll_c, "code_accuracy": acc_c}
    say(f"fine-tuning, held-out NLL per word given the label: formula 2 {nll2:.3f}, "
        f"MultiLabelRegressionModel {nll_c:.3f}, unigram {uni_words:.3f}")
    say(f"classifying by argmax_y P(text | y): formula 2 accuracy {acc2:.3f}, "
        f"MultiLabelRegressionModel {acc_c:.3f} (chance {1 / len(LABEL_WORDS):.2f})")
    with no_grad():
        z = lm.label_logits(label_ids).numpy()                                  # (K, V)
    for y_, word in enumerate(LABEL_WORDS):
        top = np.argsort(-(z[y_] - z.mean(0)))[:6]
        say(f"  words most raised by '{word}': "
            f"{', '.join(tok.id_to_token(int(i)) for i in top)}")
    r["seconds"] = time.time() - t0
    say(f"{r['seconds']:.1f} s")
    return r


if __name__ == "__main__":
    main()
