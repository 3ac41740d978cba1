"""A Hugging Face-style front end: TrainingArguments, Trainer and pipeline, as seeds 001-003
use them, on tinygrad_llm's own models and training loop.

    args = TrainingArguments(output_dir="runs/clf", num_train_epochs=3,
                             per_device_train_batch_size=16, learning_rate=5e-4,
                             warmup_steps=10)
    trainer = Trainer(model=model, args=args, train_dataset=train_ds, eval_dataset=val_ds,
                      compute_metrics=lambda p: {"accuracy": (p.predictions.argmax(-1)
                                                              == p.label_ids).mean()})
    trainer.train()
    print(trainer.evaluate())            # {"eval_loss": ..., "eval_accuracy": ...}

    generator = pipeline("text-generation", model="runs/gpt/checkpoint")
    generator("Once upon a time", max_new_tokens=30)   # [{"generated_text": "..."}]

Datasets are sequences of dicts ({"input_ids": [...], "labels": ...}); a batch pads
input_ids (and builds attention_mask) to the longest example. Models are called as
``model(**batch)`` and may return an object with ``.loss``/``.logits``, a dict, or nanoGPT's
``(logits, loss)`` tuple. The optimisation itself is ``tinygrad_llm.train.train``: AdamW,
linear warmup and decay, gradient clipping, evaluation every epoch, best-model selection.
"""
import math
import os
from collections import namedtuple
from dataclasses import asdict, dataclass

import numpy as np

from .autograd import no_grad
from .tensor import Tensor
from .train import TrainConfig, train

TrainOutput = namedtuple("TrainOutput", ["global_step", "training_loss", "metrics"])
PredictionOutput = namedtuple("PredictionOutput", ["predictions", "label_ids", "metrics"])
EvalPrediction = namedtuple("EvalPrediction", ["predictions", "label_ids"])


@dataclass
class TrainingArguments:
    output_dir: str                          # logs, checkpoint and plot go here
    num_train_epochs: float = 3.0            # passes over the training set
    per_device_train_batch_size: int = 8
    per_device_eval_batch_size: int = 8
    learning_rate: float = 5e-5              # peak learning rate (AdamW)
    weight_decay: float = 0.0                # AdamW decoupled weight decay
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    warmup_steps: int = 0                    # linear warmup steps
    lr_scheduler_type: str = "linear"        # "linear", "cosine" or "constant"
    max_grad_norm: float = 1.0               # gradient clipping (0 = off)
    gradient_accumulation_steps: int = 1
    max_steps: int = -1                      # > 0 overrides num_train_epochs
    logging_steps: int = 10
    eval_strategy: str = "epoch"             # "epoch", "steps" or "no"
    eval_steps: int = 0                      # with eval_strategy="steps"
    load_best_model_at_end: bool = True      # restore the weights with the lowest eval loss
    early_stopping_patience: int = 0         # evaluations without improvement (0 = off)
    seed: int = 42
    disable_tqdm: bool = False
    pad_token_id: int = 0                    # used to pad input_ids


def _as_outputs(out):
    """(loss, logits) from whatever the model returned."""
    if isinstance(out, tuple):
        logits, loss = out[0], out[1]
        return loss, logits
    if isinstance(out, dict):
        return out.get("loss"), out.get("logits")
    return getattr(out, "loss", None), getattr(out, "logits", out)


def collate(examples, pad_token_id=0):
    """Pad input_ids to the longest example and stack everything into Tensors."""
    batch = {}
    for key in examples[0]:
        values = [e[key] for e in examples]
        if key in ("input_ids", "attention_mask", "token_type_ids") or (
                key == "labels" and np.ndim(values[0]) > 0):
            longest = max(len(v) for v in values)
            fill = {"input_ids": pad_token_id, "labels": -100}.get(key, 0)
            arr = np.full((len(values), longest), fill, dtype=np.int64)
            for i, v in enumerate(values):
                arr[i, :len(v)] = v
            batch[key] = Tensor(arr)
        else:
            batch[key] = Tensor(np.asarray(values))
    if "input_ids" in batch and "attention_mask" not in batch:
        lengths = [len(e["input_ids"]) for e in examples]
        mask = np.arange(batch["input_ids"].shape[1])[None, :] < np.array(lengths)[:, None]
        batch["attention_mask"] = Tensor(mask.astype(np.int64))
    return batch


