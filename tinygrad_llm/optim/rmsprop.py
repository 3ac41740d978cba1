"""RMSprop, written out as PyTorch's torch.optim.RMSprop (Hinton's lecture 6e, 2012; the
centered form from Graves, 2013).

For each parameter p with gradient g, at every step:

    g     = -g                                     maximize only: ascend instead
    g     = g + weight_decay * p                   L2 penalty in the gradient
    v     = alpha * v + (1 - alpha) * g^2          running mean of g^2 (square_avg)
    m_g   = alpha * m_g + (1 - alpha) * g          centered only: running mean of g (grad_avg)
    denom = sqrt(v - m_g^2) + eps                  centered: an estimate of g's std
          = sqrt(v) + eps                          otherwise: its root mean square
    b     = momentum * b + g / denom               momentum > 0 only (momentum_buffer)
    p     = p - lr * b                             with momentum
          = p - lr * g / denom                     without

Unlike Adam there is no bias correction: v starts at 0, so the first steps divide by a small
sqrt(v) and are large (sqrt(1 / (1 - alpha)) = 10 times lr for alpha = 0.99).
"""
from ..autograd import no_grad
from ..backend import get_array_module
from .optimizer import Optimizer


class RMSprop(Optimizer):
    """RMSprop with PyTorch's options and defaults (see the module docstring)."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False, capturable=False, foreach=None, maximize=False,
                 differentiable=False):
        if lr < 0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if eps < 0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if momentum < 0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if alpha < 0:
            raise ValueError(f"Invalid alpha value: {alpha}")
        if capturable or differentiable:
            raise ValueError("RMSprop: capturable and differentiable are CUDA-graph and "
                             "higher-order options this framework does not have; leave them "
                             "False")
        # foreach (a speed option: one fused call over all tensors) is accepted and ignored
        super().__init__(params, {"lr": lr, "alpha": alpha, "eps": eps,
                                  "weight_decay": weight_decay, "momentum": momentum,
                                  "centered": centered, "maximize": maximize})

    def _init_state(self, name, p, group):
        xp = get_array_module(p.data)
        state = {"step": 0,
                 "square_avg": xp.zeros_like(p.data)}            # v: running mean of g^2
        if group["momentum"] > 0:
            state["momentum_buffer"] = xp.zeros_like(p.data)     # b: the velocity
        if group["centered"]:
            state["grad_avg"] = xp.zeros_like(p.data)            # m_g: running mean of g
        self.state[name] = state
        return state

    @no_grad()
    def step(self, closure=None):
        loss = self._run_closure(closure)
        for group in self.param_groups:
            lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
            weight_decay, momentum = group["weight_decay"], group["momentum"]
            for name, p, g in self._params_with_grad(group):
                xp = get_array_module(g)
                state = self.state.get(name) or self._init_state(name, p, group)
                state["step"] += 1
                if group["maximize"]:
                    g = -g
                if weight_decay != 0:
                    # g = g + wd p: the gradient of (wd / 2) |p|^2
                    g = g + weight_decay * p.data
                # v = alpha v + (1 - alpha) g^2
                v = state["square_avg"]
                v *= alpha
                v += (1 - alpha) * (g * g)
                if group["centered"]:
                    # m_g = alpha m_g + (1 - alpha) g;  denom = sqrt(v - m_g^2) + eps
                    m_g = state.get("grad_avg")
                    if m_g is None:               # centered switched on after the first steps
                        m_g = state["grad_avg"] = xp.zeros_like(g)
                    m_g *= alpha
                    m_g += (1 - alpha) * g
                    denom = xp.sqrt(v - m_g * m_g) + eps
                else:
                    # denom = sqrt(v) + eps
                    denom = xp.sqrt(v) + eps
                if momentum > 0:
                    # b = momentum b + g / denom;  p = p - lr b
                    b = state.get("momentum_buffer")
                    if b is None:
                        b = state["momentum_buffer"] = xp.zeros_like(g)
                    b *= momentum
                    b += g / denom
                    p.data -= lr * b
                else:
                    # p = p - lr g / denom
                    p.data -= lr * (g / denom)
                self._updated(p)
        return loss
