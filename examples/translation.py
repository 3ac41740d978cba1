"""Translation with a Transformer encoder-decoder (the post-LN equations of seeds/003):
dates written in several formats -> "March 5, 2024", character by character.

    python examples/translation.py            # full run (about 2 minutes on 2 cores)
    python examples/translation.py --quick    # a small run (about 20 s)

1. Data: random dates written as "2024-03-05", "05/03/2024", "Mar 5, 2024",
   "5 March 2024" or "Tuesday, March 5, 2024" (day-month order only: "03/05/2024" would be
   ambiguous), each paired with "March 5, 2024". Validation and test dates are new dates.
2. Tokenizer: characters, one vocabulary shared by source and target (and one embedding
   table, tied to the output layer).
3. Training with teacher forcing: the decoder reads <bos> y_1 .. y_{T-1} and predicts
   y_1 .. y_T <eos>; cross-entropy with label smoothing; AdamW with warmup and decay, gradient
   clipping, the best weights on the validation loss kept.
4. Evaluation on the test set: greedy decoding and beam search, scored by corpus BLEU
   (sacreBLEU's 13a tokenization) and exact match.

Timings are with OPENBLAS_NUM_THREADS=1 (set it before running): these models multiply small
matrices, where more BLAS threads only wait for each other (several times slower on a busy
machine).
"""
import argparse
import os
import time

import numpy as np

from tinygrad_llm.autograd import no_grad
from tinygrad_llm.creation import Generator
from tinygrad_llm.data import CharTokenizer, PadCollate, Seq2SeqDataset, date_pairs
from tinygrad_llm.metrics import corpus_bleu
from tinygrad_llm.models.seq2seq import Seq2SeqConfig, Seq2SeqTransformer
from tinygrad_llm.train import TrainConfig, train
from tinygrad_llm.cli import parse_with_presets

FORMATS = ("iso", "dmy", "short", "day_month", "weekday")
FULL = dict(formats=",".join(FORMATS), n_train=6000, d_model=64, layers=2, heads=4,
            batch_size=48, steps=900, lr=3e-3, n_test=300, n_beam=100, beam_size=4)
QUICK = dict(formats="iso,short,day_month", n_train=3000, d_model=64, layers=1, heads=4,
             batch_size=32, steps=300, lr=5e-3, n_test=100, n_beam=20, beam_size=3)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small configuration (tests)")
    p.add_argument("--out", default="runs/translation", help="checkpoint and logs")
    p.add_argument("--seed", type=int, default=0)
    # --formats: source formats, comma-separated (see tinygrad_llm.data.tasks.format_date)
    return parse_with_presets(p, argv, FULL, QUICK)  # every knob; --quick: QUICK


