"""``tinygrad_llm.cuda``: torch.cuda's questions, answered honestly.

    device = "cuda" if tl.cuda.is_available() else "cpu"

The GPU path is CuPy (the ``gpu`` extra). ``is_available()`` is True only when CuPy imports
and sees a CUDA device; on every other machine the answers are those of a CPU-only PyTorch:
no devices, and the functions that need a device raise a RuntimeError saying so.

Random numbers: there is no separate CUDA random stream. Random tensors are drawn on the CPU
from the default generator (or the ``generator=`` given) and then moved, so the same seed gives
the same numbers on both devices. ``manual_seed`` / ``manual_seed_all`` therefore change
nothing (as torch's are silently ignored without a GPU); seed with ``tinygrad_llm.manual_seed``.
"""
import numbers

from . import backend


def is_available():
    """True when CuPy is installed and at least one CUDA device answers."""
    return backend.gpu_available()


def device_count():
    """The number of CUDA devices CuPy sees (0 without CuPy or a GPU)."""
    if not backend.gpu_available():
        return 0
    return int(backend.cupy.cuda.runtime.getDeviceCount())


def _require_gpu(what):
    if not backend.gpu_available():
        raise RuntimeError(f"tinygrad_llm.cuda.{what}: no CUDA GPU is available (CuPy is not "
                           f"installed or sees no device); run on the CPU, or install the "
                           f"'gpu' extra on a machine with an NVIDIA GPU")


def is_initialized():
    return backend.gpu_available()


def init():
    _require_gpu("init")


def current_device():
    """The index of the current CUDA device (RuntimeError without a GPU)."""
    _require_gpu("current_device")
    return int(backend.cupy.cuda.runtime.getDevice())


def set_device(device):
    """Make ``device`` (an index, 'cuda:1' or a device object) the current CUDA device."""
    _require_gpu("set_device")
    backend.cupy.cuda.runtime.setDevice(_index(device))


def get_device_name(device=None):
    _require_gpu("get_device_name")
    index = current_device() if device is None else _index(device)
    name = backend.cupy.cuda.runtime.getDeviceProperties(index)["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def _index(device):
    """0 from 'cuda', 1 from 'cuda:1', 2 from 2, and a device object's index."""
    if isinstance(device, numbers.Integral):
        return int(device)
    if not isinstance(device, str):                    # a device object: its .index
        index = getattr(device, "index", None)
        return 0 if index is None else int(index)
    text = device.lower()
    if text == "cuda":
        return 0
    if text.startswith("cuda:") and text[5:].isdigit():
        return int(text[5:])
    raise ValueError(f"expected a CUDA device index or 'cuda:N', got {device!r}")


def synchronize(device=None):
    """Wait for every queued GPU kernel (a no-op without a GPU, where nothing is queued)."""
    if backend.gpu_available():
        backend.cupy.cuda.runtime.deviceSynchronize()


def empty_cache():
    """Give CuPy's cached, unused GPU memory back (nothing to do without a GPU)."""
    if backend.gpu_available():
        backend.cupy.get_default_memory_pool().free_all_blocks()


def memory_allocated(device=None):
    """Bytes of GPU memory held by tensors now (0 without a GPU)."""
    if not backend.gpu_available():
        return 0
    return int(backend.cupy.get_default_memory_pool().used_bytes())


def memory_reserved(device=None):
    """Bytes of GPU memory held by CuPy's pool, in use or cached (0 without a GPU)."""
    if not backend.gpu_available():
        return 0
    return int(backend.cupy.get_default_memory_pool().total_bytes())


def is_bf16_supported():
    """False: NumPy and CuPy have no bfloat16 dtype, so this framework has none."""
    return False


def _check_seed(seed):
    if not isinstance(seed, numbers.Integral):
        raise TypeError(f"manual_seed expected an int seed, got {type(seed).__name__}")
    return int(seed)


def manual_seed(seed):
    """Accepted for torch compatibility; changes nothing (see the module docstring: random
    tensors on the GPU come from the CPU generator, seeded by tinygrad_llm.manual_seed)."""
    _check_seed(seed)


def manual_seed_all(seed):
    """As manual_seed: there is no per-GPU random stream to seed."""
    _check_seed(seed)


__all__ = ["current_device", "device_count", "empty_cache", "get_device_name", "init",
           "is_available", "is_bf16_supported", "is_initialized", "manual_seed",
           "manual_seed_all", "memory_allocated", "memory_reserved", "set_device",
           "synchronize"]
