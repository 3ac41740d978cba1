"""The one-call GPU check (benchmarks/gpu/run.py) exercised on the CPU, so that the device call
does not fail on a typo; and the GPU path's CPU-checkable pieces (the numba-cuda probe, the
attention kernels' shared-memory size).

The dry run runs every step that needs no GPU: the wheel-folder check, the pytest selection
(``-m gpu``) resolved with --collect-only, the CLI arguments parsed by the CLI's parser, and the
benchmark harness validating our kernels and GPT step against torch on the CPU at tiny sizes.
"""
import contextlib
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GPU_DIR = os.path.join(ROOT, "benchmarks", "gpu")
WHEEL = "numpy-2.4.6-cp312-cp312-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"gpu_{name}", os.path.join(GPU_DIR,
                                                                             name + ".py"))
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, GPU_DIR)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(GPU_DIR)
    return module


@pytest.fixture(scope="module")
def run_py():
    return _load("run")


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    """One whole dry run (about 30-60 s on 2 busy cores), shared by the tests below."""
    pytest.importorskip("torch")
    base = tmp_path_factory.mktemp("gpu_dry")
    wheels = base / "whl"
    wheels.mkdir()
    (wheels / WHEEL).write_bytes(b"")        # only the name is checked in a dry run
    out = base / "out"
    proc = subprocess.run(
        [sys.executable, os.path.join(GPU_DIR, "run.py"), "--cpu-dry-run", "--out", str(out),
         "--wheels", str(wheels)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    return proc, {r["step"]: r for r in records}, out


def test_dry_run_passes_every_step_it_can(dry_run):
    proc, steps, _ = dry_run
    failed = {k: v.get("note") or v.get("tail") for k, v in steps.items()
              if v["status"] in ("fail", "timeout")}
    assert not failed, failed
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for name in ("env", "install/wheel-folder", "tests/selection", "train/args",
                 "generate/args", "bench"):
        assert steps[name]["status"] == "ok", (name, steps[name])
    # the GPU-only commands are shown, not run
    for name in ("install/numpy", "install/project", "tests/run", "train", "generate"):
        assert steps[name]["status"] == "dry", (name, steps[name])
    assert "--no-deps" in steps["install/project"]["cmd"]
    assert any(WHEEL in part for part in steps["install/numpy"]["cmd"])
    assert steps["nccl"]["status"] in ("skip", "dry")


def test_dry_run_selects_the_gpu_tests(dry_run):
    _, steps, _ = dry_run
    sel = steps["tests/selection"]
    assert "tests/test_kernels_cudasim.py" in sel["files"]
    assert "tests/test_ops_values.py" in sel["files"]
    assert "tests/test_gpu_script.py" in sel["files"]        # the model-level checks below
    # every kernel test x dtype at full size on the GPU: softmax 4, attention 4, LN 2, CE 4,
    # erf 1, choose_impl 1
    assert sel["n_kernel_tests"] >= 16
    assert sel["n_selected"] > sel["n_kernel_tests"]


def test_dry_run_writes_results_and_validated_table(dry_run):
    _, _, out = dry_run
    names = sorted(os.listdir(out))
    assert len(names) <= 8, names                       # the device returns at most 8 files
    for name in ("results.jsonl", "log.txt", "summary.md", "env.json", "bench_gpu.json"):
        assert name in names
    bench = json.loads((out / "bench_gpu.json").read_text())
    keys = [row["key"] for row in bench["rows"]]
    assert keys == ["softmax", "attention", "gpt_small", "gpt2_124m"]
    for row in bench["rows"]:
        assert "error" not in row, row
        assert float(row["max_rel_err"]) < 1e-4 and row["ours_ms"] > 0 and row["torch_ms"] > 0
    assert "| softmax fwd |" in (out / "summary.md").read_text()


def test_wheel_folder_check(run_py, tmp_path):
    path, msg = run_py.find_numpy_wheel(str(tmp_path / "missing"), "cp312")
    assert path is None and "fetch_wheels.sh" in msg
    (tmp_path / "numpy-2.4.1-cp311-cp311-manylinux_2_17_x86_64.whl").write_bytes(b"")
    path, msg = run_py.find_numpy_wheel(str(tmp_path), "cp312")
    assert path is None and "cp311" in msg                # names what it found instead
    (tmp_path / "numpy-2.5.0-cp312-cp312-manylinux_2_17_x86_64.whl").write_bytes(b"")
    assert run_py.find_numpy_wheel(str(tmp_path), "cp312")[0] is None
    (tmp_path / WHEEL).write_bytes(b"")
    path, msg = run_py.find_numpy_wheel(str(tmp_path), "cp312")
    assert path == str(tmp_path / WHEEL)
    (tmp_path / "numpy-2.4.0-cp312-cp312-manylinux_2_17_x86_64.whl").write_bytes(b"")
    path, msg = run_py.find_numpy_wheel(str(tmp_path), "cp312")
    assert path is None and "keep one" in msg


def test_arguments(run_py, capsys):
    args = run_py.parse_args(["--cpu-dry-run", "--steps", "env,bench"])
    assert args.steps == ["env", "bench"] and args.python_tag == "cp312"
    with pytest.raises(SystemExit):
        run_py.parse_args(["--steps", "env,benhc"])
    assert "benhc" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_py.parse_args(["--budget", "0"])


def test_step_timeouts_keep_the_budget(run_py, tmp_path):
    args = run_py.parse_args(["--cpu-dry-run", "--out", str(tmp_path), "--budget", "200"])
    r = run_py.Runner(args)
    try:
        assert r.timeout_for("env") == run_py.CAPS["env"]
        # the 4 steps after the tests keep 15 s each: the tests get what is left, not their cap
        r.t0 -= 40
        assert 95 < r.timeout_for("tests") <= 200 - 40 - 4 * run_py.RESERVE
        r.t0 -= 1000
        assert r.timeout_for("bench") == 5.0               # never below a few seconds
        rc, text = r.run("echo", [sys.executable, "-c", "print('hi')"], 10)
        assert rc == 0 and "hi" in text
        rc, _ = r.run("sleep", [sys.executable, "-c", "import time; time.sleep(30)"], 1)
        assert rc is None and r.records[-1]["status"] == "timeout"
    finally:
        r.close()


def test_benchmark_validation_rejects_a_wrong_result():
    bench = _load("bench_gpu")
    a = np.ones(10)
    assert bench.validate("x", [("y", a, a)], 1e-6) == 0.0
    with pytest.raises(AssertionError, match="y differs from torch"):
        bench.validate("x", [("y", a * 1.001, a)], 1e-6)
    with pytest.raises(AssertionError):
        bench.validate("x", [("y", a * np.nan, a)], 1e-6)


# --- the GPU path's pieces that can be checked without a GPU ---------------------------------

def test_attention_cuda_tiles_fit_static_shared_memory():
    from tinygrad_llm.kernels import attention_cuda as A
    for char in "fd":
        assert A.shared_bytes(char) <= A.SHARED_LIMIT, char
    assert A.shared_bytes("f") > 32 * 1024 - 1               # float32 keeps its 32-row tiles
    with pytest.raises(ValueError, match="B \\* H = 70000"):
        A._grid(100, 70000)


def test_cuda_probe_is_cached_and_says_why():
    from tinygrad_llm.kernels import _dispatch as D
    first = D.cuda_kernels_status()
    assert D.cuda_kernels_status() is first                   # probed once per process
    ok, reason = first
    assert isinstance(ok, bool) and (ok or reason)
    err = D.cuda_unusable_error("no NVVM")
    assert "no NVVM" in str(err) and "TINYGRAD_LLM_KERNELS=ref" in str(err)


# --- on a GPU only (marked gpu: ``pytest -m gpu``, the GPU check's tests step) ---------------
# Each runs one small model on the CPU and on CUDA from the same weights and compares.

def _gpu_available():
    from tinygrad_llm import backend
    return backend.gpu_available()


needs_gpu = pytest.mark.skipif(not _gpu_available(), reason="needs CuPy with a CUDA GPU")


def _host(a):
    from tinygrad_llm import backend
    return backend.to_numpy(getattr(a, "data", a) if not isinstance(a, np.ndarray) else a)


def _close(got, want, rtol, name=""):
    got, want = np.asarray(_host(got), np.float64), np.asarray(_host(want), np.float64)
    err = np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30)
    assert err <= rtol, f"{name}: normwise relative error {err:.2e} > {rtol:.0e}"


@contextlib.contextmanager
def _cpu_reference():
    """The CPU side of a CPU-vs-CUDA check runs the NumPy reference kernels: they are the
    specification, and they spare the GPU machine numba's CPU compile time."""
    old = os.environ.get("TINYGRAD_LLM_KERNELS")
    os.environ["TINYGRAD_LLM_KERNELS"] = "ref"
    try:
        yield
    finally:
        if old is None:
            del os.environ["TINYGRAD_LLM_KERNELS"]
        else:
            os.environ["TINYGRAD_LLM_KERNELS"] = old


def _gpt_pair(dtype=np.float32):
    import tinygrad_llm as tg
    from tinygrad_llm.models import GPT, GPTConfig
    cfg = GPTConfig(block_size=32, vocab_size=128, n_layer=2, n_head=4, n_embd=64)
    cpu = GPT(cfg, generator=tg.Generator(0)).to(np.dtype(dtype))
    gpu = GPT(cfg, generator=tg.Generator(1)).to(np.dtype(dtype)).to("cuda")
    gpu.load_state_dict(cpu.state_dict())
    return cpu, gpu


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("kernels", ["auto", "ref"])
def test_gpt_step_on_cuda_matches_cpu(kernels, monkeypatch):
    import tinygrad_llm as tg
    from tinygrad_llm.optim import AdamW, clip_grad_norm_
    if kernels == "ref":
        monkeypatch.setenv("TINYGRAD_LLM_KERNELS", "ref")
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 128, (4, 32)), rng.integers(0, 128, (4, 32))

    def one_step(model, device):
        opt = AdamW(model.named_parameters(), lr=1e-3)
        xs, ys = tg.Tensor(x, device=device), tg.Tensor(y, device=device)
        _, loss = model(xs, ys)
        loss.backward()
        grads = {n: _host(p.grad.data) for n, p in model.named_parameters()}
        norm = clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
        return _host(loss.data), grads, _host(norm.data), model(xs, ys)[1]

    cpu, gpu = _gpt_pair()
    with _cpu_reference():
        l0, g0, n0, a0 = one_step(cpu, "cpu")
    l1, g1, n1, a1 = one_step(gpu, "cuda")
    _close(l1, l0, 1e-5, "loss")
    for n in g0:
        _close(g1[n], g0[n], 1e-3, n)
    _close(n1, n0, 1e-4, "grad norm")
    _close(a1.data, a0.data, 1e-4, "loss after a clipped AdamW step")


