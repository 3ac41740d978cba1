"""Cross-entropy on class indices: the composite twin, then the Function that runs the kernel.

    lse_n = logsumexp(x_n),   q = (1 - e) onehot(t) + e / C    (the target distribution)
    loss_n = -sum_c q_nc w_c (x_nc - lse_n);   rows with t = ignore_index give 0
    'mean' divides by sum_n w_{t_n} over the kept rows (PyTorch's weighted mean)

Read the twin first: log_softmax, a gather of the target's log-probability, a weighted mean.
The Function computes loss and gradient from the saved log-sum-exp without keeping the (N, C)
probabilities, and must agree with the twin in value and gradient
(tests/test_op_cross_entropy.py). One difference, on purpose: with every row ignored,
'mean' gives 0 and no gradient (PyTorch and the twin give NaN). Second derivatives
(create_graph=True) are the twin's: the Function declares it as ``twin`` (see backprop.py).

Kernels: kernels/cross_entropy.py (NumPy reference, numba CPU, numba CUDA) for unweighted
classes; with class weights the two plain array functions at the end of this file run (the
log-softmax inside them still runs on kernels/softmax.py).

Shape legend: N rows, C classes.
"""
from ..autograd import Function
from ..kernels import cross_entropy as kernel
from ..kernels import softmax as softmax_kernel
from ..kernels.fastnp import array_module
from .elementwise import where
from .indexing import gather
from .reduce import sum
from .shape import reshape
from .softmax import log_softmax_composite


def cross_entropy_composite(x, target, weight=None, ignore_index=-100, reduction="mean",
                            label_smoothing=0.0):
    """Cross-entropy of logits x (N, C) and class indices target (N,) (an int array).

    loss_n = (1 - e) w_t (-logp_{n,t}) + (e / C) sum_c w_c (-logp_nc), 0 for ignored rows;
    'mean' divides by the sum of w_t over the kept rows (PyTorch's weighted mean).
    """
    xp = array_module(x.data)
    n, c = x.shape
    valid = target != ignore_index                                # (N,)
    t = xp.where(valid, target, 0)                                # (N,)
    logp = log_softmax_composite(x, -1)                           # (N, C)
    nll = -reshape(gather(logp, 1, t[:, None]), n)                # (N,)
    w_t = (weight[t] if weight is not None else xp.ones(n, dtype=x.dtype)) * valid
    w_t = w_t.astype(x.dtype)
    # the constant factors are Tensors (no gradient), so that each product can be
    # differentiated twice (create_graph=True)
    loss = nll * _constant((1 - label_smoothing) * w_t)
    if label_smoothing > 0:
        wl = logp * _constant(weight) if weight is not None else logp
        smooth = -sum(wl, -1)                                     # (N,)
        loss = loss + smooth * _constant((label_smoothing / c) * valid.astype(x.dtype))
    zero = xp.zeros((), dtype=x.dtype)
    loss = where(valid, loss, zero)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return sum(loss)
    return sum(loss / float(w_t.sum()))


def _constant(a):
    from ..tensor import Tensor
    return Tensor._wrap(a)


def _cross_entropy_twin(x, target, weight=None, ignore_index=-100, reduction="mean",
                        label_smoothing=0.0, impl="auto"):
    """The composite with the Function's arguments; a 'mean' over no weight (every row
    ignored) is 0 with no gradient, as the Function's."""
    if reduction == "mean":
        valid = target != ignore_index
        kept = weight[target[valid]].sum() if weight is not None else valid.sum()
        if kept == 0:
            return cross_entropy_composite(x, target, weight, ignore_index, "sum",
                                           label_smoothing) * 0
    return cross_entropy_composite(x, target, weight, ignore_index, reduction, label_smoothing)


class CrossEntropy(Function):
    """Cross-entropy of logits x (N, C) against class indices t (N,) (module docstring).

    dx_nc = g_n * (softmax(x_n)_c - q_nc) (times the weights), rebuilt from the saved lse.
    """

    twin = staticmethod(_cross_entropy_twin)

    def forward(self, x, target, weight=None, ignore_index=-100, reduction="mean",
                label_smoothing=0.0, impl="auto"):
        self.opts = dict(ignore_index=ignore_index, label_smoothing=label_smoothing,
                         reduction=reduction, impl=impl)
        self.target, self.weighted = target, weight is not None
        if self.weighted:
            loss, self.state = weighted_cross_entropy_forward(
                x, target, weight, ignore_index, reduction, label_smoothing, impl=impl)
            self.save_for_backward(*self.state["saved"])
            return loss
        loss, lse = kernel.cross_entropy_forward(x, target, **self.opts)  # () or (N,), (N,)
        self.save_for_backward(x, lse)
        return loss

    def backward(self, g):
        if self.weighted:
            dx = weighted_cross_entropy_backward(g, self.saved, self.state)
        else:
            x, lse = self.saved
            dx = kernel.cross_entropy_backward(x, self.target, lse, g, **self.opts)  # (N, C)
        return dx, None, None


