"""Data types: PyTorch's names, its default float, and its rules for mixing dtypes.

NumPy and PyTorch disagree on what ``int64 + float32`` is: NumPy widens to float64, PyTorch
keeps float32. A model written for PyTorch would silently run in float64 here, twice as slow,
so the ops follow PyTorch's rules (``promote`` below):

1. Categories rank bool < integer < float. The operand of the higher category decides: an
   integer tensor with a float32 tensor gives float32; within a category the wider dtype wins.
2. Python numbers are weak: ``x * 2`` and ``x + 0.5`` keep x's dtype when x is a float tensor.
   A number of a higher category than the tensor gives the default dtype (float32):
   ``int_tensor + 0.5`` and ``int_tensor ** 0.5`` are float32, not float64.
3. A 0-d tensor counts only when its category is higher than every dimensioned operand's
   (``float32 matrix * float64 0-d tensor`` stays float32).
4. Operations that only make sense on floats (exp, log, sqrt, tanh, true division, ...)
   turn integer and bool inputs into the default dtype first.
"""
import numpy as np

float32 = float = np.dtype(np.float32)
float64 = double = np.dtype(np.float64)
float16 = half = np.dtype(np.float16)
int64 = long = np.dtype(np.int64)
int32 = int = np.dtype(np.int32)
int16 = short = np.dtype(np.int16)
int8 = np.dtype(np.int8)
uint8 = np.dtype(np.uint8)
bool = np.dtype(np.bool_)      # noqa: A001  (PyTorch's name)

_default = [float32]            # PyTorch's default float dtype
_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}


def get_default_dtype():
    """The dtype of float tensors made from Python floats and of int -> float results."""
    return _default[0]


def set_default_dtype(dtype):
    d = np.dtype(dtype)
    if d.kind != "f":
        raise TypeError(f"only floating-point types are supported as the default type, got "
                        f"{d}")
    _default[0] = d


def is_floating_point(dtype):
    return np.dtype(dtype).kind == "f"


def _scalar_category(x):
    if isinstance(x, (np.bool_, type(True))):
        return 0
    if isinstance(x, (np.integer, type(1))):
        return 1
    if isinstance(x, (np.floating, type(1.0))):
        return 2
    return 3 if isinstance(x, (complex, np.complexfloating)) else None


def result_type(*operands):
    """The dtype PyTorch gives an op on these operands (arrays, or Python/NumPy numbers)."""
    dims, zero_dims, scalars = [], [], []
    for x in operands:
        dtype = getattr(x, "dtype", None)
        if dtype is None or isinstance(x, np.generic):
            cat = _scalar_category(x)
            if cat is not None:
                scalars.append(cat)
        elif x.ndim == 0:
            zero_dims.append(dtype)
        else:
            dims.append(dtype)
    out = _widest(dims) if dims else _widest(zero_dims)
    if dims and zero_dims:
        zero = _widest(zero_dims)
        if _CATEGORY[zero.kind] > _CATEGORY[out.kind]:
            out = zero
    if out is None:
        raise TypeError("result_type: no tensor among the operands")
    if scalars and max(scalars) > _CATEGORY[out.kind]:
        out = {1: int64, 2: get_default_dtype(), 3: np.dtype(np.complex64)}[max(scalars)]
    return out


def _widest(dtypes):
    """The highest-category dtype; within that category the promotion of all of them."""
    if not dtypes:
        return None
    top = max(_CATEGORY[d.kind] for d in dtypes)
    out = None
    for d in dtypes:
        if _CATEGORY[d.kind] == top:
            out = d if out is None else np.promote_types(out, d)
    return out


def promote(a, b):
    """(a, b) with the arrays cast to PyTorch's result dtype of a op b (Python numbers stay as
    they are: NumPy treats them as weak too). The common case, two arrays of one dtype or a
    float array and a Python number, returns at once."""
    da, db = getattr(a, "dtype", None), getattr(b, "dtype", None)
    if da is not None and (da == db or (db is None and da.kind == "f")):
        return a, b
    if db is not None and da is None and db.kind == "f":
        return a, b
    dtype = result_type(a, b)
    return _cast(a, dtype), _cast(b, dtype)


def _cast(x, dtype):
    if getattr(x, "dtype", None) is None or isinstance(x, np.generic) or x.dtype == dtype:
        return x
    return x.astype(dtype)


def to_float(x):
    """x itself if it is a float array, else x cast to the default dtype (rule 4)."""
    if x.dtype.kind in "fc":
        return x
    return x.astype(get_default_dtype())
