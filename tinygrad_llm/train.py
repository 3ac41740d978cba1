"""The training loop, as an importable function configured by a dataclass.

One step, in order (nanoGPT's skeleton):
    1. batch      x, y = get_batch(rng)                      (grad_accum_steps micro-batches)
    2. forward    loss = loss_fn(model, batch) / grad_accum_steps
    3. backward   loss.backward()                            (gradients add up over micro-batches)
    4. clip       scale all gradients so that their global L2 norm <= grad_clip
    5. step       optimizer.step(); optimizer.zero_grad()
    6. schedule   scheduler.step()                           (learning rate for the next step)
    7. log        one JSON line per log_interval steps (+ tqdm progress bar)
    8. evaluate   mean validation loss every eval_interval steps; keep the best weights;
                  stop early after `patience` evaluations without improvement
    9. checkpoint every checkpoint_interval steps, at the end, and when interrupted
Data-parallel (``mpiexec -n N``, ``model`` a DistributedDataParallel): every rank runs every
step on its share of the batch; backward averages the gradients (the micro-batches before the
last run under no_sync); the ranks agree on the logged loss and on stopping after the same
step; rank 0 alone writes the log, the checkpoints, the plot and the progress bar.
Steps 1-3 change nothing that a checkpoint holds except the random generators; steps 4-6 are
the update; 7-9 only read the model (and the validation generator).

Exact resume: a checkpoint holds everything the next step reads: weights, optimizer moments,
scheduler, the batch and validation generators, every generator of the model (dropout masks),
the step count, the history, the best validation loss and the best weights. Continuing from any
checkpoint (an interval one left by a killed process, or the one written on an interrupt) to
max_steps gives float32 weights bit-identical to an uninterrupted run.

Interrupts: SIGINT (Ctrl-C) and SIGTERM (a cluster's preemption) only set a flag. The step in
flight runs to its end (with its evaluation, log line and interval checkpoint), the loop saves
a checkpoint of the state after it, logs one line and raises :class:`TrainingInterrupted` (a
KeyboardInterrupt; the CLI exits with 128 + signal number: 130 or 143). A second signal aborts
at once with :class:`TrainingAborted`, writing nothing, so the last good checkpoint stays as it
was (checkpoint writes are atomic). A KeyboardInterrupt raised by your own code inside steps
1-3 (get_batch, loss_fn) discards that step whole: generators are put back as they were before
it, and the checkpoint holds the state after the previous step.
"""
import json
import os
import signal
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from . import checkpoint as ckpt
from .train_signals import SignalFlag, TrainingAborted, TrainingInterrupted  # noqa: F401
from .autograd import no_grad
from .distributed import training as data_parallel


@dataclass
class TrainConfig:
    max_steps: int = 1000            # optimizer steps
    grad_accum_steps: int = 1        # micro-batches per optimizer step
    learning_rate: float = 3e-4      # peak learning rate
    weight_decay: float = 0.1        # AdamW decoupled weight decay (matrices only)
    betas: tuple = (0.9, 0.95)       # AdamW moment decay rates
    warmup_steps: int = 100          # linear warmup from 0 to learning_rate
    lr_schedule: str = "cosine"      # after warmup: "cosine", "linear" or "constant"
    grad_clip: float = 1.0           # max global gradient norm (0 = no clipping)
    log_interval: int = 10           # steps between log lines
    eval_interval: int = 100         # steps between evaluations (0 = never)
    eval_batches: int = 10           # validation batches per evaluation
    patience: int = 0                # evaluations without improvement before stopping (0 = off)
    keep_best: bool = True           # restore the weights with the best validation loss
    checkpoint_interval: int = 0     # steps between checkpoints (0 = only at the end)
    out_dir: str = "runs/default"    # logs, plot and checkpoint go here
    seed: int = 0                    # seeds the batch sampler
    progress: bool = True            # show a tqdm progress bar
    plot: bool = True                # write loss.png at the end
    extra: dict = field(default_factory=dict)


