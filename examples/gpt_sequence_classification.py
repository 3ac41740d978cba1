"""Seeds/002's recipe: a GPT fine-tuned for two-label sequence classification through the
Trainer API (``AutoModelForSequenceClassification.from_pretrained(..., num_labels=2)``,
``TrainingArguments``, ``Trainer(...).train()``), on the generated sentiment task.

    python examples/gpt_sequence_classification.py              # full run (about 2 minutes)
    python examples/gpt_sequence_classification.py --quick      # a small run (about 20 s)
    python examples/gpt_sequence_classification.py --pretrained runs/gpt_pretraining/checkpoint

1. A pre-trained GPT: example 6's pre-training (gpt_pretraining.py) on the built-in corpus
   plus unlabeled review sentences (labels thrown away, none equal to a validation or test
   sentence): domain-adaptive pre-training. Or any GPT checkpoint folder (--pretrained).
2. ``GPTForSequenceClassification.from_pretrained(checkpoint, num_labels=2)``: the GPT trunk,
   and a new linear ``score`` layer on the hidden state of the last real token.
3. ``Trainer(model, args=TrainingArguments(...), train_dataset, eval_dataset).train()``:
   AdamW, linear warmup and decay, evaluation every epoch, the best weights kept; then
   ``trainer.evaluate()`` and ``trainer.predict(test)``: accuracy, precision, recall, F1.
4. The same Trainer run from a random initialization, for comparison.

Timings are with OPENBLAS_NUM_THREADS=1 (set it before running): these models multiply small
matrices, where more BLAS threads only wait for each other (several times slower on a busy
machine).
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # the sibling examples
from gpt_pretraining import parse_args as pretraining_args  # noqa: E402
from gpt_pretraining import pretrain_gpt  # noqa: E402

from tinygrad_llm.checkpoint import load_tokenizer  # noqa: E402
from tinygrad_llm.creation import Generator  # noqa: E402
from tinygrad_llm.data import ClassificationDataset, sentiment_task  # noqa: E402
from tinygrad_llm.hf import Trainer, TrainingArguments  # noqa: E402
from tinygrad_llm.metrics import accuracy, precision_recall_fscore_support  # noqa: E402
from tinygrad_llm.models.gpt_classifier import GPTForSequenceClassification  # noqa: E402
from tinygrad_llm.cli import parse_with_presets

FULL = dict(pretrain_steps=600, domain_sentences=4000, n_labeled=1000, epochs=3,
            batch_size=16, lr=1e-3, warmup_steps=20)
QUICK = dict(pretrain_steps=120, domain_sentences=2000, n_labeled=1000, epochs=4,
             batch_size=16, lr=1e-3, warmup_steps=10)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small configuration (tests)")
    p.add_argument("--out", default="runs/gpt_sequence_classification")
    p.add_argument("--pretrained", default=None,
                   help="a GPT checkpoint folder (with its tokenizer); default: pre-train one")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-baseline", action="store_true",
                   help="skip the run from a random initialization")
    return parse_with_presets(p, argv, FULL, QUICK)  # every knob; --quick: QUICK


def compute_metrics(pred):
    """EvalPrediction(predictions=logits, label_ids) -> accuracy, precision, recall, F1."""
    y_pred = pred.predictions.argmax(-1)
    p, r, f1, _ = precision_recall_fscore_support(pred.label_ids, y_pred, average="binary",
                                                  zero_division=0.0)
    return {"accuracy": accuracy(pred.label_ids, y_pred), "precision": p, "recall": r,
            "f1": f1}


def fine_tune(model, datasets, args, output_dir, pad_token_id):
    """seeds/002: TrainingArguments + Trainer(...).train(), then evaluate and predict."""
    training_args = TrainingArguments(
        output_dir=output_dir, num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size, per_device_eval_batch_size=100,
        learning_rate=args.lr, warmup_steps=args.warmup_steps, weight_decay=0.01,
        seed=args.seed, disable_tqdm=True, pad_token_id=pad_token_id)
    trainer = Trainer(model=model, args=training_args, train_dataset=datasets["train"],
                      eval_dataset=datasets["val"], compute_metrics=compute_metrics)
    trainer.train()
    val = trainer.evaluate()
    test = trainer.predict(datasets["test"]).metrics
    return trainer, val, {k.replace("eval_", "test_"): v for k, v in test.items()}


def main(argv=None):
    args = parse_args(argv)
    t0 = time.perf_counter()
    texts, labels = sentiment_task(args.n_labeled + 800, seed=args.seed + 1)
    held_out = set(texts[args.n_labeled:])
    res = {}
    if args.pretrained:
        checkpoint = args.pretrained
        tokenizer = load_tokenizer(checkpoint)
    else:
        unlabeled, _ = sentiment_task(args.domain_sentences, seed=args.seed + 1000)
        unlabeled = "\n".join(t for t in unlabeled if t not in held_out)
        gpt_args = pretraining_args((["--quick"] if args.quick else [])
                                    + ["--steps", str(args.pretrain_steps),
                                       "--seed", str(args.seed)])
        _, tokenizer, pre = pretrain_gpt(gpt_args, extra_texts=[unlabeled],
                                         out_dir=os.path.join(args.out, "pretrain"))
        checkpoint = pre["checkpoint"]
        res.update({f"pretrain_{k}": v for k, v in pre.items() if k != "checkpoint"})
    print(f"pre-trained GPT: {checkpoint}")

    cut = [0, args.n_labeled, args.n_labeled + 400, len(texts)]
    datasets = {name: ClassificationDataset(texts[a:b], labels[a:b], tokenizer)
                for name, a, b in zip(("train", "val", "test"), cut[:-1], cut[1:])}
    pad = tokenizer.pad_token_id
    model = GPTForSequenceClassification.from_pretrained(checkpoint, num_labels=2,
                                                         pad_token_id=pad,
                                                         generator=Generator(args.seed))
    trainer, val, test = fine_tune(model, datasets, args, os.path.join(args.out, "finetune"),
                                   pad)
    trainer.save_model()
    res.update(val_accuracy=val["eval_accuracy"], **test,
               model_dir=os.path.join(args.out, "finetune", "model"))
    print(f"fine-tuned on {args.n_labeled} labeled sentences: validation accuracy "
          f"{val['eval_accuracy']:.3f}; test accuracy {test['test_accuracy']:.3f}, precision "
          f"{test['test_precision']:.3f}, recall {test['test_recall']:.3f}, "
          f"F1 {test['test_f1']:.3f}")

    if not args.no_baseline:
        scratch = GPTForSequenceClassification(model.config, num_labels=2, pad_token_id=pad,
                                               generator=Generator(args.seed))
        _, _, scratch_test = fine_tune(scratch, datasets, args,
                                       os.path.join(args.out, "scratch"), pad)
        res["scratch_test_accuracy"] = scratch_test["test_accuracy"]
        print(f"the same Trainer run from a random initialization: test accuracy "
              f"{res['scratch_test_accuracy']:.3f}")
    res["seconds"] = time.perf_counter() - t0
    print(f"total time {res['seconds']:.1f} s")
    return res


if __name__ == "__main__":
    main()
