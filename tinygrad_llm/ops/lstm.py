"""The fused LSTM layer: one Function for a whole sequence, with backpropagation through time.

Shape legend: T time steps, B batch, I input size, H hidden size, G = 4H (the four gates side
by side in PyTorch's order i, f, g, o: columns [0, H), [H, 2H), [2H, 3H), [3H, 4H)).

    for t = 1 .. T:
        a_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh          (B, 4H) pre-activations
        i = sigmoid(a_i)     input gate:   how much of the candidate to write
        f = sigmoid(a_f)     forget gate:  how much of the old cell to keep
        g = tanh(a_g)        candidate cell values
        o = sigmoid(a_o)     output gate:  how much of the cell to show
        c_t = f * c_{t-1} + i * g
        h_t = o * tanh(c_t)

Forward: the input half x_t W_ih^T for all T steps is one GEMM, (T*B, I) @ (I, 4H); only the
recurrent half h_{t-1} W_hh^T has to be a GEMM per step, followed by one fused kernel that adds
the bias, applies the four nonlinearities and updates the cell (``_cell_forward_cpu``).

Backward (BPTT) walks t = T .. 1 carrying dh (to h_t from step t+1) and dc (to c_t):

    dh   = dy_t + da_{t+1} W_hh                      (the output's gradient + the recurrence)
    do   = dh * tanh(c_t)                            from h_t = o * tanh(c_t)
    dc   = dc + dh * o * (1 - tanh(c_t)^2)
    di, dg, df = dc * g, dc * i, dc * c_{t-1}        from c_t = f * c_{t-1} + i * g
    dc_{t-1} = dc * f
    da   = [di i(1-i), df f(1-f), dg (1-g^2), do o(1-o)]     sigmoid' = s(1-s), tanh' = 1-t^2

(the step kernel also sums da into the bias gradient), and then every weight gradient is one
GEMM over all steps at once: dW_ih = dA^T X, dW_hh = dA^T H_prev, dX = dA W_ih.

Threads: batch rows never interact, so on the CPU each thread takes a block of rows and runs
the whole time loop on it (no synchronisation per step); the large GEMMs are split by rows over
the kernels' thread pool (kernels/_blas.matmul). A Function has one output, so this one
returns (T + 1, B, H): rows 0 .. T-1 are h_1 .. h_T (the output sequence) and row T is c_T (a
view of one buffer that also holds h_0 in front, so that H_prev = h_0 .. h_{T-1} is contiguous
for dW_hh). ``lstm_layer`` slices it into (y, h_T, c_T).

The step kernels (ops/lstm_kernels.py) exist twice: a NumPy/CuPy reference (the
specification; used for CuPy arrays and under TINYGRAD_LLM_KERNELS=ref) and a numba @njit
version. The float32 numba kernel uses a polynomial exp (kernels/_fastmath.py) so that its loop
vectorizes; it is finite for pre-activations of any size (sigmoid from e^-|a|, tanh from
e^-2|a|).
"""
import numpy as np

from ..autograd import Function
from ..backend import get_array_module
from ..kernels import _blas
from ..kernels._blas import single_threaded_blas
from ..kernels._dispatch import choose_impl, empty
from .activation import sigmoid, tanh
from .indexing import chunk, stack
from .lstm_kernels import (_backward_loop_cpu, _backward_loop_ref, _forward_loop_cpu,
                           _forward_loop_ref, _threads)


# ---------------------------------------------------------------------------------------------
# The composite twin: one step built from primitive ops (autograd differentiates it), and the
# whole layer as a Python loop over it. Read these first; the Function below must agree.
# ---------------------------------------------------------------------------------------------

def lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    """One LSTM step from primitive ops: x (B, I), h, c (B, H) -> (h', c') each (B, H)."""
    gates = x @ w_ih.T + h @ w_hh.T                     # (B, 4H)
    if b_ih is not None:
        gates = gates + b_ih + b_hh
    a_i, a_f, a_g, a_o = chunk(gates, 4, dim=1)         # 4 x (B, H), PyTorch's order i f g o
    i, f, g, o = sigmoid(a_i), sigmoid(a_f), tanh(a_g), sigmoid(a_o)
    c_next = f * c + i * g
    h_next = o * tanh(c_next)
    return h_next, c_next


def lstm_layer_composite(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None):
    """The unfused twin of ``lstm_layer``: lstm_cell stepped over t in Python."""
    h, c = h0, c0
    hs = []
    for t in range(x.shape[0]):
        h, c = lstm_cell(x[t], h, c, w_ih, w_hh, b_ih, b_hh)
        hs.append(h)
    return stack(hs, dim=0), h, c                       # (T, B, H), (B, H), (B, H)


# ---------------------------------------------------------------------------------------------
# The Function
# ---------------------------------------------------------------------------------------------

