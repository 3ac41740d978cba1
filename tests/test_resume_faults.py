"""Kill, interrupt, resume: training always continues to bit-identical float32 weights.

A training process is SIGKILLed at chosen points inside its checkpoint writes (through the
writer's fault hook, TINYGRAD_LLM_CHECKPOINT_FAULT, see tinygrad_llm/checkpoint.py) and at
random moments; the checkpoint it leaves must load, and resuming from it must end with exactly
the weights, optimizer moments and loss history of an uninterrupted run (dropout on). The CLI
must stop on SIGINT/SIGTERM at a step boundary (exit 130/143, one line), abort on a second
Ctrl-C without touching the last good checkpoint, and report a full disk in one line.
"""
import os
import random
import resource
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import resume_helpers
from tinygrad_llm import checkpoint as ck
from tinygrad_llm import cli

HELPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "resume_helpers.py")
FAULT = ck.FAULT_ENV
TIMEOUT = 300


def assert_same_nested(a, b, path="state"):
    """Equal nested dicts/lists of numbers and arrays (arrays bit for bit, dtypes too)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, path
        np.testing.assert_array_equal(a, b, err_msg=path)
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            assert_same_nested(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_nested(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def assert_same_run(out_dir, reference):
    weights, state = resume_helpers.final_state(out_dir)
    ref_weights, ref_state = reference
    assert all(w.dtype == np.float32 for w in weights.values())
    assert_same_nested(weights, ref_weights, "weights")
    assert_same_nested(state["optimizer"], ref_state["optimizer"], "optimizer")
    assert_same_nested(state["rng_state"], ref_state["rng_state"], "rng_state")
    assert state["extra"]["history"] == ref_state["extra"]["history"]
    assert state["step"] == ref_state["step"] == resume_helpers.STEPS


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run's final checkpoint."""
    out = tmp_path_factory.mktemp("reference")
    resume_helpers.run(out)
    return resume_helpers.final_state(out)


def start_helper(out_dir, fault=None):
    env = {k: v for k, v in os.environ.items() if k != FAULT}
    if fault:
        env[FAULT] = fault
    return subprocess.Popen([sys.executable, HELPER, str(out_dir)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def checkpoint_step(out_dir):
    """The step of the checkpoint a resume would load (None if there is none)."""
    folder = os.path.join(out_dir, "checkpoint")
    if not ck.has_checkpoint(folder):
        return None
    return ck.read_checkpoint(folder)["state"]["step"]


FINAL_SAVE = resume_helpers.STEPS // resume_helpers.CHECKPOINT_INTERVAL + 1


# Every point of the writer is covered in-process by tests/test_checkpoint.py; these are real
# SIGKILLs (buffers lost, no cleanup) at a few of them, each a fresh Python process.
@pytest.mark.parametrize("point, nth", [
    ("mid:model.safetensors", 3),       # half of the weights written
    ("swapped-out", 4),                 # the old checkpoint is only in checkpoint.old
    ("mid:optimizer.safetensors", FINAL_SAVE),   # inside the final save
])
def test_sigkill_inside_a_checkpoint_write_then_resume_is_bit_exact(tmp_path, reference,
                                                                    point, nth):
    proc = start_helper(tmp_path, f"{point}:die@{nth}")
    _, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == -signal.SIGKILL, err[-2000:]
    # the previous checkpoint is what a resume finds
    expected = min((nth - 1) * resume_helpers.CHECKPOINT_INTERVAL, resume_helpers.STEPS)
    assert checkpoint_step(tmp_path) == expected
    resume_helpers.run(tmp_path, resume=True)
    assert_same_run(tmp_path, reference)


def test_sigkill_at_a_random_moment_then_resume_is_bit_exact(tmp_path, reference):
    proc = start_helper(tmp_path)
    log = tmp_path / "log.jsonl"
    deadline = time.monotonic() + TIMEOUT
    while proc.poll() is None and not (log.exists() and log.stat().st_size) \
            and time.monotonic() < deadline:
        time.sleep(0.005)                 # wait for the first step...
    time.sleep(random.Random(0).uniform(0.0, 0.4))   # ...then kill somewhere in training
    proc.kill()
    proc.communicate(timeout=TIMEOUT)
    resume_helpers.run(tmp_path, resume=True)
    assert_same_run(tmp_path, reference)


def test_a_full_disk_is_one_clear_error_and_keeps_the_last_checkpoint(tmp_path):
    data = tmp_path / "corpus.txt"
    data.write_text(resume_helpers.TEXT)
    out = tmp_path / "run"
    args = ["train", "--data", str(data), "--out", str(out), "--tokenizer", "char",
            "--n-layer", "1", "--n-embd", "16", "--n-head", "2", "--block-size", "16",
            "--batch-size", "4", "--eval-interval", "0", "--no-progress",
            "--max-new-tokens", "0", "--checkpoint-interval", "3"]
    assert cli.main(args + ["--steps", "3"]) == 0
    before = (out / "checkpoint" / ck.MODEL_FILE).read_bytes()

    def small_files():     # a "disk" that takes no file over 4 KiB (the weights are ~16 KiB)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    proc = subprocess.run([sys.executable, "-m", "tinygrad_llm.cli", *args, "--steps", "9",
                           "--resume"], capture_output=True, text=True, timeout=TIMEOUT,
                          preexec_fn=small_files)
    assert proc.returncode == 1, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tinygrad-llm: error: could not write the "
                                                   "checkpoint"), proc.stderr
    assert "File too large" in lines[0] and "unchanged" in lines[0]
    assert (out / "checkpoint" / ck.MODEL_FILE).read_bytes() == before
    assert checkpoint_step(out) == 3
    assert not (out / "checkpoint.tmp").exists()      # the half-written copy is cleaned up


