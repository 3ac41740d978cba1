"""The training loop: determinism, bit-exact resume, Ctrl-C, early stopping, logs and plot."""
import json
import os
import signal

import numpy as np
import pytest

import tinygrad_llm as tg
from tinygrad_llm.cli import batch_sampler
from tinygrad_llm.models import GPT, GPTConfig
from tinygrad_llm.train import (TrainConfig, TrainingAborted, TrainingInterrupted,
                                make_optimizer, train)

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
        snapshots.append({k: v.clone() for k, v in m.state_dict().items()})
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


# ----- signals: stop at a step boundary, save exactly that state ----------------------------

def signal_after_batch(get_batch, n, signals=(signal.SIGINT,)):
    """get_batch that sends ``signals`` to this process right after drawing batch ``n``, in
    the middle of a step (Python runs the handler at once, between two bytecodes)."""
    calls = {"n": 0}

    def wrapped(rng):
        batch = get_batch(rng)
        calls["n"] += 1
        if calls["n"] == n:
            for sig in signals:
                os.kill(os.getpid(), sig)
        return batch
    return wrapped


def weights(model):
    return {k: v.data.copy() for k, v in model.state_dict().items()}


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == np.float32
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_mid_step_finishes_the_step_then_resume_is_bit_exact(tmp_path, sig):
    full_model, cfg, gb = setup(tmp_path / "full", steps=8, dropout=0.3, grad_accum_steps=2)
    full = train(full_model, gb, cfg, get_val_batch=gb, log=lambda *a: None)
    model, cfg, gb = setup(tmp_path / "run", steps=8, dropout=0.3, grad_accum_steps=2)
    before = signal.getsignal(sig)
    lines = []
    with pytest.raises(TrainingInterrupted) as err:   # in the 2nd micro-batch of step 3
        train(model, signal_after_batch(gb, 5, [sig]), cfg, get_val_batch=gb, log=lines.append)
    assert signal.getsignal(sig) is before             # the handlers are put back
    assert err.value.step == 3 and err.value.exit_code == 128 + sig
    assert lines == [f"interrupted by {sig.name} after step 3: checkpoint saved to "
                     f"{tmp_path / 'run' / 'checkpoint'}; run again with --resume to continue"]
    state = json.load(open(tmp_path / "run" / "checkpoint" / "training_state.json"))
    assert state["step"] == 3 and state["extra"]["reason"] == "interrupted"
    model, cfg, gb = setup(tmp_path / "run", steps=8, dropout=0.3, grad_accum_steps=2)
    resumed = train(model, gb, cfg, get_val_batch=gb, resume=True, log=lambda *a: None)
    assert resumed["history"] == full["history"]
    assert_same_weights(weights(model), weights(full_model))
    logged = [json.loads(x)["step"] for x in open(tmp_path / "run" / "log.jsonl")]
    assert logged == list(range(1, 9))


def test_a_signal_inside_the_optimizer_step_is_not_applied_twice(tmp_path):
    full_model, cfg, gb = setup(tmp_path / "full", dropout=0.3)
    train(full_model, gb, cfg, get_val_batch=gb, log=lambda *a: None)
    model, cfg, gb = setup(tmp_path / "run", dropout=0.3)
    optimizer = make_optimizer(model, cfg)
    real_step, calls = optimizer.step, {"n": 0}

    def step_then_signal():      # the signal lands between optimizer.step() and the counter
        real_step()
        calls["n"] += 1
        if calls["n"] == 2:
            os.kill(os.getpid(), signal.SIGTERM)
    optimizer.step = step_then_signal
    with pytest.raises(TrainingInterrupted) as err:
        train(model, gb, cfg, get_val_batch=gb, optimizer=optimizer, log=lambda *a: None)
    assert err.value.step == 2
    model, cfg, gb = setup(tmp_path / "run", dropout=0.3)
    train(model, gb, cfg, get_val_batch=gb, resume=True, log=lambda *a: None)
    assert_same_weights(weights(model), weights(full_model))


def test_a_second_signal_aborts_at_once_and_keeps_the_last_checkpoint(tmp_path):
    model, cfg, gb = setup(tmp_path, steps=8, dropout=0.3, checkpoint_interval=2)
    lines = []
    with pytest.raises(TrainingAborted) as err:
        train(model, signal_after_batch(gb, 3, [signal.SIGINT, signal.SIGINT]), cfg,
              get_val_batch=gb, log=lines.append)
    assert err.value.exit_code == 130 and lines == []
    state = json.load(open(tmp_path / "checkpoint" / "training_state.json"))
    assert state["step"] == 2 and state["extra"]["reason"] == "interval"
    full_model, cfg, gb = setup(tmp_path / "full", steps=8, dropout=0.3)
    train(full_model, gb, cfg, get_val_batch=gb, log=lambda *a: None)
    model, cfg, gb = setup(tmp_path, steps=8, dropout=0.3, checkpoint_interval=2)
    train(model, gb, cfg, get_val_batch=gb, resume=True, log=lambda *a: None)
    assert_same_weights(weights(model), weights(full_model))


def test_a_signal_in_the_last_step_saves_the_finished_run(tmp_path):
    model, cfg, gb = setup(tmp_path)
    with pytest.raises(TrainingInterrupted) as err:
        train(model, signal_after_batch(gb, 6), cfg, log=lambda *a: None)
    assert err.value.step == 6
    state = json.load(open(tmp_path / "checkpoint" / "training_state.json"))
    assert state["step"] == 6 and state["extra"]["reason"] == "final"


def test_the_best_weights_survive_an_interruption(tmp_path):
    """keep_best: the best weights seen before the interruption are in the checkpoint, so the
    resumed run ends with the same (best, early) weights as an uninterrupted one."""
    def scripted(scores):
        it = iter(scores)
        return lambda m: next(it)

    full_model, cfg, gb = setup(tmp_path / "full")
    train(full_model, gb, cfg, eval_fn=scripted([0.5, 0.9, 0.9]), log=lambda *a: None)
    model, cfg, gb = setup(tmp_path / "run")
    eval_fn = scripted([0.5, 0.9, 0.9])                # one sequence across both calls
    with pytest.raises(TrainingInterrupted):
        train(model, signal_after_batch(gb, 3), cfg, eval_fn=eval_fn, log=lambda *a: None)
    model, cfg, gb = setup(tmp_path / "run")
    result = train(model, gb, cfg, eval_fn=eval_fn, resume=True, log=lambda *a: None)
    assert result["best_val_loss"] == 0.5
    assert_same_weights(weights(model), weights(full_model))


def test_resume_without_a_checkpoint_starts_from_scratch(tmp_path):
    model, cfg, gb = setup(tmp_path)
    lines = []
    result = train(model, gb, cfg, resume=True, log=lines.append)
    assert result["steps"] == 6 and lines == [f"no checkpoint in {tmp_path / 'checkpoint'}: "
                                              "starting from step 0"]