def default_loss_fn(model, batch):
    x, y = batch
    return model(x, y)[1]


def make_optimizer(model, cfg):
    """AdamW with weight decay on matrices only (biases and LayerNorm gains are not decayed)."""
    from .optim import AdamW
    decay = [(n, p) for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [(n, p) for n, p in model.named_parameters() if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return AdamW(groups, lr=cfg.learning_rate, betas=tuple(cfg.betas))


def make_scheduler(optimizer, cfg):
    from . import optim
    if cfg.lr_schedule == "cosine":
        return optim.get_cosine_schedule_with_warmup(optimizer, cfg.warmup_steps,
                                                     cfg.max_steps)
    if cfg.lr_schedule == "linear":
        return optim.get_linear_schedule_with_warmup(optimizer, cfg.warmup_steps,
                                                     cfg.max_steps)
    if cfg.lr_schedule == "constant":
        warmup = max(1, cfg.warmup_steps)
        return optim.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))
    raise ValueError(f"lr_schedule must be 'cosine', 'linear' or 'constant', got "
                     f"{cfg.lr_schedule!r}")


@no_grad()
def evaluate(model, get_batch, n_batches, rng, loss_fn=default_loss_fn):
    """Mean loss over n_batches batches, in eval mode (dropout off)."""
    was_training = model.training
    model.eval()
    losses = [float(loss_fn(model, get_batch(rng)).item()) for _ in range(n_batches)]
    model.train(was_training)
    return float(np.mean(losses))


