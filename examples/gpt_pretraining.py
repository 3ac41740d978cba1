"""GPT pre-training by next-token prediction on the built-in corpus, held-out perplexity against
a unigram baseline, then text generation through ``pipeline('text-generation')`` (seeds/001).

    python examples/gpt_pretraining.py                   # full run (about 2 minutes, 2 cores)
    python examples/gpt_pretraining.py --quick           # a small run (about 15 s)
    python examples/gpt_pretraining.py --tokenizer char  # characters instead of byte-level BPE

Steps (seeds/001, 3.1-3.3):

1. Data: the built-in corpus (standard-library docstrings); its last documents are held out.
2. Tokenization: byte-level BPE (GPT-2's scheme) learned on the training text, or characters.
3. Training: the language-model loss L = -(1/N) sum_i log p(w_i | w_<i) (cross-entropy of
   next-token prediction) minimized by AdamW with warmup and cosine decay, gradient
   clipping, validation and the best weights kept; a checkpoint (weights + tokenizer).
4. Evaluation: perplexity PPL = exp(L) on the held-out text, next to a unigram model
   p(w) = count(w) / N (add-one smoothed, from the training text), which ignores the context,
   and the uniform model (PPL = vocabulary size).
5. Generation: ``pipeline('text-generation', model=<checkpoint folder>)`` as in seeds/001.

Timings are with OPENBLAS_NUM_THREADS=1 (set it before running): these models multiply small
matrices, where more BLAS threads only wait for each other (several times slower on a busy
machine).
"""
import argparse
import time

import numpy as np

from tinygrad_llm.autograd import no_grad
from tinygrad_llm.creation import Generator
from tinygrad_llm.data import ByteLevelBPETokenizer, CharTokenizer, corpus_documents
from tinygrad_llm.hf import pipeline
from tinygrad_llm.metrics import perplexity
from tinygrad_llm.models import GPT, GPTConfig
from tinygrad_llm.tensor import Tensor
from tinygrad_llm.train import TrainConfig, train
from tinygrad_llm.cli import parse_with_presets

FULL = dict(max_chars=400_000, vocab_size=512, block_size=64, n_layer=2, n_head=4, n_embd=96,
            batch_size=32, steps=800, lr=2e-3)
QUICK = dict(max_chars=100_000, vocab_size=384, block_size=48, n_layer=2, n_head=4, n_embd=64,
             batch_size=24, steps=120, lr=3e-3)
PROMPT = "Return the"


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small configuration (tests)")
    p.add_argument("--tokenizer", choices=("bpe", "char"), default="bpe")
    p.add_argument("--out", default="runs/gpt_pretraining", help="checkpoint and logs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--prompt", default=PROMPT)
    p.add_argument("--max-new-tokens", type=int, default=40)
    return parse_with_presets(p, argv, FULL, QUICK)  # every knob; --quick: QUICK


def split_corpus(max_chars, val_fraction=0.1):
    """(train text, held-out text): the last documents (about val_fraction) are held out."""
    docs = corpus_documents(max_chars)
    n_val = max(int(len(docs) * val_fraction), 1)
    return "\n\n".join(docs[:-n_val]), "\n\n".join(docs[-n_val:])


def build_tokenizer(kind, texts, vocab_size):
    if kind == "char":
        return CharTokenizer.from_corpus(texts)
    return ByteLevelBPETokenizer.train(texts, vocab_size=vocab_size)


def window_sampler(ids, block_size, batch_size):
    """get_batch(rng) -> (x, y): random windows of the token stream, y = x shifted by one."""
    def get_batch(rng):
        starts = rng.integers(0, len(ids) - block_size - 1, size=batch_size)
        offsets = starts[:, None] + np.arange(block_size)                  # (B, T)
        return Tensor(ids[offsets]), Tensor(ids[offsets + 1])
    return get_batch


def unigram_perplexity(train_ids, val_ids, vocab_size):
    """PPL of p(w) = (count(w) + 1) / (N + V): the best model that ignores the context."""
    counts = np.bincount(train_ids, minlength=vocab_size) + 1.0
    logp = np.log(counts / counts.sum())
    return perplexity(-logp[val_ids].mean())


