"""Loss functions with PyTorch's names and semantics (the Module classes are in nn/loss.py).

Shape legend: N batch, C classes, D embedding size, K negative samples, d1.. extra axes.

    mse_loss(x, y)                       (x - y)^2
    binary_cross_entropy(p, y)           -(y log p + (1 - y) log(1 - p)), each log clamped >= -100
    binary_cross_entropy_with_logits     (1 - y) x + (1 + (pos_weight - 1) y) softplus(-x)
    cross_entropy(x, target)             F.cross_entropy: class indices (the fused kernel) or
                                         class probabilities: -sum_c y_c log_softmax(x)_c
    nll_loss(logp, target)               -weight[t] * logp[t], rows with t = ignore_index skipped
    cosine_embedding_loss(x1, x2, y)     1 - cos(x1, x2) if y = 1, max(0, cos - margin) if y = -1
    negative_sampling_loss(v, u, u_neg)  word2vec SGNS: -log s(u . v) - sum_k log s(-u_k . v)
    l1_penalty(params), l2_penalty(params)   sum |w| and sum w^2 (L1 / L2 regularization)

``reduction`` is 'mean' (the default), 'sum' or 'none' (the per-element losses). Bad input
raises: shapes that should match but do not give a ValueError naming both, BCE probabilities or
targets outside [0, 1] a ValueError, class indices out of range an IndexError.

Most losses are compositions of primitive ops (so autograd differentiates them and a learner
can read them as formulas). Binary cross-entropy on probabilities is one Function because its
gradient must stay finite at p = 0 and p = 1, where the clamped logs are flat.
"""
import numpy as np

from . import functional as F
from .autograd import Function, records_graph
from .backend import get_array_module
from .ops import clamp, gather, softplus, where
from .tensor import Tensor, data_of

REDUCTIONS = ("mean", "sum", "none")


def _reduce(loss, reduction):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _check_reduction(name, reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _same_shape(name, a, b, a_name="input", b_name="target"):
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"{name}: {a_name} of shape {tuple(a.shape)} and {b_name} of shape "
                         f"{tuple(b.shape)} must have the same shape")


def _as_tensor(value, like):
    """A Tensor with ``like``'s dtype and device (a float Tensor that requires grad is cast
    differentiably; arrays, lists and numbers become constants)."""
    if isinstance(value, Tensor):
        return value if value.dtype == like.dtype else value.to(like.dtype)
    xp = get_array_module(like.data)
    return Tensor._wrap(xp.asarray(value, dtype=like.dtype))


# ----- regression -----------------------------------------------------------------------------

def mse_loss(input, target, reduction="mean"):
    """l = (x - y)^2  (the mean is MSE = (1/n) sum (y_i - y^_i)^2)."""
    _check_reduction("mse_loss", reduction)
    target = _as_tensor(target, input)
    _same_shape("mse_loss", input, target)
    diff = input - target
    return _reduce(diff * diff, reduction)


# ----- binary classification ------------------------------------------------------------------

def _clamped_logs(xp, p):
    """(max(log p, -100), max(log(1 - p), -100)): log(0) = -inf becomes -100."""
    with np.errstate(divide="ignore"):
        return xp.maximum(xp.log(p), -100), xp.maximum(xp.log1p(-p), -100)


class BinaryCrossEntropy(Function):
    """l = -(y * max(log p, -100) + (1 - y) * max(log(1 - p), -100))   (elementwise)

    dl/dp = (p - y) / max(p (1 - p), 1e-12)   (PyTorch's formula: finite at p = 0 and p = 1)
    dl/dy = max(log(1 - p), -100) - max(log p, -100)
    """

    def forward(self, p, y):
        self.logs = log_p, log_1mp = _clamped_logs(get_array_module(p), p)
        self.save_for_backward(p, y)
        return -(y * log_p + (1 - y) * log_1mp)

    def backward(self, g):
        p, y = self.saved
        xp = get_array_module(g)
        dp = dy = None
        if self.needs_input_grad[0]:
            # l = -y log p - (1 - y) log(1 - p)  =>  dl/dp = -y/p + (1 - y)/(1 - p)
            #                                          = (p - y) / (p (1 - p))
            dp = g * (p - y) / xp.maximum(p * (1 - p), 1e-12)
        if self.needs_input_grad[1]:
            # l is linear in y: dl/dy = -log p + log(1 - p); the logs are recomputed from the
            # Tensor p when this backward is itself differentiated (create_graph=True)
            log_p, log_1mp = _clamped_logs(xp, p) if records_graph(g) else self.logs
            dy = g * (log_1mp - log_p)
        return dp, dy

    def release(self):
        super().release()
        self.logs = None


