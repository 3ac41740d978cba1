"""Cross-entropy with class weights: the path kernels/cross_entropy.py does not cover.

The fused kernel takes no ``weight`` argument, so F.cross_entropy(..., weight=w) runs these two
plain array functions instead (vectorized NumPy/CuPy; the log-softmax inside still runs on the
kernel of kernels/softmax.py). Same contract as the kernel: arrays in, arrays out; an all-ignored
batch gives a 'mean' of 0 with zero gradient (the kernel's choice; PyTorch gives NaN).

Shape legend: N rows, C classes.

    logp = log_softmax(x),   q = (1 - e) onehot(t) + e / C
    loss_n = (1 - e) w_t (-logp_{n,t}) + (e / C) sum_c w_c (-logp_nc)      (0 if ignored)
    'mean' = sum_n loss_n / sum_n w_{t_n} over the kept rows               (PyTorch's rule)
    dx_nc = g_n * (p_nc * ((1 - e) w_t + (e / C) sum_c' w_c') - (1 - e) w_t [c = t] - (e / C) w_c)
"""

from ..backend import get_array_module
from ..kernels import softmax as _softmax


# ----- cross-entropy --------------------------------------------------------------------------

def cross_entropy_forward(x, target, weight, ignore_index, reduction, label_smoothing,
                          impl="auto"):
    """Loss of logits x (N, C) for class indices target (N,) (checked by the caller), weight (C,).

    Returns (loss, state): loss is (N,) for reduction 'none', else 0-d; state carries what
    cross_entropy_backward needs (state["saved"] holds the arrays).
    """
    xp = get_array_module(x)
    n, c = x.shape
    eps = float(label_smoothing)
    logp = _softmax.log_softmax_forward(x, impl=impl)       # (N, C)
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


def cross_entropy_backward(g, saved, state):
    """dx (N, C) of cross_entropy_forward for the upstream gradient g."""
    logp, t, w_t, kept = saved
    weight, eps, reduction = state["weight"], state["eps"], state["reduction"]
    xp = get_array_module(logp)
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