def make_pairs(n, formats, seed):
    """n (source, target) pairs, the source formats taking turns."""
    per = -(-n // len(formats))
    pairs = []
    for k, fmt in enumerate(formats):
        pairs += date_pairs(per, seed=seed * 100 + k, source_format=fmt, target_format="long")
    order = np.random.default_rng(seed).permutation(len(pairs))[:n]
    return [pairs[i] for i in order]


def splits(args, formats):
    """Train, validation and test pairs; no validation or test target is a training target
    (so every held-out date is new to the model)."""
    train_pairs = make_pairs(args.n_train, formats, args.seed)
    seen = {t for _, t in train_pairs}
    held = [p for p in make_pairs(4 * (args.n_test + 200), formats, args.seed + 1)
            if p[1] not in seen]
    return train_pairs, held[:200], held[200:200 + args.n_test]


def sampler(dataset, collate, batch_size):
    def get_batch(rng):
        return collate([dataset[int(i)] for i in rng.integers(0, len(dataset), batch_size)])
    return get_batch


def translate(model, tokenizer, sources, num_beams=1, batch_size=100):
    out = []
    for i in range(0, len(sources), batch_size):
        enc = tokenizer.encode_batch(sources[i:i + batch_size])
        ids = model.generate(enc["input_ids"], enc["attention_mask"], max_new_tokens=32,
                             num_beams=num_beams)
        out += [tokenizer.decode(seq) for seq in ids]
    return out


def score(hypotheses, references):
    return {"bleu": corpus_bleu(hypotheses, references).score,
            "exact_match": float(np.mean([h == r for h, r in zip(hypotheses, references)]))}


def main(argv=None):
    args = parse_args(argv)
    t0 = time.perf_counter()
    formats = tuple(args.formats.split(","))
    train_pairs, val_pairs, test_pairs = splits(args, formats)
    tokenizer = CharTokenizer.from_corpus([s + t for s, t in train_pairs])
    data = {name: Seq2SeqDataset([s for s, _ in pairs], [t for _, t in pairs], tokenizer)
            for name, pairs in (("train", train_pairs), ("val", val_pairs))}
    collate = PadCollate(tokenizer.pad_token_id)
    print(f"{len(train_pairs)} training pairs ({', '.join(formats)} -> long), "
          f"{len(test_pairs)} test pairs; {tokenizer.vocab_size} characters")

    config = Seq2SeqConfig(src_vocab_size=tokenizer.vocab_size,
                           tgt_vocab_size=tokenizer.vocab_size, d_model=args.d_model,
                           nhead=args.heads, num_encoder_layers=args.layers,
                           num_decoder_layers=args.layers, dim_feedforward=4 * args.d_model,
                           dropout=0.0, max_len=64, label_smoothing=0.1,
                           pad_token_id=tokenizer.pad_token_id,
                           bos_token_id=tokenizer.bos_token_id,
                           eos_token_id=tokenizer.eos_token_id)
    model = Seq2SeqTransformer(config, generator=Generator(args.seed))
    val_batches = [collate([data["val"][j] for j in range(i, min(i + 100, len(val_pairs)))])
                   for i in range(0, len(val_pairs), 100)]

    @no_grad()
    def val_loss(m):
        m.eval()
        loss = np.mean([float(m(**b)["loss"].item()) for b in val_batches])
        m.train()
        return loss

    tc = TrainConfig(max_steps=args.steps, learning_rate=args.lr, warmup_steps=args.steps // 10,
                     lr_schedule="cosine", weight_decay=0.01, betas=(0.9, 0.98),
                     grad_clip=1.0, eval_interval=max(args.steps // 6, 1), keep_best=True,
                     out_dir=args.out, seed=args.seed, progress=False, plot=not args.quick)
    result = train(model, sampler(data["train"], collate, args.batch_size), tc,
                   eval_fn=val_loss, loss_fn=lambda m, b: m(**b)["loss"], tokenizer=tokenizer,
                   log=lambda *a: None)
    train_s = time.perf_counter() - t0
    print(f"model: {model.num_parameters():,} parameters; trained {result['steps']} steps in "
          f"{train_s:.1f} s, best validation loss {result['best_val_loss']:.3f}")

    sources = [s for s, _ in test_pairs]
    references = [t for _, t in test_pairs]
    greedy = translate(model, tokenizer, sources)
    res = {f"greedy_{k}": v for k, v in score(greedy, references).items()}
    n = args.n_beam
    beam = translate(model, tokenizer, sources[:n], num_beams=args.beam_size)
    res.update({f"beam_{k}": v for k, v in score(beam, references[:n]).items()})
    res.update({f"greedy_subset_{k}": v for k, v in score(greedy[:n], references[:n]).items()})
    print(f"test, greedy ({len(sources)} dates): BLEU {res['greedy_bleu']:.1f}, exact match "
          f"{res['greedy_exact_match']:.3f}")
    print(f"test, beam search k={args.beam_size} (first {n}): BLEU {res['beam_bleu']:.1f}, "
          f"exact match {res['beam_exact_match']:.3f} (greedy on the same: BLEU "
          f"{res['greedy_subset_bleu']:.1f}, exact match "
          f"{res['greedy_subset_exact_match']:.3f})")
    for src, hyp, ref in list(zip(sources, greedy, references))[:5]:
        print(f"  {src:>28} -> {hyp:<20} {'ok' if hyp == ref else 'expected ' + ref}")
    res.update(steps=result["steps"], train_seconds=train_s,
               checkpoint=os.path.join(args.out, "checkpoint"),
               seconds=time.perf_counter() - t0)
    print(f"total time {res['seconds']:.1f} s")
    return res


if __name__ == "__main__":
    main()
