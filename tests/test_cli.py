"""The tinygrad-llm command end to end: train on a text file, generate, evaluate."""
import subprocess
import sys

import pytest

TEXT = ("the cat sat on the mat. the dog sat on the log. " * 40 + "\n") * 3


def run(*args):
    out = subprocess.run([sys.executable, "-m", "tinygrad_llm.cli", *args], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_train_generate_evaluate(tmp_path):
    data = tmp_path / "corpus.txt"
    data.write_text(TEXT)
    out = run("train", "--data", str(data), "--out", str(tmp_path / "run"), "--tokenizer",
              "char", "--steps", "150", "--n-layer", "1", "--n-embd", "32", "--block-size",
              "32", "--eval-interval", "50", "--no-progress", "--max-new-tokens", "40",
              "--lr", "1e-2")
    assert "best validation loss" in out and "--- sample" in out
    assert (tmp_path / "run" / "loss.png").exists()
    ckpt = str(tmp_path / "run" / "checkpoint")
    gen = run("generate", "--checkpoint", ckpt, "--prompt", "the ", "--max-new-tokens", "30",
              "--temperature", "0")
    assert gen.startswith("the ") and len(gen.strip()) >= 30
    assert " sat on the " in gen  # greedy decoding has learned the pattern
    ev = run("evaluate", "--checkpoint", ckpt, "--data", str(data), "--batches", "3")
    loss = float(ev.split()[2])
    assert loss < 1.0


def test_device_cuda_without_a_gpu_is_a_clear_error(tmp_path):
    from tinygrad_llm import backend
    if backend.gpu_available():
        pytest.skip("a CUDA GPU is available: --device cuda is the real path there")
    out = subprocess.run([sys.executable, "-m", "tinygrad_llm.cli", "train", "--steps", "1",
                          "--out", str(tmp_path / "run"), "--device", "cuda"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    assert "CuPy with a CUDA GPU is not available" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "run").exists()      # nothing was written