class _Progress:
    def __init__(self, total, initial, enabled):
        self.bar = None
        if enabled:
            from tqdm import tqdm
            self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True)

    def update(self, **info):
        if self.bar is not None:
            self.bar.set_postfix(info, refresh=False)
            self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def train(model, get_batch, cfg, *, get_val_batch=None, eval_fn=None, loss_fn=default_loss_fn,
          optimizer=None, scheduler=None, tokenizer=None, resume=False, log=print,
          handle_signals=True):
    """Train ``model`` and return a dict with the history, the best validation loss, etc.

    ``get_batch(rng) -> batch`` draws a training batch with the given NumPy generator (and
    ``get_val_batch`` a validation batch); ``loss_fn(model, batch) -> scalar loss Tensor``.
    ``eval_fn(model) -> validation loss`` replaces the random validation batches (e.g. to
    evaluate on a whole validation set).
    With ``resume=True`` training continues from ``<out_dir>/checkpoint`` if it exists.
    ``handle_signals``: stop at a step boundary on SIGINT/SIGTERM (see the module docstring);
    raises :class:`TrainingInterrupted` after saving, :class:`TrainingAborted` on a second one.
    """
    os.makedirs(cfg.out_dir, exist_ok=True)
    # data-parallel: forward and backward go through the DistributedDataParallel wrapper
    # (gradients averaged); everything else (state, evaluation, update) uses the model inside
    step_model, model = model, data_parallel.unwrap(model)
    main = data_parallel.is_main_process()           # rank 0 writes; every rank computes
    log = log if main else _quiet
    optimizer = optimizer or make_optimizer(model, cfg)
    scheduler = scheduler or make_scheduler(optimizer, cfg)
    rng = np.random.default_rng(cfg.seed)               # training batches
    val_rng = np.random.default_rng(cfg.seed + 1)       # validation batches
    ckpt_dir = os.path.join(cfg.out_dir, "checkpoint")
    log_path = os.path.join(cfg.out_dir, "log.jsonl")
    run = {"step": 0, "history": {"step": [], "loss": [], "val_step": [], "val_loss": [],
                                  "lr": []},
           "best_val": float("inf"), "best_state": None, "bad_evals": 0}

    def generator_states():
        """Every random stream, as the next step will find it."""
        return {"train": rng.bit_generator.state, "val": val_rng.bit_generator.state,
                "modules": ckpt.generator_states(model)}

    def set_generator_states(states):
        rng.bit_generator.state = states["train"]
        val_rng.bit_generator.state = states["val"]
        if "modules" in states:                          # older checkpoints lack them
            ckpt.set_generator_states(model, states["modules"])

    def save(reason):
        if not main:
            return
        best = run["best_state"] if cfg.keep_best else None
        ckpt.save_checkpoint(
            ckpt_dir, model, optimizer=optimizer, scheduler=scheduler, tokenizer=tokenizer,
            model_config=getattr(model, "config_dict", lambda: {})(), step=run["step"],
            rng_state=generator_states(),
            extra={"history": run["history"], "best_val": run["best_val"],
                   "bad_evals": run["bad_evals"], "best_state": best, "reason": reason,
                   "train_config": _jsonable(asdict(cfg))})

    if resume and ckpt.has_checkpoint(ckpt_dir):
        info = ckpt.load_checkpoint(ckpt_dir, model, optimizer=optimizer, scheduler=scheduler)
        state, extra = info["state"], info["state"]["extra"]
        set_generator_states(state["rng_state"])
        run.update(step=state["step"], history=extra["history"], best_val=extra["best_val"],
                   bad_evals=extra["bad_evals"], best_state=extra.get("best_state"))
        if main:          # a killed run may have logged past its checkpoint
            _truncate_log(log_path, run["step"])
        log(f"resumed from {info['folder']} at step {run['step']}")
    else:
        if resume:
            log(f"no checkpoint in {ckpt_dir}: starting from step 0")
        if main:
            with open(log_path, "w"):
                pass

    history = run["history"]

    def after_update(step, total, lr, tokens):
        """Steps 7-9: log, evaluate, checkpoint (in data-parallel runs every rank evaluates,
        rank 0 alone writes); returns True when early stopping ends the run."""
        progress.update(loss=f"{total:.4f}", lr=f"{lr:.2e}")
        record = None
        if step % cfg.log_interval == 0 or step == cfg.max_steps:
            elapsed = time.perf_counter() - t0
            record = {"step": step, "loss": total, "lr": lr,
                      "tokens_per_s": tokens / max(elapsed, 1e-9)}
        if (get_val_batch is not None or eval_fn is not None) and cfg.eval_interval and (
                step % cfg.eval_interval == 0 or step == cfg.max_steps):
            val = (float(eval_fn(model)) if eval_fn is not None else
                   evaluate(model, get_val_batch, cfg.eval_batches, val_rng, loss_fn))
            history["val_step"].append(step)
            history["val_loss"].append(val)
            record = dict(record or {"step": step, "loss": total, "lr": lr}, val_loss=val)
            if val < run["best_val"]:
                run["best_val"], run["bad_evals"] = val, 0
                if cfg.keep_best:
                    run["best_state"] = {k: v.data.copy() for k, v in model.state_dict().items()}
            else:
                run["bad_evals"] += 1
        if record is not None and main:
            with open(log_path, "a") as f:
                f.write(json.dumps(record) + "\n")
        if cfg.checkpoint_interval and step % cfg.checkpoint_interval == 0:
            save("interval")
        if cfg.patience and run["bad_evals"] >= cfg.patience:
            log(f"early stopping at step {step}: no improvement in {run['bad_evals']} "
                f"evaluations")
            return True
        return False

    step_model.train()
    progress = _Progress(cfg.max_steps, run["step"], cfg.progress and main)
    t0, tokens, stopped_early = time.perf_counter(), 0, False
    with SignalFlag(handle_signals, data_parallel.world_size() > 1) as signals:
        try:
            while run["step"] < cfg.max_steps and signals.signum is None and not stopped_early:
                # 1-3: batches, forward, backward; of the checkpointed state only the
                # generators move, so an exception here can undo the step
                before = generator_states()
                try:
                    total, n_tokens = _forward_backward(step_model, get_batch, rng, loss_fn,
                                                        cfg.grad_accum_steps)
                except TrainingAborted:
                    raise
                except KeyboardInterrupt:              # raised by the caller's own code
                    optimizer.zero_grad()
                    set_generator_states(before)       # discard the step whole
                    signals.signum = signal.SIGINT
                    break
                tokens += n_tokens * data_parallel.world_size()
                # data-parallel: the gradients are averaged by now; all ranks agree on the
                # loss to log and on stopping after this step if any rank was signalled
                total, agreed = data_parallel.end_of_backward(step_model, total,
                                                              signals.signum)
                signals.adopt(agreed)
                # 4-6: the update and the step count; a signal meanwhile only sets the flag
                lr = _apply_update(model, optimizer, scheduler, cfg.grad_clip)
                run["step"] += 1
                history["step"].append(run["step"])
                history["loss"].append(total)
                history["lr"].append(lr)
                stopped_early = after_update(run["step"], total, lr, tokens)
        finally:
            progress.close()
        if signals.signum is not None and run["step"] < cfg.max_steps and not stopped_early:
            save("interrupted")
            err = TrainingInterrupted(signals.signum, run["step"], ckpt_dir)
            log(f"{err}; run again with --resume to continue")
            raise err
        if run["best_state"] is not None:
            model.load_state_dict(run["best_state"])
        save("final")
        if cfg.plot and main:
            plot_history(history, os.path.join(cfg.out_dir, "loss.png"))
        if signals.signum is not None:      # arrived during the last step: the run is complete
            err = TrainingInterrupted(signals.signum, run["step"], ckpt_dir)
            log(f"{err} (training had finished)")
            raise err
    return {"history": history, "best_val_loss": run["best_val"], "steps": run["step"],
            "checkpoint": ckpt_dir, "tokens_per_s": tokens / max(time.perf_counter() - t0,
                                                                  1e-9)}


