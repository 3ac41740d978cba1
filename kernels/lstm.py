"""The LSTM layer over a whole sequence, forward and backward through time: arrays in, out.

Shape legend: T time steps, B batch, I input size, H hidden size, G = 4H (gates i, f, g, o).
The equations and the backward formulas are in ops/lstm.py's docstring, beside the Function
that calls the two public functions at the end of this file:

    lstm_forward(x, h0, c0, w_ih, w_hh, bias) -> (y (T + 1, B, H), saved)
    lstm_backward(grad, saved, needs_x, needs_w_ih, needs_w_hh, needs_bias)
        -> (dx, dh0, dc0, dw_ih, dw_hh, db)

In order:

    (a) reference   one step in NumPy/CuPy, written like the equations (the specification)
    (b) numba CPU   the same step as one fused loop over (B, H), then the time loops that give
                    each thread a block of batch rows
    (c) the layer   the input and weight GEMMs over all steps at once around the time loop

Buffers are preallocated and overwritten, except ``db`` / ``db_parts``, into which the
backward kernels accumulate the bias gradient. Optimizations of the CPU path, and why
(measurements in benchmarks/README.md, "LSTM"):

    1. the five nonlinearities and the cell update fused into one loop per step, with
       polynomial exp/tanh (kernels/_fastmath.py) so that the loop vectorizes
    2. FMA contraction in the forward step
    3. one block of batch rows per thread for the whole time loop (no sync per step), on the
       kernels' one thread pool rather than numba's OpenMP prange, whose spinning workers slowed
       the GEMMs that follow
    4. the per-step recurrent GEMM called straight from numba (kernels/_cblas.py)
    5. one thread for small calls (a one-token step while generating)
"""
import math

import numpy as np
from numba import njit, types
from numba.extending import overload

from tinygrad_llm.backend import get_array_module

from . import _dispatch
from ._blas import single_threaded_blas
from ._cblas import gemm
from ._dispatch import num_threads, parallel_items
from ._fastmath import as_type_of, exp_le0, select_lt, tanh_fast
from .fastnp import array_module