@no_grad()
def heldout_perplexity(model, ids, block_size, batch_size=32):
    """exp(mean next-token NLL) over every non-overlapping window of the held-out stream."""
    model.eval()
    n = (len(ids) - 1) // block_size
    starts = np.arange(n) * block_size
    total, count = 0.0, 0
    for i in range(0, n, batch_size):
        offsets = starts[i:i + batch_size, None] + np.arange(block_size)   # (b, T)
        _, loss = model(ids[offsets], ids[offsets + 1])
        total += float(loss.item()) * offsets.size
        count += offsets.size
    model.train()
    return perplexity(total / count)


def pretrain_gpt(args, extra_texts=(), out_dir=None, log=print):
    """Tokenize, train and evaluate a GPT on the corpus (plus ``extra_texts``, e.g. unlabeled
    in-domain text). Returns (model, tokenizer, results dict with the checkpoint folder)."""
    out_dir = out_dir or args.out
    train_text, val_text = split_corpus(args.max_chars)
    texts = [train_text] + list(extra_texts)
    tokenizer = build_tokenizer(args.tokenizer, texts, args.vocab_size)
    train_ids = np.concatenate([np.asarray(tokenizer.encode(t), dtype=np.int64)
                                for t in texts])
    val_ids = np.asarray(tokenizer.encode(val_text), dtype=np.int64)
    V = tokenizer.vocab_size
    log(f"corpus: {len(train_text):,} training + {len(val_text):,} held-out characters; "
        f"{args.tokenizer} vocabulary {V}; {len(train_ids):,} / {len(val_ids):,} tokens")
    config = GPTConfig(block_size=args.block_size, vocab_size=V, n_layer=args.n_layer,
                       n_head=args.n_head, n_embd=args.n_embd, dropout=0.0)
    model = GPT(config, generator=Generator(args.seed))
    t0 = time.perf_counter()
    ppl_init = heldout_perplexity(model, val_ids, args.block_size)
    cfg = TrainConfig(max_steps=args.steps, learning_rate=args.lr, warmup_steps=args.steps // 10,
                      lr_schedule="cosine", weight_decay=0.1, grad_clip=1.0,
                      eval_interval=max(args.steps // 5, 1), eval_batches=4, keep_best=True,
                      out_dir=out_dir, seed=args.seed, progress=False, plot=not args.quick)
    result = train(model, window_sampler(train_ids, args.block_size, args.batch_size), cfg,
                   get_val_batch=window_sampler(val_ids, args.block_size, args.batch_size),
                   tokenizer=tokenizer, log=log)
    res = {"val_perplexity": heldout_perplexity(model, val_ids, args.block_size),
           "val_perplexity_init": ppl_init,
           "unigram_perplexity": unigram_perplexity(train_ids, val_ids, V),
           "uniform_perplexity": float(V), "vocab_size": V, "steps": result["steps"],
           "train_loss_last": float(np.mean(result["history"]["loss"][-10:])),
           "tokens_per_s": result["tokens_per_s"], "train_seconds": time.perf_counter() - t0,
           "checkpoint": result["checkpoint"]}
    log(f"trained {res['steps']} steps in {res['train_seconds']:.1f} s "
        f"({res['tokens_per_s']:,.0f} tokens/s)")
    log(f"held-out perplexity: GPT {res['val_perplexity']:.2f} (at initialization "
        f"{ppl_init:.1f}), unigram {res['unigram_perplexity']:.2f}, uniform {V}")
    return model, tokenizer, res


def main(argv=None):
    args = parse_args(argv)
    t0 = time.perf_counter()
    model, tokenizer, res = pretrain_gpt(args)
    # seeds/001: generator = pipeline('text-generation', model=...); generator(prompt)
    generator = pipeline("text-generation", model=res["checkpoint"])
    out = generator(args.prompt, max_new_tokens=args.max_new_tokens, temperature=0.8,
                    top_k=40, seed=args.seed)
    res["generated_text"] = out[0]["generated_text"]
    greedy = pipeline("text-generation", model=model, tokenizer=tokenizer)(
        args.prompt, max_new_tokens=args.max_new_tokens, do_sample=False)
    res["greedy_text"] = greedy[0]["generated_text"]
    print(f"sampled (from {res['checkpoint']}): {res['generated_text']!r}")
    print(f"greedy: {res['greedy_text']!r}")
    res["seconds"] = time.perf_counter() - t0
    print(f"total time {res['seconds']:.1f} s")
    return res


if __name__ == "__main__":
    main()
