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
    9. checkpoint every checkpoint_interval steps, at the end, and on Ctrl-C

Determinism: batches come from a NumPy generator seeded by cfg.seed whose state is saved in
every checkpoint with the states of the model's own generators (dropout masks), so a resumed
run sees the same batches and masks and produces the same losses as an uninterrupted one.
"""
import json
import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from . import checkpoint as ckpt
from .autograd import no_grad


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
          optimizer=None, scheduler=None, tokenizer=None, resume=False, log=print):
    """Train ``model`` and return a dict with the history, the best validation loss, etc.

    ``get_batch(rng) -> batch`` draws a training batch with the given NumPy generator (and
    ``get_val_batch`` a validation batch); ``loss_fn(model, batch) -> scalar loss Tensor``.
    ``eval_fn(model) -> validation loss`` replaces the random validation batches (e.g. to
    evaluate on a whole validation set).
    With ``resume=True`` training continues from ``<out_dir>/checkpoint`` if it exists.
    """
    os.makedirs(cfg.out_dir, exist_ok=True)
    optimizer = optimizer or make_optimizer(model, cfg)
    scheduler = scheduler or make_scheduler(optimizer, cfg)
    rng = np.random.default_rng(cfg.seed)
    val_rng = np.random.default_rng(cfg.seed + 1)
    ckpt_dir = os.path.join(cfg.out_dir, "checkpoint")
    log_path = os.path.join(cfg.out_dir, "log.jsonl")
    history = {"step": [], "loss": [], "val_step": [], "val_loss": [], "lr": []}
    step, best_val, best_state, bad_evals = 0, float("inf"), None, 0
    has_checkpoint = os.path.isdir(ckpt_dir) or os.path.isdir(ckpt_dir + ".old")
    if resume and has_checkpoint:
        info = ckpt.load_checkpoint(ckpt_dir, model, optimizer=optimizer, scheduler=scheduler)
        extra = info["state"]["extra"]
        step = info["state"]["step"]
        rng.bit_generator.state = info["state"]["rng_state"]["train"]
        val_rng.bit_generator.state = info["state"]["rng_state"]["val"]
        if "modules" in info["state"]["rng_state"]:        # older checkpoints lack them
            ckpt.set_generator_states(model, info["state"]["rng_state"]["modules"])
        history, best_val, bad_evals = extra["history"], extra["best_val"], extra["bad_evals"]
        log(f"resumed from {ckpt_dir} at step {step}")
    else:
        with open(log_path, "w"):
            pass

    def save(reason):
        ckpt.save_checkpoint(
            ckpt_dir, model, optimizer=optimizer, scheduler=scheduler, tokenizer=tokenizer,
            model_config=getattr(model, "config_dict", lambda: {})(), step=step,
            rng_state={"train": rng.bit_generator.state, "val": val_rng.bit_generator.state,
                       "modules": ckpt.generator_states(model)},
            extra={"history": history, "best_val": best_val, "bad_evals": bad_evals,
                   "reason": reason, "train_config": _jsonable(asdict(cfg))})

    model.train()
    progress = _Progress(cfg.max_steps, step, cfg.progress)
    t0, tokens = time.perf_counter(), 0
    try:
        while step < cfg.max_steps:
            total = 0.0
            for _ in range(cfg.grad_accum_steps):
                batch = get_batch(rng)
                loss = loss_fn(model, batch) / cfg.grad_accum_steps
                loss.backward()
                total += float(loss.item())
                tokens += _batch_tokens(batch)
            if cfg.grad_clip:
                from .optim import clip_grad_norm_
                clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            optimizer.zero_grad()
            scheduler.step()
            step += 1
            lr = scheduler.get_last_lr()[0]
            history["step"].append(step)
            history["loss"].append(total)
            history["lr"].append(lr)
            progress.update(loss=f"{total:.4f}", lr=f"{lr:.2e}")
            record = None
            if step % cfg.log_interval == 0 or step == cfg.max_steps:
                elapsed = time.perf_counter() - t0
                record = {"step": step, "loss": total, "lr": lr,
                          "tokens_per_s": tokens / max(elapsed, 1e-9)}
            if (get_val_batch is not None or eval_fn is not None) and cfg.eval_interval and (
                    step % cfg.eval_interval == 0 or step == cfg.max_steps):
                if eval_fn is not None:
                    val = float(eval_fn(model))
                else:
                    val = evaluate(model, get_val_batch, cfg.eval_batches, val_rng, loss_fn)
                history["val_step"].append(step)
                history["val_loss"].append(val)
                record = dict(record or {"step": step, "loss": total, "lr": lr}, val_loss=val)
                if val < best_val:
                    best_val, bad_evals = val, 0
                    if cfg.keep_best:
                        best_state = model.state_dict()
                else:
                    bad_evals += 1
            if record is not None:
                with open(log_path, "a") as f:
                    f.write(json.dumps(record) + "\n")
            if cfg.checkpoint_interval and step % cfg.checkpoint_interval == 0:
                save("interval")
            if cfg.patience and bad_evals >= cfg.patience:
                log(f"early stopping at step {step}: no improvement in {bad_evals} evaluations")
                break
    except KeyboardInterrupt:
        progress.close()
        save("interrupted")
        log(f"interrupted: checkpoint saved to {ckpt_dir} at step {step}")
        raise
    progress.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    save("final")
    if cfg.plot:
        plot_history(history, os.path.join(cfg.out_dir, "loss.png"))
    return {"history": history, "best_val_loss": best_val, "steps": step,
            "checkpoint": ckpt_dir, "tokens_per_s": tokens / max(time.perf_counter() - t0,
                                                                  1e-9)}


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