@pytest.mark.gpu
@needs_gpu
def test_greedy_generation_on_cuda_matches_cpu():
    cpu, gpu = _gpt_pair(np.float64)          # float64: greedy ties cannot flip
    prompt = np.random.default_rng(1).integers(0, 128, (2, 5))
    with _cpu_reference():
        want = cpu.generate(prompt, 12, do_sample=False)
    for use_cache in (True, False):
        got = gpu.generate(prompt, 12, do_sample=False, use_cache=use_cache)
        np.testing.assert_array_equal(_host(got), _host(want))


@pytest.mark.gpu
@needs_gpu
def test_state_moves_between_devices(tmp_path):
    import tinygrad_llm as tg
    from tinygrad_llm import nn
    from tinygrad_llm.models.gpt2_hf import save_gpt2_folder
    cpu, gpu = _gpt_pair()
    idx = np.arange(10).reshape(1, 10)
    folder = save_gpt2_folder(gpu, str(tmp_path / "gpt2"))        # from GPU arrays
    back = GPT.from_pretrained(folder)
    _close(back(idx)[0].data, cpu(idx)[0].data, 1e-6, "logits after save/load")
    t = tg.zeros(3, device="cuda")
    t.copy_(tg.tensor([1.0, 2.0, 3.0]))                          # CPU -> GPU, as torch
    t[0] = np.float32(5.0)
    t[1:] = np.array([7.0, 8.0], dtype=np.float32)
    np.testing.assert_array_equal(_host(t.data), [5.0, 7.0, 8.0])
    with pytest.raises(TypeError, match="cuda.*cpu"):
        t.add_(tg.tensor([1.0, 1.0, 1.0]))
    emb = nn.Embedding(4, 2, device="cuda", _weight=np.ones((4, 2), np.float32))
    assert emb.weight.device == "cuda" and float(emb.weight.data.sum()) == 8.0
    with pytest.raises(ValueError, match="current device"):
        tg.zeros(2, device="cuda:7")


