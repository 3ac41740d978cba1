"""The operators of Tensor, written out: each calls one op from ``tinygrad_llm.ops`` (``+ - * /``
call their Function directly: ``a * b`` is ``Mul.apply(a, b)``, one call fewer per op).

Arithmetic (``+ - * / ** @``, unary minus, ``abs``) is differentiable; comparisons and the
bitwise operators give tensors without a gradient; ``x[index]`` is ops.getitem. Mixed into
``tensor.Tensor``.
"""
from . import ops as _ops
from .ops import elementwise as _elementwise


class Operators:
    __slots__ = ()                # Tensor declares the slots
    # NumPy defers to Tensor's reflected operators (as for torch.Tensor): ``array * tensor`` is
    # ops.mul, recorded, not an ndarray made from the tensor's values (a silent constant)
    __array_priority__ = 1000

    # ----- arithmetic operators --------------------------------------------------------------
    def __add__(self, other):
        return _elementwise.Add.apply(self, other)

    def __radd__(self, other):
        return _elementwise.Add.apply(other, self)

    def __sub__(self, other):
        return _elementwise.Sub.apply(self, other)

    def __rsub__(self, other):
        return _elementwise.Sub.apply(other, self)

    def __mul__(self, other):
        return _elementwise.Mul.apply(self, other)

    def __rmul__(self, other):
        return _elementwise.Mul.apply(other, self)

    def __truediv__(self, other):
        return _elementwise.Div.apply(self, other)

    def __rtruediv__(self, other):
        return _elementwise.Div.apply(other, self)

    def __neg__(self):
        return _ops.neg(self)

    def __pow__(self, exponent):
        return _ops.pow(self, exponent)

    def __rpow__(self, base):
        return _ops.pow(base, self)

    def __matmul__(self, other):
        return _ops.matmul(self, other)

    def __rmatmul__(self, other):
        return _ops.matmul(other, self)

    def __abs__(self):
        return _ops.abs(self)

    def __getitem__(self, index):
        return _ops.getitem(self, index)

    # Comparisons give boolean tensors and carry no gradient.
    def __lt__(self, other):
        return _tensor.Tensor._wrap(self.data < _tensor.data_of(other))

    def __le__(self, other):
        return _tensor.Tensor._wrap(self.data <= _tensor.data_of(other))

    def __gt__(self, other):
        return _tensor.Tensor._wrap(self.data > _tensor.data_of(other))

    def __ge__(self, other):
        return _tensor.Tensor._wrap(self.data >= _tensor.data_of(other))

    def __eq__(self, other):
        return _tensor.Tensor._wrap(self.data == _tensor.data_of(other))

    def __ne__(self, other):
        return _tensor.Tensor._wrap(self.data != _tensor.data_of(other))

    def __invert__(self):
        return _tensor.Tensor._wrap(~self.data)

    def __and__(self, other):
        return _tensor.Tensor._wrap(self.data & _tensor.data_of(other))

    def __or__(self, other):
        return _tensor.Tensor._wrap(self.data | _tensor.data_of(other))

    def __xor__(self, other):
        return _tensor.Tensor._wrap(self.data ^ _tensor.data_of(other))

    def __rand__(self, other):
        return _tensor.Tensor._wrap(_tensor.data_of(other) & self.data)

    def __ror__(self, other):
        return _tensor.Tensor._wrap(_tensor.data_of(other) | self.data)

    def __rxor__(self, other):
        return _tensor.Tensor._wrap(_tensor.data_of(other) ^ self.data)

    def __bool__(self):
        if self.data.size != 1:
            raise RuntimeError(f"the truth value of a tensor of shape {tuple(self.shape)} "
                               "is ambiguous; use .any() or .all()")
        return bool(self.data.reshape(()).item())

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self.dtype.kind == "f":
            raise TypeError("only integer tensors of a single element can be used as an index")
        return int(self.item())


# tensor.py imports this module before its Tensor class exists; the methods above reach the
# class through the module at call time.
from . import tensor as _tensor  # noqa: E402
