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

A Function has one output, so this one returns (T + 1, B, H): rows 0 .. T-1 are h_1 .. h_T
(the output sequence) and row T is c_T; ``lstm_layer`` slices it into (y, h_T, c_T).
Its second derivatives (create_graph=True) are those of the composite twin (``twin``, which
backprop.py differentiates), since the kernel's backward is written on raw arrays only.

Kernel: kernels/lstm.py (the step as a NumPy reference and as a fused numba loop, the time
loops, and the GEMMs over all steps).
"""
from ..autograd import Function
from ..kernels import lstm as kernel
from .activation import sigmoid, tanh
from .indexing import cat, chunk, stack


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


def _lstm_layer_twin(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None):
    """lstm_layer_composite packed as the Function's output: (T + 1, B, H) = h_1 .. h_T, c_T."""
    y, _, c = lstm_layer_composite(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
    return cat([y, stack([c], dim=0)], dim=0)


# ---------------------------------------------------------------------------------------------
# The Function
# ---------------------------------------------------------------------------------------------

class LSTMLayer(Function):
    """One LSTM layer over a whole sequence (equations and BPTT in the module docstring).

    forward(x (T, B, I), h0 (B, H), c0 (B, H), w_ih (4H, I), w_hh (4H, H), b_ih, b_hh (4H,)
    or None) -> (T + 1, B, H): h_1 .. h_T, then c_T.
    """

    twin = staticmethod(_lstm_layer_twin)

    def forward(self, x, h0, c0, w_ih, w_hh, b_ih, b_hh):
        bias = None if b_ih is None else b_ih + b_hh           # (4H,) both add to a_t
        y, state = kernel.lstm_forward(x, h0, c0, w_ih, w_hh, bias)
        # x (as given) and y are saved too, so that autograd's version checks cover them
        self.save_for_backward(x, y, *state)
        self.has_bias = b_ih is not None
        return y                                                # (T + 1, B, H)

    def backward(self, grad):
        need_x, need_h0, need_c0, need_wih, need_whh, need_bih, need_bhh = self.needs_input_grad
        need_b = self.has_bias and (need_bih or need_bhh)
        dx, dh0, dc0, dw_ih, dw_hh, db = kernel.lstm_backward(
            grad, self.saved[2:], need_x, need_wih, need_whh, need_b)
        db_ih = db if need_b and need_bih else None
        db_hh = db.copy() if need_b and need_bhh else None
        return (dx, dh0 if need_h0 else None, dc0 if need_c0 else None,
                dw_ih, dw_hh, db_ih, db_hh)


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