@pytest.mark.gpu
@needs_gpu
def test_other_models_on_cuda_match_cpu():
    import tinygrad_llm as tg
    from tinygrad_llm import nn
    from tinygrad_llm.models import (BertForSequenceClassification,
                                     GPTForSequenceClassification, LSTMLanguageModel)
    rng = np.random.default_rng(2)
    ids = rng.integers(1, 50, (3, 9))
    mask = np.ones((3, 9), dtype=np.int64)
    mask[1, 6:] = 0                                             # right padding in row 1
    labels = np.array([0, 1, 1])
    makers = {
        "bert": lambda: BertForSequenceClassification(
            vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
            intermediate_size=64, max_position_embeddings=16, hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0),
        "gpt_cls": lambda: GPTForSequenceClassification(
            num_labels=2, block_size=16, vocab_size=50, n_layer=1, n_head=2, n_embd=32),
    }
    for name, make in makers.items():
        cpu, gpu = make(), make().to("cuda")
        gpu.load_state_dict(cpu.state_dict())
        with _cpu_reference():
            want = cpu(ids, attention_mask=mask, labels=labels)
        got = gpu(ids, attention_mask=mask, labels=labels)
        _close(got["logits"].data, want["logits"].data, 1e-4, name)
        _close(got["loss"].data, want["loss"].data, 1e-4, name)
    cpu = LSTMLanguageModel(vocab_size=50, n_embd=8, hidden_size=16, generator=tg.Generator(0))
    gpu = LSTMLanguageModel(vocab_size=50, n_embd=8, hidden_size=16).to("cuda")
    gpu.load_state_dict(cpu.state_dict())
    with _cpu_reference():
        want = cpu.log_probs(ids, ids).data
    _close(gpu.log_probs(ids, ids).data, want, 1e-4, "lstm")
    weight = np.linspace(0.5, 2.0, 50).astype(np.float32)
    logits = rng.standard_normal((6, 50)).astype(np.float32)
    target = rng.integers(0, 50, 6)
    with _cpu_reference():
        want = nn.CrossEntropyLoss(weight=weight)(tg.tensor(logits), target)
    import cupy
    got = nn.CrossEntropyLoss(weight=cupy.asarray(weight))(
        tg.tensor(logits, device="cuda"), cupy.asarray(target))
    _close(got.data, want.data, 1e-5, "CrossEntropyLoss with class weights")
