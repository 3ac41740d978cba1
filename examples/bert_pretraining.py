"""BERT pre-trained by masked LM + next-sentence prediction on the built-in corpus, then
fine-tuned on sentiment classification with seeds/003's recipe.

    python examples/bert_pretraining.py            # full run (about 2 minutes on 2 cores)
    python examples/bert_pretraining.py --quick    # a small run (about 20 s)

The steps of seeds/003 (3.2), in order:

1. Corpus: the built-in corpus (standard-library docstrings) split into documents and
   sentences; the last documents are held out. Unlabeled in-domain text is added, since the
   docstrings hardly ever review a movie: domain-adaptive pre-training (seeds/003, figure 1).
   It is review sentences of the sentiment task's grammar, drawn with another seed, labels
   thrown away, none equal to a validation or test sentence; a two-clause review is a
   next-sentence pair of its own ("the plot was dull" + "but the music was great").
2. Tokenizer: byte-level BPE with BERT's template ``[CLS] A [SEP] B [SEP]``.
3. Pre-training: next-sentence pairs (half real, half a random sentence of another document)
   and 15% of the tokens masked (80% [MASK], 10% random, 10% kept); loss = MLM + NSP;
   AdamW, linear warmup then linear decay, gradient clipping, validation, best weights kept.
4. Held-out evaluation: MLM loss on masked held-out text before and after pre-training,
   next to a unigram baseline (the loss of guessing masked tokens by their frequency).
5. Fine-tuning: ``BertForSequenceClassification.from_pretrained(checkpoint)`` (the MLM and
   NSP heads are dropped, a fresh classifier sits on [CLS]), a smaller learning rate, warmup,
   early stopping and model selection on the validation loss.
6. Test set: accuracy, precision, recall, F1; the model is saved, reloaded and re-checked.
7. The same fine-tuning from a random initialization, to see what pre-training bought.

Timings are with OPENBLAS_NUM_THREADS=1 (set it before running): these models multiply small
matrices, where more BLAS threads only wait for each other (several times slower on a busy
machine).
"""
import argparse
import os
import time

import numpy as np

from tinygrad_llm.autograd import no_grad
from tinygrad_llm.checkpoint import load_checkpoint, save_checkpoint
from tinygrad_llm.creation import Generator
from tinygrad_llm.data import (ByteLevelBPETokenizer, ClassificationDataset, MaskedLMCollate,
                               NextSentenceDataset, PadCollate, corpus_documents,
                               make_nsp_pairs, sentiment_task, split_sentences)
from tinygrad_llm.metrics import accuracy, precision_recall_fscore_support
from tinygrad_llm.models.bert import (BertConfig, BertForPreTraining,
                                      BertForSequenceClassification)
from tinygrad_llm.train import TrainConfig, train
from tinygrad_llm.cli import parse_with_presets

FULL = dict(max_chars=300_000, vocab_size=1500, domain_sentences=6000, hidden=64, layers=2,
            heads=4, max_length=64, batch_size=32, pretrain_steps=700, pretrain_lr=2e-3,
            n_labeled=400, finetune_steps=300, finetune_lr=1e-3, patience=4)
QUICK = dict(max_chars=100_000, vocab_size=600, domain_sentences=2000, hidden=48, layers=2,
             heads=4, max_length=48, batch_size=32, pretrain_steps=150, pretrain_lr=3e-3,
             n_labeled=1000, finetune_steps=200, finetune_lr=2e-3, patience=4)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small configuration (tests)")
    p.add_argument("--out", default="runs/bert_pretraining", help="checkpoints go here")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-baseline", action="store_true",
                   help="skip fine-tuning from a random initialization")
    return parse_with_presets(p, argv, FULL, QUICK)  # every knob; --quick: QUICK


# ----- data -----------------------------------------------------------------------------------

def sentiment_splits(n_labeled, seed):
    """Labeled review sentences: train (n_labeled), validation and test (400 each)."""
    texts, labels = sentiment_task(n_labeled + 800, seed=seed + 1)
    cut = [n_labeled, n_labeled + 400]
    return [(texts[a:b], labels[a:b]) for a, b in zip([0] + cut, cut + [len(texts)])]