def cross_entropy(x, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0, impl="auto"):
    """Logits x (N, C), checked class indices target (N,) (an int array), weight (C,) or None."""
    return CrossEntropy.apply(x, target, weight, ignore_index=ignore_index, reduction=reduction,
                              label_smoothing=label_smoothing, impl=impl)


# ----- with class weights: plain array functions (the kernel takes no weights) ---------------
#
#   logp = log_softmax(x),   q = (1 - e) onehot(t) + e / C
#   loss_n = (1 - e) w_t (-logp_{n,t}) + (e / C) sum_c w_c (-logp_nc)      (0 if ignored)
#   dx_nc = g_n (p_nc ((1 - e) w_t + (e / C) sum_c' w_c') - (1 - e) w_t [c = t] - (e / C) w_c)

def weighted_cross_entropy_forward(x, target, weight, ignore_index, reduction, label_smoothing,
                          impl="auto"):
    """Loss of logits x (N, C) for class indices target (N,) (checked by the caller), weight (C,).

    Returns (loss, state): loss is (N,) for reduction 'none', else 0-d; state carries what
    weighted_cross_entropy_backward needs (state["saved"] holds the arrays).
    """
    xp = array_module(x)
    n, c = x.shape
    eps = float(label_smoothing)
    logp = softmax_kernel.log_softmax_forward(x, impl=impl)       # (N, C)
    valid = target != ignore_index                          # (N,)
    t = xp.where(valid, target, 0)                          # (N,), safe to index with
    rows = xp.arange(n)
    w_t = weight[t] if weight is not None else xp.ones(n, dtype=x.dtype)      # (N,)
    w_t = w_t * valid
    loss = (1 - eps) * w_t * -logp[rows, t]                 # the one-hot part of q
    if eps > 0:                                             # the uniform part e / C of q
        smooth = -(logp @ weight) if weight is not None else -logp.sum(axis=-1)   # (N,)
        loss = loss + (eps / c) * smooth * valid
    loss = loss.astype(x.dtype, copy=False)
    denom = None
    if reduction == "none":
        out = loss
    elif reduction == "sum":
        out = loss.sum()
    else:  # mean over the kept rows, weighted (0 when every row is ignored, as the kernel)
        denom = w_t.sum()
        out = loss.sum() / denom if denom != 0 else loss.sum() * 0
    state = dict(saved=(logp, t, w_t, valid), weight=weight, eps=eps, reduction=reduction,
                 denom=denom)
    return xp.asarray(out, dtype=x.dtype), state


def weighted_cross_entropy_backward(g, saved, state):
    """dx (N, C) of weighted_cross_entropy_forward for the upstream gradient g."""
    logp, t, w_t, kept = saved
    weight, eps, reduction = state["weight"], state["eps"], state["reduction"]
    xp = array_module(logp)
    n, c = logp.shape
    if reduction == "none":
        gr = g * kept                                       # (N,)
    elif reduction == "sum":
        gr = xp.broadcast_to(g, (n,)) * kept
    else:
        denom = state["denom"]
        scale = g / denom if denom != 0 else g * 0          # all rows ignored: no gradient
        gr = xp.broadcast_to(scale, (n,)) * kept
    gr = gr.astype(logp.dtype, copy=False)
    # d loss_n / d x_nc = p_nc * sum_c' w_c' q_nc' - w_c q_nc
    total_w = float(weight.sum()) if weight is not None else float(c)
    a = (1 - eps) * w_t + (eps / c) * total_w * kept        # sum_c' w_c' q_nc'   (N,)
    dx = xp.exp(logp)                                       # p = softmax(x)      (N, C)
    dx *= (gr * a)[:, None]
    rows = xp.arange(n)
    dx[rows, t] -= gr * (1 - eps) * w_t                     # the one-hot part
    if eps > 0:                                             # the uniform part
        w_row = weight[None, :] if weight is not None else 1
        dx -= (gr * (eps / c))[:, None] * w_row
    return dx