def _forward_backward(model, get_batch, rng, loss_fn, accum_steps):
    """Steps 1-3: draw ``accum_steps`` micro-batches, add up their gradients; returns (the
    step's loss, the number of input tokens). The only place where training batches are drawn."""
    total, tokens = 0.0, 0
    for i in range(accum_steps):
        batch = get_batch(rng)
        with data_parallel.micro_batch_context(model, last=i == accum_steps - 1):
            loss = loss_fn(model, batch) / accum_steps
            loss.backward()
        total += float(loss.item())
        tokens += _batch_tokens(batch)
    return total, tokens


def _apply_update(model, optimizer, scheduler, grad_clip):
    """Steps 4-6: clip, optimizer step, zero the gradients, schedule; returns the new lr."""
    if grad_clip:
        from .optim import clip_grad_norm_
        clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    optimizer.zero_grad()
    scheduler.step()
    return scheduler.get_last_lr()[0]


def _quiet(*args, **kwargs):
    """The log function of ranks other than 0."""


def _truncate_log(path, step):
    """Keep the log records of steps <= ``step`` (and drop a line torn by a kill)."""
    if not os.path.exists(path):
        return
    kept = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and record.get("step", 0) <= step:
                kept.append(line if line.endswith("\n") else line + "\n")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(kept)
    os.replace(tmp, path)


def _batch_tokens(batch):
    """Number of input positions in a batch: (x, y) tuples or dicts with input_ids."""
    first = batch.get("input_ids", next(iter(batch.values()))) if isinstance(batch, dict) \
        else batch[0]
    return int(np.prod(np.shape(getattr(first, "data", first))))


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=str))


def plot_history(history, path):
    """Training and validation loss (and the learning rate) against the step, as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax, ax_lr) = plt.subplots(2, 1, figsize=(7, 6), sharex=True,
                                    gridspec_kw={"height_ratios": [3, 1]})
    ax.plot(history["step"], history["loss"], label="train loss", alpha=0.7)
    if history["val_step"]:
        ax.plot(history["val_step"], history["val_loss"], "o-", label="validation loss")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    ax_lr.plot(history["step"], history["lr"], color="gray")
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