def review_pairs(texts, rng):
    """Next-sentence pairs from unlabeled reviews. "A and B" and "A, but B" give the pair
    (A, "and B") / (A, "but B"), IsNext (0); half the time the second clause is replaced by
    the second clause of another review, NotNext (1). Telling them apart means knowing
    that "and" joins clauses of one polarity and "but" opposite ones. Single-clause reviews
    are returned apart (they serve the masked LM only)."""
    firsts, seconds, singles = [], [], []
    for t in texts:
        for joint in (", but ", " and "):
            if joint in t:
                a, b = t.split(joint, 1)
                firsts.append(a)
                seconds.append(joint.strip(", ") + " " + b)
                break
        else:
            singles.append(t)
    pairs = []
    for i, a in enumerate(firsts):
        j = i if rng.random() < 0.5 else (i + rng.integers(1, len(firsts))) % len(firsts)
        pairs.append((a, seconds[j], int(j != i)))
    return pairs, singles


def build_pretraining_data(args, tokenizer, held_out_texts):
    """Train and held-out pre-training rows: next-sentence pairs of the corpus and of the
    unlabeled reviews, and single reviews (MLM only: next_sentence_label -100 is ignored)."""
    docs = [split_sentences(d) for d in corpus_documents(args.max_chars)]
    docs = [d for d in docs if d]
    n_val = max(len(docs) // 10, 2)
    rng = np.random.default_rng(args.seed)
    reviews, _ = sentiment_task(args.domain_sentences, seed=args.seed + 1000)
    reviews = [t for t in reviews if t not in held_out_texts]
    n_rval = len(reviews) // 10
    data, counts = {}, {}
    for split, corpus_docs, texts in (("train", docs[:-n_val], reviews[n_rval:]),
                                      ("val", docs[-n_val:], reviews[:n_rval])):
        pairs, singles = review_pairs(texts, rng)
        pairs += make_nsp_pairs(corpus_docs, rng=rng)
        data[split] = NextSentenceDataset(pairs, tokenizer, max_length=args.max_length).items
        for t in singles:
            ids = tokenizer.encode(t, add_special_tokens=True)[:args.max_length]
            data[split].append({"input_ids": np.asarray(ids, dtype=np.int64),
                                "token_type_ids": np.zeros(len(ids), dtype=np.int64),
                                "next_sentence_label": np.int64(-100)})
        counts[split] = (len(pairs), len(singles))
    return data, counts


class PretrainingCollate(MaskedLMCollate):
    """MaskedLMCollate, with token_type_ids padded by 0 (it pads every field with the [PAD]
    id, which is not a valid segment id when [PAD] is not token 0)."""

    def __call__(self, batch):
        out = super().__call__(batch)
        out["token_type_ids"] = np.where(out["attention_mask"] == 1, out["token_type_ids"], 0)
        return out


def sampler(items, collate, batch_size):
    """get_batch(rng): a random batch of items, collated (masking happens in collate)."""
    def get_batch(rng):
        return collate([items[i] for i in rng.integers(0, len(items), size=batch_size)])
    return get_batch


def fixed_batches(items, collate, batch_size):
    return [collate(items[i:i + batch_size]) for i in range(0, len(items), batch_size)]


# ----- evaluation -----------------------------------------------------------------------------

@no_grad()
def mlm_eval(model, batches):
    """Held-out masked-LM loss (mean over masked tokens) and NSP accuracy."""
    model.eval()
    nll, n_masked, nsp_right, nsp_n = 0.0, 0, 0, 0
    for b in batches:
        out = model(**b)
        n = int((b["labels"] != -100).sum())
        nll += float(out["mlm_loss"].item()) * n
        n_masked += n
        has_nsp = b["next_sentence_label"] >= 0
        pred = out["seq_relationship_logits"].numpy().argmax(-1)
        nsp_right += int((pred == b["next_sentence_label"])[has_nsp].sum())
        nsp_n += int(has_nsp.sum())
    model.train()
    return {"mlm_loss": nll / n_masked, "nsp_accuracy": nsp_right / max(nsp_n, 1)}


def unigram_mlm_loss(train_items, batches, vocab_size):
    """The MLM loss of a model that ignores the context: p(token) = its training frequency."""
    counts = np.ones(vocab_size)                                    # add-one smoothing
    for item in train_items:
        np.add.at(counts, item["input_ids"], 1)
    logp = np.log(counts / counts.sum())
    labels = np.concatenate([b["labels"].reshape(-1) for b in batches])
    return float(-logp[labels[labels != -100]].mean())


@no_grad()
def classify(model, dataset, collate, batch_size=100):
    model.eval()
    preds = []
    for i in range(0, len(dataset), batch_size):
        batch = collate([dataset[j] for j in range(i, min(i + batch_size, len(dataset)))])
        batch.pop("labels")
        preds.append(model(**batch)["logits"].numpy().argmax(-1))
    model.train()
    return np.concatenate(preds)


def test_metrics(model, dataset, collate):
    y_pred = classify(model, dataset, collate)
    p, r, f1, _ = precision_recall_fscore_support(dataset.labels, y_pred, average="binary",
                                                  zero_division=0.0)
    return {"accuracy": accuracy(dataset.labels, y_pred), "precision": p, "recall": r,
            "f1": f1}


# ----- the two stages -------------------------------------------------------------------------

def pretrain(args, tokenizer, data, out_dir):
    cfg = BertConfig(vocab_size=tokenizer.vocab_size, max_position_embeddings=args.max_length,
                     hidden_size=args.hidden, num_hidden_layers=args.layers,
                     num_attention_heads=args.heads, intermediate_size=4 * args.hidden,
                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = BertForPreTraining(cfg, generator=Generator(args.seed))
    train_collate = PretrainingCollate(tokenizer, seed=args.seed)
    val_batches = fixed_batches(data["val"], PretrainingCollate(tokenizer, seed=12345), 64)
    before = mlm_eval(model, val_batches)
    tc = TrainConfig(max_steps=args.pretrain_steps, learning_rate=args.pretrain_lr,
                     warmup_steps=args.pretrain_steps // 10, lr_schedule="linear",
                     weight_decay=0.01, betas=(0.9, 0.999), grad_clip=1.0,
                     eval_interval=max(args.pretrain_steps // 5, 1), keep_best=True,
                     out_dir=os.path.join(out_dir, "pretrain"), seed=args.seed,
                     progress=False, plot=False)
    result = train(model, sampler(data["train"], train_collate, args.batch_size), tc,
                   eval_fn=lambda m: mlm_eval(m, val_batches)["mlm_loss"],
                   loss_fn=lambda m, b: m(**b)["loss"], tokenizer=tokenizer,
                   log=lambda *a: None)
    after = mlm_eval(model, val_batches)
    folder = save_checkpoint(os.path.join(out_dir, "pretrained"), model, tokenizer=tokenizer,
                             model_config=model.config_dict())
    unigram = unigram_mlm_loss(data["train"], val_batches, tokenizer.vocab_size)
    return folder, {"mlm_loss_before": before["mlm_loss"], "mlm_loss_after": after["mlm_loss"],
                    "mlm_loss_unigram": unigram, "nsp_accuracy": after["nsp_accuracy"],
                    "pretrain_steps": result["steps"]}


def fine_tune(model, splits, collate, args, out_dir):
    """seeds/003's fine-tuning: AdamW with a small learning rate, linear warmup and decay,
    evaluation on the validation set, early stopping, the best weights kept."""
    train_ds, val_ds = splits["train"], splits["val"]
    val_batches = [collate([val_ds[j] for j in range(i, min(i + 100, len(val_ds)))])
                   for i in range(0, len(val_ds), 100)]

    @no_grad()
    def val_loss(m):
        m.eval()
        loss = np.mean([float(m(**b)["loss"].item()) for b in val_batches])
        m.train()
        return loss

    tc = TrainConfig(max_steps=args.finetune_steps, learning_rate=args.finetune_lr,
                     warmup_steps=args.finetune_steps // 10, lr_schedule="linear",
                     weight_decay=0.01, betas=(0.9, 0.999), grad_clip=1.0,
                     eval_interval=max(args.finetune_steps // 12, 1), patience=args.patience,
                     keep_best=True, out_dir=out_dir, seed=args.seed, progress=False,
                     plot=False)
    result = train(model, sampler(train_ds, collate, args.batch_size), tc, eval_fn=val_loss,
                   loss_fn=lambda m, b: m(**b)["loss"], log=lambda *a: None)
    return {"steps": result["steps"], "best_val_loss": result["best_val_loss"]}


def main(argv=None):
    args = parse_args(argv)
    t0 = time.perf_counter()
    (train_t, train_y), (val_t, val_y), (test_t, test_y) = sentiment_splits(args.n_labeled,
                                                                           args.seed)
    corpus = "\n\n".join(corpus_documents(args.max_chars))
    domain_for_tokenizer, _ = sentiment_task(args.domain_sentences, seed=args.seed + 1000)
    tokenizer = ByteLevelBPETokenizer.train([corpus, "\n".join(domain_for_tokenizer)],
                                            vocab_size=args.vocab_size, template="bert")
    data, counts = build_pretraining_data(args, tokenizer, set(val_t + test_t))
    print(f"pre-training rows: {counts['train'][0]} next-sentence pairs + {counts['train'][1]}"
          f" single reviews ({len(data['val'])} held out); BPE vocabulary "
          f"{tokenizer.vocab_size}")

    folder, res = pretrain(args, tokenizer, data, args.out)
    print(f"held-out MLM loss: {res['mlm_loss_before']:.3f} at initialization -> "
          f"{res['mlm_loss_after']:.3f} after {res['pretrain_steps']} steps (unigram "
          f"baseline {res['mlm_loss_unigram']:.3f}); NSP accuracy {res['nsp_accuracy']:.3f}")

    splits = {name: ClassificationDataset(t, y, tokenizer, max_length=args.max_length)
              for name, t, y in (("train", train_t, train_y), ("val", val_t, val_y),
                                 ("test", test_t, test_y))}
    collate = PadCollate(tokenizer.pad_token_id)
    model = BertForSequenceClassification.from_pretrained(
        folder, num_labels=2, generator=Generator(args.seed), hidden_dropout_prob=0.1)
    ft = fine_tune(model, splits, collate, args, os.path.join(args.out, "finetune"))
    res["finetune_steps"] = ft["steps"]
    res.update({f"test_{k}": v for k, v in test_metrics(model, splits["test"], collate).items()})
    print(f"fine-tuned on {len(train_t)} labeled sentences ({ft['steps']} steps): test "
          f"accuracy {res['test_accuracy']:.3f}, precision {res['test_precision']:.3f}, "
          f"recall {res['test_recall']:.3f}, F1 {res['test_f1']:.3f}")

    saved = save_checkpoint(os.path.join(args.out, "classifier"), model, tokenizer=tokenizer,
                            model_config=model.config_dict())
    reloaded = BertForSequenceClassification(BertConfig(**model.config_dict()))
    load_checkpoint(saved, reloaded)
    res["reloaded_test_accuracy"] = test_metrics(reloaded, splits["test"], collate)["accuracy"]
    res["checkpoint"] = saved
    print(f"saved to {saved}; reloaded test accuracy {res['reloaded_test_accuracy']:.3f}")

    if not args.no_baseline:
        scratch = BertForSequenceClassification(BertConfig(**model.config_dict()),
                                                generator=Generator(args.seed))
        fine_tune(scratch, splits, collate, args, os.path.join(args.out, "scratch"))
        res["scratch_test_accuracy"] = test_metrics(scratch, splits["test"],
                                                    collate)["accuracy"]
        print(f"the same fine-tuning from a random initialization: test accuracy "
              f"{res['scratch_test_accuracy']:.3f}")
    res["seconds"] = time.perf_counter() - t0
    print(f"total time {res['seconds']:.1f} s")
    return res


if __name__ == "__main__":
    main()
