"""Step 1 of the GPU check: what this machine has (printed as JSON, optionally written to a file).

    python benchmarks/gpu/env_report.py [--json F]          versions, GPU, CUDA, nvidia-smi
    python benchmarks/gpu/env_report.py --probe             can tinygrad_llm's CUDA kernels run?

Never raises for a missing package: each finding is recorded as a value or an error string.
``--probe`` exits 1 when the numba CUDA kernels cannot run on CuPy arrays here (the reason is
printed), 0 when they can; it imports tinygrad_llm, so it runs after the install step.
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys

PACKAGES = ["numpy", "cupy-cuda13x", "cupy-cuda12x", "numba", "numba-cuda", "llvmlite",
            "cuda-bindings", "cuda-core", "cuda-python", "nvidia-cuda-nvcc", "torch", "mpi4py",
            "nvidia-nccl-cu13", "scipy", "safetensors", "tqdm", "matplotlib", "pytest",
            "hypothesis", "pytest-timeout", "setuptools", "wheel", "tinygrad_llm"]


def _try(fn):
    try:
        return fn()
    except Exception as e:
        return f"error: {type(e).__name__}: {e}"[:400]


def versions():
    from importlib.metadata import PackageNotFoundError, version
    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def nvidia_smi():
    if shutil.which("nvidia-smi") is None:
        return "nvidia-smi not found"
    cmd = ["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm",
           "--format=csv,noheader"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    return (r.stdout or r.stderr).strip()


def cupy_info():
    import cupy
    dev = cupy.cuda.Device()
    props = cupy.cuda.runtime.getDeviceProperties(dev.id)
    name = props["name"]
    return {"runtime": cupy.cuda.runtime.runtimeGetVersion(),
            "driver": cupy.cuda.runtime.driverGetVersion(),
            "device": name.decode() if isinstance(name, bytes) else str(name),
            "compute_capability": dev.compute_capability,
            "max_shared_per_block": dev.attributes.get("MaxSharedMemoryPerBlock"),
            "multiprocessors": dev.attributes.get("MultiProcessorCount"),
            "tf32_env": os.environ.get("CUPY_TF32")}


def numba_cuda_info():
    from numba import cuda
    info = {"is_available": cuda.is_available()}
    if info["is_available"]:
        info["device"] = str(cuda.get_current_device().name)
    return info


def torch_info():
    import torch
    return {"version": torch.__version__, "cuda": torch.version.cuda,
            "cuda_available": torch.cuda.is_available(),
            "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def report():
    return {"python": sys.version.split()[0], "executable": sys.executable,
            "platform": platform.platform(), "nvidia_smi": _try(nvidia_smi),
            "versions": _try(versions), "cupy": _try(cupy_info),
            "numba_cuda": _try(numba_cuda_info), "torch": _try(torch_info),
            "env": {k: os.environ.get(k) for k in ("PYTHONPATH", "NUMBA_CACHE_DIR",
                                                    "TINYGRAD_LLM_KERNELS", "CUPY_TF32",
                                                    "CUDA_HOME", "CUDA_PATH")}}


def probe():
    """(ok, details) of tinygrad_llm's one-kernel probe and of choose_impl on a CuPy array."""
    from tinygrad_llm import backend
    from tinygrad_llm.kernels import _dispatch
    details = {"gpu_available": backend.gpu_available()}
    ok, reason = _dispatch.cuda_kernels_status()
    details.update(cuda_kernels_ok=ok, reason=reason)
    if ok:
        import cupy
        details["choose_impl"] = _try(lambda: _dispatch.choose_impl(cupy.zeros(2)))
    return ok, details


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", default=None, help="also write the report to this file")
    p.add_argument("--probe", action="store_true", help="check the CUDA kernels can run")
    args = p.parse_args(argv)
    if args.probe:
        ok, details = probe()
        print(json.dumps(details, indent=1))
        return 0 if ok else 1
    data = report()
    text = json.dumps(data, indent=1, default=str)
    print(text)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
