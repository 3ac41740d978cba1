"""Tensor methods that forward to one op each (``x.exp()`` is ``ops.exp(x)``), PyTorch's names.

Mixed into ``tensor.Tensor``; the formulas and derivatives live in ``tinygrad_llm.ops``.
(Importing ops here is safe: the package imports autograd, whose Function the ops need,
before tensor.)
"""
from . import ops as _ops


class OpMethods:
    __slots__ = ()                # Tensor declares the slots

    def exp(self):
        return _ops.exp(self)

    def log(self):
        return _ops.log(self)

    def sqrt(self):
        return _ops.sqrt(self)

    def abs(self):
        return _ops.abs(self)

    def tanh(self):
        return _ops.tanh(self)

    def sigmoid(self):
        return _ops.sigmoid(self)

    def relu(self):
        return _ops.relu(self)

    def pow(self, exponent):
        return _ops.pow(self, exponent)

    # ----- arithmetic by name (the operators are in tensor.py) ------------------------------
    def add(self, other, alpha=1):
        return _ops.add(self, other if alpha == 1 else _ops.mul(other, alpha))

    def sub(self, other, alpha=1):
        return _ops.sub(self, other if alpha == 1 else _ops.mul(other, alpha))

    subtract = sub

    def mul(self, other):
        return _ops.mul(self, other)

    multiply = mul

    def div(self, other, rounding_mode=None):
        return _ops.divide(self, other, rounding_mode=rounding_mode)

    divide = true_divide = div

    def neg(self):
        return _ops.neg(self)

    negative = neg

    def floor_divide(self, other):
        return _ops.floor_divide(self, other)

    def __floordiv__(self, other):
        return _ops.floor_divide(self, other)

    def __rfloordiv__(self, other):
        return _ops.floor_divide(other, self)

    def remainder(self, other):
        return _ops.remainder(self, other)

    def __mod__(self, other):
        return _ops.remainder(self, other)

    def __rmod__(self, other):
        return _ops.remainder(other, self)

    def fmod(self, other):
        return _ops.fmod(self, other)

    def copysign(self, other):
        return _ops.copysign(self, other)

    # ----- unary math (ops/unary.py, ops/activation.py) -------------------------------------
    def log2(self):
        return _ops.log2(self)

    def log1p(self):
        return _ops.log1p(self)

    def expm1(self):
        return _ops.expm1(self)

    def rsqrt(self):
        return _ops.rsqrt(self)

    def reciprocal(self):
        return _ops.reciprocal(self)

    def sin(self):
        return _ops.sin(self)

    def cos(self):
        return _ops.cos(self)

    def tan(self):
        return _ops.tan(self)

    def asin(self):
        return _ops.asin(self)

    def acos(self):
        return _ops.acos(self)

    def atan(self):
        return _ops.atan(self)

    def sinh(self):
        return _ops.sinh(self)

    def cosh(self):
        return _ops.cosh(self)

    def asinh(self):
        return _ops.asinh(self)

    def atanh(self):
        return _ops.atanh(self)

    def erf(self):
        return _ops.erf(self)

    def floor(self):
        return _ops.floor(self)

    def ceil(self):
        return _ops.ceil(self)

    def round(self):
        return _ops.round(self)

    def trunc(self):
        return _ops.trunc(self)

    def sign(self):
        return _ops.sign(self)

    def square(self):
        return _ops.mul(self, self)

    def clamp_min(self, min):
        return _ops.clamp(self, min, None)

    def clamp_max(self, max):
        return _ops.clamp(self, None, max)

    # ----- tests and logic (no gradient) ----------------------------------------------------
    def isfinite(self):
        return _ops.isfinite(self)

    def isinf(self):
        return _ops.isinf(self)

    def isnan(self):
        return _ops.isnan(self)

    def logical_not(self):
        return _ops.logical_not(self)

    def logical_and(self, other):
        return _ops.logical_and(self, other)

    def logical_or(self, other):
        return _ops.logical_or(self, other)

    def logical_xor(self, other):
        return _ops.logical_xor(self, other)

    def clamp(self, min=None, max=None):
        return _ops.clamp(self, min, max)

    clip = clamp

    def maximum(self, other):
        return _ops.maximum(self, other)

    def minimum(self, other):
        return _ops.minimum(self, other)

    def matmul(self, other):
        return _ops.matmul(self, other)

    def sum(self, dim=None, keepdim=False, dtype=None):
        return _ops.sum(self, dim, keepdim, dtype=dtype)

    def mean(self, dim=None, keepdim=False, dtype=None):
        return _ops.mean(self, dim, keepdim, dtype=dtype)

    def prod(self, dim=None, keepdim=False, dtype=None):
        return _ops.prod(self, dim, keepdim, dtype=dtype)

    def norm(self, p=2.0, dim=None, keepdim=False):
        return _ops.norm(self, p, dim, keepdim)

    def cumsum(self, dim, dtype=None):
        return _ops.cumsum(self, dim, dtype=dtype)

    def cumprod(self, dim, dtype=None):
        return _ops.cumprod(self, dim, dtype=dtype)

    def cummax(self, dim):
        return _ops.cummax(self, dim)

    def cummin(self, dim):
        return _ops.cummin(self, dim)

    def sort(self, dim=-1, descending=False, stable=False):
        return _ops.sort(self, dim, descending, stable)

    def argsort(self, dim=-1, descending=False, stable=False):
        return _ops.argsort(self, dim, descending, stable)

    def msort(self):
        return _ops.msort(self)

    def topk(self, k, dim=-1, largest=True, sorted=True):
        return _ops.topk(self, k, dim, largest, sorted)

    def kthvalue(self, k, dim=-1, keepdim=False):
        return _ops.kthvalue(self, k, dim, keepdim)

    def var(self, dim=None, keepdim=False, correction=1):
        return _ops.var(self, dim, keepdim, correction=correction)

    def std(self, dim=None, keepdim=False, correction=1):
        return _ops.std(self, dim, keepdim, correction=correction)

    def max(self, dim=None, keepdim=False):
        return _ops.max(self, dim, keepdim)

    def min(self, dim=None, keepdim=False):
        return _ops.min(self, dim, keepdim)

    def amax(self, dim=None, keepdim=False):
        return _ops.amax(self, dim, keepdim)

    def amin(self, dim=None, keepdim=False):
        return _ops.amin(self, dim, keepdim)

    def argmax(self, dim=None, keepdim=False):
        return _ops.argmax(self, dim, keepdim)

    def argmin(self, dim=None, keepdim=False):
        return _ops.argmin(self, dim, keepdim)

    def logsumexp(self, dim, keepdim=False):
        return _ops.logsumexp(self, dim, keepdim)

    def softmax(self, dim):
        return _ops.softmax(self, dim)

    def log_softmax(self, dim):
        return _ops.log_softmax(self, dim)

    def reshape(self, *shape):
        return _ops.reshape(self, *shape)

    def view(self, *shape):
        return _ops.reshape(self, *shape)

    def flatten(self, start_dim=0, end_dim=-1):
        return _ops.flatten(self, start_dim, end_dim)

    def transpose(self, dim0, dim1):
        return _ops.transpose(self, dim0, dim1)

    def permute(self, *dims):
        return _ops.permute(self, *dims)

    def expand(self, *shape):
        return _ops.expand(self, *shape)

    def expand_as(self, other):
        return _ops.expand(self, *other.shape)

    def view_as(self, other):
        return _ops.reshape(self, *other.shape)

    reshape_as = view_as

    def type_as(self, other):
        return _ops.cast(self, other.dtype)

    def nelement(self):
        return self.numel()

    def unflatten(self, dim, sizes):
        return _ops.unflatten(self, dim, sizes)

    def flip(self, *dims):
        return _ops.flip(self, *dims)

    def roll(self, shifts, dims=None):
        return _ops.roll(self, shifts, dims)

    def repeat(self, *sizes):
        return _ops.repeat(self, *sizes)

    def repeat_interleave(self, repeats, dim=None, output_size=None):
        return _ops.repeat_interleave(self, repeats, dim, output_size)

    def tril(self, diagonal=0):
        return _ops.tril(self, diagonal)

    def triu(self, diagonal=0):
        return _ops.triu(self, diagonal)

    def unfold(self, dimension, size, step):
        return _ops.unfold(self, dimension, size, step)

    def squeeze(self, dim=None):
        return _ops.squeeze(self, dim)

    def unsqueeze(self, dim):
        return _ops.unsqueeze(self, dim)

    def contiguous(self):
        return self

    def split(self, split_size_or_sections, dim=0):
        return _ops.split(self, split_size_or_sections, dim)

    def chunk(self, chunks, dim=0):
        return _ops.chunk(self, chunks, dim)

    def gather(self, dim, index):
        return _ops.gather(self, dim, index)

    def masked_fill(self, mask, value):
        return _ops.masked_fill(self, mask, value)

    def masked_select(self, mask):
        return _ops.masked_select(self, mask)

    def index_select(self, dim, index):
        return _ops.index_select(self, dim, index)

    def scatter(self, dim, index, src=None, value=None, reduce=None):
        return _ops.scatter(self, dim, index, src, value=value, reduce=reduce)

    def scatter_add(self, dim, index, src):
        return _ops.scatter_add(self, dim, index, src)

    def scatter_reduce(self, dim, index, src, reduce, include_self=True):
        return _ops.scatter_reduce(self, dim, index, src, reduce, include_self=include_self)

    def nonzero(self, as_tuple=False):
        return _ops.nonzero(self, as_tuple=as_tuple)

    def any(self, dim=None, keepdim=False):
        return _ops.any(self, dim, keepdim)

    def all(self, dim=None, keepdim=False):
        return _ops.all(self, dim, keepdim)
