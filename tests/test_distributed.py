"""Data-parallel training under mpiexec: equivalence with one process, uneven splits, faults.

Each test launches ``mpiexec -n N python tests/dist_workers/<script>.py`` (tiny models, a
timeout on every launch) and reads the line ``RESULT {json}`` that rank 0 prints, or the
messages and exit status of a job that must abort. Skipped only without mpi4py/mpiexec
(``pip install -e ".[dist]"`` provides both).
"""
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from dist_helpers import Output, ctrl_c_reaches_it

pytest.importorskip("mpi4py")
HERE = os.path.dirname(os.path.abspath(__file__))
WORKERS = os.path.join(HERE, "dist_workers")
MPIEXEC = (shutil.which("mpiexec", path=os.path.dirname(sys.executable))
           or shutil.which("mpiexec"))
pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec on PATH")



def run_mpi(n, script, *args, timeout=240):
    # The NumPy reference kernels: data parallelism does not depend on the kernels, and the
    # workers' float64 models would otherwise JIT-compile numba kernels (~25 s) in every rank.
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1",
               PYTHONUNBUFFERED="1", TINYGRAD_LLM_KERNELS="ref")
    env.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.dirname(HERE), ".numba_cache"))
    cmd = [MPIEXEC, "-n", str(n), sys.executable, os.path.join(WORKERS, script), *args]
    start = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    return out, time.monotonic() - start


def result_of(out):
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    assert out.returncode == 0 and len(lines) == 1, out.stdout + out.stderr
    return json.loads(lines[0][len("RESULT "):])


@pytest.fixture(scope="module", params=[2, 3], ids=["2-ranks", "3-ranks-uneven"])
def equivalence(request):
    out, _ = run_mpi(request.param, "ddp_equivalence.py")
    return result_of(out)


def test_ddp_matches_one_process_in_float64(equivalence):
    r = equivalence
    assert r["buckets"] > 1                  # the gradients really travelled in several buckets
    assert r["moved"] > 1e-3                 # 3 AdamW steps changed the weights
    assert r["replica_gap"] == 0.0           # every rank holds the same parameters
    assert r["ddp_vs_single"] <= 1e-12       # ... equal to one process with the global batch
    assert r["auto_syncs"] == 3              # backward itself finished each step's averaging


def test_float32_gradient_within_summation_order_bound(equivalence):
    r = equivalence
    eps32 = float(np.finfo(np.float32).eps)
    assert r["f32_grad_gap"] <= 16 * eps32 * r["f32_grad_scale"], r


def test_unused_parameter_gets_the_average_with_zeros(equivalence):
    assert equivalence["unused_grad_gap"] <= 1e-15


def test_sharded_validation_equals_full_validation(equivalence):
    assert equivalence["val_gap"] <= 1e-12


