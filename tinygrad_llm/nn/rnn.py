"""Recurrent layers with PyTorch's names and parameter layouts: LSTM and LSTMCell.

Shape legend: T time steps, B batch, I input size, H hidden size, L num_layers.

    LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0)
        input (T, B, I), or (B, T, I) with batch_first, or unbatched (T, I)
        hx = (h_0, c_0), each (L, B, H) (or (L, H) unbatched); zeros when not given
        -> output (T, B, H) (the last layer's h_t at every t; (B, T, H) with batch_first),
           (h_n, c_n) each (L, B, H): every layer's final state
    LSTMCell(input_size, hidden_size, bias=True)
        input (B, I) or (I,), hx = (h, c) each (B, H) -> (h', c')

Parameters of layer k (PyTorch's names and layouts, gates stacked in the order i, f, g, o):
weight_ih_l{k} (4H, I) for k = 0 and (4H, H) above, weight_hh_l{k} (4H, H), bias_ih_l{k} and
bias_hh_l{k} (4H,). All start as U(-1/sqrt(H), 1/sqrt(H)) (PyTorch's default), drawn from
``generator`` (a seeded tinygrad_llm.Generator; the default one when None).

The equations (c' = f * c + i * g, h' = o * tanh(c'), ...) are in ops/lstm.py. LSTM runs each
layer as one fused Function with hand-written backpropagation through time (``lstm_layer``);
``forward(..., fused=False)`` runs the same maths as LSTMCell's primitive ops stepped in a
Python loop, which is slower but is what autograd would do without the fused op. Dropout with
probability ``dropout`` is applied to the outputs of every layer but the last, in training mode
only. bidirectional=True and proj_size are not implemented.
"""
import math
import warnings


from .. import functional as F
from ..backend import get_array_module
from ..ops import stack
from ..ops.lstm import lstm_cell, lstm_layer, lstm_layer_composite
from ..tensor import Tensor
from . import init
from .layers import _empty
from .module import Module


def _init_uniform(module, hidden_size, generator):
    """PyTorch's RNN init: every parameter ~ U(-1/sqrt(H), 1/sqrt(H)), in registration order."""
    bound = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0.0
    for p in module.parameters():
        init.uniform_(p, -bound, bound, generator=generator)


def _zeros_state(like, shape):
    xp = get_array_module(like.data)
    return Tensor._wrap(xp.zeros(shape, dtype=like.dtype))


