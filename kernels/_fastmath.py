"""Scalar math helpers for the numba CPU kernels, written so that LLVM can vectorize them.

This numba/llvmlite has no SVML, so ``math.exp`` inside an ``@njit`` loop is a scalar libm
call that stops the loop from vectorizing: a plain numba softmax is ~2x slower than NumPy
(research/performance-results.md). Python's ``max()`` and ``a if a > b else b`` do not
vectorize either (numba lowers them to branches). The helpers below are straight-line code
(LLVM intrinsics and selects) that LLVM turns into AVX2/AVX-512 loops.

    fmax(a, b)        llvm.maxnum: the larger of a and b (a NaN operand is ignored, as in
                      C's fmax). Vectorizes as a reduction, unlike Python's max().
    exp_le0(t)        exp(t) for t <= 0, including t = -inf (gives exactly 0), which is all
                      softmax-like kernels need after subtracting the row max. float32: Cephes'
                      expf polynomial with the power of two built in the float's bit pattern;
                      measured max relative error 1.2e-7 (about 1 ulp) over [-87, 0], and
                      exactly 0 below -87 (where exp underflows to float32 subnormals anyway).
                      NaN propagates. float64: math.exp (correctly rounded libm; scalar).
    shift_of_max(m)   the row max to subtract, or 0 when the row is all -inf (fully masked),
                      so that exp(-inf - shift) = 0 instead of exp(nan).
    erf_fast(x)       float32: erf as a rational function (Eigen's / XLA's coefficients),
                      measured max abs error 4.2e-7 vs math.erf on [-6, 6]; float64: math.erf.
    tanh_fast(x)      float32: (1 - e) / (1 + e) with e = exp_le0(-2|x|), and a Taylor
                      polynomial for |x| < 1/4 where 1 - e cancels; float64: math.tanh.

The dtype-specific versions are picked at compile time with ``numba.extending.overload``, so
each kernel is written once for float32 and float64.
"""
import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

_LOG2E = 1.4426950408889634
_LN2_HI = 0.693359375             # Cephes' split of ln(2): n * LN2_HI is exact for |n| < 2^9
_LN2_LO = -2.12194440e-4
# Below this exp(t) is a float32 subnormal (< 1.2e-38); we return exactly 0 so that a masked
# -inf score gives a probability of exactly 0.
_F32_EXP_MIN = -87.0

# The fastmath flags of the kernels that reduce (dot products, row sums): reassociation, FMA
# contraction, no signed zeros, reciprocals; never nnan/ninf, so -inf masks and overflow to inf
# keep their IEEE meaning.
FASTMATH = {"reassoc", "contract", "nsz", "arcp"}


@intrinsic
def fmax(typingctx, a, b):
    """llvm.maxnum(a, b) for two floats of the same type (vectorizable max)."""
    if not (isinstance(a, types.Float) and a == b):
        return None

    def codegen(context, builder, signature, args):
        lt = context.get_value_type(a)
        name = "llvm.maxnum.f32" if a == types.float32 else "llvm.maxnum.f64"
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(lt, [lt, lt]), name)
        return builder.call(fn, args)
    return a(a, b), codegen


@intrinsic
def select_lt(typingctx, a, b, x, y):
    """``x if a < b else y`` as one LLVM select (ordered compare: false when a is NaN)."""
    if not (isinstance(a, types.Float) and a == b and x == y):
        return None

    def codegen(context, builder, signature, args):
        cond = builder.fcmp_ordered("<", args[0], args[1])
        return builder.select(cond, args[2], args[3])
    return x(a, b, x, y), codegen


