"""Creation functions with PyTorch's names: tensor, zeros, ones, full, arange, rand, randn,
randint, randperm, multinomial, from_numpy, ...

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


def randint(*args, size=None, generator=None, dtype=None, device=None, requires_grad=False,
            low=None, high=None):
    """Integers uniform on [low, high): ``randint(high, size)`` or ``randint(low, high, size)``
    (size a tuple), as torch; int64 unless ``dtype`` says otherwise."""
    args = list(args)
    if size is None and args and isinstance(args[-1], (tuple, list)):
        size = args.pop()
    if high is None and args:
        high = args.pop()
    if low is None:
        low = args.pop() if args else 0
    if args or size is None or high is None:
        raise TypeError("randint() expects (high, size) or (low, high, size) with size a "
                        "tuple, e.g. randint(0, 10, (3,))")
    if high <= low:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} "
                           f">= to={high}")
    values = _rng(generator).integers(low, high, size=_shape((size,)))
    return Tensor(values, dtype=dtype or np.int64, device=device,
                  requires_grad=requires_grad)


def randperm(n, generator=None, dtype=None, device=None, requires_grad=False):
    """A random permutation of 0 .. n-1 (int64 unless ``dtype`` says otherwise)."""
    if n < 0:
        raise RuntimeError(f"randperm: n must be non-negative, got {n}")
    return Tensor(_rng(generator).permutation(int(n)), dtype=dtype or np.int64, device=device,
                  requires_grad=requires_grad)


def multinomial(input, num_samples, replacement=False, generator=None):
    """Draw category indices from the non-negative weights in each row of ``input`` (1-D or
    2-D, need not sum to 1), as torch.multinomial; int64, shape (rows, num_samples) or
    (num_samples,).

    With replacement: inverse-CDF sampling, u ~ U(0, 1) looked up in the cumulative weights.
    Without: every category gets a key E_i / w_i with E_i ~ Exp(1); the num_samples smallest
    keys are an ordered draw without replacement (the exponential race, equivalent to drawing
    one at a time proportionally to the remaining weights). Zero weights are never drawn.
    """
    weights = backend.to_numpy(input.data if isinstance(input, Tensor) else np.asarray(input))
    if weights.ndim not in (1, 2):
        raise RuntimeError(f"multinomial: prob_dist must be 1 or 2 dim, got shape "
                           f"{weights.shape}")
    rows = weights.reshape(-1, weights.shape[-1]).astype(np.float64)       # (R, K)
    n_categories = rows.shape[1]
    if num_samples <= 0:
        raise RuntimeError(f"multinomial: cannot sample n_sample <= 0 samples, got "
                           f"{num_samples}")
    if not np.all(np.isfinite(rows)) or np.any(rows < 0):
        raise RuntimeError("multinomial: probability tensor contains either `inf`, `nan` or "
                           "element < 0")
    totals = rows.sum(axis=1, keepdims=True)
    if np.any(totals <= 0):
        raise RuntimeError("multinomial: invalid multinomial distribution (sum of "
                           "probabilities <= 0)")
    rng = _rng(generator)
    if replacement:
        cdf = np.cumsum(rows / totals, axis=1)                             # (R, K)
        u = rng.random((rows.shape[0], num_samples))                       # (R, S)
        picks = np.stack([np.searchsorted(c, v, side="right") for c, v in zip(cdf, u)])
        last_nonzero = n_categories - 1 - np.argmax(rows[:, ::-1] > 0, axis=1)
        picks = np.minimum(picks, last_nonzero[:, None])   # u beyond a rounded-down cdf[-1]
    else:
        if num_samples > n_categories:
            raise RuntimeError(f"multinomial: cannot sample n_sample > prob_dist.size(-1) "
                               f"samples without replacement ({num_samples} > {n_categories})")
        if np.any((rows > 0).sum(axis=1) < num_samples):
            raise RuntimeError(f"multinomial: invalid multinomial distribution (with "
                               f"replacement=False, not enough non-negative category to "
                               f"sample {num_samples} of them)")
        with np.errstate(divide="ignore"):
            keys = rng.exponential(size=rows.shape) / rows                 # inf where w = 0
        picks = np.argsort(keys, axis=1, kind="stable")[:, :num_samples]
    picks = picks.astype(np.int64)
    if weights.ndim == 1:
        picks = picks[0]
    device = input.device if isinstance(input, Tensor) else None
    return Tensor(picks, dtype=np.int64, device=device)


def from_numpy(array):
    """A tensor sharing memory with the NumPy array (changes to one show in the other)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray, got {type(array).__name__}")
    if array.dtype == object or array.dtype.kind not in "biuf":
        raise TypeError(f"from_numpy: can't convert np.ndarray of type {array.dtype}; the "
                        f"supported types are float, int, uint8 and bool")
    return Tensor._wrap(array)


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