class Trainer:
    def __init__(self, model, args, train_dataset=None, eval_dataset=None,
                 compute_metrics=None, data_collator=None, tokenizer=None):
        self.model, self.args = model, args
        self.train_dataset, self.eval_dataset = train_dataset, eval_dataset
        self.compute_metrics = compute_metrics
        self.collate = data_collator or (lambda ex: collate(ex, args.pad_token_id))
        self.tokenizer = tokenizer
        self.state = {"log_history": []}

    def _batches(self, dataset, batch_size):
        for start in range(0, len(dataset), batch_size):
            yield self.collate([dataset[i] for i in range(start, min(start + batch_size,
                                                                      len(dataset)))])

    def _epoch_sampler(self):
        """get_batch(rng): successive batches of a fresh random permutation each epoch."""
        data, bs = self.train_dataset, self.args.per_device_train_batch_size
        state = {"order": [], "pos": 0}

        def get_batch(rng):
            if state["pos"] >= len(state["order"]):
                state["order"], state["pos"] = rng.permutation(len(data)), 0
            idx = state["order"][state["pos"]:state["pos"] + bs]
            state["pos"] += bs
            return self.collate([data[int(i)] for i in idx])
        return get_batch

    def train(self):
        a = self.args
        steps_per_epoch = math.ceil(len(self.train_dataset) / (
            a.per_device_train_batch_size * a.gradient_accumulation_steps))
        max_steps = a.max_steps if a.max_steps > 0 else int(math.ceil(
            a.num_train_epochs * steps_per_epoch))
        eval_interval = {"epoch": steps_per_epoch, "steps": a.eval_steps, "no": 0}[
            a.eval_strategy] if self.eval_dataset is not None else 0
        cfg = TrainConfig(max_steps=max_steps, grad_accum_steps=a.gradient_accumulation_steps,
                          learning_rate=a.learning_rate, weight_decay=a.weight_decay,
                          betas=(a.adam_beta1, a.adam_beta2), warmup_steps=a.warmup_steps,
                          lr_schedule=a.lr_scheduler_type, grad_clip=a.max_grad_norm,
                          log_interval=a.logging_steps, eval_interval=eval_interval,
                          patience=a.early_stopping_patience,
                          keep_best=a.load_best_model_at_end, out_dir=a.output_dir,
                          seed=a.seed, progress=not a.disable_tqdm, plot=True,
                          extra={"training_arguments": asdict(a)})
        result = train(self.model, self._epoch_sampler(), cfg,
                       eval_fn=lambda m: self.evaluate()["eval_loss"],
                       loss_fn=lambda m, batch: _as_outputs(m(**batch))[0],
                       tokenizer=self.tokenizer, log=lambda *x: None)
        losses = result["history"]["loss"]
        self.state["log_history"] = result["history"]
        return TrainOutput(result["steps"], float(np.mean(losses)) if losses else float("nan"),
                           {"train_tokens_per_second": result["tokens_per_s"]})

    @no_grad()
    def predict(self, test_dataset):
        """Logits and labels over a dataset (in order), plus eval_loss and metrics."""
        was_training = self.model.training
        self.model.eval()
        losses, weights, logits, labels = [], [], [], []
        for batch in self._batches(test_dataset, self.args.per_device_eval_batch_size):
            loss, out = _as_outputs(self.model(**batch))
            if loss is not None:
                losses.append(float(loss.item()))
                weights.append(batch["input_ids"].shape[0] if "input_ids" in batch else 1)
            logits.append(out.numpy())
            if "labels" in batch:
                labels.append(batch["labels"].numpy())
        self.model.train(was_training)
        predictions = np.concatenate(logits) if logits[0].ndim <= 2 else logits
        label_ids = np.concatenate(labels) if labels and labels[0].ndim <= 1 else labels
        metrics = {}
        if losses:
            metrics["eval_loss"] = float(np.average(losses, weights=weights))
        if self.compute_metrics is not None and labels:
            extra = self.compute_metrics(EvalPrediction(predictions, label_ids))
            metrics.update({k if k.startswith("eval_") else f"eval_{k}": float(v)
                            for k, v in extra.items()})
        return PredictionOutput(predictions, label_ids, metrics)

    def evaluate(self, eval_dataset=None):
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        if dataset is None:
            raise ValueError("evaluate: no eval_dataset given to the Trainer or to evaluate()")
        metrics = self.predict(dataset).metrics
        self.state["log_history"].append(metrics) if isinstance(
            self.state["log_history"], list) else None
        return metrics

    def save_model(self, output_dir=None):
        from .checkpoint import save_checkpoint
        folder = output_dir or os.path.join(self.args.output_dir, "model")
        config = getattr(self.model, "config_dict", lambda: {})()
        return save_checkpoint(folder, self.model, tokenizer=self.tokenizer, model_config=config)


class TextGenerationPipeline:
    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model, tokenizer

    def __call__(self, prompt, max_new_tokens=50, do_sample=True, temperature=1.0, top_k=None,
                 top_p=None, num_return_sequences=1, seed=0, return_full_text=True):
        from .creation import Generator
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        results = []
        for text in prompts:
            ids = np.asarray([self.tokenizer.encode(text)] * num_return_sequences)
            out = self.model.generate(ids, max_new_tokens, do_sample=do_sample,
                                      temperature=temperature, top_k=top_k, top_p=top_p,
                                      generator=Generator(seed))
            start = 0 if return_full_text else ids.shape[1]
            results.append([{"generated_text": self.tokenizer.decode(row[start:].tolist())}
                            for row in out])
        return results[0] if isinstance(prompt, str) else results


def pipeline(task, model, tokenizer=None):
    """pipeline('text-generation', model=<GPT or checkpoint folder>, tokenizer=...)."""
    if task != "text-generation":
        raise ValueError(f"pipeline: task {task!r} is not supported (only 'text-generation')")
    if isinstance(model, (str, os.PathLike)):
        from .cli import load_model
        model, saved_tokenizer = load_model(model)
        tokenizer = tokenizer or saved_tokenizer
    if tokenizer is None:
        raise ValueError("pipeline: pass tokenizer= along with a model object")
    return TextGenerationPipeline(model, tokenizer)
