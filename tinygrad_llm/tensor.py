"""Tensor: an n-dimensional array (NumPy on the CPU, CuPy on the GPU) that records its history.

A Tensor holds
    data           the array (numpy.ndarray or cupy.ndarray); its type is the device
    requires_grad  whether gradients should flow to it
    grad           after backward(): a Tensor with d(loss)/d(self), shaped like self
    _ctx           the Function that produced it (None for a leaf)
    _version       a one-element list counting in-place changes; views share it

The operators (``a + b``, ``a @ b``, ``a < b``, ...) are written out in tensor_operators.py and
the plain method forms (``x.exp()``, ``x.sum(dim)``, ``x.reshape(...)``) in tensor_methods.py;
each calls one named op from ``tinygrad_llm.ops``, where the formulas and derivatives live, one
Function per op. Names and semantics follow PyTorch.
"""
import numpy as np

from . import autograd
from . import backend
from . import dtypes
from .tensor_methods import OpMethods
from .tensor_operators import Operators

_FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def _is_float(dtype):
    return np.dtype(dtype).kind == "f"


def _to_array(data, dtype, device):
    """An ndarray from a Tensor, array, scalar or nested list; floats default to float32."""
    if isinstance(data, Tensor):
        data = data.data
    xp = np
    if device is not None:
        xp = backend.cupy if backend.check_device(device) == "cuda" else np
    elif backend.is_cupy_array(data):
        xp = backend.cupy
    if xp is np and backend.is_cupy_array(data):
        data = backend.to_numpy(data)                   # Tensor(cuda_array, device="cpu")
    if dtype is not None:
        return xp.asarray(data, dtype=dtype)
    if isinstance(data, (np.ndarray, np.generic)) or backend.is_cupy_array(data):
        return xp.asarray(data)
    arr = np.asarray(data)  # Python scalars and lists: pick PyTorch's default dtypes
    if arr.dtype == np.float64:
        arr = arr.astype(dtypes.get_default_dtype())
    elif arr.dtype.kind in "iu":
        arr = arr.astype(np.int64)
    return xp.asarray(arr)


class _HookHandle:
    """What register_post_accumulate_grad_hook returns: ``remove()`` unregisters the hook."""

    def __init__(self, hooks, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self):
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