def _stable_sigmoid(x):
    """1 / (1 + e^-x) without overflow: use e^-|x|, which is always <= 1."""
    xp = get_array_module(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


# ---------------------------------------------------------------------------------------------
# (a) Reference: one time step in NumPy/CuPy, written like the equations above.
# ---------------------------------------------------------------------------------------------

def _cell_forward_ref(gates, rec, bias, c_prev, c, tanh_c, h):
    """One step in place. gates (B, 4H): x_t W_ih^T on entry, [i f g o] on exit;
    rec (B, 4H): h_{t-1} W_hh^T; bias (4H,): b_ih + b_hh."""
    xp = get_array_module(gates)
    H = c.shape[1]
    a = gates + rec + bias                              # (B, 4H) pre-activations
    gates[:, :2 * H] = _stable_sigmoid(a[:, :2 * H])   # i, f
    gates[:, 2 * H:3 * H] = xp.tanh(a[:, 2 * H:3 * H])  # g
    gates[:, 3 * H:] = _stable_sigmoid(a[:, 3 * H:])   # o
    i, f, g, o = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
    c[...] = f * c_prev + i * g
    tanh_c[...] = xp.tanh(c)
    h[...] = o * tanh_c


def _cell_backward_ref(dy, dh_rec, dc, acts, c_prev, tanh_c, da, db):
    """One step of BPTT. dc (B, H) holds dL/dc_t on entry and dL/dc_{t-1} on exit; the
    bias gradient sum_t sum_b da is accumulated into db (4H,)."""
    H = dc.shape[1]
    i, f, g, o = acts[:, :H], acts[:, H:2 * H], acts[:, 2 * H:3 * H], acts[:, 3 * H:]
    dh = dy + dh_rec
    # h_t = o * tanh(c_t)
    d_o = dh * tanh_c
    dct = dc + dh * o * (1 - tanh_c * tanh_c)
    # c_t = f * c_{t-1} + i * g
    da[:, :H] = dct * g * i * (1 - i)                 # through i = sigmoid(a_i)
    da[:, H:2 * H] = dct * c_prev * f * (1 - f)       # through f = sigmoid(a_f)
    da[:, 2 * H:3 * H] = dct * i * (1 - g * g)        # through g = tanh(a_g)
    da[:, 3 * H:] = d_o * o * (1 - o)                 # through o = sigmoid(a_o)
    dc[...] = dct * f
    db += da.sum(axis=0)                              # a_t = ... + b_ih + b_hh


# ---------------------------------------------------------------------------------------------
# (b) Numba CPU kernels: the same step, one pass over (B, H) with the five nonlinearities fused.
# ---------------------------------------------------------------------------------------------

def _sigmoid(x):
    """1 / (1 + e^-x) (the Python body; the njit version is the overload below)."""
    return 1.0 / (1.0 + math.exp(-x))


@overload(_sigmoid)
def _sigmoid_overload(x):
    if isinstance(x, types.Float):
        def impl(x):
            # e = e^-|x| <= 1 never overflows; sigmoid(x) = 1/(1+e) for x >= 0, e/(1+e) below.
            e = exp_le0(-abs(x))
            r = as_type_of(x, 1.0) / (as_type_of(x, 1.0) + e)
            return select_lt(x, as_type_of(x, 0.0), e * r, r)
        return impl
    return None


# error_model="numpy": no ZeroDivisionError branch in a / b, which would stop vectorization.
# Each gate block is taken as a row slice (ai = gates[b, 0:H], ...) and indexed with the loop
# counter alone: an index like gates[b, H + j] makes numba emit a negative-index wraparound
# select that LLVM cannot remove, and the loop then runs scalar. fastmath "contract" only
# (a * b + c as one FMA; no other IEEE rule relaxed) speeds up the exp and tanh polynomials.
@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _cell_forward_cpu(gates, rec, bias, c_prev, c, tanh_c, h):
    """One step in place (see _cell_forward_ref): gates (B, 4H) -> [i f g o]."""
    B, H = c.shape
    bi, bf, bg, bo = bias[0:H], bias[H:2 * H], bias[2 * H:3 * H], bias[3 * H:4 * H]
    for b in range(B):
        ai, af = gates[b, 0:H], gates[b, H:2 * H]                # (H,) views, one per gate
        ag, ao = gates[b, 2 * H:3 * H], gates[b, 3 * H:4 * H]
        ri, rf = rec[b, 0:H], rec[b, H:2 * H]
        rg, ro = rec[b, 2 * H:3 * H], rec[b, 3 * H:4 * H]
        cp, cb, tb, hb = c_prev[b], c[b], tanh_c[b], h[b]
        for j in range(H):
            i = _sigmoid(ai[j] + ri[j] + bi[j])
            f = _sigmoid(af[j] + rf[j] + bf[j])
            g = tanh_fast(ag[j] + rg[j] + bg[j])
            o = _sigmoid(ao[j] + ro[j] + bo[j])
            ct = f * cp[j] + i * g
            tc = tanh_fast(ct)
            ai[j] = i
            af[j] = f
            ag[j] = g
            ao[j] = o
            cb[j] = ct
            tb[j] = tc
            hb[j] = o * tc


@njit(cache=True, nogil=True, error_model="numpy")
def _cell_backward_cpu(dy, dh_rec, dc, acts, c_prev, tanh_c, da, db):
    """One step of BPTT (see _cell_backward_ref); dc goes from dL/dc_t to dL/dc_{t-1}."""
    B, H = dc.shape
    dbi, dbf, dbg, dbo = db[0:H], db[H:2 * H], db[2 * H:3 * H], db[3 * H:4 * H]
    for b in range(B):
        si, sf = acts[b, 0:H], acts[b, H:2 * H]
        sg, so = acts[b, 2 * H:3 * H], acts[b, 3 * H:4 * H]
        di, df = da[b, 0:H], da[b, H:2 * H]
        dg, do = da[b, 2 * H:3 * H], da[b, 3 * H:4 * H]
        dyb, dhb, dcb, cp, tb = dy[b], dh_rec[b], dc[b], c_prev[b], tanh_c[b]
        for j in range(H):
            i, f, g, o, tc = si[j], sf[j], sg[j], so[j], tb[j]
            one = as_type_of(tc, 1.0)
            dh = dyb[j] + dhb[j]
            # h_t = o * tanh(c_t)
            d_o = dh * tc
            dct = dcb[j] + dh * o * (one - tc * tc)
            # c_t = f * c_{t-1} + i * g, then back through each gate's nonlinearity
            da_i = dct * g * (i - i * i)
            da_f = dct * cp[j] * (f - f * f)
            da_g = dct * i * (one - g * g)
            da_o = d_o * (o - o * o)
            di[j], df[j], dg[j], do[j] = da_i, da_f, da_g, da_o
            dbi[j] += da_i                              # a_t = ... + b_ih + b_hh
            dbf[j] += da_f
            dbg[j] += da_g
            dbo[j] += da_o
            dcb[j] = dct * f


# The time loops. Batch rows never interact in an LSTM, so the batch is cut into one chunk of
# rows per thread and each thread runs the whole time loop on its rows: no synchronisation per
# step (a multithreaded BLAS call per step would wait for both cores T times). Each step's
# recurrent GEMM is then a single-threaded BLAS call on the chunk (NumPy's OpenBLAS through
# kernels/_cblas.gemm, kept at one thread by the caller). The chunks run on the kernels' one
# thread pool (_dispatch.parallel_items), like the GEMMs around them (numba's OpenMP prange
# here would leave workers spinning that slow the GEMMs that follow). One chunk runs inline.
@njit(cache=True, nogil=True)
def _forward_rows(gates, w_hh_t, bias, hs, cs, tanh_c, lo, hi):
    """Rows lo:hi of every step. hs[0], cs[0] hold h_0, c_0 on entry; fills hs[1:], cs[1:]
    and tanh_c; turns gates into the activations [i f g o]."""
    T, _, G = gates.shape
    rec = np.empty((hi - lo, G), dtype=gates.dtype)                    # h_{t-1} W_hh^T
    for t in range(T):
        gemm(hs[t, lo:hi], w_hh_t, rec)
        _cell_forward_cpu(gates[t, lo:hi], rec, bias, cs[t, lo:hi], cs[t + 1, lo:hi],
                          tanh_c[t, lo:hi], hs[t + 1, lo:hi])


@njit(cache=True, nogil=True)
def _backward_rows(grad, acts, cs, tanh_c, w_hh, da, dh0, dc, db, lo, hi):
    """BPTT for rows lo:hi: fills da; dc goes from dL/dc_T to dL/dc_0; dh0 gets dL/dh_0;
    db (4H,) accumulates the bias gradient of these rows."""
    T, _, G = acts.shape
    dh_rec = np.zeros((hi - lo, G // 4), dtype=acts.dtype)             # dL/dh_t via step t+1
    for t in range(T - 1, -1, -1):
        _cell_backward_cpu(grad[t, lo:hi], dh_rec, dc[lo:hi], acts[t, lo:hi], cs[t, lo:hi],
                           tanh_c[t, lo:hi], da[t, lo:hi], db)
        gemm(da[t, lo:hi], w_hh, dh_rec)             # a_t = .. + h_{t-1} W_hh^T + ..
    dh0[lo:hi] = dh_rec


@njit(cache=True, nogil=True)
def _forward_chunks(first, stop, step, gates, w_hh_t, bias, hs, cs, tanh_c, n_chunks):
    """Forward over chunks first, first + step, .. < stop of n_chunks equal row blocks."""
    B = gates.shape[1]
    rows = (B + n_chunks - 1) // n_chunks
    for k in range(first, stop, step):
        if k * rows < B:
            _forward_rows(gates, w_hh_t, bias, hs, cs, tanh_c, k * rows,
                          min(B, (k + 1) * rows))


@njit(cache=True, nogil=True)
def _backward_chunks(first, stop, step, grad, acts, cs, tanh_c, w_hh, da, dh0, dc, db_parts):
    """BPTT over chunks first, first + step, .. < stop; db_parts (n_chunks, 4H) holds one
    bias-gradient accumulator per chunk (summed after)."""
    n_chunks, B = db_parts.shape[0], acts.shape[1]
    rows = (B + n_chunks - 1) // n_chunks
    for k in range(first, stop, step):
        if k * rows < B:
            _backward_rows(grad, acts, cs, tanh_c, w_hh, da, dh0, dc, db_parts[k], k * rows,
                           min(B, (k + 1) * rows))


def _forward_loop_cpu(gates, w_hh_t, bias, hs, cs, tanh_c, n_chunks):
    """The forward time loop (see _forward_rows), one chunk of rows per thread."""
    parallel_items(_forward_chunks, n_chunks, gates, w_hh_t, bias, hs, cs, tanh_c, n_chunks)


def _backward_loop_cpu(grad, acts, cs, tanh_c, w_hh, da, dh0, dc, db_parts):
    """BPTT (see _backward_rows), one chunk of rows per thread: len(db_parts) chunks."""
    parallel_items(_backward_chunks, db_parts.shape[0], grad, acts, cs, tanh_c, w_hh, da, dh0,
                   dc, db_parts)


def _forward_loop_ref(gates, w_hh_t, bias, hs, cs, tanh_c):
    xp = get_array_module(gates)
    rec = xp.empty(gates.shape[1:], dtype=gates.dtype)                 # (B, 4H)
    for t in range(gates.shape[0]):
        xp.matmul(hs[t], w_hh_t, out=rec)
        _cell_forward_ref(gates[t], rec, bias, cs[t], cs[t + 1], tanh_c[t], hs[t + 1])


def _backward_loop_ref(grad, acts, cs, tanh_c, w_hh, da, dh0, dc, db_parts):
    xp = get_array_module(grad)
    dh_rec = xp.zeros(dc.shape, dtype=dc.dtype)
    for t in range(acts.shape[0] - 1, -1, -1):
        _cell_backward_ref(grad[t], dh_rec, dc, acts[t], cs[t], tanh_c[t], da[t], db_parts[0])
        xp.matmul(da[t], w_hh, out=dh_rec)
    dh0[...] = dh_rec


MIN_ROWS_PER_THREAD = 16


MIN_WORK_PER_CALL = 1 << 16  # T * B * H below which handing work to threads costs more


def _threads(B, T=None, H=None):
    """Threads for a batch of B rows: one per MIN_ROWS_PER_THREAD rows, at most all of them,
    and just one for small calls (a one-token step while generating), where the hand-off to
    another thread costs more than the work."""
    if T is not None and H is not None and T * B * H < MIN_WORK_PER_CALL:
        return 1
    return max(1, min(num_threads(), B // MIN_ROWS_PER_THREAD))


# ---------------------------------------------------------------------------------------------
# (c) The layer: the GEMMs over all steps around the time loops (ops/lstm.py's LSTMLayer)
# ---------------------------------------------------------------------------------------------

def lstm_forward(x, h0, c0, w_ih, w_hh, bias, impl="auto"):
    """One LSTM layer: x (T, B, I), h0, c0 (B, H), w_ih (4H, I), w_hh (4H, H), bias (4H,)
    (b_ih + b_hh, or None).

    Returns (y, saved): y (T + 1, B, H) holds h_1 .. h_T, then c_T (a view of one buffer that
    also holds h_0 in front, so that H_prev = h_0 .. h_{T-1} is contiguous for dW_hh); saved is
    what lstm_backward needs.
    """
    xp = array_module(x)
    T, B, n_in = x.shape
    H, G = w_hh.shape[1], w_hh.shape[0]
    # numba kernels for float32/float64 NumPy arrays; the reference for the rest
    cpu = (_dispatch.choose_impl(x, h0, c0, w_ih, w_hh, impl=impl) == "cpu"
           and x.dtype in (np.float32, np.float64))
    threads = _threads(B, T, H) if cpu else 1
    w_ih, w_hh = xp.ascontiguousarray(w_ih), xp.ascontiguousarray(w_hh)
    x2 = xp.empty((T * B, n_in), x.dtype)                   # (T*B, I), pooled memory: x is
    x2.reshape(T, B, n_in)[...] = x                         # often batch_first transposed
    # a_t = x_t W_ih^T + ...: the input half of every step at once, one GEMM
    gates = xp.matmul(x2, w_ih.T).reshape(T, B, G)          # x_t W_ih^T, then [i f g o]
    if bias is None:
        bias = xp.zeros(G, dtype=x.dtype)                   # (4H,) added inside the step
    buf = xp.empty((T + 2, B, H), x.dtype)                  # h_0, h_1 .. h_T, c_T
    cs = xp.empty((T + 1, B, H), x.dtype)                   # c_0 .. c_T
    tanh_c = xp.empty((T, B, H), x.dtype)
    buf[0], cs[0] = h0, c0
    if not cpu:
        _forward_loop_ref(gates, w_hh.T, bias, buf, cs, tanh_c)
    else:
        # W_hh^T as its own C-contiguous (H, 4H) copy: OpenBLAS repacks a transposed operand
        # at every call, and this small per-step GEMM runs T times (benchmarks/README.md,
        # the yardstick's "Session 6")
        w_hh_t = xp.ascontiguousarray(w_hh.T)                 # (H, 4H)
        with single_threaded_blas():
            _forward_loop_cpu(gates, w_hh_t, bias, buf, cs, tanh_c, threads)
    buf[T + 1] = cs[T]
    saved = (x2, w_ih, w_hh, gates, cs, tanh_c, buf, cpu, threads)
    return buf[1:], saved                                   # (T + 1, B, H) view


def lstm_backward(grad, saved, needs_x=True, needs_w_ih=True, needs_w_hh=True,
                  needs_bias=True):
    """BPTT of lstm_forward for grad (T + 1, B, H) (dL/dh_1 .. dL/dh_T, then dL/dc_T).

    Returns (dx (T, B, I), dh0 (B, H), dc0 (B, H), dw_ih (4H, I), dw_hh (4H, H), db (4H,));
    the gradients not asked for are None (dh0 and dc0 always come back).
    """
    x2, w_ih, w_hh, acts, cs, tanh_c, buf, cpu, threads = saved
    xp = array_module(grad)
    T, B, G = acts.shape
    H, n_in = G // 4, x2.shape[1]
    grad = xp.ascontiguousarray(grad)                       # (T + 1, B, H)
    da = xp.empty((T, B, G), acts.dtype)                    # dL/da_t for every step
    dc = grad[T].copy()                                     # dL/dc_T, then dL/dc_0
    dh0 = xp.empty((B, H), dtype=acts.dtype)                # dL/dh_0
    db_parts = xp.zeros((threads, G), dtype=acts.dtype)     # bias gradient per batch chunk
    if not cpu:
        _backward_loop_ref(grad, acts, cs, tanh_c, w_hh, da, dh0, dc, db_parts)
    else:
        with single_threaded_blas():
            _backward_loop_cpu(grad, acts, cs, tanh_c, w_hh, da, dh0, dc, db_parts)
    da2 = da.reshape(T * B, G)                              # (T*B, 4H)
    h_prev2 = buf[:T].reshape(T * B, H)                     # h_0 .. h_{T-1}: (T*B, H)
    # a_t = x_t W_ih^T + h_{t-1} W_hh^T + ...  =>  over all steps at once:
    #   dx = dA W_ih,   dW_ih = dA^T X,   dW_hh = dA^T H_prev
    dx = xp.matmul(da2, w_ih).reshape(T, B, n_in) if needs_x else None     # (T, B, I)
    dw_ih = xp.matmul(da2.T, x2) if needs_w_ih else None                   # (4H, I)
    dw_hh = xp.matmul(da2.T, h_prev2) if needs_w_hh else None              # (4H, H)
    db = db_parts.sum(axis=0) if needs_bias else None       # (4H,) both biases add to a_t
    return dx, dh0, dc, dw_ih, dw_hh, db