def _check_unit_interval(name, what, a):
    xp = get_array_module(a)
    if a.size and not bool(xp.all((a >= 0) & (a <= 1))):
        bad = a[~((a >= 0) & (a <= 1))].reshape(-1)[0]
        raise ValueError(f"{name}: all elements of {what} should be between 0 and 1, found "
                         f"{float(bad)!r}")


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """BCE on probabilities p = input in [0, 1] (apply sigmoid first, or better use
    binary_cross_entropy_with_logits). The logs are clamped at -100, as in PyTorch."""
    _check_reduction("binary_cross_entropy", reduction)
    target = _as_tensor(target, input)
    _same_shape("binary_cross_entropy", input, target)
    _check_unit_interval("binary_cross_entropy", "input", input.data)
    _check_unit_interval("binary_cross_entropy", "target", target.data)
    loss = BinaryCrossEntropy.apply(input, target)
    if weight is not None:
        loss = loss * _as_tensor(weight, input)
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean",
                                     pos_weight=None):
    """BCE on logits x, with p = sigmoid(x) never formed (stable for logits of any size):

        -[w_p y log s(x) + (1 - y) log(1 - s(x))]  =  (1 - y) x + (1 + (w_p - 1) y) softplus(-x)

    using -log s(x) = softplus(-x) and -log(1 - s(x)) = x + softplus(-x). pos_weight w_p
    (broadcast along the last axis, one per class) weighs the positive term.
    """
    _check_reduction("binary_cross_entropy_with_logits", reduction)
    target = _as_tensor(target, input)
    _same_shape("binary_cross_entropy_with_logits", input, target)
    neg_log_sigmoid = softplus(-input)                      # -log s(x), stable
    if pos_weight is None:
        loss = (1 - target) * input + neg_log_sigmoid
    else:
        log_weight = (_as_tensor(pos_weight, input) - 1) * target + 1
        loss = (1 - target) * input + log_weight * neg_log_sigmoid
    if weight is not None:
        loss = loss * _as_tensor(weight, input)
    return _reduce(loss, reduction)


# ----- multi-class classification -------------------------------------------------------------

def _class_dim(input, name):
    if input.ndim == 0:
        raise ValueError(f"{name}: input must have at least 1 dim (C,), got a 0-d tensor")
    return 0 if input.ndim == 1 else 1


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0):
    """F.cross_entropy (class indices or class probabilities) with positional arguments."""
    return F.cross_entropy(input, target, weight, ignore_index=ignore_index,
                           reduction=reduction, label_smoothing=label_smoothing)


