"""Fused ops: autograd Functions whose forward and backward call the kernels in kernels/.

    Softmax, LogSoftmax        kernels/softmax.py        (last axis; other dims by a transpose)
    ScaledDotProductAttention  kernels/attention.py      (flash-style tiles, lse saved)
    LayerNorm                  kernels/layer_norm.py
    CrossEntropy               kernels/cross_entropy.py  (class weights: fused_ce_weighted.py)
    Linear, Embedding, Dropout one Function each instead of three or four primitive ops
    GeluTanh                   GELU (tanh form) computed in place, twin of ops/activation.py

Each Function is the fast twin of a composition of primitive ops (ops/composite.py and
ops/fused_composite.py); the tests assert that both agree in value and gradient in float64.
The kernel implementation (NumPy reference, numba CPU, numba CUDA) is chosen by the kernels'
own dispatch: the array type, the ``impl=`` argument passed through here ("auto" by default),
and the environment variable TINYGRAD_LLM_KERNELS=ref.

Shape legend: N rows, C classes / features (last axis), B batch, H heads, Tq query and Tk key
positions, D head size.
"""

from ..autograd import Function
from ..backend import get_array_module
from ..kernels import _blas
from ..kernels import attention as _attn
from ..kernels import cross_entropy as _ce
from ..kernels import embedding as _emb
from ..kernels import gelu as _gelu
from ..kernels import layer_norm as _ln
from ..kernels import softmax as _softmax
from . import fused_ce_weighted as _weighted


# ----- softmax and log-softmax over the last axis -------------------------------------------

class Softmax(Function):
    """y_j = e^{x_j - m} / sum_k e^{x_k - m}  (m = max x, all -inf row -> zeros)

    dx = y * (dy - sum_k dy_k y_k)   (the Jacobian diag(y) - y y^T applied to dy)
    """

    def forward(self, x, impl="auto"):
        self.impl = impl
        y = _softmax.softmax_forward(x, impl=impl)                   # (..., C)
        self.save_for_backward(y)  # the derivative is a function of the output
        return y

    def backward(self, g):
        (y,) = self.saved
        return _softmax.softmax_backward(y, g, impl=self.impl)       # (..., C)


class LogSoftmax(Function):
    """y_j = x_j - logsumexp(x);   dx = dy - e^y * sum_k dy_k   (e^y = softmax(x))."""

    def forward(self, x, impl="auto"):
        self.impl = impl
        y = _softmax.log_softmax_forward(x, impl=impl)               # (..., C)
        self.save_for_backward(y)
        return y

    def backward(self, g):
        (y,) = self.saved
        return _softmax.log_softmax_backward(y, g, impl=self.impl)   # (..., C)


# ----- layer normalization ------------------------------------------------------------------

class LayerNorm(Function):
    """Normalize each row of C features, then scale and shift:

        mu = mean(x),  var = mean((x - mu)^2),  rstd = 1 / sqrt(var + eps)
        xhat = (x - mu) * rstd,   y = xhat * w + b

    Backward (per row, with dxhat = dy * w):
        dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
        dw = sum over rows of dy * xhat,   db = sum over rows of dy
    A constant row has var = 0: xhat = 0, y = b and dx = (dxhat - mean(dxhat)) / sqrt(eps),
    finite (as in PyTorch).
    """

    def forward(self, x, weight, bias, eps=1e-5, impl="auto"):
        self.impl, self.eps = impl, eps
        self.has_bias = bias is not None
        y, mean, rstd = _ln.layer_norm_forward(x, weight, bias, eps, impl=impl)  # (..., C)
        self.save_for_backward(x, weight, mean, rstd)    # mean, rstd (...,): one per row
        return y

    def backward(self, g):
        x, weight, mean, rstd = self.saved
        return _ln.layer_norm_backward(g, x, weight, mean, rstd, has_bias=self.has_bias,
                                       impl=self.impl)   # dx (..., C), dw (C,), db (C,)


# ----- scaled dot-product attention ---------------------------------------------------------

class ScaledDotProductAttention(Function):
    """out = softmax(Q K^T * scale + M) V, per batch and head; Q (B, H, Tq, D), K, V (B, H, Tk, D).

    M combines the causal mask (bottom-right aligned), the key padding mask (True = ignore)
    and an additive float mask; it is a constant (no gradient). With P = softmax(S) and
    Di = sum_d dO_id O_id:
        dV = P^T dO,   dP = dO V^T,   dS = P * (dP - Di),   dQ = dS K scale,   dK = dS^T Q scale
    The kernel keeps only lse = logsumexp of each score row and rebuilds P from it. A row
    with no visible key gives out = 0 and no gradient (no NaN).
    """

    def forward(self, q, k, v, causal=False, key_padding_mask=None, attn_mask=None,
                scale=None, impl="auto"):
        xp = get_array_module(q, k, v)
        q, k, v = (xp.ascontiguousarray(a) for a in (q, k, v))     # (B, H, T, D) each
        self.opts = dict(causal=causal, key_padding_mask=key_padding_mask,
                         attn_mask=attn_mask, scale=scale, impl=impl)
        out, lse = _attn.attention_forward(q, k, v, **self.opts)    # (B, H, Tq, D), (B, H, Tq)
        self.save_for_backward(q, k, v, out, lse)
        return out

    def backward(self, g):
        q, k, v, out, lse = self.saved
        return _attn.attention_backward(q, k, v, out, lse, g, **self.opts)


