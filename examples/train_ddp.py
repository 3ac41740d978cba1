"""Data-parallel GPT pre-training, the training loop written out (what ``mpiexec -n N
tinygrad-llm train`` does inside): every rank holds a replica, trains on its share of each
global batch, and DistributedDataParallel averages the gradients during backward.

    mpiexec -n 2 python examples/train_ddp.py            # 2 processes on this machine
    mpiexec -n 2 python examples/train_ddp.py --quick    # a small run (tests)
    python examples/train_ddp.py --quick                 # also runs as a world of one

Per step: global batch = batch_size x ranks rows, drawn by every rank from the same seeded
generator; rank r keeps rows [r*B, (r+1)*B). With --accum k, the first k-1 micro-batches run
under ddp.no_sync() (no communication) and the last one averages the summed gradients.
Only rank 0 prints, logs and writes the checkpoint (atomically); the validation loss covers
the whole held-out text, its windows sharded over the ranks and the sums reduced.
"""
import argparse
import contextlib
import os
import time

import numpy as np

from tinygrad_llm import checkpoint as ckpt
from tinygrad_llm import distributed as dist
from tinygrad_llm.cli import parse_with_presets
from tinygrad_llm.creation import Generator
from tinygrad_llm.data import CharTokenizer, default_corpus
from tinygrad_llm.distributed.training import (evaluate_sharded, is_main_process,
                                               mean_over_ranks, shard_rows, validation_windows)
from tinygrad_llm.models import GPT, GPTConfig
from tinygrad_llm.nn.parallel import DistributedDataParallel
from tinygrad_llm.optim import AdamW, clip_grad_norm_, get_cosine_schedule_with_warmup

FULL = dict(max_chars=300_000, block_size=64, n_layer=2, n_head=4, n_embd=96, batch_size=16,
            steps=400, lr=2e-3, accum=1)
QUICK = dict(max_chars=60_000, block_size=32, n_layer=2, n_head=2, n_embd=32, batch_size=8,
             steps=60, lr=3e-3, accum=2)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default="runs/train_ddp")
    p.add_argument("--seed", type=int, default=0)
    args = parse_with_presets(p, argv, FULL, QUICK)
    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    say = print if is_main_process() else (lambda *a, **k: None)

    text = default_corpus(max_chars=args.max_chars)             # the same text on every rank
    tokenizer = CharTokenizer.from_corpus([text])
    ids = np.asarray(tokenizer.encode(text), dtype=np.int64)
    n_val = len(ids) // 10
    train_ids, val_ids = ids[:-n_val], ids[-n_val:]
    val_x, val_y = validation_windows(val_ids, args.block_size)
    config = GPTConfig(block_size=args.block_size, vocab_size=tokenizer.vocab_size,
                       n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd,
                       dropout=0.0)
    model = GPT(config, generator=Generator(args.seed))
    ddp = DistributedDataParallel(model)                       # rank 0's weights everywhere
    opt = AdamW(model.named_parameters(), lr=args.lr, weight_decay=0.1)
    sched = get_cosine_schedule_with_warmup(opt, args.steps // 10, args.steps)
    rng = np.random.default_rng(args.seed)                      # identical on every rank
    global_rows = args.batch_size * world
    say(f"{world} rank(s) x batch {args.batch_size} (global {global_rows}) x {args.accum} "
        f"micro-batches; GPT with {model.num_parameters():,} parameters; "
        f"{ddp.num_buckets} gradient bucket(s)")

    t0 = time.perf_counter()
    for step in range(1, args.steps + 1):
        total = 0.0
        for micro in range(args.accum):
            starts = rng.integers(0, len(train_ids) - args.block_size - 1, global_rows)
            x = np.stack([train_ids[s:s + args.block_size] for s in starts])       # (BR, T)
            y = np.stack([train_ids[s + 1:s + 1 + args.block_size] for s in starts])
            x, y = shard_rows((x, y))                                              # (B, T)
            last = micro == args.accum - 1
            with contextlib.nullcontext() if last else ddp.no_sync():
                _, loss = ddp(x, y)
                (loss / args.accum).backward()
            total += float(loss.item()) / args.accum
        ddp.finish_gradient_sync()           # a no-op when backward already finished it
        clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        sched.step()
        loss_all = mean_over_ranks(total)    # the global batch's loss, for the log
        if step % max(1, args.steps // 6) == 0 or step == args.steps:
            val = evaluate_sharded(model, val_x, val_y, batch_size=32)
            tokens = step * args.accum * global_rows * args.block_size
            say(f"step {step:4d}  train loss {loss_all:.3f}  val loss {val:.3f}  "
                f"{tokens / (time.perf_counter() - t0):,.0f} tokens/s")
    if is_main_process():
        folder = os.path.join(args.out, "checkpoint")
        ckpt.save_checkpoint(folder, model, optimizer=opt, tokenizer=tokenizer,
                             model_config=model.config_dict(), step=args.steps,
                             extra={"world_size": world})
        say(f"checkpoint: {folder}")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