def _check_class_targets(name, input, t, dim, ignore_index):
    xp = get_array_module(t)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{name}: target must hold class indices (integers), got {t.dtype}")
    expected = tuple(input.shape[:dim]) + tuple(input.shape[dim + 1:])
    if tuple(t.shape) != expected:
        raise ValueError(f"{name}: target of shape {tuple(t.shape)} does not match the input "
                         f"of shape {tuple(input.shape)} (expected target shape {expected})")
    C = input.shape[dim]
    bad = (t != ignore_index) & ((t < 0) | (t >= C))
    if bool(bad.any()):
        raise IndexError(f"{name}: target {int(t[bad].reshape(-1)[0])} is out of bounds for "
                         f"{C} classes (valid: 0..{C - 1}, or ignore_index={ignore_index})")
    return xp


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood of log-probabilities (N, C, d1..) or (C,) and class indices:

        l_n = -w[t_n] * input[n, t_n]   (0 where t_n == ignore_index)
        'mean' = sum_n l_n / sum_n w[t_n] over the kept rows (NaN when every row is ignored).
    """
    _check_reduction("nll_loss", reduction)
    dim = _class_dim(input, "nll_loss")
    xp = get_array_module(input.data)
    t = xp.asarray(data_of(target))
    _check_class_targets("nll_loss", input, t, dim, ignore_index)
    keep = t != ignore_index
    safe = xp.where(keep, t, 0).astype(np.int64)            # ignored rows read class 0, weight 0
    picked = gather(input, dim, xp.expand_dims(safe, dim)).squeeze(dim)   # (N, d1..)
    w = keep.astype(input.dtype)
    if weight is not None:
        w = w * xp.asarray(data_of(weight), dtype=input.dtype)[safe]
    loss = -picked * _as_tensor(w, input)         # a constant Tensor: differentiable twice
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):  # all ignored: 0 / 0 = NaN
            return (loss / float(w.sum())).sum()
    return _reduce(loss, reduction)


# ----- embeddings -----------------------------------------------------------------------------

COSINE_EPS = 1e-12  # PyTorch's EPSILON inside cosine_embedding_loss


def cosine_embedding_loss(input1, input2, target, margin=0.0, reduction="mean"):
    """cos = x1 . x2 / sqrt((|x1|^2 + eps)(|x2|^2 + eps)) along the last axis, then

        l = 1 - cos             where y = 1   (pull similar pairs together)
        l = max(0, cos - margin) where y = -1  (push dissimilar pairs below the margin)

    input1, input2 (N, D) with target (N,), or (D,) with a 0-d target; y must be 1 or -1.
    """
    _check_reduction("cosine_embedding_loss", reduction)
    _same_shape("cosine_embedding_loss", input1, input2, "input1", "input2")
    if input1.ndim not in (1, 2):
        raise ValueError(f"cosine_embedding_loss: inputs must be (N, D) or (D,), got shape "
                         f"{tuple(input1.shape)}")
    xp = get_array_module(input1.data)
    t = xp.asarray(data_of(target))
    if tuple(t.shape) != tuple(input1.shape[:-1]):
        raise ValueError(f"cosine_embedding_loss: target of shape {tuple(t.shape)} does not "
                         f"match inputs of shape {tuple(input1.shape)} (expected "
                         f"{tuple(input1.shape[:-1])})")
    if not bool(xp.all((t == 1) | (t == -1))):
        raise ValueError("cosine_embedding_loss: target values must be 1 or -1")
    prod = (input1 * input2).sum(-1)                        # (N,)
    mag1 = (input1 * input1).sum(-1) + COSINE_EPS
    mag2 = (input2 * input2).sum(-1) + COSINE_EPS
    cos = prod / (mag1 * mag2).sqrt()
    loss = where(t == 1, 1 - cos, clamp(cos - margin, min=0.0))
    return _reduce(loss, reduction)


def negative_sampling_loss(center, context, negatives, reduction="mean"):
    """word2vec skip-gram with negative sampling (SGNS), per center word:

        l = -log s(u_o . v_c) - sum_k log s(-u_k . v_c),   s = sigmoid
          = softplus(-u_o . v_c) + sum_k softplus(u_k . v_c)     (stable form)

    center v_c (N, D), context u_o (N, D), negatives u_k (N, K, D) -> l (N,) before reduction.
    """
    _check_reduction("negative_sampling_loss", reduction)
    _same_shape("negative_sampling_loss", center, context, "center", "context")
    if center.ndim != 2 or negatives.ndim != 3 or (negatives.shape[0], negatives.shape[2]) != (
            center.shape[0], center.shape[1]):
        raise ValueError(f"negative_sampling_loss: expected center (N, D), context (N, D) and "
                         f"negatives (N, K, D), got {tuple(center.shape)}, "
                         f"{tuple(context.shape)} and {tuple(negatives.shape)}")
    pos_score = (context * center).sum(-1)                  # (N,)    u_o . v_c
    neg_score = (negatives * center.unsqueeze(1)).sum(-1)   # (N, K)  u_k . v_c
    loss = softplus(-pos_score) + softplus(neg_score).sum(-1)
    return _reduce(loss, reduction)


# ----- regularization -------------------------------------------------------------------------

def _param_tensors(parameters):
    if hasattr(parameters, "parameters"):                   # a Module
        return list(parameters.parameters())
    if isinstance(parameters, Tensor):
        return [parameters]
    out = []
    for p in parameters:
        out.append(p[1] if isinstance(p, tuple) else p)     # accept named_parameters() too
    if not out:
        raise ValueError("penalty: got no parameters")
    return out


def l1_penalty(parameters):
    """sum_w |w| over all parameters (a Module, tensors, or named_parameters()); add
    lambda * l1_penalty(model) to the loss for L1 regularization (sparse weights)."""
    params = _param_tensors(parameters)
    total = params[0].abs().sum()
    for p in params[1:]:
        total = total + p.abs().sum()
    return total


def l2_penalty(parameters):
    """sum_w w^2 over all parameters; lambda * l2_penalty(model) is L2 regularization
    (its gradient 2 lambda w is what SGD's weight_decay adds, with weight_decay = 2 lambda)."""
    params = _param_tensors(parameters)
    total = (params[0] * params[0]).sum()
    for p in params[1:]:
        total = total + (p * p).sum()
    return total
