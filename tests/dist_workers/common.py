"""Shared pieces of the MPI worker scripts that tests/test_distributed*.py launch with
``mpiexec -n N python tests/dist_workers/<script>.py``."""
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))))

import numpy as np  # noqa: E402


def tiny_gpt(seed, dtype=np.float64, n_layer=2):
    import tinygrad_llm as tg
    from tinygrad_llm.models import GPT, GPTConfig
    cfg = GPTConfig(block_size=8, vocab_size=17, n_layer=n_layer, n_head=2, n_embd=16,
                    dropout=0.0)
    return GPT(cfg, generator=tg.Generator(seed)).to(dtype)


def global_batch(rng, rows, T=8, V=17):
    x = rng.integers(0, V, size=(rows, T))
    y = rng.integers(0, V, size=(rows, T))
    return x, y


def flat_params(model):
    return np.concatenate([p.data.ravel() for p in model.parameters()])


def report(**values):
    """One line that the pytest side parses."""
    import json
    print("RESULT " + json.dumps(values), flush=True)
