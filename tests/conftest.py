"""Shared test fixtures: the backend fixture and the hypothesis profiles.

Profiles (select with HYPOTHESIS_PROFILE=...): ``ci`` (default; small and derandomized so the
suite is fast and repeatable on 2 cores), ``dev`` (fewer examples) and ``nightly`` (many,
random). Every profile sets ``deadline=None``: the first example of a test may include numba's
JIT compilation, which would otherwise be reported as a flaky timing.
"""
import os
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Test modules are imported with --import-mode=importlib (no sys.path change); helper modules
# shared by several test files (formula_helpers.py) are importable from this folder.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

settings.register_profile(
    "ci", max_examples=25, deadline=None, derandomize=True, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", max_examples=10, deadline=None)
settings.register_profile(
    "nightly", max_examples=500, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def _cupy_usable():
    from tinygrad_llm import backend
    return backend.gpu_available()


BACKENDS = [
    "numpy",
    pytest.param("cupy", marks=[pytest.mark.gpu, pytest.mark.skipif(
        not _cupy_usable(), reason="CuPy with a CUDA GPU is not available")]),
]


@pytest.fixture(params=BACKENDS)
def xp(request):
    """The array module under test: numpy, and cupy where a GPU exists."""
    if request.param == "numpy":
        return np
    import cupy
    return cupy


@pytest.fixture(params=BACKENDS)
def device(request):
    """The device name under test: 'cpu', and 'cuda' where a GPU exists."""
    return "cpu" if request.param == "numpy" else "cuda"


@pytest.fixture
def fresh_pool():
    """The kernels' buffer pool switched on and empty, and emptied again afterwards."""
    from tinygrad_llm.kernels import _buffer_pool as pool
    was = pool.set_enabled(True)
    pool.clear()
    yield pool
    pool.clear()
    pool.set_enabled(was)