class Tensor(Operators, OpMethods):
    __slots__ = ("data", "_grad", "requires_grad", "_ctx", "_version", "_grad_hooks",
                 "__weakref__")

    def __init__(self, data, requires_grad=False, dtype=None, device=None):
        self.data = _to_array(data, dtype, device)
        self._grad = None
        self._ctx = None
        self._version = [0]
        self._grad_hooks = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, array, ctx=None):
        """Fast internal constructor for op results (no dtype/device handling)."""
        t = cls.__new__(cls)
        if type(array) is not np.ndarray and not backend.is_cupy_array(array):
            array = np.asarray(array)  # NumPy ufuncs return scalars for 0-d inputs
        t.data = array
        t._grad = None
        t._ctx = ctx
        t._version = [0]
        t._grad_hooks = None
        t.requires_grad = ctx is not None
        return t

    # ----- properties ------------------------------------------------------------------------
    @property
    def shape(self):
        return self.data.shape

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self):
        return backend.device_of(self.data)

    @property
    def is_leaf(self):
        return self._ctx is None

    @property
    def grad_fn(self):
        return self._ctx

    @property
    def T(self):
        return self.permute(*reversed(range(self.ndim)))

    @property
    def mT(self):
        return self.transpose(-2, -1)

    def size(self, dim=None):
        return self.data.shape if dim is None else self.data.shape[dim]

    def numel(self):
        return int(self.data.size)

    def dim(self):
        return self.data.ndim

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __repr__(self):
        """PyTorch's format: tensor([1.0000, 2.5000], requires_grad=True); the dtype is shown
        unless it is the default float dtype, int64 or bool."""
        extra = ""
        if self.dtype not in (dtypes.get_default_dtype(), np.int64, np.bool_):
            extra += f", dtype={self.dtype}"
        if self.device != "cpu":
            extra += ", device='cuda:0'"
        if self._ctx is not None:
            extra += f", grad_fn={self._ctx!r}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({_format_values(backend.to_numpy(self.data))}{extra})"

    def __format__(self, spec):
        """f"{loss:.4f}" formats the number of a one-element tensor, as in PyTorch."""
        if spec and self.data.size == 1:
            return format(self.item(), spec)
        return format(repr(self), spec)

    def __array__(self, dtype=None, copy=None):
        """np.asarray(t) gives the numbers (a copy for a GPU tensor)."""
        a = backend.to_numpy(self.data)
        return a if dtype is None else a.astype(dtype)

    __hash__ = object.__hash__  # == is elementwise, as in PyTorch, so hash by identity

    # ----- the gradient ------------------------------------------------------------------------
    @property
    def grad(self):
        """d(loss)/d(self) after backward() (leaves, and tensors that called retain_grad)."""
        return self._grad

    @grad.setter
    def grad(self, value):
        if value is not None:   # checked as PyTorch checks it
            if not isinstance(value, Tensor):
                raise TypeError(f"assigned grad expected to be a Tensor or None but got grad "
                                f"of type {type(value).__name__}")
            if tuple(value.shape) != tuple(self.shape):
                raise RuntimeError(f"assigned grad has data of a different size: "
                                   f"{tuple(value.shape)} for a tensor of {tuple(self.shape)}")
            if value.dtype != self.dtype:
                raise RuntimeError(f"assigned grad has data of a different type: "
                                   f"{value.dtype} for a tensor of {self.dtype}")
            if value.device != self.device:
                raise RuntimeError(f"assigned grad has data located on a different device: "
                                   f"{value.device} for a tensor on {self.device}")
        self._grad = value

    # ----- autograd --------------------------------------------------------------------------
    def requires_grad_(self, requires_grad=True):
        if requires_grad and not _is_float(self.dtype):
            raise TypeError(
                f"only tensors of floating point dtype can require gradients, got {self.dtype}")
        if not requires_grad and self._ctx is not None:
            raise RuntimeError("you can only change requires_grad flags of leaf tensors; "
                               "use .detach() on a non-leaf tensor instead")
        self.requires_grad = bool(requires_grad)
        return self

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Compute d(self)/d(leaf) for every leaf that requires grad (or only for ``inputs``),
        summed into leaf.grad. ``create_graph=True`` records the backward pass itself, so the
        gradients can be differentiated again (``retain_graph`` then defaults to True)."""
        if (gradient is None and not create_graph and inputs is None and self.requires_grad
                and self.data.size == 1):   # loss.backward(), once per step: nothing to check
            _backprop.backward_from(self, autograd.unit_seed(self), bool(retain_graph))
        else:
            autograd.backward(self, gradient, retain_graph, create_graph, inputs)

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(self)`` each time backward() has added a gradient into this leaf's .grad.

        Data-parallel training uses it to start averaging a parameter's gradient across
        processes while the rest of the backward pass still runs. Returns a handle whose
        ``remove()`` unregisters the hook.
        """
        if self._ctx is not None:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf "
                               "tensors")
        if self._grad_hooks is None:
            self._grad_hooks = []
        self._grad_hooks.append(hook)
        return _HookHandle(self._grad_hooks, hook)

    def retain_grad(self):
        """Keep this non-leaf tensor's gradient in .grad after backward()."""
        if self._ctx is not None:
            self._ctx.retained_output = self
        return self

    def detach(self):
        """The same data (shared, with the same version counter), cut from the graph."""
        t = Tensor._wrap(self.data)
        t._version = self._version
        return t

    def clone(self):
        return _ops.clone(self)

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"only one-element tensors can be converted to Python scalars, "
                             f"got shape {tuple(self.shape)}")
        return self.data.reshape(()).item()

    def numpy(self):
        if self.requires_grad:
            raise RuntimeError("can't call numpy() on a tensor that requires grad; "
                               "use tensor.detach().numpy()")
        return backend.to_numpy(self.data)

    def tolist(self):
        return backend.to_numpy(self.data).tolist()

    # ----- device and dtype ------------------------------------------------------------------
    def to(self, *args, device=None, dtype=None, non_blocking=False, copy=False):
        """``to(device)``, ``to(dtype)``, ``to(device, dtype)``, ``to(other_tensor)`` or the
        keywords: moves the data and casts it (differentiably); self when nothing changes."""
        for a in args:
            if isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            elif isinstance(a, backend.device) or (isinstance(a, str) and a.lower().split(
                    ":")[0] in ("cpu", "cuda", "gpu")):
                device = a
            else:
                dtype = a
        out = self
        if device is not None and backend.check_device(device) != self.device:
            out = _ops.to_device(out, backend.check_device(device))
        if dtype is not None and np.dtype(dtype) != out.dtype:
            out = _ops.cast(out, np.dtype(dtype))
        return out.clone() if copy and out is self else out

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def float(self):
        return _ops.cast(self, np.dtype(np.float32))

    def double(self):
        return _ops.cast(self, np.dtype(np.float64))

    def long(self):
        return _ops.cast(self, np.dtype(np.int64))

    def int(self):
        return _ops.cast(self, np.dtype(np.int32))

    def bool(self):
        return _ops.cast(self, np.dtype(np.bool_))

    def type(self, dtype):
        return _ops.cast(self, np.dtype(dtype))

    # ----- in-place updates (see inplace.py for the rules) -----------------------------------
    def __iadd__(self, other):
        return self.add_(other)

    def __isub__(self, other):
        return self.sub_(other)

    def __imul__(self, other):
        return self.mul_(other)

    def __itruediv__(self, other):
        return self.div_(other)

    def __setitem__(self, index, value):
        _inplace.setitem_(self, index, value)

    def add_(self, other, alpha=1):
        return _inplace.add_(self, other, alpha)

    def sub_(self, other, alpha=1):
        return _inplace.add_(self, other, -alpha)

    def mul_(self, other):
        return _inplace.mul_(self, other)

    def div_(self, other):
        return _inplace.div_(self, other)

    def copy_(self, src):
        return _inplace.copy_(self, src)

    def fill_(self, value):
        return _inplace.fill_(self, value)

    def zero_(self):
        return _inplace.fill_(self, 0)

    def clamp_(self, min=None, max=None):
        return _inplace.clamp_(self, min, max)


