"""Adam and AdamW, written out as PyTorch's torch.optim.Adam / AdamW (Kingma & Ba, 2015;
Loshchilov & Hutter, 2019).

For each parameter p with gradient g, at step t = 1, 2, ...:

    g     = g + weight_decay * p                     Adam only: L2 penalty in the gradient
    p     = p * (1 - lr * weight_decay)              AdamW only: decoupled weight decay
    m_t   = beta1 * m_{t-1} + (1 - beta1) * g        first moment: running mean of g
    v_t   = beta2 * v_{t-1} + (1 - beta2) * g^2      second moment: running mean of g^2
    v_max = max(v_max, v_t)                          amsgrad only: never let the step grow back
    m_hat = m_t / (1 - beta1^t)                      bias corrections: m and v start at 0, so
    v_hat = v_t / (1 - beta2^t)                      early averages are too small by 1 - beta^t
    p     = p - lr * m_hat / (sqrt(v_hat) + eps)

The difference between the two: Adam's weight decay passes through the moments (so it is
rescaled per coordinate by 1 / sqrt(v_hat)), AdamW's shrinks every weight by the same factor.
With float32 gradients so large that g^2 overflows (|g| > 1.8e19), v becomes inf and the step
becomes 0, never NaN.
"""
from ..autograd import no_grad
from ..backend import get_array_module
from ..kernels.adam import adam_update_many
from .optimizer import Optimizer


def _check(lr, betas, eps, weight_decay):
    if lr < 0:
        raise ValueError(f"Invalid learning rate: {lr}")
    if eps < 0:
        raise ValueError(f"Invalid epsilon value: {eps}")
    if not 0.0 <= betas[0] < 1.0 or not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameters: {betas} (each must be in [0, 1))")
    if weight_decay < 0:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")


class Adam(Optimizer):
    """Adam with optional L2 weight decay and AMSGrad (see the module docstring)."""

    decoupled_weight_decay = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False):
        _check(lr, betas, eps, weight_decay)
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps,
                                  "weight_decay": weight_decay, "amsgrad": amsgrad})

    def _init_state(self, name, p, amsgrad):
        xp = get_array_module(p.data)
        state = {"step": 0,
                 "exp_avg": xp.zeros_like(p.data),       # m: the first moment
                 "exp_avg_sq": xp.zeros_like(p.data)}    # v: the second moment
        if amsgrad:
            state["max_exp_avg_sq"] = xp.zeros_like(p.data)
        self.state[name] = state
        return state

    @no_grad()
    def step(self, closure=None):
        loss = self._run_closure(closure)
        for group in self.param_groups:
            (beta1, beta2), amsgrad = group["betas"], group["amsgrad"]
            updates = []
            for name, p, g in self._params_with_grad(group):
                state = self.state.get(name) or self._init_state(name, p, amsgrad)
                state["step"] += 1
                v_max = None
                if amsgrad:
                    v_max = state.get("max_exp_avg_sq")
                    if v_max is None:  # amsgrad switched on after the first steps
                        v_max = state["max_exp_avg_sq"] = get_array_module(g).zeros_like(g)
                updates.append((p.data, g, state["exp_avg"], state["exp_avg_sq"], v_max,
                                state["step"]))
                self._updated(p)
            # the rule of the module docstring, in place, for every parameter of the group
            # (kernels/adam.py: the small ones several per kernel call)
            adam_update_many(updates, group["lr"], beta1, beta2, group["eps"],
                             group["weight_decay"], self.decoupled_weight_decay, amsgrad)
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay (default weight_decay=1e-2, as PyTorch)."""

    decoupled_weight_decay = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)