class LSTMLayer(Function):
    """One LSTM layer over a whole sequence (equations and BPTT in the module docstring).

    forward(x (T, B, I), h0 (B, H), c0 (B, H), w_ih (4H, I), w_hh (4H, H), b_ih, b_hh (4H,)
    or None) -> (T + 1, B, H): h_1 .. h_T, then c_T.
    """

    def forward(self, x, h0, c0, w_ih, w_hh, b_ih, b_hh):
        xp = get_array_module(x)
        T, B, n_in = x.shape
        H, G = w_hh.shape[1], w_hh.shape[0]
        # numba kernels for float32/float64 NumPy arrays; the reference for the rest
        self.cpu = (choose_impl(x, h0, c0, w_ih, w_hh) == "cpu"
                    and x.dtype in (np.float32, np.float64))
        self.threads = _threads(B, T, H) if self.cpu else 1
        w_ih, w_hh = xp.ascontiguousarray(w_ih), xp.ascontiguousarray(w_hh)
        x2 = xp.ascontiguousarray(x.reshape(T * B, n_in))   # (T*B, I)
        # a_t = x_t W_ih^T + ...: the input half of every step at once, one GEMM
        gates = _blas.matmul(x2, w_ih.T).reshape(T, B, G)   # x_t W_ih^T, then [i f g o]
        if b_ih is not None:
            bias = b_ih + b_hh                              # (4H,) added inside the step kernel
        else:
            bias = xp.zeros(G, dtype=x.dtype)
        buf = empty((T + 2, B, H), x.dtype, xp)            # h_0, h_1 .. h_T, c_T
        cs = empty((T + 1, B, H), x.dtype, xp)             # c_0 .. c_T
        tanh_c = empty((T, B, H), x.dtype, xp)
        buf[0], cs[0] = h0, c0
        if not self.cpu:
            _forward_loop_ref(gates, w_hh.T, bias, buf, cs, tanh_c)
        else:
            with single_threaded_blas():
                _forward_loop_cpu(gates, w_hh.T, bias, buf, cs, tanh_c, self.threads)
        buf[T + 1] = cs[T]
        y = buf[1:]                                         # (T + 1, B, H) view: the output
        # x (as given) is saved too, so that autograd's version check covers the input
        self.save_for_backward(x2, w_ih, w_hh, gates, cs, tanh_c, buf, y, x)
        self.has_bias = b_ih is not None
        return y

    def backward(self, grad):
        x2, w_ih, w_hh, acts, cs, tanh_c, buf, _, _ = self.saved
        xp = get_array_module(grad)
        T, B, G = acts.shape
        H, n_in, n = G // 4, x2.shape[1], self.threads
        grad = xp.ascontiguousarray(grad)                   # (T + 1, B, H)
        da = empty((T, B, G), acts.dtype, xp)              # dL/da_t for every step
        dc = grad[T].copy()                                 # dL/dc_T, then dL/dc_0
        dh0 = xp.empty((B, H), dtype=acts.dtype)            # dL/dh_0
        db_parts = xp.zeros((n, G), dtype=acts.dtype)       # bias gradient per batch chunk
        if not self.cpu:
            _backward_loop_ref(grad, acts, cs, tanh_c, w_hh, da, dh0, dc, db_parts)
        else:
            with single_threaded_blas():
                _backward_loop_cpu(grad, acts, cs, tanh_c, w_hh, da, dh0, dc, db_parts)
        need_x, need_h0, need_c0, need_wih, need_whh, need_bih, need_bhh = self.needs_input_grad
        da2 = da.reshape(T * B, G)                          # (T*B, 4H)
        h_prev2 = buf[:T].reshape(T * B, H)                 # h_0 .. h_{T-1}: (T*B, H)
        # a_t = x_t W_ih^T + h_{t-1} W_hh^T + ...  =>  over all steps at once:
        #   dx = dA W_ih,   dW_ih = dA^T X,   dW_hh = dA^T H_prev
        dx2 = _blas.matmul(da2, w_ih) if need_x else None               # (T*B, I)
        dw_ih = _blas.matmul(da2.T, x2) if need_wih else None           # (4H, I)
        dw_hh = _blas.matmul(da2.T, h_prev2) if need_whh else None      # (4H, H)
        dx = dx2.reshape(T, B, n_in) if need_x else None
        db_ih = db_hh = None
        if self.has_bias and (need_bih or need_bhh):
            db = db_parts.sum(axis=0)                       # (4H,) both biases add to a_t
            db_ih = db if need_bih else None
            db_hh = db.copy() if need_bhh else None
        return (dx, dh0 if need_h0 else None, dc if need_c0 else None,
                dw_ih if need_wih else None, dw_hh if need_whh else None, db_ih, db_hh)


def lstm_layer(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None):
    """One LSTM layer, time-major: x (T, B, I) -> (y (T, B, H), h_T (B, H), c_T (B, H))."""
    _check_layer_args(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
    packed = LSTMLayer.apply(x, h0, c0, w_ih, w_hh, b_ih, b_hh)   # (T + 1, B, H)
    T = x.shape[0]
    return packed[:T], packed[T - 1], packed[T]


def _check_layer_args(x, h0, c0, w_ih, w_hh, b_ih, b_hh):
    if x.ndim != 3:
        raise ValueError(f"lstm_layer: expected x of shape (T, B, I), got {tuple(x.shape)}")
    T, B, n_in = x.shape
    if T == 0:
        raise ValueError("lstm_layer: the sequence is empty (T = 0)")
    H = w_hh.shape[-1]
    expected = {"w_ih": (w_ih, (4 * H, n_in)), "w_hh": (w_hh, (4 * H, H)),
                "h0": (h0, (B, H)), "c0": (c0, (B, H))}
    if b_ih is not None or b_hh is not None:
        expected["b_ih"] = (b_ih, (4 * H,))
        expected["b_hh"] = (b_hh, (4 * H,))
    for name, (t, shape) in expected.items():
        if t is None or tuple(t.shape) != shape:
            got = None if t is None else tuple(t.shape)
            raise ValueError(f"lstm_layer: {name} has shape {got}, expected {shape} for "
                             f"x of shape {tuple(x.shape)} and hidden size {H}")
        if t.dtype != x.dtype:
            raise TypeError(f"lstm_layer: {name} has dtype {t.dtype} but x has {x.dtype}")