def _format_values(a):
    """The numbers as PyTorch prints them: 1., 2. when all are whole; else 4 decimals; or
    scientific notation when the magnitudes span too much."""
    if a.dtype.kind != "f" or a.size == 0:
        return np.array2string(a, separator=", ", prefix="tensor(")
    finite = np.abs(a[np.isfinite(a)])
    if finite.size and np.all(finite == np.round(finite)) and finite.max() < 1e8:
        fmt = "{:.0f}.".format
    elif finite.size and (finite.max() >= 1e8 or (finite[finite > 0].size and (
            finite.max() / finite[finite > 0].min() > 1e3 or finite[finite > 0].min() < 1e-4))):
        fmt = "{:.4e}".format
    else:
        fmt = "{:.4f}".format
    return np.array2string(a, separator=", ", prefix="tensor(",
                           formatter={"float_kind": lambda v: fmt(v) if np.isfinite(v) else
                                      str(v)})


def data_of(x):
    """x's array when x is a Tensor, else x itself (an array, a number, None)."""
    return x.data if isinstance(x, Tensor) else x


# These modules import Tensor from this file, so they are imported after the class exists.
from . import backprop as _backprop  # noqa: E402
from . import ops as _ops  # noqa: E402
from . import inplace as _inplace  # noqa: E402
