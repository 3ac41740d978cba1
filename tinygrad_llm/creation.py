"""Creation functions with PyTorch's names: tensor, zeros, ones, full, arange, rand, randn, ...

Random numbers come from a ``Generator`` (a seeded ``numpy.random.Generator`` underneath):
pass ``generator=`` for an explicit stream, or seed the default one with ``manual_seed``.
Random tensors are drawn on the CPU and then moved, so the same seed gives the same numbers on
every device.
"""
import numpy as np

from . import backend
from .dtypes import get_default_dtype
from .tensor import Tensor



class Generator:
    """A seeded random stream, like torch.Generator: ``Generator().manual_seed(0)``."""

    def __init__(self, seed=None):
        self.manual_seed(0 if seed is None else seed)

    def manual_seed(self, seed):
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        return self

    def get_state(self):
        """The bit generator's state as a JSON-serialisable dict (for checkpoints)."""
        return self.rng.bit_generator.state

    def set_state(self, state):
        self.rng.bit_generator.state = state


default_generator = Generator(0)


def manual_seed(seed):
    """Seed the default generator (used when no ``generator=`` is passed)."""
    return default_generator.manual_seed(seed)


def _rng(generator):
    if generator is None:
        return default_generator.rng
    if isinstance(generator, Generator):
        return generator.rng
    if isinstance(generator, np.random.Generator):
        return generator
    raise TypeError(f"generator must be a tinygrad_llm.Generator or numpy.random.Generator, "
                    f"got {type(generator).__name__}")


def _shape(size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        return tuple(size[0])
    return tuple(size)


def _make(array, dtype, device, requires_grad):
    if dtype is None and array.dtype.kind == "f":
        dtype = get_default_dtype()
    return Tensor(array, requires_grad=requires_grad, dtype=dtype, device=device)


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new leaf tensor from data (copied). Python floats give float32, ints int64."""
    t = Tensor(data, dtype=dtype, device=device)
    if isinstance(data, Tensor) or hasattr(data, "__array__") or backend.is_cupy_array(data):
        t.data = t.data.copy()
    return t.requires_grad_(requires_grad) if requires_grad else t


def zeros(*size, dtype=None, device=None, requires_grad=False):
    return _make(np.zeros(_shape(size), dtype=dtype or get_default_dtype()), dtype, device,
                 requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False):
    return _make(np.ones(_shape(size), dtype=dtype or get_default_dtype()), dtype, device,
                 requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False):
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    if dtype is None:
        dtype = (get_default_dtype() if isinstance(fill_value, float)
                 else np.asarray(fill_value).dtype)
    return _make(np.full(_shape((size,)), fill_value, dtype=dtype), dtype, device,
                 requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    if end is None:
        start, end = 0, start
    array = np.arange(start, end, step)
    if dtype is None:
        dtype = np.int64 if array.dtype.kind in "iu" else get_default_dtype()
    return _make(array, dtype, device, requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    return _make(np.linspace(start, end, steps), dtype, device, requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    return _make(np.eye(n, m), dtype, device, requires_grad)


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False):
    """Uniform on [0, 1)."""
    return _make(_rng(generator).random(_shape(size)), dtype, device, requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False):
    """Standard normal N(0, 1)."""
    return _make(_rng(generator).standard_normal(_shape(size)), dtype, device, requires_grad)


def randint(low, high, size, generator=None, dtype=np.int64, device=None):
    return Tensor(_rng(generator).integers(low, high, size=_shape((size,))), dtype=dtype,
                  device=device)


def _like(t, dtype, device):
    return (dtype or t.dtype), (device or t.device)


def zeros_like(t, dtype=None, device=None, requires_grad=False):
    dtype, device = _like(t, dtype, device)
    return zeros(*t.shape, dtype=dtype, device=device, requires_grad=requires_grad)


def ones_like(t, dtype=None, device=None, requires_grad=False):
    dtype, device = _like(t, dtype, device)
    return ones(*t.shape, dtype=dtype, device=device, requires_grad=requires_grad)


def full_like(t, fill_value, dtype=None, device=None, requires_grad=False):
    dtype, device = _like(t, dtype, device)
    return full(t.shape, fill_value, dtype=dtype, device=device, requires_grad=requires_grad)


def rand_like(t, generator=None, dtype=None, device=None, requires_grad=False):
    dtype, device = _like(t, dtype, device)
    return rand(*t.shape, generator=generator, dtype=dtype, device=device,
                requires_grad=requires_grad)


def randn_like(t, generator=None, dtype=None, device=None, requires_grad=False):
    dtype, device = _like(t, dtype, device)
    return randn(*t.shape, generator=generator, dtype=dtype, device=device,
                 requires_grad=requires_grad)
