"""``mpiexec -n N tinygrad-llm train``: one data-parallel run (global batch = --batch-size x N)
that trains like one process with the global batch, writes its log and checkpoints from rank 0
only, and resumes on a different number of ranks."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from dist_helpers import Output, ctrl_c_reaches_it

pytest.importorskip("mpi4py")
MPIEXEC = (shutil.which("mpiexec", path=os.path.dirname(sys.executable))
           or shutil.which("mpiexec"))
pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec on PATH")

TINY = ["--tokenizer", "char", "--max-chars", "40000", "--block-size", "32", "--n-layer", "2",
        "--n-head", "2", "--n-embd", "32", "--eval-interval", "0", "--no-progress",
        "--max-new-tokens", "5", "--lr", "3e-3", "--warmup", "5"]



def train(out, ranks, batch, steps, *extra):
    cli = [sys.executable, "-m", "tinygrad_llm.cli", "train", *TINY, "--out", str(out),
           "--batch-size", str(batch), "--steps", str(steps), *extra]
    cmd = [MPIEXEC, "-n", str(ranks), *cli] if ranks > 1 else cli
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    out_ = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert out_.returncode == 0, out_.stdout + out_.stderr
    return out_.stdout


def weights(out):
    from tinygrad_llm import checkpoint as ckpt
    info = ckpt.read_checkpoint(os.path.join(str(out), "checkpoint"))
    return info["state"]["step"], {k: np.asarray(v) for k, v in info["weights"].items()}


def max_gap(a, b):
    assert a.keys() == b.keys()
    return max(float(np.abs(a[k] - b[k]).max()) for k in a)


def test_two_ranks_train_like_one_process_and_resume_on_any_number(tmp_path):
    two = train(tmp_path / "two", 2, 8, 20)
    one = train(tmp_path / "one", 1, 16, 20)
    assert two.count("done: 20 steps") == 1            # rank 0 alone prints
    assert "data-parallel: 2 ranks x batch 8 = global batch 16" in two
    step, w_two = weights(tmp_path / "two")
    _, w_one = weights(tmp_path / "one")
    assert step == 20
    assert max_gap(w_two, w_one) < 1e-4                 # float32: only the summation order
    records = [json.loads(x) for x in open(tmp_path / "two" / "log.jsonl")]
    assert [r["step"] for r in records] == [10, 20]     # one log, written once

    # resume the 2-rank checkpoint on 1 process (global batch 16) and on 2 ranks again
    shutil.copytree(tmp_path / "two", tmp_path / "resumed_one")
    train(tmp_path / "two", 2, 8, 30, "--resume")
    train(tmp_path / "resumed_one", 1, 16, 30, "--resume")
    step_a, w_a = weights(tmp_path / "two")
    step_b, w_b = weights(tmp_path / "resumed_one")
    assert step_a == step_b == 30
    assert max_gap(w_a, w_b) < 1e-4
    assert max_gap(w_a, w_two) > 1e-3                    # it did train on
    records = [json.loads(x) for x in open(tmp_path / "two" / "log.jsonl")]
    assert [r["step"] for r in records] == [10, 20, 30]


def test_ctrl_c_stops_every_rank_after_the_same_step_and_resumes(tmp_path):
    import signal
    import time
    out = tmp_path / "run"
    cmd = [MPIEXEC, "-n", "2", sys.executable, "-m", "tinygrad_llm.cli", "train", *TINY,
           "--out", str(out), "--batch-size", "8", "--steps", "5000"]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1",
               PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env,
                            preexec_fn=ctrl_c_reaches_it, start_new_session=True)
    output = Output(proc)
    try:
        assert output.wait_for("data-parallel:", 120), output.finish(1)
        time.sleep(2.0)                               # some steps into the run
        proc.send_signal(signal.SIGINT)               # Ctrl-C: mpiexec forwards it to all
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            pass
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)                    # mpiexec and every rank it started
            proc.wait()
    stdout, stderr = output.finish()
    assert proc.returncode == 130, stdout + stderr
    assert stdout.count("interrupted by SIGINT after step") == 1, stdout
    step, _ = weights(out)
    assert 0 < step < 5000
    assert f"after step {step}: checkpoint saved" in stdout
    resumed = train(out, 1, 16, step + 5, "--resume")
    assert "resumed from" in resumed and f"at step {step}" in resumed
    assert weights(out)[0] == step + 5
