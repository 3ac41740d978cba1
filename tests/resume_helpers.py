"""A tiny, fixed training run for the resume and fault-injection tests.

Imported by the tests, and run as a script in a subprocess that the tests kill:

    python tests/resume_helpers.py OUT_DIR [--resume]

Everything is fixed (text, model, config): two runs with the same OUT_DIR history must end
with the same weights. Dropout is on and each step accumulates two micro-batches, so that the
model's generators and the batch generator both matter; a checkpoint is written every
CHECKPOINT_INTERVAL steps (save number n of a fresh run is at step n * CHECKPOINT_INTERVAL,
the final one is number STEPS // CHECKPOINT_INTERVAL + 1).
"""
import os
import sys

import numpy as np

STEPS = 16
CHECKPOINT_INTERVAL = 2
TEXT = "the cat sat on the mat. a dog ran to the log; birds flew over trees!\n" * 12


def build(out_dir):
    """(model, get_batch, cfg, tokenizer) of the fixed run, writing into ``out_dir``."""
    import tinygrad_llm as tg
    from tinygrad_llm.cli import batch_sampler
    from tinygrad_llm.data import CharTokenizer
    from tinygrad_llm.models import GPT, GPTConfig
    from tinygrad_llm.train import TrainConfig
    tg.manual_seed(0)        # the default generator is checkpointed too: start it the same way
    tokenizer = CharTokenizer.from_corpus(TEXT)
    ids = np.asarray(tokenizer.encode(TEXT), dtype=np.int64)
    model = GPT(GPTConfig(block_size=16, vocab_size=tokenizer.vocab_size, n_layer=1, n_head=2,
                          n_embd=16, dropout=0.1), generator=tg.Generator(0))
    cfg = TrainConfig(max_steps=STEPS, grad_accum_steps=2, learning_rate=1e-2, warmup_steps=2,
                      eval_interval=4, eval_batches=2, log_interval=1,
                      checkpoint_interval=CHECKPOINT_INTERVAL, out_dir=str(out_dir),
                      progress=False, plot=False)
    return model, batch_sampler(ids, 16, 4), cfg, tokenizer


def run(out_dir, resume=False, **kw):
    """Train the fixed run (continuing from ``out_dir``'s checkpoint with ``resume``)."""
    from tinygrad_llm.train import train
    model, get_batch, cfg, tokenizer = build(out_dir)
    result = train(model, get_batch, cfg, get_val_batch=get_batch, tokenizer=tokenizer,
                   resume=resume, log=lambda *a: None, **kw)
    return model, result


def final_state(out_dir):
    """(weights, training state) of the checkpoint in ``out_dir``, read from disk."""
    from tinygrad_llm import checkpoint as ck
    info = ck.read_checkpoint(os.path.join(out_dir, "checkpoint"))
    return info["weights"], info["state"]


if __name__ == "__main__":
    run(sys.argv[1], resume="--resume" in sys.argv[2:])
