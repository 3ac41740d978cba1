#!/usr/bin/env bash
# The whole test suite, as CI runs it (see README): the main pytest session, then the CUDA
# kernels under numba's simulator in a separate process (NUMBA_ENABLE_CUDASIM must be set
# before numba is imported), then, only where CuPy sees a CUDA GPU, every CuPy case and every
# full-size CUDA kernel test (marked gpu) in a session of their own without the simulator.
# pytest exits 5 when it collects no test, which fails this script.
set -euo pipefail
cd "$(dirname "$0")/.."
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-$PWD/.numba_cache}"
# Tests use small shapes: a second BLAS thread only adds hand-off cost there, and on a busy
# machine it can make GEMMs several times slower. (The benchmarks set their own threads.)
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
pytest -m "not cudasim and not gpu" --durations=15 "$@"
if ls tests/test_*cudasim*.py >/dev/null 2>&1; then
    NUMBA_ENABLE_CUDASIM=1 pytest -m cudasim tests/ -p no:cacheprovider --durations=5
fi
if python -c "from tinygrad_llm import backend; raise SystemExit(not backend.gpu_available())" \
        2>/dev/null; then
    pytest -m gpu tests/ -p no:cacheprovider --durations=30
else
    echo "run_all.sh: no CuPy CUDA GPU here; the gpu-marked tests were not run"
fi