def test_sampler_shards_are_disjoint_and_cover(equivalence):
    world, n = equivalence["world"], 10
    shards, dropped = equivalence["shards"], equivalence["dropped"]
    per = -(-n // world)
    assert [len(s) for s in shards] == [per] * world
    flat = [i for s in shards for i in s]
    assert set(flat) == set(range(n))
    assert len(flat) - len(set(flat)) == per * world - n        # only the padding repeats
    assert [len(s) for s in dropped] == [n // world] * world
    dropped_flat = [i for s in dropped for i in s]
    assert len(set(dropped_flat)) == len(dropped_flat)


def test_uneven_split_step_equals_one_process(equivalence):
    assert equivalence["uneven_grad_gap"] <= 1e-12


def test_rank_that_raises_aborts_the_whole_job(tmp_path):
    from tinygrad_llm import checkpoint as ckpt
    folder = str(tmp_path / "ck")
    out, seconds = run_mpi(2, "faults.py", "raise", folder, timeout=60)
    assert out.returncode != 0
    err = out.stderr
    assert "[rank 1/2] unhandled ValueError: boom on rank 1 at step 2" in err, err
    # rank 0 was computing (sleeping 60 s): the listener ended it with the reason
    assert "[rank 0/2] aborting the job: rank 1 failed with ValueError: boom" in err, err
    assert seconds < 30
    info = ckpt.read_checkpoint(folder)                   # the last checkpoint is loadable
    assert info["state"]["step"] == 1


def test_watchdog_times_out_a_collective_a_peer_never_joins():
    out, seconds = run_mpi(2, "faults.py", "timeout", timeout=60)
    assert out.returncode != 0
    assert "rank 0: all_reduce(sum) of 32 bytes did not complete within 2 s" in out.stderr
    assert "[rank 1/2] aborting the job: rank 0 failed with CollectiveTimeout" in out.stderr
    assert seconds < 30


def test_killed_rank_ends_the_job():
    out, seconds = run_mpi(2, "faults.py", "kill", timeout=60)
    assert out.returncode != 0
    assert "finished normally" not in out.stdout
    assert seconds < 30


def test_mismatched_shapes_are_named_on_every_rank():
    out, _ = run_mpi(2, "faults.py", "mismatch", timeout=60)
    assert out.returncode != 0
    assert "no error" not in out.stdout
    message = ("parameter 'transformer.h.1.mlp.c_fc.weight' has shape (64, 16) float64 on "
               "rank 0 but shape (16, 80) float64 on rank 1")
    for rank in (0, 1):
        assert f"[rank {rank}/2] unhandled DistributedError: DistributedDataParallel: " \
               + message in out.stderr, out.stderr


def val_losses(stdout):
    return [float(line.split("val loss")[1].split()[0]) for line in stdout.splitlines()
            if line.startswith("step")]


def test_example_two_ranks_train_like_one_process_with_the_global_batch(tmp_path):
    from tinygrad_llm import checkpoint as ckpt
    script = os.path.join(os.path.dirname(HERE), "examples", "train_ddp.py")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    two = subprocess.run([MPIEXEC, "-n", "2", sys.executable, script, "--quick", "--out",
                          str(tmp_path / "two")], capture_output=True, text=True, timeout=300,
                         env=env)
    one = subprocess.run([sys.executable, script, "--quick", "--batch-size", "16", "--out",
                          str(tmp_path / "one")], capture_output=True, text=True, timeout=300,
                         env=env)
    assert two.returncode == 0 and one.returncode == 0, two.stderr + one.stderr
    two_val, one_val = val_losses(two.stdout), val_losses(one.stdout)
    assert len(two_val) == 6                      # rank 0 alone prints the log lines
    assert two_val[-1] < two_val[0] - 0.3         # it learns
    # float32, 60 AdamW steps: the summation order is all that differs
    assert np.abs(np.array(two_val) - np.array(one_val)).max() < 5e-3, (two_val, one_val)
    info = ckpt.read_checkpoint(str(tmp_path / "two" / "checkpoint"))
    assert info["state"]["extra"]["world_size"] == 2


def test_ctrl_c_lets_rank_0_write_its_checkpoint_then_ends_the_job(tmp_path):
    import signal
    from tinygrad_llm import checkpoint as ckpt
    folder = str(tmp_path / "ck")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([MPIEXEC, "-n", "2", sys.executable,
                             os.path.join(WORKERS, "faults.py"), "interrupt", folder],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=ctrl_c_reaches_it, start_new_session=True)
    output = Output(proc)
    try:
        # both ranks pass the barrier together, so one "looping" line means both loop
        assert output.wait_for("looping", 120), output.finish(1)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)          # what Ctrl-C in the terminal does
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)                    # mpiexec and every rank it started
    stdout, stderr = output.finish()
    assert proc.returncode == 130, stdout + stderr
    assert "rank 0 saved the interrupt checkpoint" in stdout
    assert "[rank 1/2] interrupted: waiting up to 30 s for rank 0" in stderr
    assert ckpt.read_checkpoint(folder)["state"]["step"] == 7
