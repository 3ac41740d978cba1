"""The training loop: determinism, bit-exact resume, Ctrl-C, early stopping, logs and plot."""
import json
import os

import numpy as np
import pytest

import tinygrad_llm as tg
from tinygrad_llm.cli import batch_sampler
from tinygrad_llm.models import GPT, GPTConfig
from tinygrad_llm.train import TrainConfig, train

TOKENS = np.tile(np.arange(10), 50)  # a perfectly predictable stream


def setup(tmp_path, steps=6, dropout=0.0, **kw):
    model = GPT(GPTConfig(block_size=8, vocab_size=10, n_layer=1, n_head=2, n_embd=8,
                          dropout=dropout), generator=tg.Generator(0))
    cfg = TrainConfig(max_steps=steps, learning_rate=1e-2, warmup_steps=2, eval_interval=2,
                      eval_batches=2, log_interval=1, out_dir=str(tmp_path), progress=False,
                      plot=False, **kw)
    return model, cfg, batch_sampler(TOKENS, 8, 4)


def test_same_seed_same_losses(tmp_path):
    m1, cfg1, gb = setup(tmp_path / "a")
    m2, cfg2, _ = setup(tmp_path / "b")
    r1 = train(m1, gb, cfg1, get_val_batch=gb, log=lambda *a: None)
    r2 = train(m2, gb, cfg2, get_val_batch=gb, log=lambda *a: None)
    assert r1["history"]["loss"] == r2["history"]["loss"]


def interrupt_at(get_batch, n):
    calls = {"n": 0}

    def wrapped(rng):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt
        return get_batch(rng)
    return wrapped


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_resume_after_ctrl_c_continues_bit_exactly(tmp_path, dropout):
    """With dropout the masks must continue too: the model's generators are checkpointed."""
    full_model, cfg, gb = setup(tmp_path / "full", dropout=dropout)
    full = train(full_model, gb, cfg, get_val_batch=gb, log=lambda *a: None)
    model, cfg, gb = setup(tmp_path / "run", dropout=dropout)
    with pytest.raises(KeyboardInterrupt):  # killed while drawing the 4th batch
        train(model, interrupt_at(gb, 4), cfg, get_val_batch=gb, log=lambda *a: None)
    model, cfg, gb = setup(tmp_path / "run", dropout=dropout)  # a fresh process, same config
    resumed = train(model, gb, cfg, get_val_batch=gb, resume=True, log=lambda *a: None)
    assert resumed["history"]["loss"] == full["history"]["loss"]
    assert resumed["history"]["val_loss"] == full["history"]["val_loss"]


def test_generator_states_round_trip_and_mismatch():
    from tinygrad_llm import nn
    from tinygrad_llm.checkpoint import generator_states, set_generator_states
    g = tg.Generator(5)
    model = nn.Sequential(nn.Dropout(0.5, generator=g), nn.Linear(2, 2),
                          nn.Dropout(0.5, generator=g))
    states = generator_states(model)
    assert sorted(states) == ["0", "<default>"]          # the shared generator once
    first = g.rng.random(3)
    set_generator_states(model, states)
    np.testing.assert_array_equal(g.rng.random(3), first)
    with pytest.raises(ValueError, match="random streams"):
        set_generator_states(nn.Sequential(nn.Linear(2, 2)), states)


def test_ctrl_c_saves_a_checkpoint_then_stops(tmp_path):
    model, cfg, gb = setup(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        train(model, interrupt_at(gb, 4), cfg, log=lambda *a: None)
    state = json.load(open(tmp_path / "checkpoint" / "training_state.json"))
    assert state["step"] == 3 and state["extra"]["reason"] == "interrupted"


def test_early_stopping_and_best_weights(tmp_path):
    model, cfg, gb = setup(tmp_path, steps=40, patience=2)
    scores = iter([1.0, 0.8, 0.9, 0.85, 0.1])  # best at the 2nd evaluation (step 4)
    snapshots = []

    def eval_fn(m):
        snapshots.append(m.state_dict())
        return next(scores)

    result = train(model, gb, cfg, eval_fn=eval_fn, log=lambda *a: None)
    assert result["steps"] == 8  # two evaluations without improvement after step 4
    assert result["best_val_loss"] == 0.8
    for name, value in model.state_dict().items():  # the step-4 weights are restored
        np.testing.assert_array_equal(value, snapshots[1][name])


def test_logs_and_plot_are_written(tmp_path):
    model, cfg, gb = setup(tmp_path)
    cfg.plot = True
    train(model, gb, cfg, get_val_batch=gb, log=lambda *a: None)
    lines = [json.loads(x) for x in open(tmp_path / "log.jsonl")]
    assert [r["step"] for r in lines] == [1, 2, 3, 4, 5, 6]
    assert "val_loss" in lines[1]
    assert os.path.getsize(tmp_path / "loss.png") > 1000
