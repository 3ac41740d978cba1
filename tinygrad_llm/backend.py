"""NumPy / CuPy dispatch: the only file in tinygrad_llm that imports CuPy.

A tensor's device is a property of its array: a ``numpy.ndarray`` lives on the CPU, a
``cupy.ndarray`` on the GPU. Ops call ``get_array_module(x)`` and then use the NumPy API on the
module they get back, so one op class serves both devices.

    get_array_module(*arrays) -> numpy or cupy
    device_of(array)          -> "cpu" or "cuda"
    to_numpy(array), to_cupy(array), to_device(array, device)
    gpu_available()           -> True when CuPy imports and sees a CUDA device
    scatter_add(target, index, values)   target[index] += values, with duplicate indices summed
"""
import numpy as np

try:  # CuPy is optional (the ``gpu`` extra); everything works without it on the CPU.
    import cupy
    import cupyx
except Exception:  # ImportError, or a CuPy build that finds no CUDA libraries
    cupy = None
    cupyx = None

_gpu_checked = None


def gpu_available():
    """True when CuPy is installed and at least one CUDA device answers."""
    global _gpu_checked
    if _gpu_checked is None:
        if cupy is None:
            _gpu_checked = False
        else:
            try:
                _gpu_checked = cupy.cuda.runtime.getDeviceCount() > 0
            except Exception:
                _gpu_checked = False
    return _gpu_checked


def cupy_nccl():
    """(cupy, cupy.cuda.nccl): the GPU collectives of the distributed ``nccl`` backend;
    RuntimeError when CuPy or its NCCL bindings are missing."""
    if cupy is None:
        raise RuntimeError("the nccl backend needs CuPy with a CUDA GPU (the 'gpu-cuda13' or "
                           "'gpu-cuda12' extra); on the CPU use backend='mpi'")
    try:
        from cupy.cuda import nccl
    except Exception as e:
        raise RuntimeError(f"CuPy is installed but its NCCL bindings are not usable ({e}); "
                           f"install NCCL, or use backend='mpi'") from None
    return cupy, nccl


def cupy_special():
    """cupyx.scipy.special (erf on the GPU); None without CuPy."""
    if cupyx is None:
        return None
    import cupyx.scipy.special
    return cupyx.scipy.special


def is_cupy_array(x):
    return cupy is not None and isinstance(x, cupy.ndarray)


def get_array_module(*arrays):
    """numpy, or cupy if any of ``arrays`` is a CuPy array; for a Tensor (a backward pass
    being recorded, create_graph=True) the NumPy-named Tensor ops of tensor_namespace.py."""
    for a in arrays:
        if a.__class__ is not np.ndarray:
            if cupy is not None and isinstance(a, cupy.ndarray):
                return cupy
            namespace = getattr(a.__class__, "_array_namespace", None)
            if namespace is not None:
                return namespace
    return np


def device_of(x):
    return "cuda" if is_cupy_array(x) else "cpu"


class device:
    """PyTorch's device object: ``device("cuda:0")``, ``device("cpu")``, ``device("cuda", 0)``;
    accepted wherever a device name is. ``.type`` is "cpu" or "cuda", ``.index`` None or N."""

    def __init__(self, type, index=None):
        if isinstance(type, device):
            type, index = type.type, type.index
        name = str(type).lower()
        if ":" in name:
            name, _, idx = name.partition(":")
            index = int(idx)
        if name not in ("cpu", "cuda"):
            raise RuntimeError(f"Expected one of cpu, cuda device type at start of device "
                               f"string: {type}")
        self.type, self.index = name, index

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        index = "" if self.index is None else f", index={self.index}"
        return f"device(type='{self.type}'{index})"

    def __eq__(self, other):
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, device) and (self.type, self.index) == (other.type,
                                                                         other.index)

    def __hash__(self):
        return hash((self.type, self.index))


def check_device(device):
    """Normalize a device name ('cpu', 'cuda', 'cuda:0', 'gpu') and check it can be used."""
    if device is None:
        return "cpu"
    name = str(device).lower()
    if name == "cpu":
        return "cpu"
    if name in ("cuda", "gpu") or name.startswith("cuda:"):
        if not gpu_available():
            raise RuntimeError(
                f"device {device!r} requested but CuPy with a CUDA GPU is not available "
                "(install the 'gpu-cuda13' or 'gpu-cuda12' extra on a machine with an NVIDIA "
                "GPU; see docs/GPU.md)")
        if name.startswith("cuda:"):
            _check_index(device, name[len("cuda:"):])
        return "cuda"
    raise ValueError(f"unknown device {device!r}; expected 'cpu' or 'cuda'")


def _check_index(device, index):
    """'cuda:N' must name CuPy's current device: arrays are always made there, so another
    index would be dropped silently."""
    try:
        wanted = int(index)
    except ValueError:
        raise ValueError(f"unknown device {device!r}; expected 'cuda' or 'cuda:N'") from None
    current = cupy.cuda.runtime.getDevice()
    if wanted != current:
        raise ValueError(
            f"device {device!r} is not CuPy's current device (cuda:{current}); tinygrad_llm "
            f"places arrays on the current device: select it with "
            f"`with cupy.cuda.Device({wanted}):` or CUDA_VISIBLE_DEVICES={wanted}")


def to_numpy(x):
    """A NumPy array with the same values (copies from the GPU if needed)."""
    if is_cupy_array(x):
        return cupy.asnumpy(x)
    return np.asarray(x)


def to_cupy(x):
    """A CuPy array with the same values (copies to the GPU if needed)."""
    if cupy is None:
        raise RuntimeError("CuPy is not installed (pip install 'tinygrad_llm[gpu-cuda13]' or "
                           "'[gpu-cuda12]' for your CUDA major version; see docs/GPU.md)")
    return cupy.asarray(x)


def to_device(x, device):
    return to_cupy(x) if check_device(device) == "cuda" else to_numpy(x)


def scatter_add(target, index, values):
    """``target[index] += values`` in place, summing the contributions of repeated indices.

    Plain ``target[index] += values`` adds a repeated index only once (the buffered fancy
    assignment of NumPy); ``np.add.at`` / ``cupyx.scatter_add`` accumulate every occurrence,
    which is what the gradient of a gather with duplicates needs.

    On CuPy: out-of-range indices wrap around instead of raising (CuPy's documented rule for
    integer-array indexing), so callers check ranges first; and float sums of duplicates come
    from atomics, whose order (so the last bits of float32 sums) varies from run to run.
    """
    if is_cupy_array(target):
        cupyx.scatter_add(target, index, values)
    else:
        np.add.at(target, index, values)
    return target
