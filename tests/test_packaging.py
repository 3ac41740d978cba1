"""Packaging rules: kernels/ is importable only as tinygrad_llm.kernels, and the library never
imports a deep-learning framework."""
import importlib.util
import os
import subprocess
import sys

import tinygrad_llm

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_kernels_is_installed_inside_the_package():
    import tinygrad_llm.kernels as k
    assert k.__name__ == "tinygrad_llm.kernels"


def test_no_top_level_kernels_package_from_this_repo():
    code = ("import importlib.util, sys; s = importlib.util.find_spec('kernels'); "
            "print(s.origin if s else 'none')")
    out = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True)
    origin = out.stdout.strip()
    assert origin == "none" or not os.path.abspath(origin).startswith(REPO), origin


def test_library_imports_no_deep_learning_framework():
    code = ("import sys, tinygrad_llm, tinygrad_llm.functional, tinygrad_llm.testing; "
            "bad = [m for m in ('torch', 'tensorflow', 'jax', 'transformers') if m in sys.modules];"
            " print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_version():
    assert tinygrad_llm.__version__
    assert importlib.util.find_spec("tinygrad_llm.testing.strategies") is not None