# ----- the CLI: SIGINT / SIGTERM at a step boundary, a second Ctrl-C ------------------------

def cli_args(data, out, steps=12):
    return ["train", "--data", str(data), "--out", str(out), "--tokenizer", "char",
            "--n-layer", "1", "--n-embd", "16", "--n-head", "2", "--block-size", "16",
            "--batch-size", "4", "--steps", str(steps), "--eval-interval", "4",
            "--dropout", "0.1", "--checkpoint-interval", "3", "--no-progress",
            "--max-new-tokens", "0", "--warmup", "2", "--lr", "1e-2"]


@pytest.fixture(scope="module")
def cli_reference(tmp_path_factory):
    """Data file, and the final checkpoint of an uninterrupted CLI run on it."""
    root = tmp_path_factory.mktemp("cli")
    data = root / "corpus.txt"
    data.write_text(resume_helpers.TEXT * 3)
    assert cli.main(cli_args(data, root / "full")) == 0
    return data, resume_helpers.final_state(root / "full")


def start_cli(args, fault):
    env = dict(os.environ, **{FAULT: fault})
    return subprocess.Popen([sys.executable, "-m", "tinygrad_llm.cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_pause(proc):
    """Read stderr until the fault hook says the writer is paused."""
    line = proc.stderr.readline()
    while line and "checkpoint fault: pausing" not in line:
        line = proc.stderr.readline()
    assert line, "the process ended before the fault point"


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_cli_signal_stops_at_a_step_boundary_and_resumes_bit_exactly(tmp_path, cli_reference,
                                                                     sig, status):
    data, reference = cli_reference
    out = tmp_path / "run"
    # the signal lands while the 2nd checkpoint (step 6) is being written
    proc = start_cli(cli_args(data, out), "after:model.safetensors:pause=0.5@2")
    wait_for_pause(proc)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == status, stderr[-2000:]
    assert "Traceback" not in stderr
    said = [line for line in stdout.splitlines() if "interrupted" in line]
    assert said == [f"interrupted by {sig.name} after step 6: checkpoint saved to "
                    f"{out / 'checkpoint'}; run again with --resume to continue"]
    state = ck.read_checkpoint(out / "checkpoint")["state"]
    assert state["step"] == 6 and state["extra"]["reason"] == "interrupted"
    assert cli.main(cli_args(data, out) + ["--resume"]) == 0
    weights, state = resume_helpers.final_state(out)
    assert_same_nested(weights, reference[0], "weights")
    assert state["extra"]["history"] == reference[1]["extra"]["history"]


def test_cli_second_ctrl_c_aborts_at_once_and_keeps_the_last_checkpoint(
        tmp_path, cli_reference):
    data, reference = cli_reference
    out = tmp_path / "run"
    # the writer of the 2nd checkpoint (step 6) hangs half-way through the weights
    proc = start_cli(cli_args(data, out), "mid:model.safetensors:pause=60@2")
    wait_for_pause(proc)
    proc.send_signal(signal.SIGINT)       # noted: the run would stop after this save...
    time.sleep(0.2)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)       # ...but the second Ctrl-C stops it now
    _, stderr = proc.communicate(timeout=TIMEOUT)
    assert time.monotonic() - t0 < 30
    assert proc.returncode == 130
    assert stderr.strip().splitlines()[-1].startswith("tinygrad-llm: aborted by a second SIGINT")
    assert "Traceback" not in stderr
    assert checkpoint_step(out) == 3      # the last good checkpoint, untouched
    assert cli.main(cli_args(data, out) + ["--resume"]) == 0
    weights, _ = resume_helpers.final_state(out)
    assert_same_nested(weights, reference[0], "weights")