@intrinsic
def _bits_to_f32(typingctx, ival):
    """Reinterpret the low 32 bits of an integer as a float32 (a no-op LLVM bitcast)."""
    if not isinstance(ival, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        i32 = context.get_value_type(types.int32)
        val = builder.trunc(args[0], i32) if ival.bitwidth > 32 else args[0]
        return builder.bitcast(val, context.get_value_type(types.float32))
    return types.float32(ival), codegen


def exp_le0(t):
    """exp(t) for t <= 0; see the module docstring. (Python body: used without the JIT.)"""
    return math.exp(t)


@overload(exp_le0)
def _exp_le0_overload(t):
    if t == types.float32:
        def impl(t):
            # exp(t) = 2^n * exp(f) with n = round(t / ln 2) and |f| <= ln(2) / 2.
            lo = np.float32(_F32_EXP_MIN)
            tc = select_lt(t, lo, lo, t)                 # clamp, -inf -> -87 (NaN stays)
            # For y <= 0, int(y - 0.5) (truncation toward 0) is round-half-down of y.
            ni = np.int32(tc * np.float32(_LOG2E) - np.float32(0.5))
            n = np.float32(ni)
            f = tc - n * np.float32(_LN2_HI)
            f = f - n * np.float32(_LN2_LO)
            z = f * f
            p = np.float32(1.9875691500e-4)
            p = p * f + np.float32(1.3981999507e-3)
            p = p * f + np.float32(8.3334519073e-3)
            p = p * f + np.float32(4.1665795894e-2)
            p = p * f + np.float32(1.6666665459e-1)
            p = p * f + np.float32(5.0000001201e-1)
            p = p * z + f + np.float32(1.0)
            # 2^n written straight into the exponent field: (n + 127) << 23.
            scale = _bits_to_f32((ni + np.int32(127)) << np.int32(23))
            return select_lt(t, lo, np.float32(0.0), p * scale)
        return impl
    if isinstance(t, types.Float):
        def impl(t):
            return math.exp(t)
        return impl
    return None


def shift_of_max(m):
    """The shift to subtract from a row: its max, or 0 when the row is all -inf."""
    return 0.0 if m == -math.inf else m


@overload(shift_of_max)
def _shift_of_max_overload(m):
    if isinstance(m, types.Float):
        zero = np.float32(0.0) if m == types.float32 else 0.0

        def impl(m):
            return zero if m == -np.inf else m
        return impl
    return None


def erf_fast(x):
    """erf: float32 -> a rational approximation, float64 -> math.erf (libm)."""
    return math.erf(x)


@overload(erf_fast, jit_options={"error_model": "numpy"})   # no ZeroDivision branch
def _erf_fast_overload(x):
    # The float32 body is written inline (not as a separate @njit function) so that it is
    # inlined into the caller's loop, which then vectorizes.
    if x == types.float32:
        def impl32(x):
            # erf(x) = x * P(x^2) / Q(x^2) on [-4, 4]; +-1 (to float32 precision) outside.
            four = np.float32(4.0)
            x = select_lt(x, -four, -four, x)            # clamp; NaN passes through
            x = select_lt(four, x, four, x)
            x2 = x * x
            p = np.float32(-2.72614225801306e-10)
            p = p * x2 + np.float32(2.77068142495902e-08)
            p = p * x2 + np.float32(-2.10102402082508e-06)
            p = p * x2 + np.float32(-5.69250639462346e-05)
            p = p * x2 + np.float32(-7.34990630326855e-04)
            p = p * x2 + np.float32(-2.95459980854025e-03)
            p = p * x2 + np.float32(-1.60960333262415e-02)
            p = p * x
            q = np.float32(-1.45660718464996e-05)
            q = q * x2 + np.float32(-2.13374055278905e-04)
            q = q * x2 + np.float32(-1.68282697438203e-03)
            q = q * x2 + np.float32(-7.37332916720468e-03)
            q = q * x2 + np.float32(-1.42647390514189e-02)
            return p / q
        return impl32
    if isinstance(x, types.Float):
        def impl64(x):
            return math.erf(x)
        return impl64
    return None


def tanh_fast(x):
    """tanh: float32 -> from exp_le0 (vectorizable), float64 -> math.tanh (libm)."""
    return math.tanh(x)


@overload(tanh_fast, jit_options={"error_model": "numpy"})   # no ZeroDivision branch
def _tanh_fast_overload(x):
    if x == types.float32:
        def impl32(x):
            # |x| >= 1/4: tanh|x| = (1 - e) / (1 + e) with e = e^(-2|x|) (no overflow).
            e = exp_le0(np.float32(-2.0) * abs(x))
            t = (np.float32(1.0) - e) / (np.float32(1.0) + e)
            t = select_lt(x, np.float32(0.0), -t, t)
            # |x| < 1/4: 1 - e cancels, so use the Taylor series x - x^3/3 + 2x^5/15 - ...
            x2 = x * x
            p = np.float32(62.0 / 2835.0)
            p = p * x2 - np.float32(17.0 / 315.0)
            p = p * x2 + np.float32(2.0 / 15.0)
            p = p * x2 - np.float32(1.0 / 3.0)
            p = x + x * x2 * p
            return select_lt(abs(x), np.float32(0.25), p, t)
        return impl32
    if isinstance(x, types.Float):
        def impl64(x):
            return math.tanh(x)  # float64: libm, correctly rounded (the tests' precision)
        return impl64
    return None


def zero_of(v):
    """A zero of v's float type (keeps float32 accumulators float32 inside the kernels)."""
    return 0.0


@overload(zero_of)
def _zero_of_overload(v):
    if isinstance(v, types.Float):
        zero = np.float32(0.0) if v == types.float32 else 0.0

        def impl(v):
            return zero
        return impl
    return None


def as_type_of(v, c):
    """The constant c as a float of v's type (float32 stays float32 in mixed arithmetic)."""
    return c


@overload(as_type_of)
def _as_type_of_overload(v, c):
    if v == types.float32:
        def impl32(v, c):
            return np.float32(c)
        return impl32
    if isinstance(v, types.Float):
        def impl64(v, c):
            return np.float64(c)
        return impl64
    return None