class LSTM(Module):
    """A multi-layer LSTM over whole sequences (see the module docstring for shapes)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None,
                 generator=None):
        super().__init__()
        if bidirectional:
            raise NotImplementedError("LSTM: bidirectional=True is not implemented")
        if proj_size:
            raise NotImplementedError("LSTM: proj_size is not implemented")
        if not isinstance(hidden_size, int) or hidden_size <= 0:
            raise ValueError(f"LSTM: hidden_size must be a positive int, got {hidden_size!r}")
        if not isinstance(num_layers, int) or num_layers <= 0:
            raise ValueError(f"LSTM: num_layers must be a positive int, got {num_layers!r}")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"LSTM: dropout must be in [0, 1], got {dropout}")
        if dropout > 0 and num_layers == 1:
            warnings.warn("LSTM: dropout acts between layers, so with num_layers=1 it does "
                          "nothing", UserWarning, stacklevel=2)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.generator = generator  # also draws the dropout masks
        G = 4 * hidden_size
        for k in range(num_layers):
            n_in = input_size if k == 0 else hidden_size
            setattr(self, f"weight_ih_l{k}", _empty((G, n_in), device, dtype))
            setattr(self, f"weight_hh_l{k}", _empty((G, hidden_size), device, dtype))
            if bias:
                setattr(self, f"bias_ih_l{k}", _empty((G,), device, dtype))
                setattr(self, f"bias_hh_l{k}", _empty((G,), device, dtype))
        self.reset_parameters(generator)

    def reset_parameters(self, generator=None):
        _init_uniform(self, self.hidden_size, generator)

    def flatten_parameters(self):
        """PyTorch compacts cuDNN weights here; the fused layer reads the parameters as they
        are, so this does nothing (kept so that PyTorch code runs unchanged)."""

    def layer_parameters(self, k):
        """(weight_ih, weight_hh, bias_ih, bias_hh) of layer k (biases None without bias)."""
        get = self._parameters.get
        return (get(f"weight_ih_l{k}"), get(f"weight_hh_l{k}"), get(f"bias_ih_l{k}"),
                get(f"bias_hh_l{k}"))

    def forward(self, input, hx=None, *, fused=True):
        """input -> (output, (h_n, c_n)); ``fused=False`` steps LSTMCell's ops instead."""
        x, batched = self._time_major(input)                  # (T, B, I)
        L, H = self.num_layers, self.hidden_size
        B = x.shape[1]
        h0, c0 = self._initial_state(hx, x, batched, (L, B, H))
        layer = lstm_layer if fused else lstm_layer_composite
        h_n, c_n = [], []
        for k in range(L):
            y, h, c = layer(x, h0[k], c0[k], *self.layer_parameters(k))  # (T, B, H)
            h_n.append(h)
            c_n.append(c)
            if k < L - 1 and self.training and self.dropout > 0:
                y = F.dropout(y, self.dropout, True, generator=self.generator)
            x = y
        output = x                                            # (T, B, H)
        h_n, c_n = stack(h_n, dim=0), stack(c_n, dim=0)       # (L, B, H) each
        if not batched:
            return output.squeeze(1), (h_n.squeeze(1), c_n.squeeze(1))   # (T, H), (L, H)
        if self.batch_first:
            output = output.transpose(0, 1)                   # (B, T, H)
        return output, (h_n, c_n)

    def _time_major(self, input):
        if input.ndim not in (2, 3):
            raise ValueError(f"LSTM: expected input of 2 (unbatched) or 3 dims, got shape "
                             f"{tuple(input.shape)}")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"LSTM: input of shape {tuple(input.shape)} has {input.shape[-1]} "
                             f"features, expected input_size={self.input_size}")
        if input.ndim == 2:
            return input.unsqueeze(1), False                  # (T, 1, I)
        if self.batch_first:
            return input.transpose(0, 1), True                # (T, B, I)
        return input, True

    def _initial_state(self, hx, x, batched, shape):
        if hx is None:
            return _zeros_state(x, shape), _zeros_state(x, shape)
        h0, c0 = hx
        want = shape if batched else (shape[0], shape[2])
        for name, t in (("h_0", h0), ("c_0", c0)):
            if tuple(t.shape) != want:
                raise ValueError(f"LSTM: {name} has shape {tuple(t.shape)}, expected {want} "
                                 f"for input of shape {tuple(x.shape)} (time-major)")
        if not batched:
            h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)         # (L, 1, H)
        return h0, c0

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        return s


class LSTMCell(Module):
    """One LSTM step, made of primitive ops (the readable twin of the fused LSTM layer)."""

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None,
                 generator=None):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        G = 4 * hidden_size
        self.weight_ih = _empty((G, input_size), device, dtype)
        self.weight_hh = _empty((G, hidden_size), device, dtype)
        if bias:
            self.bias_ih = _empty((G,), device, dtype)
            self.bias_hh = _empty((G,), device, dtype)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters(generator)

    def reset_parameters(self, generator=None):
        _init_uniform(self, self.hidden_size, generator)

    def forward(self, input, hx=None):
        """input (B, I) or (I,), hx = (h, c) -> (h', c')."""
        if input.ndim not in (1, 2) or input.shape[-1] != self.input_size:
            raise ValueError(f"LSTMCell: expected input of shape (B, {self.input_size}) or "
                             f"({self.input_size},), got {tuple(input.shape)}")
        batched = input.ndim == 2
        x = input if batched else input.unsqueeze(0)          # (B, I)
        shape = (x.shape[0], self.hidden_size)
        if hx is None:
            h, c = _zeros_state(x, shape), _zeros_state(x, shape)
        else:
            h, c = hx
            if not batched:
                h, c = h.unsqueeze(0), c.unsqueeze(0)
            for name, t in (("h", h), ("c", c)):
                if tuple(t.shape) != shape:
                    raise ValueError(f"LSTMCell: {name} has shape {tuple(t.shape)}, expected "
                                     f"{shape} for input of shape {tuple(input.shape)}")
        h, c = lstm_cell(x, h, c, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        if not batched:
            return h.squeeze(0), c.squeeze(0)
        return h, c

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")