class PackedSelfAttention(ScaledDotProductAttention):
    """ScaledDotProductAttention on one packed tensor qkv (3, B, H, T, D) = stack(Q, K, V).

    Self-attention computes Q, K, V with one GEMM (B, T, 3E) and views them as (3, B, H, T, D);
    taking that tensor whole spares the three slices (each a zero-filled gradient of the full
    size in backward): the gradient dqkv is written by the kernel straight into one buffer.
    """

    def forward(self, qkv, causal=False, key_padding_mask=None, attn_mask=None, scale=None,
                impl="auto"):
        return super().forward(qkv[0], qkv[1], qkv[2], causal, key_padding_mask, attn_mask,
                               scale, impl)

    def backward(self, g):
        q, k, v, out, lse = self.saved
        xp = get_array_module(g)
        dqkv = xp.empty((3,) + q.shape, dtype=q.dtype)                 # (3, B, H, T, D)
        _attn.attention_backward(q, k, v, out, lse, g, dq=dqkv[0], dk=dqkv[1], dv=dqkv[2],
                                 **self.opts)
        return dqkv


# ----- cross-entropy on class indices ---------------------------------------------------------

class CrossEntropy(Function):
    """Cross-entropy of logits x (N, C) against class indices t (N,), label smoothing e:

        lse_n = logsumexp(x_n),   q = (1 - e) onehot(t) + e / C    (the target distribution)
        loss_n = -sum_c q_nc (x_nc - lse_n);   rows with t = ignore_index give 0
        'mean' divides by the number of kept rows (0 if there is none: no NaN)

    dx_nc = g_n * (softmax(x_n)_c - q_nc), rebuilt from the saved lse (no (N, C) buffer kept).
    With class weights w the NumPy path of fused_ce_weighted.py runs (the kernel has none).
    """

    def forward(self, x, target, weight=None, ignore_index=-100, reduction="mean",
                label_smoothing=0.0, impl="auto"):
        self.opts = dict(ignore_index=ignore_index, label_smoothing=label_smoothing,
                         reduction=reduction, impl=impl)
        self.target, self.weighted = target, weight is not None
        if self.weighted:
            loss, self.state = _weighted.cross_entropy_forward(
                x, target, weight, ignore_index, reduction, label_smoothing, impl=impl)
            self.save_for_backward(*self.state["saved"])
            return loss
        loss, lse = _ce.cross_entropy_forward(x, target, **self.opts)  # () or (N,), (N,)
        self.save_for_backward(x, lse)
        return loss

    def backward(self, g):
        if self.weighted:
            dx = _weighted.cross_entropy_backward(g, self.saved, self.state)
        else:
            x, lse = self.saved
            dx = _ce.cross_entropy_backward(x, self.target, lse, g, **self.opts)   # (N, C)
        return dx, None, None


# ----- small fusions of primitive ops ---------------------------------------------------------

class Linear(Function):
    """y = x W^T + b   with W (out, in) as in PyTorch; x (..., in), y (..., out).

    dx = dy W,   dW = dy^T x  (summed over all rows),   db = sum of dy over all rows
    One Function instead of transpose + matmul + add: one GEMM per gradient, no unbroadcast.
    """

    def forward(self, x, weight, bias=None):
        self.save_for_backward(x, weight)
        x2 = x.reshape(-1, x.shape[-1])                               # (N, in)
        y = _blas.matmul(x2, weight.T)                                # (N, out)
        if bias is not None:
            y += bias
        return y.reshape(x.shape[:-1] + (weight.shape[0],))          # (..., out)

    def backward(self, g):
        x, weight = self.saved
        need_x, need_w, need_b = self.needs_input_grad
        g2 = g.reshape(-1, g.shape[-1])                               # (N, out)
        dx = _blas.matmul(g2, weight).reshape(x.shape) if need_x else None    # (..., in)
        dw = _blas.matmul(g2.T, x.reshape(-1, x.shape[-1])) if need_w else None  # (out, in)
        db = g2.sum(axis=0) if need_b else None                       # (out,)
        return dx, dw, db


class Embedding(Function):
    """y[...] = W[ids[...]]   (a row lookup);   dW[i] = sum of dy over positions with ids == i.

    Rows equal to padding_idx get no gradient. The ids are checked by the caller.
    """

    def forward(self, weight, ids, padding_idx=None):
        self.ids, self.padding_idx, self.w_shape = ids, padding_idx, weight.shape
        return weight[ids]                                            # (..., C)

    def backward(self, g):
        ids = self.ids.reshape(-1)                                    # (N,)
        g2 = g.reshape(-1, g.shape[-1])                               # (N, C)
        dw = _emb.embedding_backward(ids, g2, self.w_shape[0], padding_idx=self.padding_idx)
        return dw, None, None


class GeluTanh(Function):
    """GELU, tanh approximation (GPT-2's), the same formula as ops/activation.py's GeluTanh:

        u = sqrt(2/pi) (x + 0.044715 x^3),   t = tanh(u),   y = 0.5 x (1 + t)
        dy/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)

    one pass over memory per direction (kernels/gelu.py) instead of the dozen elementwise
    passes of the unfused version; t is saved so the backward needs no second tanh.
    """

    def forward(self, x):
        y, t = _gelu.gelu_tanh_forward(x)
        self.save_for_backward(x, t)
        return y

    def backward(self, g):
        x, t = self.saved
        return _gelu.gelu_tanh_backward(x, t, g)


class Dropout(Function):
    """y = x * keep / (1 - p)   (keep ~ Bernoulli(1 - p));   dx = dy * keep / (1 - p)."""

    def forward(self, x, multiplier):
        self.multiplier = multiplier                                  # keep / (1 - p)
        return x * multiplier

    def backward(self, g):
        return g * self.multiplier, None
